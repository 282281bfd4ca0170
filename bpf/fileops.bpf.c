//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * File operations, seen at sys_exit where the result is known. There is no VFS
 * tracepoint for mkdir, unlink or rename, kprobes and fentry are not available on every
 * kernel tailor supports, and the per-syscall tracepoints do not fire for 32-bit compat
 * calls; so one sys_exit program looks each tracked syscall up in `sysops` (filled from
 * libseccomp's numbers per table) and reads the path arguments the entry names.
 *   - A successful open is resolved from the opened struct file (symlinks resolved).
 *   - Every other path operation, and every failed one, is the path as the process gave
 *     it, joined to the directory it is relative to. Failures are facts about the
 *     program, not needs, and are sent apart with their errno.
 *   - In watch mode, a refusal (EACCES/EPERM) is counted per (operation, path) in the
 *     `anomalies` map, every occurrence, and reported at most once a second.
 * Each distinct (target, operation, errno, path) is sent once: `ops_seen` keys on a hash
 * of the strings and the directory they are relative to, so repeats cost a hash, not a
 * path walk.
 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SC_MAX);
	__type(key, __u32); /* table * SC_MAX + syscall number */
	__type(value, struct sysop);
} sysops SEC(".maps");

struct op_key {
	__u32 target;
	__u32 access;
	__s32 err;
	__u32 flags;
	__u64 hash;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct op_key);
	__type(value, __u8);
} ops_seen SEC(".maps");

static __always_inline __u32 open_access(__u64 flags)
{
	switch (flags & O_ACCMODE) {
	case O_WRONLY: return ACC_WRITE;
	case O_RDWR: return ACC_READ | ACC_WRITE;
	default: return ACC_READ;
	}
}

/* A successful open: the new fd's struct file gives the real path. An open that asked
 * to create a regular file counts as a create even when the file was already there (a
 * stale pid file while learning): the next run may find it missing. A device opened
 * with O_CREAT (a shell's > /dev/null) is never created. */
static __always_inline int on_open_success(__u64 target_flags, long fd, __u64 oflags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(task, fd);
	if (!f)
		return 0;
	__u32 access = open_access(BPF_CORE_READ(f, f_flags));
	__u32 mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((BPF_CORE_READ(f, f_mode) & FMODE_CREATED) || ((oflags & O_CREAT) && (mode & S_IFMT) == S_IFREG))
		access |= ACC_CREATE;
	return emit_file(f, target_flags, access);
}

/* The directory a path argument is relative to, as a hash ingredient: the dentry of the
 * dirfd's file or of the working directory; 0 for an absolute path. */
static __always_inline __u64 dir_of(long dirfd, __u32 slot)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	char first = *(char *)s->str[slot & 1];
	if (first == '/')
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (dirfd == AT_FDCWD)
		return (__u64)BPF_CORE_READ(task, fs, pwd.dentry);
	struct file *f = fd_file(task, dirfd);
	return f ? (__u64)BPF_CORE_READ(f, f_path.dentry) : 0;
}

/* Sends the path operation pending in s->op (strings in s->str), unless already seen;
 * in watch mode a refusal is counted and reported as an anomaly instead. nr_arch is the
 * syscall number with its table in the high half. */
