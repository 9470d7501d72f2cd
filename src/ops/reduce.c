/* reduce: reductions over a set of axes (ReduceSum ...), selections along one axis (ArgMax,
 * ArgMin, TopK, Hardmax), scans (CumSum), the softmax family and Einsum.
 *
 * Reductions never transpose: the input shape is collapsed into runs of adjacent dims that are
 * all reduced or all kept, and the input is walked once in memory order while an odometer over
 * the runs tracks which output element each contiguous row feeds (see rplan). Accumulators live
 * in scratch: double for float types, int64 for integer types (exact sums/products/min/max). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
/* vmath's inline functions under the same options as the VMATH_OPTIONS loops below: GCC does
 * not inline across differing optimize attributes, and a called celer_fast_expf made the row
 * softmax 3x slower than the scalar loop it replaced. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#include "vmath.h"
#pragma GCC pop_options
#else
#include "vmath.h"
#endif

#define WHO(info) celer_ops_who((info), who, sizeof who)

static bool is_int_type(celer_dtype t) {
    return t < 32 && (CELER_DT(t) & (CELER_DTS_INTS | CELER_DT(CELER_BOOL)));
}

/* Stores v into element i of an integer tensor (wrapping as C conversions do). */
static void store_int(celer_tensor *t, int64_t i, int64_t v) {
    switch (t->dtype) {
    case CELER_INT64: ((int64_t *)t->data)[i] = v; break;
    case CELER_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case CELER_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case CELER_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case CELER_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case CELER_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case CELER_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case CELER_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case CELER_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: celer_ops_double_store(t, i, (double)v); break;
    }
}

static celer_status check_numel(const celer_op_info *info, const celer_tensor *t, int64_t *n) {
    char who[160];
    *n = celer_shape_numel(&t->shape);
    if (*n < 0)
        return celer_errorf(CELER_ERR_LIMIT, "%s: input element count overflows", WHO(info));
    return CELER_OK;
}

/* Three-way compare of elements a and b of one buffer, one function per element type (exact for
 * 64-bit integers, unlike a detour through double). */
typedef int (*cmp_fn)(const void *d, int64_t a, int64_t b);
#define CMP_FN(name, T)                                                                            \
    static int name(const void *d, int64_t a, int64_t b) {                                         \
        T x = ((const T *)d)[a], y = ((const T *)d)[b];                                            \
        return (x > y) - (x < y);                                                                  \
    }
CMP_FN(cmp_f32, float)
CMP_FN(cmp_f64, double)
CMP_FN(cmp_i8, int8_t)
CMP_FN(cmp_u8, uint8_t)
CMP_FN(cmp_i16, int16_t)
CMP_FN(cmp_u16, uint16_t)
CMP_FN(cmp_i32, int32_t)
CMP_FN(cmp_u32, uint32_t)
CMP_FN(cmp_i64, int64_t)
CMP_FN(cmp_u64, uint64_t)
static int cmp_f16(const void *d, int64_t a, int64_t b) {
    float x = celer_half_to_float(((const uint16_t *)d)[a]);
    float y = celer_half_to_float(((const uint16_t *)d)[b]);
    return (x > y) - (x < y);
}
static int cmp_bf16(const void *d, int64_t a, int64_t b) {
    float x = celer_bf16_to_float(((const uint16_t *)d)[a]);
    float y = celer_bf16_to_float(((const uint16_t *)d)[b]);
    return (x > y) - (x < y);
}

static cmp_fn cmp_for(celer_dtype t) {
    switch (t) {
    case CELER_FLOAT: return cmp_f32;
    case CELER_DOUBLE: return cmp_f64;
    case CELER_FLOAT16: return cmp_f16;
    case CELER_BFLOAT16: return cmp_bf16;
    case CELER_INT8: return cmp_i8;
    case CELER_UINT8:
    case CELER_BOOL: return cmp_u8;
    case CELER_INT16: return cmp_i16;
    case CELER_UINT16: return cmp_u16;
    case CELER_INT32: return cmp_i32;
    case CELER_UINT32: return cmp_u32;
    case CELER_INT64: return cmp_i64;
    case CELER_UINT64: return cmp_u64;
    default: return NULL;
    }
}

static celer_status need_cmp(const celer_op_info *info, celer_dtype t, cmp_fn *out) {
    char who[160];
    if (!(*out = cmp_for(t)))
        return celer_errorf(CELER_ERR_DTYPE, "%s: cannot compare elements of type %s", WHO(info),
                            celer_dtype_name(t));
    return CELER_OK;
}

/* Reads an axis-like scalar input (CumSum's axis, TopK's k): int32/int64 with one element. */
static celer_status scalar_int_input(const celer_op_info *info, const celer_tensor *t,
                                     const char *what, int64_t *out) {
    char who[160];
    if (!t || (t->dtype != CELER_INT64 && t->dtype != CELER_INT32) ||
        celer_shape_numel(&t->shape) != 1 || t->shape.rank > 1)
        return celer_errorf(CELER_ERR_INVALID,
                            "%s: input '%s' must be an int32/int64 tensor with one element",
                            WHO(info), what);
    *out = celer_ops_int_at(t, 0);
    return CELER_OK;
}

/* ======================================================================================
 * Reduce*
 * ====================================================================================== */

typedef enum {
    R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ
} reduce_kind;

static const struct {
    const char *op;
    reduce_kind kind;
} reduce_ops[] = {
    {"ReduceSum", R_SUM},       {"ReduceMean", R_MEAN},     {"ReduceMax", R_MAX},
    {"ReduceMin", R_MIN},       {"ReduceProd", R_PROD},     {"ReduceL1", R_L1},
    {"ReduceL2", R_L2},         {"ReduceLogSum", R_LOGSUM}, {"ReduceLogSumExp", R_LOGSUMEXP},
    {"ReduceSumSquare", R_SUMSQ},
};

/* The accumulation applied to each element in one pass. */
typedef enum { A_SUM, A_PROD, A_MAX, A_MIN, A_ABSSUM, A_SQSUM, A_EXPSUM } acc_op;

typedef struct reduce_state {
    reduce_kind kind;
    bool keepdims, noop_with_empty_axes, axes_from_input;
    int n_axes; /* -1: attribute absent */
    int64_t axes[CELER_MAX_RANK];
} reduce_state;

/* Reads a boolean attribute: 0 or 1, as the schema means it. Any other value is refused at load:
 * engines disagree on it (ONNX Runtime 1.31 reads keepdims=2 as 0, a C test as 1). */
static celer_status flag_attr(const celer_op_info *info, const char *name, int64_t dflt, bool *out) {
    int64_t v = celer_onnx_attr_int(info->node, name, dflt);
    if (v != 0 && v != 1)
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "attribute '%s' = %lld is not supported (expected 0 or 1)",
                               name, (long long)v);
    *out = v != 0;
    return CELER_OK;
}

static celer_status reduce_init(const celer_op_info *info, void **state) {
    char who[160];
    reduce_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    for (size_t i = 0; i < CELER_ARRAY_LEN(reduce_ops); i++)
        if (!strcmp(reduce_ops[i].op, info->node->op_type)) s->kind = reduce_ops[i].kind;
    celer_status st = flag_attr(info, "keepdims", 1, &s->keepdims);
    if (!st) st = flag_attr(info, "noop_with_empty_axes", 0, &s->noop_with_empty_axes);
    if (st) {
        free(s);
        return st;
    }
    /* ReduceSum took axes as an input from opset 13; the others from opset 18 */
    s->axes_from_input = info->since_version >= (s->kind == R_SUM ? 13 : 18);
    const int64_t *axes = NULL;
    int n = celer_onnx_attr_ints(info->node, "axes", &axes);
    if (s->axes_from_input && n >= 0) {
        /* the attribute left the schema: a model still setting it was converted wrongly, and
         * reading it would disagree with ONNX Runtime, which refuses it */
        free(s);
        return celer_ops_error(info, CELER_ERR_INVALID,
                               "attribute 'axes' is not part of %s-%d (axes is its second input since then)",
                               info->node->op_type, info->since_version);
    }
    if (n > CELER_MAX_RANK) {
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: %d axes given, at most %d allowed",
                            WHO(info), n, CELER_MAX_RANK);
    }
    s->n_axes = n;
    for (int i = 0; i < n; i++) s->axes[i] = axes[i];
    *state = s;
    return CELER_OK;
}

