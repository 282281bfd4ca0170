package watch

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/internal/clitest"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

// fakeWatcher stands in for the tracer: it records the target it is given, says
// when it was started, and reports fixed stats and anomalies.
type fakeWatcher struct {
	anomalies int
	stats     enforce.WatchStats
	target    enforce.WatchTarget
	watching  chan struct{}
	stopped   bool
}

func newFakeWatcher(anomalies int) *fakeWatcher {
	return &fakeWatcher{anomalies: anomalies, watching: make(chan struct{}),
		stats: enforce.WatchStats{Anomalies: map[string]uint64{"syscall": 3, "exec": 1}, Lost: 2, Targets: 1}}
}

// Watch is called once, before close(watching): the test reads target after that.
func (w *fakeWatcher) Watch(_ context.Context, t enforce.WatchTarget, _ *enforce.Policy) error {
	w.target = t
	close(w.watching)
	return nil
}

func (w *fakeWatcher) Stats() enforce.WatchStats { return w.stats }

// Stop runs before Attach returns: the test reads stopped after that.
func (w *fakeWatcher) Stop() (int, error) {
	w.stopped = true
	return w.anomalies, nil
}

// goldenBundle is a bundle generate wrote (the caps golden files): Attach only
// loads it, so any valid bundle without @{cwd} rules does.
const goldenBundle = "../../testdata/golden/caps"

// dockerEnv gives a test root, the daemon and the busybox image.
func dockerEnv(t *testing.T) (*dockertest.Env, string) {
	t.Helper()
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	return env, env.Busybox(t)
}

// startWatch runs Attach in the background.
func startWatch(ctx context.Context, t *testing.T, o AttachOptions) (*lockedBuffer, <-chan error) {
	t.Helper()
	log := &lockedBuffer{}
	o.Log = log
	done := make(chan error, 1)
	go func() { done <- Attach(ctx, o) }()
	return log, done
}

// TestWatchRunningContainer: the watcher gets the running container's full ID with
// Running set; the metrics endpoint, scraped over 127.0.0.1, shows the watcher's
// stats; the watch ends when the container's init exits, and the watcher is stopped.
func TestWatchRunningContainer(t *testing.T) {
	env, img := dockerEnv(t)
	ctx := context.Background()
	name := newContainer(t, env, img, strings.ToLower(t.Name()), `exec sleep 600`, nil)
	if err := env.Client.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := env.Client.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	w := newFakeWatcher(0)
	log, done := startWatch(ctx, t, AttachOptions{Profile: goldenBundle, Container: name, Watcher: w, Metrics: "127.0.0.1:0"})
	select {
	case err := <-done:
		t.Fatalf("watch ended before the watcher was started: %v\n%s", err, log)
	case <-w.watching:
	}
	if w.target != (enforce.WatchTarget{ContainerID: info.ID, Running: true}) {
		t.Errorf("watch target %+v, want the full ID %s with Running", w.target, info.ID)
	}
	m := regexp.MustCompile(`metrics: (http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no metrics address in the report:\n%s", log)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`tailor_anomalies_total{kind="exec"} 1`, `tailor_anomalies_total{kind="syscall"} 3`,
		"# TYPE tailor_anomalies_total counter", "tailor_events_lost_total 2",
		"# TYPE tailor_targets_watched gauge", "tailor_targets_watched 1",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if err := env.Client.ContainerKill(ctx, name, "KILL"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("watch of a container that exited: %v", err)
	}
	if !w.stopped || !strings.Contains(log.String(), "the container's init exited") {
		t.Errorf("watcher stopped %v, log:\n%s", w.stopped, log)
	}
}

// TestWatchEnds: Ctrl-C ends a watch, and anomalies then fail it with
// --fail-on-anomaly (exit 7); the container keeps running.
func TestWatchEnds(t *testing.T) {
	env, img := dockerEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := newContainer(t, env, img, strings.ToLower(t.Name()), `exec sleep 600`, nil)
	if err := env.Client.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	w := newFakeWatcher(4)
	log, done := startWatch(ctx, t, AttachOptions{Profile: goldenBundle, Container: name, Watcher: w, FailOnAnomaly: true})
	select {
	case err := <-done:
		t.Fatalf("watch ended before the watcher was started: %v\n%s", err, log)
	case <-w.watching:
	}
	cancel()
	if err := <-done; fail.Code(err) != 7 {
		t.Errorf("interrupted watch with 4 anomalies: %v (exit %d), want 7", err, fail.Code(err))
	}
	info, err := env.Client.ContainerInspect(context.Background(), name)
	if err != nil || !info.State.Running {
		t.Errorf("the watched container must still run: %v", err)
	}
}

// TestWatchNotRunning: a container that is not running is a Docker error (exit 6),
// and the watcher is never started.
func TestWatchNotRunning(t *testing.T) {
	env, img := dockerEnv(t)
	name := newContainer(t, env, img, strings.ToLower(t.Name()), `exec sleep 600`, nil)
	w := newFakeWatcher(0)
	err := Attach(context.Background(), AttachOptions{Profile: goldenBundle, Container: name, Watcher: w, Log: io.Discard})
	if fail.Code(err) != 6 || !strings.Contains(err.Error(), "is not running (state created)") {
		t.Errorf("created container: %v (exit %d), want exit 6 saying it is not running", err, fail.Code(err))
	}
	if w.target != (enforce.WatchTarget{}) {
		t.Errorf("watcher started on a container that is not running: %+v", w.target)
	}
}

// TestWatchCommandWithoutTracer: with no watcher factory tailor watch refuses in one
// line, before reading the profile or asking Docker.
func TestWatchCommandWithoutTracer(t *testing.T) {
	_, stderr, code := clitest.Run(t, []*cli.Command{Command(nil)}, "watch", "--profile", "/nonexistent", "--container", "web")
	if code != 9 || !strings.Contains(stderr, "needs the tracer") || strings.Contains(stderr, "\n") {
		t.Errorf("watch without a tracer: %q (exit %d), want one refusal line (9)", stderr, code)
	}
}
