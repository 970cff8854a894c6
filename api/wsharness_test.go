package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/broker"
	"dealroom/diskblob"
	"dealroom/hub"
	"dealroom/jwtauth"
	"dealroom/room"
	"dealroom/session"
	"dealroom/ws"
)

// cluster is one store shared by several instances (hub + API server),
// connected by an in-process broker bus: what several processes on MongoDB
// and Redis are, in one test.
type cluster struct {
	t     testing.TB
	Store room.Store
	Keys  *jwtauth.Keys
	bus   *broker.Bus
	Nodes []*node
	blobs room.Blobs
}

type node struct {
	URL string
	Hub *hub.Hub
	Svc *room.Service
	srv *httptest.Server
	// Broker is the node's connection to the bus: closing it cuts the
	// node off from the others without a word (a silent death).
	Broker *broker.Local
}

type clusterConfig struct {
	hub hub.Config
	rt  ws.Config
	// store, when set, wraps the store the instance's service writes to.
	store func(room.Store) room.Store
}

func newCluster(t testing.TB, nodes int, opts ...func(*clusterConfig)) *cluster {
	t.Helper()
	var cc clusterConfig
	for _, o := range opts {
		o(&cc)
	}
	dir := t.TempDir()
	store, err := boltstore.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	blobs, err := diskblob.Open(dir + "/attachments")
	require.NoError(t, err)
	keys, err := jwtauth.New(jwtauth.Config{Secret: testSecret})
	require.NoError(t, err)
	c := &cluster{t: t, Store: store, Keys: keys, bus: broker.NewBus(), blobs: blobs}
	for range nodes {
		c.AddNode(cc)
	}
	return c
}

// AddNode starts one more instance.
func (c *cluster) AddNode(cc clusterConfig) *node {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := &room.Service{Store: c.Store, Blobs: c.blobs}
	if cc.store != nil {
		svc.Store = cc.store(c.Store)
	}
	hcfg := cc.hub
	hcfg.Instance = fmt.Sprintf("node%d", len(c.Nodes))
	h := hub.New(hcfg, room.Redactor{Store: c.Store}, svc, log)
	b := c.bus.Connect(h)
	h.Start(b)
	svc.Committed = h.Committed
	svc.ReadMoved = h.ReadMoved
	// As with the REST rate limit, the websocket's caps are the tests'
	// to set: most tests open many devices of one person.
	rt := cc.rt
	if rt.MaxSocketsPerUser == 0 {
		rt.MaxSocketsPerUser = 1 << 20
	}
	if rt.MaxSubscriptions == 0 {
		rt.MaxSubscriptions = 1 << 20
	}
	if rt.FrameRate == 0 {
		rt.FrameRate, rt.FrameBurst = 1e6, 1<<20
	}
	sessions, _ := c.Store.(session.Store)
	srv := api.New(api.Config{RateLimit: 1e6, RateBurst: 1e6, Hub: h, Realtime: rt, Sessions: sessions}, svc, c.Keys, log, api.NewMetrics(), nil)
	hs := httptest.NewServer(srv)
	n := &node{URL: hs.URL, Hub: h, Svc: svc, srv: hs, Broker: b}
	c.t.Cleanup(func() {
		h.Close()
		hs.CloseClientConnections()
		hs.Close()
		b.Close()
	})
	c.Nodes = append(c.Nodes, n)
	return n
}

func (c *cluster) token(a dealroom.Actor) string {
	tok, err := c.Keys.Issue(a, time.Hour)
	require.NoError(c.t, err)
	return tok
}

// rest makes a REST call and decodes the answer into out (when not nil).
func (c *cluster) rest(n *node, a dealroom.Actor, method, path string, body any, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, n.URL+"/api/v1"+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token(a))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(c.t, json.Unmarshal(data, out), "%s", data)
	}
	return resp.StatusCode
}

// visibleEvents returns every event of the room the actor may see, as the
// REST timeline gives them.
func (c *cluster) visibleEvents(n *node, a dealroom.Actor, roomID string) []json.RawMessage {
	c.t.Helper()
	var out []json.RawMessage
	after := int64(0)
	for {
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		st := c.rest(n, a, "GET", fmt.Sprintf("/rooms/%s/events?after=%d&limit=1000", roomID, after), nil, &page)
		require.Equal(c.t, 200, st)
		if len(page.Items) == 0 {
			return out
		}
		out = append(out, page.Items...)
		after = seqOf(c.t, page.Items[len(page.Items)-1])
	}
}

