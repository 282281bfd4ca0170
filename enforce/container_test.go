package enforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/profiles"
)

// common is what every container of these tests does: chown as root needs CAP_CHOWN,
// so the learned bundle adds one capability.
const common = `echo hi > /tmp/f && cat /tmp/f && chown 65534 /tmp/f`

// Scripts: learned is what the bundle is learned from (it ends by itself, after a
// short sleep so the sleep's syscalls are learned); long does the same and then
// sleeps until tailor stops it; mkdir adds mkdir(2), which the bundle does not allow.
const (
	learnedScript = common + ` && sleep 0.01`
	longScript    = common + ` && sleep 600`
	mkdirScript   = common + ` && mkdir /tmp/d && echo made-it`
)

// dockerEnv gives a test root, the daemon and the busybox image.
func dockerEnv(t *testing.T) (*dockertest.Env, string) {
	t.Helper()
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	return env, env.Busybox(t)
}

var ctrSeq atomic.Int64

// busyboxContainer creates (does not start) a container running script with sh -c,
// without network, labelled for dockertest's leftover check, removed after the test.
func busyboxContainer(t *testing.T, env *dockertest.Env, img, script string) string {
	t.Helper()
	name := fmt.Sprintf("enforce-%s-%d", strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")), ctrSeq.Add(1))
	created, err := env.Client.ContainerCreate(context.Background(),
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}, Labels: dockertest.Labels()},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		t.Fatalf("creating container: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	return name
}

var (
	learnOnce  sync.Once
	learnedDir string
	learnErr   error
)

// learnedBundle learns a busybox container once per test binary (through the real
// tracer, as tailor learn --container does) and generates its bundle.
func learnedBundle(t *testing.T, env *dockertest.Env, img string) string {
	t.Helper()
	learnOnce.Do(func() {
		name := busyboxContainer(t, env, img, learnedScript)
		rec := filepath.Join(workDir, "learned.json")
		if _, learnErr = learn.Container(context.Background(), name, learn.Options{Output: rec},
			learn.ContainerOptions{CopyLabels: dockertest.Labels()}); learnErr != nil {
			return
		}
		r, err := profiles.LoadRecording(rec)
		if err != nil {
			learnErr = err
			return
		}
		// Incomplete only for the documented ELF-interpreter gap: a static busybox has
		// no interpreter.
		b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Name: "tailor-enforce-ctr", AllowIncomplete: true})
		if err != nil {
			learnErr = err
			return
		}
		learnedDir = filepath.Join(workDir, "learned-bundle")
		_, learnErr = generate.Write(learnedDir, b, nil)
	})
	if learnErr != nil {
		t.Fatalf("learning and generating the busybox bundle: %v", learnErr)
	}
	return learnedDir
}

// syncBuffer is an output both tailor's goroutines and the test use; when it first
// holds mark, it closes seen.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	mark string
	seen chan struct{}
}

