/* norm: normalisations (BatchNormalization, InstanceNormalization, LayerNormalization,
 * RMSNormalization, GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization),
 * Dropout, and the two losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss).
 *
 * Statistics are accumulated in double; the per-element passes over float data are plain
 * contiguous loops (LayerNorm over the last axis is the hot one for transformers). Float16 and
 * bfloat16 go through float or double element access: correct, not fast. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"
#include "ops.h"
#include "vmath.h"

#define WHO(info) celer_ops_who((info), who, sizeof who)

static celer_status check_numel(const celer_op_info *info, const celer_tensor *t, int64_t *n) {
    char who[160];
    *n = celer_shape_numel(&t->shape);
    if (*n < 0)
        return celer_errorf(CELER_ERR_LIMIT, "%s: input element count overflows", WHO(info));
    return CELER_OK;
}

/* Whether node output i exists (named) in the model. */
static bool output_wanted(const celer_kernel_call *call, int i) {
    const celer_onnx_node *n = call->info->node;
    return i < call->n_out && i < n->n_outputs && n->outputs[i] && n->outputs[i][0];
}

static celer_status need_numel(const celer_kernel_call *call, const celer_tensor *t,
                               const char *what, int64_t want) {
    char who[160], buf[96];
    if (!t)
        return celer_errorf(CELER_ERR_INVALID, "%s: input '%s' is missing", WHO(call->info), what);
    if (celer_shape_numel(&t->shape) != want)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input '%s' has shape %s, expected %lld elements",
                            WHO(call->info), what, celer_shape_str(&t->shape, buf, sizeof buf),
                            (long long)want);
    return CELER_OK;
}

/* The float pass of affine_span, also built for AVX2 and AVX-512 (CELER_VECTOR_CLONES). */
CELER_VECTOR_CLONES
static void affine_f32(const float *s, float *d, int64_t n, float m, float a, float b) {
    for (int64_t i = 0; i < n; i++) d[i] = (s[i] - m) * a + b;
}

/* y[i] = (x[i] - m) * a + b over n elements at offset off, typed for speed on float and double.
 * Subtracting the mean first (rather than folding it into b) avoids cancellation when the mean
 * is large against the spread. */
static void affine_span(const celer_tensor *x, celer_tensor *y, int64_t off, int64_t n, double m,
                        double a, double b) {
    if (x->dtype == CELER_FLOAT) {
        affine_f32((const float *)x->data + off, (float *)y->data + off, n, (float)m, (float)a,
                   (float)b);
    } else if (x->dtype == CELER_DOUBLE) {
        const double *s = (const double *)x->data + off;
        double *d = (double *)y->data + off;
        for (int64_t i = 0; i < n; i++) d[i] = (s[i] - m) * a + b;
    } else {
        for (int64_t i = 0; i < n; i++)
            celer_ops_double_store(y, off + i, (celer_ops_double_at(x, off + i) - m) * a + b);
    }
}

/* Partial sums of the row statistics in vectors of 16 lanes (GCC vector extensions): each
 * CELER_VECTOR_CLONES clone runs them at its machine's width with the partials in registers,
 * where arrays of partial sums stayed in memory (10 LayerNorms over [128, 768] at 1 thread: 0.66
 * -> 0.226 ms, 0.67 -> 0.23 ns an element; ONNX Runtime 0.49 ms). */
typedef float ln_vf32 __attribute__((vector_size(16 * sizeof(float))));
typedef double ln_vf64 __attribute__((vector_size(16 * sizeof(double))));

/* Sum of p[i] - m (sq: of its square) over n floats: float partial sums in 16 lanes per block of
 * STATS_BLOCK elements, added up in double, so the rounding of a float partial stays that of a
 * short sum however long the span (GroupNormalization's run over whole groups of channels). */
#define STATS_BLOCK 1024
CELER_VECTOR_CLONES
static double sum_f32(const float *p, int64_t n, float m, bool sq) {
    double total = 0;
    for (int64_t b = 0; b < n; b += STATS_BLOCK) {
        int64_t e = CELER_MIN(n, b + STATS_BLOCK), i = b;
        ln_vf32 part = {0}, v;
        for (; i + 16 <= e; i += 16) {
            memcpy(&v, p + i, sizeof v);
            v -= m;
            part += sq ? v * v : v;
        }
        float tail = 0;
        for (; i < e; i++) tail += sq ? (p[i] - m) * (p[i] - m) : p[i] - m;
        total += tail;
        for (int k = 0; k < 16; k++) total += part[k];
    }
    return total;
}

/* Mean and population variance of n elements at off (two passes: exact enough in double). */
static void span_stats(const celer_tensor *x, int64_t off, int64_t n, double *mean, double *var) {
    double s = 0, q = 0;
    if (x->dtype == CELER_FLOAT) {
        const float *p = (const float *)x->data + off;
        double m = n ? sum_f32(p, n, 0, false) / (double)n : 0;
        q = sum_f32(p, n, (float)m, true);
        *mean = m;
    } else {
        for (int64_t i = 0; i < n; i++) s += celer_ops_double_at(x, off + i);
        double m = n ? s / (double)n : 0;
        for (int64_t i = 0; i < n; i++) {
            double d = celer_ops_double_at(x, off + i) - m;
            q += d * d;
        }
        *mean = m;
    }
    *var = n ? q / (double)n : 0;
}

/* ======================================================================================
 * BatchNormalization
 * ====================================================================================== */

typedef struct bn_state {
    float epsilon, momentum;
    bool training, spatial;
} bn_state;

static celer_status bn_init(const celer_op_info *info, void **state) {
    char who[160];
    bn_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->epsilon = celer_onnx_attr_float(info->node, "epsilon", 1e-5f);
    s->momentum = celer_onnx_attr_float(info->node, "momentum", 0.9f);
    s->training = info->since_version >= 14 &&
                  celer_onnx_attr_int(info->node, "training_mode", 0) != 0;
    s->spatial = info->since_version >= 9 || celer_onnx_attr_int(info->node, "spatial", 1) != 0;
    *state = s;
    return CELER_OK;
}

static celer_status bn_types(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs; i++)
        out[i] = i == 0 || info->n_inputs < 4 ? info->input_types[0] : info->input_types[3];
    return CELER_OK;
}

