/* indexing: operators that pick or place elements by index values (Gather*, Scatter*, OneHot,
 * NonZero, Compress, ReverseSequence, Unique).
 *
 * Like the shape family they move element bytes, so one kernel serves every dtype (strings are
 * `char *` elements copied as pointers). Only the Scatter reductions and OneHot/NonZero look at
 * values. Every index read from a tensor is range-checked before it is used: a bad index is a
 * CELER_ERR_INVALID naming the op, the index and the axis size, never an out-of-bounds access.
 * Ops whose output size depends on values (NonZero, Compress, Unique) compute it in reshape;
 * Unique does its whole sort there into a per-context buffer that run copies from. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* An output bigger than this is refused: a depth input can ask for anything. */
#define MAX_OUT_BYTES CELER_OPS_MAX_BYTES

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static celer_status need_in(const celer_kernel_call *c, int i, const char *what) {
    if (!celer_ops_input(c, i)) return celer_ops_error(c->info, CELER_ERR_INVALID, "input '%s' is missing", what);
    return CELER_OK;
}

static celer_status check_index_dtype(const celer_op_info *info, const celer_tensor *t) {
    if (t->dtype != CELER_INT64 && t->dtype != CELER_INT32)
        return celer_ops_error(info, CELER_ERR_DTYPE, "indices must be int64 or int32, got %s",
                      celer_dtype_name(t->dtype));
    return CELER_OK;
}

static const char *sh(const celer_shape *s, char *buf, size_t cap) {
    return celer_shape_str(s, buf, cap);
}

/* Index i of `t` wrapped if negative and checked against dim; CELER_ERR_INVALID otherwise. */
static celer_status index_at(const celer_op_info *info, const celer_tensor *t, int64_t i,
                             int64_t dim, int axis, int64_t *out) {
    int64_t v = celer_ops_int_at(t, i);
    if (v < -dim || v >= dim)
        return celer_ops_error(info, CELER_ERR_INVALID, "index %lld is out of range for axis %d of size %lld",
                      (long long)v, axis, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return CELER_OK;
}

/* Advances a row-major multi-index over dims[0..rank). */
static void next_index(int64_t *idx, const int64_t *dims, int rank) {
    for (int k = rank - 1; k >= 0; k--) {
        if (++idx[k] < dims[k]) return;
        idx[k] = 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Gather                                                                                      */

static celer_status gather_axis(const celer_kernel_call *c, int *axis) {
    return celer_ops_axis(c->info, celer_onnx_attr_int(c->info->node, "axis", 0),
                          c->in[0]->shape.rank, axis);
}

static celer_status reshape_gather(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    CELER_TRY(need_in(c, 1, "indices"));
    const celer_shape *d = &c->in[0]->shape, *q = &c->in[1]->shape;
    CELER_TRY(check_index_dtype(c->info, c->in[1]));
    if (d->rank == 0) return celer_ops_error(c->info, CELER_ERR_SHAPE, "data must have rank >= 1");
    int axis;
    CELER_TRY(gather_axis(c, &axis));
    int rank = d->rank - 1 + q->rank;
    if (rank > CELER_MAX_RANK)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output rank %d exceeds the maximum %d", rank,
                      CELER_MAX_RANK);
    celer_shape out = {.rank = rank};
    int k = 0;
    for (int i = 0; i < axis; i++) out.dims[k++] = d->dims[i];
    for (int i = 0; i < q->rank; i++) out.dims[k++] = q->dims[i];
    for (int i = axis + 1; i < d->rank; i++) out.dims[k++] = d->dims[i];
    c->out[0].shape = out;
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_gather(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0], *ind = c->in[1];
    int axis;
    CELER_TRY(gather_axis(c, &axis));
    int64_t n = celer_shape_numel(&ind->shape), dim = x->shape.dims[axis], v;
    for (int64_t j = 0; j < n; j++) CELER_TRY(index_at(c->info, ind, j, dim, axis, &v));
    size_t es = celer_dtype_size(x->dtype);
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis);
    size_t inner = (size_t)celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank) * es;
    if (!inner) return CELER_OK;
    char *dst = c->out[0].data;
    const char *src = x->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++, dst += inner) {
            v = celer_ops_int_at(ind, j);
            if (v < 0) v += dim;
            memcpy(dst, src + ((size_t)o * (size_t)dim + (size_t)v) * inner, inner);
        }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* GatherElements, Scatter, ScatterElements                                                    */

/* indices must have data's rank and fit inside data on every axis but `axis`. */
static celer_status check_elements(const celer_kernel_call *c, const celer_shape *d,
                                   const celer_shape *q, int axis) {
    char b1[200], b2[200];
    bool ok = d->rank == q->rank;
    for (int i = 0; ok && i < d->rank; i++) ok = i == axis || q->dims[i] <= d->dims[i];
    if (!ok)
        return celer_ops_error(c->info, CELER_ERR_SHAPE,
                      "indices of shape %s do not fit data of shape %s (same rank, and no larger "
                      "outside axis %d)",
                      sh(q, b1, sizeof b1), sh(d, b2, sizeof b2), axis);
    return CELER_OK;
}

static celer_status reshape_gather_elements(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    CELER_TRY(need_in(c, 1, "indices"));
    CELER_TRY(check_index_dtype(c->info, c->in[1]));
    if (c->in[0]->shape.rank == 0) return celer_ops_error(c->info, CELER_ERR_SHAPE, "data must have rank >= 1");
    int axis;
    CELER_TRY(gather_axis(c, &axis));
    CELER_TRY(check_elements(c, &c->in[0]->shape, &c->in[1]->shape, axis));
    c->out[0].shape = c->in[1]->shape;
    return CELER_OK;
}

