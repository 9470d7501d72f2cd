/* shape family: hand-checked cases for every op (negative axes, empty tensors, string and
 * narrow element types, opset differences) plus error paths, and Transpose/Slice against a
 * naive reference on random shapes. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"

/* ---- Reshape-like ---- */

static void test_reshape(void **s) {
    (void)s;
    int64_t x[24];
    for (int i = 0; i < 24; i++) x[i] = i;
    celer_tensor a = TEN(CELER_INT64, x, 2, 3, 4), out[1];
    celer_tensor sh = TEN(CELER_INT64, I64(4, -1), 2);
    assert_int_equal(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 4, 6);
    assert_memory_equal(out[0].data, x, sizeof x);
    tu_free_outputs(out, 1);
    /* 0 copies the input dim */
    sh = TEN(CELER_INT64, I64(0, -1), 2);
    assert_int_equal(tu_run("Reshape", 14, NOAT, IN(&a, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 12);
    tu_free_outputs(out, 1);
    /* allowzero: 0 is a real 0 (a non-NULL pointer: the test harness copies aliased bytes) */
    celer_tensor e = TEN(CELER_FLOAT, x, 0, 3);
    sh = TEN(CELER_INT64, I64(3, 0), 2);
    assert_int_equal(tu_run("Reshape", 14, AT(AINT("allowzero", 1)), IN(&e, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 0);
    tu_free_outputs(out, 1);
    /* rank-0 target */
    celer_tensor one = TEN(CELER_FLOAT, F32(5), 1, 1);
    sh = TEN(CELER_INT64, NULL, 0);
    assert_int_equal(tu_run("Reshape", 13, NOAT, IN(&one, &sh), out, 1), 0);
    EXPECT_RANK0(&out[0]);
    tu_free_outputs(out, 1);
    /* strings */
    const char *strs[4] = {"a", "b", "c", "d"};
    celer_tensor st = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 4);
    sh = TEN(CELER_INT64, I64(2, 2), 2);
    assert_int_equal(tu_run("Reshape", 13, NOAT, IN(&st, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 2);
    assert_string_equal(((const celer_str *)out[0].data)[3].data, "d");
    tu_free_outputs(out, 1);
    /* errors */
    sh = TEN(CELER_INT64, I64(-1, -1), 2);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_INVALID, "more than one -1");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(5, -1), 2);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_SHAPE, "cannot reshape");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(5, 5), 2);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_SHAPE, "24 elements");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(2, 3, 4, 0), 4);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_SHAPE, "rank 3");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(-2, 12), 2);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_INVALID, "invalid dim");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(0, -1), 2);
    tu_expect_err(tu_run("Reshape", 14, AT(AINT("allowzero", 1)), IN(&a, &sh), out, 1), CELER_ERR_SHAPE,
               "cannot reshape");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(1LL << 40, 1LL << 40, 1LL << 40), 3);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &sh), out, 1), CELER_ERR_LIMIT, "overflows");
    tu_free_outputs(out, 1);
    celer_tensor fsh = TEN(CELER_FLOAT, F32(24), 1);
    tu_expect_err(tu_run("Reshape", 13, NOAT, IN(&a, &fsh), out, 1), CELER_ERR_DTYPE, "int64");
    tu_free_outputs(out, 1);
}

static void test_flatten(void **s) {
    (void)s;
    celer_tensor a = TEN(CELER_FLOAT, NULL, 2, 3, 4), out[1];
    float x[24] = {0};
    a.data = x;
    struct { int64_t axis; int64_t d0, d1; } cases[] = {{0, 1, 24}, {1, 2, 12}, {3, 24, 1},
                                                        {-1, 6, 4}, {-3, 1, 24}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        assert_int_equal(tu_run("Flatten", 13, AT(AINT("axis", cases[i].axis)), IN(&a), out, 1), 0);
        EXPECT_SHAPE(&out[0], cases[i].d0, cases[i].d1);
        tu_free_outputs(out, 1);
    }
    assert_int_equal(tu_run("Flatten", 13, NOAT, IN(&a), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 12);
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Flatten", 13, AT(AINT("axis", 4)), IN(&a), out, 1), CELER_ERR_INVALID,
               "out of range");
    tu_free_outputs(out, 1);
    /* Flatten-1 is float-only */
    celer_tensor b = TEN(CELER_INT32, I32(1, 2), 2);
    assert_int_equal(tu_run("Flatten", 7, NOAT, IN(&b), out, 1), CELER_ERR_UNSUPPORTED);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Flatten", 9, NOAT, IN(&b), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 1);
    tu_free_outputs(out, 1);
}

