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
	"unsafe"

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

// ErrNoSlot is NewTarget's error when every target slot is in use: a caller can wait
// for a release and try again.
var ErrNoSlot = errors.New("no free target slot")

// MaxTargets is the number of target slots of a tracer. Slot 0 is never used (0 is no
// target), so a tracer follows at most MaxTargets-1 targets at once; ReleaseTarget frees
// a slot for the next NewTarget.
const MaxTargets = uint32(tracerLimitsMAX_TARGETS)

// maxGeneration bounds a slot's generation, the part of a target id above its slot:
// an id is generation*MaxTargets + slot and must fit in 32 bits.
const maxGeneration = 1 << 32 / uint64(MaxTargets)

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
	// tracked is the tracked_tgids bitmap, mapped: AddProcess sets bits in it with
	// atomic ORs, as the kernel programs do (a plain map update of a word could
	// overwrite a bit a program set at the same moment).
	tracked []byte

	watching   bool
	ringBuffer uint32
	decodeErrs atomic.Uint64
	chanDrops  atomic.Uint64

	mu sync.Mutex
	// free are the slots NewTarget may hand out, the longest free first; live is the
	// id each slot holds now (0: free) and gens its generation, bumped at each release.
	free         []uint32
	live         [MaxTargets]uint32
	gens         [MaxTargets]uint32
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
	// Targets is how many target slots NewTarget hands out, at most MaxTargets-1 (the
	// default, 0). Fewer let a test reach the limit quickly.
	Targets int
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

	if opt.Targets < 0 || opt.Targets > int(MaxTargets)-1 {
		return nil, fmt.Errorf("tracer: %d target slots asked for, at most %d exist", opt.Targets, MaxTargets-1)
	}
	if opt.Targets == 0 {
		opt.Targets = int(MaxTargets) - 1
	}
	t := &Tracer{syms: syms, ranges: ranges, events: make(chan Event, opt.EventBuffer), readerDone: make(chan struct{})}
	for slot := uint32(1); slot <= uint32(opt.Targets); slot++ {
		t.free = append(t.free, slot)
	}
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
	if t.tracked, err = unix.Mmap(t.maps.TrackedTgids.FD(), 0, int(tracerLimitsTRACKED_WORDS)*8,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fmt.Errorf("loading tracer: mapping the tracked-tgid bitmap: %w", err)
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

// NewTarget allocates a target id: a free slot, tagged with the slot's generation.
// An id is never handed out twice (until a slot's generation wraps, after 2^26
// releases of that slot), so whatever a released target left behind (events still in
// the ring buffer, a process that forked while it was released) is never taken for
// its slot's next target: the kernel checks the id stored with the slot's syscall
// bitmap, watch policy and join count, and user space matches events by id.
func (t *Tracer) NewTarget() (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.free) == 0 {
		return 0, fmt.Errorf("tracer: all %d targets in use (a target's slot is free again once it is released): %w", t.targets(), ErrNoSlot)
	}
	slot := t.free[0]
	id := t.gens[slot]*MaxTargets + slot
	// The slot's arrays start empty and belong to id from now on; its watch policy is
	// disabled until Watch.
	if err := t.maps.Syscalls.Put(slot, tracerSyscallBits{Target: id}); err != nil {
		return 0, fmt.Errorf("tracer: new target: %w", err)
	}
	if err := t.maps.ContainerJoins.Put(slot, tracerJoinState{Target: id}); err != nil {
		return 0, fmt.Errorf("tracer: new target: %w", err)
	}
	if err := t.maps.Watch.Put(slot, tracerWatchPolicy{}); err != nil {
		return 0, fmt.Errorf("tracer: new target: %w", err)
	}
	t.free = t.free[1:]
	t.live[slot] = id
	return id, nil
}

// targets is the number of slots this tracer hands out; t.mu is held.
func (t *Tracer) targets() int {
	n := len(t.free)
	for _, id := range t.live {
		if id != 0 {
			n++
		}
	}
	return n
}

// slotOf returns target's slot, or an error when target is not an id in use.
func (t *Tracer) slotOf(target uint32) (uint32, error) {
	slot := target % MaxTargets
	t.mu.Lock()
	defer t.mu.Unlock()
	if slot == 0 || t.live[slot] != target {
		return 0, fmt.Errorf("tracer: target %d is not in use", target)
	}
	return slot, nil
}

