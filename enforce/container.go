package enforce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/profiles"
)

// DefaultStopTimeout is how long a copy gets to stop on SIGTERM before it is killed.
const DefaultStopTimeout = 10 * time.Second

// logDrain bounds the wait for the copy's last output after it stopped: the log
// stream ends with the container, but a daemon that never closes it must not hang
// tailor.
const logDrain = 5 * time.Second

// ContainerOptions configure one RunContainer.
type ContainerOptions struct {
	// Profile is the bundle directory.
	Profile string
	// Mode is ModeEnforce (default) or ModeComplain.
	Mode string
	// Container names the container (name or ID) whose copy runs confined.
	Container string
	// Workload, when set, is a host shell command run inside the copy's network
	// namespace once it runs; its end stops the copy.
	Workload string
	// Duration, when positive, stops the copy after that long.
	Duration time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL when tailor stops the
	// copy; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// FailOnAnomaly makes RunContainer return fail.ErrAnomaly when Watcher saw any.
	FailOnAnomaly bool
	// FailOnLoss makes RunContainer return fail.ErrLoss when Watcher lost
	// observations.
	FailOnLoss bool
	// Watcher, when set, reports anomalies of the copy; nil means none are watched.
	Watcher Watcher
	// Stdout and Stderr receive the copy's output and the workload's; nil discards.
	Stdout, Stderr io.Writer
	// Log receives the start-up report (output for the user); nil means os.Stderr.
	Log io.Writer
	// Logger receives warnings (a copy that could not be stopped or removed, Docker's
	// own warnings); nil means slog.Default.
	Logger *slog.Logger
	// Host describes this machine; nil means ProbeHost.
	Host *Host
	// AllowIncomplete runs a bundle generated from an incomplete recording, which is
	// refused otherwise; the start-up report says so.
	AllowIncomplete bool
	// CopyLabels are added to the copy's labels (tests mark their containers).
	CopyLabels map[string]string
	// NoHarden names the parts of the bundle's hardened run configuration to leave
	// out (see ParseNoHarden); the rest is applied.
	NoHarden map[string]bool
	// NoDiagnose skips the runs that find which hardening part broke a failed run.
	NoDiagnose bool
}

// containerPlan is what a confined copy gets, decided from the policy and the host
// alone so that hosts unlike this one (with AppArmor) are testable.
type containerPlan struct {
	securityOpt []string
	// capDrop is nil when the copy keeps the container's own capabilities.
	capDrop, capAdd []string
	// apparmor is true when apparmor.profile must be loaded before the copy starts.
	apparmor bool
	report   []string
}

func makeContainerPlan(p *Policy, h Host, mode string, watched bool) (*containerPlan, error) {
	complain := mode == ModeComplain
	pl := &containerPlan{}
	add := func(format string, args ...any) { pl.report = append(pl.report, fmt.Sprintf(format, args...)) }
	add("%s mode, profile %s (%s), container copy", mode, p.Dir, p.Bundle.Name)

	seccompJSON := p.SeccompJSON
	if complain {
		var err error
		if seccompJSON, err = complainSeccomp(p.Seccomp); err != nil {
			return nil, err
		}
		add("  seccomp:      complain: calls outside seccomp.json are logged by the kernel (SCMP_ACT_LOG), not blocked")
	} else {
		add("  seccomp:      enforced by docker (%d rules, default %s)", len(p.Seccomp.Syscalls), p.Seccomp.DefaultAction)
	}
	pl.securityOpt = []string{"seccomp=" + string(seccompJSON), "no-new-privileges"}

	if complain {
		add("  capabilities: not enforced (complain mode): the copy keeps the container's own capabilities")
	} else {
		pl.capDrop = []string{"ALL"}
		// Docker spells capabilities without the CAP_ prefix; Load checked the names.
		pl.capAdd = []string{}
		for _, c := range p.Bundle.Capabilities {
			pl.capAdd = append(pl.capAdd, strings.TrimPrefix(c, "CAP_"))
		}
		names := "none"
		if len(pl.capAdd) > 0 {
			names = strings.Join(pl.capAdd, ", ")
		}
		add("  capabilities: drop ALL, add %s", names)
	}
	add("  no_new_privs: set (no-new-privileges)")

	rules := fmt.Sprintf("%d file rules and %d exec rules", len(p.Bundle.Files), len(p.Bundle.Execs))
	switch {
	case !h.AppArmor:
		add("  apparmor:     WARNING: AppArmor is not enabled in this kernel: the profile's file and exec rules (%s) are NOT enforced", rules)
	case complain:
		add("  apparmor:     not loaded (complain mode): file and exec rules are not enforced")
	default:
		pl.apparmor = true
		pl.securityOpt = append(pl.securityOpt, "apparmor="+p.Bundle.Name)
		add("  apparmor:     enforced: profile %s (%s) loaded with apparmor_parser -r -W", p.Bundle.Name, rules)
	}
	if watched {
		add("  anomalies:    watched")
	} else {
		add("  anomalies:    not watched (no tracer attached)")
	}
	return pl, nil
}

