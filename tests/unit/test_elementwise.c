/* Elementwise family: hand-checked values per op, broadcasting shapes, bool outputs, integer
 * division signs, float16 casts, NaN in Max/Min, legacy (opset < 7) broadcasting, in-place runs
 * and error paths. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- builders ---- */
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
static celer_onnx_node node_of(const char *op, attrs_t *a, int n_in) {
    static const char *const names[] = {"a", "b", "c", "d"};
    static const char *const outs[] = {"y"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = 1, .n_attrs = a ? a->n : 0, .inputs = names,
                             .outputs = outs, .attrs = a ? a->attrs : NULL};
}

/* A tensor over caller memory; dims end at the first negative value. */
static celer_tensor tens(celer_dtype t, void *data, int rank, const int64_t *dims) {
    celer_tensor x = {.dtype = t, .shape = {.rank = rank}, .data = data};
    for (int i = 0; i < rank; i++) x.shape.dims[i] = dims[i];
    return x;
}
#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define RANK(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define T(dt, data, ...) tens(dt, data, RANK(__VA_ARGS__), DIMS(__VA_ARGS__))
#define SCALAR(dt, data) tens(dt, data, 0, NULL)

/* Runs a node; returns the status, output in *out (free with tu_free_outputs). */
static celer_status run(const char *op, attrs_t *a, int opset, celer_tensor *out, int n_in,
                        const celer_tensor *const *in) {
    celer_onnx_node n = node_of(op, a, n_in);
    return tu_run_op(&n, opset, in, n_in, out, 1);
}
static celer_status run1(const char *op, attrs_t *a, int opset, const celer_tensor *x,
                         celer_tensor *out) {
    const celer_tensor *in[1] = {x};
    return run(op, a, opset, out, 1, in);
}
static celer_status run2(const char *op, attrs_t *a, int opset, const celer_tensor *x,
                         const celer_tensor *y, celer_tensor *out) {
    const celer_tensor *in[2] = {x, y};
    return run(op, a, opset, out, 2, in);
}

static void expect_shape(const celer_tensor *t, int rank, const int64_t *dims) {
    assert_int_equal(t->shape.rank, rank);
    for (int i = 0; i < rank; i++) assert_int_equal(t->shape.dims[i], dims[i]);
}
static void expect_f32(const celer_tensor *t, const float *want, size_t n, float tol) {
    assert_int_equal(t->dtype, CELER_FLOAT);
    assert_int_equal(celer_shape_numel(&t->shape), (int64_t)n);
    const float *got = t->data;
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            if (!isnan(got[i])) fail_msg("element %zu: got %g, want nan", i, (double)got[i]);
        } else if (got[i] != want[i] &&
                   !(fabsf(got[i] - want[i]) <= tol * fmaxf(1.0f, fabsf(want[i])))) {
            fail_msg("element %zu: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
        }
    }
}
static void expect_bytes(const celer_tensor *t, celer_dtype dt, const void *want, size_t n) {
    assert_int_equal(t->dtype, dt);
    assert_int_equal(celer_shape_numel(&t->shape), (int64_t)n);
    assert_memory_equal(t->data, want, n * celer_dtype_size(dt));
}

/* ---- unary ---- */
static void test_unary_values(void **st) {
    (void)st;
    float x[] = {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f};
    celer_tensor in = T(CELER_FLOAT, x, 5), out;
    struct {
        const char *op;
        float want[5];
    } cases[] = {
        {"Abs", {2, 0.5f, 0, 0.5f, 2}},
        {"Neg", {2, 0.5f, -0.0f, -0.5f, -2}},
        {"Relu", {0, 0, 0, 0.5f, 2}},
        {"Sigmoid", {0.11920292f, 0.37754067f, 0.5f, 0.62245933f, 0.88079708f}},
        {"Tanh", {-0.96402758f, -0.46211716f, 0, 0.46211716f, 0.96402758f}},
        {"Exp", {0.13533528f, 0.60653066f, 1, 1.6487213f, 7.3890561f}},
        {"Sign", {-1, -1, 0, 1, 1}},
        {"Ceil", {-2, -0.0f, 0, 1, 2}},
        {"Floor", {-2, -1, 0, 0, 2}},
        {"Softsign", {-2.0f / 3, -1.0f / 3, 0, 1.0f / 3, 2.0f / 3}},
        {"Softplus", {0.12692801f, 0.47407698f, 0.69314718f, 0.97407698f, 2.12692801f}},
        {"Erf", {-0.99532227f, -0.52049988f, 0, 0.52049988f, 0.99532227f}},
        {"HardSwish", {-0.33333333f, -0.20833333f, 0, 0.29166667f, 1.66666667f}},
        {"LeakyRelu", {-0.02f, -0.005f, 0, 0.5f, 2}},
        {"Elu", {-0.86466472f, -0.39346934f, 0, 0.5f, 2}},
        {"HardSigmoid", {0.1f, 0.4f, 0.5f, 0.6f, 0.9f}},
        {"ThresholdedRelu", {0, 0, 0, 0, 2}},
        {"Shrink", {-2, 0, 0, 0, 2}},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        int opset = !strcmp(cases[c].op, "HardSwish") ? 14 : 13;
        celer_status s = run1(cases[c].op, NULL, opset, &in, &out);
        if (s) fail_msg("%s: %s", cases[c].op, celer_error_message());
        expect_shape(&out, 1, DIMS(5));
        expect_f32(&out, cases[c].want, 5, 1e-5f);
        tu_free_outputs(&out, 1);
    }
}

static void test_round_half_even(void **st) {
    (void)st;
    float x[] = {0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 2.4f, 2.6f, -1.5f};
    float want[] = {0, 2, 2, -0.0f, -2, 2, 3, -2};
    celer_tensor in = T(CELER_FLOAT, x, 8), out;
    assert_int_equal(run1("Round", NULL, 11, &in, &out), CELER_OK);
    expect_f32(&out, want, 8, 0);
    tu_free_outputs(&out, 1);
}

