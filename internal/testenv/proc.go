package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// isCI reports whether missing services must fail tests instead of
// skipping them.
func isCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// unavailable skips tb, or fails it when running in CI, because a service
// it needs cannot be had.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if isCI() {
		tb.Fatalf("testenv: %s\n(CI=%q: a missing test service is a failure here, not a skip)", msg, os.Getenv("CI"))
		return
	}
	tb.Skipf("testenv: %s\n(skipped; with CI=true this fails instead)", msg)
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it,
// for error messages about a process that failed.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	// onLine, if set, is called with each complete line written.
	onLine  func(line string)
	partial []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	var lines []string
	if b.onLine != nil {
		b.partial = append(b.partial, p...)
		for {
			i := bytes.IndexByte(b.partial, '\n')
			if i < 0 {
				break
			}
			lines = append(lines, strings.TrimRight(string(b.partial[:i]), "\r"))
			b.partial = b.partial[i+1:]
		}
		if len(b.partial) > 64<<10 {
			b.partial = nil // a line that long is of no interest
		}
	}
	onLine := b.onLine
	b.mu.Unlock()
	for _, l := range lines {
		onLine(l)
	}
	return len(p), nil
}

// String returns the kept output, trimmed.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}

// process is a running child process in its own process group.
type process struct {
	name  string
	cmd   *exec.Cmd
	out   *tailBuffer
	stdin io.Closer // held open so that the child sees EOF when we go away
	done  chan struct{}
	err   error // result of Wait; valid once done is closed
}

var (
	spawnOnce sync.Once
	spawnReqs chan spawnRequest

	liveMu sync.Mutex
	live   = map[*process]struct{}{}
)

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

// spawn starts cmd from one OS thread that lives as long as the process.
// Pdeathsig is tied to the thread that forked the child, not to the
// process: a child forked from a thread that later exits (which the Go
// runtime does when a goroutine ends while locked to its thread) would be
// killed early.
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread is kept forever
			for r := range spawnReqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- spawnRequest{cmd: cmd, errc: errc}
	return <-errc
}

// startProcess starts cmd with its stdout and stderr going to out. If
// keepStdin is set, the child's stdin is a pipe that stays open until the
// process is stopped or the test binary exits.
func startProcess(name string, cmd *exec.Cmd, out *tailBuffer, keepStdin bool) (*process, error) {
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	if keepStdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = w
	}
	if err := spawn(cmd); err != nil {
		return nil, err
	}
	liveMu.Lock()
	live[p] = struct{}{}
	liveMu.Unlock()
	go func() {
		p.err = cmd.Wait()
		liveMu.Lock()
		delete(live, p)
		liveMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the process ended, with its last output.
func (p *process) exitError() error {
	<-p.done
	msg := fmt.Sprintf("%s exited", p.name)
	if p.err != nil {
		msg = fmt.Sprintf("%s exited: %v", p.name, p.err)
	}
	if out := p.out.String(); out != "" {
		msg += "; its output ends with:\n" + out
	}
	return errors.New(msg)
}

// stop ends the process group: SIGTERM, and SIGKILL if it has not exited
// after grace. It returns once the process has been reaped.
func (p *process) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
	<-p.done
}

// kill sends SIGKILL to the process group and waits until it is reaped.
func (p *process) kill() {
	signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stopAll stops every process started by this package that still runs.
func stopAll() {
	liveMu.Lock()
	ps := make([]*process, 0, len(live))
	for p := range live {
		ps = append(ps, p)
	}
	liveMu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(5 * time.Second)
		}()
	}
	wg.Wait()
}
