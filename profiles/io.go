package profiles

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/tailor-sec/tailor/internal/fail"
	"github.com/tailor-sec/tailor/internal/safeio"
)

// ErrBadInput marks a file that is not a usable recording or bundle. The CLI maps it
// to exit code 2 (docs/exit-codes.md).
var ErrBadInput = fail.ErrBadInput

// WriteFileAtomic writes data to path through a temporary file in the same directory
// and a rename, so a reader never sees a half-written file and an interrupted write
// leaves the old file in place. Only a regular file or a new path is written: never a
// device, a FIFO or through a symlink (safeio.WriteFileAtomic).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return safeio.WriteFileAtomic(path, data, mode)
}

// readInput reads an input file through safeio.ReadFile: only a regular file, never
// more than limit bytes, so neither a FIFO nor /dev/zero can hang or exhaust tailor.
func readInput(path string, limit int64) ([]byte, error) {
	data, err := safeio.ReadFile(path, limit)
	switch {
	case errors.Is(err, safeio.ErrUnsafe):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%s: %w: %w", path, ErrBadInput, err)
	}
	return data, nil
}

// EncodeJSON is how every file tailor writes is spelled: indented by two spaces,
// no HTML escaping, a trailing newline. With sorted input it is byte-stable.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encode normalises r and returns its JSON form.
func (r *Recording) Encode() ([]byte, error) {
	r.Normalize()
	return EncodeJSON(r)
}

// Save normalises r and writes it to path atomically with mode 0600 whatever the
// umask: secrets are redacted, but paths, commands and a container's configuration
// are still nobody else's business.
func (r *Recording) Save(path string) error {
	data, err := r.Encode()
	if err != nil {
		return fmt.Errorf("encoding recording: %w", err)
	}
	return WriteFileAtomic(path, data, 0o600)
}

