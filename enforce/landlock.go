package enforce

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

// pathRule is one Landlock path-beneath rule: access granted on Path and, when Path
// is a directory, everything beneath it.
type pathRule struct {
	Path   string               `json:"path"`
	Access landlock.AccessFSSet `json:"access"`
	// Widened names the bundle patterns this rule grants more than, because Landlock
	// has no globs and cannot name a file that does not exist yet.
	Widened []string `json:"widened,omitempty"`
}

// handledFS are the file rights enforcement restricts: every right up to Landlock
// ABI 5 (ioctl on devices). Later ABIs restrict UNIX socket connects (ABI 9), which a
// recording does not describe; best effort drops what the kernel lacks.
var handledFS = landlock.V5.HandledAccessFS

// fileRights are the rights Landlock accepts on a rule for a non-directory.
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// createRights let a process make (and remove again: recordings have no delete kind)
// entries beneath a directory.
const createRights = ll.AccessFSMakeReg | ll.AccessFSMakeDir | ll.AccessFSMakeSym | ll.AccessFSMakeFifo |
	ll.AccessFSMakeSock | ll.AccessFSRemoveFile | ll.AccessFSRemoveDir

var accessRights = map[string]landlock.AccessFSSet{
	profiles.AccessRead:     ll.AccessFSReadFile | ll.AccessFSReadDir,
	profiles.AccessList:     ll.AccessFSReadDir,
	profiles.AccessWrite:    ll.AccessFSWriteFile | ll.AccessFSTruncate,
	profiles.AccessCreate:   createRights,
	profiles.AccessExec:     ll.AccessFSExecute | ll.AccessFSReadFile,
	profiles.AccessMmapExec: ll.AccessFSExecute | ll.AccessFSReadFile,
}

// apparmorVars are the AppArmor variables with one fixed value; other variables
// (@{pid}, @{HOME}) stand for many paths and are treated as globs.
var apparmorVars = strings.NewReplacer("@{PROC}", "/proc/", "@{sys}", "/sys/")

// globChars start an AppArmor glob, alternation or variable.
const globChars = "*?[]{}@^"

// anchor returns the path a Landlock rule for an AppArmor pattern is attached to: the
// pattern itself when it has no glob, otherwise its longest leading run of whole path
// components without glob characters. widened is false for an exact path and for
// "DIR/**", which means exactly what a rule on DIR means in Landlock.
func anchor(pattern string) (p string, widened bool) {
	pattern = path.Clean(apparmorVars.Replace(pattern))
	i := strings.IndexAny(pattern, globChars)
	if i < 0 {
		return pattern, false
	}
	// The directory holding the first glob component, and what follows it.
	prefix := pattern[:strings.LastIndex(pattern[:i], "/")]
	rest := pattern[len(prefix):]
	if prefix == "" {
		prefix = "/"
	}
	return prefix, rest != "/**"
}

// landlockRules turns a bundle's file rules and execs into Landlock rules, merged per
// path and sorted. It is pure: whether a path exists or is a directory is decided when
// the rules are applied.
func landlockRules(files []profiles.FileRule, execs []string) ([]pathRule, error) {
	byPath := map[string]*pathRule{}
	add := func(p string, access landlock.AccessFSSet, widenedFrom string) {
		if strings.HasPrefix(p, "/dev/") {
			// Terminals and other devices opened by path need their ioctls.
			access |= ll.AccessFSIoctlDev
		}
		r := byPath[p]
		if r == nil {
			r = &pathRule{Path: p}
			byPath[p] = r
		}
		r.Access |= access
		if widenedFrom != "" && !slices.Contains(r.Widened, widenedFrom) {
			r.Widened = append(r.Widened, widenedFrom)
		}
	}
	for _, f := range files {
		if !strings.HasPrefix(apparmorVars.Replace(f.Pattern), "/") {
			return nil, fmt.Errorf("file rule %q is not an absolute path", f.Pattern)
		}
		p, widened := anchor(f.Pattern)
		var access landlock.AccessFSSet
		create := false
		for _, a := range f.Access {
			r, ok := accessRights[a]
			if !ok {
				return nil, fmt.Errorf("file rule %q: unknown access kind %q", f.Pattern, a)
			}
			access |= r
			create = create || a == profiles.AccessCreate
		}
		if create && !widened {
			// A file that is created does not exist yet, and Landlock attaches rules
			// to existing inodes: grant on the directory it is created in.
			p, widened = path.Dir(p), true
		}
		from := ""
		if widened {
			from = f.Pattern
		}
		add(p, access, from)
	}
	for _, e := range execs {
		if !strings.HasPrefix(e, "/") {
			return nil, fmt.Errorf("exec rule %q is not an absolute path", e)
		}
		p, widened := anchor(e)
		from := ""
		if widened {
			from = e
		}
		add(p, accessRights[profiles.AccessExec], from)
	}
	out := make([]pathRule, 0, len(byPath))
	for _, r := range byPath {
		slices.Sort(r.Widened)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b pathRule) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// applyLandlock restricts the calling process (all its threads) to rules. Rules on
// non-directories keep only the rights Landlock allows on files; a path that vanished
// since the parent checked it is skipped (it cannot be opened then either).
func applyLandlock(rules []pathRule) error {
	var lr []landlock.Rule
	for _, r := range rules {
		access := r.Access
		fi, err := os.Stat(r.Path)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			access &= fileRights
		}
		lr = append(lr, landlock.PathAccess(access, r.Path).IgnoreIfMissing())
	}
	cfg, err := landlock.NewConfig(handledFS)
	if err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	if err := cfg.BestEffort().RestrictPaths(lr...); err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	return nil
}
