package bpf

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// perTarget counts, map by map, the entries that belong to target: every map of
// bpf/*.bpf.c that keys or values anything by target. A target id of 0 counts the
// entries of any target, and the per-slot arrays' slots that hold one.
func perTarget(t *testing.T, tr *Tracer, target uint32) map[string]int {
	t.Helper()
	out := map[string]int{}
	match := func(id uint32) bool { return id != 0 && (target == 0 || id == target) }
	add := func(name string, n int) {
		if n > 0 {
			out[name] += n
		}
	}
	add("tasks", countWhere(t, tr.maps.Tasks, func(_ *uint32, v *tracerTaskInfo) bool { return match(v.Target) }))
	add("containers", countWhere(t, tr.maps.Containers, func(_ *tracerContainerKey, v *uint32) bool { return match(*v) }))
	add("syscalls", countWhere(t, tr.maps.Syscalls, func(_ *uint32, v *tracerSyscallBits) bool { return match(v.Target) }))
	add("watch", countWhere(t, tr.maps.Watch, func(_ *uint32, v *tracerWatchPolicy) bool { return match(v.Target) || v.Enabled != 0 }))
	add("container_joins", countWhere(t, tr.maps.ContainerJoins, func(_ *uint32, v *tracerJoinState) bool { return match(v.Target) }))
	add("caps", countWhere(t, tr.maps.Caps, func(k *tracerCapKey, _ *uint64) bool { return match(k.Target) }))
	add("net", countWhere(t, tr.maps.Net, func(k *tracerNetKey, _ *uint64) bool { return match(k.Target) }))
	add("anomalies", countWhere(t, tr.maps.Anomalies, func(k *tracerAnomalyKey, _ *tracerAnomalyState) bool { return match(k.Target) }))
	add("files_seen", countWhere(t, tr.maps.FilesSeen, func(k *tracerFileKey, _ *uint8) bool { return match(k.Target) }))
	add("ops_seen", countWhere(t, tr.maps.OpsSeen, func(k *tracerOpKey, _ *uint8) bool { return match(k.Target) }))
	return out
}

