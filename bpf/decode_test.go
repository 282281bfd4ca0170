package bpf

import (
	"net/netip"
	"strings"
	"testing"
	"unsafe"
)

func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func setStr(dst []int8, s string) {
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(dst)), s)
}

// rawFile builds a file record as the kernel sends it: the header, then the paths.
func rawFile(e tracerFileEvent, path, path2 string) []byte {
	setStr(e.Path[:], path)
	e.Len = uint32(len(path))
	n := len(path)
	if path2 != "" {
		setStr(e.Path[len(path)+1:], path2)
		e.Len2 = uint32(len(path2))
		n += 1 + len(path2)
	}
	return append([]byte(nil), bytesOf(&e)[:fileHeaderSize+n]...)
}

func TestDecodeFile(t *testing.T) {
	e := tracerFileEvent{Type: uint32(tracerEventTypeEV_FILE), Target: 3, Pid: 10, Access: AccRename, Err: -13, Nr: 82,
		Arch: 1, Count: 4, Flags: uint32(tracerFileFlagFE_ARGS | tracerFileFlagFE_DENIED | tracerFileFlagFE_DOCKER_EXEC)}
	setStr(e.Comm[:], "mv")
	ev, err := DecodeEvent(rawFile(e, "/srv/a", "/srv/b/c"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ev.(*FileEvent)
	if !ok {
		t.Fatalf("decoded %T", ev)
	}
	want := FileEvent{Target: 3, Pid: 10, Comm: "mv", Access: AccRename, Err: -13, Nr: 82, Table: TableCompat,
		Args: true, Denied: true, DockerExec: true, Count: 4, Path: "/srv/a", Path2: "/srv/b/c"}
	if *got != want {
		t.Errorf("decoded %+v, want %+v", *got, want)
	}

	one, err := DecodeEvent(rawFile(tracerFileEvent{Type: uint32(tracerEventTypeEV_FILE), Access: AccList, Flags: uint32(tracerFileFlagFE_DIR)}, "/etc", ""))
	if err != nil {
		t.Fatal(err)
	}
	if f := one.(*FileEvent); f.Path != "/etc" || f.Path2 != "" || !f.Dir || f.Args {
		t.Errorf("one path: %+v", f)
	}
}

func TestDecodeFileErrors(t *testing.T) {
	raw := rawFile(tracerFileEvent{Type: uint32(tracerEventTypeEV_FILE)}, "/x", "/y")
	if _, err := DecodeEvent(raw[:fileHeaderSize-1]); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short header: %v", err)
	}
	// The second path cut off.
	if _, err := DecodeEvent(raw[:len(raw)-1]); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("truncated path: %v", err)
	}
}

func TestDecodeAnomaly(t *testing.T) {
	e := tracerAnomalyEvent{Type: uint32(tracerEventTypeEV_ANOMALY), Target: 3, Pid: 10, Tid: 11, Kind: uint16(AnomalySyscall),
		Ret: -1, Value: 101, Count: 4, Flags: uint32(tracerTaskFlagTASK_DOCKER_EXEC)}
	setStr(e.Comm[:], "cat")
	ev, err := DecodeEvent(bytesOf(&e))
	if err != nil {
		t.Fatal(err)
	}
	want := AnomalyEvent{Target: 3, Pid: 10, Tid: 11, Kind: AnomalySyscall, Value: 101, Ret: -1, Count: 4,
		Comm: "cat", DockerExec: true}
	if a := ev.(*AnomalyEvent); *a != want {
		t.Errorf("decoded %+v, want %+v", *a, want)
	}
	if _, err := DecodeEvent(bytesOf(&e)[:anomalySize-1]); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short anomaly: %v", err)
	}
}

func TestDecodeNet(t *testing.T) {
	e := tracerNetEvent{Type: uint32(tracerEventTypeEV_NET), Pid: 7, Count: 1,
		Key: tracerNetKey{Target: 2, Kind: uint16(NetConnect), Family: 2, Type: 1, Port: 6379, Err: -111,
			Addr: [16]uint8{127, 0, 0, 1}}}
	setStr(e.Comm[:], "redis-cli")
	ev, err := DecodeEvent(bytesOf(&e))
	if err != nil {
		t.Fatal(err)
	}
	n := ev.(*NetEvent)
	want := NetUse{Kind: NetConnect, Family: 2, Type: 1, Port: 6379, Err: -111, Count: 1, Addr: netip.MustParseAddr("127.0.0.1")}
	if n.Target != 2 || n.Pid != 7 || n.Comm != "redis-cli" || n.Use != want {
		t.Errorf("decoded %+v, want use %+v", n, want)
	}
	e.Key.Family, e.Key.Addr = 10, [16]uint8{15: 1}
	if n := must(DecodeEvent(bytesOf(&e))).(*NetEvent); n.Use.Addr != netip.IPv6Loopback() {
		t.Errorf("IPv6 address %v", n.Use.Addr)
	}
}

func must(ev Event, err error) Event {
	if err != nil {
		panic(err)
	}
	return ev
}

func TestDecodeUnknown(t *testing.T) {
	if _, err := DecodeEvent([]byte{99, 0, 0, 0}); err == nil {
		t.Error("unknown type decoded")
	}
	if _, err := DecodeEvent([]byte{1}); err == nil {
		t.Error("3-byte record decoded")
	}
}

func TestSysopsTable(t *testing.T) {
	ops := sysops()
	for _, name := range []string{"mkdirat", "unlinkat", "renameat2", "linkat", "symlinkat", "fchmodat", "openat", "connect"} {
		nr := syscallNr(TableNative, name)
		if nr < 0 {
			t.Fatalf("libseccomp does not know %s", name)
		}
		if ops[uint32(nr)].Op == 0 {
			t.Errorf("native %s (%d) has no sysop entry", name, nr)
		}
	}
	if _, _, ok := tableArch(TableCompat); ok {
		// i386's chown32 and socketcall live only in the compat table.
		for _, name := range []string{"chown32", "socketcall", "mkdir"} {
			nr := syscallNr(TableCompat, name)
			if nr < 0 || ops[uint32(tracerLimitsSC_MAX)+uint32(nr)].Op == 0 {
				t.Errorf("compat %s (%d) has no sysop entry", name, nr)
			}
		}
	}
}
