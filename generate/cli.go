package generate

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/version"
	"github.com/tailor-sec/tailor/profiles"
)

// Command returns `tailor generate`.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "turn recordings into a profile bundle (seccomp, AppArmor, capabilities, docker and Kubernetes snippets)",
		ArgsUsage: "RECORDING...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle directory to write", Required: true},
			&cli.StringFlag{Name: "name", Usage: "profile name (default: tailor-<container or program>)"},
			&cli.BoolFlag{Name: "no-args", Usage: "allow recorded syscalls with any arguments (no socket family, clone flag or personality filters)"},
			&cli.BoolFlag{Name: "strict", Usage: "no generalisation: exactly the recorded syscalls, and paths widened only by the pid, id and 8-file directory rules (docs/generate.md)"},
			&cli.BoolFlag{Name: "allow-incomplete", Usage: "generate even from an incomplete recording (the profile may miss something)"},
			&cli.StringFlag{Name: "spo-api", Value: SPOAPIv1, Usage: "Security Profiles Operator API `VERSION` of the Kubernetes manifests: v1 (operator 1.0, cluster-scoped) or v1beta1 (operators before 0.9)"},
		},
		Action: func(c *cli.Context) error {
			dir, err := filepath.Abs(c.String("output"))
			if err != nil {
				return fmt.Errorf("%w: output directory: %v", fail.ErrBadInput, err)
			}
			if err := CheckOutput(dir); err != nil {
				return err
			}
			paths := c.Args().Slice()
			recs, err := profiles.LoadRecordings(paths)
			if err != nil {
				return err
			}
			check := ParserChecker()
			b, err := Build(recs, Options{
				Name: c.String("name"), Dir: dir, NoArgs: c.Bool("no-args"), Strict: c.Bool("strict"),
				AllowIncomplete: c.Bool("allow-incomplete"), Version: version.Version, Sources: paths,
				SPOAPI: c.String("spo-api"),
			}, check)
			if err != nil {
				return err
			}
			Warn(c.App.ErrWriter, b.Warnings)
			notes, err := Write(dir, b, check)
			if err != nil {
				return err
			}
			Warn(c.App.ErrWriter, notes)
			fmt.Fprintf(c.App.Writer, "wrote %s\n%s", dir, b.Summary.Text())
			return nil
		},
	}
}

// Warn prints what the user should know about a command's output (tailor generate's
// and merge's), one "tailor: warning:" line each.
func Warn(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "tailor: warning: %s\n", l)
	}
}
