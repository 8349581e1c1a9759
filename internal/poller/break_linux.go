//go:build linux

package poller

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// BreakEpoll makes p's loop fail, for tests, here and of what holds connections through a
// Poller (the stream engine's), which cannot reach the descriptor: it puts a descriptor that is
// not an epoll instance in the place of p's. The loop's next epoll_wait fails (EINVAL); a wait
// already in progress goes on watching the old instance until an event (or closeCheck) ends it.
func BreakEpoll(p *Poller) error {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("poller: eventfd: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Dup3(fd, p.epfd, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("poller: dup3: %w", err)
	}
	return nil
}
