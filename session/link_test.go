package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/session"
)

func newLinks(t *testing.T) (*session.Links, *time.Time) {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return &session.Links{Store: st, Now: func() time.Time { return now }}, &now
}

func TestLinkRedeemedOnce(t *testing.T) {
	l, now := newLinks(t)
	ctx := context.Background()
	code, err := l.Issue(ctx, "Carol@Acme.example")
	require.NoError(t, err)
	require.NotEmpty(t, code)
	other, err := l.Issue(ctx, "carol@acme.example")
	require.NoError(t, err)
	assert.NotEqual(t, code, other, "every link has a code of its own")

	*now = now.Add(14 * time.Minute)
	email, err := l.Redeem(ctx, code)
	require.NoError(t, err)
	assert.Equal(t, "Carol@Acme.example", email, "the address the link was sent to")
	_, err = l.Redeem(ctx, code)
	assert.Equal(t, session.ErrLinkRefused, err, "used already")
	_, err = l.Redeem(ctx, code+"x")
	assert.Equal(t, session.ErrLinkRefused, err, "unknown")
	_, err = l.Redeem(ctx, "")
	assert.Equal(t, dealroom.EUNAUTH, dealroom.ErrorCode(err))

	*now = now.Add(time.Minute)
	_, err = l.Redeem(ctx, other)
	assert.Equal(t, session.ErrLinkRefused, err, "expired after 15 minutes")
}

func TestLinksPerAddress(t *testing.T) {
	l, now := newLinks(t)
	ctx := context.Background()
	for i := range session.DefaultLinksPerAddress {
		code, err := l.Issue(ctx, "carol@acme.example")
		require.NoError(t, err)
		require.NotEmpty(t, code, "link %d", i+1)
		*now = now.Add(time.Minute)
	}
	code, err := l.Issue(ctx, "CAROL@acme.example ")
	require.NoError(t, err)
	assert.Empty(t, code, "one more within 15 minutes, however the address is written")
	code, err = l.Issue(ctx, "dave@acme.example")
	require.NoError(t, err)
	assert.NotEmpty(t, code, "another address has its own budget")

	*now = now.Add(12 * time.Minute) // 15 minutes after the first link: its slot is free again
	code, err = l.Issue(ctx, "carol@acme.example")
	require.NoError(t, err)
	assert.NotEmpty(t, code)
	code, err = l.Issue(ctx, "carol@acme.example")
	require.NoError(t, err)
	assert.Empty(t, code, "the second slot frees a minute later")
}
