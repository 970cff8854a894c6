package main

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

// Summary describes a distribution of delays.
type Summary struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize sorts samples (nanoseconds) in place and describes them, with
// nearest-rank percentiles: the p-th percentile is a delay that was really
// measured, and at least p% of the samples are no larger.
func summarize(samples []int64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum float64
	for _, s := range samples {
		sum += float64(s)
	}
	ms := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	return Summary{
		Count: len(samples),
		Mean:  sum / float64(len(samples)) / float64(time.Millisecond),
		P50:   ms(percentile(samples, 50)),
		P95:   ms(percentile(samples, 95)),
		P99:   ms(percentile(samples, 99)),
		Max:   ms(samples[len(samples)-1]),
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted samples, 0 for none.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// seqTracker checks one subscription: every seq after the one it
// subscribed from must arrive exactly once. It keeps a bitset of the seqs
// seen, so that a late or repeated event is told apart from a lost one.
type seqTracker struct {
	from       int64    // subscribed after this seq
	seen       []uint64 // bit i: seq from+1+i arrived
	received   int64    // event frames, repeats included
	distinct   int64
	outOfOrder int64 // arrived below the highest seq seen before
	highest    int64
	contig     int64 // every seq up to contig arrived
}

func newSeqTracker(from int64) *seqTracker {
	return &seqTracker{from: from, highest: from, contig: from}
}

// add records the arrival of seq and tells whether it was new.
func (t *seqTracker) add(seq int64) bool {
	t.received++
	if seq <= t.from {
		return false // before the subscription: a repeat by definition
	}
	i := seq - t.from - 1
	w := int(i / 64)
	if w >= len(t.seen) {
		t.seen = append(t.seen, make([]uint64, w-len(t.seen)+1+len(t.seen)/2)...)
	}
	bit := uint64(1) << (i % 64)
	if t.seen[w]&bit != 0 {
		return false
	}
	t.seen[w] |= bit
	t.distinct++
	if seq < t.highest {
		t.outOfOrder++
	}
	t.highest = max(t.highest, seq)
	for t.has(t.contig + 1) {
		t.contig++
	}
	return true
}

func (t *seqTracker) has(seq int64) bool {
	if seq <= t.from {
		return true
	}
	i := seq - t.from - 1
	w := int(i / 64)
	return w < len(t.seen) && t.seen[w]&(1<<(i%64)) != 0
}

// Contiguous returns the seq up to which every event arrived: where a
// client resubscribes after a resync.
func (t *seqTracker) Contiguous() int64 { return t.contig }

// Accounting is the verdict on what a subscription received, against the
// room's head on the server.
type Accounting struct {
	Expected   int64 `json:"expected"`
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	OutOfOrder int64 `json:"out_of_order"`
	// Unknown counts seqs above the server's head: events the server
	// says do not exist.
	Unknown int64 `json:"unknown"`
}

// check compares what arrived with the room's head: every seq in
// (from, head] must have arrived once.
func (t *seqTracker) check(head int64) Accounting {
	a := Accounting{Expected: max(head-t.from, 0), Received: t.received,
		Duplicated: t.received - t.distinct, OutOfOrder: t.outOfOrder}
	var within int64
	for seq := t.from + 1; seq <= head; seq++ {
		if t.has(seq) {
			within++
		}
	}
	a.Lost = a.Expected - within
	a.Unknown = t.distinct - within
	return a
}

func (a *Accounting) add(b Accounting) {
	a.Expected += b.Expected
	a.Received += b.Received
	a.Lost += b.Lost
	a.Duplicated += b.Duplicated
	a.OutOfOrder += b.OutOfOrder
	a.Unknown += b.Unknown
}

// Body of the messages the bench writes: the marker, the bench's
// monotonic clock at sending (nanoseconds since it started) and the write's
// number. Subscribers find it in the event frames without decoding them.
const bodyMarker = "bench "

func messageBody(sent time.Duration, n int64, pad string) string {
	return bodyMarker + strconv.FormatInt(int64(sent), 10) + " " + strconv.FormatInt(n, 10) + " " + pad
}

// eventInfo is what a subscriber needs of an event frame.
type eventInfo struct {
	room string
	seq  int64
	// sent and n come from a bench message's body (marked).
	marked bool
	sent   time.Duration
	n      int64
}

var (
	eventPrefix = []byte(`{"type":"event","room":"`)
	seqKey      = []byte(`,"event":{"seq":`)
	bodyKey     = []byte(`"body":"` + bodyMarker)
)

// parseEvent reads an event frame. The server builds these frames by hand
// ({"type":"event","room":...,"event":{"seq":...}}), so the fast path
// scans for the few fields it needs; anything else is decoded as JSON.
// ok is false for frames that are not events.
func parseEvent(frame []byte) (ev eventInfo, ok bool) {
	if !bytes.HasPrefix(frame, eventPrefix) {
		if !bytes.Contains(frame[:min(len(frame), 40)], []byte(`"event"`)) {
			return ev, false
		}
		return parseEventJSON(frame)
	}
	rest := frame[len(eventPrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || !bytes.HasPrefix(rest[end+1:], seqKey) {
		return parseEventJSON(frame)
	}
	ev.room = string(rest[:end])
	num := rest[end+1+len(seqKey):]
	seq, n := leadingInt(num)
	if n == 0 {
		return parseEventJSON(frame)
	}
	ev.seq = seq
	if i := bytes.Index(num, bodyKey); i >= 0 {
		ev.sent, ev.n, ev.marked = parseMarker(num[i+len(bodyKey):])
	}
	return ev, true
}

// parseMarker reads "SENT N" at the start of b.
func parseMarker(b []byte) (sent time.Duration, n int64, ok bool) {
	s, k := leadingInt(b)
	if k == 0 || k >= len(b) || b[k] != ' ' {
		return 0, 0, false
	}
	w, j := leadingInt(b[k+1:])
	if j == 0 {
		return 0, 0, false
	}
	return time.Duration(s), w, true
}

// leadingInt parses the decimal digits at the start of b; n is how many.
func leadingInt(b []byte) (v int64, n int) {
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

func parseEventJSON(frame []byte) (ev eventInfo, ok bool) {
	var f struct {
		Type  string `json:"type"`
		Room  string `json:"room"`
		Event struct {
			Seq  int64 `json:"seq"`
			Data struct {
				Body string `json:"body"`
			} `json:"data"`
		} `json:"event"`
	}
	if json.Unmarshal(frame, &f) != nil || f.Type != "event" {
		return ev, false
	}
	ev.room, ev.seq = f.Room, f.Event.Seq
	if b, found := bytes.CutPrefix([]byte(f.Event.Data.Body), []byte(bodyMarker)); found {
		ev.sent, ev.n, ev.marked = parseMarker(b)
	}
	return ev, true
}

// frameType returns the type of a server frame cheaply: the server writes
// "type" first.
func frameType(frame []byte) string {
	const p = `{"type":"`
	if bytes.HasPrefix(frame, []byte(p)) {
		rest := frame[len(p):]
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			return string(rest[:i])
		}
	}
	var f struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(frame, &f)
	return f.Type
}

// Slice is the delays of the writes sent within one stretch of a run.
type Slice struct {
	StartS float64 `json:"start_s"` // since the measured window began
	Count  int     `json:"count"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// timeline cuts delays into stretches of `every` by send time (from the
// window's start), to show whether slow deliveries come in bursts.
func timeline(sent, delays []int64, from int64, every time.Duration) []Slice {
	buckets := map[int][]int64{}
	last := 0
	for i, t := range sent {
		b := int((t - from) / int64(every))
		buckets[b] = append(buckets[b], delays[i])
		last = max(last, b)
	}
	if len(sent) == 0 {
		return nil
	}
	out := make([]Slice, 0, last+1)
	for b := 0; b <= last; b++ {
		sum := summarize(buckets[b])
		out = append(out, Slice{StartS: (time.Duration(b) * every).Seconds(), Count: sum.Count,
			P50: sum.P50, P99: sum.P99, Max: sum.Max})
	}
	return out
}