/* Calls fn(ctx, j, data_offset) for every element j of indices, with data_offset the element
 * of data it addresses (indices value on `axis`, its own coordinate elsewhere). Stops at the
 * first bad index. */
typedef void (*elements_fn)(void *ctx, int64_t j, int64_t off);
static celer_status walk_elements(const celer_kernel_call *c, const celer_tensor *data,
                                  const celer_tensor *ind, int axis, elements_fn fn, void *ctx) {
    int64_t st[CELER_MAX_RANK], idx[CELER_MAX_RANK] = {0}, v;
    celer_ops_strides(&data->shape, st);
    int64_t n = celer_shape_numel(&ind->shape), dim = data->shape.dims[axis];
    for (int64_t j = 0; j < n; j++) CELER_TRY(index_at(c->info, ind, j, dim, axis, &v));
    for (int64_t j = 0; j < n; j++) {
        int64_t off = 0;
        for (int k = 0; k < ind->shape.rank; k++) off += (k == axis ? 0 : idx[k]) * st[k];
        v = celer_ops_int_at(ind, j);
        off += (v < 0 ? v + dim : v) * st[axis];
        fn(ctx, j, off);
        next_index(idx, ind->shape.dims, ind->shape.rank);
    }
    return CELER_OK;
}

typedef struct move_ctx {
    char *dst;
    const char *src;
    size_t es;
    int reduction;
    celer_dtype dtype;
} move_ctx;

static void gather_one(void *ctx, int64_t j, int64_t off) {
    move_ctx *m = ctx;
    memcpy(m->dst + (size_t)j * m->es, m->src + (size_t)off * m->es, m->es);
}

static celer_status run_gather_elements(celer_kernel_call *c) {
    int axis;
    CELER_TRY(gather_axis(c, &axis));
    move_ctx m = {.dst = c->out[0].data, .src = c->in[0]->data,
                  .es = celer_dtype_size(c->in[0]->dtype)};
    return walk_elements(c, c->in[0], c->in[1], axis, gather_one, &m);
}

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

/* The 'reduction' values and the version of ScatterElements/ScatterND that brought each. */
static const struct {
    const char *name;
    int since;
} reductions[] = {
    [RED_NONE] = {"none", 1}, [RED_ADD] = {"add", 16}, [RED_MUL] = {"mul", 16},
    [RED_MAX] = {"max", 18},  [RED_MIN] = {"min", 18},
};

/* The 'reduction' attribute of a data tensor of type t (opset 16+; absent before: none); values
 * of later versions, unknown names and reductions of strings are errors. */
static celer_status parse_reduction(const celer_op_info *info, celer_dtype t, int *red) {
    const char *s = info->since_version >= 16 ? celer_onnx_attr_string(info->node, "reduction", "none")
                                              : "none";
    for (int i = 0; i < (int)CELER_ARRAY_LEN(reductions); i++) {
        if (strcmp(s, reductions[i].name)) continue;
        if (info->since_version < reductions[i].since)
            return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                                   "attribute 'reduction' value '%s' needs opset %d or later, the model's is %d",
                                   s, reductions[i].since, info->opset);
        if (i != RED_NONE && t == CELER_STRING)
            return celer_ops_error(info, CELER_ERR_DTYPE, "reduction '%s' does not apply to strings", s);
        *red = i;
        return CELER_OK;
    }
    return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                           "attribute 'reduction' value '%s' is not supported (none, add, mul, max, min)", s);
}

static celer_status scatter_reduction(const celer_kernel_call *c, int *red) {
    return parse_reduction(c->info, c->in[0]->dtype, red);
}

/* init of ScatterElements and ScatterND: only checks 'reduction', so that a model asking for one
 * celer does not have fails at load rather than at its first request. No state. */
static celer_status init_scatter(const celer_op_info *info, void **state) {
    int red;
    (void)state;
    return parse_reduction(info, info->n_inputs > 0 ? info->input_types[0] : CELER_UNDEFINED, &red);
}

/* *dst = *dst (op) *src for one element of dtype t. Sums and products are computed in the
 * unsigned type U and converted back, so integers wrap around rather than overflow (signed
 * overflow is UB, and uint16 * uint16 would overflow int); max and min compare in T. A NaN in
 * *dst stays, a NaN in *src is skipped (a < NaN is false). */
#define RED_CASE(CT, T, U)                                                                         \
    case CT: {                                                                                     \
        T a, b;                                                                                    \
        memcpy(&a, dst, sizeof a);                                                                 \
        memcpy(&b, src, sizeof b);                                                                 \
        switch (op) {                                                                              \
        case RED_ADD: a = (T)((U)a + (U)b); break;                                                 \
        case RED_MUL: a = (T)((U)a * (U)b); break;                                                 \
        case RED_MAX: a = a < b ? b : a; break;                                                    \
        case RED_MIN: a = b < a ? b : a; break;                                                    \
        }                                                                                          \
        memcpy(dst, &a, sizeof a);                                                                 \
        break;                                                                                     \
    }
