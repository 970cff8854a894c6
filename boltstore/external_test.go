package boltstore_test

import (
	"testing"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestExternal(t *testing.T) {
	roomtest.TestExternal(t, func(tb testing.TB) room.Store { return MustOpen(tb, tb.TempDir()) })
}
