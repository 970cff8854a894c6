package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/boltstore"
	"dealroom/internal/testenv"
	"dealroom/mail"
	"dealroom/outbox"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type env struct {
	st     *boltstore.Store
	smtp   *testenv.SMTPServer
	sender *outbox.Sender
	clock  *clock
}

func newEnv(t *testing.T) *env {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	m, err := mail.Open(mail.Config{URL: srv.URL(), From: "Dealroom <rooms@dealroom.example>", Rate: 1000, Attempts: 1})
	require.NoError(t, err)
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	return &env{st: st, smtp: srv, clock: c, sender: &outbox.Sender{Store: st, Mail: m, Now: c.now}}
}

// add records a mail to user about event.
func (e *env) add(t *testing.T, user, event string) outbox.Record {
	t.Helper()
	id := outbox.Key(outbox.Email, user, event)
	payload, err := json.Marshal(mail.Message{To: user + "@acme.example", Subject: "About " + event,
		Text: "Hello", MessageID: id + "@dealroom.example"})
	require.NoError(t, err)
	r := outbox.Record{ID: id, Channel: outbox.Email, Recipient: user, RoomID: "r1", EventID: event,
		Payload: payload, State: outbox.Pending, CreatedAt: e.clock.t, Due: e.clock.t}
	_, err = e.st.AddOutbox(context.Background(), []outbox.Record{r})
	require.NoError(t, err)
	return r
}

func messageIDs(srv *testenv.SMTPServer) []string {
	var out []string
	for _, m := range srv.Messages() {
		out = append(out, m.Header.Get("Message-Id"))
	}
	return out
}

func TestSendsEachRecordOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.add(t, "ana", "e1")
	b := e.add(t, "bob", "e1")
	require.NoError(t, e.sender.Send(ctx))
	assert.ElementsMatch(t, []string{"<" + a.ID + "@dealroom.example>", "<" + b.ID + "@dealroom.example>"}, messageIDs(e.smtp))
	require.NoError(t, e.sender.Send(ctx))
	assert.Len(t, e.smtp.Messages(), 2, "a sent record is not sent again")
	due, err := e.st.DueOutbox(ctx, e.clock.t.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, due)
}

func TestRetriesATemporaryFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.add(t, "ana", "e1")
	e.smtp.Refuse(2, 451)
	require.NoError(t, e.sender.Send(ctx))
	assert.Empty(t, e.smtp.Messages())
	due, err := e.st.DueOutbox(ctx, e.clock.t, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "not again at once")

	e.clock.t = e.clock.t.Add(time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	assert.Empty(t, e.smtp.Messages())
	e.clock.t = e.clock.t.Add(time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	assert.Empty(t, e.smtp.Messages(), "the second wait is twice the first")
	e.clock.t = e.clock.t.Add(time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	assert.Equal(t, []string{"<" + r.ID + "@dealroom.example>"}, messageIDs(e.smtp), "sent once the server takes it, under its one Message-ID")
	assert.Equal(t, 2, e.smtp.Refused())
}

func TestGivesUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(t, "ana", "e1")
	e.smtp.Refuse(1, 550)
	require.NoError(t, e.sender.Send(ctx))
	e.clock.t = e.clock.t.Add(48 * time.Hour)
	require.NoError(t, e.sender.Send(ctx))
	assert.Empty(t, e.smtp.Messages(), "a permanent refusal is not tried again")

	e.add(t, "bob", "e2")
	e.smtp.Refuse(1000, 421)
	for range 30 {
		require.NoError(t, e.sender.Send(ctx))
		e.clock.t = e.clock.t.Add(time.Hour)
	}
	// Looked at hourly, a record whose waits are at most an hour is tried
	// at each look, from hour 0 to hour 24, and then given up.
	assert.Equal(t, 1+25, e.smtp.Refused(), "tried for a day, then no more")
	due, err := e.st.DueOutbox(ctx, e.clock.t.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, due, "given up")
}

// addTo records a mail to user about event seq of room, due at due.
func (e *env) addTo(t *testing.T, user, room, event string, seq int64, due time.Time) outbox.Record {
	t.Helper()
	id := outbox.Key(outbox.Email, user, event)
	payload, err := json.Marshal(mail.Message{To: user + "@acme.example", Subject: "About " + event,
		Text: "Hello", MessageID: id + "@dealroom.example"})
	require.NoError(t, err)
	r := outbox.Record{ID: id, Channel: outbox.Email, Recipient: user, RoomID: room, EventID: event, Seq: seq,
		Payload: payload, State: outbox.Pending, CreatedAt: e.clock.t, Due: due}
	_, err = e.st.AddOutbox(context.Background(), []outbox.Record{r})
	require.NoError(t, err)
	return r
}

// combine makes one message of records made by addTo: their subjects,
// joined.
func combine(batch string, recs []outbox.Record) (mail.Message, error) {
	var subjects []string
	var m mail.Message
	for _, r := range recs {
		if err := json.Unmarshal(r.Payload, &m); err != nil {
			return mail.Message{}, err
		}
		subjects = append(subjects, m.Subject)
	}
	slices.Sort(subjects)
	return mail.Message{To: m.To, Subject: strings.Join(subjects, " + "), Text: "Hello", MessageID: batch + "@dealroom.example"}, nil
}

func TestGroupsWhatIsDueAndSkipsWhatWasSeen(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seen := map[string]int64{"r1/ana": 1}
	var skipped int
	e.sender.Seen = func(_ context.Context, room, user string) (int64, error) { return seen[room+"/"+user], nil }
	e.sender.Combine = combine
	e.sender.Window = 2 * time.Minute
	e.sender.Observe = func(state string) {
		if state == outbox.Skipped {
			skipped++
		}
	}
	t0 := e.clock.t
	e.addTo(t, "ana", "r1", "e1", 1, t0.Add(2*time.Minute))
	e.clock.t = t0.Add(30 * time.Second)
	b := e.addTo(t, "ana", "r1", "e2", 2, t0.Add(150*time.Second))
	c := e.addTo(t, "ana", "r1", "e3", 3, t0.Add(150*time.Second))
	other := e.addTo(t, "ana", "r2", "e4", 4, t0.Add(150*time.Second))
	bob := e.addTo(t, "bob", "r1", "e5", 5, t0.Add(150*time.Second))

	e.clock.t = t0.Add(time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	assert.Empty(t, e.smtp.Messages(), "nothing is due")

	e.clock.t = t0.Add(2 * time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	got := e.smtp.Messages()
	require.Len(t, got, 1, "ana's records of r1 in one message; the others wait")
	assert.Equal(t, "About e2 + About e3", got[0].Subject, "the seen one is left out, the ones due soon come along")
	assert.Equal(t, "<"+outbox.BatchKey([]outbox.Record{c, b})+"@dealroom.example>", got[0].Header.Get("Message-Id"))
	assert.Equal(t, 1, skipped)

	e.clock.t = t0.Add(3 * time.Minute)
	require.NoError(t, e.sender.Send(ctx))
	assert.ElementsMatch(t, []string{"<" + outbox.BatchKey([]outbox.Record{b, c}) + "@dealroom.example>",
		"<" + other.ID + "@dealroom.example>", "<" + bob.ID + "@dealroom.example>"}, messageIDs(e.smtp),
		"a record alone goes under its own id")
	due, err := e.st.DueOutbox(ctx, e.clock.t.Add(time.Hour), 10)
	require.NoError(t, err)
	assert.Empty(t, due, "each record settled once")
}

// crashing is a store whose process dies after the mail server took a
// message and before its records are marked sent.
type crashing struct{ outbox.Store }

func (c crashing) SettleOutbox(ctx context.Context, rs ...outbox.Record) error {
	for _, r := range rs {
		if r.State == outbox.Sent {
			return errors.New("killed")
		}
	}
	return c.Store.SettleOutbox(ctx, rs...)
}

func TestARepeatIsTheSameMessage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.sender.Combine = combine
	now := e.clock.t
	a := e.addTo(t, "ana", "r1", "e1", 1, now)
	b := e.addTo(t, "ana", "r1", "e2", 2, now)
	dying := *e.sender
	dying.Store = crashing{e.st}
	require.Error(t, dying.Send(ctx))
	require.Len(t, e.smtp.Messages(), 1)

	// A record made meanwhile does not change the message being repeated.
	c := e.addTo(t, "ana", "r1", "e3", 3, now)
	require.NoError(t, e.sender.Send(ctx))
	got := e.smtp.Messages()
	require.Len(t, got, 3)
	batch := "<" + outbox.BatchKey([]outbox.Record{a, b}) + "@dealroom.example>"
	assert.ElementsMatch(t, []string{batch, batch, "<" + c.ID + "@dealroom.example>"}, messageIDs(e.smtp))
	for _, m := range got {
		if m.Header.Get("Message-Id") == batch {
			assert.Equal(t, "About e1 + About e2", m.Subject)
		}
	}
	require.NoError(t, e.sender.Send(ctx))
	assert.Len(t, e.smtp.Messages(), 3)
}
