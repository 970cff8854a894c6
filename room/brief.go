package room

import (
	"context"
	"slices"
	"strings"

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
	Steps  []task.Task `json:"steps"`
	People []Person    `json:"people"`
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
		t.Description, t.Mentions = "", nil
		b.Steps = slices.DeleteFunc(b.Steps, func(s task.Task) bool { return s.ID == t.ID })
		b.Steps = append(b.Steps, t)
	}
	for _, id := range fx.DeletedTasks {
		b.Steps = slices.DeleteFunc(b.Steps, func(s task.Task) bool { return s.ID == id })
	}
	slices.SortStableFunc(b.Steps, func(x, y task.Task) int {
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
		b.Steps = []task.Task{}
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
