// Package watch is tailor's anomaly watcher: the tracer, in watch mode, follows a
// target confined by a profile bundle and reports what it does outside the bundle.
// The kernel judges syscalls (at their exit, with the errno a filter gave), socket
// families, capability checks and refused opens and execs; this package judges the
// files and programs the target did open and run against the bundle's file and exec
// rules, deduplicates, and writes one JSON line per anomaly and a readable line for
// a terminal. enforce and the node agent use the watcher; `tailor watch` (cli.go)
// attaches it to a running container, with its metrics (metrics.go).
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// Options configure a Watcher.
type Options struct {
	// JSON receives one JSON line per report; nil for none.
	JSON io.Writer
	// Human receives a readable line per report (a terminal); nil for none.
	Human io.Writer
	// Logger receives notes and loss warnings; nil: slog.Default.
	Logger *slog.Logger
	// RepeatEvery is how often a repeating anomaly is reported again with its
	// count; 0 means 10 seconds.
	RepeatEvery time.Duration
	// MaxShown bounds the distinct anomalies reported line by line; further ones
	// are counted. 0 means 1000.
	MaxShown int
	// Close is closed by Stop (the --anomalies file).
	Close io.Closer
	// Targets is how many targets the tracer follows at once (bpf.Options.Targets);
	// 0 means as many as it has.
	Targets int
}

// ErrNoSlot is Watch's error when the tracer follows as many targets as it can: a
// later Watch may succeed once another target is unwatched.
var ErrNoSlot = bpf.ErrNoSlot

// Watcher implements enforce.Watcher with the tracer.
type Watcher struct {
	opt Options
	log *slog.Logger
	rep *reporter

	mu      sync.Mutex
	tr      *bpf.Tracer
	targets map[uint32]*target
	lost    uint64
	// late counts events of targets that had ended (Unwatch) when they were handled:
	// part of lost.
	late atomic.Uint64
	// endedRefused sums refusedElsewhere of the targets that ended, for the run's
	// summary.
	endedRefused uint64
	// syncs hands the event loop work to do once it has handled every event on the
	// channel (inLoop).
	syncs   chan func()
	lostBy  map[string]uint64
	stop    chan struct{}
	done    chan struct{}
	stopped bool
}

// target is one watched target and its compiled profile.
type target struct {
	id        uint32
	name      string
	container string
	// label is the watch target's label (a Compose service), copied into reports.
	label string
	// containerID (full) and pid are what Watch was given, for Unwatch.
	containerID string
	pid         int
	// lostAtStart is the watcher's loss count when the watch began.
	lostAtStart uint64
	policy      *enforce.Policy
	rules       *fileRules
	allowed     map[string]bool // "SCMP_ARCH_X86_64/read"
	// enforced are the file rules the kernel applies to the target (Landlock), nil
	// when none are applied locally.
	enforced enforce.FileRules
	// paths maps the kernel's key of a refused operation to its report key ("" for a
	// refusal that was not the profile's).
	paths map[uint64]string
	// evicted counts paths forgotten at maxPaths.
	evicted uint64
	// refusedElsewhere counts refusals the profile's rules grant: file permissions
	// or another security module refused them, not the profile.
	refusedElsewhere uint64
	// failed are the bundle's learned failed attempts: the same failure again is
	// the program's own behaviour.
	failed []failedRule
	// peers are the learned connect and send destinations, unix paths as globs.
	peers []peerRule
}

type failedRule struct {
	re     *regexp.Regexp
	access []string
	errno  string
}

type peerRule struct {
	kind   int // bpf.NetConnect, bpf.NetSend, or -1 for a failed connect
	family string
	addr   *regexp.Regexp
	port   uint16
	errno  string
}

// New returns a Watcher; the tracer is loaded by the first Watch.
func New(opt Options) *Watcher {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.RepeatEvery <= 0 {
		opt.RepeatEvery = 10 * time.Second
	}
	if opt.MaxShown <= 0 {
		opt.MaxShown = 1000
	}
	return &Watcher{opt: opt, log: opt.Logger, rep: newReporter(opt.JSON, opt.Human, opt.RepeatEvery, opt.MaxShown),
		targets: map[uint32]*target{}, syncs: make(chan func())}
}