/* Channels, elements per (n, c), and parameters per channel (1, or inner when spatial = 0). */
static celer_status bn_geometry(const celer_kernel_call *call, int64_t *N, int64_t *C,
                                int64_t *inner, int64_t *per) {
    char who[160], buf[96];
    const bn_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int64_t n;
    celer_status st = check_numel(call->info, x, &n);
    if (st) return st;
    if (x->shape.rank < 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input X has shape %s, expected rank >= 2",
                            WHO(call->info), celer_shape_str(&x->shape, buf, sizeof buf));
    *N = x->shape.dims[0];
    *C = x->shape.dims[1];
    *inner = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    *per = s->spatial ? 1 : *inner;
    static const char *names[] = {"scale", "B", "mean", "var"};
    for (int i = 1; i <= 4; i++)
        if ((st = need_numel(call, celer_ops_input(call, i), names[i - 1], *C * *per))) return st;
    return CELER_OK;
}

static celer_status bn_reshape(celer_kernel_call *call) {
    char who[160];
    const bn_state *s = call->state;
    int64_t N, C, inner, per;
    celer_status st = bn_geometry(call, &N, &C, &inner, &per);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    bool extra = false;
    for (int i = 1; i < call->n_out; i++) {
        extra |= output_wanted(call, i);
        call->out[i].shape = call->in[3]->shape;
    }
    if (extra && !s->training)
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: the training outputs (mean, var, saved_mean, saved_var) are only "
                            "supported with training_mode = 1 at opset >= 14",
                            WHO(call->info));
    /* per-channel batch mean and variance in training mode */
    return s->training ? celer_ops_add_scratch(call, (size_t)C, 16) : CELER_OK;
}

static celer_status bn_run(celer_kernel_call *call) {
    const bn_state *s = call->state;
    int64_t N, C, inner, per;
    celer_status st = bn_geometry(call, &N, &C, &inner, &per);
    if (st) return st;
    const celer_tensor *x = call->in[0], *scale = call->in[1], *bias = call->in[2];
    const celer_tensor *mean = call->in[3], *var = call->in[4];
    celer_tensor *y = &call->out[0];
    /* scratch only exists in training mode (see bn_reshape) */
    double *bmean = call->scratch, *bvar = s->training ? bmean + C : NULL;
    if (s->training) {
        /* batch statistics per channel over N and the spatial dims */
        for (int64_t c = 0; c < C; c++) {
            double sum = 0, sq = 0, cnt = (double)(N * inner);
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < inner; i++) sum += celer_ops_double_at(x, (n * C + c) * inner + i);
            double m = cnt ? sum / cnt : 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < inner; i++) {
                    double d = celer_ops_double_at(x, (n * C + c) * inner + i) - m;
                    sq += d * d;
                }
            bmean[c] = m;
            bvar[c] = cnt ? sq / cnt : 0;
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (n * C + c) * inner;
            for (int64_t p = 0; p < per; p++) {
                int64_t k = c * per + p;
                double m = s->training ? bmean[c] : celer_ops_double_at(mean, k);
                double v = s->training ? bvar[c] : celer_ops_double_at(var, k);
                double a = celer_ops_double_at(scale, k) / sqrt(v + (double)s->epsilon);
                double b = celer_ops_double_at(bias, k);
                if (per == 1) affine_span(x, y, off, inner, m, a, b);
                else affine_span(x, y, off + p, 1, m, a, b);
            }
        }
    if (s->training) {
        double mom = s->momentum;
        for (int64_t c = 0; c < C; c++) {
            if (output_wanted(call, 1))
                celer_ops_double_store(&call->out[1], c,
                                       celer_ops_double_at(mean, c) * mom + bmean[c] * (1 - mom));
            if (output_wanted(call, 2))
                celer_ops_double_store(&call->out[2], c,
                                       celer_ops_double_at(var, c) * mom + bvar[c] * (1 - mom));
        }
    }
    return CELER_OK;
}

/* ======================================================================================
 * InstanceNormalization
 * ====================================================================================== */

typedef struct eps_state {
    float epsilon;
} eps_state;

static celer_status in_init(const celer_op_info *info, void **state) {
    char who[160];
    eps_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->epsilon = celer_onnx_attr_float(info->node, "epsilon", 1e-5f);
    *state = s;
    return CELER_OK;
}

static celer_status in_geometry(const celer_kernel_call *call, int64_t *N, int64_t *C,
                                int64_t *inner) {
    char who[160], buf[96];
    const celer_tensor *x = call->in[0];
    int64_t n;
    celer_status st = check_numel(call->info, x, &n);
    if (st) return st;
    if (x->shape.rank < 3)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input has shape %s, expected rank >= 3",
                            WHO(call->info), celer_shape_str(&x->shape, buf, sizeof buf));
    *N = x->shape.dims[0];
    *C = x->shape.dims[1];
    *inner = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    if ((st = need_numel(call, celer_ops_input(call, 1), "scale", *C))) return st;
    return need_numel(call, celer_ops_input(call, 2), "B", *C);
}

static celer_status in_reshape(celer_kernel_call *call) {
    int64_t N, C, inner;
    celer_status st = in_geometry(call, &N, &C, &inner);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

static celer_status in_run(celer_kernel_call *call) {
    const eps_state *s = call->state;
    int64_t N, C, inner;
    celer_status st = in_geometry(call, &N, &C, &inner);
    if (st) return st;
    const celer_tensor *x = call->in[0];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (n * C + c) * inner;
            double m, v;
            span_stats(x, off, inner, &m, &v);
            double a = celer_ops_double_at(call->in[1], c) / sqrt(v + (double)s->epsilon);
            double b = celer_ops_double_at(call->in[2], c);
            affine_span(x, &call->out[0], off, inner, m, a, b);
        }
    return CELER_OK;
}

/* ======================================================================================
 * LayerNormalization (opset 17): normalise over dims [axis, rank), then Y = norm * Scale + B.
 * Scale and B cover the normalised dims (or a trailing part of them, repeated).
 * ====================================================================================== */

typedef struct ln_state {
    int64_t axis;
    float epsilon;
} ln_state;

static celer_status ln_init(const celer_op_info *info, void **state) {
    char who[160];
    ln_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->axis = celer_onnx_attr_int(info->node, "axis", -1);
    s->epsilon = celer_onnx_attr_float(info->node, "epsilon", 1e-5f);
    if (celer_onnx_attr_int(info->node, "stash_type", 1) != 1) {
        free(s);
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: only stash_type = 1 (float) is supported",
                            WHO(info));
    }
    *state = s;
    return CELER_OK;
}

static celer_status ln_types(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->input_types[0];
    for (int i = 1; i < info->n_outputs; i++) out[i] = CELER_FLOAT; /* stash_type */
    return CELER_OK;
}

