package learn

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/tailor-sec/tailor/internal/docker"
)

// procRoot is the root directory process pid sees.
func procRoot(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/root" }

// elfInterpreter returns the ELF program interpreter (the dynamic loader) of the
// executable at path as seen from root, resolved through symlinks inside root. The
// kernel opens the loader itself during execve, so no open of it is ever seen, yet
// AppArmor and Landlock both check it: learn must add it. It returns "" for static
// executables and scripts.
func elfInterpreter(root, path string) (string, error) {
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	interp, err := ptInterp(f, path)
	if err != nil || interp == "" {
		return interp, err
	}
	resolved, err := securejoin.SecureJoin(root, interp)
	if err != nil {
		return interp, nil
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(resolved, filepath.Clean(root)), "/"), nil
}

// ContainerInterpreter is the reader Session.ReadInterpreters needs for a container
// learned outside this package (package compose): it reads an executable's ELF
// interpreter from container id through Docker.
func ContainerInterpreter(ctx context.Context, dc *docker.Client, id string) func(path string) (string, error) {
	return containerInterpreter(ctx, dc, id)
}

// containerInterpreter is elfInterpreter for the file system of container id, read
// through the Docker API: unlike /proc/PID/root it still works once every process of
// the container has exited, as long as the container exists.
func containerInterpreter(ctx context.Context, dc *docker.Client, id string) func(path string) (string, error) {
	return func(path string) (string, error) {
		f, err := dc.OpenFile(ctx, id, path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		interp, err := ptInterp(f, path)
		if err != nil || interp == "" {
			return interp, err
		}
		return dc.ResolvePath(ctx, id, interp)
	}
}

// ptInterp reads the PT_INTERP program header of the file r: "" for a static ELF
// executable and for anything that is not ELF (a script: the kernel runs its #!
// interpreter, which the tracer sees executed on its own).
func ptInterp(r io.ReaderAt, path string) (string, error) {
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := r.ReadAt(magic, 0); err != nil || !bytes.Equal(magic, []byte(elf.ELFMAG)) {
		return "", nil
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil {
			return "", fmt.Errorf("reading PT_INTERP of %s: %w", path, err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}
