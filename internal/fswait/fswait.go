// Package fswait waits for a file to change instead of polling it: tests and the fit
// harness wait for the anomalies a watcher appends to a file, and inotify tells them
// each time it was written.
package fswait

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Until calls cond now and after each change to path (created, written, closed,
// renamed into place) until it returns true, or timeout passes. It returns whether
// cond became true. The directory is watched, so path need not exist yet.
func Until(path string, timeout time.Duration, cond func() bool) (bool, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return false, fmt.Errorf("inotify: %w", err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path),
		unix.IN_CREATE|unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		return false, fmt.Errorf("watching %s: %w", filepath.Dir(path), err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	// The watch is in place before the first check: a change between the two is
	// seen as an event, not lost.
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("waiting for %s: %w", path, err)
		}
		// Drain what came; which file of the directory changed does not matter, cond
		// decides.
		for {
			if _, err := unix.Read(fd, buf); err != nil {
				break
			}
		}
	}
	return true, nil
}
