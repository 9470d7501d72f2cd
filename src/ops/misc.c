/* misc: signal processing (DFT, STFT, the cosine-sum windows, MelWeightMatrix), Det, and the text
 * operators StringNormalizer and TfIdfVectorizer.
 *
 * Transforms compute in double in scratch: a radix-2 FFT for power-of-two lengths and Bluestein's
 * chirp-z algorithm (three power-of-two FFTs) for other lengths, so every length is O(n log n).
 * StringNormalizer's output strings live in a per-context buffer (`*call->local`), valid until the
 * node runs again in that context. Einsum lives in reduce.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Scratch or output bigger than this is refused (sizes come from input values). */
#define MAX_BYTES CELER_OPS_MAX_BYTES
/* Longest transform accepted: 2^30 points (Bluestein's work arrays are 4x that). */
#define MAX_FFT (INT64_C(1) << 30)

static celer_status need_in(const celer_kernel_call *c, int i, const char *name) {
    if (!celer_ops_input(c, i)) return celer_ops_error(c->info, CELER_ERR_INVALID, "input '%s' is required", name);
    return CELER_OK;
}

/* Reads a scalar (rank 0 or one element) integer input. */
static celer_status scalar_int(const celer_kernel_call *c, int i, const char *name, int64_t *v) {
    const celer_tensor *t = c->in[i];
    if (t->dtype != CELER_INT32 && t->dtype != CELER_INT64)
        return celer_ops_error(c->info, CELER_ERR_DTYPE, "input '%s' must be int32 or int64, got %s", name,
                      celer_dtype_name(t->dtype));
    if (celer_shape_numel(&t->shape) != 1 || t->shape.rank > 1) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input '%s' must be a scalar, got shape %s", name,
                      celer_shape_str(&t->shape, b, sizeof b));
    }
    *v = celer_ops_int_at(t, 0);
    return CELER_OK;
}

static celer_status scalar_float(const celer_kernel_call *c, int i, const char *name, double *v) {
    const celer_tensor *t = c->in[i];
    if (celer_shape_numel(&t->shape) != 1 || t->shape.rank > 1 || t->dtype == CELER_STRING) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input '%s' must be a numeric scalar, got %s %s",
                      name, celer_dtype_name(t->dtype), celer_shape_str(&t->shape, b, sizeof b));
    }
    *v = celer_ops_double_at(t, 0);
    return CELER_OK;
}

/* Refuses outputs whose byte size overflows or passes MAX_BYTES. */
static celer_status check_out(const celer_kernel_call *c, int i) {
    int64_t n = celer_shape_numel(&c->out[i].shape);
    size_t bytes;
    if (n < 0 || celer_mul_size((size_t)n, CELER_MAX(celer_dtype_size(c->out[i].dtype), 1), &bytes) ||
        bytes > MAX_BYTES) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output shape %s is too large",
                      celer_shape_str(&c->out[i].shape, b, sizeof b));
    }
    return CELER_OK;
}

/* Scratch carved in 64-byte aligned pieces; with base NULL only the size is computed (reshape). */
/* Output element types allowed by output_datatype (windows, MelWeightMatrix). */
#define DTS_WINDOW_OUT (CELER_DTS_NUMERIC | CELER_DT(CELER_BFLOAT16))

static celer_status infer_output_datatype(const celer_op_info *info, celer_dtype *out) {
    int64_t t = celer_onnx_attr_int(info->node, "output_datatype", CELER_FLOAT);
    if (t <= 0 || t >= CELER_DTYPE_COUNT || !(DTS_WINDOW_OUT & CELER_DT(t)))
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "output_datatype %lld is not a supported numeric type",
                      (long long)t);
    out[0] = (celer_dtype)t;
    return CELER_OK;
}

static celer_status infer_float(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs; i++) out[i] = CELER_FLOAT;
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* FFT engine: complex values interleaved (re, im) in double                                   */

static bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

static int64_t next_pow2(int64_t n) {
    int64_t m = 1;
    while (m < n) m <<= 1;
    return m;
}

/* Work arrays of one transform length n: tw holds exp(-2πi k/m) for the power-of-two length m
 * used (n itself, or Bluestein's m >= 2n - 1); Bluestein also keeps its chirp and the transform
 * of the conjugate chirp (the convolution kernel) and a work vector. */
typedef struct fft_plan {
    int64_t n, m;
    double *tw;    /* [m / 2] complex */
    double *chirp; /* [n] complex: exp(-πi k²/n)   (Bluestein only) */
    double *kern;  /* [m] complex: FFT of conj(chirp) wrapped (Bluestein only) */
    double *work;  /* [m] complex (Bluestein only) */
} fft_plan;

/* Carves the plan's arrays (sizes only when cv->base is NULL). */
static void fft_carve(fft_plan *p, int64_t n, celer_ops_carve *cv) {
    p->n = n;
    p->m = is_pow2(n) ? n : next_pow2(2 * n - 1);
    p->tw = celer_ops_carve_elems(cv, p->m, sizeof(double)); /* m/2 complex = m doubles */
    if (!is_pow2(n)) {
        p->chirp = celer_ops_carve_elems(cv, 2 * n, sizeof(double));
        p->kern = celer_ops_carve_elems(cv, 2 * p->m, sizeof(double));
        p->work = celer_ops_carve_elems(cv, 2 * p->m, sizeof(double));
    }
}

/* In-place radix-2 transform of m points; inverse uses conjugate twiddles (no scaling). */
static void fft_pow2(const fft_plan *p, double *a, bool inverse) {
    const int64_t m = p->m;
    for (int64_t i = 1, j = 0; i < m; i++) {
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double tr = a[2 * i], ti = a[2 * i + 1];
            a[2 * i] = a[2 * j], a[2 * i + 1] = a[2 * j + 1];
            a[2 * j] = tr, a[2 * j + 1] = ti;
        }
    }
    for (int64_t len = 2; len <= m; len <<= 1) {
        int64_t half = len / 2, step = m / len;
        for (int64_t s = 0; s < m; s += len)
            for (int64_t k = 0; k < half; k++) {
                double wr = p->tw[2 * k * step], wi = p->tw[2 * k * step + 1];
                if (inverse) wi = -wi;
                double *u = a + 2 * (s + k), *v = a + 2 * (s + k + half);
                double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
                v[0] = u[0] - vr, v[1] = u[1] - vi;
                u[0] += vr, u[1] += vi;
            }
    }
}

