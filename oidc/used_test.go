package oidc

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestMemoryUsed(t *testing.T) {
	now := time.Unix(1700000000, 0)
	m := &MemoryUsed{Now: func() time.Time { return now }}
	ctx := context.Background()
	use := func(id string, until time.Time) bool {
		t.Helper()
		first, err := m.Use(ctx, id, until)
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	if !use("a", now.Add(time.Minute)) || use("a", now.Add(time.Minute)) {
		t.Fatal("a: want first, then not")
	}
	if !use("b", now.Add(time.Hour)) {
		t.Fatal("b: want first")
	}

	// Once a's time has passed it is swept: what the map holds stays
	// bounded. b's time has not, so it is still refused.
	now = now.Add(2 * time.Minute)
	for i := range sweepEvery {
		use(fmt.Sprint("x", i), now.Add(-time.Second))
	}
	m.mu.Lock()
	_, kept := m.until["a"]
	m.mu.Unlock()
	if kept {
		t.Error("a is still held after its time")
	}
	if use("b", now.Add(time.Hour)) {
		t.Error("b accepted again before its time")
	}
}
