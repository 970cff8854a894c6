package room_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"dealroom/room"
)

func TestCloseByAcrossTheYear(t *testing.T) {
	nov := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	assert.Equal(t, "2026-11", room.CloseBy(room.ThisMonth, nov))
	assert.Equal(t, "2026-12", room.CloseBy(room.NextMonth, nov))
	assert.Equal(t, "2027-01", room.CloseBy(room.Quarter, nov), "this month and the next two")
	assert.Equal(t, "2027-04", room.CloseBy(room.HalfYear, nov))
	assert.Equal(t, "", room.CloseBy(room.Unknown, nov))
}

// Slips are counted by the month a window points to when it is set: "this
// month" set again a month later slid.
func TestForecastMoves(t *testing.T) {
	mar := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f := (*room.Forecast)(nil).Moved(room.ThisMonth, "alice", mar)
	assert.Equal(t, room.Forecast{CloseBy: "2026-03", SetBy: "alice", SetAt: mar}, *f)
	f = f.Moved(room.ThisMonth, "bob", mar.AddDate(0, 1, 0))
	assert.Equal(t, 1, f.Slips, "this month, a month later, is a later month")
	f = f.Moved(room.Unknown, "bob", mar.AddDate(0, 1, 0))
	assert.Equal(t, 2, f.Slips, "from a month to unknown slides")
	f = f.Moved(room.NextMonth, "bob", mar.AddDate(0, 1, 0))
	assert.Equal(t, 2, f.Slips, "from unknown to a month does not")
	assert.Equal(t, 3, f.Moves)
}
