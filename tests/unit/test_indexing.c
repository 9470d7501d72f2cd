/* indexing family: hand-checked cases for Gather*, Scatter*, OneHot, NonZero, Compress,
 * ReverseSequence and Unique (negative indices, empty tensors, reductions, strings) and the
 * errors a bad index must give. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"

/* ---- Gather, GatherElements, GatherND ---- */

static void test_gather(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t d[12];
    for (int i = 0; i < 12; i++) d[i] = i;
    celer_tensor x = TEN(CELER_INT64, d, 3, 4);
    celer_tensor ind = TEN(CELER_INT64, I64(-1, 0), 1, 2);
    assert_int_equal(tu_run("Gather", 13, AT(AINT("axis", 1)), IN(&x, &ind), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 1, 2);
    EXPECT_I64(&out[0], 3, 0, 7, 4, 11, 8);
    tu_free_outputs(out, 1);
    celer_tensor i32 = TEN(CELER_INT32, I32(2, -3), 2);
    assert_int_equal(tu_run("Gather", 11, NOAT, IN(&x, &i32), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 4);
    EXPECT_I64(&out[0], 8, 9, 10, 11, 0, 1, 2, 3);
    tu_free_outputs(out, 1);
    /* scalar index drops the axis */
    celer_tensor sc = SCALAR(CELER_INT64, I64(1));
    assert_int_equal(tu_run("Gather", 13, AT(AINT("axis", -1)), IN(&x, &sc), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3);
    EXPECT_I64(&out[0], 1, 5, 9);
    tu_free_outputs(out, 1);
    /* empty indices */
    celer_tensor e = TEN(CELER_INT64, NULL, 0);
    assert_int_equal(tu_run("Gather", 13, NOAT, IN(&x, &e), out, 1), 0);
    EXPECT_SHAPE(&out[0], 0, 4);
    tu_free_outputs(out, 1);
    /* strings */
    const char *strs[3] = {"x", "y", "z"};
    celer_tensor st = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 3);
    assert_int_equal(tu_run("Gather", 13, NOAT, IN(&st, &i32), out, 1), 0);
    assert_string_equal(((const celer_str *)out[0].data)[0].data, "z");
    assert_string_equal(((const celer_str *)out[0].data)[1].data, "x");
    tu_free_outputs(out, 1);
    /* errors */
    ind = TEN(CELER_INT64, I64(0, 4), 2);
    tu_expect_err(tu_run("Gather", 13, AT(AINT("axis", 1)), IN(&x, &ind), out, 1), CELER_ERR_INVALID,
               "index 4 is out of range for axis 1 of size 4");
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(-4), 1);
    tu_expect_err(tu_run("Gather", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_INVALID, "index -4");
    tu_free_outputs(out, 1);
    celer_tensor fi = TEN(CELER_FLOAT, F32(0), 1);
    tu_expect_err(tu_run("Gather", 13, NOAT, IN(&x, &fi), out, 1), CELER_ERR_DTYPE, "int64");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Gather", 13, AT(AINT("axis", 2)), IN(&x, &sc), out, 1), CELER_ERR_INVALID,
               "axis 2");
    tu_free_outputs(out, 1);
    /* empty data axis: any index is out of range */
    celer_tensor ed = TEN(CELER_INT64, NULL, 0, 3);
    tu_expect_err(tu_run("Gather", 13, NOAT, IN(&ed, &sc), out, 1), CELER_ERR_INVALID, "size 0");
    tu_free_outputs(out, 1);
}

static void test_gather_elements(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6, 7, 8, 9), 3, 3);
    celer_tensor ind = TEN(CELER_INT64, I64(-1, -2, 0, 2, 0, 0), 2, 3);
    assert_int_equal(tu_run("GatherElements", 13, NOAT, IN(&x, &ind), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 3);
    EXPECT_F32(&out[0], 7, 5, 3, 7, 2, 3);
    tu_free_outputs(out, 1);
    celer_tensor i2 = TEN(CELER_INT32, I32(0, 0, 1, 0), 2, 2);
    assert_int_equal(tu_run("GatherElements", 11, AT(AINT("axis", 1)), IN(&x, &i2), out, 1), 0);
    EXPECT_F32(&out[0], 1, 1, 5, 4);
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(3), 1, 1);
    tu_expect_err(tu_run("GatherElements", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_INVALID, "index 3");
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(0, 0, 0, 0), 1, 4);
    tu_expect_err(tu_run("GatherElements", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_SHAPE, "do not fit");
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(0), 1);
    tu_expect_err(tu_run("GatherElements", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_SHAPE, "same rank");
    tu_free_outputs(out, 1);
}

