// Package lazy runs a queue's work on a goroutine that exists only while
// work waits. A connected device has several queues (the frames it sent,
// its commands, the frames to send it), and most of the time all of them
// are empty: a goroutine parked on each would make every idle device cost
// several goroutines and their stacks. Here the work that finds its queue
// idle starts the goroutine, and the goroutine ends when it finds the
// queue empty.
//
// Both decisions are taken under the queue's own lock, in the same
// critical section that adds or takes the work: no work is left behind
// by a goroutine that has just decided to end, and never do two run at
// once, so the work is carried out in order.
//
// Runner is that protocol alone, for a queue that keeps its items its own
// way (the hub's send queue, with its bounds and its replaceable presence
// frames). Queue is a bounded queue of items built on it (a websocket's
// frames and commands).
package lazy

import (
	"context"
	"sync"
)

// Runner is the goroutine of a queue, started when work arrives and ended
// when the queue is empty. It has no lock of its own: the queue's lock
// guards it, and Wake and Idle are called with that lock held. The zero
// value is a runner whose goroutine does not run.
type Runner struct {
	running bool
}

// Wake starts run on a new goroutine unless the runner's goroutine runs
// already. Call it with the queue's lock held, after adding work. run
// takes the work until there is none, and then calls Idle and returns.
func (r *Runner) Wake(run func()) {
	if !r.running {
		r.running = true
		go run()
	}
}

// Idle tells that the goroutine found the queue empty and ends: the next
// Wake starts a new one. Call it with the queue's lock held, in the same
// critical section in which the queue was seen empty.
func (r *Runner) Idle() { r.running = false }

// Running tells whether the goroutine runs (or was started and has not
// called Idle yet). Call it with the queue's lock held.
func (r *Runner) Running() bool { return r.running }

// Queue hands items, in order, to Handle, on a goroutine that exists only
// while items wait. Each run of that goroutine has a context, which Stop
// cancels. Set the exported fields before the first Put; the zero value
// with them set is ready to use (a queue embedded in a connection costs
// no allocation until it is used).
type Queue[T any] struct {
	// Limit bounds the items that wait (not counting the one being
	// handled).
	Limit int
	// Wait makes Put wait for room instead of refusing the item.
	Wait bool
	// Handle carries out an item.
	Handle func(ctx context.Context, item T)

	mu      sync.Mutex
	items   []T
	runner  Runner
	stopped bool
	cancel  context.CancelFunc // the running goroutine's
	room    *sync.Cond         // made when Put first waits
}

// Put queues item. It reports false when the item was refused: the queue
// is full (and Wait is not set) or stopped.
func (q *Queue[T]) Put(item T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) >= q.Limit && q.Wait && !q.stopped {
		if q.room == nil {
			q.room = sync.NewCond(&q.mu)
		}
		q.room.Wait()
	}
	if q.stopped || len(q.items) >= q.Limit {
		return false
	}
	q.items = append(q.items, item)
	q.runner.Wake(q.run)
	return true
}

func (q *Queue[T]) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q.mu.Lock()
	q.cancel = cancel
	for len(q.items) > 0 && !q.stopped {
		item := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		if q.room != nil {
			q.room.Signal()
		}
		q.mu.Unlock()
		q.Handle(ctx, item)
		q.mu.Lock()
	}
	// Idle: the backing array goes too (the next item makes a small one).
	q.items = nil
	q.cancel = nil
	q.runner.Idle()
	q.mu.Unlock()
}

// Stop drops the items that wait, cancels the running handler's context
// and refuses what is put from now on. Stopping twice is harmless.
func (q *Queue[T]) Stop() {
	q.mu.Lock()
	q.stopped = true
	q.items = nil
	if q.cancel != nil {
		q.cancel()
	}
	if q.room != nil {
		q.room.Broadcast()
	}
	q.mu.Unlock()
}
