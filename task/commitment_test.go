package task_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/task"
)

func d(s string) *task.Date {
	v, err := task.ParseDate("due", s)
	if err != nil {
		panic(err)
	}
	return &v
}

// A date's life: proposed, countered, confirmed, slipped twice, moved back
// earlier, confirmed again, and the promise kept in mind throughout.
func TestCommitmentStates(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	staff, customer := dealroom.Staff, dealroom.Customer
	steps := []struct {
		what        string
		apply       func(c *task.Commitment, due *task.Date) (*task.Commitment, *task.Date)
		state       task.CommitState
		slips, days int
	}{
		{"staff propose", func(c *task.Commitment, _ *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, nil, d("2026-03-10"), "rep", staff, now), d("2026-03-10")
		}, task.Proposed, 0, 0},
		{"the customer counters", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-03-20"), "buyer", customer, now), d("2026-03-20")
		}, task.Proposed, 0, 0},
		{"staff confirm", func(c *task.Commitment, due *task.Date) (*task.Commitment, *task.Date) {
			n, moved, err := task.Confirm(c, due, "rep", staff, now)
			require.NoError(t, err)
			require.True(t, moved)
			return n, due
		}, task.Confirmed, 0, 0},
		{"slips across a month end", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-04-02"), "buyer", customer, now), d("2026-04-02")
		}, task.Slipped, 1, 13},
		{"slips again", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-04-05"), "buyer", customer, now), d("2026-04-05")
		}, task.Slipped, 2, 16},
		{"comes back, still later than confirmed: no new slip", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-03-25"), "buyer", customer, now), d("2026-03-25")
		}, task.Slipped, 2, 5},
		{"back to the confirmed date", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-03-20"), "rep", staff, now), d("2026-03-20")
		}, task.Confirmed, 2, 0},
		{"earlier", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-03-15"), "rep", staff, now), d("2026-03-15")
		}, task.Changed, 2, 0},
		{"the customer confirms the earlier date", func(c *task.Commitment, due *task.Date) (*task.Commitment, *task.Date) {
			n, _, err := task.Confirm(c, due, "buyer", customer, now)
			require.NoError(t, err)
			return n, due
		}, task.Confirmed, 2, 0},
		{"a slip is measured from the first promise", func(c *task.Commitment, old *task.Date) (*task.Commitment, *task.Date) {
			return task.Propose(c, old, d("2026-03-22"), "rep", staff, now), d("2026-03-22")
		}, task.Slipped, 3, 2},
	}
	var c *task.Commitment
	var due *task.Date
	for _, s := range steps {
		c, due = s.apply(c, due)
		require.NotNil(t, c, s.what)
		assert.Equal(t, s.state, c.State, s.what)
		assert.Equal(t, s.slips, c.Slips, s.what)
		assert.Equal(t, s.days, c.SlippedDays, s.what)
	}
	assert.Equal(t, d("2026-03-20"), c.Promised)
	assert.Equal(t, d("2026-03-15"), c.ConfirmedDue)
	assert.Nil(t, task.Propose(c, due, nil, "rep", staff, now), "no date, no commitment")
}

func TestConfirmRefusals(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	c := task.Propose(nil, nil, d("2026-03-10"), "rep", dealroom.Staff, now)
	_, _, err := task.Confirm(c, d("2026-03-10"), "rep2", dealroom.Staff, now)
	assert.Equal(t, dealroom.EFORBIDDEN, dealroom.ErrorCode(err), "the proposing side does not confirm")
	_, _, err = task.Confirm(nil, nil, "buyer", dealroom.Customer, now)
	assert.Equal(t, dealroom.EINVALID, dealroom.ErrorCode(err))
	n, moved, err := task.Confirm(c, d("2026-03-10"), "buyer", dealroom.Customer, now)
	require.NoError(t, err)
	require.True(t, moved)
	assert.Nil(t, c.ConfirmedAt, "the commitment confirmed is a copy")
	again, moved, err := task.Confirm(n, d("2026-03-10"), "rep", dealroom.Staff, now)
	require.NoError(t, err)
	assert.False(t, moved, "a confirmed date stays as it is")
	assert.Equal(t, n, again)
}

func TestDaysBetween(t *testing.T) {
	assert.Equal(t, 1, task.DaysBetween(*d("2026-02-28"), *d("2026-03-01")))
	assert.Equal(t, 366, task.DaysBetween(*d("2028-01-01"), *d("2029-01-01")), "a leap year")
	assert.Equal(t, -3, task.DaysBetween(*d("2026-03-04"), *d("2026-03-01")))
}
