//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tailor's tracer: records what the processes of a target do.
 *
 * A target is a set of thread groups, kept in the `tasks` map by tgid. A task is
 * observed only while it runs under a seccomp filter (task->seccomp.mode == FILTER):
 * tailor runs every target under a permissive "learning" filter, so what is recorded
 * is exactly what will later run under the enforcing filter, and a launcher's or a
 * container runtime's set-up before its filter is left out.
 *
 * Syscalls go into a bitmap per target and architecture, so none can be lost to a
 * full buffer. Low-rate observations (files, execs) go through one ring buffer and are
 * deduplicated in the kernel first; capabilities and sockets are counted in hash maps.
 * Everything that cannot be kept is counted in `counters`.
 */
#include "include/vmlinux.h"
#if defined(__TARGET_ARCH_arm64)
/* The committed vmlinux.h is x86_64's; arm64's kprobe context is this layout. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif
#include "include/bpf_helpers.h"
#include "include/bpf_core_read.h"
#include "include/bpf_tracing.h"
#include "tracer.bpf.h"

char LICENSE[] SEC("license") = "GPL";

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
#define FMODE_CREATED 0x100000
#define S_IFMT 00170000
#define S_IFDIR 0040000
#define AF_INET 2
#define AF_INET6 10
#define EPERM 1
#define EACCES 13
#define AT_FDCWD -100
#define O_CREAT 0100
#define O_TRUNC 01000
#define SECCOMP_SET_MODE_FILTER 1
#define PR_SET_SECCOMP 22

/* Syscall numbers the programs look at, per table [native, compat]. Set from Go with
 * libseccomp's numbers before load; -1 where an architecture has no such syscall. */
volatile const __s32 nr_mmap[2] = {-1, -1};
volatile const __s32 nr_socket[2] = {-1, -1};
volatile const __s32 nr_bind[2] = {-1, -1};
volatile const __s32 nr_listen[2] = {-1, -1};
volatile const __s32 nr_socketcall = -1; /* i386 multiplexer, compat table only */
/* Native numbers of the calls whose denial watch mode reports with the path asked for. */
volatile const __s32 nr_open = -1;
volatile const __s32 nr_openat = -1;
volatile const __s32 nr_openat2 = -1;
volatile const __s32 nr_creat = -1;
volatile const __s32 nr_execve = -1;
volatile const __s32 nr_execveat = -1;
/* ...and of the calls that install a seccomp filter, whose own exit is not an anomaly. */
volatile const __s32 nr_seccomp = -1;
volatile const __s32 nr_prctl = -1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tgid */
	__type(value, struct task_info);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct syscall_bits);
} syscalls SEC(".maps");

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

/* Dedup of file observations: an eviction only costs a duplicate event, never a loss. */
struct file_key {
	__u64 dentry;
	__u64 mnt;
	__u64 ino;
	__u32 target;
	__u32 access;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct file_key);
	__type(value, __u8);
} files_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cap_key);
	__type(value, __u64);
} caps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RANGES);
	__type(key, __u32);
	__type(value, struct addr_range);
} ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct net_key);
	__type(value, __u64);
} net SEC(".maps");

