// Package consumetest is the conformance suite of consume.Store, with the
// Runner run over each implementation: every store runs TestStore in its
// own tests.
package consumetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/consume"
	"dealroom/room"
)

// Store is what the suite needs: the leases and cursors, and the rooms
// whose heads they follow.
type Store interface {
	consume.Store
	room.Store
}

// Alice is the staff member who makes the suite's rooms.
var Alice = dealroom.Actor{ID: "alice", Name: "Alice", Email: "alice@bank.example", Kind: dealroom.Staff, Role: dealroom.Admin}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"LeaseOneHolder", testLeaseOneHolder},
		{"LeaseExpiresAndEpochGrows", testLeaseExpiry},
		{"LeaseRelease", testLeaseRelease},
		{"LeaseRace", testLeaseRace},
		{"CursorsOnlyMoveForward", testCursors},
		{"HeadsPageThroughEveryRoom", testHeads},
		{"RunnerHandlesEachEventInOrder", testRunnerOrder},
		{"RunnerStartsAtTheHeads", testRunnerStart},
		{"RunnerRetriesAFailedEvent", testRunnerRetry},
		{"TwoRunnersOneLease", testTwoRunners},
		{"RunnerGathersWakesOfAGap", testRunnerWakeGap},
		{"RunnerSkipsAnIdleConsumer", testRunnerIdle},
		{"RunnerStopsWhenTheLeaseIsLost", testLeaseLost},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func testLeaseOneHolder(t *testing.T, st Store) {
	ctx := context.Background()
	l, held, err := st.AcquireLease(ctx, "mail", "a", t0, time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	assert.Equal(t, "a", l.Holder)
	assert.True(t, l.Until.Equal(t0.Add(time.Minute)), "until %v", l.Until)
	epoch := l.Epoch

	l, held, err = st.AcquireLease(ctx, "mail", "b", t0.Add(30*time.Second), time.Minute)
	require.NoError(t, err)
	assert.False(t, held, "another holder waits")
	assert.Equal(t, "a", l.Holder)

	l, held, err = st.AcquireLease(ctx, "mail", "a", t0.Add(40*time.Second), time.Minute)
	require.NoError(t, err)
	assert.True(t, held, "the holder renews")
	assert.Equal(t, epoch, l.Epoch, "a renewal keeps the epoch")
	assert.True(t, l.Until.Equal(t0.Add(100*time.Second)))

	_, held, err = st.AcquireLease(ctx, "mail", "b", t0.Add(90*time.Second), time.Minute)
	require.NoError(t, err)
	assert.False(t, held, "the renewal counts")

	_, held, err = st.AcquireLease(ctx, "webhooks", "b", t0, time.Minute)
	require.NoError(t, err)
	assert.True(t, held, "leases of other names are apart")
}

func testLeaseExpiry(t *testing.T, st Store) {
	ctx := context.Background()
	la, held, err := st.AcquireLease(ctx, "mail", "a", t0, time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	lb, held, err := st.AcquireLease(ctx, "mail", "b", t0.Add(time.Minute), time.Minute)
	require.NoError(t, err)
	require.True(t, held, "an expired lease is taken over")
	assert.Equal(t, "b", lb.Holder)
	assert.Greater(t, lb.Epoch, la.Epoch, "the epoch grows with a new holder")

	_, held, err = st.AcquireLease(ctx, "mail", "a", t0.Add(70*time.Second), time.Minute)
	require.NoError(t, err)
	assert.False(t, held, "the old holder cannot renew what it lost")
}

func testLeaseRelease(t *testing.T, st Store) {
	ctx := context.Background()
	_, held, err := st.AcquireLease(ctx, "mail", "a", t0, time.Minute)
	require.NoError(t, err)
	require.True(t, held)
	require.NoError(t, st.ReleaseLease(ctx, "mail", "b"), "a non-holder's release is nothing")
	_, held, err = st.AcquireLease(ctx, "mail", "b", t0.Add(time.Second), time.Minute)
	require.NoError(t, err)
	assert.False(t, held)
	require.NoError(t, st.ReleaseLease(ctx, "mail", "a"))
	l, held, err := st.AcquireLease(ctx, "mail", "b", t0.Add(2*time.Second), time.Minute)
	require.NoError(t, err)
	assert.True(t, held, "a released lease is taken at once")
	assert.Equal(t, "b", l.Holder)
}

func testLeaseRace(t *testing.T, st Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	var holders []string
	for i := range n {
		wg.Go(func() {
			holder := fmt.Sprint("h", i)
			_, held, err := st.AcquireLease(ctx, "race", holder, t0, time.Minute)
			assert.NoError(t, err)
			if held {
				mu.Lock()
				holders = append(holders, holder)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, holders, 1, "one holder of %d", n)
	l, held, err := st.AcquireLease(ctx, "race", holders[0], t0.Add(time.Second), time.Minute)
	require.NoError(t, err)
	assert.True(t, held)
	assert.Equal(t, holders[0], l.Holder)
}

func testCursors(t *testing.T, st Store) {
	ctx := context.Background()
	got, err := st.Cursors(ctx, "mail", []string{"r1", "r2"})
	require.NoError(t, err)
	assert.Empty(t, got, "no cursor before the first move")

	require.NoError(t, st.Advance(ctx, "mail", map[string]int64{"r1": 5}))
	require.NoError(t, st.Advance(ctx, "mail", map[string]int64{"r1": 3}))
	require.NoError(t, st.Advance(ctx, "hooks", map[string]int64{"r2": 9}))
	require.NoError(t, st.Advance(ctx, "mail", map[string]int64{consume.Started: 1}))
	got, err = st.Cursors(ctx, "mail", []string{"r1", "r2", consume.Started})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"r1": 5, consume.Started: 1}, got, "a cursor never moves back; consumers are apart")

	require.NoError(t, st.Advance(ctx, "mail", map[string]int64{"r1": 7, "r2": 2, "r3": 4}))
	require.NoError(t, st.Advance(ctx, "mail", map[string]int64{"r1": 6, "r2": 3}))
	got, err = st.Cursors(ctx, "mail", []string{"r1", "r2", "r3"})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"r1": 7, "r2": 3, "r3": 4}, got, "several at once, each only forward")
	require.NoError(t, st.Advance(ctx, "mail", nil))
}

// env is a room service over the store, to make rooms and events.
type env struct {
	svc *room.Service
	st  Store
}

func newEnv(st Store) *env {
	return &env{svc: &room.Service{Store: st}, st: st}
}

func (e *env) room(t *testing.T, name string) string {
	t.Helper()
	r, err := e.svc.CreateRoom(context.Background(), Alice, room.Draft{Name: name, Company: "Acme"}, "")
	require.NoError(t, err)
	return r.ID
}

func (e *env) post(t *testing.T, roomID, body string) int64 {
	t.Helper()
	res, err := e.svc.PostMessage(context.Background(), Alice, roomID, room.MessageDraft{Body: body}, "")
	require.NoError(t, err)
	return res.Seq
}

func testHeads(t *testing.T, st Store) {
	ctx := context.Background()
	e := newEnv(st)
	want := map[string]int64{}
	for i := range 5 {
		id := e.room(t, fmt.Sprint("Room ", i))
		var seq int64 = 1
		for j := range i {
			seq = e.post(t, id, fmt.Sprint("hello ", j))
		}
		want[id] = seq
	}
	got := map[string]int64{}
	after := ""
	pages := 0
	for {
		heads, err := st.Heads(ctx, after, 2)
		require.NoError(t, err)
		if len(heads) == 0 {
			break
		}
		pages++
		assert.LessOrEqual(t, len(heads), 2)
		for _, h := range heads {
			assert.Greater(t, h.Room, after, "in the order of ids")
			after = h.Room
			got[h.Room] = h.Seq
		}
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 3, pages)
}

// recorder is a consumer that records what it was handed.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]int64 // room → seqs
	fail func(ev room.Event) error
}

