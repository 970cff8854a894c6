package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareClusterPairsTwins(t *testing.T) {
	dir := t.TempDir()
	write := func(label string, p99, redis float64, aux map[string]float64) {
		r := Result{Scenario: "e", Label: label, Params: Params{Conns: 1000, Rooms: 100, Rate: 500, URLs: []string{"a", "b"}},
			Delivery: &DeliveryStats{EndToEnd: Summary{P50: 1, P99: p99}}, Load: &Load{AuxCores: aux}}
		b, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, label+".json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("me500", 10, 0, map[string]float64{"redis": 0.1, "mongo": 0.5})
	write("ke500", 30, 0, map[string]float64{"redis1": 0.05, "redis2": 0.05, "redis3": 0.1, "mongo": 0.5})
	write("me500.r2", 20, 0, map[string]float64{"redis": 0.1})
	write("ke500.r2", 20, 0, map[string]float64{"redis1": 0.3})
	write("mb500", 5, 0, nil) // no twin: left out
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var out strings.Builder
	if err := compareCluster(files, &out); err != nil {
		t.Fatal(err)
	}
	// Pairs' p99 ratios 3 and 1: the median (the lower middle) is 1; the
	// Cluster's Redis cores are summed over its nodes, Mongo's left out.
	for _, want := range []string{"| me500 / ke500 | 2 |", "| 1.00 (1.00–3.00) |", "| 0.10 / 0.20 |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("compare-cluster output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "mb500") {
		t.Errorf("compare-cluster lists a run without a twin:\n%s", out.String())
	}
}
