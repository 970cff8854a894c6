package boltstore_test

import (
	"testing"

	"dealroom/outbox"
	"dealroom/outbox/outboxtest"
)

func TestOutboxStore(t *testing.T) {
	outboxtest.TestStore(t, func(tb testing.TB) outbox.Store { return MustOpen(tb, tb.TempDir()) })
}
