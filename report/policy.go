package report

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/oci/caps"

	"github.com/tailor-sec/tailor/generate"
	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
	"github.com/tailor-sec/tailor/profiles"
)

// PolicyView is what one recording shows or one bundle allows.
type PolicyView struct {
	Source string `json:"source"`
	// Type is "recording" or "bundle".
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target string `json:"target"`
	// Complete is false when a recording (or a bundle's source) lost observations or
	// was cut short; Incomplete says why, LossTotal counts what was lost.
	Complete   bool     `json:"complete"`
	Incomplete []string `json:"incomplete"`
	LossTotal  uint64   `json:"lossTotal"`
	// Missing are the parts the recording host could not observe.
	Missing []string `json:"missing"`
	// Problems are what is wrong with a bundle's files (missing, changed, weakened).
	Problems []string   `json:"problems"`
	Archs    []ArchView `json:"archs"`
	// Capabilities lists Docker's default capabilities and those added, side by side.
	Capabilities []CapView `json:"capabilities"`
	CapsAdded    int       `json:"capsAdded"`
	DockerCaps   int       `json:"dockerCaps"`
	Execs        []string  `json:"execs"`
	// FileRules counts the file rules; Files is their tree; Widened counts the rules
	// local Landlock enforcement grants more than; GeneralisedPaths counts the rules
	// wider than the recorded paths.
	FileRules        int       `json:"fileRules"`
	Files            *FileNode `json:"files"`
	Widened          int       `json:"widened"`
	GeneralisedPaths int       `json:"generalisedPaths"`
	Failed           []string  `json:"failed"`
	SocketFamilies   []string  `json:"socketFamilies"`
	// Network lists peers and ports, one "verb FAMILY ADDRESS port N" line each.
	Network []string `json:"network"`
	// Hardening are the docker run flags of docker-run.txt, one flag each.
	Hardening []string `json:"hardening"`
	// LandlockTCP, NotEnforced and Denied come from a bundle's Landlock plan.
	LandlockTCP string   `json:"landlockTCP,omitempty"`
	NotEnforced []string `json:"notEnforced"`
	Denied      []string `json:"denied"`
}

// ArchView is one architecture's syscalls, grouped by kind, against Docker's default.
type ArchView struct {
	Arch    string `json:"arch"`
	Allowed int    `json:"allowed"`
	// DockerDefault counts what Docker's default profile allows unconditionally
	// (generate.DockerDefaultSyscalls); NotInDocker counts allowed calls it does not.
	DockerDefault int         `json:"dockerDefault"`
	NotInDocker   int         `json:"notInDocker"`
	Generalised   int         `json:"generalised"`
	Groups        []KindGroup `json:"groups"`
}

// KindGroup is the syscalls of one kind.
type KindGroup struct {
	Kind     string        `json:"kind"`
	Syscalls []SyscallView `json:"syscalls"`
	// Docker counts the calls of this kind Docker's default allows unconditionally.
	Docker int `json:"docker"`
}

