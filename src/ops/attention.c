/* attention operators of current transformer exports: RotaryEmbedding (23) and Attention (23).
 *
 * Attention runs per (batch, query head): scores = scale * Q K^T over the past keys and the new
 * ones (two GEMMs into one [q_seq, total] row block, so a past cache is never copied unless
 * present_key is asked for), softcap, the mask and causal biases, a softmax per row, then
 * Y = P V the same way. Q/K/V are read in place in both layouts: 4-D [batch, heads, seq, head]
 * and 3-D [batch, seq, heads * head] differ only in strides, which BLAS takes as leading
 * dimensions. float runs through cblas_sgemm, double through cblas_dgemm; float16 and bfloat16
 * are widened to float in scratch first. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "reference.h"

#define WHO(info) celer_ops_who((info), who, sizeof who)

/* BLAS takes int sizes and leading dimensions. */
#define BLAS_MAX INT64_C(0x7fffffff)

static bool output_wanted(const celer_kernel_call *call, int i) {
    const celer_onnx_node *n = call->info->node;
    return i < call->n_out && i < n->n_outputs && n->outputs[i] && n->outputs[i][0];
}

/* ======================================================================================
 * RotaryEmbedding (23): the first rotary_embedding_dim elements of each head are rotated in
 * pairs (x[i], x[i + rd/2]), or (x[2i], x[2i+1]) when interleaved, by the angle whose cos/sin the
 * caches hold for the token: rows of [max_position, rd/2] caches picked by position_ids, or
 * [batch, seq, rd/2] caches given per token. The rest of the head is copied.
 * ====================================================================================== */

typedef struct rope_state {
    bool interleaved;
    int64_t rd;        /* 0: the whole head */
    int64_t num_heads; /* 0: not given (4-D input) */
} rope_state;

static celer_status rope_init(const celer_op_info *info, void **state) {
    char who[160];
    int64_t il = celer_onnx_attr_int(info->node, "interleaved", 0);
    int64_t rd = celer_onnx_attr_int(info->node, "rotary_embedding_dim", 0);
    int64_t nh = celer_onnx_attr_int(info->node, "num_heads", 0);
    if (il != 0 && il != 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute interleaved = %lld (expected 0 or 1)",
                            WHO(info), (long long)il);
    if (rd < 0 || nh < 0)
        return celer_errorf(CELER_ERR_INVALID,
                            "%s: attributes rotary_embedding_dim = %lld and num_heads = %lld may not "
                            "be negative", WHO(info), (long long)rd, (long long)nh);
    rope_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    *s = (rope_state){il == 1, rd, nh};
    *state = s;
    return CELER_OK;
}

/* Element (b, h, s, d) of X is at b*sb + h*sh + s*ss + d. */
typedef struct rope_geom {
    int64_t B, H, S, D, half, sb, sh, ss;
    int64_t positions; /* rows of the caches when position_ids index them; 0 otherwise */
} rope_geom;

