package dockertest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DynamicImage is the tag of the image whose entrypoint, DynamicProgram, is
// dynamically linked and exits at once. Bump the version when the Dockerfile or the
// context changes: an existing tag is never rebuilt.
const DynamicImage = "tailor-test/dynamic:1"

// DynamicProgram is the entrypoint of DynamicImage: the host's coreutils true, with
// its loader and libraries at the paths, symlinks included, they have on the host.
const DynamicProgram = "/bin/true"

// Dynamic returns DynamicImage, building it on first use from
// testdata/images/dynamic/Dockerfile and host files, with no registry.
func (e *Env) Dynamic(t testing.TB) string {
	t.Helper()
	return e.ensureImage(t, DynamicImage, dynamicContext)
}

// dynamicContext is the build context: the Dockerfile plus rootfs/ with
// DynamicProgram and every file `ldd` lists for it.
func dynamicContext() (*bytes.Buffer, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "testdata", "images", "dynamic", "Dockerfile"))
	if err != nil {
		return nil, err
	}
	libs, err := lddPaths(DynamicProgram)
	if err != nil {
		return nil, err
	}
	paths := append([]string{DynamicProgram}, libs...)
	if len(paths) < 2 {
		return nil, fmt.Errorf("ldd lists no loader for %s: the test needs a dynamically linked one", DynamicProgram)
	}
	var buf bytes.Buffer
	tw := &rootfsWriter{tw: tar.NewWriter(&buf), done: map[string]bool{}}
	err = tw.header(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg})
	if err == nil {
		_, err = tw.tw.Write(dockerfile)
	}
	for _, p := range paths {
		if err == nil {
			err = tw.hostPath(p, 0)
		}
	}
	if err := errors.Join(err, tw.tw.Close()); err != nil {
		return nil, fmt.Errorf("writing the build context: %w", err)
	}
	return &buf, nil
}

// rootfsWriter writes host files under rootfs/ of a build context, each once.
type rootfsWriter struct {
	tw   *tar.Writer
	done map[string]bool
}

// header writes h with a fixed time, which keeps the context, and so the build cache
// key, the same each run.
func (w *rootfsWriter) header(h *tar.Header) error {
	h.ModTime = time.Unix(0, 0)
	return w.tw.WriteHeader(h)
}

// hostPath adds the host's absolute path p: each directory on the way, each symlink
// met on the way (then what it points to), and the file itself.
func (w *rootfsWriter) hostPath(p string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many levels of symbolic links", p)
	}
	parts := strings.Split(strings.Trim(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		name := "rootfs" + cur
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			if !w.done[name] {
				w.done[name] = true
				if err := w.header(&tar.Header{Name: name, Linkname: target, Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
					return err
				}
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(cur), target)
			}
			return w.hostPath(filepath.Join(append([]string{target}, parts[i+1:]...)...), depth+1)
		case fi.IsDir():
			if !w.done[name] {
				w.done[name] = true
				if err := w.header(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
					return err
				}
			}
		case fi.Mode().IsRegular() && i == len(parts)-1:
			if w.done[name] {
				return nil
			}
			w.done[name] = true
			data, err := os.ReadFile(cur)
			if err != nil {
				return err
			}
			if err := w.header(&tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			_, err = w.tw.Write(data)
			return err
		default:
			return fmt.Errorf("%s: not a directory, regular file or symlink", cur)
		}
	}
	return nil
}
