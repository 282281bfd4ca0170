package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/testpriv"
	"github.com/tailor-sec/tailor/profiles"
)

// maxSyscalls bounds each profile's x86_64 syscall count; the product's goals are 72
// (nginx) and 70 (redis), this test fails only past 80.
const maxSyscalls = 80

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	dockertest.Main(m, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

// tailorBin builds the tailor binary once per test run.
func tailorBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tailor-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "tailor"), "../cmd/tailor").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("building tailor: %v", binErr)
	}
	return filepath.Join(binDir, "tailor")
}

// requireTools stops the test when a program the examples run is not installed.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testpriv.RequireRoot(t)
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testpriv.Unavailable(t, tool+" is not installed (make setup installs it)")
		}
	}
}

// runExample runs examples/NAME/run.sh MODE with a short load and returns its output
// directory.
func runExample(t *testing.T, name, mode string, env ...string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("./"+name+"/run.sh", mode)
	cmd.Env = append(os.Environ(), append([]string{"OUT=" + out, "TAILOR=" + tailorBin(t), "LOAD=1", "REQUESTS=300"}, env...)...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	t.Logf("%s/run.sh %s:\n%s", name, mode, lastLines(log.String(), 30))
	if err != nil {
		t.Fatalf("%s/run.sh %s: %v", name, mode, err)
	}
	return out
}

// checkReplays checks every replay of the learning workload under the generated
// profile: the target exited 0 and the workload's own checks passed (nginx answered
// every wrk request with 2xx and no socket error; redis answered PING with PONG, ran
// redis-benchmark and BGSAVE), and what checks says about the output.
func checkReplays(t *testing.T, out string, check func(replay string) error) {
	t.Helper()
	for n := 1; n <= 3; n++ {
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("replay-%d.txt", n)))
		if err != nil {
			t.Fatalf("replay %d: %v", n, err)
		}
		s := string(b)
		if last := lastLines(s, 1); last != "enforce-exit 0 workload-exit 0" {
			logs, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("container-%d.log", n)))
			t.Errorf("replay %d: %q, want enforce-exit 0 workload-exit 0:\n%s\ncontainer output:\n%s", n, last, lastLines(s, 15), lastLines(string(logs), 40))
		}
		if !strings.Contains(s, "workload: ok") {
			t.Errorf("replay %d: the workload did not finish", n)
		}
		if err := check(s); err != nil {
			t.Errorf("replay %d: %v", n, err)
		}
	}
}

// profileSize reads the bundle's syscall count (x86_64) and capabilities, logs them
// and checks the syscall bound.
func profileSize(t *testing.T, bundleDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundleDir, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m profiles.Bundle
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bundle.json: %v", err)
	}
	n := -1
	for _, a := range m.Syscalls {
		if a.Arch == "SCMP_ARCH_X86_64" {
			n = len(a.Names)
		}
	}
	t.Logf("PROFILE %s: %d syscalls (x86_64), %d capabilities %v, %d file rules", m.Name, n, len(m.Capabilities), m.Capabilities, len(m.Files))
	if n < 0 {
		t.Fatalf("bundle.json has no x86_64 syscalls")
	}
	if n > maxSyscalls {
		t.Errorf("%s allows %d syscalls, want at most %d", m.Name, n, maxSyscalls)
	}
}

func wrkClean(s string) error {
	if !strings.Contains(s, "requests in") {
		return errors.New("wrk made no requests")
	}
	if strings.Contains(s, "Socket errors") || strings.Contains(s, "Non-2xx") {
		return errors.New("wrk saw errors")
	}
	return nil
}

func redisAnswered(s string) error {
	if !strings.Contains(s, "requests per second") {
		return errors.New("redis-benchmark reported no throughput")
	}
	return nil
}

var (
	nginxTools = []string{"nginx", "wrk", "curl"}
	redisTools = []string{"redis-server", "redis-cli", "redis-benchmark"}
)

// TestNginxLocal: nginx learned as a local command under wrk load, reload, reopen and
// graceful stop; the same workload then works three times under tailor enforce.
func TestNginxLocal(t *testing.T) {
	requireTools(t, nginxTools...)
	out := runExample(t, "nginx", "local")
	checkReplays(t, out, wrkClean)
	profileSize(t, filepath.Join(out, "nginx.profile"))
}

// TestRedisLocal: redis learned as a local command under redis-benchmark, BGSAVE and
// SHUTDOWN; the same workload then works three times under tailor enforce.
func TestRedisLocal(t *testing.T) {
	requireTools(t, redisTools...)
	out := runExample(t, "redis", "local")
	checkReplays(t, out, redisAnswered)
	profileSize(t, filepath.Join(out, "redis.profile"))
}

// TestNginxContainer: the nginx image learned with tailor learn --container, then run
// by docker with the generated seccomp.json and capabilities, three times.
func TestNginxContainer(t *testing.T) {
	requireTools(t, append(nginxTools, "nsenter")...)
	dockertest.Daemon(t)
	out := runExample(t, "nginx", "container")
	checkReplays(t, out, wrkClean)
	profileSize(t, filepath.Join(out, "nginx.profile"))
}

// TestRedisContainer: the redis image learned with tailor learn --container, then run
// by docker with the generated seccomp.json and capabilities, three times.
func TestRedisContainer(t *testing.T) {
	requireTools(t, append(redisTools, "nsenter")...)
	dockertest.Daemon(t)
	out := runExample(t, "redis", "container")
	checkReplays(t, out, redisAnswered)
	profileSize(t, filepath.Join(out, "redis.profile"))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestComposeExample: examples/compose learned with tailor learn --compose, generated
// with generate --compose, accepted by docker-compose config and run confined by
// tailor enforce --compose with the workload replayed and no anomaly.
func TestComposeExample(t *testing.T) {
	requireTools(t, "docker-compose", "curl", "redis-cli", "nginx", "redis-server")
	dockertest.Daemon(t)
	out := runExample(t, "compose", "run")
	log, err := os.ReadFile(filepath.Join(out, "enforce.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "workload: ok") {
		t.Errorf("the workload did not succeed under the profiles:\n%s", log)
	}
	// Each watch ends its lines with a summary record; any other line is an anomaly.
	if data, _ := os.ReadFile(filepath.Join(out, "anomalies.jsonl")); len(bytes.TrimSpace(data)) > 0 && !onlySummaries(data) {
		t.Errorf("anomalies under the learned profiles:\n%s", data)
	}
	for _, svc := range []string{"web", "cache"} {
		if _, err := profiles.LoadBundle(filepath.Join(out, "tailor", svc)); err != nil {
			t.Error(err)
		}
	}
}

// onlySummaries reports whether every line of an anomalies file is a closing
// summary record (no anomaly), each without loss.
func onlySummaries(data []byte) bool {
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var s struct {
			Kind string `json:"kind"`
			Lost uint64 `json:"lost"`
		}
		if json.Unmarshal(line, &s) != nil || s.Kind != "summary" || s.Lost != 0 {
			return false
		}
	}
	return true
}
