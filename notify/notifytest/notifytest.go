// Package notifytest is the conformance suite of notify.People and the
// notifier's behaviour over a store, with a real SMTP server: every store
// runs TestStore in its own tests.
package notifytest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/consume"
	"dealroom/internal/testclock"
	"dealroom/internal/testenv"
	"dealroom/mail"
	"dealroom/notify"
	"dealroom/outbox"
	"dealroom/room"
	"dealroom/task"
)

// Store is what the suite needs: the notifier's records and the rooms.
type Store interface {
	notify.Store
	room.Store
}

// People of the suite: staff with addresses from their sign-in; Carol,
// a customer, gets hers from the invite she accepts.
var (
	Alice = dealroom.Actor{ID: "alice", Name: "Alice Seller", Email: "alice@bank.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	Bob   = dealroom.Actor{ID: "bob", Name: "Bob Engineer", Email: "bob@bank.example", Kind: dealroom.Staff, Role: dealroom.Rep}
)

const carolEmail = "carol@acme.example"

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) Store) {
	t.Run("People", func(t *testing.T) { testPeople(t, newStore(t)) })
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"MentionOfACustomer", testMentionOfCustomer},
		{"InternalNoteReachesOnlyStaff", testInternalNote},
		{"AssignmentAndNotTheActor", testAssignment},
		{"UnsubscribeByTheLink", testUnsubscribe},
		{"TwoInstancesSendOnce", testTwoInstances},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewEnv(t, newStore(t))) })
	}
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"SeenInTheRoomIsNotMailed", testSeenNotMailed},
		{"ABurstIsOneMail", testBurst},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewDelayedEnv(t, newStore(t), Delay)) })
	}
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *Env)
	}{
		{"DigestOfWhatWasNotSeen", testDigest},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewEnv(t, newStore(t))) })
	}
}

func testPeople(t *testing.T, st Store) {
	ctx := context.Background()
	p, err := st.Person(ctx, "ana")
	require.NoError(t, err)
	assert.Nil(t, p)

	require.NoError(t, st.SetAddress(ctx, "ana", "ana@example.com", t0))
	p, err = st.Person(ctx, "ana")
	require.NoError(t, err)
	require.NotNil(t, p)
	assert.Equal(t, notify.Person{User: "ana", Email: "ana@example.com", UpdatedAt: t0}, *p)
	assert.True(t, p.Wants("r1"))

	require.NoError(t, st.SetEmail(ctx, "ana", "r1", true, t0))
	require.NoError(t, st.SetEmail(ctx, "ana", "r1", true, t0))
	require.NoError(t, st.SetEmail(ctx, "ana", "r2", true, t0))
	require.NoError(t, st.SetAddress(ctx, "ana", "ana@new.example", t0.Add(time.Second)))
	p, err = st.Person(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, "ana@new.example", p.Email, "a new address keeps the choices")
	assert.Equal(t, []string{"r1", "r2"}, p.RoomsOff)
	assert.False(t, p.Wants("r1"))
	assert.True(t, p.Wants("r3"))

	require.NoError(t, st.SetEmail(ctx, "ana", "r1", false, t0))
	require.NoError(t, st.SetEmail(ctx, "ana", "", true, t0))
	p, err = st.Person(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, []string{"r2"}, p.RoomsOff)
	assert.True(t, p.EmailOff)
	assert.False(t, p.Wants("r3"), "off overall")

	require.NoError(t, st.SetDigest(ctx, "ana", notify.Weekly, t0))
	p, err = st.Person(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, notify.Weekly, p.Digest)
	assert.True(t, p.EmailOff, "the digest choice keeps the others")

	require.NoError(t, st.SetEmail(ctx, "zoe", "", true, t0), "a choice before any address")
	p, err = st.Person(ctx, "zoe")
	require.NoError(t, err)
	assert.True(t, p.EmailOff)
	assert.False(t, p.Wants("r1"))

	require.NoError(t, st.SetDigest(ctx, "bea", notify.Off, t0))
	var users []string
	after := ""
	for {
		page, err := st.PeopleAfter(ctx, after, 2)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			users = append(users, p.User)
		}
		after = page[len(page)-1].User
	}
	assert.Equal(t, []string{"ana", "bea", "zoe"}, users, "everyone, a page at a time, in order")
}

// Env is a room service, a notifier and a real SMTP server over one store,
// on a clock of its own.
type Env struct {
	Clock    *testclock.Clock
	Store    Store
	Svc      *room.Service
	Notifier *notify.Notifier
	SMTP     *testenv.SMTPServer
	Mail     mail.Sender
	Room     string
	Carol    dealroom.Actor
}

