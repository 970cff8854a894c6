// Package sessiontest is the conformance suite of session.Store: every
// implementation runs TestStore in its own tests.
package sessiontest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/session"
)

// People of the suite.
var (
	Alice = dealroom.Actor{ID: "alice", Name: "Alice", Email: "alice@bank.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	Carol = dealroom.Actor{ID: "carol", Name: "Carol", Email: "carol@acme.example", Kind: dealroom.Customer, Invite: "inv1"}
)

// clock is a settable clock, in whole milliseconds (what every store keeps).
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) session.Store) {
	setup := func(t *testing.T) (*session.Sessions, session.Store, *clock) {
		st := newStore(t)
		c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
		return &session.Sessions{Store: st, Idle: time.Hour, Max: 10 * time.Hour, Now: c.now}, st, c
	}
	ctx := context.Background()

	t.Run("CreateAndGet", func(t *testing.T) {
		m, _, _ := setup(t)
		token, s, err := m.Create(ctx, Carol, session.ViaInvite, time.Time{})
		require.NoError(t, err)
		got, err := m.Get(ctx, token)
		require.NoError(t, err)
		assert.Equal(t, s.ID, got.ID)
		assert.Equal(t, Carol, got.Actor, "the actor comes back whole, invite included")
		assert.Equal(t, s.CSRF, got.CSRF)
		assert.NotEmpty(t, got.CSRF)
		assert.Equal(t, session.ViaInvite, got.Via)
		assert.True(t, s.ExpiresAt.Equal(got.ExpiresAt), "expires %v, want %v", got.ExpiresAt, s.ExpiresAt)
		assert.True(t, s.IdleUntil.Equal(got.IdleUntil))
		assert.True(t, s.CreatedAt.Equal(got.CreatedAt))

		_, err = m.Get(ctx, token+"x")
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "another token is no session")
		_, err = m.Get(ctx, "")
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err))
	})

	t.Run("TokenNeverStored", func(t *testing.T) {
		m, st, _ := setup(t)
		token, s, err := m.Create(ctx, Alice, session.ViaToken, time.Time{})
		require.NoError(t, err)
		assert.NotEqual(t, token, s.ID)
		_, err = st.Session(ctx, token)
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "the store knows no session by the token in clear")
		got, err := st.Session(ctx, session.Hash(token))
		require.NoError(t, err)
		assert.Equal(t, s.ID, got.ID)
		all, err := st.UserSessions(ctx, Alice.ID)
		require.NoError(t, err)
		require.Len(t, all, 1)
		assert.NotEqual(t, token, all[0].ID)
		assert.NotEqual(t, token, all[0].CSRF)
	})

	t.Run("CreateTwiceConflicts", func(t *testing.T) {
		_, st, c := setup(t)
		s := session.Session{ID: session.Hash("t"), Actor: Alice, CSRF: "x", Via: session.ViaToken,
			CreatedAt: c.t, LastSeen: c.t, IdleUntil: c.t.Add(time.Hour), ExpiresAt: c.t.Add(time.Hour)}
		require.NoError(t, st.CreateSession(ctx, s))
		err := st.CreateSession(ctx, s)
		assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err))
	})

	t.Run("IdleExpiry", func(t *testing.T) {
		m, _, c := setup(t)
		token, _, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		c.advance(50 * time.Minute)
		_, err = m.Get(ctx, token)
		require.NoError(t, err, "used within the idle time")
		c.advance(50 * time.Minute)
		_, err = m.Get(ctx, token)
		require.NoError(t, err, "the last use moved the idle end")
		c.advance(time.Hour)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(m.Alive(ctx, session.Hash(token))), "unused for the idle time")
		_, err = m.Get(ctx, token)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "unused for the idle time")
		c.advance(-time.Hour)
		_, err = m.Get(ctx, token)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "an ended session stays ended")
	})

	t.Run("RefreshAtMostOnceAMinute", func(t *testing.T) {
		m, st, c := setup(t)
		token, s, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		c.advance(30 * time.Second)
		_, err = m.Get(ctx, token)
		require.NoError(t, err)
		got, err := st.Session(ctx, s.ID)
		require.NoError(t, err)
		assert.True(t, s.IdleUntil.Equal(got.IdleUntil), "a use within a minute of the last is not written")
		c.advance(31 * time.Second)
		_, err = m.Get(ctx, token)
		require.NoError(t, err)
		got, err = st.Session(ctx, s.ID)
		require.NoError(t, err)
		assert.True(t, c.t.Add(time.Hour).Equal(got.IdleUntil), "idle until %v", got.IdleUntil)
		assert.True(t, c.t.Equal(got.LastSeen))
	})

	t.Run("AbsoluteExpiry", func(t *testing.T) {
		m, _, c := setup(t)
		token, _, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		for i := 0; i < 19; i++ {
			c.advance(30 * time.Minute)
			_, err = m.Get(ctx, token)
			require.NoError(t, err, "in use, after %v", time.Duration(i+1)*30*time.Minute)
		}
		c.advance(30 * time.Minute)
		_, err = m.Get(ctx, token)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "used all along, but past the absolute lifetime")
	})

	t.Run("NotAfter", func(t *testing.T) {
		m, _, c := setup(t)
		token, s, err := m.Create(ctx, Carol, session.ViaInvite, c.t.Add(30*time.Minute))
		require.NoError(t, err)
		assert.True(t, c.t.Add(30*time.Minute).Equal(s.ExpiresAt), "a session ends with the token it came from")
		assert.True(t, s.ExpiresAt.Equal(s.IdleUntil))
		c.advance(30 * time.Minute)
		_, err = m.Get(ctx, token)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err))
	})

	t.Run("End", func(t *testing.T) {
		m, _, _ := setup(t)
		t1, s1, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		t2, _, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		require.NoError(t, m.Alive(ctx, s1.ID))
		require.NoError(t, m.End(ctx, s1.ID))
		require.NoError(t, m.End(ctx, s1.ID), "ending twice is no error")
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(m.Alive(ctx, s1.ID)))
		_, err = m.Get(ctx, t1)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err))
		_, err = m.Get(ctx, t2)
		assert.NoError(t, err, "the user's other session goes on")
	})

	t.Run("EndUserAndList", func(t *testing.T) {
		m, _, c := setup(t)
		var mine []string
		var tokens []string
		for i := 0; i < 3; i++ {
			tok, s, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
			require.NoError(t, err)
			mine = append(mine, s.ID)
			tokens = append(tokens, tok)
			c.advance(time.Second)
		}
		carolToken, _, err := m.Create(ctx, Carol, session.ViaInvite, time.Time{})
		require.NoError(t, err)

		list, err := m.List(ctx, Alice.ID)
		require.NoError(t, err)
		var ids []string
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		assert.Equal(t, mine, ids, "the user's sessions, oldest first")

		ended, err := m.EndUser(ctx, Alice.ID)
		require.NoError(t, err)
		assert.ElementsMatch(t, mine, ended)
		for _, tok := range tokens {
			_, err = m.Get(ctx, tok)
			assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err))
		}
		list, err = m.List(ctx, Alice.ID)
		require.NoError(t, err)
		assert.Empty(t, list)
		ended, err = m.EndUser(ctx, Alice.ID)
		require.NoError(t, err)
		assert.Empty(t, ended, "nothing left to end")

		_, err = m.Get(ctx, carolToken)
		assert.NoError(t, err, "another user's session goes on")
	})

	t.Run("ListLeavesOutEnded", func(t *testing.T) {
		m, _, c := setup(t)
		_, _, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		c.advance(2 * time.Hour)
		_, fresh, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		list, err := m.List(ctx, Alice.ID)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, fresh.ID, list[0].ID)
	})

	t.Run("Sweep", func(t *testing.T) {
		m, st, c := setup(t)
		_, idle, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		_, short, err := m.Create(ctx, Carol, session.ViaInvite, c.now().Add(3*time.Hour))
		require.NoError(t, err)
		c.advance(50 * time.Minute)
		carolToken, _, err := m.Create(ctx, Carol, session.ViaInvite, time.Time{})
		require.NoError(t, err)
		aliceToken, _, err := m.Create(ctx, Alice, session.ViaOIDC, time.Time{})
		require.NoError(t, err)
		// Alice's first session goes idle (an hour); Carol's first one is
		// kept alive by its use until its token's end.
		c.advance(20 * time.Minute)
		require.NoError(t, st.TouchSession(ctx, short.ID, c.now(), c.now().Add(time.Hour)))
		n, err := st.SweepSessions(ctx, c.now())
		require.NoError(t, err)
		assert.Equal(t, 1, n, "the idle one")
		_, err = st.Session(ctx, idle.ID)
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "swept away")

		c.advance(2 * time.Hour) // past Carol's first token and everyone's idle hour
		_, err = m.Get(ctx, carolToken)
		require.Error(t, err)
		n, err = st.SweepSessions(ctx, c.now())
		require.NoError(t, err)
		assert.GreaterOrEqual(t, n, 2, "the one past its end and the idle ones")
		for _, u := range []string{Alice.ID, Carol.ID} {
			list, err := st.UserSessions(ctx, u)
			require.NoError(t, err)
			assert.Empty(t, list, "nothing of %s is left", u)
		}
		_, err = m.Get(ctx, aliceToken)
		assert.Error(t, err)
		n, err = st.SweepSessions(ctx, c.now())
		require.NoError(t, err)
		assert.Zero(t, n, "a second sweep finds nothing")
	})

	testTickets(t, func(t *testing.T) (session.Store, *clock) {
		_, st, c := setup(t)
		return st, c
	})
}