// complainSeccomp is p with every action that stops a call turned into SCMP_ACT_LOG
// and errno values dropped: what profiles.CompileSeccomp builds locally in complain
// mode, written as a profile Docker hands to runc. Rules that end up equal to the
// default action are dropped, since they change nothing (and libseccomp refuses them).
func complainSeccomp(p *profiles.Seccomp) ([]byte, error) {
	c := *p
	c.DefaultAction = complainAction(p.DefaultAction)
	c.DefaultErrnoRet = nil
	c.Syscalls = nil
	for _, r := range p.Syscalls {
		nr := *r
		nr.Action = complainAction(r.Action)
		if nr.Action != r.Action {
			nr.ErrnoRet = nil
		}
		if nr.Action == c.DefaultAction {
			continue
		}
		c.Syscalls = append(c.Syscalls, &nr)
	}
	data, err := profiles.EncodeSeccomp(&c)
	if err != nil {
		return nil, fmt.Errorf("encoding the complain-mode seccomp profile: %w", err)
	}
	return data, nil
}

func complainAction(a specs.LinuxSeccompAction) specs.LinuxSeccompAction {
	switch a {
	case specs.ActErrno, specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap, specs.ActTrace:
		return specs.ActLog
	}
	return a
}

// loadAppArmor loads (or replaces) the bundle's AppArmor profile in the kernel and
// writes it to the kernel's cache (-W), so Docker can name it in apparmor=.
func loadAppArmor(dir string) error {
	path := filepath.Join(dir, profiles.BundleAppArmorFile)
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return refuse("AppArmor is enabled but apparmor_parser is not installed, so %s cannot be loaded: install the apparmor package", path)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(parser, "-r", "-W", path)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return refuse("apparmor_parser could not load %s: %s", path, msg)
	}
	return nil
}

// seccompRejected turns a daemon error about the seccomp profile into a refusal:
// the bundle, not Docker, is what must change. Other errors pass unchanged.
func seccompRejected(p *Policy, err error) error {
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "seccomp") {
		return err
	}
	// %v, not %w: the exit code is the refusal's, not the Docker error's.
	return refuse("docker rejected %s: %v: regenerate the bundle or fix the profile", filepath.Join(p.Dir, profiles.BundleSeccompFile), err)
}

