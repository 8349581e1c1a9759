//go:build linux

package poller

import "golang.org/x/sys/unix"

// BreakEpoll puts a descriptor that is not an epoll instance in the place of p's, as a bad epfd:
// the loop's next epoll_wait fails (EINVAL), while a wait already in progress goes on watching the
// old instance until an event ends it.
func BreakEpoll(p *Poller) error {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Dup3(fd, p.epfd, unix.O_CLOEXEC)
}
