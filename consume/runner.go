package consume

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"dealroom/room"
)

// Consumer is a named handler of events. Its name keys its cursors, so it
// must not change once the consumer has run.
type Consumer struct {
	Name string
	// Handle does the consumer's work for ev. It may be handed the same
	// event again (after a crash, or when a later event of the same pass
	// failed before the cursor moved), so what it writes must be keyed by
	// the event. An error leaves the cursor before ev: the event comes
	// again on a later pass, with those after it.
	Handle func(ctx context.Context, ev room.Event) error
	// Idle, when set, tells whether the consumer has nothing to do with
	// any event now (the webhooks while no endpoint is configured). An
	// idle consumer's events are not read: a pass for woken rooms leaves
	// it alone, and the full pass moves its cursors to the rooms' heads,
	// so that once it has work it starts from about then (at most a full
	// pass's Interval earlier), not from the history. It is asked once
	// per pass; an answer it cannot give (a store failure) is false.
	Idle func(ctx context.Context) bool
}

// Runner runs consumers over the event log while it holds its lease. The
// zero values of its durations mean the defaults.
type Runner struct {
	Store  Store
	Events Events
	// Lease names the lease, Holder this instance (unique per process:
	// a host name and a random suffix).
	Lease, Holder string
	Consumers     []Consumer
	// Jobs run after the consumers on every pass while the lease is held
	// (the outbox's sender). An error is logged; the next pass runs them
	// again.
	Jobs []func(ctx context.Context) error
	// Interval is the time between full passes over every room (2 s): the
	// repair path when no Wake came, or a handler failed.
	Interval time.Duration
	// WakeGap is the least time between the starts of two passes made for
	// Wake (100 ms): the first Wake after a quiet spell is handled at
	// once, those that follow within the gap together. Each pass writes
	// the cursors it moved (on the embedded store a durable commit of its
	// own, beside the rooms' writes); without the gap a busy instance
	// made a pass, and a commit, for nearly every event.
	WakeGap time.Duration
	// LeaseTTL is how long the lease lasts unless renewed (15 s): how long
	// the work waits after its holder died. It is
	// renewed every third of that; when a renewal fails the runner stops
	// its work at once, before the lease can pass to another instance.
	LeaseTTL time.Duration
	Now      func() time.Time
	Log      *slog.Logger

	mu      sync.Mutex
	woken   map[string]struct{}
	wake    chan struct{}
	started map[string]bool
}

// Page sizes: rooms per read of heads, events per read of a room, and
// event pages per room per pass (so that one busy room does not hold up
// the others; it goes on at the next pass).
const (
	headsPage      = 500
	eventsPage     = 200
	pagesPerRoom   = 5
	defaultEvery   = 2 * time.Second
	defaultWakeGap = 100 * time.Millisecond
	defaultTTL     = 15 * time.Second
	releaseTimeout = 5 * time.Second
)

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) every() time.Duration {
	if r.Interval > 0 {
		return r.Interval
	}
	return defaultEvery
}

func (r *Runner) wakeGap() time.Duration {
	if r.WakeGap > 0 {
		return r.WakeGap
	}
	return defaultWakeGap
}

func (r *Runner) ttl() time.Duration {
	if r.LeaseTTL > 0 {
		return r.LeaseTTL
	}
	return defaultTTL
}

func (r *Runner) init() {
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
		r.woken = map[string]struct{}{}
		r.started = map[string]bool{}
	}
}

// Wake asks for the room's new events to be handled now rather than at
// the next full pass (the local hub's Committed hook calls it). It never
// blocks; on an instance that does not hold the lease it only costs a
// map entry until the next pass.
func (r *Runner) Wake(roomID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	if len(r.woken) < headsPage {
		r.woken[roomID] = struct{}{}
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// takeWoken returns the rooms woken since the last call.
func (r *Runner) takeWoken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	rooms := make([]string, 0, len(r.woken))
	for id := range r.woken {
		rooms = append(rooms, id)
	}
	clear(r.woken)
	return rooms
}

func (r *Runner) wakeChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	return r.wake
}

