package learn

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// processUser reads the real uid and gid and the supplementary groups of pid.
func processUser(pid int) (*profiles.RunUser, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, fmt.Errorf("reading the credentials of pid %d: %w", pid, err)
	}
	u := &profiles.RunUser{}
	field := func(line, key string) []uint32 {
		v, ok := strings.CutPrefix(line, key)
		if !ok {
			return nil
		}
		var out []uint32
		for _, f := range strings.Fields(v) {
			if n, err := strconv.ParseUint(f, 10, 32); err == nil {
				out = append(out, uint32(n))
			}
		}
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v := field(line, "Uid:"); len(v) > 0 {
			u.UID = v[0]
		}
		if v := field(line, "Gid:"); len(v) > 0 {
			u.GID = v[0]
		}
		if strings.HasPrefix(line, "Groups:") {
			u.Groups = field(line, "Groups:")
		}
	}
	return u, nil
}

// changedPaths lists the paths a recording's files changed, for sizing the written
// directories.
func changedPaths(files []profiles.FileAccess) []string {
	var out []string
	for _, f := range files {
		if !f.Dir && hasChange(f.Access) {
			out = append(out, f.Path)
		}
	}
	return out
}

func hasChange(access []string) bool {
	for _, a := range access {
		for _, k := range profiles.ChangeKinds {
			if a == k {
				return true
			}
		}
	}
	return false
}

// observeLocal adds what a local command's recording tells of its run: the
// directories it wrote in (a local command has no mounts of its own to place them on).
func observeLocal(rec *profiles.Recording) {
	if dirs := profiles.WrittenDirs(rec.Files); len(dirs) > 0 {
		rec.Observed = &profiles.Observed{WrittenDirs: dirs}
	}
}
