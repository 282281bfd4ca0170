package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

var (
	pathopsOnce sync.Once
	pathopsBin  string
	pathopsErr  error
)

// pathopsProg builds testdata/enforce/pathops.c statically: it runs path operations
// given as OP:PATH[:PATH2] arguments and prints "OP: ok" or "OP: ERRNO" for each.
func pathopsProg(t *testing.T) string {
	t.Helper()
	pathopsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailor-pathops-bin-")
		if err != nil {
			pathopsErr = err
			return
		}
		pathopsBin = filepath.Join(dir, "pathops")
		if out, err := exec.Command("gcc", "-static", "-O1", "-o", pathopsBin, "../../testdata/enforce/pathops.c").CombinedOutput(); err != nil {
			pathopsErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if pathopsErr != nil {
		testpriv.Unavailable(t, "building the static pathops (gcc and libc6-dev needed): "+pathopsErr.Error())
	}
	return pathopsBin
}

// letters is a directory name part that generalisation keeps literal (no digits, no
// hex run, no temporary-name pattern), so the bundle names exactly this directory.
func letters() string {
	b := make([]byte, 10)
	for i := range b {
		b[i] = byte('g' + rand.IntN(20))
	}
	return string(b)
}

// listen accepts and closes connections on 127.0.0.1 until the test ends.
func listen(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// The whole loop on real path operations: learned by the tracer, generated, replayed
// three times under enforce with the watcher from a clean state (0 anomalies, the same
// output as unconfined); then each operation on a path outside the profile is refused
// (chmod excepted: Landlock has no right for it) and every one is reported with its
// path; a connect to an unlearned 127.0.0.1 port is refused and reported while the
// learned port works.
func TestPathOperationsLearnedReplayedAndRefused(t *testing.T) {
	testpriv.RequireRoot(t)
	bin, prog := tailorBin(t), pathopsProg(t)
	root := filepath.Join("/var/tmp", "tailor-pathops-"+letters())
	t.Cleanup(func() { os.RemoveAll(root) })
	work, outside := filepath.Join(root, "work"), filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(work, "a"), filepath.Join(work, "b"), filepath.Join(outside, "e"), filepath.Join(outside, "d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	learnedPort, otherPort := listen(t), listen(t)
	d := filepath.Join(work, "d")
	in := func(name string) string { return filepath.Join(d, name) }
	ax, by := filepath.Join(work, "a", "x"), filepath.Join(work, "b", "y")
	script := []string{
		"mkdir:" + d, "create:" + in("f"), "write:" + in("f"), "rename:" + in("f") + ":" + in("g"),
		"link:" + in("g") + ":" + in("h"), "chmod:" + in("g"), "truncate:" + in("g"),
		"symlink:g:" + in("s"), "mkfifo:" + in("p"),
		"unlink:" + in("s"), "unlink:" + in("p"), "unlink:" + in("h"), "unlink:" + in("g"), "rmdir:" + d,
		"create:" + ax, "write:" + ax, "rename:" + ax + ":" + by, "unlink:" + by,
		"tcpconnect:" + strconv.Itoa(learnedPort),
	}
	unconfined, err := exec.Command(prog, script...).Output()
	if err != nil || strings.Count(string(unconfined), ": ok\n") != len(script) {
		t.Fatalf("unconfined run: %v\n%s", err, unconfined)
	}

	dir := t.TempDir()
	rec, prof := filepath.Join(dir, "rec.json"), filepath.Join(dir, "prof")
	if b, err := exec.Command(bin, append([]string{"learn", "-o", rec, "--", prog}, script...)...).CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, b)
	}
	if b, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, b)
	}
	enforce := func(args ...string) (string, []watch.Anomaly, error) {
		an := filepath.Join(t.TempDir(), "anomalies.jsonl")
		cmd := exec.Command(bin, append([]string{"enforce", "--profile", prof, "--anomalies", an, "--", prog}, args...)...)
		out, err := cmd.Output()
		return string(out), readAnomalies(t, an), err
	}
	for i := range 3 {
		out, anomalies, err := enforce(script...)
		if err != nil || out != string(unconfined) {
			t.Fatalf("replay %d: %v\n%s\nunconfined:\n%s", i+1, err, out, unconfined)
		}
		if len(anomalies) != 0 {
			t.Fatalf("replay %d: anomalies %+v", i+1, anomalies)
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("replay %d left %s", i+1, d)
		}
	}

	od := filepath.Join(outside, "d")
	of := filepath.Join(od, "f")
	if err := os.WriteFile(of, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ops := []struct{ op, result, path string }{
		{"mkdir:" + filepath.Join(outside, "x"), "EACCES", filepath.Join(outside, "x")},
		{"create:" + filepath.Join(od, "n"), "EACCES", filepath.Join(od, "n")},
		{"write:" + of, "EACCES", of},
		{"rename:" + of + ":" + filepath.Join(od, "g"), "EACCES", filepath.Join(od, "g")},
		{"link:" + of + ":" + filepath.Join(od, "h"), "EACCES", filepath.Join(od, "h")},
		{"chmod:" + of, "ok", of},
		{"truncate:" + of, "EACCES", of},
		{"symlink:f:" + filepath.Join(od, "s"), "EACCES", filepath.Join(od, "s")},
		{"mkfifo:" + filepath.Join(od, "p"), "EACCES", filepath.Join(od, "p")},
		{"unlink:" + of, "EACCES", of},
		{"rmdir:" + filepath.Join(outside, "e"), "EACCES", filepath.Join(outside, "e")},
		{"tcpconnect:" + strconv.Itoa(otherPort), "EACCES", "port " + strconv.Itoa(otherPort)},
		{"tcpconnect:" + strconv.Itoa(learnedPort), "ok", ""},
	}
	var args []string
	var want strings.Builder
	for _, o := range ops {
		args = append(args, o.op)
		name, _, _ := strings.Cut(o.op, ":")
		fmt.Fprintf(&want, "%s: %s\n", name, o.result)
	}
	out, anomalies, _ := enforce(args...)
	t.Logf("anomalies outside the profile:\n%s", anomalyLines(anomalies))
	if out != want.String() {
		t.Errorf("outside the profile:\n%s\nwant:\n%s", out, want.String())
	}
	// Each refused operation is its own report, naming the call and the path.
	calls := map[string]string{"mkdir": "mkdir", "create": "openat", "write": "openat", "rename": "rename",
		"link": "link", "chmod": "setattr", "truncate": "truncate", "symlink": "symlink", "mkfifo": "mknod",
		"unlink": "unlink", "rmdir": "rmdir", "tcpconnect": "connect"}
	used := map[int]bool{}
	for _, o := range ops {
		if o.path == "" {
			continue
		}
		name, _, _ := strings.Cut(o.op, ":")
		wantAction := "blocked"
		if o.result == "ok" {
			wantAction = "allowed" // chmod: Landlock cannot stop it, the watcher still says
		}
		found := false
		for i, a := range anomalies {
			if !used[i] && strings.Contains(a.Detail, o.path) && strings.Contains(a.Detail, calls[name]) && a.Action == wantAction {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("%s (%s) not reported with %s; anomalies:\n%s", o.op, o.result, o.path, anomalyLines(anomalies))
		}
	}
	for _, a := range anomalies {
		if strings.Contains(a.Detail, "port "+strconv.Itoa(learnedPort)) {
			t.Errorf("the learned port reported: %+v", a)
		}
	}
	if data, err := os.ReadFile(of); err != nil || string(data) != "keep\n" {
		t.Errorf("%s after the refused operations: %q, %v", of, data, err)
	}
}

func anomalyLines(as []watch.Anomaly) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "  %s %s: %s (%s)\n", a.Kind, a.Action, a.Detail, a.Rule)
	}
	return b.String()
}

