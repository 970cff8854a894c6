package oidc

import (
	"context"
	"testing"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/internal/testenv/oidcop"
)

// TestReplayOnAnotherInstance: two instances share the store; a callback
// finished on one is refused on the other, and so is an ID token whose
// nonce was presented on the other.
func TestReplayOnAnotherInstance(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := startProvider(t, oidcop.Options{})
	cfg := config(p)
	cfg.Used = StoreUsed{Tickets: st}
	one, two := mustNew(t, cfg), mustNew(t, cfg)

	authURL, a := one.Begin()
	q := login(t, p, authURL, "ada@example.com")
	b := a
	b.State = "another-state"
	q2 := login(t, p, one.authURL(b), "ada@example.com")

	if _, _, err := one.Finish(context.Background(), a, q); err != nil {
		t.Fatal(err)
	}
	_, _, err = two.Finish(context.Background(), a, q)
	wantRefused(t, err, dealroom.EUNAUTH, "already used", q)
	_, _, err = two.Finish(context.Background(), b, q2)
	wantRefused(t, err, dealroom.EUNAUTH, "token was already used", q2)

	// A sign-in of its own on the second instance goes through.
	authURL, c := two.Begin()
	if _, _, err := two.Finish(context.Background(), c, login(t, p, authURL, "ada@example.com")); err != nil {
		t.Fatal(err)
	}
}
