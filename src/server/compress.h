/* Content codings (compress.c), private to src/server: gzip and deflate request bodies and gRPC
 * messages inflated with zlib under a cap checked as the bytes come out (an inflate bomb costs at
 * most the cap, never the whole of what it expands to), answers deflated a step at a time, and
 * the choice of a coding from Accept-Encoding / grpc-accept-encoding. Both transports use it, so
 * HTTP and gRPC take the same codings with the same messages. zlib's own memory comes through
 * celer_malloc (allocation-failure injection reaches it). */
#ifndef CELER_SERVER_COMPRESS_H
#define CELER_SERVER_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "server/json.h"

typedef enum celer_coding { CELER_CODING_IDENTITY, CELER_CODING_GZIP, CELER_CODING_DEFLATE, CELER_CODING_UNKNOWN } celer_coding;
extern const char *const celer_coding_names[3]; /* "identity", "gzip", "deflate" */

/* A Content-Encoding or grpc-encoding value (n bytes; spaces around it ignored, case ignored):
 * "" and "identity" are IDENTITY; "x-gzip" is gzip, as RFC 9110 asks. */
celer_coding celer_coding_parse(const char *s, size_t n);
/* The coding an answer takes for an Accept-Encoding header (NULL: none): Triton's rule, the
 * highest q among identity, gzip and deflate ("*" standing for gzip when gzip is not named), the
 * first one on a tie; q=0 refuses a coding. IDENTITY when nothing better is accepted. */
celer_coding celer_coding_accepted(const char *header);
/* Whether a grpc-accept-encoding list (n bytes, comma-separated) names `coding`. */
bool celer_coding_listed(const char *list, size_t n, celer_coding coding);

/* Receives inflated bytes; a failure stops the inflation and is returned by the feed. */
typedef celer_status (*celer_sink_fn)(void *user, const void *p, size_t n);

/* An inflation in progress. "deflate" takes the zlib format (RFC 1950, what the name means in
 * HTTP and gRPC) and, told apart by its first two bytes, raw deflate (RFC 1951, which some clients
 * send); "gzip" takes one or more gzip members. Owns zlib's state once started: end it. */
typedef struct celer_inflate {
    z_stream z;
    celer_coding coding;
    bool started, ended;
    uint8_t head[2]; /* deflate: the first bytes, held until they tell zlib from raw deflate */
    int n_head;
    size_t cap, out; /* the cap on the output, and the bytes out so far */
} celer_inflate;

void celer_inflate_init(celer_inflate *f, celer_coding coding, size_t cap);
/* Inflates n more input bytes, handing the output to sink in pieces of at most 16 KiB. Errors:
 * CELER_ERR_LIMIT when the output would pass the cap (nothing past it reaches sink), CELER_ERR_PARSE
 * for bytes that are not the coding (zlib's reason), bytes after a deflate stream's end, and
 * CELER_ERR_NOMEM; or the sink's. */
celer_status celer_inflate_feed(celer_inflate *f, const void *in, size_t n, celer_sink_fn sink, void *user);
/* The input is complete: CELER_ERR_PARSE when the stream was cut short. */
celer_status celer_inflate_finish(celer_inflate *f);
void celer_inflate_end(celer_inflate *f);

/* A compression in progress (level 1, zlib's fastest: answers are mostly tensors, which gain
 * little from harder work). Owns zlib's state: end it. */
typedef struct celer_deflate {
    z_stream z;
    bool started, done;
} celer_deflate;
celer_status celer_deflate_init(celer_deflate *d, celer_coding coding); /* GZIP or DEFLATE (zlib format) */
/* Compresses from in[0..*in_len) into out[0..cap): returns the bytes written and sets *in_len to
 * the bytes taken. With `finish` (no input after this) the stream is ended: d->done once all of it
 * is out (call again with room while not done). */
size_t celer_deflate_step(celer_deflate *d, const void *in, size_t *in_len, void *out, size_t cap, bool finish);
void celer_deflate_end(celer_deflate *d);
/* Compresses n bytes at `in` and appends them to `out` (its cap and status apply). */
celer_status celer_compress(celer_coding coding, const void *in, size_t n, celer_jbuf *out);

#endif
