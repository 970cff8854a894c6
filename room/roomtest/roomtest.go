// Package roomtest is the conformance suite of room.Store: every store
// implementation runs it in one line,
//
//	func TestStore(t *testing.T) { roomtest.TestStore(t, func(tb testing.TB) room.Store { ... }) }
//
// so that the embedded store and the MongoDB store cannot drift apart.
package roomtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// Opener returns a new, empty store for one test; the store is closed by
// the suite.
type Opener func(tb testing.TB) room.Store

// People used throughout the suite.
var (
	Alice = dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	Bob   = dealroom.Actor{ID: "bob", Name: "Bob Engineer", Kind: dealroom.Staff, Role: dealroom.Rep}
	Carol = dealroom.Actor{ID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer}
	Mike  = dealroom.Actor{ID: "mike", Name: "Mike Manager", Kind: dealroom.Staff, Role: dealroom.Manager}
)

// TestStore runs the whole suite against the stores open makes.
func TestStore(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"SeqIsGapFreeUnderConcurrency", testSeqGapFree},
		{"RefusedCommandWritesNothing", testRefusedWritesNothing},
		{"NoChangeWritesNothing", testNoChange},
		{"Idempotency", testIdempotency},
		{"LongKeys", testLongKeys},
		{"ReplayRechecksAccess", testReplayRechecksAccess},
		{"KeysExpire", testKeysExpire},
		{"DecisionsSeeCommittedState", testDecisionsSerialize},
		{"EventsPaging", testEventsPaging},
		{"SharedEventsScanIsBounded", testSharedScanBounded},
		{"RoomsAheadOfHeads", testAhead},
		{"Tasks", testTasks},
		{"Messages", testMessages},
		{"MembersAndRooms", testMembersAndRooms},
		{"InvitesAndAttachments", testInvitesAndAttachments},
		{"ListsPageInTheStore", testListsPageInTheStore},
		{"Inbox", testInbox},
		{"Activity", testActivity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// fixture is a store with a service on top and a clock the test moves.
type fixture struct {
	store room.Store
	svc   *room.Service
	ctx   context.Context
	mu    sync.Mutex
	now   time.Time
}

func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	f := &fixture{store: s, ctx: context.Background(), now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	f.svc = &room.Service{Store: s, Now: f.clock}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Millisecond)
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// room makes a room owned by Alice with Bob (staff) and Carol (customer)
// as writers.
func (f *fixture) room(t *testing.T) string {
	t.Helper()
	r, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	for _, a := range []dealroom.Actor{Bob, Carol} {
		_, err := f.svc.AddMember(f.ctx, Alice, r.ID, room.MemberDraft{UserID: a.ID, Name: a.Name, Kind: a.Kind}, "")
		require.NoError(t, err)
	}
	return r.ID
}

func (f *fixture) events(t *testing.T, roomID string) []room.Event {
	t.Helper()
	evs, err := f.store.Events(f.ctx, roomID, 0, 100000, false)
	require.NoError(t, err)
	return evs
}

func seqs(evs []room.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}

func upTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

func testSeqGapFree(t *testing.T, open Opener) {
	f := newFixture(t, open)
	roomA, roomB := f.room(t), f.room(t)
	const writers, each = 8, 24
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := roomA
				if i%2 == 1 {
					r = roomB
				}
				_, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: fmt.Sprintf("w%d-%d", w, i)}, "")
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, r := range []string{roomA, roomB} {
		evs := f.events(t, r)
		assert.Equal(t, upTo(int64(len(evs))), seqs(evs), "seq must be 1..n without gaps")
		assert.Equal(t, 3+writers*each/2, len(evs), "room created, two members added, and the tasks")
		ids := map[string]bool{}
		for _, e := range evs {
			assert.False(t, ids[e.ID], "event ids are unique")
			ids[e.ID] = true
			assert.Equal(t, r, e.RoomID)
		}
		got, err := f.store.Room(f.ctx, r)
		require.NoError(t, err)
		assert.Equal(t, int64(len(evs)), got.Head, "the room's head is its last seq")
		ts, err := f.store.Tasks(f.ctx, r)
		require.NoError(t, err)
		assert.Equal(t, writers*each/2, len(ts))
	}
}

