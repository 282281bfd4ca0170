package generate

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const recordingsDir = "../testdata/recordings"

// recordingNames are the hand-written recordings every property below is checked on.
var recordingNames = []string{"caps", "compat-i386", "hardened", "many-files", "pathops", "shell-tree", "webserver"}

func loadRec(t *testing.T, name string) *profiles.Recording {
	t.Helper()
	r, err := profiles.LoadRecording(filepath.Join(recordingsDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testOptions(name string) Options {
	return Options{Dir: "/bundles/" + name, Version: "test", Sources: []string{name + ".json"}}
}

// parserOrSkip returns the apparmor_parser checker; without the parser the test is
// skipped, or fails under CI=true where the parser is part of the setup.
func parserOrSkip(t *testing.T) CheckAppArmor {
	t.Helper()
	check := ParserChecker()
	if check == nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("apparmor_parser not installed (CI=true): install the apparmor package")
		}
		t.Skip("apparmor_parser not installed")
	}
	return check
}

// TestGolden compares every bundle with testdata/golden/NAME, and with --strict with
// testdata/golden/strict/NAME, whose profiles are those of before generalisation.
func TestGolden(t *testing.T) {
	check := parserOrSkip(t)
	for _, strict := range []bool{false, true} {
		for _, name := range recordingNames {
			dir := filepath.Join("../testdata/golden", name)
			if strict {
				dir = filepath.Join("../testdata/golden/strict", name)
			}
			t.Run(strings.TrimPrefix(dir, "../testdata/golden/"), func(t *testing.T) {
				opt := testOptions(name)
				opt.Strict = strict
				golden(t, check, dir, loadRec(t, name), opt)
			})
		}
	}
}

func golden(t *testing.T, check CheckAppArmor, dir string, rec *profiles.Recording, opt Options) {
	t.Helper()
	b, err := Generate([]*profiles.Recording{rec}, opt)
	if err != nil {
		t.Fatal(err)
	}
	// Every bundle compiles with libseccomp and passes apparmor_parser.
	notes, err := Validate(b, check)
	if err != nil || len(notes) > 0 {
		t.Fatalf("validation: %v %v", err, notes)
	}
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := Write(dir, b, check); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("%v (run go test ./generate -update)", err)
	}
	if len(entries) != len(b.Files) {
		t.Errorf("golden has %d files, generator %d", len(entries), len(b.Files))
	}
	for file, got := range b.Files {
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("%v (run go test ./generate -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from golden (run go test ./generate -update and review the diff):\n%s", file, got)
		}
	}
}

// Same recordings in, same bytes out: also when the lists arrive in another order.
func TestDeterministic(t *testing.T) {
	for _, name := range recordingNames {
		first, err := Generate([]*profiles.Recording{loadRec(t, name)}, testOptions(name))
		if err != nil {
			t.Fatal(err)
		}
		r := loadRec(t, name)
		slices.Reverse(r.Files)
		slices.Reverse(r.Syscalls)
		for i := range r.Syscalls {
			slices.Reverse(r.Syscalls[i].Names)
		}
		slices.Reverse(r.Capabilities)
		slices.Reverse(r.Execs)
		slices.Reverse(r.Failed)
		slices.Reverse(r.Network.Connects)
		slices.Reverse(r.Network.Sends)
		slices.Reverse(r.Network.Binds)
		slices.Reverse(r.Network.Sockets)
		second, err := Generate([]*profiles.Recording{r}, testOptions(name))
		if err != nil {
			t.Fatal(err)
		}
		for file, data := range first.Files {
			if !bytes.Equal(data, second.Files[file]) {
				t.Errorf("%s/%s differs between two runs", name, file)
			}
		}
	}
}

