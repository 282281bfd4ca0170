package profiles

import (
	"fmt"
	"slices"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// LandlockPlan is what local enforcement grants with Landlock. generate computes it
// from the bundle's file rules, execs and network use (a pure function, no host file
// read); enforce applies it as written, skipping paths that do not exist at start.
// Landlock has no globs and attaches a right on a directory to everything beneath
// it, so the plan records, rule by rule, where it grants more than the bundle's
// rules say.
type LandlockPlan struct {
	// Paths are path-beneath rules, sorted by path, one per path.
	Paths []LandlockPath `json:"paths"`
	// TCP are the ports the target may bind and connect to (Landlock ABI 4+). TCP
	// bind and connect are always restricted: a target that used no TCP gets none.
	TCP LandlockTCP `json:"tcp"`
	// NotEnforced says what the profile allows or denies that Landlock cannot
	// express (attribute changes, addresses, unix socket connects), one line each.
	NotEnforced []string `json:"notEnforced"`
	// Denied says what the target did while learning that the plan may still refuse,
	// because granting it would reach sensitive files, one line each.
	Denied []string `json:"denied"`
}

// LandlockPath is one Landlock rule: rights on Path and, for a directory, on
// everything beneath it.
type LandlockPath struct {
	Path string `json:"path"`
	// Access are Landlock's names of the rights (read_file, make_reg...), in the
	// kernel's bit order.
	Access []string `json:"access"`
	// Covers are the bundle file patterns and execs this rule implements, sorted.
	Covers []string `json:"covers"`
	// Widened says, for each covered rule the path grants more than, which rights
	// reach beyond it and why. Empty when the rule grants exactly what it covers.
	Widened []LandlockWidening `json:"widened,omitempty"`
}

// LandlockWidening is one bundle rule for which a Landlock rule grants Access on a
// whole directory (everything beneath it) instead of on the rule's own paths.
type LandlockWidening struct {
	Rule   string   `json:"rule"`
	Access []string `json:"access"`
	Reason string   `json:"reason"`
}

// LandlockTCP lists the TCP ports of Landlock's port rules, sorted and unique.
// Landlock filters by port only: a port is allowed towards every address.
type LandlockTCP struct {
	Bind    []uint16 `json:"bind"`
	Connect []uint16 `json:"connect"`
}

// LandlockRightNames names the rights in a, in the kernel's bit order, with
// go-landlock's spelling (the kernel's LANDLOCK_ACCESS_FS_* names in lowercase).
func LandlockRightNames(a landlock.AccessFSSet) []string {
	names := []string{}
	for i := range 64 {
		if bit := landlock.AccessFSSet(1) << i; a&bit != 0 {
			names = append(names, rightName(bit))
		}
	}
	return names
}

// rightName is go-landlock's name for one right ("{read_file}" without braces).
func rightName(bit landlock.AccessFSSet) string {
	return strings.Trim(bit.String(), "{}")
}

// ParseLandlockRights turns right names back into a set, refusing a name this build
// of go-landlock does not know.
func ParseLandlockRights(names []string) (landlock.AccessFSSet, error) {
	var a landlock.AccessFSSet
	for _, n := range names {
		found := false
		for i := range 64 {
			bit := landlock.AccessFSSet(1) << i
			if name := rightName(bit); !strings.HasPrefix(name, "1<<") && name == n {
				a |= bit
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown Landlock right %q", n)
		}
	}
	return a, nil
}

// WideningLines renders the widenings of the plan grouped by path and reason, one
// line each: the path, the rights it gets beneath it, the bundle rules that need them
// and why. At most max rules are named per line (all when max <= 0); the rest are
// counted, and bundle.json lists them all.
func (p LandlockPlan) WideningLines(max int) []string {
	lines := []string{}
	for _, r := range p.Paths {
		var reasons []string
		access := map[string]landlock.AccessFSSet{}
		rules := map[string][]string{}
		for _, w := range r.Widened {
			if _, ok := access[w.Reason]; !ok {
				reasons = append(reasons, w.Reason)
			}
			a, _ := ParseLandlockRights(w.Access)
			access[w.Reason] |= a
			rules[w.Reason] = append(rules[w.Reason], w.Rule)
		}
		slices.Sort(reasons)
		for _, why := range reasons {
			names := rules[why]
			list := strings.Join(names, ", ")
			if max > 0 && len(names) > max {
				list = fmt.Sprintf("%s and %d more (bundle.json lists them)", strings.Join(names[:max], ", "), len(names)-max)
			}
			lines = append(lines, fmt.Sprintf("%s gets %s beneath it for %s (%s)", r.Path, strings.Join(LandlockRightNames(access[why]), ", "), list, why))
		}
	}
	return lines
}

// String says which TCP ports the plan allows.
func (t LandlockTCP) String() string {
	list := func(ports []uint16) string {
		if len(ports) == 0 {
			return "none"
		}
		s := make([]string, len(ports))
		for i, p := range ports {
			s[i] = fmt.Sprint(p)
		}
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("bind to ports %s; connect to ports %s (to any address: Landlock filters TCP by port only)", list(t.Bind), list(t.Connect))
}

// Rights on the object itself, per access kind, for a file and for a directory.
// read on a file is read_file only and on a directory read_dir only: read_file on a
// directory would let the target read every file beneath it.
var (
	landlockFileRights = map[string]landlock.AccessFSSet{
		AccessRead:     ll.AccessFSReadFile,
		AccessList:     ll.AccessFSReadDir,
		AccessWrite:    ll.AccessFSWriteFile | ll.AccessFSTruncate,
		AccessExec:     ll.AccessFSExecute | ll.AccessFSReadFile,
		AccessMmapExec: ll.AccessFSExecute | ll.AccessFSReadFile,
		// Landlock has no chmod/chown/utimes right; truncate by path is its
		// truncate right.
		AccessSetattr: ll.AccessFSTruncate,
	}
	landlockDirRights = map[string]landlock.AccessFSSet{
		AccessRead:     ll.AccessFSReadDir,
		AccessList:     ll.AccessFSReadDir,
		AccessWrite:    ll.AccessFSWriteFile | ll.AccessFSTruncate, // O_TMPFILE
		AccessExec:     ll.AccessFSExecute | ll.AccessFSReadFile,
		AccessMmapExec: ll.AccessFSExecute | ll.AccessFSReadFile,
	}
)

// Rights on the parent directory, per access kind: what making, removing or
// renaming a name there needs. mknod cannot tell a FIFO from a socket or a device:
// FIFO and socket are granted, character and block devices never (making one needs
// CAP_MKNOD, which a learned profile does not keep for that). A rename may replace
// an existing name, so rename-to also gets the remove right.
var (
	landlockFileParentRights = map[string]landlock.AccessFSSet{
		AccessCreate:     ll.AccessFSMakeReg,
		AccessSymlink:    ll.AccessFSMakeSym,
		AccessMknod:      ll.AccessFSMakeFifo | ll.AccessFSMakeSock,
		AccessBind:       ll.AccessFSMakeSock,
		AccessDelete:     ll.AccessFSRemoveFile,
		AccessRenameFrom: ll.AccessFSRemoveFile,
		AccessRenameTo:   ll.AccessFSMakeReg | ll.AccessFSRemoveFile,
		AccessLinkTo:     ll.AccessFSMakeReg,
	}
	landlockDirParentRights = map[string]landlock.AccessFSSet{
		AccessMkdir: ll.AccessFSMakeDir,
		// A directory recorded as created (schema 1 had no mkdir kind) was made by mkdir.
		AccessCreate:     ll.AccessFSMakeDir,
		AccessRmdir:      ll.AccessFSRemoveDir,
		AccessRenameFrom: ll.AccessFSRemoveDir,
		AccessRenameTo:   ll.AccessFSMakeDir | ll.AccessFSRemoveDir,
	}
)

// LandlockRights returns the Landlock rights an access kind needs on the path itself
// (own) and on the directory holding it (parent), for a file or a directory: generate
// grants them in the Landlock plan, and the watcher asks whether the rules applied
// grant them when the kernel refused an operation.
func LandlockRights(kind string, dir bool) (own, parent landlock.AccessFSSet) {
	if dir {
		return landlockDirRights[kind], landlockDirParentRights[kind]
	}
	return landlockFileRights[kind], landlockFileParentRights[kind]
}
