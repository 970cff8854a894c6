package mongostore_test

import (
	"testing"

	"dealroom/outbox"
	"dealroom/outbox/outboxtest"
)

func TestOutboxStore(t *testing.T) {
	outboxtest.TestStore(t, func(tb testing.TB) outbox.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