/* Containers whose processes become targets when they install a seccomp filter. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, struct container_key);
	__type(value, __u32);
} containers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} container_joins SEC(".maps");

/* Watch mode: the profile of each watched target, and a count per anomaly key (the
 * user-space report reads the final counts from here, so a dropped event still leaves
 * its anomaly counted). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct watch_policy);
} watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct anomaly_key);
	__type(value, struct anomaly_state);
} anomalies SEC(".maps");

/* Per-CPU scratch space: too large for the 512-byte BPF stack. */
struct scratch {
	struct file_event fe;
	struct anomaly_event ae;
	char pad[256]; /* lets a masked offset plus a name length stay in bounds */
	__u64 names[MAX_COMPONENTS];
	__u32 lens[MAX_COMPONENTS];
	struct exec_event ee;
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

static __always_inline struct task_info *tracked(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
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

/* ---- paths ---------------------------------------------------------------------- */

struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 n;
	__u32 done;
};

/* One step up the dentry tree, crossing mount points, until the task's root. */
static long walk_step(__u32 i, void *arg)
{
	struct walk_ctx *c = arg;
	struct scratch *s = scratch();
	if (!s)
		return 1;
	/* Pointers copied to locals first: CO-RE reads through a member of the context
	 * struct produce a bad relocation. */
	struct dentry *dentry = c->dentry;
	struct vfsmount *vfsmnt = c->vfsmnt;
	if (dentry == c->root_dentry && vfsmnt == c->root_mnt) {
		c->done = 1;
		return 1;
	}
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		struct mount *m = container_of(vfsmnt, struct mount, mnt);
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);
		if (dentry != mnt_root || m == mp) {
			/* The top of the mount tree without meeting the task's root: the
			 * file lies outside it (or is detached). Keep what we have. */
			c->done = 1;
			return 1;
		}
		c->dentry = BPF_CORE_READ(m, mnt_mountpoint);
		c->vfsmnt = &mp->mnt;
		return 0;
	}
	__u32 n = c->n;
	if (n >= MAX_COMPONENTS)
		return 1;
	s->names[n] = (__u64)BPF_CORE_READ(dentry, d_name.name);
	s->lens[n] = BPF_CORE_READ(dentry, d_name.len);
	c->n = n + 1;
	c->dentry = parent;
	return 0;
}

struct copy_ctx {
	__u32 n;
	__u32 off;
	__u32 truncated;
};

/* Copies component n-1-i after the ones already copied: root first. */
static long copy_step(__u32 i, void *arg)
{
	struct copy_ctx *c = arg;
	struct scratch *s = scratch();
	if (!s || i >= c->n)
		return 1;
	__u32 idx = c->n - 1 - i;
	if (idx >= MAX_COMPONENTS)
		return 1;
	__u32 len = s->lens[idx];
	if (len > 255)
		len = 255;
	if (c->off + 1 + len >= PATH_MAX_LEN) {
		c->truncated = 1;
		return 1;
	}
	__u32 off = c->off & (PATH_MAX_LEN - 1);
	s->fe.path[off] = '/';
	off = (off + 1) & (PATH_MAX_LEN - 1);
	bpf_probe_read_kernel(&s->fe.path[off], len, (void *)s->names[idx]);
	c->off = off + len;
	return 0;
}

/* Resolves path (as the current task sees it, relative to its root) into s->fe and
 * returns its length, 0 on failure. */
static __noinline __u32 resolve_path(struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct scratch *s = scratch();
	if (!s || !dentry || !vfsmnt)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk_ctx w = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
	};
	bpf_loop(MAX_COMPONENTS * 2, walk_step, &w, 0);
	struct copy_ctx c = {.n = w.n};
	if (!w.done)
		c.truncated = 1; /* deeper than MAX_COMPONENTS */
	bpf_loop(MAX_COMPONENTS, copy_step, &c, 0);
	if (c.off == 0) {
		s->fe.path[0] = '/';
		c.off = 1;
	}
	s->fe.flags = c.truncated ? FE_TRUNCATED : 0;
	if (c.truncated)
		count(CNT_PATH_TRUNCATED);
	return c.off;
}

/* Emits a file observation for f unless the same (file, access) was already seen.
 * target_flags is the target in its low half and the task flags in its high half. */
