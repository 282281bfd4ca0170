package watch

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/profiles"
)

// The syscalls the profile answers with ENOSYS (so libc falls back) are expected, not
// anomalies; those it denies with EPERM are.
func TestCompileTreatsENOSYSAsExpected(t *testing.T) {
	enosys, eperm := uint(unix.ENOSYS), uint(unix.EPERM)
	p := &enforce.Policy{
		Bundle: profiles.Bundle{Name: "t", Syscalls: []profiles.ArchSyscalls{{Arch: profiles.ArchX86_64, Names: []string{"read"}}}},
		Seccomp: &profiles.Seccomp{Syscalls: []*profiles.SeccompSyscall{
			{LinuxSyscall: specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys}},
			{LinuxSyscall: specs.LinuxSyscall{Names: []string{"ptrace"}, Action: specs.ActErrno, ErrnoRet: &eperm}},
		}},
	}
	_, wp, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	nr := func(name string) int {
		n, ok := bpf.SyscallNumber(bpf.TableNative, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return n
	}
	got := wp.Syscalls[bpf.TableNative]
	if !slices.Contains(got, nr("read")) || !slices.Contains(got, nr("clone3")) || slices.Contains(got, nr("ptrace")) {
		t.Errorf("watched allowed set %v: want read and clone3, not ptrace", got)
	}
}

// TestSameAnomalyInTwoTargetsIsTwo: the same behaviour in two targets watched at
// once is reported for each, with its own container and count.
func TestSameAnomalyInTwoTargetsIsTwo(t *testing.T) {
	var js lockedBuffer
	w := New(Options{JSON: &js})
	p := &enforce.Policy{Bundle: profiles.Bundle{Name: "t"}, Seccomp: &profiles.Seccomp{}}
	for id, ctr := range map[uint32]string{1: "aaaaaaaaaaaa", 2: "bbbbbbbbbbbb"} {
		tg, _, err := compile(p)
		if err != nil {
			t.Fatal(err)
		}
		tg.id, tg.container = id, ctr
		w.targets[id] = tg
	}
	for _, id := range []uint32{1, 2, 2} {
		w.handle(&bpf.ExecEvent{Target: id, Filename: "/bin/mkdir", By: "sh", Comm: "mkdir"})
	}
	got := map[string]uint64{}
	for _, a := range js.anomalies(t) {
		got[a.Container] = a.Count
	}
	if len(got) != 2 || got["aaaaaaaaaaaa"] != 1 || got["bbbbbbbbbbbb"] != 1 {
		t.Errorf("anomaly lines by container: %v, want one for each", got)
	}
	if s := w.Stats(); s.Anomalies["exec"] != 3 {
		t.Errorf("exec anomalies counted %d, want 3", s.Anomalies["exec"])
	}
}

// TestReadOnlyRefusal: a change the read-only root filesystem refused (EROFS, the
// hardened configuration of a container) is an anomaly the configuration blocked when
// no file rule grants it, and nothing when a rule grants it, when it repeats a
// failure learned with EROFS, or when the operation failed with another errno.
func TestReadOnlyRefusal(t *testing.T) {
	var js lockedBuffer
	w := New(Options{JSON: &js})
	p := &enforce.Policy{Bundle: profiles.Bundle{Name: "t",
		Files:  []profiles.FileRule{{Pattern: "/srv/nginx/logs/*", Access: []string{profiles.AccessCreate, profiles.AccessWrite}}},
		Failed: []profiles.FailedRule{{Pattern: "/var/cache/probe", Access: []string{profiles.AccessCreate, profiles.AccessWrite}, Errno: "EROFS"}},
	}, Seccomp: &profiles.Seccomp{}}
	tg, _, err := compile(p)
	if err != nil {
		t.Fatal(err)
	}
	tg.id = 1
	w.targets[1] = tg
	create := bpf.AccCreate | bpf.AccWrite
	for _, e := range []*bpf.FileEvent{
		{Target: 1, Pid: 0, Comm: "nginx", Access: create, Err: -int32(unix.EROFS), Nr: -1, Path: "/etc/fit-attack"},
		{Target: 1, Comm: "nginx", Access: create, Err: -int32(unix.EROFS), Nr: -1, Path: "/srv/nginx/logs/error.log"},
		{Target: 1, Comm: "nginx", Access: create, Err: -int32(unix.EROFS), Nr: -1, Path: "/var/cache/probe"},
		{Target: 1, Comm: "nginx", Access: create, Err: -int32(unix.ENOSPC), Nr: -1, Path: "/usr/bin/x"},
	} {
		w.handle(e)
	}
	got := js.anomalies(t)
	if len(got) != 1 {
		t.Fatalf("anomalies %+v, want one (the write below /etc)", got)
	}
	a := got[0]
	if a.Action != "blocked" || a.Category != CatSystemWrite || !strings.Contains(a.Detail, "/etc/fit-attack returned EROFS") || !strings.Contains(a.Rule, "read-only root filesystem") {
		t.Errorf("anomaly %+v", a)
	}
}
