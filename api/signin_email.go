package api

import (
	"context"
	"html/template"
	"mime"
	"net/http"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"dealroom"
	"dealroom/mail"
	"dealroom/room"
	"dealroom/session"
)

// Customers' sign-in links by email (package session's Links):
//
//	POST /api/v1/auth/email-link         {"email"}: a customer on a new
//	                                     device asks for a link; 202 always
//	POST /api/v1/auth/email-link/redeem  {"code"}: the link's page redeems
//	                                     its code once; a session begins
//
// The answer to a request is the same, at once, whether or not the
// address is a member's: the work (is it a customer in a room, has the
// address had its links for now, the code, the mail) is done afterwards
// by one sender goroutine, so that neither the answer nor its timing
// tells who is a member. The link is {public URL}/sign-in/email#code=...:
// the code is in the fragment, which browsers never send, so it reaches
// no server log; and the page only redeems it when the person clicks, so
// a mail scanner that opens the link uses nothing.

const emailLinkPath = "/sign-in/email"

// Bounds of the sign-in link routes, per client address (on top of the
// requests' own budget): ten requests, then one a minute.
const (
	linkBurst     = 10
	linkPerMinute = 1
	// linkQueue bounds the links waiting for the sender goroutine.
	linkQueue = 100
	// linkSendTimeout bounds the work of one link, the mail's retries
	// included.
	linkSendTimeout = 2 * time.Minute
	// linkDrain bounds how long Close lets queued links go out.
	linkDrain = 10 * time.Second
)

// errNoEmailLinks answers when the server cannot send sign-in links.
var errNoEmailLinks = dealroom.Errorf(dealroom.ENOTFOUND,
	"sign-in links by email are not offered here; ask your contact in the room for a new invite")

// emailLinks sends sign-in links in the background; nil on a server
// without mail, public URL or sessions.
type emailLinks struct {
	links  session.Links
	mail   mail.Sender
	limits *middleware.RateLimiterMemoryStore // "ask:" or "redeem:" and the client's address

	start  sync.Once
	mu     sync.Mutex
	closed bool
	queue  chan string // addresses asked for
	done   chan struct{}
	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
}

// newEmailLinks returns the sender of sign-in links of cfg, nil when it
// lacks what links need: a mail sender, the public address the links
// point at, and the store of sessions and tickets.
func newEmailLinks(cfg Config) *emailLinks {
	if cfg.Mail == nil || cfg.PublicURL == "" || cfg.Sessions == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &emailLinks{
		links: session.Links{Store: cfg.Sessions},
		mail:  cfg.Mail,
		limits: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(linkPerMinute / 60.0), Burst: linkBurst, ExpiresIn: linkBurst * time.Minute / linkPerMinute}),
		queue: make(chan string, linkQueue), done: make(chan struct{}), ctx: ctx, cancel: cancel,
	}
}

// allow takes one request of the client's budget for kind.
func (l *emailLinks) allow(c echo.Context, kind string) error {
	if ok, err := l.limits.Allow(kind + ":" + c.RealIP()); !ok || err != nil {
		c.Response().Header().Set("Retry-After", "60")
		return errRateLimited
	}
	return nil
}

// enqueue hands an address to the sender goroutine (started with the
// first).
func (s *Server) enqueueLink(email string) error {
	l := s.links
	l.start.Do(func() { go s.sendLinks() })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return dealroom.Errorf(dealroom.EUNAVAILABLE, "the server is shutting down; try again in a moment")
	}
	select {
	case l.queue <- email:
		return nil
	default:
		return dealroom.Errorf(dealroom.ERATELIMITED, "too many sign-in links are being sent; try again in a minute")
	}
}

// sendLinks sends the links asked for, one after the other, until Close.
func (s *Server) sendLinks() {
	l := s.links
	defer close(l.done)
	for email := range l.queue {
		ctx, cancel := context.WithTimeout(l.ctx, linkSendTimeout)
		s.sendLink(ctx, email)
		cancel()
	}
}

// close stops taking links, lets the queued ones go out for a while, and
// waits for the sender goroutine. Safe to call twice.
func (l *emailLinks) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	l.start.Do(func() { close(l.done) }) // never started: nothing to wait for
	select {
	case <-l.done:
	case <-time.After(linkDrain):
		l.cancel()
		<-l.done
	}
	l.cancel()
}

