/* Result cache: keys, packed values, the sharded in-process LRU and coalescing (see cache.h).
 *
 * The key's low bits pick one of SHARDS shards; each has its own lock, a chained hash table, an
 * LRU list (most recent first) and a byte budget (max_bytes / SHARDS). Expired entries are dropped
 * when met (a lookup, or the LRU tail while making room): no sweeper thread. */
#include "server/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 16
#define PACK_MAGIC 0x31434c43u /* "CLC1" */

/* ---- keys ---- */

void celer_cache_key_begin(celer_cache_keyer *k) { XXH3_128bits_reset(&k->state); }

void celer_cache_key_bytes(celer_cache_keyer *k, const void *data, size_t len) {
    uint64_t n = len;
    XXH3_128bits_update(&k->state, &n, sizeof n);
    if (len) XXH3_128bits_update(&k->state, data, len);
}

void celer_cache_key_str(celer_cache_keyer *k, const char *s) { celer_cache_key_bytes(k, s ? s : "", s ? strlen(s) : 0); }

void celer_cache_key_u64(celer_cache_keyer *k, uint64_t v) { XXH3_128bits_update(&k->state, &v, sizeof v); }

void celer_cache_key_tensor(celer_cache_keyer *k, const char *name, const celer_tensor *t) {
    celer_cache_key_str(k, name);
    celer_cache_key_u64(k, (uint64_t)t->dtype);
    celer_cache_key_u64(k, (uint64_t)t->shape.rank);
    for (int d = 0; d < t->shape.rank; d++) celer_cache_key_u64(k, (uint64_t)t->shape.dims[d]);
    int64_t n = celer_shape_numel(&t->shape);
    if (n <= 0) return;
    if (t->dtype == CELER_STRING) {
        for (int64_t i = 0; i < n; i++) {
            celer_str s = ((const celer_str *)t->data)[i];
            celer_cache_key_bytes(k, s.data, s.len); /* framed by the length: NULs inside count */
        }
        return;
    }
    celer_cache_key_bytes(k, t->data, (size_t)n * celer_dtype_size(t->dtype));
}

celer_cache_key celer_cache_key_end(celer_cache_keyer *k) {
    XXH128_hash_t h = XXH3_128bits_digest(&k->state);
    return (celer_cache_key){h.low64, h.high64};
}

static bool key_eq(celer_cache_key a, celer_cache_key b) { return a.lo == b.lo && a.hi == b.hi; }

/* ---- packed values: magic, count, then per tensor dtype, rank, dims, byte count, bytes (BYTES:
 * per element a length and the bytes) ---- */

typedef struct wbuf {
    char *p;
    size_t len, cap, max;
    bool over;  /* past max, or a bad shape: later writes are ignored */
    bool nomem; /* growing failed: the same, but the answer is CELER_ERR_NOMEM, not LIMIT */
} wbuf;

