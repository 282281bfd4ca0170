// Package enforce runs a command confined by a profile bundle (tailor enforce, local
// mode): no_new_privs, the learned capability set, the bundle's Landlock plan (file
// rights and TCP ports), and seccomp.json loaded last, right before execve.
// Complain mode logs what seccomp would deny (SCMP_ACT_LOG) and confines nothing else.
// It refuses (exit 9) instead of running a target under a profile it cannot apply as
// written, and prints at start-up which mechanisms are active.
package enforce

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	lls "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/moby/sys/capability"
	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/profiles"
)

// Modes of Options.Mode.
const (
	ModeEnforce  = "enforce"
	ModeComplain = "complain"
)

// launchMode is the launcher mode this package registers.
const launchMode = "enforce"

func init() { launch.Register(launchMode, setup) }

// WatchTarget says what a Watcher follows: a local process tree or a container.
type WatchTarget struct {
	// Pid is a local target's pid, given while the launcher still waits before
	// execve: the target and all its descendants are watched.
	Pid int
	// ContainerID is a container's full 64-character ID: each of its processes that
	// installs a seccomp filter from now on is watched (a relaunched container's
	// init, later docker execs).
	ContainerID string
	// Running asks for the container's present processes too (tailor watch attaches
	// to a container that already runs).
	Running bool
	// Label names the target in its anomaly reports (a Compose service); "" for none.
	Label string
	// Files, when set, are the file rules the kernel enforces on the target (its
	// Landlock ruleset): a refused operation they do not grant was refused by the
	// profile, whatever the bundle's AppArmor globs say. Nil when no file rules are
	// enforced locally.
	Files FileRules
}

// FileRules answer whether the file rules the kernel enforces grant an operation.
type FileRules interface {
	// Grants reports whether the access kinds on path are granted; kind is one of
	// profiles.Access*, syscall is the syscall's name (setattr is mediated for
	// truncate only), other is the second name of a rename or link ("" otherwise).
	Grants(kinds []string, path, other string, dir bool, syscall string) bool
}

// WatchStats are a Watcher's running totals, for metrics.
type WatchStats struct {
	// Anomalies counts anomalies by kind (syscall, exec, file, capability, socket),
	// repeats included.
	Anomalies map[string]uint64
	// Lost counts observations the tracer could not keep (full ring buffer or maps,
	// unreadable arguments, decode errors): anomalies may be missing. LostBy splits
	// it by counter.
	Lost   uint64
	LostBy map[string]uint64
	// Targets is how many targets are being watched.
	Targets int
	// Distinct counts the distinct anomalies kept; Suppressed those of them counted
	// but not reported line by line (past the shown bound).
	Distinct, Suppressed int
	// Untracked counts occurrences of anomalies past every bound of the watcher's
	// memory: in the totals, neither shown nor counted apart.
	Untracked uint64
	// RefusedElsewhere counts distinct refused operations the profile grants (file
	// permissions or another security module refused them).
	RefusedElsewhere uint64
}

// LossError is what --fail-on-loss makes of a watch that lost observations
// (fail.ErrLoss, exit 5); nil when none were lost or failOnLoss is off. Call it
// after w.Stop.
func LossError(w Watcher, failOnLoss bool, what string) error {
	if w == nil || !failOnLoss {
		return nil
	}
	s := w.Stats()
	if s.Lost == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d observations lost while watching %s (%s): anomalies may be missing", fail.ErrLoss, s.Lost, what, lossDetail(s.LostBy))
}

// lossDetail names the counters that lost something, sorted.
func lossDetail(by map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(by)) {
		if by[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
		}
	}
	if len(parts) == 0 {
		return "no counter named"
	}
	return strings.Join(parts, ", ")
}

