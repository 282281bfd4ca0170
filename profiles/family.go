package profiles

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// families names the socket address families; the numbers come from x/sys/unix. A
// family without a name here is spelled AF_<number>, which FamilyNumber reads back.
var families = map[int]string{
	unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6",
	unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET", unix.AF_KEY: "AF_KEY",
	unix.AF_ALG: "AF_ALG", unix.AF_VSOCK: "AF_VSOCK", unix.AF_XDP: "AF_XDP",
	unix.AF_BLUETOOTH: "AF_BLUETOOTH", unix.AF_CAN: "AF_CAN", unix.AF_TIPC: "AF_TIPC",
	unix.AF_APPLETALK: "AF_APPLETALK", unix.AF_AX25: "AF_AX25", unix.AF_X25: "AF_X25",
	unix.AF_IPX: "AF_IPX", unix.AF_NFC: "AF_NFC", unix.AF_RDS: "AF_RDS", unix.AF_LLC: "AF_LLC",
	unix.AF_IB: "AF_IB", unix.AF_MPLS: "AF_MPLS", unix.AF_SMC: "AF_SMC", unix.AF_QIPCRTR: "AF_QIPCRTR",
}

// FamilyName spells a socket address family as recordings and bundles do (AF_INET).
func FamilyName(f int) string {
	if n, ok := families[f]; ok {
		return n
	}
	return fmt.Sprintf("AF_%d", f)
}

// FamilyNumber reads a name FamilyName wrote.
func FamilyNumber(name string) (int, bool) {
	for f, n := range families {
		if n == name {
			return f, true
		}
	}
	if rest, ok := strings.CutPrefix(name, "AF_"); ok {
		if f, err := strconv.Atoi(rest); err == nil && f >= 0 && f < unix.AF_MAX {
			return f, true
		}
	}
	return 0, false
}
