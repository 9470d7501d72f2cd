/* reduce family: every Reduce* op over every axes subset of a 3-D tensor (keepdims on/off,
 * positive and negative axes) against a naive reference, the ReduceSum-13 axes input, integer
 * exactness, ArgMax/ArgMin, TopK, CumSum, the softmax family and Einsum. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- a tiny node builder ---- */
typedef struct {
    celer_onnx_attr attrs[8];
    int n;
    int64_t store[8][8];
} attrs_t;

static void a_ints(attrs_t *a, const char *name, int n, const int64_t *v) {
    memcpy(a->store[a->n], v, (size_t)n * sizeof *v);
    a->attrs[a->n] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INTS, .n = n,
                                       .ints = a->store[a->n]};
    a->n++;
}
static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s,
                                         .s_len = strlen(s)};
}
static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in, int n_out) {
    static const char *const ins[] = {"x", "a", "b", "c"};
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

/* ---- Reduce* against a naive reference ---- */

static const char *const reduce_names[] = {"ReduceSum", "ReduceMean", "ReduceMax",
                                           "ReduceMin", "ReduceProd", "ReduceL1",
                                           "ReduceL2",  "ReduceLogSum", "ReduceLogSumExp",
                                           "ReduceSumSquare"};

/* Reference: out[o] over the input elements whose kept coordinates give o. */
static void naive_reduce(int kind, const float *x, const int64_t *dims, unsigned mask,
                         double *out, int64_t n_out) {
    double acc[64], acc2[64];
    int64_t cnt[64] = {0};
    for (int64_t o = 0; o < n_out; o++) {
        acc[o] = kind == 2 ? -INFINITY : kind == 3 ? INFINITY : kind == 4 ? 1 : 0;
        acc2[o] = 0;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < dims[0]; i++)
            for (int64_t j = 0; j < dims[1]; j++)
                for (int64_t k = 0; k < dims[2]; k++) {
                    int64_t c[3] = {i, j, k}, o = 0;
                    for (int d = 0; d < 3; d++)
                        if (!(mask & (1u << d))) o = o * dims[d] + c[d];
                    double v = x[(i * dims[1] + j) * dims[2] + k];
                    if (pass == 1) {
                        if (kind == 8) acc2[o] += exp(v - acc[o]);
                        continue;
                    }
                    cnt[o]++;
                    switch (kind) {
                    case 0: case 1: case 7: acc[o] += v; break;
                    case 2: case 8: acc[o] = fmax(acc[o], v); break;
                    case 3: acc[o] = fmin(acc[o], v); break;
                    case 4: acc[o] *= v; break;
                    case 5: acc[o] += fabs(v); break;
                    case 6: case 9: acc[o] += v * v; break;
                    }
                }
    for (int64_t o = 0; o < n_out; o++) {
        double v = acc[o];
        switch (kind) {
        case 1: v /= (double)cnt[o]; break;
        case 6: v = sqrt(v); break;
        case 7: v = log(v); break;
        case 8: v = acc[o] + log(acc2[o]); break;
        }
        out[o] = v;
    }
}

static void test_reduce_all_axes(void **st) {
    (void)st;
    int64_t dims[3] = {2, 3, 4};
    float x[24];
    uint64_t seed = 7;
    tu_fill_random(x, 24, 0.1f, 1.5f, &seed); /* positive so LogSum is defined */
    x[5] = -0.7f;                               /* ...mostly: one negative for L1/Max/Min */
    celer_tensor tx = tensor(CELER_FLOAT, 3, dims, x);
    const celer_tensor *in[1] = {&tx};
    for (int kind = 0; kind < 10; kind++)
        for (unsigned mask = 0; mask < 8; mask++)
            for (int keep = 0; keep < 2; keep++)
                for (int neg = 0; neg < 2; neg++) {
                    attrs_t a = {0};
                    int64_t axes[3];
                    int n = 0;
                    for (int d = 0; d < 3; d++)
                        if (mask & (1u << d)) axes[n++] = neg ? d - 3 : d;
                    if (n) a_ints(&a, "axes", n, axes);
                    a_int(&a, "keepdims", keep);
                    celer_onnx_node node = make_node(reduce_names[kind], &a, 1, 1);
                    unsigned m = mask ? mask : 7; /* no axes = all axes */
                    celer_tensor out;
                    assert_int_equal(tu_run_op(&node, 11, in, 1, &out, 1), 0);
                    int64_t n_out = 1, rank = 0;
                    for (int d = 0; d < 3; d++) {
                        if (!(m & (1u << d))) {
                            n_out *= dims[d];
                            assert_int_equal(out.shape.dims[rank++], dims[d]);
                        } else if (keep) {
                            assert_int_equal(out.shape.dims[rank++], 1);
                        }
                    }
                    assert_int_equal(out.shape.rank, rank);
                    double ref[64];
                    naive_reduce(kind, x, dims, m, ref, n_out);
                    for (int64_t o = 0; o < n_out; o++) {
                        double got = ((float *)out.data)[o];
                        if (isnan(ref[o])) continue; /* LogSum of a negative sum */
                        if (fabs(got - ref[o]) > 1e-5 * fmax(1, fabs(ref[o])))
                            fail_msg("%s mask %u keep %d neg %d: out[%lld] = %g, want %g",
                                     reduce_names[kind], mask, keep, neg, (long long)o, got,
                                     ref[o]);
                    }
                    tu_free_outputs(&out, 1);
                }
}

static void test_reduce_sum_axes_input(void **st) {
    (void)st;
    int64_t dims[3] = {2, 2, 2}, adims[1] = {1}, edims[1] = {0};
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ax[1] = {-2};
    celer_tensor tx = tensor(CELER_FLOAT, 3, dims, x), ta = tensor(CELER_INT64, 1, adims, ax);
    celer_tensor te = tensor(CELER_INT64, 1, edims, ax);
    const celer_tensor *in[2] = {&tx, &ta};
    attrs_t a = {0};
    a_int(&a, "keepdims", 0);
    celer_onnx_node node = make_node("ReduceSum", &a, 2, 1);
    celer_tensor out;
    assert_int_equal(tu_run_op(&node, 13, in, 2, &out, 1), 0);
    assert_int_equal(out.shape.rank, 2);
    float want[4] = {4, 6, 12, 14};
    assert_memory_equal(out.data, want, sizeof want);
    tu_free_outputs(&out, 1);

    /* empty axes: all axes, or a copy with noop_with_empty_axes */
    in[1] = &te;
    assert_int_equal(tu_run_op(&node, 13, in, 2, &out, 1), 0);
    assert_int_equal(out.shape.rank, 0);
    assert_true(((float *)out.data)[0] == 36);
    tu_free_outputs(&out, 1);
    a_int(&a, "noop_with_empty_axes", 1);
    node = make_node("ReduceSum", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 2, &out, 1), 0);
    assert_int_equal(out.shape.rank, 3);
    assert_memory_equal(out.data, x, sizeof x);
    tu_free_outputs(&out, 1);
    /* omitted axes input behaves like empty */
    in[1] = NULL;
    assert_int_equal(tu_run_op(&node, 13, in, 2, &out, 1), 0);
    assert_memory_equal(out.data, x, sizeof x);
    tu_free_outputs(&out, 1);
}

