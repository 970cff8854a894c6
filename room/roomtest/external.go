package roomtest

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// TestExternal checks what integrations use: the rooms of CRM
// opportunities (room.UpsertRoom, external ids) and the export of a
// timeline (room.Service.Export), against the stores open makes, which
// must implement room.ExternalIndex. Every store runs it beside
// TestStore.
func TestExternal(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"ConcurrentUpsertsCreateOneRoom", testConcurrentUpserts},
		{"UpsertUpdatesOnlyWhatChanged", testUpsertUpdates},
		{"ExternalIDBelongsToOneRoom", testExternalUnique},
		{"RefusedUpsertWritesNothing", testUpsertRefused},
		{"UpsertChangesOwner", testUpsertOwner},
		{"ExportHandsEveryEventInOrder", testExport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// opportunity is what a CRM sends of one deal.
func opportunity() room.Upsert {
	return room.Upsert{Name: "Acme renewal", Company: "Acme", Value: dealroom.Some(50000.0), Currency: "EUR",
		Stage: room.Solution, CloseWindow: room.Quarter, ExternalURL: "https://crm.example.com/opp/0061", OwnerEmail: "alice@seller.example"}
}

// allRooms lists every room of the store.
func (f *fixture) allRooms(t *testing.T) []room.Room {
	t.Helper()
	rs, err := f.store.Rooms(f.ctx, room.RoomFilter{Limit: 1000})
	require.NoError(t, err)
	return rs
}

func testConcurrentUpserts(t *testing.T, open Opener) {
	f := newFixture(t, open)
	const n = 20
	results := make([]room.UpsertResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.svc.UpsertRoom(f.ctx, Mike, "0061", opportunity(), Alice, "")
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, results[0].Room.ID, results[i].Room.ID, "every call answers with the one room")
		if results[i].Created {
			created++
		}
	}
	assert.Equal(t, 1, created, "one call created the room, the others found it")
	rs := f.allRooms(t)
	require.Len(t, rs, 1, "one room for one opportunity")
	assert.Equal(t, "0061", rs[0].ExternalID)
	assert.Equal(t, "https://crm.example.com/opp/0061", rs[0].ExternalURL)
	assert.Equal(t, Alice.ID, rs[0].OwnerID)
	assert.Equal(t, Mike.ID, rs[0].CreatedBy)
	evs := f.events(t, rs[0].ID)
	require.Len(t, evs, 1, "the calls that found the room changed nothing")
	assert.Equal(t, room.RoomCreated, evs[0].Type)
	held, err := f.store.(room.ExternalIndex).RoomOfExternal(f.ctx, "0061")
	require.NoError(t, err)
	assert.Equal(t, rs[0].ID, held)
	owner, err := f.store.Member(f.ctx, rs[0].ID, Alice.ID)
	require.NoError(t, err)
	require.NotNil(t, owner, "the owner is the room's first member")
	assert.Equal(t, room.Owner, owner.RoleInRoom)
}

