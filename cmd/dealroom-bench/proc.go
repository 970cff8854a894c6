package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// procSample is what /proc tells of a server process at one moment.
type procSample struct {
	at      time.Time
	rssKiB  int64         // VmRSS: anonymous + file-backed (bbolt maps its file) + shared
	anonKiB int64         // RssAnon: the heap, stacks and the runtime's own memory
	cpuTime time.Duration // user + system
	// diskWrite is the bytes the process caused to be written to storage
	// (write_bytes of /proc/PID/io; -1 when unreadable).
	diskWrite int64
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat; it
// is 100 on every Linux architecture Go runs on.
const clockTicks = 100

// readProc samples a process's resident memory (VmRSS) and CPU time.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rssKiB, err = statusKiB(status, "VmRSS:")
	if err != nil {
		return s, err
	}
	s.anonKiB, _ = statusKiB(status, "RssAnon:")
	s.diskWrite = -1
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		if n, err := ioField(io, "write_bytes:"); err == nil {
			s.diskWrite = n
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	s.cpuTime, err = statCPU(stat)
	return s, err
}

// ioField reads a line of /proc/PID/io such as "write_bytes: 123".
func ioField(io []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(io), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/io", key)
}

// statusKiB reads a line of /proc/PID/status such as "VmRSS:", in KiB.
func statusKiB(status []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", key)
}

// statCPU reads utime + stime from /proc/PID/stat. The command name in
// parentheses may hold spaces: fields are counted after the last ')'.
func statCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/PID/stat")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// scrapeMetrics reads the server's unlabelled Prometheus samples
// (go_memstats_*, go_goroutines, dealroom_ws_sessions, ...) and the
// buckets of its store commit histogram (as `name{le="0.001"}`).
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// commitHist is the server's histogram of store commits.
const commitHist = "dealroom_store_commit_seconds"

// StoreCommits is what the embedded store's commits did during the
// measured part, from the server's metrics.
type StoreCommits struct {
	Commits           float64 `json:"commits"`
	PerSecond         float64 `json:"commits_per_s"`
	CommandsPerCommit float64 `json:"commands_per_commit"`
	MeanMs            float64 `json:"mean_ms"`
	// P99Ms is the upper bound of the histogram bucket that holds the
	// 99th percentile; Over10ms and Over50ms count the slow commits.
	P99Ms    float64 `json:"p99_ms_at_most"`
	Over10ms float64 `json:"over_10ms"`
	Over50ms float64 `json:"over_50ms"`
}

// storeCommits compares the commit histogram of two scrapes; nil when the
// server has none (MongoDB).
func storeCommits(before, after map[string]float64, seconds float64) *StoreCommits {
	n := after[commitHist+"_count"] - before[commitHist+"_count"]
	if n <= 0 {
		return nil
	}
	sc := &StoreCommits{Commits: n, PerSecond: n / seconds,
		CommandsPerCommit: (after["dealroom_store_commands_total"] - before["dealroom_store_commands_total"]) / n,
		MeanMs:            1000 * (after[commitHist+"_sum"] - before[commitHist+"_sum"]) / n}
	type bucket struct{ le, count float64 }
	var bs []bucket
	for k, v := range after {
		le, ok := strings.CutPrefix(k, commitHist+`_bucket{le="`)
		if !ok {
			continue
		}
		le = strings.TrimSuffix(le, `"}`)
		x, err := strconv.ParseFloat(le, 64)
		if err != nil || math.IsInf(x, 0) {
			continue // +Inf (which ParseFloat reads): beyond the last bucket, P99Ms -1
		}
		bs = append(bs, bucket{x, v - before[k]})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	sc.P99Ms = -1 // beyond the last bucket
	for _, b := range bs {
		if b.count >= 0.99*n {
			sc.P99Ms = 1000 * b.le
			break
		}
	}
	for _, b := range bs {
		if b.le == 0.01 {
			sc.Over10ms = n - b.count
		}
		if b.le == 0.05 {
			sc.Over50ms = n - b.count
		}
	}
	return sc
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsRune(line, '{') && !strings.HasPrefix(line, commitHist+"_bucket{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// machineCPU returns the CPU time all processors spent busy so far (user,
// nice, system, irq, softirq, steal), from the first line of /proc/stat.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("malformed /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/stat")
		}
		busy += v
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// procCPU is one process's name and CPU time so far.
type procCPU struct {
	comm string
	cpu  time.Duration
}

// allProcs reads the CPU time of every process (kernel threads included):
// to name the other processes that kept the machine busy.
func allProcs() map[int]procCPU {
	out := map[int]procCPU{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		cpu, err := statCPU(stat)
		if err != nil {
			continue
		}
		comm := ""
		if i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')'); i >= 0 && j > i {
			comm = string(stat[i+1 : j])
		}
		out[pid] = procCPU{comm: comm, cpu: cpu}
	}
	return out
}

// procStart returns when a process started, from its starttime (ticks
// since boot, /proc/PID/stat field 22) and the boot time (btime of
// /proc/stat): to place the times a server logs since its start (as
// GODEBUG=gctrace=1 does) on the clock.
func procStart(pid int) (time.Time, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 20 {
		return time.Time{}, fmt.Errorf("malformed /proc/PID/stat")
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(all), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / clockTicks), nil
		}
	}
	return time.Time{}, fmt.Errorf("no btime in /proc/stat")
}