/* A reduction as runs of adjacent dims that are all reduced or all kept (size-1 dims dropped). */
typedef struct rplan {
    bool noop;                  /* output = input */
    int n;                      /* runs */
    int64_t len[CELER_MAX_RANK];
    bool red[CELER_MAX_RANK];
    int64_t ostride[CELER_MAX_RANK]; /* output stride of each run (0 for reduced runs) */
    int64_t in_numel, out_numel, count; /* count: elements folded into each output */
} rplan;

/* Works out which axes are reduced and the output shape (into *out_shape). */
static celer_status reduce_plan(const celer_kernel_call *call, rplan *p, celer_shape *out_shape) {
    char who[160];
    const reduce_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int rank = x->shape.rank;
    int64_t axes[CELER_MAX_RANK];
    int n_axes = 0;
    if (s->axes_from_input && call->n_in > 1 && call->in[1]) {
        const celer_tensor *a = call->in[1];
        int64_t n = celer_shape_numel(&a->shape);
        if ((a->dtype != CELER_INT64 && a->dtype != CELER_INT32) || a->shape.rank > 1)
            return celer_errorf(CELER_ERR_INVALID, "%s: input 'axes' must be a 1-D int64 tensor",
                                WHO(call->info));
        if (n > rank || n > CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_INVALID, "%s: %lld axes given for a rank-%d input",
                                WHO(call->info), (long long)n, rank);
        for (int64_t i = 0; i < n; i++) axes[i] = celer_ops_int_at(a, i);
        n_axes = (int)n;
    } else if (s->n_axes >= 0) {
        if (s->n_axes > rank)
            return celer_errorf(CELER_ERR_INVALID, "%s: %d axes given for a rank-%d input",
                                WHO(call->info), s->n_axes, rank);
        n_axes = s->n_axes;
        memcpy(axes, s->axes, sizeof(int64_t) * (size_t)n_axes);
    }
    bool mask[CELER_MAX_RANK] = {0};
    memset(p, 0, sizeof *p);
    if (n_axes == 0) {
        /* a reduction over the empty set of axes: the identity for the plain kinds; the composite
         * ones still apply their elementwise step (ReduceLogSum gives log(x), ReduceSumSquare
         * x*x), so they run the ordinary path with nothing reduced */
        if (s->noop_with_empty_axes)
            p->noop = s->kind == R_SUM || s->kind == R_MEAN || s->kind == R_MAX ||
                      s->kind == R_MIN || s->kind == R_PROD;
        else
            for (int d = 0; d < rank; d++) mask[d] = true;
    }
    for (int i = 0; i < n_axes; i++) {
        int a;
        celer_status st = celer_ops_axis(call->info, axes[i], rank, &a);
        if (st) return st;
        if (mask[a])
            return celer_errorf(CELER_ERR_INVALID, "%s: axis %lld is listed twice",
                                WHO(call->info), (long long)axes[i]);
        mask[a] = true;
    }
    celer_status st = check_numel(call->info, x, &p->in_numel);
    if (st) return st;

    out_shape->rank = 0;
    p->count = 1;
    for (int d = 0; d < rank; d++) {
        if (mask[d]) {
            p->count *= x->shape.dims[d];
            if (s->keepdims) out_shape->dims[out_shape->rank++] = 1;
        } else {
            out_shape->dims[out_shape->rank++] = x->shape.dims[d];
        }
        if (x->shape.dims[d] == 1) continue; /* size-1 dims do not matter */
        if (p->n > 0 && p->red[p->n - 1] == mask[d]) {
            p->len[p->n - 1] *= x->shape.dims[d];
        } else {
            p->len[p->n] = x->shape.dims[d];
            p->red[p->n] = mask[d];
            p->n++;
        }
    }
    if (p->noop) *out_shape = x->shape;
    p->out_numel = celer_shape_numel(out_shape);
    int64_t stride = 1;
    for (int r = p->n - 1; r >= 0; r--) {
        p->ostride[r] = p->red[r] ? 0 : stride;
        if (!p->red[r]) stride *= p->len[r];
    }
    return CELER_OK;
}

/* The range of each integer element type as int64; the last row serves int64 and uint64 (which
 * the integer accumulators compare as int64). */
typedef struct int_limit {
    celer_dtype t;
    int64_t lo, hi;
} int_limit;
static const int_limit int_limits[] = {
    {CELER_INT8, INT8_MIN, INT8_MAX},     {CELER_UINT8, 0, UINT8_MAX},
    {CELER_INT16, INT16_MIN, INT16_MAX},  {CELER_UINT16, 0, UINT16_MAX},
    {CELER_INT32, INT32_MIN, INT32_MAX},  {CELER_UINT32, 0, UINT32_MAX},
    {CELER_BOOL, 0, 1},                   {CELER_INT64, INT64_MIN, INT64_MAX},
};

static const int_limit *int_limit_of(celer_dtype t) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(int_limits) - 1; i++)
        if (int_limits[i].t == t) return &int_limits[i];
    return &int_limits[CELER_ARRAY_LEN(int_limits) - 1];
}

/* Whether this reduction accumulates exactly in int64. */
static bool reduce_int_domain(reduce_kind k, celer_dtype t) {
    return is_int_type(t) && k != R_L2 && k != R_LOGSUM && k != R_LOGSUMEXP;
}

static celer_status reduce_reshape(celer_kernel_call *call) {
    rplan p;
    celer_status st = reduce_plan(call, &p, &call->out[0].shape);
    if (st) return st;
    if (p.noop) return CELER_OK;
    int64_t row = p.n ? p.len[p.n - 1] : 1;
    /* two accumulator arrays (LogSumExp keeps the max and the sum) and one converted row */
    if ((st = celer_ops_add_scratch(call, (size_t)p.out_numel, 16))) return st;
    return celer_ops_add_scratch(call, (size_t)row, 8);
}

/* Converts `n` elements of x starting at `off` to double. */
static void load_row_d(const celer_tensor *x, int64_t off, int64_t n, double *buf) {
    switch (x->dtype) {
    case CELER_FLOAT: {
        const float *s = (const float *)x->data + off;
        for (int64_t i = 0; i < n; i++) buf[i] = s[i];
        break;
    }
    case CELER_DOUBLE: memcpy(buf, (const double *)x->data + off, (size_t)n * sizeof(double)); break;
    default:
        for (int64_t i = 0; i < n; i++) buf[i] = celer_ops_double_at(x, off + i);
    }
}

static void load_row_i(const celer_tensor *x, int64_t off, int64_t n, int64_t *buf) {
    switch (x->dtype) {
    case CELER_INT64: memcpy(buf, (const int64_t *)x->data + off, (size_t)n * 8); break;
    case CELER_INT32: {
        const int32_t *s = (const int32_t *)x->data + off;
        for (int64_t i = 0; i < n; i++) buf[i] = s[i];
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) buf[i] = celer_ops_int_at(x, off + i);
    }
}

