package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// runTailorEnv runs the built tailor with extra environment and returns its exit
// code and its stderr's last line.
func runTailorEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(tailorBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	return exitCode(err), lines[len(lines)-1]
}

// lastSummary reads an anomalies file's last line, which must be the summary record.
func lastSummary(t *testing.T, path string) watch.Summary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var s watch.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Kind != "summary" {
		t.Fatalf("%s does not end with the summary record: %q (%v)", path, lines[len(lines)-1], err)
	}
	return s
}

// TestLossIsDeclared: loss forced through the whole CLI with a one-page ring buffer
// (the TAILOR_TEST_RING_BUFFER knob) under a flood of distinct file creations.
// learn exits 5 with an incomplete recording; enforce's anomalies file ends with a
// summary record counting the drops, and --fail-on-loss turns them into exit 5 with
// one line; with the default buffer the same flag on a small flood exits 0 with a
// summary of no loss.
func TestLossIsDeclared(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		testpriv.Unavailable(t, "gcc is needed to build testdata/targets/openflood.c")
	}
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	flood := p("openflood")
	if out, err := exec.Command("gcc", "-O2", "-o", flood, "../../testdata/targets/openflood.c").CombinedOutput(); err != nil {
		t.Fatalf("building openflood: %v\n%s", err, out)
	}
	files := p("files")
	if err := os.Mkdir(files, 0o700); err != nil {
		t.Fatal(err)
	}
	tiny := []string{bpf.RingBufferEnv + "=4096"}
	const many = "20000"

	// learn: loss is exit 5 by default, the recording written and incomplete.
	code, msg := runTailorEnv(t, tiny, "learn", "-o", p("lossy.json"), "--", flood, files, "30", many)
	if code != 5 || !strings.Contains(msg, "lost") {
		t.Errorf("learn with a one-page ring buffer: exit %d, last line %q; want 5", code, msg)
	}
	if rec, err := profiles.LoadRecording(p("lossy.json")); err != nil || rec.Complete || rec.Loss.Total() == 0 {
		t.Errorf("lossy recording: %v, complete %v, loss %+v", err, rec != nil && rec.Complete, rec)
	}

	// The bundle enforce runs under comes from a learn without loss.
	if code, msg := runTailor(t, "learn", "-o", p("flood.json"), "--", flood, files, "30", "200"); code != 0 {
		t.Fatalf("learn: exit %d: %s", code, msg)
	}
	if code, msg := runTailor(t, "generate", "-o", p("bundle"), p("flood.json")); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, msg)
	}

	enforceArgs := func(anomalies string, extra ...string) []string {
		return append(append([]string{"enforce", "--profile", p("bundle"), "--anomalies", anomalies}, extra...), "--", flood, files, "30")
	}
	// Without --fail-on-loss: the target's status, the loss declared in the file.
	code, msg = runTailorEnv(t, tiny, append(enforceArgs(p("a1.jsonl")), many)...)
	s := lastSummary(t, p("a1.jsonl"))
	if code != 0 || s.Lost == 0 || s.LostBy["ringbufDrops"] == 0 {
		t.Errorf("enforce with a one-page ring buffer: exit %d (%q), summary %+v; want 0 and drops counted", code, msg, s)
	}
	t.Logf("one-page ring buffer, %s creations: summary %+v", many, s)

	// With it: exit 5 and one line naming the counters.
	code, msg = runTailorEnv(t, tiny, append(enforceArgs(p("a2.jsonl"), "--fail-on-loss"), many)...)
	s = lastSummary(t, p("a2.jsonl"))
	if code != 5 || !strings.HasPrefix(msg, "tailor: observations lost: ") || !strings.Contains(msg, "ringbufDrops") || s.Lost == 0 {
		t.Errorf("enforce --fail-on-loss with loss: exit %d, last line %q, summary %+v; want 5", code, msg, s)
	}

	// No loss: the flag changes nothing, and the file still ends with its summary.
	code, msg = runTailorEnv(t, nil, append(enforceArgs(p("a3.jsonl"), "--fail-on-loss"), "1000")...)
	s = lastSummary(t, p("a3.jsonl"))
	if code != 0 || s.Lost != 0 {
		t.Errorf("enforce --fail-on-loss without loss: exit %d (%q), summary %+v; want 0", code, msg, s)
	}
}
