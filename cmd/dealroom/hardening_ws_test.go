package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/jwtauth"
)

// The websocket's hardening (issue 11, items 2 and 3) against the running
// binary: what a client meets over the network, with the settings read
// from DEALROOM_* variables.

// TestHardeningWS builds the binary once for its scenarios.
func TestHardeningWS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	bin := buildBinary(t)
	t.Run("SessionFollowsTokenAndMembership", func(t *testing.T) { testWSSessionFollowsToken(t, bin) })
	t.Run("Caps", func(t *testing.T) { testWSCaps(t, bin) })
}

// wsPeer is a websocket of the e2e tests: frames are read by a goroutine
// into a channel, and the close status is kept.
type wsPeer struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan map[string]any
	done   chan struct{}
	err    error
}

// dialWS opens a websocket to the process with token, or returns the
// HTTP status that refused the upgrade.
func dialWS(t *testing.T, p *process, token string) (*wsPeer, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(p.URL, "http") + "/api/v1/ws?token=" + token
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, resp, err
	}
	w := &wsPeer{t: t, conn: conn, frames: make(chan map[string]any, 1024), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				w.err = err
				return
			}
			var f map[string]any
			if json.Unmarshal(data, &f) == nil && f["type"] != "presence" {
				w.frames <- f
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow(); <-w.done })
	return w, resp, nil
}

func mustDialWS(t *testing.T, p *process, token string) *wsPeer {
	t.Helper()
	w, _, err := dialWS(t, p, token)
	require.NoError(t, err)
	return w
}

func (w *wsPeer) send(v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(w.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(w.t, w.conn.Write(ctx, websocket.MessageText, b))
}

// until returns the frames up to the first that matches.
func (w *wsPeer) until(what string, match func(map[string]any) bool) []map[string]any {
	w.t.Helper()
	var got []map[string]any
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-w.frames:
			got = append(got, f)
			if match(f) {
				return got
			}
		case <-w.done:
			w.t.Fatalf("the connection ended while waiting for %s: %v", what, w.err)
		case <-deadline:
			w.t.Fatalf("no %s within 20s (got %v)", what, got)
		}
	}
}

func typed(typ string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == typ }
}

// closed waits for the end of the connection and returns its close error.
func (w *wsPeer) closed() websocket.CloseError {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.t.Fatal("the connection was not closed within 30s")
	}
	var ce websocket.CloseError
	require.True(w.t, errors.As(w.err, &ce), "a close frame, not %v", w.err)
	return ce
}

func errCode(f map[string]any) string {
	e, _ := f["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// testWSSessionFollowsToken: a socket ends with 4001 when its token
// expires (the keep-alive finds it, with nothing sent), and a member
// whose membership changed acts, over a socket opened before, with the
// membership of now.
func testWSSessionFollowsToken(t *testing.T, bin string) {
	// Pings every second: the keep-alive finds the expiry within one,
	// and a busy machine still answers a ping within its timeout (as
	// long as the interval).
	p := startProcess(t, bin, t.TempDir(), "DEALROOM_WS_PING=1s")
	c := newClient(p)
	ta := tokenFor(t, alice)
	roomID := field(t, c.must(t, 201, "POST", "/api/v1/rooms", ta, map[string]any{"name": "Expiry", "company": "Acme"}, ""), "id")
	c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/members", ta,
		map[string]any{"user_id": bob.ID, "name": bob.Name, "kind": "staff", "access": "write"}, "")

	// A token that the server accepts for a few more seconds: its exp is
	// past, within the leeway.
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(processSecret)})
	require.NoError(t, err)
	short, err := keys.Issue(bob, 5*time.Second-jwtauth.Leeway)
	require.NoError(t, err)
	w := mustDialWS(t, p, short)
	w.send(map[string]any{"type": "subscribe", "room": roomID, "after": 0})
	w.until("subscribed", typed("subscribed"))
	ce := w.closed()
	assert.EqualValues(t, 4001, ce.Code)
	assert.Contains(t, ce.Reason, "token expired")
	// The same token no longer opens a socket.
	_, resp, err := dialWS(t, p, short)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, 401, resp.StatusCode)

	// Bob, on a socket with a valid token, is removed: his commands are
	// refused; added back as a customer-kind member, he catches up past
	// his removal and never sees the internal note.
	tb := tokenFor(t, bob)
	b := mustDialWS(t, p, tb)
	b.send(map[string]any{"type": "subscribe", "room": roomID, "after": 0})
	b.until("subscribed", typed("subscribed"))
	c.must(t, 204, "DELETE", "/api/v1/rooms/"+roomID+"/members/"+bob.ID, ta, nil, "")
	b.until("unsubscribed", typed("unsubscribed"))
	b.send(map[string]any{"type": "command", "id": "after-removal", "room": roomID, "op": "message.post", "data": map[string]any{"body": "still here?"}})
	fs := b.until("the answer", func(f map[string]any) bool { return f["id"] == "after-removal" })
	assert.Equal(t, "not_found", errCode(fs[len(fs)-1]), "%v", fs[len(fs)-1])
	note := field(t, c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/messages", ta,
		map[string]any{"body": "internal: floor price", "visibility": "internal"}, ""), "id")
	c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/members", ta,
		map[string]any{"user_id": bob.ID, "name": bob.Name, "kind": "customer", "access": "write"}, "")
	b.send(map[string]any{"type": "subscribe", "room": roomID, "after": 0})
	fs = b.until("an answer", func(f map[string]any) bool { return f["type"] != "event" })
	require.Equal(t, "subscribed", fs[len(fs)-1]["type"], "%v", fs[len(fs)-1])
	for _, f := range fs {
		raw, _ := json.Marshal(f)
		assert.NotContains(t, string(raw), note, "a customer-kind member was sent the internal note")
	}
}