static void test_squeeze_unsqueeze(void **s) {
    (void)s;
    float x[6] = {1, 2, 3, 4, 5, 6};
    celer_tensor a = TEN(CELER_FLOAT, x, 1, 3, 1, 2), out[1];
    assert_int_equal(tu_run("Squeeze", 11, NOAT, IN(&a), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    EXPECT_F32(&out[0], 1, 2, 3, 4, 5, 6);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Squeeze", 11, AT(AINTS("axes", -2)), IN(&a), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 3, 2);
    tu_free_outputs(out, 1);
    celer_tensor axes = TEN(CELER_INT64, I64(0, 2), 2);
    assert_int_equal(tu_run("Squeeze", 13, NOAT, IN(&a, &axes), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    tu_free_outputs(out, 1);
    /* opset 13 with the axes input omitted */
    assert_int_equal(tu_run("Squeeze", 13, NOAT, IN(&a, NULL), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    tu_free_outputs(out, 1);
    axes = TEN(CELER_INT64, I64(1), 1);
    tu_expect_err(tu_run("Squeeze", 13, NOAT, IN(&a, &axes), out, 1), CELER_ERR_SHAPE, "not 1");
    tu_free_outputs(out, 1);
    axes = TEN(CELER_INT64, I64(4), 1);
    tu_expect_err(tu_run("Squeeze", 13, NOAT, IN(&a, &axes), out, 1), CELER_ERR_INVALID, "out of range");
    tu_free_outputs(out, 1);

    celer_tensor v = TEN(CELER_FLOAT, x, 3);
    axes = TEN(CELER_INT64, I64(0, -1), 2);
    assert_int_equal(tu_run("Unsqueeze", 13, NOAT, IN(&v, &axes), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 3, 1);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Unsqueeze", 11, AT(AINTS("axes", 2, -3)), IN(&v), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 3, 1);
    tu_free_outputs(out, 1);
    celer_tensor sc = SCALAR(CELER_FLOAT, x);
    assert_int_equal(tu_run("Unsqueeze", 9, AT(AINTS("axes", 0)), IN(&sc), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1);
    tu_free_outputs(out, 1);
    axes = TEN(CELER_INT64, I64(1, -2), 2);
    tu_expect_err(tu_run("Unsqueeze", 13, NOAT, IN(&v, &axes), out, 1), CELER_ERR_INVALID, "repeated");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Unsqueeze", 11, NOAT, IN(&v), out, 1), CELER_ERR_INVALID, "required");
    tu_free_outputs(out, 1);
    celer_tensor big = TEN(CELER_FLOAT, x, 1, 1, 1, 1, 1, 1, 1);
    axes = TEN(CELER_INT64, I64(0, 1), 2);
    tu_expect_err(tu_run("Unsqueeze", 13, NOAT, IN(&big, &axes), out, 1), CELER_ERR_LIMIT, "rank");
    tu_free_outputs(out, 1);

    uint8_t bools[3] = {1, 0, 1};
    celer_tensor bt = TEN(CELER_BOOL, bools, 3);
    assert_int_equal(tu_run("Identity", 16, NOAT, IN(&bt), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3);
    assert_memory_equal(out[0].data, bools, 3);
    tu_free_outputs(out, 1);
}

/* ---- Transpose against a naive reference ---- */

static void naive_transpose(const uint8_t *x, uint8_t *y, const celer_shape *s, const int *perm,
                            size_t es) {
    int r = s->rank;
    int64_t st[CELER_MAX_RANK], idx[CELER_MAX_RANK] = {0}, od[CELER_MAX_RANK];
    int64_t a = 1, n = celer_shape_numel(s);
    for (int i = r - 1; i >= 0; i--) {
        st[i] = a;
        a *= s->dims[i];
    }
    for (int i = 0; i < r; i++) od[i] = s->dims[perm[i]];
    for (int64_t o = 0; o < n; o++) {
        int64_t off = 0;
        for (int i = 0; i < r; i++) off += idx[i] * st[perm[i]];
        memcpy(y + o * (int64_t)es, x + off * (int64_t)es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < od[k]) break;
            idx[k] = 0;
        }
    }
}

/* Copies above 128 KB are shared over the team by their outer dims: attention's head transposes
 * (odd sizes, so the split lands mid-odometer; K^T as [S, heads, D] -> [heads, D, S], whose
 * whole 8 x 8 float tiles take the shuffle path) on one thread and two, against the naive form. */
static void test_transpose_threads(void **s) {
    (void)s;
    static const struct { int rank; int64_t dims[4]; int perm[4]; } cases[] = {
        {4, {1, 131, 7, 64}, {0, 2, 1, 3}}, {4, {1, 7, 131, 64}, {0, 1, 3, 2}},
        {4, {3, 77, 5, 61}, {2, 0, 3, 1}},  {3, {5, 300, 97}, {0, 2, 1}},
        {3, {131, 12, 64}, {1, 2, 0}},
    };
    uint64_t seed = 5;
    celer_tensor out[1];
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
            celer_tensor x = {.dtype = CELER_FLOAT, .shape = {.rank = cases[c].rank}};
            memcpy(x.shape.dims, cases[c].dims, sizeof cases[c].dims);
            size_t n = (size_t)celer_shape_numel(&x.shape);
            float *buf = malloc(n * 4);
            tu_fill_random(buf, n, -100, 100, &seed);
            x.data = buf;
            uint8_t *want = malloc(n * 4);
            naive_transpose((const uint8_t *)buf, want, &x.shape, cases[c].perm, 4);
            const int *p = cases[c].perm;
            celer_onnx_attr at[1] = {{.name = "perm", .type = CELER_ATTR_INTS, .n = cases[c].rank,
                                      .ints = (const int64_t[]){p[0], p[1], p[2], p[3]}}};
            assert_int_equal(tu_run("Transpose", 13, at, 1, IN(&x), out, 1), 0);
            assert_memory_equal(out[0].data, want, n * 4);
            tu_free_outputs(out, 1);
            free(buf);
            free(want);
        }
    }
    omp_set_num_threads(1);
}

static void test_transpose(void **s) {
    (void)s;
    celer_tensor out[1];
    float m[6] = {1, 2, 3, 4, 5, 6};
    celer_tensor a = TEN(CELER_FLOAT, m, 2, 3);
    assert_int_equal(tu_run("Transpose", 13, NOAT, IN(&a), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    EXPECT_F32(&out[0], 1, 4, 2, 5, 3, 6);
    tu_free_outputs(out, 1);

    /* random shapes, every element size, permutations that hit the 2-D, last-two-axes and
     * general paths */
    static const struct { int rank; int64_t dims[4]; int perm[4]; } cases[] = {
        {2, {37, 45}, {1, 0}},          {3, {3, 40, 33}, {0, 2, 1}},
        {3, {5, 6, 7}, {2, 0, 1}},      {3, {5, 6, 7}, {1, 2, 0}},
        {4, {2, 3, 4, 5}, {0, 2, 3, 1}}, {4, {2, 3, 4, 5}, {3, 2, 1, 0}},
        {4, {1, 64, 1, 70}, {0, 3, 2, 1}}, {4, {2, 1, 3, 1}, {1, 3, 0, 2}},
    };
    static const celer_dtype types[] = {CELER_UINT8, CELER_FLOAT16, CELER_INT32, CELER_DOUBLE};
    uint64_t seed = 42;
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++)
        for (size_t t = 0; t < CELER_ARRAY_LEN(types); t++) {
            celer_tensor x = {.dtype = types[t], .shape = {.rank = cases[c].rank}};
            memcpy(x.shape.dims, cases[c].dims, sizeof cases[c].dims);
            size_t es = celer_dtype_size(types[t]), n = (size_t)celer_shape_numel(&x.shape);
            float *buf = malloc(n * es + 4);
            tu_fill_random(buf, (n * es + 3) / 4, -100, 100, &seed);
            x.data = buf;
            uint8_t *want = malloc(n * es);
            naive_transpose((const uint8_t *)buf, want, &x.shape, cases[c].perm, es);
            const int *p = cases[c].perm;
            celer_onnx_attr at[1] = {{.name = "perm", .type = CELER_ATTR_INTS, .n = cases[c].rank,
                                      .ints = (const int64_t[]){p[0], p[1], p[2], p[3]}}};
            assert_int_equal(tu_run("Transpose", 13, at, 1, IN(&x), out, 1), 0);
            for (int i = 0; i < x.shape.rank; i++)
                assert_int_equal(out[0].shape.dims[i], x.shape.dims[p[i]]);
            assert_memory_equal(out[0].data, want, n * es);
            tu_free_outputs(out, 1);
            free(buf);
            free(want);
        }

    const char *strs[6] = {"a", "b", "c", "d", "e", "f"};
    celer_tensor st = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 2, 3);
    assert_int_equal(tu_run("Transpose", 7, AT(AINTS("perm", 1, 0)), IN(&st), out, 1), 0);
    assert_string_equal(((const celer_str *)out[0].data)[1].data, "d");
    tu_free_outputs(out, 1);
    celer_tensor e = TEN(CELER_FLOAT, NULL, 0, 3);
    assert_int_equal(tu_run("Transpose", 13, NOAT, IN(&e), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 0);
    tu_free_outputs(out, 1);

    tu_expect_err(tu_run("Transpose", 13, AT(AINTS("perm", 0, 0)), IN(&a), out, 1), CELER_ERR_INVALID,
               "not a permutation");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Transpose", 13, AT(AINTS("perm", 0, 2)), IN(&a), out, 1), CELER_ERR_INVALID,
               "not a permutation");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Transpose", 13, AT(AINTS("perm", 0, 1, 2)), IN(&a), out, 1), CELER_ERR_INVALID,
               "rank 2");
    tu_free_outputs(out, 1);
}

/* ---- Concat, Split ---- */

static void test_concat(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor a = TEN(CELER_INT64, I64(1, 2), 2, 1), b = TEN(CELER_INT64, I64(3, 4, 5, 6), 2, 2);
    celer_tensor e = TEN(CELER_INT64, NULL, 2, 0);
    assert_int_equal(tu_run("Concat", 13, AT(AINT("axis", -1)), IN(&a, &e, &b), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 3);
    EXPECT_I64(&out[0], 1, 3, 4, 2, 5, 6);
    tu_free_outputs(out, 1);
    celer_tensor c = TEN(CELER_INT64, I64(7, 8), 1, 2);
    assert_int_equal(tu_run("Concat", 4, AT(AINT("axis", 0)), IN(&b, &c), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    EXPECT_I64(&out[0], 3, 4, 5, 6, 7, 8);
    tu_free_outputs(out, 1);
    /* all empty */
    assert_int_equal(tu_run("Concat", 13, AT(AINT("axis", 1)), IN(&e, &e), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 0);
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Concat", 13, AT(AINT("axis", 0)), IN(&a, &b), out, 1), CELER_ERR_SHAPE,
               "outside axis 0");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Concat", 13, NOAT, IN(&a, &b), out, 1), CELER_ERR_INVALID, "'axis'");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Concat", 13, AT(AINT("axis", 2)), IN(&a, &b), out, 1), CELER_ERR_INVALID,
               "out of range");
    tu_free_outputs(out, 1);
    celer_tensor f = TEN(CELER_FLOAT, F32(1, 2), 2, 1);
    tu_expect_err(tu_run("Concat", 13, AT(AINT("axis", 1)), IN(&a, &f), out, 1), CELER_ERR_DTYPE, "float");
    tu_free_outputs(out, 1);
}

static void test_split(void **s) {
    (void)s;
    celer_tensor out[3];
    celer_tensor x = TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6), 2, 3);
    celer_tensor sp = TEN(CELER_INT64, I64(1, 2), 2);
    assert_int_equal(tu_run("Split", 13, AT(AINT("axis", -1)), IN(&x, &sp), out, 2), 0);
    EXPECT_SHAPE(&out[0], 2, 1);
    EXPECT_I64(&out[0], 1, 4);
    EXPECT_SHAPE(&out[1], 2, 2);
    EXPECT_I64(&out[1], 2, 3, 5, 6);
    tu_free_outputs(out, 2);
    assert_int_equal(tu_run("Split", 11, AT(AINT("axis", 1), AINTS("split", 2, 1)), IN(&x), out, 2), 0);
    EXPECT_I64(&out[0], 1, 2, 4, 5);
    EXPECT_I64(&out[1], 3, 6);
    tu_free_outputs(out, 2);
    /* equal parts */
    assert_int_equal(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x), out, 3), 0);
    EXPECT_I64(&out[2], 3, 6);
    tu_free_outputs(out, 3);
    assert_int_equal(tu_run("Split", 2, NOAT, IN(&x), out, 2), 0);
    EXPECT_I64(&out[1], 4, 5, 6);
    tu_free_outputs(out, 2);
    /* zero-sized parts */
    sp = TEN(CELER_INT64, I64(0, 3, 0), 3);
    assert_int_equal(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x, &sp), out, 3), 0);
    EXPECT_SHAPE(&out[0], 2, 0);
    EXPECT_I64(&out[1], 1, 2, 3, 4, 5, 6);
    tu_free_outputs(out, 3);
    tu_expect_err(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x), out, 2), CELER_ERR_SHAPE, "equal parts");
    tu_free_outputs(out, 2);
    sp = TEN(CELER_INT64, I64(1, 1), 2);
    tu_expect_err(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x, &sp), out, 2), CELER_ERR_SHAPE,
               "add up to 2");
    tu_free_outputs(out, 2);
    sp = TEN(CELER_INT64, I64(4, -1), 2);
    tu_expect_err(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x, &sp), out, 2), CELER_ERR_INVALID,
               "invalid");
    tu_free_outputs(out, 2);
    sp = TEN(CELER_INT64, I64(1, 1, 1), 3);
    tu_expect_err(tu_run("Split", 13, AT(AINT("axis", 1)), IN(&x, &sp), out, 2), CELER_ERR_INVALID,
               "2 outputs");
    tu_free_outputs(out, 2);
    /* 18: num_outputs, the last part smaller; exactly one of it and input 'split' */
    celer_tensor x7 = TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6, 7), 7);
    assert_int_equal(tu_run("Split", 18, AT(AINT("num_outputs", 3)), IN(&x7), out, 3), 0);
    EXPECT_I64(&out[0], 1, 2, 3);
    EXPECT_I64(&out[1], 4, 5, 6);
    EXPECT_I64(&out[2], 7);
    tu_free_outputs(out, 3);
    celer_tensor x4 = TEN(CELER_INT64, I64(1, 2, 3, 4), 4);
    assert_int_equal(tu_run("Split", 18, AT(AINT("num_outputs", 3)), IN(&x4), out, 3), 0);
    EXPECT_SHAPE(&out[2], 0); /* 2, 2, 0: what remains after parts of ceil(4/3) */
    tu_free_outputs(out, 3);
    celer_tensor x5 = TEN(CELER_INT64, I64(1, 2, 3, 4, 5), 5);
    celer_tensor out4[4];
    tu_expect_err(tu_run("Split", 18, AT(AINT("num_outputs", 4)), IN(&x5), out4, 4), CELER_ERR_SHAPE,
               "size 5 cannot be split into 4 parts of 2");
    tu_free_outputs(out4, 4);
    tu_expect_err(tu_run("Split", 18, AT(AINT("num_outputs", 3)), IN(&x7), out, 2), CELER_ERR_INVALID,
               "'num_outputs' is 3 but the node has 2 outputs");
    tu_free_outputs(out, 2);
    sp = TEN(CELER_INT64, I64(3, 4), 2);
    tu_expect_err(tu_run("Split", 18, AT(AINT("num_outputs", 2)), IN(&x7, &sp), out, 2), CELER_ERR_INVALID,
               "both given");
    tu_free_outputs(out, 2);
    tu_expect_err(tu_run("Split", 18, NOAT, IN(&x7), out, 2), CELER_ERR_INVALID, "give input 'split'");
    tu_free_outputs(out, 2);
}

