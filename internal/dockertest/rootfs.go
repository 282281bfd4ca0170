package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// File is a file or directory a build context holds besides the Dockerfile and the
// host paths under rootfs/.
type File struct {
	// Name is its path in the context: rootfs/etc/passwd is /etc/passwd in an image
	// that copies rootfs/ to /.
	Name     string
	Data     []byte
	Mode     int64
	Uid, Gid int
	Dir      bool
}

// RootfsContext returns a build context holding dockerfile, extra, and rootfs/ with
// each of programs with every file ldd lists for it (libraries and loader); each of
// paths, a directory with everything beneath it; every host path with the symlinks
// that lead to it on the host (merged /usr, the loader's link), so the image resolves
// them exactly as the host does. Like Busybox and Dynamic, an image made from host
// packages with no registry; for programs outside tests too (make fit).
func RootfsContext(dockerfile string, programs, paths []string, extra []File) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	w := &rootfsWriter{tw: tar.NewWriter(&buf), done: map[string]bool{}}
	err := w.header(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg})
	if err == nil {
		_, err = w.tw.Write([]byte(dockerfile))
	}
	for _, f := range extra {
		if err == nil {
			err = w.extra(f)
		}
	}
	for _, p := range programs {
		if err != nil {
			break
		}
		var libs []string
		if libs, err = lddPaths(p); err == nil {
			for _, f := range append([]string{p}, libs...) {
				if err == nil {
					err = w.hostPath(f, 0)
				}
			}
		}
	}
	for _, p := range paths {
		if err == nil {
			err = filepath.WalkDir(p, func(q string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return w.hostPath(q, 0)
			})
		}
	}
	if err := errors.Join(err, w.tw.Close()); err != nil {
		return nil, fmt.Errorf("writing the build context: %w", err)
	}
	return &buf, nil
}

// lddPaths returns the files ldd lists for a dynamically linked program: lines are
// "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)";
// linux-vdso has no file.
func lddPaths(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s failed (is it dynamically linked, is libc-bin installed?): %v", program, err)
	}
	var paths []string
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "/") {
			paths = append(paths, f)
		}
	}
	return paths, nil
}

// extra writes f and the directories above it that are not written yet.
func (w *rootfsWriter) extra(f File) error {
	name := path.Clean(f.Name)
	var parents []string
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if !w.done[dir] {
			parents = append([]string{dir}, parents...)
		}
	}
	for _, dir := range parents {
		w.done[dir] = true
		if err := w.header(&tar.Header{Name: dir + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	w.done[name] = true
	if f.Dir {
		return w.header(&tar.Header{Name: name + "/", Mode: f.Mode, Uid: f.Uid, Gid: f.Gid, Typeflag: tar.TypeDir})
	}
	if err := w.header(&tar.Header{Name: name, Mode: f.Mode, Uid: f.Uid, Gid: f.Gid, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := w.tw.Write(f.Data)
	return err
}

// BuildImage builds tag from a build context with a Dockerfile at its root, the way
// the test images are built (classic builder, no network for RUN steps).
func (e *Env) BuildImage(ctx context.Context, buildCtx *bytes.Buffer, tag string) error {
	return e.buildImage(ctx, buildCtx, tag)
}
