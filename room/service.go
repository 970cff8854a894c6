package room

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"dealroom"
)

// Service carries out what people do in rooms: it checks every request
// against the actor's permissions and the room's state, and records each
// change as one event through the Store. The REST routes and websocket
// commands both call it, so a rule lives in one place.
type Service struct {
	Store Store
	Blobs Blobs
	// Now is the clock; it defaults to dealroom.Now.
	Now func() time.Time
	// Committed, when set, is called with every newly appended event
	// (not with replays of an idempotent retry), after it is durable.
	Committed func(Event)
	// ReadMoved, when set, is called when someone's read marker moved
	// (read.go), after it is stored.
	ReadMoved func(RoomRead)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return dealroom.Now()
}

// Written is where a change left the room's timeline: the seq of the event
// it appended or, for the replay of an earlier request with the same key,
// of that request's event (Replayed); 0 when it changed nothing. The
// websocket acknowledges a command with it. Every result of a change
// carries one (embedded: it is not part of the result's JSON).
type Written struct {
	Seq      int64 `json:"-"`
	Replayed bool  `json:"-"`
}

// Wrote returns w; results that embed a Written answer it.
func (w Written) Wrote() Written { return w }

func (w *Written) setWritten(x Written) { *w = x }

// change describes one command on an existing room, whose caller gets an
// R back.
type change[R any] struct {
	actor dealroom.Actor
	room  string
	key   string
	// op and input make the request's fingerprint.
	op    string
	input any
	// decide returns the event to append (noChange when there is nothing
	// to change) and the caller's result.
	decide func(v View, p Perm, r *Room, now time.Time) (Event, R, error)
	// replay rebuilds the result of an earlier request with the same key
	// from its event (decide does not run then); nil: a zero R.
	replay func(ev Event) (R, error)
}

// run carries out c against the room's state and returns the result of
// its decision (of its replay, for a retried request), with where it left
// the timeline when R embeds a Written. The room must exist and be visible
// to the actor; otherwise the answer is ENOTFOUND, so that room ids do not
// leak.
func run[R any](ctx context.Context, s *Service, c change[R]) (R, error) {
	var res R
	fp, err := fingerprint(c.op, c.room, c.input)
	if err != nil {
		return res, err
	}
	x, err := s.execute(ctx, Command{Room: c.room, Actor: c.actor.ID, Key: c.key, Fingerprint: fp, At: s.now(),
		Decide: func(v View) (Decision, error) {
			r, err := v.Room()
			if err != nil {
				return Decision{}, err
			}
			if r == nil {
				return Decision{}, dealroom.NotFound("room", c.room)
			}
			m, err := v.Member(c.actor.ID)
			if err != nil {
				return Decision{}, err
			}
			p := PermOf(c.actor, m)
			if !p.See {
				return Decision{}, dealroom.NotFound("room", c.room)
			}
			ev, res, err := c.decide(v, p, r, s.now())
			return Decision{Event: ev, Result: res}, err
		}})
	if err != nil {
		return res, err
	}
	if x.Replayed {
		if err := s.checkReplay(ctx, c.actor, c.room, x.Event); err != nil {
			return res, err
		}
		if c.replay != nil {
			if res, err = c.replay(x.Event); err != nil {
				return res, err
			}
		}
	} else if r, ok := x.Result.(R); ok {
		res = r
	}
	if w, ok := any(&res).(interface{ setWritten(Written) }); ok {
		w.setWritten(Written{Seq: x.Event.Seq, Replayed: x.Replayed})
	}
	return res, nil
}

