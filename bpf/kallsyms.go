package bpf

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
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

// isNoAudit tells whether a function asks for a capability without auditing the
// check: the kernel probes, for example cap_vm_enough_memory's CAP_SYS_ADMIN check on
// every mmap, brk and exec. Such checks never make a capability needed.
// cap_vm_enough_memory ends in a tail call to cap_capable, so its frame is often
// missing from the stack: its only caller, security_vm_enough_memory_mm, is listed too.
func isNoAudit(name string) bool {
	return strings.Contains(name, "noaudit") || name == "cap_vm_enough_memory" || name == "security_vm_enough_memory_mm"
}

type symbol struct {
	addr uint64
	name string
}

// Kallsyms is the kernel's text symbol table, for naming stack frames.
type Kallsyms struct {
	syms []symbol // sorted by address
}

// ParseKallsyms reads /proc/kallsyms' format. Addresses are all zero when the reader
// lacks CAP_SYSLOG (kptr_restrict); that is reported as an error.
func ParseKallsyms(r io.Reader) (*Kallsyms, error) {
	var syms []symbol
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	nonZero := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		switch f[1] {
		case "t", "T", "w", "W":
		default:
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		if addr != 0 {
			nonZero = true
		}
		syms = append(syms, symbol{addr, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kallsyms: %w", err)
	}
	if !nonZero {
		return nil, fmt.Errorf("kallsyms shows no addresses (kptr_restrict): run as root")
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	return &Kallsyms{syms: syms}, nil
}

// Name returns the function containing addr, or "" when none does.
func (k *Kallsyms) Name(addr uint64) string {
	if k == nil || addr == 0 {
		return ""
	}
	i := sort.Search(len(k.syms), func(i int) bool { return k.syms[i].addr > addr })
	if i == 0 {
		return ""
	}
	return k.syms[i-1].name
}

// capRanges returns the address ranges of the no-audit and plumbing functions, at
// most max of them, no-audit ones first.
func (k *Kallsyms) capRanges(max int) []tracerAddrRange {
	var noaudit, plumbing []tracerAddrRange
	for i, s := range k.syms {
		if i+1 >= len(k.syms) {
			break
		}
		end := k.syms[i+1].addr
		switch {
		case isNoAudit(s.name):
			noaudit = append(noaudit, tracerAddrRange{Start: s.addr, End: end, Kind: rangeNoAudit})
		case capPlumbing[s.name]:
			plumbing = append(plumbing, tracerAddrRange{Start: s.addr, End: end, Kind: rangePlumbing})
		}
	}
	out := append(noaudit, plumbing...)
	if len(out) > max {
		out = out[:max]
	}
	return out
}
