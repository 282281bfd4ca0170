package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/internal/version"
	"github.com/tailor-sec/tailor/profiles"
)

// ErrAdded is returned by diff --fail-on-added when the newer side allows something
// the older did not. It is not one of the fail sentinels, so tailor exits 1
// (docs/generate.md).
var ErrAdded = errors.New("the new profile allows more than the old one")

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
			recs, paths, err := loadRecordings(c.Args().Slice())
			if err != nil {
				return err
			}
			b, err := Generate(recs, Options{
				Name: c.String("name"), Dir: dir, NoArgs: c.Bool("no-args"), Strict: c.Bool("strict"),
				AllowIncomplete: c.Bool("allow-incomplete"), Version: version.Version, Sources: paths,
				SPOAPI: c.String("spo-api"),
			})
			if err != nil {
				return err
			}
			warn(c.App.ErrWriter, b.Warnings)
			notes, err := Write(dir, b, ParserChecker())
			if err != nil {
				return err
			}
			warn(c.App.ErrWriter, notes)
			fmt.Fprintf(c.App.Writer, "wrote %s\n%s", dir, b.Summary.Text())
			return nil
		},
	}
}

// MergeCommand returns `tailor merge`.
func MergeCommand() *cli.Command {
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
			recs, _, err := loadRecordings(c.Args().Slice())
			if err != nil {
				return err
			}
			m := profiles.Merge(recs...)
			if !m.Complete {
				warn(c.App.ErrWriter, []string{"the merged recording is INCOMPLETE: " + strings.Join(m.Incomplete, "; ")})
			}
			return m.Save(c.String("output"))
		},
	}
}

// DiffCommand returns `tailor diff`.
func DiffCommand() *cli.Command {
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
				writeDiff(c.App.Writer, d)
			}
			if c.Bool("fail-on-added") && !d.Added.Empty() {
				return ErrAdded
			}
			return nil
		},
	}
}

// WriteDiff prints a diff as "+ category item" / "- category item" lines, as tailor
// diff does (package compose prints one per service).
func WriteDiff(w io.Writer, d profiles.PolicyDiff) { writeDiff(w, d) }

// writeDiff prints a diff as "+ category item" / "- category item" lines.
func writeDiff(w io.Writer, d profiles.PolicyDiff) {
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

func loadRecordings(paths []string) ([]*profiles.Recording, []string, error) {
	if len(paths) == 0 {
		return nil, nil, fmt.Errorf("%w: no recording given", fail.ErrBadInput)
	}
	var recs []*profiles.Recording
	for _, p := range paths {
		r, err := profiles.LoadRecording(p)
		if err != nil {
			return nil, nil, err
		}
		if err := r.ValidateNames(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		recs = append(recs, r)
	}
	return recs, paths, nil
}

func warn(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "tailor: warning: %s\n", l)
	}
}
