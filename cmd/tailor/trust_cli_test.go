package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/proc"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

// runTailor runs the binary and returns its exit code and stderr, trimmed.
func runTailor(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(tailorBin(t), args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	return exitCode(err), strings.TrimSpace(stderr.String())
}

// TestOutputPathsAreSafe: as root, no output of learn, generate, merge or
// enforce --anomalies goes onto a device, through a symlink (dangling or not, to a
// file or to a directory) or onto a directory; each is refused with exit 2 and one
// line before the target runs, and what the path pointed to is untouched.
func TestOutputPathsAreSafe(t *testing.T) {
	testpriv.RequireRoot(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("victim"), []byte("victim\n"), 0o644))
	must(os.Symlink(p("victim"), p("link")))
	must(os.Symlink(p("created-by-link"), p("dangling")))
	must(unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Mkdir(p("sub"), 0o755))
	must(os.Symlink(p("sub"), p("sublink")))
	rec, err := os.ReadFile("../../testdata/recordings/webserver.json")
	must(err)
	must(os.WriteFile(p("rec.json"), rec, 0o600))
	marker := p("target-ran")
	target := []string{"--", "/bin/sh", "-c", "touch " + marker}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"learn", "-o", p("sub")}, target...), "is a directory"},
		{append([]string{"learn", "-o", p("null")}, target...), "is a device"},
		{append([]string{"learn", "-o", p("link")}, target...), "is a symbolic link"},
		{append([]string{"learn", "-o", p("dangling")}, target...), "is a symbolic link"},
		{[]string{"generate", "-o", p("sublink"), p("rec.json")}, "is a symbolic link"},
		{[]string{"generate", "-o", p("victim"), p("rec.json")}, "is a regular file"},
		{[]string{"merge", "-o", p("null"), p("rec.json")}, "is a device"},
		{[]string{"merge", "-o", p("link"), p("rec.json")}, "is a symbolic link"},
		{append([]string{"enforce", "--profile", p("nobundle"), "--anomalies", p("dangling")}, target...), "is a symbolic link"},
		{append([]string{"enforce", "--profile", p("nobundle"), "--anomalies", p("link")}, target...), "is a symbolic link"},
		{append([]string{"enforce", "--profile", p("nobundle"), "--anomalies", p("null")}, target...), "is a device"},
	} {
		code, msg := runTailor(t, c.args...)
		if code != 2 || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("tailor %s: exit %d, stderr %q; want exit 2 and one line with %q", strings.Join(c.args, " "), code, msg, c.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a target ran although its output path was refused")
	}
	if b, _ := os.ReadFile(p("victim")); string(b) != "victim\n" {
		t.Errorf("symlink target changed: %q", b)
	}
	if _, err := os.Lstat(p("created-by-link")); err == nil {
		t.Error("the target of a dangling symlink was created")
	}
	if st, err := os.Lstat(p("null")); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("the device node was replaced: %v %v", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(p("sub")); len(entries) != 0 {
		t.Errorf("written through a symlinked directory: %v", entries)
	}
}

// generateBundle writes the bundle of testdata's webserver recording to dir/name and
// returns its path.
func generateBundle(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	if code, msg := runTailor(t, "generate", "-o", out, "../../testdata/recordings/webserver.json"); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, msg)
	}
	return out
}

