package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"dealroom"
	"dealroom/hub"
	"dealroom/room"
)

// wsOps maps the websocket commands to the REST routes that carry them
// out: a command is dispatched through the same router, middleware and
// handlers as the request it stands for, so both follow one set of rules.
// idField names the data field that holds the id in the route's path.
var wsOps = map[string]struct {
	method, path, idField string
}{
	"room.update":    {http.MethodPatch, "", ""},
	"member.add":     {http.MethodPost, "/members", ""},
	"member.update":  {http.MethodPatch, "/members/", "user_id"},
	"member.remove":  {http.MethodDelete, "/members/", "user_id"},
	"task.create":    {http.MethodPost, "/tasks", ""},
	"task.update":    {http.MethodPatch, "/tasks/", "id"},
	"task.delete":    {http.MethodDelete, "/tasks/", "id"},
	"message.post":   {http.MethodPost, "/messages", ""},
	"message.edit":   {http.MethodPatch, "/messages/", "id"},
	"message.delete": {http.MethodDelete, "/messages/", "id"},
	"invite.create":  {http.MethodPost, "/invites", ""},
	"invite.revoke":  {http.MethodDelete, "/invites/", "id"},
}

type preauthKey struct{}

// command carries out a command frame through the REST router and returns
// its answer frame.
func (s *Server) command(ctx context.Context, a dealroom.Actor, f hub.Frame) []byte {
	op, ok := wsOps[f.Op]
	if !ok {
		return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid("op", "unknown op %q", dealroom.Clip(f.Op)))
	}
	path := "/api/v1/rooms/" + url.PathEscape(f.Room) + op.path
	body := f.Data
	if op.idField != "" {
		var fields map[string]json.RawMessage
		if len(body) > 0 {
			if err := json.Unmarshal(body, &fields); err != nil {
				return hub.ErrorFrame(f.ID, f.Room, dealroom.Errorf(dealroom.EBADREQUEST, "data is not a JSON object"))
			}
		}
		var id string
		if raw, ok := fields[op.idField]; !ok || json.Unmarshal(raw, &id) != nil || id == "" {
			return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid(op.idField, "%s needs data.%s", f.Op, op.idField))
		}
		delete(fields, op.idField)
		path += url.PathEscape(id)
		body, _ = json.Marshal(fields)
	}
	if op.method == http.MethodDelete {
		body = nil
	} else if len(body) == 0 {
		body = []byte("{}")
	}
	var out room.Outcome
	rctx := context.WithValue(room.WithOutcome(ctx, &out), preauthKey{}, a)
	req, err := http.NewRequestWithContext(rctx, op.method, path, bytes.NewReader(body))
	if err != nil {
		return hub.ErrorFrame(f.ID, f.Room, dealroom.Invalid("room", "room is not a room id"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", f.ID)
	req.RemoteAddr = "websocket"
	rec := &recorder{header: http.Header{}}
	s.echo.ServeHTTP(rec, req)
	if rec.status >= 400 {
		var eb errorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) != nil || eb.Error.Code == "" {
			eb.Error = errorDetail{Code: "internal", Message: "internal error"}
		}
		return errorFrame(f.ID, f.Room, eb.Error)
	}
	var data json.RawMessage
	if b := bytes.TrimSpace(rec.body.Bytes()); len(b) > 0 {
		data = b
	}
	seq := out.Seq
	if seq == 0 {
		// The command changed nothing: its ack carries the room's head,
		// so that "ack seq" always means "what the command did is in
		// the timeline up to seq".
		if r, err := s.svc.Store.Room(ctx, f.Room); err == nil {
			seq = r.Head
		}
	}
	return hub.AckFrame(f.ID, seq, data)
}

func errorFrame(id, roomID string, e errorDetail) []byte {
	b, _ := json.Marshal(struct {
		Type  string      `json:"type"`
		ID    string      `json:"id,omitempty"`
		Room  string      `json:"room,omitempty"`
		Error errorDetail `json:"error"`
	}{"error", id, roomID, e})
	return b
}

// recorder is the response writer of a dispatched command.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// preauthenticated returns the actor of a dispatched command.
func preauthenticated(r *http.Request) (dealroom.Actor, bool) {
	a, ok := r.Context().Value(preauthKey{}).(dealroom.Actor)
	return a, ok
}