func testRefusedWritesNothing(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	before := f.events(t, r)
	refusal := dealroom.Invalid("title", "no")
	_, err := f.store.Execute(f.ctx, room.Command{Room: r, Actor: "alice", Key: "k1", Fingerprint: "fp",
		Decide: func(v room.View) (room.Decision, error) { return room.Decision{}, refusal }})
	assert.ErrorIs(t, err, refusal)
	assert.Equal(t, before, f.events(t, r), "a refused command writes no event")
	// The key of a refused command stays free: a corrected retry works.
	_, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "x"}, "k1")
	require.NoError(t, err)
	assert.Len(t, f.events(t, r), len(before)+1)
}

func testNoChange(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	before := f.events(t, r)
	x, err := f.store.Execute(f.ctx, room.Command{Room: r, Actor: "alice",
		Decide: func(v room.View) (room.Decision, error) { return room.Decision{Result: "nothing to do"}, nil }})
	require.NoError(t, err)
	assert.False(t, x.Replayed)
	assert.Empty(t, x.Event.Type)
	assert.Equal(t, "nothing to do", x.Result, "a decision that changes nothing still gives its result back")
	assert.Equal(t, before, f.events(t, r))
}

func testIdempotency(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	a, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	b, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID, "a retry returns the first result")
	n := len(f.events(t, r))
	_, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Another"}, "key-1")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "a key reused for another request is a conflict")
	c, err := f.svc.CreateTask(f.ctx, Bob, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, c.ID, "keys belong to their actor")
	assert.Len(t, f.events(t, r), n+1)

	// Rooms created under a key come back the same too.
	r1, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "N", Company: "C"}, "room-key")
	require.NoError(t, err)
	r2, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "N", Company: "C"}, "room-key")
	require.NoError(t, err)
	assert.Equal(t, r1.ID, r2.ID)
	assert.Len(t, f.events(t, r1.ID), 1)
}

// testLongKeys: keys long enough for a store to shorten (hash) them are
// still told apart by every character, and kept apart per actor, however
// the actor's id and the key divide the characters between them.
func testLongKeys(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	long := strings.Repeat("k", 600)
	a, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, long+"1")
	require.NoError(t, err)
	again, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, long+"1")
	require.NoError(t, err)
	assert.Equal(t, a.ID, again.ID, "a retry with a long key returns the first result")
	b, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, long+"2")
	require.NoError(t, err)
	assert.NotEqual(t, a.ID, b.ID, "long keys that differ in their last character are two keys")
	_, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Other"}, long+"1")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "a long key reused for another request is a conflict")

	// An actor whose id ends the way another's key begins.
	alice2 := Alice
	alice2.ID = Alice.ID + ":1"
	_, err = f.svc.AddMember(f.ctx, Alice, r, room.MemberDraft{UserID: alice2.ID, Name: "Alice Two", Kind: dealroom.Staff}, "")
	require.NoError(t, err)
	first, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Split"}, "1:x")
	require.NoError(t, err)
	second, err := f.svc.CreateTask(f.ctx, alice2, r, task.Draft{Title: "Split"}, "x")
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, second.ID, "keys belong to their actor, whatever characters the ids hold")
}

// testKeysExpire: a key is remembered for room.KeyRetention from its
// first use (the service's clock), then forgotten.
func testKeysExpire(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	first, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	f.advance(room.KeyRetention - time.Minute)
	again, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "within the retention, a retry gets the first answer")
	_, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Other"}, "key-1")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))

	f.advance(2 * time.Minute) // the replay did not renew the key
	n := len(f.events(t, r))
	anew, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	assert.NotEqual(t, first.ID, anew.ID, "after the retention, the key is forgotten")
	assert.Len(t, f.events(t, r), n+1)
	// The key now stands for the new request, for another retention.
	again, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Send MSA"}, "key-1")
	require.NoError(t, err)
	assert.Equal(t, anew.ID, again.ID)
	f.advance(room.KeyRetention)
	other, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Other"}, "key-1")
	require.NoError(t, err, "an expired key may be used for another request")
	assert.Equal(t, "Other", other.Title)
}

