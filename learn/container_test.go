package learn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// runcSetup are calls runc makes in the container before it installs the filter:
// they must never reach a recording.
var runcSetup = []string{"pivot_root", "mount", "keyctl", "sethostname", "umount2"}

var containerSeq atomic.Int64

// dockerEnv gives a test root, the daemon and the busybox image.
func dockerEnv(t *testing.T) (*dockertest.Env, string) {
	t.Helper()
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	return env, env.Busybox(t)
}

// busyboxContainer creates (does not start) a container running script with sh -c,
// with no network, labelled for dockertest's leftover check, removed after the test.
// securityOpt is passed to the host config.
func busyboxContainer(t *testing.T, env *dockertest.Env, img, script string, securityOpt ...string) string {
	t.Helper()
	return createContainer(t, env,
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}},
		&container.HostConfig{NetworkMode: "none", SecurityOpt: securityOpt})
}

// createContainer creates (does not start) a container of cfg and hc, named after the
// test, labelled for dockertest's leftover check and removed after the test.
func createContainer(t *testing.T, env *dockertest.Env, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	name := fmt.Sprintf("learn-%s-%d", strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")), containerSeq.Add(1))
	cfg.Labels = dockertest.Labels()
	created, err := env.Client.ContainerCreate(context.Background(), cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatalf("creating container: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	return name
}

// learnContainer learns name and reads the recording back.
func learnContainer(t *testing.T, name string, opt Options, copt ContainerOptions) (*profiles.Recording, *Result, error) {
	t.Helper()
	if opt.Output == "" {
		opt.Output = filepath.Join(t.TempDir(), "rec.json")
	}
	copt.CopyLabels = dockertest.Labels()
	res, err := Container(context.Background(), name, opt, copt)
	if res == nil {
		return nil, nil, err
	}
	rec, lerr := profiles.LoadRecording(opt.Output)
	if lerr != nil {
		t.Fatalf("reading back the recording: %v", lerr)
	}
	return rec, res, err
}

// runWithProfile runs a fresh container of script under a seccomp profile that allows
// exactly names, and returns its exit code and output.
func runWithProfile(t *testing.T, env *dockertest.Env, img, script string, names []string) (int64, string) {
	t.Helper()
	prof, err := json.Marshal(map[string]any{
		"defaultAction": "SCMP_ACT_ERRNO",
		"syscalls":      []map[string]any{{"names": names, "action": "SCMP_ACT_ALLOW"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := busyboxContainer(t, env, img, script, "seccomp="+string(prof))
	if err := env.Client.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		// runc itself failing under the profile is a failed run too.
		return -1, err.Error()
	}
	resc, errc := env.Client.ContainerWait(ctx, name, container.WaitConditionNotRunning)
	var code int64
	select {
	case r := <-resc:
		code = r.StatusCode
	case err := <-errc:
		t.Fatalf("waiting for %s: %v", name, err)
	}
	rc, err := env.Client.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("reading logs: %v", err)
	}
	return code, out.String()
}

func hasFile(r *profiles.Recording, path string) bool { return fileAccess(r, path) != nil }

// TestLearnContainerEndToEnd: a busybox container's script is learned through a
// relaunched copy; the recording has the script's syscalls and none of runc's set-up;
// the container then runs under a profile of exactly the recorded syscalls, and fails
// once the syscall its key action needs is taken out.
func TestLearnContainerEndToEnd(t *testing.T) {
	env, img := dockerEnv(t)
	// mkdir(2) is the key action: busybox mkdir makes no other call that needs it.
	const script = `mkdir /tmp/made && echo made-it > /tmp/made/f && cat /tmp/made/f`
	name := busyboxContainer(t, env, img, script)
	begin := time.Now()
	rec, res, err := learnContainer(t, name, Options{}, ContainerOptions{})
	if err != nil {
		t.Fatalf("learn --container: %v", err)
	}
	t.Logf("learned in %v", time.Since(begin))
	if res.TargetStatus != 0 {
		t.Fatalf("copy exited %d", res.TargetStatus)
	}
	// The copy is gone before its exec events are handled: its executables are read
	// through Docker, so nothing is missing.
	if !rec.Complete {
		t.Errorf("recording incomplete: %v", rec.Incomplete)
	}
	if rec.Target.Kind != "container" || rec.Target.Container == nil || rec.Target.Container.Name != name || rec.Target.Container.Attached {
		t.Errorf("target %+v does not name the original container, relaunched", rec.Target)
	}
	if !slices.Equal(rec.Target.Command, []string{"/bin/sh", "-c", script}) {
		t.Errorf("target command %q", rec.Target.Command)
	}
	// generate caps a learned --cpus at it.
	if rec.Host.CPUs != runtime.NumCPU() {
		t.Errorf("host CPUs %d recorded, want %d", rec.Host.CPUs, runtime.NumCPU())
	}
	sys := syscallSet(rec, profiles.ArchX86_64)
	for _, want := range []string{"execve", "mkdir", "openat", "write", "read", "exit_group"} {
		if !sys[want] {
			t.Errorf("syscall %s missing from %v", want, rec.Syscalls)
		}
	}
	for _, never := range runcSetup {
		if sys[never] {
			t.Errorf("runc's set-up call %s recorded", never)
		}
	}
	if !hasFile(rec, "/tmp/made/f") {
		t.Errorf("file /tmp/made/f missing")
	}
	var names []string
	for n := range sys {
		names = append(names, n)
	}
	slices.Sort(names)
	code, out := runWithProfile(t, env, img, script, names)
	if code != 0 || !strings.Contains(out, "made-it") {
		t.Fatalf("under the learned syscalls: exit %d, output %q; want 0 and made-it", code, out)
	}
	without := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "mkdir" })
	code, out = runWithProfile(t, env, img, script, without)
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("without mkdir: exit %d, output %q; want a failure with EPERM", code, out)
	}
}

// TestLearnContainersConcurrentlyAndInSequence: two containers learned at the same
// time get separate recordings, and a container learned after another that got the
// same mount-namespace number has none of the first one's observations.
func TestLearnContainersConcurrentlyAndInSequence(t *testing.T) {
	env, img := dockerEnv(t)
	// mkdir(2) for one, sync(2) for the other: no busybox start-up makes either.
	scripts := [2]string{`mkdir /tmp/alpha && echo a > /tmp/alpha/f`, `echo b > /tmp/beta && sync`}
	own := [2]struct{ syscall, file string }{{"mkdir", "/tmp/alpha/f"}, {"sync", "/tmp/beta"}}
	check := func(t *testing.T, recs [2]*profiles.Recording) {
		for i, rec := range recs {
			other := own[1-i]
			sys := syscallSet(rec, profiles.ArchX86_64)
			if !sys[own[i].syscall] || !hasFile(rec, own[i].file) {
				t.Errorf("container %d: its own %s / %s missing", i, own[i].syscall, own[i].file)
			}
			if sys[other.syscall] || hasFile(rec, other.file) {
				t.Errorf("container %d: has the other container's %s or %s", i, other.syscall, other.file)
			}
		}
	}
	t.Run("concurrent", func(t *testing.T) {
		var recs [2]*profiles.Recording
		var errs [2]error
		var wg sync.WaitGroup
		for i := range scripts {
			name := busyboxContainer(t, env, img, scripts[i])
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := filepath.Join(t.TempDir(), "rec.json")
				_, errs[i] = Container(context.Background(), name, Options{Output: out}, ContainerOptions{CopyLabels: dockertest.Labels()})
				if errs[i] == nil {
					recs[i], errs[i] = profiles.LoadRecording(out)
				}
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("container %d: %v", i, err)
			}
		}
		check(t, recs)
	})
	t.Run("reused-mntns", func(t *testing.T) {
		// Each container, once its own work is done, blocks opening a FIFO for reading
		// until the workload opens it for writing; tailor starts the workload only
		// after it read the copy's mount namespace, so the number is always known and
		// no container can end before it.
		dir := t.TempDir()
		fifo := filepath.Join(dir, "go")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		type learned struct {
			n   int
			rec *profiles.Recording
		}
		// The kernel hands out the lowest free namespace number, so a container
		// started after another ended usually gets its number back; other test
		// binaries sharing the daemon may take it first, hence several tries.
		const tries = 20
		seen := map[uint64]learned{}
		for n := range tries {
			i := n % 2
			name := createContainer(t, env,
				&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{scripts[i] + "; read x < /sync/go"}},
				&container.HostConfig{NetworkMode: "none", Binds: []string{dir + ":/sync"}})
			// The duration only bounds a container that broke before the FIFO.
			rec, res, err := learnContainer(t, name, Options{Workload: "echo go > " + fifo, Duration: time.Minute, StopTimeout: time.Second}, ContainerOptions{})
			if err != nil {
				t.Fatalf("container %d: %v", n, err)
			}
			ns := rec.Target.Container.MntNS
			if res.TargetStatus != 0 || ns == 0 {
				t.Fatalf("container %d: exit %d, mount namespace %d; want 0 and a number", n, res.TargetStatus, ns)
			}
			prev, ok := seen[ns]
			if !ok || prev.n%2 == i {
				seen[ns] = learned{n, rec}
				continue
			}
			t.Logf("container %d got mount namespace %d of container %d", n, ns, prev.n)
			var recs [2]*profiles.Recording
			recs[prev.n%2], recs[i] = prev.rec, rec
			check(t, recs)
			return
		}
		t.Fatalf("no two of %d containers got the same mount namespace (numbers seen: %v): the reuse this test proves harmless never happened", tries, slices.Sorted(maps.Keys(seen)))
	})
}

