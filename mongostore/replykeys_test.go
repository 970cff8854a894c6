package mongostore_test

import (
	"testing"

	"dealroom/notify"
	"dealroom/notify/notifytest"
)

func TestReplyKeys(t *testing.T) {
	notifytest.TestReplyKeys(t, func(tb testing.TB) notify.ReplyKeys {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
