package learn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

const defaultStopTimeout = 10 * time.Second

// Options configure a learning run.
type Options struct {
	// Output is the recording's path.
	Output string
	// Duration stops the target after this long; 0 for no limit.
	Duration time.Duration
	// Workload is a shell command run on the host once the target started; the target
	// is stopped when it finishes.
	Workload string
	// AllowLoss turns lost observations from an error into a warning.
	AllowLoss bool
	// StopTimeout is how long a stopped target gets between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// Progress receives the live progress line and the summary; nil for none.
	Progress io.Writer
	// Stdin, Stdout, Stderr are the target's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

func (o *Options) defaults() {
	if o.StopTimeout <= 0 {
		o.StopTimeout = defaultStopTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}

// Result is what a learning run produced.
type Result struct {
	Recording *profiles.Recording
	// TargetStatus is the target's exit status (128+signal when killed).
	TargetStatus int
}

// checkOutput fails early, before anything runs, when the recording could not be
// written at the end, or would be written onto a device, a FIFO, a directory or
// through a symlink.
func checkOutput(path string) error {
	if path == "" {
		return fmt.Errorf("%w: no output file: give -o FILE", fail.ErrBadInput)
	}
	if err := safeio.CheckOutputFile(path); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}

// Command learns a local command and its descendants: it starts argv through the
// launcher under the permissive learning filter, records it until it exits, the
// duration ends, the workload finishes or a signal arrives, and writes the recording.
func Command(ctx context.Context, argv []string, opt Options) (*Result, error) {
	opt.defaults()
	if len(argv) == 0 {
		return nil, fmt.Errorf("%w: no command to learn: tailor learn -o FILE -- COMMAND [ARGS...]", fail.ErrBadInput)
	}
	if err := checkOutput(opt.Output); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("%w: command %q not found", fail.ErrBadInput, argv[0])
	}
	// Signals are caught before the tracer loads (a few hundred ms): one that comes
	// meanwhile ends the run with a message instead of killing tailor silently.
	sigs, stopSignals := notifySignals()
	defer stopSignals()
	tr, err := bpf.Open(bpf.Options{Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	target, err := tr.NewTarget()
	if err != nil {
		return nil, err
	}
	sess := NewSession(tr, target, true)
	if len(sigs) > 0 {
		return nil, fmt.Errorf("%w: before the target started: nothing was run or recorded", fail.ErrInterrupted)
	}

	child, err := launch.Start("learn", launch.Payload{Argv: argv, Env: os.Environ()},
		launch.Stdio{Stdin: opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr})
	if err != nil {
		return nil, err
	}
	// Whatever of the target is still running when learning ends goes with its
	// cgroup (stopTarget asked it to stop first).
	defer child.Cleanup()
	for _, n := range child.Notes() {
		opt.Logger.Warn(n)
	}
	if err := child.Contained(); err != nil {
		opt.Logger.Warn("the target is not in a cgroup of its own: if tailor is killed, processes the target started may outlive it", "error", err)
	}
	if err := tr.AddProcess(target, child.Pid(), "tailor"); err != nil {
		child.Wait()
		return nil, err
	}
	if err := child.Release(); err != nil {
		child.Wait()
		return nil, err
	}

	exited := make(chan proc.Exit, 1)
	go func() {
		st, err := child.Wait()
		exited <- proc.Exit{Status: st, Err: err}
	}()
	l := &runLoop{tr: tr, sess: sess, opt: &opt, sigs: sigs, exited: exited,
		stop: func(string) { go stopTarget(tr, target, child, opt.StopTimeout) }}
	if opt.Workload != "" {
		l.workload = func() error { return runWorkload(ctx, opt.Workload, opt.Stdout, opt.Stderr) }
	}
	// Descendants may outlive the target's first process: stop them too before the
	// final flush.
	out := l.run(ctx, func() { stopTarget(tr, target, nil, opt.StopTimeout) })
	if out.res.Err != nil {
		return nil, out.res.Err
	}
	cwd, _ := os.Getwd() // the launcher child inherits it, and the environment
	return finish(sess, &opt, profiles.Target{Kind: "command", Command: argv, Workload: opt.Workload, Cwd: cwd, Home: os.Getenv("HOME")}, out, observeLocal)
}

// stopTarget asks every process of target to stop with SIGTERM, then kills what is
// left after grace. first, when given, is the target's first process.
func stopTarget(tr *bpf.Tracer, target uint32, first *launch.Process, grace time.Duration) {
	signalAll := func(sig syscall.Signal) int {
		n := 0
		if first != nil {
			if first.Signal(sig) == nil {
				n++
			}
		}
		for _, pid := range tr.TargetProcesses(target) {
			if syscall.Kill(pid, sig) == nil {
				n++
			}
		}
		return n
	}
	if signalAll(syscall.SIGTERM) == 0 {
		return
	}
	// The pidfds tell each exit (the kernel drops a process from the target before
	// its pidfd becomes readable). A process forked meanwhile is in the next round's
	// list, so the rounds go on until none is left or the grace has passed.
	deadline := time.Now().Add(grace)
	for {
		pids := tr.TargetProcesses(target)
		if len(pids) == 0 {
			return
		}
		if !time.Now().Before(deadline) || !proc.WaitAll(pids, time.Until(deadline)) {
			signalAll(syscall.SIGKILL)
			return
		}
	}
}

func runWorkload(ctx context.Context, cmdline string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("workload %q exited with status %d", cmdline, ee.ExitCode())
		}
		return fmt.Errorf("workload %q: %v", cmdline, err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printProgress(w io.Writer, p Progress) {
	fmt.Fprintf(w, "\r\033[Klearning %s  syscalls %d  files %d  execs %d  capabilities %d  lost %d",
		p.Elapsed.Truncate(time.Second), p.Syscalls, p.Files, p.Execs, p.Capabilities, p.Lost)
}

func printSummary(w io.Writer, r *profiles.Recording, out string, status int) {
	nsys := 0
	for _, a := range r.Syscalls {
		nsys += len(a.Names) + len(a.Unknown)
	}
	needed := 0
	for _, c := range r.Capabilities {
		if c.Needed() {
			needed++
		}
	}
	state := "complete"
	if !r.Complete {
		state = "INCOMPLETE"
	}
	fmt.Fprintf(w, "tailor: recorded %d syscalls, %d files, %d execs, %d capabilities needed, %d sockets; %d lost; %s; target exited %d -> %s\n",
		nsys, len(r.Files), len(r.Execs), needed, len(r.Network.Sockets), r.Loss.Total(), state, status, out)
	for _, why := range r.Incomplete {
		fmt.Fprintf(w, "tailor: incomplete: %s\n", why)
	}
}
