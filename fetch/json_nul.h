/* Strings that cJSON cuts short. cJSON 1.7 decodes the escape \u0000, and
 * takes a raw NUL byte, inside a string, but its strings end at the first
 * NUL: the name "abc\u0000../x" reads as "abc", and the member name
 * "url\u0000x" as "url". This module finds, in the text a tree was parsed
 * from, the strings that contain a NUL and the tree items they belong to,
 * so that the catalog can reject the entries that contain one. */
#ifndef NIDO_JSON_NUL_H
#define NIDO_JSON_NUL_H

#include <stddef.h>

struct cJSON;

/* The items of one tree whose member name or string value contains a NUL. */
struct json_nul {
	const struct cJSON **items;
	size_t count;
};

/* Lists the items of root whose member name or string value contains a NUL.
 * text and len are the bytes cJSON parsed root from, up to where it stopped.
 * Returns 0, -ENOMEM, or -EPROTO when the strings of the text do not match
 * the tree, which means cJSON read the text in a way this scan does not
 * expect. Free with json_nul_free. */
int json_nul_find(const char *text, size_t len, const struct cJSON *root, struct json_nul *out);

/* Returns 1 when item, or an item inside it, is listed. skip, a member of
 * item or NULL, is looked at itself, but the items inside it are not. */
int json_nul_within(const struct json_nul *nul, const struct cJSON *item,
		    const struct cJSON *skip);

/* Frees the list; accepts a list that json_nul_find failed to fill. */
void json_nul_free(struct json_nul *nul);

#endif
