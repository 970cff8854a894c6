package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
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

// crmServer is a test server with service accounts, whose clock the test
// moves.
type crmServer struct {
	*testServer
	clock *testclock.Clock
}

func newCRMServer(t *testing.T) *crmServer {
	t.Helper()
	st, err := boltstore.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	clk := testclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	svc := &staff.Service{Store: st, Now: clk.Now}
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.Staff = svc }))
	return &crmServer{testServer: ts, clock: clk}
}

// newKey makes a service account as the admin and returns it with its key.
func (cs *crmServer) newKey(t *testing.T, scopes ...string) (map[string]any, string) {
	t.Helper()
	r := cs.must(t, http.StatusCreated, "POST", "/admin/service-accounts", admin, map[string]any{"name": "Salesforce", "scopes": scopes})
	obj := r.object(t)
	key, _ := obj["key"].(string)
	require.True(t, strings.HasPrefix(key, "drk_"), "the key is shown once, recognisable: %s", r)
	return obj, key
}

// opportunity is a CRM's body for an upsert.
func opportunity(owner string) map[string]any {
	return map[string]any{"name": "Acme renewal", "company": "Acme", "value": 50000, "currency": "EUR",
		"stage": "solution", "close_window": "quarter", "external_url": "https://crm.example.com/opp/0061", "owner_email": owner}
}

func (cs *crmServer) account(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, a := range cs.must(t, http.StatusOK, "GET", "/admin/service-accounts", admin, nil).items(t) {
		if a["id"] == id {
			return a
		}
	}
	t.Fatalf("no account %s", id)
	return nil
}

func TestServiceAccountLifecycle(t *testing.T) {
	cs := newCRMServer(t)
	for _, a := range []dealroom.Actor{manager, owner, custW} {
		cs.must(t, http.StatusForbidden, "POST", "/admin/service-accounts", a, map[string]any{"name": "x", "scopes": []string{"rooms:read"}})
		cs.must(t, http.StatusForbidden, "GET", "/admin/service-accounts", a, nil)
		cs.must(t, http.StatusForbidden, "DELETE", "/admin/service-accounts/sa_x", a, nil)
	}
	for _, body := range []any{map[string]any{"name": "x", "scopes": []string{}}, map[string]any{"name": "x", "scopes": []string{"rooms:delete"}},
		map[string]any{"name": "", "scopes": []string{"rooms:read"}}, raw(`{"name":"x","scopes":["rooms:read"],"admin":true}`)} {
		r := cs.do(t, "POST", "/admin/service-accounts", tok(t, admin), body)
		assert.Contains(t, []int{400, 422}, r.Status, "%v: %s", body, r)
	}
	assert.Empty(t, cs.must(t, http.StatusOK, "GET", "/admin/service-accounts", admin, nil).items(t), "nothing refused was made")

	acct, key := cs.newKey(t, "rooms:write", "rooms:read")
	id := acct["id"].(string)
	listed := cs.account(t, id)
	assert.NotContains(t, listed, "key", "the key is shown only when made")
	assert.Nil(t, listed["last_used_at"])
	assert.Equal(t, []any{"rooms:read", "rooms:write"}, listed["scopes"])

	cs.must(t, http.StatusOK, "GET", "/me", owner, nil) // the owner has signed in once
	r := cs.do(t, "PUT", "/rooms/by-external-id/0061", key, opportunity("Olivia@Seller.example"))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	roomID := r.str(t, "id")
	assert.Equal(t, owner.ID, r.str(t, "owner_id"))
	assert.Equal(t, "svc:"+id, r.str(t, "created_by"))
	used := cs.account(t, id)["last_used_at"]
	require.NotNil(t, used, "the first use is recorded")

	// Only its scopes, and only the routes made for keys.
	for _, path := range []string{"/rooms/" + roomID + "/export.jsonl", "/me/inbox", "/admin/service-accounts"} {
		r := cs.do(t, "GET", path, key, nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s: %s", path, r)
	}
	r = cs.do(t, "POST", "/rooms/"+roomID+"/messages", key, map[string]any{"body": "hello"})
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r)
	r = cs.do(t, "POST", "/rooms", key, map[string]any{"name": "Acme", "company": "Acme"})
	assert.Equal(t, http.StatusForbidden, r.Status, "a key makes rooms only for a named owner: %s", r)
	r = cs.do(t, "POST", "/session", "", map[string]any{"token": key})
	assert.Equal(t, http.StatusUnauthorized, r.Status, "a key opens no browser session: %s", r)

	cs.clock.Advance(20 * time.Second)
	assert.Equal(t, http.StatusOK, cs.do(t, "GET", "/rooms/"+roomID, key, nil).Status)
	assert.Equal(t, used, cs.account(t, id)["last_used_at"], "not a write per request")
	cs.clock.Advance(2 * time.Minute)
	assert.Equal(t, http.StatusOK, cs.do(t, "GET", "/rooms/"+roomID, key, nil).Status)
	assert.NotEqual(t, used, cs.account(t, id)["last_used_at"], "moved after a minute")

	r = cs.must(t, http.StatusOK, "DELETE", "/admin/service-accounts/"+id, admin, nil)
	assert.NotNil(t, r.object(t)["revoked_at"])
	r = cs.do(t, "PUT", "/rooms/by-external-id/0061", key, opportunity(owner.Email))
	assert.Equal(t, http.StatusUnauthorized, r.Status, "a revoked key: %s", r)
	assertErrorBody(t, r, "")
	cs.must(t, http.StatusNotFound, "DELETE", "/admin/service-accounts/sa_nope", admin, nil)
}

