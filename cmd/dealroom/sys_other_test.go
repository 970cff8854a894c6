//go:build !linux

package main

import "syscall"

// childAttr is nil where the kernel cannot kill a child with its parent;
// the tests' cleanups kill the servers they start.
func childAttr() *syscall.SysProcAttr { return nil }
