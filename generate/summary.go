package generate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/oci/caps"
	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tailor-sec/tailor/profiles"
)

// Summary counts what the bundle allows and compares it with Docker's defaults.
type Summary struct {
	Name string `json:"name"`
	// Archs has one entry per architecture in seccomp.json.
	Archs []ArchSummary `json:"archs"`
	// ArgFiltered are syscalls allowed only for some argument values.
	ArgFiltered []string `json:"argFiltered"`
	// ENOSYS are syscalls answered ENOSYS so libc falls back.
	ENOSYS       []string `json:"enosys"`
	Execs        int      `json:"execs"`
	FileRules    int      `json:"fileRules"`
	Capabilities []string `json:"capabilities"`
	// DockerCapabilities is the size of Docker's default capability set.
	DockerCapabilities int      `json:"dockerCapabilities"`
	SocketFamilies     []string `json:"socketFamilies"`
	Complete           bool     `json:"complete"`
	// Failed counts the learned failed attempts (facts, not needs).
	Failed int `json:"failed"`
	// Connects, Sends and Accepts count learned peers; Ports are the bound and
	// listening ports ("AF_INET 8080").
	Connects int      `json:"connects"`
	Sends    int      `json:"sends"`
	Accepts  int      `json:"accepts"`
	Ports    []string `json:"ports"`
	// LandlockRules counts the Landlock path rules; Widened names each grant beyond
	// a bundle rule, one line each; TCP says the port rules; NotEnforced what
	// Landlock cannot express.
	LandlockRules int      `json:"landlockRules"`
	Widened       []string `json:"widened"`
	TCP           string   `json:"tcp"`
	NotEnforced   []string `json:"notEnforced"`
	Denied        []string `json:"denied"`
	// Strict is true for generate --strict (no generalisation).
	Strict bool `json:"strict"`
	// GeneralisedSyscalls are the syscalls allowed by a family or the baseline rather
	// than recorded, each with its rule ("dup3 (family dup)").
	GeneralisedSyscalls []string `json:"generalisedSyscalls"`
	// GeneralisedPaths are the file rules wider than the recorded paths, each with
	// its rules ("/srv/www/* (content directory)").
	GeneralisedPaths []string `json:"generalisedPaths"`
	// Hardening pairs each part of the hardened run configuration with its flags and
	// the learned fact behind them; NoHardening says why there is none.
	Hardening   []profiles.HardenFact `json:"hardening,omitempty"`
	NoHardening string                `json:"noHardening,omitempty"`
	// SizeCollapse says how file rules were collapsed for the profile to compile
	// ("" when they were not).
	SizeCollapse string `json:"sizeCollapse,omitempty"`
}

// ArchSummary compares one architecture's allowed syscalls with Docker's default.
type ArchSummary struct {
	Arch string `json:"arch"`
	// Allowed counts the syscalls the profile allows on this arch, with or without
	// argument conditions.
	Allowed int `json:"allowed"`
	// DockerDefault counts the syscalls Docker's default profile allows on this arch
	// without argument conditions (see dockerDefaultCount).
	DockerDefault int `json:"dockerDefault"`
}

func summarize(rec *profiles.Recording, sc *seccompPlan, m *profiles.Bundle, strict bool) Summary {
	s := Summary{
		Strict:             strict,
		Name:               m.Name,
		ArgFiltered:        nonNil(sc.argFiltered),
		ENOSYS:             nonNil(sc.enosys),
		Execs:              len(m.Execs),
		FileRules:          len(m.Files),
		Capabilities:       m.Capabilities,
		DockerCapabilities: len(caps.DefaultCapabilities()),
		SocketFamilies:     m.SocketFamilies,
		Complete:           rec.Complete,
		Failed:             len(m.Failed),
		Connects:           len(m.Network.Connects),
		Sends:              len(m.Network.Sends),
		Accepts:            len(m.Network.Accepts),
		Ports:              []string{},
		LandlockRules:      len(m.Landlock.Paths),
		Widened:            m.Landlock.WideningLines(0),
		TCP:                m.Landlock.TCP.String(),
		NotEnforced:        m.Landlock.NotEnforced,
		Denied:             m.Landlock.Denied,
	}
	for _, p := range ports(append(slices.Clone(m.Network.Binds), m.Network.Listens...)) {
		s.Ports = append(s.Ports, fmt.Sprintf("%s %d", p.Family, p.Port))
	}
	s.GeneralisedSyscalls, s.GeneralisedPaths = []string{}, []string{}
	for _, g := range m.Generalised {
		item := fmt.Sprintf("%s (%s)", g.Added, g.Rule)
		if g.Kind == profiles.GeneralisedSyscall {
			s.GeneralisedSyscalls = append(s.GeneralisedSyscalls, item)
		} else {
			s.GeneralisedPaths = append(s.GeneralisedPaths, item)
		}
	}
	if m.Hardening != nil {
		s.Hardening = m.Hardening.Facts
	}
	for _, a := range m.Syscalls {
		s.Archs = append(s.Archs, ArchSummary{Arch: a.Arch, Allowed: len(a.Names), DockerDefault: dockerDefaultCount(rec.Host.Machine, a.Arch)})
	}
	return s
}

