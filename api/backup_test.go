package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/api"
	"dealroom/boltstore"
	"dealroom/internal/testclock"
	"dealroom/room"
	"dealroom/staff"
)

// TestBackup: an admin, or an API key with backup:read, takes a backup of
// the running embedded server: a tar whose store file opens as the store
// with the room in it, and whose attachments hold the uploaded bytes;
// anyone else is refused, and a server without an embedded store says
// where its backups come from.
func TestBackup(t *testing.T) {
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.Staff = &staff.Service{Store: st, Now: clk.Now} }), withBackup())
	cs := &crmServer{testServer: ts, clock: clk}

	roomID := ts.must(t, 201, "POST", "/rooms", admin, map[string]any{"name": "Acme renewal", "company": "Acme"}).str(t, "id")
	data := bytes.Repeat([]byte("signed order form "), 1000)
	att := ts.must(t, 201, "POST", "/rooms/"+roomID+"/attachments", admin, fileUpload(t, "order.txt", data))
	sum := att.str(t, "sha256")

	r := ts.must(t, 200, "GET", "/admin/backup", admin, nil)
	assert.Equal(t, "application/x-tar", r.Header.Get("Content-Type"))
	assert.Regexp(t, `^attachment; filename="dealroom-backup-\d{8}T\d{6}Z\.tar"$`, r.Header.Get("Content-Disposition"))
	files := untar(t, r.Body)
	require.Contains(t, files, boltstore.File)
	assert.Equal(t, data, files["attachments/"+sum[:2]+"/"+sum], "the attachment's bytes")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, boltstore.File), files[boltstore.File], 0o600))
	restored, err := boltstore.Open(dir)
	require.NoError(t, err)
	defer restored.Close()
	evs, err := (&room.Service{Store: restored}).Events(context.Background(), admin, roomID, 0, 100)
	require.NoError(t, err)
	require.Len(t, evs, 2, "the room's creation and its attachment")
	assert.Equal(t, room.AttachmentAdded, evs[1].Type)

	for _, a := range []actorCase{{"a rep", staffW}, {"a manager", manager}, {"a customer", custW}} {
		r := ts.do(t, "GET", "/admin/backup", tok(t, a.actor), nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s: %s", a.name, r)
	}
	_, reader := cs.newKey(t, "rooms:read", "export:read")
	assert.Equal(t, http.StatusForbidden, ts.do(t, "GET", "/admin/backup", reader, nil).Status, "a key without backup:read")
	_, backups := cs.newKey(t, "backup:read")
	r = ts.do(t, "GET", "/admin/backup", backups, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	assert.Contains(t, untar(t, r.Body), boltstore.File)
	assert.Equal(t, http.StatusForbidden, ts.do(t, "GET", "/rooms/"+roomID, backups, nil).Status, "backup:read opens nothing else")

	plain := newTestServer(t)
	r = plain.do(t, "GET", "/admin/backup", tok(t, admin), nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.Contains(t, string(r.Body), "MongoDB")
}

type actorCase struct {
	name  string
	actor dealroom.Actor
}

// untar reads a whole tar stream (one that ends as a tar must) into its
// regular files by name.
func untar(t *testing.T, stream []byte) map[string][]byte {
	t.Helper()
	require.GreaterOrEqual(t, len(stream), 1024)
	require.Equal(t, make([]byte, 1024), stream[len(stream)-1024:], "the tar's end")
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(stream))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			files[h.Name] = b
		}
	}
}
