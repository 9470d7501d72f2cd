/* misc family: DFT and STFT against a direct O(n^2) DFT (power-of-two and Bluestein lengths,
 * padding, truncation, onesided, inverse, axes, windows), the cosine-sum windows, MelWeightMatrix
 * (values from the ONNX reference algorithm), Det, StringNormalizer and TfIdfVectorizer, with
 * error paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    celer_onnx_attr attrs[12];
    int n;
} attrs_t;

static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s, .s_len = strlen(s)};
}
static void a_ints(attrs_t *a, const char *name, const int64_t *v, int n) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INTS, .n = n, .ints = v};
}
static void a_floats(attrs_t *a, const char *name, const float *v, int n) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_FLOATS, .n = n, .floats = v};
}
static void a_strs(attrs_t *a, const char *name, const char *const *v, int n) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRINGS, .n = n, .strings = tu_strs(v, (size_t)n)};
}

static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in) {
    static const char *const ins[] = {"a", "b", "c", "d", "e"};
    static const char *const outs[] = {"y"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in, .n_outputs = 1,
                             .n_attrs = a->n, .inputs = ins, .outputs = outs, .attrs = a->attrs};
}

static celer_tensor tens(celer_dtype t, int rank, const int64_t *dims, void *data) {
    celer_tensor x = {.dtype = t, .shape = {.rank = rank}, .data = data};
    if (rank) memcpy(x.shape.dims, dims, (size_t)rank * sizeof *dims);
    return x;
}

static double at(const celer_tensor *t, int64_t i) {
    return t->dtype == CELER_DOUBLE ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static void expect_close(const celer_tensor *got, const double *want, int64_t n, double tol, const char *what) {
    assert_int_equal(celer_shape_numel(&got->shape), n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(at(got, i) - want[i]) <= tol)) {
            print_error("%s[%lld]: got %.9g want %.9g\n", what, (long long)i, at(got, i), want[i]);
            fail();
        }
}

/* Direct DFT of n complex points (xr, xi), length-N transform with zero padding/truncation. */
static void naive_dft(const double *xr, const double *xi, int64_t n, int64_t N, bool inverse, double *yr,
                      double *yi) {
    for (int64_t k = 0; k < N; k++) {
        long double sr = 0, si = 0;
        for (int64_t j = 0; j < n && j < N; j++) {
            long double ang = (inverse ? 2 : -2) * 3.14159265358979323846264338327950288L * (long double)((k * j) % N) / N;
            sr += xr[j] * cosl(ang) - xi[j] * sinl(ang);
            si += xr[j] * sinl(ang) + xi[j] * cosl(ang);
        }
        yr[k] = (double)(inverse ? sr / N : sr);
        yi[k] = (double)(inverse ? si / N : si);
    }
}

/* ---- DFT ---- */

/* x: [outer, len, inner, comps] along `axis` = 1 of a rank-4 input (or rank-3 when inner == 0). */
static void check_dft(int64_t outer, int64_t len, int64_t inner, int64_t comps, int64_t dft_len, bool onesided,
                      bool inverse, bool axis_negative, celer_dtype t, uint64_t *seed) {
    int rank = inner ? 4 : 3;
    int64_t in_inner = inner ? inner : 1;
    int64_t n_in = outer * len * in_inner * comps;
    float *xf = malloc((size_t)n_in * 4);
    tu_fill_random(xf, (size_t)n_in, -1, 1, seed);
    void *xd = xf;
    if (t == CELER_DOUBLE) {
        double *d = malloc((size_t)n_in * 8);
        for (int64_t i = 0; i < n_in; i++) d[i] = xf[i];
        xd = d;
    }
    int64_t dims[4] = {outer, len, inner, comps};
    if (!inner) dims[2] = comps;
    celer_tensor x = tens(t, rank, dims, xd);
    int64_t dl = dft_len;
    celer_tensor tdl = tens(CELER_INT64, 0, NULL, &dl);
    attrs_t a = {0};
    a_int(&a, "axis", axis_negative ? 1 - rank : 1);
    if (onesided) a_int(&a, "onesided", 1);
    if (inverse) a_int(&a, "inverse", 1);
    const celer_tensor *in[] = {&x, dft_len ? &tdl : NULL};
    celer_onnx_node node = make_node("DFT", &a, 2);
    celer_tensor out[1];
    celer_status st = tu_run_op(&node, 17, in, 2, out, 1);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    int64_t N = dft_len ? dft_len : len, K = onesided ? N / 2 + 1 : N;
    assert_int_equal(out[0].shape.rank, rank);
    assert_int_equal(out[0].shape.dims[1], K);
    assert_int_equal(out[0].shape.dims[rank - 1], 2);
    double *xr = calloc((size_t)len + 1, 8), *xi = calloc((size_t)len + 1, 8), *yr = malloc((size_t)N * 8),
           *yi = malloc((size_t)N * 8);
    double *want = malloc((size_t)(outer * K * in_inner * 2) * 8);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < in_inner; i++) {
            for (int64_t j = 0; j < len; j++) {
                int64_t src = ((o * len + j) * in_inner + i) * comps;
                xr[j] = xf[src];
                xi[j] = comps == 2 ? xf[src + 1] : 0;
            }
            naive_dft(xr, xi, len, N, inverse, yr, yi);
            for (int64_t k = 0; k < K; k++) {
                int64_t dst = ((o * K + k) * in_inner + i) * 2;
                want[dst] = yr[k], want[dst + 1] = yi[k];
            }
        }
    double tol = (t == CELER_DOUBLE ? 1e-9 : 2e-5) * (inverse ? 1 : sqrt((double)N) + 1);
    expect_close(&out[0], want, outer * K * in_inner * 2, tol, "DFT");
    tu_free_outputs(out, 1);
    if (xd != xf) free(xd);
    free(xf), free(xr), free(xi), free(yr), free(yi), free(want);
}