// testWSCaps: the socket caps refuse the upgrade with the contract's
// error body; the subscription cap and the frame rate are answered with
// rate_limited error frames.
func testWSCaps(t *testing.T, bin string) {
	p := startProcess(t, bin, t.TempDir(),
		"DEALROOM_WS_MAX_SOCKETS=3", "DEALROOM_WS_MAX_SOCKETS_PER_USER=2",
		"DEALROOM_WS_MAX_SUBSCRIPTIONS=1", "DEALROOM_WS_FRAME_RATE=1")
	c := newClient(p)
	ta := tokenFor(t, alice)
	r1 := field(t, c.must(t, 201, "POST", "/api/v1/rooms", ta, map[string]any{"name": "One", "company": "Acme"}, ""), "id")
	r2 := field(t, c.must(t, 201, "POST", "/api/v1/rooms", ta, map[string]any{"name": "Two", "company": "Acme"}, ""), "id")

	a1 := mustDialWS(t, p, ta)
	mustDialWS(t, p, ta)
	refusedWith := func(token string, status int, code string) {
		t.Helper()
		_, resp, err := dialWS(t, p, token)
		require.Error(t, err, "the upgrade was accepted")
		require.NotNil(t, resp)
		assert.Equal(t, status, resp.StatusCode)
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		assert.Equal(t, code, errorCodeOf(t, buf.Bytes()), "%s", buf.Bytes())
	}
	refusedWith(ta, 429, "rate_limited")
	mustDialWS(t, p, tokenFor(t, bob))
	refusedWith(tokenFor(t, dealroom.Actor{ID: "carol", Kind: dealroom.Customer}), 503, "unavailable")

	// One room per socket.
	a1.send(map[string]any{"type": "subscribe", "room": r1, "after": 0})
	a1.until("subscribed", typed("subscribed"))
	a1.send(map[string]any{"type": "subscribe", "room": r2, "after": 0})
	fs := a1.until("an error", typed("error"))
	assert.Equal(t, "rate_limited", errCode(fs[len(fs)-1]))
	assert.Equal(t, r2, fs[len(fs)-1]["room"])

	// A burst of pings: past the bucket (1 a second, bursts of 2) they are
	// answered with rate_limited, not dropped.
	for i := range 10 {
		a1.send(map[string]any{"type": "ping", "id": fmt.Sprint("p", i)})
	}
	var pongs, limited int
	for pongs+limited < 10 {
		fs := a1.until("an answer", func(f map[string]any) bool { return f["type"] == "pong" || f["type"] == "error" })
		f := fs[len(fs)-1]
		if f["type"] == "pong" {
			pongs++
		} else {
			assert.Equal(t, "rate_limited", errCode(f), "%v", f)
			limited++
		}
	}
	assert.GreaterOrEqual(t, pongs, 2)
	assert.Positive(t, limited, "a burst past the bucket is refused")
}

// errorCodeOf reads the code of the contract's error body.
func errorCodeOf(t *testing.T, body []byte) string {
	t.Helper()
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &eb), "%s", body)
	return eb.Error.Code
}

// TestConfigWebsocketCaps: the websocket's caps are settings with
// defaults, read from flags and DEALROOM_* variables, and checked.
func TestConfigWebsocketCaps(t *testing.T) {
	c := defaults(t)
	assert.Equal(t, 10000, c.WSMaxSockets)
	assert.Equal(t, 20, c.WSMaxSocketsPerUser)
	assert.Equal(t, 100, c.WSMaxSubscriptions)
	assert.EqualValues(t, 20, c.WSFrameRate)

	c, err := parseConfig("dealroom serve", []string{"-ws-max-subscriptions", "7"}, env{
		"DEALROOM_WS_MAX_SOCKETS": "500", "DEALROOM_WS_MAX_SOCKETS_PER_USER": "4",
		"DEALROOM_WS_MAX_SUBSCRIPTIONS": "9", "DEALROOM_WS_FRAME_RATE": "2.5"}.get, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, 500, c.WSMaxSockets)
	assert.Equal(t, 4, c.WSMaxSocketsPerUser)
	assert.Equal(t, 7, c.WSMaxSubscriptions)
	assert.EqualValues(t, 2.5, c.WSFrameRate)

	for _, bad := range [][]string{{"-ws-max-sockets", "0"}, {"-ws-max-sockets-per-user", "-1"},
		{"-ws-max-subscriptions", "many"}, {"-ws-frame-rate", "0"}, {"-ws-frame-rate", "NaN"}} {
		_, err := parseConfig("dealroom serve", bad, env{}.get, &bytes.Buffer{})
		if assert.Error(t, err, "%v", bad) {
			assert.Contains(t, err.Error(), bad[0])
		}
	}
}
