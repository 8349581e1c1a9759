//go:build !unix

package main

// openFileLimit is 0 where the process's open-file limit is not read: no cap is derived from it.
func openFileLimit() int { return 0 }
