package roomtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

// TestPipeline runs the conformance suite of commitments, plan health and
// the pipeline's read model (room.BriefStore) against the stores open
// makes (each must implement room.BriefStore).
func TestPipeline(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"CommitmentHistoryReplays", testCommitmentHistory},
		{"InternalStepsMakeNoCommitment", testInternalCommitment},
		{"CloseWindowHistory", testCloseWindowHistory},
		{"PipelineCardsAndHealth", testPipelineCards},
		{"PipelineAccess", testPipelineAccess},
		{"PipelineQuietRooms", testPipelineQuiet},
		{"PipelineOfManyRooms", testPipelineMany},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

func days(n int) *int { return &n }

func day(s string) *task.Date {
	d, err := task.ParseDate("due", s)
	if err != nil {
		panic(err)
	}
	return &d
}

func (f *fixture) step(t *testing.T, a dealroom.Actor, roomID, title string, due *task.Date, vis dealroom.Visibility) task.Task {
	t.Helper()
	res, err := f.svc.CreateTask(f.ctx, a, roomID, task.Draft{Title: title, Due: due, Visibility: vis}, "")
	require.NoError(t, err)
	return res.Task
}

func (f *fixture) move(t *testing.T, a dealroom.Actor, roomID, id string, due *task.Date) task.Task {
	t.Helper()
	res, err := f.svc.UpdateTask(f.ctx, a, roomID, id, task.Patch{Due: dealroom.Some(*due)}, "")
	require.NoError(t, err)
	return res.Task
}

func (f *fixture) confirm(t *testing.T, a dealroom.Actor, roomID, id string, due *task.Date) task.Task {
	t.Helper()
	res, err := f.svc.ConfirmDue(f.ctx, a, roomID, id, room.DueConfirmation{Due: *due}, "")
	require.NoError(t, err)
	return res.Task
}

// commitmentsOf replays a step's commitment from the timeline as a client
// would: the created task's, then each change's "to".
func commitmentsOf(t *testing.T, evs []room.Event, id string) []*task.Commitment {
	t.Helper()
	var out []*task.Commitment
	for _, e := range evs {
		switch e.Type {
		case room.TaskCreated:
			var tk task.Task
			require.NoError(t, json.Unmarshal(e.Data, &tk))
			if tk.ID == id {
				out = append(out, tk.Commitment)
			}
		case room.TaskUpdated:
			var tk task.Task
			require.NoError(t, json.Unmarshal(e.Data, &tk))
			c, ok := e.Changes["commitment"]
			if tk.ID != id || !ok {
				continue
			}
			var from, to *task.Commitment
			require.NoError(t, json.Unmarshal(c.From, &from))
			require.NoError(t, json.Unmarshal(c.To, &to))
			require.NotEmpty(t, out)
			assert.Equal(t, out[len(out)-1], from, "each change starts where the one before ended")
			assert.Equal(t, tk.Commitment, to, "the change's end is the task's data")
			out = append(out, to)
		}
	}
	return out
}

