//go:build unix

package main

import (
	"io/fs"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// raiseFileLimit lifts the soft limit of open files to the hard one: each
// websocket is a file descriptor.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	return uint64(lim.Cur), nil
}

// selfCPU returns the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile starts -profile-cmd in a process group of its own.
func (b *bench) startProfile() {
	if b.cfg.ProfileCmd == "" {
		return
	}
	cmd := exec.Command("sh", "-c", b.cfg.ProfileCmd)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.problem("-profile-cmd: %v", err)
		return
	}
	b.profile = cmd
}

// stopProfile interrupts -profile-cmd's process group and waits for it.
func (b *bench) stopProfile() {
	if b.profile == nil {
		return
	}
	cmd := b.profile
	b.profile = nil
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// runAtPeak runs -at-peak-cmd and waits for it.
func (b *bench) runAtPeak() {
	cmd := exec.Command("sh", "-c", b.cfg.AtPeakCmd)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Run(); err != nil {
		b.problem("-at-peak-cmd: %v", err)
	}
}

// diskUsage sums the regular files under dir: their sizes, and the
// bytes the file system allocated to them (less for sparse files, such
// as a bbolt file grown ahead of its data).
func diskUsage(dir string) (size, allocated int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		return nil
	})
	return size, allocated, err
}
