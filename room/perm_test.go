package room_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"dealroom"
	"dealroom/room"
)

// The access matrix of api.md as a table: who the actor is (token and
// membership) against every permission.
func TestPermOf(t *testing.T) {
	rep := dealroom.Actor{ID: "u", Kind: dealroom.Staff, Role: dealroom.Rep}
	manager := dealroom.Actor{ID: "u", Kind: dealroom.Staff, Role: dealroom.Manager}
	admin := dealroom.Actor{ID: "u", Kind: dealroom.Staff, Role: dealroom.Admin}
	customer := dealroom.Actor{ID: "u", Kind: dealroom.Customer}
	noKind := dealroom.Actor{ID: "u"}
	customerClaimingAdmin := dealroom.Actor{ID: "u", Kind: dealroom.Customer, Role: dealroom.Admin}
	member := func(kind dealroom.Kind, a room.Access, r room.RoleInRoom) *room.Member {
		return &room.Member{UserID: "u", Name: "U", Kind: kind, Access: a, RoleInRoom: r}
	}
	staffOwner := member(dealroom.Staff, room.Write, room.Owner)
	staffWriter := member(dealroom.Staff, room.Write, room.PlainMember)
	staffReader := member(dealroom.Staff, room.Read, room.PlainMember)
	custWriter := member(dealroom.Customer, room.Write, room.PlainMember)
	custReader := member(dealroom.Customer, room.Read, room.PlainMember)

	type perm struct{ See, Internal, Write, Manage, Invite, Settings bool }
	var (
		nothing  = perm{}
		all      = perm{true, true, true, true, true, true}
		writer   = perm{See: true, Internal: true, Write: true, Invite: true, Settings: true}
		reader   = perm{See: true, Internal: true}
		cWriter  = perm{See: true, Write: true}
		cReader  = perm{See: true}
		ownerPrm = all
	)
	tests := []struct {
		name   string
		actor  dealroom.Actor
		member *room.Member
		want   perm
	}{
		{"rep, owner", rep, staffOwner, ownerPrm},
		{"rep, writer", rep, staffWriter, writer},
		{"rep, reader", rep, staffReader, reader},
		{"rep, not a member", rep, nil, nothing},
		{"manager, not a member", manager, nil, all},
		{"admin, not a member", admin, nil, all},
		{"manager, reader member", manager, staffReader, all},
		{"admin, reader member", admin, staffReader, all},
		{"customer, writer", customer, custWriter, cWriter},
		{"customer, reader", customer, custReader, cReader},
		{"customer, not a member", customer, nil, nothing},
		{"customer token claiming admin, not a member", customerClaimingAdmin, nil, nothing},
		{"customer token claiming admin, member", customerClaimingAdmin, custWriter, cWriter},
		// The stricter reading wins when token and membership disagree.
		{"customer token, staff writer membership", customer, staffWriter, cWriter},
		{"customer token, staff owner membership", customer, staffOwner, cWriter},
		{"staff token, customer membership", rep, custWriter, cWriter},
		{"manager token, customer membership", manager, custWriter, cWriter},
		{"manager token, customer reader membership", manager, custReader, cReader},
		{"token without kind, staff membership", noKind, staffWriter, cWriter},
		{"token without kind, not a member", noKind, nil, nothing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := room.PermOf(tt.actor, tt.member)
			got := perm{p.See, p.Internal, p.Write, p.Manage, p.Invite, p.Settings}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.member, p.Member, "the membership is carried along")
			assert.Equal(t, got.See, p.Sees(dealroom.Shared), "shared items are seen by whoever sees the room")
			assert.Equal(t, got.See && got.Internal, p.Sees(dealroom.Internal))
			if !got.Internal {
				// Only what is marked shared reaches customers.
				assert.False(t, p.Sees(""), "an item without visibility is not shared")
				assert.False(t, p.Sees("public"))
			}
		})
	}
}

func TestZeroPermAllowsNothing(t *testing.T) {
	var p room.Perm
	assert.False(t, p.Sees(dealroom.Shared))
	assert.False(t, p.Sees(dealroom.Internal))
	assert.False(t, p.Write || p.Manage || p.Invite || p.Settings || p.Internal || p.See)
}

func TestPresent(t *testing.T) {
	v := 1000.0
	r := &room.Room{ID: "r_1", Name: "Acme", Value: &v, Tags: []string{"vip"}, CloseWindow: room.ThisMonth}
	staff := room.PermOf(dealroom.Actor{ID: "u", Kind: dealroom.Staff}, &room.Member{UserID: "u", Kind: dealroom.Staff, Access: room.Read})
	assert.Equal(t, r, staff.Present(r))
	cust := room.PermOf(dealroom.Actor{ID: "u", Kind: dealroom.Customer}, &room.Member{UserID: "u", Kind: dealroom.Customer, Access: room.Write})
	assert.Equal(t, r.ForCustomer(), cust.Present(r), "customers get the customer view")
}
