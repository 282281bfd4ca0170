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

// needs are the Landlock rights an access kind asks for on the file itself and on the
// directory holding it, as generate grants them; setattr is a Landlock right only for
// truncate (chmod, chown and utimes are never refused by Landlock).
func needs(kind string, dir bool, syscall string) (self, parent landlock.AccessFSSet) {
	if kind == profiles.AccessSetattr && !strings.HasPrefix(syscall, "truncate") {
		return 0, 0
	}
	self, parent = profiles.LandlockRights(kind, dir)
	// Exec and mmap are granted with read, but refused only for execute.
	if kind == profiles.AccessExec || kind == profiles.AccessMmapExec {
		self = ll.AccessFSExecute
	}
	if kind == profiles.AccessMmapExec {
		self = 0 // Landlock does not mediate mmap
	}
	return self, parent
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