// testTickets is the part of the suite about session.Tickets.
func testTickets(t *testing.T, setup func(t *testing.T) (session.Store, *clock)) {
	ctx := context.Background()
	ticket := func(c *clock, id string, life time.Duration) session.Ticket {
		return session.Ticket{ID: id, Subject: "carol@acme.example", CreatedAt: c.now(), ExpiresAt: c.now().Add(life)}
	}

	t.Run("TicketAddedOnce", func(t *testing.T) {
		st, c := setup(t)
		added, err := st.AddTicket(ctx, ticket(c, "oidc:a", time.Minute))
		require.NoError(t, err)
		assert.True(t, added)
		c.advance(59 * time.Second)
		added, err = st.AddTicket(ctx, ticket(c, "oidc:a", time.Minute))
		require.NoError(t, err)
		assert.False(t, added, "a replay within the ticket's time")
		added, err = st.AddTicket(ctx, ticket(c, "oidc:b", time.Minute))
		require.NoError(t, err)
		assert.True(t, added, "another id")

		c.advance(time.Second) // a's first ticket expires; the refused add left it as it was
		added, err = st.AddTicket(ctx, ticket(c, "oidc:a", time.Minute))
		require.NoError(t, err)
		assert.True(t, added, "an expired ticket is replaced")
		added, err = st.AddTicket(ctx, ticket(c, "oidc:a", time.Minute))
		require.NoError(t, err)
		assert.False(t, added, "and the new one counts")
	})

	t.Run("TicketTakenOnce", func(t *testing.T) {
		st, c := setup(t)
		want := ticket(c, "link:"+session.Hash("code"), 15*time.Minute)
		added, err := st.AddTicket(ctx, want)
		require.NoError(t, err)
		require.True(t, added)
		c.advance(time.Minute)
		got, err := st.TakeTicket(ctx, want.ID, c.now())
		require.NoError(t, err)
		assert.Equal(t, want.ID, got.ID)
		assert.Equal(t, want.Subject, got.Subject)
		assert.True(t, want.CreatedAt.Equal(got.CreatedAt))
		assert.True(t, want.ExpiresAt.Equal(got.ExpiresAt))
		_, err = st.TakeTicket(ctx, want.ID, c.now())
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "taken already")
		_, err = st.TakeTicket(ctx, "link:"+session.Hash("other"), c.now())
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "never added")
	})

	t.Run("TicketExpires", func(t *testing.T) {
		st, c := setup(t)
		tk := ticket(c, "link:x", 15*time.Minute)
		_, err := st.AddTicket(ctx, tk)
		require.NoError(t, err)
		c.advance(15 * time.Minute)
		_, err = st.TakeTicket(ctx, tk.ID, c.now())
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "at its expiry")
		_, err = st.TakeTicket(ctx, tk.ID, c.now().Add(-time.Minute))
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "an expired ticket taken is gone")
	})

	t.Run("TicketConcurrent", func(t *testing.T) {
		st, c := setup(t)
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		adds, takes := 0, 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				added, err := st.AddTicket(ctx, ticket(c, "oidc:race", time.Minute))
				assert.NoError(t, err, "add %d", i)
				mu.Lock()
				defer mu.Unlock()
				if added {
					adds++
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, adds, "of concurrent adds of one id exactly one adds")

		_, err := st.AddTicket(ctx, ticket(c, "link:race", time.Minute))
		require.NoError(t, err)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.TakeTicket(ctx, "link:race", c.now())
				mu.Lock()
				defer mu.Unlock()
				switch dealroom.ErrorCode(err) {
				case "":
					takes++
				case dealroom.ENOTFOUND:
				default:
					t.Errorf("take %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, takes, "of concurrent takes of one ticket exactly one wins")
	})

	t.Run("TicketSweep", func(t *testing.T) {
		st, c := setup(t)
		for i := range 3 {
			_, err := st.AddTicket(ctx, ticket(c, fmt.Sprint("link:short", i), time.Minute))
			require.NoError(t, err)
		}
		_, err := st.AddTicket(ctx, ticket(c, "link:long", time.Hour))
		require.NoError(t, err)
		n, err := st.SweepTickets(ctx, c.now())
		require.NoError(t, err)
		assert.Zero(t, n, "nothing has expired yet")
		c.advance(time.Minute)
		n, err = st.SweepTickets(ctx, c.now())
		require.NoError(t, err)
		assert.Equal(t, 3, n, "the expired ones")
		n, err = st.SweepTickets(ctx, c.now())
		require.NoError(t, err)
		assert.Zero(t, n, "a second sweep finds nothing")
		_, err = st.TakeTicket(ctx, "link:long", c.now())
		assert.NoError(t, err, "the unexpired one is kept")
	})
}
