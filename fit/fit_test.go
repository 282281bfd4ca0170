package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/internal/testpriv"
)

// TestFitShort is make fit's short variant, run by make test: sqlite3 learned, its
// workload replayed once and a held-out workload run in another directory with no
// false denial, and three attack steps flagged and blocked.
func TestFitShort(t *testing.T) {
	testpriv.RequireRoot(t)
	for _, tool := range []string{"gcc", "/usr/bin/sqlite3"} {
		if _, err := exec.LookPath(tool); err != nil {
			testpriv.Unavailable(t, tool+" is needed (make setup installs it)")
		}
	}
	bin := filepath.Join(t.TempDir(), "tailor")
	if b, err := exec.Command("go", "build", "-o", bin, "../cmd/tailor").CombinedOutput(); err != nil {
		t.Fatalf("building tailor: %v: %s", err, b)
	}
	var out strings.Builder
	rep, err := run(bin, []*program{&sqlite}, true, io.MultiWriter(&out, testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.programs[0]
	if r.setupErr != "" {
		t.Fatal(r.setupErr)
	}
	if n := r.falseDenials(); n != 0 {
		t.Errorf("%d false denials", n)
	}
	for _, a := range r.attacks {
		if !a.flagged || !a.blocked {
			t.Errorf("attack %s: got %s, flagged %v, blocked %v", a.step, a.result, a.flagged, a.blocked)
		}
	}
	if !strings.Contains(out.String(), "fit: programs=1 false-denials=0 attacks-flagged=3/3 attacks-blocked=3/3") {
		t.Errorf("summary line: %s", out.String())
	}
	if _, err := os.Stat("/etc/fit-attack"); err == nil {
		t.Error("/etc/fit-attack was left behind")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
