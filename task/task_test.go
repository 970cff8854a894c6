package task_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/task"
)

var (
	t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

// mustNew makes a task from d or fails the test.
func mustNew(tb testing.TB, d task.Draft) task.Task {
	tb.Helper()
	tk, err := task.New(d, "t_1", "r_1", "alice", t0, 7)
	require.NoError(tb, err)
	return tk
}

// requireInvalid checks that err is an EINVALID error about field.
func requireInvalid(tb testing.TB, err error, field string) {
	tb.Helper()
	require.Error(tb, err)
	assert.Equal(tb, dealroom.EINVALID, dealroom.ErrorCode(err), "error %v", err)
	var e *dealroom.Error
	require.ErrorAs(tb, err, &e)
	assert.Equal(tb, field, e.Field, "the error names the offending field")
	assert.NotEmpty(tb, e.Message)
}

func ptr[T any](v T) *T { return &v }

func ids(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestNewDefaults(t *testing.T) {
	tk, err := task.New(task.Draft{Title: "  Send the MSA  "}, "t_1", "r_1", "alice", t0, 7)
	require.NoError(t, err)
	assert.Equal(t, "t_1", tk.ID)
	assert.Equal(t, "r_1", tk.RoomID)
	assert.Equal(t, "Send the MSA", tk.Title, "the title is trimmed")
	assert.Equal(t, "", tk.Description)
	assert.Equal(t, task.Open, tk.Status, "a new task is open unless told otherwise")
	assert.Equal(t, dealroom.Shared, tk.Visibility, "a new task is shared unless told otherwise")
	assert.Equal(t, 7.0, tk.Position, "without a position the task goes where the caller says")
	assert.NotNil(t, tk.Assignees, "assignees are an empty list, never null")
	assert.Empty(t, tk.Assignees)
	assert.Nil(t, tk.Due)
	assert.Equal(t, "alice", tk.CreatedBy)
	assert.Equal(t, t0, tk.CreatedAt)
	assert.Equal(t, t0, tk.UpdatedAt)
	assert.Nil(t, tk.CompletedAt, "an open task is not completed")
	assert.False(t, tk.Overdue(t0))

	raw, err := json.Marshal(tk)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"assignees":[]`)
	assert.Contains(t, string(raw), `"due":null`)
	assert.NotContains(t, string(raw), "completed_at")
}

func TestNewKeepsEveryField(t *testing.T) {
	due := task.Date{Year: 2026, Month: time.April, Day: 30}
	tk := mustNew(t, task.Draft{
		Title:       "Security review",
		Description: "Line one\n\tLine two",
		Status:      task.InProgress,
		Assignees:   []string{"carol", "bob"},
		Due:         &due,
		Visibility:  dealroom.Internal,
		Position:    ptr(2.5),
	})
	assert.Equal(t, "Line one\n\tLine two", tk.Description, "descriptions may span lines")
	assert.Equal(t, task.InProgress, tk.Status)
	assert.Equal(t, []string{"carol", "bob"}, tk.Assignees, "assignees keep the order given")
	require.NotNil(t, tk.Due)
	assert.Equal(t, due, *tk.Due)
	assert.Equal(t, dealroom.Internal, tk.Visibility)
	assert.Equal(t, 2.5, tk.Position, "a position given wins over the caller's default")
}

func TestNewDoneIsCompletedAtCreation(t *testing.T) {
	tk := mustNew(t, task.Draft{Title: "Already signed", Status: task.Done})
	require.NotNil(t, tk.CompletedAt)
	assert.Equal(t, t0, *tk.CompletedAt)
}

func TestNewAssignees(t *testing.T) {
	tk := mustNew(t, task.Draft{Title: "x", Assignees: []string{"bob", "carol", "bob", "carol", "dave"}})
	assert.Equal(t, []string{"bob", "carol", "dave"}, tk.Assignees, "duplicates are dropped, first order kept")

	twenty := ids(task.MaxAssignees, "u")
	tk = mustNew(t, task.Draft{Title: "x", Assignees: twenty})
	assert.Len(t, tk.Assignees, task.MaxAssignees)

	// The limit counts people, not list entries.
	withDupes := append(append([]string{}, twenty...), twenty[:5]...)
	tk = mustNew(t, task.Draft{Title: "x", Assignees: withDupes})
	assert.Equal(t, twenty, tk.Assignees)

	tk = mustNew(t, task.Draft{Title: "x", Assignees: []string{strings.Repeat("u", 128)}})
	assert.Len(t, tk.Assignees, 1, "a 128-character id is fine")

	draft := task.Draft{Title: "x", Assignees: []string{"bob", "carol"}}
	tk = mustNew(t, draft)
	tk.Assignees[0] = "mallory"
	assert.Equal(t, []string{"bob", "carol"}, draft.Assignees, "the task does not share the draft's list")
}

func TestNewLimits(t *testing.T) {
	// Limits count characters, not bytes.
	tk := mustNew(t, task.Draft{Title: strings.Repeat("é", task.MaxTitle)})
	assert.Equal(t, task.MaxTitle, len([]rune(tk.Title)))
	tk = mustNew(t, task.Draft{Title: "x", Description: strings.Repeat("ü", task.MaxDescription)})
	assert.Equal(t, task.MaxDescription, len([]rune(tk.Description)))
	tk = mustNew(t, task.Draft{Title: "x", Position: ptr(-1e15)})
	assert.Equal(t, -1e15, tk.Position)
	tk = mustNew(t, task.Draft{Title: "x", Position: ptr(1e15)})
	assert.Equal(t, 1e15, tk.Position)
}

func TestNewRefusesBadDrafts(t *testing.T) {
	tests := []struct {
		name  string
		draft task.Draft
		field string
	}{
		{"empty title", task.Draft{Title: ""}, "title"},
		{"blank title", task.Draft{Title: " \t\n "}, "title"},
		{"oversized title", task.Draft{Title: strings.Repeat("a", task.MaxTitle+1)}, "title"},
		{"oversized title in characters", task.Draft{Title: strings.Repeat("é", task.MaxTitle+1)}, "title"},
		{"title on two lines", task.Draft{Title: "Send\nMSA"}, "title"},
		{"title with a carriage return", task.Draft{Title: "Send\rMSA"}, "title"},
		{"title with a control character", task.Draft{Title: "Send\x00MSA"}, "title"},
		{"title with an escape sequence", task.Draft{Title: "\x1b[31mred"}, "title"},
		{"title not UTF-8", task.Draft{Title: "Send \xff MSA"}, "title"},
		{"oversized description", task.Draft{Title: "x", Description: strings.Repeat("a", task.MaxDescription+1)}, "description"},
		{"description with a control character", task.Draft{Title: "x", Description: "a\x07b"}, "description"},
		{"unknown status", task.Draft{Title: "x", Status: "closed"}, "status"},
		{"status in capitals", task.Draft{Title: "x", Status: "DONE"}, "status"},
		{"status with spaces", task.Draft{Title: "x", Status: " done"}, "status"},
		{"unknown visibility", task.Draft{Title: "x", Visibility: "public"}, "visibility"},
		{"visibility in capitals", task.Draft{Title: "x", Visibility: "Internal"}, "visibility"},
		{"empty assignee", task.Draft{Title: "x", Assignees: []string{"bob", ""}}, "assignees"},
		{"oversized assignee id", task.Draft{Title: "x", Assignees: []string{strings.Repeat("u", 129)}}, "assignees"},
		{"too many assignees", task.Draft{Title: "x", Assignees: ids(task.MaxAssignees+1, "u")}, "assignees"},
		{"position above range", task.Draft{Title: "x", Position: ptr(1e16)}, "position"},
		{"position below range", task.Draft{Title: "x", Position: ptr(-1e16)}, "position"},
		{"position infinite", task.Draft{Title: "x", Position: ptr(math.Inf(1))}, "position"},
		{"position NaN", task.Draft{Title: "x", Position: ptr(math.NaN())}, "position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := task.New(tt.draft, "t_1", "r_1", "alice", t0, 1)
			requireInvalid(t, err, tt.field)
			assert.Equal(t, task.Task{}, tk, "a refused draft gives no task")
		})
	}
}

func TestDraftJSONRefusesBadDueDates(t *testing.T) {
	for _, due := range []string{
		`"2026-02-30"`, // no such day
		`"2027-02-29"`, // not a leap year
		`"2026-13-01"`,
		`"2026-00-10"`,
		`"2026-04-31"`,
		`"2026-2-3"`,
		`"26-02-03"`,
		`"2026/02/03"`,
		`"03.02.2026"`,
		`"2026-02-03T00:00:00Z"`,
		`" 2026-02-03"`,
		`""`,
		`"1999-12-31"`,
		`"2201-01-01"`,
		`20260203`,
		`true`,
		`{"year":2026}`,
		`["2026-02-03"]`,
	} {
		t.Run(due, func(t *testing.T) {
			var d task.Draft
			err := json.Unmarshal([]byte(`{"title":"x","due":`+due+`}`), &d)
			requireInvalid(t, err, "due")
		})
	}
}

func TestDraftJSONDueDates(t *testing.T) {
	var d task.Draft
	require.NoError(t, json.Unmarshal([]byte(`{"title":"x","due":"2028-02-29"}`), &d))
	require.NotNil(t, d.Due)
	assert.Equal(t, task.Date{Year: 2028, Month: time.February, Day: 29}, *d.Due, "leap days exist")

	d = task.Draft{}
	require.NoError(t, json.Unmarshal([]byte(`{"title":"x","due":null}`), &d))
	assert.Nil(t, d.Due, "null means no due date")

	d = task.Draft{}
	require.NoError(t, json.Unmarshal([]byte(`{"title":"x"}`), &d))
	assert.Nil(t, d.Due)
}

func TestParseStatus(t *testing.T) {
	for _, s := range task.Statuses {
		got, err := task.ParseStatus(s)
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	got, err := task.ParseStatus("")
	require.NoError(t, err)
	assert.Equal(t, task.Open, got)
	_, err = task.ParseStatus("cancelled")
	requireInvalid(t, err, "status")
	assert.Equal(t, []task.Status{task.Open, task.InProgress, task.Done, task.Blocked}, task.Statuses)
}

func TestOverdue(t *testing.T) {
	now := time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC)
	day := func(d int) *task.Date { return &task.Date{Year: 2026, Month: time.March, Day: d} }
	tests := []struct {
		name   string
		due    *task.Date
		status task.Status
		want   bool
	}{
		{"no due date", nil, task.Open, false},
		{"due yesterday", day(9), task.Open, true},
		{"due yesterday, blocked", day(9), task.Blocked, true},
		{"due yesterday, in progress", day(9), task.InProgress, true},
		{"due yesterday, done", day(9), task.Done, false},
		{"due today: by the end of the day", day(10), task.Open, false},
		{"due tomorrow", day(11), task.Open, false},
		{"due last year", &task.Date{Year: 2025, Month: time.December, Day: 31}, task.Open, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := task.Task{Due: tt.due, Status: tt.status}
			assert.Equal(t, tt.want, tk.Overdue(now))
		})
	}
}

// base is a task with every field set, for the Apply tests.
func base(tb testing.TB) task.Task {
	tb.Helper()
	due := task.Date{Year: 2026, Month: time.April, Day: 1}
	return mustNew(tb, task.Draft{
		Title: "Security review", Description: "Ask about SSO", Status: task.Open,
		Assignees: []string{"bob", "carol"}, Due: &due, Visibility: dealroom.Shared, Position: ptr(3.0),
	})
}

func TestApplyEmptyPatchIsABadRequest(t *testing.T) {
	tk := base(t)
	got, changed, err := tk.Apply(task.Patch{}, t1)
	require.Error(t, err)
	assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err))
	assert.Nil(t, changed)
	assert.Equal(t, tk, got)

	var p task.Patch
	require.NoError(t, json.Unmarshal([]byte(`{}`), &p))
	assert.True(t, p.Empty(), "a body of {} names no field")
	_, _, err = tk.Apply(p, t1)
	assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err))
}

func TestApplyEachField(t *testing.T) {
	newDue := task.Date{Year: 2026, Month: time.May, Day: 15}
	tests := []struct {
		name    string
		patch   task.Patch
		changed []string
		check   func(t *testing.T, got task.Task)
	}{
		{"title", task.Patch{Title: dealroom.Some("  Legal review ")}, []string{"title"},
			func(t *testing.T, got task.Task) { assert.Equal(t, "Legal review", got.Title) }},
		{"description", task.Patch{Description: dealroom.Some("New text\nwith lines")}, []string{"description"},
			func(t *testing.T, got task.Task) { assert.Equal(t, "New text\nwith lines", got.Description) }},
		{"description cleared by null", task.Patch{Description: dealroom.Opt[string]{Set: true, Null: true}}, []string{"description"},
			func(t *testing.T, got task.Task) { assert.Equal(t, "", got.Description) }},
		{"status", task.Patch{Status: dealroom.Some(task.Blocked)}, []string{"status"},
			func(t *testing.T, got task.Task) { assert.Equal(t, task.Blocked, got.Status) }},
		{"assignees", task.Patch{Assignees: dealroom.Some([]string{"dave", "dave", "bob"})}, []string{"assignees"},
			func(t *testing.T, got task.Task) { assert.Equal(t, []string{"dave", "bob"}, got.Assignees) }},
		{"assignees cleared by null", task.Patch{Assignees: dealroom.Opt[[]string]{Set: true, Null: true}}, []string{"assignees"},
			func(t *testing.T, got task.Task) { assert.Empty(t, got.Assignees) }},
		{"assignees cleared by []", task.Patch{Assignees: dealroom.Some([]string{})}, []string{"assignees"},
			func(t *testing.T, got task.Task) { assert.Empty(t, got.Assignees) }},
		{"due", task.Patch{Due: dealroom.Some(newDue)}, []string{"due"},
			func(t *testing.T, got task.Task) { require.NotNil(t, got.Due); assert.Equal(t, newDue, *got.Due) }},
		{"due cleared by null", task.Patch{Due: dealroom.Opt[task.Date]{Set: true, Null: true}}, []string{"due"},
			func(t *testing.T, got task.Task) { assert.Nil(t, got.Due) }},
		{"position", task.Patch{Position: dealroom.Some(0.5)}, []string{"position"},
			func(t *testing.T, got task.Task) { assert.Equal(t, 0.5, got.Position) }},
		{"several fields", task.Patch{Title: dealroom.Some("T"), Status: dealroom.Some(task.InProgress), Position: dealroom.Some(9.0)},
			[]string{"title", "status", "position"},
			func(t *testing.T, got task.Task) {
				assert.Equal(t, "T", got.Title)
				assert.Equal(t, task.InProgress, got.Status)
				assert.Equal(t, 9.0, got.Position)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := base(t)
			before := base(t)
			got, changed, err := tk.Apply(tt.patch, t1)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.changed, changed, "exactly the fields that changed are reported")
			tt.check(t, got)
			assert.Equal(t, t1, got.UpdatedAt, "a change moves updated_at")
			assert.Equal(t, t0, got.CreatedAt)
			assert.Equal(t, tk.ID, got.ID)
			assert.Equal(t, tk.CreatedBy, got.CreatedBy)
			assert.Equal(t, before, tk, "the task applied to is left as it was")
		})
	}
}

func TestApplyInternalToShared(t *testing.T) {
	tk := mustNew(t, task.Draft{Title: "Pricing floor", Visibility: dealroom.Internal})
	got, changed, err := tk.Apply(task.Patch{Visibility: dealroom.Some(dealroom.Shared)}, t1)
	require.NoError(t, err)
	assert.Equal(t, []string{"visibility"}, changed)
	assert.Equal(t, dealroom.Shared, got.Visibility)
}

func TestApplyUnchangedValuesAreNotReported(t *testing.T) {
	tk := base(t)
	same := task.Patch{
		Title:       dealroom.Some("  Security review  "),
		Description: dealroom.Some("Ask about SSO"),
		Status:      dealroom.Some(task.Open),
		Assignees:   dealroom.Some([]string{"bob", "carol", "bob"}),
		Due:         dealroom.Some(*tk.Due),
		Visibility:  dealroom.Some(dealroom.Shared),
		Position:    dealroom.Some(3.0),
	}
	got, changed, err := tk.Apply(same, t1)
	require.NoError(t, err)
	assert.Empty(t, changed, "values equal to the current ones are no change")
	assert.Equal(t, tk, got, "nothing moves, not even updated_at")

	// One real change among unchanged fields is reported alone.
	same.Status = dealroom.Some(task.Blocked)
	_, changed, err = tk.Apply(same, t1)
	require.NoError(t, err)
	assert.Equal(t, []string{"status"}, changed)

	// Clearing what is already empty is no change either.
	bare := mustNew(t, task.Draft{Title: "x"})
	got, changed, err = bare.Apply(task.Patch{
		Due:         dealroom.Opt[task.Date]{Set: true, Null: true},
		Assignees:   dealroom.Opt[[]string]{Set: true, Null: true},
		Description: dealroom.Some(""),
	}, t1)
	require.NoError(t, err)
	assert.Empty(t, changed)
	assert.Equal(t, bare.UpdatedAt, got.UpdatedAt)
}

func TestApplyRefusesBadPatches(t *testing.T) {
	tests := []struct {
		name  string
		patch task.Patch
		field string
	}{
		{"shared task made internal", task.Patch{Visibility: dealroom.Some(dealroom.Internal)}, "visibility"},
		{"null title", task.Patch{Title: dealroom.Opt[string]{Set: true, Null: true}}, "title"},
		{"empty title", task.Patch{Title: dealroom.Some("   ")}, "title"},
		{"oversized title", task.Patch{Title: dealroom.Some(strings.Repeat("a", task.MaxTitle+1))}, "title"},
		{"two-line title", task.Patch{Title: dealroom.Some("a\nb")}, "title"},
		{"oversized description", task.Patch{Description: dealroom.Some(strings.Repeat("a", task.MaxDescription+1))}, "description"},
		{"null status", task.Patch{Status: dealroom.Opt[task.Status]{Set: true, Null: true}}, "status"},
		{"empty status", task.Patch{Status: dealroom.Some(task.Status(""))}, "status"},
		{"unknown status", task.Patch{Status: dealroom.Some(task.Status("closed"))}, "status"},
		{"empty assignee", task.Patch{Assignees: dealroom.Some([]string{""})}, "assignees"},
		{"too many assignees", task.Patch{Assignees: dealroom.Some(ids(task.MaxAssignees+1, "u"))}, "assignees"},
		{"null visibility", task.Patch{Visibility: dealroom.Opt[dealroom.Visibility]{Set: true, Null: true}}, "visibility"},
		{"empty visibility", task.Patch{Visibility: dealroom.Some(dealroom.Visibility(""))}, "visibility"},
		{"unknown visibility", task.Patch{Visibility: dealroom.Some(dealroom.Visibility("everyone"))}, "visibility"},
		{"null position", task.Patch{Position: dealroom.Opt[float64]{Set: true, Null: true}}, "position"},
		{"position out of range", task.Patch{Position: dealroom.Some(2e15)}, "position"},
		{"position NaN", task.Patch{Position: dealroom.Some(math.NaN())}, "position"},
		// A valid change next to an invalid one: nothing is applied.
		{"valid title, invalid status", task.Patch{Title: dealroom.Some("New"), Status: dealroom.Some(task.Status("nope"))}, "status"},
		{"valid status, shared made internal", task.Patch{Status: dealroom.Some(task.Done), Visibility: dealroom.Some(dealroom.Internal)}, "visibility"},
		{"valid assignees, invalid position", task.Patch{Assignees: dealroom.Some([]string{"zed"}), Position: dealroom.Some(math.Inf(-1))}, "position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := base(t)
			got, changed, err := tk.Apply(tt.patch, t1)
			requireInvalid(t, err, tt.field)
			assert.Nil(t, changed)
			assert.Equal(t, base(t), got, "a refused patch changes nothing")
			assert.Equal(t, base(t), tk)
		})
	}
}

func TestApplyCompletedAt(t *testing.T) {
	t2 := t1.Add(time.Hour)
	tk := base(t)
	require.Nil(t, tk.CompletedAt)

	done, changed, err := tk.Apply(task.Patch{Status: dealroom.Some(task.Done)}, t1)
	require.NoError(t, err)
	assert.Equal(t, []string{"status"}, changed)
	require.NotNil(t, done.CompletedAt, "finishing a task records when")
	assert.Equal(t, t1, *done.CompletedAt)
	assert.False(t, done.Overdue(t2.AddDate(1, 0, 0)), "a done task is never overdue")

	again, changed, err := done.Apply(task.Patch{Status: dealroom.Some(task.Done)}, t2)
	require.NoError(t, err)
	assert.Empty(t, changed)
	require.NotNil(t, again.CompletedAt)
	assert.Equal(t, t1, *again.CompletedAt, "saying done again keeps the first completion time")

	other, _, err := done.Apply(task.Patch{Title: dealroom.Some("Renamed")}, t2)
	require.NoError(t, err)
	require.NotNil(t, other.CompletedAt)
	assert.Equal(t, t1, *other.CompletedAt, "other changes keep the completion time")

	for _, s := range []task.Status{task.Open, task.InProgress, task.Blocked} {
		reopened, changed, err := done.Apply(task.Patch{Status: dealroom.Some(s)}, t2)
		require.NoError(t, err)
		assert.Equal(t, []string{"status"}, changed)
		assert.Nil(t, reopened.CompletedAt, "reopening as %s clears completed_at", s)
		raw, err := json.Marshal(reopened)
		require.NoError(t, err)
		assert.NotContains(t, string(raw), "completed_at")
	}

	moving, _, err := tk.Apply(task.Patch{Status: dealroom.Some(task.InProgress)}, t1)
	require.NoError(t, err)
	assert.Nil(t, moving.CompletedAt, "in progress is not complete")

}

func TestApplyDoesNotShareAssigneesWithTheOriginal(t *testing.T) {
	tk := base(t)
	got, _, err := tk.Apply(task.Patch{Title: dealroom.Some("Renamed")}, t1)
	require.NoError(t, err)
	got.Assignees[0] = "mallory"
	assert.Equal(t, []string{"bob", "carol"}, tk.Assignees)
}

func TestApplyReordersAssignees(t *testing.T) {
	// Who comes first is shown in the plan: a new order is a change.
	tk := base(t)
	got, changed, err := tk.Apply(task.Patch{Assignees: dealroom.Some([]string{"carol", "bob"})}, t1)
	require.NoError(t, err)
	assert.Equal(t, []string{"assignees"}, changed)
	assert.Equal(t, []string{"carol", "bob"}, got.Assignees)
}

func TestPatchJSON(t *testing.T) {
	var p task.Patch
	require.NoError(t, json.Unmarshal([]byte(`{"due":null,"status":"done","assignees":["a"]}`), &p))
	assert.True(t, p.Due.Set)
	assert.True(t, p.Due.Null)
	assert.True(t, p.Status.Set)
	assert.Equal(t, task.Done, p.Status.V)
	assert.Equal(t, []string{"a"}, p.Assignees.V)
	assert.False(t, p.Title.Set, "absent fields are not set")
	assert.False(t, p.Empty())

	p = task.Patch{}
	require.NoError(t, json.Unmarshal([]byte(`{"due":"2026-06-01"}`), &p))
	assert.Equal(t, task.Date{Year: 2026, Month: time.June, Day: 1}, p.Due.V)

	p = task.Patch{}
	err := json.Unmarshal([]byte(`{"due":"2026-06-31"}`), &p)
	requireInvalid(t, err, "due")
}
