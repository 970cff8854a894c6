package room

import (
	"context"
	"slices"
	"time"

	"dealroom"
	"dealroom/task"
)

// CreateRoom opens a room for a new opportunity with the actor as its
// owner, laying out the action plan of the template when one is named.
// Only staff create rooms.
func (s *Service) CreateRoom(ctx context.Context, a dealroom.Actor, d Draft, key string) (*Room, error) {
	if a.IsCustomer() {
		return nil, forbidden("only staff can create rooms")
	}
	now := s.now()
	id := NewID("r", now)
	if key != "" {
		// A retry must land on the same room, so its id comes from the key.
		id = derivedID("r", a.ID, key)
	}
	plan, err := s.templateTasks(ctx, a, d.Template)
	if err != nil {
		return nil, err
	}
	fp, err := fingerprint("room.create", "", d)
	if err != nil {
		return nil, err
	}
	x, err := s.execute(ctx, Command{Room: id, Actor: a.ID, Key: key, Fingerprint: fp, At: s.now(),
		Decide: func(v View) (Decision, error) {
			if r, err := v.Room(); err != nil || r != nil {
				if err == nil {
					err = conflict("room %s exists already", id)
				}
				return Decision{}, err
			}
			now := s.now()
			r, err := newRoom(d, id, a, now)
			if err != nil {
				return Decision{}, err
			}
			owner := Member{UserID: a.ID, Name: a.Name, Kind: dealroom.Staff, Access: Write,
				RoleInRoom: Owner, AddedBy: a.ID, AddedAt: now}
			tasks := make([]task.Task, 0, len(plan))
			for i, pt := range plan {
				t, err := task.New(pt, NewID("t", now), id, a.ID, now, float64(i+1))
				if err != nil {
					return Decision{}, err
				}
				tasks = append(tasks, t)
			}
			ev, err := newEvent(RoomCreated, id, a, now, dealroom.Shared,
				RoomCreatedData{Room: r, Members: []Member{owner}, Tasks: tasks})
			return Decision{Event: ev}, err
		}})
	if err == nil && x.Replayed {
		err = s.checkReplay(ctx, a, id, x.Event)
	}
	if err != nil {
		return nil, err
	}
	d2, err := decodeData[RoomCreatedData](x.Event)
	return &d2.Room, err
}

// Room returns a room the actor may see, with the actor's permissions in it.
func (s *Service) Room(ctx context.Context, a dealroom.Actor, id string) (*Room, Perm, error) {
	return s.visibleRoom(ctx, a, id)
}

// Listed is a room in a listing with its reader's permissions in it, which
// say how it is shown (Perm.Present).
type Listed struct {
	Room Room
	Perm Perm
}

// Rooms lists the rooms the actor is a member of, newest first; managers and
// admins see every room. The filter's Member field is set here.
//
// Each room is shown as the reader's permissions in it allow, the stricter
// of token and membership (as everywhere): a staff member who is a
// customer-kind member of a room sees it as customers do. Filters on what
// customers do not see (owner, close_window) are refused for customers'
// tokens, and never match a room its reader sees as a customer, so that a
// filter cannot reveal what the room's view hides.
func (s *Service) Rooms(ctx context.Context, a dealroom.Actor, f RoomFilter) ([]Listed, error) {
	f.Member = a.ID
	if a.Oversees() {
		f.Member = ""
	}
	if f.CloseWindow != "" && !slices.Contains(CloseWindows, f.CloseWindow) {
		return nil, dealroom.Invalid("close_window", "close_window is one of %v", CloseWindows)
	}
	hidden := f.hiddenFields()
	if a.IsCustomer() && len(hidden) > 0 {
		return nil, dealroom.Invalid(hidden[0], "%s is not a filter customers can use: it filters on what customers do not see", hidden[0])
	}
	if f.Before != "" {
		// A cursor is a room of an earlier page: one this actor sees.
		if _, _, err := s.visibleRoom(ctx, a, f.Before); err != nil {
			if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
				return nil, dealroom.Invalid("cursor", "cursor is not one this server gave out")
			}
			return nil, err
		}
	}
	var out []Listed
	for {
		rooms, err := s.Store.Rooms(ctx, f)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(rooms))
		for i := range rooms {
			ids[i] = rooms[i].ID
		}
		ms, err := s.Store.Memberships(ctx, a.ID, ids)
		if err != nil {
			return nil, err
		}
		for _, r := range rooms {
			var m *Member
			if mm, ok := ms[r.ID]; ok {
				m = &mm
			}
			p := PermOf(a, m)
			if !p.See || (!p.Internal && len(hidden) > 0) {
				continue // left since the listing was read; or a filter it must not answer
			}
			out = append(out, Listed{Room: r, Perm: p})
			if f.Limit > 0 && len(out) == f.Limit {
				return out, nil
			}
		}
		if f.Limit <= 0 || len(rooms) < f.Limit {
			return out, nil
		}
		// Rooms were left out: read on to fill the page.
		f.Before = rooms[len(rooms)-1].ID
	}
}

// RoomResult is a room after a change, with its reader's permissions in
// it.
type RoomResult struct {
	Room *Room
	Perm Perm
	Written
}

// UpdateRoom changes a room's settings: name, company, stage, value,
// currency, forecast, tags and follow-up period. Staff with write access
// only.
func (s *Service) UpdateRoom(ctx context.Context, a dealroom.Actor, id string, p Patch, key string) (RoomResult, error) {
	w, err := run(ctx, s, change[Written]{actor: a, room: id, key: key, op: "room.update", input: p,
		decide: func(v View, pm Perm, r *Room, now time.Time) (Event, Written, error) {
			if !pm.Settings {
				return Event{}, Written{}, forbidden("you cannot change this room's settings")
			}
			n, changed, err := r.apply(p, now)
			if err != nil || len(changed) == 0 {
				return noChange, Written{}, err
			}
			if slices.Contains(changed, "close_window") {
				n.Forecast = r.Forecast.Moved(n.CloseWindow, a.ID, now)
				changed = append(changed, "forecast")
			}
			vis := dealroom.Internal
			for _, f := range changed {
				if slices.Contains(customerFields, f) {
					vis = dealroom.Shared
				}
			}
			n.Head, n.LastActivityAt, n.LastCustomerActivityAt = 0, time.Time{}, nil
			ev, err := newEvent(RoomUpdated, id, a, now, vis, n)
			if err == nil {
				ev.Changes, err = diff(r, &n, changed)
			}
			return ev, Written{}, err
		}})
	if err != nil {
		return RoomResult{}, err
	}
	// The room is read again, with what the event did to its head and
	// activity, as the actor may see it now.
	r, pm, err := s.visibleRoom(ctx, a, id)
	return RoomResult{Room: r, Perm: pm, Written: w}, err
}

// Present returns what p's holder may see of r: the whole room for staff,
// CustomerRoom for customers.
func (p Perm) Present(r *Room) any {
	if p.Internal {
		return r
	}
	return r.ForCustomer()
}
