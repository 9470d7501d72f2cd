/* Window geometry and plain reference kernels; see reference.h. */
#include "reference.h"

#include <string.h>

celer_status celer_ref_check_numel(const char *who, const char *what, const celer_shape *s) {
    int64_t n = celer_shape_numel(s);
    if (n < 0 || n > CELER_REF_MAX_NUMEL) {
        char buf[160];
        return celer_errorf(CELER_ERR_LIMIT, "%s: %s shape %s is too large (cap %lld elements)",
                            who, what, celer_shape_str(s, buf, sizeof buf),
                            (long long)CELER_REF_MAX_NUMEL);
    }
    return CELER_OK;
}

/* ---- attributes ---- */

static const struct {
    const char *name;
    celer_auto_pad value;
} auto_pads[] = {
    {"NOTSET", CELER_AUTO_PAD_NOTSET},
    {"SAME_UPPER", CELER_AUTO_PAD_SAME_UPPER},
    {"SAME_LOWER", CELER_AUTO_PAD_SAME_LOWER},
    {"VALID", CELER_AUTO_PAD_VALID},
};

/* Copies INTS attribute `name` into out (cap entries), each within [lo, CELER_REF_MAX_ATTR]. */
static celer_status read_ints(const celer_op_info *info, const char *name, int64_t lo, int cap,
                              int64_t *out, int *count) {
    const int64_t *v;
    int n = celer_onnx_attr_ints(info->node, name, &v);
    *count = n;
    if (n < 0) return CELER_OK;
    char who[160];
    if (n > cap)
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute %s has %d values (at most %d)",
                            celer_ops_who(info, who, sizeof who), name, n, cap);
    for (int i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > CELER_REF_MAX_ATTR)
            return celer_errorf(CELER_ERR_INVALID,
                                "%s: attribute %s[%d] = %lld is out of range [%lld, %lld]",
                                celer_ops_who(info, who, sizeof who), name, i, (long long)v[i],
                                (long long)lo, (long long)CELER_REF_MAX_ATTR);
        out[i] = v[i];
    }
    return CELER_OK;
}

celer_status celer_win_attrs_parse(const celer_op_info *info, celer_win_attrs *a) {
    char who[160];
    memset(a, 0, sizeof *a);
    const char *ap = celer_onnx_attr_string(info->node, "auto_pad", "NOTSET");
    size_t i = 0;
    while (i < CELER_ARRAY_LEN(auto_pads) && strcmp(ap, auto_pads[i].name)) i++;
    if (i == CELER_ARRAY_LEN(auto_pads))
        return celer_errorf(CELER_ERR_INVALID,
                            "%s: auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                            celer_ops_who(info, who, sizeof who), ap);
    a->auto_pad = auto_pads[i].value;
    celer_status st;
    if ((st = read_ints(info, "kernel_shape", 1, CELER_MAX_RANK, a->kernel, &a->n_kernel)) ||
        (st = read_ints(info, "strides", 1, CELER_MAX_RANK, a->strides, &a->n_strides)) ||
        (st = read_ints(info, "dilations", 1, CELER_MAX_RANK, a->dilations, &a->n_dilations)) ||
        (st = read_ints(info, "pads", 0, 2 * CELER_MAX_RANK, a->pads, &a->n_pads)) ||
        (st = read_ints(info, "output_padding", 0, CELER_MAX_RANK, a->out_pad, &a->n_out_pad)) ||
        (st = read_ints(info, "output_shape", 0, CELER_MAX_RANK, a->out_shape, &a->n_out_shape)))
        return st;
    a->group = celer_onnx_attr_int(info->node, "group", 1);
    if (a->group < 1 || a->group > CELER_REF_MAX_ATTR)
        return celer_errorf(CELER_ERR_INVALID, "%s: group %lld must be >= 1",
                            celer_ops_who(info, who, sizeof who), (long long)a->group);
    int64_t ceil_mode = celer_onnx_attr_int(info->node, "ceil_mode", 0);
    if (ceil_mode != 0 && ceil_mode != 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: ceil_mode %lld must be 0 or 1",
                            celer_ops_who(info, who, sizeof who), (long long)ceil_mode);
    a->ceil_mode = ceil_mode;
    return CELER_OK;
}

/* ---- geometry ---- */

static celer_status check_count(const char *who, const char *name, int got, int want) {
    if (got >= 0 && got != want)
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute %s has %d values, expected %d", who,
                            name, got, want);
    return CELER_OK;
}

