/* pool operators in plain C over NC(D)(H)W data: MaxPool (with Indices), AveragePool, LpPool,
 * their Global forms, MaxUnpool and MaxRoiPool.
 *
 * State (init): the parsed window attributes. reshape checks and computes output shapes; run
 * recomputes the same (allocation-free) geometry, so no per-context state is needed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "reference.h"
#include "vmath.h"

/* Elements (read + written) per thread below which a pool stays on one thread: the pools are
 * bound by memory, and a split costs about 0.5 us with the spinning team (see elementwise.c).
 * Measured (10 nodes, 1 thread against 2): GlobalAveragePool 16K 1.10 -> 1.33 us a node (loses),
 * 64K 3.5 -> 2.6; 1-D MaxPool (64 channels, k 3) 16K 4.7 -> 3.2, 64K 14.2 -> 9.5. */
#define POOL_PAR_MIN ((int64_t)1 << 14)

typedef struct pool_state {
    celer_win_attrs a;
    bool col_major;         /* MaxPool storage_order = 1 */
    bool count_include_pad; /* AveragePool */
    double p;               /* LpPool, GlobalLpPool */
    int64_t pooled[2];      /* MaxRoiPool */
    float spatial_scale;
} pool_state;

static celer_status pool_init(const celer_op_info *info, void **state) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    pool_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    celer_status st = celer_win_attrs_parse(info, &s->a);
    const celer_onnx_node *node = info->node;
    s->col_major = celer_onnx_attr_int(node, "storage_order", 0) == 1;
    s->count_include_pad = celer_onnx_attr_int(node, "count_include_pad", 0) == 1;
    const celer_onnx_attr *p = celer_onnx_attr_find(node, "p");
    s->p = !p ? 2.0 : p->type == CELER_ATTR_FLOAT ? (double)p->f : (double)p->i;
    if (!st && !(s->p > 0 && s->p <= 1e6))
        st = celer_errorf(CELER_ERR_INVALID, "%s: p = %g must be positive", who, s->p);
    s->spatial_scale = celer_onnx_attr_float(node, "spatial_scale", 1.0f);
    if (!st && !strcmp(node->op_type, "MaxRoiPool")) {
        const int64_t *ps;
        if (celer_onnx_attr_ints(node, "pooled_shape", &ps) != 2 || ps[0] < 1 || ps[1] < 1 ||
            ps[0] > CELER_REF_MAX_ATTR || ps[1] > CELER_REF_MAX_ATTR)
            st = celer_errorf(CELER_ERR_INVALID, "%s: pooled_shape must be two positive ints", who);
        else
            s->pooled[0] = ps[0], s->pooled[1] = ps[1];
    }
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

/* Window of a (non-global) pool over x: kernel_shape is required. */
static celer_status pool_window(const celer_kernel_call *call, celer_window *w, const char *who) {
    const pool_state *s = call->state;
    const celer_shape *x = &call->in[0]->shape;
    if (x->rank < 3)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input X must have rank >= 3 (N, C, spatial...), got %d",
                            who, x->rank);
    if (s->a.n_kernel != x->rank - 2)
        return celer_errorf(CELER_ERR_INVALID, "%s: kernel_shape must have %d values for a rank-%d input",
                            who, x->rank - 2, x->rank);
    return celer_window_forward(who, &s->a, x->rank - 2, x->dims + 2, s->a.kernel, w);
}

static celer_shape window_out_shape(const celer_shape *x, const celer_window *w) {
    celer_shape y = *x;
    for (int i = 0; i < w->nsp; i++) y.dims[2 + i] = w->out[3 - w->nsp + i];
    return y;
}

static celer_status pool_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    celer_window w;
    celer_status st = pool_window(call, &w, who);
    if (st) return st;
    for (int i = 0; i < call->n_out; i++) call->out[i].shape = window_out_shape(&call->in[0]->shape, &w);
    return celer_ref_check_numel(who, "output", &call->out[0].shape);
}

