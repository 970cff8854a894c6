package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/hub"
	"dealroom/internal/wstest"
	"dealroom/room"
)

// TestWSExactlyOnceUnderChurn: many devices of staff and customers in many
// rooms, on two instances, drop their connections at random and
// resubscribe with their last seq while writers change the rooms over REST
// and over the socket. Every device ends with exactly the events its
// person may see, each once, in order: the events the timeline returns.
func TestWSExactlyOnceUnderChurn(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	var rooms []string
	for i := range 4 {
		rooms = append(rooms, c.wsRoom(fmt.Sprintf("Churn %d", i)))
	}
	actors := []dealroom.Actor{owner, staffW, custW, custR}
	var devices []*wstest.Device
	actorOf := map[*wstest.Device]dealroom.Actor{}
	for i := range 16 {
		a := actors[i%len(actors)]
		rs := []string{rooms[i%len(rooms)]}
		if i%3 == 0 {
			rs = append(rs, rooms[(i+1)%len(rooms)])
		}
		d := wstest.NewDevice(fmt.Sprintf("device %d (%s)", i, a.ID), c.token(a), rs...)
		devices = append(devices, d)
		actorOf[d] = a
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	stopChurn := make(chan struct{})
	for i, d := range devices {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for {
				select {
				case <-stopChurn:
					return
				default:
				}
				n := c.Nodes[rng.IntN(len(c.Nodes))]
				life := time.Duration(20+rng.IntN(250)) * time.Millisecond
				sctx, scancel := context.WithTimeout(ctx, life)
				d.Session(sctx, n.URL)
				scancel()
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			}
		})
	}

	// Writers: REST on both instances, and commands over a socket.
	var writes atomic.Int64
	writeUntil := time.Now().Add(2500 * time.Millisecond)
	var ww sync.WaitGroup
	for w := range 4 {
		ww.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			authors := []dealroom.Actor{owner, staffW, custW}
			for k := 0; time.Now().Before(writeUntil); k++ {
				r := rooms[rng.IntN(len(rooms))]
				a := authors[rng.IntN(len(authors))]
				n := c.Nodes[rng.IntN(len(c.Nodes))]
				body := map[string]any{"body": fmt.Sprintf("w%d-%d", w, k)}
				if a.Kind == dealroom.Staff && rng.IntN(3) == 0 {
					body["visibility"] = "internal"
				}
				path := "/rooms/" + r + "/messages"
				if rng.IntN(4) == 0 {
					path = "/rooms/" + r + "/tasks"
					body = map[string]any{"title": fmt.Sprintf("task w%d-%d", w, k)}
				}
				if st := c.rest(n, a, "POST", path, body, nil); st != 201 {
					t.Errorf("write answered %d", st)
					return
				}
				writes.Add(1)
			}
		})
	}
	ww.Go(func() {
		url := "ws" + strings.TrimPrefix(c.Nodes[1].URL, "http") + "/api/v1/ws?token=" + c.token(staffW)
		conn, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.CloseNow()
		for k := 0; time.Now().Before(writeUntil); k++ {
			vis := "shared"
			if k%2 == 0 {
				vis = "internal"
			}
			cmd, _ := json.Marshal(map[string]any{"type": "command", "id": fmt.Sprintf("cmd-%d", k), "room": rooms[k%len(rooms)],
				"op": "message.post", "data": map[string]any{"body": fmt.Sprintf("over the socket %d", k), "visibility": vis}})
			if err := conn.Write(ctx, websocket.MessageText, cmd); err != nil {
				t.Error(err)
				return
			}
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				var f frame
				json.Unmarshal(data, &f)
				if f.Type == "error" {
					t.Errorf("command refused: %s", data)
					return
				}
				if f.Type == "ack" {
					break
				}
			}
			writes.Add(1)
		}
	})
	ww.Wait()
	close(stopChurn)
	wg.Wait()
	require.False(t, t.Failed())
	t.Logf("%d writes", writes.Load())

	// Every device connects once more and catches up.
	want := map[string]map[string][]json.RawMessage{}
	for _, a := range actors {
		want[a.ID] = map[string][]json.RawMessage{}
		for _, r := range rooms {
			want[a.ID][r] = c.visibleEvents(c.Nodes[0], a, r)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
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
				time.Sleep(100 * time.Millisecond) // anything extra would show now
				scancel()
			}()
			d.Session(sctx, c.Nodes[i%2].URL)
		})
	}
	fw.Wait()
	require.NoError(t, fctx.Err(), "devices did not catch up within 30s")
	for _, d := range devices {
		d.Check(t, want[actorOf[d].ID])
	}
}

