package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// CleanupStale force-removes copies whose owning tailor process is gone (killed before
// it could remove them) and returns their names, sorted. A copy's owner is alive when
// a process with the LabelOwnerPid pid exists and started at the LabelOwnerStart
// time; copies of live runs are left alone. Pids are those of the host pid namespace,
// so tailor must not run in a pid namespace of its own.
func (c *Client) CleanupStale(ctx context.Context) ([]string, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelOwnerPid))})
	if err != nil {
		return nil, c.apiError("listing tailor's copies", err)
	}
	var removed []string
	var errs []error
	for _, ctr := range list {
		if ownerAlive(ctr.Labels[LabelOwnerPid], ctr.Labels[LabelOwnerStart]) {
			continue
		}
		err := c.api.ContainerRemove(ctx, ctr.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, c.apiError(fmt.Sprintf("removing stale copy %s", shortID(ctr.ID)), err))
			continue
		}
		name := shortID(ctr.ID)
		if len(ctr.Names) > 0 {
			name = strings.TrimPrefix(ctr.Names[0], "/")
		}
		removed = append(removed, name)
	}
	sort.Strings(removed)
	return removed, errors.Join(errs...)
}

// ownerAlive reports whether the process a copy's labels name still runs. A label
// that is not a pid names no process.
func ownerAlive(pidLabel, startLabel string) bool {
	pid, err := strconv.Atoi(pidLabel)
	if err != nil || pid <= 0 {
		return false
	}
	start, err := procStart(pid)
	if err != nil {
		return false
	}
	return startLabel == "" || start == startLabel
}

// procStart is the start time of pid in clock ticks since boot (field 22 of
// /proc/PID/stat): together with the pid it names one process, even after the pid is
// reused.
func procStart(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces and parentheses: count fields from
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return f[19], nil
}