func testCommitmentHistory(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	s := f.step(t, Alice, r, "Security review", day("2026-03-20"), dealroom.Shared)
	require.NotNil(t, s.Commitment)
	assert.Equal(t, task.Proposed, s.Commitment.State)
	assert.Equal(t, "alice", s.Commitment.ProposedBy)
	assert.Equal(t, dealroom.Staff, s.Commitment.ProposedSide)

	// The side that proposed cannot confirm; a stale date is not confirmed.
	_, err := f.svc.ConfirmDue(f.ctx, Bob, r, s.ID, room.DueConfirmation{Due: *day("2026-03-20")}, "")
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "staff proposed: staff cannot confirm")
	_, err = f.svc.ConfirmDue(f.ctx, Carol, r, s.ID, room.DueConfirmation{Due: *day("2026-03-21")}, "")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "a date that is not the step's")

	c := f.confirm(t, Carol, r, s.ID, day("2026-03-20"))
	assert.Equal(t, task.Confirmed, c.Commitment.State)
	assert.Equal(t, "carol", c.Commitment.ConfirmedBy)
	head := f.head(t, r)
	again := f.confirm(t, Carol, r, s.ID, day("2026-03-20"))
	assert.Equal(t, task.Confirmed, again.Commitment.State)
	assert.Equal(t, head, f.head(t, r), "confirming a confirmed date writes nothing")

	sl := f.move(t, Alice, r, s.ID, day("2026-03-25"))
	assert.Equal(t, task.Slipped, sl.Commitment.State)
	assert.Equal(t, 1, sl.Commitment.Slips)
	assert.Equal(t, 5, sl.Commitment.SlippedDays)
	sl = f.move(t, Alice, r, s.ID, day("2026-03-27"))
	assert.Equal(t, 2, sl.Commitment.Slips, "slipped again before it was confirmed again")
	ch := f.move(t, Alice, r, s.ID, day("2026-03-18"))
	assert.Equal(t, task.Changed, ch.Commitment.State, "earlier than confirmed: changed, not slipped")
	assert.Equal(t, 0, ch.Commitment.SlippedDays)
	c = f.confirm(t, Carol, r, s.ID, day("2026-03-18"))
	assert.Equal(t, task.Confirmed, c.Commitment.State)
	assert.Equal(t, day("2026-03-20"), c.Commitment.Promised, "the first promise is kept")
	assert.Equal(t, 2, c.Commitment.Slips, "the history of slips stays")

	// The customer proposes, staff confirm.
	cs := f.step(t, Carol, r, "Sign the order form", day("2026-04-01"), dealroom.Shared)
	assert.Equal(t, dealroom.Customer, cs.Commitment.ProposedSide)
	_, err = f.svc.ConfirmDue(f.ctx, Carol, r, cs.ID, room.DueConfirmation{Due: *day("2026-04-01")}, "")
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err))
	f.confirm(t, Alice, r, cs.ID, day("2026-04-01"))

	// The timeline replays the history exactly, to staff and customers.
	stored, err := f.store.Task(f.ctx, r, s.ID)
	require.NoError(t, err)
	for _, shared := range []bool{false, true} {
		evs, err := f.store.Events(f.ctx, r, 0, 1000, shared)
		require.NoError(t, err)
		hist := commitmentsOf(t, evs, s.ID)
		var states []task.CommitState
		for _, c := range hist {
			states = append(states, c.State)
		}
		assert.Equal(t, []task.CommitState{task.Proposed, task.Confirmed, task.Slipped, task.Slipped, task.Changed, task.Confirmed}, states)
		assert.Equal(t, stored.Commitment, hist[len(hist)-1], "the replayed commitment is the stored one")
	}

	// A step without a date has no commitment; removing the date ends it.
	nd := f.move(t, Alice, r, s.ID, day("2026-03-18"))
	assert.NotNil(t, nd.Commitment)
	res, err := f.svc.UpdateTask(f.ctx, Alice, r, s.ID, task.Patch{Due: dealroom.Opt[task.Date]{Set: true, Null: true}}, "")
	require.NoError(t, err)
	assert.Nil(t, res.Commitment)
	_, err = f.svc.ConfirmDue(f.ctx, Carol, r, s.ID, room.DueConfirmation{Due: *day("2026-03-18")}, "")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))
}

func testInternalCommitment(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	in := f.step(t, Alice, r, "Discount approval", day("2026-03-10"), dealroom.Internal)
	assert.Nil(t, in.Commitment, "an internal step has no other side to commit to")
	_, err := f.svc.ConfirmDue(f.ctx, Bob, r, in.ID, room.DueConfirmation{Due: *day("2026-03-10")}, "")
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))
	_, err = f.svc.ConfirmDue(f.ctx, Carol, r, in.ID, room.DueConfirmation{Due: *day("2026-03-10")}, "")
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "customers do not see internal steps")

	// Made shared, its date becomes a proposal of the side that shared it.
	res, err := f.svc.UpdateTask(f.ctx, Bob, r, in.ID, task.Patch{Visibility: dealroom.Some(dealroom.Shared)}, "")
	require.NoError(t, err)
	require.NotNil(t, res.Commitment)
	assert.Equal(t, task.Proposed, res.Commitment.State)
	assert.Equal(t, "bob", res.Commitment.ProposedBy)
}

