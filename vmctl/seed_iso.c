/* Builds the seed ISO image in memory with libisofs; see seed_iso.h. Owns
 * libisofs's process-wide setup and the lock that serializes builds. */
#include "vmctl/seed_iso.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* nidofs provides no libburn, so libisofs.h declares struct burn_source. */
#define LIBISOFS_WITHOUT_LIBBURN
#include <libisofs/libisofs.h>

#define SECTOR 2048
#define FIFO_SECTORS 32		/* the smallest ring buffer libisofs accepts */
#define ISO_MAX (64 * 1024 * 1024)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result;

/* libisofs documents no thread safety, and its message queue is global, so
 * one build runs at a time. A test program that builds a seed of a few KiB
 * runs in under 2 ms here, exec included, so the lock costs little. */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_libisofs(void)
{
	char queue[] = "SORRY", print[] = "NEVER", prefix[] = "libisofs";

	/* Flag bit 0 leaves the locale alone, because setlocale is not safe in
	 * a threaded daemon. Every name in the seed is ASCII anyway. */
	init_result = iso_init_with_flag(1);
	/* Errors are queued for the message of a failed build, never printed. */
	if (init_result >= 0)
		iso_set_msgs_severities(queue, print, prefix);
}

/* Empties libisofs's message queue. */
static void drop_messages(void)
{
	char never[] = "NEVER", text[ISO_MSGS_MESSAGE_LEN], severity[80];
	int code, image_id;

	iso_obtain_msgs(never, &code, &image_id, text, severity);
}

/* Writes what failed into err: the oldest queued libisofs error when there
 * is one, else the text of the error code rc. Returns the matching -errno. */
static int describe(int rc, const char *step, char *err, size_t errlen)
{
	char sorry[] = "SORRY", text[ISO_MSGS_MESSAGE_LEN], severity[80];
	int code, image_id;

	if (iso_obtain_msgs(sorry, &code, &image_id, text, severity) == 1)
		snprintf(err, errlen, "%s: %s", step, text);
	else
		snprintf(err, errlen, "%s: %s", step, iso_error_to_msg(rc));
	return rc == (int)ISO_OUT_OF_MEM ? -ENOMEM : -EIO;
}

/* Adds one file to the root directory, with mode 0600 and owner 0:0. */
static int add_file(IsoImage *image, const struct seed_iso_file *f, char *err, size_t errlen)
{
	unsigned char *copy = malloc(f->len > 0 ? f->len : 1);
	IsoStream *stream;
	IsoFile *file;
	char step[128];
	int rc;

	snprintf(step, sizeof(step), "cannot add %s", f->name);
	if (!copy)
		return describe((int)ISO_OUT_OF_MEM, step, err, errlen);
	memcpy(copy, f->data, f->len);
	/* The stream takes ownership of copy and frees it. */
	rc = iso_memory_stream_new(copy, f->len, &stream);
	if (rc < 0) {
		free(copy);
		return describe(rc, step, err, errlen);
	}
	rc = iso_image_add_new_file(image, iso_image_get_root(image), f->name, stream, &file);
	if (rc < 0) {
		iso_stream_unref(stream);
		return describe(rc, step, err, errlen);
	}
	iso_node_set_permissions((IsoNode *)file, 0600);
	iso_node_set_uid((IsoNode *)file, 0);
	iso_node_set_gid((IsoNode *)file, 0);
	return 0;
}

static int make_options(IsoWriteOpts **opts, char *err, size_t errlen)
{
	int rc;

	/* Profile 0 is plain ISO 9660 level 1, as `xorriso -as mkisofs` writes. */
	rc = iso_write_opts_new(opts, 0);
	if (rc < 0)
		return describe(rc, "cannot set the write options", err, errlen);
	/* Relaxed volume attributes keep the label in lower case, as xorriso
	 * and genisoimage write it. Strict ISO 9660 would make it CIDATA. */
	if ((rc = iso_write_opts_set_rockridge(*opts, 1)) < 0 ||
	    (rc = iso_write_opts_set_joliet(*opts, 1)) < 0 ||
	    (rc = iso_write_opts_set_relaxed_vol_atts(*opts, 1)) < 0 ||
	    (rc = iso_write_opts_set_fifo_size(*opts, FIFO_SECTORS)) < 0) {
		iso_write_opts_free(*opts);
		return describe(rc, "cannot set the write options", err, errlen);
	}
	return 0;
}

/* Reads the whole image that src produces into a buffer of its announced
 * size, which must be a whole number of sectors. */
static int read_image(struct burn_source *src, unsigned char **out, size_t *outlen,
		      char *err, size_t errlen)
{
	off_t size = src->get_size(src);
	unsigned char *buf;
	size_t done = 0;
	int n = 1;

	if (size <= 0 || size > ISO_MAX || size % SECTOR != 0) {
		snprintf(err, errlen, "libisofs announced an image of %lld bytes", (long long)size);
		return -EIO;
	}
	buf = malloc((size_t)size);
	if (!buf)
		return describe((int)ISO_OUT_OF_MEM, "cannot hold the image", err, errlen);
	while (done < (size_t)size && (n = src->read_xt(src, buf + done, SECTOR)) == SECTOR)
		done += SECTOR;
	if (done < (size_t)size) {
		free(buf);
		if (n < 0)
			return describe(n, "cannot generate the image", err, errlen);
		snprintf(err, errlen, "image ended after %zu of %lld bytes", done, (long long)size);
		return -EIO;
	}
	*out = buf;
	*outlen = done;
	return 0;
}

/* Writes image out through libisofs's writer thread into *out. */
static int write_image(IsoImage *image, unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	struct burn_source *src;
	IsoWriteOpts *opts;
	int rc;

	rc = make_options(&opts, err, errlen);
	if (rc < 0)
		return rc;
	rc = iso_image_create_burn_source(image, opts, &src);
	iso_write_opts_free(opts);
	if (rc < 0)
		return describe(rc, "cannot start writing", err, errlen);
	rc = read_image(src, out, outlen, err, errlen);
	if (rc < 0)
		src->cancel(src);
	/* free_data waits for the writer thread to end. */
	src->free_data(src);
	free(src);
	return rc;
}

static int build_locked(const struct seed_iso_file *files, size_t count, unsigned char **out,
			size_t *outlen, char *err, size_t errlen)
{
	IsoImage *image;
	int rc;

	drop_messages();
	rc = iso_image_new(SEED_ISO_LABEL, &image);
	if (rc < 0)
		return describe(rc, "cannot create the image", err, errlen);
	rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = add_file(image, &files[i], err, errlen);
	if (rc == 0)
		rc = write_image(image, out, outlen, err, errlen);
	iso_image_unref(image);
	drop_messages();
	return rc;
}

int seed_iso_build(const struct seed_iso_file *files, size_t count, void **out, size_t *outlen,
		   char *err, size_t errlen)
{
	unsigned char *image = NULL;
	size_t len = 0;
	int rc;

	pthread_once(&init_once, init_libisofs);
	if (init_result < 0) {
		snprintf(err, errlen, "cannot initialize libisofs: %s", iso_error_to_msg(init_result));
		return -EIO;
	}
	pthread_mutex_lock(&build_lock);
	rc = build_locked(files, count, &image, &len, err, errlen);
	pthread_mutex_unlock(&build_lock);
	if (rc < 0)
		return rc;
	*out = image;
	*outlen = len;
	return 0;
}
