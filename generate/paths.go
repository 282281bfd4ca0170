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
	// shortHex is a name of 2 to 7 lowercase hex digits: too short to be an id on its
	// own (be, ca, de, fa are words and locale names), the prefix of a hash when its
	// siblings say so (fanOutDirs).
	shortHex = regexp.MustCompile(`^[0-9a-f]{2,7}$`)
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
	ruleFanOut     = "hex fan-out"
	ruleTree       = "working tree"
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
	ruleFanOut:     "directories of one parent named by hex runs of one length, digits and letters among them, are a hash's fan-out (git's .git/objects/5a/): the next run's hashes name other ones",
	ruleTree:       "the target walked the tree beneath its working directory (listed it and a directory in it, and read files it did not make in more than one of them): the next checkout holds other files, read and listed only",
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

// notContentDirs are trees whose directories never become content directories:
// configuration (a new file there is a new configuration, to be learned, and a rule
// over /etc would cover the sensitive files in it) and the pseudo file systems, whose
// files are interfaces to the kernel and to other processes, not content.
var notContentDirs = []string{"/etc", "/proc", "/sys", "/dev", "/run/secrets"}

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
	// fanOut are the directories (whole paths) named by a short hex run that
	// fanOutDirs found to be a hash's fan-out.
	fanOut map[string]bool
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
	if profiles.SensitivePath(p) {
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
		case g.fanOut[strings.Join(orig[:i+1], "/")]:
			segs[i] = "*"
			rules[ruleFanOut] = true
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
//   - directories of one parent named by short hex runs of one length, digits and
//     letters among them, are a hash's fan-out and become * (.git/objects/5a/ ->
//     .git/objects/*/; fanOutDirs);
//   - the reads of ContentDirThreshold or more files of one directory become dir/*
//     (never for a directory under /etc, /proc, /sys, /dev or holding a sensitive path);
//   - for a local command (generate's working directory, not this function's), a walk
//     of the tree beneath its working directory makes the reads and listings there one
//     cwd/** rule (workingTree);
//   - the harmless pseudo-devices are added (/dev/null, /dev/zero, /dev/full rw;
//     /dev/random, /dev/urandom r).
//
// Access kinds are carried through unchanged. A directory gets a trailing slash; rules
// that end up with the same pattern are merged. With strict, only the rules from before
// generalisation apply: proc pids, numbers and ids, and 8 files of any access in one
// non-sensitive directory become dir/* with the union of their access.
func GeneralizeFiles(files []profiles.FileAccess, strict bool) ([]profiles.FileRule, []profiles.Generalisation) {
	return generalizeFiles(files, fileOptions{strict: strict})
}

// fileOptions are what generalizeFiles needs besides the recorded files.
type fileOptions struct {
	strict bool
	// cwd is the working directory a local command's rules are made relative to
	// (relocatableCwd; "" for none): its own segments stay literal, and a walk of the
	// tree beneath it widens to cwd/** (workingTree).
	cwd string
	// home is the target's home directory as the recording says ("" when it does not).
	home string
}

// generalizeFiles is GeneralizeFiles with the working directory's rules.
func generalizeFiles(files []profiles.FileAccess, opt fileOptions) ([]profiles.FileRule, []profiles.Generalisation) {
	strict := opt.strict
	g := pathGeneralizer{strict: strict, pids: map[string]bool{}, keep: opt.cwd}
	var tree string
	if !strict {
		g.fanOut = fanOutDirs(files)
		if workingTree(files, opt.cwd, opt.home) {
			tree = escapeGlob(opt.cwd) + "/**"
		}
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
		if tree != "" && underDir(f.Path, opt.cwd) && !profiles.SensitivePath(f.Path) {
			// Reads and listings beneath the working directory are the tree's.
			var walk, rest []string
			for _, a := range access {
				if slices.Contains(treeKinds, a) {
					walk = append(walk, a)
				} else {
					rest = append(rest, a)
				}
			}
			if len(walk) > 0 {
				add(tree, f.Path, walk, ruleTree)
			}
			if len(rest) == 0 {
				continue
			}
			access = rest
		}
		parent := path.Dir(f.Path)
		if !f.Dir && content[parent] && !profiles.SensitivePath(f.Path) {
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

// treeKinds are the access kinds the working-tree rule carries: reading files and
// listing directories. Every other kind keeps its own rule.
var treeKinds = []string{profiles.AccessRead, profiles.AccessList}

// WorkingTreeThreshold is how many files a local command must have read beneath its
// working directory, in directories it listed and without having made them, for the
// reads to widen to the whole tree (workingTree). It is ContentDirThreshold again: in
// make fit's corpus only git walks its working directory (python's http.server lists
// it but never descends; nginx and PostgreSQL never list it), so the corpus does not
// tell 2 from 3, and 3 keeps a program that read one file in each of two directories
// it listed to its own rules.
const WorkingTreeThreshold = ContentDirThreshold

// workingTree reports whether a local command walked the tree beneath its working
// directory cwd: it listed cwd and at least one directory beneath it, and read
// WorkingTreeThreshold or more files in directories it listed, in two of them at
// least, none of which it made itself (files a program made are its own state, not
// the tree it was given). Such a program (git add, grep -r, tar, a build) reads
// whatever the next checkout holds: the reads and listings beneath cwd become one
// cwd/** rule (read and list only). Never when the working directory is unknown or
// kept absolute (relocatableCwd refuses /, system, shared and home directories and
// ones holding sensitive paths), when the target's home is unknown, is cwd or lies
// beneath it, or when the walk met a sensitive path (an .ssh or .gnupg directory).
func workingTree(files []profiles.FileAccess, cwd, home string) bool {
	if cwd == "" || home == "" || underDir(home, cwd) {
		return false
	}
	made := map[string]bool{}
	for _, f := range files {
		if f.Collapsed == 0 && slices.ContainsFunc(f.Access, func(a string) bool { return slices.Contains(createKinds, a) }) {
			made[f.Path] = true
		}
	}
	// madeHere: p, or a directory between it and cwd, is the target's own.
	madeHere := func(p string) bool {
		for d := p; d != cwd && d != "/" && d != "."; d = path.Dir(d) {
			if made[d] {
				return true
			}
		}
		return false
	}
	listed := map[string]bool{}
	for _, f := range files {
		if !underDir(f.Path, cwd) {
			continue
		}
		if profiles.SensitivePath(f.Path) || profiles.SensitivePath(f.Path+"/") {
			return false
		}
		if f.Dir && slices.Contains(f.Access, profiles.AccessList) && !madeHere(f.Path) {
			listed[f.Path] = true
		}
	}
	if !listed[cwd] || len(listed) < 2 {
		return false
	}
	reads := 0
	dirs := map[string]bool{}
	for _, f := range files {
		if f.Dir || f.Collapsed > 0 || !slices.Contains(f.Access, profiles.AccessRead) || !listed[path.Dir(f.Path)] || madeHere(f.Path) {
			continue
		}
		reads++
		dirs[path.Dir(f.Path)] = true
	}
	return reads >= WorkingTreeThreshold && len(dirs) >= 2
}

// underDir reports whether p is dir or beneath it.
func underDir(p, dir string) bool {
	return dir != "" && (p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/"))
}

// fanOutDirs returns the directories (whole paths) that hold a hash's first digits,
// as git's .git/objects/5a/ and caches keyed by a hash do: two or more directories of
// one parent named by hex runs of one length (2 to 7: longer runs are ids on their
// own), with a digit and a letter among their names. Names of letters a-f alone are
// words (be, de, fa, cafe) and names of digits alone are numbers; only a set of both
// says hex. Never beneath a sensitive, configuration or pseudo-filesystem tree, where
// every name matters on its own.
func fanOutDirs(files []profiles.FileAccess) map[string]bool {
	type group struct {
		parent string
		n      int
	}
	names := map[group]map[string]bool{}
	for _, f := range files {
		segs := strings.Split(f.Path, "/")
		last := len(segs) - 1
		if !f.Dir && f.Collapsed == 0 {
			last-- // a file's own name is no directory
		}
		for i := 2; i <= last; i++ {
			if !shortHex.MatchString(segs[i]) {
				continue
			}
			k := group{strings.Join(segs[:i], "/"), len(segs[i])}
			if names[k] == nil {
				names[k] = map[string]bool{}
			}
			names[k][segs[i]] = true
		}
	}
	out := map[string]bool{}
	for k, set := range names {
		if len(set) < 2 || profiles.HoldsSensitive(k.parent) ||
			slices.ContainsFunc(notContentDirs, func(d string) bool { return underDir(k.parent, d) }) {
			continue
		}
		digit, letter := false, false
		for n := range set {
			digit = digit || hasDigit(n)
			letter = letter || strings.ContainsAny(n, "abcdef")
		}
		if !digit || !letter {
			continue
		}
		for n := range set {
			out[k.parent+"/"+n] = true
		}
	}
	return out
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
		return profiles.HoldsSensitive(dir) ||
			slices.ContainsFunc(notContentDirs, func(d string) bool { return dir == d || strings.HasPrefix(dir, d+"/") })
	}
	for dir, n := range entries {
		if profiles.SensitivePath(dir + "/") {
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
		if out[dir] || profiles.SensitivePath(dir+"/") || excluded(dir) {
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