func TestUpsertByExternalID(t *testing.T) {
	cs := newCRMServer(t)
	_, key := cs.newKey(t, "rooms:write", "rooms:read")
	cs.must(t, http.StatusOK, "GET", "/me", owner, nil)

	bad := map[string]struct {
		id   string
		body any
	}{
		"unknown owner":      {"0061", opportunity("nobody@seller.example")},
		"customer as owner":  {"0061", opportunity(custW.Email)},
		"id with a space":    {"opp%201", opportunity(owner.Email)},
		"id too long":        {strings.Repeat("9", 129), opportunity(owner.Email)},
		"ftp url":            {"0061", merge(opportunity(owner.Email), "external_url", "ftp://crm.example.com/1")},
		"url with password":  {"0061", merge(opportunity(owner.Email), "external_url", "https://u:p@crm.example.com/1")},
		"no name":            {"0061", merge(opportunity(owner.Email), "name", "")},
		"bad currency":       {"0061", merge(opportunity(owner.Email), "currency", "euro")},
		"unknown stage":      {"0061", merge(opportunity(owner.Email), "stage", "closing")},
		"value not a number": {"0061", merge(opportunity(owner.Email), "value", "lots")},
		"unknown field":      {"0061", merge(opportunity(owner.Email), "owner_id", "olivia")},
	}
	cs.must(t, http.StatusOK, "GET", "/me", custW, nil) // a customer known by email is still no owner
	for name, tc := range bad {
		r := cs.do(t, "PUT", "/rooms/by-external-id/"+tc.id, key, tc.body)
		assert.Contains(t, []int{400, 422}, r.Status, "%s: %s", name, r)
		assertErrorBody(t, r, "")
	}
	r := cs.do(t, "PUT", "/rooms/by-external-id/0061", tok(t, custW), opportunity(owner.Email))
	assert.Equal(t, http.StatusForbidden, r.Status, "%s", r)
	assert.Zero(t, cs.roomCount(t), "nothing refused made a room")

	// Twenty calls at once make one room.
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := cs.send("PUT", "/rooms/by-external-id/0061", key, opportunity(owner.Email))
			if assert.NoError(t, err) {
				statuses[i] = r.Status
			}
		}()
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		assert.Contains(t, []int{200, 201}, s)
		if s == http.StatusCreated {
			created++
		}
	}
	assert.Equal(t, 1, created)
	require.Equal(t, 1, cs.roomCount(t))
	r = cs.must(t, http.StatusOK, "GET", "/rooms/by-external-id/0061", admin, nil)
	roomID := r.str(t, "id")
	assert.Equal(t, "0061", r.str(t, "external_id"))
	assert.Equal(t, "https://crm.example.com/opp/0061", r.str(t, "external_url"))
	assert.Equal(t, 1, cs.eventCount(t, roomID), "the calls that found the room wrote nothing")

	// An update that changes something writes one event; the same again none.
	moved := merge(opportunity(owner.Email), "stage", "signing")
	for range 2 {
		r = cs.do(t, "PUT", "/rooms/by-external-id/0061", key, moved)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		assert.Equal(t, "signing", r.str(t, "stage"))
	}
	assert.Equal(t, 2, cs.eventCount(t, roomID))

	// Customers see neither field, in the room or its timeline.
	cs.must(t, http.StatusCreated, "POST", "/rooms/"+roomID+"/members", owner,
		map[string]any{"user_id": custW.ID, "name": custW.Name, "kind": "customer"})
	r = cs.must(t, http.StatusOK, "GET", "/rooms/"+roomID, custW, nil)
	assert.NotContains(t, string(r.Body), "external")
	r = cs.must(t, http.StatusOK, "GET", "/rooms/"+roomID+"/events", custW, nil)
	assert.NotContains(t, string(r.Body), "0061")
	cs.must(t, http.StatusNotFound, "GET", "/rooms/by-external-id/0061", custOut, nil)

	// The id belongs to one room: a PATCH cannot give it to another, nor
	// change it.
	other := cs.must(t, http.StatusCreated, "POST", "/rooms", owner, map[string]any{"name": "Other", "company": "Acme"}).str(t, "id")
	r = cs.must(t, http.StatusConflict, "PATCH", "/rooms/"+other, owner, map[string]any{"external_id": "0061"})
	assertErrorBody(t, r, "")
	cs.must(t, http.StatusUnprocessableEntity, "PATCH", "/rooms/"+roomID, owner, map[string]any{"external_id": "0062"})
	cs.must(t, http.StatusOK, "PATCH", "/rooms/"+other, owner, map[string]any{"external_id": "0062", "external_url": "https://crm.example.com/opp/0062"})
	r = cs.do(t, "PUT", "/rooms/by-external-id/0062", key, merge(opportunity(owner.Email), "name", "Other"))
	require.Equal(t, http.StatusOK, r.Status, "an id set by PATCH leads the upsert to its room: %s", r)
	assert.Equal(t, other, r.str(t, "id"))

	// A retry with its Idempotency-Key gets the first answer again.
	first := cs.do(t, "PUT", "/rooms/by-external-id/0099", key, opportunity(owner.Email), header{"Idempotency-Key", "opp-0099-1"})
	require.Equal(t, http.StatusCreated, first.Status, "%s", first)
	retry := cs.do(t, "PUT", "/rooms/by-external-id/0099", key, opportunity(owner.Email), header{"Idempotency-Key", "opp-0099-1"})
	assert.Equal(t, http.StatusCreated, retry.Status, "%s", retry)
	assert.Equal(t, first.str(t, "id"), retry.str(t, "id"))
	assert.Equal(t, 1, cs.eventCount(t, first.str(t, "id")))
}

