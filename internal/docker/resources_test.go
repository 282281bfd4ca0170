package docker

import (
	"os"
	"path/filepath"
	"testing"
)

// writeFiles makes a fake cgroup tree under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCgroupV2: with the memory controller in the unified hierarchy the peaks come
// from memory.peak, pids.peak and cpu.stat (this machine's Docker uses v1, so v2 is
// checked on a fake tree).
func TestCgroupV2(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"docker/abc/memory.current": "1000\n", "docker/abc/memory.peak": "5000\n",
		"docker/abc/pids.current": "2\n", "docker/abc/pids.peak": "7\n",
		"docker/abc/cpu.stat": "usage_usec 1500\nuser_usec 1000\n",
	})
	f, err := probeCgroup("0::/docker/abc\n", map[string]string{"": root})
	if err != nil {
		t.Fatal(err)
	}
	s := startSampler(f)
	r := s.Stop()
	if r.Cgroup != "v2" || r.MemoryPeak != 5000 || r.TasksPeak != 7 || r.TasksSampled || r.CPUNanos != 1_500_000 || r.Samples == 0 {
		t.Errorf("v2 resources %+v", r)
	}
}

// TestCgroupV1: without the memory controller in the unified hierarchy (Docker's
// cgroupfs driver on a hybrid host, as here) the v1 hierarchies are read, and the
// task count is sampled since v1 keeps no peak.
func TestCgroupV1(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"unified/docker/abc/cgroup.procs":             "1\n",
		"memory/docker/abc/memory.max_usage_in_bytes": "9000\n",
		"pids/docker/abc/pids.current":                "3\n",
		"cpuacct/docker/abc/cpuacct.usage":            "42000\n",
	})
	mounts := map[string]string{"": filepath.Join(root, "unified"), "memory": filepath.Join(root, "memory"),
		"pids": filepath.Join(root, "pids"), "cpu": filepath.Join(root, "cpu"), "cpuacct": filepath.Join(root, "cpuacct")}
	f, err := probeCgroup("12:pids:/docker/abc\n5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n", mounts)
	if err != nil {
		t.Fatal(err)
	}
	s := startSampler(f)
	// A later, higher task count is kept; a lower one does not lower the peak.
	writeFiles(t, root, map[string]string{"pids/docker/abc/pids.current": "5\n"})
	s.sample()
	writeFiles(t, root, map[string]string{"pids/docker/abc/pids.current": "1\n"})
	r := s.Stop()
	if r.Cgroup != "v1" || r.MemoryPeak != 9000 || r.TasksPeak != 5 || !r.TasksSampled || r.CPUNanos != 42000 {
		t.Errorf("v1 resources %+v", r)
	}
	if _, err := probeCgroup("0::/\n", map[string]string{}); err == nil {
		t.Error("no hierarchy at all gave no error")
	}
}
