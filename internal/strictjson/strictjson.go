// Package strictjson is the one strict JSON decoder of Dealroom: request
// bodies (package api) and websocket frames (package hub) are read by it,
// so that both refuse the same things the same way. An input is accepted
// only when it is
//
//   - valid UTF-8 text with no escaped lone surrogate (encoding/json would
//     store U+FFFD in its place, and what is stored would not be what was
//     sent: dealroom.CheckJSONText);
//   - one JSON object, with nothing after it;
//   - made of fields the target has (for a frame, each spelled exactly and
//     given once: encoding/json alone would fill "type" from "Type");
//   - of the right types; null only in a field that can tell null from
//     absence (a pointer, an Opt of a PATCH, raw JSON), and no empty
//     string in a field of enumerated words (which the domain would read
//     as "left out").
//
// A request body's faults are its fields' (EINVALID naming the field, 422)
// where a field is at fault; a frame's are the frame's (EBADREQUEST): a
// client that sends a frame the protocol does not define misunderstands
// the protocol, and the frame says so as a whole.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"dealroom"
)

// Input says how to read one kind of input.
type Input struct {
	// What names the input in messages: "the request body", "the frame".
	What string
	// Whole makes every fault the whole input's (EBADREQUEST), as for a
	// protocol frame; otherwise a field at fault is named (EINVALID).
	Whole bool
	// Exact refuses field names spelled otherwise than the target's, and
	// fields given twice (a frame: the protocol spells its fields one
	// way). Without it, a name matches as encoding/json matches it,
	// without regard to case, and the last of a field given twice counts
	// (a request body, as the contract has always read it).
	Exact bool
}

// Decode reads b into v, a pointer to a struct, by the rules of the
// package.
func (in Input) Decode(b []byte, v any) error {
	if err := dealroom.CheckJSONText(in.What, b); err != nil {
		return err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 {
		return dealroom.Errorf(dealroom.EBADREQUEST, "%s is empty; send a JSON object", in.What)
	} else if t[0] != '{' {
		return dealroom.Errorf(dealroom.EBADREQUEST, "%s must be a JSON object", in.What)
	}
	// The decoder reads the whole object before it fills v: malformed
	// JSON is told before a field at fault.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return in.explain(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return dealroom.Errorf(dealroom.EBADREQUEST, "unexpected data after %s's JSON object", in.What)
	}
	if in.Exact {
		if err := in.checkKeys(b, reflect.TypeOf(v)); err != nil {
			return err
		}
	}
	return in.refuseNulls(b, v)
}

// fault is a fault of one field: EINVALID naming it, or for a whole
// input, EBADREQUEST.
func (in Input) fault(field, format string, args ...any) error {
	if in.Whole {
		return dealroom.Errorf(dealroom.EBADREQUEST, format, args...)
	}
	return dealroom.Invalid(field, format, args...)
}

// checkKeys refuses top-level field names that t (a pointer to a struct)
// does not have, spelled exactly, and fields given twice.
func (in Input) checkKeys(b []byte, t reflect.Type) error {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	names := fieldNamesOf(t.Elem())
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return in.explain(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return in.explain(err)
		}
		key, _ := tok.(string)
		if !names[key] {
			return in.fault(dealroom.Clip(key), "unknown field %q", dealroom.Clip(key))
		}
		if seen[key] {
			return in.fault(key, "field %q is given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return in.explain(err)
		}
	}
	return nil
}

// knownNames caches fieldNames by type: frames and bodies of a few types
// are read many times a second.
var knownNames sync.Map // reflect.Type -> map[string]bool, never changed

// fieldNamesOf returns fieldNames(t), computed once per type.
func fieldNamesOf(t reflect.Type) map[string]bool {
	if names, ok := knownNames.Load(t); ok {
		return names.(map[string]bool)
	}
	names, _ := knownNames.LoadOrStore(t, fieldNames(t))
	return names.(map[string]bool)
}

// fieldNames returns the JSON names of t's fields, those of embedded
// structs included, as encoding/json reads them.
func fieldNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct && !strings.Contains(tag, ",") && tag == "" {
			maps.Copy(names, fieldNames(f.Type))
			continue
		}
		if f.IsExported() {
			names[jsonName(f)] = true
		}
	}
	return names
}

// explain turns a decoding failure into a message for the client.
func (in Input) explain(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		de  *dealroom.Error
	)
	switch {
	case errors.As(err, &de):
		return de
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return dealroom.Errorf(dealroom.EBADREQUEST, "malformed JSON: %s ends too early", in.What)
	case errors.As(err, &syn):
		return dealroom.Errorf(dealroom.EBADREQUEST, "malformed JSON at byte %d of %s: %s", syn.Offset, in.What, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return dealroom.Errorf(dealroom.EBADREQUEST, "%s must be a JSON object", in.What)
		}
		return in.fault(typ.Field, "%s must be %s, not a JSON %s", typ.Field, kindOf(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return in.fault(name, "unknown field %q", dealroom.Clip(name))
	}
	return dealroom.Errorf(dealroom.EBADREQUEST, "%s could not be read as JSON", in.What)
}

// kindOf names a Go type the way a JSON user thinks of it.
func kindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return fmt.Sprintf("a %s", t)
}

// refuseNulls refuses null for a field that cannot hold it, and an empty
// string for a field of enumerated values (a named string type such as
// Visibility): encoding/json leaves the first at its default, and the
// domain reads the second as "left out", so {"visibility": null} or
// {"visibility": ""} would quietly mean the default where the contract
// allows neither. Fields that can say "null" (pointers, Opt of a PATCH)
// decide for themselves what null means.
func (in Input) refuseNulls(b []byte, v any) error {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	// JSON spells null and the empty string one way each: an input with
	// neither, as most are, has nothing to refuse.
	if !bytes.Contains(b, []byte("null")) && !bytes.Contains(b, []byte(`""`)) {
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
				return in.fault(jsonName(f), "%s must not be null: leave it out instead", jsonName(f))
			}
		case `""`:
			if enumerated(f.Type) {
				return in.fault(jsonName(f), "%s must not be empty: leave it out for the default", jsonName(f))
			}
		}
	}
	return nil
}

// jsonField finds the struct field that encoding/json fills from key
// (matched as it does, without regard to case).
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			if g, ok := jsonField(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if f.IsExported() && strings.EqualFold(jsonName(f), key) {
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