/* A trailing part of the normalised shape, repeated: Scale/B of numel `n` apply as p[i % n]. */
static celer_status ln_param(const celer_kernel_call *call, const celer_tensor *t, const char *what,
                             int axis, int64_t *n) {
    char who[160], a[96], b[96];
    const celer_shape *xs = &call->in[0]->shape, *ps = &t->shape;
    bool scalar = celer_shape_numel(ps) == 1, ok = scalar || ps->rank <= xs->rank - axis;
    /* dims right-aligned: equal to X's up to some point, then only 1s further left */
    bool ones = false;
    for (int i = 0; ok && !scalar && i < ps->rank; i++) {
        int64_t pd = ps->dims[ps->rank - 1 - i], xd = xs->dims[xs->rank - 1 - i];
        if (pd == xd && !ones) continue;
        if (pd == 1) ones = true;
        else ok = false;
    }
    if (!ok)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input '%s' has shape %s, which does not fit the "
                            "normalised dims of X %s from axis %d",
                            WHO(call->info), what, celer_shape_str(ps, a, sizeof a),
                            celer_shape_str(xs, b, sizeof b), axis);
    *n = celer_shape_numel(ps);
    return CELER_OK;
}

typedef struct ln_geom {
    int axis;
    int64_t rows, cols, numel, nw, nb; /* nb 0: no bias */
} ln_geom;

static celer_status ln_geometry(const celer_kernel_call *call, ln_geom *g) {
    char who[160];
    const ln_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, &g->axis);
    if (st || (st = check_numel(call->info, x, &g->numel))) return st;
    g->rows = celer_ops_dims_prod(x->shape.dims, 0, g->axis);
    g->cols = celer_ops_dims_prod(x->shape.dims, g->axis, x->shape.rank);
    const celer_tensor *w = celer_ops_input(call, 1), *b = celer_ops_input(call, 2);
    if (!w) return celer_errorf(CELER_ERR_INVALID, "%s: input 'Scale' is missing", WHO(call->info));
    if ((st = ln_param(call, w, "Scale", g->axis, &g->nw))) return st;
    g->nb = 0;
    if (b && (st = ln_param(call, b, "B", g->axis, &g->nb))) return st;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "%s: Scale and B must have X's type %s",
                            WHO(call->info), celer_dtype_name(x->dtype));
    return CELER_OK;
}

static celer_status ln_reshape(celer_kernel_call *call) {
    ln_geom g;
    celer_status st = ln_geometry(call, &g);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    for (int i = 1; i < call->n_out; i++) {
        call->out[i].shape = call->in[0]->shape;
        for (int d = g.axis; d < call->in[0]->shape.rank; d++) call->out[i].shape.dims[d] = 1;
    }
    celer_dtype t = call->in[0]->dtype;
    if (t == CELER_FLOAT16 || t == CELER_BFLOAT16) /* X, Y, Scale, B as float */
        return celer_ops_add_scratch(call, (size_t)g.numel * 2 + (size_t)g.nw + (size_t)g.nb, 4);
    return CELER_OK;
}

/* Rows [r0, r1): mean and inverse std in the accumulation type (partial sums in ln_v vectors),
 * then the affine pass. Built for AVX2 and AVX-512 too (CELER_VECTOR_CLONES). */
#define DEFINE_LN_ROWS(T, SUF)                                                                     \
    CELER_VECTOR_CLONES                                                                            \
    static void ln_rows_##SUF(const T *x, T *y, const T *w, const T *b, const ln_geom *g,          \
                              double eps, float *mean_out, float *inv_out, int64_t r0,             \
                              int64_t r1) {                                                        \
        int64_t n = g->cols;                                                                       \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T *xr = x + r * n;                                                               \
            T *yr = y + r * n;                                                                     \
            ln_v##SUF pv = {0}, qv = {0}, v;                                                       \
            int64_t i = 0;                                                                         \
            for (; i + 16 <= n; i += 16) {                                                         \
                memcpy(&v, xr + i, sizeof v);                                                      \
                pv += v;                                                                           \
            }                                                                                      \
            double sum = 0;                                                                        \
            for (int k = 0; k < 16; k++) sum += pv[k];                                             \
            for (; i < n; i++) sum += xr[i];                                                       \
            T m = (T)(sum / (double)n);                                                            \
            for (i = 0; i + 16 <= n; i += 16) {                                                    \
                memcpy(&v, xr + i, sizeof v);                                                      \
                v -= m;                                                                            \
                qv += v * v;                                                                       \
            }                                                                                      \
            double sq = 0;                                                                         \
            for (int k = 0; k < 16; k++) sq += qv[k];                                              \
            for (; i < n; i++) sq += (double)((xr[i] - m) * (xr[i] - m));                          \
            T inv = (T)(1.0 / sqrt(sq / (double)n + eps));                                         \
            if (g->nw == n && (g->nb == n || g->nb == 0)) {                                        \
                if (b)                                                                             \
                    for (i = 0; i < n; i++) yr[i] = (xr[i] - m) * inv * w[i] + b[i];               \
                else                                                                               \
                    for (i = 0; i < n; i++) yr[i] = (xr[i] - m) * inv * w[i];                      \
            } else {                                                                               \
                for (i = 0; i < n; i++)                                                            \
                    yr[i] = (xr[i] - m) * inv * w[i % g->nw] + (b ? b[i % g->nb] : (T)0);          \
            }                                                                                      \
            if (mean_out) mean_out[r] = (float)m;                                                  \
            if (inv_out) inv_out[r] = (float)inv;                                                  \
        }                                                                                          \
    }
DEFINE_LN_ROWS(float, f32)
DEFINE_LN_ROWS(double, f64)

/* Float rows split across the run's threads from 4K elements a thread (two passes of a few
 * operations an element, about 0.66 ns an element: like elementwise.c's EW_PAR_MIN_HEAVY case).
 * Measured (10 LayerNorms over rows of 768, 1 thread against 2): 16K elements 10.8 -> 6.5 us a
 * node, 64K 43.9 -> 23.2 (rows of 384: 11.2 -> 7.6 at 16K). */
#define LN_PAR_MIN ((int64_t)1 << 12)
typedef struct ln_job {
    const float *x, *w, *b;
    float *y, *mean, *inv;
    const ln_geom *g;
    double eps;
} ln_job;
static void ln_range(void *ctx, size_t lo, size_t hi) {
    const ln_job *j = ctx;
    ln_rows_f32(j->x, j->y, j->w, j->b, j->g, j->eps, j->mean, j->inv, (int64_t)lo, (int64_t)hi);
}
static void ln_rows_par(const float *x, float *y, const float *w, const float *b, const ln_geom *g,
                        double eps, float *mean, float *inv) {
    ln_job j = {x, w, b, y, mean, inv, g, eps};
    int64_t per = CELER_MAX(1, LN_PAR_MIN / CELER_MAX(1, g->cols));
    celer_ops_parallel_for((size_t)g->rows, (size_t)per, 1, ln_range, &j);
}