// ReleaseTarget forgets target and frees its slot for a later NewTarget. Every entry
// of target goes, in every map that keys or values anything by target (all the maps
// of bpf/*.bpf.c but the global ones: events, the ring buffer; counters; scratch_map;
// ranges and sysops, filled once at load):
//   - first what makes a process part of it, so nothing new is recorded for it: its
//     containers keys and its tasks entries;
//   - its slot in the per-slot arrays syscalls, watch and container_joins, reset to
//     no target;
//   - its keys in the hashes caps, net and anomalies, and in the LRU hashes
//     files_seen and ops_seen.
//
// The slot's generation is bumped, so its next id differs from target: events of
// target still in the ring buffer or the Events channel keep target's id, and a
// process that forked while its group was deleted here, and so escaped, still carries
// target's id and drops itself from tasks at its next syscall (the kernel sees its id
// no longer owns its slot). A caller that wants every event of target handles them
// first (Flush), then releases. The slot is free again even when an error is
// returned (an entry that could not be deleted): what is left carries the old id and
// cannot be taken for anyone else's.
func (t *Tracer) ReleaseTarget(target uint32) error {
	slot, err := t.slotOf(target)
	if err != nil {
		return err
	}
	errs := []error{t.unfollow(target)}
	t.mu.Lock()
	t.live[slot] = 0
	t.mu.Unlock()
	errs = append(errs,
		t.maps.Syscalls.Put(slot, tracerSyscallBits{}),
		t.maps.Watch.Put(slot, tracerWatchPolicy{}),
		t.maps.ContainerJoins.Put(slot, tracerJoinState{}),
		deleteWhere(t.maps.Caps, func(k *tracerCapKey, _ *uint64) bool { return k.Target == target }),
		deleteWhere(t.maps.Net, func(k *tracerNetKey, _ *uint64) bool { return k.Target == target }),
		deleteWhere(t.maps.Anomalies, func(k *tracerAnomalyKey, _ *tracerAnomalyState) bool { return k.Target == target }),
		deleteWhere(t.maps.FilesSeen, func(k *tracerFileKey, _ *uint8) bool { return k.Target == target }),
		deleteWhere(t.maps.OpsSeen, func(k *tracerOpKey, _ *uint8) bool { return k.Target == target }),
	)
	t.mu.Lock()
	t.gens[slot] = uint32((uint64(t.gens[slot]) + 1) % maxGeneration)
	t.free = append(t.free, slot)
	t.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tracer: releasing target %d: %w", target, err)
	}
	return nil
}

// Unfollow stops adding to target: its container keys and its processes' tasks
// entries go, so no process is part of it any more, while what it recorded stays
// readable (Syscalls, Anomalies...) until ReleaseTarget. A caller that reports a
// target's final counts unfollows, flushes, reads, then releases.
func (t *Tracer) Unfollow(target uint32) error {
	if _, err := t.slotOf(target); err != nil {
		return err
	}
	if err := t.unfollow(target); err != nil {
		return fmt.Errorf("tracer: unfollowing target %d: %w", target, err)
	}
	return nil
}

func (t *Tracer) unfollow(target uint32) error {
	return errors.Join(
		deleteWhere(t.maps.Containers, func(_ *tracerContainerKey, v *uint32) bool { return *v == target }),
		deleteWhere(t.maps.Tasks, func(_ *uint32, v *tracerTaskInfo) bool { return v.Target == target }),
	)
}

// deleteWhere deletes the entries of a hash map that match. It reads the map in
// batches, whose cursor (a bucket) survives keys deleted meanwhile by the kernel's
// programs or an LRU map's eviction, where a next-key walk from a deleted key starts
// over; then it deletes the matches in batches too, a key already gone being no
// error.
func deleteWhere[K, V any](m *ebpf.Map, match func(*K, *V) bool) error {
	const batch = 256
	keys, vals := make([]K, batch), make([]V, batch)
	var (
		cursor ebpf.MapBatchCursor
		doomed []K
	)
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			if match(&keys[i], &vals[i]) {
				doomed = append(doomed, keys[i])
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading map %s: %w", m, err)
		}
	}
	// A batch delete stops at the first key that is gone: skip it, go on after it.
	for len(doomed) > 0 {
		n, err := m.BatchDelete(doomed, nil)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ebpf.ErrKeyNotExist):
			doomed = doomed[min(n+1, len(doomed)):]
		default:
			return fmt.Errorf("deleting from map %s: %w", m, err)
		}
	}
	return nil
}

