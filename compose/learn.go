package compose

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/interrupt"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/profiles"
)

// LearnOptions configure Learn.
type LearnOptions struct {
	// Files are the Compose files; ProjectName overrides the project's name.
	Files       []string
	ProjectName string
	// Services selects the services to learn; empty: all. The others run as they
	// are, untraced.
	Services []string
	// Workload is a shell command run on the host in the network namespace of
	// WorkloadService's first container once the project is up; the project is
	// stopped when it ends.
	Workload string
	// WorkloadService is where the workload runs; empty: the first learned service
	// in start order.
	WorkloadService string
	// Output is the directory for the recordings and index.json.
	Output string
	// Duration stops the project after this long; 0 for no limit.
	Duration time.Duration
	// StopTimeout is docker-compose stop's -t.
	StopTimeout time.Duration
	// AllowLoss saves recordings with lost observations without failing.
	AllowLoss bool
	// Labels are added to every container of the learning run (tests mark theirs).
	Labels map[string]string
	// Stdout and Stderr receive docker-compose's and the workload's output; Progress
	// one line per recording; Logger notes.
	Stdout, Stderr, Progress io.Writer
	Logger                   *slog.Logger
}

// learnRunName is the Compose project name of a learning run: the project's own
// name would reuse (and `down -v` would then remove) the volumes of a real
// deployment on the same daemon.
func learnRunName(project string) string {
	return project + "-tailor-" + strconv.Itoa(os.Getpid())
}

// Learn brings the project up under tailor's learning seccomp profile (a temporary
// override file given to docker-compose after the project's own), traces every
// container of each learned service from its first filtered syscall (its cgroup is
// known to the tracer between `up --no-start` and `up -d`), runs the workload, stops
// and removes the learning run (containers, networks and volumes of its own project
// name), and writes one recording per service and index.json to opt.Output.
func Learn(ctx context.Context, opt LearnOptions) (*Index, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = 10 * time.Second
	}
	proj, err := Load(ctx, opt.Files, opt.ProjectName)
	if err != nil {
		return nil, err
	}
	sel, err := proj.Select(opt.Services)
	if err != nil {
		return nil, err
	}
	for _, s := range sel {
		if err := learnable(s); err != nil {
			return nil, err
		}
	}
	workloadSvc := sel[0].Name
	if opt.WorkloadService != "" {
		if _, ok := proj.Service(opt.WorkloadService); !ok {
			return nil, fmt.Errorf("%w: --workload-service %s: no such service", fail.ErrBadInput, opt.WorkloadService)
		}
		workloadSvc = opt.WorkloadService
	}
	var learned []string
	for _, sv := range sel {
		learned = append(learned, sv.Name)
	}
	if err := prepareOutput(opt.Output, learned); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "tailor-compose-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	override, err := writeLearningOverride(tmp, proj, sel, opt.Labels)
	if err != nil {
		return nil, err
	}

	tr, err := bpf.Open(bpf.Options{Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	eng, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.close()
	dc, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dc.Close()

	lr, err := newLearnRun(tr, dc, &opt, learned)
	if err != nil {
		return nil, err
	}
	defer lr.endEvents()
	sessions := lr.sessions

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	interrupt.Claim()
	defer signal.Stop(sigs)

	cc := composeCLI{project: learnRunName(proj.Name), files: append(slices.Clone(proj.Files), override),
		dir: proj.Dir, stdout: opt.Stdout, stderr: opt.Stderr}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		// Remove the learning run on every path, Ctrl-C included.
		if err := cc.run(cleanup, "down", "--volumes", "--remove-orphans", "-t", seconds(opt.StopTimeout)); err != nil {
			opt.Logger.Warn("removing the learning run", "project", cc.project, "error", err)
		}
	}()
	names := map[string][]string{}
	created := map[string][]projectContainer{}
	var ids []string
	err = startInOrder(ctx, cc, eng, proj.names(), func(svc string, cs []projectContainer) error {
		sess := sessions[svc]
		if sess == nil {
			return nil // not learned: it runs untraced
		}
		if len(cs) == 0 {
			return fmt.Errorf("%w: service %s has no container after docker-compose up --no-start (scale 0?)", fail.ErrDocker, svc)
		}
		created[svc] = cs
		for _, c := range cs {
			if err := tr.AddContainer(sess.Target(), c.ID); err != nil {
				return err
			}
			names[svc] = append(names[svc], c.Name)
			ids = append(ids, c.ID)
		}
		return nil
	})
	for _, id := range ids {
		defer tr.RemoveContainer(id)
	}
	if err != nil {
		return nil, err
	}
	// A container Compose created after its service's turn (a later `up -d` that
	// recreated or scaled it) started before the tracer knew it: it is not recorded.
	incomplete := map[string][]string{}
	started, err := eng.containers(ctx, cc.project)
	if err != nil {
		return nil, err
	}
	for _, s := range sel {
		for _, c := range started[s.Name] {
			if !slices.Contains(ids, c.ID) {
				incomplete[s.Name] = append(incomplete[s.Name], "container "+c.Name+" was started by Compose before tailor could follow it: it is not recorded")
			}
		}
	}

	interrupted, workloadErr := waitRun(ctx, eng, opt, sigs, ids, func() error {
		pid, err := eng.pid(ctx, created[workloadSvc][0].ID)
		if err != nil {
			return err
		}
		return docker.RunWorkloadInNetns(ctx, pid, opt.Workload, opt.Stdout, opt.Stderr)
	})
	if err := cc.run(cleanup, "stop", "-t", seconds(opt.StopTimeout)); err != nil {
		opt.Logger.Warn("stopping the learning run", "project", cc.project, "error", err)
	}
	lr.drain()
	var svcs []learnedService
	for _, sv := range sel {
		first := created[sv.Name][0].ID
		svcs = append(svcs, learnedService{Name: sv.Name, DependsOn: sv.DependsOn, Identity: first, Files: first, Containers: names[sv.Name]})
	}
	return lr.save(context.WithoutCancel(ctx), &Index{Kind: KindRecordings, SchemaVersion: IndexSchemaVersion, Project: proj.Name, ComposeFiles: opt.Files},
		svcs, interrupted, workloadErr, incomplete)
}

