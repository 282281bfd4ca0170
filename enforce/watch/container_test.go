package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/profiles"
)

func TestMain(m *testing.M) {
	launch.Main()
	dockertest.Main(m)
}

// The learned script chowns as root (CAP_CHOWN); the others add what the profile
// lacks.
const (
	learnedScript = `echo hi > /tmp/f && cat /tmp/f && chown 65534 /tmp/f && sleep 0.01`
	mkdirScript   = `echo hi > /tmp/f && cat /tmp/f && chown 65534 /tmp/f && mkdir /tmp/d; echo done`
)

// lockedBuffer collects JSON lines written by the watcher's goroutine, and says when
// it was written to.
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed and replaced at each write
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written != nil {
		close(l.written)
		l.written = nil
	}
	return l.b.Write(p)
}

// waitFor returns the first anomaly for which match is true, waiting for the writes
// of the watcher until timeout; nil if none came.
func (l *lockedBuffer) waitFor(t *testing.T, timeout time.Duration, match func(Anomaly) bool) *Anomaly {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if l.written == nil {
			l.written = make(chan struct{})
		}
		written := l.written
		l.mu.Unlock()
		for _, a := range l.anomalies(t) {
			if match(a) {
				return &a
			}
		}
		select {
		case <-written:
		case <-deadline:
			return nil
		}
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) anomalies(t *testing.T) []Anomaly {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Anomaly
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var a Anomaly
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if a.Kind != "summary" {
			out = append(out, a)
		}
	}
	return out
}

func newContainer(t *testing.T, env *dockertest.Env, img, name, script string, hc *container.HostConfig) string {
	t.Helper()
	if hc == nil {
		hc = &container.HostConfig{}
	}
	hc.NetworkMode = "none"
	c, err := env.Client.ContainerCreate(context.Background(),
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}, Labels: dockertest.Labels()},
		hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	})
	return name
}

// learnBusybox learns the busybox container through the real tracer and writes its
// bundle.
func learnBusybox(t *testing.T, env *dockertest.Env, img string) (string, *profiles.Bundle) {
	t.Helper()
	dir := t.TempDir()
	name := newContainer(t, env, img, "watch-learned", learnedScript, nil)
	rec := filepath.Join(dir, "rec.json")
	if _, err := learn.Container(context.Background(), name, learn.Options{Output: rec}, learn.ContainerOptions{CopyLabels: dockertest.Labels()}); err != nil {
		t.Fatal(err)
	}
	r, err := profiles.LoadRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capabilities: %+v", r.Capabilities)
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Name: "tailor-watch-ctr"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generate.Write(filepath.Join(dir, "bundle"), b, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "bundle"), &b.Manifest
}

func TestContainerLoopWithWatcher(t *testing.T) {
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	prof, manifest := learnBusybox(t, env, img)
	// The runtime's own capability checks (setuid, capset... before the entrypoint)
	// are not the container's needs: only the script's chown is.
	if !slices.Equal(manifest.Capabilities, []string{"CAP_CHOWN"}) {
		t.Errorf("capabilities %v, want only CAP_CHOWN", manifest.Capabilities)
	}

	run := func(name, mode string) (int, []Anomaly, string) {
		t.Helper()
		var js lockedBuffer
		var out bytes.Buffer
		w := New(Options{JSON: &js})
		status, err := enforce.RunContainer(context.Background(), enforce.ContainerOptions{
			Profile: prof, Mode: mode, Container: name, Watcher: w, Stdout: &out, Stderr: &out,
			Log: &out, CopyLabels: dockertest.Labels(), StopTimeout: time.Second})
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out.String())
		}
		return status, js.anomalies(t), out.String()
	}
	learned := newContainer(t, env, img, "watch-replay", learnedScript, nil)
	for i := 0; i < 3; i++ {
		status, an, out := run(learned, enforce.ModeEnforce)
		if status != 0 || len(an) != 0 {
			t.Fatalf("replay %d: status %d, anomalies %+v\n%s", i+1, status, an, out)
		}
	}
	more := newContainer(t, env, img, "watch-mkdir", mkdirScript, nil)
	for _, mode := range []string{enforce.ModeEnforce, enforce.ModeComplain} {
		_, an, out := run(more, mode)
		want := "blocked"
		if mode == enforce.ModeComplain {
			want = "allowed"
		}
		i := slices.IndexFunc(an, func(a Anomaly) bool {
			return a.Kind == "syscall" && strings.HasPrefix(a.Detail, "mkdir") && a.Action == want && len(a.Container) == 12
		})
		if i < 0 {
			t.Errorf("%s: no %s mkdir anomaly: %+v\n%s", mode, want, an, out)
		}
	}
}

// TestWatchRunningContainerReportsDockerExec: tailor watch on a container running
// under the bundle's seccomp.json reports a docker exec'd process's out-of-profile
// calls, marked as docker exec.
func TestWatchRunningContainerReportsDockerExec(t *testing.T) {
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	prof, _ := learnBusybox(t, env, img)
	sc, err := os.ReadFile(filepath.Join(prof, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	// sleep is not in the learned profile's programs, but its syscalls are (nanosleep
	// from the learned sleep 0.01): run the container under the learning script's
	// profile, kept alive by a long sleep.
	name := newContainer(t, env, img, "watch-running", learnedScript+` && exec sleep 600`,
		&container.HostConfig{SecurityOpt: []string{"seccomp=" + string(sc)}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := env.Client.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var js lockedBuffer
	w := New(Options{JSON: &js})
	var log bytes.Buffer
	done := make(chan error, 1)
	watching := make(chan struct{})
	go func() {
		done <- Attach(ctx, AttachOptions{Profile: prof, Container: name, Watcher: notify{w, watching}, Log: &log})
	}()
	select {
	case <-watching:
	case err := <-done:
		t.Fatalf("watch ended: %v\n%s", err, log.String())
	}
	b, err := exec.Command("docker", "-H", env.Host, "exec", name, "mkdir", "/tmp/x").CombinedOutput()
	if err == nil {
		t.Fatalf("mkdir outside the profile succeeded in the container: %s", b)
	}
	found := js.waitFor(t, 2*time.Second, func(a Anomaly) bool {
		return a.Kind == "syscall" && strings.HasPrefix(a.Detail, "mkdir")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v\n%s", err, log.String())
	}
	if found == nil || !found.DockerExec || found.Action != "blocked" {
		t.Fatalf("docker exec mkdir: %+v; all %+v", found, js.anomalies(t))
	}
}

// notify tells the test when the watch has started.
type notify struct {
	*Watcher
	started chan struct{}
}

func (n notify) Watch(ctx context.Context, t enforce.WatchTarget, p *enforce.Policy) error {
	err := n.Watcher.Watch(ctx, t, p)
	close(n.started)
	return err
}
