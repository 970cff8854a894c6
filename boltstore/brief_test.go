package boltstore_test

import (
	"testing"

	"dealroom/room"
	"dealroom/room/roomtest"
)

func TestPipeline(t *testing.T) {
	roomtest.TestPipeline(t, func(tb testing.TB) room.Store { return MustOpen(tb, tb.TempDir()) })
}

// BenchmarkPipeline1000x30: the manager's pipeline over 1,000 rooms of 30
// steps each (figures in docs/benchmarks.md).
func BenchmarkPipeline1000x30(b *testing.B) {
	roomtest.BenchPipeline(b, MustOpen(b, b.TempDir()), 1000, 30)
}