/* acc[i*step] (op)= v[i] for i < n; step 0 folds the row into one accumulator. shift holds the
 * per-output max for A_EXPSUM (same indexing as acc). */
static void combine_d(acc_op op, double *acc, int step, const double *v, int64_t n,
                      const double *shift) {
    if (step == 0) {
        double a = *acc;
        switch (op) {
        case A_SUM: for (int64_t i = 0; i < n; i++) a += v[i]; break;
        case A_PROD: for (int64_t i = 0; i < n; i++) a *= v[i]; break;
        case A_MAX: for (int64_t i = 0; i < n; i++) a = v[i] > a || isnan(v[i]) ? v[i] : a; break;
        case A_MIN: for (int64_t i = 0; i < n; i++) a = v[i] < a || isnan(v[i]) ? v[i] : a; break;
        case A_ABSSUM: for (int64_t i = 0; i < n; i++) a += fabs(v[i]); break;
        case A_SQSUM: for (int64_t i = 0; i < n; i++) a += v[i] * v[i]; break;
        case A_EXPSUM: for (int64_t i = 0; i < n; i++) a += exp(v[i] - *shift); break;
        }
        *acc = a;
        return;
    }
    switch (op) {
    case A_SUM: for (int64_t i = 0; i < n; i++) acc[i] += v[i]; break;
    case A_PROD: for (int64_t i = 0; i < n; i++) acc[i] *= v[i]; break;
    case A_MAX:
        for (int64_t i = 0; i < n; i++) acc[i] = v[i] > acc[i] || isnan(v[i]) ? v[i] : acc[i];
        break;
    case A_MIN:
        for (int64_t i = 0; i < n; i++) acc[i] = v[i] < acc[i] || isnan(v[i]) ? v[i] : acc[i];
        break;
    case A_ABSSUM: for (int64_t i = 0; i < n; i++) acc[i] += fabs(v[i]); break;
    case A_SQSUM: for (int64_t i = 0; i < n; i++) acc[i] += v[i] * v[i]; break;
    case A_EXPSUM: for (int64_t i = 0; i < n; i++) acc[i] += exp(v[i] - shift[i]); break;
    }
}

/* Integer accumulation wraps like the element type would (done in unsigned arithmetic). */
static void combine_i(acc_op op, int64_t *acc, int step, const int64_t *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t *a = acc + i * step, x = v[i];
        switch (op) {
        case A_SUM: *a = (int64_t)((uint64_t)*a + (uint64_t)x); break;
        case A_PROD: *a = (int64_t)((uint64_t)*a * (uint64_t)x); break;
        case A_MAX: *a = x > *a ? x : *a; break;
        case A_MIN: *a = x < *a ? x : *a; break;
        case A_ABSSUM: *a = (int64_t)((uint64_t)*a + (uint64_t)(x < 0 ? -(uint64_t)x : (uint64_t)x)); break;
        case A_SQSUM: *a = (int64_t)((uint64_t)*a + (uint64_t)x * (uint64_t)x); break;
        case A_EXPSUM: break;
        }
    }
}

/* One pass over the input in memory order, folding each element into its output's accumulator. */
static void reduce_pass(const rplan *p, const celer_tensor *x, acc_op op, bool int_domain,
                        void *acc, const double *shift, void *rowbuf) {
    int inner = p->n - 1; /* the last run is walked as a contiguous row */
    int64_t row = p->len[inner];
    int step = p->red[inner] ? 0 : 1;
    int64_t idx[CELER_MAX_RANK] = {0};
    int64_t o = 0;
    for (int64_t off = 0; off < p->in_numel; off += row) {
        if (int_domain) {
            load_row_i(x, off, row, rowbuf);
            combine_i(op, (int64_t *)acc + o, step, rowbuf, row);
        } else {
            load_row_d(x, off, row, rowbuf);
            combine_d(op, (double *)acc + o, step, rowbuf, row, shift ? shift + o : NULL);
        }
        /* advance the odometer over the outer runs */
        for (int r = inner - 1; r >= 0; r--) {
            o += p->ostride[r];
            if (++idx[r] < p->len[r]) break;
            o -= p->ostride[r] * p->len[r];
            idx[r] = 0;
        }
    }
}

static celer_status reduce_run(celer_kernel_call *call) {
    const reduce_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    rplan p;
    celer_shape shape;
    celer_status st = reduce_plan(call, &p, &shape);
    if (st) return st;
    if (p.noop) {
        size_t bytes;
        if ((st = celer_tensor_bytes(x, &bytes))) return st;
        if (bytes) memcpy(y->data, x->data, bytes);
        return CELER_OK;
    }
    int64_t n_out = p.out_numel;
    bool int_domain = reduce_int_domain(s->kind, x->dtype);
    double *acc = call->scratch, *acc2 = acc + n_out;
    int64_t *iacc = call->scratch;
    void *rowbuf = acc2 + n_out;

    acc_op op = A_SUM;
    double init = 0;
    switch (s->kind) {
    case R_SUM: case R_MEAN: case R_LOGSUM: op = A_SUM; break;
    case R_MAX: case R_LOGSUMEXP: op = A_MAX; init = -INFINITY; break;
    case R_MIN: op = A_MIN; init = INFINITY; break;
    case R_PROD: op = A_PROD; init = 1; break;
    case R_L1: op = A_ABSSUM; break;
    case R_L2: case R_SUMSQ: op = A_SQSUM; break;
    }
    /* an empty max (min) is the type's lowest (highest) value, so integers start from those */
    int64_t iinit = (int64_t)init;
    if (int_domain && (op == A_MAX || op == A_MIN)) {
        const int_limit *l = int_limit_of(x->dtype);
        iinit = op == A_MAX ? l->lo : l->hi;
    }
    for (int64_t i = 0; i < n_out; i++) {
        if (int_domain)
            iacc[i] = iinit;
        else
            acc[i] = init;
    }
    if (p.in_numel > 0) {
        if (p.n == 0) { /* every dim is 1: one element in, one out */
            p.n = 1;
            p.len[0] = 1;
            p.red[0] = false;
            p.ostride[0] = 1;
        }
        reduce_pass(&p, x, op, int_domain, call->scratch, NULL, rowbuf);
        if (s->kind == R_LOGSUMEXP) {
            /* shift by the max so exp cannot overflow; a non-finite max shifts by 0 */
            for (int64_t i = 0; i < n_out; i++) {
                if (!isfinite(acc[i])) acc[i] = 0;
                acc2[i] = 0;
            }
            reduce_pass(&p, x, A_EXPSUM, false, acc2, acc, rowbuf);
        }
    } else if (s->kind == R_LOGSUMEXP) {
        for (int64_t i = 0; i < n_out; i++) acc[i] = 0, acc2[i] = 0;
    }

    for (int64_t i = 0; i < n_out; i++) {
        if (int_domain) {
            int64_t v = iacc[i];
            if (s->kind == R_MEAN) v = p.count ? v / p.count : 0;
            store_int(y, i, v);
            continue;
        }
        double v = acc[i];
        switch (s->kind) {
        case R_MEAN: v = v / (double)p.count; break;
        case R_L2: v = sqrt(v); break;
        case R_LOGSUM: v = log(v); break;
        case R_LOGSUMEXP: v = log(acc2[i]) + acc[i]; break;
        default: break;
        }
        celer_ops_double_store(y, i, v);
    }
    return CELER_OK;
}

/* ======================================================================================
 * ArgMax / ArgMin
 * ====================================================================================== */

typedef struct arg_state {
    int64_t axis;
    bool keepdims, select_last, is_max;
} arg_state;