// testReplayRechecksAccess: the recorded answer of a key is given only to
// an actor who may still see it.
func testReplayRechecksAccess(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	post := func(a dealroom.Actor, d room.MessageDraft, key string) (room.MessageResult, error) {
		return f.svc.PostMessage(f.ctx, a, r, d, key)
	}

	// An internal note, replayed by its author with a customer's token
	// (the same person, now seen as a customer): not found.
	note, err := post(Bob, room.MessageDraft{Body: "our floor is 40k", Visibility: "internal"}, "note-1")
	require.NoError(t, err)
	again, err := post(Bob, room.MessageDraft{Body: "our floor is 40k", Visibility: "internal"}, "note-1")
	require.NoError(t, err)
	assert.Equal(t, note.ID, again.ID)
	asCustomer := Bob
	asCustomer.Kind = dealroom.Customer
	_, err = post(asCustomer, room.MessageDraft{Body: "our floor is 40k", Visibility: "internal"}, "note-1")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a customer replaying an internal note: %v", err)

	// A customer's task, replayed after they were removed: the room is
	// not found, as for any non-member.
	_, err = f.svc.CreateTask(f.ctx, Carol, r, task.Draft{Title: "Our questions"}, "task-1")
	require.NoError(t, err)
	_, err = post(Carol, room.MessageDraft{Body: "hello"}, "msg-1")
	require.NoError(t, err)
	_, err = f.svc.RemoveMember(f.ctx, Alice, r, Carol.ID, "")
	require.NoError(t, err)
	n := len(f.events(t, r))
	_, err = f.svc.CreateTask(f.ctx, Carol, r, task.Draft{Title: "Our questions"}, "task-1")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a removed member replaying: %v", err)
	_, err = post(Carol, room.MessageDraft{Body: "hello"}, "msg-1")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a removed member replaying: %v", err)
	assert.Len(t, f.events(t, r), n, "nothing written")

	// Leaving is the exception: its retry answers as the first time.
	_, err = f.svc.RemoveMember(f.ctx, Bob, r, Bob.ID, "leave-1")
	require.NoError(t, err)
	_, err = f.svc.RemoveMember(f.ctx, Bob, r, Bob.ID, "leave-1")
	assert.NoError(t, err, "a retry of one's own leaving")
	_, err = f.svc.AddMember(f.ctx, Alice, r, room.MemberDraft{UserID: Bob.ID, Name: Bob.Name, Kind: dealroom.Staff}, "")
	require.NoError(t, err)

	// Rooms too: a creator removed from their room gets no replay.
	created, err := f.svc.CreateRoom(f.ctx, Bob, room.Draft{Name: "N", Company: "C"}, "room-key")
	require.NoError(t, err)
	_, err = f.svc.AddMember(f.ctx, Bob, created.ID, room.MemberDraft{UserID: Alice.ID, Name: Alice.Name, Kind: dealroom.Staff, RoleInRoom: room.Owner}, "")
	require.NoError(t, err)
	_, err = f.svc.RemoveMember(f.ctx, Alice, created.ID, Bob.ID, "")
	require.NoError(t, err)
	_, err = f.svc.CreateRoom(f.ctx, Bob, room.Draft{Name: "N", Company: "C"}, "room-key")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a removed creator replaying: %v", err)
}

func testDecisionsSerialize(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	// Twenty people race to add the same member: exactly one wins, the
	// others see the member already there.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, conflicts int
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.AddMember(f.ctx, Alice, r, room.MemberDraft{UserID: "dave", Name: "Dave", Kind: dealroom.Customer}, "")
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
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, ok)
	assert.Equal(t, 19, conflicts)
}

func testEventsPaging(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	for i := 0; i < 10; i++ {
		vis := dealroom.Shared
		if i%3 == 0 {
			vis = dealroom.Internal
		}
		_, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: fmt.Sprintf("t%d", i), Visibility: vis}, "")
		require.NoError(t, err)
	}
	all := f.events(t, r)
	require.Len(t, all, 13)
	var page []room.Event
	for after := int64(0); ; {
		p, err := f.store.Events(f.ctx, r, after, 4, false)
		require.NoError(t, err)
		if len(p) == 0 {
			break
		}
		assert.LessOrEqual(t, len(p), 4)
		page = append(page, p...)
		after = p[len(p)-1].Seq
	}
	assert.Equal(t, seqs(all), seqs(page))
	shared, err := f.store.Events(f.ctx, r, 0, 5, true)
	require.NoError(t, err)
	assert.Len(t, shared, 5, "the limit counts the events returned")
	for _, e := range shared {
		assert.Equal(t, dealroom.Shared, e.Visibility)
	}
	assert.Equal(t, []int64{1, 2, 3, 5, 6}, seqs(shared))
	for after := int64(0); after < 13; after++ { // one at a time (the hub's head check)
		one, err := f.store.Events(f.ctx, r, after, 1, false)
		require.NoError(t, err)
		require.Len(t, one, 1)
		assert.Equal(t, all[after].Seq, one[0].Seq)
		assert.Equal(t, all[after].Data, one[0].Data)
	}
	one, err := f.store.Events(f.ctx, r, 3, 1, true)
	require.NoError(t, err)
	assert.Equal(t, []int64{5}, seqs(one), "one shared event: the next shared one, not the next")
	tail, err := f.store.Events(f.ctx, r, 13, 1, false)
	require.NoError(t, err)
	assert.Empty(t, tail)
	tail, err = f.store.Events(f.ctx, r, 13, 10, false)
	require.NoError(t, err)
	assert.Empty(t, tail)
	none, err := f.store.Events(f.ctx, "r_nothere", 0, 10, false)
	require.NoError(t, err)
	assert.Empty(t, none)
	for i, e := range all {
		assert.Equal(t, all[i].Data, e.Data)
		assert.False(t, e.At.IsZero())
		assert.NotEmpty(t, e.Actor.ID)
	}
}

