package watch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/proc"
)

// AttachOptions configure one Attach.
type AttachOptions struct {
	// Profile is the bundle directory the container is compared with.
	Profile string
	// Container names the running container (name or ID).
	Container string
	// Watcher reports anomalies; Attach refuses to run without one.
	Watcher enforce.Watcher
	// Metrics, when set, is the host:port where Prometheus metrics are served at
	// /metrics. Any address is accepted: one that is not loopback exposes the
	// counts to the network, and Attach warns about it unless MetricsWebConfig
	// turns on both TLS and basic authentication.
	Metrics string
	// MetricsWebConfig is the exporter-toolkit web configuration file of the
	// metrics endpoint (TLS, basic authentication); "" for plain HTTP.
	MetricsWebConfig string
	// Duration, when positive, ends the watch after that long.
	Duration time.Duration
	// FailOnAnomaly makes Attach return fail.ErrAnomaly when the watcher saw any.
	FailOnAnomaly bool
	// FailOnLoss makes Attach return fail.ErrLoss when the watcher lost
	// observations.
	FailOnLoss bool
	// Log receives the start-up report (output for the user); nil means os.Stderr.
	Log io.Writer
	// Logger receives warnings; nil means slog.Default.
	Logger *slog.Logger
	// Host describes this machine; nil means enforce.ProbeHost.
	Host *enforce.Host
}

// errNoTracer is the refusal of a watch without a tracer to watch with (exit 9).
var errNoTracer = fmt.Errorf("%w: tailor watch needs the tracer, which this build does not have", fail.ErrRefused)

// Attach is `tailor watch`: it follows a running container with the watcher until
// the container's init exits, Duration passes or ctx ends (Ctrl-C: the normal end of
// a watch), then stops the watcher. The container is never stopped or changed.
func Attach(ctx context.Context, o AttachOptions) error {
	if o.Watcher == nil {
		return errNoTracer
	}
	if o.Container == "" {
		return fmt.Errorf("%w: no container given: tailor watch --profile DIR --container NAME", fail.ErrBadInput)
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	wc, err := metricsWebConfig(o.Metrics, o.MetricsWebConfig)
	if err != nil {
		return err
	}
	if o.Host == nil {
		h, err := enforce.ProbeHost()
		if err != nil {
			return err
		}
		o.Host = &h
	}
	policy, err := enforce.Load(o.Profile, *o.Host)
	if err != nil {
		return err
	}
	if err := enforce.RefuseCwd(policy, "a container"); err != nil {
		return err
	}
	dc, err := docker.Connect(ctx)
	if err != nil {
		return err
	}
	defer dc.Close()
	st, err := dc.State(ctx, o.Container)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("%w: container %q is not running (state %s): tailor watch attaches to a running container; start it first", fail.ErrDocker, o.Container, st.Status)
	}
	// The pidfd is taken before the watch starts, so an init that exits in between
	// is still seen exiting.
	initGone, err := proc.WatchExit(st.Pid)
	if err != nil {
		return fmt.Errorf("%w: watching the container's init: %v", fail.ErrDocker, err)
	}
	defer initGone.Close()

	if o.Metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(StatsCollector(o.Watcher))
		srv, err := ServeMetrics(o.Metrics, wc, reg, o.Logger)
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Fprintf(o.Log, "tailor: metrics: %s\n", srv.URL())
	}
	fmt.Fprintf(o.Log, "tailor: watching container %s (%s) against profile %s (%s); the container is not changed\n", o.Container, st.ID[:12], policy.Dir, policy.Bundle.Name)

	if err := o.Watcher.Watch(ctx, enforce.WatchTarget{ContainerID: st.ID, Running: true}, policy); err != nil {
		return fmt.Errorf("starting anomaly watcher: %w", err)
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}
	why := ""
	select {
	case <-initGone.Done():
		why = "the container's init exited"
	case <-timeout:
		why = "--duration passed"
	case <-ctx.Done():
		why = "interrupted"
	}
	n, err := o.Watcher.Stop()
	if err != nil {
		return fmt.Errorf("anomaly watcher: %w", err)
	}
	fmt.Fprintf(o.Log, "tailor: watch ended (%s): %d anomalies\n", why, n)
	if n > 0 && o.FailOnAnomaly {
		return fmt.Errorf("%w: %d anomalies in container %s against %s", fail.ErrAnomaly, n, o.Container, policy.Dir)
	}
	return enforce.LossError(o.Watcher, o.FailOnLoss, "container "+o.Container)
}

// metricsWebConfig checks --metrics-web-config (nil when not given): it needs
// --metrics.
func metricsWebConfig(metrics, path string) (*WebConfig, error) {
	if path == "" {
		return nil, nil
	}
	if metrics == "" {
		return nil, fmt.Errorf("%w: --metrics-web-config needs --metrics HOST:PORT", fail.ErrBadInput)
	}
	return LoadWebConfig(path)
}

// MetricsWebConfigFlag is --metrics-web-config, for every command that serves metrics.
var MetricsWebConfigFlag = &cli.StringFlag{Name: "metrics-web-config", Usage: "TLS and basic authentication of the metrics endpoint: a Prometheus web configuration `FILE` (exporter-toolkit's, as node_exporter's --web.config.file; docs/enforce.md)"}

// Command returns `tailor watch`: follow a running container and report what it
// does outside its profile, without relaunching or changing it. A nil factory (no
// tracer in this build) makes it refuse.
func Command(newWatcher enforce.WatcherFactory) *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "report what a running container does outside its profile bundle, without changing it (needs the tracer)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Usage: "bundle directory written by tailor generate", Required: true},
			&cli.StringFlag{Name: "container", Usage: "the running Docker container `NAME|ID`", Required: true},
			&cli.StringFlag{Name: "anomalies", Usage: "write anomalies to `FILE`"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://`HOST:PORT`/metrics (use 127.0.0.1: any other address exposes them to the network)"},
			MetricsWebConfigFlag,
			&cli.DurationFlag{Name: "duration", Usage: "stop watching after `D`"},
			&cli.BoolFlag{Name: "fail-on-anomaly", Usage: "exit 7 when an anomaly was seen"},
			enforce.FailOnLossFlag,
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("%w: tailor watch takes no arguments (got %q)", fail.ErrBadInput, c.Args().Slice())
			}
			if err := enforce.PositiveDurations(c, "duration"); err != nil {
				return err
			}
			// A bad web configuration is refused before anything starts.
			if _, err := metricsWebConfig(c.String("metrics"), c.String("metrics-web-config")); err != nil {
				return err
			}
			if newWatcher == nil {
				return errNoTracer
			}
			w, err := enforce.NewAnomalyWatcher(newWatcher, c.String("anomalies"))
			if err != nil {
				return err
			}
			ctx, stop := interrupt.Context(c.Context)
			defer stop()
			return Attach(ctx, AttachOptions{
				Profile:          c.String("profile"),
				Container:        c.String("container"),
				Watcher:          w,
				Metrics:          c.String("metrics"),
				MetricsWebConfig: c.String("metrics-web-config"),
				Duration:         c.Duration("duration"),
				FailOnAnomaly:    c.Bool("fail-on-anomaly"),
				FailOnLoss:       c.Bool("fail-on-loss"),
			})
		},
	}
}
