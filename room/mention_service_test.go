package room_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// countingStore counts what the decisions read from their views: the work
// done inside the store's write transaction (on the embedded store, the
// one writer of every room). before, when set, runs once before the next
// command goes to the store.
type countingStore struct {
	room.Store
	mu      sync.Mutex
	members int // View.Members calls
	member  int // View.Member calls
	before  func()
}

func (c *countingStore) Execute(ctx context.Context, cmd room.Command) (room.Executed, error) {
	c.mu.Lock()
	before := c.before
	c.before = nil
	c.mu.Unlock()
	if before != nil {
		before()
	}
	decide := cmd.Decide
	cmd.Decide = func(v room.View) (room.Decision, error) { return decide(&countingView{View: v, c: c}) }
	return c.Store.Execute(ctx, cmd)
}

func (c *countingStore) reset() (members, member int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	members, member = c.members, c.member
	c.members, c.member = 0, 0
	return members, member
}

type countingView struct {
	room.View
	c *countingStore
}

func (v *countingView) Members() ([]room.Member, error) {
	v.c.mu.Lock()
	v.c.members++
	v.c.mu.Unlock()
	return v.View.Members()
}

func (v *countingView) Member(id string) (*room.Member, error) {
	v.c.mu.Lock()
	v.c.member++
	v.c.mu.Unlock()
	return v.View.Member(id)
}

// crowdedRoom is e's room with n more staff members, named alike on
// purpose (Member 0 ... Member n-1, user ids m0 ... mn-1), and a counting
// store under the service.
func crowdedRoom(t *testing.T, e *env, n int) (string, *countingStore) {
	t.Helper()
	r := e.room(t)
	for i := range n {
		_, err := e.svc.AddMember(e.ctx, alice, r, room.MemberDraft{UserID: fmt.Sprintf("m%d", i),
			Name: fmt.Sprintf("Member %d", i), Kind: dealroom.Staff}, "")
		require.NoError(t, err)
	}
	cs := &countingStore{Store: e.store}
	e.svc.Store = cs
	return r, cs
}

func TestMentionsAreResolvedBeforeTheStore(t *testing.T) {
	e := newEnv(t)
	r, cs := crowdedRoom(t, e, 120)
	members, err := e.store.Members(e.ctx, r)
	require.NoError(t, err)

	// The most mentions a message may make, of many members with
	// look-alike names: the decision reads only the members named and
	// never the room's whole membership.
	var b strings.Builder
	for i := range room.MaxMentions {
		fmt.Fprintf(&b, "@Member %d, ", i*2)
	}
	body := strings.Replace(b.String(), "@Member 0, ", "@Carol Buyer, ", 1)
	cs.reset()
	res, err := e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: body}, "")
	require.NoError(t, err)
	want := room.ResolveMentions(body, members, dealroom.Shared)
	assert.Len(t, want.Users, room.MaxMentions)
	assert.Equal(t, want.Users, res.Mentions, "the same people as resolving inside the store")
	assert.Equal(t, orNil(want.Unresolved), orNil(res.UnresolvedMentions))
	all, one := cs.reset()
	assert.Zero(t, all, "the decision does not read every member")
	assert.LessOrEqual(t, one, 1+room.MaxMentions, "the actor and each member named, once")

	// Internal: the customer named is left out, as before.
	res, err = e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: body, Visibility: "internal"}, "")
	require.NoError(t, err)
	want = room.ResolveMentions(body, members, dealroom.Internal)
	assert.Equal(t, want.Users, res.Mentions)
	assert.Equal(t, []string{"Carol Buyer"}, res.UnresolvedMentions)

	// A task's description is resolved the same way.
	cs.reset()
	tr, err := e.svc.CreateTask(e.ctx, bob, r, task.Draft{Title: "Review", Description: "@Member 7 and @m8 please",
		Assignees: []string{"m9"}}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"m7", "m8"}, tr.Mentions)
	all, _ = cs.reset()
	assert.Zero(t, all)
	tr, err = e.svc.UpdateTask(e.ctx, bob, r, tr.ID, task.Patch{Description: dealroom.Some("@Member 3 now")}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"m3"}, tr.Mentions)
	all, _ = cs.reset()
	assert.Zero(t, all)
}

