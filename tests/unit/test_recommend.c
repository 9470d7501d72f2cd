/* Unit tests of the recommend step (src/pipeline/recommend.c) against a brute-force reference:
 * sort every item by score. Item values are small integers so that every score is exact and the
 * order (ties included) is the same whatever the summation order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/pipeline.h"
#include "opcase.h"
#include "testutil.h"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/celer-recommend.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes `name` in tmpdir from a tensor; returns the path (static buffer per slot). */
static const char *write_npy(const char *name, celer_dtype t, int rank, const int64_t *dims, void *data) {
    static char paths[4][256];
    static int slot;
    char *p = paths[slot++ % 4];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    celer_tensor x = {.dtype = t, .shape = {rank, {0}}, .data = data};
    for (int i = 0; i < rank; i++) x.shape.dims[i] = dims[i];
    assert_int_equal(celer_npy_write(p, &x), CELER_OK);
    return p;
}

typedef struct ref_hit {
    float score;
    int64_t id;
} ref_hit;

static int cmp_ref(const void *a, const void *b) {
    const ref_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The reference: all scores, best first, excluded ids and NaN dropped; returns the count. */
static int brute_force(const float *items, const int64_t *ids, int64_t n, int64_t dim, const float *user,
                       const int64_t *ex, int n_ex, ref_hit *out) {
    int m = 0;
    for (int64_t i = 0; i < n; i++) {
        float s = 0;
        for (int64_t d = 0; d < dim; d++) s += items[i * dim + d] * user[d];
        int64_t id = ids ? ids[i] : i;
        bool skip = s != s;
        for (int e = 0; e < n_ex && !skip; e++) skip = ex[e] == id;
        if (!skip) out[m++] = (ref_hit){s, id};
    }
    qsort(out, (size_t)m, sizeof *out, cmp_ref);
    return m;
}

static void check_topk(const celer_recommend *r, const float *items, const int64_t *ids, int64_t n, int64_t dim,
                       const float *user, const int64_t *ex, int n_ex, int k) {
    ref_hit *want = malloc(sizeof *want * (size_t)(n + 1));
    int64_t *got_ids = malloc(sizeof(int64_t) * (size_t)k);
    float *got_scores = malloc(sizeof(float) * (size_t)k);
    void *scratch = aligned_alloc(64, celer_recommend_scratch_bytes(r, k, n_ex));
    int m = brute_force(items, ids, n, dim, user, ex, n_ex, want), got = -1;
    assert_int_equal(celer_recommend_topk(r, user, dim, ex, n_ex, k, scratch, got_ids, got_scores, &got), CELER_OK);
    assert_int_equal(got, m < k ? m : k);
    for (int i = 0; i < got; i++) {
        assert_int_equal(got_ids[i], want[i].id);
        assert_true(got_scores[i] == want[i].score);
    }
    free(want);
    free(got_ids);
    free(got_scores);
    free(scratch);
}

/* Random matrices with many equal scores, with and without ids, with exclusions, k from 1 to
 * more than the item count, and a row count that is not a multiple of the scoring block. */
static void test_against_brute_force(void **state) {
    (void)state;
    uint64_t seed = 99;
    static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {5000, 64}, {2049, 17}, {300, 8}};
    for (size_t si = 0; si < CELER_ARRAY_LEN(shapes); si++) {
        int64_t n = shapes[si][0], dim = shapes[si][1];
        float *items = malloc(sizeof(float) * (size_t)(n * dim));
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
        float user[64];
        for (int64_t i = 0; i < n * dim; i++) {
            float u;
            tu_fill_random(&u, 1, -3.f, 3.f, &seed);
            items[i] = (float)(int)u; /* -2..2: exact scores, many ties */
        }
        for (int64_t d = 0; d < dim; d++) user[d] = (float)((d % 3) - 1);
        for (int64_t i = 0; i < n; i++) ids[i] = 1000000 - 3 * i; /* ids descending: ties by id, not row */
        const char *ip = write_npy("items.npy", CELER_FLOAT, 2, (int64_t[]){n, dim}, items);
        const char *dp = write_npy("ids.npy", CELER_INT64, 1, (int64_t[]){n}, ids);
        for (int with_ids = 0; with_ids < 2; with_ids++) {
            celer_recommend *r;
            assert_int_equal(celer_recommend_open(ip, with_ids ? dp : NULL, &r), CELER_OK);
            assert_int_equal(celer_recommend_items(r), n);
            assert_int_equal(celer_recommend_dim(r), dim);
            const int64_t *idv = with_ids ? ids : NULL;
            int64_t ex[5] = {idv ? idv[0] : 0, idv ? idv[n / 2] : n / 2, 123456789, idv ? idv[0] : 0, -5};
            int ks[] = {1, 3, 10, (int)n, (int)n + 5};
            for (size_t ki = 0; ki < CELER_ARRAY_LEN(ks); ki++) {
                check_topk(r, items, idv, n, dim, user, NULL, 0, ks[ki]);
                check_topk(r, items, idv, n, dim, user, ex, 5, ks[ki]);
            }
            celer_recommend_free(r);
        }
        free(items);
        free(ids);
    }
}

