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
	// The binaries built once per run go with it.
	for _, bin := range []string{binPath, pathopsBin} {
		if bin != "" {
			os.RemoveAll(filepath.Dir(bin))
		}
	}
	if sharedWatchEnv != nil {
		os.RemoveAll(sharedWatchEnv.dir)
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

// heldPrograms returns the IDs of the BPF programs process pid holds, read from the
// fdinfo of its program and link descriptors.
func heldPrograms(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fdinfo"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	ids := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if m := regexp.MustCompile(`(?m)^prog_id:\s+(\d+)$`).FindSubmatch(b); m != nil {
			ids[string(m[1])] = true
		}
	}
	return ids
}

// programsLoaded returns those of ids the kernel still has loaded.
func programsLoaded(t *testing.T, ids map[string]bool) []string {
	t.Helper()
	var left []string
	for id := range ids {
		if err := exec.Command("bpftool", "prog", "show", "id", id).Run(); err == nil {
			left = append(left, id)
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
	held := heldPrograms(t, cmd.Process.Pid)
	if len(held) < 4 {
		t.Fatalf("the running learn holds %d BPF programs, want its tracer's (>= 4)", len(held))
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
	// a program may still be listed for a moment after tailor exited: every program
	// the learn held must be gone within a bounded time.
	deadline := time.Now().Add(5 * time.Second)
	left := programsLoaded(t, held)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		left = programsLoaded(t, held)
	}
	if len(left) > 0 {
		t.Errorf("BPF programs %v of the interrupted learn are still loaded", left)
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
