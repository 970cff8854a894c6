//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts a child in its own process group. Outside Linux there is
// no parent-death signal; Main or Shutdown stop the servers, and
// mongo-java-server also exits when its stdin closes.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