static void test_unary_int_wraps(void **st) {
    (void)st;
    int32_t x[] = {INT32_MIN, -5, 0, 7, INT32_MAX};
    int32_t neg[] = {INT32_MIN, 5, 0, -7, -INT32_MAX};
    int32_t abs_[] = {INT32_MIN, 5, 0, 7, INT32_MAX};
    int32_t relu[] = {0, 0, 0, 7, INT32_MAX};
    int32_t sign[] = {-1, -1, 0, 1, 1};
    celer_tensor in = T(CELER_INT32, x, 5), out;
    assert_int_equal(run1("Neg", NULL, 13, &in, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, neg, 5);
    tu_free_outputs(&out, 1);
    assert_int_equal(run1("Abs", NULL, 13, &in, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, abs_, 5);
    tu_free_outputs(&out, 1);
    assert_int_equal(run1("Relu", NULL, 14, &in, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, relu, 5);
    tu_free_outputs(&out, 1);
    assert_int_equal(run1("Sign", NULL, 13, &in, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, sign, 5);
    tu_free_outputs(&out, 1);
    /* Relu on int32 did not exist before opset 14 */
    assert_int_equal(run1("Relu", NULL, 13, &in, &out), CELER_ERR_UNSUPPORTED);
}

static void test_not_isnan_isinf(void **st) {
    (void)st;
    uint8_t b[] = {0, 1, 1, 0};
    uint8_t nb[] = {1, 0, 0, 1};
    celer_tensor in = T(CELER_BOOL, b, 2, 2), out;
    assert_int_equal(run1("Not", NULL, 1, &in, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, nb, 4);
    tu_free_outputs(&out, 1);

    float x[] = {1.0f, NAN, INFINITY, -INFINITY};
    uint8_t isnan_[] = {0, 1, 0, 0}, isinf_[] = {0, 0, 1, 1}, ispos[] = {0, 0, 1, 0};
    celer_tensor f = T(CELER_FLOAT, x, 4);
    assert_int_equal(run1("IsNaN", NULL, 13, &f, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, isnan_, 4);
    tu_free_outputs(&out, 1);
    assert_int_equal(run1("IsInf", NULL, 10, &f, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, isinf_, 4);
    tu_free_outputs(&out, 1);
    attrs_t a = {0};
    a_int(&a, "detect_negative", 0);
    assert_int_equal(run1("IsInf", &a, 10, &f, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, ispos, 4);
    tu_free_outputs(&out, 1);
}

static void test_clip(void **st) {
    (void)st;
    float x[] = {-3, -1, 0, 1, 3, NAN};
    celer_tensor in = T(CELER_FLOAT, x, 6), out;
    /* opset 6: attributes */
    attrs_t a = {0};
    a_float(&a, "min", -1.5f);
    a_float(&a, "max", 2);
    float want6[] = {-1.5f, -1, 0, 1, 2, NAN};
    assert_int_equal(run1("Clip", &a, 6, &in, &out), CELER_OK);
    expect_f32(&out, want6, 6, 0);
    tu_free_outputs(&out, 1);
    /* opset 13: inputs, max omitted */
    float lo = 0.5f;
    celer_tensor tlo = SCALAR(CELER_FLOAT, &lo);
    const celer_tensor *in3[3] = {&in, &tlo, NULL};
    float want13[] = {0.5f, 0.5f, 0.5f, 1, 3, NAN};
    assert_int_equal(run("Clip", NULL, 13, &out, 3, in3), CELER_OK);
    expect_f32(&out, want13, 6, 0);
    tu_free_outputs(&out, 1);
    /* int8 with only max */
    int8_t xi[] = {-128, 0, 100, 127}, hi = 10;
    int8_t wanti[] = {-128, 0, 10, 10};
    celer_tensor ti = T(CELER_INT8, xi, 4), thi = SCALAR(CELER_INT8, &hi);
    const celer_tensor *in3i[3] = {&ti, NULL, &thi};
    assert_int_equal(run("Clip", NULL, 12, &out, 3, in3i), CELER_OK);
    expect_bytes(&out, CELER_INT8, wanti, 4);
    tu_free_outputs(&out, 1);
    /* a non-scalar bound is a shape error */
    float two[2] = {0, 1};
    celer_tensor t2 = T(CELER_FLOAT, two, 2);
    const celer_tensor *bad[3] = {&in, &t2, NULL};
    assert_int_equal(run("Clip", NULL, 13, &out, 3, bad), CELER_ERR_SHAPE);
}

/* ---- binary with broadcasting ---- */

/* Reference Add for a [2,3] result from a and b given as functions of (i, j). */
static void test_broadcast_shapes(void **st) {
    (void)st;
    float a[6] = {1, 2, 3, 4, 5, 6}; /* [2,3] */
    float s = 10, row[3] = {10, 20, 30}, col[2] = {100, 200};
    celer_tensor ta = T(CELER_FLOAT, a, 2, 3), out;

    celer_tensor ts = SCALAR(CELER_FLOAT, &s);
    float want_s[] = {11, 12, 13, 14, 15, 16};
    assert_int_equal(run2("Add", NULL, 14, &ta, &ts, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want_s, 6, 0);
    tu_free_outputs(&out, 1);
    /* scalar first */
    float want_rs[] = {9, 8, 7, 6, 5, 4};
    assert_int_equal(run2("Sub", NULL, 14, &ts, &ta, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want_rs, 6, 0);
    tu_free_outputs(&out, 1);

    celer_tensor tr = T(CELER_FLOAT, row, 3);
    float want_r[] = {11, 22, 33, 14, 25, 36};
    assert_int_equal(run2("Add", NULL, 14, &ta, &tr, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want_r, 6, 0);
    tu_free_outputs(&out, 1);

    celer_tensor tc = T(CELER_FLOAT, col, 2, 1);
    float want_c[] = {100, 200, 300, 800, 1000, 1200};
    assert_int_equal(run2("Mul", NULL, 14, &ta, &tc, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want_c, 6, 0);
    tu_free_outputs(&out, 1);

    /* column x row -> outer sum [2,3] */
    float want_cr[] = {110, 120, 130, 210, 220, 230};
    assert_int_equal(run2("Add", NULL, 14, &tc, &tr, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want_cr, 6, 0);
    tu_free_outputs(&out, 1);

    /* rank mismatch: [2,1,3] + [4,1] -> [2,4,3] */
    float x3[6] = {1, 2, 3, 4, 5, 6}, y2[4] = {0, 10, 20, 30};
    celer_tensor t3 = T(CELER_FLOAT, x3, 2, 1, 3), t2 = T(CELER_FLOAT, y2, 4, 1);
    assert_int_equal(run2("Add", NULL, 14, &t3, &t2, &out), CELER_OK);
    expect_shape(&out, 3, DIMS(2, 4, 3));
    float want3[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) want3[(i * 4 + j) * 3 + k] = x3[i * 3 + k] + y2[j];
    expect_f32(&out, want3, 24, 0);
    tu_free_outputs(&out, 1);

    /* incompatible shapes are a clean shape error */
    float bad[4] = {0};
    celer_tensor tb = T(CELER_FLOAT, bad, 4);
    assert_int_equal(run2("Add", NULL, 14, &ta, &tb, &out), CELER_ERR_SHAPE);
    /* mixed types are a type error */
    int32_t ints[3] = {1, 2, 3};
    celer_tensor tint = T(CELER_INT32, ints, 3);
    assert_int_equal(run2("Add", NULL, 14, &ta, &tint, &out), CELER_ERR_DTYPE);
}

/* Random shapes with size-1 dims in both operands against a naive index computation; odd sizes
 * exercise the block loop tails. */
static void test_broadcast_random(void **st) {
    (void)st;
    uint64_t seed = 42;
    const int64_t shapes[][2][4] = {
        {{3, 1, 5, 37}, {1, 4, 5, 1}},  {{1, 1, 1, 1}, {2, 3, 4, 5}}, {{7, 1, 1, 33}, {7, 2, 3, 33}},
        {{2, 3, 4, 5}, {2, 3, 4, 5}},  {{1, 9, 1, 17}, {6, 1, 8, 1}}, {{1, 1, 1, 100}, {1, 1, 3, 1}},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(shapes); c++) {
        float *a = malloc(4096 * 4), *b = malloc(4096 * 4), *want = malloc(8192 * 4);
        celer_tensor ta = tens(CELER_FLOAT, a, 4, shapes[c][0]);
        celer_tensor tb = tens(CELER_FLOAT, b, 4, shapes[c][1]);
        tu_fill_random(a, (size_t)celer_shape_numel(&ta.shape), -2, 2, &seed);
        tu_fill_random(b, (size_t)celer_shape_numel(&tb.shape), -2, 2, &seed);
        int64_t od[4];
        for (int d = 0; d < 4; d++) od[d] = CELER_MAX(shapes[c][0][d], shapes[c][1][d]);
        size_t n = 0;
        for (int64_t i0 = 0; i0 < od[0]; i0++)
            for (int64_t i1 = 0; i1 < od[1]; i1++)
                for (int64_t i2 = 0; i2 < od[2]; i2++)
                    for (int64_t i3 = 0; i3 < od[3]; i3++) {
                        int64_t idx[4] = {i0, i1, i2, i3}, oa = 0, ob = 0;
                        for (int d = 0; d < 4; d++) {
                            oa = oa * shapes[c][0][d] + (shapes[c][0][d] == 1 ? 0 : idx[d]);
                            ob = ob * shapes[c][1][d] + (shapes[c][1][d] == 1 ? 0 : idx[d]);
                        }
                        want[n++] = a[oa] - b[ob];
                    }
        celer_tensor out;
        assert_int_equal(run2("Sub", NULL, 14, &ta, &tb, &out), CELER_OK);
        expect_shape(&out, 4, od);
        expect_f32(&out, want, n, 0);
        tu_free_outputs(&out, 1);
        free(a);
        free(b);
        free(want);
    }
}

static void test_compare_bool(void **st) {
    (void)st;
    float a[] = {1, 2, NAN, 4}, b = 2;
    celer_tensor ta = T(CELER_FLOAT, a, 2, 2), tb = SCALAR(CELER_FLOAT, &b), out;
    struct {
        const char *op;
        int opset;
        uint8_t want[4];
    } cases[] = {
        {"Equal", 13, {0, 1, 0, 0}},          {"Greater", 13, {0, 0, 0, 1}},
        {"Less", 13, {1, 0, 0, 0}},           {"GreaterOrEqual", 16, {0, 1, 0, 1}},
        {"LessOrEqual", 16, {1, 1, 0, 0}},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        assert_int_equal(run2(cases[c].op, NULL, cases[c].opset, &ta, &tb, &out), CELER_OK);
        expect_shape(&out, 2, DIMS(2, 2));
        expect_bytes(&out, CELER_BOOL, cases[c].want, 4);
        tu_free_outputs(&out, 1);
    }
    /* Equal on int64 and bool, And/Or/Xor with broadcasting */
    int64_t i1[] = {5, -5, 7}, i2[] = {5, 5, 7};
    uint8_t eq[] = {1, 0, 1};
    celer_tensor t1 = T(CELER_INT64, i1, 3), t2 = T(CELER_INT64, i2, 3);
    assert_int_equal(run2("Equal", NULL, 7, &t1, &t2, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, eq, 3);
    tu_free_outputs(&out, 1);
    uint8_t p[] = {0, 0, 1, 1}, q[] = {0, 1};
    uint8_t and_[] = {0, 0, 0, 1}, or_[] = {0, 1, 1, 1}, xor_[] = {0, 1, 1, 0}, beq[] = {1, 0, 0, 1};
    celer_tensor tp = T(CELER_BOOL, p, 2, 2), tq = T(CELER_BOOL, q, 2);
    assert_int_equal(run2("And", NULL, 7, &tp, &tq, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, and_, 4);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("Or", NULL, 7, &tp, &tq, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, or_, 4);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("Xor", NULL, 7, &tp, &tq, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, xor_, 4);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("Equal", NULL, 13, &tp, &tq, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, beq, 4);
    tu_free_outputs(&out, 1);
    /* strings */
    char *s1[] = {"abc", "", "x"}, *s2[] = {"abc", "", "y"};
    uint8_t seq[] = {1, 1, 0};
    celer_tensor ts1 = T(CELER_STRING, tu_strs((const char *const *)s1, CELER_ARRAY_LEN(s1)), 3), ts2 = T(CELER_STRING, tu_strs((const char *const *)s2, CELER_ARRAY_LEN(s2)), 3);
    assert_int_equal(run2("Equal", NULL, 13, &ts1, &ts2, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, seq, 3);
    tu_free_outputs(&out, 1);
    /* strings are bytes with a length: what follows a NUL counts, and "a" is not "a\0" */
    celer_str n1[] = {TU_LIT("a\0b"), TU_LIT("a\0b"), TU_LIT("a"), TU_LIT("")};
    celer_str n2[] = {TU_LIT("a\0c"), TU_LIT("a\0b"), TU_LIT("a\0"), TU_LIT("\0")};
    uint8_t neq[] = {0, 1, 0, 0};
    celer_tensor tn1 = T(CELER_STRING, n1, 4), tn2 = T(CELER_STRING, n2, 4);
    assert_int_equal(run2("Equal", NULL, 13, &tn1, &tn2, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, neq, 4);
    tu_free_outputs(&out, 1);
}

static void test_int_div_mod(void **st) {
    (void)st;
    int32_t a[] = {-7, 7, -7, 7, 5, INT32_MIN, 0};
    int32_t b[] = {2, -2, -2, 2, 0, -1, 3};
    celer_tensor ta = T(CELER_INT32, a, 7), tb = T(CELER_INT32, b, 7), out;
    int32_t div[] = {-3, -3, 3, 3, 0, INT32_MIN, 0}; /* truncation; x/0 = 0 and no trap */
    assert_int_equal(run2("Div", NULL, 14, &ta, &tb, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, div, 7);
    tu_free_outputs(&out, 1);
    int32_t mod[] = {1, -1, -1, 1, 0, 0, 0}; /* sign of the divisor */
    assert_int_equal(run2("Mod", NULL, 13, &ta, &tb, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, mod, 7);
    tu_free_outputs(&out, 1);
    attrs_t f = {0};
    a_int(&f, "fmod", 1);
    int32_t fmod_[] = {-1, 1, -1, 1, 0, 0, 0}; /* sign of the dividend */
    assert_int_equal(run2("Mod", &f, 13, &ta, &tb, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, fmod_, 7);
    tu_free_outputs(&out, 1);
    /* float Mod with fmod=1 is C fmod */
    float fa[] = {-7.5f, 7.5f}, fb[] = {2, -2}, fwant[] = {-1.5f, 1.5f};
    celer_tensor tfa = T(CELER_FLOAT, fa, 2), tfb = T(CELER_FLOAT, fb, 2);
    assert_int_equal(run2("Mod", &f, 13, &tfa, &tfb, &out), CELER_OK);
    expect_f32(&out, fwant, 2, 0);
    tu_free_outputs(&out, 1);
    /* uint8 wraps */
    uint8_t u1[] = {250, 3}, u2[] = {10, 5}, uadd[] = {4, 8}, usub[] = {240, 254};
    celer_tensor tu1 = T(CELER_UINT8, u1, 2), tu2 = T(CELER_UINT8, u2, 2);
    assert_int_equal(run2("Add", NULL, 14, &tu1, &tu2, &out), CELER_OK);
    expect_bytes(&out, CELER_UINT8, uadd, 2);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("Sub", NULL, 14, &tu1, &tu2, &out), CELER_OK);
    expect_bytes(&out, CELER_UINT8, usub, 2);
    tu_free_outputs(&out, 1);
    /* bad fmod value */
    attrs_t bad = {0};
    a_int(&bad, "fmod", 2);
    assert_int_equal(run2("Mod", &bad, 13, &ta, &tb, &out), CELER_ERR_INVALID);
}

static void test_pow_bitshift(void **st) {
    (void)st;
    float x[] = {2, 3, 4}, e[] = {3, 0.5f, -1};
    float want[] = {8, 1.7320508f, 0.25f};
    celer_tensor tx = T(CELER_FLOAT, x, 3), te = T(CELER_FLOAT, e, 3), out;
    assert_int_equal(run2("Pow", NULL, 13, &tx, &te, &out), CELER_OK);
    expect_f32(&out, want, 3, 1e-6f);
    tu_free_outputs(&out, 1);
    /* float base, int64 exponent */
    int64_t ei[] = {2, 3, -2};
    float want_i[] = {4, 27, 0.0625f};
    celer_tensor tei = T(CELER_INT64, ei, 3);
    assert_int_equal(run2("Pow", NULL, 13, &tx, &tei, &out), CELER_OK);
    expect_f32(&out, want_i, 3, 1e-6f);
    tu_free_outputs(&out, 1);
    /* int32 base, int32 exponent: exact */
    int32_t b32[] = {3, -2, 7}, e32[] = {19, 3, 0}, w32[] = {1162261467, -8, 1};
    celer_tensor tb32 = T(CELER_INT32, b32, 3), te32 = T(CELER_INT32, e32, 3);
    assert_int_equal(run2("Pow", NULL, 13, &tb32, &te32, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, w32, 3);
    tu_free_outputs(&out, 1);
    /* int32 base, float exponent: truncated */
    float ef[] = {0.5f, 2, 1};
    int32_t wf[] = {1, 4, 7};
    celer_tensor tef = T(CELER_FLOAT, ef, 3);
    assert_int_equal(run2("Pow", NULL, 13, &tb32, &tef, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, wf, 3);
    tu_free_outputs(&out, 1);
    /* before opset 12 the types must match */
    assert_int_equal(run2("Pow", NULL, 11, &tx, &tei, &out), CELER_ERR_DTYPE);

    uint8_t v[] = {1, 0x81, 16}, sh[] = {1, 1, 9};
    uint8_t left[] = {2, 2, 0}, right[] = {0, 0x40, 0};
    celer_tensor tv = T(CELER_UINT8, v, 3), ts = T(CELER_UINT8, sh, 3);
    attrs_t l = {0}, r = {0}, bad = {0};
    a_str(&l, "direction", "LEFT");
    a_str(&r, "direction", "RIGHT");
    a_str(&bad, "direction", "UP");
    assert_int_equal(run2("BitShift", &l, 11, &tv, &ts, &out), CELER_OK);
    expect_bytes(&out, CELER_UINT8, left, 3);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("BitShift", &r, 11, &tv, &ts, &out), CELER_OK);
    expect_bytes(&out, CELER_UINT8, right, 3);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("BitShift", &bad, 11, &tv, &ts, &out), CELER_ERR_INVALID);
}

static void test_prelu(void **st) {
    (void)st;
    float x[] = {-1, 2, -3, 4, -5, 6}; /* [1,2,3] channel = dim 1 */
    float slope[] = {0.5f, 0.25f};     /* [2,1] */
    float want[] = {-0.5f, 2, -1.5f, 4, -1.25f, 6};
    celer_tensor tx = T(CELER_FLOAT, x, 1, 2, 3), ts = T(CELER_FLOAT, slope, 2, 1), out;
    assert_int_equal(run2("PRelu", NULL, 16, &tx, &ts, &out), CELER_OK);
    expect_shape(&out, 3, DIMS(1, 2, 3));
    expect_f32(&out, want, 6, 0);
    tu_free_outputs(&out, 1);
    /* opset 6: a 1-D slope of length C applies along axis 1 */
    celer_tensor ts6 = T(CELER_FLOAT, slope, 2);
    assert_int_equal(run2("PRelu", NULL, 6, &tx, &ts6, &out), CELER_OK);
    expect_f32(&out, want, 6, 0);
    tu_free_outputs(&out, 1);
    /* the slope may not grow X */
    float big[12] = {0};
    celer_tensor tbig = T(CELER_FLOAT, big, 2, 2, 3);
    assert_int_equal(run2("PRelu", NULL, 16, &tx, &tbig, &out), CELER_ERR_SHAPE);
}

static void test_legacy_broadcast(void **st) {
    (void)st;
    float a[24], b[3] = {100, 200, 300};
    for (int i = 0; i < 24; i++) a[i] = (float)i;
    celer_tensor ta = T(CELER_FLOAT, a, 2, 3, 4), tb = T(CELER_FLOAT, b, 3), out;
    attrs_t at = {0};
    a_int(&at, "broadcast", 1);
    a_int(&at, "axis", 1);
    float want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) want[(i * 3 + j) * 4 + k] = a[(i * 3 + j) * 4 + k] + b[j];
    assert_int_equal(run2("Add", &at, 6, &ta, &tb, &out), CELER_OK);
    expect_shape(&out, 3, DIMS(2, 3, 4));
    expect_f32(&out, want, 24, 0);
    tu_free_outputs(&out, 1);
    /* axis too large for B */
    attrs_t bad = {0};
    a_int(&bad, "broadcast", 1);
    a_int(&bad, "axis", 2);
    assert_int_equal(run2("Add", &bad, 6, &ta, &tb, &out), CELER_ERR_SHAPE);
}

/* ---- variadic ---- */
static void test_max_min_nan(void **st) {
    (void)st;
    float a[] = {1, NAN, 3, -1}, b[] = {NAN, 2, 1, -2};
    float wmax[] = {NAN, NAN, 3, -1}, wmin[] = {NAN, NAN, 1, -2};
    celer_tensor ta = T(CELER_FLOAT, a, 4), tb = T(CELER_FLOAT, b, 4), out;
    assert_int_equal(run2("Max", NULL, 13, &ta, &tb, &out), CELER_OK);
    expect_f32(&out, wmax, 4, 0);
    tu_free_outputs(&out, 1);
    assert_int_equal(run2("Min", NULL, 13, &ta, &tb, &out), CELER_OK);
    expect_f32(&out, wmin, 4, 0);
    tu_free_outputs(&out, 1);
    /* one input is a copy */
    assert_int_equal(run1("Max", NULL, 13, &ta, &out), CELER_OK);
    expect_f32(&out, a, 4, 0);
    tu_free_outputs(&out, 1);
    /* ints */
    int16_t i1[] = {-3, 7}, i2[] = {5, -9}, imax[] = {5, 7};
    celer_tensor t1 = T(CELER_INT16, i1, 2), t2 = T(CELER_INT16, i2, 2);
    assert_int_equal(run2("Max", NULL, 13, &t1, &t2, &out), CELER_OK);
    expect_bytes(&out, CELER_INT16, imax, 2);
    tu_free_outputs(&out, 1);
}

static void test_sum_mean_broadcast(void **st) {
    (void)st;
    float s = 1, row[3] = {1, 2, 3}, col[2] = {10, 20};
    celer_tensor ts = SCALAR(CELER_FLOAT, &s), tr = T(CELER_FLOAT, row, 3),
                 tc = T(CELER_FLOAT, col, 2, 1), out;
    const celer_tensor *in[3] = {&ts, &tr, &tc};
    float want[] = {12, 13, 14, 22, 23, 24};
    assert_int_equal(run("Sum", NULL, 13, &out, 3, in), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_f32(&out, want, 6, 0);
    tu_free_outputs(&out, 1);
    float wmean[6];
    for (int i = 0; i < 6; i++) wmean[i] = want[i] / 3;
    assert_int_equal(run("Mean", NULL, 13, &out, 3, in), CELER_OK);
    expect_f32(&out, wmean, 6, 1e-6f);
    tu_free_outputs(&out, 1);
    /* Max where the first input must be broadcast into the output */
    float wmax[] = {10, 10, 10, 20, 20, 20};
    assert_int_equal(run("Max", NULL, 13, &out, 3, in), CELER_OK);
    expect_f32(&out, wmax, 6, 0);
    tu_free_outputs(&out, 1);
}

static void test_where(void **st) {
    (void)st;
    uint8_t c[] = {1, 0, 1};
    int64_t x[] = {1, 2}, y = -1; /* x: [2,1] */
    celer_tensor tc = T(CELER_BOOL, c, 3), tx = T(CELER_INT64, x, 2, 1),
                 ty = SCALAR(CELER_INT64, &y), out;
    const celer_tensor *in[3] = {&tc, &tx, &ty};
    int64_t want[] = {1, -1, 1, 2, -1, 2};
    assert_int_equal(run("Where", NULL, 16, &out, 3, in), CELER_OK);
    expect_shape(&out, 2, DIMS(2, 3));
    expect_bytes(&out, CELER_INT64, want, 6);
    tu_free_outputs(&out, 1);
    /* X and Y must share a type */
    float fy = 0;
    celer_tensor tfy = SCALAR(CELER_FLOAT, &fy);
    const celer_tensor *bad[3] = {&tc, &tx, &tfy};
    assert_int_equal(run("Where", NULL, 16, &out, 3, bad), CELER_ERR_DTYPE);
}

/* ---- Cast ---- */
static void test_cast_float16(void **st) {
    (void)st;
    float x[] = {1.0f, 0.5f, -2.5f, 65504.0f, 1e5f, 0.1f, 5.9604645e-8f, NAN};
    uint16_t want[] = {0x3c00, 0x3800, 0xc100, 0x7bff, 0x7c00, 0x2e66, 0x0001, 0x7e00};
    celer_tensor tx = T(CELER_FLOAT, x, 8), out;
    attrs_t a = {0};
    a_int(&a, "to", CELER_FLOAT16);
    assert_int_equal(run1("Cast", &a, 13, &tx, &out), CELER_OK);
    assert_int_equal(out.dtype, CELER_FLOAT16);
    const uint16_t *h = out.data;
    for (int i = 0; i < 7; i++) assert_int_equal(h[i], want[i]);
    assert_true((h[7] & 0x7c00) == 0x7c00 && (h[7] & 0x3ff)); /* a NaN */
    /* and back to float */
    celer_tensor th = out;
    attrs_t b = {0};
    a_int(&b, "to", CELER_FLOAT);
    celer_tensor back;
    assert_int_equal(run1("Cast", &b, 13, &th, &back), CELER_OK);
    float wback[] = {1.0f, 0.5f, -2.5f, 65504.0f, INFINITY, 0.099975586f, 5.9604645e-8f, NAN};
    expect_f32(&back, wback, 8, 0);
    tu_free_outputs(&back, 1);
    tu_free_outputs(&out, 1);
    /* CastLike takes the type from input 1 */
    uint16_t like = 0;
    celer_tensor tl = SCALAR(CELER_FLOAT16, &like);
    assert_int_equal(run2("CastLike", NULL, 15, &tx, &tl, &out), CELER_OK);
    assert_int_equal(out.dtype, CELER_FLOAT16);
    assert_int_equal(((uint16_t *)out.data)[0], 0x3c00);
    tu_free_outputs(&out, 1);
}

static void test_cast_ints_bool(void **st) {
    (void)st;
    float x[] = {1.9f, -1.9f, NAN, 3e9f, -3e9f, 0.0f, 255.0f, -1.0f};
    celer_tensor tx = T(CELER_FLOAT, x, 8), out;
    attrs_t a = {0};
    a_int(&a, "to", CELER_INT32);
    int32_t w32[] = {1, -1, 0, INT32_MAX, INT32_MIN, 0, 255, -1};
    /* out-of-range float -> int32 goes through saturated int64 and wraps */
    w32[3] = (int32_t)(int64_t)3000000000LL;
    w32[4] = (int32_t)(int64_t)-3000000000LL;
    assert_int_equal(run1("Cast", &a, 13, &tx, &out), CELER_OK);
    expect_bytes(&out, CELER_INT32, w32, 8);
    tu_free_outputs(&out, 1);
    attrs_t b = {0};
    a_int(&b, "to", CELER_BOOL);
    uint8_t wb[] = {1, 1, 1, 1, 1, 0, 1, 1};
    assert_int_equal(run1("Cast", &b, 13, &tx, &out), CELER_OK);
    expect_bytes(&out, CELER_BOOL, wb, 8);
    tu_free_outputs(&out, 1);
    int64_t big[] = {INT64_MAX, -3, 1 << 24};
    celer_tensor tbig = T(CELER_INT64, big, 3);
    attrs_t d = {0};
    a_int(&d, "to", CELER_DOUBLE);
    double wd[] = {9223372036854775807.0, -3, 16777216};
    assert_int_equal(run1("Cast", &d, 13, &tbig, &out), CELER_OK);
    expect_bytes(&out, CELER_DOUBLE, wd, 3);
    tu_free_outputs(&out, 1);
    /* bad 'to' */
    attrs_t bad = {0};
    a_int(&bad, "to", 99);
    assert_int_equal(run1("Cast", &bad, 13, &tx, &out), CELER_ERR_UNSUPPORTED);
    assert_int_equal(run1("Cast", NULL, 13, &tx, &out), CELER_ERR_INVALID);
    /* bfloat16 only from opset 13 */
    attrs_t bf = {0};
    a_int(&bf, "to", CELER_BFLOAT16);
    assert_int_equal(run1("Cast", &bf, 12, &tx, &out), CELER_ERR_UNSUPPORTED);
}

static void test_cast_strings(void **st) {
    (void)st;
    float x[] = {0.9767611f, 0.039187793f, 100.0f, 1e-5f, -2.5f, 1e16f, INFINITY, NAN, 0.0f};
    const char *want[] = {"0.9767611", "0.039187793", "100.0", "1e-05", "-2.5",
                          "1e+16",     "INF",         "NaN",   "0.0"};
    celer_tensor tx = T(CELER_FLOAT, x, 9), out;
    attrs_t a = {0};
    a_int(&a, "to", CELER_STRING);
    /* tu_run_op frees the kernel's per-context buffer when it returns, so run by hand */
    celer_onnx_node n = node_of("Cast", &a, 1);
    celer_dtype types[1] = {CELER_FLOAT};
    const celer_tensor *consts[1] = {NULL};
    celer_op_info info = {.node = &n, .opset = 13, .n_inputs = 1, .n_outputs = 1,
                          .input_types = types, .input_constants = consts};
    const celer_kernel *k = celer_ops_find("", "Cast", 13, types, 1);
    assert_non_null(k);
    info.since_version = k->since;
    celer_dtype ot;
    assert_int_equal(k->infer_types(&info, &ot), CELER_OK);
    assert_int_equal(ot, CELER_STRING);
    void *state = NULL, *local = NULL;
    assert_int_equal(k->init(&info, &state), CELER_OK);
    celer_str strs[9];
    out = (celer_tensor){.dtype = CELER_STRING, .data = strs};
    const celer_tensor *in[1] = {&tx};
    celer_kernel_call call = {.info = &info, .state = state, .local = &local, .in = in, .n_in = 1,
                              .out = &out, .n_out = 1};
    assert_int_equal(k->reshape(&call), CELER_OK);
    assert_int_equal(k->run(&call), CELER_OK);
    for (int i = 0; i < 9; i++) TU_ASSERT_STR(&out, i, celer_str_c(want[i]));

    /* and back: strings to float and int */
    celer_tensor ts = T(CELER_STRING, strs, 9), back;
    attrs_t f = {0};
    a_int(&f, "to", CELER_FLOAT);
    assert_int_equal(run1("Cast", &f, 13, &ts, &back), CELER_OK);
    expect_f32(&back, x, 9, 0);
    tu_free_outputs(&back, 1);
    k->free_local(local);
    k->free_state(state);

    char *ints[] = {"42", "-7", "9007199254740993", "+INF", "1e3", "-inf"};
    celer_tensor ti = T(CELER_STRING, tu_strs((const char *const *)ints, CELER_ARRAY_LEN(ints)), 6);
    attrs_t i64 = {0};
    a_int(&i64, "to", CELER_INT64);
    int64_t wi[] = {42, -7, 9007199254740993LL, INT64_MAX, 1000, INT64_MIN};
    assert_int_equal(run1("Cast", &i64, 13, &ti, &back), CELER_OK);
    expect_bytes(&back, CELER_INT64, wi, 6);
    tu_free_outputs(&back, 1);
    char *junk[] = {"12abc"};
    celer_tensor tj = T(CELER_STRING, tu_strs((const char *const *)junk, CELER_ARRAY_LEN(junk)), 1);
    assert_int_equal(run1("Cast", &f, 13, &tj, &back), CELER_ERR_INVALID);
    tu_free_outputs(&back, 1); /* run-time failures leave the outputs allocated */
    /* a NUL ends no number early: "12\0abc" is not 12 */
    celer_str nul[] = {TU_LIT("12\0abc")};
    celer_tensor tnul = T(CELER_STRING, nul, 1);
    assert_int_equal(run1("Cast", &f, 13, &tnul, &back), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "NUL"));
    tu_free_outputs(&back, 1);
}

/* ---- in place and large same-shape runs ---- */

/* Runs op with out[0] written over in[0]'s buffer, as the executor does under INPLACE. */
static void run_inplace(const char *op, int opset, const celer_tensor *const *in, int n_in) {
    celer_onnx_node n = node_of(op, NULL, n_in);
    celer_dtype types[4];
    const celer_tensor *consts[4] = {0};
    for (int i = 0; i < n_in; i++) types[i] = in[i]->dtype;
    celer_op_info info = {.node = &n, .opset = opset, .n_inputs = n_in, .n_outputs = 1,
                          .input_types = types, .input_constants = consts};
    const celer_kernel *k = celer_ops_find("", op, opset, types, n_in);
    assert_non_null(k);
    assert_true(k->flags & CELER_KERNEL_INPLACE);
    info.since_version = k->since;
    void *state = NULL, *local = NULL;
    assert_int_equal(k->init(&info, &state), CELER_OK);
    celer_tensor out = {.dtype = in[0]->dtype};
    celer_kernel_call call = {.info = &info, .state = state, .local = &local, .in = in,
                              .n_in = n_in, .out = &out, .n_out = 1};
    assert_int_equal(k->reshape(&call), CELER_OK);
    assert_true(celer_shape_equal(&out.shape, &in[0]->shape));
    out.data = in[0]->data;
    assert_int_equal(k->run(&call), CELER_OK);
    k->free_state(state);
}

static void test_inplace_and_large(void **st) {
    (void)st;
    enum { N = 1037 }; /* not a multiple of the block size */
    uint64_t seed = 7;
    float *a = malloc(N * 4), *b = malloc(N * 4), *want = malloc(N * 4);
    tu_fill_random(a, N, -3, 3, &seed);
    tu_fill_random(b, N, -3, 3, &seed);
    for (int i = 0; i < N; i++) want[i] = a[i] * b[i];
    celer_tensor ta = T(CELER_FLOAT, a, N), tb = T(CELER_FLOAT, b, N);
    const celer_tensor *in[2] = {&ta, &tb};
    run_inplace("Mul", 14, in, 2);
    expect_f32(&ta, want, N, 0);
    for (int i = 0; i < N; i++) want[i] = a[i] < 0 ? 0 : a[i];
    run_inplace("Relu", 14, in, 1);
    expect_f32(&ta, want, N, 0);
    /* a + a with both inputs on the output buffer */
    for (int i = 0; i < N; i++) want[i] = a[i] + a[i];
    const celer_tensor *twice[2] = {&ta, &ta};
    run_inplace("Add", 14, twice, 2);
    expect_f32(&ta, want, N, 0);
    free(a);
    free(b);
    free(want);
}

static void test_float16_math(void **st) {
    (void)st;
    uint16_t a[] = {0x3c00, 0x4000, 0xc200}; /* 1, 2, -3 */
    uint16_t b[] = {0x3800};                 /* 0.5 */
    uint16_t want[] = {0x3e00, 0x4100, 0xc100}; /* 1.5, 2.5, -2.5 */
    celer_tensor ta = T(CELER_FLOAT16, a, 3), tb = T(CELER_FLOAT16, b, 1), out;
    assert_int_equal(run2("Add", NULL, 14, &ta, &tb, &out), CELER_OK);
    expect_bytes(&out, CELER_FLOAT16, want, 3);
    tu_free_outputs(&out, 1);
    uint16_t wrelu[] = {0x3c00, 0x4000, 0x0000};
    assert_int_equal(run1("Relu", NULL, 14, &ta, &out), CELER_OK);
    expect_bytes(&out, CELER_FLOAT16, wrelu, 3);
    tu_free_outputs(&out, 1);
}

/* Gelu (both forms) and Mish in float through the vectorised paths, against libm in double over
 * -40..40 (both tails, where e^x saturates) plus infinities and NaN; Gelu's unknown
 * `approximate` refused at load, naming the value. */
static void test_gelu_mish(void **st) {
    (void)st;
    enum { NV = 803 };
    static float x[NV], want[3][NV];
    for (int i = 0; i < NV - 3; i++) x[i] = -40.0f + 0.1f * (float)i;
    x[NV - 3] = INFINITY;
    x[NV - 2] = -INFINITY;
    x[NV - 1] = NAN;
    for (int i = 0; i < NV; i++) {
        double v = x[i], z = 0.7978845608028654 * (v + 0.044715 * v * v * v);
        want[0][i] = (float)(0.5 * v * (1 + erf(v / sqrt(2.0))));
        want[1][i] = isinf(v) ? (float)v * 0.5f * (1 + tanhf((float)v)) : (float)(0.5 * v * (1 + tanh(z)));
        want[2][i] = isinf(v) ? (float)v * tanhf(v > 0 ? (float)v : 0.0f)
                              : (float)(v * tanh(v > 0 ? v + log1p(exp(-v)) : log1p(exp(v))));
    }
    /* -inf gives the formula's -inf * 0 = NaN in all three, as ONNX Runtime does (not the limit 0) */
    celer_tensor tx = T(CELER_FLOAT, x, NV), out;
    static const char *const approx[2] = {"none", "tanh"};
    for (int k = 0; k < 3; k++) {
        attrs_t a = {0};
        if (k < 2) a_str(&a, "approximate", approx[k]);
        celer_status r = run1(k < 2 ? "Gelu" : "Mish", &a, k < 2 ? 20 : 18, &tx, &out);
        assert_int_equal(r, CELER_OK);
        const float *got = out.data;
        for (int i = 0; i < NV; i++) {
            float w = want[k][i], g = got[i];
            bool ok = isnan(w) ? isnan(g)
                      : isinf(w) ? g == w
                                 : fabsf(g - w) <= 1e-6f + 2e-6f * fabsf(w) || (w == 0 && fabsf(g) < 1e-30f);
            if (!ok) fail_msg("%s x = %g: got %.9g, want %.9g", k < 2 ? approx[k] : "mish", (double)x[i], (double)g, (double)w);
        }
        tu_free_outputs(&out, 1);
    }
    attrs_t bad = {0};
    a_str(&bad, "approximate", "erf");
    out = (celer_tensor){0};
    assert_int_equal(run1("Gelu", &bad, 20, &tx, &out), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "approximate = \"erf\""));
}

static void test_empty_tensors(void **st) {
    (void)st;
    float a[1] = {0}, b[3] = {1, 2, 3};
    celer_tensor ta = T(CELER_FLOAT, a, 0, 3), tb = T(CELER_FLOAT, b, 3), out;
    assert_int_equal(run2("Add", NULL, 14, &ta, &tb, &out), CELER_OK);
    expect_shape(&out, 2, DIMS(0, 3));
    tu_free_outputs(&out, 1);
    assert_int_equal(run1("Exp", NULL, 13, &ta, &out), CELER_OK);
    tu_free_outputs(&out, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_values),      cmocka_unit_test(test_round_half_even),
        cmocka_unit_test(test_unary_int_wraps),   cmocka_unit_test(test_not_isnan_isinf),
        cmocka_unit_test(test_clip),              cmocka_unit_test(test_broadcast_shapes),
        cmocka_unit_test(test_broadcast_random),  cmocka_unit_test(test_compare_bool),
        cmocka_unit_test(test_int_div_mod),       cmocka_unit_test(test_pow_bitshift),
        cmocka_unit_test(test_prelu),             cmocka_unit_test(test_legacy_broadcast),
        cmocka_unit_test(test_max_min_nan),       cmocka_unit_test(test_sum_mean_broadcast),
        cmocka_unit_test(test_where),             cmocka_unit_test(test_cast_float16),
        cmocka_unit_test(test_cast_ints_bool),    cmocka_unit_test(test_cast_strings),
        cmocka_unit_test(test_inplace_and_large), cmocka_unit_test(test_float16_math),
        cmocka_unit_test(test_empty_tensors),     cmocka_unit_test(test_gelu_mish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
