// Package testclock is a clock that tests move by hand, safe for the
// goroutines of the code under test that read it: what a component takes
// as its Now func, when a test must not wait for real time to pass.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time a test moves.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
