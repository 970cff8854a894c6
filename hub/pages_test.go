package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// deletingStore is a room of two events whose first is a message; the
// first read of its events stops, once it has read them, until the test
// lets it go on: the test deletes the message meanwhile.
type deletingStore struct {
	mu      sync.Mutex
	deleted bool
	reads   int
	reading chan struct{} // closed when the first read has read
	goOn    chan struct{} // the first read answers when this is closed
}

func newDeletingStore() *deletingStore {
	return &deletingStore{reading: make(chan struct{}), goOn: make(chan struct{})}
}

const secretText = "the price floor is 42k"

func (s *deletingStore) events() []room.Event {
	m := room.Message{ID: "m1", RoomID: "r1", Author: "alice", Body: secretText, Visibility: dealroom.Shared}
	if s.deleted {
		m.Body, m.Deleted = "", true
	}
	data, _ := json.Marshal(m)
	return []room.Event{
		{Seq: 1, ID: "e1", RoomID: "r1", Type: room.MessagePosted, Visibility: dealroom.Shared, Data: data},
		{Seq: 2, ID: "e2", RoomID: "r1", Type: room.MessageDeleted, Visibility: dealroom.Shared, Data: data},
	}
}

func (s *deletingStore) Events(ctx context.Context, roomID string, after int64, limit int, sharedOnly bool) ([]room.Event, error) {
	s.mu.Lock()
	s.reads++
	first := s.reads == 1
	evs := s.events()
	s.mu.Unlock()
	if first {
		close(s.reading)
		select {
		case <-s.goOn:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var out []room.Event
	for _, e := range evs {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *deletingStore) Room(ctx context.Context, id string) (*room.Room, error) {
	return &room.Room{ID: id, Head: 2}, nil
}

func (s *deletingStore) delete() {
	s.mu.Lock()
	s.deleted = true
	s.mu.Unlock()
}

func (s *deletingStore) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func showsText(entries []*entry) bool {
	for _, e := range entries {
		if bytes.Contains(e.staff, []byte(secretText)) || bytes.Contains(e.customer, []byte(secretText)) {
			return true
		}
	}
	return false
}

// TestPageReadInFlightDuringDeletion: a catch-up page read that was in
// flight when a message was deleted must not come back into the shared
// cache with the message's text, nor be handed to sessions that ask after
// the deletion.
func TestPageReadInFlightDuringDeletion(t *testing.T) {
	st := newDeletingStore()
	h := New(Config{PageSize: 2}, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(h.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	type result struct {
		entries []*entry
		err     error
	}
	early := make(chan result, 1)
	go func() {
		e, err := h.pages.get(ctx, "r1", 1, 2)
		early <- result{e, err}
	}()
	<-st.reading // the read has the text

	// The message is deleted; the feed learns it and forgets the room's
	// pages, as it does on every message.deleted.
	st.delete()
	h.pages.forget("r1")

	// A session that asks now gets a fresh read, not the one in flight
	// (which would keep it waiting until the test lets that one go on).
	lateCtx, lateCancel := context.WithTimeout(ctx, 3*time.Second)
	late, err := h.pages.get(lateCtx, "r1", 1, 2)
	lateCancel()
	require.NoError(t, err, "a session asking after the deletion joined the read in flight")
	assert.False(t, showsText(late), "a read after the deletion shows the deleted text")

	close(st.goOn)
	r := <-early
	require.NoError(t, r.err)
	assert.True(t, showsText(r.entries), "the early reader read before the deletion (and gets the deletion next)")

	// Later catch-ups never see the text again.
	again, err := h.pages.get(ctx, "r1", 1, 2)
	require.NoError(t, err)
	assert.False(t, showsText(again), "the deleted text came back through the page cache")
	reads := st.readCount()
	_, err = h.pages.get(ctx, "r1", 1, 2)
	require.NoError(t, err)
	assert.Equal(t, reads, st.readCount(), "a full page read after the deletion is kept")
}

// TestPageCacheKeepsWithinBytes: the shared page cache keeps at most its
// budget of bytes, however many pages are read, and still answers every
// page with its events.
func TestPageCacheKeepsWithinBytes(t *testing.T) {
	st := &logStore{}
	for range 640 {
		st.commit("r1", 450)
	}
	h := New(Config{PageSize: 16, CachedBytes: 40 << 10}, st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(h.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for from := int64(1); from <= 640; from += 16 {
		entries, err := h.pages.get(ctx, "r1", from, from+15)
		require.NoError(t, err)
		require.Len(t, entries, 16)
		assert.Equal(t, from, entries[0].seq)
	}
	c := h.pages
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for el := c.lru.Front(); el != nil; el = el.Next() {
		for _, e := range el.Value.(*cachedPage).entries {
			total += e.size()
		}
	}
	assert.Equal(t, total, c.bytes, "the cache counts what it keeps")
	assert.LessOrEqual(t, c.bytes, 40<<10, "the cache keeps more than its budget")
	assert.NotZero(t, c.lru.Len(), "the cache keeps the pages that fit")
}
