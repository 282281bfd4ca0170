package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/profiles"
)

// TestKindsCoverDocker keeps the kind table honest: no name in two kinds, and every
// syscall Docker's default profile allows (on the architectures tailor records) or an
// example recording makes has a kind other than "other".
func TestKindsCoverDocker(t *testing.T) {
	seen := map[string]string{}
	for kind, names := range syscallKinds {
		if !strings.Contains(strings.Join(Kinds, "|"), kind) {
			t.Errorf("kind %q is not in Kinds", kind)
		}
		for _, n := range strings.Fields(names) {
			if other, ok := seen[n]; ok {
				t.Errorf("%s is both %s and %s", n, other, kind)
			}
			seen[n] = kind
		}
	}
	check := func(where, name string) {
		if SyscallKind(name) == KindOther {
			t.Errorf("%s: %s has no kind", where, name)
		}
	}
	for _, c := range []struct{ machine, arch string }{
		{"x86_64", profiles.ArchX86_64}, {"x86_64", profiles.ArchX86}, {"aarch64", profiles.ArchAARCH64}, {"armv7l", profiles.ArchARM},
	} {
		names := generate.DockerDefaultSyscalls(c.machine, c.arch)
		if len(names) < 200 {
			t.Fatalf("Docker's default allows only %d syscalls on %s", len(names), c.arch)
		}
		for _, n := range names {
			check("Docker default "+c.arch, n)
		}
	}
	for _, f := range exampleRecordings(t) {
		r, err := profiles.LoadRecording(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Syscalls {
			for _, n := range s.Names {
				check(f, n)
			}
		}
	}
}

// exampleRecordings are the recordings under testdata/recordings, the real ones too.
func exampleRecordings(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, glob := range []string{"*.json", "real/*.json"} {
		m, err := filepath.Glob(filepath.Join("..", "testdata", "recordings", glob))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 8 {
		t.Fatalf("only %d example recordings", len(out))
	}
	return out
}

// writeBundle generates the bundle of one recording with generate.Generate and
// writes it under dir.
func writeBundle(t *testing.T, recording, dir string) string {
	t.Helper()
	r, err := profiles.LoadRecording(recording)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(recording), ".json"))
	b, err := generate.Generate([]*profiles.Recording{r}, generate.Options{Dir: out, Sources: []string{recording}, Version: "test"})
	if err != nil {
		t.Fatalf("%s: %v", recording, err)
	}
	if _, err := generate.Write(out, b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, profiles.BundleManifestFile)); err != nil {
		t.Fatal(err)
	}
	return out
}
