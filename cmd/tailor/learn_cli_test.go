package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// tailorBin builds the tailor binary once per test run.
func tailorBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailor-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tailor")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("building tailor: %v", binErr)
	}
	return binPath
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// tailorProgramsLeft lists loaded BPF programs with one of tailor's names that no live
// process holds (a leak: pinned or orphaned), or that pid still holds. Programs of
// other test processes running at the same time are held by those and not counted.
func tailorProgramsLeft(t *testing.T, pid int) []string {
	t.Helper()
	out, err := exec.Command("bpftool", "prog", "show").CombinedOutput()
	if err != nil {
		testpriv.Unavailable(t, "bpftool prog show failed: "+string(out))
	}
	names := map[string]bool{"sys_enter_btf": true, "sys_enter_raw": true, "exit_openat": true, "capable_btf": true, "exec_btf": true, "fork_btf": true}
	var left []string
	// Blocks start with "ID: type  name NAME ..." and may have a "pids comm(PID)" line.
	for _, block := range regexp.MustCompile(`(?m)^\d+: `).Split(string(out), -1) {
		m := regexp.MustCompile(`name (\S+)`).FindStringSubmatch(block)
		if m == nil || !names[m[1]] {
			continue
		}
		if !strings.Contains(block, "pids ") || strings.Contains(block, "("+strconv.Itoa(pid)+")") {
			left = append(left, m[1])
		}
	}
	return left
}

// TestLearnInterruptedSavesIncomplete: SIGINT while the target runs stops the target,
// writes what was recorded marked incomplete, exits 130, and leaves no BPF program or
// process behind.
func TestLearnInterruptedSavesIncomplete(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pid")
	out := filepath.Join(dir, "rec.json")
	cmd := exec.Command(bin, "learn", "-o", out, "--stop-timeout", "5s", "--",
		"/bin/sh", "-c", "echo $$ > "+pidFile+"; cat /etc/hostname >/dev/null; echo ready > "+fifo+"; exec sleep 600")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Opening the FIFO blocks until the target wrote to it: no sleeping.
	ready, err := os.ReadFile(fifo)
	if err != nil || !strings.Contains(string(ready), "ready") {
		t.Fatalf("target never got ready: %v %q", err, ready)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if code := exitCode(err); code != 130 {
		t.Fatalf("exit code %d, want 130; stderr: %s", code, stderr.String())
	}
	rec, err := profiles.LoadRecording(out)
	if err != nil {
		t.Fatalf("recording not saved after interrupt: %v", err)
	}
	if rec.Complete || len(rec.Incomplete) == 0 {
		t.Errorf("interrupted recording not marked incomplete: complete=%v %v", rec.Complete, rec.Incomplete)
	}
	found := false
	for _, f := range rec.Files {
		found = found || f.Path == "/etc/hostname"
	}
	if !found {
		t.Errorf("what was seen before the interrupt is missing (/etc/hostname)")
	}
	pid, _ := os.ReadFile(pidFile)
	if p := strings.TrimSpace(string(pid)); p != "" {
		if _, err := os.Stat("/proc/" + p); err == nil {
			st, _ := os.ReadFile("/proc/" + p + "/stat")
			if !strings.Contains(string(st), ") Z") {
				t.Errorf("target process %s still alive after the interrupt", p)
			}
		}
	}
	// The kernel frees a program from a work queue after its last reference goes, so
	// a program may still be listed for a moment after tailor exited: it must be gone
	// within a bounded time, held by nobody.
	deadline := time.Now().Add(5 * time.Second)
	left := tailorProgramsLeft(t, cmd.Process.Pid)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		left = tailorProgramsLeft(t, cmd.Process.Pid)
	}
	if len(left) > 0 {
		t.Errorf("BPF programs left loaded after the interrupt: %v", left)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n") + 1; !strings.Contains(stderr.String(), "interrupted") || lines > 4 {
		t.Errorf("stderr should say briefly that it was interrupted and saved; got:\n%s", stderr.String())
	}
}

// TestLearnWorkloadStopsTarget: the target is stopped when --workload finishes, and a
// failing workload gives exit 8 with the recording still written.
func TestLearnWorkloadStopsTarget(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "rec.json")
	// The workload waits for the target to be running (the FIFO), then fails.
	workload := "cat " + fifo + " >/dev/null; exit 3"
	cmd := exec.Command(bin, "learn", "-o", out, "--workload", workload, "--", "/bin/sh", "-c", "echo ready > "+fifo+"; exec sleep 600")
	b, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 8 {
		t.Fatalf("exit code %d, want 8 (workload failed); output: %s", code, b)
	}
	rec, err := profiles.LoadRecording(out)
	if err != nil {
		t.Fatalf("recording not written: %v", err)
	}
	if rec.Target.Workload != workload {
		t.Errorf("workload not in the recording: %+v", rec.Target)
	}
}

// TestLearnDuration: --duration stops a long-running target; the recording is complete.
func TestLearnDuration(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	out := filepath.Join(t.TempDir(), "rec.json")
	b, err := exec.Command(bin, "learn", "-o", out, "--duration", "300ms", "--", "sleep", "600").CombinedOutput()
	if err != nil {
		t.Fatalf("learn: %v: %s", err, b)
	}
	rec, err := profiles.LoadRecording(out)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Complete {
		t.Errorf("a run stopped by --duration is complete, got incomplete: %v", rec.Incomplete)
	}
}

func TestErrorsAreOneLineWithCodes(t *testing.T) {
	bin := tailorBin(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"learn", "-o", filepath.Join(t.TempDir(), "x.json")}, 2, "no command to learn"},
		{[]string{"learn", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"learn", "-o", "/nonexistent-dir/x.json", "--", "true"}, 2, "does not exist"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := exitCode(err); code != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr %q", tc.args, code, tc.code, stderr.String())
		}
		msg := strings.TrimSpace(stderr.String())
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, msg, tc.want)
		}
	}
}

// TestLocalLoopLearnGenerateEnforce is the main job end to end: a local command learned,
// its profile generated, and the same command run under enforce three times in a row.
func TestLocalLoopLearnGenerateEnforce(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	dir := t.TempDir()
	rec := filepath.Join(dir, "app.rec.json")
	prof := filepath.Join(dir, "prof")
	work := []string{"/bin/sh", "-c", "cat /etc/hostname >/dev/null; ls /usr >/dev/null; date >/dev/null"}
	if b, err := exec.Command(bin, append([]string{"learn", "-o", rec, "--"}, work...)...).CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, b)
	}
	if b, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, b)
	}
	for i := 0; i < 3; i++ {
		b, err := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--"}, work...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("enforce run %d: %v: %s", i+1, err, b)
		}
	}
	// The profile is not a no-op: something outside it is refused.
	b, err := exec.Command(bin, "enforce", "--profile", prof, "--", "/bin/sh", "-c", "cat /etc/shadow").CombinedOutput()
	if err == nil {
		t.Fatalf("reading /etc/shadow under the profile succeeded: %s", b)
	}
}