// Run takes the lease when it can and, while it holds it, runs a full
// pass every Interval and a pass over the woken rooms at each Wake. It
// returns when ctx ends, releasing the lease.
func (r *Runner) Run(ctx context.Context) {
	for {
		lease, held, err := r.Store.AcquireLease(ctx, r.Lease, r.Holder, r.now(), r.ttl())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.log().Warn("taking the lease failed", "lease", r.Lease, "err", err)
		case held:
			r.log().Info("lease taken", "lease", r.Lease, "epoch", lease.Epoch)
			r.hold(ctx)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
				if err := r.Store.ReleaseLease(rctx, r.Lease, r.Holder); err != nil {
					r.log().Warn("releasing the lease failed", "lease", r.Lease, "err", err)
				}
				cancel()
				return
			}
			r.log().Warn("lease lost", "lease", r.Lease)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.every()):
		}
	}
}

// hold works while the lease is renewed, and returns when a renewal
// fails or ctx ends.
func (r *Runner) hold(ctx context.Context) {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		step := r.ttl() / 3
		t := time.NewTicker(step)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			// A renewal that takes longer than a step is a failure: the
			// lease may then be a step from its end.
			rctx, rcancel := context.WithTimeout(hctx, step)
			_, held, err := r.Store.AcquireLease(rctx, r.Lease, r.Holder, r.now(), r.ttl())
			rcancel()
			if err != nil || !held {
				if err != nil && hctx.Err() == nil {
					r.log().Warn("renewing the lease failed", "lease", r.Lease, "err", err)
				}
				return
			}
		}
	}()
	full := time.NewTimer(0)
	defer full.Stop()
	wake := r.wakeChan()
	for {
		select {
		case <-hctx.Done():
			return
		case <-full.C:
			r.takeWoken()
			r.pass(hctx, nil)
			full.Reset(r.every())
		case <-wake:
			rooms := r.takeWoken()
			if len(rooms) == 0 {
				continue
			}
			began := time.Now()
			r.pass(hctx, rooms)
			// The wakes of the rest of the gap wait for one pass. A pass
			// longer than the gap (a backlog) is followed at once.
			if rest := r.wakeGap() - time.Since(began); rest > 0 {
				gap := time.NewTimer(rest)
				select {
				case <-hctx.Done():
					gap.Stop()
					return
				case <-gap.C:
				}
			}
		}
	}
}

// pass runs every consumer over rooms (nil: every room) and then the
// jobs, logging what failed.
func (r *Runner) pass(ctx context.Context, rooms []string) {
	if err := r.Pass(ctx, rooms); err != nil && ctx.Err() == nil {
		r.log().Warn("a pass over the event log failed", "lease", r.Lease, "err", err)
	}
	for _, job := range r.Jobs {
		if err := job(ctx); err != nil && ctx.Err() == nil {
			r.log().Warn("a job of the event log's runner failed", "lease", r.Lease, "err", err)
		}
	}
}