static celer_status rope_geometry(const celer_kernel_call *call, rope_geom *g) {
    char who[160], b1[160], b2[160];
    const rope_state *st = call->state;
    celer_status status = celer_ops_require(call, 3);
    if (status) return status;
    const celer_tensor *x = call->in[0], *cs = call->in[1], *sn = call->in[2];
    const celer_tensor *pos = celer_ops_input(call, 3);
    const int64_t *d = x->shape.dims;
    WHO(call->info);
    if (x->shape.rank == 4) {
        *g = (rope_geom){.B = d[0], .H = d[1], .S = d[2], .D = d[3]};
        g->ss = g->D, g->sh = g->S * g->D, g->sb = g->H * g->sh;
    } else if (x->shape.rank == 3) {
        if (st->num_heads == 0)
            return celer_errorf(CELER_ERR_INVALID, "%s: a 3-D X %s needs attribute num_heads", who,
                                celer_shape_str(&x->shape, b1, sizeof b1));
        if (d[2] % st->num_heads)
            return celer_errorf(CELER_ERR_SHAPE, "%s: hidden size %lld of X is not a multiple of "
                                "num_heads %lld", who, (long long)d[2], (long long)st->num_heads);
        *g = (rope_geom){.B = d[0], .S = d[1], .H = st->num_heads, .D = d[2] / st->num_heads};
        g->sh = g->D, g->ss = d[2], g->sb = g->S * d[2];
    } else {
        return celer_errorf(CELER_ERR_SHAPE, "%s: X %s must be 3-D or 4-D", who,
                            celer_shape_str(&x->shape, b1, sizeof b1));
    }
    int64_t rd = st->rd ? st->rd : g->D;
    if (rd % 2 || rd > g->D)
        return celer_errorf(CELER_ERR_SHAPE, "%s: rotary dimension %lld must be even and at most "
                            "the head size %lld", who, (long long)rd, (long long)g->D);
    g->half = rd / 2;
    if (cs->dtype != x->dtype || sn->dtype != x->dtype)
        return celer_errorf(CELER_ERR_DTYPE, "%s: cos_cache (%s) and sin_cache (%s) must have X's "
                            "type %s", who, celer_dtype_name(cs->dtype),
                            celer_dtype_name(sn->dtype), celer_dtype_name(x->dtype));
    if (!celer_shape_equal(&cs->shape, &sn->shape))
        return celer_errorf(CELER_ERR_SHAPE, "%s: cos_cache %s and sin_cache %s differ", who,
                            celer_shape_str(&cs->shape, b1, sizeof b1),
                            celer_shape_str(&sn->shape, b2, sizeof b2));
    const int64_t *c = cs->shape.dims;
    if (pos) {
        if (pos->shape.rank != 2 || pos->shape.dims[0] != g->B || pos->shape.dims[1] != g->S)
            return celer_errorf(CELER_ERR_SHAPE, "%s: position_ids %s, expected [%lld, %lld] "
                                "(batch, sequence)", who,
                                celer_shape_str(&pos->shape, b1, sizeof b1), (long long)g->B,
                                (long long)g->S);
        if (cs->shape.rank != 2 || c[1] != g->half)
            return celer_errorf(CELER_ERR_SHAPE, "%s: with position_ids the caches must be "
                                "[max_position, %lld], got %s", who, (long long)g->half,
                                celer_shape_str(&cs->shape, b1, sizeof b1));
        g->positions = c[0];
    } else if (cs->shape.rank != 3 || c[0] != g->B || c[1] != g->S || c[2] != g->half) {
        return celer_errorf(CELER_ERR_SHAPE, "%s: without position_ids the caches must be "
                            "[%lld, %lld, %lld] (batch, sequence, rotary dim / 2), got %s", who,
                            (long long)g->B, (long long)g->S, (long long)g->half,
                            celer_shape_str(&cs->shape, b1, sizeof b1));
    }
    return CELER_OK;
}

static celer_status rope_reshape(celer_kernel_call *call) {
    rope_geom g;
    celer_status st = rope_geometry(call, &g);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

/* One head of one token: n = rd/2 pairs at x[i] and x[i + step2], pair i at i*step1. */
#define DEFINE_ROPE_HEAD(T, SUF)                                                                   \
    static void rope_head_##SUF(const T *x, T *y, const T *c, const T *s, const rope_geom *g,      \
                                bool il) {                                                         \
        int64_t n = g->half, step1 = il ? 2 : 1, step2 = il ? 1 : n;                               \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T x1 = x[i * step1], x2 = x[i * step1 + step2];                                        \
            y[i * step1] = c[i] * x1 - s[i] * x2;                                                  \
            y[i * step1 + step2] = s[i] * x1 + c[i] * x2;                                          \
        }                                                                                          \
        for (int64_t i = 2 * n; i < g->D; i++) y[i] = x[i];                                        \
    }
DEFINE_ROPE_HEAD(float, f32)

