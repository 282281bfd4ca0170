/* SPDX-License-Identifier: GPL-2.0 */
/* Types and constants shared by the kernel programs and, through bpf2go's -type, the Go
 * loader: every enum here reaches Go as generated constants, so nothing is copied by
 * hand. */
#ifndef TAILOR_TRACER_H
#define TAILOR_TRACER_H

enum limits {
	/* Target slots, a power of two: a target id is its slot in the low bits and the
	 * slot's generation above them (target_slot), so an id is never reused while its
	 * entries or events may still be around, and the per-slot arrays (syscalls, watch,
	 * container_joins) carry the id they belong to. Slot 0 is never used: 0 is no
	 * target. */
	MAX_TARGETS = 1024,
	/* Words of the tracked-tgid bitmap: one bit per pid up to PID_MAX_LIMIT (4M). */
	TRACKED_WORDS = (4 * 1024 * 1024) / 64,
	/* 1024 syscall numbers per architecture: x86_64 and i386 stop below 500 today. */
	SC_WORDS = 16,
	SC_MAX = SC_WORDS * 64,
	/* Syscall tables: 0 the native one, 1 the 32-bit compat one (i386 on x86_64, arm
	 * on arm64), 2 x32. */
	NR_ARCHES = 3,
	PATH_MAX_LEN = 4096,
	MAX_COMPONENTS = 96,
	COMM_LEN = 16,
	MAX_RANGES = 32,
	CAP_STACK_DEPTH = 16,
	/* A file event holds up to two paths (the two names of a rename or link). */
	FILE_PATHS_LEN = 2 * PATH_MAX_LEN,
};

/* Access kinds of a file event; a bit set. */
enum access {
	ACC_READ = 1 << 0,
	ACC_WRITE = 1 << 1,
	ACC_CREATE = 1 << 2,
	ACC_EXEC = 1 << 3,
	ACC_MMAP_EXEC = 1 << 4,
	ACC_LIST = 1 << 5,
	ACC_MKDIR = 1 << 6,
	ACC_RMDIR = 1 << 7,
	ACC_DELETE = 1 << 8,
	ACC_RENAME = 1 << 9,   /* path is the old name, path2 the new one */
	ACC_EXCHANGE = 1 << 10, /* renameat2(RENAME_EXCHANGE): both names are both */
	ACC_LINK = 1 << 11,    /* path is the existing file, path2 the new name */
	ACC_SYMLINK = 1 << 12,
	ACC_SETATTR = 1 << 13,
	ACC_MKNOD = 1 << 14,
	ACC_BIND = 1 << 15,    /* a unix socket bound by path */
	ACC_CONNECT = 1 << 16, /* a unix socket connected (or sent) to by path */
};

/* Task flags. */
enum task_flag {
	TASK_DOCKER_EXEC = 1,
	/* The container runtime, between installing the container's filter and executing
	 * the entrypoint: its syscalls run under the filter, so they count, but its
	 * capability checks and file accesses are its own (the AppArmor profile applies
	 * from the execve on, and the runtime holds its capabilities until then), never
	 * the target's needs. */
	TASK_RUNTIME = 2,
};

/* Event types in the ring buffer. */
enum event_type {
	EV_FILE = 1,
	EV_EXEC = 2,
	EV_ANOMALY = 3,
	EV_NET = 4,
};

/* File event flags. */
enum file_flag {
	FE_DIR = 1,
	FE_TRUNCATED = 2,
	FE_RUNTIME = 4,  /* opened by the container runtime (TASK_RUNTIME) */
	FE_ABSTRACT = 8, /* a unix socket's abstract name, not a path */
	/* The path came from the syscall's arguments (joined to the directory it was
	 * relative to), not from an opened struct file: symlinks in it are unresolved. */
	FE_ARGS = 16,
	/* Watch mode: the target's profile refused it (EACCES/EPERM); count says how often
	 * this (operation, path) was refused so far. */
	FE_DENIED = 32,
	FE_DOCKER_EXEC = 64,
};

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
	/* Reads of a syscall's arguments from the target's memory that failed. */
	CNT_ARGS_UNREADABLE = 8,
	CNT_MAX = 9,
};

/* Network observation kinds. */
enum net_kind {
	NET_SOCKET = 1,
	NET_BIND = 2,
	NET_LISTEN = 3,
	NET_CONNECT = 4,
	NET_SEND = 5,
	NET_ACCEPT = 6,
};

/* Kinds of the kernel address ranges user space fills in from /proc/kallsyms. */
enum range_kind {
	RANGE_NOAUDIT = 1,  /* a function that asks for a capability without auditing */
	RANGE_PLUMBING = 2, /* capability plumbing: not the interesting caller */
};

/* What a syscall does, for the syscalls whose arguments name a path or a peer: the
 * operation and where its arguments are. User space fills the sysops map from
 * libseccomp's numbers, per table. */
