package mongostore_test

import (
	"testing"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestReads(t *testing.T) {
	roomtest.TestReads(t, func(tb testing.TB) room.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
