// Command tailor measures what a container or command really does and cuts its
// security profiles to fit. This file only wires the subcommands; each lives in the
// package of its step (learn, generate, enforce).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/version"
	"github.com/tailor-sec/tailor/learn"
)

func main() {
	// A launcher child must not run any of the CLI: it confines itself and execs.
	launch.Main()
	app := &cli.App{
		Name:    "tailor",
		Usage:   "learn what a target does, generate minimal seccomp/AppArmor/capability profiles, enforce them",
		Version: version.Version,
		Commands: []*cli.Command{
			learn.CLI(),
			generate.Command(),
			generate.MergeCommand(),
			generate.DiffCommand(),
			enforce.Command(watch.ForCLI),
			enforce.WatchCommand(watch.ForCLI),
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
	err := app.Run(os.Args)
	code := fail.Code(err)
	var status *fail.ExitStatus
	if err != nil && !(errors.As(err, &status) && status.Quiet) {
		fmt.Fprintf(os.Stderr, "tailor: %v\n", err)
	}
	os.Exit(code)
}
