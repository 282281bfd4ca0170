package bpf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
)

// MaxTargets is how many targets one tracer can follow at once.
const MaxTargets = uint32(tracerLimitsMAX_TARGETS)

// maxRanges is the size of the kernel's ranges map.
const maxRanges = int(tracerLimitsMAX_RANGES)

// Tracer is the loaded and attached set of kernel programs.
type Tracer struct {
	coll    *ebpf.Collection
	maps    tracerMaps
	links   []link.Link
	reader  *ringbuf.Reader
	events  chan Event
	probes  []string
	missing []string
	syms    *Kallsyms
	ranges  []tracerAddrRange

	watching   bool
	ringBuffer uint32
	decodeErrs atomic.Uint64
	chanDrops  atomic.Uint64

	mu           sync.Mutex
	nextTarget   uint32
	flushWaiters []chan struct{}
	readerDone   chan struct{}
	closeOnce    sync.Once
	chanMu       sync.Mutex // guards sends against the channel's close
	eventsClose  bool
}

// Options configure Open.
type Options struct {
	// EventBuffer is the capacity of the Events channel. A full channel drops an event
	// and counts it (Loss.Decode); it never blocks the ring-buffer reader.
	EventBuffer int
	// Logger receives start-up notes (probes chosen, tracefs mounted). Nil: slog.Default.
	Logger *slog.Logger
	// Watch lets Tracer.Watch compare targets with a profile (watch mode).
	Watch bool
	// RingBuffer is the size of the kernel's event ring buffer in bytes, a power of
	// two and a multiple of the page size; 0 means DefaultRingBuffer. The reader maps
	// it twice (its wrap-around), so it counts twice in tailor's RSS.
	RingBuffer uint32
}

// DefaultRingBuffer holds ~25,000 file events, over 100 ms of the densest flood
// measured (bench/: one million distinct paths, none lost), while costing tailor
// 8 MiB of RSS instead of the 32 MiB a 16 MiB buffer did.
const DefaultRingBuffer = 4 << 20

// RingBufferEnv names the test knob that sets the ring buffer's size in bytes where
// Options leave it 0, in every command: a one-page buffer loses events under any
// flood, which is how the tests check that loss is counted, declared and turned
// into exit 5 end to end. Every drop is counted as ever; it changes no decision.
const RingBufferEnv = "TAILOR_TEST_RING_BUFFER"

// CheckPrivileges returns fail.ErrPrivilege unless the process can load and attach
// tracing programs: root, or CAP_BPF with CAP_PERFMON.
func CheckPrivileges() error {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%w: reading own capabilities: %v", fail.ErrPrivilege, err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON)) {
		return nil
	}
	return fmt.Errorf("%w: loading the tracer needs root (or CAP_BPF and CAP_PERFMON): run with sudo", fail.ErrPrivilege)
}

// Open checks the host, loads the kernel programs, attaches them and starts reading
// events. Close releases everything; nothing stays in the kernel after it.
func Open(opt Options) (*Tracer, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	if opt.EventBuffer <= 0 {
		opt.EventBuffer = 65536
	}
	if err := checkArch(); err != nil {
		return nil, fmt.Errorf("%w: %v", fail.ErrKernel, err)
	}
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, fmt.Errorf("%w: the kernel has no BTF (/sys/kernel/btf/vmlinux): tailor needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", fail.ErrKernel)
	}
	if err := features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnLoop); err != nil {
		return nil, fmt.Errorf("%w: the kernel lacks bpf_loop (Linux 5.17 or newer needed): %v", fail.ErrKernel, err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("%w: raising RLIMIT_MEMLOCK: %v", fail.ErrPrivilege, err)
	}
	if _, err := os.Stat("/proc/kallsyms"); err != nil {
		return nil, fmt.Errorf("%w: reading /proc/kallsyms: %v", fail.ErrKernel, err)
	}
	syms, ranges, err := NewKallsyms(func() (io.ReadCloser, error) { return os.Open("/proc/kallsyms") }, maxRanges)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fail.ErrPrivilege, err)
	}

	t := &Tracer{syms: syms, ranges: ranges, events: make(chan Event, opt.EventBuffer), readerDone: make(chan struct{}), nextTarget: 1}
	t.watching = opt.Watch
	if opt.RingBuffer == 0 {
		opt.RingBuffer = DefaultRingBuffer
		if v := os.Getenv(RingBufferEnv); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: %s=%q: want a size in bytes", fail.ErrBadInput, RingBufferEnv, v)
			}
			opt.RingBuffer = uint32(n)
		}
	}
	if opt.RingBuffer&(opt.RingBuffer-1) != 0 || opt.RingBuffer < uint32(os.Getpagesize()) {
		return nil, fmt.Errorf("tracer: ring buffer size %d is not a power of two of at least a page", opt.RingBuffer)
	}
	t.ringBuffer = opt.RingBuffer
	if err := t.load(log); err != nil {
		t.Close()
		return nil, err
	}
	go t.read()
	return t, nil
}

