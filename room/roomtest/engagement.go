package roomtest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testclock"
	"dealroom/room"
)

// TestEngagement runs the conformance suite of room.EngagementStore, and
// of the Tally and the Service's engagement reads on top of it, against
// the stores open makes (each must implement it).
func TestEngagement(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"RecordsAddUp", testEngagementAddsUp},
		{"PerRoomPersonAndFile", testEngagementPerRoom},
		{"CustomerDaysSpan", testCustomerDays},
		{"TallyVisitsAndTime", testTallyVisits},
		{"TallyFiles", testTallyFiles},
		{"StaffOnlyFigures", testEngagementAccess},
		{"FileSeenByFollowsVisibility", testFileReads},
		{"Signals", testSignals},
		{"InvitePreview", testInvitePreview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

func engagementStore(t *testing.T, f *fixture) room.EngagementStore {
	t.Helper()
	es, ok := f.store.(room.EngagementStore)
	require.True(t, ok, "the store keeps no engagement records (room.EngagementStore)")
	return es
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func testEngagementAddsUp(t *testing.T, open Opener) {
	f := newFixture(t, open)
	es := engagementStore(t, f)
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{
		People: []room.PersonDelta{{Room: "r1", UserID: "carol", Side: dealroom.Customer,
			Devices: map[room.DeviceKind]int{room.Phone: 2}, Time: 90 * time.Second,
			FirstVisit: t0.Add(time.Hour), LastVisit: t0.Add(2 * time.Hour)}},
		Files: []room.FileDelta{{Room: "r1", AttachmentID: "a1", UserID: "carol", Side: dealroom.Customer,
			Views: 1, Downloads: 2, First: t0.Add(time.Hour), Last: t0.Add(time.Hour)}},
	}))
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{
		People: []room.PersonDelta{
			{Room: "r1", UserID: "carol", Side: dealroom.Customer, Devices: map[room.DeviceKind]int{room.Desktop: 1},
				Time: 30 * time.Second, FirstVisit: t0, LastVisit: t0},
			// Time without a visit (a stretch that ended): the times stay.
			{Room: "r1", UserID: "carol", Side: dealroom.Customer, Devices: map[room.DeviceKind]int{room.Phone: 0},
				Time: time.Second},
		},
		Files: []room.FileDelta{{Room: "r1", AttachmentID: "a1", UserID: "carol", Side: dealroom.Customer,
			Downloads: 1, First: t0.Add(3 * time.Hour), Last: t0.Add(3 * time.Hour)}},
	}))
	got, err := es.RoomEngagement(f.ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []room.PersonEngagement{{UserID: "carol", Side: dealroom.Customer, FirstVisit: t0,
		LastVisit: t0.Add(2 * time.Hour), Visits: 3, Devices: map[room.DeviceKind]int{room.Phone: 2, room.Desktop: 1},
		Time: 121 * time.Second}}, got.People)
	assert.Equal(t, []room.FileEngagement{{AttachmentID: "a1", UserID: "carol", Side: dealroom.Customer,
		Views: 1, Downloads: 3, First: t0.Add(time.Hour), Last: t0.Add(3 * time.Hour)}}, got.Files)
}

func testEngagementPerRoom(t *testing.T, open Opener) {
	f := newFixture(t, open)
	es := engagementStore(t, f)
	person := func(r, u string) room.PersonDelta {
		return room.PersonDelta{Room: r, UserID: u, Side: dealroom.Staff, Devices: map[room.DeviceKind]int{room.Desktop: 1},
			FirstVisit: t0, LastVisit: t0}
	}
	file := func(r, a, u string) room.FileDelta {
		return room.FileDelta{Room: r, AttachmentID: a, UserID: u, Side: dealroom.Staff, Views: 1, First: t0, Last: t0}
	}
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{
		People: []room.PersonDelta{person("r1", "bob"), person("r1", "alice"), person("r10", "alice"), person("r1x", "bob")},
		Files:  []room.FileDelta{file("r1", "b", "alice"), file("r1", "a", "bob"), file("r1", "a", "alice"), file("r10", "a", "bob")},
	}))
	got, err := es.RoomEngagement(f.ctx, "r1")
	require.NoError(t, err)
	var people, files []string
	for _, p := range got.People {
		people = append(people, p.UserID)
	}
	for _, x := range got.Files {
		files = append(files, x.AttachmentID+"/"+x.UserID)
	}
	assert.Equal(t, []string{"alice", "bob"}, people, "by user, this room's only")
	assert.Equal(t, []string{"a/alice", "a/bob", "b/alice"}, files, "by file, then user, this room's only")

	none, err := es.RoomEngagement(f.ctx, "r2")
	require.NoError(t, err)
	assert.Empty(t, none.People)
	assert.Empty(t, none.Files)
}

