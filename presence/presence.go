// Package presence keeps who is in a room right now: on which devices, and
// whether they are viewing, typing (and on which task) or idle.
//
// Presence is ephemeral and kept in memory. Each instance owns the devices
// connected to it (local) and learns the others' from their announcements
// (remote), which expire unless repeated: an instance that dies silently
// takes its people out of the room within the expiry, with nobody having to
// notice the death.
package presence

import (
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"dealroom"
)

// State is what a person does in a room.
type State string

const (
	Viewing State = "viewing"
	Typing  State = "typing"
	Idle    State = "idle"
)

// ParseState checks a state sent by a client.
func ParseState(s string) (State, bool) {
	switch st := State(s); st {
	case Viewing, Typing, Idle:
		return st, true
	}
	return "", false
}

// rank orders states: the busiest device tells what a person does.
func (s State) rank() int {
	switch s {
	case Typing:
		return 3
	case Viewing:
		return 2
	case Idle:
		return 1
	}
	return 0
}

// Device is one connection of one person in one room.
type Device struct {
	Session string        `json:"session"`
	UserID  string        `json:"user_id"`
	Name    string        `json:"name"`
	Kind    dealroom.Kind `json:"kind"`
	State   State         `json:"state"`
	// TaskID is the task the device works on, if any; TaskInternal tells
	// that customers must not learn of what it does (an internal task, or
	// an internal note being typed): to them it is viewing, without task.
	TaskID       string `json:"task_id,omitempty"`
	TaskInternal bool   `json:"task_internal,omitempty"`
}

// Member is a person's presence as clients see it.
type Member struct {
	UserID  string        `json:"user_id"`
	Name    string        `json:"name"`
	Kind    dealroom.Kind `json:"kind"`
	State   State         `json:"state"`
	Devices int           `json:"devices"`
	TaskID  string        `json:"task_id,omitempty"`
}

// Announcement is what an instance tells the others about one room: every
// device it holds there (none: it holds none any more), valid for TTL.
type Announcement struct {
	Devices []Device `json:"devices"`
	TTL     int64    `json:"ttl_ms"`
	// Seq orders one instance's announcements (Tracker.Snapshot): they
	// are published from several goroutines over several connections and
	// may arrive in another order than they were made, and an older one
	// must not undo a newer one. 0 (from an instance from before it):
	// unordered.
	Seq uint64 `json:"seq,omitempty"`
	// Query asks the other instances to announce theirs at once (sent by an
	// instance that starts following the room).
	Query bool `json:"query,omitempty"`
}

// Encode returns the announcement's wire form.
func (a Announcement) Encode() []byte {
	b, _ := json.Marshal(a)
	return b
}

// DecodeAnnouncement reads an announcement.
func DecodeAnnouncement(b []byte) (Announcement, error) {
	var a Announcement
	err := json.Unmarshal(b, &a)
	return a, err
}

// Tracker holds the presence of every room an instance follows. It is
// safe for concurrent use.
type Tracker struct {
	mu    sync.Mutex
	rooms map[string]*roomState
	seq   uint64 // the last Snapshot's
}

type roomState struct {
	local  map[string]Device // by session
	remote map[string]remote // by instance
}

// remote is another instance's last announcement for a room. One of no
// devices is kept too, until it expires, for its seq: an older one that
// arrives after it is then known for what it is.
type remote struct {
	devices []Device
	seq     uint64
	expires time.Time
}

// NewTracker returns an empty tracker. Its snapshots' Seq starts from the
// clock, so that an instance started again under the same name is not
// taken for an old one.
func NewTracker() *Tracker {
	return &Tracker{rooms: map[string]*roomState{}, seq: uint64(time.Now().UnixNano())}
}

func (t *Tracker) room(id string) *roomState {
	r := t.rooms[id]
	if r == nil {
		r = &roomState{local: map[string]Device{}, remote: map[string]remote{}}
		t.rooms[id] = r
	}
	return r
}

func (t *Tracker) gc(id string) {
	if r := t.rooms[id]; r != nil && len(r.local) == 0 && len(r.remote) == 0 {
		delete(t.rooms, id)
	}
}

