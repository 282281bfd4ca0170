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
 * full buffer. Low-rate observations (files, path operations, execs, peers) go through
 * one ring buffer and are deduplicated in the kernel first; capabilities and sockets
 * are counted in hash maps. Everything that cannot be kept is counted in `counters`.
 *
 * One object, one file per concern, included below in dependency order:
 *   common      maps and helpers every concern uses
 *   paths       paths from dentries and from syscall arguments; file events
 *   net         sockets, binds, listens, connects, sends, accepts
 *   watch       watch mode: the profile in the kernel, anomaly counting
 *   fileops     path and network operations at sys_exit
 *   containers  a container's processes join when they install their filter
 *   syscalls    the sys_enter and sys_exit programs
 *   proc        fork, exit and exec
 *   caps        capability checks
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

/* Syscall numbers the programs look at, per table [native, compat]. Set from Go with
 * libseccomp's numbers before load; -1 where an architecture has no such syscall. The
 * path and network operations read at sys_exit are in the sysops map instead. */
volatile const __s32 nr_mmap[2] = {-1, -1};
volatile const __s32 nr_socket[2] = {-1, -1};
volatile const __s32 nr_bind[2] = {-1, -1};
volatile const __s32 nr_listen[2] = {-1, -1};
volatile const __s32 nr_socketcall = -1; /* i386 multiplexer, compat table only */
/* The calls that install a seccomp filter. */
volatile const __s32 nr_seccomp[2] = {-1, -1};
volatile const __s32 nr_prctl[2] = {-1, -1};

#include "common.bpf.c"
#include "paths.bpf.c"
#include "net.bpf.c"
#include "watch.bpf.c"
#include "fileops.bpf.c"
#include "containers.bpf.c"
#include "syscalls.bpf.c"
#include "proc.bpf.c"
#include "caps.bpf.c"

/* Never loaded: its argument names every enum of tracer.bpf.h, so that the object's
 * BTF, and through it bpf2go's -type, carries their constants to Go. */
struct btf_anchor {
	enum limits limits;
	enum access access;
	enum task_flag task_flag;
	enum event_type event_type;
	enum file_flag file_flag;
	enum counter_idx counter_idx;
	enum net_kind net_kind;
	enum range_kind range_kind;
	enum sysop_kind sysop_kind;
	enum anomaly_kind anomaly_kind;
};

SEC("raw_tp/btf_anchor")
int btf_anchor(struct btf_anchor *a)
{
	return 0;
}
