// Package agent is tailor's node agent: it watches every container on the node
// whose image or labels a rule maps to a bundle, with one tracer, follows container
// starts and stops through Docker's events API, writes JSON lines (anomalies
// attributed to their container, image and bundle; the agent's own events) for the
// cluster's log pipeline, and serves Prometheus metrics. Containers are never
// changed: the profiles are enforced by the runtime (the Security Profiles Operator,
// the pod's securityContext), the agent reports what goes beyond them.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailor-sec/tailor/enforce"
	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/oci"
)

// Options configure one Run.
type Options struct {
	Config *Config
	// Cache is where OCI bundles are pulled to ("" means a new directory under
	// os.TempDir); each start pulls and verifies them again.
	Cache string
	// Out receives the JSON lines; nil means os.Stdout.
	Out io.Writer
	// Log receives notes for a human; nil means os.Stderr.
	Log io.Writer
	// Host describes this machine; nil means enforce.ProbeHost.
	Host *enforce.Host
	// targets is how many containers the tracer follows at once (watch.Options.Targets,
	// 0: as many as it has); tests take fewer to go past the limit quickly.
	targets int
}

// rule is a configured rule with its loaded bundle.
type rule struct {
	Rule
	name   string
	policy *enforce.Policy
}

// info is what an anomaly line is attributed with.
type info struct {
	name, image, bundle string
	// pod and namespace are the Kubernetes pod's, from the labels the kubelet puts
	// on the containers it runs through Docker (cri-dockerd); "" elsewhere.
	pod, namespace string
}

// The labels the kubelet sets on a pod's containers.
const (
	podLabel       = "io.kubernetes.pod.name"
	namespaceLabel = "io.kubernetes.pod.namespace"
)

// fields adds the attribution to a JSON line.
func (i *info) fields(m map[string]any) {
	m["containerName"], m["image"], m["bundle"] = i.name, i.image, i.bundle
	if i.pod != "" {
		m["pod"], m["namespace"] = i.pod, i.namespace
	}
}

// agent is one running agent.
type agent struct {
	o     Options
	rules []rule
	w     *watch.Watcher
	out   *lineWriter
	dc    *client.Client
	// ownCache is the directory OCI bundles were pulled to when the agent made it.
	ownCache string

	mu      sync.Mutex
	watched map[string]bool // full container IDs being watched
	// waiting are running containers a rule maps to a bundle that found every tracer
	// slot in use, oldest first: the next stop that frees a slot watches the first.
	waiting []string
	ctx     context.Context
	known   map[string]*info // 12-character IDs, kept a while after a stop

	containers prometheus.Gauge
	byBundle   *prometheus.CounterVec
}