static void test_dft(void **unused) {
    (void)unused;
    uint64_t seed = 11;
    static const int64_t lens[] = {1, 2, 3, 5, 8, 10, 12, 16, 17, 100, 127, 128};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        int64_t n = lens[i];
        check_dft(2, n, 0, 1, 0, false, false, false, CELER_FLOAT, &seed);
        check_dft(1, n, 3, 2, 0, false, false, true, CELER_FLOAT, &seed);
        check_dft(2, n, 2, 2, 0, false, true, false, CELER_FLOAT, &seed);
        check_dft(1, n, 0, 1, 0, true, false, false, CELER_FLOAT, &seed);
        check_dft(2, n, 0, 2, 0, false, false, false, CELER_DOUBLE, &seed);
    }
    /* dft_length pads and truncates */
    check_dft(2, 6, 0, 1, 16, false, false, false, CELER_FLOAT, &seed);
    check_dft(2, 20, 2, 2, 7, true, false, false, CELER_FLOAT, &seed);
    check_dft(1, 9, 0, 2, 9, false, true, false, CELER_DOUBLE, &seed);
    /* large Bluestein length keeps its accuracy */
    check_dft(1, 1000, 0, 2, 0, false, false, false, CELER_DOUBLE, &seed);
}

static void test_dft_roundtrip_and_errors(void **unused) {
    (void)unused;
    float x[2 * 12 * 2];
    uint64_t seed = 5;
    tu_fill_random(x, 48, -3, 3, &seed);
    celer_tensor tx = tens(CELER_FLOAT, 3, (int64_t[]){2, 12, 2}, x);
    attrs_t a = {0};
    celer_onnx_node node = make_node("DFT", &a, 1);
    const celer_tensor *in[] = {&tx};
    celer_tensor f[1], b[1];
    assert_int_equal(tu_run_op(&node, 17, in, 1, f, 1), CELER_OK);
    attrs_t ai = {0};
    a_int(&ai, "inverse", 1);
    celer_onnx_node inode = make_node("DFT", &ai, 1);
    const celer_tensor *fin[] = {&f[0]};
    assert_int_equal(tu_run_op(&inode, 17, fin, 1, b, 1), CELER_OK);
    for (int i = 0; i < 48; i++) assert_true(fabsf(((float *)b[0].data)[i] - x[i]) < 1e-5f);
    tu_free_outputs(f, 1), tu_free_outputs(b, 1);

    /* onesided with inverse is IRFFT: 12 complex bins give 22 real values; real input is refused */
    attrs_t e = {0};
    a_int(&e, "onesided", 1), a_int(&e, "inverse", 1);
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 1, f, 1), CELER_OK);
    assert_int_equal(f[0].shape.dims[1], 22);
    assert_int_equal(f[0].shape.dims[2], 1);
    tu_free_outputs(f, 1);
    celer_tensor treal = tens(CELER_FLOAT, 3, (int64_t[]){2, 24, 1}, x);
    const celer_tensor *inr[] = {&treal};
    assert_int_equal(tu_run_op(&node, 20, inr, 1, f, 1), CELER_ERR_SHAPE);
    /* flags other than 0 and 1, and the axis attribute at opset 20, are refused at init */
    e.n = 0, a_int(&e, "onesided", 2);
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 20, in, 1, f, 1), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "'onesided' value 2"));
    e.n = 0, a_int(&e, "axis", 1);
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 20, in, 1, f, 1), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "'axis'"));
    /* the complex axis, a bad last dim, a bad dft_length */
    e.n = 0, a_int(&e, "axis", 2);
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 1, f, 1), CELER_ERR_INVALID);
    e.n = 0, a_int(&e, "axis", 5);
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 1, f, 1), CELER_ERR_INVALID);
    tx.shape.dims[2] = 3;
    e.n = 0;
    node = make_node("DFT", &e, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 1, f, 1), CELER_ERR_SHAPE);
    tx.shape.dims[2] = 2;
    int64_t zero = 0;
    celer_tensor tz = tens(CELER_INT64, 0, NULL, &zero);
    const celer_tensor *in2[] = {&tx, &tz};
    node = make_node("DFT", &e, 2);
    assert_int_equal(tu_run_op(&node, 17, in2, 2, f, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "dft_length"));
    /* not served at opset 16 */
    assert_int_equal(tu_run_op(&node, 16, in2, 2, f, 1), CELER_ERR_UNSUPPORTED);
}

