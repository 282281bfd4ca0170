// Package learn runs a target under the tracer and turns what the tracer saw into a
// recording (profiles.Recording).
package learn

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/tailor-sec/tailor/bpf"
	"github.com/tailor-sec/tailor/internal/version"
	"github.com/tailor-sec/tailor/profiles"
)

// Session gathers the observations of one target from a tracer's events and maps.
type Session struct {
	tr     *bpf.Tracer
	target uint32
	start  time.Time

	mu        sync.Mutex
	files     fileStore
	failed    failStore
	peers     map[profiles.Peer]peerKind
	execs     map[profiles.Exec]struct{}
	truncated uint64
	// interps caches each executable's ELF interpreter; unreadable holds executables
	// that could not be read (every process of the target was gone): their loader may
	// be missing until ReadInterpreters finds it.
	interps    map[string]string
	unreadable map[string]struct{}
	// resolved caches resolveArgPath's directories: "root\x00dir/" -> resolved dir.
	resolved map[string]string
	// hostRoot is true when the target shares the host's root directory (a local
	// command), so executables can be read from there once their process is gone.
	hostRoot bool
}

// peerKind says which list of the recording's network a unix peer belongs to.
type peerKind int

const (
	peerConnect peerKind = iota
	peerSend
)

// NewSession starts gathering for target. hostRoot tells whether the target sees the
// host's root directory.
func NewSession(tr *bpf.Tracer, target uint32, hostRoot bool) *Session {
	return &Session{hostRoot: hostRoot, tr: tr, target: target, start: time.Now().UTC(), files: newFileStore(),
		failed: newFailStore(), peers: map[profiles.Peer]peerKind{},
		interps: map[string]string{}, unreadable: map[string]struct{}{}, resolved: map[string]string{}, execs: map[profiles.Exec]struct{}{}}
}

// Target is the tracer's id of the session's target.
func (s *Session) Target() uint32 { return s.target }

// Handle takes one event; events of other targets are ignored.
func (s *Session) Handle(ev bpf.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e := ev.(type) {
	case *bpf.FileEvent:
		if e.Target != s.target {
			return
		}
		// The runtime's own files before the entrypoint runs are outside the
		// target's AppArmor profile, which applies from the execve on.
		if e.Runtime {
			return
		}
		if e.Truncated {
			s.truncated++
		}
		if e.Args {
			s.handleOp(e)
			return
		}
		f := s.files.get(e.Path, e.Dir)
		f.access |= e.Access
		f.dir = f.dir || e.Dir
		if e.Access&bpf.AccExec != 0 && !e.Dir {
			s.addInterpreter(e.Pid, e.Path)
		}
	case *bpf.ExecEvent:
		if e.Target != s.target {
			return
		}
		x := profiles.Exec{Path: e.Filename, By: e.By, DockerExec: e.DockerExec}
		if e.Interp != "" && e.Interp != e.Filename {
			x.Interpreter = e.Interp
		}
		s.execs[x] = struct{}{}
	}
}

// handleOp records a path operation read from a syscall's arguments: a success as the
// access kinds of each name it acts on, a failure apart with its errno, and a unix
// socket's peer in the network part too.
func (s *Session) handleOp(e *bpf.FileEvent) {
	if e.Abstract {
		// An abstract unix socket has a name but no file.
		if e.Err == 0 && e.Access&(bpf.AccConnect|bpf.AccBind) != 0 {
			peer := profiles.Peer{Family: "AF_UNIX", Address: "@" + e.Path}
			if e.Access&bpf.AccConnect != 0 {
				s.peers[peer] = s.unixPeerKind(e)
			}
		}
		return
	}
	p1, p2 := s.resolveArgPath(e.Pid, e.Path), s.resolveArgPath(e.Pid, e.Path2)
	kinds1, kinds2 := bpf.AccessKinds(e.Access)
	if e.Err != 0 {
		errno := unix.ErrnoName(unix.Errno(-e.Err))
		if errno == "" {
			errno = fmt.Sprintf("errno %d", -e.Err)
		}
		s.failed.add(p1, errno, e.Access)
		if p2 != "" {
			s.failed.add(p2, errno, e.Access)
		}
		return
	}
	isDir := e.Access&(bpf.AccMkdir|bpf.AccRmdir) != 0
	if len(kinds1) > 0 || isDir {
		f := s.files.get(p1, isDir)
		f.ops1 |= e.Access
		f.dir = f.dir || isDir
	}
	if p2 != "" && len(kinds2) > 0 {
		s.files.get(p2, false).ops2 |= e.Access
	}
	if e.Access&bpf.AccConnect != 0 {
		s.peers[profiles.Peer{Family: "AF_UNIX", Address: p1}] = s.unixPeerKind(e)
	}
}

// unixPeerKind tells a datagram sent to a unix socket by name (sendto, sendmsg) from a
// connect.
func (s *Session) unixPeerKind(e *bpf.FileEvent) peerKind {
	if _, name, ok := bpf.SyscallName(e.Table, int(e.Nr)); ok && strings.HasPrefix(name, "send") {
		return peerSend
	}
	return peerConnect
}

