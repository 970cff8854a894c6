package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/hub"
	"dealroom/room"
	"dealroom/task"
)

// An operation is one kind of change people make in a room, declared once:
// its websocket command name, its REST route, its input type and the
// room.Service call that carries it out. The REST handler and the
// websocket command are both made from the declaration, so the two paths
// read the same input the same way (one strict decoder), ask the same
// rule (the service), count against the same per-user request budget and
// use the request's idempotency key the same way (Idempotency-Key, or the
// command's id).
//
// The path of a change, either way:
//
//	REST:      route → authenticate, rate limit → op.rest: decode In → call
//	websocket: frame → ws session → op.command: decode In → call
//	call:      room.Service method → Store.Execute(Decide) → event, seq
//	answer:    REST status + JSON of Out; websocket ack {seq, data: Out}
//	then:      Service.Committed → hub → broker → every device
type op[In any, Out written] struct {
	// name is the websocket command ("task.create").
	name string
	// method and path are the REST route, under /api/v1.
	method, path string
	// item is the route's parameter that names the item the op changes
	// ("task" in /rooms/:room/tasks/:task); a command carries it as
	// data.<itemField>.
	item, itemField string
	// status is the REST answer's status (201, 200; 204 has no body).
	status int
	// class is the op's rate-limit class.
	class rateClass
	// call carries the op out.
	call func(ctx context.Context, svc *room.Service, a dealroom.Actor, roomID, item string, in In, key string) (Out, error)
	// show is what the answer shows of Out (nil: Out itself); base is the
	// server's address, for links.
	show func(out Out, base string) any
}

// written is what every change's result tells: where it left the room's
// timeline (room.Written).
type written interface{ Wrote() room.Written }

// rateClass names the budget an operation counts against.
type rateClass int

const (
	// perUser: the per-user request budget (Config.RateLimit) that REST
	// requests and websocket commands share.
	perUser rateClass = iota
)

// operation is an op of any types, as the router and the websocket see it.
type operation interface {
	// register adds the op's REST route to g.
	register(s *Server, g *echo.Group)
	// command carries out a websocket command frame of the op and returns
	// its ack frame, or why it failed.
	command(ctx context.Context, s *Server, a dealroom.Actor, f hub.Frame) ([]byte, error)
	opName() string
	route() (method, path string)
}

// operations are the changes of a room, for both paths.
var operations = []operation{
	op[room.Patch, room.RoomResult]{name: "room.update", method: http.MethodPatch, path: "/rooms/:room", status: http.StatusOK,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, _ string, in room.Patch, key string) (room.RoomResult, error) {
			return svc.UpdateRoom(ctx, a, r, in, key)
		},
		show: func(out room.RoomResult, _ string) any { return out.Perm.Present(out.Room) }},

	op[room.MemberDraft, room.MemberResult]{name: "member.add", method: http.MethodPost, path: "/rooms/:room/members", status: http.StatusCreated,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, _ string, in room.MemberDraft, key string) (room.MemberResult, error) {
			return svc.AddMember(ctx, a, r, in, key)
		}},
	op[room.MemberPatch, room.MemberResult]{name: "member.update", method: http.MethodPatch, path: "/rooms/:room/members/:user",
		item: "user", itemField: "user_id", status: http.StatusOK,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, user string, in room.MemberPatch, key string) (room.MemberResult, error) {
			return svc.UpdateMember(ctx, a, r, user, in, key)
		}},
	op[none, room.Written]{name: "member.remove", method: http.MethodDelete, path: "/rooms/:room/members/:user",
		item: "user", itemField: "user_id", status: http.StatusNoContent,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, user string, _ none, key string) (room.Written, error) {
			return svc.RemoveMember(ctx, a, r, user, key)
		}},

	op[task.Draft, room.TaskResult]{name: "task.create", method: http.MethodPost, path: "/rooms/:room/tasks", status: http.StatusCreated,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, _ string, in task.Draft, key string) (room.TaskResult, error) {
			return svc.CreateTask(ctx, a, r, in, key)
		}},
	op[task.Patch, room.TaskResult]{name: "task.update", method: http.MethodPatch, path: "/rooms/:room/tasks/:task",
		item: "task", itemField: "id", status: http.StatusOK,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, in task.Patch, key string) (room.TaskResult, error) {
			return svc.UpdateTask(ctx, a, r, id, in, key)
		}},
	op[room.DueConfirmation, room.TaskResult]{name: "task.confirm", method: http.MethodPost, path: "/rooms/:room/tasks/:task/confirm-due",
		item: "task", itemField: "id", status: http.StatusOK,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, in room.DueConfirmation, key string) (room.TaskResult, error) {
			return svc.ConfirmDue(ctx, a, r, id, in, key)
		}},
	op[none, room.Written]{name: "task.delete", method: http.MethodDelete, path: "/rooms/:room/tasks/:task",
		item: "task", itemField: "id", status: http.StatusNoContent,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, _ none, key string) (room.Written, error) {
			return svc.DeleteTask(ctx, a, r, id, key)
		}},

	op[room.MessageDraft, room.MessageResult]{name: "message.post", method: http.MethodPost, path: "/rooms/:room/messages", status: http.StatusCreated,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, _ string, in room.MessageDraft, key string) (room.MessageResult, error) {
			return svc.PostMessage(ctx, a, r, in, key)
		}},
	op[room.MessageEdit, room.MessageResult]{name: "message.edit", method: http.MethodPatch, path: "/rooms/:room/messages/:msg",
		item: "msg", itemField: "id", status: http.StatusOK,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, in room.MessageEdit, key string) (room.MessageResult, error) {
			return svc.EditMessage(ctx, a, r, id, in, key)
		}},
	op[none, room.Written]{name: "message.delete", method: http.MethodDelete, path: "/rooms/:room/messages/:msg",
		item: "msg", itemField: "id", status: http.StatusNoContent,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, _ none, key string) (room.Written, error) {
			return svc.DeleteMessage(ctx, a, r, id, key)
		}},

	op[room.InviteDraft, room.NewInvite]{name: "invite.create", method: http.MethodPost, path: "/rooms/:room/invites", status: http.StatusCreated,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, _ string, in room.InviteDraft, key string) (room.NewInvite, error) {
			return svc.CreateInvite(ctx, a, r, in, key)
		},
		show: showInvite},
	op[none, room.Written]{name: "invite.revoke", method: http.MethodDelete, path: "/rooms/:room/invites/:id",
		item: "id", itemField: "id", status: http.StatusNoContent,
		call: func(ctx context.Context, svc *room.Service, a dealroom.Actor, r, id string, _ none, key string) (room.Written, error) {
			return svc.RevokeInvite(ctx, a, r, id, key)
		}},
}

