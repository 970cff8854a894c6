package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	sorted := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, tc := range []struct {
		p    float64
		want int64
	}{{50, 50}, {95, 100}, {99, 100}, {10, 10}, {11, 20}, {100, 100}, {0.1, 10}} {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile of nothing = %d, want 0", got)
	}
	// 1..1000: p99 is the 990th value, not an interpolation.
	var many []int64
	for i := int64(1000); i >= 1; i-- {
		many = append(many, i)
	}
	s := summarize(many)
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	if s.Count != 1000 || s.P50 != ms(500) || s.P95 != ms(950) || s.P99 != ms(990) || s.Max != ms(1000) {
		t.Errorf("summarize(1..1000) = %+v", s)
	}
	if s.Mean != ms(500)+ms(1)/2 {
		t.Errorf("mean = %v", s.Mean)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("summarize(nil) is not empty")
	}
}

func TestSeqTrackerAccounting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		from   int64
		seqs   []int64
		head   int64
		want   Accounting
		contig int64
	}{
		{name: "in order", seqs: []int64{1, 2, 3, 4}, head: 4,
			want: Accounting{Expected: 4, Received: 4}, contig: 4},
		{name: "lost in the middle and at the end", seqs: []int64{1, 2, 4}, head: 6,
			want: Accounting{Expected: 6, Received: 3, Lost: 3}, contig: 2},
		{name: "doubled", seqs: []int64{1, 2, 2, 3, 1}, head: 3,
			want: Accounting{Expected: 3, Received: 5, Duplicated: 2}, contig: 3},
		{name: "late arrival is not a loss", seqs: []int64{1, 3, 2}, head: 3,
			want: Accounting{Expected: 3, Received: 3, OutOfOrder: 1}, contig: 3},
		{name: "beyond the head", seqs: []int64{1, 2, 3}, head: 2,
			want: Accounting{Expected: 2, Received: 3, Unknown: 1}, contig: 3},
		{name: "subscribed after 100", from: 100, seqs: []int64{101, 102, 99}, head: 103,
			want: Accounting{Expected: 3, Received: 3, Lost: 1, Duplicated: 1}, contig: 102},
		{name: "large seqs grow the bitset", seqs: seqRange(1, 10000), head: 10000,
			want: Accounting{Expected: 10000, Received: 10000}, contig: 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newSeqTracker(tc.from)
			for _, s := range tc.seqs {
				tr.add(s)
			}
			if got := tr.check(tc.head); got != tc.want {
				t.Errorf("check(%d) = %+v, want %+v", tc.head, got, tc.want)
			}
			if got := tr.Contiguous(); got != tc.contig {
				t.Errorf("Contiguous() = %d, want %d", got, tc.contig)
			}
		})
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestAccountingAdd(t *testing.T) {
	a := Accounting{Expected: 1, Received: 2, Lost: 3, Duplicated: 4, OutOfOrder: 5, Unknown: 6}
	a.add(a)
	if (a != Accounting{2, 4, 6, 8, 10, 12}) {
		t.Errorf("add: %+v", a)
	}
}

func TestParseEvent(t *testing.T) {
	body := messageBody(1234567*time.Nanosecond, 42, "xx")
	// As the hub writes it (hub/frame.go eventFrame around the event's JSON).
	fast := `{"type":"event","room":"r_abc","event":{"seq":17,"id":"e_1","room_id":"r_abc","type":"message.posted",` +
		`"actor":{"id":"u","kind":"staff"},"at":"2026-11-25T10:00:00Z","visibility":"shared","data":{"id":"m_1","body":"` + body + `"}}}`
	ev, ok := parseEvent([]byte(fast))
	if !ok || ev.room != "r_abc" || ev.seq != 17 || !ev.marked || ev.sent != 1234567 || ev.n != 42 {
		t.Errorf("fast path: %+v, %v", ev, ok)
	}
	// Another field order takes the JSON path, with the same answer.
	slow := `{"room":"r_abc","type":"event","event":{"id":"e_1","seq":17,"data":{"body":"` + body + `"}}}`
	ev2, ok := parseEvent([]byte(slow))
	if !ok || ev2 != ev {
		t.Errorf("JSON path: %+v, %v; want %+v", ev2, ok, ev)
	}
	// Events that are not the bench's messages carry no marker.
	plain := `{"type":"event","room":"r_abc","event":{"seq":1,"type":"room.created","data":{"name":"bench 1 2"}}}`
	if ev, ok := parseEvent([]byte(plain)); !ok || ev.seq != 1 || ev.marked {
		t.Errorf("room.created: %+v, %v", ev, ok)
	}
	for _, other := range []string{`{"type":"subscribed","room":"r_abc","head":3}`, `{"type":"presence","room":"r","members":[]}`,
		`{"reason":"slow","room":"r","type":"resync"}`, `not json`} {
		if _, ok := parseEvent([]byte(other)); ok {
			t.Errorf("parseEvent(%s) took it for an event", other)
		}
	}
}

