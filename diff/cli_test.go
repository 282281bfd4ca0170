package diff

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/clitest"
	"github.com/tailor-sec/tailor/profiles"
)

// run runs tailor's diff (and generate, for bundles to compare) in-process (see clitest.Run).
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return clitest.Run(t, []*cli.Command{Command(), generate.Command()}, args...)
}

func rec(name string) string { return filepath.Join("../testdata/recordings", name+".json") }

func TestCLIDiff(t *testing.T) {
	dir := t.TempDir()
	var recs []*profiles.Recording
	for _, n := range []string{"caps", "shell-tree"} {
		r, err := profiles.LoadRecording(rec(n))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	merged := filepath.Join(dir, "merged.json")
	if err := profiles.Merge(recs...).Save(merged); err != nil {
		t.Fatal(err)
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
