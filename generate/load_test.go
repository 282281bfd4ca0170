package generate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// childEnv names the profile the test binary, re-run as a child, loads before it
// executes the probe.
const childEnv = "TAILOR_TEST_SECCOMP_CHILD"

// childComplainEnv makes the child load the profile in complain mode.
const childComplainEnv = "TAILOR_TEST_SECCOMP_COMPLAIN"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(seccompChild(path, os.Args[1]))
	}
	code := m.Run()
	if probeDir != "" {
		os.RemoveAll(probeDir)
	}
	os.Exit(code)
}

// seccompChild loads the profile at path into this thread and executes the probe
// under it, as enforce's launcher does: the filter is installed right before execve.
func seccompChild(path, probe string) int {
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
	// Everything execve needs is made before the filter exists, and the filter is
	// installed and the probe executed by two raw syscalls with signals blocked: no Go
	// runtime code may run under the probe's profile (a cgo return or a preemption
	// signal can need futex, nanosleep or mmap), as in enforce's launcher.
	prog, err := exportBPF(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	exe, err := unix.BytePtrFromString(probe)
	if err != nil {
		return 3
	}
	argv := []*byte{exe, nil}
	envv := []*byte{nil}
	fprog := unix.SockFprog{Len: uint16(len(prog) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	all := ^uint64(0)
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&all)), 0, 8, 0, 0)
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return 4
	}
	_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(exe)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])))
	return 100 + int(e)
}

// exportBPF returns the compiled filter as the raw BPF program the kernel takes.
func exportBPF(f interface{ ExportBPF(*os.File) error }) ([]byte, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	errc := make(chan error, 1)
	go func() { errc <- f.ExportBPF(w); w.Close() }()
	prog, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		return nil, fmt.Errorf("exported BPF program of %d bytes", len(prog))
	}
	return prog, nil
}

var (
	probeOnce  sync.Once
	probeDir   string
	probePath  string
	probeCalls []string
	probeErr   error
)

// deniedProbes are the probe's calls the profile must refuse: never in the recording.
var deniedProbes = map[string]bool{"sync": true, "unshare": true, "clone3": true}

// buildProbe compiles testdata/seccomp/probe.c statically and derives the syscalls it
// makes from strace, less the ones the test expects the profile to refuse.
func buildProbe(t *testing.T) (string, []string) {
	t.Helper()
	probeOnce.Do(func() {
		if probeDir, probeErr = os.MkdirTemp("", "tailor-probe-"); probeErr != nil {
			return
		}
		probePath = filepath.Join(probeDir, "probe")
		src := filepath.Join("..", "testdata", "seccomp", "probe.c")
		if out, err := exec.Command("gcc", "-static", "-O2", "-o", probePath, src).CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("gcc -static: %v\n%s", err, out)
			return
		}
		trace := filepath.Join(probeDir, "strace.out")
		if out, err := exec.Command("strace", "-f", "-qq", "-o", trace, probePath).CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("strace: %v\n%s", err, out)
			return
		}
		data, err := os.ReadFile(trace)
		if err != nil {
			probeErr = err
			return
		}
		seen := map[string]bool{}
		for _, m := range straceName.FindAllStringSubmatch(string(data), -1) {
			if !deniedProbes[m[1]] && !seen[m[1]] {
				seen[m[1]] = true
				probeCalls = append(probeCalls, m[1])
			}
		}
	})
	if probeErr != nil {
		if _, err := exec.LookPath("strace"); err != nil {
			testpriv.Unavailable(t, "strace is not installed (make setup installs it)")
		}
		t.Fatalf("building the probe: %v", probeErr)
	}
	return probePath, probeCalls
}

// straceName matches the syscall name at the start of an strace line.
var straceName = regexp.MustCompile(`(?m)^(?:\d+ +)?([a-z0-9_]+)\(`)

// probeRecording is what learning the probe records.
func probeRecording(calls []string) *profiles.Recording {
	return &profiles.Recording{
		Kind: profiles.RecordingKind, SchemaVersion: profiles.RecordingSchemaVersion, Complete: true,
		Target:   profiles.Target{Kind: "command", Command: []string{"/usr/bin/probe"}},
		Host:     profiles.Host{Machine: "x86_64"},
		Syscalls: []profiles.ArchSyscalls{{Arch: profiles.ArchX86_64, Names: calls}},
		Network:  profiles.Network{Sockets: []profiles.Socket{{Family: "AF_INET", Type: "SOCK_DGRAM"}}},
	}
}

// runChild generates a bundle from probeRecording, runs the probe under its
// seccomp.json and returns the probe's report.
func runChild(t *testing.T, complain bool) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("the probe recording is written for x86_64")
	}
	probe, calls := buildProbe(t)
	b, err := Generate([]*profiles.Recording{probeRecording(calls)}, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], probe)
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
	want := "getpid=ok sync=EPERM socket(AF_INET)=ok socket(AF_PACKET)=EPERM clone3=ENOSYS unshare=EPERM"
	if got := runChild(t, false); got != want {
		t.Errorf("under the generated profile:\n got  %s\n want %s", got, want)
	}
}

// In complain mode nothing is stopped by the filter: sync runs and clone3 reaches the
// kernel, which rejects its NULL argument itself.
func TestGeneratedProfileComplain(t *testing.T) {
	got := runChild(t, true)
	if !strings.Contains(got, "sync=ok") || strings.Contains(got, "clone3=ENOSYS") {
		t.Errorf("under the complain-mode profile: %s", got)
	}
}
