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
