package enforce

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// WatcherFactory makes the anomaly watcher for one run of tailor enforce or watch, writing
// anomalies to anomaliesPath ("" for none). cmd/tailor passes the tracer's; nil means
// this build has none.
type WatcherFactory func(anomaliesPath string) (Watcher, error)

// Command returns `tailor enforce`: run COMMAND (local mode) or a copy of a Docker
// container (--container) confined by a bundle. The same factory serves both.
func Command(newWatcher WatcherFactory) *cli.Command {
	return &cli.Command{
		Name:      "enforce",
		Usage:     "run a command, or a copy of a container, confined by a profile bundle (seccomp, capabilities, no_new_privs, Landlock or AppArmor)",
		ArgsUsage: "-- COMMAND [ARGS...] | --container NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Usage: "bundle directory written by tailor generate", Required: true},
			&cli.StringFlag{Name: "mode", Value: ModeEnforce, Usage: "enforce: block what the profile does not allow; complain: only log seccomp denials"},
			&cli.StringFlag{Name: "anomalies", Usage: "write anomalies (out-of-profile behaviour) to `FILE` (needs the tracer)"},
			&cli.BoolFlag{Name: "fail-on-anomaly", Usage: "exit 7 when an anomaly was seen (needs the tracer)"},
			FailOnLossFlag,
			&cli.BoolFlag{Name: "allow-partial", Usage: "local mode: run even where file rules cannot be enforced (no Landlock on this host)"},
			&cli.BoolFlag{Name: "allow-incomplete", Usage: "run a bundle generated from an incomplete recording (it may deny what the target needs)"},
			&cli.StringFlag{Name: "cwd", Usage: "local mode: run COMMAND in `DIR` (default: tailor's working directory); the bundle's @{cwd} rules resolve to it"},
			&cli.StringFlag{Name: "container", Usage: "relaunch a copy of the Docker container `NAME|ID` confined by the bundle, instead of a command"},
			&cli.StringFlag{Name: "workload", Usage: "container mode: host shell `CMD` run in the copy's network namespace; its end stops the copy"},
			&cli.DurationFlag{Name: "duration", Usage: "container mode: stop the copy after `D`"},
			&cli.DurationFlag{Name: "stop-timeout", Value: DefaultStopTimeout, Usage: "container mode: grace between SIGTERM and SIGKILL when stopping the copy"},
			&cli.StringFlag{Name: "no-harden", Usage: "container mode: leave these `PARTS` of the bundle's hardened run configuration out (readonly,user,limits,ports,network or all)"},
			&cli.BoolFlag{Name: "no-diagnose", Usage: "container mode: when the hardened copy fails, do not replay it with each hardening part left out to find the one that breaks it"},
			// For measuring what each part costs (bench/): never a way to run a target
			// less confined in earnest, so it stays out of the help.
			&cli.StringSliceFlag{Name: "parts", Hidden: true, Usage: "local mode: apply only these of seccomp, landlock, watcher"},
		},
		Action: func(c *cli.Context) error {
			if err := PositiveDurations(c, "duration", "stop-timeout"); err != nil {
				return err
			}
			if c.IsSet("anomalies") && newWatcher == nil {
				return refuse("--anomalies needs anomaly reporting, which this build has no tracer for")
			}
			if c.IsSet("container") {
				return containerAction(c, newWatcher)
			}
			parts, err := partsOf(c.StringSlice("parts"))
			if err != nil {
				return err
			}
			for _, f := range []string{"workload", "duration", "stop-timeout", "no-harden", "no-diagnose"} {
				if c.IsSet(f) {
					return fmt.Errorf("%w: --%s is for container mode (--container NAME)", fail.ErrBadInput, f)
				}
			}
			o := Options{
				Profile:         c.String("profile"),
				Mode:            c.String("mode"),
				AllowPartial:    c.Bool("allow-partial"),
				AllowIncomplete: c.Bool("allow-incomplete"),
				FailOnAnomaly:   c.Bool("fail-on-anomaly"),
				FailOnLoss:      c.Bool("fail-on-loss"),
				Parts:           parts,
				Argv:            c.Args().Slice(),
				Dir:             c.String("cwd"),
				Stdin:           os.Stdin,
				Stdout:          os.Stdout,
				Stderr:          os.Stderr,
			}
			if parts == nil || parts.Watcher {
				if o.Watcher, err = NewAnomalyWatcher(newWatcher, c.String("anomalies")); err != nil {
					return err
				}
			}
			ctx, stop := interrupt.Context(c.Context)
			defer stop()
			return exitStatus(Run(ctx, o))
		},
	}
}

