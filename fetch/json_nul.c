/* Finds the JSON strings that cJSON cuts at a NUL; see json_nul.h.
 * The scan numbers the string tokens of the text in order and notes those
 * with a NUL. A walk of the tree in document order meets the same strings
 * in the same order (for each object member its name, then its value), so
 * the nth string of the text belongs to the nth string of the walk. */
#include "fetch/json_nul.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* A growing list of string token numbers. */
struct token_list {
	size_t *numbers;
	size_t count;
};

/* The state of the walk: the next string's number, the next flagged one. */
struct walk {
	const struct token_list *flagged;
	size_t next_flagged;
	size_t next_token;
	struct json_nul *out;
};

static int push_number(struct token_list *list, size_t number)
{
	size_t *grown = realloc(list->numbers, (list->count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	grown[list->count++] = number;
	list->numbers = grown;
	return 0;
}

static int push_item(struct json_nul *list, const cJSON *item)
{
	const cJSON **grown = realloc(list->items, (list->count + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	grown[list->count++] = item;
	list->items = grown;
	return 0;
}

/* Returns 1 when the string token at text[*pos] (its opening quote) contains
 * a NUL, raw or as \u0000, and moves *pos to its closing quote. */
static int string_has_nul(const char *text, size_t len, size_t *pos)
{
	int nul = 0;
	size_t i = *pos + 1;

	for (; i < len && text[i] != '"'; i++) {
		if (text[i] == '\0') {
			nul = 1;
		} else if (text[i] == '\\' && i + 1 < len) {
			/* Skips the escaped character; the hex digits of \uXXXX
			 * cannot be a quote or a backslash. */
			i++;
			if (text[i] == 'u' && len - i > 4 && memcmp(text + i + 1, "0000", 4) == 0)
				nul = 1;
		}
	}
	*pos = i;
	return nul;
}

/* Numbers the string tokens of text and lists those with a NUL; *total
 * gets the number of tokens. Outside strings, valid JSON has no quote. */
static int scan_text(const char *text, size_t len, struct token_list *flagged, size_t *total)
{
	size_t token = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] != '"')
			continue;
		if (string_has_nul(text, len, &i) && push_number(flagged, token) < 0)
			return -ENOMEM;
		token++;
	}
	*total = token;
	return 0;
}

/* Takes the next string of the walk; returns 1 when the scan flagged it. */
static int take_string(struct walk *w)
{
	int hit = w->next_flagged < w->flagged->count &&
		  w->flagged->numbers[w->next_flagged] == w->next_token;

	w->next_flagged += hit;
	w->next_token++;
	return hit;
}

/* Visits item, a member of an object when named is set. cJSON limits the
 * nesting of a parsed tree (CJSON_NESTING_LIMIT, 1000), so the recursion is
 * bounded. */
static int walk_item(struct walk *w, const cJSON *item, int named)
{
	int hit = named && take_string(w);

	if (cJSON_IsString(item))
		hit |= take_string(w);
	if (hit && push_item(w->out, item) < 0)
		return -ENOMEM;
	for (const cJSON *child = item->child; child; child = child->next)
		if (walk_item(w, child, cJSON_IsObject(item)) < 0)
			return -ENOMEM;
	return 0;
}

/* Orders items by address, for bsearch. */
static int compare_items(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const cJSON *const *)a;
	uintptr_t y = (uintptr_t)*(const cJSON *const *)b;

	return x < y ? -1 : x > y;
}

int json_nul_find(const char *text, size_t len, const cJSON *root, struct json_nul *out)
{
	struct token_list flagged = { NULL, 0 };
	struct json_nul found = { NULL, 0 };
	struct walk w = { &flagged, 0, 0, &found };
	size_t total;
	int rc = scan_text(text, len, &flagged, &total);

	if (rc == 0)
		rc = walk_item(&w, root, 0);
	if (rc == 0 && (w.next_token != total || w.next_flagged != flagged.count))
		rc = -EPROTO;
	free(flagged.numbers);
	if (rc < 0) {
		json_nul_free(&found);
		return rc;
	}
	/* Sorted, so that a catalog with many NULs is still checked in
	 * O(n log k) rather than O(n k). */
	if (found.count > 1)
		qsort(found.items, found.count, sizeof(*found.items), compare_items);
	*out = found;
	return 0;
}

int json_nul_within(const struct json_nul *nul, const cJSON *item, const cJSON *skip)
{
	if (nul->count == 0)
		return 0;
	if (bsearch(&item, nul->items, nul->count, sizeof(*nul->items), compare_items))
		return 1;
	if (item == skip)
		return 0;
	for (const cJSON *child = item->child; child; child = child->next)
		if (json_nul_within(nul, child, skip))
			return 1;
	return 0;
}

void json_nul_free(struct json_nul *nul)
{
	free(nul->items);
	nul->items = NULL;
	nul->count = 0;
}
