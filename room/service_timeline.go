package room

import (
	"context"
	"unicode/utf8"

	"dealroom"
)

// MaxEventPage is the most events one request returns.
const MaxEventPage = 1000

// Events returns the room's events after seq `after` that the actor may
// see, in order: the timeline, and catch-up for a device that was away.
// Customers get the same seq numbers with internal events left out.
func (s *Service) Events(ctx context.Context, a dealroom.Actor, room string, after int64, limit int) ([]Event, error) {
	page, err := s.EventPage(ctx, a, room, after, limit)
	return page.Items, err
}

// EventPage is one page of a room's timeline.
type EventPage struct {
	Items []Event
	// NextAfter is the seq to continue after, 0 when the page reached the
	// room's head (as it was when the page was read). A customer's page
	// may hold fewer than the limit, none even, and still have a
	// NextAfter: a page looks at a bounded stretch of the room
	// (SharedScan) to find the shared events among the internal ones.
	NextAfter int64
}

// EventPage returns a page of the events after seq `after` that the actor
// may see (see Events), and where to continue.
func (s *Service) EventPage(ctx context.Context, a dealroom.Actor, room string, after int64, limit int) (EventPage, error) {
	r, p, err := s.visibleRoom(ctx, a, room)
	if err != nil {
		return EventPage{}, err
	}
	if after < 0 {
		return EventPage{}, dealroom.Invalid("after", "after must be a seq, 0 or more")
	}
	limit = clampLimit(limit, 100, MaxEventPage)
	evs, err := Redactor{s.Store}.Events(ctx, room, after, limit, !p.Internal)
	if err != nil {
		return EventPage{}, err
	}
	var page EventPage
	switch {
	case len(evs) == limit:
		page.NextAfter = evs[len(evs)-1].Seq
	case !p.Internal && SharedScanEnd(after, limit) < r.Head:
		page.NextAfter = SharedScanEnd(after, limit)
	}
	if p.Internal {
		page.Items = evs
		return page, nil
	}
	out := evs[:0]
	for _, e := range evs {
		if v, ok := e.ForCustomer(); ok {
			out = append(out, v)
		}
	}
	page.Items = out
	return page, nil
}

// Inbox returns the actor's inbox, newest first: mentions, assignments and
// invitations, with what they are about as it stands now. Items about rooms
// or things the actor can no longer see are left out.
func (s *Service) Inbox(ctx context.Context, a dealroom.Actor, before string, limit int) ([]InboxItem, string, error) {
	limit = clampLimit(limit, 50, 200)
	items, err := s.Store.Inbox(ctx, a.ID, before, limit)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(items) == limit {
		next = items[len(items)-1].ID
	}
	rooms := map[string]*Room{}
	perms := map[string]Perm{}
	out := items[:0]
	for _, it := range items {
		p, ok := perms[it.RoomID]
		if !ok {
			r, pm, err := s.visibleRoom(ctx, a, it.RoomID)
			if err != nil && dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
				return nil, "", err
			}
			rooms[it.RoomID], perms[it.RoomID], p = r, pm, pm
		}
		if !p.Sees(it.Visibility) {
			continue
		}
		it.RoomName = rooms[it.RoomID].Name
		keep, err := s.describe(ctx, p, &it)
		if err != nil {
			return nil, "", err
		}
		if keep {
			out = append(out, it)
		}
	}
	return out, next, nil
}

// describe fills an inbox item's title and excerpt from the current state
// of its task or message; false when that is gone or hidden.
func (s *Service) describe(ctx context.Context, p Perm, it *InboxItem) (bool, error) {
	if it.MessageID != "" {
		m, err := s.Store.Message(ctx, it.RoomID, it.MessageID)
		if err != nil || m == nil || !p.Sees(m.Visibility) {
			return false, err
		}
		if m.Deleted {
			it.Excerpt = ""
			it.Title = "(deleted message)"
			return true, nil
		}
		it.Excerpt = excerpt(m.Body, 200)
		it.Title = "Message from " + m.AuthorName
	}
	if it.TaskID != "" {
		t, err := s.Store.Task(ctx, it.RoomID, it.TaskID)
		if err != nil {
			return false, err
		}
		if t != nil && p.Sees(t.Visibility) {
			it.Title = t.Title
			if it.MessageID == "" {
				it.Excerpt = excerpt(t.Description, 200)
			}
		} else if it.MessageID == "" {
			return false, nil
		}
	}
	if it.Kind == InboxInvitation {
		it.Title = "You were added to " + it.RoomName
	}
	return true, nil
}

// MarkRead marks one of the actor's inbox items as read.
func (s *Service) MarkRead(ctx context.Context, a dealroom.Actor, item string) error {
	return s.Store.MarkRead(ctx, a.ID, item, s.now())
}

func excerpt(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func clampLimit(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}