/* Common part: counts, strides, dilations, kernel extents; fills unit slots. */
static celer_status window_start(const char *who, const celer_win_attrs *a, int nsp,
                                 const int64_t *in, const int64_t *k, celer_window *w) {
    celer_status st;
    if (nsp < 1 || nsp > CELER_REF_MAX_SP)
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: %d spatial dimensions (only 1-D, 2-D and 3-D are supported)", who,
                            nsp);
    if ((st = check_count(who, "strides", a->n_strides, nsp)) ||
        (st = check_count(who, "dilations", a->n_dilations, nsp)) ||
        (st = check_count(who, "pads", a->n_pads, 2 * nsp)))
        return st;
    for (int i = 0; i < nsp; i++)
        if (in[i] < 0 || in[i] > CELER_REF_MAX_NUMEL)
            return celer_errorf(CELER_ERR_LIMIT, "%s: spatial size %lld is out of range", who,
                                (long long)in[i]);
    w->nsp = nsp;
    for (int s = 0; s < 3; s++) {
        w->in[s] = w->k[s] = w->out[s] = w->stride[s] = w->dil[s] = 1;
        w->pad_l[s] = w->pad_r[s] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int s = 3 - nsp + i;
        w->in[s] = in[i];
        w->k[s] = k[i];
        w->stride[s] = a->n_strides > 0 ? a->strides[i] : 1;
        w->dil[s] = a->n_dilations > 0 ? a->dilations[i] : 1;
        if (a->auto_pad == CELER_AUTO_PAD_NOTSET && a->n_pads > 0) {
            w->pad_l[s] = a->pads[i];
            w->pad_r[s] = a->pads[nsp + i];
        }
    }
    return CELER_OK;
}

/* Splits total padding for SAME_*: the odd unit goes at the end for UPPER, the start for LOWER. */
static void split_same(celer_auto_pad ap, int64_t total, int64_t *l, int64_t *r) {
    int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2); /* floor: extra output at the end */
    if (ap == CELER_AUTO_PAD_SAME_UPPER) {
        *l = half;
        *r = total - half;
    } else {
        *l = total - half;
        *r = half;
    }
}

celer_status celer_window_forward(const char *who, const celer_win_attrs *a, int nsp,
                                  const int64_t *in, const int64_t *k, celer_window *w) {
    celer_status st = window_start(who, a, nsp, in, k, w);
    if (st) return st;
    for (int s = 3 - nsp; s < 3; s++) {
        /* k, dil <= 2^31 and in <= CELER_REF_MAX_NUMEL: nothing below overflows int64 */
        int64_t kr = (w->k[s] - 1) * w->dil[s] + 1, stride = w->stride[s], n = w->in[s];
        if (a->auto_pad == CELER_AUTO_PAD_SAME_UPPER || a->auto_pad == CELER_AUTO_PAD_SAME_LOWER) {
            w->out[s] = (n + stride - 1) / stride;
            int64_t total = CELER_MAX(0, (w->out[s] - 1) * stride + kr - n);
            split_same(a->auto_pad, total, &w->pad_l[s], &w->pad_r[s]);
            continue;
        }
        int64_t padded = n + w->pad_l[s] + w->pad_r[s];
        if (padded < kr)
            return celer_errorf(CELER_ERR_SHAPE,
                                "%s: kernel extent %lld (kernel %lld, dilation %lld) exceeds the "
                                "padded input size %lld in spatial dim %d",
                                who, (long long)kr, (long long)w->k[s], (long long)w->dil[s],
                                (long long)padded, s - (3 - nsp));
        if (a->ceil_mode) {
            w->out[s] = (padded - kr + stride - 1) / stride + 1;
            /* a last window starting in the end padding would see no input: drop it */
            if ((w->out[s] - 1) * stride >= n + w->pad_l[s]) w->out[s]--;
        } else {
            w->out[s] = (padded - kr) / stride + 1;
        }
    }
    return CELER_OK;
}