static __noinline int emit_file(struct file *f, __u64 target_flags, __u32 access)
{
	__u32 target = (__u32)target_flags;
	__u32 runtime = (target_flags >> 32) & TASK_RUNTIME;
	if (!f)
		return 0;
	struct dentry *dentry = BPF_CORE_READ(f, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(f, f_path.mnt);
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	__u32 is_dir = (BPF_CORE_READ(inode, i_mode) & S_IFMT) == S_IFDIR;
	if (is_dir)
		access = ACC_LIST;
	struct file_key k = {
		.dentry = (__u64)dentry,
		.mnt = (__u64)vfsmnt,
		.ino = BPF_CORE_READ(inode, i_ino),
		.target = target,
		/* The runtime's access must not hide the target's own later one. */
		.access = access | (runtime ? FE_RUNTIME << 8 : 0),
	};
	if (bpf_map_lookup_elem(&files_seen, &k))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&files_seen, &k, &one, BPF_ANY);

	__u32 len = resolve_path(dentry, vfsmnt);
	struct scratch *s = scratch();
	if (!s || len == 0 || len > PATH_MAX_LEN)
		return 0;
	s->fe.type = EV_FILE;
	s->fe.target = target;
	s->fe.pid = bpf_get_current_pid_tgid();
	s->fe.access = access;
	if (is_dir)
		s->fe.flags |= FE_DIR;
	if (runtime)
		s->fe.flags |= FE_RUNTIME;
	s->fe.len = len;
	__u64 size = offsetof(struct file_event, path) + len;
	if (size > sizeof(struct file_event))
		size = sizeof(struct file_event);
	if (bpf_ringbuf_output(&events, &s->fe, size, 0)) {
		count(CNT_RINGBUF_DROP);
		/* Forget the key, so a later access retries the observation. */
		bpf_map_delete_elem(&files_seen, &k);
	}
	return 0;
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

/* ---- syscalls -------------------------------------------------------------------- */

static __always_inline void record_net(__u32 target, __u16 kind, __u16 family, __u32 type,
				       __u32 protocol, __u32 port)
{
	struct net_key k = {.target = target, .kind = kind, .family = family, .type = type,
			    .protocol = protocol, .port = port};
	__u64 *v = bpf_map_lookup_elem(&net, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(&net, &k, &one, BPF_NOEXIST) == -7 /* E2BIG */)
		count(CNT_NET_FULL);
}

static __always_inline __u16 bound_port(const void *uaddr)
{
	__u16 family = 0, port = 0;
	bpf_probe_read_user(&family, sizeof(family), uaddr);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	bpf_probe_read_user(&port, sizeof(port), uaddr + 2);
	return __builtin_bswap16(port);
}

static __always_inline void on_bind(__u32 target, const void *uaddr)
{
	__u16 family = 0;
	bpf_probe_read_user(&family, sizeof(family), uaddr);
	__u16 port = bound_port(uaddr);
	if (port)
		record_net(target, NET_BIND, family, 0, 0, port);
}

static __always_inline void on_listen(__u32 target, struct task_struct *task, long fd)
{
	struct file *f = fd_file(task, fd);
	if (!f)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (family == AF_INET || family == AF_INET6)
		record_net(target, NET_LISTEN, family, 0, 0, port);
}

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

/* The work for a tracked task: mark the syscall, then look at the few syscalls whose
 * arguments tailor learns from. Only targets get here. */
static __noinline int on_target_syscall(struct pt_regs *regs, long nr, struct task_struct *task,
					__u64 target_flags, __u64 arch_flags)
{
	__u32 target = (__u32)target_flags;
	__u32 arch = syscall_arch(arch_flags, &nr);
	if (nr < 0 || nr >= SC_MAX) {
		count(CNT_BAD_NR);
		return 0;
	}
	struct syscall_bits *b = bpf_map_lookup_elem(&syscalls, &target);
	if (!b || arch >= NR_ARCHES)
		return 0;
	__u64 bit = 1ULL << (nr & 63);
	__u32 w = (nr >> 6) & (SC_WORDS - 1);
	/* Read before the atomic: the bit is almost always set already. */
	if (!(b->bits[arch][w] & bit))
		__sync_fetch_and_or(&b->bits[arch][w], bit);

	if (arch > 1)
		return 0;
	__u32 compat = arch;
	if (nr == nr_mmap[compat & 1]) {
		__u64 prot = arg(regs, compat, 2), flags = arg(regs, compat, 3);
		long fd = (int)arg(regs, compat, 4);
		if ((prot & PROT_EXEC) && !(flags & MAP_ANONYMOUS) && fd >= 0)
			emit_file(fd_file(task, fd), target_flags, ACC_MMAP_EXEC);
	} else if (nr == nr_socket[compat & 1]) {
		record_net(target, NET_SOCKET, arg(regs, compat, 0), arg(regs, compat, 1) & 0xff,
			   arg(regs, compat, 2), 0);
	} else if (nr == nr_bind[compat & 1]) {
		on_bind(target, (const void *)arg(regs, compat, 1));
	} else if (nr == nr_listen[compat & 1]) {
		on_listen(target, task, arg(regs, compat, 0));
	} else if (compat && nr == nr_socketcall) {
		/* socketcall(call, unsigned long args[]): args are 32-bit words. */
		__u32 call = arg(regs, compat, 0);
		__u32 a[3] = {};
		bpf_probe_read_user(a, sizeof(a), (const void *)arg(regs, compat, 1));
		if (call == 1 /* SYS_SOCKET */)
			record_net(target, NET_SOCKET, a[0], a[1] & 0xff, a[2], 0);
		else if (call == 2 /* SYS_BIND */)
			on_bind(target, (const void *)(unsigned long)a[1]);
		else if (call == 4 /* SYS_LISTEN */)
			on_listen(target, task, a[0]);
	}
	return 0;
}

/* sys_enter runs for every syscall of every task on the host: the cheapest test
 * (is this thread under a seccomp filter?) comes first, the map lookup second. tp_btf
 * reads task fields directly; the raw_tp twin serves kernels without it. */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	return on_target_syscall(regs, id, task, t->target | ((__u64)t->flags << 32), ARCH_FLAGS(task));
}

