/*
 * driver.c - main() for a fuzz target built without libFuzzer: every file of
 * the target's corpus (FUZZ_CORPUS, or the files and directories named on
 * the command line) goes once through LLVMFuzzerTestOneInput(), in name
 * order.  A crash or a broken invariant aborts, which the TAP driver reports;
 * otherwise one TAP line says how many inputs passed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Weak: a target without LLVMFuzzerInitialize links too. */
#pragma weak LLVMFuzzerInitialize

/* Feed one file; returns 0, or -1 if it cannot be read. */
static int driver_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return -1;
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *bigger = realloc(buf, cap = cap ? cap * 2 : 4096);

			if (bigger == NULL)
				break;
			buf = bigger;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f) || buf == NULL) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	/* an exact-size copy, so that a sanitizer sees a read past the end */
	{
		uint8_t *exact = malloc(n ? n : 1);

		if (exact == NULL) {
			free(buf);
			return -1;
		}
		memcpy(exact, buf, n);
		free(buf);
		LLVMFuzzerTestOneInput(exact, n);
		free(exact);
	}
	return 0;
}

/* Feed a file or every regular file of a directory; adds to *count. */
static int driver_path(const char *path, size_t *count)
{
	struct dirent **names;
	struct stat st;
	int n, i, rc = 0;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return driver_file(path);
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (i = 0; i < n; i++) {
		char file[4096];

		if (names[i]->d_name[0] != '.' &&
		    snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name) < (int)sizeof(file) &&
		    stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			if (driver_file(file) < 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	size_t count = 0;
	int i;

	printf("1..1\n");
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2 && driver_path(FUZZ_CORPUS, &count) < 0) {
		printf("not ok 1 - %s: cannot read the corpus %s: %s\n", name, FUZZ_CORPUS, strerror(errno));
		return 1;
	}
	for (i = 1; i < argc; i++) {
		if (driver_path(argv[i], &count) < 0) {
			printf("not ok 1 - %s: cannot read %s: %s\n", name, argv[i], strerror(errno));
			return 1;
		}
	}
	if (count == 0) {
		printf("not ok 1 - %s: an empty corpus\n", name);
		return 1;
	}
	printf("ok 1 - %s: %zu corpus inputs, no crash, every invariant held\n", name, count);
	return 0;
}
