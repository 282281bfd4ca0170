//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Paths, as the process sees them (relative to its root). From a tracepoint there is no
 * bpf_d_path (LSM and fentry programs only), so a path is rebuilt by walking dentries
 * and mounts up to the task's fs->root with bpf_loop (a plain loop hit the verifier's
 * instruction limit). Two sources:
 *   - an opened struct file (opens, mmap, exec): symlinks are already resolved;
 *   - a syscall's path argument (mkdir, unlink, rename, failed opens...): the string as
 *     given, joined to the directory it is relative to (the dirfd's file or the
 *     working directory), itself resolved from its dentry.
 * Both write into the scratch file event, which holds up to two paths.
 */

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
	__u32 end;
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
	if (c->off + 1 + len >= c->end) {
		c->truncated = 1;
		return 1;
	}
	__u32 off = c->off & (FILE_PATHS_LEN - 1);
	s->fe.path[off] = '/';
	off = (off + 1) & (FILE_PATHS_LEN - 1);
	bpf_probe_read_kernel(&s->fe.path[off], len, (void *)s->names[idx]);
	c->off = off + len;
	return 0;
}

static __always_inline void path_truncated(struct scratch *s)
{
	s->fe.flags |= FE_TRUNCATED;
	count(CNT_PATH_TRUNCATED);
}

/* Resolves a dentry (as the current task sees it, relative to its root) into the
 * scratch file event's path at base and returns its length, 0 on failure. */
static __noinline __u32 resolve_path(struct dentry *dentry, struct vfsmount *vfsmnt, __u32 base)
{
	struct scratch *s = scratch();
	if (!s || !dentry || !vfsmnt || base >= FILE_PATHS_LEN)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct walk_ctx w = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.root_dentry = BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = BPF_CORE_READ(task, fs, root.mnt),
	};
	bpf_loop(MAX_COMPONENTS * 2, walk_step, &w, 0);
	struct copy_ctx c = {.n = w.n, .off = base, .end = base + PATH_MAX_LEN};
	if (!w.done)
		c.truncated = 1; /* deeper than MAX_COMPONENTS */
	bpf_loop(MAX_COMPONENTS, copy_step, &c, 0);
	if (c.off == base) {
		s->fe.path[base & (FILE_PATHS_LEN - 1)] = '/';
		c.off = base + 1;
	}
	if (c.truncated)
		path_truncated(s);
	return c.off - base;
}

struct hash_ctx {
	__u64 h;
	__u32 words;
	__u32 slot;
};

/* FNV-1a over a string read into s->str, eight bytes at a time. */
static long hash_step(__u32 i, void *arg)
{
	struct hash_ctx *c = arg;
	struct scratch *s = scratch();
	if (!s || i >= c->words)
		return 1;
	c->h ^= s->str[c->slot & 1][i & (PATH_MAX_LEN / 8 - 1)];
	c->h *= 1099511628211ULL;
	return 0;
}

/* Reads the NUL-terminated string at p (user memory, or kernel memory when kernel is
 * set) into s->str[slot], zero-padded to a whole word, and returns its length without
 * the NUL, or -1 when it cannot be read. *hash receives its FNV-1a hash. */
static __noinline long read_str(const char *p, __u32 slot, __u32 kernel, __u64 *hash)
{
	struct scratch *s = scratch();
	if (!s || !p)
		return -1;
	char *dst = (char *)s->str[slot & 1];
	long n = kernel ? bpf_probe_read_kernel_str(dst, PATH_MAX_LEN, p)
			: bpf_probe_read_user_str(dst, PATH_MAX_LEN, p);
	if (n <= 0) {
		count(CNT_ARGS_UNREADABLE);
		return -1;
	}
	__u32 len = n - 1;
	/* Clear the rest of the last word, so equal strings hash equally. */
	__u32 words = (len + 8) / 8;
	__u32 w = (words - 1) & (PATH_MAX_LEN / 8 - 1);
	__u64 mask = (len & 7) ? ((1ULL << ((len & 7) * 8)) - 1) : 0;
	s->str[slot & 1][w] &= mask;
	struct hash_ctx h = {.h = 14695981039346656037ULL, .words = words, .slot = slot};
	bpf_loop(PATH_MAX_LEN / 8, hash_step, &h, 0);
	*hash = h.h ^ len;
	return len;
}

