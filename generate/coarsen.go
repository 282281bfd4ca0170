package generate

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// A bundle can always be built: apparmor_parser compiles the file rules into one
// DFA and refuses a profile whose DFA has too many states ("Too many states (79791)
// for type state_t" for 30,000 files in separate directories), after minutes of work.
// Build then collapses further: the file rules beneath a crowded directory (one
// with many entries among the rules) become one rule DIR/** per access set, the
// deepest such directories first, and generates again, until the parser accepts the
// profile. Sensitive paths, the directories that
// hold one, the pseudo file systems and /etc are never collapsed, and neither are the
// programs the target ran (exec rules). Every collapsed rule is named in bundle.json
// (rule "size collapse") and SUMMARY.txt.

// MaxFileRules is the most file rules a profile is generated with before Build
// collapses it without asking the parser: measured here, apparmor_parser -Q -K takes
// 4 s for 5,000 literal paths, 20 s for 10,000 and 100 s for 20,000, and refuses
// 30,000 after two minutes; the watcher also compares every file event with every
// rule.
const MaxFileRules = 5000

// maxCoarsen is the last collapse level: directories with 2 or more rules.
const maxCoarsen = 7

// coarsenThreshold is how many entries (distinct names right beneath it, among the
// rules) make level collapse a directory: 4096, 1024, 256, 64, 16, 4, 2.
func coarsenThreshold(level int) int {
	return max(2, 4096>>(2*(level-1)))
}

const ruleSizeCollapse = "size collapse"

// collapsible reports whether a directory's rules may become DIR/**: none of its
// files is sensitive (not even a socket or a secret a read rule would not reach),
// and it is not /, a home directory, /etc or a pseudo file system.
func collapsible(dir string) bool {
	if dir == "/" || dir == "." || profiles.HoldsSensitive(dir) || profiles.SensitivePath(dir+"/") || profiles.SensitiveBeneath(dir) {
		return false
	}
	return !slices.ContainsFunc(notContentDirs, func(d string) bool { return dir == d || strings.HasPrefix(dir, d+"/") })
}

