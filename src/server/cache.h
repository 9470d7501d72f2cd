/* Result cache (private to src/server): 128-bit keys (XXH3) over everything that decides a
 * result, an in-process tier (byte-bounded LRU with TTL, sharded so workers and connection threads
 * rarely meet on one lock), and coalescing of identical requests that miss at the same time.
 *
 * Values are a model's (or pipeline's) outputs, serialized (celer_cache_pack): each hit is
 * encoded for its own request (id, JSON or binary, selected outputs), so one entry serves every
 * request form. */
#ifndef CELER_SERVER_CACHE_H
#define CELER_SERVER_CACHE_H

#include <stdint.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "base/base.h"
#include "tensor/tensor.h"

typedef struct celer_cache_key {
    uint64_t lo, hi;
} celer_cache_key;

/* Builds a key: feed every part that decides the result, each framed (length first) so that
 * ("ab","c") and ("a","bc") differ. */
typedef struct celer_cache_keyer {
    XXH3_state_t state;
} celer_cache_keyer;

void celer_cache_key_begin(celer_cache_keyer *k);
void celer_cache_key_bytes(celer_cache_keyer *k, const void *data, size_t len);
void celer_cache_key_str(celer_cache_keyer *k, const char *s);
void celer_cache_key_u64(celer_cache_keyer *k, uint64_t v);
/* name, dtype, shape and every byte of the data (BYTES: each element's length and bytes). */
void celer_cache_key_tensor(celer_cache_keyer *k, const char *name, const celer_tensor *t);
celer_cache_key celer_cache_key_end(celer_cache_keyer *k);

/* ---- values: outputs packed into one buffer ---- */

/* Packs n tensors into a malloc'ed buffer (*out, *len; the caller frees). CELER_ERR_LIMIT past
 * `max` bytes (a result too large to cache). */
celer_status celer_cache_pack(const celer_tensor *t, int n, size_t max, void **out, size_t *len);
/* Unpacks into tensors allocated in `arena` (data copied); *n is set. CELER_ERR_PARSE when the
 * buffer is not what celer_cache_pack wrote. */
celer_status celer_cache_unpack(const void *data, size_t len, celer_arena *arena, celer_tensor **out, int *n);

/* ---- the in-process tier ---- */
typedef struct celer_cache celer_cache;

typedef struct celer_cache_stats {
    uint64_t hits, misses, evictions, expirations, inserts, coalesced;
    uint64_t bytes, entries;
} celer_cache_stats;

/* A cache holding at most max_bytes of values (plus a small per-entry overhead, counted too).
 * max_bytes 0 gives a cache that stores nothing (coalescing still works). */
celer_status celer_cache_init(size_t max_bytes, celer_cache **out);
void celer_cache_free(celer_cache *c);

/* Looks up `key` at time now_ns: on a hit (present, not expired) copies the value into `arena`
 * and returns true. An expired entry is dropped. */
bool celer_cache_get(celer_cache *c, celer_cache_key key, int64_t now_ns, celer_arena *arena, void **value,
                     size_t *len);
/* The same, also giving the entry's expiry. */
bool celer_cache_get_ex(celer_cache *c, celer_cache_key key, int64_t now_ns, celer_arena *arena, void **value,
                        size_t *len, int64_t *expires_ns);
/* Stores a copy of the value until expires_ns, evicting least recently used entries of its shard
 * to stay under the bound; a value larger than a shard's share is not stored. Replaces an
 * existing entry. */
void celer_cache_put(celer_cache *c, celer_cache_key key, const void *value, size_t len, int64_t expires_ns);

/* ---- coalescing ---- */
typedef struct celer_cache_waiter celer_cache_waiter;
struct celer_cache_waiter {
    void *user;
    celer_cache_waiter *next; /* owned by the cache while waiting */
};

/* The first request to miss on `key` becomes its leader (returns true) and computes; a request
 * that misses while a leader computes is queued behind it (returns false): the leader's
 * celer_cache_finish hands it back. `w` must live until then. */
bool celer_cache_join(celer_cache *c, celer_cache_key key, celer_cache_waiter *w);
/* The leader is done: returns the requests that waited on `key` (linked by next), and forgets
 * the key; the leader completes each. */
celer_cache_waiter *celer_cache_finish(celer_cache *c, celer_cache_key key);

void celer_cache_get_stats(celer_cache *c, celer_cache_stats *out);

#endif
