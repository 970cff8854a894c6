package strictjson_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/internal/strictjson"
)

type color string

type draft struct {
	Title  string  `json:"title"`
	Color  color   `json:"color,omitempty"`
	Due    *string `json:"due"`
	Weight float64 `json:"weight"`
}

func TestDecodeAcceptsWhatTheTargetHas(t *testing.T) {
	var d draft
	require.NoError(t, strictjson.Input{What: "the body"}.Decode([]byte(` {"title":"Kick-off","color":"red","due":null,"weight":2} `), &d))
	assert.Equal(t, draft{Title: "Kick-off", Color: "red", Weight: 2}, d)
}

// The same input is refused by both kinds of input, as the input's fault
// (a frame) or as its field's (a body).
func TestDecodeRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		field    string // the body's field at fault; "" when the input as a whole is
	}{
		{"not an object", `["title"]`, ""},
		{"empty", ``, ""},
		{"malformed", `{"title":}`, ""},
		{"truncated", `{"title":"x"`, ""},
		{"trailing data", `{"title":"x"} {}`, ""},
		{"invalid UTF-8", "{\"title\":\"\xff\"}", ""},
		{"lone surrogate", `{"title":"\ud800"}`, ""},
		{"unknown field", `{"title":"x","colour":"red"}`, "colour"},
		{"wrong type", `{"title":5}`, "title"},
		{"null where null means nothing", `{"title":null}`, "title"},
		{"empty enumerated word", `{"title":"x","color":""}`, "color"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d draft
			err := strictjson.Input{What: "the body"}.Decode([]byte(tt.in), &d)
			var de *dealroom.Error
			require.True(t, errors.As(err, &de), "%v", err)
			if tt.field == "" {
				assert.Equal(t, dealroom.EBADREQUEST, de.Code, de.Message)
			} else {
				assert.Equal(t, dealroom.EINVALID, de.Code, de.Message)
				assert.Equal(t, tt.field, de.Field)
			}
			err = strictjson.Input{What: "the frame", Whole: true, Exact: true}.Decode([]byte(tt.in), &d)
			assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err), "a frame's fault is the frame's: %v", err)
		})
	}
}

// A frame spells its fields one way and gives each once; a request body is
// read as encoding/json reads it (case aside, the last of two counts), as
// the contract always has.
func TestExactNames(t *testing.T) {
	frame := strictjson.Input{What: "the frame", Whole: true, Exact: true}
	body := strictjson.Input{What: "the body"}
	for _, in := range []string{`{"Title":"x"}`, `{"title":"x","title":"y"}`} {
		var d draft
		assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(frame.Decode([]byte(in), &d)), in)
		assert.NoError(t, body.Decode([]byte(in), &d), in)
	}
	var d draft
	err := body.Decode([]byte(`{"Title":"x","Color":""}`), &d)
	var de *dealroom.Error
	require.True(t, errors.As(err, &de), "%v", err)
	assert.Equal(t, "color", de.Field, "a field at fault is named as the contract spells it")
}
