package generate

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

func TestRelocatableCwd(t *testing.T) {
	cmd := func(cwd string) *profiles.Recording {
		return &profiles.Recording{Target: profiles.Target{Kind: "command", Cwd: cwd}}
	}
	for _, tc := range []struct {
		name string
		recs []*profiles.Recording
		want string
	}{
		{"a checkout", []*profiles.Recording{cmd("/home/u/src/app")}, "/home/u/src/app"},
		{"beneath /tmp", []*profiles.Recording{cmd("/tmp/build/app")}, "/tmp/build/app"},
		{"two runs in one directory", []*profiles.Recording{cmd("/srv/app"), cmd("/srv/app")}, "/srv/app"},
		// Kept absolute:
		{"two directories", []*profiles.Recording{cmd("/srv/a"), cmd("/srv/b")}, ""},
		{"a container", []*profiles.Recording{{Target: profiles.Target{Kind: "container", Cwd: "/srv/a"}}}, ""},
		{"unknown", []*profiles.Recording{cmd("")}, ""},
		{"root", []*profiles.Recording{cmd("/")}, ""},
		{"top level", []*profiles.Recording{cmd("/work")}, ""},
		{"/tmp itself", []*profiles.Recording{cmd("/tmp")}, ""},
		{"/var/lib itself", []*profiles.Recording{cmd("/var/lib")}, ""},
		{"a home", []*profiles.Recording{cmd("/home/u")}, ""},
		{"/root", []*profiles.Recording{cmd("/root/src")}, ""},
		{"/etc", []*profiles.Recording{cmd("/etc/nginx")}, ""},
		{"/usr", []*profiles.Recording{cmd("/usr/src/linux")}, ""},
		{"/proc", []*profiles.Recording{cmd("/proc/1")}, ""},
		{"ssh keys", []*profiles.Recording{cmd("/home/u/.ssh")}, ""},
		{"not clean", []*profiles.Recording{cmd("/srv/a/../b")}, ""},
		{"variable syntax", []*profiles.Recording{cmd("/srv/@{x}")}, ""},
	} {
		if got := relocatableCwd(tc.recs); got != tc.want {
			t.Errorf("%s: relocatableCwd = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCwdRulesInBundle(t *testing.T) {
	rec := func() *profiles.Recording {
		r := loadRec(t, "shell-tree")
		r.Target.Kind, r.Target.Cwd = "command", "/srv/build/app"
		r.Files = append(r.Files,
			profiles.FileAccess{Path: "/srv/build/app/data/a.txt", Access: []string{profiles.AccessRead}},
			profiles.FileAccess{Path: "/srv/build/app/12345/out", Access: []string{profiles.AccessCreate, profiles.AccessWrite}},
			profiles.FileAccess{Path: "/srv/build/application", Access: []string{profiles.AccessRead}})
		return r
	}
	b, err := Generate([]*profiles.Recording{rec()}, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	pats := map[string]bool{}
	for _, f := range b.Manifest.Files {
		pats[f.Pattern] = true
	}
	for _, want := range []string{"@{cwd}/data/a.txt", "@{cwd}/*/out", "/srv/build/application"} {
		if !pats[want] {
			t.Errorf("no rule %s in %v", want, pats)
		}
	}
	aa := string(b.Files[profiles.BundleAppArmorFile])
	if !strings.Contains(aa, "\n@{cwd}=/srv/build/app\n") || !strings.Contains(aa, "  @{cwd}/data/a.txt r,") {
		t.Errorf("apparmor.profile:\n%s", aa)
	}
	aaPath := filepath.Join(t.TempDir(), profiles.BundleAppArmorFile)
	if err := os.WriteFile(aaPath, b.Files[profiles.BundleAppArmorFile], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := parserOrSkip(t)(aaPath); err != nil {
		t.Errorf("apparmor_parser refuses the profile with @{cwd}: %v", err)
	}
	var landlock []string
	for _, p := range b.Manifest.Landlock.Paths {
		landlock = append(landlock, p.Path)
	}
	if !strings.Contains(strings.Join(landlock, " "), "@{cwd}/data") {
		t.Errorf("landlock plan %v has no @{cwd} path", landlock)
	}
	// --strict keeps every rule absolute.
	b, err = Generate([]*profiles.Recording{rec()}, Options{Version: "test", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b.Files[profiles.BundleManifestFile]), "@{cwd}") || strings.Contains(string(b.Files[profiles.BundleAppArmorFile]), "@{cwd}") {
		t.Error("--strict made rules relative to the working directory")
	}
}

// A walk of the working directory's tree becomes @{cwd}/** in every file of the
// bundle: apparmor_parser accepts it, Landlock grants it on @{cwd} itself, not wider.
func TestCwdTreeInBundle(t *testing.T) {
	r := loadRec(t, "shell-tree")
	r.Target.Kind, r.Target.Cwd, r.Target.Home = "command", "/srv/build/app", "/root"
	dir := func(p string) profiles.FileAccess {
		return profiles.FileAccess{Path: p, Access: []string{profiles.AccessList}, Dir: true}
	}
	read := func(p string) profiles.FileAccess {
		return profiles.FileAccess{Path: p, Access: []string{profiles.AccessRead}}
	}
	r.Files = append(r.Files, dir("/srv/build/app"), dir("/srv/build/app/src"), read("/srv/build/app/README"),
		read("/srv/build/app/src/a.c"), read("/srv/build/app/src/b.c"),
		profiles.FileAccess{Path: "/srv/build/app/out.o", Access: []string{profiles.AccessCreate, profiles.AccessWrite}})
	b, err := Generate([]*profiles.Recording{r}, Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, f := range b.Manifest.Files {
		if strings.HasPrefix(f.Pattern, CwdVar) {
			pats = append(pats, f.Pattern+" "+strings.Join(f.Access, ","))
		}
	}
	if want := []string{"@{cwd}/** list,read", "@{cwd}/out.o create,write"}; strings.Join(pats, "|") != strings.Join(want, "|") {
		t.Errorf("@{cwd} rules %v, want %v", pats, want)
	}
	aa := string(b.Files[profiles.BundleAppArmorFile])
	if !strings.Contains(aa, "  @{cwd}/** r,") {
		t.Errorf("apparmor.profile:\n%s", aa)
	}
	aaPath := filepath.Join(t.TempDir(), profiles.BundleAppArmorFile)
	if err := os.WriteFile(aaPath, b.Files[profiles.BundleAppArmorFile], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := parserOrSkip(t)(aaPath); err != nil {
		t.Errorf("apparmor_parser refuses the profile with @{cwd}/**: %v", err)
	}
	for _, p := range b.Manifest.Landlock.Paths {
		if p.Path == "/srv/build" || p.Path == "/srv" || p.Path == "/" {
			t.Errorf("Landlock grants %v on %s, above the working directory", p.Access, p.Path)
		}
		if p.Path == CwdVar && len(p.Widened) > 0 && slices.ContainsFunc(p.Widened, func(w profiles.LandlockWidening) bool { return w.Rule == "@{cwd}/**" }) {
			t.Errorf("@{cwd}/** is listed as a Landlock widening: %+v", p.Widened)
		}
	}
	if !slices.ContainsFunc(b.Manifest.Generalised, func(g profiles.Generalisation) bool { return g.Added == "@{cwd}/**" && g.Rule == ruleTree }) {
		t.Errorf("the working tree is not listed as generalised: %+v", b.Manifest.Generalised)
	}
}
