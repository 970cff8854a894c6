package room

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"dealroom"
)

func TestIdempotencyID(t *testing.T) {
	assert.Equal(t, IdempotencyID("alice", "k1"), IdempotencyID("alice", "k1"))
	assert.NotEqual(t, IdempotencyID("a:1", "c"), IdempotencyID("a", "1:c"), "the actor's length keeps the parts apart")
	long := strings.Repeat("k", 500)
	assert.Len(t, IdempotencyID("alice", long), 2+64, "long ones are hashed")
	assert.NotEqual(t, IdempotencyID("alice", long+"1"), IdempotencyID("alice", long+"2"))
	assert.Equal(t, "k:5:alice:k1", IdempotencyID("alice", "k1"), "the form stores have on disk")
}

func TestRoomAdvance(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := &Room{Head: 4}
	r.Advance(Event{Seq: 5, At: at, Actor: EventActor{Kind: dealroom.Staff}})
	assert.Equal(t, int64(5), r.Head)
	assert.Equal(t, at, r.LastActivityAt)
	assert.Nil(t, r.LastCustomerActivityAt, "staff activity is not a customer's")
	r.Advance(Event{Seq: 6, At: at.Add(time.Hour), Actor: EventActor{Kind: dealroom.Customer}})
	assert.Equal(t, at.Add(time.Hour), *r.LastCustomerActivityAt)
}

func TestFirstError(t *testing.T) {
	var f FirstError
	assert.NoError(t, f.Note(nil))
	first, second := errors.New("first"), errors.New("second")
	assert.Equal(t, first, f.Note(first))
	assert.Equal(t, second, f.Note(second), "each call gets its own error back")
	assert.Equal(t, first, f.Err(), "the first one sticks")
}

func TestRoomFilterMatch(t *testing.T) {
	r := Room{Stage: Won, OwnerID: "alice", CloseWindow: ThisMonth}
	assert.True(t, RoomFilter{}.Match(r))
	assert.True(t, RoomFilter{Stage: Won, Owner: "alice", CloseWindow: ThisMonth}.Match(r))
	assert.False(t, RoomFilter{Stage: Lost}.Match(r))
	assert.False(t, RoomFilter{Owner: "bob"}.Match(r))
	assert.False(t, RoomFilter{CloseWindow: NextMonth}.Match(r))
}