static void test_gathernd(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t d[8];
    for (int i = 0; i < 8; i++) d[i] = i;
    celer_tensor x = TEN(CELER_INT64, d, 2, 2, 2);
    celer_tensor ind = TEN(CELER_INT64, I64(0, 1, 1, 0), 2, 2);
    assert_int_equal(tu_run("GatherND", 13, NOAT, IN(&x, &ind), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 2);
    EXPECT_I64(&out[0], 2, 3, 4, 5);
    tu_free_outputs(out, 1);
    /* full tuples, negative index */
    ind = TEN(CELER_INT64, I64(-1, 0, 1), 1, 3);
    assert_int_equal(tu_run("GatherND", 11, NOAT, IN(&x, &ind), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1);
    EXPECT_I64(&out[0], 5);
    tu_free_outputs(out, 1);
    /* batch_dims 1: batch b picks data[b][ind[b]] */
    ind = TEN(CELER_INT64, I64(1, 0), 2, 1);
    assert_int_equal(tu_run("GatherND", 12, AT(AINT("batch_dims", 1)), IN(&x, &ind), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 2);
    EXPECT_I64(&out[0], 2, 3, 4, 5);
    tu_free_outputs(out, 1);
    /* errors */
    ind = TEN(CELER_INT64, I64(0, 2), 1, 2);
    tu_expect_err(tu_run("GatherND", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_INVALID, "index 2");
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(0, 0, 0, 0), 1, 4);
    tu_expect_err(tu_run("GatherND", 13, NOAT, IN(&x, &ind), out, 1), CELER_ERR_SHAPE, "last dim");
    tu_free_outputs(out, 1);
    ind = TEN(CELER_INT64, I64(0, 0, 0), 3, 1);
    tu_expect_err(tu_run("GatherND", 13, AT(AINT("batch_dims", 1)), IN(&x, &ind), out, 1), CELER_ERR_SHAPE,
               "batch dims");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("GatherND", 13, AT(AINT("batch_dims", 2)), IN(&x, &ind), out, 1),
               CELER_ERR_INVALID, "batch_dims");
    tu_free_outputs(out, 1);
}

/* ---- Scatter family ---- */

static void test_scatter_elements(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5), 1, 5);
    celer_tensor ind = TEN(CELER_INT64, I64(1, -2, 1), 1, 3);
    celer_tensor upd = TEN(CELER_FLOAT, F32(10, 20, 30), 1, 3);
    assert_int_equal(tu_run("ScatterElements", 13, AT(AINT("axis", 1)), IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_F32(&out[0], 1, 30, 3, 20, 5);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("ScatterElements", 16, AT(AINT("axis", 1), ASTR("reduction", "add")),
                         IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_F32(&out[0], 1, 42, 3, 24, 5);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("ScatterElements", 16, AT(AINT("axis", -1), ASTR("reduction", "mul")),
                         IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_F32(&out[0], 1, 600, 3, 80, 5);
    tu_free_outputs(out, 1);
    /* Scatter-9, axis 0 of a 2-D */
    celer_tensor m = TEN(CELER_INT64, I64(0, 0, 0, 0, 0, 0), 2, 3);
    celer_tensor i2 = TEN(CELER_INT32, I32(1, 0, 1), 1, 3);
    celer_tensor u2 = TEN(CELER_INT64, I64(7, 8, 9), 1, 3);
    assert_int_equal(tu_run("Scatter", 9, NOAT, IN(&m, &i2, &u2), out, 1), 0);
    EXPECT_I64(&out[0], 0, 8, 0, 7, 0, 9);
    tu_free_outputs(out, 1);
    /* int64 add */
    assert_int_equal(tu_run("ScatterElements", 16, AT(ASTR("reduction", "add")), IN(&m, &i2, &u2), out, 1), 0);
    EXPECT_I64(&out[0], 0, 8, 0, 7, 0, 9);
    tu_free_outputs(out, 1);
    /* empty indices leave data unchanged */
    celer_tensor ei = TEN(CELER_INT64, NULL, 1, 0), eu = TEN(CELER_FLOAT, NULL, 1, 0);
    assert_int_equal(tu_run("ScatterElements", 13, NOAT, IN(&x, &ei, &eu), out, 1), 0);
    EXPECT_F32(&out[0], 1, 2, 3, 4, 5);
    tu_free_outputs(out, 1);
    /* errors */
    ind = TEN(CELER_INT64, I64(1, 5, 1), 1, 3);
    tu_expect_err(tu_run("ScatterElements", 13, AT(AINT("axis", 1)), IN(&x, &ind, &upd), out, 1),
               CELER_ERR_INVALID, "index 5");
    tu_free_outputs(out, 1);
    celer_tensor u4 = TEN(CELER_FLOAT, F32(1, 2, 3, 4), 1, 4);
    tu_expect_err(tu_run("ScatterElements", 13, NOAT, IN(&x, &ind, &u4), out, 1), CELER_ERR_SHAPE,
               "must match");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("ScatterElements", 16, AT(ASTR("reduction", "max")), IN(&x, &ind, &upd), out, 1),
               CELER_ERR_UNSUPPORTED, "max");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("ScatterElements", 13, NOAT, IN(&x, &ind, &u2), out, 1), CELER_ERR_DTYPE, "int64");
    tu_free_outputs(out, 1);
}

/* 18: reductions max and min, with the data element taking part; compared in the element type
 * (int32 as signed), sums and products wrapping (uint16 * uint16 must not overflow int) */
static void test_scatter_max_min(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5), 5);
    celer_tensor ind = TEN(CELER_INT64, I64(1, 1, -1, 0), 4);
    celer_tensor upd = TEN(CELER_FLOAT, F32(7, -3, 4, -1), 4);
    assert_int_equal(tu_run("ScatterElements", 18, AT(ASTR("reduction", "max")), IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_F32(&out[0], 1, 7, 3, 4, 5);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("ScatterElements", 18, AT(ASTR("reduction", "min")), IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_F32(&out[0], -1, -3, 3, 4, 4);
    tu_free_outputs(out, 1);
    celer_tensor xi = TEN(CELER_INT32, I32(-5, 5), 2), ii = TEN(CELER_INT64, I64(0, 0, 1), 3, 1);
    celer_tensor ui = TEN(CELER_INT32, I32(-7, 3, -9), 3);
    assert_int_equal(tu_run("ScatterND", 18, AT(ASTR("reduction", "min")), IN(&xi, &ii, &ui), out, 1), 0);
    int32_t want_min[2] = {-7, -9};
    tu_check_data(&out[0], want_min, sizeof want_min);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("ScatterND", 18, AT(ASTR("reduction", "max")), IN(&xi, &ii, &ui), out, 1), 0);
    int32_t want_max[2] = {3, 5};
    tu_check_data(&out[0], want_max, sizeof want_max);
    tu_free_outputs(out, 1);
    /* float16 1, 2 with updates -2, 2: compared as numbers, not as bits */
    celer_tensor h = TEN(CELER_FLOAT16, ((uint16_t[]){0x3C00, 0x4000}), 2);
    celer_tensor hu = TEN(CELER_FLOAT16, ((uint16_t[]){0xC000, 0x4000}), 2), hi = TEN(CELER_INT64, I64(0, 0), 2);
    assert_int_equal(tu_run("ScatterElements", 18, AT(ASTR("reduction", "max")), IN(&h, &hi, &hu), out, 1), 0);
    uint16_t want_h[2] = {0x4000, 0x4000};
    tu_check_data(&out[0], want_h, sizeof want_h);
    tu_free_outputs(out, 1);
    celer_tensor b = TEN(CELER_BOOL, ((uint8_t[]){1, 0}), 2), bu = TEN(CELER_BOOL, ((uint8_t[]){0, 1}), 2);
    celer_tensor bi = TEN(CELER_INT64, I64(0, 1), 2);
    assert_int_equal(tu_run("ScatterElements", 18, AT(ASTR("reduction", "min")), IN(&b, &bi, &bu), out, 1), 0);
    uint8_t want_b[2] = {0, 0};
    tu_check_data(&out[0], want_b, sizeof want_b);
    tu_free_outputs(out, 1);
    celer_tensor w = TEN(CELER_UINT16, ((uint16_t[]){65535}), 1), wu = TEN(CELER_UINT16, ((uint16_t[]){65535}), 1);
    celer_tensor wi = TEN(CELER_INT64, I64(0), 1);
    assert_int_equal(tu_run("ScatterElements", 18, AT(ASTR("reduction", "mul")), IN(&w, &wi, &wu), out, 1), 0);
    uint16_t want_w[1] = {1}; /* 65535^2 mod 65536 */
    tu_check_data(&out[0], want_w, sizeof want_w);
    tu_free_outputs(out, 1);
    /* a reduction of a later version, or none celer knows, is refused at init (load) */
    tu_expect_err(tu_run("ScatterND", 17, AT(ASTR("reduction", "min")), IN(&xi, &ii, &ui), out, 1),
               CELER_ERR_UNSUPPORTED, "'min' needs opset 18 or later");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("ScatterElements", 18, AT(ASTR("reduction", "mean")), IN(&x, &ind, &upd), out, 1),
               CELER_ERR_UNSUPPORTED, "attribute 'reduction' value 'mean' is not supported");
    tu_free_outputs(out, 1);
}

static void test_scatternd(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6, 7, 8), 8);
    celer_tensor ind = TEN(CELER_INT64, I64(4, 3, -7, 7), 4, 1);
    celer_tensor upd = TEN(CELER_INT64, I64(9, 10, 11, 12), 4);
    assert_int_equal(tu_run("ScatterND", 13, NOAT, IN(&x, &ind, &upd), out, 1), 0);
    EXPECT_I64(&out[0], 1, 11, 3, 10, 9, 6, 7, 12);
    tu_free_outputs(out, 1);
    /* slices and reductions: duplicate index accumulates */
    celer_tensor m = TEN(CELER_FLOAT, F32(1, 2, 3, 4), 2, 2);
    celer_tensor i2 = TEN(CELER_INT64, I64(1, 1), 2, 1);
    celer_tensor u2 = TEN(CELER_FLOAT, F32(2, 3, 4, 5), 2, 2);
    assert_int_equal(tu_run("ScatterND", 16, AT(ASTR("reduction", "mul")), IN(&m, &i2, &u2), out, 1), 0);
    EXPECT_F32(&out[0], 1, 2, 24, 60);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("ScatterND", 16, AT(ASTR("reduction", "add")), IN(&m, &i2, &u2), out, 1), 0);
    EXPECT_F32(&out[0], 1, 2, 9, 12);
    tu_free_outputs(out, 1);
    /* reduction is ignored before opset 16 */
    assert_int_equal(tu_run("ScatterND", 13, AT(ASTR("reduction", "add")), IN(&m, &i2, &u2), out, 1), 0);
    EXPECT_F32(&out[0], 1, 2, 4, 5);
    tu_free_outputs(out, 1);
    /* errors */
    celer_tensor u3 = TEN(CELER_FLOAT, F32(2, 3, 4), 3);
    tu_expect_err(tu_run("ScatterND", 16, NOAT, IN(&m, &i2, &u3), out, 1), CELER_ERR_SHAPE, "expected [2,2]");
    tu_free_outputs(out, 1);
    celer_tensor ib = TEN(CELER_INT64, I64(0, 2), 2, 1);
    tu_expect_err(tu_run("ScatterND", 16, NOAT, IN(&m, &ib, &u2), out, 1), CELER_ERR_INVALID, "index 2");
    tu_free_outputs(out, 1);
    const char *strs[2] = {"a", "b"};
    celer_tensor st = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 2), si = TEN(CELER_INT64, I64(0), 1, 1);
    const char *su[1] = {"c"};
    celer_tensor sup = TEN(CELER_STRING, tu_strs((const char *const *)su, CELER_ARRAY_LEN(su)), 1);
    assert_int_equal(tu_run("ScatterND", 16, NOAT, IN(&st, &si, &sup), out, 1), 0);
    assert_string_equal(((const celer_str *)out[0].data)[0].data, "c");
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("ScatterND", 16, AT(ASTR("reduction", "add")), IN(&st, &si, &sup), out, 1),
               CELER_ERR_DTYPE, "strings");
    tu_free_outputs(out, 1);
}

