/* Unit tests of the result cache (src/server/cache.c): keys, packed values, the in-process LRU
 * with its byte bound and TTL (time passed in explicitly), and coalescing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server/cache.h"
#include "testutil.h"

static celer_cache_key key_of(const char *name, const celer_tensor *t) {
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_str(&k, "model");
    celer_cache_key_tensor(&k, name, t);
    return celer_cache_key_end(&k);
}

static bool same(celer_cache_key a, celer_cache_key b) { return a.lo == b.lo && a.hi == b.hi; }

/* The same bytes under another shape, dtype or name are other keys; the same request is one. */
static void test_keys(void **state) {
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    celer_tensor a = {CELER_FLOAT, {2, {2, 3}}, v}, b = {CELER_FLOAT, {2, {3, 2}}, v}, c = {CELER_INT32, {2, {2, 3}}, v};
    celer_tensor flat = {CELER_FLOAT, {1, {6}}, v};
    float w[6] = {1, 2, 3, 4, 5, 6};
    celer_tensor a2 = {CELER_FLOAT, {2, {2, 3}}, w};
    assert_true(same(key_of("x", &a), key_of("x", &a2)));
    assert_false(same(key_of("x", &a), key_of("x", &b)));
    assert_false(same(key_of("x", &a), key_of("x", &c)));
    assert_false(same(key_of("x", &a), key_of("x", &flat)));
    assert_false(same(key_of("x", &a), key_of("y", &a)));
    w[5] = 7;
    assert_false(same(key_of("x", &a), key_of("x", &a2)));
    /* framing: ("ab", "c") and ("a", "bc") differ */
    celer_cache_keyer k1, k2;
    celer_cache_key_begin(&k1);
    celer_cache_key_str(&k1, "ab");
    celer_cache_key_str(&k1, "c");
    celer_cache_key_begin(&k2);
    celer_cache_key_str(&k2, "a");
    celer_cache_key_str(&k2, "bc");
    assert_false(same(celer_cache_key_end(&k1), celer_cache_key_end(&k2)));
    /* strings count every byte, NULs included: bytes after a NUL and a trailing NUL both matter */
    celer_str s1[1] = {TU_LIT("ab\0cd")}, s2[1] = {TU_LIT("ab\0ce")}, s3[1] = {TU_LIT("ab")}, s4[1] = {TU_LIT("ab\0")};
    celer_str s1b[1] = {TU_LIT("ab\0cd")};
    celer_tensor t1 = {CELER_STRING, {1, {1}}, s1}, t2 = {CELER_STRING, {1, {1}}, s2};
    celer_tensor t3 = {CELER_STRING, {1, {1}}, s3}, t4 = {CELER_STRING, {1, {1}}, s4}, t1b = {CELER_STRING, {1, {1}}, s1b};
    assert_false(same(key_of("img", &t1), key_of("img", &t2)));
    assert_false(same(key_of("img", &t3), key_of("img", &t4)));
    assert_true(same(key_of("img", &t1), key_of("img", &t1b)));
}

static void test_pack(void **state) {
    (void)state;
    float f[3] = {1.5f, -2, 3};
    int64_t ids[4] = {7, 8, 9, 10};
    celer_str labels[3] = {TU_LIT("cat"), TU_LIT(""), TU_LIT("\0\x01\x02\x03he\0llo\0")};
    celer_tensor t[3] = {{CELER_FLOAT, {1, {3}}, f}, {CELER_INT64, {2, {2, 2}}, ids}, {CELER_STRING, {1, {3}}, labels}};
    void *buf;
    size_t len;
    assert_int_equal(celer_cache_pack(t, 3, 1 << 20, &buf, &len), CELER_OK);
    celer_arena arena;
    celer_arena_init(&arena, 4096, 0);
    celer_tensor *out;
    int n;
    assert_int_equal(celer_cache_unpack(buf, len, &arena, &out, &n), CELER_OK);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].dtype, CELER_FLOAT);
    assert_memory_equal(out[0].data, f, sizeof f);
    assert_int_equal(out[1].shape.rank, 2);
    assert_int_equal(out[1].shape.dims[1], 2);
    assert_memory_equal(out[1].data, ids, sizeof ids);
    for (int i = 0; i < 3; i++) TU_ASSERT_STR(&out[2], i, labels[i]); /* NULs survive the round trip */
    /* every truncation is refused, never read past */
    for (size_t cut = 0; cut < len; cut++) assert_int_not_equal(celer_cache_unpack(buf, cut, &arena, &out, &n), CELER_OK);
    free(buf);
    /* a result over the cap is not packed */
    assert_int_equal(celer_cache_pack(t, 3, 16, &buf, &len), CELER_ERR_LIMIT);
    celer_arena_free(&arena);
}

static celer_cache_key nth_key(uint64_t i) {
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_u64(&k, i);
    return celer_cache_key_end(&k);
}

