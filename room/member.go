package room

import (
	"regexp"
	"time"

	"dealroom"
)

// Access is what a member may do with the room's content.
type Access string

// Readers see; writers also change tasks, post messages and upload.
const (
	Read  Access = "read"
	Write Access = "write"
)

// RoleInRoom marks the room's owners, who manage its membership.
type RoleInRoom string

// Roles in a room.
const (
	Owner       RoleInRoom = "owner"
	PlainMember RoleInRoom = "member"
)

// Member is a person's membership in a room.
type Member struct {
	UserID     string        `json:"user_id"`
	Name       string        `json:"name"`
	Kind       dealroom.Kind `json:"kind"`
	Access     Access        `json:"access"`
	RoleInRoom RoleInRoom    `json:"role_in_room"`
	AddedBy    string        `json:"added_by"`
	AddedAt    time.Time     `json:"added_at"`
}

// MemberDraft is the input for adding a member.
type MemberDraft struct {
	UserID     string        `json:"user_id"`
	Name       string        `json:"name"`
	Kind       dealroom.Kind `json:"kind"`
	Access     Access        `json:"access"`
	RoleInRoom RoleInRoom    `json:"role_in_room"`
}

// MemberPatch changes a member's name, access or role.
type MemberPatch struct {
	Name       dealroom.Opt[string]     `json:"name"`
	Access     dealroom.Opt[Access]     `json:"access"`
	RoleInRoom dealroom.Opt[RoleInRoom] `json:"role_in_room"`
}

var userIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:+|-]{0,127}$`)

func checkUserID(field, id string) error {
	if !userIDRE.MatchString(id) {
		return dealroom.Invalid(field, "%s must be a user id of 1 to 128 letters, digits or ._@:+|- characters", field)
	}
	return nil
}

func checkAccess(a Access) (Access, error) {
	switch a {
	case "":
		return Write, nil
	case Read, Write:
		return a, nil
	}
	return "", dealroom.Invalid("access", "access must be \"read\" or \"write\", not %q", dealroom.Clip(string(a)))
}

func checkRole(r RoleInRoom, kind dealroom.Kind) (RoleInRoom, error) {
	switch r {
	case "":
		return PlainMember, nil
	case PlainMember:
		return r, nil
	case Owner:
		if kind != dealroom.Staff {
			return "", dealroom.Invalid("role_in_room", "only staff can own a room")
		}
		return r, nil
	}
	return "", dealroom.Invalid("role_in_room", "role_in_room must be \"owner\" or \"member\", not %q", dealroom.Clip(string(r)))
}

func newMember(d MemberDraft, by string, now time.Time) (Member, error) {
	m := Member{UserID: d.UserID, Kind: d.Kind, AddedBy: by, AddedAt: now}
	var err error
	if err := checkUserID("user_id", d.UserID); err != nil {
		return Member{}, err
	}
	if m.Name, err = dealroom.Line("name", d.Name, 1, 100); err != nil {
		return Member{}, err
	}
	if !d.Kind.Valid() {
		return Member{}, dealroom.Invalid("kind", "kind must be \"staff\" or \"customer\"")
	}
	if m.Access, err = checkAccess(d.Access); err != nil {
		return Member{}, err
	}
	if m.RoleInRoom, err = checkRole(d.RoleInRoom, d.Kind); err != nil {
		return Member{}, err
	}
	if m.RoleInRoom == Owner && m.Access != Write {
		return Member{}, dealroom.Invalid("access", "an owner needs write access")
	}
	return m, nil
}

// Perm is what an actor may do in one room, derived from who they are and
// their membership. The zero Perm allows nothing, not even to know the room
// exists.
type Perm struct {
	See      bool // the room exists for them
	Internal bool // they see internal items and events
	Write    bool // they change tasks, post messages, upload
	Manage   bool // they change membership and access
	Invite   bool // they create and revoke invites
	Settings bool // they change the room's name, stage, value, forecast
	Member   *Member
}

// FindMember returns the member of ms who is user, nil when none is.
func FindMember(ms []Member, user string) *Member {
	for i := range ms {
		if ms[i].UserID == user {
			return &ms[i]
		}
	}
	return nil
}

// PermOf derives a's permissions in a room where m is a's membership (nil
// when a is not a member). Someone is treated as a customer when either the
// token or the membership says so: the stricter reading wins.
func PermOf(a dealroom.Actor, m *Member) Perm {
	customer := a.IsCustomer() || (m != nil && m.Kind != dealroom.Staff)
	if !customer && a.Oversees() {
		return Perm{See: true, Internal: true, Write: true, Manage: true, Invite: true, Settings: true, Member: m}
	}
	if m == nil {
		return Perm{}
	}
	p := Perm{See: true, Member: m, Write: m.Access == Write}
	if !customer {
		p.Internal = true
		p.Invite = p.Write
		p.Settings = p.Write
		p.Manage = m.RoleInRoom == Owner
	}
	return p
}

// Sees reports whether the holder may see an item with visibility v.
func (p Perm) Sees(v dealroom.Visibility) bool {
	return p.See && (v == dealroom.Shared || p.Internal)
}