/* NaN scores are skipped; excluding everything leaves nothing. */
static void test_nan_and_empty(void **state) {
    (void)state;
    float items[4 * 2] = {1, 0, __builtin_nanf(""), 0, 3, 0, 2, 0};
    const char *ip = write_npy("nan.npy", CELER_FLOAT, 2, (int64_t[]){4, 2}, items);
    celer_recommend *r;
    assert_int_equal(celer_recommend_open(ip, NULL, &r), CELER_OK);
    float user[2] = {1, 1};
    int64_t ids[4], all[4] = {0, 1, 2, 3};
    float scores[4];
    int n;
    static char scratch[16384] __attribute__((aligned(64)));
    assert_true(celer_recommend_scratch_bytes(r, 4, 4) <= sizeof scratch);
    assert_int_equal(celer_recommend_topk(r, user, 2, NULL, 0, 4, scratch, ids, scores, &n), CELER_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 0);
    assert_int_equal(celer_recommend_topk(r, user, 2, all, 4, 4, scratch, ids, scores, &n), CELER_OK);
    assert_int_equal(n, 0);
    celer_recommend_free(r);
}

/* Bad files and bad requests: clear errors naming the problem. */
static void test_errors(void **state) {
    (void)state;
    celer_recommend *r;
    float v[6] = {0};
    int64_t iv[3] = {0};
    int32_t i32[6] = {0};
    tu_expect_err(celer_recommend_open("/nonexistent/items.npy", NULL, &r), CELER_ERR_IO, "/nonexistent/items.npy");
    tu_expect_err(celer_recommend_open(write_npy("vec.npy", CELER_FLOAT, 1, (int64_t[]){6}, v), NULL, &r),
                  CELER_ERR_INVALID, "float32 [items, dim]");
    tu_expect_err(celer_recommend_open(write_npy("int.npy", CELER_INT32, 2, (int64_t[]){3, 2}, i32), NULL, &r),
                  CELER_ERR_INVALID, "int32");
    const char *ip = write_npy("ok.npy", CELER_FLOAT, 2, (int64_t[]){3, 2}, v);
    tu_expect_err(celer_recommend_open(ip, write_npy("ids2.npy", CELER_INT64, 1, (int64_t[]){2}, iv), &r),
                  CELER_ERR_INVALID, "one per row");
    assert_int_equal(celer_recommend_open(ip, NULL, &r), CELER_OK);
    static char scratch[16384] __attribute__((aligned(64)));
    int64_t ids[3];
    float scores[3], user[3] = {0};
    int n;
    tu_expect_err(celer_recommend_topk(r, user, 3, NULL, 0, 1, scratch, ids, scores, &n), CELER_ERR_INVALID,
                  "has dim 2");
    tu_expect_err(celer_recommend_topk(r, user, 2, NULL, 0, 0, scratch, ids, scores, &n), CELER_ERR_INVALID,
                  "k = 0");
    tu_expect_err(celer_recommend_topk(r, user, 2, NULL, CELER_RECOMMEND_MAX_EXCLUDE + 1, 1, scratch, ids, scores,
                                       &n),
                  CELER_ERR_INVALID, "excluded ids");
    celer_recommend_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_nan_and_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
