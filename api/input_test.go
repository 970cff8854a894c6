package api_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
	"dealroom/api"
)

// badInput is one request that must be refused.
type badInput struct {
	name   string
	method string
	path   string // with the fixture's {room}, {task}, ... placeholders
	as     dealroom.Actor
	body   any // raw for bytes as they are; other values are encoded as JSON
	hdrs   []header
	status int
	field  string // for 422: the field the error must name
	// alt is a second acceptable status, where the contract allows either
	// (e.g. "null" as a whole body: not an object, or an object lacking
	// its required fields).
	alt int
}

func long(n int) string { return strings.Repeat("x", n) }

func badInputs() []badInput {
	const tasks, rooms, msgs, members, invites = "/rooms/{room}/tasks", "/rooms", "/rooms/{room}/messages",
		"/rooms/{room}/members", "/rooms/{room}/invites"
	var cases []badInput
	add := func(c ...badInput) { cases = append(cases, c...) }

	// The body as a whole, on every JSON route.
	for _, r := range []struct{ method, path string }{
		{"POST", tasks}, {"PATCH", "/rooms/{room}/tasks/{task}"}, {"POST", rooms}, {"PATCH", "/rooms/{room}"},
		{"POST", msgs}, {"PATCH", "/rooms/{room}/messages/{msg}"}, {"POST", members},
		{"PATCH", "/rooms/{room}/members/" + staffW.ID}, {"POST", invites}, {"POST", "/invites/{code}/accept"},
	} {
		for _, b := range []struct {
			name string
			body string
		}{
			{"malformed", `{"title": }`},
			{"truncated", `{"title": "Security review", "status": "op`},
			{"truncated after object start", `{`},
			{"array", `[{"title": "x"}]`},
			{"string", `"hello"`},
			{"number", `42`},
			{"trailing garbage", `{} garbage`},
			{"two objects", `{}{}`},
			{"object then array", `{} []`},
			{"empty", ``},
			{"whitespace only", "  \n\t "},
			{"single quotes", `{'title': 'x'}`},
			{"comment", `{"title": "x" /* hi */}`},
			{"nan", `{"position": NaN}`},
			{"bad escape", `{"title": "\q"}`},
			{"raw control char in string", "{\"title\": \"a\x01b\"}"},
			{"byte order mark", "\ufeff{}"},
			// encoding/json would decode these as U+FFFD and store that.
			{"invalid UTF-8", "{\"title\": \"\xff\xfe\"}"},
			{"escaped lone surrogate", `{"title": "x\udc00"}`},
			{"deeply nested", `{"title": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`},
		} {
			add(badInput{name: r.method + " " + r.path + ": " + b.name, method: r.method, path: r.path,
				body: raw(b.body), status: 400})
		}
		// null is no object: at best it is an object without its required
		// fields, never an accepted request.
		add(badInput{name: r.method + " " + r.path + ": null", method: r.method, path: r.path,
			body: raw(`null`), status: 400, alt: 422})
		add(badInput{name: r.method + " " + r.path + ": not JSON content type", method: r.method, path: r.path,
			body: raw(`{"name": "x"}`), hdrs: []header{{"Content-Type", "text/plain"}}, status: 400})
		add(badInput{name: r.method + " " + r.path + ": form content type", method: r.method, path: r.path,
			body: raw(`name=x`), hdrs: []header{{"Content-Type", "application/x-www-form-urlencoded"}}, status: 400})
		add(badInput{name: r.method + " " + r.path + ": unknown field", method: r.method, path: r.path,
			body: raw(`{"zz_unknown": 1}`), status: 422, field: "zz_unknown", alt: 400})
		// Larger than MaxBodyBytes (1 MiB by default).
		add(badInput{name: r.method + " " + r.path + ": oversized body", method: r.method, path: r.path,
			body: raw(`{"title": "` + long(1<<20+10) + `"}`), status: 413})
	}

	// Tasks: every field with a wrong type, bad values and bad references.
	add(
		badInput{name: "task title number", method: "POST", path: tasks, body: raw(`{"title": 5}`), status: 422, field: "title"},
		badInput{name: "task title object", method: "POST", path: tasks, body: raw(`{"title": {"a": 1}}`), status: 422, field: "title"},
		badInput{name: "task description bool", method: "POST", path: tasks, body: raw(`{"title": "x", "description": true}`), status: 422, field: "description"},
		badInput{name: "task status number", method: "POST", path: tasks, body: raw(`{"title": "x", "status": 1}`), status: 422, field: "status"},
		badInput{name: "task assignees string", method: "POST", path: tasks, body: raw(`{"title": "x", "assignees": "walter"}`), status: 422, field: "assignees"},
		badInput{name: "task assignees numbers", method: "POST", path: tasks, body: raw(`{"title": "x", "assignees": [1, 2]}`), status: 422, field: "assignees"},
		badInput{name: "task assignees null entry", method: "POST", path: tasks, body: raw(`{"title": "x", "assignees": [null]}`), status: 422, field: "assignees"},
		badInput{name: "task due number", method: "POST", path: tasks, body: raw(`{"title": "x", "due": 20260101}`), status: 422, field: "due"},
		badInput{name: "task visibility array", method: "POST", path: tasks, body: raw(`{"title": "x", "visibility": []}`), status: 422, field: "visibility"},
		badInput{name: "task position string", method: "POST", path: tasks, body: raw(`{"title": "x", "position": "1"}`), status: 422, field: "position"},
		badInput{name: "task unknown field", method: "POST", path: tasks, body: raw(`{"title": "x", "priority": "high"}`), status: 422, field: "priority", alt: 400},
		badInput{name: "task status unknown", method: "POST", path: tasks, body: map[string]any{"title": "x", "status": "closed"}, status: 422, field: "status"},
		badInput{name: "task status wrong case", method: "POST", path: tasks, body: map[string]any{"title": "x", "status": "OPEN"}, status: 422, field: "status"},
		badInput{name: "task visibility unknown", method: "POST", path: tasks, body: map[string]any{"title": "x", "visibility": "secret"}, status: 422, field: "visibility"},
		badInput{name: "task title missing", method: "POST", path: tasks, body: map[string]any{"description": "x"}, status: 422, field: "title"},
		badInput{name: "task title empty", method: "POST", path: tasks, body: map[string]any{"title": ""}, status: 422, field: "title"},
		badInput{name: "task title whitespace", method: "POST", path: tasks, body: map[string]any{"title": " \t \u00a0 \u3000 "}, status: 422, field: "title"},
		badInput{name: "task title null", method: "POST", path: tasks, body: raw(`{"title": null}`), status: 422, field: "title"},
		badInput{name: "task title too long", method: "POST", path: tasks, body: map[string]any{"title": long(201)}, status: 422, field: "title"},
		badInput{name: "task title too long in runes", method: "POST", path: tasks, body: map[string]any{"title": strings.Repeat("ü", 201)}, status: 422, field: "title"},
		badInput{name: "task title control char", method: "POST", path: tasks, body: map[string]any{"title": "bell\u0007"}, status: 422, field: "title"},
		badInput{name: "task title NUL", method: "POST", path: tasks, body: map[string]any{"title": "nul\u0000byte"}, status: 422, field: "title"},
		badInput{name: "task title escape sequence", method: "POST", path: tasks, body: map[string]any{"title": "\u001b[31mred"}, status: 422, field: "title"},
		badInput{name: "task title newline", method: "POST", path: tasks, body: map[string]any{"title": "two\nlines"}, status: 422, field: "title"},
		badInput{name: "task title C1 control", method: "POST", path: tasks, body: map[string]any{"title": "c1\u0085x"}, status: 422, field: "title"},
		badInput{name: "task description too long", method: "POST", path: tasks, body: map[string]any{"title": "x", "description": long(10001)}, status: 422, field: "description"},
		badInput{name: "task description control char", method: "POST", path: tasks, body: map[string]any{"title": "x", "description": "a\u0000b"}, status: 422, field: "description"},
		badInput{name: "task due month 13", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "2026-13-40"}, status: 422, field: "due"},
		badInput{name: "task due tomorrow", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "tomorrow"}, status: 422, field: "due"},
		badInput{name: "task due feb 30", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "2026-02-30"}, status: 422, field: "due"},
		badInput{name: "task due with time", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "2026-02-03T10:00:00Z"}, status: 422, field: "due"},
		badInput{name: "task due empty", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": ""}, status: 422, field: "due"},
		badInput{name: "task due year 1", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "0001-01-01"}, status: 422, field: "due"},
		badInput{name: "task due far future", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "9999-12-31"}, status: 422, field: "due"},
		badInput{name: "task due us format", method: "POST", path: tasks, body: map[string]any{"title": "x", "due": "01/31/2026"}, status: 422, field: "due"},
		badInput{name: "task position huge", method: "POST", path: tasks, body: raw(`{"title": "x", "position": 1e300}`), status: 422, field: "position"},
		badInput{name: "task position overflow", method: "POST", path: tasks, body: raw(`{"title": "x", "position": 1e400}`), status: 422, field: "position"},
		badInput{name: "task assignee unknown", method: "POST", path: tasks, body: map[string]any{"title": "x", "assignees": []string{"nobody"}}, status: 422, field: "assignees"},
		badInput{name: "task assignee empty id", method: "POST", path: tasks, body: map[string]any{"title": "x", "assignees": []string{""}}, status: 422, field: "assignees"},
		badInput{name: "task assignee stranger", method: "POST", path: tasks, body: map[string]any{"title": "x", "assignees": []string{staffOut.ID}}, status: 422, field: "assignees"},
		badInput{name: "task internal assigned to customer", method: "POST", path: tasks, body: map[string]any{"title": "x", "visibility": "internal", "assignees": []string{custW.ID}}, status: 422, field: "assignees"},
		badInput{name: "task too many assignees", method: "POST", path: tasks, body: map[string]any{"title": "x", "assignees": manyIDs(21)}, status: 422, field: "assignees"},
		badInput{name: "task assignee id too long", method: "POST", path: tasks, body: map[string]any{"title": "x", "assignees": []string{long(129)}}, status: 422, field: "assignees"},
	)
	task := "/rooms/{room}/tasks/{task}"
	add(
		badInput{name: "task patch empty", method: "PATCH", path: task, body: raw(`{}`), status: 400},
		badInput{name: "task patch title null", method: "PATCH", path: task, body: raw(`{"title": null}`), status: 422, field: "title"},
		badInput{name: "task patch title empty", method: "PATCH", path: task, body: map[string]any{"title": "  "}, status: 422, field: "title"},
		badInput{name: "task patch title number", method: "PATCH", path: task, body: raw(`{"title": 7}`), status: 422, field: "title"},
		badInput{name: "task patch status null", method: "PATCH", path: task, body: raw(`{"status": null}`), status: 422, field: "status"},
		badInput{name: "task patch status empty", method: "PATCH", path: task, body: map[string]any{"status": ""}, status: 422, field: "status"},
		badInput{name: "task patch status unknown", method: "PATCH", path: task, body: map[string]any{"status": "finished"}, status: 422, field: "status"},
		badInput{name: "task patch visibility unknown", method: "PATCH", path: task, body: map[string]any{"visibility": "private"}, status: 422, field: "visibility"},
		badInput{name: "task patch make shared internal", method: "PATCH", path: task, body: map[string]any{"visibility": "internal"}, status: 422, field: "visibility"},
		badInput{name: "task patch due tomorrow", method: "PATCH", path: task, body: map[string]any{"due": "tomorrow"}, status: 422, field: "due"},
		badInput{name: "task patch due month 13", method: "PATCH", path: task, body: map[string]any{"due": "2026-13-40"}, status: 422, field: "due"},
		badInput{name: "task patch assignees object", method: "PATCH", path: task, body: raw(`{"assignees": {"a": 1}}`), status: 422, field: "assignees"},
		badInput{name: "task patch assignee unknown", method: "PATCH", path: task, body: map[string]any{"assignees": []string{"ghost"}}, status: 422, field: "assignees"},
		badInput{name: "task patch position null", method: "PATCH", path: task, body: raw(`{"position": null}`), status: 422, field: "position"},
		badInput{name: "task patch position string", method: "PATCH", path: task, body: raw(`{"position": "top"}`), status: 422, field: "position"},
		badInput{name: "task patch unknown field", method: "PATCH", path: task, body: raw(`{"owner": "x"}`), status: 422, field: "owner", alt: 400},
		// Half-valid: nothing of it may be applied.
		badInput{name: "task patch valid title with bad status", method: "PATCH", path: task, body: map[string]any{"title": "Renamed", "status": "nope"}, status: 422, field: "status"},
		badInput{name: "task patch unknown task", method: "PATCH", path: "/rooms/{room}/tasks/t_nope", body: map[string]any{"title": "x"}, status: 404},
		badInput{name: "task delete unknown task", method: "DELETE", path: "/rooms/{room}/tasks/t_nope", status: 404},
		badInput{name: "task get unknown task", method: "GET", path: "/rooms/{room}/tasks/t_nope", status: 404},
		badInput{name: "task get id with NUL", method: "GET", path: "/rooms/{room}/tasks/{task}%00x", status: 404},
	)

	// Rooms.
	room := "/rooms/{room}"
	add(
		badInput{name: "room name missing", method: "POST", path: rooms, body: map[string]any{"company": "Acme"}, status: 422, field: "name"},
		badInput{name: "room name whitespace", method: "POST", path: rooms, body: map[string]any{"name": "   ", "company": "Acme"}, status: 422, field: "name"},
		badInput{name: "room name too long", method: "POST", path: rooms, body: map[string]any{"name": long(201), "company": "Acme"}, status: 422, field: "name"},
		badInput{name: "room name control char", method: "POST", path: rooms, body: map[string]any{"name": "a\u0008b", "company": "Acme"}, status: 422, field: "name"},
		badInput{name: "room name number", method: "POST", path: rooms, body: raw(`{"name": 1, "company": "Acme"}`), status: 422, field: "name"},
		badInput{name: "room company missing", method: "POST", path: rooms, body: map[string]any{"name": "Deal"}, status: 422, field: "company"},
		badInput{name: "room company array", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": ["Acme"]}`), status: 422, field: "company"},
		badInput{name: "room stage unknown", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "stage": "closing"}, status: 422, field: "stage"},
		badInput{name: "room stage number", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "stage": 2}`), status: 422, field: "stage"},
		badInput{name: "room close_window unknown", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "close_window": "soon"}, status: 422, field: "close_window"},
		badInput{name: "room close_window bool", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "close_window": true}`), status: 422, field: "close_window"},
		badInput{name: "room value negative", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "value": -1}, status: 422, field: "value"},
		badInput{name: "room value huge", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "value": 1e14}, status: 422, field: "value"},
		badInput{name: "room value string", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "value": "100"}`), status: 422, field: "value"},
		badInput{name: "room currency lower", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "currency": "eur"}, status: 422, field: "currency"},
		badInput{name: "room currency word", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "currency": "euro"}, status: 422, field: "currency"},
		badInput{name: "room currency number", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "currency": 978}`), status: 422, field: "currency"},
		badInput{name: "room tags string", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "tags": "a,b"}`), status: 422, field: "tags"},
		badInput{name: "room tags numbers", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "tags": [1]}`), status: 422, field: "tags"},
		badInput{name: "room tag empty", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "tags": []string{" "}}, status: 422, field: "tags"},
		badInput{name: "room tag too long", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "tags": []string{long(41)}}, status: 422, field: "tags"},
		badInput{name: "room too many tags", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "tags": manyIDs(21)}, status: 422, field: "tags"},
		badInput{name: "room template unknown", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "template": "tpl_nope"}, status: 422, field: "template"},
		badInput{name: "room template unknown room", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "template": "r_nope"}, status: 422, field: "template"},
		badInput{name: "room template number", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "template": 1}`), status: 422, field: "template"},
		badInput{name: "room pipeline string", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "pipeline": "intro"}`), status: 422, field: "pipeline"},
		badInput{name: "room pipeline numbers", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "pipeline": [1, 2]}`), status: 422, field: "pipeline"},
		badInput{name: "room pipeline bad stage name", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "pipeline": []string{"Intro Call"}}, status: 422, field: "pipeline"},
		badInput{name: "room pipeline with won", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "pipeline": []string{"intro", "won"}}, status: 422, field: "pipeline"},
		badInput{name: "room pipeline duplicate", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "pipeline": []string{"intro", "intro"}}, status: 422, field: "pipeline"},
		badInput{name: "room stage outside pipeline", method: "POST", path: rooms, body: map[string]any{"name": "Deal", "company": "Acme", "pipeline": []string{"intro"}, "stage": "trust"}, status: 422, field: "stage"},
		badInput{name: "room unknown field", method: "POST", path: rooms, body: raw(`{"name": "Deal", "company": "Acme", "owner_id": "sam"}`), status: 422, field: "owner_id", alt: 400},

		badInput{name: "room patch stage unknown", method: "PATCH", path: room, body: map[string]any{"stage": "closing"}, status: 422, field: "stage"},
		badInput{name: "room patch stage null", method: "PATCH", path: room, body: raw(`{"stage": null}`), status: 422, field: "stage"},
		badInput{name: "room patch close_window unknown", method: "PATCH", path: room, body: map[string]any{"close_window": "someday"}, status: 422, field: "close_window"},
		badInput{name: "room patch close_window null", method: "PATCH", path: room, body: raw(`{"close_window": null}`), status: 422, field: "close_window"},
		badInput{name: "room patch follow_up_days zero", method: "PATCH", path: room, body: map[string]any{"follow_up_days": 0}, status: 422, field: "follow_up_days"},
		badInput{name: "room patch follow_up_days too long", method: "PATCH", path: room, body: map[string]any{"follow_up_days": 366}, status: 422, field: "follow_up_days"},
		badInput{name: "room patch follow_up_days text", method: "PATCH", path: room, body: map[string]any{"follow_up_days": "14"}, status: 422, field: "follow_up_days"},
		badInput{name: "room patch name empty", method: "PATCH", path: room, body: map[string]any{"name": ""}, status: 422, field: "name"},
		badInput{name: "room patch name null", method: "PATCH", path: room, body: raw(`{"name": null}`), status: 422, field: "name"},
		badInput{name: "room patch company null", method: "PATCH", path: room, body: raw(`{"company": null}`), status: 422, field: "company"},
		badInput{name: "room patch name number", method: "PATCH", path: room, body: raw(`{"name": 1}`), status: 422, field: "name"},
		badInput{name: "room patch company object", method: "PATCH", path: room, body: raw(`{"company": {}}`), status: 422, field: "company"},
		badInput{name: "room patch stage number", method: "PATCH", path: room, body: raw(`{"stage": 3}`), status: 422, field: "stage"},
		badInput{name: "room patch close_window number", method: "PATCH", path: room, body: raw(`{"close_window": 30}`), status: 422, field: "close_window"},
		badInput{name: "room patch currency number", method: "PATCH", path: room, body: raw(`{"currency": 978}`), status: 422, field: "currency"},
		badInput{name: "room patch tags string", method: "PATCH", path: room, body: raw(`{"tags": "a"}`), status: 422, field: "tags"},
		badInput{name: "room patch value string", method: "PATCH", path: room, body: raw(`{"value": "lots"}`), status: 422, field: "value"},
		badInput{name: "room patch value negative", method: "PATCH", path: room, body: map[string]any{"value": -5}, status: 422, field: "value"},
		badInput{name: "room patch tags numbers", method: "PATCH", path: room, body: raw(`{"tags": [1]}`), status: 422, field: "tags"},
		badInput{name: "room patch currency bad", method: "PATCH", path: room, body: map[string]any{"currency": "$"}, status: 422, field: "currency"},
		badInput{name: "room patch unknown field", method: "PATCH", path: room, body: raw(`{"pipeline": ["a"]}`), status: 422, field: "pipeline", alt: 400},
		badInput{name: "room patch owner field", method: "PATCH", path: room, body: raw(`{"owner_id": "sam"}`), status: 422, field: "owner_id", alt: 400},
		// Half-valid: the good stage must not be applied.
		badInput{name: "room patch valid stage with bad window", method: "PATCH", path: room, body: map[string]any{"stage": "trust", "close_window": "soon"}, status: 422, field: "close_window"},
		badInput{name: "room patch unknown room", method: "PATCH", path: "/rooms/r_nope", body: map[string]any{"stage": "trust"}, status: 404},
	)

	// Messages.
	msg := "/rooms/{room}/messages/{msg}"
	add(
		badInput{name: "message body missing", method: "POST", path: msgs, body: map[string]any{}, status: 422, field: "body"},
		badInput{name: "message body empty", method: "POST", path: msgs, body: map[string]any{"body": ""}, status: 422, field: "body"},
		badInput{name: "message body whitespace", method: "POST", path: msgs, body: map[string]any{"body": " \n\t \r\n "}, status: 422, field: "body"},
		badInput{name: "message body too long", method: "POST", path: msgs, body: map[string]any{"body": long(10001)}, status: 422, field: "body"},
		badInput{name: "message body NUL", method: "POST", path: msgs, body: map[string]any{"body": "a\u0000b"}, status: 422, field: "body"},
		badInput{name: "message body escape", method: "POST", path: msgs, body: map[string]any{"body": "\u001b]0;pwn\u0007"}, status: 422, field: "body"},
		badInput{name: "message body number", method: "POST", path: msgs, body: raw(`{"body": 5}`), status: 422, field: "body"},
		badInput{name: "message visibility unknown", method: "POST", path: msgs, body: map[string]any{"body": "hi", "visibility": "public"}, status: 422, field: "visibility"},
		badInput{name: "message visibility number", method: "POST", path: msgs, body: raw(`{"body": "hi", "visibility": 1}`), status: 422, field: "visibility"},
		badInput{name: "message parent unknown", method: "POST", path: msgs, body: map[string]any{"body": "hi", "parent_id": "m_nope"}, status: 422, field: "parent_id"},
		badInput{name: "message parent number", method: "POST", path: msgs, body: raw(`{"body": "hi", "parent_id": 5}`), status: 422, field: "parent_id"},
		badInput{name: "message task unknown", method: "POST", path: msgs, body: map[string]any{"body": "hi", "task_id": "t_nope"}, status: 422, field: "task_id"},
		badInput{name: "message task array", method: "POST", path: msgs, body: raw(`{"body": "hi", "task_id": ["t"]}`), status: 422, field: "task_id"},
		badInput{name: "message attachment unknown", method: "POST", path: msgs, body: map[string]any{"body": "hi", "attachments": []string{"a_nope"}}, status: 422, field: "attachments"},
		badInput{name: "message attachments string", method: "POST", path: msgs, body: raw(`{"body": "hi", "attachments": "a_1"}`), status: 422, field: "attachments"},
		badInput{name: "message too many attachments", method: "POST", path: msgs, body: map[string]any{"body": "hi", "attachments": manyIDs(21)}, status: 422, field: "attachments"},
		badInput{name: "message internal reply in shared thread under internal task", method: "POST", path: msgs, body: map[string]any{"body": "hi", "task_id": "{itask}", "visibility": "shared"}, status: 422, field: "visibility"},
		badInput{name: "message unknown field", method: "POST", path: msgs, body: raw(`{"body": "hi", "author": "olivia"}`), status: 422, field: "author", alt: 400},
		badInput{name: "message edit body empty", method: "PATCH", path: msg, body: map[string]any{"body": ""}, status: 422, field: "body"},
		badInput{name: "message edit body too long", method: "PATCH", path: msg, body: map[string]any{"body": long(10001)}, status: 422, field: "body"},
		badInput{name: "message edit body array", method: "PATCH", path: msg, body: raw(`{"body": ["x"]}`), status: 422, field: "body"},
		badInput{name: "message edit visibility", method: "PATCH", path: msg, body: raw(`{"body": "x", "visibility": "internal"}`), status: 422, field: "visibility", alt: 400},
		badInput{name: "message edit unknown message", method: "PATCH", path: "/rooms/{room}/messages/m_nope", body: map[string]any{"body": "x"}, status: 404},
		badInput{name: "message delete unknown message", method: "DELETE", path: "/rooms/{room}/messages/m_nope", status: 404},
		badInput{name: "message get unknown message", method: "GET", path: "/rooms/{room}/messages/m_nope", status: 404},
		badInput{name: "message list unknown thread", method: "GET", path: "/rooms/{room}/messages?parent_id=m_nope", status: 404},
		badInput{name: "message list unknown task", method: "GET", path: "/rooms/{room}/messages?task_id=t_nope", status: 404},
		badInput{name: "attachment get unknown", method: "GET", path: "/rooms/{room}/attachments/a_nope", status: 404},
	)
	// A reply to a reply: threads are one level deep. The fixture has no
	// reply, so its path is filled in by TestBadInput.

	// Members.
	mem := "/rooms/{room}/members/" + staffW.ID
	add(
		badInput{name: "member user_id missing", method: "POST", path: members, body: map[string]any{"name": "N", "kind": "staff"}, status: 422, field: "user_id"},
		badInput{name: "member user_id spaces", method: "POST", path: members, body: map[string]any{"user_id": "a b", "name": "N", "kind": "staff"}, status: 422, field: "user_id"},
		badInput{name: "member user_id too long", method: "POST", path: members, body: map[string]any{"user_id": long(129), "name": "N", "kind": "staff"}, status: 422, field: "user_id"},
		badInput{name: "member user_id NUL", method: "POST", path: members, body: map[string]any{"user_id": "a\u0000b", "name": "N", "kind": "staff"}, status: 422, field: "user_id"},
		badInput{name: "member user_id number", method: "POST", path: members, body: raw(`{"user_id": 5, "name": "N", "kind": "staff"}`), status: 422, field: "user_id"},
		badInput{name: "member name number", method: "POST", path: members, body: raw(`{"user_id": "nina", "name": 1, "kind": "staff"}`), status: 422, field: "name"},
		badInput{name: "member name empty", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": " ", "kind": "staff"}, status: 422, field: "name"},
		badInput{name: "member name too long", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": long(101), "kind": "staff"}, status: 422, field: "name"},
		badInput{name: "member name newline", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina\nNew", "kind": "staff"}, status: 422, field: "name"},
		badInput{name: "member kind missing", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina"}, status: 422, field: "kind"},
		badInput{name: "member kind unknown", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina", "kind": "vendor"}, status: 422, field: "kind"},
		badInput{name: "member kind number", method: "POST", path: members, body: raw(`{"user_id": "nina", "name": "Nina", "kind": 1}`), status: 422, field: "kind"},
		badInput{name: "member access unknown", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina", "kind": "staff", "access": "admin"}, status: 422, field: "access"},
		badInput{name: "member access bool", method: "POST", path: members, body: raw(`{"user_id": "nina", "name": "Nina", "kind": "staff", "access": true}`), status: 422, field: "access"},
		badInput{name: "member role unknown", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina", "kind": "staff", "role_in_room": "boss"}, status: 422, field: "role_in_room"},
		badInput{name: "member role number", method: "POST", path: members, body: raw(`{"user_id": "nina", "name": "Nina", "kind": "staff", "role_in_room": 1}`), status: 422, field: "role_in_room"},
		badInput{name: "member customer owner", method: "POST", path: members, body: map[string]any{"user_id": "ben", "name": "Ben", "kind": "customer", "role_in_room": "owner"}, status: 422, field: "role_in_room"},
		badInput{name: "member owner read only", method: "POST", path: members, body: map[string]any{"user_id": "nina", "name": "Nina", "kind": "staff", "role_in_room": "owner", "access": "read"}, status: 422, field: "access"},
		badInput{name: "member unknown field", method: "POST", path: members, body: raw(`{"user_id": "nina", "name": "Nina", "kind": "staff", "role": "admin"}`), status: 422, field: "role", alt: 400},
		badInput{name: "member exists", method: "POST", path: members, body: map[string]any{"user_id": staffW.ID, "name": "W", "kind": "staff"}, status: 409},
		badInput{name: "member patch unknown member", method: "PATCH", path: "/rooms/{room}/members/ghost", body: map[string]any{"access": "read"}, status: 404},
		badInput{name: "member patch access unknown", method: "PATCH", path: mem, body: map[string]any{"access": "owner"}, status: 422, field: "access"},
		badInput{name: "member patch access null", method: "PATCH", path: mem, body: raw(`{"access": null}`), status: 422, field: "access"},
		badInput{name: "member patch access empty", method: "PATCH", path: mem, body: map[string]any{"access": ""}, status: 422, field: "access"},
		badInput{name: "member patch role unknown", method: "PATCH", path: mem, body: map[string]any{"role_in_room": "boss"}, status: 422, field: "role_in_room"},
		badInput{name: "member patch role null", method: "PATCH", path: mem, body: raw(`{"role_in_room": null}`), status: 422, field: "role_in_room"},
		badInput{name: "member patch customer owner", method: "PATCH", path: "/rooms/{room}/members/" + custW.ID, body: map[string]any{"role_in_room": "owner"}, status: 422, field: "role_in_room"},
		badInput{name: "member patch owner read", method: "PATCH", path: "/rooms/{room}/members/" + owner.ID, body: map[string]any{"access": "read"}, status: 422, field: "access"},
		badInput{name: "member patch last owner", method: "PATCH", path: "/rooms/{room}/members/" + owner.ID, body: map[string]any{"role_in_room": "member"}, status: 409},
		badInput{name: "member patch access number", method: "PATCH", path: mem, body: raw(`{"access": 1}`), status: 422, field: "access"},
		badInput{name: "member patch role bool", method: "PATCH", path: mem, body: raw(`{"role_in_room": false}`), status: 422, field: "role_in_room"},
		badInput{name: "member patch name number", method: "PATCH", path: mem, body: raw(`{"name": 1}`), status: 422, field: "name"},
		badInput{name: "member patch name empty", method: "PATCH", path: mem, body: map[string]any{"name": ""}, status: 422, field: "name"},
		badInput{name: "member patch kind", method: "PATCH", path: mem, body: map[string]any{"kind": "customer"}, status: 422, field: "kind", alt: 400},
		badInput{name: "member delete unknown member", method: "DELETE", path: "/rooms/{room}/members/ghost", status: 404},
		badInput{name: "member delete last owner", method: "DELETE", path: "/rooms/{room}/members/" + owner.ID, status: 409},
	)

	// Invites.
	add(
		badInput{name: "invite email missing", method: "POST", path: invites, body: map[string]any{"access": "read"}, status: 422, field: "email"},
		badInput{name: "invite email bad", method: "POST", path: invites, body: map[string]any{"email": "not-an-email"}, status: 422, field: "email"},
		badInput{name: "invite email with name", method: "POST", path: invites, body: map[string]any{"email": "Eve <eve@buyer.example>"}, status: 422, field: "email"},
		badInput{name: "invite email header injection", method: "POST", path: invites, body: map[string]any{"email": "eve@buyer.example\r\nBcc: x@y.example"}, status: 422, field: "email"},
		badInput{name: "invite email too long", method: "POST", path: invites, body: map[string]any{"email": long(250) + "@buyer.example"}, status: 422, field: "email"},
		badInput{name: "invite email number", method: "POST", path: invites, body: raw(`{"email": 1}`), status: 422, field: "email"},
		badInput{name: "invite access bool", method: "POST", path: invites, body: raw(`{"email": "eve@buyer.example", "access": true}`), status: 422, field: "access"},
		badInput{name: "invite access unknown", method: "POST", path: invites, body: map[string]any{"email": "eve@buyer.example", "access": "admin"}, status: 422, field: "access"},
		badInput{name: "invite expiry negative", method: "POST", path: invites, body: map[string]any{"email": "eve@buyer.example", "expires_in_days": -1}, status: 422, field: "expires_in_days"},
		badInput{name: "invite expiry too long", method: "POST", path: invites, body: map[string]any{"email": "eve@buyer.example", "expires_in_days": 91}, status: 422, field: "expires_in_days"},
		badInput{name: "invite expiry string", method: "POST", path: invites, body: raw(`{"email": "eve@buyer.example", "expires_in_days": "7"}`), status: 422, field: "expires_in_days"},
		badInput{name: "invite expiry fraction", method: "POST", path: invites, body: raw(`{"email": "eve@buyer.example", "expires_in_days": 1.5}`), status: 422, field: "expires_in_days"},
		badInput{name: "invite expiry overflow", method: "POST", path: invites, body: raw(`{"email": "eve@buyer.example", "expires_in_days": 1e30}`), status: 422, field: "expires_in_days"},
		badInput{name: "invite unknown field", method: "POST", path: invites, body: raw(`{"email": "eve@buyer.example", "role": "owner"}`), status: 422, field: "role", alt: 400},
		badInput{name: "invite revoke unknown", method: "DELETE", path: "/rooms/{room}/invites/i_nope", status: 404},
		badInput{name: "accept unknown code", method: "POST", path: "/invites/nope/accept", body: map[string]any{"name": "Ivy", "email": inviteeEmail}, status: 404},
		badInput{name: "accept long code", method: "POST", path: "/invites/" + long(300) + "/accept", body: map[string]any{"name": "Ivy", "email": inviteeEmail}, status: 404},
		badInput{name: "accept wrong email", method: "POST", path: "/invites/{code}/accept", body: map[string]any{"name": "Ivy", "email": "eve@buyer.example"}, status: 422, field: "email"},
		badInput{name: "accept bad email", method: "POST", path: "/invites/{code}/accept", body: map[string]any{"name": "Ivy", "email": "eve"}, status: 422, field: "email"},
		badInput{name: "accept name empty", method: "POST", path: "/invites/{code}/accept", body: map[string]any{"name": " ", "email": inviteeEmail}, status: 422, field: "name"},
		badInput{name: "accept name control", method: "POST", path: "/invites/{code}/accept", body: map[string]any{"name": "Ivy\u0000", "email": inviteeEmail}, status: 422, field: "name"},
		badInput{name: "accept email number", method: "POST", path: "/invites/{code}/accept", body: raw(`{"name": "Ivy", "email": 5}`), status: 422, field: "email"},
		badInput{name: "accept name number", method: "POST", path: "/invites/{code}/accept", body: raw(`{"name": 1, "email": "` + inviteeEmail + `"}`), status: 422, field: "name"},
	)

	// null where the contract does not allow it: refused, not read as
	// "left out" (encoding/json would leave the field at its default).
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", tasks, `{"title": "x", "visibility": null}`, "visibility"},
		{"POST", tasks, `{"title": "x", "status": null}`, "status"},
		{"POST", tasks, `{"title": "x", "assignees": null}`, "assignees"},
		{"POST", tasks, `{"title": "x", "description": null}`, "description"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "tags": null}`, "tags"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "pipeline": null}`, "pipeline"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "close_window": null}`, "close_window"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "template": null}`, "template"},
		{"POST", msgs, `{"body": "hi", "visibility": null}`, "visibility"},
		{"POST", msgs, `{"body": "hi", "parent_id": null}`, "parent_id"},
		{"POST", msgs, `{"body": "hi", "attachments": null}`, "attachments"},
		{"POST", members, `{"user_id": "nina", "name": "Nina", "kind": "staff", "access": null}`, "access"},
		{"POST", members, `{"user_id": "nina", "name": "Nina", "kind": "staff", "role_in_room": null}`, "role_in_room"},
		{"POST", invites, `{"email": "eve@buyer.example", "access": null}`, "access"},
		{"POST", invites, `{"email": "eve@buyer.example", "expires_in_days": null}`, "expires_in_days"},
		{"POST", invites, `{"email": "eve@buyer.example", "Expires_In_Days": null}`, "expires_in_days"},
		// An empty value of listed values is not "left out" either.
		{"POST", tasks, `{"title": "x", "visibility": ""}`, "visibility"},
		{"POST", tasks, `{"title": "x", "status": ""}`, "status"},
		{"PATCH", "/rooms/{room}/tasks/{task}", `{"visibility": ""}`, "visibility"},
		{"PATCH", "/rooms/{room}/tasks/{task}", `{"status": ""}`, "status"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "stage": ""}`, "stage"},
		{"POST", rooms, `{"name": "Deal", "company": "Acme", "close_window": ""}`, "close_window"},
		{"PATCH", "/rooms/{room}", `{"close_window": ""}`, "close_window"},
		{"POST", msgs, `{"body": "hi", "visibility": ""}`, "visibility"},
		{"POST", members, `{"user_id": "nina", "name": "Nina", "kind": "staff", "access": ""}`, "access"},
		{"POST", members, `{"user_id": "nina", "name": "Nina", "kind": ""}`, "kind"},
		{"PATCH", "/rooms/{room}/members/" + staffW.ID, `{"role_in_room": ""}`, "role_in_room"},
		{"POST", invites, `{"email": "eve@buyer.example", "access": ""}`, "access"},
	} {
		add(badInput{name: c.method + " " + c.path + ": " + c.body, method: c.method, path: c.path,
			body: raw(c.body), status: 422, field: c.field})
	}

	// Query parameters: given empty where a number or a day is wanted, or
	// given twice.
	add(
		badInput{name: "my tasks due_before empty", method: "GET", path: "/me/tasks?due_before=", status: 422, field: "due_before"},
		badInput{name: "my tasks due_before twice", method: "GET", path: "/me/tasks?due_before=2030-01-01&due_before=2031-01-01", status: 422, field: "due_before"},
		badInput{name: "my tasks status empty", method: "GET", path: "/me/tasks?status=", status: 422, field: "status"},
		badInput{name: "my tasks status twice", method: "GET", path: "/me/tasks?status=open&status=done", status: 422, field: "status"},
		badInput{name: "tasks limit empty", method: "GET", path: tasks + "?limit=", status: 422, field: "limit"},
		badInput{name: "tasks limit twice", method: "GET", path: tasks + "?limit=5&limit=6", status: 422, field: "limit"},
		badInput{name: "tasks limit empty then a number", method: "GET", path: tasks + "?limit=&limit=5", status: 422, field: "limit"},
		badInput{name: "members cursor twice", method: "GET", path: members + "?cursor=&cursor=x", status: 422, field: "cursor"},
		badInput{name: "events after empty", method: "GET", path: "/rooms/{room}/events?after=", status: 422, field: "after"},
		badInput{name: "events after twice", method: "GET", path: "/rooms/{room}/events?after=1&after=2", status: 422, field: "after"},
		badInput{name: "inbox limit empty", method: "GET", path: "/me/inbox?limit=", status: 422, field: "limit"},
	)

	// Query parameters.
	for _, p := range []string{"/rooms/{room}/events", "/rooms/{room}/tasks", "/rooms/{room}/messages", "/rooms/{room}/members",
		"/rooms/{room}/attachments", "/rooms/{room}/invites", "/rooms", "/me/tasks", "/me/inbox"} {
		for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=1.5", "limit=99999999999999999999", "limit=1e2", "limit=%00"} {
			add(badInput{name: "GET " + p + "?" + q, method: "GET", path: p + "?" + q, status: 422, field: "limit"})
		}
		cursors := []string{"%25%25", "!!!", "a+b", long(400)}
		switch p {
		case "/rooms/{room}/messages", "/me/inbox", "/rooms/{room}/attachments":
			// Keyset cursors: a well-formed one is a position, not an item.
		default:
			cursors = append(cursors, cursorOf("zz-nothing-here"))
		}
		for _, cur := range cursors {
			field := "cursor"
			if p == "/rooms/{room}/events" {
				// an events cursor is a seq in disguise
				field = ""
			}
			add(badInput{name: "GET " + p + " bad cursor " + dealroom.Clip(cur), method: "GET", path: p + "?cursor=" + cur, status: 422, field: field})
		}
	}
	add(
		badInput{name: "events after negative", method: "GET", path: "/rooms/{room}/events?after=-1", status: 422, field: "after"},
		badInput{name: "events after word", method: "GET", path: "/rooms/{room}/events?after=last", status: 422, field: "after"},
		badInput{name: "events after fraction", method: "GET", path: "/rooms/{room}/events?after=1.5", status: 422, field: "after"},
		badInput{name: "events after overflow", method: "GET", path: "/rooms/{room}/events?after=99999999999999999999", status: 422, field: "after"},
		// (A stage filter is open-ended: custom pipelines name their own
		// stages. The forecast windows are a closed set.)
		badInput{name: "rooms close_window filter unknown", method: "GET", path: "/rooms?close_window=soon", as: manager, status: 422, field: "close_window"},
		badInput{name: "my tasks status unknown", method: "GET", path: "/me/tasks?status=closed", status: 422, field: "status"},
		badInput{name: "my tasks status one unknown", method: "GET", path: "/me/tasks?status=open,closed", status: 422, field: "status"},
		badInput{name: "my tasks due_before tomorrow", method: "GET", path: "/me/tasks?due_before=tomorrow", status: 422, field: "due_before"},
		badInput{name: "my tasks due_before month 13", method: "GET", path: "/me/tasks?due_before=2026-13-40", status: 422, field: "due_before"},
		badInput{name: "mark read unknown item", method: "POST", path: "/me/inbox/e_nope/read", status: 404},
	)

	// Idempotency-Key.
	for _, k := range []string{"has space", "tab\there", "ümlaut", long(201)} {
		add(badInput{name: "idempotency key " + dealroom.Clip(k), method: "POST", path: tasks,
			body: map[string]any{"title": "x"}, hdrs: []header{{"Idempotency-Key", k}}, status: 400})
	}
	return cases
}

