package enforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Policy is a profile bundle that passed every check and can be enforced on this host.
type Policy struct {
	// Dir is the bundle directory.
	Dir    string
	Bundle profiles.Bundle
	// Seccomp is seccomp.json as read; the launcher child compiles it again, because
	// a libseccomp filter cannot cross the re-exec.
	Seccomp     *profiles.Seccomp
	SeccompJSON []byte
	// Capabilities are the capabilities kept, as moby/sys/capability values, sorted.
	Capabilities []capability.Cap
}

// refuse formats a refusal: enforce never runs a target under a profile it cannot
// apply as written.
func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{fail.ErrRefused}, args...)...)
}

// Load reads the bundle in dir and checks that it can be enforced on host: the
// manifest and seccomp.json are valid, the files enforcement applies match their
// digests in bundle.json, libseccomp compiles seccomp.json, seccomp.json allows no
// more than bundle.json lists and has no permissive default action, the bundle was
// made for host's machine, and every capability name is known. Every failure is
// one line wrapped around fail.ErrRefused (exit 9).
func Load(dir string, host Host) (*Policy, error) {
	if dir == "" {
		return nil, refuse("no profile directory given: pass --profile DIR (a bundle written by tailor generate)")
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, refuse("profile directory: %v: pass the bundle directory written by tailor generate", err)
	} else if !fi.IsDir() {
		return nil, refuse("profile %s is not a directory: pass the bundle directory written by tailor generate", dir)
	}
	b, err := readManifest(filepath.Join(dir, profiles.BundleManifestFile))
	if err != nil {
		return nil, err
	}
	if b.Machine != host.Machine {
		return nil, refuse("profile %s was made on a %q machine, this host is %q: learn and generate on this architecture", dir, b.Machine, host.Machine)
	}
	p := &Policy{Dir: dir, Bundle: *b}

	scPath := filepath.Join(dir, profiles.BundleSeccompFile)
	p.SeccompJSON, err = readBundleFile(scPath)
	if err != nil {
		return nil, refuse("%s: %v", scPath, err)
	}
	if len(b.Digests) == 0 {
		return nil, refuse("%s records no file digests (made by an older tailor or by hand): regenerate the bundle", filepath.Join(dir, profiles.BundleManifestFile))
	}
	// The files enforcement applies must be the ones generate wrote with this
	// bundle.json: a torn bundle (a full disk, an interrupted copy) or a hand-edited
	// file is refused. The other files are for people and other tools.
	if err := b.VerifyBundleFile(profiles.BundleSeccompFile, p.SeccompJSON); err != nil {
		return nil, refuse("%s: %v: regenerate the bundle", dir, err)
	}
	if err := verifyIfPresent(dir, b, profiles.BundleAppArmorFile); err != nil {
		return nil, err
	}
	p.Seccomp, err = profiles.DecodeSeccomp(p.SeccompJSON)
	if err != nil {
		return nil, refuse("%s: %v", scPath, err)
	}
	if err := checkSeccompArch(p.Seccomp, host.SeccompArch); err != nil {
		return nil, fmt.Errorf("%s: %w", scPath, err)
	}
	for _, complain := range []bool{false, true} {
		f, err := profiles.CompileSeccomp(p.Seccomp, profiles.CompileOptions{Complain: complain})
		if err != nil {
			return nil, refuse("%s does not compile with libseccomp: %v", scPath, err)
		}
		f.Release()
	}
	if problems := profiles.SeccompProblems(b, p.Seccomp); len(problems) > 0 {
		return nil, refuse("%s: %s", scPath, strings.Join(problems, "; "))
	}

	p.Capabilities, err = parseCaps(b.Capabilities)
	if err != nil {
		return nil, refuse("%s: %v", filepath.Join(dir, profiles.BundleManifestFile), err)
	}
	if err := checkCapabilitiesFile(b, filepath.Join(dir, profiles.BundleCapabilitiesFile), b.Capabilities); err != nil {
		return nil, err
	}
	if _, err := landlockRules(b.Landlock); err != nil {
		return nil, refuse("%s: %v", filepath.Join(dir, profiles.BundleManifestFile), err)
	}
	return p, nil
}

// verifyIfPresent checks the bundle file name against its digest when bundle.json
// records one; the file may then not be missing.
func verifyIfPresent(dir string, b *profiles.Bundle, name string) error {
	if _, ok := b.Digests[name]; !ok {
		return nil
	}
	path := filepath.Join(dir, name)
	data, err := readBundleFile(path)
	if err != nil {
		return refuse("%s: %v", path, err)
	}
	if err := b.VerifyBundleFile(name, data); err != nil {
		return refuse("%s: %v: regenerate the bundle", dir, err)
	}
	return nil
}

// incompleteSources names the recordings the bundle was generated from that were
// incomplete: the profile may lack something the target needs.
func incompleteSources(b *profiles.Bundle) []string {
	var names []string
	for _, s := range b.Sources {
		if !s.Complete {
			names = append(names, s.File)
		}
	}
	return names
}

