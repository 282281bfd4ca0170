package generate

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"

	"github.com/tailor-sec/tailor/profiles"
)

// Why a Landlock rule grants more than the bundle rule it implements
// (docs/enforce.md explains each).
const (
	whyGlob = "glob: Landlock has no globs"
	whyName = "making or removing a name: granted on its directory"
	// whyCreatedWritten is the one widening of file contents: a file the target
	// creates and then writes may not exist when Landlock is set up, and Landlock
	// attaches rules to existing inodes only. setattr counts as a write here (it may
	// be a truncate, and only truncate is a Landlock right), widening truncate only.
	whyCreatedWritten = "created then written or truncated: the file may not exist at start"
	whyDirectory      = "file rights on a directory"
	whyCreatedDir     = "on the nearest directory the target does not create"
	whyRefer          = "rename or link across directories"
	// whyFailedSame: a device open fails with ENXIO in the driver, after Landlock's
	// check; without the right it would fail with EACCES instead.
	whyFailedSame = "learned failure (ENXIO): granted so that it fails the same way"
)

// fileRights are the rights Landlock accepts on a rule for a non-directory.
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// referKinds reparent a name when their directories differ.
var referKinds = []string{profiles.AccessRenameFrom, profiles.AccessRenameTo, profiles.AccessLinkFrom, profiles.AccessLinkTo}

// apparmorVars are the AppArmor variables with one fixed value; other variables
// (@{pid}, @{HOME}) stand for many paths and are treated as globs.
var apparmorVars = strings.NewReplacer("@{PROC}", "/proc/", "@{sys}", "/sys/")

// globChars start an AppArmor glob, alternation or variable.
const globChars = "*?[]{}@^"

// anchor returns the path a Landlock rule for an AppArmor pattern is attached to: the
// pattern itself when it has no glob, otherwise its longest leading run of whole path
// components without glob characters. widened is false for an exact path and for
// "DIR/**", which means exactly what a rule on DIR means in Landlock.
func anchor(pattern string) (p string, widened bool) {
	pattern = path.Clean(apparmorVars.Replace(pattern))
	i := strings.IndexAny(pattern, globChars)
	if i < 0 {
		return pattern, false
	}
	// The directory holding the first glob component, and what follows it.
	prefix := pattern[:strings.LastIndex(pattern[:i], "/")]
	rest := pattern[len(prefix):]
	if prefix == "" {
		prefix = "/"
	}
	return prefix, rest != "/**"
}

// PlanInput is what a Landlock plan is computed from: a bundle's rules.
type PlanInput struct {
	Files  []profiles.FileRule
	Execs  []string
	Failed []profiles.FailedRule
	// Sockets are the recorded sockets: TCP ports are planned only when one of them
	// is TCP. bundle.json keeps only the families, so nil there.
	Sockets []profiles.Socket
	Network profiles.BundleNetwork
}

