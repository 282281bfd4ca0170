package learn

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

func TestMain(m *testing.M) {
	launch.Main() // the test binary is also the launcher child
	dockertest.Main(m, func() {
		if wl64 != "" {
			os.RemoveAll(filepath.Dir(wl64))
		}
	})
}

var (
	buildOnce sync.Once
	wl64      string
	wl32      string
	buildErr  error
)

// workloads builds testdata/workloads/workload.c natively and, where gcc can, for i386.
func workloads(t *testing.T) (native, compat string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailor-workload-")
		if err != nil {
			buildErr = err
			return
		}
		src := filepath.Join("..", "testdata", "workloads", "workload.c")
		wl64 = filepath.Join(dir, "workload")
		if out, err := exec.Command("gcc", "-O2", "-o", wl64, src).CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
			return
		}
		wl32 = filepath.Join(dir, "workload32")
		if out, err := exec.Command("gcc", "-m32", "-O2", "-o", wl32, src).CombinedOutput(); err != nil {
			wl32 = ""
			_ = out
		}
	})
	if buildErr != nil {
		t.Fatalf("building workload: %v", buildErr)
	}
	return wl64, wl32
}

func learnIt(t *testing.T, opt Options, argv ...string) *profiles.Recording {
	t.Helper()
	testpriv.RequireRoot(t)
	if opt.Output == "" {
		opt.Output = filepath.Join(t.TempDir(), "rec.json")
	}
	res, err := Command(context.Background(), argv, opt)
	if err != nil {
		t.Fatalf("learn %v: %v", argv, err)
	}
	if res.TargetStatus != 0 {
		t.Fatalf("learn %v: target exited %d", argv, res.TargetStatus)
	}
	rec, err := profiles.LoadRecording(opt.Output)
	if err != nil {
		t.Fatalf("reading back the recording: %v", err)
	}
	return rec
}

func syscallSet(r *profiles.Recording, arch string) map[string]bool {
	out := map[string]bool{}
	for _, a := range r.Syscalls {
		if a.Arch == arch {
			for _, n := range a.Names {
				out[n] = true
			}
		}
	}
	return out
}

func fileAccess(r *profiles.Recording, path string) []string {
	for _, f := range r.Files {
		if f.Path == path {
			return f.Access
		}
	}
	return nil
}

func capOf(r *profiles.Recording, name string) profiles.Capability {
	for _, c := range r.Capabilities {
		if c.Name == name {
			return c
		}
	}
	return profiles.Capability{Name: name}
}

func TestLearnFilesWrittenCreatedRead(t *testing.T) {
	wl, _ := workloads(t)
	dir := t.TempDir()
	rec := learnIt(t, Options{}, wl, "files", dir)
	if !rec.Complete {
		t.Errorf("recording incomplete: %v", rec.Incomplete)
	}
	got := fileAccess(rec, dir+"/new")
	for _, want := range []string{profiles.AccessCreate, profiles.AccessWrite, profiles.AccessRead} {
		if !slices.Contains(got, want) {
			t.Errorf("%s/new: access %v lacks %s", dir, got, want)
		}
	}
	if got := fileAccess(rec, "/etc/hostname"); !slices.Equal(got, []string{profiles.AccessRead}) {
		t.Errorf("/etc/hostname: access %v, want [read]", got)
	}
	if got := fileAccess(rec, wl); !slices.Contains(got, profiles.AccessExec) {
		t.Errorf("%s: access %v lacks exec", wl, got)
	}
	sys := syscallSet(rec, profiles.ArchX86_64)
	for _, want := range []string{"execve", "openat", "write", "read", "close", "exit_group"} {
		if !sys[want] {
			t.Errorf("syscall %s missing", want)
		}
	}
	for _, never := range []string{"seccomp", "prctl"} {
		if sys[never] {
			t.Errorf("syscall %s recorded: the launcher's set-up leaked in", never)
		}
	}
}

