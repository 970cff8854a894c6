package mongostore

import (
	"context"
	"sync"
	"time"
)

// roomLocks serializes the writers of one room within this process, so
// that they do not race each other for the same seq. Writers in other
// processes are kept apart by the unique (room_id, seq) index alone.
type roomLocks struct {
	mu sync.Mutex
	m  map[string]*roomLock
}

type roomLock struct {
	ch   chan struct{}
	refs int
}

// lock waits for the room's lock or for ctx to end.
func (l *roomLocks) lock(ctx context.Context, room string) (unlock func(), err error) {
	l.mu.Lock()
	rl := l.m[room]
	if rl == nil {
		rl = &roomLock{ch: make(chan struct{}, 1)}
		l.m[room] = rl
	}
	rl.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		rl.refs--
		if rl.refs == 0 {
			delete(l.m, room)
		}
		l.mu.Unlock()
	}
	select {
	case rl.ch <- struct{}{}:
		return func() { <-rl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// freshCache remembers when a room's read models were last found to be up
// to date with its events, so that reads need not check on every call.
type freshCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const freshCacheMax = 10000

func (c *freshCache) recent(room string, within time.Duration) bool {
	if within <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[room]
	return ok && time.Since(at) < within
}

func (c *freshCache) mark(room string, within time.Duration) {
	if within <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= freshCacheMax {
		for r, at := range c.m {
			if now.Sub(at) >= within {
				delete(c.m, r)
			}
		}
		if len(c.m) >= freshCacheMax {
			clear(c.m)
		}
	}
	c.m[room] = now
}

// forget makes the next read of the room check it.
func (c *freshCache) forget(room string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, room)
}
