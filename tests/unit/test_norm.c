/* norm family: BatchNormalization (inference, training, spatial = 0), InstanceNormalization,
 * LayerNormalization (every axis, optional outputs, float16), RMSNormalization (types ONNX
 * Runtime cannot check) and GroupNormalization refusals, LRN, MeanVarianceNormalization,
 * LpNormalization, Dropout and the two losses, each against a naive reference or hand values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    celer_onnx_attr attrs[8];
    int n;
} attrs_t;

static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_float(attrs_t *a, const char *name, float v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_FLOAT, .f = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s,
                                         .s_len = strlen(s)};
}
static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in, int n_out) {
    static const char *const ins[] = {"x", "a", "b", "c", "d"};
    static const char *const outs[] = {"y", "z", "w", "v"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = n_out, .n_attrs = a->n, .inputs = ins,
                             .outputs = outs, .attrs = a->attrs};
}

static celer_tensor tensor(celer_dtype t, int rank, const int64_t *dims, void *data) {
    celer_tensor x = {.dtype = t, .shape = {.rank = rank}, .data = data};
    memcpy(x.shape.dims, dims, (size_t)rank * sizeof *dims);
    return x;
}

static void expect_close(const float *got, const double *want, int n, double tol, const char *what) {
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * fmax(1, fabs(want[i]))))
            fail_msg("%s: [%d] = %.7g, want %.7g", what, i, got[i], want[i]);
}

/* ---- BatchNormalization ---- */

static void test_batchnorm(void **st) {
    (void)st;
    int64_t xd[4] = {2, 3, 2, 2}, cd[1] = {3};
    float x[24], sc[3] = {1, 2, 0.5f}, bi[3] = {0, 1, -1}, mean[3] = {0.1f, -0.2f, 0.3f},
                 var[3] = {1, 0.5f, 2};
    uint64_t seed = 11;
    tu_fill_random(x, 24, -2, 2, &seed);
    celer_tensor tx = tensor(CELER_FLOAT, 4, xd, x), ts = tensor(CELER_FLOAT, 1, cd, sc),
                 tb = tensor(CELER_FLOAT, 1, cd, bi), tm = tensor(CELER_FLOAT, 1, cd, mean),
                 tv = tensor(CELER_FLOAT, 1, cd, var);
    const celer_tensor *in[5] = {&tx, &ts, &tb, &tm, &tv};
    double ref[24];
    for (int i = 0; i < 24; i++) {
        int c = (i / 4) % 3;
        ref[i] = (x[i] - mean[c]) / sqrt(var[c] + 1e-2) * sc[c] + bi[c];
    }
    int opsets[] = {7, 9, 14, 15};
    for (size_t k = 0; k < CELER_ARRAY_LEN(opsets); k++) {
        attrs_t a = {0};
        a_float(&a, "epsilon", 1e-2f);
        celer_onnx_node node = make_node("BatchNormalization", &a, 5, 1);
        celer_tensor out;
        assert_int_equal(tu_run_op(&node, opsets[k], in, 5, &out, 1), 0);
        expect_close(out.data, ref, 24, 1e-5, "BatchNormalization");
        tu_free_outputs(&out, 1);
    }

    /* training mode: batch statistics, running stats blended with momentum */
    attrs_t a = {0};
    a_int(&a, "training_mode", 1);
    a_float(&a, "momentum", 0.8f);
    celer_onnx_node node = make_node("BatchNormalization", &a, 5, 3);
    celer_tensor out[3];
    assert_int_equal(tu_run_op(&node, 15, in, 5, out, 3), 0);
    for (int c = 0; c < 3; c++) {
        double s = 0, q = 0;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 4; i++) s += x[(n * 3 + c) * 4 + i];
        double m = s / 8;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 4; i++) q += pow(x[(n * 3 + c) * 4 + i] - m, 2);
        double v = q / 8;
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 4; i++) {
                int j = (n * 3 + c) * 4 + i;
                ref[j] = (x[j] - m) / sqrt(v + 1e-5) * sc[c] + bi[c];
            }
        double rm = mean[c] * 0.8 + m * 0.2, rv = var[c] * 0.8 + v * 0.2;
        expect_close((float *)out[1].data + c, &rm, 1, 1e-5, "running mean");
        expect_close((float *)out[2].data + c, &rv, 1, 1e-5, "running var");
    }
    expect_close(out[0].data, ref, 24, 1e-4, "BatchNormalization training");
    tu_free_outputs(out, 3);

    /* training outputs without training_mode: a clear error */
    attrs_t b = {0};
    node = make_node("BatchNormalization", &b, 5, 3);
    assert_int_equal(tu_run_op(&node, 9, in, 5, out, 3), CELER_ERR_UNSUPPORTED);
    tu_free_outputs(out, 3);

    /* wrong parameter size */
    int64_t bad[1] = {2};
    celer_tensor tbad = tensor(CELER_FLOAT, 1, bad, sc);
    in[2] = &tbad;
    node = make_node("BatchNormalization", &b, 5, 1);
    assert_int_equal(tu_run_op(&node, 15, in, 5, out, 1), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "'B'"));
    tu_free_outputs(out, 1);
}

