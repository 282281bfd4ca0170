package docker

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
)

// oneErrorLine checks the CLI contract: the error wraps want and is one line holding
// every fragment.
func oneErrorLine(t *testing.T, err, want error, fragments ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping %v", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q lacks %q", err, f)
		}
	}
}

func TestConnectDaemonNotReachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err := Connect(context.Background())
	oneErrorLine(t, err, fail.ErrDocker, "cannot reach the docker daemon at unix://"+sock, "systemctl start docker", "DOCKER_HOST")
	t.Logf("%v", err)
}

// TestConnectPermissionDenied runs Connect as nobody against a socket only root may
// open. The socket is a real one, but nothing behind it speaks Docker: connect(2)
// fails on the file's mode before any byte is exchanged, as it would for dockerd's.
func TestConnectPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 || os.Getenv("TAILOR_UNPRIVILEGED") == "1" {
		dockertest.Unavailable(t, "running a child as another user needs root")
	}
	dir, err := os.MkdirTemp("", "tailor-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	// The test binary may sit in a directory nobody cannot enter: run a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "docker.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{childEnv + "=connect", "DOCKER_HOST=unix://" + sock, "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	line := strings.TrimSpace(string(out))
	want := "docker: permission denied on the docker socket unix://" + sock + ": run tailor as root or as a member of the docker group"
	if line != want {
		t.Fatalf("child said %q\nwant %q", line, want)
	}
}

func TestContainerNotFound(t *testing.T) {
	_, c, _ := setup(t)
	ctx := context.Background()
	const name = "tailor-no-such-container"
	_, err := c.PrepareCopy(ctx, name, CopyOptions{})
	oneErrorLine(t, err, fail.ErrDocker, `container "`+name+`" not found`)
	_, err = c.Identity(ctx, name)
	oneErrorLine(t, err, fail.ErrDocker, `container "`+name+`" not found`)
	_, _, err = c.Running(ctx, name)
	oneErrorLine(t, err, fail.ErrDocker, `container "`+name+`" not found`)
}

// TestImageNotFound removes the image of a container that is not running, which the
// daemon allows with force: the container stays, pointing at an image that is gone.
func TestImageNotFound(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	// A committed image has an ID of its own, so removing it leaves the shared
	// busybox image alone.
	base := original(t, env, &container.Config{Image: img}, nil)
	committed, err := env.Client.ContainerCommit(ctx, base, container.CommitOptions{Reference: "tailor-test/doomed:1"})
	if err != nil {
		t.Fatal(err)
	}
	origID := original(t, env, &container.Config{Image: "tailor-test/doomed:1"}, nil)
	if _, err := env.Client.ImageRemove(ctx, committed.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
		t.Fatalf("removing the image: %v", err)
	}
	_, err = c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	oneErrorLine(t, err, fail.ErrDocker, "creating a copy of container", "No such image", "gone")
	t.Logf("%v", err)
	_, err = c.Identity(ctx, origID)
	oneErrorLine(t, err, fail.ErrDocker, "image "+committed.ID, "not found")
	t.Logf("%v", err)
}
