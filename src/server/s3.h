/* The S3 client of the model repository (private to src/server): Triton's s3:// path forms,
 * credentials from the AWS environment, SigV4 signing through libcurl, one ListObjectsV2 walk over
 * a prefix (every page), and GETs streamed to a file with If-None-Match, so that an object whose
 * ETag did not change costs a 304 and no bytes. Errors carry S3's own Code and Message verbatim,
 * never a credential. docs/server.md, "Models from S3", says how the repository uses it. */
#ifndef CELER_SERVER_S3_H
#define CELER_SERVER_S3_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

/* Where the repository lives, from its URL and the environment (celer_s3_parse). */
typedef struct celer_s3_loc {
    char endpoint[256]; /* scheme://host[:port], no trailing slash */
    char bucket[64];
    char prefix[1024];  /* "" or a key prefix ending in '/' */
    char region[64];
} celer_s3_loc;

/* The environment variables the AWS tools read, as given (NULL when unset); celer_s3_env_get
 * fills it from getenv. Kept apart so that tests can set them without touching the process's. */
typedef struct celer_s3_env {
    const char *region, *default_region; /* AWS_REGION, AWS_DEFAULT_REGION */
    const char *endpoint_url;            /* AWS_ENDPOINT_URL */
    const char *access_key, *secret_key, *session_token; /* AWS_ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _SESSION_TOKEN */
    const char *ca_bundle;               /* AWS_CA_BUNDLE */
} celer_s3_env;
void celer_s3_env_get(celer_s3_env *env);

/* Parses Triton's forms: s3://bucket[/prefix] (AWS, or AWS_ENDPOINT_URL when set),
 * s3://host:port/bucket[/prefix] (plain HTTP) and s3://http[s]://host:port/bucket[/prefix]. The
 * region is AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. CELER_ERR_INVALID naming the URL
 * and what is wrong with it. */
celer_status celer_s3_parse(const char *url, const celer_s3_env *env, celer_s3_loc *out);

typedef struct celer_s3 celer_s3;

typedef struct celer_s3_opts {
    int connect_ms; /* bound on each request's connection */
    int read_ms;    /* bound on a stall in a transfer (under 1 byte/s that long) */
    int page_keys;  /* keys asked per ListObjectsV2 page: 1000 (AWS's maximum) when 0; tests ask fewer */
    int attempts;   /* tries of a request that fails for a reason that may pass (no connection, a timeout,
                       5xx, 429, SlowDown), 100 ms, 400 ms ... apart with jitter; 3 when 0 */
} celer_s3_opts;

/* A client for loc with the environment's credentials (none: unsigned requests). */
celer_status celer_s3_open(const celer_s3_loc *loc, const celer_s3_env *env, const celer_s3_opts *opts,
                           celer_s3 **out);
void celer_s3_close(celer_s3 *s);

typedef struct celer_s3_object {
    char *key;      /* the whole key, prefix included (owned by the listing) */
    char etag[96];  /* as S3 sent it, quotes included: opaque (multipart ETags end in -N) */
    int64_t size;
} celer_s3_object;

typedef struct celer_s3_listing {
    celer_s3_object *objs;
    size_t n, cap;
    int pages; /* ListObjectsV2 calls it took */
} celer_s3_listing;
void celer_s3_listing_free(celer_s3_listing *l);

/* Every object under `prefix` (a key prefix; NULL: the location's), page by page, into *out
 * (freed with celer_s3_listing_free, also on error). At most max_keys objects (CELER_ERR_LIMIT
 * beyond). */
celer_status celer_s3_list(celer_s3 *s, const char *prefix, size_t max_keys, celer_s3_listing *out);

/* GETs `key` into the file `path`: streamed into path.part, renamed over path when complete
 * (path.part removed on failure). With if_none_match (an ETag as listed), a 304 sets
 * *not_modified and leaves path alone. At most max_bytes are accepted (CELER_ERR_LIMIT beyond).
 * *etag receives the object's ETag (sizeof 96) and *bytes the body's length. */
celer_status celer_s3_get(celer_s3 *s, const char *key, const char *if_none_match, const char *path,
                          int64_t max_bytes, bool *not_modified, char *etag, int64_t *bytes);

/* --- the pieces below are exposed for the unit tests and the fuzzer --- */

/* Appends to dst (size cap) the AWS URI encoding of src: unreserved characters as they are,
 * every other byte as %XX (uppercase), '/' kept when keep_slash. False when it does not fit. */
bool celer_s3_uri_encode(const char *src, bool keep_slash, char *dst, size_t cap);

/* The query of a ListObjectsV2 page, canonical as SigV4 needs it from libcurl 7.88 (which signs
 * the query as given): parameters sorted, values encoded. token may be NULL. */
bool celer_s3_list_query(const char *prefix, const char *token, int max_keys, char *dst, size_t cap);

/* Parses one ListObjectsV2 page (len bytes of XML): appends its objects to out, sets *truncated
 * and copies NextContinuationToken into token (cap bytes; "" when absent). CELER_ERR_PARSE when
 * the page is not a listing. */
celer_status celer_s3_parse_list(const char *xml, size_t len, celer_s3_listing *out, bool *truncated, char *token,
                                 size_t cap);

/* S3's error body (<Error><Code>..</Code><Message>..</Message>) as "Code: Message" into dst, or
 * false when the body holds no Code. */
bool celer_s3_error_text(const char *xml, size_t len, char *dst, size_t cap);

#endif
