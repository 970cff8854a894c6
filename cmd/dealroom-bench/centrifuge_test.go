package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePush(t *testing.T) {
	body := messageBody(1500*time.Microsecond, 207, "xxxx")
	data, _ := json.Marshal(map[string]any{"type": "message.posted", "room": "bench-1-r7", "author": "u",
		"data": map[string]string{"body": body}})
	// 100 rooms: write 207 is the third write into room 7.
	want := eventInfo{room: "bench-1-r7", seq: 3, marked: true, sent: 1500 * time.Microsecond, n: 207}
	for _, frame := range []string{
		`{"push":{"channel":"bench-1-r7","pub":{"data":` + string(data) + `}}}`,
		// Another order of the fields takes the slow path.
		`{"push":{"pub":{"offset":0,"data":` + string(data) + `},"channel":"bench-1-r7"}}`,
	} {
		ev, ok := parsePush([]byte(frame), 100)
		if !ok || ev != want {
			t.Errorf("parsePush(%s) = %+v, %v; want %+v", frame, ev, ok, want)
		}
	}
	for _, frame := range []string{`{"id":2,"subscribe":{}}`, `{}`, `{"id":1,"connect":{"client":"c","ping":25,"pong":true}}`} {
		if _, ok := parsePush([]byte(frame), 100); ok {
			t.Errorf("parsePush(%s) took a reply for a publication", frame)
		}
	}
}

func TestSubscribeFrameConnectsFirst(t *testing.T) {
	lines := bytes.Split(cfSubscribeFrame("bench-1-r0"), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %d commands, want connect and subscribe", len(lines))
	}
	var connect, subscribe struct {
		ID        int             `json:"id"`
		Connect   json.RawMessage `json:"connect"`
		Subscribe struct {
			Channel string `json:"channel"`
		} `json:"subscribe"`
	}
	if err := json.Unmarshal(lines[0], &connect); err != nil || connect.ID != cfConnectID || connect.Connect == nil {
		t.Errorf("first command %s is not the connect command (%v)", lines[0], err)
	}
	if err := json.Unmarshal(lines[1], &subscribe); err != nil || subscribe.ID != cfSubscribeID || subscribe.Subscribe.Channel != "bench-1-r0" {
		t.Errorf("second command %s does not subscribe to the room (%v)", lines[1], err)
	}
}

func TestCompareRatiosOfPairs(t *testing.T) {
	dir := t.TempDir()
	write := func(label string, p50, p99 float64) {
		r := Result{Scenario: "b", Label: label, Params: Params{Conns: 1000, Rooms: 100, Rate: 1000},
			Delivery: &DeliveryStats{EndToEnd: Summary{P50: p50, P99: p99}}}
		b, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, label+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Pairs' p99 ratios 2, 4 and 10: the median is 4, though the ratio of
	// the medians (20 / 4) would be 5.
	write("b1000", 1, 20)
	write("cf-b1000", 1, 10)
	write("b1000.r2", 1, 8)
	write("cf-b1000.r2", 1, 2)
	write("b1000.r3", 1, 30)
	write("cf-b1000.r3", 1, 3)
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var out strings.Builder
	if err := compare(files, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| b1000 | 3 |", "| 4.00 (2.00–10.00) |", "p99 of b1000 (Dealroom storing every event durably): 4.00x, target at most 3.0x: **not met**",
		"p50 of b1000: 1.00x, target at most 2.0x: **met**"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare output lacks %q:\n%s", want, out.String())
		}
	}
}