// RunContainer relaunches a copy of the container (see internal/docker PrepareCopy)
// confined by the bundle, streams its output, runs the workload in its network
// namespace, stops and removes the copy on every path, and returns the copy's exit
// status (0 when tailor stopped it: the workload ended or the duration passed). err
// is non-nil when tailor itself failed or refused, the workload failed
// (fail.ErrWorkload), the run was interrupted (fail.ErrInterrupted), or, with
// FailOnAnomaly, an anomaly was seen.
func RunContainer(ctx context.Context, o ContainerOptions) (int, error) {
	if o.Mode == "" {
		o.Mode = ModeEnforce
	}
	if o.Mode != ModeEnforce && o.Mode != ModeComplain {
		return 0, fmt.Errorf("%w: --mode %q: want %s or %s", fail.ErrBadInput, o.Mode, ModeEnforce, ModeComplain)
	}
	if o.Container == "" {
		return 0, fmt.Errorf("%w: no container given: tailor enforce --profile DIR --container NAME", fail.ErrBadInput)
	}
	if o.FailOnAnomaly && o.Watcher == nil {
		return 0, refuse("--fail-on-anomaly needs anomaly reporting, which this build has no tracer for")
	}
	if o.FailOnLoss && o.Watcher == nil {
		return 0, refuse("--fail-on-loss needs anomaly reporting, which this build has no tracer for")
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Host == nil {
		h, err := ProbeHost()
		if err != nil {
			return 0, err
		}
		o.Host = &h
	}
	policy, err := Load(o.Profile, *o.Host)
	if err != nil {
		return 0, err
	}
	if err := RefuseCwd(policy, "a container"); err != nil {
		return 0, err
	}
	incomplete, err := checkIncomplete(policy, o.AllowIncomplete)
	if err != nil {
		return 0, err
	}
	pl, err := makeContainerPlan(policy, *o.Host, o.Mode, o.Watcher != nil)
	if err != nil {
		return 0, err
	}
	if incomplete != "" {
		pl.report = append(pl.report, incomplete)
	}

	dc, err := docker.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer dc.Close()
	stale, err := dc.CleanupStale(ctx)
	if err != nil {
		return 0, err
	}
	if len(stale) > 0 {
		fmt.Fprintf(o.Log, "tailor: removed copies left by killed tailor runs: %s\n", strings.Join(stale, ", "))
	}
	if pl.apparmor {
		if err := loadAppArmor(policy.Dir); err != nil {
			return 0, err
		}
	}
	hp := hardenPlan{h: policy.Bundle.Hardening, skip: o.NoHarden}
	pl.report = append(pl.report, hp.report()...)
	status, err := startCopy(ctx, dc, &o, policy, pl, hp, true)
	if err == nil && status == 0 && o.Workload != "" && len(hp.parts()) > 0 {
		fmt.Fprintf(o.Log, "tailor: hardened configuration verified: the workload succeeded under %s\n", strings.Join(hp.parts(), ", "))
	}
	// The run with a workload is the verification run: when it fails, find out
	// whether a hardening part is why.
	if (err != nil || status != 0) && o.Workload != "" && len(hp.parts()) > 0 && !o.NoDiagnose && diagnosable(status, err) {
		part, why := diagnose(ctx, dc, o, policy, pl, hp)
		if why != "" {
			fmt.Fprintf(o.Log, "tailor: %s\n", why)
		}
		if part != "" && err != nil {
			err = fmt.Errorf("%w; %s", err, why)
		}
	}
	return status, err
}

// diagnosable tells a run that failed on its own (the workload, the app's exit) from
// one that tailor or the user ended: only the first can be the hardening's fault.
func diagnosable(status int, err error) bool {
	switch {
	case err == nil, errors.Is(err, fail.ErrWorkload), errors.Is(err, fail.ErrAnomaly):
		return true
	case errors.Is(err, fail.ErrInterrupted), errors.Is(err, fail.ErrRefused):
		return false
	}
	// The workload could not enter the copy's namespaces: the app had already exited,
	// with this status.
	return status != 0
}

// diagnose replays the run with each applied hardening part left out in turn, quietly
// and without the watcher, and names the first part whose absence makes the run
// succeed, with the facts it was derived from. A part is never dropped silently: the
// run that failed stays failed, and the message says what to leave out.
func diagnose(ctx context.Context, dc *docker.Client, o ContainerOptions, policy *Policy, pl *containerPlan, hp hardenPlan) (part, why string) {
	q := o
	q.Watcher, q.FailOnAnomaly, q.FailOnLoss = nil, false, false
	q.Stdout, q.Stderr, q.Log, q.Logger = io.Discard, io.Discard, io.Discard, slog.New(slog.DiscardHandler)
	for _, part := range hp.parts() {
		status, err := startCopy(ctx, dc, &q, policy, pl, hp.without(part), false)
		if ctx.Err() != nil {
			return "", ""
		}
		if err == nil && status == 0 {
			return part, fmt.Sprintf("the app fails under the hardened configuration and works without its %q part (%s): leave it out with --no-harden=%s, or re-learn with a workload that shows why it is needed",
				part, strings.Join(hp.facts(part), "; "), part)
		}
	}
	return "", fmt.Sprintf("the app also fails with each hardening part (%s) left out in turn: the failure is not one part's (try --no-harden=all)", strings.Join(hp.parts(), ", "))
}

// startCopy makes a copy of the container confined by the policy and hardened by hp,
// runs it, and removes it.
func startCopy(ctx context.Context, dc *docker.Client, o *ContainerOptions, policy *Policy, pl *containerPlan, hp hardenPlan, report bool) (int, error) {
	cp, err := dc.PrepareCopy(ctx, o.Container, docker.CopyOptions{
		Labels: o.CopyLabels, SecurityOpt: pl.securityOpt, CapDrop: pl.capDrop, CapAdd: pl.capAdd, Adjust: hp.adjust,
	})
	if err != nil {
		return 0, seccompRejected(policy, err)
	}
	// Remove ignores ctx's cancellation, so this also runs after Ctrl-C.
	defer func() {
		if err := cp.Remove(ctx); err != nil {
			o.Logger.Warn("removing the copy", "copy", cp.Name(), "error", err)
		}
	}()
	if report {
		for _, l := range pl.report {
			fmt.Fprintln(o.Log, "tailor: "+l)
		}
	}
	fmt.Fprintf(o.Log, "tailor: container %s runs as copy %s\n", o.Container, cp.Name())
	for _, w := range cp.Warnings() {
		o.Logger.Warn("docker warned", "copy", cp.Name(), "warning", w)
	}
	r := &containerRun{o: o, cp: cp, policy: policy}
	return r.run(ctx)
}

// containerRun is one started copy and what ends it.
type containerRun struct {
	o      *ContainerOptions
	cp     *docker.Copy
	policy *Policy

	stopOnce sync.Once
	// stopped is closed once tailor asked the copy to stop.
	stopped chan struct{}
}

// stop asks the copy to stop, once, without waiting: the exit is seen by Wait.
func (r *containerRun) stop(ctx context.Context) {
	r.stopOnce.Do(func() {
		close(r.stopped)
		go func() {
			if err := r.cp.Stop(ctx, r.o.StopTimeout); err != nil {
				r.o.Logger.Warn("stopping the copy", "copy", r.cp.Name(), "error", err)
			}
		}()
	})
}

func (r *containerRun) run(ctx context.Context) (int, error) {
	o := r.o
	r.stopped = make(chan struct{})
	if o.Watcher != nil {
		if err := o.Watcher.Watch(ctx, WatchTarget{ContainerID: r.cp.ID()}, r.policy); err != nil {
			return 0, fmt.Errorf("starting anomaly watcher: %w", err)
		}
	}
	status, runErr := r.supervise(ctx)
	if o.Watcher != nil {
		// Stopped on every path once Watch succeeded, so the tracer lets go of the copy.
		n, err := o.Watcher.Stop()
		if err != nil && runErr == nil {
			return status, fmt.Errorf("anomaly watcher: %w", err)
		}
		if n > 0 {
			fmt.Fprintf(o.Log, "tailor: %d anomalies while enforcing %s\n", n, r.policy.Dir)
		}
		if n > 0 && o.FailOnAnomaly && (runErr == nil || errors.Is(runErr, fail.ErrWorkload)) {
			return status, fmt.Errorf("%w: %d anomalies while enforcing %s on a copy of %s", fail.ErrAnomaly, n, r.policy.Dir, o.Container)
		}
		if err := LossError(o.Watcher, o.FailOnLoss, "a copy of "+o.Container); err != nil && (runErr == nil || errors.Is(runErr, fail.ErrWorkload)) {
			return status, err
		}
	}
	return status, runErr
}

// supervise starts the copy and waits for its end: its own exit, the workload's end,
// the duration, or ctx's cancellation (Ctrl-C).
func (r *containerRun) supervise(ctx context.Context) (int, error) {
	o := r.o
	if err := r.cp.Start(ctx); err != nil {
		return 0, seccompRejected(r.policy, err)
	}
	// The copy is stopped on every way out, so its wait ends without ctx.
	exited := r.cp.Exited(ctx)
	logCtx, cancelLogs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLogs()
	logsDone := make(chan error, 1)
	go func() { logsDone <- r.cp.Logs(logCtx, o.Stdout, o.Stderr) }()

	workCtx, cancelWork := context.WithCancel(ctx)
	defer cancelWork()
	var workDone chan error
	if o.Workload != "" {
		workDone = make(chan error, 1)
		go func() {
			pid, err := r.cp.Pid(workCtx)
			if err == nil {
				err = docker.RunWorkloadInNetns(workCtx, pid, o.Workload, o.Stdout, o.Stderr)
			}
			workDone <- err
		}()
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}

	var (
		res         proc.Exit
		workErr     error
		interrupted bool
	)
	cancelled := ctx.Done()
	for done := false; !done; {
		select {
		case res = <-exited:
			done = true
		case err := <-workDone:
			workDone = nil
			// A workload cancelled by Ctrl-C is the interruption, not its failure.
			if err != nil && !interrupted && ctx.Err() == nil {
				workErr = err
			}
			r.stop(ctx)
		case <-timeout:
			r.stop(ctx)
		case <-cancelled:
			interrupted = true
			cancelled = nil // seen once
			r.stop(ctx)
		}
	}
	// A workload still running when the copy ended by itself gets the stop grace to
	// finish: it may have asked the app to quit (nginx -s quit, redis SHUTDOWN) and
	// still be reporting. Past that it has nothing left to talk to.
	if workDone != nil && !interrupted {
		grace := time.NewTimer(o.StopTimeout)
		select {
		case err := <-workDone:
			workDone = nil
			if err != nil && ctx.Err() == nil {
				workErr = err
			}
		case <-grace.C:
		}
		grace.Stop()
	}
	cancelWork()
	if workDone != nil {
		<-workDone
	}
	select {
	case err := <-logsDone:
		if err != nil {
			o.Logger.Warn("reading the copy's output", "copy", r.cp.Name(), "error", err)
		}
	case <-time.After(logDrain):
		cancelLogs()
		<-logsDone
	}

	if res.Err != nil {
		return 0, res.Err
	}
	stoppedByTailor := false
	select {
	case <-r.stopped:
		stoppedByTailor = true
	default:
	}
	switch {
	case interrupted:
		return res.Status, fmt.Errorf("%w: the copy of %s was stopped and removed", fail.ErrInterrupted, o.Container)
	case workErr != nil:
		return res.Status, workErr
	case stoppedByTailor:
		fmt.Fprintf(o.Log, "tailor: copy stopped by tailor (its exit status %d is not passed on)\n", res.Status)
		return 0, nil
	}
	return res.Status, nil
}
