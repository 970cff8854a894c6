package notify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"slices"
	"strings"
	texttemplate "text/template"
	"unicode/utf8"

	dmail "dealroom/mail"
	"dealroom/outbox"
	"dealroom/room"
	"dealroom/task"
)

// excerptRunes bounds the text quoted from a message or a step.
const excerptRunes = 300

// content is what a notification says, for both templates. It is kept in
// the record's payload, so that a message listing several notifications
// can be made at send time.
type content struct {
	Subject     string
	Lead        string // "Ana Lima mentioned you in Acme renewal:"
	Title       string // the step's title, when about a step
	Excerpt     string
	Link        string
	LinkText    string
	Unsubscribe string
	RoomName    string
}

var textTmpl = texttemplate.Must(texttemplate.New("text").Parse(`{{.Lead}}
{{if .Title}}
{{.Title}}
{{end}}{{if .Excerpt}}
{{.Excerpt}}
{{end}}
{{.LinkText}}: {{.Link}}

--
You get this email because you are a member of {{.RoomName}}.
Stop these emails: {{.Unsubscribe}}
`))

var htmlTmpl = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.4">
<p>{{.Lead}}</p>
{{if .Title}}<p><strong>{{.Title}}</strong></p>{{end}}
{{if .Excerpt}}<blockquote style="margin: 0 0 1em; padding-left: 1em; border-left: 3px solid #ccc; white-space: pre-wrap">{{.Excerpt}}</blockquote>{{end}}
<p><a href="{{.Link}}">{{.LinkText}}</a></p>
<p style="color: #777; font-size: 12px">You get this email because you are a member of {{.RoomName}}.
<a href="{{.Unsubscribe}}">Stop these emails</a>.</p>
</body></html>
`))

// listTmpl and listHTMLTmpl are the message that carries several
// notifications of one room.
var listTmpl = texttemplate.Must(texttemplate.New("list").Parse(`{{.Lead}}
{{range .Items}}
* {{.Lead}}
{{- if .Title}}
  {{.Title}}
{{- end}}{{if .Excerpt}}
  {{.Excerpt}}
{{- end}}{{if .Link}}
  {{.LinkText}}: {{.Link}}
{{- end}}
{{end}}
--
You get this email because you are a member of {{.RoomName}}.
Stop these emails: {{.Unsubscribe}}
`))

var listHTMLTmpl = htmltemplate.Must(htmltemplate.New("listhtml").Parse(`<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.4">
<p>{{.Lead}}</p>
{{range .Items}}<div style="margin: 0 0 1.2em">
<p style="margin: 0">{{.Lead}}</p>
{{if .Title}}<p style="margin: 0"><strong>{{.Title}}</strong></p>{{end}}
{{if .Excerpt}}<blockquote style="margin: 0.3em 0; padding-left: 1em; border-left: 3px solid #ccc; white-space: pre-wrap">{{.Excerpt}}</blockquote>{{end}}
{{if .Link}}<p style="margin: 0"><a href="{{.Link}}">{{.LinkText}}</a></p>{{end}}
</div>
{{end}}<p style="color: #777; font-size: 12px">You get this email because you are a member of {{.RoomName}}.
<a href="{{.Unsubscribe}}">Stop these emails</a>.</p>
</body></html>
`))

// payload is an email record's payload: the message of the record alone
// and what it says, for a message that lists it with others.
type payload struct {
	dmail.Message
	Item *content `json:",omitempty"`
}

// list is what a message of several notifications says.
type list struct {
	Lead        string
	Items       []content
	RoomName    string
	Unsubscribe string
}

// Combine makes the one message that tells of several records of one
// person and room (the outbox's Sender calls it), under the Message-ID
// batch: the notifications in the order of their events, each with its
// link. Records made before their payload kept what they say are listed
// by their subject.
func (n *Notifier) Combine(batch string, recs []outbox.Record) (dmail.Message, error) {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b outbox.Record) int { return cmp.Compare(a.Seq, b.Seq) })
	var first dmail.Message
	var l list
	for i, r := range recs {
		var p payload
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			return dmail.Message{}, err
		}
		c := content{Lead: p.Subject}
		if p.Item != nil {
			c = *p.Item
		}
		if i == 0 {
			first, l.RoomName, l.Unsubscribe = p.Message, c.RoomName, c.Unsubscribe
		} else if p.ReplyTo != first.ReplyTo {
			first.ReplyTo = "" // a reply can go into one thread only
		}
		l.Items = append(l.Items, c)
	}
	if l.RoomName == "" {
		l.RoomName = "a room"
	}
	l.Lead = fmt.Sprintf("%d new notifications for you in %s:", len(recs), l.RoomName)
	var text, html bytes.Buffer
	if err := listTmpl.Execute(&text, l); err != nil {
		return dmail.Message{}, err
	}
	if err := listHTMLTmpl.Execute(&html, l); err != nil {
		return dmail.Message{}, err
	}
	return dmail.Message{To: first.To, Subject: oneLine(fmt.Sprintf("%d new notifications in %s", len(recs), l.RoomName)),
		Text: text.String(), HTML: html.String(), MessageID: batch + "@" + n.host, InReplyTo: first.InReplyTo,
		References: first.References, ReplyTo: first.ReplyTo, Unsubscribe: first.Unsubscribe}, nil
}

// message renders the email of one item to p, and what it says; record
// adds its reply address.
func (n *Notifier) message(ev room.Event, it room.InboxItem, p *Person, rm *room.Room) (dmail.Message, content, error) {
	who := ev.Actor.Name
	if who == "" {
		who = "Someone"
	}
	c := content{RoomName: rm.Name,
		Unsubscribe: n.publicURL + "/api/v1/notifications/unsubscribe?token=" + n.UnsubscribeToken(p.User, rm.ID)}
	roomPath := n.publicURL + "/room/" + url.PathEscape(rm.ID)
	if it.MessageID != "" {
		var m room.Message
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			return dmail.Message{}, content{}, err
		}
		c.Subject = who + " mentioned you in " + rm.Name
		c.Lead = who + " mentioned you in " + rm.Name + ":"
		c.Excerpt = excerpt(m.Body)
		if m.TaskID != "" {
			c.Link, c.LinkText = roomPath+"/task/"+url.PathEscape(m.TaskID), "Open the step's discussion"
		} else {
			c.Link, c.LinkText = roomPath+"/discussion", "Open the discussion"
		}
	} else {
		var t task.Task
		if err := json.Unmarshal(ev.Data, &t); err != nil {
			return dmail.Message{}, content{}, err
		}
		c.Title = t.Title
		c.Excerpt = excerpt(t.Description)
		c.Link, c.LinkText = roomPath+"/task/"+url.PathEscape(t.ID), "Open the step"
		if it.Kind == room.InboxAssignment {
			c.Subject = who + " assigned you “" + shorten(t.Title, 80) + "” in " + rm.Name
			c.Lead = who + " assigned you a step in " + rm.Name + ":"
		} else {
			c.Subject = who + " mentioned you in “" + shorten(t.Title, 80) + "” in " + rm.Name
			c.Lead = who + " mentioned you in a step of " + rm.Name + ":"
		}
	}
	var text, html bytes.Buffer
	if err := textTmpl.Execute(&text, c); err != nil {
		return dmail.Message{}, content{}, err
	}
	if err := htmlTmpl.Execute(&html, c); err != nil {
		return dmail.Message{}, content{}, err
	}
	return dmail.Message{To: p.Email, Subject: oneLine(c.Subject), Text: text.String(), HTML: html.String(),
		Unsubscribe: c.Unsubscribe}, c, nil
}

// mentionThread returns the thread of the message an item is about: the
// thread a reply to its email goes into ("" for a step).
func mentionThread(ev room.Event, it room.InboxItem) string {
	if it.MessageID == "" {
		return ""
	}
	var m room.Message
	if json.Unmarshal(ev.Data, &m) != nil {
		return ""
	}
	return cmp.Or(m.ParentID, m.ID)
}

// excerpt is the start of a text, for a quote.
func excerpt(s string) string { return shorten(strings.TrimSpace(s), excerptRunes) }

func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// oneLine makes a header value of s: a name or a title with a line break
// would otherwise be refused by the mail sender.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
