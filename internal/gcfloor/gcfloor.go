// Package gcfloor keeps a floor under how far the heap may grow between
// two garbage collections.
//
// Go collects when the heap has grown by GOGC percent (100) of what the
// last collection left live. That is right for a big heap; for a small one
// it means collecting very often. A Dealroom instance with few devices
// has a live heap of a few tens of MiB, yet every write allocates about
// 80 KB (most of it the embedded store's B+tree pages, read into nodes for
// the commit and dropped after it): at 1,000 writes/s it collected five
// times a second, and each collection marks on one of the cores for 5 to
// 20 ms, while every write that runs then waits longer. On the benchmark
// of 100 rooms x 10 devices at 1,000 writes/s (docs/benchmarks.md), a
// floor of 128 MiB took the p95 of a delivery from 3.4 to 2.2 ms and its
// p99 from 6.6 to 4.6 ms.
//
// A Floor lets the heap grow by at least Headroom bytes between
// collections: it sets the GC percent to Headroom / live heap when that is
// more than the base (100), and back to the base once the live heap is
// bigger than Headroom. So the memory it costs is bounded by Headroom, an
// amount an operator can reason about, whatever the number of devices,
// and a big instance collects exactly as before. GOMEMLIMIT, when set,
// still bounds the heap: the runtime collects earlier near it.
package gcfloor

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Base is the GC percent of the runtime's default (GOGC=100), kept when
// the live heap is bigger than the headroom.
const Base = 100

// maxPercent bounds the percent (a headroom of 64 GiB over a heap of
// 4 MiB).
const maxPercent = 1_700_000

// Percent is the GC percent that lets a heap of live bytes grow by at
// least headroom bytes before the next collection, never below Base. A
// live heap under 4 MiB counts as 4 MiB: the runtime's smallest heap goal
// is 4 MiB times the percent / 100, which must not pass the headroom
// either.
func Percent(live, headroom uint64) int {
	if headroom == 0 {
		return Base
	}
	p := float64(headroom) * 100 / float64(max(live, minLive))
	return int(min(max(p, Base), maxPercent))
}

// minLive is the runtime's smallest heap goal at GOGC=100.
const minLive = 4 << 20

// Floor adjusts the GC percent to the live heap every Every.
type Floor struct {
	Headroom uint64
	// Every is the time between readings of the live heap (1 s).
	Every time.Duration
	// Log, when set, is told each change of the percent (debug level).
	Log *slog.Logger

	// live reads the heap live after the last collection; set reads and
	// sets the GC percent (debug.SetGCPercent). Tests replace them.
	live func() uint64
	set  func(int) int
}

// Run adjusts the GC percent until ctx ends, and then puts Base back.
func (f *Floor) Run(ctx context.Context) {
	every := f.Every
	if every <= 0 {
		every = time.Second
	}
	live, set := f.live, f.set
	if live == nil {
		live = liveHeap
	}
	if set == nil {
		set = debug.SetGCPercent
	}
	current := Base
	adjust := func() {
		l := live()
		if l == 0 {
			return // no collection yet: nothing known of the live heap
		}
		p := Percent(l, f.Headroom)
		// Set only on a change of more than a tenth: each call makes the
		// runtime recompute its pacing.
		if math.Abs(float64(p-current)) > float64(current)/10 {
			set(p)
			if f.Log != nil {
				f.Log.Debug("garbage collection percent", "from", current, "to", p, "live_mib", l>>20)
			}
			current = p
		}
	}
	adjust()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if current != Base {
				set(Base)
			}
			return
		case <-t.C:
			adjust()
		}
	}
}

// liveHeap is the heap that the last collection left live (objects and
// the unused space of their spans is not counted).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// DefaultHeadroom is the headroom used unless configured: 128 MiB, or an
// eighth of the memory the process may use (its cgroup's limit, or
// GOMEMLIMIT) when that is less.
func DefaultHeadroom() uint64 {
	h := uint64(128 << 20)
	if l := memoryLimit(); l > 0 {
		h = min(h, l/8)
	}
	return h
}

// memoryLimit is the lowest of GOMEMLIMIT and the cgroup's memory limit
// (v2, then v1); 0 when neither is set.
func memoryLimit() uint64 {
	var limit uint64
	if l := debug.SetMemoryLimit(-1); l > 0 && l < math.MaxInt64 {
		limit = uint64(l)
	}
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil || n == 0 || n >= 1<<60 { // "max", or v1's "no limit"
			continue
		}
		if limit == 0 || n < limit {
			limit = n
		}
	}
	return limit
}

// ParseSize reads a size in bytes: a number, with an optional unit KiB,
// MiB or GiB ("128MiB"); "0" is no headroom.
func ParseSize(v string) (uint64, bool) {
	v = strings.TrimSpace(v)
	mult := uint64(1)
	for unit, m := range map[string]uint64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if s, ok := strings.CutSuffix(v, unit); ok {
			v, mult = strings.TrimSpace(s), m
			break
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxUint64/mult {
		return 0, false
	}
	return n * mult, true
}
