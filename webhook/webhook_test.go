package webhook_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/consume"
	"dealroom/internal/netguard"
	"dealroom/internal/testclock"
	"dealroom/room"
	"dealroom/webhook"
	wt "dealroom/webhook/webhooktest"
)

var (
	t0    = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	admin = dealroom.Actor{ID: "ada", Name: "Ada", Kind: dealroom.Staff, Role: dealroom.Admin}
	rep   = dealroom.Actor{ID: "rex", Name: "Rex", Kind: dealroom.Staff, Role: dealroom.Rep}
)

// TestSignatureVector checks Sign against the example of the Standard
// Webhooks specification.
func TestSignatureVector(t *testing.T) {
	sig, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}

func TestSecretShape(t *testing.T) {
	s := webhook.NewSecret()
	require.True(t, strings.HasPrefix(s, "whsec_"))
	assert.True(t, wt.Verify(s, "msg_x", "1", []byte("{}"), mustSign(t, s, "msg_x", time.Unix(1, 0), []byte("{}"))))
	assert.NotEqual(t, s, webhook.NewSecret())
}

func mustSign(t *testing.T, secret, id string, ts time.Time, body []byte) string {
	sig, err := webhook.Sign(secret, id, ts, body)
	require.NoError(t, err)
	return sig
}

// env is one server's webhook machinery on a bbolt store, driven by hand:
// pump runs a pass of the consumer and of the sender.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *testclock.Clock
	store  *boltstore.Store
	rooms  *room.Service
	svc    *webhook.Service
	sender *webhook.Sender
	runner *consume.Runner
	paused []webhook.Endpoint
}

func newEnv(t *testing.T, guard *netguard.Guard) *env {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: context.Background(), clock: testclock.New(t0), store: st}
	e.rooms = &room.Service{Store: st, Now: e.clock.Now}
	e.svc = &webhook.Service{Store: st, Rooms: st, Guard: guard, Now: e.clock.Now}
	e.sender = &webhook.Sender{Service: e.svc, Client: guard.Client(), Timeout: time.Second,
		Jitter: func() float64 { return 0.5 }}
	e.sender.Paused = func(_ context.Context, ep webhook.Endpoint) { e.paused = append(e.paused, ep) }
	e.runner = &consume.Runner{Store: st, Events: st, Lease: webhook.Consumer, Holder: "test", Consumers: []consume.Consumer{e.svc.Consumer()}}
	e.pump() // the consumer starts at the heads
	return e
}

func (e *env) pump() {
	e.t.Helper()
	require.NoError(e.t, e.runner.Pass(e.ctx, nil))
	require.NoError(e.t, e.sender.Send(e.ctx))
}

// endpoint makes an endpoint at the receiver's /hook and gives the
// receiver its secret.
func (e *env) endpoint(r *wt.Receiver, in webhook.Input) webhook.Endpoint {
	e.t.Helper()
	in.URL = r.URL + "/hook"
	ep, secret, _, err := e.svc.Create(e.ctx, admin, in, "")
	require.NoError(e.t, err)
	r.SetSecret("/hook", secret)
	return ep
}

func (e *env) room(name string, tags ...string) string {
	e.t.Helper()
	r, err := e.rooms.CreateRoom(e.ctx, admin, room.Draft{Name: name, Company: "Acme", Tags: tags}, "")
	require.NoError(e.t, err)
	return r.ID
}

func (e *env) post(roomID, body string, vis dealroom.Visibility) {
	e.t.Helper()
	_, err := e.rooms.PostMessage(e.ctx, admin, roomID, room.MessageDraft{Body: body, Visibility: vis}, "")
	require.NoError(e.t, err)
}

