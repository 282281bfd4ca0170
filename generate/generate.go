// Package generate turns recordings into a profile bundle: a seccomp profile, an
// AppArmor profile, a capability set, docker run flags, Kubernetes manifests, a
// summary and the bundle.json manifest. Generate is a pure function of its inputs
// (same recordings, same bytes out); Write validates the result and writes it.
package generate

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/profiles"
)

// Options steer Generate.
type Options struct {
	// Name is the profile name (AppArmor profile, SeccompProfile). Empty: derived from
	// the target as "tailor-<container name, image or program>".
	Name string
	// Dir is the directory the bundle will be written to, as docker-run.txt should
	// name it.
	Dir string
	// NoArgs leaves out the learned argument filters (socket families, clone flags,
	// personality): every recorded syscall is allowed with any arguments.
	NoArgs bool
	// Strict turns generalisation off: the profile allows exactly the recorded
	// syscalls (with the signal-return, ENOSYS and argument rules), and paths are
	// generalised only by the rules every tailor has applied (pids, ids, content
	// directories), as before generalisation existed.
	Strict bool
	// AllowIncomplete generates from incomplete recordings (with a warning) instead of
	// refusing.
	AllowIncomplete bool
	// Version is the tailor version written into the outputs.
	Version string
	// Sources name the recordings, parallel to the recordings given to Generate.
	Sources []string
	// SPOAPI is the Security Profiles Operator API version of the Kubernetes
	// manifests (SPOAPIs); "" means SPOAPIv1.
	SPOAPI string
	// Coarsen, when positive, collapses the file rules of crowded directories into
	// DIR/** rules so that apparmor_parser can compile the profile (coarsen.go);
	// CoarsenReason says why, in bundle.json and SUMMARY.txt. Build sets both when
	// the profile is too large.
	Coarsen       int
	CoarsenReason string
}

// Bundle is a generated profile bundle, not yet written.
type Bundle struct {
	// Files maps file names (profiles.BundleSeccompFile ...) to their contents.
	Files map[string][]byte
	// Manifest is the content of bundle.json.
	Manifest profiles.Bundle
	// Seccomp is the profile in seccomp.json, for validation.
	Seccomp *profiles.Seccomp
	// Summary is what SUMMARY.txt says, in structured form.
	Summary Summary
	// Warnings are things the user must hear about (incomplete input, syscalls that
	// could not be allowed); the CLI prints them to stderr.
	Warnings []string
	// checked is set by Build once Validate passed, with Validate's notes.
	checked bool
	notes   []string
}

