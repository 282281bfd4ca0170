package bpf

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

const fakeKallsyms = `ffffffff81000000 T _stext
ffffffff81000100 T cap_capable
ffffffff81000200 t security_capable
ffffffff81000200 t security_capable_alias
ffffffff81000300 T ns_capable_noaudit
ffffffff81000400 D some_data
ffffffff81000500 T do_thing
ffffffff81000600 T last_func
ffffffffc0000000 t mod_func	[mod]
`

// The table is read again for new addresses only; ranges end at the next symbol.
func TestKallsyms(t *testing.T) {
	reads := 0
	open := func() (io.ReadCloser, error) {
		reads++
		return io.NopCloser(strings.NewReader(fakeKallsyms)), nil
	}
	k, ranges, err := NewKallsyms(open, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := []tracerAddrRange{
		{Start: 0xffffffff81000300, End: 0xffffffff81000500, Kind: rangeNoAudit},
		{Start: 0xffffffff81000100, End: 0xffffffff81000200, Kind: rangePlumbing},
		{Start: 0xffffffff81000200, End: 0xffffffff81000300, Kind: rangePlumbing},
	}
	if !reflect.DeepEqual(ranges, want) {
		t.Fatalf("ranges %+v, want %+v", ranges, want)
	}
	names := k.Names([]uint64{0xffffffff81000550, 0xffffffff81000250, 0, 0x10, 0xffffffffc0000010})
	wantNames := map[uint64]string{0xffffffff81000550: "do_thing", 0xffffffff81000250: "security_capable_alias",
		0: "", 0x10: "", 0xffffffffc0000010: "mod_func"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("names %v, want %v", names, wantNames)
	}
	k.Names([]uint64{0xffffffff81000550})
	if reads != 2 {
		t.Fatalf("%d reads of the table, want 2 (start-up, one batch)", reads)
	}
	if _, _, err := NewKallsyms(func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("0000000000000000 T x\n")), nil
	}, 8); err == nil {
		t.Fatal("a table without addresses was accepted")
	}
}
