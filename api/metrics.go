package api

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Metrics collects the server's counters and writes them in the Prometheus
// text format. It is small on purpose: a handful of counters, gauges and
// one latency histogram, without a client library's registry.
type Metrics struct {
	mu       sync.Mutex
	requests map[requestKey]*requestStats
	counters map[string]*atomic.Int64
	gauges   map[string]func() float64
	hists    map[string]*Histogram
	help     map[string]string
}

// Histogram is a latency histogram with fixed buckets (histBuckets).
type Histogram struct {
	mu      sync.Mutex
	count   int64
	sum     float64
	buckets []int64
}

// Buckets of the histograms other than the request one, in seconds: fine
// at the low end, where storage commits are.
var histBuckets = []float64{0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	secs := d.Seconds()
	h.mu.Lock()
	h.count++
	h.sum += secs
	for i, b := range histBuckets {
		if secs <= b {
			h.buckets[i]++
		}
	}
	h.mu.Unlock()
}

type requestKey struct {
	method, route string
	status        int
}

// Latency buckets of the request histogram, in seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type requestStats struct {
	count   int64
	sum     float64
	buckets []int64
}

// NewMetrics returns an empty collection.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[requestKey]*requestStats{}, counters: map[string]*atomic.Int64{},
		gauges: map[string]func() float64{}, hists: map[string]*Histogram{}, help: map[string]string{}}
}

// Histogram returns the histogram of the given name, creating it with its
// help text on first use.
func (m *Metrics) Histogram(name, help string) *Histogram {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hists[name]
	if !ok {
		h = &Histogram{buckets: make([]int64, len(histBuckets))}
		m.hists[name], m.help[name] = h, help
	}
	return h
}

// Counter returns the counter of the given name, creating it with its help
// text on first use.
func (m *Metrics) Counter(name, help string) *atomic.Int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.counters[name]
	if !ok {
		c = new(atomic.Int64)
		m.counters[name], m.help[name] = c, help
	}
	return c
}

// Gauge registers a value read at every scrape.
func (m *Metrics) Gauge(name, help string, read func() float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gauges[name], m.help[name] = read, help
}

func (m *Metrics) observeRequest(method, route string, status int, d time.Duration) {
	k := requestKey{method, route, status}
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.requests[k]
	if !ok {
		st = &requestStats{buckets: make([]int64, len(latencyBuckets))}
		m.requests[k] = st
	}
	st.count++
	st.sum += secs
	for i, b := range latencyBuckets {
		if secs <= b {
			st.buckets[i]++
		}
	}
}

// WriteTo writes every metric in the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		if a.route != c.route {
			return a.route < c.route
		}
		if a.method != c.method {
			return a.method < c.method
		}
		return a.status < c.status
	})
	b.WriteString("# HELP dealroom_http_requests_total HTTP requests by route and status.\n# TYPE dealroom_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "dealroom_http_requests_total{method=%q,route=%q,status=\"%d\"} %d\n", k.method, k.route, k.status, m.requests[k].count)
	}
	b.WriteString("# HELP dealroom_http_request_duration_seconds HTTP request latency.\n# TYPE dealroom_http_request_duration_seconds histogram\n")
	for _, k := range keys {
		st := m.requests[k]
		labels := fmt.Sprintf("method=%q,route=%q,status=\"%d\"", k.method, k.route, k.status)
		for i, le := range latencyBuckets {
			fmt.Fprintf(&b, "dealroom_http_request_duration_seconds_bucket{%s,le=\"%s\"} %d\n", labels, strconv.FormatFloat(le, 'g', -1, 64), st.buckets[i])
		}
		fmt.Fprintf(&b, "dealroom_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", labels, st.count)
		fmt.Fprintf(&b, "dealroom_http_request_duration_seconds_sum{%s} %g\n", labels, st.sum)
		fmt.Fprintf(&b, "dealroom_http_request_duration_seconds_count{%s} %d\n", labels, st.count)
	}
	names := make([]string, 0, len(m.counters)+len(m.gauges))
	for n := range m.counters {
		names = append(names, n)
	}
	for n := range m.gauges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if c, ok := m.counters[n]; ok {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", n, m.help[n], n, n, c.Load())
		} else {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", n, m.help[n], n, n, m.gauges[n]())
		}
	}
	hnames := make([]string, 0, len(m.hists))
	for n := range m.hists {
		hnames = append(hnames, n)
	}
	sort.Strings(hnames)
	for _, n := range hnames {
		h := m.hists[n]
		h.mu.Lock()
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s histogram\n", n, m.help[n], n)
		for i, le := range histBuckets {
			fmt.Fprintf(&b, "%s_bucket{le=\"%s\"} %d\n", n, strconv.FormatFloat(le, 'g', -1, 64), h.buckets[i])
		}
		fmt.Fprintf(&b, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", n, h.count, n, h.sum, n, h.count)
		h.mu.Unlock()
	}
	m.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(&b, "# HELP go_goroutines Goroutines that exist now.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintf(&b, "# HELP go_memstats_heap_alloc_bytes Bytes of allocated heap objects.\n# TYPE go_memstats_heap_alloc_bytes gauge\ngo_memstats_heap_alloc_bytes %d\n", ms.HeapAlloc)
	fmt.Fprintf(&b, "# HELP go_memstats_sys_bytes Bytes obtained from the system.\n# TYPE go_memstats_sys_bytes gauge\ngo_memstats_sys_bytes %d\n", ms.Sys)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// observe records each request's route, status and latency.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status, _ = Status(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		if s.metrics != nil {
			s.metrics.observeRequest(c.Request().Method, route, status, time.Since(start))
		}
		return err
	}
}

func (s *Server) serveMetrics(c echo.Context) error {
	c.Response().Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.Response().WriteHeader(http.StatusOK)
	if s.metrics != nil {
		_, err := s.metrics.WriteTo(c.Response())
		return err
	}
	return nil
}