// Run starts the agent and runs it until ctx ends or Docker's event stream fails.
func Run(ctx context.Context, o Options) error {
	if o.Config == nil {
		return fmt.Errorf("%w: no agent config", fail.ErrBadInput)
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	wc, err := metricsWebConfig(o.Config)
	if err != nil {
		return err
	}
	if o.Host == nil {
		h, err := enforce.ProbeHost()
		if err != nil {
			return err
		}
		o.Host = &h
	}
	a := &agent{o: o, watched: map[string]bool{}, known: map[string]*info{},
		containers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tailor_agent_containers_watched", Help: "Containers the agent watches now."}),
		byBundle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tailor_agent_anomalies_reported_total",
			Help: "Distinct anomalies reported (first report of each, per container), by bundle rule."}, []string{"bundle"}),
	}
	a.out = &lineWriter{out: o.Out, attribute: a.attribute}
	err = a.loadRules(ctx)
	if a.ownCache != "" {
		// The bundles are loaded in memory: a cache the agent made itself goes.
		defer os.RemoveAll(a.ownCache)
	}
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(o.Log, nil))
	a.w = watch.New(watch.Options{JSON: a.out, Logger: log, Targets: o.targets})
	if err := a.w.Open(); err != nil {
		return err
	}
	defer func() {
		n, err := a.w.Stop()
		if err != nil {
			log.Warn("stopping the anomaly watcher", "error", err)
		}
		a.event(map[string]any{"event": "agent-stopped", "anomalies": n})
	}()

	metricsAddr, metricsURL := "", ""
	if o.Config.Metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(watch.StatsCollector(a.w), a.containers, a.byBundle)
		srv, err := watch.ServeMetrics(o.Config.Metrics, wc, reg, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		metricsAddr, metricsURL = srv.Addr().String(), srv.URL()
	}

	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("%w: docker client: %v", fail.ErrDocker, err)
	}
	defer dc.Close()
	if _, err := dc.Ping(ctx); err != nil {
		return fmt.Errorf("%w: docker daemon at %s: %v", fail.ErrDocker, dc.DaemonHost(), err)
	}
	a.dc = dc
	a.ctx = ctx

	// Subscribe before listing, and from a second before: a container that starts
	// in between is in the stream (the daemon replays from Since), and one already
	// watched is skipped.
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	msgs, errs := dc.Events(evctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionDestroy)),
	)})
	running, err := dc.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return fmt.Errorf("%w: listing containers: %v", fail.ErrDocker, err)
	}
	for _, c := range running {
		a.consider(ctx, c.ID, time.Time{}, false)
	}
	a.event(map[string]any{"event": "agent-started", "rules": len(a.rules), "metrics": metricsAddr})
	fmt.Fprintf(o.Log, "tailor: agent: %d rules, %d containers watched, metrics %s; following Docker's events\n", len(a.rules), a.count(), orNone(metricsURL))

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: docker event stream: %v", fail.ErrDocker, err)
		case m := <-msgs:
			switch m.Action {
			case events.ActionStart:
				a.consider(ctx, m.Actor.ID, time.Unix(0, m.TimeNano), false)
			case events.ActionDie, events.ActionDestroy:
				// die comes first; destroy covers a die the stream did not carry.
				a.stopped(m.Actor.ID, m.Actor.Attributes["exitCode"])
			}
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// loadRules loads every rule's bundle, pulling and verifying OCI ones: a bundle that
// does not load stops the agent at start rather than leaving containers unwatched.
func (a *agent) loadRules(ctx context.Context) error {
	cache := a.o.Cache
	for i, r := range a.o.Config.Rules {
		dir, source, digest := r.Bundle, r.Bundle, ""
		if r.OCI != "" {
			if cache == "" {
				c, err := os.MkdirTemp("", "tailor-agent-*")
				if err != nil {
					return err
				}
				cache, a.ownCache = c, c
			}
			dir = filepath.Join(cache, fmt.Sprintf("rule-%d", i+1))
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			p, err := oci.Pull(ctx, r.OCI, dir, oci.Options{PlainHTTP: a.o.Config.PlainHTTP})
			if err != nil {
				return fmt.Errorf("rule %d: %w", i+1, err)
			}
			source, digest = r.OCI, p.Digest
		}
		policy, err := enforce.Load(dir, *a.o.Host)
		if err != nil {
			return fmt.Errorf("rule %d: %w", i+1, err)
		}
		name := r.Name
		if name == "" {
			name = policy.Bundle.Name
		}
		a.rules = append(a.rules, rule{Rule: r, name: name, policy: policy})
		ev := map[string]any{"event": "bundle-loaded", "bundle": name, "source": source}
		if digest != "" {
			ev["digest"] = digest
		}
		a.event(ev)
	}
	return nil
}

// consider watches the container id if a rule maps it to a bundle. A container that
// cannot be watched is reported and left alone: the agent goes on with the others; one
// that found every tracer slot in use waits for a stop to free one (afterWaiting: this
// is that retry).
func (a *agent) consider(ctx context.Context, id string, started time.Time, afterWaiting bool) {
	a.mu.Lock()
	already := a.watched[id]
	a.mu.Unlock()
	if already {
		return
	}
	c, err := a.dc.ContainerInspect(ctx, id)
	if err != nil || c.State == nil || !c.State.Running || c.Config == nil {
		return // gone already: its die event follows
	}
	var r *rule
	for i := range a.rules {
		if a.rules[i].matches(c.Config.Image, c.Config.Labels) {
			r = &a.rules[i]
			break
		}
	}
	if r == nil {
		return
	}
	inf := &info{name: trimSlash(c.Name), image: c.Config.Image, bundle: r.name,
		pod: c.Config.Labels[podLabel], namespace: c.Config.Labels[namespaceLabel]}
	ev := map[string]any{"container": id[:12]}
	inf.fields(ev)
	// Known before the watch starts, so the first anomaly line is attributed.
	a.mu.Lock()
	a.known[id[:12]] = inf
	a.mu.Unlock()
	if err := a.w.Watch(ctx, enforce.WatchTarget{ContainerID: id, Running: true}, r.policy); err != nil {
		a.mu.Lock()
		delete(a.known, id[:12])
		a.mu.Unlock()
		ev["event"], ev["error"] = "not-watched", err.Error()
		if errors.Is(err, watch.ErrNoSlot) {
			// Watched from when a slot frees: what it does until then is not.
			ev["waiting"] = true
			a.mu.Lock()
			if !slices.Contains(a.waiting, id) {
				a.waiting = append(a.waiting, id)
			}
			a.mu.Unlock()
		}
		a.event(ev)
		return
	}
	a.mu.Lock()
	a.waiting = slices.DeleteFunc(a.waiting, func(w string) bool { return w == id })
	a.mu.Unlock()
	if afterWaiting {
		ev["afterWaiting"] = true // not watched from its start: its first moments are not seen
	}
	a.mu.Lock()
	a.watched[id] = true
	a.mu.Unlock()
	a.containers.Inc()
	ev["event"] = "watching"
	if !started.IsZero() {
		ev["sinceStartMs"] = float64(time.Since(started).Microseconds()) / 1000
	}
	a.event(ev)
}

