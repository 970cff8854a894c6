package mongostore_test

import (
	"testing"

	"dealroom/notify/notifytest"
)

func TestNotify(t *testing.T) {
	notifytest.TestStore(t, func(tb testing.TB) notifytest.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
