package bpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"path"

	"github.com/tailor-sec/tailor/profiles"
	"unsafe"
)

// Access bits of a FileEvent (enum access in tracer.bpf.h).
const (
	AccRead     = uint32(tracerAccessACC_READ)
	AccWrite    = uint32(tracerAccessACC_WRITE)
	AccCreate   = uint32(tracerAccessACC_CREATE)
	AccExec     = uint32(tracerAccessACC_EXEC)
	AccMmapExec = uint32(tracerAccessACC_MMAP_EXEC)
	AccList     = uint32(tracerAccessACC_LIST)
	AccMkdir    = uint32(tracerAccessACC_MKDIR)
	AccRmdir    = uint32(tracerAccessACC_RMDIR)
	AccDelete   = uint32(tracerAccessACC_DELETE)
	// AccRename: Path is the old name, Path2 the new one.
	AccRename = uint32(tracerAccessACC_RENAME)
	// AccExchange: renameat2(RENAME_EXCHANGE), each name takes the other's place.
	AccExchange = uint32(tracerAccessACC_EXCHANGE)
	// AccLink: Path is the existing file, Path2 the new name.
	AccLink    = uint32(tracerAccessACC_LINK)
	AccSymlink = uint32(tracerAccessACC_SYMLINK)
	AccSetattr = uint32(tracerAccessACC_SETATTR)
	AccMknod   = uint32(tracerAccessACC_MKNOD)
	// AccBind and AccConnect are unix sockets by path (or abstract name).
	AccBind    = uint32(tracerAccessACC_BIND)
	AccConnect = uint32(tracerAccessACC_CONNECT)
)

// FileEvent is a file a target used: a path it opened, executed or mapped (resolved
// from the opened file), or a path operation it attempted (from the syscall's
// arguments, joined to the directory they were relative to).
type FileEvent struct {
	Target uint32
	Pid    uint32
	Comm   string
	Access uint32
	// Err is 0 for a success, else the -errno the operation failed with.
	Err int32
	// Nr and Table are the syscall, for operations read from arguments (Nr -1 else).
	Nr        int32
	Table     Table
	Dir       bool
	Truncated bool
	// Runtime is true when the container runtime made it before executing the
	// entrypoint: its own access, not the target's.
	Runtime bool
	// Args is true when the path came from the syscall's arguments: symlinks in it are
	// not resolved, and "." or ".." may remain.
	Args bool
	// Abstract is true for a unix socket's abstract name (Path holds the name).
	Abstract   bool
	DockerExec bool
	// Denied is true in watch mode for an operation refused with EACCES or EPERM;
	// Count is how often this operation on this path was refused so far.
	Denied bool
	Count  uint64
	// Key is the value of a denial's key in the kernel's anomaly counts.
	Key  uint64
	Path string
	// Path2 is the second name of a rename or link, else empty.
	Path2 string
}

// ExecEvent is a program a target executed.
type ExecEvent struct {
	Target uint32
	Pid    uint32
	Ppid   uint32
	By     string // command name before the exec
	Comm   string // command name after the exec
	// Filename is the path given to execve, made absolute against the working
	// directory.
	Filename   string
	Interp     string // the interpreter path for a script, else empty
	DockerExec bool
	Truncated  bool
}

// Anomaly kinds the kernel reports in watch mode (enum anomaly_kind).
const (
	AnomalySyscall    = int(tracerAnomalyKindAN_SYSCALL)
	AnomalySocket     = int(tracerAnomalyKindAN_SOCKET)
	AnomalyCapability = int(tracerAnomalyKindAN_CAP)
	// AnomalyFileDenied keys count refused path operations; their events are
	// FileEvents with Denied set.
	AnomalyFileDenied = int(tracerAnomalyKindAN_FILE_DENIED)
)

// AnomalyEvent is something a watched target did outside its profile, as the kernel
// saw it. Repeats of one key (target, kind, table, value) within a second are only
// counted: Count is how many times the key occurred so far, this one included.
type AnomalyEvent struct {
	Target uint32
	Pid    uint32
	Tid    uint32
	Kind   int
	// Table is the syscall table of the call (syscall and socket anomalies).
	Table Table
	// Value is the syscall number, the address family or the capability.
	Value uint64
	// Ret is the syscall's return value: -errno when it was refused.
	Ret        int64
	Count      uint64
	Comm       string
	DockerExec bool
}

