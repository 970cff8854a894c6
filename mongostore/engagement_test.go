package mongostore_test

import (
	"testing"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestEngagement(t *testing.T) {
	roomtest.TestEngagement(t, func(tb testing.TB) room.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
