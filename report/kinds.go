package report

import "strings"

// Syscall kinds, in the order a report lists them.
const (
	KindFiles      = "files"
	KindProcesses  = "processes"
	KindMemory     = "memory"
	KindNetwork    = "network"
	KindTime       = "time"
	KindIPC        = "IPC and signals"
	KindEvents     = "polling and events"
	KindSecurity   = "security"
	KindPrivileged = "privileged"
	KindOther      = "other"
)

// Kinds are the syscall kinds in report order.
var Kinds = []string{KindFiles, KindProcesses, KindMemory, KindNetwork, KindTime, KindIPC, KindEvents, KindSecurity, KindPrivileged, KindOther}

// syscallKinds says what kind of object each syscall acts on, for a reader: it groups
// the names (which libseccomp and moby's default profile give) and decides nothing a
// profile allows. A name missing here is "other"; TestKindsCoverDocker keeps every
// call Docker's default profile allows, on every architecture tailor records, out of
// "other". "privileged" are the calls that reach beyond the process (other processes'
// memory, the mount table, kernel modules, the clock, BPF): Docker's default allows
// most of them only with a capability.
var syscallKinds = map[string]string{
	KindFiles: `access faccessat faccessat2 open openat openat2 creat close close_range read readv pread64 preadv preadv2
		write writev pwrite64 pwritev pwritev2 lseek _llseek stat lstat fstat newfstatat statx stat64 lstat64 fstat64
		fstatat64 statfs fstatfs statfs64 fstatfs64 getdents getdents64 readdir mkdir mkdirat rmdir unlink unlinkat
		rename renameat renameat2 link linkat symlink symlinkat readlink readlinkat chmod fchmod fchmodat fchmodat2
		chown fchown fchownat lchown chown32 fchown32 lchown32 truncate ftruncate truncate64 ftruncate64 fallocate
		fadvise64 fadvise64_64 arm_fadvise64_64 readahead fsync fdatasync sync syncfs sync_file_range sync_file_range2
		arm_sync_file_range flock fcntl fcntl64 dup dup2 dup3 ioctl getcwd chdir fchdir umask utime utimes utimensat
		utimensat_time64 futimesat mknod mknodat getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr
		llistxattr flistxattr removexattr lremovexattr fremovexattr getxattrat setxattrat listxattrat removexattrat
		copy_file_range sendfile sendfile64 splice tee vmsplice cachestat file_getattr file_setattr`,
	KindProcesses: `execve execveat fork vfork clone clone3 exit exit_group wait4 waitid waitpid getpid getppid gettid
		getpgid getpgrp setpgid getsid setsid getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
		getresuid getresuid32 getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid
		setreuid32 setregid setregid32 setresuid setresuid32 setresgid setresgid32 setgroups setgroups32 setfsuid
		setfsuid32 setfsgid setfsgid32 getrlimit ugetrlimit setrlimit prlimit64 getrusage getpriority setpriority
		sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam sched_setparam
		sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval
		sched_rr_get_interval_time64 ioprio_get ioprio_set prctl arch_prctl set_tid_address set_robust_list
		get_robust_list rseq set_thread_area get_thread_area uname olduname sysinfo getcpu personality
		restart_syscall pidfd_open pidfd_getfd getrandom times arm_set_tls set_tls modify_ldt`,
	KindMemory: `brk mmap mmap2 munmap mprotect mremap madvise process_madvise mincore msync mlock mlock2 mlockall
		munlock munlockall remap_file_pages pkey_alloc pkey_free pkey_mprotect membarrier memfd_secret map_shadow_stack
		mseal mbind set_mempolicy get_mempolicy set_mempolicy_home_node cacheflush breakpoint process_mrelease`,
	KindNetwork: `socket socketpair socketcall bind connect listen accept accept4 getsockname getpeername getsockopt
		setsockopt sendto send sendmsg sendmmsg recvfrom recv recvmsg recvmmsg recvmmsg_time64 shutdown`,
	KindTime: `time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_nanosleep
		clock_nanosleep_time64 nanosleep alarm getitimer setitimer timer_create timer_delete timer_getoverrun
		timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
		timerfd_gettime64 timerfd_settime timerfd_settime64 adjtimex clock_adjtime clock_adjtime64`,
	KindIPC: `kill tkill tgkill rt_sigaction rt_sigprocmask rt_sigreturn sigreturn rt_sigpending rt_sigsuspend
		rt_sigtimedwait rt_sigtimedwait_time64 rt_sigqueueinfo rt_tgsigqueueinfo sigaction sigprocmask sigpending
		sigsuspend sigaltstack signal signalfd signalfd4 pause pidfd_send_signal futex futex_time64 futex_waitv
		futex_wake futex_wait futex_requeue pipe pipe2 eventfd eventfd2 memfd_create msgget msgsnd msgrcv msgctl
		semget semop semtimedop semtimedop_time64 semctl shmget shmat shmdt shmctl ipc mq_open mq_unlink
		mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr`,
	KindEvents: `poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64 epoll_create epoll_create1
		epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2 inotify_init inotify_init1
		inotify_add_watch inotify_rm_watch fanotify_init fanotify_mark io_setup io_destroy io_submit io_cancel
		io_getevents io_pgetevents io_pgetevents_time64 io_uring_setup io_uring_enter io_uring_register`,
	KindSecurity: `seccomp capget capset landlock_create_ruleset landlock_add_rule landlock_restrict_self
		lsm_get_self_attr lsm_set_self_attr lsm_list_modules`,
	KindPrivileged: `mount umount umount2 pivot_root chroot setns unshare mount_setattr move_mount open_tree
		open_tree_attr fsopen fsconfig fsmount fspick bpf perf_event_open ptrace process_vm_readv process_vm_writev
		kcmp kexec_load kexec_file_load init_module finit_module delete_module reboot swapon swapoff sethostname
		setdomainname settimeofday clock_settime clock_settime64 stime acct quotactl quotactl_fd iopl ioperm syslog
		lookup_dcookie keyctl add_key request_key userfaultfd open_by_handle_at name_to_handle_at vhangup nfsservctl
		move_pages migrate_pages uselib ustat sysfs _sysctl vm86 vm86old`,
}

// kindOf maps each name to its kind.
var kindOf = func() map[string]string {
	m := map[string]string{}
	for kind, names := range syscallKinds {
		for _, n := range strings.Fields(names) {
			m[n] = kind
		}
	}
	return m
}()

// SyscallKind returns the kind of a syscall name, KindOther when the table lacks it.
func SyscallKind(name string) string {
	if k, ok := kindOf[name]; ok {
		return k
	}
	return KindOther
}