// ForCLI is the enforce.WatcherFactory of the tailor command: JSON lines go to the
// --anomalies file (appended, mode 0600) or, without one, to stdout unless stdout is
// a terminal; readable lines go to stderr when it is a terminal.
func ForCLI(anomaliesPath string) (enforce.Watcher, error) {
	opt := Options{}
	isTTY := func(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
	switch {
	case anomaliesPath != "":
		f, err := os.OpenFile(anomaliesPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("%w: --anomalies: %v", fail.ErrBadInput, err)
		}
		opt.JSON, opt.Close = f, f
	case !isTTY(os.Stdout):
		opt.JSON = os.Stdout
	}
	if isTTY(os.Stderr) || opt.JSON == nil {
		opt.Human = os.Stderr
	}
	return New(opt), nil
}

// Watch starts watching t under p. It loads the tracer on first use. A target is
// watched until Unwatch or Stop; one that could not be watched takes no tracer slot.
func (w *Watcher) Watch(ctx context.Context, t enforce.WatchTarget, p *enforce.Policy) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return errors.New("watcher already stopped")
	}
	tg, wp, err := compile(p)
	if err != nil {
		return err
	}
	tg.enforced = t.Files
	tg.label = t.Label
	tg.containerID, tg.pid = t.ContainerID, t.Pid
	tg.lostAtStart = w.lost
	if t.ContainerID != "" && t.Running {
		if err := underFilter(t.ContainerID); err != nil {
			return err
		}
	}
	if err := w.open(); err != nil {
		return err
	}
	if tg.id, err = w.tr.NewTarget(); err != nil {
		return err
	}
	if err := w.follow(tg, t, wp); err != nil {
		delete(w.targets, tg.id)
		if rerr := w.tr.ReleaseTarget(tg.id); rerr != nil {
			w.log.Warn("releasing a target that could not be watched", "error", rerr)
		}
		return err
	}
	return nil
}

// follow gives the tracer tg's policy and processes; w.mu is held.
func (w *Watcher) follow(tg *target, t enforce.WatchTarget, wp bpf.WatchPolicy) error {
	if err := w.tr.Watch(tg.id, wp); err != nil {
		return err
	}
	w.targets[tg.id] = tg
	switch {
	case t.Pid > 0:
		if err := w.tr.AddProcess(tg.id, t.Pid, comm(t.Pid)); err != nil {
			return err
		}
	case t.ContainerID != "":
		tg.container = t.ContainerID[:min(12, len(t.ContainerID))]
		if err := w.tr.AddContainer(tg.id, t.ContainerID); err != nil {
			return err
		}
		if t.Running {
			if err := w.tr.ContainerRunning(tg.id); err != nil {
				return err
			}
			pids, err := docker.CgroupProcesses(t.ContainerID)
			if err != nil {
				return err
			}
			for _, pid := range pids {
				if err := w.tr.AddProcess(tg.id, pid, comm(pid)); err != nil {
					return err
				}
			}
		}
	default:
		return errors.New("watch: no pid and no container given")
	}
	return nil
}

// Open loads the tracer now rather than at the first Watch, so a target that comes
// later (the node agent's next container) is followed at once.
func (w *Watcher) Open() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return errors.New("watcher already stopped")
	}
	return w.open()
}

// open loads the tracer if it is not loaded; w.mu is held.
func (w *Watcher) open() error {
	if w.tr != nil {
		return nil
	}
	tr, err := bpf.Open(bpf.Options{Watch: true, Logger: w.log, Targets: w.opt.Targets})
	if err != nil {
		return err
	}
	w.tr = tr
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.loop()
	return nil
}

