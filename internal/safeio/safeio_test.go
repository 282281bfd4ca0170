package safeio

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/testpriv"
)

// paths makes a directory with a regular file, a symlink to it, a dangling symlink,
// a FIFO, a directory and a symlink to that directory.
func paths(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "victim"), []byte("victim\n"), 0o644))
	must(os.Symlink(filepath.Join(dir, "victim"), filepath.Join(dir, "link")))
	must(os.Symlink(filepath.Join(dir, "created-by-link"), filepath.Join(dir, "dangling")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	must(os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "sublink")))
	return dir
}

func checkVictim(t *testing.T, dir string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, "victim")); err != nil || string(b) != "victim\n" {
		t.Errorf("symlink target changed: %q %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-by-link")); err == nil {
		t.Error("a dangling symlink's target was created")
	}
	if st, err := os.Lstat(filepath.Join(dir, "fifo")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st, err)
	}
}

func TestWriteFileAtomicRefuses(t *testing.T) {
	dir := paths(t)
	for _, name := range []string{"link", "dangling", "fifo", "sub", "sublink"} {
		err := WriteFileAtomic(filepath.Join(dir, name), []byte("x"), FileMode)
		if !errors.Is(err, ErrUnsafe) || !errors.Is(err, fail.ErrBadInput) {
			t.Errorf("WriteFileAtomic(%s) = %v, want an unsafe-path error", name, err)
		}
	}
	checkVictim(t, dir)
	if err := WriteFileAtomic(filepath.Join(dir, "nodir", "x"), []byte("x"), FileMode); !errors.Is(err, ErrUnsafe) {
		t.Errorf("missing directory: %v", err)
	}
	// A regular file and a new path are written, 0600 whatever the umask.
	defer syscall.Umask(syscall.Umask(0))
	for _, name := range []string{"victim", "new"} {
		p := filepath.Join(dir, name)
		if err := WriteFileAtomic(p, []byte("new\n"), FileMode); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v", name, st.Mode(), err)
		}
	}
}

// TestWriteFileAtomicDevice: a device node is never replaced by a regular file (root
// writing -o /dev/null must leave /dev/null a device).
func TestWriteFileAtomicDevice(t *testing.T) {
	testpriv.RequireRoot(t)
	dev := filepath.Join(t.TempDir(), "null")
	if err := unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(dev, []byte("x"), FileMode); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "a device") {
		t.Errorf("WriteFileAtomic(device) = %v", err)
	}
	if st, err := os.Lstat(dev); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("device replaced: %v %v", st.Mode(), err)
	}
}

func TestOpenAppend(t *testing.T) {
	dir := paths(t)
	for _, name := range []string{"link", "dangling", "fifo", "sub", "sublink"} {
		f, err := OpenAppend(filepath.Join(dir, name), FileMode)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, ErrUnsafe) {
			t.Errorf("OpenAppend(%s) = %v, want an unsafe-path error", name, err)
		}
	}
	checkVictim(t, dir)
	defer syscall.Umask(syscall.Umask(0))
	p := filepath.Join(dir, "anomalies")
	for i := 0; i < 2; i++ {
		f, err := OpenAppend(p, FileMode)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("line\n")
		f.Close()
	}
	if b, _ := os.ReadFile(p); string(b) != "line\nline\n" {
		t.Errorf("not appended: %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

// TestReadFileRefuses: a FIFO is refused at once (no hang), /dev/zero at once (no
// unbounded read), a file over the limit before it is read.
func TestReadFileRefuses(t *testing.T) {
	dir := paths(t)
	start := time.Now()
	for _, p := range []string{filepath.Join(dir, "fifo"), "/dev/zero", filepath.Join(dir, "sub")} {
		if _, err := ReadFile(p, 1<<20); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadFile(%s) = %v", p, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing took %v", d)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2000), 0o600)
	if _, err := ReadFile(big, 1000); !errors.Is(err, ErrUnsafe) {
		t.Errorf("over the limit: %v", err)
	}
	if b, err := ReadFile(filepath.Join(dir, "link"), 1000); err != nil || string(b) != "victim\n" {
		t.Errorf("a symlinked input is read: %q %v", b, err)
	}
}

var known = []string{"a", "b", "c"}

func TestWriteDir(t *testing.T) {
	dir := paths(t)
	// A symlink to a directory is never written through, a foreign directory never
	// replaced.
	os.WriteFile(filepath.Join(dir, "sub", "mine"), []byte("keep"), 0o644)
	for _, name := range []string{"sublink", "sub", "victim", "fifo"} {
		if err := WriteDir(filepath.Join(dir, name), map[string][]byte{"a": []byte("1")}, known, FileMode, DirMode); !errors.Is(err, ErrUnsafe) {
			t.Errorf("WriteDir(%s) = %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "sub")); len(entries) != 1 {
		t.Errorf("the symlinked directory was written into: %v", entries)
	}
	checkVictim(t, dir)

	defer syscall.Umask(syscall.Umask(0))
	out := filepath.Join(dir, "out", "bundle")
	if err := WriteDir(out, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, known, FileMode, DirMode); err != nil {
		t.Fatal(err)
	}
	// A second write replaces the first as a whole: b is gone.
	if err := WriteDir(out, map[string][]byte{"a": []byte("new"), "c": []byte("3")}, known, FileMode, DirMode); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), info.Mode())
		}
	}
	if strings.Join(names, ",") != "a,c" {
		t.Errorf("bundle holds %v, want a,c", names)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode())
	}
	left, _ := os.ReadDir(filepath.Dir(out))
	if len(left) != 1 {
		t.Errorf("temporary directories left: %v", left)
	}
}

// TestWriteDirFullDisk: a bundle that does not fit leaves the previous one whole and
// no temporary directory.
func TestWriteDirFullDisk(t *testing.T) {
	testpriv.RequireRoot(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tailor-test", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs: %v: %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	out := filepath.Join(mnt, "bundle")
	if err := WriteDir(out, map[string][]byte{"a": []byte("old a"), "b": []byte("old b")}, known, FileMode, DirMode); err != nil {
		t.Fatal(err)
	}
	err := WriteDir(out, map[string][]byte{"a": []byte("new a"), "b": make([]byte, 256<<10)}, known, FileMode, DirMode)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing past the end of the disk: %v, want ENOSPC", err)
	}
	for n, want := range map[string]string{"a": "old a", "b": "old b"} {
		if b, err := os.ReadFile(filepath.Join(out, n)); err != nil || string(b) != want {
			t.Errorf("%s after a failed write: %q %v, want the old content", n, b, err)
		}
	}
	if left, _ := os.ReadDir(mnt); len(left) != 1 {
		t.Errorf("left behind: %v", left)
	}
}
