/* DeformConv (opsets 19 and 22), 2-D, float and double: a convolution whose kernel taps read X
 * at their regular position plus a learned fractional offset (bilinear interpolation, zero
 * outside the image), each sample scaled by an optional mask.
 *
 * Per image and offset group, the four corner indices and weights (mask folded in) of every
 * (tap, output position) are computed once into scratch, since every channel of the offset group
 * shares them. Then per image and channel group the sampled values are laid out im2col-style
 * (rows: channel x tap, columns: output positions) and one GEMM with the group's weights gives
 * its output channels. State (init): the parsed window attributes and offset_group, immutable.
 * Per-context local (reshape): the geometry of the current shapes, read by run. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "reference.h"

typedef struct deform_state {
    celer_win_attrs a;
    int64_t offset_group;
} deform_state;

/* Geometry of one call, from reshape for run. */
typedef struct deform_geom {
    celer_conv_geom g;
    int64_t og;       /* offset groups */
    int64_t taps, p;  /* kernel taps kh*kw; output positions oh*ow */
} deform_geom;

/* One tap at one output position: the four neighbours' offsets in a channel plane and their
 * bilinear weights times the mask (0 for a neighbour outside the image, whose index is 0). */
typedef struct deform_sample {
    int32_t idx[4];
    double w[4];
} deform_sample;

/* Attributes whose value count reveals a rank other than 2-D: refused at load, by name. */
static const struct {
    const char *name;
    int per_dim; /* values per spatial dimension */
} rank_attrs[] = {{"kernel_shape", 1}, {"strides", 1}, {"dilations", 1}, {"pads", 2}};

static celer_status deform_init(const celer_op_info *info, void **state) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    for (size_t i = 0; i < CELER_ARRAY_LEN(rank_attrs); i++) {
        const int64_t *v;
        int n = celer_onnx_attr_ints(info->node, rank_attrs[i].name, &v);
        if (n > 0 && n != 2 * rank_attrs[i].per_dim)
            return celer_errorf(CELER_ERR_UNSUPPORTED,
                                "%s: attribute %s has %d values, that is %d-D: only 2-D DeformConv "
                                "is supported", who, rank_attrs[i].name, n, n / rank_attrs[i].per_dim);
    }
    const celer_tensor *w = info->n_inputs > 1 ? info->input_constants[1] : NULL;
    if (w && w->shape.rank != 4)
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: weights W have rank %d (%d-D): only 2-D DeformConv (rank 4) is "
                            "supported", who, w->shape.rank, w->shape.rank - 2);
    deform_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    celer_status st = celer_win_attrs_parse(info, &s->a);
    s->offset_group = celer_onnx_attr_int(info->node, "offset_group", 1);
    if (!st && (s->offset_group < 1 || s->offset_group > CELER_REF_MAX_ATTR))
        st = celer_errorf(CELER_ERR_INVALID, "%s: offset_group %lld must be >= 1", who,
                          (long long)s->offset_group);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

/* Checks that optional input t (offset or mask) has shape [n, ch, oh, ow]. */
static celer_status check_side(const char *who, const char *name, const celer_tensor *t,
                               const celer_shape *y, int64_t ch) {
    const celer_shape *s = &t->shape;
    if (s->rank == 4 && s->dims[0] == y->dims[0] && s->dims[1] == ch && s->dims[2] == y->dims[2] &&
        s->dims[3] == y->dims[3])
        return CELER_OK;
    char b[160];
    return celer_errorf(CELER_ERR_SHAPE, "%s: %s %s must be [%lld, %lld, %lld, %lld]", who, name,
                        celer_shape_str(s, b, sizeof b), (long long)y->dims[0], (long long)ch,
                        (long long)y->dims[2], (long long)y->dims[3]);
}

/* Scratch of run: the samples of one image (all offset groups), then one group's column matrix.
 * Carved identically by reshape (cv->base NULL) and run. */
static void carve(celer_ops_carve *cv, const deform_geom *d, size_t es, deform_sample **samples,
                  void **cols) {
    int64_t cg = d->g.c / d->g.group;
    *samples = celer_ops_carve_elems(cv, d->og * d->taps * d->p, sizeof(deform_sample));
    *cols = celer_ops_carve_elems(cv, cg * d->taps * d->p, es);
}