var profileName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Generate merges recs and builds every file of the bundle. It reads nothing from the
// host: the only outside knowledge is libseccomp's syscall table and the capability
// library's list, both fixed by the build.
func Generate(recs []*profiles.Recording, opt Options) (*Bundle, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no recordings given", fail.ErrBadInput)
	}
	api := opt.SPOAPI
	if api == "" {
		api = SPOAPIv1
	}
	if !slices.Contains(SPOAPIs, api) {
		return nil, fmt.Errorf("%w: --spo-api %q: use one of %v", fail.ErrBadInput, api, SPOAPIs)
	}
	for i, r := range recs {
		if err := checkRecording(r); err != nil {
			return nil, fmt.Errorf("%s: %w", sourceName(opt, i), err)
		}
	}
	rec := profiles.Merge(recs...)
	out := &Bundle{Files: map[string][]byte{}}
	if !rec.Complete {
		reasons := strings.Join(rec.Incomplete, "; ")
		if reasons == "" {
			reasons = "no reason recorded"
		}
		if loss := rec.Loss.Total(); loss > 0 {
			reasons += fmt.Sprintf("; %d observations lost", loss)
		}
		if !opt.AllowIncomplete {
			return nil, fmt.Errorf("%w: recording is incomplete (%s): the profile could miss something the target needs; re-learn, or pass --allow-incomplete", fail.ErrBadInput, reasons)
		}
		out.Warnings = append(out.Warnings, "generating from an INCOMPLETE recording ("+reasons+"): the profile may deny something the target needs")
	}
	for _, m := range rec.Missing {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the recording host could not observe %q: the profile's %s part is not learned", m, m))
	}

	name := opt.Name
	if name == "" {
		name = deriveName(rec.Target)
	}
	if !profileName.MatchString(name) {
		return nil, fmt.Errorf("%w: profile name %q: use lowercase letters, digits, '.' and '-' (at most 63)", fail.ErrBadInput, name)
	}

	sc, warnings, err := buildSeccomp(rec, opt)
	if err != nil {
		return nil, err
	}
	out.Warnings = append(out.Warnings, warnings...)
	out.Seccomp = sc.profile

	caps := neededCaps(rec)
	cwd := ""
	if !opt.Strict {
		cwd = relocatableCwd(recs)
	}
	files, pathGens := generalizeFiles(withExecs(rec), fileOptions{strict: opt.Strict, cwd: cwd, home: targetHome(recs)})
	var collapse *collapseResult
	if opt.Coarsen > 0 {
		if opt.Coarsen > maxCoarsen {
			return nil, fmt.Errorf("%w: collapse level %d: at most %d", fail.ErrBadInput, opt.Coarsen, maxCoarsen)
		}
		var c collapseResult
		files, pathGens, c = coarsen(files, pathGens, opt.Coarsen, opt.CoarsenReason)
		collapse = &c
	}
	var execs []string
	for _, e := range rec.Execs {
		execs = append(execs, e.Path)
		if e.Interpreter != "" {
			execs = append(execs, e.Interpreter)
		}
	}
	slices.Sort(execs)
	execs = slices.Compact(execs)
	fams := map[string]bool{}
	for _, s := range rec.Network.Sockets {
		fams[s.Family] = true
	}

	network := bundleNetwork(rec.Network)
	failed := failedRules(rec.Failed, cwd)
	plan, err := PlanLandlock(PlanInput{Files: files, Execs: execs, Failed: failed, Sockets: rec.Network.Sockets, Network: network})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fail.ErrBadInput, err)
	}

	out.Manifest = profiles.Bundle{
		Kind:           profiles.BundleKind,
		SchemaVersion:  profiles.BundleSchemaVersion,
		Tailor:         opt.Version,
		Name:           name,
		Machine:        rec.Host.Machine,
		Syscalls:       sc.allowed,
		Execs:          nonNil(execs),
		Files:          files,
		Capabilities:   nonNil(caps),
		SocketFamilies: sortedKeys(fams),
		Failed:         failed,
		Network:        network,
		Landlock:       plan,
		Generalised:    append(slices.Clone(sc.generalised), pathGens...),
	}
	if cwd != "" && relocate(&out.Manifest, cwd) {
		for i := range out.Manifest.Generalised {
			if g := &out.Manifest.Generalised[i]; g.Kind == profiles.GeneralisedPath {
				g.Added, _ = underCwd(g.Added, escapeGlob(cwd))
			}
		}
		out.Manifest.Generalised = append(out.Manifest.Generalised, profiles.Generalisation{
			Kind: profiles.GeneralisedPath, Added: CwdVar, From: []string{cwd}, Rule: "working directory",
			Reason: "a local command's rules beneath the directory it was learned in follow the directory it runs in at enforce time (a checkout at another path)"})
		sortRelocated(&out.Manifest)
	} else {
		cwd = ""
	}
	if out.Manifest.Generalised == nil {
		out.Manifest.Generalised = []profiles.Generalisation{}
	}
	for i, r := range recs {
		r.Target.Redact()
		out.Manifest.Sources = append(out.Manifest.Sources, profiles.BundleSource{File: sourceName(opt, i), Target: r.Target, Complete: r.Complete})
	}

	hard, noHarden := hardening(rec, caps)
	out.Manifest.Hardening = hard
	out.Summary = summarize(rec, sc, &out.Manifest, opt.Strict)
	if collapse != nil && len(collapse.dirs) > 0 {
		out.Summary.SizeCollapse = collapse.Text()
		out.Warnings = append(out.Warnings, collapse.Text())
	}
	out.Summary.NoHardening = noHarden

	add := func(file string, data []byte, err error) error {
		if err != nil {
			return fmt.Errorf("rendering %s: %w", file, err)
		}
		out.Files[file] = data
		return nil
	}
	seccompJSON, err := profiles.EncodeSeccomp(sc.profile)
	if err := add(profiles.BundleSeccompFile, seccompJSON, err); err != nil {
		return nil, err
	}
	out.Files[profiles.BundleAppArmorFile] = []byte(renderAppArmor(name, rec, out.Manifest.Files, cwd, network, caps, opt.Version))
	capsJSON, err := profiles.EncodeJSON(capabilitiesFile{Drop: []string{"ALL"}, Add: nonNil(caps)})
	if err := add(profiles.BundleCapabilitiesFile, capsJSON, err); err != nil {
		return nil, err
	}
	out.Files[profiles.BundleDockerRunFile] = []byte(renderDockerRun(name, opt.Dir, caps))
	spo, err := renderSPO(name, api, sc.profile)
	if err := add(profiles.BundleSPOFile, spo, err); err != nil {
		return nil, err
	}
	if hard != nil {
		out.Files[profiles.BundleHardenedRunFile] = []byte(renderHardenedRun(hard))
	}
	if api == SPOAPIv1 {
		aa, err := renderSPOAppArmor(name, &out.Manifest)
		if err := add(profiles.BundleSPOAppArmorFile, aa, err); err != nil {
			return nil, err
		}
	}
	if image := bindingImage(&out.Manifest); image != "" {
		pb, err := renderProfileBinding(name, api, image)
		if err := add(profiles.BundleProfileBindingFile, pb, err); err != nil {
			return nil, err
		}
	}
	pod, err := renderPodSecurityContext(name, api, caps, hard)
	if err := add(profiles.BundlePodSnippetFile, pod, err); err != nil {
		return nil, err
	}
	out.Files[profiles.BundleSummaryFile] = []byte(out.Summary.Text())
	out.Manifest.Digests = map[string]string{}
	for name, data := range out.Files {
		out.Manifest.Digests[name] = profiles.FileDigest(data)
	}
	manifest, err := profiles.EncodeJSON(out.Manifest)
	if err := add(profiles.BundleManifestFile, manifest, err); err != nil {
		return nil, err
	}
	return out, nil
}

