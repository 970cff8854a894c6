package room

import (
	"context"
	"time"

	"dealroom"
)

// Engagement: who came to a room, on what kind of device, how often and for
// how long, and which files they opened, counted from what the server
// sees (the websocket's presence, room page loads, the download route),
// never from a tracking pixel. Like the read markers it is not an event:
// it changes with every visit, and events would wake every device and
// every notifier for bookkeeping. It is a read model of its own
// (EngagementStore), written in batches by a Tally.

// DeviceKind is the kind of device a visit came from, told by its
// User-Agent.
type DeviceKind string

// The device kinds. Other is anything not recognised as one of the
// three (a script, a television, no User-Agent at all).
const (
	Desktop DeviceKind = "desktop"
	Phone   DeviceKind = "phone"
	Tablet  DeviceKind = "tablet"
	Other   DeviceKind = "other"
)

// VisitGap is how long a device must not have viewed a room for its next
// view to count as a new visit.
const VisitGap = 30 * time.Minute

// IdleCap is the most one stretch of viewing counts toward the time in a
// room: a page left open and visible counts this long after the last sign
// of the person (a presence change or a page load), not all night.
const IdleCap = 10 * time.Minute

// PersonEngagement is what is recorded of one person's visits to a room.
type PersonEngagement struct {
	UserID string `json:"user_id"`
	// Side is the side they visited as: staff, or customer (a staff
	// member with a customer-kind membership counts as the customer).
	Side dealroom.Kind `json:"side"`
	// FirstVisit and LastVisit are when their first and latest visits
	// began.
	FirstVisit time.Time `json:"first_visit_at,omitzero"`
	LastVisit  time.Time `json:"last_visit_at,omitzero"`
	Visits     int       `json:"visits"`
	// Devices counts the visits by device kind.
	Devices map[DeviceKind]int `json:"devices"`
	// Time is the time spent viewing the room (the JSON has seconds).
	Time time.Duration `json:"-"`
}

// FileEngagement is what is recorded of one person's opening of one file.
type FileEngagement struct {
	AttachmentID string        `json:"attachment_id"`
	UserID       string        `json:"user_id"`
	Side         dealroom.Kind `json:"side"`
	// Views counts the file opened to look at it in the browser,
	// Downloads the file saved; each GET of its bytes is one or the
	// other.
	Views     int `json:"views"`
	Downloads int `json:"downloads"`
	// First and Last are the first and the latest time they opened it.
	First time.Time `json:"first_at"`
	Last  time.Time `json:"last_at"`
}

// DayActivity is the customer side's activity in a room on one day (UTC):
// the visits that began that day and the files opened.
type DayActivity struct {
	Day    string `json:"day"` // 2006-01-02
	Visits int    `json:"visits"`
	Files  int    `json:"files"`
}

// RoomEngagement is everything recorded of a room.
type RoomEngagement struct {
	People []PersonEngagement
	Files  []FileEngagement
}

// EngagementDelta is what a Tally gathered since its last write: counts to
// add, and times to widen the records' first and last with.
type EngagementDelta struct {
	People []PersonDelta
	Files  []FileDelta
	Days   []DayDelta
}

// Empty says there is nothing to write.
func (d EngagementDelta) Empty() bool {
	return len(d.People) == 0 && len(d.Files) == 0 && len(d.Days) == 0
}

// PersonDelta adds to one person's record in a room. FirstVisit and
// LastVisit are zero when no visit began in the delta.
type PersonDelta struct {
	Room, UserID string
	Side         dealroom.Kind
	// Devices adds visits by device kind; a kind with 0 still shows that
	// the person used it.
	Devices    map[DeviceKind]int
	Time       time.Duration
	FirstVisit time.Time
	LastVisit  time.Time
}

// Visits is the visits the delta adds.
func (d PersonDelta) Visits() int {
	n := 0
	for _, v := range d.Devices {
		n += v
	}
	return n
}

// FileDelta adds to one person's record of one file.
type FileDelta struct {
	Room, AttachmentID, UserID string
	Side                       dealroom.Kind
	Views, Downloads           int
	First, Last                time.Time
}

// DayDelta adds to a room's customer activity of one day.
type DayDelta struct {
	Room, Day     string
	Visits, Files int
}

