/* Replays the fuzzing corpus in tests/fuzz/corpus through the three fuzz
 * harnesses, built with the normal compiler and without libFuzzer, so that
 * every seed and every input that once crashed a harness runs in `make check`.
 * A harness aborts on a failed check, which fails this program. */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/files.h"
#include "tests/unit/unit.h"

#define FUZZ_ENTRY fuzz_catalog_input
#include "tests/fuzz/fuzz_catalog.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_config_input
#include "tests/fuzz/fuzz_config.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_inspect_input
#include "tests/fuzz/fuzz_inspect.c"
#undef FUZZ_ENTRY

#define CORPUS_FILE_MAX (1024 * 1024)

struct harness {
	const char *name;
	int (*run)(const uint8_t *data, size_t size);
};

static const struct harness harnesses[] = {
	{ "catalog", fuzz_catalog_input },
	{ "config", fuzz_config_input },
	{ "inspect", fuzz_inspect_input },
};

/* The corpus beside the build folder: <repo>/<build>/tests/test_fuzz_regress. */
static int corpus_root(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int i = 0; i < 3; i++) {
		slash = strrchr(exe, '/');
		if (!slash)
			return -1;
		*slash = '\0';
	}
	return snprintf(buf, len, "%s/tests/fuzz/corpus", exe) < (int)len ? 0 : -1;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs one harness over every file of its corpus folder, in name order. */
static void replay(const char *root, const struct harness *h)
{
	char dir[PATH_MAX], path[PATH_MAX], name[PATH_MAX + 32], *names[512];
	size_t count = 0;
	struct dirent *entry;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", root, h->name);
	snprintf(name, sizeof(name), "fuzz corpus %s exists", h->name);
	d = opendir(dir);
	CHECK(name, d != NULL);
	if (!d)
		return;
	while ((entry = readdir(d)) && count < sizeof(names) / sizeof(names[0]))
		if (entry->d_name[0] != '.')
			names[count++] = strdup(entry->d_name);
	closedir(d);
	qsort(names, count, sizeof(names[0]), compare_names);
	snprintf(name, sizeof(name), "fuzz corpus %s has seeds", h->name);
	CHECK(name, count > 0);
	for (size_t i = 0; i < count; i++) {
		char *data = NULL;
		size_t len = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		snprintf(name, sizeof(name), "fuzz replay %s/%s", h->name, names[i]);
		if (read_file(path, CORPUS_FILE_MAX, &data, &len) < 0) {
			CHECK(name, 0);
		} else {
			h->run((const uint8_t *)data, len);
			CHECK(name, 1);
		}
		free(data);
		free(names[i]);
	}
}

int main(void)
{
	char root[PATH_MAX];

	if (corpus_root(root, sizeof(root)) < 0) {
		CHECK("fuzz corpus found beside the build folder", 0);
		return unit_exit();
	}
	for (size_t i = 0; i < sizeof(harnesses) / sizeof(harnesses[0]); i++)
		replay(root, &harnesses[i]);
	if (inspect_fd >= 0)
		close(inspect_fd);
	return unit_exit();
}