/* ---- OneHot, NonZero, Compress ---- */

static void test_onehot(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor ind = TEN(CELER_INT64, I64(0, -1, 5, 2), 2, 2);
    float dep = 3;
    celer_tensor depth = SCALAR(CELER_FLOAT, &dep);
    celer_tensor vals = TEN(CELER_INT32, I32(0, 7), 2);
    assert_int_equal(tu_run("OneHot", 11, NOAT, IN(&ind, &depth, &vals), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_INT32);
    EXPECT_SHAPE(&out[0], 2, 2, 3);
    tu_check_data(&out[0], I32(7, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 7), 48);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("OneHot", 11, AT(AINT("axis", 0)), IN(&ind, &depth, &vals), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2, 2);
    tu_check_data(&out[0], I32(7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 7), 48);
    tu_free_outputs(out, 1);
    celer_tensor fi = TEN(CELER_FLOAT, F32(1.0f, -2.0f), 2);
    celer_tensor fv = TEN(CELER_FLOAT, F32(-1, 1), 2);
    assert_int_equal(tu_run("OneHot", 9, AT(AINT("axis", -2)), IN(&fi, &depth, &fv), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    EXPECT_F32(&out[0], -1, -1, 1, 1, -1, -1);
    tu_free_outputs(out, 1);
    dep = 0;
    tu_expect_err(tu_run("OneHot", 11, NOAT, IN(&ind, &depth, &vals), out, 1), CELER_ERR_INVALID, "depth");
    tu_free_outputs(out, 1);
    dep = 3;
    tu_expect_err(tu_run("OneHot", 11, AT(AINT("axis", 3)), IN(&ind, &depth, &vals), out, 1),
               CELER_ERR_INVALID, "axis 3");
    tu_free_outputs(out, 1);
    celer_tensor v3 = TEN(CELER_INT32, I32(0, 1, 2), 3);
    tu_expect_err(tu_run("OneHot", 11, NOAT, IN(&ind, &depth, &v3), out, 1), CELER_ERR_INVALID, "two");
    tu_free_outputs(out, 1);
    dep = 1e30f;
    tu_expect_err(tu_run("OneHot", 11, NOAT, IN(&ind, &depth, &vals), out, 1), CELER_ERR_INVALID, "depth");
    tu_free_outputs(out, 1);
}

static void test_nonzero(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 0, -0.0f, 3, 0, 2), 2, 3);
    assert_int_equal(tu_run("NonZero", 13, NOAT, IN(&x), out, 1), 0);
    assert_int_equal(out[0].dtype, CELER_INT64);
    EXPECT_SHAPE(&out[0], 2, 3);
    EXPECT_I64(&out[0], 0, 1, 1, 0, 0, 2);
    tu_free_outputs(out, 1);
    uint8_t b[3] = {0, 1, 1};
    celer_tensor bt = TEN(CELER_BOOL, b, 3);
    assert_int_equal(tu_run("NonZero", 9, NOAT, IN(&bt), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 2);
    EXPECT_I64(&out[0], 1, 2);
    tu_free_outputs(out, 1);
    celer_tensor e = TEN(CELER_INT32, NULL, 0, 4);
    assert_int_equal(tu_run("NonZero", 13, NOAT, IN(&e), out, 1), 0);
    EXPECT_SHAPE(&out[0], 2, 0);
    tu_free_outputs(out, 1);
    celer_tensor sc = SCALAR(CELER_INT32, I32(5));
    assert_int_equal(tu_run("NonZero", 13, NOAT, IN(&sc), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 1);
    EXPECT_I64(&out[0], 0);
    tu_free_outputs(out, 1);
}

static void test_compress(void **s) {
    (void)s;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6), 3, 2);
    uint8_t c1[2] = {0, 1};
    celer_tensor cond = TEN(CELER_BOOL, c1, 2);
    assert_int_equal(tu_run("Compress", 11, AT(AINT("axis", 0)), IN(&x, &cond), out, 1), 0);
    EXPECT_SHAPE(&out[0], 1, 2);
    EXPECT_I64(&out[0], 3, 4);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Compress", 11, AT(AINT("axis", -1)), IN(&x, &cond), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3, 1);
    EXPECT_I64(&out[0], 2, 4, 6);
    tu_free_outputs(out, 1);
    uint8_t c2[5] = {1, 0, 0, 1, 1};
    cond = TEN(CELER_BOOL, c2, 5);
    assert_int_equal(tu_run("Compress", 9, NOAT, IN(&x, &cond), out, 1), 0);
    EXPECT_SHAPE(&out[0], 3);
    EXPECT_I64(&out[0], 1, 4, 5);
    tu_free_outputs(out, 1);
    /* longer condition is fine if the extra entries are false */
    uint8_t c3[4] = {1, 0, 1, 0};
    cond = TEN(CELER_BOOL, c3, 4);
    assert_int_equal(tu_run("Compress", 11, AT(AINT("axis", 0)), IN(&x, &cond), out, 1), 0);
    EXPECT_I64(&out[0], 1, 2, 5, 6);
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Compress", 11, AT(AINT("axis", 1)), IN(&x, &cond), out, 1), CELER_ERR_INVALID,
               "selects index 2");
    tu_free_outputs(out, 1);
    celer_tensor c2d = TEN(CELER_BOOL, c3, 2, 2);
    tu_expect_err(tu_run("Compress", 11, NOAT, IN(&x, &c2d), out, 1), CELER_ERR_SHAPE, "1-D");
    tu_free_outputs(out, 1);
}

