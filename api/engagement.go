package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/presence"
	"dealroom/room"
)

// Engagement (room/engagement.go): who came to a room, on what device, for
// how long, and which files they opened, counted from what this server
// sees: the websocket's presence (a device viewing the room, through the
// hub's DeviceWatch), page loads (GET /rooms/{room}) and the download
// route. None of it is an event, so none of these routes is an operation
// (ops.go).

// engagementFlush is how often what the tally gathered is written.
const engagementFlush = 5 * time.Second

// engagement is the server's tally and its writer; nil when the store
// keeps no engagement.
type engagement struct {
	tally *room.Tally
	stop  context.CancelFunc
	done  chan struct{}
	once  sync.Once
}

// newEngagement starts the tally's writer, and has the hub (if any) tell
// it what devices do.
func newEngagement(s *Server) *engagement {
	es, ok := s.svc.Store.(room.EngagementStore)
	if !ok {
		return nil
	}
	e := &engagement{tally: &room.Tally{Store: es, Now: s.svc.Now}, done: make(chan struct{})}
	ctx, stop := context.WithCancel(context.Background())
	e.stop = stop
	go func() {
		defer close(e.done)
		e.tally.Run(ctx, engagementFlush, func(err error) {
			s.log.Warn("engagement could not be written; it is kept for the next try", "err", err)
		})
	}()
	if s.cfg.Hub != nil {
		s.cfg.Hub.WatchDevices(e.device)
	}
	return e
}

// close writes what waits and stops the writer. Safe to call twice.
func (e *engagement) close() {
	if e == nil {
		return
	}
	e.once.Do(func() {
		e.stop()
		<-e.done
	})
}

// kind tells the device kind of a User-Agent by a few rules, in the
// order browsers' own advice gives them: a tablet says iPad, Tablet, or
// Android without Mobile; a phone says Mobi, iPhone or Android; a desktop
// names a desktop system. An iPad that asks for desktop pages says it is a
// Mac, and counts as a desktop; a headless browser counts as the system it
// runs on. Anything else (a script, no User-Agent) is other. A parsing
// library with a database of agents was tried, and left: it takes 0.16 s
// and memory to load, and names headless Chrome a bot, for three kinds
// these rules tell.
func kind(ua string) room.DeviceKind {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case has("iPad") || has("Tablet") || has("Kindle") || has("Silk/") || has("Android") && !has("Mobile"):
		return room.Tablet
	case has("Mobi") || has("iPhone") || has("iPod") || has("Android") || has("Windows Phone"):
		return room.Phone
	case has("Windows NT") || has("Macintosh") || has("X11") || has("CrOS") || has("Linux x86_64"):
		return room.Desktop
	}
	return room.Other
}

// device is the hub's DeviceWatch: viewing and typing are viewing the
// room; idle (the page out of view) and leaving are not.
func (e *engagement) device(roomID string, d presence.Device, agent string) {
	dk := kind(agent)
	switch d.State {
	case presence.Viewing, presence.Typing:
		e.tally.Viewing(roomID, d.UserID, d.Kind, dk, d.Session)
	default:
		e.tally.Away(roomID, d.UserID, dk, d.Session)
	}
}

// page counts a load of the room's page by someone who sees it with p.
func (e *engagement) page(c echo.Context, roomID string, p room.Perm) {
	if e == nil {
		return
	}
	e.tally.Page(roomID, actor(c).ID, side(p), kind(c.Request().UserAgent()))
}

// file counts an attachment's bytes served: a GET of the whole file (a
// request for a later range continues an earlier one), as a view when the
// client says it opens the file to look at it (?view=true).
func (e *engagement) file(c echo.Context, roomID, attachment string, view bool) {
	r := c.Request()
	if e == nil || r.Method != http.MethodGet {
		return
	}
	if rg := r.Header.Get("Range"); rg != "" && !strings.HasPrefix(rg, "bytes=0-") {
		return
	}
	a := actor(c)
	s := dealroom.Staff
	if a.IsCustomer() {
		s = dealroom.Customer
	}
	e.tally.File(roomID, attachment, a.ID, s, !view)
}

// flush writes what this instance gathered, so that a read of the figures
// shows the visit that is going on. Errors are left to the next flush.
func (e *engagement) flush(ctx context.Context) {
	if e != nil {
		_ = e.tally.Flush(ctx)
	}
}

func side(p room.Perm) dealroom.Kind {
	if p.Internal {
		return dealroom.Staff
	}
	return dealroom.Customer
}

// registerEngagement adds the engagement routes: the invite preview to the
// public group (rate limited by address), the rest to the authenticated
// one.
func (s *Server) registerEngagement(public, g *echo.Group, limiter echo.MiddlewareFunc) {
	public.GET("/invites/:code", s.previewInvite, limiter)
	g.GET("/rooms/:room/engagement", s.roomEngagement)
	g.GET("/rooms/:room/engagement/me", s.myEngagement)
	g.GET("/rooms/:room/file-reads", s.fileReads)
}

func (s *Server) roomEngagement(c echo.Context) error {
	s.engage.flush(c.Request().Context())
	e, err := s.svc.Engagement(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) myEngagement(c echo.Context) error {
	s.engage.flush(c.Request().Context())
	e, err := s.svc.EngagementOf(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) fileReads(c echo.Context) error {
	s.engage.flush(c.Request().Context())
	fs, err := s.svc.FileReads(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list[room.FileSeen]{Items: fs})
}

// previewInvite needs no token and answers only the room's name and who
// invited; any code that is not a pending invite's is one 404.
func (s *Server) previewInvite(c echo.Context) error {
	p, err := s.svc.PreviewInvite(c.Request().Context(), c.Param("code"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, p)
}