// aheadStore checks many rooms' heads in one read: the shape of
// hub.HeadsStore, which every store implements.
type aheadStore interface {
	Ahead(ctx context.Context, heads map[string]int64) ([]string, error)
}

// testAhead: of the rooms given with a head, those whose log has an event
// after it are reported, each once; rooms at their head or past it and
// rooms the store does not know are not, even among many.
func testAhead(t *testing.T, open Opener) {
	f := newFixture(t, open)
	as, ok := f.store.(aheadStore)
	require.True(t, ok, "the store does not check rooms' heads in one read (hub.HeadsStore)")
	ahead := func(heads map[string]int64) []string {
		t.Helper()
		rooms, err := as.Ahead(f.ctx, heads)
		require.NoError(t, err)
		return rooms
	}
	a, b, c := f.room(t), f.room(t), f.room(t) // 3 events each
	_, err := f.svc.CreateTask(f.ctx, Alice, c, task.Draft{Title: "x"}, "")
	require.NoError(t, err)

	assert.Empty(t, ahead(nil), "no rooms")
	assert.Empty(t, ahead(map[string]int64{}), "no rooms")
	assert.ElementsMatch(t, []string{a, c}, ahead(map[string]int64{
		a:            2, // one behind
		b:            3, // at its head
		c:            0, // four behind
		"r_nothere":  0, // unknown
		a[:len(a)-1]: 0, // unknown, the beginning of a room's id
	}))
	assert.Empty(t, ahead(map[string]int64{a: 3, b: 10, c: 4}), "at or past their heads")
	assert.Equal(t, []string{b}, ahead(map[string]int64{b: -1}), "a head before the first event")

	// Among many rooms, most of them unknown.
	many := map[string]int64{a: 3, b: 2, c: 4}
	for i := range 500 {
		many[fmt.Sprint("r_nothere", i)] = int64(i % 3)
	}
	assert.Equal(t, []string{b}, ahead(many))

	// A new event puts its room ahead of the head it had.
	_, err = f.svc.CreateTask(f.ctx, Alice, a, task.Draft{Title: "y"}, "")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{a, b}, ahead(many))
}

