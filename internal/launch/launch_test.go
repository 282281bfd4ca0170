package launch

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tailor-sec/tailor/internal/fail"
)

// The test binary is its own launcher: /proc/self/exe __launch MODE lands here.
func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

func run(t *testing.T, argv ...string) (string, int, error) {
	t.Helper()
	var out bytes.Buffer
	p, err := Start("learn", Payload{Argv: argv, Env: []string{"PATH=/usr/bin:/bin"}}, Stdio{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	status, err := p.Wait()
	return out.String(), status, err
}

func TestPidKnownBeforeRelease(t *testing.T) {
	var out bytes.Buffer
	p, err := Start("learn", Payload{Argv: []string{"sh", "-c", "echo $$"}, Env: []string{"PATH=/usr/bin:/bin"}}, Stdio{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	// Before the release the pid is still the launcher, waiting: the kernel sets a
	// process's exe during execve before it closes the CLOEXEC pipe cmd.Start waits
	// on, so it is already the launcher's (this test binary) when Start returns.
	// (The cmdline is not: the argument pages are set up after that close.)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(p.Pid()) + "/exe"); err != nil || exe != self {
		t.Fatalf("before release, pid %d runs %q (%v), want the launcher %s", p.Pid(), exe, err, self)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	status, err := p.Wait()
	if err != nil || status != 0 {
		t.Fatalf("status %d, err %v", status, err)
	}
	if got := strings.TrimSpace(out.String()); got != strconv.Itoa(p.Pid()) {
		t.Fatalf("target ran as pid %s, launcher was %d", got, p.Pid())
	}
}

func TestLearnModeInstallsFilterAndNoNewPrivs(t *testing.T) {
	out, status, err := run(t, "cat", "/proc/self/status")
	if err != nil || status != 0 {
		t.Fatalf("status %d, err %v", status, err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	for k, want := range map[string]string{"Seccomp": "2", "NoNewPrivs": "1", "Seccomp_filters": "1"} {
		if fields[k] != want {
			t.Errorf("%s: %q, want %q", k, fields[k], want)
		}
	}
}

func TestExitStatusIsTheTargets(t *testing.T) {
	_, status, err := run(t, "sh", "-c", "exit 42")
	if err != nil || status != 42 {
		t.Fatalf("status %d, err %v; want 42, nil", status, err)
	}
	_, status, err = run(t, "sh", "-c", "kill -TERM $$")
	if err != nil || status != 128+int(syscall.SIGTERM) {
		t.Fatalf("status %d, err %v; want %d, nil", status, err, 128+int(syscall.SIGTERM))
	}
}

func TestCommandNotFound(t *testing.T) {
	_, _, err := run(t, "tailor-no-such-command")
	if err == nil {
		t.Fatal("no error for a missing command")
	}
	if fail.Code(err) != 2 || !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("exit code %d (%v), want 2", fail.Code(err), err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, `"tailor-no-such-command" not found`) {
		t.Errorf("message %q, want one line naming the command", msg)
	}
}

func TestUnreleasedChildIsAborted(t *testing.T) {
	p, err := Start("learn", Payload{Argv: []string{"true"}}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err == nil || !strings.Contains(err.Error(), "before releasing") {
		t.Fatalf("err %v, want the child to abort", err)
	}
}

// The Go runtime raises the soft RLIMIT_NOFILE at start-up; the target must get the
// limit tailor was started with, restored before the filter is loaded.
func TestNofileRestored(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max <= 512 {
		t.Skipf("hard RLIMIT_NOFILE %d leaves no room to tell a restored limit from a raised one", orig.Max)
	}
	low := syscall.Rlimit{Cur: 512, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
	out, status, err := run(t, "sh", "-c", "ulimit -Sn")
	if err != nil || status != 0 {
		t.Fatalf("status %d, err %v", status, err)
	}
	if got := strings.TrimSpace(out); got != "512" {
		t.Fatalf("target soft RLIMIT_NOFILE %s, want 512", got)
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("attaching strace needs root in CI")
		}
		t.Skip("attaching strace needs root")
	}
	return path
}

// Nothing may run between loading the filter and execve: the filter would judge it.
func TestSeccompIsFollowedByExecve(t *testing.T) {
	straceBin := requireTool(t, "strace")
	p, err := Start("learn", Payload{Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	// -ff: one file per thread, so no call is split into "unfinished"/"resumed" lines.
	st := exec.Command(straceBin, "-ff", "-o", log, "-p", strconv.Itoa(p.Pid()))
	stderr, err := st.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	// strace reports each thread it attached to; release once the main thread is.
	want := "Process " + strconv.Itoa(p.Pid()) + " attached"
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), want) {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if status, err := p.Wait(); err != nil || status != 0 {
		t.Fatalf("status %d, err %v", status, err)
	}
	if err := st.Wait(); err != nil {
		t.Fatalf("strace: %v", err)
	}
	data, err := os.ReadFile(log + "." + strconv.Itoa(p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	main := strings.Split(string(data), "\n")
	for i, l := range main {
		// libseccomp probes the kernel with NULL programs first; the load has one.
		if strings.HasPrefix(l, "seccomp(SECCOMP_SET_MODE_FILTER") && strings.Contains(l, "{len=") {
			if !strings.Contains(l, "= 0") {
				t.Fatalf("seccomp failed: %s", l)
			}
			if i+1 >= len(main) || !strings.HasPrefix(main[i+1], "execve(") {
				t.Fatalf("after %q the main thread made %q, want execve", l, main[i+1:min(i+2, len(main))])
			}
			if !strings.Contains(l, "SECCOMP_SET_MODE_FILTER, 0,") {
				t.Errorf("filter loaded with flags (TSYNC?): %s", l)
			}
			return
		}
	}
	t.Fatalf("no seccomp call by thread %d in the strace log:\n%s", p.Pid(), data)
}
