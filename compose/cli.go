package compose

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/diff"
	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/version"
)

// Extension adds a Compose mode to one of tailor's commands: its flags, and the
// action that runs instead of the command's own when Applies says so.
type Extension struct {
	Flags []cli.Flag
	// Optional are flags the command requires that the Compose mode does without.
	Optional []string
	Applies  func(*cli.Context) bool
	Action   cli.ActionFunc
}

// Extend adds ext to cmd and returns cmd.
func Extend(cmd *cli.Command, ext Extension) *cli.Command {
	cmd.Flags = append(cmd.Flags, ext.Flags...)
	for _, f := range cmd.Flags {
		if sf, ok := f.(*cli.StringFlag); ok {
			for _, n := range ext.Optional {
				if sf.Name == n {
					sf.Required = false
				}
			}
		}
	}
	base := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if ext.Applies(c) {
			return ext.Action(c)
		}
		for _, n := range ext.Optional {
			if !c.IsSet(n) {
				return fmt.Errorf("%w: Required flag %q not set (see 'tailor %s --help')", fail.ErrBadInput, n, cmd.Name)
			}
		}
		return base(c)
	}
	return cmd
}

// noArgs refuses positional arguments in a Compose mode.
func noArgs(c *cli.Context, mode string) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("%w: %s takes no arguments (got %q)", fail.ErrBadInput, mode, c.Args().Slice())
	}
	return nil
}

// signalContext ends on SIGINT or SIGTERM, which then stop the run cleanly.
func signalContext(c *cli.Context) (*cli.Context, func()) {
	ctx, stop := interrupt.Context(c.Context)
	c.Context = ctx
	return c, stop
}

// LearnExtension is `tailor learn --compose FILE`.
func LearnExtension() Extension {
	return Extension{
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "compose", Usage: "learn every service of the Compose project in `FILE` (repeat for override files); -o is then a directory"},
			&cli.StringFlag{Name: "project-name", Usage: "with --compose: the project name `P` (default: as Compose decides)"},
			&cli.StringSliceFlag{Name: "service", Usage: "with --compose: learn only service `S` (repeatable; the others run untraced)"},
			&cli.StringFlag{Name: "compose-project", Usage: "learn the running Compose project `P` through relaunched copies of its containers (the project is not touched)"},
			&cli.StringFlag{Name: "workload-service", Usage: "with --compose: run the workload in the network namespace of service `S` (default: the first learned one)"},
		},
		Applies: func(c *cli.Context) bool { return c.IsSet("compose") || c.IsSet("compose-project") },
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "learn --compose"); err != nil {
				return err
			}
			for _, f := range []string{"container", "attach", "compose-project"} {
				if c.IsSet(f) && c.IsSet("compose") {
					return fmt.Errorf("%w: --%s and --compose exclude each other", fail.ErrBadInput, f)
				}
			}
			if c.IsSet("compose-project") && (c.IsSet("container") || c.IsSet("attach") || c.IsSet("project-name")) {
				return fmt.Errorf("%w: --compose-project excludes --container, --attach and --project-name", fail.ErrBadInput)
			}
			if c.Duration("duration") < 0 || c.Duration("stop-timeout") < 0 {
				return fmt.Errorf("%w: give positive durations", fail.ErrBadInput)
			}
			learnFn, project := Learn, c.String("project-name")
			if c.IsSet("compose-project") {
				learnFn, project = LearnRunning, c.String("compose-project")
			}
			_, err := learnFn(c.Context, LearnOptions{
				Files: c.StringSlice("compose"), ProjectName: project, Services: c.StringSlice("service"),
				Workload: c.String("workload"), WorkloadService: c.String("workload-service"), Output: c.String("output"),
				Duration: c.Duration("duration"), StopTimeout: c.Duration("stop-timeout"), AllowLoss: c.Bool("allow-loss"),
				Stdout: os.Stdout, Stderr: os.Stderr, Progress: os.Stderr,
			})
			return err
		},
	}
}

// GenerateExtension is `tailor generate --compose DIR`.
func GenerateExtension() Extension {
	return Extension{
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "compose", Usage: "generate one bundle per service of the recording directory `DIR` (learn --compose) and compose.tailor.yml"},
			&cli.BoolFlag{Name: "no-apparmor", Usage: "with --compose: leave apparmor=NAME out of compose.tailor.yml (for hosts with AppArmor where the profiles are not loaded)"},
		},
		Applies: func(c *cli.Context) bool { return c.IsSet("compose") },
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "generate --compose"); err != nil {
				return err
			}
			if c.IsSet("name") {
				return fmt.Errorf("%w: --name: with --compose each service's profile is named tailor-PROJECT-SERVICE", fail.ErrBadInput)
			}
			ix, err := Generate(GenerateOptions{
				Input: c.String("compose"), Output: c.String("output"), Strict: c.Bool("strict"), NoArgs: c.Bool("no-args"),
				AllowIncomplete: c.Bool("allow-incomplete"), NoAppArmor: c.Bool("no-apparmor"), Version: version.Version, Warn: c.App.ErrWriter,
			})
			if err != nil {
				return err
			}
			for _, s := range ix.Services {
				fmt.Fprintf(c.App.Writer, "service %s: bundle %s (profile %s)\n", s.Name, s.Path, s.Profile)
			}
			fmt.Fprintf(c.App.Writer, "wrote %s/%s\n", c.String("output"), OverrideFile)
			return nil
		},
	}
}