/* Fills the plan's tables (run time). */
static void fft_prepare(fft_plan *p) {
    const int64_t m = p->m, n = p->n;
    for (int64_t k = 0; k < m / 2; k++) {
        double ang = -2.0 * M_PI * (double)k / (double)m;
        p->tw[2 * k] = cos(ang), p->tw[2 * k + 1] = sin(ang);
    }
    if (is_pow2(n)) return;
    for (int64_t k = 0; k < n; k++) {
        /* k² mod 2n keeps the angle accurate for large k */
        int64_t q = (int64_t)(((unsigned __int128)k * (unsigned __int128)k) % (unsigned __int128)(2 * n));
        double ang = -M_PI * (double)q / (double)n;
        p->chirp[2 * k] = cos(ang), p->chirp[2 * k + 1] = sin(ang);
    }
    memset(p->kern, 0, (size_t)(2 * m) * sizeof(double));
    for (int64_t k = 0; k < n; k++) {
        double re = p->chirp[2 * k], im = -p->chirp[2 * k + 1];
        p->kern[2 * k] = re, p->kern[2 * k + 1] = im;
        if (k) p->kern[2 * (m - k)] = re, p->kern[2 * (m - k) + 1] = im;
    }
    fft_pow2(p, p->kern, false);
}

/* In-place DFT of a[0..n) (complex), forward or inverse, unscaled. */
static void fft_run(const fft_plan *p, double *a, bool inverse) {
    const int64_t n = p->n, m = p->m;
    if (is_pow2(n)) {
        fft_pow2(p, a, inverse);
        return;
    }
    /* Bluestein: X_k = c_k Σ (x_j c_j) conj(c_{k-j}), c_j = exp(∓πi j²/n). The inverse uses the
     * conjugate chirp; conjugating input and output of the forward transform gives the same. */
    double *w = p->work;
    for (int64_t j = 0; j < n; j++) {
        double xr = a[2 * j], xi = inverse ? -a[2 * j + 1] : a[2 * j + 1];
        double cr = p->chirp[2 * j], ci = p->chirp[2 * j + 1];
        w[2 * j] = xr * cr - xi * ci, w[2 * j + 1] = xr * ci + xi * cr;
    }
    memset(w + 2 * n, 0, (size_t)(2 * (m - n)) * sizeof(double));
    fft_pow2(p, w, false);
    for (int64_t j = 0; j < m; j++) {
        double ar = w[2 * j], ai = w[2 * j + 1], br = p->kern[2 * j], bi = p->kern[2 * j + 1];
        w[2 * j] = ar * br - ai * bi, w[2 * j + 1] = ar * bi + ai * br;
    }
    fft_pow2(p, w, true);
    for (int64_t k = 0; k < n; k++) {
        double yr = w[2 * k] / (double)m, yi = w[2 * k + 1] / (double)m;
        double cr = p->chirp[2 * k], ci = p->chirp[2 * k + 1];
        double re = yr * cr - yi * ci, im = yr * ci + yi * cr;
        a[2 * k] = re, a[2 * k + 1] = inverse ? -im : im;
    }
}

/* Typed element access for float transforms. */
static inline double ld(const celer_tensor *t, int64_t i) {
    if (t->dtype == CELER_FLOAT) return ((const float *)t->data)[i];
    if (t->dtype == CELER_DOUBLE) return ((const double *)t->data)[i];
    return celer_ops_double_at(t, i);
}

static inline void st(celer_tensor *t, int64_t i, double v) {
    if (t->dtype == CELER_FLOAT)
        ((float *)t->data)[i] = (float)v;
    else if (t->dtype == CELER_DOUBLE)
        ((double *)t->data)[i] = v;
    else
        celer_ops_double_store(t, i, v);
}

/* ------------------------------------------------------------------------------------------ */
/* DFT (opset 17, 20): input [signal dims..., 1 | 2], optional dft_length; the axis is an
 * attribute (default 1) at 17 and input 2 (default -2) from 20. onesided with inverse is IRFFT:
 * one-sided complex bins in, a real signal of dft_length (default 2 * (bins - 1)) out.         */

typedef struct dft_geom {
    int axis;
    int64_t outer, len, inner, comps; /* input viewed as [outer, len, inner, comps] */
    int64_t n, k;                     /* transform length, output length along axis */
    bool inverse, irfft;
} dft_geom;

/* inverse and onesided are flags; other values are refused at load rather than read as 1. */
static celer_status dft_flag(const celer_op_info *info, const char *name, bool *v) {
    int64_t f = celer_onnx_attr_int(info->node, name, 0);
    if (f != 0 && f != 1)
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "attribute '%s' value %lld is not 0 or 1", name,
                               (long long)f);
    *v = f != 0;
    return CELER_OK;
}

/* init: checks the attributes at load (no state). From opset 20 the axis is input 2: an 'axis'
 * attribute there would be silently ignored, so it is refused. */
static celer_status dft_init(const celer_op_info *info, void **state) {
    bool f;
    (void)state;
    CELER_TRY(dft_flag(info, "inverse", &f));
    CELER_TRY(dft_flag(info, "onesided", &f));
    if (info->since_version >= 20 && celer_onnx_attr_find(info->node, "axis"))
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                               "attribute 'axis' is not part of DFT at opset %d: the axis is input 2 since opset 20",
                               info->opset);
    return CELER_OK;
}

