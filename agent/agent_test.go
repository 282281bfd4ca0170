package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/launch"
	"github.com/tailor-sec/tailor/internal/registrytest"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/oci"
	"github.com/tailor-sec/tailor/profiles"
)

func TestMain(m *testing.M) {
	launch.Main()
	dockertest.Main(m)
}

// Two learned behaviours: bundle "a" chowns and never makes a directory, bundle "b"
// makes one and never chowns.
const (
	scriptA = `echo hi > /tmp/f && cat /tmp/f && chown 65534 /tmp/f && sleep 0.01`
	scriptB = `echo hi > /tmp/f && cat /tmp/f && mkdir /tmp/d && sleep 0.01`
)

// lines collects the agent's JSON lines and wakes waiters on each.
type lines struct {
	mu      sync.Mutex
	all     []map[string]any
	partial []byte
	changed chan struct{}
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := strings.IndexByte(string(l.partial), '\n')
		if i < 0 {
			break
		}
		var m map[string]any
		if err := json.Unmarshal(l.partial[:i], &m); err != nil {
			m = map[string]any{"unparsed": string(l.partial[:i])}
		}
		l.all = append(l.all, m)
		l.partial = l.partial[i+1:]
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// waitFor returns the first line pred accepts, waiting for new lines up to timeout.
func (l *lines) waitFor(t *testing.T, timeout time.Duration, what string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, m := range l.all {
			if pred(m) {
				l.mu.Unlock()
				return m
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no line for %s in %v; lines:\n%s", what, timeout, l.dump())
		}
	}
}

func (l *lines) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, m := range l.all {
		js, _ := json.Marshal(m)
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String()
}

func (l *lines) matching(pred func(map[string]any) bool) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.all {
		if pred(m) {
			out = append(out, m)
		}
	}
	return out
}

func newContainer(t *testing.T, env *dockertest.Env, img, name, script string, labels map[string]string, hc *container.HostConfig) string {
	t.Helper()
	if hc == nil {
		hc = &container.HostConfig{}
	}
	hc.NetworkMode = "none"
	all := dockertest.Labels()
	for k, v := range labels {
		all[k] = v
	}
	c, err := env.Client.ContainerCreate(context.Background(),
		&container.Config{Image: img, Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{script}, Labels: all},
		hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	})
	return c.ID
}

// learnBundle learns script in a busybox container through the real tracer and
// writes its bundle.
func learnBundle(t *testing.T, env *dockertest.Env, img, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	newContainer(t, env, img, "agent-learn-"+name, script, nil, nil)
	rec := filepath.Join(dir, "rec.json")
	if _, err := learn.Container(context.Background(), "agent-learn-"+name, learn.Options{Output: rec}, learn.ContainerOptions{CopyLabels: dockertest.Labels()}); err != nil {
		t.Fatal(err)
	}
	r, err := profiles.LoadRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Name: "tailor-agent-" + name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := generate.Write(filepath.Join(dir, "bundle"), b, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "bundle")
}

