package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
)

// setup gives a test the daemon, a connected Client and the busybox image.
func setup(t *testing.T) (*dockertest.Env, *Client, string) {
	t.Helper()
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	c, err := Connect(context.Background())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return env, c, img
}

var originals atomic.Int64

// original creates the container a test learns, labelled for dockertest's leftover
// check and removed when the test ends.
func original(t *testing.T, env *dockertest.Env, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	ctx := context.Background()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range dockertest.Labels() {
		cfg.Labels[k] = v
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if hc.NetworkMode == "" {
		// The test daemon has no bridge.
		hc.NetworkMode = "none"
	}
	name := fmt.Sprintf("orig-%s-%d", strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")), originals.Add(1))
	created, err := env.Client.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatalf("creating the original: %v", err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	})
	return created.ID
}

// removed checks that Remove cleans up, twice, and leaves no container.
func removed(t *testing.T, env *dockertest.Env, cp *Copy) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := cp.Remove(ctx); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := env.Client.ContainerInspect(ctx, cp.ID()); !cerrdefs.IsNotFound(err) {
		t.Fatalf("copy still exists after Remove: %v", err)
	}
}

func logs(t *testing.T, env *dockertest.Env, id string) string {
	t.Helper()
	rc, err := env.Client.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("reading logs: %v", err)
	}
	return out.String()
}

func TestPrepareCopyPreservesConfig(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("from-the-bind-mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	origID := original(t, env, &container.Config{
		Image:        img,
		Entrypoint:   []string{"/bin/sh", "-c"},
		Cmd:          []string{`cat /in/hello; echo "pwd=$(pwd) uid=$(id -u) greeting=$GREETING"; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; exit 3`},
		Env:          []string{"GREETING=hi"},
		User:         "65534:65534",
		WorkingDir:   "/tmp",
		Labels:       map[string]string{"app": "demo"},
		ExposedPorts: nat.PortSet{"8080/tcp": {}},
	}, &container.HostConfig{
		Binds:        []string{dir + ":/in:ro"},
		Tmpfs:        map[string]string{"/scratch": "size=1m"},
		PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}}},
		Resources:    container.Resources{Memory: 64 << 20},
		CapDrop:      []string{"NET_RAW"},
		CapAdd:       []string{"SYS_PTRACE"},
		SecurityOpt:  []string{"no-new-privileges", "seccomp=unconfined"},
	})

	cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	if err != nil {
		t.Fatalf("PrepareCopy: %v", err)
	}
	defer removed(t, env, cp)
	orig, err := env.Client.ContainerInspect(ctx, origID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.Client.ContainerInspect(ctx, cp.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != orig.Image {
		t.Errorf("image %s, want the original's %s", got.Image, orig.Image)
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"entrypoint", got.Config.Entrypoint, orig.Config.Entrypoint},
		{"cmd", got.Config.Cmd, orig.Config.Cmd},
		{"env", got.Config.Env, orig.Config.Env},
		{"user", got.Config.User, orig.Config.User},
		{"workdir", got.Config.WorkingDir, orig.Config.WorkingDir},
		{"exposed ports", got.Config.ExposedPorts, orig.Config.ExposedPorts},
		{"binds", got.HostConfig.Binds, orig.HostConfig.Binds},
		{"tmpfs", got.HostConfig.Tmpfs, orig.HostConfig.Tmpfs},
		{"network mode", got.HostConfig.NetworkMode, orig.HostConfig.NetworkMode},
		{"port bindings", got.HostConfig.PortBindings, orig.HostConfig.PortBindings},
		{"memory", got.HostConfig.Memory, orig.HostConfig.Memory},
		{"cap add", got.HostConfig.CapAdd, orig.HostConfig.CapAdd},
		{"cap drop", got.HostConfig.CapDrop, orig.HostConfig.CapDrop},
	} {
		if !equalJSON(t, f.got, f.want) {
			t.Errorf("%s: copy has %v, original %v", f.name, f.got, f.want)
		}
	}
	wantLabels := map[string]string{"app": "demo", LabelCopyOf: origID, LabelOwnerPid: itoa(os.Getpid()), LabelRun: cp.Run()}
	for k, v := range wantLabels {
		if got.Config.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, got.Config.Labels[k], v)
		}
	}
	if orig.Config.Labels[LabelCopyOf] != "" {
		t.Error("the original got tailor's labels")
	}
	wantSec := []string{"no-new-privileges", "seccomp=" + LearningProfile()}
	if !slices.Equal(got.HostConfig.SecurityOpt, wantSec) {
		t.Errorf("security options %q, want %q", got.HostConfig.SecurityOpt, wantSec)
	}
	if got.HostConfig.Memory != 64<<20 || got.HostConfig.NetworkMode != "none" {
		t.Errorf("memory %d network %s", got.HostConfig.Memory, got.HostConfig.NetworkMode)
	}

	if err := cp.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	code, err := cp.Wait(ctx)
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3 (the command's own exit)", code, err)
	}
	out := logs(t, env, cp.ID())
	for _, want := range []string{"from-the-bind-mount", "pwd=/tmp uid=65534 greeting=hi", "Seccomp:\t2", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy's output lacks %q:\n%s", want, out)
		}
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	return reflectJSON(t, a) == reflectJSON(t, b)
}

