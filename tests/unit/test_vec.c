/* The vectorized and threaded paths of celer's own kernels against plain double loops (or the
 * N-D reference path): float activations without libm (every clone the machine picks), binary
 * arithmetic with broadcasting split across threads mid-row, 1-D Max/AveragePool against the
 * same pool run as 2-D over [N, C, 1, W], GlobalAveragePool, Layer/InstanceNormalization and
 * Where. Each case runs at 1 and 2 OpenMP threads; the split must give the same bits as one
 * thread. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"

/* Sizes: odd ones around the 16-element blocks and vector widths, and ones past the two threads'
 * split thresholds (2 x 128K elements for the exp-based loops, 2 x 1M for the cheap ones). */
static const int64_t sizes[] = {1, 7, 16, 17, 33, 1000, 300007, 2100001};

/* Runs op at 1 and at 2 threads; the outputs must be bit-identical; out holds the 2-thread run. */
static void run_1_2(const char *op, int opset, const celer_onnx_attr *at, int nat,
                    const celer_tensor *const *in, int n_in, celer_tensor *out) {
    celer_tensor o1[1];
    omp_set_num_threads(1);
    assert_int_equal(tu_run(op, opset, at, nat, in, n_in, o1, 1), CELER_OK);
    omp_set_num_threads(2);
    assert_int_equal(tu_run(op, opset, at, nat, in, n_in, out, 1), CELER_OK);
    omp_set_num_threads(1);
    assert_true(celer_shape_equal(&o1[0].shape, &out[0].shape));
    size_t bytes = 0;
    assert_int_equal(celer_tensor_bytes(&out[0], &bytes), 0);
    if (bytes && memcmp(o1[0].data, out[0].data, bytes)) {
        print_error("%s: 2 threads differ from 1\n", op);
        fail();
    }
    tu_free_outputs(o1, 1);
}

/* |got - want| within rel * |want| + abs, NaN matching NaN. */
static void expect_close(const char *what, int64_t i, float got, double want, double rel,
                         double abs) {
    if (isnan(want) && isnan(got)) return;
    if (!(fabs((double)got - want) <= rel * fabs(want) + abs)) {
        print_error("%s: element %lld: %.9g, expected %.9g\n", what, (long long)i, got, want);
        fail();
    }
}

/* ---- unary activations ---- */

