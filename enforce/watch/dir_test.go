package watch

import (
	"os"
	"path/filepath"
	"testing"
)

// TestIsDirIn: a chown or chmod read from the arguments names a directory without its
// trailing slash; the watcher looks it up in the process's root.
func TestIsDirIn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	pid := os.Getpid()
	for path, want := range map[string]bool{dir: true, file: false, filepath.Join(dir, "link"): false, filepath.Join(dir, "gone"): false} {
		if got := isDirIn(pid, path); got != want {
			t.Errorf("isDirIn(%s) = %v, want %v", path, got, want)
		}
	}
	if got := isDirIn(1<<30, dir); got {
		t.Error("a process that does not exist sees a directory")
	}
}