/* ---- STFT ---- */

static void check_stft(int64_t batch, int64_t len, int64_t comps, int64_t step, int64_t flen, bool window,
                       bool give_len, bool onesided, uint64_t *seed) {
    int64_t n = batch * len * comps;
    float *x = malloc((size_t)n * 4), *w = malloc((size_t)flen * 4);
    tu_fill_random(x, (size_t)n, -1, 1, seed);
    tu_fill_random(w, (size_t)flen, 0, 1, seed);
    celer_tensor tx = tens(CELER_FLOAT, 3, (int64_t[]){batch, len, comps}, x);
    celer_tensor tw = tens(CELER_FLOAT, 1, (int64_t[]){flen}, w);
    int32_t st32 = (int32_t)step;
    int64_t fl = flen;
    celer_tensor ts = tens(CELER_INT32, 0, NULL, &st32), tl = tens(CELER_INT64, 1, (int64_t[]){1}, &fl);
    attrs_t a = {0};
    if (!onesided) a_int(&a, "onesided", 0);
    const celer_tensor *in[] = {&tx, &ts, window ? &tw : NULL, give_len ? &tl : NULL};
    celer_onnx_node node = make_node("STFT", &a, 4);
    celer_tensor out[1];
    celer_status s = tu_run_op(&node, 17, in, 4, out, 1);
    if (s) print_error("%s\n", celer_error_message());
    assert_int_equal(s, CELER_OK);
    int64_t frames = (len - flen) / step + 1, K = onesided ? flen / 2 + 1 : flen;
    assert_int_equal(out[0].shape.rank, 4);
    assert_int_equal(out[0].shape.dims[1], frames);
    assert_int_equal(out[0].shape.dims[2], K);
    double *xr = malloc((size_t)flen * 8), *xi = malloc((size_t)flen * 8), *yr = malloc((size_t)flen * 8),
           *yi = malloc((size_t)flen * 8), *want = malloc((size_t)(batch * frames * K * 2) * 8);
    for (int64_t b = 0; b < batch; b++)
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t j = 0; j < flen; j++) {
                int64_t src = (b * len + f * step + j) * comps;
                double wv = window ? w[j] : 1;
                xr[j] = x[src] * wv;
                xi[j] = comps == 2 ? x[src + 1] * wv : 0;
            }
            naive_dft(xr, xi, flen, flen, false, yr, yi);
            for (int64_t k = 0; k < K; k++) {
                want[((b * frames + f) * K + k) * 2] = yr[k];
                want[((b * frames + f) * K + k) * 2 + 1] = yi[k];
            }
        }
    expect_close(&out[0], want, batch * frames * K * 2, 1e-4, "STFT");
    tu_free_outputs(out, 1);
    free(x), free(w), free(xr), free(xi), free(yr), free(yi), free(want);
}