__noinline int emit_op(__u64 target_flags, __u32 access, long err, __u64 nr_arch)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	__u32 target = (__u32)target_flags;
	__u32 tflags = target_flags >> 32;
	long len1 = s->op.len[0], len2 = s->op.len[1];
	long d1 = s->op.dirfd[0], d2 = s->op.dirfd[1];
	__u64 h = s->op.hash ^ dir_of(d1, 0) * 31;
	if (len2 >= 0)
		h ^= dir_of(d2, 1) * 131;
	__u32 fflags = FE_ARGS | ((tflags & TASK_RUNTIME) ? FE_RUNTIME : 0) |
		       ((tflags & TASK_DOCKER_EXEC) ? FE_DOCKER_EXEC : 0);
	__u64 n = 1, value = 0;
	struct op_key k = {.target = target, .access = access, .err = err,
			   .flags = fflags & FE_RUNTIME, .hash = h};
	struct watch_policy *w = watch_of(target);
	if (w && (err == -EACCES || err == -EPERM)) {
		/* Every refusal counted; reported at most once a second per key. */
		value = h ^ ((__u64)access << 40) ^ ((__u64)(-err) << 56) ^ (nr_arch << 24);
		if (!count_anomaly(target, AN_FILE_DENIED << 16, value, &n))
			return 0;
		fflags |= FE_DENIED;
	} else {
		if (bpf_map_lookup_elem(&ops_seen, &k))
			return 0;
		__u8 one = 1;
		bpf_map_update_elem(&ops_seen, &k, &one, BPF_ANY);
	}
	s->fe.flags = fflags;
	__u32 l1 = join_path(d1, 0, len1, 0);
	__u32 l2 = 0;
	if (len2 >= 0 && l1 <= PATH_MAX_LEN) {
		s->fe.path[l1 & (FILE_PATHS_LEN - 1)] = 0;
		l2 = join_path(d2, 1, len2, l1 + 1);
	}
	s->fe.target = target;
	s->fe.pid = bpf_get_current_pid_tgid() >> 32;
	s->fe.access = access;
	s->fe.err = err;
	s->fe.nr = (__u32)nr_arch;
	s->fe.arch = nr_arch >> 32;
	s->fe.count = n;
	s->fe.key = value;
	if (send_file_event(s, l1, l2) && !(fflags & FE_DENIED))
		/* Forget the key, so a later attempt retries the observation. */
		bpf_map_delete_elem(&ops_seen, &k);
	return 0;
}

/* A unix socket address (bind, connect, sendto, sendmsg): a path, or an abstract name
 * (a leading NUL, then addrlen - 3 bytes). Anything else returns 0. */
static __always_inline int on_unix_addr(__u64 target_flags, __u32 access, long err, __u64 nr_arch,
				   const void *uaddr)
{
	struct scratch *s = scratch();
	if (!s || !uaddr)
		return 0;
	__u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr) || family != AF_UNIX)
		return 0;
	char first = 1;
	bpf_probe_read_user(&first, 1, uaddr + 2);
	__u64 h = 0;
	long len;
	if (first == 0) {
		/* Abstract: the name up to its first NUL (names are almost always text). */
		len = read_str(uaddr + 3, 0, 0, &h);
		if (len < 0)
			return 0;
		__u32 target = (__u32)target_flags;
		struct op_key k = {.target = target, .access = access, .err = err, .flags = FE_ABSTRACT, .hash = h};
		if (bpf_map_lookup_elem(&ops_seen, &k))
			return 0;
		__u8 one = 1;
		bpf_map_update_elem(&ops_seen, &k, &one, BPF_ANY);
		s->fe.flags = FE_ABSTRACT | FE_ARGS;
		__u32 l = len & (PATH_MAX_LEN - 1);
		if (l > 107)
			l = 107;
		bpf_probe_read_kernel(s->fe.path, l, s->str[0]);
		s->fe.target = target;
		s->fe.pid = bpf_get_current_pid_tgid() >> 32;
		s->fe.access = access;
		s->fe.err = err;
		s->fe.nr = (__u32)nr_arch;
		s->fe.arch = nr_arch >> 32;
		s->fe.count = 1;
		s->fe.key = 0;
		send_file_event(s, l, 0);
		return 0;
	}
	len = read_str(uaddr + 2, 0, 0, &h);
	if (len <= 0)
		return 0;
	s->op.dirfd[0] = AT_FDCWD;
	s->op.len[0] = len;
	s->op.len[1] = -1;
	s->op.hash = h;
	return emit_op(target_flags, access, err, nr_arch);
}

