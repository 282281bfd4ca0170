package generate

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// SiblingThreshold is how many distinct files recorded in one directory make the
// generator allow the whole directory (dir/*) instead of each file: a directory whose
// contents the target walks (static assets, a cache) will hold other files next run.
// Below it, files stay listed one by one. Sensitive directories are never widened.
const SiblingThreshold = 8

var (
	numericSeg = regexp.MustCompile(`^[0-9]+$`)
	// hexSeg matches per-run hexadecimal names (container ids, hashes): at least 8
	// hex digits with at least one digit, so plain words made of a-f stay literal.
	hexSeg  = regexp.MustCompile(`^[0-9a-f]{8,}$`)
	uuidSeg = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// uuidIn finds a UUID inside a longer name (session-<uuid>, <uuid>.sock).
	uuidIn = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
)

// sensitivePrefixes are paths whose every file matters on its own: a rule under them
// is never widened, neither segment by segment nor to dir/*.
var sensitivePrefixes = []string{
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/", "/etc/ssl/private/",
	"/proc/sys/", "/sys/", "/root/", "/boot/", "/dev/mem", "/dev/kmem", "/proc/kcore",
	"/run/docker.sock", "/var/run/docker.sock", "/run/secrets/", "/var/lib/docker/",
}

// sensitive reports whether p is a path never to widen.
func sensitive(p string) bool {
	for _, pre := range sensitivePrefixes {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return strings.Contains(p, "/.ssh/") || strings.HasSuffix(p, "/.ssh") || strings.Contains(p, "/.gnupg/")
}

// GeneralizePath turns one recorded path into an AppArmor path pattern:
//   - /proc/<pid>/... becomes /proc/@{pid}/... (and task/<tid> too); /proc/self stays;
//   - a segment that changes from run to run (all digits, 8+ lowercase hex digits with a
//     digit among them, a UUID) becomes *, and so does a UUID inside a longer name;
//   - every other segment is kept, with AppArmor's glob characters escaped;
//   - sensitive paths (/etc/shadow, /proc/sys, /sys, /root, ssh keys...) are kept
//     exactly, only escaped.
//
// The result is not quoted; quote renders it for the profile.
func GeneralizePath(p string) string {
	segs := strings.Split(p, "/")
	if sensitive(p) {
		for i, s := range segs {
			segs[i] = escapeGlob(s)
		}
		return strings.Join(segs, "/")
	}
	for i, s := range segs {
		switch {
		case i == 2 && segs[1] == "proc" && numericSeg.MatchString(s):
			segs[i] = "@{pid}"
		case i == 4 && segs[1] == "proc" && segs[3] == "task" && numericSeg.MatchString(s):
			segs[i] = "@{pid}"
		case numericSeg.MatchString(s), uuidSeg.MatchString(s),
			hexSeg.MatchString(s) && strings.ContainsAny(s, "0123456789"):
			segs[i] = "*"
		default:
			// Escape the literal parts, then put a * where a UUID was.
			parts := uuidIn.Split(s, -1)
			for j, part := range parts {
				parts[j] = escapeGlob(part)
			}
			segs[i] = strings.Join(parts, "*")
		}
	}
	return strings.Join(segs, "/")
}

// escapeGlob escapes the characters AppArmor reads as glob or variable syntax, so a
// recorded name containing them matches only itself.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]{}\"`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]{}\"`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// GeneralizeFiles turns recorded file accesses into sorted file rules: each path is
// generalised (GeneralizePath), a directory gets a trailing slash, a non-sensitive
// directory with SiblingThreshold or more recorded files becomes dir/* granting the
// union of their access, and rules that end up with the same pattern are merged.
func GeneralizeFiles(files []profiles.FileAccess) []profiles.FileRule {
	// Count distinct plain files per parent directory, before any widening.
	children := map[string]int{}
	for _, f := range files {
		if !f.Dir {
			children[path.Dir(f.Path)]++
		}
	}
	rules := map[string]map[string]bool{}
	for _, f := range files {
		var pat string
		parent := path.Dir(f.Path)
		switch {
		case f.Dir:
			pat = GeneralizePath(f.Path)
			if pat != "/" {
				pat += "/"
			}
		case children[parent] >= SiblingThreshold && !sensitive(f.Path) && !sensitive(parent+"/"):
			pat = GeneralizePath(parent)
			if pat != "/" {
				pat += "/"
			}
			pat += "*"
		default:
			pat = GeneralizePath(f.Path)
		}
		if rules[pat] == nil {
			rules[pat] = map[string]bool{}
		}
		for _, a := range f.Access {
			rules[pat][a] = true
		}
	}
	out := make([]profiles.FileRule, 0, len(rules))
	for _, pat := range sortedKeys(rules2set(rules)) {
		out = append(out, profiles.FileRule{Pattern: pat, Access: sortedKeys(rules[pat])})
	}
	return out
}

func rules2set(m map[string]map[string]bool) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// apparmorPerms renders access kinds as AppArmor file permissions. AppArmor 3 has no
// finer split than w for changing a name or its attributes, so create, delete, mkdir,
// rmdir, rename-to, symlink, setattr (chmod, chown, utimes, truncate), mknod and a
// unix socket's bind (which makes the socket file) and connect (AppArmor mediates a
// connect to a socket by path as a write to its file) all become w. rename-from is
// rw: the kernel asks read, write and delete on a rename's source. link-to, the new
// name of a hard link, is l (the file it links to needs no permission of its own
// for that: AppArmor checks that the link grants no more than the target). list of a
// directory is r on "dir/", exec becomes ix (run under this same profile), mmap-exec
// becomes m.
func apparmorPerms(access []string) string {
	var r, w, l, m, x bool
	for _, a := range access {
		switch a {
		case profiles.AccessRead, profiles.AccessList:
			r = true
		case profiles.AccessRenameFrom:
			r, w = true, true
		case profiles.AccessWrite, profiles.AccessCreate, profiles.AccessDelete, profiles.AccessMkdir,
			profiles.AccessRmdir, profiles.AccessRenameTo, profiles.AccessSymlink, profiles.AccessSetattr,
			profiles.AccessMknod, profiles.AccessBind, profiles.AccessConnect:
			w = true
		case profiles.AccessLinkTo:
			l = true
		case profiles.AccessMmapExec:
			m = true
		case profiles.AccessExec:
			x = true
		}
	}
	var b strings.Builder
	for _, p := range []struct {
		on bool
		s  string
	}{{r, "r"}, {w, "w"}, {l, "l"}, {m, "m"}, {x, "ix"}} {
		if p.on {
			b.WriteString(p.s)
		}
	}
	return b.String()
}

// quote renders a pattern for a profile, in double quotes when it holds a space or
// another character AppArmor would otherwise split on.
func quote(p string) string {
	if strings.ContainsAny(p, " \t,#") {
		return `"` + p + `"`
	}
	return p
}

// knownAccess reports whether every access kind is one of profiles.AccessKinds.
func knownAccess(access []string) bool {
	for _, a := range access {
		if !slices.Contains(profiles.AccessKinds, a) {
			return false
		}
	}
	return true
}
