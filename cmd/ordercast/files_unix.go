//go:build unix

package main

import "syscall"

// openFileLimit is the process's open-file limit (RLIMIT_NOFILE's soft limit, which the Go
// runtime raises to the hard one at start), or 0 when it cannot be read or is unlimited.
func openFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 { // RLIM_INFINITY among them
		return 0
	}
	return int(l.Cur)
}
