package docker

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
)

// waitListening polls the container's TCP table until 127.0.0.1:port is in LISTEN
// state: busybox httpd gives no other sign that it is ready.
func waitListening(t *testing.T, pid int, port uint16) {
	t.Helper()
	want := strings.ToUpper(itoaHex(port))
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		tcp, err := os.ReadFile("/proc/" + itoa(pid) + "/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(tcp), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && f[1] == "0100007F:"+want && f[3] == "0A" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on 127.0.0.1:%d in pid %d:\n%s", port, pid, tcp)
		}
		<-tick.C
	}
}

func itoaHex(port uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[port>>12&15], digits[port>>8&15], digits[port>>4&15], digits[port&15]})
}

func TestRunWorkloadInNetns(t *testing.T) {
	env, c, img := setup(t)
	ctx := context.Background()
	origID := original(t, env, &container.Config{Image: img, Cmd: []string{"httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"}}, nil)
	cp, err := c.PrepareCopy(ctx, origID, CopyOptions{Labels: dockertest.Labels()})
	if err != nil {
		t.Fatal(err)
	}
	defer removed(t, env, cp)
	if err := cp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid, err := cp.Pid(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, pid, 8080)

	var out, errOut bytes.Buffer
	// The host's busybox: the workload runs with the host's files.
	err = RunWorkloadInNetns(ctx, pid, "busybox wget -q -O - http://127.0.0.1:8080/", &out, &errOut)
	if err != nil || out.String() != dockertest.IndexHTML {
		t.Fatalf("workload: %v, got %q (stderr %q)", err, out.String(), errOut.String())
	}

	// It ran in the container's network namespace, where only loopback exists, so
	// no packet could leave.
	out.Reset()
	if err := RunWorkloadInNetns(ctx, pid, "readlink /proc/self/ns/net; cat /proc/net/dev", &out, &errOut); err != nil {
		t.Fatal(err)
	}
	ns, err := os.Readlink("/proc/" + itoa(pid) + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != ns {
		t.Errorf("workload ran in %s, container is in %s", lines[0], ns)
	}
	var ifaces []string
	for _, l := range lines[3:] {
		ifaces = append(ifaces, strings.TrimSpace(strings.SplitN(l, ":", 2)[0]))
	}
	if strings.Join(ifaces, ",") != "lo" {
		t.Errorf("interfaces in the container's namespace: %v, want only lo", ifaces)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil || self == ns {
		t.Errorf("the test process itself moved into the container's namespace (%s): %v", self, err)
	}

	err = RunWorkloadInNetns(ctx, pid, "exit 4", &out, &errOut)
	oneErrorLine(t, err, fail.ErrWorkload, "exit status 4")

	// Cancelling kills the whole workload, a background grandchild holding the
	// output pipe included, instead of waiting for it.
	out.Reset()
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = RunWorkloadInNetns(cctx, pid, "busybox sleep 600 & echo $!; wait", &out, &errOut)
	if !errors.Is(err, fail.ErrInterrupted) || time.Since(begin) > 10*time.Second {
		t.Fatalf("cancelled workload: %v after %v, want ErrInterrupted at once", err, time.Since(begin))
	}
	bg, convErr := strconv.Atoi(strings.TrimSpace(out.String()))
	if convErr != nil {
		t.Fatalf("background pid %q: %v", out.String(), convErr)
	}
	// SIGKILL is delivered at once but the task dies asynchronously: wait for its
	// exit on a pidfd (gone already: ESRCH), bounded.
	if fd, err := unix.PidfdOpen(bg, 0); err == nil {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, 5000); err != nil || n == 0 {
			t.Errorf("the workload's background sleep (pid %d) survived the cancel: %v", bg, err)
		}
	}
}
