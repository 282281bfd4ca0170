package proc

import (
	"os/exec"
	"testing"
	"time"
)

// startSleeper starts a process that lives until killed, reaped by its own goroutine
// so that only the pidfd tells the watcher it ended.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd
}

func TestWatchExitSeesTheEnd(t *testing.T) {
	cmd := startSleeper(t)
	w, err := WatchExit(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	select {
	case <-w.Done():
		t.Fatal("done before the process ended")
	default:
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-w.Done() // the test's timeout is the bound
}

func TestWatchExitCloseDoesNotSignalExit(t *testing.T) {
	cmd := startSleeper(t)
	w, err := WatchExit(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	cmd.Process.Kill()
	cmd.Wait()
	select {
	case <-w.Done():
		// The watcher may have seen the exit before the close; both are fine only
		// if Close came after the kill, which it did not here.
		t.Fatal("Close reported as an exit")
	case <-time.After(100 * time.Millisecond):
		// A negative: nothing to wait for, so a short bound is the check.
	}
}

func TestWaitAll(t *testing.T) {
	a, b := startSleeper(t), startSleeper(t)
	if WaitAll([]int{a.Process.Pid, b.Process.Pid}, 50*time.Millisecond) {
		t.Fatal("WaitAll true while both run")
	}
	go func() { a.Process.Kill(); a.Wait(); b.Process.Kill(); b.Wait() }()
	if !WaitAll([]int{a.Process.Pid, b.Process.Pid}, time.Minute) {
		t.Fatal("WaitAll false after both were killed")
	}
}

func TestWatchExitOfMissingProcess(t *testing.T) {
	if _, err := WatchExit(1 << 30); err == nil {
		t.Fatal("no error for a pid that does not exist")
	}
}
