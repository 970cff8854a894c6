package boltstore_test

import (
	"testing"

	"dealroom/notify/notifytest"
	"dealroom/push"
	"dealroom/push/pushtest"
)

func TestPush(t *testing.T) {
	pushtest.TestStore(t, func(tb testing.TB) push.Store { return MustOpen(tb, tb.TempDir()) })
}

func TestNotifyPush(t *testing.T) {
	notifytest.TestPush(t, func(tb testing.TB) notifytest.PushStore { return MustOpen(tb, tb.TempDir()) })
}