/* ---- Slice ---- */

static void test_slice(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t r[10];
    for (int i = 0; i < 10; i++) r[i] = i;
    celer_tensor x = TEN(CELER_INT64, r, 10);
    celer_tensor st = TEN(CELER_INT64, I64(8), 1), en = TEN(CELER_INT64, I64(1), 1);
    celer_tensor ax = TEN(CELER_INT64, I64(0), 1), sp = TEN(CELER_INT64, I64(-3), 1);
    assert_int_equal(tu_run("Slice", 13, NOAT, IN(&x, &st, &en, &ax, &sp), out, 1), 0);
    EXPECT_I64(&out[0], 8, 5, 2);
    tu_free_outputs(out, 1);
    /* 2-D, negative axis and step, ends far out of range, int32 indices */
    celer_tensor m = TEN(CELER_INT64, r, 2, 5);
    celer_tensor st32 = TEN(CELER_INT32, I32(-1), 1), en32 = TEN(CELER_INT32, I32(-100), 1);
    celer_tensor ax32 = TEN(CELER_INT32, I32(-1), 1), sp32 = TEN(CELER_INT32, I32(-2), 1);
    assert_int_equal(tu_run("Slice", 11, NOAT, IN(&m, &st32, &en32, &ax32, &sp32), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 3);
    EXPECT_I64(&out[0], 4, 2, 0, 9, 7, 5);
    tu_free_outputs(out, 1);
    /* INT64_MAX end, default axes and steps */
    st = TEN(CELER_INT64, I64(1, 2), 2);
    en = TEN(CELER_INT64, I64(INT64_MAX, INT64_MAX), 2);
    assert_int_equal(tu_run("Slice", 10, NOAT, IN(&m, &st, &en), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 3);
    EXPECT_I64(&out[0], 7, 8, 9);
    tu_free_outputs(out, 1);
    /* start past the end: empty */
    st = TEN(CELER_INT64, I64(7), 1);
    en = TEN(CELER_INT64, I64(INT64_MAX), 1);
    ax = TEN(CELER_INT64, I64(1), 1);
    assert_int_equal(tu_run("Slice", 13, NOAT, IN(&m, &st, &en, &ax), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 0);
    tu_free_outputs(out, 1);
    /* INT64_MIN step and end */
    st = TEN(CELER_INT64, I64(-1), 1);
    en = TEN(CELER_INT64, I64(INT64_MIN), 1);
    sp = TEN(CELER_INT64, I64(INT64_MIN), 1);
    assert_int_equal(tu_run("Slice", 13, NOAT, IN(&x, &st, &en, NULL, &sp), out, 1), 0);
    EXPECT_I64(&out[0], 9);
    tu_free_outputs(out, 1);
    /* opset 1: attributes */
    assert_int_equal(tu_run("Slice", 7, AT(AINTS("starts", 0, 1), AINTS("ends", 1, 1000), AINTS("axes", 0, 1)),
                         IN(&m), out, 1), 0);
    EXPECT_I64(&out[0], 1, 2, 3, 4);
    tu_free_outputs(out, 1);
    /* errors */
    sp = TEN(CELER_INT64, I64(0), 1);
    st = TEN(CELER_INT64, I64(0), 1);
    en = TEN(CELER_INT64, I64(1), 1);
    tu_expect_err(tu_run("Slice", 13, NOAT, IN(&x, &st, &en, NULL, &sp), out, 1), CELER_ERR_INVALID, "step");
    tu_free_outputs(out, 1);
    ax = TEN(CELER_INT64, I64(1), 1);
    tu_expect_err(tu_run("Slice", 13, NOAT, IN(&x, &st, &en, &ax), out, 1), CELER_ERR_INVALID, "out of range");
    tu_free_outputs(out, 1);
    celer_tensor st2 = TEN(CELER_INT64, I64(0, 0), 2);
    tu_expect_err(tu_run("Slice", 13, NOAT, IN(&x, &st2, &en), out, 1), CELER_ERR_INVALID, "same length");
    tu_free_outputs(out, 1);
    celer_tensor ax2 = TEN(CELER_INT64, I64(1, -1), 2), en2 = TEN(CELER_INT64, I64(1, 1), 2);
    tu_expect_err(tu_run("Slice", 13, NOAT, IN(&m, &st2, &en2, &ax2), out, 1), CELER_ERR_INVALID, "twice");
    tu_free_outputs(out, 1);
}

/* ---- Shape, Size, ConstantOfShape, Range, EyeLike ---- */

static void test_shape_size(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, NULL, 2, 3, 0);
    assert_int_equal(tu_run("Shape", 13, NOAT, IN(&x), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_INT64);
    EXPECT_I64(&out[0], 2, 3, 0);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Shape", 15, AT(AINT("start", -2)), IN(&x), out, 1), 0);
    EXPECT_I64(&out[0], 3, 0);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Shape", 15, AT(AINT("start", 1), AINT("end", -1)), IN(&x), out, 1), 0);
    EXPECT_I64(&out[0], 3);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Shape", 15, AT(AINT("start", -10), AINT("end", 10)), IN(&x), out, 1), 0);
    EXPECT_I64(&out[0], 2, 3, 0);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Shape", 15, AT(AINT("start", 2), AINT("end", 1)), IN(&x), out, 1), 0);
    EXPECT_SHAPE(&out[0], 0);
    tu_free_outputs(out, 1);
    /* before 15 start/end are ignored */
    assert_int_equal(tu_run("Shape", 13, AT(AINT("start", 2)), IN(&x), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Size", 13, NOAT, IN(&x), out, 1), 0);
    EXPECT_RANK0(&out[0]);
    EXPECT_I64(&out[0], 0);
    tu_free_outputs(out, 1);
    celer_tensor y = TEN(CELER_UINT8, NULL, 4, 5);
    assert_int_equal(tu_run("Size", 7, NOAT, IN(&y), out, 1), 0);
    EXPECT_I64(&out[0], 20);
    tu_free_outputs(out, 1);
}

static void test_constant_of_shape(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor sh = TEN(CELER_INT64, I64(2, 3), 2);
    assert_int_equal(tu_run("ConstantOfShape", 9, NOAT, IN(&sh), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_FLOAT);
    EXPECT_F32(&out[0], 0, 0, 0, 0, 0, 0);
    tu_free_outputs(out, 1);
    int32_t seven = 7;
    celer_tensor val = TEN(CELER_INT32, &seven, 1);
    celer_onnx_attr at[1] = {{.name = "value", .type = CELER_ATTR_TENSOR, .t = &val}};
    assert_int_equal(tu_run("ConstantOfShape", 9, at, 1, IN(&sh), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_INT32);
    tu_check_data(&out[0], I32(7, 7, 7, 7, 7, 7), 24);
    tu_free_outputs(out, 1);
    celer_tensor empty = TEN(CELER_INT64, NULL, 0);
    assert_int_equal(tu_run("ConstantOfShape", 9, at, 1, IN(&empty), out, 1), 0);
    EXPECT_RANK0(&out[0]);
    tu_check_data(&out[0], I32(7), 4);
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(2, 0), 2);
    assert_int_equal(tu_run("ConstantOfShape", 9, at, 1, IN(&sh), out, 1), 0);
    EXPECT_EMPTY(&out[0]);
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(2, -3), 2);
    tu_expect_err(tu_run("ConstantOfShape", 9, NOAT, IN(&sh), out, 1), CELER_ERR_INVALID, "negative");
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(1LL << 40, 1LL << 30), 2);
    tu_expect_err(tu_run("ConstantOfShape", 9, NOAT, IN(&sh), out, 1), CELER_ERR_LIMIT, "too large");
    tu_free_outputs(out, 1);
    celer_tensor two = TEN(CELER_INT32, I32(1, 2), 2);
    celer_onnx_attr bad[1] = {{.name = "value", .type = CELER_ATTR_TENSOR, .t = &two}};
    tu_expect_err(tu_run("ConstantOfShape", 9, bad, 1, IN(&sh), out, 1), CELER_ERR_INVALID, "one-element");
    tu_free_outputs(out, 1);
}

static void test_range(void **s) {
    (void)s;
    celer_tensor out[1];
    float a = 1, b = 2.1f, d = 0.25f;
    celer_tensor fs = SCALAR(CELER_FLOAT, &a), fl = SCALAR(CELER_FLOAT, &b), fd = SCALAR(CELER_FLOAT, &d);
    assert_int_equal(tu_run("Range", 11, NOAT, IN(&fs, &fl, &fd), out, 1), 0);
    EXPECT_F32(&out[0], 1, 1.25f, 1.5f, 1.75f, 2);
    tu_free_outputs(out, 1);
    int32_t s0 = 10, l0 = 4, d0 = -3;
    celer_tensor is = SCALAR(CELER_INT32, &s0), il = SCALAR(CELER_INT32, &l0), id = SCALAR(CELER_INT32, &d0);
    assert_int_equal(tu_run("Range", 11, NOAT, IN(&is, &il, &id), out, 1), 0);
    tu_check_data(&out[0], I32(10, 7), 8);
    tu_free_outputs(out, 1);
    /* wrong direction: empty */
    d0 = 3;
    assert_int_equal(tu_run("Range", 11, NOAT, IN(&is, &il, &id), out, 1), 0);
    EXPECT_SHAPE(&out[0], 0);
    tu_free_outputs(out, 1);
    int64_t ls = INT64_MIN, ll = INT64_MAX, ld = 1;
    celer_tensor xs = SCALAR(CELER_INT64, &ls), xl = SCALAR(CELER_INT64, &ll), xd = SCALAR(CELER_INT64, &ld);
    tu_expect_err(tu_run("Range", 11, NOAT, IN(&xs, &xl, &xd), out, 1), CELER_ERR_LIMIT, "too many");
    tu_free_outputs(out, 1);
    ls = 0;
    tu_expect_err(tu_run("Range", 11, NOAT, IN(&xs, &xl, &xd), out, 1), CELER_ERR_LIMIT, "too large");
    tu_free_outputs(out, 1);
    d0 = 0;
    tu_expect_err(tu_run("Range", 11, NOAT, IN(&is, &il, &id), out, 1), CELER_ERR_INVALID, "non-zero");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Range", 11, NOAT, IN(&is, &il, &fd), out, 1), CELER_ERR_INVALID, "delta");
    tu_free_outputs(out, 1);
}

static void test_eye_like(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, NULL, 3, 4);
    float dummy[12];
    x.data = dummy;
    assert_int_equal(tu_run("EyeLike", 9, AT(AINT("k", 1)), IN(&x), out, 1), 0);
    EXPECT_F32(&out[0], 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("EyeLike", 9, AT(AINT("k", -2), AINT("dtype", CELER_INT64)), IN(&x), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_INT64);
    EXPECT_I64(&out[0], 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("EyeLike", 9, AT(AINT("k", 100)), IN(&x), out, 1), 0);
    EXPECT_F32(&out[0], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    tu_free_outputs(out, 1);
    celer_tensor v = TEN(CELER_FLOAT, dummy, 3);
    tu_expect_err(tu_run("EyeLike", 9, NOAT, IN(&v), out, 1), CELER_ERR_SHAPE, "2-D");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("EyeLike", 9, AT(AINT("dtype", CELER_STRING)), IN(&x), out, 1),
               CELER_ERR_UNSUPPORTED, "dtype");
    tu_free_outputs(out, 1);
}

/* ---- Expand, Tile ---- */

static void test_expand_tile(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_INT64, I64(1, 2, 3), 3, 1);
    celer_tensor sh = TEN(CELER_INT64, I64(2, 1, 2), 3);
    assert_int_equal(tu_run("Expand", 13, NOAT, IN(&x, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 3, 2);
    EXPECT_I64(&out[0], 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3);
    tu_free_outputs(out, 1);
    /* shape smaller than the input: bidirectional broadcast keeps the input's dims */
    sh = TEN(CELER_INT64, I64(1), 1);
    assert_int_equal(tu_run("Expand", 8, NOAT, IN(&x, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 1);
    EXPECT_I64(&out[0], 1, 2, 3);
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(3, 0), 2);
    assert_int_equal(tu_run("Expand", 13, NOAT, IN(&x, &sh), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 0);
    tu_free_outputs(out, 1);
    sh = TEN(CELER_INT64, I64(2, 2), 2);
    tu_expect_err(tu_run("Expand", 13, NOAT, IN(&x, &sh), out, 1), CELER_ERR_SHAPE, "broadcast");
    tu_free_outputs(out, 1);

    celer_tensor t = TEN(CELER_INT64, I64(1, 2, 3, 4), 2, 2);
    celer_tensor rep = TEN(CELER_INT64, I64(2, 3), 2);
    assert_int_equal(tu_run("Tile", 13, NOAT, IN(&t, &rep), out, 1), 0);
    EXPECT_SHAPE(&out[0], 4, 6);
    EXPECT_I64(&out[0], 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4);
    tu_free_outputs(out, 1);
    rep = TEN(CELER_INT64, I64(0, 1), 2);
    assert_int_equal(tu_run("Tile", 6, NOAT, IN(&t, &rep), out, 1), 0);
    EXPECT_SHAPE(&out[0], 0, 2);
    tu_free_outputs(out, 1);
    rep = TEN(CELER_INT64, I64(2), 1);
    tu_expect_err(tu_run("Tile", 13, NOAT, IN(&t, &rep), out, 1), CELER_ERR_SHAPE, "rank 2");
    tu_free_outputs(out, 1);
    rep = TEN(CELER_INT64, I64(1, -1), 2);
    tu_expect_err(tu_run("Tile", 13, NOAT, IN(&t, &rep), out, 1), CELER_ERR_INVALID, "negative");
    tu_free_outputs(out, 1);
    rep = TEN(CELER_INT64, I64(INT64_MAX, 2), 2);
    tu_expect_err(tu_run("Tile", 13, NOAT, IN(&t, &rep), out, 1), CELER_ERR_LIMIT, "overflow");
    tu_free_outputs(out, 1);
}

/* ---- Pad ---- */

static void test_pad(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6), 2, 3);
    celer_tensor pads = TEN(CELER_INT64, I64(1, 2, 1, 2), 4);
    assert_int_equal(tu_run("Pad", 13, AT(ASTR("mode", "reflect")), IN(&x, &pads), out, 1), 0);
    EXPECT_SHAPE(&out[0], 4, 7);
    EXPECT_F32(&out[0], 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2,
               3, 2, 1);
    tu_free_outputs(out, 1);
    pads = TEN(CELER_INT64, I64(0, 1, 1, 0), 4);
    assert_int_equal(tu_run("Pad", 11, AT(ASTR("mode", "edge")), IN(&x, &pads), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 4);
    EXPECT_F32(&out[0], 1, 1, 2, 3, 4, 4, 5, 6, 4, 4, 5, 6);
    tu_free_outputs(out, 1);
    /* constant with a value, negative pads crop */
    float nine = 9;
    celer_tensor cv = SCALAR(CELER_FLOAT, &nine);
    pads = TEN(CELER_INT64, I64(1, -1, 0, 1), 4);
    assert_int_equal(tu_run("Pad", 13, NOAT, IN(&x, &pads, &cv), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 3);
    EXPECT_F32(&out[0], 9, 9, 9, 2, 3, 9, 5, 6, 9);
    tu_free_outputs(out, 1);
    /* opset 2 attributes; default constant 0 */
    assert_int_equal(tu_run("Pad", 2, AT(AINTS("pads", 0, 1, 0, 0), AFLOAT("value", 1.5f)), IN(&x), out, 1), 0);
    EXPECT_F32(&out[0], 1.5f, 1, 2, 3, 1.5f, 4, 5, 6);
    tu_free_outputs(out, 1);
    /* int64 with an omitted constant_value */
    celer_tensor xi = TEN(CELER_INT64, I64(7, 8), 2);
    pads = TEN(CELER_INT64, I64(2, 1), 2);
    assert_int_equal(tu_run("Pad", 11, NOAT, IN(&xi, &pads, NULL), out, 1), 0);
    EXPECT_I64(&out[0], 0, 0, 7, 8, 0);
    tu_free_outputs(out, 1);
    /* reflect with pads larger than the axis */
    pads = TEN(CELER_INT64, I64(3, 3), 2);
    assert_int_equal(tu_run("Pad", 11, AT(ASTR("mode", "reflect")), IN(&xi, &pads), out, 1), 0);
    EXPECT_I64(&out[0], 8, 7, 8, 7, 8, 7, 8, 7);
    tu_free_outputs(out, 1);
    /* strings pad with "" */
    const char *strs[1] = {"s"};
    celer_tensor xs = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 1);
    pads = TEN(CELER_INT64, I64(1, 0), 2);
    assert_int_equal(tu_run("Pad", 13, NOAT, IN(&xs, &pads), out, 1), 0);
    assert_string_equal(((const celer_str *)out[0].data)[0].data, "");
    assert_string_equal(((const celer_str *)out[0].data)[1].data, "s");
    tu_free_outputs(out, 1);
    /* empty input, constant pad */
    celer_tensor e = TEN(CELER_FLOAT, NULL, 0, 2);
    pads = TEN(CELER_INT64, I64(1, 0, 0, 0), 4);
    assert_int_equal(tu_run("Pad", 13, NOAT, IN(&e, &pads), out, 1), 0);
    EXPECT_F32(&out[0], 0, 0);
    tu_free_outputs(out, 1);
    /* errors */
    tu_expect_err(tu_run("Pad", 13, AT(ASTR("mode", "edge")), IN(&e, &pads), out, 1), CELER_ERR_INVALID,
               "size 0");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Pad", 13, AT(ASTR("mode", "wrap")), IN(&x, &pads), out, 1),
               CELER_ERR_UNSUPPORTED, "wrap");
    tu_free_outputs(out, 1);
    pads = TEN(CELER_INT64, I64(1, 1), 2);
    tu_expect_err(tu_run("Pad", 13, NOAT, IN(&x, &pads), out, 1), CELER_ERR_INVALID, "expected 4");
    tu_free_outputs(out, 1);
    pads = TEN(CELER_INT64, I64(0, -3, 0, -1), 4);
    tu_expect_err(tu_run("Pad", 13, NOAT, IN(&x, &pads), out, 1), CELER_ERR_INVALID, "invalid");
    tu_free_outputs(out, 1);
    pads = TEN(CELER_INT64, I64(0, INT64_MAX, 0, INT64_MAX), 4);
    tu_expect_err(tu_run("Pad", 13, NOAT, IN(&x, &pads), out, 1), CELER_ERR_INVALID, "invalid");
    tu_free_outputs(out, 1);
}

/* Pad 18 (axes), 19 (wrap), and negative pads, which remove elements before any mode reads */
static void test_pad_axes_wrap(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6), 2, 3);
    celer_tensor pads = TEN(CELER_INT64, I64(1, 2), 2);
    celer_tensor ax = TEN(CELER_INT32, I32(-1), 1);
    assert_int_equal(tu_run("Pad", 18, AT(ASTR("mode", "edge")), IN(&x, &pads, NULL, &ax), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 6);
    EXPECT_F32(&out[0], 1, 1, 2, 3, 3, 3, 4, 4, 5, 6, 6, 6);
    tu_free_outputs(out, 1);
    /* wrap: pads longer than the axis go round it more than once */
    pads = TEN(CELER_INT64, I64(4, 0), 2);
    celer_tensor ax1 = TEN(CELER_INT64, I64(1), 1);
    assert_int_equal(tu_run("Pad", 19, AT(ASTR("mode", "wrap")), IN(&x, &pads, NULL, &ax1), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 7);
    EXPECT_F32(&out[0], 3, 1, 2, 3, 1, 2, 3, 6, 4, 5, 6, 4, 5, 6);
    tu_free_outputs(out, 1);
    /* wrap after removing the last column: the kept [1, 2] repeat, not [1, 2, 3] */
    pads = TEN(CELER_INT64, I64(0, 3, 0, -1), 4);
    assert_int_equal(tu_run("Pad", 19, AT(ASTR("mode", "wrap")), IN(&x, &pads), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 5);
    EXPECT_F32(&out[0], 2, 1, 2, 1, 2, 5, 4, 5, 4, 5);
    tu_free_outputs(out, 1);
    /* reflect likewise: about the kept [2, 3] after removing the first column */
    pads = TEN(CELER_INT64, I64(0, -1, 0, 2), 4);
    assert_int_equal(tu_run("Pad", 13, AT(ASTR("mode", "reflect")), IN(&x, &pads), out, 1), 0);
    EXPECT_F32(&out[0], 2, 3, 2, 3, 5, 6, 5, 6);
    tu_free_outputs(out, 1);
    /* errors */
    pads = TEN(CELER_INT64, I64(0, 1, 1, 0), 4);
    tu_expect_err(tu_run("Pad", 18, AT(ASTR("mode", "wrap")), IN(&x, &pads), out, 1), CELER_ERR_UNSUPPORTED,
               "'wrap' needs opset 19");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Pad", 19, AT(ASTR("mode", "mirror")), IN(&x, &pads), out, 1), CELER_ERR_UNSUPPORTED,
               "attribute 'mode' value 'mirror' is not supported");
    tu_free_outputs(out, 1);
    celer_tensor dup = TEN(CELER_INT64, I64(1, -1), 2);
    tu_expect_err(tu_run("Pad", 18, NOAT, IN(&x, &pads, NULL, &dup), out, 1), CELER_ERR_INVALID, "listed twice");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Pad", 18, NOAT, IN(&x, &pads, NULL, &ax1), out, 1), CELER_ERR_INVALID,
               "expected 2 for 1 axes");
    tu_free_outputs(out, 1);
    pads = TEN(CELER_INT64, I64(0, -3, 0, 1), 4);
    tu_expect_err(tu_run("Pad", 19, AT(ASTR("mode", "wrap")), IN(&x, &pads), out, 1), CELER_ERR_INVALID,
               "no element of it is left");
    tu_free_outputs(out, 1);
}

/* CenterCropPad 18: crops start at floor((in - out) / 2), pads put the odd zero on the right */
static void test_center_crop_pad(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 3, 4);
    celer_tensor shp = TEN(CELER_INT64, I64(1, 7), 2);
    assert_int_equal(tu_run("CenterCropPad", 18, NOAT, IN(&x, &shp), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 7);
    EXPECT_F32(&out[0], 0, 5, 6, 7, 8, 0, 0);
    tu_free_outputs(out, 1);
    celer_tensor one = TEN(CELER_INT64, I64(1), 1);
    assert_int_equal(tu_run("CenterCropPad", 18, AT(AINTS("axes", -1)), IN(&x, &one), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 1);
    EXPECT_F32(&out[0], 2, 6, 10);
    tu_free_outputs(out, 1);
    /* refusals: an axis twice (at init), 'shape' not one per axis, a negative size */
    tu_expect_err(tu_run("CenterCropPad", 18, AT(AINTS("axes", 1, 1)), IN(&x, &shp), out, 1),
                  CELER_ERR_UNSUPPORTED, "attribute 'axes' lists axis 1 twice");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("CenterCropPad", 18, AT(AINTS("axes", 0)), IN(&x, &shp), out, 1), CELER_ERR_INVALID,
                  "'shape' has 2 values, expected 1");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("CenterCropPad", 18, AT(AINTS("axes", 1, -1)), IN(&x, &shp), out, 1), CELER_ERR_INVALID,
                  "listed twice");
    tu_free_outputs(out, 1);
    celer_tensor neg = TEN(CELER_INT64, I64(-1), 1);
    tu_expect_err(tu_run("CenterCropPad", 18, AT(AINTS("axes", 0)), IN(&x, &neg), out, 1), CELER_ERR_INVALID,
                  "outside [0,");
    tu_free_outputs(out, 1);
    /* not served before opset 18 */
    assert_int_equal(tu_run("CenterCropPad", 17, NOAT, IN(&x, &shp), out, 1), CELER_ERR_UNSUPPORTED);
    tu_free_outputs(out, 1);
}

/* ---- Trilu, DepthToSpace, SpaceToDepth ---- */

static void test_trilu(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t a[12];
    for (int i = 0; i < 12; i++) a[i] = i;
    celer_tensor x = TEN(CELER_INT64, a, 3, 4), k = SCALAR(CELER_INT64, I64(-1));
    assert_int_equal(tu_run("Trilu", 14, AT(AINT("upper", 0)), IN(&x, &k), out, 1), 0);
    EXPECT_I64(&out[0], 0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0);
    tu_free_outputs(out, 1);
    k = SCALAR(CELER_INT64, I64(1));
    assert_int_equal(tu_run("Trilu", 14, NOAT, IN(&x, &k), out, 1), 0);
    EXPECT_I64(&out[0], 0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11);
    tu_free_outputs(out, 1);
    k = SCALAR(CELER_INT64, I64(INT64_MIN));
    assert_int_equal(tu_run("Trilu", 14, NOAT, IN(&x, &k), out, 1), 0);
    assert_memory_equal(out[0].data, a, sizeof a);
    tu_free_outputs(out, 1);
    k = SCALAR(CELER_INT64, I64(INT64_MAX));
    assert_int_equal(tu_run("Trilu", 14, NOAT, IN(&x, &k), out, 1), 0);
    EXPECT_I64(&out[0], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    tu_free_outputs(out, 1);
    /* batched, no k */
    celer_tensor b = TEN(CELER_INT64, a, 3, 2, 2);
    assert_int_equal(tu_run("Trilu", 14, AT(AINT("upper", 0)), IN(&b), out, 1), 0);
    EXPECT_I64(&out[0], 0, 0, 2, 3, 4, 0, 6, 7, 8, 0, 10, 11);
    tu_free_outputs(out, 1);
    celer_tensor v = TEN(CELER_INT64, a, 3);
    tu_expect_err(tu_run("Trilu", 14, NOAT, IN(&v), out, 1), CELER_ERR_SHAPE, "rank >= 2");
    tu_free_outputs(out, 1);
}

static void test_depth_space(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t a[16];
    for (int i = 0; i < 16; i++) a[i] = i;
    celer_tensor x = TEN(CELER_INT64, a, 1, 8, 1, 2);
    assert_int_equal(tu_run("DepthToSpace", 13, AT(AINT("blocksize", 2)), IN(&x), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 2, 2, 4);
    EXPECT_I64(&out[0], 0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("DepthToSpace", 11, AT(AINT("blocksize", 2), ASTR("mode", "CRD")), IN(&x),
                         out, 1), 0);
    EXPECT_I64(&out[0], 0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
    tu_free_outputs(out, 1);
    celer_tensor y = TEN(CELER_INT64, a, 1, 1, 4, 4);
    assert_int_equal(tu_run("SpaceToDepth", 13, AT(AINT("blocksize", 2)), IN(&y), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 4, 2, 2);
    EXPECT_I64(&out[0], 0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15);
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("DepthToSpace", 13, AT(AINT("blocksize", 3)), IN(&x), out, 1), CELER_ERR_SHAPE,
               "multiple");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("DepthToSpace", 13, AT(AINT("blocksize", 0)), IN(&x), out, 1), CELER_ERR_INVALID,
               "blocksize");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("SpaceToDepth", 13, AT(AINT("blocksize", 3)), IN(&y), out, 1), CELER_ERR_SHAPE,
               "multiples");
    tu_free_outputs(out, 1);
    celer_tensor z = TEN(CELER_INT64, a, 16);
    tu_expect_err(tu_run("SpaceToDepth", 13, AT(AINT("blocksize", 2)), IN(&z), out, 1), CELER_ERR_SHAPE,
               "4-D");
    tu_free_outputs(out, 1);
}

/* ---- robustness: random shapes, index values and attributes never crash ----
 * Every op gets inputs of random rank (0-3) and dims (0-3), int64 inputs holding small,
 * negative and huge values, and random attributes; any status is fine, a crash or a sanitizer
 * report is not. */
static void test_fuzz(void **s) {
    (void)s;
    static const tu_fuzz_case cases[] = {
        {"Reshape", 13, 2, 1},   {"Reshape", 14, 2, 1},      {"Flatten", 13, 1, 1},
        {"Squeeze", 11, 1, 1},   {"Squeeze", 13, 2, 1},      {"Unsqueeze", 11, 1, 1},
        {"Unsqueeze", 13, 2, 1}, {"Identity", 13, 1, 1},     {"Transpose", 13, 1, 1},
        {"Concat", 13, 3, 1},    {"Split", 11, 1, 2},        {"Split", 13, 2, 3},
        {"Slice", 9, 1, 1},      {"Slice", 13, 5, 1},        {"Shape", 15, 1, 1},
        {"Size", 13, 1, 1},      {"ConstantOfShape", 9, 1, 1}, {"Expand", 13, 2, 1},
        {"Tile", 13, 2, 1},      {"Pad", 2, 1, 1},           {"Pad", 13, 3, 1},
        {"Range", 11, 3, 1},     {"EyeLike", 9, 1, 1},       {"Trilu", 14, 2, 1},
        {"DepthToSpace", 13, 1, 1}, {"SpaceToDepth", 13, 1, 1},
    };
    tu_fuzz_ops(cases, CELER_ARRAY_LEN(cases), 1500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),         cmocka_unit_test(test_flatten),
        cmocka_unit_test(test_squeeze_unsqueeze), cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_transpose_threads),
        cmocka_unit_test(test_concat),          cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice),           cmocka_unit_test(test_shape_size),
        cmocka_unit_test(test_constant_of_shape), cmocka_unit_test(test_range),
        cmocka_unit_test(test_eye_like),        cmocka_unit_test(test_expand_tile),
        cmocka_unit_test(test_pad),             cmocka_unit_test(test_pad_axes_wrap),
        cmocka_unit_test(test_center_crop_pad), cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_depth_space), cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