SEC("raw_tp/sys_enter")
int sys_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	return on_target_syscall((struct pt_regs *)ctx->args[0], ctx->args[1], task,
				 t->target | ((__u64)t->flags << 32), ARCH_FLAGS_CORE(task));
}

/* An empty sys_enter program: the benchmark's yardstick for what attaching anything to
 * sys_enter costs. Never attached by the tracer itself. */
SEC("tp_btf/sys_enter")
int BPF_PROG(empty_sys_enter)
{
	return 0;
}

/* ---- watch mode: anomalies --------------------------------------------------------- */

/* Counts one occurrence of an anomaly and reports it unless the same key was reported
 * less than ANOMALY_INTERVAL_NS ago: a looping target cannot flood the ring buffer,
 * and the count in `anomalies` keeps every repeat. The caller filled s->ae.path and
 * s->ae.len (0 when the anomaly has no path), and for paths nr, dirfd and open_flags. */
static __noinline int emit_anomaly(__u32 target, __u32 kind_arch, __u64 value, long ret,
				   __u32 task_flags)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	struct anomaly_key k = {.target = target, .kind = kind_arch >> 16, .arch = kind_arch & 0xffff,
				.value = value};
	__u64 now = bpf_ktime_get_ns();
	__u64 n = 1;
	struct anomaly_state *st = bpf_map_lookup_elem(&anomalies, &k);
	if (st) {
		n = __sync_fetch_and_add(&st->count, 1) + 1;
		if (now - st->last_ns < ANOMALY_INTERVAL_NS)
			return 0;
		st->last_ns = now;
	} else {
		struct anomaly_state first = {.count = 1, .last_ns = now};
		if (bpf_map_update_elem(&anomalies, &k, &first, BPF_NOEXIST)) {
			st = bpf_map_lookup_elem(&anomalies, &k);
			if (st) {
				/* Another CPU reported the same key first. */
				__sync_fetch_and_add(&st->count, 1);
				return 0;
			}
			/* The map is full: report every occurrence rather than none. */
			count(CNT_ANOMALIES_FULL);
		}
	}
	struct anomaly_event *e = &s->ae;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->type = EV_ANOMALY;
	e->target = target;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->kind = k.kind;
	e->arch = k.arch;
	e->flags = task_flags;
	e->ret = ret;
	e->value = value;
	e->count = n;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__u32 len = e->len;
	if (len > PATH_MAX_LEN)
		len = PATH_MAX_LEN;
	__u64 size = offsetof(struct anomaly_event, path) + len;
	if (size > sizeof(struct anomaly_event))
		size = sizeof(struct anomaly_event);
	if (bpf_ringbuf_output(&events, e, size, 0))
		count(CNT_RINGBUF_DROP);
	return 0;
}