// LoadRecording reads and checks a recording: a regular file of at most
// safeio.MaxRecording bytes. Every problem is reported as one line naming the file,
// wrapped around ErrBadInput.
func LoadRecording(path string) (*Recording, error) {
	data, err := readInput(path, safeio.MaxRecording)
	if err != nil {
		return nil, err
	}
	r, err := DecodeRecording(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// DecodeRecording parses and checks a recording.
func DecodeRecording(data []byte) (*Recording, error) {
	var head struct {
		Kind          string `json:"kind"`
		SchemaVersion int    `json:"schemaVersion"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrBadInput, err)
	}
	if head.Kind != RecordingKind {
		return nil, fmt.Errorf("%w: not a tailor recording (kind %q, want %q)", ErrBadInput, head.Kind, RecordingKind)
	}
	if head.SchemaVersion == 1 {
		return nil, fmt.Errorf("%w: recording schema version 1 was written by a tailor that did not observe mkdir, delete, rename, link, attribute changes, failed attempts or network peers: a profile built from it would deny them; re-learn with this tailor", ErrBadInput)
	}
	if head.SchemaVersion != RecordingSchemaVersion {
		return nil, fmt.Errorf("%w: recording schema version %d, this tailor reads version %d: re-learn or use a matching tailor", ErrBadInput, head.SchemaVersion, RecordingSchemaVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Recording
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: malformed recording: %v", ErrBadInput, err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	r.Normalize()
	return &r, nil
}

// Validate checks the parts of a recording that do not need libseccomp: architectures
// are known, capability names are well formed, the recording is not empty.
func (r *Recording) Validate() error {
	if len(r.Syscalls) == 0 {
		return fmt.Errorf("%w: empty recording: no syscalls were recorded", ErrBadInput)
	}
	archs, ok := MachineArchs[r.Host.Machine]
	if !ok {
		return fmt.Errorf("%w: unknown machine %q in host.machine (known: %s)", ErrBadInput, r.Host.Machine, strings.Join(sortedKeysOf(MachineArchs), ", "))
	}
	for _, s := range r.Syscalls {
		if !slices.Contains(KnownArchs, s.Arch) {
			return fmt.Errorf("%w: unknown architecture %q (known: %s)", ErrBadInput, s.Arch, strings.Join(KnownArchs, ", "))
		}
		if !slices.Contains(archs, s.Arch) && (len(s.Names) > 0 || len(s.Unknown) > 0) {
			return fmt.Errorf("%w: syscalls of %s in a recording made on %s, which runs only %s: the recording is not what a tracer on that machine writes", ErrBadInput, s.Arch, r.Host.Machine, strings.Join(archs, ", "))
		}
	}
	if r.Complete && len(r.Incomplete) > 0 {
		return fmt.Errorf("%w: the recording says complete but also incomplete (%s)", ErrBadInput, strings.Join(r.Incomplete, "; "))
	}
	if r.Complete && r.Loss.Total() > 0 {
		return fmt.Errorf("%w: the recording says complete but lost %d observations", ErrBadInput, r.Loss.Total())
	}
	for _, c := range r.Capabilities {
		if !strings.HasPrefix(c.Name, "CAP_") {
			return fmt.Errorf("%w: capability name %q does not start with CAP_", ErrBadInput, c.Name)
		}
	}
	for _, f := range r.Files {
		if err := checkAccess(f.Path, f.Access); err != nil {
			return err
		}
	}
	for _, f := range r.Failed {
		if err := checkAccess(f.Path, f.Access); err != nil {
			return err
		}
		if f.Errno == "" {
			return fmt.Errorf("%w: failed access to %q has no errno", ErrBadInput, f.Path)
		}
	}
	return nil
}

func checkAccess(path string, access []string) error {
	for _, a := range access {
		if !slices.Contains(AccessKinds, a) {
			return fmt.Errorf("%w: %q: unknown access kind %q (known: %s)", ErrBadInput, path, a, strings.Join(AccessKinds, ", "))
		}
	}
	return nil
}

// MachineArchs maps each machine tailor records on (uname -m) to the syscall tables
// a process there can use: the native one and its compat ones.
var MachineArchs = map[string][]string{
	"x86_64":  {ArchX86_64, ArchX86, ArchX32},
	"aarch64": {ArchAARCH64, ArchARM},
}

// KnownArchs are the architectures a recording may name.
var KnownArchs = []string{ArchAARCH64, ArchARM, ArchX32, ArchX86, ArchX86_64}

// Normalize sorts and deduplicates every list so equal observations encode equally,
// and redacts secret-looking environment values of the target (RedactEnv).
func (r *Recording) Normalize() {
	r.Target.Redact()
	// Syscalls: merge entries of the same arch.
	byArch := map[string]*ArchSyscalls{}
	for _, s := range r.Syscalls {
		a := byArch[s.Arch]
		if a == nil {
			a = &ArchSyscalls{Arch: s.Arch}
			byArch[s.Arch] = a
		}
		a.Names = append(a.Names, s.Names...)
		a.Unknown = append(a.Unknown, s.Unknown...)
	}
	r.Syscalls = r.Syscalls[:0]
	for _, a := range byArch {
		a.Names = sortedUnique(a.Names)
		slices.Sort(a.Unknown)
		a.Unknown = slices.Compact(a.Unknown)
		if len(a.Unknown) == 0 {
			a.Unknown = nil
		}
		r.Syscalls = append(r.Syscalls, *a)
	}
	sort.Slice(r.Syscalls, func(i, j int) bool { return r.Syscalls[i].Arch < r.Syscalls[j].Arch })

	// Execs: unique by (path, interpreter, by, dockerExec).
	slices.SortFunc(r.Execs, func(a, b Exec) int {
		return cmpAll(strings.Compare(a.Path, b.Path), strings.Compare(a.Interpreter, b.Interpreter),
			strings.Compare(a.By, b.By), cmpBool(a.DockerExec, b.DockerExec))
	})
	r.Execs = slices.Compact(r.Execs)
	if r.Execs == nil {
		r.Execs = []Exec{}
	}

	// Files: one entry per path, access kinds unioned; a collapsed directory's entry
	// (the files in it) apart from the directory's own.
	type fileKey struct {
		path      string
		collapsed bool
	}
	files := map[fileKey]*FileAccess{}
	for _, f := range r.Files {
		k := fileKey{f.Path, f.Collapsed > 0}
		e := files[k]
		if e == nil {
			e = &FileAccess{Path: f.Path}
			files[k] = e
		}
		e.Access = append(e.Access, f.Access...)
		e.Dir = e.Dir || f.Dir
		e.Collapsed += f.Collapsed
	}
	r.Files = make([]FileAccess, 0, len(files))
	for _, f := range files {
		f.Access = sortedUnique(f.Access)
		r.Files = append(r.Files, *f)
	}
	sort.Slice(r.Files, func(i, j int) bool {
		a, b := r.Files[i], r.Files[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Collapsed < b.Collapsed
	})

	// Failed attempts: one entry per (path, errno), access kinds unioned; a collapsed
	// directory's entry apart.
	type failKey struct {
		path, errno string
		collapsed   bool
	}
	failed := map[failKey]*FailedAccess{}
	for _, f := range r.Failed {
		k := failKey{f.Path, f.Errno, f.Collapsed > 0}
		e := failed[k]
		if e == nil {
			e = &FailedAccess{Path: f.Path, Errno: f.Errno}
			failed[k] = e
		}
		e.Access = append(e.Access, f.Access...)
		e.Collapsed += f.Collapsed
	}
	r.Failed = nil
	for _, f := range failed {
		f.Access = sortedUnique(f.Access)
		r.Failed = append(r.Failed, *f)
	}
	slices.SortFunc(r.Failed, func(a, b FailedAccess) int {
		return cmpAll(strings.Compare(a.Path, b.Path), strings.Compare(a.Errno, b.Errno), cmp.Compare(a.Collapsed, b.Collapsed))
	})

	// Capabilities: one entry per name, counters added.
	caps := map[string]*Capability{}
	for _, c := range r.Capabilities {
		e := caps[c.Name]
		if e == nil {
			e = &Capability{Name: c.Name}
			caps[c.Name] = e
		}
		e.Granted += c.Granted
		e.Denied += c.Denied
		e.Probed += c.Probed
		e.Runtime += c.Runtime
		e.Overridden += c.Overridden
		e.Callers = append(e.Callers, c.Callers...)
	}
	r.Capabilities = make([]Capability, 0, len(caps))
	for _, c := range caps {
		c.Callers = sortedUnique(c.Callers)
		if len(c.Callers) == 0 {
			c.Callers = nil
		}
		r.Capabilities = append(r.Capabilities, *c)
	}
	sort.Slice(r.Capabilities, func(i, j int) bool { return r.Capabilities[i].Name < r.Capabilities[j].Name })

	slices.SortFunc(r.Network.Sockets, func(a, b Socket) int {
		return cmpAll(strings.Compare(a.Family, b.Family), strings.Compare(a.Type, b.Type), a.Protocol-b.Protocol)
	})
	r.Network.Sockets = slices.Compact(r.Network.Sockets)
	for _, peers := range []*[]Peer{&r.Network.Connects, &r.Network.Sends, &r.Network.Failed} {
		slices.SortFunc(*peers, func(a, b Peer) int {
			return cmpAll(strings.Compare(a.Family, b.Family), strings.Compare(a.Address, b.Address),
				int(a.Port)-int(b.Port), strings.Compare(a.Errno, b.Errno))
		})
		*peers = slices.Compact(*peers)
		if len(*peers) == 0 {
			*peers = nil
		}
	}
	slices.SortFunc(r.Network.Accepts, func(a, b Port) int {
		return cmpAll(strings.Compare(a.Family, b.Family), int(a.Port)-int(b.Port))
	})
	r.Network.Accepts = slices.Compact(r.Network.Accepts)
	if len(r.Network.Accepts) == 0 {
		r.Network.Accepts = nil
	}
	for _, ports := range []*[]Port{&r.Network.Binds, &r.Network.Listens} {
		slices.SortFunc(*ports, func(a, b Port) int {
			return cmpAll(strings.Compare(a.Family, b.Family), int(a.Port)-int(b.Port))
		})
		*ports = slices.Compact(*ports)
		if *ports == nil {
			*ports = []Port{}
		}
	}
	if r.Network.Sockets == nil {
		r.Network.Sockets = []Socket{}
	}
	r.Incomplete = sortedUnique(r.Incomplete)
	if len(r.Incomplete) == 0 {
		r.Incomplete = nil
	}
	r.Missing = sortedUnique(r.Missing)
	if len(r.Missing) == 0 {
		r.Missing = nil
	}
	r.Host.Probes = sortedUnique(r.Host.Probes)
	if len(r.Host.Probes) == 0 {
		r.Host.Probes = nil
	}
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func cmpAll(c ...int) int {
	for _, x := range c {
		if x != 0 {
			return x
		}
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// LoadRecordings loads and checks the recordings a command was given (tailor
// generate's and merge's arguments), in order; none is bad input.
func LoadRecordings(paths []string) ([]*Recording, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no recording given", fail.ErrBadInput)
	}
	var recs []*Recording
	for _, p := range paths {
		r, err := LoadRecording(p)
		if err != nil {
			return nil, err
		}
		if err := r.ValidateNames(); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}
