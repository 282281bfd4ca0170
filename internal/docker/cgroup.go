package docker

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// CgroupProcesses lists, sorted, the host pids whose cgroup names the container id
// (cgroupfs "/docker/<id>" or systemd "docker-<id>.scope", v1 or v2).
func CgroupProcesses(id string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue // gone between listing and reading
		}
		if inContainerCgroup(string(b), id) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// inContainerCgroup reports whether a /proc/PID/cgroup text puts the process in the
// container's cgroup.
func inContainerCgroup(cgroups, id string) bool {
	for _, line := range strings.Split(cgroups, "\n") {
		i := strings.LastIndexByte(line, ':')
		if i < 0 {
			continue
		}
		base := filepath.Base(line[i+1:])
		if base == id || base == "docker-"+id+".scope" {
			return true
		}
	}
	return false
}
