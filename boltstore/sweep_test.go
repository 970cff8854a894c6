package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"dealroom"
	"dealroom/room"
	"dealroom/session"
	"dealroom/task"
)

// sweepRoom opens a store with a service on a test clock, as Alice, and
// a room she made with the key "room-key".
func sweepRoom(t *testing.T) (*Store, *room.Service, func(time.Duration), *room.Room) {
	t.Helper()
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	clock, advance := testClock()
	svc := &room.Service{Store: s, Now: clock}
	r, err := svc.CreateRoom(context.Background(), testAlice, room.Draft{Name: "Acme", Company: "Acme"}, "room-key")
	require.NoError(t, err)
	return s, svc, advance, r
}

// TestExpiredKeysAreSwept: idempotency records do not pile up: those past
// room.KeyRetention are removed by later commits, each reading at most
// sweepBatch records, with the clock of the commands (no waiting); a key
// used anew stays, and a retry of it still gets its first answer.
func TestExpiredKeysAreSwept(t *testing.T) {
	s, svc, advance, r := sweepRoom(t)
	ctx, alice := context.Background(), testAlice
	var err error
	keys := sweepBatch + 10
	for i := range keys {
		_, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: fmt.Sprint("m", i)}, fmt.Sprint("k", i))
		require.NoError(t, err)
	}
	records := func() (n int) {
		require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
			n = tx.Bucket(bIdem).Stats().KeyN
			return nil
		}))
		return n
	}
	require.Equal(t, keys+1, records())

	// Just before the retention ends nothing goes, however many commits
	// walk the records.
	advance(room.KeyRetention - time.Second)
	for range 3 {
		_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "x"}, "")
		require.NoError(t, err)
	}
	require.Equal(t, keys+1, records())

	// After it, a commit removes the expired records among the ones it
	// reads; a few commits walk them all.
	advance(time.Second)
	_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "m3"}, "k3") // k3 expired: anew
	require.NoError(t, err)
	after := records()
	assert.GreaterOrEqual(t, after, keys+1-sweepBatch, "a commit reads sweepBatch records at most")
	commits := 0
	for ; records() > 1 && commits < 3; commits++ {
		_, err = svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "y"}, "")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, records(), "only the key used anew is left, after %d more commits", commits)
	res, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: "m3"}, "k3")
	require.NoError(t, err)
	assert.Equal(t, "m3", res.Body)
	assert.True(t, res.Replayed, "the key used anew still answers its retry")
}

// TestOldKeysAreFound: a data directory whose idempotency records were
// keyed by the old rule (room 0 actor 0 key) still answers a retry with
// the first result after the upgrade, until the key expires.
func TestOldKeysAreFound(t *testing.T) {
	dir := t.TempDir()
	clock, advance := testClock()
	ctx := context.Background()
	s, _, r := openWithRoom(t, dir)
	svc := &room.Service{Store: s, Now: clock}
	assert.True(t, s.legacyKeys.IsZero(), "a new file has no records of the old rule")
	first, err := svc.CreateTask(ctx, testAlice, r.ID, task.Draft{Title: "Kick-off"}, "k")
	require.NoError(t, err)

	// Make the file what the old code left: the record under the old
	// key, and no mark of the new rule.
	// The old code also indexed the records by time, in a bucket that
	// this code drops.
	cmd := room.Command{Room: r.ID, Actor: testAlice.ID, Key: "k"}
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		idem := tx.Bucket(bIdem)
		raw := idem.Get(idemKey(cmd))
		require.NotNil(t, raw)
		var rec idemRecord
		require.NoError(t, rec.unmarshal(raw))
		byAge, err := tx.CreateBucket(bIdemAt)
		require.NoError(t, err)
		require.NoError(t, idem.Delete(idemKey(cmd)))
		require.NoError(t, idem.Put(legacyIdemKey(cmd), raw))
		at := binary.BigEndian.AppendUint64(nil, uint64(rec.At.UnixNano()))
		require.NoError(t, byAge.Put(append(at, legacyIdemKey(cmd)...), nil))
		require.NoError(t, tx.Bucket(bMeta).Delete(metaIdemRule))
		return nil
	}))
	require.NoError(t, s.Close())

	s, err = Open(dir)
	require.NoError(t, err)
	defer s.Close()
	assert.False(t, s.legacyKeys.IsZero(), "the file's old records are noted")
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		assert.Nil(t, tx.Bucket(bIdemAt), "the index by age is dropped")
		return nil
	}))
	svc = &room.Service{Store: s, Now: clock}
	again, err := svc.CreateTask(ctx, testAlice, r.ID, task.Draft{Title: "Kick-off"}, "k")
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "a retry finds the record of the old rule")
	_, err = svc.CreateTask(ctx, testAlice, r.ID, task.Draft{Title: "Other"}, "k")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))

	advance(room.KeyRetention)
	anew, err := svc.CreateTask(ctx, testAlice, r.ID, task.Draft{Title: "Kick-off"}, "k")
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, anew.ID, "after the retention, the old key is forgotten")
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		assert.Nil(t, tx.Bucket(bIdem).Get(legacyIdemKey(cmd)), "the expired old record is swept")
		assert.NotNil(t, tx.Bucket(bIdem).Get(idemKey(cmd)), "the key is recorded by the new rule")
		return nil
	}))
}

