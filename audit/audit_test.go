package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/strslice"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

func TestMain(m *testing.M) { dockertest.Main(m) }

// want is a finding expected by check name and severity (and, where a check can
// fire more than once, a piece of its evidence).
type want struct {
	check    string
	severity Severity
	cis      string
	evidence string
}

// assertFindings checks that every wanted finding is there with its severity and CIS
// id, and that nothing else above low is.
func assertFindings(t *testing.T, r Report, wants []want) {
	t.Helper()
	used := make([]bool, len(r.Findings))
	for _, w := range wants {
		found := false
		for i, f := range r.Findings {
			if used[i] || f.Check != w.check || !strings.Contains(f.Evidence, w.evidence) {
				continue
			}
			used[i], found = true, true
			if f.Severity != w.severity || f.CIS != w.cis {
				t.Errorf("%s: severity %s, CIS %q; want %s, %q (%s)", f.Check, f.Severity, f.CIS, w.severity, w.cis, f.Evidence)
			}
			if f.Fix == "" {
				t.Errorf("%s: no fix", f.Check)
			}
			break
		}
		if !found {
			t.Errorf("no %s finding with evidence %q in %+v", w.check, w.evidence, r.Findings)
		}
	}
	for i, f := range r.Findings {
		if !used[i] && f.Severity > Low {
			t.Errorf("unexpected %s finding: %s (%s)", f.Severity, f.Check, f.Evidence)
		}
	}
}

// createContainer creates (never starts) a labelled container removed when the test
// ends, and returns its name.
func createContainer(t *testing.T, env *dockertest.Env, name string, cfg *container.Config, hc *container.HostConfig) string {
	t.Helper()
	cfg.Labels = dockertest.Labels()
	c, err := env.Client.ContainerCreate(context.Background(), cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = env.Client.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	})
	return name
}

const password = "hunter2-Tr0ub4dor&3"

