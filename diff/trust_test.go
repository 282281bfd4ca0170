package diff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

// TestDiffComparesBundleFiles: diff --fail-on-added fails (exit 1) when NEW is the
// same bundle with an allow-all, a truncated, a missing or a widened seccomp.json,
// although bundle.json is unchanged; the same bundle copied whole is no difference.
func TestDiffComparesBundleFiles(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old")
	if _, stderr, code := run(t, "generate", "-o", old, rec("caps")); code != 0 {
		t.Fatalf("generate: %s", stderr)
	}
	seccomp, err := os.ReadFile(filepath.Join(old, profiles.BundleSeccompFile))
	if err != nil {
		t.Fatal(err)
	}
	// copyWith copies old with seccomp.json replaced (nil: removed); keep leaves it.
	copyWith := func(name string, sc []byte, keep bool) string {
		out := filepath.Join(dir, name)
		os.Mkdir(out, 0o700)
		entries, _ := os.ReadDir(old)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(old, e.Name()))
			if e.Name() == profiles.BundleSeccompFile && !keep {
				if sc == nil {
					continue
				}
				data = sc
			}
			os.WriteFile(filepath.Join(out, e.Name()), data, 0o600)
		}
		return out
	}
	for _, c := range []struct {
		name string
		dir  string
		want string
	}{
		{"allow-all", copyWith("allow-all", []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), false), "seccomp.json was changed or truncated after generate"},
		{"truncated", copyWith("truncated", seccomp[:len(seccomp)/2], false), "seccomp.json was changed or truncated after generate"},
		{"missing", copyWith("missing", nil, false), "seccomp.json is missing"},
	} {
		stdout, stderr, code := run(t, "diff", "--fail-on-added", old, c.dir)
		if code != 1 || !strings.Contains(stdout, "+ problem "+c.want) {
			t.Errorf("diff --fail-on-added OLD %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.name, code, stdout, stderr, c.want)
		}
	}
	// The digest rewritten too: the seccomp.json itself shows what it lets through.
	widened := copyWith("widened", []byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`), false)
	manifest, _ := os.ReadFile(filepath.Join(widened, profiles.BundleManifestFile))
	manifest = []byte(strings.Replace(string(manifest), profiles.FileDigest(seccomp), profiles.FileDigest([]byte(`{"defaultAction": "SCMP_ACT_ALLOW"}`)), 1))
	os.WriteFile(filepath.Join(widened, profiles.BundleManifestFile), manifest, 0o600)
	stdout, _, code := run(t, "diff", "--fail-on-added", old, widened)
	if code != 1 || !strings.Contains(stdout, "default action is SCMP_ACT_ALLOW") || !strings.Contains(stdout, "~ file seccomp.json differs") {
		t.Errorf("diff of an allow-all seccomp.json with its digest: exit %d\n%s", code, stdout)
	}
	same := copyWith("same", nil, true)
	if stdout, _, code := run(t, "diff", "--fail-on-added", old, same); code != 0 || strings.TrimSpace(stdout) != "no difference" {
		t.Errorf("diff of a whole copy: exit %d %q", code, stdout)
	}
}
