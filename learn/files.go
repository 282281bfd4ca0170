package learn

import (
	"path"
	"slices"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/profiles"
)

// CollapseAt bounds tailor's memory while learning: when more than this many distinct
// files (not directories) directly in one directory have been recorded, the directory
// collapses. Its files are merged into one entry (profiles.FileAccess.Collapsed: the
// directory's path, the union of the access kinds, the number of observations merged:
// each event of the tracer about one of its files is one)
// and every later file directly in it joins that entry instead of taking memory of its
// own. Nothing is dropped: every observation is in some entry, and the generator turns
// a collapsed entry into one "directory/*" rule with the union of its access. A target
// that writes a million distinct files (a cache, a spool, a flood) is therefore
// recorded in memory proportional to its directories, not to its files; the normal
// targets tailor learns have nowhere near 4096 files read or written in one directory.
const CollapseAt = 4096

// fileObs is what was seen of one path. Access kinds are kept as the tracer's bits,
// not names, so that an entry costs a few words besides its path.
type fileObs struct {
	access uint32 // bpf.Acc* bits of the path opened (resolved from struct file)
	ops1   uint32 // bpf.Acc* bits of path operations naming it first
	ops2   uint32 // bpf.Acc* bits of path operations naming it second (a new name)
	dir    bool
	// seen counts the observations of the path, so that a collapse keeps the count.
	seen uint32
	// merged is non-zero for a collapsed directory's entry: the observations merged.
	merged uint64
}

// kinds returns the access kind names of an entry, as the recording spells them.
func (f *fileObs) kinds() []string {
	access, _ := bpf.AccessKinds(f.access)
	k1, _ := bpf.AccessKinds(f.ops1)
	_, k2 := bpf.AccessKinds(f.ops2)
	for _, k := range append(k1, k2...) {
		if !slices.Contains(access, k) {
			access = append(access, k)
		}
	}
	return access
}

// fileStore is the session's files: one entry per distinct path, until a directory
// collapses (CollapseAt).
type fileStore struct {
	files map[string]*fileObs
	// children counts the non-directory entries directly in each directory.
	children map[string]int
	// collapsed holds the merged entry of each collapsed directory.
	collapsed map[string]*fileObs
}

func newFileStore() fileStore {
	return fileStore{files: map[string]*fileObs{}, children: map[string]int{}, collapsed: map[string]*fileObs{}}
}

// get returns the entry that records an observation of p; dir says the observation
// is of a directory (directories never collapse into their parent). Each call is one
// observation.
func (fs *fileStore) get(p string, dir bool) *fileObs {
	if f := fs.files[p]; f != nil {
		f.seen++
		return f
	}
	parent := path.Dir(p)
	if c := fs.collapsed[parent]; c != nil && !dir {
		c.merged++
		return c
	}
	f := &fileObs{dir: dir, seen: 1}
	fs.files[p] = f
	if !dir {
		fs.children[parent]++
		if fs.children[parent] > CollapseAt {
			fs.collapse(parent)
			return fs.collapsed[parent]
		}
	}
	return f
}

// collapse merges the non-directory entries directly in dir into one.
func (fs *fileStore) collapse(dir string) {
	c := &fileObs{}
	for p, f := range fs.files {
		if f.dir || path.Dir(p) != dir {
			continue
		}
		c.access |= f.access
		c.ops1 |= f.ops1
		c.ops2 |= f.ops2
		c.merged += uint64(f.seen)
		delete(fs.files, p)
	}
	delete(fs.children, dir)
	fs.collapsed[dir] = c
}

// len is the number of entries the recording will have.
func (fs *fileStore) len() int { return len(fs.files) + len(fs.collapsed) }

// entries returns the recording's file entries.
func (fs *fileStore) entries() []profiles.FileAccess {
	out := make([]profiles.FileAccess, 0, fs.len())
	for p, f := range fs.files {
		out = append(out, profiles.FileAccess{Path: p, Access: f.kinds(), Dir: f.dir})
	}
	for dir, c := range fs.collapsed {
		out = append(out, profiles.FileAccess{Path: dir, Access: c.kinds(), Collapsed: c.merged})
	}
	return out
}

// failKey is one failed file operation: the path and the errno's name.
type failKey struct{ path, errno string }

// failStore is the session's failed attempts, one entry per (path, errno) until the
// attempts with one errno on files directly in one directory pass CollapseAt: those
// then collapse like files (profiles.FailedAccess.Collapsed).
type failStore struct {
	failed    map[failKey]uint32 // bpf.Acc* bits
	children  map[failKey]int    // (directory, errno) -> entries directly in it
	collapsed map[failKey]*fileObs
}

func newFailStore() failStore {
	return failStore{failed: map[failKey]uint32{}, children: map[failKey]int{}, collapsed: map[failKey]*fileObs{}}
}

// add records one failed attempt of access on p with errno.
func (fs *failStore) add(p, errno string, access uint32) {
	k := failKey{p, errno}
	if _, ok := fs.failed[k]; ok {
		fs.failed[k] |= access
		return
	}
	dk := failKey{path.Dir(p), errno}
	if c := fs.collapsed[dk]; c != nil {
		c.access |= access
		c.merged++
		return
	}
	fs.failed[k] = access
	fs.children[dk]++
	if fs.children[dk] <= CollapseAt {
		return
	}
	c := &fileObs{}
	for k, a := range fs.failed {
		if k.errno == errno && path.Dir(k.path) == dk.path {
			c.access |= a
			c.merged++
			delete(fs.failed, k)
		}
	}
	delete(fs.children, dk)
	fs.collapsed[dk] = c
}

// entries returns the recording's failed attempts.
func (fs *failStore) entries() []profiles.FailedAccess {
	out := make([]profiles.FailedAccess, 0, len(fs.failed)+len(fs.collapsed))
	for k, access := range fs.failed {
		kinds, second := bpf.AccessKinds(access)
		out = append(out, profiles.FailedAccess{Path: k.path, Errno: k.errno, Access: append(kinds, second...)})
	}
	for k, c := range fs.collapsed {
		kinds, second := bpf.AccessKinds(c.access)
		out = append(out, profiles.FailedAccess{Path: k.path, Errno: k.errno, Access: append(kinds, second...), Collapsed: c.merged})
	}
	return out
}
