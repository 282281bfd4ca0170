package enforce

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/learn"
	"github.com/tailor-sec/tailor/profiles"
)

// TestHardenPlan: each part sets its configuration, and a part left out sets nothing.
func TestHardenPlan(t *testing.T) {
	h := &profiles.Hardening{
		ReadOnly: true, Tmpfs: []profiles.HardenTmpfs{{Path: "/run", Size: 16 << 20}}, Volumes: []profiles.HardenVolume{{Path: "/srv/app"}},
		User: "65534:65534", Memory: 64 << 20, PidsLimit: 32, NanoCPUs: 1e9, NoNewPrivileges: true,
		Facts: []profiles.HardenFact{
			{Part: profiles.HardenReadOnly, Flags: []string{"--read-only"}, Fact: "f"},
			{Part: profiles.HardenUser, Flags: []string{"--user", "65534:65534"}, Fact: "f"},
			{Part: profiles.HardenLimits, Flags: []string{"--memory", "64m"}, Fact: "f"},
			{Part: profiles.HardenPorts, Flags: []string{"-p", "127.0.0.1:8080:80/tcp"}, Fact: "f"},
			{Part: profiles.HardenNetwork, Fact: "network kept"},
		},
	}
	cfg, hc := &container.Config{}, &container.HostConfig{PortBindings: nat.PortMap{"80/tcp": {{HostIP: "", HostPort: "8080"}}}}
	hardenPlan{h: h}.adjust(cfg, hc)
	if !hc.ReadonlyRootfs || hc.Tmpfs["/run"] != "rw,size=16m" || len(hc.Mounts) != 1 || hc.Mounts[0].Target != "/srv/app" ||
		cfg.User != "65534:65534" || hc.Memory != 64<<20 || *hc.PidsLimit != 32 || hc.NanoCPUs != 1e9 ||
		hc.PortBindings["80/tcp"][0].HostIP != "127.0.0.1" || hc.NetworkMode.IsNone() {
		t.Errorf("hardened: %+v %+v", cfg, hc)
	}
	skip, err := ParseNoHarden("readonly, user,limits,ports")
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc = &container.Config{}, &container.HostConfig{}
	p := hardenPlan{h: h, skip: skip}
	p.adjust(cfg, hc)
	if hc.ReadonlyRootfs || cfg.User != "" || hc.Memory != 0 || len(p.parts()) != 0 {
		t.Errorf("parts left out were applied: %+v %+v %v", cfg, hc, p.parts())
	}
	if _, err := ParseNoHarden("readonly,seccomp"); fail.Code(err) != 2 {
		t.Errorf("unknown part: %v", err)
	}
	if s, _ := ParseNoHarden("all"); len(s) != len(NoHardenParts) {
		t.Errorf("all: %v", s)
	}
}

// httpdScript writes a file in dir, then serves /www on 127.0.0.1:7777.
func httpdScript(dir string) string {
	return fmt.Sprintf(`echo x > %s/y && exec httpd -f -p 127.0.0.1:7777 -h /www`, dir)
}

// probe is a workload that waits (bounded) for the server to answer.
const probe = `i=0; until curl -sf -o /dev/null http://127.0.0.1:7777/; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done; echo served`

// TestHardenedVerifiedAndDiagnosed: a busybox httpd learned writing in /tmp gets a
// hardened configuration (read-only root, tmpfs /tmp, nobody, limits); its own copy
// serves under it and the run says it was verified. A container of the same image
// that writes in /data instead fails under it, and the diagnosis names the read-only
// part and its fact, without dropping it: the run still fails.
func TestHardenedVerifiedAndDiagnosed(t *testing.T) {
	env, img := dockerEnv(t)
	ctx := context.Background()
	learned := busyboxContainer(t, env, img, httpdScript("/tmp"))
	rec := filepath.Join(t.TempDir(), "httpd.json")
	if _, err := learn.Container(ctx, learned, learn.Options{Output: rec, Workload: probe},
		learn.ContainerOptions{CopyLabels: dockertest.Labels()}); err != nil {
		t.Fatalf("learn: %v", err)
	}
	r, err := profiles.LoadRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Name: "tailor-httpd", AllowIncomplete: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := generate.Write(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	h := b.Manifest.Hardening
	if h == nil || !h.ReadOnly || len(h.Tmpfs) != 1 || h.Tmpfs[0].Path != "/tmp" || h.User != "65534:65534" || h.Memory == 0 {
		t.Fatalf("hardening %+v\n%s", h, b.Files[profiles.BundleSummaryFile])
	}

	res := runCopy(ctx, learned, ContainerOptions{Profile: dir, Workload: probe})
	if res.err != nil || res.status != 0 || !strings.Contains(res.out.String(), "served") {
		t.Fatalf("hardened copy of the learned container: status %d, %v\n%s\n%s", res.status, res.err, res.log.String(), res.out.String())
	}
	if !strings.Contains(res.log.String(), "hardened configuration verified: the workload succeeded under readonly, user, limits") {
		t.Errorf("no verification line:\n%s", res.log.String())
	}

	other := busyboxContainer(t, env, img, httpdScript("/data"))
	res = runCopy(ctx, other, ContainerOptions{Profile: dir, Workload: probe})
	// The app exits at once: the workload fails, or (when the copy is already gone)
	// cannot even enter its network namespace, or the copy's own exit status ends the
	// run first (no error: the exit status is the run's result).
	failed := errors.Is(res.err, fail.ErrWorkload) || (errors.Is(res.err, fail.ErrDocker) && res.status != 0) ||
		(res.err == nil && res.status != 0)
	if !failed {
		t.Fatalf("a container writing outside the learned directories: status %d, %v, want a failed run\n%s", res.status, res.err, res.log.String())
	}
	// The diagnosis is in the error when there is one, and always in the log.
	want := `works without its "readonly" part (--read-only: the target wrote on its root filesystem only in /tmp`
	if !strings.Contains(res.log.String(), want) || !strings.Contains(res.log.String(), "--no-harden=readonly") {
		t.Errorf("diagnosis in the log:\n%s\nwant it to contain %q", res.log.String(), want)
	}
	if res.err != nil && (!strings.Contains(res.err.Error(), want) || !strings.Contains(res.err.Error(), "--no-harden=readonly")) {
		t.Errorf("diagnosis: %v\nwant it to contain %q", res.err, want)
	}
	// Left out, the run succeeds, and the report says so.
	res = runCopy(ctx, other, ContainerOptions{Profile: dir, Workload: probe, NoHarden: map[string]bool{profiles.HardenReadOnly: true}})
	if res.err != nil || !strings.Contains(res.log.String(), "[readonly] left out (--no-harden)") {
		t.Errorf("--no-harden=readonly: %v\n%s", res.err, res.log.String())
	}
	noCopiesLeft(t, env, learned)
	noCopiesLeft(t, env, other)
}
