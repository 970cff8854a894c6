package hub

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"dealroom"
	"dealroom/internal/strictjson"
	"dealroom/presence"
)

// Frame is a client's frame, decoded and checked.
type Frame struct {
	Type string `json:"type"`
	Room string `json:"room"`
	// After is the last seq the client processed (subscribe).
	After int64 `json:"after"`
	// ID, Op and Data make a command.
	ID   string          `json:"id"`
	Op   string          `json:"op"`
	Data json.RawMessage `json:"data"`
	// State, TaskID and Visibility make a presence update; Visibility
	// internal says the device works on something customers must not
	// learn of (an internal note), whatever the task.
	State      presence.State      `json:"state"`
	TaskID     string              `json:"task_id"`
	Visibility dealroom.Visibility `json:"visibility"`
	// Seq is the highest seq the person has seen in the room (read).
	Seq int64 `json:"seq"`
}

// Frame types.
const (
	Subscribe   = "subscribe"
	Unsubscribe = "unsubscribe"
	Command     = "command"
	Presence    = "presence"
	Ping        = "ping"
	Read        = "read"
)

// Limits of a client frame's fields.
const (
	maxRoomID = 64
	// maxEcho bounds the id and room an error frame echoes from a frame
	// that was refused: enough for any id a client could mean, not a way
	// to make the server send back a whole frame.
	maxEcho = 1024
)

// DecodeFrame reads one client frame. Errors are *dealroom.Error with code
// bad_request or invalid; the returned Frame then carries the frame's id
// and room as far as they could be read (even ones that break the rules),
// so that the error frame can name the request it answers.
func DecodeFrame(b []byte) (Frame, error) {
	f, err := decodeFrame(b)
	if err != nil {
		f.ID, f.Room = salvage(b)
	}
	return f, err
}

// salvage reads the id and room of a frame that was refused, leniently
// (other fields may be anything) but by their exact names: strings only,
// up to maxEcho bytes.
func salvage(b []byte) (id, roomID string) {
	if !utf8.Valid(b) {
		return "", ""
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", ""
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			break
		}
		var s string
		if len(v) == 0 || v[0] != '"' || dealroom.CheckJSONText("the value", v) != nil || json.Unmarshal(v, &s) != nil || len(s) > maxEcho {
			continue // not a string, or not one to send back (a lone surrogate escape)
		}
		switch tok {
		case "id":
			id = s
		case "room":
			roomID = s
		}
	}
	return id, roomID
}

// rawFrame is a client frame as sent: every field any frame type has,
// nil when left out.
type rawFrame struct {
	Type       *string         `json:"type"`
	Room       *string         `json:"room"`
	After      json.RawMessage `json:"after"`
	ID         *string         `json:"id"`
	Op         *string         `json:"op"`
	Data       json.RawMessage `json:"data"`
	State      *string         `json:"state"`
	TaskID     *string         `json:"task_id"`
	Visibility *string         `json:"visibility"`
	Seq        json.RawMessage `json:"seq"`
}

// decodeFrame reads a frame: its envelope (id, type), the fields of its
// type, its room, and no field of another type.
func decodeFrame(b []byte) (Frame, error) {
	var raw rawFrame
	if err := frameInput.Decode(b, &raw); err != nil {
		return Frame{}, err
	}
	var f Frame
	if raw.ID != nil {
		if !dealroom.ValidKey(*raw.ID) {
			return f, dealroom.Invalid("id", "id is %s (it is the command's idempotency key)", dealroom.KeyRule())
		}
		f.ID = *raw.ID
	}
	if raw.Type == nil {
		return f, dealroom.Invalid("type", "a frame needs a type: subscribe, unsubscribe, command, presence, read or ping")
	}
	f.Type = *raw.Type
	var err error
	switch f.Type {
	case Subscribe:
		err = f.readSubscribe(&raw)
	case Unsubscribe, Ping:
	case Command:
		err = f.readCommand(&raw)
	case Presence:
		err = f.readPresence(&raw)
	case Read:
		f.Seq, err = readSeq("seq", raw.Seq, true)
	default:
		err = dealroom.Invalid("type", "unknown frame type %q: subscribe, unsubscribe, command, presence, read or ping", dealroom.Clip(f.Type))
	}
	if err == nil && f.Type != Ping {
		err = f.readRoom(&raw)
	}
	if err == nil {
		err = f.refuseOthers(&raw)
	}
	return f, err
}

// readSubscribe reads the seq a subscription starts after.
func (f *Frame) readSubscribe(raw *rawFrame) (err error) {
	f.After, err = readSeq("after", raw.After, false)
	return err
}

// readSeq reads a seq field (0 when absent, unless required).
func readSeq(name string, raw json.RawMessage, required bool) (int64, error) {
	a := string(raw)
	if a == "" || a == "null" {
		if required {
			return 0, dealroom.Invalid(name, "a read frame needs %s: the highest seq of the room seen", name)
		}
		return 0, nil
	}
	if c := a[0]; c == 't' || c == 'f' || c == '{' || c == '[' {
		return 0, dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: %s has the wrong type", name)
	}
	n, err := strconv.ParseInt(a, 10, 64)
	if err != nil || n < 0 {
		return 0, dealroom.Invalid(name, "%s is a seq: a whole number, 0 or more", name)
	}
	return n, nil
}