// Every syscall the profile allows was recorded or is listed in bundle.json's
// generalised (clone stands in for a recorded clone3, which is answered ENOSYS; signal
// return is allowed regardless), and every capability added was granted.
func TestMinimal(t *testing.T) {
	for _, name := range recordingNames {
		r := loadRec(t, name)
		b, err := Generate([]*profiles.Recording{r}, testOptions(name))
		if err != nil {
			t.Fatal(err)
		}
		recorded := map[string]bool{}
		for _, s := range r.Syscalls {
			for _, n := range s.Names {
				recorded[n] = true
			}
		}
		generalised := map[string]bool{}
		for _, g := range b.Manifest.Generalised {
			if g.Kind == profiles.GeneralisedSyscall {
				generalised[g.Added] = true
			}
		}
		for _, rule := range b.Seccomp.Syscalls {
			if rule.Action != "SCMP_ACT_ALLOW" {
				continue
			}
			for _, n := range rule.Names {
				if !recorded[n] && !generalised[n] && !(n == "clone" && recorded["clone3"]) && !slices.Contains(signalReturn, n) {
					t.Errorf("%s: %s allowed but neither recorded nor listed as generalised", name, n)
				}
			}
		}
		for _, rule := range b.Seccomp.Syscalls {
			if rule.Action == "SCMP_ACT_ERRNO" && slices.ContainsFunc(rule.Names, func(n string) bool { return recorded[n] && n != "clone3" }) {
				t.Errorf("%s: a recorded syscall is answered with an errno: %v", name, rule.Names)
			}
		}
		for _, c := range b.Manifest.Capabilities {
			i := slices.IndexFunc(r.Capabilities, func(rc profiles.Capability) bool { return rc.Name == c })
			if i < 0 || r.Capabilities[i].Granted == 0 {
				t.Errorf("%s: %s added but never granted", name, c)
			}
		}
	}
}

// Signal return is allowed even when no signal arrived while learning: runc's Go init
// handles signals under the container's filter before the entrypoint runs, and a
// denied rt_sigreturn there crashed 6 of 60 redis containers with SIGSEGV.
func TestSignalReturnAlwaysAllowed(t *testing.T) {
	for _, tc := range []struct {
		rec  string
		want []string
	}{
		{"webserver", []string{"restart_syscall", "rt_sigreturn"}},
		// sigreturn is a real syscall on i386 only.
		{"compat-i386", []string{"restart_syscall", "rt_sigreturn", "sigreturn"}},
	} {
		r := loadRec(t, tc.rec)
		for i := range r.Syscalls {
			r.Syscalls[i].Names = slices.DeleteFunc(r.Syscalls[i].Names, func(n string) bool { return slices.Contains(signalReturn, n) })
		}
		b, err := Generate([]*profiles.Recording{r}, testOptions(tc.rec))
		if err != nil {
			t.Fatal(err)
		}
		var allowed []string
		for _, rule := range b.Seccomp.Syscalls {
			if rule.Action == "SCMP_ACT_ALLOW" && len(rule.Args) == 0 {
				allowed = append(allowed, rule.Names...)
			}
		}
		for _, n := range signalReturn {
			if got, want := slices.Contains(allowed, n), slices.Contains(tc.want, n); got != want {
				t.Errorf("%s: %s allowed %v, want %v", tc.rec, n, got, want)
			}
		}
	}
}

func TestCapabilitiesGrantedOnly(t *testing.T) {
	b, err := Generate([]*profiles.Recording{loadRec(t, "caps")}, testOptions("caps"))
	if err != nil {
		t.Fatal(err)
	}
	// NET_RAW granted, NET_ADMIN granted once and denied twice: both needed.
	// DAC_OVERRIDE only denied, SYS_ADMIN and SYS_RESOURCE only probed: not added.
	want := `{
  "drop": [
    "ALL"
  ],
  "add": [
    "CAP_NET_ADMIN",
    "CAP_NET_RAW"
  ]
}
`
	if got := string(b.Files[profiles.BundleCapabilitiesFile]); got != want {
		t.Errorf("capabilities.json:\n%s\nwant:\n%s", got, want)
	}
}