// EnforceExtension is `tailor enforce --compose FILE --profile DIR`.
func EnforceExtension(newWatcher enforce.WatcherFactory) Extension {
	return Extension{
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "compose", Usage: "bring up the Compose project in `FILE` with --profile DIR/compose.tailor.yml and watch every service"},
			&cli.StringFlag{Name: "project-name", Usage: "with --compose: the project name `P`"},
			&cli.StringFlag{Name: "workload-service", Usage: "with --compose and --workload: run the workload in service `S`'s network namespace"},
			&cli.BoolFlag{Name: "down", Usage: "with --compose: stop and remove the project when the watch ends (default: leave it running)"},
		},
		Applies: func(c *cli.Context) bool { return c.IsSet("compose") },
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "enforce --compose"); err != nil {
				return err
			}
			for _, f := range []string{"container", "mode", "allow-partial", "stop-timeout"} {
				if c.IsSet(f) {
					return fmt.Errorf("%w: --%s does not apply to --compose (the override enforces; docs/compose.md)", fail.ErrBadInput, f)
				}
			}
			if newWatcher == nil {
				return fmt.Errorf("%w: enforce --compose watches with the tracer, which this build lacks", fail.ErrRefused)
			}
			w, err := enforce.NewAnomalyWatcher(newWatcher, c.String("anomalies"))
			if err != nil {
				return err
			}
			c, stop := signalContext(c)
			defer stop()
			return Enforce(c.Context, EnforceOptions{
				Files: c.StringSlice("compose"), ProjectName: c.String("project-name"), Profile: c.String("profile"),
				Watcher: w, Duration: c.Duration("duration"), FailOnAnomaly: c.Bool("fail-on-anomaly"), FailOnLoss: c.Bool("fail-on-loss"), Down: c.Bool("down"),
				Workload: c.String("workload"), WorkloadService: c.String("workload-service"),
				Stdout: os.Stdout, Stderr: os.Stderr, Log: os.Stderr,
			})
		},
	}
}

// WatchExtension is `tailor watch --compose-project P --profile DIR`.
func WatchExtension(newWatcher enforce.WatcherFactory) Extension {
	return Extension{
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "compose-project", Usage: "watch every running container of Compose project `P` (instead of --container) against --profile DIR (generate --compose)"},
		},
		Optional: []string{"container"},
		Applies:  func(c *cli.Context) bool { return c.IsSet("compose-project") },
		Action: func(c *cli.Context) error {
			if err := noArgs(c, "watch --compose-project"); err != nil {
				return err
			}
			if c.IsSet("container") || c.IsSet("metrics") || c.IsSet("metrics-web-config") {
				return fmt.Errorf("%w: --container, --metrics and --metrics-web-config do not apply to --compose-project", fail.ErrBadInput)
			}
			if newWatcher == nil {
				return fmt.Errorf("%w: watch needs the tracer, which this build lacks", fail.ErrRefused)
			}
			w, err := enforce.NewAnomalyWatcher(newWatcher, c.String("anomalies"))
			if err != nil {
				return err
			}
			c, stop := signalContext(c)
			defer stop()
			return Watch(c.Context, EnforceOptions{
				ProjectName: c.String("compose-project"), Profile: c.String("profile"), Watcher: w,
				Duration: c.Duration("duration"), FailOnAnomaly: c.Bool("fail-on-anomaly"), FailOnLoss: c.Bool("fail-on-loss"), Log: os.Stderr,
			})
		},
	}
}

// DiffExtension makes `tailor diff OLD NEW` compare two Compose directories service
// by service when both are.
func DiffExtension() Extension {
	return Extension{
		Applies: func(c *cli.Context) bool { return c.NArg() == 2 && IsDir(c.Args().Get(0)) && IsDir(c.Args().Get(1)) },
		Action: func(c *cli.Context) error {
			ds, err := Diff(c.Args().Get(0), c.Args().Get(1))
			if err != nil {
				return err
			}
			if err := WriteDiff(c.App.Writer, ds, c.Bool("json")); err != nil {
				return err
			}
			if c.Bool("fail-on-added") && Added(ds) {
				return diff.ErrAdded
			}
			return nil
		},
	}
}
