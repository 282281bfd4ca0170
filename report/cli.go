package report

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/diff"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/internal/version"
)

// Command is `tailor report`.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "one self-contained HTML page (and a terminal summary) of a recording, a bundle, a diff of two, or an anomalies file",
		ArgsUsage: "INPUT... (a recording, a bundle directory, two of them as OLD NEW, anomalies files)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the HTML page to `FILE` (mode 0600)"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON instead of the terminal summary"},
			&cli.BoolFlag{Name: "fail-on-added", Usage: "exit 1 when a diff's NEW allows anything OLD did not (after writing the report)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("%w: report needs at least one input: a recording, a bundle directory, two of them (a diff) or an anomalies file", fail.ErrBadInput)
			}
			out := c.String("output")
			if out != "" {
				if err := safeio.CheckOutputFile(out); err != nil {
					return err
				}
			}
			inputs := c.Args().Slice()
			r, err := Build(inputs)
			if err != nil {
				return err
			}
			if out != "" {
				page, err := r.HTML(inputs, version.Version)
				if err != nil {
					return err
				}
				if err := safeio.WriteFileAtomic(out, page, 0o600); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else if err := r.WriteText(c.App.Writer); err != nil {
				return err
			}
			if c.Bool("fail-on-added") && r.Diff != nil && r.Diff.Verdict == VerdictFail {
				return diff.ErrAdded // exit 1, as tailor diff --fail-on-added
			}
			return nil
		},
	}
}