static double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double ref_unary(const char *op, double x) {
    if (!strcmp(op, "Sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(op, "Tanh")) return tanh(x);
    if (!strcmp(op, "HardSigmoid")) return fmax(0, fmin(1, (double)0.2f * x + 0.5));
    if (!strcmp(op, "HardSwish")) return x * fmax(0, fmin(1, x / 6 + 0.5));
    if (!strcmp(op, "Elu")) return x < 0 ? expm1(x) : x;
    if (!strcmp(op, "Selu"))
        return x > 0 ? 1.0507009873554804934193349852946 * x
                     : 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717 *
                           expm1(x);
    if (!strcmp(op, "Celu")) return x > 0 ? x : expm1(x);
    if (!strcmp(op, "Softplus")) return softplus_d(x);
    if (!strcmp(op, "Relu")) return x < 0 ? 0 : x;
    if (!strcmp(op, "LeakyRelu")) return x < 0 ? (double)0.01f * x : x;
    if (!strcmp(op, "Gelu")) return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    if (!strcmp(op, "Mish")) return x * tanh(softplus_d(x));
    if (!strcmp(op, "Exp")) return exp(x);
    return NAN;
}

static void test_unary_activations(void **unused) {
    (void)unused;
    static const char *const ops[] = {"Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu",
                                      "Selu",    "Celu", "Softplus",    "Relu",      "LeakyRelu",
                                      "Gelu",    "Mish", "Exp"};
    uint64_t seed = 7;
    for (size_t s = 0; s < CELER_ARRAY_LEN(sizes); s++) {
        int64_t n = sizes[s];
        float *x = malloc((size_t)n * sizeof *x);
        assert_non_null(x);
        tu_fill_random(x, (size_t)n, -12, 12, &seed);
        /* the branch points of the selects and the far tails */
        static const float special[] = {0.0f, -0.0f, 1e-8f, -1e-8f, 0.2f, -0.2f, 0.26f, -0.26f,
                                        -3.0f, 3.0f, 60.0f, -60.0f, 95.0f, -110.0f};
        for (size_t k = 0; k < CELER_ARRAY_LEN(special) && (int64_t)k < n; k++)
            x[(size_t)n - 1 - k] = special[k];
        celer_tensor t = TEN(CELER_FLOAT, x, n);
        for (size_t o = 0; o < CELER_ARRAY_LEN(ops); o++) {
            celer_tensor out[1];
            run_1_2(ops[o], 20, NOAT, IN(&t), out);
            const float *y = out[0].data;
            for (int64_t i = 0; i < n; i++) {
                double want = ref_unary(ops[o], x[i]);
                if (!strcmp(ops[o], "Exp") && fabs(x[i]) > 80) continue;
                /* Gelu's erf is within 1.5e-7 absolute: relative only where GELU is not tiny;
                 * the hard ones' x / 6 + 1/2 in float cancels near x = -3 */
                double abs = !strcmp(ops[o], "Gelu")          ? 1e-7 * fabs(x[i])
                             : !strncmp(ops[o], "Hard", 4) ? 3e-7 * (1 + fabs(x[i]))
                                                           : 1e-30;
                expect_close(ops[o], i, y[i], want, 4e-6, abs);
            }
            tu_free_outputs(out, 1);
        }
        free(x);
    }
}

/* ---- binary arithmetic with broadcasting ---- */

typedef struct bshape {
    int rank;
    int64_t a[4], b[4]; /* b right-aligned to a's rank (1 = broadcast) */
} bshape;

/* out[i] = a op b with numpy broadcasting, in double, for same-rank shapes. */
static void ref_binary(char op, const bshape *s, const float *a, const float *b, double *out) {
    int64_t dims[4], n = 1;
    for (int d = 0; d < s->rank; d++) n *= dims[d] = CELER_MAX(s->a[d], s->b[d]);
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int d = s->rank - 1; d >= 0; d--) {
            int64_t c = rem % dims[d];
            rem /= dims[d];
            if (s->a[d] != 1) ia += c * sa;
            if (s->b[d] != 1) ib += c * sb;
            sa *= s->a[d];
            sb *= s->b[d];
        }
        double x = a[ia], y = b[ib];
        out[i] = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : x / y;
    }
}

static void test_binary_broadcast(void **unused) {
    (void)unused;
    static const bshape fixed[] = {
        {1, {2100001}, {2100001}},          {1, {2100001}, {1}},
        {2, {2, 1050001}, {1, 1050001}},    {3, {3, 5, 140001}, {1, 5, 1}},
        {3, {3, 5, 140001}, {3, 1, 140001}}, {2, {1, 17}, {33, 1}},
        {4, {2, 3, 5, 7}, {1, 3, 1, 7}}, {2, {9, 1}, {1, 1}},
    };
    static const char opc[] = "+-*/";
    static const char *const names[] = {"Add", "Sub", "Mul", "Div"};
    uint64_t seed = 11;
    for (int c = 0; c < 40; c++) {
        bshape s;
        if (c < (int)CELER_ARRAY_LEN(fixed)) {
            s = fixed[c];
        } else { /* random rank 1-4, dims 1-9, some broadcast on either side */
            float r[9];
            tu_fill_random(r, 9, 0, 1, &seed);
            s.rank = 1 + (int)(r[0] * 4);
            for (int d = 0; d < s.rank; d++) {
                int64_t dim = 1 + (int64_t)(r[1 + d] * 9);
                s.a[d] = s.b[d] = dim;
                if (r[5 + d % 4] < 0.3f) s.a[d] = 1;
                else if (r[5 + d % 4] > 0.7f) s.b[d] = 1;
            }
        }
        int64_t na = 1, nb = 1, ny = 1;
        for (int d = 0; d < s.rank; d++) {
            na *= s.a[d];
            nb *= s.b[d];
            ny *= CELER_MAX(s.a[d], s.b[d]);
        }
        float *a = malloc((size_t)na * 4), *b = malloc((size_t)nb * 4);
        double *want = malloc((size_t)ny * 8);
        assert_true(a && b && want);
        tu_fill_random(a, (size_t)na, -4, 4, &seed);
        tu_fill_random(b, (size_t)nb, 0.5f, 4, &seed); /* no division by ~0 */
        celer_tensor ta = {CELER_FLOAT, {s.rank, {0}}, a}, tb = {CELER_FLOAT, {s.rank, {0}}, b};
        memcpy(ta.shape.dims, s.a, sizeof s.a);
        memcpy(tb.shape.dims, s.b, sizeof s.b);
        for (int o = 0; o < 4; o++) {
            celer_tensor out[1];
            run_1_2(names[o], 14, NOAT, IN(&ta, &tb), out);
            assert_int_equal(celer_shape_numel(&out[0].shape), ny);
            ref_binary(opc[o], &s, a, b, want);
            for (int64_t i = 0; i < ny; i++)
                expect_close(names[o], i, ((float *)out[0].data)[i], want[i], 1e-7, 0);
            tu_free_outputs(out, 1);
        }
        free(a);
        free(b);
        free(want);
    }
}

