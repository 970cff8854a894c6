package notifytest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom/notify"
)

// TestReplyKeys runs the suite of notify.ReplyKeys against stores made by
// newStore, a fresh and empty one for each call.
func TestReplyKeys(t *testing.T, newStore func(tb testing.TB) notify.ReplyKeys) {
	t.Run("RecordedOnce", func(t *testing.T) { testReplyKeysOnce(t, newStore(t)) })
	t.Run("AtOnce", func(t *testing.T) { testReplyKeysAtOnce(t, newStore(t)) })
}

// testReplyKeysOnce: a key is read as it was recorded; recording it again
// changes nothing; a key never recorded is none, and keys are not read in
// another case (notify lowers them before).
func testReplyKeysOnce(t *testing.T, st notify.ReplyKeys) {
	ctx := context.Background()
	got, err := st.ReplyKey(ctx, "0123456789abcdefghjk")
	require.NoError(t, err)
	assert.Nil(t, got, "never recorded")

	k := notify.ReplyKey{Key: "0123456789abcdefghjk", User: "carol", Room: "r_1", Thread: "m_1", CreatedAt: t0}
	require.NoError(t, st.AddReplyKey(ctx, k))
	got, err = st.ReplyKey(ctx, k.Key)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, k, *got)

	again := notify.ReplyKey{Key: k.Key, User: "mallory", Room: "r_2", Thread: "m_2", CreatedAt: t0.Add(time.Hour)}
	require.NoError(t, st.AddReplyKey(ctx, again), "recorded already: no error")
	got, err = st.ReplyKey(ctx, k.Key)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, k, *got, "the first record is kept")

	other := notify.ReplyKey{Key: "zyxwvtsrqpnmkjhgfedc", User: "bob", Room: "r_1", Thread: "m_1", CreatedAt: t0}
	require.NoError(t, st.AddReplyKey(ctx, other))
	got, err = st.ReplyKey(ctx, other.Key)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, other, *got)

	got, err = st.ReplyKey(ctx, "0123456789ABCDEFGHJK")
	require.NoError(t, err)
	assert.Nil(t, got, "keys are kept as written")
}

// testReplyKeysAtOnce: instances that record one key at once all succeed,
// and one record is kept.
func testReplyKeysAtOnce(t *testing.T, st notify.ReplyKeys) {
	ctx := context.Background()
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.AddReplyKey(ctx, notify.ReplyKey{Key: "k0k0k0k0k0k0k0k0k0k0", User: "carol", Room: "r_1",
				Thread: "m_1", CreatedAt: t0.Add(time.Duration(i) * time.Second)})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	got, err := st.ReplyKey(ctx, "k0k0k0k0k0k0k0k0k0k0")
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "carol", got.User)
	assert.True(t, !got.CreatedAt.Before(t0) && got.CreatedAt.Before(t0.Add(n*time.Second)), "one of the records: %v", got.CreatedAt)
}
