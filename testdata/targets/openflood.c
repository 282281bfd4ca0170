// openflood: open as many distinct paths as it can for SECONDS (or until MAX paths),
// to measure what the tracer keeps and loses under a file-open flood (bench/). Each
// file is created, closed and unlinked, so the disk does not fill and every open is
// of a new path. Prints the number of distinct paths opened.
//
//   openflood DIR SECONDS [MAX]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: openflood DIR SECONDS [MAX]\n");
		return 2;
	}
	unsigned long max = argc == 4 ? strtoul(argv[3], NULL, 10) : 0;
	struct timespec now, end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += atoi(argv[2]);
	char path[4096];
	unsigned long n = 0;
	for (;;) {
		if (max && n >= max)
			break;
		// The clock is read every 256 opens: cheap, and still stops within a few ms.
		if ((n & 255) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
				break;
		}
		snprintf(path, sizeof path, "%s/f%lu", argv[1], n);
		int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		close(fd);
		unlink(path);
		n++;
	}
	printf("%lu\n", n);
	return 0;
}