// TestLearnContainerOutput: the copy's stdout and stderr reach learn's, split
// without a TTY and all on stdout with one, complete by the time learn returns.
func TestLearnContainerOutput(t *testing.T) {
	env, img := dockerEnv(t)
	const script = `echo tailor-marker-out; echo tailor-marker-err >&2`
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("tty=%v", tty), func(t *testing.T) {
			name := createContainer(t, env,
				&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}, Tty: tty},
				&container.HostConfig{NetworkMode: "none"})
			var stdout, stderr bytes.Buffer
			if _, _, err := learnContainer(t, name, Options{Stdout: &stdout, Stderr: &stderr}, ContainerOptions{}); err != nil {
				t.Fatalf("learn --container: %v", err)
			}
			wantOut, wantErr := "tailor-marker-out\n", "tailor-marker-err\n"
			if tty {
				// A terminal turns \n into \r\n, and has one stream for both.
				wantOut, wantErr = "tailor-marker-out\r\ntailor-marker-err\r\n", ""
			}
			if stdout.String() != wantOut || stderr.String() != wantErr {
				t.Errorf("stdout %q, stderr %q; want %q and %q", stdout.String(), stderr.String(), wantOut, wantErr)
			}
		})
	}
}

// TestLearnContainerShortLivedDynamic: a container whose dynamically linked
// entrypoint exits at once is gone before its program's ELF interpreter can be read
// through a live process; it is read from the stopped copy through Docker instead, so
// the recording lists the loader, resolved inside the container, and is complete.
func TestLearnContainerShortLivedDynamic(t *testing.T) {
	env, _ := dockerEnv(t)
	img := env.Dynamic(t)
	// The image holds the host's program, loader and symlinks at the host's paths, so
	// the host resolves the loader as the container does.
	loader, err := elfInterpreter("/", dockertest.DynamicProgram)
	if err != nil || loader == "" {
		t.Fatalf("the host's %s has no readable loader (%q, %v)", dockertest.DynamicProgram, loader, err)
	}
	name := createContainer(t, env, &container.Config{Image: img}, &container.HostConfig{NetworkMode: "none"})
	rec, res, err := learnContainer(t, name, Options{}, ContainerOptions{})
	if err != nil {
		t.Fatalf("learn --container: %v", err)
	}
	if res.TargetStatus != 0 {
		t.Fatalf("copy exited %d", res.TargetStatus)
	}
	if !rec.Complete {
		t.Errorf("recording incomplete: %v", rec.Incomplete)
	}
	if acc := fileAccess(rec, loader); !slices.Contains(acc, profiles.AccessMmapExec) || !slices.Contains(acc, profiles.AccessRead) {
		t.Errorf("loader %s: access %v, want read and mmap-exec (files %v)", loader, acc, rec.Files)
	}
	if !slices.ContainsFunc(rec.Execs, func(x profiles.Exec) bool { return x.Path == dockertest.DynamicProgram }) {
		t.Errorf("exec of %s missing: %v", dockertest.DynamicProgram, rec.Execs)
	}
}

