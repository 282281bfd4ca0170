package learn

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/profiles"
)

// runLoop is what every kind of learning run shares once its target is started:
// handle events until the target ends, stopping it when the duration ends, the
// workload finishes or a signal arrives.
type runLoop struct {
	tr   *bpf.Tracer
	sess *Session
	opt  *Options
	// sigs receives the signals that stop the run (see notifySignals).
	sigs <-chan os.Signal
	// exited receives the target's end.
	exited <-chan proc.Exit
	// workload, when set, runs the workload; the target is stopped when it returns.
	workload func() error
	// stop asks the target to end; it must not block the loop.
	stop func(why string)
}

// notifySignals catches SIGINT and SIGTERM from the start of a run: the first stops
// the target and still saves what was seen. Call stop when the run ends.
func notifySignals() (sigs <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	interrupt.Claim()
	return ch, func() { signal.Stop(ch) }
}

// runOutcome is what the loop saw.
type runOutcome struct {
	res         proc.Exit
	interrupted bool
	workloadErr error
}

// run handles events until the target ends, then flushes the tracer and handles the
// events the kernel wrote before the end. before runs between the loop and the flush:
// it stops what is left of the target.
func (l *runLoop) run(ctx context.Context, before func()) runOutcome {
	var workloadDone chan error
	if l.workload != nil {
		workloadDone = make(chan error, 1)
		go func() { workloadDone <- l.workload() }()
	}
	var timeout <-chan time.Time
	if l.opt.Duration > 0 {
		t := time.NewTimer(l.opt.Duration)
		defer t.Stop()
		timeout = t.C
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	live := l.opt.Progress != nil && isTerminal(l.opt.Progress)

	var (
		out     runOutcome
		stopped bool
	)
	stop := func(why string) {
		if stopped {
			return
		}
		stopped = true
		l.opt.Logger.Debug("stopping target", "reason", why)
		l.stop(why)
	}
loop:
	for {
		select {
		case ev, ok := <-l.tr.Events():
			if ok {
				l.sess.Handle(ev)
			}
		case out.res = <-l.exited:
			break loop
		case <-timeout:
			stop("duration reached")
		case out.workloadErr = <-workloadDone:
			workloadDone = nil
			stop("workload finished")
		case <-l.sigs:
			out.interrupted = true
			stop("signal")
		case <-ctx.Done():
			out.interrupted = true
			stop("cancelled")
		case <-tick.C:
			if live {
				printProgress(l.opt.Progress, l.sess.Progress())
			}
		}
	}
	if before != nil {
		before()
	}
	l.tr.Flush()
drain:
	for {
		select {
		case ev := <-l.tr.Events():
			l.sess.Handle(ev)
		default:
			break drain
		}
	}
	if live {
		fmt.Fprint(l.opt.Progress, "\r\033[K")
	}
	return out
}

// finish builds and saves the recording of a run that ended with out, prints the
// summary and returns the run's error: interrupted, lost observations (unless
// allowed), or a failed workload, in that order. incomplete lists reasons known
// before the run why the recording cannot be complete. observe, when set, adds the
// run-time facts (profiles.Observed) to the recording before it is saved.
func finish(sess *Session, opt *Options, target profiles.Target, out runOutcome, observe func(*profiles.Recording), incomplete ...string) (*Result, error) {
	rec, err := sess.Recording(target)
	if err != nil {
		return nil, err
	}
	if observe != nil {
		observe(rec)
	}
	if out.interrupted {
		incomplete = append(incomplete, "interrupted before the target finished")
	}
	if len(incomplete) > 0 {
		rec.Complete = false
		rec.Incomplete = append(rec.Incomplete, incomplete...)
	}
	if err := rec.Save(opt.Output); err != nil {
		return nil, err
	}
	result := &Result{Recording: rec, TargetStatus: out.res.Status}
	if opt.Progress != nil {
		printSummary(opt.Progress, rec, opt.Output, out.res.Status)
	}
	switch {
	case out.interrupted:
		return result, fmt.Errorf("%w: recording saved to %s, marked incomplete", fail.ErrInterrupted, opt.Output)
	case rec.Loss.Total() > 0 && !opt.AllowLoss:
		return result, fmt.Errorf("%w: %d observations lost; recording saved to %s, marked incomplete (use --allow-loss to accept)", fail.ErrLoss, rec.Loss.Total(), opt.Output)
	case out.workloadErr != nil:
		return result, workloadError(out.workloadErr, opt.Output)
	}
	return result, nil
}

// workloadError says the workload failed; an error that already carries an exit code
// of its own (a container's workload that could not enter the namespace) keeps it.
func workloadError(err error, output string) error {
	if fail.Code(err) != 1 {
		return fmt.Errorf("%w; recording saved to %s", err, output)
	}
	return fmt.Errorf("%w: %v; recording saved to %s", fail.ErrWorkload, err, output)
}
