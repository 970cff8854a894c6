package room

import (
	"context"
	"sync"
	"time"

	"dealroom"
)

// Tally gathers engagement as the server sees it and writes it to the
// store in batches (Flush): the signals come often (every presence change
// of every device, every page load), and each written on its own would
// cost a disk sync. What waits is coalesced: one delta per (room, person,
// device kind) and per (room, file, person), however many signals came.
// Signals that arrive while a flush writes wait for the next one. What
// waits is lost when the process dies: engagement is bookkeeping, not a
// record of the room.
//
// A device here is a person's device kind in a room: two desktop tabs of
// one person are one desktop. A visit begins when the device views the
// room after VisitGap without viewing it; the time in the room runs while
// at least one of its connections views the room, each stretch counted up
// to IdleCap after the last sign of the person. A restart forgets when
// devices last viewed, so a device viewing across it makes a new visit.
type Tally struct {
	// Store receives the batches.
	Store EngagementStore
	// Now is the clock; it defaults to dealroom.Now.
	Now func() time.Time

	mu      sync.Mutex
	devices map[deviceKey]*deviceState
	people  map[deviceKey]*PersonDelta
	files   map[fileKey]*FileDelta
	days    map[[2]string]*DayDelta
}

type deviceKey struct {
	room, user string
	kind       DeviceKind
}

type fileKey struct{ room, attachment, user string }

// deviceState is what the tally knows of one device in a room.
type deviceState struct {
	side dealroom.Kind
	// conns are the connections of the device viewing the room now.
	conns map[string]struct{}
	// since is when the stretch being counted began (when conns is not
	// empty); last is the latest time the device was seen viewing.
	since, last time.Time
}

func (t *Tally) now() time.Time {
	if t.Now != nil {
		return t.Now().UTC().Truncate(time.Millisecond)
	}
	return dealroom.Now()
}

// Viewing says that a connection (conn: an id unique to it) of the person
// user, on a device of kind dk, views the room now: it began to, or is
// still at it after a change of what it does (typing, a task opened),
// which counts as a sign of the person.
func (t *Tally) Viewing(room, user string, side dealroom.Kind, dk DeviceKind, conn string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st := t.device(room, user, side, dk)
	if len(st.conns) == 0 {
		t.visit(room, user, dk, st, now)
		st.since = now
	} else {
		t.addTime(room, user, dk, st, now)
	}
	st.conns[conn] = struct{}{}
	st.last = now
}

// Away says that a connection stopped viewing the room: its page went out
// of view, it left the room, or it disconnected. It is a no-op for a
// connection the tally did not see viewing.
func (t *Tally) Away(room, user string, dk DeviceKind, conn string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.devices[deviceKey{room, user, dk}]
	if st == nil {
		return
	}
	if _, ok := st.conns[conn]; !ok {
		return
	}
	now := t.now()
	delete(st.conns, conn)
	if len(st.conns) == 0 {
		t.addTime(room, user, dk, st, now)
		st.last = now
	}
}

// Page says that the person loaded the room's page: a visit when the
// device was not viewing the room within VisitGap.
func (t *Tally) Page(room, user string, side dealroom.Kind, dk DeviceKind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st := t.device(room, user, side, dk)
	if len(st.conns) == 0 {
		t.visit(room, user, dk, st, now)
	} else {
		t.addTime(room, user, dk, st, now)
	}
	st.last = now
}

// File says that the person opened one of the room's files: to look at
// it (download false) or to save it.
func (t *Tally) File(room, attachment, user string, side dealroom.Kind, download bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k := fileKey{room, attachment, user}
	f := t.files[k]
	if f == nil {
		if t.files == nil {
			t.files = map[fileKey]*FileDelta{}
		}
		f = &FileDelta{Room: room, AttachmentID: attachment, UserID: user, Side: side, First: now}
		t.files[k] = f
	}
	if download {
		f.Downloads++
	} else {
		f.Views++
	}
	f.Last = now
	if side == dealroom.Customer {
		t.day(room, now).Files++
	}
}

// device returns the state of a device, made when missing.
func (t *Tally) device(room, user string, side dealroom.Kind, dk DeviceKind) *deviceState {
	k := deviceKey{room, user, dk}
	st := t.devices[k]
	if st == nil {
		if t.devices == nil {
			t.devices = map[deviceKey]*deviceState{}
		}
		st = &deviceState{side: side, conns: map[string]struct{}{}}
		t.devices[k] = st
	}
	st.side = side
	return st
}