// AddProcess makes the thread group pid part of target. comm is its current name.
func (t *Tracer) AddProcess(target uint32, pid int, comm string) error {
	if _, err := t.slotOf(target); err != nil {
		return err
	}
	var ti tracerTaskInfo
	ti.Target = target
	for i := 0; i < len(ti.Comm)-1 && i < len(comm); i++ {
		ti.Comm[i] = int8(comm[i])
	}
	t.markTracked(uint32(pid))
	if err := t.maps.Tasks.Put(uint32(pid), ti); err != nil {
		return fmt.Errorf("tracer: adding pid %d: %w", pid, err)
	}
	return nil
}

// markTracked sets pid's bit in the tracked-tgid bitmap, before its tasks entry is
// made (the bitmap may hold more than the map, never less).
func (t *Tracer) markTracked(pid uint32) {
	t.mu.Lock() // against Close unmapping it
	defer t.mu.Unlock()
	w := pid / 64
	if w >= uint32(tracerLimitsTRACKED_WORDS) || t.tracked == nil {
		return // beyond the bitmap: the programs always look such a pid up
	}
	atomic.OrUint64((*uint64)(unsafe.Pointer(&t.tracked[w*8])), 1<<(pid%64))
}

// AddContainer makes every process of the container with the given full ID that
// installs a seccomp filter from now on part of target.
func (t *Tracer) AddContainer(target uint32, id string) error {
	if len(id) != 64 {
		return fmt.Errorf("tracer: container id %q is not a full 64-character id", id)
	}
	if _, err := t.slotOf(target); err != nil {
		return err
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
	slot, err := t.slotOf(target)
	if err != nil {
		return err
	}
	if err := t.maps.ContainerJoins.Put(slot, tracerJoinState{Target: target, Joins: 1}); err != nil {
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
	slot, err := t.slotOf(target)
	if err != nil {
		return nil, err
	}
	var b tracerSyscallBits
	if err := t.maps.Syscalls.Lookup(slot, &b); err != nil {
		return nil, fmt.Errorf("tracer: reading syscalls: %w", err)
	}
	if b.Target != target {
		return nil, fmt.Errorf("tracer: reading syscalls: slot %d holds target %d, not %d", slot, b.Target, target)
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
	slot, err := t.slotOf(target)
	if err != nil {
		return err
	}
	var w tracerWatchPolicy
	w.Enabled = 1
	w.Target = target
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
	if err := t.maps.Watch.Put(slot, w); err != nil {
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
		t.mu.Lock()
		if t.tracked != nil {
			unix.Munmap(t.tracked)
			t.tracked = nil
		}
		t.mu.Unlock()
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
// which the benchmark measures the tracer's own cost; with exit, also a sys_exit program
// that does nothing (the floor of a tracer that needs both hooks). Close detaches them.
func AttachEmpty(exit bool) (io.Closer, error) {
	if err := CheckPrivileges(); err != nil {
		return nil, err
	}
	spec, err := loadTracer()
	if err != nil {
		return nil, fmt.Errorf("loading tracer spec: %w", err)
	}
	names := []string{tracerProgEmptySysEnter}
	if exit {
		names = append(names, tracerProgEmptySysExit)
	}
	var c closers
	for _, name := range names {
		ps := spec.Programs[name]
		if ps == nil {
			c.Close()
			return nil, fmt.Errorf("loading the empty programs: no %s in the object", name)
		}
		p, err := ebpf.NewProgram(ps)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("loading %s: %w", name, err)
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			p.Close()
			c.Close()
			return nil, fmt.Errorf("attaching %s: %w", name, err)
		}
		c = append(c, l, p)
	}
	return c, nil
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