func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestMentionCap(t *testing.T) {
	e := newEnv(t)
	r, cs := crowdedRoom(t, e, 20)
	head := e.head(t, r)

	// A flood: 10,000 characters of @x. Refused, naming the cap, and
	// nothing is written; the decision did no work for the flood.
	flood := strings.TrimSpace(strings.Repeat("@x ", room.MaxBody/3))
	cs.reset()
	_, err := e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: flood}, "")
	requireField(t, "body", err)
	assert.Contains(t, err.Error(), fmt.Sprint(room.MaxMentions))
	all, one := cs.reset()
	assert.Zero(t, all)
	assert.LessOrEqual(t, one, 1)
	assert.Equal(t, head, e.head(t, r), "a refused flood writes nothing")

	// One over the cap, of real members, and repeats count.
	over := strings.Repeat("@bob ", room.MaxMentions+1)
	_, err = e.svc.PostMessage(e.ctx, alice, r, room.MessageDraft{Body: over}, "")
	requireField(t, "body", err)
	_, err = e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "T", Description: over}, "")
	requireField(t, "description", err)
	assert.Equal(t, head, e.head(t, r))

	// At the cap it is accepted, and bob is told once.
	res, err := e.svc.PostMessage(e.ctx, alice, r, room.MessageDraft{Body: strings.Repeat("@bob ", room.MaxMentions)}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"bob"}, res.Mentions)

	// An edit over the cap is refused too.
	_, err = e.svc.EditMessage(e.ctx, alice, r, res.ID, room.MessageEdit{Body: over}, "")
	requireField(t, "body", err)

	// A non-member learns nothing from the cap: the room does not exist.
	_, err = e.svc.PostMessage(e.ctx, olga, r, room.MessageDraft{Body: flood}, "")
	requireCode(t, dealroom.ENOTFOUND, err)
}

func TestMentionOfMemberRemovedMeanwhile(t *testing.T) {
	// Mentions are found before the store call; a member named who is
	// removed before the decision is not notified.
	e := newEnv(t)
	r, cs := crowdedRoom(t, e, 3)
	cs.mu.Lock()
	cs.before = func() {
		_, err := e.svc.RemoveMember(e.ctx, alice, r, "m1", "")
		require.NoError(t, err)
	}
	cs.mu.Unlock()
	res, err := e.svc.PostMessage(e.ctx, bob, r, room.MessageDraft{Body: "@Member 0 and @Member 1"}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"m0"}, res.Mentions)
	assert.Equal(t, []string{"Member 1"}, res.UnresolvedMentions)
}

func TestMentionEditedConcurrently(t *testing.T) {
	// A task's visibility change resolves the description it read before
	// the store call; when the description changed meanwhile the decision
	// resolves the new one.
	e := newEnv(t)
	r, cs := crowdedRoom(t, e, 3)
	tk, err := e.svc.CreateTask(e.ctx, alice, r, task.Draft{Title: "T", Description: "@Member 0", Visibility: dealroom.Internal}, "")
	require.NoError(t, err)
	cs.mu.Lock()
	cs.before = func() {
		_, err := e.svc.UpdateTask(e.ctx, alice, r, tk.ID, task.Patch{Description: dealroom.Some("@Member 2 and @Carol Buyer")}, "")
		require.NoError(t, err)
	}
	cs.mu.Unlock()
	res, err := e.svc.UpdateTask(e.ctx, alice, r, tk.ID, task.Patch{Visibility: dealroom.Some(dealroom.Shared)}, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"m2", "carol"}, res.Mentions)
}