// events returns the ids of the room's events in seq order.
func (e *env) events(roomID string, sharedOnly bool) []string {
	evs, err := e.store.Events(e.ctx, roomID, 0, 1000, sharedOnly)
	require.NoError(e.t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

// until pumps, moving the clock an hour each time, until done says so.
func (e *env) until(done func() bool) {
	e.t.Helper()
	for range 60 {
		e.pump()
		if done() {
			return
		}
		e.clock.Advance(time.Hour)
	}
	e.t.Fatal("never done")
}

// TestEveryEventInOrderThroughFaults: 500s, resets, hangs and slow answers
// in the way of two rooms' events; each arrives, in order per room, a
// repeat only under its id.
func TestEveryEventInOrderThroughFaults(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	e.endpoint(r, webhook.Input{})
	a, b := e.room("A"), e.room("B")
	r.Next(wt.Fail500, wt.Reset, wt.Hang, wt.Slow, wt.Fail500, wt.Reset, wt.OK, wt.Hang, wt.Fail500, wt.Slow)
	for i := range 12 {
		e.post(a, fmt.Sprint("a", i), dealroom.Shared)
		e.post(b, fmt.Sprint("b", i), dealroom.Shared)
		if i%4 == 0 {
			e.pump()
		}
	}
	e.until(func() bool { return len(r.Got()) >= len(e.events(a, false))+len(e.events(b, false)) })
	got := wt.Arrived(t, r)
	assert.Equal(t, e.events(a, false), got[a])
	assert.Equal(t, e.events(b, false), got[b])
	assert.Greater(t, r.Attempts(), len(r.Got()), "the faults happened")

	log, err := e.svc.Deliveries(e.ctx, admin, e.mustOnlyEndpoint().ID, 0)
	require.NoError(t, err)
	require.NotEmpty(t, log)
	failed := 0
	for _, d := range log {
		assert.Equal(t, webhook.Delivered, d.State)
		assert.Equal(t, 204, d.Status)
		if d.Attempts > 1 {
			failed++
		}
	}
	assert.Positive(t, failed, "the log shows the deliveries tried more than once")
}

func (e *env) mustOnlyEndpoint() webhook.Endpoint {
	all, err := e.svc.List(e.ctx, admin)
	require.NoError(e.t, err)
	require.Len(e.t, all, 1)
	return all[0]
}

// TestFailingRoomHoldsOnlyItself: a room whose deliveries fail holds its
// later events back, not the other room's; once it passes, its events
// come in order.
func TestFailingRoomHoldsOnlyItself(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	e.endpoint(r, webhook.Input{})
	a, b := e.room("A"), e.room("B")
	r.FailRoom(a, true)
	for i := range 5 {
		e.post(a, fmt.Sprint("a", i), dealroom.Shared)
		e.post(b, fmt.Sprint("b", i), dealroom.Shared)
	}
	e.until(func() bool { return len(wt.Arrived(t, r)[b]) == len(e.events(b, false)) })
	got := wt.Arrived(t, r)
	assert.Empty(t, got[a])
	assert.Equal(t, e.events(b, false), got[b])
	before := r.Attempts()
	e.pump()
	assert.Equal(t, before, r.Attempts(), "no attempt before the backoff passed")

	r.FailRoom(a, false)
	e.until(func() bool { return len(wt.Arrived(t, r)[a]) == len(e.events(a, false)) })
	assert.Equal(t, e.events(a, false), wt.Arrived(t, r)[a])
}

// TestInternalOnlyToAllowed: an internal note reaches only the endpoint
// allowed internal events; event types and room tags filter too.
func TestInternalOnlyToAllowed(t *testing.T) {
	inside, outside, tagged := wt.StartReceiver(t), wt.StartReceiver(t), wt.StartReceiver(t)
	e := newEnv(t, wt.GuardFor(time.Second, inside, outside, tagged))
	e.endpoint(inside, webhook.Input{Internal: true, Events: []string{room.MessagePosted}})
	e.endpoint(outside, webhook.Input{Events: []string{room.MessagePosted}})
	e.endpoint(tagged, webhook.Input{RoomTags: []string{"emea"}, Internal: true})
	a := e.room("A")
	e.post(a, "for everyone", dealroom.Shared)
	e.post(a, "staff only", dealroom.Internal)
	emea := e.room("E", "emea")
	e.post(emea, "hello", dealroom.Shared)
	e.pump()

	bodies := func(r *wt.Receiver) []string {
		var out []string
		for _, g := range r.Got() {
			assert.Equal(t, room.MessagePosted, g.Event.Type)
			out = append(out, g.Event.RoomID+":"+g.Event.Visibility)
		}
		return out
	}
	assert.ElementsMatch(t, []string{a + ":shared", a + ":internal", emea + ":shared"}, bodies(inside))
	assert.ElementsMatch(t, []string{a + ":shared", emea + ":shared"}, bodies(outside), "no internal event")
	got := wt.Arrived(t, tagged)
	assert.Empty(t, got[a], "a room without the tag")
	assert.Equal(t, e.events(emea, false), got[emea], "every type of the tagged room")
	for _, g := range outside.Got() {
		assert.NotContains(t, string(g.Body), "staff only")
	}
}

// TestPrivateAddressRefused: at creation, a URL naming or resolving to a
// loopback or private address is refused unless the allow-list names it;
// at delivery, the client refuses it too.
func TestPrivateAddressRefused(t *testing.T) {
	r := wt.StartReceiver(t)
	strict := netguard.New(netguard.Config{})
	e := newEnv(t, strict)
	e.svc.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "hooks.example.com":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
		case "inside.example.com":
			return []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.1.2.3")}, nil
		}
		return nil, fmt.Errorf("no such host")
	}
	for _, u := range []string{r.URL + "/hook", "https://localhost/x", "https://10.0.0.7/x", "https://169.254.169.254/latest",
		"https://[::1]/x", "https://inside.example.com/x", "http://hooks.example.com/x", "https://nowhere.example.com/x"} {
		_, _, _, err := e.svc.Create(e.ctx, admin, webhook.Input{URL: u}, "")
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), u)
	}
	_, _, _, err := e.svc.Create(e.ctx, admin, webhook.Input{URL: "https://hooks.example.com/x", Paused: true}, "")
	assert.NoError(t, err, "a public address")
	_, _, _, err = e.svc.Create(e.ctx, rep, webhook.Input{URL: "https://hooks.example.com/x"}, "")
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "admins only")

	allowed := &webhook.Service{Store: e.store, Rooms: e.store, Guard: r.Guard(time.Second), Now: e.clock.Now}
	ep, secret, _, err := allowed.Create(e.ctx, admin, webhook.Input{URL: r.URL + "/hook"}, "")
	require.NoError(t, err, "allowed by the list")
	r.SetSecret("/hook", secret)
	// A name, resolved when it is dialled.
	byName, _, _, err := allowed.Create(e.ctx, admin, webhook.Input{URL: strings.Replace(r.URL, "127.0.0.1", "localhost", 1) + "/hook"}, "")
	require.NoError(t, err, "allowed by the list")
	// The server's own sender keeps the strict guard: the deliveries are
	// refused before they connect.
	a := e.room("A")
	e.pump()
	assert.Zero(t, r.Attempts())
	for _, id := range []string{ep.ID, byName.ID} {
		log, err := e.svc.Deliveries(e.ctx, admin, id, 0)
		require.NoError(t, err)
		require.NotEmpty(t, log)
		assert.Contains(t, log[0].LastError, "destination refused")
		assert.Equal(t, webhook.Pending, log[0].State)
		assert.Equal(t, a, log[0].RoomID)
	}
}