// TestInputsAreBounded: every input is read only from a regular file and up to a
// size limit: /dev/zero and a FIFO (as a recording, a bundle.json or a seccomp.json)
// are refused at once in one line, and so is a recording larger than 64 MiB.
func TestInputsAreBounded(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := unix.Mkfifo(p("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(p("big.json"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(65 << 20) // sparse: nothing is written
	big.Close()
	zeroBundle := generateBundle(t, dir, "zero")
	os.Remove(filepath.Join(zeroBundle, "bundle.json"))
	os.Symlink("/dev/zero", filepath.Join(zeroBundle, "bundle.json"))
	fifoBundle := generateBundle(t, dir, "fifo-seccomp")
	os.Remove(filepath.Join(fifoBundle, "seccomp.json"))
	unix.Mkfifo(filepath.Join(fifoBundle, "seccomp.json"), 0o600)

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"generate", "-o", p("out"), "/dev/zero"}, 2, "/dev/zero is a device, not a regular file"},
		{[]string{"generate", "-o", p("out"), p("fifo")}, 2, "is a FIFO, not a regular file"},
		{[]string{"generate", "-o", p("out"), p("big.json")}, 2, "more than the 64 MiB limit"},
		{[]string{"merge", "-o", p("m.json"), p("fifo")}, 2, "is a FIFO"},
		{[]string{"diff", "/dev/zero", p("fifo")}, 2, "not a regular file"},
		{[]string{"diff", zeroBundle, zeroBundle}, 2, "not a regular file"},
		{[]string{"enforce", "--profile", zeroBundle, "--allow-partial", "--", "true"}, 9, "not a regular file"},
		{[]string{"enforce", "--profile", fifoBundle, "--allow-partial", "--", "true"}, 9, "is a FIFO"},
	} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, tailorBin(t), c.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		cancel()
		msg := strings.TrimSpace(stderr.String())
		if code := exitCode(err); code != c.code || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("tailor %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(c.args, " "), code, msg, c.code, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("tailor %s took %v to refuse", strings.Join(c.args, " "), d)
		}
	}
}