// learnRun is what Learn and LearnRunning share: a session per learned service,
// fed with the tracer's events from before the first container starts.
type learnRun struct {
	tr       *bpf.Tracer
	dc       *docker.Client
	opt      *LearnOptions
	sessions map[string]*learn.Session

	stopEvents, eventsDone chan struct{}
	eventsStopped          bool
}

func newLearnRun(tr *bpf.Tracer, dc *docker.Client, opt *LearnOptions, services []string) (*learnRun, error) {
	lr := &learnRun{tr: tr, dc: dc, opt: opt, sessions: map[string]*learn.Session{},
		stopEvents: make(chan struct{}), eventsDone: make(chan struct{})}
	for _, name := range services {
		id, err := tr.NewTarget()
		if err != nil {
			return nil, err
		}
		lr.sessions[name] = learn.NewSession(tr, id, false)
	}
	// Events are handled from now on, while the containers start (waiting for
	// healthchecks can take long), until the run is over.
	go func() {
		defer close(lr.eventsDone)
		events := tr.Events()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				lr.handle(ev)
			case <-lr.stopEvents:
				return
			}
		}
	}()
	return lr, nil
}

func (lr *learnRun) handle(ev bpf.Event) {
	for _, sess := range lr.sessions {
		sess.Handle(ev)
	}
}

// endEvents stops the event goroutine; safe to call twice.
func (lr *learnRun) endEvents() {
	if !lr.eventsStopped {
		lr.eventsStopped = true
		close(lr.stopEvents)
		<-lr.eventsDone
	}
}

// drain handles what the kernel wrote before the containers stopped.
func (lr *learnRun) drain() {
	lr.endEvents()
	lr.tr.Flush()
	for {
		select {
		case ev := <-lr.tr.Events():
			lr.handle(ev)
		default:
			return
		}
	}
}

// learnedService says where a service's recording comes from.
type learnedService struct {
	Name      string
	DependsOn []string
	// Identity is the container the recording names (the original of a copy);
	// Files the container whose files are read for ELF interpreters.
	Identity, Files string
	Containers      []string
}