celer_status celer_window_transpose(const char *who, const celer_win_attrs *a, int nsp,
                                    const int64_t *in, const int64_t *k, celer_window *w) {
    celer_status st = window_start(who, a, nsp, in, k, w);
    if (st) return st;
    if ((st = check_count(who, "output_padding", a->n_out_pad, nsp))) return st;
    int os_first = 0;
    if (a->n_out_shape > 0) {
        if (a->n_out_shape == nsp + 2)
            os_first = 2; /* some exporters write the full (N, C, spatial...) shape */
        else if ((st = check_count(who, "output_shape", a->n_out_shape, nsp)))
            return st;
    }
    for (int i = 0; i < nsp; i++) {
        int s = 3 - nsp + i;
        int64_t kr = (w->k[s] - 1) * w->dil[s] + 1, stride = w->stride[s], n = w->in[s];
        int64_t op = a->n_out_pad > 0 ? a->out_pad[i] : 0;
        if (n < 1)
            return celer_errorf(CELER_ERR_SHAPE, "%s: spatial input size %lld must be >= 1", who,
                                (long long)n);
        int64_t full; /* output size with no padding removed */
        if (__builtin_mul_overflow(n - 1, stride, &full) ||
            __builtin_add_overflow(full, op + kr, &full) || full > CELER_REF_MAX_NUMEL)
            return celer_errorf(CELER_ERR_LIMIT, "%s: output size overflows in spatial dim %d",
                                who, i);
        if (a->n_out_shape > 0 || a->auto_pad == CELER_AUTO_PAD_SAME_UPPER ||
            a->auto_pad == CELER_AUTO_PAD_SAME_LOWER) {
            int64_t want = a->n_out_shape > 0 ? a->out_shape[os_first + i] : n * stride;
            split_same(a->auto_pad == CELER_AUTO_PAD_SAME_UPPER ? CELER_AUTO_PAD_SAME_UPPER
                                                                : CELER_AUTO_PAD_SAME_LOWER,
                       full - want, &w->pad_l[s], &w->pad_r[s]);
            w->out[s] = want;
        } else {
            w->out[s] = full - w->pad_l[s] - w->pad_r[s];
            if (w->out[s] < 0)
                return celer_errorf(CELER_ERR_SHAPE,
                                    "%s: pads (%lld, %lld) exceed the output size %lld in "
                                    "spatial dim %d",
                                    who, (long long)w->pad_l[s], (long long)w->pad_r[s],
                                    (long long)full, i);
        }
    }
    return CELER_OK;
}

celer_status celer_conv_geom_make(const char *who, const celer_win_attrs *a, const celer_shape *x,
                                  const celer_shape *w, bool transpose, celer_conv_geom *g,
                                  celer_shape *y) {
    char b1[160], b2[160];
    if (x->rank < 3 || w->rank != x->rank)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: input X %s and weights W %s must have the same rank >= 3", who,
                            celer_shape_str(x, b1, sizeof b1), celer_shape_str(w, b2, sizeof b2));
    int nsp = x->rank - 2;
    g->n = x->dims[0];
    g->c = x->dims[1];
    g->group = a->group;
    int64_t cw, m;
    if (__builtin_mul_overflow(w->dims[transpose ? 0 : 1], transpose ? 1 : a->group, &cw) ||
        __builtin_mul_overflow(w->dims[transpose ? 1 : 0], transpose ? a->group : 1, &m))
        return celer_errorf(CELER_ERR_LIMIT, "%s: channel count overflows", who);
    g->m = m;
    if (cw != g->c || (transpose ? g->c : g->m) % a->group)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: input X %s and weights W %s do not agree for group %lld", who,
                            celer_shape_str(x, b1, sizeof b1), celer_shape_str(w, b2, sizeof b2),
                            (long long)a->group);
    if (a->n_kernel >= 0) {
        bool same = a->n_kernel == nsp;
        for (int i = 0; same && i < nsp; i++) same = a->kernel[i] == w->dims[2 + i];
        if (!same)
            return celer_errorf(CELER_ERR_SHAPE,
                                "%s: attribute kernel_shape does not match weights W %s", who,
                                celer_shape_str(w, b2, sizeof b2));
    }
    for (int i = 2; i < w->rank; i++)
        if (w->dims[i] < 1 || w->dims[i] > CELER_REF_MAX_ATTR)
            return celer_errorf(CELER_ERR_SHAPE, "%s: weights W %s have an empty or huge kernel",
                                who, celer_shape_str(w, b2, sizeof b2));
    celer_status st = transpose ? celer_window_transpose(who, a, nsp, x->dims + 2, w->dims + 2, &g->win)
                                : celer_window_forward(who, a, nsp, x->dims + 2, w->dims + 2, &g->win);
    if (st) return st;
    y->rank = x->rank;
    y->dims[0] = g->n;
    y->dims[1] = g->m;
    for (int i = 0; i < nsp; i++) y->dims[2 + i] = g->win.out[3 - nsp + i];
    return celer_ref_check_numel(who, "output", y);
}