static void test_reduce_errors(void **st) {
    (void)st;
    int64_t dims[2] = {2, 2};
    float x[4] = {0};
    celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    int64_t dup[2] = {1, -1};
    a_ints(&a, "axes", 2, dup);
    celer_onnx_node node = make_node("ReduceMean", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "twice"));
    tu_free_outputs(&out, 1);
    attrs_t b = {0};
    int64_t far[1] = {2};
    a_ints(&b, "axes", 1, far);
    node = make_node("ReduceMax", &b, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "ReduceMax"));
    tu_free_outputs(&out, 1);
}

/* From opset 18 (ReduceSum 13) axes is an input: the attribute is refused at load, as are flags
 * other than 0/1; over the empty set of axes the composite reductions keep their elementwise step. */
static void test_reduce_opset18(void **st) {
    (void)st;
    int64_t dims[2] = {2, 2};
    float x[4] = {-1, 2, -3, 4};
    celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x), out = {0};
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    int64_t ax[1] = {1};
    a_ints(&a, "axes", 1, ax);
    celer_onnx_node node = make_node("ReduceMean", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 1, &out, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "attribute 'axes' is not part of ReduceMean-18"));
    node = make_node("ReduceSum", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 23, in, 1, &out, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "ReduceSum-13"));

    attrs_t b = {0};
    a_int(&b, "keepdims", 2);
    node = make_node("ReduceL2", &b, 1, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 1, &out, 1), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "ReduceL2 'n': attribute 'keepdims' = 2 is not supported"));
    attrs_t c = {0};
    a_int(&c, "noop_with_empty_axes", -1);
    node = make_node("ReduceMax", &c, 1, 1);
    assert_int_equal(tu_run_op(&node, 20, in, 1, &out, 1), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "'noop_with_empty_axes' = -1"));

    attrs_t d = {0};
    a_int(&d, "noop_with_empty_axes", 1);
    node = make_node("ReduceSumSquare", &d, 1, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 1, &out, 1), 0);
    assert_memory_equal(out.data, ((float[]){1, 4, 9, 16}), 4 * sizeof(float));
    tu_free_outputs(&out, 1);
    node = make_node("ReduceL1", &d, 1, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 1, &out, 1), 0);
    assert_memory_equal(out.data, ((float[]){1, 2, 3, 4}), 4 * sizeof(float));
    tu_free_outputs(&out, 1);
}

