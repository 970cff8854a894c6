package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"sync"
	"time"
	// The zones are in the binary, so that a person's time zone does not
	// depend on the host's files (a container image may have none).
	_ "time/tzdata"

	"dealroom"
	dmail "dealroom/mail"
	"dealroom/outbox"
	"dealroom/room"
	"dealroom/task"
)

// Reminders are made by time, not by an event: the day before a step
// assigned to someone is due, once when it becomes overdue, and, for a
// room's owner, when no customer member did anything in the room for its
// follow-up period (room.Room.FollowUp; again after each such period while
// it stays quiet). A sweep of every room, once an hour per process under
// the runner's lease, makes them as outbox records whose ids are derived
// from (person, kind, step or room, due date or quiet period): several
// instances, a sweep run twice and a restart make each one once, and the
// sender sends it with the room's other notifications.
//
// A reminder goes out from the digest hour in the person's own time zone
// (Person.TimeZone; UTC when none): "tomorrow" and "overdue" are their
// days. It goes only to a member who may see the step (a customer is never
// reminded of an internal one), wants the room's email and did not turn
// reminders off. A done step, and every step of a closed room (won or
// lost), gets none. Steps overdue for longer than overdueDays when the
// sweep first sees them (before this code ran, or while the server was
// down) get none either: reminders are news, not a backlog.

// Reminder kinds, as they appear in the records' event names.
const (
	remindDueTomorrow = "due_tomorrow"
	remindOverdue     = "overdue"
	remindQuiet       = "quiet"
)

const (
	// overdueDays is how long after its due date a step is still
	// reminded of as overdue; settled records are kept longer (a week), so
	// that a later sweep finds the record and makes none anew.
	overdueDays = 3
	// quietWindow is how long after a quiet period ended its reminder is
	// still made, for the same reason.
	quietWindow = 3 * 24 * time.Hour
)

// reminderState is when the sweep last ran, per process.
type reminderState struct {
	mu     sync.Mutex
	done   time.Time // the hour swept
	failed time.Time // when the last sweep failed
}

// Reminders makes the reminders due by now: outbox records, which the
// sender sends. Run it as a job of the runner, after each pass: it walks
// every room once per hour and process (a repeat makes nothing new: the
// records' keys).
func (n *Notifier) Reminders(ctx context.Context) error {
	now := n.now()
	hour := now.UTC().Truncate(time.Hour)
	s := &n.reminders
	s.mu.Lock()
	done := s.done.Equal(hour) || now.Sub(s.failed) < digestRetry
	s.mu.Unlock()
	if done {
		return nil
	}
	err := n.sweepReminders(ctx, now)
	s.mu.Lock()
	if err != nil {
		s.failed = now
	} else {
		s.done = hour
	}
	s.mu.Unlock()
	return err
}

// sweepReminders walks every room, a page at a time.
func (n *Notifier) sweepReminders(ctx context.Context, now time.Time) error {
	w := &reminderWalk{n: n, now: now, people: map[string]*Person{}, zones: map[string]*time.Location{}}
	after := ""
	for {
		heads, err := n.store.Heads(ctx, after, roomsPage)
		if err != nil {
			return err
		}
		for _, h := range heads {
			recs, err := w.room(ctx, h.Room)
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				if _, err := n.store.AddOutbox(ctx, recs); err != nil {
					return err
				}
			}
		}
		if len(heads) < roomsPage {
			return nil
		}
		after = heads[len(heads)-1].Room
	}
}

// reminderWalk is one sweep: its time and the people it read.
type reminderWalk struct {
	n      *Notifier
	now    time.Time
	people map[string]*Person // nil: no record
	zones  map[string]*time.Location
}

