package mongostore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/event"

	"dealroom"
	"dealroom/mongostore"
	"dealroom/room"
	"dealroom/room/roomtest"
)

// commandCounter counts the commands a store sends (its round trips),
// leaving out the driver's own handshakes and heartbeats.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "hello", "isMaster", "ismaster", "ping", "endSessions", "buildInfo", "saslStart", "saslContinue":
			return
		}
		c.mu.Lock()
		c.n[e.CommandName]++
		c.mu.Unlock()
	}}
}

// take returns the commands counted since the last take.
func (c *commandCounter) take() (total int, by map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by = c.n
	c.n = map[string]int{}
	for _, n := range by {
		total += n
	}
	return total, by
}

// TestHotRoomWritesCostFewerRoundTrips: a room this instance wrote last is
// written again without looking up the key, the head, the high-water mark,
// the room and its members: that is what lets one MongoDB serve more
// writes. Its first write after another instance wrote goes the long way.
func TestHotRoomWritesCostFewerRoundTrips(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	counter := &commandCounter{n: map[string]int{}}
	a := open(t, uri, db, mongostore.WithCommandMonitor(counter.monitor()))
	b := open(t, uri, db)
	svcA, svcB := &room.Service{Store: a}, &room.Service{Store: b}
	r := seedRoom(t, ctx, svcA)

	post := func(svc *room.Service, body, key string) room.MessageResult {
		m, err := svc.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: body}, key)
		require.NoError(t, err)
		return m
	}
	post(svcA, "warm", "k-warm")
	counter.take()
	post(svcA, "hot", "k-hot")
	hot, hotBy := counter.take()

	post(svcB, "from the other instance", "")
	counter.take()
	post(svcA, "after the other instance", "k-cold")
	cold, coldBy := counter.take()

	t.Logf("round trips of a message: %d on a hot room %v, %d after another instance wrote %v", hot, hotBy, cold, coldBy)
	assert.LessOrEqual(t, hot+4, cold, "a hot room's write skips at least four round trips")
	assert.Equal(t, 2, hotBy["insert"], "two inserts: the event and its message")
	assert.Equal(t, 1, hotBy["update"], "one update: the room's high-water mark")

	evs, err := a.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	for i, e := range evs {
		assert.EqualValues(t, i+1, e.Seq, "seqs are 1..n")
	}
	assert.Len(t, evs, 3+4)
}

// TestHotRoomSeesOtherInstances: what another instance changed in a room
// is seen by the next decision of an instance that wrote the room before
// (its insert finds the seq taken and it decides again on fresh reads).
func TestHotRoomSeesOtherInstances(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	a, b := open(t, uri, db), open(t, uri, db)
	svcA, svcB := &room.Service{Store: a}, &room.Service{Store: b}
	r := seedRoom(t, ctx, svcA)
	_, err := svcA.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "hello"}, "")
	require.NoError(t, err)

	_, err = svcB.AddMember(ctx, roomtest.Alice, r, room.MemberDraft{UserID: "sam", Name: "Sam Newcomer", Kind: dealroom.Staff}, "")
	require.NoError(t, err)
	m, err := svcA.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "welcome @sam"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"sam"}, m.Mentions, "the member added on the other instance is mentioned")

	_, err = svcB.RemoveMember(ctx, roomtest.Alice, r, "sam", "")
	require.NoError(t, err)
	m, err = svcA.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "bye @sam"}, "")
	require.NoError(t, err)
	assert.Empty(t, m.Mentions, "the member removed on the other instance is not")

	_, err = svcB.UpdateRoom(ctx, roomtest.Alice, r, room.Patch{Name: dealroom.Some("Acme renewal 2027")}, "")
	require.NoError(t, err)
	res, err := svcA.UpdateRoom(ctx, roomtest.Alice, r, room.Patch{Company: dealroom.Some("Acme Corp")}, "")
	require.NoError(t, err)
	got := res.Room
	assert.Equal(t, "Acme renewal 2027", got.Name, "the rename on the other instance is kept")
	assert.Equal(t, "Acme Corp", got.Company)

	evs, err := b.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	for i, e := range evs {
		assert.EqualValues(t, i+1, e.Seq, "seqs are 1..n")
	}
	rm, err := b.Room(ctx, r)
	require.NoError(t, err)
	assert.EqualValues(t, len(evs), rm.Head)
}

// TestHotRoomRetries: retries on a hot room get their first answer, even
// when deciding again would refuse them (the member is gone already).
func TestHotRoomRetries(t *testing.T) {
	uri, db := database(t)
	ctx := ctxT(t)
	s := open(t, uri, db)
	svc := &room.Service{Store: s}
	r := seedRoom(t, ctx, svc)

	first, err := svc.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "once"}, "post-1")
	require.NoError(t, err)
	again, err := svc.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "once"}, "post-1")
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "the retry gets the first message")

	_, err = svc.RemoveMember(ctx, roomtest.Alice, r, roomtest.Bob.ID, "remove-bob")
	require.NoError(t, err)
	_, err = svc.RemoveMember(ctx, roomtest.Alice, r, roomtest.Bob.ID, "remove-bob")
	assert.NoError(t, err,
		"the retry of a removal is answered as the removal was, not refused")
	_, err = svc.RemoveMember(ctx, roomtest.Alice, r, roomtest.Bob.ID, "remove-bob-again")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a new removal of someone gone is refused: %v", err)

	_, err = svc.PostMessage(ctx, roomtest.Alice, r, room.MessageDraft{Body: "other"}, "remove-bob")
	assert.ErrorIs(t, err, room.ErrKeyReused, "a key used for another request is refused")

	evs, err := s.Events(ctx, r, 0, 100, false)
	require.NoError(t, err)
	assert.Len(t, evs, 3+2, "the room, two members, the message and the removal")
}
