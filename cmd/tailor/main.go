// Command tailor measures what a container or command really does and cuts its
// security profiles to fit. This file only wires the subcommands; each lives in the
// package of its name (learn, generate, merge, diff, enforce, enforce/watch, report,
// audit, oci, agent); compose extends learn, generate, diff, enforce and watch with
// --compose.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/agent"
	"github.com/tailor-sec/tailor/audit"
	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/compose"
	"github.com/tailor-sec/tailor/diff"
	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/version"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/merge"
	"github.com/tailor-sec/tailor/oci"
	"github.com/tailor-sec/tailor/report"
)

func main() {
	// A launcher child must not run any of the CLI: it confines itself and execs.
	launch.Main()
	interrupt.Catch()
	app := &cli.App{
		Name:    "tailor",
		Usage:   "learn what a target does, generate minimal seccomp/AppArmor/capability profiles, enforce them",
		Version: version.Version,
		Commands: []*cli.Command{
			compose.Extend(learn.CLI(), compose.LearnExtension()),
			compose.Extend(generate.Command(), compose.GenerateExtension()),
			merge.Command(),
			compose.Extend(diff.Command(), compose.DiffExtension()),
			compose.Extend(enforce.Command(tracerWatcher), compose.EnforceExtension(tracerWatcher)),
			compose.Extend(watch.Command(tracerWatcher), compose.WatchExtension(tracerWatcher)),
			report.Command(),
			audit.Command(),
			oci.PushCommand(),
			oci.PullCommand(),
			agent.Command(bpf.CheckPrivileges),
		},
		// Without a known command: help, or bad input naming what was given.
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("%w: unknown command %q (see 'tailor --help')", fail.ErrBadInput, c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		// Errors are printed once, below, as one line; never by cli itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return fmt.Errorf("%w: %v (see 'tailor --help')", fail.ErrBadInput, err)
		},
	}
	// Flag errors of subcommands are bad input too (exit 2), like the app's own.
	for _, c := range app.Commands {
		if c.OnUsageError == nil {
			c.OnUsageError = app.OnUsageError
		}
	}
	err := usageError(app.Run(os.Args))
	code := fail.Code(err)
	var status *fail.ExitStatus
	if err != nil && !(errors.As(err, &status) && status.Quiet) {
		fmt.Fprintf(os.Stderr, "tailor: %v\n", err)
	}
	os.Exit(code)
}

// tracerWatcher is enforce's and watch's anomaly watcher, the tracer's. The privilege
// it needs is checked when it is made, before anything is printed or started.
func tracerWatcher(anomaliesPath string) (enforce.Watcher, error) {
	if err := bpf.CheckPrivileges(); err != nil {
		return nil, err
	}
	return watch.ForCLI(anomaliesPath)
}

// usageError makes a missing required flag bad input (exit 2), like every other flag
// error. urfave/cli reports it through an unexported type and never calls
// OnUsageError for it, so its message is what tells it (TestExitCodes would notice a
// change).
func usageError(err error) error {
	if err != nil && !errors.Is(err, fail.ErrBadInput) && strings.HasPrefix(err.Error(), "Required flag") {
		return fmt.Errorf("%w: %v (see 'tailor --help')", fail.ErrBadInput, err)
	}
	return err
}