/* Clears the path part of the scratch anomaly event for an anomaly without a path, so
 * nothing of an earlier refused path is sent with it. Only called once an anomaly is
 * found: watched syscalls that keep to the profile never touch the scratch space.
 * Returns 0, or 1 when there is no scratch space. */
static __always_inline int no_path(long nr)
{
	struct scratch *s = scratch();
	if (!s)
		return 1;
	s->ae.len = 0;
	s->ae.truncated = 0;
	s->ae.nr = nr;
	s->ae.dirfd = 0;
	s->ae.open_flags = 0;
	return 0;
}

struct hash_ctx {
	__u64 h;
	__u32 len;
};

/* FNV-1a over the denied path, so each path is its own anomaly key. */
static long hash_step(__u32 i, void *arg)
{
	struct hash_ctx *c = arg;
	struct scratch *s = scratch();
	if (!s || i >= c->len)
		return 1;
	c->h ^= (__u8)s->ae.path[i & (PATH_MAX_LEN - 1)];
	c->h *= 1099511628211ULL;
	return 0;
}

/* Reports an open or execve the kernel refused (Landlock, AppArmor, or a permission
 * the profile's capabilities no longer grant), with the path as the target gave it. */
static __noinline int denied_path(struct pt_regs *regs, long nr, long ret, __u64 target_flags)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	int path_arg = -1;
	__u32 kind = AN_FILE_DENIED;
	long dirfd = AT_FDCWD;
	__u64 oflags = 0;
	if (nr == nr_openat) {
		path_arg = 1;
		dirfd = (int)arg(regs, 0, 0);
		oflags = arg(regs, 0, 2);
	} else if (nr == nr_openat2) {
		path_arg = 1;
		dirfd = (int)arg(regs, 0, 0);
		/* struct open_how starts with its __u64 flags. */
		bpf_probe_read_user(&oflags, sizeof(oflags), (const void *)arg(regs, 0, 2));
	} else if (nr == nr_open) {
		path_arg = 0;
		oflags = arg(regs, 0, 1);
	} else if (nr == nr_creat) {
		path_arg = 0;
		oflags = O_CREAT | O_WRONLY | O_TRUNC;
	} else if (nr == nr_execve) {
		path_arg = 0;
		kind = AN_EXEC_DENIED;
	} else if (nr == nr_execveat) {
		path_arg = 1;
		dirfd = (int)arg(regs, 0, 0);
		kind = AN_EXEC_DENIED;
	}
	if (path_arg < 0)
		return 0;
	const char *upath = (const char *)arg(regs, 0, path_arg);
	long n = bpf_probe_read_user_str(s->ae.path, PATH_MAX_LEN, upath);
	s->ae.len = n > 0 ? n - 1 : 0;
	s->ae.truncated = n == PATH_MAX_LEN;
	s->ae.nr = nr;
	s->ae.dirfd = dirfd;
	s->ae.open_flags = oflags;
	struct hash_ctx h = {.h = 14695981039346656037ULL, .len = s->ae.len};
	bpf_loop(PATH_MAX_LEN, hash_step, &h, 0);
	return emit_anomaly((__u32)target_flags, kind << 16, h.h, ret, target_flags >> 32);
}

/* At syscall exit, for a watched target: the syscall against the profile (a syscall the
 * enforcing filter denies never reaches sys_enter, so exit is where it shows, with the
 * errno the filter gave), the family of a new socket, and refused opens and execs. */
