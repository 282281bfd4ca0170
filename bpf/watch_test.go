package bpf

import (
	"os"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// allExcept is a watch policy allowing every native syscall but the named ones, every
// capability but the given ones and every address family.
func allExcept(t *testing.T, syscalls []string, caps []int) WatchPolicy {
	t.Helper()
	var p WatchPolicy
	deny := map[int]bool{}
	for _, n := range syscalls {
		nr := syscallNr(TableNative, n)
		if nr < 0 {
			t.Fatalf("no syscall %s", n)
		}
		deny[int(nr)] = true
	}
	p.Syscalls = map[Table][]int{}
	for nr := 0; nr < 1024; nr++ {
		if !deny[nr] {
			p.Syscalls[TableNative] = append(p.Syscalls[TableNative], nr)
		}
	}
	for c := 0; c < 64; c++ {
		if !slices.Contains(caps, c) {
			p.Capabilities = append(p.Capabilities, c)
		}
	}
	for f := 0; f < 64; f++ {
		p.Families = append(p.Families, f)
	}
	return p
}

func TestWatchReportsAnomalies(t *testing.T) {
	tr := openTracerWith(t, Options{Watch: true})
	target, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	// seccomp and prctl are outside the policy too: the launcher's own filter
	// install must not count as the target's anomaly.
	p := allExcept(t, []string{"mkdir", "mkdirat", "seccomp", "prctl"}, []int{unix.CAP_CHOWN})
	if err := tr.Watch(target, p); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/owned", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Each mkdir fails with the filter's EPERM; the appending open fails with EACCES;
	// chown as root passes an audited CAP_CHOWN check.
	script := "for i in 1 2 3 4 5; do mkdir " + dir + "/d 2>/dev/null; done; " +
		"(echo x >> " + dir + "/created) 2>/dev/null; chown nobody " + dir + "/owned; true"
	runTarget(t, tr, target, []string{"TAILOR_BPF_TEST_DENY=1"}, "/bin/sh", "-c", script)
	tr.Flush()

	var (
		events []*AnomalyEvent
		denied []*FileEvent
	)
	drain(tr, func(ev Event) {
		switch e := ev.(type) {
		case *AnomalyEvent:
			events = append(events, e)
		case *FileEvent:
			if e.Denied {
				denied = append(denied, e)
			}
		}
	})
	find := func(kind int, match func(*AnomalyEvent) bool) *AnomalyEvent {
		for _, e := range events {
			if e.Kind == kind && e.Target == target && match(e) {
				return e
			}
		}
		return nil
	}
	mkdirs := 0
	for _, e := range events {
		if e.Kind == AnomalySyscall {
			_, name, _ := SyscallName(e.Table, int(e.Value))
			switch name {
			case "mkdir", "mkdirat":
				mkdirs++
				if e.Ret != -int64(syscall.EPERM) || e.Comm != "mkdir" {
					t.Errorf("mkdir anomaly: ret %d comm %q, want -EPERM from mkdir", e.Ret, e.Comm)
				}
			default:
				t.Errorf("unexpected syscall anomaly %s (ret %d, comm %s)", name, e.Ret, e.Comm)
			}
		}
	}
	// Five mkdirs within a second are one report; the kernel counts all five.
	if mkdirs != 1 {
		t.Errorf("%d mkdir reports, want 1 (repeats within a second are counted, not reported)", mkdirs)
	}
	var counted uint64
	for _, c := range tr.Anomalies(target) {
		if c.Kind == AnomalySyscall {
			counted += c.Count
		}
	}
	if counted != 5 {
		t.Errorf("kernel counted %d syscall anomalies, want 5", counted)
	}
	var refused *FileEvent
	for _, e := range denied {
		if e.Path == dir+"/created" {
			refused = e
		}
	}
	if refused == nil {
		t.Errorf("refused appending open of %s/created not reported; denied %+v", dir, denied)
	} else if refused.Err != -int32(syscall.EACCES) || refused.Access != AccWrite|AccCreate || !refused.Args || refused.Count != 1 {
		t.Errorf("refused open: %+v", refused)
	}
	if e := find(AnomalyCapability, func(e *AnomalyEvent) bool { return e.Value == unix.CAP_CHOWN }); e == nil {
		t.Errorf("CAP_CHOWN check outside the policy not reported; events %+v", events)
	} else if e.Ret != 0 || e.Comm != "chown" {
		t.Errorf("capability anomaly: %+v", e)
	}
}

func TestWatchQuietWithinPolicy(t *testing.T) {
	tr := openTracerWith(t, Options{Watch: true})
	target, err := tr.NewTarget()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Watch(target, allExcept(t, nil, nil)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runTarget(t, tr, target, nil, "/bin/sh", "-c", "mkdir "+dir+"/d; echo x > "+dir+"/f; cat "+dir+"/f >/dev/null")
	tr.Flush()
	drain(tr, func(ev Event) {
		if a, ok := ev.(*AnomalyEvent); ok {
			t.Errorf("anomaly within the policy: %+v", a)
		}
	})
}

func TestWatchNeedsWatchOption(t *testing.T) {
	tr := openTracer(t)
	if err := tr.Watch(1, WatchPolicy{}); err == nil {
		t.Fatal("Watch on a tracer opened without Options.Watch succeeded")
	}
}