static void reduce_elem(celer_dtype t, int op, void *dst, const void *src) {
    switch (t) {
        RED_CASE(CELER_FLOAT, float, float)
        RED_CASE(CELER_DOUBLE, double, double)
        RED_CASE(CELER_INT8, int8_t, uint32_t)
        RED_CASE(CELER_INT16, int16_t, uint32_t)
        RED_CASE(CELER_INT32, int32_t, uint32_t)
        RED_CASE(CELER_INT64, int64_t, uint64_t)
        RED_CASE(CELER_UINT8, uint8_t, uint32_t)
        RED_CASE(CELER_UINT16, uint16_t, uint32_t)
        RED_CASE(CELER_UINT32, uint32_t, uint32_t)
        RED_CASE(CELER_UINT64, uint64_t, uint64_t)
    case CELER_BOOL: { /* add and max: or; mul and min: and */
        uint8_t *a = dst;
        uint8_t b = *(const uint8_t *)src;
        *a = op == RED_ADD || op == RED_MAX ? (*a || b) : (*a && b);
        break;
    }
    case CELER_FLOAT16:
    case CELER_BFLOAT16: {
        uint16_t a, b;
        memcpy(&a, dst, 2);
        memcpy(&b, src, 2);
        bool bf = t == CELER_BFLOAT16;
        float fa = bf ? celer_bf16_to_float(a) : celer_half_to_float(a);
        float fb = bf ? celer_bf16_to_float(b) : celer_half_to_float(b);
        if (op == RED_MAX || op == RED_MIN) {
            if (op == RED_MAX ? fa < fb : fb < fa) memcpy(dst, &b, 2); /* exact: no rounding */
            break;
        }
        float r = op == RED_ADD ? fa + fb : fa * fb;
        a = bf ? celer_float_to_bf16(r) : celer_float_to_half(r);
        memcpy(dst, &a, 2);
        break;
    }
    default: break;
    }
}

static void scatter_one(void *ctx, int64_t j, int64_t off) {
    move_ctx *m = ctx;
    char *d = m->dst + (size_t)off * m->es;
    const char *s = m->src + (size_t)j * m->es;
    if (m->reduction == RED_NONE) memcpy(d, s, m->es);
    else reduce_elem(m->dtype, m->reduction, d, s);
}

static celer_status reshape_scatter_elements(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 3));
    CELER_TRY(need_in(c, 1, "indices"));
    CELER_TRY(need_in(c, 2, "updates"));
    const celer_tensor *x = c->in[0], *ind = c->in[1], *upd = c->in[2];
    CELER_TRY(check_index_dtype(c->info, ind));
    int axis, red;
    CELER_TRY(scatter_reduction(c, &red));
    if (x->shape.rank == 0) return celer_ops_error(c->info, CELER_ERR_SHAPE, "data must have rank >= 1");
    CELER_TRY(gather_axis(c, &axis));
    char b1[200], b2[200];
    if (upd->dtype != x->dtype)
        return celer_ops_error(c->info, CELER_ERR_DTYPE, "updates are %s but data is %s",
                      celer_dtype_name(upd->dtype), celer_dtype_name(x->dtype));
    if (!celer_shape_equal(&upd->shape, &ind->shape))
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "updates of shape %s must match indices of shape %s",
                      sh(&upd->shape, b1, sizeof b1), sh(&ind->shape, b2, sizeof b2));
    CELER_TRY(check_elements(c, &x->shape, &ind->shape, axis));
    return celer_ops_reshape_same(c);
}

static celer_status run_scatter_elements(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    int axis, red;
    CELER_TRY(gather_axis(c, &axis));
    CELER_TRY(scatter_reduction(c, &red));
    size_t es = celer_dtype_size(x->dtype), bytes = (size_t)celer_shape_numel(&x->shape) * es;
    if (bytes) memcpy(c->out[0].data, x->data, bytes);
    move_ctx m = {.dst = c->out[0].data, .src = c->in[2]->data, .es = es, .reduction = red,
                  .dtype = x->dtype};
    return walk_elements(c, x, c->in[1], axis, scatter_one, &m);
}

/* ------------------------------------------------------------------------------------------ */
/* GatherND, ScatterND                                                                         */

/* For GatherND (batch_dims b) and ScatterND (b = 0): the index tuple length k, the number of
 * tuples per batch and the element count of the slice each tuple addresses. */
typedef struct nd_plan {
    int b, k;
    int64_t batches, tuples, slice, batch_size;
} nd_plan;

static celer_status nd_read(const celer_kernel_call *c, int b, nd_plan *p) {
    const celer_shape *d = &c->in[0]->shape, *q = &c->in[1]->shape;
    char b1[200], b2[200];
    CELER_TRY(check_index_dtype(c->info, c->in[1]));
    if (q->rank < 1 || d->rank < 1)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "data and indices must have rank >= 1");
    if (b < 0 || b >= CELER_MIN(q->rank, d->rank))
        return celer_ops_error(c->info, CELER_ERR_INVALID, "batch_dims %d must be less than both ranks (%d, %d)",
                      b, d->rank, q->rank);
    int64_t k = q->dims[q->rank - 1];
    if (k < 1 || k > d->rank - b)
        return celer_ops_error(c->info, CELER_ERR_SHAPE,
                      "the last dim of indices (%lld) must be between 1 and %d for data of shape %s",
                      (long long)k, d->rank - b, sh(d, b1, sizeof b1));
    for (int i = 0; i < b; i++)
        if (d->dims[i] != q->dims[i])
            return celer_ops_error(c->info, CELER_ERR_SHAPE,
                          "batch dims of data %s and indices %s differ", sh(d, b1, sizeof b1),
                          sh(q, b2, sizeof b2));
    p->b = b;
    p->k = (int)k;
    p->batches = celer_ops_dims_prod(d->dims, 0, b);
    p->tuples = celer_ops_dims_prod(q->dims, b, q->rank - 1);
    p->slice = celer_ops_dims_prod(d->dims, b + p->k, d->rank);
    p->batch_size = celer_ops_dims_prod(d->dims, b, d->rank);
    return CELER_OK;
}