func testUpsertUpdates(t *testing.T, open Opener) {
	f := newFixture(t, open)
	first, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", opportunity(), Alice, "")
	require.NoError(t, err)
	require.True(t, first.Created)

	again, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", opportunity(), Alice, "")
	require.NoError(t, err)
	assert.False(t, again.Created)
	assert.Zero(t, again.Seq, "the same opportunity again changes nothing")
	assert.Len(t, f.events(t, first.Room.ID), 1)

	u := opportunity()
	u.Value, u.Stage = dealroom.Some(80000.0), room.Signing
	moved, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Alice, "")
	require.NoError(t, err)
	assert.False(t, moved.Created)
	assert.Equal(t, int64(2), moved.Seq)
	assert.Equal(t, 80000.0, *moved.Room.Value)
	assert.Equal(t, room.Signing, moved.Room.Stage)
	evs := f.events(t, first.Room.ID)
	require.Len(t, evs, 2)
	assert.Equal(t, room.RoomUpdated, evs[1].Type)
	assert.ElementsMatch(t, []string{"value", "stage"}, keys(evs[1].Changes))

	u.Currency, u.ExternalURL = "", "" // left out: kept
	u.Value = dealroom.Opt[float64]{}
	same, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Alice, "")
	require.NoError(t, err)
	assert.Zero(t, same.Seq, "fields left out keep their values")
	assert.Equal(t, "EUR", same.Room.Currency)
	assert.Len(t, f.events(t, first.Room.ID), 2)

	// A key makes a retry return the first answer.
	u.Name = "Acme renewal 2027"
	k1, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Alice, "k1")
	require.NoError(t, err)
	k2, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Alice, "k1")
	require.NoError(t, err)
	assert.True(t, k2.Replayed)
	assert.Equal(t, k1.Seq, k2.Seq)
	assert.Len(t, f.events(t, first.Room.ID), 3)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func testExternalUnique(t *testing.T, open Opener) {
	f := newFixture(t, open)
	a, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "A", Company: "Acme", ExternalID: "opp-1"}, "")
	require.NoError(t, err)
	assert.Equal(t, "opp-1", a.ExternalID)

	_, err = f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "B", Company: "Acme", ExternalID: "opp-1"}, "")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "a second room with the id: %v", err)
	assert.Len(t, f.allRooms(t), 1, "the refused room was not made")

	c, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "C", Company: "Acme"}, "")
	require.NoError(t, err)
	_, err = f.svc.UpdateRoom(f.ctx, Alice, c.ID, room.Patch{ExternalID: dealroom.Some("opp-1")}, "")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))
	assert.Len(t, f.events(t, c.ID), 1, "the refused PATCH wrote nothing")

	// Set by a PATCH, the id leads an upsert to that room.
	_, err = f.svc.UpdateRoom(f.ctx, Alice, c.ID, room.Patch{ExternalID: dealroom.Some("opp-2")}, "")
	require.NoError(t, err)
	up, err := f.svc.UpsertRoom(f.ctx, Mike, "opp-2", room.Upsert{Name: "C", Company: "Acme", OwnerEmail: "alice@seller.example"}, Alice, "")
	require.NoError(t, err)
	assert.False(t, up.Created)
	assert.Equal(t, c.ID, up.Room.ID)

	// Once set, an external id stays.
	for _, p := range []room.Patch{{ExternalID: dealroom.Some("opp-3")}, {ExternalID: dealroom.Opt[string]{Set: true, Null: true}}} {
		_, err = f.svc.UpdateRoom(f.ctx, Alice, a.ID, p, "")
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
	}
	got, _, err := f.svc.RoomByExternalID(f.ctx, Alice, "opp-1")
	require.NoError(t, err)
	assert.Equal(t, a.ID, got.ID)
	_, _, err = f.svc.RoomByExternalID(f.ctx, Alice, "opp-9")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
}

func testUpsertRefused(t *testing.T, open Opener) {
	f := newFixture(t, open)
	bad := map[string]func(u *room.Upsert) (string, dealroom.Actor){
		"external id with a slash": func(u *room.Upsert) (string, dealroom.Actor) { return "opp/1", Alice },
		"external id too long":     func(u *room.Upsert) (string, dealroom.Actor) { return string(make([]byte, 129)), Alice },
		"ftp url": func(u *room.Upsert) (string, dealroom.Actor) {
			u.ExternalURL = "ftp://crm.example.com/1"
			return "1", Alice
		},
		"script url": func(u *room.Upsert) (string, dealroom.Actor) {
			u.ExternalURL = "javascript:alert(1)"
			return "1", Alice
		},
		"url with a password": func(u *room.Upsert) (string, dealroom.Actor) {
			u.ExternalURL = "https://u:p@crm.example.com/1"
			return "1", Alice
		},
		"no name":          func(u *room.Upsert) (string, dealroom.Actor) { u.Name = ""; return "1", Alice },
		"bad currency":     func(u *room.Upsert) (string, dealroom.Actor) { u.Currency = "euro"; return "1", Alice },
		"bad stage":        func(u *room.Upsert) (string, dealroom.Actor) { u.Stage = "Nope!"; return "1", Alice },
		"unknown stage":    func(u *room.Upsert) (string, dealroom.Actor) { u.Stage = "closing"; return "1", Alice },
		"negative value":   func(u *room.Upsert) (string, dealroom.Actor) { u.Value = dealroom.Some(-1.0); return "1", Alice },
		"no owner email":   func(u *room.Upsert) (string, dealroom.Actor) { u.OwnerEmail = ""; return "1", Alice },
		"no known owner":   func(u *room.Upsert) (string, dealroom.Actor) { return "1", dealroom.Actor{} },
		"customer owner":   func(u *room.Upsert) (string, dealroom.Actor) { return "1", Carol },
		"bad close window": func(u *room.Upsert) (string, dealroom.Actor) { u.CloseWindow = "soon"; return "1", Alice },
	}
	for name, mutate := range bad {
		u := opportunity()
		id, owner := mutate(&u)
		_, err := f.svc.UpsertRoom(f.ctx, Mike, id, u, owner, "")
		assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), "%s: %v", name, err)
	}
	_, err := f.svc.UpsertRoom(f.ctx, Carol, "1", opportunity(), Alice, "")
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "customers open no rooms")
	assert.Empty(t, f.allRooms(t), "nothing refused made a room")
	held, err := f.store.(room.ExternalIndex).RoomOfExternal(f.ctx, "1")
	require.NoError(t, err)
	assert.Empty(t, held, "nor claimed its id")
}

