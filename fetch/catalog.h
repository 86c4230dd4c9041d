/* The image catalog: the JSON manifest format of the original Nido tool,
 * parsed with cJSON, validated entry by entry, and tag resolution.
 * Owns struct catalog and everything it points to. */
#ifndef NIDO_CATALOG_H
#define NIDO_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#define CATALOG_MAX_FILE (64u * 1024 * 1024)
#define CATALOG_NAME_MAX 64

struct cat_image;

struct cat_version {
	char *version;
	char **aliases;			/* as listed, less the rejected ones */
	size_t naliases;
	char *arch, *url, *checksum_type, *checksum, *format;
	char *checksum_url, *checksum_regex, *ssh_user, *ssh_password;
	char **part_urls;
	size_t nparts;
	char *kernel_url, *initrd_url, *cmdline;
	uint64_t size;			/* size_bytes; 0 when the catalog leaves it out */
	struct cat_image *image;	/* owner */
};

/* An alias after resolution: the version it points to (the highest claimant). */
struct cat_alias {
	char *name;
	struct cat_version *target;
};

struct cat_image {
	char *name, *registry, *description, *homepage, *ssh_user, *ssh_password;
	struct cat_version *versions;
	size_t nversions;
	struct cat_alias *aliases;
	size_t naliases;
};

struct catalog {
	char *source;			/* file path or URL it came from */
	char *schema_version, *updated_at;
	struct cat_image *images;
	size_t nimages;
	size_t *by_name;		/* index of images by name: position + 1, 0 empty */
	size_t by_name_slots;		/* a power of two, over twice the image count */
	char **problems;		/* one message per rejected entry or alias */
	size_t nproblems;
};

/* Parses and validates a catalog. A document that is not a catalog fails
 * with -EINVAL and a message naming source and position in err; entries that
 * fail validation are left out and listed in cat->problems. Free with
 * catalog_free. */
int catalog_parse(const char *text, size_t len, const char *source, struct catalog **out,
		  char *err, size_t errlen);
int catalog_load_file(const char *path, struct catalog **out, char *err, size_t errlen);
void catalog_free(struct catalog *cat);

const struct cat_image *catalog_image(const struct catalog *cat, const char *name);
const struct cat_version *catalog_version(const struct cat_image *img, const char *version);

/* Resolves "name:version", "name:alias" or "name" (its latest) to a version;
 * NULL with errno ENOENT (unknown) or EINVAL (malformed tag). */
const struct cat_version *catalog_resolve(const struct catalog *cat, const char *tag);

/* Compares two version strings: numeric runs by value, the rest by bytes. */
int version_compare(const char *a, const char *b);

/* Returns 1 for a string usable as one path component and tag part. */
int catalog_name_valid(const char *s);

/* Returns 1 when the URL's bytes are the disk itself and can be read by range;
 * 0 for compressed or archived entries that must be pulled whole. */
int cat_version_lazy(const struct cat_version *v);

/* Writes the path of the catalog that ships with the programs: in
 * $NIDO_DATADIR or the installed data directory, else in the source tree. */
void catalog_default_path(char *buf, size_t len);

/* Returns 1 when the version's arch is one qemu-system-x86_64 runs as a
 * guest (amd64 or x86_64, or not given). */
int cat_version_arch_ok(const struct cat_version *v);

/* Writes "name:version" into buf. */
void cat_version_tag(const struct cat_version *v, char *buf, size_t len);

/* The image file name inside its version directory: "disk.qcow2" or "disk.raw". */
const char *cat_version_disk_name(const struct cat_version *v);

#endif