/* Element offset in data of tuple t (counted over all batches). */
static celer_status nd_offset(const celer_kernel_call *c, const nd_plan *p, int64_t t,
                              int64_t *off) {
    const celer_shape *d = &c->in[0]->shape;
    int64_t st[CELER_MAX_RANK], v = 0;
    celer_ops_strides(d, st);
    *off = (t / (p->tuples ? p->tuples : 1)) * p->batch_size;
    for (int i = 0; i < p->k; i++) {
        CELER_TRY(index_at(c->info, c->in[1], t * p->k + i, d->dims[p->b + i], p->b + i, &v));
        *off += v * st[p->b + i];
    }
    return CELER_OK;
}

static celer_status gathernd_plan(const celer_kernel_call *c, nd_plan *p) {
    int64_t b = c->info->since_version >= 12 ? celer_onnx_attr_int(c->info->node, "batch_dims", 0)
                                             : 0;
    if (b < 0 || b > CELER_MAX_RANK) return celer_ops_error(c->info, CELER_ERR_INVALID, "batch_dims %lld is invalid", (long long)b);
    return nd_read(c, (int)b, p);
}

static celer_status reshape_gathernd(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    CELER_TRY(need_in(c, 1, "indices"));
    nd_plan p;
    CELER_TRY(gathernd_plan(c, &p));
    const celer_shape *d = &c->in[0]->shape, *q = &c->in[1]->shape;
    int rank = q->rank - 1 + d->rank - p.b - p.k;
    if (rank > CELER_MAX_RANK)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output rank %d exceeds the maximum %d", rank,
                      CELER_MAX_RANK);
    celer_shape out = {.rank = rank};
    int n = 0;
    for (int i = 0; i < q->rank - 1; i++) out.dims[n++] = q->dims[i];
    for (int i = p.b + p.k; i < d->rank; i++) out.dims[n++] = d->dims[i];
    c->out[0].shape = out;
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_gathernd(celer_kernel_call *c) {
    nd_plan p;
    CELER_TRY(gathernd_plan(c, &p));
    size_t es = celer_dtype_size(c->in[0]->dtype), chunk = (size_t)p.slice * es;
    int64_t n = p.batches * p.tuples, off;
    for (int64_t t = 0; t < n; t++) CELER_TRY(nd_offset(c, &p, t, &off)); /* check before writing */
    if (!chunk) return CELER_OK;
    char *dst = c->out[0].data;
    for (int64_t t = 0; t < n; t++, dst += chunk) {
        nd_offset(c, &p, t, &off);
        memcpy(dst, (const char *)c->in[0]->data + (size_t)off * es, chunk);
    }
    return CELER_OK;
}

static celer_status reshape_scatternd(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 3));
    CELER_TRY(need_in(c, 1, "indices"));
    CELER_TRY(need_in(c, 2, "updates"));
    int red;
    CELER_TRY(scatter_reduction(c, &red));
    nd_plan p;
    CELER_TRY(nd_read(c, 0, &p));
    const celer_shape *d = &c->in[0]->shape, *q = &c->in[1]->shape, *u = &c->in[2]->shape;
    if (c->in[2]->dtype != c->in[0]->dtype)
        return celer_ops_error(c->info, CELER_ERR_DTYPE, "updates are %s but data is %s",
                      celer_dtype_name(c->in[2]->dtype), celer_dtype_name(c->in[0]->dtype));
    /* updates must have shape indices.shape[:-1] + data.shape[k:] */
    celer_shape want = {.rank = q->rank - 1 + d->rank - p.k};
    bool ok = want.rank <= CELER_MAX_RANK;
    for (int i = 0, n = 0; ok && i < q->rank - 1; i++) want.dims[n++] = q->dims[i];
    for (int i = p.k, n = q->rank - 1; ok && i < d->rank; i++) want.dims[n++] = d->dims[i];
    if (!ok || !celer_shape_equal(&want, u)) {
        char b1[200], b2[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "updates have shape %s, expected %s",
                      sh(u, b1, sizeof b1), ok ? sh(&want, b2, sizeof b2) : "(rank too large)");
    }
    return celer_ops_reshape_same(c);
}

static celer_status run_scatternd(celer_kernel_call *c) {
    int red;
    CELER_TRY(scatter_reduction(c, &red));
    nd_plan p;
    CELER_TRY(nd_read(c, 0, &p));
    const celer_tensor *x = c->in[0];
    celer_dtype t = x->dtype;
    size_t es = celer_dtype_size(t), bytes = (size_t)celer_shape_numel(&x->shape) * es;
    int64_t n = p.tuples, off;
    for (int64_t j = 0; j < n; j++) CELER_TRY(nd_offset(c, &p, j, &off));
    char *dst = c->out[0].data;
    const char *upd = c->in[2]->data;
    if (bytes) memcpy(dst, x->data, bytes);
    for (int64_t j = 0; j < n; j++) {
        nd_offset(c, &p, j, &off);
        char *d = dst + (size_t)off * es;
        const char *s = upd + (size_t)(j * p.slice) * es;
        if (red == RED_NONE) {
            if (p.slice) memcpy(d, s, (size_t)p.slice * es);
        } else {
            for (int64_t e = 0; e < p.slice; e++)
                reduce_elem(t, red, d + (size_t)e * es, s + (size_t)e * es);
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* OneHot                                                                                      */

static celer_status infer_onehot(const celer_op_info *info, celer_dtype *out) {
    if (info->n_inputs < 3 || info->input_types[2] == CELER_UNDEFINED)
        return celer_ops_error(info, CELER_ERR_INVALID, "input 'values' is missing");
    out[0] = info->input_types[2];
    return CELER_OK;
}

typedef struct onehot_plan {
    int axis;
    int64_t depth;
} onehot_plan;

static celer_status onehot_read(const celer_kernel_call *c, onehot_plan *p) {
    CELER_TRY(need_in(c, 1, "depth"));
    CELER_TRY(need_in(c, 2, "values"));
    const celer_tensor *dep = c->in[1], *val = c->in[2];
    int r = c->in[0]->shape.rank;
    if (celer_shape_numel(&dep->shape) != 1 || dep->dtype == CELER_STRING ||
        dep->dtype == CELER_BOOL)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "'depth' must be a numeric scalar");
    double dd = celer_ops_double_at(dep, 0);
    if (!(dd >= 1 && dd <= 1e12))
        return celer_ops_error(c->info, CELER_ERR_INVALID, "'depth' %g must be positive", dd);
    p->depth = (int64_t)dd;
    if (celer_shape_numel(&val->shape) != 2)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "'values' must hold two elements [off, on]");
    int64_t axis = celer_onnx_attr_int(c->info->node, "axis", -1);
    if (axis < -(r + 1) || axis > r)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "axis %lld is out of range for output rank %d",
                      (long long)axis, r + 1);
    p->axis = (int)(axis < 0 ? axis + r + 1 : axis);
    return CELER_OK;
}