// testSharedScanBounded: a customer's read of a room of many internal
// events looks at SharedScan(limit) events at most, and reading on from
// where each read stopped finds every shared event.
func testSharedScanBounded(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	post := func(body string, vis dealroom.Visibility) {
		_, err := f.svc.PostMessage(f.ctx, Alice, r, room.MessageDraft{Body: body, Visibility: vis}, "")
		require.NoError(t, err)
	}
	post("first shared", dealroom.Shared)
	internal := 2*room.SharedScan(5) + 30
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < internal; i += 8 {
				_, err := f.svc.PostMessage(f.ctx, Alice, r, room.MessageDraft{Body: fmt.Sprintf("internal %d", i), Visibility: "internal"}, "")
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	post("last shared", dealroom.Shared)
	all := f.events(t, r)
	head := all[len(all)-1].Seq
	var want []int64
	for _, e := range all {
		if e.Visibility == dealroom.Shared {
			want = append(want, e.Seq)
		}
	}

	got, err := f.store.Events(f.ctx, r, 0, 5, true)
	require.NoError(t, err)
	for _, e := range got {
		assert.Equal(t, dealroom.Shared, e.Visibility)
		assert.LessOrEqual(t, e.Seq, room.SharedScanEnd(0, 5), "looked beyond the scan's budget")
	}
	assert.Less(t, len(got), 5, "the last shared event is beyond the budget")

	// The store's rule, read on: every shared event, in order, once.
	var walked []int64
	reads := 0
	for after := int64(0); after < head; reads++ {
		p, err := f.store.Events(f.ctx, r, after, 5, true)
		require.NoError(t, err)
		walked = append(walked, seqs(p)...)
		if len(p) == 5 {
			after = p[len(p)-1].Seq
		} else {
			after = room.SharedScanEnd(after, 5)
		}
		require.Less(t, reads, 100)
	}
	assert.Equal(t, want, walked)

	// The service's pages say where to go on; only the last has nothing.
	walked, reads = nil, 0
	sawEmpty := false
	for after := int64(0); ; reads++ {
		page, err := f.svc.EventPage(f.ctx, Carol, r, after, 5)
		require.NoError(t, err)
		walked = append(walked, seqs(page.Items)...)
		if page.NextAfter == 0 {
			break
		}
		sawEmpty = sawEmpty || len(page.Items) == 0
		assert.Greater(t, page.NextAfter, after)
		after = page.NextAfter
		require.Less(t, reads, 100)
	}
	assert.Equal(t, want, walked, "a customer reading on gets every shared event")
	assert.True(t, sawEmpty, "a page of internal events only is empty and not the end")

	// Staff pages are not bounded that way: they count every event.
	page, err := f.svc.EventPage(f.ctx, Alice, r, 0, 5)
	require.NoError(t, err)
	assert.Equal(t, seqs(all[:5]), seqs(page.Items))
	assert.Equal(t, all[4].Seq, page.NextAfter)
}

func testTasks(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	mk := func(title string, pos *float64, assignees ...string) task.Task {
		res, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: title, Position: pos, Assignees: assignees}, "")
		require.NoError(t, err)
		return res.Task
	}
	half := 1.5
	t1 := mk("one", nil, "carol")
	t2 := mk("two", nil, "carol", "bob")
	t3 := mk("between", &half)
	ts, err := f.store.Tasks(f.ctx, r)
	require.NoError(t, err)
	var titles []string
	for _, x := range ts {
		titles = append(titles, x.Title)
	}
	assert.Equal(t, []string{"one", "between", "two"}, titles, "tasks are ordered by position")

	assigned := func(user string) []string {
		ts, err := f.store.AssignedTasks(f.ctx, user)
		require.NoError(t, err)
		var ids []string
		for _, x := range ts {
			ids = append(ids, x.ID)
		}
		slices.Sort(ids)
		return ids
	}
	want := []string{t1.ID, t2.ID}
	slices.Sort(want)
	assert.Equal(t, want, assigned("carol"))
	_, err = f.svc.UpdateTask(f.ctx, Alice, r, t2.ID, task.Patch{Assignees: dealroom.Some([]string{"bob"})}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{t1.ID}, assigned("carol"), "unassigned tasks leave the index")
	assert.Equal(t, []string{t2.ID}, assigned("bob"))
	_, err = f.svc.DeleteTask(f.ctx, Alice, r, t2.ID, "")
	require.NoError(t, err)
	assert.Empty(t, assigned("bob"), "deleted tasks leave the index")
	got, err := f.store.Task(f.ctx, r, t2.ID)
	require.NoError(t, err)
	assert.Nil(t, got)
	got, err = f.store.Task(f.ctx, r, t3.ID)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, t3, *got, "a stored task reads back exactly")

	// New tasks' positions: the store tallies tasks by visibility, and a
	// customer's task goes after the last shared one.
	secret, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "floor price", Visibility: dealroom.Internal,
		Position: func() *float64 { p := 7.0; return &p }()}, "")
	require.NoError(t, err)
	require.Equal(t, 7.0, secret.Position)
	theirs, err := f.svc.CreateTask(f.ctx, Carol, r, task.Draft{Title: "legal review"}, "")
	require.NoError(t, err)
	assert.Equal(t, 2.0, theirs.Position, "after the last shared task (one, at 1; between, at 1.5)")
	ours, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "order form"}, "")
	require.NoError(t, err)
	assert.Equal(t, 8.0, ours.Position, "staff's after the last task of all")
}

