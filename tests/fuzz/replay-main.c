/* SPDX-License-Identifier: MIT */
/* Replays a fuzz target's corpus in normal builds: every file named, every file of every directory
 * named (sorted), each in an exactly-sized buffer so sanitizers see any overread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (st.st_size > REPLAY_MAX_INPUT) {
		fprintf(stderr, "replay: %s: larger than %d bytes\n", path, REPLAY_MAX_INPUT);
		close(fd);
		return -1;
	}
	/* malloc(0) may return NULL; keep one byte but pass the true size. */
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	size_t n_inputs = 0;
	int failed = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
		fprintf(stderr, "Usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **names;
		int n;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) < 0)
				failed = 1;
			else
				n_inputs++;
			continue;
		}
		n = scandir(argv[i], &names, NULL, name_cmp);
		if (n < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failed = 1;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			struct stat fst;
			snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
			if (names[j]->d_name[0] != '.' && stat(path, &fst) == 0 &&
			    S_ISREG(fst.st_mode)) {
				if (replay_file(path) < 0)
					failed = 1;
				else
					n_inputs++;
			}
			free(names[j]);
		}
		free(names);
	}
	if (n_inputs == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replayed %zu inputs\n", n_inputs);
	return failed;
}
