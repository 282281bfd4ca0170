package generate

import (
	"cmp"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// CwdVar is the variable that stands for the target's working directory in the rules
// of a local command's bundle: beneath it, rules are relative to the directory the
// target runs in at enforce time, so a checkout at another path works. enforce
// resolves it; apparmor.profile defines it as the learning run's directory.
const CwdVar = "@{cwd}"

// relocatableCwd returns the learning working directory of a merged recording when
// rules beneath it may become @{cwd} rules: a local command, every recording learned
// in the same directory, and the directory neither "/", a top-level directory, a
// shared directory itself, nor one under a system, configuration or pseudo tree or
// holding sensitive files.
func relocatableCwd(recs []*profiles.Recording) string {
	if len(recs) == 0 {
		return ""
	}
	cwd := recs[0].Target.Cwd
	for _, r := range recs {
		if r.Target.Kind != "command" || r.Target.Cwd != cwd {
			return ""
		}
	}
	if !profiles.RelocatableDir(cwd) {
		return ""
	}
	return cwd
}

// targetHome returns the home directory the recordings' targets ran with, when they
// all say the same; "" otherwise (recordings from before learn recorded it).
func targetHome(recs []*profiles.Recording) string {
	if len(recs) == 0 {
		return ""
	}
	home := recs[0].Target.Home
	for _, r := range recs {
		if r.Target.Home != home {
			return ""
		}
	}
	return home
}

// relocate rewrites every rule of m beneath cwd (file patterns, execs, failed
// attempts, unix socket peers, Landlock paths) to start with @{cwd}, and reports
// whether any did. Patterns are globs, so cwd is matched in its escaped form.
func relocate(m *profiles.Bundle, cwd string) bool {
	changed := false
	glob := func(p string) string {
		if q, ok := underCwd(p, escapeGlob(cwd)); ok {
			changed = true
			return q
		}
		return p
	}
	for i := range m.Files {
		m.Files[i].Pattern = glob(m.Files[i].Pattern)
	}
	for i := range m.Execs {
		m.Execs[i] = glob(m.Execs[i])
	}
	for i := range m.Failed {
		m.Failed[i].Pattern = glob(m.Failed[i].Pattern)
	}
	for _, peers := range [][]profiles.Peer{m.Network.Connects, m.Network.Sends, m.Network.FailedConnects} {
		for i := range peers {
			if peers[i].Family == "AF_UNIX" && strings.HasPrefix(peers[i].Address, "/") {
				peers[i].Address = glob(peers[i].Address)
			}
		}
	}
	for i := range m.Landlock.Paths {
		lp := &m.Landlock.Paths[i]
		if q, ok := underCwd(lp.Path, cwd); ok {
			lp.Path, changed = q, true
		}
		for j := range lp.Covers {
			lp.Covers[j] = glob(lp.Covers[j])
		}
		for j := range lp.Widened {
			lp.Widened[j].Rule = glob(lp.Widened[j].Rule)
		}
	}
	return changed
}

// underCwd returns p with its cwd prefix replaced by @{cwd} when p is cwd or beneath it.
func underCwd(p, cwd string) (string, bool) {
	if p == cwd || p == cwd+"/" {
		return CwdVar + p[len(cwd):], true
	}
	if rest, ok := strings.CutPrefix(p, cwd+"/"); ok {
		return CwdVar + "/" + rest, true
	}
	return p, false
}

// sortRelocated restores the sorted order of the lists relocate rewrote.
func sortRelocated(m *profiles.Bundle) {
	slices.SortFunc(m.Files, func(a, b profiles.FileRule) int { return strings.Compare(a.Pattern, b.Pattern) })
	slices.Sort(m.Execs)
	slices.SortFunc(m.Failed, func(a, b profiles.FailedRule) int {
		return cmp.Or(strings.Compare(a.Pattern, b.Pattern), strings.Compare(a.Errno, b.Errno), slices.Compare(a.Access, b.Access))
	})
	for _, peers := range [][]profiles.Peer{m.Network.Connects, m.Network.Sends, m.Network.FailedConnects} {
		slices.SortFunc(peers, comparePeers)
	}
	slices.SortFunc(m.Landlock.Paths, func(a, b profiles.LandlockPath) int { return strings.Compare(a.Path, b.Path) })
	for i := range m.Landlock.Paths {
		slices.Sort(m.Landlock.Paths[i].Covers)
	}
}