func TestFrameType(t *testing.T) {
	for frame, want := range map[string]string{
		`{"type":"subscribed","room":"r","head":3}`:    "subscribed",
		`{"reason":"slow","room":"r","type":"resync"}`: "resync", // a map: keys sorted
		`garbage`: "",
	} {
		if got := frameType([]byte(frame)); got != want {
			t.Errorf("frameType(%s) = %q, want %q", frame, got, want)
		}
	}
}

func TestProcParsing(t *testing.T) {
	status := []byte("Name:\tdealroom\nVmPeak:\t  99999 kB\nVmRSS:\t   23456 kB\nRssAnon:\t   20000 kB\nThreads:\t8\n")
	if rss, err := statusKiB(status, "VmRSS:"); err != nil || rss != 23456 {
		t.Errorf("VmRSS = %d, %v", rss, err)
	}
	if anon, err := statusKiB(status, "RssAnon:"); err != nil || anon != 20000 {
		t.Errorf("RssAnon = %d, %v", anon, err)
	}
	if _, err := statusKiB(status, "RssFile:"); err == nil {
		t.Error("a missing line gave no error")
	}
	// utime 250 and stime 50 ticks after a command name with spaces.
	stat := "1234 (deal room) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0"
	cpu, err := statCPU([]byte(stat))
	if err != nil || cpu != 3*time.Second {
		t.Errorf("statCPU = %v, %v", cpu, err)
	}
	if n, err := ioField([]byte("rchar: 10\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n"), "write_bytes:"); err != nil || n != 4096 {
		t.Errorf("write_bytes = %d, %v", n, err)
	}
	m, err := parseMetrics(strings.NewReader("# HELP go_goroutines x\ngo_goroutines 42\n" +
		"dealroom_http_requests_total{method=\"GET\"} 7\ngo_memstats_heap_alloc_bytes 1.5e+06\n"))
	if err != nil || m["go_goroutines"] != 42 || m["go_memstats_heap_alloc_bytes"] != 1.5e6 || len(m) != 2 {
		t.Errorf("parseMetrics = %v, %v", m, err)
	}
}

func TestStoreCommitsFromMetrics(t *testing.T) {
	scrape := func(text string) map[string]float64 {
		m, err := parseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	hist := func(b001, b01, b05, count float64, sum float64, commands float64) string {
		return fmt.Sprintf("dealroom_store_commit_seconds_bucket{le=\"0.001\"} %g\n"+
			"dealroom_store_commit_seconds_bucket{le=\"0.01\"} %g\n"+
			"dealroom_store_commit_seconds_bucket{le=\"0.05\"} %g\n"+
			"dealroom_store_commit_seconds_bucket{le=\"+Inf\"} %g\n"+
			"dealroom_store_commit_seconds_sum %g\ndealroom_store_commit_seconds_count %g\n"+
			"dealroom_store_commands_total %g\n", b001, b01, b05, count, sum, count, commands)
	}
	before := scrape(hist(10, 10, 10, 10, 0.005, 10))
	// 1000 commits in 10 s, 1500 commands: 980 under 1 ms, 15 under 10 ms,
	// 3 under 50 ms, 2 slower.
	after := scrape(hist(990, 1005, 1008, 1010, 1.505, 1510))
	sc := storeCommits(before, after, 10)
	if sc == nil {
		t.Fatal("no commits found")
	}
	if sc.Commits != 1000 || sc.PerSecond != 100 || sc.CommandsPerCommit != 1.5 {
		t.Errorf("counts = %+v", sc)
	}
	if sc.MeanMs < 1.49 || sc.MeanMs > 1.51 {
		t.Errorf("mean = %v ms, want 1.5", sc.MeanMs)
	}
	if sc.P99Ms != 10 || sc.Over10ms != 5 || sc.Over50ms != 2 {
		t.Errorf("tail = %+v", sc)
	}
	if storeCommits(before, before, 10) != nil {
		t.Error("no commits in the window should give nothing")
	}
}

func TestSummaryMedianOfRuns(t *testing.T) {
	if got := median([]float64{1, 2, 3}); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := median([]float64{1, 2, 3, 4}); got != 2 {
		t.Errorf("median of 4 = %v, want the lower middle value", got)
	}
	for label, want := range map[string]string{"b1000": "b1000", "b1000.r2": "b1000", "b1000.r12": "b1000", "me200.r3": "me200", "a10k-pprof": "a10k-pprof"} {
		if got := repeatSuffix.ReplaceAllString(label, ""); got != want {
			t.Errorf("group of %s = %s, want %s", label, got, want)
		}
	}
}

func TestTimeline(t *testing.T) {
	ms := int64(time.Millisecond)
	// Sent at 0.1s, 0.2s and 0.6s after the window's start (at 1s).
	sent := []int64{1100 * ms, 1200 * ms, 1600 * ms}
	delays := []int64{2 * ms, 4 * ms, 9 * ms}
	tl := timeline(sent, delays, 1000*ms, 250*time.Millisecond)
	if len(tl) != 3 || tl[0].Count != 2 || tl[0].Max != 4 || tl[1].Count != 0 || tl[2].StartS != 0.5 || tl[2].P99 != 9 {
		t.Errorf("timeline = %+v", tl)
	}
}
