package bpf

import (
	"fmt"
	"runtime"

	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/tailor-sec/tailor/profiles"
)

// Table is the index of a syscall table in the kernel's per-target bitmap: the
// native table, the 32-bit compat table, and x32 (x86_64 only).
type Table int

// The syscall tables, in the kernel's order (tracer.bpf.h).
const (
	TableNative Table = iota
	TableCompat
	TableX32
	numTables
)

// tableArch is the seccomp architecture of each table on this build's architecture.
func tableArch(t Table) (profiles.Arch, libseccomp.ScmpArch, bool) {
	switch runtime.GOARCH {
	case "amd64":
		switch t {
		case TableNative:
			return profiles.ArchX86_64, libseccomp.ArchAMD64, true
		case TableCompat:
			return profiles.ArchX86, libseccomp.ArchX86, true
		case TableX32:
			return profiles.ArchX32, libseccomp.ArchX32, true
		}
	case "arm64":
		switch t {
		case TableNative:
			return profiles.ArchAARCH64, libseccomp.ArchARM64, true
		case TableCompat:
			return profiles.ArchARM, libseccomp.ArchARM, true
		}
	}
	return "", 0, false
}

// SyscallName returns libseccomp's name for syscall nr of table t, or ok=false when
// libseccomp does not know the number (a kernel newer than the library).
func SyscallName(t Table, nr int) (arch profiles.Arch, name string, ok bool) {
	arch, sarch, known := tableArch(t)
	if !known {
		return "", "", false
	}
	name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(sarch)
	if err != nil || name == "" {
		return arch, "", false
	}
	return arch, name, true
}

// syscallNr returns the number of a syscall on table t, or -1 if it has none there.
func syscallNr(t Table, name string) int32 {
	_, sarch, known := tableArch(t)
	if !known {
		return -1
	}
	nr, err := libseccomp.GetSyscallFromNameByArch(name, sarch)
	if err != nil || nr < 0 {
		return -1
	}
	return int32(nr)
}

// syscallNrs returns [native, compat] numbers of the first of names that exists on
// each table (mmap2 is the compat table's file mmap, for example).
func syscallNrs(names ...string) [2]int32 {
	var out [2]int32
	for i, t := range []Table{TableNative, TableCompat} {
		out[i] = -1
		for _, n := range names {
			if nr := syscallNr(t, n); nr >= 0 {
				out[i] = nr
				break
			}
		}
	}
	return out
}

func checkArch() error {
	if _, _, ok := tableArch(TableNative); !ok {
		return fmt.Errorf("tailor's tracer supports amd64 and arm64, not %s", runtime.GOARCH)
	}
	return nil
}

// TableOf returns the syscall table that holds arch's syscalls on this build's
// architecture, ok=false for an architecture this machine does not run.
func TableOf(arch profiles.Arch) (Table, bool) {
	for t := TableNative; t < numTables; t++ {
		if a, _, ok := tableArch(t); ok && a == arch {
			return t, true
		}
	}
	return 0, false
}

// SyscallNumber returns libseccomp's number for name on table t, ok=false where the
// table has no such syscall.
func SyscallNumber(t Table, name string) (int, bool) {
	nr := syscallNr(t, name)
	return int(nr), nr >= 0
}

// ArchOf returns the seccomp architecture of table t on this build's architecture.
func ArchOf(t Table) (profiles.Arch, bool) {
	a, _, ok := tableArch(t)
	return a, ok
}