// countWhere iterates m and counts the entries that match.
func countWhere[K, V any](t *testing.T, m *ebpf.Map, match func(*K, *V) bool) int {
	t.Helper()
	var (
		k K
		v V
		n int
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if match(&k, &v) {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterating %s: %v", m, err)
	}
	return n
}

// perTargetMaps are the maps perTarget reads.
var perTargetMaps = []string{"tasks", "containers", "syscalls", "watch", "container_joins", "caps", "net", "anomalies", "files_seen", "ops_seen"}

// stepper is a traced bash that runs a script in steps: each step ends with a line
// "ready" on its stdout, and the next starts when a line is written to its stdin.
type stepper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startStepper(t *testing.T, tr *Tracer, target uint32, env []string, steps ...string) *stepper {
	t.Helper()
	script := strings.Join(steps, "; echo ready; read go; ") + "; echo ready"
	cmd := exec.Command(os.Args[0], "/bin/bash", "-c", script)
	cmd.Env = append(append(os.Environ(), "TAILOR_BPF_TEST_CHILD=1"), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := tr.AddProcess(target, cmd.Process.Pid, "launcher"); err != nil {
		t.Fatal(err)
	}
	in.Write([]byte{1}) // the launcher's go
	s := &stepper{cmd: cmd, in: in, out: bufio.NewReader(out)}
	s.wait(t)
	return s
}

// wait returns once the current step has run.
func (s *stepper) wait(t *testing.T) {
	t.Helper()
	line, err := s.out.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("stepper: %q, %v", line, err)
	}
}

// next runs the next step.
func (s *stepper) next(t *testing.T) {
	t.Helper()
	if _, err := s.in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
}

// TestReleaseTargetReusesSlots: every slot allocated, a target that left entries in
// every per-target map released while its process still runs, nothing of it left in
// any map, its slot reused under a new id that sees none of its syscalls, anomalies,
// capabilities, peers or events; then every slot released and allocated again.
func TestReleaseTargetReusesSlots(t *testing.T) {
	tr := openTracerWith(t, Options{Watch: true})
	var ids []uint32
	for {
		id, err := tr.NewTarget()
		if err != nil {
			if len(ids) != int(MaxTargets)-1 {
				t.Fatalf("NewTarget failed after %d targets, want %d: %v", len(ids), MaxTargets-1, err)
			}
			break
		}
		ids = append(ids, id)
	}
	old := ids[0]
	policy := allExcept(t, []string{"mkdir", "mkdirat", "seccomp", "prctl"}, []int{unix.CAP_CHOWN})
	if err := tr.Watch(old, policy); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddContainer(old, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	if err := tr.ContainerRunning(old); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/owned", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	// Something for every map: a refused mkdir (syscall and file anomalies), files
	// read (files_seen), a failed open (ops_seen), an audited CAP_CHOWN check outside
	// the policy (caps, anomalies), a socket and a refused connect (net).
	s := startStepper(t, tr, old, []string{"TAILOR_BPF_TEST_DENY=1"},
		"mkdir "+dir+"/d 2>/dev/null; cat /etc/hostname >/dev/null; cat "+dir+"/missing 2>/dev/null; chown nobody "+dir+"/owned; "+
			"(exec 3<>/dev/tcp/127.0.0.1/"+strconv.Itoa(refused)+") 2>/dev/null",
		"mkdir "+dir+"/e 2>/dev/null; cat /etc/passwd >/dev/null")
	before := perTarget(t, tr, old)
	for _, m := range perTargetMaps {
		if before[m] == 0 {
			t.Errorf("the old target has no entry in %s before its release: the test shows nothing there (%v)", m, before)
		}
	}
	if !slices.ContainsFunc(tr.Anomalies(old), func(c AnomalyCount) bool { return c.Kind == AnomalySyscall }) {
		t.Fatalf("no syscall anomaly for the old target: %+v", tr.Anomalies(old))
	}

	// Released with its events unread (in the ring buffer or the channel) and its
	// process alive.
	if err := tr.ReleaseTarget(old); err != nil {
		t.Fatal(err)
	}
	if left := perTarget(t, tr, old); len(left) > 0 {
		t.Errorf("entries of the released target left: %v", left)
	}
	if err := tr.ReleaseTarget(old); err == nil {
		t.Error("a second release of the same target succeeded")
	}
	if _, err := tr.Syscalls(old); err == nil {
		t.Error("Syscalls of a released target succeeded")
	}
	reused, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	if reused%MaxTargets != old%MaxTargets || reused == old || slices.Contains(ids, reused) {
		t.Fatalf("reallocated %d after releasing %d (ids in use %v): want the freed slot under a new id", reused, old, ids[1:])
	}
	if err := tr.Watch(reused, policy); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.NewTarget(); err == nil {
		t.Fatal("a 64th target was allocated")
	}

	// A process of the old target that escaped the release (a fork racing with it)
	// still carries the old id: it runs a refused mkdir under the reused slot's
	// policy, and must be dropped, not taken for the new target.
	if err := tr.maps.Tasks.Put(uint32(s.cmd.Process.Pid), tracerTaskInfo{Target: old}); err != nil {
		t.Fatal(err)
	}
	s.next(t)
	var info tracerTaskInfo
	if err := tr.maps.Tasks.Lookup(uint32(s.cmd.Process.Pid), &info); err == nil {
		t.Errorf("the escaped process of the released target is still a task: %+v", info)
	}
	tr.Flush()
	oldEvents := 0
	drain(tr, func(ev Event) {
		switch eventTarget(ev) {
		case old:
			oldEvents++
		case reused:
			t.Errorf("event of the reused slot before its target ran anything: %#v", ev)
		}
	})
	if oldEvents == 0 {
		t.Error("no event of the released target was pending: the test shows nothing about them")
	}
	sc, err := tr.Syscalls(reused)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) > 0 {
		t.Errorf("the reused slot's new target ran nothing yet has syscalls: %v", sc)
	}
	if a := tr.Anomalies(reused); len(a) > 0 {
		t.Errorf("the reused slot's new target has anomalies: %+v", a)
	}
	if c := tr.Capabilities(reused); len(c) > 0 {
		t.Errorf("the reused slot's new target has capability checks: %+v", c)
	}
	if n := tr.Network(reused); len(n) > 0 {
		t.Errorf("the reused slot's new target has network uses: %+v", n)
	}

	// The new target sees its own: the file the old one also read is reported again
	// (files_seen forgot the old key), with no mkdir of its own.
	runTarget(t, tr, reused, []string{"TAILOR_BPF_TEST_DENY=1"}, "/bin/sh", "-c", "cat /etc/hostname >/dev/null")
	tr.Flush()
	sawHostname := false
	drain(tr, func(ev Event) {
		if f, ok := ev.(*FileEvent); ok && f.Target == reused && f.Path == "/etc/hostname" {
			sawHostname = true
		}
		if a, ok := ev.(*AnomalyEvent); ok && a.Target == reused {
			t.Errorf("anomaly of the new target, which stayed within the policy: %+v", a)
		}
	})
	if !sawHostname {
		t.Error("the new target's read of /etc/hostname was not reported")
	}
	if sc, err := tr.Syscalls(reused); err != nil || slices.ContainsFunc(sc[TableNative], func(nr int) bool {
		_, n, _ := SyscallName(TableNative, nr)
		return n == "mkdir" || n == "mkdirat" || n == "chown" || n == "fchownat"
	}) {
		t.Errorf("the new target's syscalls include the old one's (or failed: %v): %v", err, sc)
	}

	// Every slot released and allocated again, then released: nothing of any target
	// is left anywhere.
	all := append(slices.Clone(ids[1:]), reused)
	for _, id := range all {
		if err := tr.ReleaseTarget(id); err != nil {
			t.Fatal(err)
		}
	}
	if left := perTarget(t, tr, 0); len(left) > 0 {
		t.Errorf("entries left after every target was released: %v", left)
	}
	var again []uint32
	for range MaxTargets - 1 {
		id, err := tr.NewTarget()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(all, id) || id == old {
			t.Errorf("id %d handed out twice", id)
		}
		again = append(again, id)
	}
	if _, err := tr.NewTarget(); err == nil {
		t.Fatal("a 64th target was allocated after reallocating every slot")
	}
	for _, id := range again {
		if err := tr.ReleaseTarget(id); err != nil {
			t.Fatal(err)
		}
	}
	if left := perTarget(t, tr, 0); len(left) > 0 {
		t.Errorf("entries left after the second round: %v", left)
	}
	s.in.Close()
	c, err := tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.RingbufDrops+c.TasksFull+c.DecodeErrors+c.ChannelDrops != 0 {
		t.Errorf("losses: %+v", c)
	}
}

// eventTarget is the target an event is attributed to.
func eventTarget(ev Event) uint32 {
	switch e := ev.(type) {
	case *FileEvent:
		return e.Target
	case *ExecEvent:
		return e.Target
	case *AnomalyEvent:
		return e.Target
	case *NetEvent:
		return e.Target
	}
	return 0
}

func TestOptionsTargets(t *testing.T) {
	tr := openTracerWith(t, Options{Targets: 2})
	a, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.NewTarget(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.NewTarget(); err == nil || !strings.Contains(err.Error(), "all 2 targets in use") {
		t.Fatalf("a third target of two: %v", err)
	}
	if err := tr.ReleaseTarget(a); err != nil {
		t.Fatal(err)
	}
	if c, err := tr.NewTarget(); err != nil || c%MaxTargets != a%MaxTargets || c == a {
		t.Fatalf("after a release: %d, %v (released %d)", c, err, a)
	}
	testOpenRefuses(t, Options{Targets: int(MaxTargets)})
}

func testOpenRefuses(t *testing.T, opt Options) {
	t.Helper()
	if tr, err := Open(opt); err == nil {
		tr.Close()
		t.Errorf("Open(%+v) succeeded", opt)
	}
}

// TestDeleteWhereSkipsKeysGoneMeanwhile: keys that go between the read and the
// delete (an LRU map's eviction, the kernel's own delete) do not stop the deletion of
// the others, nor touch another target's.
func TestDeleteWhereSkipsKeysGoneMeanwhile(t *testing.T) {
	tr := openTracer(t)
	m := tr.maps.OpsSeen
	for i := range uint64(2000) {
		if err := m.Put(tracerOpKey{Hash: i, Target: 7 + uint32(i%2)}, uint8(1)); err != nil {
			t.Fatal(err)
		}
	}
	gone := 0
	err := deleteWhere(m, func(k *tracerOpKey, _ *uint8) bool {
		if k.Target != 7 {
			return false
		}
		if k.Hash%10 == 0 {
			if err := m.Delete(k); err != nil {
				t.Fatal(err)
			}
			gone++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	left := map[uint32]int{}
	countWhere(t, m, func(k *tracerOpKey, _ *uint8) bool { left[k.Target]++; return true })
	if gone != 200 || left[7] != 0 || left[8] != 1000 {
		t.Errorf("%d keys gone meanwhile; left %v: want none of target 7, all 1000 of target 8", gone, left)
	}
}