static celer_status reshape_onehot(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 3));
    onehot_plan p;
    CELER_TRY(onehot_read(c, &p));
    const celer_shape *s = &c->in[0]->shape;
    if (s->rank + 1 > CELER_MAX_RANK)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output rank %d exceeds the maximum %d",
                      s->rank + 1, CELER_MAX_RANK);
    celer_shape out = {.rank = s->rank + 1};
    for (int i = 0, k = 0; i <= s->rank; i++) out.dims[i] = i == p.axis ? p.depth : s->dims[k++];
    c->out[0].shape = out;
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_onehot(celer_kernel_call *c) {
    onehot_plan p;
    CELER_TRY(onehot_read(c, &p));
    const celer_tensor *ind = c->in[0];
    size_t es = celer_dtype_size(c->out[0].dtype);
    const char *off = c->in[2]->data, *on = off + es;
    char *dst = c->out[0].data;
    int64_t total = celer_shape_numel(&c->out[0].shape);
    for (int64_t i = 0; i < total; i++) memcpy(dst + (size_t)i * es, off, es);
    int64_t inner = celer_ops_dims_prod(ind->shape.dims, p.axis, ind->shape.rank);
    int64_t n = celer_shape_numel(&ind->shape);
    bool is_float = ind->dtype == CELER_FLOAT || ind->dtype == CELER_DOUBLE ||
                    ind->dtype == CELER_FLOAT16 || ind->dtype == CELER_BFLOAT16;
    for (int64_t j = 0; j < n; j++) {
        int64_t v;
        if (is_float) {
            double f = celer_ops_double_at(ind, j);
            if (!(f > -1e15 && f < 1e15)) continue; /* NaN or far out of range: all off */
            v = (int64_t)f;
        } else {
            v = celer_ops_int_at(ind, j);
        }
        if (v < 0) v += p.depth;
        if (v < 0 || v >= p.depth) continue; /* out of range: the spec says all 'off' */
        int64_t o = j / inner, i = j % inner;
        memcpy(dst + (size_t)((o * p.depth + v) * inner + i) * es, on, es);
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* NonZero, Compress                                                                           */

static bool is_nonzero(const char *p, celer_dtype t) {
    switch (t) {
    case CELER_FLOAT: {
        float f;
        memcpy(&f, p, 4);
        return f != 0;
    }
    case CELER_DOUBLE: {
        double f;
        memcpy(&f, p, 8);
        return f != 0;
    }
    case CELER_FLOAT16:
    case CELER_BFLOAT16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return (h & 0x7fff) != 0; /* -0 is zero */
    }
    case CELER_STRING: {
        celer_str s;
        memcpy(&s, p, sizeof s);
        return s.len != 0;
    }
    default: {
        size_t es = celer_dtype_size(t);
        for (size_t i = 0; i < es; i++)
            if (p[i]) return true;
        return false;
    }
    }
}

static celer_status infer_int64(const celer_op_info *info, celer_dtype *out) {
    out[0] = CELER_INT64;
    (void)info;
    return CELER_OK;
}

static celer_status reshape_nonzero(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_tensor *x = c->in[0];
    int64_t n = celer_shape_numel(&x->shape), nnz = 0;
    size_t es = celer_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++) nnz += is_nonzero((const char *)x->data + (size_t)i * es, x->dtype);
    /* a scalar counts as shape [1], as numpy does */
    c->out[0].shape = (celer_shape){.rank = 2, .dims = {x->shape.rank ? x->shape.rank : 1, nnz}};
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_nonzero(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank;
    int64_t n = celer_shape_numel(&x->shape), nnz = c->out[0].shape.dims[1], k = 0;
    int64_t idx[CELER_MAX_RANK] = {0};
    size_t es = celer_dtype_size(x->dtype);
    int64_t *out = c->out[0].data;
    for (int64_t i = 0; i < n; i++) {
        if (is_nonzero((const char *)x->data + (size_t)i * es, x->dtype)) {
            if (k >= nnz) return celer_ops_error(c->info, CELER_ERR_INTERNAL, "input changed after reshape");
            if (r == 0) out[k] = 0;
            for (int d = 0; d < r; d++) out[d * nnz + k] = idx[d];
            k++;
        }
        next_index(idx, x->shape.dims, r);
    }
    return CELER_OK;
}

typedef struct compress_plan {
    bool has_axis;
    int axis;
    int64_t n;    /* slices along the axis (or elements when flattened) */
    int64_t kept; /* true conditions among the first n */
} compress_plan;

static celer_status compress_read(const celer_kernel_call *c, compress_plan *p) {
    CELER_TRY(need_in(c, 1, "condition"));
    const celer_tensor *x = c->in[0], *cond = c->in[1];
    p->has_axis = celer_onnx_attr_find(c->info->node, "axis") != NULL;
    p->axis = 0;
    if (p->has_axis) {
        if (x->shape.rank == 0) return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must have rank >= 1");
        CELER_TRY(celer_ops_axis(c->info, celer_onnx_attr_int(c->info->node, "axis", 0), x->shape.rank,
                           &p->axis));
    }
    p->n = p->has_axis ? x->shape.dims[p->axis] : celer_shape_numel(&x->shape);
    if (cond->shape.rank != 1 || cond->dtype == CELER_STRING)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "'condition' must be a 1-D bool tensor");
    int64_t len = cond->shape.dims[0];
    p->kept = 0;
    for (int64_t i = 0; i < len; i++) {
        if (celer_ops_double_at(cond, i) == 0) continue;
        if (i >= p->n)
            return celer_ops_error(c->info, CELER_ERR_INVALID,
                          "'condition' selects index %lld but the input has only %lld %s",
                          (long long)i, (long long)p->n, p->has_axis ? "slices" : "elements");
        p->kept++;
    }
    return CELER_OK;
}

