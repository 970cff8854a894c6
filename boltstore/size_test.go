package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
)

// BenchmarkBytesPerEvent: what the file holds per event, against the
// event's own JSON. 10,000 messages of 450 characters (words of random
// letters, which compress about as prose does in a short text), each with
// an idempotency key as the API's clients send them, go to 100 rooms from
// 16 writers at once. bytes/event is the size of the file's pages (free
// ones included) over the count of events; json/event the average size of
// the events as the API sends them; disk/json the one over the other.
// The file itself grows in steps of 16 MiB (bbolt's AllocSize), which
// file/event includes. Run it with -benchtime=1x; with -v it logs where
// the bytes are, bucket by bucket. pages/commit counts the runs of pages
// each commit writes (a run of overflow pages counts once), its meta page
// included.
func BenchmarkBytesPerEvent(b *testing.B) {
	const rooms, messages, writers = 100, 10000, 16
	for range b.N {
		dir := b.TempDir()
		s, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		var commits atomic.Int64
		s.OnCommit(func(int, time.Duration) { commits.Add(1) })
		before := s.db.Stats()
		ids := postMessages(b, s, rooms, messages, writers)
		after := s.db.Stats()
		writes := after.TxStats.GetWrite() - before.TxStats.GetWrite()
		if testing.Verbose() {
			logBuckets(b, s.db)
		}
		var events, jsonBytes, size int64
		for _, id := range ids {
			evs, err := s.Events(context.Background(), id, 0, messages, false)
			if err != nil {
				b.Fatal(err)
			}
			for _, ev := range evs {
				raw, err := json.Marshal(ev)
				if err != nil {
					b.Fatal(err)
				}
				events++
				jsonBytes += int64(len(raw))
			}
		}
		if err := s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "dealroom.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/float64(events), "bytes/event")
		b.ReportMetric(float64(jsonBytes)/float64(events), "json/event")
		b.ReportMetric(float64(size)/float64(jsonBytes), "disk/json")
		b.ReportMetric(float64(fi.Size())/float64(events), "file/event")
		b.ReportMetric(float64(writes)/float64(commits.Load()), "pages/commit")
		b.ReportMetric(float64(events)/float64(commits.Load()), "events/commit")
	}
}

// postMessages posts messages of 450 characters, each with its own key,
// to rooms new rooms from writers goroutines at once, and returns the
// rooms' ids.
func postMessages(tb testing.TB, s *Store, rooms, messages, writers int) []string {
	svc := &room.Service{Store: s}
	ctx := context.Background()
	owner := dealroom.Actor{ID: "olivia", Name: "Olivia", Kind: dealroom.Staff, Role: dealroom.Rep}
	ids := make([]string, rooms)
	for i := range ids {
		r, err := svc.CreateRoom(ctx, owner, room.Draft{Name: fmt.Sprint("Bench ", i), Company: "Acme"}, fmt.Sprint("room-", i))
		if err != nil {
			tb.Fatal(err)
		}
		ids[i] = r.ID
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := n.Add(1); i <= int64(messages); i = n.Add(1) {
				d := room.MessageDraft{Body: text(rng, 450)}
				if _, err := svc.PostMessage(ctx, owner, ids[i%int64(rooms)], d, fmt.Sprintf("key-%032d", i)); err != nil {
					tb.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return ids
}

// logBuckets logs the pages and bytes of each bucket, and the file's
// free pages.
func logBuckets(tb testing.TB, db *bolt.DB) {
	err := db.View(func(tx *bolt.Tx) error {
		var used int
		for _, name := range allBuckets {
			st := tx.Bucket(name).Stats()
			alloc := st.BranchAlloc + st.LeafAlloc
			used += alloc
			if st.KeyN == 0 {
				continue
			}
			tb.Logf("%-16s %7d keys %6d leaf pages %9d bytes allocated, %3.0f%% in use", name, st.KeyN, st.LeafPageN+st.LeafOverflowN,
				alloc, 100*float64(st.BranchInuse+st.LeafInuse)/float64(alloc))
		}
		size := tx.Size()
		free := db.Stats().FreePageN + db.Stats().PendingPageN
		tb.Logf("file %d bytes: buckets %d, free pages %d (%d bytes), other %d", size, used, free, free*db.Info().PageSize,
			size-int64(used)-int64(free*db.Info().PageSize))
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// text returns n characters of words of random lower-case letters: text
// that compresses about as well as prose does in a short message, where
// words seldom repeat.
func text(rng *rand.Rand, n int) string {
	b := make([]byte, 0, n)
	for len(b) < n {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		for range 2 + rng.IntN(8) {
			b = append(b, byte('a'+rng.IntN(26)))
		}
	}
	return string(b[:n])
}
