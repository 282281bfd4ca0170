package enforce

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
)

// WatcherFactory makes the anomaly watcher for one run of tailor enforce, writing
// anomalies to anomaliesPath ("" for none). cmd/tailor passes the tracer's; nil means
// this build has none.
type WatcherFactory func(anomaliesPath string) (Watcher, error)

// Command returns `tailor enforce` (local mode): run COMMAND confined by a bundle.
func Command(newWatcher WatcherFactory) *cli.Command {
	return &cli.Command{
		Name:      "enforce",
		Usage:     "run a command confined by a profile bundle (seccomp, capabilities, no_new_privs, Landlock)",
		ArgsUsage: "-- COMMAND [ARGS...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Usage: "bundle directory written by tailor generate", Required: true},
			&cli.StringFlag{Name: "mode", Value: ModeEnforce, Usage: "enforce: block what the profile does not allow; complain: only log seccomp denials"},
			&cli.StringFlag{Name: "anomalies", Usage: "write anomalies (out-of-profile behaviour) to `FILE` (needs the tracer)"},
			&cli.BoolFlag{Name: "fail-on-anomaly", Usage: "exit 7 when an anomaly was seen (needs the tracer)"},
			&cli.BoolFlag{Name: "allow-partial", Usage: "run even where file rules cannot be enforced (no Landlock on this host)"},
		},
		Action: func(c *cli.Context) error {
			o := Options{
				Profile:       c.String("profile"),
				Mode:          c.String("mode"),
				AllowPartial:  c.Bool("allow-partial"),
				FailOnAnomaly: c.Bool("fail-on-anomaly"),
				Argv:          c.Args().Slice(),
				Stdin:         os.Stdin,
				Stdout:        os.Stdout,
				Stderr:        os.Stderr,
			}
			if c.IsSet("anomalies") && newWatcher == nil {
				return refuse("--anomalies needs anomaly reporting, which this build has no tracer for")
			}
			if newWatcher != nil {
				w, err := newWatcher(c.String("anomalies"))
				if err != nil {
					return err
				}
				o.Watcher = w
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			status, err := Run(ctx, o)
			if err != nil {
				return err
			}
			if status != 0 {
				return &fail.ExitStatus{Code: status, Quiet: true}
			}
			return nil
		},
	}
}
