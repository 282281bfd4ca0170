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
	"time"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/internal/testpriv"
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
	if cerr := p.Cleanup(); cerr != nil {
		t.Error(cerr)
	}
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

// pidsIn returns the processes of a cgroup directory.
func pidsIn(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return pids
}

// TestTargetInItsOwnCgroup: the target and everything it starts are in a cgroup of
// their own beneath tailor's; Cleanup kills a background process the target left
// and removes the cgroup, and the guard exits.
func TestTargetInItsOwnCgroup(t *testing.T) {
	testpriv.RequireRoot(t)
	// No pipe for stdout: the background sleep would hold it, and Wait with it.
	p, err := Start("learn", Payload{Argv: []string{"sh", "-c", "sleep 1000 &"}, Env: []string{"PATH=/usr/bin:/bin"}}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Contained(); err != nil {
		t.Fatalf("not contained here: %v", err)
	}
	root, err := cgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, guard := p.cg.dir, p.cg.guard.Process.Pid
	if filepath.Dir(dir) != root || !strings.HasPrefix(filepath.Base(dir), runPrefix) {
		t.Errorf("run cgroup %s, want a %s* child of %s", dir, runPrefix, root)
	}
	if got := pidsIn(t, dir); len(got) != 1 || got[0] != p.Pid() {
		t.Errorf("cgroup holds %v before the release, want the launcher %d", got, p.Pid())
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(); err != nil || st != 0 {
		t.Fatalf("status %d, %v", st, err)
	}
	left := pidsIn(t, dir)
	if len(left) != 1 {
		t.Fatalf("after the shell exited the cgroup holds %v, want its background sleep", left)
	}
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if !proc.WaitAll(append(left, guard), 5*time.Second) {
		t.Errorf("the background sleep %v or the guard %d still runs after Cleanup", left, guard)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Cleanup: %v", dir, err)
	}
}

// TestSweepRemovesWhatKilledRunsLeft: a run cgroup whose tailor is gone is emptied
// (its processes killed) and removed by the next run's sweep; one whose tailor runs
// is left alone.
func TestSweepRemovesWhatKilledRunsLeft(t *testing.T) {
	testpriv.RequireRoot(t)
	own, err := cgroupRoot()
	if err != nil {
		testpriv.Unavailable(t, "no cgroup v2 here: "+err.Error())
	}
	// A parent of its own: tailor runs of other tests sweep only their own parent's
	// run cgroups, so they cannot take this test's.
	root := filepath.Join(own, "tailor-sweep-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	defer removeCgroup(root)
	// A pid that is gone: a child that exited and was waited for.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	deadRun := filepath.Join(root, runName(gone.Process.Pid, 1, 0))
	start, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	liveRun := filepath.Join(root, runName(os.Getpid(), start, 99))
	var sleeps []int
	for _, dir := range []string{deadRun, liveRun} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := exec.Command("sleep", "1000")
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		go s.Wait()
		defer s.Process.Kill()
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(s.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		sleeps = append(sleeps, s.Process.Pid)
	}
	defer removeCgroup(liveRun)
	notes := sweep(root)
	if len(notes) != 1 || !strings.Contains(notes[0], "killed 1 processes") {
		t.Errorf("sweep notes %q, want one saying it killed 1 process", notes)
	}
	if !proc.WaitAll(sleeps[:1], 5*time.Second) {
		t.Error("the dead run's process still runs after the sweep")
	}
	if _, err := os.Stat(deadRun); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the sweep", deadRun)
	}
	if syscall.Kill(sleeps[1], 0) != nil {
		t.Error("the sweep killed a process of a run whose tailor is alive")
	}
	if _, err := os.Stat(liveRun); err != nil {
		t.Errorf("the sweep removed a live run's cgroup: %v", err)
	}
}

// TestNoCgroupFallsBack: where no cgroup can be made (no cgroup v2, not delegated),
// the target runs as before, PR_SET_PDEATHSIG only, and Contained says why.
func TestNoCgroupFallsBack(t *testing.T) {
	defer func(f func() (string, error)) { findRoot = f }(findRoot)
	findRoot = func() (string, error) { return "", errors.New("no cgroup v2 hierarchy is mounted") }
	out, status, err := run(t, "sh", "-c", "echo ran")
	if err != nil || status != 0 || out != "ran\n" {
		t.Fatalf("fallback run: %q %d %v", out, status, err)
	}
	p, err := Start("learn", Payload{Argv: []string{"true"}, Env: []string{"PATH=/usr/bin:/bin"}}, Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	if err := p.Contained(); err == nil || !strings.Contains(err.Error(), "no cgroup v2") {
		t.Errorf("Contained() = %v, want the reason", err)
	}
}