func seqOf(t testing.TB, ev json.RawMessage) int64 {
	var e struct {
		Seq int64 `json:"seq"`
	}
	require.NoError(t, json.Unmarshal(ev, &e))
	return e.Seq
}

// frame is a server frame as a test client sees it.
type frame struct {
	Type    string          `json:"type"`
	Room    string          `json:"room"`
	Head    int64           `json:"head"`
	ID      string          `json:"id"`
	Seq     int64           `json:"seq"`
	Event   json.RawMessage `json:"event"`
	Data    json.RawMessage `json:"data"`
	Reason  string          `json:"reason"`
	Members []struct {
		UserID  string `json:"user_id"`
		Name    string `json:"name"`
		Kind    string `json:"kind"`
		State   string `json:"state"`
		Devices int    `json:"devices"`
		TaskID  string `json:"task_id"`
	} `json:"members"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
	raw []byte
}

// wsClient is a test device: a websocket and the frames it received.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	// presence frames go apart, so that tests of events need not skip them
	presence chan frame
	stash    []frame
	done     chan struct{}
	err      error
	ctx      context.Context
	cancel   context.CancelFunc
}

func (c *cluster) dial(n *node, a dealroom.Actor) *wsClient {
	c.t.Helper()
	cl, err := c.tryDial(n, a, nil)
	require.NoError(c.t, err)
	return cl
}

func (c *cluster) tryDial(n *node, a dealroom.Actor, opts *websocket.DialOptions) (*wsClient, error) {
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/api/v1/ws?token=" + c.token(a)
	conn, _, err := websocket.Dial(dctx, url, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	conn.SetReadLimit(1 << 22)
	cl := &wsClient{t: c.t, conn: conn, frames: make(chan frame, 1<<16), presence: make(chan frame, 1<<12), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go cl.read()
	c.t.Cleanup(cl.Close)
	return cl, nil
}

func (cl *wsClient) read() {
	defer close(cl.done)
	defer close(cl.frames)
	for {
		_, data, err := cl.conn.Read(cl.ctx)
		if err != nil {
			cl.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			cl.err = fmt.Errorf("server sent a frame that is not JSON: %q", data)
			return
		}
		f.raw = data
		if f.Type == "presence" {
			select {
			case cl.presence <- f:
			default: // nobody looks at presence in this test
			}
			continue
		}
		cl.frames <- f
	}
}

// Close closes the connection cleanly.
func (cl *wsClient) Close() {
	cl.conn.Close(websocket.StatusNormalClosure, "")
	cl.cancel()
	<-cl.done
}

// Drop ends the connection without a closing handshake.
func (cl *wsClient) Drop() {
	cl.conn.CloseNow()
	cl.cancel()
	<-cl.done
}

func (cl *wsClient) send(v any) {
	cl.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(cl.t, err)
	ctx, cancel := context.WithTimeout(cl.ctx, 5*time.Second)
	defer cancel()
	require.NoError(cl.t, cl.conn.Write(ctx, websocket.MessageText, b))
}

func (cl *wsClient) subscribe(roomID string, after int64) {
	cl.send(map[string]any{"type": "subscribe", "room": roomID, "after": after})
}

// next returns the next frame, failing the test after d.
func (cl *wsClient) next(d time.Duration) frame {
	cl.t.Helper()
	if len(cl.stash) > 0 {
		f := cl.stash[0]
		cl.stash = cl.stash[1:]
		return f
	}
	select {
	case f, ok := <-cl.frames:
		if !ok {
			cl.t.Fatalf("connection ended: %v", cl.err)
		}
		return f
	case <-time.After(d):
		cl.t.Fatalf("no frame within %s", d)
	}
	return frame{}
}

// until returns the frames up to and including the first that matches.
func (cl *wsClient) until(d time.Duration, what string, match func(frame) bool) []frame {
	cl.t.Helper()
	deadline := time.After(d)
	var got []frame
	for len(cl.stash) > 0 {
		f := cl.stash[0]
		cl.stash = cl.stash[1:]
		got = append(got, f)
		if match(f) {
			return got
		}
	}
	for {
		select {
		case f, ok := <-cl.frames:
			if !ok {
				cl.t.Fatalf("connection ended while waiting for %s: %v", what, cl.err)
			}
			got = append(got, f)
			if match(f) {
				return got
			}
		case <-deadline:
			cl.t.Fatalf("no %s within %s (got %d frames)", what, d, len(got))
		}
	}
}

// command sends a command and returns its answer (ack or error).
func (cl *wsClient) command(id, roomID, op string, data any) frame {
	cl.t.Helper()
	cl.send(map[string]any{"type": "command", "id": id, "room": roomID, "op": op, "data": data})
	fs := cl.until(10*time.Second, "the answer to "+id, func(f frame) bool {
		return (f.Type == "ack" || f.Type == "error") && f.ID == id
	})
	// Keep what came before the answer for the test to read.
	cl.stash = append(fs[:len(fs)-1:len(fs)-1], cl.stash...)
	return fs[len(fs)-1]
}

// syncLog is a concurrency-safe list of what a device processed.
type syncLog struct {
	mu     sync.Mutex
	events []json.RawMessage
}

func (l *syncLog) add(ev json.RawMessage) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

// withRealtime sets the websocket endpoint's configuration of every node.
func withRealtime(rc ws.Config) func(*clusterConfig) {
	return func(cc *clusterConfig) { cc.rt = rc }
}

// withHub sets the hub configuration of every node.
func withHub(hc hub.Config) func(*clusterConfig) {
	return func(cc *clusterConfig) { cc.hub = hc }
}

// wsURL is the node's websocket address with the given query ("" or
// "?token=...").
func (n *node) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(n.URL, "http") + "/api/v1/ws" + query
}

// newWSClient makes a test client of a connection dialed by the test.
func newWSClient(t testing.TB, conn *websocket.Conn) *wsClient {
	ctx, cancel := context.WithCancel(context.Background())
	conn.SetReadLimit(1 << 22)
	cl := &wsClient{t: t, conn: conn, frames: make(chan frame, 1<<16), presence: make(chan frame, 1<<12), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go cl.read()
	t.Cleanup(cl.Close)
	return cl
}

// subscribed subscribes to a room from after and waits for "subscribed";
// the frames before it are returned.
func (cl *wsClient) subscribed(roomID string, after int64) []frame {
	cl.t.Helper()
	cl.subscribe(roomID, after)
	fs := cl.until(10*time.Second, "subscribed to "+roomID, func(f frame) bool { return f.Type == "subscribed" && f.Room == roomID })
	return fs[:len(fs)-1]
}

// presenceMember is one person of a presence frame.
type presenceMember struct {
	UserID, Name, Kind, State, TaskID string
	Devices                           int
}

// members returns the people of a presence frame by user id.
func (f frame) members() map[string]presenceMember {
	out := map[string]presenceMember{}
	for _, m := range f.Members {
		out[m.UserID] = presenceMember{UserID: m.UserID, Name: m.Name, Kind: m.Kind, State: m.State, TaskID: m.TaskID, Devices: m.Devices}
	}
	return out
}

// waitPresence returns the presence frames of the room received until
// one matches (the last), failing the test after d. Presence is paced and
// coalesced: tests wait for the state they expect, not for the next frame.
func (cl *wsClient) waitPresence(d time.Duration, roomID, what string, match func(frame) bool) []frame {
	cl.t.Helper()
	deadline := time.After(d)
	var got []frame
	for {
		select {
		case f := <-cl.presence:
			got = append(got, f)
			if f.Room == roomID && match(f) {
				return got
			}
		case <-cl.done:
			// Frames read before the end are still in the channel.
			select {
			case f := <-cl.presence:
				got = append(got, f)
				if f.Room == roomID && match(f) {
					return got
				}
				continue
			default:
			}
			cl.t.Fatalf("connection ended while waiting for presence: %s: %v", what, cl.err)
		case <-deadline:
			last := "none"
			if len(got) > 0 {
				last = string(got[len(got)-1].raw)
			}
			cl.t.Fatalf("no presence frame with %s within %s (last: %s)", what, d, last)
		}
	}
}

// drain returns every frame received so far and not yet read, presence
// frames included.
func (cl *wsClient) drain() []frame {
	out := append([]frame(nil), cl.stash...)
	cl.stash = nil
	for {
		select {
		case f, ok := <-cl.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case f := <-cl.presence:
			out = append(out, f)
		default:
			return out
		}
	}
}

// barrier sends a ping and returns the frames received before its pong:
// once it returns, every frame the server queued for this client before it
// read the ping has been received.
func (cl *wsClient) barrier() []frame {
	cl.t.Helper()
	cl.send(map[string]any{"type": "ping"})
	fs := cl.until(10*time.Second, "pong", func(f frame) bool { return f.Type == "pong" })
	return fs[:len(fs)-1]
}