/* An empty max (min) over integers is the type's lowest (highest) value; bool joins at 20. */
static void test_reduce_minmax_empty_and_bool(void **st) {
    (void)st;
    int64_t edims[2] = {2, 0}, bdims[2] = {2, 3};
    int8_t e8[1] = {0};
    uint8_t b[6] = {0, 1, 0, 0, 0, 0};
    int64_t ax[1] = {1}, adims[1] = {1};
    celer_tensor te = tensor(CELER_INT8, 2, edims, e8), ta = tensor(CELER_INT64, 1, adims, ax), out;
    const celer_tensor *in[2] = {&te, &ta};
    attrs_t a = {0};
    celer_onnx_node node = make_node("ReduceMax", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 2, &out, 1), 0);
    assert_int_equal(((int8_t *)out.data)[0], INT8_MIN);
    tu_free_outputs(&out, 1);
    node = make_node("ReduceMin", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 18, in, 2, &out, 1), 0);
    assert_int_equal(((int8_t *)out.data)[1], INT8_MAX);
    tu_free_outputs(&out, 1);

    celer_tensor tb = tensor(CELER_BOOL, 2, bdims, b);
    in[0] = &tb;
    node = make_node("ReduceMax", &a, 2, 1);
    assert_int_not_equal(tu_run_op(&node, 18, in, 2, &out, 1), 0); /* no bool before 20 */
    assert_int_equal(tu_run_op(&node, 20, in, 2, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_BOOL);
    assert_memory_equal(out.data, ((uint8_t[]){1, 0}), 2);
    tu_free_outputs(&out, 1);
    node = make_node("ReduceMin", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 23, in, 2, &out, 1), 0);
    assert_memory_equal(out.data, ((uint8_t[]){0, 0}), 2);
    tu_free_outputs(&out, 1);
}

static void test_reduce_int_exact(void **st) {
    (void)st;
    int64_t dims[2] = {2, 3};
    int64_t x[6] = {(int64_t)1 << 60, 1, 1, -5, 7, -9};
    celer_tensor tx = tensor(CELER_INT64, 2, dims, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    int64_t ax[1] = {1};
    a_ints(&a, "axes", 1, ax);
    celer_onnx_node node = make_node("ReduceSum", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, &out, 1), 0);
    assert_true(((int64_t *)out.data)[0] == ((int64_t)1 << 60) + 2);
    assert_true(((int64_t *)out.data)[1] == -7);
    tu_free_outputs(&out, 1);
    node = make_node("ReduceMin", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, &out, 1), 0);
    assert_true(((int64_t *)out.data)[0] == 1 && ((int64_t *)out.data)[1] == -9);
    tu_free_outputs(&out, 1);
    node = make_node("ReduceMean", &a, 1, 1);
    int32_t x32[6] = {1, 2, 4, -1, -2, -4};
    celer_tensor t32 = tensor(CELER_INT32, 2, dims, x32);
    in[0] = &t32;
    assert_int_equal(tu_run_op(&node, 11, in, 1, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_INT32);
    assert_int_equal(((int32_t *)out.data)[0], 2); /* 7 / 3 truncated */
    assert_int_equal(((int32_t *)out.data)[1], -2);
    tu_free_outputs(&out, 1);
}

