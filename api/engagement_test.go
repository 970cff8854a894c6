package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
)

// User-Agents of the three device kinds.
const (
	phoneUA   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	tabletUA  = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)

// engagementCases are the engagement routes as every kind of person: the
// room's figures for staff only (customers 403), one's own record and
// files' "seen by" for every member, the invite preview for anyone; none
// of them is an event.
func engagementCases() []accessCase {
	return []accessCase{
		{name: "GET engagement", method: "GET", path: "/rooms/{room}/engagement",
			want: want{200, 200, 200, 403, 403, 404, 404, 200, 200, 401}},
		{name: "GET engagement me", method: "GET", path: "/rooms/{room}/engagement/me", want: allMembersRead},
		{name: "GET file-reads", method: "GET", path: "/rooms/{room}/file-reads", want: allMembersRead},
		{name: "GET invite preview", method: "GET", path: "/invites/{code}",
			want: want{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
	}
}

func TestEngagementAccessMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range engagementCases() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			for i, w := range matrixActors {
				t.Run(w.name, func(t *testing.T) {
					f := newFixture(t, ts)
					runAccessCase(t, f, c, w, c.want[i])
				})
			}
		})
	}
}

type engagementView struct {
	Signal string `json:"signal"`
	People []struct {
		UserID  string         `json:"user_id"`
		Name    string         `json:"name"`
		Side    string         `json:"side"`
		Visits  int            `json:"visits"`
		Devices map[string]int `json:"devices"`
	} `json:"people"`
	Files []struct {
		AttachmentID string `json:"attachment_id"`
		Name         string `json:"name"`
		Views        int    `json:"views"`
		Downloads    int    `json:"downloads"`
		By           []struct {
			UserID    string `json:"user_id"`
			Downloads int    `json:"downloads"`
			Views     int    `json:"views"`
		} `json:"by"`
	} `json:"files"`
}

func decode[T any](tb testing.TB, r response) T {
	tb.Helper()
	var v T
	require.NoError(tb, json.Unmarshal(r.Body, &v), "%s", r)
	return v
}

// TestEngagementCounts: page loads count visits by device kind, downloads
// count by person and file; staff see it all, a customer their own record
// and the "seen by" of shared files only, never an internal file's.
func TestEngagementCounts(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	ua := func(s string) header { return header{"User-Agent", s} }

	ts.must(t, 200, "GET", base, custW, nil, ua(phoneUA))
	ts.must(t, 200, "GET", base, custW, nil, ua(tabletUA))
	ts.must(t, 200, "GET", base, custW, nil, ua(phoneUA)) // within 30 minutes: the same visit
	ts.must(t, 200, "GET", base, staffW, nil, ua(desktopUA))
	ts.must(t, 200, "GET", base+"/attachments/"+f.Att, custW, nil)
	ts.must(t, 200, "GET", base+"/attachments/"+f.Att, custW, nil)
	ts.must(t, 200, "GET", base+"/attachments/"+f.Att+"?view=true", custW, nil)
	for _, bad := range []string{"?view=null", "?view=1", "?view=true&view=true"} {
		ts.must(t, 422, "GET", base+"/attachments/"+f.Att+bad, custW, nil) // refused, and not counted
	}
	ts.must(t, 206, "GET", base+"/attachments/"+f.Att, custW, nil, header{"Range", "bytes=5-"}) // a resumed download: not again
	ts.must(t, 200, "GET", base+"/attachments/"+f.IAtt, staffW, nil)

	e := decode[engagementView](t, ts.must(t, 200, "GET", base+"/engagement", owner, nil))
	people := map[string]int{}
	for i, p := range e.People {
		people[p.UserID] = i
	}
	require.Contains(t, people, custW.ID)
	carl := e.People[people[custW.ID]]
	assert.Equal(t, custW.Name, carl.Name)
	assert.Equal(t, "customer", carl.Side)
	assert.Equal(t, 2, carl.Visits)
	assert.Equal(t, map[string]int{"phone": 1, "tablet": 1}, carl.Devices)
	assert.Equal(t, map[string]int{"desktop": 1}, e.People[people[staffW.ID]].Devices)
	require.Contains(t, people, custR.ID, "a customer who never came is listed, with no visits")
	assert.Zero(t, e.People[people[custR.ID]].Visits)
	assert.Equal(t, "rising", e.Signal, "the customer side's first activity")
	require.Len(t, e.Files, 2)
	for _, file := range e.Files {
		switch file.AttachmentID {
		case f.Att:
			assert.Equal(t, "proposal.txt", file.Name)
			assert.Equal(t, 2, file.Downloads)
			assert.Equal(t, 1, file.Views)
			require.Len(t, file.By, 1)
			assert.Equal(t, custW.ID, file.By[0].UserID)
		case f.IAtt:
			assert.Equal(t, 1, file.Downloads)
		}
	}

	// The customer: their own record, the statement, no staff figures.
	me := ts.must(t, 200, "GET", base+"/engagement/me", custW, nil)
	mine := me.object(t)
	assert.Contains(t, mine["statement"], "no tracking pixels")
	person := mine["person"].(map[string]any)
	assert.Equal(t, custW.ID, person["user_id"])
	assert.EqualValues(t, 2, person["visits"])
	assert.Len(t, mine["files"], 1)
	assert.NotContains(t, string(me.Body), staffW.ID, "nothing of anyone else")
	assertCustomerSafe(t, me.Body, "engagement/me")

	for _, a := range []struct {
		name  string
		who   response
		files []string
	}{
		{"staff", ts.must(t, 200, "GET", base+"/file-reads", staffR, nil), []string{f.Att, f.IAtt}},
		{"customer", ts.must(t, 200, "GET", base+"/file-reads", custR, nil), []string{f.Att}},
	} {
		var ids []string
		for _, it := range a.who.items(t) {
			ids = append(ids, it["attachment_id"].(string))
			assert.NotContains(t, it, "downloads", "seen-by names people, it does not count")
		}
		assert.ElementsMatch(t, a.files, ids, a.name)
		if a.name == "customer" {
			assertCustomerSafe(t, a.who.Body, "file-reads")
			assert.NotContains(t, string(a.who.Body), f.IAtt)
		}
	}

	// The rooms list: staff get the signal, customers never.
	for _, it := range ts.must(t, 200, "GET", "/rooms", owner, nil).items(t) {
		assert.Equal(t, "rising", it["engagement"])
	}
	for _, it := range ts.must(t, 200, "GET", "/rooms", custW, nil).items(t) {
		assert.NotContains(t, it, "engagement")
	}
}

