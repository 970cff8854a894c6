package hub

import (
	"context"
	"encoding/json"
	"time"

	"dealroom/broker"
	"dealroom/room"
)

// Read markers (room/read.go) reach the room's devices like presence: not
// as events of the room's log but as frames of their own, published to
// every instance and pushed to the live subscriptions of the room. A
// lost one is repaired by GET /rooms/{room}/reads, which the web app
// reads when it opens a room.

// readFrame is the frame a moved marker makes.
type readFrame struct {
	Type   string    `json:"type"`
	Room   string    `json:"room"`
	UserID string    `json:"user_id"`
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
}

// ReadMoved publishes a marker that moved to every instance, whose
// devices in the room get it as a "read" frame; it is the room.Service's
// ReadMoved.
func (h *Hub) ReadMoved(r room.RoomRead) {
	data := mustJSON(readFrame{Type: "read", Room: r.Room, UserID: r.UserID, Seq: r.Seq, At: r.At})
	ctx, cancel := context.WithTimeout(h.ctx, time.Second)
	defer cancel()
	if err := h.broker.Publish(ctx, broker.Message{Room: r.Room, Kind: broker.Read, Origin: h.cfg.Instance, Data: data}); err != nil {
		h.log.Debug("cannot publish a read marker", "room", r.Room, "err", err)
	}
}

// receiveRead hands a read frame to the room's live subscriptions. Each
// queue keeps one read frame per person and room: a newer one takes the
// place of one not yet sent, so a burst of reads costs a slow device one
// frame. Markers only move forward, and two of one person, published
// concurrently, may arrive out of order: one not past the highest passed
// on is dropped, so that it cannot take the place of the newer one.
func (h *Hub) receiveRead(m broker.Message) {
	f := h.lookup(m.Room)
	if f == nil {
		return
	}
	var fr readFrame
	if err := json.Unmarshal(m.Data, &fr); err != nil || fr.Type != "read" || fr.Room != m.Room || fr.UserID == "" {
		h.log.Warn("ignoring a malformed read message", "room", m.Room, "origin", m.Origin)
		return
	}
	slot := m.Room + "\x00read\x00" + fr.UserID
	f.mu.Lock()
	defer f.mu.Unlock()
	if fr.Seq <= f.reads[fr.UserID] {
		return
	}
	if f.reads == nil {
		f.reads = map[string]int64{}
	}
	f.reads[fr.UserID] = fr.Seq
	for s := range f.live {
		if !s.sess.q.pushEphemeral(slot, m.Data) {
			h.Stats.Dropped.Add(1)
		}
	}
}