static void test_batchnorm_not_spatial(void **st) {
    (void)st;
    int64_t xd[3] = {1, 2, 2}, pd[2] = {2, 2};
    float x[4] = {1, 2, 3, 4}, sc[4] = {1, 2, 3, 4}, bi[4] = {0}, mean[4] = {1, 1, 1, 1},
          var[4] = {1, 1, 1, 1};
    celer_tensor tx = tensor(CELER_FLOAT, 3, xd, x), ts = tensor(CELER_FLOAT, 2, pd, sc),
                 tb = tensor(CELER_FLOAT, 2, pd, bi), tm = tensor(CELER_FLOAT, 2, pd, mean),
                 tv = tensor(CELER_FLOAT, 2, pd, var), out;
    const celer_tensor *in[5] = {&tx, &ts, &tb, &tm, &tv};
    attrs_t a = {0};
    a_int(&a, "spatial", 0);
    a_float(&a, "epsilon", 0);
    celer_onnx_node node = make_node("BatchNormalization", &a, 5, 1);
    assert_int_equal(tu_run_op(&node, 7, in, 5, &out, 1), 0);
    double want[4] = {0, 2, 6, 12};
    expect_close(out.data, want, 4, 1e-6, "spatial=0");
    tu_free_outputs(&out, 1);
}

/* ---- InstanceNormalization ---- */

static void test_instancenorm(void **st) {
    (void)st;
    int64_t xd[3] = {2, 2, 3}, cd[1] = {2};
    float x[12] = {1, 2, 3, 0, 0, 6, -1, 1, 0, 5, 5, 5}, sc[2] = {1, 2}, bi[2] = {0, 1};
    celer_tensor tx = tensor(CELER_FLOAT, 3, xd, x), ts = tensor(CELER_FLOAT, 1, cd, sc),
                 tb = tensor(CELER_FLOAT, 1, cd, bi), out;
    const celer_tensor *in[3] = {&tx, &ts, &tb};
    attrs_t a = {0};
    celer_onnx_node node = make_node("InstanceNormalization", &a, 3, 1);
    assert_int_equal(tu_run_op(&node, 6, in, 3, &out, 1), 0);
    double ref[12];
    for (int g = 0; g < 4; g++) {
        double m = (x[g * 3] + x[g * 3 + 1] + x[g * 3 + 2]) / 3, v = 0;
        for (int i = 0; i < 3; i++) v += pow(x[g * 3 + i] - m, 2) / 3;
        for (int i = 0; i < 3; i++)
            ref[g * 3 + i] = (x[g * 3 + i] - m) / sqrt(v + 1e-5) * sc[g % 2] + bi[g % 2];
    }
    expect_close(out.data, ref, 12, 1e-5, "InstanceNormalization");
    tu_free_outputs(&out, 1);
}

/* ---- LayerNormalization ---- */