func TestLearnExecChain(t *testing.T) {
	wl, _ := workloads(t)
	rec := learnIt(t, Options{}, "/bin/sh", "-c", wl+" exec /bin/true; "+wl+" exec /usr/bin/env true")
	type ex struct{ path, by string }
	var got []ex
	for _, e := range rec.Execs {
		got = append(got, ex{e.Path, e.By})
	}
	for _, want := range []ex{{"/bin/sh", "tailor"}, {wl, "sh"}, {"/bin/true", "workload"}, {"/usr/bin/env", "workload"}, {"/usr/bin/true", "env"}} {
		if !slices.Contains(got, want) {
			t.Errorf("exec %+v missing; got %+v", want, got)
		}
	}
}

func TestLearnCapabilityGranted(t *testing.T) {
	wl, _ := workloads(t)
	f := filepath.Join(t.TempDir(), "owned")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := learnIt(t, Options{}, "/bin/sh", "-c", wl+" chown "+f+" 65534 && "+wl+" bind 80")
	if c := capOf(rec, "CAP_CHOWN"); !c.Needed() {
		t.Errorf("CAP_CHOWN not granted: %+v (all: %+v)", c, rec.Capabilities)
	}
	if c := capOf(rec, "CAP_NET_BIND_SERVICE"); !c.Needed() {
		t.Errorf("CAP_NET_BIND_SERVICE not granted: %+v (all: %+v)", c, rec.Capabilities)
	}
	if !slices.Contains(rec.Network.Binds, profiles.Port{Family: "AF_INET", Port: 80}) ||
		!slices.Contains(rec.Network.Listens, profiles.Port{Family: "AF_INET", Port: 80}) {
		t.Errorf("bind/listen on port 80 not recorded: %+v", rec.Network)
	}
}

