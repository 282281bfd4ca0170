package enforce

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// cwdVar stands for the target's working directory in a local command's bundle
// (generate.CwdVar; enforce does not import the generator).
const cwdVar = "@{cwd}"

// usesCwd reports whether the bundle has rules relative to the working directory.
func usesCwd(b *profiles.Bundle) bool {
	found := false
	eachCwdString(b, func(s *string, _ bool) {
		if strings.HasPrefix(*s, cwdVar) {
			found = true
		}
	})
	return found
}

// cwdTree is the working-tree rule generate writes when the target walked the tree
// beneath its working directory: read and list of everything there.
const cwdTree = cwdVar + "/**"

// resolveCwd replaces @{cwd} in the bundle's rules by dir, the directory the target
// runs in: escaped for glob patterns, as is for Landlock paths. Done once after Load,
// so the Landlock rules and the watcher see absolute rules. A bundle with such rules is
// refused for a directory generate would not have made them for (profiles.RelocatableDir:
// "/", a top-level, shared, system or home directory, one holding sensitive files), and
// one with the working-tree rule also for the target's $HOME or a directory holding it:
// @{cwd}/** there would grant reading the user's files.
func resolveCwd(b *profiles.Bundle, dir, home string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("working directory %q is not absolute", dir)
	}
	dir = filepath.Clean(dir)
	// generate writes rules relative to a learning directory only when it is
	// relocatable; resolving them into one that is not would grant, below "/", /etc or
	// a home directory, what the target was seen doing in its project directory
	// (@{cwd}/*/out run from / is /*/out).
	if usesCwd(b) && !profiles.RelocatableDir(dir) {
		return fmt.Errorf("working directory %s: the bundle has rules relative to the working directory (%s), and %s is the root, a top-level, system or shared directory or holds sensitive files, where they would grant what the target did in its own directory: run it in a project directory (--cwd)", dir, cwdVar, dir)
	}
	if slices.ContainsFunc(b.Files, func(f profiles.FileRule) bool { return f.Pattern == cwdTree }) {
		home = filepath.Clean(home)
		if home == dir || strings.HasPrefix(home, dir+"/") {
			return fmt.Errorf("working directory %s: the bundle lets the target read the whole tree beneath its working directory (%s), and %s is the target's home directory or holds it: run it in the project's own directory (--cwd)", dir, cwdTree, dir)
		}
	}
	if dir == "/" {
		dir = "" // @{cwd}/x is /x
	}
	eachCwdString(b, func(s *string, glob bool) {
		rest, ok := strings.CutPrefix(*s, cwdVar)
		if !ok {
			return
		}
		d := dir
		if glob {
			d = escapeGlob(dir)
		}
		*s = d + rest
		if *s == "" {
			*s = "/"
		}
	})
	return nil
}

// eachCwdString calls f on every bundle string that may start with @{cwd}, saying
// whether it is a glob.
func eachCwdString(b *profiles.Bundle, f func(s *string, glob bool)) {
	for i := range b.Files {
		f(&b.Files[i].Pattern, true)
	}
	for i := range b.Execs {
		f(&b.Execs[i], true)
	}
	for i := range b.Failed {
		f(&b.Failed[i].Pattern, true)
	}
	for _, peers := range [][]profiles.Peer{b.Network.Connects, b.Network.Sends, b.Network.FailedConnects} {
		for i := range peers {
			if peers[i].Family == "AF_UNIX" {
				f(&peers[i].Address, true)
			}
		}
	}
	for i := range b.Landlock.Paths {
		lp := &b.Landlock.Paths[i]
		f(&lp.Path, false)
		for j := range lp.Covers {
			f(&lp.Covers[j], true)
		}
		for j := range lp.Widened {
			f(&lp.Widened[j].Rule, true)
		}
	}
}

// escapeGlob makes a directory name match only itself inside an AppArmor glob.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]{}\"@`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RefuseCwd refuses a bundle with @{cwd} rules where no working directory of the
// target is known (a container, whose rules are paths inside its image).
func RefuseCwd(p *Policy, where string) error {
	if usesCwd(&p.Bundle) {
		return refuse("%s has rules relative to a local command's working directory (%s): it is for tailor enforce -- COMMAND, not %s", p.Dir, cwdVar, where)
	}
	return nil
}

// envValue is the value of the last NAME= entry of env, "" when there is none.
func envValue(env []string, name string) string {
	v := ""
	for _, e := range env {
		if rest, ok := strings.CutPrefix(e, name+"="); ok {
			v = rest
		}
	}
	return v
}