static void test_stft(void **unused) {
    (void)unused;
    uint64_t seed = 3;
    check_stft(1, 128, 1, 8, 16, false, true, true, &seed);
    check_stft(2, 50, 1, 7, 12, true, false, true, &seed);
    check_stft(2, 33, 2, 4, 10, true, true, false, &seed);
    check_stft(1, 10, 1, 100, 10, false, true, true, &seed);

    float x[20] = {0}, w[4] = {1, 1, 1, 1};
    celer_tensor tx = tens(CELER_FLOAT, 3, (int64_t[]){1, 20, 1}, x), tw = tens(CELER_FLOAT, 1, (int64_t[]){4}, w);
    int64_t step = 2, fl = 5, zero = 0, big = 21;
    celer_tensor ts = tens(CELER_INT64, 0, NULL, &step), tl = tens(CELER_INT64, 0, NULL, &fl),
                 tz = tens(CELER_INT64, 0, NULL, &zero), tb = tens(CELER_INT64, 0, NULL, &big);
    attrs_t a = {0};
    celer_onnx_node node = make_node("STFT", &a, 4);
    celer_tensor out[1];
    /* window and frame_length disagree; neither given; zero step; frame longer than the signal */
    const celer_tensor *i1[] = {&tx, &ts, &tw, &tl};
    assert_int_equal(tu_run_op(&node, 17, i1, 4, out, 1), CELER_ERR_SHAPE);
    const celer_tensor *i2[] = {&tx, &ts, NULL, NULL};
    assert_int_equal(tu_run_op(&node, 17, i2, 4, out, 1), CELER_ERR_INVALID);
    const celer_tensor *i3[] = {&tx, &tz, NULL, &tl};
    assert_int_equal(tu_run_op(&node, 17, i3, 4, out, 1), CELER_ERR_INVALID);
    const celer_tensor *i4[] = {&tx, &ts, NULL, &tb};
    assert_int_equal(tu_run_op(&node, 17, i4, 4, out, 1), CELER_ERR_SHAPE);
}

/* ---- windows ---- */

static void test_windows(void **unused) {
    (void)unused;
    static const struct {
        const char *op;
        double a0, a1, a2;
    } defs[] = {{"HannWindow", 0.5, 0.5, 0}, {"HammingWindow", 25.0 / 46, 21.0 / 46, 0},
                {"BlackmanWindow", 0.42, 0.5, 0.08}};
    for (int d = 0; d < 3; d++)
        for (int periodic = 0; periodic < 2; periodic++)
            for (int64_t size = 0; size < 12; size += 5) {
                int32_t sz = (int32_t)size;
                celer_tensor ts = tens(CELER_INT32, 0, NULL, &sz);
                attrs_t a = {0};
                a_int(&a, "periodic", periodic);
                if (size == 10) a_int(&a, "output_datatype", CELER_DOUBLE);
                celer_onnx_node node = make_node(defs[d].op, &a, 1);
                const celer_tensor *in[] = {&ts};
                celer_tensor out[1];
                assert_int_equal(tu_run_op(&node, 17, in, 1, out, 1), CELER_OK);
                assert_int_equal(out[0].dtype, size == 10 ? CELER_DOUBLE : CELER_FLOAT);
                double want[16];
                double N = (double)(periodic ? size : size - 1);
                for (int64_t i = 0; i < size; i++) {
                    double x = 2 * M_PI * (double)i / N;
                    want[i] = defs[d].a0 - defs[d].a1 * cos(x) + defs[d].a2 * cos(2 * x);
                }
                expect_close(&out[0], want, size, 1e-6, defs[d].op);
                tu_free_outputs(out, 1);
            }
    /* ONNX test data: periodic Hann of 10 */
    int64_t ten = 10;
    celer_tensor t10 = tens(CELER_INT64, 0, NULL, &ten);
    attrs_t a = {0};
    celer_onnx_node node = make_node("HannWindow", &a, 1);
    const celer_tensor *in[] = {&t10};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 17, in, 1, out, 1), CELER_OK);
    static const double hann10[6] = {0, 0.09548607, 0.3454739, 0.654482, 0.9044867, 1};
    assert_int_equal(out[0].shape.dims[0], 10);
    /* the ONNX data was computed in float: 1e-4 */
    for (int i = 0; i < 6; i++) assert_true(fabs(at(&out[0], i) - hann10[i]) < 1e-4);
    tu_free_outputs(out, 1);
    /* errors: negative size, bad output type, float size */
    int64_t neg = -1;
    celer_tensor tn = tens(CELER_INT64, 0, NULL, &neg);
    const celer_tensor *inn[] = {&tn};
    assert_int_equal(tu_run_op(&node, 17, inn, 1, out, 1), CELER_ERR_INVALID);
    a_int(&a, "output_datatype", CELER_STRING);
    node = make_node("HannWindow", &a, 1);
    assert_int_equal(tu_run_op(&node, 17, in, 1, out, 1), CELER_ERR_UNSUPPORTED);
}

/* ---- MelWeightMatrix ---- */