func testUpsertOwner(t *testing.T, open Opener) {
	f := newFixture(t, open)
	first, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", opportunity(), Alice, "")
	require.NoError(t, err)
	u := opportunity()
	u.OwnerEmail = "bob@seller.example"
	_, err = f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Bob, "")
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), "a new owner must be a member first")
	_, err = f.svc.AddMember(f.ctx, Alice, first.Room.ID, room.MemberDraft{UserID: Bob.ID, Name: Bob.Name, Kind: dealroom.Staff}, "")
	require.NoError(t, err)
	moved, err := f.svc.UpsertRoom(f.ctx, Mike, "0061", u, Bob, "")
	require.NoError(t, err)
	assert.Equal(t, Bob.ID, moved.Room.OwnerID)
	// A rep who may not change the room's settings cannot upsert it.
	_, err = f.svc.UpsertRoom(f.ctx, dealroom.Actor{ID: "eve", Kind: dealroom.Staff, Role: dealroom.Rep}, "0061", u, Bob, "")
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err))
}

func testExport(t *testing.T, open Opener) {
	f := newFixture(t, open)
	id := f.room(t)
	dave := dealroom.Actor{ID: "dave", Name: "Dave Partner", Kind: dealroom.Staff, Role: dealroom.Rep}
	_, err := f.svc.AddMember(f.ctx, Alice, id, room.MemberDraft{UserID: dave.ID, Name: dave.Name, Kind: dealroom.Customer}, "")
	require.NoError(t, err)
	// More than a page of the store, a third of it internal.
	const n = room.MaxEventPage + 50
	internal := 0
	for i := range n {
		vis := dealroom.Shared
		if i%3 == 0 {
			vis = dealroom.Internal
			internal++
		}
		_, err := f.svc.PostMessage(f.ctx, Alice, id, room.MessageDraft{Body: "note", Visibility: vis}, "")
		require.NoError(t, err)
	}
	head := int64(n + 4) // the room, Bob, Carol and Dave joining, the notes

	export := func(a dealroom.Actor) ([]room.Event, error) {
		var got []room.Event
		err := f.svc.Export(f.ctx, a, id, func(ev room.Event) error {
			got = append(got, ev)
			return nil
		})
		return got, err
	}
	all, err := export(Alice)
	require.NoError(t, err)
	require.Equal(t, int(head), len(all), "every event")
	for i, ev := range all {
		require.Equal(t, int64(i+1), ev.Seq, "in seq order")
	}

	// A staff person who is a customer-kind member gets what customers get.
	shared, err := export(dave)
	require.NoError(t, err)
	assert.Equal(t, int(head)-internal, len(shared), "the shared events only")
	for i, ev := range shared {
		require.Equal(t, dealroom.Shared, ev.Visibility)
		if i > 0 {
			require.Greater(t, ev.Seq, shared[i-1].Seq)
		}
	}

	_, err = export(Carol)
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "customers export nothing")
	_, err = export(dealroom.Actor{ID: "eve", Kind: dealroom.Staff, Role: dealroom.Rep})
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "nor do strangers")

	stop := errors.New("the reader went away")
	seen := 0
	err = f.svc.Export(f.ctx, Alice, id, func(room.Event) error {
		if seen++; seen == 10 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 10, seen, "stopped at the reader's error")
}
