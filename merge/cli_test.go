package merge

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// run runs tailor's merge in-process and returns stdout, stderr and the exit code main
// would use.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.App{
		Name:           "tailor",
		Commands:       []*cli.Command{Command()},
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