/* from the ONNX reference algorithm (num_mel_bins 4, dft_length 64, sample_rate 16000,
 * 300 Hz to 6000 Hz) */
static const double mel_want[132] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 1, 0, 0, 0, 0.66666667, 0.33333333, 0, 0,
    0.33333333, 0.66666667, 0, 0, 0, 1, 0, 0, 0, 0.75, 0.25, 0, 0, 0.5, 0.5, 0, 0, 0.25, 0.75, 0, 0,
    0, 1, 0, 0, 0, 0.8, 0, 0, 0, 0.6, 0, 0, 0, 0.4, 0, 0, 0, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static void test_melweightmatrix(void **unused) {
    (void)unused;
    int64_t bins = 4, dft = 64, rate = 16000;
    float lo = 300, hi = 6000;
    celer_tensor t0 = tens(CELER_INT64, 0, NULL, &bins), t1 = tens(CELER_INT64, 0, NULL, &dft),
                 t2 = tens(CELER_INT64, 0, NULL, &rate), t3 = tens(CELER_FLOAT, 0, NULL, &lo),
                 t4 = tens(CELER_FLOAT, 0, NULL, &hi);
    attrs_t a = {0};
    celer_onnx_node node = make_node("MelWeightMatrix", &a, 5);
    const celer_tensor *in[] = {&t0, &t1, &t2, &t3, &t4};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 17, in, 5, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.dims[0], 33);
    assert_int_equal(out[0].shape.dims[1], 4);
    expect_close(&out[0], mel_want, 132, 1e-6, "mel");
    tu_free_outputs(out, 1);
    /* upper edge far above Nyquist: rows past the spectrum are dropped, not written */
    hi = 40000;
    assert_int_equal(tu_run_op(&node, 17, in, 5, out, 1), CELER_OK);
    tu_free_outputs(out, 1);
    /* lower >= upper, zero bins */
    hi = 100;
    assert_int_equal(tu_run_op(&node, 17, in, 5, out, 1), CELER_ERR_INVALID);
    hi = 6000, bins = 0;
    assert_int_equal(tu_run_op(&node, 17, in, 5, out, 1), CELER_ERR_INVALID);
}

/* ---- Det ---- */

static double det_naive(const double *m, int n) {
    if (n == 1) return m[0];
    double s = 0, sub[64];
    for (int c = 0; c < n; c++) {
        for (int i = 1; i < n; i++)
            for (int j = 0, k = 0; j < n; j++)
                if (j != c) sub[(i - 1) * (n - 1) + k++] = m[i * n + j];
        s += (c % 2 ? -1 : 1) * m[c] * det_naive(sub, n - 1);
    }
    return s;
}

static void test_det(void **unused) {
    (void)unused;
    /* the ONNX cases, a permutation needing a pivot, a singular matrix */
    float x[] = {1, 2, 3, 4, 1, 2, 2, 1, 1, 3, 3, 1, 0, 1, 1, 0, 1, 2, 2, 4};
    celer_tensor t = tens(CELER_FLOAT, 3, (int64_t[]){5, 2, 2}, x);
    attrs_t a = {0};
    celer_onnx_node node = make_node("Det", &a, 1);
    const celer_tensor *in[] = {&t};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.rank, 1);
    expect_close(&out[0], (double[]){-2, -3, -8, -1, 0}, 5, 1e-6, "det");
    tu_free_outputs(out, 1);
    /* random 4x4 and 5x5 batches, float and double, against cofactor expansion */
    uint64_t seed = 9;
    for (int n = 1; n <= 5; n++) {
        float m[3 * 25];
        tu_fill_random(m, (size_t)(3 * n * n), -2, 2, &seed);
        double md[3 * 25], want[3];
        for (int i = 0; i < 3 * n * n; i++) md[i] = m[i];
        for (int b = 0; b < 3; b++) want[b] = det_naive(md + b * n * n, n);
        celer_tensor tf = tens(CELER_FLOAT, 3, (int64_t[]){3, n, n}, m);
        celer_tensor td = tens(CELER_DOUBLE, 4, (int64_t[]){1, 3, n, n}, md);
        const celer_tensor *i1[] = {&tf}, *i2[] = {&td};
        assert_int_equal(tu_run_op(&node, 11, i1, 1, out, 1), CELER_OK);
        expect_close(&out[0], want, 3, 1e-4, "det f32");
        tu_free_outputs(out, 1);
        assert_int_equal(tu_run_op(&node, 11, i2, 1, out, 1), CELER_OK);
        assert_int_equal(out[0].shape.rank, 2);
        expect_close(&out[0], want, 3, 1e-9, "det f64");
        tu_free_outputs(out, 1);
    }
    /* non-square */
    t.shape = (celer_shape){.rank = 2, .dims = {2, 3}};
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_ERR_SHAPE);
}