// A file the target creates and writes in a directory holding sensitive files keeps
// its rights on the file itself, so when it does not exist at start Landlock refuses
// the write although apparmor.profile's rule for it grants it: the watcher decides
// from the rules the kernel enforces, and reports it.
func TestLandlockRefusalReportedThoughGlobsAllow(t *testing.T) {
	testpriv.RequireRoot(t)
	bin, prog := tailorBin(t), pathopsProg(t)
	conf := "/etc/tailor-test-" + letters() + ".conf"
	t.Cleanup(func() { os.Remove(conf) })
	dir := t.TempDir()
	rec, prof := filepath.Join(dir, "rec.json"), filepath.Join(dir, "prof")
	script := []string{"create:" + conf, "write:" + conf, "unlink:" + conf}
	if b, err := exec.Command(bin, append([]string{"learn", "-o", rec, "--", prog}, script...)...).CombinedOutput(); err != nil {
		t.Fatalf("learn: %v: %s", err, b)
	}
	if b, err := exec.Command(bin, "generate", "-o", prof, rec).CombinedOutput(); err != nil {
		t.Fatalf("generate: %v: %s", err, b)
	}
	aa, err := os.ReadFile(filepath.Join(prof, "apparmor.profile"))
	if err != nil || !strings.Contains(string(aa), conf+" w") {
		t.Fatalf("apparmor.profile does not grant writing %s: %v\n%s", conf, err, aa)
	}
	an := filepath.Join(dir, "anomalies.jsonl")
	out, _ := exec.Command(bin, "enforce", "--profile", prof, "--anomalies", an, "--", prog, "write:"+conf+".other", "create:"+conf).Output()
	if !strings.Contains(string(out), "create: EACCES") {
		t.Fatalf("the create was not refused: %s", out)
	}
	found := false
	for _, a := range readAnomalies(t, an) {
		if a.Kind == "file" && a.Action == "blocked" && strings.Contains(a.Detail, conf+" ") && strings.Contains(a.Rule, "Landlock") {
			found = true
		}
	}
	if !found {
		t.Errorf("the refused create of %s is not reported as Landlock's: %s", conf, anomalyLines(readAnomalies(t, an)))
	}
}