/* ---- ReverseSequence ---- */

static void test_reverse_sequence(void **s) {
    (void)s;
    celer_tensor out[1];
    int64_t d[16];
    for (int i = 0; i < 16; i++) d[i] = i;
    /* [time 4, batch 4], lens per batch */
    celer_tensor x = TEN(CELER_INT64, d, 4, 4), lens = TEN(CELER_INT64, I64(4, 3, 2, 1), 4);
    assert_int_equal(tu_run("ReverseSequence", 10, NOAT, IN(&x, &lens), out, 1), 0);
    EXPECT_I64(&out[0], 12, 9, 6, 3, 8, 5, 2, 7, 4, 1, 10, 11, 0, 13, 14, 15);
    tu_free_outputs(out, 1);
    lens = TEN(CELER_INT64, I64(1, 2, 3, 4), 4);
    assert_int_equal(tu_run("ReverseSequence", 10, AT(AINT("batch_axis", 0), AINT("time_axis", 1)),
                         IN(&x, &lens), out, 1), 0);
    EXPECT_I64(&out[0], 0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12);
    tu_free_outputs(out, 1);
    lens = TEN(CELER_INT64, I64(1, 2, 5, 4), 4);
    tu_expect_err(tu_run("ReverseSequence", 10, NOAT, IN(&x, &lens), out, 1), CELER_ERR_INVALID,
               "sequence_lens[2] = 5");
    tu_free_outputs(out, 1);
    lens = TEN(CELER_INT64, I64(1, 2), 2);
    tu_expect_err(tu_run("ReverseSequence", 10, NOAT, IN(&x, &lens), out, 1), CELER_ERR_SHAPE, "[4]");
    tu_free_outputs(out, 1);
    lens = TEN(CELER_INT64, I64(1, 2, 3, 4), 4);
    tu_expect_err(tu_run("ReverseSequence", 10, AT(AINT("batch_axis", 0)), IN(&x, &lens), out, 1),
               CELER_ERR_INVALID, "batch_axis");
    tu_free_outputs(out, 1);
}