// visit counts a visit beginning now, unless the device viewed the room
// within VisitGap.
func (t *Tally) visit(room, user string, dk DeviceKind, st *deviceState, now time.Time) {
	if !st.last.IsZero() && now.Sub(st.last) < VisitGap {
		return
	}
	p := t.person(room, user, dk, st.side)
	p.Devices[dk]++
	if p.FirstVisit.IsZero() {
		p.FirstVisit = now
	}
	p.LastVisit = now
	if st.side == dealroom.Customer {
		t.day(room, now).Visits++
	}
}

// addTime counts the stretch since st.since (up to IdleCap) and begins
// the next one now.
func (t *Tally) addTime(room, user string, dk DeviceKind, st *deviceState, now time.Time) {
	if d := min(now.Sub(st.since), IdleCap); d > 0 {
		t.person(room, user, dk, st.side).Time += d
	}
	st.since = now
}

func (t *Tally) person(room, user string, dk DeviceKind, side dealroom.Kind) *PersonDelta {
	k := deviceKey{room, user, dk}
	p := t.people[k]
	if p == nil {
		if t.people == nil {
			t.people = map[deviceKey]*PersonDelta{}
		}
		p = &PersonDelta{Room: room, UserID: user, Side: side, Devices: map[DeviceKind]int{dk: 0}}
		t.people[k] = p
	}
	p.Side = side
	return p
}

func (t *Tally) day(room string, now time.Time) *DayDelta {
	k := [2]string{room, Day(now)}
	d := t.days[k]
	if d == nil {
		if t.days == nil {
			t.days = map[[2]string]*DayDelta{}
		}
		d = &DayDelta{Room: room, Day: k[1]}
		t.days[k] = d
	}
	return d
}

// take returns what waits and forgets it, with the devices that neither
// view a room nor viewed it within VisitGap.
func (t *Tally) take() EngagementDelta {
	t.mu.Lock()
	defer t.mu.Unlock()
	var d EngagementDelta
	for _, p := range t.people {
		d.People = append(d.People, *p)
	}
	for _, f := range t.files {
		d.Files = append(d.Files, *f)
	}
	for _, x := range t.days {
		d.Days = append(d.Days, *x)
	}
	t.people, t.files, t.days = nil, nil, nil
	now := t.now()
	for k, st := range t.devices {
		if len(st.conns) == 0 && now.Sub(st.last) >= VisitGap {
			delete(t.devices, k)
		}
	}
	return d
}

// Flush writes what waits in one store call. When the write fails, what
// it held is given back, to be written with the next flush.
func (t *Tally) Flush(ctx context.Context) error {
	d := t.take()
	if d.Empty() {
		return nil
	}
	if err := t.Store.AddEngagement(ctx, d); err != nil {
		t.giveBack(d)
		return err
	}
	return nil
}

// giveBack adds a delta that could not be written to what waits.
func (t *Tally) giveBack(d EngagementDelta) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range d.People {
		for dk, n := range p.Devices {
			q := t.person(p.Room, p.UserID, dk, p.Side)
			q.Devices[dk] += n
			q.Time += p.Time
			p.Time = 0 // counted once, with the first kind
			if !p.FirstVisit.IsZero() && (q.FirstVisit.IsZero() || p.FirstVisit.Before(q.FirstVisit)) {
				q.FirstVisit = p.FirstVisit
			}
			if p.LastVisit.After(q.LastVisit) {
				q.LastVisit = p.LastVisit
			}
		}
	}
	for _, f := range d.Files {
		k := fileKey{f.Room, f.AttachmentID, f.UserID}
		q := t.files[k]
		if q == nil {
			if t.files == nil {
				t.files = map[fileKey]*FileDelta{}
			}
			c := f
			t.files[k] = &c
			continue
		}
		q.Views += f.Views
		q.Downloads += f.Downloads
		q.First = minTime(q.First, f.First)
		if f.Last.After(q.Last) {
			q.Last = f.Last
		}
	}
	for _, x := range d.Days {
		k := [2]string{x.Room, x.Day}
		q := t.days[k]
		if q == nil {
			if t.days == nil {
				t.days = map[[2]string]*DayDelta{}
			}
			c := x
			t.days[k] = &c
			continue
		}
		q.Visits += x.Visits
		q.Files += x.Files
	}
}

// Run flushes every interval until ctx ends, then once more with a
// context of its own (5 s), so that what waited at shutdown is written.
// Errors are passed to failed (which may be nil).
func (t *Tally) Run(ctx context.Context, every time.Duration, failed func(error)) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	report := func(err error) {
		if err != nil && failed != nil {
			failed(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			report(t.Flush(fctx))
			cancel()
			return
		case <-tick.C:
			report(t.Flush(ctx))
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
