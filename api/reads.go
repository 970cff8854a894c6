package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/room"
)

// Read state: how far each person has seen a room (room/read.go). A
// marker is not an event, so these routes are not operations (ops.go):
// they append nothing, and carry no idempotency key (setting a marker
// twice is setting it once).

// readInput is the body of PUT /rooms/{room}/read.
type readInput struct {
	Seq *int64 `json:"seq"`
}

// registerReads adds the read-state routes to the authenticated group.
func (s *Server) registerReads(g *echo.Group) {
	g.PUT("/rooms/:room/read", s.setRead)
	g.GET("/rooms/:room/reads", s.listReads)
	g.POST("/me/read-all", s.readAll)
}

func (s *Server) setRead(c echo.Context) error {
	var in readInput
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.Seq == nil {
		return dealroom.Invalid("seq", "seq is required: the highest seq of the room you have seen")
	}
	if _, err := s.svc.SetRead(c.Request().Context(), actor(c), c.Param("room"), *in.Seq); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listReads(c echo.Context) error {
	ms, err := s.svc.Reads(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list[room.ReadMarker]{Items: ms})
}

func (s *Server) readAll(c echo.Context) error {
	if _, err := s.svc.ReadAll(c.Request().Context(), actor(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listedRoom is a room of GET /rooms with what its reader has not seen.
// Room and CustomerRoom are embedded, so their fields stay at the top
// level and unread is one field more.
type (
	listedRoom struct {
		*room.Room
		Unread room.Unread `json:"unread"`
		// Engagement is the customer side's signal (engagement.go):
		// staff's listing only.
		Engagement room.Signal `json:"engagement,omitempty"`
	}
	listedCustomerRoom struct {
		room.CustomerRoom
		Unread room.Unread `json:"unread"`
	}
)

// presentListed shows a listed room as its reader may see it, with unread
// and, to staff, the engagement signal.
func presentListed(l *room.Listed, u room.Unread, sig room.Signal) any {
	if l.Perm.Internal {
		return listedRoom{Room: &l.Room, Unread: u, Engagement: sig}
	}
	return listedCustomerRoom{CustomerRoom: l.Room.ForCustomer(), Unread: u}
}

// Read implements ws.Service: a read frame sets the marker as PUT
// /rooms/{room}/read does.
func (w wsService) Read(ctx context.Context, a dealroom.Actor, roomID string, seq int64) error {
	_, err := w.s.svc.SetRead(ctx, a, roomID, seq)
	return err
}