// manyIDs returns n distinct short ids.
func manyIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("id%d", i)
	}
	return out
}

// TestBadInput sends every kind of bad request and checks that each gets a
// 4xx with the contract's error body, never a 500, and changes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	// A reply, to try replying to it.
	reply := ts.must(t, 201, "POST", "/rooms/"+f.Room+"/messages", owner, map[string]any{"body": "re", "parent_id": f.Msg}).str(t, "id")
	cases := append(badInputs(), badInput{name: "message reply to a reply", method: "POST", path: "/rooms/{room}/messages",
		body: map[string]any{"body": "hi", "parent_id": reply}, status: 422, field: "parent_id"})

	names := map[string]bool{}
	for _, c := range cases {
		require.False(t, names[c.name], "duplicate case name %q", c.name)
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			as := c.as
			if as.ID == "" {
				as = owner
			}
			body := c.body
			if m, ok := body.(map[string]any); ok {
				for k, v := range m {
					if s, ok := v.(string); ok {
						m[k] = f.expand(s)
					}
				}
			}
			roomsBefore := ts.roomCount(t)
			before := ts.eventCount(t, f.Room)
			roomBefore := ts.must(t, 200, "GET", "/rooms/"+f.Room, owner, nil).Body
			r := ts.do(t, c.method, f.expand(c.path), tok(t, as), body, c.hdrs...)
			require.Less(t, r.Status, 500, "never a 5xx: %s", r)
			if c.alt != 0 && r.Status == c.alt {
				assertErrorBody(t, r, "")
			} else if assert.Equal(t, c.status, r.Status, "%s %s: %s", c.method, c.path, r) {
				assertErrorBody(t, r, c.field)
			}
			assert.Equal(t, before, ts.eventCount(t, f.Room), "a refused request writes no event")
			assert.Equal(t, roomsBefore, ts.roomCount(t), "a refused request makes no room")
			assert.JSONEq(t, string(roomBefore), string(ts.must(t, 200, "GET", "/rooms/"+f.Room, owner, nil).Body),
				"a refused request changes nothing of the room")
		})
	}
}