static void test_get_put_ttl(void **state) {
    (void)state;
    celer_cache *c;
    assert_int_equal(celer_cache_init(1 << 20, &c), CELER_OK);
    celer_arena arena;
    celer_arena_init(&arena, 4096, 0);
    void *v;
    size_t len;
    celer_cache_key k = nth_key(1);
    assert_false(celer_cache_get(c, k, 0, &arena, &v, &len));
    celer_cache_put(c, k, "hello", 5, 1000);
    assert_true(celer_cache_get(c, k, 999, &arena, &v, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(v, "hello", 5);
    /* replaced by a newer value */
    celer_cache_put(c, k, "bye", 3, 2000);
    assert_true(celer_cache_get(c, k, 1500, &arena, &v, &len));
    assert_int_equal(len, 3);
    /* expired: gone, and counted */
    assert_false(celer_cache_get(c, k, 2000, &arena, &v, &len));
    celer_cache_stats st;
    celer_cache_get_stats(c, &st);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 2);
    celer_cache_free(c);
    celer_arena_free(&arena);
}

/* Many entries through a small bound: bytes never pass it, the oldest go first, and a recently
 * read entry outlives newer ones that were not read. */
static void test_lru_bound(void **state) {
    (void)state;
    const size_t bound = 16 * 4096; /* 4 KiB per shard */
    celer_cache *c;
    assert_int_equal(celer_cache_init(bound, &c), CELER_OK);
    celer_arena arena;
    celer_arena_init(&arena, 4096, 0);
    char value[200];
    memset(value, 'v', sizeof value);
    void *v;
    size_t len;
    celer_cache_put(c, nth_key(0), value, sizeof value, 1 << 30);
    for (uint64_t i = 1; i < 2000; i++) {
        celer_cache_put(c, nth_key(i), value, sizeof value, 1 << 30);
        assert_true(celer_cache_get(c, nth_key(0), 0, &arena, &v, &len)); /* kept warm: never evicted */
        celer_cache_stats st;
        celer_cache_get_stats(c, &st);
        assert_true(st.bytes <= bound);
    }
    celer_cache_stats st;
    celer_cache_get_stats(c, &st);
    assert_true(st.evictions > 1000);
    assert_false(celer_cache_get(c, nth_key(1), 0, &arena, &v, &len)); /* an early cold one went */
    assert_true(celer_cache_get(c, nth_key(1999), 0, &arena, &v, &len));
    /* a value larger than a shard's share is not stored */
    char *big = calloc(1, 8192);
    celer_cache_put(c, nth_key(5000), big, 8192, 1 << 30);
    assert_false(celer_cache_get(c, nth_key(5000), 0, &arena, &v, &len));
    free(big);
    celer_cache_free(c);
    celer_arena_free(&arena);
}

/* A zero bound stores nothing (coalescing still works). */
static void test_zero_bound(void **state) {
    (void)state;
    celer_cache *c;
    assert_int_equal(celer_cache_init(0, &c), CELER_OK);
    celer_arena arena;
    celer_arena_init(&arena, 4096, 0);
    void *v;
    size_t len;
    celer_cache_put(c, nth_key(1), "x", 1, 1 << 30);
    assert_false(celer_cache_get(c, nth_key(1), 0, &arena, &v, &len));
    celer_cache_waiter w = {.user = &w};
    assert_true(celer_cache_join(c, nth_key(1), &w));
    assert_false(celer_cache_join(c, nth_key(1), &w));
    assert_ptr_equal(celer_cache_finish(c, nth_key(1)), &w);
    celer_cache_free(c);
    celer_arena_free(&arena);
}

static void test_coalescing(void **state) {
    (void)state;
    celer_cache *c;
    assert_int_equal(celer_cache_init(1 << 20, &c), CELER_OK);
    celer_cache_waiter w[5];
    celer_cache_key k = nth_key(42), other = nth_key(43);
    assert_true(celer_cache_join(c, k, &w[0]));      /* leader */
    assert_true(celer_cache_join(c, other, &w[4]));  /* another key: its own leader */
    for (int i = 1; i < 4; i++) {
        w[i].user = &w[i];
        assert_false(celer_cache_join(c, k, &w[i])); /* waiters, in arrival order */
    }
    celer_cache_waiter *list = celer_cache_finish(c, k);
    for (int i = 1; i < 4; i++, list = list->next) assert_ptr_equal(list, &w[i]);
    assert_null(list);
    assert_null(celer_cache_finish(c, k));           /* forgotten */
    assert_true(celer_cache_join(c, k, &w[0]));      /* a new miss leads again */
    assert_null(celer_cache_finish(c, k));
    assert_null(celer_cache_finish(c, other));
    celer_cache_stats st;
    celer_cache_get_stats(c, &st);
    assert_int_equal(st.coalesced, 3);
    celer_cache_free(c);
}

/* Threads hammering a small cache (under the sanitizers: no race, no leak, bound kept). */
static void *hammer(void *arg) {
    celer_cache *c = arg;
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    char value[64] = {0};
    for (uint64_t i = 0; i < 20000; i++) {
        void *v;
        size_t len;
        uint64_t key = (i * 7919) % 100; /* fits the bound: hits as well as misses */
        if (!celer_cache_get(c, nth_key(key), (int64_t)i, &arena, &v, &len))
            celer_cache_put(c, nth_key(key), value, sizeof value, (int64_t)i + 1000);
        if (i % 1000 == 999) {
            celer_arena_free(&arena);
            celer_arena_init(&arena, 64 * 1024, 0);
        }
    }
    celer_arena_free(&arena);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    celer_cache *c;
    assert_int_equal(celer_cache_init(16 * 2048, &c), CELER_OK);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer, c), 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    celer_cache_stats st;
    celer_cache_get_stats(c, &st);
    assert_true(st.bytes <= 16 * 2048);
    assert_true(st.hits > 0 && st.misses > 0);
    celer_cache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),       cmocka_unit_test(test_pack),        cmocka_unit_test(test_get_put_ttl),
        cmocka_unit_test(test_lru_bound),  cmocka_unit_test(test_zero_bound),  cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