static celer_status deform_reshape(celer_kernel_call *call) {
    const deform_state *s = call->state;
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    celer_status st = celer_ops_require(call, 3);
    if (st) return st;
    const celer_tensor *x = call->in[0], *w = call->in[1], *off = call->in[2];
    const celer_tensor *b = celer_ops_input(call, 3), *mask = celer_ops_input(call, 4);
    if (x->shape.rank != 4 || w->shape.rank != 4) {
        char b1[160], b2[160];
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: input X %s and weights W %s must both have rank 4: only 2-D "
                            "DeformConv is supported", who, celer_shape_str(&x->shape, b1, sizeof b1),
                            celer_shape_str(&w->shape, b2, sizeof b2));
    }
    const celer_tensor *same[] = {w, off, b, mask};
    for (size_t i = 0; i < CELER_ARRAY_LEN(same); i++)
        if (same[i] && same[i]->dtype != x->dtype)
            return celer_errorf(CELER_ERR_DTYPE, "%s: X, W, offset, B and mask must have the same type",
                                who);
    deform_geom *d = *call->local;
    if (!d) {
        if (!(d = calloc(1, sizeof *d))) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
        *call->local = d;
    }
    celer_shape y;
    st = celer_conv_geom_make(who, &s->a, &x->shape, &w->shape, false, &d->g, &y);
    if (st) return st;
    d->og = s->offset_group;
    if (d->g.c % d->og)
        return celer_errorf(CELER_ERR_SHAPE, "%s: %lld input channels are not divisible by offset_group %lld",
                            who, (long long)d->g.c, (long long)d->og);
    /* sample indices are int32 within one channel plane */
    if (x->shape.dims[2] * x->shape.dims[3] > INT32_MAX)
        return celer_errorf(CELER_ERR_LIMIT, "%s: a channel of X has more than %d elements", who, INT32_MAX);
    d->taps = w->shape.dims[2] * w->shape.dims[3];
    d->p = y.dims[2] * y.dims[3];
    /* cblas takes int dimensions */
    if (d->p > INT32_MAX || (d->g.c / d->g.group) * d->taps > INT32_MAX)
        return celer_errorf(CELER_ERR_LIMIT, "%s: %lld output positions or %lld x %lld channel taps pass %d",
                            who, (long long)d->p, (long long)(d->g.c / d->g.group), (long long)d->taps,
                            INT32_MAX);
    if ((st = check_side(who, "offset", off, &y, d->og * d->taps * 2)) ||
        (mask && (st = check_side(who, "mask", mask, &y, d->og * d->taps))))
        return st;
    if (b && (b->shape.rank != 1 || b->shape.dims[0] != d->g.m)) {
        char buf[160];
        return celer_errorf(CELER_ERR_SHAPE, "%s: bias B %s must be [%lld]", who,
                            celer_shape_str(&b->shape, buf, sizeof buf), (long long)d->g.m);
    }
    call->out[0].shape = y;
    if ((st = celer_ops_check_output(call->info, &call->out[0]))) return st;
    celer_ops_carve cv = {0};
    deform_sample *samples;
    void *cols;
    carve(&cv, d, celer_dtype_size(x->dtype), &samples, &cols);
    if (cv.overflow)
        return celer_errorf(CELER_ERR_LIMIT, "%s: the sampled columns would pass %zu bytes", who,
                            CELER_OPS_MAX_BYTES);
    call->scratch_size = cv.off;
    return CELER_OK;
}

/* Fills the samples of image n: for each offset group, tap and output position, where the tap
 * reads (its regular position plus the offset) and with which weights. Writes out only. */
static void make_samples(const deform_geom *d, const celer_tensor *off, const celer_tensor *mask,
                         int64_t n, deform_sample *out) {
    const celer_window *win = &d->g.win;
    int64_t ih = win->in[1], iw = win->in[2], ow = win->out[2], kw = win->k[2];
    bool f64 = off->dtype == CELER_DOUBLE;
    int64_t ob = n * d->og * d->taps * 2 * d->p, mb = n * d->og * d->taps * d->p;
    for (int64_t gt = 0; gt < d->og * d->taps; gt++) { /* offset group x tap */
        int64_t ki = (gt % d->taps) / kw, kj = gt % kw;
        const int64_t oh_at = ob + gt * 2 * d->p, ow_at = oh_at + d->p, m_at = mb + gt * d->p;
        for (int64_t p = 0; p < d->p; p++) {
            deform_sample *sm = &out[gt * d->p + p];
            double dy = f64 ? ((const double *)off->data)[oh_at + p] : ((const float *)off->data)[oh_at + p];
            double dx = f64 ? ((const double *)off->data)[ow_at + p] : ((const float *)off->data)[ow_at + p];
            double m = !mask ? 1.0
                       : f64 ? ((const double *)mask->data)[m_at + p]
                             : ((const float *)mask->data)[m_at + p];
            double h = (double)((p / ow) * win->stride[1] - win->pad_l[1] + ki * win->dil[1]) + dy;
            double v = (double)((p % ow) * win->stride[2] - win->pad_l[2] + kj * win->dil[2]) + dx;
            memset(sm, 0, sizeof *sm);
            /* beyond one pixel outside no neighbour is inside; NaN offsets land here too */
            if (!(h > -1.0 && h < (double)ih && v > -1.0 && v < (double)iw)) continue;
            double h0 = floor(h), v0 = floor(v), lh = h - h0, lv = v - v0;
            for (int c = 0; c < 4; c++) {
                int64_t r = (int64_t)h0 + (c >> 1), q = (int64_t)v0 + (c & 1);
                if (r < 0 || r >= ih || q < 0 || q >= iw) continue;
                sm->idx[c] = (int32_t)(r * iw + q);
                sm->w[c] = m * ((c >> 1) ? lh : 1.0 - lh) * ((c & 1) ? lv : 1.0 - lv);
            }
        }
    }
}

