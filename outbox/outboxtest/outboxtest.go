// Package outboxtest is the conformance suite of outbox.Store: every
// implementation runs TestStore in its own tests.
package outboxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/outbox"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Rec returns a pending email record to user about event, due at due.
func Rec(user, event string, due time.Time) outbox.Record {
	return outbox.Record{ID: outbox.Key(outbox.Email, user, event), Channel: outbox.Email, Recipient: user,
		RoomID: "r1", EventID: event, Seq: 7, Payload: json.RawMessage(`{"To":"` + user + `@example.com"}`),
		State: outbox.Pending, CreatedAt: t0, Due: due}
}

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) outbox.Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, st outbox.Store)
	}{
		{"AddOncePerKey", testAddOnce},
		{"AddRace", testAddRace},
		{"DueInOrder", testDue},
		{"Settle", testSettle},
		{"SettleTogether", testSettleTogether},
		{"Sweep", testSweep},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func ids(recs []outbox.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.EventID)
	}
	return out
}

func testAddOnce(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	n, err := st.AddOutbox(ctx, []outbox.Record{Rec("ana", "e1", t0), Rec("bob", "e1", t0)})
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	again := Rec("ana", "e1", t0.Add(time.Hour))
	again.Payload = json.RawMessage(`{"To":"other@example.com"}`)
	n, err = st.AddOutbox(ctx, []outbox.Record{again, Rec("ana", "e2", t0)})
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a record of the same key is not added again")

	due, err := st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	require.Len(t, due, 3)
	for _, r := range due {
		if r.Recipient == "ana" && r.EventID == "e1" {
			assert.JSONEq(t, `{"To":"ana@example.com"}`, string(r.Payload), "the first record stays")
			assert.Equal(t, Rec("ana", "e1", t0), r, "a record comes back whole")
		}
	}
	n, err = st.AddOutbox(ctx, nil)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func testAddRace(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 6 {
		wg.Go(func() {
			n, err := st.AddOutbox(ctx, []outbox.Record{Rec("ana", "e1", t0), Rec("bob", "e1", t0)})
			assert.NoError(t, err)
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, 2, total, "each record added once of six tries")
	due, err := st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	assert.Len(t, due, 2)
}

func testDue(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	var recs []outbox.Record
	for i, m := range []int{5, 1, 3, 9, 2} {
		recs = append(recs, Rec("ana", fmt.Sprint("e", i), t0.Add(time.Duration(m)*time.Minute)))
	}
	_, err := st.AddOutbox(ctx, recs)
	require.NoError(t, err)
	due, err := st.DueOutbox(ctx, t0.Add(5*time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"e1", "e4", "e2", "e0"}, ids(due), "due ones only, earliest first; due at now is due")
	due, err = st.DueOutbox(ctx, t0.Add(time.Hour), 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"e1", "e4"}, ids(due), "up to the limit")
	due, err = st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	assert.Empty(t, due)
}

func testSettle(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	_, err := st.AddOutbox(ctx, []outbox.Record{Rec("ana", "e1", t0), Rec("ana", "e2", t0), Rec("ana", "e3", t0)})
	require.NoError(t, err)
	due, err := st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	require.Len(t, due, 3)
	byEvent := map[string]outbox.Record{}
	for _, r := range due {
		byEvent[r.EventID] = r
	}

	sent := byEvent["e1"]
	sent.State, sent.Attempts, sent.SettledAt = outbox.Sent, 1, t0.Add(time.Second)
	require.NoError(t, st.SettleOutbox(ctx, sent))
	later := byEvent["e2"]
	later.Attempts, later.Due, later.LastError = 1, t0.Add(time.Minute), "421 busy"
	require.NoError(t, st.SettleOutbox(ctx, later))
	batched := byEvent["e3"]
	batched.Batch = "b1"
	require.NoError(t, st.SettleOutbox(ctx, batched), "marking a record with its message")

	due, err = st.DueOutbox(ctx, t0.Add(30*time.Second), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"e3"}, ids(due), "sent is gone; the retry waits")
	due, err = st.DueOutbox(ctx, t0.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, []string{"e3", "e2"}, ids(due))
	assert.Equal(t, batched, due[0], "the batch is kept")
	assert.Equal(t, 1, due[1].Attempts)
	assert.Equal(t, "421 busy", due[1].LastError)

	sent.State, sent.Due = outbox.Pending, t0
	require.NoError(t, st.SettleOutbox(ctx, sent), "settling a settled record again")
	due, err = st.DueOutbox(ctx, t0.Add(time.Minute), 10)
	require.NoError(t, err)
	assert.Equal(t, []string{"e3", "e2"}, ids(due), "a settled record stays settled")

	err = st.SettleOutbox(ctx, Rec("zed", "e9", t0))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
}

// testSettleTogether: the records of a message are settled by one call,
// all of them or, when one is missing, none.
func testSettleTogether(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	recs := []outbox.Record{Rec("ana", "e1", t0), Rec("ana", "e2", t0), Rec("ana", "e3", t0)}
	_, err := st.AddOutbox(ctx, recs)
	require.NoError(t, err)
	for i := range recs {
		recs[i].Batch = "b1"
	}
	require.NoError(t, st.SettleOutbox(ctx, recs...), "marking the records with their message")
	due, err := st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	require.Len(t, due, 3)
	for _, r := range due {
		assert.Equal(t, "b1", r.Batch, r.ID)
	}

	settled := make([]outbox.Record, len(recs))
	for i, r := range recs {
		r.State, r.Attempts, r.SettledAt = outbox.Sent, 1, t0.Add(time.Second)
		settled[i] = r
	}
	err = st.SettleOutbox(ctx, append(settled[:2:2], Rec("zed", "e9", t0))...)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	due, err = st.DueOutbox(ctx, t0, 10)
	require.NoError(t, err)
	assert.Len(t, due, 3, "one record missing: none settled")

	require.NoError(t, st.SettleOutbox(ctx, settled...))
	due, err = st.DueOutbox(ctx, t0.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, due, "all settled at once")
	require.NoError(t, st.SettleOutbox(ctx), "nothing to settle")
}

func testSweep(t *testing.T, st outbox.Store) {
	ctx := context.Background()
	_, err := st.AddOutbox(ctx, []outbox.Record{Rec("ana", "e1", t0), Rec("ana", "e2", t0), Rec("ana", "e3", t0), Rec("ana", "e4", t0)})
	require.NoError(t, err)
	for i, state := range []string{outbox.Sent, outbox.Failed, outbox.Skipped} {
		r := Rec("ana", fmt.Sprint("e", i+1), t0)
		r.State, r.Attempts, r.SettledAt = state, 1, t0.Add(time.Duration(i+1)*time.Hour)
		require.NoError(t, st.SettleOutbox(ctx, r))
	}
	n, err := st.SweepOutbox(ctx, t0.Add(90*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only what was settled before")
	n, err = st.SweepOutbox(ctx, t0.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n, "given up and skipped go too; pending records stay")
	added, err := st.AddOutbox(ctx, []outbox.Record{Rec("ana", "e4", t0)})
	require.NoError(t, err)
	assert.Zero(t, added)
}