/* ---- Unique ---- */

static void test_unique(void **s) {
    (void)s;
    celer_tensor out[4];
    celer_tensor x = TEN(CELER_INT64, I64(2, 1, 1, 3, 4, 3), 6);
    assert_int_equal(tu_run("Unique", 11, NOAT, IN(&x), out, 4), 0);
    EXPECT_I64(&out[0], 1, 2, 3, 4);
    EXPECT_I64(&out[1], 1, 0, 3, 4);
    EXPECT_I64(&out[2], 1, 0, 0, 2, 3, 2);
    EXPECT_I64(&out[3], 2, 1, 2, 1);
    tu_free_outputs(out, 4);
    assert_int_equal(tu_run("Unique", 11, AT(AINT("sorted", 0)), IN(&x), out, 4), 0);
    EXPECT_I64(&out[0], 2, 1, 3, 4);
    EXPECT_I64(&out[1], 0, 1, 3, 4);
    EXPECT_I64(&out[2], 0, 1, 1, 2, 3, 2);
    EXPECT_I64(&out[3], 1, 2, 2, 1);
    tu_free_outputs(out, 4);
    /* along an axis (and a negative one) */
    celer_tensor m = TEN(CELER_INT64, I64(1, 1, 2, 3, 1, 1, 0, 5), 4, 2);
    assert_int_equal(tu_run("Unique", 11, AT(AINT("axis", 0)), IN(&m), out, 4), 0);
    EXPECT_SHAPE(&out[0], 3, 2);
    EXPECT_I64(&out[0], 0, 5, 1, 1, 2, 3);
    EXPECT_I64(&out[1], 3, 0, 1);
    EXPECT_I64(&out[2], 1, 2, 1, 0);
    EXPECT_I64(&out[3], 1, 2, 1);
    tu_free_outputs(out, 4);
    celer_tensor t = TEN(CELER_INT64, I64(1, 0, 1, 2, 0, 2), 2, 3);
    assert_int_equal(tu_run("Unique", 11, AT(AINT("axis", -1), AINT("sorted", 0)), IN(&t), out, 2), 0);
    EXPECT_SHAPE(&out[0], 2, 2);
    EXPECT_I64(&out[0], 1, 0, 2, 0);
    EXPECT_I64(&out[1], 0, 1);
    tu_free_outputs(out, 2);
    /* floats, strings, empty */
    celer_tensor f = TEN(CELER_FLOAT, F32(2.5f, -1, 2.5f), 3);
    assert_int_equal(tu_run("Unique", 11, NOAT, IN(&f), out, 1), 0);
    EXPECT_F32(&out[0], -1, 2.5f);
    tu_free_outputs(out, 1);
    const char *strs[4] = {"b", "a", "b", "c"};
    celer_tensor st = TEN(CELER_STRING, tu_strs((const char *const *)strs, CELER_ARRAY_LEN(strs)), 2, 2);
    assert_int_equal(tu_run("Unique", 11, NOAT, IN(&st), out, 4), 0);
    EXPECT_SHAPE(&out[0], 3);
    assert_string_equal(((const celer_str *)out[0].data)[0].data, "a");
    assert_string_equal(((const celer_str *)out[0].data)[2].data, "c");
    EXPECT_I64(&out[2], 1, 0, 1, 2);
    tu_free_outputs(out, 4);
    celer_tensor e = TEN(CELER_INT32, NULL, 0);
    assert_int_equal(tu_run("Unique", 11, NOAT, IN(&e), out, 4), 0);
    EXPECT_SHAPE(&out[0], 0);
    EXPECT_SHAPE(&out[2], 0);
    tu_free_outputs(out, 4);
    /* a larger input exercises the merge sort against a simple count */
    int64_t big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (i * 7919) % 97;
    celer_tensor bt = TEN(CELER_INT64, big, 1000);
    assert_int_equal(tu_run("Unique", 11, NOAT, IN(&bt), out, 4), 0);
    EXPECT_SHAPE(&out[0], 97);
    for (int i = 0; i < 97; i++) {
        assert_int_equal(((int64_t *)out[0].data)[i], i);
        assert_int_equal(big[((int64_t *)out[1].data)[i]], i);
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(((int64_t *)out[2].data)[i], big[i]);
    tu_free_outputs(out, 4);
    tu_expect_err(tu_run("Unique", 11, AT(AINT("axis", 2)), IN(&m), out, 1), CELER_ERR_INVALID, "axis 2");
    tu_free_outputs(out, 1);
}

/* ---- robustness: random shapes, index values and attributes never crash ----
 * Every op gets inputs of random rank (0-3) and dims (0-3), int64 inputs holding small,
 * negative and huge values, and random attributes; any status is fine, a crash or a sanitizer
 * report is not. */
static void test_fuzz(void **s) {
    (void)s;
    static const tu_fuzz_case cases[] = {
        {"Gather", 13, 2, 1},          {"GatherElements", 13, 2, 1}, {"GatherND", 13, 2, 1},
        {"Scatter", 9, 3, 1},          {"ScatterElements", 16, 3, 1}, {"ScatterND", 16, 3, 1},
        {"OneHot", 11, 3, 1},          {"NonZero", 13, 1, 1},         {"Compress", 11, 2, 1},
        {"ReverseSequence", 10, 2, 1}, {"Unique", 11, 1, 4},
    };
    tu_fuzz_ops(cases, CELER_ARRAY_LEN(cases), 1500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather),           cmocka_unit_test(test_gather_elements),
        cmocka_unit_test(test_gathernd),         cmocka_unit_test(test_scatter_elements),
        cmocka_unit_test(test_scatternd),
        cmocka_unit_test(test_scatter_max_min), cmocka_unit_test(test_onehot),
        cmocka_unit_test(test_nonzero),          cmocka_unit_test(test_compress),
        cmocka_unit_test(test_reverse_sequence), cmocka_unit_test(test_unique), cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