func TestNoArgs(t *testing.T) {
	opt := testOptions("caps")
	opt.NoArgs = true
	b, err := Generate([]*profiles.Recording{loadRec(t, "caps")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Seccomp.Syscalls {
		if len(r.Args) > 0 {
			t.Errorf("--no-args profile has argument conditions on %v", r.Names)
		}
	}
	if !slices.Contains(b.Seccomp.Syscalls[0].Names, "personality") || !slices.Contains(b.Seccomp.Syscalls[0].Names, "socket") {
		t.Errorf("--no-args did not allow personality and socket plainly: %v", b.Seccomp.Syscalls[0].Names)
	}
}

func TestIncomplete(t *testing.T) {
	r := loadRec(t, "webserver")
	r.Complete = false
	r.Incomplete = []string{"attached to a running container"}
	_, err := Generate([]*profiles.Recording{r}, testOptions("webserver"))
	if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "--allow-incomplete") || !strings.Contains(err.Error(), "attached") {
		t.Fatalf("incomplete recording: %v", err)
	}
	opt := testOptions("webserver")
	opt.AllowIncomplete = true
	b, err := Generate([]*profiles.Recording{r}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Warnings) == 0 || !strings.Contains(b.Warnings[0], "INCOMPLETE") {
		t.Errorf("no loud warning: %v", b.Warnings)
	}
	if !strings.Contains(string(b.Files[profiles.BundleSummaryFile]), "WARNING") {
		t.Error("SUMMARY.txt does not say the recording was incomplete")
	}
}

func TestBadName(t *testing.T) {
	opt := testOptions("webserver")
	opt.Name = "Bad Name"
	_, err := Generate([]*profiles.Recording{loadRec(t, "webserver")}, opt)
	if !errors.Is(err, fail.ErrBadInput) {
		t.Fatalf("bad profile name accepted: %v", err)
	}
}

func TestDeriveName(t *testing.T) {
	for _, tc := range []struct {
		t    profiles.Target
		want string
	}{
		{profiles.Target{Kind: "container", Container: &profiles.Container{Name: "/web", Image: "nginx"}}, "tailor-web"},
		{profiles.Target{Kind: "container", Container: &profiles.Container{Image: "registry.local:5000/team/app:2.1@sha256:00"}}, "tailor-app"},
		{profiles.Target{Kind: "command", Command: []string{"/usr/bin/Python3.11", "x.py"}}, "tailor-python3.11"},
		{profiles.Target{Kind: "command"}, "tailor-profile"},
	} {
		if got := deriveName(tc.t); got != tc.want {
			t.Errorf("deriveName(%+v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// Write refuses to write anything when validation fails.
func TestWriteNothingOnInvalid(t *testing.T) {
	b, err := Generate([]*profiles.Recording{loadRec(t, "webserver")}, testOptions("webserver"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	rejected := errors.New("rejected")
	if _, err := Write(dir, b, func(string) error { return rejected }); !errors.Is(err, rejected) {
		t.Fatalf("Write: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("bundle directory exists after a failed validation: %v", err)
	}
	// A broken seccomp.json is caught by the libseccomp compile.
	b.Files[profiles.BundleSeccompFile] = []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["nosuchcall"],"action":"SCMP_ACT_ALLOW"}]}`)
	if _, err := Write(dir, b, nil); err == nil || !strings.Contains(err.Error(), "nosuchcall") {
		t.Fatalf("Write with a broken seccomp.json: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("bundle directory exists after a failed validation: %v", err)
	}
}

func TestWriteModes(t *testing.T) {
	b, err := Generate([]*profiles.Recording{loadRec(t, "webserver")}, testOptions("webserver"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	// Whatever the umask, a bundle is for root's eyes only.
	defer syscall.Umask(syscall.Umask(0))
	notes, err := Write(dir, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "apparmor_parser") {
		t.Errorf("no note about the unchecked AppArmor profile: %v", notes)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(b.Files) {
		t.Errorf("wrote %d files, want %d", len(entries), len(b.Files))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), info.Mode())
		}
	}
	if _, err := profiles.LoadBundle(dir); err != nil {
		t.Errorf("written bundle does not load: %v", err)
	}
}

// mkdir and rmdir name directories: their rule ends in "/" even when the recording
// did not flag the path as one, and Landlock gets make_dir and remove_dir on the
// parent.
func TestMkdirIsADirectory(t *testing.T) {
	r := loadRec(t, "shell-tree")
	r.Files = append(r.Files, profiles.FileAccess{Path: "/app/new", Access: []string{profiles.AccessMkdir, profiles.AccessRmdir}})
	b, err := Generate([]*profiles.Recording{r}, testOptions("shell-tree"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b.Files[profiles.BundleAppArmorFile]), "  /app/new/ w,\n") {
		t.Errorf("no directory rule for /app/new:\n%s", b.Files[profiles.BundleAppArmorFile])
	}
	i := slices.IndexFunc(b.Manifest.Landlock.Paths, func(p profiles.LandlockPath) bool { return p.Path == "/app" })
	if i < 0 || !slices.Contains(b.Manifest.Landlock.Paths[i].Access, "make_dir") || !slices.Contains(b.Manifest.Landlock.Paths[i].Access, "remove_dir") {
		t.Errorf("landlock plan: %+v", b.Manifest.Landlock.Paths)
	}
}

// Failed attempts and peers reach bundle.json generalised, merged and sorted.
func TestFailedAndPeersInBundle(t *testing.T) {
	got := failedRules([]profiles.FailedAccess{
		{Path: "/proc/4250/status", Access: []string{profiles.AccessRead}, Errno: "ENOENT"},
		{Path: "/proc/4242/status", Access: []string{profiles.AccessWrite}, Errno: "ENOENT"},
		{Path: "/proc/4242/status", Access: []string{profiles.AccessRead}, Errno: "EACCES"},
		{Path: "/etc/app.conf", Access: []string{profiles.AccessRead}, Errno: "ENOENT"},
		{Path: "/var/cache/app", Access: []string{profiles.AccessRead}, Errno: "ENOENT", Collapsed: 9000},
	}, "")
	want := []profiles.FailedRule{
		{Pattern: "/etc/app.conf", Access: []string{profiles.AccessRead}, Errno: "ENOENT"},
		{Pattern: "/proc/@{pid}/status", Access: []string{profiles.AccessRead}, Errno: "EACCES"},
		{Pattern: "/proc/@{pid}/status", Access: []string{profiles.AccessRead, profiles.AccessWrite}, Errno: "ENOENT"},
		{Pattern: "/var/cache/app/*", Access: []string{profiles.AccessRead}, Errno: "ENOENT"}, // a collapsed directory
	}
	if !slices.EqualFunc(got, want, func(a, b profiles.FailedRule) bool {
		return a.Pattern == b.Pattern && a.Errno == b.Errno && slices.Equal(a.Access, b.Access)
	}) {
		t.Errorf("failed rules %+v, want %+v", got, want)
	}
	n := bundleNetwork(profiles.Network{Connects: []profiles.Peer{
		{Family: "AF_UNIX", Address: "/run/user/1000/bus"},
		{Family: "AF_INET", Address: "127.0.0.1", Port: 80},
		{Family: "AF_UNIX", Address: "@0123456789abcdef"},
		{Family: "AF_INET", Address: "127.0.0.1", Port: 80},
	}})
	wantPeers := []profiles.Peer{
		{Family: "AF_INET", Address: "127.0.0.1", Port: 80},
		{Family: "AF_UNIX", Address: "/run/user/*/bus"},
		{Family: "AF_UNIX", Address: "@0123456789abcdef"}, // abstract names stay as learned
	}
	if !slices.Equal(n.Connects, wantPeers) || n.Sends == nil || n.Binds == nil {
		t.Errorf("network %+v", n)
	}
	rules := unixRules(profiles.BundleNetwork{
		Connects: []profiles.Peer{{Family: "AF_UNIX", Address: "@bus*"}, {Family: "AF_UNIX", Address: "/run/x.sock"}, {Family: "AF_UNIX", Address: "@bad\x01"}},
		Sends:    []profiles.Peer{{Family: "AF_UNIX", Address: "@journal"}},
	})
	if want := []string{`unix (connect, send, receive) peer=(addr="@bus\*")`, `unix (send) peer=(addr="@journal")`}; !slices.Equal(rules, want) {
		t.Errorf("unix rules %q, want %q", rules, want)
	}
}

// A recording with socket calls but no family (edited, or broken) is refused instead
// of allowing socket for every family; --no-args allows it on purpose.
func TestSocketWithoutFamilyRefused(t *testing.T) {
	rec := &profiles.Recording{
		Kind: profiles.RecordingKind, SchemaVersion: profiles.RecordingSchemaVersion, Complete: true,
		Target:   profiles.Target{Kind: "command", Command: []string{"/usr/bin/x"}},
		Host:     profiles.Host{Machine: "x86_64"},
		Syscalls: []profiles.ArchSyscalls{{Arch: profiles.ArchX86_64, Names: []string{"exit_group", "socket"}}},
	}
	if _, err := Generate([]*profiles.Recording{rec}, Options{Version: "test"}); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "no socket family") {
		t.Errorf("no family: %v", err)
	}
	rec.Network.Sockets = []profiles.Socket{{Family: "AF_BOGUS", Type: "SOCK_STREAM"}}
	if _, err := Generate([]*profiles.Recording{rec}, Options{Version: "test"}); !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "AF_BOGUS") {
		t.Errorf("unknown family: %v", err)
	}
	if _, err := Generate([]*profiles.Recording{rec}, Options{Version: "test", NoArgs: true}); err != nil {
		t.Errorf("--no-args: %v", err)
	}
}
