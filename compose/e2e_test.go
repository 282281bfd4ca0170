package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/docker"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// twoServices is a project of two busybox web servers sharing web's network
// namespace (the test daemon has no bridge): api starts once web's healthcheck
// passes.
const twoServices = `services:
  web:
    image: %[1]s
    network_mode: none
    command: ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 3s
      retries: 30
  api:
    image: %[1]s
    network_mode: "service:web"
    command: ["httpd", "-f", "-p", "127.0.0.1:8081", "-h", "/www"]
    depends_on:
      web:
        condition: service_healthy
`

// workload fetches a page from each service, from the host in web's network
// namespace. docker-compose up -d returns once api started, maybe before its httpd
// listens: curl retries a refused connection (once a second).
const workload = "curl -sf --retry 20 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/ && " +
	"curl -sf --retry 20 --retry-connrefused --retry-delay 1 http://127.0.0.1:8081/"

// lines collects the watcher's JSON lines and says when one arrives.
type lines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	all   []watch.Anomaly
	added chan struct{}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadBytes('\n')
		if err != nil {
			l.buf.Write(line)
			break
		}
		var a watch.Anomaly
		if json.Unmarshal(line, &a) == nil && a.Kind != "summary" {
			l.all = append(l.all, a)
			select {
			case l.added <- struct{}{}:
			default:
			}
		}
	}
	return len(p), nil
}

func (l *lines) snapshot() []watch.Anomaly {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// TestComposeEndToEnd learns a two-service project under one workload, generates
// its bundles and override, checks docker-compose accepts the override, brings the
// project up confined, runs the workload with no anomaly, and has an out-of-profile
// docker exec in api reported with api's name.
func TestComposeEndToEnd(t *testing.T) {
	testpriv.RequireRoot(t)
	if _, err := exec.LookPath(ComposeBinary); err != nil {
		testpriv.Unavailable(t, "docker-compose is not installed (make setup)")
	}
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(twoServices, img)), 0o600); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("tailore2e%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer

	// Learn.
	recs := filepath.Join(dir, "recordings")
	ix, err := Learn(ctx, LearnOptions{Files: []string{file}, ProjectName: project, Workload: workload, Output: recs,
		Labels: dockertest.Labels(), Stdout: &out, Stderr: &out, Progress: &out})
	if err != nil {
		t.Fatalf("learn: %v\n%s", err, out.String())
	}
	if got := []string{ix.Services[0].Name, ix.Services[1].Name}; !slices.Equal(got, []string{"web", "api"}) {
		t.Fatalf("start order %v, want [web api]", got)
	}
	if !slices.Equal(ix.Services[1].DependsOn, []string{"web"}) {
		t.Errorf("api depends on %v, want [web]", ix.Services[1].DependsOn)
	}
	if strings.Count(out.String(), "tailor-test index") != 2 {
		t.Errorf("the workload did not fetch both pages:\n%s", out.String())
	}
	web := loadRec(t, filepath.Join(recs, "web.json"))
	api := loadRec(t, filepath.Join(recs, "api.json"))
	// The healthcheck runs in web only: its wget is web's, never api's.
	if !hasExec(web, "/bin/wget", true) {
		t.Errorf("web's recording lacks the healthcheck's exec of /bin/wget: %+v", web.Execs)
	}
	if hasExec(api, "/bin/wget", false) {
		t.Errorf("api's recording has web's healthcheck: %+v", api.Execs)
	}
	for _, r := range []*profiles.Recording{web, api} {
		if !r.Complete {
			t.Errorf("%s incomplete: %v", r.Target.Container.Name, r.Incomplete)
		}
		if !hasSyscall(r, "accept4") && !hasSyscall(r, "accept") {
			t.Errorf("%s: no accept recorded", r.Target.Container.Name)
		}
		for _, s := range []string{"pivot_root", "mount", "sethostname"} {
			if hasSyscall(r, s) {
				t.Errorf("%s: runc's %s in the recording", r.Target.Container.Name, s)
			}
		}
	}
	// Learning removed its run.
	eng, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	if left, err := eng.containers(ctx, learnRunName(project)); err != nil || len(left) != 0 {
		t.Fatalf("learning run left %v (%v)", left, err)
	}

	// Generate.
	bundlesDir := filepath.Join(dir, "tailor")
	if _, err := Generate(GenerateOptions{Input: recs, Output: bundlesDir, Version: "test", Warn: &out}); err != nil {
		t.Fatalf("generate: %v\n%s", err, out.String())
	}
	cfg := exec.Command(ComposeBinary, "-p", project, "-f", file, "-f", OverrideFile, "config")
	cfg.Dir = bundlesDir
	config, err := cfg.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config refused the override: %v\n%s", err, config)
	}
	if !strings.Contains(string(config), "no-new-privileges:true") || !strings.Contains(string(config), "seccomp:web/seccomp.json") {
		t.Errorf("docker-compose config lacks the override:\n%s", config)
	}

	// Enforce, watched.
	got := &lines{added: make(chan struct{}, 1)}
	w := watch.New(watch.Options{JSON: got})
	ready := make(chan struct{})
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- Enforce(ectx, EnforceOptions{Files: []string{file}, ProjectName: project, Profile: bundlesDir, Watcher: w,
			Down: true, Labels: dockertest.Labels(), Ready: func() { close(ready) }, Stdout: &out, Stderr: &out, Log: &out})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("enforce: %v\n%s", err, out.String())
	}
	running, err := eng.containers(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"web", "api"} {
		if len(running[svc]) != 1 {
			t.Fatalf("service %s: containers %v", svc, running[svc])
		}
		checkConfined(t, env, bundlesDir, running[svc][0].ID, svc)
	}
	// Compose started api after web became healthy: both run now.
	webPid, err := eng.pid(ctx, running["web"][0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var wout bytes.Buffer
	if err := docker.RunWorkloadInNetns(ctx, webPid, workload, &wout, &wout); err != nil {
		t.Fatalf("workload under the profiles: %v\n%s", err, wout.String())
	}
	if strings.Count(wout.String(), "tailor-test index") != 2 {
		t.Errorf("confined workload output: %q", wout.String())
	}

	// Out of profile: mkdir in api, through docker exec.
	inject(t, env, running["api"][0].ID, "mkdir", "/tmp/tailor-injected")
	waitAnomaly(t, got, done, func(a watch.Anomaly) bool { return a.Service == "api" && a.Comm == "mkdir" })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("enforce: %v\n%s", err, out.String())
	}
	// Everything reported is the injected mkdir: the workload and the healthchecks
	// ran without one anomaly.
	for _, a := range got.snapshot() {
		t.Logf("anomaly: %+v", a)
		if a.Service != "api" || a.Comm != "mkdir" {
			t.Errorf("anomaly outside the injected action: %+v", a)
		}
	}
	if left, err := eng.containers(ctx, project); err != nil || len(left) != 0 {
		t.Errorf("enforce --down left %v (%v)", left, err)
	}
}