// EngagementStore keeps the engagement records. Both stores implement it
// beside room.Store; the Service finds it on its Store.
type EngagementStore interface {
	// AddEngagement adds d to the records (creating those missing): counts
	// are added, first times keep the earliest, last times the latest.
	// Errors: EUNAVAILABLE when the backend fails.
	AddEngagement(ctx context.Context, d EngagementDelta) error
	// RoomEngagement returns the room's records, people by user id,
	// files by attachment then user id. It may hold records of people who
	// left the room: callers keep those they show.
	RoomEngagement(ctx context.Context, room string) (RoomEngagement, error)
	// CustomerDays returns the customer activity of each of rooms on the
	// days from..to (inclusive, 2006-01-02), by day, in one read. Rooms
	// with none are absent.
	CustomerDays(ctx context.Context, rooms []string, from, to string) (map[string][]DayActivity, error)
}

// Signal is how the customer side's engagement in a room moves.
type Signal string

// The signals, from the customer side's activity (visits begun and files
// opened) in the last 7 days (today, UTC, and the 6 before) against the 7
// before those:
//
//   - silent: none in all 14 days;
//   - rising: more than a quarter more in the last 7 (any at all after
//     a week of none);
//   - cooling: less than three quarters (none after a week of some);
//   - steady: anything in between.
const (
	Rising  Signal = "rising"
	Steady  Signal = "steady"
	Cooling Signal = "cooling"
	Silent  Signal = "silent"
)

// SignalDays is the span of days a signal looks at.
const SignalDays = 14

const dayLayout = "2006-01-02"

// Day is the UTC day of t, as the records name it.
func Day(t time.Time) string { return t.UTC().Format(dayLayout) }

// signalSpan is the first and last day a signal at now looks at.
func signalSpan(now time.Time) (from, to string) {
	return Day(now.AddDate(0, 0, -(SignalDays - 1))), Day(now)
}

// SignalOf tells the signal of a room at now from its customer activity by
// day (days outside the last 14 are left out).
func SignalOf(days []DayActivity, now time.Time) Signal {
	split := Day(now.AddDate(0, 0, -(SignalDays/2 - 1))) // the first day of the last 7
	from, to := signalSpan(now)
	recent, before := 0, 0
	for _, d := range days {
		n := d.Visits + d.Files
		switch {
		case d.Day < from || d.Day > to:
		case d.Day >= split:
			recent += n
		default:
			before += n
		}
	}
	switch {
	case recent == 0 && before == 0:
		return Silent
	case 4*recent > 5*before:
		return Rising
	case 4*recent < 3*before:
		return Cooling
	}
	return Steady
}

// EngagementStatement is what the app tells customers is recorded about
// their visits.
const EngagementStatement = "When you open this room, the seller's team can see that you visited: " +
	"when you first and last came, how many visits, on what kind of device (desktop, phone or tablet, " +
	"from what your browser says about itself), roughly how long you stayed (counted while the room " +
	"is open and in view, at most 10 minutes at a stretch without activity), and which files you opened " +
	"or downloaded and how often. Nothing is recorded outside this room: no tracking pixels in emails, " +
	"no cookies for tracking, nothing from other sites. Both sides see who has seen each message and file."

// engagement returns the store's engagement records, EUNAVAILABLE when
// the store keeps none.
func (s *Service) engagement() (EngagementStore, error) {
	es, ok := s.Store.(EngagementStore)
	if !ok {
		return nil, dealroom.Errorf(dealroom.EUNAVAILABLE, "this store keeps no engagement records")
	}
	return es, nil
}

// RoomEngagementView is a room's engagement as staff see it.
type RoomEngagementView struct {
	Signal Signal `json:"signal"`
	// People are the current members who visited, and the customers who
	// never did (with no visits), so that absence shows.
	People []PersonView `json:"people"`
	// Files are the attachments opened, with who opened them.
	Files []FileView `json:"files"`
	// Days is the customer side's activity of the last 14 days that had
	// some.
	Days []DayActivity `json:"days"`
}