/* ---- StringNormalizer: run by hand, because the output strings live in the kernel's
 * per-context local, which tu_run_op frees before returning ---- */

typedef struct str_run {
    const celer_kernel *k;
    celer_op_info info;
    celer_dtype types[1];
    const celer_tensor *consts[1];
    void *state, *local;
    celer_tensor out;
} str_run;

static celer_status strnorm_run(str_run *r, const celer_onnx_node *node, const celer_tensor *x) {
    memset(r, 0, sizeof *r);
    r->types[0] = CELER_STRING;
    r->info = (celer_op_info){.node = node, .opset = 10, .n_inputs = 1, .n_outputs = 1,
                              .input_types = r->types, .input_constants = r->consts};
    r->k = celer_ops_find("", "StringNormalizer", 10, r->types, 1);
    assert_non_null(r->k);
    r->info.since_version = r->k->since;
    celer_status st = r->k->init(&r->info, &r->state);
    if (st) return st;
    r->out.dtype = CELER_STRING;
    const celer_tensor *in[] = {x};
    celer_kernel_call call = {.info = &r->info, .state = r->state, .local = &r->local, .in = in, .n_in = 1,
                              .out = &r->out, .n_out = 1};
    if ((st = r->k->reshape(&call))) return st;
    r->out.data = calloc((size_t)celer_shape_numel(&r->out.shape) + 1, sizeof(celer_str));
    return r->k->run(&call);
}

static void strnorm_done(str_run *r) {
    free(r->out.data);
    if (r->local) r->k->free_local(r->local);
    if (r->state) r->k->free_state(r->state);
}