static celer_status reshape_compress(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    compress_plan p;
    CELER_TRY(compress_read(c, &p));
    if (p.has_axis) {
        c->out[0].shape = c->in[0]->shape;
        c->out[0].shape.dims[p.axis] = p.kept;
    } else {
        c->out[0].shape = (celer_shape){.rank = 1, .dims = {p.kept}};
    }
    return CELER_OK;
}

static celer_status run_compress(celer_kernel_call *c) {
    compress_plan p;
    CELER_TRY(compress_read(c, &p));
    const celer_tensor *x = c->in[0], *cond = c->in[1];
    const celer_shape *s = &x->shape;
    size_t es = celer_dtype_size(x->dtype);
    int64_t outer = p.has_axis ? celer_ops_dims_prod(s->dims, 0, p.axis) : 1;
    size_t inner = p.has_axis ? (size_t)celer_ops_dims_prod(s->dims, p.axis + 1, s->rank) * es : es;
    int64_t len = CELER_MIN(cond->shape.dims[0], p.n);
    if (!inner) return CELER_OK;
    char *dst = c->out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            if (celer_ops_double_at(cond, i) != 0) {
                memcpy(dst, (const char *)x->data + ((size_t)(o * p.n + i)) * inner, inner);
                dst += inner;
            }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* ReverseSequence                                                                             */

static celer_status revseq_read(const celer_kernel_call *c, int *batch_axis, int *time_axis) {
    CELER_TRY(need_in(c, 1, "sequence_lens"));
    const celer_tensor *x = c->in[0], *lens = c->in[1];
    int64_t b = celer_onnx_attr_int(c->info->node, "batch_axis", 1);
    int64_t t = celer_onnx_attr_int(c->info->node, "time_axis", 0);
    if (x->shape.rank < 2) return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must have rank >= 2");
    if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
        return celer_ops_error(c->info, CELER_ERR_INVALID, "batch_axis %lld and time_axis %lld must be 0 and 1 "
                      "in some order", (long long)b, (long long)t);
    *batch_axis = (int)b;
    *time_axis = (int)t;
    int64_t batch = x->shape.dims[b], T = x->shape.dims[t];
    CELER_TRY(check_index_dtype(c->info, lens));
    if (lens->shape.rank != 1 || lens->shape.dims[0] != batch)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "'sequence_lens' must have shape [%lld]",
                      (long long)batch);
    for (int64_t i = 0; i < batch; i++) {
        int64_t v = celer_ops_int_at(lens, i);
        if (v < 0 || v > T)
            return celer_ops_error(c->info, CELER_ERR_INVALID,
                          "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)i,
                          (long long)v, (long long)T);
    }
    return CELER_OK;
}

static celer_status reshape_reverse_sequence(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    int b, t;
    CELER_TRY(revseq_read(c, &b, &t));
    return celer_ops_reshape_same(c);
}

