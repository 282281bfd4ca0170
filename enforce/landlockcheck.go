package enforce

import (
	"os"
	"path"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

// landlockCheck answers, for the watcher, what a Landlock ruleset made of rules
// grants: within one ruleset the rights of every rule on a file or on a directory
// above it add up, and a right the ruleset does not handle is never refused.
type landlockCheck []pathRule

// appliedLandlock is the check for the rules the launcher applies: a rule on a path
// missing now is skipped there (Landlock attaches rules to existing inodes), so it
// grants nothing here either.
func appliedLandlock(rules []pathRule) landlockCheck {
	var out landlockCheck
	for _, r := range rules {
		if _, err := os.Stat(r.Path); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// needs are the Landlock rights an access kind asks for, on the file itself and on
// the directory holding it (creating, removing and renaming are rights of the parent).
func needs(kind string, dir bool, syscall string) (self, parent landlock.AccessFSSet) {
	switch kind {
	case profiles.AccessRead:
		if dir {
			return ll.AccessFSReadDir, 0
		}
		return ll.AccessFSReadFile, 0
	case profiles.AccessList:
		return ll.AccessFSReadDir, 0
	case profiles.AccessWrite:
		return ll.AccessFSWriteFile, 0
	case profiles.AccessExec:
		return ll.AccessFSExecute, 0
	case profiles.AccessSetattr:
		if strings.HasPrefix(syscall, "truncate") {
			return ll.AccessFSTruncate, 0
		}
		return 0, 0 // chmod, chown and utimes are not Landlock rights
	case profiles.AccessCreate, profiles.AccessLinkTo:
		return 0, ll.AccessFSMakeReg
	case profiles.AccessMkdir:
		return 0, ll.AccessFSMakeDir
	case profiles.AccessSymlink:
		return 0, ll.AccessFSMakeSym
	case profiles.AccessBind:
		return 0, ll.AccessFSMakeSock
	case profiles.AccessMknod:
		return 0, ll.AccessFSMakeFifo
	case profiles.AccessDelete:
		return 0, ll.AccessFSRemoveFile
	case profiles.AccessRmdir:
		return 0, ll.AccessFSRemoveDir
	case profiles.AccessRenameFrom:
		if dir {
			return 0, ll.AccessFSRemoveDir
		}
		return 0, ll.AccessFSRemoveFile
	case profiles.AccessRenameTo:
		if dir {
			return 0, ll.AccessFSMakeDir
		}
		return 0, ll.AccessFSMakeReg
	}
	// mmap-exec, link-from and unix connects are not mediated by the rights handled.
	return 0, 0
}

// rights is what the ruleset grants on p.
func (c landlockCheck) rights(p string) landlock.AccessFSSet {
	var out landlock.AccessFSSet
	for _, r := range c {
		if p == r.Path || r.Path == "/" || strings.HasPrefix(p, r.Path+"/") {
			out |= r.Access
		}
	}
	return out | ^handledFS
}

// Grants implements FileRules.
func (c landlockCheck) Grants(kinds []string, p, other string, dir bool, syscall string) bool {
	for _, k := range kinds {
		self, parent := needs(k, dir, syscall)
		if self != 0 && c.rights(p)&self != self {
			return false
		}
		if parent != 0 && c.rights(path.Dir(p))&parent != parent {
			return false
		}
		// A rename or link into another directory also needs REFER on both sides.
		if other != "" && (k == profiles.AccessRenameFrom || k == profiles.AccessLinkFrom) &&
			path.Dir(p) != path.Dir(other) {
			if c.rights(path.Dir(p))&ll.AccessFSRefer == 0 || c.rights(path.Dir(other))&ll.AccessFSRefer == 0 {
				return false
			}
		}
	}
	return true
}
