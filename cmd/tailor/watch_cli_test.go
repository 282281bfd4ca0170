package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/fswait"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

// watchEnv is a static workload learned and its bundle generated, shared by the
// anomaly tests: learning ran IN -> OUT plus chownself, so chown is in the profile
// but CAP_CHOWN is not.
type watchEnv struct {
	bin, dir, workload, in, out, prof, mnt string
}

var sharedWatchEnv *watchEnv

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	testpriv.RequireRoot(t)
	if sharedWatchEnv != nil {
		return sharedWatchEnv
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		testpriv.Unavailable(t, "gcc is needed to build testdata/enforce/workload.c")
	}
	dir, err := os.MkdirTemp("", "tailor-watch-test-")
	if err != nil {
		t.Fatal(err)
	}
	e := &watchEnv{bin: tailorBin(t), dir: dir, workload: filepath.Join(dir, "workload"),
		in: filepath.Join(dir, "in.txt"), out: filepath.Join(dir, "out.txt"), prof: filepath.Join(dir, "prof"),
		mnt: filepath.Join(dir, "mnt")}
	if b, err := exec.Command("gcc", "-static", "-O1", "-o", e.workload, "../../testdata/enforce/workload.c").CombinedOutput(); err != nil {
		testpriv.Unavailable(t, "building the static workload (libc6-dev with libc.a needed): "+string(b))
	}
	if err := os.WriteFile(e.in, []byte("input\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec.json")
	if b, err := exec.Command(e.bin, "learn", "-o", rec, "--", e.workload, e.in, e.out, "chownself").CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, b)
	}
	if b, err := exec.Command(e.bin, "generate", "-o", e.prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, b)
	}
	sharedWatchEnv = e
	return e
}

// readAnomalies returns the anomaly lines of an anomalies file, without the
// summary record each run ends its lines with (lastSummary reads that).
func readAnomalies(t *testing.T, path string) []watch.Anomaly {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []watch.Anomaly
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var a watch.Anomaly
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("anomaly line %q: %v", sc.Text(), err)
		}
		if a.Kind != "summary" {
			out = append(out, a)
		}
	}
	return out
}

// TestEnforceReplayHasNoAnomalies: the learned run replayed under enforce with the
// tracer watching, three times, raises nothing.
func TestEnforceReplayHasNoAnomalies(t *testing.T) {
	e := newWatchEnv(t)
	for i := 0; i < 3; i++ {
		an := filepath.Join(t.TempDir(), "anomalies.jsonl")
		b, err := exec.Command(e.bin, "enforce", "--profile", e.prof, "--anomalies", an, "--fail-on-anomaly", "--",
			e.workload, e.in, e.out, "chownself").CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v: %s", i+1, err, b)
		}
		if !strings.Contains(string(b), "anomalies:    watched") || !strings.Contains(string(b), "chownself: ok") {
			t.Fatalf("run %d output: %s", i+1, b)
		}
		if got := readAnomalies(t, an); len(got) != 0 {
			t.Fatalf("run %d: anomalies in a replay of the learned run: %+v", i+1, got)
		}
		if s := lastSummary(t, an); s.Anomalies != 0 || s.Lost != 0 {
			t.Fatalf("run %d: summary %+v, want nothing seen or lost", i+1, s)
		}
	}
}