func testMessages(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	tk, err := f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Security review"}, "")
	require.NoError(t, err)
	post := func(a dealroom.Actor, d room.MessageDraft) room.Message {
		m, err := f.svc.PostMessage(f.ctx, a, r, d, "")
		require.NoError(t, err)
		return m.Message
	}
	root := post(Alice, room.MessageDraft{Body: "Kick-off on Monday?"})
	onTask := post(Alice, room.MessageDraft{Body: "Which SSO?", TaskID: tk.ID})
	internal := post(Alice, room.MessageDraft{Body: "Hold the price", Visibility: dealroom.Internal})
	reply1 := post(Carol, room.MessageDraft{Body: "Yes", ParentID: root.ID})
	reply2 := post(Bob, room.MessageDraft{Body: "Works for me", ParentID: root.ID})

	list := func(fl room.MessageFilter) []string {
		fl.Room = r
		if fl.Limit == 0 {
			fl.Limit = 100
		}
		ms, err := f.store.Messages(f.ctx, fl)
		require.NoError(t, err)
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
			if m.ID == root.ID {
				assert.Equal(t, 2, m.ReplyCount)
			}
		}
		return ids
	}
	assert.Equal(t, []string{root.ID, onTask.ID, internal.ID}, list(room.MessageFilter{}), "thread roots, oldest first")
	assert.Equal(t, []string{root.ID, onTask.ID}, list(room.MessageFilter{SharedOnly: true}))
	assert.Equal(t, []string{onTask.ID}, list(room.MessageFilter{TaskID: tk.ID}))
	assert.Equal(t, []string{reply1.ID, reply2.ID}, list(room.MessageFilter{ParentID: root.ID}))
	assert.Equal(t, []string{reply2.ID}, list(room.MessageFilter{ParentID: root.ID, After: reply1.ID}))
	assert.Equal(t, []string{onTask.ID}, list(room.MessageFilter{After: root.ID, Limit: 1}))

	_, err = f.svc.DeleteMessage(f.ctx, Alice, r, root.ID, "")
	require.NoError(t, err)
	m, err := f.store.Message(f.ctx, r, root.ID)
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.True(t, m.Deleted)
	assert.Empty(t, m.Body, "a tombstone keeps no text")
	assert.Equal(t, []string{reply1.ID, reply2.ID}, list(room.MessageFilter{ParentID: root.ID}), "the thread keeps its replies")

	// The deleted ones among some messages, in one read (the timeline's
	// redaction): unknown ids and messages of other rooms are not found.
	_, err = f.svc.DeleteMessage(f.ctx, Bob, r, reply2.ID, "")
	require.NoError(t, err)
	other := f.room(t)
	em, err := f.svc.PostMessage(f.ctx, Alice, other, room.MessageDraft{Body: "Other room"}, "")
	require.NoError(t, err)
	elsewhere := em.Message
	_, err = f.svc.DeleteMessage(f.ctx, Alice, other, elsewhere.ID, "")
	require.NoError(t, err)
	gone, err := f.store.DeletedMessages(f.ctx, r, []string{root.ID, onTask.ID, internal.ID, reply1.ID, reply2.ID, "m_unknown"})
	require.NoError(t, err)
	var goneIDs []string
	for _, m := range gone {
		goneIDs = append(goneIDs, m.ID)
		assert.True(t, m.Deleted)
		assert.Empty(t, m.Body)
	}
	assert.ElementsMatch(t, []string{root.ID, reply2.ID}, goneIDs)
	gone, err = f.store.DeletedMessages(f.ctx, r, []string{onTask.ID, elsewhere.ID})
	require.NoError(t, err)
	assert.Empty(t, gone)
}

func testMembersAndRooms(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r1 := f.room(t)
	r2, err := f.svc.CreateRoom(f.ctx, Bob, room.Draft{Name: "Globex", Company: "Globex", Stage: room.Signing, CloseWindow: room.ThisMonth}, "")
	require.NoError(t, err)
	ms, err := f.store.Members(f.ctx, r1)
	require.NoError(t, err)
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.UserID)
	}
	assert.Equal(t, []string{"alice", "bob", "carol"}, ids, "members in the order they joined")
	owner, err := f.store.Member(f.ctx, r1, "alice")
	require.NoError(t, err)
	require.NotNil(t, owner)
	assert.Equal(t, room.Owner, owner.RoleInRoom)
	nobody, err := f.store.Member(f.ctx, r1, "zed")
	require.NoError(t, err)
	assert.Nil(t, nobody)

	roomIDs := func(fl room.RoomFilter) []string {
		rs, err := f.store.Rooms(f.ctx, fl)
		require.NoError(t, err)
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	assert.Equal(t, []string{r2.ID, r1}, roomIDs(room.RoomFilter{}), "newest first")
	assert.Equal(t, []string{r2.ID, r1}, roomIDs(room.RoomFilter{Member: "bob"}))
	assert.Equal(t, []string{r1}, roomIDs(room.RoomFilter{Member: "carol"}))
	assert.Equal(t, []string{r2.ID}, roomIDs(room.RoomFilter{Stage: room.Signing}))
	assert.Equal(t, []string{r2.ID}, roomIDs(room.RoomFilter{CloseWindow: room.ThisMonth}))
	assert.Equal(t, []string{r1}, roomIDs(room.RoomFilter{Owner: "alice"}))
	assert.Equal(t, []string{r2.ID}, roomIDs(room.RoomFilter{Limit: 1}))
	assert.Equal(t, []string{r1}, roomIDs(room.RoomFilter{Before: r2.ID}))

	ms2, err := f.store.Memberships(f.ctx, "carol", []string{r2.ID, r1, "r_missing"})
	require.NoError(t, err)
	require.Len(t, ms2, 1, "memberships only where the user is a member")
	assert.Equal(t, dealroom.Customer, ms2[r1].Kind)
	assert.Equal(t, "carol", ms2[r1].UserID)
	ms2, err = f.store.Memberships(f.ctx, "bob", []string{r2.ID, r1})
	require.NoError(t, err)
	assert.Equal(t, room.Owner, ms2[r2.ID].RoleInRoom)
	assert.Equal(t, room.PlainMember, ms2[r1].RoleInRoom)
	ms2, err = f.store.Memberships(f.ctx, "bob", nil)
	require.NoError(t, err)
	assert.Empty(t, ms2)

	_, err = f.svc.RemoveMember(f.ctx, Alice, r1, "carol", "")
	require.NoError(t, err)
	assert.Empty(t, roomIDs(room.RoomFilter{Member: "carol"}), "a removed member's rooms are gone")
	ms2, err = f.store.Memberships(f.ctx, "carol", []string{r1})
	require.NoError(t, err)
	assert.Empty(t, ms2, "a removed member has no membership")
	_, err = f.store.Room(f.ctx, "r_missing")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
}