// PersonView is one member's record with their name.
type PersonView struct {
	PersonEngagement
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// FileView is one file's record: who opened it, how often.
type FileView struct {
	AttachmentID string           `json:"attachment_id"`
	Name         string           `json:"name"`
	Views        int              `json:"views"`
	Downloads    int              `json:"downloads"`
	By           []FileEngagement `json:"by"`
}

func personView(p PersonEngagement, name string) PersonView {
	if p.Devices == nil {
		p.Devices = map[DeviceKind]int{}
	}
	return PersonView{PersonEngagement: p, Name: name, Seconds: p.Time.Round(time.Second).Seconds()}
}

// Engagement returns the room's engagement, for staff who see the room's
// internal side. Errors: ENOTFOUND when the actor may not see the room;
// EFORBIDDEN for customers (they have EngagementOf, their own record).
func (s *Service) Engagement(ctx context.Context, a dealroom.Actor, room string) (RoomEngagementView, error) {
	es, err := s.engagement()
	if err != nil {
		return RoomEngagementView{}, err
	}
	p, err := s.Access(ctx, a, room)
	if err != nil {
		return RoomEngagementView{}, err
	}
	if !p.Internal {
		return RoomEngagementView{}, dealroom.Errorf(dealroom.EFORBIDDEN,
			"engagement figures are for the seller's staff; your own record is at engagement/me")
	}
	members, err := s.Store.Members(ctx, room)
	if err != nil {
		return RoomEngagementView{}, err
	}
	rec, err := es.RoomEngagement(ctx, room)
	if err != nil {
		return RoomEngagementView{}, err
	}
	from, to := signalSpan(s.now())
	days, err := es.CustomerDays(ctx, []string{room}, from, to)
	if err != nil {
		return RoomEngagementView{}, err
	}
	out := RoomEngagementView{Signal: SignalOf(days[room], s.now()), People: []PersonView{}, Files: []FileView{},
		Days: days[room]}
	if out.Days == nil {
		out.Days = []DayActivity{}
	}
	seen := map[string]bool{}
	for _, pe := range rec.People {
		if m := FindMember(members, pe.UserID); m != nil {
			out.People = append(out.People, personView(pe, m.Name))
			seen[pe.UserID] = true
		}
	}
	for _, m := range members {
		if !seen[m.UserID] && m.Kind == dealroom.Customer {
			out.People = append(out.People, personView(PersonEngagement{UserID: m.UserID, Side: dealroom.Customer}, m.Name))
		}
	}
	for _, f := range rec.Files {
		if FindMember(members, f.UserID) == nil {
			continue
		}
		if n := len(out.Files); n == 0 || out.Files[n-1].AttachmentID != f.AttachmentID {
			name := ""
			if at, err := s.Store.Attachment(ctx, room, f.AttachmentID); err != nil {
				return RoomEngagementView{}, err
			} else if at != nil {
				name = at.Name
			}
			out.Files = append(out.Files, FileView{AttachmentID: f.AttachmentID, Name: name, By: []FileEngagement{}})
		}
		fv := &out.Files[len(out.Files)-1]
		fv.Views += f.Views
		fv.Downloads += f.Downloads
		fv.By = append(fv.By, f)
	}
	return out, nil
}

// MyEngagement is what is recorded about one person in a room, shown to
// them.
type MyEngagement struct {
	Statement string           `json:"statement"`
	Person    PersonView       `json:"person"`
	Files     []FileEngagement `json:"files"`
}

// EngagementOf returns what is recorded about the actor's own visits to
// the room, with the statement of what is recorded: anyone who may see the
// room may ask for theirs. Errors: ENOTFOUND when the actor may not see
// the room.
func (s *Service) EngagementOf(ctx context.Context, a dealroom.Actor, room string) (MyEngagement, error) {
	es, err := s.engagement()
	if err != nil {
		return MyEngagement{}, err
	}
	p, err := s.Access(ctx, a, room)
	if err != nil {
		return MyEngagement{}, err
	}
	rec, err := es.RoomEngagement(ctx, room)
	if err != nil {
		return MyEngagement{}, err
	}
	side := dealroom.Staff
	if !p.Internal {
		side = dealroom.Customer
	}
	out := MyEngagement{Statement: EngagementStatement, Files: []FileEngagement{},
		Person: personView(PersonEngagement{UserID: a.ID, Side: side}, a.Name)}
	if p.Member != nil {
		out.Person.Name = p.Member.Name
	}
	for _, pe := range rec.People {
		if pe.UserID == a.ID {
			out.Person = personView(pe, out.Person.Name)
		}
	}
	for _, f := range rec.Files {
		if f.UserID == a.ID {
			out.Files = append(out.Files, f)
		}
	}
	return out, nil
}

// FileSeen is "seen by" for one file: the current members who opened it,
// and when they first did.
type FileSeen struct {
	AttachmentID string      `json:"attachment_id"`
	SeenBy       []SeenEntry `json:"seen_by"`
}

// SeenEntry is one person who saw a file.
type SeenEntry struct {
	UserID string    `json:"user_id"`
	At     time.Time `json:"at"`
}

// FileReads returns "seen by" of the room's files as the actor may see
// them: every member sees who opened each file they may see (as with the
// read markers, both sides see both sides), customers never anything of an
// internal file, and nobody the counts (those are staff's engagement
// figures). Errors: ENOTFOUND when the actor may not see the room.
func (s *Service) FileReads(ctx context.Context, a dealroom.Actor, room string) ([]FileSeen, error) {
	es, err := s.engagement()
	if err != nil {
		return nil, err
	}
	p, err := s.Access(ctx, a, room)
	if err != nil {
		return nil, err
	}
	members, err := s.Store.Members(ctx, room)
	if err != nil {
		return nil, err
	}
	rec, err := es.RoomEngagement(ctx, room)
	if err != nil {
		return nil, err
	}
	out := []FileSeen{}
	visible := map[string]bool{}
	for _, f := range rec.Files {
		if FindMember(members, f.UserID) == nil {
			continue
		}
		ok, known := visible[f.AttachmentID]
		if !known {
			at, err := s.Store.Attachment(ctx, room, f.AttachmentID)
			if err != nil {
				return nil, err
			}
			ok = at != nil && p.Sees(at.Visibility)
			visible[f.AttachmentID] = ok
		}
		if !ok {
			continue
		}
		if n := len(out); n == 0 || out[n-1].AttachmentID != f.AttachmentID {
			out = append(out, FileSeen{AttachmentID: f.AttachmentID})
		}
		last := &out[len(out)-1]
		last.SeenBy = append(last.SeenBy, SeenEntry{UserID: f.UserID, At: f.First})
	}
	return out, nil
}

// Signals returns the engagement signal of each listed room whose internal
// side the actor sees (staff); customers get none, and nobody gets any
// from a store that keeps no engagement. One read for the page.
func (s *Service) Signals(ctx context.Context, a dealroom.Actor, rooms []Listed) (map[string]Signal, error) {
	var ids []string
	for _, l := range rooms {
		if l.Perm.Internal {
			ids = append(ids, l.Room.ID)
		}
	}
	out := make(map[string]Signal, len(ids))
	es, ok := s.Store.(EngagementStore)
	if len(ids) == 0 || !ok {
		return out, nil
	}
	now := s.now()
	from, to := signalSpan(now)
	days, err := es.CustomerDays(ctx, ids, from, to)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		out[id] = SignalOf(days[id], now)
	}
	return out, nil
}

