// pathops: the path operation target of package enforce. Built static (gcc -static)
// so its syscalls are few and fixed.
//
//   pathops OP:PATH[:PATH2]...
//
// runs each operation in turn and prints "OP: ok" or "OP: ERRNONAME" for it. OPs:
// mkdir, create (open O_CREAT|O_EXCL|O_WRONLY, close), write (open O_WRONLY|O_APPEND,
// write a line, close), rename:FROM:TO, link:FROM:TO, symlink:TARGET:PATH, chmod
// (0600), truncate (to 0 bytes, by path), mkfifo, unlink, rmdir; and on TCP,
// tcpbind:PORT (bind a socket to 127.0.0.1:PORT) and tcpconnect:PORT (connect to
// 127.0.0.1:PORT).
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

// tcp binds or connects a TCP socket to 127.0.0.1:port.
static int tcp(int doConnect, const char *port) {
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(port)), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int rc = doConnect ? connect(fd, (struct sockaddr *)&a, sizeof(a)) : bind(fd, (struct sockaddr *)&a, sizeof(a));
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

static void report(const char *op, int rc) {
	if (rc < 0)
		printf("%s: %s\n", op, strerrorname_np(errno));
	else
		printf("%s: ok\n", op);
	fflush(stdout);
}

int main(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		char op[64], a[4096], b[4096] = "";
		if (sscanf(argv[i], "%63[^:]:%4095[^:]:%4095s", op, a, b) < 2) {
			fprintf(stderr, "bad operation %s\n", argv[i]);
			return 2;
		}
		int rc, fd;
		if (strcmp(op, "mkdir") == 0)
			rc = mkdir(a, 0755);
		else if (strcmp(op, "create") == 0) {
			rc = fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd >= 0)
				close(fd);
		} else if (strcmp(op, "write") == 0) {
			rc = fd = open(a, O_WRONLY | O_APPEND);
			if (fd >= 0) {
				rc = (int)write(fd, "line\n", 5);
				close(fd);
			}
		} else if (strcmp(op, "rename") == 0)
			rc = rename(a, b);
		else if (strcmp(op, "link") == 0)
			rc = link(a, b);
		else if (strcmp(op, "symlink") == 0)
			rc = symlink(a, b);
		else if (strcmp(op, "chmod") == 0)
			rc = chmod(a, 0600);
		else if (strcmp(op, "truncate") == 0)
			rc = truncate(a, 0);
		else if (strcmp(op, "mkfifo") == 0)
			rc = mkfifo(a, 0600);
		else if (strcmp(op, "unlink") == 0)
			rc = unlink(a);
		else if (strcmp(op, "rmdir") == 0)
			rc = rmdir(a);
		else if (strcmp(op, "tcpbind") == 0)
			rc = tcp(0, a);
		else if (strcmp(op, "tcpconnect") == 0)
			rc = tcp(1, a);
		else {
			fprintf(stderr, "unknown operation %s\n", op);
			return 2;
		}
		report(op, rc);
	}
	return 0;
}
