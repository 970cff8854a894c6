package outbox_test

import (
	"context"
	"encoding/json"
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
