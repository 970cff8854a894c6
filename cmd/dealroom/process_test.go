package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/jwtauth"
)

// This file runs the real dealroom binary as a child process and talks to
// it over HTTP, for the tests that kill it.

// processSecret is the JWT secret of every server process the tests start,
// so that tokens survive a restart.
const processSecret = "process-test-secret-0123456789abcdef0123"

// buildBinary compiles cmd/dealroom into a fresh directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the crash tests build the binary with the go command")
	bin := filepath.Join(t.TempDir(), "dealroom")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// process is one dealroom server running as a child process.
type process struct {
	URL    string
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	exited chan struct{}
}

// startProcess starts bin on a free loopback port with dataDir and waits
// until /readyz answers 200. The process is killed when the test ends, if
// it still runs. env adds DEALROOM_* settings ("NAME=value").
func startProcess(t *testing.T, bin, dataDir string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0", "-data-dir", dataDir)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEALROOM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DEALROOM_JWT_SECRET="+processSecret,
		"DEALROOM_RATE_LIMIT=1000000", "DEALROOM_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = childAttr()

	started := make(chan error, 1)
	go func() {
		// The child's death signal is tied to this thread (see childAttr):
		// keep it until the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.exited)
			return
		}
		started <- nil
		cmd.Wait()
		close(p.exited)
	}()
	require.NoError(t, <-started)
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("output of the server on %s:\n%s", dataDir, p.out)
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for p.URL == "" {
		if m := listeningRE.FindStringSubmatch(p.out.String()); m != nil {
			p.URL = m[1]
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("the server exited before listening:\n%s", p.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen within 30s:\n%s", p.out)
		}
	}
	for {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within 30s (%v):\n%s", err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL, not a graceful stop, and waits until the process is
// gone. Killing a dead process is a no-op.
func (p *process) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Logf("kill: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not die within 10s of SIGKILL")
	}
}

// People of the crash tests.
var (
	alice = dealroom.Actor{ID: "alice", Name: "Alice Rep", Email: "alice@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	bob   = dealroom.Actor{ID: "bob", Name: "Bob Engineer", Email: "bob@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
)

// tokenFor mints an hour-long token signed with processSecret.
func tokenFor(t *testing.T, a dealroom.Actor) string {
	t.Helper()
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(processSecret)})
	require.NoError(t, err)
	tok, err := keys.Issue(a, time.Hour)
	require.NoError(t, err)
	return tok
}

// client talks to one server process.
type client struct {
	base string
	http *http.Client
}

func newClient(p *process) *client {
	return &client{base: p.URL, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32},
	}}
}

// reply is a complete HTTP answer.
type reply struct {
	status int
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// upload is a multipart body with one file.
type upload struct {
	contentType string
	data        []byte
}

func newUpload(name string, data []byte) *upload {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", "application/octet-stream")
	part, _ := w.CreatePart(h) // writing to a bytes.Buffer cannot fail
	part.Write(data)
	w.Close()
	return &upload{contentType: w.FormDataContentType(), data: buf.Bytes()}
}

// send makes one request; body is nil, an *upload, or a value sent as
// JSON. An error means no complete answer arrived: the outcome of a write
// is then unknown.
func (c *client) send(ctx context.Context, method, path, token string, body any, key string) (reply, error) {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case *upload:
		rd, ct = bytes.NewReader(b.data), b.contentType
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{}, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: raw}, nil
}

// must makes a request that has to answer with status, and returns the
// body.
func (c *client) must(t *testing.T, status int, method, path, token string, body any, key string) []byte {
	t.Helper()
	r, err := c.send(context.Background(), method, path, token, body, key)
	require.NoError(t, err, "%s %s", method, path)
	require.Equal(t, status, r.status, "%s %s: %s", method, path, r)
	return r.body
}

// page is one page of a list.
type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor string            `json:"next_cursor"`
}

// list fetches every page of a list route (path may carry a query) and
// returns the items as the server wrote them.
func (c *client) list(t *testing.T, path, token string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	cursor := ""
	for range 10000 {
		p := path
		if cursor != "" {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			p += sep + "cursor=" + cursor
		}
		var pg page
		require.NoError(t, json.Unmarshal(c.must(t, http.StatusOK, http.MethodGet, p, token, nil, ""), &pg))
		all = append(all, pg.Items...)
		if pg.NextCursor == "" {
			return all
		}
		cursor = pg.NextCursor
	}
	t.Fatalf("%s: no end of pages", path)
	return nil
}

// event is what the tests read of an event.
type event struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	Visibility string          `json:"visibility"`
	Data       json.RawMessage `json:"data"`
}

// events fetches a room's whole timeline as token's holder sees it, in
// small pages continued with ?after=, and returns each event's JSON as
// sent.
func (c *client) events(t *testing.T, roomID, token string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	after := int64(0)
	for range 10000 {
		var pg page
		body := c.must(t, http.StatusOK, http.MethodGet, fmt.Sprintf("/api/v1/rooms/%s/events?after=%d&limit=37", roomID, after), token, nil, "")
		require.NoError(t, json.Unmarshal(body, &pg))
		if len(pg.Items) == 0 {
			return all
		}
		all = append(all, pg.Items...)
		var last event
		require.NoError(t, json.Unmarshal(pg.Items[len(pg.Items)-1], &last))
		after = last.Seq
	}
	t.Fatalf("room %s: no end of events", roomID)
	return nil
}

func decodeEvents(t *testing.T, raws []json.RawMessage) []event {
	t.Helper()
	out := make([]event, len(raws))
	for i, raw := range raws {
		require.NoError(t, json.Unmarshal(raw, &out[i]))
	}
	return out
}

// field reads one string field of a JSON object.
func field(t *testing.T, raw []byte, name string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
	s, _ := m[name].(string)
	return s
}

// idOf returns the "id" of a JSON object, "" when there is none; unlike
// field it may be called from any goroutine.
func idOf(raw []byte) string {
	var m struct {
		ID string `json:"id"`
	}
	json.Unmarshal(raw, &m)
	return m.ID
}
