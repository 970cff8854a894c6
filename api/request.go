package api

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"dealroom"
)

const actorKey = "dealroom.actor"

// authenticate reads the bearer token and puts the actor in the context.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearer(c.Request())
		if !ok {
			return dealroom.Errorf(dealroom.EUNAUTH, "this route needs an Authorization: Bearer <token> header")
		}
		a, err := s.keys.Verify(token)
		if err != nil {
			return err
		}
		// The token may have been ended since it was issued.
		if err := s.svc.Authorize(c.Request().Context(), a); err != nil {
			return err
		}
		c.Set(actorKey, a)
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

// decodeJSON is the strict decoder behind bind, also used for websocket
// command data. Text that is not valid UTF-8 is refused before decoding:
// encoding/json would store U+FFFD in its place.
func decodeJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return jsonError(err)
	}
	if err := dealroom.CheckJSONText("the request body", b); err != nil {
		return err
	}
	br := bufio.NewReader(bytes.NewReader(b))
	for {
		b, err := br.ReadByte()
		if err != nil {
			return jsonError(err)
		}
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		br.UnreadByte()
		if b != '{' {
			return dealroom.Errorf(dealroom.EBADREQUEST, "the request body must be a JSON object")
		}
		break
	}
	dec := json.NewDecoder(br)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return dealroom.Errorf(dealroom.EBADREQUEST, "unexpected data after the JSON object")
	}
	return refuseNulls(b, v)
}

// refuseNulls refuses null for a field that cannot hold it, and an empty
// string for a field of enumerated values (a named string type such as
// Visibility): encoding/json leaves the first at its default, and the
// domain reads the second as "left out", so {"visibility": null} or
// {"visibility": ""} would quietly mean the default where the contract
// allows neither. Fields that can say "null" (pointers, Opt of a PATCH)
// decide for themselves what null means.
func refuseNulls(b []byte, v any) error {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil // decoded already: cannot fail
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) { // the same answer every time
		f, ok := jsonField(t.Elem(), name)
		if !ok {
			continue
		}
		switch string(bytes.TrimSpace(fields[name])) {
		case "null":
			if !nullable(f.Type) {
				return dealroom.Invalid(jsonName(f), "%s must not be null: leave it out instead", jsonName(f))
			}
		case `""`:
			if enumerated(f.Type) {
				return dealroom.Invalid(jsonName(f), "%s must not be empty: leave it out for the default", jsonName(f))
			}
		}
	}
	return nil
}

// jsonField finds the struct field that encoding/json fills from key
// (matched as it does, without regard to case).
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && strings.EqualFold(jsonName(f), key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
		return name
	}
	return f.Name
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// enumerated tells whether a field of type t holds one of a set of words:
// a named string type, also inside a pointer or an Opt.
func enumerated(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(unmarshaler) {
		if v, ok := t.FieldByName("V"); ok {
			t = v.Type // dealroom.Opt[T]
		}
	}
	return t.Kind() == reflect.String && t.PkgPath() != ""
}

// nullable tells whether a field of type t can tell null from absence.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		return true
	}
	return t == reflect.TypeFor[json.RawMessage]() || reflect.PointerTo(t).Implements(unmarshaler)
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

// jsonError explains a decoding failure.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
		de  *dealroom.Error
	)
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &mbe):
		return dealroom.Errorf(dealroom.ETOOLARGE, "the request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return dealroom.Errorf(dealroom.EBADREQUEST, "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return dealroom.Errorf(dealroom.EBADREQUEST, "malformed JSON: the body ends too early")
	case errors.As(err, &syn):
		return dealroom.Errorf(dealroom.EBADREQUEST, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return dealroom.Errorf(dealroom.EBADREQUEST, "the body must be a JSON object")
		}
		return dealroom.Invalid(typ.Field, "%s must be %s, not a JSON %s", typ.Field, kindOf(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return dealroom.Invalid(name, "unknown field %q", name)
	}
	return dealroom.Errorf(dealroom.EBADREQUEST, "the body could not be read as JSON")
}

// kindOf names a Go type the way a JSON user thinks of it.
func kindOf(t string) string {
	switch {
	case t == "string" || strings.HasSuffix(t, "Status") || strings.HasSuffix(t, "Visibility") ||
		strings.HasSuffix(t, "Stage") || strings.HasSuffix(t, "Window") || strings.HasSuffix(t, "Access") ||
		strings.HasSuffix(t, "Kind") || strings.HasSuffix(t, "RoleInRoom"):
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "float") || strings.HasPrefix(t, "uint"):
		return "a number"
	case t == "bool":
		return "true or false"
	}
	return "a " + t
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