#define WINDOW_LOOPS_BEGIN(v)                                                                  \
    for (int64_t o0 = 0; o0 < (v)->out[0]; o0++)                                               \
        for (int64_t o1 = 0; o1 < (v)->out[1]; o1++)                                           \
            for (int64_t o2 = 0; o2 < (v)->out[2]; o2++) {                                     \
                int64_t b0 = o0 * (v)->stride[0] - (v)->pad_l[0];                              \
                int64_t b1 = o1 * (v)->stride[1] - (v)->pad_l[1];                              \
                int64_t b2 = o2 * (v)->stride[2] - (v)->pad_l[2];                              \
                int64_t o = (o0 * (v)->out[1] + o1) * (v)->out[2] + o2;

#define WINDOW_LOOPS_END }

/* The kernel taps k in [0, k_len) whose position b + k * dil lies in [lo, hi): [*first, *end).
 * Looping over these alone keeps the work bounded by the input, not by kernel_shape (a huge
 * kernel with SAME padding is valid and would otherwise spin over padding). */
static void tap_range(int64_t b, int64_t dil, int64_t k_len, int64_t lo, int64_t hi, int64_t *first,
                      int64_t *end) {
    int64_t a = lo - b, z = hi - 1 - b; /* want a <= k * dil <= z */
    int64_t f = a <= 0 ? 0 : (a + dil - 1) / dil;
    int64_t e = z < 0 ? 0 : z / dil + 1;
    *first = f;
    *end = CELER_MAX(f, CELER_MIN(e, k_len));
}

/* ---- MaxPool ---- */

#define DEFINE_MAXPOOL(NAME, T)                                                                \
    static void NAME(const celer_window *v, int64_t planes, const T *x, T *y, int64_t *ind,    \
                     bool col_major) {                                                         \
        int64_t isz = v->in[0] * v->in[1] * v->in[2], osz = v->out[0] * v->out[1] * v->out[2]; \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            const T *xp = x + pl * isz;                                                        \
            WINDOW_LOOPS_BEGIN(v)                                                              \
            T best = 0;                                                                        \
            int64_t bi = -1, c0 = 0, c1 = 0, c2 = 0;                                           \
            int64_t f0, e0, f1, e1, f2, e2;                                                    \
            tap_range(b0, v->dil[0], v->k[0], 0, v->in[0], &f0, &e0);                          \
            tap_range(b1, v->dil[1], v->k[1], 0, v->in[1], &f1, &e1);                          \
            tap_range(b2, v->dil[2], v->k[2], 0, v->in[2], &f2, &e2);                          \
            for (int64_t k0 = f0; k0 < e0; k0++) {                                             \
                int64_t i0 = b0 + k0 * v->dil[0];                                              \
                for (int64_t k1 = f1; k1 < e1; k1++) {                                         \
                    int64_t i1 = b1 + k1 * v->dil[1];                                          \
                    for (int64_t k2 = f2; k2 < e2; k2++) {                                     \
                        int64_t i2 = b2 + k2 * v->dil[2];                                      \
                        int64_t idx = (i0 * v->in[1] + i1) * v->in[2] + i2;                    \
                        if (bi < 0 || xp[idx] > best) best = xp[idx], bi = idx, c0 = i0, c1 = i1, c2 = i2; \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            y[pl * osz + o] = best;                                                            \
            if (ind)                                                                           \
                ind[pl * osz + o] = bi < 0 ? -1 : pl * isz + (col_major ? (c2 * v->in[1] + c1) * v->in[0] + c0 : bi); \
            WINDOW_LOOPS_END                                                                   \
        }                                                                                      \
    }

DEFINE_MAXPOOL(maxpool_f32, float)
DEFINE_MAXPOOL(maxpool_f64, double)
DEFINE_MAXPOOL(maxpool_i8, int8_t)
DEFINE_MAXPOOL(maxpool_u8, uint8_t)

static celer_status maxpool_types(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->input_types[0];
    if (info->n_outputs > 1) out[1] = CELER_INT64;
    return CELER_OK;
}

/* Whether optional output i was asked for (present in the node and given a buffer). */
static bool want_output(const celer_kernel_call *call, int i) {
    const celer_onnx_node *node = call->info->node;
    return i < call->n_out && i < node->n_outputs && node->outputs[i][0] && call->out[i].data;
}

/* ---- 1-D float pools (MaxPool / AveragePool over [N, C, W]): the N-D loops above re-derive
 * three tap ranges per output and accumulate in double; here the outputs whose window lies
 * inside the input take the taps as whole passes over the output row (contiguous loads when
 * stride is 1, so the loop vectorizes), and only the few border outputs clip their window. ---- */

typedef struct pool1d_job {
    const celer_window *v;
    const float *x;
    float *y;
    bool is_max, include_pad;
} pool1d_job;

/* One border output: taps clipped to the input; the average's divisor counts the taps inside
 * the padded input (include_pad) or inside the input. No tap inside: 0, as the N-D loop. */
static float pool1d_edge(const celer_window *v, const float *xp, int64_t o, bool is_max,
                         bool include_pad) {
    int64_t b = o * v->stride[2] - v->pad_l[2], f, e, pf, pe;
    tap_range(b, v->dil[2], v->k[2], 0, v->in[2], &f, &e);
    if (is_max) {
        float best = 0;
        for (int64_t k = f; k < e; k++) {
            float t = xp[b + k * v->dil[2]];
            best = k == f || t > best ? t : best;
        }
        return best;
    }
    tap_range(b, v->dil[2], v->k[2], -v->pad_l[2], v->in[2] + v->pad_r[2], &pf, &pe);
    float sum = 0;
    for (int64_t k = f; k < e; k++) sum += xp[b + k * v->dil[2]];
    int64_t n = include_pad ? pe - pf : e - f;
    return n ? sum / (float)n : 0;
}

/* Interior outputs [o_lo, o_hi) of one plane, x0 = the plane's start minus pad_l: a pass per tap
 * over the output row. Inlined with constant strides by pool1d_planes, so that the strided loads
 * of the common non-overlapping windows (stride = kernel = 2, 3, 4) vectorize as well. */
static inline __attribute__((always_inline)) void pool1d_interior(float *yp, const float *x0,
                                                                  int64_t o_lo, int64_t o_hi,
                                                                  int64_t K, int64_t d, int64_t s,
                                                                  bool is_max) {
    for (int64_t o = o_lo; o < o_hi; o++) yp[o] = x0[o * s];
    for (int64_t k = 1; k < K; k++) {
        const float *xk = x0 + k * d;
        if (is_max)
            for (int64_t o = o_lo; o < o_hi; o++) yp[o] = xk[o * s] > yp[o] ? xk[o * s] : yp[o];
        else
            for (int64_t o = o_lo; o < o_hi; o++) yp[o] += xk[o * s];
    }
    if (!is_max)
        for (int64_t o = o_lo; o < o_hi; o++) yp[o] *= 1.0f / (float)K;
}

/* Planes [lo, hi). Interior outputs o in [o_lo, o_hi): o * stride - pad_l >= 0 and the last tap
 * below in. The first tap initializes the maximum, later ones replace it when greater: a NaN at
 * the first tap stays, later NaNs are skipped, as in the N-D loop. */
CELER_VECTOR_CLONES
static void pool1d_planes(void *ctx, size_t lo, size_t hi) {
    const pool1d_job *j = ctx;
    const celer_window *v = j->v;
    const int64_t in = v->in[2], out = v->out[2], s = v->stride[2], d = v->dil[2];
    const int64_t K = v->k[2], pad = v->pad_l[2], span = (K - 1) * d;
    int64_t o_lo = (pad + s - 1) / s;
    int64_t o_hi = in - span + pad <= 0 ? 0 : (in - 1 - span + pad) / s + 1;
    o_hi = CELER_MIN(o_hi, out);
    if (o_lo > o_hi) o_lo = o_hi;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *xp = j->x + (int64_t)pl * in;
        float *yp = j->y + (int64_t)pl * out;
        for (int64_t o = 0; o < o_lo; o++)
            yp[o] = pool1d_edge(v, xp, o, j->is_max, j->include_pad);
        const float *x0 = xp - pad;
        switch (s) {
        case 1: pool1d_interior(yp, x0, o_lo, o_hi, K, d, 1, j->is_max); break;
        case 2: pool1d_interior(yp, x0, o_lo, o_hi, K, d, 2, j->is_max); break;
        case 3: pool1d_interior(yp, x0, o_lo, o_hi, K, d, 3, j->is_max); break;
        case 4: pool1d_interior(yp, x0, o_lo, o_hi, K, d, 4, j->is_max); break;
        default: pool1d_interior(yp, x0, o_lo, o_hi, K, d, s, j->is_max); break;
        }
        for (int64_t o = o_hi; o < out; o++)
            yp[o] = pool1d_edge(v, xp, o, j->is_max, j->include_pad);
    }
}

/* The 1-D path for float with no Indices output, planes split across the run's threads. */
static void pool1d_run(const celer_window *v, int64_t planes, const float *x, float *y, bool is_max,
                       bool include_pad) {
    pool1d_job j = {v, x, y, is_max, include_pad};
    int64_t per = CELER_MAX(1, POOL_PAR_MIN / CELER_MAX(1, v->in[2] + v->out[2]));
    celer_ops_parallel_for((size_t)planes, (size_t)per, 1, pool1d_planes, &j);
}

static celer_status maxpool_run(celer_kernel_call *call) {
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_window v;
    celer_status st = pool_window(call, &v, "MaxPool");
    if (st) return st;
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    int64_t *ind = want_output(call, 1) ? call->out[1].data : NULL;
    void *y = call->out[0].data;
    if (x->dtype == CELER_FLOAT && v.nsp == 1 && !ind) {
        pool1d_run(&v, planes, x->data, y, true, false);
        return CELER_OK;
    }
    switch (x->dtype) {
    case CELER_FLOAT: maxpool_f32(&v, planes, x->data, y, ind, s->col_major); break;
    case CELER_DOUBLE: maxpool_f64(&v, planes, x->data, y, ind, s->col_major); break;
    case CELER_INT8: maxpool_i8(&v, planes, x->data, y, ind, s->col_major); break;
    case CELER_UINT8: maxpool_u8(&v, planes, x->data, y, ind, s->col_major); break;
    default: return celer_errorf(CELER_ERR_DTYPE, "MaxPool: unsupported type %s", celer_dtype_name(x->dtype));
    }
    return CELER_OK;
}

/* ---- AveragePool and LpPool ---- */

enum { POOL_AVG, POOL_LP };

#define DEFINE_SUMPOOL(NAME, T)                                                                \
    static void NAME(const celer_window *v, int64_t planes, const T *x, T *y, int kind,        \
                     bool include_pad, double p) {                                             \
        int64_t isz = v->in[0] * v->in[1] * v->in[2], osz = v->out[0] * v->out[1] * v->out[2]; \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            const T *xp = x + pl * isz;                                                        \
            WINDOW_LOOPS_BEGIN(v)                                                              \
            double sum = 0;                                                                    \
            int64_t n_valid = 0, pf, pe;                                                       \
            double n_padded = 1; /* up to three padded extents multiplied: may pass int64 */   \
            int64_t f0, e0, f1, e1, f2, e2;                                                    \
            for (int d = 0; d < 3; d++) { /* taps inside the padded input, counted */          \
                int64_t bd = d == 0 ? b0 : d == 1 ? b1 : b2;                                   \
                tap_range(bd, v->dil[d], v->k[d], -v->pad_l[d], v->in[d] + v->pad_r[d], &pf, &pe); \
                n_padded *= (double)(pe - pf);                                                 \
            }                                                                                  \
            tap_range(b0, v->dil[0], v->k[0], 0, v->in[0], &f0, &e0);                          \
            tap_range(b1, v->dil[1], v->k[1], 0, v->in[1], &f1, &e1);                          \
            tap_range(b2, v->dil[2], v->k[2], 0, v->in[2], &f2, &e2);                          \
            for (int64_t k0 = f0; k0 < e0; k0++) {                                             \
                int64_t i0 = b0 + k0 * v->dil[0];                                              \
                for (int64_t k1 = f1; k1 < e1; k1++) {                                         \
                    int64_t i1 = b1 + k1 * v->dil[1];                                          \
                    for (int64_t k2 = f2; k2 < e2; k2++) {                                     \
                        int64_t i2 = b2 + k2 * v->dil[2];                                      \
                        double e = xp[(i0 * v->in[1] + i1) * v->in[2] + i2];                   \
                        sum += kind == POOL_AVG ? e : p == 2 ? e * e : pow(fabs(e), p);        \
                        n_valid++;                                                             \
                    }                                                                          \
                }                                                                              \
            }                                                                                  \
            double n = include_pad ? n_padded : (double)n_valid;                               \
            y[pl * osz + o] = (T)(kind == POOL_LP ? (p == 2 ? sqrt(sum) : pow(sum, 1 / p))     \
                                  : n ? sum / n : 0);                                          \
            WINDOW_LOOPS_END                                                                   \
        }                                                                                      \
    }

DEFINE_SUMPOOL(sumpool_f32, float)
DEFINE_SUMPOOL(sumpool_f64, double)

static celer_status sumpool_run(celer_kernel_call *call, int kind) {
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_window v;
    celer_status st = pool_window(call, &v, kind == POOL_AVG ? "AveragePool" : "LpPool");
    if (st) return st;
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    if (x->dtype == CELER_FLOAT && v.nsp == 1 && kind == POOL_AVG)
        pool1d_run(&v, planes, x->data, call->out[0].data, false, s->count_include_pad);
    else if (x->dtype == CELER_FLOAT)
        sumpool_f32(&v, planes, x->data, call->out[0].data, kind, s->count_include_pad, s->p);
    else
        sumpool_f64(&v, planes, x->data, call->out[0].data, kind, s->count_include_pad, s->p);
    return CELER_OK;
}

static celer_status avgpool_run(celer_kernel_call *call) { return sumpool_run(call, POOL_AVG); }
static celer_status lppool_run(celer_kernel_call *call) { return sumpool_run(call, POOL_LP); }

/* ---- Global pools: one value per (n, c) plane, any spatial rank ---- */

static celer_status global_reshape(celer_kernel_call *call) {
    char who[160];
    const celer_shape *x = &call->in[0]->shape;
    if (x->rank < 3)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input X must have rank >= 3 (N, C, spatial...), got %d",
                            celer_ops_who(call->info, who, sizeof who), x->rank);
    celer_shape y = *x;
    for (int i = 2; i < y.rank; i++) y.dims[i] = 1;
    call->out[0].shape = y;
    return CELER_OK;
}

