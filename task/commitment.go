package task

import (
	"time"

	"dealroom"
)

// CommitState is where a step's due date stands between the two sides of
// the deal: the seller's staff and the customer's people.
type CommitState string

// The commitment states.
const (
	// Proposed: one side set the date; the other side has not confirmed
	// it, and no date of the step was ever confirmed.
	Proposed CommitState = "proposed"
	// Confirmed: the other side confirmed the current date.
	Confirmed CommitState = "confirmed"
	// Changed: a confirmed date was moved, not later than the date last
	// confirmed, and the new one is not confirmed yet.
	Changed CommitState = "changed"
	// Slipped: a confirmed date was moved later than the date last
	// confirmed, and the new one is not confirmed yet.
	Slipped CommitState = "slipped"
)

// Commitment is the promise a shared step's due date stands for: who set
// the date, whether the other side confirmed it, and how often it slipped.
// Its history is the step's events: each change of it is a task.updated
// event with the commitment before and after in its changes.
type Commitment struct {
	State CommitState `json:"state"`
	// ProposedBy set the current date, on side ProposedSide, at ProposedAt.
	ProposedBy   string        `json:"proposed_by"`
	ProposedSide dealroom.Kind `json:"proposed_side"`
	ProposedAt   time.Time     `json:"proposed_at"`
	// ConfirmedBy, ConfirmedAt and ConfirmedDue tell the last
	// confirmation: who, when, and the date confirmed (nil: never).
	ConfirmedBy  string     `json:"confirmed_by,omitempty"`
	ConfirmedAt  *time.Time `json:"confirmed_at,omitempty"`
	ConfirmedDue *Date      `json:"confirmed_due,omitempty"`
	// Promised is the first date the other side ever confirmed.
	Promised *Date `json:"promised,omitempty"`
	// Slips counts the moves to a date later than both the date before
	// and the date last confirmed.
	Slips int `json:"slips"`
	// SlippedDays is how many days the current date lies past Promised
	// (0 when it does not).
	SlippedDays int `json:"slipped_days"`
}

// Clone returns a copy that shares nothing with c (nil for nil).
func (c *Commitment) Clone() *Commitment {
	if c == nil {
		return nil
	}
	cp := *c
	if c.ConfirmedAt != nil {
		t := *c.ConfirmedAt
		cp.ConfirmedAt = &t
	}
	if c.ConfirmedDue != nil {
		d := *c.ConfirmedDue
		cp.ConfirmedDue = &d
	}
	if c.Promised != nil {
		d := *c.Promised
		cp.Promised = &d
	}
	return &cp
}

// Other returns the side that is not k.
func Other(k dealroom.Kind) dealroom.Kind {
	if k == dealroom.Staff {
		return dealroom.Customer
	}
	return dealroom.Staff
}

// Propose returns the commitment of a step whose due date moved from old
// to due, set by user on side at now, after prev (nil: none yet). A step
// without a date carries no commitment. Before any confirmation a new date
// is a new proposal; after one, the date is confirmed again when it comes
// back to the confirmed one, slipped when it is later, changed when it is
// earlier; a move later than both the date before and the confirmed one
// counts a slip.
func Propose(prev *Commitment, old, due *Date, user string, side dealroom.Kind, now time.Time) *Commitment {
	if due == nil {
		return nil
	}
	c := &Commitment{}
	if prev != nil {
		c = prev.Clone()
	}
	c.ProposedBy, c.ProposedSide, c.ProposedAt = user, side, now
	switch {
	case c.ConfirmedDue == nil:
		c.State = Proposed
	case *due == *c.ConfirmedDue:
		c.State = Confirmed
	case c.ConfirmedDue.Before(*due):
		c.State = Slipped
		if old == nil || old.Before(*due) {
			c.Slips++
		}
	default:
		c.State = Changed
	}
	c.SlippedDays = 0
	if c.Promised != nil && c.Promised.Before(*due) {
		c.SlippedDays = DaysBetween(*c.Promised, *due)
	}
	return c
}

// Confirm returns c confirmed for the date due by user on side at now, and
// false when it was confirmed already (nothing changes). Errors: EINVALID
// when the step has no date to confirm; EFORBIDDEN when user is on the
// side that proposed the date (the other side confirms).
func Confirm(c *Commitment, due *Date, user string, side dealroom.Kind, now time.Time) (*Commitment, bool, error) {
	if c == nil || due == nil {
		return nil, false, dealroom.Invalid("due", "the step has no due date to confirm")
	}
	if c.State == Confirmed {
		return c, false, nil
	}
	if side == c.ProposedSide {
		return nil, false, dealroom.Errorf(dealroom.EFORBIDDEN, "the date was proposed by your side: the other side confirms it")
	}
	n := c.Clone()
	d := *due
	at := now
	n.State, n.ConfirmedBy, n.ConfirmedAt, n.ConfirmedDue = Confirmed, user, &at, &d
	if n.Promised == nil {
		p := d
		n.Promised = &p
	}
	return n, true, nil
}

// DaysBetween returns the number of days from a to b (negative when b is
// before a).
func DaysBetween(a, b Date) int {
	ta := time.Date(a.Year, a.Month, a.Day, 0, 0, 0, 0, time.UTC)
	tb := time.Date(b.Year, b.Month, b.Day, 0, 0, 0, 0, time.UTC)
	return int(tb.Sub(ta).Hours() / 24)
}
