// workload: the test target of package enforce. Built static (gcc -static) so its
// syscalls are few and fixed, and no dynamic loader needs file rules.
//
//   workload IN OUT [ACTION...]
//
// reads IN, writes OUT (created), calls getpid, prints "ok", then tries each ACTION in
// turn and prints "ACTION: ok" or "ACTION: ERRNONAME". Actions: ptrace, mount=DIR,
// unshare, shadow, exec (a shell replaces the workload, says ready and waits), packet, chown (to uid 1, needs
// CAP_CHOWN), chownself (to its own uid: no capability), flood=N (N ptrace calls, then
// one report), wait (print "ready", read stdin to EOF).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

static int report(const char *action, int rc) {
	if (rc < 0)
		printf("%s: %s\n", action, strerrorname_np(errno));
	else
		printf("%s: ok\n", action);
	fflush(stdout);
	return 0;
}

static int act(const char *a, const char *out) {
	char buf[256];
	if (strcmp(a, "ptrace") == 0)
		return report(a, (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	if (strncmp(a, "mount=", 6) == 0) {
		int rc = mount("tailor-test", a + 6, "tmpfs", 0, "size=16k");
		report("mount", rc);
		if (rc == 0)
			umount2(a + 6, 0);
		return 0;
	}
	if (strcmp(a, "unshare") == 0)
		return report(a, unshare(CLONE_NEWUTS));
	if (strcmp(a, "shadow") == 0) {
		int fd = open("/etc/shadow", O_RDONLY);
		return report(a, fd);
	}
	if (strcmp(a, "exec") == 0) {
		/* The shell stands in for the rest of the actions: it waits like "wait". */
		execl("/bin/sh", "sh", "-c", "echo exec: ok; echo ready; cat >/dev/null", (char *)NULL);
		return report(a, -1);
	}
	if (strcmp(a, "packet") == 0)
		return report(a, socket(AF_PACKET, SOCK_RAW, 0));
	if (strcmp(a, "chown") == 0)
		return report(a, chown(out, 1, 1));
	if (strcmp(a, "chownself") == 0)
		return report(a, chown(out, getuid(), getgid()));
	if (strncmp(a, "flood=", 6) == 0) {
		long n = atol(a + 6), rc = 0;
		for (long i = 0; i < n; i++)
			rc = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		return report("flood", (int)rc);
	}
	if (strcmp(a, "wait") == 0) {
		printf("ready\n");
		fflush(stdout);
		while (read(0, buf, sizeof buf) > 0)
			;
		return 0;
	}
	fprintf(stderr, "unknown action %s\n", a);
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: workload IN OUT [ACTION]\n");
		return 2;
	}
	char buf[256];
	int in = open(argv[1], O_RDONLY);
	if (in < 0 || read(in, buf, sizeof buf) < 0) {
		printf("read %s: %s\n", argv[1], strerrorname_np(errno));
		return 1;
	}
	close(in);
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || write(out, "written\n", 8) != 8) {
		printf("write %s: %s\n", argv[2], strerrorname_np(errno));
		return 1;
	}
	close(out);
	if (getpid() <= 0)
		return 1;
	printf("ok\n");
	fflush(stdout);
	if (argc < 4)
		return 0;

	for (int i = 3; i < argc; i++)
		if (act(argv[i], argv[2]))
			return 2;
	return 0;
}