// Pass hands every consumer the events past its cursors in rooms (nil:
// every room, found by a walk over every room's head), without regard to
// the lease: Run calls it while it holds the lease; tests call it
// directly. It goes on past a room whose handler fails and returns the
// first error.
func (r *Runner) Pass(ctx context.Context, rooms []string) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	idle := make([]bool, len(r.Consumers))
	for i, c := range r.Consumers {
		if err := r.start(ctx, c.Name); err != nil {
			return err
		}
		idle[i] = c.Idle != nil && c.Idle(ctx)
	}
	if rooms != nil {
		for i, c := range r.Consumers {
			if !idle[i] {
				keep(r.catchUp(ctx, c, rooms, nil))
			}
		}
		return first
	}
	after := ""
	for {
		heads, err := r.Store.Heads(ctx, after, headsPage)
		if err != nil {
			return errors.Join(first, err)
		}
		if len(heads) == 0 {
			return first
		}
		ids := make([]string, len(heads))
		seqs := make(map[string]int64, len(heads))
		for i, h := range heads {
			ids[i], seqs[h.Room] = h.Room, h.Seq
		}
		for i, c := range r.Consumers {
			if idle[i] {
				keep(r.skip(ctx, c, ids, seqs))
			} else {
				keep(r.catchUp(ctx, c, ids, seqs))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		after = heads[len(heads)-1].Room
	}
}

// start sets the consumer's cursors to the heads of the rooms that exist
// when it first runs on the store, then marks it started.
func (r *Runner) start(ctx context.Context, consumer string) error {
	r.mu.Lock()
	r.init()
	done := r.started[consumer]
	r.mu.Unlock()
	if done {
		return nil
	}
	got, err := r.Store.Cursors(ctx, consumer, []string{Started})
	if err != nil {
		return err
	}
	if _, ok := got[Started]; !ok {
		after := ""
		for {
			heads, err := r.Store.Heads(ctx, after, headsPage)
			if err != nil {
				return err
			}
			if len(heads) == 0 {
				break
			}
			seqs := make(map[string]int64, len(heads))
			for _, h := range heads {
				seqs[h.Room] = h.Seq
			}
			if err := r.Store.Advance(ctx, consumer, seqs); err != nil {
				return err
			}
			after = heads[len(heads)-1].Room
		}
		if err := r.Store.Advance(ctx, consumer, map[string]int64{Started: 1}); err != nil {
			return err
		}
		r.log().Info("event log consumer started at the current heads", "consumer", consumer)
	}
	r.mu.Lock()
	r.started[consumer] = true
	r.mu.Unlock()
	return nil
}

// catchUp hands c the events of rooms past its cursors, then moves the
// cursors past what it handled in one write (a crash before it repeats
// those events, which handlers make harmless). With heads, only the rooms
// whose head is past the cursor are read.
func (r *Runner) catchUp(ctx context.Context, c Consumer, rooms []string, heads map[string]int64) error {
	cursors, err := r.Store.Cursors(ctx, c.Name, rooms)
	if err != nil {
		return err
	}
	var first error
	moved := map[string]int64{}
	for _, id := range rooms {
		if ctx.Err() != nil {
			first = ctx.Err()
			break
		}
		if heads != nil && heads[id] <= cursors[id] {
			continue
		}
		done, err := r.drain(ctx, c, id, cursors[id])
		if done > cursors[id] {
			moved[id] = done
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if len(moved) > 0 {
		// Written even when ctx ended: what was handled is done.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := r.Store.Advance(actx, c.Name, moved); err != nil {
			return errors.Join(first, err)
		}
	}
	return first
}

// skip moves an idle consumer's cursors of rooms to their heads, reading
// no event.
func (r *Runner) skip(ctx context.Context, c Consumer, rooms []string, heads map[string]int64) error {
	cursors, err := r.Store.Cursors(ctx, c.Name, rooms)
	if err != nil {
		return err
	}
	moved := map[string]int64{}
	for _, id := range rooms {
		if heads[id] > cursors[id] {
			moved[id] = heads[id]
		}
	}
	if len(moved) == 0 {
		return nil
	}
	return r.Store.Advance(ctx, c.Name, moved)
}

// drain hands c the room's events after the cursor, a page at a time, up
// to pagesPerRoom pages or the event whose handler failed, and returns the
// seq of the last event handled (cursor when none was).
func (r *Runner) drain(ctx context.Context, c Consumer, roomID string, cursor int64) (int64, error) {
	for range pagesPerRoom {
		evs, err := r.Events.Events(ctx, roomID, cursor, eventsPage, false)
		if err != nil || len(evs) == 0 {
			return cursor, err
		}
		for _, ev := range evs {
			if err := c.Handle(ctx, ev); err != nil {
				return cursor, err
			}
			cursor = ev.Seq
		}
		if len(evs) < eventsPage {
			return cursor, nil
		}
	}
	return cursor, nil
}
