package notifytest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/netguard"
	"dealroom/notify"
	"dealroom/outbox"
	"dealroom/push"
	"dealroom/push/pushtest"
	"dealroom/room"
	"dealroom/task"
)

// PushStore is what the push suite needs: the notifier's records, the
// rooms and the push subscriptions.
type PushStore interface {
	Store
	push.Store
}

// PushEnv is Env with a notifier that also pushes, to devices at a push
// service played on 127.0.0.1.
type PushEnv struct {
	*Env
	Service *pushtest.Service
	Keys    push.Keys
	Push    push.Store
}

// NewPushEnv is NewDelayedEnv with pushes.
func NewPushEnv(t *testing.T, st PushStore, delay time.Duration) *PushEnv {
	e := NewDelayedEnv(t, st, delay)
	svc := pushtest.StartService(t)
	allow, err := netguard.ParseAllow("127.0.0.1")
	require.NoError(t, err)
	g := netguard.New(netguard.Config{Allow: allow, TLS: svc.TLS()})
	keys, err := push.LoadKeys(context.Background(), st)
	require.NoError(t, err)
	c, err := push.NewClient(keys, "mailto:ops@deals.example.com", g, 0)
	require.NoError(t, err)
	n, err := notify.New(notify.Config{PublicURL: PublicURL, Secret: Secret, Delay: delay, DigestHour: DigestHour,
		Now: e.Clock.Now, Push: &notify.Push{Client: c, Store: st}}, st, st)
	require.NoError(t, err)
	e.Notifier = n
	return &PushEnv{Env: e, Service: svc, Keys: keys, Push: st}
}

// Subscribe registers a new device of user at the service and the store.
func (e *PushEnv) Subscribe(t *testing.T, user string) *pushtest.Device {
	d := e.Service.NewDevice(t)
	allow, _ := netguard.ParseAllow("127.0.0.1")
	s, err := push.NewSubscription(netguard.New(netguard.Config{Allow: allow}), user, d.Endpoint, d.P256dh, d.Auth, e.Clock.Now())
	require.NoError(t, err)
	require.NoError(t, e.Push.AddPushSubscription(context.Background(), s))
	return d
}

// Pushed returns the notifications the device received, decrypted; every
// request must have been well made.
func (e *PushEnv) Pushed(t *testing.T, d *pushtest.Device) []push.Notification {
	t.Helper()
	var out []push.Notification
	for _, m := range e.Service.Received(d) {
		require.NoError(t, m.Err)
		assert.Equal(t, e.Keys.Public, m.VAPID.Key)
		assert.Equal(t, e.Service.URL(), m.VAPID.Aud)
		assert.Equal(t, "mailto:ops@deals.example.com", m.VAPID.Sub)
		assert.NotEmpty(t, m.Header.Get("TTL"))
		var n push.Notification
		require.NoError(t, json.Unmarshal(m.Plain, &n))
		out = append(out, n)
	}
	return out
}

// TestPush runs the push suite against stores made by newStore.
func TestPush(t *testing.T, newStore func(tb testing.TB) PushStore) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *PushEnv)
	}{
		{"MentionOfACustomer", testPushMention},
		{"GoneAndRetried", testPushGone},
		{"RemovedBeforeItIsSent", testPushRevoked},
		{"ReplyAndDueDate", testPushReplyAndDue},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, NewPushEnv(t, newStore(t), 0)) })
	}
	t.Run("SeenIsNotPushed", func(t *testing.T) { testPushSeen(t, NewPushEnv(t, newStore(t), Delay)) })
}

func testPushMention(t *testing.T, e *PushEnv) {
	ctx := context.Background()
	carol := e.Subscribe(t, e.Carol.ID)
	bob := e.Subscribe(t, Bob.ID)
	e.post(t, Alice, room.MessageDraft{Body: "Ready to sign, @Carol Buyer? Price is firm.", Visibility: dealroom.Shared})
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer floor price is 80k, SECRET-FLOOR", Visibility: dealroom.Internal})
	e.Deliver(t)

	got := e.Pushed(t, carol)
	require.Len(t, got, 1, "the customer hears of the shared mention only")
	n := got[0]
	assert.Equal(t, "Alice Seller mentioned you in Acme renewal", n.Title)
	assert.Contains(t, n.Body, "Ready to sign")
	assert.Equal(t, PublicURL+"/room/"+e.Room+"/discussion", n.URL, "a tap opens the item")
	for _, m := range e.Service.Received(carol) {
		assert.NotContains(t, string(m.Plain), "SECRET")
		assert.NotContains(t, string(m.Plain), "floor price")
		assert.Equal(t, "high", m.Header.Get("Urgency"))
	}
	bobs := e.Pushed(t, bob)
	require.Len(t, bobs, 1)
	assert.Contains(t, bobs[0].Body, "SECRET-FLOOR", "staff are told of the internal note")
	assert.Len(t, e.To(carolEmail), 1, "the email goes too")

	// The record's key has email's shape: (channel, person, event), so
	// that a repeated event makes no second record, and the tag is it.
	evs, err := e.Store.Events(ctx, e.Room, 0, 100, false)
	require.NoError(t, err)
	var mention room.Event
	for _, ev := range evs {
		if strings.Contains(string(ev.Data), "Ready to sign") {
			mention = ev
		}
	}
	assert.Equal(t, outbox.Key(outbox.Push, e.Carol.ID, mention.ID), n.Tag)
	require.NoError(t, e.Notifier.Handle(ctx, mention), "the event handled again")
	e.Deliver(t)
	assert.Len(t, e.Service.Received(carol), 1, "nothing twice")
	assert.Len(t, e.Service.Received(bob), 1)
}