// TestBadInputKeepsTask: a refused task update leaves the task as it was.
func TestBadInputKeepsTask(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/tasks/" + f.Task
	before := ts.must(t, 200, "GET", path, owner, nil).Body
	ts.must(t, 422, "PATCH", path, owner, map[string]any{"title": "Renamed", "assignees": []string{"ghost"}})
	ts.must(t, 422, "PATCH", path, owner, map[string]any{"status": "done", "due": "tomorrow"})
	ts.must(t, 422, "PATCH", path, owner, map[string]any{"description": "@Carl look", "visibility": "internal"})
	assert.JSONEq(t, string(before), string(ts.must(t, 200, "GET", path, owner, nil).Body))
}

// TestUploadInput checks the upload route's refusals with a small size
// limit: 413 without storing anything, and 4xx for broken forms.
func TestUploadInput(t *testing.T) {
	t.Parallel()
	const limit = 1024
	ts := newTestServer(t, withAPI(func(c *api.Config) { c.MaxUploadBytes = limit }))
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/attachments"
	blobs := ts.blobFiles(t)
	require.Len(t, blobs, 2, "the fixture's two files")

	cases := []struct {
		name   string
		query  string
		body   any
		hdrs   []header
		status int
		field  string
	}{
		{name: "one byte over the limit", body: fileUpload(t, "big.bin", bytes.Repeat([]byte{'a'}, limit+1)), status: 413},
		{name: "far over the limit", body: fileUpload(t, "big.bin", bytes.Repeat([]byte{'b'}, 200<<10)), status: 413},
		{name: "over the limit, streamed without length",
			body: streamed(fileUpload(t, "big.bin", bytes.Repeat([]byte{'c'}, 200<<10))), status: 413},
		{name: "slightly over the limit, streamed",
			body: streamed(fileUpload(t, "big.bin", bytes.Repeat([]byte{'d'}, limit+100))), status: 413},
		{name: "no file field", body: upload(t, part{name: "visibility", data: []byte("shared")}), status: 422, field: "file"},
		{name: "file under another name", body: upload(t, part{name: "upload", filename: "a.txt", data: []byte("x")}), status: 422},
		{name: "empty form", body: upload(t), status: 422, field: "file"},
		{name: "two files", body: upload(t,
			part{name: "file", filename: "a.txt", data: []byte("a")},
			part{name: "file", filename: "b.txt", data: []byte("b")}), status: 400},
		{name: "visibility unknown", query: "?visibility=secret", body: fileUpload(t, "e.txt", []byte("e")), status: 422, field: "visibility"},
		{name: "visibility field unknown", body: upload(t,
			part{name: "visibility", data: []byte("secret")},
			part{name: "file", filename: "f.txt", data: []byte("f")}), status: 422, field: "visibility"},
		{name: "task unknown", query: "?task_id=t_nope", body: fileUpload(t, "g.txt", []byte("g")), status: 422, field: "task_id"},
		{name: "visibility empty in the query", query: "?visibility=", body: fileUpload(t, "e.txt", []byte("e")), status: 422, field: "visibility"},
		{name: "visibility empty in the form", body: upload(t,
			part{name: "visibility", data: []byte("")},
			part{name: "file", filename: "f.txt", data: []byte("f")}), status: 422, field: "visibility"},
		{name: "visibility unknown in the query, shared in the form", query: "?visibility=secret", body: upload(t,
			part{name: "visibility", data: []byte("shared")},
			part{name: "file", filename: "f.txt", data: []byte("f")}), status: 422, field: "visibility"},
		{name: "visibility twice in the query", query: "?visibility=shared&visibility=internal", body: fileUpload(t, "e.txt", []byte("e")), status: 422, field: "visibility"},
		{name: "visibility twice in the form", body: upload(t,
			part{name: "visibility", data: []byte("internal")},
			part{name: "visibility", data: []byte("shared")},
			part{name: "file", filename: "f.txt", data: []byte("f")}), status: 422, field: "visibility"},
		{name: "task_id twice in the query", query: "?task_id=a&task_id=b", body: fileUpload(t, "g.txt", []byte("g")), status: 422, field: "task_id"},
		{name: "shared file under internal task", query: "?task_id=" + f.ITask + "&visibility=shared", body: fileUpload(t, "h.txt", []byte("h")), status: 422, field: "visibility"},
		{name: "JSON instead of multipart", body: map[string]any{"file": "aGVsbG8="}, status: 400},
		{name: "no body", status: 400},
		{name: "multipart without boundary", body: raw("--x\r\n"), hdrs: []header{{"Content-Type", "multipart/form-data"}}, status: 400},
		{name: "truncated multipart", body: raw("--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc"),
			hdrs: []header{{"Content-Type", "multipart/form-data; boundary=xyz"}}, status: 400},
		{name: "bad idempotency key", body: fileUpload(t, "i.txt", []byte("i")), hdrs: []header{{"Idempotency-Key", "has space"}}, status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := ts.eventCount(t, f.Room)
			r := ts.do(t, "POST", path+c.query, tok(t, owner), c.body, c.hdrs...)
			require.Less(t, r.Status, 500, "never a 5xx: %s", r)
			if assert.Equal(t, c.status, r.Status, "%s", r) {
				assertErrorBody(t, r, c.field)
			}
			assert.Equal(t, before, ts.eventCount(t, f.Room), "a refused upload writes no event")
			assert.Len(t, ts.must(t, 200, "GET", path, owner, nil).items(t), 2, "no attachment recorded")
			if c.status == 413 {
				assert.ElementsMatch(t, blobs, ts.blobFiles(t), "nothing stored")
			}
		})
	}

	// At the limit exactly, the file is taken, byte for byte.
	data := bytes.Repeat([]byte{0, 1, 2, 3}, limit/4)
	r := ts.must(t, 201, "POST", path, owner, upload(t, part{name: "file", filename: "exact.bin", contentType: "application/octet-stream", data: data}))
	id := r.str(t, "id")
	assert.EqualValues(t, limit, r.object(t)["size"])
	got := ts.must(t, 200, "GET", path+"/"+id, custR, nil)
	assert.Equal(t, data, got.Body, "the stored bytes are exactly the bytes uploaded")
}