// readCommand reads a command's id, op and data.
func (f *Frame) readCommand(raw *rawFrame) error {
	if f.ID == "" {
		return dealroom.Invalid("id", "a command needs an id (the client's operation id)")
	}
	if raw.Op == nil || *raw.Op == "" || len(*raw.Op) > 64 {
		return dealroom.Invalid("op", "a command needs an op, such as task.create")
	}
	f.Op = *raw.Op
	if d := bytes.TrimSpace(raw.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return dealroom.Invalid("data", "a command's data is a JSON object")
		}
		f.Data = d
	}
	return nil
}

// readPresence reads a presence frame's state, task and visibility.
func (f *Frame) readPresence(raw *rawFrame) error {
	st, ok := presence.State(""), false
	if raw.State != nil {
		st, ok = presence.ParseState(*raw.State)
	}
	if !ok {
		return dealroom.Invalid("state", "state is viewing, typing or idle")
	}
	f.State = st
	if raw.TaskID != nil {
		if len(*raw.TaskID) > maxRoomID {
			return dealroom.Invalid("task_id", "task_id is too long")
		}
		f.TaskID = *raw.TaskID
	}
	if raw.Visibility != nil {
		v, err := dealroom.ParseVisibility("visibility", dealroom.Visibility(*raw.Visibility), dealroom.Shared)
		if err != nil {
			return err
		}
		f.Visibility = v
	}
	return nil
}

// readRoom reads the room every frame but a ping names.
func (f *Frame) readRoom(raw *rawFrame) error {
	if raw.Room == nil || *raw.Room == "" {
		return dealroom.Invalid("room", "a %s frame names a room", f.Type)
	}
	if len(*raw.Room) > maxRoomID {
		return dealroom.Invalid("room", "room is not a room id")
	}
	f.Room = *raw.Room
	return nil
}

// refuseOthers refuses the fields that do not belong to the frame's type
// rather than ignoring them: a client that sends them misunderstands the
// protocol.
func (f *Frame) refuseOthers(raw *rawFrame) error {
	extra := []struct {
		name  string
		given bool
	}{
		{"after", raw.After != nil && f.Type != Subscribe},
		{"op", raw.Op != nil && f.Type != Command},
		{"data", raw.Data != nil && f.Type != Command},
		{"state", raw.State != nil && f.Type != Presence},
		{"task_id", raw.TaskID != nil && f.Type != Presence},
		{"visibility", raw.Visibility != nil && f.Type != Presence},
		{"seq", raw.Seq != nil && f.Type != Read},
		{"room", raw.Room != nil && f.Type == Ping},
	}
	for _, x := range extra {
		if x.given {
			return dealroom.Invalid(x.name, "a %s frame has no %s", f.Type, x.name)
		}
	}
	return nil
}

// frameInput reads client frames: strictly, as request bodies are read
// (internal/strictjson), and a fault is the frame's as a whole.
var frameInput = strictjson.Input{What: "the frame", Whole: true, Exact: true}

// Server frames. They are built by hand around pre-encoded parts, so an
// event is encoded once per visibility, never once per session.

func eventFrame(room string, event []byte) []byte {
	b := make([]byte, 0, len(event)+len(room)+40)
	b = append(b, `{"type":"event","room":`...)
	b = appendString(b, room)
	b = append(b, `,"event":`...)
	b = append(b, event...)
	return append(b, '}')
}

func subscribedFrame(room string, head int64) []byte {
	b := append([]byte(`{"type":"subscribed","room":`), appendString(nil, room)...)
	b = append(b, `,"head":`...)
	b = strconv.AppendInt(b, head, 10)
	return append(b, '}')
}

func resyncFrame(room, reason string) []byte {
	return mustJSON(map[string]string{"type": "resync", "room": room, "reason": reason})
}

func unsubscribedFrame(room, reason string) []byte {
	return mustJSON(map[string]string{"type": "unsubscribed", "room": room, "reason": reason})
}

func presenceFrame(room string, members []presence.Member) []byte {
	return mustJSON(struct {
		Type    string            `json:"type"`
		Room    string            `json:"room"`
		Members []presence.Member `json:"members"`
	}{"presence", room, members})
}

// AckFrame answers a command that was applied (or replayed): seq is the
// event's or, for a command that changed nothing, the room's head when it
// was answered (what the command did is in the timeline up to seq), data
// the result as the REST route returns it.
func AckFrame(id string, seq int64, data json.RawMessage) []byte {
	return mustJSON(struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Seq  int64           `json:"seq,omitempty"`
		Data json.RawMessage `json:"data,omitempty"`
	}{"ack", id, seq, data})
}

// ErrorFrame answers a frame that failed; id is the command's, if any,
// room the frame's, if any.
func ErrorFrame(id, room string, err error) []byte {
	return mustJSON(struct {
		Type  string          `json:"type"`
		ID    string          `json:"id,omitempty"`
		Room  string          `json:"room,omitempty"`
		Error dealroom.Public `json:"error"`
	}{"error", id, room, dealroom.PublicOf(err)})
}

// PongFrame answers a client's ping frame.
var PongFrame = []byte(`{"type":"pong"}`)

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hub: cannot encode frame: " + err.Error())
	}
	return b
}