func testInvitesAndAttachments(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	inv, err := f.svc.CreateInvite(f.ctx, Alice, r, room.InviteDraft{Email: "erin@customer.example"}, "")
	require.NoError(t, err)
	got, err := f.store.Invite(f.ctx, inv.ID)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, inv.Invite, *got)
	_, m, err := f.svc.AcceptInvite(f.ctx, inv.Code, room.Acceptance{Name: "Erin", Email: "erin@customer.example"})
	require.NoError(t, err)
	invs, err := f.store.Invites(f.ctx, r, nil, 10)
	require.NoError(t, err)
	require.Len(t, invs, 1)
	assert.NotNil(t, invs[0].AcceptedAt)
	mem, err := f.store.Member(f.ctx, r, m.UserID)
	require.NoError(t, err)
	require.NotNil(t, mem)
	assert.Equal(t, dealroom.Customer, mem.Kind)

	at, err := f.svc.AddAttachment(f.ctx, Alice, r, room.Upload{Name: "a.pdf", ContentType: "application/pdf",
		Blob: room.Blob{SHA256: "ab", Size: 3}}, "")
	require.NoError(t, err)
	stored, err := f.store.Attachment(f.ctx, r, at.ID)
	require.NoError(t, err)
	require.NotNil(t, stored)
	assert.Equal(t, at, *stored)
	all, err := f.store.Attachments(f.ctx, r, "", 10, false)
	require.NoError(t, err)
	assert.Equal(t, []room.Attachment{at}, all)
}