// TestExitCodes checks docs/exit-codes.md command by command for what needs no
// target: usage errors (a missing required flag, an unknown command or flag, a
// negative duration, a missing argument) are 2, refused before anything starts, in
// one line; a missing or weakened profile is 9.
func TestExitCodes(t *testing.T) {
	testpriv.RequireRoot(t)
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	caps, web := "../../testdata/recordings/caps.json", "../../testdata/recordings/webserver.json"
	b := generateBundle(t, dir, "bundle")
	incomplete, err := os.ReadFile(caps)
	if err != nil {
		t.Fatal(err)
	}
	incomplete = bytes.Replace(incomplete, []byte(`"complete": true`), []byte(`"complete": false, "incomplete": ["interrupted"]`), 1)
	os.WriteFile(p("incomplete.json"), incomplete, 0o600)
	os.WriteFile(p("web.yml"), []byte("tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n"), 0o600)
	os.WriteFile(p("agent.yaml"), []byte("rules:\n- image: busybox\n  bundle: "+b+"\n"), 0o600)
	marker := p("target-ran")
	target := []string{"--", "/bin/sh", "-c", "touch " + marker}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"learn"}, 2, `Required flag "output" not set`},
		{[]string{"learn", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"learn", "-o", p("r.json")}, 2, "no command to learn"},
		{append([]string{"learn", "-o", p("r.json"), "--duration", "-5s"}, target...), 2, "--duration -5s: give a positive duration"},
		{append([]string{"learn", "-o", p("r.json"), "--stop-timeout", "-1s"}, target...), 2, "--stop-timeout -1s"},
		{[]string{"learn", "-o", p("r.json"), "--", "/nonexistent/program"}, 2, "not found"},
		{append([]string{"learn", "-o", p("r.json"), "--container", "c"}, target...), 2, "not both"},
		{[]string{"learn", "-o", p("r.json"), "--attach", "--", "true"}, 2, "--attach needs --container"},
		{[]string{"generate"}, 2, `Required flag "output" not set`},
		{[]string{"generate", "-o", p("g")}, 2, "no recording given"},
		{[]string{"generate", "-o", p("g"), p("none.json")}, 2, "no such file"},
		{[]string{"generate", "-o", p("g"), p("incomplete.json")}, 2, "--allow-incomplete"},
		{[]string{"merge"}, 2, `Required flag "output" not set`},
		{[]string{"merge", "-o", p("m.json")}, 2, "no recording given"},
		{[]string{"diff"}, 2, "exactly two arguments"},
		{[]string{"diff", caps}, 2, "exactly two arguments"},
		{[]string{"diff", caps, caps}, 0, ""},
		{[]string{"diff", "--fail-on-added", caps, web}, 1, "allows more than the old one"},
		{[]string{"enforce"}, 2, `Required flag "profile" not set`},
		{[]string{"enforce", "--profile", b}, 2, "no command given"},
		{append([]string{"enforce", "--profile", b, "--mode", "bogus"}, target...), 2, `--mode "bogus"`},
		{append([]string{"enforce", "--profile", p("none")}, target...), 9, "profile directory"},
		{[]string{"enforce", "--profile", b, "--container", "c", "--duration", "-1s"}, 2, "--duration -1s"},
		{append([]string{"enforce", "--profile", b, "--workload", "true"}, target...), 2, "--workload is for container mode"},
		// --container is required unless --compose-project is given (checked by the action).
		{[]string{"watch"}, 2, `Required flag "profile" not set`},
		{[]string{"watch", "--profile", b}, 2, `Required flag "container" not set`},
		{[]string{"watch", "--profile", b, "--container", "c", "--duration", "-1s"}, 2, "--duration -1s"},
		{[]string{"watch", "--profile", b, "--container", "c", "extra"}, 2, "takes no arguments"},
		{[]string{"watch", "--profile", b, "--container", "c", "--metrics", "127.0.0.1:0", "--metrics-web-config", p("web.yml")}, 2, "--metrics-web-config " + p("web.yml") + ": failed to read cert_file"},
		{[]string{"watch", "--profile", b, "--container", "c", "--metrics-web-config", p("web.yml")}, 2, "--metrics-web-config needs --metrics"},
		{[]string{"watch", "--profile", b, "--compose-project", "x", "--metrics-web-config", p("web.yml")}, 2, "do not apply to --compose-project"},
		{[]string{"enforce", "--profile", b, "--container", "c", "--no-harden", "seccomp"}, 2, `unknown part "seccomp"`},
		{append([]string{"enforce", "--profile", b, "--no-harden", "user"}, target...), 2, "--no-harden is for container mode"},
		{[]string{"audit"}, 2, "nothing to audit"},
		{[]string{"audit", "--fail-on", "bogus", web}, 2, `unknown severity "bogus"`},
		{[]string{"audit", web}, 2, "kept no configuration"},
		{[]string{"audit", "--fail-on", "high", "../../audit/testdata/bad-bridge.inspect.json"}, 10, "2 finding(s) of severity high or above"},
		{[]string{"audit", "--fail-on", "critical", "../../audit/testdata/bad-bridge.inspect.json"}, 0, ""},
		{[]string{"push", b}, 2, "tailor push BUNDLE REF"},
		{[]string{"push", p("none"), "127.0.0.1:1/x:y"}, 2, "not a bundle"},
		{[]string{"push", "--plain-http", b, "registry.example/x:y"}, 2, "only for a registry on a loopback address"},
		{[]string{"push", b, "127.0.0.1:1/x@sha256:" + strings.Repeat("0", 64)}, 2, "push needs a tag"},
		{[]string{"pull", "127.0.0.1:1/x:y"}, 2, `Required flag "output" not set`},
		{[]string{"pull", "-o", p("pulled"), "not a ref"}, 2, "reference"},
		{[]string{"agent"}, 2, `Required flag "config" not set`},
		{[]string{"agent", "--config", p("none.yaml")}, 2, "--config"},
		{[]string{"agent", "--config", caps}, 2, "agent config"},
		{[]string{"agent", "--config", p("agent.yaml"), "--metrics", "127.0.0.1:0", "--metrics-web-config", p("web.yml")}, 2, "--metrics-web-config " + p("web.yml")},
		{[]string{"agent", "--config", p("agent.yaml"), "--metrics-web-config", p("web.yml")}, 2, "needs metrics"},
	} {
		code, msg := runTailor(t, c.args...)
		if code != c.code || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
			t.Errorf("tailor %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(c.args, " "), code, msg, c.code, c.want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a target ran although its arguments were refused")
	}
	if code, msg := runTailor(t); code != 0 || msg != "" {
		t.Errorf("tailor without arguments: exit %d, stderr %q; want the help on stdout, exit 0", code, msg)
	}
}