static __noinline int on_watched_exit(struct pt_regs *regs, long nr, long ret, __u64 target_flags,
				      __u64 arch_flags)
{
	__u32 target = (__u32)target_flags;
	struct watch_policy *w = bpf_map_lookup_elem(&watch, &target);
	if (!w || !w->enabled)
		return 0;
	__u32 arch = syscall_arch(arch_flags, &nr);
	if (nr < 0 || nr >= SC_MAX || arch >= NR_ARCHES)
		return 0;
	__u64 bit = 1ULL << (nr & 63);
	__u32 word = (nr >> 6) & (SC_WORDS - 1);
	/* A socket is judged by its family, whether socket itself is allowed or not: the
	 * family is what tells a raw packet socket from the target's usual ones. */
	if (arch <= 1 && nr == nr_socket[arch & 1]) {
		__u64 family = arg(regs, arch, 0);
		if (!(w->allowed[arch][word] & bit) || family >= 64 ||
		    !(w->families & (1ULL << family)))
			return no_path(nr) ?: emit_anomaly(target, (AN_SOCKET << 16) | arch, family, ret,
					    target_flags >> 32);
		return 0;
	}
	if (!(w->allowed[arch][word] & bit)) {
		/* The call that installed the watched filter returns under it: it is the
		 * launcher's or the runtime's, not the target's. A filter install the
		 * profile does not allow fails under the enforcing filter, so ret == 0
		 * singles out that first one. */
		if (ret == 0 && arch == 0 &&
		    ((nr == nr_seccomp && arg(regs, 0, 0) == SECCOMP_SET_MODE_FILTER) ||
		     (nr == nr_prctl && arg(regs, 0, 0) == PR_SET_SECCOMP)))
			return 0;
		return no_path(nr) ?: emit_anomaly(target, (AN_SYSCALL << 16) | arch, nr, ret,
						   target_flags >> 32);
	}
	if (arch == 0 && (ret == -EACCES || ret == -EPERM))
		return denied_path(regs, nr, ret, target_flags);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	return on_watched_exit(regs, exit_nr(regs), ret, t->target | ((__u64)t->flags << 32),
			       ARCH_FLAGS(task));
}

SEC("raw_tp/sys_exit")
int sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	return on_watched_exit(regs, exit_nr(regs), ctx->args[1], t->target | ((__u64)t->flags << 32),
			       ARCH_FLAGS_CORE(task));
}

/* ---- opens: the opened struct file gives the real path -------------------------- */

/* Per-syscall exit tracepoints fire only for the syscalls named, so hosts pay nothing
 * on other syscalls. They do not fire for 32-bit compat calls (documented limit). */
struct sys_exit_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	long ret;
};

static __always_inline int on_open_exit(long ret)
{
	if (ret < 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	struct file *f = fd_file(task, ret);
	if (!f)
		return 0;
	__u32 flags = BPF_CORE_READ(f, f_flags);
	__u32 fmode = BPF_CORE_READ(f, f_mode);
	__u32 access = 0;
	switch (flags & O_ACCMODE) {
	case O_WRONLY: access = ACC_WRITE; break;
	case O_RDWR: access = ACC_READ | ACC_WRITE; break;
	default: access = ACC_READ;
	}
	if (fmode & FMODE_CREATED)
		access |= ACC_CREATE;
	return emit_file(f, t->target | ((__u64)t->flags << 32), access);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct sys_exit_args *ctx) { return on_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct sys_exit_args *ctx) { return on_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct sys_exit_args *ctx) { return on_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct sys_exit_args *ctx) { return on_open_exit(ctx->ret); }

/* ---- process tree ------------------------------------------------------------------ */

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid)
		return 0; /* a new thread: it shares its process's entry */
	struct task_info *t = bpf_map_lookup_elem(&tasks, &ptgid);
	if (!t)
		return 0;
	struct task_info c = *t;
	if (bpf_map_update_elem(&tasks, &ctgid, &c, BPF_ANY))
		count(CNT_TASKS_FULL);
	return 0;
}

/* A thread group leaves the map when its last thread exits. */
static __always_inline int on_exit(struct task_struct *p)
{
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&tasks, &tgid);
	return 0;
}

static __always_inline int on_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct task_info *t = bpf_map_lookup_elem(&tasks, &tgid);
	if (!t || !under_filter(p))
		return 0;
	struct scratch *s = scratch();
	if (!s)
		return 0;
	struct exec_event *e = &s->ee;
	e->type = EV_EXEC;
	e->target = t->target;
	e->pid = tgid;
	e->ppid = BPF_CORE_READ(p, real_parent, tgid);
	e->flags = t->flags;
	__builtin_memcpy(e->by_comm, t->comm, COMM_LEN);
	bpf_probe_read_kernel_str(e->comm, COMM_LEN, p->comm);
	__builtin_memcpy(t->comm, e->comm, COMM_LEN);
	const char *filename = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	e->interp[0] = 0;
	if (interp != filename)
		bpf_probe_read_kernel_str(e->interp, sizeof(e->interp), interp);
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		count(CNT_RINGBUF_DROP);
	/* From its execve on, the runtime's process is the target's entrypoint. */
	t->flags &= ~TASK_RUNTIME;
	/* The file the kernel actually runs (the interpreter, for a script). */
	emit_file(BPF_CORE_READ(bprm, file), t->target | ((__u64)t->flags << 32), ACC_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(fork_btf, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child);
}