// Watcher reports anomalies: what the target does outside its profile. The tracer
// provides it; this package only calls it. Watch is called before the target runs
// (for a local target after the launcher started, before its release); Stop after
// the target exited, returning how many anomalies were seen.
type Watcher interface {
	Watch(ctx context.Context, t WatchTarget, p *Policy) error
	Stats() WatchStats
	Stop() (anomalies int, err error)
}

// Options configure one Run.
type Options struct {
	// Profile is the bundle directory.
	Profile string
	// Mode is ModeEnforce (default) or ModeComplain.
	Mode string
	// AllowPartial runs the target even when file rules cannot be enforced on this
	// host (no Landlock), instead of refusing.
	AllowPartial bool
	// FailOnAnomaly makes Run return fail.ErrAnomaly when Watcher saw any.
	FailOnAnomaly bool
	// FailOnLoss makes Run return fail.ErrLoss when Watcher lost observations.
	FailOnLoss bool
	// AllowIncomplete runs a bundle generated from an incomplete recording, which is
	// refused otherwise; the start-up report says so.
	AllowIncomplete bool
	// Watcher, when set, reports anomalies; nil means none are watched, and the
	// start-up report says so.
	Watcher Watcher
	// Argv, Env and Dir describe the target; Env nil means tailor's environment.
	Argv []string
	Env  []string
	Dir  string
	// Stdin, Stdout and Stderr are the target's; nil means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Log receives the start-up report; nil means os.Stderr.
	Log io.Writer
	// Host describes this machine; nil means ProbeHost.
	Host *Host
	// Parts, when set, applies only some of the enforcement, to measure what each part
	// costs (the hidden --parts flag, for bench/); nil applies everything.
	Parts *Parts
}

// Parts selects the parts of enforcement a measurement applies (Watcher is read by the
// command, which makes Options.Watcher only with it). Without Seccomp the
// profile's filter is replaced by an allow-all one when the watcher runs (the tracer
// sees only tasks under a filter), and by none otherwise; capabilities and
// no_new_privs go with Seccomp.
type Parts struct {
	Seccomp, Landlock, Watcher bool
}

// modeConfig is what the launcher child needs, sent in the launch payload.
type modeConfig struct {
	Complain     bool             `json:"complain"`
	Seccomp      json.RawMessage  `json:"seccomp"`
	DropCaps     bool             `json:"dropCaps"`
	Capabilities []capability.Cap `json:"capabilities"`
	// Landlock is nil when Landlock is not applied.
	Landlock *landlockConfig `json:"landlock,omitempty"`
}

// plan is what Run will apply, decided from the policy and the host alone.
type plan struct {
	config modeConfig
	report []string
}

// maxNamed is how many bundle rules a start-up "widened:" line names; bundle.json
// and SUMMARY.txt name them all.
const maxNamed = 6

