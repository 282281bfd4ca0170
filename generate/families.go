package generate

import (
	"maps"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tailor-sec/tailor/profiles"
)

// syscallFamily is a set of calls that do the same thing to the same kind of object,
// between which libc, shells and language runtimes choose by version, by build or by
// code path. A recording that shows one member may meet another in the next run (a
// shell redirects with dup2 where the learning run only saw dup3; Go calls fstat where
// glibc calls newfstatat), and the other member gives no access the recorded one does
// not: the object is the same (an fd the target holds, its own children, its own
// time), and what the call may reach is decided by the same file rules and
// capabilities. docs/generate.md has the same table.
type syscallFamily struct {
	name    string
	members []string
	reason  string
}

// syscallFamilies: seeing one member allows every member that is a real syscall of
// one of the profile's architectures. Members are libseccomp names; a name that exists
// on 32-bit tables only (fcntl64, _llseek...) adds nothing to a 64-bit profile. Calls
// answered ENOSYS (enosysFallbacks: statx, epoll_pwait2, faccessat2...) are left out:
// the ENOSYS answer already makes the caller fall back to a member here.
// TestFamiliesNeverWiden checks every name against Docker's default profile and the
// list of calls that open a new kind of access.
var syscallFamilies = []syscallFamily{
	{"dup", []string{"dup", "dup2", "dup3"},
		"duplicate an fd the target already holds: shells redirect with dup2, code that wants O_CLOEXEC uses dup3, fcntl(F_DUPFD) does the same as dup"},
	{"pipe", []string{"pipe", "pipe2"},
		"an anonymous pipe between the target's own processes; pipe2 only adds O_CLOEXEC/O_NONBLOCK"},
	{"stat-fd", []string{"fstat", "newfstatat", "fstat64", "fstatat64"},
		"metadata of an open file or of a path relative to a directory fd: Go makes fstat for File.Stat and newfstatat for os.Stat, musl fstat for fstat(); glibc 2.33+ makes newfstatat for both"},
	{"stat-path", []string{"stat", "lstat", "stat64", "lstat64"},
		"metadata by path, following the last link or not: libcs before glibc 2.33 pick stat or lstat by what the program asks"},
	{"poll", []string{"poll", "ppoll", "select", "pselect6", "_newselect", "ppoll_time64", "pselect6_time64"},
		"wait for readiness of fds the target holds: programs call poll or select by code path, and libc maps each onto the architecture's calls"},
	{"wait", []string{"wait4", "waitid", "waitpid"},
		"reap the target's own children: waitpid and wait3 are wait4, waitid is a separate API (Python's os.waitid, Go's os/exec with pidfds)"},
	{"read", []string{"read", "readv", "pread64"},
		"read from an fd the target holds: plain, scatter (stdio, request bodies) and positional reads of the same fd"},
	{"write", []string{"write", "writev", "pwrite64"},
		"write to an fd the target holds, opened for writing under the file rules: plain, gather and positional writes"},
	{"fcntl", []string{"fcntl", "fcntl64"}, "the same call under its 32-bit name"},
	{"lseek", []string{"lseek", "_llseek"}, "the same call under its 32-bit name"},
	{"mmap", []string{"mmap", "mmap2"}, "the same call under its 32-bit name"},
	{"getrlimit", []string{"getrlimit", "ugetrlimit"},
		"read the target's own limits, ugetrlimit being the 32-bit name (prlimit64, which can also set limits, is not in the family)"},
	{"send", []string{"send", "sendto"}, "send on a socket the target holds: send is sendto without an address (32-bit tables)"},
	{"recv", []string{"recv", "recvfrom"}, "receive on a socket the target holds: recv is recvfrom without an address (32-bit tables)"},
	{"getuid", []string{"getuid", "getuid32"}, "the same call with 16- and 32-bit ids (i386, arm)"},
	{"geteuid", []string{"geteuid", "geteuid32"}, "the same call with 16- and 32-bit ids (i386, arm)"},
	{"getgid", []string{"getgid", "getgid32"}, "the same call with 16- and 32-bit ids (i386, arm)"},
	{"getegid", []string{"getegid", "getegid32"}, "the same call with 16- and 32-bit ids (i386, arm)"},
}

// Considered and left out of the families, to keep profiles within the size
// goal (nginx 72, redis 70 syscalls) where the choice is made by the libc or the build
// rather than by the path a program takes, so the recording already has the one the
// target makes: nanosleep/clock_nanosleep (glibc 2.31+ makes clock_nanosleep for every
// sleep, Go nanosleep), accept/accept4 and epoll_wait/epoll_pwait (fixed when the
// program is built), getdents/getdents64 (libcs list directories with getdents64
// only), open/openat (libcs open with openat; openat2 is answered ENOSYS).

