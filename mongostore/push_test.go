package mongostore_test

import (
	"testing"

	"dealroom/push"
	"dealroom/push/pushtest"
)

func TestPush(t *testing.T) {
	pushtest.TestStore(t, func(tb testing.TB) push.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
