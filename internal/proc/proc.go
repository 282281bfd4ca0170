// Package proc tells when processes end: how a target ended (Exit), and, through a
// pidfd, when a process that is not tailor's child exits (a container's init, the
// descendants of a learned command). learn, enforce and watch share it so that there
// is one way to wait for an end, and none of them polls /proc.
package proc

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a target ended: its exit status, or the error that kept tailor from
// knowing it.
type Exit struct {
	Status int
	Err    error
}

// ExitWatch tells when one process exits.
type ExitWatch struct {
	done   chan struct{}
	pidfd  int
	cancel [2]int
}

// WatchExit starts watching pid. The pidfd is taken now, so a process that exits
// before anyone waits is still seen exiting (and a reused pid is not mistaken for it).
func WatchExit(pid int) (*ExitWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("opening a pidfd for pid %d: %w", pid, err)
	}
	w := &ExitWatch{done: make(chan struct{}), pidfd: fd}
	if err := unix.Pipe2(w.cancel[:], unix.O_CLOEXEC); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watching pid %d: %w", pid, err)
	}
	go w.wait()
	return w, nil
}

// Done is closed when the process exits; never if Close came first.
func (w *ExitWatch) Done() <-chan struct{} { return w.done }

// Close ends the watch. Call it once.
func (w *ExitWatch) Close() { unix.Close(w.cancel[1]) }

// wait closes done when the pidfd becomes readable (the process exited), and
// returns without closing it when the cancel pipe does (Close).
func (w *ExitWatch) wait() {
	defer unix.Close(w.pidfd)
	defer unix.Close(w.cancel[0])
	fds := []unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}, {Fd: int32(w.cancel[0]), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil && fds[0].Revents != 0 && fds[1].Revents == 0 {
			close(w.done)
		}
		return
	}
}

// WaitAll waits until every process in pids has exited or timeout has passed, and
// says whether they all did. A pid that is already gone counts as exited.
func WaitAll(pids []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	var fds []unix.PollFd
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already (ESRCH)
		}
		defer unix.Close(fd)
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for len(fds) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false
		}
		if n == 0 {
			return false
		}
		open := fds[:0]
		for _, f := range fds {
			if f.Revents == 0 {
				open = append(open, unix.PollFd{Fd: f.Fd, Events: unix.POLLIN})
			}
		}
		fds = open
	}
	return true
}
