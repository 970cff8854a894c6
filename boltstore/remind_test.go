package boltstore_test

import (
	"testing"

	"dealroom/notify/notifytest"
)

func TestReminders(t *testing.T) {
	notifytest.TestReminders(t, func(tb testing.TB) notifytest.Store { return MustOpen(tb, tb.TempDir()) })
}
