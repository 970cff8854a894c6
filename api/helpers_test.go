package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/api"
	"dealroom/backup"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/frontend"
	"dealroom/jwtauth"
	"dealroom/room"
)

// testSecret is the HS256 secret of every test server unless an option
// changes it.
var testSecret = []byte("dealroom-api-test-secret-0123456789abcdef")

// testServer is one real Dealroom HTTP server on a loopback port, wired as
// cmd/dealroom does it, with its own data directory.
type testServer struct {
	URL     string // base URL, without /api/v1
	Keys    *jwtauth.Keys
	Store   *boltstore.Store
	DataDir string
	BlobDir string
	Config  api.Config
}

// serverConfig is what options of newTestServer can change.
type serverConfig struct {
	api    api.Config
	jwt    jwtauth.Config
	backup bool
}

// withBackup serves GET /admin/backup of the server's own data directory,
// as cmd/dealroom does for the embedded store.
func withBackup() serverOption { return func(c *serverConfig) { c.backup = true } }

type serverOption func(*serverConfig)

// withAPI changes the API configuration.
func withAPI(f func(*api.Config)) serverOption { return func(c *serverConfig) { f(&c.api) } }

// withJWT changes the token configuration.
func withJWT(f func(*jwtauth.Config)) serverOption { return func(c *serverConfig) { f(&c.jwt) } }

