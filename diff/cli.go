// Package diff is `tailor diff`: what a newer recording or bundle allows that an
// older one did not, and the reverse, as lines or JSON, failing on additions when
// asked (a CI gate). The comparison itself is profiles.Diff.
package diff

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// ErrAdded is returned by diff --fail-on-added when the newer side allows something
// the older did not. It is not one of the fail sentinels, so tailor exits 1
// (docs/generate.md).
var ErrAdded = errors.New("the new profile allows more than the old one")

// Command returns `tailor diff`.
func Command() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show what NEW allows that OLD did not, and the reverse (recordings or bundle directories)",
		ArgsUsage: "OLD NEW",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the difference as JSON"},
			&cli.BoolFlag{Name: "fail-on-added", Usage: "exit 1 when NEW allows anything OLD did not"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("%w: diff needs exactly two arguments, OLD and NEW", fail.ErrBadInput)
			}
			older, err := profiles.LoadPolicy(c.Args().Get(0))
			if err != nil {
				return err
			}
			newer, err := profiles.LoadPolicy(c.Args().Get(1))
			if err != nil {
				return err
			}
			d := profiles.Diff(older, newer)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(d); err != nil {
					return err
				}
			} else {
				Write(c.App.Writer, d)
			}
			if c.Bool("fail-on-added") && !d.Added.Empty() {
				return ErrAdded
			}
			return nil
		},
	}
}

// Write prints a diff as "+ category item" / "- category item" lines, as tailor diff
// does (package compose prints one per service).
func Write(w io.Writer, d profiles.PolicyDiff) {
	for _, side := range []struct {
		sign string
		p    profiles.Policy
	}{{"+", d.Added}, {"-", d.Removed}} {
		for _, s := range side.p.Syscalls {
			for _, n := range s.Names {
				fmt.Fprintf(w, "%s syscall %s %s\n", side.sign, s.Arch, n)
			}
		}
		for _, e := range side.p.Execs {
			fmt.Fprintf(w, "%s exec %s\n", side.sign, e)
		}
		for _, f := range side.p.Files {
			fmt.Fprintf(w, "%s file %s %s\n", side.sign, f.Pattern, strings.Join(f.Access, ","))
		}
		for _, c := range side.p.Capabilities {
			fmt.Fprintf(w, "%s capability %s\n", side.sign, c)
		}
		for _, f := range side.p.SocketFamilies {
			fmt.Fprintf(w, "%s socket-family %s\n", side.sign, f)
		}
		for _, p := range side.p.Problems {
			fmt.Fprintf(w, "%s problem %s\n", side.sign, p)
		}
		for _, n := range side.p.Network {
			fmt.Fprintf(w, "%s network %s\n", side.sign, n)
		}
	}
	for _, f := range d.Changed {
		fmt.Fprintf(w, "~ file %s differs\n", f)
	}
	switch {
	case d.Added.Empty() && d.Removed.Empty() && len(d.Changed) == 0:
		fmt.Fprintln(w, "no difference")
	case d.Added.Empty() && d.Removed.Empty():
		fmt.Fprintln(w, "no difference in what they allow")
	}
}