static celer_status arg_init(const celer_op_info *info, void **state) {
    char who[160];
    arg_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->axis = celer_onnx_attr_int(info->node, "axis", 0);
    s->keepdims = celer_onnx_attr_int(info->node, "keepdims", 1) != 0;
    s->select_last = celer_onnx_attr_int(info->node, "select_last_index", 0) != 0;
    s->is_max = !strcmp(info->node->op_type, "ArgMax");
    *state = s;
    return CELER_OK;
}

static celer_status int64_outputs(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs; i++) out[i] = CELER_INT64;
    return CELER_OK;
}

static celer_status arg_reshape(celer_kernel_call *call) {
    char who[160];
    const arg_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int axis;
    int64_t n;
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, &axis);
    if (st || (st = check_numel(call->info, x, &n))) return st;
    if (x->shape.rank == 0 || x->shape.dims[axis] == 0)
        return celer_errorf(CELER_ERR_SHAPE, "%s: axis %d of the input is empty (nothing to select)",
                            WHO(call->info), axis);
    celer_shape *o = &call->out[0].shape;
    o->rank = 0;
    for (int d = 0; d < x->shape.rank; d++) {
        if (d != axis) o->dims[o->rank++] = x->shape.dims[d];
        else if (s->keepdims) o->dims[o->rank++] = 1;
    }
    return celer_ops_add_scratch(call, (size_t)celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank), 8);
}

static celer_status arg_run(celer_kernel_call *call) {
    const arg_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int axis;
    cmp_fn cmp;
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, &axis);
    if (st || (st = need_cmp(call->info, x->dtype, &cmp))) return st;
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis), n = x->shape.dims[axis];
    int64_t inner = celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank);
    if (inner == 0) return CELER_OK; /* empty output: nothing to select */
    int64_t *best = call->scratch, *y = call->out[0].data;
    int want = s->is_max ? 1 : -1;
    for (int64_t o = 0; o < outer; o++) {
        int64_t base = o * n * inner;
        for (int64_t i = 0; i < inner; i++) best[i] = 0;
        for (int64_t j = 1; j < n; j++)
            for (int64_t i = 0; i < inner; i++) {
                int c = cmp(x->data, base + j * inner + i, base + best[i] * inner + i);
                if (c == want || (c == 0 && s->select_last)) best[i] = j;
            }
        memcpy(y + o * inner, best, (size_t)inner * sizeof *best);
    }
    return CELER_OK;
}

/* ======================================================================================
 * TopK
 * ====================================================================================== */

typedef struct topk_state {
    int64_t axis, k; /* k: the attribute before opset 10 */
    bool largest;
} topk_state;

static celer_status topk_init(const celer_op_info *info, void **state) {
    char who[160];
    topk_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->axis = celer_onnx_attr_int(info->node, "axis", -1);
    s->k = celer_onnx_attr_int(info->node, "k", -1);
    s->largest = celer_onnx_attr_int(info->node, "largest", 1) != 0;
    /* `sorted` = 0 allows any order; sorted output is one of them */
    *state = s;
    return CELER_OK;
}

static celer_status topk_types(const celer_op_info *info, celer_dtype *out) {
    out[0] = info->input_types[0];
    if (info->n_outputs > 1) out[1] = CELER_INT64;
    return CELER_OK;
}

static celer_status topk_params(const celer_kernel_call *call, int *axis, int64_t *k) {
    char who[160];
    const topk_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_status st = celer_ops_axis(call->info, s->axis, x->shape.rank, axis);
    if (st) return st;
    if (x->shape.rank == 0)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input must have rank >= 1", WHO(call->info));
    if (call->info->since_version >= 10) {
        if ((st = scalar_int_input(call->info, call->n_in > 1 ? call->in[1] : NULL, "K", k)))
            return st;
    } else {
        *k = s->k;
    }
    if (*k < 0 || *k > x->shape.dims[*axis])
        return celer_errorf(CELER_ERR_INVALID, "%s: k = %lld but axis %d has %lld elements",
                            WHO(call->info), (long long)*k, *axis,
                            (long long)x->shape.dims[*axis]);
    return CELER_OK;
}

static celer_status topk_reshape(celer_kernel_call *call) {
    int axis;
    int64_t k, n;
    celer_status st = topk_params(call, &axis, &k);
    if (st || (st = check_numel(call->info, call->in[0], &n))) return st;
    for (int i = 0; i < call->n_out && i < 2; i++) {
        call->out[i].shape = call->in[0]->shape;
        call->out[i].shape.dims[axis] = k;
    }
    return celer_ops_add_scratch(call, (size_t)call->in[0]->shape.dims[axis], 16);
}

/* Stable bottom-up merge sort of positions idx[0..n) (element idx[i]*stride + base); "before"
 * means larger (or smaller) value, so equal values keep ascending positions. Returns the buffer
 * holding the result. */
static int64_t *sort_positions(int64_t *idx, int64_t *tmp, int64_t n, const void *data,
                               int64_t base, int64_t stride, cmp_fn cmp, int want) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = CELER_MIN(lo + w, n), hi = CELER_MIN(lo + 2 * w, n);
            int64_t a = lo, b = mid, t = lo;
            while (a < mid && b < hi) {
                int c = cmp(data, base + idx[b] * stride, base + idx[a] * stride);
                tmp[t++] = c == want ? idx[b++] : idx[a++];
            }
            while (a < mid) tmp[t++] = idx[a++];
            while (b < hi) tmp[t++] = idx[b++];
        }
        int64_t *sw = idx;
        idx = tmp;
        tmp = sw;
    }
    return idx;
}

static celer_status topk_run(celer_kernel_call *call) {
    const topk_state *s = call->state;
    const celer_tensor *x = call->in[0];
    int axis;
    int64_t k;
    cmp_fn cmp;
    celer_status st = topk_params(call, &axis, &k);
    if (st || (st = need_cmp(call->info, x->dtype, &cmp))) return st;
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis), n = x->shape.dims[axis];
    if (k == 0) return CELER_OK; /* empty outputs (also when the axis is empty) */
    int64_t inner = celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank);
    size_t es = celer_dtype_size(x->dtype);
    int64_t *idx = call->scratch, *tmp = idx + n;
    celer_tensor *vals = &call->out[0];
    int64_t *inds = call->n_out > 1 && call->out[1].data ? call->out[1].data : NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            for (int64_t j = 0; j < n; j++) idx[j] = j;
            int64_t *sorted = sort_positions(idx, tmp, n, x->data, base, inner, cmp,
                                             s->largest ? 1 : -1);
            for (int64_t j = 0; j < k; j++) {
                int64_t dst = (o * k + j) * inner + i;
                if (vals->data)
                    memcpy((char *)vals->data + (size_t)dst * es,
                           (const char *)x->data + (size_t)(base + sorted[j] * inner) * es, es);
                if (inds) inds[dst] = sorted[j];
            }
        }
    return CELER_OK;
}

/* ======================================================================================
 * CumSum
 * ====================================================================================== */

typedef struct cumsum_state {
    bool exclusive, reverse;
} cumsum_state;

static celer_status cumsum_init(const celer_op_info *info, void **state) {
    char who[160];
    cumsum_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->exclusive = celer_onnx_attr_int(info->node, "exclusive", 0) != 0;
    s->reverse = celer_onnx_attr_int(info->node, "reverse", 0) != 0;
    *state = s;
    return CELER_OK;
}

static celer_status cumsum_axis(const celer_kernel_call *call, int *axis) {
    int64_t a;
    celer_status st = scalar_int_input(call->info, call->n_in > 1 ? call->in[1] : NULL, "axis", &a);
    if (st) return st;
    return celer_ops_axis(call->info, a, call->in[0]->shape.rank, axis);
}