// progSet names the programs of one attach flavour.
type progSet struct {
	sysEnter, sysExit, fork, exit, exec string
	attach                              func(p *ebpf.Program, tp string) (link.Link, error)
	flavour                             string
}

var (
	btfSet = progSet{tracerProgSysEnterBtf, tracerProgSysExitBtf, tracerProgForkBtf, tracerProgExitBtf, tracerProgExecBtf,
		func(p *ebpf.Program, _ string) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: p})
		}, "tp_btf"}
	rawSet = progSet{tracerProgSysEnterRaw, tracerProgSysExitRaw, tracerProgForkRaw, tracerProgExitRaw, tracerProgExecRaw,
		func(p *ebpf.Program, tp string) (link.Link, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: p})
		}, "raw_tp"}
)

func (t *Tracer) load(log *slog.Logger) error {
	spec, err := loadTracer()
	if err != nil {
		return fmt.Errorf("loading tracer spec: %w", err)
	}
	consts := map[string]any{
		tracerVarNrMmap:       syscallNrs("mmap2", "mmap"),
		tracerVarNrSocket:     syscallNrs("socket"),
		tracerVarNrBind:       syscallNrs("bind"),
		tracerVarNrListen:     syscallNrs("listen"),
		tracerVarNrSeccomp:    syscallNrs("seccomp"),
		tracerVarNrPrctl:      syscallNrs("prctl"),
		tracerVarNrSocketcall: syscallNr(TableCompat, "socketcall"),
	}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("loading tracer: no variable %s in the object", name)
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("loading tracer: setting %s: %w", name, err)
		}
	}

	spec.Maps["events"].MaxEntries = t.ringBuffer

	capProg, capNote := chooseCapProbe()
	set := btfSet
	coll, err := newCollection(spec, set, capProg)
	if err != nil {
		log.Debug("tp_btf programs refused, falling back to raw tracepoints", "error", err)
		set = rawSet
		if coll, err = newCollection(spec, set, capProg); err != nil {
			return fmt.Errorf("%w: loading the kernel programs: %v", fail.ErrKernel, err)
		}
	}
	t.coll = coll
	if err := coll.Assign(&t.maps); err != nil {
		return fmt.Errorf("loading tracer: %w", err)
	}
	if err := fillSysops(t.maps.Sysops); err != nil {
		return fmt.Errorf("loading tracer: %w", err)
	}
	hooks := []struct{ name, tp string }{{set.sysEnter, "sys_enter"}, {set.sysExit, "sys_exit"},
		{set.fork, "sched_process_fork"}, {set.exit, "sched_process_exit"}, {set.exec, "sched_process_exec"}}
	for _, p := range hooks {
		l, err := set.attach(coll.Programs[p.name], p.tp)
		if err != nil {
			return fmt.Errorf("%w: attaching %s to %s: %v", fail.ErrKernel, p.name, p.tp, err)
		}
		t.links = append(t.links, l)
		t.probes = append(t.probes, p.tp+":"+set.flavour)
	}
	if capProg != "" {
		var l link.Link
		if capProg == tracerProgCapableBtf {
			l, err = link.AttachTracing(link.TracingOptions{Program: coll.Programs[capProg]})
		} else {
			l, err = link.Kprobe("cap_capable", coll.Programs[capProg], nil)
		}
		if err != nil {
			log.Warn("capability checks will not be recorded", "probe", capNote, "error", err)
			t.missing = append(t.missing, "capabilities")
		} else {
			t.links = append(t.links, l)
			t.probes = append(t.probes, capNote)
		}
	} else {
		log.Warn("capability checks will not be recorded: the kernel has neither the capability/cap_capable tracepoint (Linux 6.14+) nor kprobes")
		t.missing = append(t.missing, "capabilities")
	}
	for i, r := range t.ranges {
		if err := t.maps.Ranges.Put(uint32(i), r); err != nil {
			return fmt.Errorf("loading tracer: filling ranges: %w", err)
		}
	}
	rd, err := ringbuf.NewReader(t.maps.Events)
	if err != nil {
		return fmt.Errorf("loading tracer: opening ring buffer: %w", err)
	}
	t.reader = rd
	return nil
}

