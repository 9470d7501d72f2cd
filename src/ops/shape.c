/* shape: operators that move elements without computing on them (Reshape, Transpose, Slice,
 * Concat, Pad, Tile, ...).
 *
 * They work on element bytes, so one kernel serves every dtype; strings are `char *` elements and
 * are copied as pointers (tensors do not own their data). Most of them are one strided copy: the
 * output is described as a view of the input (dims plus source strides, possibly 0 or negative)
 * and copy_view() walks it. Ops whose output shape depends on input values (Reshape's shape,
 * Slice's starts, Pad's pads...) read those values in reshape, where inputs are already computed,
 * and run recomputes the same small plan from the same inputs. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"
#include "vmath.h" /* CELER_VECTOR_CLONES */

/* An output bigger than this is refused: a shape input can ask for anything. */
#define MAX_OUT_BYTES CELER_OPS_MAX_BYTES
/* Tile views an r-D output as 2r dims (repeat, dim) pairs. */
#define VIEW_RANK (2 * CELER_MAX_RANK)

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

/* "[1,-1,3]" into buf (truncated to cap); returns buf. */
static const char *ints_str(const int64_t *v, int n, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)v[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

static bool is_int_dtype(celer_dtype t) { return t == CELER_INT64 || t == CELER_INT32; }

/* Reads a 1-D (or scalar) int32/int64 tensor of at most `max` values into out[]. */
static celer_status read_ints(const celer_op_info *info, const celer_tensor *t, const char *what,
                              int64_t *out, int max, int *n) {
    if (!is_int_dtype(t->dtype))
        return celer_ops_error(info, CELER_ERR_DTYPE, "input '%s' must be int64 or int32, got %s", what,
                      celer_dtype_name(t->dtype));
    if (t->shape.rank > 1) {
        char b[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "input '%s' must be 1-D, got shape %s", what,
                      celer_shape_str(&t->shape, b, sizeof b));
    }
    int64_t cnt = celer_shape_numel(&t->shape);
    if (cnt < 0 || cnt > max)
        return celer_ops_error(info, CELER_ERR_LIMIT, "input '%s' has %lld values, at most %d allowed",
                      what, (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) out[i] = celer_ops_int_at(t, i);
    *n = (int)cnt;
    return CELER_OK;
}

/* Reads an INTS attribute of at most `max` values; *n = -1 when absent. */
static celer_status read_attr_ints(const celer_op_info *info, const char *name, int64_t *out,
                                   int max, int *n) {
    const int64_t *p = NULL;
    int cnt = celer_onnx_attr_ints(info->node, name, &p);
    if (cnt > max)
        return celer_ops_error(info, CELER_ERR_LIMIT, "attribute '%s' has %d values, at most %d allowed",
                      name, cnt, max);
    for (int i = 0; i < cnt; i++) out[i] = p[i];
    *n = cnt;
    return CELER_OK;
}

/* Writes n copies of the element `val` (es bytes). */
static void fill_elems(char *dst, int64_t n, const void *val, size_t es) {
    if (n <= 0) return;
    bool zero = true;
    for (size_t i = 0; i < es; i++) zero &= ((const unsigned char *)val)[i] == 0;
    if (zero) {
        memset(dst, 0, (size_t)n * es);
        return;
    }
    memcpy(dst, val, es);
    /* doubling copies: log2(n) memcpy calls */
    for (int64_t done = 1; done < n;) {
        int64_t k = CELER_MIN(done, n - done);
        memcpy(dst + (size_t)done * es, dst, (size_t)k * es);
        done += k;
    }
}

/* The element used for "zero" (Trilu) and the default pad value: all-zero bytes, except for
 * strings, which get an empty string rather than a NULL pointer. */
static const char empty_string[] = "";
static void zero_elem(celer_dtype t, unsigned char *val) {
    memset(val, 0, 16);
    if (t == CELER_STRING) {
        const celer_str e = {empty_string, 0};
        memcpy(val, &e, sizeof e);
    }
}

/* ---- strided copy ---- */

/* The output, row-major with these dims, reads source element sum(idx[i] * strides[i]). */
typedef struct view {
    int rank;
    int64_t dims[VIEW_RANK];
    int64_t strides[VIEW_RANK]; /* in source elements; 0 repeats, negative walks backwards */
} view;

#define STRIDED_CASE(W)                                                                            \
    case W:                                                                                        \
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * W, src + i * stride * W, W);            \
        break;
static void copy_strided(char *dst, const char *src, int64_t n, int64_t stride, size_t es) {
    switch (es) {
        STRIDED_CASE(1)
        STRIDED_CASE(2)
        STRIDED_CASE(4)
        STRIDED_CASE(8)
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * (int64_t)es, src + i * stride * (int64_t)es, es);
    }
}

/* A whole 8 x 8 tile of floats: eight row loads, three rounds of shuffles (vector extensions and
 * __builtin_shufflevector, which GCC 12 and clang share: each clone at its width, two SSE halves
 * in the baseline one), eight row stores instead of 64 scalar copies: attention's K^T in BERT-base
 * ([128, 96, 64] -> [96, 64, 128]) 0.42 -> 0.35-0.41 ms at 1 thread (the rest is memory). */