// none is the input of an operation that reads no body (a DELETE).
type none struct{}

// showInvite shows a new invite; its code and link only to the request
// that created it (a retry's answer has neither: the code is not kept).
func showInvite(inv room.NewInvite, base string) any {
	out := map[string]any{"id": inv.ID, "room_id": inv.RoomID, "email": inv.Email, "access": inv.Access,
		"expires_at": inv.ExpiresAt, "created_at": inv.CreatedAt, "created_by": inv.CreatedBy}
	if inv.Code != "" {
		out["code"] = inv.Code
		out["url"] = base + "/invite/" + inv.Code
	}
	return out
}

func (o op[In, Out]) opName() string { return o.name }

func (o op[In, Out]) route() (method, path string) { return o.method, o.path }

func (o op[In, Out]) register(s *Server, g *echo.Group) {
	g.Add(o.method, o.path, func(c echo.Context) error { return o.rest(s, c) })
}

// rest serves the op's REST route.
func (o op[In, Out]) rest(s *Server, c echo.Context) error {
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	var in In
	if o.method != http.MethodDelete {
		if err := s.bind(c, &in); err != nil {
			return err
		}
	}
	var item string
	if o.item != "" {
		item = c.Param(o.item)
	}
	out, err := o.call(c.Request().Context(), s.svc, actor(c), c.Param("room"), item, in, key)
	if err != nil {
		return err
	}
	if o.status == http.StatusNoContent {
		return c.NoContent(o.status)
	}
	return c.JSON(o.status, o.answer(out, s.publicURL(c)))
}

func (o op[In, Out]) answer(out Out, base string) any {
	if o.show != nil {
		return o.show(out, base)
	}
	return out
}

// command carries out a websocket command of the op: data is the REST
// body, with the item's id in data.<itemField>; the command's id is its
// idempotency key. The ack carries the seq of the event the command
// appended (of the first one, for a repeated id) or, when it changed
// nothing, the room's head: "what the command did is in the timeline up
// to seq".
func (o op[In, Out]) command(ctx context.Context, s *Server, a dealroom.Actor, f hub.Frame) ([]byte, error) {
	if !s.allow(o.class, a) {
		return nil, errRateLimited
	}
	body := []byte(f.Data)
	var item string
	if o.itemField != "" {
		var fields map[string]json.RawMessage
		if len(body) > 0 {
			if err := json.Unmarshal(body, &fields); err != nil {
				return nil, dealroom.Errorf(dealroom.EBADREQUEST, "data is not a JSON object")
			}
		}
		if raw, ok := fields[o.itemField]; !ok || json.Unmarshal(raw, &item) != nil || item == "" {
			return nil, dealroom.Invalid(o.itemField, "%s needs data.%s", o.name, o.itemField)
		}
		delete(fields, o.itemField)
		body, _ = json.Marshal(fields)
	}
	var in In
	if o.method != http.MethodDelete {
		if len(body) == 0 {
			body = []byte("{}")
		}
		if err := decodeJSON(bytes.NewReader(body), &in); err != nil {
			return nil, err
		}
	}
	out, err := o.call(ctx, s.svc, a, f.Room, item, in, f.ID)
	if err != nil {
		return nil, err
	}
	seq := out.Wrote().Seq
	if seq == 0 {
		if r, err := s.svc.Store.Room(ctx, f.Room); err == nil {
			seq = r.Head
		}
	}
	var data json.RawMessage
	if o.status != http.StatusNoContent {
		if data, err = json.Marshal(o.answer(out, s.cfg.PublicURL)); err != nil {
			return nil, err
		}
	}
	return hub.AckFrame(f.ID, seq, data), nil
}