static celer_status cumsum_reshape(celer_kernel_call *call) {
    int axis;
    int64_t n;
    celer_status st = cumsum_axis(call, &axis);
    if (st || (st = check_numel(call->info, call->in[0], &n))) return st;
    call->out[0].shape = call->in[0]->shape;
    return celer_ops_add_scratch(call, (size_t)celer_ops_dims_prod(call->in[0]->shape.dims, axis + 1,
                                               call->in[0]->shape.rank), 8);
}

static celer_status cumsum_run(celer_kernel_call *call) {
    const cumsum_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    int axis;
    celer_status st = cumsum_axis(call, &axis);
    if (st) return st;
    int64_t outer = celer_ops_dims_prod(x->shape.dims, 0, axis), n = x->shape.rank ? x->shape.dims[axis] : 1;
    int64_t inner = celer_ops_dims_prod(x->shape.dims, axis + 1, x->shape.rank);
    bool ints = is_int_type(x->dtype);
    double *dacc = call->scratch;
    int64_t *iacc = call->scratch;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) dacc[i] = 0, iacc[i] = 0;
        for (int64_t jj = 0; jj < n; jj++) {
            int64_t j = s->reverse ? n - 1 - jj : jj;
            int64_t off = (o * n + j) * inner;
            for (int64_t i = 0; i < inner; i++) {
                if (ints) {
                    int64_t v = celer_ops_int_at(x, off + i);
                    if (!s->exclusive) iacc[i] = (int64_t)((uint64_t)iacc[i] + (uint64_t)v);
                    store_int(y, off + i, iacc[i]);
                    if (s->exclusive) iacc[i] = (int64_t)((uint64_t)iacc[i] + (uint64_t)v);
                } else {
                    double v = celer_ops_double_at(x, off + i);
                    if (!s->exclusive) dacc[i] += v;
                    celer_ops_double_store(y, off + i, dacc[i]);
                    if (s->exclusive) dacc[i] += v;
                }
            }
        }
    }
    return CELER_OK;
}

/* ======================================================================================
 * Softmax, LogSoftmax, Hardmax
 * Before opset 13 the input is coerced to 2-D at `axis` (default 1) and normalised over the
 * flattened trailing part; from 13 normalisation runs along `axis` (default -1). Both are
 * outer x n x inner, with inner = 1 in the old form.
 * ====================================================================================== */

typedef enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX } sm_kind;

typedef struct sm_state {
    sm_kind kind;
    int64_t axis;
    bool legacy;
} sm_state;

static celer_status sm_init(const celer_op_info *info, void **state) {
    char who[160];
    sm_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    const char *op = info->node->op_type;
    s->kind = !strcmp(op, "Softmax") ? SM_SOFTMAX : !strcmp(op, "LogSoftmax") ? SM_LOGSOFTMAX
                                                                              : SM_HARDMAX;
    s->legacy = info->since_version < 13;
    s->axis = celer_onnx_attr_int(info->node, "axis", s->legacy ? 1 : -1);
    *state = s;
    return CELER_OK;
}

typedef struct sm_dims {
    int64_t outer, n, inner, numel;
} sm_dims;

static celer_status sm_geometry(const celer_kernel_call *call, sm_dims *g) {
    const sm_state *s = call->state;
    const celer_shape *sh = &call->in[0]->shape;
    int axis;
    celer_status st;
    if (s->legacy && sh->rank == 0) {
        axis = 0;
    } else if ((st = celer_ops_axis(call->info, s->axis, sh->rank, &axis))) {
        return st;
    }
    if ((st = check_numel(call->info, call->in[0], &g->numel))) return st;
    if (sh->rank == 0) {
        g->outer = g->n = g->inner = 1;
    } else if (s->legacy) {
        g->outer = celer_ops_dims_prod(sh->dims, 0, axis);
        g->n = celer_ops_dims_prod(sh->dims, axis, sh->rank);
        g->inner = 1;
    } else {
        g->outer = celer_ops_dims_prod(sh->dims, 0, axis);
        g->n = sh->dims[axis];
        g->inner = celer_ops_dims_prod(sh->dims, axis + 1, sh->rank);
    }
    return CELER_OK;
}

static celer_status sm_reshape(celer_kernel_call *call) {
    sm_dims g;
    celer_status st = sm_geometry(call, &g);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    celer_dtype t = call->in[0]->dtype;
    /* per-column max and sum for the strided form */
    if ((st = celer_ops_add_scratch(call, (size_t)g.inner, 16))) return st;
    /* half types run in float: input and output copies */
    if (t == CELER_FLOAT16 || t == CELER_BFLOAT16) return celer_ops_add_scratch(call, (size_t)g.numel, 8);
    return CELER_OK;
}

/* exp(x[i] - m) into y[i] for float rows: Cephes-style range reduction and polynomial (about
 * 1 ulp), written without library calls so the loop vectorises; expf took most of the time of
 * BERT's attention softmax. The clamps are selects only once FP compares may be assumed not to
 * trap, hence the attribute (this function touches no FP environment state; it also lets
 * polynomials use fused multiply-adds, which ISO C mode leaves off). Arguments below
 * -87 give ~1e-38 instead of 0, harmless after the max has been subtracted; NaN propagates. */
#if defined(__GNUC__) && !defined(__clang__)
#define VMATH_OPTIONS __attribute__((optimize("no-trapping-math", "fp-contract=fast")))
#else
#define VMATH_OPTIONS /* clang does not assume trapping FP compares by default */
#endif
VMATH_OPTIONS CELER_VECTOR_CLONES
static void exp_shifted_f32(const float *x, float m, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - m, v = d;
        v = v < -87.0f ? -87.0f : v;
        v = v > 88.0f ? 88.0f : v;
        v = d == d ? v : 0.0f; /* keep the conversion below defined for NaN */
        float t = v * 1.44269504f;
        float k = (t + 12582912.0f) - 12582912.0f; /* round to nearest, |k| <= 127 */
        float r = v - k * 0.693359375f - k * -2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * r * r + r + 1.0f;
        union {
            int32_t i;
            float f;
        } scale = {.i = ((int32_t)k + 127) << 23};
        float e = p * scale.f;
        y[i] = d == d ? e : d;
    }
}

/* Vectors of 16 floats (GCC vector extensions): partial sums and maxima in registers at each
 * clone's width, where arrays of partials stayed in memory and the max stayed scalar. */
#define SM_LANES 16
typedef float sm_vec __attribute__((vector_size(SM_LANES * sizeof(float))));
typedef int32_t sm_ivec __attribute__((vector_size(SM_LANES * sizeof(int32_t))));

/* Sum of n floats in 16 independent lanes (vectorisable without reassociation). */
VMATH_OPTIONS CELER_VECTOR_CLONES
static float sum_f32(const float *y, int64_t n) {
    sm_vec part = {0}, v;
    int64_t i = 0;
    for (; i + SM_LANES <= n; i += SM_LANES) {
        memcpy(&v, y + i, sizeof v);
        part += v;
    }
    float s = 0;
    for (int k = 0; k < SM_LANES; k++) s += part[k];
    for (; i < n; i++) s += y[i];
    return s;
}

/* Softmax (or LogSoftmax) of float rows [lo, hi) of length n, the attention case: the max and
 * the sum in sm_vec lanes, exp in a loop of its own (BERT's rows of 128: 0.88 -> 0.54 ns an
 * element), on celer_bounded_expf with x - max clamped below at -80 (e^-80 next to the max's 1 is
 * nothing; BERT-tiny batch 8's two softmaxes 0.585 -> 0.477 ms against celer_fast_expf). A NaN
 * makes its row NaN (through exp and the sum); a row of -inf gives NaN as -inf - -inf does. */