static celer_status run_reverse_sequence(celer_kernel_call *c) {
    int ba, ta;
    CELER_TRY(revseq_read(c, &ba, &ta));
    const celer_tensor *x = c->in[0];
    const int64_t *d = x->shape.dims;
    size_t inner = (size_t)celer_ops_dims_prod(d, 2, x->shape.rank) * celer_dtype_size(x->dtype);
    if (!inner) return CELER_OK;
    for (int64_t i0 = 0; i0 < d[0]; i0++)
        for (int64_t i1 = 0; i1 < d[1]; i1++) {
            int64_t b = ba == 0 ? i0 : i1, t = ba == 0 ? i1 : i0;
            int64_t len = celer_ops_int_at(c->in[1], b);
            int64_t st = t < len ? len - 1 - t : t;
            int64_t src = ba == 0 ? b * d[1] + st : st * d[1] + b;
            memcpy((char *)c->out[0].data + (size_t)(i0 * d[1] + i1) * inner,
                   (const char *)x->data + (size_t)src * inner, inner);
        }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Unique                                                                                      */

/* Per-context result of the sort reshape does; run only copies out of it. One block: this
 * header, then six arrays of `cap` int64. Owned by the execution context (free_local). */
typedef struct unique_local {
    size_t cap;
    int64_t n, n_unique;
    int64_t *order, *tmp, *first, *count, *inverse, *aux;
} unique_local;

/* Slices along the axis are compared element by element, in row-major order of the others. */
typedef struct unique_view {
    const char *data;
    celer_dtype dtype;
    size_t es;
    int64_t outer, n, inner; /* element offset of (o, slice, j) = (o * n + slice) * inner + j */
} unique_view;

static int cmp_elem(const unique_view *u, const char *a, const char *b) {
#define CMP3(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)
    switch (u->dtype) {
    case CELER_STRING: {
        celer_str sa, sb;
        memcpy(&sa, a, sizeof sa);
        memcpy(&sb, b, sizeof sb);
        int r = celer_str_cmp(sa, sb);
        return CMP3(r, 0);
    }
    case CELER_FLOAT:
    case CELER_DOUBLE:
    case CELER_FLOAT16:
    case CELER_BFLOAT16: {
        celer_tensor ta = {.dtype = u->dtype, .data = (void *)a};
        celer_tensor tb = {.dtype = u->dtype, .data = (void *)b};
        double x = celer_ops_double_at(&ta, 0), y = celer_ops_double_at(&tb, 0);
        if (x != x || y != y) return CMP3(x != x, y != y); /* NaNs sort last, equal to each other */
        return CMP3(x, y);
    }
    case CELER_UINT64: {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        return CMP3(x, y);
    }
    default: {
        celer_tensor ta = {.dtype = u->dtype, .data = (void *)a};
        celer_tensor tb = {.dtype = u->dtype, .data = (void *)b};
        int64_t x = celer_ops_int_at(&ta, 0), y = celer_ops_int_at(&tb, 0);
        return CMP3(x, y);
    }
    }
#undef CMP3
}

static int cmp_slices(const unique_view *u, int64_t a, int64_t b) {
    for (int64_t o = 0; o < u->outer; o++)
        for (int64_t j = 0; j < u->inner; j++) {
            const char *pa = u->data + (size_t)((o * u->n + a) * u->inner + j) * u->es;
            const char *pb = u->data + (size_t)((o * u->n + b) * u->inner + j) * u->es;
            int r = cmp_elem(u, pa, pb);
            if (r) return r;
        }
    return 0;
}

/* Stable bottom-up merge sort of v[0..n) by slice value; tmp has room for n. */
static void sort_slices(const unique_view *u, int64_t *v, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = CELER_MIN(lo + w, n), hi = CELER_MIN(lo + 2 * w, n);
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp_slices(u, v[j], v[i]) < 0 ? v[j++] : v[i++];
            while (i < mid) tmp[k++] = v[i++];
            while (j < hi) tmp[k++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

static celer_status unique_view_of(const celer_kernel_call *c, unique_view *u, int *axis,
                                   bool *has_axis) {
    const celer_tensor *x = c->in[0];
    *has_axis = celer_onnx_attr_find(c->info->node, "axis") != NULL;
    u->data = x->data;
    u->dtype = x->dtype;
    u->es = celer_dtype_size(x->dtype);
    if (*has_axis) {
        if (x->shape.rank == 0) return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must have rank >= 1");
        CELER_TRY(celer_ops_axis(c->info, celer_onnx_attr_int(c->info->node, "axis", 0), x->shape.rank,
                           axis));
        u->outer = celer_ops_dims_prod(x->shape.dims, 0, *axis);
        u->n = x->shape.dims[*axis];
        u->inner = celer_ops_dims_prod(x->shape.dims, *axis + 1, x->shape.rank);
    } else {
        *axis = 0;
        u->outer = u->inner = 1;
        u->n = celer_shape_numel(&x->shape);
    }
    return CELER_OK;
}

static void unique_free(void *p) { free(p); }

static celer_status reshape_unique(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    unique_view u;
    int axis;
    bool has_axis;
    CELER_TRY(unique_view_of(c, &u, &axis, &has_axis));
    int64_t n = u.n;
    unique_local *L = *c->local;
    if (!L || L->cap < (size_t)n) {
        size_t cap = (size_t)CELER_MAX(n, 16), bytes;
        if (celer_mul_size(cap, 6 * sizeof(int64_t), &bytes) ||
            celer_add_size(bytes, sizeof *L, &bytes) || bytes > MAX_OUT_BYTES)
            return celer_ops_error(c->info, CELER_ERR_LIMIT, "input with %lld slices is too large", (long long)n);
        unique_local *nl = realloc(L, bytes);
        if (!nl) return celer_ops_error(c->info, CELER_ERR_NOMEM, "out of memory for %zu bytes", bytes);
        L = nl;
        *c->local = L;
        L->cap = cap;
        int64_t *base = (int64_t *)(L + 1);
        int64_t **arrays[6] = {&L->order, &L->tmp, &L->first, &L->count, &L->inverse, &L->aux};
        for (int i = 0; i < 6; i++) *arrays[i] = base + (size_t)i * cap;
    }
    L->n = n;
    for (int64_t i = 0; i < n; i++) L->order[i] = i;
    sort_slices(&u, L->order, L->tmp, n);
    /* groups of equal slices, in sorted order; the stable sort puts each group's first
     * occurrence first */
    int64_t g = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || cmp_slices(&u, L->order[i - 1], L->order[i])) {
            g++;
            L->first[g] = L->order[i];
            L->count[g] = 0;
        }
        L->count[g]++;
        L->inverse[L->order[i]] = g;
    }
    L->n_unique = g + 1;
    if (!celer_onnx_attr_int(c->info->node, "sorted", 1)) {
        /* renumber groups by first occurrence: tmp = new id of each sorted group */
        int64_t next = 0;
        for (int64_t i = 0; i < n; i++)
            if (L->first[L->inverse[i]] == i) L->tmp[L->inverse[i]] = next++;
        for (int64_t k = 0; k < L->n_unique; k++) {
            L->order[L->tmp[k]] = L->first[k];
            L->aux[L->tmp[k]] = L->count[k];
        }
        memcpy(L->first, L->order, (size_t)L->n_unique * sizeof(int64_t));
        memcpy(L->count, L->aux, (size_t)L->n_unique * sizeof(int64_t));
        for (int64_t i = 0; i < n; i++) L->inverse[i] = L->tmp[L->inverse[i]];
    }
    if (has_axis) {
        c->out[0].shape = c->in[0]->shape;
        c->out[0].shape.dims[axis] = L->n_unique;
    } else {
        c->out[0].shape = (celer_shape){.rank = 1, .dims = {L->n_unique}};
    }
    if (c->n_out > 1) c->out[1].shape = (celer_shape){.rank = 1, .dims = {L->n_unique}};
    if (c->n_out > 2) c->out[2].shape = (celer_shape){.rank = 1, .dims = {n}};
    if (c->n_out > 3) c->out[3].shape = (celer_shape){.rank = 1, .dims = {L->n_unique}};
    return CELER_OK;
}

static celer_status infer_unique(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->input_types[0];
    for (int i = 1; i < info->n_outputs; i++) out[i] = CELER_INT64;
    return CELER_OK;
}

static celer_status run_unique(celer_kernel_call *c) {
    const unique_local *L = *c->local;
    unique_view u;
    int axis;
    bool has_axis;
    CELER_TRY(unique_view_of(c, &u, &axis, &has_axis));
    if (!L || L->n != u.n)
        return celer_ops_error(c->info, CELER_ERR_INTERNAL, "run called without a matching reshape");
    size_t chunk = (size_t)u.inner * u.es;
    char *dst = c->out[0].data;
    if (dst && chunk)
        for (int64_t o = 0; o < u.outer; o++)
            for (int64_t k = 0; k < L->n_unique; k++, dst += chunk)
                memcpy(dst, u.data + (size_t)(o * u.n + L->first[k]) * chunk, chunk);
    const int64_t *src[4] = {NULL, L->first, L->inverse, L->count};
    int64_t len[4] = {0, L->n_unique, L->n, L->n_unique};
    for (int i = 1; i < c->n_out && i < 4; i++)
        if (c->out[i].data && len[i]) memcpy(c->out[i].data, src[i], (size_t)len[i] * sizeof(int64_t));
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define ALL CELER_DTS_ALL
#define DTS_ONEHOT_IND (CELER_DTS_NUMERIC | CELER_DT(CELER_BFLOAT16))
/* op, since, until, dtypes of input 0, infer_types, reshape, run, free_local */
#define K(op, since, until, dts, infer, reshape, run, free_local)                                  \
    {"", op, since, until, dts, 0, 0, infer, NULL, reshape, run, NULL, free_local}
/* the Scatter ops with a 'reduction' attribute, checked at load */
#define KS(op, since, until, reshape, run)                                                         \
    {"", op, since, until, ALL, 0, 0, NULL, init_scatter, reshape, run, NULL, NULL}

static const celer_kernel kernels[] = {
    K("Gather", 1, 10, ALL, NULL, reshape_gather, run_gather, NULL),
    K("Gather", 11, 12, ALL, NULL, reshape_gather, run_gather, NULL),
    K("Gather", 13, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_gather, run_gather, NULL),
    K("GatherElements", 11, 12, ALL, NULL, reshape_gather_elements, run_gather_elements, NULL),
    K("GatherElements", 13, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_gather_elements, run_gather_elements, NULL),
    K("GatherND", 11, 11, ALL, NULL, reshape_gathernd, run_gathernd, NULL),
    K("GatherND", 12, 12, ALL, NULL, reshape_gathernd, run_gathernd, NULL),
    K("GatherND", 13, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_gathernd, run_gathernd, NULL),
    K("Scatter", 9, 10, ALL, NULL, reshape_scatter_elements, run_scatter_elements, NULL),
    /* deprecated at 11 in favour of ScatterElements, with the same meaning */
    K("Scatter", 11, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_scatter_elements, run_scatter_elements, NULL),
    KS("ScatterElements", 11, 12, reshape_scatter_elements, run_scatter_elements),
    KS("ScatterElements", 13, 15, reshape_scatter_elements, run_scatter_elements),
    KS("ScatterElements", 16, 17, reshape_scatter_elements, run_scatter_elements),
    /* 18: reductions max and min */
    KS("ScatterElements", 18, CELER_OPS_MAX_VERSION, reshape_scatter_elements, run_scatter_elements),
    KS("ScatterND", 11, 12, reshape_scatternd, run_scatternd),
    KS("ScatterND", 13, 15, reshape_scatternd, run_scatternd),
    KS("ScatterND", 16, 17, reshape_scatternd, run_scatternd),
    KS("ScatterND", 18, CELER_OPS_MAX_VERSION, reshape_scatternd, run_scatternd),
    K("OneHot", 9, 10, DTS_ONEHOT_IND, infer_onehot, reshape_onehot, run_onehot, NULL),
    K("OneHot", 11, CELER_OPS_MAX_VERSION, DTS_ONEHOT_IND, infer_onehot, reshape_onehot, run_onehot, NULL),
    K("NonZero", 9, 12, ALL, infer_int64, reshape_nonzero, run_nonzero, NULL),
    K("NonZero", 13, CELER_OPS_MAX_VERSION, ALL, infer_int64, reshape_nonzero, run_nonzero, NULL),
    K("Compress", 9, 10, ALL, NULL, reshape_compress, run_compress, NULL),
    K("Compress", 11, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_compress, run_compress, NULL),
    K("ReverseSequence", 10, CELER_OPS_MAX_VERSION, ALL, NULL, reshape_reverse_sequence, run_reverse_sequence, NULL),
    K("Unique", 11, CELER_OPS_MAX_VERSION, ALL, infer_unique, reshape_unique, run_unique, unique_free),
};

const celer_kernel_family celer_family_indexing = {"indexing", kernels,
                                                   (int)CELER_ARRAY_LEN(kernels)};