// literalDir is the deepest directory every path a pattern matches is beneath: the
// parent of a literal path (a directory's rule, "dir/", included), or the last
// whole directory before the pattern's first glob.
func literalDir(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[{@\`); i >= 0 {
		prefix := pattern[:i]
		if strings.HasSuffix(prefix, "/") {
			return path.Clean(prefix)
		}
		return path.Dir(prefix)
	}
	return path.Dir(strings.TrimSuffix(pattern, "/"))
}

// collapseResult says what coarsen did.
type collapseResult struct {
	level, threshold int
	// before and after count the file rules.
	before, after int
	// dirs are the collapsed directories' new patterns.
	dirs []string
	why  string
}

// coarsen collapses files for level: deepest directories first, every collapsible
// directory with at least coarsenThreshold(level) entries among the rules (distinct
// names right beneath it: 30,000 files in 30,000 subdirectories of one directory are
// 30,000 entries of it, 2 of its parent) gets one DIR/** rule per access set in place
// of its rules not yet collapsed. Rules under a sensitive path
// and exec rules stay. gens loses the generalisations of the rules collapsed and
// gains one per new rule. why says what asked for it.
func coarsen(files []profiles.FileRule, gens []profiles.Generalisation, level int, why string) ([]profiles.FileRule, []profiles.Generalisation, collapseResult) {
	res := collapseResult{level: level, threshold: coarsenThreshold(level), before: len(files), why: why}
	beneath := map[string][]int{}
	entries := map[string]map[string]bool{}
	for i, f := range files {
		if profiles.SensitivePath(f.Pattern) || slices.Contains(f.Access, profiles.AccessExec) {
			continue
		}
		for d := literalDir(f.Pattern); d != "/" && d != "."; d = path.Dir(d) {
			if collapsible(d) {
				beneath[d] = append(beneath[d], i)
				name, _, _ := strings.Cut(strings.TrimPrefix(f.Pattern, d+"/"), "/")
				if entries[d] == nil {
					entries[d] = map[string]bool{}
				}
				entries[d][name] = true
			}
		}
	}
	dirs := slices.Collect(maps.Keys(beneath))
	slices.SortFunc(dirs, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c // deepest first
		}
		return strings.Compare(a, b)
	})
	absorbed := make([]bool, len(files))
	type group struct {
		access []string
		from   []string
	}
	added := map[string]*group{}
	for _, d := range dirs {
		if len(entries[d]) < res.threshold {
			continue
		}
		var left []int
		for _, i := range beneath[d] {
			if !absorbed[i] {
				left = append(left, i)
			}
		}
		if len(left) == 0 {
			continue
		}
		for _, i := range left {
			absorbed[i] = true
			// One rule per access set: reads stay reads, a write somewhere does not
			// become a write everywhere.
			pat := escapeGlob(d) + "/**"
			key := pat + "\x00" + strings.Join(files[i].Access, ",")
			g := added[key]
			if g == nil {
				g = &group{access: files[i].Access}
				added[key] = g
			}
			g.from = append(g.from, files[i].Pattern)
		}
	}
	if len(added) == 0 {
		res.after = len(files)
		return files, gens, res
	}
	byPat := map[string]map[string]bool{}
	var out []profiles.FileRule
	gone := map[string]bool{}
	for i, f := range files {
		if absorbed[i] {
			gone[f.Pattern] = true
			continue
		}
		out = append(out, f)
	}
	for _, key := range slices.Sorted(maps.Keys(added)) {
		pat, _, _ := strings.Cut(key, "\x00")
		if byPat[pat] == nil {
			byPat[pat] = map[string]bool{}
		}
		for _, a := range added[key].access {
			byPat[pat][a] = true
		}
	}
	// Rules of one directory with different access sets are one rule in the profile
	// (AppArmor unions them anyway); the generalisation keeps each set's origin.
	var newGens []profiles.Generalisation
	for _, key := range slices.Sorted(maps.Keys(added)) {
		pat, _, _ := strings.Cut(key, "\x00")
		g := added[key]
		from := g.from
		slices.Sort(from)
		const shown = 20
		note := ""
		if len(from) > shown {
			note = fmt.Sprintf(" (the first %d of %d in from)", shown, len(from))
			from = from[:shown]
		}
		newGens = append(newGens, profiles.Generalisation{
			Kind: profiles.GeneralisedPath, Added: pat, Access: slices.Clone(g.access), From: from,
			Rule: ruleSizeCollapse,
			Reason: fmt.Sprintf("%s: %d file rules beneath this directory%s became one (level %d: directories with %d or more entries, deepest first; never a sensitive path, /etc, a pseudo file system or a program run)",
				why, len(g.from), note, level, res.threshold),
		})
	}
	for _, pat := range slices.Sorted(maps.Keys(byPat)) {
		out = append(out, profiles.FileRule{Pattern: pat, Access: sortedKeys(byPat[pat])})
		res.dirs = append(res.dirs, pat)
	}
	slices.SortFunc(out, func(a, b profiles.FileRule) int { return strings.Compare(a.Pattern, b.Pattern) })
	out = mergeSamePattern(out)
	var keep []profiles.Generalisation
	for _, g := range gens {
		if !gone[g.Added] {
			keep = append(keep, g)
		}
	}
	keep = append(keep, newGens...)
	slices.SortStableFunc(keep, func(a, b profiles.Generalisation) int { return strings.Compare(a.Added, b.Added) })
	res.after = len(out)
	return out, keep, res
}

// mergeSamePattern merges adjacent rules of a sorted list with the same pattern (a
// collapsed DIR/** that a recorded pattern already had).
func mergeSamePattern(rules []profiles.FileRule) []profiles.FileRule {
	var out []profiles.FileRule
	for _, r := range rules {
		if n := len(out); n > 0 && out[n-1].Pattern == r.Pattern {
			acc := map[string]bool{}
			for _, a := range append(out[n-1].Access, r.Access...) {
				acc[a] = true
			}
			out[n-1].Access = sortedKeys(acc)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Text is the SUMMARY.txt line of a collapse.
func (c collapseResult) Text() string {
	return fmt.Sprintf("apparmor size: %d file rules collapsed to %d (level %d: %d directories with %d or more entries became DIR/**: %s), because %s",
		c.before, c.after, c.level, len(c.dirs), c.threshold, strings.Join(c.dirs, ", "), c.why)
}