// resolveArgPath resolves symlinks in the directories of a path taken from a syscall's
// argument, as the target sees them (its root), so that it names the same file an
// open's struct file would. The last component is kept as it is: unlink, rename and
// their kin act on a link itself. A path whose directory is gone is kept as given.
func (s *Session) resolveArgPath(pid uint32, p string) string {
	if p == "" || p == "/" {
		return p
	}
	dir, base := path.Split(p)
	roots := []string{procRoot(int(pid))}
	if s.hostRoot {
		roots = append(roots, "/")
	}
	// A target that works in one directory names it in every operation: resolving it
	// costs a few syscalls per component, more than a flood leaves per event, so the
	// resolution of a (root, directory) is remembered, up to maxResolved of them.
	key := roots[0] + "\x00" + dir
	if rel, ok := s.resolved[key]; ok {
		return path.Join("/", rel, base)
	}
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		resolved, err := securejoin.SecureJoin(root, dir)
		if err != nil {
			continue
		}
		if _, err := os.Stat(resolved); err != nil {
			break // gone (removed later): keep the path as given
		}
		rel := strings.TrimPrefix(resolved, strings.TrimSuffix(root, "/"))
		if root == roots[0] {
			if len(s.resolved) >= maxResolved {
				clear(s.resolved)
			}
			s.resolved[key] = rel
		}
		return path.Join("/", rel, base)
	}
	return p
}

// maxResolved bounds the directories resolveArgPath remembers.
const maxResolved = 1024

// addInterpreter reads the dynamic loader of an executed ELF file through a live
// process of the target; when none is left, the file waits for ReadInterpreters.
func (s *Session) addInterpreter(pid uint32, path string) {
	if _, done := s.interps[path]; done {
		return
	}
	// The executing process has often exited by now: any live process of the target
	// shares its root (a container's init, or the host root for a local command).
	roots := []string{procRoot(int(pid))}
	for _, p := range s.tr.TargetProcesses(s.target) {
		roots = append(roots, procRoot(p))
	}
	if s.hostRoot {
		roots = append(roots, "/")
	}
	var (
		interp string
		err    error
	)
	for _, root := range roots {
		if interp, err = elfInterpreter(root, path); err == nil {
			break
		}
	}
	if err != nil {
		s.unreadable[path] = struct{}{}
		return
	}
	s.setInterpreter(path, interp)
}

// setInterpreter caches path's interpreter and adds the interpreter to the files:
// the kernel maps it executable during execve, without any open the tracer could see.
func (s *Session) setInterpreter(path, interp string) {
	delete(s.unreadable, path)
	s.interps[path] = interp
	if interp == "" {
		return
	}
	s.files.get(interp, false).access |= bpf.AccRead | bpf.AccMmapExec
}