/* ---- Where, same shapes (one past the split) and broadcast ---- */

static void test_where(void **unused) {
    (void)unused;
    static const int64_t ns[] = {1, 17, 2100001};
    uint64_t seed = 17;
    for (size_t c = 0; c < CELER_ARRAY_LEN(ns); c++) {
        int64_t n = ns[c];
        float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
        uint8_t *cond = malloc((size_t)n);
        assert_true(a && b && r && cond);
        tu_fill_random(a, (size_t)n, -1, 1, &seed);
        tu_fill_random(b, (size_t)n, -1, 1, &seed);
        tu_fill_random(r, (size_t)n, 0, 1, &seed);
        for (int64_t i = 0; i < n; i++) cond[i] = r[i] < 0.5f;
        celer_tensor tc = TEN(CELER_BOOL, cond, n), ta = TEN(CELER_FLOAT, a, n),
                     tb = TEN(CELER_FLOAT, b, n), ts = TEN(CELER_FLOAT, b, 1);
        celer_tensor out[1];
        run_1_2("Where", 16, NOAT, IN(&tc, &ta, &tb), out);
        for (int64_t i = 0; i < n; i++)
            expect_close("Where", i, ((float *)out[0].data)[i], cond[i] ? a[i] : b[i], 0, 0);
        tu_free_outputs(out, 1);
        run_1_2("Where", 16, NOAT, IN(&tc, &ta, &ts), out); /* scalar else-branch */
        for (int64_t i = 0; i < n; i++)
            expect_close("Where", i, ((float *)out[0].data)[i], cond[i] ? a[i] : b[0], 0, 0);
        tu_free_outputs(out, 1);
        free(a);
        free(b);
        free(r);
        free(cond);
    }
}

/* ---- 1-D pools against the same pool as 2-D (the N-D loops) ---- */

static void test_pool1d(void **unused) {
    (void)unused;
    uint64_t seed = 3;
    for (int c = 0; c < 120; c++) {
        float r[10];
        tu_fill_random(r, 10, 0, 1, &seed);
        int64_t K = 1 + (int64_t)(r[0] * 5), st = 1 + (int64_t)(r[1] * 3);
        int64_t dil = 1 + (int64_t)(r[2] * 2), pl = (int64_t)(r[3] * (float)K),
                pr = (int64_t)(r[4] * (float)K);
        int64_t W = (K - 1) * dil + 1 + (int64_t)(r[5] * 40);
        int64_t planes = c % 10 == 0 ? 30000 : 1 + (int64_t)(r[6] * 5); /* some past 512K */
        int64_t ceil_mode = r[7] < 0.5f, incl = r[8] < 0.5f;
        bool is_max = r[9] < 0.5f;
        if (!is_max) dil = 1; /* AveragePool's dilations are opset 19 */
        if (!is_max && W < K) W = K;
        float *x = malloc((size_t)(planes * W) * 4);
        assert_non_null(x);
        tu_fill_random(x, (size_t)(planes * W), -5, 5, &seed);
        const char *op = is_max ? "MaxPool" : "AveragePool";
        celer_onnx_attr a1[] = {AINTS("kernel_shape", K), AINTS("strides", st),
                                AINTS("pads", pl, pr), AINTS("dilations", dil),
                                AINT("ceil_mode", ceil_mode), AINT("count_include_pad", incl)};
        celer_onnx_attr a2[] = {AINTS("kernel_shape", 1, K), AINTS("strides", 1, st),
                                AINTS("pads", 0, pl, 0, pr), AINTS("dilations", 1, dil),
                                AINT("ceil_mode", ceil_mode), AINT("count_include_pad", incl)};
        int nat = is_max ? 5 : 6;
        celer_tensor x1 = TEN(CELER_FLOAT, x, 1, planes, W);
        celer_tensor x2 = TEN(CELER_FLOAT, x, 1, planes, 1, W);
        celer_tensor y1[1], y2[1];
        run_1_2(op, 19, a1, nat, IN(&x1), y1);
        assert_int_equal(tu_run(op, 19, a2, nat, IN(&x2), y2, 1), CELER_OK);
        int64_t n = celer_shape_numel(&y2[0].shape);
        assert_int_equal(celer_shape_numel(&y1[0].shape), n);
        assert_int_equal(y1[0].shape.dims[2], y2[0].shape.dims[3]);
        for (int64_t i = 0; i < n; i++)
            expect_close(op, i, ((float *)y1[0].data)[i], ((float *)y2[0].data)[i],
                         is_max ? 0 : 1e-6, is_max ? 0 : 1e-6);
        tu_free_outputs(y1, 1);
        tu_free_outputs(y2, 1);
        free(x);
    }
}

