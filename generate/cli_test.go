package generate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/clitest"
	"github.com/tailor-sec/tailor/profiles"
)

// run runs tailor's generate in-process (see clitest.Run).
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return clitest.Run(t, []*cli.Command{Command()}, args...)
}

func rec(name string) string { return filepath.Join(recordingsDir, name+".json") }

func TestCLIBadInput(t *testing.T) {
	good, err := os.ReadFile(rec("webserver"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, want string }{
		{"not-json", "this is not json", "not JSON"},
		{"schema", strings.Replace(string(good), `"schemaVersion": 2`, `"schemaVersion": 99`, 1), "schema version 99"},
		{"syscall", strings.Replace(string(good), `"accept4"`, `"accept5"`, 1), "accept5"},
		{"capability", strings.Replace(string(good), `"CAP_CHOWN"`, `"CAP_CHOWNX"`, 1), "CAP_CHOWNX"},
		{"arch", strings.Replace(string(good), `"SCMP_ARCH_X86_64"`, `"SCMP_ARCH_PDP11"`, 1), "SCMP_ARCH_PDP11"},
		{"empty", strings.Replace(string(good), `"syscalls": [`, `"syscalls": [], "x": [`, 1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".json")
			body := tc.body
			if tc.name == "empty" {
				var r map[string]any
				if err := json.Unmarshal(good, &r); err != nil {
					t.Fatal(err)
				}
				r["syscalls"] = []any{}
				data, _ := json.Marshal(r)
				body, tc.want = string(data), "empty recording"
			}
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out-"+tc.name)
			_, stderr, code := run(t, "generate", "-o", out, path)
			if code != 2 || !strings.Contains(stderr, path) || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") > 0 {
				t.Errorf("exit %d, stderr %q: want exit 2 and one line naming %s and %q", code, stderr, path, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output written for bad input")
			}
		})
	}
}

func TestCLIGenerate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "web")
	stdout, stderr, code := run(t, "generate", "-o", out, rec("webserver"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "syscalls allowed") || !strings.Contains(stdout, "capabilities: 4 added") {
		t.Errorf("summary missing from stdout: %s", stdout)
	}
	b, err := profiles.LoadBundle(out)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "tailor-web" || len(b.Sources) != 1 || b.Sources[0].File != rec("webserver") {
		t.Errorf("manifest: %+v", b)
	}
}