static void to_float(const celer_tensor *t, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = (float)celer_ops_double_at(t, i);
}

static celer_status ln_run(celer_kernel_call *call) {
    const ln_state *s = call->state;
    ln_geom g;
    celer_status st = ln_geometry(call, &g);
    if (st) return st;
    if (g.numel == 0) return CELER_OK;
    const celer_tensor *x = call->in[0], *w = call->in[1], *b = celer_ops_input(call, 2);
    celer_tensor *y = &call->out[0];
    float *mean = output_wanted(call, 1) ? call->out[1].data : NULL;
    float *inv = output_wanted(call, 2) ? call->out[2].data : NULL;
    if (x->dtype == CELER_FLOAT) {
        ln_rows_par(x->data, y->data, w->data, b ? b->data : NULL, &g, s->epsilon, mean, inv);
    } else if (x->dtype == CELER_DOUBLE) {
        ln_rows_f64(x->data, y->data, w->data, b ? b->data : NULL, &g, s->epsilon, mean, inv, 0,
                    g.rows);
    } else {
        float *xf = call->scratch, *yf = xf + g.numel, *wf = yf + g.numel, *bf = wf + g.nw;
        to_float(x, xf, g.numel);
        to_float(w, wf, g.nw);
        if (b) to_float(b, bf, g.nb);
        ln_rows_par(xf, yf, wf, b ? bf : NULL, &g, s->epsilon, mean, inv);
        for (int64_t i = 0; i < g.numel; i++) celer_ops_double_store(y, i, yf[i]);
    }
    return CELER_OK;
}

/* ======================================================================================
 * RMSNormalization (23): Y = X / sqrt(mean of X^2 over dims [axis, rank) + epsilon) * scale.
 * scale covers the normalised dims (or a trailing part of them, repeated) as in
 * LayerNormalization, and gives Y its type, which may differ from X's.
 * ====================================================================================== */

static celer_status rms_init(const celer_op_info *info, void **state) {
    char who[160];
    int64_t stash = celer_onnx_attr_int(info->node, "stash_type", 1);
    if (stash != 1)
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: attribute stash_type = %lld is not supported (only 1, float)",
                            WHO(info), (long long)stash);
    ln_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->axis = celer_onnx_attr_int(info->node, "axis", -1);
    s->epsilon = celer_onnx_attr_float(info->node, "epsilon", 1e-5f);
    *state = s;
    return CELER_OK;
}

static celer_status rms_types(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->n_inputs > 1 ? info->input_types[1] : info->input_types[0];
    return CELER_OK;
}

static celer_status rms_geometry(const celer_kernel_call *call, ln_geom *g) {
    const ln_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, &g->axis);
    if (st || (st = check_numel(call->info, x, &g->numel))) return st;
    g->rows = celer_ops_dims_prod(x->shape.dims, 0, g->axis);
    g->cols = celer_ops_dims_prod(x->shape.dims, g->axis, x->shape.rank);
    g->nb = 0;
    return ln_param(call, call->in[1], "scale", g->axis, &g->nw);
}

/* X and scale of one type T, computed in T: float and double. */
static bool rms_direct(const celer_kernel_call *call) {
    celer_dtype t = call->in[0]->dtype;
    return t == call->in[1]->dtype && (t == CELER_FLOAT || t == CELER_DOUBLE);
}

static celer_status rms_reshape(celer_kernel_call *call) {
    ln_geom g;
    celer_status st = rms_geometry(call, &g);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    if (rms_direct(call)) return CELER_OK;
    /* other type pairs: X, Y and scale as float */
    return celer_ops_add_scratch(call, (size_t)g.numel * 2 + (size_t)g.nw, 4);
}

/* Mean square per row with partial sums in ln_v vectors (like LayerNorm's), then one pass. */
#define DEFINE_RMS_ROWS(T, SUF)                                                                    \
    CELER_VECTOR_CLONES                                                                            \
    static void rms_rows_##SUF(const T *x, T *y, const T *w, const ln_geom *g, double eps) {       \
        int64_t n = g->cols;                                                                       \
        for (int64_t r = 0; r < g->rows; r++) {                                                    \
            const T *xr = x + r * n;                                                               \
            T *yr = y + r * n;                                                                     \
            ln_v##SUF part = {0}, v;                                                               \
            int64_t i = 0;                                                                         \
            for (; i + 16 <= n; i += 16) {                                                         \
                memcpy(&v, xr + i, sizeof v);                                                      \
                part += v * v;                                                                     \
            }                                                                                      \
            double sq = 0;                                                                         \
            for (int k = 0; k < 16; k++) sq += part[k];                                            \
            for (; i < n; i++) sq += (double)(xr[i] * xr[i]);                                      \
            T inv = (T)(1.0 / sqrt(sq / (double)n + eps));                                         \
            if (g->nw == n)                                                                        \
                for (i = 0; i < n; i++) yr[i] = xr[i] * inv * w[i];                                \
            else                                                                                   \
                for (i = 0; i < n; i++) yr[i] = xr[i] * inv * w[i % g->nw];                        \
        }                                                                                          \
    }
DEFINE_RMS_ROWS(float, f32)
DEFINE_RMS_ROWS(double, f64)

static celer_status rms_run(celer_kernel_call *call) {
    const ln_state *s = call->state;
    ln_geom g;
    celer_status st = rms_geometry(call, &g);
    if (st) return st;
    if (g.numel == 0) return CELER_OK;
    const celer_tensor *x = call->in[0], *w = call->in[1];
    celer_tensor *y = &call->out[0];
    if (rms_direct(call)) {
        if (x->dtype == CELER_FLOAT) rms_rows_f32(x->data, y->data, w->data, &g, s->epsilon);
        else rms_rows_f64(x->data, y->data, w->data, &g, s->epsilon);
        return CELER_OK;
    }
    float *xf = call->scratch, *yf = xf + g.numel, *wf = yf + g.numel;
    to_float(x, xf, g.numel);
    to_float(w, wf, g.nw);
    rms_rows_f32(xf, yf, wf, &g, s->epsilon);
    for (int64_t i = 0; i < g.numel; i++) celer_ops_double_store(y, i, yf[i]);
    return CELER_OK;
}

/* ======================================================================================
 * GroupNormalization (18, 21): X [N, C, ...] in num_groups groups of C / num_groups channels;
 * each (n, group) is normalised over its channels and spatial dims together, then scaled and
 * shifted per group at 18 (scale and bias of num_groups elements: the version onnx deprecated)
 * or per channel from 21 (C elements).
 * ====================================================================================== */