func makePlan(p *Policy, h Host, o *Options) (*plan, error) {
	complain := o.Mode == ModeComplain
	pl := &plan{config: modeConfig{Complain: complain, Seccomp: p.SeccompJSON}}
	add := func(format string, args ...any) { pl.report = append(pl.report, fmt.Sprintf(format, args...)) }
	add("%s mode, profile %s (%s)", o.Mode, p.Dir, p.Bundle.Name)
	if o.Parts != nil {
		return partialPlan(pl, p, h, o)
	}

	if complain {
		add("  seccomp:      complain: calls outside seccomp.json are logged by the kernel (SCMP_ACT_LOG), not blocked")
	} else {
		add("  seccomp:      enforced (%d rules, default %s), loaded last, right before execve", len(p.Seccomp.Syscalls), p.Seccomp.DefaultAction)
	}

	capNames := "none"
	if len(p.Bundle.Capabilities) > 0 {
		capNames = strings.Join(p.Bundle.Capabilities, ", ")
	}
	if complain {
		add("  capabilities: not enforced (complain mode): the target keeps tailor's capabilities")
	} else {
		pl.config.DropCaps = true
		pl.config.Capabilities = p.Capabilities
		add("  capabilities: dropped to %s (bounding, permitted, effective, inheritable, ambient)", capNames)
	}
	add("  no_new_privs: set")

	lc, err := landlockRules(p.Bundle.Landlock)
	if err != nil {
		return nil, refuse("%v", err)
	}
	fileRulesEnforced := false
	switch {
	case complain:
		add("  landlock:     not applied (complain mode): file rules are not enforced")
	case h.LandlockABI == 0 && !o.AllowPartial:
		return nil, refuse("this host has no Landlock, so the profile's file and exec rules cannot be enforced locally: pass --allow-partial to run with seccomp and capabilities only")
	case h.LandlockABI == 0:
		add("  landlock:     not available on this host - file rules NOT enforced (--allow-partial)")
	default:
		fileRulesEnforced = true
		pl.config.Landlock = lc
		plan := p.Bundle.Landlock
		var missing []string
		for _, r := range lc.Paths {
			if _, err := os.Stat(r.Path); err != nil {
				missing = append(missing, r.Path)
			}
		}
		widened := plan.WideningLines(maxNamed)
		add("  landlock:     enforced (ABI v%d, best effort): %d path rules from bundle.json's plan, %d widened (Landlock has no globs, and a right on a directory covers everything beneath it)", h.LandlockABI, len(lc.Paths), len(widened))
		for _, w := range widened {
			add("                widened: %s", w)
		}
		if len(missing) > 0 {
			add("                skipped, missing now: %s (no rule; the target cannot open them)", strings.Join(missing, ", "))
		}
		if h.LandlockABI < 2 {
			// go-landlock would drop the whole ruleset for a refer right it cannot
			// handle: renames across directories stay refused instead.
			for i := range lc.Paths {
				lc.Paths[i].Access &^= landlock.AccessFSSet(lls.AccessFSRefer)
			}
			add("                not enforced as learned: renames and links across directories are refused (refer needs Landlock ABI 2)")
		}
		for _, n := range plan.NotEnforced {
			add("                not enforced: %s", n)
		}
		for _, d := range plan.Denied {
			add("                WARNING: %s", d)
		}
		if h.LandlockABI >= 4 {
			add("  landlock net: enforced: TCP %s", plan.TCP)
		} else {
			add("  landlock net: not enforced: Landlock ABI v%d has no TCP port rules (ABI 4+): TCP bind and connect are not restricted by port", h.LandlockABI)
		}
	}
	switch {
	case !h.AppArmor && fileRulesEnforced:
		add("  apparmor:     not available on this host - file rules enforced with Landlock instead")
	case !h.AppArmor:
		add("  apparmor:     not available on this host - not enforced")
	default:
		add("  apparmor:     not enforced (local mode applies apparmor.profile only to containers)")
	}
	if o.Watcher == nil {
		add("  anomalies:    not watched (no tracer attached)")
	} else {
		add("  anomalies:    watched")
	}
	return pl, nil
}

// partialPlan is the plan of a measurement that applies only o.Parts.
func partialPlan(pl *plan, p *Policy, h Host, o *Options) (*plan, error) {
	add := func(format string, args ...any) { pl.report = append(pl.report, fmt.Sprintf(format, args...)) }
	add("  MEASUREMENT: only part of the profile is applied (--parts)")
	switch {
	case o.Parts.Seccomp:
		pl.config.DropCaps = true
		pl.config.Capabilities = p.Capabilities
		add("  seccomp:      enforced, capabilities dropped")
	case o.Watcher != nil:
		pl.config.Seccomp = json.RawMessage(`{"defaultAction":"SCMP_ACT_ALLOW"}`)
		add("  seccomp:      allow-all filter (the tracer watches tasks under a filter)")
	default:
		pl.config.Seccomp = nil
		add("  seccomp:      none")
	}
	if o.Parts.Landlock {
		if h.LandlockABI == 0 {
			return nil, refuse("--parts landlock: this host has no Landlock")
		}
		lc, err := landlockRules(p.Bundle.Landlock)
		if err != nil {
			return nil, refuse("%v", err)
		}
		pl.config.Landlock = lc
		add("  landlock:     enforced (ABI v%d)", h.LandlockABI)
	} else {
		add("  landlock:     not applied")
	}
	if o.Watcher != nil {
		add("  anomalies:    watched")
	}
	return pl, nil
}