// ReadInterpreters retries the executables whose ELF interpreter could not be read
// while the target ran, through read, which reaches the target's file system another
// way (a container's, through Docker, after its processes exited). Call it after the
// run's events were handled and before Recording. Executables that still cannot be
// read keep the recording incomplete; the error joins why.
func (s *Session) ReadInterpreters(read func(path string) (string, error)) error {
	s.mu.Lock()
	paths := slices.Sorted(maps.Keys(s.unreadable))
	s.mu.Unlock()
	var errs []error
	for _, path := range paths {
		interp, err := read(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.setInterpreter(path, interp)
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Progress is a snapshot for the live progress line.
type Progress struct {
	Elapsed                                    time.Duration
	Syscalls, Files, Execs, Capabilities, Lost int
}

// Progress counts what has been seen so far.
func (s *Session) Progress() Progress {
	p := Progress{Elapsed: time.Since(s.start)}
	if sc, err := s.tr.Syscalls(s.target); err == nil {
		for _, nrs := range sc {
			p.Syscalls += len(nrs)
		}
	}
	for _, c := range s.tr.Capabilities(s.target) {
		if c.Granted && !c.Probed && !c.Runtime && !c.Overridden {
			p.Capabilities++
		}
	}
	if c, err := s.tr.Counters(); err == nil {
		p.Lost = int(lossOf(c).Total())
	}
	s.mu.Lock()
	p.Files, p.Execs = s.files.len(), len(s.execs)
	s.mu.Unlock()
	return p
}

func lossOf(c bpf.Counters) profiles.Loss {
	return profiles.Loss{
		RingbufDrops: c.RingbufDrops,
		MapFull:      c.TasksFull + c.CapsFull + c.NetFull + c.ContainersFull,
		TooLong:      c.PathTruncated,
		Decode:       c.DecodeErrors + c.ChannelDrops + c.BadNr + c.ArgsUnreadable,
	}
}

// Recording builds the recording from everything gathered. Call it after the tracer
// was flushed and its events handled.
func (s *Session) Recording(target profiles.Target) (*profiles.Recording, error) {
	r := &profiles.Recording{
		Kind:          profiles.RecordingKind,
		SchemaVersion: profiles.RecordingSchemaVersion,
		Tailor:        version.Version,
		Target:        target,
		Host:          hostInfo(s.tr),
		Start:         s.start.Truncate(time.Millisecond),
		End:           time.Now().UTC().Truncate(time.Millisecond),
		Complete:      true,
		Missing:       s.tr.Missing(),
	}
	sc, err := s.tr.Syscalls(s.target)
	if err != nil {
		return nil, err
	}
	for tbl, nrs := range sc {
		var as profiles.ArchSyscalls
		for _, nr := range nrs {
			arch, name, ok := bpf.SyscallName(tbl, nr)
			as.Arch = arch
			if ok {
				as.Names = append(as.Names, name)
			} else {
				as.Unknown = append(as.Unknown, nr)
			}
		}
		if as.Arch != "" && (len(as.Names) > 0 || len(as.Unknown) > 0) {
			r.Syscalls = append(r.Syscalls, as)
		}
	}
	s.mu.Lock()
	r.Files = s.files.entries()
	r.Failed = s.failed.entries()
	for peer, kind := range s.peers {
		if kind == peerSend {
			r.Network.Sends = append(r.Network.Sends, peer)
		} else {
			r.Network.Connects = append(r.Network.Connects, peer)
		}
	}
	for x := range s.execs {
		r.Execs = append(r.Execs, x)
	}
	s.mu.Unlock()

	for _, c := range s.tr.Capabilities(s.target) {
		name := profiles.CapabilityName(c.Cap)
		e := profiles.Capability{Name: name}
		switch {
		case c.Runtime:
			e.Runtime = c.Count
		case c.Overridden:
			e.Overridden = c.Count
		case c.Probed:
			e.Probed = c.Count
		case c.Granted:
			e.Granted = c.Count
		default:
			e.Denied = c.Count
		}
		if !c.Probed && !c.Runtime && !c.Overridden && c.Caller != "" {
			e.Callers = []string{c.Caller}
		}
		r.Capabilities = append(r.Capabilities, e)
	}
	for _, n := range s.tr.Network(s.target) {
		fam := profiles.FamilyName(n.Family)
		switch n.Kind {
		case bpf.NetSocket:
			r.Network.Sockets = append(r.Network.Sockets, profiles.Socket{Family: fam, Type: typeName(n.Type), Protocol: n.Protocol})
		case bpf.NetBind:
			r.Network.Binds = append(r.Network.Binds, profiles.Port{Family: fam, Port: uint16(n.Port)})
		case bpf.NetListen:
			r.Network.Listens = append(r.Network.Listens, profiles.Port{Family: fam, Port: uint16(n.Port)})
		case bpf.NetAccept:
			r.Network.Accepts = append(r.Network.Accepts, profiles.Port{Family: fam, Port: uint16(n.Port)})
		case bpf.NetConnect, bpf.NetSend:
			peer := profiles.Peer{Family: fam, Address: n.Addr.String(), Port: uint16(n.Port)}
			switch {
			case n.Err != 0:
				peer.Errno = unix.ErrnoName(unix.Errno(-n.Err))
				r.Network.Failed = append(r.Network.Failed, peer)
			case n.Kind == bpf.NetConnect:
				r.Network.Connects = append(r.Network.Connects, peer)
			default:
				r.Network.Sends = append(r.Network.Sends, peer)
			}
		}
	}
	counters, err := s.tr.Counters()
	if err != nil {
		return nil, err
	}
	r.Loss = lossOf(counters)
	if r.Loss.Total() > 0 {
		r.Complete = false
		r.Incomplete = append(r.Incomplete, fmt.Sprintf("%d observations lost (see loss)", r.Loss.Total()))
	}
	if len(s.unreadable) > 0 {
		r.Complete = false
		r.Incomplete = append(r.Incomplete, fmt.Sprintf("the ELF interpreter of %d executables could not be read (the process exited first)", len(s.unreadable)))
	}
	for _, m := range r.Missing {
		r.Complete = false
		r.Incomplete = append(r.Incomplete, m+" cannot be observed on this kernel")
	}
	r.Normalize()
	return r, nil
}

var sockTypes = map[int]string{
	unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM", unix.SOCK_RAW: "SOCK_RAW",
	unix.SOCK_SEQPACKET: "SOCK_SEQPACKET", unix.SOCK_RDM: "SOCK_RDM", unix.SOCK_PACKET: "SOCK_PACKET",
	unix.SOCK_DCCP: "SOCK_DCCP",
}

func typeName(t int) string {
	t &= 0xf // SOCK_NONBLOCK and SOCK_CLOEXEC live above the type
	if n, ok := sockTypes[t]; ok {
		return n
	}
	return fmt.Sprintf("SOCK_%d", t)
}

func hostInfo(tr *bpf.Tracer) profiles.Host {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return profiles.Host{
		Kernel:  unix.ByteSliceToString(u.Release[:]),
		Machine: unix.ByteSliceToString(u.Machine[:]),
		Probes:  tr.Probes(),
		CPUs:    runtime.NumCPU(),
	}
}
