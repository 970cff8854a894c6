package notify

import (
	"context"
	"sync"

	"dealroom/room"
)

// The address of a customer is learnt from the invite they accepted (the
// invite.accepted event, Handle). Customers who accepted theirs before the
// notifier ran, or before it recorded addresses, have none: the consumer
// does not act on the history. Backfill gives them the address of their
// invite, which the invite record keeps.

// backfillState is whether this process backfilled.
type backfillState struct {
	mu   sync.Mutex
	done bool
}

// invitesPage is the invites read per room and request.
const invitesPage = 200

// Backfill records, for every accepted invite of every room, the invite's
// address as its customer's when they have none; an address already known
// stays. Run it as a job of the runner: it walks every room once per
// process (again after a failure), and a repeat changes nothing.
func (n *Notifier) Backfill(ctx context.Context) error {
	s := &n.backfill
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	after := ""
	for {
		heads, err := n.store.Heads(ctx, after, roomsPage)
		if err != nil {
			return err
		}
		for _, h := range heads {
			if err := n.backfillRoom(ctx, h.Room); err != nil {
				return err
			}
		}
		if len(heads) < roomsPage {
			break
		}
		after = heads[len(heads)-1].Room
	}
	s.done = true
	return nil
}

// backfillRoom records the addresses of the room's accepted invites.
func (n *Notifier) backfillRoom(ctx context.Context, roomID string) error {
	var after *room.Invite
	for {
		invs, err := n.rooms.Invites(ctx, roomID, after, invitesPage)
		if err != nil {
			return err
		}
		for _, inv := range invs {
			if inv.AcceptedAt == nil || inv.RevokedAt != nil || inv.AcceptedBy == "" || inv.Email == "" {
				continue
			}
			p, err := n.store.Person(ctx, inv.AcceptedBy)
			if err != nil {
				return err
			}
			if p != nil && p.Email != "" {
				continue
			}
			if err := n.store.SetAddress(ctx, inv.AcceptedBy, inv.Email, n.now()); err != nil {
				return err
			}
		}
		if len(invs) < invitesPage {
			return nil
		}
		after = &invs[len(invs)-1]
	}
}