typedef float tr_v8 __attribute__((vector_size(8 * sizeof(float))));
CELER_VECTOR_CLONES
static void transpose8_f32(float *dst, const float *src, int64_t cols, int64_t cs) {
    tr_v8 x[8], t[8], u[8];
    for (int c = 0; c < 8; c++) memcpy(&x[c], src + c * cs, sizeof x[c]); /* x[c][r] = dst[r][c] */
    for (int c = 0; c < 8; c += 2) {
        t[c] = __builtin_shufflevector(x[c], x[c + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[c + 1] = __builtin_shufflevector(x[c], x[c + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int c = 0; c < 8; c += 4)
        for (int h = 0; h < 2; h++) {
            u[c + 2 * h] = __builtin_shufflevector(t[c + h], t[c + 2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
            u[c + 2 * h + 1] = __builtin_shufflevector(t[c + h], t[c + 2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int r = 0; r < 4; r++) { /* u[r] and u[r + 4] hold rows r and r + 4 in their halves */
        tr_v8 lo = __builtin_shufflevector(u[r], u[r + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        tr_v8 hi = __builtin_shufflevector(u[r], u[r + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + r * cols, &lo, sizeof lo);
        memcpy(dst + (r + 4) * cols, &hi, sizeof hi);
    }
}

/* dst[r][c] = src[r + c * cs] for r < rows, c < cols (the two inner axes swapped): the 2-D and
 * last-two-axes transposes. Two levels of tiles: small ones so that a tile's lines stay in L1
 * even when the row pitch is a power of two (all lines in one cache set), blocks of them so that
 * a sweep touches few pages. */
#define TILE 8
#define BLOCK 64
#define TRANSPOSE_CASE(W)                                                                          \
    case W:                                                                                        \
        for (int64_t c = c0; c < c1; c++)                                                          \
            for (int64_t r = r0; r < r1; r++)                                                      \
                memcpy(dst + (r * cols + c) * W, src + (r + c * cs) * W, W);                      \
        break;
static void transpose_tile(char *dst, const char *src, int64_t r0, int64_t r1, int64_t c0,
                           int64_t c1, int64_t cols, int64_t cs, size_t es) {
    if (es == 4 && r1 - r0 == 8 && c1 - c0 == 8) {
        transpose8_f32((float *)dst + r0 * cols + c0, (const float *)src + r0 + c0 * cs, cols, cs);
        return;
    }
    switch (es) {
        TRANSPOSE_CASE(1)
        TRANSPOSE_CASE(2)
        TRANSPOSE_CASE(4)
        TRANSPOSE_CASE(8)
    default:
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++)
                memcpy(dst + (r * cols + c) * (int64_t)es, src + (r + c * cs) * (int64_t)es, es);
    }
}

static void transpose_tiles(char *dst, const char *src, int64_t rows, int64_t cols, int64_t cs,
                            size_t es) {
    for (int64_t rb = 0; rb < rows; rb += BLOCK)
        for (int64_t cb = 0; cb < cols; cb += BLOCK) {
            int64_t rbe = CELER_MIN(rb + BLOCK, rows), cbe = CELER_MIN(cb + BLOCK, cols);
            for (int64_t r0 = rb; r0 < rbe; r0 += TILE)
                for (int64_t c0 = cb; c0 < cbe; c0 += TILE)
                    transpose_tile(dst, src, r0, CELER_MIN(r0 + TILE, rbe), c0,
                                   CELER_MIN(c0 + TILE, cbe), cols, cs, es);
        }
}

/* The merged view's outer dims [0, orank), each step one run of `inner` elements. */
typedef struct view_job {
    const view *v;
    char *d;
    const char *s;
    size_t es;
    bool tiled;
    int orank;
    int64_t inner;
} view_job;

/* Bytes a thread should copy before the team is woken for it (attention's head transposes,
 * 400 KB in BERT-base, split; the many small ones not). */
#define COPY_PAR_BYTES (INT64_C(64) << 10)

/* Runs [lo, hi) of the outer dims of j: an odometer started at lo. */
static void copy_outer(void *ctx, size_t lo, size_t hi) {
    const view_job *j = ctx;
    const view *v = j->v;
    int last = v->rank - 1;
    int64_t idx[VIEW_RANK] = {0}, off = 0, ies = (int64_t)j->es;
    for (int64_t k = j->orank - 1, rest = (int64_t)lo; k >= 0; k--) {
        idx[k] = rest % v->dims[k];
        rest /= v->dims[k];
        off += idx[k] * v->strides[k];
    }
    for (int64_t o = (int64_t)lo; o < (int64_t)hi; o++) {
        char *dp = j->d + o * j->inner * ies;
        const char *sp = j->s + off * ies;
        if (j->tiled)
            transpose_tiles(dp, sp, v->dims[last - 1], v->dims[last], v->strides[last], j->es);
        else if (v->strides[last] == 1)
            memcpy(dp, sp, (size_t)j->inner * j->es);
        else
            copy_strided(dp, sp, j->inner, v->strides[last], j->es);
        for (int k = j->orank - 1; k >= 0; k--) {
            off += v->strides[k];
            if (++idx[k] < v->dims[k]) break;
            off -= v->strides[k] * v->dims[k];
            idx[k] = 0;
        }
    }
}

/* Copies the view `in` of `src` (which points at the view's element 0) into dst, row-major; big
 * copies are shared over the team by their outer dims. */
static void copy_view(void *dst, const void *src, const view *in, size_t es) {
    view v = {0};
    /* drop unit dims and merge dims that are contiguous with each other in the source */
    for (int i = 0; i < in->rank; i++) {
        if (in->dims[i] == 0) return;
        if (in->dims[i] == 1) continue;
        if (v.rank && v.strides[v.rank - 1] == in->strides[i] * in->dims[i]) {
            v.dims[v.rank - 1] *= in->dims[i];
            v.strides[v.rank - 1] = in->strides[i];
            continue;
        }
        v.dims[v.rank] = in->dims[i];
        v.strides[v.rank] = in->strides[i];
        v.rank++;
    }
    if (v.rank == 0) {
        memcpy(dst, src, es);
        return;
    }
    int last = v.rank - 1;
    bool tiled = v.rank >= 2 && v.strides[last] != 1 && v.strides[last - 1] == 1;
    int orank = tiled ? v.rank - 2 : v.rank - 1;
    int64_t inner = tiled ? v.dims[last - 1] * v.dims[last] : v.dims[last];
    view_job j = {&v, dst, src, es, tiled, orank, inner};
    int64_t outer = celer_ops_dims_prod(v.dims, 0, orank), bytes = inner * (int64_t)es;
    celer_ops_parallel_for((size_t)outer, (size_t)(COPY_PAR_BYTES / (bytes ? bytes : 1) + 1), 1, copy_outer, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* Reshape, Flatten, Squeeze, Unsqueeze, Identity: output 0 is a view of input 0 (ALIAS).     */

static celer_status reshape_reshape(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0], *shp = celer_ops_input(c, 1);
    if (!shp) return celer_ops_error(info, CELER_ERR_INVALID, "the 'shape' input is missing");
    int64_t want[CELER_MAX_RANK];
    int n = 0;
    CELER_TRY(read_ints(info, shp, "shape", want, CELER_MAX_RANK, &n));
    bool allowzero =
        info->since_version >= 14 && celer_onnx_attr_int(info->node, "allowzero", 0) != 0;
    celer_shape out = {.rank = n};
    int infer = -1;
    int64_t known = 1;
    char b1[200], b2[200];
    for (int i = 0; i < n; i++) {
        int64_t v = want[i];
        if (v == 0 && !allowzero) {
            if (i >= x->shape.rank)
                return celer_ops_error(info, CELER_ERR_SHAPE,
                              "shape %s has 0 (copy the input dim) at index %d but the input %s "
                              "has rank %d",
                              ints_str(want, n, b1, sizeof b1), i,
                              celer_shape_str(&x->shape, b2, sizeof b2), x->shape.rank);
            v = x->shape.dims[i];
        } else if (v == -1) {
            if (infer >= 0)
                return celer_ops_error(info, CELER_ERR_INVALID, "shape %s has more than one -1",
                              ints_str(want, n, b1, sizeof b1));
            infer = i;
            continue;
        } else if (v < 0) {
            return celer_ops_error(info, CELER_ERR_INVALID, "shape %s has invalid dim %lld",
                          ints_str(want, n, b1, sizeof b1), (long long)v);
        }
        out.dims[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            return celer_ops_error(info, CELER_ERR_LIMIT, "shape %s overflows",
                          ints_str(want, n, b1, sizeof b1));
    }
    int64_t total = celer_shape_numel(&x->shape);
    if (infer >= 0) {
        if (known == 0 || total % known)
            return celer_ops_error(info, CELER_ERR_SHAPE, "cannot reshape input of shape %s into %s",
                          celer_shape_str(&x->shape, b2, sizeof b2),
                          ints_str(want, n, b1, sizeof b1));
        out.dims[infer] = total / known;
    } else if (known != total) {
        return celer_ops_error(info, CELER_ERR_SHAPE,
                      "cannot reshape input of shape %s (%lld elements) into %s (%lld elements)",
                      celer_shape_str(&x->shape, b2, sizeof b2), (long long)total,
                      ints_str(want, n, b1, sizeof b1), (long long)known);
    }
    c->out[0].shape = out;
    return CELER_OK;
}

static celer_status reshape_identity(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    CELER_TRY(celer_ops_require(c, 1));
    return celer_ops_reshape_same(c);
}

static celer_status reshape_flatten(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_shape *s = &c->in[0]->shape;
    int64_t axis = celer_onnx_attr_int(c->info->node, "axis", 1);
    if (axis < -s->rank || axis > s->rank)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "axis %lld is out of range for rank %d",
                      (long long)axis, s->rank);
    int a = (int)(axis < 0 ? axis + s->rank : axis);
    celer_shape out = {.rank = 2};
    out.dims[0] = celer_ops_dims_prod(s->dims, 0, a);
    out.dims[1] = celer_ops_dims_prod(s->dims, a, s->rank);
    c->out[0].shape = out;
    return CELER_OK;
}

/* Squeeze/Unsqueeze axes: an attribute before opset 13, input 1 since. *n = -1 when absent. */
static celer_status read_axes(const celer_kernel_call *c, int64_t *axes, int *n) {
    *n = -1;
    if (c->info->since_version >= 13) {
        const celer_tensor *t = celer_ops_input(c, 1);
        return t ? read_ints(c->info, t, "axes", axes, CELER_MAX_RANK, n) : CELER_OK;
    }
    return read_attr_ints(c->info, "axes", axes, CELER_MAX_RANK, n);
}

static celer_status reshape_squeeze(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_op_info *info = c->info;
    const celer_shape *s = &c->in[0]->shape;
    int64_t axes[CELER_MAX_RANK];
    int n;
    CELER_TRY(read_axes(c, axes, &n));
    bool drop[CELER_MAX_RANK] = {0};
    char b[200];
    if (n <= 0) { /* no axes: every unit dim goes */
        for (int i = 0; i < s->rank; i++) drop[i] = s->dims[i] == 1;
    } else {
        for (int j = 0; j < n; j++) {
            int a;
            CELER_TRY(celer_ops_axis(info, axes[j], s->rank, &a));
            if (s->dims[a] != 1)
                return celer_ops_error(info, CELER_ERR_SHAPE, "cannot squeeze axis %lld of shape %s: "
                              "its size is %lld, not 1", (long long)axes[j],
                              celer_shape_str(s, b, sizeof b), (long long)s->dims[a]);
            drop[a] = true;
        }
    }
    celer_shape out = {0};
    for (int i = 0; i < s->rank; i++)
        if (!drop[i]) out.dims[out.rank++] = s->dims[i];
    c->out[0].shape = out;
    return CELER_OK;
}

static celer_status reshape_unsqueeze(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_op_info *info = c->info;
    const celer_shape *s = &c->in[0]->shape;
    int64_t axes[CELER_MAX_RANK];
    int n;
    CELER_TRY(read_axes(c, axes, &n));
    if (n < 0) return celer_ops_error(info, CELER_ERR_INVALID, "'axes' is required");
    int rank = s->rank + n;
    if (rank > CELER_MAX_RANK)
        return celer_ops_error(info, CELER_ERR_LIMIT, "output rank %d exceeds the maximum %d", rank,
                      CELER_MAX_RANK);
    bool add[CELER_MAX_RANK] = {0};
    for (int j = 0; j < n; j++) {
        int a;
        CELER_TRY(celer_ops_axis(info, axes[j], rank, &a));
        if (add[a])
            return celer_ops_error(info, CELER_ERR_INVALID, "axis %lld is repeated in 'axes'",
                          (long long)axes[j]);
        add[a] = true;
    }
    celer_shape out = {.rank = rank};
    for (int i = 0, k = 0; i < rank; i++) out.dims[i] = add[i] ? 1 : s->dims[k++];
    c->out[0].shape = out;
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Transpose                                                                                   */

static celer_status transpose_perm(const celer_op_info *info, int rank, int *perm) {
    const int64_t *p = NULL;
    int n = celer_onnx_attr_ints(info->node, "perm", &p);
    if (n < 0) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return CELER_OK;
    }
    if (n != rank)
        return celer_ops_error(info, CELER_ERR_INVALID, "'perm' has %d entries but the input has rank %d",
                      n, rank);
    bool seen[CELER_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]]) {
            char b[200];
            return celer_ops_error(info, CELER_ERR_INVALID, "'perm' %s is not a permutation of 0..%d",
                          ints_str(p, n, b, sizeof b), rank - 1);
        }
        seen[p[i]] = true;
        perm[i] = (int)p[i];
    }
    return CELER_OK;
}

static celer_status reshape_transpose(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_shape *s = &c->in[0]->shape;
    int perm[CELER_MAX_RANK];
    CELER_TRY(transpose_perm(c->info, s->rank, perm));
    celer_shape out = {.rank = s->rank};
    for (int i = 0; i < s->rank; i++) out.dims[i] = s->dims[perm[i]];
    c->out[0].shape = out;
    return CELER_OK;
}

static celer_status run_transpose(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    int perm[CELER_MAX_RANK];
    CELER_TRY(transpose_perm(c->info, x->shape.rank, perm));
    int64_t st[CELER_MAX_RANK];
    celer_ops_strides(&x->shape, st);
    view v = {.rank = x->shape.rank};
    for (int i = 0; i < v.rank; i++) {
        v.dims[i] = x->shape.dims[perm[i]];
        v.strides[i] = st[perm[i]];
    }
    copy_view(c->out[0].data, x->data, &v, celer_dtype_size(x->dtype));
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Concat, Split                                                                               */

static celer_status reshape_concat(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_op_info *info = c->info;
    if (!celer_onnx_attr_find(info->node, "axis"))
        return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'axis' is required");
    const celer_tensor *x0 = c->in[0];
    if (!x0) return celer_ops_error(info, CELER_ERR_INVALID, "input 0 is missing");
    if (x0->shape.rank == 0)
        return celer_ops_error(info, CELER_ERR_SHAPE, "inputs must have rank >= 1, got a scalar");
    int axis;
    CELER_TRY(celer_ops_axis(info, celer_onnx_attr_int(info->node, "axis", 0), x0->shape.rank, &axis));
    celer_shape out = x0->shape;
    out.dims[axis] = 0;
    char b1[200], b2[200];
    for (int i = 0; i < c->n_in; i++) {
        const celer_tensor *x = c->in[i];
        if (!x) return celer_ops_error(info, CELER_ERR_INVALID, "input %d is missing", i);
        if (x->dtype != x0->dtype)
            return celer_ops_error(info, CELER_ERR_DTYPE, "input %d is %s but input 0 is %s", i,
                          celer_dtype_name(x->dtype), celer_dtype_name(x0->dtype));
        bool ok = x->shape.rank == x0->shape.rank;
        for (int d = 0; ok && d < x->shape.rank; d++)
            ok = d == axis || x->shape.dims[d] == x0->shape.dims[d];
        if (!ok)
            return celer_ops_error(info, CELER_ERR_SHAPE,
                          "input %d has shape %s, which does not match input 0's %s outside "
                          "axis %d",
                          i, celer_shape_str(&x->shape, b1, sizeof b1),
                          celer_shape_str(&x0->shape, b2, sizeof b2), axis);
        if (__builtin_add_overflow(out.dims[axis], x->shape.dims[axis], &out.dims[axis]))
            return celer_ops_error(info, CELER_ERR_LIMIT, "concatenated axis overflows");
    }
    c->out[0].shape = out;
    return celer_ops_check_output(info, &c->out[0]);
}

static celer_status run_concat(celer_kernel_call *c) {
    const celer_shape *s = &c->out[0].shape;
    int axis;
    CELER_TRY(celer_ops_axis(c->info, celer_onnx_attr_int(c->info->node, "axis", 0), s->rank, &axis));
    size_t es = celer_dtype_size(c->out[0].dtype);
    int64_t outer = celer_ops_dims_prod(s->dims, 0, axis);
    size_t inner = (size_t)celer_ops_dims_prod(s->dims, axis + 1, s->rank) * es;
    char *dst = c->out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < c->n_in; i++) {
            size_t chunk = (size_t)c->in[i]->shape.dims[axis] * inner;
            if (!chunk) continue;
            memcpy(dst, (const char *)c->in[i]->data + (size_t)o * chunk, chunk);
            dst += chunk;
        }
    return CELER_OK;
}

/* Split 18 takes exactly one of input 'split' and attribute 'num_outputs', which must equal the
 * node's output count; *num = the attribute's value, 0 when absent (and before opset 18). */
static celer_status split_num_outputs(const celer_op_info *info, bool has_split, int *num) {
    *num = 0;
    if (info->since_version < 18) return CELER_OK;
    bool has_num = celer_onnx_attr_find(info->node, "num_outputs") != NULL;
    if (has_num && has_split)
        return celer_ops_error(info, CELER_ERR_INVALID,
                               "input 'split' and attribute 'num_outputs' are both given: give one of them");
    if (!has_num && !has_split)
        return celer_ops_error(info, CELER_ERR_INVALID, "give input 'split' or attribute 'num_outputs'");
    if (!has_num) return CELER_OK;
    int64_t k = celer_onnx_attr_int(info->node, "num_outputs", 0);
    if (k != info->n_outputs)
        return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'num_outputs' is %lld but the node has %d outputs",
                               (long long)k, info->n_outputs);
    *num = (int)k;
    return CELER_OK;
}

/* init: checks 'num_outputs' against input 'split' at load. No state. */
static celer_status init_split(const celer_op_info *info, void **state) {
    int num;
    (void)state;
    bool has_split = info->n_inputs > 1 && info->input_types[1] != CELER_UNDEFINED;
    return split_num_outputs(info, has_split, &num);
}

static celer_status reshape_split(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_op_info *info = c->info;
    const celer_shape *s = &c->in[0]->shape;
    int axis, num;
    CELER_TRY(celer_ops_axis(info, celer_onnx_attr_int(info->node, "axis", 0), s->rank, &axis));
    int64_t dim = s->dims[axis];
    /* sizes: input 1 since opset 13, attribute 'split' before; equal parts when absent */
    const celer_tensor *t = info->since_version >= 13 ? celer_ops_input(c, 1) : NULL;
    CELER_TRY(split_num_outputs(info, t != NULL, &num));
    const int64_t *attr = NULL;
    int n = -1;
    if (t) {
        if (!is_int_dtype(t->dtype) || t->shape.rank > 1)
            return celer_ops_error(info, CELER_ERR_INVALID, "input 'split' must be a 1-D int64 tensor");
        int64_t cnt = celer_shape_numel(&t->shape);
        n = cnt > c->n_out ? c->n_out + 1 : (int)cnt;
    } else if (info->since_version < 13) {
        n = celer_onnx_attr_ints(info->node, "split", &attr);
    }
    if (n >= 0 && n != c->n_out)
        return celer_ops_error(info, CELER_ERR_INVALID, "'split' has %d sizes but the node has %d outputs",
                      n, c->n_out);
    /* num_outputs (18): parts of ceil(dim / num), the last one what remains */
    int64_t chunk = num > 0 ? dim / num + (dim % num != 0) : 0;
    if (num > 0 && chunk * (num - 1) > dim)
        return celer_ops_error(info, CELER_ERR_SHAPE,
                      "axis %d of size %lld cannot be split into %d parts of %lld, the last smaller", axis,
                      (long long)dim, num, (long long)chunk);
    if (n < 0 && num == 0 && (c->n_out < 1 || dim % c->n_out))
        return celer_ops_error(info, CELER_ERR_SHAPE,
                      "axis %d of size %lld cannot be split into %d equal parts", axis,
                      (long long)dim, c->n_out);
    int64_t sum = 0;
    for (int j = 0; j < c->n_out; j++) {
        int64_t sz = num > 0   ? (j < num - 1 ? chunk : dim - chunk * (num - 1))
                     : n < 0 ? dim / c->n_out
                     : t     ? celer_ops_int_at(t, j)
                             : attr[j];
        if (sz < 0 || sz > dim)
            return celer_ops_error(info, CELER_ERR_INVALID, "split size %lld for output %d is invalid",
                          (long long)sz, j);
        sum += sz;
        c->out[j].shape = *s;
        c->out[j].shape.dims[axis] = sz;
    }
    if (sum != dim)
        return celer_ops_error(info, CELER_ERR_SHAPE, "split sizes add up to %lld but axis %d has size %lld",
                      (long long)sum, axis, (long long)dim);
    return CELER_OK;
}

static celer_status run_split(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    int axis;
    CELER_TRY(celer_ops_axis(c->info, celer_onnx_attr_int(c->info->node, "axis", 0), x->shape.rank,
                       &axis));
    size_t es = celer_dtype_size(x->dtype);
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis), dim = x->shape.dims[axis];
    size_t inner = (size_t)celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank) * es;
    int64_t at = 0;
    for (int j = 0; j < c->n_out; j++) {
        int64_t sz = c->out[j].shape.dims[axis];
        char *dst = c->out[j].data;
        size_t chunk = (size_t)sz * inner;
        if (dst && chunk)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst + (size_t)o * chunk,
                       (const char *)x->data + ((size_t)o * (size_t)dim + (size_t)at) * inner,
                       chunk);
        at += sz;
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Slice                                                                                       */

/* The view of the input the slice selects and the byte offset of its first element. */
static celer_status slice_plan(const celer_kernel_call *c, view *v, int64_t *first) {
    const celer_op_info *info = c->info;
    const celer_shape *s = &c->in[0]->shape;
    int r = s->rank, n, na = -1, ns = -1, ne;
    int64_t starts[CELER_MAX_RANK], ends[CELER_MAX_RANK], axes[CELER_MAX_RANK],
        steps[CELER_MAX_RANK];
    if (info->since_version < 10) {
        CELER_TRY(read_attr_ints(info, "starts", starts, CELER_MAX_RANK, &n));
        CELER_TRY(read_attr_ints(info, "ends", ends, CELER_MAX_RANK, &ne));
        CELER_TRY(read_attr_ints(info, "axes", axes, CELER_MAX_RANK, &na));
        if (n < 0 || ne < 0)
            return celer_ops_error(info, CELER_ERR_INVALID, "attributes 'starts' and 'ends' are required");
    } else {
        if (!celer_ops_input(c, 1) || !celer_ops_input(c, 2))
            return celer_ops_error(info, CELER_ERR_INVALID, "inputs 'starts' and 'ends' are required");
        CELER_TRY(read_ints(info, c->in[1], "starts", starts, CELER_MAX_RANK, &n));
        CELER_TRY(read_ints(info, c->in[2], "ends", ends, CELER_MAX_RANK, &ne));
        if (celer_ops_input(c, 3)) CELER_TRY(read_ints(info, c->in[3], "axes", axes, CELER_MAX_RANK, &na));
        if (celer_ops_input(c, 4)) CELER_TRY(read_ints(info, c->in[4], "steps", steps, CELER_MAX_RANK, &ns));
    }
    if (ne != n || (na >= 0 && na != n) || (ns >= 0 && ns != n))
        return celer_ops_error(info, CELER_ERR_INVALID,
                      "starts, ends, axes and steps must have the same length (got %d, %d, %d, %d)",
                      n, ne, na, ns);
    int64_t st[CELER_MAX_RANK];
    celer_ops_strides(s, st);
    v->rank = r;
    for (int i = 0; i < r; i++) {
        v->dims[i] = s->dims[i];
        v->strides[i] = st[i];
    }
    *first = 0;
    bool seen[CELER_MAX_RANK] = {0};
    for (int j = 0; j < n; j++) {
        int a;
        CELER_TRY(celer_ops_axis(info, na >= 0 ? axes[j] : j, r, &a));
        if (seen[a])
            return celer_ops_error(info, CELER_ERR_INVALID, "axis %d is sliced twice", a);
        seen[a] = true;
        int64_t step = ns >= 0 ? steps[j] : 1, dim = s->dims[a], b = starts[j], e = ends[j];
        if (step == 0) return celer_ops_error(info, CELER_ERR_INVALID, "step for axis %d is 0", a);
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        int64_t len = 0;
        if (step > 0) {
            b = CELER_MAX(0, CELER_MIN(b, dim));
            e = CELER_MAX(0, CELER_MIN(e, dim));
            if (e > b) len = (int64_t)((uint64_t)(e - b - 1) / (uint64_t)step) + 1;
        } else if (dim > 0) {
            b = CELER_MAX(0, CELER_MIN(b, dim - 1));
            e = CELER_MAX(-1, CELER_MIN(e, dim - 1));
            if (b > e) len = (int64_t)((uint64_t)(b - e - 1) / (0 - (uint64_t)step)) + 1;
        }
        v->dims[a] = len;
        if (len > 0) *first += b * st[a];
        /* |step| <= dim whenever a second element exists, so the product fits */
        v->strides[a] = len > 1 ? st[a] * step : 0;
    }
    return CELER_OK;
}

static celer_status reshape_slice(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    view v;
    int64_t first;
    CELER_TRY(slice_plan(c, &v, &first));
    c->out[0].shape.rank = v.rank;
    for (int i = 0; i < v.rank; i++) c->out[0].shape.dims[i] = v.dims[i];
    return CELER_OK;
}

static celer_status run_slice(celer_kernel_call *c) {
    view v;
    int64_t first;
    CELER_TRY(slice_plan(c, &v, &first));
    size_t es = celer_dtype_size(c->in[0]->dtype);
    copy_view(c->out[0].data, (const char *)c->in[0]->data + first * (int64_t)es, &v, es);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Shape, Size                                                                                 */

static celer_status infer_int64(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs; i++) out[i] = CELER_INT64;
    return CELER_OK;
}

static void shape_range(const celer_kernel_call *c, int *from, int *to) {
    int r = c->in[0]->shape.rank;
    int64_t b = 0, e = r;
    if (c->info->since_version >= 15) {
        b = celer_onnx_attr_int(c->info->node, "start", 0);
        e = celer_onnx_attr_int(c->info->node, "end", r);
    }
    if (b < 0) b += r;
    if (e < 0) e += r;
    b = CELER_MAX(0, CELER_MIN(b, r));
    e = CELER_MAX(b, CELER_MIN(e, r));
    *from = (int)b;
    *to = (int)e;
}

static celer_status reshape_shape(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    int b, e;
    shape_range(c, &b, &e);
    c->out[0].shape = (celer_shape){.rank = 1, .dims = {e - b}};
    return CELER_OK;
}

static celer_status run_shape(celer_kernel_call *c) {
    int b, e;
    shape_range(c, &b, &e);
    int64_t *o = c->out[0].data;
    for (int i = b; i < e; i++) o[i - b] = c->in[0]->shape.dims[i];
    return CELER_OK;
}

static celer_status reshape_size(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    c->out[0].shape = (celer_shape){.rank = 0};
    return CELER_OK;
}

static celer_status run_size(celer_kernel_call *c) {
    *(int64_t *)c->out[0].data = celer_shape_numel(&c->in[0]->shape);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* ConstantOfShape, EyeLike, Range                                                             */

/* Reads a 1-D int64 shape input (dims >= 0) into *out. */
static celer_status read_shape(const celer_op_info *info, const celer_tensor *t, const char *what,
                               celer_shape *out) {
    int64_t d[CELER_MAX_RANK];
    int n;
    CELER_TRY(read_ints(info, t, what, d, CELER_MAX_RANK, &n));
    out->rank = n;
    for (int i = 0; i < n; i++) {
        if (d[i] < 0) {
            char b[200];
            return celer_ops_error(info, CELER_ERR_INVALID, "'%s' %s has a negative dim", what,
                          ints_str(d, n, b, sizeof b));
        }
        out->dims[i] = d[i];
    }
    return CELER_OK;
}

static celer_status cos_value(const celer_op_info *info, const celer_tensor **value) {
    const celer_onnx_attr *a = celer_onnx_attr_find(info->node, "value");
    *value = NULL;
    if (!a) return CELER_OK;
    if (a->type != CELER_ATTR_TENSOR || !a->t || celer_shape_numel(&a->t->shape) != 1 ||
        !a->t->data)
        return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'value' must be a one-element tensor");
    if (a->t->dtype == CELER_STRING || celer_dtype_size(a->t->dtype) == 0)
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "'value' of type %s is not supported",
                      celer_dtype_name(a->t->dtype));
    *value = a->t;
    return CELER_OK;
}

static celer_status infer_constant_of_shape(const celer_op_info *info, celer_dtype *out) {
    const celer_tensor *v;
    CELER_TRY(cos_value(info, &v));
    out[0] = v ? v->dtype : CELER_FLOAT;
    return CELER_OK;
}

static celer_status reshape_constant_of_shape(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    CELER_TRY(read_shape(c->info, c->in[0], "input", &c->out[0].shape));
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_constant_of_shape(celer_kernel_call *c) {
    const celer_tensor *v;
    CELER_TRY(cos_value(c->info, &v));
    unsigned char val[16] = {0};
    size_t es = celer_dtype_size(c->out[0].dtype);
    if (v && v->dtype == c->out[0].dtype) memcpy(val, v->data, es);
    fill_elems(c->out[0].data, celer_shape_numel(&c->out[0].shape), val, es);
    return CELER_OK;
}

#define DTS_EYE (CELER_DTS_NUMERIC | CELER_DT(CELER_BOOL))

static celer_status infer_eye_like(const celer_op_info *info, celer_dtype *out) {
    int64_t t = celer_onnx_attr_int(info->node, "dtype", info->input_types[0]);
    if (t <= 0 || t >= CELER_DTYPE_COUNT || !(DTS_EYE & CELER_DT(t)))
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "output dtype %lld is not supported",
                      (long long)t);
    out[0] = (celer_dtype)t;
    return CELER_OK;
}

static celer_status reshape_eye_like(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    const celer_shape *s = &c->in[0]->shape;
    if (s->rank != 2) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must be 2-D, got shape %s",
                      celer_shape_str(s, b, sizeof b));
    }
    c->out[0].shape = *s;
    return CELER_OK;
}

static celer_status run_eye_like(celer_kernel_call *c) {
    celer_tensor *y = &c->out[0];
    int64_t rows = y->shape.dims[0], cols = y->shape.dims[1];
    int64_t k = celer_onnx_attr_int(c->info->node, "k", 0);
    memset(y->data, 0, (size_t)(rows * cols) * celer_dtype_size(y->dtype));
    for (int64_t i = 0; i < rows; i++)
        if (k >= -i && k < cols - i) celer_ops_double_store(y, i * cols + i + k, 1.0);
    return CELER_OK;
}

#define DTS_RANGE                                                                                  \
    (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE) | CELER_DT(CELER_INT16) |                      \
     CELER_DT(CELER_INT32) | CELER_DT(CELER_INT64))

static celer_status reshape_range(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 3));
    const celer_op_info *info = c->info;
    static const char *const names[3] = {"start", "limit", "delta"};
    for (int i = 0; i < 3; i++) {
        const celer_tensor *t = celer_ops_input(c, i);
        if (!t || t->dtype != c->in[0]->dtype || celer_shape_numel(&t->shape) != 1)
            return celer_ops_error(info, CELER_ERR_INVALID, "'%s' must be a scalar of type %s", names[i],
                          celer_dtype_name(c->in[0]->dtype));
    }
    int64_t n = 0;
    if (c->in[0]->dtype == CELER_FLOAT || c->in[0]->dtype == CELER_DOUBLE) {
        double s = celer_ops_double_at(c->in[0], 0), l = celer_ops_double_at(c->in[1], 0),
               d = celer_ops_double_at(c->in[2], 0);
        if (c->in[0]->dtype == CELER_FLOAT) l = (float)(l - s); /* ONNX computes limit-start in T */
        else l = l - s;
        if (d == 0 || d != d) return celer_ops_error(info, CELER_ERR_INVALID, "'delta' must be non-zero");
        double q = ceil(l / d);
        if (q != q || q > 1e15)
            return celer_ops_error(info, CELER_ERR_LIMIT, "range has too many elements");
        n = q > 0 ? (int64_t)q : 0;
    } else {
        int64_t s = celer_ops_int_at(c->in[0], 0), l = celer_ops_int_at(c->in[1], 0),
                d = celer_ops_int_at(c->in[2], 0), diff;
        if (d == 0) return celer_ops_error(info, CELER_ERR_INVALID, "'delta' must be non-zero");
        if (__builtin_sub_overflow(l, s, &diff))
            return celer_ops_error(info, CELER_ERR_LIMIT, "range has too many elements");
        if ((diff > 0 && d > 0) || (diff < 0 && d < 0)) {
            /* ceil(diff / d) with both of the same sign, without overflow */
            uint64_t ad = diff > 0 ? (uint64_t)diff : 0 - (uint64_t)diff;
            uint64_t dd = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
            n = (int64_t)((ad - 1) / dd + 1);
        }
    }
    c->out[0].shape = (celer_shape){.rank = 1, .dims = {n}};
    return celer_ops_check_output(info, &c->out[0]);
}

static celer_status run_range(celer_kernel_call *c) {
    celer_tensor *y = &c->out[0];
    int64_t n = y->shape.dims[0];
    if (y->dtype == CELER_FLOAT || y->dtype == CELER_DOUBLE) {
        double s = celer_ops_double_at(c->in[0], 0), d = celer_ops_double_at(c->in[2], 0);
        for (int64_t i = 0; i < n; i++) celer_ops_double_store(y, i, s + (double)i * d);
    } else {
        int64_t s = celer_ops_int_at(c->in[0], 0), d = celer_ops_int_at(c->in[2], 0);
        /* values stay between start and limit, so they fit T; wrap-free in uint64 */
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d);
            switch (y->dtype) {
            case CELER_INT64: ((int64_t *)y->data)[i] = v; break;
            case CELER_INT32: ((int32_t *)y->data)[i] = (int32_t)v; break;
            default: ((int16_t *)y->data)[i] = (int16_t)v; break;
            }
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Expand, Tile                                                                                */

static celer_status reshape_expand(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    const celer_tensor *shp = celer_ops_input(c, 1);
    if (!shp) return celer_ops_error(c->info, CELER_ERR_INVALID, "the 'shape' input is missing");
    celer_shape want;
    CELER_TRY(read_shape(c->info, shp, "shape", &want));
    celer_status st = celer_shape_broadcast(&c->in[0]->shape, &want, &c->out[0].shape);
    if (st) {
        char who[160];
        return celer_error_wrap(st, "%s", celer_ops_who(c->info, who, sizeof who));
    }
    return celer_ops_check_output(c->info, &c->out[0]);
}

static celer_status run_expand(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    const celer_shape *o = &c->out[0].shape;
    int64_t st[CELER_MAX_RANK];
    celer_ops_strides(&x->shape, st);
    view v = {.rank = o->rank};
    for (int i = 0; i < o->rank; i++) {
        int j = i - (o->rank - x->shape.rank);
        v.dims[i] = o->dims[i];
        v.strides[i] = j < 0 || x->shape.dims[j] == 1 ? 0 : st[j];
    }
    copy_view(c->out[0].data, x->data, &v, celer_dtype_size(x->dtype));
    return CELER_OK;
}

static celer_status reshape_tile(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0], *rep = celer_ops_input(c, 1);
    if (!rep) return celer_ops_error(info, CELER_ERR_INVALID, "the 'repeats' input is missing");
    celer_shape r;
    CELER_TRY(read_shape(info, rep, "repeats", &r));
    if (r.rank != x->shape.rank)
        return celer_ops_error(info, CELER_ERR_SHAPE, "'repeats' has %d values but the input has rank %d",
                      r.rank, x->shape.rank);
    celer_shape out = {.rank = r.rank};
    for (int i = 0; i < r.rank; i++)
        if (__builtin_mul_overflow(x->shape.dims[i], r.dims[i], &out.dims[i]))
            return celer_ops_error(info, CELER_ERR_LIMIT, "output dim %d overflows", i);
    c->out[0].shape = out;
    return celer_ops_check_output(info, &c->out[0]);
}

static celer_status run_tile(celer_kernel_call *c) {
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank;
    int64_t st[CELER_MAX_RANK];
    celer_ops_strides(&x->shape, st);
    /* output dim i = (repeat, dim) pair: row-major over the pairs is the tiled layout */
    view v = {.rank = 2 * r};
    for (int i = 0; i < r; i++) {
        v.dims[2 * i] = x->shape.dims[i] ? c->out[0].shape.dims[i] / x->shape.dims[i] : 0;
        v.strides[2 * i] = 0;
        v.dims[2 * i + 1] = x->shape.dims[i];
        v.strides[2 * i + 1] = st[i];
    }
    copy_view(c->out[0].data, x->data, &v, celer_dtype_size(x->dtype));
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Pad                                                                                         */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

/* The modes and the version of Pad that brought each. */
static const struct {
    const char *name;
    int since;
} pad_modes[] = {
    [PAD_CONSTANT] = {"constant", 1}, [PAD_REFLECT] = {"reflect", 1}, [PAD_EDGE] = {"edge", 1},
    [PAD_WRAP] = {"wrap", 19},
};

static celer_status pad_mode(const celer_op_info *info, int *mode) {
    const char *s = celer_onnx_attr_string(info->node, "mode", "constant");
    for (int i = 0; i < (int)CELER_ARRAY_LEN(pad_modes); i++) {
        if (strcmp(s, pad_modes[i].name)) continue;
        if (info->since_version < pad_modes[i].since)
            return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                                   "attribute 'mode' value '%s' needs opset %d or later, the model's is %d", s,
                                   pad_modes[i].since, info->opset);
        *mode = i;
        return CELER_OK;
    }
    return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                           "attribute 'mode' value '%s' is not supported (constant, reflect, edge, wrap)", s);
}