static void test_layernorm(void **st) {
    (void)st;
    int64_t xd[3] = {2, 3, 20};
    float x[120], w[60], b[60];
    uint64_t seed = 5;
    tu_fill_random(x, 120, -3, 3, &seed);
    tu_fill_random(w, 60, 0.5f, 1.5f, &seed);
    tu_fill_random(b, 60, -1, 1, &seed);
    celer_tensor tx = tensor(CELER_FLOAT, 3, xd, x);
    for (int axis = -3; axis < 3; axis++) {
        int ax = axis < 0 ? axis + 3 : axis;
        int64_t rows = 1, cols = 1;
        for (int d = 0; d < 3; d++) *(d < ax ? &rows : &cols) *= xd[d];
        for (int with_b = 0; with_b < 2; with_b++) {
            celer_tensor tw = tensor(CELER_FLOAT, 3 - ax, xd + ax, w);
            celer_tensor tb = tensor(CELER_FLOAT, 3 - ax, xd + ax, b);
            if (cols > 60) {
                tw.data = malloc(sizeof(float) * (size_t)cols);
                tb.data = malloc(sizeof(float) * (size_t)cols);
                for (int i = 0; i < cols; i++)
                    ((float *)tw.data)[i] = w[i % 60], ((float *)tb.data)[i] = b[i % 60];
            }
            const celer_tensor *in[3] = {&tx, &tw, &tb};
            attrs_t a = {0};
            a_int(&a, "axis", axis);
            a_float(&a, "epsilon", 1e-3f);
            celer_onnx_node node = make_node("LayerNormalization", &a, with_b ? 3 : 2, 3);
            celer_tensor out[3];
            assert_int_equal(tu_run_op(&node, 17, in, with_b ? 3 : 2, out, 3), 0);
            assert_int_equal(out[1].shape.rank, 3);
            assert_int_equal(out[1].shape.dims[2], 1);
            double ref[120], rm[120], ri[120];
            for (int64_t r = 0; r < rows; r++) {
                double m = 0, v = 0;
                for (int64_t i = 0; i < cols; i++) m += x[r * cols + i] / (double)cols;
                for (int64_t i = 0; i < cols; i++) v += pow(x[r * cols + i] - m, 2) / (double)cols;
                rm[r] = m;
                ri[r] = 1 / sqrt(v + 1e-3);
                for (int64_t i = 0; i < cols; i++)
                    ref[r * cols + i] = (x[r * cols + i] - m) * ri[r] * ((float *)tw.data)[i] +
                                        (with_b ? ((float *)tb.data)[i] : 0);
            }
            expect_close(out[0].data, ref, 120, 1e-4, "LayerNormalization Y");
            expect_close(out[1].data, rm, (int)rows, 1e-5, "LayerNormalization Mean");
            expect_close(out[2].data, ri, (int)rows, 1e-4, "LayerNormalization InvStdDev");
            tu_free_outputs(out, 3);
            if (cols > 60) free(tw.data), free(tb.data);
        }
    }
}

static void test_layernorm_broadcast_and_f16(void **st) {
    (void)st;
    /* Scale of shape [1, 4] repeats over the [2, 4] normalised dims */
    int64_t xd[2] = {2, 4}, wd[2] = {1, 4};
    float x[8] = {1, 2, 3, 4, 4, 3, 2, 1}, w[4] = {1, 1, 2, 2};
    celer_tensor tx = tensor(CELER_FLOAT, 2, xd, x), tw = tensor(CELER_FLOAT, 2, wd, w);
    const celer_tensor *in[2] = {&tx, &tw};
    attrs_t a = {0};
    a_int(&a, "axis", 0);
    a_float(&a, "epsilon", 0);
    celer_onnx_node node = make_node("LayerNormalization", &a, 2, 1);
    celer_tensor out;
    assert_int_equal(tu_run_op(&node, 17, in, 2, &out, 1), 0);
    double sd = sqrt(1.25), ref[8];
    for (int i = 0; i < 8; i++) ref[i] = (x[i] - 2.5) / sd * w[i % 4];
    expect_close(out.data, ref, 8, 1e-5, "broadcast Scale");
    tu_free_outputs(&out, 1);

    /* Scale [4, 1] does not fit */
    int64_t bad[2] = {4, 1};
    celer_tensor tbad = tensor(CELER_FLOAT, 2, bad, w);
    in[1] = &tbad;
    attrs_t b = {0};
    node = make_node("LayerNormalization", &b, 2, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 2, &out, 1), CELER_ERR_SHAPE);
    tu_free_outputs(&out, 1);

    /* float16 runs in float */
    uint16_t xh[8], wh[4];
    for (int i = 0; i < 8; i++) xh[i] = celer_float_to_half(x[i]);
    for (int i = 0; i < 4; i++) wh[i] = celer_float_to_half(1);
    int64_t w1[1] = {4};
    celer_tensor th = tensor(CELER_FLOAT16, 2, xd, xh), twh = tensor(CELER_FLOAT16, 1, w1, wh);
    const celer_tensor *inh[2] = {&th, &twh};
    assert_int_equal(tu_run_op(&node, 17, inh, 2, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_FLOAT16);
    float y0 = celer_half_to_float(((uint16_t *)out.data)[0]);
    assert_true(fabs(y0 - (-1.5 / sqrt(1.25 + 1e-5))) < 2e-3);
    tu_free_outputs(&out, 1);
}

