package mongostore_test

import (
	"testing"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestPipeline(t *testing.T) {
	roomtest.TestPipeline(t, func(tb testing.TB) room.Store {
		uri, db := database(tb)
		return open(tb, uri, db)
	})
}