// Run checks the bundle, reports what it will enforce, runs the target confined and
// returns the target's exit status. err is non-nil only when tailor itself failed,
// refused, or (with FailOnAnomaly) saw an anomaly.
func Run(ctx context.Context, o Options) (int, error) {
	if o.Mode == "" {
		o.Mode = ModeEnforce
	}
	if o.Mode != ModeEnforce && o.Mode != ModeComplain {
		return 0, fmt.Errorf("%w: --mode %q: want %s or %s", fail.ErrBadInput, o.Mode, ModeEnforce, ModeComplain)
	}
	if len(o.Argv) == 0 {
		return 0, fmt.Errorf("%w: no command given: tailor enforce --profile DIR -- COMMAND [ARGS]", fail.ErrBadInput)
	}
	if o.FailOnAnomaly && o.Watcher == nil {
		return 0, refuse("--fail-on-anomaly needs anomaly reporting, which this build has no tracer for")
	}
	if o.FailOnLoss && o.Watcher == nil {
		return 0, refuse("--fail-on-loss needs anomaly reporting, which this build has no tracer for")
	}
	if o.Host == nil {
		h, err := ProbeHost()
		if err != nil {
			return 0, err
		}
		o.Host = &h
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.Dir != "" {
		// As a shell's cd would: a program that finds PWD naming another directory
		// asks getcwd, which it did not while learning.
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return 0, fmt.Errorf("--cwd: %w", err)
		}
		o.Dir = abs
		o.Env = append(slices.DeleteFunc(slices.Clone(o.Env), func(e string) bool { return strings.HasPrefix(e, "PWD=") }), "PWD="+abs)
	}
	policy, err := Load(o.Profile, *o.Host)
	if err != nil {
		return 0, err
	}
	cwdLine := ""
	if usesCwd(&policy.Bundle) {
		dir := o.Dir
		if dir == "" {
			if dir, err = os.Getwd(); err != nil {
				return 0, fmt.Errorf("working directory: %w", err)
			}
		}
		if err := resolveCwd(&policy.Bundle, dir, envValue(o.Env, "HOME")); err != nil {
			return 0, refuse("%v", err)
		}
		cwdLine = "  working dir:  " + cwdVar + " = " + dir + " (rules beneath the learning run's directory follow the target's)"
	}
	incomplete, err := checkIncomplete(policy, o.AllowIncomplete)
	if err != nil {
		return 0, err
	}
	pl, err := makePlan(policy, *o.Host, &o)
	if err != nil {
		return 0, err
	}
	if cwdLine != "" {
		pl.report = append(pl.report, cwdLine)
	}
	if incomplete != "" {
		pl.report = append(pl.report, incomplete)
	}
	for _, l := range pl.report {
		fmt.Fprintln(o.Log, "tailor: "+l)
	}
	cfg, err := json.Marshal(pl.config)
	if err != nil {
		return 0, fmt.Errorf("encoding enforcement config: %w", err)
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("%w: before the target started", fail.ErrInterrupted)
	}
	proc, err := launch.Start(launchMode, launch.Payload{Argv: o.Argv, Env: o.Env, Dir: o.Dir, Mode: cfg},
		launch.Stdio{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return 0, err
	}
	// The target's descendants end with it: what still runs when its first process
	// exited is killed with its cgroup.
	defer proc.Cleanup()
	for _, n := range proc.Notes() {
		fmt.Fprintln(o.Log, "tailor: "+n)
	}
	if err := proc.Contained(); err != nil {
		fmt.Fprintf(o.Log, "tailor: warning: the target is not in a cgroup of its own (%v): if tailor is killed, processes the target started may outlive it\n", err)
	}
	if o.Watcher != nil {
		wt := WatchTarget{Pid: proc.Pid()}
		if pl.config.Landlock != nil {
			wt.Files = appliedLandlock(pl.config.Landlock.Paths)
		}
		if err := o.Watcher.Watch(ctx, wt, policy); err != nil {
			_, _ = proc.Wait() // aborts the unreleased child
			return 0, fmt.Errorf("starting anomaly watcher: %w", err)
		}
	}
	if err := proc.Release(); err != nil {
		_, _ = proc.Wait()
		return 0, err
	}
	// The target gets terminal signals itself (same process group); a cancelled
	// context (SIGTERM to tailor alone) is passed on, and the target's own status
	// still decides tailor's.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			_ = proc.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	status, err := proc.Wait()
	if err != nil {
		return 0, err
	}
	// Still watched while they are killed.
	if err := proc.Cleanup(); err != nil {
		fmt.Fprintf(o.Log, "tailor: warning: %v\n", err)
	}
	anomalies := 0
	if o.Watcher != nil {
		if anomalies, err = o.Watcher.Stop(); err != nil {
			return status, fmt.Errorf("anomaly watcher: %w", err)
		}
	}
	// A signal to tailor ends the run with 130 whatever the target made of the
	// SIGTERM it was passed (docs/exit-codes.md).
	if ctx.Err() != nil {
		return status, fmt.Errorf("%w: the target was stopped (its status %d)", fail.ErrInterrupted, status)
	}
	if anomalies > 0 && o.FailOnAnomaly {
		return status, fmt.Errorf("%w: %d anomalies while enforcing %s", fail.ErrAnomaly, anomalies, policy.Dir)
	}
	return status, LossError(o.Watcher, o.FailOnLoss, o.Argv[0])
}

// setup is the launcher child's side: it runs after the release, before execve.
func setup(t *launch.Target) (*seccomp.ScmpFilter, error) {
	var cfg modeConfig
	if err := json.Unmarshal(t.Mode, &cfg); err != nil {
		return nil, fmt.Errorf("enforce: decoding config: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("enforce: setting no_new_privs: %w", err)
	}
	// Capabilities first: the capability library reads /proc, which Landlock may hide.
	if cfg.DropCaps {
		if err := dropCaps(cfg.Capabilities); err != nil {
			return nil, err
		}
	}
	if cfg.Landlock != nil {
		if err := applyLandlock(cfg.Landlock); err != nil {
			return nil, err
		}
	}
	if len(cfg.Seccomp) == 0 || string(cfg.Seccomp) == "null" {
		return nil, nil // a measurement of the other parts alone (Parts)
	}
	p, err := profiles.DecodeSeccomp(cfg.Seccomp)
	if err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	f, err := profiles.CompileSeccomp(p, profiles.CompileOptions{Complain: cfg.Complain})
	if err != nil {
		return nil, fmt.Errorf("enforce: %w", err)
	}
	return f, nil
}

// dropCaps leaves the process with keep in every set. A root target gets bounding |
// inheritable after execve and no_new_privs caps that to the old permitted set, so it
// ends with exactly keep; ambient carries keep across execve for a non-root uid.
func dropCaps(keep []capability.Cap) error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("enforce: capabilities: %w", err)
	}
	if err := c.Load(); err != nil {
		return fmt.Errorf("enforce: reading capabilities: %w", err)
	}
	c.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	c.Set(capability.CAPS|capability.BOUNDS|capability.AMBS, keep...)
	// moby/sys/capability drops the bounding set while CAP_SETPCAP is still effective,
	// then sets the rest.
	if err := c.Apply(capability.CAPS | capability.BOUNDS | capability.AMBS); err != nil {
		return fmt.Errorf("%w: dropping capabilities to %v: %w", fail.ErrPrivilege, keep, err)
	}
	return nil
}
