// categories.c: a program whose second mode makes one anomaly of every category tailor's
// watcher knows (docs/anomalies.md), for testdata/anomalies/categorised.jsonl and the
// end-to-end test that regenerates it (cmd/tailor TestAnomalyCategories).
//
//   categories learn DIR PORT   what the profile learns: reads DIR/data/{a,b,c}.txt, runs
//                               /usr/bin/true, listens on 127.0.0.1:PORT, connects to
//                               itself there and accepts the connection
//   categories all DIR PORT     the learned steps, then one step per category, each
//                               reported on stdout as "STEP ok" or "STEP ERRNO-NAME";
//                               the inbound step prints "listening PORT2" and waits up to
//                               20 s for a connection from outside
//
// Run as root under the bundle made from the learn mode, every step but the inbound
// accept is refused by seccomp, Landlock or the dropped capabilities; nothing is left on
// the host.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>

static void report(const char *step, int err) {
	printf("%s %s\n", step, err == 0 ? "ok" : strerrorname_np(err));
	fflush(stdout);
}

// run forks and execs path; the child's exit status carries exec's errno.
static int run(const char *path) {
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		char *argv[] = {(char *)path, NULL};
		execv(path, argv);
		_exit(errno & 0x7f);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static int open_step(const char *path, int flags) {
	int fd = open(path, flags, 0600);
	if (fd < 0)
		return errno;
	close(fd);
	if (flags & O_CREAT)
		unlink(path);
	return 0;
}

static struct sockaddr_in loopback(int port) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

// learned: listen on port, connect to it and accept the connection.
static int serve_self(int port) {
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return errno;
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = loopback(port);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0)
		return errno;
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
		return errno;
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return errno;
	close(s);
	close(c);
	close(l);
	return 0;
}

static int connect_step(int port) {
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	struct sockaddr_in a = loopback(port);
	int err = connect(s, (struct sockaddr *)&a, sizeof a) < 0 ? errno : 0;
	close(s);
	return err == ECONNREFUSED ? 0 : err;
}

// inbound listens on a port the kernel picks (listen without bind: Landlock rules
// bind, not listen) and accepts one connection made from outside.
static int inbound(void) {
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return errno;
	if (listen(l, 4) < 0)
		return errno;
	struct sockaddr_in a;
	socklen_t n = sizeof a;
	if (getsockname(l, (struct sockaddr *)&a, &n) < 0)
		return errno;
	printf("listening %d\n", ntohs(a.sin_port));
	fflush(stdout);
	// A timeout through setsockopt, which the learn mode made, not poll, which it did
	// not.
	struct timeval tv = {.tv_sec = 20};
	setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return errno;
	close(s);
	close(l);
	return 0;
}

static int socket_step(int family, int type, int proto) {
	int s = socket(family, type, proto);
	if (s < 0)
		return errno;
	close(s);
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 4 || (strcmp(argv[1], "learn") && strcmp(argv[1], "all"))) {
		fprintf(stderr, "usage: categories learn|all DIR PORT\n");
		return 2;
	}
	const char *dir = argv[2];
	int port = atoi(argv[3]);
	char path[4096];

	// Three files of one directory: a content directory (data/*), which grants
	// data/locked.txt below too.
	for (const char *f = "abc"; *f; f++) {
		snprintf(path, sizeof path, "%s/data/%c.txt", dir, *f);
		report("read-data", open_step(path, O_RDONLY));
	}
	report("run-true", run("/usr/bin/true"));
	report("serve", serve_self(port));
	if (!strcmp(argv[1], "learn"))
		return 0;

	report("shell-spawned", run("/bin/sh"));
	report("unexpected-program", run("/usr/bin/false"));
	report("sensitive-file-read", open_step("/etc/shadow", O_RDONLY));
	report("system-dir-write", open_step("/etc/tailor-categories-test", O_WRONLY | O_CREAT | O_EXCL));
	snprintf(path, sizeof path, "%s/outside.txt", dir);
	report("file-outside-profile", open_step(path, O_RDONLY));
	// A file the rules grant that file permissions refuse: root without
	// CAP_DAC_OVERRIDE (privilege-change), the refusal not the profile's.
	snprintf(path, sizeof path, "%s/data/locked.txt", dir);
	report("privilege-change", open_step(path, O_RDONLY));
	report("unexpected-outbound-connection", connect_step(port + 1));
	report("unexpected-inbound-connection", inbound());
	report("raw-network-socket", socket_step(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
	report("unexpected-socket-family", socket_step(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	report("namespace-or-mount-change", unshare(CLONE_NEWUTS) < 0 ? errno : 0);
	report("process-injection", ptrace(PTRACE_TRACEME, 0, 0, 0) < 0 ? errno : 0);
	union bpf_attr attr;
	memset(&attr, 0, sizeof attr);
	report("kernel-tampering", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr) < 0 ? errno : 0);
	errno = 0;
	report("syscall-outside-profile", getpriority(PRIO_PROCESS, 0) == -1 ? errno : 0);
	return 0;
}
