package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

var updateAnomalies = flag.Bool("update", false, "rewrite testdata/anomalies/categorised.jsonl from a real run")

// categorised is the anomaly log tailor report's tests read: the real output of the
// run below.
const categorised = "../../testdata/anomalies/categorised.jsonl"

// TestAnomalyCategories: a program learned doing little (testdata/anomalies/
// categories.c learn) then run under its bundle doing one step of every category of
// docs/anomalies.md (categories all). Each step gets its category in the watcher's
// JSON lines, refused ones with action "blocked", and a file the rules grant but file
// permissions refuse is counted as refused elsewhere in the closing summary. With
// -update the lines are written to testdata/anomalies/categorised.jsonl (the example
// tailor report's tests read), the temporary paths and ports made stable.
func TestAnomalyCategories(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath("gcc"); err != nil {
		testpriv.Unavailable(t, "gcc is needed (make setup installs it)")
	}
	bin := tailorBin(t)
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(root, "categories")
	if out, err := exec.Command("gcc", "-O1", "-Wall", "-o", prog, "../../testdata/anomalies/categories.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v: %s", err, out)
	}
	dir := filepath.Join(root, "work")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"data/a.txt": 0o644, "data/b.txt": 0o644, "data/c.txt": 0o644, "data/locked.txt": 0o600, "outside.txt": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data/locked.txt"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	const port = 18391
	rec, prof := filepath.Join(root, "rec.json"), filepath.Join(root, "prof")
	learn := exec.Command(bin, "learn", "-o", rec, "--", prog, "learn", dir, fmt.Sprint(port))
	learn.Dir = root
	if out, err := learn.CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, out)
	}
	if out, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, out)
	}

	an := filepath.Join(root, "anomalies.jsonl")
	cmd := exec.Command(bin, "enforce", "--profile", prof, "--anomalies", an, "--", prog, "all", dir, fmt.Sprint(port))
	cmd.Dir = root
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "listening" {
			// The inbound step waits for a connection from outside the sandbox.
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+f[1], 5*time.Second)
			if err != nil {
				t.Errorf("connecting to the inbound step: %v", err)
			} else {
				c.Close()
			}
			continue
		}
		if len(f) == 2 {
			steps[f[0]] = f[1]
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("enforce: %v: %s", err, stderr.String())
	}
	lines := readAnomalies(t, an)
	byCat := map[string][]watch.Anomaly{}
	for _, a := range lines {
		byCat[a.Category] = append(byCat[a.Category], a)
	}
	for _, cat := range []string{watch.CatShell, watch.CatExec, watch.CatSensitiveRead, watch.CatSystemWrite, watch.CatFile,
		watch.CatOutbound, watch.CatInbound, watch.CatPrivilege, watch.CatNamespace, watch.CatProcessInject, watch.CatKernel,
		watch.CatRawNetwork, watch.CatSocket, watch.CatSyscall} {
		as := byCat[cat]
		if len(as) == 0 {
			t.Errorf("no %s anomaly (step got %s)", cat, steps[cat])
			continue
		}
		if cat == watch.CatInbound {
			if steps[cat] != "ok" {
				t.Errorf("the inbound step got %s, want ok", steps[cat])
			}
			continue
		}
		// Every other step was refused, and an anomaly of its category says so.
		if r := steps[cat]; r != "EPERM" && r != "EACCES" {
			t.Errorf("step %s got %q, want EPERM or EACCES", cat, r)
		}
		if !slices.ContainsFunc(as, func(a watch.Anomaly) bool { return a.Action == "blocked" }) {
			t.Errorf("no %s anomaly is blocked: %+v", cat, as)
		}
	}
	for _, step := range []string{"read-data", "run-true", "serve"} {
		if steps[step] != "ok" {
			t.Errorf("learned step %s got %q under the bundle", step, steps[step])
		}
	}
	raw, err := os.ReadFile(an)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"kind":"summary".*"refusedElsewhere":[1-9]`).Match(raw) {
		t.Errorf("no summary with a refusal counted elsewhere:\n%s", raw)
	}
	if _, err := os.Stat("/etc/tailor-categories-test"); err == nil {
		t.Error("/etc/tailor-categories-test was left behind")
	}
	if *updateAnomalies {
		// Stable names: the run's directory, its tailor and the ports change.
		out := strings.ReplaceAll(string(raw), root, "/tmp/categories")
		if err := os.WriteFile(categorised, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d lines)", categorised, strings.Count(out, "\n"))
	}
}