// sendLink sends a sign-in link to email if it is a customer's in a room
// and the address has not had its links for now. Nothing of it reaches
// the person who asked: failures are logged (by user id, not address).
func (s *Server) sendLink(ctx context.Context, email string) {
	a, ok, err := s.customerByEmail(ctx, email)
	if err != nil {
		s.log.Warn("a sign-in link could not be sent: looking up the member failed", "err", err)
		return
	}
	if !ok {
		return
	}
	code, err := s.links.links.Issue(ctx, email)
	if err != nil {
		s.log.Warn("a sign-in link could not be sent: making its code failed", "user", a.ID, "err", err)
		return
	}
	if code == "" {
		s.log.Info("a sign-in link was not sent: the address had its links for now", "user", a.ID)
		return
	}
	link := strings.TrimRight(s.cfg.PublicURL, "/") + emailLinkPath + "#code=" + code
	m, err := linkMessage(a, link)
	if err == nil {
		err = s.links.mail.Send(ctx, m)
	}
	if err != nil {
		s.log.Error("a sign-in link could not be sent", "user", a.ID, "err", err)
	}
}

// customerByEmail returns the customer whose address email is, when they
// are a member of a room (their name is their membership's); false when
// nobody with that address is.
func (s *Server) customerByEmail(ctx context.Context, email string) (dealroom.Actor, bool, error) {
	id := room.CustomerID(email)
	rooms, err := s.svc.Store.Rooms(ctx, room.RoomFilter{Member: id, Limit: 1})
	if err != nil || len(rooms) == 0 {
		return dealroom.Actor{}, false, err
	}
	ms, err := s.svc.Store.Memberships(ctx, id, []string{rooms[0].ID})
	if err != nil {
		return dealroom.Actor{}, false, err
	}
	m, ok := ms[rooms[0].ID]
	if !ok || m.Kind != dealroom.Customer {
		return dealroom.Actor{}, false, nil
	}
	return dealroom.Actor{ID: id, Name: m.Name, Email: email, Kind: dealroom.Customer}, true, nil
}

var linkHTML = template.Must(template.New("link").Parse(`<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hello {{.Name}},</p>
<p>Here is your link to sign in to your deal room as {{.Email}}. It works once, within {{.Minutes}} minutes.</p>
<p><a href="{{.Link}}">Sign in</a></p>
<p>If you did not ask for it, you can ignore this message: nobody signs in without the link.</p>
</body></html>
`))

// linkMessage is the mail of a sign-in link.
func linkMessage(a dealroom.Actor, link string) (mail.Message, error) {
	minutes := int(session.DefaultLinkLife / time.Minute)
	var html strings.Builder
	err := linkHTML.Execute(&html, struct {
		Name, Email, Link string
		Minutes           int
	}{a.Name, a.Email, link, minutes})
	if err != nil {
		return mail.Message{}, err
	}
	text := "Hello " + a.Name + ",\n\n" +
		"Here is your link to sign in to your deal room as " + a.Email + ". It works once, within " +
		strconv.Itoa(minutes) + " minutes:\n\n" +
		link + "\n\n" +
		"If you did not ask for it, you can ignore this message: nobody signs in without the link.\n"
	return mail.Message{To: a.Email, Subject: "Your sign-in link", Text: text, HTML: html.String()}, nil
}

// requireJSON refuses a body that is not sent as JSON: an HTML form of
// another site cannot send JSON here without the browser asking this
// server first (CORS), which it refuses.
func requireJSON(c echo.Context) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if mt != "application/json" {
		return dealroom.Errorf(dealroom.EBADREQUEST, "the body must be JSON (Content-Type: application/json)")
	}
	return nil
}

// checkAddress returns email trimmed when it is one plain address.
func checkAddress(email string) (string, error) {
	email = strings.TrimSpace(email)
	a, err := netmail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") {
		return "", dealroom.Invalid("email", "email must be an email address like name@company.com")
	}
	return email, nil
}

// linkSent is the answer to every accepted request for a link.
type linkSent struct {
	Sent bool `json:"sent"`
}

// requestEmailLink takes a request for a sign-in link. It answers the
// same whether or not a link goes out.
func (s *Server) requestEmailLink(c echo.Context) error {
	if s.links == nil {
		return errNoEmailLinks
	}
	if err := requireJSON(c); err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
	}
	if err := s.bind(c, &in); err != nil {
		return err
	}
	email, err := checkAddress(in.Email)
	if err != nil {
		return err
	}
	if err := s.links.allow(c, "ask"); err != nil {
		return err
	}
	if err := s.enqueueLink(email); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusAccepted, linkSent{Sent: true})
}

// redeemEmailLink uses a link's code once and begins the customer's
// browser session.
func (s *Server) redeemEmailLink(c echo.Context) error {
	if s.links == nil {
		return errNoEmailLinks
	}
	if err := requireJSON(c); err != nil {
		return err
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if err := s.links.allow(c, "redeem"); err != nil {
		return err
	}
	ctx := c.Request().Context()
	email, err := s.links.links.Redeem(ctx, in.Code)
	if err != nil {
		return err
	}
	// Still a member? One removed since the link was sent gets nothing.
	a, ok, err := s.customerByEmail(ctx, email)
	if err != nil {
		return err
	}
	if !ok {
		return session.ErrLinkRefused
	}
	sess, err := s.beginSession(c, a, session.ViaEmail, time.Time{})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusCreated, answerOf(sess))
}
