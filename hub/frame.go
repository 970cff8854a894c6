package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"dealroom"
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
}

// Frame types.
const (
	Subscribe   = "subscribe"
	Unsubscribe = "unsubscribe"
	Command     = "command"
	Presence    = "presence"
	Ping        = "ping"
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

func decodeFrame(b []byte) (Frame, error) {
	var raw struct {
		Type       *string         `json:"type"`
		Room       *string         `json:"room"`
		After      json.RawMessage `json:"after"`
		ID         *string         `json:"id"`
		Op         *string         `json:"op"`
		Data       json.RawMessage `json:"data"`
		State      *string         `json:"state"`
		TaskID     *string         `json:"task_id"`
		Visibility *string         `json:"visibility"`
	}
	// Invalid UTF-8, or an escaped lone surrogate, would be decoded as
	// U+FFFD: what the client sent would not be what is stored.
	if err := dealroom.CheckJSONText("the frame", b); err != nil {
		return Frame{}, err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Frame{}, dealroom.Errorf(dealroom.EBADREQUEST, "a frame is a JSON object")
	}
	if err := checkKeys(b); err != nil {
		return Frame{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Frame{}, dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: %s", describe(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Frame{}, dealroom.Errorf(dealroom.EBADREQUEST, "unexpected data after the frame's JSON object")
	}
	var f Frame
	if raw.ID != nil {
		if !dealroom.ValidKey(*raw.ID) {
			return f, dealroom.Invalid("id", "id is %s (it is the command's idempotency key)", dealroom.KeyRule())
		}
		f.ID = *raw.ID
	}
	if raw.Type == nil {
		return f, dealroom.Invalid("type", "a frame needs a type: subscribe, unsubscribe, command, presence or ping")
	}
	f.Type = *raw.Type
	needRoom := true
	switch f.Type {
	case Subscribe:
		if a := string(raw.After); a != "" && a != "null" {
			if c := a[0]; c == 't' || c == 'f' || c == '{' || c == '[' {
				return f, dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: after has the wrong type")
			}
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil || n < 0 {
				return f, dealroom.Invalid("after", "after is a seq: a whole number, 0 or more")
			}
			f.After = n
		}
	case Unsubscribe:
	case Command:
		if f.ID == "" {
			return f, dealroom.Invalid("id", "a command needs an id (the client's operation id)")
		}
		if raw.Op == nil || *raw.Op == "" || len(*raw.Op) > 64 {
			return f, dealroom.Invalid("op", "a command needs an op, such as task.create")
		}
		f.Op = *raw.Op
		if d := bytes.TrimSpace(raw.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
			if d[0] != '{' {
				return f, dealroom.Invalid("data", "a command's data is a JSON object")
			}
			f.Data = d
		}
	case Presence:
		st, ok := "", false
		if raw.State != nil {
			var s presence.State
			s, ok = presence.ParseState(*raw.State)
			st = string(s)
		}
		if !ok {
			return f, dealroom.Invalid("state", "state is viewing, typing or idle")
		}
		f.State = presence.State(st)
		if raw.TaskID != nil {
			if len(*raw.TaskID) > maxRoomID {
				return f, dealroom.Invalid("task_id", "task_id is too long")
			}
			f.TaskID = *raw.TaskID
		}
		if raw.Visibility != nil {
			v, err := dealroom.ParseVisibility("visibility", dealroom.Visibility(*raw.Visibility), dealroom.Shared)
			if err != nil {
				return f, err
			}
			f.Visibility = v
		}
	case Ping:
		needRoom = false
	default:
		return f, dealroom.Invalid("type", "unknown frame type %q: subscribe, unsubscribe, command, presence or ping", dealroom.Clip(f.Type))
	}
	if needRoom {
		if raw.Room == nil || *raw.Room == "" {
			return f, dealroom.Invalid("room", "a %s frame names a room", f.Type)
		}
		if len(*raw.Room) > maxRoomID {
			return f, dealroom.Invalid("room", "room is not a room id")
		}
		f.Room = *raw.Room
	}
	// Fields that do not belong to the type are refused rather than
	// ignored: a client that sends them misunderstands the protocol.
	extra := map[string]bool{
		"after":      raw.After != nil && f.Type != Subscribe,
		"op":         raw.Op != nil && f.Type != Command,
		"data":       raw.Data != nil && f.Type != Command,
		"state":      raw.State != nil && f.Type != Presence,
		"task_id":    raw.TaskID != nil && f.Type != Presence,
		"visibility": raw.Visibility != nil && f.Type != Presence,
		"room":       raw.Room != nil && f.Type == Ping,
	}
	for _, k := range []string{"after", "op", "data", "state", "task_id", "visibility", "room"} {
		if extra[k] {
			return f, dealroom.Invalid(k, "a %s frame has no %s", f.Type, k)
		}
	}
	return f, nil
}

// frameKeys are the fields a client frame may have, spelled exactly.
var frameKeys = map[string]bool{"type": true, "room": true, "after": true, "id": true, "op": true,
	"data": true, "state": true, "task_id": true, "visibility": true}

// checkKeys refuses field names the protocol does not define (encoding/json
// would match "Type" to "type") and fields given twice.
func checkKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: %s", describe(err))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: %s", describe(err))
		}
		key, _ := tok.(string)
		if !frameKeys[key] {
			return dealroom.Errorf(dealroom.EBADREQUEST, "unknown field %q", dealroom.Clip(key))
		}
		if seen[key] {
			return dealroom.Errorf(dealroom.EBADREQUEST, "field %q is given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return dealroom.Errorf(dealroom.EBADREQUEST, "the frame is not valid: %s", describe(err))
		}
	}
	return nil
}

func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s has the wrong type (%s)", typ.Field, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends too early"
	}
	return dealroom.Clip(err.Error())
}

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
	e := struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}{Code: dealroom.WireCode(dealroom.ErrorCode(err)), Message: dealroom.ErrorMessage(err)}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e.Code, e.Message = dealroom.EUNAVAILABLE, "the server is busy or shutting down; retry"
	}
	var de *dealroom.Error
	if errors.As(err, &de) {
		e.Field = de.Field
	}
	return mustJSON(struct {
		Type  string `json:"type"`
		ID    string `json:"id,omitempty"`
		Room  string `json:"room,omitempty"`
		Error any    `json:"error"`
	}{"error", id, room, e})
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