// Set records a local device's state and reports whether the room's
// presence changed.
func (t *Tracker) Set(room string, d Device) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.room(room)
	old, ok := r.local[d.Session]
	r.local[d.Session] = d
	return !ok || old != d
}

// Remove forgets a local device and reports whether it was there.
func (t *Tracker) Remove(room, session string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rooms[room]
	if r == nil {
		return false
	}
	_, ok := r.local[session]
	delete(r.local, session)
	t.gc(room)
	return ok
}

// Local returns the local devices of a room.
func (t *Tracker) Local(room string) []Device {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local(room)
}

// Snapshot returns the local devices of a room, for announcing them, and
// the announcement's Seq: a later snapshot has a larger one, so that the
// other instances keep the latest of those they receive.
func (t *Tracker) Snapshot(room string) ([]Device, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	return t.local(room), t.seq
}

func (t *Tracker) local(room string) []Device {
	r := t.rooms[room]
	if r == nil {
		return []Device{}
	}
	out := make([]Device, 0, len(r.local))
	for _, d := range r.local {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.Session, b.Session) })
	return out
}

// LocalRooms returns the rooms with local devices.
func (t *Tracker) LocalRooms() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id, r := range t.rooms {
		if len(r.local) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Merge records another instance's announcement for a room, valid until
// now+TTL, and reports whether the room's presence changed. An
// announcement older than the last one merged from the same instance
// (by Seq) changes nothing.
func (t *Tracker) Merge(room, instance string, a Announcement, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.room(room)
	old, had := r.remote[instance]
	if had && a.Seq != 0 && a.Seq <= old.seq {
		return false
	}
	ttl := time.Duration(a.TTL) * time.Millisecond
	r.remote[instance] = remote{devices: a.Devices, seq: a.Seq, expires: now.Add(ttl)}
	if len(a.Devices) == 0 {
		if a.Seq == 0 {
			// Unordered: nothing to remember it for.
			delete(r.remote, instance)
			t.gc(room)
		}
		return had && len(old.devices) > 0
	}
	return !had || !slices.Equal(old.devices, a.Devices)
}

// Expire drops the announcements that were not renewed in time and returns
// the rooms whose presence changed.
func (t *Tracker) Expire(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var changed []string
	for id, r := range t.rooms {
		lost, gone := false, false
		for inst, rm := range r.remote {
			if !now.Before(rm.expires) {
				delete(r.remote, inst)
				gone = true
				lost = lost || len(rm.devices) > 0
			}
		}
		if lost {
			changed = append(changed, id)
		}
		if gone {
			t.gc(id)
		}
	}
	return changed
}

// Members returns who is in the room, one entry per person, ordered by
// name. For customers, work on internal tasks shows as viewing, without
// the task.
func (t *Tracker) Members(room string, forCustomer bool) []Member {
	t.mu.Lock()
	r := t.rooms[room]
	var devices []Device
	if r != nil {
		for _, d := range r.local {
			devices = append(devices, d)
		}
		for _, rm := range r.remote {
			devices = append(devices, rm.devices...)
		}
	}
	t.mu.Unlock()
	return Aggregate(devices, forCustomer)
}

// Aggregate folds devices into one entry per person.
func Aggregate(devices []Device, forCustomer bool) []Member {
	byUser := map[string]*Member{}
	best := map[string]int{}
	// Sessions in a stable order, so that ties resolve the same way
	// everywhere.
	slices.SortFunc(devices, func(a, b Device) int { return cmp.Compare(a.Session, b.Session) })
	for _, d := range devices {
		if forCustomer && d.TaskInternal {
			d.TaskID = ""
			if d.State == Typing {
				d.State = Viewing
			}
		}
		m := byUser[d.UserID]
		if m == nil {
			m = &Member{UserID: d.UserID, Name: d.Name, Kind: d.Kind}
			byUser[d.UserID] = m
		}
		m.Devices++
		if rk := d.State.rank(); rk > best[d.UserID] {
			best[d.UserID] = rk
			m.State, m.TaskID = d.State, d.TaskID
		}
	}
	out := make([]Member, 0, len(byUser))
	for _, m := range byUser {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.UserID, b.UserID))
	})
	return out
}
