package api

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"dealroom"
	"dealroom/internal/strictjson"
)

const actorKey = "dealroom.actor"

// authenticate reads the bearer token, or else the session cookie (see
// session.go), and puts the actor in the context. A cookie-authenticated
// request that changes something without the session's CSRF token is
// refused here, before anything is written.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a, err := s.requestActor(c)
		if err != nil {
			return err
		}
		// The token may have been ended since it was issued.
		if err := s.svc.Authorize(c.Request().Context(), a); err != nil {
			return err
		}
		if err := checkScope(c, a); err != nil {
			return err
		}
		c.Set(actorKey, a)
		if s.cfg.Notifier != nil {
			s.cfg.Notifier.Seen(c.Request().Context(), a)
		}
		if s.cfg.Staff != nil {
			s.cfg.Staff.Seen(c.Request().Context(), a)
		}
		return next(c)
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

func actor(c echo.Context) dealroom.Actor {
	a, _ := c.Get(actorKey).(dealroom.Actor)
	return a
}

// idemKey returns the request's Idempotency-Key, checked: the same rule
// as a websocket command's id (dealroom.ValidKey).
func idemKey(c echo.Context) (string, error) {
	k := c.Request().Header.Get("Idempotency-Key")
	if k != "" && !dealroom.ValidKey(k) {
		return "", dealroom.Errorf(dealroom.EBADREQUEST, "Idempotency-Key must be %s", dealroom.KeyRule())
	}
	return k, nil
}

// bind reads a JSON object into v strictly: unknown fields, wrong types,
// trailing data and oversized bodies are refused with a clear message.
func (s *Server) bind(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return dealroom.Errorf(dealroom.EBADREQUEST, "the body must be JSON (Content-Type: application/json)")
		}
	}
	body := http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
	return decodeJSON(body, v)
}

// body is how request bodies are read: strictly (internal/strictjson,
// the decoder of websocket frames too), a field at fault named.
var body = strictjson.Input{What: "the request body"}

// decodeJSON reads one JSON object from r into v strictly, for bind and
// for a websocket command's data.
func decodeJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return jsonError(err)
	}
	return body.Decode(b, v)
}

// queryValue returns a query parameter that may be given once; present
// tells whether it was given at all (empty included).
func queryValue(c echo.Context, name string) (v string, present bool, err error) {
	vs, ok := c.QueryParams()[name]
	switch {
	case !ok:
		return "", false, nil
	case len(vs) > 1:
		return "", true, dealroom.Invalid(name, "%s is given more than once", name)
	}
	return vs[0], true, nil
}

// jsonError explains a failure to read a request body.
func jsonError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return dealroom.Errorf(dealroom.ETOOLARGE, "the request body is larger than %d bytes", mbe.Limit)
	}
	return dealroom.Errorf(dealroom.EBADREQUEST, "the request body could not be read")
}

// limitParam reads ?limit=, def when absent.
func limitParam(c echo.Context, def, max int) (int, error) {
	raw, present, err := queryValue(c, "limit")
	if err != nil || !present {
		return def, err
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, dealroom.Invalid("limit", "limit must be a whole number of 1 or more")
	}
	if n > max {
		n = max
	}
	return n, nil
}

// list is the contract's paginated list.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// encodeCursor and decodeCursor keep cursors opaque to clients.
func encodeCursor(s string) string {
	if s == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeCursor(c echo.Context) (string, error) {
	raw, _, err := queryValue(c, "cursor")
	if raw == "" {
		return "", err
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) > 200 {
		return "", dealroom.Invalid("cursor", "cursor is not one this server gave out")
	}
	return string(b), nil
}

// pageParams reads a list's page: its cursor (decoded, "" for the first
// page) and its limit (def when not given, at most max).
func pageParams(c echo.Context, def, max int) (cursor string, limit int, err error) {
	if limit, err = limitParam(c, def, max); err != nil {
		return "", 0, err
	}
	cursor, err = decodeCursor(c)
	return cursor, limit, err
}

// pageOf returns one page of an ordered in-memory list: the items after
// the one whose id is the cursor.
func pageOf[T any](c echo.Context, items []T, id func(T) string, def, max int) (list[T], error) {
	after, limit, err := pageParams(c, def, max)
	if err != nil {
		return list[T]{}, err
	}
	start := 0
	if after != "" {
		start = -1
		for i, it := range items {
			if id(it) == after {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return list[T]{}, dealroom.Invalid("cursor", "the item this cursor points at is gone; list again from the start")
		}
	}
	out := list[T]{Items: items[start:]}
	if len(out.Items) > limit {
		out.Items = out.Items[:limit]
		out.NextCursor = encodeCursor(id(out.Items[limit-1]))
	}
	if out.Items == nil {
		out.Items = []T{}
	}
	return out, nil
}
