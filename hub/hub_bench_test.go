package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"dealroom"
	"dealroom/room"
)

func benchEvent(seq int64) room.Event {
	data, _ := json.Marshal(map[string]any{"id": "m_01", "room_id": "r_bench", "body": "A message of ordinary length, with a mention of @Carl in it.",
		"author": "olivia", "visibility": "shared", "mentions": []string{"carl"}, "attachments": []string{}, "created_at": time.Now()})
	return room.Event{Seq: seq, ID: fmt.Sprintf("e_%d", seq), RoomID: "r_bench", Type: room.MessagePosted,
		Actor: room.EventActor{ID: "olivia", Kind: dealroom.Staff, Name: "Olivia"}, At: time.Now(),
		Visibility: dealroom.Shared, Data: data}
}

// BenchmarkEncodeEvent: an event turned into its frames, once per
// visibility (what every instance does once per event).
func BenchmarkEncodeEvent(b *testing.B) {
	ev := benchEvent(1)
	raw, _ := json.Marshal(ev)
	b.ReportAllocs()
	for b.Loop() {
		newEntry(ev, raw)
	}
}

// BenchmarkFanOut: one event delivered to the live sessions of a room
// (half of them customers), each draining its queue as a writer would.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{10, 100, 2000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			h := New(Config{QueueFrames: 1 << 16, QueueBytes: 1 << 30}, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			defer h.Close()
			f := newFeed(h, "r_bench")
			f.head = 0
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for i := range n {
				kind := dealroom.Staff
				if i%2 == 1 {
					kind = dealroom.Customer
				}
				s := h.NewSession(dealroom.Actor{ID: fmt.Sprint("u", i), Kind: kind})
				f.live[&sub{sess: s, room: "r_bench", customer: kind == dealroom.Customer}] = struct{}{}
				go func() {
					for {
						if _, err := s.q.pop(ctx); err != nil {
							return
						}
					}
				}()
			}
			entries := make([]*entry, 0, 1024)
			for i := range 1024 {
				entries = append(entries, newEntry(benchEvent(int64(i+1)), nil))
			}
			b.ReportAllocs()
			b.ResetTimer()
			seq := int64(0)
			for b.Loop() {
				e := *entries[seq%1024]
				seq++
				e.seq = seq
				f.offer(&e)
			}
			b.ReportMetric(float64(n), "deliveries/op")
		})
	}
}

// BenchmarkDecodeFrame: a command frame read and checked (what the server
// does for every frame a device sends).
func BenchmarkDecodeFrame(b *testing.B) {
	frame := []byte(`{"type":"command","room":"r_bench","id":"op_0123456789","op":"message.post","data":{"body":"A message of ordinary length, with a mention of @Carl in it."}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}