static celer_status rope_run(celer_kernel_call *call) {
    char who[160];
    const rope_state *st = call->state;
    rope_geom g;
    celer_status status = rope_geometry(call, &g);
    if (status) return status;
    const celer_tensor *x = call->in[0], *cs = call->in[1], *sn = call->in[2];
    const celer_tensor *pos = celer_ops_input(call, 3);
    celer_tensor *y = &call->out[0];
    if (celer_shape_numel(&x->shape) == 0) return CELER_OK; /* heads may still be many */
    /* other types: one head at a time widened into scratch (x, y, cos, sin rows) */
    bool wide = x->dtype != CELER_FLOAT;
    float *xf = call->scratch, *yf = wide ? xf + g.D : NULL, *cf = wide ? yf + g.D : NULL;
    float *sf = wide ? cf + g.half : NULL;
    for (int64_t b = 0; b < g.B; b++)
        for (int64_t t = 0; t < g.S; t++) {
            int64_t row = b * g.S + t;
            if (pos) {
                int64_t p = celer_ops_int_at(pos, row);
                if (p < 0 || p >= g.positions)
                    return celer_errorf(CELER_ERR_INVALID, "%s: position_ids[%lld][%lld] = %lld is "
                                        "outside the caches' %lld positions", WHO(call->info),
                                        (long long)b, (long long)t, (long long)p,
                                        (long long)g.positions);
                row = p;
            }
            int64_t co = row * g.half;
            if (wide)
                for (int64_t i = 0; i < g.half; i++) {
                    cf[i] = (float)celer_ops_double_at(cs, co + i);
                    sf[i] = (float)celer_ops_double_at(sn, co + i);
                }
            for (int64_t h = 0; h < g.H; h++) {
                int64_t o = b * g.sb + h * g.sh + t * g.ss;
                if (x->dtype == CELER_FLOAT) {
                    rope_head_f32((const float *)x->data + o, (float *)y->data + o,
                                  (const float *)cs->data + co, (const float *)sn->data + co, &g,
                                  st->interleaved);
                } else {
                    for (int64_t i = 0; i < g.D; i++) xf[i] = (float)celer_ops_double_at(x, o + i);
                    rope_head_f32(xf, yf, cf, sf, &g, st->interleaved);
                    for (int64_t i = 0; i < g.D; i++) celer_ops_double_store(y, o + i, yf[i]);
                }
            }
        }
    return CELER_OK;
}

static celer_status rope_reshape_scratch(celer_kernel_call *call) {
    celer_status st = rope_reshape(call);
    if (st || call->in[0]->dtype == CELER_FLOAT) return st;
    const int64_t *d = call->in[0]->shape.dims;
    int64_t D = call->in[0]->shape.rank == 4 ? d[3] : d[2]; /* a bound on the head size */
    return celer_ops_add_scratch(call, (size_t)D * 4, sizeof(float));
}

/* ======================================================================================
 * Attention (23)
 * ====================================================================================== */

typedef struct attn_state {
    bool causal;
    int64_t q_heads, kv_heads; /* 0: not given (4-D inputs) */
    bool has_scale;
    bool softmax_float; /* softmax_precision = 1: float16/bfloat16 scores stay float */
    float scale, softcap;
} attn_state;

static celer_status attn_init(const celer_op_info *info, void **state) {
    char who[160];
    const celer_onnx_node *n = info->node;
    int64_t mode = celer_onnx_attr_int(n, "qk_matmul_output_mode", 0);
    if (mode != 0)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: attribute qk_matmul_output_mode = %lld is "
                            "not supported (only 0)", WHO(info), (long long)mode);
    if (n->n_outputs > 3 && n->outputs[3] && n->outputs[3][0])
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: output 3 (qk_matmul_output) is not "
                            "supported", WHO(info));
    const celer_onnx_attr *sp = celer_onnx_attr_find(n, "softmax_precision");
    int64_t prec = celer_onnx_attr_int(n, "softmax_precision", 1);
    if (sp && prec != 1)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: attribute softmax_precision = %lld (%s) is "
                            "not supported (only 1, float)", WHO(info), (long long)prec,
                            prec > 0 && prec < CELER_DTYPE_COUNT ? celer_dtype_name((celer_dtype)prec)
                                                                 : "unknown");
    int64_t causal = celer_onnx_attr_int(n, "is_causal", 0);
    if (causal != 0 && causal != 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: attribute is_causal = %lld (expected 0 or 1)",
                            WHO(info), (long long)causal);
    int64_t qh = celer_onnx_attr_int(n, "q_num_heads", 0), kvh = celer_onnx_attr_int(n, "kv_num_heads", 0);
    if (qh < 0 || kvh < 0)
        return celer_errorf(CELER_ERR_INVALID, "%s: q_num_heads = %lld and kv_num_heads = %lld may "
                            "not be negative", WHO(info), (long long)qh, (long long)kvh);
    celer_dtype t = info->input_types[0];
    for (int i = 1; i < info->n_inputs && i < 6; i++) {
        celer_dtype u = info->input_types[i];
        if (u == CELER_UNDEFINED || u == t || (i == 3 && u == CELER_BOOL)) continue;
        static const char *const names[] = {"Q", "K", "V", "attn_mask", "past_key", "past_value"};
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: input %s is %s; celer runs it only as "
                            "%s%s, Q's type", WHO(info), names[i], celer_dtype_name(u),
                            i == 3 ? "bool or " : "", celer_dtype_name(t));
    }
    attn_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->causal = causal == 1;
    s->q_heads = qh, s->kv_heads = kvh;
    s->softmax_float = sp != NULL;
    s->has_scale = celer_onnx_attr_find(n, "scale") != NULL;
    s->scale = celer_onnx_attr_float(n, "scale", 1.0f);
    s->softcap = celer_onnx_attr_float(n, "softcap", 0.0f);
    *state = s;
    return CELER_OK;
}

