package generate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/profiles"
)

// TestBundleRedactsSecrets: a recording held in memory with a container's secrets
// (as learn has it before saving) gives a bundle in which no file holds them, while
// bundle.json keeps the variable names.
func TestBundleRedactsSecrets(t *testing.T) {
	r := loadRec(t, "webserver")
	r.Target.Container.Config = map[string]any{"Config": map[string]any{"Env": []any{
		"DB_PASSWORD=hunter2-horse", "API_TOKEN=abc-token-value", "DATABASE_URL=mysql://app:pw-in-url@db/app",
		"LANG=C.UTF-8",
	}}}
	// The second of two: Merge only normalises (and so redacts) the first's target.
	b, err := Generate([]*profiles.Recording{loadRec(t, "webserver"), r}, testOptions("webserver"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if _, err := Write(dir, b, nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, s := range []string{"hunter2-horse", "abc-token-value", "pw-in-url"} {
			if strings.Contains(string(data), s) {
				t.Errorf("%s holds the secret %q", e.Name(), s)
			}
		}
	}
	manifest, _ := os.ReadFile(filepath.Join(dir, profiles.BundleManifestFile))
	for _, s := range []string{"DB_PASSWORD=" + profiles.Redacted, "LANG=C.UTF-8"} {
		if !strings.Contains(string(manifest), s) {
			t.Errorf("bundle.json lacks %q", s)
		}
	}
}