enum { GLOBAL_AVG, GLOBAL_MAX, GLOBAL_LP };

#define DEFINE_GLOBAL(NAME, T)                                                                 \
    static void NAME(int64_t planes, int64_t isz, const T *x, T *y, int kind, double p) {      \
        for (int64_t pl = 0; pl < planes; pl++) {                                              \
            const T *xp = x + pl * isz;                                                        \
            double acc = kind == GLOBAL_MAX ? -INFINITY : 0;                                   \
            for (int64_t i = 0; i < isz; i++) {                                                \
                double e = xp[i];                                                              \
                if (kind == GLOBAL_MAX) acc = e > acc || isnan(e) ? e : acc;                   \
                else acc += kind == GLOBAL_AVG ? e : p == 2 ? e * e : pow(fabs(e), p);         \
            }                                                                                  \
            y[pl] = (T)(kind == GLOBAL_AVG ? (isz ? acc / (double)isz : 0)                     \
                        : kind == GLOBAL_LP ? pow(acc, 1 / p) : acc);                          \
        }                                                                                      \
    }

DEFINE_GLOBAL(global_f32, float)
DEFINE_GLOBAL(global_f64, double)

/* GlobalAveragePool on float, the squeeze-excite blocks' pool: 16 float partial sums per plane
 * (one AVX-512 register; the in-order double sum above cannot vectorize), added in double.
 * Planes split across the run's threads. */