// checkReplay makes sure that the actor of a replayed request may still
// see what its recorded answer shows: the store returns the first answer
// for a key without deciding anything, and a member removed since (404
// for the room), or an actor who may no longer see the item (internal to
// a customer: 404 for it), must not get it.
func (s *Service) checkReplay(ctx context.Context, a dealroom.Actor, room string, ev Event) error {
	if ev.Type == MemberRemoved {
		// A member who left retries their leaving: its answer (nothing)
		// tells them nothing new.
		if d, err := decodeData[MemberRemovedData](ev); err == nil && d.UserID == a.ID {
			return nil
		}
	}
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return err
	}
	if !p.Sees(ev.Visibility) {
		return dealroom.NotFound("room", room)
	}
	var item struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(ev.Data, &item) != nil || item.ID == "" {
		return nil
	}
	var vis dealroom.Visibility
	kind := ""
	switch ev.Type {
	case TaskCreated, TaskUpdated:
		t, err := s.Store.Task(ctx, room, item.ID)
		if err != nil || t == nil {
			return err
		}
		vis, kind = t.Visibility, "task"
	case MessagePosted, MessageEdited, MessageDeleted:
		m, err := s.Store.Message(ctx, room, item.ID)
		if err != nil || m == nil {
			return err
		}
		vis, kind = m.Visibility, "message"
	case AttachmentAdded:
		at, err := s.Store.Attachment(ctx, room, item.ID)
		if err != nil || at == nil {
			return err
		}
		vis, kind = at.Visibility, "attachment"
	default:
		return nil
	}
	if !p.Sees(vis) {
		return dealroom.NotFound(kind, item.ID)
	}
	return nil
}

// execute hands cmd to the store, and a newly appended event to
// Committed: every change of every room goes through here.
func (s *Service) execute(ctx context.Context, cmd Command) (Executed, error) {
	x, err := s.Store.Execute(ctx, cmd)
	if err != nil {
		return Executed{}, err
	}
	if !x.Replayed && x.Event.Type != "" && s.Committed != nil {
		s.Committed(x.Event)
	}
	return x, nil
}

// unresolvedAgain recomputes, for the replay of a request, the mentions
// that reached no one: the first answer's list was not stored, and the
// text and the members give it back (unless membership changed since).
func (s *Service) unresolvedAgain(ctx context.Context, room, text string, vis dealroom.Visibility) []string {
	members, err := s.Store.Members(ctx, room)
	if err != nil {
		return nil
	}
	return ResolveMentions(text, members, vis).Unresolved
}

// findMentions finds the mentions of text against the room's members as
// they are now, before the command goes to the store: a store decides one
// command at a time (boltstore: every room's), so the decision only checks
// the members found (Found.Check). A room that does not exist has no
// members; the decision says so.
func (s *Service) findMentions(ctx context.Context, room, text string) (Found, error) {
	text = strings.TrimSpace(text)
	if !strings.Contains(text, "@") {
		return Found{text: text}, nil
	}
	members, err := s.Store.Members(ctx, room)
	if err != nil && dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
		return Found{}, err
	}
	return NewDirectory(members).Find(text), nil
}

// fingerprint identifies a request for idempotency: the same operation on
// the same room with the same input.
func fingerprint(op, room string, input any) (string, error) {
	raw, err := json.Marshal(input)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(op + "\x00" + room + "\x00"))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// decodeData reads an event's data into v.
func decodeData[T any](ev Event) (T, error) {
	var v T
	err := json.Unmarshal(ev.Data, &v)
	return v, err
}

// noChange is the answer of a decision that finds nothing to do.
var noChange = Event{}

func forbidden(format string, args ...any) error {
	return dealroom.Errorf(dealroom.EFORBIDDEN, format, args...)
}

func conflict(format string, args ...any) error {
	return dealroom.Errorf(dealroom.ECONFLICT, format, args...)
}

// visibleRoom loads a room for a reader: ENOTFOUND when it does not exist
// or the actor may not see it.
func (s *Service) visibleRoom(ctx context.Context, a dealroom.Actor, id string) (*Room, Perm, error) {
	r, err := s.Store.Room(ctx, id)
	if err != nil {
		return nil, Perm{}, err
	}
	m, err := s.Store.Member(ctx, id, a.ID)
	if err != nil {
		return nil, Perm{}, err
	}
	p := PermOf(a, m)
	if !p.See {
		return nil, Perm{}, dealroom.NotFound("room", id)
	}
	return r, p, nil
}

// perm returns a's permissions in a room, ENOTFOUND when a may not see it.
func (s *Service) perm(ctx context.Context, a dealroom.Actor, room string) (Perm, error) {
	_, p, err := s.visibleRoom(ctx, a, room)
	return p, err
}