func TestCopyLifecycle(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	for _, state := range []string{"created", "running", "exited"} {
		t.Run(state, func(t *testing.T) {
			origID := original(t, env, &container.Config{Image: img, Cmd: []string{"sleep", "600"}}, nil)
			if state != "created" {
				if err := env.Client.ContainerStart(ctx, origID, container.StartOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if state == "exited" {
				secs := 0
				if err := env.Client.ContainerStop(ctx, origID, container.StopOptions{Timeout: &secs}); err != nil {
					t.Fatal(err)
				}
			}
			before, err := env.Client.ContainerInspect(ctx, origID)
			if err != nil {
				t.Fatal(err)
			}
			if string(before.State.Status) != state {
				t.Fatalf("original is %s, want %s", before.State.Status, state)
			}

			begin := time.Now()
			cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
			if err != nil {
				t.Fatalf("PrepareCopy: %v", err)
			}
			defer removed(t, env, cp)
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cp.ID()) {
				t.Fatalf("ID %q is not a full container ID", cp.ID())
			}
			if _, err := cp.Pid(ctx); !errors.Is(err, fail.ErrWorkload) {
				t.Fatalf("Pid before Start: %v, want a not-running error", err)
			}
			if err := cp.Start(ctx); err != nil {
				t.Fatalf("Start: %v", err)
			}
			pid, err := cp.Pid(ctx)
			if err != nil {
				t.Fatalf("Pid: %v", err)
			}
			status, err := os.ReadFile("/proc/" + itoa(pid) + "/status")
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`(?m)^Seccomp:\s+2$`).Match(status) {
				t.Errorf("copy's init (pid %d) is not under a seccomp filter:\n%s", pid, status)
			}
			if err := cp.Stop(ctx, time.Second); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			// sleep as pid 1 ignores SIGTERM, so the grace period ends in SIGKILL.
			if code, err := cp.Wait(ctx); err != nil || code != 137 {
				t.Fatalf("Wait = %d, %v; want 137", code, err)
			}
			if err := cp.Stop(ctx, time.Second); err != nil {
				t.Fatalf("Stop of a stopped copy: %v", err)
			}
			removed(t, env, cp)
			t.Logf("copy lifecycle (prepare, start, pid, stop 1s grace, wait, remove): %v", time.Since(begin))

			after, err := env.Client.ContainerInspect(ctx, origID)
			if err != nil {
				t.Fatal(err)
			}
			if after.State.Status != before.State.Status || after.State.StartedAt != before.State.StartedAt || after.State.Pid != before.State.Pid {
				t.Errorf("original changed: %+v -> %+v", before.State, after.State)
			}
		})
	}
}

func TestStartFailureStillRemoves(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	origID := original(t, env, &container.Config{Image: img, Entrypoint: []string{"/no/such/program"}}, nil)
	cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	if err != nil {
		t.Fatalf("PrepareCopy: %v", err)
	}
	err = cp.Start(ctx)
	if !errors.Is(err, fail.ErrDocker) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Start of a copy whose entrypoint is missing: %v, want one ErrDocker line", err)
	}
	t.Logf("start error: %v", err)
	if err := cp.Stop(ctx, 0); err != nil {
		t.Fatalf("Stop after a failed Start: %v", err)
	}
	removed(t, env, cp)
}

