package mongostore

import (
	"fmt"
	"reflect"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsoncodec"
	"go.mongodb.org/mongo-driver/bson/bsonrw"
	"go.mongodb.org/mongo-driver/bson/bsontype"

	"dealroom/task"
)

// registry is the BSON registry of the store's client. The domain types
// carry only json tags, so struct fields are named by their json tag when
// they have no bson tag: a task is stored with the same field names it has
// in the API ("room_id", "assignees", "due", ...). Times are BSON dates
// (millisecond precision, which is what the server records: see
// dealroom.Now), and a task's due day is the string "YYYY-MM-DD" as in
// JSON, so that it sorts and compares as a day.
var registry = newRegistry()

func newRegistry() *bsoncodec.Registry {
	reg := bson.NewRegistry()
	sc, err := bsoncodec.NewStructCodec(bsoncodec.JSONFallbackStructTagParser)
	if err != nil {
		panic("mongostore: " + err.Error())
	}
	reg.RegisterKindEncoder(reflect.Struct, sc)
	reg.RegisterKindDecoder(reflect.Struct, sc)
	dateType := reflect.TypeOf(task.Date{})
	reg.RegisterTypeEncoder(dateType, bsoncodec.ValueEncoderFunc(encodeDate))
	reg.RegisterTypeDecoder(dateType, bsoncodec.ValueDecoderFunc(decodeDate))
	return reg
}

func encodeDate(_ bsoncodec.EncodeContext, vw bsonrw.ValueWriter, val reflect.Value) error {
	d, ok := val.Interface().(task.Date)
	if !ok {
		return bsoncodec.ValueEncoderError{Name: "encodeDate", Types: []reflect.Type{val.Type()}, Received: val}
	}
	return vw.WriteString(d.String())
}

func decodeDate(_ bsoncodec.DecodeContext, vr bsonrw.ValueReader, val reflect.Value) error {
	switch vr.Type() {
	case bsontype.String:
		s, err := vr.ReadString()
		if err != nil {
			return err
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return fmt.Errorf("mongostore: bad due date %q", s)
		}
		val.Set(reflect.ValueOf(task.DateOf(t)))
		return nil
	case bsontype.Null:
		val.Set(reflect.Zero(val.Type()))
		return vr.ReadNull()
	}
	return fmt.Errorf("mongostore: cannot decode %v into a date", vr.Type())
}

// marshalD encodes v with the store's registry into a document whose
// fields can be picked apart.
func marshalD(v any, skip ...string) (bson.D, error) {
	raw, err := bson.MarshalWithRegistry(registry, v)
	if err != nil {
		return nil, err
	}
	elems, err := bson.Raw(raw).Elements()
	if err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(elems))
next:
	for _, e := range elems {
		k := e.Key()
		for _, s := range skip {
			if k == s {
				continue next
			}
		}
		out = append(out, bson.E{Key: k, Value: e.Value()})
	}
	return out, nil
}
