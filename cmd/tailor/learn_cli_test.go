package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

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

// bpfProgramsNamed lists loaded BPF programs whose name is one of tailor's.
func tailorProgramsLoaded(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("bpftool", "prog", "show").CombinedOutput()
	if err != nil {
		testpriv.Unavailable(t, "bpftool prog show failed: "+string(out))
	}
	var found []string
	for _, name := range []string{"sys_enter_btf", "sys_enter_raw", "exit_openat", "capable_btf", "exec_btf", "fork_btf"} {
		if bytes.Contains(out, []byte("name "+name+" ")) || bytes.Contains(out, []byte("name "+name+"\n")) {
			found = append(found, name)
		}
	}
	return found
}

// TestLearnInterruptedSavesIncomplete: SIGINT while the target runs stops the target,
// writes what was recorded marked incomplete, exits 130, and leaves no BPF program or
// process behind.
func TestLearnInterruptedSavesIncomplete(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	if left := tailorProgramsLoaded(t); len(left) > 0 {
		t.Fatalf("tailor programs loaded before the test: %v", left)
	}
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
	if left := tailorProgramsLoaded(t); len(left) > 0 {
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
	out := filepath.Join(t.TempDir(), "rec.json")
	cmd := exec.Command(bin, "learn", "-o", out, "--workload", "exit 3", "--", "sleep", "600")
	b, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 8 {
		t.Fatalf("exit code %d, want 8 (workload failed); output: %s", code, b)
	}
	rec, err := profiles.LoadRecording(out)
	if err != nil {
		t.Fatalf("recording not written: %v", err)
	}
	if rec.Target.Workload != "exit 3" {
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