static celer_status dft_geom_of(const celer_kernel_call *c, dft_geom *g) {
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0];
    const celer_shape *s = &x->shape;
    char b[200];
    bool onesided = false;
    CELER_TRY(dft_flag(info, "onesided", &onesided));
    CELER_TRY(dft_flag(info, "inverse", &g->inverse));
    g->irfft = onesided && g->inverse;
    if (s->rank < 2 || (s->dims[s->rank - 1] != 1 && s->dims[s->rank - 1] != 2))
        return celer_ops_error(info, CELER_ERR_SHAPE,
                      "input must be [signal dims..., 1 or 2] (real or complex), got %s",
                      celer_shape_str(s, b, sizeof b));
    if (g->irfft && s->dims[s->rank - 1] != 2)
        return celer_ops_error(info, CELER_ERR_SHAPE,
                      "onesided with inverse (IRFFT) takes complex input [..., 2], got %s",
                      celer_shape_str(s, b, sizeof b));
    int64_t axis = celer_onnx_attr_int(info->node, "axis", 1);
    if (info->since_version >= 20) {
        axis = -2;
        if (celer_ops_input(c, 2)) CELER_TRY(scalar_int(c, 2, "axis", &axis));
    }
    CELER_TRY(celer_ops_axis(info, axis, s->rank, &g->axis));
    if (g->axis == s->rank - 1)
        return celer_ops_error(info, CELER_ERR_INVALID, "axis %lld is the real/imaginary axis of input %s",
                      (long long)axis, celer_shape_str(s, b, sizeof b));
    g->outer = 1, g->inner = 1;
    for (int i = 0; i < g->axis; i++) g->outer *= s->dims[i];
    for (int i = g->axis + 1; i < s->rank - 1; i++) g->inner *= s->dims[i];
    g->len = s->dims[g->axis];
    g->comps = s->dims[s->rank - 1];
    g->n = g->irfft ? 2 * (g->len - 1) : g->len;
    const celer_tensor *dl = celer_ops_input(c, 1);
    if (dl) {
        CELER_TRY(scalar_int(c, 1, "dft_length", &g->n));
        if (g->n < 1 || g->n > MAX_FFT)
            return celer_ops_error(info, CELER_ERR_INVALID, "dft_length %lld is outside [1, %lld]",
                          (long long)g->n, (long long)MAX_FFT);
    }
    if (g->n < 1)
        return celer_ops_error(info, CELER_ERR_INVALID, "the signal axis %d has %lld values: %s", g->axis,
                      (long long)g->len,
                      g->irfft ? "IRFFT needs 2 bins or more, or dft_length" : "the transform is empty");
    if (g->n > MAX_FFT)
        return celer_ops_error(info, CELER_ERR_LIMIT, "signal length %lld is above %lld", (long long)g->n,
                      (long long)MAX_FFT);
    g->k = onesided && !g->inverse ? g->n / 2 + 1 : g->n;
    return CELER_OK;
}

static void dft_plan(const dft_geom *g, celer_ops_carve *cv, fft_plan *fp, double **buf) {
    fft_carve(fp, g->n, cv);
    *buf = celer_ops_carve_elems(cv, 2 * g->n, sizeof(double));
}

static celer_status dft_reshape(celer_kernel_call *c) {
    dft_geom g;
    CELER_TRY(dft_geom_of(c, &g));
    celer_shape out = c->in[0]->shape;
    out.dims[g.axis] = g.k;
    out.dims[out.rank - 1] = g.irfft ? 1 : 2;
    c->out[0].shape = out;
    CELER_TRY(check_out(c, 0));
    celer_ops_carve cv = {0};
    fft_plan fp;
    double *buf;
    dft_plan(&g, &cv, &fp, &buf);
    if (cv.overflow) return celer_ops_error(c->info, CELER_ERR_LIMIT, "transform of %lld points is too large", (long long)g.n);
    c->scratch_size = cv.off;
    return CELER_OK;
}

static celer_status dft_run(celer_kernel_call *c) {
    dft_geom g;
    CELER_TRY(dft_geom_of(c, &g));
    celer_ops_carve cv = {.base = c->scratch};
    fft_plan fp;
    double *buf;
    dft_plan(&g, &cv, &fp, &buf);
    if (cv.overflow || cv.off > c->scratch_size)
        return celer_ops_error(c->info, CELER_ERR_INTERNAL, "scratch smaller than planned");
    fft_prepare(&fp);
    const celer_tensor *x = c->in[0];
    celer_tensor *y = &c->out[0];
    /* IRFFT reads bins 0..n/2 (zeros past the input) and mirrors the rest as their conjugates,
     * as numpy's irfft and onnx's reference do: the imaginary parts of bin 0 and of bin n/2 (n
     * even) then only reach the imaginary part of the result, which is dropped. */
    const int64_t used = CELER_MIN(g.len, g.irfft ? g.n / 2 + 1 : g.n);
    const int64_t out_comps = g.irfft ? 1 : 2;
    const double scale = g.inverse ? 1.0 / (double)g.n : 1.0;
    for (int64_t o = 0; o < g.outer; o++)
        for (int64_t i = 0; i < g.inner; i++) {
            for (int64_t j = 0; j < used; j++) {
                int64_t src = ((o * g.len + j) * g.inner + i) * g.comps;
                buf[2 * j] = ld(x, src);
                buf[2 * j + 1] = g.comps == 2 ? ld(x, src + 1) : 0.0;
            }
            memset(buf + 2 * used, 0, (size_t)(2 * (g.n - used)) * sizeof(double));
            if (g.irfft)
                for (int64_t j = g.n / 2 + 1; j < g.n; j++)
                    buf[2 * j] = buf[2 * (g.n - j)], buf[2 * j + 1] = -buf[2 * (g.n - j) + 1];
            fft_run(&fp, buf, g.inverse);
            for (int64_t k = 0; k < g.k; k++) {
                int64_t dst = ((o * g.k + k) * g.inner + i) * out_comps;
                st(y, dst, buf[2 * k] * scale);
                if (!g.irfft) st(y, dst + 1, buf[2 * k + 1] * scale);
            }
        }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* STFT (opset 17): signal [batch, length, 1 | 2], frame_step, window?, frame_length?          */

typedef struct stft_geom {
    int64_t batch, len, comps, step, flen, frames, k;
    const celer_tensor *window;
} stft_geom;

static celer_status stft_geom_of(const celer_kernel_call *c, stft_geom *g) {
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0];
    char b[200];
    CELER_TRY(need_in(c, 1, "frame_step"));
    if (x->shape.rank != 3 || (x->shape.dims[2] != 1 && x->shape.dims[2] != 2))
        return celer_ops_error(info, CELER_ERR_SHAPE, "signal must be [batch, length, 1 or 2], got %s",
                      celer_shape_str(&x->shape, b, sizeof b));
    g->batch = x->shape.dims[0], g->len = x->shape.dims[1], g->comps = x->shape.dims[2];
    CELER_TRY(scalar_int(c, 1, "frame_step", &g->step));
    if (g->step < 1) return celer_ops_error(info, CELER_ERR_INVALID, "frame_step must be positive, got %lld", (long long)g->step);
    g->window = celer_ops_input(c, 2);
    g->flen = -1;
    if (g->window) {
        if (g->window->shape.rank != 1 || g->window->dtype != x->dtype)
            return celer_ops_error(info, CELER_ERR_SHAPE, "window must be 1-D of the signal's type %s, got %s %s",
                          celer_dtype_name(x->dtype), celer_dtype_name(g->window->dtype),
                          celer_shape_str(&g->window->shape, b, sizeof b));
        g->flen = g->window->shape.dims[0];
    }
    if (celer_ops_input(c, 3)) {
        int64_t fl;
        CELER_TRY(scalar_int(c, 3, "frame_length", &fl));
        if (g->window && fl != g->flen)
            return celer_ops_error(info, CELER_ERR_SHAPE, "frame_length %lld does not match the window length %lld",
                          (long long)fl, (long long)g->flen);
        g->flen = fl;
    }
    if (g->flen < 0 && !g->window)
        return celer_ops_error(info, CELER_ERR_INVALID, "one of window and frame_length is required");
    if (g->flen < 1 || g->flen > MAX_FFT)
        return celer_ops_error(info, CELER_ERR_INVALID, "frame length %lld is outside [1, %lld]",
                      (long long)g->flen, (long long)MAX_FFT);
    if (g->flen > g->len)
        return celer_ops_error(info, CELER_ERR_SHAPE, "frame length %lld is longer than the signal (%lld)",
                      (long long)g->flen, (long long)g->len);
    g->frames = (g->len - g->flen) / g->step + 1;
    bool onesided = celer_onnx_attr_int(info->node, "onesided", 1) != 0;
    g->k = onesided ? g->flen / 2 + 1 : g->flen;
    return CELER_OK;
}

