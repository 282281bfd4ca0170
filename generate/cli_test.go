package generate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// run runs tailor's generate, merge and diff commands in-process and returns stdout,
// stderr and the exit code main would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.App{
		Name:           "tailor",
		Commands:       []*cli.Command{Command(), MergeCommand(), DiffCommand()},
		Writer:         &stdout,
		ErrWriter:      &stderr,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.Run(append([]string{"tailor"}, args...))
	if err != nil {
		stderr.WriteString(err.Error())
	}
	return stdout.String(), stderr.String(), fail.Code(err)
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

func TestCLIMergeAndDiff(t *testing.T) {
	dir := t.TempDir()
	merged := filepath.Join(dir, "merged.json")
	if _, stderr, code := run(t, "merge", "-o", merged, rec("caps"), rec("shell-tree")); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	m, err := profiles.LoadRecording(merged)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete || len(m.Execs) != 6 {
		t.Errorf("merged: complete %v, %d execs, want complete and 6", m.Complete, len(m.Execs))
	}

	// The merged recording allows more than caps.json: diff lists it and
	// --fail-on-added exits 1.
	stdout, _, code := run(t, "diff", rec("caps"), merged)
	if code != 0 || !strings.Contains(stdout, "+ syscall SCMP_ARCH_X86_64 vfork") || !strings.Contains(stdout, "+ exec /bin/ls") {
		t.Errorf("diff: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, "\n- ") || strings.HasPrefix(stdout, "- ") {
		t.Errorf("diff of a recording against its superset removes something:\n%s", stdout)
	}
	_, stderr, code := run(t, "diff", "--fail-on-added", rec("caps"), merged)
	if code != 1 || !strings.Contains(stderr, ErrAdded.Error()) {
		t.Errorf("--fail-on-added with additions: exit %d %q, want 1", code, stderr)
	}
	// The reverse direction only removes: --fail-on-added passes.
	stdout, _, code = run(t, "diff", "--fail-on-added", "--json", merged, rec("caps"))
	if code != 0 {
		t.Errorf("--fail-on-added without additions: exit %d", code)
	}
	var d profiles.PolicyDiff
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if !d.Added.Empty() || len(d.Removed.Execs) != 6 {
		t.Errorf("json diff: %+v", d)
	}

	// Bundles compare too.
	b1, b2 := filepath.Join(dir, "b1"), filepath.Join(dir, "b2")
	for _, c := range [][]string{{"-o", b1, rec("caps")}, {"-o", b2, rec("caps"), rec("webserver")}} {
		if _, stderr, code := run(t, append([]string{"generate"}, c...)...); code != 0 {
			t.Fatalf("generate: %s", stderr)
		}
	}
	stdout, _, code = run(t, "diff", b1, b2)
	if code != 0 || !strings.Contains(stdout, "+ capability CAP_NET_BIND_SERVICE") || !strings.Contains(stdout, "+ socket-family AF_UNIX") {
		t.Errorf("bundle diff: exit %d\n%s", code, stdout)
	}
	if stdout, _, _ := run(t, "diff", b1, b1); strings.TrimSpace(stdout) != "no difference" {
		t.Errorf("diff of a bundle with itself: %s", stdout)
	}
	if _, stderr, code := run(t, "diff", b1, filepath.Join(dir, "nothing")); code != 2 || !strings.Contains(stderr, "nothing") {
		t.Errorf("diff with a missing side: exit %d %q", code, stderr)
	}
}
