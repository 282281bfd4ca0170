package merge

import (
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/clitest"
	"github.com/tailor-sec/tailor/profiles"
)

// run runs tailor's merge in-process (see clitest.Run).
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return clitest.Run(t, []*cli.Command{Command()}, args...)
}

func rec(name string) string { return filepath.Join("../testdata/recordings", name+".json") }

func TestCLIMerge(t *testing.T) {
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
}