// inject runs cmd in container id through docker exec (not waiting for it).
func inject(t *testing.T, env *dockertest.Env, id string, cmd ...string) {
	t.Helper()
	ex, err := env.Client.ContainerExecCreate(context.Background(), id, container.ExecOptions{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.ContainerExecStart(context.Background(), ex.ID, container.ExecStartOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitAnomaly waits for a reported anomaly that match accepts, failing after a
// minute or when the watch ends first.
func waitAnomaly(t *testing.T, got *lines, done <-chan error, match func(watch.Anomaly) bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for !slices.ContainsFunc(got.snapshot(), match) {
		select {
		case <-got.added:
		case <-deadline:
			t.Fatalf("the anomaly was not reported: %+v", got.snapshot())
		case err := <-done:
			t.Fatalf("the watch ended first: %v", err)
		}
	}
}

// checkConfined inspects a service's container: the bundle's seccomp profile (not
// Docker's default), every capability dropped but the bundle's, no-new-privileges,
// and the kernel's view of its init.
func checkConfined(t *testing.T, env *dockertest.Env, bundle, id, svc string) {
	t.Helper()
	info, err := env.Client.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	hc := info.HostConfig
	var seccomp string
	for _, o := range hc.SecurityOpt {
		if v, ok := strings.CutPrefix(o, "seccomp="); ok {
			seccomp = v
		}
	}
	var applied, want any
	if err := json.Unmarshal([]byte(seccomp), &applied); err != nil {
		t.Fatalf("%s: seccomp option %q: %v", svc, seccomp, err)
	}
	data, err := os.ReadFile(filepath.Join(bundle, svc, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(applied, want) {
		t.Errorf("%s: the container's seccomp profile is not the bundle's", svc)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("%s: no no-new-privileges in %v", svc, hc.SecurityOpt)
	}
	if !slices.Equal([]string(hc.CapDrop), []string{"ALL"}) {
		t.Errorf("%s: cap_drop %v, want [ALL]", svc, hc.CapDrop)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.State.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"Seccomp:\t2", "NoNewPrivs:\t1"} {
		if !strings.Contains(string(status), l+"\n") {
			t.Errorf("%s: init's status lacks %q", svc, l)
		}
	}
	b, err := profiles.LoadBundle(filepath.Join(bundle, svc))
	if err != nil {
		t.Fatal(err)
	}
	if len(hc.CapAdd) != len(b.Capabilities) {
		t.Errorf("%s: cap_add %v, bundle %v", svc, hc.CapAdd, b.Capabilities)
	}
}

func loadRec(t *testing.T, path string) *profiles.Recording {
	t.Helper()
	r, err := profiles.LoadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func hasExec(r *profiles.Recording, path string, dockerExec bool) bool {
	return slices.ContainsFunc(r.Execs, func(x profiles.Exec) bool {
		return x.Path == path && (!dockerExec || x.DockerExec)
	})
}

func hasSyscall(r *profiles.Recording, name string) bool {
	for _, s := range r.Syscalls {
		if slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}