SEC("raw_tp/sched_process_fork")
int fork_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fork((struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1]);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *p)
{
	return on_exit(p);
}

SEC("raw_tp/sched_process_exit")
int exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exit((struct task_struct *)ctx->args[0]);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return on_exec(p, bprm);
}

SEC("raw_tp/sched_process_exec")
int exec_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exec((struct task_struct *)ctx->args[0], (struct linux_binprm *)ctx->args[2]);
}

/* ---- capabilities ------------------------------------------------------------------ */

struct range_ctx {
	__u64 ip;
	__u32 kind;
};

static long range_step(__u32 i, void *arg)
{
	struct range_ctx *c = arg;
	struct addr_range *r = bpf_map_lookup_elem(&ranges, &i);
	if (!r || r->kind == 0)
		return 1;
	if (c->ip >= r->start && c->ip < r->end) {
		c->kind = r->kind;
		return 1;
	}
	return 0;
}

struct stack_ctx {
	__u32 depth;
	__u32 probed;
	__u32 seen_plumbing;
	__u64 caller;
};

/* Classifies one frame: a no-audit function anywhere on the stack makes the check a
 * probe; the first frame after the capability plumbing is the caller. */
static long stack_step(__u32 i, void *arg)
{
	struct stack_ctx *c = arg;
	struct scratch *s = scratch();
	if (!s || i >= c->depth || i >= CAP_STACK_DEPTH)
		return 1;
	struct range_ctx r = {.ip = s->stack[i]};
	bpf_loop(MAX_RANGES, range_step, &r, 0);
	if (r.kind == RANGE_NOAUDIT)
		c->probed = 1;
	if (r.kind == RANGE_PLUMBING || r.kind == RANGE_NOAUDIT)
		c->seen_plumbing = 1;
	else if (c->seen_plumbing && !c->caller)
		c->caller = r.ip;
	return 0;
}

static __always_inline int on_capable(void *ctx, const struct cred *cred, int cap, int ret,
				      int probed_by_opts)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	struct task_info *t = tracked();
	if (!t)
		return 0;
	struct scratch *s = scratch();
	if (!s)
		return 0;
	long n = bpf_get_stack(ctx, s->stack, sizeof(s->stack), 0);
	struct stack_ctx sc = {.depth = n > 0 ? (__u64)n / 8 : 0};
	bpf_loop(CAP_STACK_DEPTH, stack_step, &sc, 0);
	struct cap_key k = {
		.target = t->target,
		.cap = cap,
		.granted = ret == 0,
		.probed = sc.probed || probed_by_opts,
		.runtime = (t->flags & TASK_RUNTIME) != 0,
		/* A kernel path that borrows other credentials (overlayfs checks its lower
		 * layers with the mounter's) asks with those, not the task's real ones: the
		 * answer does not depend on the task's capabilities. */
		.overridden = cred != BPF_CORE_READ(task, real_cred),
		.caller = sc.caller,
	};
	__u64 *v = bpf_map_lookup_elem(&caps, &k);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else {
		__u64 one = 1;
		if (bpf_map_update_elem(&caps, &k, &one, BPF_NOEXIST) == -7 /* E2BIG */)
			count(CNT_CAPS_FULL);
	}
	/* Watch mode: an audited check for a capability the profile does not keep. A
	 * probe (no-audit check) is never a need, so never an anomaly either. */
	__u32 target = t->target;
	struct watch_policy *w = bpf_map_lookup_elem(&watch, &target);
	if (w && w->enabled && !k.probed && !k.runtime && !k.overridden && (cap < 0 || cap >= 64 || !(w->caps & (1ULL << cap)))) {
		return no_path(-1) ?: emit_anomaly(target, AN_CAP << 16, cap, ret, t->flags);
	}
	return 0;
}

