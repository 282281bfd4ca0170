package compose

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// Hardening is the run-time hardening of one service beyond its profiles: what
// compose.tailor.yml sets besides security_opt and capabilities. Zero fields are
// left out of the override.
type Hardening struct {
	ReadOnly  *bool
	Tmpfs     []string
	Volumes   []string
	User      string
	MemLimit  string
	PidsLimit *int64
	CPUs      string
}

// HardenFunc derives a service's hardening from its recording and bundle.
// GenerateOptions.Harden nil means BundleHardening.
type HardenFunc func(service string, rec *profiles.Recording, b *profiles.Bundle) Hardening

// BundleHardening turns the hardened run configuration generate derived from the
// service's recording (bundle.json `hardening`, docs/generate.md) into Compose fields:
// read_only with a tmpfs per written directory and an anonymous volume where data
// must persist or image content was read, the user, mem_limit, pids_limit and cpus.
func BundleHardening(_ string, _ *profiles.Recording, b *profiles.Bundle) Hardening {
	h := b.Hardening
	if h == nil {
		return Hardening{}
	}
	var out Hardening
	if h.ReadOnly {
		t := true
		out.ReadOnly = &t
	}
	for _, t := range h.Tmpfs {
		out.Tmpfs = append(out.Tmpfs, fmt.Sprintf("%s:size=%d", t.Path, t.Size))
	}
	for _, v := range h.Volumes {
		out.Volumes = append(out.Volumes, v.Path)
	}
	out.User = h.User
	if h.Memory > 0 {
		out.MemLimit = strconv.FormatInt(h.Memory, 10)
	}
	if h.PidsLimit > 0 {
		n := h.PidsLimit
		out.PidsLimit = &n
	}
	if h.NanoCPUs > 0 {
		out.CPUs = strconv.FormatFloat(float64(h.NanoCPUs)/1e9, 'f', -1, 64)
	}
	return out
}

// GenerateOptions configure Generate.
type GenerateOptions struct {
	// Input is a recording directory written by Learn; Output the bundle directory.
	Input, Output string
	// Strict, NoArgs and AllowIncomplete are generate's options, for every service.
	Strict, NoArgs, AllowIncomplete bool
	// NoAppArmor leaves apparmor=NAME out of the override: Docker refuses to start a
	// container whose AppArmor profile is not loaded on a host with AppArmor.
	NoAppArmor bool
	// Harden derives the run-time hardening per service; nil is BundleHardening.
	Harden HardenFunc
	// Version is the tailor version written into the bundles.
	Version string
	// Warn receives generate's warnings.
	Warn io.Writer
}

// Generate writes one bundle per service of the recording directory to
// Output/SERVICE/, Output/compose.tailor.yml and Output/index.json.
func Generate(opt GenerateOptions) (*Index, error) {
	in, err := LoadIndex(opt.Input, KindRecordings)
	if err != nil {
		return nil, err
	}
	if len(in.Services) == 0 {
		return nil, fmt.Errorf("%s: %w: the index lists no service", opt.Input, fail.ErrBadInput)
	}
	out, err := filepath.Abs(opt.Output)
	if err != nil {
		return nil, fmt.Errorf("%w: -o: %v", fail.ErrBadInput, err)
	}
	if err := checkBundleDir(out); err != nil {
		return nil, err
	}
	ix := &Index{Kind: KindBundles, SchemaVersion: IndexSchemaVersion, Project: in.Project, ComposeFiles: in.ComposeFiles}
	ov := overrideFile{Services: map[string]overrideService{}}
	type built struct {
		name string
		b    *generate.Bundle
	}
	var bundles []built
	for _, s := range in.Services {
		src := filepath.Join(opt.Input, s.Path)
		rec, err := profiles.LoadRecording(src)
		if err != nil {
			return nil, err
		}
		if err := rec.ValidateNames(); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		name := ProfileName(in.Project, s.Name)
		b, err := generate.Build([]*profiles.Recording{rec}, generate.Options{
			// docker-run.txt names the bundle relative to Output, like the override.
			Name: name, Dir: s.Name, NoArgs: opt.NoArgs, Strict: opt.Strict,
			AllowIncomplete: opt.AllowIncomplete, Version: opt.Version, Sources: []string{src},
		}, generate.ParserChecker())
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		for _, w := range b.Warnings {
			fmt.Fprintf(writerOr(opt.Warn), "tailor: warning: service %s: %s\n", s.Name, w)
		}
		bundles = append(bundles, built{s.Name, b})
		harden := opt.Harden
		if harden == nil {
			harden = BundleHardening
		}
		h := harden(s.Name, rec, &b.Manifest)
		ov.Services[s.Name] = serviceOverride(s.Name, &b.Manifest, h, !opt.NoAppArmor)
		ix.Services = append(ix.Services, IndexService{Name: s.Name, Path: s.Name, DependsOn: s.DependsOn, Containers: s.Containers, Profile: name})
	}
	// Bundles are written only once every service generated.
	for _, b := range bundles {
		notes, err := generate.Write(filepath.Join(out, b.name), b.b, generate.ParserChecker())
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", b.name, err)
		}
		for _, n := range notes {
			fmt.Fprintf(writerOr(opt.Warn), "tailor: warning: service %s: %s\n", b.name, n)
		}
	}
	data, err := renderOverride(ov)
	if err != nil {
		return nil, err
	}
	if err := safeio.WriteFileAtomic(filepath.Join(out, OverrideFile), data, safeio.FileMode); err != nil {
		return nil, err
	}
	return ix, ix.save(out)
}