// git, as a user runs it: init, add, commit, a branch, switch back (which unlinks and
// rewrites the working tree), learned once and replayed three times under enforce from
// a clean state. Each replay leaves the repository exactly as an unconfined run does
// (commit hashes, status and file contents) and raises no anomaly.
func TestGitLearnedAndReplayed(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath("git"); err != nil {
		testpriv.Unavailable(t, "git is not installed")
	}
	bin := tailorBin(t)
	root := filepath.Join("/var/tmp", "tailor-git-"+letters())
	t.Cleanup(func() { os.RemoveAll(root) })
	repo := filepath.Join(root, "repo")
	script := `set -e
git init -q -b main repo
cd repo
mkdir src
printf 'int main(void) { return 0; }\n' > src/main.c
printf 'all:\n\tcc -o app src/main.c\n' > Makefile
git add .
git commit -q -m first
git switch -q -c feature
printf '/* feature */\n' >> src/main.c
git rm -q Makefile
git commit -q -am second
git switch -q main
git log --format=%H%n%s
git status --porcelain --branch
cat src/main.c Makefile
`
	env := append(os.Environ(), "HOME="+root, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
		"GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z", "LC_ALL=C")
	clean := func() {
		if err := os.RemoveAll(repo); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = root, env
		out, err := cmd.Output()
		return string(out), err
	}
	clean()
	unconfined, err := run("/bin/sh", "-c", script)
	if err != nil {
		t.Fatalf("unconfined: %v\n%s", err, unconfined)
	}
	clean()
	dir := t.TempDir()
	rec, prof := filepath.Join(dir, "rec.json"), filepath.Join(dir, "prof")
	if out, err := run(bin, "learn", "-o", rec, "--", "/bin/sh", "-c", script); err != nil {
		t.Fatalf("learn: %v\n%s", err, out)
	}
	if out, err := run(bin, "generate", "-o", prof, rec); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	for i := range 3 {
		clean()
		an := filepath.Join(dir, fmt.Sprintf("anomalies-%d.jsonl", i))
		out, err := run(bin, "enforce", "--profile", prof, "--anomalies", an, "--", "/bin/sh", "-c", script)
		if err != nil || out != unconfined {
			t.Fatalf("replay %d: %v\n%s\nunconfined:\n%s\nanomalies:\n%s", i+1, err, out, unconfined, anomalyLines(readAnomalies(t, an)))
		}
		if got := readAnomalies(t, an); len(got) != 0 {
			t.Fatalf("replay %d: anomalies:\n%s", i+1, anomalyLines(got))
		}
	}
}
