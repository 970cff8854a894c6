// Package webhooktest is the conformance suite of webhook.Store, which
// every implementation runs in its own tests, and a receiver of webhooks
// on 127.0.0.1 that verifies each delivery's signature on its own.
package webhooktest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/webhook"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Endpoint returns an endpoint with the id, made at t0.
func Endpoint(id string) webhook.Endpoint {
	return webhook.Endpoint{ID: id, URL: "https://hooks.example.com/" + id, Events: []string{}, RoomTags: []string{},
		Secret: webhook.NewSecret(), CreatedBy: "admin", CreatedByEmail: "admin@seller.example", CreatedAt: t0, UpdatedAt: t0}
}

// Delivery returns the pending delivery of event seq of room to the
// endpoint.
func Delivery(endpoint, room string, seq int64) webhook.Delivery {
	ev := fmt.Sprintf("%s-e%d", room, seq)
	return webhook.Delivery{ID: webhook.Key(endpoint, ev), Endpoint: endpoint, RoomID: room, Seq: seq, EventID: ev,
		Type: "message.posted", State: webhook.Pending, CreatedAt: t0, Due: t0, At: t0.Add(time.Duration(seq) * time.Second)}
}

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) webhook.Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, st webhook.Store)
	}{
		{"Endpoints", testEndpoints},
		{"UpdateRace", testUpdateRace},
		{"AddOncePerKey", testAddOnce},
		{"PendingInOrder", testPending},
		{"Log", testLog},
		{"Delete", testDelete},
		{"NoDeliveryOfAGoneEndpoint", testGoneEndpoint},
		{"Sweep", testSweep},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func testEndpoints(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	_, err := st.Endpoint(ctx, "wh1")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	a, b := Endpoint("wh1"), Endpoint("wh2")
	a.Events, a.RoomTags, a.Internal = []string{"task.created"}, []string{"emea"}, true
	b.CreatedAt = t0.Add(time.Minute)
	require.NoError(t, st.CreateEndpoint(ctx, b))
	require.NoError(t, st.CreateEndpoint(ctx, a))
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(st.CreateEndpoint(ctx, a)), "an id is taken once")
	got, err := st.Endpoint(ctx, "wh1")
	require.NoError(t, err)
	assert.Equal(t, a, got, "read back as written, secret included")
	all, err := st.Endpoints(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, []string{"wh1", "wh2"}, []string{all[0].ID, all[1].ID}, "oldest first")

	up, err := st.UpdateEndpoint(ctx, "wh1", func(e *webhook.Endpoint) error {
		e.Paused, e.PausedReason, e.PausedAt = true, "failing", t0.Add(time.Hour)
		return nil
	})
	require.NoError(t, err)
	assert.True(t, up.Paused)
	got, err = st.Endpoint(ctx, "wh1")
	require.NoError(t, err)
	assert.Equal(t, up, got)
	_, err = st.UpdateEndpoint(ctx, "wh1", func(e *webhook.Endpoint) error { e.URL = "x"; return dealroom.Invalid("url", "no") })
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
	got, _ = st.Endpoint(ctx, "wh1")
	assert.Equal(t, a.URL, got.URL, "a refused update writes nothing")
	_, err = st.UpdateEndpoint(ctx, "nope", func(*webhook.Endpoint) error { return nil })
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
}

// testUpdateRace: concurrent updates each see the other's write.
func testUpdateRace(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.UpdateEndpoint(ctx, "wh1", func(e *webhook.Endpoint) error {
				e.RoomTags = append(e.RoomTags, fmt.Sprint(i))
				return nil
			})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	got, err := st.Endpoint(ctx, "wh1")
	require.NoError(t, err)
	assert.Len(t, got.RoomTags, 8, "no update lost")
}

func testAddOnce(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	ds := []webhook.Delivery{Delivery("wh1", "r1", 1), Delivery("wh1", "r1", 2)}
	n, err := st.AddDeliveries(ctx, ds)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	sent := ds[0]
	sent.State, sent.Attempts, sent.DeliveredAt = webhook.Delivered, 1, t0
	require.NoError(t, st.SaveDelivery(ctx, sent))
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := st.AddDeliveries(ctx, []webhook.Delivery{Delivery("wh1", "r1", 1), Delivery("wh1", "r1", 3)})
			assert.NoError(t, err)
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, total, "of racing adds, one inserts the new delivery; none replaces the delivered one")
	p, err := st.PendingDeliveries(ctx, "wh1", "", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []int64{2, 3}, seqs(p))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(st.SaveDelivery(ctx, Delivery("wh1", "r9", 1))))
}

func seqs(ds []webhook.Delivery) []int64 {
	out := []int64{}
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func keys(ds []webhook.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s/%d", d.RoomID, d.Seq))
	}
	return out
}