// PublicURL is where the suite's links point.
const PublicURL = "https://deals.example.com"

// Secret is the suite's server secret.
var Secret = []byte(strings.Repeat("k", 32))

// Delay is the wait of the suite's delayed notifications, as in production.
const Delay = 2 * time.Minute

// DigestHour is the hour of the suite's digests (UTC); the suite starts
// on Monday 2 March 2026 at 09:00.
const DigestHour = 8

// NewEnv makes a room with Alice, Bob and Carol (a customer, by invite),
// a notifier that knows Alice and Bob from their sign-ins and sends at
// once, and a runner that started before the room.
func NewEnv(t *testing.T, st Store) *Env { return NewDelayedEnv(t, st, 0) }

// NewDelayedEnv is NewEnv with a notifier whose notifications wait delay.
func NewDelayedEnv(t *testing.T, st Store, delay time.Duration) *Env {
	ctx := context.Background()
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	m, err := mail.Open(mail.Config{URL: srv.URL(), From: "Dealroom <rooms@deals.example.com>", Rate: 1000})
	require.NoError(t, err)
	clock := testclock.New(t0)
	n, err := notify.New(notify.Config{PublicURL: PublicURL, Secret: Secret, Delay: delay, DigestHour: DigestHour, Now: clock.Now}, st, st)
	require.NoError(t, err)
	e := &Env{Clock: clock, Store: st, Svc: &room.Service{Store: st, Now: clock.Now}, Notifier: n, SMTP: srv, Mail: m}
	require.NoError(t, e.runner("x").Pass(ctx, nil), "the consumer starts on the empty store")

	r, err := e.Svc.CreateRoom(ctx, Alice, room.Draft{Name: "Acme renewal", Company: "Acme"}, "")
	require.NoError(t, err)
	e.Room = r.ID
	_, err = e.Svc.AddMember(ctx, Alice, r.ID, room.MemberDraft{UserID: Bob.ID, Name: Bob.Name, Kind: dealroom.Staff,
		Access: room.Write}, "")
	require.NoError(t, err)
	inv, err := e.Svc.CreateInvite(ctx, Alice, r.ID, room.InviteDraft{Email: carolEmail, Access: room.Write}, "")
	require.NoError(t, err)
	_, carol, err := e.Svc.AcceptInvite(ctx, inv.Code, room.Acceptance{Name: "Carol Buyer", Email: carolEmail})
	require.NoError(t, err)
	e.Carol = dealroom.Actor{ID: carol.UserID, Name: carol.Name, Email: carolEmail, Kind: dealroom.Customer, Invite: inv.ID}
	n.Seen(ctx, Alice)
	n.Seen(ctx, Bob)
	return e
}

func (e *Env) runner(holder string) *consume.Runner {
	sender := e.Notifier.Sender(e.Store, e.Mail)
	sender.Now = e.Clock.Now
	return &consume.Runner{Store: e.Store, Events: e.Store, Lease: notify.Consumer, Holder: holder,
		Consumers: []consume.Consumer{e.Notifier.Consumer()},
		Jobs:      []func(context.Context) error{sender.Send},
		Interval:  20 * time.Millisecond, LeaseTTL: 3 * time.Second}
}

// Deliver runs one pass of the consumer and the sender.
func (e *Env) Deliver(t *testing.T) {
	t.Helper()
	r := e.runner("a")
	require.NoError(t, r.Pass(context.Background(), nil))
	for _, job := range r.Jobs {
		require.NoError(t, job(context.Background()))
	}
}

// To returns the messages that reached address.
func (e *Env) To(address string) []testenv.ReceivedMail {
	var out []testenv.ReceivedMail
	for _, m := range e.SMTP.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, address) {
				out = append(out, m)
			}
		}
	}
	return out
}

func (e *Env) post(t *testing.T, a dealroom.Actor, d room.MessageDraft) room.MessageResult {
	t.Helper()
	res, err := e.Svc.PostMessage(context.Background(), a, e.Room, d, "")
	require.NoError(t, err)
	return res
}

