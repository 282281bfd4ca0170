package generate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

// word is the n-th name of four lowercase letters: no digit, so no generalisation
// rule widens it.
func word(n int) string {
	b := make([]byte, 4)
	for i := range b {
		b[i] = byte('a' + n%26)
		n /= 26
	}
	return string(b)
}

// crowded returns many-files.json with n more files read, each in a directory of its
// own beneath each of dirs.
func crowded(t *testing.T, n int, dirs ...string) *profiles.Recording {
	t.Helper()
	r := loadRec(t, "many-files")
	for _, d := range dirs {
		for i := 0; i < n; i++ {
			w := word(i)
			r.Files = append(r.Files, profiles.FileAccess{Path: d + "/" + w + "/" + w + ".dat", Access: []string{profiles.AccessRead}})
		}
	}
	slices.SortFunc(r.Files, func(a, b profiles.FileAccess) int { return strings.Compare(a.Path, b.Path) })
	return r
}

func ruleOf(b *Bundle, pattern string) *profiles.FileRule {
	for i, f := range b.Manifest.Files {
		if f.Pattern == pattern {
			return &b.Manifest.Files[i]
		}
	}
	return nil
}

// TestHugeRecordingStillBuilds: 30,000 files read in 30,000 directories of one
// directory, which apparmor_parser refuses as one profile ("Too many states (79791)
// for type state_t", after two minutes), become a bundle the real parser accepts:
// the directory is collapsed to one read rule, and bundle.json, SUMMARY.txt and the
// warnings say so. The recording's sensitive files keep their exact rules.
func TestHugeRecordingStillBuilds(t *testing.T) {
	check := parserOrSkip(t)
	rec := crowded(t, 30000, "/srv/store")
	b, err := Build([]*profiles.Recording{rec}, testOptions("huge"), check)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	r := ruleOf(b, "/srv/store/**")
	if r == nil || !slices.Equal(r.Access, []string{profiles.AccessRead}) {
		t.Fatalf("no read rule /srv/store/**: %+v", r)
	}
	if n := len(b.Manifest.Files); n > 100 {
		t.Errorf("%d file rules left", n)
	}
	for _, exact := range []string{"/etc/shadow", "/etc/ssl/private/key00.pem"} {
		if ruleOf(b, exact) == nil {
			t.Errorf("sensitive rule %s is gone", exact)
		}
	}
	i := slices.IndexFunc(b.Manifest.Generalised, func(g profiles.Generalisation) bool {
		return g.Rule == ruleSizeCollapse && g.Added == "/srv/store/**"
	})
	if i < 0 {
		t.Fatalf("bundle.json names no size collapse: %+v", b.Manifest.Generalised)
	}
	g := b.Manifest.Generalised[i]
	if len(g.From) != 20 || !strings.Contains(g.Reason, "30000 file rules beneath this directory (the first 20 of 30000 in from)") || !strings.Contains(g.Reason, "30033 file rules, more than the 5000") {
		t.Errorf("generalisation %+v", g)
	}
	sum := string(b.Files[profiles.BundleSummaryFile])
	if !strings.Contains(sum, "WIDENED: apparmor size: 30033 file rules collapsed to") || !strings.Contains(sum, "/srv/store/**") {
		t.Errorf("SUMMARY.txt does not name the collapse:\n%s", sum)
	}
	if !slices.ContainsFunc(b.Warnings, func(w string) bool { return strings.HasPrefix(w, "apparmor size: ") }) {
		t.Errorf("no warning: %q", b.Warnings)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := Write(dir, b, check); err != nil {
		t.Fatal(err)
	}
	m, err := profiles.LoadBundle(dir)
	if err != nil || !slices.ContainsFunc(m.Generalised, func(g profiles.Generalisation) bool { return g.Rule == ruleSizeCollapse }) {
		t.Errorf("the written bundle.json: %v", err)
	}
}

// sizeLimited is apparmor_parser with a lower size limit: past limit file rules it
// refuses the profile the way the real parser refuses a too large one; under it the
// real parser checks the profile. It counts its calls.
func sizeLimited(check CheckAppArmor, limit int, calls *int) CheckAppArmor {
	return func(path string) error {
		*calls++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n := 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "/") {
				n++
			}
		}
		if n > limit {
			return errors.New("apparmor_parser rejected the generated profile: AppArmor parser error for " + path + " in profile " + path + ": Too many states (79791) for type state_t")
		}
		return check(path)
	}
}

