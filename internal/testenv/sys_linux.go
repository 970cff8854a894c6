package testenv

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel
// SIGKILL it when the test binary (the forking thread, see spawn) dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