/* The column matrix of channel group g of one image and its GEMM into the group's output
 * channels, for float or double: cols[(ci * taps + t) * p + j] = channel ci's sample at tap t and
 * output position j. x and y point at the image; samples holds the image's offset groups. */
#define DEFORM_GROUP(name, T, gemm)                                                                 \
    static void name(const deform_geom *d, int64_t g, const T *x, const T *w,                      \
                     const deform_sample *samples, T *cols, T *y) {                                 \
        int64_t cg = d->g.c / d->g.group, mg = d->g.m / d->g.group, k = cg * d->taps;              \
        int64_t plane = d->g.win.in[1] * d->g.win.in[2], per_og = d->g.c / d->og;                  \
        for (int64_t ci = 0; ci < cg; ci++) {                                                       \
            int64_t c = g * cg + ci;                                                                \
            const T *xc = x + c * plane;                                                            \
            const deform_sample *sm = samples + (c / per_og) * d->taps * d->p;                      \
            T *row = cols + ci * d->taps * d->p;                                                    \
            for (int64_t j = 0; j < d->taps * d->p; j++, sm++)                                      \
                row[j] = (T)(sm->w[0] * xc[sm->idx[0]] + sm->w[1] * xc[sm->idx[1]] +                \
                             sm->w[2] * xc[sm->idx[2]] + sm->w[3] * xc[sm->idx[3]]);                \
        }                                                                                           \
        gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)d->p, (int)k, 1.0,           \
             w + g * mg * k, (int)k, cols, (int)d->p, 1.0, y + g * mg * d->p, (int)d->p);           \
    }
DEFORM_GROUP(group_f32, float, cblas_sgemm)
DEFORM_GROUP(group_f64, double, cblas_dgemm)

static celer_status deform_run(celer_kernel_call *call) {
    const deform_geom *d = *call->local;
    const celer_tensor *x = call->in[0], *w = call->in[1], *off = call->in[2];
    const celer_tensor *b = celer_ops_input(call, 3), *mask = celer_ops_input(call, 4);
    bool f64 = x->dtype == CELER_DOUBLE;
    size_t es = f64 ? 8 : 4;
    celer_ops_carve cv = {.base = call->scratch};
    deform_sample *samples;
    void *cols;
    carve(&cv, d, es, &samples, &cols);
    /* start from the bias (or zero): every group's GEMM accumulates into it */
    for (int64_t i = 0; i < d->g.n * d->g.m; i++) {
        int64_t m = i % d->g.m;
        double bv = !b ? 0.0 : f64 ? ((const double *)b->data)[m] : ((const float *)b->data)[m];
        for (int64_t j = 0; j < d->p; j++)
            if (f64) ((double *)call->out[0].data)[i * d->p + j] = bv;
            else ((float *)call->out[0].data)[i * d->p + j] = (float)bv;
    }
    if (!d->g.c || !d->p || !d->g.m) return CELER_OK; /* empty: the bias is the answer */
    int64_t plane = d->g.win.in[1] * d->g.win.in[2];
    for (int64_t n = 0; n < d->g.n; n++) {
        make_samples(d, off, mask, n, samples);
        for (int64_t g = 0; g < d->g.group; g++)
            if (f64)
                group_f64(d, g, (const double *)x->data + n * d->g.c * plane, w->data, samples, cols,
                          (double *)call->out[0].data + n * d->g.m * d->p);
            else
                group_f32(d, g, (const float *)x->data + n * d->g.c * plane, w->data, samples, cols,
                          (float *)call->out[0].data + n * d->g.m * d->p);
    }
    return CELER_OK;
}

#define F32_F64 (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE))

/* 22 only adds bfloat16, which celer does not serve: the same kernel, one entry per version */
static const celer_kernel kernels[] = {
    {"", "DeformConv", 19, 21, F32_F64, 0, 0, NULL, deform_init, deform_reshape, deform_run, free, free},
    {"", "DeformConv", 22, CELER_OPS_MAX_VERSION, F32_F64, 0, 0, NULL, deform_init, deform_reshape,
     deform_run, free, free},
};

const celer_kernel_family celer_family_deform = {"deform", kernels, (int)CELER_ARRAY_LEN(kernels)};
