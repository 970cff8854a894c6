//go:build unix

package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/broker"
	"dealroom/room"
)

// BenchmarkCommit: a message posted through room.Service into the
// embedded store (durably) and, once committed, handed to the hub, which
// fans it out to the room's 10 sessions (half of them customers), each
// draining its queue as a writer would: the server's work for one write
// of cmd/dealroom-bench's b1000, less the network. Its time per write is
// mostly the wait for the disk; cpu-us/op is what counts: the process's
// CPU time (user and system, every goroutine, the collector's included)
// per write, and user-us/op the part of it outside the kernel (the
// system part, mostly the disk's sync and the file's writes, varies with
// the disk).
func BenchmarkCommit(b *testing.B) {
	store, err := boltstore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := New(Config{}, store, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer h.Close()
	h.Start(broker.NewLocal(h))
	svc := &room.Service{Store: store, Committed: h.Committed}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	owner := dealroom.Actor{ID: "olivia", Name: "Olivia", Kind: dealroom.Staff, Role: dealroom.Rep}
	r, err := svc.CreateRoom(ctx, owner, room.Draft{Name: "Bench", Company: "Acme"}, "")
	if err != nil {
		b.Fatal(err)
	}
	f := newFeed(h, r.ID)
	f.head = r.Head
	close(f.ready)
	h.mu.Lock()
	h.feeds[r.ID] = f
	h.mu.Unlock()
	for i := range 10 {
		kind := dealroom.Staff
		if i%2 == 1 {
			kind = dealroom.Customer
		}
		s := h.NewSession(dealroom.Actor{ID: fmt.Sprint("u", i), Kind: kind})
		f.live[&sub{sess: s, room: r.ID, customer: kind == dealroom.Customer, sent: r.Head}] = struct{}{}
		go func() {
			for {
				if _, err := s.q.pop(ctx); err != nil {
					return
				}
			}
		}()
	}
	body := "A message of ordinary length, about a hundred bytes, with the time it was sent: "
	b.ReportAllocs()
	n := 0
	start, startUser := cpuTime()
	for b.Loop() {
		n++
		d := room.MessageDraft{Body: fmt.Sprint(body, n)}
		if _, err := svc.PostMessage(ctx, owner, r.ID, d, fmt.Sprint("k", n)); err != nil {
			b.Fatal(err)
		}
	}
	end, endUser := cpuTime()
	b.ReportMetric(float64((end-start).Microseconds())/float64(n), "cpu-us/op")
	b.ReportMetric(float64((endUser-startUser).Microseconds())/float64(n), "user-us/op")
}

// cpuTime is the CPU time the process used so far, and the part of it
// spent outside the kernel.
func cpuTime() (all, user time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Utime.Nano())
}
