package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/room"
	"dealroom/task"
)

func (s *Server) me(c echo.Context) error {
	a := actor(c)
	return c.JSON(http.StatusOK, map[string]any{"user_id": a.ID, "name": a.Name, "email": a.Email,
		"kind": a.Kind, "role": a.Role})
}

func (s *Server) templates(c echo.Context) error {
	if actor(c).IsCustomer() {
		return dealroom.Errorf(dealroom.EFORBIDDEN, "templates are for staff")
	}
	return c.JSON(http.StatusOK, list[room.Template]{Items: room.Templates})
}

func (s *Server) createRoom(c echo.Context) error {
	var d room.Draft
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	if err := s.bind(c, &d); err != nil {
		return err
	}
	r, err := s.svc.CreateRoom(c.Request().Context(), actor(c), d, key)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) listRooms(c echo.Context) error {
	a := actor(c)
	f := room.RoomFilter{Stage: room.Stage(c.QueryParam("stage")), Owner: c.QueryParam("owner"),
		CloseWindow: room.CloseWindow(c.QueryParam("close_window"))}
	var err error
	if f.Before, f.Limit, err = pageParams(c, 50, 200); err != nil {
		return err
	}
	want := f.Limit
	f.Limit++ // one more tells whether there is a next page
	rooms, err := s.svc.Rooms(c.Request().Context(), a, f)
	if err != nil {
		return err
	}
	out := list[any]{Items: []any{}}
	if len(rooms) > want {
		out.NextCursor = encodeCursor(rooms[want-1].Room.ID)
		rooms = rooms[:want]
	}
	unread, err := s.svc.Unread(c.Request().Context(), a, rooms)
	if err != nil {
		return err
	}
	signals, err := s.svc.Signals(c.Request().Context(), a, rooms)
	if err != nil {
		return err
	}
	for i := range rooms {
		out.Items = append(out.Items, presentListed(&rooms[i], unread[rooms[i].Room.ID], signals[rooms[i].Room.ID]))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getRoom(c echo.Context) error {
	r, p, err := s.svc.Room(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	s.engage.page(c, r.ID, p)
	h, err := s.svc.PlanHealth(c.Request().Context(), actor(c), r.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withHealth(p.Present(r), h))
}

func (s *Server) events(c echo.Context) error {
	after := int64(0)
	raw, present, err := queryValue(c, "after")
	if err != nil {
		return err
	}
	if !present {
		if raw, err = decodeCursor(c); err != nil {
			return err
		}
	}
	if raw != "" || present {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 {
			return dealroom.Invalid("after", "after must be a seq: a whole number, 0 or more")
		}
		after = n
	}
	limit, err := limitParam(c, 100, room.MaxEventPage)
	if err != nil {
		return err
	}
	page, err := s.svc.EventPage(c.Request().Context(), actor(c), c.Param("room"), after, limit)
	if err != nil {
		return err
	}
	out := eventList{Items: page.Items}
	if out.Items == nil {
		out.Items = []room.Event{}
	}
	if page.NextAfter > 0 {
		out.NextCursor = encodeCursor(strconv.FormatInt(page.NextAfter, 10))
		out.NextAfter = &page.NextAfter
	}
	return c.JSON(http.StatusOK, out)
}

// eventList is a page of the timeline: a customer's page may be short, or
// empty, and have more after it (room.EventPage).
type eventList struct {
	Items      []room.Event `json:"items"`
	NextCursor string       `json:"next_cursor,omitempty"`
	NextAfter  *int64       `json:"next_after,omitempty"`
}

func (s *Server) listMembers(c echo.Context) error {
	ms, err := s.svc.Members(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	page, err := pageOf(c, ms, func(m room.Member) string { return m.UserID }, room.MaxMembers, room.MaxMembers)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) listTasks(c echo.Context) error {
	ts, err := s.svc.Tasks(c.Request().Context(), actor(c), c.Param("room"))
	if err != nil {
		return err
	}
	page, err := pageOf(c, ts, func(t task.Task) string { return t.ID }, room.MaxTasks, room.MaxTasks)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) getTask(c echo.Context) error {
	t, err := s.svc.Task(c.Request().Context(), actor(c), c.Param("room"), c.Param("task"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t)
}

func (s *Server) myTasks(c echo.Context) error {
	var f room.MyTaskFilter
	if raw, present, err := queryValue(c, "status"); err != nil {
		return err
	} else if present {
		if raw == "" {
			return dealroom.Invalid("status", "status must name one or more of open, in_progress, done, blocked")
		}
		for _, st := range splitList(raw) {
			v, err := task.ParseStatus(task.Status(st))
			if err != nil {
				return err
			}
			f.Statuses = append(f.Statuses, v)
		}
	}
	if raw, present, err := queryValue(c, "due_before"); err != nil {
		return err
	} else if present {
		d, err := task.ParseDate("due_before", raw)
		if err != nil {
			return err
		}
		f.DueBefore = &d
	}
	f.Room = c.QueryParam("room")
	ts, err := s.svc.MyTasks(c.Request().Context(), actor(c), f)
	if err != nil {
		return err
	}
	page, err := pageOf(c, ts, func(t task.Task) string { return t.ID }, 100, 500)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}
