package diskblob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/diskblob"
	"dealroom/room"
	"dealroom/room/roomtest"
)

// files lists the stored blobs and leftovers under dir.
func files(t *testing.T, dir string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	}))
	return out
}

func TestReopenedDirectoryReadsBack(t *testing.T) {
	dir := t.TempDir()
	d, err := diskblob.Open(dir)
	require.NoError(t, err)
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	b, err := d.Put(context.Background(), bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), b.SHA256)

	// Reopened, the bytes are exactly there.
	d, err = diskblob.Open(dir)
	require.NoError(t, err)
	rc, err := d.Open(context.Background(), b.SHA256)
	require.NoError(t, err)
	defer rc.Close()
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
}

func TestSameBytesStoredOnce(t *testing.T) {
	dir := t.TempDir()
	d, err := diskblob.Open(dir)
	require.NoError(t, err)
	var wg sync.WaitGroup
	sums := make([]string, 8)
	for i := range sums {
		wg.Go(func() {
			b, err := d.Put(context.Background(), strings.NewReader("the same proposal"), 100)
			assert.NoError(t, err)
			sums[i] = b.SHA256
		})
	}
	wg.Wait()
	for _, s := range sums {
		assert.Equal(t, sums[0], s)
	}
	assert.Len(t, files(t, dir), 1, "one file, no leftovers")
}

func TestTooLargeStoresNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := diskblob.Open(dir)
	require.NoError(t, err)
	_, err = d.Put(context.Background(), strings.NewReader("eleven byte"), 10)
	assert.Equal(t, dealroom.ETOOLARGE, dealroom.ErrorCode(err))
	b, err := d.Put(context.Background(), strings.NewReader("ten bytes!"), 10)
	require.NoError(t, err, "exactly the limit is fine")
	assert.EqualValues(t, 10, b.Size)
	assert.Len(t, files(t, dir), 1)
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestBrokenOrCancelledUploadStoresNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := diskblob.Open(dir)
	require.NoError(t, err)
	_, err = d.Put(context.Background(), &failingReader{n: 5000}, 1<<20)
	assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.Put(ctx, strings.NewReader("never stored"), 100)
	assert.Error(t, err)
	assert.Empty(t, files(t, dir))
}

func TestOpenUnknownOrHostile(t *testing.T) {
	dir := t.TempDir()
	d, err := diskblob.Open(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600))
	for _, sum := range []string{
		strings.Repeat("a", 64), "", "../secret", strings.Repeat("A", 64), strings.Repeat("a", 63) + "/",
		"../../../../etc/passwd",
	} {
		_, err := d.Open(context.Background(), sum)
		assert.Equal(t, dealroom.ENOTFOUND, dealroom.ErrorCode(err), "%q", sum)
	}
}

func TestOpenCleansLeftovers(t *testing.T) {
	dir := t.TempDir()
	_, err := diskblob.Open(dir)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tmp", "upload-123"), []byte("half a file"), 0o600))
	_, err = diskblob.Open(dir)
	require.NoError(t, err)
	assert.Empty(t, files(t, dir), "a crash's temporary file is removed at start")
}

// TestBlobs runs the room.Blobs (and room.BlobCollector) conformance
// suite; the tests here check what is the directory's own.
func TestBlobs(t *testing.T) {
	roomtest.TestBlobs(t, func(tb testing.TB) room.Blobs {
		d, err := diskblob.Open(tb.TempDir())
		require.NoError(tb, err)
		return d
	})
}
