package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/boltstore"
	"dealroom/diskblob"
	"dealroom/room"
)

// End-to-end tests of the hardening (issue 11) against the real binary:
// the room list and its filters (items 4, 5), invites (6), and the bytes
// of failed uploads (13).

var (
	manager = dealroom.Actor{ID: "maya", Name: "Maya Manager", Email: "maya@seller.example", Kind: dealroom.Staff, Role: dealroom.Manager}
)

// TestE2ERoomListShowsWhatMembershipAllows: a staff member who is the
// customer's contact in a room sees it in GET /rooms as customers do, and
// filters on hidden fields neither match it nor work for customers.
func TestE2ERoomListShowsWhatMembershipAllows(t *testing.T) {
	t.Parallel()
	p := startProcess(t, buildBinary(t), t.TempDir())
	c := newClient(p)
	at, mt, bt := tokenFor(t, alice), tokenFor(t, manager), tokenFor(t, bob)
	roomID := field(t, c.must(t, 201, "POST", "/api/v1/rooms", at, map[string]any{"name": "Acme", "company": "Acme",
		"value": 777555, "currency": "EUR", "close_window": "this_month", "tags": []string{"hush-tag"}}, ""), "id")
	for _, who := range []dealroom.Actor{bob, manager} {
		c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/members", at, map[string]any{
			"user_id": who.ID, "name": who.Name, "kind": "customer"}, "")
	}
	for _, tok := range []string{bt, mt} {
		list := string(c.must(t, 200, "GET", "/api/v1/rooms", tok, nil, ""))
		assert.Contains(t, list, roomID)
		for _, hidden := range []string{"777555", "hush-tag", "this_month", "owner_id"} {
			assert.NotContains(t, list, hidden, "a room seen as a customer, in the list")
		}
		for _, q := range []string{"?owner=alice", "?close_window=this_month"} {
			assert.NotContains(t, string(c.must(t, 200, "GET", "/api/v1/rooms"+q, tok, nil, "")), roomID,
				"a filter on what the view hides answers nothing about the room")
		}
	}
	assert.Contains(t, string(c.must(t, 200, "GET", "/api/v1/rooms?owner=alice", at, nil, "")), "777555", "the owner sees it all")

	code := field(t, c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/invites", at, map[string]any{"email": "cat@acme.example"}, ""), "code")
	ct := field(t, c.must(t, 200, "POST", "/api/v1/invites/"+code+"/accept", "", map[string]any{"name": "Cat", "email": "cat@acme.example"}, ""), "token")
	for _, q := range []string{"?owner=alice", "?close_window=this_month"} {
		r, err := c.send(context.Background(), "GET", "/api/v1/rooms"+q, ct, nil, "")
		require.NoError(t, err)
		assert.Equal(t, 422, r.status, "a customer's filter on %s: %s", q, r)
	}
	c.must(t, 200, "GET", "/api/v1/rooms?stage=discovery", ct, nil, "")
}

