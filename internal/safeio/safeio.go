// Package safeio reads and writes tailor's files the way a root tool must: outputs
// only onto a regular file or a new path, never through a symlink in the last
// component, never onto a device or FIFO; inputs only from a regular file and never
// more than a stated size. tailor runs as root in directories other users may write
// (/tmp, with fs.protected_symlinks off on some hosts), so every writer and reader of
// recordings, bundles and anomaly files goes through here.
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/internal/fail"
)

// Modes tailor creates its outputs with, whatever the umask: recordings, bundles and
// anomaly reports describe a program's behaviour (and a container's configuration),
// which is nobody else's business.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// Size limits of the inputs tailor reads. A recording of 30000 files is about 3 MiB.
const (
	MaxRecording  = 64 << 20
	MaxBundleFile = 16 << 20
)

// ErrUnsafe marks a path tailor refuses to write or read: a symlink, a device, a
// FIFO, a directory where a file is expected, a file larger than its limit. It is bad
// input (exit 2) unless a caller says otherwise.
var ErrUnsafe = fmt.Errorf("%w: unsafe path", fail.ErrBadInput)

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafe}, args...)...)
}

// kind names a file type for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not a regular file"
	}
}

// CheckOutputFile says whether path may be written as a file: it is a regular file
// (not a symlink to one) or does not exist, in an existing directory. Callers check
// before they start anything whose result they would lose.
func CheckOutputFile(path string) error {
	if path == "" {
		return unsafef("no output path given")
	}
	st, err := os.Lstat(path)
	switch {
	case err == nil && !st.Mode().IsRegular():
		return unsafef("%s is %s: give a regular file or a new path", path, kind(st.Mode()))
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return unsafef("%s: %v", path, err)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return unsafef("output directory %s does not exist", dir)
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file created beside it
// (O_EXCL) and a rename, so a reader never sees a half-written file and a failure
// leaves the old file in place. path must pass CheckOutputFile; the rename replaces a
// symlink planted meanwhile instead of following it.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := CheckOutputFile(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after a successful rename
	if err := writeAll(tmp, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// Checked again just before the rename: a device put there since (by root) is
	// still not replaced.
	if err := CheckOutputFile(path); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeAll writes, sets mode (not subject to the umask), syncs and closes f.
func writeAll(f *os.File, data []byte, mode fs.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// OpenAppend opens path for appending, creating it with mode when missing. It never
// follows a symlink in the last component (a dangling one included) and refuses
// anything but a regular file; opening does not block on a FIFO.
func OpenAppend(path string, mode fs.FileMode) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(mode.Perm()))
	if errors.Is(err, unix.ELOOP) {
		return nil, unsafef("%s is a symbolic link: give a regular file or a new path", path)
	}
	if err != nil {
		return nil, unsafef("%s: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, unsafef("%s: %v", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, unsafef("%s is %s: give a regular file or a new path", path, kind(st.Mode()))
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, unsafef("%s: %v", path, err)
	}
	return f, nil
}

// ReadFile reads path, which must be a regular file (a symlink to one is fine) of at
// most limit bytes. Opening does not block on a FIFO and a device is refused before
// anything is read, so neither /dev/zero nor a pipe can hang or exhaust tailor.
func ReadFile(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, unsafef("%s is %s, not a regular file", path, kind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, unsafef("%s is %d bytes, more than the %d MiB limit", path, st.Size(), limit>>20)
	}
	// The file may grow while it is read: read one byte past the limit to tell.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, unsafef("%s grew past the %d MiB limit while it was read", path, limit>>20)
	}
	return data, nil
}

// CheckOutputDir says whether dir may be written as a whole by WriteDir: it does not
// exist, or it is a real directory (not a symlink to one) holding only regular files
// named in known (an earlier output of the same kind, which WriteDir replaces).
// Anything else would be lost or written through.
func CheckOutputDir(dir string, known []string) error {
	if dir == "" {
		return unsafef("no output directory given")
	}
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return unsafef("%s: %v", dir, err)
	}
	if !st.IsDir() {
		return unsafef("%s is %s: give a new directory or one tailor wrote", dir, kind(st.Mode()))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return unsafef("%s: %v", dir, err)
	}
	for _, e := range entries {
		ok := false
		for _, k := range known {
			ok = ok || e.Name() == k
		}
		if !ok || !e.Type().IsRegular() {
			return unsafef("%s holds %s, which tailor did not write there: give a new directory or one tailor wrote (its content is replaced)", dir, e.Name())
		}
	}
	return nil
}

// WriteDir writes files (name -> content, plain names only) as the directory dir, as
// a whole: they go to a new temporary directory beside dir, which then takes dir's
// place in one rename (an exchange when dir exists, whose old content is then
// removed). A failure leaves the old directory, or nothing. dir must pass
// CheckOutputDir with known; missing parents are created with DirMode.
func WriteDir(dir string, files map[string][]byte, known []string, fileMode, dirMode fs.FileMode) error {
	if err := CheckOutputDir(dir, known); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, DirMode); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // after the exchange it holds the old content
	for name, data := range files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("writing %s: bad file name %q", dir, name)
		}
		f, err := os.OpenFile(filepath.Join(tmp, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, fileMode)
		if err != nil {
			return fmt.Errorf("writing %s: %w", dir, err)
		}
		if err := writeAll(f, data, fileMode); err != nil {
			return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
		}
	}
	if err := os.Chmod(tmp, dirMode); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	// Checked again right before the swap: the exchange swaps names, it never follows
	// a symlink put there meanwhile, but it must not take a directory it may not.
	if err := CheckOutputDir(dir, known); err != nil {
		return err
	}
	if err := swapInto(tmp, dir); err != nil {
		return fmt.Errorf("writing %s: moving the new content into place: %w", dir, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("writing %s: %w", dir, err)
	}
	return nil
}

// swapInto puts directory tmp in dir's place: dir's old content, if any, ends up in
// tmp. One atomic renameat2; where the file system lacks RENAME_EXCHANGE or
// RENAME_NOREPLACE, two renames, the old directory kept until the new one is in place.
func swapInto(tmp, dir string) error {
	_, err := os.Lstat(dir)
	exists := err == nil
	flag := uint(unix.RENAME_NOREPLACE)
	if exists {
		flag = unix.RENAME_EXCHANGE
	}
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, flag)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	if !exists {
		return os.Rename(tmp, dir)
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(old, dir)
		return err
	}
	return os.Rename(old, tmp)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