// PlanLandlock turns a bundle's file rules, execs and network use into the Landlock
// rules enforce applies. Each right goes on the inode Landlock checks it on: rights
// on the content of a file on the file, rights to make or remove a name on its
// directory, refer on both directories of a rename or link across directories.
// Paths the target creates itself may be missing at start, so rights that must sit
// on them climb to the nearest directory the target does not create; file rights of
// a created file widen to its directory only when the target also wrote it. Every
// grant beyond a bundle rule is recorded with its reason. A device opened in vain
// (ENXIO: /dev/tty without a controlling terminal) keeps its rights, so that it
// fails as it did while learning.
func PlanLandlock(in PlanInput) (profiles.LandlockPlan, error) {
	files, execs, net := in.Files, in.Execs, in.Network
	b := planBuilder{byPath: map[string]*planRule{}}

	type parsed struct {
		rule    profiles.FileRule
		anchor  string
		glob    bool // a glob: the rule is on a directory holding its matches
		widened bool // the glob means more than a rule on its anchor (not DIR/**)
		dir     bool
		created bool
		refer   bool
	}
	hasAny := func(access, kinds []string) bool {
		return slices.ContainsFunc(access, func(a string) bool { return slices.Contains(kinds, a) })
	}
	var rules []parsed
	createdDirs := map[string]bool{}
	for _, f := range files {
		expanded := apparmorVars.Replace(f.Pattern)
		if !strings.HasPrefix(expanded, "/") {
			return profiles.LandlockPlan{}, fmt.Errorf("file rule %q is not an absolute path", f.Pattern)
		}
		for _, a := range f.Access {
			if !slices.Contains(profiles.AccessKinds, a) {
				return profiles.LandlockPlan{}, fmt.Errorf("file rule %q: unknown access kind %q", f.Pattern, a)
			}
		}
		p, widened := anchor(f.Pattern)
		pr := parsed{
			rule:    f,
			anchor:  p,
			glob:    strings.ContainsAny(expanded, globChars),
			widened: widened,
			dir:     strings.HasSuffix(f.Pattern, "/"),
			created: hasAny(f.Access, createKinds),
			refer:   hasAny(f.Access, referKinds),
		}
		if pr.dir && !pr.glob && pr.created {
			createdDirs[p] = true
		}
		rules = append(rules, pr)
	}
	// place moves a directory the target creates itself up to the nearest ancestor it
	// does not create, which exists at start.
	place := func(dir string) (string, bool) {
		climbed := false
		for createdDirs[dir] && dir != "/" {
			dir, climbed = path.Dir(dir), true
		}
		return dir, climbed
	}
	grantOnDir := func(dir string, access landlock.AccessFSSet, rule, why string) {
		if access == 0 {
			return
		}
		p, climbed := place(dir)
		if climbed {
			if why == "" {
				why = whyCreatedDir
			} else {
				why += "; " + whyCreatedDir
			}
		}
		b.grant(p, access, rule, why)
	}

	// referDirs maps each directory holding a renamed or linked name to the rules
	// naming it.
	referDirs := map[string][]string{}
	// referParents are the directories the renamed or linked names are in, as the
	// patterns say: globs anchored on one directory may still name several.
	referParents := map[string]bool{}
	createdWritten := map[string]bool{}
	denied := []string{}
	for _, r := range rules {
		var own, parent landlock.AccessFSSet
		for _, a := range r.rule.Access {
			o, p := profiles.LandlockRights(a, r.dir)
			own |= o
			parent |= p
		}
		if strings.HasPrefix(r.anchor, "/dev/") && own&fileRights != 0 {
			// Terminals and other devices opened by path need their ioctls.
			own |= ll.AccessFSIoctlDev
		}
		pat := r.rule.Pattern
		if r.glob {
			// Every match is beneath the anchor, and so are the names it makes or
			// removes. A glob may match files and directories alike.
			if slices.Contains(r.rule.Access, profiles.AccessRead) {
				own |= ll.AccessFSReadFile | ll.AccessFSReadDir
			}
			why := ""
			if r.widened {
				why = whyGlob
			}
			grantOnDir(r.anchor, own|parent, pat, why)
			if r.refer {
				referDirs[r.anchor] = append(referDirs[r.anchor], pat)
				referParents[path.Dir(strings.TrimSuffix(pat, "/"))] = true
			}
			continue
		}
		parentDir := path.Dir(r.anchor)
		grantOnDir(parentDir, parent, pat, whyName)
		if r.refer {
			referDirs[parentDir] = append(referDirs[parentDir], pat)
			referParents[parentDir] = true
		}
		switch {
		case r.dir:
			why := ""
			if own&fileRights != 0 {
				why = whyDirectory
			}
			grantOnDir(r.anchor, own, pat, why)
		case r.created && hasAny(r.rule.Access, []string{profiles.AccessWrite, profiles.AccessSetattr}):
			if d, _ := place(parentDir); profiles.HoldsSensitive(d) {
				// Never widen file contents over /etc/shadow and the like.
				b.grant(r.anchor, own, pat, "")
				denied = append(denied, fmt.Sprintf("%s is created then written in %s, which holds sensitive files: its file rights stay on the file, so writing it is refused when it does not exist at start", pat, d))
				continue
			}
			createdWritten[pat] = true
			grantOnDir(parentDir, own, pat, whyCreatedWritten)
		default:
			b.grant(r.anchor, own, pat, "")
		}
	}
	for _, e := range execs {
		if !strings.HasPrefix(e, "/") {
			return profiles.LandlockPlan{}, fmt.Errorf("exec rule %q is not an absolute path", e)
		}
		if createdWritten[e] {
			continue // the target writes it first: its directory has the rights
		}
		p, widened := anchor(e)
		why := ""
		if widened {
			why = whyGlob
		}
		b.grant(p, ll.AccessFSExecute|ll.AccessFSReadFile, e, why)
	}
	// A rename or link within one directory needs no refer; across directories the
	// kernel checks it on both. Recordings do not pair the two names of one rename,
	// so every directory involved gets it as soon as there is more than one.
	if len(referParents) > 1 {
		for d, pats := range referDirs {
			for _, pat := range pats {
				grantOnDir(d, ll.AccessFSRefer, pat, whyRefer)
			}
		}
	}

	for _, f := range in.Failed {
		p, widened := anchor(f.Pattern)
		if f.Errno != "ENXIO" || widened || p != f.Pattern || !strings.HasPrefix(p, "/dev/") {
			continue
		}
		var access landlock.AccessFSSet
		for _, a := range f.Access {
			o, _ := profiles.LandlockRights(a, false)
			access |= o
		}
		if access != 0 {
			b.grant(p, access|ll.AccessFSIoctlDev, f.Pattern, whyFailedSame)
		}
	}

	plan := profiles.LandlockPlan{Paths: b.rules(), TCP: tcpPlan(in.Sockets, net), NotEnforced: notEnforced(files, net), Denied: denied}
	return plan, nil
}