enum sysop_kind {
	SOP_NONE = 0,
	SOP_OPEN = 1,     /* open, openat, creat: flags_arg holds the open flags */
	SOP_OPENAT2 = 2,  /* openat2: the flags are the first field of struct open_how */
	SOP_EXEC = 3,     /* execve, execveat: only failures (the exec event has successes) */
	SOP_MKDIR = 4,
	SOP_RMDIR = 5,
	SOP_UNLINK = 6,   /* unlinkat: flags_arg AT_REMOVEDIR makes it an rmdir */
	SOP_RENAME = 7,   /* flags_arg RENAME_EXCHANGE swaps */
	SOP_LINK = 8,     /* flags_arg AT_EMPTY_PATH links the file of the fd itself */
	SOP_SYMLINK = 9,
	SOP_SETATTR = 10, /* chmod, chown, utimes, truncate by path */
	SOP_MKNOD = 11,   /* flags_arg holds the mode: S_IFREG (or 0) creates a file */
	SOP_BIND = 12,
	SOP_CONNECT = 13,
	SOP_SENDTO = 14,  /* path_arg is the sockaddr argument */
	SOP_SENDMSG = 15,
	SOP_ACCEPT = 16,
	SOP_SOCKETCALL = 17, /* i386's multiplexer */
	SOP_SENDMMSG = 18,
};

/* No argument at this position. */
#define NO_ARG 255

struct sysop {
	__u8 op;
	__u8 dirfd_arg;  /* NO_ARG: relative to the working directory */
	__u8 path_arg;
	__u8 dirfd2_arg;
	__u8 path2_arg;  /* NO_ARG: one path only */
	__u8 flags_arg;
	__u16 _pad;
};

struct task_info {
	__u32 target;
	__u32 flags;
	char comm[COMM_LEN];
};

struct syscall_bits {
	__u32 target; /* the id the slot belongs to now; 0 when free */
	__u32 _pad;
	__u64 bits[NR_ARCHES][SC_WORDS];
};

/* A container target's processes that installed their filter so far: the first is the
 * container's init, any later one came through docker exec. */
struct join_state {
	__u32 target; /* the id the slot belongs to now; 0 when free */
	__u32 joins;
};

/* A file observation: a path the target opened (resolved from the opened struct file),
 * executed or mapped, or a path operation it attempted (from the syscall's arguments).
 * path holds len bytes, then (two-name operations) a NUL and len2 bytes. */
struct file_event {
	__u32 type;
	__u32 target;
	__u32 pid;
	__u32 access;
	__u32 flags;
	__s32 err; /* 0, or the -errno the operation failed with */
	__s32 nr;  /* the syscall, for operations read from arguments; -1 otherwise */
	__u16 arch;
	__u16 _pad;
	__u64 count; /* FE_DENIED: refusals of this key so far, this one included */
	__u64 key;   /* FE_DENIED: the value of its key in the anomalies map */
	char comm[COMM_LEN];
	__u32 len;
	__u32 len2;
	char path[FILE_PATHS_LEN];
};

struct exec_event {
	__u32 type;
	__u32 target;
	__u32 pid;
	__u32 ppid;
	__u32 flags;
	__u32 truncated;
	char by_comm[COMM_LEN];
	char comm[COMM_LEN];
	/* The executed path as given, made absolute against the working directory. */
	char filename[PATH_MAX_LEN];
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
	__s32 err;     /* connects: 0, or the -errno it failed with */
	__u8 addr[16]; /* connects and sends: the peer's IPv4 or IPv6 address */
};

/* A network observation, sent once per new net_key of kind connect, send or accept so
 * that watch mode can judge it while the target runs. */
struct net_event {
	__u32 type;
	__u32 pid;
	__u32 flags; /* task flags */
	__u32 _pad;
	__u64 count;
	char comm[COMM_LEN];
	struct net_key key;
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

/* Anomaly kinds the kernel detects; files, execs and peers are compared with the
 * profile in user space. */
enum anomaly_kind {
	AN_SYSCALL = 1, /* a syscall outside the profile, seen at its exit */
	AN_SOCKET = 2,  /* a socket in an address family outside the profile */
	AN_CAP = 3,     /* an audited capability check outside the profile */
	/* A path operation refused with EACCES or EPERM: the key's value hashes the
	 * operation and path, and the event is a file event with FE_DENIED. */
	AN_FILE_DENIED = 4,
};

/* Repeats of one anomaly key are counted, and reported at most once per interval. */
#define ANOMALY_INTERVAL_NS 1000000000ULL

/* The profile of a watched target. */
struct watch_policy {
	__u32 enabled;
	__u32 target; /* the id the slot belongs to now */
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
	char comm[COMM_LEN];
};

#endif
