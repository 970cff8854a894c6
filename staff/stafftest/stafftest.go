// Package stafftest is the conformance suite of staff.Store: every
// implementation runs TestStore in its own tests.
package stafftest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/staff"
)

// People of the suite.
var (
	Ada = dealroom.Actor{ID: "ada", Name: "Ada Admin", Email: "Ada@Seller.example", Kind: dealroom.Staff, Role: dealroom.Admin}
	Rex = dealroom.Actor{ID: "rex", Name: "Rex Rep", Email: "rex@seller.example", Kind: dealroom.Staff, Role: dealroom.Rep}
	Cat = dealroom.Actor{ID: "cat", Name: "Cat Customer", Email: "cat@buyer.example", Kind: dealroom.Customer}
)

// clock is a clock the suite moves, safe for the goroutines that read it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) staff.Store) {
	ctx := context.Background()
	setup := func(t *testing.T) (*staff.Service, staff.Store, *clock) {
		st := newStore(t)
		c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
		return &staff.Service{Store: st, Now: c.now}, st, c
	}

	t.Run("KeyLifecycle", func(t *testing.T) {
		svc, st, c := setup(t)
		acct, key, err := svc.Create(ctx, Ada, "Salesforce", []staff.Scope{staff.RoomsWrite, staff.RoomsRead}, "")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(key, "drk_"), "the key is recognisable: %s", key)
		assert.GreaterOrEqual(t, len(key), 40)
		assert.Equal(t, []staff.Scope{staff.RoomsRead, staff.RoomsWrite}, acct.Scopes)
		assert.True(t, strings.HasPrefix(key, acct.KeyStart))
		assert.Nil(t, acct.LastUsedAt)

		listed, err := svc.Accounts(ctx, Ada)
		require.NoError(t, err)
		require.Len(t, listed, 1)
		assert.Equal(t, acct.ID, listed[0].ID)
		assert.NotContains(t, listed[0].KeyHash, key, "the key is not kept")
		assert.Equal(t, staff.HashKey(key), listed[0].KeyHash)

		a, err := svc.Authenticate(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, "svc:"+acct.ID, a.ID)
		assert.Equal(t, dealroom.Staff, a.Kind)
		assert.True(t, a.IsService())
		assert.True(t, staff.Has(a, staff.RoomsWrite))
		assert.False(t, staff.Has(a, staff.ExportRead), "only its scopes")
		used := lastUsed(t, st, acct.ID)
		require.NotNil(t, used, "the first use is recorded")
		assert.True(t, used.Equal(c.now()))

		first := *used
		c.advance(20 * time.Second)
		_, err = svc.Authenticate(ctx, key)
		require.NoError(t, err)
		assert.True(t, lastUsed(t, st, acct.ID).Equal(first), "not written on every request")
		c.advance(time.Minute)
		_, err = svc.Authenticate(ctx, key)
		require.NoError(t, err)
		assert.True(t, lastUsed(t, st, acct.ID).Equal(c.now()), "moved after a minute")

		for _, bad := range []string{key + "x", "drk_" + strings.Repeat("A", 43), "", "eyJhbGciOi"} {
			_, err = svc.Authenticate(ctx, bad)
			assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "%q", bad)
		}

		revoked, err := svc.Revoke(ctx, Ada, acct.ID)
		require.NoError(t, err)
		require.NotNil(t, revoked.RevokedAt)
		_, err = svc.Authenticate(ctx, key)
		assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err), "a revoked key is refused")
		c.advance(time.Hour)
		again, err := svc.Revoke(ctx, Ada, acct.ID)
		require.NoError(t, err)
		assert.True(t, again.RevokedAt.Equal(*revoked.RevokedAt), "revoked once")
		_, err = svc.Revoke(ctx, Ada, "sa_nope")
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	})

	t.Run("OnlyAdmins", func(t *testing.T) {
		svc, _, _ := setup(t)
		_, key, err := svc.Create(ctx, Ada, "HubSpot", []staff.Scope{staff.RoomsRead}, "")
		require.NoError(t, err)
		bot, err := svc.Authenticate(ctx, key)
		require.NoError(t, err)
		for _, a := range []dealroom.Actor{Rex, Cat, bot, {ID: "mia", Kind: dealroom.Staff, Role: dealroom.Manager}} {
			_, _, err := svc.Create(ctx, a, "x", []staff.Scope{staff.RoomsRead}, "")
			assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), a.ID)
			_, err = svc.Accounts(ctx, a)
			assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), a.ID)
			_, err = svc.Revoke(ctx, a, "sa_x")
			assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), a.ID)
		}
	})

	t.Run("CreateChecksItsInput", func(t *testing.T) {
		svc, st, _ := setup(t)
		for name, in := range map[string]struct {
			name   string
			scopes []staff.Scope
		}{
			"no name":       {"", []staff.Scope{staff.RoomsRead}},
			"long name":     {strings.Repeat("n", staff.MaxName+1), []staff.Scope{staff.RoomsRead}},
			"no scopes":     {"CRM", nil},
			"unknown scope": {"CRM", []staff.Scope{staff.RoomsRead, "rooms:delete"}},
		} {
			_, _, err := svc.Create(ctx, Ada, in.name, in.scopes, "")
			assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err), name)
		}
		all, err := st.Accounts(ctx)
		require.NoError(t, err)
		assert.Empty(t, all, "nothing refused was made")
	})

	t.Run("ManyAccounts", func(t *testing.T) {
		svc, st, _ := setup(t)
		keys := map[string]string{}
		for i := range 5 {
			a, key, err := svc.Create(ctx, Ada, "CRM", []staff.Scope{staff.Scopes[i%3]}, "")
			require.NoError(t, err)
			keys[a.ID] = key
		}
		all, err := st.Accounts(ctx)
		require.NoError(t, err)
		require.Len(t, all, 5)
		for i := 1; i < len(all); i++ {
			assert.Less(t, all[i-1].ID, all[i].ID, "by id")
		}
		for id, key := range keys {
			a, err := svc.Authenticate(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, "svc:"+id, a.ID, "each key is its own account's")
		}
		err = st.CreateAccount(ctx, all[0])
		assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "an id is not made twice")
		require.NoError(t, st.TouchAccount(ctx, "sa_nope", time.Now()), "touching no account is no error")
	})

	t.Run("PeopleByEmail", func(t *testing.T) {
		svc, _, c := setup(t)
		svc.Seen(ctx, Ada)
		svc.Seen(ctx, Cat) // customers are not staff
		svc.Seen(ctx, dealroom.Actor{ID: "svc:x", Kind: dealroom.Staff, Email: "bot@seller.example", Scopes: "rooms:read"})
		got, err := svc.Owner(ctx, "ada@seller.EXAMPLE")
		require.NoError(t, err)
		assert.Equal(t, Ada.ID, got.ID, "found by email in any case")
		assert.Equal(t, Ada.Name, got.Name)
		assert.Equal(t, dealroom.Staff, got.Kind)
		for _, email := range []string{"cat@buyer.example", "bot@seller.example", "nobody@seller.example"} {
			got, err = svc.Owner(ctx, email)
			require.NoError(t, err)
			assert.Empty(t, got.ID, email)
		}
		// The address moves to whoever signs in with it last.
		c.advance(time.Hour)
		svc.Seen(ctx, dealroom.Actor{ID: "oidc:ada", Name: "Ada A.", Email: Ada.Email, Kind: dealroom.Staff, Role: dealroom.Admin})
		got, err = svc.Owner(ctx, Ada.Email)
		require.NoError(t, err)
		assert.Equal(t, "oidc:ada", got.ID)
	})
}

func lastUsed(t *testing.T, st staff.Store, id string) *time.Time {
	t.Helper()
	all, err := st.Accounts(context.Background())
	require.NoError(t, err)
	for _, a := range all {
		if a.ID == id {
			return a.LastUsedAt
		}
	}
	t.Fatalf("no account %s", id)
	return nil
}
