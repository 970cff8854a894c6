package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/room"
	"dealroom/staff"
)

// The face of Dealroom for a CRM and other integrations: rooms by their
// CRM id (PUT and GET /rooms/by-external-id/{external_id}), a room's
// timeline as JSON lines (/rooms/{room}/export.jsonl), and the service
// accounts whose API keys integrations use (/admin/service-accounts).
//
// The upsert is a REST route of its own rather than an op of ops.go: it
// names a room by its external id, which a websocket command (whose room
// is the one it is subscribed to) does not carry, its answer's status
// tells whether it created the room, and it is made for integrations,
// which use API keys, and API keys open no websocket.

// registerCRM adds the routes of this file to the authenticated group.
func (s *Server) registerCRM(a *echo.Group) {
	a.PUT("/rooms/by-external-id/:external_id", s.upsertRoom)
	a.GET("/rooms/by-external-id/:external_id", s.roomByExternalID)
	a.GET("/rooms/:room/export.jsonl", s.exportRoom)
	a.GET("/admin/service-accounts", s.listServiceAccounts)
	a.POST("/admin/service-accounts", s.createServiceAccount)
	a.DELETE("/admin/service-accounts/:id", s.revokeServiceAccount)
	a.GET("/admin/backup", s.backup)
}

// scopes are the routes a service account may call, each with the scope
// it needs (the group's path and the route's, as Echo names it). Every
// other route is refused to service accounts: a new route is closed to
// them until it is listed here. POST /rooms is not listed: it would make
// the account the owner and a member of the room; the upsert names a
// person as the owner instead.
var scopes = map[string]staff.Scope{
	"GET /api/v1/me":                                staff.RoomsRead,
	"GET /api/v1/rooms":                             staff.RoomsRead,
	"GET /api/v1/rooms/:room":                       staff.RoomsRead,
	"GET /api/v1/rooms/:room/events":                staff.RoomsRead,
	"GET /api/v1/rooms/:room/members":               staff.RoomsRead,
	"GET /api/v1/rooms/:room/tasks":                 staff.RoomsRead,
	"GET /api/v1/rooms/by-external-id/:external_id": staff.RoomsRead,
	"PATCH /api/v1/rooms/:room":                     staff.RoomsWrite,
	"PUT /api/v1/rooms/by-external-id/:external_id": staff.RoomsWrite,
	"GET /api/v1/rooms/:room/export.jsonl":          staff.ExportRead,
	"GET /api/v1/admin/backup":                      staff.BackupRead,
}

// checkScope refuses a service account a route its scopes do not name.
// People pass: their role and membership decide, in the service.
func checkScope(c echo.Context, a dealroom.Actor) error {
	if !a.IsService() {
		return nil
	}
	sc, ok := scopes[c.Request().Method+" "+c.Path()]
	if !ok {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "API keys cannot call this route")
	}
	if !staff.Has(a, sc) {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "this API key lacks the %s scope", sc)
	}
	return nil
}

// staffService returns the service accounts' service, or why there is
// none.
func (s *Server) staffService() (*staff.Service, error) {
	if s.cfg.Staff == nil {
		return nil, dealroom.Errorf(dealroom.EUNAVAILABLE, "service accounts are not enabled on this server")
	}
	return s.cfg.Staff, nil
}

// upsertRoom creates or updates the room of a CRM opportunity: 201 with
// the room when it made it, 200 when it was there.
func (s *Server) upsertRoom(c echo.Context) error {
	st, err := s.staffService()
	if err != nil {
		return err
	}
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	var in room.Upsert
	if err := s.bind(c, &in); err != nil {
		return err
	}
	a, ext := actor(c), c.Param("external_id")
	if a.IsCustomer() {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "only staff can create rooms")
	}
	// What the input says is checked before the owner is looked up.
	if err := in.Check(ext); err != nil {
		return err
	}
	owner, err := st.Owner(c.Request().Context(), in.OwnerEmail)
	if err != nil {
		return err
	}
	if owner.ID == "" {
		return dealroom.Invalid("owner_email", "owner_email names no staff member this server knows: they must have signed in once")
	}
	res, err := s.svc.UpsertRoom(c.Request().Context(), a, ext, in, owner, key)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return c.JSON(status, res.Room)
}

func (s *Server) roomByExternalID(c echo.Context) error {
	r, p, err := s.svc.RoomByExternalID(c.Request().Context(), actor(c), c.Param("external_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p.Present(r))
}

// exportRoom streams a room's timeline as JSON lines, one event a line in
// seq order (room.Service.Export: the timeline's rules, a page of the
// store at a time). A refusal before the first line is a plain error
// answer; an error once the answer has begun cuts the connection, so that
// a cut export is never taken for a whole one.
func (s *Server) exportRoom(c echo.Context) error {
	id := c.Param("room")
	var (
		w   *bufio.Writer
		enc *json.Encoder
	)
	begin := func() {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "application/jsonl; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", "room-"+id+".jsonl"))
		h.Set("Cache-Control", "no-store")
		c.Response().WriteHeader(http.StatusOK)
		w = bufio.NewWriterSize(s.transfer(c).answer(c.Response()), 32<<10)
		enc = json.NewEncoder(w)
	}
	err := s.svc.Export(c.Request().Context(), actor(c), id, func(ev room.Event) error {
		if w == nil {
			begin()
		}
		return enc.Encode(ev)
	})
	switch {
	case err != nil && w == nil:
		return err // nothing is sent yet
	case err != nil:
		s.log.Warn("a room's export stopped", "room", id, "err", err)
		panic(http.ErrAbortHandler)
	case w == nil:
		begin() // no event the actor may see
	}
	if err := w.Flush(); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// accountList is the admin's list of service accounts.
type accountList struct {
	Items []staff.Account `json:"items"`
}

func (s *Server) listServiceAccounts(c echo.Context) error {
	st, err := s.staffService()
	if err != nil {
		return err
	}
	all, err := st.Accounts(c.Request().Context(), actor(c))
	if err != nil {
		return err
	}
	if all == nil {
		all = []staff.Account{}
	}
	return c.JSON(http.StatusOK, accountList{Items: all})
}

// newAccount is the input of a new service account.
type newAccount struct {
	Name   string        `json:"name"`
	Scopes []staff.Scope `json:"scopes"`
}

// createServiceAccount answers the new account with its key, shown this
// once.
func (s *Server) createServiceAccount(c echo.Context) error {
	st, err := s.staffService()
	if err != nil {
		return err
	}
	if err := onlyAdmin(actor(c), "manage service accounts"); err != nil {
		return err // before the body is read
	}
	idem, err := idemKey(c)
	if err != nil {
		return err
	}
	var in newAccount
	if err := s.bind(c, &in); err != nil {
		return err
	}
	acct, key, err := st.Create(c.Request().Context(), actor(c), in.Name, in.Scopes, idem)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, struct {
		staff.Account
		Key string `json:"key"`
	}{acct, key})
}

func (s *Server) revokeServiceAccount(c echo.Context) error {
	st, err := s.staffService()
	if err != nil {
		return err
	}
	acct, err := st.Revoke(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, acct)
}

// onlyAdmin refuses everyone but admins who are people.
func onlyAdmin(a dealroom.Actor, what string) error {
	if a.Kind != dealroom.Staff || a.Role != dealroom.Admin || a.IsService() {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "only admins %s", what)
	}
	return nil
}
