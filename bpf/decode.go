package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Access bits of a FileEvent, mirroring ACC_* in tracer.bpf.h.
const (
	AccRead     = 1
	AccWrite    = 2
	AccCreate   = 4
	AccExec     = 8
	AccMmapExec = 16
	AccList     = 32
)

// Task flags, mirroring TASK_* in tracer.bpf.h.
const taskDockerExec = 1

const (
	evFile    = 1
	evExec    = 2
	evAnomaly = 3

	feDir       = 1
	feTruncated = 2
	feRuntime   = 4
)

// FileEvent is a path a target opened, resolved from the opened file.
type FileEvent struct {
	Target    uint32
	Pid       uint32
	Access    uint32
	Dir       bool
	Truncated bool
	// Runtime is true when the container runtime opened it before executing the
	// entrypoint: its own access, not the target's.
	Runtime bool
	Path    string
}

// ExecEvent is a program a target executed.
type ExecEvent struct {
	Target     uint32
	Pid        uint32
	Ppid       uint32
	By         string // command name before the exec
	Comm       string // command name after the exec
	Filename   string // the path given to execve
	Interp     string // the interpreter path for a script, else empty
	DockerExec bool
}

// Anomaly kinds the kernel reports in watch mode, mirroring AN_* in tracer.bpf.h.
const (
	AnomalySyscall    = 1
	AnomalySocket     = 2
	AnomalyCapability = 3
	AnomalyFileDenied = 4
	AnomalyExecDenied = 5
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
	// Value is the syscall number, the address family, the capability, or (denied
	// paths) a hash of Path.
	Value uint64
	// Ret is the syscall's return value: -errno when it was refused.
	Ret   int64
	Count uint64
	Comm  string
	// Nr is the syscall that was refused, for denied paths.
	Nr int32
	// Dirfd is what a relative Path was given against (-100: the working directory).
	Dirfd int32
	// OpenFlags are the open flags of a refused open.
	OpenFlags uint64
	// Path is the path a refused open or execve asked for, as the target gave it.
	Path          string
	PathTruncated bool
	DockerExec    bool
}

// Event is one of *FileEvent, *ExecEvent, *AnomalyEvent.
type Event any

var (
	fileHeaderSize    = int(unsafe.Offsetof(tracerFileEvent{}.Path))
	execEventSize     = int(unsafe.Sizeof(tracerExecEvent{}))
	anomalyHeaderSize = int(unsafe.Offsetof(tracerAnomalyEvent{}.Path))
)

// DecodeEvent decodes one ring-buffer record. It is a pure function of the bytes.
func DecodeEvent(raw []byte) (Event, error) {
	if len(raw) < 4 {
		return nil, fmt.Errorf("event of %d bytes is too short", len(raw))
	}
	switch binary.NativeEndian.Uint32(raw) {
	case evFile:
		if len(raw) < fileHeaderSize {
			return nil, fmt.Errorf("file event of %d bytes is too short", len(raw))
		}
		var h struct{ Type, Target, Pid, Access, Flags, Len uint32 }
		if err := binary.Read(bytes.NewReader(raw[:fileHeaderSize]), binary.NativeEndian, &h); err != nil {
			return nil, fmt.Errorf("decoding file event: %w", err)
		}
		path := raw[fileHeaderSize:]
		if int(h.Len) > len(path) {
			return nil, fmt.Errorf("file event path length %d exceeds record (%d bytes)", h.Len, len(path))
		}
		return &FileEvent{
			Target: h.Target, Pid: h.Pid, Access: h.Access,
			Dir: h.Flags&feDir != 0, Truncated: h.Flags&feTruncated != 0, Runtime: h.Flags&feRuntime != 0,
			Path: string(path[:h.Len]),
		}, nil
	case evExec:
		if len(raw) < execEventSize {
			return nil, fmt.Errorf("exec event of %d bytes is too short", len(raw))
		}
		var e tracerExecEvent
		if err := binary.Read(bytes.NewReader(raw[:execEventSize]), binary.NativeEndian, &e); err != nil {
			return nil, fmt.Errorf("decoding exec event: %w", err)
		}
		return &ExecEvent{
			Target: e.Target, Pid: e.Pid, Ppid: e.Ppid,
			By: cString(e.ByComm[:]), Comm: cString(e.Comm[:]),
			Filename: cString(e.Filename[:]), Interp: cString(e.Interp[:]),
			DockerExec: e.Flags&taskDockerExec != 0,
		}, nil
	case evAnomaly:
		return decodeAnomaly(raw)
	default:
		return nil, fmt.Errorf("unknown event type %d", binary.NativeEndian.Uint32(raw))
	}
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

func decodeAnomaly(raw []byte) (*AnomalyEvent, error) {
	if len(raw) < anomalyHeaderSize {
		return nil, fmt.Errorf("anomaly event of %d bytes is too short", len(raw))
	}
	// The record stops after the path: pad it to the generated struct's size.
	full := make([]byte, unsafe.Sizeof(tracerAnomalyEvent{}))
	copy(full, raw)
	var e tracerAnomalyEvent
	if err := binary.Read(bytes.NewReader(full), binary.NativeEndian, &e); err != nil {
		return nil, fmt.Errorf("decoding anomaly event: %w", err)
	}
	if int(e.Len) > len(raw)-anomalyHeaderSize {
		return nil, fmt.Errorf("anomaly event path length %d exceeds record (%d bytes)", e.Len, len(raw)-anomalyHeaderSize)
	}
	return &AnomalyEvent{
		Target: e.Target, Pid: e.Pid, Tid: e.Tid, Kind: int(e.Kind), Table: Table(e.Arch),
		Value: e.Value, Ret: e.Ret, Count: e.Count, Comm: cString(e.Comm[:]),
		Nr: e.Nr, Dirfd: e.Dirfd, OpenFlags: e.OpenFlags,
		Path: string(raw[anomalyHeaderSize : anomalyHeaderSize+int(e.Len)]), PathTruncated: e.Truncated != 0,
		DockerExec: e.Flags&taskDockerExec != 0,
	}, nil
}