// dockerHostArch maps uname's machine to the architecture names Docker's default
// profile uses in its per-arch conditions (Go's GOARCH spelling).
var dockerHostArch = map[string]string{
	"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "i386": "x86", "armv7l": "arm",
}

// dockerDefaultCount counts the syscalls of DockerDefaultSyscalls.
func dockerDefaultCount(machine, arch string) int {
	return len(DockerDefaultSyscalls(machine, arch))
}

// DockerDefaultSyscalls returns, sorted, the syscalls Docker's default seccomp
// profile allows without conditions, for a container on a host of the given machine,
// on the given syscall architecture: the names of every SCMP_ACT_ALLOW rule that has
// no argument conditions, no capability condition (a default container lacks
// CAP_SYS_ADMIN and the like) and no exclusion, whose arch condition (if any) includes
// the host; rules gated only on a minimum kernel count (every kernel tailor supports
// is newer); names that are not real syscalls of the architecture (according to
// libseccomp) do not.
func DockerDefaultSyscalls(machine, arch string) []string {
	host := dockerHostArch[machine]
	sa, err := profiles.ScmpArch(arch)
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, r := range mobyseccomp.DefaultProfile().Syscalls {
		if r.Action != specs.ActAllow || len(r.Args) > 0 || r.Excludes != nil {
			continue
		}
		if inc := r.Includes; inc != nil && (len(inc.Caps) > 0 || len(inc.Arches) > 0 && !slices.Contains(inc.Arches, host)) {
			continue
		}
		for _, n := range r.Names {
			if real, err := profiles.SyscallOnArch(n, sa); err == nil && real {
				names[n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}

// Text renders the summary for SUMMARY.txt and the terminal.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s\n", s.Name)
	if !s.Complete {
		b.WriteString("WARNING: generated from an incomplete recording\n")
	}
	for _, a := range s.Archs {
		fmt.Fprintf(&b, "seccomp %s: %d syscalls allowed, Docker default allows %d unconditionally (%s)\n",
			a.Arch, a.Allowed, a.DockerDefault, reduction(a.Allowed, a.DockerDefault))
	}
	fmt.Fprintf(&b, "seccomp argument filters: %s\n", listOrNone(s.ArgFiltered))
	fmt.Fprintf(&b, "seccomp ENOSYS (libc falls back): %s\n", listOrNone(s.ENOSYS))
	fmt.Fprintf(&b, "capabilities: %d added after dropping all, Docker default keeps %d (%s): %s\n",
		len(s.Capabilities), s.DockerCapabilities, reduction(len(s.Capabilities), s.DockerCapabilities), listOrNone(s.Capabilities))
	fmt.Fprintf(&b, "apparmor: %d file rules, %d executables\n", s.FileRules, s.Execs)
	if s.SizeCollapse != "" {
		fmt.Fprintf(&b, "WIDENED: %s\n", s.SizeCollapse)
	}
	if s.Strict {
		b.WriteString("generalisation: off (--strict): syscalls exactly as recorded, paths by the pid, number, id and 8-file directory rules only\n")
	}
	fmt.Fprintf(&b, "generalised syscalls (families of recorded ones, baseline; bundle.json says why): %s\n", listOrNone(s.GeneralisedSyscalls))
	fmt.Fprintf(&b, "generalised file rules (wider than the recorded paths; bundle.json says why): %s\n", listOrNone(s.GeneralisedPaths))
	fmt.Fprintf(&b, "socket families: %s\n", listOrNone(s.SocketFamilies))
	fmt.Fprintf(&b, "network: %d peers connected to, %d sent to, %d accepted on; bound or listening: %s\n", s.Connects, s.Sends, s.Accepts, listOrNone(s.Ports))
	fmt.Fprintf(&b, "failed attempts learned (not needs, a repeat is no anomaly): %d\n", s.Failed)
	fmt.Fprintf(&b, "landlock (local enforcement): %d path rules, %d widened (bundle.json landlock.paths has each rule's grant)\n", s.LandlockRules, len(s.Widened))
	for _, w := range s.Widened {
		fmt.Fprintf(&b, "  widened: %s\n", w)
	}
	fmt.Fprintf(&b, "landlock TCP: %s\n", s.TCP)
	for _, n := range s.NotEnforced {
		fmt.Fprintf(&b, "  not enforced: %s\n", n)
	}
	for _, n := range s.Denied {
		fmt.Fprintf(&b, "  WARNING: %s\n", n)
	}
	if s.NoHardening != "" {
		fmt.Fprintf(&b, "hardened run configuration: none (%s)\n", s.NoHardening)
	} else if len(s.Hardening) > 0 {
		b.WriteString("hardened run configuration (hardened-run.txt; enforce --container applies it):\n")
		for _, f := range s.Hardening {
			flags := "(none)"
			if len(f.Flags) > 0 {
				flags = shellJoin(f.Flags)
			}
			fmt.Fprintf(&b, "  [%s] %s: %s\n", f.Part, flags, f.Fact)
		}
	}
	return b.String()
}

func reduction(ours, docker int) string {
	if docker == 0 {
		return "no reference"
	}
	return fmt.Sprintf("%d%% fewer", (docker-ours)*100/docker)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