static void test_strnormalizer(void **unused) {
    (void)unused;
    char *words[] = {"Monday", "tuesday", "MONDAY", "Straße", "monday"};
    celer_tensor x = tens(CELER_STRING, 2, (int64_t[]){1, 5}, tu_strs((const char *const *)words, CELER_ARRAY_LEN(words)));
    const char *stop[] = {"monday"};
    static const struct {
        const char *action;
        int sensitive;
        int n;
        const char *want[5];
    } cases[] = {
        {"UPPER", 0, 2, {"TUESDAY", "STRAßE"}},
        {"LOWER", 1, 4, {"monday", "tuesday", "monday", "straße"}},
        {"NONE", 1, 4, {"Monday", "tuesday", "MONDAY", "Straße"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attrs_t a = {0};
        a_str(&a, "case_change_action", cases[c].action);
        a_int(&a, "is_case_sensitive", cases[c].sensitive);
        a_strs(&a, "stopwords", stop, 1);
        a_str(&a, "locale", "en_US");
        celer_onnx_node node = make_node("StringNormalizer", &a, 1);
        str_run r;
        assert_int_equal(strnorm_run(&r, &node, &x), CELER_OK);
        assert_int_equal(r.out.shape.rank, 2);
        assert_int_equal(r.out.shape.dims[0], 1);
        assert_int_equal(r.out.shape.dims[1], cases[c].n);
        for (int i = 0; i < cases[c].n; i++) assert_string_equal(((const celer_str *)r.out.data)[i].data, cases[c].want[i]);
        strnorm_done(&r);
    }
    /* everything dropped: one empty string, [1] for 1-D input */
    char *mondays[] = {"monday", "MonDay"};
    celer_tensor m = tens(CELER_STRING, 1, (int64_t[]){2}, tu_strs((const char *const *)mondays, CELER_ARRAY_LEN(mondays)));
    attrs_t a = {0};
    a_strs(&a, "stopwords", stop, 1);
    celer_onnx_node node = make_node("StringNormalizer", &a, 1);
    str_run r;
    assert_int_equal(strnorm_run(&r, &node, &m), CELER_OK);
    assert_int_equal(r.out.shape.rank, 1);
    assert_int_equal(r.out.shape.dims[0], 1);
    assert_string_equal(((const celer_str *)r.out.data)[0].data, "");
    strnorm_done(&r);
    /* strings are bytes with a length: "monday\0x" is not the stopword "monday", and is kept whole */
    celer_str nul[] = {TU_LIT("monday\0x"), TU_LIT("MONDAY"), TU_LIT("a\0B")};
    celer_tensor tn = tens(CELER_STRING, 1, (int64_t[]){3}, nul);
    attrs_t an = {0};
    a_strs(&an, "stopwords", stop, 1);
    a_str(&an, "case_change_action", "UPPER");
    node = make_node("StringNormalizer", &an, 1);
    assert_int_equal(strnorm_run(&r, &node, &tn), CELER_OK);
    assert_int_equal(r.out.shape.dims[0], 2);
    TU_ASSERT_STR(&r.out, 0, TU_LIT("MONDAY\0X"));
    TU_ASSERT_STR(&r.out, 1, TU_LIT("A\0B"));
    strnorm_done(&r);
    /* [2, C] is refused; so is an unknown action */
    celer_tensor bad = tens(CELER_STRING, 2, (int64_t[]){2, 2}, tu_strs((const char *const *)words, CELER_ARRAY_LEN(words)));
    assert_int_equal(strnorm_run(&r, &node, &bad), CELER_ERR_SHAPE);
    strnorm_done(&r);
    a_str(&a, "case_change_action", "TITLE");
    node = make_node("StringNormalizer", &a, 1);
    assert_int_equal(strnorm_run(&r, &node, &m), CELER_ERR_INVALID);
    strnorm_done(&r);
}

/* ---- TfIdfVectorizer ---- */

static void test_tfidf_ints(void **unused) {
    (void)unused;
    int32_t x[] = {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8};
    static const int64_t counts[] = {0, 4}, idx[] = {0, 1, 2, 3, 4, 5, 6};
    static const int64_t pool[] = {2, 3, 5, 4, 5, 6, 7, 8, 6, 7};
    static const struct {
        int64_t min_n, max_n, skip;
        float want[7];
    } cases[] = {
        {2, 2, 0, {0, 0, 0, 0, 1, 1, 1}},
        {2, 2, 5, {0, 0, 0, 0, 1, 3, 1}},
        {1, 2, 5, {0, 3, 1, 0, 1, 3, 1}},
        {1, 1, 3, {0, 3, 1, 0, 0, 0, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (int rows = 1; rows <= 2; rows++) {
            attrs_t a = {0};
            a_int(&a, "min_gram_length", cases[c].min_n);
            a_int(&a, "max_gram_length", cases[c].max_n);
            a_int(&a, "max_skip_count", cases[c].skip);
            a_str(&a, "mode", "TF");
            a_ints(&a, "ngram_counts", counts, 2);
            a_ints(&a, "ngram_indexes", idx, 7);
            a_ints(&a, "pool_int64s", pool, 10);
            celer_onnx_node node = make_node("TfIdfVectorizer", &a, 1);
            celer_tensor t = rows == 1 ? tens(CELER_INT32, 1, (int64_t[]){12}, x)
                                       : tens(CELER_INT32, 2, (int64_t[]){2, 6}, x);
            const celer_tensor *in[] = {&t};
            celer_tensor out[1];
            assert_int_equal(tu_run_op(&node, 9, in, 1, out, 1), CELER_OK);
            assert_int_equal(out[0].dtype, CELER_FLOAT);
            if (rows == 1) {
                double want[7];
                for (int i = 0; i < 7; i++) want[i] = cases[c].want[i];
                expect_close(&out[0], want, 7, 0, "tf");
            } else {
                assert_int_equal(out[0].shape.dims[0], 2);
                assert_int_equal(out[0].shape.dims[1], 7);
            }
            tu_free_outputs(out, 1);
        }
    /* the ONNX batch case: rows do not see each other's n-grams */
    attrs_t a = {0};
    a_int(&a, "min_gram_length", 1), a_int(&a, "max_gram_length", 2), a_int(&a, "max_skip_count", 5);
    a_str(&a, "mode", "TF");
    a_ints(&a, "ngram_counts", counts, 2), a_ints(&a, "ngram_indexes", idx, 7), a_ints(&a, "pool_int64s", pool, 10);
    celer_onnx_node node = make_node("TfIdfVectorizer", &a, 1);
    celer_tensor t = tens(CELER_INT32, 2, (int64_t[]){2, 6}, x);
    const celer_tensor *in[] = {&t};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 9, in, 1, out, 1), CELER_OK);
    expect_close(&out[0], (double[]){0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1}, 14, 0, "tf batch");
    tu_free_outputs(out, 1);
}

static void test_tfidf_strings_and_modes(void **unused) {
    (void)unused;
    char *x[] = {"the", "cat", "sat", "on", "the", "cat", "mat", "the"};
    celer_tensor t = tens(CELER_STRING, 1, (int64_t[]){8}, tu_strs((const char *const *)x, CELER_ARRAY_LEN(x)));
    static const char *const pool[] = {"the", "cat", "dog", "the", "cat", "cat", "sat"};
    static const int64_t counts[] = {0, 3}, idx[] = {4, 0, 3, 1, 2};
    static const float weights[] = {0.5f, 2.0f, 3.0f, 0.25f, 4.0f};
    /* counts by pool n-gram: the 3, cat 2, dog 0, "the cat" 2, "cat sat" 1 */
    static const struct {
        const char *mode;
        bool weighted;
        double want[5];
    } cases[] = {
        {"TF", false, {2, 2, 1, 0, 3}},
        {"IDF", false, {1, 1, 1, 0, 1}},
        {"IDF", true, {2, 0.25, 4, 0, 0.5}},
        {"TFIDF", true, {4, 0.5, 4, 0, 1.5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        attrs_t a = {0};
        a_int(&a, "min_gram_length", 1), a_int(&a, "max_gram_length", 2), a_int(&a, "max_skip_count", 0);
        a_str(&a, "mode", cases[c].mode);
        a_ints(&a, "ngram_counts", counts, 2), a_ints(&a, "ngram_indexes", idx, 5);
        a_strs(&a, "pool_strings", pool, 7);
        if (cases[c].weighted) a_floats(&a, "weights", weights, 5);
        celer_onnx_node node = make_node("TfIdfVectorizer", &a, 1);
        const celer_tensor *in[] = {&t};
        celer_tensor out[1];
        celer_status st = tu_run_op(&node, 9, in, 1, out, 1);
        if (st) print_error("%s\n", celer_error_message());
        assert_int_equal(st, CELER_OK);
        expect_close(&out[0], cases[c].want, 5, 1e-6, cases[c].mode);
        tu_free_outputs(out, 1);
    }
}

static void test_tfidf_errors(void **unused) {
    (void)unused;
    int64_t xv[] = {1, 2, 3};
    celer_tensor t = tens(CELER_INT64, 1, (int64_t[]){3}, xv);
    const celer_tensor *in[] = {&t};
    celer_tensor out[1];
    static const int64_t pool[] = {1, 2, 3, 4, 5};
    static const int64_t good_counts[] = {0, 3}, bad_counts[] = {0, 2}, idx[] = {0, 1, 2, 3};
    static const char *const spool[] = {"a"};
    static const float w[] = {1, 2};
    for (int c = 0; c < 6; c++) {
        attrs_t a = {0};
        a_int(&a, "min_gram_length", c == 5 ? 3 : 1), a_int(&a, "max_gram_length", 2);
        a_str(&a, "mode", c == 0 ? "BM25" : "TF");
        a_ints(&a, "ngram_counts", c == 1 ? bad_counts : good_counts, 2);
        a_ints(&a, "ngram_indexes", idx, c == 2 ? 3 : 4);
        if (c == 3)
            a_strs(&a, "pool_strings", spool, 1);
        else
            a_ints(&a, "pool_int64s", pool, 5);
        if (c == 4) a_floats(&a, "weights", w, 2);
        celer_onnx_node node = make_node("TfIdfVectorizer", &a, 1);
        celer_status st = tu_run_op(&node, 9, in, 1, out, 1);
        assert_int_not_equal(st, CELER_OK);
    }
    /* rank-3 input */
    attrs_t a = {0};
    a_int(&a, "min_gram_length", 1), a_int(&a, "max_gram_length", 1), a_str(&a, "mode", "TF");
    a_ints(&a, "ngram_counts", good_counts, 1), a_ints(&a, "ngram_indexes", idx, 3), a_ints(&a, "pool_int64s", pool, 3);
    celer_onnx_node node = make_node("TfIdfVectorizer", &a, 1);
    t.shape = (celer_shape){.rank = 3, .dims = {1, 1, 3}};
    assert_int_equal(tu_run_op(&node, 9, in, 1, out, 1), CELER_ERR_SHAPE);
    t.shape = (celer_shape){.rank = 1, .dims = {3}};
    assert_int_equal(tu_run_op(&node, 9, in, 1, out, 1), CELER_OK);
    expect_close(&out[0], (double[]){1, 1, 1}, 3, 0, "unigrams");
    tu_free_outputs(out, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dft),
        cmocka_unit_test(test_dft_roundtrip_and_errors),
        cmocka_unit_test(test_stft),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_melweightmatrix),
        cmocka_unit_test(test_det),
        cmocka_unit_test(test_strnormalizer),
        cmocka_unit_test(test_tfidf_ints),
        cmocka_unit_test(test_tfidf_strings_and_modes),
        cmocka_unit_test(test_tfidf_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
