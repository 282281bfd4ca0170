//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Watch mode: a watched target is compared with its profile in the kernel, at sys_exit.
 * A syscall the enforcing filter denies never reaches sys_enter's program with its
 * arguments intact and shows its errno only at exit, so exit is where every refusal is
 * seen: syscalls outside the profile, sockets in families outside it, audited
 * capability checks it does not keep (from the capability tracepoint), and path
 * operations refused with EACCES/EPERM (fileops.bpf.c). Every occurrence is counted per
 * key in `anomalies`; each key is reported at most once a second, so a looping target
 * cannot flood the ring buffer, and the final counts are read from the map.
 */

/* By target slot. */
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

/* The watch policy of target, or NULL when it is not watched (or its slot now belongs
 * to another target). */
static __always_inline struct watch_policy *watch_of(__u32 target)
{
	__u32 slot = target_slot(target);
	struct watch_policy *w = bpf_map_lookup_elem(&watch, &slot);
	if (!w || !w->enabled || w->target != target)
		return 0;
	return w;
}

/* Counts one occurrence of an anomaly key; returns 1 when it is to be reported (the
 * first occurrence, or the first after ANOMALY_INTERVAL_NS), with *n the count so far. */
static __noinline int count_anomaly(__u32 target, __u32 kind_arch, __u64 value, __u64 *n)
{
	struct anomaly_key k = {.target = target, .kind = kind_arch >> 16, .arch = kind_arch & 0xffff,
				.value = value};
	__u64 now = bpf_ktime_get_ns();
	*n = 1;
	struct anomaly_state *st = bpf_map_lookup_elem(&anomalies, &k);
	if (st) {
		*n = __sync_fetch_and_add(&st->count, 1) + 1;
		if (now - st->last_ns < ANOMALY_INTERVAL_NS)
			return 0;
		st->last_ns = now;
		return 1;
	}
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
	return 1;
}

/* Counts an anomaly without a path and reports it when count_anomaly says so. */
static __noinline int emit_anomaly(__u32 target, __u32 kind_arch, __u64 value, long ret,
				   __u32 task_flags)
{
	__u64 n = 1;
	if (!count_anomaly(target, kind_arch, value, &n))
		return 0;
	struct scratch *s = scratch();
	if (!s)
		return 0;
	struct anomaly_event *e = &s->ae;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->type = EV_ANOMALY;
	e->target = target;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->kind = kind_arch >> 16;
	e->arch = kind_arch & 0xffff;
	e->flags = task_flags;
	e->ret = ret;
	e->value = value;
	e->count = n;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		count(CNT_RINGBUF_DROP);
	return 0;
}

/* At syscall exit, for a watched target: the syscall against the profile (with the
 * errno the filter gave) and the family of a new socket. */
static __noinline int on_watched_exit(struct pt_regs *regs, long nr, __u32 arch, long ret,
				      __u64 target_flags)
{
	__u32 target = (__u32)target_flags;
	struct watch_policy *w = watch_of(target);
	if (!w)
		return 0;
	__u64 bit = 1ULL << (nr & 63);
	__u32 word = (nr >> 6) & (SC_WORDS - 1);
	/* A socket is judged by its family, whether socket itself is allowed or not: the
	 * family is what tells a raw packet socket from the target's usual ones. */
	if (arch <= 1 && nr == nr_socket[arch & 1]) {
		__u64 family = arg(regs, arch, 0);
		if (!(w->allowed[arch & 1][word] & bit) || family >= 64 ||
		    !(w->families & (1ULL << family)))
			return emit_anomaly(target, (AN_SOCKET << 16) | arch, family, ret,
					    target_flags >> 32);
		return 0;
	}
	/* The caller checked arch; the barrier keeps the compiler from dropping the
	 * check the verifier needs to see here. */
	barrier_var(arch);
	if (arch >= NR_ARCHES || (w->allowed[arch][word] & bit))
		return 0;
	/* The container runtime's own code between installing the filter and executing
	 * the entrypoint (runc's Go runtime in a docker exec) is not the target: its
	 * calls are reported only when the filter refused them, since that breaks the
	 * start. */
	if (((target_flags >> 32) & TASK_RUNTIME) && ret != -EPERM && ret != -EACCES)
		return 0;
	/* The call that installed the watched filter returns under it: it is the
	 * launcher's or the runtime's, not the target's. A filter install the profile does
	 * not allow fails under the enforcing filter, so ret == 0 singles out that first
	 * one. */
	if (ret == 0 && arch <= 1 &&
	    ((nr == nr_seccomp[arch & 1] && arg(regs, arch, 0) == SECCOMP_SET_MODE_FILTER) ||
	     (nr == nr_prctl[arch & 1] && arg(regs, arch, 0) == PR_SET_SECCOMP)))
		return 0;
	return emit_anomaly(target, (AN_SYSCALL << 16) | arch, nr, ret, target_flags >> 32);
}
