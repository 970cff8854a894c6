package roomtest

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// BlobOpener returns new, empty Blobs for one test.
type BlobOpener func(tb testing.TB) room.Blobs

// TestBlobCollector runs the suite of room.BlobCollector against the Blobs
// open makes: what StoredBefore lists and Remove removes, and that bytes
// stored again are kept.
func TestBlobCollector(t *testing.T, open BlobOpener) {
	ctx := context.Background()
	b := open(t)
	bc, ok := b.(room.BlobCollector)
	require.True(t, ok, "%T is a room.BlobCollector", b)
	put := func(data string) string {
		t.Helper()
		blob, err := b.Put(ctx, bytes.NewReader([]byte(data)), 1<<20)
		require.NoError(t, err)
		return blob.SHA256
	}
	// tick passes time the stores can tell apart: GridFS keeps ms, and a
	// file's mtime comes from the kernel's coarse clock, up to a tick (4
	// or 10 ms) behind the time read just before the write.
	tick := func() time.Time {
		time.Sleep(50 * time.Millisecond)
		now := time.Now()
		time.Sleep(50 * time.Millisecond)
		return now
	}
	stored := func(cutoff time.Time) []string {
		t.Helper()
		var out []string
		require.NoError(t, bc.StoredBefore(ctx, cutoff, func(sum string) error {
			out = append(out, sum)
			return nil
		}))
		return out
	}
	gone := func(sum string) bool {
		t.Helper()
		rc, err := b.Open(ctx, sum)
		if err == nil {
			rc.Close()
			return false
		}
		require.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "%v", err)
		return true
	}

	orphan := put("bytes of an upload whose record failed")
	again := put("bytes uploaded again later")
	cutoff := tick()
	fresh := put("bytes of an upload in progress")
	assert.ElementsMatch(t, []string{orphan, again}, stored(cutoff), "blobs stored before the cutoff")

	require.Equal(t, again, put("bytes uploaded again later"))
	assert.ElementsMatch(t, []string{orphan}, stored(cutoff), "storing bytes again moves their time on")
	require.NoError(t, bc.Remove(ctx, again, cutoff))
	assert.False(t, gone(again), "bytes stored again after the cutoff are kept")
	require.NoError(t, bc.Remove(ctx, fresh, cutoff))
	assert.False(t, gone(fresh), "bytes stored after the cutoff are kept")

	require.NoError(t, bc.Remove(ctx, orphan, cutoff))
	assert.True(t, gone(orphan))
	require.NoError(t, bc.Remove(ctx, orphan, cutoff), "removing twice is fine")
	assert.Empty(t, stored(cutoff))

	// Stored anew after removal, the bytes read back whole.
	require.Equal(t, orphan, put("bytes of an upload whose record failed"))
	rc, err := b.Open(ctx, orphan)
	require.NoError(t, err)
	data, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	assert.Equal(t, "bytes of an upload whose record failed", string(data))
}