func merge(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// exportLines reads an export answer's lines.
func exportLines(t *testing.T, r response) []room.Event {
	t.Helper()
	var out []room.Event
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev room.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), "each line is one event: %s", sc.Text())
		out = append(out, ev)
	}
	require.NoError(t, sc.Err())
	return out
}

func TestExportJSONL(t *testing.T) {
	cs := newCRMServer(t)
	ctx := context.Background()
	roomID := cs.must(t, http.StatusCreated, "POST", "/rooms", owner, map[string]any{"name": "Acme", "company": "Acme"}).str(t, "id")
	cs.must(t, http.StatusCreated, "POST", "/rooms/"+roomID+"/members", owner,
		map[string]any{"user_id": custW.ID, "name": custW.Name, "kind": "customer"})
	// More events than a page of the timeline, some internal.
	svc := &room.Service{Store: cs.Store}
	const posted = 1100
	for i := range posted {
		vis := dealroom.Shared
		if i%3 == 0 {
			vis = dealroom.Internal
		}
		_, err := svc.PostMessage(ctx, owner, roomID, room.MessageDraft{Body: "note " + internalMarker, Visibility: vis}, "")
		require.NoError(t, err)
	}
	total := posted + 2

	r := cs.must(t, http.StatusOK, "GET", "/rooms/"+roomID+"/export.jsonl", owner, nil)
	assert.Contains(t, r.Header.Get("Content-Type"), "application/jsonl")
	assert.Contains(t, r.Header.Get("Content-Disposition"), "attachment")
	evs := exportLines(t, r)
	require.Len(t, evs, total, "every event")
	for i, ev := range evs {
		require.EqualValues(t, i+1, ev.Seq, "in seq order")
	}

	// Customers get no export, even of their own room; strangers no room.
	r = cs.must(t, http.StatusForbidden, "GET", "/rooms/"+roomID+"/export.jsonl", custW, nil)
	assert.NotContains(t, string(r.Body), internalMarker)
	cs.must(t, http.StatusNotFound, "GET", "/rooms/"+roomID+"/export.jsonl", staffOut, nil)
	cs.must(t, http.StatusNotFound, "GET", "/rooms/r_nope/export.jsonl", owner, nil)

	// A key with export:read exports the same; one without may not.
	_, key := cs.newKey(t, "export:read")
	r = cs.do(t, "GET", "/rooms/"+roomID+"/export.jsonl", key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Len(t, exportLines(t, r), total)
	_, readKey := cs.newKey(t, "rooms:read")
	assert.Equal(t, http.StatusForbidden, cs.do(t, "GET", "/rooms/"+roomID+"/export.jsonl", readKey, nil).Status)
}

// TestServiceAccountIdempotencyKey: a retried create makes no second
// account (and so no second live key); the retry is told which account
// the first request made.
func TestServiceAccountIdempotencyKey(t *testing.T) {
	cs := newCRMServer(t)
	body := map[string]any{"name": "Salesforce", "scopes": []string{"rooms:read"}}
	first := cs.must(t, http.StatusCreated, "POST", "/admin/service-accounts", admin, body, idem("sa-create-1")).object(t)
	again := cs.must(t, http.StatusConflict, "POST", "/admin/service-accounts", admin, body, idem("sa-create-1"))
	assert.Contains(t, again.String(), first["id"].(string), "the conflict names the account made first")
	assert.NotContains(t, again.String(), first["key"].(string), "the key is not shown again")
	require.Len(t, cs.must(t, http.StatusOK, "GET", "/admin/service-accounts", admin, nil).items(t), 1)
	cs.must(t, http.StatusCreated, "POST", "/admin/service-accounts", admin, body, idem("sa-create-2"))
	require.Len(t, cs.must(t, http.StatusOK, "GET", "/admin/service-accounts", admin, nil).items(t), 2)
}
