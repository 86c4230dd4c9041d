/* Open-file handles; see handle.h. */
#include "fs/handle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct handle *handle_new(enum handle_kind kind)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (h) {
		h->kind = kind;
		h->fd = -1;
		h->lock_fd = -1;
	}
	return h;
}

void handle_free(struct handle *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	if (h->img)
		cache_put(h->img);
	free(h->text);
	free(h);
}

int handle_write(struct handle *h, const char *data, size_t size, off_t off, size_t max)
{
	size_t end = (size_t)off + size;
	char *grown;

	if (off < 0 || (size_t)off > max || size > max - (size_t)off)
		return -EFBIG;
	if (end > h->len) {
		grown = realloc(h->text, end + 1);
		if (!grown)
			return -ENOMEM;
		memset(grown + h->len, 0, end + 1 - h->len);
		h->text = grown;
		h->len = end;
	}
	memcpy(h->text + off, data, size);
	h->dirty = 1;
	return (int)size;
}