/* Element (b, h, s, d) of a Q/K/V/Y tensor is at b*sb + h*sh + s*ss + d. */
typedef struct attn_layout {
    int64_t sb, sh, ss;
} attn_layout;

typedef struct attn_geom {
    int64_t B, qH, kvH, Sq, Skv, P, tot, D, Dv; /* tot = P + Skv */
    bool three_d;
    attn_layout q, k, v, y;
    int64_t mstride[4]; /* attn_mask's strides over (B, qH, Sq, T), 0 where it broadcasts */
} attn_geom;

static attn_layout layout_of(bool three_d, int64_t H, int64_t S, int64_t D) {
    return three_d ? (attn_layout){S * H * D, D, H * D} : (attn_layout){H * S * D, S * D, D};
}

/* Batch, heads, sequence and head size of a 4-D input, or of a 3-D one with `heads` heads. */
static celer_status attn_dims(const char *who, const char *name, const celer_tensor *t,
                              bool three_d, int64_t heads, int64_t out[4]) {
    char b1[160];
    const int64_t *d = t->shape.dims;
    if (t->shape.rank != (three_d ? 3 : 4))
        return celer_errorf(CELER_ERR_SHAPE, "%s: %s %s must be %s like Q", who, name,
                            celer_shape_str(&t->shape, b1, sizeof b1), three_d ? "3-D" : "4-D");
    if (!three_d) {
        memcpy(out, d, 4 * sizeof *out);
        return CELER_OK;
    }
    if (d[2] % heads)
        return celer_errorf(CELER_ERR_SHAPE, "%s: %s %s: hidden size %lld is not a multiple of its "
                            "%lld heads", who, name, celer_shape_str(&t->shape, b1, sizeof b1),
                            (long long)d[2], (long long)heads);
    out[0] = d[0], out[1] = heads, out[2] = d[1], out[3] = d[2] / heads;
    return CELER_OK;
}

