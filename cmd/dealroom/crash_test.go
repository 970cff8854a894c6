package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrash kills the real server with SIGKILL (no graceful stop, nothing
// flushed on the way out) and restarts it on the same data directory: every
// write the server acknowledged must be there afterwards, exactly as it
// was, and the event log must stay gap-free and agree with the read models.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it: skipped with -short")
	}
	bin := buildBinary(t)
	t.Run("AfterAcknowledgedWrites", func(t *testing.T) { testKillAfterAcks(t, bin) })
	t.Run("DuringConcurrentWrites", func(t *testing.T) { testKillDuringWrites(t, bin) })
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// fixture is what the first scenario wrote.
type fixture struct {
	room        string
	customer    string // token of the customer who accepted the invite
	thread      string // a message with a reply
	attachments map[string][]byte
	retryPath   string // a create that was acknowledged, to retry after the crash
	retryBody   any
	retryKey    string
	retryID     string
}

// writeFixture fills a room with one of everything, and then with many
// concurrent writes so that the store commits them in groups.
func writeFixture(t *testing.T, c *client) fixture {
	ta, tbob := tokenFor(t, alice), tokenFor(t, bob)
	f := fixture{attachments: map[string][]byte{}}
	post := func(path string, body any, key string) []byte {
		return c.must(t, http.StatusCreated, http.MethodPost, path, ta, body, key)
	}
	f.room = field(t, post("/api/v1/rooms", map[string]any{"name": "Acme renewal", "company": "Acme Corp",
		"value": 48000, "currency": "EUR", "close_window": "this_month", "tags": []string{"renewal"}}, "room-1"), "id")
	rp := "/api/v1/rooms/" + f.room
	post(rp+"/members", map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff", "access": "write"}, "")

	var tasks []string
	for i := range 5 {
		vis := "shared"
		if i == 3 {
			vis = "internal"
		}
		body := map[string]any{"title": fmt.Sprintf("Step %d", i+1), "description": "@Bob please own this",
			"assignees": []string{"bob"}, "due": fmt.Sprintf("2030-01-%02d", i+10), "visibility": vis}
		key := fmt.Sprintf("task-%d", i)
		raw := post(rp+"/tasks", body, key)
		tasks = append(tasks, field(t, raw, "id"))
		if i == 0 {
			f.retryPath, f.retryBody, f.retryKey, f.retryID = rp+"/tasks", body, key, tasks[0]
		}
	}
	c.must(t, http.StatusOK, http.MethodPatch, rp+"/tasks/"+tasks[1], ta, map[string]any{"status": "done"}, "")
	c.must(t, http.StatusNoContent, http.MethodDelete, rp+"/tasks/"+tasks[2], ta, nil, "")
	c.must(t, http.StatusOK, http.MethodPatch, rp, ta, map[string]any{"stage": "solution"}, "")

	for i := range 5 {
		body := map[string]any{"body": fmt.Sprintf("@Bob note %d for you", i)}
		if i == 1 {
			body["task_id"] = tasks[0]
		}
		if i == 2 {
			body["visibility"] = "internal"
		}
		id := field(t, post(rp+"/messages", body, fmt.Sprintf("msg-%d", i)), "id")
		if i == 0 {
			f.thread = id
		}
	}
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", tbob,
		map[string]any{"body": "On it, @Alice", "parent_id": f.thread}, "")
	data := randomBytes(t, 300<<10)
	at := post(rp+"/attachments", newUpload("proposal.bin", data), "upload-1")
	f.attachments[field(t, at, "id")] = data

	inv := post(rp+"/invites", map[string]any{"email": "carol@acme.example", "access": "write"}, "")
	acc := c.must(t, http.StatusOK, http.MethodPost, "/api/v1/invites/"+field(t, inv, "code")+"/accept", "",
		map[string]any{"name": "Carol Buyer", "email": "carol@acme.example"}, "")
	f.customer = field(t, acc, "token")
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/messages", f.customer,
		map[string]any{"body": "Looks good, @Alice"}, "")
	data2 := randomBytes(t, 40<<10)
	at2 := c.must(t, http.StatusCreated, http.MethodPost, rp+"/attachments", f.customer, newUpload("signed.bin", data2), "")
	f.attachments[field(t, at2, "id")] = data2

	// Many writers at once: each commit of the store's writer takes all
	// that is queued, so these share transactions and fsyncs.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				path, body := rp+"/messages", any(map[string]any{"body": fmt.Sprintf("@Bob writer %d says %d", w, i)})
				if i%2 == 0 {
					path, body = rp+"/tasks", map[string]any{"title": fmt.Sprintf("Writer %d step %d", w, i), "assignees": []string{"bob"}}
				}
				r, err := c.send(context.Background(), http.MethodPost, path, ta, body, fmt.Sprintf("conc-%d-%d", w, i))
				if err == nil && r.status != http.StatusCreated {
					err = fmt.Errorf("POST %s: %s", path, r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.False(t, t.Failed())
	return f
}

// snapshot is everything readable about the fixture's room, as the server
// wrote it, by name.
type snapshot struct {
	events []json.RawMessage
	views  map[string]string
}

func takeSnapshot(t *testing.T, c *client, f fixture) snapshot {
	t.Helper()
	ta, tbob := tokenFor(t, alice), tokenFor(t, bob)
	rp := "/api/v1/rooms/" + f.room
	get := func(path, token string) string {
		return string(c.must(t, http.StatusOK, http.MethodGet, path, token, nil, ""))
	}
	join := func(raws []json.RawMessage) string {
		parts := make([]string, len(raws))
		for i, r := range raws {
			parts[i] = string(r)
		}
		return strings.Join(parts, "\n")
	}
	s := snapshot{events: c.events(t, f.room, ta), views: map[string]string{}}
	s.views["events as customer"] = join(c.events(t, f.room, f.customer))
	s.views["room"] = get(rp, ta)
	s.views["room as customer"] = get(rp, f.customer)
	s.views["rooms"] = get("/api/v1/rooms", ta)
	s.views["members"] = join(c.list(t, rp+"/members", ta))
	s.views["tasks"] = join(c.list(t, rp+"/tasks?limit=50", ta))
	s.views["tasks as customer"] = join(c.list(t, rp+"/tasks", f.customer))
	s.views["messages"] = join(c.list(t, rp+"/messages?limit=50", ta))
	s.views["messages as customer"] = join(c.list(t, rp+"/messages?limit=50", f.customer))
	s.views["thread"] = join(c.list(t, rp+"/messages?parent_id="+f.thread, ta))
	s.views["attachments"] = join(c.list(t, rp+"/attachments", ta))
	s.views["invites"] = join(c.list(t, rp+"/invites", ta))
	s.views["inbox of bob"] = join(c.list(t, "/api/v1/me/inbox?limit=40", tbob))
	s.views["tasks of bob"] = join(c.list(t, "/api/v1/me/tasks", tbob))
	s.views["inbox of alice"] = join(c.list(t, "/api/v1/me/inbox", ta))
	for id, want := range f.attachments {
		got := c.must(t, http.StatusOK, http.MethodGet, rp+"/attachments/"+id, ta, nil, "")
		require.Equal(t, want, got, "attachment %s: the stored bytes are the uploaded bytes", id)
		s.views["attachment "+id] = string(got)
	}

	// The snapshot must hold what was written, or comparing it proves
	// little.
	require.Greater(t, len(s.events), 200)
	for _, name := range []string{"tasks", "messages", "inbox of bob", "tasks of bob", "thread", "events as customer"} {
		require.NotEmpty(t, s.views[name], name)
	}
	return s
}

// assertSameSnapshot compares two snapshots view by view, so that a
// failure names what changed.
func assertSameSnapshot(t *testing.T, want, got snapshot) {
	t.Helper()
	require.Equal(t, len(want.events), len(got.events), "number of events")
	for i := range want.events {
		if !assert.Equal(t, string(want.events[i]), string(got.events[i]), "event %d is byte for byte the same", i+1) {
			break
		}
	}
	for name, w := range want.views {
		assert.Equal(t, w, got.views[name], "view %q", name)
	}
	assert.Len(t, got.views, len(want.views))
}

func headOf(t *testing.T, c *client, roomID string) int64 {
	t.Helper()
	var r struct {
		Head int64 `json:"head"`
	}
	require.NoError(t, json.Unmarshal(c.must(t, http.StatusOK, http.MethodGet, "/api/v1/rooms/"+roomID, tokenFor(t, alice), nil, ""), &r))
	return r.Head
}

// testKillAfterAcks writes a room full of things, kills the server right
// after the last acknowledged write, and finds everything as it was.
func testKillAfterAcks(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startProcess(t, bin, dir)
	c := newClient(p)
	f := writeFixture(t, c)
	before := takeSnapshot(t, c, f)
	p.kill(t)

	p = startProcess(t, bin, dir)
	c = newClient(p)
	after := takeSnapshot(t, c, f)
	assertSameSnapshot(t, before, after)
	ta := tokenFor(t, alice)

	// Idempotency keys survive the crash: a retry finds the first result
	// and writes nothing.
	head := headOf(t, c, f.room)
	require.EqualValues(t, len(before.events), head, "the room's head is its last seq")
	raw := c.must(t, http.StatusCreated, http.MethodPost, f.retryPath, ta, f.retryBody, f.retryKey)
	assert.Equal(t, f.retryID, field(t, raw, "id"), "a retry after the crash answers with the first task")
	assert.Equal(t, head, headOf(t, c, f.room), "and appends nothing")

	// The log goes on where it stopped.
	raw = c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms/"+f.room+"/tasks", ta, map[string]any{"title": "After the crash"}, "")
	evs := decodeEvents(t, c.events(t, f.room, ta))
	require.Len(t, evs, int(head)+1)
	last := evs[len(evs)-1]
	assert.Equal(t, head+1, last.Seq)
	assert.Equal(t, "task.created", last.Type)
	assert.Equal(t, field(t, raw, "id"), field(t, last.Data, "id"))

	// Kill at once after an acknowledged write, with nothing read or
	// written in between: the write is there after the restart.
	logBefore := c.events(t, f.room, ta)
	raw = c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms/"+f.room+"/messages", ta,
		map[string]any{"body": "@Bob the last word before the crash"}, "")
	p.kill(t)
	p = startProcess(t, bin, dir)
	c = newClient(p)
	msgID := field(t, raw, "id")
	logAfter := c.events(t, f.room, ta)
	require.Len(t, logAfter, len(logBefore)+1)
	for i := range logBefore {
		require.Equal(t, string(logBefore[i]), string(logAfter[i]), "event %d", i+1)
	}
	last = decodeEvents(t, logAfter[len(logAfter)-1:])[0]
	assert.Equal(t, int64(len(logAfter)), last.Seq)
	assert.Equal(t, "message.posted", last.Type)
	assert.Equal(t, msgID, field(t, last.Data, "id"))
	var posted, stored map[string]any
	require.NoError(t, json.Unmarshal(raw, &posted))
	delete(posted, "unresolved_mentions")
	require.NoError(t, json.Unmarshal(c.must(t, http.StatusOK, http.MethodGet, "/api/v1/rooms/"+f.room+"/messages/"+msgID, ta, nil, ""), &stored))
	assert.Equal(t, posted, stored, "the message reads back as it was acknowledged")
	inbox := c.list(t, "/api/v1/me/inbox?limit=1", tokenFor(t, bob))
	require.NotEmpty(t, inbox)
	assert.Equal(t, msgID, field(t, inbox[0], "message_id"), "and its mention is in the inbox")
}

