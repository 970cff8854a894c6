package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/mail"
	"dealroom/webhook"
	wt "dealroom/webhook/webhooktest"
)

var ada = dealroom.Actor{ID: "ada", Name: "Ada Admin", Email: "ada@seller.example", Kind: dealroom.Staff, Role: dealroom.Admin}

// webhookEnv is what lets a server post to the receiver: 127.0.0.1
// allowed, its certificate trusted.
func webhookEnv(t *testing.T, r *wt.Receiver) []string {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, r.CertPEM(), 0o600))
	return []string{"DEALROOM_OUTBOUND_ALLOW=127.0.0.1", "DEALROOM_OUTBOUND_CA_FILE=" + ca}
}

// eventIDs returns the ids of the room's events in seq order, as its
// owner reads them.
func eventIDs(t *testing.T, c *client, roomID, token string) []string {
	var out []string
	for _, raw := range c.events(t, roomID, token) {
		out = append(out, idOf(raw))
	}
	return out
}

// TestWebhooksKill: the binary posts two rooms' events to a receiver that
// fails on purpose (500s, resets, a hang, slow answers); it is killed
// with SIGKILL mid-stream and started again. Every event arrives, in
// order per room, a repeat only under its webhook-id, every signature
// valid.
func TestWebhooksKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it: skipped with -short")
	}
	bin := buildBinary(t)
	recv := wt.StartReceiver(t)
	dir := t.TempDir()
	env := webhookEnv(t, recv)
	p := startProcess(t, bin, dir, env...)
	c := newClient(p)
	tAda, tAlice := tokenFor(t, ada), tokenFor(t, alice)

	// A private address is refused at creation unless allowed.
	c.must(t, http.StatusUnprocessableEntity, http.MethodPost, "/api/v1/admin/webhooks", tAda,
		map[string]any{"url": "https://10.9.9.9/hook"}, "")
	created := c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/admin/webhooks", tAda,
		map[string]any{"url": recv.URL + "/hook"}, "")
	recv.SetSecret("/hook", field(t, created, "secret"))

	rooms := make([]string, 2)
	for i := range rooms {
		rooms[i] = field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", tAlice,
			map[string]any{"name": fmt.Sprint("Deal ", i), "company": "Acme"}, ""), "id")
	}
	recv.Next(wt.Slow, wt.Fail500, wt.Reset, wt.Slow, wt.OK, wt.Hang, wt.Slow, wt.Slow)
	post := func(c *client, i int) {
		c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms/"+rooms[i%2]+"/messages", tAlice,
			map[string]any{"body": fmt.Sprint("point ", i)}, "")
	}
	const before, after = 40, 10
	for i := range before {
		post(c, i)
	}
	require.Eventually(t, func() bool { return len(recv.Got()) >= 3 }, 60*time.Second, 5*time.Millisecond)
	p.kill(t)
	gotBefore := len(recv.Got())

	p = startProcess(t, bin, dir, env...)
	c = newClient(p)
	for i := before; i < before+after; i++ {
		post(c, i)
	}
	want := map[string][]string{}
	total := 0
	for _, r := range rooms {
		want[r] = eventIDs(t, c, r, tAlice)
		total += len(want[r])
	}
	require.Eventually(t, func() bool { return len(wt.Arrived(t, recv)[rooms[0]])+len(wt.Arrived(t, recv)[rooms[1]]) == total },
		120*time.Second, 20*time.Millisecond, "every event delivered")
	got := wt.Arrived(t, recv)
	for _, r := range rooms {
		assert.Equal(t, want[r], got[r], "room %s: every event, in order", r)
	}
	require.Less(t, gotBefore, total, "the kill came mid-stream")
	t.Logf("%d deliveries before the kill, %d requests, %d taken, for %d events", gotBefore, recv.Attempts(), len(recv.Got()), total)
}

// sentMail is a mail.Sender that keeps what it is given.
type sentMail struct{ got []mail.Message }

func (s *sentMail) Send(_ context.Context, m mail.Message) error {
	s.got = append(s.got, m)
	return nil
}

// TestTellPaused: the admin who made an endpoint is mailed when the
// server pauses it, with its URL, the reason and where to resume it.
func TestTellPaused(t *testing.T) {
	m := &sentMail{}
	tell := tellPaused(m, "https://deals.example.com", slog.New(slog.DiscardHandler))
	tell(context.Background(), webhook.Endpoint{ID: "wh_1", URL: "https://crm.example.com/in", Paused: true,
		PausedReason: "deliveries failed since 2026-03-02T09:00:00Z: the endpoint answered 500"})
	assert.Empty(t, m.got, "no address, no mail")
	tell(context.Background(), webhook.Endpoint{ID: "wh_1", URL: "https://crm.example.com/in", Paused: true, CreatedByEmail: "ada@seller.example",
		PausedReason: "deliveries failed since 2026-03-02T09:00:00Z: the endpoint answered 500"})
	require.Len(t, m.got, 1)
	assert.Equal(t, "ada@seller.example", m.got[0].To)
	assert.Contains(t, m.got[0].Text, "https://crm.example.com/in")
	assert.Contains(t, m.got[0].Text, "answered 500")
	assert.Contains(t, m.got[0].Text, "https://deals.example.com/admin/webhooks")
}