static celer_status attn_geometry(const celer_kernel_call *call, attn_geom *g) {
    char who[160], b1[160];
    const attn_state *s = call->state;
    celer_status st = celer_ops_require(call, 3);
    if (st) return st;
    const celer_tensor *q = call->in[0], *k = call->in[1], *v = call->in[2];
    const celer_tensor *mask = celer_ops_input(call, 3), *pk = celer_ops_input(call, 4),
                       *pv = celer_ops_input(call, 5);
    WHO(call->info);
    memset(g, 0, sizeof *g);
    g->three_d = q->shape.rank == 3;
    if (g->three_d && (s->q_heads == 0 || s->kv_heads == 0))
        return celer_errorf(CELER_ERR_INVALID, "%s: 3-D Q/K/V need attributes q_num_heads and "
                            "kv_num_heads", who);
    if (!g->three_d && q->shape.rank != 4)
        return celer_errorf(CELER_ERR_SHAPE, "%s: Q %s must be 3-D or 4-D", who,
                            celer_shape_str(&q->shape, b1, sizeof b1));
    int64_t qd[4], kd[4], vd[4];
    st = attn_dims(who, "Q", q, g->three_d, s->q_heads, qd);
    if (!st) st = attn_dims(who, "K", k, g->three_d, s->kv_heads, kd);
    if (!st) st = attn_dims(who, "V", v, g->three_d, s->kv_heads, vd);
    if (st) return st;
    g->B = qd[0], g->qH = qd[1], g->Sq = qd[2], g->D = qd[3];
    g->kvH = kd[1], g->Skv = kd[2], g->Dv = vd[3];
    if (kd[0] != g->B || vd[0] != g->B || vd[1] != g->kvH || vd[2] != g->Skv || kd[3] != g->D)
        return celer_errorf(CELER_ERR_SHAPE, "%s: Q [b=%lld, heads=%lld, seq=%lld, head=%lld], K "
                            "[%lld, %lld, %lld, %lld] and V [%lld, %lld, %lld, %lld] disagree "
                            "(batch, K/V heads and sequence, Q/K head size must match)", who,
                            (long long)qd[0], (long long)qd[1], (long long)qd[2], (long long)qd[3],
                            (long long)kd[0], (long long)kd[1], (long long)kd[2], (long long)kd[3],
                            (long long)vd[0], (long long)vd[1], (long long)vd[2], (long long)vd[3]);
    if (g->kvH == 0 || g->qH % g->kvH)
        return celer_errorf(CELER_ERR_SHAPE, "%s: %lld query heads are not a multiple of %lld "
                            "key/value heads", who, (long long)g->qH, (long long)g->kvH);
    if (!pk != !pv)
        return celer_errorf(CELER_ERR_INVALID, "%s: past_key and past_value go together", who);
    if (pk) {
        const int64_t *a = pk->shape.dims, *b = pv->shape.dims;
        if (pk->shape.rank != 4 || pv->shape.rank != 4 || a[0] != g->B || a[1] != g->kvH ||
            a[3] != g->D || b[0] != g->B || b[1] != g->kvH || b[2] != a[2] || b[3] != g->Dv)
            return celer_errorf(CELER_ERR_SHAPE, "%s: past_key %s and past_value must be "
                                "[%lld, %lld, past, %lld] and [%lld, %lld, past, %lld]", who,
                                celer_shape_str(&pk->shape, b1, sizeof b1), (long long)g->B,
                                (long long)g->kvH, (long long)g->D, (long long)g->B,
                                (long long)g->kvH, (long long)g->Dv);
        g->P = a[2];
    }
    g->tot = g->P + g->Skv;
    if (g->tot > BLAS_MAX || g->D > BLAS_MAX || g->Dv > BLAS_MAX || g->Sq > BLAS_MAX ||
        g->qH * g->D > BLAS_MAX || g->kvH * g->D > BLAS_MAX || g->kvH * g->Dv > BLAS_MAX ||
        g->qH * g->Dv > BLAS_MAX)
        return celer_errorf(CELER_ERR_LIMIT, "%s: a dimension passes 2^31-1", who);
    g->q = layout_of(g->three_d, g->qH, g->Sq, g->D);
    g->k = layout_of(g->three_d, g->kvH, g->Skv, g->D);
    g->v = layout_of(g->three_d, g->kvH, g->Skv, g->Dv);
    g->y = layout_of(g->three_d, g->qH, g->Sq, g->Dv);
    if (mask) {
        int r = mask->shape.rank;
        const int64_t full[4] = {g->B, g->qH, g->Sq, g->tot};
        if (r > 4)
            return celer_errorf(CELER_ERR_SHAPE, "%s: attn_mask %s has more than 4 dims", who,
                                celer_shape_str(&mask->shape, b1, sizeof b1));
        int64_t stride = 1;
        for (int i = 3; i >= 0; i--) {
            int j = i - (4 - r);
            int64_t dim = j >= 0 ? mask->shape.dims[j] : 1;
            if (dim != 1 && dim != full[i])
                return celer_errorf(CELER_ERR_SHAPE, "%s: attn_mask %s does not broadcast to "
                                    "[%lld, %lld, %lld, %lld] (batch, q heads, q sequence, past + "
                                    "kv sequence)", who,
                                    celer_shape_str(&mask->shape, b1, sizeof b1), (long long)g->B,
                                    (long long)g->qH, (long long)g->Sq, (long long)g->tot);
            g->mstride[i] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
    }
    return CELER_OK;
}

static bool attn_widened(celer_dtype t) { return t != CELER_FLOAT && t != CELER_DOUBLE; }

/* Scratch: the score block [Sq, T] in the compute type; for float16/bfloat16 also Q, K, V, the
 * past caches and Y widened to float. */
static void attn_carve(const celer_kernel_call *call, const attn_geom *g, celer_ops_carve *cv,
                       void **ptrs) {
    bool wide = attn_widened(call->in[0]->dtype);
    size_t es = call->in[0]->dtype == CELER_DOUBLE ? 8 : 4;
    ptrs[0] = celer_ops_carve_elems(cv, g->Sq * g->tot, es);
    for (int i = 0; i < 6; i++) {
        const celer_tensor *t = i < 3 ? call->in[i] : i < 5 ? celer_ops_input(call, i + 1) : NULL;
        int64_t n = i == 5 ? g->B * g->qH * g->Sq * g->Dv : t ? celer_shape_numel(&t->shape) : 0;
        ptrs[1 + i] = wide && n ? celer_ops_carve_elems(cv, n, 4) : NULL;
    }
}

static celer_status attn_reshape(celer_kernel_call *call) {
    char who[160];
    attn_geom g;
    celer_status st = attn_geometry(call, &g);
    if (st) return st;
    celer_shape *y = &call->out[0].shape;
    *y = g.three_d ? (celer_shape){.rank = 3, .dims = {g.B, g.Sq, g.qH * g.Dv}}
                   : (celer_shape){.rank = 4, .dims = {g.B, g.qH, g.Sq, g.Dv}};
    if (call->n_out > 1)
        call->out[1].shape = (celer_shape){.rank = 4, .dims = {g.B, g.kvH, g.tot, g.D}};
    if (call->n_out > 2)
        call->out[2].shape = (celer_shape){.rank = 4, .dims = {g.B, g.kvH, g.tot, g.Dv}};
    for (int i = 0; i < call->n_out && i < 3; i++)
        if ((st = celer_ops_check_output(call->info, &call->out[i]))) return st;
    celer_ops_carve cv = {0};
    void *ptrs[7];
    attn_carve(call, &g, &cv, ptrs);
    if (cv.overflow)
        return celer_errorf(CELER_ERR_LIMIT, "%s: scratch for %lld x %lld scores passes the cap",
                            WHO(call->info), (long long)g.Sq, (long long)g.tot);
    call->scratch_size = cv.off;
    return CELER_OK;
}

/* attn_mask's value at `at` as an additive bias: bool true 0, false -inf; numbers as they are. */
static inline double mask_bias(const celer_tensor *mask, int64_t at) {
    switch (mask->dtype) {
    case CELER_BOOL: return ((const uint8_t *)mask->data)[at] ? 0 : -INFINITY;
    case CELER_FLOAT: return ((const float *)mask->data)[at];
    case CELER_DOUBLE: return ((const double *)mask->data)[at];
    default: return celer_ops_double_at(mask, at);
    }
}

/* row[j] = exp(row[j] - max) for j < n, returning their sum. (vmath's vectorizable exp was
 * slower here than libm's expf: 1.52 against 1.35 ms on a 12-head 128-token attention.) */
static float exp_sum_f32(float *row, float max, int64_t n) {
    float sum = 0;
    for (int64_t j = 0; j < n; j++) sum += row[j] = expf(row[j] - max);
    return sum;
}

static double exp_sum_f64(double *row, double max, int64_t n) {
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += row[j] = exp(row[j] - max);
    return sum;
}

/* Softmax "in the precision of its input" (softmax_precision not given) for float16/bfloat16
 * inputs computed in float: scores and probabilities rounded to that type, as ORT rounds them. */
static inline double narrowed(celer_dtype t, double x) {
    if (t == CELER_FLOAT16) return celer_half_to_float(celer_float_to_half((float)x));
    if (t == CELER_BFLOAT16) return celer_bf16_to_float(celer_float_to_bf16((float)x));
    return x;
}

/* C[m x n] (ldc) = alpha * A[m x k] (lda) op(B) + beta * C; handles the empty cases BLAS refuses. */
#define DEFINE_ATTN(T, SUF, GEMM, TANH)                                                       \
    static void gemm_##SUF(bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,          \
                           int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {      \
        if (m == 0 || n == 0) return;                                                              \
        if (k == 0) {                                                                              \
            for (int64_t i = 0; i < m; i++)                                                        \
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j]; \
            return;                                                                                \
        }                                                                                          \
        GEMM(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,  \
             alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);                                  \
    }                                                                                              \
    static void attn_heads_##SUF(const attn_state *s, const attn_geom *g, const T *q, const T *k,  \
                                 const T *v, const T *pk, const T *pv, const celer_tensor *mask,   \
                                 celer_dtype narrow, T *y, T *sc) {                                \
        T scale = s->has_scale ? (T)s->scale : (T)(1.0 / sqrt((double)g->D));                      \
        int64_t group = g->qH / g->kvH, P = g->P, T_ = g->tot;                                     \
        bool rounds = narrow == CELER_FLOAT16 || narrow == CELER_BFLOAT16;                         \
        int64_t rb = s->causal ? 32 : g->Sq;                                                       \
        /* an empty Y may still have many heads (a zero sequence): nothing to compute */           \
        if (g->Sq == 0 || g->Dv == 0) return;                                                      \
        for (int64_t b = 0; b < g->B; b++)                                                         \
            for (int64_t h = 0; h < g->qH; h++) {                                                  \
                int64_t kh = h / group;                                                            \
                const T *qp = q + b * g->q.sb + h * g->q.sh;                                       \
                const T *kp = k + b * g->k.sb + kh * g->k.sh, *vp = v + b * g->v.sb + kh * g->v.sh; \
                T *yp = y + b * g->y.sb + h * g->y.sh;                                             \
                const T *pkp = pk ? pk + (b * g->kvH + kh) * P * g->D : NULL;                      \
                const T *pvp = pv ? pv + (b * g->kvH + kh) * P * g->Dv : NULL;                     \
                /* causal rows in blocks: a block needs the keys up to its last row's only */      \
                for (int64_t r0 = 0; r0 < g->Sq; r0 += rb) {                                       \
                    int64_t r1 = r0 + rb < g->Sq ? r0 + rb : g->Sq, kend = T_;                     \
                    if (s->causal && r1 + P < T_) kend = r1 + P;                                   \
                    T *sb = sc + r0 * T_;                                                          \
                    const T *qr = qp + r0 * g->q.ss;                                               \
                    gemm_##SUF(true, r1 - r0, P, g->D, scale, qr, g->q.ss, pkp, g->D, 0, sb, T_);  \
                    gemm_##SUF(true, r1 - r0, kend - P, g->D, scale, qr, g->q.ss, kp, g->k.ss, 0,  \
                               sb + P, T_);                                                        \
                    for (int64_t i = r0; i < r1; i++) {                                            \
                        T *row = sc + i * T_;                                                      \
                        int64_t mo = b * g->mstride[0] + h * g->mstride[1] + i * g->mstride[2];    \
                        /* causal: query i sees keys j <= i + P (all the past, the new to its own); \
                         * the keys after `lim` get probability 0 without an exp */                \
                        int64_t lim = s->causal && i + P + 1 < T_ ? i + P + 1 : T_;                \
                        T max = -INFINITY;                                                         \
                        for (int64_t j = 0; j < lim; j++) {                                        \
                            T x = row[j];                                                          \
                            if (rounds) x = (T)narrowed(narrow, (double)x);                        \
                            if (s->softcap > 0) x = (T)s->softcap * TANH(x / (T)s->softcap);       \
                            if (mask) x += (T)mask_bias(mask, mo + j * g->mstride[3]);             \
                            row[j] = x;                                                            \
                            if (x > max) max = x;                                                  \
                        }                                                                          \
                        /* every key masked out: zeros, as the spec's errata and ORT have it */    \
                        T sum = 0;                                                                 \
                        if (max == -INFINITY)                                                      \
                            for (int64_t j = 0; j < lim; j++) row[j] = 0;                          \
                        else                                                                       \
                            sum = exp_sum_##SUF(row, max, lim);                                    \
                        T inv = sum > 0 ? 1 / sum : 0;                                             \
                        for (int64_t j = 0; j < lim; j++)                                          \
                            row[j] = rounds ? (T)narrowed(narrow, row[j] * inv) : row[j] * inv;    \
                        for (int64_t j = lim; j < kend; j++) row[j] = 0;                           \
                    }                                                                              \
                    T *yr = yp + r0 * g->y.ss;                                                     \
                    gemm_##SUF(false, r1 - r0, g->Dv, P, 1, sb, T_, pvp, g->Dv, 0, yr, g->y.ss);   \
                gemm_##SUF(false, r1 - r0, g->Dv, kend - P, 1, sb + P, T_, vp, g->v.ss, P ? 1 : 0, \
                           yr, g->y.ss);                                                           \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    /* present = past then the new keys, [B, kvH, T, d] whatever K's layout */                     \
    static void attn_present_##SUF(const attn_geom *g, const T *past, const T *cur,                \
                                   const attn_layout *l, int64_t d, T *out) {                      \
        if (g->tot == 0 || d == 0) return;                                                         \
        for (int64_t b = 0; b < g->B; b++)                                                         \
            for (int64_t h = 0; h < g->kvH; h++) {                                                 \
                T *o = out + (b * g->kvH + h) * g->tot * d;                                        \
                if (g->P) memcpy(o, past + (b * g->kvH + h) * g->P * d, (size_t)(g->P * d) * sizeof(T)); \
                for (int64_t t = 0; t < g->Skv; t++)                                               \
                    memcpy(o + (g->P + t) * d, cur + b * l->sb + h * l->sh + t * l->ss,            \
                           (size_t)d * sizeof(T));                                                 \
            }                                                                                      \
    }
