package profiles

import (
	"path"
	"slices"
	"strings"
)

// ChangeKinds are the access kinds that change a directory's contents or a file in
// it: a target that used any of them on a path needs that path's directory writable.
var ChangeKinds = []string{
	AccessBind, AccessCreate, AccessDelete, AccessLinkTo, AccessMkdir, AccessMknod,
	AccessRenameFrom, AccessRenameTo, AccessRmdir, AccessSetattr, AccessSymlink, AccessWrite,
}

// kernelFS are the file systems a container runtime mounts whatever the image or the
// run flags say: a read-only root leaves them as they are, so writes there are no
// reason for a tmpfs.
var kernelFS = []string{"/dev", "/proc", "/sys"}

// WrittenDirs lists, sorted, the directories the files changed in: the parent
// directory of every path with a change kind, outside /dev, /proc and /sys. Files
// counts the paths changed in each; Mount and Bytes are left for the learner, which
// knows the container's mounts and file system.
func WrittenDirs(files []FileAccess) []WrittenDir {
	count := map[string]int{}
	for _, f := range files {
		if !slices.ContainsFunc(f.Access, func(a string) bool { return slices.Contains(ChangeKinds, a) }) {
			continue
		}
		if !strings.HasPrefix(f.Path, "/") || UnderAny(f.Path, kernelFS) {
			continue
		}
		count[path.Dir(f.Path)]++
	}
	dirs := make([]WrittenDir, 0, len(count))
	for d, n := range count {
		dirs = append(dirs, WrittenDir{Path: d, Files: n})
	}
	slices.SortFunc(dirs, func(a, b WrittenDir) int { return strings.Compare(a.Path, b.Path) })
	return dirs
}

// UnderAny reports whether p is one of dirs or lies below one of them.
func UnderAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if Under(p, d) {
			return true
		}
	}
	return false
}

// Under reports whether p is dir or lies below it.
func Under(p, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// mergeObserved combines the observed sections of several runs: the written
// directories are united (the larger size and count kept), the peaks are the highest,
// and the user is the first run's. Nil when no run has one.
func mergeObserved(recs []*Recording) *Observed {
	var out *Observed
	dirs := map[string]WrittenDir{}
	for _, r := range recs {
		o := r.Observed
		if o == nil {
			continue
		}
		if out == nil {
			out = &Observed{}
		}
		for _, d := range o.WrittenDirs {
			if have, ok := dirs[d.Path]; ok {
				d.Bytes, d.Files = max(d.Bytes, have.Bytes), max(d.Files, have.Files)
			}
			dirs[d.Path] = d
		}
		if out.User == nil && o.User != nil {
			u := *o.User
			u.Groups = slices.Clone(u.Groups)
			out.User = &u
		}
		if res := o.Resources; res != nil {
			if out.Resources == nil {
				c := *res
				out.Resources = &c
				continue
			}
			m := out.Resources
			m.MemoryPeak, m.TasksPeak, m.CPUNanos = max(m.MemoryPeak, res.MemoryPeak), max(m.TasksPeak, res.TasksPeak), max(m.CPUNanos, res.CPUNanos)
			m.TasksSampled = m.TasksSampled || res.TasksSampled
			m.Samples += res.Samples
		}
	}
	if out != nil {
		for _, d := range dirs {
			out.WrittenDirs = append(out.WrittenDirs, d)
		}
		slices.SortFunc(out.WrittenDirs, func(a, b WrittenDir) int { return strings.Compare(a.Path, b.Path) })
	}
	return out
}