// TestWSSlowDeviceIsCutOff: a device that stops reading gets, once its
// send queue is full, a resync and leaves live delivery, while the other
// devices keep their pace; the server holds at most the queue's bound for
// it. When it reads again and resubscribes it ends exactly right.
func TestWSSlowDeviceIsCutOff(t *testing.T) {
	t.Parallel()
	const queueBytes = 64 << 10
	c := newCluster(t, 1, func(cc *clusterConfig) {
		cc.hub = hub.Config{QueueFrames: 64, QueueBytes: queueBytes}
		// A paused reader is not a vanished one here.
		cc.rt.PingEvery, cc.rt.WriteTimeout = 5*time.Minute, 5*time.Minute
	})
	n := c.Nodes[0]
	roomID := c.wsRoom("Slow")

	fast := wstest.NewDevice("fast", c.token(staffW), roomID)
	slow := wstest.NewDevice("slow", c.token(owner), roomID)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fast.Session(ctx, n.URL)

	// The slow device subscribes, then stops reading: its socket's buffers
	// fill, then its queue on the server.
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/api/v1/ws?token=" + c.token(owner)
	conn, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	require.NoError(t, slow.SubscribeAll(ctx, conn))
	for {
		_, data, err := conn.Read(ctx)
		require.NoError(t, err)
		slow.Handle(data)
		if strings.Contains(string(data), `"subscribed"`) {
			break
		}
	}

	// Big messages fill kernel buffers quickly.
	body := strings.Repeat("x", 9000)
	var maxBacklog atomic.Int64
	var ww sync.WaitGroup
	for w := range 8 {
		ww.Go(func() {
			for k := range 100 {
				if st := c.rest(n, custW, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": fmt.Sprintf("%d/%d %s", w, k, body)}, nil); st != 201 {
					t.Errorf("post answered %d", st)
					return
				}
				if k%10 == 0 {
					_, b := n.Hub.Backlog()
					if int64(b) > maxBacklog.Load() {
						maxBacklog.Store(int64(b))
					}
				}
			}
		})
	}
	ww.Wait()
	want := map[string][]json.RawMessage{roomID: c.visibleEvents(n, owner, roomID)}
	deadline := time.Now().Add(10 * time.Second)
	for !fast.CaughtUp(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.True(t, fast.CaughtUp(want), "the fast device keeps up while the slow one sleeps")
	assert.GreaterOrEqual(t, n.Hub.Stats.Resyncs.Load(), int64(1), "the slow device was told to resync")
	_, b := n.Hub.Backlog()
	peak := max(maxBacklog.Load(), int64(b))
	assert.LessOrEqual(t, peak, int64(2*queueBytes), "the server holds a bounded backlog for the slow device")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("backlog peak %d bytes; heap %d MiB", peak, ms.HeapAlloc>>20)

	// The slow device wakes up: it reads what was queued, meets the resync,
	// resubscribes with its last seq and catches up exactly.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	sawResync := false
	for !slow.CaughtUp(want) {
		_, data, err := conn.Read(rctx)
		require.NoError(t, err)
		if r := slow.Handle(data); r != "" {
			sawResync = true
			require.NoError(t, slow.Subscribe(rctx, conn, r))
		}
	}
	assert.True(t, sawResync)
	slow.Check(t, want)
	fast.Check(t, want)
}

// TestWSReconnectStorm: hundreds of devices of one room come back at once
// to an instance that has just started, each from another seq; they all
// end exactly right, and the store is read far fewer times than there are
// devices.
func TestWSReconnectStorm(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	roomID := c.wsRoom("Storm")
	want, head := writeHistory(t, c, roomID, 8, 100)
	require.EqualValues(t, 804, head)

	// A fresh instance: nothing of the room in memory. It keeps few recent
	// events, so that most catch-up goes through the store's pages.
	fresh := c.AddNode(clusterConfig{hub: hub.Config{Recent: 128, PageSize: 64}})
	const sessions = 300
	devices := make([]*wstest.Device, sessions)
	froms := make([]int64, sessions)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var sw sync.WaitGroup
	var reconnects atomic.Int64
	for i := range sessions {
		d := wstest.NewDevice(fmt.Sprint("storm ", i), c.token(owner), roomID)
		from := int64(rand.IntN(int(head)))
		d.SetLast(roomID, from)
		froms[i] = from
		devices[i] = d
		sw.Go(func() {
			sctx, scancel := context.WithCancel(ctx)
			defer scancel()
			go func() {
				for !d.CaughtUp(want) && sctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
				}
				scancel()
			}()
			// On a loaded machine the server may close a socket that did
			// not answer its ping or take its frames in time (PingTimeout,
			// WriteTimeout), or the client library its own: the device
			// connects again and subscribes after the last seq it
			// processed, as a real client does.
			for d.Session(sctx, fresh.URL); sctx.Err() == nil; d.Session(sctx, fresh.URL) {
				reconnects.Add(1)
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	sw.Wait()
	require.NoError(t, ctx.Err(), "the storm did not settle within 120s")
	for i, d := range devices {
		d.Check(t, map[string][]json.RawMessage{roomID: want[roomID][froms[i]:]})
	}
	reads := fresh.Hub.Stats.StoreReads.Load()
	t.Logf("%d sessions caught up with %d store reads and %d reconnections", sessions, reads, reconnects.Load())
	assert.Less(t, reads, int64(sessions/10), "catch-up reads are shared")
}

func roomMessage(body string) room.MessageDraft { return room.MessageDraft{Body: body} }

// writeHistory gives a room a long history: writers post each messages
// concurrently (so that group commit batches them). It returns the room's
// events as the owner sees them, and the room's head.
func writeHistory(t *testing.T, c *cluster, roomID string, writers, each int) (map[string][]json.RawMessage, int64) {
	t.Helper()
	svc := c.Nodes[0].Svc
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range each {
				if _, err := svc.PostMessage(context.Background(), owner, roomID, roomMessage(fmt.Sprintf("history %d/%d", w, k)), ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := map[string][]json.RawMessage{roomID: c.visibleEvents(c.Nodes[0], owner, roomID)}
	return want, wstest.SeqOf(want[roomID][len(want[roomID])-1])
}

// TestWSLongCatchUpReadsAhead: a device far behind, on an instance that
// has none of the room in memory, gets its events from a few big store
// reads (on MongoDB each read is a round trip), not one read per page.
func TestWSLongCatchUpReadsAhead(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	roomID := c.wsRoom("Far behind")
	want, head := writeHistory(t, c, roomID, 4, 150)
	require.EqualValues(t, 604, head)

	// Pages of 32 events, 64 kept in memory: 540 events, 17 pages, come
	// from the store.
	fresh := c.AddNode(clusterConfig{hub: hub.Config{Recent: 64, PageSize: 32}})
	d := wstest.NewDevice("far behind", c.token(owner), roomID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sctx, scancel := context.WithCancel(ctx)
	go func() {
		for !d.CaughtUp(want) && sctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		scancel()
	}()
	d.Session(sctx, fresh.URL)
	require.NoError(t, ctx.Err(), "the device did not catch up")
	d.Check(t, want)
	// The room's recent events (1 read), then 17 pages, 8 at a time (3).
	assert.LessOrEqual(t, fresh.Hub.Stats.StoreReads.Load(), int64(4), "pages are read ahead")
}

// TestWSStuckDeviceIsDisconnected: a device whose socket takes nothing
// more (its reader stopped, its network gone without a FIN) is
// disconnected once a write has waited WriteTimeout, while the other
// devices of the room are served.
func TestWSStuckDeviceIsDisconnected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cc *clusterConfig) {
		cc.rt.PingEvery, cc.rt.WriteTimeout = 5*time.Minute, 300*time.Millisecond
		// A queue big enough that the socket fills before it does.
		cc.hub = hub.Config{QueueFrames: 10000, QueueBytes: 64 << 20}
	})
	n := c.Nodes[0]
	roomID := c.wsRoom("Stuck")
	by := newBystander(c, roomID)

	// A socket with small buffers, that is never read once subscribed.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := "ws" + strings.TrimPrefix(n.URL, "http") + "/api/v1/ws?token=" + c.token(owner)
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext},
	}})
	require.NoError(t, err)
	defer conn.CloseNow()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","room":"`+roomID+`","after":0}`)))
	for {
		_, data, err := conn.Read(ctx)
		require.NoError(t, err)
		if strings.Contains(string(data), `"subscribed"`) {
			break
		}
	}
	sessions := n.Hub.Stats.Sessions.Load()

	body := strings.Repeat("a long message for a device that reads no more ", 250)[:room.MaxBody]
	deadline := time.Now().Add(60 * time.Second)
	for n.Hub.Stats.Sessions.Load() == sessions {
		require.True(t, time.Now().Before(deadline), "the stuck device was never disconnected")
		require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": body}, nil))
	}
	by.served(t, "after the stuck device")
}