// save writes each service's recording and the index, and returns the run's error:
// interrupted, lost observations (unless allowed), or a failed workload.
func (lr *learnRun) save(ctx context.Context, ix *Index, svcs []learnedService, interrupted bool, workloadErr error, incomplete map[string][]string) (*Index, error) {
	opt := lr.opt
	var lost uint64
	for _, s := range svcs {
		sess := lr.sessions[s.Name]
		if err := sess.ReadInterpreters(learn.ContainerInterpreter(ctx, lr.dc, s.Files)); err != nil {
			opt.Logger.Warn("reading ELF interpreters from the container", "service", s.Name, "error", err)
		}
		ident, err := lr.dc.Identity(ctx, s.Identity)
		if err != nil {
			return nil, err
		}
		rec, err := sess.Recording(profiles.Target{Kind: "container", Command: ident.Command(), Container: ident, Workload: opt.Workload})
		if err != nil {
			return nil, err
		}
		why := incomplete[s.Name]
		if interrupted {
			why = append(why, "interrupted before the workload finished")
		}
		if len(why) > 0 {
			rec.Complete = false
			rec.Incomplete = append(rec.Incomplete, why...)
		}
		lost = max(lost, rec.Loss.Total())
		file := s.Name + ".json"
		if err := rec.Save(filepath.Join(opt.Output, file)); err != nil {
			return nil, err
		}
		ix.Services = append(ix.Services, IndexService{Name: s.Name, Path: file, DependsOn: s.DependsOn, Containers: s.Containers})
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "tailor: service %s: %d containers, %d syscalls, %d files, %d execs%s -> %s\n", s.Name, len(s.Containers),
				countSyscalls(rec), len(rec.Files), len(rec.Execs), completeNote(rec), filepath.Join(opt.Output, file))
		}
	}
	if err := ix.save(opt.Output); err != nil {
		return nil, err
	}
	switch {
	case interrupted:
		return ix, fmt.Errorf("%w: recordings saved to %s, marked incomplete", fail.ErrInterrupted, opt.Output)
	case lost > 0 && !opt.AllowLoss:
		return ix, fmt.Errorf("%w: observations lost; recordings saved to %s, marked incomplete (use --allow-loss to accept)", fail.ErrLoss, opt.Output)
	case workloadErr != nil:
		if fail.Code(workloadErr) != 1 {
			return ix, fmt.Errorf("%w; recordings saved to %s", workloadErr, opt.Output)
		}
		return ix, fmt.Errorf("%w: %v; recordings saved to %s", fail.ErrWorkload, workloadErr, opt.Output)
	}
	return ix, nil
}

// waitRun waits until the workload ends (when there is one), the duration passes, a
// signal arrives or every learned container exited.
func waitRun(ctx context.Context, eng *engine, opt LearnOptions, sigs <-chan os.Signal, ids []string, workload func() error) (interrupted bool, workloadErr error) {
	var workloadDone chan error
	if opt.Workload != "" {
		workloadDone = make(chan error, 1)
		go func() { workloadDone <- workload() }()
	}
	var timeout <-chan time.Time
	if opt.Duration > 0 {
		t := time.NewTimer(opt.Duration)
		defer t.Stop()
		timeout = t.C
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case workloadErr = <-workloadDone:
	case <-timeout:
	case <-eng.allExited(waitCtx, ids):
	case <-sigs:
		interrupted = true
	case <-ctx.Done():
		interrupted = true
	}
	return interrupted, workloadErr
}

// learnable refuses what cannot be learned as written.
func learnable(s Service) error {
	if s.Privileged {
		return fmt.Errorf("%w: service %s is privileged: Docker applies no seccomp profile to a privileged container, so there is nothing to follow or enforce; give it only the capabilities it needs", fail.ErrRefused, s.Name)
	}
	for _, o := range s.SecurityOpt {
		if strings.HasPrefix(o, "seccomp") {
			return fmt.Errorf("%w: service %s sets its own seccomp option (%s): Compose would pass both it and tailor's learning profile; remove it while learning", fail.ErrRefused, s.Name, o)
		}
	}
	return nil
}

// writeLearningOverride writes the learning profile and an override file that gives
// it to every learned service, into dir.
func writeLearningOverride(dir string, proj *Project, sel []Service, labels map[string]string) (string, error) {
	profile := filepath.Join(dir, "learning-seccomp.json")
	if err := os.WriteFile(profile, []byte(docker.LearningProfile()), 0o600); err != nil {
		return "", err
	}
	svcs := map[string]overrideService{}
	for _, s := range proj.Services {
		o := overrideService{Labels: labels}
		if slices.ContainsFunc(sel, func(x Service) bool { return x.Name == s.Name }) {
			o.SecurityOpt = []string{"seccomp=" + profile}
		}
		svcs[s.Name] = o
	}
	data, err := yaml.Marshal(overrideFile{Services: svcs})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "learn.override.yml")
	return path, os.WriteFile(path, data, 0o600)
}

func seconds(d time.Duration) string { return strconv.Itoa(int((d + time.Second - 1) / time.Second)) }

func countSyscalls(r *profiles.Recording) int {
	n := 0
	for _, s := range r.Syscalls {
		n += len(s.Names)
	}
	return n
}

func completeNote(r *profiles.Recording) string {
	if r.Complete {
		return ""
	}
	return " (INCOMPLETE: " + strings.Join(r.Incomplete, "; ") + ")"
}
