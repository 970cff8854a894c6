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

// BenchmarkPipeline1000x30: the manager's pipeline over 1,000 rooms of 30
// steps each, on mongo-java-server (figures in docs/benchmarks.md).
func BenchmarkPipeline1000x30(b *testing.B) {
	uri, db := database(b)
	roomtest.BenchPipeline(b, open(b, uri, db), 1000, 30)
}