// newTestServer starts a server on a real boltstore and a real diskblob
// directory in tb.TempDir(), stopped when the test ends. The rate limit is
// raised far above what a test sends; everything else is the default.
func newTestServer(tb testing.TB, opts ...serverOption) *testServer {
	tb.Helper()
	cfg := serverConfig{
		api: api.Config{RateLimit: 1e6, RateBurst: 1e6},
		jwt: jwtauth.Config{Secret: testSecret},
	}
	for _, o := range opts {
		o(&cfg)
	}
	dir := tb.TempDir()
	if cfg.api.SpoolDir == "" {
		cfg.api.SpoolDir = filepath.Join(dir, "spool")
	}
	keys, err := jwtauth.New(cfg.jwt)
	require.NoError(tb, err)

	store, err := boltstore.Open(dir)
	require.NoError(tb, err)
	tb.Cleanup(func() { store.Close() })
	blobDir := filepath.Join(dir, "attachments")
	blobs, err := diskblob.Open(blobDir)
	require.NoError(tb, err)

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := api.NewMetrics()
	appended := metrics.Counter("dealroom_events_appended_total", "Events appended to room logs by this instance.")
	svc := &room.Service{Store: store, Blobs: blobs, Committed: func(room.Event) { appended.Add(1) }}
	if cfg.api.Sessions == nil {
		cfg.api.Sessions = store
	}
	if cfg.backup {
		cfg.api.Backup = &backup.Source{Store: store, StoreFile: boltstore.File, Files: blobs, FilesDir: "attachments", Spool: dir}
	}
	srv := api.New(cfg.api, svc, keys, log, metrics, map[string]api.Pinger{"store": store})
	frontend.Register(srv.Echo())

	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		hs.Close()
		if tb.Failed() && logs.Len() > 0 {
			tb.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{URL: hs.URL, Keys: keys, Store: store, DataDir: dir, BlobDir: blobDir, Config: cfg.api}
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

var (
	defaultKeysOnce sync.Once
	defaultKeys     *jwtauth.Keys
)

// tok mints an hour-long HS256 token for a with the default test secret,
// through jwtauth.Keys.Issue as the server itself does.
func tok(tb testing.TB, a dealroom.Actor) string {
	tb.Helper()
	defaultKeysOnce.Do(func() {
		var err error
		defaultKeys, err = jwtauth.New(jwtauth.Config{Secret: testSecret})
		if err != nil {
			panic(err)
		}
	})
	t, err := defaultKeys.Issue(a, time.Hour)
	require.NoError(tb, err)
	return t
}

// tok mints a token with this server's own keys (issuer and audience
// included when configured).
func (ts *testServer) tok(tb testing.TB, a dealroom.Actor) string {
	tb.Helper()
	t, err := ts.Keys.Issue(a, time.Hour)
	require.NoError(tb, err)
	return t
}

// The people of the access matrix.
var (
	owner    = dealroom.Actor{ID: "olivia", Name: "Olivia Owner", Email: "olivia@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	staffW   = dealroom.Actor{ID: "walter", Name: "Walter Writer", Email: "walter@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	staffR   = dealroom.Actor{ID: "rita", Name: "Rita Reader", Email: "rita@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	custW    = dealroom.Actor{ID: "carl", Name: "Carl Customer", Email: "carl@buyer.example", Kind: dealroom.Customer}
	custR    = dealroom.Actor{ID: "cora", Name: "Cora Customer", Email: "cora@buyer.example", Kind: dealroom.Customer}
	staffOut = dealroom.Actor{ID: "sam", Name: "Sam Stranger", Email: "sam@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	custOut  = dealroom.Actor{ID: "cody", Name: "Cody Outsider", Email: "cody@other.example", Kind: dealroom.Customer}
	manager  = dealroom.Actor{ID: "maria", Name: "Maria Manager", Email: "maria@seller.example", Kind: dealroom.Staff, Role: dealroom.Manager}
	admin    = dealroom.Actor{ID: "adam", Name: "Adam Admin", Email: "adam@seller.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	// target is a plain staff member whose membership the matrix changes.
	target = dealroom.Actor{ID: "tom", Name: "Tom Target", Kind: dealroom.Staff, Role: dealroom.Rep}
)

// Markers planted in the fixture that a customer must never receive.
const (
	internalMarker = "zz-internal-marker"
	secretTag      = "zz-secret-tag"
	secretValue    = 987654.32
	inviteeEmail   = "invitee@buyer.example"
	sharedFileBody = "the shared proposal, version 1\n"
)

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	b := string(r.Body)
	if len(b) > 600 {
		b = b[:600] + "..."
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// object decodes the body as a JSON object.
func (r response) object(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(r.Body, &m), "body: %s", r)
	return m
}

// items decodes a list body's items.
func (r response) items(tb testing.TB) []map[string]any {
	tb.Helper()
	var l struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"next_cursor"`
	}
	require.NoError(tb, json.Unmarshal(r.Body, &l), "body: %s", r)
	require.NotNil(tb, l.Items, "a list has items, even when empty: %s", r)
	return l.Items
}

// str returns a string field of the body.
func (r response) str(tb testing.TB, field string) string {
	tb.Helper()
	s, ok := r.object(tb)[field].(string)
	require.True(tb, ok, "field %q is not a string in %s", field, r)
	return s
}

var client = &http.Client{Timeout: 30 * time.Second}

// header is one request header.
type header struct{ k, v string }

// raw is a request body sent as it is, with Content-Type application/json
// unless a header says otherwise.
type raw string

// do sends a request to path under /api/v1. body: nil (none), raw (as is),
// *multipartBody, an io.Reader (streamed with unknown length), or anything
// else (encoded as JSON). token "" sends no Authorization header.
func (ts *testServer) do(tb testing.TB, method, path, token string, body any, hdrs ...header) response {
	tb.Helper()
	r, err := ts.send(method, path, token, body, hdrs...)
	require.NoError(tb, err, "%s %s", method, path)
	return r
}

// send is do without a test, for goroutines.
func (ts *testServer) send(method, path, token string, body any, hdrs ...header) (response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case raw:
		rd, ctype = strings.NewReader(string(b)), "application/json"
	case *multipartBody:
		rd, ctype = bytes.NewReader(b.buf.Bytes()), b.contentType
	case *typedReader:
		rd, ctype = b, b.contentType
	case io.Reader:
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd, ctype = bytes.NewReader(js), "application/json"
	}
	req, err := http.NewRequest(method, ts.URL+"/api/v1"+path, rd)
	if err != nil {
		return response{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range hdrs {
		if h.v == "" {
			req.Header.Del(h.k)
		} else {
			req.Header.Set(h.k, h.v)
		}
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: out}, err
}

// must sends a request as a and requires the given status.
func (ts *testServer) must(tb testing.TB, status int, method, path string, a dealroom.Actor, body any, hdrs ...header) response {
	tb.Helper()
	r := ts.do(tb, method, path, tok(tb, a), body, hdrs...)
	require.Equal(tb, status, r.Status, "%s %s as %s: %s", method, path, a.ID, r)
	return r
}

// multipartBody is a multipart/form-data upload.
type multipartBody struct {
	buf         bytes.Buffer
	contentType string
}

// part is one form field; a file when filename is set.
type part struct {
	name, filename, contentType string
	data                        []byte
}

// upload builds a multipart body from parts.
func upload(tb testing.TB, parts ...part) *multipartBody {
	tb.Helper()
	mb := &multipartBody{}
	w := multipart.NewWriter(&mb.buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.filename))
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.name))
		}
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		require.NoError(tb, err)
		_, err = pw.Write(p.data)
		require.NoError(tb, err)
	}
	require.NoError(tb, w.Close())
	mb.contentType = w.FormDataContentType()
	return mb
}

// fileUpload is an upload of one file.
func fileUpload(tb testing.TB, name string, data []byte) *multipartBody {
	return upload(tb, part{name: "file", filename: name, contentType: "text/plain", data: data})
}

// events returns every event of a room that a may see, following cursors,
// and checks that seqs increase.
func (ts *testServer) events(tb testing.TB, roomID string, a dealroom.Actor) []map[string]any {
	tb.Helper()
	var all []map[string]any
	path := "/rooms/" + roomID + "/events?limit=1000"
	for range 100 {
		r := ts.must(tb, http.StatusOK, "GET", path, a, nil)
		all = append(all, r.items(tb)...)
		next, _ := r.object(tb)["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/rooms/" + roomID + "/events?limit=1000&cursor=" + next
	}
	last := 0.0
	for _, e := range all {
		seq, _ := e["seq"].(float64)
		require.Greater(tb, seq, last, "seqs increase")
		last = seq
	}
	return all
}

// eventCount is how many events the room has, as its owner sees them (the
// owner sees every event). It also checks that they form 1, 2, 3, ...
func (ts *testServer) eventCount(tb testing.TB, roomID string) int {
	tb.Helper()
	evs := ts.events(tb, roomID, owner)
	for i, e := range evs {
		require.EqualValues(tb, i+1, e["seq"], "the owner sees a gap-free sequence")
	}
	return len(evs)
}

// roomCount is how many rooms an admin sees.
func (ts *testServer) roomCount(tb testing.TB) int {
	tb.Helper()
	return len(ts.must(tb, http.StatusOK, "GET", "/rooms?limit=200", admin, nil).items(tb))
}

// blobFiles lists the files stored in the blob directory (not its tmp).
func (ts *testServer) blobFiles(tb testing.TB) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(ts.BlobDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	require.NoError(tb, err)
	return out
}

// statusCodes are the contract's error codes by HTTP status.
var statusCodes = map[int]string{
	400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
	413: "payload_too_large", 422: "invalid_field", 429: "rate_limited", 503: "unavailable",
}

// assertErrorBody checks the contract's error shape: a JSON body
// {"error": {"code", "message"}} whose code fits the status, with "field"
// on 422 (and field, when not empty, naming the offending field).
func assertErrorBody(tb testing.TB, r response, field string) bool {
	tb.Helper()
	ok := assert.Contains(tb, r.Header.Get("Content-Type"), "application/json", "error content type: %s", r)
	var body struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	if !assert.NoError(tb, json.Unmarshal(r.Body, &body), "error body is JSON: %s", r) ||
		!assert.NotNil(tb, body.Error, "error body has \"error\": %s", r) {
		return false
	}
	e := body.Error
	ok = assert.NotNil(tb, e.Code, "error has a code: %s", r) && ok
	ok = assert.NotNil(tb, e.Message, "error has a message: %s", r) && ok
	if e.Code != nil {
		if want, known := statusCodes[r.Status]; known {
			ok = assert.Equal(tb, want, *e.Code, "error code for status %d: %s", r.Status, r) && ok
		}
	}
	if e.Message != nil {
		ok = assert.NotEmpty(tb, strings.TrimSpace(*e.Message), "error message: %s", r) && ok
	}
	if r.Status == http.StatusUnprocessableEntity {
		if assert.NotNil(tb, e.Field, "a 422 names its field: %s", r) && field != "" {
			ok = assert.Equal(tb, field, *e.Field, "422 field: %s", r) && ok
		}
	}
	return ok
}

// fixture is a room with something of everything in it, made by the owner,
// with the matrix's members.
type fixture struct {
	ts         *testServer
	Room       string
	Task       string // shared, assigned to Walter and Carl
	ITask      string // internal, assigned to Walter
	Msg        string // shared, by the owner
	IMsg       string // internal, by the owner
	Att        string // shared file
	IAtt       string // internal file
	Invite     string // a pending invite's id
	InviteCode string
	InboxItem  string // Walter's inbox item about his internal assignment (his alone)
}

// newFixture builds a fresh room on ts.
func newFixture(tb testing.TB, ts *testServer) *fixture {
	tb.Helper()
	f := &fixture{ts: ts}
	r := ts.must(tb, http.StatusCreated, "POST", "/rooms", owner, map[string]any{
		"name": "Acme rollout", "company": "Acme", "value": secretValue, "currency": "EUR",
		"close_window": "this_month", "tags": []string{secretTag},
	})
	f.Room = r.str(tb, "id")
	base := "/rooms/" + f.Room
	for _, m := range []map[string]any{
		{"user_id": staffW.ID, "name": staffW.Name, "kind": "staff", "access": "write"},
		{"user_id": staffR.ID, "name": staffR.Name, "kind": "staff", "access": "read"},
		{"user_id": custW.ID, "name": custW.Name, "kind": "customer", "access": "write"},
		{"user_id": custR.ID, "name": custR.Name, "kind": "customer", "access": "read"},
		{"user_id": target.ID, "name": target.Name, "kind": "staff", "access": "write"},
	} {
		ts.must(tb, http.StatusCreated, "POST", base+"/members", owner, m)
	}
	f.Task = ts.must(tb, http.StatusCreated, "POST", base+"/tasks", owner, map[string]any{
		"title": "Security review", "assignees": []string{staffW.ID, custW.ID}, "due": "2030-01-31",
	}).str(tb, "id")
	f.ITask = ts.must(tb, http.StatusCreated, "POST", base+"/tasks", owner, map[string]any{
		"title": "Discount plan " + internalMarker, "description": "floor price " + internalMarker,
		"visibility": "internal", "assignees": []string{staffW.ID},
	}).str(tb, "id")
	f.Msg = ts.must(tb, http.StatusCreated, "POST", base+"/messages", owner, map[string]any{
		"body": "Welcome @Carl, here is the plan",
	}).str(tb, "id")
	f.IMsg = ts.must(tb, http.StatusCreated, "POST", base+"/messages", owner, map[string]any{
		"body": "Between us: " + internalMarker, "visibility": "internal",
	}).str(tb, "id")
	f.Att = ts.must(tb, http.StatusCreated, "POST", base+"/attachments", owner,
		fileUpload(tb, "proposal.txt", []byte(sharedFileBody))).str(tb, "id")
	f.IAtt = ts.must(tb, http.StatusCreated, "POST", base+"/attachments?visibility=internal", owner,
		fileUpload(tb, internalMarker+".txt", []byte("margin sheet "+internalMarker))).str(tb, "id")
	inv := ts.must(tb, http.StatusCreated, "POST", base+"/invites", owner, map[string]any{
		"email": inviteeEmail, "access": "write",
	})
	f.Invite, f.InviteCode = inv.str(tb, "id"), inv.str(tb, "code")
	for _, it := range ts.must(tb, http.StatusOK, "GET", "/me/inbox", staffW, nil).items(tb) {
		if it["task_id"] == f.ITask && it["room_id"] == f.Room {
			f.InboxItem, _ = it["id"].(string)
		}
	}
	require.NotEmpty(tb, f.InboxItem, "Walter has an inbox item for his assignment")
	return f
}

// expand replaces {room}, {task}, ... in a path with the fixture's ids.
func (f *fixture) expand(path string) string {
	return strings.NewReplacer(
		"{room}", f.Room, "{task}", f.Task, "{itask}", f.ITask, "{msg}", f.Msg, "{imsg}", f.IMsg,
		"{att}", f.Att, "{iatt}", f.IAtt, "{invite}", f.Invite, "{code}", f.InviteCode,
		"{item}", f.InboxItem,
	).Replace(path)
}

// cursorOf makes a cursor the way the server does (opaque to clients, but
// tests need one that points nowhere).
func cursorOf(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// assertCustomerSafe checks that a body served to a customer holds nothing
// internal: no internal item or event, no deal value, forecast or tags.
func assertCustomerSafe(tb testing.TB, body []byte, what string) bool {
	tb.Helper()
	ok := assert.NotContains(tb, string(body), internalMarker, "%s: internal content reached a customer", what)
	ok = assert.NotContains(tb, string(body), secretTag, "%s: the room's tags reached a customer", what) && ok
	ok = assert.NotContains(tb, string(body), "987654", "%s: the deal value reached a customer", what) && ok
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ok // a download
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["visibility"] == "internal" {
				ok = false
				tb.Errorf("%s: an internal item at %s reached a customer: %v", what, path, x)
			}
			for _, k := range []string{"value", "close_window", "tags", "follow_up_days"} {
				if _, has := x[k]; has {
					ok = false
					tb.Errorf("%s: a customer got the staff-only field %q at %s", what, k, path)
				}
			}
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("$", v)
	return ok
}