// Net kinds of NetUse and NetEvent (enum net_kind).
const (
	NetSocket  = int(tracerNetKindNET_SOCKET)
	NetBind    = int(tracerNetKindNET_BIND)
	NetListen  = int(tracerNetKindNET_LISTEN)
	NetConnect = int(tracerNetKindNET_CONNECT)
	NetSend    = int(tracerNetKindNET_SEND)
	NetAccept  = int(tracerNetKindNET_ACCEPT)
)

// NetUse is one distinct socket, bind, listen, connect, send or accept of a target.
type NetUse struct {
	Kind     int
	Family   int
	Type     int
	Protocol int
	Port     int
	// Addr is the peer's address (connects and sends), else the zero Addr.
	Addr netip.Addr
	// Err is 0, or the -errno a connect failed with.
	Err int32
	// Count is how many times it happened.
	Count uint64
}

// NetEvent is the first occurrence of a connect, send or accept key.
type NetEvent struct {
	Target     uint32
	Pid        uint32
	Comm       string
	DockerExec bool
	Use        NetUse
}

// Event is one of *FileEvent, *ExecEvent, *AnomalyEvent, *NetEvent.
type Event any

var (
	fileHeaderSize = int(unsafe.Offsetof(tracerFileEvent{}.Path))
	execEventSize  = int(unsafe.Sizeof(tracerExecEvent{}))
	anomalySize    = int(unsafe.Sizeof(tracerAnomalyEvent{}))
	netEventSize   = int(unsafe.Sizeof(tracerNetEvent{}))
)

// DecodeEvent decodes one ring-buffer record. It is a pure function of the bytes.
func DecodeEvent(raw []byte) (Event, error) {
	if len(raw) < 4 {
		return nil, fmt.Errorf("event of %d bytes is too short", len(raw))
	}
	switch tracerEventType(binary.NativeEndian.Uint32(raw)) {
	case tracerEventTypeEV_FILE:
		return decodeFile(raw)
	case tracerEventTypeEV_EXEC:
		var e tracerExecEvent
		if err := decodeFixed(raw, execEventSize, "exec", &e); err != nil {
			return nil, err
		}
		return &ExecEvent{
			Target: e.Target, Pid: e.Pid, Ppid: e.Ppid,
			By: cString(e.ByComm[:]), Comm: cString(e.Comm[:]),
			Filename: cleanPath(cString(e.Filename[:])), Interp: cString(e.Interp[:]),
			DockerExec: e.Flags&uint32(tracerTaskFlagTASK_DOCKER_EXEC) != 0, Truncated: e.Truncated != 0,
		}, nil
	case tracerEventTypeEV_ANOMALY:
		var e tracerAnomalyEvent
		if err := decodeFixed(raw, anomalySize, "anomaly", &e); err != nil {
			return nil, err
		}
		return &AnomalyEvent{
			Target: e.Target, Pid: e.Pid, Tid: e.Tid, Kind: int(e.Kind), Table: Table(e.Arch),
			Value: e.Value, Ret: e.Ret, Count: e.Count, Comm: cString(e.Comm[:]),
			DockerExec: e.Flags&uint32(tracerTaskFlagTASK_DOCKER_EXEC) != 0,
		}, nil
	case tracerEventTypeEV_NET:
		var e tracerNetEvent
		if err := decodeFixed(raw, netEventSize, "network", &e); err != nil {
			return nil, err
		}
		return &NetEvent{
			Target: e.Key.Target, Pid: e.Pid, Comm: cString(e.Comm[:]),
			DockerExec: e.Flags&uint32(tracerTaskFlagTASK_DOCKER_EXEC) != 0,
			Use:        netUse(e.Key, e.Count),
		}, nil
	default:
		return nil, fmt.Errorf("unknown event type %d", binary.NativeEndian.Uint32(raw))
	}
}

// decodeFixed copies a record into the generated struct it was made from: the structs
// have the kernel's (host) layout, so the bytes are the struct.
func decodeFixed[T any](raw []byte, size int, what string, dst *T) error {
	if len(raw) < size {
		return fmt.Errorf("%s event of %d bytes is too short", what, len(raw))
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), size), raw)
	return nil
}

