package profiles

import (
	"reflect"
	"testing"
	"time"
)

func mini(arch string, complete bool, names ...string) *Recording {
	return &Recording{
		Kind: RecordingKind, SchemaVersion: RecordingSchemaVersion, Complete: complete,
		Start:    time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		End:      time.Date(2026, 1, 2, 1, 0, 0, 0, time.UTC),
		Syscalls: []ArchSyscalls{{Arch: arch, Names: names}},
	}
}

func TestMerge(t *testing.T) {
	a := mini(ArchX86_64, true, "read", "write")
	a.Capabilities = []Capability{{Name: "CAP_CHOWN", Granted: 1, Probed: 2}}
	a.Files = []FileAccess{{Path: "/etc/hosts", Access: []string{AccessRead}}}
	a.Loss.Decode = 0
	b := mini(ArchX86, false, "read", "socketcall")
	b.Incomplete = []string{"interrupted"}
	b.Loss.RingbufDrops = 3
	b.Start = a.Start.Add(-time.Hour)
	b.Capabilities = []Capability{{Name: "CAP_CHOWN", Denied: 4}, {Name: "CAP_KILL", Granted: 1}}
	b.Files = []FileAccess{{Path: "/etc/hosts", Access: []string{AccessWrite}}}
	c := mini(ArchX86_64, true, "close")

	m := Merge(a, b, c)
	if m.Complete {
		t.Error("merge of an incomplete recording is complete")
	}
	if !reflect.DeepEqual(m.Incomplete, []string{"interrupted"}) || m.Loss.RingbufDrops != 3 {
		t.Errorf("incomplete %v, loss %+v", m.Incomplete, m.Loss)
	}
	want := []ArchSyscalls{{Arch: ArchX86, Names: []string{"read", "socketcall"}}, {Arch: ArchX86_64, Names: []string{"close", "read", "write"}}}
	if !reflect.DeepEqual(m.Syscalls, want) {
		t.Errorf("syscalls %+v", m.Syscalls)
	}
	wantCaps := []Capability{{Name: "CAP_CHOWN", Granted: 1, Denied: 4, Probed: 2}, {Name: "CAP_KILL", Granted: 1}}
	if !reflect.DeepEqual(m.Capabilities, wantCaps) {
		t.Errorf("capabilities %+v", m.Capabilities)
	}
	if !reflect.DeepEqual(m.Files, []FileAccess{{Path: "/etc/hosts", Access: []string{AccessRead, AccessWrite}}}) {
		t.Errorf("files %+v", m.Files)
	}
	if !m.Start.Equal(b.Start) || !m.End.Equal(a.End) {
		t.Errorf("span %v..%v", m.Start, m.End)
	}
	// Inputs are not changed.
	if len(a.Syscalls[0].Names) != 2 || len(a.Files[0].Access) != 1 {
		t.Error("Merge changed its input")
	}
	if !Merge(a, c).Complete {
		t.Error("merge of complete recordings is incomplete")
	}
	lossy := mini(ArchX86_64, true, "read")
	lossy.Loss.MapFull = 1
	if Merge(a, lossy).Complete {
		t.Error("merge with lost observations is complete")
	}
	if Merge() != nil {
		t.Error("merge of nothing is not nil")
	}
}

func TestDiff(t *testing.T) {
	older := Policy{
		Syscalls:     []ArchSyscalls{{Arch: ArchX86_64, Names: []string{"read", "write"}}},
		Files:        []FileRule{{Pattern: "/etc/hosts", Access: []string{AccessRead}}},
		Capabilities: []string{"CAP_CHOWN"},
	}
	newer := Policy{
		Syscalls:       []ArchSyscalls{{Arch: ArchX86_64, Names: []string{"read", "socket"}}, {Arch: ArchX86, Names: []string{"read"}}},
		Files:          []FileRule{{Pattern: "/etc/hosts", Access: []string{AccessRead, AccessWrite}}},
		SocketFamilies: []string{"AF_INET"},
		Execs:          []string{"/bin/sh"},
	}
	older.normalize()
	newer.normalize()
	d := Diff(older, newer)
	wantAdded := Policy{
		Syscalls:       []ArchSyscalls{{Arch: ArchX86, Names: []string{"read"}}, {Arch: ArchX86_64, Names: []string{"socket"}}},
		Execs:          []string{"/bin/sh"},
		Files:          []FileRule{{Pattern: "/etc/hosts", Access: []string{AccessWrite}}},
		Capabilities:   []string{},
		SocketFamilies: []string{"AF_INET"},
		Network:        []string{},
	}
	if !reflect.DeepEqual(d.Added, wantAdded) {
		t.Errorf("added %+v\nwant  %+v", d.Added, wantAdded)
	}
	if !reflect.DeepEqual(d.Removed.Capabilities, []string{"CAP_CHOWN"}) || !reflect.DeepEqual(d.Removed.Syscalls, []ArchSyscalls{{Arch: ArchX86_64, Names: []string{"write"}}}) {
		t.Errorf("removed %+v", d.Removed)
	}
	if d.Added.Empty() || !Diff(older, older).Added.Empty() || !Diff(older, older).Removed.Empty() {
		t.Error("Empty is wrong")
	}
}

func TestValidateNames(t *testing.T) {
	r := mini(ArchX86, true, "socketcall", "_llseek")
	if err := r.ValidateNames(); err != nil {
		t.Fatal(err)
	}
	// newfstatat is not an i386 syscall: a recording cannot have seen it there.
	r = mini(ArchX86, true, "newfstatat")
	if err := r.ValidateNames(); err == nil {
		t.Error("x86_64-only name accepted on x86")
	}
	r = mini(ArchX86_64, true, "read")
	r.Capabilities = []Capability{{Name: "CAP_FLY"}}
	if err := r.ValidateNames(); err == nil {
		t.Error("unknown capability accepted")
	}
	if c, ok := CapabilityByName("CAP_NET_BIND_SERVICE"); !ok || c.String() != "net_bind_service" {
		t.Errorf("CapabilityByName: %v %v", c, ok)
	}
}

func TestCapNanoCPUs(t *testing.T) {
	for _, c := range []struct {
		nano   int64
		cpus   int
		want   int64
		capped bool
	}{{8e9, 2, 2e9, true}, {2e9, 2, 2e9, false}, {1e9, 2, 1e9, false}, {8e9, 0, 8e9, false}} {
		if got, capped := CapNanoCPUs(c.nano, c.cpus); got != c.want || capped != c.capped {
			t.Errorf("CapNanoCPUs(%d, %d) = %d, %v; want %d, %v", c.nano, c.cpus, got, capped, c.want, c.capped)
		}
	}
}

// The smallest learning host's CPU count bounds a merged recording's CPU limit.
func TestMergeKeepsTheSmallestHostCPUs(t *testing.T) {
	a, b, c := &Recording{Host: Host{CPUs: 8}}, &Recording{Host: Host{CPUs: 2}}, &Recording{}
	if m := Merge(c, a, b); m.Host.CPUs != 2 {
		t.Errorf("merged host CPUs %d, want 2", m.Host.CPUs)
	}
	if m := Merge(c); m.Host.CPUs != 0 {
		t.Errorf("unknown stays unknown: %d", m.Host.CPUs)
	}
}
