//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Containers: a process becomes a target when it installs a seccomp filter inside the
 * cgroup of a container tailor is learning or watching. runc installs the filter just
 * before it execs the entrypoint (or before dropping privileges), so everything from
 * that moment on is recorded and nothing of runc's set-up before it. The install is
 * seen at the exit of seccomp(2) or prctl(PR_SET_SECCOMP), from the one sys_exit
 * program (syscalls.bpf.c), for tasks under a filter that are not yet targets.
 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, struct container_key);
	__type(value, __u32);
} containers SEC(".maps");

/* By target slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct join_state);
} container_joins SEC(".maps");


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

static __noinline int on_filter_installed(long ret)
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
	__u32 slot = target_slot(target);
	struct join_state *j = bpf_map_lookup_elem(&container_joins, &slot);
	if (j && j->target == target && __sync_fetch_and_add(&j->joins, 1) > 0)
		n.flags |= TASK_DOCKER_EXEC;
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	mark_tracked(tgid);
	if (bpf_map_update_elem(&tasks, &tgid, &n, BPF_NOEXIST))
		count(CNT_TASKS_FULL);
	return 0;
}