// checkRecording rejects what a generator cannot turn into a profile: names that are
// not real syscalls or capabilities, access kinds it does not know.
func checkRecording(r *profiles.Recording) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := r.ValidateNames(); err != nil {
		return err
	}
	for _, f := range r.Files {
		if !knownAccess(f.Access) {
			return fmt.Errorf("%w: file %q has an unknown access kind in %v", fail.ErrBadInput, f.Path, f.Access)
		}
		if !strings.HasPrefix(f.Path, "/") {
			return fmt.Errorf("%w: file path %q is not absolute", fail.ErrBadInput, f.Path)
		}
	}
	for _, f := range r.Failed {
		if !knownAccess(f.Access) {
			return fmt.Errorf("%w: failed attempt on %q has an unknown access kind in %v", fail.ErrBadInput, f.Path, f.Access)
		}
		if !strings.HasPrefix(f.Path, "/") {
			return fmt.Errorf("%w: failed attempt path %q is not absolute", fail.ErrBadInput, f.Path)
		}
	}
	for _, e := range r.Execs {
		if !strings.HasPrefix(e.Path, "/") {
			return fmt.Errorf("%w: exec path %q is not absolute", fail.ErrBadInput, e.Path)
		}
	}
	return nil
}

func sourceName(opt Options, i int) string {
	if i < len(opt.Sources) {
		return opt.Sources[i]
	}
	return fmt.Sprintf("recording %d", i+1)
}

// failedRules generalises the failed attempts like file paths, merging the access
// kinds of attempts that end up with the same pattern and errno.
// Paths beneath keep (the relocatable working directory) keep its segments literal.
func failedRules(failed []profiles.FailedAccess, keep string) []profiles.FailedRule {
	type key struct{ pattern, errno string }
	access := map[key]map[string]bool{}
	for _, f := range failed {
		pat, _ := pathGeneralizer{keep: keep}.path(f.Path, nameContext{})
		k := key{pat, f.Errno}
		if f.Collapsed > 0 {
			// Attempts on the files of a directory learning collapsed.
			k.pattern = strings.TrimSuffix(k.pattern, "/") + "/*"
		}
		if access[k] == nil {
			access[k] = map[string]bool{}
		}
		for _, a := range f.Access {
			access[k][a] = true
		}
	}
	out := make([]profiles.FailedRule, 0, len(access))
	for k, a := range access {
		out = append(out, profiles.FailedRule{Pattern: k.pattern, Access: sortedKeys(a), Errno: k.errno})
	}
	slices.SortFunc(out, func(a, b profiles.FailedRule) int {
		if c := strings.Compare(a.Pattern, b.Pattern); c != 0 {
			return c
		}
		return strings.Compare(a.Errno, b.Errno)
	})
	return out
}

