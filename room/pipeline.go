package room

import (
	"context"
	"slices"
	"time"

	"dealroom"
	"dealroom/task"
)

// Health is how a room's mutual action plan keeps its dates: its shared
// steps (those both sides see and commit to), each with a due date counted
// in exactly one of OnTime, Slipped, Unconfirmed and Overdue, in that
// order of precedence from the last:
//
//   - Overdue: not done, and due before today (UTC);
//   - Slipped: otherwise, its date was moved later than a date the other
//     side had confirmed, at least once (Commitment.Slips > 0), whether or
//     not the new date was confirmed since;
//   - Unconfirmed: otherwise, it is not done and its current date is not
//     confirmed by the other side (proposed or changed);
//   - OnTime: the rest: never slipped, not overdue, and confirmed or done.
//
// Internal steps are left out: there is no other side to commit to them,
// and customers see the same figure as staff.
type Health struct {
	Steps       int `json:"steps"`
	Dated       int `json:"dated"`
	OnTime      int `json:"on_time"`
	Slipped     int `json:"slipped"`
	Unconfirmed int `json:"unconfirmed"`
	Overdue     int `json:"overdue"`
	// Score is OnTime in whole percent of Dated; nil when no shared step
	// has a date.
	Score *int `json:"score"`
}

// HealthOf measures the health of a plan's steps on day today.
func HealthOf(steps []Step, today task.Date) Health {
	var h Health
	for i := range steps {
		t := &steps[i]
		if t.Visibility != dealroom.Shared {
			continue
		}
		h.Steps++
		if t.Due == nil {
			continue
		}
		h.Dated++
		c := t.Commitment
		switch {
		case t.Status != task.Done && t.Due.Before(today):
			h.Overdue++
		case c != nil && c.Slips > 0:
			h.Slipped++
		case t.Status != task.Done && (c == nil || c.State != task.Confirmed):
			h.Unconfirmed++
		default:
			h.OnTime++
		}
	}
	if h.Dated > 0 {
		score := (100*h.OnTime + h.Dated/2) / h.Dated
		h.Score = &score
	}
	return h
}

// Card is one room on the manager's pipeline.
type Card struct {
	Room  Room   `json:"room"`
	Owner Person `json:"owner"`
	// NextStep is the open step due first (the first open step by
	// position when none has a date); nil when every step is done.
	NextStep *Step  `json:"next_step"`
	Health   Health `json:"health"`
	// Overdue counts the room's open steps due before today, internal
	// ones included.
	Overdue int `json:"overdue"`
	// Quiet says the deal is open and its customers did nothing in it for
	// more than the pipeline's QuietDays.
	Quiet bool `json:"quiet"`
	// Engagement is how the customer side's engagement moves (Signal);
	// empty when the store keeps no engagement.
	Engagement Signal `json:"engagement,omitempty"`
}

// OverdueStep is an open step past its date, with its room.
type OverdueStep struct {
	RoomID   string `json:"room_id"`
	RoomName string `json:"room_name"`
	Step     Step   `json:"step"`
	// Owners are the names of its assignees.
	Owners []string `json:"owners"`
}

// Pipeline is the manager's view across rooms, in one answer.
type Pipeline struct {
	AsOf      task.Date `json:"as_of"`
	QuietDays int       `json:"quiet_days"`
	// Cards are the rooms, newest first.
	Cards []Card `json:"cards"`
	// Overdue are the overdue steps of open rooms, due first.
	Overdue []OverdueStep `json:"overdue"`
	// Quiet are the ids of the open rooms gone quiet, quiet longest first.
	Quiet []string `json:"quiet"`
}

// PipelineFilter narrows the pipeline: the room filter's stage, owner and
// close window, and the days without customer activity that make an open
// room quiet (nil: DefaultQuietDays; 0: every open room without customer
// activity this very moment).
type PipelineFilter struct {
	Stage       Stage
	Owner       string
	CloseWindow CloseWindow
	QuietDays   *int
	// Engagement, when set, keeps the rooms with this signal.
	Engagement Signal
}

// DefaultQuietDays is how long an open room may go without customer
// activity before the pipeline calls it quiet.
const DefaultQuietDays = 14

// briefs returns the store's briefs, EUNAVAILABLE when it keeps none.
func (s *Service) briefs() (BriefStore, error) {
	bs, ok := s.Store.(BriefStore)
	if !ok {
		return nil, dealroom.Errorf(dealroom.EUNAVAILABLE, "this store keeps no plan briefs")
	}
	return bs, nil
}

