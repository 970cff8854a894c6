// Package wstest has test devices for the websocket protocol: clients that
// keep what they processed per room, resubscribe with their last seq after
// every reconnect as real clients do, and check in the end that they saw
// exactly what their person may see. Tests of several packages use it.
package wstest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
)

// Device is a test client that keeps, per room, what it processed, and
// resubscribes with its last seq after every reconnect, as a real client
// does.
type Device struct {
	Name  string
	Token string
	Rooms []string

	mu     sync.Mutex
	last   map[string]int64
	events map[string][]json.RawMessage
	heads  map[string]int64 // head of the latest "subscribed"
	errs   []string
	// trace is, per room, what happened besides events arriving one after
	// the other: subscriptions (with the seq they asked after), the
	// "subscribed" and "resync" frames, and jumps over seqs. Check shows
	// it when the device did not end with what it should have.
	trace map[string][]string
}

// NewDevice returns a device that signs in with token.
func NewDevice(name, token string, rooms ...string) *Device {
	return &Device{Name: name, Token: token, Rooms: rooms, last: map[string]int64{},
		events: map[string][]json.RawMessage{}, heads: map[string]int64{}, trace: map[string][]string{}}
}

func (d *Device) fail(format string, args ...any) {
	d.mu.Lock()
	d.errs = append(d.errs, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

// Handle processes one server frame; it returns the room to resubscribe
// when the frame asks for it.
func (d *Device) Handle(data []byte) (resync string) {
	var f struct {
		Type  string          `json:"type"`
		Room  string          `json:"room"`
		Head  int64           `json:"head"`
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		d.fail("not JSON: %q", data)
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch f.Type {
	case "event":
		var ev struct {
			Seq    int64  `json:"seq"`
			RoomID string `json:"room_id"`
		}
		if err := json.Unmarshal(f.Event, &ev); err != nil || ev.RoomID != f.Room {
			d.errs = append(d.errs, fmt.Sprintf("bad event frame %s", data))
			return ""
		}
		if ev.Seq <= d.last[f.Room] {
			d.errs = append(d.errs, fmt.Sprintf("%s: seq %d after %d (doubled or out of order)", f.Room, ev.Seq, d.last[f.Room]))
			return ""
		}
		if last := d.last[f.Room]; ev.Seq != last+1 {
			// Fine when the seqs between are events this person may not
			// see: Check tells, against what they may see.
			d.trace[f.Room] = append(d.trace[f.Room], fmt.Sprintf("jump %d→%d", last, ev.Seq))
		}
		d.last[f.Room] = ev.Seq
		d.events[f.Room] = append(d.events[f.Room], f.Event)
	case "subscribed":
		d.heads[f.Room] = f.Head
		d.trace[f.Room] = append(d.trace[f.Room], fmt.Sprintf("subscribed head %d (last %d)", f.Head, d.last[f.Room]))
	case "resync":
		d.trace[f.Room] = append(d.trace[f.Room], fmt.Sprintf("resync (last %d)", d.last[f.Room]))
		return f.Room
	case "error":
		d.errs = append(d.errs, fmt.Sprintf("error frame: %s", data))
	}
	return ""
}

// SubscribeAll subscribes to every room of the device.
func (d *Device) SubscribeAll(ctx context.Context, conn *websocket.Conn) error {
	for _, r := range d.Rooms {
		if err := d.Subscribe(ctx, conn, r); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe subscribes to a room after the last seq processed.
func (d *Device) Subscribe(ctx context.Context, conn *websocket.Conn, r string) error {
	d.mu.Lock()
	after := d.last[r]
	d.trace[r] = append(d.trace[r], fmt.Sprintf("subscribe after %d", after))
	d.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"type": "subscribe", "room": r, "after": after})
	return conn.Write(ctx, websocket.MessageText, b)
}

// Session connects once to the server at base (http://host:port) and
// processes frames until ctx ends or the connection drops.
func (d *Device) Session(ctx context.Context, base string) error {
	url := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/ws?token=" + d.Token
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 22)
	if err := d.SubscribeAll(ctx, conn); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.mu.Lock()
				for _, r := range d.Rooms {
					d.trace[r] = append(d.trace[r], fmt.Sprintf("connection lost (last %d): %v", d.last[r], err))
				}
				d.mu.Unlock()
			}
			return err
		}
		if r := d.Handle(data); r != "" {
			if err := d.Subscribe(ctx, conn, r); err != nil {
				return err
			}
		}
	}
}

// CaughtUp tells whether the device has processed everything it may see.
func (d *Device) CaughtUp(want map[string][]json.RawMessage) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.Rooms {
		w := want[r]
		if len(w) > 0 && d.last[r] < SeqOf(w[len(w)-1]) {
			return false
		}
	}
	return true
}

// SeqOf returns an event's seq.
func SeqOf(ev json.RawMessage) int64 {
	var e struct {
		Seq int64 `json:"seq"`
	}
	json.Unmarshal(ev, &e)
	return e.Seq
}

// Check compares what the device processed with want, its person's
// timeline per room.
func (d *Device) Check(t testing.TB, want map[string][]json.RawMessage) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.errs {
		t.Errorf("%s: %s", d.Name, e)
	}
	for _, r := range d.Rooms {
		got := d.events[r]
		w := want[r]
		if !assert.Equal(t, len(w), len(got), "%s in %s: number of events; %s", d.Name, r, d.explain(r, w)) {
			continue
		}
		for i := range w {
			if !assert.JSONEq(t, string(w[i]), string(got[i]), "%s in %s: event %d", d.Name, r, i) {
				break
			}
		}
	}
}

// explain tells how what the device processed in room r differs from w
// by seq (missing and unexpected seqs, in ranges), with its trace; d.mu is
// held.
func (d *Device) explain(r string, w []json.RawMessage) string {
	got := map[int64]bool{}
	for _, ev := range d.events[r] {
		got[SeqOf(ev)] = true
	}
	wanted := map[int64]bool{}
	var missing []int64
	for _, ev := range w {
		s := SeqOf(ev)
		wanted[s] = true
		if !got[s] {
			missing = append(missing, s)
		}
	}
	var extra []int64
	for _, ev := range d.events[r] {
		if s := SeqOf(ev); !wanted[s] {
			extra = append(extra, s)
		}
	}
	return fmt.Sprintf("missing seqs %s, unexpected seqs %s; trace: %s",
		ranges(missing), ranges(extra), strings.Join(d.trace[r], ", "))
}

// ranges writes ascending seqs as ranges: "3-7 9".
func ranges(seqs []int64) string {
	if len(seqs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if i == j {
			fmt.Fprint(&b, seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// SetLast sets the last seq processed in a room, as a device that was
// away.
func (d *Device) SetLast(room string, seq int64) {
	d.mu.Lock()
	d.last[room] = seq
	d.mu.Unlock()
}

// Events returns the events the device processed in a room.
func (d *Device) Events(room string) []json.RawMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]json.RawMessage(nil), d.events[room]...)
}