static void put_bytes(wbuf *b, const void *d, size_t n) {
    if (b->over || b->nomem) return;
    if (n > b->max - b->len) {
        b->over = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *p = celer_realloc(b->p, cap);
        if (!p) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void put_u64(wbuf *b, uint64_t v) { put_bytes(b, &v, sizeof v); }

celer_status celer_cache_pack(const celer_tensor *t, int n, size_t max, void **out, size_t *len) {
    wbuf b = {.max = max};
    put_u64(&b, PACK_MAGIC);
    put_u64(&b, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        put_u64(&b, (uint64_t)t[i].dtype);
        put_u64(&b, (uint64_t)t[i].shape.rank);
        for (int d = 0; d < t[i].shape.rank; d++) put_u64(&b, (uint64_t)t[i].shape.dims[d]);
        int64_t numel = celer_shape_numel(&t[i].shape);
        if (numel < 0) b.over = true;
        if (t[i].dtype == CELER_STRING) {
            for (int64_t e = 0; e < numel; e++) {
                celer_str s = ((const celer_str *)t[i].data)[e];
                put_u64(&b, s.len);
                put_bytes(&b, s.data, s.len);
            }
        } else {
            size_t bytes = (size_t)(numel > 0 ? numel : 0) * celer_dtype_size(t[i].dtype);
            put_u64(&b, bytes);
            put_bytes(&b, t[i].data, bytes);
        }
    }
    if (b.over || b.nomem) {
        free(b.p);
        if (b.nomem) return celer_errorf(CELER_ERR_NOMEM, "cache: out of memory packing a result (%zu bytes so far)", b.len);
        return celer_errorf(CELER_ERR_LIMIT, "result larger than the cache takes (%zu bytes)", max);
    }
    *out = b.p;
    *len = b.len;
    return CELER_OK;
}

typedef struct rbuf {
    const char *p;
    size_t len, off;
} rbuf;

static bool get_u64(rbuf *r, uint64_t *v) {
    if (r->len - r->off < sizeof *v) return false;
    memcpy(v, r->p + r->off, sizeof *v);
    r->off += sizeof *v;
    return true;
}

celer_status celer_cache_unpack(const void *data, size_t len, celer_arena *arena, celer_tensor **out, int *n) {
    rbuf r = {data, len, 0};
    uint64_t magic, count;
    if (!get_u64(&r, &magic) || magic != PACK_MAGIC || !get_u64(&r, &count) || count > 4096)
        return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
    celer_tensor *t = celer_arena_alloc(arena, sizeof *t * (size_t)(count + 1));
    if (!t) return CELER_ERR_NOMEM;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t dt, rank;
        if (!get_u64(&r, &dt) || !get_u64(&r, &rank) || dt >= CELER_DTYPE_COUNT || rank > CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
        t[i].dtype = (celer_dtype)dt;
        t[i].shape.rank = (int)rank;
        for (uint64_t d = 0; d < rank; d++) {
            uint64_t v;
            if (!get_u64(&r, &v)) return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
            t[i].shape.dims[d] = (int64_t)v;
        }
        int64_t numel = celer_shape_numel(&t[i].shape);
        if (numel < 0) return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
        if (t[i].dtype == CELER_STRING) {
            /* every element takes at least its 8-byte length */
            if ((uint64_t)numel > (r.len - r.off) / sizeof(uint64_t)) return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
            celer_str *els = celer_arena_alloc(arena, sizeof *els * (size_t)(numel + 1));
            if (!els) return CELER_ERR_NOMEM;
            for (int64_t e = 0; e < numel; e++) {
                uint64_t l;
                if (!get_u64(&r, &l) || l > r.len - r.off) return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
                CELER_TRY(celer_str_dup(arena, (celer_str){r.p + r.off, (size_t)l}, &els[e]));
                r.off += (size_t)l;
            }
            t[i].data = els;
        } else {
            uint64_t bytes;
            if (!get_u64(&r, &bytes) || bytes > r.len - r.off || bytes != (uint64_t)numel * celer_dtype_size(t[i].dtype))
                return celer_errorf(CELER_ERR_PARSE, "cache: malformed value");
            t[i].data = celer_arena_alloc_uninit(arena, bytes ? (size_t)bytes : 1);
            if (!t[i].data) return CELER_ERR_NOMEM;
            memcpy(t[i].data, r.p + r.off, (size_t)bytes);
            r.off += (size_t)bytes;
        }
    }
    *out = t;
    *n = (int)count;
    return CELER_OK;
}

/* ---- the in-process tier ---- */

typedef struct entry entry;
struct entry {
    celer_cache_key key;
    int64_t expires_ns;
    size_t len;
    entry *chain;            /* bucket chain */
    entry *newer, *older;    /* LRU list */
    char data[];
};

typedef struct inflight inflight;
struct inflight {
    celer_cache_key key;
    celer_cache_waiter *head, *tail;
    inflight *next;
};

typedef struct shard {
    pthread_mutex_t mu;
    entry **buckets;
    size_t n_buckets, n_entries, bytes, max_bytes;
    entry *newest, *oldest;
    inflight *inflight;
} shard;

struct celer_cache {
    shard shards[SHARDS];
    atomic_ullong hits, misses, evictions, expirations, inserts, coalesced;
};

static size_t cost(size_t len) { return sizeof(entry) + len; }

celer_status celer_cache_init(size_t max_bytes, celer_cache **out) {
    celer_cache *c = celer_calloc(1, sizeof *c);
    if (!c) return celer_errorf(CELER_ERR_NOMEM, "cache: out of memory");
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mu, NULL);
        c->shards[i].max_bytes = max_bytes / SHARDS;
    }
    *out = c;
    return CELER_OK;
}

