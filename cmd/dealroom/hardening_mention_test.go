package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/room"
)

// TestMentionFloodAgainstTheBinary: the running server refuses a message
// of more @-mentions than room.MaxMentions with the documented error and
// writes nothing, and resolves a maximal allowed message (the longest
// body, the most mentions, in a room of many look-alike names) to exactly
// the members named, each told once in their inbox.
func TestMentionFloodAgainstTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary: skipped with -short")
	}
	p := startProcess(t, buildBinary(t), t.TempDir())
	c := newClient(p)
	at := tokenFor(t, alice)
	roomID := field(t, c.must(t, http.StatusCreated, http.MethodPost, "/api/v1/rooms", at,
		map[string]any{"name": "Flood test", "company": "Acme"}, ""), "id")
	base := "/api/v1/rooms/" + roomID
	const members = 120
	for i := range members {
		c.must(t, http.StatusCreated, http.MethodPost, base+"/members", at, map[string]any{
			"user_id": fmt.Sprintf("m%d", i), "name": fmt.Sprintf("Member %d", i), "kind": "staff"}, "")
	}
	head := func() int64 {
		var r struct {
			Head int64 `json:"head"`
		}
		require.NoError(t, json.Unmarshal(c.must(t, http.StatusOK, http.MethodGet, base, at, nil, ""), &r))
		return r.Head
	}
	before := head()

	// The flood: 10,000 characters of "@x ". Refused, twice with its key
	// (a refusal records no key), and nothing is written.
	flood := strings.TrimSpace(strings.Repeat("@x ", room.MaxBody/3))
	for range 2 {
		r := c.must(t, http.StatusUnprocessableEntity, http.MethodPost, base+"/messages", at, map[string]any{"body": flood}, "flood-1")
		var e struct {
			Error struct {
				Code, Field, Message string
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(r, &e), "%s", r)
		assert.Equal(t, "invalid_field", e.Error.Code)
		assert.Equal(t, "body", e.Error.Field)
		assert.Contains(t, e.Error.Message, fmt.Sprint(room.MaxMentions), "the error names the cap")
	}
	// One over the cap, of real members.
	c.must(t, http.StatusUnprocessableEntity, http.MethodPost, base+"/messages", at,
		map[string]any{"body": strings.Repeat("@Member 1 ", room.MaxMentions+1)}, "")
	c.must(t, http.StatusUnprocessableEntity, http.MethodPost, base+"/tasks", at,
		map[string]any{"title": "T", "description": strings.Repeat("@m2 ", room.MaxMentions+1)}, "")
	assert.Equal(t, before, head(), "refused floods write nothing")

	// The maximal allowed message: the cap's worth of mentions of
	// look-alike names (Member 1, Member 10, Member 100, ...), the author
	// among them, padded to the longest body.
	var b strings.Builder
	var want []string
	for i := range room.MaxMentions - 1 {
		n := (i * 7) % members
		fmt.Fprintf(&b, "@Member %d, ", n)
		want = append(want, fmt.Sprintf("m%d", n))
	}
	b.WriteString("and @alice. ")
	want = append(want, "alice")
	body := b.String() + strings.Repeat("y", room.MaxBody-utf8.RuneCountInString(b.String()))
	require.Equal(t, room.MaxBody, utf8.RuneCountInString(body))
	var res struct {
		Mentions   []string `json:"mentions"`
		Unresolved []string `json:"unresolved_mentions"`
	}
	require.NoError(t, json.Unmarshal(c.must(t, http.StatusCreated, http.MethodPost, base+"/messages", at,
		map[string]any{"body": body}, "max-1"), &res))
	assert.Empty(t, res.Unresolved)
	assert.Len(t, res.Mentions, room.MaxMentions)
	assert.Equal(t, want, res.Mentions, "exactly the members named, in order")
	assert.Equal(t, before+1, head())

	// Inbox: each member named is told once; the author's self-mention
	// tells nobody.
	for _, u := range []string{"m0", "m7", "m91"} {
		items := c.list(t, "/api/v1/me/inbox", tokenFor(t, dealroom.Actor{ID: u, Name: u, Kind: dealroom.Staff, Role: dealroom.Rep}))
		assert.Len(t, items, 2, "%s: added to the room, and mentioned once", u)
	}
	for _, raw := range c.list(t, "/api/v1/me/inbox", at) {
		assert.NotEqual(t, "mention", field(t, raw, "kind"), "no item for one's own mention")
	}
}
