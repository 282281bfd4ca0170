package enforce

import (
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

func TestResolveCwd(t *testing.T) {
	b := profiles.Bundle{
		Files: []profiles.FileRule{{Pattern: "@{cwd}/data/*"}, {Pattern: "@{cwd}/"}, {Pattern: "/etc/hosts"}},
		Execs: []string{"@{cwd}/run.sh"},
		Network: profiles.BundleNetwork{Connects: []profiles.Peer{
			{Family: "AF_UNIX", Address: "@{cwd}/s.sock"}, {Family: "AF_UNIX", Address: "@abstract"}}},
		Landlock: profiles.LandlockPlan{Paths: []profiles.LandlockPath{{Path: "@{cwd}/data", Covers: []string{"@{cwd}/data/*"}}, {Path: "@{cwd}"}}},
	}
	if !usesCwd(&b) {
		t.Fatal("usesCwd = false")
	}
	if _, err := landlockRules(b.Landlock); err != nil {
		t.Fatalf("a bundle with @{cwd} Landlock paths is refused: %v", err)
	}
	if err := resolveCwd(&b, "/ci/w[1]/repo", "/root"); err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		b.Files[0].Pattern:            `/ci/w\[1\]/repo/data/*`,
		b.Files[1].Pattern:            `/ci/w\[1\]/repo/`,
		b.Files[2].Pattern:            "/etc/hosts",
		b.Execs[0]:                    `/ci/w\[1\]/repo/run.sh`,
		b.Network.Connects[0].Address: `/ci/w\[1\]/repo/s.sock`,
		b.Network.Connects[1].Address: "@abstract",
		b.Landlock.Paths[0].Path:      "/ci/w[1]/repo/data",
		b.Landlock.Paths[0].Covers[0]: `/ci/w\[1\]/repo/data/*`,
		b.Landlock.Paths[1].Path:      "/ci/w[1]/repo",
	} {
		if got != want {
			t.Errorf("resolved %q, want %q", got, want)
		}
	}
	if usesCwd(&b) {
		t.Error("usesCwd after resolving")
	}
	if err := resolveCwd(&b, "relative", ""); err == nil {
		t.Error("a relative working directory was accepted")
	}
}

// The working-tree rule (@{cwd}/**) is refused where it would grant reading the
// system or a home; other @{cwd} rules are refused in a directory generate would not
// have written them for (@{cwd}/*/out run from / would be /*/out).
func TestResolveCwdTree(t *testing.T) {
	bundle := func(pattern string) *profiles.Bundle {
		return &profiles.Bundle{Files: []profiles.FileRule{{Pattern: pattern, Access: []string{profiles.AccessRead}}}}
	}
	for _, tc := range []struct {
		dir, home string
		ok        bool // the tree rule
		rulesOK   bool // a rule beneath the directory
	}{
		{"/srv/ci/checkout", "/root", true, true},
		{"/home/u/src/app", "/home/u", true, true},
		{"/tmp/build/repo", "", true, true},
		{"/", "/root", false, false},
		{"/srv", "/root", false, false},
		{"/tmp", "/root", false, false},
		{"/etc/nginx", "/root", false, false},
		{"/usr/src/linux", "/root", false, false},
		{"/home/u", "/home/u", false, false},
		{"/root/src", "/root", false, false},
		{"/var/lib/postgresql", "/var/lib/postgresql", false, true},
		{"/data/users", "/data/users/u", false, true},
		{"/home/u/.ssh", "/home/u", false, false},
	} {
		err := resolveCwd(bundle("@{cwd}/**"), tc.dir, tc.home)
		if (err == nil) != tc.ok {
			t.Errorf("tree in %s (HOME %s): err %v, want ok %v", tc.dir, tc.home, err, tc.ok)
		}
		if err := resolveCwd(bundle("@{cwd}/data/*"), tc.dir, tc.home); (err == nil) != tc.rulesOK {
			t.Errorf("a rule beneath the directory in %s: err %v, want ok %v", tc.dir, err, tc.rulesOK)
		}
	}
}
