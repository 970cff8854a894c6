package oidc

import (
	"context"
	"sync"
	"time"

	"dealroom/session"
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

var _ Used = StoreUsed{}

// usedAtLeast is how long StoreUsed keeps an id at least, whatever its
// time: a few instances' clocks that disagree by seconds do not reopen it.
const usedAtLeast = time.Minute

// StoreUsed is a [Used] kept as tickets in the store (session.Tickets),
// which every instance shares: a state or a nonce replayed to another
// instance is refused there too. Only the hash of an id is stored.
type StoreUsed struct {
	Tickets session.Tickets
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Use implements [Used]: it adds a ticket of the id, which fails when one
// is held. It returns an error only when the store cannot be reached.
func (u StoreUsed) Use(ctx context.Context, id string, until time.Time) (bool, error) {
	now := time.Now()
	if u.Now != nil {
		now = u.Now()
	}
	if min := now.Add(usedAtLeast); until.Before(min) {
		until = min
	}
	return u.Tickets.AddTicket(ctx, session.Ticket{ID: "oidc:" + session.Hash(id), CreatedAt: now, ExpiresAt: until})
}
