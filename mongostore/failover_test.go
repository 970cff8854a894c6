package mongostore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"dealroom"
	"dealroom/internal/testenv"
	"dealroom/mongostore"
	"dealroom/outbox"
	"dealroom/room"
	"dealroom/room/roomtest"
	"dealroom/task"
)

// These tests put testenv.FaultProxy between the store and the server, so
// that a request reaches the server and its answer is lost, as when a
// primary steps down after it applied a write (see docs/architecture.md,
// "MongoDB replica set", for what they show and what they cannot).

// eventInsert matches the start of an insert command into the events
// collection: the BSON string element insert: "events".
var eventInsert = []byte("\x02insert\x00\x07\x00\x00\x00events\x00")

func isEventInsert(req []byte) bool { return bytes.Contains(req, eventInsert) }

// proxied opens a store that reaches the test server through a fault
// proxy, and one that reaches it directly, on one database.
func proxied(t *testing.T, opts ...mongostore.Option) (s, direct *mongostore.Store, p *testenv.FaultProxy) {
	t.Helper()
	uri, db := database(t)
	if env := os.Getenv("DEALROOM_TEST_MONGO_URI"); env != "" &&
		(strings.ContainsAny(env, "@,?") || strings.HasPrefix(env, "mongodb+srv")) {
		t.Skip("the proxy tests need a plain mongodb://host:port URI")
	}
	p = testenv.StartFaultProxy(t, strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/"))
	s, err := mongostore.Open(ctxT(t), "mongodb://"+p.Addr()+"/?directConnection=true",
		append([]mongostore.Option{mongostore.WithDatabase(db)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, open(t, uri, db), p
}

// committedLog records what a service reported committed.
type committedLog struct {
	mu  sync.Mutex
	evs []room.Event
}

func (l *committedLog) add(ev room.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *committedLog) events() []room.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]room.Event(nil), l.evs...)
}

// tasksCreated counts the task.created events of the log whose data
// holds the title.
func tasksCreated(evs []room.Event, title string) int {
	n := 0
	for _, e := range evs {
		if e.Type == room.TaskCreated && strings.Contains(string(e.Data), fmt.Sprintf("%q", title)) {
			n++
		}
	}
	return n
}

// TestLostInsertAnswer: the server applies an event's insert and the
// answer never reaches the store. The write is reported done once, with
// its result; the room has the event once, at the next seq, and its read
// model; a retry with the same Idempotency-Key replays it; without a key
// nothing is doubled.
func TestLostInsertAnswer(t *testing.T) {
	for _, key := range []string{"", "lost-1"} {
		t.Run("key="+key, func(t *testing.T) {
			s, direct, p := proxied(t)
			ctx := ctxT(t)
			var committed committedLog
			svc := &room.Service{Store: s, Committed: committed.add}
			r := seedRoom(t, ctx, svc)

			p.CutReply(isEventInsert)
			res, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Answer lost"}, key)
			require.NoError(t, err)
			require.Equal(t, 1, p.Cuts(), "the insert's answer was cut")
			assert.EqualValues(t, 4, res.Seq)
			assert.False(t, res.Replayed)
			assert.NotEmpty(t, res.ID)

			evs, err := direct.Events(ctx, r, 0, 100, false)
			require.NoError(t, err)
			assert.Equal(t, []int64{1, 2, 3, 4}, seqsOf(evs))
			assert.Equal(t, 1, tasksCreated(evs, "Answer lost"), "the event is in the log once")
			if assert.Len(t, committed.events(), 4) {
				assert.Equal(t, evs[3].ID, committed.events()[3].ID, "and reported committed once")
			}
			ts, err := direct.Tasks(ctx, r)
			require.NoError(t, err)
			require.Len(t, ts, 1)
			assert.Equal(t, res.ID, ts[0].ID)

			if key != "" {
				again, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Answer lost"}, key)
				require.NoError(t, err)
				assert.True(t, again.Replayed)
				assert.Equal(t, res.ID, again.ID)
				assert.EqualValues(t, 4, again.Seq)
			}
			// The next write takes the next seq.
			next, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Next"}, "")
			require.NoError(t, err)
			assert.EqualValues(t, 5, next.Seq)
			evs, err = direct.Events(ctx, r, 0, 100, false)
			require.NoError(t, err)
			assert.Equal(t, []int64{1, 2, 3, 4, 5}, seqsOf(evs))
		})
	}
}

// TestLostInsertAnswerWhileAnotherWrites: the answer of an insert is lost
// and another instance writes the room meanwhile; the lost one was in
// first, so it stands once, at the seq reported, and the other comes
// after it.
func TestLostInsertAnswerWhileAnotherWrites(t *testing.T) {
	s, direct, p := proxied(t)
	ctx := ctxT(t)
	svc := &room.Service{Store: s}
	other := &room.Service{Store: direct}
	r := seedRoom(t, ctx, svc)
	// The other instance writes right after the lost insert landed,
	// before this one settles it.
	p.CutReply(isEventInsert)
	var wg sync.WaitGroup
	wg.Add(1)
	var otherErr error
	go func() {
		defer wg.Done()
		for p.Cuts() == 0 {
			time.Sleep(time.Millisecond)
		}
		_, otherErr = other.CreateTask(ctx, roomtest.Bob, r, task.Draft{Title: "Other"}, "")
	}()
	res, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Lost"}, "")
	wg.Wait()
	require.NoError(t, err)
	require.NoError(t, otherErr)
	evs, err := direct.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4, 5}, seqsOf(evs))
	assert.Equal(t, 1, tasksCreated(evs, "Lost"))
	assert.Equal(t, 1, tasksCreated(evs, "Other"))
	assert.Equal(t, evs[res.Seq-1].Type, room.TaskCreated)
	assert.Equal(t, 1, tasksCreated(evs[res.Seq-1:res.Seq], "Lost"), "the seq reported is the event's")
}

