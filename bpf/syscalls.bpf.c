//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The two programs every syscall of every task on the host runs through: raw
 * sys_enter and sys_exit, as tp_btf where the kernel allows it (cheaper: task fields
 * are read directly) and raw_tp otherwise. They also serve 32-bit compat calls, which
 * the per-syscall tracepoints miss. Both put the cheapest test first (is this thread
 * under a seccomp filter?), then the tracked-tgid bitmap, then the `tasks` lookup:
 * untracked processes leave after one load and one compare, or two more loads (the
 * bitmap's word, inlined) if they run under some filter, as every container does.
 *
 * sys_enter marks the syscall in the target's bitmap (none can be lost to a full
 * buffer) and reads the few arguments learned at entry (mmap of a file with PROT_EXEC,
 * socket, bind, listen). sys_exit handles path and network operations (fileops.bpf.c),
 * watch mode (watch.bpf.c), and seccomp filter installs of processes of watched or
 * learned containers (containers.bpf.c).
 */

/* By target slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct syscall_bits);
} syscalls SEC(".maps");

/* The work for a tracked task at entry: mark the syscall, then look at the few
 * syscalls whose arguments tailor learns from. Only targets get here. */
static __noinline int on_target_syscall(struct pt_regs *regs, long nr, struct task_struct *task,
					__u64 target_flags, __u64 arch_flags)
{
	__u32 target = (__u32)target_flags;
	__u32 arch = syscall_arch(arch_flags, &nr);
	if (nr < 0 || nr >= SC_MAX) {
		count(CNT_BAD_NR);
		return 0;
	}
	__u32 slot = target_slot(target);
	struct syscall_bits *b = bpf_map_lookup_elem(&syscalls, &slot);
	if (!b || arch >= NR_ARCHES)
		return 0;
	if (b->target != target) {
		/* A process of a released target: one that forked while user space was
		 * deleting the target's processes. It is nobody's now. */
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		bpf_map_delete_elem(&tasks, &tgid);
		return 0;
	}
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

/* The tp_btf programs read the task's fields (seccomp mode, tgid, arch flags) and the
 * syscall number from pt_regs with plain loads, which cost less than the helper calls
 * (bpf_get_current_pid_tgid, bpf_probe_read_kernel) the raw_tp programs need. */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf, struct pt_regs *regs, long id)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
	__u32 tgid = task->tgid;
	if (!maybe_tracked(tgid))
		return 0;
	struct task_info *t = bpf_map_lookup_elem(&tasks, &tgid);
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

/* Its sys_exit twin: the pair is the floor of any tracer that, like tailor, needs both
 * hooks (what a syscall asked for, and what it returned). */
SEC("tp_btf/sys_exit")
int BPF_PROG(empty_sys_exit)
{
	return 0;
}

/* sys_exit of a task under a seccomp filter: nr is the syscall, tgid the task's. */
static __noinline int on_exit_filtered(struct pt_regs *regs, long nr, long ret, __u64 arch_flags, __u32 tgid)
{
	struct task_info *t = maybe_tracked(tgid) ? bpf_map_lookup_elem(&tasks, &tgid) : 0;
	if (!t) {
		/* Not a target (yet): a process of a learned or watched container joins
		 * when it installs its filter. */
		if (ret == 0 && (nr == nr_seccomp[0] || nr == nr_prctl[0] || nr == nr_seccomp[1] || nr == nr_prctl[1]))
			return on_filter_installed(ret);
		return 0;
	}
	__u64 target_flags = t->target | ((__u64)t->flags << 32);
	__u32 arch = syscall_arch(arch_flags, &nr);
	if (nr < 0 || nr >= SC_MAX || arch >= NR_ARCHES)
		return 0;
	on_op_exit(regs, nr, arch, ret, target_flags);
	return on_watched_exit(regs, nr, arch, ret, target_flags);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
#if defined(__TARGET_ARCH_x86)
	long nr = regs->orig_ax;
#else
	long nr = exit_nr(regs);
#endif
	return on_exit_filtered(regs, nr, ret, ARCH_FLAGS(task), task->tgid);
}

SEC("raw_tp/sys_exit")
int sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (!under_filter(task))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	return on_exit_filtered(regs, exit_nr(regs), ctx->args[1], ARCH_FLAGS_CORE(task),
				bpf_get_current_pid_tgid() >> 32);
}
