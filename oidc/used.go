package oidc

import (
	"context"
	"sync"
	"time"
)

var _ Used = (*MemoryUsed)(nil)

// sweepEvery is how many uses pass between two sweeps of the expired ids.
const sweepEvery = 256

// MemoryUsed is a [Used] in memory, for one instance. Its zero value is
// ready to use. It keeps an id until its time has passed: what it holds is
// bounded by the sign-ins of the last AttemptLifetime (states) and of the
// ID tokens' lifetime (nonces).
type MemoryUsed struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	until map[string]time.Time
	uses  int
}

// Use records id until the given time; it reports false when id was
// recorded before and has not yet been forgotten. It never fails.
func (m *MemoryUsed) Use(_ context.Context, id string, until time.Time) (bool, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = map[string]time.Time{}
	}
	if m.uses++; m.uses%sweepEvery == 0 {
		for k, t := range m.until {
			if now.After(t) {
				delete(m.until, k)
			}
		}
	}
	if _, seen := m.until[id]; seen {
		return false, nil
	}
	m.until[id] = until
	return true, nil
}
