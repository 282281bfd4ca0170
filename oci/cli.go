package oci

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
)

var plainHTTPFlag = &cli.BoolFlag{Name: "plain-http", Usage: "talk HTTP, not HTTPS (only for a registry on a loopback address)"}

// PushCommand returns `tailor push BUNDLE REF`.
func PushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "store a bundle in an OCI registry, and its seccomp profile in the format container runtimes pull",
		ArgsUsage: "BUNDLE REGISTRY/REPOSITORY:TAG",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "seccomp-ref", Usage: "where the runtime-format seccomp profile goes (default: the same repository, tag TAG" + SeccompTagSuffix + ")"},
			plainHTTPFlag,
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 2 {
				return fmt.Errorf("%w: tailor push BUNDLE REF (got %q)", fail.ErrBadInput, c.Args().Slice())
			}
			p, err := Push(c.Context, c.Args().Get(0), c.Args().Get(1), c.String("seccomp-ref"), Options{PlainHTTP: c.Bool("plain-http")})
			if err != nil {
				return err
			}
			p.Print(c.App.Writer)
			return nil
		},
	}
}

// PullCommand returns `tailor pull REF -o DIR`.
func PullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "fetch a bundle from an OCI registry, verify every file, and write it",
		ArgsUsage: "REGISTRY/REPOSITORY:TAG|@DIGEST",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle directory to write", Required: true},
			plainHTTPFlag,
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("%w: tailor pull REF -o DIR (got %q)", fail.ErrBadInput, c.Args().Slice())
			}
			ref, dir := c.Args().First(), c.String("output")
			p, err := Pull(c.Context, ref, dir, Options{PlainHTTP: c.Bool("plain-http")})
			if err != nil {
				return err
			}
			p.Print(c.App.Writer, ref, dir)
			return nil
		},
	}
}
