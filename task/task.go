// Package task holds the mutual action plan's unit of work: a task with
// owners on both sides, a due date, a status and a place in the plan, and
// the rules for creating and changing one. It knows nothing of rooms,
// members or storage; package room checks who may do what.
package task

import (
	"slices"
	"time"

	"dealroom"
)

// Limits on task fields.
const (
	MaxTitle       = 200
	MaxDescription = 10000
	MaxAssignees   = 20
)

// Status is where a task stands.
type Status string

// The task statuses.
const (
	Open       Status = "open"
	InProgress Status = "in_progress"
	Done       Status = "done"
	Blocked    Status = "blocked"
)

// Statuses lists every status in display order.
var Statuses = []Status{Open, InProgress, Done, Blocked}

// ParseStatus checks s, with Open standing in for an empty value.
func ParseStatus(s Status) (Status, error) {
	if s == "" {
		return Open, nil
	}
	if slices.Contains(Statuses, s) {
		return s, nil
	}
	return "", dealroom.Invalid("status", "status must be one of open, in_progress, done, blocked, not %q", dealroom.Clip(string(s)))
}

// Task is one step of a room's mutual action plan.
type Task struct {
	ID          string              `json:"id"`
	RoomID      string              `json:"room_id"`
	Title       string              `json:"title"`
	Description string              `json:"description"`
	Status      Status              `json:"status"`
	Assignees   []string            `json:"assignees"`
	Due         *Date               `json:"due"`
	Visibility  dealroom.Visibility `json:"visibility"`
	Position    float64             `json:"position"`
	Mentions    []string            `json:"mentions"`
	CreatedBy   string              `json:"created_by"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	CompletedAt *time.Time          `json:"completed_at,omitempty"`
	// Commitment is what the due date of a shared step stands for between
	// the two sides (nil: no date, or an internal step). Package room keeps
	// it, since it depends on who changes the date.
	Commitment *Commitment `json:"commitment,omitempty"`
}

// Overdue reports whether the task is unfinished and its due date passed
// before the day of now.
func (t *Task) Overdue(now time.Time) bool {
	return t.Due != nil && t.Status != Done && t.Due.Before(DateOf(now))
}

// Draft is the input of a new task.
type Draft struct {
	Title       string              `json:"title"`
	Description string              `json:"description"`
	Status      Status              `json:"status"`
	Assignees   []string            `json:"assignees"`
	Due         *Date               `json:"due"`
	Visibility  dealroom.Visibility `json:"visibility"`
	Position    *float64            `json:"position"`
}

// Patch is a partial update: fields that are not Set stay as they are.
type Patch struct {
	Title       dealroom.Opt[string]              `json:"title"`
	Description dealroom.Opt[string]              `json:"description"`
	Status      dealroom.Opt[Status]              `json:"status"`
	Assignees   dealroom.Opt[[]string]            `json:"assignees"`
	Due         dealroom.Opt[Date]                `json:"due"`
	Visibility  dealroom.Opt[dealroom.Visibility] `json:"visibility"`
	Position    dealroom.Opt[float64]             `json:"position"`
}

// Empty reports whether the patch changes nothing at all.
func (p Patch) Empty() bool {
	return !p.Title.Set && !p.Description.Set && !p.Status.Set && !p.Assignees.Set &&
		!p.Due.Set && !p.Visibility.Set && !p.Position.Set
}

// New checks d and returns the task it describes. The caller supplies the
// identity, the author, the clock reading and the position to use when the
// draft names none.
func New(d Draft, id, roomID, author string, now time.Time, nextPosition float64) (Task, error) {
	t := Task{ID: id, RoomID: roomID, CreatedBy: author, CreatedAt: now, UpdatedAt: now, Position: nextPosition,
		Mentions: []string{}}
	var err error
	if t.Title, err = dealroom.Line("title", d.Title, 1, MaxTitle); err != nil {
		return Task{}, err
	}
	if t.Description, err = dealroom.Text("description", d.Description, 0, MaxDescription); err != nil {
		return Task{}, err
	}
	if t.Status, err = ParseStatus(d.Status); err != nil {
		return Task{}, err
	}
	if t.Assignees, err = cleanAssignees(d.Assignees); err != nil {
		return Task{}, err
	}
	if t.Visibility, err = dealroom.ParseVisibility("visibility", d.Visibility, dealroom.Shared); err != nil {
		return Task{}, err
	}
	if d.Position != nil {
		if err := checkPosition(*d.Position); err != nil {
			return Task{}, err
		}
		t.Position = *d.Position
	}
	t.Due = d.Due
	if t.Status == Done {
		t.CompletedAt = &now
	}
	return t, nil
}

// Apply returns t changed by p, and the names of the fields that really
// changed (in JSON spelling). It checks every field and changes nothing on
// error.
func (t Task) Apply(p Patch, now time.Time) (Task, []string, error) {
	if p.Empty() {
		return t, nil, dealroom.Errorf(dealroom.EBADREQUEST, "the update names no field to change")
	}
	n := t
	n.Assignees = slices.Clone(t.Assignees)
	n.Commitment = t.Commitment.Clone()
	var changed []string
	var err error
	if p.Title.Set {
		if p.Title.Null {
			return t, nil, dealroom.Invalid("title", "title must not be null")
		}
		if n.Title, err = dealroom.Line("title", p.Title.V, 1, MaxTitle); err != nil {
			return t, nil, err
		}
		if n.Title != t.Title {
			changed = append(changed, "title")
		}
	}
	if p.Description.Set {
		if n.Description, err = dealroom.Text("description", p.Description.V, 0, MaxDescription); err != nil {
			return t, nil, err
		}
		if n.Description != t.Description {
			changed = append(changed, "description")
		}
	}
	if p.Status.Set {
		if p.Status.Null || p.Status.V == "" {
			return t, nil, dealroom.Invalid("status", "status must not be empty")
		}
		if n.Status, err = ParseStatus(p.Status.V); err != nil {
			return t, nil, err
		}
		if n.Status != t.Status {
			changed = append(changed, "status")
			n.CompletedAt = nil
			if n.Status == Done {
				n.CompletedAt = &now
			}
		}
	}
	if p.Assignees.Set {
		if n.Assignees, err = cleanAssignees(p.Assignees.V); err != nil {
			return t, nil, err
		}
		if !slices.Equal(n.Assignees, t.Assignees) {
			changed = append(changed, "assignees")
		}
	}
	if p.Due.Set {
		n.Due = nil
		if !p.Due.Null {
			d := p.Due.V
			n.Due = &d
		}
		if !n.Due.Equal(t.Due) {
			changed = append(changed, "due")
		}
	}
	if p.Visibility.Set {
		if p.Visibility.Null || p.Visibility.V == "" {
			return t, nil, dealroom.Invalid("visibility", "visibility must not be empty")
		}
		if n.Visibility, err = dealroom.ParseVisibility("visibility", p.Visibility.V, ""); err != nil {
			return t, nil, err
		}
		if t.Visibility == dealroom.Shared && n.Visibility == dealroom.Internal {
			// Customers have seen it; hiding it now would leave a stale copy
			// on their devices and pretend they never did.
			return t, nil, dealroom.Invalid("visibility", "a shared task cannot be made internal again; delete it instead")
		}
		if n.Visibility != t.Visibility {
			changed = append(changed, "visibility")
		}
	}
	if p.Position.Set {
		if p.Position.Null {
			return t, nil, dealroom.Invalid("position", "position must not be null")
		}
		if err := checkPosition(p.Position.V); err != nil {
			return t, nil, err
		}
		n.Position = p.Position.V
		if n.Position != t.Position {
			changed = append(changed, "position")
		}
	}
	if len(changed) > 0 {
		n.UpdatedAt = now
	}
	return n, changed, nil
}

// MaxPosition bounds a task's position (and -MaxPosition from below).
const MaxPosition = 1e15

func checkPosition(p float64) error {
	if p != p || p > MaxPosition || p < -MaxPosition { // NaN cannot come from JSON, but be sure
		return dealroom.Invalid("position", "position must be a number between -1e15 and 1e15")
	}
	return nil
}

// cleanAssignees checks a list of user ids and removes duplicates, keeping
// the order given.
func cleanAssignees(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > 128 {
			return nil, dealroom.Invalid("assignees", "assignees must be user ids of room members")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxAssignees {
		return nil, dealroom.Invalid("assignees", "a task can have at most %d assignees", MaxAssignees)
	}
	return out, nil
}