// Pipeline returns the manager's view of the rooms the actor sees as
// staff (managers and admins: every room; reps: the rooms they are staff
// members of), read from the rooms and their briefs, not from their
// events. Errors: EFORBIDDEN for customers; EINVALID for a bad filter.
func (s *Service) Pipeline(ctx context.Context, a dealroom.Actor, f PipelineFilter) (*Pipeline, error) {
	if a.IsCustomer() {
		return nil, forbidden("the pipeline is for staff")
	}
	quietDays := DefaultQuietDays
	if f.QuietDays != nil {
		quietDays = *f.QuietDays
	}
	if quietDays < 0 || quietDays > 365 {
		return nil, dealroom.Invalid("quiet_days", "quiet_days is a number of days from 0 to 365")
	}
	switch f.Engagement {
	case "", Rising, Steady, Cooling, Silent:
	default:
		return nil, dealroom.Invalid("engagement", "engagement must be rising, steady, cooling or silent")
	}
	bs, err := s.briefs()
	if err != nil {
		return nil, err
	}
	listed, err := s.Rooms(ctx, a, RoomFilter{Stage: f.Stage, Owner: f.Owner, CloseWindow: f.CloseWindow})
	if err != nil {
		return nil, err
	}
	listed = slices.DeleteFunc(listed, func(l Listed) bool { return !l.Perm.Internal })
	ids := make([]string, len(listed))
	for i := range listed {
		ids[i] = listed[i].Room.ID
	}
	signals, err := s.Signals(ctx, a, listed)
	if err != nil {
		return nil, err
	}
	if f.Engagement != "" {
		listed = slices.DeleteFunc(listed, func(l Listed) bool { return signals[l.Room.ID] != f.Engagement })
		ids = ids[:0]
		for i := range listed {
			ids = append(ids, listed[i].Room.ID)
		}
	}
	briefs, err := bs.Briefs(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	p := &Pipeline{AsOf: task.DateOf(now), QuietDays: quietDays, Cards: make([]Card, 0, len(listed)),
		Overdue: []OverdueStep{}, Quiet: []string{}}
	quietSince := map[string]time.Time{}
	for _, l := range listed {
		b := briefs[l.Room.ID]
		c := cardOf(l.Room, &b, p.AsOf)
		c.Engagement = signals[l.Room.ID]
		last := l.Room.CreatedAt
		if l.Room.LastCustomerActivityAt != nil {
			last = *l.Room.LastCustomerActivityAt
		}
		c.Quiet = !l.Room.Closed() && now.Sub(last) > time.Duration(quietDays)*24*time.Hour
		if c.Quiet {
			p.Quiet = append(p.Quiet, l.Room.ID)
			quietSince[l.Room.ID] = last
		}
		if !l.Room.Closed() {
			p.Overdue = append(p.Overdue, overdueSteps(l.Room, &b, p.AsOf)...)
		}
		p.Cards = append(p.Cards, c)
	}
	slices.SortStableFunc(p.Overdue, func(x, y OverdueStep) int { return x.Step.Due.Compare(*y.Step.Due) })
	slices.SortStableFunc(p.Quiet, func(x, y string) int { return quietSince[x].Compare(quietSince[y]) })
	return p, nil
}

// cardOf makes a room's card from its brief.
func cardOf(r Room, b *Brief, today task.Date) Card {
	c := Card{Room: r, Owner: Person{UserID: r.OwnerID, Name: b.Name(r.OwnerID), Kind: dealroom.Staff},
		Health: HealthOf(b.Steps, today)}
	for i := range b.Steps {
		t := &b.Steps[i]
		if t.Status == task.Done {
			continue
		}
		if t.Due != nil && t.Due.Before(today) {
			c.Overdue++
		}
		n := c.NextStep
		if n == nil || t.Due != nil && (n.Due == nil || t.Due.Before(*n.Due)) {
			c.NextStep = t
		}
	}
	return c
}

// overdueSteps returns the open steps of a room due before today.
func overdueSteps(r Room, b *Brief, today task.Date) []OverdueStep {
	var out []OverdueStep
	for _, t := range b.Steps {
		if t.Status == task.Done || t.Due == nil || !t.Due.Before(today) {
			continue
		}
		owners := make([]string, 0, len(t.Assignees))
		for _, u := range t.Assignees {
			if n := b.Name(u); n != "" {
				owners = append(owners, n)
			}
		}
		out = append(out, OverdueStep{RoomID: r.ID, RoomName: r.Name, Step: t, Owners: owners})
	}
	return out
}

// PlanHealth returns the health of a room's plan for a reader who may see
// the room (the same figure for both sides: it counts shared steps only).
// Errors: ENOTFOUND when the actor may not see the room.
func (s *Service) PlanHealth(ctx context.Context, a dealroom.Actor, room string) (Health, error) {
	if _, _, err := s.visibleRoom(ctx, a, room); err != nil {
		return Health{}, err
	}
	bs, err := s.briefs()
	if err != nil {
		return Health{}, err
	}
	m, err := bs.Briefs(ctx, []string{room})
	if err != nil {
		return Health{}, err
	}
	b := m[room]
	return HealthOf(b.Steps, task.DateOf(s.now())), nil
}