// TestEnforceNotRootFailsFirst: without privilege enforce exits 3 with one line and
// prints no start-up report (it used to print every mechanism as enforced first).
func TestEnforceNotRootFailsFirst(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		testpriv.Unavailable(t, "setpriv (util-linux) is not installed")
	}
	// Under a world-searchable directory, for nobody.
	dir, err := os.MkdirTemp("", "tailor-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b := generateBundle(t, dir, "bundle")
	bin := filepath.Join(dir, "tailor")
	data, err := os.ReadFile(tailorBin(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	exec.Command("chmod", "-R", "a+rX", dir).Run()
	var stderr bytes.Buffer
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--",
		bin, "enforce", "--profile", b, "--", "/bin/true")
	cmd.Stderr = &stderr
	err = cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if exitCode(err) != 3 || strings.Contains(msg, "\n") || !strings.Contains(msg, "needs root") {
		t.Errorf("enforce as nobody: exit %d, stderr:\n%s\nwant exit 3 and one line, no report", exitCode(err), msg)
	}
}

// TestEnforceInterruptedIs130: SIGINT to tailor enforce alone stops the target
// (passed on as SIGTERM) and tailor exits 130, not the target's 143.
func TestEnforceInterruptedIs130(t *testing.T) {
	testpriv.RequireRoot(t)
	dir := t.TempDir()
	rec, prof := filepath.Join(dir, "sleep.json"), filepath.Join(dir, "prof")
	if code, msg := runTailor(t, "learn", "-o", rec, "--", "/bin/sleep", "0.1"); code != 0 {
		t.Fatalf("learn: exit %d: %s", code, msg)
	}
	if code, msg := runTailor(t, "generate", "-o", prof, rec); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, msg)
	}
	cmd := exec.Command(tailorBin(t), "enforce", "--profile", prof, "--", "/bin/sleep", "30")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The report's last line comes after the target started and before it is released.
	var log bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(log.String(), "anomalies:") {
		n, err := stderr.Read(buf)
		log.Write(buf[:n])
		if err != nil {
			t.Fatalf("enforce ended before its report: %v\n%s", err, log.String())
		}
	}
	cmd.Process.Signal(unix.SIGINT)
	rest := make(chan string)
	go func() {
		b, _ := io.ReadAll(stderr)
		rest <- string(b)
	}()
	out := <-rest
	err = cmd.Wait()
	if code := exitCode(err); code != 130 || !strings.Contains(out, "interrupted") {
		t.Errorf("enforce after SIGINT: exit %d, stderr %q; want 130 and an interrupted line", code, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("enforce took %v to end after SIGINT", d)
	}
}

// killableLearn starts tailor learn on a shell that starts two background sleeps
// and waits for them, and returns once they run: the command, the target's pids
// (the shell and its sleeps, found by a token in their command lines) and the pid
// of tailor's cgroup guard.
func killableLearn(t *testing.T) (cmd *exec.Cmd, targets []int, guard int) {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ready")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// sleep takes a fraction: the token makes these sleeps this run's.
	token := fmt.Sprintf("1000.%d%06d", os.Getpid()%1000, time.Now().UnixNano()%1000000)
	cmd = exec.Command(tailorBin(t), "learn", "-o", filepath.Join(dir, "rec.json"), "--",
		"/bin/sh", "-c", "sleep "+token+" & sleep "+token+" & echo ready > "+fifo+"; wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		for _, pid := range targets {
			unix.Kill(pid, unix.SIGKILL)
		}
	})
	// Opening the FIFO blocks until the shell opens it: both sleeps run by then.
	if ready, err := os.ReadFile(fifo); err != nil || string(ready) != "ready\n" {
		t.Fatalf("target not started: %q %v", ready, err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, _ := os.ReadFile(f)
		args := strings.Split(string(b), "\x00")
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		switch {
		case strings.Contains(string(b), token) && pid != cmd.Process.Pid:
			targets = append(targets, pid)
		case len(args) > 2 && args[1] == launch.GuardArg:
			if st, err := os.ReadFile(filepath.Join(filepath.Dir(f), "stat")); err == nil && ppidOf(st) == cmd.Process.Pid {
				guard = pid
			}
		}
	}
	if len(targets) != 3 {
		t.Fatalf("found %v with %s in their command line, want the shell and its two sleeps", targets, token)
	}
	if guard == 0 {
		t.Fatalf("no cgroup guard of tailor learn (pid %d): the target is not in a cgroup of its own", cmd.Process.Pid)
	}
	return cmd, targets, guard
}