static celer_status stft_reshape(celer_kernel_call *c) {
    stft_geom g;
    CELER_TRY(stft_geom_of(c, &g));
    c->out[0].shape = (celer_shape){.rank = 4, .dims = {g.batch, g.frames, g.k, 2}};
    CELER_TRY(check_out(c, 0));
    celer_ops_carve cv = {0};
    fft_plan fp;
    fft_carve(&fp, g.flen, &cv);
    celer_ops_carve_elems(&cv, 2 * g.flen, sizeof(double));
    if (cv.overflow) return celer_ops_error(c->info, CELER_ERR_LIMIT, "frame of %lld points is too large", (long long)g.flen);
    c->scratch_size = cv.off;
    return CELER_OK;
}

static celer_status stft_run(celer_kernel_call *c) {
    stft_geom g;
    CELER_TRY(stft_geom_of(c, &g));
    celer_ops_carve cv = {.base = c->scratch};
    fft_plan fp;
    fft_carve(&fp, g.flen, &cv);
    double *buf = celer_ops_carve_elems(&cv, 2 * g.flen, sizeof(double));
    if (cv.overflow || cv.off > c->scratch_size)
        return celer_ops_error(c->info, CELER_ERR_INTERNAL, "scratch smaller than planned");
    fft_prepare(&fp);
    const celer_tensor *x = c->in[0];
    celer_tensor *y = &c->out[0];
    for (int64_t b = 0; b < g.batch; b++)
        for (int64_t f = 0; f < g.frames; f++) {
            for (int64_t j = 0; j < g.flen; j++) {
                int64_t src = (b * g.len + f * g.step + j) * g.comps;
                double w = g.window ? ld(g.window, j) : 1.0;
                buf[2 * j] = ld(x, src) * w;
                buf[2 * j + 1] = g.comps == 2 ? ld(x, src + 1) * w : 0.0;
            }
            fft_run(&fp, buf, false);
            for (int64_t k = 0; k < g.k; k++) {
                int64_t dst = ((b * g.frames + f) * g.k + k) * 2;
                st(y, dst, buf[2 * k]);
                st(y, dst + 1, buf[2 * k + 1]);
            }
        }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* HannWindow, HammingWindow, BlackmanWindow: w[n] = a0 - a1 cos(2πn/N) + a2 cos(4πn/N),       */
/* N = size (periodic) or size - 1 (symmetric)                                                 */

typedef struct window_def {
    const char *op;
    double a0, a1, a2;
} window_def;

static const window_def window_defs[] = {
    {"HannWindow", 0.5, 0.5, 0.0},
    {"HammingWindow", 25.0 / 46.0, 21.0 / 46.0, 0.0},
    {"BlackmanWindow", 0.42, 0.5, 0.08},
};

static const window_def *window_of(const celer_op_info *info) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(window_defs); i++)
        if (!strcmp(info->node->op_type, window_defs[i].op)) return &window_defs[i];
    return &window_defs[0];
}

static celer_status window_size(const celer_kernel_call *c, int64_t *n) {
    CELER_TRY(scalar_int(c, 0, "size", n));
    if (*n < 0 || *n > (INT64_C(1) << 32))
        return celer_ops_error(c->info, CELER_ERR_INVALID, "size %lld is outside [0, 2^32]", (long long)*n);
    return CELER_OK;
}

static celer_status window_reshape(celer_kernel_call *c) {
    int64_t n = 0;
    CELER_TRY(window_size(c, &n));
    c->out[0].shape = (celer_shape){.rank = 1, .dims = {n}};
    return check_out(c, 0);
}

