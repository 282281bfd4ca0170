package learn

import (
	"debug/elf"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// procRoot is the root directory process pid sees.
func procRoot(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/root" }

// elfInterpreter returns the ELF program interpreter (the dynamic loader) of the
// executable at path as seen from root, resolved through symlinks inside root. The
// kernel opens the loader itself during execve, so no open of it is ever seen, yet
// AppArmor and Landlock both check it: learn must add it. It returns "" for static
// executables and scripts.
func elfInterpreter(root, path string) (string, error) {
	f, err := elf.Open(filepath.Join(root, path))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil {
			return "", fmt.Errorf("reading PT_INTERP of %s: %w", path, err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		resolved, err := securejoin.SecureJoin(root, interp)
		if err != nil {
			return interp, nil
		}
		return "/" + strings.TrimPrefix(strings.TrimPrefix(resolved, filepath.Clean(root)), "/"), nil
	}
	return "", nil
}
