package compose

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// healthTimeout bounds the wait for a copy's healthcheck to pass before the copies
// of the services after it start.
const healthTimeout = 2 * time.Minute

// LearnRunning learns Compose project opt.ProjectName, already running, without
// touching it: every running container of each learned service is relaunched as a
// copy under the learning profile, as learn --container does (package internal/docker),
// in the order Compose created the originals; a copy that shares the network
// namespace of another service's container joins that container's copy instead, and
// a copy with a healthcheck must be healthy before the next service's copies start.
// The copies carry the project label of a project of their own, so the running
// project's docker-compose never sees them, and are removed on every path.
func LearnRunning(ctx context.Context, opt LearnOptions) (*Index, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = 10 * time.Second
	}
	if opt.ProjectName == "" {
		return nil, fmt.Errorf("%w: no project given: --compose-project P", fail.ErrBadInput)
	}
	eng, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.close()
	all, err := eng.containers(ctx, opt.ProjectName)
	if err != nil {
		return nil, err
	}
	var originals []projectContainer
	for _, cs := range all {
		for _, c := range cs {
			if c.Running {
				originals = append(originals, c)
			}
		}
	}
	if len(originals) == 0 {
		return nil, fmt.Errorf("%w: no running container carries the label %s=%s (see docker ps --filter label=%s)", fail.ErrDocker, LabelProject, opt.ProjectName, LabelProject)
	}
	// Compose created them in start order.
	slices.SortStableFunc(originals, func(a, b projectContainer) int {
		if a.Created != b.Created {
			return int(a.Created - b.Created)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var order []string
	for _, c := range originals {
		if !slices.Contains(order, c.Service) {
			order = append(order, c.Service)
		}
	}
	sel := order
	if len(opt.Services) > 0 {
		for _, s := range opt.Services {
			if !slices.Contains(order, s) {
				return nil, fmt.Errorf("%w: --service %s: project %s has no running container of it (it has %v)", fail.ErrBadInput, s, opt.ProjectName, order)
			}
		}
		sel = slices.DeleteFunc(slices.Clone(order), func(s string) bool { return !slices.Contains(opt.Services, s) })
	}
	for _, s := range sel {
		if !serviceName.MatchString(s) {
			return nil, fmt.Errorf("%w: service name %q: tailor names files after services", fail.ErrBadInput, s)
		}
	}
	workloadSvc := sel[0]
	if opt.WorkloadService != "" {
		if !slices.Contains(sel, opt.WorkloadService) {
			return nil, fmt.Errorf("%w: --workload-service %s: not a learned service of %s", fail.ErrBadInput, opt.WorkloadService, opt.ProjectName)
		}
		workloadSvc = opt.WorkloadService
	}
	if err := prepareOutput(opt.Output, sel); err != nil {
		return nil, err
	}

	tr, err := bpf.Open(bpf.Options{Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()
	if stale, err := dc.CleanupStale(ctx); err != nil {
		return nil, err
	} else if len(stale) > 0 {
		opt.Logger.Info("removed copies left by killed tailor runs", "containers", strings.Join(stale, ","))
	}
	lr, err := newLearnRun(tr, dc, &opt, sel)
	if err != nil {
		return nil, err
	}
	defer lr.endEvents()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	interrupt.Claim()
	defer signal.Stop(sigs)

	labels := map[string]string{LabelProject: learnRunName(opt.ProjectName)}
	for k, v := range opt.Labels {
		labels[k] = v
	}
	copyOf := map[string]string{} // original ID -> copy ID
	var copies []*docker.Copy
	defer func() {
		for _, cp := range copies {
			if err := cp.Remove(ctx); err != nil {
				opt.Logger.Warn("removing the copy", "container", cp.Name(), "error", err)
			}
		}
	}()
	firstCopy := map[string]*docker.Copy{}
	names := map[string][]string{}
	var ids []string
	for _, c := range originals {
		if !slices.Contains(sel, c.Service) {
			continue
		}
		info, err := eng.api.ContainerInspect(ctx, c.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: inspecting %s: %v", fail.ErrDocker, c.Name, err)
		}
		co := docker.CopyOptions{Labels: labels}
		if peer, ok := strings.CutPrefix(string(info.HostConfig.NetworkMode), "container:"); ok {
			for orig, cp := range copyOf {
				if orig == peer || strings.HasPrefix(orig, peer) {
					co.NetworkMode = "container:" + cp
				}
			}
		}
		cp, err := dc.PrepareCopy(ctx, c.ID, co)
		if err != nil {
			return nil, err
		}
		copies = append(copies, cp)
		copyOf[c.ID] = cp.ID()
		if err := tr.AddContainer(lr.sessions[c.Service].Target(), cp.ID()); err != nil {
			return nil, err
		}
		defer tr.RemoveContainer(cp.ID())
		if err := startCopy(ctx, eng, cp, info.Config.Healthcheck != nil && len(info.Config.Healthcheck.Test) > 0 && info.Config.Healthcheck.Test[0] != "NONE"); err != nil {
			return nil, err
		}
		if firstCopy[c.Service] == nil {
			firstCopy[c.Service] = cp
		}
		names[c.Service] = append(names[c.Service], cp.Name())
		ids = append(ids, cp.ID())
	}

	interrupted, workloadErr := waitRun(ctx, eng, opt, sigs, ids, func() error {
		pid, err := firstCopy[workloadSvc].Pid(ctx)
		if err != nil {
			return err
		}
		return docker.RunWorkloadInNetns(ctx, pid, opt.Workload, opt.Stdout, opt.Stderr)
	})
	// Dependents first, as Compose stops them.
	for i := len(copies) - 1; i >= 0; i-- {
		if err := copies[i].Stop(ctx, opt.StopTimeout); err != nil {
			opt.Logger.Warn("stopping the copy", "container", copies[i].Name(), "error", err)
		}
	}
	lr.drain()
	var svcs []learnedService
	for _, s := range sel {
		cp := firstCopy[s]
		svcs = append(svcs, learnedService{Name: s, Identity: cp.Original(), Files: cp.ID(), Containers: names[s]})
	}
	return lr.save(context.WithoutCancel(ctx), &Index{Kind: KindRecordings, SchemaVersion: IndexSchemaVersion, Project: opt.ProjectName},
		svcs, interrupted, workloadErr, nil)
}

// startCopy starts a copy and, when it has a healthcheck, waits until Docker reports
// it healthy (the health_status event), as a depends_on condition would.
func startCopy(ctx context.Context, eng *engine, cp *docker.Copy, health bool) error {
	if !health {
		return cp.Start(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	msgs, errs := eng.api.Events(wctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("container", cp.ID()), filters.Arg("event", "health_status"))})
	if err := cp.Start(ctx); err != nil {
		return err
	}
	for {
		select {
		case m := <-msgs:
			if strings.HasSuffix(string(m.Action), "healthy") && !strings.HasSuffix(string(m.Action), "unhealthy") {
				return nil
			}
		case err := <-errs:
			return fmt.Errorf("%w: waiting for copy %s to be healthy: %v", fail.ErrDocker, cp.Name(), err)
		}
	}
}

// prepareOutput checks the recording directory (new, or holding only what learn
// --compose writes) and creates it.
func prepareOutput(dir string, services []string) error {
	known := []string{IndexFile}
	for _, s := range services {
		known = append(known, s+".json")
	}
	if err := safeio.CheckOutputDir(dir, known); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	if err := os.MkdirAll(dir, safeio.DirMode); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}
