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
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return dealroom.Now()
}

// change describes one command on an existing room.
type change struct {
	actor dealroom.Actor
	room  string
	key   string
	// op and input make the request's fingerprint.
	op    string
	input any
	// decide returns the event to append, or an event with an empty Type
	// when there is nothing to change.
	decide func(v View, p Perm, r *Room, now time.Time) (Event, error)
	// replayed, when set, learns whether the answer is the replay of an
	// earlier request with the same key (decide did not run then).
	replayed *bool
}

// run executes c against the room's state. The room must exist and be
// visible to the actor; otherwise the answer is ENOTFOUND, so that room ids
// do not leak.
func (s *Service) run(ctx context.Context, c change) (Event, error) {
	fp, err := fingerprint(c.op, c.room, c.input)
	if err != nil {
		return Event{}, err
	}
	cmd := Command{Room: c.room, Actor: c.actor.ID, Key: c.key, Fingerprint: fp, At: s.now(),
		Decide: func(v View) (Event, error) {
			r, err := v.Room()
			if err != nil {
				return Event{}, err
			}
			if r == nil {
				return Event{}, dealroom.NotFound("room", c.room)
			}
			m, err := v.Member(c.actor.ID)
			if err != nil {
				return Event{}, err
			}
			p := PermOf(c.actor, m)
			if !p.See {
				return Event{}, dealroom.NotFound("room", c.room)
			}
			return c.decide(v, p, r, s.now())
		}}
	ev, replayed, err := s.executeReplay(ctx, cmd)
	if err == nil && replayed {
		err = s.checkReplay(ctx, c.actor, c.room, ev)
	}
	if c.replayed != nil {
		*c.replayed = replayed
	}
	return ev, err
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

func (s *Service) execute(ctx context.Context, cmd Command) (Event, error) {
	ev, _, err := s.executeReplay(ctx, cmd)
	return ev, err
}

func (s *Service) executeReplay(ctx context.Context, cmd Command) (Event, bool, error) {
	ev, replayed, err := s.Store.Execute(ctx, cmd)
	if err != nil {
		return Event{}, false, err
	}
	if !replayed && ev.Type != "" && s.Committed != nil {
		s.Committed(ev)
	}
	recordOutcome(ctx, ev, replayed)
	return ev, replayed, nil
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
