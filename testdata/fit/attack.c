// attack.c: an LD_PRELOAD library for `make fit` (fit/) that plays one attack step
// inside the confined process, as an intruder who took over the program would.
//
// Built by fit with `gcc -shared -fPIC -O1 -o attack.so attack.c`. It is preloaded in
// every phase (learning, replays, held-out use), so loading it is part of what the
// profile learns; it acts only when FIT_ATTACK names a step and the program's name is
// FIT_ATTACK_COMM (so a wrapper such as setpriv does not play it first). Each attempt
// prints one line on stderr: "fit-attack STEP ok" or "fit-attack STEP ERRNO-NAME".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *step, int err) {
	dprintf(2, "fit-attack %s %s\n", step, err == 0 ? "ok" : strerrorname_np(err));
}

// shell: fork, and exec /bin/sh in the child; the child's exit code carries exec's errno.
static int shell(void) {
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0) {
		char *argv[] = {"sh", "-c", "exit 0", NULL};
		execv("/bin/sh", argv);
		_exit(errno & 0x7f);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static int openat_step(const char *path, int flags) {
	int fd = open(path, flags, 0600);
	if (fd < 0)
		return errno;
	close(fd);
	if (flags & O_CREAT)
		unlink(path); // it was made: leave the host as it was
	return 0;
}

static int connect_step(int port) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return errno;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int r = connect(s, (struct sockaddr *)&a, sizeof a);
	int err = r < 0 ? errno : 0;
	close(s);
	// Nothing listens there: ECONNREFUSED means the connect was let through.
	return err == ECONNREFUSED ? 0 : err;
}

static int mount_step(const char *dir) {
	if (!dir)
		return EINVAL;
	if (mount("fit", dir, "tmpfs", 0, "size=64k") < 0)
		return errno;
	umount(dir);
	return 0;
}

// ptrace_step attaches to the process victim names, or with "child" to a child it
// forks for the purpose (in a container, whose pid namespace holds no other victim).
static int ptrace_step(const char *victim) {
	if (!victim)
		return EINVAL;
	pid_t pid, child = 0;
	if (!strcmp(victim, "child")) {
		child = fork();
		if (child < 0)
			return errno;
		if (child == 0) {
			pause();
			_exit(0);
		}
		pid = child;
	} else {
		pid = atoi(victim);
	}
	int err = 0;
	if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0) {
		err = errno;
	} else {
		waitpid(pid, NULL, __WALL);
		ptrace(PTRACE_DETACH, pid, 0, 0);
	}
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	return err;
}

__attribute__((constructor)) static void fit_attack(void) {
	const char *step = getenv("FIT_ATTACK");
	const char *comm = getenv("FIT_ATTACK_COMM");
	if (!step || (comm && strcmp(comm, program_invocation_short_name) != 0))
		return;
	int err;
	if (!strcmp(step, "shell"))
		err = shell();
	else if (!strcmp(step, "shadow"))
		err = openat_step("/etc/shadow", O_RDONLY);
	else if (!strcmp(step, "write-etc"))
		err = openat_step("/etc/fit-attack", O_WRONLY | O_CREAT | O_EXCL);
	else if (!strcmp(step, "write-bin"))
		err = openat_step("/usr/bin/fit-attack", O_WRONLY | O_CREAT | O_EXCL);
	else if (!strcmp(step, "connect"))
		err = connect_step(atoi(getenv("FIT_PORT") ? getenv("FIT_PORT") : "9"));
	else if (!strcmp(step, "unshare"))
		err = unshare(CLONE_NEWNS) < 0 ? errno : 0;
	else if (!strcmp(step, "mount"))
		err = mount_step(getenv("FIT_MNT"));
	else if (!strcmp(step, "ptrace"))
		err = ptrace_step(getenv("FIT_VICTIM"));
	else
		err = EINVAL;
	report(step, err);
}