// testListsPageInTheStore: attachments and invites are read a page at a
// time, in their order, from any position.
func testListsPageInTheStore(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	var ats []room.Attachment
	for i := range 7 {
		vis := dealroom.Shared
		if i%3 == 1 {
			vis = dealroom.Internal
		}
		at, err := f.svc.AddAttachment(f.ctx, Alice, r, room.Upload{Name: fmt.Sprintf("a%d.pdf", i), ContentType: "application/pdf",
			Visibility: vis, Blob: room.Blob{SHA256: "ab", Size: 3}}, "")
		require.NoError(t, err)
		ats = append(ats, at)
	}
	var invs []room.Invite
	for i := range 7 {
		inv, err := f.svc.CreateInvite(f.ctx, Alice, r, room.InviteDraft{Email: fmt.Sprintf("p%d@customer.example", i)}, "")
		require.NoError(t, err)
		invs = append([]room.Invite{inv.Invite}, invs...) // newest first
		if i == 3 {
			f.advance(-time.Hour) // created earlier than the ones before: the order is by time
		}
	}
	slices.SortStableFunc(invs, func(a, b room.Invite) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})

	ids := func(as []room.Attachment) (out []string) {
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for _, shared := range []bool{false, true} {
		var want []string
		for _, a := range ats {
			if !shared || a.Visibility == dealroom.Shared {
				want = append(want, a.ID)
			}
		}
		var got []string
		for after, n := "", 0; n < 10; n++ {
			p, err := f.store.Attachments(f.ctx, r, after, 2, shared)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(p), 2)
			for _, a := range p {
				assert.True(t, !shared || a.Visibility == dealroom.Shared)
			}
			got = append(got, ids(p)...)
			if len(p) < 2 {
				break
			}
			after = p[len(p)-1].ID
		}
		assert.Equal(t, want, got, "shared only: %v", shared)
	}

	var got []string
	var after *room.Invite
	for n := 0; n < 10; n++ {
		p, err := f.store.Invites(f.ctx, r, after, 3)
		require.NoError(t, err)
		for _, inv := range p {
			got = append(got, inv.ID)
		}
		if len(p) < 3 {
			break
		}
		after = &p[len(p)-1]
	}
	var want []string
	for _, inv := range invs {
		want = append(want, inv.ID)
	}
	assert.Equal(t, want, got, "newest first, a page at a time")

	// The service's pages: a cursor, and the end.
	page, next, err := f.svc.Invites(f.ctx, Alice, r, "", 4)
	require.NoError(t, err)
	assert.Len(t, page, 4)
	require.Equal(t, page[3].ID, next)
	page, next, err = f.svc.Invites(f.ctx, Alice, r, next, 4)
	require.NoError(t, err)
	assert.Len(t, page, 3)
	assert.Empty(t, next)
	_, _, err = f.svc.Invites(f.ctx, Alice, r, "i_nothere", 4)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
	cpage, next, err := f.svc.Attachments(f.ctx, Carol, r, "", 3)
	require.NoError(t, err)
	assert.Len(t, cpage, 3)
	for _, a := range cpage {
		assert.Equal(t, dealroom.Shared, a.Visibility)
	}
	cpage, next, err = f.svc.Attachments(f.ctx, Carol, r, next, 3)
	require.NoError(t, err)
	assert.Len(t, cpage, 2, "five shared of seven")
	assert.Empty(t, next)
}

func testInbox(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	_, err := f.svc.PostMessage(f.ctx, Alice, r, room.MessageDraft{Body: "@Carol please check"}, "")
	require.NoError(t, err)
	_, err = f.svc.CreateTask(f.ctx, Alice, r, task.Draft{Title: "Sign", Assignees: []string{"carol"}}, "")
	require.NoError(t, err)
	items, err := f.store.Inbox(f.ctx, "carol", "", 10)
	require.NoError(t, err)
	require.Len(t, items, 3, "invitation, mention, assignment")
	assert.Equal(t, []string{room.InboxAssignment, room.InboxMention, room.InboxInvitation},
		[]string{items[0].Kind, items[1].Kind, items[2].Kind}, "newest first")
	page, err := f.store.Inbox(f.ctx, "carol", items[0].ID, 1)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, items[1].ID, page[0].ID)

	readAt := f.clock()
	require.NoError(t, f.store.MarkRead(f.ctx, "carol", items[1].ID, readAt))
	require.NoError(t, f.store.MarkRead(f.ctx, "carol", items[1].ID, readAt.Add(time.Hour)), "marking twice is fine")
	items, err = f.store.Inbox(f.ctx, "carol", "", 10)
	require.NoError(t, err)
	require.NotNil(t, items[1].ReadAt)
	assert.True(t, items[1].ReadAt.Equal(readAt), "the first read time stays")
	assert.Nil(t, items[0].ReadAt)
	err = f.store.MarkRead(f.ctx, "carol", "nope", readAt)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	err = f.store.MarkRead(f.ctx, "bob", items[0].ID, readAt)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "nobody marks another person's items")
	none, err := f.store.Inbox(f.ctx, "alice", "", 10)
	require.NoError(t, err)
	assert.Empty(t, none, "nobody is notified of their own doing")
}

func testActivity(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	before, err := f.store.Room(f.ctx, r)
	require.NoError(t, err)
	assert.Nil(t, before.LastCustomerActivityAt)
	f.advance(time.Hour)
	_, err = f.svc.PostMessage(f.ctx, Carol, r, room.MessageDraft{Body: "Hello"}, "")
	require.NoError(t, err)
	after, err := f.store.Room(f.ctx, r)
	require.NoError(t, err)
	require.NotNil(t, after.LastCustomerActivityAt)
	assert.True(t, after.LastActivityAt.After(before.LastActivityAt))
	assert.Equal(t, after.LastActivityAt, *after.LastCustomerActivityAt)
	assert.Equal(t, before.Head+1, after.Head)
	assert.Equal(t, before.Name, after.Name)
}