// syscallBaseline are calls every profile allows: they read or change only the calling
// process's own state, need no capability and reach no object the target does not
// already hold, and programs make them in rarely exercised paths (a stats command, a
// thread that ends, a CPU-time clock) that a learning run easily misses.
var syscallBaseline = []struct{ name, reason string }{
	{"exit", "end the calling thread: denied, glibc's thread exit retries it forever (a thread spinning at 100% CPU); a thread pool that did not shrink while learning ends threads later"},
	{"exit_group", "end the process: a learning run stopped by a signal never records the normal exit"},
	{"getpid", "the process's own id (logging, pid files, temporary names)"},
	{"gettid", "the calling thread's own id"},
	{"getrusage", "resource usage of the process, its threads or its reaped children (memcached and redis stats)"},
	{"getsockname", "the local address of a socket the target holds (logging, stats, $server_addr)"},
	{"clock_gettime", "read a clock: the vDSO serves the wall and monotonic clocks, but CPU-time clocks (clock(), Lua's os.clock, profilers) are always a syscall"},
	{"clock_gettime64", "clock_gettime under its 32-bit time64 name"},
	{"uname", "the kernel's name, release and machine, the same for every process (redis INFO, Python's platform module); make fit measured it as the held-out false denial of redis (INFO never run while learning)"},
}

// Considered and left out of the baseline for the same size goal: getpeername (the
// peer of a connection the target accepted, logged by some servers), gettimeofday and
// time (served by the vDSO wherever the host's clocksource allows it), getppid and the
// uid/gid reads (made at start-up, so recorded), sched_yield, getcwd.

// neverGeneralised are calls that open a new kind of access: mounts and namespaces,
// other processes' memory and tracing, the kernel's keyrings, BPF and perf, module and
// kexec loading, privileges and limits, new sockets and programs. No generalisation
// may add them; TestFamiliesNeverWiden checks the tables against this list.
var neverGeneralised = []string{
	"acct", "add_key", "bind", "bpf", "capset", "chroot", "clock_adjtime", "clock_settime",
	"clone", "clone3", "connect", "delete_module", "execve", "execveat", "fanotify_init",
	"finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "init_module", "io_uring_setup",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "kill", "listen",
	"lookup_dcookie", "memfd_create", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
	"open_by_handle_at", "open_tree", "perf_event_open", "personality", "pidfd_getfd",
	"pidfd_open", "pidfd_send_signal", "pivot_root", "prctl", "prlimit64", "process_madvise",
	"process_vm_readv", "process_vm_writev", "ptrace", "quotactl", "reboot", "request_key",
	"seccomp", "setdomainname", "setgid", "setgroups", "sethostname", "setns", "setpriority",
	"setresgid", "setresuid", "setrlimit", "settimeofday", "setuid", "socket", "socketcall",
	"swapoff", "swapon", "syslog", "tgkill", "tkill", "umount2", "unshare", "userfaultfd",
	"vhangup",
}

// generaliseSyscalls returns what the families and the baseline add to the recorded
// syscalls, sorted by name: names not recorded that are real syscalls of at least one
// of archs and known to libseccomp on all of them. A name in several families is
// attributed to the first.
func generaliseSyscalls(recorded map[string]bool, archs []specs.Arch) []profiles.Generalisation {
	added := map[string]profiles.Generalisation{}
	add := func(name string, g profiles.Generalisation) {
		if recorded[name] || slices.Contains(enosysFallbacks, name) || !realOnSome(name, archs) {
			return
		}
		if _, ok := added[name]; !ok {
			g.Kind, g.Added = profiles.GeneralisedSyscall, name
			added[name] = g
		}
	}
	for _, f := range syscallFamilies {
		var from []string
		for _, m := range f.members {
			if recorded[m] {
				from = append(from, m)
			}
		}
		if len(from) == 0 {
			continue
		}
		slices.Sort(from)
		for _, m := range f.members {
			add(m, profiles.Generalisation{From: from, Rule: "family " + f.name, Reason: f.reason})
		}
	}
	for _, b := range syscallBaseline {
		add(b.name, profiles.Generalisation{Rule: "baseline", Reason: b.reason})
	}
	out := make([]profiles.Generalisation, 0, len(added))
	for _, n := range slices.Sorted(maps.Keys(added)) {
		out = append(out, added[n])
	}
	return out
}

// realOnSome reports whether name is known to libseccomp on every one of archs and a
// real syscall on at least one.
func realOnSome(name string, archs []specs.Arch) bool {
	if !knownToLibseccomp(name, archs) {
		return false
	}
	for _, a := range archs {
		sa, err := profiles.ScmpArch(string(a))
		if err != nil {
			continue
		}
		if real, err := profiles.SyscallOnArch(name, sa); err == nil && real {
			return true
		}
	}
	return false
}
