package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tailor-sec/tailor/internal/safeio"
)

// Policy is what a recording shows or a bundle allows, in the categories diff
// compares. A recording's files are its raw paths; a bundle's are its generalised
// patterns, so compare like with like for a precise file diff.
type Policy struct {
	Syscalls       []ArchSyscalls `json:"syscalls"`
	Execs          []string       `json:"execs"`
	Files          []FileRule     `json:"files"`
	Capabilities   []string       `json:"capabilities"`
	SocketFamilies []string       `json:"socketFamilies"`
	// Problems are what is wrong with a bundle's files (BundleProblems): a missing,
	// truncated or changed file, a seccomp.json allowing more than bundle.json. Each
	// one NEW has that OLD had not counts as added: the bundle may allow anything.
	Problems []string `json:"problems,omitempty"`
	// digests are a bundle's file digests, to tell which files differ.
	digests map[string]string
	// Network are the peers and ports used, one "connect|send|bind|listen FAMILY
	// ADDRESS PORT" item each (networkItems).
	Network []string `json:"network"`
}

// PolicyOfRecording returns what r shows the target needs: capabilities only when
// an audited check granted them, as generate decides.
func PolicyOfRecording(r *Recording) Policy {
	var p Policy
	for _, s := range r.Syscalls {
		p.Syscalls = append(p.Syscalls, ArchSyscalls{Arch: s.Arch, Names: slices.Clone(s.Names)})
	}
	for _, e := range r.Execs {
		p.Execs = append(p.Execs, e.Path)
		if e.Interpreter != "" {
			p.Execs = append(p.Execs, e.Interpreter)
		}
	}
	for _, f := range r.Files {
		p.Files = append(p.Files, FileRule{Pattern: f.Path, Access: slices.Clone(f.Access)})
	}
	for _, c := range r.Capabilities {
		if c.Needed() {
			p.Capabilities = append(p.Capabilities, c.Name)
		}
	}
	for _, s := range r.Network.Sockets {
		p.SocketFamilies = append(p.SocketFamilies, s.Family)
	}
	p.Network = networkItems(BundleNetwork{Connects: r.Network.Connects, Sends: r.Network.Sends, Binds: r.Network.Binds, Listens: r.Network.Listens})
	p.normalize()
	return p
}

// networkItems lists the peers connected and sent to and the ports bound and
// listened on, in the form diff compares. Accepted connections and failed connects
// are not listed: the first come with a listening port, the second are no needs.
func networkItems(n BundleNetwork) []string {
	var items []string
	for _, l := range []struct {
		verb  string
		peers []Peer
	}{{"connect", n.Connects}, {"send", n.Sends}} {
		for _, p := range l.peers {
			item := l.verb + " " + p.Family + " " + p.Address
			if p.Port != 0 || p.Family != "AF_UNIX" {
				item += fmt.Sprintf(" port %d", p.Port)
			}
			items = append(items, item)
		}
	}
	for _, l := range []struct {
		verb  string
		ports []Port
	}{{"bind", n.Binds}, {"listen", n.Listens}} {
		for _, p := range l.ports {
			items = append(items, fmt.Sprintf("%s %s port %d", l.verb, p.Family, p.Port))
		}
	}
	return items
}

// PolicyOfBundle returns what a bundle's manifest allows.
func PolicyOfBundle(b *Bundle) Policy {
	p := Policy{
		Syscalls:       slices.Clone(b.Syscalls),
		Execs:          slices.Clone(b.Execs),
		Files:          slices.Clone(b.Files),
		Capabilities:   slices.Clone(b.Capabilities),
		SocketFamilies: slices.Clone(b.SocketFamilies),
		Network:        networkItems(b.Network),
	}
	p.normalize()
	return p
}

// LoadPolicy reads a recording file or a bundle directory (its bundle.json).
func LoadPolicy(path string) (Policy, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w: %w", path, ErrBadInput, err)
	}
	if !st.IsDir() {
		r, err := LoadRecording(path)
		if err != nil {
			return Policy{}, err
		}
		return PolicyOfRecording(r), nil
	}
	b, err := LoadBundle(path)
	if err != nil {
		return Policy{}, err
	}
	p := PolicyOfBundle(b)
	p.Problems = BundleProblems(path, b)
	p.digests = b.Digests
	return p, nil
}