VMATH_OPTIONS CELER_VECTOR_CLONES
static void softmax_rows_f32(const float *x, float *y, int64_t n, bool log_out, int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; o++) {
        const float *xs = x + o * n;
        float *ys = y + o * n;
        float m = xs[0];
        int64_t j = 0;
        if (n >= SM_LANES) {
            sm_vec mv;
            memcpy(&mv, xs, sizeof mv);
            for (j = SM_LANES; j + SM_LANES <= n; j += SM_LANES) {
                sm_vec v;
                memcpy(&v, xs + j, sizeof v);
                sm_ivec gt = v > mv; /* a select: C has no ?: on vectors */
                mv = (sm_vec)((gt & (sm_ivec)v) | (~gt & (sm_ivec)mv));
            }
            for (int k = 0; k < SM_LANES; k++) m = mv[k] > m ? mv[k] : m;
        }
        for (; j < n; j++) m = xs[j] > m ? xs[j] : m;
        for (j = 0; j < n; j++) {
            float t = xs[j] - m, m1; /* <= 0 but NaN */
            ys[j] = celer_bounded_expf(t < -80.0f ? -80.0f : t, &m1);
        }
        sm_vec sv = {0};
        for (j = 0; j + SM_LANES <= n; j += SM_LANES) {
            sm_vec v;
            memcpy(&v, ys + j, sizeof v);
            sv += v;
        }
        float s = 0.f;
        for (int k = 0; k < SM_LANES; k++) s += sv[k];
        for (; j < n; j++) s += ys[j];
        if (log_out) {
            float l = m + logf(s);
            for (j = 0; j < n; j++) ys[j] = xs[j] - l;
        } else {
            float r = 1.f / s;
            for (j = 0; j < n; j++) ys[j] *= r;
        }
    }
}

typedef struct sm_rows_job {
    const float *x;
    float *y;
    int64_t n;
    bool log_out;
} sm_rows_job;

static void sm_rows_part(void *ctx, size_t lo, size_t hi) {
    const sm_rows_job *j = ctx;
    softmax_rows_f32(j->x, j->y, j->n, j->log_out, (int64_t)lo, (int64_t)hi);
}

/* Elements of softmax a thread should get before the team is woken for it (BERT-base's rows,
 * 128 long, in blocks of 64 and up). */
#define SM_PAR_ELEMS 8192

/* Softmax over a row or a strided column block, typed by macro for float and double. Rows
 * (inner == 1, the BERT case) are contiguous loops; columns walk `inner` lanes at once so the
 * inner loops are contiguous too. Subtracting the max keeps exp in range. */
