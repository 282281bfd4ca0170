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

	"github.com/tailor-sec/tailor/internal/safeio"
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

// Build generates the bundle of recs and checks it (Validate), collapsing the file
// rules further until apparmor_parser accepts the profile (coarsen.go): a profile
// of more than MaxFileRules file rules is collapsed before the parser is asked, and
// one the parser refuses for its size is collapsed one level more and checked
// again. The bundle says what was collapsed and why. Write then writes it without
// checking it again.
func Build(recs []*profiles.Recording, opt Options, check CheckAppArmor) (*Bundle, error) {
	b, err := Generate(recs, opt)
	if err != nil {
		return nil, err
	}
	if n := len(b.Manifest.Files); n > MaxFileRules {
		why := fmt.Sprintf("the profile had %d file rules, more than the %d apparmor_parser compiles in seconds (it refuses about 30,000 paths in separate directories after minutes)", n, MaxFileRules)
		for len(b.Manifest.Files) > MaxFileRules && opt.Coarsen < maxCoarsen {
			opt.Coarsen++
			opt.CoarsenReason = why
			if b, err = Generate(recs, opt); err != nil {
				return nil, err
			}
		}
	}
	for {
		notes, err := Validate(b, check)
		if err == nil {
			b.checked, b.notes = true, notes
			return b, nil
		}
		if !tooLarge(err) {
			return nil, err
		}
		// One level more; a level that collapses nothing more is not checked again.
		why := fmt.Sprintf("apparmor_parser refused the profile of %d file rules (%v)", len(b.Manifest.Files), err)
		for n := len(b.Manifest.Files); len(b.Manifest.Files) == n; {
			if opt.Coarsen >= maxCoarsen {
				return nil, fmt.Errorf("%w, even with every collapsible directory collapsed (%d file rules left: sensitive paths, programs run and /etc are never collapsed)", err, n)
			}
			opt.Coarsen++
			opt.CoarsenReason = why
			if b, err = Generate(recs, opt); err != nil {
				return nil, err
			}
		}
	}
}

// tooLarge says whether apparmor_parser refused a profile for its size rather than
// its content.
func tooLarge(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "too many states") || strings.Contains(msg, "out of memory") || strings.Contains(msg, "memory exhausted")
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

// bundleFiles are the names a bundle directory may hold: an existing directory with
// anything else is not replaced.
var bundleFiles = []string{
	profiles.BundleManifestFile, profiles.BundleSeccompFile, profiles.BundleAppArmorFile,
	profiles.BundleCapabilitiesFile, profiles.BundleDockerRunFile, profiles.BundleSPOFile,
	profiles.BundlePodSnippetFile, profiles.BundleSummaryFile, profiles.BundleHardenedRunFile,
	profiles.BundleSPOAppArmorFile, profiles.BundleProfileBindingFile,
}

// BundleFileNames are the names a bundle directory may hold.
func BundleFileNames() []string { return slices.Clone(bundleFiles) }

// CheckOutput says whether dir can take a bundle: a new path or an earlier bundle
// directory (not a symlink, nothing but bundle files in it). The CLI checks before it
// reads anything.
func CheckOutput(dir string) error {
	if err := safeio.CheckOutputDir(dir, bundleFiles); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}

// Write validates b (unless Build did) and writes it to dir as a whole: a temporary directory beside dir
// (directory 0700, files 0600 whatever the umask) takes dir's place in one rename, so
// a failure (a full disk) leaves the previous bundle, or nothing, never a mix. Nothing
// is written when validation fails. It returns Validate's notes.
func Write(dir string, b *Bundle, check CheckAppArmor) ([]string, error) {
	if err := CheckOutput(dir); err != nil {
		return nil, err
	}
	notes := b.notes
	if !b.checked {
		var err error
		if notes, err = Validate(b, check); err != nil {
			return nil, err
		}
	}
	if _, ok := b.Files[profiles.BundleManifestFile]; !ok {
		return nil, errors.New("bundle has no " + profiles.BundleManifestFile)
	}
	if err := safeio.WriteDir(dir, b.Files, bundleFiles, safeio.FileMode, safeio.DirMode); err != nil {
		return nil, err
	}
	return notes, nil
}