// LoadBundle reads and checks the manifest of the bundle in dir.
func LoadBundle(dir string) (*Bundle, error) {
	path := filepath.Join(dir, BundleManifestFile)
	data, err := safeio.ReadFile(path, safeio.MaxBundleFile)
	if errors.Is(err, safeio.ErrUnsafe) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: not a bundle: %w", dir, ErrBadInput, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: %w: malformed bundle manifest: %v", path, ErrBadInput, err)
	}
	if b.Kind != BundleKind {
		return nil, fmt.Errorf("%s: %w: not a tailor bundle manifest (kind %q, want %q)", path, ErrBadInput, b.Kind, BundleKind)
	}
	if b.SchemaVersion == 1 {
		return nil, fmt.Errorf("%s: %w: bundle schema version 1 has no Landlock plan, failed attempts or network peers, and its file rules lack the path operations (mkdir, delete, rename, link...): regenerate the bundle with this tailor", path, ErrBadInput)
	}
	if b.SchemaVersion != BundleSchemaVersion {
		return nil, fmt.Errorf("%s: %w: bundle schema version %d, this tailor reads version %d: regenerate the bundle", path, ErrBadInput, b.SchemaVersion, BundleSchemaVersion)
	}
	return &b, nil
}

func (p *Policy) normalize() {
	byArch := map[string][]string{}
	for _, s := range p.Syscalls {
		byArch[s.Arch] = append(byArch[s.Arch], s.Names...)
	}
	p.Syscalls = []ArchSyscalls{}
	for _, a := range sortedUnique(keys(byArch)) {
		p.Syscalls = append(p.Syscalls, ArchSyscalls{Arch: a, Names: sortedUnique(byArch[a])})
	}
	files := map[string][]string{}
	for _, f := range p.Files {
		files[f.Pattern] = append(files[f.Pattern], f.Access...)
	}
	p.Files = []FileRule{}
	for _, pat := range sortedUnique(keys(files)) {
		p.Files = append(p.Files, FileRule{Pattern: pat, Access: sortedUnique(files[pat])})
	}
	p.Execs = sortedUnique(p.Execs)
	p.Capabilities = sortedUnique(p.Capabilities)
	p.SocketFamilies = sortedUnique(p.SocketFamilies)
	p.Network = sortedUnique(p.Network)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// PolicyDiff is what one policy has that another lacks, per category. A file rule
// lists only the access kinds that are new (the pattern may exist on both sides).
type PolicyDiff struct {
	Added   Policy `json:"added"`
	Removed Policy `json:"removed"`
	// Changed names the bundle files whose content differs between two bundles
	// (by digest), for information: what they allow is compared above.
	Changed []string `json:"changed,omitempty"`
}

// Empty reports whether p allows nothing.
func (p Policy) Empty() bool {
	for _, s := range p.Syscalls {
		if len(s.Names) > 0 {
			return false
		}
	}
	return len(p.Execs) == 0 && len(p.Files) == 0 && len(p.Capabilities) == 0 && len(p.SocketFamilies) == 0 &&
		len(p.Network) == 0 && len(p.Problems) == 0
}

// Diff returns what newer allows that older did not (Added) and the reverse (Removed),
// and for two bundles the files that differ.
func Diff(older, newer Policy) PolicyDiff {
	d := PolicyDiff{Added: minus(newer, older), Removed: minus(older, newer)}
	if older.digests != nil && newer.digests != nil {
		names := map[string]bool{}
		for n := range older.digests {
			names[n] = true
		}
		for n := range newer.digests {
			names[n] = true
		}
		for _, n := range sortedKeysOf(names) {
			if older.digests[n] != newer.digests[n] {
				d.Changed = append(d.Changed, n)
			}
		}
	}
	return d
}

// minus returns what a has that b lacks.
func minus(a, b Policy) Policy {
	var out Policy
	out.Syscalls = []ArchSyscalls{}
	for _, s := range a.Syscalls {
		var other []string
		for _, t := range b.Syscalls {
			if t.Arch == s.Arch {
				other = t.Names
			}
		}
		if d := setMinus(s.Names, other); len(d) > 0 {
			out.Syscalls = append(out.Syscalls, ArchSyscalls{Arch: s.Arch, Names: d})
		}
	}
	out.Files = []FileRule{}
	for _, f := range a.Files {
		var other []string
		for _, g := range b.Files {
			if g.Pattern == f.Pattern {
				other = g.Access
			}
		}
		if d := setMinus(f.Access, other); len(d) > 0 {
			out.Files = append(out.Files, FileRule{Pattern: f.Pattern, Access: d})
		}
	}
	out.Execs = setMinus(a.Execs, b.Execs)
	out.Capabilities = setMinus(a.Capabilities, b.Capabilities)
	out.SocketFamilies = setMinus(a.SocketFamilies, b.SocketFamilies)
	if d := setMinus(a.Problems, b.Problems); len(d) > 0 {
		out.Problems = d
	}
	out.Network = setMinus(a.Network, b.Network)
	return out
}

func setMinus(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