/* ---- ArgMax / ArgMin ---- */

static void test_argmax(void **st) {
    (void)st;
    int64_t dims[2] = {2, 3};
    float x[6] = {1, 5, 5, 7, 2, 7};
    celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x), out;
    const celer_tensor *in[1] = {&tx};
    struct {
        const char *op;
        int64_t axis, keep, last, want[3], n;
    } cases[] = {
        {"ArgMax", 1, 1, 0, {1, 0}, 2},    {"ArgMax", 1, 1, 1, {2, 2}, 2},
        {"ArgMax", -1, 0, 0, {1, 0}, 2},   {"ArgMax", 0, 1, 0, {1, 0, 1}, 3},
        {"ArgMin", 1, 1, 0, {0, 1}, 2},    {"ArgMin", 0, 0, 1, {0, 1, 0}, 3},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        attrs_t a = {0};
        a_int(&a, "axis", cases[c].axis);
        a_int(&a, "keepdims", cases[c].keep);
        a_int(&a, "select_last_index", cases[c].last);
        celer_onnx_node node = make_node(cases[c].op, &a, 1, 1);
        assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
        assert_int_equal(out.dtype, CELER_INT64);
        assert_int_equal(out.shape.rank, cases[c].keep ? 2 : 1);
        for (int i = 0; i < cases[c].n; i++)
            assert_int_equal(((int64_t *)out.data)[i], cases[c].want[i]);
        tu_free_outputs(&out, 1);
    }
}

/* ---- TopK ---- */

static void test_topk(void **st) {
    (void)st;
    int64_t dims[2] = {2, 5}, kd[1] = {1};
    float x[10] = {3, 1, 3, 9, 0, 4, 4, 4, 2, 8};
    int64_t k = 3;
    celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x), tk = tensor(CELER_INT64, 1, kd, &k);
    const celer_tensor *in[2] = {&tx, &tk};
    celer_tensor out[2];
    attrs_t a = {0};
    celer_onnx_node node = make_node("TopK", &a, 2, 2);
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 2), 0);
    assert_int_equal(out[0].shape.dims[1], 3);
    float wv[6] = {9, 3, 3, 8, 4, 4};
    int64_t wi[6] = {3, 0, 2, 4, 0, 1}; /* ties: lower index first */
    assert_memory_equal(out[0].data, wv, sizeof wv);
    assert_memory_equal(out[1].data, wi, sizeof wi);
    tu_free_outputs(out, 2);

    attrs_t b = {0};
    a_int(&b, "largest", 0);
    a_int(&b, "axis", 0);
    node = make_node("TopK", &b, 2, 2);
    k = 1;
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 2), 0);
    float sv[5] = {3, 1, 3, 2, 0};
    int64_t si[5] = {0, 0, 0, 1, 0};
    assert_memory_equal(out[0].data, sv, sizeof sv);
    assert_memory_equal(out[1].data, si, sizeof si);
    tu_free_outputs(out, 2);

    k = 6; /* larger than the axis */
    node = make_node("TopK", &a, 2, 2);
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 2), CELER_ERR_INVALID);
    tu_free_outputs(out, 2);

    /* opset 1: k attribute */
    attrs_t c = {0};
    a_int(&c, "k", 2);
    node = make_node("TopK", &c, 1, 2);
    assert_int_equal(tu_run_op(&node, 9, in, 1, out, 2), 0);
    float v1[4] = {9, 3, 8, 4};
    assert_memory_equal(out[0].data, v1, sizeof v1);
    tu_free_outputs(out, 2);
}

/* ---- CumSum ---- */