func testCustomerDays(t *testing.T, open Opener) {
	f := newFixture(t, open)
	es := engagementStore(t, f)
	none, err := es.CustomerDays(f.ctx, []string{"r1"}, "2026-03-01", "2026-03-14")
	require.NoError(t, err)
	assert.Empty(t, none, "nothing recorded yet")
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{Days: []room.DayDelta{
		{Room: "r1", Day: "2026-02-28", Visits: 9},
		{Room: "r1", Day: "2026-03-01", Visits: 1},
		{Room: "r1", Day: "2026-03-05", Visits: 2, Files: 1},
		{Room: "r1", Day: "2026-03-14", Files: 4},
		{Room: "r1", Day: "2026-03-15", Visits: 9},
		{Room: "r2", Day: "2026-03-05", Visits: 3},
		{Room: "r10", Day: "2026-03-05", Visits: 5},
	}}))
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{Days: []room.DayDelta{
		{Room: "r1", Day: "2026-03-05", Visits: 1},
	}}))
	got, err := es.CustomerDays(f.ctx, []string{"r1", "r2", "r3"}, "2026-03-01", "2026-03-14")
	require.NoError(t, err)
	assert.Equal(t, map[string][]room.DayActivity{
		"r1": {{Day: "2026-03-01", Visits: 1}, {Day: "2026-03-05", Visits: 3, Files: 1}, {Day: "2026-03-14", Files: 4}},
		"r2": {{Day: "2026-03-05", Visits: 3}},
	}, got, "the span's days only, inclusive, of the rooms asked; days add up")
}

// tally returns a Tally over the fixture's store on a clock of its own.
func tally(t *testing.T, f *fixture) (*room.Tally, *testclock.Clock) {
	c := testclock.New(t0)
	return &room.Tally{Store: engagementStore(t, f), Now: c.Now}, c
}

func person(t *testing.T, f *fixture, roomID, user string) room.PersonEngagement {
	t.Helper()
	got, err := engagementStore(t, f).RoomEngagement(f.ctx, roomID)
	require.NoError(t, err)
	for _, p := range got.People {
		if p.UserID == user {
			return p
		}
	}
	return room.PersonEngagement{}
}