// underFilter refuses a running container whose init runs without a seccomp filter:
// the tracer follows only processes under one, so watching it would report nothing.
func underFilter(id string) error {
	pids, err := docker.CgroupProcesses(id)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("%w: container %s has no processes to watch", fail.ErrDocker, id[:min(12, len(id))])
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pids[0]) + "/status")
	if err != nil {
		return fmt.Errorf("%w: reading the container's processes: %v", fail.ErrDocker, err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok && strings.TrimSpace(v) != "2" {
			return fmt.Errorf("%w: container %s runs without a seccomp filter (seccomp=unconfined?): tailor follows only processes under one; run it with the bundle's seccomp.json", fail.ErrRefused, id[:min(12, len(id))])
		}
	}
	return nil
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// compile turns a policy into the kernel's watch policy and the file matcher.
func compile(p *enforce.Policy) (*target, bpf.WatchPolicy, error) {
	tg := &target{name: p.Bundle.Name, policy: p, allowed: map[string]bool{}, paths: map[uint64]string{}}
	wp := bpf.WatchPolicy{Syscalls: map[bpf.Table][]int{}}
	for _, as := range p.Bundle.Syscalls {
		tbl, ok := bpf.TableOf(as.Arch)
		if !ok {
			continue // an architecture this machine does not run: nothing to watch there
		}
		for _, name := range as.Names {
			tg.allowed[string(as.Arch)+"/"+name] = true
			if nr, ok := bpf.SyscallNumber(tbl, name); ok {
				wp.Syscalls[tbl] = append(wp.Syscalls[tbl], nr)
			}
		}
	}
	// Syscalls the profile answers with ENOSYS are its design, not the target's
	// misstep: libc tries them (clone3, faccessat2...) and falls back.
	for _, rule := range p.Seccomp.Syscalls {
		if rule.Action != specs.ActErrno || rule.ErrnoRet == nil || *rule.ErrnoRet != uint(unix.ENOSYS) || len(rule.Args) > 0 {
			continue
		}
		for _, as := range p.Bundle.Syscalls {
			tbl, ok := bpf.TableOf(as.Arch)
			if !ok {
				continue
			}
			for _, name := range rule.Names {
				if nr, ok := bpf.SyscallNumber(tbl, name); ok {
					wp.Syscalls[tbl] = append(wp.Syscalls[tbl], nr)
				}
			}
		}
	}
	for _, c := range p.Capabilities {
		wp.Capabilities = append(wp.Capabilities, int(c))
	}
	for _, f := range p.Bundle.SocketFamilies {
		n, ok := profiles.FamilyNumber(f)
		if !ok {
			return nil, wp, fmt.Errorf("%w: bundle %s: unknown socket family %q", fail.ErrRefused, p.Dir, f)
		}
		wp.Families = append(wp.Families, n)
	}
	rules, err := compileFileRules(p.Bundle.Files, p.Bundle.Execs)
	if err != nil {
		return nil, wp, fmt.Errorf("%w: bundle %s: %v", fail.ErrRefused, p.Dir, err)
	}
	tg.rules = rules
	for _, f := range p.Bundle.Failed {
		re, err := globToRegexp(f.Pattern)
		if err != nil {
			return nil, wp, fmt.Errorf("%w: bundle %s: failed attempt: %v", fail.ErrRefused, p.Dir, err)
		}
		tg.failed = append(tg.failed, failedRule{re: re, access: f.Access, errno: f.Errno})
	}
	n := p.Bundle.Network
	for _, l := range []struct {
		kind  int
		peers []profiles.Peer
	}{{bpf.NetConnect, n.Connects}, {bpf.NetSend, n.Sends}, {-1, n.FailedConnects}} {
		for _, pe := range l.peers {
			glob := pe.Address
			if pe.Family != "AF_UNIX" || !strings.HasPrefix(glob, "/") {
				glob = escapeGlobChars(glob)
			}
			re, err := globToRegexp(glob)
			if err != nil {
				return nil, wp, fmt.Errorf("%w: bundle %s: peer %q: %v", fail.ErrRefused, p.Dir, pe.Address, err)
			}
			tg.peers = append(tg.peers, peerRule{kind: l.kind, family: pe.Family, addr: re, port: pe.Port, errno: pe.Errno})
		}
	}
	return tg, wp, nil
}

// Stats reports the running totals: the same counts as the anomalies file's
// closing summary record.
func (w *Watcher) Stats() enforce.WatchStats {
	byKind, _ := w.rep.counts()
	s := w.rep.bounds()
	w.mu.Lock()
	defer w.mu.Unlock()
	s.Anomalies, s.Lost, s.Targets = byKind, w.lost, len(w.targets)
	s.LostBy = make(map[string]uint64, len(w.lostBy))
	for k, v := range w.lostBy {
		s.LostBy[k] = v
	}
	s.RefusedElsewhere = w.endedRefused // of the targets that ended (Unwatch)
	for _, tg := range w.targets {
		s.RefusedElsewhere += tg.refusedElsewhere
	}
	return s
}

// Stop reports what is still pending, including anomalies the kernel counted but whose
// events were lost, unloads the tracer and returns the number of anomalies seen.
func (w *Watcher) Stop() (int, error) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		_, total := w.rep.counts()
		return int(total), nil
	}
	w.stopped = true
	tr := w.tr
	w.mu.Unlock()
	var err error
	if tr != nil {
		tr.Flush()
		close(w.stop)
		<-w.done
		w.reconcileAll()
		w.checkLoss()
		tr.Close()
	}
	s := w.Stats()
	w.rep.final(finalFacts{lost: s.Lost, lostBy: s.LostBy, refusedElsewhere: s.RefusedElsewhere})
	if w.opt.Close != nil {
		if cerr := w.opt.Close.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the anomalies file: %w", cerr)
		}
	}
	if w.rep.err != nil {
		err = w.rep.err
	}
	_, total := w.rep.counts()
	return int(total), err
}

