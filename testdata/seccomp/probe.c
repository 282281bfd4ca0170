/* The program TestGeneratedProfileLoads runs under a generated seccomp profile: it
 * makes a few probe syscalls and prints, one word each, what they returned. Built
 * static by the test, so the syscalls it makes are the same on every run and the test
 * derives the recording from strace instead of guessing a runtime's needs. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void probe(const char *name, long r)
{
	if (r < 0)
		printf("%s=%s ", name, strerrorname_np(errno));
	else
		printf("%s=ok ", name);
}

static void probe_socket(const char *name, long r)
{
	probe(name, r);
	if (r >= 0)
		close(r);
}

int main(void)
{
	probe("getpid", syscall(SYS_getpid));
	probe("sync", syscall(SYS_sync));
	probe_socket("socket(AF_INET)", syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0));
	probe_socket("socket(AF_PACKET)", syscall(SYS_socket, AF_PACKET, SOCK_DGRAM, 0));
	/* With a NULL argument the kernel itself would say EFAULT: ENOSYS comes from the
	 * filter. */
	probe("clone3", syscall(SYS_clone3, 0, 0));
	probe("unshare", syscall(SYS_unshare, CLONE_NEWUTS));
	printf("\n");
	return 0;
}
