package learn

import (
	"os"
	"strings"
	"testing"
)

// TestPTInterp: a script and a static ELF have no interpreter and are no error (an
// exec'd script must not make a recording incomplete); a dynamic ELF names its loader.
func TestPTInterp(t *testing.T) {
	if got, err := ptInterp(strings.NewReader("#!/bin/sh\necho hi\n"), "script"); got != "" || err != nil {
		t.Errorf("script: %q, %v; want no interpreter", got, err)
	}
	for path, dynamic := range map[string]bool{"/bin/busybox": false, "/bin/true": true} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatalf("the test reads the host's %s: %v", path, err)
		}
		got, err := ptInterp(f, path)
		f.Close()
		if err != nil || (got != "") != dynamic || (dynamic && !strings.HasPrefix(got, "/")) {
			t.Errorf("%s: interpreter %q, %v; want one: %v", path, got, err, dynamic)
		}
	}
}
