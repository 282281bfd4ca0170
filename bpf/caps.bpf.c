//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capability checks. capability/cap_capable (Linux 6.14+) carries the result, denials
 * included; older kernels get a kprobe on cap_capable. Neither carries a flag for
 * no-audit probes on every kernel (security_vm_enough_memory_mm asks for CAP_SYS_ADMIN
 * on every mmap), so the kernel stack, matched against address ranges user space takes
 * from /proc/kallsyms, tells probes from real checks: a probe never becomes a need.
 */

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
	struct watch_policy *w = watch_of(target);
	if (w && !k.probed && !k.runtime && !k.overridden && (cap < 0 || cap >= 64 || !(w->caps & (1ULL << cap)))) {
		return emit_anomaly(target, AN_CAP << 16, cap, ret, t->flags);
	}
	return 0;
}

/* capability/cap_capable (Linux 6.14+) carries the result, denials included. */
SEC("tp_btf/cap_capable")
int BPF_PROG(capable_btf, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	/* Every capability check of every task comes here: untracked ones leave after
	 * one plain load, as at sys_enter (on_capable's own test is a probe read). */
	if (bpf_get_current_task_btf()->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
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

