/* Content codings (src/server/compress.c): parsing codings and Accept-Encoding, inflating gzip,
 * zlib and raw deflate in pieces of any size against a cap (an inflate bomb stops at the cap with
 * no more than the cap handed out), multi-member gzip, truncated and trailing bytes, and deflate
 * round trips in small steps. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"
#include "server/compress.h"

typedef struct sink {
    unsigned char *data;
    size_t len, cap, calls, max_piece;
} sink;

static celer_status to_sink(void *user, const void *p, size_t n) {
    sink *s = user;
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->calls++;
    if (n > s->max_piece) s->max_piece = n;
    return CELER_OK;
}

/* zlib's own compressor: windowBits 15 (zlib), 31 (gzip) or -15 (raw). */
static unsigned char *zcompress(const void *in, size_t n, int bits, size_t *out_len) {
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* Inflates `in` fed `step` bytes at a time; returns the status, output in *s. */
static celer_status inflate_steps(celer_coding coding, const unsigned char *in, size_t n, size_t step, size_t cap,
                                  sink *s) {
    celer_inflate f;
    celer_inflate_init(&f, coding, cap);
    celer_status st = CELER_OK;
    for (size_t i = 0; i < n && !st; i += step) st = celer_inflate_feed(&f, in + i, CELER_MIN(step, n - i), to_sink, s);
    if (!st) st = celer_inflate_finish(&f);
    celer_inflate_end(&f);
    return st;
}

static void test_codings(void **state) {
    (void)state;
    assert_int_equal(celer_coding_parse("gzip", 4), CELER_CODING_GZIP);
    assert_int_equal(celer_coding_parse(" GZip ", 6), CELER_CODING_GZIP);
    assert_int_equal(celer_coding_parse("x-gzip", 6), CELER_CODING_GZIP);
    assert_int_equal(celer_coding_parse("deflate", 7), CELER_CODING_DEFLATE);
    assert_int_equal(celer_coding_parse("identity", 8), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_parse("", 0), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_parse("br", 2), CELER_CODING_UNKNOWN);
    assert_int_equal(celer_coding_parse("gzip, br", 8), CELER_CODING_UNKNOWN);

    assert_int_equal(celer_coding_accepted(NULL), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_accepted("gzip"), CELER_CODING_GZIP);
    assert_int_equal(celer_coding_accepted("deflate"), CELER_CODING_DEFLATE);
    assert_int_equal(celer_coding_accepted("gzip, deflate"), CELER_CODING_GZIP);   /* a tie: the first */
    assert_int_equal(celer_coding_accepted("deflate, gzip"), CELER_CODING_DEFLATE);
    assert_int_equal(celer_coding_accepted("gzip;q=0.5, deflate"), CELER_CODING_DEFLATE);
    assert_int_equal(celer_coding_accepted("gzip; q=0, deflate;q=0"), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_accepted("identity;q=1, gzip;q=0.9"), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_accepted("br, *"), CELER_CODING_GZIP);
    assert_int_equal(celer_coding_accepted("gzip;q=0, *"), CELER_CODING_IDENTITY); /* gzip named and refused */
    assert_int_equal(celer_coding_accepted("br"), CELER_CODING_IDENTITY);
    assert_int_equal(celer_coding_accepted("gzip;q=abc, deflate;q=0.1"), CELER_CODING_DEFLATE);
    assert_int_equal(celer_coding_accepted(",,;q=,"), CELER_CODING_IDENTITY);

    const char *l = "identity,deflate,gzip";
    assert_true(celer_coding_listed(l, strlen(l), CELER_CODING_GZIP));
    assert_true(celer_coding_listed(l, strlen(l), CELER_CODING_DEFLATE));
    assert_false(celer_coding_listed("identity", 8, CELER_CODING_GZIP));
    assert_false(celer_coding_listed("", 0, CELER_CODING_GZIP));
}

static void test_inflate_forms(void **state) {
    (void)state;
    size_t n = 200000;
    unsigned char *plain = malloc(n);
    for (size_t i = 0; i < n; i++) plain[i] = (unsigned char)((i * 7919) >> 5);
    struct {
        celer_coding coding;
        int bits;
    } forms[] = {{CELER_CODING_GZIP, 31}, {CELER_CODING_DEFLATE, 15}, {CELER_CODING_DEFLATE, -15}};
    size_t steps[] = {1, 2, 3, 1000, 1 << 20};
    for (size_t f = 0; f < CELER_ARRAY_LEN(forms); f++) {
        size_t zn;
        unsigned char *z = zcompress(plain, n, forms[f].bits, &zn);
        for (size_t k = 0; k < CELER_ARRAY_LEN(steps); k++) {
            sink s = {0};
            assert_int_equal(inflate_steps(forms[f].coding, z, zn, steps[k], n, &s), CELER_OK);
            assert_int_equal(s.len, n);
            assert_memory_equal(s.data, plain, n);
            assert_true(s.max_piece <= 16 << 10);
            free(s.data);
        }
        /* one byte under what it inflates to: LIMIT, and no more than the cap handed out */
        sink s = {0};
        assert_int_equal(inflate_steps(forms[f].coding, z, zn, 4096, n - 1, &s), CELER_ERR_LIMIT);
        assert_true(s.len <= n - 1);
        assert_non_null(strstr(celer_error_message(), "inflates past the limit of"));
        free(s.data);
        /* cut short */
        s = (sink){0};
        assert_int_equal(inflate_steps(forms[f].coding, z, zn - 5, 977, n, &s), CELER_ERR_PARSE);
        assert_non_null(strstr(celer_error_message(), "cut short"));
        free(s.data);
        free(z);
    }
    free(plain);
}

static void test_inflate_edges(void **state) {
    (void)state;
    const char *text = "celer inflates this";
    size_t n = strlen(text), zn, zn2;
    unsigned char *g = zcompress(text, n, 31, &zn), *g2 = zcompress("!", 1, 31, &zn2);
    /* two gzip members make one body */
    unsigned char both[512];
    memcpy(both, g, zn);
    memcpy(both + zn, g2, zn2);
    sink s = {0};
    assert_int_equal(inflate_steps(CELER_CODING_GZIP, both, zn + zn2, 7, 1000, &s), CELER_OK);
    assert_int_equal(s.len, n + 1);
    assert_memory_equal(s.data, "celer inflates this!", n + 1);
    free(s.data);
    /* bytes after a deflate stream's end */
    unsigned char *d = zcompress(text, n, 15, &zn);
    unsigned char tail[512];
    memcpy(tail, d, zn);
    tail[zn] = 'x';
    s = (sink){0};
    assert_int_equal(inflate_steps(CELER_CODING_DEFLATE, tail, zn + 1, 3, 1000, &s), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "follow the end of the deflate stream"));
    free(s.data);
    /* not the coding at all */
    s = (sink){0};
    assert_int_equal(inflate_steps(CELER_CODING_GZIP, (const unsigned char *)"plain text, not gzip", 20, 20, 1000, &s),
                     CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "not valid gzip data"));
    free(s.data);
    /* a one-byte deflate body: held, then cut short */
    s = (sink){0};
    assert_int_equal(inflate_steps(CELER_CODING_DEFLATE, d, 1, 1, 1000, &s), CELER_ERR_PARSE);
    free(s.data);
    free(g), free(g2), free(d);
}

