//go:build linux

package poller

import "golang.org/x/sys/unix"

// BreakWake puts a descriptor open only for reading in the place of p's eventfd, so that Close
// cannot write the wake (EBADF), while the loop goes on waiting: the eventfd it replaces leaves
// the epoll set as it closes. The number stays taken until Close closes it.
func BreakWake(p *Poller) error {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Dup3(fd, p.wakefd, unix.O_CLOEXEC)
}

// Descriptors returns p's epoll fd and eventfd.
func Descriptors(p *Poller) (epfd, wakefd int) { return p.epfd, p.wakefd }

// LoopDone is closed when p's loop goroutine has returned.
func LoopDone(p *Poller) <-chan struct{} { return p.done }
