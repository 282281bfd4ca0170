package launch

/*
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

// The Go runtime raises the soft RLIMIT_NOFILE to the hard limit during its own start-up
// (and syscall.Exec would restore it with prlimit64, a syscall that would then run under
// the filter). A constructor runs before the Go runtime, so it sees the limit the
// launcher was started with.
static struct rlimit tailor_orig_nofile;
static int tailor_orig_nofile_ok;

__attribute__((constructor)) static void tailor_save_nofile(void) {
	if (getrlimit(RLIMIT_NOFILE, &tailor_orig_nofile) == 0)
		tailor_orig_nofile_ok = 1;
}

static int tailor_restore_nofile(void) {
	if (!tailor_orig_nofile_ok)
		return ENODATA;
	if (setrlimit(RLIMIT_NOFILE, &tailor_orig_nofile) != 0)
		return errno;
	return 0;
}

static unsigned long long tailor_orig_nofile_soft(void) {
	return (unsigned long long)tailor_orig_nofile.rlim_cur;
}

// tailor_seccomp_exec installs the filter on the calling thread only (no TSYNC: the
// other threads die at execve anyway) and executes path at once, so execve is the first
// syscall the filter sees. It returns only on failure, with a negative errno for the
// seccomp step and a positive one for execve.
static int tailor_seccomp_exec(struct sock_filter *insns, unsigned short len,
		const char *path, char *const argv[], char *const envp[]) {
	if (insns != NULL) {
		struct sock_fprog prog = { .len = len, .filter = insns };
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
			return -errno;
	}
	syscall(SYS_execve, path, argv, envp);
	return errno;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// restoreNofile puts back the RLIMIT_NOFILE the launcher inherited.
func restoreNofile() error {
	if e := C.tailor_restore_nofile(); e != 0 {
		return fmt.Errorf("restoring RLIMIT_NOFILE: %w", syscall.Errno(e))
	}
	return nil
}

// origNofileSoft is the soft RLIMIT_NOFILE this process was started with.
func origNofileSoft() uint64 { return uint64(C.tailor_orig_nofile_soft()) }

// errSeccompLoad marks a failure of the seccomp(2) call itself, as opposed to execve.
var errSeccompLoad = errors.New("loading seccomp filter")

// seccompExec loads prog (a classic BPF program as libseccomp exports it, 8 bytes per
// instruction; nil for none) and executes path. It returns only on failure. All C
// memory is allocated before the filter is loaded; on failure it is not freed, because
// the caller only reports and exits.
func seccompExec(prog []byte, path string, argv, env []string) error {
	cPath := C.CString(path)
	cArgv := cStrings(argv)
	cEnv := cStrings(env)
	var insns *C.struct_sock_filter
	var n C.ushort
	if prog != nil {
		const insnSize = C.sizeof_struct_sock_filter
		if len(prog)%insnSize != 0 || len(prog)/insnSize == 0 || len(prog)/insnSize > 0xffff {
			return fmt.Errorf("%w: bad BPF program length %d", errSeccompLoad, len(prog))
		}
		insns = (*C.struct_sock_filter)(C.CBytes(prog))
		n = C.ushort(len(prog) / insnSize)
	}
	e := C.tailor_seccomp_exec(insns, n, cPath, cArgv, cEnv)
	if e < 0 {
		return fmt.Errorf("%w: %w", errSeccompLoad, syscall.Errno(-e))
	}
	return fmt.Errorf("executing %s: %w", path, syscall.Errno(e))
}

// cStrings returns a NULL-terminated C array of C strings.
func cStrings(s []string) **C.char {
	arr := (**C.char)(C.malloc(C.size_t(len(s)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	view := unsafe.Slice(arr, len(s)+1)
	for i, v := range s {
		view[i] = C.CString(v)
	}
	view[len(s)] = nil
	return arr
}
