/*
 * replay — a main() for libFuzzer targets built without libFuzzer (gcc, CI): runs
 * LLVMFuzzerTestOneInput once per file named on the command line; a directory stands for
 * the regular files in it (not recursive). Each input is copied into a heap block of
 * exactly its size, so ASan sees any read past the end.
 * Exit status: 0 when every input ran, 1 when a file could not be read or none was given.
 * A crash or a broken invariant aborts, as it would under libFuzzer.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		goto fail;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto fail;
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
fail:
	perror(path);
	free(buf);
	if (f)
		fclose(f);
	return -1;
}

int main(int argc, char **argv)
{
	unsigned ran = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat sb;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			failed += run_file(argv[i]) != 0;
			ran++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			failed++;
			continue;
		}
		while ((de = readdir(d))) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
				continue;
			failed += run_file(path) != 0;
			ran++;
		}
		closedir(d);
	}
	printf("%u inputs replayed, %u unreadable\n", ran, failed);
	return ran == 0 || failed ? 1 : 0;
}
