package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// noArg marks an argument position a syscall does not have (NO_ARG).
const noArg = 255

// sysopEntry says where a syscall's path (or socket address) arguments are. Positions
// are argument indexes; the kernel reads them at sys_exit (fileops.bpf.c).
type sysopEntry struct {
	names                             []string
	op                                tracerSysopKind
	dirfd, path, dirfd2, path2, flags uint8
}

// sysopTable lists every syscall whose arguments name a path or a peer. Names are
// libseccomp's; a name an architecture lacks is skipped there. The i386 variants
// (chown32, truncate64, utimensat_time64...) have the same argument layout.
var sysopTable = []sysopEntry{
	{[]string{"open"}, tracerSysopKindSOP_OPEN, noArg, 0, noArg, noArg, 1},
	{[]string{"openat"}, tracerSysopKindSOP_OPEN, 0, 1, noArg, noArg, 2},
	{[]string{"creat"}, tracerSysopKindSOP_OPEN, noArg, 0, noArg, noArg, noArg},
	{[]string{"openat2"}, tracerSysopKindSOP_OPENAT2, 0, 1, noArg, noArg, 2},
	{[]string{"execve"}, tracerSysopKindSOP_EXEC, noArg, 0, noArg, noArg, noArg},
	{[]string{"execveat"}, tracerSysopKindSOP_EXEC, 0, 1, noArg, noArg, noArg},
	{[]string{"mkdir"}, tracerSysopKindSOP_MKDIR, noArg, 0, noArg, noArg, noArg},
	{[]string{"mkdirat"}, tracerSysopKindSOP_MKDIR, 0, 1, noArg, noArg, noArg},
	{[]string{"rmdir"}, tracerSysopKindSOP_RMDIR, noArg, 0, noArg, noArg, noArg},
	{[]string{"unlink"}, tracerSysopKindSOP_UNLINK, noArg, 0, noArg, noArg, noArg},
	{[]string{"unlinkat"}, tracerSysopKindSOP_UNLINK, 0, 1, noArg, noArg, 2},
	{[]string{"rename"}, tracerSysopKindSOP_RENAME, noArg, 0, noArg, 1, noArg},
	{[]string{"renameat"}, tracerSysopKindSOP_RENAME, 0, 1, 2, 3, noArg},
	{[]string{"renameat2"}, tracerSysopKindSOP_RENAME, 0, 1, 2, 3, 4},
	{[]string{"link"}, tracerSysopKindSOP_LINK, noArg, 0, noArg, 1, noArg},
	{[]string{"linkat"}, tracerSysopKindSOP_LINK, 0, 1, 2, 3, 4},
	{[]string{"symlink"}, tracerSysopKindSOP_SYMLINK, noArg, 1, noArg, noArg, noArg},
	{[]string{"symlinkat"}, tracerSysopKindSOP_SYMLINK, 1, 2, noArg, noArg, noArg},
	{[]string{"chmod", "chown", "lchown", "chown32", "lchown32", "utime", "utimes", "truncate", "truncate64"},
		tracerSysopKindSOP_SETATTR, noArg, 0, noArg, noArg, noArg},
	{[]string{"fchmodat", "fchmodat2", "fchownat", "futimesat", "utimensat", "utimensat_time64"},
		tracerSysopKindSOP_SETATTR, 0, 1, noArg, noArg, noArg},
	{[]string{"mknod"}, tracerSysopKindSOP_MKNOD, noArg, 0, noArg, noArg, 1},
	{[]string{"mknodat"}, tracerSysopKindSOP_MKNOD, 0, 1, noArg, noArg, 2},
	{[]string{"bind"}, tracerSysopKindSOP_BIND, noArg, noArg, noArg, noArg, noArg},
	{[]string{"connect"}, tracerSysopKindSOP_CONNECT, noArg, noArg, noArg, noArg, noArg},
	{[]string{"sendto"}, tracerSysopKindSOP_SENDTO, noArg, noArg, noArg, noArg, noArg},
	{[]string{"sendmsg"}, tracerSysopKindSOP_SENDMSG, noArg, noArg, noArg, noArg, noArg},
	{[]string{"sendmmsg"}, tracerSysopKindSOP_SENDMMSG, noArg, noArg, noArg, noArg, noArg},
	{[]string{"accept", "accept4"}, tracerSysopKindSOP_ACCEPT, noArg, noArg, noArg, noArg, noArg},
	{[]string{"socketcall"}, tracerSysopKindSOP_SOCKETCALL, noArg, noArg, noArg, noArg, noArg},
}

// sysops returns the kernel's sysops entries for this build's architecture, keyed by
// table * SC_MAX + syscall number.
func sysops() map[uint32]tracerSysop {
	out := map[uint32]tracerSysop{}
	for _, tbl := range []Table{TableNative, TableCompat} {
		for _, e := range sysopTable {
			for _, name := range e.names {
				nr := syscallNr(tbl, name)
				if nr < 0 || nr >= int32(tracerLimitsSC_MAX) {
					continue
				}
				out[uint32(tbl)*uint32(tracerLimitsSC_MAX)+uint32(nr)] = tracerSysop{
					Op: uint8(e.op), DirfdArg: e.dirfd, PathArg: e.path, Dirfd2Arg: e.dirfd2,
					Path2Arg: e.path2, FlagsArg: e.flags,
				}
			}
		}
	}
	return out
}

func fillSysops(m *ebpf.Map) error {
	for k, v := range sysops() {
		if err := m.Put(k, v); err != nil {
			return fmt.Errorf("filling sysops: %w", err)
		}
	}
	return nil
}
