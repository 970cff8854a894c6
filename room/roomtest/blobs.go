package roomtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// BlobOpener returns new, empty Blobs for one test.
type BlobOpener func(tb testing.TB) room.Blobs

// TestBlobs runs the conformance suite of room.Blobs against the Blobs
// open makes (and that of room.BlobCollector, when they are one), so that
// the disk and the GridFS stores cannot drift apart.
func TestBlobs(t *testing.T, open BlobOpener) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, b room.Blobs)
	}{
		{"RoundTripAndSeek", testBlobRoundTrip},
		{"EmptyFile", testBlobEmpty},
		{"TooLargeStoresNothing", testBlobTooLarge},
		{"SameBytesKeptOnce", testBlobSameBytes},
		{"BrokenOrCancelledUploadStoresNothing", testBlobBroken},
		{"UnknownOrHostileNames", testBlobUnknown},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
	if _, ok := open(t).(room.BlobCollector); ok {
		t.Run("Collector", func(t *testing.T) { TestBlobCollector(t, open) })
	}
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func readAll(t *testing.T, b room.Blobs, sum string) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), sum)
	require.NoError(t, err)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func testBlobRoundTrip(t *testing.T, b room.Blobs) {
	ctx := context.Background()
	data := make([]byte, 3<<20+17) // several chunks of any store
	_, err := rand.Read(data)
	require.NoError(t, err)
	blob, err := b.Put(ctx, bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	assert.Equal(t, sha(data), blob.SHA256)
	assert.EqualValues(t, len(data), blob.Size)
	assert.True(t, bytes.Equal(data, readAll(t, b, blob.SHA256)), "the stored bytes are the bytes uploaded")

	// Seeking, as http.ServeContent does for sizes and ranges.
	rc, err := b.Open(ctx, blob.SHA256)
	require.NoError(t, err)
	defer rc.Close()
	end, err := rc.Seek(0, io.SeekEnd)
	require.NoError(t, err)
	assert.EqualValues(t, len(data), end)
	for _, off := range []int64{0, 1, 255*1024 - 1, 255 * 1024, 1 << 20, int64(len(data)) - 5} {
		_, err := rc.Seek(off, io.SeekStart)
		require.NoError(t, err)
		part := make([]byte, 300)
		n, err := io.ReadFull(rc, part)
		if off+300 > int64(len(data)) {
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, data[off:off+int64(n)], part[:n], "at %d", off)
	}
}

func testBlobEmpty(t *testing.T, b room.Blobs) {
	blob, err := b.Put(context.Background(), bytes.NewReader(nil), 100)
	require.NoError(t, err)
	assert.Equal(t, sha(nil), blob.SHA256)
	assert.Zero(t, blob.Size)
	assert.Empty(t, readAll(t, b, blob.SHA256))
}

func testBlobTooLarge(t *testing.T, b room.Blobs) {
	ctx := context.Background()
	data := []byte("eleven byte")
	_, err := b.Put(ctx, bytes.NewReader(data), 10)
	assert.Equal(t, dealroom.ETOOLARGE, dealroom.ErrorCode(err))
	_, err = b.Open(ctx, sha(data))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "nothing of it is stored")
	blob, err := b.Put(ctx, bytes.NewReader(data[:10]), 10)
	require.NoError(t, err, "exactly the limit is fine")
	assert.EqualValues(t, 10, blob.Size)
}

func testBlobSameBytes(t *testing.T, b room.Blobs) {
	ctx := context.Background()
	data := []byte("the same proposal, uploaded by several people at once")
	var wg sync.WaitGroup
	blobs := make([]room.Blob, 8)
	errs := make([]error, len(blobs))
	for i := range blobs {
		wg.Go(func() { blobs[i], errs[i] = b.Put(ctx, bytes.NewReader(data), 1<<20) })
	}
	wg.Wait()
	for i := range blobs {
		require.NoError(t, errs[i])
		assert.Equal(t, room.Blob{SHA256: sha(data), Size: int64(len(data))}, blobs[i])
	}
	assert.Equal(t, data, readAll(t, b, sha(data)))
}

// brokenReader fails after n bytes, as a client's connection that breaks.
type brokenReader struct{ n int }

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func testBlobBroken(t *testing.T, b room.Blobs) {
	_, err := b.Put(context.Background(), &brokenReader{n: 300 << 10}, 10<<20)
	assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err), "%v", err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Put(ctx, bytes.NewReader([]byte("never stored")), 100)
	assert.Error(t, err)
	_, err = b.Open(context.Background(), sha([]byte("never stored")))
	assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err))
	if bc, ok := b.(room.BlobCollector); ok {
		n := 0
		require.NoError(t, bc.StoredBefore(context.Background(), time.Now().Add(time.Hour), func(string) error { n++; return nil }))
		assert.Zero(t, n, "no blob is left of the failed uploads")
	}
}

func testBlobUnknown(t *testing.T, b room.Blobs) {
	for _, sum := range []string{sha([]byte("never stored")), "", "AB", strings.Repeat("A", 64),
		strings.Repeat("a", 63) + "/", "../secret", "../../../../etc/passwd"} {
		_, err := b.Open(context.Background(), sum)
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "%q", sum)
	}
}

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
