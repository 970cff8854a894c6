package notifytest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// TestReminders runs the suite of the notifications that are not inbox
// items (replies in a thread, moved due dates) and of the reminders,
// against stores made by newStore, a fresh and empty one for each call.
func TestReminders(t *testing.T, newStore func(tb testing.TB) Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"ReplyInAThreadYouWroteIn", testReply},
		{"DueDateChangedBySomeoneElse", testDueChanged},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewEnv(t, newStore(t))) })
	}
}

func testReply(t *testing.T, e *Env) {
	root := e.post(t, e.Carol, room.MessageDraft{Body: "Which SSO do you support?", Visibility: dealroom.Shared})
	e.post(t, Bob, room.MessageDraft{Body: "SAML and OIDC.", ParentID: root.Message.ID})
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1, "the thread's author hears of the reply")
	assert.Equal(t, "Bob Engineer replied in a thread you wrote in, in Acme renewal", got[0].Subject)
	assert.Contains(t, got[0].Text, "SAML and OIDC.")
	assert.Contains(t, got[0].Text, PublicURL+"/room/"+e.Room+"/discussion")
	assert.Contains(t, got[0].Header.Get("List-Unsubscribe"), PublicURL+"/api/v1/notifications/unsubscribe?token=")
	assert.Empty(t, len(e.To(Bob.Email)), "not the one who replied")
	assert.Empty(t, len(e.To(Alice.Email)), "nor who did not write in the thread")

	// Everyone who wrote before, once each; a mention is one mail, not two.
	e.post(t, e.Carol, room.MessageDraft{Body: "And SCIM, @Bob Engineer?", ParentID: root.Message.ID})
	e.Deliver(t)
	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 1)
	assert.Contains(t, bobs[0].Subject, "mentioned you", "the mention's mail tells of the reply")
	assert.Len(t, e.To(carolEmail), 1, "not told of her own reply")

	// An internal thread: staff hear of its replies, a customer never.
	inner := e.post(t, Alice, room.MessageDraft{Body: "SECRET: do we have SCIM?", Visibility: dealroom.Internal})
	e.post(t, Bob, room.MessageDraft{Body: "SECRET: not yet", ParentID: inner.Message.ID})
	e.Deliver(t)
	alices := e.To(Alice.Email)
	require.Len(t, alices, 1)
	assert.Contains(t, alices[0].Text, "SECRET: not yet")
	for _, m := range e.To(carolEmail) {
		assert.NotContains(t, m.Text+m.HTML+m.Subject, "SECRET")
	}
	assert.Len(t, e.To(carolEmail), 1)

	e.Deliver(t)
	assert.Len(t, e.SMTP.Messages(), 3, "nothing twice")
}

func testDueChanged(t *testing.T, e *Env) {
	ctx := context.Background()
	due := task.Date{Year: 2026, Month: 3, Day: 20}
	tk, err := e.Svc.CreateTask(ctx, Alice, e.Room, task.Draft{Title: "Sign the order form", Due: &due,
		Assignees: []string{e.Carol.ID, Bob.ID}, Visibility: dealroom.Shared}, "")
	require.NoError(t, err)
	e.Deliver(t)
	require.Len(t, e.To(carolEmail), 1, "the assignment")

	later := task.Date{Year: 2026, Month: 3, Day: 27}
	_, err = e.Svc.UpdateTask(ctx, Bob, e.Room, tk.ID, task.Patch{Due: dealroom.Opt[task.Date]{Set: true, V: later}}, "")
	require.NoError(t, err)
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 2)
	assert.Equal(t, "Bob Engineer changed the due date of “Sign the order form” in Acme renewal", got[1].Subject)
	assert.Contains(t, got[1].Text, "Now due 2026-03-27 (was 2026-03-20).")
	assert.Contains(t, got[1].Text, PublicURL+"/room/"+e.Room+"/task/"+tk.ID)
	assert.Len(t, e.To(Bob.Email), 1, "not the one who changed it: only his assignment")
	assert.Empty(t, len(e.To(Alice.Email)), "nor who is not assigned")

	// Another change that leaves the date alone tells no one.
	_, err = e.Svc.UpdateTask(ctx, Bob, e.Room, tk.ID, task.Patch{Title: dealroom.Opt[string]{Set: true, V: "Sign the form"}}, "")
	require.NoError(t, err)
	// An internal step's date: staff only (a customer cannot be given one).
	in, err := e.Svc.CreateTask(ctx, Bob, e.Room, task.Draft{Title: "SECRET discount approval", Assignees: []string{Alice.ID},
		Visibility: dealroom.Internal}, "")
	require.NoError(t, err)
	_, err = e.Svc.UpdateTask(ctx, Bob, e.Room, in.ID, task.Patch{Due: dealroom.Opt[task.Date]{Set: true, V: due}}, "")
	require.NoError(t, err)
	e.Deliver(t)
	assert.Len(t, e.To(carolEmail), 2)
	alices := e.To(Alice.Email)
	require.Len(t, alices, 1, "the assignment and the date, due together, in one mail")
	assert.Contains(t, alices[0].Text, "Now due 2026-03-20 (was none).")
}
