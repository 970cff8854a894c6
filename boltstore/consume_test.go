package boltstore_test

import (
	"testing"

	"dealroom/consume/consumetest"
)

func TestConsumeStore(t *testing.T) {
	consumetest.TestStore(t, func(tb testing.TB) consumetest.Store { return MustOpen(tb, tb.TempDir()) })
}