/* ---- reference convolution ---- */

#define DEFINE_REF_CONV(NAME, T, ACC)                                                          \
    void NAME(const celer_conv_geom *g, const T *x, const T *w, const T *b, T *y) {            \
        const celer_window *v = &g->win;                                                       \
        int64_t cg = g->c / g->group, mg = g->m / g->group;                                    \
        int64_t isz = v->in[0] * v->in[1] * v->in[2];                                          \
        int64_t osz = v->out[0] * v->out[1] * v->out[2], ksz = v->k[0] * v->k[1] * v->k[2];    \
        for (int64_t n = 0; n < g->n; n++)                                                     \
            for (int64_t m = 0; m < g->m; m++) {                                               \
                const T *wm = w + m * cg * ksz;                                                \
                const T *xg = x + (n * g->c + m / mg * cg) * isz;                              \
                T *ym = y + (n * g->m + m) * osz;                                              \
                for (int64_t o0 = 0; o0 < v->out[0]; o0++)                                     \
                    for (int64_t o1 = 0; o1 < v->out[1]; o1++)                                 \
                        for (int64_t o2 = 0; o2 < v->out[2]; o2++) {                           \
                            ACC acc = b ? (ACC)b[m] : 0;                                       \
                            for (int64_t ci = 0; ci < cg; ci++)                                \
                                for (int64_t k0 = 0; k0 < v->k[0]; k0++) {                     \
                                    int64_t i0 = o0 * v->stride[0] - v->pad_l[0] + k0 * v->dil[0]; \
                                    if (i0 < 0 || i0 >= v->in[0]) continue;                    \
                                    for (int64_t k1 = 0; k1 < v->k[1]; k1++) {                 \
                                        int64_t i1 = o1 * v->stride[1] - v->pad_l[1] + k1 * v->dil[1]; \
                                        if (i1 < 0 || i1 >= v->in[1]) continue;                \
                                        for (int64_t k2 = 0; k2 < v->k[2]; k2++) {             \
                                            int64_t i2 = o2 * v->stride[2] - v->pad_l[2] + k2 * v->dil[2]; \
                                            if (i2 < 0 || i2 >= v->in[2]) continue;            \
                                            acc += (ACC)xg[ci * isz + (i0 * v->in[1] + i1) * v->in[2] + i2] * \
                                                   (ACC)wm[ci * ksz + (k0 * v->k[1] + k1) * v->k[2] + k2]; \
                                        }                                                      \
                                    }                                                          \
                                }                                                              \
                            ym[(o0 * v->out[1] + o1) * v->out[2] + o2] = (T)acc;               \
                        }                                                                      \
            }                                                                                  \
    }

DEFINE_REF_CONV(celer_ref_conv_f32, float, double)
DEFINE_REF_CONV(celer_ref_conv_f64, double, double)
DEFINE_REF_CONV(celer_ref_conv_i32, int32_t, int64_t)

/* Transposed convolution as a scatter: every input element adds x * w into the outputs its
 * kernel window reaches. */
