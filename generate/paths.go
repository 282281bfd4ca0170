package generate

import (
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// ContentDirThreshold is how many distinct files read in one directory make the
// generator allow reading the whole directory (dir/*) instead of each file: a directory
// whose contents the target serves or loads (pages, assets, modules) holds other files
// next run. Chosen with make fit (docs/fit.md): python's http.server read 3 pages while
// learning and refused the pages added after it at 4; at 3 the other widenings in the
// corpus are module directories of the Python install (http/__pycache__,
// lib-dynload) and git's .git (already widened by git init's own reads), while at 2
// nginx's prefix (its nginx.conf and pid file: a read of any file beside the
// configuration) and PostgreSQL's pg_logical would widen too. Only reads widen this
// way; writes, creates and deletes keep their own rules.
const ContentDirThreshold = 3

// strictSiblingThreshold is the threshold of generate --strict, the behaviour from
// before generalisation: 8 files, any access kind.
const strictSiblingThreshold = 8

var (
	numericSeg = regexp.MustCompile(`^[0-9]+$`)
	// hexSeg matches per-run hexadecimal names (container ids, hashes): at least 8
	// hex digits with at least one digit, so plain words made of a-f stay literal.
	hexSeg  = regexp.MustCompile(`^[0-9a-f]{8,}$`)
	uuidSeg = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// uuidIn finds a UUID inside a longer name (session-<uuid>, <uuid>.sock).
	uuidIn = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	// tempWord is a token that starts with tmp or temp (temp-1234.rdb, pgsql_tmp1234,
	// tmp_obj_XXXXXX, tmp.XXXXXXXXXX), in any case.
	tempWord = regexp.MustCompile(`^(?i)(tmp|temp)`)
	// alnumRun splits a name into runs of letters and digits (tokens) and what lies
	// between them (separators).
	alnumRun = regexp.MustCompile(`[A-Za-z0-9]+`)
	// pythonTemp is the shape of Python's tempfile names: tmp, eight characters of
	// [a-z0-9_], an optional suffix (tmpk3j4_8xz, tmpab_cdefg.json).
	pythonTemp = regexp.MustCompile(`^tmp([a-z0-9_]{8})((?:\.[A-Za-z0-9]+)*)$`)
	// mkstempTail is a lowercase word or letter followed by six letters and digits, the
	// shape of mkstemp("wordXXXXXX") (sortXyZ12a, sedAb12Cd, git's probe tHE5ACw).
	mkstempTail = regexp.MustCompile(`^([a-z]+)([A-Za-z0-9]{6})$`)
	// transientTail is mkstemp's shape with a short prefix (git's .git/tXXXXXX probe),
	// as a whole name: widened, even when this run's draw looks like a word, only for a
	// name the target both made and removed.
	transientTail = regexp.MustCompile(`^([a-z]{1,3})([A-Za-z0-9]{6})$`)
)

// longNumber is the shortest run of digits after a separator that is a pid or a
// random number wherever it appears: pids reach 7 digits (pid_max 4194304), random()
// and Go's os.CreateTemp give 9 or 10. Version numbers stop at 6 (CSN_369103.so,
// ISO_11548-1.so in gconv), and dates in library names (libabsl_base.so.20220623) are
// shared objects, which never widen by digits.
const longNumber = 7

// Path generalisation rules, as Generalisation.Rule names them (docs/generate.md).
const (
	ruleProcPid    = "proc pid"
	ruleNumber     = "number"
	ruleID         = "id"
	ruleTempName   = "temporary name"
	ruleLongNumber = "long number"
	ruleTargetPid  = "target pid"
	ruleCreated    = "created name"
	ruleContentDir = "content directory"
	ruleCollapsed  = "collapsed directory"
	ruleDevice     = "pseudo-device"
)

var ruleReasons = map[string]string{
	ruleProcPid:    "/proc/<pid> of the target's processes changes every run",
	ruleNumber:     "a name of digits only is a pid, counter or id",
	ruleID:         "a hex id (8+ hex digits with a digit) or a UUID changes every run",
	ruleTempName:   "digits or a random run in a name with a tmp/temp word are a pid, counter or mkstemp suffix",
	ruleLongNumber: "7+ digits after a separator are a pid or a random number, not a version",
	ruleTargetPid:  "the number is a pid the target looked up as /proc/<pid> in the same recording (its own processes')",
	ruleCreated:    "the target created the file under a changing name (a mkstemp-like run, a counter that differs between files it created in the same directory, or a number in a name it created and renamed into place): the create rule covers that name pattern in that directory only",
	ruleCollapsed:  "learning merged the files of a directory that held too many to record one by one (the recording's \"collapsed\" entry): one rule covers its files, with the union of their access",
	ruleContentDir: "several files read in one directory: its other files are content of the same kind (read only; writes, creates and deletes keep their own rules)",
	ruleDevice:     "harmless pseudo-device every profile allows, as AppArmor's base abstraction does",
}

// pseudoDevices are allowed in every profile, with the permissions AppArmor's
// <abstractions/base> gives them: discarding output, reading zeros or randomness.
// /dev/tty is not among them (AppArmor keeps it in abstractions/consoles): it is the
// user's terminal, where TIOCSTI injects keystrokes into the shell and a password
// prompt can be faked.
var pseudoDevices = []profiles.FileRule{
	{Pattern: "/dev/full", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
	{Pattern: "/dev/null", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
	{Pattern: "/dev/random", Access: []string{profiles.AccessRead}},
	{Pattern: "/dev/urandom", Access: []string{profiles.AccessRead}},
	{Pattern: "/dev/zero", Access: []string{profiles.AccessRead, profiles.AccessWrite}},
}

// sensitivePrefixes are paths whose every file matters on its own: a rule under them
// is never widened, neither segment by segment nor to dir/*.
var sensitivePrefixes = []string{
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh/", "/etc/ssl/private/",
	"/proc/sys/", "/sys/", "/root/", "/boot/", "/dev/mem", "/dev/kmem", "/proc/kcore",
	"/run/docker.sock", "/var/run/docker.sock", "/run/secrets/", "/var/lib/docker/",
}

// notContentDirs are trees whose directories never become content directories:
// configuration (a new file there is a new configuration, to be learned, and a rule
// over /etc would cover the sensitive files in it) and the pseudo file systems, whose
// files are interfaces to the kernel and to other processes, not content.
var notContentDirs = []string{"/etc", "/proc", "/sys", "/dev", "/run/secrets"}

// sensitive reports whether p is a path never to widen.
func sensitive(p string) bool {
	for _, pre := range sensitivePrefixes {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return strings.Contains(p, "/.ssh/") || strings.HasSuffix(p, "/.ssh") || strings.Contains(p, "/.gnupg/")
}

// notContent are sensitive paths whose file contents a right on a directory above them
// does not reach: docker's sockets are connected to, never opened for writing, and
// /run/secrets is a read-only mount in containers. They do not stop the
// created-then-written widening, which a daemon's pid file in /run needs.
var notContent = []string{"/run/docker.sock", "/var/run/docker.sock", "/run/secrets/"}

// holdsSensitive reports whether dir is a sensitive path or has one beneath it whose
// contents a rule for dir/* (Landlock grants beneath a directory, recursively) or a
// file right on dir would reach. A home directory (/home/NAME) counts: its .ssh and
// .gnupg are sensitive.
func holdsSensitive(dir string) bool {
	if dir == "/" || dir == "/home" || path.Dir(dir) == "/home" || sensitive(dir) || sensitive(dir+"/") {
		return true
	}
	for _, pre := range sensitivePrefixes {
		if strings.HasPrefix(pre, dir+"/") && !slices.Contains(notContent, pre) {
			return true
		}
	}
	return false
}

// GeneralizePath turns one recorded path into an AppArmor path pattern with the rules
// that need no more than the path itself:
//   - /proc/<pid>/... becomes /proc/@{pid}/... (and task/<tid> too); /proc/self stays;
//   - a segment that changes from run to run (all digits, 8+ lowercase hex digits with a
//     digit among them, a UUID) becomes *, and so does a UUID inside a longer name;
//   - in a name with a tmp/temp word, digits and random runs become * (temp-1234.rdb
//     -> temp-*.rdb, pgsql_tmp1234.5 -> pgsql_tmp*, tmp_obj_a1B2c3 -> tmp_obj_*);
//   - 7 or more digits after a separator become * (PostgreSQL.1804289383), except in
//     shared-object names, whose numbers are versions;
//   - every other segment is kept, with AppArmor's glob characters escaped;
//   - sensitive paths (/etc/shadow, /proc/sys, /sys, /root, ssh keys...) are kept
//     exactly, only escaped.
//
// GeneralizeFiles adds the rules that need the whole recording. The result is not
// quoted; quote renders it for the profile.
func GeneralizePath(p string) string {
	pat, _ := pathGeneralizer{}.path(p, nameContext{})
	return pat
}

// pathGeneralizer applies the per-path rules.
type pathGeneralizer struct {
	// strict keeps to the rules from before generalisation (proc pid, number, id).
	strict bool
	// pids are the target's pids seen in /proc/<pid>/ paths of the recording.
	pids map[string]bool
	// made are the paths the target created, with their nameContext.counters: a
	// directory it made under a changing name is generalised alike in the paths
	// beneath it.
	made map[string]bool
	// keep is a directory whose own segments stay literal in the paths beneath it (the
	// working directory a local command's rules are made relative to): its name is
	// replaced by @{cwd} afterwards, never matched.
	keep string
}

// nameContext is what the recording says about the file whose name is generalised.
type nameContext struct {
	// created is true when the target made the name (create, mkdir, rename-to...).
	created bool
	// counters widens every number of a created name: other files the target created
	// in the same directory differ from this one in a number.
	counters bool
	// transient is true when the target made the name and removed it again (a
	// temporary file): a mkstemp-shaped tail is random even when this run's draw
	// happens to look like a word (all one case).
	transient bool
}

// path generalises p and returns the pattern and the rules that changed it, sorted.
func (g pathGeneralizer) path(p string, ctx nameContext) (string, []string) {
	segs := strings.Split(p, "/")
	if sensitive(p) {
		for i, s := range segs {
			segs[i] = escapeGlob(s)
		}
		return strings.Join(segs, "/"), nil
	}
	rules := map[string]bool{}
	last := len(segs) - 1
	orig := slices.Clone(segs)
	kept := 0
	if g.keep != "" && (p == g.keep || strings.HasPrefix(p, g.keep+"/")) {
		kept = strings.Count(g.keep, "/") + 1
	}
	for i, s := range segs {
		switch {
		case i < kept:
			segs[i] = escapeGlob(s)
		case i == 2 && segs[1] == "proc" && numericSeg.MatchString(s):
			segs[i] = "@{pid}"
			rules[ruleProcPid] = true
		case i == 4 && segs[1] == "proc" && segs[3] == "task" && numericSeg.MatchString(s):
			segs[i] = "@{pid}"
			rules[ruleProcPid] = true
		case numericSeg.MatchString(s):
			segs[i] = "*"
			rules[ruleNumber] = true
		case uuidSeg.MatchString(s), hexSeg.MatchString(s) && strings.ContainsAny(s, "0123456789"):
			segs[i] = "*"
			rules[ruleID] = true
		default:
			// ctx is about the last segment; a parent has its own, if the target
			// created it.
			c := ctx
			if i != last {
				counters, made := g.made[strings.Join(orig[:i+1], "/")]
				c = nameContext{created: made, counters: counters}
			}
			segs[i] = g.name(s, c, rules)
		}
	}
	return strings.Join(segs, "/"), sortedKeys(rules)
}

// name generalises one path segment that is not a whole id: UUIDs inside it, then its
// tokens (runs of letters and digits) by the rules of GeneralizePath and, for a
// created name, GeneralizeFiles. Literal parts are escaped; runs of * joined only by
// separators collapse into one.
func (g pathGeneralizer) name(s string, ctx nameContext, rules map[string]bool) string {
	// Python's random part may contain '_', which would split it into tokens.
	if m := pythonTemp.FindStringSubmatch(s); !g.strict && m != nil && strings.ContainsAny(m[1], "0123456789_") {
		rules[ruleTempName] = true
		return "tmp*" + escapeGlob(m[2])
	}
	var ps []piece
	for j, part := range uuidIn.Split(s, -1) {
		if j > 0 {
			ps = append(ps, piece{glob: true})
			rules[ruleID] = true
		}
		if g.strict {
			ps = append(ps, piece{text: part})
		} else {
			ps = append(ps, g.tokens(part, s, ctx, rules)...)
		}
	}
	return render(ps)
}

// piece is part of a generalised name: literal text, then a * when glob is set.
type piece struct {
	text string
	glob bool
}

// render escapes the literal text of ps and writes their globs, collapsing "*.*",
// "*-*" and the like into one *: a * already matches the separators between them.
func render(ps []piece) string {
	var b strings.Builder
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		b.WriteString(escapeGlob(p.text))
		if !p.glob {
			continue
		}
		b.WriteString("*")
		for i+1 < len(ps) && ps[i+1].glob && strings.Trim(ps[i+1].text, "-_.") == "" {
			i++
		}
	}
	return b.String()
}

// tokens applies the token rules to part, a piece of the segment seg.
func (g pathGeneralizer) tokens(part, seg string, ctx nameContext, rules map[string]bool) []piece {
	sharedObject := strings.HasSuffix(seg, ".so") || strings.Contains(seg, ".so.")
	toks := alnumRun.FindAllStringIndex(part, -1)
	temp := false
	for _, t := range toks {
		w := part[t[0]:t[1]]
		if m := tempWord.FindString(w); m != "" && (len(w) == len(m) || hasDigit(w[len(m):])) {
			temp = true
		}
	}
	var ps []piece
	prev := 0
	// glob appends a piece: the separator before the token and the token's literal
	// prefix, then a *.
	glob := func(sep, prefix, rule string) {
		ps = append(ps, piece{text: sep + prefix, glob: true})
		rules[rule] = true
	}
	for k, t := range toks {
		sep := part[prev:t[0]]
		prev = t[1]
		w := part[t[0]:t[1]]
		first := k == 0 && t[0] == 0
		digits := numericSeg.MatchString(w)
		switch m := tempWord.FindString(w); {
		case m != "" && hasDigit(w[len(m):]):
			glob(sep, w[:len(m)], ruleTempName)
		case temp && !first && (digits || randomRun(w)):
			glob(sep, "", ruleTempName)
		case digits && !sharedObject && len(w) >= 3 && g.pids[w]:
			glob(sep, "", ruleTargetPid)
		case digits && !sharedObject && !first && len(w) >= longNumber:
			glob(sep, "", ruleLongNumber)
		case ctx.created && digits && !sharedObject && !first && ctx.counters:
			glob(sep, "", ruleCreated)
		case ctx.created && !first && randomRun(w):
			glob(sep, "", ruleCreated)
		case ctx.created && mkstempTail.MatchString(w) && randomRun(w[len(w)-6:]):
			glob(sep, w[:len(w)-6], ruleCreated)
		case ctx.transient && part == w && transientTail.MatchString(w):
			glob(sep, w[:len(w)-6], ruleCreated)
		default:
			ps = append(ps, piece{text: sep + w})
		}
	}
	return append(ps, piece{text: part[prev:]})
}

// randomRun reports whether w looks like a random suffix (mkstemp's XXXXXX, mktemp's
// tmp.XXXXXXXXXX): six or more letters and digits mixing at least two of digits,
// upper and lower case. A random run of six of mkstemp's 62 characters misses that
// only when it is all one case or all digits (about 1%); words (tmpfiles, Template)
// and acronyms (VERSION) stay literal.
func randomRun(w string) bool {
	if len(w) < 6 {
		return false
	}
	var d, u, l int
	for _, r := range w {
		switch {
		case r >= '0' && r <= '9':
			d = 1
		case r >= 'A' && r <= 'Z':
			u = 1
		case r >= 'a' && r <= 'z':
			l = 1
		default:
			return false
		}
	}
	return d+u+l >= 2
}

func hasDigit(s string) bool { return strings.ContainsAny(s, "0123456789") }

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

// createKinds are the access kinds that make a new name in a directory: the path
// they name may not exist when enforcement starts.
var createKinds = []string{profiles.AccessCreate, profiles.AccessMkdir, profiles.AccessRenameTo,
	profiles.AccessLinkTo, profiles.AccessSymlink, profiles.AccessMknod, profiles.AccessBind}

// readKinds are the access kinds a content directory rule carries over: reading a file
// and mapping it as code (a directory of libraries or modules).
var readKinds = []string{profiles.AccessRead, profiles.AccessMmapExec}

// GeneralizeFiles turns recorded file accesses into sorted file rules, and says which
// rules are wider than the paths they come from and why. Each path is generalised
// (GeneralizePath) with what the recording adds:
//   - a number that is the pid of one of the target's processes (seen in /proc/<pid>/)
//     becomes *;
//   - a name the target created is widened at a mkstemp-like run (sortXyZ12a ->
//     sort*), and at its numbers when another file it created in the same directory
//     differs from it in a number (result-1.txt, result-2.txt -> result-*.txt);
//   - the reads of ContentDirThreshold or more files of one directory become dir/*
//     (never for a directory under /etc, /proc, /sys, /dev or holding a sensitive path);
//   - the harmless pseudo-devices are added (/dev/null, /dev/zero, /dev/full rw;
//     /dev/random, /dev/urandom r).
//
// Access kinds are carried through unchanged. A directory gets a trailing slash; rules
// that end up with the same pattern are merged. With strict, only the rules from before
// generalisation apply: proc pids, numbers and ids, and 8 files of any access in one
// non-sensitive directory become dir/* with the union of their access.
func GeneralizeFiles(files []profiles.FileAccess, strict bool) ([]profiles.FileRule, []profiles.Generalisation) {
	return generalizeFiles(files, strict, "")
}

// generalizeFiles is GeneralizeFiles keeping the segments of the directory keep literal.
func generalizeFiles(files []profiles.FileAccess, strict bool, keep string) ([]profiles.FileRule, []profiles.Generalisation) {
	g := pathGeneralizer{strict: strict, pids: map[string]bool{}, keep: keep}
	if !strict {
		for _, f := range files {
			if rest, ok := strings.CutPrefix(f.Path, "/proc/"); ok {
				if pid, _, _ := strings.Cut(rest, "/"); numericSeg.MatchString(pid) {
					g.pids[pid] = true
				}
			}
		}
	}
	created := func(f profiles.FileAccess) bool {
		return !strict && f.Collapsed == 0 && slices.ContainsFunc(f.Access, func(a string) bool { return slices.Contains(createKinds, a) })
	}
	// Numbers in created names: widened when two created names of one directory
	// generalise to the same pattern with their numbers widened.
	counterPeers := map[string]map[string]bool{}
	for _, f := range files {
		if created(f) {
			pat, _ := g.path(f.Path, nameContext{created: true, counters: true})
			if counterPeers[pat] == nil {
				counterPeers[pat] = map[string]bool{}
			}
			counterPeers[pat][f.Path] = true
		}
	}
	g.made = map[string]bool{}
	for _, peers := range counterPeers {
		for p := range peers {
			g.made[p] = len(peers) > 1
		}
	}
	content := contentDirs(files, strict)

	type rule struct {
		access map[string]bool
		from   map[string]bool
		rules  map[string]bool
	}
	byPat := map[string]*rule{}
	add := func(pat, from string, access []string, rules ...string) {
		r := byPat[pat]
		if r == nil {
			r = &rule{access: map[string]bool{}, from: map[string]bool{}, rules: map[string]bool{}}
			byPat[pat] = r
		}
		for _, a := range access {
			r.access[a] = true
		}
		if from != "" {
			r.from[from] = true
		}
		for _, n := range rules {
			r.rules[n] = true
		}
	}
	for _, f := range files {
		access := f.Access
		if f.Collapsed > 0 {
			dirPat, _ := g.path(f.Path, nameContext{})
			if dirPat != "/" {
				dirPat += "/"
			}
			add(dirPat+"*", f.Path+"/*", access, ruleCollapsed)
			continue
		}
		parent := path.Dir(f.Path)
		if !f.Dir && content[parent] && !sensitive(f.Path) {
			dirPat, _ := g.path(parent, nameContext{})
			if dirPat != "/" {
				dirPat += "/"
			}
			if strict {
				add(dirPat+"*", f.Path, access, ruleContentDir)
				continue
			}
			var rest []string
			var reads []string
			for _, a := range access {
				if slices.Contains(readKinds, a) {
					reads = append(reads, a)
				} else {
					rest = append(rest, a)
				}
			}
			if len(reads) > 0 {
				add(dirPat+"*", f.Path, reads, ruleContentDir)
			}
			if len(rest) == 0 {
				continue
			}
			access = rest
		}
		counters, made := g.made[f.Path]
		if created(f) && slices.Contains(f.Access, profiles.AccessRenameFrom) {
			// A temporary name, written then renamed into place (PostgreSQL's
			// pg_internal.init.<pid>): its numbers are a pid or a counter.
			made, counters = true, true
		}
		removed := slices.ContainsFunc(f.Access, func(a string) bool {
			return a == profiles.AccessDelete || a == profiles.AccessRmdir || a == profiles.AccessRenameFrom
		})
		pat, rules := g.path(f.Path, nameContext{created: made, counters: counters, transient: made && removed})
		if f.Dir && pat != "/" {
			pat += "/"
		}
		add(pat, f.Path, access, rules...)
	}
	if !strict {
		for _, d := range pseudoDevices {
			var missing []string
			for _, a := range d.Access {
				if r := byPat[d.Pattern]; r == nil || !r.access[a] {
					missing = append(missing, a)
				}
			}
			if len(missing) > 0 {
				add(d.Pattern, "", missing, ruleDevice)
			}
		}
	}

	out := make([]profiles.FileRule, 0, len(byPat))
	var gens []profiles.Generalisation
	for _, pat := range slices.Sorted(maps.Keys(byPat)) {
		r := byPat[pat]
		out = append(out, profiles.FileRule{Pattern: pat, Access: sortedKeys(r.access)})
		if len(r.rules) == 0 {
			continue
		}
		names := sortedKeys(r.rules)
		var reasons []string
		for _, n := range names {
			reasons = append(reasons, ruleReasons[n])
		}
		gen := profiles.Generalisation{Kind: profiles.GeneralisedPath, Added: pat, Access: sortedKeys(r.access),
			Rule: strings.Join(names, ", "), Reason: strings.Join(reasons, "; ")}
		if len(r.from) > 0 {
			gen.From = sortedKeys(r.from)
		}
		gens = append(gens, gen)
	}
	return out, gens
}

// contentDirs returns the directories whose files' reads become one dir/* rule. With
// strict, as before generalisation: 8 recorded files of any access in a non-sensitive
// directory.
func contentDirs(files []profiles.FileAccess, strict bool) map[string]bool {
	entries := map[string]int{}
	reads := map[string]map[string]bool{}
	for _, f := range files {
		if f.Dir || f.Collapsed > 0 {
			continue
		}
		dir := path.Dir(f.Path)
		entries[dir]++
		if slices.ContainsFunc(f.Access, func(a string) bool { return slices.Contains(readKinds, a) }) {
			if reads[dir] == nil {
				reads[dir] = map[string]bool{}
			}
			reads[dir][f.Path] = true
		}
	}
	out := map[string]bool{}
	excluded := func(dir string) bool {
		return holdsSensitive(dir) ||
			slices.ContainsFunc(notContentDirs, func(d string) bool { return dir == d || strings.HasPrefix(dir, d+"/") })
	}
	for dir, n := range entries {
		if sensitive(dir + "/") {
			continue
		}
		if strict {
			out[dir] = n >= strictSiblingThreshold
			continue
		}
		if len(reads[dir]) < ContentDirThreshold || excluded(dir) {
			continue
		}
		out[dir] = true
	}
	if strict {
		return out
	}
	// A directory beneath a content directory, some of whose files were read, holds
	// content of the same kind (nginx's www/files/ under www/): its reads widen too.
	for _, dir := range slices.Sorted(maps.Keys(reads)) {
		if out[dir] || sensitive(dir+"/") || excluded(dir) {
			continue
		}
		for up := path.Dir(dir); up != "/" && up != "."; up = path.Dir(up) {
			if out[up] {
				out[dir] = true
				break
			}
		}
	}
	return out
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