/* init: only checks 'mode', so that a model asking for one celer does not have fails at load.
 * No state. */
static celer_status init_pad(const celer_op_info *info, void **state) {
    int mode;
    (void)state;
    return pad_mode(info, &mode);
}

typedef struct pad_plan {
    int mode;
    int64_t begin[CELER_MAX_RANK];
    /* Negative pads remove elements first: the modes then read only the kept input elements
     * [lo, lo + kept) of each axis (as ONNX Runtime does; reflecting or wrapping into the removed
     * part would differ from it). */
    int64_t lo[CELER_MAX_RANK], kept[CELER_MAX_RANK];
    unsigned char value[16]; /* the constant, one element */
} pad_plan;

/* Spreads pads given for `axes` (input 3, opset 18+: n/2 of them, negative counting from the
 * back) over all r axes of the data: pads[] becomes [begin of axis 0..r-1, end of axis 0..r-1],
 * zero for the axes not listed. */
static celer_status pad_axes(const celer_kernel_call *c, int64_t *pads, int *n, int r) {
    const celer_op_info *info = c->info;
    const celer_tensor *t = info->since_version >= 18 ? celer_ops_input(c, 3) : NULL;
    if (!t) return CELER_OK;
    int64_t axes[CELER_MAX_RANK], full[2 * CELER_MAX_RANK] = {0};
    int na;
    CELER_TRY(read_ints(info, t, "axes", axes, CELER_MAX_RANK, &na));
    if (*n != 2 * na)
        return celer_ops_error(info, CELER_ERR_INVALID, "'pads' has %d values, expected %d for %d axes", *n,
                               2 * na, na);
    bool seen[CELER_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int ax;
        CELER_TRY(celer_ops_axis(info, axes[i], r, &ax));
        if (seen[ax]) return celer_ops_error(info, CELER_ERR_INVALID, "axis %d is listed twice in 'axes'", ax);
        seen[ax] = true;
        full[ax] = pads[i];
        full[r + ax] = pads[na + i];
    }
    memcpy(pads, full, sizeof full);
    *n = 2 * r;
    return CELER_OK;
}