// chooseCapProbe picks how capability checks are seen: the cap_capable tracepoint where
// the kernel's BTF has it, else a kprobe where kprobes exist, else nothing.
func chooseCapProbe() (prog, note string) {
	kspec, err := btf.LoadKernelSpec()
	if err == nil {
		var fn *btf.Typedef
		if kspec.TypeByName("btf_trace_cap_capable", &fn) == nil {
			return tracerProgCapableBtf, "cap_capable:tp_btf"
		}
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err == nil {
		return tracerProgCapableKprobe, "cap_capable:kprobe"
	}
	return "", ""
}

func newCollection(spec *ebpf.CollectionSpec, set progSet, capProg string) (*ebpf.Collection, error) {
	s := spec.Copy()
	keep := map[string]bool{set.sysEnter: true, set.sysExit: true, set.fork: true, set.exit: true, set.exec: true}
	if capProg != "" {
		keep[capProg] = true
	}
	for name := range s.Programs {
		if !keep[name] {
			delete(s.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(s)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%+v", ve)
		}
		return nil, err
	}
	return coll, nil
}

// Probes names the hooks in use, for the recording.
func (t *Tracer) Probes() []string { return append([]string(nil), t.probes...) }

// Missing names the observation kinds this kernel cannot give.
func (t *Tracer) Missing() []string { return append([]string(nil), t.missing...) }

// Events delivers decoded events until Close.
func (t *Tracer) Events() <-chan Event { return t.events }

func (t *Tracer) read() {
	defer close(t.readerDone)
	for {
		rec, err := t.reader.Read()
		if err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			if errors.Is(err, ringbuf.ErrFlushed) {
				t.mu.Lock()
				for _, w := range t.flushWaiters {
					close(w)
				}
				t.flushWaiters = nil
				t.mu.Unlock()
				continue
			}
			t.decodeErrs.Add(1)
			continue
		}
		ev, err := DecodeEvent(rec.RawSample)
		if err != nil {
			t.decodeErrs.Add(1)
			continue
		}
		t.send(ev)
	}
}

func (t *Tracer) send(ev Event) {
	t.chanMu.Lock()
	defer t.chanMu.Unlock()
	if t.eventsClose {
		return
	}
	select {
	case t.events <- ev:
	default:
		t.chanDrops.Add(1)
	}
}

// Flush returns once every event the kernel wrote before the call has been put on
// the Events channel (or counted as dropped).
func (t *Tracer) Flush() {
	done := make(chan struct{})
	t.mu.Lock()
	t.flushWaiters = append(t.flushWaiters, done)
	t.mu.Unlock()
	if err := t.reader.Flush(); err != nil {
		return
	}
	select {
	case <-done:
	case <-t.readerDone:
	}
}

// NewTarget allocates a target id.
func (t *Tracer) NewTarget() (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nextTarget >= MaxTargets {
		return 0, fmt.Errorf("tracer: at most %d targets per run", MaxTargets-1)
	}
	id := t.nextTarget
	t.nextTarget++
	return id, nil
}

// AddProcess makes the thread group pid part of target. comm is its current name.
func (t *Tracer) AddProcess(target uint32, pid int, comm string) error {
	var ti tracerTaskInfo
	ti.Target = target
	for i := 0; i < len(ti.Comm)-1 && i < len(comm); i++ {
		ti.Comm[i] = int8(comm[i])
	}
	if err := t.maps.Tasks.Put(uint32(pid), ti); err != nil {
		return fmt.Errorf("tracer: adding pid %d: %w", pid, err)
	}
	return nil
}

// AddContainer makes every process of the container with the given full ID that
// installs a seccomp filter from now on part of target.
func (t *Tracer) AddContainer(target uint32, id string) error {
	if len(id) != 64 {
		return fmt.Errorf("tracer: container id %q is not a full 64-character id", id)
	}
	var k tracerContainerKey
	for i := range k.Id {
		k.Id[i] = int8(id[i])
	}
	if err := t.maps.Containers.Put(k, target); err != nil {
		return fmt.Errorf("tracer: watching container %s: %w", id[:12], err)
	}
	return nil
}

// ContainerRunning tells the tracer that target's container already runs (an attach):
// every process of it that installs a filter from now on came through docker exec.
func (t *Tracer) ContainerRunning(target uint32) error {
	if err := t.maps.ContainerJoins.Put(target, uint32(1)); err != nil {
		return fmt.Errorf("tracer: marking target %d running: %w", target, err)
	}
	return nil
}

// RemoveContainer stops matching new processes of the container.
func (t *Tracer) RemoveContainer(id string) {
	var k tracerContainerKey
	for i := 0; i < len(k.Id) && i < len(id); i++ {
		k.Id[i] = int8(id[i])
	}
	_ = t.maps.Containers.Delete(k)
}

// TargetProcesses returns the thread groups currently part of target.
func (t *Tracer) TargetProcesses(target uint32) []int {
	var (
		pid  uint32
		info tracerTaskInfo
		out  []int
	)
	it := t.maps.Tasks.Iterate()
	for it.Next(&pid, &info) {
		if info.Target == target {
			out = append(out, int(pid))
		}
	}
	return out
}

// Syscalls returns the syscall numbers target made, per table.
func (t *Tracer) Syscalls(target uint32) (map[Table][]int, error) {
	var b tracerSyscallBits
	if err := t.maps.Syscalls.Lookup(target, &b); err != nil {
		return nil, fmt.Errorf("tracer: reading syscalls: %w", err)
	}
	out := map[Table][]int{}
	for tbl := Table(0); tbl < numTables; tbl++ {
		for w, word := range b.Bits[tbl] {
			for bit := 0; bit < 64; bit++ {
				if word&(1<<bit) != 0 {
					out[tbl] = append(out[tbl], w*64+bit)
				}
			}
		}
	}
	return out, nil
}

// CapCheck is one kind of capability check a target made.
type CapCheck struct {
	Cap     int
	Granted bool
	// Probed is true for checks made without auditing (never a need).
	Probed bool
	// Runtime is true for checks the container runtime made for itself before it
	// executed the entrypoint (never a need of the target).
	Runtime bool
	// Overridden is true for checks against credentials that are not the task's own
	// (overlayfs checks lower layers with the mounter's): never a need of the target.
	Overridden bool
	// Caller is the kernel function that asked, "" when unknown.
	Caller string
	Count  uint64
}

// Capabilities returns target's capability checks.
func (t *Tracer) Capabilities(target uint32) []CapCheck {
	var (
		k   tracerCapKey
		n   uint64
		out []CapCheck
	)
	var callers []uint64
	it := t.maps.Caps.Iterate()
	for it.Next(&k, &n) {
		if k.Target != target {
			continue
		}
		out = append(out, CapCheck{Cap: int(k.Cap), Granted: k.Granted != 0, Probed: k.Probed != 0, Runtime: k.Runtime != 0, Overridden: k.Overridden != 0, Count: n})
		callers = append(callers, k.Caller)
	}
	names := t.syms.Names(callers)
	for i := range out {
		out[i].Caller = names[callers[i]]
	}
	return out
}

// Network returns target's distinct socket uses with their counts.
func (t *Tracer) Network(target uint32) []NetUse {
	var (
		k   tracerNetKey
		n   uint64
		out []NetUse
	)
	it := t.maps.Net.Iterate()
	for it.Next(&k, &n) {
		if k.Target != target {
			continue
		}
		out = append(out, netUse(k, n))
	}
	return out
}

// Counters are the tracer's loss counters, summed over CPUs.
type Counters struct {
	RingbufDrops, TasksFull, CapsFull, NetFull, PathTruncated, BadNr, ContainersFull uint64
	// AnomaliesFull counts anomalies whose key did not fit the anomalies map: they
	// were reported one event each instead of counted.
	AnomaliesFull uint64
	// ArgsUnreadable counts path or address arguments the kernel could not read
	// from the target's memory (an observation whose path is lost).
	ArgsUnreadable uint64
	// DecodeErrors and ChannelDrops are user-space losses.
	DecodeErrors, ChannelDrops uint64
}

// Counters reads the loss counters. They are global to the tracer, not per target.
func (t *Tracer) Counters() (Counters, error) {
	var c Counters
	read := func(idx uint32) (uint64, error) {
		var per []uint64
		if err := t.maps.Counters.Lookup(idx, &per); err != nil {
			return 0, fmt.Errorf("tracer: reading counter %d: %w", idx, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		return sum, nil
	}
	for idx, dst := range map[tracerCounterIdx]*uint64{
		tracerCounterIdxCNT_RINGBUF_DROP: &c.RingbufDrops, tracerCounterIdxCNT_TASKS_FULL: &c.TasksFull,
		tracerCounterIdxCNT_CAPS_FULL: &c.CapsFull, tracerCounterIdxCNT_NET_FULL: &c.NetFull,
		tracerCounterIdxCNT_PATH_TRUNCATED: &c.PathTruncated, tracerCounterIdxCNT_BAD_NR: &c.BadNr,
		tracerCounterIdxCNT_CONTAINERS_FULL: &c.ContainersFull, tracerCounterIdxCNT_ANOMALIES_FULL: &c.AnomaliesFull,
		tracerCounterIdxCNT_ARGS_UNREADABLE: &c.ArgsUnreadable,
	} {
		v, err := read(uint32(idx))
		if err != nil {
			return c, err
		}
		*dst = v
	}
	c.DecodeErrors = t.decodeErrs.Load()
	c.ChannelDrops = t.chanDrops.Load()
	return c, nil
}

// WatchPolicy is the profile a watched target is compared with in the kernel.
type WatchPolicy struct {
	// Syscalls are the allowed syscall numbers per table; a table without an entry
	// allows none.
	Syscalls map[Table][]int
	// Capabilities are the capability numbers the profile keeps.
	Capabilities []int
	// Families are the socket address families the profile allows.
	Families []int
}

// Watch starts comparing target with p: every syscall outside it (seen at exit, with
// the errno a filter gave), socket family outside it, audited capability check
// outside it, and open or execve refused with EACCES or EPERM becomes an
// AnomalyEvent. The tracer must have been opened with Options.Watch.
func (t *Tracer) Watch(target uint32, p WatchPolicy) error {
	if !t.watching {
		return errors.New("tracer: Watch needs a tracer opened with Options.Watch")
	}
	var w tracerWatchPolicy
	w.Enabled = 1
	for tbl, nrs := range p.Syscalls {
		if tbl < 0 || tbl >= numTables {
			return fmt.Errorf("tracer: watch policy: no syscall table %d", tbl)
		}
		for _, nr := range nrs {
			if nr < 0 || nr >= len(w.Allowed[tbl])*64 {
				return fmt.Errorf("tracer: watch policy: syscall number %d out of range", nr)
			}
			w.Allowed[tbl][nr/64] |= 1 << (nr % 64)
		}
	}
	for _, c := range p.Capabilities {
		if c < 0 || c >= 64 {
			return fmt.Errorf("tracer: watch policy: capability %d out of range", c)
		}
		w.Caps |= 1 << c
	}
	for _, f := range p.Families {
		if f < 0 || f >= 64 {
			return fmt.Errorf("tracer: watch policy: address family %d out of range", f)
		}
		w.Families |= 1 << f
	}
	if err := t.maps.Watch.Put(target, w); err != nil {
		return fmt.Errorf("tracer: setting the watch policy: %w", err)
	}
	return nil
}

// AnomalyCount is the kernel's count of one anomaly key.
type AnomalyCount struct {
	Kind  int
	Table Table
	Value uint64
	Count uint64
}

// Anomalies returns the kernel's counts of target's anomalies, repeats included.
func (t *Tracer) Anomalies(target uint32) []AnomalyCount {
	var (
		k   tracerAnomalyKey
		st  tracerAnomalyState
		out []AnomalyCount
	)
	it := t.maps.Anomalies.Iterate()
	for it.Next(&k, &st) {
		if k.Target == target {
			out = append(out, AnomalyCount{Kind: int(k.Kind), Table: Table(k.Arch), Value: k.Value, Count: st.Count})
		}
	}
	return out
}

// Close detaches and unloads everything and closes the Events channel.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		for _, l := range t.links {
			l.Close()
		}
		if t.reader != nil {
			t.reader.Close()
			<-t.readerDone
		}
		if t.coll != nil {
			t.coll.Close()
		}
		t.chanMu.Lock()
		t.eventsClose = true
		close(t.events)
		t.chanMu.Unlock()
	})
	return nil
}

// AttachEmpty attaches a sys_enter program that does nothing, the yardstick against
// which the benchmark measures the tracer's own cost. Close detaches it.
func AttachEmpty() (io.Closer, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	spec, err := loadTracer()
	if err != nil {
		return nil, fmt.Errorf("loading tracer spec: %w", err)
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"empty_sys_enter"`
	}
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("loading the empty program: %w", err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: objs.Prog})
	if err != nil {
		objs.Prog.Close()
		return nil, fmt.Errorf("attaching the empty program: %w", err)
	}
	return closers{l, objs.Prog}, nil
}

type closers []io.Closer

func (c closers) Close() error {
	var first error
	for _, x := range c {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