#define DEFINE_REF_CONV_T(NAME, T)                                                             \
    void NAME(const celer_conv_geom *g, const T *x, const T *w, const T *b, T *y) {            \
        const celer_window *v = &g->win;                                                       \
        int64_t cg = g->c / g->group, mg = g->m / g->group;                                    \
        int64_t isz = v->in[0] * v->in[1] * v->in[2];                                          \
        int64_t osz = v->out[0] * v->out[1] * v->out[2], ksz = v->k[0] * v->k[1] * v->k[2];    \
        for (int64_t n = 0; n < g->n; n++)                                                     \
            for (int64_t m = 0; m < g->m; m++)                                                 \
                for (int64_t o = 0; o < osz; o++) y[(n * g->m + m) * osz + o] = b ? b[m] : 0;  \
        for (int64_t n = 0; n < g->n; n++)                                                     \
            for (int64_t c = 0; c < g->c; c++)                                                 \
                for (int64_t mi = 0; mi < mg; mi++) {                                          \
                    int64_t m = c / cg * mg + mi;                                              \
                    const T *xc = x + (n * g->c + c) * isz, *wc = w + (c * mg + mi) * ksz;     \
                    T *ym = y + (n * g->m + m) * osz;                                          \
                    for (int64_t i0 = 0; i0 < v->in[0]; i0++)                                  \
                        for (int64_t i1 = 0; i1 < v->in[1]; i1++)                              \
                            for (int64_t i2 = 0; i2 < v->in[2]; i2++) {                        \
                                T xv = xc[(i0 * v->in[1] + i1) * v->in[2] + i2];               \
                                for (int64_t k0 = 0; k0 < v->k[0]; k0++) {                     \
                                    int64_t o0 = i0 * v->stride[0] - v->pad_l[0] + k0 * v->dil[0]; \
                                    if (o0 < 0 || o0 >= v->out[0]) continue;                   \
                                    for (int64_t k1 = 0; k1 < v->k[1]; k1++) {                 \
                                        int64_t o1 = i1 * v->stride[1] - v->pad_l[1] + k1 * v->dil[1]; \
                                        if (o1 < 0 || o1 >= v->out[1]) continue;               \
                                        for (int64_t k2 = 0; k2 < v->k[2]; k2++) {             \
                                            int64_t o2 = i2 * v->stride[2] - v->pad_l[2] + k2 * v->dil[2]; \
                                            if (o2 < 0 || o2 >= v->out[2]) continue;           \
                                            ym[(o0 * v->out[1] + o1) * v->out[2] + o2] +=      \
                                                xv * wc[(k0 * v->k[1] + k1) * v->k[2] + k2];   \
                                        }                                                      \
                                    }                                                          \
                                }                                                              \
                            }                                                                  \
                }                                                                              \
    }

DEFINE_REF_CONV_T(celer_ref_conv_transpose_f32, float)
DEFINE_REF_CONV_T(celer_ref_conv_transpose_f64, double)

/* ---- Gemm ---- */

celer_status celer_gemm_check_c(const char *who, const celer_shape *c, int64_t m, int64_t n) {
    int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    if (c->rank > 2 || (cm != 1 && cm != m) || (cn != 1 && cn != n)) {
        char buf[160];
        return celer_errorf(CELER_ERR_SHAPE, "%s: C %s does not broadcast to [%lld,%lld]", who,
                            celer_shape_str(c, buf, sizeof buf), (long long)m, (long long)n);
    }
    return CELER_OK;
}

int64_t celer_gemm_c_index(const celer_shape *c, int64_t i, int64_t j) {
    int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    return (cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j);
}

#define DEFINE_REF_GEMM(NAME, T)                                                               \
    void NAME(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,          \
              const T *b, T beta, const T *c, const celer_shape *cshape, T *y) {               \
        for (int64_t i = 0; i < m; i++)                                                        \
            for (int64_t j = 0; j < n; j++) {                                                  \
                double acc = 0;                                                                \
                for (int64_t p = 0; p < k; p++)                                                \
                    acc += (double)(ta ? a[p * m + i] : a[i * k + p]) *                        \
                           (double)(tb ? b[j * k + p] : b[p * n + j]);                         \
                double v = alpha * acc;                                                        \
                if (c) v += (double)beta * c[celer_gemm_c_index(cshape, i, j)];                \
                y[i * n + j] = (T)v;                                                           \
            }                                                                                  \
    }

DEFINE_REF_GEMM(celer_ref_gemm_f32, float)
DEFINE_REF_GEMM(celer_ref_gemm_f64, double)

/* Integer element i of dtype t as a 64-bit pattern (sign-extended), and back. */
static uint64_t int_load(celer_dtype t, const void *p, int64_t i) {
    switch (t) {
    case CELER_INT32: return (uint64_t)(int64_t)((const int32_t *)p)[i];
    case CELER_INT64: return (uint64_t)((const int64_t *)p)[i];
    case CELER_UINT32: return ((const uint32_t *)p)[i];
    case CELER_UINT64: return ((const uint64_t *)p)[i];
    default: return 0;
    }
}