/* Writes the path held in s->str[slot] (len bytes) into the file event's path at base:
 * as is when absolute, else joined to the directory dirfd names (AT_FDCWD: the working
 * directory), resolved from its dentry. An empty string names the directory fd itself
 * (AT_EMPTY_PATH). Returns the length written. */
__noinline __u32 join_path(long dirfd, __u32 slot, __u32 len, __u32 base)
{
	struct scratch *s = scratch();
	if (!s || base >= FILE_PATHS_LEN)
		return 0;
	if (len >= PATH_MAX_LEN)
		len = PATH_MAX_LEN - 1;
	char *src = (char *)s->str[slot & 1];
	__u32 out = 0;
	if (len == 0 || src[0] != '/') {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct dentry *d;
		struct vfsmount *m;
		if (dirfd == AT_FDCWD) {
			d = BPF_CORE_READ(task, fs, pwd.dentry);
			m = BPF_CORE_READ(task, fs, pwd.mnt);
		} else {
			struct file *f = fd_file(task, dirfd);
			if (!f)
				return 0;
			d = BPF_CORE_READ(f, f_path.dentry);
			m = BPF_CORE_READ(f, f_path.mnt);
		}
		out = resolve_path(d, m, base);
		if (len == 0)
			return out;
		if (out != 1) { /* not the root itself */
			s->fe.path[(base + out) & (FILE_PATHS_LEN - 1)] = '/';
			out++;
		}
	}
	if (out + len > PATH_MAX_LEN) {
		path_truncated(s);
		if (out >= PATH_MAX_LEN)
			return PATH_MAX_LEN;
		len = PATH_MAX_LEN - out;
	}
	__u32 off = (base + out) & (FILE_PATHS_LEN - 1);
	bpf_probe_read_kernel(&s->fe.path[off], len & (PATH_MAX_LEN - 1), src);
	return out + len;
}

/* Dedup of observations resolved from a struct file: an eviction only costs a
 * duplicate event, never a loss. */
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

/* Sends the scratch file event with paths of len (and len2) bytes; non-zero when the
 * ring buffer was full (counted). */
static __always_inline int send_file_event(struct scratch *s, __u32 len, __u32 len2)
{
	s->fe.type = EV_FILE;
	s->fe.len = len;
	s->fe.len2 = len2;
	bpf_get_current_comm(s->fe.comm, sizeof(s->fe.comm));
	__u64 size = offsetof(struct file_event, path) + len + (len2 ? len2 + 1 : 0);
	if (size > sizeof(struct file_event))
		size = sizeof(struct file_event);
	if (bpf_ringbuf_output(&events, &s->fe, size, 0)) {
		count(CNT_RINGBUF_DROP);
		return 1;
	}
	return 0;
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
		.access = access | (runtime ? FE_RUNTIME << 24 : 0),
	};
	if (bpf_map_lookup_elem(&files_seen, &k))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&files_seen, &k, &one, BPF_ANY);

	struct scratch *s = scratch();
	if (!s)
		return 0;
	s->fe.flags = 0;
	__u32 len = resolve_path(dentry, vfsmnt, 0);
	if (len == 0 || len > PATH_MAX_LEN)
		return 0;
	s->fe.target = target;
	s->fe.pid = bpf_get_current_pid_tgid() >> 32;
	s->fe.access = access;
	s->fe.err = 0;
	s->fe.nr = -1;
	s->fe.arch = 0;
	s->fe.count = 1;
	s->fe.key = 0;
	if (is_dir)
		s->fe.flags |= FE_DIR;
	if (runtime)
		s->fe.flags |= FE_RUNTIME;
	if ((target_flags >> 32) & TASK_DOCKER_EXEC)
		s->fe.flags |= FE_DOCKER_EXEC;
	if (send_file_event(s, len, 0))
		/* Forget the key, so a later access retries the observation. */
		bpf_map_delete_elem(&files_seen, &k);
	return 0;
}