// op is one write of the stream and what became of it.
type op struct {
	kind   string // the type of the event it makes: task.created, message.posted, ...
	method string
	path   string
	body   any
	key    string
	task   string // the task an update or delete is about
	data   []byte // an upload's bytes

	acked  bool   // a 2xx answer arrived before the crash
	result []byte // the answer's body (of the retry after the crash, when not acked)
}

// testKillDuringWrites kills the server while several writers are in the
// middle of requests, then checks that every acknowledged write is there,
// that retrying the unanswered ones with their keys applies each write
// exactly once, and that the read models are what the events say.
func testKillDuringWrites(t *testing.T, bin string) {
	dir := t.TempDir()
	p := startProcess(t, bin, dir)
	c := newClient(p)
	ta := tokenFor(t, alice)
	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", ta,
		map[string]any{"name": "Globex expansion", "company": "Globex"}, ""), "id")
	rp := "/api/v1/rooms/" + roomID
	c.must(t, http.StatusCreated, http.MethodPost, rp+"/members", ta,
		map[string]any{"user_id": "bob", "name": bob.Name, "kind": "staff"}, "")

	const writers, maxOps, killAfter = 6, 400, 150
	var acks atomic.Int64
	enough := make(chan struct{})
	var enoughOnce sync.Once
	logs := make([][]*op, writers)
	failures := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var live []string // this writer's tasks, oldest first
			for i := range maxOps {
				o := nextOp(w, i, rp, live)
				if o.kind == "attachment.added" {
					o.data = make([]byte, 16<<10)
					rand.Read(o.data)
					o.body = newUpload(o.key+".bin", o.data)
				}
				logs[w] = append(logs[w], o)
				r, err := c.send(context.Background(), o.method, o.path, ta, o.body, o.key)
				if err != nil {
					return // the server is gone: this write's outcome is unknown
				}
				if r.status/100 != 2 {
					failures[w] = fmt.Errorf("%s %s: %s", o.method, o.path, r)
					return
				}
				o.acked, o.result = true, r.body
				switch o.kind {
				case "task.created":
					live = append(live, idOf(r.body))
				case "task.deleted":
					live = slices.DeleteFunc(live, func(id string) bool { return id == o.task })
				}
				if acks.Add(1) >= killAfter {
					enoughOnce.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d writes were acknowledged in 2 minutes", acks.Load())
	}
	p.kill(t)
	wg.Wait()
	for _, err := range failures {
		require.NoError(t, err)
	}
	var all []*op
	unanswered := 0
	for _, l := range logs {
		all = append(all, l...)
		if n := len(l); n > 0 && !l[n-1].acked {
			unanswered++
		}
	}
	t.Logf("killed with %d writes acknowledged and %d in flight", acks.Load(), unanswered)

	p = startProcess(t, bin, dir)
	c = newClient(p)
	require.Empty(t, blobTemps(t, dir), "a restart removes the temporary files of unfinished uploads")

	// What the server said it did, it did.
	evsBefore := decodeEvents(t, c.events(t, roomID, ta))
	for _, o := range all {
		if o.acked {
			assert.True(t, hasEffect(t, evsBefore, o), "acknowledged %s %s is in the log", o.kind, o.key)
		}
	}

	// Retry every write with its key: the acknowledged ones are answered
	// from the log and change nothing; the unanswered ones are applied now
	// if the crash lost them, and found if it did not.
	for _, o := range all {
		if o.kind == "attachment.added" {
			o.body = newUpload(o.key+".bin", o.data) // a reader is used up once sent
		}
		r, err := c.send(context.Background(), o.method, o.path, ta, o.body, o.key)
		require.NoError(t, err)
		require.Equal(t, 2, r.status/100, "retry of %s %s: %s", o.kind, o.key, r)
		if o.acked && o.kind != "task.deleted" {
			assert.Equal(t, field(t, o.result, "id"), field(t, r.body, "id"), "retry of acknowledged %s %s", o.kind, o.key)
		}
		if !o.acked {
			o.result = r.body
		}
	}

	raws := c.events(t, roomID, ta)
	evs := decodeEvents(t, raws)
	require.NotEmpty(t, evs)
	for i, e := range evs {
		require.Equal(t, int64(i+1), e.Seq, "seqs are 1..N without gaps")
	}
	assert.Equal(t, int64(len(evs)), headOf(t, c, roomID))

	// Every write is in the log exactly once.
	byType := map[string]int{}
	for _, e := range evs {
		byType[e.Type]++
	}
	want := map[string]int{"room.created": 1, "member.added": 1}
	for _, o := range all {
		want[o.kind]++
	}
	assert.Equal(t, want, byType, "events by type: one per write, retries included")
	for _, o := range all {
		assert.True(t, hasEffect(t, evs, o), "%s %s is in the log", o.kind, o.key)
	}

	// The read models are what the events say.
	tasks, messages, attachments := map[string]any{}, map[string]any{}, map[string]any{}
	for _, e := range evs {
		var d map[string]any
		require.NoError(t, json.Unmarshal(e.Data, &d))
		id, _ := d["id"].(string)
		switch e.Type {
		case "task.created", "task.updated":
			tasks[id] = d
		case "task.deleted":
			delete(tasks, id)
		case "message.posted":
			d["reply_count"] = float64(0) // counted by the store when listing
			messages[id] = d
		case "attachment.added":
			attachments[id] = d
		}
	}
	assert.Equal(t, byType["task.created"]-byType["task.deleted"], len(tasks))
	assert.Equal(t, tasks, byID(t, c.list(t, rp+"/tasks?limit=1000", ta)), "tasks")
	assert.Equal(t, messages, byID(t, c.list(t, rp+"/messages?limit=100", ta)), "messages")
	assert.Equal(t, attachments, byID(t, c.list(t, rp+"/attachments", ta)), "attachments")

	// Each task is as its last write left it.
	final := map[string]*op{}
	for _, o := range all {
		switch o.kind {
		case "task.created":
			final[field(t, o.result, "id")] = o
		case "task.updated", "task.deleted":
			final[o.task] = o
		}
	}
	for id, o := range final {
		if o.kind == "task.deleted" {
			assert.NotContains(t, tasks, id)
			continue
		}
		var last map[string]any
		require.NoError(t, json.Unmarshal(o.result, &last))
		delete(last, "unresolved_mentions")
		assert.Equal(t, last, tasks[id], "task %s is as %s %s left it", id, o.kind, o.key)
	}

	// Uploaded bytes come back as they were sent.
	for _, o := range all {
		if o.kind == "attachment.added" {
			got := c.must(t, http.StatusOK, http.MethodGet, rp+"/attachments/"+field(t, o.result, "id"), ta, nil, "")
			assert.Equal(t, o.data, got, "bytes of %s", o.key)
		}
	}

	// Every message mentioned Bob: each one is in his inbox, once.
	var mentioned []string
	for _, raw := range c.list(t, "/api/v1/me/inbox?limit=200", tokenFor(t, bob)) {
		if field(t, raw, "kind") == "mention" {
			mentioned = append(mentioned, field(t, raw, "message_id"))
		}
	}
	slices.Sort(mentioned)
	var posted []string
	for id := range messages {
		posted = append(posted, id)
	}
	slices.Sort(posted)
	assert.Equal(t, posted, mentioned, "mentions in Bob's inbox")
}