static celer_status window_run(celer_kernel_call *c) {
    int64_t n = 0;
    CELER_TRY(window_size(c, &n));
    const window_def *w = window_of(c->info);
    bool periodic = celer_onnx_attr_int(c->info->node, "periodic", 1) != 0;
    double N = (double)(periodic ? n : n - 1);
    if (N < 1) N = 1; /* a symmetric window of one point */
    for (int64_t i = 0; i < n; i++) {
        double x = 2.0 * M_PI * (double)i / N;
        st(&c->out[0], i, w->a0 - w->a1 * cos(x) + w->a2 * cos(2 * x));
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* MelWeightMatrix (opset 17): triangular filters between mel-spaced points, rounded down to    */
/* DFT bins as floor((dft_length + 1) * f / sample_rate)                                       */

typedef struct mel_args {
    int64_t bins, dft_len, rate;
    double lo, hi;
} mel_args;

static celer_status mel_args_of(const celer_kernel_call *c, mel_args *a) {
    static const char *names[] = {"num_mel_bins", "dft_length", "sample_rate", "lower_edge_hertz",
                                  "upper_edge_hertz"};
    for (int i = 0; i < 5; i++) CELER_TRY(need_in(c, i, names[i]));
    CELER_TRY(scalar_int(c, 0, names[0], &a->bins));
    CELER_TRY(scalar_int(c, 1, names[1], &a->dft_len));
    CELER_TRY(scalar_int(c, 2, names[2], &a->rate));
    CELER_TRY(scalar_float(c, 3, names[3], &a->lo));
    CELER_TRY(scalar_float(c, 4, names[4], &a->hi));
    if (a->bins < 1 || a->bins > (INT64_C(1) << 24) || a->dft_len < 1 || a->dft_len > (INT64_C(1) << 30) ||
        a->rate < 1)
        return celer_ops_error(c->info, CELER_ERR_INVALID,
                      "num_mel_bins (%lld), dft_length (%lld) and sample_rate (%lld) must be positive and not huge",
                      (long long)a->bins, (long long)a->dft_len, (long long)a->rate);
    if (!(a->lo >= 0) || !(a->hi > a->lo) || !isfinite(a->hi))
        return celer_ops_error(c->info, CELER_ERR_INVALID,
                      "need 0 <= lower_edge_hertz < upper_edge_hertz, got %g and %g", a->lo, a->hi);
    return CELER_OK;
}

static celer_status mel_reshape(celer_kernel_call *c) {
    mel_args a;
    CELER_TRY(mel_args_of(c, &a));
    c->out[0].shape = (celer_shape){.rank = 2, .dims = {a.dft_len / 2 + 1, a.bins}};
    CELER_TRY(check_out(c, 0));
    c->scratch_size = (size_t)(a.bins + 2) * sizeof(int64_t);
    return CELER_OK;
}

static celer_status mel_run(celer_kernel_call *c) {
    mel_args a;
    CELER_TRY(mel_args_of(c, &a));
    celer_tensor *y = &c->out[0];
    const int64_t rows = a.dft_len / 2 + 1, nb = a.bins;
    int64_t *pt = c->scratch; /* nb + 2 edge points, as DFT bin indices */
    double mlo = 2595.0 * log10(1.0 + a.lo / 700.0), mhi = 2595.0 * log10(1.0 + a.hi / 700.0);
    double step = (mhi - mlo) / (double)(nb + 2);
    for (int64_t i = 0; i < nb + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + mlo) / 2595.0) - 1.0);
        double bin = floor((double)(a.dft_len + 1) * hz / (double)a.rate);
        /* an absurd upper edge: keep the conversion defined (exact below 2^53) */
        pt[i] = bin < 9007199254740992.0 ? (int64_t)bin : INT64_C(9007199254740992);
    }
    int64_t total = rows * nb;
    for (int64_t i = 0; i < total; i++) st(y, i, 0.0);
    for (int64_t m = 0; m < nb; m++) {
        int64_t l = pt[m], ctr = pt[m + 1], r = pt[m + 2];
        /* rows outside [0, rows) (upper edge above Nyquist) are dropped */
        if (ctr == l) {
            if (ctr >= 0 && ctr < rows) st(y, ctr * nb + m, 1.0);
        } else {
            for (int64_t j = CELER_MAX(l, 0); j <= ctr && j < rows; j++)
                st(y, j * nb + m, (double)(j - l) / (double)(ctr - l));
        }
        if (r > ctr)
            for (int64_t j = CELER_MAX(ctr, 0); j < r && j < rows; j++)
                st(y, j * nb + m, (double)(r - j) / (double)(r - ctr));
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Det: [*, M, M] -> [*], LU with partial pivoting in double                                   */

static celer_status det_reshape(celer_kernel_call *c) {
    const celer_shape *s = &c->in[0]->shape;
    char b[200];
    if (s->rank < 2 || s->dims[s->rank - 1] != s->dims[s->rank - 2])
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must be [..., M, M], got %s",
                      celer_shape_str(s, b, sizeof b));
    int64_t m = s->dims[s->rank - 1];
    size_t bytes;
    if (celer_mul_size((size_t)m, (size_t)m, &bytes) || celer_mul_size(bytes, sizeof(double), &bytes) ||
        bytes > MAX_BYTES)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "matrix of %lld x %lld is too large", (long long)m, (long long)m);
    c->out[0].shape = (celer_shape){.rank = s->rank - 2};
    memcpy(c->out[0].shape.dims, s->dims, (size_t)(s->rank - 2) * sizeof(int64_t));
    CELER_TRY(check_out(c, 0));
    c->scratch_size = bytes;
    return CELER_OK;
}