typedef struct gn_state {
    int64_t groups;
    float epsilon;
    bool per_channel;
} gn_state;

static celer_status gn_init(const celer_op_info *info, void **state) {
    char who[160];
    const celer_onnx_attr *a = celer_onnx_attr_find(info->node, "num_groups");
    if (!a || a->type != CELER_ATTR_INT)
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute 'num_groups' (int) is required",
                            WHO(info));
    if (a->i < 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: num_groups must be >= 1, got %lld", WHO(info),
                            (long long)a->i);
    int64_t stash = info->since_version >= 21 ? celer_onnx_attr_int(info->node, "stash_type", 1) : 1;
    if (stash != 1)
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: attribute stash_type = %lld is not supported (only 1, float)",
                            WHO(info), (long long)stash);
    gn_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->groups = a->i;
    s->epsilon = celer_onnx_attr_float(info->node, "epsilon", 1e-5f);
    s->per_channel = info->since_version >= 21;
    *state = s;
    return CELER_OK;
}

static celer_status gn_geometry(const celer_kernel_call *call, int64_t *N, int64_t *C,
                                int64_t *inner) {
    char who[160], buf[96];
    const gn_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int64_t n;
    celer_status st = check_numel(call->info, x, &n);
    if (st) return st;
    if (x->shape.rank < 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input X has shape %s, expected [N, C, ...]",
                            WHO(call->info), celer_shape_str(&x->shape, buf, sizeof buf));
    *N = x->shape.dims[0];
    *C = x->shape.dims[1];
    *inner = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    if (*C % s->groups)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: num_groups = %lld does not divide the %lld channels of X %s",
                            WHO(call->info), (long long)s->groups, (long long)*C,
                            celer_shape_str(&x->shape, buf, sizeof buf));
    /* before 21 one value per group: say so, the shape of 21 being the one users expect */
    int64_t per = s->per_channel ? *C : s->groups;
    if ((st = need_numel(call, call->in[1], s->per_channel ? "scale" : "scale (per group before opset 21)", per)) ||
        (st = need_numel(call, call->in[2], s->per_channel ? "bias" : "bias (per group before opset 21)", per)))
        return st;
    if (call->in[1]->dtype != x->dtype || call->in[2]->dtype != x->dtype)
        return celer_errorf(CELER_ERR_DTYPE, "%s: scale and bias must have X's type %s",
                            WHO(call->info), celer_dtype_name(x->dtype));
    return CELER_OK;
}

static celer_status gn_reshape(celer_kernel_call *call) {
    int64_t N, C, inner;
    celer_status st = gn_geometry(call, &N, &C, &inner);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

static celer_status gn_run(celer_kernel_call *call) {
    const gn_state *s = call->state;
    int64_t N, C, inner;
    celer_status st = gn_geometry(call, &N, &C, &inner);
    if (st) return st;
    const celer_tensor *x = call->in[0], *scale = call->in[1], *bias = call->in[2];
    int64_t G = s->groups, cpg = C / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            double m, v;
            span_stats(x, (n * C + g * cpg) * inner, cpg * inner, &m, &v);
            double inv = 1.0 / sqrt(v + (double)s->epsilon);
            for (int64_t c = g * cpg; c < (g + 1) * cpg; c++) {
                int64_t k = s->per_channel ? c : g;
                affine_span(x, &call->out[0], (n * C + c) * inner, inner, m,
                            celer_ops_double_at(scale, k) * inv, celer_ops_double_at(bias, k));
            }
        }
    return CELER_OK;
}

/* ======================================================================================
 * LRN: y = x / (bias + alpha / size * sum of x^2 over a window of channels) ^ beta
 * ====================================================================================== */

typedef struct lrn_state {
    float alpha, beta, bias;
    int64_t size;
} lrn_state;

static celer_status lrn_init(const celer_op_info *info, void **state) {
    char who[160];
    lrn_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->alpha = celer_onnx_attr_float(info->node, "alpha", 1e-4f);
    s->beta = celer_onnx_attr_float(info->node, "beta", 0.75f);
    s->bias = celer_onnx_attr_float(info->node, "bias", 1.0f);
    s->size = celer_onnx_attr_int(info->node, "size", 0);
    if (s->size < 1) {
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute 'size' must be >= 1", WHO(info));
    }
    *state = s;
    return CELER_OK;
}

static celer_status lrn_reshape(celer_kernel_call *call) {
    char who[160], buf[96];
    const celer_tensor *x = call->in[0];
    int64_t n;
    celer_status st = check_numel(call->info, x, &n);
    if (st) return st;
    if (x->shape.rank < 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input has shape %s, expected rank >= 2",
                            WHO(call->info), celer_shape_str(&x->shape, buf, sizeof buf));
    call->out[0].shape = x->shape;
    /* running sum of squares per spatial position */
    return celer_ops_add_scratch(call, (size_t)celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank), 8);
}

static celer_status lrn_run(celer_kernel_call *call) {
    const lrn_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    int64_t N = x->shape.dims[0], C = x->shape.dims[1];
    int64_t inner = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    int64_t lo = (s->size - 1) / 2, hi = s->size - 1 - lo; /* floor / ceil of (size-1)/2 */
    double *sq = call->scratch, k = (double)s->alpha / (double)s->size;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            for (int64_t i = 0; i < inner; i++) sq[i] = 0;
            int64_t c0 = CELER_MAX(0, c - lo), c1 = CELER_MIN(C - 1, c + hi);
            for (int64_t cc = c0; cc <= c1; cc++) {
                int64_t off = (n * C + cc) * inner;
                if (x->dtype == CELER_FLOAT) {
                    const float *p = (const float *)x->data + off;
                    for (int64_t i = 0; i < inner; i++) sq[i] += (double)p[i] * p[i];
                } else {
                    for (int64_t i = 0; i < inner; i++) {
                        double v = celer_ops_double_at(x, off + i);
                        sq[i] += v * v;
                    }
                }
            }
            int64_t off = (n * C + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                celer_ops_double_store(y, off + i, celer_ops_double_at(x, off + i) /
                                                       pow((double)s->bias + k * sq[i], s->beta));
        }
    return CELER_OK;
}

/* ======================================================================================
 * MeanVarianceNormalization: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes`.
 * ====================================================================================== */

typedef struct mvn_state {
    int n_axes;
    int64_t axes[CELER_MAX_RANK];
} mvn_state;