static void test_cumsum(void **st) {
    (void)st;
    int64_t dims[2] = {2, 3};
    double x[6] = {1, 2, 3, 4, 5, 6};
    int32_t axis = 1;
    celer_tensor tx = tensor(CELER_DOUBLE, 2, dims, x), ta = tensor(CELER_INT32, 0, dims, &axis);
    const celer_tensor *in[2] = {&tx, &ta};
    struct {
        int axis, excl, rev;
        double want[6];
    } cases[] = {
        {1, 0, 0, {1, 3, 6, 4, 9, 15}}, {1, 1, 0, {0, 1, 3, 0, 4, 9}},
        {1, 0, 1, {6, 5, 3, 15, 11, 6}}, {1, 1, 1, {5, 3, 0, 11, 6, 0}},
        {0, 0, 0, {1, 2, 3, 5, 7, 9}},   {-2, 1, 0, {0, 0, 0, 1, 2, 3}},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        attrs_t a = {0};
        a_int(&a, "exclusive", cases[c].excl);
        a_int(&a, "reverse", cases[c].rev);
        axis = cases[c].axis;
        celer_onnx_node node = make_node("CumSum", &a, 2, 1);
        celer_tensor out;
        assert_int_equal(tu_run_op(&node, 14, in, 2, &out, 1), 0);
        assert_memory_equal(out.data, cases[c].want, sizeof cases[c].want);
        tu_free_outputs(&out, 1);
    }
}

/* ---- Softmax family ---- */

/* Naive softmax of x [2,3,4] along `axis` (or, legacy, the 2-D coercion at axis). */
static void naive_softmax(const float *x, double *y, int axis, bool legacy, bool log_out) {
    int64_t dims[3] = {2, 3, 4}, outer = 1, n = 1, inner = 1;
    for (int d = 0; d < 3; d++) {
        if (d < axis) outer *= dims[d];
        else if (d == axis || legacy) n *= dims[d];
        else inner *= dims[d];
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += exp(x[(o * n + j) * inner + i]);
            for (int64_t j = 0; j < n; j++) {
                double e = exp(x[(o * n + j) * inner + i]) / s;
                y[(o * n + j) * inner + i] = log_out ? log(e) : e;
            }
        }
}

