package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// TestAgentCommand runs the tailor binary's agent command as a DaemonSet would: JSON
// lines on stdout, a watched container, SIGTERM ends it with exit 0. It logs the
// agent's peak memory (VmHWM) while it watches one container.
func TestAgentCommand(t *testing.T) {
	testpriv.RequireRoot(t)
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "tailor")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/tailor").CombinedOutput(); err != nil {
		t.Fatalf("building tailor: %v\n%s", err, out)
	}
	r, err := profiles.LoadRecording("../testdata/recordings/webserver.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	if _, err := generate.Write(bundle, b, nil); err != nil {
		t.Fatal(err)
	}
	run := dockertest.Labels()[dockertest.TestLabel]
	cfg := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("rules:\n- labels: {%s: %q, tailor.cli: \"1\"}\n  bundle: %s\n", dockertest.TestLabel, run, bundle)), 0o600); err != nil {
		t.Fatal(err)
	}
	id := newContainer(t, env, img, "agent-cli", "exec sleep 600", map[string]string{"tailor.cli": "1"}, nil)
	if err := env.Client.ContainerStart(context.Background(), id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "agent", "--config", cfg, "--metrics", "127.0.0.1:0", "--cache", filepath.Join(dir, "cache"))
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+env.Host)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	seen := make(chan map[string]any, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				seen <- m
			}
		}
		close(seen)
	}()
	wait := func(event string) map[string]any {
		t.Helper()
		timer := time.NewTimer(60 * time.Second)
		defer timer.Stop()
		for {
			select {
			case m, ok := <-seen:
				if !ok {
					t.Fatalf("agent ended before %s: %s", event, stderr.String())
				}
				if m["event"] == event {
					return m
				}
			case <-timer.C:
				t.Fatalf("no %s line: %s", event, stderr.String())
			}
		}
	}
	w := wait("watching")
	if w["containerName"] != "agent-cli" || w["bundle"] != b.Manifest.Name {
		t.Errorf("watching %v", w)
	}
	wait("agent-started")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
			t.Logf("tailor agent watching one container: %s", strings.Join(strings.Fields(l), " "))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait("agent-stopped")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent after SIGTERM: %v\n%s", err, stderr.String())
	}
}