static celer_status mvn_init(const celer_op_info *info, void **state) {
    char who[160];
    mvn_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    const int64_t *axes;
    int n = celer_onnx_attr_ints(info->node, "axes", &axes);
    if (n < 0) {
        static const int64_t dflt[] = {0, 2, 3};
        axes = dflt;
        n = 3;
    }
    if (n > CELER_MAX_RANK) {
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: too many axes (%d)", WHO(info), n);
    }
    s->n_axes = n;
    memcpy(s->axes, axes, sizeof(int64_t) * (size_t)n);
    *state = s;
    return CELER_OK;
}

/* Output-of-reduction stride per input dim (0 for reduced dims) and the reduced count. */
static celer_status mvn_plan(const celer_kernel_call *call, int64_t *ostride, int64_t *n_stats,
                             int64_t *count) {
    char who[160];
    const mvn_state *s = call->state;
    const celer_shape *sh = &call->in[0]->shape;
    bool mask[CELER_MAX_RANK] = {0};
    for (int i = 0; i < s->n_axes; i++) {
        int a;
        celer_status st = celer_ops_axis(call->info, s->axes[i], sh->rank, &a);
        if (st) return st;
        if (mask[a])
            return celer_errorf(CELER_ERR_INVALID, "%s: axis %lld is listed twice",
                                WHO(call->info), (long long)s->axes[i]);
        mask[a] = true;
    }
    int64_t st = 1;
    *count = 1;
    for (int d = sh->rank - 1; d >= 0; d--) {
        ostride[d] = mask[d] ? 0 : st;
        if (mask[d]) *count *= sh->dims[d];
        else st *= sh->dims[d];
    }
    *n_stats = st;
    return CELER_OK;
}

static celer_status mvn_reshape(celer_kernel_call *call) {
    int64_t ostride[CELER_MAX_RANK], n_stats, count, n;
    celer_status st = mvn_plan(call, ostride, &n_stats, &count);
    if (st || (st = check_numel(call->info, call->in[0], &n))) return st;
    call->out[0].shape = call->in[0]->shape;
    return celer_ops_add_scratch(call, (size_t)n_stats, 16);
}

static celer_status mvn_run(celer_kernel_call *call) {
    int64_t ostride[CELER_MAX_RANK], n_stats, count;
    celer_status st = mvn_plan(call, ostride, &n_stats, &count);
    if (st) return st;
    const celer_tensor *x = call->in[0];
    const celer_shape *sh = &x->shape;
    int64_t numel = celer_shape_numel(sh);
    double *sum = call->scratch, *sq = sum + n_stats;
    for (int64_t i = 0; i < n_stats; i++) sum[i] = sq[i] = 0;
    for (int pass = 0; pass < 2; pass++) {
        int64_t idx[CELER_MAX_RANK] = {0}, o = 0;
        for (int64_t i = 0; i < numel; i++) {
            double v = celer_ops_double_at(x, i);
            if (pass == 0) {
                sum[o] += v;
                sq[o] += v * v;
            } else {
                celer_ops_double_store(&call->out[0], i, (v - sum[o]) / sq[o]);
            }
            for (int d = sh->rank - 1; d >= 0; d--) {
                o += ostride[d];
                if (++idx[d] < sh->dims[d]) break;
                o -= ostride[d] * sh->dims[d];
                idx[d] = 0;
            }
        }
        if (pass == 0)
            for (int64_t j = 0; j < n_stats; j++) {
                double m = sum[j] / (double)count, var = sq[j] / (double)count - m * m;
                sum[j] = m;
                sq[j] = sqrt(var > 0 ? var : 0) + 1e-9;
            }
    }
    return CELER_OK;
}

/* ======================================================================================
 * LpNormalization: x / ||x||_p along `axis` (p = 1 or 2).
 * ====================================================================================== */

typedef struct lp_state {
    int64_t axis, p;
} lp_state;

static celer_status lp_init(const celer_op_info *info, void **state) {
    char who[160];
    lp_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->axis = celer_onnx_attr_int(info->node, "axis", -1);
    s->p = celer_onnx_attr_int(info->node, "p", 2);
    if (s->p != 1 && s->p != 2) {
        long long p = (long long)s->p;
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: p must be 1 or 2, got %lld", WHO(info), p);
    }
    *state = s;
    return CELER_OK;
}

static celer_status lp_reshape(celer_kernel_call *call) {
    const lp_state *s = call->state;
    int axis;
    int64_t n;
    celer_status st = celer_ops_axis(call->info, s->axis, call->in[0]->shape.rank, &axis);
    if (st || (st = check_numel(call->info, call->in[0], &n))) return st;
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

static celer_status lp_run(celer_kernel_call *call) {
    const lp_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int axis;
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, &axis);
    if (st) return st;
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis), n = x->shape.rank ? x->shape.dims[axis] : 1;
    int64_t inner = celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            double norm = 0;
            for (int64_t j = 0; j < n; j++) {
                double v = celer_ops_double_at(x, base + j * inner);
                norm += s->p == 1 ? fabs(v) : v * v;
            }
            if (s->p == 2) norm = sqrt(norm);
            for (int64_t j = 0; j < n; j++) {
                double v = celer_ops_double_at(x, base + j * inner);
                celer_ops_double_store(&call->out[0], base + j * inner, norm > 0 ? v / norm : 0);
            }
        }
    return CELER_OK;
}

/* ======================================================================================
 * Dropout: identity at inference (and in training with ratio 0), mask all true. In training mode
 * (opset >= 12, training_mode input true) elements are kept where u >= ratio, u uniform in [0, 1)
 * from MT19937 seeded with the `seed` attribute and drawn as NumPy's legacy RandomState does,
 * so a seeded node reproduces the ONNX reference outputs; kept elements are scaled by
 * 1 / (1 - ratio).
 * ====================================================================================== */

typedef struct dropout_state {
    bool has_seed;
    uint32_t seed;
    float ratio; /* attribute before opset 12 */
} dropout_state;

static celer_status dropout_init(const celer_op_info *info, void **state) {
    char who[160];
    dropout_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->has_seed = celer_onnx_attr_find(info->node, "seed") != NULL;
    s->seed = (uint32_t)celer_onnx_attr_int(info->node, "seed", 0);
    s->ratio = celer_onnx_attr_float(info->node, "ratio", 0.5f);
    *state = s;
    return CELER_OK;
}

static celer_status dropout_types(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->input_types[0];
    /* the mask was of type T before opset 10, bool since */
    if (info->n_outputs > 1) out[1] = info->since_version >= 10 ? CELER_BOOL : info->input_types[0];
    return CELER_OK;
}