#define DEFINE_SOFTMAX(T, SUF, EXP, LOG)                                                           \
    static void softmax_##SUF(const T *x, T *y, const sm_dims *g, bool log_out, T *mx, T *sum) {   \
        int64_t n = g->n, inner = g->inner;                                                        \
        for (int64_t o = 0; o < g->outer; o++) {                                                   \
            const T *xs = x + o * n * inner;                                                       \
            T *ys = y + o * n * inner;                                                             \
            if (inner == 1) {                                                                      \
                T m = xs[0], s = 0;                                                                \
                for (int64_t j = 1; j < n; j++) m = xs[j] > m ? xs[j] : m;                         \
                if (sizeof(T) == sizeof(float)) {                                                  \
                    exp_shifted_f32((const float *)xs, (float)m, (float *)ys, n);                  \
                    s = (T)sum_f32((const float *)ys, n);                                          \
                } else {                                                                           \
                    for (int64_t j = 0; j < n; j++) {                                              \
                        T e = EXP(xs[j] - m);                                                      \
                        ys[j] = e;                                                                 \
                        s += e;                                                                    \
                    }                                                                              \
                }                                                                                  \
                if (log_out) {                                                                     \
                    T l = m + LOG(s);                                                              \
                    for (int64_t j = 0; j < n; j++) ys[j] = xs[j] - l;                             \
                } else {                                                                           \
                    T r = (T)1 / s;                                                                \
                    for (int64_t j = 0; j < n; j++) ys[j] *= r;                                    \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            memcpy(mx, xs, (size_t)inner * sizeof(T));                                             \
            for (int64_t j = 1; j < n; j++)                                                        \
                for (int64_t i = 0; i < inner; i++)                                                \
                    mx[i] = xs[j * inner + i] > mx[i] ? xs[j * inner + i] : mx[i];                 \
            for (int64_t i = 0; i < inner; i++) sum[i] = 0;                                        \
            for (int64_t j = 0; j < n; j++)                                                        \
                for (int64_t i = 0; i < inner; i++) {                                              \
                    T e = EXP(xs[j * inner + i] - mx[i]);                                          \
                    ys[j * inner + i] = e;                                                         \
                    sum[i] += e;                                                                   \
                }                                                                                  \
            if (log_out) {                                                                         \
                for (int64_t i = 0; i < inner; i++) sum[i] = mx[i] + LOG(sum[i]);                  \
                for (int64_t j = 0; j < n; j++)                                                    \
                    for (int64_t i = 0; i < inner; i++)                                            \
                        ys[j * inner + i] = xs[j * inner + i] - sum[i];                            \
            } else {                                                                               \
                for (int64_t i = 0; i < inner; i++) sum[i] = (T)1 / sum[i];                        \
                for (int64_t j = 0; j < n; j++)                                                    \
                    for (int64_t i = 0; i < inner; i++) ys[j * inner + i] *= sum[i];               \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_SOFTMAX(float, f32, expf, logf)
DEFINE_SOFTMAX(double, f64, exp, log)

static void half_to_float_buf(const celer_tensor *t, float *dst, int64_t n) {
    const uint16_t *s = t->data;
    if (t->dtype == CELER_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = celer_half_to_float(s[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = celer_bf16_to_float(s[i]);
}

static void float_to_half_buf(const float *src, celer_tensor *t, int64_t n) {
    uint16_t *d = t->data;
    if (t->dtype == CELER_FLOAT16)
        for (int64_t i = 0; i < n; i++) d[i] = celer_float_to_half(src[i]);
    else
        for (int64_t i = 0; i < n; i++) d[i] = celer_float_to_bf16(src[i]);
}

static celer_status sm_run(celer_kernel_call *call) {
    const sm_state *s = call->state;
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    sm_dims g;
    celer_status st = sm_geometry(call, &g);
    if (st) return st;
    if (g.numel == 0) return CELER_OK;
    if (s->kind == SM_HARDMAX) {
        /* 1 at the first maximum along the axis, 0 elsewhere */
        cmp_fn cmp;
        if ((st = need_cmp(call->info, x->dtype, &cmp))) return st;
        for (int64_t o = 0; o < g.outer; o++)
            for (int64_t i = 0; i < g.inner; i++) {
                int64_t base = o * g.n * g.inner + i, best = base;
                for (int64_t j = 1; j < g.n; j++)
                    if (cmp(x->data, base + j * g.inner, best) > 0) best = base + j * g.inner;
                for (int64_t j = 0; j < g.n; j++)
                    celer_ops_double_store(y, base + j * g.inner, base + j * g.inner == best);
            }
        return CELER_OK;
    }
    bool log_out = s->kind == SM_LOGSOFTMAX;
    if (x->dtype == CELER_DOUBLE) {
        double *mx = call->scratch, *sum = mx + g.inner;
        softmax_f64(x->data, y->data, &g, log_out, mx, sum);
    } else if (x->dtype == CELER_FLOAT && g.inner == 1) { /* rows, shared over the team */
        sm_rows_job j = {x->data, y->data, g.n, log_out};
        celer_ops_parallel_for((size_t)g.outer, (size_t)(SM_PAR_ELEMS / g.n + 1), 1, sm_rows_part, &j);
    } else if (x->dtype == CELER_FLOAT) {
        float *mx = call->scratch, *sum = mx + g.inner;
        softmax_f32(x->data, y->data, &g, log_out, mx, sum);
    } else {
        /* mx/sum use inner*8 of the inner*16 bytes reserved; the float copies follow */
        float *mx = call->scratch, *sum = mx + g.inner;
        float *xf = (float *)((char *)call->scratch + (size_t)g.inner * 16), *yf = xf + g.numel;
        half_to_float_buf(x, xf, g.numel);
        softmax_f32(xf, yf, &g, log_out, mx, sum);
        float_to_half_buf(yf, y, g.numel);
    }
    return CELER_OK;
}

/* ======================================================================================
 * Einsum: a reference implementation that loops over every label combination. Output labels
 * come from "->" or, implicitly, the labels used once in alphabetical order after any ellipsis
 * dims. Repeated labels in one operand take diagonals (their strides add up).
 * ====================================================================================== */

#define EIN_MAX_OPS 8
#define EIN_MAX_LABELS 52 /* a-z, A-Z */
#define EIN_ELL_BASE 52    /* ellipsis dims get labels 52.. */
#define EIN_MAX_ALL (EIN_MAX_LABELS + CELER_MAX_RANK)

typedef struct ein_state {
    int n_ops;
    int n_terms[EIN_MAX_OPS];                  /* labels written in each operand ('...' = one) */
    int8_t terms[EIN_MAX_OPS][CELER_MAX_RANK * 2]; /* label ids; -1 marks the ellipsis */
    bool explicit_out;
    int n_out;
    int8_t out[EIN_MAX_ALL];
} ein_state;

static int ein_label(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -2;
}

static celer_status ein_init(const celer_op_info *info, void **state) {
    char who[160];
    const char *eq = celer_onnx_attr_string(info->node, "equation", NULL);
    if (!eq) return celer_errorf(CELER_ERR_INVALID, "%s: attribute 'equation' is missing", WHO(info));
    ein_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    int op = 0;
    bool in_out = false;
    for (const char *c = eq; *c; c++) {
        if (*c == ' ') continue;
        int *n = in_out ? &s->n_out : &s->n_terms[op];
        int8_t *dst = in_out ? s->out : s->terms[op];
        int cap = in_out ? EIN_MAX_ALL : CELER_MAX_RANK * 2;
        if (*c == ',' && !in_out) {
            if (++op >= EIN_MAX_OPS) goto bad;
            continue;
        }
        if (*c == '-' && c[1] == '>' && !in_out) {
            in_out = true;
            s->explicit_out = true;
            c++;
            continue;
        }
        if (*n >= cap) goto bad;
        if (*c == '.' && c[1] == '.' && c[2] == '.') {
            dst[(*n)++] = -1;
            c += 2;
            continue;
        }
        int l = ein_label(*c);
        if (l < 0) goto bad;
        dst[(*n)++] = (int8_t)l;
    }
    s->n_ops = op + 1;
    if (s->n_ops != info->n_inputs) {
        free(s);
        return celer_errorf(CELER_ERR_INVALID, "%s: equation '%s' names %d operands but the node has %d inputs",
                            WHO(info), eq, op + 1, info->n_inputs);
    }
    *state = s;
    return CELER_OK;
bad:
    free(s);
    return celer_errorf(CELER_ERR_INVALID, "%s: cannot parse equation '%s'", WHO(info), eq);
}

/* Sizes of every label and each operand's stride per label, for the shapes of this call. */
typedef struct ein_plan {
    int n_labels;                           /* labels in use, ellipsis dims included */
    int64_t size[EIN_MAX_ALL];
    int64_t stride[EIN_MAX_OPS][EIN_MAX_ALL];
    int n_out;
    int8_t out[EIN_MAX_ALL];
    int n_sum;
    int8_t sum[EIN_MAX_ALL];
} ein_plan;

static celer_status ein_make_plan(const celer_kernel_call *call, ein_plan *p, celer_shape *oshape) {
    char who[160];
    const ein_state *s = call->state;
    memset(p, 0, sizeof *p);
    for (int l = 0; l < EIN_MAX_ALL; l++) p->size[l] = -1;
    int ell_rank = 0, count[EIN_MAX_ALL] = {0};
    for (int k = 0; k < s->n_ops; k++) {
        const celer_tensor *t = call->in[k];
        if (!t) return celer_errorf(CELER_ERR_INVALID, "%s: input %d is missing", WHO(call->info), k);
        int named = 0, ell = 0;
        for (int i = 0; i < s->n_terms[k]; i++) s->terms[k][i] < 0 ? ell++ : named++;
        if (ell > 1 || (ell == 0 && named != t->shape.rank) || (ell && named > t->shape.rank))
            return celer_errorf(CELER_ERR_SHAPE, "%s: operand %d has rank %d, which does not fit the equation",
                                WHO(call->info), k, t->shape.rank);
        int er = t->shape.rank - named;
        ell_rank = CELER_MAX(ell_rank, ell ? er : 0);
        int64_t stride = 1;
        int d = t->shape.rank - 1;
        for (int i = s->n_terms[k] - 1; i >= 0; i--) {
            int8_t l = s->terms[k][i];
            if (l >= 0) {
                int64_t n = t->shape.dims[d];
                if (p->size[l] >= 0 && p->size[l] != n && n != 1 && p->size[l] != 1)
                    return celer_errorf(CELER_ERR_SHAPE, "%s: label '%c' has sizes %lld and %lld",
                                        WHO(call->info), l < 26 ? 'a' + l : 'A' + l - 26,
                                        (long long)p->size[l], (long long)n);
                if (p->size[l] < 0 || p->size[l] == 1) p->size[l] = n;
                if (n != 1) p->stride[k][l] += stride;
                count[l]++;
                stride *= n;
                d--;
            } else {
                /* ellipsis dims, right-aligned against the broadcast ellipsis shape */
                for (int e = er - 1; e >= 0; e--, d--) {
                    int lab = EIN_ELL_BASE + (er - 1 - e); /* counted from the right */
                    int64_t n = t->shape.dims[d];
                    if (p->size[lab] >= 0 && p->size[lab] != n && n != 1 && p->size[lab] != 1)
                        return celer_errorf(CELER_ERR_SHAPE, "%s: ellipsis dims do not broadcast",
                                            WHO(call->info));
                    if (p->size[lab] < 0 || p->size[lab] == 1) p->size[lab] = n;
                    if (n != 1) p->stride[k][lab] += stride;
                    stride *= n;
                }
            }
        }
    }
    /* output labels */
    int8_t out[EIN_MAX_ALL];
    int n_out = 0;
    bool in_out[EIN_MAX_ALL] = {0};
    if (s->explicit_out) {
        for (int i = 0; i < s->n_out; i++) {
            int8_t l = s->out[i];
            if (l < 0) {
                for (int e = ell_rank - 1; e >= 0; e--) out[n_out++] = (int8_t)(EIN_ELL_BASE + e);
            } else {
                if (p->size[l] < 0 || in_out[l])
                    return celer_errorf(CELER_ERR_INVALID, "%s: output label '%c' is unknown or repeated",
                                        WHO(call->info), l < 26 ? 'a' + l : 'A' + l - 26);
                out[n_out++] = l;
            }
            if (l >= 0) in_out[l] = true;
        }
    } else {
        for (int e = ell_rank - 1; e >= 0; e--) out[n_out++] = (int8_t)(EIN_ELL_BASE + e);
        for (int l = 0; l < EIN_MAX_LABELS; l++)
            if (count[l] == 1) out[n_out++] = (int8_t)l;
    }
    for (int i = 0; i < n_out; i++) in_out[out[i]] = true;
    if (n_out > CELER_MAX_RANK)
        return celer_errorf(CELER_ERR_LIMIT, "%s: output rank %d exceeds %d", WHO(call->info),
                            n_out, CELER_MAX_RANK);
    oshape->rank = n_out;
    for (int i = 0; i < n_out; i++) oshape->dims[i] = p->size[out[i]];
    p->n_out = n_out;
    memcpy(p->out, out, (size_t)n_out);
    for (int l = 0; l < EIN_MAX_ALL; l++)
        if (p->size[l] >= 0 && !in_out[l]) p->sum[p->n_sum++] = (int8_t)l;
    /* the loop runs over every label combination: cap that count */
    int64_t work = 1;
    for (int l = 0; l < EIN_MAX_ALL; l++)
        if (p->size[l] > 0 && __builtin_mul_overflow(work, p->size[l], &work)) work = INT64_MAX;
    if (celer_shape_numel(oshape) < 0 || work > ((int64_t)1 << 36))
        return celer_errorf(CELER_ERR_LIMIT,
                            "%s: %lld label combinations exceed the reference loop's cap of 2^36",
                            WHO(call->info), (long long)work);
    return CELER_OK;
}

static celer_status ein_reshape(celer_kernel_call *call) {
    ein_plan p;
    return ein_make_plan(call, &p, &call->out[0].shape);
}

static celer_status ein_run(celer_kernel_call *call) {
    const ein_state *s = call->state;
    ein_plan p;
    celer_shape osh;
    celer_status st = ein_make_plan(call, &p, &osh);
    if (st) return st;
    celer_tensor *y = &call->out[0];
    int64_t n_out = celer_shape_numel(&osh);
    bool ints = is_int_type(y->dtype);
    int64_t n_sum = 1;
    for (int i = 0; i < p.n_sum; i++) n_sum *= p.size[p.sum[i]];
    int64_t oidx[EIN_MAX_ALL] = {0};
    for (int64_t o = 0; o < n_out; o++) {
        int64_t base[EIN_MAX_OPS] = {0};
        for (int k = 0; k < s->n_ops; k++)
            for (int i = 0; i < p.n_out; i++) base[k] += oidx[i] * p.stride[k][p.out[i]];
        double dsum = 0;
        uint64_t isum = 0; /* integer products and sums wrap, as in the element type */
        int64_t sidx[EIN_MAX_ALL] = {0}, off[EIN_MAX_OPS];
        memcpy(off, base, sizeof off);
        for (int64_t r = 0; r < n_sum; r++) {
            if (ints) {
                uint64_t v = 1;
                for (int k = 0; k < s->n_ops; k++)
                    v *= (uint64_t)celer_ops_int_at(call->in[k], off[k]);
                isum += v;
            } else {
                double v = 1;
                for (int k = 0; k < s->n_ops; k++) v *= celer_ops_double_at(call->in[k], off[k]);
                dsum += v;
            }
            for (int i = p.n_sum - 1; i >= 0; i--) {
                int l = p.sum[i];
                for (int k = 0; k < s->n_ops; k++) off[k] += p.stride[k][l];
                if (++sidx[i] < p.size[l]) break;
                for (int k = 0; k < s->n_ops; k++) off[k] -= p.stride[k][l] * p.size[l];
                sidx[i] = 0;
            }
        }
        if (ints) store_int(y, o, (int64_t)isum);
        else celer_ops_double_store(y, o, dsum);
        for (int i = p.n_out - 1; i >= 0; i--) {
            if (++oidx[i] < p.size[p.out[i]]) break;
            oidx[i] = 0;
        }
    }
    return CELER_OK;
}

/* ======================================================================================
 * The table
 * ====================================================================================== */

#define REDUCE_TYPES                                                                               \
    (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16) | CELER_DT(CELER_INT32) |                         \
     CELER_DT(CELER_INT64) | CELER_DT(CELER_UINT32) | CELER_DT(CELER_UINT64))
#define MINMAX_TYPES (REDUCE_TYPES | CELER_DT(CELER_INT8) | CELER_DT(CELER_UINT8))
#define ARG_TYPES (CELER_DTS_NUMERIC | CELER_DT(CELER_BFLOAT16))
#define SOFTMAX_TYPES (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16))
#define EINSUM_TYPES CELER_DTS_NUMERIC

#define REDUCE(name, since, until, types)                                                          \
    {"", name, since, until, types, 0, 0, NULL, reduce_init, reduce_reshape, reduce_run, free, NULL}
#define KERNEL(name, since, until, types, infer, init, pre)                                        \
    {"", name, since, until, types, 0, 0, infer, init, pre##_reshape, pre##_run, free, NULL}

static const celer_kernel kernels[] = {
    REDUCE("ReduceSum", 1, 12, REDUCE_TYPES),
    REDUCE("ReduceSum", 13, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    /* from 18 axes is the optional second input (reduce_init); ReduceMax/Min 20 add bool */
    REDUCE("ReduceMean", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceMean", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceMax", 1, 17, MINMAX_TYPES),
    REDUCE("ReduceMax", 18, 19, MINMAX_TYPES),
    REDUCE("ReduceMax", 20, CELER_OPS_MAX_VERSION, MINMAX_TYPES | CELER_DT(CELER_BOOL)),
    REDUCE("ReduceMin", 1, 17, MINMAX_TYPES),
    REDUCE("ReduceMin", 18, 19, MINMAX_TYPES),
    REDUCE("ReduceMin", 20, CELER_OPS_MAX_VERSION, MINMAX_TYPES | CELER_DT(CELER_BOOL)),
    REDUCE("ReduceProd", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceProd", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceL1", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceL1", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceL2", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceL2", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceLogSum", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceLogSum", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceLogSumExp", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceLogSumExp", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    REDUCE("ReduceSumSquare", 1, 17, REDUCE_TYPES),
    REDUCE("ReduceSumSquare", 18, CELER_OPS_MAX_VERSION, REDUCE_TYPES),
    KERNEL("ArgMax", 1, CELER_OPS_MAX_VERSION, ARG_TYPES, int64_outputs, arg_init, arg),
    KERNEL("ArgMin", 1, CELER_OPS_MAX_VERSION, ARG_TYPES, int64_outputs, arg_init, arg),
    KERNEL("TopK", 1, 9, ARG_TYPES, topk_types, topk_init, topk),
    KERNEL("TopK", 10, CELER_OPS_MAX_VERSION, ARG_TYPES, topk_types, topk_init, topk),
    KERNEL("CumSum", 11, CELER_OPS_MAX_VERSION, REDUCE_TYPES, NULL, cumsum_init, cumsum),
    KERNEL("Softmax", 1, 12, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("Softmax", 13, CELER_OPS_MAX_VERSION, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("LogSoftmax", 1, 12, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("LogSoftmax", 13, CELER_OPS_MAX_VERSION, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("Hardmax", 1, 12, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("Hardmax", 13, CELER_OPS_MAX_VERSION, SOFTMAX_TYPES, NULL, sm_init, sm),
    KERNEL("Einsum", 12, CELER_OPS_MAX_VERSION, EINSUM_TYPES, NULL, ein_init, ein),
};

const celer_kernel_family celer_family_reduce = {"reduce", kernels, (int)CELER_ARRAY_LEN(kernels)};
