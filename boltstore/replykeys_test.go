package boltstore_test

import (
	"testing"

	"dealroom/notify"
	"dealroom/notify/notifytest"
)

func TestReplyKeys(t *testing.T) {
	notifytest.TestReplyKeys(t, func(tb testing.TB) notify.ReplyKeys { return MustOpen(tb, tb.TempDir()) })
}
