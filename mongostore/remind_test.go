package mongostore_test

import (
	"testing"

	"dealroom/notify/notifytest"
)

func TestReminders(t *testing.T) {
	notifytest.TestReminders(t, func(tb testing.TB) notifytest.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