typedef struct gavg_job {
    const float *x;
    float *y;
    int64_t isz;
} gavg_job;
CELER_VECTOR_CLONES
static void gavg_planes_f32(void *ctx, size_t lo, size_t hi) {
    const gavg_job *j = ctx;
    const int64_t n = j->isz;
    for (size_t pl = lo; pl < hi; pl++) {
        const float *xp = j->x + (int64_t)pl * n;
        float part[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (int k = 0; k < 16; k++) part[k] += xp[i + k];
        double sum = 0;
        for (int k = 0; k < 16; k++) sum += part[k];
        for (; i < n; i++) sum += xp[i];
        j->y[pl] = n ? (float)(sum / (double)n) : 0;
    }
}

static celer_status global_run(celer_kernel_call *call, int kind) {
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int64_t planes = x->shape.dims[0] * x->shape.dims[1];
    int64_t isz = planes ? celer_shape_numel(&x->shape) / planes : 0;
    double p = s ? s->p : 2;
    if (x->dtype == CELER_FLOAT && kind == GLOBAL_AVG) {
        gavg_job j = {x->data, call->out[0].data, isz};
        int64_t per = CELER_MAX(1, POOL_PAR_MIN / CELER_MAX(1, isz));
        celer_ops_parallel_for((size_t)planes, (size_t)per, 1, gavg_planes_f32, &j);
    } else if (x->dtype == CELER_FLOAT) {
        global_f32(planes, isz, x->data, call->out[0].data, kind, p);
    } else {
        global_f64(planes, isz, x->data, call->out[0].data, kind, p);
    }
    return CELER_OK;
}

static celer_status gavg_run(celer_kernel_call *call) { return global_run(call, GLOBAL_AVG); }
static celer_status gmax_run(celer_kernel_call *call) { return global_run(call, GLOBAL_MAX); }
static celer_status glp_run(celer_kernel_call *call) { return global_run(call, GLOBAL_LP); }

/* ---- MaxUnpool: Y (zeros) with Y.flat[I[i]] = X[i] ---- */

/* Shape MaxUnpool infers from the attributes (what MaxPool's input was). */
static celer_status unpool_default_shape(const celer_kernel_call *call, const char *who, celer_shape *y) {
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0];
    if (x->shape.rank < 3 || s->a.n_kernel != x->shape.rank - 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: X must have rank >= 3 and kernel_shape rank-2 values", who);
    celer_win_attrs a = s->a;
    a.n_out_pad = a.n_out_shape = a.n_dilations = -1;
    a.auto_pad = CELER_AUTO_PAD_NOTSET;
    celer_window w;
    celer_status st = celer_window_transpose(who, &a, x->shape.rank - 2, x->shape.dims + 2, a.kernel, &w);
    if (st) return st;
    *y = window_out_shape(&x->shape, &w);
    return celer_ref_check_numel(who, "output", y);
}

static celer_status unpool_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *x = call->in[0], *ind = call->in[1];
    const celer_tensor *os = call->n_in > 2 ? call->in[2] : NULL;
    char b1[160], b2[160];
    if (!celer_shape_equal(&x->shape, &ind->shape) || ind->dtype != CELER_INT64)
        return celer_errorf(CELER_ERR_SHAPE, "%s: indices I %s (%s) must be int64 of X's shape %s", who,
                            celer_shape_str(&ind->shape, b1, sizeof b1), celer_dtype_name(ind->dtype),
                            celer_shape_str(&x->shape, b2, sizeof b2));
    celer_shape y;
    celer_status st = unpool_default_shape(call, who, &y);
    if (st) return st;
    if (os) {
        if (os->shape.rank != 1 || os->shape.dims[0] != x->shape.rank ||
            !(os->dtype == CELER_INT64 || os->dtype == CELER_INT32))
            return celer_errorf(CELER_ERR_SHAPE, "%s: output_shape must be a 1-D int64 tensor of %d values",
                                who, x->shape.rank);
        for (int i = 0; i < y.rank; i++) {
            int64_t d = celer_ops_int_at(os, i);
            if (d < y.dims[i])
                return celer_errorf(CELER_ERR_SHAPE,
                                    "%s: output_shape[%d] = %lld is smaller than the inferred %lld",
                                    who, i, (long long)d, (long long)y.dims[i]);
            y.dims[i] = d;
        }
    }
    call->out[0].shape = y;
    return celer_ref_check_numel(who, "output", &y);
}