DEFINE_ATTN(float, f32, cblas_sgemm, tanhf)
DEFINE_ATTN(double, f64, cblas_dgemm, tanh)

static void widen(const celer_tensor *t, float *out) {
    int64_t n = celer_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) out[i] = (float)celer_ops_double_at(t, i);
}

static celer_status attn_run(celer_kernel_call *call) {
    const attn_state *s = call->state;
    attn_geom g;
    celer_status st = attn_geometry(call, &g);
    if (st) return st;
    const celer_tensor *mask = celer_ops_input(call, 3);
    const celer_tensor *t[5] = {call->in[0], call->in[1], call->in[2], celer_ops_input(call, 4),
                                celer_ops_input(call, 5)};
    celer_tensor *y = &call->out[0];
    celer_ops_carve cv = {call->scratch, 0, false};
    void *ptrs[7];
    attn_carve(call, &g, &cv, ptrs);
    if (y->dtype == CELER_DOUBLE) {
        attn_heads_f64(s, &g, t[0]->data, t[1]->data, t[2]->data, t[3] ? t[3]->data : NULL,
                       t[4] ? t[4]->data : NULL, mask, CELER_DOUBLE, y->data, ptrs[0]);
        if (output_wanted(call, 1))
            attn_present_f64(&g, t[3] ? t[3]->data : NULL, t[1]->data, &g.k, g.D, call->out[1].data);
        if (output_wanted(call, 2))
            attn_present_f64(&g, t[4] ? t[4]->data : NULL, t[2]->data, &g.v, g.Dv, call->out[2].data);
        return CELER_OK;
    }
    const float *in[5];
    bool wide = attn_widened(y->dtype);
    for (int i = 0; i < 5; i++) {
        in[i] = t[i] ? t[i]->data : NULL;
        if (wide && t[i] && ptrs[1 + i]) {
            widen(t[i], ptrs[1 + i]);
            in[i] = ptrs[1 + i];
        }
    }
    float *yf = wide ? ptrs[6] : y->data;
    if (wide && !yf) return CELER_OK; /* empty Y */
    attn_heads_f32(s, &g, in[0], in[1], in[2], in[3], in[4], mask,
                   wide && !s->softmax_float ? y->dtype : CELER_FLOAT, yf, ptrs[0]);
    if (wide) {
        int64_t n = celer_shape_numel(&y->shape);
        for (int64_t i = 0; i < n; i++) celer_ops_double_store(y, i, yf[i]);
    }
    for (int o = 1; o <= 2; o++) {
        if (!output_wanted(call, o)) continue;
        celer_tensor *pr = &call->out[o];
        const attn_layout *l = o == 1 ? &g.k : &g.v;
        int64_t d = o == 1 ? g.D : g.Dv;
        /* copying the elements' bytes is type-blind: float16 ones move as uint16 pairs */
        if (!wide) {
            attn_present_f32(&g, in[2 + o], in[o], l, d, pr->data);
        } else {
            const celer_tensor *past = t[2 + o], *cur = t[o];
            int64_t n = 0;
            if (celer_shape_numel(&pr->shape) == 0) continue;
            for (int64_t b = 0; b < g.B; b++)
                for (int64_t h = 0; h < g.kvH; h++) {
                    for (int64_t p = 0; p < g.P * d; p++)
                        celer_ops_double_store(pr, n++, celer_ops_double_at(past, (b * g.kvH + h) * g.P * d + p));
                    for (int64_t r = 0; r < g.Skv; r++)
                        for (int64_t e = 0; e < d; e++)
                            celer_ops_double_store(pr, n++, celer_ops_double_at(cur, b * l->sb + h * l->sh + r * l->ss + e));
                }
        }
    }
    return CELER_OK;
}

static celer_status attn_types(const celer_op_info *info, celer_dtype *out) {
    for (int i = 0; i < info->n_outputs && i < 3; i++) out[i] = info->input_types[0];
    return CELER_OK;
}

#define ATTN_TYPES (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16))
#define ROPE_TYPES (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_FLOAT16) | CELER_DT(CELER_BFLOAT16))

static const celer_kernel kernels[] = {
    {"", "RotaryEmbedding", 23, CELER_OPS_MAX_VERSION, ROPE_TYPES, 0, 0, NULL, rope_init,
     rope_reshape_scratch, rope_run, free, NULL},
    /* 24 changed the causal alignment (nonpad_kv_seqlen): capped until it is implemented */
    {"", "Attention", 23, 23, ATTN_TYPES, 0, 0, attn_types, attn_init, attn_reshape, attn_run, free,
     NULL},
};

const celer_kernel_family celer_family_attention = {"attention", kernels,
                                                    (int)CELER_ARRAY_LEN(kernels)};
