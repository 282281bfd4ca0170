/* SPDX-License-Identifier: GPL-2.0 */
/* Types shared by the kernel programs and, through bpf2go's -type, the Go loader. */
#ifndef TAILOR_TRACER_H
#define TAILOR_TRACER_H

#define MAX_TARGETS 64
/* 1024 syscall numbers per architecture: x86_64 and i386 stop below 500 today. */
#define SC_WORDS 16
#define SC_MAX (SC_WORDS * 64)
/* Syscall tables: 0 the native one, 1 the 32-bit compat one (i386 on x86_64, arm on
 * arm64), 2 x32. */
#define NR_ARCHES 3

#define PATH_MAX_LEN 4096
#define MAX_COMPONENTS 96
#define COMM_LEN 16

/* Access kinds of a file event; a bit set. */
#define ACC_READ 1
#define ACC_WRITE 2
#define ACC_CREATE 4
#define ACC_EXEC 8
#define ACC_MMAP_EXEC 16
#define ACC_LIST 32

/* Task flags. */
#define TASK_DOCKER_EXEC 1
/* The container runtime, between installing the container's filter and executing the
 * entrypoint: its syscalls run under the filter, so they count, but its capability
 * checks and file accesses are its own (the AppArmor profile applies from the execve
 * on, and the runtime holds its capabilities until then), never the target's needs. */
#define TASK_RUNTIME 2

/* Event types in the ring buffer. */
#define EV_FILE 1
#define EV_EXEC 2
#define EV_ANOMALY 3

/* File event flags. */
#define FE_DIR 1
#define FE_TRUNCATED 2
#define FE_RUNTIME 4 /* opened by the container runtime (TASK_RUNTIME) */

/* Indexes of the loss counters. */
enum counter_idx {
	CNT_RINGBUF_DROP = 0,
	CNT_TASKS_FULL = 1,
	CNT_CAPS_FULL = 2,
	CNT_NET_FULL = 3,
	CNT_PATH_TRUNCATED = 4,
	CNT_BAD_NR = 5,
	CNT_CONTAINERS_FULL = 6,
	CNT_ANOMALIES_FULL = 7,
	CNT_MAX = 8,
};

/* Network observation kinds. */
#define NET_SOCKET 1
#define NET_BIND 2
#define NET_LISTEN 3

/* Kinds of the kernel address ranges user space fills in from /proc/kallsyms. */
#define RANGE_NOAUDIT 1  /* a function that asks for a capability without auditing */
#define RANGE_PLUMBING 2 /* capability plumbing: not the interesting caller */
#define MAX_RANGES 32
#define CAP_STACK_DEPTH 16

struct task_info {
	__u32 target;
	__u32 flags;
	char comm[COMM_LEN];
};

struct syscall_bits {
	__u64 bits[NR_ARCHES][SC_WORDS];
};

struct file_event {
	__u32 type;
	__u32 target;
	__u32 pid;
	__u32 access;
	__u32 flags;
	__u32 len;
	char path[PATH_MAX_LEN];
};

struct exec_event {
	__u32 type;
	__u32 target;
	__u32 pid;
	__u32 ppid;
	__u32 flags;
	__u32 _pad;
	char by_comm[COMM_LEN];
	char comm[COMM_LEN];
	char filename[512];
	char interp[512];
};

struct cap_key {
	__u32 target;
	__s32 cap;
	__u8 granted;
	__u8 probed;
	__u8 runtime;    /* asked by the container runtime (TASK_RUNTIME) */
	__u8 overridden; /* checked against credentials that are not the task's own */
	__u32 _pad2;
	__u64 caller;
};

struct net_key {
	__u32 target;
	__u16 kind;
	__u16 family;
	__u32 type;
	__u32 protocol;
	__u32 port;
};

struct addr_range {
	__u64 start;
	__u64 end;
	__u32 kind;
	__u32 _pad;
};

/* The name of the cgroup a container's processes live in, by container ID. */
struct container_key {
	char id[64];
};

/* ---- watch mode: what a target does outside its profile ------------------------ */

/* Anomaly kinds the kernel detects; files and execs that succeed are compared with the
 * profile in user space. */
#define AN_SYSCALL 1     /* a syscall outside the profile, seen at its exit */
#define AN_SOCKET 2      /* a socket in an address family outside the profile */
#define AN_CAP 3         /* an audited capability check outside the profile */
#define AN_FILE_DENIED 4 /* an open that failed with EACCES or EPERM */
#define AN_EXEC_DENIED 5 /* an execve that failed with EACCES or EPERM */

/* Repeats of one anomaly key are counted, and reported at most once per interval. */
#define ANOMALY_INTERVAL_NS 1000000000ULL

/* The profile of a watched target. */
struct watch_policy {
	__u32 enabled;
	__u32 _pad;
	__u64 caps;     /* a bit per capability the profile keeps */
	__u64 families; /* a bit per socket address family the profile allows */
	__u64 allowed[NR_ARCHES][SC_WORDS];
};

struct anomaly_key {
	__u32 target;
	__u16 kind;
	__u16 arch;
	__u64 value; /* syscall number, address family, capability, or a hash of the path */
};

struct anomaly_state {
	__u64 count;
	__u64 last_ns;
};

struct anomaly_event {
	__u32 type;
	__u32 target;
	__u32 pid;
	__u32 tid;
	__u16 kind;
	__u16 arch;
	__u32 flags; /* task flags (TASK_DOCKER_EXEC) */
	__s64 ret;   /* the syscall's return value: the errno a filter gave, or success */
	__u64 value;
	__u64 count; /* occurrences of this key so far, this one included */
	__s32 nr;    /* the syscall (denied paths) */
	__s32 dirfd; /* the directory fd a relative path was given against */
	__u64 open_flags;
	char comm[COMM_LEN];
	__u32 len; /* length of path, for denied files and execs */
	__u32 truncated;
	char path[PATH_MAX_LEN];
};

#endif