// loop handles events until Stop, then drains what the flush put on the channel.
func (w *Watcher) loop() {
	defer close(w.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	events := w.tr.Events()
	drain := func() {
		for {
			select {
			case ev := <-events:
				w.handle(ev)
			default:
				return
			}
		}
	}
	for {
		select {
		case ev := <-events:
			w.handle(ev)
		case <-tick.C:
			w.rep.tick()
			w.checkLoss()
		case fn := <-w.syncs:
			drain()
			fn()
		case <-w.stop:
			drain()
			return
		}
	}
}

// inLoop runs fn in the event loop once every event the kernel wrote before the call
// has been handled, so that no event is being handled while fn runs.
func (w *Watcher) inLoop(tr *bpf.Tracer, fn func()) error {
	tr.Flush()
	ran := make(chan struct{})
	select {
	case w.syncs <- func() { fn(); close(ran) }:
		<-ran
		return nil
	case <-w.done:
		return errors.New("watcher already stopped")
	}
}

// Unwatch stops watching the target Watch was given t for (the same ContainerID, or
// Pid): every event of it the kernel wrote is handled, the kernel's final counts of
// its anomalies are reported (repeats since the last line, anomalies whose events
// were lost), the last lines of its anomalies and its summary record are written
// (Summary, with its target and container), and its tracer slot is released for the
// next Watch. The node agent calls it when a container stops. Events of the target
// that reach the watcher afterwards (a program still running on another CPU when its
// processes were cut off) are counted as lost.
func (w *Watcher) Unwatch(t enforce.WatchTarget) error {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return errors.New("watcher already stopped")
	}
	var ending []*target
	for _, id := range sortedIDs(w.targets) {
		tg := w.targets[id]
		if (t.ContainerID != "" && tg.containerID == t.ContainerID) || (t.Pid > 0 && tg.pid == t.Pid) {
			ending = append(ending, tg)
		}
	}
	tr := w.tr
	w.mu.Unlock()
	if len(ending) == 0 {
		return fmt.Errorf("watch: %s is not watched", describeTarget(t))
	}
	var errs []error
	for _, tg := range ending {
		// Nothing new joins the target from here on; what it did so far is handled
		// and counted before its entries go.
		if err := tr.Unfollow(tg.id); err != nil {
			errs = append(errs, err)
		}
	}
	err := w.inLoop(tr, func() {
		w.checkLoss()
		for _, tg := range ending {
			w.reconcile(tg)
			w.mu.Lock()
			delete(w.targets, tg.id)
			w.endedRefused += tg.refusedElsewhere
			lost := w.lost - tg.lostAtStart
			w.mu.Unlock()
			if err := tr.ReleaseTarget(tg.id); err != nil {
				errs = append(errs, err)
			}
			w.rep.endTarget(tg.id, Summary{Target: tg.name, Service: tg.label, Container: tg.container,
				Lost: lost, RefusedElsewhere: tg.refusedElsewhere})
		}
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func describeTarget(t enforce.WatchTarget) string {
	if t.ContainerID != "" {
		return "container " + t.ContainerID[:min(12, len(t.ContainerID))]
	}
	return "pid " + strconv.Itoa(t.Pid)
}

// sortedIDs returns the ids of targets in order.
func sortedIDs(targets map[uint32]*target) []uint32 {
	ids := make([]uint32, 0, len(targets))
	for id := range targets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// checkLoss warns once per increase of the tracer's loss counters.
func (w *Watcher) checkLoss() {
	c, err := w.tr.Counters()
	if err != nil {
		return
	}
	late := w.late.Load()
	by := map[string]uint64{
		"ringbufDrops": c.RingbufDrops, "tasksFull": c.TasksFull, "capsFull": c.CapsFull, "netFull": c.NetFull,
		"containersFull": c.ContainersFull, "anomaliesFull": c.AnomaliesFull, "decodeErrors": c.DecodeErrors,
		"channelDrops": c.ChannelDrops, "argsUnreadable": c.ArgsUnreadable,
		// events of a target that had ended (Unwatch) when they were handled
		"lateEvents": late,
	}
	var lost uint64
	for k, v := range by {
		lost += v
		if v == 0 {
			delete(by, k)
		}
	}
	w.mu.Lock()
	prev := w.lost
	w.lost, w.lostBy = lost, by
	w.mu.Unlock()
	if lost > prev {
		w.log.Warn("observations lost: anomalies may be missing", "lost", lost, "counters", fmt.Sprintf("%+v", c), "lateEvents", late)
	}
}

func (w *Watcher) target(id uint32) *target {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.targets[id]
}

func (w *Watcher) base(tg *target, pid uint32, comm string, dockerExec bool) Anomaly {
	a := Anomaly{Target: tg.name, Service: tg.label, Container: tg.container, Pid: int(pid), Comm: comm, DockerExec: dockerExec}
	if pid > 0 {
		a.Executable, _ = os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	}
	return a
}

func (w *Watcher) handle(ev bpf.Event) {
	tg := w.target(eventTarget(ev))
	if tg == nil {
		// Only a target that ended has no state: its event came too late.
		w.late.Add(1)
		return
	}
	switch e := ev.(type) {
	case *bpf.FileEvent:
		if e.Runtime {
			return
		}
		if e.Abstract {
			w.abstractPeer(tg, e)
			return
		}
		first, second := bpf.AccessKinds(e.Access)
		if e.Denied {
			w.denied(tg, e, first, second)
			return
		}
		if e.Err == -int32(unix.EROFS) {
			w.readOnly(tg, e, first, second)
			return
		}
		if e.Err != 0 {
			return // failed for its own reasons: refusals in watch mode come as Denied
		}
		w.fileUse(tg, e, e.Path, first)
		if e.Path2 != "" {
			w.fileUse(tg, e, e.Path2, second)
		}
	case *bpf.NetEvent:
		w.netUse(tg, e)
	case *bpf.ExecEvent:
		if tg.rules.execAllowed(e.Filename) {
			return
		}
		a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
		a.Kind, a.Action = "exec", "allowed"
		a.Detail = "exec of " + e.Filename + " by " + e.By
		a.Rule = e.Filename + " is not among the programs the profile runs"
		a.Category, a.Severity = classify(subject{kind: "exec", path: e.Filename})
		w.observe(tg, "exec|"+e.Filename, a, 1, false)
	case *bpf.AnomalyEvent:
		a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
		key, ok := w.describe(tg, e, &a)
		if ok {
			w.observe(tg, key, a, e.Count, true)
		}
	}
}

// observe reports one anomaly of tg. The key is the target's own: the same
// behaviour in two targets (two containers watched at once by the node agent) is two
// anomalies, each with its container and count.
func (w *Watcher) observe(tg *target, key string, a Anomaly, n uint64, cumulative bool) {
	w.rep.observe(tg.id, key, a, n, cumulative)
}

// eventTarget is the target id an event carries.
func eventTarget(ev bpf.Event) uint32 {
	switch e := ev.(type) {
	case *bpf.FileEvent:
		return e.Target
	case *bpf.ExecEvent:
		return e.Target
	case *bpf.AnomalyEvent:
		return e.Target
	case *bpf.NetEvent:
		return e.Target
	}
	return 0
}

// describe fills in a kernel anomaly's kind, detail, rule and action, and returns its
// report key; ok=false for a refused access the profile allows (the refusal came from
// elsewhere, file permissions for example).
func (w *Watcher) describe(tg *target, e *bpf.AnomalyEvent, a *Anomaly) (string, bool) {
	result := "succeeded"
	a.Action = "allowed"
	if e.Ret < 0 {
		result = "returned " + unix.ErrnoName(unix.Errno(-e.Ret))
		switch unix.Errno(-e.Ret) {
		case unix.EPERM, unix.EACCES, unix.ENOSYS:
			a.Action = "blocked"
		}
	}
	switch e.Kind {
	case bpf.AnomalySyscall:
		arch, name, ok := bpf.SyscallName(e.Table, int(e.Value))
		if !ok {
			name = "#" + strconv.FormatUint(e.Value, 10)
		}
		a.Kind = "syscall"
		a.Detail = name + " " + result
		a.Rule = "seccomp.json does not allow " + name + " on " + string(arch)
		a.Category, a.Severity = classify(subject{kind: "syscall", syscall: name})
		return "syscall|" + string(arch) + "|" + name, true
	case bpf.AnomalySocket:
		fam := profiles.FamilyName(int(e.Value))
		arch, _ := bpf.ArchOf(e.Table)
		a.Kind = "socket"
		a.Detail = "socket(" + fam + ") " + result
		if tg.allowed[string(arch)+"/socket"] {
			a.Rule = "socket family " + fam + " is not in the profile"
		} else {
			a.Rule = "seccomp.json does not allow socket"
		}
		a.Category, a.Severity = classify(subject{kind: "socket", family: fam})
		return "socket|" + fam, true
	case bpf.AnomalyCapability:
		name := profiles.CapabilityName(int(e.Value))
		a.Kind = "capability"
		if e.Ret == 0 {
			a.Detail, a.Action = "check for "+name+" granted", "allowed"
		} else {
			a.Detail, a.Action = "check for "+name+" denied", "blocked"
		}
		a.Rule = "capabilities.json does not keep " + name
		a.Category, a.Severity = classify(subject{kind: "capability", capability: name})
		return "capability|" + name, true
	}
	return "", false
}

// dirPath is how a directory's path appears in the file rules: with a trailing slash.
func dirPath(p string, dir bool) string {
	if dir && !strings.HasSuffix(p, "/") {
		return p + "/"
	}
	return p
}

// isDirIn reports whether path is a directory as process pid sees it (its parent's
// symlinks resolved in the process's root, the last component not, as learning names
// it); false when the process is gone.
func isDirIn(pid int, path string) bool {
	parent, err := securejoin.SecureJoin("/proc/"+strconv.Itoa(pid)+"/root", filepath.Dir(path))
	if err != nil {
		return false
	}
	st, err := os.Lstat(filepath.Join(parent, filepath.Base(path)))
	return err == nil && st.IsDir()
}

// isDirOp reports whether an operation's kinds act on a directory.
func isDirOp(kinds []string, dir bool) bool {
	return dir || slices.Contains(kinds, profiles.AccessMkdir) || slices.Contains(kinds, profiles.AccessRmdir) ||
		slices.Contains(kinds, profiles.AccessList)
}

// learnedFailure reports whether the bundle learned this failure: the same path
// pattern, errno and access kinds.
func (tg *target) learnedFailure(path string, kinds []string, errno string) bool {
	for _, f := range tg.failed {
		if f.errno == errno && f.re.MatchString(path) && !slices.ContainsFunc(kinds, func(k string) bool { return !slices.Contains(f.access, k) }) {
			return true
		}
	}
	return false
}

// knownPeer reports whether a connect or send to (family, address, port) was learned;
// errno "" for one that succeeded (or is in progress).
func (tg *target) knownPeer(kind int, family, addr string, port uint16, errno string) bool {
	for _, p := range tg.peers {
		if p.family != family || !p.addr.MatchString(addr) || (p.port != 0 && p.port != port) {
			continue
		}
		switch {
		case errno == "" && (p.kind == kind || (kind == bpf.NetSend && p.kind == bpf.NetConnect)):
			return true
		case errno != "" && (p.kind == -1 && p.errno == errno || p.kind == kind):
			// A learned failure, or a peer that worked while learning and fails now
			// for its own reasons (the server is down).
			return true
		}
	}
	return false
}

// netUse judges a new connect, send or accept: a peer outside the learned set is an
// anomaly, blocked when the kernel refused it (Landlock's port rules), reported
// always.
func (w *Watcher) netUse(tg *target, e *bpf.NetEvent) {
	u := e.Use
	fam := profiles.FamilyName(u.Family)
	errno := ""
	if u.Err != 0 {
		errno = unix.ErrnoName(unix.Errno(-u.Err))
	}
	var what, key string
	switch u.Kind {
	case bpf.NetConnect, bpf.NetSend:
		if tg.knownPeer(u.Kind, fam, u.Addr.String(), uint16(u.Port), errno) {
			return
		}
		verb := "connect to"
		if u.Kind == bpf.NetSend {
			verb = "datagram sent to"
		}
		what = fmt.Sprintf("%s %s port %d (%s)", verb, u.Addr, u.Port, fam)
		key = fmt.Sprintf("net|%d|%s|%s|%d", u.Kind, fam, u.Addr, u.Port)
	case bpf.NetAccept:
		for _, ports := range [][]profiles.Port{tg.policy.Bundle.Network.Accepts, tg.policy.Bundle.Network.Listens, tg.policy.Bundle.Network.Binds} {
			for _, p := range ports {
				if p.Family == fam && int(p.Port) == u.Port {
					return
				}
			}
		}
		what = fmt.Sprintf("connection accepted on port %d (%s)", u.Port, fam)
		key = fmt.Sprintf("net|accept|%s|%d", fam, u.Port)
	default:
		return
	}
	a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
	a.Kind, a.Action = "network", "allowed"
	a.Detail = what
	if errno != "" {
		a.Detail += " returned " + errno
		if u.Err == -int32(unix.EACCES) || u.Err == -int32(unix.EPERM) {
			a.Action = "blocked"
		}
	}
	a.Rule = "bundle.json's network part has no such peer or port"
	a.Category, a.Severity = classify(subject{kind: "network", inbound: u.Kind == bpf.NetAccept})
	w.observe(tg, key, a, 1, false)
}

// abstractPeer judges a connect or send to an abstract unix socket: its name must be
// among the learned peers.
func (w *Watcher) abstractPeer(tg *target, e *bpf.FileEvent) {
	if e.Access&bpf.AccConnect == 0 {
		return
	}
	errno := ""
	if e.Err != 0 {
		errno = unix.ErrnoName(unix.Errno(-e.Err))
	}
	name := "@" + e.Path
	if tg.knownPeer(bpf.NetConnect, "AF_UNIX", name, 0, errno) || tg.knownPeer(bpf.NetSend, "AF_UNIX", name, 0, errno) {
		return
	}
	a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
	a.Kind, a.Action = "network", "allowed"
	a.Detail = "connect to abstract unix socket " + name
	if errno != "" {
		a.Detail += " returned " + errno
	}
	a.Rule = "bundle.json's network part has no such peer"
	a.Category, a.Severity = classify(subject{kind: "network"})
	w.observe(tg, "net|abstract|"+name, a, 1, false)
}

// escapeGlobChars makes an address match only itself when read as a glob.
func escapeGlobChars(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]{}\@`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fileUse judges a file access that happened against the bundle's file rules: in
// complain mode, or where the rules are only watched (a container on a host without
// AppArmor), what the rules do not grant is reported as allowed.
func (w *Watcher) fileUse(tg *target, e *bpf.FileEvent, path string, kinds []string) {
	// An operation read from a syscall's arguments (chown, chmod of a directory) does
	// not say whether its target is a directory, which the rules name with a trailing
	// slash as AppArmor does: the target's own root tells.
	path = dirPath(path, isDirOp(kinds, e.Dir) || (e.Args && isDirIn(int(e.Pid), path)))
	missing := tg.rules.missing(path, kinds)
	if slices.Contains(kinds, profiles.AccessExec) && tg.rules.execAllowed(strings.TrimSuffix(path, "/")) {
		missing = slices.DeleteFunc(missing, func(k string) bool { return k == profiles.AccessExec })
	}
	if len(missing) == 0 {
		return
	}
	a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
	a.Kind, a.Action = "file", "allowed"
	a.Detail = strings.Join(missing, ", ") + " of " + path
	a.Rule = "no file rule of apparmor.profile grants " + strings.Join(missing, ", ") + " on " + path
	a.Category, a.Severity = classify(subject{kind: "file", path: strings.TrimSuffix(path, "/"), access: missing})
	if slices.Contains(kinds, profiles.AccessExec) {
		a.Category, a.Severity = classify(subject{kind: "exec", path: strings.TrimSuffix(path, "/")})
	}
	w.observe(tg, "used|"+path+"|"+strings.Join(missing, ","), a, 1, false)
}

// denied judges an operation the kernel refused with EACCES or EPERM. It is the
// profile's refusal when the rules the kernel enforces (Landlock) do not grant it,
// whatever the AppArmor globs say; without enforced file rules, when the bundle's
// rules do not grant it. Otherwise file permissions (or another module) refused it:
// the program's own failure, counted but not an anomaly.
func (w *Watcher) denied(tg *target, e *bpf.FileEvent, first, second []string) {
	name := ""
	arch, n, ok := bpf.SyscallName(e.Table, int(e.Nr))
	if ok {
		name = n
		if !tg.allowed[string(arch)+"/"+name] {
			// The seccomp filter refused the call itself: the syscall anomaly says
			// so, and no file rule was ever asked.
			w.mu.Lock()
			tg.paths[e.Key] = ""
			w.mu.Unlock()
			return
		}
	}
	dir := isDirOp(first, e.Dir)
	var missing []string
	var rule string
	if tg.enforced != nil {
		if !tg.enforced.Grants(first, e.Path, e.Path2, dir, name) ||
			(e.Path2 != "" && !tg.enforced.Grants(second, e.Path2, e.Path, dir, name)) {
			missing = append(slices.Clone(first), second...)
			rule = "the Landlock rules enforced from the bundle do not grant " + strings.Join(missing, ", ")
		}
	} else {
		missing = tg.rules.missing(dirPath(e.Path, dir), first)
		if e.Path2 != "" {
			missing = append(missing, tg.rules.missing(dirPath(e.Path2, dir), second)...)
		}
		if slices.Contains(first, profiles.AccessExec) && !tg.rules.execAllowed(e.Path) && len(missing) == 0 {
			missing = []string{profiles.AccessExec}
		}
		rule = "no file rule of apparmor.profile grants " + strings.Join(missing, ", ")
	}
	if len(missing) == 0 || tg.learnedDenial(e, first, second) {
		// Remembered as judged, so the final reconcile does not take it for a
		// refusal whose event was lost.
		w.mu.Lock()
		if _, seen := tg.paths[e.Key]; !seen {
			tg.refusedElsewhere++
		}
		tg.rememberPath(e.Key, "")
		w.mu.Unlock()
		return
	}
	a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
	a.Action = "blocked"
	result := "returned " + unix.ErrnoName(unix.Errno(-e.Err))
	target := e.Path
	if e.Path2 != "" {
		target += " -> " + e.Path2
	}
	key := "denied|" + name + "|" + target + "|" + strings.Join(missing, ",")
	if slices.Contains(first, profiles.AccessExec) {
		a.Kind = "exec"
		a.Detail = "exec of " + e.Path + " " + result
		a.Rule = e.Path + " is not among the programs the profile runs"
		key = "exec|" + e.Path
	} else {
		a.Kind = "file"
		op := strings.Join(first, ", ")
		if name != "" {
			op = name + " (" + op + ")"
		}
		a.Detail = op + " of " + target + " " + result
		a.Rule = rule + " on " + target
	}
	a.Category, a.Severity = classify(subject{kind: a.Kind, syscall: name, path: e.Path, access: missing})
	w.mu.Lock()
	tg.rememberPath(e.Key, key)
	w.mu.Unlock()
	w.observe(tg, key, a, e.Count, true)
}

// maxPaths bounds the refused operations a target's watch remembers: twice the
// kernel's anomalies map, whose keys are what reconcile looks up.
var maxPaths = 2 * 16384

// rememberPath keeps the report key of a refused operation's kernel key. At the bound
// an arbitrary older key is forgotten and counted (evicted), so a target that is
// refused endless distinct paths cannot grow a long watch's memory; reconcile says
// when a count's path was forgotten.
func (tg *target) rememberPath(k uint64, key string) {
	if _, ok := tg.paths[k]; !ok && len(tg.paths) >= maxPaths {
		for old := range tg.paths {
			delete(tg.paths, old)
			tg.evicted++
			break
		}
	}
	tg.paths[k] = key
}

// readOnly judges a change a read-only file system refused (EROFS): in a container
// run with the hardened configuration, the read-only root filesystem, which blocks
// writes outside the directories learned as written (given a tmpfs or a volume). A
// change no file rule grants is an anomaly that configuration blocked, as the step
// of an intruder writing below /etc or /usr is; one the rules grant, or a repeat of
// a failure learned with EROFS, is the program's own failure. The kernel sends each
// distinct (operation, path) once.
func (w *Watcher) readOnly(tg *target, e *bpf.FileEvent, first, second []string) {
	if !slices.ContainsFunc(append(slices.Clone(first), second...), isWriteKind) {
		return
	}
	dir := isDirOp(first, e.Dir)
	missing := tg.rules.missing(dirPath(e.Path, dir), first)
	if e.Path2 != "" {
		missing = append(missing, tg.rules.missing(dirPath(e.Path2, dir), second)...)
	}
	if len(missing) == 0 || tg.learnedDenial(e, first, second) {
		return
	}
	name := ""
	if _, n, ok := bpf.SyscallName(e.Table, int(e.Nr)); ok {
		name = n
	}
	target := e.Path
	if e.Path2 != "" {
		target += " -> " + e.Path2
	}
	op := strings.Join(first, ", ")
	if name != "" {
		op = name + " (" + op + ")"
	}
	a := w.base(tg, e.Pid, e.Comm, e.DockerExec)
	a.Kind, a.Action = "file", "blocked"
	a.Detail = op + " of " + target + " returned EROFS"
	a.Rule = "no file rule of apparmor.profile grants " + strings.Join(missing, ", ") + " on " + target + "; the read-only root filesystem refused it"
	a.Category, a.Severity = classify(subject{kind: "file", syscall: name, path: e.Path, access: missing})
	w.observe(tg, "erofs|"+name+"|"+target+"|"+strings.Join(missing, ","), a, 1, false)
}

// learnedDenial reports whether a refusal repeats a failure learned with the same
// errno on every name it names.
func (tg *target) learnedDenial(e *bpf.FileEvent, first, second []string) bool {
	errno := unix.ErrnoName(unix.Errno(-e.Err))
	if !tg.learnedFailure(e.Path, first, errno) {
		return false
	}
	return e.Path2 == "" || tg.learnedFailure(e.Path2, second, errno)
}

// reconcileAll takes the kernel's final counts of every target (reconcile).
func (w *Watcher) reconcileAll() {
	w.mu.Lock()
	targets := make([]*target, 0, len(w.targets))
	for _, id := range sortedIDs(w.targets) {
		targets = append(targets, w.targets[id])
	}
	w.mu.Unlock()
	for _, tg := range targets {
		w.reconcile(tg)
	}
}

// reconcile takes the kernel's final counts of tg, so repeats after the last event,
// and anomalies whose events were lost, are in the report too.
func (w *Watcher) reconcile(tg *target) {
	for _, c := range w.tr.Anomalies(tg.id) {
		a := Anomaly{Target: tg.name, Service: tg.label, Container: tg.container}
		var key string
		switch c.Kind {
		case bpf.AnomalyFileDenied:
			w.mu.Lock()
			k, ok := tg.paths[c.Value]
			w.mu.Unlock()
			if ok && k == "" {
				continue // refused by something else than the profile
			}
			if !ok {
				// Its event was lost (counted as such), or its path forgotten at
				// maxPaths: say so rather than drop it.
				a.Kind, a.Action = "file", "blocked"
				a.Detail = "a refused file operation whose path was lost"
				w.mu.Lock()
				if tg.evicted > 0 {
					a.Detail = fmt.Sprintf("a refused file operation whose path was lost or forgotten (%d paths forgotten past tailor's bound of %d)", tg.evicted, maxPaths)
				}
				w.mu.Unlock()
				a.Rule = "file and exec rules"
				a.Category, a.Severity = CatFile, SeverityMedium
				k = "lostpath|" + strconv.FormatUint(c.Value, 16)
			}
			key = k
		default:
			var ok bool
			key, ok = w.describe(tg, &bpf.AnomalyEvent{Kind: c.Kind, Table: c.Table, Value: c.Value, Ret: -int64(unix.EPERM)}, &a)
			if !ok {
				continue
			}
		}
		w.observe(tg, key, a, c.Count, true)
	}
}
