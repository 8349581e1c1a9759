//go:build unix

package sqlite

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// freeDisk returns the bytes an unprivileged writer may still use on the file system that holds
// dir.
func freeDisk(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil // Bsize is int64 on Linux, uint32 elsewhere
}

// writable reports whether this process may write path (a file, or a directory to create files
// in), as the kernel judges its permissions.
func writable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return fmt.Errorf("access %s: %w", path, err)
	}
	return nil
}
