package hub_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/hub"
	"dealroom/presence"
)

func TestDecodeFrameValid(t *testing.T) {
	room64 := strings.Repeat("r", 64)
	id128 := strings.Repeat("i", 128)
	for _, tc := range []struct {
		name, in string
		want     hub.Frame
	}{
		{"subscribe", `{"type":"subscribe","room":"r_1","after":41}`, hub.Frame{Type: "subscribe", Room: "r_1", After: 41}},
		{"subscribe without after", `{"type":"subscribe","room":"r_1"}`, hub.Frame{Type: "subscribe", Room: "r_1"}},
		{"subscribe after 0", `{"type":"subscribe","room":"r_1","after":0}`, hub.Frame{Type: "subscribe", Room: "r_1"}},
		{"subscribe after null", `{"type":"subscribe","room":"r_1","after":null}`, hub.Frame{Type: "subscribe", Room: "r_1"}},
		{"subscribe after max int64", `{"type":"subscribe","room":"r_1","after":9223372036854775807}`, hub.Frame{Type: "subscribe", Room: "r_1", After: 9223372036854775807}},
		{"subscribe 64-byte room", `{"type":"subscribe","room":"` + room64 + `"}`, hub.Frame{Type: "subscribe", Room: room64}},
		{"unsubscribe", `{"type":"unsubscribe","room":"r_1"}`, hub.Frame{Type: "unsubscribe", Room: "r_1"}},
		{"command", `{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":{"title":"x"}}`,
			hub.Frame{Type: "command", ID: "op-1", Room: "r_1", Op: "task.create", Data: json.RawMessage(`{"title":"x"}`)}},
		{"command without data", `{"type":"command","id":"op-1","room":"r_1","op":"task.delete"}`,
			hub.Frame{Type: "command", ID: "op-1", Room: "r_1", Op: "task.delete"}},
		{"command with null data", `{"type":"command","id":"op-1","room":"r_1","op":"task.delete","data":null}`,
			hub.Frame{Type: "command", ID: "op-1", Room: "r_1", Op: "task.delete"}},
		{"command with spaced data", `{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":  { "title" : "x" } }`,
			hub.Frame{Type: "command", ID: "op-1", Room: "r_1", Op: "task.create", Data: json.RawMessage(`{ "title" : "x" }`)}},
		{"command with a 128-byte id", `{"type":"command","id":"` + id128 + `","room":"r_1","op":"task.create"}`,
			hub.Frame{Type: "command", ID: id128, Room: "r_1", Op: "task.create"}},
		{"presence viewing", `{"type":"presence","room":"r_1","state":"viewing"}`, hub.Frame{Type: "presence", Room: "r_1", State: presence.Viewing}},
		{"presence typing on a task", `{"type":"presence","room":"r_1","state":"typing","task_id":"t_7"}`,
			hub.Frame{Type: "presence", Room: "r_1", State: presence.Typing, TaskID: "t_7"}},
		{"presence idle", `{"type":"presence","room":"r_1","state":"idle"}`, hub.Frame{Type: "presence", Room: "r_1", State: presence.Idle}},
		{"presence typing an internal note", `{"type":"presence","room":"r_1","state":"typing","visibility":"internal"}`,
			hub.Frame{Type: "presence", Room: "r_1", State: presence.Typing, Visibility: dealroom.Internal}},
		{"presence typing a shared message", `{"type":"presence","room":"r_1","state":"typing","visibility":"shared"}`,
			hub.Frame{Type: "presence", Room: "r_1", State: presence.Typing, Visibility: dealroom.Shared}},
		{"command with an id as long as an Idempotency-Key", `{"type":"command","id":"` + strings.Repeat("k", dealroom.MaxKey) + `","room":"r_1","op":"task.create"}`,
			hub.Frame{Type: "command", ID: strings.Repeat("k", dealroom.MaxKey), Room: "r_1", Op: "task.create"}},
		{"ping", `{"type":"ping"}`, hub.Frame{Type: "ping"}},
		{"ping with an id", `{"type":"ping","id":"p1"}`, hub.Frame{Type: "ping", ID: "p1"}},
		{"whitespace around", " \n\t{\"type\":\"ping\"} \r\n ", hub.Frame{Type: "ping"}},
		{"unicode room", `{"type":"unsubscribe","room":"r_é"}`, hub.Frame{Type: "unsubscribe", Room: "r_é"}},
		{"escaped surrogate pair in command data", `{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":{"title":"\ud83d\ude80 \\udc00"}}`,
			hub.Frame{Type: "command", ID: "op-1", Room: "r_1", Op: "task.create", Data: json.RawMessage(`{"title":"\ud83d\ude80 \\udc00"}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := hub.DecodeFrame([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, f)
		})
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name, in    string
		code, field string
		id          string // the id the failed frame still carries
	}{
		// The frame as a whole.
		{"empty", ``, dealroom.EBADREQUEST, "", ""},
		{"spaces only", `   `, dealroom.EBADREQUEST, "", ""},
		{"not JSON", `hello`, dealroom.EBADREQUEST, "", ""},
		{"JSON array", `[{"type":"ping"}]`, dealroom.EBADREQUEST, "", ""},
		{"JSON string", `"ping"`, dealroom.EBADREQUEST, "", ""},
		{"JSON null", `null`, dealroom.EBADREQUEST, "", ""},
		{"JSON number", `42`, dealroom.EBADREQUEST, "", ""},
		{"truncated", `{"type":"ping"`, dealroom.EBADREQUEST, "", ""},
		{"malformed", `{"type":ping}`, dealroom.EBADREQUEST, "", ""},
		{"trailing object", `{"type":"ping"}{"type":"ping"}`, dealroom.EBADREQUEST, "", ""},
		{"trailing garbage", `{"type":"ping"}x`, dealroom.EBADREQUEST, "", ""},
		{"trailing comma", `{"type":"ping"},`, dealroom.EBADREQUEST, "", ""},
		{"invalid UTF-8", "{\"type\":\"ping\",\"id\":\"\xff\"}", dealroom.EBADREQUEST, "", ""},
		{"invalid UTF-8 in a room", "{\"type\":\"subscribe\",\"room\":\"r\xc3\"}", dealroom.EBADREQUEST, "", ""},
		// encoding/json would turn these escapes into U+FFFD.
		{"lone surrogate escape in a room", `{"type":"subscribe","room":"r_\ud800"}`, dealroom.EBADREQUEST, "", ""},
		{"lone low surrogate escape in an id", `{"type":"ping","id":"\udfff"}`, dealroom.EBADREQUEST, "", ""},
		{"lone surrogate escape in command data", `{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":{"title":"\ud83dx"}}`, dealroom.EBADREQUEST, "", "op-1"},
		{"surrogate escapes swapped in command data", `{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":{"title":"\ude80\ud83d"}}`, dealroom.EBADREQUEST, "", "op-1"},
		{"unknown field", `{"type":"ping","colour":"red"}`, dealroom.EBADREQUEST, "", ""},
		{"unknown field on subscribe", `{"type":"subscribe","room":"r","from":3}`, dealroom.EBADREQUEST, "", ""},
		{"type not a string", `{"type":1}`, dealroom.EBADREQUEST, "", ""},
		{"room not a string", `{"type":"subscribe","room":7}`, dealroom.EBADREQUEST, "", ""},
		{"state not a string", `{"type":"presence","room":"r","state":true}`, dealroom.EBADREQUEST, "", ""},

		// type
		{"missing type", `{"room":"r_1"}`, dealroom.EINVALID, "type", ""},
		{"null type", `{"type":null}`, dealroom.EINVALID, "type", ""},
		{"empty type", `{"type":""}`, dealroom.EINVALID, "type", ""},
		{"unknown type", `{"type":"explode","room":"r_1"}`, dealroom.EINVALID, "type", ""},
		{"type in capitals", `{"type":"PING"}`, dealroom.EINVALID, "type", ""},
		{"server frame type", `{"type":"event","room":"r_1"}`, dealroom.EINVALID, "type", ""},
		{"long unknown type", `{"type":"a` + strings.Repeat("é", 30) + `"}`, dealroom.EINVALID, "type", ""},
		{"unknown type keeps the id", `{"type":"explode","id":"c9"}`, dealroom.EINVALID, "type", "c9"},

		// after
		{"negative after", `{"type":"subscribe","room":"r","after":-1}`, dealroom.EINVALID, "after", ""},
		{"float after", `{"type":"subscribe","room":"r","after":1.5}`, dealroom.EINVALID, "after", ""},
		{"whole float after", `{"type":"subscribe","room":"r","after":2.0}`, dealroom.EINVALID, "after", ""},
		{"exponent after", `{"type":"subscribe","room":"r","after":1e3}`, dealroom.EINVALID, "after", ""},
		{"huge after", `{"type":"subscribe","room":"r","after":9223372036854775808}`, dealroom.EINVALID, "after", ""},
		{"huger after", `{"type":"subscribe","room":"r","after":100000000000000000000000000000}`, dealroom.EINVALID, "after", ""},
		{"string after", `{"type":"subscribe","room":"r","after":"5"}`, dealroom.EINVALID, "after", ""},
		{"word after", `{"type":"subscribe","room":"r","after":"five"}`, "", "", ""},
		{"bool after", `{"type":"subscribe","room":"r","after":true}`, dealroom.EBADREQUEST, "", ""},
		{"object after", `{"type":"subscribe","room":"r","after":{}}`, dealroom.EBADREQUEST, "", ""},

		// room
		{"subscribe without room", `{"type":"subscribe"}`, dealroom.EINVALID, "room", ""},
		{"unsubscribe without room", `{"type":"unsubscribe"}`, dealroom.EINVALID, "room", ""},
		{"presence without room", `{"type":"presence","state":"viewing"}`, dealroom.EINVALID, "room", ""},
		{"command without room", `{"type":"command","id":"c1","op":"task.create"}`, dealroom.EINVALID, "room", "c1"},
		{"empty room", `{"type":"subscribe","room":""}`, dealroom.EINVALID, "room", ""},
		{"null room", `{"type":"subscribe","room":null}`, dealroom.EINVALID, "room", ""},
		{"room too long", `{"type":"subscribe","room":"` + long(65) + `"}`, dealroom.EINVALID, "room", ""},
		{"room far too long", `{"type":"unsubscribe","room":"` + long(10000) + `"}`, dealroom.EINVALID, "room", ""},

		// command
		{"command without id", `{"type":"command","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", ""},
		{"command without op", `{"type":"command","id":"c1","room":"r"}`, dealroom.EINVALID, "op", "c1"},
		{"command with empty op", `{"type":"command","id":"c1","room":"r","op":""}`, dealroom.EINVALID, "op", "c1"},
		{"command with a long op", `{"type":"command","id":"c1","room":"r","op":"` + long(65) + `"}`, dealroom.EINVALID, "op", "c1"},
		{"data an array", `{"type":"command","id":"c1","room":"r","op":"task.create","data":[]}`, dealroom.EINVALID, "data", "c1"},
		{"data a string", `{"type":"command","id":"c1","room":"r","op":"task.create","data":"x"}`, dealroom.EINVALID, "data", "c1"},
		{"data a number", `{"type":"command","id":"c1","room":"r","op":"task.create","data":1}`, dealroom.EINVALID, "data", "c1"},
		{"data true", `{"type":"command","id":"c1","room":"r","op":"task.create","data":true}`, dealroom.EINVALID, "data", "c1"},

		// id
		{"empty id", `{"type":"command","id":"","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", ""},
		{"id with a space", `{"type":"command","id":"op 1","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", "op 1"},
		{"id with a tab", `{"type":"command","id":"op\t1","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", "op\t1"},
		{"id with a newline", `{"type":"command","id":"op\n1","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", "op\n1"},
		{"id not ASCII", `{"type":"command","id":"opé","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", "opé"},
		{"id with DEL", `{"type":"command","id":"op\u007f","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", "op\u007f"},
		{"id too long", `{"type":"command","id":"` + long(201) + `","room":"r","op":"task.create"}`, dealroom.EINVALID, "id", long(201)},
		{"id not a string", `{"type":"command","id":5,"room":"r","op":"task.create"}`, dealroom.EBADREQUEST, "", ""},
		{"bad id on a ping", `{"type":"ping","id":"a b"}`, dealroom.EINVALID, "id", "a b"},

		// presence
		{"presence without state", `{"type":"presence","room":"r"}`, dealroom.EINVALID, "state", ""},
		{"presence with an unknown state", `{"type":"presence","room":"r","state":"away"}`, dealroom.EINVALID, "state", ""},
		{"presence with an empty state", `{"type":"presence","room":"r","state":""}`, dealroom.EINVALID, "state", ""},
		{"presence with a null state", `{"type":"presence","room":"r","state":null}`, dealroom.EINVALID, "state", ""},
		{"presence with a long task", `{"type":"presence","room":"r","state":"typing","task_id":"` + long(65) + `"}`, dealroom.EINVALID, "task_id", ""},

		// fields of another type
		{"ping with a room", `{"type":"ping","room":"r"}`, dealroom.EINVALID, "room", ""},
		{"ping with after", `{"type":"ping","after":1}`, dealroom.EINVALID, "after", ""},
		{"unsubscribe with after", `{"type":"unsubscribe","room":"r","after":1}`, dealroom.EINVALID, "after", ""},
		{"subscribe with op", `{"type":"subscribe","room":"r","op":"task.create"}`, dealroom.EINVALID, "op", ""},
		{"subscribe with data", `{"type":"subscribe","room":"r","data":{}}`, dealroom.EINVALID, "data", ""},
		{"subscribe with null data", `{"type":"subscribe","room":"r","data":null}`, dealroom.EINVALID, "data", ""},
		{"subscribe with state", `{"type":"subscribe","room":"r","state":"viewing"}`, dealroom.EINVALID, "state", ""},
		{"command with state", `{"type":"command","id":"c1","room":"r","op":"x","state":"typing"}`, dealroom.EINVALID, "state", "c1"},
		{"command with task_id", `{"type":"command","id":"c1","room":"r","op":"x","task_id":"t"}`, dealroom.EINVALID, "task_id", "c1"},
		{"command with after", `{"type":"command","id":"c1","room":"r","op":"x","after":1}`, dealroom.EINVALID, "after", "c1"},
		{"presence with data", `{"type":"presence","room":"r","state":"idle","data":{}}`, dealroom.EINVALID, "data", ""},
		{"presence with op", `{"type":"presence","room":"r","state":"idle","op":"x"}`, dealroom.EINVALID, "op", ""},
		{"unsubscribe with task_id", `{"type":"unsubscribe","room":"r","task_id":"t"}`, dealroom.EINVALID, "task_id", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := hub.DecodeFrame([]byte(tc.in))
			require.Error(t, err, "accepted as %+v", f)
			var de *dealroom.Error
			require.True(t, errors.As(err, &de), "a *dealroom.Error, not %T", err)
			if tc.code == "" { // either code will do
				assert.Contains(t, []string{dealroom.EINVALID, dealroom.EBADREQUEST}, de.Code)
			} else {
				assert.Equal(t, tc.code, dealroom.ErrorCode(err), "%v", err)
			}
			if tc.field != "" || de.Code == dealroom.EBADREQUEST {
				assert.Equal(t, tc.field, de.Field, "%v", err)
			}
			assert.NotEmpty(t, de.Message)
			assert.Equal(t, tc.id, f.ID, "the failed frame's id, to answer it")
			assert.True(t, utf8.ValidString(de.Message), "the message is text: %q", de.Message)
			assert.LessOrEqual(t, len(de.Message), 300, "the message does not echo the frame")
		})
	}
}

// TestDecodeFrameEchoesIDAndRoom: a refused frame's error names the
// request it answers: its id and room as far as they could be read, even
// an id that breaks the rules (issue 11, item 15).
func TestDecodeFrameEchoesIDAndRoom(t *testing.T) {
	for _, tc := range []struct {
		name, in, id, room string
	}{
		{"bad state", `{"type":"presence","room":"r_1","state":"dancing"}`, "", "r_1"},
		{"bad after", `{"type":"subscribe","room":"r_2","after":-4}`, "", "r_2"},
		{"field of another type", `{"type":"subscribe","room":"r_3","op":"x"}`, "", "r_3"},
		{"unknown field", `{"type":"command","id":"c1","room":"r_4","op":"task.create","colour":"red"}`, "c1", "r_4"},
		{"command id with a space", `{"type":"command","id":"op 1","room":"r_5","op":"task.create"}`, "op 1", "r_5"},
		{"command id too long", `{"type":"command","id":"` + strings.Repeat("i", dealroom.MaxKey+1) + `","room":"r_6","op":"task.create"}`,
			strings.Repeat("i", dealroom.MaxKey+1), "r_6"},
		{"command without op", `{"type":"command","id":"c7","room":"r_7"}`, "c7", "r_7"},
		{"room too long", `{"type":"unsubscribe","room":"` + strings.Repeat("r", 65) + `"}`, "", strings.Repeat("r", 65)},
		{"room not a string", `{"type":"subscribe","room":7,"id":"s8"}`, "s8", ""},
		{"id in capitals is not the id", `{"type":"command","ID":"c9","room":"r_9","op":"x"}`, "", "r_9"},
		{"an id too long to echo", `{"type":"command","id":"` + strings.Repeat("i", 5000) + `","room":"r_10","op":"x"}`, "", "r_10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := hub.DecodeFrame([]byte(tc.in))
			require.Error(t, err)
			assert.Equal(t, tc.id, f.ID)
			assert.Equal(t, tc.room, f.Room)
			var out struct {
				ID   string `json:"id"`
				Room string `json:"room"`
			}
			require.NoError(t, json.Unmarshal(hub.ErrorFrame(f.ID, f.Room, err), &out))
			assert.Equal(t, tc.id, out.ID)
			assert.Equal(t, tc.room, out.Room)
		})
	}
}

// TestDecodeFrameFieldNamesExact: the protocol's field names are lower
// case; "Type" or "ROOM" are unknown fields, refused like any other, not
// read as "type" and "room" (encoding/json matches names without regard
// to case).
func TestDecodeFrameFieldNamesExact(t *testing.T) {
	for _, in := range []string{
		`{"Type":"ping"}`,
		`{"type":"subscribe","Room":"r_1"}`,
		`{"type":"subscribe","room":"r_1","AFTER":3}`,
		`{"type":"command","ID":"c1","room":"r_1","op":"task.create"}`,
		`{"type":"presence","room":"r_1","State":"typing","Task_ID":"t_1"}`,
	} {
		f, err := hub.DecodeFrame([]byte(in))
		if assert.Error(t, err, "%s accepted as %+v", in, f) {
			assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err), in)
		}
	}
}

// TestErrorFrame: the answer to a failed frame names the frame's id and
// room, the wire code and the field.
func TestErrorFrame(t *testing.T) {
	var got struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Room  string `json:"room"`
		Error struct {
			Code, Message, Field string
		} `json:"error"`
	}
	_, err := hub.DecodeFrame([]byte(`{"type":"command","id":"c1","room":"r","op":""}`))
	require.NoError(t, json.Unmarshal(hub.ErrorFrame("c1", "r", err), &got))
	assert.Equal(t, "error", got.Type)
	assert.Equal(t, "c1", got.ID)
	assert.Equal(t, "r", got.Room)
	assert.Equal(t, "invalid_field", got.Error.Code)
	assert.Equal(t, "op", got.Error.Field)

	_, err = hub.DecodeFrame([]byte(`nope`))
	b := hub.ErrorFrame("", "", err)
	got = struct {
		Type  string `json:"type"`
		ID    string `json:"id"`
		Room  string `json:"room"`
		Error struct {
			Code, Message, Field string
		} `json:"error"`
	}{}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "bad_request", got.Error.Code)
	assert.NotContains(t, string(b), `"id"`)
	assert.NotContains(t, string(b), `"room"`)
	assert.NotContains(t, string(b), `"field"`)
}

var knownTypes = map[string]bool{"subscribe": true, "unsubscribe": true, "command": true, "presence": true, "ping": true}

// checkFrame asserts what DecodeFrame promises of any input.
func checkFrame(t *testing.T, in []byte, f hub.Frame, err error) {
	t.Helper()
	if err != nil {
		var de *dealroom.Error
		if !errors.As(err, &de) {
			t.Fatalf("%q: error %T %v is not a *dealroom.Error", in, err, err)
		}
		if de.Code != dealroom.EINVALID && de.Code != dealroom.EBADREQUEST {
			t.Fatalf("%q: error code %q, want invalid or bad_request", in, de.Code)
		}
		if de.Code == dealroom.EINVALID && de.Field == "" {
			t.Fatalf("%q: an invalid error names no field: %v", in, err)
		}
		// The id and room are echoed as the frame had them (to name the
		// request that failed, even by an id that breaks the rules), but
		// bounded and as text.
		if len(f.ID) > 1024 || !utf8.ValidString(f.ID) || len(f.Room) > 1024 || !utf8.ValidString(f.Room) {
			t.Fatalf("%q: a failed frame echoes an unbounded id %q or room %q", in, f.ID, f.Room)
		}
		// Its answer can always be built and read.
		var ans map[string]any
		if jerr := json.Unmarshal(hub.ErrorFrame(f.ID, f.Room, err), &ans); jerr != nil || ans["type"] != "error" {
			t.Fatalf("%q: bad error frame: %v", in, jerr)
		}
		return
	}
	if !knownTypes[f.Type] {
		t.Fatalf("%q: accepted a frame of type %q", in, f.Type)
	}
	if f.Type == hub.Ping {
		if f.Room != "" {
			t.Fatalf("%q: a ping with room %q", in, f.Room)
		}
	} else if f.Room == "" || len(f.Room) > 64 {
		t.Fatalf("%q: accepted room %q (%d bytes)", in, f.Room, len(f.Room))
	}
	if !utf8.ValidString(f.Room) {
		t.Fatalf("%q: room %q is not UTF-8", in, f.Room)
	}
	if f.After < 0 {
		t.Fatalf("%q: after %d", in, f.After)
	}
	if f.After != 0 && f.Type != hub.Subscribe {
		t.Fatalf("%q: after on a %s frame", in, f.Type)
	}
	if f.ID != "" && (len(f.ID) > 128 || strings.ContainsFunc(f.ID, func(r rune) bool { return r < 0x21 || r > 0x7e })) {
		t.Fatalf("%q: accepted id %q", in, f.ID)
	}
	switch f.Type {
	case hub.Command:
		if f.ID == "" || f.Op == "" || len(f.Op) > 64 {
			t.Fatalf("%q: command with id %q op %q", in, f.ID, f.Op)
		}
		if len(f.Data) > 0 && (f.Data[0] != '{' || !json.Valid(f.Data)) {
			t.Fatalf("%q: command data %q is not a JSON object", in, f.Data)
		}
	case hub.Presence:
		if _, ok := presence.ParseState(string(f.State)); !ok {
			t.Fatalf("%q: presence with state %q", in, f.State)
		}
		if len(f.TaskID) > 64 {
			t.Fatalf("%q: task_id of %d bytes", in, len(f.TaskID))
		}
	}
	if f.Type != hub.Command && (f.Op != "" || f.Data != nil) {
		t.Fatalf("%q: op/data on a %s frame", in, f.Type)
	}
	if f.Type != hub.Presence && (f.State != "" || f.TaskID != "") {
		t.Fatalf("%q: state/task_id on a %s frame", in, f.Type)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		// valid
		`{"type":"subscribe","room":"r_1","after":41}`,
		`{"type":"subscribe","room":"r_1"}`,
		`{"type":"unsubscribe","room":"r_1"}`,
		`{"type":"command","id":"op-1","room":"r_1","op":"task.create","data":{"title":"x","assignees":["a"]}}`,
		`{"type":"command","id":"op-2","room":"r_1","op":"task.delete","data":null}`,
		`{"type":"presence","room":"r_1","state":"typing","task_id":"t_1"}`,
		`{"type":"presence","room":"r_1","state":"idle"}`,
		`{"type":"ping"}`,
		" {\"type\":\"ping\",\"id\":\"p\"}\n",
		// hostile
		``,
		`[]`,
		`null`,
		`{"type":"subscribe","room":"r","after":-1}`,
		`{"type":"subscribe","room":"r","after":1e400}`,
		`{"type":"subscribe","room":"r","after":"7"}`,
		`{"type":"subscribe","room":"r","after":99999999999999999999}`,
		`{"type":"command","id":"a b","room":"r","op":"x","data":[1]}`,
		`{"type":"command","room":"r","op":"x"}`,
		`{"type":"presence","room":"r","state":"away","task_id":null}`,
		`{"type":"ping","room":"r","after":0,"op":"","data":{},"state":"","task_id":""}`,
		`{"type":"ping"}{"type":"ping"}`,
		`{"type":"ping","type":"subscribe","room":"r"}`,
		`{"TYPE":"subscribe","Room":"r","AFTER":3}`,
		`{"type":"subscribe","room":"` + strings.Repeat("r", 65) + `"}`,
		"{\"type\":\"subscribe\",\"room\":\"\xff\xfe\"}",
		`{"type":"subscribe","room":"\ud800"}`,
		`{"type":"subscribe","room":"\u0000"}`,
		`{"type":"explode","id":"` + strings.Repeat("é", 30) + `"}`,
		`{"type":"` + strings.Repeat("é", 30) + `"}`,
		`{"type":"command","id":"c","room":"r","op":"x","data":{"a":` + strings.Repeat("[", 100) + `}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := hub.DecodeFrame(in)
		checkFrame(t, in, fr, err)
	})
}

// TestDecodeFrameNotUTF8Says checks the refusal of text that is not UTF-8
// (or an escape that would decode as U+FFFD) says so.
func TestDecodeFrameNotUTF8Says(t *testing.T) {
	for _, in := range []string{"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}", `{"type":"ping","id":"\udc00"}`} {
		_, err := hub.DecodeFrame([]byte(in))
		require.Error(t, err)
		assert.Equal(t, dealroom.EBADREQUEST, dealroom.ErrorCode(err))
		assert.Contains(t, dealroom.ErrorMessage(err), "not valid UTF-8")
	}
}
