package main

import (
	"os"
	"syscall"
	"testing"

	"github.com/tailor-sec/tailor/internal/launch"
)

func TestMain(m *testing.M) {
	launch.Main()
	os.Exit(m.Run())
}

// Docker's default profile, as the bench renders it, compiles with tailor's compiler
// and runs a program through tailor's launcher: the comparison measures a filter that
// was really installed.
func TestDockerDefaultLoads(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root (no_new_privs is set by the launcher, but the bench runs as root)")
	}
	profile, err := dockerDefault()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	marker := dir + "/ran"
	// The server: writes the marker, then waits to be stopped; the workload waits for it.
	argv := []string{"/bin/sh", "-c", "grep -q '^Seccomp:.*2' /proc/self/status && touch " + marker + "; exec sleep 30"}
	workload := "i=0; until [ -e " + marker + " ]; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done"
	if err := runFiltered(argv, workload, nil, syscall.SIGTERM, profile); err != nil {
		// The server ends by the SIGTERM sent: that is not the failure looked for.
		if _, statErr := os.Stat(marker); statErr != nil {
			t.Fatalf("the program did not run under the filter: %v", err)
		}
	}
}
