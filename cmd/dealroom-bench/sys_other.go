//go:build !unix

package main

import (
	"errors"
	"time"
)

func raiseFileLimit() (uint64, error) { return 0, nil }

func selfCPU() time.Duration { return 0 }

func (b *bench) startProfile() {
	if b.cfg.ProfileCmd != "" {
		b.problem("-profile-cmd needs a Unix system")
	}
}

func (b *bench) stopProfile() {}

func (b *bench) runAtPeak() { b.problem("-at-peak-cmd needs a Unix system") }

func diskUsage(string) (size, allocated int64, err error) {
	return 0, 0, errors.New("-data-dir needs a Unix system")
}