// injected runs ACTION then waits: the anomaly must be in the file within a second
// of the workload saying it is done with the action, while the target still runs.
func injected(t *testing.T, e *watchEnv, mode, action, kind string) (string, watch.Anomaly) {
	t.Helper()
	an := filepath.Join(t.TempDir(), "anomalies.jsonl")
	cmd := exec.Command(e.bin, "enforce", "--profile", e.prof, "--mode", mode, "--anomalies", an, "--",
		e.workload, e.in, e.out, action, "wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("%s %s: the workload never got to wait: %s %s", mode, action, out.String(), stderr.String())
	}
	// The watcher appends to the anomalies file: each write wakes the check.
	var found *watch.Anomaly
	if _, err := fswait.Until(an, time.Second, func() bool {
		for _, a := range readAnomalies(t, an) {
			if a.Kind == kind {
				found = &a
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s %s: %v: %s %s", mode, action, err, out.String(), stderr.String())
	}
	if found == nil {
		t.Fatalf("%s %s: no %s anomaly within a second; file has %+v; stderr %s", mode, action, kind, readAnomalies(t, an), stderr.String())
	}
	return out.String(), *found
}

var injections = []struct {
	action, kind, detail string
	// category and severity are what the anomaly must be classed as.
	category, severity string
	// result is what the workload prints for the action in enforce mode.
	result string
}{
	{"exec", "exec", "/bin/sh", watch.CatShell, watch.SeverityHigh, "exec: EACCES"},
	{"shadow", "file", "/etc/shadow", watch.CatSensitiveRead, watch.SeverityHigh, "shadow: EACCES"},
	{"ptrace", "syscall", "ptrace", watch.CatProcessInject, watch.SeverityHigh, "ptrace: EPERM"},
	{"mount=MNT", "syscall", "mount", watch.CatNamespace, watch.SeverityHigh, "mount: EPERM"},
	{"unshare", "syscall", "unshare", watch.CatNamespace, watch.SeverityHigh, "unshare: EPERM"},
	{"packet", "socket", "AF_PACKET", watch.CatRawNetwork, watch.SeverityHigh, "packet: EPERM"},
	{"chown", "capability", "CAP_CHOWN", watch.CatPrivilege, watch.SeverityHigh, "chown: EPERM"},
}

func TestInjectedBehaviourBlockedAndReported(t *testing.T) {
	e := newWatchEnv(t)
	for _, in := range injections {
		action := strings.Replace(in.action, "MNT", e.mnt, 1)
		out, a := injected(t, e, "enforce", action, in.kind)
		if !strings.Contains(out, in.result) {
			t.Errorf("enforce %s: not blocked: %s", in.action, out)
		}
		if a.Action != "blocked" || !strings.Contains(a.Detail, in.detail) || a.Rule == "" || a.Pid == 0 || a.Target == "" ||
			a.Category != in.category || a.Severity != in.severity {
			t.Errorf("enforce %s: anomaly %+v", in.action, a)
		}
	}
}

func TestInjectedBehaviourReportedInComplainMode(t *testing.T) {
	e := newWatchEnv(t)
	for _, in := range injections {
		action := strings.Replace(in.action, "MNT", e.mnt, 1)
		out, a := injected(t, e, "complain", action, in.kind)
		name, _, _ := strings.Cut(in.result, ":")
		if !strings.Contains(out, name+": ok") && in.action != "exec" {
			t.Errorf("complain %s: blocked: %s", in.action, out)
		}
		if a.Action != "allowed" || !strings.Contains(a.Detail, in.detail) || a.Category != in.category || a.Severity != in.severity {
			t.Errorf("complain %s: anomaly %+v", in.action, a)
		}
	}
	// complain mode must leave the output file owned by uid 1 after chown: put it back.
	os.Remove(e.out)
}

// TestAnomalyFloodIsBounded: a target calling a forbidden syscall in a tight loop
// leaves a few lines with the exact count, not one line per call.
func TestAnomalyFloodIsBounded(t *testing.T) {
	e := newWatchEnv(t)
	an := filepath.Join(t.TempDir(), "anomalies.jsonl")
	const n = 200000
	b, err := exec.Command(e.bin, "enforce", "--profile", e.prof, "--anomalies", an, "--",
		e.workload, e.in, e.out, "flood=200000").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	got := readAnomalies(t, an)
	if len(got) == 0 || len(got) > 10 {
		t.Fatalf("%d lines for a flood of %d calls: %+v", len(got), n, got)
	}
	last := got[len(got)-1]
	if last.Kind != "syscall" || !strings.Contains(last.Detail, "ptrace") || last.Count != n {
		t.Errorf("last line %+v, want ptrace with count %d", last, n)
	}
	if fi, err := os.Stat(an); err != nil || fi.Size() > 8192 {
		t.Errorf("anomalies file: %v, %d bytes", err, fi.Size())
	}
	if fi, err := os.Stat(an); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("anomalies file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestFailOnAnomalyExits7(t *testing.T) {
	e := newWatchEnv(t)
	cmd := exec.Command(e.bin, "enforce", "--profile", e.prof, "--fail-on-anomaly", "--", e.workload, e.in, e.out, "ptrace")
	b, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 7 {
		t.Fatalf("exit %d, want 7: %s", code, b)
	}
	// Without --anomalies and with stdout not a terminal, the JSON lines go to stdout.
	if !strings.Contains(string(b), `"kind":"syscall"`) {
		t.Errorf("no JSON anomaly on stdout: %s", b)
	}
}