// streamed sends a multipart body without a Content-Length.
func streamed(mb *multipartBody) io.Reader {
	return &typedReader{Reader: io.MultiReader(bytes.NewReader(mb.buf.Bytes())), contentType: mb.contentType}
}

// typedReader is a streamed body with its content type.
type typedReader struct {
	io.Reader
	contentType string
}

// TestRefusedUploadStoresNothing: an upload that is refused after its
// bytes arrived (a customer's internal file, a bad visibility, an unknown
// task) leaves no file behind.
func TestRefusedUploadStoresNothing(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	path := "/rooms/" + f.Room + "/attachments"
	for _, c := range []struct {
		name   string
		as     dealroom.Actor
		query  string
		status int
	}{
		{"customer internal file", custW, "?visibility=internal", 403},
		{"bad visibility", owner, "?visibility=secret", 422},
		{"unknown task", owner, "?task_id=t_nope", 422},
		{"internal task for a customer", custW, "?task_id=" + f.ITask, 422},
	} {
		blobs := ts.blobFiles(t)
		r := ts.do(t, "POST", path+c.query, tok(t, c.as), fileUpload(t, "x.txt", []byte("refused bytes: "+c.name)))
		assert.Equal(t, c.status, r.Status, "%s: %s", c.name, r)
		assert.ElementsMatch(t, blobs, ts.blobFiles(t), "%s: nothing stored", c.name)
	}
}