/* Elements a pad removes from an axis of size d (pads below -d, refused by reshape, are cut at d
 * so that INT64_MIN is never negated). */
static int64_t pad_cut(int64_t pad, int64_t d) { return pad >= 0 ? 0 : pad < -d ? d : -pad; }

static celer_status pad_read(celer_kernel_call *c, pad_plan *p, bool set_shape) {
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank, n = 0;
    CELER_TRY(pad_mode(info, &p->mode));
    const char *mode = pad_modes[p->mode].name;
    int64_t pads[2 * CELER_MAX_RANK];
    zero_elem(x->dtype, p->value);
    if (info->since_version < 11) {
        CELER_TRY(read_attr_ints(info, "pads", pads, 2 * CELER_MAX_RANK, &n));
        if (n < 0) return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'pads' is required");
        celer_tensor t = {.dtype = x->dtype, .data = p->value};
        celer_ops_double_store(&t, 0, celer_onnx_attr_float(info->node, "value", 0.0f));
    } else {
        if (!celer_ops_input(c, 1)) return celer_ops_error(info, CELER_ERR_INVALID, "input 'pads' is required");
        CELER_TRY(read_ints(info, c->in[1], "pads", pads, 2 * CELER_MAX_RANK, &n));
        const celer_tensor *cv = celer_ops_input(c, 2);
        if (cv && celer_shape_numel(&cv->shape) > 0) {
            if (cv->dtype != x->dtype)
                return celer_ops_error(info, CELER_ERR_DTYPE, "'constant_value' is %s but data is %s",
                              celer_dtype_name(cv->dtype), celer_dtype_name(x->dtype));
            memcpy(p->value, cv->data, celer_dtype_size(x->dtype));
        }
        CELER_TRY(pad_axes(c, pads, &n, r));
    }
    if (n != 2 * r)
        return celer_ops_error(info, CELER_ERR_INVALID, "'pads' has %d values, expected %d for rank %d", n,
                      2 * r, r);
    for (int i = 0; i < r; i++) {
        p->begin[i] = pads[i];
        p->lo[i] = pad_cut(pads[i], x->shape.dims[i]);
        p->kept[i] = x->shape.dims[i] - p->lo[i] - pad_cut(pads[r + i], x->shape.dims[i]);
    }
    if (!set_shape) return CELER_OK; /* run: reshape checked the pads */
    celer_shape out = {.rank = r};
    for (int i = 0; i < r; i++) {
        int64_t d = x->shape.dims[i];
        if (pads[i] < -d || pads[r + i] < -d || pads[i] > INT32_MAX || pads[r + i] > INT32_MAX ||
            d + pads[i] + pads[r + i] < 0)
            return celer_ops_error(info, CELER_ERR_INVALID, "pads %lld, %lld are invalid for axis %d of size %lld",
                          (long long)pads[i], (long long)pads[r + i], i, (long long)d);
        out.dims[i] = d + pads[i] + pads[r + i];
        if (p->kept[i] <= 0 && out.dims[i] > 0 && p->mode != PAD_CONSTANT)
            return celer_ops_error(info, CELER_ERR_INVALID,
                          "mode '%s' cannot pad axis %d: no element of it is left (size %lld, pads %lld, %lld)",
                          mode, i, (long long)d, (long long)pads[i], (long long)pads[r + i]);
    }
    c->out[0].shape = out;
    return celer_ops_check_output(info, &c->out[0]);
}