/* Indices address the inferred output shape; with a larger output_shape each lands at the same
 * coordinates of the bigger tensor. */
static celer_status unpool_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0], *ind = call->in[1];
    celer_tensor *y = &call->out[0];
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    celer_shape d;
    celer_status st = unpool_default_shape(call, who, &d);
    if (st) return st;
    int64_t n = celer_shape_numel(&x->shape), ny = celer_shape_numel(&y->shape);
    int64_t nd = celer_shape_numel(&d);
    bool same = celer_shape_equal(&d, &y->shape);
    size_t es = celer_dtype_size(x->dtype);
    memset(y->data, 0, (size_t)ny * es);
    const int64_t *idx = ind->data;
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= nd)
            return celer_errorf(CELER_ERR_INVALID,
                                "%s: index I[%lld] = %lld is outside the unpooled tensor (%lld elements)",
                                who, (long long)i, (long long)idx[i], (long long)nd);
        int64_t o = idx[i];
        if (!same) { /* unravel in d, ravel in y */
            int64_t rest = idx[i], stride = 1;
            o = 0;
            for (int k = d.rank - 1; k >= 0; k--) {
                o += rest % d.dims[k] * stride;
                rest /= d.dims[k];
                stride *= y->shape.dims[k];
            }
        }
        memcpy((char *)y->data + o * (int64_t)es, (const char *)x->data + i * (int64_t)es, es);
    }
    return CELER_OK;
}

