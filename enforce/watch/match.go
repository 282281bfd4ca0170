package watch

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// globToRegexp translates an AppArmor path glob, as generate writes them, into an
// anchored regular expression: * is any run of characters but '/', ** any run
// including '/', ? one character but '/', [...] a class, {a,b} alternatives, @{pid}
// a process id, and a backslash escapes the next character.
func globToRegexp(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	depth := 0
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch {
		case c == '\\':
			if i+1 >= len(glob) {
				return nil, fmt.Errorf("pattern %q ends with a backslash", glob)
			}
			i++
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		case strings.HasPrefix(glob[i:], "@{pid}"), strings.HasPrefix(glob[i:], "@{tid}"):
			b.WriteString("[1-9][0-9]*")
			i += len("@{pid}") - 1
		case c == '@' && i+1 < len(glob) && glob[i+1] == '{':
			return nil, fmt.Errorf("pattern %q uses a variable tailor does not know", glob)
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(glob[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("pattern %q has an unclosed [", glob)
			}
			class := glob[i+1 : i+j]
			if strings.HasPrefix(class, "^") {
				class = "^/" + class[1:] // a negated class never matches '/'
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j
		case c == '{':
			depth++
			b.WriteString("(?:")
		case c == '}' && depth > 0:
			depth--
			b.WriteString(")")
		case c == ',' && depth > 0:
			b.WriteString("|")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("pattern %q has an unclosed {", glob)
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// fileRule is one compiled bundle file rule.
type fileRule struct {
	pattern string
	re      *regexp.Regexp
	access  []string
}

// fileRules decides whether a file access is within a bundle's file rules.
type fileRules struct {
	rules []fileRule
	execs []*regexp.Regexp
}

func compileFileRules(files []profiles.FileRule, execs []string) (*fileRules, error) {
	fr := &fileRules{}
	for _, r := range files {
		re, err := globToRegexp(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("file rule: %w", err)
		}
		fr.rules = append(fr.rules, fileRule{pattern: r.Pattern, re: re, access: r.Access})
	}
	for _, e := range execs {
		// Exec entries are plain paths; a recorded name with glob characters would
		// have been escaped by generate, so read them as globs too.
		re, err := globToRegexp(e)
		if err != nil {
			return nil, fmt.Errorf("exec rule: %w", err)
		}
		fr.execs = append(fr.execs, re)
	}
	return fr, nil
}

// missing returns the access kinds of path that no rule grants. A directory's path
// ends with '/', as in the rules; a path without one is matched as a directory too,
// because the kernel side does not know every operation's object is a directory (a
// chown of a directory the target made comes without the flag). create is granted by
// write too, as AppArmor's w grants creating.
func (fr *fileRules) missing(path string, access []string) []string {
	granted := map[string]bool{}
	asDir := ""
	if !strings.HasSuffix(path, "/") {
		asDir = path + "/"
	}
	for _, r := range fr.rules {
		if r.re.MatchString(path) || (asDir != "" && r.re.MatchString(asDir)) {
			for _, a := range r.access {
				granted[a] = true
			}
		}
	}
	var out []string
	for _, a := range access {
		if granted[a] || (a == profiles.AccessCreate && granted[profiles.AccessWrite]) {
			continue
		}
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// execAllowed reports whether path is one of the learned programs.
func (fr *fileRules) execAllowed(path string) bool {
	for _, re := range fr.execs {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}