// TestWSLostBroadcastIsRepaired: an event whose broker message never
// arrives, with no later event to show the gap (the last write of the
// day, written by an instance whose publication was lost), still reaches
// the devices of another instance: each instance compares the heads of
// the rooms it follows with the store every HeadCheck.
func TestWSLostBroadcastIsRepaired(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, func(cc *clusterConfig) { cc.hub = hub.Config{HeadCheck: 200 * time.Millisecond} })
	roomID := c.wsRoom("Lost broadcast")
	watcher := c.dial(c.Nodes[0], staffW)
	watcher.subscribed(roomID, 0)

	silent := c.AddNode(clusterConfig{})
	silent.Svc.Committed = func(room.Event) {} // commits, publishes nothing
	var msg struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(silent, owner, "POST", "/rooms/"+roomID+"/messages", map[string]any{"body": "never announced"}, &msg))
	fs := watcher.until(5*time.Second, "the unannounced message", func(f frame) bool {
		return f.Type == "event" && strings.Contains(string(f.raw), msg.ID)
	})
	assert.NotEmpty(t, fs)
	// The repair is counted after its events are queued: the device may
	// have them a moment before the count.
	assert.Eventually(t, func() bool { return c.Nodes[0].Hub.Stats.GapsRepaired.Load() > 0 }, 5*time.Second, 5*time.Millisecond)
}