// SyscallView is one allowed syscall; Rule, Reason and From are set when
// generalisation added it rather than a recording.
type SyscallView struct {
	Name     string   `json:"name"`
	InDocker bool     `json:"inDocker"`
	Rule     string   `json:"rule,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	From     []string `json:"from,omitempty"`
}

// CapView is one capability: in Docker's default set, added by the profile, or both.
type CapView struct {
	Name   string `json:"name"`
	Docker bool   `json:"docker"`
	Added  bool   `json:"added"`
}

func policyView(path string) (*PolicyView, error) {
	kind, _, err := classify(path)
	if err != nil {
		return nil, err
	}
	if kind == inputBundle {
		return bundleView(path)
	}
	rec, err := profiles.LoadRecording(path)
	if err != nil {
		return nil, err
	}
	return recordingView(path, rec), nil
}

func recordingView(path string, rec *profiles.Recording) *PolicyView {
	v := &PolicyView{
		Source:     path,
		Type:       inputRecording,
		Name:       targetName(rec.Target),
		Target:     targetText(rec.Target),
		Complete:   rec.Complete,
		Incomplete: nonNil(rec.Incomplete),
		LossTotal:  rec.Loss.Total(),
		Missing:    nonNil(rec.Missing),
		Problems:   []string{},
		Hardening:  []string{},
	}
	for _, s := range rec.Syscalls {
		v.Archs = append(v.Archs, archView(rec.Host.Machine, s, nil))
	}
	var added []string
	for _, c := range rec.Capabilities {
		if c.Needed() {
			added = append(added, c.Name)
		}
	}
	v.setCaps(added)
	p := profiles.PolicyOfRecording(rec)
	v.Execs = nonNil(p.Execs)
	v.SocketFamilies = nonNil(p.SocketFamilies)
	v.Network = nonNil(p.Network)
	v.FileRules = len(rec.Files)
	var rules []*FileRuleView
	for _, f := range rec.Files {
		rules = append(rules, &FileRuleView{Pattern: f.Path, Access: f.Access})
	}
	v.Files = fileTree(rules)
	for _, f := range rec.Failed {
		v.Failed = append(v.Failed, fmt.Sprintf("%s %s %s", f.Path, strings.Join(f.Access, ","), f.Errno))
	}
	v.Failed = nonNil(v.Failed)
	v.NotEnforced, v.Denied = []string{}, []string{}
	return v
}

func bundleView(dir string) (*PolicyView, error) {
	b, err := profiles.LoadBundle(dir)
	if err != nil {
		return nil, err
	}
	v := &PolicyView{
		Source:         dir,
		Type:           inputBundle,
		Name:           b.Name,
		Complete:       true,
		Incomplete:     []string{},
		Missing:        []string{},
		Problems:       nonNil(profiles.BundleProblems(dir, b)),
		Execs:          nonNil(b.Execs),
		FileRules:      len(b.Files),
		SocketFamilies: nonNil(b.SocketFamilies),
		Network:        nonNil(profiles.PolicyOfBundle(b).Network),
		LandlockTCP:    b.Landlock.TCP.String(),
		NotEnforced:    nonNil(b.Landlock.NotEnforced),
		Denied:         nonNil(b.Landlock.Denied),
	}
	var targets []string
	for _, s := range b.Sources {
		targets = append(targets, targetText(s.Target))
		if !s.Complete {
			v.Complete = false
			v.Incomplete = append(v.Incomplete, "generated from an incomplete recording: "+s.File)
		}
	}
	v.Target = strings.Join(targets, "; ")
	gens := map[string]profiles.Generalisation{}
	pathGens := map[string]profiles.Generalisation{}
	for _, g := range b.Generalised {
		if g.Kind == profiles.GeneralisedSyscall {
			gens[g.Added] = g
		} else {
			pathGens[g.Added] = g
		}
	}
	for _, s := range b.Syscalls {
		v.Archs = append(v.Archs, archView(b.Machine, s, gens))
	}
	v.setCaps(b.Capabilities)
	// Landlock's grants beyond a rule, by the rule they widen.
	widen := map[string][]Widening{}
	for _, lp := range b.Landlock.Paths {
		for _, w := range lp.Widened {
			widen[w.Rule] = append(widen[w.Rule], Widening{Path: lp.Path, Access: w.Access, Reason: w.Reason})
		}
	}
	var rules []*FileRuleView
	seen := map[string]bool{}
	for _, f := range b.Files {
		r := &FileRuleView{Pattern: f.Pattern, Access: f.Access, Widened: widen[f.Pattern]}
		if g, ok := pathGens[f.Pattern]; ok {
			r.Generalised, r.Reason, r.From = g.Rule, g.Reason, g.From
			v.GeneralisedPaths++
		}
		seen[f.Pattern] = true
		rules = append(rules, r)
	}
	// Widened rules that are execs rather than file rules still belong in the tree.
	for _, rule := range sortedKeys(widen) {
		if !seen[rule] {
			rules = append(rules, &FileRuleView{Pattern: rule, Access: []string{"exec"}, Widened: widen[rule]})
		}
	}
	for _, r := range rules {
		if len(r.Widened) > 0 {
			v.Widened++
		}
	}
	v.Files = fileTree(rules)
	for _, f := range b.Failed {
		v.Failed = append(v.Failed, fmt.Sprintf("%s %s %s", f.Pattern, strings.Join(f.Access, ","), f.Errno))
	}
	v.Failed = nonNil(v.Failed)
	v.Hardening, err = hardening(dir)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// hardening reads the docker run flags of a bundle's docker-run.txt, one flag and
// its value per item; a bundle without the file has none.
func hardening(dir string) ([]string, error) {
	data, err := safeio.ReadFile(filepath.Join(dir, profiles.BundleDockerRunFile), safeio.MaxBundleFile)
	if errors.Is(err, safeio.ErrUnsafe) {
		return nil, err
	}
	if err != nil {
		return []string{}, nil
	}
	flags := []string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var cur string
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "--") && cur != "" {
				flags = append(flags, cur)
				cur = ""
			}
			cur = strings.TrimSpace(cur + " " + f)
		}
		if cur != "" {
			flags = append(flags, cur)
		}
	}
	return flags, nil
}

func archView(machine string, s profiles.ArchSyscalls, gens map[string]profiles.Generalisation) ArchView {
	docker := generate.DockerDefaultSyscalls(machine, s.Arch)
	a := ArchView{Arch: strings.ToLower(strings.TrimPrefix(s.Arch, "SCMP_ARCH_")), Allowed: len(s.Names), DockerDefault: len(docker)}
	groups := map[string]*KindGroup{}
	group := func(k string) *KindGroup {
		if groups[k] == nil {
			groups[k] = &KindGroup{Kind: k, Syscalls: []SyscallView{}}
		}
		return groups[k]
	}
	for _, n := range docker {
		group(SyscallKind(n)).Docker++
	}
	for _, n := range s.Names {
		sv := SyscallView{Name: n}
		_, sv.InDocker = slices.BinarySearch(docker, n)
		if !sv.InDocker {
			a.NotInDocker++
		}
		if g, ok := gens[n]; ok {
			sv.Rule, sv.Reason, sv.From = g.Rule, g.Reason, g.From
			a.Generalised++
		}
		g := group(SyscallKind(n))
		g.Syscalls = append(g.Syscalls, sv)
	}
	for _, k := range Kinds {
		if g := groups[k]; g != nil {
			a.Groups = append(a.Groups, *g)
		}
	}
	return a
}

// setCaps lists Docker's default capabilities and the added ones, Docker's first.
func (v *PolicyView) setCaps(added []string) {
	docker := caps.DefaultCapabilities()
	v.DockerCaps = len(docker)
	v.CapsAdded = len(added)
	byName := map[string]*CapView{}
	for _, c := range docker {
		byName[c] = &CapView{Name: c, Docker: true}
	}
	for _, c := range added {
		if byName[c] == nil {
			byName[c] = &CapView{Name: c}
		}
		byName[c].Added = true
	}
	v.Capabilities = []CapView{}
	for _, c := range byName {
		v.Capabilities = append(v.Capabilities, *c)
	}
	slices.SortFunc(v.Capabilities, func(a, b CapView) int {
		if a.Docker != b.Docker {
			if a.Docker {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

func targetName(t profiles.Target) string {
	if t.Container != nil {
		return cmp.Or(t.Container.Name, t.Container.Image)
	}
	if len(t.Command) > 0 {
		return filepath.Base(t.Command[0])
	}
	return t.Kind
}

func targetText(t profiles.Target) string {
	if t.Container != nil {
		return fmt.Sprintf("container %s (image %s)", cmp.Or(t.Container.Name, t.Container.ID), t.Container.Image)
	}
	return strings.Join(t.Command, " ")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// errBad wraps a message as bad input.
func errBad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{fail.ErrBadInput}, args...)...)
}
