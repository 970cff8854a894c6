package room

import (
	"context"
	"slices"
	"sort"
	"time"

	"dealroom"
	"dealroom/task"
)

// TaskResult is a task after a change, with the @-mentions of its
// description that reached no one.
type TaskResult struct {
	task.Task
	UnresolvedMentions []string `json:"unresolved_mentions"`
	Written
}

// Tasks lists the room's action plan as the actor may see it, in order.
func (s *Service) Tasks(ctx context.Context, a dealroom.Actor, room string) ([]task.Task, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, err
	}
	all, err := s.Store.Tasks(ctx, room)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(t task.Task) bool { return !p.Sees(t.Visibility) }), nil
}

// Task returns one task the actor may see.
func (s *Service) Task(ctx context.Context, a dealroom.Actor, room, id string) (*task.Task, error) {
	p, err := s.perm(ctx, a, room)
	if err != nil {
		return nil, err
	}
	t, err := s.Store.Task(ctx, room, id)
	if err != nil {
		return nil, err
	}
	if t == nil || !p.Sees(t.Visibility) {
		return nil, dealroom.NotFound("task", id)
	}
	return t, nil
}

// CreateTask adds a step to the action plan. Writers only; customers create
// shared tasks only. Assignees must be members, and customers can only be
// assigned shared tasks.
func (s *Service) CreateTask(ctx context.Context, a dealroom.Actor, room string, d task.Draft, key string) (TaskResult, error) {
	found, err := s.findMentions(ctx, room, d.Description)
	if err != nil {
		return TaskResult{}, err
	}
	return run(ctx, s, change[TaskResult]{actor: a, room: room, key: key, op: "task.create", input: d,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, TaskResult, error) {
			if !p.Write {
				return Event{}, TaskResult{}, forbidden("you have read access to this room")
			}
			if d.Visibility == dealroom.Internal && !p.Internal {
				return Event{}, TaskResult{}, forbidden("customers can only create shared tasks")
			}
			st, err := v.TaskStats()
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			vis := d.Visibility
			if vis == "" {
				vis = dealroom.Shared
			}
			// What a customer is told depends on shared tasks alone: the
			// limit counts the new task's visibility, and a customer's task
			// goes after the last shared one (staff's after the last task).
			if st.Of(vis).Count >= MaxTasks {
				return Event{}, TaskResult{}, conflict("a room holds at most %d %s tasks", MaxTasks, vis)
			}
			last := st.Last()
			if !p.Internal {
				last = st.Shared.Last
			}
			t, err := task.New(d, NewID("t", now), room, a.ID, now, min(float64(int64(last))+1, task.MaxPosition))
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			if err := checkAssignees(v, t); err != nil {
				return Event{}, TaskResult{}, err
			}
			if t.Visibility == dealroom.Shared {
				t.Commitment = task.Propose(nil, nil, t.Due, a.ID, sideOf(p), now)
			}
			mt, err := found.Check(v, t.Description, t.Visibility, "description")
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			t.Mentions = orEmpty(mt.Users)
			ev, err := newEvent(TaskCreated, room, a, now, t.Visibility, t)
			return ev, TaskResult{Task: t, UnresolvedMentions: orEmpty(mt.Unresolved)}, err
		},
		replay: func(ev Event) (TaskResult, error) { return s.taskReplay(ctx, ev, true) }})
}

// taskReplay is the answer to the replay of a task's creation or change:
// the task as that request left it, and the mentions that reached no one
// when mentions is set (the first answer's were not stored).
func (s *Service) taskReplay(ctx context.Context, ev Event, mentions bool) (TaskResult, error) {
	t, err := decodeData[task.Task](ev)
	if err != nil {
		return TaskResult{}, err
	}
	var unresolved []string
	if mentions {
		unresolved = s.unresolvedAgain(ctx, ev.RoomID, t.Description, t.Visibility)
	}
	return TaskResult{Task: t, UnresolvedMentions: orEmpty(unresolved)}, nil
}