static celer_status det_run(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    const int64_t m = x->shape.dims[x->shape.rank - 1];
    const int64_t count = celer_shape_numel(&c->out[0].shape);
    double *a = c->scratch;
    for (int64_t q = 0; q < count; q++) {
        for (int64_t i = 0; i < m * m; i++) a[i] = ld(x, q * m * m + i);
        double det = 1.0;
        for (int64_t k = 0; k < m && det != 0.0; k++) {
            int64_t piv = k;
            for (int64_t i = k + 1; i < m; i++)
                if (fabs(a[i * m + k]) > fabs(a[piv * m + k])) piv = i;
            if (a[piv * m + k] == 0.0) {
                det = 0.0;
                break;
            }
            if (piv != k) {
                for (int64_t j = 0; j < m; j++) {
                    double t = a[k * m + j];
                    a[k * m + j] = a[piv * m + j];
                    a[piv * m + j] = t;
                }
                det = -det;
            }
            double d = a[k * m + k];
            det *= d;
            for (int64_t i = k + 1; i < m; i++) {
                double f = a[i * m + k] / d;
                if (f == 0.0) continue;
                for (int64_t j = k + 1; j < m; j++) a[i * m + j] -= f * a[k * m + j];
            }
        }
        st(&c->out[0], q, det);
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* StringNormalizer (opset 10): drops stopwords from a [C] or [1, C] string tensor, then        */
/* changes case (ASCII letters; other UTF-8 bytes pass through unchanged)                      */

typedef enum case_action { CASE_NONE, CASE_LOWER, CASE_UPPER } case_action;

typedef struct strnorm_state {
    case_action action;
    bool case_sensitive;
    int n_stop;
    const celer_str *stop; /* the node's attribute strings (owned by the model) */
} strnorm_state;

static celer_status strnorm_init(const celer_op_info *info, void **state) {
    strnorm_state s = {0};
    const char *act = celer_onnx_attr_string(info->node, "case_change_action", "NONE");
    static const struct {
        const char *name;
        case_action a;
    } actions[] = {{"NONE", CASE_NONE}, {"LOWER", CASE_LOWER}, {"UPPER", CASE_UPPER}};
    bool found = false;
    for (size_t i = 0; i < CELER_ARRAY_LEN(actions); i++)
        if (!strcmp(act, actions[i].name)) s.action = actions[i].a, found = true;
    if (!found)
        return celer_ops_error(info, CELER_ERR_INVALID, "case_change_action '%s' is not NONE, LOWER or UPPER", act);
    s.case_sensitive = celer_onnx_attr_int(info->node, "is_case_sensitive", 0) != 0;
    const celer_onnx_attr *sw = celer_onnx_attr_find(info->node, "stopwords");
    if (sw && sw->type == CELER_ATTR_STRINGS) s.n_stop = sw->n, s.stop = sw->strings;
    strnorm_state *p = malloc(sizeof *p);
    if (!p) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    *p = s;
    *state = p;
    return CELER_OK;
}

static char ascii_lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch; }
static char ascii_upper(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch; }

static bool ascii_caseless_eq(celer_str a, celer_str b) {
    if (a.len != b.len) return false;
    for (size_t i = 0; i < a.len; i++)
        if (ascii_lower(a.data[i]) != ascii_lower(b.data[i])) return false;
    return true;
}

static bool is_stopword(const strnorm_state *s, celer_str w) {
    for (int i = 0; i < s->n_stop; i++)
        if (s->case_sensitive ? celer_str_eq(w, s->stop[i]) : ascii_caseless_eq(w, s->stop[i])) return true;
    return false;
}

static celer_status strnorm_check(const celer_kernel_call *c, int64_t *n) {
    const celer_shape *s = &c->in[0]->shape;
    if (!(s->rank == 1 || (s->rank == 2 && s->dims[0] == 1))) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must be [C] or [1, C], got %s",
                      celer_shape_str(s, b, sizeof b));
    }
    *n = s->dims[s->rank - 1];
    return CELER_OK;
}

static celer_status strnorm_reshape(celer_kernel_call *c) {
    const strnorm_state *s = c->state;
    int64_t n = 0;
    CELER_TRY(strnorm_check(c, &n));
    const celer_str *x = c->in[0]->data;
    int64_t kept = 0;
    size_t bytes = 1; /* the empty string of an empty result */
    for (int64_t i = 0; i < n; i++) {
        if (is_stopword(s, x[i])) continue;
        kept++;
        if (celer_add_size(bytes, x[i].len + 1, &bytes) || bytes > MAX_BYTES)
            return celer_ops_error(c->info, CELER_ERR_LIMIT, "strings are too large");
    }
    CELER_TRY(celer_ops_str_buf_reserve(c, bytes));
    int64_t out_n = kept ? kept : 1; /* all dropped: one empty string */
    c->out[0].shape = c->in[0]->shape;
    c->out[0].shape.dims[c->out[0].shape.rank - 1] = out_n;
    return CELER_OK;
}

static celer_status strnorm_run(celer_kernel_call *c) {
    const strnorm_state *s = c->state;
    celer_ops_str_buf *l = *c->local;
    int64_t n = 0;
    CELER_TRY(strnorm_check(c, &n));
    if (!l || !l->buf) return celer_ops_error(c->info, CELER_ERR_INTERNAL, "run without reshape");
    const celer_str *x = c->in[0]->data;
    celer_str *y = c->out[0].data;
    const int64_t out_n = c->out[0].shape.dims[c->out[0].shape.rank - 1];
    size_t off = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_stopword(s, x[i])) continue;
        const char *w = x[i].data;
        size_t len = x[i].len;
        if (k >= out_n || off + len + 1 > l->cap)
            return celer_ops_error(c->info, CELER_ERR_INTERNAL, "input changed between reshape and run");
        char *d = l->buf + off;
        for (size_t j = 0; j < len; j++)
            d[j] = s->action == CASE_LOWER ? ascii_lower(w[j]) : s->action == CASE_UPPER ? ascii_upper(w[j]) : w[j];
        d[len] = '\0';
        y[k++] = (celer_str){d, len};
        off += len + 1;
    }
    if (k == 0) {
        l->buf[off] = '\0';
        y[k++] = (celer_str){l->buf + off, 0};
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* TfIdfVectorizer (opset 9): counts pool n-grams in each row, with up to max_skip_count items  */
/* skipped between consecutive n-gram items (unigrams are counted once per position)           */

typedef enum tfidf_mode { MODE_TF, MODE_IDF, MODE_TFIDF } tfidf_mode;

/* Longest n-gram level accepted (ngram_counts length). */
#define TFIDF_MAX_N 64

typedef struct tfidf_state {
    tfidf_mode mode;
    int64_t min_n, max_n, max_skip;
    bool strings;
    const int64_t *pool_i;      /* attribute data (owned by the model) */
    const celer_str *pool_s;
    int64_t n_grams;            /* pool n-grams = length of ngram_indexes */
    int64_t *gram_off;          /* [n_grams] first pool element of n-gram k */
    int *gram_n;                /* [n_grams] its length */
    const int64_t *index;       /* ngram_indexes */
    const float *weights;       /* NULL: all 1 */
    int64_t n_out;              /* max(ngram_indexes) + 1 */
    uint32_t *table;            /* open-addressing hash: n-gram id + 1, 0 = empty */
    uint64_t mask;
} tfidf_state;

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_str(celer_str s) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < s.len; i++) h = (h ^ (unsigned char)s.data[i]) * 1099511628211ULL;
    return h;
}

/* Hash of an n-gram given as int64 items or string items (exactly one of iv / sv non-NULL). */
static uint64_t hash_gram(int n, const int64_t *iv, const celer_str *sv) {
    uint64_t h = mix64((uint64_t)n + 0x9e3779b97f4a7c15ULL);
    for (int i = 0; i < n; i++) h = mix64(h ^ (iv ? (uint64_t)iv[i] : hash_str(sv[i])));
    return h;
}