// testTallyVisits: a visit is a device viewing after 30 minutes without;
// time runs while viewing, each stretch capped; nothing is written until
// a flush, and a flush with nothing to write writes nothing.
func testTallyVisits(t *testing.T, open Opener) {
	f := newFixture(t, open)
	tl, clock := tally(t, f)
	flush := func() {
		t.Helper()
		require.NoError(t, tl.Flush(f.ctx))
	}

	tl.Viewing("r1", "carol", dealroom.Customer, room.Phone, "c1")
	assert.Zero(t, person(t, f, "r1", "carol").Visits, "nothing is written before a flush")
	clock.Advance(4 * time.Minute)
	tl.Viewing("r1", "carol", dealroom.Customer, room.Phone, "c2") // a second tab: the same visit
	clock.Advance(time.Minute)
	tl.Away("r1", "carol", room.Phone, "c1")
	tl.Away("r1", "carol", room.Phone, "c2")
	flush()
	p := person(t, f, "r1", "carol")
	assert.Equal(t, 1, p.Visits)
	assert.Equal(t, 5*time.Minute, p.Time)
	assert.Equal(t, t0, p.FirstVisit)
	assert.Equal(t, t0, p.LastVisit)

	clock.Advance(20 * time.Minute) // back within 30 minutes: the same visit
	tl.Viewing("r1", "carol", dealroom.Customer, room.Phone, "c3")
	clock.Advance(3 * time.Hour) // left open all afternoon
	tl.Away("r1", "carol", room.Phone, "c3")
	flush()
	p = person(t, f, "r1", "carol")
	assert.Equal(t, 1, p.Visits)
	assert.Equal(t, 5*time.Minute+room.IdleCap, p.Time, "a stretch counts at most IdleCap")

	clock.Advance(31 * time.Minute)
	later := clock.Now()
	tl.Page("r1", "carol", dealroom.Customer, room.Desktop) // another device kind
	tl.Viewing("r1", "carol", dealroom.Customer, room.Phone, "c4")
	clock.Advance(time.Minute)
	tl.Viewing("r1", "carol", dealroom.Customer, room.Phone, "c4") // typing, then viewing: a sign of her
	clock.Advance(2 * time.Minute)
	tl.Away("r1", "carol", room.Phone, "c4")
	tl.Away("r1", "carol", room.Phone, "never-seen") // a no-op
	flush()
	p = person(t, f, "r1", "carol")
	assert.Equal(t, 3, p.Visits)
	assert.Equal(t, map[room.DeviceKind]int{room.Phone: 2, room.Desktop: 1}, p.Devices)
	assert.Equal(t, 8*time.Minute+room.IdleCap, p.Time)
	assert.Equal(t, t0, p.FirstVisit)
	assert.Equal(t, later, p.LastVisit)

	before, err := engagementStore(t, f).CustomerDays(f.ctx, []string{"r1"}, room.Day(t0), room.Day(t0))
	require.NoError(t, err)
	flush() // nothing waits
	after, err := engagementStore(t, f).CustomerDays(f.ctx, []string{"r1"}, room.Day(t0), room.Day(t0))
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Equal(t, []room.DayActivity{{Day: room.Day(t0), Visits: 3}}, after["r1"], "the customer side's visits by day")

	tl.Viewing("r1", "alice", dealroom.Staff, room.Desktop, "a1")
	flush()
	after, err = engagementStore(t, f).CustomerDays(f.ctx, []string{"r1"}, room.Day(t0), room.Day(t0))
	require.NoError(t, err)
	assert.Equal(t, []room.DayActivity{{Day: room.Day(t0), Visits: 3}}, after["r1"], "staff visits are not the customer's activity")
	assert.Equal(t, 1, person(t, f, "r1", "alice").Visits)
}

func testTallyFiles(t *testing.T, open Opener) {
	f := newFixture(t, open)
	tl, clock := tally(t, f)
	tl.File("r1", "a1", "carol", dealroom.Customer, true)
	clock.Advance(time.Hour)
	tl.File("r1", "a1", "carol", dealroom.Customer, true)
	tl.File("r1", "a1", "carol", dealroom.Customer, false)
	tl.File("r1", "a1", "alice", dealroom.Staff, false)
	require.NoError(t, tl.Flush(f.ctx))
	got, err := engagementStore(t, f).RoomEngagement(f.ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, []room.FileEngagement{
		{AttachmentID: "a1", UserID: "alice", Side: dealroom.Staff, Views: 1, First: t0.Add(time.Hour), Last: t0.Add(time.Hour)},
		{AttachmentID: "a1", UserID: "carol", Side: dealroom.Customer, Views: 1, Downloads: 2, First: t0, Last: t0.Add(time.Hour)},
	}, got.Files)
	days, err := engagementStore(t, f).CustomerDays(f.ctx, []string{"r1"}, room.Day(t0), room.Day(t0))
	require.NoError(t, err)
	assert.Equal(t, []room.DayActivity{{Day: room.Day(t0), Files: 3}}, days["r1"])
}

