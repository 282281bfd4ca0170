package compose

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
)

// EnforceOptions configure Enforce and Watch.
type EnforceOptions struct {
	// Files and ProjectName give the project (Enforce); ProjectName alone names a
	// running one (Watch).
	Files       []string
	ProjectName string
	// Profile is the directory written by Generate.
	Profile string
	// Watcher reports anomalies, each labelled with its service.
	Watcher enforce.Watcher
	// Duration ends the watch after that long; 0: until every container exited or
	// ctx ends (Ctrl-C).
	Duration time.Duration
	// FailOnAnomaly returns fail.ErrAnomaly when any anomaly was seen.
	FailOnAnomaly bool
	// FailOnLoss returns fail.ErrLoss when the watcher lost observations.
	FailOnLoss bool
	// Workload, when set, is a host shell command run in the network namespace of
	// WorkloadService's first container (default: the first service with a bundle)
	// once the project is up; its end ends the watch, its failure is fail.ErrWorkload.
	Workload, WorkloadService string
	// Down stops and removes the project when the watch ends (Enforce); otherwise
	// it keeps running, as after docker-compose up -d.
	Down bool
	// Labels are added to every container (tests mark theirs).
	Labels map[string]string
	// Ready, when set, is called once every service is up and watched.
	Ready func()
	// Stdout and Stderr receive docker-compose's output; Log the start-up report.
	Stdout, Stderr, Log io.Writer
	// Logger receives warnings; nil means slog.Default.
	Logger *slog.Logger
	// Host describes this machine; nil means enforce.ProbeHost.
	Host *enforce.Host
}

