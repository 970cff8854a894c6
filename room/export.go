package room

import (
	"context"

	"dealroom"
)

// Export hands fn every event of the room that the actor may see, in seq
// order, with the timeline's rules (EventPage: a staff person who is a
// customer-kind member gets what customers get), one page of the store
// at a time, so that a room of any length is never held in memory whole.
// Staff only: EFORBIDDEN for customers' tokens, ENOTFOUND for a room the
// actor may not see. An error of fn stops the export and is returned.
func (s *Service) Export(ctx context.Context, a dealroom.Actor, roomID string, fn func(Event) error) error {
	if a.IsCustomer() {
		return forbidden("the export is for staff")
	}
	var after int64
	for {
		page, err := s.EventPage(ctx, a, roomID, after, MaxEventPage)
		if err != nil {
			return err
		}
		for _, ev := range page.Items {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if page.NextAfter == 0 {
			return nil
		}
		after = page.NextAfter
	}
}
