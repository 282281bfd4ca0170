//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every concern shares: the maps that say who is a target and where events go,
 * the per-CPU scratch space, and the helpers that read a syscall's table and arguments.
 * Included by tracer.bpf.c, never compiled alone.
 */

/* Not in BTF: they are preprocessor constants of the kernel ABI. */
#define SECCOMP_MODE_FILTER 2
#define TS_COMPAT 0x0002     /* x86: thread_info.status, a 32-bit syscall is running */
#define TIF_32BIT 22         /* arm64: thread_info.flags, a 32-bit task */
#define X32_SYSCALL_BIT 0x40000000
#define PROT_EXEC 0x4
#define MAP_ANONYMOUS 0x20
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 0100
#define O_TRUNC 01000
#define FMODE_CREATED 0x100000
#define S_IFMT 00170000
#define S_IFDIR 0040000
#define S_IFREG 0100000
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define EPERM 1
#define EACCES 13
#define EINPROGRESS 115
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000
#define RENAME_EXCHANGE 2
#define SECCOMP_SET_MODE_FILTER 1
#define PR_SET_SECCOMP 22

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tgid */
	__type(value, struct task_info);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Per-CPU scratch space: too large for the 512-byte BPF stack. Each path buffer is
 * followed by room for one more component or user string, so a masked offset plus a
 * bounded length always stays inside the value. */
struct scratch {
	struct file_event fe;
	char fe_pad[PATH_MAX_LEN + 256];
	/* A path operation between reading its arguments and sending it. */
	struct {
		__s64 dirfd[2];
		__s64 len[2]; /* -1: no second name */
		__u64 hash;
	} op;
	/* Strings read from a syscall's arguments, before they are joined into fe. */
	__u64 str[2][PATH_MAX_LEN / 8];
	__u64 names[MAX_COMPONENTS];
	__u32 lens[MAX_COMPONENTS];
	struct exec_event ee;
	char ee_pad[256];
	struct anomaly_event ae;
	struct net_event ne;
	__u64 stack[CAP_STACK_DEPTH];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* This CPU's scratch space; never NULL in practice, but the verifier wants the check. */
static __always_inline struct scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

/* One bit per thread group id, up to the kernel's PID_MAX_LIMIT: set for every tgid
 * that has an entry in `tasks` (before the entry is made). It lets the syscall hooks
 * turn away a task under some other seccomp filter (every Docker container on the
 * host) with one inlined array load instead of a hash lookup. It is a superset: a bit
 * may stay set after its entry went (the hash lookup then misses), never the reverse.
 * Mappable: the loader sets bits for the processes it adds with atomic ORs, like the
 * programs do. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TRACKED_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} tracked_tgids SEC(".maps");

/* Whether tgid may be in `tasks`; a tgid beyond the bitmap always may. */
static __always_inline int maybe_tracked(__u32 tgid)
{
	__u32 w = tgid >> 6;
	__u64 *b = bpf_map_lookup_elem(&tracked_tgids, &w);
	return !b || (*b & (1ULL << (tgid & 63)));
}

static __always_inline void mark_tracked(__u32 tgid)
{
	__u32 w = tgid >> 6;
	__u64 *b = bpf_map_lookup_elem(&tracked_tgids, &w);
	if (b && !(*b & (1ULL << (tgid & 63))))
		__sync_fetch_and_or(b, 1ULL << (tgid & 63));
}

static __always_inline void unmark_tracked(__u32 tgid)
{
	__u32 w = tgid >> 6;
	__u64 *b = bpf_map_lookup_elem(&tracked_tgids, &w);
	if (b && (*b & (1ULL << (tgid & 63))))
		__sync_fetch_and_and(b, ~(1ULL << (tgid & 63)));
}

/* The slot of a target id in the per-slot arrays (syscalls, watch, container_joins);
 * the rest of the id is the slot's generation (tracer.bpf.h, MAX_TARGETS). */
_Static_assert((MAX_TARGETS & (MAX_TARGETS - 1)) == 0, "MAX_TARGETS must be a power of two");
static __always_inline __u32 target_slot(__u32 target)
{
	return target & (MAX_TARGETS - 1);
}

static __always_inline struct task_info *tracked(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!maybe_tracked(tgid))
		return 0;
	return bpf_map_lookup_elem(&tasks, &tgid);
}

static __always_inline int under_filter(struct task_struct *task)
{
	return BPF_CORE_READ(task, seccomp.mode) == SECCOMP_MODE_FILTER;
}

/* Which syscall table the current syscall uses: 0 native, 1 compat, 2 x32. `flags` is
 * thread_info.status on x86 and thread_info.flags on arm64, read by the caller: the
 * tp_btf program loads it directly, which is cheaper than a probe read. */
static __always_inline __u32 syscall_arch(__u64 flags, long *nr)
{
#if defined(__TARGET_ARCH_x86)
	if (flags & TS_COMPAT)
		return 1;
	if (*nr & X32_SYSCALL_BIT) {
		*nr &= ~X32_SYSCALL_BIT;
		return 2;
	}
#elif defined(__TARGET_ARCH_arm64)
	if (flags & (1UL << TIF_32BIT))
		return 1;
#endif
	return 0;
}

#if defined(__TARGET_ARCH_x86)
#define ARCH_FLAGS(task) ((task)->thread_info.status)
#define ARCH_FLAGS_CORE(task) BPF_CORE_READ(task, thread_info.status)
#else
#define ARCH_FLAGS(task) ((task)->thread_info.flags)
#define ARCH_FLAGS_CORE(task) BPF_CORE_READ(task, thread_info.flags)
#endif

/* Syscall arguments from pt_regs, per architecture. */
#if defined(__TARGET_ARCH_x86)
static __always_inline __u64 arg(struct pt_regs *r, __u32 compat, int i)
{
	if (compat) {
		/* i386: ebx, ecx, edx, esi, edi, ebp */
		switch (i) {
		case 0: return (__u32)BPF_CORE_READ(r, bx);
		case 1: return (__u32)BPF_CORE_READ(r, cx);
		case 2: return (__u32)BPF_CORE_READ(r, dx);
		case 3: return (__u32)BPF_CORE_READ(r, si);
		case 4: return (__u32)BPF_CORE_READ(r, di);
		default: return (__u32)BPF_CORE_READ(r, bp);
		}
	}
	switch (i) {
	case 0: return BPF_CORE_READ(r, di);
	case 1: return BPF_CORE_READ(r, si);
	case 2: return BPF_CORE_READ(r, dx);
	case 3: return BPF_CORE_READ(r, r10);
	case 4: return BPF_CORE_READ(r, r8);
	default: return BPF_CORE_READ(r, r9);
	}
}
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs___tailor_arm64 {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
	__u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));
static __always_inline __u64 arg(struct pt_regs *r, __u32 compat, int i)
{
	struct pt_regs___tailor_arm64 *a = (void *)r;
	if (i == 0)
		return BPF_CORE_READ(a, orig_x0);
	if (i > 5)
		i = 5;
	return BPF_CORE_READ(a, regs[i]);
}
#endif

/* The syscall a pt_regs belongs to, at syscall exit. */
static __always_inline long exit_nr(struct pt_regs *r)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(r, orig_ax);
#else
	struct pt_regs___tailor_arm64 *a = (void *)r;
	return BPF_CORE_READ(a, syscallno);
#endif
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	if (fd < 0)
		return 0;
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((unsigned long)fd >= max)
		return 0;
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}