// runUnder starts a container running script under bundle's seccomp.json, kept
// alive by a long sleep.
func runUnder(t *testing.T, env *dockertest.Env, img, name, bundle, script string, labels map[string]string) string {
	t.Helper()
	sc, err := os.ReadFile(filepath.Join(bundle, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	id := newContainer(t, env, img, name, script+` && exec sleep 600`, labels,
		&container.HostConfig{SecurityOpt: []string{"seccomp=" + string(sc)}})
	if err := env.Client.ContainerStart(context.Background(), id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return id
}

func dockerExec(t *testing.T, env *dockertest.Env, name string, argv ...string) {
	t.Helper()
	// The commands are refused by the container's profile: their failure is expected.
	out, err := exec.Command("docker", append([]string{"-H", env.Host, "exec", name}, argv...)...).CombinedOutput()
	t.Logf("docker exec %s %v: %v %s", name, argv, err, out)
}

func syscallAnomaly(name, syscall string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		d, _ := m["detail"].(string)
		return m["event"] == "anomaly" && m["kind"] == "syscall" && m["containerName"] == name && strings.Contains(d, syscall)
	}
}

// TestAgentWatchesContainersWithTheirBundles: the agent watches two running
// containers with different bundles at once and attributes each anomaly to its
// container, image and bundle; a container started later is picked up from Docker's
// start event within a second; metrics are scraped on 127.0.0.1.
func TestAgentWatchesContainersWithTheirBundles(t *testing.T) {
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	bundleA := learnBundle(t, env, img, "a", scriptA)
	bundleB := learnBundle(t, env, img, "b", scriptB)
	run := dockertest.Labels()[dockertest.TestLabel]

	idA := runUnder(t, env, img, "agent-a", bundleA, scriptA, map[string]string{"tailor.bundle": "a"})
	// b carries the labels the kubelet puts on a pod's containers.
	idB := runUnder(t, env, img, "agent-b", bundleB, scriptB, map[string]string{"tailor.bundle": "b",
		"io.kubernetes.pod.name": "shop-0", "io.kubernetes.pod.namespace": "shop"})

	// The image rule's bundle comes from a registry on 127.0.0.1, pulled and
	// verified at start.
	reg := registrytest.Start(t)
	ociRef := reg.Host + "/tailor/agent-a:v1"
	if _, err := oci.Push(context.Background(), bundleA, ociRef, "", oci.Options{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}

	cfg, err := ParseConfig([]byte(fmt.Sprintf(`
rules:
- labels: {tailor.bundle: a}
  bundle: %s
  name: rule-a
- labels: {tailor.bundle: b}
  bundle: %s
  name: rule-b
- image: %s
  labels: {%s: %q}
  oci: %s
  name: rule-image
metrics: 127.0.0.1:0
plainHTTP: true
`, bundleA, bundleB, img, dockertest.TestLabel, run, ociRef)))
	if err != nil {
		t.Fatal(err)
	}
	out := newLines()
	log := &syncWriter{w: &strings.Builder{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Config: cfg, Out: out, Log: log}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()

	started := out.waitFor(t, 60*time.Second, "agent-started", func(m map[string]any) bool { return m["event"] == "agent-started" })
	out.waitFor(t, time.Second, "the OCI bundle loaded", func(m map[string]any) bool {
		d, _ := m["digest"].(string)
		return m["event"] == "bundle-loaded" && m["bundle"] == "rule-image" && m["source"] == ociRef && strings.HasPrefix(d, "sha256:")
	})
	for _, w := range []struct{ name, id, bundle string }{{"agent-a", idA, "rule-a"}, {"agent-b", idB, "rule-b"}} {
		out.waitFor(t, time.Second, "watching "+w.name, func(m map[string]any) bool {
			return m["event"] == "watching" && m["containerName"] == w.name && m["container"] == w.id[:12] && m["bundle"] == w.bundle && m["image"] == img
		})
	}

	// mkdir is outside a's profile, inside b's; chown the other way round.
	dockerExec(t, env, "agent-b", "mkdir", "/tmp/y")
	dockerExec(t, env, "agent-a", "mkdir", "/tmp/x")
	dockerExec(t, env, "agent-b", "chown", "1", "/tmp/f")
	a := out.waitFor(t, 5*time.Second, "mkdir in agent-a", syscallAnomaly("agent-a", "mkdir"))
	b := out.waitFor(t, 5*time.Second, "chown in agent-b", syscallAnomaly("agent-b", "chown"))
	if a["bundle"] != "rule-a" || a["container"] != idA[:12] || a["image"] != img || a["pod"] != nil ||
		b["bundle"] != "rule-b" || b["container"] != idB[:12] || b["pod"] != "shop-0" || b["namespace"] != "shop" {
		t.Errorf("misattributed: %v / %v", a, b)
	}
	if got := out.matching(syscallAnomaly("agent-b", "mkdir")); len(got) > 0 {
		t.Errorf("mkdir reported in agent-b, whose bundle allows it: %v", got)
	}
	if got := out.matching(syscallAnomaly("agent-a", "chown")); len(got) > 0 {
		t.Errorf("chown reported in agent-a, whose bundle allows it: %v", got)
	}

	// A container started now is picked up from its start event.
	idC := runUnder(t, env, img, "agent-c", bundleA, scriptA, nil)
	began := time.Now()
	c := out.waitFor(t, time.Second, "watching agent-c within a second of its start", func(m map[string]any) bool {
		return m["event"] == "watching" && m["containerName"] == "agent-c" && m["bundle"] == "rule-image"
	})
	t.Logf("agent-c watched %v after ContainerStart returned (%vms after the start event)", time.Since(began), c["sinceStartMs"])
	dockerExec(t, env, "agent-c", "mkdir", "/tmp/z")
	out.waitFor(t, 5*time.Second, "mkdir in agent-c", func(m map[string]any) bool {
		return syscallAnomaly("agent-c", "mkdir")(m) && m["bundle"] == "rule-image" && m["container"] == idC[:12]
	})

	// Metrics, scraped as Prometheus would.
	addr, _ := started["metrics"].(string)
	metrics := scrape(t, addr)
	for _, want := range []string{
		"tailor_agent_containers_watched 3",
		`tailor_agent_anomalies_reported_total{bundle="rule-a"}`,
		`tailor_agent_anomalies_reported_total{bundle="rule-b"}`,
		`tailor_agent_anomalies_reported_total{bundle="rule-image"}`,
		`tailor_anomalies_total{kind="syscall"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, metrics)
		}
	}

	// A stop is followed from the die event.
	timeout := 0
	if err := env.Client.ContainerStop(context.Background(), idC, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, 5*time.Second, "agent-c stopped", func(m map[string]any) bool {
		return m["event"] == "stopped" && m["containerName"] == "agent-c"
	})
	if m := scrape(t, addr); !strings.Contains(m, "tailor_agent_containers_watched 2") {
		t.Errorf("after a stop:\n%s", m)
	}
	t.Logf("agent log:\n%s", log.String())
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("metrics address %q", addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// syncWriter serialises writes from the agent's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*strings.Builder).String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestAgentReusesSlotsOfStoppedContainers: more containers start and stop than the
// tracer has slots, each watched while it runs (a stop frees its slot: the watcher
// writes the container's summary and releases it), and the last one, on a slot
// reused several times, still has its anomalies attributed to it alone. A container
// that found every slot in use is watched when a stop frees one. The tracer is given
// few slots, so that the churn past them stays short; the agent's code is the same
// with all of them.
func TestAgentReusesSlotsOfStoppedContainers(t *testing.T) {
	const slots, containers = 3, 10
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	bundle := learnBundle(t, env, img, "churn", scriptA)
	cfg, err := ParseConfig([]byte(fmt.Sprintf("rules:\n- labels: {tailor.bundle: churn}\n  bundle: %s\n  name: rule-churn\n", bundle)))
	if err != nil {
		t.Fatal(err)
	}
	out := newLines()
	log := &syncWriter{w: &strings.Builder{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Config: cfg, Out: out, Log: log, targets: slots}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	out.waitFor(t, 60*time.Second, "agent-started", func(m map[string]any) bool { return m["event"] == "agent-started" })

	labels := map[string]string{"tailor.bundle": "churn"}
	began := time.Now()
	// One more container than slots runs at once before the churn: it is not
	// watched, which is what the limit means.
	var running []string
	for i := 0; i <= slots; i++ {
		name := fmt.Sprintf("agent-full-%d", i)
		runUnder(t, env, img, name, bundle, "true", labels)
		running = append(running, name)
		event := "watching"
		if i == slots {
			event = "not-watched"
		}
		out.waitFor(t, 5*time.Second, event+" "+name, func(m map[string]any) bool {
			return m["event"] == event && m["containerName"] == name
		})
	}
	// The one that found every slot in use waits, and is watched as soon as a stop
	// frees a slot.
	if got := out.matching(func(m map[string]any) bool {
		return m["event"] == "not-watched" && m["containerName"] == running[slots]
	}); len(got) != 1 || got[0]["waiting"] != true {
		t.Errorf("the container past the slots: %v, want one not-watched line saying it waits", got)
	}
	if err := env.Client.ContainerRemove(context.Background(), running[0], container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, 5*time.Second, "watching "+running[slots]+" after waiting", func(m map[string]any) bool {
		return m["event"] == "watching" && m["containerName"] == running[slots] && m["afterWaiting"] == true
	})
	dockerExec(t, env, running[slots], "mkdir", "/tmp/w")
	out.waitFor(t, 5*time.Second, "mkdir in "+running[slots], syscallAnomaly(running[slots], "mkdir"))
	for _, name := range running[1:] {
		if err := env.Client.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < containers; i++ {
		name := fmt.Sprintf("agent-churn-%d", i)
		id := runUnder(t, env, img, name, bundle, "true", labels)
		out.waitFor(t, 5*time.Second, "watching "+name, func(m map[string]any) bool {
			return m["event"] == "watching" && m["containerName"] == name && m["container"] == id[:12]
		})
		if err := env.Client.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, 5*time.Second, "stopped "+name, func(m map[string]any) bool {
			return m["event"] == "stopped" && m["containerName"] == name
		})
	}
	idLast := runUnder(t, env, img, "agent-churn-last", bundle, "true", labels)
	out.waitFor(t, 5*time.Second, "watching agent-churn-last", func(m map[string]any) bool {
		return m["event"] == "watching" && m["containerName"] == "agent-churn-last"
	})
	dockerExec(t, env, "agent-churn-last", "mkdir", "/tmp/x")
	a := out.waitFor(t, 5*time.Second, "mkdir in agent-churn-last", syscallAnomaly("agent-churn-last", "mkdir"))
	if a["container"] != idLast[:12] || a["bundle"] != "rule-churn" || a["image"] != img {
		t.Errorf("misattributed: %v", a)
	}
	if err := env.Client.ContainerRemove(context.Background(), idLast, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, 5*time.Second, "stopped agent-churn-last", func(m map[string]any) bool {
		return m["event"] == "stopped" && m["containerName"] == "agent-churn-last"
	})
	t.Logf("%d containers started, watched and stopped on %d slots in %v", slots+1+containers+1, slots, time.Since(began))

	// Every watched container has its summary, attributed, before its stopped line;
	// the mkdir is the last one's alone.
	summaries := map[string]map[string]any{}
	for _, m := range out.matching(func(m map[string]any) bool { return m["event"] == "summary" }) {
		name, _ := m["containerName"].(string)
		summaries[name] = m
	}
	for i := 0; i < containers; i++ {
		name := fmt.Sprintf("agent-churn-%d", i)
		if s := summaries[name]; s == nil || s["kind"] != "summary" || s["bundle"] != "rule-churn" || s["lost"] != float64(0) {
			t.Errorf("summary of %s: %v", name, s)
		}
	}
	if s := summaries["agent-churn-last"]; s == nil || s["anomalies"].(float64) < 1 || s["container"] != idLast[:12] {
		t.Errorf("summary of agent-churn-last: %v", s)
	}
	if got := out.matching(func(m map[string]any) bool {
		d, _ := m["detail"].(string)
		return m["event"] == "anomaly" && m["containerName"] != "agent-churn-last" && m["containerName"] != running[slots] && strings.Contains(d, "mkdir")
	}); len(got) > 0 {
		t.Errorf("the last container's mkdir attributed elsewhere: %v", got)
	}
	if got := out.matching(func(m map[string]any) bool {
		if m["event"] == "not-watched" {
			return m["containerName"] != fmt.Sprintf("agent-full-%d", slots)
		}
		return m["error"] != nil
	}); len(got) > 0 {
		t.Errorf("unexpected not-watched or errors: %v", got)
	}
}