/* ---- GroupNormalization, RMSNormalization ---- */

static void expect_refused(celer_status got, celer_status want, const char *substr) {
    assert_int_equal(got, want);
    if (!strstr(celer_error_message(), substr))
        fail_msg("message '%s' lacks '%s'", celer_error_message(), substr);
}

/* Values ONNX Runtime gives no oracle for (X and scale of different types), and the refusals. */
static void test_rmsnorm_mixed_types_and_refusals(void **st) {
    (void)st;
    int64_t xd[2] = {2, 4}, wd[1] = {4};
    float x[8] = {1, 2, 3, 4, -4, 0, 0, 0}, w[4] = {1, 2, 0.5f, -1};
    uint16_t xh[8], wh[4];
    for (int i = 0; i < 8; i++) xh[i] = celer_float_to_half(x[i]);
    for (int i = 0; i < 4; i++) wh[i] = celer_float_to_half(w[i]);
    double ref[8];
    for (int r = 0; r < 2; r++) {
        double sq = 0;
        for (int i = 0; i < 4; i++) sq += (double)x[r * 4 + i] * x[r * 4 + i];
        for (int i = 0; i < 4; i++) ref[r * 4 + i] = x[r * 4 + i] / sqrt(sq / 4 + 1e-5) * w[i];
    }
    attrs_t a = {0};
    celer_onnx_node node = make_node("RMSNormalization", &a, 2, 1);
    celer_tensor out;
    /* float16 X, float scale: Y is float (the scale's type) */
    celer_tensor th = tensor(CELER_FLOAT16, 2, xd, xh), tw = tensor(CELER_FLOAT, 1, wd, w);
    const celer_tensor *in[2] = {&th, &tw};
    assert_int_equal(tu_run_op(&node, 23, in, 2, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_FLOAT);
    expect_close(out.data, ref, 8, 1e-3, "float16 X, float scale");
    tu_free_outputs(&out, 1);
    /* float X, float16 scale: Y is float16 */
    celer_tensor tx = tensor(CELER_FLOAT, 2, xd, x), twh = tensor(CELER_FLOAT16, 1, wd, wh);
    in[0] = &tx;
    in[1] = &twh;
    assert_int_equal(tu_run_op(&node, 23, in, 2, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_FLOAT16);
    float yf[8];
    for (int i = 0; i < 8; i++) yf[i] = celer_half_to_float(((uint16_t *)out.data)[i]);
    expect_close(yf, ref, 8, 2e-3, "float X, float16 scale");
    tu_free_outputs(&out, 1);
    /* stash_type other than 1 (float) is refused at load (init: out stays untouched), naming it */
    a_int(&a, "stash_type", 11);
    node = make_node("RMSNormalization", &a, 2, 1);
    out = (celer_tensor){0};
    expect_refused(tu_run_op(&node, 23, in, 2, &out, 1), CELER_ERR_UNSUPPORTED, "stash_type = 11");
}

static void test_groupnorm_refusals(void **st) {
    (void)st;
    int64_t xd[3] = {1, 4, 2}, pd[1] = {4};
    float x[8] = {0}, p[4] = {1, 1, 1, 1};
    celer_tensor tx = tensor(CELER_FLOAT, 3, xd, x), tp = tensor(CELER_FLOAT, 1, pd, p);
    const celer_tensor *in[3] = {&tx, &tp, &tp};
    celer_tensor out = {0}; /* a refusal at init leaves it untouched */
    static const struct {
        int64_t groups, stash;
        int opset;
        celer_status want;
        const char *msg;
    } cases[] = {
        {0, 1, 21, CELER_ERR_INVALID, "num_groups must be >= 1, got 0"},
        {3, 1, 21, CELER_ERR_SHAPE, "num_groups = 3 does not divide the 4 channels"},
        {2, 11, 21, CELER_ERR_UNSUPPORTED, "stash_type = 11"},
        {2, 1, 18, CELER_ERR_SHAPE, "scale (per group before opset 21)"}, /* 4 = C, not 2 */
        {-1, 1, 21, CELER_ERR_INVALID, "'num_groups' (int) is required"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        attrs_t a = {0};
        if (cases[i].groups >= 0) a_int(&a, "num_groups", cases[i].groups);
        a_int(&a, "stash_type", cases[i].stash);
        celer_onnx_node node = make_node("GroupNormalization", &a, 3, 1);
        expect_refused(tu_run_op(&node, cases[i].opset, in, 3, &out, 1), cases[i].want, cases[i].msg);
        tu_free_outputs(&out, 1);
    }
}

/* Random shapes (empty dims among them), num_groups, axes and scale sizes, fitting or not: any
 * status is fine, a read or write out of bounds (ASan) is not. */
static void test_group_rms_random(void **st) {
    (void)st;
    uint64_t seed = 23;
    static float x[6 * 6 * 6 * 6], p[6 * 6 * 6], q[6 * 6 * 6];
    tu_fill_random(x, CELER_ARRAY_LEN(x), -3, 3, &seed);
    tu_fill_random(p, CELER_ARRAY_LEN(p), -1, 1, &seed);
    tu_fill_random(q, CELER_ARRAY_LEN(q), -1, 1, &seed);
    int ran[2] = {0, 0};
    for (int it = 0; it < 2000; it++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t r = seed >> 11;
        int rank = 1 + (int)(r % 4), prank = (int)(r / 4 % 4);
        int64_t xd[4], pd[3];
        for (int d = 0; d < rank; d++) xd[d] = (int64_t)(r >> (8 + 3 * d) & 7) % 6;
        for (int d = 0; d < prank; d++) pd[d] = (int64_t)(r >> (24 + 3 * d) & 7) % 6;
        bool group = r >> 40 & 1;
        int64_t groups = (int64_t)(r >> 44 & 7) - 1;
        int opset = group ? 18 + (int)(r >> 47 & 3) : 23;
        /* GroupNormalization's scale sized to fit most of the time: C at 21, num_groups before */
        if (group && r >> 41 & 3) {
            prank = 1;
            pd[0] = opset >= 21 ? (rank > 1 ? xd[1] : 1) : groups;
        }
        celer_tensor tx = tensor(CELER_FLOAT, rank, xd, x), tp = tensor(CELER_FLOAT, prank, pd, p),
                     tq = tensor(CELER_FLOAT, prank, pd, q), out = {0};
        const celer_tensor *in[3] = {&tx, &tp, &tq};
        attrs_t a = {0};
        if (group) a_int(&a, "num_groups", groups);
        else a_int(&a, "axis", (int64_t)(r >> 44 & 7) - 4);
        celer_onnx_node node = make_node(group ? "GroupNormalization" : "RMSNormalization", &a,
                                         group ? 3 : 2, 1);
        if (!tu_run_op(&node, opset, in, group ? 3 : 2, &out, 1)) ran[group]++;
        tu_free_outputs(&out, 1);
    }
    printf("random cases that ran: %d RMSNormalization, %d GroupNormalization\n", ran[0], ran[1]);
    assert_true(ran[0] > 100 && ran[1] > 100);
}

/* ---- LRN, MVN, LpNormalization ---- */

static void test_lrn(void **st) {
    (void)st;
    int64_t xd[4] = {1, 5, 2, 1};
    float x[10];
    uint64_t seed = 9;
    tu_fill_random(x, 10, -2, 2, &seed);
    celer_tensor tx = tensor(CELER_FLOAT, 4, xd, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    a_int(&a, "size", 4);
    a_float(&a, "alpha", 0.5f);
    a_float(&a, "beta", 0.6f);
    a_float(&a, "bias", 2);
    celer_onnx_node node = make_node("LRN", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    double ref[10];
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < 2; i++) {
            double s = 0;
            /* window: c - floor(3/2) .. c + ceil(3/2) */
            for (int cc = c - 1; cc <= c + 2; cc++)
                if (cc >= 0 && cc < 5) s += x[cc * 2 + i] * x[cc * 2 + i];
            ref[c * 2 + i] = x[c * 2 + i] / pow(2 + 0.5 / 4 * s, 0.6);
        }
    expect_close(out.data, ref, 10, 1e-5, "LRN");
    tu_free_outputs(&out, 1);
}

static void test_mvn(void **st) {
    (void)st;
    int64_t xd[4] = {2, 2, 1, 2};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    celer_tensor tx = tensor(CELER_FLOAT, 4, xd, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    celer_onnx_node node = make_node("MeanVarianceNormalization", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    double ref[8];
    for (int c = 0; c < 2; c++) { /* default axes 0, 2, 3: statistics per channel */
        int idx[4] = {c * 2, c * 2 + 1, 4 + c * 2, 4 + c * 2 + 1};
        double m = 0, v = 0;
        for (int i = 0; i < 4; i++) m += x[idx[i]] / 4.0;
        for (int i = 0; i < 4; i++) v += pow(x[idx[i]] - m, 2) / 4.0;
        for (int i = 0; i < 4; i++) ref[idx[i]] = (x[idx[i]] - m) / (sqrt(v) + 1e-9);
    }
    expect_close(out.data, ref, 8, 1e-5, "MVN");
    tu_free_outputs(&out, 1);
}

static void test_lpnorm(void **st) {
    (void)st;
    int64_t xd[2] = {2, 2};
    float x[4] = {3, 4, -1, 1};
    celer_tensor tx = tensor(CELER_FLOAT, 2, xd, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    celer_onnx_node node = make_node("LpNormalization", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 1, in, 1, &out, 1), 0);
    double want[4] = {0.6, 0.8, -sqrt(0.5), sqrt(0.5)};
    expect_close(out.data, want, 4, 1e-6, "LpNormalization p=2");
    tu_free_outputs(&out, 1);
    attrs_t b = {0};
    a_int(&b, "p", 1);
    a_int(&b, "axis", 0);
    node = make_node("LpNormalization", &b, 1, 1);
    assert_int_equal(tu_run_op(&node, 1, in, 1, &out, 1), 0);
    double want1[4] = {0.75, 0.8, -0.25, 0.2};
    expect_close(out.data, want1, 4, 1e-6, "LpNormalization p=1");
    tu_free_outputs(&out, 1);
}

/* ---- Dropout ---- */

static void test_dropout(void **st) {
    (void)st;
    int64_t xd[1] = {3};
    float x[3] = {1, -2, 3}, ratio = 0.3f;
    uint8_t train = 0;
    celer_tensor tx = tensor(CELER_FLOAT, 1, xd, x), tr = tensor(CELER_FLOAT, 0, xd, &ratio),
                 tt = tensor(CELER_BOOL, 0, xd, &train);
    const celer_tensor *in[3] = {&tx, &tr, &tt};
    celer_tensor out[2];
    attrs_t a = {0};
    celer_onnx_node node = make_node("Dropout", &a, 3, 2);
    assert_int_equal(tu_run_op(&node, 13, in, 3, out, 2), 0);
    assert_memory_equal(out[0].data, x, sizeof x);
    assert_int_equal(out[1].dtype, CELER_BOOL);
    uint8_t ones[3] = {1, 1, 1};
    assert_memory_equal(out[1].data, ones, 3);
    tu_free_outputs(out, 2);
    /* training with seed 0 draws NumPy's sequence: 0.5488, 0.7152, 0.6028 */
    train = 1;
    ratio = 0.6f;
    attrs_t s = {0};
    a_int(&s, "seed", 0);
    node = make_node("Dropout", &s, 3, 2);
    assert_int_equal(tu_run_op(&node, 13, in, 3, out, 2), 0);
    double want[3] = {0, -2 / (1 - (double)0.6f), 3 / (1 - (double)0.6f)};
    expect_close(out[0].data, want, 3, 1e-6, "Dropout training");
    uint8_t mask[3] = {0, 1, 1};
    assert_memory_equal(out[1].data, mask, 3);
    tu_free_outputs(out, 2);
    ratio = 1.5f;
    assert_int_equal(tu_run_op(&node, 13, in, 3, out, 2), CELER_ERR_INVALID);
    tu_free_outputs(out, 2);
    ratio = 0;
    assert_int_equal(tu_run_op(&node, 13, in, 3, out, 2), 0);
    assert_memory_equal(out[0].data, x, sizeof x);
    tu_free_outputs(out, 2);
    /* opset 7: the mask has the input's type */
    node = make_node("Dropout", &a, 1, 2);
    assert_int_equal(tu_run_op(&node, 7, in, 1, out, 2), 0);
    assert_int_equal(out[1].dtype, CELER_FLOAT);
    assert_true(((float *)out[1].data)[2] == 1);
    tu_free_outputs(out, 2);
}

/* ---- losses ---- */

static void test_nllloss(void **st) {
    (void)st;
    int64_t xd[3] = {2, 3, 2}, td[2] = {2, 2}, wd[1] = {3};
    float x[12] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12}, w[3] = {0.5f, 1, 2};
    int64_t t[4] = {0, 2, 1, 1}; /* (n, d): x[n, t, d] */
    celer_tensor tx = tensor(CELER_FLOAT, 3, xd, x), tt = tensor(CELER_INT64, 2, td, t),
                 tw = tensor(CELER_FLOAT, 1, wd, w), out;
    /* picked: x[0,0,0] = -1, x[0,2,1] = -6, x[1,1,0] = -9, x[1,1,1] = -10 */
    struct {
        const char *red;
        bool weight;
        int64_t ignore; /* -100: none */
        int n;
        double want[4];
    } cases[] = {
        {"none", false, -100, 4, {1, 6, 9, 10}},
        {"sum", false, -100, 1, {26}},
        {"mean", false, -100, 1, {6.5}},
        {"none", true, -100, 4, {0.5, 12, 9, 10}},
        {"mean", true, -100, 1, {31.5 / 4.5}},
        {"mean", true, 1, 1, {12.5 / 2.5}},
        {"sum", true, 2, 1, {19.5}},
        {"none", false, 1, 4, {1, 6, 0, 0}},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        attrs_t a = {0};
        a_str(&a, "reduction", cases[c].red);
        if (cases[c].ignore != -100) a_int(&a, "ignore_index", cases[c].ignore);
        const celer_tensor *in[3] = {&tx, &tt, &tw};
        int n_in = cases[c].weight ? 3 : 2;
        celer_onnx_node node = make_node("NegativeLogLikelihoodLoss", &a, n_in, 1);
        assert_int_equal(tu_run_op(&node, 13, in, n_in, &out, 1), 0);
        assert_int_equal(out.shape.rank, cases[c].n == 1 ? 0 : 2);
        expect_close(out.data, cases[c].want, cases[c].n, 1e-6, cases[c].red);
        tu_free_outputs(&out, 1);
    }
    /* a class id out of range is an error, not a read past the buffer */
    t[3] = 3;
    attrs_t a = {0};
    const celer_tensor *in[2] = {&tx, &tt};
    celer_onnx_node node = make_node("NegativeLogLikelihoodLoss", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 2, &out, 1), CELER_ERR_INVALID);
    tu_free_outputs(&out, 1);
}

static void test_sce(void **st) {
    (void)st;
    int64_t xd[2] = {3, 4}, td[1] = {3};
    float x[12];
    uint64_t seed = 21;
    tu_fill_random(x, 12, -2, 2, &seed);
    int32_t t[3] = {3, 0, 1};
    celer_tensor tx = tensor(CELER_FLOAT, 2, xd, x), tt = tensor(CELER_INT32, 1, td, t);
    const celer_tensor *in[2] = {&tx, &tt};
    attrs_t a = {0};
    a_int(&a, "ignore_index", 0);
    celer_onnx_node node = make_node("SoftmaxCrossEntropyLoss", &a, 2, 2);
    celer_tensor out[2];
    assert_int_equal(tu_run_op(&node, 13, in, 2, out, 2), 0);
    double lp[12], loss = 0;
    for (int n = 0; n < 3; n++) {
        double s = 0;
        for (int c = 0; c < 4; c++) s += exp(x[n * 4 + c]);
        for (int c = 0; c < 4; c++) lp[n * 4 + c] = x[n * 4 + c] - log(s);
    }
    loss = -(lp[0 * 4 + 3] + lp[2 * 4 + 1]) / 2; /* sample 1 has the ignored class 0 */
    expect_close(out[0].data, &loss, 1, 1e-5, "SCE mean");
    expect_close(out[1].data, lp, 12, 1e-5, "SCE log_prob");
    assert_int_equal(out[1].shape.rank, 2);
    tu_free_outputs(out, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm),   cmocka_unit_test(test_batchnorm_not_spatial),
        cmocka_unit_test(test_instancenorm), cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_broadcast_and_f16),
        cmocka_unit_test(test_rmsnorm_mixed_types_and_refusals),
        cmocka_unit_test(test_groupnorm_refusals),
        cmocka_unit_test(test_group_rms_random),
        cmocka_unit_test(test_lrn),         cmocka_unit_test(test_mvn),
        cmocka_unit_test(test_lpnorm),      cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_nllloss),     cmocka_unit_test(test_sce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