// TestPausedAfterADay: an endpoint that fails for a day is paused, its
// admins told; while paused nothing is tried; resumed, it gets every
// event in order.
func TestPausedAfterADay(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	ep := e.endpoint(r, webhook.Input{})
	r.Always(wt.Fail500)
	a := e.room("A")
	e.post(a, "one", dealroom.Shared)
	e.until(func() bool { return len(e.paused) > 0 })
	got, err := e.svc.Get(e.ctx, admin, ep.ID)
	require.NoError(t, err)
	assert.True(t, got.Paused)
	assert.Contains(t, got.PausedReason, "500")
	assert.WithinDuration(t, t0.Add(24*time.Hour), e.clock.Now(), 3*time.Hour, "after a day of retries")
	attempts := r.Attempts()
	assert.Greater(t, attempts, 5, "retried with backoff meanwhile")
	e.post(a, "two", dealroom.Shared)
	e.clock.Advance(2 * time.Hour)
	e.pump()
	assert.Equal(t, attempts, r.Attempts(), "nothing tried while paused")

	r.Always(wt.OK)
	_, err = e.svc.Update(e.ctx, admin, ep.ID, webhook.Patch{Paused: dealroom.Some(false)})
	require.NoError(t, err)
	e.pump()
	assert.Equal(t, e.events(a, false), wt.Arrived(t, r)[a], "every event, in order, once resumed")
}

// TestReplay sends a room's events again from a seq, under their ids.
func TestReplay(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	ep := e.endpoint(r, webhook.Input{})
	a := e.room("A")
	for i := range 4 {
		e.post(a, fmt.Sprint(i), dealroom.Shared)
	}
	e.pump()
	first := r.Got()
	require.Len(t, first, len(e.events(a, false)))
	res, err := e.svc.Replay(e.ctx, admin, ep.ID, a, 3)
	require.NoError(t, err)
	assert.Equal(t, len(first)-2, res.Queued)
	e.pump()
	again := r.Got()[len(first):]
	require.Len(t, again, len(first)-2)
	for i, g := range again {
		assert.Equal(t, first[i+2].ID, g.ID, "the same webhook-id")
		assert.Equal(t, int64(i+3), g.Event.Seq)
	}
	_, err = e.svc.Replay(e.ctx, admin, ep.ID, "nope", 1)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	_, err = e.svc.Replay(e.ctx, admin, ep.ID, a, 0)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
}