// testEngagementAccess: staff get the room's figures; customers get 403
// there and their own record; non-members 404; people who left drop out.
func testEngagementAccess(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	tl, _ := tally(t, f)
	tl.Page(r, Carol.ID, dealroom.Customer, room.Phone)
	tl.Page(r, Bob.ID, dealroom.Staff, room.Desktop)
	tl.Page(r, "gone", dealroom.Customer, room.Desktop)
	require.NoError(t, tl.Flush(f.ctx))

	for _, a := range []dealroom.Actor{Alice, Bob, Mike} {
		e, err := f.svc.Engagement(f.ctx, a, r)
		require.NoError(t, err, a.ID)
		var names []string
		for _, p := range e.People {
			names = append(names, p.Name)
		}
		assert.Equal(t, []string{"Bob Engineer", "Carol Buyer"}, names, "members only, by user id (%s)", a.ID)
		assert.Equal(t, 1, e.People[1].Visits)
		assert.Equal(t, map[room.DeviceKind]int{room.Phone: 1}, e.People[1].Devices)
	}
	_, err := f.svc.Engagement(f.ctx, Carol, r)
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "a customer never gets the staff's figures")
	outsider := dealroom.Actor{ID: "zed", Name: "Zed", Kind: dealroom.Customer}
	_, err = f.svc.Engagement(f.ctx, outsider, r)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	_, err = f.svc.EngagementOf(f.ctx, outsider, r)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))

	mine, err := f.svc.EngagementOf(f.ctx, Carol, r)
	require.NoError(t, err)
	assert.Equal(t, Carol.ID, mine.Person.UserID)
	assert.Equal(t, 1, mine.Person.Visits)
	assert.Equal(t, room.EngagementStatement, mine.Statement)
	none, err := f.svc.EngagementOf(f.ctx, Alice, r)
	require.NoError(t, err)
	assert.Equal(t, 0, none.Person.Visits, "someone who never came has an empty record")

	_, err = f.svc.RemoveMember(f.ctx, Alice, r, Carol.ID, "")
	require.NoError(t, err)
	e, err := f.svc.Engagement(f.ctx, Alice, r)
	require.NoError(t, err)
	require.Len(t, e.People, 1)
	assert.Equal(t, Bob.ID, e.People[0].UserID, "a removed member is left out")
}

// testFileReads: "seen by" of files shows both sides to both sides, but an
// internal file to staff only, and no counts.
func testFileReads(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	up := func(name string, v dealroom.Visibility) room.Attachment {
		t.Helper()
		at, err := f.svc.AddAttachment(f.ctx, Alice, r, room.Upload{Name: name, ContentType: "application/pdf",
			Visibility: v, Blob: room.Blob{SHA256: "ab", Size: 3}}, "")
		require.NoError(t, err)
		return at
	}
	shared, internal := up("proposal.pdf", dealroom.Shared), up("pricing.pdf", dealroom.Internal)
	tl, _ := tally(t, f)
	tl.File(r, shared.ID, Carol.ID, dealroom.Customer, true)
	tl.File(r, shared.ID, Bob.ID, dealroom.Staff, false)
	tl.File(r, internal.ID, Bob.ID, dealroom.Staff, true)
	require.NoError(t, tl.Flush(f.ctx))

	seen := func(a dealroom.Actor) map[string][]string {
		t.Helper()
		fs, err := f.svc.FileReads(f.ctx, a, r)
		require.NoError(t, err)
		out := map[string][]string{}
		for _, x := range fs {
			for _, s := range x.SeenBy {
				out[x.AttachmentID] = append(out[x.AttachmentID], s.UserID)
				assert.Equal(t, t0, s.At)
			}
		}
		return out
	}
	assert.Equal(t, map[string][]string{shared.ID: {Bob.ID, Carol.ID}, internal.ID: {Bob.ID}}, seen(Alice))
	assert.Equal(t, map[string][]string{shared.ID: {Bob.ID, Carol.ID}}, seen(Carol), "no internal file for a customer")
	_, err := f.svc.FileReads(f.ctx, dealroom.Actor{ID: "zed", Kind: dealroom.Customer}, r)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))

	mine, err := f.svc.EngagementOf(f.ctx, Bob, r)
	require.NoError(t, err)
	assert.Len(t, mine.Files, 2)
	e, err := f.svc.Engagement(f.ctx, Alice, r)
	require.NoError(t, err)
	require.Len(t, e.Files, 2)
	byName := map[string]room.FileView{}
	for _, x := range e.Files {
		byName[x.Name] = x
	}
	assert.Equal(t, 1, byName["proposal.pdf"].Views)
	assert.Equal(t, 1, byName["proposal.pdf"].Downloads)
	assert.Len(t, byName["proposal.pdf"].By, 2)
	assert.Equal(t, 1, byName["pricing.pdf"].Downloads)
}

