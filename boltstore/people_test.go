package boltstore_test

import (
	"testing"

	"dealroom/notify/notifytest"
)

func TestNotify(t *testing.T) {
	notifytest.TestStore(t, func(tb testing.TB) notifytest.Store { return MustOpen(tb, tb.TempDir()) })
}
