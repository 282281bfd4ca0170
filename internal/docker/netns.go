package docker

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
)

// RunWorkloadInNetns runs command with the host's `sh -c`, as tailor's user and with
// the host's files, but inside the network namespace of process pid (a container's
// init): 127.0.0.1:PORT then reaches a server listening inside the container, with no
// published port and no traffic leaving the container's namespace. Only the network
// namespace changes, so the workload's own processes are not the container's and the
// tracer does not attribute them to it.
//
// setns changes only the calling thread, and os/exec forks from the calling thread, so
// the shell is started from a locked thread that is in the container's namespace for
// just that moment and is moved back before it is unlocked; if it cannot be moved
// back, it stays locked and dies with its goroutine. A workload that exits non-zero
// returns an error wrapping fail.ErrWorkload.
func RunWorkloadInNetns(ctx context.Context, pid int, command string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that cancelling kills everything the shell started,
	// and a bounded wait for output pipes a background grandchild may hold open.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	errc := make(chan error, 1)
	go func() { errc <- startInNetns(cmd, pid) }()
	if err := <-errc; err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: workload %q stopped: %v", fail.ErrInterrupted, command, ctx.Err())
		}
		return fmt.Errorf("%w: %q: %v", fail.ErrWorkload, command, err)
	}
	return nil
}

// startInNetns starts cmd from this goroutine's thread after moving the thread into
// pid's network namespace, then moves the thread back.
func startInNetns(cmd *exec.Cmd, pid int) error {
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening tailor's own network namespace: %w", err)
	}
	defer home.Close()
	target, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("%w: opening the network namespace of pid %d: %v", fail.ErrDocker, pid, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		if err == unix.EPERM {
			return fmt.Errorf("%w: entering the network namespace of pid %d needs CAP_SYS_ADMIN: run tailor as root", fail.ErrPrivilege, pid)
		}
		return fmt.Errorf("entering the network namespace of pid %d: %w", pid, err)
	}
	startErr := cmd.Start()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		// Still locked: the thread exits with this goroutine instead of running
		// other goroutines in the container's namespace.
		if startErr == nil {
			_ = cmd.Cancel()
			_ = cmd.Wait()
		}
		return fmt.Errorf("returning to tailor's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	if startErr != nil {
		return fmt.Errorf("%w: starting %v: %v", fail.ErrWorkload, cmd.Args, startErr)
	}
	return nil
}
