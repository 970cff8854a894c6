package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// cfPrefix names the reference server's runs: cf-b1000 is b1000 against
// the reference server on Centrifuge.
const cfPrefix = "cf-"

// vsTargets are the ratios (Dealroom / Centrifuge) to meet, from the
// project's issue 12: the end-to-end p99 of a fanout scenario, the p50
// of every one, and the memory per idle connection.
var vsTargets = struct {
	p99     map[string]float64
	p50     float64
	memory  float64
	durable string
}{
	p99:     map[string]float64{"b1000": 3, "c": 1.5},
	p50:     2,
	memory:  1,
	durable: "b1000",
}

// compare writes the side-by-side tables of Dealroom's runs NAME and the
// reference server's runs cf-NAME: the median of each server's runs and
// the median of the ratios of the runs that ran one after the other (the
// first of each, the second of each, ...), which a machine busy for a
// while disturbs less than a ratio of medians.
func compare(files []string, w io.Writer) error {
	groups, order, err := readGroups(files)
	if err != nil {
		return err
	}
	var fan, idle []string
	for _, name := range order {
		if strings.HasPrefix(name, cfPrefix) || groups[cfPrefix+name] == nil {
			continue
		}
		switch {
		case groups[name][0].Delivery != nil && groups[cfPrefix+name][0].Delivery != nil:
			fan = append(fan, name)
		case groups[name][0].Memory != nil && groups[cfPrefix+name][0].Memory != nil:
			idle = append(idle, name)
		}
	}
	if len(fan)+len(idle) == 0 {
		return fmt.Errorf("no pair of runs NAME and %sNAME among the results", cfPrefix)
	}
	var checks []string
	check := func(what string, ratio, target float64) {
		verdict := "not met"
		if ratio <= target {
			verdict = "met"
		}
		checks = append(checks, fmt.Sprintf("- %s: %.2fx, target at most %.1fx: **%s**", what, ratio, target, verdict))
	}
	if len(fan) > 0 {
		fmt.Fprintln(w, "| run | pairs | shape | Dealroom p50 / p99 ms | Centrifuge p50 / p99 ms | p50 ratio | p99 ratio (range) | Dealroom lost / doubled, events stored | Centrifuge lost / doubled | other cores (max) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		for _, name := range fan {
			d, c := byRun(groups[name]), byRun(groups[cfPrefix+name])
			n := min(len(d), len(c))
			d, c = d[:n], c[:n]
			p50 := func(r *Result) float64 { return r.Delivery.EndToEnd.P50 }
			p99 := func(r *Result) float64 { return r.Delivery.EndToEnd.P99 }
			r50, r99 := ratios(d, c, p50), ratios(d, c, p99)
			p := d[0].Params
			fmt.Fprintf(w, "| %s | %d | %d conns, %d rooms, %.0f writes/s | %s / %s | %s / %s | %.2f | %s | %s, %s | %s | %s |\n",
				name, n, p.Conns, p.Rooms, p.Rate,
				med(d, p50, "%.2f"), med(d, p99, "%.2f"), med(c, p50, "%.2f"), med(c, p99, "%.2f"),
				median(r50), rangeOf(r99), lostDoubled(d), med(d, func(r *Result) float64 { return float64(r.Delivery.EventsStored) }, "%.0f"),
				lostDoubled(c), maxOf(append(slices.Clone(d), c...), func(r *Result) float64 { return loadOf(r).OtherCores }, "%.2f"))
			if t, ok := vsTargets.p99[name]; ok {
				what := fmt.Sprintf("p99 of %s", name)
				if name == vsTargets.durable {
					what += " (Dealroom storing every event durably)"
				}
				check(what, median(r99), t)
			}
			check("p50 of "+name, median(r50), vsTargets.p50)
		}
		fmt.Fprintln(w)
	}
	if len(idle) > 0 {
		fmt.Fprintln(w, "| run | pairs | idle conns | Dealroom RSS per conn KiB | Centrifuge RSS per conn KiB | ratio (range) | Dealroom / Centrifuge Go heap per conn KiB | other cores (max) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		for _, name := range idle {
			d, c := byRun(groups[name]), byRun(groups[cfPrefix+name])
			n := min(len(d), len(c))
			d, c = d[:n], c[:n]
			rss := func(r *Result) float64 { return r.Memory.RSSPerConnKiB }
			heap := func(r *Result) float64 { return r.Memory.HeapPerConnKiB }
			rr := ratios(d, c, rss)
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s / %s | %s |\n", name, n, d[0].Memory.Conns,
				med(d, rss, "%.1f"), med(c, rss, "%.1f"), rangeOf(rr), med(d, heap, "%.1f"), med(c, heap, "%.1f"),
				maxOf(append(slices.Clone(d), c...), func(r *Result) float64 { return loadOf(r).OtherCores }, "%.2f"))
			check("memory per idle connection, "+name, median(rr), vsTargets.memory)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Targets (ratio Dealroom / Centrifuge, median of the pairs):")
	fmt.Fprintln(w)
	for _, c := range checks {
		fmt.Fprintln(w, c)
	}
	return nil
}

// byRun orders one scenario's runs by their repeat number (NAME, NAME.r2,
// NAME.r3, ...).
func byRun(rs []*Result) []*Result {
	num := func(r *Result) int {
		s := repeatSuffix.FindString(r.Label)
		n, _ := strconv.Atoi(strings.TrimPrefix(s, ".r"))
		return max(n, 1)
	}
	out := slices.Clone(rs)
	slices.SortStableFunc(out, func(a, b *Result) int { return num(a) - num(b) })
	return out
}

// ratios returns f(d[i]) / f(c[i]) for each pair, sorted; a pair whose
// reference value is 0 is left out.
func ratios(d, c []*Result, f func(*Result) float64) []float64 {
	var v []float64
	for i := range min(len(d), len(c)) {
		if x := f(c[i]); x > 0 {
			v = append(v, f(d[i])/x)
		}
	}
	slices.Sort(v)
	if len(v) == 0 {
		v = []float64{0}
	}
	return v
}

func rangeOf(v []float64) string {
	s := fmt.Sprintf("%.2f", median(v))
	if len(v) > 1 {
		s += fmt.Sprintf(" (%.2f–%.2f)", v[0], v[len(v)-1])
	}
	return s
}

func lostDoubled(rs []*Result) string {
	var lost, dup int64
	for _, r := range rs {
		lost += r.Delivery.Accounting.Lost + r.Delivery.Accounting.Unknown
		dup += r.Delivery.Accounting.Duplicated
	}
	return fmt.Sprintf("%d / %d", lost, dup)
}

// runCompare is the "compare" subcommand.
func runCompare(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: dealroom-bench compare RESULT.json ...")
	}
	return compare(jsonFiles(args), stdout)
}