func (r *recorder) handle(_ context.Context, ev room.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return err
		}
	}
	if r.seen == nil {
		r.seen = map[string][]int64{}
	}
	r.seen[ev.RoomID] = append(r.seen[ev.RoomID], ev.Seq)
	return nil
}

func (r *recorder) of(roomID string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seen[roomID]...)
}

func seqs(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func runner(st Store, rec *recorder, holder string) *consume.Runner {
	return &consume.Runner{Store: st, Events: st, Lease: "test", Holder: holder,
		Consumers: []consume.Consumer{{Name: "test", Handle: rec.handle}},
		Interval:  10 * time.Millisecond, LeaseTTL: 3 * time.Second}
}

func testRunnerOrder(t *testing.T, st Store) {
	ctx := context.Background()
	e := newEnv(st)
	rec := &recorder{}
	r := runner(st, rec, "a")
	require.NoError(t, r.Pass(ctx, nil), "the first pass on an empty store")

	a, b := e.room(t, "A"), e.room(t, "B")
	for i := range 3 {
		e.post(t, a, fmt.Sprint("a", i))
	}
	require.NoError(t, r.Pass(ctx, nil))
	assert.Equal(t, seqs(1, 4), rec.of(a), "a room made after the start is read from its first event")
	assert.Equal(t, seqs(1, 1), rec.of(b))

	e.post(t, b, "b")
	require.NoError(t, r.Pass(ctx, []string{b}), "a woken room")
	require.NoError(t, r.Pass(ctx, nil))
	assert.Equal(t, seqs(1, 4), rec.of(a), "nothing twice")
	assert.Equal(t, seqs(1, 2), rec.of(b))

	// A new runner on the same store (a restart) goes on from the cursors.
	rec2 := &recorder{}
	e.post(t, a, "after the restart")
	require.NoError(t, runner(st, rec2, "a").Pass(ctx, nil))
	assert.Equal(t, []int64{5}, rec2.of(a))
	assert.Empty(t, rec2.of(b))
}

func testRunnerStart(t *testing.T, st Store) {
	ctx := context.Background()
	e := newEnv(st)
	old := e.room(t, "Old")
	e.post(t, old, "history")
	rec := &recorder{}
	r := runner(st, rec, "a")
	require.NoError(t, r.Pass(ctx, nil))
	assert.Empty(t, rec.of(old), "a consumer new to the store does not act on the history")
	e.post(t, old, "news")
	require.NoError(t, r.Pass(ctx, nil))
	assert.Equal(t, []int64{3}, rec.of(old))
}

func testRunnerRetry(t *testing.T, st Store) {
	ctx := context.Background()
	e := newEnv(st)
	r0 := runner(st, &recorder{}, "a")
	require.NoError(t, r0.Pass(ctx, nil))
	id := e.room(t, "A")
	for i := range 4 {
		e.post(t, id, fmt.Sprint(i))
	}
	broken := true
	rec := &recorder{fail: func(ev room.Event) error {
		if broken && ev.Seq == 3 {
			return dealroom.Unavailable(fmt.Errorf("mail server down"))
		}
		return nil
	}}
	r := runner(st, rec, "a")
	assert.Error(t, r.Pass(ctx, nil), "the handler's failure is reported")
	assert.Equal(t, seqs(1, 2), rec.of(id), "stops at the failed event")
	assert.Error(t, r.Pass(ctx, nil))
	assert.Equal(t, seqs(1, 2), rec.of(id), "the cursor moved past what succeeded")
	broken = false
	require.NoError(t, r.Pass(ctx, nil))
	assert.Equal(t, seqs(1, 5), rec.of(id), "the failed event and those after it come again")
}

func testTwoRunners(t *testing.T, st Store) {
	e := newEnv(st)
	require.NoError(t, runner(st, &recorder{}, "x").Pass(context.Background(), nil))
	id := e.room(t, "A")
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range []string{"a", "b"} {
		r := runner(st, rec, h)
		wg.Go(func() { r.Run(ctx) })
	}
	for i := range 20 {
		e.post(t, id, fmt.Sprint(i))
	}
	require.Eventually(t, func() bool { return len(rec.of(id)) >= 21 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	wg.Wait()
	assert.Equal(t, seqs(1, 21), rec.of(id), "every event once, in order, with two instances")
}

// advances counts a store's Advance calls.
type advances struct {
	Store
	mu sync.Mutex
	n  int
}

func (a *advances) Advance(ctx context.Context, consumer string, seqs map[string]int64) error {
	a.mu.Lock()
	a.n++
	a.mu.Unlock()
	return a.Store.Advance(ctx, consumer, seqs)
}

func (a *advances) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// testRunnerWakeGap: the first Wake after a quiet spell is handled at
// once; the wakes that follow within the gap are handled together, with
// one write of the cursors, not one each (each a durable commit on the
// embedded store).
func testRunnerWakeGap(t *testing.T, st Store) {
	e := newEnv(st)
	require.NoError(t, runner(st, &recorder{}, "x").Pass(context.Background(), nil))
	id := e.room(t, "A")
	counted := &advances{Store: st}
	rec := &recorder{}
	const gap = 2 * time.Second
	r := &consume.Runner{Store: counted, Events: st, Lease: "test", Holder: "a",
		Consumers: []consume.Consumer{{Name: "test", Handle: rec.handle}},
		Interval:  time.Hour, WakeGap: gap, LeaseTTL: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	// The lease's first full pass reads the room's first event.
	require.Eventually(t, func() bool { return len(rec.of(id)) == 1 }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(gap) // a quiet spell

	woken := time.Now()
	e.post(t, id, "first")
	r.Wake(id)
	require.Eventually(t, func() bool { return len(rec.of(id)) == 2 }, gap/2, time.Millisecond,
		"the first wake after a quiet spell is handled at once, not after the gap")
	before := counted.count()
	for i := range 30 {
		e.post(t, id, fmt.Sprint(i))
		r.Wake(id)
	}
	require.Eventually(t, func() bool { return len(rec.of(id)) == 32 }, 3*gap, 5*time.Millisecond)
	elapsed := time.Since(woken)
	assert.Equal(t, seqs(1, 32), rec.of(id), "every event once, in order")
	// One pass per gap at most, and one for the first wake.
	most := 1 + int(elapsed/gap) + 1
	assert.LessOrEqual(t, counted.count()-before, most,
		"30 wakes in %v move the cursors in at most one write per gap", elapsed)
}

// testRunnerIdle: an idle consumer is handed no event; the full pass
// moves its cursors to the heads, so that once it has work it starts from
// there and not from the history; a consumer beside it is not affected.
func testRunnerIdle(t *testing.T, st Store) {
	ctx := context.Background()
	e := newEnv(st)
	var idle atomic.Bool
	idle.Store(true)
	quiet, busy := &recorder{}, &recorder{}
	r := &consume.Runner{Store: st, Events: st, Lease: "test", Holder: "a",
		Consumers: []consume.Consumer{
			{Name: "quiet", Handle: quiet.handle, Idle: func(context.Context) bool { return idle.Load() }},
			{Name: "busy", Handle: busy.handle},
		}}
	require.NoError(t, r.Pass(ctx, nil), "the first pass on an empty store")
	a, b := e.room(t, "A"), e.room(t, "B")
	for i := range 3 {
		e.post(t, a, fmt.Sprint("a", i))
	}
	require.NoError(t, r.Pass(ctx, []string{a}), "a pass for a woken room")
	require.NoError(t, r.Pass(ctx, nil), "a full pass")
	assert.Empty(t, quiet.of(a), "an idle consumer is handed nothing")
	assert.Empty(t, quiet.of(b))
	assert.Equal(t, seqs(1, 4), busy.of(a), "the other consumer is handed every event")
	got, err := st.Cursors(ctx, "quiet", []string{a, b})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{a: 4, b: 1}, got, "the full pass moved its cursors to the heads")

	// Events of a woken pass while idle wait for the next full pass.
	e.post(t, a, "while idle")
	require.NoError(t, r.Pass(ctx, []string{a}))
	got, err = st.Cursors(ctx, "quiet", []string{a})
	require.NoError(t, err)
	assert.Equal(t, int64(4), got[a], "a woken pass leaves an idle consumer alone")
	require.NoError(t, r.Pass(ctx, nil))

	idle.Store(false)
	e.post(t, a, "with work")
	e.post(t, b, "with work")
	require.NoError(t, r.Pass(ctx, []string{a}))
	require.NoError(t, r.Pass(ctx, nil))
	assert.Equal(t, []int64{6}, quiet.of(a), "handed what came after it had work, not the history")
	assert.Equal(t, []int64{2}, quiet.of(b))
	assert.Equal(t, seqs(1, 6), busy.of(a))
}

// logBuffer is a log a test reads while a runner writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) has(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

func testLeaseLost(t *testing.T, st Store) {
	e := newEnv(st)
	require.NoError(t, runner(st, &recorder{}, "x").Pass(context.Background(), nil))
	id := e.room(t, "A")
	// Runner a's clock stands still at t0: once another holder has the
	// lease until after t0, a cannot take it back.
	recA, logA := &recorder{}, &logBuffer{}
	a := runner(st, recA, "a")
	a.Now = func() time.Time { return t0 }
	a.LeaseTTL = 300 * time.Millisecond
	a.Log = slog.New(slog.NewTextHandler(logA, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { a.Run(ctx) })
	require.Eventually(t, func() bool { return len(recA.of(id)) == 1 }, 30*time.Second, 5*time.Millisecond, "a holds the lease and works")

	_, held, err := st.AcquireLease(context.Background(), "test", "b", t0.Add(time.Hour), time.Hour)
	require.NoError(t, err)
	require.True(t, held, "b takes the lease over (by its clock, a's expired)")
	require.Eventually(t, func() bool { return logA.has("lease lost") }, 30*time.Second, 5*time.Millisecond)

	e.post(t, id, "after the loss")
	a.Wake(id)
	recB := &recorder{}
	b := runner(st, recB, "b")
	b.Now = func() time.Time { return t0.Add(time.Hour) }
	wg.Go(func() { b.Run(ctx) })
	require.Eventually(t, func() bool { return len(recB.of(id)) == 1 }, 30*time.Second, 5*time.Millisecond)
	assert.Equal(t, []int64{2}, recB.of(id), "b goes on from a's cursor")
	assert.Equal(t, []int64{1}, recA.of(id), "a handles nothing once it lost the lease")
	cancel()
}