// planBuilder merges grants per path.
type planBuilder struct {
	byPath map[string]*planRule
}

type planRule struct {
	access landlock.AccessFSSet
	covers map[string]bool
	// widened maps a bundle rule and a reason to the rights granted for it.
	widened map[[2]string]landlock.AccessFSSet
}

func (b *planBuilder) grant(p string, access landlock.AccessFSSet, rule, why string) {
	if access == 0 {
		return
	}
	r := b.byPath[p]
	if r == nil {
		r = &planRule{covers: map[string]bool{}, widened: map[[2]string]landlock.AccessFSSet{}}
		b.byPath[p] = r
	}
	r.access |= access
	r.covers[rule] = true
	if why != "" {
		r.widened[[2]string{rule, why}] |= access
	}
}

func (b *planBuilder) rules() []profiles.LandlockPath {
	out := []profiles.LandlockPath{}
	for _, p := range sortedKeys(boolKeys(b.byPath)) {
		r := b.byPath[p]
		lp := profiles.LandlockPath{Path: p, Access: profiles.LandlockRightNames(r.access), Covers: sortedKeys(r.covers)}
		keys := make([][2]string, 0, len(r.widened))
		for k := range r.widened {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b [2]string) int {
			if c := strings.Compare(a[0], b[0]); c != 0 {
				return c
			}
			return strings.Compare(a[1], b[1])
		})
		for _, k := range keys {
			lp.Widened = append(lp.Widened, profiles.LandlockWidening{Rule: k[0], Access: profiles.LandlockRightNames(r.widened[k]), Reason: k[1]})
		}
		out = append(out, lp)
	}
	return out
}

func boolKeys[V any](m map[string]V) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// inetFamilies are the families whose stream sockets are TCP.
var inetFamilies = []string{"AF_INET", "AF_INET6"}