func TestPrepareCopyAfterCancel(t *testing.T) {
	env, c, img := setup(t)
	origID := original(t, env, &container.Config{Image: img, Cmd: []string{"sleep", "600"}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	if err != nil {
		t.Fatalf("PrepareCopy: %v", err)
	}
	if err := cp.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Ctrl-C: the run's context is gone, the copy must still be stopped and removed.
	cancel()
	if err := cp.Stop(ctx, 0); err != nil {
		t.Fatalf("Stop with a cancelled context: %v", err)
	}
	removed(t, env, cp)
}

func TestPrivilegedRefused(t *testing.T) {
	env, c, img := setup(t)
	origID := original(t, env, &container.Config{Image: img}, &container.HostConfig{Privileged: true})
	_, err := c.PrepareCopy(context.Background(), origID, CopyOptions{})
	if !errors.Is(err, fail.ErrRefused) || !strings.Contains(err.Error(), "privileged") {
		t.Fatalf("PrepareCopy of a privileged container: %v, want ErrRefused", err)
	}
}

func TestIdentityAndRunning(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	origID := original(t, env, &container.Config{Image: img, Cmd: []string{"sleep", "600"}, Env: []string{"MARK=identity"}}, nil)
	id, err := c.Identity(ctx, origID)
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	inspect, err := env.Client.ContainerInspect(ctx, origID)
	if err != nil {
		t.Fatal(err)
	}
	if id.ID != origID || id.Name != strings.TrimPrefix(inspect.Name, "/") || id.Image != img || id.ImageID != inspect.Image || !strings.HasPrefix(id.ImageID, "sha256:") {
		t.Errorf("identity %+v does not match inspect (%s %s %s)", id, inspect.ID, inspect.Name, inspect.Image)
	}
	if id.Runtime != "runc" || id.RuntimeVersion == "" {
		t.Errorf("runtime %q version %q, want runc and its version", id.Runtime, id.RuntimeVersion)
	}
	cfg, _ := id.Config["Config"].(map[string]any)
	if env, _ := cfg["Env"].([]any); !slices.Contains(env, any("MARK=identity")) {
		t.Errorf("config lacks the original's environment: %v", id.Config["Config"])
	}
	t.Logf("runtime %s %s", id.Runtime, id.RuntimeVersion)

	if _, _, err := c.Running(ctx, origID); !errors.Is(err, fail.ErrDocker) || !strings.Contains(err.Error(), "not running (state created)") {
		t.Fatalf("Running on a created container: %v", err)
	}
	if err := env.Client.ContainerStart(ctx, origID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	gotID, pid, err := c.Running(ctx, origID[:12])
	if err != nil || gotID != origID || pid <= 0 {
		t.Fatalf("Running = %s, %d, %v", gotID, pid, err)
	}
	// ContainerStart returns once runc has told its init to exec the entrypoint, not
	// once the exec is done: until then the pid's cmdline is runc init's (or empty).
	// The kernel gives no event for another process's exec, so this polls, bounded.
	var cmdline []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cmdline, err = os.ReadFile("/proc/" + itoa(pid) + "/cmdline")
		if err != nil || strings.HasPrefix(string(cmdline), "sleep\x00600") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.HasPrefix(string(cmdline), "sleep\x00600") {
		t.Fatalf("pid %d is not the container's sleep: %q %v", pid, cmdline, err)
	}
}

func TestCopyHostname(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	for _, set := range []string{"", "web"} {
		origID := original(t, env, &container.Config{Image: img, Hostname: set}, nil)
		cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
		if err != nil {
			t.Fatal(err)
		}
		got, err := env.Client.ContainerInspect(ctx, cp.ID())
		if err != nil {
			t.Fatal(err)
		}
		// Docker's default hostname is the container's own short ID.
		want := set
		if want == "" {
			want = cp.ID()[:12]
		}
		if got.Config.Hostname != want {
			t.Errorf("original hostname %q: copy has %q, want %q", set, got.Config.Hostname, want)
		}
		removed(t, env, cp)
	}
}
