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
	if err := resolveCwd(&b, "/ci/w[1]/repo"); err != nil {
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
	if err := resolveCwd(&b, "relative"); err == nil {
		t.Error("a relative working directory was accepted")
	}
}