/* Training ratio, or 0 when the node runs as identity. */
static celer_status dropout_ratio(const celer_kernel_call *call, double *ratio) {
    char who[160];
    const celer_tensor *r = celer_ops_input(call, 1), *training = celer_ops_input(call, 2);
    *ratio = 0;
    if (call->info->since_version < 12 || !training) return CELER_OK;
    if (training->dtype != CELER_BOOL || celer_shape_numel(&training->shape) != 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: input 'training_mode' must be one bool",
                            WHO(call->info));
    if (!((const uint8_t *)training->data)[0]) return CELER_OK;
    *ratio = 0.5;
    if (r) {
        if (celer_shape_numel(&r->shape) != 1)
            return celer_errorf(CELER_ERR_INVALID, "%s: input 'ratio' must be a scalar",
                                WHO(call->info));
        *ratio = celer_ops_double_at(r, 0);
    }
    if (!(*ratio >= 0 && *ratio < 1))
        return celer_errorf(CELER_ERR_INVALID, "%s: ratio %g is outside [0, 1)", WHO(call->info),
                            *ratio);
    return CELER_OK;
}

static celer_status dropout_reshape(celer_kernel_call *call) {
    double ratio;
    int64_t n;
    celer_status st = check_numel(call->info, call->in[0], &n);
    if (st || (st = dropout_ratio(call, &ratio))) return st;
    for (int i = 0; i < call->n_out && i < 2; i++) call->out[i].shape = call->in[0]->shape;
    return CELER_OK;
}

/* MT19937 (Matsumoto & Nishimura), seeded by init_genrand as NumPy's RandomState.seed(int). */
typedef struct mt19937 {
    uint32_t s[624];
    int i;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t seed) {
    m->s[0] = seed;
    for (int i = 1; i < 624; i++)
        m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + (uint32_t)i;
    m->i = 624;
}

static uint32_t mt_next(mt19937 *m) {
    if (m->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
            m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0);
        }
        m->i = 0;
    }
    uint32_t y = m->s[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

/* A double in [0, 1) from 53 random bits, as NumPy's random_sample. */
static double mt_uniform(mt19937 *m) {
    uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

static celer_status dropout_run(celer_kernel_call *call) {
    const dropout_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    double ratio;
    celer_status st = dropout_ratio(call, &ratio);
    if (st) return st;
    bool mask_out = output_wanted(call, 1) && call->out[1].data;
    int64_t n = celer_shape_numel(&x->shape);
    if (ratio == 0) {
        size_t bytes;
        if ((st = celer_tensor_bytes(x, &bytes))) return st;
        if (bytes && y->data != x->data) memcpy(y->data, x->data, bytes);
        if (mask_out)
            for (int64_t i = 0; i < n; i++) celer_ops_double_store(&call->out[1], i, 1);
        return CELER_OK;
    }
    /* without a seed attribute each run draws a fresh sequence */
    static _Atomic uint32_t counter = 0x5eed;
    mt19937 mt;
    mt_seed(&mt, s->has_seed ? s->seed : counter++);
    double scale = 1.0 / (1.0 - ratio);
    for (int64_t i = 0; i < n; i++) {
        bool keep = mt_uniform(&mt) >= ratio;
        celer_ops_double_store(y, i, keep ? celer_ops_double_at(x, i) * scale : 0);
        if (mask_out) celer_ops_double_store(&call->out[1], i, keep);
    }
    return CELER_OK;
}

/* ======================================================================================
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 * input [N, C, d1..dk], target [N, d1..dk] with class ids, optional weight [C].
 * loss = -input[n, target, d] * weight[target] (0 where target == ignore_index), then reduced:
 * none, sum, or mean = sum / sum of the weights of the targets not ignored.
 * SoftmaxCrossEntropyLoss applies log-softmax over C first (optional output 1).
 * ====================================================================================== */

typedef enum { RED_NONE, RED_SUM, RED_MEAN } loss_reduction;

typedef struct loss_state {
    loss_reduction reduction;
    bool has_ignore, softmax;
    int64_t ignore_index;
} loss_state;

static celer_status loss_init(const celer_op_info *info, void **state) {
    char who[160];
    loss_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    const char *r = celer_onnx_attr_string(info->node, "reduction", "mean");
    if (!strcmp(r, "none")) s->reduction = RED_NONE;
    else if (!strcmp(r, "sum")) s->reduction = RED_SUM;
    else if (!strcmp(r, "mean")) s->reduction = RED_MEAN;
    else {
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: reduction '%s' is not none, sum or mean",
                            WHO(info), r);
    }
    s->has_ignore = celer_onnx_attr_find(info->node, "ignore_index") != NULL;
    s->ignore_index = celer_onnx_attr_int(info->node, "ignore_index", 0);
    s->softmax = !strcmp(info->node->op_type, "SoftmaxCrossEntropyLoss");
    *state = s;
    return CELER_OK;
}

static celer_status loss_geometry(const celer_kernel_call *call, int64_t *N, int64_t *C,
                                  int64_t *D) {
    char who[160], a[96], b[96];
    const celer_tensor *x = call->in[0], *t = celer_ops_input(call, 1), *w = celer_ops_input(call, 2);
    int64_t n;
    celer_status st = check_numel(call->info, x, &n);
    if (st) return st;
    if (x->shape.rank < 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input has shape %s, expected [N, C, ...]",
                            WHO(call->info), celer_shape_str(&x->shape, a, sizeof a));
    if (!t) return celer_errorf(CELER_ERR_INVALID, "%s: the target input is missing", WHO(call->info));
    if (t->dtype != CELER_INT64 && t->dtype != CELER_INT32)
        return celer_errorf(CELER_ERR_DTYPE, "%s: target must be int32 or int64, got %s",
                            WHO(call->info), celer_dtype_name(t->dtype));
    bool ok = t->shape.rank == x->shape.rank - 1 && t->shape.dims[0] == x->shape.dims[0];
    for (int d = 1; ok && d < t->shape.rank; d++) ok = t->shape.dims[d] == x->shape.dims[d + 1];
    if (!ok)
        return celer_errorf(CELER_ERR_SHAPE, "%s: target has shape %s, expected input %s without dim 1",
                            WHO(call->info), celer_shape_str(&t->shape, a, sizeof a),
                            celer_shape_str(&x->shape, b, sizeof b));
    *N = x->shape.dims[0];
    *C = x->shape.dims[1];
    *D = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    if (w && (st = need_numel(call, w, "weight", *C))) return st;
    return CELER_OK;
}

static celer_status loss_types(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs; i++) out[i] = info->input_types[0];
    return CELER_OK;
}

