// Package merge is `tailor merge`: it unites recordings of the same target (several
// runs, several workloads) into one recording, which tailor generate then turns into
// one bundle. The union itself is profiles.Merge.
package merge

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Command returns `tailor merge`.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "merge recordings of the same target into one (union; complete only if all are)",
		ArgsUsage: "RECORDING...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "recording file to write", Required: true},
		},
		Action: func(c *cli.Context) error {
			if err := safeio.CheckOutputFile(c.String("output")); err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			recs, err := profiles.LoadRecordings(c.Args().Slice())
			if err != nil {
				return err
			}
			m := profiles.Merge(recs...)
			if !m.Complete {
				generate.Warn(c.App.ErrWriter, []string{"the merged recording is INCOMPLETE: " + strings.Join(m.Incomplete, "; ")})
			}
			return m.Save(c.String("output"))
		},
	}
}