// testClock is a clock for a service that moves on a millisecond at each
// reading, and by d at advance(d).
func testClock() (clock func() time.Time, advance func(d time.Duration)) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
	advance = func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	return clock, advance
}

// TestOldFormatsAreRead: a file whose events are plain JSON and whose
// message and idempotency records are JSON documents, as older code wrote
// them, reads the same after the upgrade, and takes new writes beside
// them.
func TestOldFormatsAreRead(t *testing.T) {
	dir := t.TempDir()
	clock, _ := testClock()
	ctx := context.Background()
	s, _, r := openWithRoom(t, dir)
	svc := &room.Service{Store: s, Now: clock}
	first, err := svc.PostMessage(ctx, testAlice, r.ID, room.MessageDraft{Body: "the first message, long enough to be compressed when stored"}, "k1")
	require.NoError(t, err)
	gone, err := svc.PostMessage(ctx, testAlice, r.ID, room.MessageDraft{Body: "a message to delete"}, "")
	require.NoError(t, err)
	_, err = svc.DeleteMessage(ctx, testAlice, r.ID, gone.ID, "")
	require.NoError(t, err)
	_, err = svc.PostMessage(ctx, testAlice, r.ID, room.MessageDraft{Body: "a reply", ParentID: first.ID}, "")
	require.NoError(t, err)
	events, err := s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	roots, err := s.Messages(ctx, room.MessageFilter{Room: r.ID, Limit: 100})
	require.NoError(t, err)
	zipped := 0
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		evs := tx.Bucket(bEvents)
		for _, ev := range events {
			k := seqKey(r.ID, ev.Seq)
			if evs.Get(k)[0] == zipTag {
				zipped++
			}
			require.NoError(t, putJSON(evs, k, ev))
		}
		msgs := tx.Bucket(bMessages)
		for _, id := range []string{first.ID, gone.ID} {
			m, err := getMessage(tx, r.ID, id)
			require.NoError(t, err)
			require.NoError(t, putJSON(msgs, key(r.ID, id), m))
		}
		idem := tx.Bucket(bIdem)
		k := idemKey(room.Command{Room: r.ID, Actor: testAlice.ID, Key: "k1"})
		var rec idemRecord
		require.NoError(t, rec.unmarshal(idem.Get(k)))
		require.NoError(t, putJSON(idem, k, rec))
		return tx.Bucket(bMeta).Put([]byte("schema"), []byte("1"))
	}))
	assert.NotZero(t, zipped, "events with text are stored compressed")
	require.NoError(t, s.Close())

	s, err = Open(dir)
	require.NoError(t, err)
	defer s.Close()
	svc = &room.Service{Store: s, Now: clock}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		assert.Equal(t, schemaVersion, string(tx.Bucket(bMeta).Get([]byte("schema"))),
			"the file is marked with the new schema, which older binaries refuse")
		return nil
	}))
	got, err := s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, events, got)
	gotRoots, err := s.Messages(ctx, room.MessageFilter{Room: r.ID, Limit: 100})
	require.NoError(t, err)
	assert.Equal(t, roots, gotRoots)
	deleted, err := s.DeletedMessages(ctx, r.ID, []string{first.ID, gone.ID})
	require.NoError(t, err)
	require.Len(t, deleted, 1)
	assert.Equal(t, gone.ID, deleted[0].ID)
	again, err := svc.PostMessage(ctx, testAlice, r.ID, room.MessageDraft{Body: "the first message, long enough to be compressed when stored"}, "k1")
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "a JSON idempotency record still answers a retry")
	edited, err := svc.EditMessage(ctx, testAlice, r.ID, first.ID, room.MessageEdit{Body: "edited"}, "")
	require.NoError(t, err)
	m, err := s.Message(ctx, r.ID, first.ID)
	require.NoError(t, err)
	assert.Equal(t, edited.Body, m.Body, "a message of the old form takes an edit")
	got, err = s.Events(ctx, r.ID, 0, 100, false)
	require.NoError(t, err)
	assert.Equal(t, events, got[:len(events)], "old and new forms read side by side")
	assert.Len(t, got, len(events)+1)
}