static celer_status reshape_pad(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    pad_plan p;
    return pad_read(c, &p, true);
}

/* Input index read for output index i + begin along an axis whose kept elements are
 * [lo, lo + d); -1 = the constant. */
static int64_t pad_source(int64_t i, int64_t lo, int64_t d, int mode) {
    i -= lo;
    if (i >= 0 && i < d) return lo + i;
    if (mode == PAD_CONSTANT) return -1;
    if (mode == PAD_EDGE) return lo + (i < 0 ? 0 : d - 1);
    if (mode == PAD_WRAP) return lo + (i % d + d) % d; /* the data repeats: any number of periods */
    if (d == 1) return lo;
    int64_t period = 2 * (d - 1), m = i % period; /* reflect, repeatedly if pads exceed d-1 */
    if (m < 0) m += period;
    return lo + (m < d ? m : period - m);
}

/* Writes out[0] from in[0] as the plan says (Pad and CenterCropPad). */
static celer_status pad_copy(celer_kernel_call *c, const pad_plan *pp) {
    const pad_plan p = *pp;
    const celer_tensor *x = c->in[0];
    const celer_shape *o = &c->out[0].shape;
    size_t es = celer_dtype_size(x->dtype);
    char *dst = c->out[0].data;
    const char *src = x->data;
    int r = o->rank;
    if (r == 0) {
        memcpy(dst, src, es);
        return CELER_OK;
    }
    int64_t st[CELER_MAX_RANK], idx[CELER_MAX_RANK] = {0};
    celer_ops_strides(&x->shape, st);
    int64_t w = o->dims[r - 1], d = x->shape.dims[r - 1], b = p.begin[r - 1];
    int64_t lo = p.lo[r - 1], kept = p.kept[r - 1];
    int64_t outer = celer_ops_dims_prod(o->dims, 0, r - 1);
    if (w == 0) return CELER_OK;
    /* the output columns that read input columns 0..d-1 in order */
    int64_t mid0 = CELER_MAX(0, b), mid1 = CELER_MIN(w, b + d);
    for (int64_t row = 0; row < outer; row++, dst += w * (int64_t)es) {
        int64_t off = 0;
        bool constant = false;
        for (int k = 0; k < r - 1 && !constant; k++) {
            int64_t i = pad_source(idx[k] - p.begin[k], p.lo[k], p.kept[k], p.mode);
            if (i < 0) constant = true;
            else off += i * st[k];
        }
        for (int k = r - 2; k >= 0; k--) {
            if (++idx[k] < o->dims[k]) break;
            idx[k] = 0;
        }
        if (constant) {
            fill_elems(dst, w, p.value, es);
            continue;
        }
        const char *s = src + off * (int64_t)es;
        if (mid1 > mid0) memcpy(dst + mid0 * (int64_t)es, s + (mid0 - b) * (int64_t)es,
                                (size_t)(mid1 - mid0) * es);
        if (p.mode == PAD_CONSTANT) {
            fill_elems(dst, CELER_MIN(mid0, w), p.value, es);
            if (mid1 >= mid0) fill_elems(dst + mid1 * (int64_t)es, w - mid1, p.value, es);
            else fill_elems(dst + mid0 * (int64_t)es, w - mid0, p.value, es);
            continue;
        }
        for (int64_t j = 0; j < w; j++) {
            if (j >= mid0 && j < mid1) continue;
            memcpy(dst + j * (int64_t)es, s + pad_source(j - b, lo, kept, p.mode) * (int64_t)es, es);
        }
    }
    return CELER_OK;
}

