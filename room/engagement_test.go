package room_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/testclock"
	"dealroom/room"
)

// TestSignalRules: the signal's rules, day by day, on the boundaries of
// its two weeks (now is Friday 20 March, 15:00 UTC: the last 7 days are
// the 14th to the 20th, the 7 before the 7th to the 13th).
func TestSignalRules(t *testing.T) {
	now := time.Date(2026, 3, 20, 15, 0, 0, 0, time.UTC)
	day := func(d string, visits, files int) room.DayActivity {
		return room.DayActivity{Day: d, Visits: visits, Files: files}
	}
	tests := []struct {
		name string
		days []room.DayActivity
		want room.Signal
	}{
		{"nothing at all", nil, room.Silent},
		{"only older than 14 days", []room.DayActivity{day("2026-03-06", 50, 5)}, room.Silent},
		{"only after today (a clock behind)", []room.DayActivity{day("2026-03-21", 5, 0)}, room.Silent},
		{"first activity this week", []room.DayActivity{day("2026-03-20", 1, 0)}, room.Rising},
		{"the first day of the span counts, as the week before", []room.DayActivity{day("2026-03-07", 1, 0)}, room.Cooling},
		{"the first day of the last 7 counts as this week", []room.DayActivity{day("2026-03-13", 4, 0), day("2026-03-14", 4, 0)}, room.Steady},
		{"a quarter more is steady", []room.DayActivity{day("2026-03-10", 4, 0), day("2026-03-15", 5, 0)}, room.Steady},
		{"more than a quarter more is rising", []room.DayActivity{day("2026-03-10", 4, 0), day("2026-03-15", 5, 1)}, room.Rising},
		{"three quarters is steady", []room.DayActivity{day("2026-03-10", 4, 0), day("2026-03-15", 3, 0)}, room.Steady},
		{"less than three quarters is cooling", []room.DayActivity{day("2026-03-10", 4, 0), day("2026-03-15", 2, 0)}, room.Cooling},
		{"files count as activity", []room.DayActivity{day("2026-03-10", 1, 0), day("2026-03-19", 0, 3)}, room.Rising},
		{"nothing this week after some", []room.DayActivity{day("2026-03-12", 0, 1)}, room.Cooling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, room.SignalOf(tt.days, now))
		})
	}
}

// failingStore refuses the writes it is told to, and keeps the others.
type failingStore struct {
	fail bool
	got  []room.EngagementDelta
}

func (s *failingStore) AddEngagement(_ context.Context, d room.EngagementDelta) error {
	if s.fail {
		return dealroom.Unavailable(errors.New("down"))
	}
	s.got = append(s.got, d)
	return nil
}

func (s *failingStore) RoomEngagement(context.Context, string) (room.RoomEngagement, error) {
	return room.RoomEngagement{}, nil
}

func (s *failingStore) CustomerDays(context.Context, []string, string, string) (map[string][]room.DayActivity, error) {
	return nil, nil
}

// TestTallyKeepsWhatFailed: a batch the store refused is written with the
// next one, added to what came meanwhile, and what waits is coalesced.
func TestTallyKeepsWhatFailed(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := testclock.New(t0)
	st := &failingStore{fail: true}
	tl := &room.Tally{Store: st, Now: clock.Now}
	tl.Viewing("r", "carol", dealroom.Customer, room.Phone, "c1")
	clock.Advance(time.Minute)
	tl.Away("r", "carol", room.Phone, "c1")
	tl.File("r", "a", "carol", dealroom.Customer, true)
	require.Error(t, tl.Flush(context.Background()))

	st.fail = false
	tl.File("r", "a", "carol", dealroom.Customer, false)
	require.NoError(t, tl.Flush(context.Background()))
	require.Len(t, st.got, 1)
	d := st.got[0]
	assert.Equal(t, []room.PersonDelta{{Room: "r", UserID: "carol", Side: dealroom.Customer,
		Devices: map[room.DeviceKind]int{room.Phone: 1}, Time: time.Minute, FirstVisit: t0, LastVisit: t0}}, d.People)
	assert.Equal(t, []room.FileDelta{{Room: "r", AttachmentID: "a", UserID: "carol", Side: dealroom.Customer,
		Views: 1, Downloads: 1, First: t0.Add(time.Minute), Last: t0.Add(time.Minute)}}, d.Files)
	assert.Equal(t, []room.DayDelta{{Room: "r", Day: "2026-03-02", Visits: 1, Files: 2}}, d.Days)

	require.NoError(t, tl.Flush(context.Background()))
	assert.Len(t, st.got, 1, "nothing waits: nothing is written")
}
