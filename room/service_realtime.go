package room

import (
	"context"

	"dealroom"
)

// Access returns the actor's permissions in a room they may see, and
// ENOTFOUND for a room they may not see (or that does not exist).
func (s *Service) Access(ctx context.Context, a dealroom.Actor, room string) (Perm, error) {
	if err := s.Authorize(ctx, a); err != nil {
		return Perm{}, err
	}
	return s.perm(ctx, a, room)
}

// TaskVisibility returns the visibility of a task the actor may see, and
// ENOTFOUND otherwise.
func (s *Service) TaskVisibility(ctx context.Context, a dealroom.Actor, room, id string) (dealroom.Visibility, error) {
	t, err := s.Task(ctx, a, room, id)
	if err != nil {
		return "", err
	}
	return t.Visibility, nil
}

// Outcome is what a change did, for callers that need more than its
// result: the websocket acknowledges a command with the event's seq.
type Outcome struct {
	// Seq is the seq of the event the change appended or, for a replayed
	// request, appended the first time; 0 when nothing changed.
	Seq      int64
	Replayed bool
}

type outcomeKey struct{}

// WithOutcome returns a context in which the Service records the outcome
// of the change it carries out into o.
func WithOutcome(ctx context.Context, o *Outcome) context.Context {
	return context.WithValue(ctx, outcomeKey{}, o)
}

func recordOutcome(ctx context.Context, ev Event, replayed bool) {
	if o, ok := ctx.Value(outcomeKey{}).(*Outcome); ok {
		o.Seq, o.Replayed = ev.Seq, replayed
	}
}