func testMentionOfCustomer(t *testing.T, e *Env) {
	e.post(t, Alice, room.MessageDraft{Body: "Ready to sign, @Carol Buyer? Price is firm.", Visibility: dealroom.Shared})
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer floor price is 80k, SECRET-FLOOR", Visibility: dealroom.Internal})
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1, "the customer hears of the shared mention only")
	m := got[0]
	assert.Contains(t, m.Subject, "Alice Seller mentioned you in Acme renewal")
	assert.Contains(t, m.Text, "Ready to sign")
	assert.Contains(t, m.Text, PublicURL+"/room/"+e.Room+"/discussion")
	assert.Contains(t, m.HTML, `href="`+PublicURL+"/room/"+e.Room+`/discussion"`)
	for _, part := range []string{m.Text, m.HTML, m.Subject, string(m.Raw)} {
		assert.NotContains(t, part, "SECRET-FLOOR")
		assert.NotContains(t, part, "floor price")
	}
	assert.Contains(t, m.Header.Get("List-Unsubscribe"), PublicURL+"/api/v1/notifications/unsubscribe?token=")
	assert.Equal(t, "List-Unsubscribe=One-Click", m.Header.Get("List-Unsubscribe-Post"))
	assert.Contains(t, m.Header.Get("Message-Id"), "@deals.example.com>")
	assert.Equal(t, "<room."+e.Room+"@deals.example.com>", m.Header.Get("In-Reply-To"), "one conversation per room")
	assert.Equal(t, m.Header.Get("In-Reply-To"), m.Header.Get("References"))

	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 1)
	assert.Contains(t, bobs[0].Text, "SECRET-FLOOR", "staff are told of the internal note")

	e.Deliver(t)
	assert.Len(t, e.SMTP.Messages(), 2, "nothing twice")
}

func testInternalNote(t *testing.T, e *Env) {
	res := e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer is slow, @Bob Engineer push", Visibility: dealroom.Internal})
	assert.Equal(t, []string{"Carol Buyer"}, res.UnresolvedMentions, "the domain does not let a customer be named in an internal note")
	_, err := e.Svc.CreateTask(context.Background(), Alice, e.Room, task.Draft{Title: "Internal pricing SECRET",
		Description: "ask @Carol Buyer and @Bob Engineer", Visibility: dealroom.Internal}, "")
	require.NoError(t, err)
	e.Deliver(t)
	assert.Empty(t, e.To(carolEmail), "a customer is never told of an internal item")
	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 1, "two items due together go in one mail")
	assert.Contains(t, bobs[0].Text, "@Bob Engineer push")
	assert.Contains(t, bobs[0].Text, "Internal pricing SECRET")

	// Who is no longer a member by the time the mail is made hears
	// nothing of it.
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer one more SECRET", Visibility: dealroom.Internal})
	_, err = e.Svc.RemoveMember(context.Background(), Alice, e.Room, Bob.ID, "")
	require.NoError(t, err)
	e.Deliver(t)
	assert.Len(t, e.To(Bob.Email), 1)
}

func testAssignment(t *testing.T, e *Env) {
	ctx := context.Background()
	tk, err := e.Svc.CreateTask(ctx, Alice, e.Room, task.Draft{Title: "Sign the order form",
		Description: "Please sign by Friday.", Assignees: []string{e.Carol.ID, Alice.ID}, Visibility: dealroom.Shared}, "")
	require.NoError(t, err)
	e.post(t, Alice, room.MessageDraft{Body: "Note to self @Alice Seller", Visibility: dealroom.Shared})
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Subject, "assigned you “Sign the order form”")
	assert.Contains(t, got[0].Text, "Please sign by Friday.")
	assert.Contains(t, got[0].Text, PublicURL+"/room/"+e.Room+"/task/"+tk.ID)
	assert.Empty(t, e.To(Alice.Email), "the actor is not told of their own doing")
}

func testUnsubscribe(t *testing.T, e *Env) {
	ctx := context.Background()
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer one", Visibility: dealroom.Shared})
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1)
	link := got[0].Header.Get("List-Unsubscribe")
	token := link[strings.Index(link, "token=")+len("token=") : strings.LastIndex(link, ">")]

	_, err := e.Notifier.Unsubscribe(ctx, token+"x", false)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "a forged token")
	u, err := e.Notifier.Unsubscribe(ctx, token, false)
	require.NoError(t, err)
	assert.Equal(t, "Acme renewal", u.RoomName)

	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer two", Visibility: dealroom.Shared})
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer two", Visibility: dealroom.Shared})
	e.Deliver(t)
	assert.Len(t, e.To(carolEmail), 1, "no more mail about the room")
	assert.Len(t, e.To(Bob.Email), 1, "others still get theirs")

	// Another room: still mailed, until unsubscribed from everything.
	r2, err := e.Svc.CreateRoom(ctx, Alice, room.Draft{Name: "Other deal", Company: "Acme"}, "")
	require.NoError(t, err)
	_, err = e.Svc.AddMember(ctx, Alice, r2.ID, room.MemberDraft{UserID: Bob.ID, Name: Bob.Name, Kind: dealroom.Staff, Access: room.Write}, "")
	require.NoError(t, err)
	_, err = e.Svc.PostMessage(ctx, Alice, r2.ID, room.MessageDraft{Body: "@Bob Engineer three"}, "")
	require.NoError(t, err)
	e.Deliver(t)
	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 2)
	link = bobs[1].Header.Get("List-Unsubscribe")
	token = link[strings.Index(link, "token=")+len("token=") : strings.LastIndex(link, ">")]
	_, err = e.Notifier.Unsubscribe(ctx, token, true)
	require.NoError(t, err)
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer four", Visibility: dealroom.Shared})
	e.Deliver(t)
	assert.Len(t, e.To(Bob.Email), 2, "off everywhere")
}

