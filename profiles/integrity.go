package profiles

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tailor-sec/tailor/internal/safeio"
)

// FileDigest is the digest bundle.json records for a file's content.
func FileDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyBundleFile checks data, the content of the bundle file name, against the
// digest bundle.json records for it.
func (b *Bundle) VerifyBundleFile(name string, data []byte) error {
	want, ok := b.Digests[name]
	if !ok {
		return fmt.Errorf("bundle.json records no digest for %s", name)
	}
	if got := FileDigest(data); got != want {
		return fmt.Errorf("%s was changed or truncated after generate (%s, bundle.json says %s)", name, got, want)
	}
	return nil
}

// BundleProblems lists, sorted, what is wrong with the files of the bundle in dir
// whose manifest is b: no digests at all, a file missing, unreadable, or not matching
// its digest, a seccomp.json that does not decode or allows more than bundle.json
// says (SeccompProblems).
func BundleProblems(dir string, b *Bundle) []string {
	if len(b.Digests) == 0 {
		return []string{"bundle.json records no file digests: made by an older tailor or by hand"}
	}
	var problems []string
	for _, name := range sortedKeysOf(b.Digests) {
		if name != filepath.Base(name) || name == BundleManifestFile {
			problems = append(problems, fmt.Sprintf("bundle.json records a digest for %q, which is not a bundle file", name))
			continue
		}
		data, err := safeio.ReadFile(filepath.Join(dir, name), safeio.MaxBundleFile)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, name+" is missing")
			continue
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s cannot be read: %v", name, err))
			continue
		}
		if err := b.VerifyBundleFile(name, data); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if name == BundleSeccompFile {
			sc, err := DecodeSeccomp(data)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			problems = append(problems, SeccompProblems(b, sc)...)
		}
	}
	if _, ok := b.Digests[BundleSeccompFile]; !ok {
		problems = append(problems, "bundle.json records no digest for "+BundleSeccompFile)
	}
	sort.Strings(problems)
	return problems
}

// permissiveActions let a call through (LOG), or hand the decision to a process
// outside the filter (NOTIFY, TRACE), so the profile enforces nothing there.
var permissiveActions = []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog, specs.ActNotify, specs.ActTrace}

// SeccompProblems lists what makes sc weaker than the bundle b it belongs to: a
// default action that lets calls through or hands them off (ALLOW, LOG, NOTIFY,
// TRACE; complain mode is the way to run permissively), or a rule letting through a
// syscall bundle.json does not list for any architecture.
func SeccompProblems(b *Bundle, sc *Seccomp) []string {
	var problems []string
	if slices.Contains(permissiveActions, sc.DefaultAction) {
		problems = append(problems, fmt.Sprintf("seccomp.json's default action is %s: it lets every unlisted syscall through (use complain mode to run permissively)", sc.DefaultAction))
	}
	listed := map[string]bool{}
	for _, a := range b.Syscalls {
		for _, n := range a.Names {
			listed[n] = true
		}
	}
	extra := map[string]bool{}
	for _, r := range sc.Syscalls {
		if !slices.Contains(permissiveActions, r.Action) {
			continue
		}
		names := r.Names
		if r.Name != "" {
			names = append(slices.Clone(names), r.Name)
		}
		for _, n := range names {
			if !listed[n] {
				extra[n] = true
			}
		}
	}
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("seccomp.json lets through syscalls bundle.json does not list: %v", sortedKeysOf(extra)))
	}
	return problems
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
