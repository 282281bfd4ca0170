package learn

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
)

// CLI is `tailor learn`.
func CLI() *cli.Command {
	return &cli.Command{
		Name:      "learn",
		Usage:     "record what a command and its descendants do",
		ArgsUsage: "-- COMMAND [ARGS...] | --container NAME",
		Description: "Runs COMMAND under a permissive learning seccomp filter and records every syscall,\n" +
			"file, exec, capability check and socket of it and its descendants until it exits,\n" +
			"--duration ends or the --workload command finishes. Needs root.\n" +
			"With --container NAME it learns a relaunched copy of that Docker container instead\n" +
			"(the workload then runs in the copy's network namespace), and removes the copy;\n" +
			"with --attach it traces the running container itself, from now on.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the recording to `FILE`", Required: true},
			&cli.DurationFlag{Name: "duration", Usage: "stop the target after `D` (e.g. 30s)"},
			&cli.StringFlag{Name: "workload", Usage: "run shell `CMD` on the host while learning; stop the target when it ends"},
			&cli.BoolFlag{Name: "allow-loss", Usage: "exit 0 even if observations were lost (the recording is still marked incomplete)"},
			&cli.StringFlag{Name: "container", Usage: "learn the Docker container `NAME|ID` (through a relaunched copy)"},
			&cli.BoolFlag{Name: "attach", Usage: "with --container: trace the running container instead of a copy (its start-up is not seen)"},
			&cli.DurationFlag{Name: "stop-timeout", Value: defaultStopTimeout, Usage: "time between SIGTERM and SIGKILL when stopping the target"},
		},
		Action: func(c *cli.Context) error {
			for _, f := range []string{"duration", "stop-timeout"} {
				if c.Duration(f) < 0 {
					return fmt.Errorf("%w: --%s %v: give a positive duration", fail.ErrBadInput, f, c.Duration(f))
				}
			}
			argv := c.Args().Slice()
			name := c.String("container")
			opt := Options{
				Output:      c.String("output"),
				Duration:    c.Duration("duration"),
				Workload:    c.String("workload"),
				AllowLoss:   c.Bool("allow-loss"),
				StopTimeout: c.Duration("stop-timeout"),
				Progress:    os.Stderr,
				Stdin:       os.Stdin,
			}
			switch {
			case name != "" && len(argv) > 0:
				return fmt.Errorf("%w: give either --container NAME or a command, not both", fail.ErrBadInput)
			case name != "":
				_, err := Container(c.Context, name, opt, ContainerOptions{Attach: c.Bool("attach")})
				return err
			case c.Bool("attach"):
				return fmt.Errorf("%w: --attach needs --container NAME", fail.ErrBadInput)
			case len(argv) == 0:
				return fmt.Errorf("%w: no command to learn: tailor learn -o FILE -- COMMAND [ARGS...]", fail.ErrBadInput)
			}
			_, err := Command(c.Context, argv, opt)
			return err
		},
	}
}
