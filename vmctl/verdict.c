/* Cached verdicts keyed by kernel release and QEMU binary; see verdict.h. */
#include "vmctl/verdict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "fetch/files.h"

#define VERDICT_MAGIC "nido-verdict 1"
#define VERDICT_FILE_MAX 8192

/* Replaces control characters so that text stays on one line of the file. */
static void flatten(char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			*text = '?';
}

int verdict_key(const char *qemu_path, char *key, size_t len)
{
	struct utsname uts;
	struct stat st;
	int n;

	if (uname(&uts) < 0 || stat(qemu_path, &st) < 0)
		return -errno;
	n = snprintf(key, len, "%s %s %llu:%llu:%lld:%lld.%09ld", uts.release, qemu_path,
		     (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		     (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	flatten(key);
	return 0;
}

/* Returns the text after "<name> " on the line that starts so, or NULL. The
 * lines of text must already be split into strings (lines[0..count)). */
static const char *find_field(char *const lines[], size_t count, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < count; i++)
		if (strncmp(lines[i], name, len) == 0 && lines[i][len] == ' ')
			return lines[i] + len + 1;
	return NULL;
}

int verdict_load(const char *path, const char *key, char *reason, size_t len)
{
	char *text, *lines[8], *line, *save = NULL;
	const char *stored_key, *verdict, *stored_reason;
	size_t count = 0;
	int rc = read_file(path, VERDICT_FILE_MAX, &text, NULL);

	if (rc < 0)
		return rc == -EFBIG ? -ENOENT : rc;
	for (line = strtok_r(text, "\n", &save); line && count < 8; line = strtok_r(NULL, "\n", &save))
		lines[count++] = line;
	rc = -ENOENT;
	if (count == 0 || strcmp(lines[0], VERDICT_MAGIC) != 0)
		goto out;
	stored_key = find_field(lines, count, "key");
	verdict = find_field(lines, count, "verdict");
	stored_reason = find_field(lines, count, "reason");
	if (!stored_key || !verdict || strcmp(stored_key, key) != 0)
		goto out;
	if (strcmp(verdict, "good") == 0)
		rc = 1;
	else if (strcmp(verdict, "bad") == 0)
		rc = 0;
	if (rc >= 0)
		snprintf(reason, len, "%s", stored_reason ? stored_reason : "");
out:
	free(text);
	return rc;
}

int verdict_save(const char *path, const char *key, int good, const char *reason)
{
	char text[VERDICT_FILE_MAX], line[1024];
	int n;

	snprintf(line, sizeof(line), "%s", reason ? reason : "");
	flatten(line);
	n = snprintf(text, sizeof(text), VERDICT_MAGIC "\nkey %s\nverdict %s\nreason %s\n",
		     key, good ? "good" : "bad", line);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EOVERFLOW;
	return write_file_atomic(path, text, (size_t)n, 0644);
}
