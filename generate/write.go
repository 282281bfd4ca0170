package generate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/profiles"
)

// CheckAppArmor checks an AppArmor profile file without loading it. The host supplies
// it; nil means no checker is installed.
type CheckAppArmor func(path string) error

// ParserChecker returns a checker running `apparmor_parser -Q -K -T` (parse and
// compile only, no kernel, no cache), or nil when the parser is not installed.
func ParserChecker() CheckAppArmor {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return nil
	}
	return func(path string) error {
		var stderr bytes.Buffer
		cmd := exec.Command(parser, "-Q", "-K", "-T", path)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apparmor_parser rejected the generated profile: %s", parserMessage(stderr.String(), err))
		}
		return nil
	}
}

// parserMessage keeps the parser's error lines, without its "Cache read/write
// disabled" notice, on one line.
func parserMessage(stderr string, err error) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "Cache read/write disabled") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, " / ")
}

// Validate checks a generated bundle the way its consumers will read it: seccomp.json
// must compile with libseccomp (as runc would build it), and apparmor.profile must
// pass check when one is given. It returns notes for checks it could not run.
func Validate(b *Bundle, check CheckAppArmor) ([]string, error) {
	p, err := profiles.DecodeSeccomp(b.Files[profiles.BundleSeccompFile])
	if err != nil {
		return nil, fmt.Errorf("generated seccomp.json does not decode: %w", err)
	}
	f, err := profiles.CompileSeccomp(p, profiles.CompileOptions{})
	if err != nil {
		return nil, fmt.Errorf("generated seccomp.json does not compile: %w", err)
	}
	f.Release()
	if check == nil {
		return []string{"apparmor_parser is not installed: apparmor.profile was not checked (install the apparmor package)"}, nil
	}
	tmp, err := os.MkdirTemp("", "tailor-apparmor-")
	if err != nil {
		return nil, fmt.Errorf("checking apparmor.profile: %w", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, profiles.BundleAppArmorFile)
	if err := os.WriteFile(path, b.Files[profiles.BundleAppArmorFile], 0o600); err != nil {
		return nil, fmt.Errorf("checking apparmor.profile: %w", err)
	}
	return nil, check(path)
}

// Write validates b and writes it to dir (created 0700 if missing), every file 0600
// and atomically, bundle.json last so a bundle with a manifest is a whole one. Nothing
// is written when validation fails. It returns Validate's notes.
func Write(dir string, b *Bundle, check CheckAppArmor) ([]string, error) {
	notes, err := Validate(b, check)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating bundle directory: %w", err)
	}
	names := make([]string, 0, len(b.Files))
	for n := range b.Files {
		if n != profiles.BundleManifestFile {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = append(names, profiles.BundleManifestFile)
	for _, n := range names {
		data, ok := b.Files[n]
		if !ok {
			return nil, errors.New("bundle has no " + n)
		}
		if err := profiles.WriteFileAtomic(filepath.Join(dir, n), data, 0o600); err != nil {
			return nil, err
		}
	}
	return notes, nil
}
