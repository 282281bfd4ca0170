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

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/learn/docker"
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
