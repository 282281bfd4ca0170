package docker

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailor-sec/tailor/profiles"
)

// SampleInterval is how often a CgroupSampler reads its cgroup. The peaks it reports
// come from the kernel's own peak counters where they exist (v1 memory, v2 memory and
// pids); only what has no peak counter (v1 pids) depends on this interval.
const SampleInterval = 100 * time.Millisecond

// cgroupFiles are the files a sampler reads in one hierarchy. Empty means absent.
type cgroupFiles struct {
	version string
	// memPeak is a peak counter; memCurrent is sampled when there is none.
	memPeak, memCurrent string
	pidsPeak, pidsCur   string
	// cpu is v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec line).
	cpu string
}

// CgroupSampler follows the peaks of one process's cgroup while it runs: the cgroup
// disappears with the container, so the last reading before it stops is what stays.
type CgroupSampler struct {
	files cgroupFiles
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	res   profiles.Resources
}

// SampleCgroup starts sampling the cgroup of pid (a container's init), cgroup v2 where
// its memory controller is there, else v1.
func SampleCgroup(pid int) (*CgroupSampler, error) {
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, fmt.Errorf("reading the cgroup of pid %d: %w", pid, err)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	files, err := probeCgroup(string(cg), mounts)
	if err != nil {
		return nil, err
	}
	return startSampler(files), nil
}

// startSampler samples files from now on.
func startSampler(files cgroupFiles) *CgroupSampler {
	s := &CgroupSampler{files: files, stop: make(chan struct{}), done: make(chan struct{})}
	s.res = profiles.Resources{Cgroup: files.version, SampleInterval: SampleInterval, TasksSampled: files.pidsPeak == ""}
	s.sample()
	go s.loop()
	return s
}

func (s *CgroupSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

// sample reads every file once; a file gone (the cgroup removed) leaves the last values.
func (s *CgroupSampler) sample() {
	f := s.files
	s.mu.Lock()
	defer s.mu.Unlock()
	read := func(path string) (uint64, bool) {
		if path == "" {
			return 0, false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v, err == nil
	}
	ok := false
	if v, got := read(f.memPeak); got {
		s.res.MemoryPeak, ok = max(s.res.MemoryPeak, v), true
	} else if v, got := read(f.memCurrent); got {
		s.res.MemoryPeak, ok = max(s.res.MemoryPeak, v), true
	}
	if v, got := read(f.pidsPeak); got {
		s.res.TasksPeak = max(s.res.TasksPeak, v)
	} else if v, got := read(f.pidsCur); got {
		s.res.TasksPeak = max(s.res.TasksPeak, v)
	}
	if f.version == "v1" {
		if v, got := read(f.cpu); got {
			s.res.CPUNanos = max(s.res.CPUNanos, v)
		}
	} else if v, got := cpuStatUsage(f.cpu); got {
		s.res.CPUNanos = max(s.res.CPUNanos, v*1000)
	}
	if ok {
		s.res.Samples++
	}
}

// cpuStatUsage reads usage_usec from a v2 cpu.stat.
func cpuStatUsage(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// Stop takes a last sample, ends sampling and returns the peaks. Call it while the
// cgroup still exists (before the container stops) for the CPU time to be whole; a
// later call returns the same peaks.
func (s *CgroupSampler) Stop() *profiles.Resources {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.sample()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	return &r
}

// probeCgroup finds the files of the cgroup a /proc/PID/cgroup text names, given the
// hierarchies' mount points (cgroupMounts): v2 when the unified hierarchy has the
// memory controller in that cgroup, v1 otherwise.
func probeCgroup(cg string, mounts map[string]string) (cgroupFiles, error) {
	paths := map[string]string{} // controller ("" for v2) -> path in its hierarchy
	for _, line := range strings.Split(strings.TrimSpace(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			paths[c] = parts[2]
		}
	}
	exists := func(p string) string {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		return ""
	}
	if root, ok := mounts[""]; ok {
		if p, ok := paths[""]; ok {
			dir := filepath.Join(root, p)
			if exists(filepath.Join(dir, "memory.current")) != "" {
				return cgroupFiles{version: "v2",
					memPeak: exists(filepath.Join(dir, "memory.peak")), memCurrent: filepath.Join(dir, "memory.current"),
					pidsPeak: exists(filepath.Join(dir, "pids.peak")), pidsCur: exists(filepath.Join(dir, "pids.current")),
					cpu: exists(filepath.Join(dir, "cpu.stat"))}, nil
			}
		}
	}
	dir := func(ctrl string) string {
		root, ok := mounts[ctrl]
		p, ok2 := paths[ctrl]
		if !ok || !ok2 {
			return ""
		}
		return filepath.Join(root, p)
	}
	mem, pids, cpu := dir("memory"), dir("pids"), dir("cpuacct")
	if mem == "" && pids == "" && cpu == "" {
		return cgroupFiles{}, errors.New("no cgroup v2 memory controller and no v1 memory, pids or cpuacct hierarchy for the container")
	}
	f := cgroupFiles{version: "v1"}
	if mem != "" {
		f.memPeak = exists(filepath.Join(mem, "memory.max_usage_in_bytes"))
	}
	if pids != "" {
		f.pidsCur = exists(filepath.Join(pids, "pids.current"))
	}
	if cpu != "" {
		f.cpu = exists(filepath.Join(cpu, "cpuacct.usage"))
	}
	return f, nil
}

// cgroupMounts maps each v1 controller to its hierarchy's mount point, and "" to the
// cgroup2 mount, from /proc/self/mountinfo.
func cgroupMounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			out[""] = fields[4]
		case "cgroup":
			for _, o := range strings.Split(tail[2], ",") {
				out[o] = fields[4]
			}
		}
	}
	return out, sc.Err()
}