// UpdateTask changes a task the actor can see. Writers only.
func (s *Service) UpdateTask(ctx context.Context, a dealroom.Actor, room, id string, pt task.Patch, key string) (TaskResult, error) {
	found, err := s.taskMentions(ctx, room, id, pt)
	if err != nil {
		return TaskResult{}, err
	}
	return run(ctx, s, change[TaskResult]{actor: a, room: room, key: key, op: "task.update", input: []any{id, pt},
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, TaskResult, error) {
			old, err := visibleTask(v, p, id)
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			if !p.Write {
				return Event{}, TaskResult{}, forbidden("you have read access to this room")
			}
			var unresolved []string
			n, changed, err := old.Apply(pt, now)
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			if slices.Contains(changed, "assignees") || slices.Contains(changed, "visibility") {
				if err := checkAssignees(v, n); err != nil {
					return Event{}, TaskResult{}, err
				}
			}
			if slices.Contains(changed, "description") || slices.Contains(changed, "visibility") {
				mt, err := found.Check(v, n.Description, n.Visibility, "description")
				if err != nil {
					return Event{}, TaskResult{}, err
				}
				n.Mentions, unresolved = orEmpty(mt.Users), orEmpty(mt.Unresolved)
				if !slices.Equal(n.Mentions, orEmpty(old.Mentions)) {
					changed = append(changed, "mentions")
				}
			}
			changed = recommit(old, &n, changed, a, p, now)
			if len(changed) == 0 {
				return noChange, TaskResult{Task: *old, UnresolvedMentions: orEmpty(unresolved)}, nil
			}
			ev, err := newEvent(TaskUpdated, room, a, now, n.Visibility, n)
			if err == nil {
				ev.Changes, err = diff(old, &n, changed)
			}
			return ev, TaskResult{Task: n, UnresolvedMentions: orEmpty(unresolved)}, err
		},
		replay: func(ev Event) (TaskResult, error) { return s.taskReplay(ctx, ev, pt.Description.Set) }})
}

// recommit keeps the commitment of a step whose date or visibility
// changed (commitment.go in package task), and adds "commitment" to the
// changed fields when it moved. A step made shared starts afresh: what was
// said of its date on the staff side was no promise to the customer.
func recommit(old *task.Task, n *task.Task, changed []string, a dealroom.Actor, p Perm, now time.Time) []string {
	if n.Visibility != dealroom.Shared {
		n.Commitment = nil
	} else if slices.Contains(changed, "due") || slices.Contains(changed, "visibility") {
		prev := old.Commitment
		if old.Visibility != dealroom.Shared {
			prev = nil
		}
		n.Commitment = task.Propose(prev, old.Due, n.Due, a.ID, sideOf(p), now)
	}
	if string(mustJSON(old.Commitment)) != string(mustJSON(n.Commitment)) {
		changed = append(changed, "commitment")
	}
	return changed
}

// sideOf is the side of the deal p's holder speaks for in the room.
func sideOf(p Perm) dealroom.Kind {
	if p.Internal {
		return dealroom.Staff
	}
	return dealroom.Customer
}

// DueConfirmation is the input of a step's date confirmation: the date the
// confirming person saw, so that a date changed meanwhile is not confirmed
// unseen.
type DueConfirmation struct {
	Due task.Date `json:"due"`
}

// ConfirmDue confirms a shared step's due date on behalf of the side that
// did not propose it: one task.updated event whose changes hold the
// commitment before and after. Writers only. Errors: ENOTFOUND for a step
// the actor cannot see; EFORBIDDEN for readers and for the side that
// proposed the date; ECONFLICT when the step is internal (there is no
// other side) or its date is no longer c.Due; EINVALID when it has no date.
// Confirming a confirmed date changes nothing.
func (s *Service) ConfirmDue(ctx context.Context, a dealroom.Actor, room, id string, c DueConfirmation, key string) (TaskResult, error) {
	return run(ctx, s, change[TaskResult]{actor: a, room: room, key: key, op: "task.confirm", input: []any{id, c},
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, TaskResult, error) {
			old, err := visibleTask(v, p, id)
			if err != nil {
				return Event{}, TaskResult{}, err
			}
			if !p.Write {
				return Event{}, TaskResult{}, forbidden("you have read access to this room")
			}
			if old.Visibility != dealroom.Shared {
				return Event{}, TaskResult{}, conflict("an internal step has no other side to confirm its date")
			}
			if old.Due == nil || *old.Due != c.Due {
				return Event{}, TaskResult{}, conflict("the step's date is no longer %s: read it again", c.Due)
			}
			cm := old.Commitment
			if cm == nil {
				// A date set before commitments were kept: which side set
				// it is not known, so either side may confirm it.
				cm = &task.Commitment{State: task.Proposed, ProposedBy: old.CreatedBy, ProposedSide: task.Other(sideOf(p)), ProposedAt: old.UpdatedAt}
			}
			nc, moved, err := task.Confirm(cm, old.Due, a.ID, sideOf(p), now)
			if err != nil || !moved {
				return noChange, TaskResult{Task: *old, UnresolvedMentions: []string{}}, err
			}
			n := *old
			n.Commitment, n.UpdatedAt = nc, now
			ev, err := newEvent(TaskUpdated, room, a, now, n.Visibility, n)
			if err == nil {
				ev.Changes, err = diff(old, &n, []string{"commitment"})
			}
			return ev, TaskResult{Task: n, UnresolvedMentions: []string{}}, err
		},
		replay: func(ev Event) (TaskResult, error) { return s.taskReplay(ctx, ev, false) }})
}