// tracerProgramsHeld lists the IDs of the BPF programs this process still holds, read
// from the fdinfo of its program and link descriptors.
func tracerProgramsHeld(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		if m := regexp.MustCompile(`(?m)^prog_id:\s+(\d+)$`).FindSubmatch(b); m != nil {
			held = append(held, string(m[1]))
		}
	}
	return held
}

// TestLearnContainerInterrupted: SIGINT while a copy runs stops it, saves the
// recording marked incomplete, returns exit 130, and leaves no copy, no BPF program
// and no temporary file.
func TestLearnContainerInterrupted(t *testing.T) {
	env, img := dockerEnv(t)
	name := busyboxContainer(t, env, img, `cat /etc/passwd > /dev/null; exec sleep 600`)
	dir := t.TempDir()
	out := filepath.Join(dir, "rec.json")
	// The workload runs once the copy started and interrupts tailor (this process),
	// as Ctrl-C would.
	res, err := Container(context.Background(), name, Options{
		Output: out, StopTimeout: time.Second,
		Workload: "kill -INT " + strconv.Itoa(os.Getpid()),
	}, ContainerOptions{CopyLabels: dockertest.Labels()})
	if code := fail.Code(err); code != 130 || res == nil {
		t.Fatalf("error %v (exit %d), want an interruption (130) with a result", err, code)
	}
	rec, lerr := profiles.LoadRecording(out)
	if lerr != nil {
		t.Fatalf("recording not saved: %v", lerr)
	}
	if rec.Complete || !slices.Contains(rec.Incomplete, "interrupted before the target finished") {
		t.Errorf("interrupted recording not marked incomplete: %v", rec.Incomplete)
	}
	list, lerr := env.Client.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelCopyOf+"="+rec.Target.Container.ID))})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(list) != 0 {
		t.Errorf("copies left after the interrupt: %v", list[0].Names)
	}
	if held := tracerProgramsHeld(t); len(held) != 0 {
		t.Errorf("BPF programs still held after the run: %v", held)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %v, want only rec.json", names)
	}
}

