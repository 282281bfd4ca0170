//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The process tree. A target's thread groups live in `tasks`: a child inherits its
 * parent's entry at fork (sched_process_fork, so no descendant is missed however fast
 * it runs), and a group leaves when its last thread exits. Each exec is reported with
 * the path as given, made absolute against the working directory (a build that runs
 * ./prog needs /work/prog in its profile), and the file the kernel actually runs.
 */

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid)
		return 0; /* a new thread: it shares its process's entry */
	if (!maybe_tracked(ptgid))
		return 0;
	struct task_info *t = bpf_map_lookup_elem(&tasks, &ptgid);
	if (!t)
		return 0;
	struct task_info c = *t;
	mark_tracked(ctgid);
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
	if (!maybe_tracked(tgid))
		return 0;
	bpf_map_delete_elem(&tasks, &tgid);
	unmark_tracked(tgid);
	return 0;
}

/* Writes the executed path into e->filename: as given when absolute, else joined to
 * the working directory. */
static __noinline int exec_filename(struct exec_event *e, const char *filename)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	__u64 h = 0;
	long len = read_str(filename, 0, 1, &h);
	if (len <= 0)
		return 0;
	s->fe.flags = 0;
	__u32 n = join_path(AT_FDCWD, 0, len, 0);
	if (n >= PATH_MAX_LEN) {
		n = PATH_MAX_LEN - 1;
		e->truncated = 1;
	}
	if (s->fe.flags & FE_TRUNCATED)
		e->truncated = 1;
	bpf_probe_read_kernel(e->filename, n & (PATH_MAX_LEN - 1), s->fe.path);
	e->filename[n & (PATH_MAX_LEN - 1)] = 0;
	return 0;
}

static __always_inline int on_exec(struct task_struct *p, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!maybe_tracked(tgid))
		return 0;
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
	e->truncated = 0;
	__builtin_memcpy(e->by_comm, t->comm, COMM_LEN);
	bpf_probe_read_kernel_str(e->comm, COMM_LEN, p->comm);
	__builtin_memcpy(t->comm, e->comm, COMM_LEN);
	const char *filename = BPF_CORE_READ(bprm, filename);
	const char *interp = BPF_CORE_READ(bprm, interp);
	e->filename[0] = 0;
	exec_filename(e, filename);
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
