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
// It works on a dedicated OS thread: setns changes only the calling thread, and the
// child is forked from that thread, so it starts in the container's namespace. The
// thread is never handed back to the Go scheduler and dies with its goroutine. A
// workload that exits non-zero returns an error wrapping fail.ErrWorkload.
func RunWorkloadInNetns(ctx context.Context, pid int, command string, stdout, stderr io.Writer) error {
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread is in another namespace now and must not
		// run other goroutines, so it exits with this one.
		runtime.LockOSThread()
		errc <- runInNetns(ctx, pid, command, stdout, stderr)
	}()
	return <-errc
}

func runInNetns(ctx context.Context, pid int, command string, stdout, stderr io.Writer) error {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return fmt.Errorf("%w: opening the network namespace of pid %d: %v", fail.ErrDocker, pid, err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		if err == unix.EPERM {
			return fmt.Errorf("%w: entering the network namespace of pid %d needs CAP_SYS_ADMIN: run tailor as root", fail.ErrPrivilege, pid)
		}
		return fmt.Errorf("entering the network namespace of pid %d: %w", pid, err)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, so that cancelling kills everything the shell started,
	// and a bounded wait for output pipes a background grandchild may hold open.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: workload %q stopped: %v", fail.ErrInterrupted, command, ctx.Err())
		}
		return fmt.Errorf("%w: %q: %v", fail.ErrWorkload, command, err)
	}
	return nil
}