// person returns the user and their clock when they take reminders about
// the room at this hour of their day, nil otherwise.
func (w *reminderWalk) person(ctx context.Context, user, roomID string) (*Person, time.Time, error) {
	p, ok := w.people[user]
	if !ok {
		var err error
		if p, err = w.n.store.Person(ctx, user); err != nil {
			return nil, time.Time{}, err
		}
		w.people[user] = p
	}
	if !p.Wants(roomID) || p.RemindersOff {
		return nil, time.Time{}, nil
	}
	loc, ok := w.zones[p.TimeZone]
	if !ok {
		var err error
		if loc, err = time.LoadLocation(p.TimeZone); err != nil {
			loc = time.UTC
		}
		w.zones[p.TimeZone] = loc
	}
	local := w.now.In(loc)
	if local.Hour() < w.n.digestHour {
		return nil, time.Time{}, nil
	}
	return p, local, nil
}

// room returns the reminders of one room due now.
func (w *reminderWalk) room(ctx context.Context, roomID string) ([]outbox.Record, error) {
	rm, err := w.n.rooms.Room(ctx, roomID)
	if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
		return nil, nil
	}
	if err != nil || rm.Closed() {
		return nil, err
	}
	members, err := w.n.rooms.Members(ctx, roomID)
	if err != nil {
		return nil, err
	}
	byUser := make(map[string]*room.Member, len(members))
	for i := range members {
		byUser[members[i].UserID] = &members[i]
	}
	tasks, err := w.n.rooms.Tasks(ctx, roomID)
	if err != nil {
		return nil, err
	}
	var recs []outbox.Record
	for _, t := range tasks {
		if t.Due == nil || t.Status == task.Done {
			continue
		}
		for _, u := range t.Assignees {
			m := byUser[u]
			if m == nil || !room.PermOf(dealroom.Actor{ID: m.UserID, Kind: m.Kind}, m).Sees(t.Visibility) {
				continue
			}
			p, local, err := w.person(ctx, u, roomID)
			if err != nil {
				return nil, err
			}
			if p == nil {
				continue
			}
			today := task.DateOf(local)
			var kind string
			switch {
			case *t.Due == addDays(today, 1):
				kind = remindDueTomorrow
			case t.Due.Before(today) && !t.Due.Before(addDays(today, -overdueDays)):
				kind = remindOverdue
			default:
				continue
			}
			rec, err := w.n.reminderRecord(p, rm, kind+":"+t.ID+":"+t.Due.String(), w.n.stepReminder(kind, t, rm), w.now)
			if err != nil {
				return nil, err
			}
			recs = append(recs, rec)
		}
	}
	rec, err := w.quiet(ctx, rm, byUser[rm.OwnerID])
	if err != nil || rec == nil {
		return recs, err
	}
	return append(recs, *rec), nil
}

// quiet returns the reminder of a room with no customer touch for its
// follow-up period (or a multiple of it), to its owner, nil when none is
// due.
func (w *reminderWalk) quiet(ctx context.Context, rm *room.Room, owner *room.Member) (*outbox.Record, error) {
	if owner == nil {
		return nil, nil
	}
	since := rm.CreatedAt
	if rm.LastCustomerActivityAt != nil {
		since = *rm.LastCustomerActivityAt
	}
	period := rm.FollowUp()
	k := w.now.Sub(since) / period
	if k < 1 || w.now.Sub(since.Add(k*period)) >= quietWindow {
		return nil, nil
	}
	p, _, err := w.person(ctx, owner.UserID, rm.ID)
	if err != nil || p == nil {
		return nil, err
	}
	days := int(w.now.Sub(since) / (24 * time.Hour))
	c := content{RoomName: rm.Name, Link: w.n.publicURL + "/room/" + url.PathEscape(rm.ID), LinkText: "Open the room",
		Subject: "No word from the customer in " + rm.Name + " for " + strconv.Itoa(days) + " days"}
	if rm.LastCustomerActivityAt != nil {
		c.Lead = "No one on the customer's side has done anything in " + rm.Name + " since " +
			since.UTC().Format("2 January 2006") + ". Time to follow up?"
	} else {
		c.Lead = "No one on the customer's side has done anything in " + rm.Name + " since it was made, " +
			strconv.Itoa(days) + " days ago. Time to follow up?"
	}
	key := remindQuiet + ":" + rm.ID + ":" + since.UTC().Format(time.RFC3339Nano) + ":" + strconv.Itoa(int(k))
	rec, err := w.n.reminderRecord(p, rm, key, c, w.now)
	return &rec, err
}

