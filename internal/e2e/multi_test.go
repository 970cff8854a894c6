// Package e2e runs the production deployment for real: several dealroom
// processes sharing one MongoDB-compatible server and one Redis, clients
// spread over them, and faults on purpose.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testenv"
	"dealroom/internal/wstest"
	"dealroom/jwtauth"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const secret = "e2e-secret-0123456789-0123456789-0123456789"

var (
	rep   = dealroom.Actor{ID: "rep", Name: "Rita Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	peer  = dealroom.Actor{ID: "peer", Name: "Pete Peer", Kind: dealroom.Staff, Role: dealroom.Rep}
	buyer = dealroom.Actor{ID: "buyer", Name: "Bea Buyer", Kind: dealroom.Customer}
)

func token(t testing.TB, a dealroom.Actor) string {
	keys, err := jwtauth.New(jwtauth.Config{Secret: []byte(secret)})
	require.NoError(t, err)
	tok, err := keys.Issue(a, 2*time.Hour)
	require.NoError(t, err)
	return tok
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t testing.TB) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dealroom-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "dealroom")
		out, err := exec.Command("go", "build", "-o", binPath, "dealroom/cmd/dealroom").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// instance is one dealroom process.
type instance struct {
	URL  string
	cmd  *exec.Cmd
	logs *lockedBuffer // its stdout and stderr
	mu   sync.Mutex
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startInstance(t *testing.T, mongoURI, redisURL string, extra ...string) *instance {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = append(os.Environ(),
		"DEALROOM_ADDR="+addr, "DEALROOM_MONGO_URI="+mongoURI, "DEALROOM_REDIS_URL="+redisURL,
		"DEALROOM_JWT_SECRET="+secret, "DEALROOM_DATA_DIR="+t.TempDir(), "DEALROOM_RATE_LIMIT=100000",
		"DEALROOM_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, extra...)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	in := &instance{URL: "http://" + addr, cmd: cmd, logs: logs}
	t.Cleanup(func() {
		in.kill()
		if t.Failed() {
			t.Logf("instance %s log:\n%s", addr, logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(in.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not ready within 60s:\n%s", addr, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no goodbye to anyone.
func (in *instance) kill() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd.ProcessState == nil {
		in.cmd.Process.Kill()
		in.cmd.Wait()
	}
}

func call(t testing.TB, base, tok, method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+"/api/v1"+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func timeline(t testing.TB, base, tok, roomID string) []json.RawMessage {
	var out []json.RawMessage
	after := int64(0)
	for {
		st, data := call(t, base, tok, "GET", fmt.Sprintf("/rooms/%s/events?after=%d&limit=1000", roomID, after), nil)
		require.Equal(t, 200, st, "%s", data)
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		require.NoError(t, json.Unmarshal(data, &page))
		if len(page.Items) == 0 {
			return out
		}
		out = append(out, page.Items...)
		after = wstest.SeqOf(page.Items[len(page.Items)-1])
	}
}

// TestSeveralInstances: three instances share one MongoDB and one Redis;
// devices spread over them reconnect at random while writers change the
// rooms through all three. Then Redis stops for a few seconds and comes
// back, and one instance is killed and its devices move to the others.
// Every device ends with exactly the events its person may see, once and
// in order, and every acknowledged write is in the log.
func TestSeveralInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three server processes")
	}
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedis(t)
	redisURL := "redis://" + rs.Addr() + "/0"
	var nodes []*instance
	for range 3 {
		nodes = append(nodes, startInstance(t, mongoURI, redisURL, "DEALROOM_PRESENCE_TTL=3s"))
	}
	repTok, buyerTok := token(t, rep), token(t, buyer)

	var rooms []string
	for i := range 3 {
		st, data := call(t, nodes[i].URL, repTok, "POST", "/rooms", map[string]any{"name": fmt.Sprintf("Multi %d", i), "company": "Acme"})
		require.Equal(t, 201, st, "%s", data)
		var r struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(data, &r))
		rooms = append(rooms, r.ID)
		for _, m := range []map[string]any{
			{"user_id": peer.ID, "name": peer.Name, "kind": "staff", "access": "write"},
			{"user_id": buyer.ID, "name": buyer.Name, "kind": "customer", "access": "write"},
		} {
			st, data := call(t, nodes[(i+1)%3].URL, repTok, "POST", "/rooms/"+r.ID+"/members", m)
			require.Equal(t, 201, st, "%s", data)
		}
	}

	// Presence crosses instances: the buyer arriving on one is seen on
	// another within two seconds.
	testPresenceAcross(t, nodes[0], nodes[1], rooms[0])

	actors := []dealroom.Actor{rep, peer, buyer}
	tokens := map[string]string{rep.ID: repTok, peer.ID: token(t, peer), buyer.ID: buyerTok}
	var devices []*wstest.Device
	actorOf := map[*wstest.Device]dealroom.Actor{}
	for i := range 12 {
		a := actors[i%3]
		d := wstest.NewDevice(fmt.Sprintf("device %d (%s)", i, a.ID), tokens[a.ID], rooms[i%3], rooms[(i+1)%3])
		devices = append(devices, d)
		actorOf[d] = a
	}
	var alive atomic.Int32 // bit i set: instance i is up
	alive.Store(0b111)
	pick := func(rng *rand.Rand) *instance {
		for {
			i := rng.IntN(3)
			if alive.Load()&(1<<i) != 0 {
				return nodes[i]
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var dw sync.WaitGroup
	for i, d := range devices {
		dw.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for {
				select {
				case <-stop:
					return
				default:
				}
				sctx, scancel := context.WithTimeout(ctx, time.Duration(100+rng.IntN(900))*time.Millisecond)
				d.Session(sctx, pick(rng).URL)
				scancel()
				time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
			}
		})
	}

	// Writers on all instances. A write that got 2xx is acknowledged and
	// must be in the log; one that failed (its instance died under it) may
	// or may not be.
	var acked sync.Map // body → room
	var writing sync.WaitGroup
	writeStop := make(chan struct{})
	for w := range 4 {
		writing.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for k := 0; ; k++ {
				select {
				case <-writeStop:
					return
				default:
				}
				a := actors[rng.IntN(3)]
				r := rooms[rng.IntN(3)]
				body := map[string]any{"body": fmt.Sprintf("w%d-%d", w, k)}
				if a.Kind == dealroom.Staff && rng.IntN(3) == 0 {
					body["visibility"] = "internal"
				}
				st, _ := call(t, pick(rng).URL, tokens[a.ID], "POST", "/rooms/"+r+"/messages", body)
				if st == 201 {
					acked.Store(body["body"], r)
				}
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			}
		})
	}

	time.Sleep(3 * time.Second)
	t.Log("stopping Redis")
	rs.Stop()
	time.Sleep(3 * time.Second)
	t.Log("starting Redis again")
	rs.Start()
	time.Sleep(3 * time.Second)
	t.Log("killing instance 2")
	alive.Store(0b011)
	nodes[2].kill()
	time.Sleep(3 * time.Second)
	close(writeStop)
	writing.Wait()
	close(stop)
	dw.Wait()

	// The log holds every acknowledged write.
	want := map[string]map[string][]json.RawMessage{}
	for _, a := range actors {
		want[a.ID] = map[string][]json.RawMessage{}
		for _, r := range rooms {
			want[a.ID][r] = timeline(t, nodes[0].URL, tokens[a.ID], r)
		}
	}
	bodies := map[string]bool{}
	for _, r := range rooms {
		for i, ev := range want[rep.ID][r] {
			require.EqualValues(t, i+1, wstest.SeqOf(ev), "seqs are gap-free")
			var e struct {
				Data struct {
					Body string `json:"body"`
				} `json:"data"`
			}
			json.Unmarshal(ev, &e)
			bodies[r+"/"+e.Data.Body] = true
		}
	}
	n := 0
	acked.Range(func(k, v any) bool {
		n++
		assert.True(t, bodies[v.(string)+"/"+k.(string)], "acknowledged write %s is in the log", k)
		return true
	})
	t.Logf("%d acknowledged writes", n)

	// Every device catches up on a surviving instance, exactly.
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	defer fcancel()
	var fw sync.WaitGroup
	for i, d := range devices {
		fw.Go(func() {
			sctx, scancel := context.WithCancel(fctx)
			defer scancel()
			go func() {
				for !d.CaughtUp(want[actorOf[d].ID]) && sctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond)
				scancel()
			}()
			d.Session(sctx, nodes[i%2].URL)
		})
	}
	fw.Wait()
	require.NoError(t, fctx.Err(), "devices did not catch up within 60s")
	for _, d := range devices {
		d.Check(t, want[actorOf[d].ID])
	}

	// An instance that dies takes its people out of the room by itself.
	doomed := startInstance(t, mongoURI, redisURL, "DEALROOM_PRESENCE_TTL=3s")
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	watch := dialWS(t, pctx, nodes[0].URL, repTok)
	defer watch.CloseNow()
	send(t, pctx, watch, map[string]any{"type": "subscribe", "room": rooms[1], "after": 0})
	gone := dialWS(t, pctx, doomed.URL, buyerTok)
	go func() {
		for {
			if _, _, err := gone.Read(pctx); err != nil {
				return
			}
		}
	}()
	send(t, pctx, gone, map[string]any{"type": "subscribe", "room": rooms[1], "after": 0})
	waitPresence(t, pctx, watch, func(ids map[string]bool) bool { return ids[buyer.ID] })
	doomed.kill()
	killed := time.Now()
	waitPresence(t, pctx, watch, func(ids map[string]bool) bool { return !ids[buyer.ID] })
	assert.Less(t, time.Since(killed), 6*time.Second, "a dead instance's people leave within the presence expiry")
}

// testPresenceAcross: a device arriving on instance a is seen by a device
// on instance b within two seconds, and when a dies without a word, b sees
// it leave within the presence expiry (3s here) plus a little.
func testPresenceAcross(t *testing.T, a, b *instance, roomID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watch := dialWS(t, ctx, b.URL, token(t, rep))
	defer watch.CloseNow()
	send(t, ctx, watch, map[string]any{"type": "subscribe", "room": roomID, "after": 0})

	arrived := time.Now()
	buyerConn := dialWS(t, ctx, a.URL, token(t, buyer))
	defer buyerConn.CloseNow()
	go func() { // keep the connection answering pings
		for {
			if _, _, err := buyerConn.Read(ctx); err != nil {
				return
			}
		}
	}()
	send(t, ctx, buyerConn, map[string]any{"type": "subscribe", "room": roomID, "after": 0})
	waitPresence(t, ctx, watch, func(ids map[string]bool) bool { return ids[buyer.ID] })
	assert.Less(t, time.Since(arrived), 2*time.Second, "an arrival on another instance is seen within 2s")
}

func dialWS(t *testing.T, ctx context.Context, base, tok string) *websocket.Conn {
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/v1/ws?token="+tok, nil)
	require.NoError(t, err)
	conn.SetReadLimit(1 << 22)
	return conn
}

func send(t *testing.T, ctx context.Context, c *websocket.Conn, v any) {
	b, _ := json.Marshal(v)
	require.NoError(t, c.Write(ctx, websocket.MessageText, b))
}

func waitPresence(t *testing.T, ctx context.Context, c *websocket.Conn, ok func(map[string]bool) bool) {
	t.Helper()
	for {
		_, data, err := c.Read(ctx)
		require.NoError(t, err, "waiting for presence")
		var f struct {
			Type    string `json:"type"`
			Members []struct {
				UserID string `json:"user_id"`
			} `json:"members"`
		}
		json.Unmarshal(data, &f)
		if f.Type != "presence" {
			continue
		}
		ids := map[string]bool{}
		for _, m := range f.Members {
			ids[m.UserID] = true
		}
		if ok(ids) {
			return
		}
	}
}

// TestSignOutAcrossInstances: revoking an accepted invite on one instance
// closes, through Redis, the websockets of its token on another instance,
// also one that follows no room there (only the sessions channel reaches
// it); and the token is refused on every instance.
func TestSignOutAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	mongoURI, _ := testenv.MongoDatabase(t)
	rs := testenv.StartRedis(t)
	redisURL := "redis://" + rs.Addr() + "/0"
	a, b := startInstance(t, mongoURI, redisURL), startInstance(t, mongoURI, redisURL)
	repTok := token(t, rep)
	st, data := call(t, a.URL, repTok, "POST", "/rooms", map[string]any{"name": "Sign-out", "company": "Acme"})
	require.Equal(t, 201, st, "%s", data)
	var r struct{ ID string }
	require.NoError(t, json.Unmarshal(data, &r))
	st, data = call(t, a.URL, repTok, "POST", "/rooms/"+r.ID+"/invites", map[string]any{"email": "bea@buyer.example"})
	require.Equal(t, 201, st, "%s", data)
	var inv struct{ ID, Code string }
	require.NoError(t, json.Unmarshal(data, &inv))
	st, data = call(t, b.URL, "", "POST", "/invites/"+inv.Code+"/accept", map[string]any{"name": "Bea", "email": "bea@buyer.example"})
	require.Equal(t, 200, st, "%s", data)
	var acc struct{ Token string }
	require.NoError(t, json.Unmarshal(data, &acc))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	following := dialWS(t, ctx, a.URL, acc.Token)
	defer following.CloseNow()
	send(t, ctx, following, map[string]any{"type": "subscribe", "room": r.ID, "after": 0})
	idle := dialWS(t, ctx, b.URL, acc.Token)
	defer idle.CloseNow()
	send(t, ctx, idle, map[string]any{"type": "ping"})
	for _, c := range []*websocket.Conn{following, idle} {
		for {
			_, data, err := c.Read(ctx)
			require.NoError(t, err)
			if strings.Contains(string(data), `"subscribed"`) || strings.Contains(string(data), `"pong"`) {
				break
			}
		}
	}

	st, data = call(t, a.URL, repTok, "DELETE", "/rooms/"+r.ID+"/invites/"+inv.ID, nil)
	require.Equal(t, 204, st, "%s", data)
	for name, c := range map[string]*websocket.Conn{"following the room, where it was revoked": following,
		"idle, on the other instance": idle} {
		var err error
		for err == nil {
			_, _, err = c.Read(ctx)
		}
		assert.Equal(t, websocket.StatusCode(4003), websocket.CloseStatus(err), "%s: %v", name, err)
	}
	for _, in := range []*instance{a, b} {
		st, _ := call(t, in.URL, acc.Token, "GET", "/rooms/"+r.ID, nil)
		assert.Equal(t, 401, st)
	}
}