static celer_status run_pad(celer_kernel_call *c) {
    pad_plan p;
    CELER_TRY(pad_read(c, &p, false));
    return pad_copy(c, &p);
}

/* ------------------------------------------------------------------------------------------ */
/* CenterCropPad (opset 18): each axis listed in 'axes' (all by default) becomes shape[i] long,
 * centred. It is a Pad plan with zeros and begin = trunc((out - in) / 2): a crop starts at
 * floor((in - out) / 2), a pad puts its odd element on the right, as the spec rounds.          */

/* init: refuses at load an 'axes' that lists the same value twice (the spec leaves it undefined)
 * or whose length differs from a constant 'shape'. No state. */
static celer_status init_center_crop_pad(const celer_op_info *info, void **state) {
    int64_t axes[CELER_MAX_RANK];
    int na = -1;
    (void)state;
    CELER_TRY(read_attr_ints(info, "axes", axes, CELER_MAX_RANK, &na));
    for (int i = 0; i < na; i++)
        for (int j = 0; j < i; j++)
            if (axes[i] == axes[j])
                return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "attribute 'axes' lists axis %lld twice",
                                       (long long)axes[i]);
    const celer_tensor *shp = info->n_inputs > 1 ? info->input_constants[1] : NULL;
    int64_t cnt = shp ? celer_shape_numel(&shp->shape) : -1;
    if (shp && na >= 0 && cnt != na)
        return celer_ops_error(info, CELER_ERR_INVALID, "'shape' has %lld values but 'axes' has %d",
                               (long long)cnt, na);
    return CELER_OK;
}

