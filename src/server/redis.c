/* Redis tier: a pool of synchronous hiredis connections, each behind its own lock (see redis.h).
 * A caller takes the first free connection (trylock), else waits for the one its thread hashes
 * to. Commands are pipelined where two are needed (GET + PTTL), so a lookup is one round trip. */
#include "server/redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_POOL 64
#define BACKOFF_MIN_NS (100 * 1000000LL)
#define BACKOFF_MAX_NS (5000 * 1000000LL)

typedef struct conn {
    pthread_mutex_t mu;
    redisContext *ctx;      /* NULL: closed */
    int64_t down_until_ns;  /* closed after a failure: no attempt before this */
    int64_t backoff_ns;
} conn;

struct celer_redis {
    char host[256], user[128], password[256];
    int port, db, timeout_ms, n;
    conn pool[MAX_POOL];
    atomic_ullong hits, misses, errors, sets;
    atomic_bool up;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* redis://[[user]:password@]host[:port][/db] */
static bool parse_url(const char *url, celer_redis *r) {
    const char *p = url;
    if (strncmp(p, "redis://", 8)) return false;
    p += 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) return false;
        size_t ul = (size_t)(colon - p), pl = (size_t)(at - colon - 1);
        if (ul >= sizeof r->user || pl >= sizeof r->password) return false;
        memcpy(r->user, p, ul);
        memcpy(r->password, colon + 1, pl);
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof r->host) return false;
    memcpy(r->host, p, hl);
    p += hl;
    r->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) return false;
        r->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (*end || db < 0 || db > 1000000) return false;
        r->db = (int)db;
    } else if (*p && strcmp(p, "/")) {
        return false;
    }
    return true;
}

celer_status celer_redis_open(const char *url, int timeout_ms, int pool, celer_redis **out) {
    *out = NULL;
    celer_redis *r = calloc(1, sizeof *r);
    if (!r) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    if (!parse_url(url, r)) {
        free(r);
        /* the password never reaches the log: what precedes '@' is left out */
        const char *at = strrchr(url, '@');
        return celer_errorf(CELER_ERR_INVALID, "--cache-redis '%s%s' is not redis://[[user]:password@]host[:port][/db]",
                            at ? "redis://***@" : "", at ? at + 1 : url);
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10;
    r->n = pool < 1 ? 1 : pool > MAX_POOL ? MAX_POOL : pool;
    for (int i = 0; i < r->n; i++) pthread_mutex_init(&r->pool[i].mu, NULL);
    *out = r;
    return CELER_OK;
}

void celer_redis_close(celer_redis *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        if (r->pool[i].ctx) redisFree(r->pool[i].ctx);
        pthread_mutex_destroy(&r->pool[i].mu);
    }
    free(r);
}

static void fail(celer_redis *r, conn *c) {
    atomic_fetch_add(&r->errors, 1);
    atomic_store(&r->up, false);
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
    c->backoff_ns = c->backoff_ns ? CELER_MIN(c->backoff_ns * 2, BACKOFF_MAX_NS) : BACKOFF_MIN_NS;
    c->down_until_ns = now_ns() + c->backoff_ns;
}

/* A reply that is not an error. */
static bool ok_reply(const redisReply *rep) { return rep && rep->type != REDIS_REPLY_ERROR; }

/* Opens c (with AUTH and SELECT) unless it is open or backing off. Caller holds c->mu. */
static bool ready(celer_redis *r, conn *c) {
    if (c->ctx) return true;
    if (now_ns() < c->down_until_ns) return false;
    struct timeval tv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    c->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c->ctx || c->ctx->err || redisSetTimeout(c->ctx, tv) != REDIS_OK) {
        fail(r, c);
        return false;
    }
    redisReply *rep = NULL;
    if (r->password[0]) {
        rep = r->user[0] ? redisCommand(c->ctx, "AUTH %s %s", r->user, r->password)
                         : redisCommand(c->ctx, "AUTH %s", r->password);
        bool good = ok_reply(rep);
        freeReplyObject(rep);
        if (!good) {
            fail(r, c);
            return false;
        }
    }
    if (r->db) {
        rep = redisCommand(c->ctx, "SELECT %d", r->db);
        bool good = ok_reply(rep);
        freeReplyObject(rep);
        if (!good) {
            fail(r, c);
            return false;
        }
    }
    return true;
}

/* A free connection if there is one, else the one this thread hashes to (waiting for it). */
static conn *take(celer_redis *r) {
    for (int i = 0; i < r->n; i++)
        if (!pthread_mutex_trylock(&r->pool[i].mu)) return &r->pool[i];
    conn *c = &r->pool[(uintptr_t)pthread_self() % (uintptr_t)r->n];
    pthread_mutex_lock(&c->mu);
    return c;
}

celer_redis_result celer_redis_get(celer_redis *r, const void *key, size_t key_len, celer_arena *arena, void **value,
                                   size_t *len, int64_t *ttl_ms) {
    conn *c = take(r);
    celer_redis_result res = CELER_REDIS_UNAVAILABLE;
    if (ready(r, c)) {
        redisReply *get = NULL, *ttl = NULL;
        bool sent = redisAppendCommand(c->ctx, "GET %b", key, key_len) == REDIS_OK &&
                    redisAppendCommand(c->ctx, "PTTL %b", key, key_len) == REDIS_OK;
        if (sent && redisGetReply(c->ctx, (void **)&get) == REDIS_OK && redisGetReply(c->ctx, (void **)&ttl) == REDIS_OK &&
            ok_reply(get) && ok_reply(ttl)) {
            c->backoff_ns = 0;
            atomic_store(&r->up, true);
            if (get->type == REDIS_REPLY_STRING && ttl->type == REDIS_REPLY_INTEGER && ttl->integer != -2) {
                void *copy = celer_arena_alloc_uninit(arena, get->len ? get->len : 1);
                if (copy) {
                    memcpy(copy, get->str, get->len);
                    *value = copy;
                    *len = get->len;
                    *ttl_ms = ttl->integer;
                    res = CELER_REDIS_HIT;
                }
            }
            if (res != CELER_REDIS_HIT) res = CELER_REDIS_MISS;
        } else {
            fail(r, c);
        }
        freeReplyObject(get);
        freeReplyObject(ttl);
    }
    pthread_mutex_unlock(&c->mu);
    if (res == CELER_REDIS_HIT) atomic_fetch_add(&r->hits, 1);
    else if (res == CELER_REDIS_MISS) atomic_fetch_add(&r->misses, 1);
    return res;
}

bool celer_redis_set(celer_redis *r, const void *key, size_t key_len, const void *value, size_t len, int64_t ttl_ms) {
    conn *c = take(r);
    bool done = false;
    if (ready(r, c)) {
        redisReply *rep = redisCommand(c->ctx, "SET %b %b PX %lld", key, key_len, value, len,
                                       (long long)(ttl_ms > 0 ? ttl_ms : 1));
        done = ok_reply(rep);
        freeReplyObject(rep);
        if (done) {
            c->backoff_ns = 0;
            atomic_store(&r->up, true);
        } else {
            fail(r, c);
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (done) atomic_fetch_add(&r->sets, 1);
    return done;
}

void celer_redis_get_stats(celer_redis *r, celer_redis_stats *out) {
    out->hits = atomic_load(&r->hits);
    out->misses = atomic_load(&r->misses);
    out->errors = atomic_load(&r->errors);
    out->sets = atomic_load(&r->sets);
    out->up = atomic_load(&r->up);
}
