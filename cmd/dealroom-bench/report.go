package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is everything one run measured; it is written as JSON with -json.
type Result struct {
	Scenario string    `json:"scenario"`
	Label    string    `json:"label,omitempty"`
	Started  time.Time `json:"started"`
	Params   Params    `json:"params"`
	Machine  Machine   `json:"machine"`

	Setup    SetupStats     `json:"setup"`
	Connect  *ConnectStats  `json:"connect,omitempty"`
	Writes   *WriteStats    `json:"writes,omitempty"`
	Delivery *DeliveryStats `json:"delivery,omitempty"`
	Memory   *MemoryStats   `json:"memory,omitempty"`
	Catchup  *CatchupStats  `json:"catchup,omitempty"`
	Flood    *FloodStats    `json:"flood,omitempty"`
	Rooms    *RoomsStats    `json:"followed_rooms,omitempty"`
	Servers  []ServerStats  `json:"servers,omitempty"`
	Load     *Load          `json:"load,omitempty"`
	Targets  []TargetCheck  `json:"targets,omitempty"`
	Problems []string       `json:"problems,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Target         string   `json:"target,omitempty"` // dealroom or centrifuge
	URLs           []string `json:"urls"`
	WriterURL      string   `json:"writer_url"`
	ReaderURLs     []string `json:"reader_urls"`
	Conns          int      `json:"conns"`
	Rooms          int      `json:"rooms"`
	RoomUsers      int      `json:"subscriber_users_per_room"`
	WritersPerRoom int      `json:"writers_per_room"`
	Rate           float64  `json:"rate_writes_per_s,omitempty"`
	Duration       string   `json:"duration,omitempty"`
	Warmup         string   `json:"warmup,omitempty"`
	WSWrites       float64  `json:"ws_writes_fraction"`
	Events         int      `json:"events,omitempty"`
	BodyBytes      int      `json:"body_bytes"`
}

// Machine is where the bench ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	FileLimit uint64 `json:"file_limit"`
}

// SetupStats is the creation of rooms and members over REST.
type SetupStats struct {
	Seconds float64 `json:"seconds"`
	Rooms   int     `json:"rooms"`
	Members int     `json:"members_added"`
}

// ConnectStats is the opening and subscribing of the devices.
type ConnectStats struct {
	Conns          int     `json:"conns"`
	WriterConns    int     `json:"writer_conns"`
	Seconds        float64 `json:"seconds"` // dial + subscribe until every "subscribed"
	PresenceQuietS float64 `json:"presence_quiet_seconds"`
}

// WriteStats are the writes of the measured window.
type WriteStats struct {
	Sent            int64          `json:"sent"`
	Acked           int64          `json:"acked"`
	Failed          map[string]int `json:"failed,omitempty"`
	WindowSeconds   float64        `json:"window_seconds"`
	MeasuredAcked   int64          `json:"measured_acked"`
	EventsPerSec    float64        `json:"events_per_s"`
	AckREST         Summary        `json:"ack_rest"`
	AckWS           Summary        `json:"ack_ws"`
	SchedulerLagMax float64        `json:"scheduler_max_lag_ms"`
}

// DeliveryStats are the events the subscribers received.
type DeliveryStats struct {
	EndToEnd         Summary    `json:"end_to_end"`
	Deliveries       int64      `json:"deliveries_measured"`
	ExpectedMeasured int64      `json:"deliveries_expected"`
	DeliveriesPerSec float64    `json:"deliveries_per_s"`
	Accounting       Accounting `json:"accounting"`
	Drained          bool       `json:"drained"`
	DrainSeconds     float64    `json:"drain_seconds"`
	HeadsAgree       bool       `json:"heads_agree_with_timeline"`
	Resyncs          int64      `json:"resyncs"`
	ErrorFrames      int64      `json:"error_frames"`
	PresenceFrames   int64      `json:"presence_frames"`
	ConnsLost        int        `json:"conns_lost"`
	// EventsStored is the events of the rooms' timelines at the end (the
	// sum of their heads: the writes and the set-up's member events);
	// EventJSONBytes the mean size of an event as devices receive it,
	// without the frame's envelope.
	EventsStored   int64   `json:"events_stored,omitempty"`
	EventJSONBytes float64 `json:"event_json_bytes,omitempty"`
	// Store is the size of the server's data directory (-data-dir).
	Store *StoreSize `json:"store_size,omitempty"`
	// Timeline is the end-to-end delay per 250ms of send time, from
	// WindowStart (Unix seconds).
	Timeline    []Slice `json:"timeline,omitempty"`
	WindowStart float64 `json:"window_start_unix,omitempty"`
}

// StoreSize is the size of the server's data directory after a run.
type StoreSize struct {
	Bytes          int64   `json:"bytes"`           // the files' sizes
	AllocatedBytes int64   `json:"allocated_bytes"` // what the file system allocated to them
	PerEvent       float64 `json:"allocated_bytes_per_event"`
}

// MemoryStats are the server's memory before and with the idle devices.
type MemoryStats struct {
	Conns               int     `json:"conns"`
	RSSBeforeKiB        int64   `json:"rss_before_kib"`
	RSSAfterKiB         int64   `json:"rss_after_kib"`
	RSSPerConnKiB       float64 `json:"rss_per_conn_kib"`
	AnonBeforeKiB       int64   `json:"rss_anon_before_kib"`
	AnonAfterKiB        int64   `json:"rss_anon_after_kib"`
	AnonPerConnKiB      float64 `json:"rss_anon_per_conn_kib"`
	HeapBeforeKiB       float64 `json:"heap_alloc_before_kib"`
	HeapAfterKiB        float64 `json:"heap_alloc_after_kib"`
	HeapPerConnKiB      float64 `json:"heap_alloc_per_conn_kib"`
	SysBeforeKiB        float64 `json:"go_sys_before_kib"`
	SysAfterKiB         float64 `json:"go_sys_after_kib"`
	GoroutinesBefore    float64 `json:"goroutines_before"`
	GoroutinesAfter     float64 `json:"goroutines_after"`
	GoroutinesPerConn   float64 `json:"goroutines_per_conn"`
	SessionsAfter       float64 `json:"ws_sessions_after"`
	RSSAfterCloseKiB    int64   `json:"rss_after_close_kib,omitempty"`
	GoroutinesAfterDone float64 `json:"goroutines_after_close,omitempty"`
}

// CatchupStats are the writing of the missed events and their catch-up.
type CatchupStats struct {
	Events            int64        `json:"events"`
	WriteSeconds      float64      `json:"write_seconds"`
	WriteEventsPerSec float64      `json:"write_events_per_s"`
	WriteAck          Summary      `json:"write_ack"`
	Head              int64        `json:"head"`
	Runs              []CatchupRun `json:"runs"`
	RESTPagesSeconds  float64      `json:"rest_timeline_seconds"`
	RESTEvents        int          `json:"rest_timeline_events"`
}

// CatchupRun is one round of devices subscribing from 0.
type CatchupRun struct {
	Name         string     `json:"name"`
	Devices      int        `json:"devices"`
	Seconds      Summary    `json:"until_subscribed"` // per device, subscribe sent → "subscribed"
	FirstEvent   Summary    `json:"until_first_event"`
	EventsPerSec float64    `json:"events_per_s_per_device"`
	MiBPerSec    float64    `json:"mib_per_s_per_device"`
	Accounting   Accounting `json:"accounting"`
	StoreReads   float64    `json:"store_reads"`
	Load         *Load      `json:"load,omitempty"`
}

// ServerStats is one server process during the measured part.
type ServerStats struct {
	URL           string             `json:"url"`
	PID           int                `json:"pid,omitempty"`
	StartUnix     float64            `json:"start_unix,omitempty"` // when the process started (10ms resolution)
	CPUSeconds    float64            `json:"cpu_seconds,omitempty"`
	CPUCores      float64            `json:"cpu_cores,omitempty"`      // average cores busy
	DiskWriteMiB  float64            `json:"disk_write_mib,omitempty"` // written to storage (/proc/PID/io)
	RSSStartKiB   int64              `json:"rss_start_kib,omitempty"`
	RSSEndKiB     int64              `json:"rss_end_kib,omitempty"`
	MetricsBefore map[string]float64 `json:"metrics_before,omitempty"`
	MetricsAfter  map[string]float64 `json:"metrics_after,omitempty"`
	Store         *StoreCommits      `json:"store_commits,omitempty"`
}

// Load is how busy the machine was during the measured part, and by whom,
// in cores (CPU seconds per second): the bench shares the machine with the
// servers, and on a shared machine other people's work may too.
type Load struct {
	Seconds      float64            `json:"seconds"`
	MachineCores float64            `json:"machine_cores"`
	ServerCores  float64            `json:"server_cores"`         // the -pid processes
	AuxCores     map[string]float64 `json:"aux_cores,omitempty"`  // the -aux-pid processes
	BenchCores   float64            `json:"bench_cores"`          // this program
	OtherCores   float64            `json:"other_cores"`          // everything else
	TopOthers    []string           `json:"top_others,omitempty"` // the busiest other processes
	QuietWaitS   float64            `json:"quiet_wait_seconds"`   // waited for the others to stop
}

// TargetCheck compares a figure with its target.
type TargetCheck struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Value  string `json:"value"`
	Met    bool   `json:"met"`
}

func machine(fileLimit uint64) Machine {
	return Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		FileLimit: fileLimit}
}

func writeJSON(path string, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printReport writes a readable summary.
func printReport(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	lat := func(s Summary) string {
		if s.Count == 0 {
			return "-"
		}
		return fmt.Sprintf("p50 %.2f  p95 %.2f  p99 %.2f  max %.2f ms  (n=%d)", s.P50, s.P95, s.P99, s.Max, s.Count)
	}
	title := "scenario " + r.Scenario
	if r.Label != "" {
		title += " (" + r.Label + ")"
	}
	fmt.Fprintln(tw, title)
	p := r.Params
	row("servers", "writers on %s, readers on %s", p.WriterURL, strings.Join(p.ReaderURLs, ", "))
	row("shape", "%d conns, %d rooms, %d subscriber users/room, %d writers/room", p.Conns, p.Rooms, p.RoomUsers, p.WritersPerRoom)
	if p.Rate > 0 {
		row("load", "%.0f writes/s for %s (warm-up %s), %.0f%% over websocket", p.Rate, p.Duration, p.Warmup, 100*p.WSWrites)
	}
	row("setup", "%d rooms, %d members in %.1fs", r.Setup.Rooms, r.Setup.Members, r.Setup.Seconds)
	if c := r.Connect; c != nil {
		row("connect", "%d devices (+%d writer conns) subscribed in %.1fs; presence quiet after %.1fs", c.Conns, c.WriterConns, c.Seconds, c.PresenceQuietS)
	}
	if m := r.Memory; m != nil {
		row("server RSS", "%d KiB before, %d KiB with %d idle conns: %.1f KiB/conn", m.RSSBeforeKiB, m.RSSAfterKiB, m.Conns, m.RSSPerConnKiB)
		row("of it anonymous", "%d KiB before, %d KiB after: %.1f KiB/conn (RssAnon: heap, stacks, runtime)", m.AnonBeforeKiB, m.AnonAfterKiB, m.AnonPerConnKiB)
		row("Go heap", "%.0f KiB before, %.0f KiB after: %.1f KiB/conn (heap_alloc)", m.HeapBeforeKiB, m.HeapAfterKiB, m.HeapPerConnKiB)
		row("goroutines", "%.0f before, %.0f after: %.2f/conn", m.GoroutinesBefore, m.GoroutinesAfter, m.GoroutinesPerConn)
		if m.RSSAfterCloseKiB > 0 {
			row("after close", "RSS %d KiB, %.0f goroutines", m.RSSAfterCloseKiB, m.GoroutinesAfterDone)
		}
	}
	if f := r.Flood; f != nil {
		var st []string
		for k, n := range f.Status {
			st = append(st, fmt.Sprintf("%d %s", n, k))
		}
		slices.Sort(st)
		row("mention flood", "%d posts in a room of %d (%s); answered %s", f.Sent, f.Members, strings.Join(st, ", "), lat(f.Ack))
	}
	if wr := r.Writes; wr != nil {
		failed := "none failed"
		if len(wr.Failed) > 0 {
			var kinds []string
			for k, n := range wr.Failed {
				kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
			}
			slices.Sort(kinds)
			failed = "failed: " + strings.Join(kinds, ", ")
		}
		row("writes", "%d sent, %d acked, %s; %.1f events/s in the %.1fs window", wr.Sent, wr.Acked, failed, wr.EventsPerSec, wr.WindowSeconds)
		row("ack REST", "%s", lat(wr.AckREST))
		row("ack websocket", "%s", lat(wr.AckWS))
		row("scheduler lag", "max %.1f ms", wr.SchedulerLagMax)
	}
	if d := r.Delivery; d != nil {
		row("end-to-end", "%s", lat(d.EndToEnd))
		row("deliveries", "%d of %d expected, %.0f/s", d.Deliveries, d.ExpectedMeasured, d.DeliveriesPerSec)
		a := d.Accounting
		row("exactly once", "%d events expected over all subscriptions, %d lost, %d doubled, %d out of order, %d unknown",
			a.Expected, a.Lost, a.Duplicated, a.OutOfOrder, a.Unknown)
		if len(d.Timeline) > 0 {
			worst := slices.Clone(d.Timeline)
			slices.SortFunc(worst, func(a, b Slice) int { return cmp.Compare(b.Max, a.Max) })
			var ws []string
			for _, sl := range worst[:min(5, len(worst))] {
				ws = append(ws, fmt.Sprintf("%.2fs: max %.1f p99 %.1f", sl.StartS, sl.Max, sl.P99))
			}
			row("slowest 250ms", "%s", strings.Join(ws, "; "))
		}
		row("drain", "drained=%v in %.1fs; heads agree with timeline=%v; resyncs %d, error frames %d, conns lost %d, presence frames %d",
			d.Drained, d.DrainSeconds, d.HeadsAgree, d.Resyncs, d.ErrorFrames, d.ConnsLost, d.PresenceFrames)
		if st := d.Store; st != nil {
			row("store on disk", "%d events in the timelines, %.1f MiB allocated (%.1f MiB size): %.0f bytes per event; an event's JSON is %.0f bytes",
				d.EventsStored, float64(st.AllocatedBytes)/(1<<20), float64(st.Bytes)/(1<<20), st.PerEvent, d.EventJSONBytes)
		}
	}
	if c := r.Catchup; c != nil {
		row("missed events", "%d written in %.2fs (%.0f events/s), ack %s", c.Events, c.WriteSeconds, c.WriteEventsPerSec, lat(c.WriteAck))
		for _, run := range c.Runs {
			row("catch-up "+run.Name, "%d device(s): until subscribed %s; %.0f events/s, %.1f MiB/s per device; lost %d, doubled %d; store reads %.0f",
				run.Devices, lat(run.Seconds), run.EventsPerSec, run.MiBPerSec, run.Accounting.Lost, run.Accounting.Duplicated, run.StoreReads)
			if l := run.Load; l != nil {
				row("", "CPU during it: servers %.2f, bench %.2f, other processes %.2f cores", l.ServerCores, l.BenchCores, l.OtherCores)
			}
		}
		row("REST timeline", "%d events in %.3fs (pages of 1000)", c.RESTEvents, c.RESTPagesSeconds)
	}
	for _, s := range r.Servers {
		if s.PID == 0 {
			continue
		}
		row("server "+s.URL, "pid %d: %.2f cores busy (%.1f CPU-s), RSS %d → %d KiB, %.1f MiB written to storage",
			s.PID, s.CPUCores, s.CPUSeconds, s.RSSStartKiB, s.RSSEndKiB, s.DiskWriteMiB)
	}
	for _, s := range r.Servers {
		if sc := s.Store; sc != nil {
			p99 := fmt.Sprintf("<= %.2g ms", sc.P99Ms)
			if sc.P99Ms < 0 {
				p99 = "> 1 s"
			}
			row("store commits", "%.0f/s, %.2f commands each; mean %.2f ms, p99 %s; %.0f over 10 ms, %.0f over 50 ms",
				sc.PerSecond, sc.CommandsPerCommit, sc.MeanMs, p99, sc.Over10ms, sc.Over50ms)
		}
	}
	if l := r.Load; l != nil {
		aux := ""
		for name, c := range l.AuxCores {
			aux += fmt.Sprintf(", %s %.2f", name, c)
		}
		row("CPU (cores)", "machine %.2f of %d: servers %.2f%s, bench %.2f, other processes %.2f (over %.1fs; waited %.0fs for quiet)",
			l.MachineCores, r.Machine.CPUs, l.ServerCores, aux, l.BenchCores, l.OtherCores, l.Seconds, l.QuietWaitS)
		if len(l.TopOthers) > 0 {
			row("busiest others", "%s", strings.Join(l.TopOthers, ", "))
		}
	}
	for _, t := range r.Targets {
		verdict := "MET"
		if !t.Met {
			verdict = "NOT MET"
		}
		row("target", "%s: %s (target %s) %s", t.Name, t.Value, t.Target, verdict)
	}
	for _, pr := range r.Problems {
		row("PROBLEM", "%s", pr)
	}
	tw.Flush()
}