// TestIdemRecordForms: an idempotency record comes back from its binary
// form, with a fingerprint of hex digits or of anything else.
func TestIdemRecordForms(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	for _, fp := range []string{"0123456789abcdef0123456789abcdef", "not hex", "ABCDEF", ""} {
		rec := idemRecord{Seq: 42, Fingerprint: fp, At: at}
		var got idemRecord
		require.NoError(t, got.unmarshal(rec.marshal()))
		assert.Equal(t, rec.Seq, got.Seq)
		assert.Equal(t, fp, got.Fingerprint)
		assert.True(t, at.Equal(got.At))
	}
	assert.Len(t, idemRecord{Seq: 1, Fingerprint: "0123456789abcdef0123456789abcdef", At: at}.marshal(), 33)
}

// TestSweepGoesOverManyTransactions: a sweep of more records than one of
// its transactions removes (sweepAsideBatch) goes on where the last one
// stopped, removes every record that is over and keeps the others.
func TestSweepGoesOverManyTransactions(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0).UTC()
	const n = 2*sweepAsideBatch + 88
	kept := map[string]bool{}
	for i := range n {
		tk := session.Ticket{ID: fmt.Sprintf("t:%04d", i), CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}
		if i%7 == 0 { // every seventh still counts
			tk.ExpiresAt = now.Add(time.Minute)
			kept[tk.ID] = true
		}
		added, err := s.AddTicket(ctx, tk)
		require.NoError(t, err)
		require.True(t, added)
	}
	removed, err := s.SweepTickets(ctx, now)
	require.NoError(t, err)
	assert.Equal(t, n-len(kept), removed)
	for i := range n {
		id := fmt.Sprintf("t:%04d", i)
		_, err := s.TakeTicket(ctx, id, now)
		if kept[id] {
			assert.NoError(t, err, id)
		} else {
			assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), id)
		}
	}
}

// TestSweepPassesAnUnreadableRecord: an idempotency record the code
// cannot read is left where it is by the sweep, and the commits the sweep
// rides on go on.
func TestSweepPassesAnUnreadableRecord(t *testing.T) {
	s, svc, advance, r := sweepRoom(t)
	ctx, alice := context.Background(), testAlice
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bIdem).Put([]byte("\x00garbage"), []byte{9, 9, 9})
	}))
	advance(room.KeyRetention + time.Hour)
	for i := range 3 {
		_, err := svc.PostMessage(ctx, alice, r.ID, room.MessageDraft{Body: fmt.Sprint("m", i)}, fmt.Sprint("k", i))
		require.NoError(t, err, "commit %d", i)
	}
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		assert.NotNil(t, tx.Bucket(bIdem).Get([]byte("\x00garbage")), "left alone")
		assert.Nil(t, tx.Bucket(bIdem).Get(idemKey(room.Command{Room: r.ID, Actor: alice.ID, Key: "room-key"})), "the expired one swept")
		return nil
	}))
}