// DeleteTask removes a task from the plan. Staff writers delete any task
// they can see; customers only the tasks they created.
func (s *Service) DeleteTask(ctx context.Context, a dealroom.Actor, room, id, key string) (Written, error) {
	return run(ctx, s, change[Written]{actor: a, room: room, key: key, op: "task.delete", input: id,
		decide: func(v View, p Perm, r *Room, now time.Time) (Event, Written, error) {
			t, err := visibleTask(v, p, id)
			if err != nil {
				return Event{}, Written{}, err
			}
			if !p.Write {
				return Event{}, Written{}, forbidden("you have read access to this room")
			}
			if !p.Internal && t.CreatedBy != a.ID {
				return Event{}, Written{}, forbidden("customers can delete only the tasks they created")
			}
			ev, err := newEvent(TaskDeleted, room, a, now, t.Visibility, TaskDeletedData{ID: t.ID, Title: t.Title})
			return ev, Written{}, err
		}})
}

// MyTaskFilter narrows the tasks assigned to the actor.
type MyTaskFilter struct {
	Statuses  []task.Status
	DueBefore *task.Date // due strictly before this day
	Room      string
}

// MyTasks returns the tasks assigned to the actor in every room they can
// still see, soonest due first (undated last).
func (s *Service) MyTasks(ctx context.Context, a dealroom.Actor, f MyTaskFilter) ([]task.Task, error) {
	all, err := s.Store.AssignedTasks(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	perms := map[string]Perm{}
	out := all[:0]
	for _, t := range all {
		if f.Room != "" && t.RoomID != f.Room {
			continue
		}
		if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, t.Status) {
			continue
		}
		if f.DueBefore != nil && (t.Due == nil || !t.Due.Before(*f.DueBefore)) {
			continue
		}
		p, ok := perms[t.RoomID]
		if !ok {
			p, err = s.perm(ctx, a, t.RoomID)
			if err != nil && dealroom.ErrorCode(err) != dealroom.ENOTFOUND {
				return nil, err
			}
			perms[t.RoomID] = p
		}
		if p.Sees(t.Visibility) {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		di, dj := out[i].Due, out[j].Due
		switch {
		case di == nil || dj == nil:
			return di != nil && dj == nil
		case *di != *dj:
			return di.Before(*dj)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// visibleTask returns the task or ENOTFOUND when it does not exist for p.
func visibleTask(v View, p Perm, id string) (*task.Task, error) {
	t, err := v.Task(id)
	if err != nil {
		return nil, err
	}
	if t == nil || !p.Sees(t.Visibility) {
		return nil, dealroom.NotFound("task", id)
	}
	return t, nil
}

// checkAssignees makes sure every assignee is a member who may see t.
// checkAssignees makes sure a task's assignees are members who may see it.
// It reads only the assignees' memberships.
func checkAssignees(v View, t task.Task) error {
	for _, u := range t.Assignees {
		m, err := v.Member(u)
		if err != nil {
			return err
		}
		if m == nil {
			return dealroom.Invalid("assignees", "%s is not a member of this room", dealroom.Clip(u))
		}
		if t.Visibility == dealroom.Internal && m.Kind != dealroom.Staff {
			return dealroom.Invalid("assignees", "%s is a customer and cannot be assigned an internal task", m.Name)
		}
	}
	return nil
}

// taskMentions finds, before the store call, the mentions of the
// description a task update leaves: the new one, or the current one when
// only the visibility changes (the decision checks that it is still the
// same text).
func (s *Service) taskMentions(ctx context.Context, room, id string, pt task.Patch) (Found, error) {
	switch {
	case pt.Description.Set:
		return s.findMentions(ctx, room, pt.Description.V)
	case pt.Visibility.Set:
		t, err := s.Store.Task(ctx, room, id)
		if err != nil || t == nil {
			return Found{}, err
		}
		return s.findMentions(ctx, room, t.Description)
	}
	return Found{}, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
