package learn

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/profiles"
)

// outputGrace is how long the copy's output may go on after the copy stopped: it
// ends at once unless a process outside the copy's pid namespace holds it open.
const outputGrace = 5 * time.Second

// attachedReason marks the recording of an attached run incomplete.
const attachedReason = "attached to a running container: its start-up was not seen"

// ContainerOptions adjust a container learning run beyond Options.
type ContainerOptions struct {
	// Attach traces the running container itself instead of a relaunched copy.
	Attach bool
	// CopyLabels are added to the copy's labels (tests mark their containers).
	CopyLabels map[string]string
}

// Container learns the Docker container nameOrID. By default it relaunches a copy of
// it under the learning seccomp profile (see package internal/docker), copies its output
// to opt.Stdout and opt.Stderr, traces the copy from its first filtered syscall until
// it exits, the duration ends, the workload
// (run in the copy's network namespace) finishes or a signal arrives, stops and
// removes it, and writes the recording. With Attach it traces the running container
// from now on and leaves it running.
func Container(ctx context.Context, nameOrID string, opt Options, copt ContainerOptions) (*Result, error) {
	opt.defaults()
	if err := checkOutput(opt.Output); err != nil {
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
	stale, err := dc.CleanupStale(ctx)
	if err != nil {
		return nil, err
	}
	if len(stale) > 0 {
		opt.Logger.Info("removed copies left by killed tailor runs", "containers", strings.Join(stale, ","))
	}
	ident, err := dc.Identity(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	target, err := tr.NewTarget()
	if err != nil {
		return nil, err
	}
	sess := NewSession(tr, target, false)
	sigs, stopSignals := notifySignals()
	defer stopSignals()
	tgt := profiles.Target{Kind: "container", Command: ident.Command(), Container: ident, Workload: opt.Workload}
	if copt.Attach {
		ident.Attached = true
		return attach(ctx, dc, tr, sess, sigs, &opt, tgt)
	}
	return relaunch(ctx, dc, tr, sess, sigs, &opt, copt, tgt)
}

// relaunch learns a copy of the container and removes it on every path.
func relaunch(ctx context.Context, dc *docker.Client, tr *bpf.Tracer, sess *Session, sigs <-chan os.Signal, opt *Options, copt ContainerOptions, tgt profiles.Target) (*Result, error) {
	cp, err := dc.PrepareCopy(ctx, tgt.Container.ID, docker.CopyOptions{Labels: copt.CopyLabels})
	if err != nil {
		return nil, err
	}
	// Remove and Stop ignore ctx's cancellation, so this also runs after Ctrl-C.
	defer func() {
		if err := cp.Remove(ctx); err != nil {
			opt.Logger.Warn("removing the copy", "container", cp.Name(), "error", err)
		}
	}()
	for _, w := range cp.Warnings() {
		opt.Logger.Warn("docker", "warning", w)
	}
	if err := tr.AddContainer(sess.Target(), cp.ID()); err != nil {
		return nil, err
	}
	defer tr.RemoveContainer(cp.ID())
	output, err := cp.Attach(ctx, opt.Stdout, opt.Stderr)
	if err != nil {
		return nil, err
	}
	defer output.Close()
	if err := cp.Start(ctx); err != nil {
		return nil, err
	}
	// The init's pid is read once, for the mount namespace the recording names and for
	// the workload's network namespace. A copy that already exited has neither.
	pid, pidErr := cp.Pid(ctx)
	var obs profiles.Observed
	var sampler *docker.CgroupSampler
	if pidErr == nil {
		tgt.Container.MntNS = mountNamespace(pid)
		if obs.User, err = processUser(pid); err != nil {
			opt.Logger.Warn("reading the container's user", "error", err)
		}
		if sampler, err = docker.SampleCgroup(pid); err != nil {
			opt.Logger.Warn("reading the container's cgroup", "error", err)
		}
	}
	if obs.User != nil {
		obs.User.Configured = configuredUser(tgt.Container)
	}
	// The copy is stopped on every way out of the loop, so its wait ends without ctx.
	exited := cp.Exited(ctx)
	l := &runLoop{tr: tr, sess: sess, opt: opt, sigs: sigs, exited: exited,
		stop: func(string) {
			// The cgroup goes with the copy: its last reading is taken first.
			if sampler != nil {
				obs.Resources = sampler.Stop()
			}
			go func() {
				if err := cp.Stop(ctx, opt.StopTimeout); err != nil {
					opt.Logger.Warn("stopping the copy", "container", cp.Name(), "error", err)
				}
			}()
		}}
	if opt.Workload != "" {
		l.workload = func() error {
			if pidErr != nil {
				return pidErr
			}
			return docker.RunWorkloadInNetns(ctx, pid, opt.Workload, opt.Stdout, opt.Stderr)
		}
	}
	out := l.run(ctx, nil)
	if out.res.Err != nil {
		return nil, out.res.Err
	}
	// The copy stopped: its output ends now, before the summary is printed.
	if err := output.Wait(outputGrace); err != nil {
		opt.Logger.Warn("copy output", "container", cp.Name(), "error", err)
	}
	// The copy still exists (it is removed on return): its file system gives the
	// interpreters of executables whose processes exited before they could be read.
	readInterpreters(ctx, dc, sess, opt, cp.ID())
	if sampler != nil {
		obs.Resources = sampler.Stop()
	}
	return finish(sess, opt, tgt, out, func(rec *profiles.Recording) {
		var files []profiles.FileAccess
		for _, f := range rec.Files {
			if !slices.Contains(docker.RuntimeFiles, f.Path) {
				files = append(files, f)
			}
		}
		obs.WrittenDirs = profiles.WrittenDirs(files)
		// The copy still exists (it is removed on return): its mounts and files say
		// where the written directories lie and what they hold.
		if err := dc.ClassifyWritten(ctx, cp.ID(), obs.WrittenDirs, changedPaths(files)); err != nil {
			opt.Logger.Warn("classifying written directories", "container", cp.Name(), "error", err)
		}
		rec.Observed = &obs
	})
}

// configuredUser is the user the container was configured with (Config.User).
func configuredUser(c *profiles.Container) string {
	cfg, _ := c.Config["Config"].(map[string]any)
	u, _ := cfg["User"].(string)
	return u
}

// attach learns the running container from now on. Its processes already installed
// their filter, so the filter-install hook cannot see them: they are added one by one,
// and the hook only catches later `docker exec`s. The container is left running.
func attach(ctx context.Context, dc *docker.Client, tr *bpf.Tracer, sess *Session, sigs <-chan os.Signal, opt *Options, tgt profiles.Target) (*Result, error) {
	id, initPid, err := dc.Running(ctx, tgt.Container.ID)
	if err != nil {
		return nil, err
	}
	if err := tr.AddContainer(sess.Target(), id); err != nil {
		return nil, err
	}
	defer tr.RemoveContainer(id)
	if err := tr.ContainerRunning(sess.Target()); err != nil {
		return nil, err
	}
	pids, err := docker.CgroupProcesses(id)
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err := tr.AddProcess(sess.Target(), pid, strings.TrimSpace(string(comm))); err != nil {
			return nil, err
		}
	}
	tgt.Container.MntNS = mountNamespace(initPid)
	opt.Logger.Debug("attached", "container", id[:12], "processes", len(pids), "mntns", tgt.Container.MntNS)

	// The container ends with its init; its exit status is Docker's to know, not the
	// kernel's (init is not tailor's child), so an ended container reports status 0.
	exited := make(chan proc.Exit, 2)
	initGone, err := proc.WatchExit(initPid)
	if err != nil {
		return nil, fmt.Errorf("%w: watching the container's init: %v", fail.ErrDocker, err)
	}
	detached := make(chan struct{})
	defer close(detached)
	defer initGone.Close()
	go func() {
		select {
		case <-initGone.Done():
			exited <- proc.Exit{}
		case <-detached:
		}
	}()
	l := &runLoop{tr: tr, sess: sess, opt: opt, sigs: sigs, exited: exited,
		// Detaching ends the run: the container is not ours to stop.
		stop: func(string) { exited <- proc.Exit{} }}
	if opt.Workload != "" {
		l.workload = func() error { return docker.RunWorkloadInNetns(ctx, initPid, opt.Workload, opt.Stdout, opt.Stderr) }
	}
	out := l.run(ctx, nil)
	if out.res.Err != nil {
		return nil, out.res.Err
	}
	readInterpreters(ctx, dc, sess, opt, id)
	return finish(sess, opt, tgt, out, nil, attachedReason)
}

// readInterpreters reads, through Docker, the ELF interpreters the session could not
// read through a live process of container id. What still fails leaves the recording
// incomplete, which says so; the log says why.
func readInterpreters(ctx context.Context, dc *docker.Client, sess *Session, opt *Options, id string) {
	if err := sess.ReadInterpreters(containerInterpreter(ctx, dc, id)); err != nil {
		opt.Logger.Warn("reading ELF interpreters from the container", "container", id[:12], "error", err)
	}
}

// mountNamespace is the inode number of pid's mount namespace, 0 if pid is gone.
func mountNamespace(pid int) uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/mnt", &st); err != nil {
		return 0
	}
	return st.Ino
}
