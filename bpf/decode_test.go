package bpf

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"
)

func rawAnomaly(t *testing.T, e tracerAnomalyEvent, path string) []byte {
	t.Helper()
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e.Path[0])), len(e.Path)), path)
	e.Len = uint32(len(path))
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, &e); err != nil {
		t.Fatal(err)
	}
	// The kernel sends the header and the path only.
	return b.Bytes()[:anomalyHeaderSize+len(path)]
}

func TestDecodeAnomaly(t *testing.T) {
	e := tracerAnomalyEvent{Type: evAnomaly, Target: 3, Pid: 10, Tid: 11, Kind: AnomalyFileDenied, Ret: -13,
		Value: 99, Count: 4, Nr: 257, Dirfd: -100, OpenFlags: 1, Flags: taskDockerExec}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e.Comm[0])), len(e.Comm)), "cat")
	ev, err := DecodeEvent(rawAnomaly(t, e, "/etc/shadow"))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := ev.(*AnomalyEvent)
	if !ok {
		t.Fatalf("decoded %T", ev)
	}
	want := AnomalyEvent{Target: 3, Pid: 10, Tid: 11, Kind: AnomalyFileDenied, Value: 99, Ret: -13, Count: 4,
		Comm: "cat", Nr: 257, Dirfd: -100, OpenFlags: 1, Path: "/etc/shadow", DockerExec: true}
	if *a != want {
		t.Errorf("decoded %+v, want %+v", *a, want)
	}
}

func TestDecodeAnomalyErrors(t *testing.T) {
	raw := rawAnomaly(t, tracerAnomalyEvent{Type: evAnomaly}, "/x")
	if _, err := DecodeEvent(raw[:anomalyHeaderSize-1]); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short header: %v", err)
	}
	// A length past the record.
	if _, err := DecodeEvent(raw[:anomalyHeaderSize+1]); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("truncated path: %v", err)
	}
}