// bundleNetwork copies the learned peers and ports into sorted, unique lists, an
// AF_UNIX path generalised like a file path.
func bundleNetwork(n profiles.Network) profiles.BundleNetwork {
	return profiles.BundleNetwork{
		Connects:       peers(n.Connects),
		Sends:          peers(n.Sends),
		Binds:          ports(n.Binds),
		Listens:        ports(n.Listens),
		Accepts:        ports(n.Accepts),
		FailedConnects: peers(n.Failed),
	}
}

func peers(in []profiles.Peer) []profiles.Peer {
	out := make([]profiles.Peer, 0, len(in))
	for _, p := range in {
		if p.Family == "AF_UNIX" && strings.HasPrefix(p.Address, "/") {
			p.Address = GeneralizePath(p.Address)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, comparePeers)
	return slices.Compact(out)
}

func comparePeers(a, b profiles.Peer) int {
	if c := strings.Compare(a.Family, b.Family); c != 0 {
		return c
	}
	if c := strings.Compare(a.Address, b.Address); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return strings.Compare(a.Errno, b.Errno)
}

func ports(in []profiles.Port) []profiles.Port {
	out := slices.Clone(in)
	if out == nil {
		out = []profiles.Port{}
	}
	slices.SortFunc(out, func(a, b profiles.Port) int {
		if c := strings.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return slices.Compact(out)
}

// withExecs adds the executed programs (and script interpreters) to the recorded
// files, so each path gets one AppArmor rule with all its permissions. An executed
// file is read too (by the loader or, for a script, by its interpreter). A path made
// or removed by mkdir or rmdir is a directory whatever its Dir flag says, so that its
// rule ends in "/" (AppArmor) and its rights go to its parent (Landlock).
func withExecs(rec *profiles.Recording) []profiles.FileAccess {
	files := slices.Clone(rec.Files)
	for i, f := range files {
		if slices.Contains(f.Access, profiles.AccessMkdir) || slices.Contains(f.Access, profiles.AccessRmdir) {
			files[i].Dir = true
		}
	}
	for _, e := range rec.Execs {
		files = append(files, profiles.FileAccess{Path: e.Path, Access: []string{profiles.AccessExec, profiles.AccessRead}})
		if e.Interpreter != "" {
			files = append(files, profiles.FileAccess{Path: e.Interpreter, Access: []string{profiles.AccessExec, profiles.AccessRead}})
		}
	}
	return files
}

// neededCaps lists the capabilities an audited check granted: a denied check means the
// target coped without it, and a probe (CAP_OPT_NOAUDIT) never makes one needed.
func neededCaps(rec *profiles.Recording) []string {
	var caps []string
	for _, c := range rec.Capabilities {
		if c.Needed() {
			caps = append(caps, c.Name)
		}
	}
	slices.Sort(caps)
	return caps
}

var nameJunk = regexp.MustCompile(`[^a-z0-9.-]+`)

// deriveName builds a profile name from the target: the container name, else the
// image's last path element without tag, else the program's base name.
func deriveName(t profiles.Target) string {
	var base string
	switch {
	case t.Container != nil && t.Container.Name != "":
		base = strings.TrimPrefix(t.Container.Name, "/")
	case t.Container != nil && t.Container.Image != "":
		base = path.Base(t.Container.Image)
		base, _, _ = strings.Cut(base, "@")
		base, _, _ = strings.Cut(base, ":")
	case len(t.Command) > 0:
		base = path.Base(t.Command[0])
	}
	base = strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(base), "-"), "-.")
	if base == "" {
		return "tailor-profile"
	}
	name := "tailor-" + base
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-.")
	}
	return name
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