func decodeFile(raw []byte) (*FileEvent, error) {
	if len(raw) < fileHeaderSize {
		return nil, fmt.Errorf("file event of %d bytes is too short", len(raw))
	}
	// The record stops after its paths: only the header is copied into the
	// generated struct.
	var h tracerFileEvent
	if err := decodeFixed(raw, fileHeaderSize, "file", &h); err != nil {
		return nil, err
	}
	paths := raw[fileHeaderSize:]
	need := int(h.Len)
	if h.Len2 > 0 {
		need += 1 + int(h.Len2)
	}
	if need > len(paths) {
		return nil, fmt.Errorf("file event path length %d exceeds record (%d bytes)", need, len(paths))
	}
	flag := func(f tracerFileFlag) bool { return h.Flags&uint32(f) != 0 }
	e := &FileEvent{
		Target: h.Target, Pid: h.Pid, Comm: cString(h.Comm[:]), Access: h.Access, Err: h.Err,
		Nr: h.Nr, Table: Table(h.Arch), Count: h.Count, Key: h.Key,
		Dir: flag(tracerFileFlagFE_DIR), Truncated: flag(tracerFileFlagFE_TRUNCATED),
		Runtime: flag(tracerFileFlagFE_RUNTIME), Args: flag(tracerFileFlagFE_ARGS),
		Abstract: flag(tracerFileFlagFE_ABSTRACT), Denied: flag(tracerFileFlagFE_DENIED),
		DockerExec: flag(tracerFileFlagFE_DOCKER_EXEC),
		Path:       string(paths[:h.Len]),
	}
	if h.Len2 > 0 {
		e.Path2 = string(paths[h.Len+1 : need])
	}
	if e.Args && !e.Abstract {
		e.Path, e.Path2 = cleanPath(e.Path), cleanPath(e.Path2)
	}
	return e, nil
}

// cleanPath removes the "." and ".." a path given as an argument may hold. It is
// lexical: a ".." after a symlink is taken as the parent of the link's own directory,
// which is what the process meant in all but contrived cases.
func cleanPath(p string) string {
	if p == "" {
		return p
	}
	return path.Clean(p)
}

func netUse(k tracerNetKey, count uint64) NetUse {
	u := NetUse{Kind: int(k.Kind), Family: int(k.Family), Type: int(k.Type), Protocol: int(k.Protocol),
		Port: int(k.Port), Err: k.Err, Count: count}
	switch k.Family {
	case 2: // AF_INET
		u.Addr = netip.AddrFrom4([4]byte(k.Addr[:4]))
	case 10: // AF_INET6
		u.Addr = netip.AddrFrom16(k.Addr)
	}
	if u.Kind != NetConnect && u.Kind != NetSend {
		u.Addr = netip.Addr{}
	}
	return u
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// accessKinds maps each access bit to the recording's kinds for an operation's first
// name and, for renames and links, its second.
var accessKinds = []struct {
	bit           uint32
	first, second string
}{
	{AccRead, profiles.AccessRead, ""}, {AccWrite, profiles.AccessWrite, ""},
	{AccCreate, profiles.AccessCreate, ""}, {AccExec, profiles.AccessExec, ""},
	{AccMmapExec, profiles.AccessMmapExec, ""}, {AccList, profiles.AccessList, ""},
	{AccMkdir, profiles.AccessMkdir, ""}, {AccRmdir, profiles.AccessRmdir, ""},
	{AccDelete, profiles.AccessDelete, ""},
	{AccRename, profiles.AccessRenameFrom, profiles.AccessRenameTo},
	{AccExchange, profiles.AccessRenameFrom, profiles.AccessRenameTo},
	{AccLink, profiles.AccessLinkFrom, profiles.AccessLinkTo},
	{AccSymlink, profiles.AccessSymlink, ""}, {AccSetattr, profiles.AccessSetattr, ""},
	{AccMknod, profiles.AccessMknod, ""}, {AccBind, profiles.AccessBind, ""},
	{AccConnect, profiles.AccessConnect, ""},
}

// AccessKinds returns the recording's access kinds (profiles.Access*) of access bits:
// first for the path an operation names first, second for the second name of a
// rename or link. An exchange (renameat2 RENAME_EXCHANGE) makes each name both.
func AccessKinds(access uint32) (first, second []string) {
	for _, m := range accessKinds {
		if access&m.bit == 0 {
			continue
		}
		first = append(first, m.first)
		if m.second != "" {
			second = append(second, m.second)
		}
		if m.bit == AccExchange {
			first = append(first, m.second)
			second = append(second, m.first)
		}
	}
	return first, second
}
