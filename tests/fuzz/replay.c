/*
 * replay.c -- the main() of a fuzz target built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named, or on every regular file of
 * a directory named (in name order, so runs are reproducible), so that make
 * check exercises each target on its seed corpus and on saved crashes.
 *
 * Arguments starting with '-' are libFuzzer options and are ignored, so the
 * same command line works with either build. LLVMFuzzerInitialize is never
 * called: targets must not depend on it. Each input is read into a buffer of
 * exactly its size, as libFuzzer does, so a sanitizer or valgrind build sees
 * any read past its end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/xmalloc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Run one file. 0, or -1 if it cannot be read (reported on stderr). */
static int
replay_file(const char *path)
{
	struct stat	 st;
	uint8_t		*data = NULL;
	size_t		 size = 0, off = 0;
	ssize_t		 got;
	int		 fd, rv = -1, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto out;
	if (fstat(fd, &st) == -1)
		goto out;
	size = (size_t)st.st_size;
	data = xmalloc(size);
	while (off < size) {
		got = read(fd, data + off, size - off);
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1)
			goto out;
		if (got == 0) {
			errno = EIO;	/* the file shrank while we read it */
			goto out;
		}
		off += (size_t)got;
	}
	LLVMFuzzerTestOneInput(data, size);
	rv = 0;

out:
	saved = errno;
	if (rv != 0)
		fprintf(stderr, "replay: %s: %s\n", path, strerror(saved));
	free(data);
	if (fd != -1)
		close(fd);
	errno = saved;
	return rv;
}

/* Run every regular file of a directory in name order. Inputs run, or -1. */
static int
replay_dir(const char *dir, int *failed)
{
	struct dirent	**names = NULL;
	struct stat	  st;
	char		 *path;
	int		  n, i, count = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		path = xasprintf("%s/%s", dir, names[i]->d_name);
		/* stat, not d_type: some file systems report DT_UNKNOWN. */
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) == 0)
				count++;
			else
				*failed = 1;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	struct stat	st;
	int		i, n, total = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file-or-directory ...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
			    strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if ((n = replay_dir(argv[i], &failed)) == -1)
				failed = 1;
			else
				total += n;
		} else if (replay_file(argv[i]) == 0)
			total++;
		else
			failed = 1;
	}
	printf("replayed %d inputs\n", total);
	return failed ? 2 : 0;
}
