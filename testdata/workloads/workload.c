/* A deterministic workload for tailor's tests: each mode does one known thing, through
 * plain syscalls, so a test can assert exactly what a recording must contain.
 * Built by the tests with gcc (and gcc -m32 for the compat test). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what)
{
	fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
	return 1;
}

/* files DIR: create and write DIR/new, then read it back and read /etc/hostname. */
static int files(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/new", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return die("create");
	if (write(fd, "x\n", 2) != 2)
		return die("write");
	close(fd);
	char buf[64];
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf)) < 0)
		return die("read back");
	close(fd);
	fd = open("/etc/hostname", O_RDONLY);
	if (fd < 0)
		return die("open /etc/hostname");
	close(fd);
	return 0;
}

/* pathops DIR: from inside DIR, with relative paths, every path operation tailor
 * records: mkdir, create, rename, link, symlink, chmod, truncate, mkfifo, a unix socket
 * bound and connected by path, unlink, rmdir; and an open that fails with ENOENT. */
static int pathops(const char *dir)
{
	if (chdir(dir) < 0)
		return die("chdir");
	if (mkdir("d", 0755) < 0)
		return die("mkdir");
	int fd = open("d/f", O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, "x\n", 2) != 2)
		return die("create");
	close(fd);
	if (rename("d/f", "d/g") < 0)
		return die("rename");
	if (link("d/g", "d/h") < 0)
		return die("link");
	if (symlink("g", "d/s") < 0)
		return die("symlink");
	if (chmod("d/g", 0600) < 0)
		return die("chmod");
	if (truncate("d/g", 1) < 0)
		return die("truncate");
	if (mkfifo("d/p", 0600) < 0)
		return die("mkfifo");
	int srv = socket(AF_UNIX, SOCK_STREAM, 0), cli = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, "d/sock");
	if (srv < 0 || cli < 0 || bind(srv, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv, 1) < 0 ||
	    connect(cli, (struct sockaddr *)&a, sizeof(a)) < 0)
		return die("unix socket");
	close(cli);
	close(srv);
	if (open("missing", O_RDONLY) >= 0 || errno != ENOENT)
		return die("open of a missing file");
	const char *gone[] = {"d/h", "d/s", "d/p", "d/sock", "d/g"};
	for (unsigned i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		if (unlink(gone[i]) < 0)
			return die("unlink");
	if (rmdir("d") < 0)
		return die("rmdir");
	return 0;
}

/* socket FAMILY: create one socket of the family (inet, inet6, unix). */
static int sock(const char *fam)
{
	int f = !strcmp(fam, "inet6") ? AF_INET6 : !strcmp(fam, "unix") ? AF_UNIX : AF_INET;
	int fd = socket(f, SOCK_STREAM, 0);
	if (fd < 0)
		return die("socket");
	close(fd);
	return 0;
}

/* bind PORT: bind and listen on 127.0.0.1:PORT (port 80 needs CAP_NET_BIND_SERVICE). */
static int bind_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return die("socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return die("bind");
	if (listen(fd, 1) < 0)
		return die("listen");
	close(fd);
	return 0;
}

/* mmap N: N anonymous mappings and unmappings (each asks the kernel's CAP_SYS_ADMIN
 * no-audit probe in __vm_enough_memory). */
static int mmaps(int n)
{
	for (int i = 0; i < n; i++) {
		void *p = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return die("mmap");
		((char *)p)[0] = 1;
		munmap(p, 1 << 16);
	}
	return 0;
}

/* chown FILE UID: chown FILE to UID (a different owner needs CAP_CHOWN). */
static int do_chown(const char *file, int uid)
{
	if (chown(file, uid, -1) < 0)
		return die("chown");
	return 0;
}

/* getpid N: N raw getpid syscalls (the benchmark loop); prints ns per call. */
static int getpids(long n)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.2f\n", n > 0 ? ns / n : 0);
	return 0;
}

/* marker: a syscall the other modes never make (for leak tests): getcpu + sync. */
static int marker(const char *path)
{
	unsigned cpu;
	syscall(SYS_getcpu, &cpu, 0, 0);
	sync();
	int fd = open(path, O_RDONLY);
	if (fd >= 0)
		close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: workload files DIR | pathops DIR | socket FAM | bind PORT | mmap N | chown FILE UID | getpid N | marker PATH | exec PROG [ARGS]\n");
		return 2;
	}
	const char *m = argv[1];
	if (!strcmp(m, "files") && argc > 2)
		return files(argv[2]);
	if (!strcmp(m, "pathops") && argc > 2)
		return pathops(argv[2]);
	if (!strcmp(m, "socket") && argc > 2)
		return sock(argv[2]);
	if (!strcmp(m, "bind") && argc > 2)
		return bind_listen(atoi(argv[2]));
	if (!strcmp(m, "mmap") && argc > 2)
		return mmaps(atoi(argv[2]));
	if (!strcmp(m, "chown") && argc > 3)
		return do_chown(argv[2], atoi(argv[3]));
	if (!strcmp(m, "getpid") && argc > 2)
		return getpids(atol(argv[2]));
	if (!strcmp(m, "marker") && argc > 2)
		return marker(argv[2]);
	if (!strcmp(m, "exec") && argc > 2) {
		/* fork and exec a child, wait for it: an exec chain with a fork in between */
		pid_t pid = fork();
		if (pid == 0) {
			execv(argv[2], argv + 2);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	fprintf(stderr, "workload: unknown mode %s\n", m);
	return 2;
}
