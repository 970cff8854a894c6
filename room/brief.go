package room

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"dealroom"
	"dealroom/task"
)

// Brief is what the pipeline reads of a room besides the room itself: its
// steps in brief (no description, no mentions) and its people's names.
// Both stores keep one per room, changed by each event's effects
// (Brief.Apply) in the same write as the other read models, so that the
// manager's view of a thousand rooms reads a thousand small records, not
// their events, tasks and members.
type Brief struct {
	Steps  []Step   `json:"steps"`
	People []Person `json:"people"`
}

// Step is a step of a plan in brief: what the pipeline shows and counts of
// it. It is kept small, since the pipeline reads every step of every room.
type Step struct {
	ID         string              `json:"id"`
	Title      string              `json:"title"`
	Status     task.Status         `json:"status"`
	Due        *task.Date          `json:"due"`
	Visibility dealroom.Visibility `json:"visibility"`
	Position   float64             `json:"position"`
	Assignees  []string            `json:"assignees"`
	Commitment *Promise            `json:"commitment,omitempty"`
}

// Promise is a step's commitment in brief (task.Commitment).
type Promise struct {
	State        task.CommitState `json:"state"`
	ProposedSide dealroom.Kind    `json:"proposed_side"`
	Slips        int              `json:"slips"`
	SlippedDays  int              `json:"slipped_days"`
}

// StepOf returns t in brief.
func StepOf(t task.Task) Step {
	s := Step{ID: t.ID, Title: t.Title, Status: t.Status, Due: t.Due, Visibility: t.Visibility, Position: t.Position,
		Assignees: t.Assignees}
	if c := t.Commitment; c != nil {
		s.Commitment = &Promise{State: c.State, ProposedSide: c.ProposedSide, Slips: c.Slips, SlippedDays: c.SlippedDays}
	}
	if s.Assignees == nil {
		s.Assignees = []string{}
	}
	return s
}

// Person is a member as a brief names them.
type Person struct {
	UserID string        `json:"user_id"`
	Name   string        `json:"name"`
	Kind   dealroom.Kind `json:"kind"`
}

// BriefStore keeps the rooms' briefs. Both stores implement it beside
// room.Store; the Service finds it on its Store.
type BriefStore interface {
	// Briefs returns the briefs of those of rooms that exist, by room id,
	// in one read. A room written before briefs were kept has its brief
	// made from its tasks and members. Errors: EUNAVAILABLE when the
	// backend fails.
	Briefs(ctx context.Context, rooms []string) (map[string]Brief, error)
}

// BriefOf makes the brief of a room from its tasks and members.
func BriefOf(tasks []task.Task, members []Member) Brief {
	var b Brief
	b.Apply(Effects{Tasks: tasks, Members: members})
	return b
}

// TouchesBrief reports whether effects change a room's brief.
func (fx Effects) TouchesBrief() bool {
	return len(fx.Tasks)+len(fx.DeletedTasks)+len(fx.Members)+len(fx.RemovedMembers) > 0
}

// Apply changes b by one event's effects. Applying the same effects twice
// changes nothing more.
func (b *Brief) Apply(fx Effects) {
	for _, t := range fx.Tasks {
		b.Steps = slices.DeleteFunc(b.Steps, func(s Step) bool { return s.ID == t.ID })
		b.Steps = append(b.Steps, StepOf(t))
	}
	for _, id := range fx.DeletedTasks {
		b.Steps = slices.DeleteFunc(b.Steps, func(s Step) bool { return s.ID == id })
	}
	slices.SortStableFunc(b.Steps, func(x, y Step) int {
		switch {
		case x.Position < y.Position:
			return -1
		case x.Position > y.Position:
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	for _, m := range fx.Members {
		p := Person{UserID: m.UserID, Name: m.Name, Kind: m.Kind}
		if i := slices.IndexFunc(b.People, func(q Person) bool { return q.UserID == m.UserID }); i >= 0 {
			b.People[i] = p
		} else {
			b.People = append(b.People, p)
		}
	}
	for _, u := range fx.RemovedMembers {
		b.People = slices.DeleteFunc(b.People, func(q Person) bool { return q.UserID == u })
	}
	if b.Steps == nil {
		b.Steps = []Step{}
	}
	if b.People == nil {
		b.People = []Person{}
	}
}

// Name returns the name of a person of the room, "" when they are not one.
func (b *Brief) Name(user string) string {
	for _, p := range b.People {
		if p.UserID == user {
			return p.Name
		}
	}
	return ""
}

// BriefCache keeps decoded briefs by room beside the stored bytes they were
// decoded from, so that a store reading a brief whose bytes did not change
// since it last read them skips decoding it: the pipeline reads every
// room's brief, and most rooms did not change between two reads. Its zero
// value is ready; it is safe for concurrent use.
type BriefCache struct {
	mu sync.Mutex
	m  map[string]cachedBrief
}

type cachedBrief struct {
	raw   []byte
	brief Brief
}

// maxCachedBriefs bounds the cache: past it, the cache starts over.
const maxCachedBriefs = 50000

// Decode returns the brief of room stored as raw, decoded by decode unless
// the same bytes were decoded before. The brief's slices are copies; the
// steps' assignees and commitments are shared and must not be changed.
func (c *BriefCache) Decode(room string, raw []byte, decode func([]byte) (Brief, error)) (Brief, error) {
	c.mu.Lock()
	e, ok := c.m[room]
	c.mu.Unlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		b, err := decode(raw)
		if err != nil {
			return Brief{}, err
		}
		e = cachedBrief{raw: bytes.Clone(raw), brief: b}
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedBriefs {
			c.m = make(map[string]cachedBrief)
		}
		c.m[room] = e
		c.mu.Unlock()
	}
	return Brief{Steps: slices.Clone(e.brief.Steps), People: slices.Clone(e.brief.People)}, nil
}
