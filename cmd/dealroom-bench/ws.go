package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// clock is the bench's monotonic clock: nanoseconds since it started. The
// send time written into a message and the arrival time of its event are
// read from it, in the same process, so their difference is exact.
type clock struct{ start time.Time }

func (c clock) now() time.Duration { return time.Since(c.start) }

// window is the part of a run whose writes are measured (warm-up before,
// drain after); both ends are on the bench's clock.
type window struct {
	from, to atomic.Int64
}

func (w *window) contains(t time.Duration) bool {
	return int64(t) >= w.from.Load() && int64(t) < w.to.Load()
}

// wsURL turns http://host:port into the websocket endpoint.
func wsURL(base string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/api/v1/ws"
}

func dial(ctx context.Context, hc *http.Client, base, token string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsURL(base), &websocket.DialOptions{
		HTTPClient: hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		return nil, err
	}
	// Presence frames of a big room list every device in it.
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

// subscriber is one device following one room. Its reader goroutine owns
// the tracker and the samples; others read them after done is closed.
type subscriber struct {
	room *benchRoom
	conn *websocket.Conn
	clk  clock
	win  *window
	// cf: the server is the reference on Centrifuge (-target centrifuge),
	// whose publications the bench numbers from the write number and the
	// count of rooms.
	cf    bool
	rooms int

	seq    *seqTracker
	delays []int64 // end-to-end delays of measured writes, ns
	sentAt []int64 // their send times on the bench clock, ns
	// Counters of frames other than events.
	presence, resyncs, errFrames, other int64
	lastError                           string

	subscribedAt atomic.Int64  // bench clock at the first "subscribed"; 0 before
	firstEventAt atomic.Int64  // bench clock at the first event frame; 0 before
	eventBytes   int64         // bytes of event frames
	contiguous   atomic.Int64  // seq.Contiguous, for the drain wait
	lastPresence *atomic.Int64 // shared: bench clock of the latest presence frame
	done         chan struct{}
	readErr      error
}

func (s *subscriber) subscribe(ctx context.Context, after int64) error {
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "room": s.room.id, "after": after})
	if s.cf {
		b = cfSubscribeFrame(s.room.id)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.conn.Write(wctx, websocket.MessageText, b)
}

// read processes frames until the connection ends.
func (s *subscriber) read(ctx context.Context) {
	defer close(s.done)
	for {
		_, data, err := s.conn.Read(ctx)
		if err != nil {
			s.readErr = err
			return
		}
		now := s.clk.now()
		if s.cf {
			if err := s.readCentrifuge(ctx, data, now); err != nil {
				s.readErr = err
				return
			}
			continue
		}
		if ev, ok := parseEvent(data); ok {
			s.event(ev, now, len(data))
			continue
		}
		switch frameType(data) {
		case "subscribed":
			s.subscribedAt.CompareAndSwap(0, int64(now))
		case "presence":
			s.presence++
			s.lastPresence.Store(int64(now))
		case "resync":
			// As a client should: subscribe again from the last seq
			// processed in order.
			s.resyncs++
			if err := s.subscribe(ctx, s.seq.Contiguous()); err != nil {
				s.readErr = err
				return
			}
		case "error", "unsubscribed":
			s.errFrames++
			s.lastError = string(data[:min(len(data), 300)])
		default:
			s.other++
		}
	}
}

// event records the arrival of an event frame of size bytes.
func (s *subscriber) event(ev eventInfo, now time.Duration, size int) {
	if ev.room != s.room.id {
		s.other++
		return
	}
	s.firstEventAt.CompareAndSwap(0, int64(now))
	s.eventBytes += int64(size)
	if s.seq.add(ev.seq) && ev.marked && s.win.contains(ev.sent) {
		s.delays = append(s.delays, int64(now-ev.sent))
		s.sentAt = append(s.sentAt, int64(ev.sent))
	}
	s.contiguous.Store(s.seq.Contiguous())
}

// writer is a user who writes in one room, over REST and, when some writes
// go over the websocket, over a connection of its own.
type writer struct {
	user  string
	token string
	room  *benchRoom
	conn  *websocket.Conn
	cf    bool          // the server is the reference on Centrifuge
	cmdID atomic.Uint32 // Centrifuge: the last command id

	mu      sync.Mutex
	pending map[string]pendingCmd
	done    chan struct{}
	err     error // why the connection ended, once done is closed
}

type pendingCmd struct {
	sent     time.Duration
	measured bool
	result   func(sent time.Duration, measured bool, ackErr string)
}

// command sends a message.post command; result is called with the ack.
func (w *writer) command(ctx context.Context, id, body string, sent time.Duration, measured bool,
	result func(time.Duration, bool, string)) error {
	frame, _ := json.Marshal(map[string]any{"type": "command", "id": id, "room": w.room.id, "op": "message.post",
		"data": map[string]string{"body": body}})
	if w.cf {
		// Centrifuge numbers commands; 1 was the connect command.
		n := w.cmdID.Add(1) + cfConnectID
		id, frame = strconv.FormatUint(uint64(n), 10), cfPostFrame(n, w.room.id, body)
	}
	w.mu.Lock()
	w.pending[id] = pendingCmd{sent: sent, measured: measured, result: result}
	w.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.conn.Write(wctx, websocket.MessageText, frame); err != nil {
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
		return err
	}
	return nil
}

// readAcks matches acks and errors to the pending commands.
func (w *writer) readAcks(ctx context.Context, clk clock) {
	defer close(w.done)
	for {
		_, data, err := w.conn.Read(ctx)
		if err != nil {
			// The detail (addresses, ports) would make every connection a
			// failure kind of its own; the bench's log has it.
			w.failPending("ws connection lost")
			w.err = err
			return
		}
		now := clk.now()
		if !w.cf {
			w.ack(data, now)
			continue
		}
		// Centrifuge sends several replies in a frame, one a line, and
		// pings as empty replies.
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			if string(line) == "{}" {
				w.pong(ctx)
				continue
			}
			w.ack(line, now)
		}
	}
}

// ack matches one answer to its pending command: Dealroom's ack or error
// frame ({"type":"ack","id":"..."}), or Centrifuge's reply ({"id":N} with
// an "error" or not).
func (w *writer) ack(data []byte, now time.Duration) {
	var f struct {
		Type  string          `json:"type"`
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &f) != nil || len(f.ID) == 0 {
		return
	}
	id := strings.Trim(string(f.ID), `"`)
	w.mu.Lock()
	p, ok := w.pending[id]
	delete(w.pending, id)
	w.mu.Unlock()
	if !ok {
		return
	}
	if f.Type == "ack" || (w.cf && f.Error == nil) {
		p.result(now-p.sent, p.measured, "")
		return
	}
	code := ""
	if f.Error != nil {
		code = strings.Trim(string(f.Error.Code), `"`)
	}
	p.result(now-p.sent, p.measured, "ws "+code)
}

// pong answers a Centrifuge ping.
func (w *writer) pong(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = w.conn.Write(wctx, websocket.MessageText, []byte("{}"))
}

func (w *writer) failPending(why string) {
	w.mu.Lock()
	pending := w.pending
	w.pending = map[string]pendingCmd{}
	w.mu.Unlock()
	for _, p := range pending {
		p.result(0, p.measured, why)
	}
}

// waitPending waits until every command is answered, or until the
// deadline.
func (w *writer) waitPending(deadline time.Time) {
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
