package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// The framing of the reference server on Centrifuge (-target centrifuge,
// cmd/dealroom-bench/centrifuge), after Centrifuge's JSON client protocol:
// a command is {"id":N,"connect"|"subscribe"|"rpc":{...}}, its reply
// {"id":N,"connect"|"subscribe"|"rpc"|"error":{...}}, a publication
// {"push":{"channel":C,"pub":{"data":...}}}, and a ping an empty reply {}
// that the client answers with {}. A websocket frame may hold several
// replies, one a line. The rest of the client (dialing with the token in
// the Authorization header, the payload with the send time, its parsing
// and the accounting) is Dealroom's.

// Ids of a connection's first commands.
const (
	cfConnectID   = 1
	cfSubscribeID = 2
)

// cfConnectFrame is the connect command; the upgrade request carried the
// token already.
func cfConnectFrame() []byte {
	return []byte(`{"id":` + strconv.Itoa(cfConnectID) + `,"connect":{}}`)
}

// cfSubscribeFrame connects and subscribes to a room's channel, both in
// one frame: the server handles commands in order.
func cfSubscribeFrame(room string) []byte {
	b, _ := json.Marshal(map[string]any{"id": cfSubscribeID, "subscribe": map[string]string{"channel": room}})
	return append(append(cfConnectFrame(), '\n'), b...)
}

// cfPostFrame is the RPC that posts a message: the reference server
// publishes it to the room's channel and replies.
func cfPostFrame(id uint32, room, body string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "rpc": map[string]any{"method": "message.post",
		"data": map[string]string{"room": room, "body": body}}})
	return b
}

var pushPrefix = []byte(`{"push":{"channel":"`)

// parsePush reads a publication. Centrifuge writes the fields in a fixed
// order, so the fast path scans for the channel and the body's marker, as
// parseEvent does; anything else is decoded as JSON. Nothing numbers a
// publication: its seq is the bench's write number within the room (the
// writes go round the rooms, so write n is the (n/rooms+1)-th of its
// room). Lost and doubled publications are told from it; out of order
// is not a fault here, as concurrent writes may be published in another
// order than they were sent. ok is false for replies that are not
// publications.
func parsePush(frame []byte, rooms int) (ev eventInfo, ok bool) {
	rest, found := bytes.CutPrefix(frame, pushPrefix)
	end := bytes.IndexByte(rest, '"')
	if !found || end < 0 {
		return parsePushJSON(frame, rooms)
	}
	ev.room = string(rest[:end])
	if i := bytes.Index(rest[end:], bodyKey); i >= 0 {
		ev.sent, ev.n, ev.marked = parseMarker(rest[end+i+len(bodyKey):])
	}
	if ev.marked {
		ev.seq = ev.n/int64(rooms) + 1
	}
	return ev, true
}

func parsePushJSON(frame []byte, rooms int) (ev eventInfo, ok bool) {
	var f struct {
		Push *struct {
			Channel string `json:"channel"`
			Pub     *struct {
				Data struct {
					Data struct {
						Body string `json:"body"`
					} `json:"data"`
				} `json:"data"`
			} `json:"pub"`
		} `json:"push"`
	}
	if json.Unmarshal(frame, &f) != nil || f.Push == nil || f.Push.Pub == nil {
		return ev, false
	}
	ev.room = f.Push.Channel
	if b, found := bytes.CutPrefix([]byte(f.Push.Pub.Data.Data.Body), []byte(bodyMarker)); found {
		ev.sent, ev.n, ev.marked = parseMarker(b)
	}
	if ev.marked {
		ev.seq = ev.n/int64(rooms) + 1
	}
	return ev, true
}

// readCentrifuge handles one frame of the reference server: publications,
// the replies to connect and subscribe, and pings.
func (s *subscriber) readCentrifuge(ctx context.Context, data []byte, now time.Duration) error {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if string(line) == "{}" {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := s.conn.Write(wctx, websocket.MessageText, []byte("{}"))
			cancel()
			if err != nil {
				return fmt.Errorf("pong: %w", err)
			}
			continue
		}
		if ev, ok := parsePush(line, s.rooms); ok {
			s.event(ev, now, len(line))
			continue
		}
		var r struct {
			ID    uint32          `json:"id"`
			Error json.RawMessage `json:"error"`
		}
		switch {
		case json.Unmarshal(line, &r) != nil:
			s.other++
		case r.Error != nil:
			s.errFrames++
			s.lastError = string(line[:min(len(line), 300)])
		case r.ID == cfSubscribeID:
			s.subscribedAt.CompareAndSwap(0, int64(now))
		default:
			s.other++
		}
	}
	return nil
}