/* ---- MaxRoiPool: max over a pooled_shape grid of bins in each region of interest ---- */

static celer_status roipool_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0], *rois = call->in[1];
    if (x->shape.rank != 4 || rois->shape.rank != 2 || rois->shape.dims[1] != 5 || rois->dtype != x->dtype)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: X must be (N, C, H, W) and rois (num_rois, 5) of the same type", who);
    call->out[0].shape = (celer_shape){4, {rois->shape.dims[0], x->shape.dims[1], s->pooled[0], s->pooled[1]}};
    return celer_ref_check_numel(who, "output", &call->out[0].shape);
}

static celer_status roipool_run(celer_kernel_call *call) {
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0], *rois = call->in[1];
    int64_t n = x->shape.dims[0], c = x->shape.dims[1], h = x->shape.dims[2], w = x->shape.dims[3];
    int64_t nr = rois->shape.dims[0], ph = s->pooled[0], pw = s->pooled[1];
    celer_tensor *y = &call->out[0];
    for (int64_t r = 0; r < nr; r++) {
        double rv[5];
        for (int i = 0; i < 5; i++) rv[i] = celer_ops_double_at(rois, r * 5 + i);
        if (!(rv[0] >= 0 && rv[0] < (double)n)) {
            char who[160];
            return celer_errorf(CELER_ERR_INVALID, "%s: roi %lld has batch index %g outside [0, %lld)",
                                celer_ops_who(call->info, who, sizeof who), (long long)r, rv[0], (long long)n);
        }
        int64_t bn = (int64_t)rv[0];
        double sc = s->spatial_scale;
        /* clamp before converting so absurd coordinates cannot overflow */
        double x1 = round(fmax(fmin(rv[1] * sc, 1e12), -1e12)), y1 = round(fmax(fmin(rv[2] * sc, 1e12), -1e12));
        double x2 = round(fmax(fmin(rv[3] * sc, 1e12), -1e12)), y2 = round(fmax(fmin(rv[4] * sc, 1e12), -1e12));
        double bin_h = fmax(y2 - y1 + 1, 1) / (double)ph, bin_w = fmax(x2 - x1 + 1, 1) / (double)pw;
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t plane = (bn * c + ch) * h * w;
            for (int64_t i = 0; i < ph; i++)
                for (int64_t j = 0; j < pw; j++) {
                    int64_t hs = (int64_t)fmin(fmax(floor((double)i * bin_h) + y1, 0), (double)h);
                    int64_t he = (int64_t)fmin(fmax(ceil((double)(i + 1) * bin_h) + y1, 0), (double)h);
                    int64_t ws = (int64_t)fmin(fmax(floor((double)j * bin_w) + x1, 0), (double)w);
                    int64_t we = (int64_t)fmin(fmax(ceil((double)(j + 1) * bin_w) + x1, 0), (double)w);
                    double best = 0;
                    bool any = false;
                    for (int64_t a = hs; a < he; a++)
                        for (int64_t b = ws; b < we; b++) {
                            double e = celer_ops_double_at(x, plane + a * w + b);
                            if (!any || e > best) best = e, any = true;
                        }
                    celer_ops_double_store(y, ((r * c + ch) * ph + i) * pw + j, best);
                }
        }
    }
    return CELER_OK;
}

