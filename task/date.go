package task

import (
	"bytes"
	"encoding/json"
	"time"

	"dealroom"
)

// Date is a calendar day without a time of day, written "2006-01-02" in
// JSON. A due date means "by the end of that day".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

const dateLayout = "2006-01-02"

// ParseDate reads a "YYYY-MM-DD" day.
func ParseDate(field, s string) (Date, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		return Date{}, dealroom.Invalid(field, "%s must be a date written YYYY-MM-DD between 2000 and 2200, not %q", field, dealroom.Clip(s))
	}
	return DateOf(t), nil
}

// DateOf returns the day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// String returns the day as YYYY-MM-DD.
func (d Date) String() string {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format(dateLayout)
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// Compare returns -1, 0 or +1 as d is before, the same day as, or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.Year != e.Year:
		return cmp(d.Year, e.Year)
	case d.Month != e.Month:
		return cmp(int(d.Month), int(e.Month))
	}
	return cmp(d.Day, e.Day)
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Equal reports whether two optional days are the same.
func (d *Date) Equal(e *Date) bool {
	if d == nil || e == nil {
		return d == e
	}
	return *d == *e
}

// MarshalJSON writes "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) == len(`"2006-01-02"`) && b[0] == '"' && b[len(b)-1] == '"' && !bytes.ContainsAny(b[1:len(b)-1], `"\\`) {
		// The common case, read without a second pass of the decoder (the
		// pipeline reads thousands of dates).
		s = string(b[1 : len(b)-1])
	} else if err := json.Unmarshal(b, &s); err != nil {
		return dealroom.Invalid("due", "due must be a date written YYYY-MM-DD")
	}
	v, err := ParseDate("due", s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