/* Reads the path arguments of a path operation and emits it. */
static __noinline int on_path_op(struct pt_regs *regs, __u64 nr_arch, long ret, __u64 target_flags,
				 __u64 opbits)
{
	struct scratch *s = scratch();
	if (!s)
		return 0;
	__u32 compat = (nr_arch >> 32) == 1;
	__u32 kind = opbits & 0xff;
	__u32 dirfd_arg = (opbits >> 8) & 0xff, path_arg = (opbits >> 16) & 0xff;
	__u32 dirfd2_arg = (opbits >> 24) & 0xff, path2_arg = (opbits >> 32) & 0xff;
	__u32 flags_arg = (opbits >> 40) & 0xff;
	__u64 flags = flags_arg < 6 ? arg(regs, compat, flags_arg) : 0;
	long err = ret < 0 ? ret : 0;
	__u32 access = 0;
	switch (kind) {
	case SOP_OPEN:
	case SOP_OPENAT2:
		if (kind == SOP_OPENAT2) {
			__u64 how = flags;
			flags = 0;
			bpf_probe_read_user(&flags, sizeof(flags), (const void *)how);
		} else if (flags_arg >= 6) {
			flags = O_CREAT | O_WRONLY | O_TRUNC; /* creat(2) */
		}
		if (ret >= 0)
			return on_open_success(target_flags, ret, flags);
		access = open_access(flags) | ((flags & O_CREAT) ? ACC_CREATE : 0);
		break;
	case SOP_EXEC:
		if (ret >= 0)
			return 0; /* the exec event has it, resolved */
		access = ACC_EXEC;
		break;
	case SOP_MKDIR: access = ACC_MKDIR; break;
	case SOP_RMDIR: access = ACC_RMDIR; break;
	case SOP_UNLINK: access = (flags & AT_REMOVEDIR) ? ACC_RMDIR : ACC_DELETE; break;
	case SOP_RENAME: access = (flags & RENAME_EXCHANGE) ? ACC_EXCHANGE : ACC_RENAME; break;
	case SOP_LINK: access = ACC_LINK; break;
	case SOP_SYMLINK: access = ACC_SYMLINK; break;
	case SOP_SETATTR: access = ACC_SETATTR; break;
	case SOP_MKNOD:
		access = ((flags & S_IFMT) == S_IFREG || (flags & S_IFMT) == 0) ? ACC_CREATE : ACC_MKNOD;
		break;
	default:
		return 0;
	}
	if (path_arg >= 6)
		return 0;
	const char *p1 = (const char *)arg(regs, compat, path_arg);
	if (!p1)
		return 0; /* utimensat(fd, NULL, ...): by descriptor, not by path */
	long d1 = dirfd_arg < 6 ? (int)arg(regs, compat, dirfd_arg) : AT_FDCWD;
	__u64 h1 = 0, h2 = 0;
	long len1 = read_str(p1, 0, 0, &h1);
	if (len1 < 0)
		return 0;
	if (len1 == 0 && !(kind == SOP_LINK && (flags & AT_EMPTY_PATH)))
		return 0; /* an empty path without AT_EMPTY_PATH fails with ENOENT at once */
	long len2 = -1;
	s->op.dirfd[1] = AT_FDCWD;
	if (path2_arg < 6) {
		const char *p2 = (const char *)arg(regs, compat, path2_arg);
		len2 = read_str(p2, 1, 0, &h2);
		if (len2 < 0)
			return 0;
		if (dirfd2_arg < 6)
			s->op.dirfd[1] = (int)arg(regs, compat, dirfd2_arg);
	}
	s->op.dirfd[0] = d1;
	s->op.len[0] = len1;
	s->op.len[1] = len2;
	s->op.hash = h1 ^ (h2 * 7);
	return emit_op(target_flags, access, err, nr_arch);
}

/* Network operations at exit: connects, sends and accepts. The socket address is at
 * addr_arg; socketcall passes its arguments through an array. */
