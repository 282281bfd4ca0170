package generate

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/profiles"
)

// childEnv names the profile the test binary, re-run as a child, loads before probing.
const childEnv = "TAILOR_TEST_SECCOMP_CHILD"

// childComplainEnv makes the child load the profile in complain mode.
const childComplainEnv = "TAILOR_TEST_SECCOMP_COMPLAIN"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(seccompChild(path))
	}
	os.Exit(m.Run())
}

// seccompChild loads the profile at path into this process and reports, one word per
// probe, what each syscall returned under it.
func seccompChild(path string) int {
	runtime.LockOSThread()
	p, err := profiles.LoadSeccomp(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	complain := os.Getenv(childComplainEnv) != ""
	f, err := profiles.CompileSeccomp(p, profiles.CompileOptions{NoNewPrivs: true, Complain: complain})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := f.Load(); err != nil {
		fmt.Fprintln(os.Stderr, "loading filter:", err)
		return 3
	}
	result := func(r1 uintptr, errno unix.Errno) string {
		if errno != 0 {
			return unix.ErrnoName(errno)
		}
		if r1 > 2 {
			unix.Close(int(r1))
		}
		return "ok"
	}
	var out []string
	r1, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	out = append(out, "getpid="+result(r1, e))
	r1, _, e = unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
	out = append(out, "getppid="+result(r1, e))
	r1, _, e = unix.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM, 0)
	out = append(out, "socket(AF_INET)="+result(r1, e))
	r1, _, e = unix.RawSyscall(unix.SYS_SOCKET, unix.AF_PACKET, unix.SOCK_DGRAM, 0)
	out = append(out, "socket(AF_PACKET)="+result(r1, e))
	// With a NULL argument the kernel itself would say EFAULT: ENOSYS comes from the filter.
	r1, _, e = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	out = append(out, "clone3="+result(r1, e))
	r1, _, e = unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUTS, 0, 0)
	out = append(out, "unshare="+result(r1, e))
	fmt.Println(strings.Join(out, " "))
	return 0
}

// goRuntime are the syscalls a Go program makes around the probes (threads, signals,
// memory, the write to stdout), so the recording below is one a real Go target
// could have produced.
var goRuntime = []string{
	"brk", "clone", "close", "epoll_create1", "epoll_ctl", "epoll_pwait", "exit", "exit_group",
	"fcntl", "fstat", "futex", "getpid", "getrlimit", "gettid", "madvise", "mmap", "mprotect",
	"munmap", "nanosleep", "newfstatat", "openat", "pipe2", "prctl", "prlimit64", "read",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity", "sched_yield",
	"sigaltstack", "socket", "tgkill", "write", "clone3",
}

// probeRecording is what a small Go program making the probes could have recorded.
func probeRecording() *profiles.Recording {
	return &profiles.Recording{
		Kind: profiles.RecordingKind, SchemaVersion: profiles.RecordingSchemaVersion, Complete: true,
		Target:   profiles.Target{Kind: "command", Command: []string{"/usr/bin/probe"}},
		Host:     profiles.Host{Machine: "x86_64"},
		Syscalls: []profiles.ArchSyscalls{{Arch: profiles.ArchX86_64, Names: goRuntime}},
		Network:  profiles.Network{Sockets: []profiles.Socket{{Family: "AF_INET", Type: "SOCK_DGRAM"}}},
	}
}

// runChild generates a bundle from probeRecording, runs the test binary as a child
// under its seccomp.json and returns the child's report.
func runChild(t *testing.T, complain bool) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the probe recording is written for x86_64")
	}
	b, err := Generate([]*profiles.Recording{probeRecording()}, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(dir, profiles.BundleSeccompFile))
	if complain {
		cmd.Env = append(cmd.Env, childComplainEnv+"=1")
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("child failed: %v\n%s", err, ee.Stderr)
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The generated seccomp.json, loaded as a real filter in a child process: a recorded
// syscall works, an unrecorded one gets EPERM, socket works only for the recorded
// family, clone3 gets ENOSYS so libc falls back to clone, unshare is refused.
func TestGeneratedProfileLoads(t *testing.T) {
	want := "getpid=ok getppid=EPERM socket(AF_INET)=ok socket(AF_PACKET)=EPERM clone3=ENOSYS unshare=EPERM"
	if got := runChild(t, false); got != want {
		t.Errorf("under the generated profile:\n got  %s\n want %s", got, want)
	}
}

// In complain mode nothing is stopped by the filter: getppid runs and clone3 reaches
// the kernel, which rejects its NULL argument itself.
func TestGeneratedProfileComplain(t *testing.T) {
	got := runChild(t, true)
	if !strings.Contains(got, "getppid=ok") || strings.Contains(got, "clone3=ENOSYS") {
		t.Errorf("under the complain-mode profile: %s", got)
	}
}