func TestLearnCapabilityDenied(t *testing.T) {
	wl, _ := workloads(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		testpriv.Unavailable(t, "setpriv (util-linux) is not installed")
	}
	// A directory nobody can search (t.TempDir's parents are 0700).
	dir, err := os.MkdirTemp("", "tailor-denied-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	f := filepath.Join(dir, "owned")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// As nobody, chown of root's file is refused: a denied CAP_CHOWN check.
	rec := learnIt(t, Options{}, "/bin/sh", "-c", "setpriv --reuid=65534 --regid=65534 --clear-groups -- "+wl+" chown "+f+" 65534; true")
	c := capOf(rec, "CAP_CHOWN")
	if c.Denied == 0 {
		t.Errorf("CAP_CHOWN denial not recorded: %+v (all: %+v)", c, rec.Capabilities)
	}
	if c.Needed() {
		t.Errorf("CAP_CHOWN recorded as granted: %+v", c)
	}
}

func TestLearnSocketFamilies(t *testing.T) {
	wl, _ := workloads(t)
	rec := learnIt(t, Options{}, "/bin/sh", "-c", wl+" socket inet6 && "+wl+" socket unix")
	for _, want := range []profiles.Socket{{Family: "AF_INET6", Type: "SOCK_STREAM"}, {Family: "AF_UNIX", Type: "SOCK_STREAM"}} {
		if !slices.Contains(rec.Network.Sockets, want) {
			t.Errorf("socket %+v missing: %+v", want, rec.Network.Sockets)
		}
	}
}

func TestLearnMmapHeavyRootHasNoSysAdmin(t *testing.T) {
	wl, _ := workloads(t)
	rec := learnIt(t, Options{}, wl, "mmap", "2000")
	c := capOf(rec, "CAP_SYS_ADMIN")
	if c.Needed() {
		t.Errorf("mmap-heavy workload yields CAP_SYS_ADMIN as needed: %+v", c)
	}
	if c.Probed == 0 {
		t.Errorf("the kernel's no-audit CAP_SYS_ADMIN probes were not seen at all: %+v", rec.Capabilities)
	}
}

func TestLearnCompat32(t *testing.T) {
	_, wl32 := workloads(t)
	if wl32 == "" {
		testpriv.Unavailable(t, "gcc -m32 cannot build here (install gcc-multilib)")
	}
	dir := t.TempDir()
	rec := learnIt(t, Options{}, wl32, "files", dir)
	x86 := syscallSet(rec, profiles.ArchX86)
	// i386 names: the 32-bit table's own (e.g. mmap2, and openat/open under their i386 numbers).
	for _, want := range []string{"mmap2", "openat", "write", "read", "exit_group"} {
		if !x86[want] {
			t.Errorf("compat syscall %s missing from SCMP_ARCH_X86: %v", want, keys(x86))
		}
	}
	native := syscallSet(rec, profiles.ArchX86_64)
	if !native["execve"] {
		t.Errorf("the 64-bit execve that started the 32-bit program is missing: %v", keys(native))
	}
	for n := range native {
		if n != "execve" {
			t.Errorf("SCMP_ARCH_X86_64 has %s: compat calls misnamed through the 64-bit table?", n)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var straceLine = regexp.MustCompile(`^(?:\[pid\s+\d+\] )?(?:\d+\s+)?([a-z0-9_]+)\(`)

// TestLearnMatchesStrace is the ground truth: for a deterministic workload, the recorded
// syscall set equals what strace -f sees from the execve on.
func TestLearnMatchesStrace(t *testing.T) {
	wl, _ := workloads(t)
	if _, err := exec.LookPath("strace"); err != nil {
		testpriv.Unavailable(t, "strace is not installed")
	}
	dir := t.TempDir()
	argv := []string{"/bin/sh", "-c", wl + " files " + dir + " && " + wl + " socket inet && " + wl + " exec /bin/true"}
	rec := learnIt(t, Options{}, argv...)

	out := filepath.Join(t.TempDir(), "strace.out")
	if b, err := exec.Command("strace", append([]string{"-f", "-qq", "-o", out, "--"}, argv...)...).CombinedOutput(); err != nil {
		t.Fatalf("strace: %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		line = strings.TrimSpace(strings.TrimPrefix(line, "<... "))
		if m := straceLine.FindStringSubmatch(line); m != nil {
			want[m[1]] = true
		}
	}
	got := syscallSet(rec, profiles.ArchX86_64)
	var missing, extra []string
	for n := range want {
		if !got[n] {
			missing = append(missing, n)
		}
	}
	for n := range got {
		if !want[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("recording differs from strace -f:\n missing (strace saw, tailor did not): %v\n extra (tailor recorded, strace did not): %v", missing, extra)
	}
}

// TestLearnNoLeakFromOtherProcesses runs an unrelated process, itself under a seccomp
// filter, doing a distinctive syscall and file access while the target runs.
func TestLearnNoLeakFromOtherProcesses(t *testing.T) {
	wl, _ := workloads(t)
	testpriv.RequireRoot(t)
	marker := filepath.Join(t.TempDir(), "marker-file")
	os.WriteFile(marker, nil, 0o644)
	// The unrelated process loops until the target is done; it runs under a filter of
	// its own (through a launcher that nobody registers), so only the map lookup keeps it out.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			p, err := launch.Start("learn", launch.Payload{Argv: []string{wl, "marker", marker}, Env: os.Environ()}, launch.Stdio{})
			if err != nil {
				return
			}
			p.Release()
			p.Wait()
			p.Cleanup()
		}
	}()
	rec := learnIt(t, Options{}, "/bin/sh", "-c", wl+" mmap 200; "+wl+" files "+t.TempDir()+"; "+wl+" mmap 200")
	close(stop)
	wg.Wait()
	sys := syscallSet(rec, profiles.ArchX86_64)
	for _, leak := range []string{"getcpu", "sync"} {
		if sys[leak] {
			t.Errorf("syscall %s of an unrelated process leaked into the recording", leak)
		}
	}
	if fileAccess(rec, marker) != nil {
		t.Errorf("file %s of an unrelated process leaked into the recording", marker)
	}
	for _, e := range rec.Execs {
		if strings.Contains(strings.Join([]string{e.Path}, ""), "marker") {
			t.Errorf("exec leaked: %+v", e)
		}
	}
}

func TestLearnErrors(t *testing.T) {
	_, err := Command(context.Background(), []string{"/nonexistent/cmd"}, Options{Output: filepath.Join(t.TempDir(), "r.json")})
	if !errors.Is(err, fail.ErrBadInput) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing command: got %v, want a bad-input 'not found' error", err)
	}
	_, err = Command(context.Background(), []string{"true"}, Options{Output: "/nonexistent-dir/r.json"})
	if !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("bad output dir: got %v", err)
	}
	_, err = Command(context.Background(), nil, Options{Output: "x.json"})
	if !errors.Is(err, fail.ErrBadInput) {
		t.Errorf("no command: got %v", err)
	}
}