// TestWritesThroughFaults: concurrent writers while answers are lost,
// every connection is cut and new ones are refused for a moment, again
// and again. Every write reported done is in the log exactly once at the
// seq it was reported with, the seqs have no gap, writes retried with
// their key until done are each in the log once, and the read models
// hold exactly the tasks of the log.
func TestWritesThroughFaults(t *testing.T) {
	s, direct, p := proxied(t, mongostore.WithServerSelectionTimeout(2*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var committed committedLog
	svc := &room.Service{Store: s, Committed: committed.add}
	r := seedRoom(t, ctx, svc)

	const writers, each, minCuts = 3, 8, 5
	var mu sync.Mutex
	done := map[string]int64{} // title → seq reported
	var keyed []string         // titles written with a key
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// At least `each` writes, and on until answers were cut.
			for k := 0; k < each || p.Cuts() < minCuts; k++ {
				title := fmt.Sprintf("w%d-%d", w, k)
				key := ""
				if k%2 == 0 {
					key = "key-" + title // retried until done
					mu.Lock()
					keyed = append(keyed, title)
					mu.Unlock()
				}
				for try := 0; try < 50; try++ {
					res, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: title}, key)
					if err == nil {
						mu.Lock()
						done[title] = res.Seq
						mu.Unlock()
						break
					}
					if !assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err), "%v", err) || key == "" {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	// Faults in turn until the writers are done, with writes going
	// through between them: an answer lost (waited for), every
	// connection cut, connections refused for a moment. Each costs the
	// driver about half a second to find the server again.
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() {
		defer close(faults)
		pause := func(d time.Duration) bool {
			select {
			case <-stop:
				return false
			case <-time.After(d):
				return true
			}
		}
		for {
			cuts := p.Cuts()
			p.CutReply(isEventInsert)
			for p.Cuts() == cuts {
				if !pause(5 * time.Millisecond) {
					return
				}
			}
			if !pause(500 * time.Millisecond) {
				return
			}
			p.CutAll()
			if !pause(500 * time.Millisecond) {
				return
			}
			p.Refuse(true)
			pause(100 * time.Millisecond)
			p.Refuse(false)
			if !pause(500 * time.Millisecond) {
				return
			}
		}
	}()
	wg.Wait()
	t.Logf("writes done: %d, answers cut: %d", len(done), p.Cuts())
	close(stop)
	<-faults
	p.Refuse(false)
	assert.GreaterOrEqual(t, p.Cuts(), minCuts, "answers were lost")

	evs, err := direct.Events(ctx, r, 0, 10000, false)
	require.NoError(t, err)
	for i, e := range evs {
		require.EqualValues(t, i+1, e.Seq, "seqs are 1..n")
	}
	for title, seq := range done {
		assert.Equal(t, 1, tasksCreated(evs, title), "%s is in the log once", title)
		assert.Equal(t, 1, tasksCreated(evs[seq-1:seq], title), "%s is at the seq reported", title)
	}
	for _, title := range keyed {
		assert.Contains(t, done, title, "a write retried with its key is done")
	}
	for _, ev := range committed.events() {
		assert.Equal(t, ev.ID, evs[ev.Seq-1].ID, "a committed event is the log's at its seq")
	}
	// Every task of the log is in the read model once the room is used.
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 15*time.Second, 50*time.Millisecond)
	ts, err := s.Tasks(ctx, r)
	require.NoError(t, err)
	assert.Len(t, ts, len(evs)-3)
	ts, err = open(t, testenv.MongoURI(t), s.Database().Name()).Tasks(ctx, r)
	require.NoError(t, err)
	assert.Len(t, ts, len(evs)-3)
}