func testPushGone(t *testing.T, e *PushEnv) {
	ctx := context.Background()
	old := e.Subscribe(t, Bob.ID)
	phone := e.Subscribe(t, Bob.ID)
	e.Service.Answer(old, http.StatusGone)
	e.Service.Answer(phone, http.StatusServiceUnavailable)
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer have a look", Visibility: dealroom.Shared})
	e.Deliver(t)
	subs, err := e.Push.PushSubscriptions(ctx, Bob.ID)
	require.NoError(t, err)
	require.Len(t, subs, 1, "the subscription the service said is gone is removed")
	assert.Equal(t, phone.Endpoint, subs[0].Endpoint)
	require.Len(t, e.Service.Received(phone), 1)

	e.Deliver(t)
	assert.Len(t, e.Service.Received(phone), 1, "not again before the backoff")
	e.Clock.Advance(outbox.DefaultBackoff)
	e.Deliver(t)
	got := e.Pushed(t, phone)
	require.Len(t, got, 2, "tried again after the backoff")
	assert.Equal(t, http.StatusCreated, e.Service.Received(phone)[1].Status)
	assert.Len(t, e.Service.Received(old), 1, "the gone device is not tried again")
	e.Clock.Advance(time.Hour)
	e.Deliver(t)
	assert.Len(t, e.Service.Received(phone), 2, "sent once it was taken")
}

// testPushRevoked: a customer removed from the room between the decision
// and the send gets nothing.
func testPushRevoked(t *testing.T, e *PushEnv) {
	ctx := context.Background()
	carol := e.Subscribe(t, e.Carol.ID)
	e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer the contract, CONFIDENTIAL", Visibility: dealroom.Shared})
	r := e.runner("a")
	require.NoError(t, r.Pass(ctx, nil), "the record is made")
	_, err := e.Svc.RemoveMember(ctx, Alice, e.Room, e.Carol.ID, "")
	require.NoError(t, err)
	for _, job := range r.Jobs {
		require.NoError(t, job(ctx))
	}
	assert.Empty(t, e.Service.Received(carol), "checked again at send time")
	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer after", Visibility: dealroom.Shared})
	e.Deliver(t)
	assert.Empty(t, e.Service.Received(carol))
}

func testPushSeen(t *testing.T, e *PushEnv) {
	ctx := context.Background()
	carol := e.Subscribe(t, e.Carol.ID)
	bob := e.Subscribe(t, Bob.ID)
	res := e.post(t, Alice, room.MessageDraft{Body: "@Carol Buyer and @Bob Engineer, the draft is up", Visibility: dealroom.Shared})
	e.Deliver(t)
	assert.Empty(t, e.Service.All(), "nothing is pushed before the delay")
	_, err := e.Svc.SetRead(ctx, e.Carol, e.Room, res.Seq)
	require.NoError(t, err)
	e.Clock.Advance(Delay)
	e.Deliver(t)
	assert.Empty(t, e.Service.Received(carol), "what she saw is not pushed")
	assert.Len(t, e.Pushed(t, bob), 1)
}

// testPushReplyAndDue: a reply in a thread and a step's moved due date
// are pushed like their email: to who wrote in the thread and to the
// step's assignees, not to who acted, and a mention in the reply is
// pushed once, as a mention.
func testPushReplyAndDue(t *testing.T, e *PushEnv) {
	ctx := context.Background()
	carol := e.Subscribe(t, e.Carol.ID)
	bob := e.Subscribe(t, Bob.ID)
	alice := e.Subscribe(t, Alice.ID)
	root := e.post(t, e.Carol, room.MessageDraft{Body: "Can we move the kick-off?", Visibility: dealroom.Shared})
	e.post(t, Bob, room.MessageDraft{Body: "Checking.", ParentID: root.Message.ID, Visibility: dealroom.Shared})
	e.Deliver(t)
	got := e.Pushed(t, carol)
	require.Len(t, got, 1, "the thread's writer hears of the reply")
	assert.Contains(t, got[0].Body, "Checking.")
	assert.Equal(t, PublicURL+"/room/"+e.Room+"/discussion", got[0].URL)
	assert.Empty(t, e.Service.Received(bob), "not the one who replied")

	e.post(t, Alice, room.MessageDraft{Body: "@Bob Engineer can you do Tuesday?", ParentID: root.Message.ID, Visibility: dealroom.Shared})
	e.Deliver(t)
	assert.Len(t, e.Pushed(t, bob), 1, "a mention in a reply: one push")
	assert.Len(t, e.Pushed(t, carol), 2)
	assert.Empty(t, e.Service.Received(alice))

	due, later := task.Date{Year: 2026, Month: 3, Day: 20}, task.Date{Year: 2026, Month: 3, Day: 27}
	tk, err := e.Svc.CreateTask(ctx, Alice, e.Room, task.Draft{Title: "Kick-off", Due: &due,
		Assignees: []string{e.Carol.ID}, Visibility: dealroom.Shared}, "")
	require.NoError(t, err)
	e.Deliver(t)
	before := len(e.Service.Received(carol))
	_, err = e.Svc.UpdateTask(ctx, Bob, e.Room, tk.ID, task.Patch{Due: dealroom.Opt[task.Date]{Set: true, V: later}}, "")
	require.NoError(t, err)
	e.Deliver(t)
	got = e.Pushed(t, carol)
	require.Len(t, got, before+1, "the assignee hears of the moved date")
	assert.Contains(t, got[len(got)-1].Title, "Kick-off")
}
