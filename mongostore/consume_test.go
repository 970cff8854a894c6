package mongostore_test

import (
	"testing"

	"dealroom/consume/consumetest"
)

func TestConsumeStore(t *testing.T) {
	consumetest.TestStore(t, func(tb testing.TB) consumetest.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