static bool gram_eq(const tfidf_state *s, int64_t k, int n, const int64_t *iv, const celer_str *sv) {
    if (s->gram_n[k] != n) return false;
    int64_t off = s->gram_off[k];
    for (int i = 0; i < n; i++) {
        if (iv ? s->pool_i[off + i] != iv[i] : !celer_str_eq(s->pool_s[off + i], sv[i])) return false;
    }
    return true;
}

/* Pool id of the n-gram, or -1. */
static int64_t tfidf_find(const tfidf_state *s, int n, const int64_t *iv, const celer_str *sv) {
    for (uint64_t h = hash_gram(n, iv, sv) & s->mask;; h = (h + 1) & s->mask) {
        uint32_t e = s->table[h];
        if (!e) return -1;
        if (gram_eq(s, e - 1, n, iv, sv)) return e - 1;
    }
}

static void tfidf_free(void *p) {
    tfidf_state *s = p;
    if (!s) return;
    free(s->gram_off);
    free(s->gram_n);
    free(s->table);
    free(s);
}

static celer_status tfidf_parse(const celer_op_info *info, tfidf_state *s) {
    const celer_onnx_node *node = info->node;
    const char *mode = celer_onnx_attr_string(node, "mode", "");
    if (!strcmp(mode, "TF"))
        s->mode = MODE_TF;
    else if (!strcmp(mode, "IDF"))
        s->mode = MODE_IDF;
    else if (!strcmp(mode, "TFIDF"))
        s->mode = MODE_TFIDF;
    else
        return celer_ops_error(info, CELER_ERR_INVALID, "mode '%s' is not TF, IDF or TFIDF", mode);
    s->min_n = celer_onnx_attr_int(node, "min_gram_length", 0);
    s->max_n = celer_onnx_attr_int(node, "max_gram_length", 0);
    s->max_skip = celer_onnx_attr_int(node, "max_skip_count", 0);
    if (s->min_n < 1 || s->max_n < s->min_n || s->max_skip < 0)
        return celer_ops_error(info, CELER_ERR_INVALID,
                      "need 1 <= min_gram_length (%lld) <= max_gram_length (%lld) and max_skip_count (%lld) >= 0",
                      (long long)s->min_n, (long long)s->max_n, (long long)s->max_skip);
    const celer_onnx_attr *pi = celer_onnx_attr_find(node, "pool_int64s");
    const celer_onnx_attr *ps = celer_onnx_attr_find(node, "pool_strings");
    if (!!pi == !!ps)
        return celer_ops_error(info, CELER_ERR_INVALID, "exactly one of pool_int64s and pool_strings must be given");
    int64_t pool_n;
    if (pi) {
        if (pi->type != CELER_ATTR_INTS) return celer_ops_error(info, CELER_ERR_INVALID, "pool_int64s must be INTS");
        s->pool_i = pi->ints, pool_n = pi->n;
    } else {
        if (ps->type != CELER_ATTR_STRINGS) return celer_ops_error(info, CELER_ERR_INVALID, "pool_strings must be STRINGS");
        s->strings = true, s->pool_s = ps->strings, pool_n = ps->n;
    }
    bool str_in = info->input_types[0] == CELER_STRING;
    if (str_in != s->strings)
        return celer_ops_error(info, CELER_ERR_DTYPE, "input type %s does not match the %s pool",
                      celer_dtype_name(info->input_types[0]), s->strings ? "string" : "int64");
    const int64_t *counts = NULL;
    int levels = celer_onnx_attr_ints(node, "ngram_counts", &counts);
    if (levels < 1 || levels > TFIDF_MAX_N)
        return celer_ops_error(info, CELER_ERR_INVALID, "ngram_counts must have 1 to %d values, got %d", TFIDF_MAX_N, levels);
    int n_index = celer_onnx_attr_ints(node, "ngram_indexes", &s->index);
    if (n_index < 0) n_index = 0;
    s->n_grams = n_index;
    /* every level's segment [counts[i], counts[i+1]) holds whole (i+1)-grams */
    int64_t grams = 0;
    for (int i = 0; i < levels; i++) {
        int64_t a = counts[i], b = i + 1 < levels ? counts[i + 1] : pool_n;
        if (a < 0 || b < a || b > pool_n || (b - a) % (i + 1))
            return celer_ops_error(info, CELER_ERR_INVALID,
                          "ngram_counts[%d] = %lld does not start a whole number of %d-grams in a pool of %lld",
                          i, (long long)a, i + 1, (long long)pool_n);
        grams += (b - a) / (i + 1);
    }
    if (grams != s->n_grams)
        return celer_ops_error(info, CELER_ERR_INVALID, "the pool holds %lld n-grams but ngram_indexes has %lld values",
                      (long long)grams, (long long)s->n_grams);
    if (s->n_grams > (INT64_C(1) << 30)) return celer_ops_error(info, CELER_ERR_LIMIT, "too many n-grams");
    s->n_out = 0;
    for (int64_t k = 0; k < s->n_grams; k++) {
        if (s->index[k] < 0 || s->index[k] >= (INT64_C(1) << 31))
            return celer_ops_error(info, CELER_ERR_INVALID, "ngram_indexes[%lld] = %lld is outside [0, 2^31)",
                          (long long)k, (long long)s->index[k]);
        s->n_out = CELER_MAX(s->n_out, s->index[k] + 1);
    }
    if (s->n_grams == 0) return celer_ops_error(info, CELER_ERR_INVALID, "ngram_indexes must not be empty");
    const float *w = NULL;
    int nw = celer_onnx_attr_floats(node, "weights", &w);
    if (nw >= 0) {
        if (nw != s->n_grams)
            return celer_ops_error(info, CELER_ERR_INVALID, "weights has %d values for %lld n-grams", nw, (long long)s->n_grams);
        s->weights = w;
    }
    if (s->max_n > levels) s->max_n = levels; /* longer n-grams cannot be in the pool */
    /* a skip wider than any row gives no n-gram; capping keeps position arithmetic in range */
    if (s->max_skip > (INT64_C(1) << 40)) s->max_skip = INT64_C(1) << 40;

    s->gram_off = malloc((size_t)s->n_grams * sizeof *s->gram_off);
    s->gram_n = malloc((size_t)s->n_grams * sizeof *s->gram_n);
    uint64_t size = 16;
    while (size < 2 * (uint64_t)s->n_grams) size <<= 1;
    s->table = calloc(size, sizeof *s->table);
    if (!s->gram_off || !s->gram_n || !s->table) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    s->mask = size - 1;
    int64_t k = 0;
    for (int i = 0; i < levels; i++) {
        int64_t a = counts[i], b = i + 1 < levels ? counts[i + 1] : pool_n;
        for (int64_t off = a; off < b; off += i + 1, k++) {
            s->gram_off[k] = off, s->gram_n[k] = i + 1;
            /* a duplicate pool n-gram keeps its first id */
            if (tfidf_find(s, i + 1, s->pool_i ? s->pool_i + off : NULL, s->pool_s ? s->pool_s + off : NULL) >= 0)
                continue;
            uint64_t h = hash_gram(i + 1, s->pool_i ? s->pool_i + off : NULL, s->pool_s ? s->pool_s + off : NULL) & s->mask;
            while (s->table[h]) h = (h + 1) & s->mask;
            s->table[h] = (uint32_t)(k + 1);
        }
    }
    return CELER_OK;
}

