// Package pushtest is the conformance suite of push.Store: every store
// runs TestStore in its own tests.
package pushtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/push"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// TestStore runs the suite against stores made by newStore, a fresh and
// empty one for each call.
func TestStore(t *testing.T, newStore func(tb testing.TB) push.Store) {
	t.Run("Subscriptions", func(t *testing.T) { testSubscriptions(t, newStore(t)) })
	t.Run("EndpointMovesToItsLastUser", func(t *testing.T) { testMove(t, newStore(t)) })
	t.Run("VAPIDKeysKeptOnce", func(t *testing.T) { testKeys(t, newStore(t)) })
}

func sub(user, endpoint string, at time.Time) push.Subscription {
	return push.Subscription{ID: push.IDOf(endpoint), User: user, Endpoint: endpoint,
		P256dh: "BP" + endpoint, Auth: "auth-" + user, CreatedAt: at}
}

func testSubscriptions(t *testing.T, st push.Store) {
	ctx := context.Background()
	got, err := st.PushSubscriptions(ctx, "ana")
	require.NoError(t, err)
	assert.Empty(t, got)

	phone := sub("ana", "https://push.example/phone", t0)
	laptop := sub("ana", "https://push.example/laptop", t0.Add(time.Minute))
	other := sub("ben", "https://push.example/ben", t0)
	for _, s := range []push.Subscription{phone, laptop, other} {
		require.NoError(t, st.AddPushSubscription(ctx, s))
	}
	got, err = st.PushSubscriptions(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, []push.Subscription{phone, laptop}, got, "each field back, oldest first")

	// The browser subscribes again with new keys: one subscription, the
	// new keys.
	renewed := phone
	renewed.P256dh, renewed.Auth = "BPnew", "newauth"
	require.NoError(t, st.AddPushSubscription(ctx, renewed))
	got, err = st.PushSubscriptions(ctx, "ana")
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Contains(t, got, renewed)

	// Someone else cannot remove Ana's.
	err = st.RemovePushSubscription(ctx, "ben", phone.ID)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "%v", err)
	require.NoError(t, st.RemovePushSubscription(ctx, "ana", phone.ID))
	err = st.RemovePushSubscription(ctx, "ana", phone.ID)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "removed twice: %v", err)
	got, err = st.PushSubscriptions(ctx, "ana")
	require.NoError(t, err)
	assert.Equal(t, []push.Subscription{laptop}, got)
	got, err = st.PushSubscriptions(ctx, "ben")
	require.NoError(t, err)
	assert.Equal(t, []push.Subscription{other}, got)
}

// testMove: a browser shared by two people belongs to the last who turned
// notifications on in it.
func testMove(t *testing.T, st push.Store) {
	ctx := context.Background()
	shared := sub("ana", "https://push.example/shared", t0)
	require.NoError(t, st.AddPushSubscription(ctx, shared))
	moved := sub("ben", shared.Endpoint, t0.Add(time.Hour))
	require.NoError(t, st.AddPushSubscription(ctx, moved))
	got, err := st.PushSubscriptions(ctx, "ana")
	require.NoError(t, err)
	assert.Empty(t, got, "Ana's device is now Ben's")
	got, err = st.PushSubscriptions(ctx, "ben")
	require.NoError(t, err)
	assert.Equal(t, []push.Subscription{moved}, got)
	err = st.RemovePushSubscription(ctx, "ana", shared.ID)
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "%v", err)
}

// testKeys: eight instances starting together keep one key pair, and
// later ones get it too.
func testKeys(t *testing.T, st push.Store) {
	ctx := context.Background()
	got := make([]push.Keys, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			k, err := push.LoadKeys(ctx, st)
			assert.NoError(t, err)
			got[i] = k
		})
	}
	wg.Wait()
	require.NotEmpty(t, got[0].Private)
	for _, k := range got {
		assert.Equal(t, got[0], k)
	}
	fresh, err := push.GenerateKeys()
	require.NoError(t, err)
	k, err := st.VAPIDKeys(ctx, fresh)
	require.NoError(t, err)
	assert.Equal(t, got[0], k, "the kept pair, not the fresh one")
	derived, err := push.KeysOf(k.Private)
	require.NoError(t, err)
	assert.Equal(t, k, derived, "the public key is the private key's")
}
