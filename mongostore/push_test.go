package mongostore_test

import (
	"testing"

	"dealroom/notify/notifytest"
	"dealroom/push"
	"dealroom/push/pushtest"
)

func TestPush(t *testing.T) {
	pushtest.TestStore(t, func(tb testing.TB) push.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}

func TestNotifyPush(t *testing.T) {
	notifytest.TestPush(t, func(tb testing.TB) notifytest.PushStore {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