func testTwoInstances(t *testing.T, e *Env) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range []string{"one", "two"} {
		r := e.runner(h)
		wg.Go(func() { r.Run(ctx) })
	}
	const n = 15
	point := func(i int) string { return fmt.Sprintf("[point %02d]", i) }
	for i := range n {
		e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer and @Carol Buyer, " + point(i), Visibility: dealroom.Shared})
	}
	// told counts, per address, the mails that tell of each point (some
	// mails tell of several: those due together).
	told := func() map[string]map[string]int {
		out := map[string]map[string]int{}
		for _, to := range []string{Bob.Email, carolEmail} {
			out[to] = map[string]int{}
			for _, m := range e.To(to) {
				for i := range n {
					if strings.Contains(m.Text, point(i)) {
						out[to][point(i)]++
					}
				}
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		c := told()
		return len(c[Bob.Email]) == n && len(c[carolEmail]) == n
	}, 30*time.Second, 20*time.Millisecond)
	cancel()
	wg.Wait()
	for to, points := range told() {
		for p, c := range points {
			assert.Equal(t, 1, c, "%s told of %s once", to, p)
		}
	}
	ids := map[string]int{}
	for _, m := range e.SMTP.Messages() {
		ids[m.Header.Get("Message-Id")]++
	}
	for id, c := range ids {
		assert.Equal(t, 1, c, "message %s sent once", id)
	}
}