#define F32_F64 (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE))
#define MAXPOOL_TYPES (F32_F64 | CELER_DT(CELER_INT8) | CELER_DT(CELER_UINT8))
#define ENTRY(op, since, until, types, infer, reshape, run) \
    {"", op, since, until, types, 0, 0, infer, pool_init, reshape, run, free, NULL}

static const celer_kernel kernels[] = {
    ENTRY("MaxPool", 1, 7, F32_F64, maxpool_types, pool_reshape, maxpool_run),
    ENTRY("MaxPool", 8, 9, F32_F64, maxpool_types, pool_reshape, maxpool_run),
    ENTRY("MaxPool", 10, 10, F32_F64, maxpool_types, pool_reshape, maxpool_run),
    ENTRY("MaxPool", 11, 11, F32_F64, maxpool_types, pool_reshape, maxpool_run),
    ENTRY("MaxPool", 12, CELER_OPS_MAX_VERSION, MAXPOOL_TYPES, maxpool_types, pool_reshape, maxpool_run),
    ENTRY("AveragePool", 1, 6, F32_F64, NULL, pool_reshape, avgpool_run),
    ENTRY("AveragePool", 7, 9, F32_F64, NULL, pool_reshape, avgpool_run),
    ENTRY("AveragePool", 10, 10, F32_F64, NULL, pool_reshape, avgpool_run),
    ENTRY("AveragePool", 11, 18, F32_F64, NULL, pool_reshape, avgpool_run),
    ENTRY("AveragePool", 19, CELER_OPS_MAX_VERSION, F32_F64, NULL, pool_reshape, avgpool_run),
    ENTRY("LpPool", 1, 1, F32_F64, NULL, pool_reshape, lppool_run),
    ENTRY("LpPool", 2, 10, F32_F64, NULL, pool_reshape, lppool_run),
    ENTRY("LpPool", 11, 17, F32_F64, NULL, pool_reshape, lppool_run),
    ENTRY("LpPool", 18, CELER_OPS_MAX_VERSION, F32_F64, NULL, pool_reshape, lppool_run),
    ENTRY("GlobalAveragePool", 1, CELER_OPS_MAX_VERSION, F32_F64, NULL, global_reshape, gavg_run),
    ENTRY("GlobalMaxPool", 1, CELER_OPS_MAX_VERSION, F32_F64, NULL, global_reshape, gmax_run),
    ENTRY("GlobalLpPool", 1, 1, F32_F64, NULL, global_reshape, glp_run),
    ENTRY("GlobalLpPool", 2, CELER_OPS_MAX_VERSION, F32_F64, NULL, global_reshape, glp_run),
    ENTRY("MaxUnpool", 9, 10, F32_F64, NULL, unpool_reshape, unpool_run),
    ENTRY("MaxUnpool", 11, CELER_OPS_MAX_VERSION, F32_F64, NULL, unpool_reshape, unpool_run),
    ENTRY("MaxRoiPool", 1, CELER_OPS_MAX_VERSION, F32_F64, NULL, roipool_reshape, roipool_run),
};

const celer_kernel_family celer_family_pool = {"pool", kernels, (int)CELER_ARRAY_LEN(kernels)};