void celer_cache_free(celer_cache *c) {
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        for (entry *e = s->newest, *next; e; e = next) {
            next = e->older;
            free(e);
        }
        for (inflight *f = s->inflight, *next; f; f = next) {
            next = f->next;
            free(f);
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(c);
}

static shard *shard_of(celer_cache *c, celer_cache_key k) { return &c->shards[k.lo % SHARDS]; }
static size_t bucket_of(const shard *s, celer_cache_key k) { return (size_t)(k.hi % s->n_buckets); }

static void lru_unlink(shard *s, entry *e) {
    if (e->newer) e->newer->older = e->older;
    else s->newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(shard *s, entry *e) {
    e->newer = NULL;
    e->older = s->newest;
    if (s->newest) s->newest->newer = e;
    s->newest = e;
    if (!s->oldest) s->oldest = e;
}

/* Unlinks e from its bucket and the LRU list and frees it. */
static void drop(shard *s, entry *e) {
    entry **p = &s->buckets[bucket_of(s, e->key)];
    while (*p != e) p = &(*p)->chain;
    *p = e->chain;
    lru_unlink(s, e);
    s->n_entries--;
    s->bytes -= cost(e->len);
    free(e);
}

static entry *find(shard *s, celer_cache_key k) {
    if (!s->n_buckets) return NULL;
    for (entry *e = s->buckets[bucket_of(s, k)]; e; e = e->chain)
        if (key_eq(e->key, k)) return e;
    return NULL;
}

bool celer_cache_get(celer_cache *c, celer_cache_key key, int64_t now_ns, celer_arena *arena, void **value,
                     size_t *len) {
    return celer_cache_get_ex(c, key, now_ns, arena, value, len, NULL);
}

bool celer_cache_get_ex(celer_cache *c, celer_cache_key key, int64_t now_ns, celer_arena *arena, void **value,
                        size_t *len, int64_t *expires_ns) {
    shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, key);
    if (e && now_ns >= e->expires_ns) {
        drop(s, e);
        atomic_fetch_add(&c->expirations, 1);
        e = NULL;
    }
    void *copy = NULL;
    if (e) {
        copy = celer_arena_alloc_uninit(arena, e->len ? e->len : 1);
        if (copy) {
            memcpy(copy, e->data, e->len);
            *len = e->len;
            if (expires_ns) *expires_ns = e->expires_ns;
            lru_unlink(s, e);
            lru_push(s, e);
        }
    }
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(copy ? &c->hits : &c->misses, 1);
    *value = copy;
    return copy != NULL;
}

/* Doubles the bucket array when entries outnumber buckets (rehashing under the shard's lock). */
static void grow(shard *s) {
    if (s->n_entries < s->n_buckets) return;
    size_t n = s->n_buckets ? s->n_buckets * 2 : 64;
    entry **b = celer_calloc(n, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < s->n_buckets; i++)
        for (entry *e = s->buckets[i], *next; e; e = next) {
            next = e->chain;
            size_t j = (size_t)(e->key.hi % n);
            e->chain = b[j];
            b[j] = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = n;
}

void celer_cache_put(celer_cache *c, celer_cache_key key, const void *value, size_t len, int64_t expires_ns) {
    shard *s = shard_of(c, key);
    if (cost(len) > s->max_bytes) return;
    entry *fresh = celer_malloc(sizeof *fresh + len);
    if (!fresh) return;
    fresh->key = key;
    fresh->expires_ns = expires_ns;
    fresh->len = len;
    fresh->chain = fresh->newer = fresh->older = NULL;
    memcpy(fresh->data, value, len);
    pthread_mutex_lock(&s->mu);
    entry *old = find(s, key);
    if (old) drop(s, old);
    while (s->bytes + cost(len) > s->max_bytes && s->oldest) {
        drop(s, s->oldest);
        atomic_fetch_add(&c->evictions, 1);
    }
    grow(s);
    if (!s->n_buckets) { /* no table: give up quietly */
        pthread_mutex_unlock(&s->mu);
        free(fresh);
        return;
    }
    size_t b = bucket_of(s, key);
    fresh->chain = s->buckets[b];
    s->buckets[b] = fresh;
    lru_push(s, fresh);
    s->n_entries++;
    s->bytes += cost(len);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&c->inserts, 1);
}

/* ---- coalescing ---- */

bool celer_cache_join(celer_cache *c, celer_cache_key key, celer_cache_waiter *w) {
    shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->mu);
    inflight *f = s->inflight;
    while (f && !key_eq(f->key, key)) f = f->next;
    if (f) {
        w->next = NULL;
        if (f->tail) f->tail->next = w;
        else f->head = w;
        f->tail = w;
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&c->coalesced, 1);
        return false;
    }
    f = celer_calloc(1, sizeof *f);
    if (f) { /* without memory the request just computes on its own */
        f->key = key;
        f->next = s->inflight;
        s->inflight = f;
    }
    pthread_mutex_unlock(&s->mu);
    return true;
}

celer_cache_waiter *celer_cache_finish(celer_cache *c, celer_cache_key key) {
    shard *s = shard_of(c, key);
    pthread_mutex_lock(&s->mu);
    inflight **p = &s->inflight;
    while (*p && !key_eq((*p)->key, key)) p = &(*p)->next;
    celer_cache_waiter *list = NULL;
    if (*p) {
        inflight *f = *p;
        *p = f->next;
        list = f->head;
        free(f);
    }
    pthread_mutex_unlock(&s->mu);
    return list;
}

void celer_cache_get_stats(celer_cache *c, celer_cache_stats *out) {
    memset(out, 0, sizeof *out);
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->evictions = atomic_load(&c->evictions);
    out->expirations = atomic_load(&c->expirations);
    out->inserts = atomic_load(&c->inserts);
    out->coalesced = atomic_load(&c->coalesced);
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        out->bytes += s->bytes;
        out->entries += s->n_entries;
        pthread_mutex_unlock(&s->mu);
    }
}