// TestParserSizeRefusalCollapsesFurther: a profile under MaxFileRules that the parser
// refuses for its size is collapsed one level at a time until it passes: the two
// crowded directories each become a rule of their own (not their common parent),
// and the reason quotes the refusal.
func TestParserSizeRefusalCollapsesFurther(t *testing.T) {
	check := parserOrSkip(t)
	rec := crowded(t, 2000, "/srv/a", "/srv/b")
	calls := 0
	b, err := Build([]*profiles.Recording{rec}, testOptions("refused"), sizeLimited(check, 1000, &calls))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if calls != 2 {
		t.Errorf("%d parser runs, want the refusal and the check after one collapse", calls)
	}
	for _, want := range []string{"/srv/a/**", "/srv/b/**"} {
		if ruleOf(b, want) == nil {
			t.Errorf("no rule %s: %+v", want, b.Manifest.Files)
		}
	}
	if ruleOf(b, "/srv/**") != nil {
		t.Error("collapsed to /srv/**, wider than the two crowded directories")
	}
	for _, g := range b.Manifest.Generalised {
		if g.Rule == ruleSizeCollapse && !strings.Contains(g.Reason, "apparmor_parser refused the profile of 4033 file rules") {
			t.Errorf("reason %q", g.Reason)
		}
	}
	if !strings.Contains(b.Summary.SizeCollapse, "level 2") {
		t.Errorf("summary %q", b.Summary.SizeCollapse)
	}

	// A refusal for something else is not a size problem: no collapse, the error.
	calls = 0
	bad := func(string) error {
		calls++
		return errors.New("apparmor_parser rejected the generated profile: Invalid capability net_rawww.")
	}
	if _, err := Build([]*profiles.Recording{rec}, testOptions("bad"), bad); err == nil || !strings.Contains(err.Error(), "Invalid capability") || calls != 1 {
		t.Errorf("a content refusal: %v after %d runs", err, calls)
	}
	// A size refusal that no collapse cures ends with the parser's line and what is left.
	calls = 0
	_, err = Build([]*profiles.Recording{rec}, testOptions("never"), sizeLimited(check, 0, &calls))
	if err == nil || !strings.Contains(err.Error(), "Too many states") || !strings.Contains(err.Error(), "even with every collapsible directory collapsed") {
		t.Errorf("an incurable size refusal: %v", err)
	}
}

// TestCoarsenNeverTouchesSensitive: at the last level, rules under /etc, /proc, a
// home directory's .ssh, /root and the programs run stay as they are; an ordinary
// directory collapses.
func TestCoarsenNeverTouchesSensitive(t *testing.T) {
	var files []profiles.FileRule
	for _, d := range []string{"/etc/app", "/proc/sys/net", "/home/u/.ssh", "/root/work", "/usr/bin", "/srv/data"} {
		for i := 0; i < 3; i++ {
			access := []string{profiles.AccessRead}
			if d == "/usr/bin" {
				access = []string{profiles.AccessExec, profiles.AccessRead}
			}
			files = append(files, profiles.FileRule{Pattern: d + "/" + word(i), Access: access})
		}
	}
	out, gens, res := coarsen(files, nil, maxCoarsen, "test")
	if len(res.dirs) != 1 || res.dirs[0] != "/srv/data/**" || len(gens) != 1 {
		t.Fatalf("collapsed %v (%d generalisations), want /srv/data/** only", res.dirs, len(gens))
	}
	if len(out) != len(files)-3+1 {
		t.Errorf("%d rules left: %+v", len(out), out)
	}
	for _, d := range []string{"/", "/home", "/home/u", "/etc", "/etc/app", "/proc", "/run", "/var", "/dev", "/sys/fs"} {
		if collapsible(d) {
			t.Errorf("%s is collapsible", d)
		}
	}
	for _, d := range []string{"/srv", "/tmp/x", "/var/cache/app", "/home/u/docs"} {
		if !collapsible(d) {
			t.Errorf("%s is not collapsible", d)
		}
	}
}

func TestLiteralDir(t *testing.T) {
	for pat, want := range map[string]string{
		"/srv/a/b.dat": "/srv/a", "/srv/a/": "/srv", "/proc/@{pid}/stat": "/proc",
		"/tmp/session-*/state": "/tmp", "/srv/x/*": "/srv/x", `/srv/config\[prod\].yaml`: "/srv",
	} {
		if got := literalDir(pat); got != want {
			t.Errorf("literalDir(%q) = %q, want %q", pat, got, want)
		}
	}
}