static void test_softmax(void **st) {
    (void)st;
    int64_t dims[3] = {2, 3, 4};
    float x[24];
    uint64_t seed = 3;
    tu_fill_random(x, 24, -3, 3, &seed);
    celer_tensor tx = tensor(CELER_FLOAT, 3, dims, x);
    const celer_tensor *in[1] = {&tx};
    for (int lg = 0; lg < 2; lg++)
        for (int legacy = 0; legacy < 2; legacy++)
            for (int axis = -3; axis < 3; axis++) {
                attrs_t a = {0};
                a_int(&a, "axis", axis);
                celer_onnx_node node = make_node(lg ? "LogSoftmax" : "Softmax", &a, 1, 1);
                celer_tensor out;
                assert_int_equal(tu_run_op(&node, legacy ? 11 : 13, in, 1, &out, 1), 0);
                double ref[24];
                naive_softmax(x, ref, axis < 0 ? axis + 3 : axis, legacy, lg);
                for (int i = 0; i < 24; i++)
                    if (fabs(((float *)out.data)[i] - ref[i]) > 1e-5)
                        fail_msg("%s axis %d legacy %d: [%d] %g vs %g", lg ? "LogSoftmax" : "Softmax",
                                 axis, legacy, i, ((float *)out.data)[i], ref[i]);
                tu_free_outputs(&out, 1);
            }
    /* large inputs do not overflow */
    float big[4] = {1000, 1001, 1002, 1003};
    int64_t bd[1] = {4};
    celer_tensor tb = tensor(CELER_FLOAT, 1, bd, big), out;
    in[0] = &tb;
    attrs_t a = {0};
    celer_onnx_node node = make_node("Softmax", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    assert_true(fabs(((float *)out.data)[3] - 0.6439142) < 1e-5);
    tu_free_outputs(&out, 1);

    /* attention masks: -inf and -FLT_MAX give 0; a NaN poisons its row only */
    float masked[8] = {0, -INFINITY, -3.4e38f, 1, 0, NAN, 0, 0};
    int64_t md[2] = {2, 4};
    celer_tensor tm = tensor(CELER_FLOAT, 2, md, masked);
    in[0] = &tm;
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    const float *y = out.data;
    double e = exp(1.0);
    assert_true(fabs(y[0] - 1 / (1 + e)) < 1e-6 && fabs(y[3] - e / (1 + e)) < 1e-6);
    assert_true(y[1] < 1e-30f && y[2] < 1e-30f && y[1] >= 0 && y[2] >= 0);
    for (int i = 4; i < 8; i++) assert_true(isnan(y[i]));
    tu_free_outputs(&out, 1);
}

/* Rows along the last axis (attention's softmax) take a vectorized path whose rows are shared
 * over the team: random shapes (row lengths around the 16-lane blocks, enough rows to split),
 * Softmax and LogSoftmax, one and two threads, against the double-precision naive form. */
static void test_softmax_rows(void **st) {
    (void)st;
    uint64_t seed = 11;
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        for (int it = 0; it < 24; it++) {
            float f[2];
            tu_fill_random(f, 2, 0, 1, &seed);
            int64_t dims[2] = {1 + (int64_t)(f[0] * 700), 1 + (int64_t)(f[1] * 200)};
            int64_t rows = dims[0], n = dims[1];
            float *x = malloc((size_t)(rows * n) * sizeof *x);
            tu_fill_random(x, (size_t)(rows * n), -20, 20, &seed);
            celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x);
            const celer_tensor *in[1] = {&tx};
            for (int lg = 0; lg < 2; lg++) {
                attrs_t a = {0};
                celer_onnx_node node = make_node(lg ? "LogSoftmax" : "Softmax", &a, 1, 1);
                celer_tensor out;
                assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
                const float *y = out.data;
                for (int64_t o = 0; o < rows; o++) {
                    double m = x[o * n], s = 0;
                    for (int64_t j = 0; j < n; j++) m = fmax(m, x[o * n + j]);
                    for (int64_t j = 0; j < n; j++) s += exp(x[o * n + j] - m);
                    for (int64_t j = 0; j < n; j++) {
                        double e = exp(x[o * n + j] - m) / s, want = lg ? log(e) : e;
                        double tol = lg ? 1e-5 * (1 + fabs(want)) : 1e-6 * e + 1e-9;
                        if (fabs(y[o * n + j] - want) > tol)
                            fail_msg("%s threads %d [%lld x %lld] at (%lld, %lld): %g vs %g",
                                     lg ? "LogSoftmax" : "Softmax", threads, (long long)rows, (long long)n,
                                     (long long)o, (long long)j, y[o * n + j], want);
                    }
                }
                tu_free_outputs(&out, 1);
            }
            free(x);
        }
    }
    omp_set_num_threads(1);
}

static void test_softmax_f16(void **st) {
    (void)st;
    int64_t dims[2] = {2, 3};
    uint16_t x[6];
    float xf[6] = {0, 1, 2, -1, 0, 1};
    for (int i = 0; i < 6; i++) x[i] = celer_float_to_half(xf[i]);
    celer_tensor tx = tensor(CELER_FLOAT16, 2, dims, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    celer_onnx_node node = make_node("Softmax", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    assert_int_equal(out.dtype, CELER_FLOAT16);
    float want[3] = {0.09003057f, 0.24472847f, 0.66524096f};
    for (int i = 0; i < 6; i++)
        assert_true(fabs(celer_half_to_float(((uint16_t *)out.data)[i]) - want[i % 3]) < 1e-3);
    tu_free_outputs(&out, 1);
}

static void test_hardmax(void **st) {
    (void)st;
    int64_t dims[2] = {2, 3};
    float x[6] = {1, 3, 3, 0, -1, -2};
    celer_tensor tx = tensor(CELER_FLOAT, 2, dims, x), out;
    const celer_tensor *in[1] = {&tx};
    attrs_t a = {0};
    celer_onnx_node node = make_node("Hardmax", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 1, &out, 1), 0);
    float want[6] = {0, 1, 0, 1, 0, 0};
    assert_memory_equal(out.data, want, sizeof want);
    tu_free_outputs(&out, 1);
    a_int(&a, "axis", 0); /* legacy: coerced to [1, 6] */
    node = make_node("Hardmax", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, &out, 1), 0);
    float want0[6] = {0, 1, 0, 0, 0, 0};
    assert_memory_equal(out.data, want0, sizeof want0);
    tu_free_outputs(&out, 1);
}

