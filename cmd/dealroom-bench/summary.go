package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// repeatSuffix marks the repeated runs of one scenario: b1000, b1000.r2, ...
var repeatSuffix = regexp.MustCompile(`\.r[0-9]+$`)

// summary reads result files and writes markdown tables, one row per
// scenario: the median of its runs, with the range where runs differ.
func summary(files []string, w io.Writer) error {
	groups, order, err := readGroups(files)
	if err != nil {
		return err
	}

	var fan, idle, catch []string
	for _, name := range order {
		rs := groups[name]
		switch {
		case rs[0].Delivery != nil:
			fan = append(fan, name)
		case rs[0].Memory != nil:
			idle = append(idle, name)
		case rs[0].Catchup != nil:
			catch = append(catch, name)
		}
	}
	if len(fan) > 0 {
		fmt.Fprintln(w, "| run | n | shape | events/s | deliveries/s | e2e p50 ms | e2e p95 ms | e2e p99 ms (range) | e2e max ms | ack p99 ms REST / ws | lost / doubled | server cores | bench cores | other cores (max) | storage KiB written per event |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		for _, name := range fan {
			rs := groups[name]
			p := rs[0].Params
			var lost, dup int64
			for _, r := range rs {
				lost += r.Delivery.Accounting.Lost + r.Delivery.Accounting.Unknown
				dup += r.Delivery.Accounting.Duplicated
			}
			fmt.Fprintf(w, "| %s | %d | %d conns, %d rooms, %s | %s | %s | %s | %s | %s | %s | %s / %s | %d / %d | %s | %s | %s | %s |\n",
				name, len(rs), p.Conns, p.Rooms, instances(p),
				med(rs, func(r *Result) float64 { return r.Writes.EventsPerSec }, "%.0f"),
				med(rs, func(r *Result) float64 { return r.Delivery.DeliveriesPerSec }, "%.0f"),
				med(rs, func(r *Result) float64 { return r.Delivery.EndToEnd.P50 }, "%.2f"),
				med(rs, func(r *Result) float64 { return r.Delivery.EndToEnd.P95 }, "%.2f"),
				medRange(rs, func(r *Result) float64 { return r.Delivery.EndToEnd.P99 }, "%.2f"),
				maxOf(rs, func(r *Result) float64 { return r.Delivery.EndToEnd.Max }, "%.1f"),
				med(rs, func(r *Result) float64 { return r.Writes.AckREST.P99 }, "%.2f"),
				med(rs, func(r *Result) float64 { return r.Writes.AckWS.P99 }, "%.2f"),
				lost, dup,
				med(rs, func(r *Result) float64 { return loadOf(r).ServerCores }, "%.2f"),
				med(rs, func(r *Result) float64 { return loadOf(r).BenchCores }, "%.2f"),
				maxOf(rs, func(r *Result) float64 { return loadOf(r).OtherCores }, "%.2f"),
				med(rs, diskPerEvent, "%.1f"))
		}
		fmt.Fprintln(w)
		for _, name := range fan {
			rs := groups[name]
			if rs[0].Delivery.Store == nil {
				continue
			}
			fmt.Fprintf(w, "- %s: the store holds %s bytes per event on disk (allocated; %s events in the timelines); an event's JSON is %s bytes\n", name,
				med(rs, func(r *Result) float64 { return storeOf(r).PerEvent }, "%.0f"),
				med(rs, func(r *Result) float64 { return float64(r.Delivery.EventsStored) }, "%.0f"),
				med(rs, func(r *Result) float64 { return r.Delivery.EventJSONBytes }, "%.0f"))
		}
	}
	if len(idle) > 0 {
		fmt.Fprintln(w, "| run | n | idle conns | RSS per conn KiB (range) | RssAnon per conn KiB | Go heap per conn KiB | goroutines per conn | RSS with all conns MiB | connect + subscribe s |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for _, name := range idle {
			rs := groups[name]
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", name, len(rs), rs[0].Memory.Conns,
				medRange(rs, func(r *Result) float64 { return r.Memory.RSSPerConnKiB }, "%.1f"),
				med(rs, func(r *Result) float64 { return r.Memory.AnonPerConnKiB }, "%.1f"),
				med(rs, func(r *Result) float64 { return r.Memory.HeapPerConnKiB }, "%.1f"),
				med(rs, func(r *Result) float64 { return r.Memory.GoroutinesPerConn }, "%.2f"),
				med(rs, func(r *Result) float64 { return float64(r.Memory.RSSAfterKiB) / 1024 }, "%.0f"),
				med(rs, func(r *Result) float64 { return r.Connect.Seconds }, "%.1f"))
		}
		fmt.Fprintln(w)
	}
	if len(catch) > 0 {
		fmt.Fprintln(w, "| run | n | events | writing: events/s, ack p99 ms | cold: until subscribed ms (range) | warm ms | REST timeline ms | lost / doubled |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, name := range catch {
			rs := groups[name]
			var lost, dup int64
			for _, r := range rs {
				for _, run := range r.Catchup.Runs {
					lost += run.Accounting.Lost
					dup += run.Accounting.Duplicated
				}
			}
			run := func(i int) func(r *Result) float64 {
				return func(r *Result) float64 {
					if i < len(r.Catchup.Runs) {
						return r.Catchup.Runs[i].Seconds.Max
					}
					return 0
				}
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s, %s | %s | %s | %s | %d / %d |\n", name, len(rs), rs[0].Catchup.Head,
				med(rs, func(r *Result) float64 { return r.Catchup.WriteEventsPerSec }, "%.0f"),
				med(rs, func(r *Result) float64 { return r.Catchup.WriteAck.P99 }, "%.1f"),
				medRange(rs, run(0), "%.0f"), med(rs, run(1), "%.0f"),
				med(rs, func(r *Result) float64 { return r.Catchup.RESTPagesSeconds * 1000 }, "%.0f"),
				lost, dup)
		}
		fmt.Fprintln(w)
	}
	for _, name := range order {
		for _, r := range groups[name] {
			for _, p := range r.Problems {
				fmt.Fprintf(w, "- %s: %s\n", r.Label, p)
			}
		}
	}
	return nil
}

