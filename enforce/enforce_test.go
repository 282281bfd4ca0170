package enforce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/profiles"
)

// workDir holds the static workload and its files; it is the bundle's @TESTDIR@.
var workDir string

// The test binary is its own launcher: /proc/self/exe __launch enforce lands here.
func TestMain(m *testing.M) {
	launch.Main()
	dir, err := os.MkdirTemp("", "tailor-enforce-test-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	// dockertest.Main stops the private Docker daemon the container tests start.
	dockertest.Main(m, func() { os.RemoveAll(dir) })
}

// need skips (or, with CI=true, fails) a test that needs what this host lacks.
func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

var built bool

// privileged builds the workload once and checks what running it confined needs.
func privileged(t *testing.T) Host {
	t.Helper()
	need(t, os.Geteuid() == 0, "enforcing needs root (capabilities to drop, mount to try)")
	_, err := exec.LookPath("gcc")
	need(t, err == nil, "gcc is needed to build testdata/enforce/workload.c")
	h, err := ProbeHost()
	if err != nil {
		t.Fatal(err)
	}
	need(t, h.LandlockABI > 0, "the kernel has no Landlock")
	if !built {
		out, err := exec.Command("gcc", "-static", "-O1", "-o", filepath.Join(workDir, "workload"), "../testdata/enforce/workload.c").CombinedOutput()
		need(t, err == nil, "building the static workload (libc6-dev with libc.a needed): "+string(out))
		if err := os.WriteFile(filepath.Join(workDir, "in.txt"), []byte("input\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(workDir, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		built = true
	}
	return h
}

// bundle copies testdata/enforce/bundle to a temporary directory with @TESTDIR@
// replaced, applying edit (if any) to each file's bytes by name, then records the
// digests of the files as written in bundle.json's "digests": {}, as generate does.
func bundle(t *testing.T, edit func(name string, data []byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	src := "../testdata/enforce/bundle"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("@TESTDIR@"), []byte(workDir))
		if edit != nil {
			data = edit(e.Name(), data)
		}
		if data == nil {
			continue // edit removed the file
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	digests := map[string]string{}
	written, _ := os.ReadDir(dir)
	for _, e := range written {
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && e.Name() != profiles.BundleManifestFile {
			digests[e.Name()] = profiles.FileDigest(data)
		}
	}
	if manifest, err := os.ReadFile(filepath.Join(dir, profiles.BundleManifestFile)); err == nil {
		enc, _ := json.Marshal(digests)
		manifest = bytes.Replace(manifest, []byte(`"digests": {}`), []byte(`"digests": `+string(enc)), 1)
		if err := os.WriteFile(filepath.Join(dir, profiles.BundleManifestFile), manifest, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// removeOut removes the workload's output file: a complain-mode chown leaves it
// owned by uid 1, which a root target without CAP_DAC_OVERRIDE may not open.
func removeOut(t *testing.T) {
	t.Helper()
	if err := os.Remove(filepath.Join(workDir, "out", "out.txt")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

type result struct {
	out    string
	log    string
	status int
	err    error
}

func run(t *testing.T, host *Host, profile, mode string, args ...string) result {
	t.Helper()
	removeOut(t)
	var out, log bytes.Buffer
	argv := append([]string{filepath.Join(workDir, "workload"), filepath.Join(workDir, "in.txt"), filepath.Join(workDir, "out", "out.txt")}, args...)
	status, err := Run(context.Background(), Options{
		Profile: profile, Mode: mode, Argv: argv, Env: []string{"PATH=/usr/bin:/bin"},
		Stdout: &out, Stderr: &out, Log: &log, Host: host,
	})
	return result{out: out.String(), log: log.String(), status: status, err: err}
}

func TestAllowedWorkloadRuns(t *testing.T) {
	h := privileged(t)
	r := run(t, &h, bundle(t, nil), ModeEnforce)
	if r.err != nil || r.status != 0 || r.out != "ok\n" {
		t.Fatalf("status %d, err %v, output %q; want 0, nil, \"ok\\n\"\nlog:\n%s", r.status, r.err, r.out, r.log)
	}
	if data, err := os.ReadFile(filepath.Join(workDir, "out", "out.txt")); err != nil || string(data) != "written\n" {
		t.Fatalf("out.txt: %q, %v", data, err)
	}
	for _, want := range []string{
		"seccomp:      enforced",
		"capabilities: dropped to CAP_NET_BIND_SERVICE",
		"no_new_privs: set",
		"landlock:     enforced (ABI v" + strconv.Itoa(h.LandlockABI),
		"widened: " + filepath.Join(workDir, "out") + " gets write_file, truncate beneath it for " + filepath.Join(workDir, "out", "out.txt") + " (created then written",
		"not enforced: chmod, chown and utimes are not restricted by Landlock",
		"anomalies:    not watched",
	} {
		if !strings.Contains(r.log, want) {
			t.Errorf("start-up report lacks %q:\n%s", want, r.log)
		}
	}
	if !h.AppArmor && !strings.Contains(r.log, "apparmor:     not available on this host - file rules enforced with Landlock instead") {
		t.Errorf("start-up report does not say AppArmor is absent:\n%s", r.log)
	}
}

func TestTargetExitStatusPassesThrough(t *testing.T) {
	h := privileged(t)
	r := run(t, &h, bundle(t, nil), ModeEnforce, "no-such-action")
	if r.err != nil || r.status != 2 {
		t.Fatalf("status %d, err %v; want the workload's own 2", r.status, r.err)
	}
}

func TestForbiddenActions(t *testing.T) {
	h := privileged(t)
	mnt := t.TempDir()
	profile := bundle(t, nil)
	for _, tc := range []struct {
		action, name, denied string
	}{
		{"ptrace", "ptrace", "EPERM"},      // seccomp
		{"mount=" + mnt, "mount", "EPERM"}, // seccomp (and CAP_SYS_ADMIN, Landlock)
		{"unshare", "unshare", "EPERM"},    // seccomp (and CAP_SYS_ADMIN)
		{"shadow", "shadow", "EACCES"},     // Landlock
		{"exec", "exec", "EACCES"},         // Landlock: /bin/sh has no execute right
		{"packet", "packet", "EPERM"},      // seccomp argument rule (and CAP_NET_RAW)
		{"chown", "chown", "EPERM"},        // CAP_CHOWN dropped; seccomp allows chown
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, &h, profile, ModeEnforce, tc.action)
			if want := "ok\n" + tc.name + ": " + tc.denied + "\n"; r.err != nil || r.out != want {
				t.Errorf("enforce: output %q, err %v; want %q", r.out, r.err, want)
			}
			r = run(t, &h, profile, ModeComplain, tc.action)
			want := "ok\n" + tc.name + ": ok\n"
			if tc.name == "exec" {
				want += "ready\n" // the shell then waits for stdin, here /dev/null
			}
			if r.err != nil || r.out != want {
				t.Errorf("complain: output %q, err %v; want %q\nlog:\n%s", r.out, r.err, want, r.log)
			}
		})
	}
}

// pidWatcher is a Watcher that only records the pid: the test needs the target's
// pid, and this is the hook the tracer will use.
type pidWatcher struct{ pid chan int }

func (w *pidWatcher) Watch(_ context.Context, t WatchTarget, _ *Policy) error {
	w.pid <- t.Pid
	return nil
}
func (w *pidWatcher) Stats() WatchStats  { return WatchStats{} }
func (w *pidWatcher) Stop() (int, error) { return 0, nil }

func TestCapabilitiesReallyDropped(t *testing.T) {
	h := privileged(t)
	removeOut(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &pidWatcher{pid: make(chan int, 1)}
	type ret struct {
		status int
		err    error
	}
	done := make(chan ret, 1)
	go func() {
		status, err := Run(context.Background(), Options{
			Profile: bundle(t, nil), Watcher: w, Host: &h, Log: io.Discard,
			Argv:  []string{filepath.Join(workDir, "workload"), filepath.Join(workDir, "in.txt"), filepath.Join(workDir, "out", "out.txt"), "wait"},
			Stdin: stdinR, Stdout: stdoutW,
		})
		stdoutW.Close()
		done <- ret{status, err}
	}()
	sc := bufio.NewScanner(stdoutR)
	var seen []string
	for sc.Scan() && sc.Text() != "ready" {
		seen = append(seen, sc.Text())
	}
	if sc.Text() != "ready" {
		t.Fatalf("workload ended without getting ready; it said %q", seen)
	}
	pid := <-w.pid
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	stdinW.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.status != 0 {
		t.Fatalf("status %d, err %v", r.status, r.err)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	const netBindService = "0000000000000400" // 1 << CAP_NET_BIND_SERVICE (10)
	for k, want := range map[string]string{
		"CapEff": netBindService, "CapPrm": netBindService, "CapBnd": netBindService,
		"CapInh": netBindService, "CapAmb": netBindService,
		"NoNewPrivs": "1", "Seccomp": "2", "Seccomp_filters": "1",
	} {
		if fields[k] != want {
			t.Errorf("%s of the target: %q, want %q", k, fields[k], want)
		}
	}
}

func TestRefusals(t *testing.T) {
	h, err := ProbeHost()
	if err != nil {
		t.Fatal(err)
	}
	replace := func(file, old, new string) func(string, []byte) []byte {
		return func(name string, data []byte) []byte {
			if name == file {
				if !bytes.Contains(data, []byte(old)) {
					t.Fatalf("%s does not contain %q", name, old)
				}
				return bytes.Replace(data, []byte(old), []byte(new), 1)
			}
			return data
		}
	}
	remove := func(file string) func(string, []byte) []byte {
		return func(name string, data []byte) []byte {
			if name == file {
				return nil
			}
			return data
		}
	}
	// afterwards changes a file of a bundle whose digests are already recorded, as a
	// torn write or a hand edit would.
	afterwards := func(file string, change func(path string)) func(t *testing.T) string {
		return func(t *testing.T) string {
			dir := bundle(t, nil)
			change(filepath.Join(dir, file))
			return dir
		}
	}
	truncate := func(path string) {
		data, _ := os.ReadFile(path)
		os.WriteFile(path, data[:len(data)/2], 0o644)
	}
	allowAll := func(path string) {
		os.WriteFile(path, []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), 0o644)
	}
	incomplete := `"sources": [{"file": "app.rec.json", "target": {"kind": "command"}, "complete": false}]`
	for _, tc := range []struct {
		name    string
		profile func(t *testing.T) string
		want    string
	}{
		{"no profile dir", func(*testing.T) string { return "" }, "no profile directory given"},
		{"no digests", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"digests": {}`, `"digests": null`))
		}, "records no file digests"},
		{"seccomp.json truncated", afterwards("seccomp.json", truncate), "seccomp.json was changed or truncated after generate"},
		{"seccomp.json allow-all", afterwards("seccomp.json", allowAll), "seccomp.json was changed or truncated after generate"},
		{"capabilities.json missing", afterwards("capabilities.json", func(p string) { os.Remove(p) }), "capabilities.json: open"},
		{"capabilities.json changed", afterwards("capabilities.json", func(p string) { os.WriteFile(p, []byte(`{"drop":["ALL"],"add":["CAP_NET_BIND_SERVICE"]}`), 0o644) }), "capabilities.json was changed"},
		{"default allow", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"SCMP_ACT_ERRNO"`, `"SCMP_ACT_ALLOW"`))
		}, "default action is SCMP_ACT_ALLOW"},
		{"default log", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"SCMP_ACT_ERRNO"`, `"SCMP_ACT_LOG"`))
		}, "default action is SCMP_ACT_LOG"},
		{"default notify", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"SCMP_ACT_ERRNO"`, `"SCMP_ACT_NOTIFY"`))
		}, "default action is SCMP_ACT_NOTIFY"},
		{"default trace", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"SCMP_ACT_ERRNO"`, `"SCMP_ACT_TRACE"`))
		}, "default action is SCMP_ACT_TRACE"},
		{"seccomp.json allows more", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"getpid",`, `"getpid", "ptrace", "mount", "bpf",`))
		}, "lets through syscalls bundle.json does not list: [bpf mount ptrace]"},
		{"incomplete recording", func(t *testing.T) string { return bundle(t, replace("bundle.json", `"sources": []`, incomplete)) }, "generated from an incomplete recording (app.rec.json)"},
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "no such file or directory"},
		{"missing bundle.json", func(t *testing.T) string { return bundle(t, remove("bundle.json")) }, "bundle.json: open"},
		{"bundle.json not JSON", func(t *testing.T) string { return bundle(t, replace("bundle.json", "{", "[")) }, "not JSON"},
		{"bundle.json wrong kind", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"tailor.bundle"`, `"tailor.recording"`))
		}, "not a tailor bundle manifest"},
		{"bundle.json unknown field", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"files"`, `"filez"`))
		}, "malformed bundle manifest"},
		{"missing seccomp.json", func(t *testing.T) string { return bundle(t, remove("seccomp.json")) }, "seccomp.json: open"},
		{"seccomp.json bad syscall", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"getpid"`, `"getpid_no_such"`))
		}, "does not compile with libseccomp"},
		{"other machine", func(t *testing.T) string { return bundle(t, replace("bundle.json", `"x86_64"`, `"aarch64"`)) }, `made on a "aarch64" machine`},
		{"other seccomp arch", func(t *testing.T) string {
			return bundle(t, replace("seccomp.json", `"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"`, `"SCMP_ARCH_AARCH64"`))
		}, "seccomp profile is for SCMP_ARCH_AARCH64"},
		{"unknown capability", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `["CAP_NET_BIND_SERVICE"]`, `["CAP_FLY"]`))
		}, `unknown capability names "CAP_FLY"`},
		{"capabilities.json disagrees", func(t *testing.T) string {
			return bundle(t, replace("capabilities.json", `"CAP_NET_BIND_SERVICE"`, `"CAP_SYS_ADMIN"`))
		}, "disagrees with bundle.json"},
		{"relative landlock rule", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"path": "`+workDir+`/in.txt"`, `"path": "in.txt"`))
		}, "not an absolute path"},
		{"unknown landlock right", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"access": ["read_file"]`, `"access": ["read_everything"]`))
		}, `unknown Landlock right "read_everything"`},
		{"bundle schema 1", func(t *testing.T) string {
			return bundle(t, replace("bundle.json", `"schemaVersion": 2`, `"schemaVersion": 1`))
		}, "bundle schema version 1 has no Landlock plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if h.Machine != "x86_64" {
				t.Skipf("the test bundle is for x86_64, this host is %s", h.Machine)
			}
			var log bytes.Buffer
			status, err := Run(context.Background(), Options{Profile: tc.profile(t), Argv: []string{"true"}, Host: &h, Log: &log})
			if status != 0 || fail.Code(err) != 9 || !errors.Is(err, fail.ErrRefused) {
				t.Fatalf("status %d, err %v (code %d); want a refusal, exit 9", status, err, fail.Code(err))
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want) {
				t.Errorf("message %q: want one line containing %q", msg, tc.want)
			}
			if log.Len() != 0 {
				t.Errorf("a refused run printed a start-up report:\n%s", log.String())
			}
		})
	}
}

func TestNoLandlockRefusesUnlessAllowPartial(t *testing.T) {
	h, err := ProbeHost()
	if err != nil {
		t.Fatal(err)
	}
	if h.Machine != "x86_64" {
		t.Skipf("the test bundle is for x86_64, this host is %s", h.Machine)
	}
	p, err := Load(bundle(t, nil), h)
	if err != nil {
		t.Fatal(err)
	}
	noLandlock := Host{Machine: h.Machine, SeccompArch: h.SeccompArch}
	_, err = makePlan(p, noLandlock, &Options{Mode: ModeEnforce})
	if fail.Code(err) != 9 || !strings.Contains(err.Error(), "--allow-partial") {
		t.Fatalf("err %v: want a refusal naming --allow-partial", err)
	}
	pl, err := makePlan(p, noLandlock, &Options{Mode: ModeEnforce, AllowPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	report := strings.Join(pl.report, "\n")
	for _, want := range []string{"landlock:     not available on this host - file rules NOT enforced", "apparmor:     not available on this host - not enforced"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if pl.config.Landlock != nil {
		t.Errorf("Landlock rules planned on a host without Landlock: %v", pl.config.Landlock)
	}
	// Complain mode confines no files, so it needs no Landlock.
	pl, err = makePlan(p, noLandlock, &Options{Mode: ModeComplain})
	if err != nil || pl.config.DropCaps || !pl.config.Complain {
		t.Fatalf("complain plan %+v, err %v", pl, err)
	}
}

func TestModeConfigRoundTrips(t *testing.T) {
	rules, err := landlockRules(profiles.LandlockPlan{
		Paths: []profiles.LandlockPath{{Path: "/bin/true", Access: []string{"execute", "read_file"}}},
		TCP:   profiles.LandlockTCP{Bind: []uint16{80}, Connect: []uint16{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := modeConfig{Complain: true, Seccomp: json.RawMessage(`{"defaultAction":"SCMP_ACT_ALLOW"}`), Landlock: rules}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out modeConfig
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Landlock, in.Landlock) || string(out.Seccomp) != string(in.Seccomp) {
		t.Fatalf("round trip changed the config: %+v -> %+v", in, out)
	}
}
