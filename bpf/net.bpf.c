//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sockets and peers. socket, bind and listen are read at sys_enter (their arguments are
 * all a profile needs, and a failed bind still tells the port the target wanted);
 * connect, sendto/sendmsg and accept at sys_exit, where the result is known: the peer
 * of a connect that failed is a fact, not a need. Everything is counted per distinct
 * key in the `net` hash, so nothing is lost to a busy target; a new connect, send or
 * accept key is also sent as an event, so watch mode can judge it while it runs.
 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct net_key);
	__type(value, __u64);
} net SEC(".maps");

/* Counts one occurrence of k; returns 1 when the key is new. */
static __always_inline int record_net_key(struct net_key *k)
{
	__u64 *v = bpf_map_lookup_elem(&net, k);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return 0;
	}
	__u64 one = 1;
	long err = bpf_map_update_elem(&net, k, &one, BPF_NOEXIST);
	if (err == -7 /* E2BIG */) {
		count(CNT_NET_FULL);
		return 0;
	}
	return err == 0;
}

static __always_inline void record_net(__u32 target, __u16 kind, __u16 family, __u32 type,
				       __u32 protocol, __u32 port)
{
	struct net_key k = {.target = target, .kind = kind, .family = family, .type = type,
			    .protocol = protocol, .port = port};
	record_net_key(&k);
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

static __always_inline struct sock *fd_sock(struct task_struct *task, long fd)
{
	struct file *f = fd_file(task, fd);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

static __always_inline void on_listen(__u32 target, struct task_struct *task, long fd)
{
	struct sock *sk = fd_sock(task, fd);
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (family == AF_INET || family == AF_INET6)
		record_net(target, NET_LISTEN, family, 0, 0, port);
}

/* Sends a new connect, send or accept key with the task that made it. */
static __noinline void send_net_event(struct net_key *k, __u32 task_flags)
{
	struct scratch *s = scratch();
	if (!s)
		return;
	struct net_event *e = &s->ne;
	e->type = EV_NET;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->flags = task_flags;
	e->count = 1;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(&e->key, k, sizeof(*k));
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		count(CNT_RINGBUF_DROP);
}

/* An accepted connection: the local port it came in on. */
static __noinline int on_accept(__u64 target_flags, long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock *sk = fd_sock(task, fd);
	if (!sk)
		return 0;
	struct net_key k = {.target = (__u32)target_flags, .kind = NET_ACCEPT};
	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (k.family != AF_INET && k.family != AF_INET6)
		return 0;
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.type = BPF_CORE_READ(sk, sk_type);
	k.protocol = BPF_CORE_READ(sk, sk_protocol);
	if (record_net_key(&k))
		send_net_event(&k, target_flags >> 32);
	return 0;
}

/* A connect or send to an IP peer: family, address, port; err is 0 or the -errno of a
 * failed connect. */
static __noinline int on_ip_peer(__u64 target_flags, __u32 kind, long fd, const void *uaddr, long err)
{
	__u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	struct net_key k = {.target = (__u32)target_flags, .kind = kind, .family = family, .err = err};
	__u16 port = 0;
	if (family == AF_INET) {
		bpf_probe_read_user(&port, sizeof(port), uaddr + 2);
		bpf_probe_read_user(k.addr, 4, uaddr + 4);
	} else if (family == AF_INET6) {
		bpf_probe_read_user(&port, sizeof(port), uaddr + 2);
		bpf_probe_read_user(k.addr, 16, uaddr + 8);
	} else {
		return 0;
	}
	k.port = __builtin_bswap16(port);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct sock *sk = fd_sock(task, fd);
	if (sk) {
		k.type = BPF_CORE_READ(sk, sk_type);
		k.protocol = BPF_CORE_READ(sk, sk_protocol);
	}
	if (record_net_key(&k))
		send_net_event(&k, target_flags >> 32);
	return 0;
}
