package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/backup"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/room"
)

var rep = dealroom.Actor{ID: "rita", Name: "Rita Rep", Kind: dealroom.Staff, Role: dealroom.Rep}

// deployment is an embedded data directory in use.
type deployment struct {
	dir   string
	store *boltstore.Store
	blobs *diskblob.Dir
	svc   *room.Service
}

func open(t *testing.T, dir string) *deployment {
	t.Helper()
	store, err := boltstore.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	blobs, err := diskblob.Open(filepath.Join(dir, "attachments"))
	require.NoError(t, err)
	return &deployment{dir: dir, store: store, blobs: blobs, svc: &room.Service{Store: store, Blobs: blobs}}
}

func (d *deployment) source() *backup.Source {
	return &backup.Source{Store: d.store, StoreFile: boltstore.File, Files: d.blobs, FilesDir: "attachments", Spool: d.dir}
}

// extract writes the tar stream's files under dir and returns their
// names.
func extract(t *testing.T, stream []byte, dir string) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(stream))
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		names = append(names, h.Name)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		require.True(t, strings.HasPrefix(p, dir+string(filepath.Separator)), "the stream stays inside the directory: %s", h.Name)
		if h.Typeflag == tar.TypeDir {
			require.NoError(t, os.MkdirAll(p, 0o700))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		require.NoError(t, err)
		_, err = io.Copy(f, tr)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}

// TestBackupWhileWriting: a backup taken while messages keep being
// posted, extracted into an empty directory, is a data directory the
// store opens: it holds every message acknowledged before the backup
// began, in one unbroken timeline, the attachments' bytes, and no JWT
// secret; and it takes new writes.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	d := open(t, t.TempDir())
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, "jwt-secret"), []byte("not to be copied"), 0o600))
	r, err := d.svc.CreateRoom(ctx, rep, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	contract := bytes.Repeat([]byte("the contract, page after page. "), 4000)
	att, err := d.svc.Upload(ctx, rep, r.ID, room.Upload{Name: "contract.txt", ContentType: "text/plain", Visibility: dealroom.Shared},
		bytes.NewReader(contract), 1<<20, "")
	require.NoError(t, err)

	var mu sync.Mutex
	var acked []string // message ids, in the order they were acknowledged
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m, err := d.svc.PostMessage(ctx, rep, r.ID, room.MessageDraft{Body: fmt.Sprint("message ", i)}, fmt.Sprint("k", i))
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			acked = append(acked, m.ID)
			mu.Unlock()
		}
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	b, err := d.source().Prepare(ctx)
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond) // writes go on while the stream is written
	var stream bytes.Buffer
	require.NoError(t, b.WriteTo(ctx, &stream))
	require.NoError(t, b.Close())
	close(stop)
	writers.Wait()
	require.NotEmpty(t, before)
	mu.Lock()
	after := len(acked)
	mu.Unlock()
	require.Greater(t, after, len(before), "messages were posted during the backup")
	spooled, err := filepath.Glob(filepath.Join(d.dir, ".backup-*"))
	require.NoError(t, err)
	assert.Empty(t, spooled, "the store's copy is removed")

	restored := filepath.Join(t.TempDir(), "data")
	names := extract(t, stream.Bytes(), restored)
	assert.Equal(t, boltstore.File, names[0], "the store's file first")
	assert.Equal(t, boltstore.File, strings.TrimRight(string(stream.Bytes()[:100]), "\x00"),
		"a plain ustar header first, which every tar reads, no PAX records")
	assert.Contains(t, names, "attachments/"+att.SHA256[:2]+"/"+att.SHA256)
	assert.NotContains(t, names, "jwt-secret", "the secret is not in a backup")

	r2 := open(t, restored)
	evs, err := r2.svc.Events(ctx, rep, r.ID, 0, 100000)
	require.NoError(t, err)
	posted := map[string]bool{}
	for i, ev := range evs {
		require.Equal(t, int64(i+1), ev.Seq, "one unbroken timeline")
		if ev.Type == room.MessagePosted {
			var m struct {
				ID string `json:"id"`
			}
			require.NoError(t, json.Unmarshal(ev.Data, &m))
			posted[m.ID] = true
		}
	}
	for _, id := range before {
		require.True(t, posted[id], "message %s, acknowledged before the backup, is in it", id)
	}
	_, rc, err := r2.svc.OpenAttachment(ctx, rep, r.ID, att.ID)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	assert.Equal(t, contract, got, "the attachment's bytes")

	head := evs[len(evs)-1].Seq
	m, err := r2.svc.PostMessage(ctx, rep, r.ID, room.MessageDraft{Body: "after the restore"}, "after")
	require.NoError(t, err)
	evs, err = r2.svc.Events(ctx, rep, r.ID, head, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Contains(t, string(evs[0].Data), m.ID, "the restored store takes writes after its head")
}

// failingFiles fails the walk of the attachments after the first.
type failingFiles struct{ backup.Files }

func (f failingFiles) Each(ctx context.Context, fn func(string, fs.FileInfo) error) error {
	n := 0
	return f.Files.Each(ctx, func(sum string, info fs.FileInfo) error {
		if n++; n > 1 {
			return dealroom.Unavailable(errors.New("disk read error"))
		}
		return fn(sum, info)
	})
}

// TestCutBackupIsNotWhole: a backup that fails midway leaves a stream
// without the tar's end (the API then cuts its answer, too); a cancelled
// one is not taken.
func TestCutBackupIsNotWhole(t *testing.T) {
	ctx := context.Background()
	d := open(t, t.TempDir())
	r, err := d.svc.CreateRoom(ctx, rep, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	for i := range 3 {
		_, err := d.svc.Upload(ctx, rep, r.ID, room.Upload{Name: "f.txt", ContentType: "text/plain", Visibility: dealroom.Shared},
			strings.NewReader(fmt.Sprint("file ", i)), 1<<20, "")
		require.NoError(t, err)
	}
	src := d.source()
	src.Files = failingFiles{d.blobs}
	b, err := src.Prepare(ctx)
	require.NoError(t, err)
	defer b.Close()
	var stream bytes.Buffer
	err = b.WriteTo(ctx, &stream)
	require.Error(t, err)
	raw := stream.Bytes()
	require.Greater(t, len(raw), 1024)
	assert.NotEqual(t, make([]byte, 1024), raw[len(raw)-1024:], "no end of archive (two zero blocks) after a failure")
	var whole bytes.Buffer
	b2, err := d.source().Prepare(ctx)
	require.NoError(t, err)
	defer b2.Close()
	require.NoError(t, b2.WriteTo(ctx, &whole))
	assert.Equal(t, make([]byte, 1024), whole.Bytes()[whole.Len()-1024:], "a whole one ends with it")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = d.source().Prepare(cancelled)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestOneBackupAtATime: while a backup is taken another is refused (each
// holds a copy of the store on the disk); once it is closed, or failed,
// the next one goes.
func TestOneBackupAtATime(t *testing.T) {
	ctx := context.Background()
	d := open(t, t.TempDir())
	src := d.source()
	first, err := src.Prepare(ctx)
	require.NoError(t, err)
	_, err = src.Prepare(ctx)
	assert.Equal(t, dealroom.ECONFLICT, dealroom.ErrorCode(err), "%v", err)
	require.NoError(t, first.Close())
	require.NoError(t, first.Close(), "twice is safe")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = src.Prepare(cancelled)
	require.Error(t, err)
	second, err := src.Prepare(ctx)
	require.NoError(t, err, "a failed one does not hold the next")
	require.NoError(t, second.Close())
}