// ppidOf reads the parent pid from /proc/PID/stat.
func ppidOf(stat []byte) int {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// runCgroups lists the run cgroups of tailor process pid.
func runCgroups(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		m, _ := filepath.Glob(filepath.Join(root, "tailor-run-"+strconv.Itoa(pid)+"-*"))
		out = append(out, m...)
	}
	return out
}

// TestKilledLearnTakesItsTarget: kill -9 of tailor learn leaves no process of the
// target running, orphaned under the allow-all learning filter: not its first
// process (PR_SET_PDEATHSIG in the launcher), nor the background processes it
// started (its cgroup, killed by tailor's guard when tailor dies); the cgroup is
// removed.
func TestKilledLearnTakesItsTarget(t *testing.T) {
	testpriv.RequireRoot(t)
	cmd, targets, guard := killableLearn(t)
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	if !proc.WaitAll(append(slices.Clone(targets), guard), 10*time.Second) {
		var alive []string
		for _, pid := range targets {
			if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
				alive = append(alive, fmt.Sprintf("%d %q", pid, comm))
			}
		}
		t.Fatalf("10s after tailor learn was killed, still running: %v (guard %d)", alive, guard)
	}
	if left := runCgroups(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("the run's cgroup is left: %v", left)
	}
}

// TestKilledRunIsSweptByTheNext: when tailor learn and its guard are both killed
// (kill -9 of both), the target's background processes survive the first process
// (PR_SET_PDEATHSIG reaches only it) until the next run, which kills them and removes
// the cgroup.
func TestKilledRunIsSweptByTheNext(t *testing.T) {
	testpriv.RequireRoot(t)
	cmd, targets, guard := killableLearn(t)
	unix.Kill(guard, unix.SIGKILL)
	if !proc.WaitAll([]int{guard}, 10*time.Second) {
		t.Fatal("the guard survived SIGKILL")
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	// The shell goes with tailor (its parent-death signal); the sleeps stay.
	var sleeping []int
	for _, pid := range targets {
		if unix.Kill(pid, 0) == nil {
			sleeping = append(sleeping, pid)
		}
	}
	left := runCgroups(t, cmd.Process.Pid)
	if len(sleeping) == 0 || len(left) != 1 {
		t.Fatalf("after tailor and its guard were killed: running %v, run cgroups %v; want the sleeps and one cgroup left", sleeping, left)
	}
	code, msg := runTailor(t, "learn", "-o", filepath.Join(t.TempDir(), "next.json"), "--", "/bin/true")
	if code != 0 {
		t.Fatalf("next learn: exit %d: %s", code, msg)
	}
	// Another tailor run of a concurrent test may have swept first: the note is
	// then in its output, not this one's.
	t.Logf("next run: %s", msg)
	if !proc.WaitAll(sleeping, 10*time.Second) {
		t.Errorf("processes %v of the killed run still run after the next run", sleeping)
	}
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the next run: %v", left[0], err)
	}
}

// TestEarlySignalIsHandled: SIGINT at any moment of tailor learn's start (the tracer
// loads for a few hundred ms before the target starts) ends it with exit 130 and one
// line, never the silent death by signal of a Go program that has not asked for it.
func TestEarlySignalIsHandled(t *testing.T) {
	testpriv.RequireRoot(t)
	dir := t.TempDir()
	for delay := 100 * time.Millisecond; delay <= 500*time.Millisecond; delay += 80 * time.Millisecond {
		var stderr bytes.Buffer
		cmd := exec.Command(tailorBin(t), "learn", "-o", filepath.Join(dir, "rec.json"), "--", "/bin/sleep", "30")
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The delay is what is tested: a signal at that moment of start-up.
		timer := time.AfterFunc(delay, func() { cmd.Process.Signal(unix.SIGINT) })
		err := cmd.Wait()
		timer.Stop()
		msg := strings.TrimSpace(stderr.String())
		if exitCode(err) != 130 || !strings.Contains(msg, "interrupted") {
			t.Errorf("SIGINT %v after start: exit %d (%v), stderr %q; want 130 and a line saying interrupted", delay, exitCode(err), err, msg)
		}
	}
}