// testPending: the walk is in (room, seq) order, by pages, of one
// endpoint, without the delivered.
func testPending(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh2")))
	var ds []webhook.Delivery
	for _, r := range []string{"rb", "ra"} {
		for _, seq := range []int64{10, 2, 1, 300} {
			ds = append(ds, Delivery("wh1", r, seq))
		}
	}
	ds = append(ds, Delivery("wh2", "ra", 5))
	_, err := st.AddDeliveries(ctx, ds)
	require.NoError(t, err)
	done := Delivery("wh1", "ra", 2)
	done.State = webhook.Delivered
	require.NoError(t, st.SaveDelivery(ctx, done))

	p, err := st.PendingDeliveries(ctx, "wh1", "", 0, 4)
	require.NoError(t, err)
	assert.Equal(t, []string{"ra/1", "ra/10", "ra/300", "rb/1"}, keys(p))
	p, err = st.PendingDeliveries(ctx, "wh1", "rb", 1, 4)
	require.NoError(t, err)
	assert.Equal(t, []string{"rb/2", "rb/10", "rb/300"}, keys(p))
	p, err = st.PendingDeliveries(ctx, "wh2", "", 0, 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"ra/5"}, keys(p))

	back := done
	back.State, back.Attempts = webhook.Pending, 0
	require.NoError(t, st.SaveDelivery(ctx, back))
	p, err = st.PendingDeliveries(ctx, "wh1", "", 0, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"ra/1", "ra/2"}, keys(p), "a delivery made pending again is walked again")
}

func testLog(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	var ds []webhook.Delivery
	for seq := range int64(5) {
		ds = append(ds, Delivery("wh1", "r1", seq+1))
	}
	_, err := st.AddDeliveries(ctx, ds)
	require.NoError(t, err)
	d := ds[0]
	d.State, d.Attempts, d.Status, d.LatencyMS, d.LastError = webhook.Pending, 3, 500, 12, "the endpoint answered 500"
	d.At, d.Due, d.FailingSince = t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(time.Minute)
	require.NoError(t, st.SaveDelivery(ctx, d))
	got, err := st.Deliveries(ctx, "wh1", 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"r1/1", "r1/5", "r1/4"}, keys(got), "latest attempt first")
	assert.Equal(t, d, got[0], "every field read back")
}

func testDelete(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh2")))
	_, err := st.AddDeliveries(ctx, []webhook.Delivery{Delivery("wh1", "r1", 1), Delivery("wh2", "r1", 1)})
	require.NoError(t, err)
	require.NoError(t, st.DeleteEndpoint(ctx, "wh1"))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(st.DeleteEndpoint(ctx, "wh1")))
	_, err = st.Endpoint(ctx, "wh1")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	p, err := st.PendingDeliveries(ctx, "wh1", "", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, p, "its deliveries went with it")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(st.SaveDelivery(ctx, Delivery("wh1", "r1", 1))))
	p, err = st.PendingDeliveries(ctx, "wh2", "", 0, 10)
	require.NoError(t, err)
	assert.Len(t, p, 1, "another endpoint's stay")
}

// testGoneEndpoint: deliveries recorded for an endpoint that is deleted
// before or while they are added do not stay (the consumer may have read
// the endpoints before an admin deleted one); nothing would ever send or
// remove them.
func testGoneEndpoint(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh2")))
	require.NoError(t, st.DeleteEndpoint(ctx, "wh1"))
	n, err := st.AddDeliveries(ctx, []webhook.Delivery{Delivery("wh1", "r1", 1), Delivery("wh2", "r1", 1)})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the existing endpoint's delivery is added")
	for _, e := range []string{"wh1", "wh2"} {
		p, err := st.PendingDeliveries(ctx, e, "", 0, 10)
		require.NoError(t, err)
		log, err := st.Deliveries(ctx, e, 10)
		require.NoError(t, err)
		if e == "wh1" {
			assert.Empty(t, p, "nothing pending for the deleted endpoint")
			assert.Empty(t, log)
		} else {
			assert.Len(t, p, 1)
		}
	}

	for i := range 20 {
		id := fmt.Sprint("race", i)
		require.NoError(t, st.CreateEndpoint(ctx, Endpoint(id)))
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := st.AddDeliveries(ctx, []webhook.Delivery{Delivery(id, "r1", 1), Delivery(id, "r1", 2)})
			assert.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			assert.NoError(t, st.DeleteEndpoint(ctx, id))
		}()
		wg.Wait()
		log, err := st.Deliveries(ctx, id, 10)
		require.NoError(t, err)
		require.Empty(t, log, "round %d: a delivery of the deleted endpoint stayed", i)
	}
}

func testSweep(t *testing.T, st webhook.Store) {
	ctx := context.Background()
	require.NoError(t, st.CreateEndpoint(ctx, Endpoint("wh1")))
	ds := []webhook.Delivery{Delivery("wh1", "r1", 1), Delivery("wh1", "r1", 2), Delivery("wh1", "r1", 3)}
	_, err := st.AddDeliveries(ctx, ds)
	require.NoError(t, err)
	for i, at := range []time.Time{t0, t0.Add(48 * time.Hour)} {
		d := ds[i]
		d.State, d.DeliveredAt = webhook.Delivered, at
		require.NoError(t, st.SaveDelivery(ctx, d))
	}
	n, err := st.SweepDeliveries(ctx, t0.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := st.Deliveries(ctx, "wh1", 10)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"r1/2", "r1/3"}, keys(got))
	n, err = st.AddDeliveries(ctx, []webhook.Delivery{Delivery("wh1", "r1", 1)})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a swept delivery may be made again (a replay)")
}