static double int_value(celer_dtype t, uint64_t v) {
    return t == CELER_UINT32 || t == CELER_UINT64 ? (double)v : (double)(int64_t)v;
}

static void int_store(celer_dtype t, void *p, int64_t i, uint64_t v) {
    switch (t) {
    case CELER_INT32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
    case CELER_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case CELER_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case CELER_UINT64: ((uint64_t *)p)[i] = v; break;
    default: break;
    }
}

void celer_ref_gemm_int(celer_dtype t, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        double alpha, const void *a, const void *b, double beta, const void *c,
                        const celer_shape *cshape, void *y) {
    bool plain = alpha == 1 && (!c || beta == 0 || beta == 1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            uint64_t acc = 0; /* unsigned: wraps like the two's complement result */
            for (int64_t p = 0; p < k; p++)
                acc += int_load(t, a, ta ? p * m + i : i * k + p) *
                       int_load(t, b, tb ? j * k + p : p * n + j);
            if (plain) {
                if (c && beta == 1) acc += int_load(t, c, celer_gemm_c_index(cshape, i, j));
                int_store(t, y, i * n + j, acc);
            } else {
                double v = alpha * int_value(t, acc);
                if (c) v += beta * int_value(t, int_load(t, c, celer_gemm_c_index(cshape, i, j)));
                int_store(t, y, i * n + j,
                          t == CELER_UINT32 || t == CELER_UINT64 ? (uint64_t)v
                                                                 : (uint64_t)(int64_t)v);
            }
        }
}

/* ---- MatMul ---- */

celer_status celer_matmul_plan_make(const char *who, const celer_shape *a, const celer_shape *b,
                                    celer_matmul_plan *p, celer_shape *y) {
    char b1[160], b2[160];
    memset(p, 0, sizeof *p);
    if (a->rank < 1 || b->rank < 1)
        return celer_errorf(CELER_ERR_SHAPE, "%s: inputs %s and %s must have rank >= 1", who,
                            celer_shape_str(a, b1, sizeof b1), celer_shape_str(b, b2, sizeof b2));
    /* 1-D operands: A (K) acts as (1,K), B (K) as (K,1); the unit dim is dropped from Y */
    p->m = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    p->k = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    p->n = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != p->k)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: inner dimensions differ: A %s has K=%lld, B %s has K=%lld", who,
                            celer_shape_str(a, b1, sizeof b1), (long long)p->k,
                            celer_shape_str(b, b2, sizeof b2), (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int r = CELER_MAX(ra, rb);
    if (r + 2 > CELER_MAX_RANK)
        return celer_errorf(CELER_ERR_SHAPE, "%s: rank too large", who);
    p->batch_rank = r;
    p->batch = 1;
    p->b_shared = true;
    int64_t sa, sb; /* element stride of the current batch dim */
    if (__builtin_mul_overflow(p->m, p->k, &sa) || __builtin_mul_overflow(p->k, p->n, &sb))
        return celer_errorf(CELER_ERR_LIMIT, "%s: matrix size overflows", who);
    for (int i = r - 1; i >= 0; i--) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return celer_errorf(CELER_ERR_SHAPE, "%s: batch dimensions of A %s and B %s do not "
                                "broadcast", who, celer_shape_str(a, b1, sizeof b1),
                                celer_shape_str(b, b2, sizeof b2));
        p->bdims[i] = da == 1 ? db : da;
        p->a_bstride[i] = da == 1 ? 0 : sa;
        p->b_bstride[i] = db == 1 ? 0 : sb;
        if (db != 1) p->b_shared = false;
        if (__builtin_mul_overflow(sa, da, &sa) || __builtin_mul_overflow(sb, db, &sb) ||
            __builtin_mul_overflow(p->batch, p->bdims[i], &p->batch))
            return celer_errorf(CELER_ERR_LIMIT, "%s: batch size overflows", who);
    }
    /* A's batches are consecutive when it has every batch dim itself (no broadcast of A) */
    p->a_dense = true;
    for (int i = 0; i < r; i++)
        if (p->a_bstride[i] == 0 && p->bdims[i] != 1) p->a_dense = false;
    y->rank = 0;
    for (int i = 0; i < r; i++) y->dims[y->rank++] = p->bdims[i];
    if (a->rank > 1) y->dims[y->rank++] = p->m;
    if (b->rank > 1) y->dims[y->rank++] = p->n;
    return celer_ref_check_numel(who, "output", y);
}