// TestInvalidUTF8Refused checks that text encoding/json would silently turn
// into U+FFFD (bytes that are not UTF-8, escapes of half a surrogate pair)
// is refused as a whole with 400 bad_request, on a route with a token and on
// the one without, and writes nothing; a real pair is accepted.
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	tasks := "/rooms/" + f.Room + "/tasks"
	for _, c := range []struct{ name, body string }{
		{"two bytes that are no UTF-8", "{\"title\": \"\xff\xfe\"}"},
		{"a truncated sequence", "{\"title\": \"Caf\xc3\"}"},
		{"an encoded surrogate", "{\"title\": \"x\xed\xa0\x80\"}"},
		{"an overlong encoding", "{\"title\": \"x\xc0\xafy\"}"},
		{"a bad byte in a field name", "{\"title\": \"x\", \"\xff\": 1}"},
		{"a lone high surrogate escape", `{"title": "x\ud83d"}`},
		{"a high surrogate escape before a letter", `{"title": "x\ud83d\u0041"}`},
		{"a lone low surrogate escape", `{"title": "\ude00x"}`},
		{"swapped surrogate escapes", `{"title": "\ude00\ud83d"}`},
		{"a lone surrogate in a list", `{"title": "x", "assignees": ["\uDBFF"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := ts.eventCount(t, f.Room)
			tasksBefore := ts.must(t, 200, "GET", tasks, owner, nil).Body
			r := ts.do(t, "POST", tasks, tok(t, owner), raw(c.body))
			require.Equal(t, 400, r.Status, "%s", r)
			assertErrorBody(t, r, "")
			assert.Equal(t, "bad_request", r.object(t)["error"].(map[string]any)["code"])
			assert.Contains(t, r.object(t)["error"].(map[string]any)["message"], "not valid UTF-8")
			assert.Equal(t, before, ts.eventCount(t, f.Room), "nothing is written")
			assert.JSONEq(t, string(tasksBefore), string(ts.must(t, 200, "GET", tasks, owner, nil).Body))
		})
	}
	t.Run("invite acceptance", func(t *testing.T) {
		before := ts.eventCount(t, f.Room)
		r := ts.do(t, "POST", "/invites/"+f.InviteCode+"/accept", "",
			raw("{\"name\": \"Ivy \xff\", \"email\": \""+inviteeEmail+"\"}"))
		require.Equal(t, 400, r.Status, "%s", r)
		assert.Contains(t, r.object(t)["error"].(map[string]any)["message"], "not valid UTF-8")
		assert.Equal(t, before, ts.eventCount(t, f.Room), "the invite stays unaccepted")
	})
	t.Run("escaped pairs and U+FFFD itself are text", func(t *testing.T) {
		r := ts.must(t, 201, "POST", tasks, owner, raw(`{"title": "Go \ud83d\ude80 \uFFFD \\udc00 \u00e9"}`))
		assert.Equal(t, "Go \U0001F680 \uFFFD \\udc00 \u00e9", r.str(t, "title"))
	})
}

// TestNullableFieldsTakeNull checks the other side of refusing null: the
// fields the contract marks nullable take it, and an invite's
// expires_in_days of 0 means the default as the contract says.
func TestNullableFieldsTakeNull(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	f := newFixture(t, ts)
	base := "/rooms/" + f.Room
	tk := ts.must(t, 201, "POST", base+"/tasks", owner, raw(`{"title": "Nulls", "due": null, "position": null}`)).object(t)
	assert.Nil(t, tk["due"])
	ts.must(t, 200, "PATCH", base+"/tasks/"+tk["id"].(string), owner, raw(`{"due": null, "description": null, "assignees": null}`))
	ts.must(t, 201, "POST", "/rooms", owner, raw(`{"name": "Deal", "company": "Acme", "value": null}`))
	ts.must(t, 200, "PATCH", base, owner, raw(`{"value": null, "currency": null, "tags": null}`))
	inv := ts.must(t, 201, "POST", base+"/invites", owner, map[string]any{"email": "zed@buyer.example", "expires_in_days": 0}).object(t)
	created, err := time.Parse(time.RFC3339, inv["created_at"].(string))
	require.NoError(t, err)
	expires, err := time.Parse(time.RFC3339, inv["expires_at"].(string))
	require.NoError(t, err)
	assert.Equal(t, 14*24*time.Hour, expires.Sub(created), "0 means the default, 14 days")
}
