package notify

import (
	"bytes"
	"context"
	"encoding/json"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	texttemplate "text/template"
	"time"

	"dealroom"
	dmail "dealroom/mail"
	"dealroom/outbox"
	"dealroom/room"
)

// The digest: one mail per person and period (a day or a week) that
// lists, per room, what happened in the period before it that they may
// see and have not seen (after their read marker), leaving out what they
// did themselves and the mentions and assignments an instant email is
// made for. It is an outbox record keyed by (person, period), so several
// instances and restarts make it once; the outbox's sender sends it.

// Bounds of a digest.
const (
	// digestScan bounds the events read per room: the last ones before
	// the period's end.
	digestScan = 500
	// digestLines bounds the messages quoted per room; the rest is
	// counted.
	digestLines = 5
	peoplePage  = 200
	roomsPage   = 200
	// digestRetry is the wait after a failed walk: it starts again from
	// the first person (what was made stays made).
	digestRetry = time.Minute
)

// DigestOf returns how often p gets a digest: their choice, or by default
// daily for a customer and never for staff (they work in the app and get
// the instant email), customer telling whether they are one.
func DigestOf(p *Person, customer bool) string {
	switch {
	case p == nil:
		return Off
	case p.Digest != "":
		return p.Digest
	case customer:
		return Daily
	}
	return Off
}

// period is one digest's span: events from Start to End (excluded) go in
// the digest of Key, made at End.
type period struct {
	Key        string
	Start, End time.Time
}

// periodOf returns the latest period of kind (Daily or Weekly) that ended
// by now, periods ending at hour o'clock UTC (weekly: on Mondays).
func periodOf(kind string, now time.Time, hour int) period {
	now = now.UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), hour, 0, 0, 0, time.UTC)
	if end.After(now) {
		end = end.AddDate(0, 0, -1)
	}
	if kind == Weekly {
		back := (int(end.Weekday()) + 6) % 7 // days since Monday
		end = end.AddDate(0, 0, -back)
		y, w := end.ISOWeek()
		return period{Key: "weekly:" + strconv.Itoa(y) + "-W" + strconv.Itoa(w), Start: end.AddDate(0, 0, -7), End: end}
	}
	return period{Key: "daily:" + end.Format(time.DateOnly), Start: end.AddDate(0, 0, -1), End: end}
}

// Digests makes the digests of the latest day (and week) that ended, for
// everyone who takes one and has something in it: outbox records, which
// the sender sends. Run it as a job of the runner, after each pass: it
// looks at everyone once per day and process (a repeat makes nothing new:
// the records' keys).
func (n *Notifier) Digests(ctx context.Context) error {
	now := n.now()
	day := periodOf(Daily, now, n.digestHour)
	n.digestMu.Lock()
	done := n.digestDone == day.Key || now.Sub(n.digestFailed) < digestRetry
	n.digestMu.Unlock()
	if done {
		return nil
	}
	if err := n.digests(ctx, now); err != nil {
		n.digestMu.Lock()
		n.digestFailed = now
		n.digestMu.Unlock()
		return err
	}
	n.digestMu.Lock()
	n.digestDone = day.Key
	n.digestMu.Unlock()
	return nil
}

// digests makes the digests of everyone, a page of people at a time.
func (n *Notifier) digests(ctx context.Context, now time.Time) error {
	after := ""
	for {
		people, err := n.store.PeopleAfter(ctx, after, peoplePage)
		if err != nil {
			return err
		}
		var recs []outbox.Record
		for i := range people {
			rec, err := n.digest(ctx, &people[i], now)
			if err != nil {
				return err
			}
			if rec != nil {
				recs = append(recs, *rec)
			}
		}
		if len(recs) > 0 {
			if _, err := n.store.AddOutbox(ctx, recs); err != nil {
				return err
			}
		}
		if len(people) < peoplePage {
			break
		}
		after = people[len(people)-1].User
	}
	return nil
}

// digestRoom is what one room's part of a digest says.
type digestRoom struct {
	Name   string
	Link   string
	Count  int
	Quotes []string // "Ana Lima: the text"
	Others int      // events counted, not quoted
}

// digest returns the record of p's digest of the latest period, nil when
// they take none or there is nothing in it.
func (n *Notifier) digest(ctx context.Context, p *Person, now time.Time) (*outbox.Record, error) {
	if p.Email == "" || p.EmailOff || p.Digest == Off {
		return nil, nil
	}
	var rooms []digestRoom
	var per period
	before := ""
	for {
		page, err := n.rooms.Rooms(ctx, room.RoomFilter{Member: p.User, Before: before, Limit: roomsPage})
		if err != nil {
			return nil, err
		}
		for i := range page {
			rm := &page[i]
			m, err := n.rooms.Member(ctx, rm.ID, p.User)
			if err != nil {
				return nil, err
			}
			kind := DigestOf(p, m != nil && m.Kind == dealroom.Customer)
			if m == nil || kind == Off || !p.Wants(rm.ID) {
				continue
			}
			per = periodOf(kind, now, n.digestHour)
			dr, err := n.digestOfRoom(ctx, p, m, rm, per)
			if err != nil {
				return nil, err
			}
			if dr.Count > 0 {
				rooms = append(rooms, dr)
			}
		}
		if len(page) < roomsPage {
			break
		}
		before = page[len(page)-1].ID
	}
	if len(rooms) == 0 {
		return nil, nil
	}
	return n.digestRecord(p, per, rooms, now)
}

