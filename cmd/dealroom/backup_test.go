package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
)

// TestBackupAndRestore is the README's procedure with the real binary and
// the system's tar: an admin takes a backup while messages keep being
// posted; the backup, extracted with tar into an empty data directory,
// is a server with every message acknowledged before the backup in its
// room's timeline, the attachment's bytes, and room for new writes.
func TestBackupAndRestore(t *testing.T) {
	tarBin, err := exec.LookPath("tar")
	require.NoError(t, err, "the restore uses tar, as the README does")
	bin := buildBinary(t)
	p := startProcess(t, bin, t.TempDir())
	c := newClient(p)
	ta := tokenFor(t, alice)
	admin := tokenFor(t, dealroom.Actor{ID: "ada", Name: "Ada Admin", Kind: dealroom.Staff, Role: dealroom.Admin})

	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Acme renewal", "company": "Acme"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	contract := bytes.Repeat([]byte("terms and conditions "), 5000)
	att := c.must(t, http.StatusCreated, http.MethodPost, rp+"/attachments", ta, newUpload("contract.pdf", contract), "")

	var mu sync.Mutex
	var acked []string // message ids
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r, err := c.send(context.Background(), http.MethodPost, rp+"/messages", ta, map[string]any{"body": fmt.Sprint("note ", i)}, fmt.Sprint("n", i))
			if !assert.NoError(t, err) || !assert.Equal(t, http.StatusCreated, r.status, "%s", r) {
				return
			}
			id := field(t, r.body, "id")
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()
	require.NotEmpty(t, before)
	backup := c.must(t, http.StatusOK, http.MethodGet, "/api/v1/admin/backup", admin, nil, "")
	time.Sleep(100 * time.Millisecond)
	close(stop)
	writers.Wait()
	p.kill(t)

	restored := t.TempDir()
	file := filepath.Join(t.TempDir(), "backup.tar")
	require.NoError(t, os.WriteFile(file, backup, 0o600))
	out, err := exec.Command(tarBin, "-xf", file, "-C", restored).CombinedOutput()
	require.NoError(t, err, "tar: %s", out)

	p2 := startProcess(t, bin, restored)
	c2 := newClient(p2)
	posted := map[string]bool{}
	for i, raw := range c2.events(t, roomID, ta) {
		var ev event
		require.NoError(t, json.Unmarshal(raw, &ev))
		require.Equal(t, int64(i+1), ev.Seq, "one unbroken timeline")
		if ev.Type == "message.posted" {
			posted[field(t, ev.Data, "id")] = true
		}
	}
	for _, id := range before {
		require.True(t, posted[id], "message %s, acknowledged before the backup, is in it", id)
	}
	require.Less(t, len(before), len(acked), "messages were posted during the backup")
	got := c2.must(t, http.StatusOK, http.MethodGet, rp+"/attachments/"+field(t, att, "id"), ta, nil, "")
	assert.Equal(t, contract, got, "the attachment's bytes")
	c2.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", ta, map[string]any{"body": "after the restore"}, "")
}