void celer_matmul_plan_offsets(const celer_matmul_plan *p, int64_t bi, int64_t *a_off,
                               int64_t *b_off) {
    int64_t ao = 0, bo = 0;
    for (int i = p->batch_rank - 1; i >= 0; i--) {
        int64_t idx = bi % p->bdims[i];
        bi /= p->bdims[i];
        ao += idx * p->a_bstride[i];
        bo += idx * p->b_bstride[i];
    }
    *a_off = ao;
    *b_off = bo;
}

#define DEFINE_REF_MATMUL(NAME, T, ACC)                                                        \
    void NAME(const celer_matmul_plan *p, const T *a, const T *b, T *y) {                      \
        for (int64_t bi = 0; bi < p->batch; bi++) {                                            \
            int64_t ao, bo;                                                                    \
            celer_matmul_plan_offsets(p, bi, &ao, &bo);                                        \
            T *yb = y + bi * p->m * p->n;                                                      \
            for (int64_t i = 0; i < p->m; i++)                                                 \
                for (int64_t j = 0; j < p->n; j++) {                                           \
                    ACC acc = 0;                                                               \
                    for (int64_t q = 0; q < p->k; q++)                                         \
                        acc += (ACC)a[ao + i * p->k + q] * (ACC)b[bo + q * p->n + j];          \
                    yb[i * p->n + j] = (T)acc;                                                 \
                }                                                                              \
        }                                                                                      \
    }

DEFINE_REF_MATMUL(celer_ref_matmul_f32, float, double)
DEFINE_REF_MATMUL(celer_ref_matmul_f64, double, double)

void celer_ref_matmul_i32(const celer_matmul_plan *p, const int32_t *a, const int32_t *b,
                          int32_t *y) {
    for (int64_t bi = 0; bi < p->batch; bi++) {
        int64_t ao, bo;
        celer_matmul_plan_offsets(p, bi, &ao, &bo);
        int32_t *yb = y + bi * p->m * p->n;
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t j = 0; j < p->n; j++) {
                uint32_t acc = 0; /* wraps instead of overflowing */
                for (int64_t q = 0; q < p->k; q++)
                    acc += (uint32_t)a[ao + i * p->k + q] * (uint32_t)b[bo + q * p->n + j];
                yb[i * p->n + j] = (int32_t)acc;
            }
    }
}

void celer_ref_matmul_int(celer_dtype t, const celer_matmul_plan *p, const void *a, const void *b,
                          void *y) {
    for (int64_t bi = 0; bi < p->batch; bi++) {
        int64_t ao, bo;
        celer_matmul_plan_offsets(p, bi, &ao, &bo);
        for (int64_t i = 0; i < p->m; i++)
            for (int64_t j = 0; j < p->n; j++) {
                uint64_t acc = 0;
                for (int64_t q = 0; q < p->k; q++)
                    acc += int_load(t, a, ao + i * p->k + q) * int_load(t, b, bo + q * p->n + j);
                int_store(t, y, bi * p->m * p->n + i * p->n + j, acc);
            }
    }
}

void celer_ref_widen_i32(const celer_tensor *t, const celer_tensor *zp, int64_t inner,
                         int32_t *out) {
    int64_t n = celer_shape_numel(&t->shape), zn = zp ? celer_shape_numel(&zp->shape) : 0;
    if (t->dtype == CELER_UINT8 && zn <= 1) { /* the common case, without per-element switch */
        int32_t z = zn ? (int32_t)celer_ops_int_at(zp, 0) : 0;
        const uint8_t *p = t->data;
        for (int64_t i = 0; i < n; i++) out[i] = (int32_t)p[i] - z;
        return;
    }
    if (t->dtype == CELER_INT8 && zn <= 1) {
        int32_t z = zn ? (int32_t)celer_ops_int_at(zp, 0) : 0;
        const int8_t *p = t->data;
        for (int64_t i = 0; i < n; i++) out[i] = (int32_t)p[i] - z;
        return;
    }
    if (inner < 1) inner = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t z = zn ? (int32_t)celer_ops_int_at(zp, zn == 1 ? 0 : (i / inner) % zn) : 0;
        out[i] = (int32_t)celer_ops_int_at(t, i) - z;
    }
}
