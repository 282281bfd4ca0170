package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
)

// BusyboxImage is the tag of the busybox test image. Bump the version when the
// Dockerfile or the context changes: an existing tag is never rebuilt.
const BusyboxImage = "tailor-test/busybox:1"

// IndexHTML is what busybox httpd serves from /www in BusyboxImage.
const IndexHTML = "tailor-test index\n"

// busyboxPath is where Debian's busybox-static installs its static binary.
const busyboxPath = "/bin/busybox"

// Busybox returns BusyboxImage, building it on first use from
// testdata/images/busybox/Dockerfile and the host's static busybox, with no registry.
func (e *Env) Busybox(t testing.TB) string {
	t.Helper()
	return e.ensureImage(t, BusyboxImage, busyboxContext)
}

// ensureImage returns tag, building it from the context buildContext makes when the
// daemon does not have it yet. A host that cannot provide the context's files makes
// the test unavailable (a failure with CI=true).
func (e *Env) ensureImage(t testing.TB, tag string, buildContext func() (*bytes.Buffer, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.Client.ImageInspect(ctx, tag); err == nil {
		return tag
	} else if !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspecting %s: %v", tag, err)
	}
	buildCtx, err := buildContext()
	if err != nil {
		Unavailable(t, err.Error())
	}
	if err := e.buildImage(ctx, buildCtx, tag); err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
	return tag
}

// busyboxContext is the build context: the Dockerfile plus rootfs/ with busybox, a
// symlink per applet and the httpd document root.
func busyboxContext() (*bytes.Buffer, error) {
	if err := checkStatic(busyboxPath); err != nil {
		return nil, err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dockerfile, err := os.ReadFile(filepath.Join(root, "testdata", "images", "busybox", "Dockerfile"))
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the context, and so the build cache key, the same each run.
	mtime := time.Unix(0, 0)
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: mode, ModTime: mtime, Typeflag: tar.TypeDir})
	}
	errs := []error{
		file("Dockerfile", 0o644, dockerfile),
		dir("rootfs/", 0o755), dir("rootfs/bin/", 0o755), dir("rootfs/www/", 0o755),
		dir("rootfs/etc/", 0o755), dir("rootfs/tmp/", 0o1777), dir("rootfs/data/", 0o777),
		file("rootfs/bin/busybox", 0o755, bin),
		file("rootfs/www/index.html", 0o644, []byte(IndexHTML)),
		// busybox's id, whoami and httpd read these.
		file("rootfs/etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")),
		file("rootfs/etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		errs = append(errs, tw.WriteHeader(&tar.Header{Name: "rootfs/bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: mtime, Typeflag: tar.TypeSymlink}))
	}
	errs = append(errs, tw.Close())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("writing the build context: %w", err)
	}
	return &buf, nil
}

// checkStatic refuses a dynamically linked busybox: FROM scratch has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("no static busybox at %s (apt-get install busybox-static): %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the test image needs busybox-static", path)
		}
	}
	return nil
}

// moduleRoot walks up from the working directory (a package directory under go test)
// to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// buildImage builds tag from a tar context with the classic builder, which every
// daemon version has, and returns the first error the build stream reports.
func (e *Env) buildImage(ctx context.Context, buildCtx io.Reader, tag string) error {
	resp, err := e.Client.ImageBuild(ctx, buildCtx, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1, NetworkMode: "none",
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the build output: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}