/* ---- GlobalAveragePool ---- */

static void test_global_avg(void **unused) {
    (void)unused;
    static const int64_t shapes[][4] = {{1, 3, 1, 1},  {2, 5, 7, 7},   {1, 96, 112, 112},
                                        {1, 7, 1, 17}, {3, 1280, 7, 7}, {1, 2, 0, 5}};
    uint64_t seed = 5;
    for (size_t c = 0; c < CELER_ARRAY_LEN(shapes); c++) {
        const int64_t *d = shapes[c];
        int64_t planes = d[0] * d[1], isz = d[2] * d[3];
        float *x = malloc((size_t)(planes * isz + 1) * 4);
        assert_non_null(x);
        tu_fill_random(x, (size_t)(planes * isz), -3, 5, &seed);
        celer_tensor t = TEN(CELER_FLOAT, x, d[0], d[1], d[2], d[3]);
        celer_tensor out[1];
        run_1_2("GlobalAveragePool", 1, NOAT, IN(&t), out);
        for (int64_t p = 0; p < planes; p++) {
            double sum = 0;
            for (int64_t i = 0; i < isz; i++) sum += x[p * isz + i];
            expect_close("GlobalAveragePool", p, ((float *)out[0].data)[p], isz ? sum / isz : 0,
                         1e-6, 1e-6);
        }
        tu_free_outputs(out, 1);
        free(x);
    }
}

/* ---- LayerNormalization rows ---- */

static void test_layernorm_rows(void **unused) {
    (void)unused;
    static const int64_t shapes[][2] = {{1, 1}, {3, 17}, {1000, 77}, {700, 768}, {5, 33}};
    uint64_t seed = 9;
    for (size_t c = 0; c < CELER_ARRAY_LEN(shapes); c++) {
        int64_t rows = shapes[c][0], cols = shapes[c][1];
        float *x = malloc((size_t)(rows * cols) * 4), *w = malloc((size_t)cols * 4),
              *b = malloc((size_t)cols * 4);
        assert_true(x && w && b);
        tu_fill_random(x, (size_t)(rows * cols), -3, 5, &seed);
        tu_fill_random(w, (size_t)cols, 0.5f, 2, &seed);
        tu_fill_random(b, (size_t)cols, -1, 1, &seed);
        celer_tensor tx = TEN(CELER_FLOAT, x, rows, cols), tw = TEN(CELER_FLOAT, w, cols),
                     tb = TEN(CELER_FLOAT, b, cols);
        celer_tensor out[1];
        run_1_2("LayerNormalization", 17, AT(AINT("axis", -1)), IN(&tx, &tw, &tb), out);
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * cols;
            double m = 0, v = 0;
            for (int64_t i = 0; i < cols; i++) m += xr[i];
            m /= (double)cols;
            for (int64_t i = 0; i < cols; i++) v += (xr[i] - m) * (xr[i] - m);
            double inv = 1 / sqrt(v / (double)cols + 1e-5);
            for (int64_t i = 0; i < cols; i++)
                expect_close("LayerNormalization", r * cols + i,
                             ((float *)out[0].data)[r * cols + i], (xr[i] - m) * inv * w[i] + b[i],
                             1e-5, 1e-5);
        }
        tu_free_outputs(out, 1);
        free(x);
        free(w);
        free(b);
    }
}