func testSeenNotMailed(t *testing.T, e *Env) {
	ctx := context.Background()
	res := e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer and @Bob Engineer, the draft is up", Visibility: dealroom.Shared})
	e.Deliver(t)
	e.Clock.Advance(Delay / 2)
	e.Deliver(t)
	assert.Empty(t, e.SMTP.Messages(), "nothing is sent before the delay")

	_, err := e.Svc.SetRead(ctx, e.Carol, e.Room, res.Seq)
	require.NoError(t, err)
	e.Clock.Advance(Delay/2 + time.Second)
	e.Deliver(t)
	assert.Empty(t, e.To(carolEmail), "Carol saw it in the room")
	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 1, "Bob did not: he is mailed after the delay")
	assert.Contains(t, bobs[0].Text, "the draft is up")

	e.Clock.Advance(time.Hour)
	e.Deliver(t)
	assert.Len(t, e.SMTP.Messages(), 1, "the skipped one is settled, not sent later")
	pending, err := e.Store.DueOutbox(ctx, e.Clock.Now().Add(24*time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func testBurst(t *testing.T, e *Env) {
	ctx := context.Background()
	tk, err := e.Svc.CreateTask(ctx, Alice, e.Room, task.Draft{Title: "Security review", Visibility: dealroom.Shared}, "")
	require.NoError(t, err)
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer first question", Visibility: dealroom.Shared})
	e.Deliver(t)
	e.Clock.Advance(30 * time.Second)
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer second question", TaskID: tk.ID, Visibility: dealroom.Shared})
	e.Deliver(t)
	e.Clock.Advance(30 * time.Second)
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer third question", Visibility: dealroom.Shared})
	e.Deliver(t)
	recs, err := e.Store.DueOutbox(ctx, e.Clock.Now().Add(Delay), 10)
	require.NoError(t, err)
	require.Len(t, recs, 3)

	// The first is due; the two others would be within the minute.
	e.Clock.Advance(Delay - time.Minute + time.Second)
	e.Deliver(t)
	got := e.To(carolEmail)
	require.Len(t, got, 1, "one mail for the three")
	m := got[0]
	assert.Equal(t, "3 new notifications in Acme renewal", m.Subject)
	first, second, third := strings.Index(m.Text, "first question"), strings.Index(m.Text, "second question"), strings.Index(m.Text, "third question")
	assert.True(t, first >= 0 && first < second && second < third, "the three, in order:\n%s", m.Text)
	assert.Contains(t, m.Text, PublicURL+"/room/"+e.Room+"/discussion")
	assert.Contains(t, m.Text, PublicURL+"/room/"+e.Room+"/task/"+tk.ID)
	assert.Contains(t, m.HTML, `href="`+PublicURL+"/room/"+e.Room+"/task/"+tk.ID+`"`)
	assert.Equal(t, "<"+outbox.BatchKey(recs)+"@deals.example.com>", m.Header.Get("Message-Id"), "one id made from the records' keys")
	assert.Contains(t, m.Header.Get("List-Unsubscribe"), PublicURL+"/api/v1/notifications/unsubscribe?token=")

	e.Clock.Advance(time.Hour)
	e.Deliver(t)
	assert.Len(t, e.SMTP.Messages(), 1)
}

func testDigest(t *testing.T, e *Env) {
	ctx := context.Background()
	// Monday 09:00.
	e.post(t, Alice, room.MessageDraft{Body: "The quote is ready", Visibility: dealroom.Shared})
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer please check", Visibility: dealroom.Shared})
	e.post(t, Alice, room.MessageDraft{Body: "SECRET margin is 40%", Visibility: dealroom.Internal})
	e.post(t, e.Carol, room.MessageDraft{Body: "Carol's own question", Visibility: dealroom.Shared})
	require.NoError(t, e.Store.SetDigest(ctx, Bob.ID, notify.Weekly, e.Clock.Now()))
	digests := func(n *notify.Notifier) {
		t.Helper()
		require.NoError(t, n.Digests(ctx))
		e.Deliver(t)
	}
	digests(e.Notifier)
	require.Len(t, e.To(carolEmail), 1, "the instant mail of the mention; the day is not over")
	assert.Empty(t, e.To(Bob.Email))

	// Tuesday 09:00: Monday's digest.
	e.Clock.Advance(24 * time.Hour)
	digests(e.Notifier)
	got := e.To(carolEmail)
	require.Len(t, got, 2)
	d := got[1]
	assert.Equal(t, "What you missed in Acme renewal", d.Subject)
	assert.Contains(t, d.Text, "Alice Seller: The quote is ready")
	assert.Contains(t, d.Text, PublicURL+"/room/"+e.Room)
	assert.Contains(t, d.Header.Get("List-Unsubscribe"), PublicURL+"/api/v1/notifications/unsubscribe?token=")
	for _, part := range []string{d.Text, d.HTML} {
		assert.NotContains(t, part, "SECRET", "a customer's digest has nothing internal")
		assert.NotContains(t, part, "please check", "the instant mail told her")
		assert.NotContains(t, part, "own question", "nor what she did")
	}
	assert.Empty(t, e.To(Bob.Email), "staff get none by default; Bob's weekly one comes on Monday")
	assert.Empty(t, e.To(Alice.Email))

	// Once per period, across instances and restarts.
	again, err := notify.New(notify.Config{PublicURL: PublicURL, Secret: Secret, DigestHour: DigestHour, Now: e.Clock.Now}, e.Store, e.Store)
	require.NoError(t, err)
	digests(again)
	digests(e.Notifier)
	assert.Len(t, e.To(carolEmail), 2, "one digest a day")

	// What she saw is left out.
	res := e.post(t, Alice, room.MessageDraft{Body: "Seen already", Visibility: dealroom.Shared})
	_, err = e.Svc.SetRead(ctx, e.Carol, e.Room, res.Seq)
	require.NoError(t, err)
	e.post(t, Alice, room.MessageDraft{Body: "Not seen yet", Visibility: dealroom.Shared})
	e.Clock.Advance(24 * time.Hour)
	digests(e.Notifier)
	got = e.To(carolEmail)
	require.Len(t, got, 3)
	assert.Contains(t, got[2].Text, "Not seen yet")
	assert.NotContains(t, got[2].Text, "Seen already")
	assert.NotContains(t, got[2].Text, "quote is ready", "yesterday's digest told her")

	// The next Monday 09:00: Bob's week, internal notes included.
	e.Clock.Advance(5 * 24 * time.Hour)
	digests(e.Notifier)
	bobs := e.To(Bob.Email)
	require.Len(t, bobs, 1)
	assert.Contains(t, bobs[0].Text, "SECRET margin")
	assert.Contains(t, bobs[0].Text, "every week")
	assert.Len(t, e.To(carolEmail), 3, "nothing new for Carol since her last digest")
}
