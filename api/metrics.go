package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the server's Prometheus registry (github.com/prometheus/
// client_golang): requests by route and status with their latency, the
// Go runtime and the process, and the counters, gauges and histograms the
// other parts register by name. /metrics serves it in the exposition
// format the scraper asks for.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	commands *prometheus.CounterVec
	cmdTime  *prometheus.HistogramVec

	mu       sync.Mutex
	counters map[string]prometheus.Counter
	hists    map[string]*Histogram
}

// Histogram is a histogram of durations (seconds, with histBuckets).
type Histogram struct{ h prometheus.Histogram }

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) { h.h.Observe(d.Seconds()) }

// Buckets of the histograms other than the request one, in seconds: fine
// at the low end, where storage commits are.
var histBuckets = []float64{0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// Latency buckets of the request histogram, in seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// NewMetrics returns a registry with the request metrics and the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), counters: map[string]prometheus.Counter{}, hists: map[string]*Histogram{}}
	labels := []string{"method", "route", "status"}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealroom_http_requests_total", Help: "HTTP requests by route and status."}, labels)
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dealroom_http_request_duration_seconds", Help: "HTTP request latency.", Buckets: latencyBuckets}, labels)
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dealroom_ws_commands_total", Help: "Websocket commands by op and outcome (ok, or the error code)."}, []string{"op", "code"})
	m.cmdTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dealroom_ws_command_duration_seconds", Help: "Websocket command latency, from its turn to its answer.", Buckets: latencyBuckets}, []string{"op"})
	m.reg.MustRegister(m.requests, m.latency, m.commands, m.cmdTime, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Histogram returns the duration histogram of the given name, creating it
// with its help text on first use.
func (m *Metrics) Histogram(name, help string) *Histogram {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hists[name]
	if !ok {
		h = &Histogram{prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: histBuckets})}
		m.reg.MustRegister(h.h)
		m.hists[name] = h
	}
	return h
}

// Counter returns the counter of the given name, creating it with its help
// text on first use.
func (m *Metrics) Counter(name, help string) prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.counters[name]
	if !ok {
		c = prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		m.counters[name] = c
	}
	return c
}

// Gauge registers a value read at every scrape. A name registers once.
func (m *Metrics) Gauge(name, help string, read func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}

// CounterFunc registers a counter whose value is read at every scrape
// (from the counting part's own atomic).
func (m *Metrics) CounterFunc(name, help string, read func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, read))
}

func (m *Metrics) observeRequest(method, route string, status int, d time.Duration) {
	s := strconv.Itoa(status)
	m.requests.WithLabelValues(method, route, s).Inc()
	m.latency.WithLabelValues(method, route, s).Observe(d.Seconds())
}

func (m *Metrics) observeCommand(op, code string, d time.Duration) {
	if code == "" {
		code = "ok"
	}
	m.commands.WithLabelValues(op, code).Inc()
	m.cmdTime.WithLabelValues(op).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
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
	if s.metrics == nil {
		return c.NoContent(http.StatusNotFound)
	}
	s.metrics.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}
