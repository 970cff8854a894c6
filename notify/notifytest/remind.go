package notifytest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testclock"
	"dealroom/internal/testenv"
	"dealroom/mail"
	"dealroom/notify"
	"dealroom/room"
	"dealroom/task"
)

// TestReminders runs the suite of the notifications that are not inbox
// items (replies in a thread, moved due dates) and of the reminders,
// against stores made by newStore, a fresh and empty one for each call.
func TestReminders(t *testing.T, newStore func(tb testing.TB) Store) {
	t.Run("People", func(t *testing.T) { testReminderPeople(t, newStore(t)) })
	t.Run("AddressesOfEarlierInvites", func(t *testing.T) { testBackfill(t, newStore(t)) })
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"ReplyInAThreadYouWroteIn", testReply},
		{"DueDateChangedBySomeoneElse", testDueChanged},
		{"StepDueTomorrowAndOverdue", testStepReminders},
		{"RoomWithoutCustomerTouch", testQuiet},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewEnv(t, newStore(t))) })
	}
}

func testReminderPeople(t *testing.T, st Store) {
	ctx := context.Background()
	require.NoError(t, st.SetReminders(ctx, "ana", true, t0), "a choice before any address")
	require.NoError(t, st.SetAddress(ctx, "ana", "ana@example.com", t0))
	require.NoError(t, st.SetTimeZone(ctx, "ana", "Europe/Lisbon", t0))
	require.NoError(t, st.SetDigest(ctx, "ana", notify.Weekly, t0))
	p, err := st.Person(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, notify.Person{User: "ana", Email: "ana@example.com", Digest: notify.Weekly, RemindersOff: true,
		TimeZone: "Europe/Lisbon", UpdatedAt: t0}, *p, "each choice keeps the others")
	require.NoError(t, st.SetReminders(ctx, "ana", false, t0))
	page, err := st.PeopleAfter(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.False(t, page[0].RemindersOff)
	assert.Equal(t, "Europe/Lisbon", page[0].TimeZone)
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

// mailsWith returns the mails of mails whose text contains s.
func mailsWith(mails []testenv.ReceivedMail, s string) []testenv.ReceivedMail {
	var out []testenv.ReceivedMail
	for _, m := range mails {
		if strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}

// remind runs the reminders' sweep of each notifier, then delivers.
func (e *Env) remind(t *testing.T, ns ...*notify.Notifier) {
	t.Helper()
	if len(ns) == 0 {
		ns = []*notify.Notifier{e.Notifier}
	}
	for _, n := range ns {
		require.NoError(t, n.Reminders(context.Background()))
	}
	e.Deliver(t)
}

// restarted is another notifier over the same store: a restart, or
// another instance.
func (e *Env) restarted(t *testing.T) *notify.Notifier {
	n, err := notify.New(notify.Config{PublicURL: PublicURL, Secret: Secret, DigestHour: DigestHour, Now: e.Clock.Now}, e.Store, e.Store)
	require.NoError(t, err)
	return n
}

func testStepReminders(t *testing.T, e *Env) {
	ctx := context.Background()
	// Monday 2 March 2026, 09:00 UTC; reminders from 08:00 in each
	// person's zone.
	day := func(d int) *task.Date { return &task.Date{Year: 2026, Month: 3, Day: d} }
	mk := func(d task.Draft) room.TaskResult {
		res, err := e.Svc.CreateTask(ctx, Alice, e.Room, d, "")
		require.NoError(t, err)
		return res
	}
	mk(task.Draft{Title: "Sign the order form", Due: day(3), Assignees: []string{e.Carol.ID, Bob.ID}})
	mk(task.Draft{Title: "SECRET pricing approval", Due: day(3), Assignees: []string{Bob.ID}, Visibility: dealroom.Internal})
	mk(task.Draft{Title: "Already done", Due: day(3), Status: task.Done, Assignees: []string{e.Carol.ID}})
	mk(task.Draft{Title: "Security questionnaire", Due: day(5), Assignees: []string{e.Carol.ID}})
	e.Deliver(t)
	assigned := len(e.SMTP.Messages())

	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(e.Notifier.SetTimeZone(ctx, Bob.ID, "Mars/Olympus")))
	require.NoError(t, e.Notifier.SetTimeZone(ctx, Bob.ID, "America/New_York"))

	e.remind(t)
	carols := mailsWith(e.To(carolEmail), "due tomorrow")
	require.Len(t, carols, 1, "Carol's step due tomorrow")
	assert.Equal(t, "Due tomorrow: “Sign the order form” in Acme renewal", carols[0].Subject)
	assert.Contains(t, carols[0].Text, "is due tomorrow, 2026-03-03")
	assert.Contains(t, carols[0].Text, PublicURL+"/room/"+e.Room+"/task/")
	assert.Contains(t, carols[0].Header.Get("List-Unsubscribe"), PublicURL+"/api/v1/notifications/unsubscribe?token=")
	assert.Empty(t, len(mailsWith(e.To(Bob.Email), "due tomorrow")), "04:00 in New York: not yet")

	// Twice, and after a restart: once.
	e.remind(t, e.Notifier, e.restarted(t), e.restarted(t))
	assert.Len(t, e.SMTP.Messages(), assigned+1)

	// 08:00 in New York: Bob's two steps, in one mail.
	e.Clock.Advance(4 * time.Hour)
	e.remind(t)
	bobs := mailsWith(e.To(Bob.Email), "due tomorrow")
	require.Len(t, bobs, 1)
	assert.Contains(t, bobs[0].Text, "Sign the order form")
	assert.Contains(t, bobs[0].Text, "SECRET pricing approval", "staff are reminded of internal steps")

	// Wednesday 09:00 UTC: the order form is overdue, the questionnaire
	// due tomorrow. Bob turned reminders off.
	require.NoError(t, e.Notifier.SetReminders(ctx, Bob.ID, true))
	e.Clock.Advance(44 * time.Hour)
	e.remind(t, e.Notifier, e.restarted(t))
	e.Clock.Advance(5 * time.Hour)
	e.remind(t)
	carols = e.To(carolEmail)
	last := carols[len(carols)-1]
	assert.Contains(t, last.Text, "was due on 2026-03-03 and is not done")
	assert.Contains(t, last.Text, "Security questionnaire")
	assert.Len(t, mailsWith(carols, "was due on"), 1, "overdue once")
	assert.Len(t, mailsWith(e.To(Bob.Email), "was due on"), 0, "Bob turned reminders off")

	for _, m := range e.To(carolEmail) {
		assert.NotContains(t, m.Text+m.HTML+m.Subject, "SECRET", "a customer is never reminded of an internal step")
	}
	for _, m := range append(mailsWith(carols, "due tomorrow"), mailsWith(carols, "was due on")...) {
		assert.NotContains(t, m.Text, "Already done", "nor anyone of a done one")
	}
	n := len(e.SMTP.Messages())
	e.Clock.Advance(24 * time.Hour)
	e.remind(t)
	assert.Len(t, e.SMTP.Messages(), n, "nothing more: the questionnaire is due today, the order form was told")
}

func testQuiet(t *testing.T, e *Env) {
	ctx := context.Background()
	quiet := func() []testenv.ReceivedMail { return mailsWith(e.To(Alice.Email), "Time to follow up?") }
	e.remind(t)
	assert.Empty(t, len(quiet()))

	// Carol's message after 10 days starts the 14 again.
	e.Clock.Advance(10 * 24 * time.Hour)
	e.post(t, e.Carol, room.MessageDraft{Body: "Still reviewing.", Visibility: dealroom.Shared})
	e.Clock.Advance(5 * 24 * time.Hour)
	e.remind(t)
	assert.Empty(t, len(quiet()), "15 days after the room began, 5 after Carol wrote")

	e.Clock.Advance(9 * 24 * time.Hour)
	e.remind(t, e.Notifier, e.restarted(t))
	e.Clock.Advance(time.Hour)
	e.remind(t, e.restarted(t))
	got := quiet()
	require.Len(t, got, 1, "14 days after Carol wrote, once")
	assert.Equal(t, "No word from the customer in Acme renewal for 14 days", got[0].Subject)
	assert.Contains(t, got[0].Text, PublicURL+"/room/"+e.Room)
	assert.Empty(t, len(mailsWith(e.To(Bob.Email), "follow up")), "only the owner")
	assert.Empty(t, len(mailsWith(e.To(carolEmail), "follow up")))

	// A room's own period.
	_, err := e.Svc.UpdateRoom(ctx, Alice, e.Room, room.Patch{FollowUpDays: dealroom.Some(0)}, "")
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
	_, err = e.Svc.UpdateRoom(ctx, Alice, e.Room, room.Patch{FollowUpDays: dealroom.Some(3)}, "")
	require.NoError(t, err)
	r, err := e.Store.Room(ctx, e.Room)
	require.NoError(t, err)
	assert.Equal(t, 3, r.FollowUpDays)
	e.post(t, e.Carol, room.MessageDraft{Body: "Back from holiday.", Visibility: dealroom.Shared})
	e.Clock.Advance(2 * 24 * time.Hour)
	e.remind(t)
	assert.Len(t, quiet(), 1)
	e.Clock.Advance(24 * time.Hour)
	e.remind(t)
	got = quiet()
	require.Len(t, got, 2, "3 days after Carol wrote")
	assert.Equal(t, "No word from the customer in Acme renewal for 3 days", got[1].Subject)
	// And again after each period while it stays quiet.
	e.Clock.Advance(3 * 24 * time.Hour)
	e.remind(t)
	assert.Len(t, quiet(), 3)
}

func testBackfill(t *testing.T, st Store) {
	ctx := context.Background()
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	m, err := mail.Open(mail.Config{URL: srv.URL(), From: "Dealroom <rooms@deals.example.com>", Rate: 1000})
	require.NoError(t, err)
	clock := testclock.New(t0)
	e := &Env{Clock: clock, Store: st, Svc: &room.Service{Store: st, Now: clock.Now}, SMTP: srv, Mail: m}

	// Two customers join before the notifier ever ran: it starts at the
	// rooms' heads and does not read their invite.accepted events.
	r, err := e.Svc.CreateRoom(ctx, Alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	e.Room = r.ID
	join := func(email string) string {
		inv, err := e.Svc.CreateInvite(ctx, Alice, r.ID, room.InviteDraft{Email: email, Access: room.Write}, "")
		require.NoError(t, err)
		_, mem, err := e.Svc.AcceptInvite(ctx, inv.Code, room.Acceptance{Name: strings.Split(email, "@")[0], Email: email})
		require.NoError(t, err)
		return mem.UserID
	}
	carol := join(carolEmail)
	dan := join("dan@acme.example")
	pending, err := e.Svc.CreateInvite(ctx, Alice, r.ID, room.InviteDraft{Email: "eve@acme.example", Access: room.Write}, "")
	require.NoError(t, err)
	e.Notifier, err = notify.New(notify.Config{PublicURL: PublicURL, Secret: Secret, DigestHour: DigestHour, Now: clock.Now}, st, st)
	require.NoError(t, err)
	e.Deliver(t)
	p, err := st.Person(ctx, carol)
	require.NoError(t, err)
	require.Nil(t, p, "no address learnt from the history")
	// Dan signed in since, with another address: his stays.
	require.NoError(t, st.SetAddress(ctx, dan, "dan@new.example", t0))

	require.NoError(t, e.Notifier.Backfill(ctx))
	require.NoError(t, e.restarted(t).Backfill(ctx), "again, after a restart")
	p, err = st.Person(ctx, carol)
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, carolEmail, p.Email, "the address of her invite")
	p, err = st.Person(ctx, dan)
	require.NoError(t, err)
	assert.Equal(t, "dan@new.example", p.Email)
	people, err := st.PeopleAfter(ctx, "", 10)
	require.NoError(t, err)
	assert.Len(t, people, 2, "nothing for an invite not accepted (%s)", pending.ID)

	_, err = e.Svc.PostMessage(ctx, Alice, r.ID, room.MessageDraft{Body: "@carol the order form is ready", Visibility: dealroom.Shared}, "")
	require.NoError(t, err)
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1, "she is mailed now")
	assert.Contains(t, got[0].Text, "the order form is ready")
}
