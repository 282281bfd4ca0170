package examples

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/tailor-sec/tailor/internal/dockertest"
	"github.com/tailor-sec/tailor/profiles"
)

// checkHardened checks the runs of examples/NAME/run.sh hardened: every replay of the
// learning workload under tailor enforce --container exited 0 with the workload done
// and the hardened configuration verified, the held-out workload was served, and
// docker inspect of each running copy shows every setting of the bundle's hardened
// configuration.
func checkHardened(t *testing.T, name, out string, check func(string) error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, name+".profile", "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m profiles.Bundle
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	h := m.Hardening
	if h == nil {
		t.Fatal("the bundle has no hardened configuration")
	}
	summary, _ := os.ReadFile(filepath.Join(out, name+".profile", "SUMMARY.txt"))
	t.Logf("%s hardened configuration:\n%s", name, lastLines(string(summary), len(h.Facts)+1))
	if !h.ReadOnly || len(h.Tmpfs)+len(h.Volumes) == 0 || h.Memory == 0 || h.PidsLimit == 0 || h.NanoCPUs == 0 || !h.NoNewPrivileges {
		t.Errorf("hardened configuration %+v lacks a part", h)
	}
	for _, n := range []string{"1", "2", "3", "heldout"} {
		file := "replay-" + n + ".txt"
		if n == "heldout" {
			file = "heldout.txt"
		}
		rb, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(rb)
		if last := lastLines(s, 1); last != "enforce-exit 0" {
			t.Errorf("%s: %q, want enforce-exit 0:\n%s", file, last, lastLines(s, 30))
		}
		if n != "heldout" {
			if !strings.Contains(s, "workload: ok") || !strings.Contains(s, "hardened configuration verified") {
				t.Errorf("%s: the workload did not finish, or the hardening was not verified:\n%s", file, lastLines(s, 30))
			}
			if err := check(s); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		}
		checkInspect(t, filepath.Join(out, "inspect-"+n+".json"), h)
	}
	heldout, _ := os.ReadFile(filepath.Join(out, "heldout.txt"))
	t.Logf("held-out workload:\n%s", lastLines(string(heldout), 12))
}

// checkInspect compares docker inspect of a running copy with the hardened
// configuration, setting by setting.
func checkInspect(t *testing.T, path string, h *profiles.Hardening) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("docker inspect of the running copy: %v", err)
	}
	var infos []container.InspectResponse
	if err := json.Unmarshal(b, &infos); err != nil || len(infos) != 1 {
		t.Fatalf("%s: %v (%d containers)", path, err, len(infos))
	}
	hc, cfg := infos[0].HostConfig, infos[0].Config
	errorf := func(format string, args ...any) {
		t.Errorf("%s: "+format, append([]any{filepath.Base(path)}, args...)...)
	}
	if !hc.ReadonlyRootfs {
		errorf("root filesystem writable")
	}
	for _, tm := range h.Tmpfs {
		if want := fmt.Sprintf("rw,size=%dm", tm.Size>>20); hc.Tmpfs[tm.Path] != want {
			errorf("tmpfs %s: %q, want %q", tm.Path, hc.Tmpfs[tm.Path], want)
		}
	}
	for _, v := range h.Volumes {
		if !slices.ContainsFunc(infos[0].Mounts, func(mp container.MountPoint) bool { return mp.Destination == v.Path && mp.Type == "volume" }) {
			errorf("no volume at %s", v.Path)
		}
	}
	// enforce caps the learned CPU limit at this host's CPUs (Docker refuses more).
	cpus, _ := profiles.CapNanoCPUs(h.NanoCPUs, runtime.NumCPU())
	if hc.Memory != h.Memory || hc.PidsLimit == nil || *hc.PidsLimit != h.PidsLimit || hc.NanoCPUs != cpus {
		errorf("limits memory %d pids %v cpus %d, want %d %d %d", hc.Memory, hc.PidsLimit, hc.NanoCPUs, h.Memory, h.PidsLimit, cpus)
	}
	if !slices.Contains(hc.SecurityOpt, "no-new-privileges") {
		errorf("security options %v lack no-new-privileges", hc.SecurityOpt)
	}
	// Without a user part the copy keeps the original's (redis' image runs as redis).
	if h.User != "" && cfg.User != h.User {
		errorf("user %q, want %q", cfg.User, h.User)
	}
	for _, p := range h.Ports {
		for _, b := range hc.PortBindings[nat.Port(p.ContainerPort)] {
			if b.HostIP != "127.0.0.1" {
				errorf("port %s published on %q", p.ContainerPort, b.HostIP)
			}
		}
	}
	if h.NetworkNone && !hc.NetworkMode.IsNone() {
		errorf("network mode %q, want none", hc.NetworkMode)
	}
}

// TestNginxHardened: the nginx container learned, then served three times by tailor
// enforce --container with its profiles and the full hardened run configuration.
func TestNginxHardened(t *testing.T) {
	requireTools(t, append(nginxTools, "nsenter")...)
	dockertest.Daemon(t)
	out := runExample(t, "nginx", "hardened")
	checkHardened(t, "nginx", out, wrkClean)
}

// TestRedisHardened: the same for redis.
func TestRedisHardened(t *testing.T) {
	requireTools(t, append(redisTools, "nsenter")...)
	dockertest.Daemon(t)
	out := runExample(t, "redis", "hardened")
	checkHardened(t, "redis", out, redisAnswered)
}
