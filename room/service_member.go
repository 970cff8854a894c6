package room

import (
	"context"
	"time"

	"dealroom"
)

// Members lists a room's members. Every member sees them all; there is no
// user directory beyond this.
func (s *Service) Members(ctx context.Context, a dealroom.Actor, room string) ([]Member, error) {
	if _, err := s.perm(ctx, a, room); err != nil {
		return nil, err
	}
	return s.Store.Members(ctx, room)
}

// MemberResult is a member after a change.
type MemberResult struct {
	Member
	Written
}

func memberReplay(ev Event) (MemberResult, error) {
	m, err := decodeData[Member](ev)
	return MemberResult{Member: m}, err
}

// AddMember adds a person to the room. Owners, managers and admins only.
func (s *Service) AddMember(ctx context.Context, a dealroom.Actor, room string, d MemberDraft, key string) (MemberResult, error) {
	return run(ctx, s, change[MemberResult]{actor: a, room: room, key: key, op: "member.add", input: d,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, MemberResult, error) {
			if !p.Manage {
				return Event{}, MemberResult{}, forbidden("only the room's owners, managers and admins change its membership")
			}
			m, err := newMember(d, a.ID, now)
			if err != nil {
				return Event{}, MemberResult{}, err
			}
			members, err := v.Members()
			if err != nil {
				return Event{}, MemberResult{}, err
			}
			for _, o := range members {
				if o.UserID == m.UserID {
					return Event{}, MemberResult{}, conflict("%s is a member already; change their access with PATCH", m.UserID)
				}
			}
			if len(members) >= MaxMembers {
				return Event{}, MemberResult{}, conflict("a room has at most %d members", MaxMembers)
			}
			ev, err := newEvent(MemberAdded, room, a, now, dealroom.Shared, m)
			return ev, MemberResult{Member: m}, err
		},
		replay: memberReplay})
}

// UpdateMember changes a member's name, access or role in the room. Owners,
// managers and admins only; a room keeps at least one owner.
func (s *Service) UpdateMember(ctx context.Context, a dealroom.Actor, room, user string, pt MemberPatch, key string) (MemberResult, error) {
	return run(ctx, s, change[MemberResult]{actor: a, room: room, key: key, op: "member.update", input: []any{user, pt},
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, MemberResult, error) {
			if !p.Manage {
				return Event{}, MemberResult{}, forbidden("only the room's owners, managers and admins change its membership")
			}
			old, err := v.Member(user)
			if err != nil || old == nil {
				if err == nil {
					err = dealroom.NotFound("member", user)
				}
				return Event{}, MemberResult{}, err
			}
			n := *old
			if pt.Name.Set {
				if n.Name, err = dealroom.Line("name", pt.Name.V, 1, 100); err != nil {
					return Event{}, MemberResult{}, err
				}
			}
			if pt.Access.Set {
				if pt.Access.Null || pt.Access.V == "" {
					return Event{}, MemberResult{}, dealroom.Invalid("access", "access must be \"read\" or \"write\"")
				}
				if n.Access, err = checkAccess(pt.Access.V); err != nil {
					return Event{}, MemberResult{}, err
				}
			}
			if pt.RoleInRoom.Set {
				if pt.RoleInRoom.Null || pt.RoleInRoom.V == "" {
					return Event{}, MemberResult{}, dealroom.Invalid("role_in_room", "role_in_room must be \"owner\" or \"member\"")
				}
				if n.RoleInRoom, err = checkRole(pt.RoleInRoom.V, n.Kind); err != nil {
					return Event{}, MemberResult{}, err
				}
			}
			if n.RoleInRoom == Owner && n.Access != Write {
				return Event{}, MemberResult{}, dealroom.Invalid("access", "an owner needs write access")
			}
			if n == *old {
				return noChange, MemberResult{Member: n}, nil
			}
			if old.RoleInRoom == Owner && n.RoleInRoom != Owner {
				if err := lastOwnerGuard(v, user); err != nil {
					return Event{}, MemberResult{}, err
				}
			}
			ev, err := newEvent(MemberUpdated, room, a, now, dealroom.Shared, n)
			return ev, MemberResult{Member: n}, err
		},
		replay: memberReplay})
}

// RemoveMember takes a person out of the room. Owners, managers and admins
// remove anyone; anyone may leave; the last owner cannot go.
func (s *Service) RemoveMember(ctx context.Context, a dealroom.Actor, room, user, key string) (Written, error) {
	return run(ctx, s, change[Written]{actor: a, room: room, key: key, op: "member.remove", input: user,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, Written, error) {
			if !p.Manage && user != a.ID {
				return Event{}, Written{}, forbidden("only the room's owners, managers and admins change its membership")
			}
			m, err := v.Member(user)
			if err != nil || m == nil {
				if err == nil {
					err = dealroom.NotFound("member", user)
				}
				return Event{}, Written{}, err
			}
			if m.RoleInRoom == Owner {
				if err := lastOwnerGuard(v, user); err != nil {
					return Event{}, Written{}, err
				}
			}
			ev, err := newEvent(MemberRemoved, room, a, now, dealroom.Shared, MemberRemovedData{UserID: m.UserID, Name: m.Name})
			return ev, Written{}, err
		}})
}

// lastOwnerGuard refuses to take away the room's only owner.
func lastOwnerGuard(v View, leaving string) error {
	members, err := v.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.RoleInRoom == Owner && m.UserID != leaving {
			return nil
		}
	}
	return conflict("a room needs an owner: make someone else owner first")
}