// readGroups reads result files and groups the runs by their label
// without the repeat suffix; order is the groups' names, sorted.
func readGroups(files []string) (groups map[string][]*Result, order []string, err error) {
	groups = map[string][]*Result{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		name := repeatSuffix.ReplaceAllString(r.Label, "")
		if name == "" {
			name = r.Scenario
		}
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], &r)
	}
	slices.Sort(order)
	return groups, order, nil
}

// diskPerEvent is what the servers wrote to storage per acknowledged write
// of the run (0 when not measured).
func diskPerEvent(r *Result) float64 {
	var mib float64
	for _, s := range r.Servers {
		mib += s.DiskWriteMiB
	}
	if r.Writes == nil || r.Writes.Acked == 0 {
		return 0
	}
	return mib * 1024 / float64(r.Writes.Acked)
}

func instances(p Params) string {
	if len(p.URLs) > 1 {
		return fmt.Sprintf("%d instances", len(p.URLs))
	}
	return "1 instance"
}

func storeOf(r *Result) StoreSize {
	if r.Delivery == nil || r.Delivery.Store == nil {
		return StoreSize{}
	}
	return *r.Delivery.Store
}

func loadOf(r *Result) Load {
	if r.Load == nil {
		return Load{}
	}
	return *r.Load
}

func values(rs []*Result, f func(*Result) float64) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v
}

// median of the runs' values (the lower middle one for an even count: a
// value that was measured).
func median(v []float64) float64 { return v[(len(v)-1)/2] }

func med(rs []*Result, f func(*Result) float64, format string) string {
	return fmt.Sprintf(format, median(values(rs, f)))
}

func medRange(rs []*Result, f func(*Result) float64, format string) string {
	v := values(rs, f)
	s := fmt.Sprintf(format, median(v))
	if len(v) > 1 {
		s += fmt.Sprintf(" ("+format+"–"+format+")", v[0], v[len(v)-1])
	}
	return s
}

func maxOf(rs []*Result, f func(*Result) float64, format string) string {
	v := values(rs, f)
	return fmt.Sprintf(format, v[len(v)-1])
}

// runSummary is the "summary" subcommand.
func runSummary(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: dealroom-bench summary RESULT.json ...")
	}
	return summary(jsonFiles(args), stdout)
}

func jsonFiles(args []string) []string {
	var files []string
	for _, a := range args {
		if strings.HasSuffix(a, ".json") {
			files = append(files, a)
		}
	}
	return files
}