// TestRotatedSecret: deliveries after a rotation are signed with the new
// secret.
func TestRotatedSecret(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	ep := e.endpoint(r, webhook.Input{})
	_, secret, err := e.svc.RotateSecret(e.ctx, admin, ep.ID)
	require.NoError(t, err)
	e.room("A")
	e.pump()
	assert.NotEmpty(t, r.BadSignatures(), "the old secret no longer verifies")
	r.SetSecret("/hook", secret)
	e.clock.Advance(time.Hour)
	e.pump()
	assert.NotEmpty(t, r.Got())
}

// TestCreateWithKeyConcurrently: requests racing with one Idempotency-Key
// (a client retrying while its first request is still running) make one
// endpoint, and every one of them is answered its secret.
func TestCreateWithKeyConcurrently(t *testing.T) {
	e := newEnv(t, netguard.New(netguard.Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}))
	in := webhook.Input{URL: "https://10.1.2.3/hook", Events: []string{room.TaskUpdated}}
	type answer struct {
		id, secret string
		err        error
	}
	answers := make(chan answer, 8)
	for range 8 {
		go func() {
			ep, secret, _, err := e.svc.Create(e.ctx, admin, in, "retry-key")
			answers <- answer{ep.ID, secret, err}
		}()
	}
	var first answer
	for i := range 8 {
		a := <-answers
		require.NoError(t, a.err)
		if i == 0 {
			first = a
		}
		assert.Equal(t, first, a)
	}
	all, err := e.svc.List(e.ctx, admin)
	require.NoError(t, err)
	require.Len(t, all, 1)

	// Another admin's same key is another request.
	other := dealroom.Actor{ID: "bea", Name: "Bea", Kind: dealroom.Staff, Role: dealroom.Admin}
	ep, _, replayed, err := e.svc.Create(e.ctx, other, in, "retry-key")
	require.NoError(t, err)
	assert.False(t, replayed)
	assert.NotEqual(t, first.id, ep.ID)
}

// countingStore counts the pending deliveries read.
type countingStore struct {
	webhook.Store
	calls, rows int
}

func (c *countingStore) PendingDeliveries(ctx context.Context, endpoint, afterRoom string, afterSeq int64, limit int) ([]webhook.Delivery, error) {
	ds, err := c.Store.PendingDeliveries(ctx, endpoint, afterRoom, afterSeq, limit)
	c.calls++
	c.rows += len(ds)
	return ds, err
}

// TestWaitingRoomReadOnce: a pass does not read through all the
// deliveries waiting behind a room's failed one: it moves on to the next
// room after the first (an endpoint failing for hours can have thousands
// queued).
func TestWaitingRoomReadOnce(t *testing.T) {
	r := wt.StartReceiver(t)
	e := newEnv(t, r.Guard(time.Second))
	e.endpoint(r, webhook.Input{})
	a, b := e.room("A"), e.room("B")
	r.FailRoom(a, true)
	const n = 450
	for i := range n {
		e.post(a, fmt.Sprint("a", i), dealroom.Shared)
	}
	e.post(b, "b", dealroom.Shared)
	e.until(func() bool { return len(wt.Arrived(t, r)[b]) == len(e.events(b, false)) })

	cs := &countingStore{Store: e.store}
	e.svc.Store = cs
	e.clock.Advance(2 * time.Hour) // every retry due
	attempts := r.Attempts()
	require.NoError(t, e.sender.Send(e.ctx))
	assert.Equal(t, attempts+1, r.Attempts(), "one attempt: the room's first delivery; the others wait for it")
	assert.LessOrEqual(t, cs.calls, 2, "a page for the waiting room, one for what is after it")
	assert.Less(t, cs.rows, n, "the waiting room's deliveries are not all read")

	r.FailRoom(a, false)
	e.svc.Store = e.store
	e.until(func() bool { return len(wt.Arrived(t, r)[a]) == len(e.events(a, false)) })
	assert.Equal(t, e.events(a, false), wt.Arrived(t, r)[a], "then all of them, in order")
}