// ProfileName is the bundle's profile name for a service: AppArmor and SeccompProfile
// names allow lowercase letters, digits, '.' and '-' only.
func ProfileName(project, service string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-':
				return r
			case r >= 'A' && r <= 'Z':
				return r + ('a' - 'A')
			}
			return '-'
		}, s)
	}
	name := "tailor-" + clean(project) + "-" + clean(service)
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, ".-")
}

// serviceOverride is what compose.tailor.yml sets on one service. Paths are relative
// to the override file's directory.
func serviceOverride(service string, b *profiles.Bundle, h Hardening, apparmor bool) overrideService {
	o := overrideService{
		SecurityOpt: []string{"seccomp=" + service + "/" + profiles.BundleSeccompFile},
		CapDrop:     []string{"ALL"},
		ReadOnly:    h.ReadOnly, Tmpfs: h.Tmpfs, Volumes: h.Volumes, User: h.User, MemLimit: h.MemLimit,
		PidsLimit: h.PidsLimit, CPUs: h.CPUs,
	}
	if apparmor {
		o.SecurityOpt = append(o.SecurityOpt, "apparmor="+b.Name)
	}
	o.SecurityOpt = append(o.SecurityOpt, "no-new-privileges:true")
	for _, c := range b.Capabilities {
		o.CapAdd = append(o.CapAdd, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	slices.Sort(o.CapAdd)
	return o
}

// overrideHeader explains the override to whoever opens it.
const overrideHeader = `# Written by tailor generate --compose: confines every service with its profile bundle.
# Use it after the project's own file, from this file's directory (Compose v1 reads
# seccomp=PATH relative to its working directory):
#   cd THIS_DIR && docker-compose -f ../compose.yml -f compose.tailor.yml up -d
# apparmor=NAME works only once NAME is loaded (apparmor_parser -r SERVICE/apparmor.profile);
# on a host without AppArmor Docker ignores it. See docs/compose.md.
`

func renderOverride(ov overrideFile) ([]byte, error) {
	data, err := yaml.Marshal(ov)
	if err != nil {
		return nil, err
	}
	return append([]byte(overrideHeader), data...), nil
}

// checkBundleDir allows an output directory that does not exist or holds only what
// generate --compose writes: index.json, compose.tailor.yml and bundle directories.
func checkBundleDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("-o: %w: %v", safeio.ErrUnsafe, err)
	}
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("-o: %w: %s is not a directory", safeio.ErrUnsafe, dir)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case (e.Name() == IndexFile || e.Name() == OverrideFile) && e.Type().IsRegular():
		case e.IsDir() && serviceName.MatchString(e.Name()):
			if err := generate.CheckOutput(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("-o: %w: %s holds %s, which tailor did not write there: give a new directory or one tailor wrote", safeio.ErrUnsafe, dir, e.Name())
		}
	}
	return nil
}