// tcpPlan lists the learned TCP ports: bind to every bound or listening port, connect
// to every port connected to. Ports come only from a target that made TCP sockets;
// one that made none gets no port at all (every TCP bind and connect is refused).
// Failed connects are not needs: under Landlock they fail with EACCES.
func tcpPlan(sockets []profiles.Socket, net profiles.BundleNetwork) profiles.LandlockTCP {
	tcp := profiles.LandlockTCP{Bind: []uint16{}, Connect: []uint16{}}
	if !slices.ContainsFunc(sockets, func(s profiles.Socket) bool {
		return slices.Contains(inetFamilies, s.Family) && s.Type == "SOCK_STREAM"
	}) {
		return tcp
	}
	for _, p := range append(slices.Clone(net.Binds), net.Listens...) {
		if slices.Contains(inetFamilies, p.Family) {
			tcp.Bind = append(tcp.Bind, p.Port)
		}
	}
	for _, p := range net.Connects {
		if slices.Contains(inetFamilies, p.Family) {
			tcp.Connect = append(tcp.Connect, p.Port)
		}
	}
	slices.Sort(tcp.Bind)
	slices.Sort(tcp.Connect)
	tcp.Bind, tcp.Connect = slices.Compact(tcp.Bind), slices.Compact(tcp.Connect)
	return tcp
}

// notEnforced says what Landlock cannot express of the bundle's rules, so the
// start-up report and SUMMARY.txt can name it.
func notEnforced(files []profiles.FileRule, net profiles.BundleNetwork) []string {
	var setattr, connect []string
	for _, f := range files {
		if slices.Contains(f.Access, profiles.AccessSetattr) {
			setattr = append(setattr, f.Pattern)
		}
		if slices.Contains(f.Access, profiles.AccessConnect) {
			connect = append(connect, f.Pattern)
		}
	}
	out := []string{}
	if len(setattr) > 0 {
		out = append(out, "setattr (chmod, chown, utimes) is not enforced by Landlock, which has no right for it; only truncate is (on "+strings.Join(setattr, ", ")+")")
	} else {
		out = append(out, "chmod, chown and utimes are not restricted by Landlock, which has no right for them")
	}
	if len(connect) > 0 {
		out = append(out, "unix socket connects by path are not restricted by Landlock before ABI 9, which this tailor does not use (learned: "+strings.Join(connect, ", ")+")")
	}
	var addrs []string
	for _, p := range net.Connects {
		if slices.Contains(inetFamilies, p.Family) {
			addrs = append(addrs, fmt.Sprintf("%s port %d", p.Address, p.Port))
		}
	}
	if len(addrs) > 0 {
		out = append(out, "TCP connects are restricted by port only, to any address: Landlock cannot filter by address (learned: "+strings.Join(slices.Compact(addrs), ", ")+")")
	}
	var abstract, udp []string
	for _, p := range append(slices.Clone(net.Connects), net.Sends...) {
		switch {
		case p.Family == "AF_UNIX" && strings.HasPrefix(p.Address, "@"):
			abstract = append(abstract, p.Address)
		case slices.Contains(inetFamilies, p.Family) && slices.ContainsFunc(net.Sends, func(s profiles.Peer) bool { return s == p }):
			udp = append(udp, fmt.Sprintf("%s port %d", p.Address, p.Port))
		}
	}
	if len(abstract) > 0 {
		slices.Sort(abstract)
		out = append(out, "abstract unix sockets are not restricted by Landlock (learned: "+strings.Join(slices.Compact(abstract), ", ")+")")
	}
	if len(udp) > 0 {
		slices.Sort(udp)
		out = append(out, "datagrams sent with an address (UDP) are not restricted by Landlock before ABI 10 (learned: "+strings.Join(slices.Compact(udp), ", ")+")")
	}
	return out
}
