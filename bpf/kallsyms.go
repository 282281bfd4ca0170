package bpf

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
)

// Range kinds (enum range_kind).
const (
	rangeNoAudit  = uint32(tracerRangeKindRANGE_NOAUDIT)
	rangePlumbing = uint32(tracerRangeKindRANGE_PLUMBING)
)

// capPlumbing are the functions between a capability check's caller and cap_capable,
// plus the tracing machinery that calls the BPF program. The first frame after them is
// reported as the check's caller.
var capPlumbing = map[string]bool{
	"cap_capable": true, "security_capable": true, "ns_capable": true, "ns_capable_setid": true,
	"ns_capable_common": true, "capable": true, "has_ns_capability": true, "has_capability": true,
	"file_ns_capable": true, "capable_wrt_inode_uidgid": true, "privileged_wrt_inode_uidgid": true,
	"sk_ns_capable": true, "sk_capable": true, "sk_net_capable": true, "netlink_ns_capable": true,
	"netlink_capable": true, "netlink_net_capable": true, "bpf_trace_run5": true,
	"__bpf_trace_cap_capable": true, "__traceiter_cap_capable": true, "__probestub_cap_capable": true,
}

// A function whose name has "noaudit" asks for a capability without auditing the
// check: the kernel probes, for example cap_vm_enough_memory's CAP_SYS_ADMIN check on
// every mmap, brk and exec. Such checks never make a capability needed.
// cap_vm_enough_memory ends in a tail call to cap_capable, so its frame is often
// missing from the stack: its only caller, security_vm_enough_memory_mm, is listed too.
var capNoAuditFuncs = map[string]bool{"cap_vm_enough_memory": true, "security_vm_enough_memory_mm": true}

// Kallsyms names kernel text addresses from the kernel's symbol table. It keeps
// nothing of the table (~120,000 symbols, ~10 MiB as Go strings, the largest part of
// tailor's heap while it traced): the few addresses it is asked about are resolved by
// reading the table again, once for every batch of new ones, and remembered.
type Kallsyms struct {
	open  func() (io.ReadCloser, error)
	mu    sync.Mutex
	names map[uint64]string
}

// NewKallsyms reads the table open returns (/proc/kallsyms' format) once, to check it
// shows addresses and to find the address ranges of the capability plumbing (at most
// max). Addresses are all zero when the reader lacks CAP_SYSLOG (kptr_restrict); that
// is reported as an error.
func NewKallsyms(open func() (io.ReadCloser, error), max int) (*Kallsyms, []tracerAddrRange, error) {
	k := &Kallsyms{open: open, names: map[uint64]string{0: ""}}
	// The start of every text symbol, to end each range at the next one.
	var starts []uint64
	type fn struct {
		addr uint64
		kind uint32
	}
	var fns []fn
	nonZero := false
	err := k.scan(func(addr uint64, name []byte) {
		nonZero = nonZero || addr != 0
		starts = append(starts, addr)
		switch {
		case bytes.Contains(name, []byte("noaudit")) || capNoAuditFuncs[string(name)]:
			fns = append(fns, fn{addr, rangeNoAudit})
		case capPlumbing[string(name)]:
			fns = append(fns, fn{addr, rangePlumbing})
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if !nonZero {
		return nil, nil, fmt.Errorf("kallsyms shows no addresses (kptr_restrict): run as root")
	}
	slices.Sort(starts)
	var noaudit, plumbing []tracerAddrRange
	for _, f := range fns {
		i, _ := slices.BinarySearch(starts, f.addr+1)
		if i >= len(starts) {
			continue // the last symbol has no known end
		}
		r := tracerAddrRange{Start: f.addr, End: starts[i], Kind: f.kind}
		if f.kind == rangeNoAudit {
			noaudit = append(noaudit, r)
		} else {
			plumbing = append(plumbing, r)
		}
	}
	byStart := func(a, b tracerAddrRange) int { return cmp.Compare(a.Start, b.Start) }
	slices.SortFunc(noaudit, byStart)
	slices.SortFunc(plumbing, byStart)
	out := append(noaudit, plumbing...)
	if len(out) > max {
		out = out[:max]
	}
	return k, out, nil
}

// scan calls fn with every text symbol of the table.
func (k *Kallsyms) scan(fn func(addr uint64, name []byte)) error {
	r, err := k.open()
	if err != nil {
		return fmt.Errorf("reading kallsyms: %w", err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "ADDR TYPE NAME [MODULE]"
		f := bytes.Fields(sc.Bytes())
		if len(f) < 3 || len(f[1]) != 1 {
			continue
		}
		switch f[1][0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		addr, err := strconv.ParseUint(string(f[0]), 16, 64)
		if err != nil {
			continue
		}
		fn(addr, f[2])
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading kallsyms: %w", err)
	}
	return nil
}

// Names returns the function containing each address ("" when none does, or the
// table could not be read again), reading the table once for those not resolved
// before.
func (k *Kallsyms) Names(addrs []uint64) map[uint64]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	best := map[uint64]uint64{} // address -> start of the best symbol so far
	bestName := map[uint64]string{}
	for _, a := range addrs {
		if _, ok := k.names[a]; !ok {
			best[a] = 0
		}
	}
	if len(best) > 0 {
		err := k.scan(func(addr uint64, name []byte) {
			for a, b := range best {
				// The last of equal addresses wins, as in the sorted table.
				if addr <= a && addr >= b && addr != 0 {
					best[a] = addr
					bestName[a] = string(name)
				}
			}
		})
		if err == nil {
			for a := range best {
				k.names[a] = bestName[a]
			}
		}
	}
	out := make(map[uint64]string, len(addrs))
	for _, a := range addrs {
		out[a] = k.names[a]
	}
	return out
}
