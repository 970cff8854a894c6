package mongostore

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/bson"

	"dealroom/room"
	"dealroom/task"
)

// fill sets every exported field of v to a non-zero value, recursively.
func fill(v reflect.Value, depth int) {
	if depth > 6 || !v.CanSet() {
		return
	}
	switch v.Type() {
	case reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 3, 2, 9, 30, 15, 123e6, time.UTC)))
		return
	case reflect.TypeOf(task.Date{}):
		v.Set(reflect.ValueOf(task.Date{Year: 2026, Month: 4, Day: 30}))
		return
	case reflect.TypeOf(json.RawMessage{}):
		v.Set(reflect.ValueOf(json.RawMessage(`{"a":[1,"b"]}`)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x<&>é")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), depth+1)
		fill(s.Index(1), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), depth+1)
		}
	}
}

// TestCodecMatchesJSON: every read-model type reads back from BSON exactly
// as it reads back from JSON (which is what the embedded store keeps), with
// every field set and with every field zero. It guards against a field
// added to a domain type that BSON would store differently.
func TestCodecMatchesJSON(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeOf(room.Room{}), reflect.TypeOf(room.Member{}), reflect.TypeOf(task.Task{}),
		reflect.TypeOf(room.Message{}), reflect.TypeOf(room.Attachment{}), reflect.TypeOf(room.Invite{}),
		reflect.TypeOf(room.InboxItem{}),
	} {
		for _, full := range []bool{true, false} {
			v := reflect.New(typ)
			if full {
				fill(v.Elem(), 0)
			}
			raw, err := json.Marshal(v.Interface())
			require.NoError(t, err)
			viaJSON := reflect.New(typ)
			require.NoError(t, json.Unmarshal(raw, viaJSON.Interface()), "%s", typ)

			doc, err := bson.MarshalWithRegistry(registry, v.Interface())
			require.NoError(t, err, "%s", typ)
			viaBSON := reflect.New(typ)
			require.NoError(t, bson.UnmarshalWithRegistry(registry, doc, viaBSON.Interface()), "%s", typ)
			assert.Equal(t, viaJSON.Interface(), viaBSON.Interface(), "%s (all fields set: %v)", typ, full)

			// Field names are the JSON names.
			var names map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &names))
			elems, err := bson.Raw(doc).Elements()
			require.NoError(t, err)
			for _, e := range elems {
				if full {
					assert.Contains(t, names, e.Key(), "%s field %s", typ, e.Key())
				}
			}
		}
	}
}

func TestKeyIdem(t *testing.T) {
	assert.NotEqual(t, room.IdempotencyID("a|b", "c"), room.IdempotencyID("a", "b|c"))
	assert.NotEqual(t, room.IdempotencyID("a:1", "c"), room.IdempotencyID("a", "1:c"))
	long := room.IdempotencyID("alice", string(make([]byte, 1000)))
	assert.Len(t, long, 2+64)
}