/* A bomb: 64 MiB of zeros in about 64 KiB, against a 1 MiB cap: stops at the cap. */
static void test_bomb(void **state) {
    (void)state;
    size_t n = 64u << 20;
    unsigned char *zeros = calloc(1, n);
    size_t zn;
    unsigned char *z = zcompress(zeros, n, 31, &zn);
    free(zeros);
    assert_true(zn < n / 500);
    sink s = {0};
    assert_int_equal(inflate_steps(CELER_CODING_GZIP, z, zn, zn, 1 << 20, &s), CELER_ERR_LIMIT);
    assert_true(s.len <= 1 << 20);
    free(s.data);
    free(z);
}

static void test_deflate_round_trip(void **state) {
    (void)state;
    size_t n = 300000;
    unsigned char *plain = malloc(n);
    for (size_t i = 0; i < n; i++) plain[i] = (unsigned char)(i % 251 < 100 ? 0 : i * 31);
    celer_coding codings[] = {CELER_CODING_GZIP, CELER_CODING_DEFLATE};
    for (size_t c = 0; c < 2; c++) {
        celer_jbuf out;
        celer_jbuf_init(&out, 0);
        assert_int_equal(celer_compress(codings[c], plain, n, &out), CELER_OK);
        assert_true(out.len < n);
        sink s = {0};
        assert_int_equal(inflate_steps(codings[c], (unsigned char *)out.data, out.len, 333, n, &s), CELER_OK);
        assert_int_equal(s.len, n);
        assert_memory_equal(s.data, plain, n);
        free(s.data);
        /* zlib reads it too */
        unsigned char *back = malloc(n);
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, codings[c] == CELER_CODING_GZIP ? 31 : 15), Z_OK);
        z.next_in = (Bytef *)out.data, z.avail_in = (uInt)out.len, z.next_out = back, z.avail_out = (uInt)n;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        inflateEnd(&z);
        assert_memory_equal(back, plain, n);
        free(back);
        celer_jbuf_free(&out);

        /* in small steps, input and output alike, as a streamed answer is compressed */
        celer_deflate d;
        assert_int_equal(celer_deflate_init(&d, codings[c]), CELER_OK);
        unsigned char *z2 = malloc(n + 1024);
        size_t zlen = 0, off = 0;
        while (!d.done) {
            size_t k = CELER_MIN((size_t)1000, n - off);
            zlen += celer_deflate_step(&d, plain + off, &k, z2 + zlen, 100, off + k == n);
            off += k;
        }
        celer_deflate_end(&d);
        assert_int_equal(off, n);
        s = (sink){0};
        assert_int_equal(inflate_steps(codings[c], z2, zlen, zlen, n, &s), CELER_OK);
        assert_int_equal(s.len, n);
        assert_memory_equal(s.data, plain, n);
        free(s.data);
        free(z2);
    }
    free(plain);
}

static void test_alloc_failure(void **state) {
    (void)state;
    size_t zn;
    unsigned char *z = zcompress("abcdef", 6, 31, &zn);
    for (long k = 1; k <= 3; k++) { /* zlib's state, then its window */
        celer_alloc_fail_at(k);
        sink s = {0};
        celer_status st = inflate_steps(CELER_CODING_GZIP, z, zn, zn, 100, &s);
        celer_alloc_fail_at(0);
        assert_true(st == CELER_OK || st == CELER_ERR_NOMEM);
        free(s.data);
    }
    free(z);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codings),         cmocka_unit_test(test_inflate_forms),
        cmocka_unit_test(test_inflate_edges),   cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_deflate_round_trip), cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