// nextOp chooses writer w's i-th write. Every write changes something, so
// that each one is exactly one event; updates and deletes are about the
// writer's own acknowledged tasks.
func nextOp(w, i int, rp string, live []string) *op {
	key := fmt.Sprintf("w%d-%d", w, i)
	switch {
	case i%5 == 2 && len(live) > 0:
		id := live[i%len(live)]
		return &op{kind: "task.updated", method: http.MethodPatch, path: rp + "/tasks/" + id, key: key, task: id,
			body: map[string]any{"title": "Updated by " + key, "status": []string{"in_progress", "done", "blocked"}[i%3]}}
	case i%10 == 9 && len(live) > 1:
		id := live[0]
		return &op{kind: "task.deleted", method: http.MethodDelete, path: rp + "/tasks/" + id, key: key, task: id}
	case i%10 == 4:
		return &op{kind: "attachment.added", method: http.MethodPost, path: rp + "/attachments", key: key}
	case i%2 == 1:
		return &op{kind: "message.posted", method: http.MethodPost, path: rp + "/messages", key: key,
			body: map[string]any{"body": "@Bob news from " + key}}
	}
	return &op{kind: "task.created", method: http.MethodPost, path: rp + "/tasks", key: key,
		body: map[string]any{"title": "Step " + key, "assignees": []string{"bob"}, "due": "2030-06-30"}}
}

// hasEffect reports whether the log holds the event of an answered write.
func hasEffect(t *testing.T, evs []event, o *op) bool {
	t.Helper()
	id := o.task
	if o.kind != "task.updated" && o.kind != "task.deleted" {
		id = field(t, o.result, "id")
	}
	for _, e := range evs {
		if e.Type != o.kind || field(t, e.Data, "id") != id {
			continue
		}
		if o.kind != "task.updated" || field(t, e.Data, "title") == "Updated by "+o.key {
			return true
		}
	}
	return false
}

// byID decodes list items into a map by their id.
func byID(t *testing.T, raws []json.RawMessage) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, raw := range raws {
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		out[m["id"].(string)] = m
	}
	return out
}

// blobTemps lists the temporary upload files left in the data directory.
func blobTemps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "attachments", "tmp"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