// stopped ends a container's watch: the watcher writes its last counts and its
// summary record (attributed like its anomalies), then frees its tracer slot for the
// next container, and the container's attribution goes.
func (a *agent) stopped(id, exitCode string) {
	a.mu.Lock()
	a.waiting = slices.DeleteFunc(a.waiting, func(w string) bool { return w == id })
	if !a.watched[id] {
		a.mu.Unlock()
		return
	}
	delete(a.watched, id)
	inf := a.known[id[:12]]
	a.mu.Unlock()
	err := a.w.Unwatch(enforce.WatchTarget{ContainerID: id})
	a.mu.Lock()
	delete(a.known, id[:12])
	a.mu.Unlock()
	a.containers.Dec()
	ev := map[string]any{"event": "stopped", "container": id[:12], "exitCode": exitCode}
	if exitCode == "" {
		delete(ev, "exitCode") // a destroy without its die
	}
	if err != nil {
		ev["error"] = err.Error()
	}
	inf.fields(ev)
	a.event(ev)
	a.resumeWaiting()
}

// resumeWaiting watches the containers that found every slot in use, oldest first,
// as far as the freed slots go; one that stopped meanwhile is dropped.
func (a *agent) resumeWaiting() {
	for {
		a.mu.Lock()
		if len(a.waiting) == 0 || a.ctx == nil {
			a.mu.Unlock()
			return
		}
		id := a.waiting[0]
		a.waiting = a.waiting[1:]
		a.mu.Unlock()
		a.consider(a.ctx, id, time.Time{}, true)
		a.mu.Lock()
		full := slices.Contains(a.waiting, id) // put back: no slot after all
		a.mu.Unlock()
		if full {
			return
		}
	}
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.watched)
}

// attribute adds the container's name, image and bundle to one of the watcher's
// lines, and counts first reports by bundle.
func (a *agent) attribute(line map[string]any) {
	id, _ := line["container"].(string)
	a.mu.Lock()
	inf := a.known[id]
	a.mu.Unlock()
	if _, ok := line["event"]; !ok {
		line["event"] = "anomaly"
		if line["kind"] == "summary" {
			line["event"] = "summary"
		}
	}
	if inf == nil {
		return
	}
	inf.fields(line)
	if repeat, _ := line["repeat"].(bool); !repeat && line["detail"] != nil {
		a.byBundle.WithLabelValues(inf.bundle).Inc()
	}
}

// event writes one of the agent's own lines.
func (a *agent) event(ev map[string]any) {
	ev["time"] = time.Now()
	a.out.writeObject(ev)
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// lineWriter receives the watcher's JSON lines, attributes each and writes it to
// out; the agent's own lines go through writeObject. One lock keeps lines whole.
type lineWriter struct {
	mu        sync.Mutex
	out       io.Writer
	buf       []byte
	attribute func(map[string]any)
	err       error
}

// Write implements io.Writer for the watcher.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := l.buf[:i]
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			l.put(append(line, '\n')) // not JSON: passed on as it came
		} else {
			l.attribute(m)
			l.putObject(m)
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), l.err
}

func (l *lineWriter) writeObject(m map[string]any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putObject(m)
}

func (l *lineWriter) putObject(m map[string]any) {
	b, err := json.Marshal(m)
	if err != nil {
		l.err = errors.Join(l.err, err)
		return
	}
	l.put(append(b, '\n'))
}

func (l *lineWriter) put(b []byte) {
	if _, err := l.out.Write(b); err != nil && l.err == nil {
		l.err = fmt.Errorf("writing the agent's lines: %w", err)
	}
}