func newSyncBuffer(mark string) *syncBuffer {
	return &syncBuffer{mark: mark, seen: make(chan struct{})}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.mark != "" && strings.Contains(s.b.String(), s.mark) {
		s.mark = ""
		close(s.seen)
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type ctrResult struct {
	status   int
	err      error
	out, log *syncBuffer
}

// runCopy runs RunContainer on name with o's profile, mode and workload.
func runCopy(ctx context.Context, name string, o ContainerOptions) ctrResult {
	return runCopyMarked(ctx, name, o, newSyncBuffer(""))
}

// runCopyMarked is runCopy with the output going to out.
func runCopyMarked(ctx context.Context, name string, o ContainerOptions, out *syncBuffer) ctrResult {
	r := ctrResult{out: out, log: newSyncBuffer("")}
	o.Container = name
	o.Stdout, o.Stderr, o.Log = r.out, r.out, r.log
	o.CopyLabels = dockertest.Labels()
	// learnedBundle is generated with AllowIncomplete (a static busybox leaves the
	// ELF-interpreter gap open), so running it needs the same consent.
	o.AllowIncomplete = true
	if o.StopTimeout == 0 {
		// The script's shell is the container's init: it has no SIGTERM handler, so
		// the kernel ignores the signal and Docker kills it after the grace.
		o.StopTimeout = time.Second
	}
	r.status, r.err = RunContainer(ctx, o)
	return r
}

// copiesOf lists the copies of container name that exist now.
func copiesOf(t *testing.T, env *dockertest.Env, name string) []container.Summary {
	t.Helper()
	ctx := context.Background()
	info, err := env.Client.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := env.Client.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelCopyOf+"="+info.ID))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func noCopiesLeft(t *testing.T, env *dockertest.Env, name string) {
	t.Helper()
	if left := copiesOf(t, env, name); len(left) != 0 {
		t.Errorf("copies of %s left behind: %v", name, left[0].Names)
	}
}

// TestContainerEnforcesLearnedProfile: the learned container runs confined and exits
// 0; a container doing one thing more (mkdir) gets EPERM for it; complain mode lets it
// through. Each copy is removed afterwards.
func TestContainerEnforcesLearnedProfile(t *testing.T) {
	env, img := dockerEnv(t)
	dir := learnedBundle(t, env, img)
	ctx := context.Background()

	learned := busyboxContainer(t, env, img, learnedScript)
	r := runCopy(ctx, learned, ContainerOptions{Profile: dir})
	if r.err != nil || r.status != 0 || !strings.Contains(r.out.String(), "hi") {
		t.Fatalf("learned container under its profile: status %d, %v, output %q, log:\n%s", r.status, r.err, r.out, r.log)
	}
	noCopiesLeft(t, env, learned)

	more := busyboxContainer(t, env, img, mkdirScript)
	r = runCopy(ctx, more, ContainerOptions{Profile: dir})
	if r.err != nil || r.status != 1 || !strings.Contains(r.out.String(), "Operation not permitted") || strings.Contains(r.out.String(), "made-it") {
		t.Errorf("mkdir outside the profile: status %d, %v, output %q; want status 1 with EPERM", r.status, r.err, r.out)
	}
	noCopiesLeft(t, env, more)

	r = runCopy(ctx, more, ContainerOptions{Profile: dir, Mode: ModeComplain})
	if r.err != nil || r.status != 0 || !strings.Contains(r.out.String(), "made-it") {
		t.Errorf("mkdir in complain mode: status %d, %v, output %q; want 0 and made-it", r.status, r.err, r.out)
	}
	if !strings.Contains(r.log.String(), "SCMP_ACT_LOG") || !strings.Contains(r.log.String(), "keeps the container's own capabilities") {
		t.Errorf("complain-mode report:\n%s", r.log)
	}
	noCopiesLeft(t, env, more)
}

// TestContainerCopyConfinement inspects the copy while it runs: CapDrop ALL plus the
// bundle's capabilities, no-new-privileges and the bundle's seccomp.json as security
// options, and the kernel agrees (seccomp filter mode, no_new_privs). Cancelling the
// context (Ctrl-C) then stops and removes it with exit 130.
func TestContainerCopyConfinement(t *testing.T) {
	env, img := dockerEnv(t)
	dir := learnedBundle(t, env, img)
	name := busyboxContainer(t, env, img, longScript)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan ctrResult, 1)
	out := newSyncBuffer("hi")
	go func() { done <- runCopyMarked(ctx, name, ContainerOptions{Profile: dir}, out) }()
	// The copy printed "hi" and now sleeps until stopped.
	var r ctrResult
	select {
	case r = <-done:
		t.Fatalf("the copy ended before it was inspected: status %d, %v, log:\n%s", r.status, r.err, r.log)
	case <-out.seen:
	}
	copies := copiesOf(t, env, name)
	if len(copies) != 1 {
		t.Fatalf("%d copies of %s, want 1", len(copies), name)
	}
	info, err := env.Client.ContainerInspect(context.Background(), copies[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var b profiles.Bundle
	data, err := os.ReadFile(filepath.Join(dir, profiles.BundleManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	var wantAdd []string
	for _, c := range b.Capabilities {
		wantAdd = append(wantAdd, strings.TrimPrefix(c, "CAP_"))
	}
	if !slices.Contains(wantAdd, "CHOWN") {
		t.Errorf("the bundle's capabilities %v lack CAP_CHOWN, which the script's chown needs", b.Capabilities)
	}
	hc := info.HostConfig
	// The daemon reports capabilities in its own spelling (CAP_CHOWN on newer ones).
	var gotAdd []string
	for _, c := range hc.CapAdd {
		gotAdd = append(gotAdd, strings.TrimPrefix(c, "CAP_"))
	}
	if !slices.Equal(hc.CapDrop, []string{"ALL"}) || !slices.Equal(gotAdd, wantAdd) {
		t.Errorf("copy's CapDrop %v CapAdd %v, want [ALL] and %v", hc.CapDrop, hc.CapAdd, wantAdd)
	}
	seccompJSON, err := os.ReadFile(filepath.Join(dir, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges") || !slices.Contains(hc.SecurityOpt, "seccomp="+string(seccompJSON)) {
		t.Errorf("copy's SecurityOpt lacks no-new-privileges or the bundle's seccomp.json: %.200q", hc.SecurityOpt)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("the copy's init has no %q in /proc/PID/status", want)
		}
	}
	cancel()
	r = <-done
	if fail.Code(r.err) != 130 {
		t.Errorf("cancelled run: %v (exit %d), want 130", r.err, fail.Code(r.err))
	}
	noCopiesLeft(t, env, name)
}

// TestContainerWorkloadEndsCopy: a workload that succeeds stops the copy and tailor
// exits 0; a failing workload is exit 8; the copy is removed either way.
func TestContainerWorkloadEndsCopy(t *testing.T) {
	env, img := dockerEnv(t)
	dir := learnedBundle(t, env, img)
	name := busyboxContainer(t, env, img, longScript)
	r := runCopy(context.Background(), name, ContainerOptions{Profile: dir, Workload: "echo workload-ran"})
	if r.err != nil || r.status != 0 || !strings.Contains(r.out.String(), "workload-ran") {
		t.Errorf("workload passed: status %d, %v, output %q; want 0", r.status, r.err, r.out)
	}
	if !strings.Contains(r.log.String(), "copy stopped by tailor") {
		t.Errorf("report does not say tailor stopped the copy:\n%s", r.log)
	}
	noCopiesLeft(t, env, name)

	r = runCopy(context.Background(), name, ContainerOptions{Profile: dir, Workload: "exit 3"})
	if fail.Code(r.err) != 8 {
		t.Errorf("failing workload: %v (exit %d), want 8", r.err, fail.Code(r.err))
	}
	noCopiesLeft(t, env, name)
}

// fakeWatcher stands in for the tracer: it records what it is told and checks the
// container's state at each call through the daemon.
type fakeWatcher struct {
	env       *dockertest.Env
	stats     WatchStats
	anomalies int

	mu           sync.Mutex
	target       WatchTarget
	stateAtWatch string
	stateAtEnd   string
	watching     chan struct{}
	stopped      bool
}

func newFakeWatcher(env *dockertest.Env, anomalies int) *fakeWatcher {
	return &fakeWatcher{env: env, anomalies: anomalies, watching: make(chan struct{}),
		stats: WatchStats{Anomalies: map[string]uint64{"syscall": 3, "exec": 1}, Lost: 2, Targets: 1}}
}

func (w *fakeWatcher) state(id string) string {
	info, err := w.env.Client.ContainerInspect(context.Background(), id)
	if err != nil {
		return err.Error()
	}
	return string(info.State.Status)
}

func (w *fakeWatcher) Watch(_ context.Context, t WatchTarget, p *Policy) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.target = t
	w.stateAtWatch = w.state(t.ContainerID)
	close(w.watching)
	return nil
}

func (w *fakeWatcher) Stats() WatchStats { return w.stats }

func (w *fakeWatcher) Stop() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.stateAtEnd = w.state(w.target.ContainerID)
	return w.anomalies, nil
}

// TestContainerWatcher: the watcher is told the copy's full ID before the copy starts
// and stopped after it exited; its anomalies fail the run with --fail-on-anomaly.
func TestContainerWatcher(t *testing.T) {
	env, img := dockerEnv(t)
	dir := learnedBundle(t, env, img)
	name := busyboxContainer(t, env, img, learnedScript)
	w := newFakeWatcher(env, 2)
	r := runCopy(context.Background(), name, ContainerOptions{Profile: dir, Watcher: w, FailOnAnomaly: true})
	if fail.Code(r.err) != 7 {
		t.Errorf("anomalies with --fail-on-anomaly: %v (exit %d), want 7", r.err, fail.Code(r.err))
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(w.target.ContainerID) || w.target.Running || w.target.Pid != 0 {
		t.Errorf("watch target %+v, want the copy's full ID, not running", w.target)
	}
	if w.stateAtWatch != "created" || !w.stopped || w.stateAtEnd != "exited" {
		t.Errorf("copy state at Watch %q, at Stop %q (stopped %v): want created, then exited", w.stateAtWatch, w.stateAtEnd, w.stopped)
	}
	if !strings.Contains(r.log.String(), "anomalies:    watched") {
		t.Errorf("report does not say anomalies are watched:\n%s", r.log)
	}
	noCopiesLeft(t, env, name)
}

// TestContainerRefusals: a bundle whose seccomp.json passes tailor's checks but
// which Docker rejects is a refusal (exit 9) naming the file; the copy is removed.
// A missing profile is refused before Docker is asked anything.
func TestContainerRefusals(t *testing.T) {
	env, img := dockerEnv(t)
	learned := learnedBundle(t, env, img)
	name := busyboxContainer(t, env, img, learnedScript)
	dir := t.TempDir()
	// libseccomp builds this filter, and it lets through nothing bundle.json does not
	// list, but runc refuses a notify action on write. bundle.json records the edited
	// file's digest, so only Docker can object.
	sc, err := profiles.LoadSeccomp(filepath.Join(learned, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Syscalls {
		sc.Syscalls[i].Names = slices.DeleteFunc(slices.Clone(sc.Syscalls[i].Names), func(n string) bool { return n == "write" })
	}
	sc.Syscalls = append(sc.Syscalls, &profiles.SeccompSyscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{"write"}, Action: specs.ActNotify}})
	edited, err := profiles.EncodeSeccomp(sc)
	if err != nil {
		t.Fatal(err)
	}
	original, _ := os.ReadFile(filepath.Join(learned, profiles.BundleSeccompFile))
	for _, n := range []string{profiles.BundleManifestFile, profiles.BundleSeccompFile, profiles.BundleAppArmorFile, profiles.BundleCapabilitiesFile} {
		data, err := os.ReadFile(filepath.Join(learned, n))
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case profiles.BundleSeccompFile:
			data = edited
		case profiles.BundleManifestFile:
			data = bytes.Replace(data, []byte(profiles.FileDigest(original)), []byte(profiles.FileDigest(edited)), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCopy(context.Background(), name, ContainerOptions{Profile: dir})
	if fail.Code(r.err) != 9 || !strings.Contains(r.err.Error(), "docker rejected "+filepath.Join(dir, profiles.BundleSeccompFile)) {
		t.Errorf("seccomp.json docker rejects: %v (exit %d), want a refusal naming it", r.err, fail.Code(r.err))
	}
	noCopiesLeft(t, env, name)

	r = runCopy(context.Background(), name, ContainerOptions{Profile: filepath.Join(dir, "missing")})
	if fail.Code(r.err) != 9 {
		t.Errorf("missing profile: %v (exit %d), want 9", r.err, fail.Code(r.err))
	}
}

// TestContainerPlan checks the decisions for hosts unlike this one: with AppArmor the
// copy gets apparmor=<bundle name>; without it the report warns that file and exec
// rules are not enforced. Complain mode's profile builds the very filter local
// complain mode builds.
func TestContainerPlan(t *testing.T) {
	h, err := ProbeHost()
	if err != nil {
		t.Fatal(err)
	}
	dir := bundle(t, nil)
	p, err := Load(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	h.AppArmor = true
	pl, err := makeContainerPlan(p, h, ModeEnforce, false)
	if err != nil {
		t.Fatal(err)
	}
	if !pl.apparmor || !slices.Contains(pl.securityOpt, "apparmor=workload") || !slices.Equal(pl.capDrop, []string{"ALL"}) {
		t.Errorf("AppArmor host: load %v, security options %.300q, cap drop %v", pl.apparmor, pl.securityOpt, pl.capDrop)
	}
	h.AppArmor = false
	pl, err = makeContainerPlan(p, h, ModeEnforce, false)
	if err != nil {
		t.Fatal(err)
	}
	report := strings.Join(pl.report, "\n")
	if pl.apparmor || slices.ContainsFunc(pl.securityOpt, func(o string) bool { return strings.HasPrefix(o, "apparmor") }) ||
		!strings.Contains(report, "WARNING: AppArmor is not enabled in this kernel: the profile's file and exec rules") ||
		!strings.Contains(report, "anomalies:    not watched") {
		t.Errorf("host without AppArmor: load %v, report:\n%s", pl.apparmor, report)
	}

	pl, err = makeContainerPlan(p, h, ModeComplain, false)
	if err != nil {
		t.Fatal(err)
	}
	if pl.capDrop != nil {
		t.Errorf("complain mode drops capabilities %v", pl.capDrop)
	}
	docker, err := profiles.DecodeSeccomp([]byte(strings.TrimPrefix(pl.securityOpt[0], "seccomp=")))
	if err != nil {
		t.Fatal(err)
	}
	if docker.DefaultAction != "SCMP_ACT_LOG" || docker.DefaultErrnoRet != nil {
		t.Errorf("complain profile default %s errno %v", docker.DefaultAction, docker.DefaultErrnoRet)
	}
	if got, want := exportBPF(t, docker, false), exportBPF(t, p.Seccomp, true); !bytes.Equal(got, want) {
		t.Errorf("complain profile for docker builds another filter (%d bytes) than local complain mode (%d bytes)", len(got), len(want))
	}
}

// exportBPF compiles p and returns the filter's BPF program.
func exportBPF(t *testing.T, p *profiles.Seccomp, complain bool) []byte {
	t.Helper()
	f, err := profiles.CompileSeccomp(p, profiles.CompileOptions{Complain: complain})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if !complain {
		// Local complain mode also logs calls of unlisted architectures; Docker's runc
		// decides that action itself, so compare the rest.
		if err := f.SetBadArchAction(libseccomp.ActLog); err != nil {
			t.Fatal(err)
		}
	}
	out, err := os.CreateTemp(t.TempDir(), "bpf")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := f.ExportBPF(out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return data
}