// checkIncomplete refuses a bundle generated from an incomplete recording unless
// allow (--allow-incomplete); allowed, it returns the start-up report's line.
func checkIncomplete(p *Policy, allow bool) (string, error) {
	names := incompleteSources(&p.Bundle)
	if len(names) == 0 {
		return "", nil
	}
	if !allow {
		return "", refuse("%s was generated from an incomplete recording (%s): it may deny what the target needs; re-learn, or pass --allow-incomplete", p.Dir, strings.Join(names, ", "))
	}
	return fmt.Sprintf("  incomplete:   generated from an INCOMPLETE recording (%s), run anyway (--allow-incomplete)", strings.Join(names, ", ")), nil
}

// readBundleFile reads one file of a bundle: a regular file (a symlink to one is
// followed) of at most safeio.MaxBundleFile bytes.
func readBundleFile(path string) ([]byte, error) {
	return safeio.ReadFile(path, safeio.MaxBundleFile)
}

func readManifest(path string) (*profiles.Bundle, error) {
	data, err := readBundleFile(path)
	if err != nil {
		return nil, refuse("%s: %v", path, err)
	}
	var head struct {
		Kind          string `json:"kind"`
		SchemaVersion int    `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, refuse("%s: not JSON: %v", path, err)
	}
	if head.Kind != profiles.BundleKind {
		return nil, refuse("%s: not a tailor bundle manifest (kind %q, want %q)", path, head.Kind, profiles.BundleKind)
	}
	if head.SchemaVersion == 1 {
		return nil, refuse("%s: bundle schema version 1 has no Landlock plan, failed attempts or network peers, and its file rules lack the path operations (mkdir, delete, rename, link...): regenerate the bundle with this tailor (from a recording of schema 2)", path)
	}
	if head.SchemaVersion != profiles.BundleSchemaVersion {
		return nil, refuse("%s: bundle schema version %d, this tailor reads version %d: regenerate the bundle", path, head.SchemaVersion, profiles.BundleSchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	// A misspelt key must not silently drop a rule.
	dec.DisallowUnknownFields()
	var b profiles.Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, refuse("%s: malformed bundle manifest: %v", path, err)
	}
	if b.Machine == "" {
		return nil, refuse("%s: bundle manifest names no machine: regenerate the bundle", path)
	}
	return &b, nil
}

// checkSeccompArch refuses a profile that does not cover the native architecture:
// libseccomp would add the native table with the default action, so every syscall of
// the target would be denied (or, in a profile for another machine, the rules would
// name another table's numbers).
func checkSeccompArch(p *profiles.Seccomp, native string) error {
	if len(p.Architectures) == 0 {
		return nil // the filter covers the native table only
	}
	var names []string
	for _, a := range p.Architectures {
		if string(a) == native {
			return nil
		}
		names = append(names, string(a))
	}
	return refuse("seccomp profile is for %s, this host is %s: learn and generate on this architecture", strings.Join(names, ", "), native)
}

// parseCaps maps kernel capability names (CAP_CHOWN) to moby/sys/capability values.
func parseCaps(names []string) ([]capability.Cap, error) {
	known := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = c
	}
	var caps []capability.Cap
	var unknown []string
	for _, n := range names {
		c, ok := known[n]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		caps = append(caps, c)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown capability names %s (want kernel names such as CAP_CHOWN)", strings.Join(unknown, ", "))
	}
	slices.Sort(caps)
	return slices.Compact(caps), nil
}

// checkCapabilitiesFile checks that capabilities.json, when present, says what
// bundle.json says: local enforcement follows bundle.json, and a docker run with
// capabilities.json must not get a different set.
func checkCapabilitiesFile(b *profiles.Bundle, path string, want []string) error {
	data, err := readBundleFile(path)
	_, digested := b.Digests[filepath.Base(path)]
	if errors.Is(err, os.ErrNotExist) && !digested {
		return nil
	}
	if err != nil {
		return refuse("%s: %v", path, err)
	}
	if digested {
		if err := b.VerifyBundleFile(filepath.Base(path), data); err != nil {
			return refuse("%s: %v: regenerate the bundle", filepath.Dir(path), err)
		}
	}
	var c struct {
		Drop []string `json:"drop"`
		Add  []string `json:"add"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return refuse("%s: malformed: %v", path, err)
	}
	if _, err := parseCaps(c.Add); err != nil {
		return refuse("%s: %v", path, err)
	}
	add, w := slices.Clone(c.Add), slices.Clone(want)
	slices.Sort(add)
	slices.Sort(w)
	if !slices.Equal(c.Drop, []string{"ALL"}) || !slices.Equal(slices.Compact(add), slices.Compact(w)) {
		return refuse("%s (drop %v, add %v) disagrees with bundle.json (capabilities %v): regenerate the bundle", path, c.Drop, c.Add, want)
	}
	return nil
}