// TestLearnContainerErrors: a missing container and an unreachable daemon are one
// line each and exit 6.
func TestLearnContainerErrors(t *testing.T) {
	dockerEnv(t)
	out := filepath.Join(t.TempDir(), "rec.json")
	_, err := Container(context.Background(), "tailor-no-such-container", Options{Output: out}, ContainerOptions{})
	if fail.Code(err) != 6 || !strings.Contains(err.Error(), `container "tailor-no-such-container" not found`) {
		t.Errorf("missing container: %v (exit %d), want exit 6 naming it", err, fail.Code(err))
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	_, err = Container(context.Background(), "web", Options{Output: out}, ContainerOptions{})
	if fail.Code(err) != 6 || !strings.Contains(err.Error(), "cannot reach the docker daemon") {
		t.Errorf("no daemon: %v (exit %d), want exit 6", err, fail.Code(err))
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Errorf("a failed run wrote %s", out)
	}
}

// TestLearnContainerAttach: attaching traces the running container's existing
// processes, marks the recording incomplete and leaves the container running.
func TestLearnContainerAttach(t *testing.T) {
	env, img := dockerEnv(t)
	// sync(2) in a loop: made only after the attach, by processes forked from the
	// already running shell.
	name := busyboxContainer(t, env, img, `while :; do sync; usleep 20000; done`)
	ctx := context.Background()
	if err := env.Client.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, _, err := learnContainer(t, name, Options{Duration: time.Second}, ContainerOptions{Attach: true})
	if err != nil {
		t.Fatalf("learn --attach: %v", err)
	}
	if !rec.Target.Container.Attached || rec.Complete || !slices.Contains(rec.Incomplete, attachedReason) {
		t.Errorf("attached recording: attached=%v complete=%v %v", rec.Target.Container.Attached, rec.Complete, rec.Incomplete)
	}
	sys := syscallSet(rec, profiles.ArchX86_64)
	// busybox runs its applets in forked shells, without execve.
	if !sys["sync"] || !sys["clone"] {
		t.Errorf("the running container's sync/clone missing: %v", rec.Syscalls)
	}
	info, err := env.Client.ContainerInspect(ctx, name)
	if err != nil || !info.State.Running {
		t.Errorf("the container must still run after detaching: %v", err)
	}
}

// TestLearnContainerGenerateRun is generate's end-to-end proof: a container learned,
// its bundle generated, and the container run through the real dockerd with the
// generated seccomp.json and the generated capability set: the workload passes.
func TestLearnContainerGenerateRun(t *testing.T) {
	env, img := dockerEnv(t)
	const script = `mkdir /tmp/made && echo made-it > /tmp/made/f && cat /tmp/made/f && chown 65534 /tmp/made/f`
	name := busyboxContainer(t, env, img, script)
	rec, _, err := learnContainer(t, name, Options{}, ContainerOptions{})
	if err != nil {
		t.Fatalf("learn --container: %v", err)
	}
	b, err := generate.Generate([]*profiles.Recording{rec}, generate.Options{Name: "tailor-e2e"})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	var caps struct {
		Drop []string `json:"drop"`
		Add  []string `json:"add"`
	}
	if err := json.Unmarshal(b.Files[profiles.BundleCapabilitiesFile], &caps); err != nil {
		t.Fatalf("capabilities.json: %v", err)
	}
	if !slices.Contains(caps.Add, "CAP_CHOWN") {
		t.Errorf("chown as root in the container should need CAP_CHOWN; capabilities.json adds %v", caps.Add)
	}
	ctx := context.Background()
	cname := "tailor-e2e-gen-" + strconv.Itoa(os.Getpid())
	resp, err := env.Client.ContainerCreate(ctx,
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}, Labels: dockertest.Labels()},
		&container.HostConfig{
			SecurityOpt: []string{"seccomp=" + string(b.Files[profiles.BundleSeccompFile]), "no-new-privileges"},
			CapDrop:     caps.Drop,
			CapAdd:      caps.Add,
		}, nil, nil, cname)
	if err != nil {
		t.Fatalf("creating the confined container: %v", err)
	}
	t.Cleanup(func() {
		env.Client.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if err := env.Client.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting under the generated profile: %v", err)
	}
	resc, errc := env.Client.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case r := <-resc:
		if r.StatusCode != 0 {
			t.Fatalf("workload under the generated seccomp.json and capabilities exited %d", r.StatusCode)
		}
	case err := <-errc:
		t.Fatalf("waiting: %v", err)
	}
}
