/* The Redis tier of the result cache (private to src/server): a small pool of hiredis connections
 * with connect and command timeouts. A connection that fails is closed and left alone for a
 * backoff (100 ms doubling to 5 s); meanwhile calls on it return "unavailable" at once, so a slow
 * or dead Redis costs at most one timeout per backoff period and never an error to the client. */
#ifndef CELER_SERVER_REDIS_H
#define CELER_SERVER_REDIS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

typedef struct celer_redis celer_redis;

typedef struct celer_redis_stats {
    uint64_t hits, misses, errors, sets;
    bool up; /* the last command on some connection worked */
} celer_redis_stats;

/* Parses `url` (redis://[[user]:password@]host[:port][/db]) and prepares `pool` connections,
 * opened on first use (the server need not be up yet). CELER_ERR_INVALID naming the URL when it
 * cannot be parsed. */
celer_status celer_redis_open(const char *url, int timeout_ms, int pool, celer_redis **out);
void celer_redis_close(celer_redis *r);

typedef enum celer_redis_result { CELER_REDIS_HIT, CELER_REDIS_MISS, CELER_REDIS_UNAVAILABLE } celer_redis_result;

/* GET key and its remaining time to live (PTTL) in one round trip. On a hit the value is copied
 * into `arena` and *ttl_ms set (-1: no expiry). */
celer_redis_result celer_redis_get(celer_redis *r, const void *key, size_t key_len, celer_arena *arena, void **value,
                                   size_t *len, int64_t *ttl_ms);
/* SET key value PX ttl_ms; false when Redis is unavailable (nothing else happens). */
bool celer_redis_set(celer_redis *r, const void *key, size_t key_len, const void *value, size_t len, int64_t ttl_ms);

void celer_redis_get_stats(celer_redis *r, celer_redis_stats *out);

#endif
