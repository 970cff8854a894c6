package main

import "syscall"

// childAttr has the kernel SIGKILL a server under test when the thread
// that started it ends, so that no server outlives a test binary that
// panics or is killed by go test's timeout.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