/* ---- InstanceNormalization (the cloned statistics and affine passes) ---- */

static void test_instance_norm(void **unused) {
    (void)unused;
    static const int64_t shapes[][3] = {{1, 1, 1}, {2, 3, 17}, {1, 4, 3001}, {2, 5, 33}};
    uint64_t seed = 13;
    for (size_t c = 0; c < CELER_ARRAY_LEN(shapes); c++) {
        int64_t N = shapes[c][0], C = shapes[c][1], S = shapes[c][2];
        float *x = malloc((size_t)(N * C * S) * 4), *w = malloc((size_t)C * 4),
              *b = malloc((size_t)C * 4);
        assert_true(x && w && b);
        tu_fill_random(x, (size_t)(N * C * S), 2, 6, &seed); /* mean far from 0 */
        tu_fill_random(w, (size_t)C, 0.5f, 2, &seed);
        tu_fill_random(b, (size_t)C, -1, 1, &seed);
        celer_tensor tx = TEN(CELER_FLOAT, x, N, C, S), tw = TEN(CELER_FLOAT, w, C),
                     tb = TEN(CELER_FLOAT, b, C);
        celer_tensor out[1];
        run_1_2("InstanceNormalization", 6, NOAT, IN(&tx, &tw, &tb), out);
        for (int64_t p = 0; p < N * C; p++) {
            const float *xp = x + p * S;
            double m = 0, v = 0;
            for (int64_t i = 0; i < S; i++) m += xp[i];
            m /= (double)S;
            for (int64_t i = 0; i < S; i++) v += (xp[i] - m) * (xp[i] - m);
            double inv = 1 / sqrt(v / (double)S + 1e-5);
            for (int64_t i = 0; i < S; i++)
                expect_close("InstanceNormalization", p * S + i, ((float *)out[0].data)[p * S + i],
                             (xp[i] - m) * inv * w[p % C] + b[p % C], 1e-5, 1e-5);
        }
        tu_free_outputs(out, 1);
        free(x);
        free(w);
        free(b);
    }
}

/* celer_ops_div_by (the reciprocal estimate and a Newton step on AVX-512 and AVX2) against
 * division: lengths around the vector widths, denominators from 1 to e^80 (a sigmoid's), NaN in
 * either operand. */
static void test_div_by(void **unused) {
    (void)unused;
    static const int64_t lens[] = {0, 1, 7, 8, 9, 15, 16, 17, 33, 301};
    for (size_t l = 0; l < CELER_ARRAY_LEN(lens); l++) {
        int64_t n = lens[l];
        float *y = malloc(sizeof(float) * (size_t)(n + 1)), *d = malloc(sizeof(float) * (size_t)(n + 1));
        double *want = malloc(sizeof(double) * (size_t)(n + 1));
        assert_true(y && d && want);
        for (int64_t i = 0; i < n; i++) {
            y[i] = (float)((i * 37 % 101) - 50) * 0.37f;
            d[i] = 1.0f + expf((float)((i * 53 % 161) - 80)); /* 1 .. 1 + e^80 */
            want[i] = (double)y[i] / (double)d[i];
        }
        if (n > 3) y[1] = NAN, d[3] = NAN;
        celer_ops_div_by(y, d, n);
        for (int64_t i = 0; i < n; i++) {
            if (n > 3 && (i == 1 || i == 3)) {
                assert_true(isnan(y[i]));
                continue;
            }
            double err = fabs(y[i] - want[i]) / (fabs(want[i]) > 1e-30 ? fabs(want[i]) : 1.0);
            if (err > 3e-7) print_error("n=%lld i=%lld: over %g got %g, want %g\n", (long long)n, (long long)i,
                                        (double)d[i], (double)y[i], want[i]);
            assert_true(err <= 3e-7);
        }
        free(y), free(d), free(want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_activations), cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_pool1d),            cmocka_unit_test(test_global_avg),
        cmocka_unit_test(test_layernorm_rows),    cmocka_unit_test(test_instance_norm),
        cmocka_unit_test(test_where),             cmocka_unit_test(test_div_by),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
