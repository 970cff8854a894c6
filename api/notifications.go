package api

import (
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/notify"
)

// Email notifications: the unsubscribe link of every email (no sign-in:
// the signed token is the authority, RFC 8058's one-click POST included)
// and a person's own choices. Without Config.Notifier they answer 404.

// errNoNotifications answers when the server sends no notifications.
var errNoNotifications = dealroom.Errorf(dealroom.ENOTFOUND, "this server sends no email notifications")

func (s *Server) registerNotifications(v1, signedIn *echo.Group, limiter echo.MiddlewareFunc) {
	v1.GET("/notifications/unsubscribe", s.unsubscribePage, limiter)
	v1.POST("/notifications/unsubscribe", s.unsubscribe, limiter)
	signedIn.GET("/me/notifications", s.myNotifications)
	signedIn.PUT("/me/notifications", s.setMyNotifications)
}

var unsubscribeTmpl = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Email from Dealroom</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto; padding: 0 1em; line-height: 1.4">
{{if .Bad}}<h1>This link is not valid</h1><p>It may have been cut short by your mail program. Open the web app to change your email settings.</p>
{{else if .Done}}<h1>Unsubscribed</h1><p>You will no longer get email {{if .All}}from Dealroom{{else}}about {{.RoomName}}{{end}}.
You can turn it on again in the web app.</p>
{{else}}<h1>Stop these emails?</h1>
<form method="post">
{{if .RoomName}}<p><button type="submit" name="scope" value="room">Stop email about {{.RoomName}}</button></p>
{{end}}<p><button type="submit" name="scope" value="all">Stop all email from Dealroom</button></p>
</form>{{end}}
</body></html>
`))

type unsubscribeView struct {
	Bad, Done, All bool
	RoomName       string
}

// unsubscribePage shows what the link would turn off, with buttons: a GET
// changes nothing (mail scanners follow links).
func (s *Server) unsubscribePage(c echo.Context) error {
	n := s.cfg.Notifier
	if n == nil {
		return errNoNotifications
	}
	u, err := n.Unsubscription(c.Request().Context(), c.QueryParam("token"))
	return s.renderUnsubscribe(c, u, err, false, false)
}

// unsubscribe turns the email off: of the link's room, or of every room
// with the form's scope=all. The one-click POST of a mail provider
// (List-Unsubscribe=One-Click) turns off the room's.
func (s *Server) unsubscribe(c echo.Context) error {
	n := s.cfg.Notifier
	if n == nil {
		return errNoNotifications
	}
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 4<<10)
	all := c.FormValue("scope") == "all"
	u, err := n.Unsubscribe(r.Context(), c.QueryParam("token"), all)
	return s.renderUnsubscribe(c, u, err, true, all || u.Room == "")
}

func (s *Server) renderUnsubscribe(c echo.Context, u notify.Unsubscription, err error, done, all bool) error {
	status := http.StatusOK
	// A link that names no room (a digest's, about every room) offers
	// only to stop all email.
	v := unsubscribeView{Done: done, All: all, RoomName: u.RoomName}
	switch {
	case dealroom.ErrorCode(err) == dealroom.ENOTFOUND:
		status, v = http.StatusNotFound, unsubscribeView{Bad: true}
	case err != nil:
		return err
	}
	if v.RoomName == "" && u.Room != "" {
		v.RoomName = "this room"
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
	c.Response().WriteHeader(status)
	return unsubscribeTmpl.Execute(c.Response(), v)
}

// notificationSettings is the body of GET and PUT /me/notifications.
type notificationSettings struct {
	Email   string               `json:"email"`  // instant or off
	Digest  string               `json:"digest"` // daily, weekly or off
	Address string               `json:"address"`
	Rooms   []roomNotificationIn `json:"rooms"`
	// Reminders (on or off) and the time zone of their days.
	Reminders string `json:"reminders"`
	Timezone  string `json:"timezone"`
}

type roomNotificationIn struct {
	RoomID string `json:"room_id"`
	Email  string `json:"email"`
}

// notificationChange is the body of PUT /me/notifications: one room's
// email, all email, or the digest.
type notificationChange struct {
	RoomID    string `json:"room_id"`
	Email     string `json:"email"`
	Digest    string `json:"digest"`
	Reminders string `json:"reminders"`
	Timezone  string `json:"timezone"`
}

func emailWord(off bool) string {
	if off {
		return "off"
	}
	return "instant"
}

func (s *Server) myNotifications(c echo.Context) error {
	n := s.cfg.Notifier
	if n == nil {
		return errNoNotifications
	}
	a := actor(c)
	p, err := n.Preferences(c.Request().Context(), a.ID)
	if err != nil {
		return err
	}
	out := notificationSettings{Email: emailWord(p.EmailOff), Digest: notify.DigestOf(&p, a.Kind == dealroom.Customer),
		Address: p.Email, Rooms: []roomNotificationIn{}, Reminders: "on", Timezone: p.TimeZone}
	if p.RemindersOff {
		out.Reminders = "off"
	}
	if out.Timezone == "" {
		out.Timezone = "UTC"
	}
	for _, r := range p.RoomsOff {
		out.Rooms = append(out.Rooms, roomNotificationIn{RoomID: r, Email: "off"})
	}
	return c.JSON(http.StatusOK, out)
}

// setMyNotifications changes the choices given: the email of a room the
// person is a member of (room_id), or of all email, the digest, the
// reminders and the time zone. Every value is checked before any is
// written.
func (s *Server) setMyNotifications(c echo.Context) error {
	n := s.cfg.Notifier
	if n == nil {
		return errNoNotifications
	}
	var in notificationChange
	if err := s.bind(c, &in); err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actor(c)
	if err := in.check(); err != nil {
		return err
	}
	if in.Timezone != "" {
		if err := n.SetTimeZone(ctx, a.ID, in.Timezone); err != nil {
			return err
		}
	}
	if in.Reminders != "" {
		if err := n.SetReminders(ctx, a.ID, in.Reminders == "off"); err != nil {
			return err
		}
	}
	if in.Digest != "" {
		if err := n.SetDigest(ctx, a.ID, in.Digest); err != nil {
			return err
		}
	}
	if in.Email == "" {
		return s.myNotifications(c)
	}
	if in.RoomID != "" {
		m, err := s.svc.Store.Member(ctx, in.RoomID, a.ID)
		if err != nil {
			return err
		}
		if m == nil {
			return dealroom.NotFound("room", in.RoomID)
		}
	}
	if err := n.SetPreference(ctx, a.ID, in.RoomID, in.Email == "off"); err != nil {
		return err
	}
	return s.myNotifications(c)
}

// check refuses a change that names nothing or a value that is not one,
// before anything is written: email when nothing else is given, and the
// choices that are one for all rooms with a room_id.
func (in notificationChange) check() error {
	others := in.Digest != "" || in.Reminders != "" || in.Timezone != ""
	if (!others || in.Email != "") && in.Email != "instant" && in.Email != "off" {
		return dealroom.Invalid("email", "email must be instant or off")
	}
	for _, f := range []struct{ name, v string }{{"digest", in.Digest}, {"reminders", in.Reminders}, {"timezone", in.Timezone}} {
		if f.v != "" && in.RoomID != "" {
			return dealroom.Invalid(f.name, "the %s is one for all rooms: give no room_id with it", f.name)
		}
	}
	switch in.Digest {
	case "", notify.Daily, notify.Weekly, notify.Off:
	default:
		return dealroom.Invalid("digest", "digest must be daily, weekly or off")
	}
	if in.Reminders != "" && in.Reminders != "on" && in.Reminders != "off" {
		return dealroom.Invalid("reminders", "reminders must be on or off")
	}
	if in.Timezone != "" {
		return notify.CheckZone(in.Timezone)
	}
	return nil
}