// stepReminder is what the reminder of a step says.
func (n *Notifier) stepReminder(kind string, t task.Task, rm *room.Room) content {
	c := content{RoomName: rm.Name, Title: t.Title, Excerpt: excerpt(t.Description), LinkText: "Open the step",
		Link: n.publicURL + "/room/" + url.PathEscape(rm.ID) + "/task/" + url.PathEscape(t.ID)}
	if kind == remindDueTomorrow {
		c.Subject = "Due tomorrow: “" + shorten(t.Title, 80) + "” in " + rm.Name
		c.Lead = "A step of yours in " + rm.Name + " is due tomorrow, " + t.Due.String() + ":"
	} else {
		c.Subject = "Overdue: “" + shorten(t.Title, 80) + "” in " + rm.Name
		c.Lead = "A step of yours in " + rm.Name + " was due on " + t.Due.String() + " and is not done:"
	}
	return c
}

// reminderRecord makes the outbox record of a reminder to p about rm,
// which says c; what names the reminder among p's.
func (n *Notifier) reminderRecord(p *Person, rm *room.Room, what string, c content, now time.Time) (outbox.Record, error) {
	c.Unsubscribe = n.publicURL + "/api/v1/notifications/unsubscribe?token=" + n.UnsubscribeToken(p.User, rm.ID)
	event := "remind:" + what
	id := outbox.Key(outbox.Email, p.User, event)
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, c); err != nil {
		return outbox.Record{}, err
	}
	if err := htmlTmpl.Execute(&html, c); err != nil {
		return outbox.Record{}, err
	}
	thread := "room." + rm.ID + "@" + n.host
	m := dmail.Message{To: p.Email, Subject: oneLine(c.Subject), Text: text.String(), HTML: html.String(),
		MessageID: id + "@" + n.host, InReplyTo: thread, References: []string{thread}, Unsubscribe: c.Unsubscribe}
	body, err := json.Marshal(payload{Message: m, Item: &c})
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{ID: id, Channel: outbox.Email, Recipient: p.User, RoomID: rm.ID, EventID: event,
		Payload: body, State: outbox.Pending, CreatedAt: now, Due: now}, nil
}

// addDays returns the day n days after d (before, for a negative n).
func addDays(d task.Date, n int) task.Date {
	return task.DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// MaxZone bounds the name of a time zone.
const MaxZone = 64

// SetReminders turns the user's reminders off or on.
func (n *Notifier) SetReminders(ctx context.Context, user string, off bool) error {
	return n.store.SetReminders(ctx, user, off, n.now())
}

// SetTimeZone records the user's time zone: an IANA name such as
// "Europe/Lisbon", or "UTC". EINVALID for another value.
func (n *Notifier) SetTimeZone(ctx context.Context, user, zone string) error {
	if err := CheckZone(zone); err != nil {
		return err
	}
	return n.store.SetTimeZone(ctx, user, zone, n.now())
}

// CheckZone checks the name of a time zone: EINVALID unless it is an
// IANA name that time.LoadLocation knows, or UTC.
func CheckZone(zone string) error {
	if zone == "" || len(zone) > MaxZone || zone == "Local" {
		return dealroom.Invalid("timezone", "timezone must be the IANA name of a time zone, such as Europe/Lisbon, or UTC")
	}
	if _, err := time.LoadLocation(zone); err != nil {
		return dealroom.Invalid("timezone", "timezone must be the IANA name of a time zone, such as Europe/Lisbon, or UTC, not %q", dealroom.Clip(zone))
	}
	return nil
}