static celer_status ccp_read(celer_kernel_call *c, pad_plan *p, bool set_shape) {
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0];
    const int r = x->shape.rank;
    int64_t want[CELER_MAX_RANK], axes[CELER_MAX_RANK];
    int n, na = -1;
    CELER_TRY(read_ints(info, c->in[1], "shape", want, CELER_MAX_RANK, &n));
    CELER_TRY(read_attr_ints(info, "axes", axes, CELER_MAX_RANK, &na));
    if (na < 0)
        for (na = 0; na < r; na++) axes[na] = na;
    if (n != na)
        return celer_ops_error(info, CELER_ERR_INVALID, "'shape' has %d values, expected %d (%s)", n, na,
                               celer_onnx_attr_find(info->node, "axes") ? "one per axis in 'axes'" : "the input's rank");
    p->mode = PAD_CONSTANT;
    zero_elem(x->dtype, p->value);
    celer_shape out = x->shape;
    for (int i = 0; i < r; i++) p->begin[i] = 0, p->lo[i] = 0, p->kept[i] = x->shape.dims[i];
    bool seen[CELER_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int ax;
        CELER_TRY(celer_ops_axis(info, axes[i], r, &ax));
        if (seen[ax]) return celer_ops_error(info, CELER_ERR_INVALID, "axis %d is listed twice in 'axes'", ax);
        seen[ax] = true;
        int64_t d = x->shape.dims[ax];
        if (want[i] < 0 || want[i] > INT32_MAX)
            return celer_ops_error(info, CELER_ERR_INVALID, "'shape' value %lld for axis %d is outside [0, %d]",
                                   (long long)want[i], ax, INT32_MAX);
        int64_t diff = want[i] - d, begin = diff / 2; /* C division truncates toward zero */
        p->begin[ax] = begin;
        p->lo[ax] = pad_cut(begin, d);
        p->kept[ax] = d - p->lo[ax] - pad_cut(diff - begin, d);
        out.dims[ax] = want[i];
    }
    if (!set_shape) return CELER_OK;
    c->out[0].shape = out;
    return celer_ops_check_output(info, &c->out[0]);
}

static celer_status reshape_center_crop_pad(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    pad_plan p;
    return ccp_read(c, &p, true);
}

static celer_status run_center_crop_pad(celer_kernel_call *c) {
    pad_plan p;
    CELER_TRY(ccp_read(c, &p, false));
    return pad_copy(c, &p);
}

/* ------------------------------------------------------------------------------------------ */
/* Trilu                                                                                       */

static celer_status trilu_k(const celer_kernel_call *c, int64_t *k) {
    const celer_tensor *t = celer_ops_input(c, 1);
    *k = 0;
    if (!t) return CELER_OK;
    if (!is_int_dtype(t->dtype) || celer_shape_numel(&t->shape) != 1)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "'k' must be an int64 scalar");
    *k = celer_ops_int_at(t, 0);
    return CELER_OK;
}

static celer_status reshape_trilu(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    int64_t k;
    CELER_TRY(trilu_k(c, &k));
    if (c->in[0]->shape.rank < 2) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must have rank >= 2, got shape %s",
                      celer_shape_str(&c->in[0]->shape, b, sizeof b));
    }
    return celer_ops_reshape_same(c);
}

static celer_status run_trilu(celer_kernel_call *c) {
    int64_t k;
    CELER_TRY(trilu_k(c, &k));
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank;
    int64_t rows = x->shape.dims[r - 2], cols = x->shape.dims[r - 1];
    int64_t mats = celer_ops_dims_prod(x->shape.dims, 0, r - 2), es = (int64_t)celer_dtype_size(x->dtype);
    bool upper = celer_onnx_attr_int(c->info->node, "upper", 1) != 0;
    unsigned char zero[16];
    zero_elem(x->dtype, zero);
    k = CELER_MAX(-rows - 1, CELER_MIN(k, cols + 1)); /* keeps i + k from overflowing */
    const char *s = x->data;
    char *d = c->out[0].data;
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++, s += cols * es, d += cols * es) {
            /* upper keeps columns j >= i + k, lower keeps j <= i + k */
            int64_t j0 = upper ? CELER_MAX(0, CELER_MIN(i + k, cols)) : 0;
            int64_t j1 = upper ? cols : CELER_MAX(0, CELER_MIN(i + k + 1, cols));
            fill_elems(d, j0, zero, (size_t)es);
            if (j1 > j0) memcpy(d + j0 * es, s + j0 * es, (size_t)((j1 - j0) * es));
            fill_elems(d + j1 * es, cols - j1, zero, (size_t)es);
        }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* DepthToSpace, SpaceToDepth                                                                  */

static celer_status d2s_block(const celer_kernel_call *c, int64_t *b) {
    const celer_shape *s = &c->in[0]->shape;
    *b = celer_onnx_attr_int(c->info->node, "blocksize", 0);
    char sb[200];
    if (s->rank != 4)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input must be 4-D NCHW, got shape %s",
                      celer_shape_str(s, sb, sizeof sb));
    if (*b <= 0 || *b > 1 << 20)
        return celer_ops_error(c->info, CELER_ERR_INVALID, "'blocksize' %lld is invalid", (long long)*b);
    return CELER_OK;
}

static bool d2s_crd(const celer_op_info *info) {
    return info->since_version >= 11 &&
           !strcmp(celer_onnx_attr_string(info->node, "mode", "DCR"), "CRD");
}

static celer_status reshape_depth_to_space(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    int64_t b;
    CELER_TRY(d2s_block(c, &b));
    const char *mode = c->info->since_version >= 11
                           ? celer_onnx_attr_string(c->info->node, "mode", "DCR")
                           : "DCR";
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return celer_ops_error(c->info, CELER_ERR_INVALID, "mode '%s' is not DCR or CRD", mode);
    const int64_t *d = c->in[0]->shape.dims;
    if (d[1] % (b * b))
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2 = %lld",
                      (long long)d[1], (long long)(b * b));
    celer_shape out = {.rank = 4, .dims = {d[0], d[1] / (b * b), 0, 0}};
    if (__builtin_mul_overflow(d[2], b, &out.dims[2]) || __builtin_mul_overflow(d[3], b, &out.dims[3]))
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output size overflows");
    c->out[0].shape = out;
    return CELER_OK;
}

