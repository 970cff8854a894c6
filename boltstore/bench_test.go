package boltstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/room"
)

// BenchmarkAppend: messages appended to one room by concurrent writers,
// durably (group commit: one fsync per batch).
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			store, err := boltstore.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			svc := &room.Service{Store: store}
			owner := dealroom.Actor{ID: "olivia", Name: "Olivia", Kind: dealroom.Staff, Role: dealroom.Rep}
			r, err := svc.CreateRoom(context.Background(), owner, room.Draft{Name: "Bench", Company: "Acme"}, "")
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.SetParallelism(writers)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := svc.PostMessage(context.Background(), owner, r.ID, room.MessageDraft{Body: fmt.Sprint("message ", n.Add(1))}, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