// containerAction is `tailor enforce --container`.
func containerAction(c *cli.Context, newWatcher WatcherFactory) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("%w: --container runs the container's own command: give no COMMAND (got %q)", fail.ErrBadInput, c.Args().Slice())
	}
	if c.IsSet("cwd") {
		return fmt.Errorf("%w: --cwd is for local mode: a container runs in its own working directory", fail.ErrBadInput)
	}
	if c.IsSet("parts") {
		return fmt.Errorf("%w: --parts is for local mode", fail.ErrBadInput)
	}
	if c.IsSet("allow-partial") {
		return fmt.Errorf("%w: --allow-partial is for local mode: container mode warns instead when AppArmor is absent", fail.ErrBadInput)
	}
	skip, err := ParseNoHarden(c.String("no-harden"))
	if err != nil {
		return err
	}
	o := ContainerOptions{
		NoHarden:        skip,
		NoDiagnose:      c.Bool("no-diagnose"),
		Profile:         c.String("profile"),
		Mode:            c.String("mode"),
		Container:       c.String("container"),
		Workload:        c.String("workload"),
		Duration:        c.Duration("duration"),
		StopTimeout:     c.Duration("stop-timeout"),
		FailOnAnomaly:   c.Bool("fail-on-anomaly"),
		FailOnLoss:      c.Bool("fail-on-loss"),
		AllowIncomplete: c.Bool("allow-incomplete"),
		Stdout:          os.Stdout,
		Stderr:          os.Stderr,
	}
	if o.Watcher, err = NewAnomalyWatcher(newWatcher, c.String("anomalies")); err != nil {
		return err
	}
	ctx, stop := interrupt.Context(c.Context)
	defer stop()
	return exitStatus(RunContainer(ctx, o))
}

// FailOnLossFlag is --fail-on-loss of tailor enforce and tailor watch.
var FailOnLossFlag = &cli.BoolFlag{Name: "fail-on-loss", Usage: "exit 5 when the tracer lost observations (anomalies may be missing; the anomalies file's summary record counts them)"}

// PositiveDurations refuses a negative value of the named duration flags (tailor
// enforce's and tailor watch's).
func PositiveDurations(c *cli.Context, names ...string) error {
	for _, f := range names {
		if c.Duration(f) < 0 {
			return fmt.Errorf("%w: --%s %v: give a positive duration", fail.ErrBadInput, f, c.Duration(f))
		}
	}
	return nil
}

// NewAnomalyWatcher (tailor enforce's and tailor watch's) makes the watcher once the
// anomalies file, when given, is known to be a regular file or a new one: opened for
// appending without following a symlink (a dangling one included), created 0600,
// refused when it is a device, a FIFO or a directory. This runs before anything
// starts. A nil factory (no tracer in this build) makes no watcher.
func NewAnomalyWatcher(newWatcher WatcherFactory, path string) (Watcher, error) {
	if newWatcher == nil {
		return nil, nil
	}
	if path != "" {
		f, err := safeio.OpenAppend(path, safeio.FileMode)
		if err != nil {
			return nil, fmt.Errorf("--anomalies: %w", err)
		}
		f.Close()
	}
	return newWatcher(path)
}

// exitStatus turns a target's status into tailor's exit: the error when tailor
// failed, else the target's own non-zero status, printed by nobody (the target spoke
// for itself).
func exitStatus(status int, err error) error {
	if err != nil {
		return err
	}
	if status != 0 {
		return &fail.ExitStatus{Code: status, Quiet: true}
	}
	return nil
}

// partsOf reads the hidden --parts flag: none given means every part.
func partsOf(names []string) (*Parts, error) {
	if len(names) == 0 {
		return nil, nil
	}
	p := &Parts{}
	for _, n := range names {
		switch n {
		case "seccomp":
			p.Seccomp = true
		case "landlock":
			p.Landlock = true
		case "watcher":
			p.Watcher = true
		default:
			return nil, fmt.Errorf("%w: --parts %q: want seccomp, landlock or watcher", fail.ErrBadInput, n)
		}
	}
	return p, nil
}
