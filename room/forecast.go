package room

import (
	"time"
)

// Forecast is the close window's history in brief: the month the deal
// should be signed by, as the window said when it was last set, who set
// it and when, and how often it moved and slid. Each move is a
// room.updated event (internal) with close_window and forecast before and
// after in its changes, so the timeline holds the whole history.
type Forecast struct {
	// CloseBy is the last month of the window when it was set
	// ("2026-12"); empty for the window unknown.
	CloseBy string    `json:"close_by"`
	SetBy   string    `json:"set_by"`
	SetAt   time.Time `json:"set_at"`
	// Moves counts the changes of the window after it was first set;
	// Slips those of them that pushed the close later: to a later month,
	// or from a month to unknown.
	Moves int `json:"moves"`
	Slips int `json:"slips"`
}

// CloseBy returns the last month ("2006-01") of window w read at now:
// this month, next month, within three months (this one and the next
// two), within six; "" for unknown.
func CloseBy(w CloseWindow, now time.Time) string {
	months := map[CloseWindow]int{ThisMonth: 0, NextMonth: 1, Quarter: 2, HalfYear: 5}
	n, ok := months[w]
	if !ok {
		return ""
	}
	y, m, _ := now.UTC().Date()
	return time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
}

// Moved returns the forecast after the window was set to w by user at
// now, f being the one before (nil: never set).
func (f *Forecast) Moved(w CloseWindow, user string, now time.Time) *Forecast {
	n := &Forecast{CloseBy: CloseBy(w, now), SetBy: user, SetAt: now}
	if f == nil {
		return n
	}
	n.Moves, n.Slips = f.Moves+1, f.Slips
	if f.CloseBy != "" && (n.CloseBy == "" || n.CloseBy > f.CloseBy) {
		n.Slips++
	}
	return n
}
