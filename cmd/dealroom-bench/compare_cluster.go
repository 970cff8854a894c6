package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// clusterTwin names the run on a Redis Cluster that pairs with the
// single-node run name (me200 → ke200, mc → kc), or "" for a name that
// has none.
func clusterTwin(name string) string {
	if !strings.HasPrefix(name, "m") {
		return ""
	}
	return "k" + name[1:]
}

// compareCluster writes the runs on one Redis node (me200, ..., mc) beside
// their twins on a Redis Cluster (ke200, ..., kc): the median of each and
// the median of the ratios of the runs that ran one after the other
// (Cluster / one node), as compare does for the reference server. Redis's
// cores are the sum over its processes (one, or the Cluster's six).
func compareCluster(files []string, w io.Writer) error {
	groups, order, err := readGroups(files)
	if err != nil {
		return err
	}
	var fan []string
	for _, name := range order {
		twin := clusterTwin(name)
		if twin == "" || groups[twin] == nil {
			continue
		}
		if groups[name][0].Delivery != nil && groups[twin][0].Delivery != nil {
			fan = append(fan, name)
		}
	}
	if len(fan) == 0 {
		return fmt.Errorf("no pair of runs mNAME and kNAME (one Redis node, a Redis Cluster) among the results")
	}
	fmt.Fprintln(w, "| run | pairs | shape | one Redis p50 / p99 ms | Cluster p50 / p99 ms | p50 ratio | p99 ratio (range) | lost / doubled, one / Cluster | server cores, one / Cluster | Redis cores, one / Cluster | other cores (max) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, name := range fan {
		twin := clusterTwin(name)
		one, cl := byRun(groups[name]), byRun(groups[twin])
		n := min(len(one), len(cl))
		one, cl = one[:n], cl[:n]
		p50 := func(r *Result) float64 { return r.Delivery.EndToEnd.P50 }
		p99 := func(r *Result) float64 { return r.Delivery.EndToEnd.P99 }
		server := func(r *Result) float64 { return loadOf(r).ServerCores }
		p := one[0].Params
		fmt.Fprintf(w, "| %s / %s | %d | %d conns, %d rooms, %.0f writes/s, %s | %s / %s | %s / %s | %.2f | %s | %s / %s | %s / %s | %s / %s | %s |\n",
			name, twin, n, p.Conns, p.Rooms, p.Rate, instances(p),
			med(one, p50, "%.2f"), med(one, p99, "%.2f"), med(cl, p50, "%.2f"), med(cl, p99, "%.2f"),
			median(ratios(cl, one, p50)), rangeOf(ratios(cl, one, p99)),
			lostDoubled(one), lostDoubled(cl),
			med(one, server, "%.2f"), med(cl, server, "%.2f"),
			med(one, redisCores, "%.2f"), med(cl, redisCores, "%.2f"),
			maxOf(append(slices.Clone(one), cl...), func(r *Result) float64 { return loadOf(r).OtherCores }, "%.2f"))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are Cluster / one node, the median of the pairs. On one machine the Cluster's six processes share the cores with everything else: this shows what sharded pub/sub costs, not what more machines would give.")
	return nil
}

// redisCores is the CPU of the run's Redis processes (-aux-pid names
// starting with "redis"), in cores.
func redisCores(r *Result) float64 {
	var c float64
	for name, v := range loadOf(r).AuxCores {
		if strings.HasPrefix(name, "redis") {
			c += v
		}
	}
	return c
}

// runCompareCluster is the "compare-cluster" subcommand.
func runCompareCluster(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: dealroom-bench compare-cluster RESULT.json ...")
	}
	return compareCluster(jsonFiles(args), stdout)
}
