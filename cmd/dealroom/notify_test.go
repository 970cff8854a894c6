package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/internal/testenv"
)

// mailEnv are the settings of a server that mails through srv, its
// notifications at once (the delay is checked by notify/notifytest, with
// a clock of its own).
func mailEnv(srv *testenv.SMTPServer) []string {
	return []string{"DEALROOM_SMTP_URL=" + srv.URL(), "DEALROOM_MAIL_FROM=Dealroom <rooms@deals.example.com>",
		"DEALROOM_PUBLIC_URL=https://deals.example.com", "DEALROOM_MAIL_RATE=25", "DEALROOM_NOTIFY_DELAY=0s"}
}

var pointRE = regexp.MustCompile(`point (\d+)\.`)

// mailsByPoint groups the messages to address by the "point N." they
// quote: the Message-IDs each point came under. A message that lists
// several mentions counts for each.
func mailsByPoint(srv *testenv.SMTPServer, address string) map[string][]string {
	out := map[string][]string{}
	for _, m := range srv.Messages() {
		if len(m.To) != 1 || m.To[0] != address {
			continue
		}
		for _, p := range pointRE.FindAllStringSubmatch(m.Text, -1) {
			out[p[1]] = append(out[p[1]], m.Header.Get("Message-Id"))
		}
	}
	return out
}

// sameTextPerID checks that the messages sent more than once under one
// Message-ID are the same message.
func sameTextPerID(t *testing.T, srv *testenv.SMTPServer) {
	t.Helper()
	texts := map[string]string{}
	for _, m := range srv.Messages() {
		id := m.Header.Get("Message-Id")
		if prev, ok := texts[id]; ok {
			assert.Equal(t, prev, m.Text, "Message-ID %s: a repeat is the same message", id)
		}
		texts[id] = m.Text
	}
}

// TestNotifyKill kills the real binary with -9 while its mentions are
// being mailed, restarts it and finds every mail arrived: none missing,
// and each mention under one Message-ID (mentions due together share a
// mail; a mail the server accepted just before the kill may come twice,
// under the same Message-ID, and is then the same mail).
func TestNotifyKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it: skipped with -short")
	}
	bin := buildBinary(t)
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	dir := t.TempDir()
	// Mentions due together go in one mail: sent slowly, so that the kill
	// comes while some wait.
	p := startProcess(t, bin, dir, append(mailEnv(srv), "DEALROOM_MAIL_RATE=4")...)
	c := newClient(p)
	ta, tb := tokenFor(t, alice), tokenFor(t, bob)
	c.must(t, http.StatusOK, http.MethodGet, "/api/v1/me", tb, nil, "") // the server learns Bob's address
	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Acme renewal", "company": "Acme Corp"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/members", ta,
		map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff", "access": "write"}, "")

	const before, after = 40, 10
	post := func(c *client, i int) {
		c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", ta,
			map[string]any{"body": fmt.Sprintf("@Bob Engineer point %d. Please look.", i)}, "")
	}
	for i := range before {
		post(c, i)
	}
	// Mid-way: the first mail is out, the others wait in the outbox.
	require.Eventually(t, func() bool { return len(srv.Messages()) >= 1 }, 60*time.Second, 5*time.Millisecond)
	p.kill(t)
	sentBefore := len(mailsByPoint(srv, bob.Email))
	require.Less(t, sentBefore, before, "the kill came before the last mention was mailed")

	p = startProcess(t, bin, dir, mailEnv(srv)...)
	c = newClient(p)
	for i := before; i < before+after; i++ {
		post(c, i)
	}
	require.Eventually(t, func() bool { return len(mailsByPoint(srv, bob.Email)) == before+after },
		120*time.Second, 20*time.Millisecond, "every mention mailed")
	got := mailsByPoint(srv, bob.Email)
	for i := range before + after {
		ids := got[fmt.Sprint(i)]
		require.NotEmpty(t, ids, "point %d", i)
		for _, id := range ids {
			assert.Equal(t, ids[0], id, "point %d: one Message-ID, however many times it went out", i)
		}
	}
	sameTextPerID(t, srv)
	assert.Empty(t, mailsByPoint(srv, alice.Email), "the author is not mailed")
	t.Logf("%d mentions mailed before the kill, %d mails in all for %d mentions", sentBefore, len(srv.Messages()), before+after)
}

