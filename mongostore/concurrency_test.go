package mongostore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
	"dealroom/mongostore"
	"dealroom/room"
	"dealroom/room/roomtest"
	"dealroom/task"
)

// TestTwoInstancesOnOneRoom: two Stores on one database, as two server
// instances would be, write to the same room at once. Every acknowledged
// event is in the log at the seq it was acknowledged with, seqs are 1..n
// without gaps or duplicates, and the read models hold every task.
func TestTwoInstancesOnOneRoom(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	stores := []*mongostore.Store{open(t, uri, db), open(t, uri, db)}
	var mu sync.Mutex
	acked := map[int64]string{} // seq → event id
	svcs := make([]*room.Service, len(stores))
	for i, s := range stores {
		svcs[i] = &room.Service{Store: s, Committed: func(ev room.Event) {
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := acked[ev.Seq]; dup {
				t.Errorf("seq %d acknowledged twice: %s and %s", ev.Seq, prev, ev.ID)
			}
			acked[ev.Seq] = ev.ID
		}}
	}
	r := seedRoom(t, ctx, svcs[0])
	const perStore, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perStore*each)
	for i := range stores {
		for w := 0; w < perStore; w++ {
			wg.Add(1)
			go func(i, w int) {
				defer wg.Done()
				for k := 0; k < each; k++ {
					_, err := svcs[i].CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: fmt.Sprintf("s%d-w%d-%d", i, w, k)}, "")
					errs <- err
				}
			}(i, w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n := 3 + len(stores)*perStore*each
	for _, s := range stores {
		evs, err := s.Events(ctx, r, 0, 10000, false)
		require.NoError(t, err)
		require.Len(t, evs, n)
		ids := map[string]bool{}
		for i, e := range evs {
			assert.EqualValues(t, i+1, e.Seq, "seqs are 1..n")
			assert.False(t, ids[e.ID], "no event twice")
			ids[e.ID] = true
		}
		for seq, id := range acked {
			assert.Equal(t, id, evs[seq-1].ID, "acknowledged event %d is in the log", seq)
		}
		ts, err := s.Tasks(ctx, r)
		require.NoError(t, err)
		assert.Len(t, ts, len(stores)*perStore*each)
		rm, err := s.Room(ctx, r)
		require.NoError(t, err)
		assert.EqualValues(t, n, rm.Head)
	}
	assert.Len(t, acked, n, "every event was acknowledged once")
	t.Logf("seq clashes between the instances: %d and %d", mongostore.Clashes(stores[0]), mongostore.Clashes(stores[1]))
}

// TestSameKeyOnTwoInstances: retries of one request that reach two
// instances at once are applied once.
func TestSameKeyOnTwoInstances(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	stores := []*mongostore.Store{open(t, uri, db), open(t, uri, db)}
	r := seedRoom(t, ctx, &room.Service{Store: stores[0]})
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := (&room.Service{Store: stores[i%2]}).CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Once"}, "the-key")
			errs[i] = err
			if err == nil {
				ids[i] = res.ID
			}
		}(i)
	}
	wg.Wait()
	for i := range ids {
		require.NoError(t, errs[i])
		assert.Equal(t, ids[0], ids[i])
	}
	evs, err := stores[1].Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 4)
}

func TestDecisionsSerializeAcrossInstances(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	stores := []*mongostore.Store{open(t, uri, db), open(t, uri, db)}
	r := seedRoom(t, ctx, &room.Service{Store: stores[0]})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, conflicts int
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := (&room.Service{Store: stores[i%2]}).AddMember(ctx, roomtest.Alice, r,
				room.MemberDraft{UserID: "dave", Name: "Dave", Kind: dealroom.Customer}, "")
			mu.Lock()
			defer mu.Unlock()
			switch dealroom.ErrorCode(err) {
			case "":
				ok++
			case dealroom.ECONFLICT:
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}(i)
	}
	wg.Wait()
	assert.Equal(t, 1, ok)
	assert.Equal(t, 19, conflicts)
}

func TestContextDeadlines(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db)
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := svc.CreateTask(done, roomtest.Alice, r, task.Draft{Title: "Never"}, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Tasks(done, r)
	assert.Error(t, err)

	// A decision that outlives its deadline writes nothing.
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	_, err = s.Execute(short, room.Command{Room: r, Actor: "alice", Decide: func(v room.View) (room.Decision, error) {
		<-short.Done()
		rm, err := v.Room()
		if err != nil {
			return room.Decision{}, err
		}
		return room.Decision{Event: room.Event{ID: "e_x", Type: room.RoomUpdated, At: time.Now().UTC(), Visibility: dealroom.Shared,
			Actor: room.EventActor{ID: "alice", Kind: dealroom.Staff}, Data: mustJSON(t, rm)}}, nil
	}})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	evs, err := s.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 3)
}

// TestConnectionLoss: with the server out of reach, writes and reads fail
// with EUNAVAILABLE within the server selection timeout, nothing is
// written, and the store works again once the server is back.
func TestConnectionLoss(t *testing.T) {
	s, direct, p := proxied(t, mongostore.WithServerSelectionTimeout(500*time.Millisecond))
	ctx := ctxT(t)
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)

	p.Refuse(true)
	p.CutAll()
	start := time.Now()
	_, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "During the outage"}, "k1")
	require.Error(t, err)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err), "%v", err)
	_, err = s.Tasks(ctx, r)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(err), "%v", err)
	assert.Equal(t, dealroom.EUNAVAILABLE, dealroom.ErrorCode(s.Ping(ctx)))
	assert.Less(t, time.Since(start), 20*time.Second)
	evs, err := direct.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 3, "nothing was written")

	p.Refuse(false)
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 15*time.Second, 50*time.Millisecond)
	res, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "During the outage"}, "k1")
	require.NoError(t, err)
	evs, err = direct.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 2, 3, 4}, seqsOf(evs))
	got, err := direct.Task(ctx, r, res.ID)
	require.NoError(t, err)
	assert.NotNil(t, got)

	// The connection drops after the event is in: the writer cannot
	// update the read models, and still reports the write done, since
	// it is (told otherwise, a client would make it twice); the room is
	// repaired on its next use.
	mongostore.SetAfterInsert(s, func(room.Event) error { p.Refuse(true); p.CutAll(); return nil })
	half, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Half way"}, "k2")
	mongostore.SetAfterInsert(s, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 5, half.Seq)
	evs, err = direct.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	require.Len(t, evs, 5, "the event is committed")
	later := open(t, testenv.MongoURI(t), s.Database().Name(), mongostore.WithRepairOnOpen(false))
	ts, err := later.Tasks(ctx, r)
	require.NoError(t, err)
	assert.Len(t, ts, 2, "and its effects appear once the room is next used")

	p.Refuse(false)
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 15*time.Second, 50*time.Millisecond)
	ts, err = s.Tasks(ctx, r)
	require.NoError(t, err)
	assert.Len(t, ts, 2, "the writer reads them too")
	again, err := svc.CreateTask(ctx, roomtest.Alice, r, task.Draft{Title: "Half way"}, "k2")
	require.NoError(t, err, "a retry with the key gets the first result")
	assert.Equal(t, half.ID, again.ID)
	evs, err = direct.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 5)
}
