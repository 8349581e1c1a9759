//go:build !linux

package bench

import "time"

// preciseSleep falls back on the runtime's timers where there is no nanosleep of ours.
func preciseSleep(d time.Duration) { time.Sleep(d) }