// TestBadContainer: a created (never started) container that is privileged, on the
// host network, with the daemon's socket mounted read-write and DB_PASSWORD in its
// environment, plus a recorded docker inspect document for what the test daemon
// cannot create (it has no bridge network: a port on 0.0.0.0 and a --link). Every
// problem is reported with its severity and CIS id, the password never appears, and
// --fail-on high fails with exit code 10.
func TestBadContainer(t *testing.T) {
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	sock := strings.TrimPrefix(env.Host, "unix://")
	name := createContainer(t, env, fmt.Sprintf("audit-bad-%d", os.Getpid()),
		&container.Config{Image: img, Cmd: strslice.StrSlice{"sleep", "1"}, Env: []string{"DB_PASSWORD=" + password, "LANG=C"}},
		&container.HostConfig{Privileged: true, NetworkMode: "host", Binds: []string{sock + ":/var/run/docker.sock"}})

	var out bytes.Buffer
	high := High
	err := Run(context.Background(), Options{Containers: []string{name}, Files: []string{"testdata/bad-bridge.inspect.json"}, JSON: true, FailOn: &high, Stdout: &out})
	if !errors.Is(err, fail.ErrFindings) || fail.Code(err) != 10 {
		t.Fatalf("Run with --fail-on high: %v (exit %d), want ErrFindings (exit 10)", err, fail.Code(err))
	}
	if strings.Contains(out.String(), password) || strings.Contains(out.String(), "Sup3rS3cret") {
		t.Fatal("the report prints a secret value")
	}
	var doc struct {
		Containers []struct {
			Name     string
			Source   string
			Findings []Finding
		}
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	if len(doc.Containers) != 2 {
		t.Fatalf("%d reports, want 2: %s", len(doc.Containers), out.String())
	}
	byName := map[string]Report{}
	for _, c := range doc.Containers {
		byName[c.Name] = Report{Findings: c.Findings}
	}
	common := []want{
		{"root-user", Medium, "4.1", ""},
		{"no-memory-limit", Medium, "5.11", ""},
		{"no-pids-limit", Medium, "5.29", ""},
		{"writable-rootfs", Medium, "5.13", ""},
	}
	assertFindings(t, byName[name], append([]want{
		{"privileged", Critical, "5.5", ""},
		{"host-network", High, "5.10", ""},
		{"docker-socket", Critical, "5.32", "read-write"},
		{"secret-env", High, "", "DB_PASSWORD"},
		{"no-new-privileges", Medium, "5.26", ""},
	}, common...))
	assertFindings(t, byName["bad-bridge"], append([]want{
		{"port-all-interfaces", Medium, "5.14", "80/tcp published on 0.0.0.0:8080"},
		{"link", Low, "", "/db:/bad-bridge/db"},
		{"secret-env", High, "", "REDIS_URL"},
		{"sensitive-mount", Medium, "5.6", "/etc"},
		{"seccomp-unconfined", High, "5.22", ""},
		{"cap-add", Medium, "5.4", "NET_RAW"},
		{"restart-policy", Low, "5.15", "always"},
		{"no-new-privileges", Medium, "5.26", ""},
	}, common...))

	// --all finds the created container among the daemon's.
	out.Reset()
	if err := Run(context.Background(), Options{All: true, JSON: true, Stdout: &out}); err != nil {
		t.Fatalf("Run --all: %v", err)
	}
	if !strings.Contains(out.String(), `"name": "`+name+`"`) || strings.Contains(out.String(), password) {
		t.Errorf("--all report lacks %s (or shows the password):\n%s", name, out.String())
	}

	// The table says the same, without the secret either.
	out.Reset()
	if err := Run(context.Background(), Options{Containers: []string{name}, Stdout: &out}); err != nil {
		t.Fatalf("Run without --fail-on: %v", err)
	}
	if !strings.Contains(out.String(), "CRITICAL") || !strings.Contains(out.String(), "DB_PASSWORD") || strings.Contains(out.String(), password) {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestCleanContainer: a container created with the hardened flags gives no finding
// of high severity, so --fail-on high passes.
func TestCleanContainer(t *testing.T) {
	env := dockertest.Daemon(t)
	img := env.Busybox(t)
	pids := int64(64)
	name := createContainer(t, env, fmt.Sprintf("audit-clean-%d", os.Getpid()),
		&container.Config{Image: img, Cmd: strslice.StrSlice{"sleep", "1"}, User: "65534:65534", Env: []string{"LANG=C"}},
		&container.HostConfig{NetworkMode: "none", ReadonlyRootfs: true, SecurityOpt: []string{"no-new-privileges"},
			CapDrop: strslice.StrSlice{"ALL"}, Tmpfs: map[string]string{"/tmp": "size=16m"},
			Resources: container.Resources{Memory: 64 << 20, PidsLimit: &pids, NanoCPUs: 500_000_000}})
	var out bytes.Buffer
	high := High
	if err := Run(context.Background(), Options{Containers: []string{name}, FailOn: &high, JSON: true, Stdout: &out}); err != nil {
		t.Fatalf("Run --fail-on high on a clean container: %v\n%s", err, out.String())
	}
	var doc jsonReport
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Containers) != 1 || len(doc.Containers[0].Findings) != 0 {
		t.Errorf("findings on a clean container: %s", out.String())
	}
}

// TestRecordingSaysWhatWasNeeded: with a recording, findings say what the app used:
// an added capability never used, root without need, a root filesystem written only
// under /tmp.
func TestRecordingSaysWhatWasNeeded(t *testing.T) {
	rec := &profiles.Recording{
		Target: profiles.Target{Kind: "container", Container: &profiles.Container{Name: "app", ID: "abc", Config: map[string]any{
			"Config":     map[string]any{"Image": "app", "Env": []any{"API_TOKEN=" + profiles.Redacted}},
			"HostConfig": map[string]any{"CapAdd": []any{"SYS_ADMIN", "NET_BIND_SERVICE"}},
		}}},
		Capabilities: []profiles.Capability{{Name: "CAP_NET_BIND_SERVICE", Granted: 1}},
		Observed: &profiles.Observed{
			WrittenDirs: []profiles.WrittenDir{{Path: "/tmp/cache", Mount: profiles.MountRootfs}, {Path: "/data", Mount: profiles.MountVolume}},
			User:        &profiles.RunUser{UID: 0},
		},
	}
	s, err := FromRecording(rec)
	if err != nil {
		t.Fatal(err)
	}
	r := Audit(s, rec)
	assertFindings(t, r, []want{
		{"cap-add", High, "5.4", "SYS_ADMIN; never used"},
		{"cap-add", Low, "5.4", "NET_BIND_SERVICE; used"},
		{"writable-rootfs", Medium, "5.13", "only under /tmp"},
		{"root-user", Medium, "4.1", "needed CAP_NET_BIND_SERVICE"},
		{"secret-env", High, "", "redacted when learned"},
		{"no-memory-limit", Medium, "5.11", ""},
		{"no-pids-limit", Medium, "5.29", ""},
		{"no-new-privileges", Medium, "5.26", ""},
	})
	for _, f := range r.Findings {
		if f.Check == "writable-rootfs" && f.Fix != "--read-only --tmpfs /tmp" {
			t.Errorf("writable-rootfs fix %q", f.Fix)
		}
	}
	// Without any capability needed, root is said to be unneeded.
	rec.Capabilities = nil
	r = Audit(s, rec)
	for _, f := range r.Findings {
		if f.Check == "root-user" && (!strings.Contains(f.Evidence, "without needing any capability") || !strings.Contains(f.Fix, "--user")) {
			t.Errorf("root-user without need: %+v", f)
		}
	}
}

// TestNotAFile: a file that is neither a recording nor docker inspect output is bad
// input (exit 2).
func TestNotAFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(p, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Options{Files: []string{p}, Stdout: &bytes.Buffer{}})
	if fail.Code(err) != 2 {
		t.Fatalf("Run on a bad file: %v (exit %d), want exit 2", err, fail.Code(err))
	}
}
