//go:build !unix

package sqlite

// freeDisk does not read the free space on this platform: readiness then does not judge it.
func freeDisk(string) (int64, error) { return 0, errFreeDiskUnknown }

// writable is left to SQLite on this platform.
func writable(string) error { return nil }