static celer_status run_depth_to_space(celer_kernel_call *c) {
    int64_t b;
    CELER_TRY(d2s_block(c, &b));
    const int64_t *d = c->in[0]->shape.dims;
    int64_t C = d[1], H = d[2], W = d[3], Cb = C / (b * b), HW = H * W;
    /* output [N, C', H, b1, W, b2] read from the input seen as [N, b1, b2, C', H, W] (DCR) or
     * [N, C', b1, b2, H, W] (CRD) */
    view v = {.rank = 6, .dims = {d[0], Cb, H, b, W, b}};
    if (d2s_crd(c->info)) {
        int64_t s[6] = {C * HW, b * b * HW, W, b * HW, 1, HW};
        memcpy(v.strides, s, sizeof s);
    } else {
        int64_t s[6] = {C * HW, HW, W, b * Cb * HW, 1, Cb * HW};
        memcpy(v.strides, s, sizeof s);
    }
    copy_view(c->out[0].data, c->in[0]->data, &v, celer_dtype_size(c->in[0]->dtype));
    return CELER_OK;
}

static celer_status reshape_space_to_depth(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 1));
    int64_t b;
    CELER_TRY(d2s_block(c, &b));
    const int64_t *d = c->in[0]->shape.dims;
    if (d[2] % b || d[3] % b)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "height %lld and width %lld must be multiples of blocksize %lld",
                      (long long)d[2], (long long)d[3], (long long)b);
    celer_shape out = {.rank = 4, .dims = {d[0], 0, d[2] / b, d[3] / b}};
    if (__builtin_mul_overflow(d[1], b * b, &out.dims[1]))
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output size overflows");
    c->out[0].shape = out;
    return CELER_OK;
}

static celer_status run_space_to_depth(celer_kernel_call *c) {
    int64_t b;
    CELER_TRY(d2s_block(c, &b));
    const int64_t *d = c->in[0]->shape.dims;
    int64_t C = d[1], H = d[2], W = d[3], HW = H * W;
    /* output [N, b1, b2, C, H', W'] read from the input seen as [N, C, H', b1, W', b2] */
    view v = {.rank = 6,
              .dims = {d[0], b, b, C, H / b, W / b},
              .strides = {C * HW, W, 1, HW, b * W, b}};
    copy_view(c->out[0].data, c->in[0]->data, &v, celer_dtype_size(c->in[0]->dtype));
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define ALL CELER_DTS_ALL
#define ALIAS CELER_KERNEL_ALIAS
/* domain, op, since, until, dtypes of input 0, flags, infer_types, reshape, run */
#define K(op, since, until, dts, flags, infer, reshape, run)                                       \
    {"", op, since, until, dts, 0, flags, infer, NULL, reshape, run, NULL, NULL}
/* with an init that checks attributes at load (no state) */
#define KI(op, since, until, dts, init, reshape, run)                                              \
    {"", op, since, until, dts, 0, 0, NULL, init, reshape, run, NULL, NULL}

static const celer_kernel kernels[] = {
    K("Reshape", 5, 12, ALL, ALIAS, NULL, reshape_reshape, NULL),
    K("Reshape", 13, 13, ALL, ALIAS, NULL, reshape_reshape, NULL),
    K("Reshape", 14, CELER_OPS_MAX_VERSION, ALL, ALIAS, NULL, reshape_reshape, NULL),
    K("Flatten", 1, 8, CELER_DTS_FLOATS, ALIAS, NULL, reshape_flatten, NULL),
    K("Flatten", 9, 10, ALL, ALIAS, NULL, reshape_flatten, NULL),
    K("Flatten", 11, 12, ALL, ALIAS, NULL, reshape_flatten, NULL),
    K("Flatten", 13, CELER_OPS_MAX_VERSION, ALL, ALIAS, NULL, reshape_flatten, NULL),
    K("Squeeze", 1, 10, ALL, ALIAS, NULL, reshape_squeeze, NULL),
    K("Squeeze", 11, 12, ALL, ALIAS, NULL, reshape_squeeze, NULL),
    K("Squeeze", 13, CELER_OPS_MAX_VERSION, ALL, ALIAS, NULL, reshape_squeeze, NULL),
    K("Unsqueeze", 1, 10, ALL, ALIAS, NULL, reshape_unsqueeze, NULL),
    K("Unsqueeze", 11, 12, ALL, ALIAS, NULL, reshape_unsqueeze, NULL),
    K("Unsqueeze", 13, CELER_OPS_MAX_VERSION, ALL, ALIAS, NULL, reshape_unsqueeze, NULL),
    K("Identity", 1, 12, ALL, ALIAS, NULL, reshape_identity, NULL),
    K("Identity", 13, 13, ALL, ALIAS, NULL, reshape_identity, NULL),
    K("Identity", 14, 15, ALL, ALIAS, NULL, reshape_identity, NULL),
    K("Identity", 16, CELER_OPS_MAX_VERSION, ALL, ALIAS, NULL, reshape_identity, NULL),
    K("Transpose", 1, 12, ALL, 0, NULL, reshape_transpose, run_transpose),
    K("Transpose", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_transpose, run_transpose),
    K("Concat", 4, 10, ALL, 0, NULL, reshape_concat, run_concat),
    K("Concat", 11, 12, ALL, 0, NULL, reshape_concat, run_concat),
    K("Concat", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_concat, run_concat),
    K("Split", 2, 10, ALL, 0, NULL, reshape_split, run_split),
    K("Split", 11, 12, ALL, 0, NULL, reshape_split, run_split),
    K("Split", 13, 17, ALL, 0, NULL, reshape_split, run_split),
    KI("Split", 18, CELER_OPS_MAX_VERSION, ALL, init_split, reshape_split, run_split), /* num_outputs */
    K("Slice", 1, 9, ALL, 0, NULL, reshape_slice, run_slice),
    K("Slice", 10, 10, ALL, 0, NULL, reshape_slice, run_slice),
    K("Slice", 11, 12, ALL, 0, NULL, reshape_slice, run_slice),
    K("Slice", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_slice, run_slice),
    K("Shape", 1, 12, ALL, 0, infer_int64, reshape_shape, run_shape),
    K("Shape", 13, 14, ALL, 0, infer_int64, reshape_shape, run_shape),
    K("Shape", 15, CELER_OPS_MAX_VERSION, ALL, 0, infer_int64, reshape_shape, run_shape),
    K("Size", 1, 12, ALL, 0, infer_int64, reshape_size, run_size),
    K("Size", 13, CELER_OPS_MAX_VERSION, ALL, 0, infer_int64, reshape_size, run_size),
    K("ConstantOfShape", 9, CELER_OPS_MAX_VERSION, CELER_DT(CELER_INT64), 0, infer_constant_of_shape,
      reshape_constant_of_shape, run_constant_of_shape),
    K("Expand", 8, 12, ALL, 0, NULL, reshape_expand, run_expand),
    K("Expand", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_expand, run_expand),
    K("Tile", 6, 12, ALL, 0, NULL, reshape_tile, run_tile),
    K("Tile", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_tile, run_tile),
    KI("Pad", 2, 10, CELER_DTS_FLOATS, init_pad, reshape_pad, run_pad),
    KI("Pad", 11, 12, CELER_DTS_NUMERIC, init_pad, reshape_pad, run_pad),
    KI("Pad", 13, 17, ALL, init_pad, reshape_pad, run_pad),
    KI("Pad", 18, 18, ALL, init_pad, reshape_pad, run_pad),   /* input 'axes' */
    KI("Pad", 19, 20, ALL, init_pad, reshape_pad, run_pad),   /* mode 'wrap' */
    KI("Pad", 21, 22, ALL, init_pad, reshape_pad, run_pad),   /* 21, 23: more element types */
    KI("Pad", 23, CELER_OPS_MAX_VERSION, ALL, init_pad, reshape_pad, run_pad),
    KI("CenterCropPad", 18, CELER_OPS_MAX_VERSION, ALL, init_center_crop_pad, reshape_center_crop_pad,
       run_center_crop_pad),
    K("Range", 11, CELER_OPS_MAX_VERSION, DTS_RANGE, 0, NULL, reshape_range, run_range),
    K("EyeLike", 9, CELER_OPS_MAX_VERSION, DTS_EYE, 0, infer_eye_like, reshape_eye_like, run_eye_like),
    K("Trilu", 14, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_trilu, run_trilu),
    K("DepthToSpace", 1, 10, ALL, 0, NULL, reshape_depth_to_space, run_depth_to_space),
    K("DepthToSpace", 11, 12, ALL, 0, NULL, reshape_depth_to_space, run_depth_to_space),
    K("DepthToSpace", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_depth_to_space, run_depth_to_space),
    K("SpaceToDepth", 1, 12, ALL, 0, NULL, reshape_space_to_depth, run_space_to_depth),
    K("SpaceToDepth", 13, CELER_OPS_MAX_VERSION, ALL, 0, NULL, reshape_space_to_depth, run_space_to_depth),
};

const celer_kernel_family celer_family_shape = {"shape", kernels, (int)CELER_ARRAY_LEN(kernels)};
