//go:build unix

package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lockFile takes the lock that makes this process the only one serving the database at file:
// an exclusive flock on file+"-lock", held until the returned file is closed, which the kernel
// does too when the process ends however it ends. The lock file names the process that holds it.
//
// The lock is not on the database file itself: SQLite locks that one with fcntl, and where the
// kernel emulates flock with fcntl (NFS), the two would meet.
func lockFile(file string) (*os.File, error) {
	path := file + "-lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path) // a name in the message, if it can be read
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("sqlite: %s is in use by another ordercast (%s): two processes on one SQLite database would each push only their own changes to their own watchers; stop the other, or give this one another --db", file, describeHolder(holder))
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("sqlite: write the lock file %s: %w", path, err)
	}
	return f, nil
}

// describeHolder names the process whose id the lock file holds.
func describeHolder(content []byte) string {
	if pid, err := strconv.Atoi(string(bytes.TrimSpace(content))); err == nil && pid > 0 {
		return "process " + strconv.Itoa(pid)
	}
	return "a process that did not say which"
}
