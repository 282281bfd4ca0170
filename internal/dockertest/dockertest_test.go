package dockertest

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { Main(m) }

func TestDaemonRunsBusybox(t *testing.T) {
	env := Daemon(t)
	if os.Getenv("DOCKER_HOST") != env.Host {
		t.Fatalf("DOCKER_HOST=%q, want %q", os.Getenv("DOCKER_HOST"), env.Host)
	}
	if env.Own {
		t.Logf("private dockerd answered after %v", env.StartTime)
	}
	img := env.Busybox(t)
	if again := env.Busybox(t); again != img {
		t.Fatalf("second Busybox = %q, want %q", again, img)
	}
	ctx := context.Background()
	c, err := env.Client.ContainerCreate(ctx, &container.Config{
		Image: img, Cmd: []string{"sh", "-c", "cat /www/index.html; id -un"}, Labels: Labels(),
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Client.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	if err := env.Client.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	resc, errc := env.Client.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case res := <-resc:
		if res.StatusCode != 0 {
			t.Fatalf("busybox sh exited %d", res.StatusCode)
		}
	case err := <-errc:
		t.Fatal(err)
	}
	rc, err := env.Client.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := new(strings.Builder)
	if _, err := stdcopy.StdCopy(buf, io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if want := IndexHTML + "root\n"; buf.String() != want {
		t.Fatalf("output %q, want %q", buf.String(), want)
	}
}

// TestPrivateDaemonLeavesNothing starts and stops a second private daemon and checks
// that its processes, mounts and directory are gone.
func TestPrivateDaemonLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 || os.Getenv("TAILOR_UNPRIVILEGED") == "1" {
		Unavailable(t, "starting a test dockerd needs root")
	}
	d, err := startDaemon()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("private dockerd answered after %v", d.startTime)
	dockerdPid := d.cmd.Process.Pid
	containerdPid := readPid(d.dir + "/exec/containerd/containerd.pid")
	if containerdPid <= 0 {
		t.Fatal("dockerd did not start its own containerd under the exec root")
	}
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, pid := range []int{dockerdPid, containerdPid} {
		// Not ESRCH only while a zombie waits for its parent: dockerd is ours and
		// reaped by cmd.Wait, containerd is dockerd's and reaped by it or by init.
		if err := unix.Kill(pid, 0); err == nil && !zombie(pid) {
			t.Errorf("pid %d still runs", pid)
		}
	}
	if _, err := os.Stat(d.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", d.dir, err)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), d.dir) {
		t.Errorf("mounts left under %s", d.dir)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(s[i+1:], " Z")
}