// TestE2ERevokedInviteEndsItsTokens: a forwarded invite link stops working
// once accepted (but for a double click), and revoking it ends the tokens
// it issued.
func TestE2ERevokedInviteEndsItsTokens(t *testing.T) {
	t.Parallel()
	p := startProcess(t, buildBinary(t), t.TempDir())
	c := newClient(p)
	at := tokenFor(t, alice)
	roomID := field(t, c.must(t, 201, "POST", "/api/v1/rooms", at, map[string]any{"name": "Acme", "company": "Acme"}, ""), "id")
	inv := c.must(t, 201, "POST", "/api/v1/rooms/"+roomID+"/invites", at, map[string]any{"email": "cat@acme.example"}, "")
	code, invID := field(t, inv, "code"), field(t, inv, "id")
	acc := map[string]any{"name": "Cat", "email": "cat@acme.example"}
	first := field(t, c.must(t, 200, "POST", "/api/v1/invites/"+code+"/accept", "", acc, ""), "token")
	second := field(t, c.must(t, 200, "POST", "/api/v1/invites/"+code+"/accept", "", acc, ""), "token")
	for _, tok := range []string{first, second} {
		c.must(t, 200, "GET", "/api/v1/rooms/"+roomID, tok, nil, "")
	}
	// Another customer token of the same person, not from this invite.
	other := tokenFor(t, dealroom.Actor{ID: room.CustomerID("cat@acme.example"), Name: "Cat", Kind: dealroom.Customer})

	c.must(t, 204, "DELETE", "/api/v1/rooms/"+roomID+"/invites/"+invID, at, nil, "")
	for _, tok := range []string{first, second} {
		body := c.must(t, 401, "GET", "/api/v1/rooms/"+roomID, tok, nil, "")
		assert.Contains(t, string(body), "revoked")
		c.must(t, 401, "POST", "/api/v1/rooms/"+roomID+"/messages", tok, map[string]any{"body": "hello?"}, "")
	}
	c.must(t, 200, "GET", "/api/v1/rooms/"+roomID, other, nil, "")
	c.must(t, 409, "POST", "/api/v1/invites/"+code+"/accept", "", acc, "")
	var items []map[string]any
	for _, raw := range c.list(t, "/api/v1/rooms/"+roomID+"/invites", at) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		items = append(items, m)
	}
	require.Len(t, items, 1)
	assert.Equal(t, "revoked", items[0]["status"])
}

// TestE2EBytesOfFailedUploadsAreCollected: bytes stored for an upload that
// was never recorded are removed when the server starts, once older than
// a day; an attachment's bytes stay however old.
func TestE2EBytesOfFailedUploadsAreCollected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := boltstore.Open(dir)
	require.NoError(t, err)
	blobs, err := diskblob.Open(filepath.Join(dir, "attachments"))
	require.NoError(t, err)
	ctx := context.Background()
	svc := &room.Service{Store: store, Blobs: blobs}
	r, err := svc.CreateRoom(ctx, alice, room.Draft{Name: "Acme", Company: "Acme"}, "")
	require.NoError(t, err)
	kept, err := blobs.Put(ctx, strings.NewReader("the signed contract"), 1<<20)
	require.NoError(t, err)
	_, err = svc.AddAttachment(ctx, alice, r.ID, room.Upload{Name: "contract.pdf", ContentType: "application/pdf", Blob: kept}, "")
	require.NoError(t, err)
	orphan, err := blobs.Put(ctx, strings.NewReader("bytes whose record failed"), 1<<20)
	require.NoError(t, err)
	recent, err := blobs.Put(ctx, strings.NewReader("an upload in progress"), 1<<20)
	require.NoError(t, err)
	require.NoError(t, store.Close())
	path := func(sum string) string { return filepath.Join(dir, "attachments", sum[:2], sum) }
	old := time.Now().Add(-48 * time.Hour)
	for _, b := range []room.Blob{kept, orphan} {
		require.NoError(t, os.Chtimes(path(b.SHA256), old, old))
	}

	p := startProcess(t, buildBinary(t), dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path(orphan.SHA256)); os.IsNotExist(err) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the unrecorded upload's bytes were not collected at start")
		time.Sleep(20 * time.Millisecond)
	}
	for _, b := range []room.Blob{kept, recent} {
		_, err := os.Stat(path(b.SHA256))
		assert.NoError(t, err, "bytes in use, or young, stay")
	}
	c := newClient(p)
	atts := c.list(t, "/api/v1/rooms/"+r.ID+"/attachments", tokenFor(t, alice))
	require.Len(t, atts, 1)
	body := c.must(t, http.StatusOK, "GET", "/api/v1/rooms/"+r.ID+"/attachments/"+idOf(atts[0]), tokenFor(t, alice), nil, "")
	assert.Equal(t, "the signed contract", string(body))
}