// InvitePreview is what an invite link shows before the invited person
// gives their name: the room's name and who invited them.
type InvitePreview struct {
	Room      string `json:"room_name"`
	InvitedBy string `json:"invited_by"`
}

// PreviewInvite returns the preview of a pending invite's code. Any other
// code (unknown, revoked, accepted, expired) is one and the same
// ENOTFOUND, so that the answer tells nothing of invites that were.
func (s *Service) PreviewInvite(ctx context.Context, code string) (InvitePreview, error) {
	gone := dealroom.Errorf(dealroom.ENOTFOUND, "this invite link is not valid")
	if len(code) > 100 || code == "" {
		return InvitePreview{}, gone
	}
	inv, err := s.Store.Invite(ctx, InviteID(code))
	if err != nil {
		return InvitePreview{}, err
	}
	if inv == nil || inv.Status(s.now()) != "pending" {
		return InvitePreview{}, gone
	}
	r, err := s.Store.Room(ctx, inv.RoomID)
	if err != nil {
		return InvitePreview{}, err
	}
	if r == nil {
		return InvitePreview{}, gone
	}
	out := InvitePreview{Room: r.Name}
	m, err := s.Store.Member(ctx, inv.RoomID, inv.CreatedBy)
	if err != nil {
		return InvitePreview{}, err
	}
	if m != nil {
		out.InvitedBy = m.Name
	}
	return out, nil
}
