package bench

import (
	"time"

	"golang.org/x/sys/unix"
)

// preciseSleep sleeps about d in the kernel (nanosleep), blocking this goroutine's thread; the
// runtime gives its processor to other goroutines meanwhile. An interrupted sleep returns early,
// which its caller's loop makes up.
func preciseSleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil) // EINTR is the only error a valid duration can earn: the loop sleeps again
}