// bundles loads the policy of every service of a bundle directory.
func bundles(dir string, host *enforce.Host) (*Index, map[string]*enforce.Policy, error) {
	ix, err := LoadIndex(dir, KindBundles)
	if err != nil {
		return nil, nil, err
	}
	if host == nil {
		h, err := enforce.ProbeHost()
		if err != nil {
			return nil, nil, err
		}
		host = &h
	}
	pols := map[string]*enforce.Policy{}
	for _, s := range ix.Services {
		p, err := enforce.Load(filepath.Join(dir, s.Path), *host)
		if err != nil {
			return nil, nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		pols[s.Name] = p
	}
	return ix, pols, nil
}

// Enforce brings the project up with compose.tailor.yml after its own files
// (docker-compose -p P -f FILE... -f PROFILE/compose.tailor.yml, run in PROFILE so
// that the override's relative paths resolve), watching every container of every
// service with a bundle from its first filtered syscall: containers are created
// (up --no-start), given to the watcher, then started (up -d), in Compose's start
// order. It watches until Duration, ctx's end or the exit of every container.
func Enforce(ctx context.Context, o EnforceOptions) error {
	if o.Watcher == nil {
		return fmt.Errorf("%w: tailor enforce --compose needs the tracer's watcher", fail.ErrRefused)
	}
	log := writerOr(o.Log)
	proj, err := Load(ctx, o.Files, o.ProjectName)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.Profile)
	if err != nil {
		return fmt.Errorf("%w: --profile: %v", fail.ErrBadInput, err)
	}
	ix, pols, err := bundles(dir, o.Host)
	if err != nil {
		return err
	}
	for _, s := range ix.Services {
		if _, ok := proj.Service(s.Name); !ok {
			return fmt.Errorf("%w: %s has a bundle for service %s, which %s does not define", fail.ErrBadInput, dir, s.Name, proj.Files[0])
		}
	}
	files := slices.Clone(proj.Files)
	files = append(files, filepath.Join(dir, OverrideFile))
	if o.Labels != nil {
		tmp, err := os.MkdirTemp("", "tailor-compose-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		lf, err := writeLabels(tmp, proj, o.Labels)
		if err != nil {
			return err
		}
		files = append(files, lf)
	}
	cc := composeCLI{project: proj.Name, files: files, dir: dir, stdout: o.Stdout, stderr: o.Stderr}
	eng, err := connect(ctx)
	if err != nil {
		return err
	}
	defer eng.close()
	cleanup := context.WithoutCancel(ctx)
	if o.Down {
		defer func() {
			if err := cc.run(cleanup, "down", "--volumes", "--remove-orphans"); err != nil {
				logger := o.Logger
				if logger == nil {
					logger = slog.Default()
				}
				logger.Warn("docker-compose down", "project", proj.Name, "error", err)
			}
		}()
	}
	// Each service's containers are watched before they start.
	var ids []string
	created := map[string][]projectContainer{}
	err = startInOrder(ctx, cc, eng, proj.names(), func(svc string, cs []projectContainer) error {
		pol := pols[svc]
		if pol == nil {
			return nil // no bundle: it runs as the project file says, unwatched
		}
		if len(cs) == 0 {
			return fmt.Errorf("%w: service %s has no container to watch (scale 0?)", fail.ErrDocker, svc)
		}
		created[svc] = cs
		for _, c := range cs {
			if err := o.Watcher.Watch(ctx, enforce.WatchTarget{ContainerID: c.ID, Label: svc}, pol); err != nil {
				return fmt.Errorf("watching service %s (%s): %w", svc, c.Name, err)
			}
			ids = append(ids, c.ID)
		}
		return nil
	})
	if err != nil {
		_, _ = o.Watcher.Stop()
		return err
	}
	fmt.Fprintf(log, "tailor: project %s: %d services confined by %s, watching %d containers\n", proj.Name, len(ix.Services), filepath.Join(dir, OverrideFile), len(ids))
	var workload func() error
	if o.Workload != "" {
		svc := o.WorkloadService
		if svc == "" {
			svc = ix.Services[0].Name
		}
		if len(created[svc]) == 0 {
			return fmt.Errorf("%w: --workload-service %s: no such service", fail.ErrBadInput, svc)
		}
		workload = func() error {
			pid, err := eng.pid(ctx, created[svc][0].ID)
			if err != nil {
				return err
			}
			return docker.RunWorkloadInNetns(ctx, pid, o.Workload, o.Stdout, o.Stderr)
		}
	}
	return watchUntil(ctx, eng, o, ids, "project "+proj.Name, workload)
}

// Watch follows the running containers of Compose project o.ProjectName with the
// bundles of o.Profile, without changing them.
func Watch(ctx context.Context, o EnforceOptions) error {
	if o.Watcher == nil {
		return fmt.Errorf("%w: tailor watch --compose-project needs the tracer's watcher", fail.ErrRefused)
	}
	ix, pols, err := bundles(o.Profile, o.Host)
	if err != nil {
		return err
	}
	eng, err := connect(ctx)
	if err != nil {
		return err
	}
	defer eng.close()
	running, err := eng.containers(ctx, o.ProjectName)
	if err != nil {
		return err
	}
	for svc, cs := range running {
		running[svc] = slices.DeleteFunc(cs, func(c projectContainer) bool { return !c.Running })
	}
	ids, err := watchRunning(ctx, o.Watcher, ix, pols, running)
	if err != nil {
		return err
	}
	fmt.Fprintf(writerOr(o.Log), "tailor: watching %d containers of project %s against %s; they are not changed\n", len(ids), o.ProjectName, o.Profile)
	return watchUntil(ctx, eng, o, ids, "project "+o.ProjectName, nil)
}

// watchRunning gives every running container of every service with a bundle to the
// watcher, labelled with its service. A service with a bundle but no running
// container is an error: its anomalies would go unseen.
func watchRunning(ctx context.Context, w enforce.Watcher, ix *Index, pols map[string]*enforce.Policy, cs map[string][]projectContainer) ([]string, error) {
	var ids []string
	for _, s := range ix.Services {
		if len(cs[s.Name]) == 0 {
			_, _ = w.Stop()
			return nil, fmt.Errorf("%w: service %s has no running container to watch", fail.ErrDocker, s.Name)
		}
		for _, c := range cs[s.Name] {
			if err := w.Watch(ctx, enforce.WatchTarget{ContainerID: c.ID, Running: true, Label: s.Name}, pols[s.Name]); err != nil {
				_, _ = w.Stop()
				return nil, fmt.Errorf("watching service %s (%s): %w", s.Name, c.Name, err)
			}
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// watchUntil waits for the end of the watch and stops the watcher.
func watchUntil(ctx context.Context, eng *engine, o EnforceOptions, ids []string, what string, workload func() error) error {
	if o.Ready != nil {
		o.Ready()
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}
	var workloadDone chan error
	if workload != nil {
		workloadDone = make(chan error, 1)
		go func() { workloadDone <- workload() }()
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	why := ""
	var workloadErr error
	select {
	case workloadErr = <-workloadDone:
		why = "the workload ended"
	case <-eng.allExited(waitCtx, ids):
		why = "every container exited"
	case <-timeout:
		why = "--duration passed"
	case <-ctx.Done():
		why = "interrupted"
	}
	n, err := o.Watcher.Stop()
	if err != nil {
		return fmt.Errorf("anomaly watcher: %w", err)
	}
	fmt.Fprintf(writerOr(o.Log), "tailor: watch of %s ended (%s): %d anomalies\n", what, why, n)
	switch {
	case n > 0 && o.FailOnAnomaly:
		return fmt.Errorf("%w: %d anomalies in %s", fail.ErrAnomaly, n, what)
	case workloadErr == nil:
		return enforce.LossError(o.Watcher, o.FailOnLoss, what)
	case fail.Code(workloadErr) == 1:
		return fmt.Errorf("%w: %v", fail.ErrWorkload, workloadErr)
	}
	return workloadErr
}

// writeLabels writes an override adding labels to every service.
func writeLabels(dir string, proj *Project, labels map[string]string) (string, error) {
	ov := overrideFile{Services: map[string]overrideService{}}
	for _, s := range proj.Services {
		ov.Services[s.Name] = overrideService{Labels: labels}
	}
	data, err := renderOverride(ov)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "labels.yml")
	return path, os.WriteFile(path, data, 0o600)
}
