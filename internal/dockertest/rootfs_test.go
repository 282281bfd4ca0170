package dockertest

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// RootfsContext holds the Dockerfile, each program with the files ldd lists for it,
// a host tree file by file, and extra files with their owners and modes, each
// directory once.
func TestRootfsContext(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	libs, err := lddPaths(DynamicProgram)
	if err != nil {
		t.Skip(err)
	}
	buf, err := RootfsContext("FROM scratch\n", []string{DynamicProgram}, []string{tree},
		[]File{{Name: "rootfs/etc/shadow", Mode: 0o640, Gid: 42, Data: []byte("root:*:1::::::\n")},
			{Name: "state/data", Mode: 0o700, Uid: 101, Dir: true}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if got[h.Name] != nil {
			t.Errorf("%s written twice", h.Name)
		}
		got[h.Name] = h
	}
	want := []string{"Dockerfile", "rootfs/etc/", "rootfs/etc/shadow", "state/", "state/data/", "rootfs" + tree + "/sub/f"}
	for _, lib := range libs {
		// Each library as the file it resolves to on the host (the links to it too).
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "rootfs"+real)
	}
	for _, name := range want {
		if got[name] == nil {
			t.Errorf("no %s in the context", name)
		}
	}
	if h := got["rootfs/etc/shadow"]; h == nil || h.Mode != 0o640 || h.Gid != 42 {
		t.Errorf("shadow: %+v", h)
	}
	if h := got["state/data/"]; h == nil || h.Uid != 101 || h.Mode != 0o700 || h.Typeflag != tar.TypeDir {
		t.Errorf("state/data: %+v", h)
	}
	if h := got["rootfs"+tree+"/sub/f"]; h == nil || h.Mode != 0o640 || h.Size != 1 {
		t.Errorf("tree file: %+v", h)
	}
}
