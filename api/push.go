package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/internal/netguard"
	"dealroom/push"
)

// Push to phones: the server's VAPID public key, which the web app
// subscribes with, and the caller's devices (their push subscriptions).
// Without Config.Push they answer 404.

// PushDevices is what the push routes need.
type PushDevices struct {
	Store push.Store
	// PublicKey is the VAPID public key (unpadded base64url).
	PublicKey string
	// Guard checks the endpoints browsers send (https, a public address
	// unless allowed): the server will post to them.
	Guard *netguard.Guard
	Now   func() time.Time
}

var errNoPush = dealroom.Errorf(dealroom.ENOTFOUND, "this server does not push notifications")

func (s *Server) registerPush(signedIn *echo.Group) {
	signedIn.GET("/push/key", s.pushKey)
	signedIn.GET("/me/push-subscriptions", s.myPushSubscriptions)
	signedIn.POST("/me/push-subscriptions", s.addPushSubscription)
	signedIn.DELETE("/me/push-subscriptions/:id", s.removePushSubscription)
}

// pushSubscriptionIn is the body of POST /me/push-subscriptions: what the
// browser's PushSubscription gives.
type pushSubscriptionIn struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// pushSubscriptionOut is a device as the caller sees it: not its keys.
type pushSubscriptionOut struct {
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	CreatedAt time.Time `json:"created_at"`
}

func subscriptionOut(p push.Subscription) pushSubscriptionOut {
	return pushSubscriptionOut{ID: p.ID, Endpoint: p.Endpoint, CreatedAt: p.CreatedAt}
}

func (s *Server) pushKey(c echo.Context) error {
	p := s.cfg.Push
	if p == nil {
		return errNoPush
	}
	return c.JSON(http.StatusOK, map[string]string{"public_key": p.PublicKey})
}

func (s *Server) myPushSubscriptions(c echo.Context) error {
	p := s.cfg.Push
	if p == nil {
		return errNoPush
	}
	subs, err := p.Store.PushSubscriptions(c.Request().Context(), actor(c).ID)
	if err != nil {
		return err
	}
	out := []pushSubscriptionOut{}
	for _, sub := range subs {
		out = append(out, subscriptionOut(sub))
	}
	return c.JSON(http.StatusOK, map[string]any{"subscriptions": out})
}

// addPushSubscription keeps the caller's device: the same endpoint again
// replaces its keys (and moves it to the caller, when someone else had
// turned notifications on in the same browser).
func (s *Server) addPushSubscription(c echo.Context) error {
	p := s.cfg.Push
	if p == nil {
		return errNoPush
	}
	var in pushSubscriptionIn
	if err := s.bind(c, &in); err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actor(c)
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	sub, err := push.NewSubscription(p.Guard, a.ID, in.Endpoint, in.Keys.P256dh, in.Keys.Auth, now())
	if err != nil {
		return err
	}
	have, err := p.Store.PushSubscriptions(ctx, a.ID)
	if err != nil {
		return err
	}
	if len(have) >= push.MaxPerUser && !slices.ContainsFunc(have, func(h push.Subscription) bool { return h.ID == sub.ID }) {
		return dealroom.Errorf(dealroom.ECONFLICT, "notifications are on for %d devices already: turn one off first", len(have))
	}
	if err := p.Store.AddPushSubscription(ctx, sub); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, subscriptionOut(sub))
}

func (s *Server) removePushSubscription(c echo.Context) error {
	p := s.cfg.Push
	if p == nil {
		return errNoPush
	}
	if err := p.Store.RemovePushSubscription(c.Request().Context(), actor(c).ID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
