package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/webhook"
)

// The admins' webhook endpoints (package webhook): /admin/webhooks. Every
// route is for admins who are people (webhook.Service refuses others);
// API keys are refused them (they are not in scopes).

// registerWebhooks adds the routes of this file to the authenticated
// group.
func (s *Server) registerWebhooks(a *echo.Group) {
	a.GET("/admin/webhooks", s.listWebhooks)
	a.POST("/admin/webhooks", s.createWebhook)
	a.GET("/admin/webhooks/:id", s.getWebhook)
	a.PATCH("/admin/webhooks/:id", s.updateWebhook)
	a.DELETE("/admin/webhooks/:id", s.deleteWebhook)
	a.POST("/admin/webhooks/:id/secret", s.rotateWebhookSecret)
	a.GET("/admin/webhooks/:id/deliveries", s.webhookDeliveries)
	a.POST("/admin/webhooks/:id/replay", s.replayWebhook)
}

func (s *Server) webhooks() (*webhook.Service, error) {
	if s.cfg.Webhooks == nil {
		return nil, dealroom.Errorf(dealroom.EUNAVAILABLE, "webhooks are not enabled on this server")
	}
	return s.cfg.Webhooks, nil
}

// endpointList is the admin's list of endpoints.
type endpointList struct {
	Items []webhook.Endpoint `json:"items"`
}

// endpointWithSecret is an endpoint as its creation and its secret's
// rotation answer it: with the secret, shown this once.
type endpointWithSecret struct {
	webhook.Endpoint
	Secret string `json:"secret"`
}

func (s *Server) listWebhooks(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	all, err := w.List(c.Request().Context(), actor(c))
	if err != nil {
		return err
	}
	if all == nil {
		all = []webhook.Endpoint{}
	}
	return c.JSON(http.StatusOK, endpointList{Items: all})
}

func (s *Server) createWebhook(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	key, err := idemKey(c)
	if err != nil {
		return err
	}
	var in webhook.Input
	if err := s.bind(c, &in); err != nil {
		return err
	}
	e, secret, _, err := w.Create(c.Request().Context(), actor(c), in, key)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, endpointWithSecret{e, secret})
}

func (s *Server) getWebhook(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	e, err := w.Get(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) updateWebhook(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	var p webhook.Patch
	if err := s.bind(c, &p); err != nil {
		return err
	}
	e, err := w.Update(c.Request().Context(), actor(c), c.Param("id"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) deleteWebhook(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	if err := w.Delete(c.Request().Context(), actor(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) rotateWebhookSecret(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	e, secret, err := w.RotateSecret(c.Request().Context(), actor(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, endpointWithSecret{e, secret})
}

// deliveryList is an endpoint's delivery log.
type deliveryList struct {
	Items []webhook.Delivery `json:"items"`
}

func (s *Server) webhookDeliveries(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > webhook.MaxLog {
			return dealroom.Invalid("limit", "must be a number from 1 to %d", webhook.MaxLog)
		}
		limit = n
	}
	all, err := w.Deliveries(c.Request().Context(), actor(c), c.Param("id"), limit)
	if err != nil {
		return err
	}
	if all == nil {
		all = []webhook.Delivery{}
	}
	return c.JSON(http.StatusOK, deliveryList{Items: all})
}

// replayIn is the body of a replay.
type replayIn struct {
	Room    string `json:"room"`
	FromSeq int64  `json:"from_seq"`
}

func (s *Server) replayWebhook(c echo.Context) error {
	w, err := s.webhooks()
	if err != nil {
		return err
	}
	var in replayIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	if in.Room == "" {
		return dealroom.Invalid("room", "is required")
	}
	res, err := w.Replay(c.Request().Context(), actor(c), c.Param("id"), in.Room, in.FromSeq)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, res)
}
