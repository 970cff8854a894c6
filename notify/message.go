package notify

import (
	"bytes"
	"encoding/json"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"unicode/utf8"

	dmail "dealroom/mail"
	"dealroom/room"
	"dealroom/task"
)

// excerptRunes bounds the text quoted from a message or a step.
const excerptRunes = 300

// content is what a notification says, for both templates.
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

// message renders the email of one item to p.
func (n *Notifier) message(ev room.Event, it room.InboxItem, p *Person, rm *room.Room) (dmail.Message, error) {
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
			return dmail.Message{}, err
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
			return dmail.Message{}, err
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
		return dmail.Message{}, err
	}
	if err := htmlTmpl.Execute(&html, c); err != nil {
		return dmail.Message{}, err
	}
	return dmail.Message{To: p.Email, Subject: oneLine(c.Subject), Text: text.String(), HTML: html.String(),
		Unsubscribe: c.Unsubscribe}, nil
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