/* ---- Einsum ---- */

static void test_einsum(void **st) {
    (void)st;
    int64_t ad[2] = {2, 3}, bd[2] = {3, 2}, sd[2] = {3, 3};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, sq[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    celer_tensor ta = tensor(CELER_FLOAT, 2, ad, a), tb = tensor(CELER_FLOAT, 2, bd, b);
    celer_tensor ts = tensor(CELER_FLOAT, 2, sd, sq), out;
    struct {
        const char *eq;
        int n_in;
        const celer_tensor *in[2];
        int rank;
        float want[9];
        int n;
    } cases[] = {
        {"ij,jk->ik", 2, {&ta, &tb}, 2, {4, 5, 10, 11}, 4},
        {"ij,jk", 2, {&ta, &tb}, 2, {4, 5, 10, 11}, 4},
        {"ij->ji", 1, {&ta}, 2, {1, 4, 2, 5, 3, 6}, 6},
        {"ii", 1, {&ts}, 0, {15}, 1},
        {"ii->i", 1, {&ts}, 1, {1, 5, 9}, 3},
        {"...j->...", 1, {&ta}, 1, {6, 15}, 2},
        {"ij->", 1, {&ta}, 0, {21}, 1},
    };
    for (size_t c = 0; c < CELER_ARRAY_LEN(cases); c++) {
        attrs_t at = {0};
        a_str(&at, "equation", cases[c].eq);
        celer_onnx_node node = make_node("Einsum", &at, cases[c].n_in, 1);
        assert_int_equal(tu_run_op(&node, 12, cases[c].in, cases[c].n_in, &out, 1), 0);
        assert_int_equal(out.shape.rank, cases[c].rank);
        for (int i = 0; i < cases[c].n; i++)
            if (((float *)out.data)[i] != cases[c].want[i])
                fail_msg("%s: [%d] = %g, want %g", cases[c].eq, i, ((float *)out.data)[i],
                         cases[c].want[i]);
        tu_free_outputs(&out, 1);
    }
}

static void test_einsum_batch_and_ints(void **st) {
    (void)st;
    /* "...ij,...jk->...ik" with the batch dim broadcast from 1 */
    int64_t ad[3] = {2, 1, 2}, bd[3] = {1, 2, 2};
    int64_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    celer_tensor ta = tensor(CELER_INT64, 3, ad, a), tb = tensor(CELER_INT64, 3, bd, b), out;
    const celer_tensor *in[2] = {&ta, &tb};
    attrs_t at = {0};
    a_str(&at, "equation", "...ij,...jk->...ik");
    celer_onnx_node node = make_node("Einsum", &at, 2, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 2, &out, 1), 0);
    assert_int_equal(out.shape.rank, 3);
    assert_int_equal(out.shape.dims[0], 2);
    int64_t want[4] = {19, 22, 43, 50};
    assert_memory_equal(out.data, want, sizeof want);
    tu_free_outputs(&out, 1);

    attrs_t bad = {0};
    a_str(&bad, "equation", "...ij,...jk->...q");
    node = make_node("Einsum", &bad, 2, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 2, &out, 1), CELER_ERR_INVALID);
    tu_free_outputs(&out, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_all_axes), cmocka_unit_test(test_reduce_sum_axes_input),
        cmocka_unit_test(test_reduce_errors),   cmocka_unit_test(test_reduce_int_exact),
        cmocka_unit_test(test_reduce_opset18),  cmocka_unit_test(test_reduce_minmax_empty_and_bool),
        cmocka_unit_test(test_argmax),          cmocka_unit_test(test_topk),
        cmocka_unit_test(test_cumsum),          cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_f16),     cmocka_unit_test(test_softmax_rows),     cmocka_unit_test(test_hardmax),
        cmocka_unit_test(test_einsum),          cmocka_unit_test(test_einsum_batch_and_ints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