static celer_status tfidf_init(const celer_op_info *info, void **state) {
    tfidf_state *s = calloc(1, sizeof *s);
    if (!s) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    celer_status st_ = tfidf_parse(info, s);
    if (st_) {
        tfidf_free(s);
        return st_;
    }
    *state = s;
    return CELER_OK;
}

static celer_status tfidf_reshape(celer_kernel_call *c) {
    const tfidf_state *s = c->state;
    const celer_shape *x = &c->in[0]->shape;
    if (x->rank != 1 && x->rank != 2) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must be [C] or [N, C], got %s", celer_shape_str(x, b, sizeof b));
    }
    c->out[0].shape = (celer_shape){.rank = x->rank, .dims = {x->dims[0], s->n_out}};
    if (x->rank == 1) c->out[0].shape.dims[0] = s->n_out;
    CELER_TRY(check_out(c, 0));
    c->scratch_size = (size_t)s->n_grams * sizeof(int64_t);
    return CELER_OK;
}

static celer_status tfidf_run(celer_kernel_call *c) {
    const tfidf_state *s = c->state;
    const celer_tensor *x = c->in[0];
    const int64_t rows = x->shape.rank == 2 ? x->shape.dims[0] : 1;
    const int64_t cols = x->shape.dims[x->shape.rank - 1];
    int64_t *cnt = c->scratch;
    float *y = c->out[0].data;
    int64_t iv[TFIDF_MAX_N];
    celer_str sv[TFIDF_MAX_N];
    for (int64_t r = 0; r < rows; r++) {
        memset(cnt, 0, (size_t)s->n_grams * sizeof *cnt);
        const int64_t base = r * cols;
        for (int64_t start = 0; start < cols; start++)
            for (int64_t skip = 0; skip <= s->max_skip; skip++) {
                /* gather items start, start + (skip+1), ... up to max_n of them */
                int n = 0;
                for (int64_t pos = start; n < s->max_n && pos < cols; pos += skip + 1, n++) {
                    if (s->strings)
                        sv[n] = ((const celer_str *)x->data)[base + pos];
                    else
                        iv[n] = celer_ops_int_at(x, base + pos);
                }
                for (int len = (int)s->min_n; len <= n; len++) {
                    if (len == 1 && skip > 0) continue; /* unigrams once per position */
                    int64_t k = tfidf_find(s, len, s->strings ? NULL : iv, s->strings ? sv : NULL);
                    if (k >= 0) cnt[k]++;
                }
                if (n < 2) break; /* no n-gram of 2+ items fits with a longer skip either */
            }
        float *out = y + r * s->n_out;
        memset(out, 0, (size_t)s->n_out * sizeof *out);
        for (int64_t k = 0; k < s->n_grams; k++) {
            if (!cnt[k]) continue;
            float w = s->weights ? s->weights[k] : 1.0f;
            float v = s->mode == MODE_TF ? (float)cnt[k] : s->mode == MODE_IDF ? w : (float)cnt[k] * w;
            out[s->index[k]] += v;
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define FLOATS (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16))
#define INTS32_64 (CELER_DT(CELER_INT32) | CELER_DT(CELER_INT64))
#define MAXV CELER_OPS_MAX_VERSION
/* op, since, until, dtypes of input 0, infer_types, init, reshape, run, free_state, free_local */
#define K(op, since, until, dts, infer, init, reshape, run, fs, fl)                                \
    {"", op, since, until, dts, 0, 0, infer, init, reshape, run, fs, fl}

static const celer_kernel kernels[] = {
    K("DFT", 17, 19, FLOATS, NULL, dft_init, dft_reshape, dft_run, NULL, NULL),
    K("DFT", 20, MAXV, FLOATS, NULL, dft_init, dft_reshape, dft_run, NULL, NULL), /* axis input */
    K("STFT", 17, MAXV, FLOATS, NULL, NULL, stft_reshape, stft_run, NULL, NULL),
    K("HannWindow", 17, MAXV, INTS32_64, infer_output_datatype, NULL, window_reshape, window_run, NULL, NULL),
    K("HammingWindow", 17, MAXV, INTS32_64, infer_output_datatype, NULL, window_reshape, window_run, NULL, NULL),
    K("BlackmanWindow", 17, MAXV, INTS32_64, infer_output_datatype, NULL, window_reshape, window_run, NULL, NULL),
    K("MelWeightMatrix", 17, MAXV, INTS32_64, infer_output_datatype, NULL, mel_reshape, mel_run, NULL, NULL),
    K("Det", 11, MAXV, FLOATS, NULL, NULL, det_reshape, det_run, NULL, NULL),
    K("StringNormalizer", 10, MAXV, CELER_DT(CELER_STRING), NULL, strnorm_init, strnorm_reshape, strnorm_run, free,
      celer_ops_str_buf_free),
    K("TfIdfVectorizer", 9, MAXV, INTS32_64 | CELER_DT(CELER_STRING), infer_float, tfidf_init, tfidf_reshape,
      tfidf_run, tfidf_free, NULL),
};

const celer_kernel_family celer_family_misc = {"misc", kernels, (int)CELER_ARRAY_LEN(kernels)};