func testCloseWindowHistory(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: "Globex", Company: "Globex", CloseWindow: room.ThisMonth}, "")
	require.NoError(t, err)
	require.NotNil(t, r.Forecast)
	assert.Equal(t, "2026-03", r.Forecast.CloseBy)
	for _, w := range []room.CloseWindow{room.NextMonth, room.Quarter, room.ThisMonth, room.HalfYear} {
		_, err := f.svc.UpdateRoom(f.ctx, Mike, r.ID, room.Patch{CloseWindow: dealroom.Some(w)}, "")
		require.NoError(t, err)
	}
	got, err := f.store.Room(f.ctx, r.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Forecast)
	assert.Equal(t, 4, got.Forecast.Moves)
	assert.Equal(t, 3, got.Forecast.Slips, "next month, quarter and half year slid; this month did not")
	assert.Equal(t, "2026-08", got.Forecast.CloseBy)
	assert.Equal(t, "mike", got.Forecast.SetBy)

	// Who moved it, from what to what: in the staff timeline only.
	evs := f.events(t, r.ID)
	var moves []string
	for _, e := range evs {
		if c, ok := e.Changes["close_window"]; ok {
			assert.Equal(t, dealroom.Internal, e.Visibility)
			assert.Equal(t, "mike", e.Actor.ID)
			assert.Contains(t, e.Changes, "forecast")
			moves = append(moves, string(c.From)+">"+string(c.To))
		}
	}
	assert.Equal(t, []string{`"this_month">"next_month"`, `"next_month">"quarter"`, `"quarter">"this_month"`, `"this_month">"half_year"`}, moves)
	shared, err := f.store.Events(f.ctx, r.ID, 0, 1000, true)
	require.NoError(t, err)
	for _, e := range shared {
		ce, ok := e.ForCustomer()
		require.True(t, ok)
		assert.NotContains(t, string(ce.Data), "forecast")
	}
}

// planRoom makes a room whose shared plan has one step of each health
// figure, an internal overdue step, a done step and an undated one, on
// 2026-03-02; the clock then moves to 2026-03-12.
func (f *fixture) planRoom(t *testing.T, name string) string {
	t.Helper()
	r, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: name, Company: "Acme", CloseWindow: room.NextMonth}, "")
	require.NoError(t, err)
	for _, a := range []dealroom.Actor{Bob, Carol} {
		_, err := f.svc.AddMember(f.ctx, Alice, r.ID, room.MemberDraft{UserID: a.ID, Name: a.Name, Kind: a.Kind}, "")
		require.NoError(t, err)
	}
	onTime := f.step(t, Alice, r.ID, "Pilot review", day("2026-03-20"), dealroom.Shared)
	f.confirm(t, Carol, r.ID, onTime.ID, day("2026-03-20"))
	slipped := f.step(t, Alice, r.ID, "Legal review", day("2026-03-15"), dealroom.Shared)
	f.confirm(t, Carol, r.ID, slipped.ID, day("2026-03-15"))
	f.move(t, Alice, r.ID, slipped.ID, day("2026-03-25"))
	f.step(t, Carol, r.ID, "Budget sign-off", day("2026-03-30"), dealroom.Shared)
	late := f.step(t, Alice, r.ID, "Send the proposal", day("2026-03-05"), dealroom.Shared)
	res, err := f.svc.UpdateTask(f.ctx, Alice, r.ID, late.ID, task.Patch{Assignees: dealroom.Some([]string{"bob"})}, "")
	require.NoError(t, err)
	require.Equal(t, []string{"bob"}, res.Assignees)
	f.step(t, Bob, r.ID, "Internal pricing check", day("2026-03-06"), dealroom.Internal)
	done := f.step(t, Alice, r.ID, "Kick-off", day("2026-03-03"), dealroom.Shared)
	_, err = f.svc.UpdateTask(f.ctx, Alice, r.ID, done.ID, task.Patch{Status: dealroom.Some(task.Done)}, "")
	require.NoError(t, err)
	f.step(t, Alice, r.ID, "Some day", nil, dealroom.Shared)
	gone := f.step(t, Alice, r.ID, "Deleted step", day("2026-03-01"), dealroom.Shared)
	_, err = f.svc.DeleteTask(f.ctx, Alice, r.ID, gone.ID, "")
	require.NoError(t, err)
	return r.ID
}