// openMailApp starts an App in the process that mails through srv.
func openMailApp(t *testing.T, srv *testenv.SMTPServer) *App {
	t.Helper()
	e := env{"DEALROOM_ADDR": "127.0.0.1:0", "DEALROOM_DATA_DIR": t.TempDir(), "DEALROOM_JWT_SECRET": processSecret,
		"DEALROOM_RATE_LIMIT": "1000000"}
	for _, kv := range mailEnv(srv) {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	cfg, err := parseConfig("dealroom serve", nil, e.get, &bytes.Buffer{})
	require.NoError(t, err)
	app := &App{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, app.Open(context.Background()))
	t.Cleanup(func() { app.Close() })
	return app
}

// TestNotifyUnsubscribeAndSettings: the link of an email turns off that
// room's email without signing in (the page first, which changes nothing;
// then the one-click POST), and the person turns it on again in their
// settings.
func TestNotifyUnsubscribeAndSettings(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	app := openMailApp(t, srv)
	c := &client{base: "http://" + app.Addr(), http: &http.Client{Timeout: 30 * time.Second}}
	ta, tb := tokenFor(t, alice), tokenFor(t, bob)
	c.must(t, http.StatusOK, http.MethodGet, "/api/v1/me", tb, nil, "")
	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Acme renewal", "company": "Acme Corp"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/members", ta,
		map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff", "access": "write"}, "")
	say := func(i int) {
		c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", ta,
			map[string]any{"body": fmt.Sprintf("@Bob Engineer point %d.", i)}, "")
	}
	// flush waits until everything said before was handled: it has Bob
	// mention Alice and waits for her mail, which the runner makes after
	// the room's earlier events and the sender sends after their mail
	// (earliest due first).
	mark := 0
	flush := func() {
		mark++
		c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", tb,
			map[string]any{"body": fmt.Sprintf("@Alice Rep point %d.", 1000+mark)}, "")
		require.Eventually(t, func() bool { return len(mailsByPoint(srv, alice.Email)) == mark }, 60*time.Second, 10*time.Millisecond)
	}
	c.must(t, http.StatusOK, http.MethodGet, "/api/v1/me", ta, nil, "")

	say(1)
	flush()
	msgs := srv.Messages()
	var link string
	for _, m := range msgs {
		if m.To[0] == bob.Email {
			link = m.Header.Get("List-Unsubscribe")
			assert.Contains(t, m.Text, "https://deals.example.com/room/"+roomID+"/discussion")
		}
	}
	require.NotEmpty(t, link)
	link = strings.TrimSuffix(strings.TrimPrefix(link, "<"), ">")
	path := strings.TrimPrefix(link, "https://deals.example.com")
	require.NotEqual(t, link, path)

	// The page changes nothing.
	r, err := c.send(context.Background(), http.MethodGet, path, "", nil, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, string(r.body), "Stop email about Acme renewal")
	say(2)
	flush()
	assert.Len(t, mailsByPoint(srv, bob.Email), 2)

	// A forged token is refused; the one-click POST turns the room off.
	r, err = c.send(context.Background(), http.MethodGet, path+"x", "", nil, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, r.status)
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader("List-Unsubscribe=One-Click"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	say(3)
	flush()
	assert.Len(t, mailsByPoint(srv, bob.Email), 2, "no mail after unsubscribing")

	settings := c.must(t, http.StatusOK, http.MethodGet, "/api/v1/me/notifications", tb, nil, "")
	assert.JSONEq(t, `{"email":"instant","digest":"off","address":"bob@seller.example","rooms":[{"room_id":"`+roomID+`","email":"off"}],"reminders":"on","timezone":"UTC"}`, string(settings))
	c.must(t, http.StatusNotFound, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"room_id": "r_nope", "email": "off"}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"email": "daily"}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"digest": "hourly"}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"room_id": roomID, "digest": "daily"}, "")
	settings = c.must(t, http.StatusOK, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"digest": "weekly"}, "")
	assert.JSONEq(t, `{"email":"instant","digest":"weekly","address":"bob@seller.example","rooms":[{"room_id":"`+roomID+`","email":"off"}],"reminders":"on","timezone":"UTC"}`, string(settings))
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"timezone": "Mars/Olympus", "digest": "daily"}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"reminders": "sometimes"}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"room_id": roomID, "reminders": "off"}, "")
	settings = c.must(t, http.StatusOK, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"reminders": "off", "timezone": "Europe/Lisbon"}, "")
	assert.JSONEq(t, `{"email":"instant","digest":"weekly","address":"bob@seller.example","rooms":[{"room_id":"`+roomID+`","email":"off"}],"reminders":"off","timezone":"Europe/Lisbon"}`, string(settings), "the refused changes wrote nothing")
	settings = c.must(t, http.StatusOK, http.MethodPut, "/api/v1/me/notifications", tb, map[string]any{"room_id": roomID, "email": "instant"}, "")
	assert.JSONEq(t, `{"email":"instant","digest":"weekly","address":"bob@seller.example","rooms":[],"reminders":"off","timezone":"Europe/Lisbon"}`, string(settings))
	say(4)
	flush()
	assert.Len(t, mailsByPoint(srv, bob.Email), 3, "on again")

	// Counted once the record is marked sent, just after the server took
	// the mail: wait for it.
	require.Eventually(t, func() bool {
		_, metrics := get(t, c.base+"/metrics", "")
		return strings.Contains(string(metrics), "dealroom_notifications_sent_total 7")
	}, 30*time.Second, 10*time.Millisecond, "three to Bob, four to Alice")
}
