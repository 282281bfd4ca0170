package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// project lays out a small project under dir: data files, an output directory and a
// script the workload runs.
func project(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{"data", "out"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"data/a.txt": "a\n", "data/b.txt": "b\n", "tool.sh": "#!/bin/sh\necho tool >>out/log\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCwdRelativeRules: a local command learned in one directory runs under its bundle
// in a copy of that directory at another path (a CI checkout elsewhere) without an
// anomaly, and the learning directory's files are not granted there.
func TestCwdRelativeRules(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "checkout-a"), filepath.Join(root, "ci", "checkout-b")
	project(t, a)
	project(t, b)
	work := []string{"/bin/sh", "-c", "cat data/a.txt data/b.txt >out/r.txt && ./tool.sh && ls data >/dev/null"}
	rec, prof := filepath.Join(root, "rec.json"), filepath.Join(root, "prof")
	learn := exec.Command(bin, append([]string{"learn", "-o", rec, "--"}, work...)...)
	learn.Dir = a
	if out, err := learn.CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, out)
	}
	r, err := profiles.LoadRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target.Cwd != a {
		t.Fatalf("recording's target.cwd %q, want %q", r.Target.Cwd, a)
	}
	if out, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, out)
	}
	aa, err := os.ReadFile(filepath.Join(prof, profiles.BundleAppArmorFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(aa), "@{cwd}="+a+"\n") || !strings.Contains(string(aa), "@{cwd}/out/r.txt") || strings.Contains(string(aa), a+"/") {
		t.Fatalf("apparmor.profile does not use @{cwd}:\n%s", aa)
	}
	for i := 0; i < 3; i++ {
		an := filepath.Join(t.TempDir(), "anomalies.jsonl")
		cmd := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--anomalies", an, "--fail-on-anomaly", "--"}, work...)...)
		cmd.Dir = b
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("enforce in another directory, run %d: %v: %s", i+1, err, out)
		}
		if !strings.Contains(string(out), "@{cwd} = "+b) {
			t.Errorf("start-up report does not say where @{cwd} is: %s", out)
		}
		if got := readAnomalies(t, an); len(got) != 0 {
			t.Fatalf("run %d: anomalies: %+v", i+1, got)
		}
	}
	if got, err := os.ReadFile(filepath.Join(b, "out", "r.txt")); err != nil || string(got) != "a\nb\n" {
		t.Fatalf("the workload did not work in %s: %q %v", b, got, err)
	}
	// --cwd runs it there from anywhere.
	cmd := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--cwd", b, "--fail-on-anomaly", "--"}, work...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("enforce --cwd: %v: %s", err, out)
	}
	// The learning directory's files are not granted to a run elsewhere.
	cmd = exec.Command(bin, "enforce", "--profile", prof, "--", "/bin/sh", "-c", "cat "+a+"/data/a.txt")
	cmd.Dir = b
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("reading the learning directory's file from %s succeeded: %s", b, out)
	}
}

// TestCwdTreeRule: a command that walks its working directory (grep -r) is learned on
// one tree and runs under its bundle on another, with other files in other
// directories, without an anomaly; run from a directory the tree rule must not reach,
// enforce refuses with exit 9.
func TestCwdTreeRule(t *testing.T) {
	testpriv.RequireRoot(t)
	bin := tailorBin(t)
	root := t.TempDir()
	a, b := filepath.Join(root, "checkout-a"), filepath.Join(root, "ci", "checkout-b")
	write := func(dir string, files map[string]string) {
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(a, map[string]string{"README": "todo: a\n", "src/main.c": "int main;\n", "src/main.h": "/* todo */\n"})
	write(b, map[string]string{"notes.md": "todo: b\n", "doc/guide.txt": "guide\n", "lib/deep/util.go": "// todo\n"})
	work := []string{"/usr/bin/grep", "-rn", "todo", "."}
	rec, prof := filepath.Join(root, "rec.json"), filepath.Join(root, "prof")
	learn := exec.Command(bin, append([]string{"learn", "-o", rec, "--"}, work...)...)
	learn.Dir = a
	learn.Env = append(os.Environ(), "HOME=/root")
	if out, err := learn.CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, out)
	}
	r, err := profiles.LoadRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Target.Home != "/root" {
		t.Fatalf("recording's target.home %q, want /root", r.Target.Home)
	}
	if out, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, out)
	}
	aa, err := os.ReadFile(filepath.Join(prof, profiles.BundleAppArmorFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(aa), "  @{cwd}/** r,") {
		t.Fatalf("apparmor.profile has no working-tree rule:\n%s", aa)
	}
	an := filepath.Join(t.TempDir(), "anomalies.jsonl")
	cmd := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--anomalies", an, "--cwd", b, "--"}, work...)...)
	cmd.Env = append(os.Environ(), "HOME=/root")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("enforce on another tree: %v: %s", err, out)
	}
	for _, want := range []string{"./notes.md:1:todo: b", "./lib/deep/util.go:1:// todo"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("grep on the other tree printed %q, want a line %q", out, want)
		}
	}
	if got := readAnomalies(t, an); len(got) != 0 {
		t.Errorf("anomalies on the other tree: %+v", got)
	}
	// Reads stay within the tree: a file beside it is refused.
	if err := os.WriteFile(filepath.Join(root, "ci", "secret"), []byte("todo: no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "enforce", "--profile", prof, "--cwd", b, "--", "/usr/bin/grep", "-rn", "todo", filepath.Join(root, "ci", "secret"))
	cmd.Env = append(os.Environ(), "HOME=/root")
	if out, err := cmd.CombinedOutput(); err == nil || strings.Contains(string(out), "todo: no") {
		t.Errorf("a file beside the tree was read: %v: %s", err, out)
	}
	// Not in a directory the rule would open to everything, nor in the home.
	home := filepath.Join(root, "home-u")
	write(home, map[string]string{"x": "todo\n"})
	for _, c := range []struct{ dir, home string }{{"/", "/root"}, {"/etc", "/root"}, {"/tmp", "/root"}, {home, home}, {root, home}} {
		cmd := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--cwd", c.dir, "--"}, work...)...)
		cmd.Env = append(os.Environ(), "HOME="+c.home)
		out, err := cmd.CombinedOutput()
		// Refused for the tree rule (home) or for any @{cwd} rule (system directories).
		if code := exitCode(err); code != 9 || !strings.Contains(string(out), "@{cwd}") || !strings.Contains(string(out), "working directory "+c.dir) {
			t.Errorf("enforce in %s (HOME %s): exit %d, want 9: %s", c.dir, c.home, code, out)
		}
	}
}
