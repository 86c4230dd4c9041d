/* Facts learned per origin (scheme, host and port) from its responses, shared by
 * every image on it: whether its ETags can be trusted in If-Range. Some CDN
 * nodes hand out a different ETag for the same bytes, or answer 200 to every
 * If-Range that carries an ETag; after one such answer the origin is asked
 * with Last-Modified instead, and size and checksum guard the rest. */
#ifndef NIDO_ORIGIN_H
#define NIDO_ORIGIN_H

int origin_etag_trusted(const char *url);

/* Records that url's origin sent an ETag response that cannot be trusted; logs once. */
void origin_distrust_etag(const char *url, const char *why);

#endif