static __noinline int on_net_op(__u64 target_flags, __u32 kind, long ret, __u64 nr_arch, __u64 *a)
{
	long fd = (int)a[0];
	const void *uaddr = (const void *)a[1];
	__u32 compat = (nr_arch >> 32) == 1;
	switch (kind) {
	case SOP_ACCEPT:
		if (ret >= 0)
			on_accept(target_flags, ret);
		return 0;
	case SOP_BIND:
		/* IP ports are read at sys_enter; unix paths here, where the result is known. */
		return on_unix_addr(target_flags, ACC_BIND, ret < 0 ? ret : 0, nr_arch, uaddr);
	case SOP_CONNECT: {
		long err = (ret < 0 && ret != -EINPROGRESS) ? ret : 0;
		on_ip_peer(target_flags, NET_CONNECT, fd, uaddr, err);
		return on_unix_addr(target_flags, ACC_CONNECT, err, nr_arch, uaddr);
	}
	case SOP_SENDTO:
		uaddr = (const void *)a[4];
		break;
	case SOP_SENDMSG:
	case SOP_SENDMMSG: {
		/* struct msghdr starts with msg_name (a pointer: 4 bytes for compat); sendmmsg's
		 * first message is the one looked at. */
		__u64 name = 0;
		bpf_probe_read_user(&name, compat ? 4 : 8, (const void *)a[1]);
		uaddr = (const void *)name;
		break;
	}
	default:
		return 0;
	}
	if (!uaddr || ret < 0)
		return 0; /* a send on a connected socket, or one that failed */
	on_ip_peer(target_flags, NET_SEND, fd, uaddr, 0);
	return on_unix_addr(target_flags, ACC_CONNECT, 0, nr_arch, uaddr);
}

/* socketcall(call, args): the i386 multiplexer's calls that name a peer. */
static __always_inline int on_socketcall(__u64 target_flags, long ret, __u64 nr_arch, struct pt_regs *regs)
{
	__u32 call = arg(regs, 1, 0);
	__u32 raw[6] = {};
	bpf_probe_read_user(raw, sizeof(raw), (const void *)arg(regs, 1, 1));
	__u64 a[6] = {raw[0], raw[1], raw[2], raw[3], raw[4], raw[5]};
	__u32 kind;
	switch (call) {
	case 2: kind = SOP_BIND; break;
	case 3: kind = SOP_CONNECT; break;
	case 5: case 18: kind = SOP_ACCEPT; break;
	case 11: kind = SOP_SENDTO; break;
	case 16: kind = SOP_SENDMSG; break;
	case 20: kind = SOP_SENDMMSG; break;
	default: return 0;
	}
	return on_net_op(target_flags, kind, ret, nr_arch, a);
}

/* The file and network work for one tracked syscall exit. A subprogram of its own:
 * verified once, not once per caller path (tailor's start-up time is mostly the
 * verifier's). */
static __noinline int on_op_exit(struct pt_regs *regs, long nr, __u32 arch, long ret, __u64 target_flags)
{
	if (arch > 1)
		return 0;
	__u32 key = arch * SC_MAX + nr;
	struct sysop *op = bpf_map_lookup_elem(&sysops, &key);
	if (!op || op->op == SOP_NONE)
		return 0;
	__u64 nr_arch = (__u32)nr | ((__u64)arch << 32);
	__u32 kind = op->op;
	if (kind >= SOP_BIND) {
		if (kind == SOP_SOCKETCALL)
			return on_socketcall(target_flags, ret, nr_arch, regs);
		__u64 a[6];
		for (int i = 0; i < 6; i++)
			a[i] = arg(regs, arch, i);
		return on_net_op(target_flags, kind, ret, nr_arch, a);
	}
	__u64 opbits = op->op | (__u64)op->dirfd_arg << 8 | (__u64)op->path_arg << 16 |
		       (__u64)op->dirfd2_arg << 24 | (__u64)op->path2_arg << 32 | (__u64)op->flags_arg << 40;
	return on_path_op(regs, nr_arch, ret, target_flags, opbits);
}
