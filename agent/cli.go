package agent

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
)

// Command returns `tailor agent`. check, when set, is called before anything starts
// (the tracer's privilege check); a nil check means the build has no tracer.
func Command(check func() error) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "node agent: watch every container whose image or labels a rule maps to a bundle, JSON lines on stdout, Prometheus metrics (needs the tracer)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "agent configuration `FILE` (rules mapping images or labels to bundle directories or OCI references)", Required: true},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`HOST:PORT`/metrics (overrides the config)"},
			watch.MetricsWebConfigFlag,
			&cli.StringFlag{Name: "cache", Usage: "`DIR` OCI bundles are pulled to (default: a new temporary directory)"},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("%w: tailor agent takes no arguments (got %q)", fail.ErrBadInput, c.Args().Slice())
			}
			if check == nil {
				return fmt.Errorf("%w: tailor agent needs the tracer, which this build does not have", fail.ErrRefused)
			}
			cfg, err := LoadConfig(c.String("config"))
			if err != nil {
				return err
			}
			if m := c.String("metrics"); m != "" {
				cfg.Metrics = m
			}
			if w := c.String("metrics-web-config"); w != "" {
				cfg.MetricsWebConfig = w
			}
			// A bad web configuration is refused before anything starts.
			if _, err := metricsWebConfig(cfg); err != nil {
				return err
			}
			if err := check(); err != nil {
				return err
			}
			ctx, stop := interrupt.Context(c.Context)
			defer stop()
			return Run(ctx, Options{Config: cfg, Cache: c.String("cache"), Out: c.App.Writer, Log: c.App.ErrWriter})
		},
	}
}