func testPipelineCards(t *testing.T, open Opener) {
	f := newFixture(t, open)
	_, ok := f.store.(room.BriefStore)
	require.True(t, ok, "the store keeps no briefs (room.BriefStore)")
	r := f.planRoom(t, "Acme renewal")
	f.advance(10 * 24 * time.Hour)

	h, err := f.svc.PlanHealth(f.ctx, Carol, r)
	require.NoError(t, err)
	// On time: the pilot review (confirmed) and the kick-off (done).
	score := 40
	want := room.Health{Steps: 6, Dated: 5, OnTime: 2, Slipped: 1, Unconfirmed: 1, Overdue: 1, Score: &score}
	assert.Equal(t, want, h)
	h2, err := f.svc.PlanHealth(f.ctx, Alice, r)
	require.NoError(t, err)
	assert.Equal(t, h, h2, "both sides see the same figure")

	p, err := f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Equal(t, "2026-03-12", p.AsOf.String())
	require.Len(t, p.Cards, 1)
	c := p.Cards[0]
	assert.Equal(t, r, c.Room.ID)
	assert.Equal(t, "Alice Rep", c.Owner.Name)
	assert.Equal(t, h, c.Health)
	assert.Equal(t, 2, c.Overdue, "the internal overdue step counts on the card")
	require.NotNil(t, c.NextStep)
	assert.Equal(t, "Send the proposal", c.NextStep.Title, "the open step due first")
	require.Len(t, p.Overdue, 2)
	assert.Equal(t, "Send the proposal", p.Overdue[0].Step.Title)
	assert.Equal(t, []string{"Bob Engineer"}, p.Overdue[0].Owners)
	assert.Equal(t, "Internal pricing check", p.Overdue[1].Step.Title)
	assert.Equal(t, 0, c.Room.Forecast.Slips)

	// Filters narrow the cards.
	for _, tc := range []struct {
		f    room.PipelineFilter
		want int
	}{
		{room.PipelineFilter{CloseWindow: room.NextMonth}, 1},
		{room.PipelineFilter{CloseWindow: room.ThisMonth}, 0},
		{room.PipelineFilter{Owner: "alice"}, 1},
		{room.PipelineFilter{Owner: "bob"}, 0},
		{room.PipelineFilter{Stage: room.Discovery}, 1},
		{room.PipelineFilter{Stage: room.Signing}, 0},
	} {
		p, err := f.svc.Pipeline(f.ctx, Mike, tc.f)
		require.NoError(t, err)
		assert.Len(t, p.Cards, tc.want, "%+v", tc.f)
	}

	// The brief follows renames and the forecast its moves.
	_, err = f.svc.UpdateMember(f.ctx, Alice, r, "alice", room.MemberPatch{Name: dealroom.Some("Alice R.")}, "")
	require.NoError(t, err)
	_, err = f.svc.UpdateRoom(f.ctx, Alice, r, room.Patch{CloseWindow: dealroom.Some(room.Quarter)}, "")
	require.NoError(t, err)
	p, err = f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Equal(t, "Alice R.", p.Cards[0].Owner.Name)
	assert.Equal(t, 1, p.Cards[0].Room.Forecast.Slips)

	// The brief holds what the tasks hold.
	bs := f.store.(room.BriefStore)
	briefs, err := bs.Briefs(f.ctx, []string{r})
	require.NoError(t, err)
	ts, err := f.store.Tasks(f.ctx, r)
	require.NoError(t, err)
	require.Len(t, briefs[r].Steps, len(ts))
	for i := range ts {
		assert.Equal(t, ts[i].ID, briefs[r].Steps[i].ID)
		assert.Equal(t, room.StepOf(ts[i]), briefs[r].Steps[i])
	}
}