/* capability/cap_capable (Linux 6.14+) carries the result, denials included. */
SEC("tp_btf/cap_capable")
int BPF_PROG(capable_btf, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	return on_capable(ctx, cred, cap, ret, 0);
}

/* Older kernels: cap_capable(cred, ns, cap, opts) as a kprobe/kretprobe pair would be
 * needed for the result; the kprobe alone sees the options, so it records the check
 * with its no-audit flag and counts it as granted only when the task holds the
 * capability in its effective set. */
#define CAP_OPT_NOAUDIT 0x2
SEC("kprobe/cap_capable")
int BPF_KPROBE(capable_kprobe, const struct cred *cred, struct user_namespace *ns, int cap,
	       unsigned int opts)
{
	__u32 word = cap >> 5, bit = 1u << (cap & 31);
	__u32 eff[2] = {};
	bpf_probe_read_kernel(eff, sizeof(eff), &cred->cap_effective);
	int ret = (word < 2 && (eff[word & 1] & bit)) ? 0 : -1;
	return on_capable(ctx, cred, cap, ret, (opts & CAP_OPT_NOAUDIT) != 0);
}

/* ---- containers: a process becomes a target when it installs a seccomp filter inside
 * the cgroup of a container tailor is learning. runc installs the filter just before it
 * execs the entrypoint (or before dropping privileges), so everything from that moment on
 * is recorded and nothing of runc's set-up before it. */

static __always_inline int match_cgroup(struct kernfs_node *kn, __u32 *target)
{
	struct container_key k = {};
	char name[80] = {};
	const char *p = BPF_CORE_READ(kn, name);
	if (bpf_probe_read_kernel_str(name, sizeof(name), p) <= 0)
		return 0;
	/* "<id>" (cgroupfs driver) or "docker-<id>.scope" (systemd driver). */
	int off = 0;
	if (name[0] == 'd' && name[1] == 'o' && name[2] == 'c' && name[3] == 'k' &&
	    name[4] == 'e' && name[5] == 'r' && name[6] == '-')
		off = 7;
	if (off)
		__builtin_memcpy(k.id, name + 7, 64);
	else
		__builtin_memcpy(k.id, name, 64);
	__u32 *v = bpf_map_lookup_elem(&containers, &k);
	if (!v)
		return 0;
	*target = *v;
	return 1;
}

static __always_inline int on_filter_installed(long ret)
{
	if (ret != 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct task_info *t = bpf_map_lookup_elem(&tasks, &tgid);
	if (t)
		return 0;
	__u32 target = 0;
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	int found = match_cgroup(BPF_CORE_READ(cset, dfl_cgrp, kn), &target);
	if (!found) {
		int mem = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
		if (mem >= 0 && mem < 12) {
			struct cgroup_subsys_state *css = 0;
			bpf_probe_read_kernel(&css, sizeof(css), &cset->subsys[mem]);
			if (css)
				found = match_cgroup(BPF_CORE_READ(css, cgroup, kn), &target);
		}
	}
	if (!found)
		return 0;
	struct task_info n = {.target = target, .flags = TASK_RUNTIME};
	/* The container's init is the first of its processes to install a filter; any
	 * later one came through docker exec (the init's own tree inherits entries
	 * through fork instead and never gets here). */
	__u32 *joins = bpf_map_lookup_elem(&container_joins, &target);
	if (joins && __sync_fetch_and_add(joins, 1) > 0)
		n.flags |= TASK_DOCKER_EXEC;
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	if (bpf_map_update_elem(&tasks, &tgid, &n, BPF_NOEXIST))
		count(CNT_TASKS_FULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_seccomp")
int exit_seccomp(struct sys_exit_args *ctx) { return on_filter_installed(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_prctl")
int exit_prctl(struct sys_exit_args *ctx) { return on_filter_installed(ctx->ret); }