// digestOfRoom reads what p has not seen in rm among the events of the
// period.
func (n *Notifier) digestOfRoom(ctx context.Context, p *Person, m *room.Member, rm *room.Room, per period) (digestRoom, error) {
	dr := digestRoom{Name: rm.Name, Link: n.publicURL + "/room/" + url.PathEscape(rm.ID)}
	seen, err := n.SeenSeq(ctx, rm.ID, p.User)
	if err != nil {
		return dr, err
	}
	perm := room.PermOf(dealroom.Actor{ID: m.UserID, Kind: m.Kind}, m)
	after := max(seen, rm.Head-digestScan)
	for after < rm.Head {
		evs, err := n.rooms.Events(ctx, rm.ID, after, 200, m.Kind == dealroom.Customer)
		if err != nil {
			return dr, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			after = ev.Seq
			if ev.At.Before(per.Start) || !ev.At.Before(per.End) || ev.Actor.ID == p.User ||
				!perm.Sees(ev.Visibility) || n.toldAtOnce(ev, p) {
				continue
			}
			dr.Count++
			if ev.Type == room.MessagePosted && len(dr.Quotes) < digestLines {
				var msg room.Message
				if json.Unmarshal(ev.Data, &msg) == nil && msg.Body != "" {
					dr.Quotes = append(dr.Quotes, ev.Actor.Name+": "+shorten(oneLine(msg.Body), 160))
					continue
				}
			}
			dr.Others++
		}
	}
	return dr, nil
}

// toldAtOnce reports whether an instant email about ev is made for p: a
// mention of them or a step assigned to them.
func (n *Notifier) toldAtOnce(ev room.Event, p *Person) bool {
	fx, err := room.Project(ev)
	if err != nil {
		return false
	}
	for _, it := range fx.Inbox {
		if it.UserID == p.User && (it.Kind == room.InboxMention || it.Kind == room.InboxAssignment) {
			return true
		}
	}
	return false
}

var digestText = texttemplate.Must(texttemplate.New("digest").Parse(`Since you last looked:
{{range .Rooms}}
{{.Name}}: {{.Count}} new
{{- range .Quotes}}
  {{.}}
{{- end}}{{if .Others}}
  and {{.Others}} other update{{if gt .Others 1}}s{{end}}
{{- end}}
  Open the room: {{.Link}}
{{end}}
--
You get this digest {{.Every}}. Change it in the web app: {{.Settings}}
Stop all email from Dealroom: {{.Unsubscribe}}
`))

var digestHTML = htmltemplate.Must(htmltemplate.New("digesthtml").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.4">
<p>Since you last looked:</p>
{{range .Rooms}}<div style="margin: 0 0 1.2em">
<p style="margin: 0"><strong>{{.Name}}</strong>: {{.Count}} new</p>
{{range .Quotes}}<p style="margin: 0; padding-left: 1em">{{.}}</p>
{{end}}{{if .Others}}<p style="margin: 0; padding-left: 1em">and {{.Others}} other update{{if gt .Others 1}}s{{end}}</p>
{{end}}<p style="margin: 0"><a href="{{.Link}}">Open the room</a></p>
</div>
{{end}}<p style="color: #777; font-size: 12px">You get this digest {{.Every}}.
<a href="{{.Settings}}">Change it in the web app</a>, or
<a href="{{.Unsubscribe}}">stop all email from Dealroom</a>.</p>
</body></html>
`))

// digestRecord makes the outbox record of p's digest of per.
func (n *Notifier) digestRecord(p *Person, per period, rooms []digestRoom, now time.Time) (*outbox.Record, error) {
	every := "every day"
	if per.Key[0] == 'w' {
		every = "every week"
	}
	// The one-click unsubscribe of a digest, which is about every room,
	// turns off all email.
	unsubscribe := n.publicURL + "/api/v1/notifications/unsubscribe?token=" + n.UnsubscribeToken(p.User, "")
	v := struct {
		Rooms                        []digestRoom
		Every, Settings, Unsubscribe string
	}{rooms, every, n.publicURL + "/me/settings", unsubscribe}
	var text, html bytes.Buffer
	if err := digestText.Execute(&text, v); err != nil {
		return nil, err
	}
	if err := digestHTML.Execute(&html, v); err != nil {
		return nil, err
	}
	event := "digest:" + per.Key
	id := outbox.Key(outbox.Email, p.User, event)
	subject := "What you missed in " + rooms[0].Name
	if len(rooms) > 1 {
		subject += " and " + strconv.Itoa(len(rooms)-1) + " more room"
		if len(rooms) > 2 {
			subject += "s"
		}
	}
	body, err := json.Marshal(dmail.Message{To: p.Email, Subject: oneLine(subject), Text: text.String(),
		HTML: html.String(), MessageID: id + "@" + n.host, Unsubscribe: unsubscribe})
	if err != nil {
		return nil, err
	}
	return &outbox.Record{ID: id, Channel: outbox.Email, Recipient: p.User, EventID: event, Payload: body,
		State: outbox.Pending, CreatedAt: now, Due: now}, nil
}