func testPipelineAccess(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.planRoom(t, "Acme renewal")
	_, err := f.svc.Pipeline(f.ctx, Carol, room.PipelineFilter{})
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "customers get no pipeline")
	_, err = f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{QuietDays: days(-1)})
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))

	bob, err := f.svc.Pipeline(f.ctx, Bob, room.PipelineFilter{})
	require.NoError(t, err)
	require.Len(t, bob.Cards, 1, "a rep sees the rooms they are staff in")
	dana := dealroom.Actor{ID: "dana", Name: "Dana Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
	p, err := f.svc.Pipeline(f.ctx, dana, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Empty(t, p.Cards, "a rep who is no member sees nothing")
	// A staff member let in as a customer sees the room as customers do:
	// not on the pipeline.
	_, err = f.svc.AddMember(f.ctx, Alice, r, room.MemberDraft{UserID: "dana", Name: "Dana", Kind: dealroom.Customer}, "")
	require.NoError(t, err)
	p, err = f.svc.Pipeline(f.ctx, dana, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Empty(t, p.Cards)
	_, err = f.svc.PlanHealth(f.ctx, dealroom.Actor{ID: "eve", Kind: dealroom.Customer}, r)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
}

func testPipelineQuiet(t *testing.T, open Opener) {
	f := newFixture(t, open)
	r := f.room(t)
	f.advance(15 * 24 * time.Hour)
	p, err := f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Equal(t, []string{r}, p.Quiet, "no customer touch in 15 days")
	assert.True(t, p.Cards[0].Quiet)
	p, err = f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{QuietDays: days(30)})
	require.NoError(t, err)
	assert.Empty(t, p.Quiet)

	_, err = f.svc.PostMessage(f.ctx, Carol, r, room.MessageDraft{Body: "Back from holiday"}, "")
	require.NoError(t, err)
	p, err = f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Empty(t, p.Quiet, "the customer wrote")

	_, err = f.svc.UpdateRoom(f.ctx, Alice, r, room.Patch{Stage: dealroom.Some(room.Won)}, "")
	require.NoError(t, err)
	f.advance(30 * 24 * time.Hour)
	p, err = f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Empty(t, p.Quiet, "a won deal is not quiet")
}

// testPipelineMany: a pipeline of more rooms than a store may read one by
// one (the MongoDB store then reads all briefs at once), for a rep who is in
// most of them.
func testPipelineMany(t *testing.T, open Opener) {
	f := newFixture(t, open)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 120 {
		id := fmt.Sprintf("r_many%04d", i)
		_, err := f.store.Execute(f.ctx, room.Command{Room: id, Actor: Alice.ID, At: at,
			Decide: func(room.View) (room.Decision, error) { return room.Decision{Event: benchRoom(id, i, 5, at)}, nil }})
		require.NoError(t, err)
	}
	for i := range 30 {
		_, err := f.svc.CreateRoom(f.ctx, Alice, room.Draft{Name: fmt.Sprintf("Alice alone %d", i), Company: "Solo"}, "")
		require.NoError(t, err)
	}
	bob, err := f.svc.Pipeline(f.ctx, Bob, room.PipelineFilter{})
	require.NoError(t, err)
	require.Len(t, bob.Cards, 120, "Bob's rooms, not Alice's others")
	for _, c := range bob.Cards {
		assert.Contains(t, c.Room.ID, "r_many")
		assert.Len(t, c.Room.ID, len("r_many0000"))
		assert.Equal(t, 4, c.Health.Steps, "the shared steps of each room (one of five is internal)")
		assert.Equal(t, "Alice Rep", c.Owner.Name)
	}
	mike, err := f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{})
	require.NoError(t, err)
	assert.Len(t, mike.Cards, 150)
	some, err := f.svc.Pipeline(f.ctx, Mike, room.PipelineFilter{Stage: room.Solution})
	require.NoError(t, err)
	assert.Len(t, some.Cards, 30)
}