static celer_status loss_reshape(celer_kernel_call *call) {
    const loss_state *s = call->state;
    int64_t N, C, D;
    celer_status st = loss_geometry(call, &N, &C, &D);
    if (st) return st;
    if (s->reduction == RED_NONE) call->out[0].shape = call->in[1]->shape;
    else call->out[0].shape.rank = 0;
    if (call->n_out > 1) call->out[1].shape = call->in[0]->shape;
    /* SCE: log-probabilities in double */
    if (s->softmax) return celer_ops_add_scratch(call, (size_t)(N * C * D), 8);
    return CELER_OK;
}

static celer_status loss_run(celer_kernel_call *call) {
    char who[160];
    const loss_state *s = call->state;
    int64_t N, C, D;
    celer_status st = loss_geometry(call, &N, &C, &D);
    if (st) return st;
    const celer_tensor *x = call->in[0], *t = call->in[1], *w = celer_ops_input(call, 2);
    const celer_tensor *lp = x;
    celer_tensor lpt;
    if (s->softmax) {
        double *l = call->scratch;
        for (int64_t n = 0; n < N; n++)
            for (int64_t d = 0; d < D; d++) {
                int64_t base = n * C * D + d;
                double m = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++) m = fmax(m, celer_ops_double_at(x, base + c * D));
                for (int64_t c = 0; c < C; c++) sum += exp(celer_ops_double_at(x, base + c * D) - m);
                double ls = m + log(sum);
                for (int64_t c = 0; c < C; c++)
                    l[base + c * D] = celer_ops_double_at(x, base + c * D) - ls;
            }
        if (output_wanted(call, 1))
            for (int64_t i = 0; i < N * C * D; i++) celer_ops_double_store(&call->out[1], i, l[i]);
        lpt = (celer_tensor){.dtype = CELER_DOUBLE, .shape = x->shape, .data = l};
        lp = &lpt;
    }
    double total = 0, wsum = 0;
    celer_tensor *y = &call->out[0];
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) {
            int64_t k = n * D + d, cls = celer_ops_int_at(t, k);
            double loss = 0;
            if (!(s->has_ignore && cls == s->ignore_index)) {
                if (cls < 0 || cls >= C)
                    return celer_errorf(CELER_ERR_INVALID,
                                        "%s: target %lld at position %lld is outside [0, %lld)",
                                        WHO(call->info), (long long)cls, (long long)k,
                                        (long long)C);
                double wt = w ? celer_ops_double_at(w, cls) : 1;
                loss = -celer_ops_double_at(lp, (n * C + cls) * D + d) * wt;
                wsum += wt;
            }
            if (s->reduction == RED_NONE) celer_ops_double_store(y, k, loss);
            total += loss;
        }
    if (s->reduction == RED_SUM) celer_ops_double_store(y, 0, total);
    else if (s->reduction == RED_MEAN) celer_ops_double_store(y, 0, wsum != 0 ? total / wsum : 0);
    return CELER_OK;
}

/* ======================================================================================
 * The table
 * ====================================================================================== */

#define NORM_TYPES (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16))
#define KERNEL(name, since, until, types, infer, init, pre)                                        \
    {"", name, since, until, types, 0, 0, infer, init, pre##_reshape, pre##_run, free, NULL}

static const celer_kernel kernels[] = {
    KERNEL("BatchNormalization", 6, 8, NORM_TYPES, bn_types, bn_init, bn),
    KERNEL("BatchNormalization", 9, 13, NORM_TYPES, bn_types, bn_init, bn),
    KERNEL("BatchNormalization", 14, 14, NORM_TYPES, bn_types, bn_init, bn),
    KERNEL("BatchNormalization", 15, CELER_OPS_MAX_VERSION, NORM_TYPES, bn_types, bn_init, bn),
    KERNEL("InstanceNormalization", 1, CELER_OPS_MAX_VERSION, CELER_DTS_FLOATS, NULL, in_init, in),
    KERNEL("LayerNormalization", 17, CELER_OPS_MAX_VERSION, NORM_TYPES, ln_types, ln_init, ln),
    /* the same kernel under celer's domain, for the pass that finds LayerNormalization written
     * out in files of any opset (graph/optimize.c) */
    {CELER_GRAPH_INTERNAL_DOMAIN, "LayerNormalization", 1, CELER_OPS_MAX_VERSION, NORM_TYPES, 0, 0, ln_types,
     ln_init, ln_reshape, ln_run, free, NULL},
    KERNEL("GroupNormalization", 18, 20, NORM_TYPES, NULL, gn_init, gn),
    KERNEL("GroupNormalization", 21, CELER_OPS_MAX_VERSION, NORM_TYPES, NULL, gn_init, gn),
    KERNEL("RMSNormalization", 23, CELER_OPS_MAX_VERSION, NORM_TYPES, rms_types, rms_init, rms),
    KERNEL("LRN", 1, 12, NORM_TYPES, NULL, lrn_init, lrn),
    KERNEL("LRN", 13, CELER_OPS_MAX_VERSION, NORM_TYPES, NULL, lrn_init, lrn),
    KERNEL("MeanVarianceNormalization", 9, 12, NORM_TYPES, NULL, mvn_init, mvn),
    KERNEL("MeanVarianceNormalization", 13, CELER_OPS_MAX_VERSION, NORM_TYPES, NULL, mvn_init, mvn),
    KERNEL("LpNormalization", 1, CELER_OPS_MAX_VERSION, CELER_DTS_FLOATS, NULL, lp_init, lp),
    KERNEL("Dropout", 1, 9, NORM_TYPES, dropout_types, dropout_init, dropout),
    KERNEL("Dropout", 10, 11, NORM_TYPES, dropout_types, dropout_init, dropout),
    KERNEL("Dropout", 12, 12, NORM_TYPES, dropout_types, dropout_init, dropout),
    KERNEL("Dropout", 13, CELER_OPS_MAX_VERSION, NORM_TYPES, dropout_types, dropout_init, dropout),
    KERNEL("NegativeLogLikelihoodLoss", 12, 12, CELER_DTS_FLOATS, loss_types, loss_init, loss),
    KERNEL("NegativeLogLikelihoodLoss", 13, CELER_OPS_MAX_VERSION, CELER_DTS_FLOATS, loss_types, loss_init, loss),
    KERNEL("SoftmaxCrossEntropyLoss", 12, 12, NORM_TYPES, loss_types, loss_init, loss),
    KERNEL("SoftmaxCrossEntropyLoss", 13, CELER_OPS_MAX_VERSION, NORM_TYPES, loss_types, loss_init, loss),
};

const celer_kernel_family celer_family_norm = {"norm", kernels, (int)CELER_ARRAY_LEN(kernels)};
