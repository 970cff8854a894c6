package mongostore_test

import (
	"testing"

	"dealroom/staff"
	"dealroom/staff/stafftest"
)

func TestStaff(t *testing.T) {
	stafftest.TestStore(t, func(tb testing.TB) staff.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
