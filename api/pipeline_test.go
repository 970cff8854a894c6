package api_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipelineCases are the pipeline and the confirmation of a date as every
// kind of person. The fixture's shared task was made by its owner (staff)
// with a date: only the customer side confirms it.
func pipelineCases() []accessCase {
	return []accessCase{
		{name: "GET pipeline", method: "GET", path: "/pipeline",
			want: want{200, 200, 200, 403, 403, 200, 403, 200, 200, 401},
			check: func(t *testing.T, f *fixture, w who, r response) {
				var p struct {
					Cards []struct {
						Room struct {
							ID string `json:"id"`
						} `json:"room"`
					} `json:"cards"`
				}
				require.NoError(t, json.Unmarshal(r.Body, &p))
				ids := []string{}
				for _, c := range p.Cards {
					ids = append(ids, c.Room.ID)
				}
				if w.actor.ID == staffOut.ID {
					assert.NotContains(t, ids, f.Room, "a rep who is no member does not see the room")
				} else {
					assert.Contains(t, ids, f.Room)
				}
			}},
		{name: "POST confirm-due", method: "POST", path: "/rooms/{room}/tasks/{task}/confirm-due", write: true,
			body: jsonBody(map[string]any{"due": "2030-01-31"}),
			want: want{403, 403, 403, 200, 403, 404, 404, 403, 403, 401}},
		{name: "POST confirm-due stale date", method: "POST", path: "/rooms/{room}/tasks/{task}/confirm-due",
			body: jsonBody(map[string]any{"due": "2030-02-01"}),
			want: want{409, 409, 403, 409, 403, 404, 404, 409, 409, 401}},
		{name: "POST confirm-due internal", method: "POST", path: "/rooms/{room}/tasks/{itask}/confirm-due",
			body: jsonBody(map[string]any{"due": "2030-01-31"}),
			want: want{409, 409, 403, 404, 404, 404, 404, 409, 409, 401}},
	}
}

func TestPipelineAccessMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range pipelineCases() {
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

// TestPipelineOneRequest: the manager's view answers the cards with the
// commitment history's figures, and GET room the plan's health to both
// sides, the customer's without anything internal.
func TestPipelineOneRequest(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	ts.must(t, 200, "POST", base+"/tasks/"+f.Task+"/confirm-due", custW, map[string]any{"due": "2030-01-31"})
	slipped := ts.must(t, 200, "PATCH", base+"/tasks/"+f.Task, owner, map[string]any{"due": "2030-02-03"}).object(t)
	c := slipped["commitment"].(map[string]any)
	assert.Equal(t, "slipped", c["state"])
	assert.EqualValues(t, 1, c["slips"])
	assert.EqualValues(t, 3, c["slipped_days"])
	ts.must(t, 200, "PATCH", base, owner, map[string]any{"close_window": "next_month"})

	p := ts.must(t, 200, "GET", "/pipeline?close_window=next_month", manager, nil).object(t)
	cards := p["cards"].([]any)
	require.Len(t, cards, 1)
	card := cards[0].(map[string]any)
	health := card["health"].(map[string]any)
	assert.EqualValues(t, 1, health["slipped"])
	assert.EqualValues(t, 1, health["dated"])
	assert.EqualValues(t, 0, health["score"])
	forecast := card["room"].(map[string]any)["forecast"].(map[string]any)
	assert.EqualValues(t, 1, forecast["slips"], "this month to next month slid once")
	assert.Equal(t, "Olivia Owner", card["owner"].(map[string]any)["name"])
	assert.Equal(t, "Security review", card["next_step"].(map[string]any)["title"])
	assert.Empty(t, ts.must(t, 200, "GET", "/pipeline?close_window=this_month", manager, nil).object(t)["cards"])

	staffRoom := ts.must(t, 200, "GET", base, owner, nil).object(t)
	custRoom := ts.must(t, 200, "GET", base, custR, nil)
	assertCustomerSafe(t, custRoom.Body, "GET room")
	assert.Equal(t, staffRoom["plan_health"], custRoom.object(t)["plan_health"], "both sides see the same health")
	assert.NotContains(t, string(custRoom.Body), "forecast")

	// The customer's timeline holds the commitment's history; the close
	// window's is staff's only.
	var states []string
	for _, ev := range ts.events(t, f.Room, custR) {
		changes, _ := ev["changes"].(map[string]any)
		if ch, ok := changes["commitment"].(map[string]any); ok && ev["type"] == "task.updated" {
			states = append(states, ch["to"].(map[string]any)["state"].(string))
		}
		assert.NotContains(t, changes, "close_window")
	}
	assert.Equal(t, []string{"confirmed", "slipped"}, states)

	for _, bad := range []string{"quiet_days=-1", "quiet_days=366", "quiet_days=x", "format=xml", "close_window=soon"} {
		r := ts.do(t, "GET", "/pipeline?"+bad, tok(t, manager), nil)
		assert.Equal(t, 422, r.Status, "%s: %s", bad, r)
	}
}

// TestPipelineCSV: one row per room, quoted by RFC 4180, and no cell that
// a spreadsheet would run as a formula.
func TestPipelineCSV(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	evil := map[string]any{"name": `=HYPERLINK("http://evil.example","Click"), "quoted"`, "company": "@SUM(A1:A9)",
		"close_window": "quarter"}
	r := ts.must(t, 201, "POST", "/rooms", owner, evil).str(t, "id")
	ts.must(t, 201, "POST", "/rooms/"+r+"/tasks", owner, map[string]any{"title": "-2+3, \"quoted\"", "due": "2030-01-31"})
	ts.must(t, 201, "POST", "/rooms", owner, map[string]any{"name": "Plain, with a comma", "company": "+Plus"})

	res := ts.must(t, 200, "GET", "/pipeline?format=csv", manager, nil)
	assert.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Disposition"), "attachment")
	assert.Contains(t, string(res.Body), "\r\n", "CRLF line ends")
	rows, err := csv.NewReader(strings.NewReader(string(res.Body))).ReadAll()
	require.NoError(t, err, "the export parses as CSV")
	require.Len(t, rows, 3)
	assert.Equal(t, "room_id", rows[0][0])
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	byID := map[string][]string{}
	for _, row := range rows[1:] {
		require.Len(t, row, len(rows[0]))
		byID[row[0]] = row
		for _, cell := range row {
			if cell != "" {
				assert.NotContains(t, "=+-@\t\r", cell[:1], "a cell that a spreadsheet would evaluate: %q", cell)
			}
		}
	}
	row := byID[r]
	assert.Equal(t, `'=HYPERLINK("http://evil.example","Click"), "quoted"`, row[col["room"]], "quotes and commas survive")
	assert.Equal(t, "'@SUM(A1:A9)", row[col["company"]])
	assert.Equal(t, "'-2+3, \"quoted\"", row[col["next_step"]])
	assert.Equal(t, "2030-01-31", row[col["next_step_due"]])
	assert.Equal(t, "proposed", row[col["next_step_commitment"]])
	assert.Equal(t, "quarter", row[col["close_window"]])
	assert.Equal(t, "Olivia Owner", row[col["owner"]])
	assert.Equal(t, "1", row[col["unconfirmed"]])

	assert.Equal(t, http.StatusForbidden, ts.do(t, "GET", "/pipeline?format=csv", tok(t, custW), nil).Status)
}

// TestWSConfirmCommand: the confirmation is a websocket command too, made
// from the same declaration.
func TestWSConfirmCommand(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	n := c.Nodes[0]
	roomID := c.wsRoom("Confirm")
	var tk struct {
		ID string `json:"id"`
	}
	require.Equal(t, 201, c.rest(n, owner, "POST", "/rooms/"+roomID+"/tasks", map[string]any{"title": "Pilot", "due": "2030-03-01"}, &tk))
	staff := c.dial(n, staffW)
	refused := staff.command("k0", roomID, "task.confirm", map[string]any{"id": tk.ID, "due": "2030-03-01"})
	require.Equal(t, "error", refused.Type, "staff proposed the date: staff do not confirm it")
	assert.Contains(t, string(refused.raw), "forbidden")
	cl := c.dial(n, custW)
	own := cl.command("k1", roomID, "task.confirm", map[string]any{"id": tk.ID, "due": "2030-03-01"})
	require.Equal(t, "ack", own.Type, "%s", own.raw)
	var got struct {
		Commitment struct {
			State       string `json:"state"`
			ConfirmedBy string `json:"confirmed_by"`
		} `json:"commitment"`
	}
	require.NoError(t, json.Unmarshal(own.Data, &got))
	assert.Equal(t, "confirmed", got.Commitment.State)
	assert.Equal(t, custW.ID, got.Commitment.ConfirmedBy)

	again := staff.command("k2", roomID, "task.confirm", map[string]any{"id": tk.ID, "due": "2030-03-01"})
	assert.Equal(t, "ack", again.Type, "a confirmed date stays confirmed: nothing to do, %s", again.raw)
}