// TestLostBlobRecordAnswer: the record of an attachment's bytes (the
// GridFS files document) is inserted and its answer lost. The bytes are
// reported stored, once, and read back whole.
func TestLostBlobRecordAnswer(t *testing.T) {
	s, direct, p := proxied(t)
	ctx := ctxT(t)
	b, err := s.Blobs(ctx)
	require.NoError(t, err)
	data := randomBytes(t, mongostore.ChunkSize+10)
	p.CutReply(func(req []byte) bool {
		return bytes.Contains(req, []byte("\x02insert\x00\x0c\x00\x00\x00blobs.files\x00"))
	})
	blob, err := b.Put(ctx, bytes.NewReader(data), 10<<20)
	require.NoError(t, err)
	require.Equal(t, 1, p.Cuts(), "the record's answer was cut")
	assert.Equal(t, sumOf(data), blob.SHA256)
	assert.EqualValues(t, 1, count(t, direct, "blobs.files", bson.D{}))
	assert.EqualValues(t, 2, count(t, direct, "blobs.chunks", bson.D{}))
	db, err := direct.Blobs(ctx)
	require.NoError(t, err)
	rc, err := db.Open(ctx, blob.SHA256)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// TestLostOutboxAnswer: the insert of outbox records is carried out and
// its answer lost; the consumer's handler fails and runs again, and the
// records are there once.
func TestLostOutboxAnswer(t *testing.T) {
	s, direct, p := proxied(t)
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []outbox.Record
	for _, user := range []string{"ana", "ben"} {
		recs = append(recs, outbox.Record{ID: outbox.Key(outbox.Email, user, "e1"), Channel: outbox.Email,
			Recipient: user, RoomID: "r1", EventID: "e1", Seq: 1, Payload: []byte(`{}`),
			State: outbox.Pending, CreatedAt: now, Due: now})
	}
	p.CutReply(func(req []byte) bool { return bytes.Contains(req, []byte("\x02insert\x00\x07\x00\x00\x00outbox\x00")) })
	_, err := s.AddOutbox(ctx, recs)
	require.Error(t, err, "no answer, no success")
	require.Equal(t, 1, p.Cuts())
	_, err = s.AddOutbox(ctx, recs)
	require.NoError(t, err, "the handler's second run")
	assert.EqualValues(t, 2, count(t, direct, "outbox", bson.D{}))
	due, err := direct.DueOutbox(ctx, now, 10)
	require.NoError(t, err)
	assert.Len(t, due, 2)
}
