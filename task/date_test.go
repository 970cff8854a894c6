package task_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/task"
)

func TestParseDate(t *testing.T) {
	d, err := task.ParseDate("due", "2026-03-05")
	require.NoError(t, err)
	assert.Equal(t, task.Date{Year: 2026, Month: time.March, Day: 5}, d)

	for _, s := range []string{"2000-01-01", "2200-12-31", "2024-02-29"} {
		d, err := task.ParseDate("due", s)
		require.NoError(t, err, s)
		assert.Equal(t, s, d.String())
	}
	for _, s := range []string{
		"", "2026-02-30", "2026-02-29", "2026-06-31", "2026-13-01", "2026-1-05", "2026-01-5",
		"1999-12-31", "2201-01-01", "0000-01-01", "9999-12-31", "2026-03-05Z", "2026-03-05 ",
		"tomorrow", "05/03/2026", "2026-03-05T10:00:00Z", "+2026-03-05",
	} {
		_, err := task.ParseDate("due_before", s)
		requireInvalid(t, err, "due_before")
	}
}

func TestParseDateErrorQuotesTheInputShortened(t *testing.T) {
	long := "2026-03-05xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	_, err := task.ParseDate("due", long)
	require.Error(t, err)
	assert.NotContains(t, dealroom.ErrorMessage(err), long, "an error message does not echo long input")
	assert.Contains(t, dealroom.ErrorMessage(err), "YYYY-MM-DD", "the message says what is expected")
}

func TestDateString(t *testing.T) {
	assert.Equal(t, "2026-01-02", task.Date{Year: 2026, Month: time.January, Day: 2}.String(), "zero padded")
	assert.Equal(t, "2199-11-30", task.Date{Year: 2199, Month: time.November, Day: 30}.String())
}

func TestDateOf(t *testing.T) {
	// The day is the day where the time was read, not in UTC.
	auckland := time.FixedZone("NZDT", 13*3600)
	ts := time.Date(2026, 3, 5, 23, 30, 0, 0, time.UTC)
	assert.Equal(t, task.Date{Year: 2026, Month: time.March, Day: 5}, task.DateOf(ts))
	assert.Equal(t, task.Date{Year: 2026, Month: time.March, Day: 6}, task.DateOf(ts.In(auckland)))
}

func TestDateBefore(t *testing.T) {
	d := func(y int, m time.Month, day int) task.Date { return task.Date{Year: y, Month: m, Day: day} }
	assert.True(t, d(2026, 3, 4).Before(d(2026, 3, 5)))
	assert.True(t, d(2026, 2, 28).Before(d(2026, 3, 1)))
	assert.True(t, d(2026, 9, 30).Before(d(2026, 10, 1)), "September before October, not by digits")
	assert.True(t, d(2025, 12, 31).Before(d(2026, 1, 1)))
	assert.False(t, d(2026, 3, 5).Before(d(2026, 3, 5)), "a day is not before itself")
	assert.False(t, d(2026, 3, 6).Before(d(2026, 3, 5)))
}

func TestDateEqual(t *testing.T) {
	a := &task.Date{Year: 2026, Month: time.March, Day: 5}
	b := &task.Date{Year: 2026, Month: time.March, Day: 5}
	c := &task.Date{Year: 2026, Month: time.March, Day: 6}
	var none *task.Date
	assert.True(t, a.Equal(b), "equal days at different addresses")
	assert.False(t, a.Equal(c))
	assert.False(t, a.Equal(nil))
	assert.False(t, none.Equal(a))
	assert.True(t, none.Equal(nil), "two missing dates are the same")
}

func TestDateJSONRoundTrip(t *testing.T) {
	d := task.Date{Year: 2026, Month: time.March, Day: 5}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	assert.Equal(t, `"2026-03-05"`, string(raw))

	var back task.Date
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, d, back)

	// In a task: set, then null.
	tk := task.Task{ID: "t_1", Title: "x", Due: &d}
	raw, err = json.Marshal(tk)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"due":"2026-03-05"`)
	var got task.Task
	require.NoError(t, json.Unmarshal(raw, &got))
	require.NotNil(t, got.Due)
	assert.Equal(t, d, *got.Due)

	tk.Due = nil
	raw, err = json.Marshal(tk)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"due":null`, "a task without a due date says null")
	got = task.Task{Due: &d}
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Nil(t, got.Due, "null reads back as no due date")
}

func TestDateJSONRefusesWhatIsNotADay(t *testing.T) {
	for _, raw := range []string{`"2026-02-30"`, `"2026-3-5"`, `20260305`, `null`, `""`, `{}`} {
		var d task.Date
		err := json.Unmarshal([]byte(raw), &d)
		requireInvalid(t, err, "due")
		assert.Equal(t, task.Date{}, d, "%s leaves the date untouched", raw)
	}
}

func TestOptDateNull(t *testing.T) {
	var o dealroom.Opt[task.Date]
	require.NoError(t, json.Unmarshal([]byte(`null`), &o))
	assert.True(t, o.Set)
	assert.True(t, o.Null)
	raw, err := json.Marshal(o)
	require.NoError(t, err)
	assert.Equal(t, "null", string(raw))

	o = dealroom.Some(task.Date{Year: 2026, Month: time.July, Day: 4})
	raw, err = json.Marshal(o)
	require.NoError(t, err)
	assert.Equal(t, `"2026-07-04"`, string(raw))
}
