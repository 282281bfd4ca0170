package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tailor-sec/tailor/enforce/watch"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// TestLearnRunningProject learns a running project through copies: each service
// recorded apart (the healthcheck in web's only), the copies gone afterwards, and
// the project's own containers still running, the same ones, never restarted.
func TestLearnRunningProject(t *testing.T) {
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
	project := fmt.Sprintf("tailorrun%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	proj, err := Load(ctx, []string{file}, project)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := writeLabels(dir, proj, dockertest.Labels())
	if err != nil {
		t.Fatal(err)
	}
	cc := composeCLI{project: project, files: []string{file, labels}, dir: dir, stdout: &out, stderr: &out}
	t.Cleanup(func() { _ = cc.run(context.Background(), "down", "--volumes") })
	if err := cc.run(ctx, "up", "-d"); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	eng, err := connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	before := startTimes(t, eng, project)

	recs := filepath.Join(dir, "recordings")
	ix, err := LearnRunning(ctx, LearnOptions{ProjectName: project, Workload: workload, Output: recs,
		Labels: dockertest.Labels(), Stdout: &out, Stderr: &out, Progress: &out})
	if err != nil {
		t.Fatalf("learn --compose-project: %v\n%s", err, out.String())
	}
	var names []string
	for _, s := range ix.Services {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"web", "api"}) {
		t.Fatalf("services %v, want [web api]", names)
	}
	web := loadRec(t, filepath.Join(recs, "web.json"))
	api := loadRec(t, filepath.Join(recs, "api.json"))
	if !hasExec(web, "/bin/wget", true) || hasExec(api, "/bin/wget", false) {
		t.Errorf("healthcheck exec: web %+v, api %+v", web.Execs, api.Execs)
	}
	for _, r := range []*profiles.Recording{web, api} {
		if !hasSyscall(r, "accept4") && !hasSyscall(r, "accept") {
			t.Errorf("%s: no accept: the workload did not reach the copy", r.Target.Container.Name)
		}
	}
	if web.Target.Container.ID != before["web"][0] || api.Target.Container.ID != before["api"][0] {
		t.Errorf("recordings name %s and %s, want the originals %v", web.Target.Container.ID, api.Target.Container.ID, before)
	}
	if left, err := eng.containers(ctx, learnRunName(project)); err != nil || len(left) != 0 {
		t.Errorf("copies left: %v (%v)", left, err)
	}
	after := startTimes(t, eng, project)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the project's containers changed: before %v, after %v", before, after)
	}

	// watch --compose-project: the running project against the bundles just learned;
	// an out-of-profile docker exec in api is reported with api's name.
	bundlesDir := filepath.Join(dir, "tailor")
	if _, err := Generate(GenerateOptions{Input: recs, Output: bundlesDir, Version: "test", Warn: &out}); err != nil {
		t.Fatalf("generate: %v\n%s", err, out.String())
	}
	got := &lines{added: make(chan struct{}, 1)}
	ready := make(chan struct{})
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- Watch(wctx, EnforceOptions{ProjectName: project, Profile: bundlesDir, Watcher: watch.New(watch.Options{JSON: got}),
			Ready: func() { close(ready) }, Log: &out})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	inject(t, env, before["api"][0], "mkdir", "/tmp/tailor-injected")
	waitAnomaly(t, got, done, func(a watch.Anomaly) bool { return a.Service == "api" && a.Comm == "mkdir" })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("watch: %v\n%s", err, out.String())
	}
	for _, a := range got.snapshot() {
		if a.Service != "api" || a.Comm != "mkdir" {
			t.Errorf("anomaly outside the injected action: %+v", a)
		}
	}
}

// startTimes maps each service to its running containers' ID and start time.
func startTimes(t *testing.T, eng *engine, project string) map[string][]string {
	t.Helper()
	cs, err := eng.containers(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for svc, list := range cs {
		for _, c := range list {
			info, err := eng.api.ContainerInspect(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !info.State.Running {
				t.Errorf("%s is not running", c.Name)
			}
			out[svc] = append(out[svc], c.ID, info.State.StartedAt)
		}
	}
	return out
}