// TestInvitePreview: a pending invite's code shows the room's name and who
// invited, and nothing else; a revoked, used or unknown code is one 404.
func TestInvitePreview(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	got := ts.do(t, "GET", "/invites/"+f.InviteCode, "", nil)
	require.Equal(t, 200, got.Status, "%s", got)
	assert.Equal(t, map[string]any{"room_name": "Acme rollout", "invited_by": owner.Name}, got.object(t))
	assert.Equal(t, "no-store", got.Header.Get("Cache-Control"))

	unknown := ts.do(t, "GET", "/invites/nope", "", nil)
	require.Equal(t, 404, unknown.Status)
	inv := ts.must(t, 201, "POST", "/rooms/"+f.Room+"/invites", owner, map[string]any{"email": "x@buyer.example"})
	require.Equal(t, 200, ts.do(t, "POST", "/invites/"+inv.str(t, "code")+"/accept", "", map[string]any{"name": "X", "email": "x@buyer.example"}).Status)
	ts.must(t, 204, "DELETE", "/rooms/"+f.Room+"/invites/"+f.Invite, owner, nil)
	for name, code := range map[string]string{"revoked": f.InviteCode, "used": inv.str(t, "code")} {
		r := ts.do(t, "GET", "/invites/"+code, "", nil)
		assert.Equal(t, 404, r.Status, name)
		assert.Equal(t, string(unknown.Body), string(r.Body), "one answer for every code that is not pending (%s)", name)
	}
}

// TestEngagementFromTheWebsocket: a device subscribed to a room is a visit
// of its kind, told by the User-Agent it connected with.
func TestEngagementFromTheWebsocket(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Engagement live")
	cl, err := c.tryDial(n, custW, &websocket.DialOptions{HTTPHeader: http.Header{"User-Agent": {phoneUA}}})
	require.NoError(t, err)
	cl.subscribed(roomID, 0)

	var mine struct {
		Person struct {
			Visits  int            `json:"visits"`
			Devices map[string]int `json:"devices"`
		} `json:"person"`
	}
	require.Equal(t, 200, c.rest(n, custW, "GET", "/rooms/"+roomID+"/engagement/me", nil, &mine))
	assert.Equal(t, 1, mine.Person.Visits)
	assert.Equal(t, map[string]int{"phone": 1}, mine.Person.Devices)

	var e engagementView
	require.Equal(t, 200, c.rest(n, owner, "GET", "/rooms/"+roomID+"/engagement", nil, &e))
	assert.Equal(t, "rising", e.Signal)
}

// TestDeviceKinds: the device kind each User-Agent counts as.
func TestDeviceKinds(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	for _, c := range []struct {
		who  dealroom.Actor
		ua   string
		kind string
	}{
		{custW, "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "tablet"},
		{custR, tabletUA, "tablet"},
		{staffW, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36", "phone"},
		{staffR, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "desktop"},
		{manager, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "desktop"},
		{owner, "curl/8.5.0", "other"},
	} {
		ts.must(t, 200, "GET", base, c.who, nil, header{"User-Agent", c.ua})
		mine := decode[struct {
			Person struct {
				Devices map[string]int `json:"devices"`
			} `json:"person"`
		}](t, ts.must(t, 200, "GET", base+"/engagement/me", c.who, nil))
		assert.Equal(t, map[string]int{c.kind: 1}, mine.Person.Devices, "%s: %s", c.who.ID, c.ua)
	}
}