// testSignals: the signal of each room staff list (and of each card of
// the pipeline), from the customer side's activity of the last 14 days,
// on a clock the test sets.
func testSignals(t *testing.T, open Opener) {
	f := newFixture(t, open)
	es := engagementStore(t, f)
	now := time.Date(2026, 3, 20, 15, 0, 0, 0, time.UTC) // the last 7 days: 14th to 20th
	clock := testclock.New(now)
	svc := &room.Service{Store: f.store, Now: clock.Now}
	rising, steady, cooling, silent := f.room(t), f.room(t), f.room(t), f.room(t)
	require.NoError(t, es.AddEngagement(f.ctx, room.EngagementDelta{Days: []room.DayDelta{
		{Room: rising, Day: "2026-03-10", Visits: 1},
		{Room: rising, Day: "2026-03-18", Visits: 2, Files: 1},
		{Room: steady, Day: "2026-03-07", Visits: 4},
		{Room: steady, Day: "2026-03-14", Visits: 4},
		{Room: cooling, Day: "2026-03-13", Visits: 4},
		{Room: cooling, Day: "2026-03-20", Visits: 2},
		{Room: silent, Day: "2026-03-06", Visits: 40}, // 15 days ago: out of the span
	}}))
	want := map[string]room.Signal{rising: room.Rising, steady: room.Steady, cooling: room.Cooling, silent: room.Silent}

	listed, err := svc.Rooms(f.ctx, Alice, room.RoomFilter{})
	require.NoError(t, err)
	got, err := svc.Signals(f.ctx, Alice, listed)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	e, err := svc.Engagement(f.ctx, Alice, cooling)
	require.NoError(t, err)
	assert.Equal(t, room.Cooling, e.Signal)

	// The pipeline's cards carry the same signals, and filter by them.
	p, err := svc.Pipeline(f.ctx, Alice, room.PipelineFilter{})
	require.NoError(t, err)
	cards := map[string]room.Signal{}
	for _, c := range p.Cards {
		cards[c.Room.ID] = c.Engagement
	}
	assert.Equal(t, want, cards)
	p, err = svc.Pipeline(f.ctx, Alice, room.PipelineFilter{Engagement: room.Cooling})
	require.NoError(t, err)
	require.Len(t, p.Cards, 1)
	assert.Equal(t, cooling, p.Cards[0].Room.ID)
	_, err = svc.Pipeline(f.ctx, Alice, room.PipelineFilter{Engagement: "warm"})
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))

	listed, err = svc.Rooms(f.ctx, Carol, room.RoomFilter{})
	require.NoError(t, err)
	got, err = svc.Signals(f.ctx, Carol, listed)
	require.NoError(t, err)
	assert.Empty(t, got, "customers get no signal")

	clock.Advance(7 * 24 * time.Hour) // a week on, the rising room's activity is the week before
	listed, err = svc.Rooms(f.ctx, Alice, room.RoomFilter{})
	require.NoError(t, err)
	got, err = svc.Signals(f.ctx, Alice, listed)
	require.NoError(t, err)
	assert.Equal(t, room.Cooling, got[rising])
	assert.Equal(t, room.Cooling, got[steady], "none this week, some the week before")

	clock.Advance(7 * 24 * time.Hour)
	got, err = svc.Signals(f.ctx, Alice, listed)
	require.NoError(t, err)
	for _, r := range []string{rising, steady, cooling, silent} {
		assert.Equal(t, room.Silent, got[r], "nothing in 14 days")
	}
}

// testInvitePreview: a pending invite's code shows the room's name and
// who invited; any other code is the same not found.
func testInvitePreview(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	invite := func() room.NewInvite {
		t.Helper()
		inv, err := f.svc.CreateInvite(f.ctx, Alice, r, room.InviteDraft{Email: "dan@acme.example"}, "")
		require.NoError(t, err)
		return inv
	}
	pending := invite()
	p, err := f.svc.PreviewInvite(f.ctx, pending.Code)
	require.NoError(t, err)
	assert.Equal(t, room.InvitePreview{Room: "Acme renewal", InvitedBy: "Alice Rep"}, p)

	revoked := invite()
	_, err = f.svc.RevokeInvite(f.ctx, Alice, r, revoked.ID, "")
	require.NoError(t, err)
	used := invite()
	_, _, err = f.svc.AcceptInvite(f.ctx, used.Code, room.Acceptance{Name: "Dan", Email: "dan@acme.example"})
	require.NoError(t, err)
	for name, code := range map[string]string{"revoked": revoked.Code, "used": used.Code, "unknown": "nope", "empty": ""} {
		_, err := f.svc.PreviewInvite(f.ctx, code)
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), name)
		assert.Equal(t, "not_found: this invite link is not valid", err.Error(), "one answer for every code (%s)", name)
	}
}
