/* quant operators: QuantizeLinear, DequantizeLinear (per tensor, per axis and blocked),
 * DynamicQuantizeLinear, QLinearMatMul and QLinearConv.
 *
 * Integer products go through the reference loops on operands widened to int32 with their zero
 * points removed (scratch memory, sized in reshape); requantisation rounds half to even and
 * saturates, as the ONNX spec says. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "reference.h"

/* Element i of v rounded half-to-even, plus zp, saturated to t's range (NaN gives zp). */
static void store_q(celer_dtype t, void *y, int64_t i, double v, int64_t zp) {
    double lo = t == CELER_INT8 ? -128 : t == CELER_UINT8 ? 0 : t == CELER_INT16 ? -32768 : 0;
    double hi = t == CELER_INT8 ? 127 : t == CELER_UINT8 ? 255 : t == CELER_INT16 ? 32767 : 65535;
    double q = isnan(v) ? (double)zp : nearbyint(v) + (double)zp;
    q = q < lo ? lo : q > hi ? hi : q;
    switch (t) {
    case CELER_INT8: ((int8_t *)y)[i] = (int8_t)q; break;
    case CELER_UINT8: ((uint8_t *)y)[i] = (uint8_t)q; break;
    case CELER_INT16: ((int16_t *)y)[i] = (int16_t)q; break;
    case CELER_UINT16: ((uint16_t *)y)[i] = (uint16_t)q; break;
    default: break;
    }
}

static bool is_q8(celer_dtype t) { return t == CELER_INT8 || t == CELER_UINT8; }

/* ---- QuantizeLinear / DequantizeLinear ---- */

/* ONNX element types that QuantizeLinear/DequantizeLinear take from opset 19 on and celer has
 * no tensor type for: named in the refusal so the user knows what to re-export. */
static const struct {
    int onnx;
    const char *name;
} missing_types[] = {
    {17, "float8e4m3fn"}, {18, "float8e4m3fnuz"}, {19, "float8e5m2"}, {20, "float8e5m2fnuz"},
    {21, "uint4"},        {22, "int4"},           {23, "float4e2m1"},
};

static const char *missing_type_name(int64_t t) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(missing_types); i++)
        if (missing_types[i].onnx == t) return missing_types[i].name;
    return NULL;
}

/* Attributes of both operators, checked once at load (infer_types) and read again where used. */
typedef struct qdq_attrs {
    int64_t block_size;   /* 0: per tensor or per axis */
    celer_dtype out_type; /* from output_dtype; CELER_UNDEFINED when not given */
} qdq_attrs;

/* Reads block_size (21+) and output_dtype (QuantizeLinear 21+, DequantizeLinear 23+); refuses
 * values celer cannot serve, naming the attribute and its value. `allowed`: output types. */
static celer_status qdq_attrs_read(const celer_op_info *info, bool quantize, uint32_t allowed,
                                   qdq_attrs *a) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    a->block_size = 0;
    a->out_type = CELER_UNDEFINED;
    if (info->since_version >= 21) {
        a->block_size = celer_onnx_attr_int(info->node, "block_size", 0);
        if (a->block_size < 0)
            return celer_errorf(CELER_ERR_INVALID, "%s: block_size must be positive (or 0), got %lld", who,
                                (long long)a->block_size);
    }
    int64_t od = 0;
    if (info->since_version >= (quantize ? 21 : 23)) od = celer_onnx_attr_int(info->node, "output_dtype", 0);
    if (od != 0) {
        const char *missing = missing_type_name(od);
        if (missing)
            return celer_errorf(CELER_ERR_UNSUPPORTED,
                                "%s: output_dtype %lld (%s) is an element type celer does not have", who,
                                (long long)od, missing);
        if (od < 0 || od >= 32 || !(allowed & CELER_DT(od)))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: output_dtype %lld (%s) is not supported here",
                                who, (long long)od,
                                od > 0 && od < CELER_DTYPE_COUNT ? celer_dtype_name((celer_dtype)od) : "unknown");
        a->out_type = (celer_dtype)od;
    }
    if (quantize && info->since_version >= 23) {
        /* the division runs in float; a narrower precision would round differently */
        int64_t pr = celer_onnx_attr_int(info->node, "precision", 0);
        if (pr != 0 && pr != CELER_FLOAT) {
            const char *missing = missing_type_name(pr);
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: precision %lld (%s) is not supported (only float)",
                                who, (long long)pr,
                                missing           ? missing
                                : pr > 0 && pr < CELER_DTYPE_COUNT ? celer_dtype_name((celer_dtype)pr)
                                                                   : "unknown");
        }
    }
    return CELER_OK;
}

/* How scale/zero point map onto x's elements: element i, at index j = (i / inner) % d along the
 * axis, uses parameter (j / block) for per axis, and for blocked quantization the parameter at
 * the same index with j replaced by j / block (the parameter tensor has s blocks on the axis). */
typedef struct axis_map {
    int64_t inner, d, block, s;
    bool blocked, per_tensor;
} axis_map;

static int64_t param_index(const axis_map *m, int64_t i) {
    if (m->per_tensor) return 0;
    int64_t q = (i / m->inner) % m->d / m->block;
    if (!m->blocked) return q;
    return ((i / (m->inner * m->d)) * m->s + q) * m->inner + i % m->inner;
}

/* Checks scale/zero point against x and how they map onto x's elements (per tensor, per `axis`
 * or blocked along `axis` with block_size). */
static celer_status param_map(const celer_kernel_call *call, const char *who, axis_map *m) {
    const celer_tensor *x = call->in[0], *scale = call->in[1];
    const celer_tensor *zp = call->n_in > 2 ? call->in[2] : NULL;
    int64_t ns = celer_shape_numel(&scale->shape);
    int64_t block = call->info->since_version >= 21 ? celer_onnx_attr_int(call->info->node, "block_size", 0) : 0;
    char b1[160], b2[160];
    *m = (axis_map){.inner = 1, .d = 1, .block = 1, .s = 1, .per_tensor = true};
    if (zp && !celer_shape_equal(&zp->shape, &scale->shape) && celer_shape_numel(&zp->shape) != ns)
        return celer_errorf(CELER_ERR_SHAPE, "%s: scale %s and zero point %s must have the same shape", who,
                            celer_shape_str(&scale->shape, b1, sizeof b1),
                            celer_shape_str(&zp->shape, b2, sizeof b2));
    if (block <= 0 && ns == 1 && scale->shape.rank <= 1) return CELER_OK;
    int axis;
    celer_status st = celer_ops_axis(call->info, celer_onnx_attr_int(call->info->node, "axis", 1),
                                     x->shape.rank, &axis);
    if (st) return st;
    m->per_tensor = false;
    m->d = x->shape.dims[axis];
    for (int i = axis + 1; i < x->shape.rank; i++) m->inner *= x->shape.dims[i];
    if (block <= 0) {
        if (scale->shape.rank != 1 || ns != m->d)
            return celer_errorf(CELER_ERR_SHAPE,
                                "%s: scale %s must be a scalar or 1-D with x %s's dim %d (or blocked, with "
                                "block_size)", who, celer_shape_str(&scale->shape, b1, sizeof b1),
                                celer_shape_str(&x->shape, b2, sizeof b2), axis);
        m->s = ns;
        return CELER_OK;
    }
    /* blocked: scale has x's shape but for ceil(d / block) blocks along the axis */
    int64_t blocks = m->d / block + (m->d % block != 0); /* block may be huge: no d + block - 1 */
    bool ok = scale->shape.rank == x->shape.rank;
    for (int i = 0; ok && i < x->shape.rank; i++)
        ok = scale->shape.dims[i] == (i == axis ? blocks : x->shape.dims[i]);
    if (!ok)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: blocked scale %s must have x %s's shape with ceil(%lld / block_size %lld) = "
                            "%lld on axis %d", who, celer_shape_str(&scale->shape, b1, sizeof b1),
                            celer_shape_str(&x->shape, b2, sizeof b2), (long long)m->d, (long long)block,
                            (long long)blocks, axis);
    m->blocked = true;
    m->block = block;
    m->s = scale->shape.dims[axis];
    return CELER_OK;
}

static celer_status qdq_reshape(celer_kernel_call *call) {
    char who[160];
    axis_map m;
    celer_status st = celer_ops_require(call, 2); /* x and the scale */
    if (st) return st;
    st = param_map(call, celer_ops_who(call->info, who, sizeof who), &m);
    if (st) return st;
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

/* Quantized types: 8-bit, and 16-bit from opset 21. */
#define Q_OUT8 (CELER_DT(CELER_UINT8) | CELER_DT(CELER_INT8))
#define Q_OUT16 (Q_OUT8 | CELER_DT(CELER_UINT16) | CELER_DT(CELER_INT16))

static celer_status quantize_types(const celer_op_info *info, celer_dtype *out) {
    char who[160];
    uint32_t allowed = info->since_version >= 21 ? Q_OUT16 : Q_OUT8;
    qdq_attrs a;
    celer_status st = qdq_attrs_read(info, true, allowed, &a);
    if (st) return st;
    celer_dtype zt = info->n_inputs > 2 ? info->input_types[2] : CELER_UNDEFINED;
    if (a.out_type != CELER_UNDEFINED && zt != CELER_UNDEFINED && zt != a.out_type)
        return celer_errorf(CELER_ERR_DTYPE, "%s: output_dtype %s differs from the zero point's type %s",
                            celer_ops_who(info, who, sizeof who), celer_dtype_name(a.out_type),
                            celer_dtype_name(zt));
    out[0] = a.out_type != CELER_UNDEFINED ? a.out_type : zt == CELER_UNDEFINED ? CELER_UINT8 : zt;
    if (!(allowed & CELER_DT(out[0])))
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: output type %s (zero point) is not %s",
                            celer_ops_who(info, who, sizeof who), celer_dtype_name(out[0]),
                            info->since_version >= 21 ? "int8/uint8/int16/uint16" : "int8/uint8");
    return CELER_OK;
}

static celer_status quantize_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0], *scale = call->in[1];
    const celer_tensor *zp = call->n_in > 2 ? call->in[2] : NULL;
    celer_tensor *y = &call->out[0];
    axis_map m;
    celer_status st = param_map(call, "QuantizeLinear", &m);
    if (st) return st;
    int64_t n = celer_shape_numel(&x->shape);
    if (x->dtype == CELER_FLOAT && m.per_tensor) { /* the common case, in float as reference engines do */
        float s = (float)celer_ops_double_at(scale, 0);
        int64_t z = zp ? celer_ops_int_at(zp, 0) : 0;
        const float *xf = x->data;
        for (int64_t i = 0; i < n; i++) store_q(y->dtype, y->data, i, (double)(xf[i] / s), z);
        return CELER_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t p = param_index(&m, i);
        float s = (float)celer_ops_double_at(scale, p);
        store_q(y->dtype, y->data, i, (double)((float)celer_ops_double_at(x, i) / s),
                zp ? celer_ops_int_at(zp, p) : 0);
    }
    return CELER_OK;
}

#define DQ_OUT (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_FLOAT16) | CELER_DT(CELER_BFLOAT16))

static celer_status dequantize_types(const celer_op_info *info, celer_dtype *out) {
    qdq_attrs a;
    celer_status st = qdq_attrs_read(info, false, DQ_OUT, &a);
    if (st) return st;
    celer_dtype zt = info->n_inputs > 2 ? info->input_types[2] : CELER_UNDEFINED;
    if (zt != CELER_UNDEFINED && zt != info->input_types[0]) {
        char who[160];
        return celer_errorf(CELER_ERR_DTYPE, "%s: x_zero_point is %s, expected x's type %s",
                            celer_ops_who(info, who, sizeof who), celer_dtype_name(zt),
                            celer_dtype_name(info->input_types[0]));
    }
    out[0] = a.out_type != CELER_UNDEFINED    ? a.out_type
             : info->input_types[1] == CELER_UNDEFINED ? CELER_FLOAT
                                                       : info->input_types[1];
    return CELER_OK;
}

static celer_status dequantize_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0], *scale = call->in[1];
    const celer_tensor *zp = call->n_in > 2 ? call->in[2] : NULL;
    celer_tensor *y = &call->out[0];
    axis_map m;
    celer_status st = param_map(call, "DequantizeLinear", &m);
    if (st) return st;
    int64_t n = celer_shape_numel(&x->shape);
    for (int64_t i = 0; i < n; i++) {
        int64_t p = param_index(&m, i);
        int64_t z = zp ? celer_ops_int_at(zp, p) : 0;
        float v = (float)(celer_ops_int_at(x, i) - z) * (float)celer_ops_double_at(scale, p);
        celer_ops_double_store(y, i, v);
    }
    return CELER_OK;
}

/* ---- DynamicQuantizeLinear: uint8 with scale and zero point from the data's range ---- */

static celer_status dynq_types(const celer_op_info *info, celer_dtype *out) {
    (void)info;
    out[0] = CELER_UINT8;
    out[1] = CELER_FLOAT;
    out[2] = CELER_UINT8;
    return CELER_OK;
}

static celer_status dynq_reshape(celer_kernel_call *call) {
    call->out[0].shape = call->in[0]->shape;
    for (int i = 1; i < call->n_out; i++) call->out[i].shape = (celer_shape){0};
    return CELER_OK;
}

static celer_status dynq_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0];
    int64_t n = celer_shape_numel(&x->shape);
    const float *xf = x->data;
    float lo = 0, hi = 0; /* the range always includes 0 */
    for (int64_t i = 0; i < n; i++) {
        if (xf[i] < lo) lo = xf[i];
        if (xf[i] > hi) hi = xf[i];
    }
    float scale = (hi - lo) / 255.0f;
    int64_t zp = 0;
    if (scale > 0 && isfinite(scale)) {
        double z = nearbyint((double)(0.0f - lo / scale));
        zp = z < 0 ? 0 : z > 255 ? 255 : (int64_t)z;
    }
    for (int64_t i = 0; i < n; i++)
        store_q(CELER_UINT8, call->out[0].data, i, scale > 0 ? (double)(xf[i] / scale) : 0.0, zp);
    if (call->n_out > 1 && call->out[1].data) ((float *)call->out[1].data)[0] = scale;
    if (call->n_out > 2 && call->out[2].data) ((uint8_t *)call->out[2].data)[0] = (uint8_t)zp;
    return CELER_OK;
}

/* ---- QLinearMatMul ---- */

/* out type of QLinear*: the output zero point's (input `zi`) type. */
static celer_status qlinear_types(const celer_op_info *info, int zi, celer_dtype *out) {
    out[0] = info->n_inputs > zi ? info->input_types[zi] : CELER_UNDEFINED;
    if (!is_q8(out[0])) {
        char who[160];
        return celer_errorf(CELER_ERR_DTYPE, "%s: y_zero_point must be int8 or uint8, got %s",
                            celer_ops_who(info, who, sizeof who), celer_dtype_name(out[0]));
    }
    return CELER_OK;
}

static celer_status qmatmul_types(const celer_op_info *info, celer_dtype *out) {
    return qlinear_types(info, 7, out);
}

/* A quantisation parameter (scale or zero point) must hold 1 or `n` values. */
static celer_status check_param(const char *who, const char *name, const celer_tensor *t, int64_t n) {
    int64_t k = t ? celer_shape_numel(&t->shape) : 1;
    if (k != 1 && k != n)
        return celer_errorf(CELER_ERR_SHAPE, "%s: %s has %lld values, expected 1 or %lld", who, name,
                            (long long)k, (long long)n);
    return CELER_OK;
}

static celer_status qmatmul_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    if (call->n_in < 8)
        return celer_errorf(CELER_ERR_INVALID, "%s: needs 8 inputs, got %d", who, call->n_in);
    for (int i = 0; i < 8; i++)
        if (!call->in[i]) return celer_errorf(CELER_ERR_INVALID, "%s: input %d is missing", who, i);
    const celer_tensor *a = call->in[0], *b = call->in[3];
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "%s: A and B must be int8 or uint8", who);
    celer_matmul_plan p;
    celer_status st = celer_matmul_plan_make(who, &a->shape, &b->shape, &p, &call->out[0].shape);
    if ((st) || (st = check_param(who, "a_scale", call->in[1], p.m)) ||
        (st = check_param(who, "a_zero_point", call->in[2], p.m)) ||
        (st = check_param(who, "b_scale", call->in[4], p.n)) ||
        (st = check_param(who, "b_zero_point", call->in[5], p.n)) ||
        (st = check_param(who, "y_scale", call->in[6], 1)) ||
        (st = check_param(who, "y_zero_point", call->in[7], 1)))
        return st;
    size_t na = (size_t)celer_shape_numel(&a->shape), nb = (size_t)celer_shape_numel(&b->shape);
    size_t ny = (size_t)celer_shape_numel(&call->out[0].shape);
    call->scratch_size = celer_ref_align64(na * 4) + celer_ref_align64(nb * 4) + ny * 4;
    return CELER_OK;
}

static celer_status qmatmul_run(celer_kernel_call *call) {
    const celer_tensor *a = call->in[0], *b = call->in[3];
    celer_tensor *y = &call->out[0];
    celer_matmul_plan p;
    celer_shape ys;
    celer_status st = celer_matmul_plan_make("QLinearMatMul", &a->shape, &b->shape, &p, &ys);
    if (st) return st;
    size_t na = (size_t)celer_shape_numel(&a->shape), nb = (size_t)celer_shape_numel(&b->shape);
    int32_t *ai = call->scratch;
    int32_t *bi = (int32_t *)((char *)call->scratch + celer_ref_align64(na * 4));
    int32_t *acc = (int32_t *)((char *)bi + celer_ref_align64(nb * 4));
    celer_ref_widen_i32(a, call->in[2], p.k, ai);
    celer_ref_widen_i32(b, call->in[5], 1, bi);
    celer_ref_matmul_i32(&p, ai, bi, acc);
    const celer_tensor *as = call->in[1], *bs = call->in[4];
    int64_t nas = celer_shape_numel(&as->shape), nbs = celer_shape_numel(&bs->shape);
    double ysc = celer_ops_double_at(call->in[6], 0);
    int64_t yz = celer_ops_int_at(call->in[7], 0);
    int64_t total = celer_shape_numel(&ys);
    for (int64_t i = 0; i < total; i++) {
        int64_t row = (i / p.n) % p.m, col = i % p.n;
        double mult = celer_ops_double_at(as, nas == 1 ? 0 : row) *
                      celer_ops_double_at(bs, nbs == 1 ? 0 : col) / ysc;
        store_q(y->dtype, y->data, i, (double)acc[i] * mult, yz);
    }
    return CELER_OK;
}

/* ---- QLinearConv ---- */

typedef struct qconv_state {
    celer_win_attrs a;
} qconv_state;

static celer_status qconv_init(const celer_op_info *info, void **state) {
    qconv_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "QLinearConv: out of memory");
    celer_status st = celer_win_attrs_parse(info, &s->a);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

static celer_status qconv_types(const celer_op_info *info, celer_dtype *out) {
    return qlinear_types(info, 7, out);
}

static celer_status qconv_geom(const celer_kernel_call *call, const char *who, celer_conv_geom *g,
                               celer_shape *y) {
    const qconv_state *s = call->state;
    return celer_conv_geom_make(who, &s->a, &call->in[0]->shape, &call->in[3]->shape, false, g, y);
}

static celer_status qconv_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    if (call->n_in < 8)
        return celer_errorf(CELER_ERR_INVALID, "%s: needs at least 8 inputs, got %d", who, call->n_in);
    for (int i = 0; i < 8; i++)
        if (!call->in[i]) return celer_errorf(CELER_ERR_INVALID, "%s: input %d is missing", who, i);
    const celer_tensor *x = call->in[0], *w = call->in[3];
    const celer_tensor *b = call->n_in > 8 ? call->in[8] : NULL;
    if (!is_q8(x->dtype) || !is_q8(w->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "%s: x and w must be int8 or uint8", who);
    celer_conv_geom g;
    celer_shape y;
    celer_status st = qconv_geom(call, who, &g, &y);
    if ((st) || (st = check_param(who, "x_scale", call->in[1], 1)) ||
        (st = check_param(who, "x_zero_point", call->in[2], 1)) ||
        (st = check_param(who, "w_scale", call->in[4], g.m)) ||
        (st = check_param(who, "w_zero_point", call->in[5], g.m)) ||
        (st = check_param(who, "y_scale", call->in[6], 1)) ||
        (st = check_param(who, "y_zero_point", call->in[7], 1)))
        return st;
    if (b && (b->dtype != CELER_INT32 || b->shape.rank != 1 || b->shape.dims[0] != g.m))
        return celer_errorf(CELER_ERR_SHAPE, "%s: bias B must be int32 of shape [%lld]", who,
                            (long long)g.m);
    call->out[0].shape = y;
    size_t nx = (size_t)celer_shape_numel(&x->shape), nw = (size_t)celer_shape_numel(&w->shape);
    call->scratch_size = celer_ref_align64(nx * 4) + celer_ref_align64(nw * 4) +
                         (size_t)celer_shape_numel(&y) * 4;
    return CELER_OK;
}

static celer_status qconv_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0], *w = call->in[3];
    const celer_tensor *b = call->n_in > 8 ? call->in[8] : NULL;
    celer_tensor *y = &call->out[0];
    celer_conv_geom g;
    celer_shape ys;
    celer_status st = qconv_geom(call, "QLinearConv", &g, &ys);
    if (st) return st;
    size_t nx = (size_t)celer_shape_numel(&x->shape), nw = (size_t)celer_shape_numel(&w->shape);
    int32_t *xi = call->scratch;
    int32_t *wi = (int32_t *)((char *)call->scratch + celer_ref_align64(nx * 4));
    int32_t *acc = (int32_t *)((char *)wi + celer_ref_align64(nw * 4));
    celer_ref_widen_i32(x, call->in[2], 1, xi);
    celer_ref_widen_i32(w, call->in[5], g.m ? (int64_t)nw / g.m : 1, wi);
    celer_ref_conv_i32(&g, xi, wi, b ? b->data : NULL, acc);
    const celer_tensor *ws = call->in[4];
    int64_t nws = celer_shape_numel(&ws->shape);
    double xs = celer_ops_double_at(call->in[1], 0), ysc = celer_ops_double_at(call->in[6], 0);
    int64_t yz = celer_ops_int_at(call->in[7], 0);
    int64_t total = celer_shape_numel(&ys), plane = g.n && g.m ? total / (g.n * g.m) : 1;
    for (int64_t i = 0; i < total; i++) {
        int64_t m = (i / plane) % g.m;
        double mult = xs * celer_ops_double_at(ws, nws == 1 ? 0 : m) / ysc;
        store_q(y->dtype, y->data, i, (double)acc[i] * mult, yz);
    }
    return CELER_OK;
}

#define Q8 (CELER_DT(CELER_UINT8) | CELER_DT(CELER_INT8))
/* x of QuantizeLinear from opset 19 */
#define Q_IN (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_FLOAT16) | CELER_DT(CELER_BFLOAT16) | CELER_DT(CELER_INT32))

static const celer_kernel kernels[] = {
    {"", "QuantizeLinear", 10, 12, CELER_DT(CELER_FLOAT) | CELER_DT(CELER_INT32), 0, 0,
     quantize_types, NULL, qdq_reshape, quantize_run, NULL, NULL},
    {"", "QuantizeLinear", 13, 18, CELER_DT(CELER_FLOAT) | CELER_DT(CELER_INT32), 0, 0,
     quantize_types, NULL, qdq_reshape, quantize_run, NULL, NULL},
    /* 19: float8 outputs and `saturate` (float8 only); 21: int16/uint16, block_size,
     * output_dtype; 23: int4/float4, x and scale of different types, precision */
    {"", "QuantizeLinear", 19, 20, Q_IN, 0, 0, quantize_types, NULL, qdq_reshape, quantize_run, NULL, NULL},
    {"", "QuantizeLinear", 21, 22, Q_IN, 0, 0, quantize_types, NULL, qdq_reshape, quantize_run, NULL, NULL},
    {"", "QuantizeLinear", 23, CELER_OPS_MAX_VERSION, Q_IN, 0, 0, quantize_types, NULL, qdq_reshape,
     quantize_run, NULL, NULL},
    {"", "DequantizeLinear", 10, 12, Q8 | CELER_DT(CELER_INT32), 0, 0, dequantize_types, NULL,
     qdq_reshape, dequantize_run, NULL, NULL},
    {"", "DequantizeLinear", 13, 18, Q8 | CELER_DT(CELER_INT32), 0, 0, dequantize_types, NULL,
     qdq_reshape, dequantize_run, NULL, NULL},
    /* 19: float8 inputs, float16/bfloat16 scales; 21: int16/uint16, int4, block_size;
     * 23: float4, output_dtype */
    {"", "DequantizeLinear", 19, 20, Q8 | CELER_DT(CELER_INT32), 0, 0, dequantize_types, NULL,
     qdq_reshape, dequantize_run, NULL, NULL},
    {"", "DequantizeLinear", 21, 22, Q_OUT16 | CELER_DT(CELER_INT32), 0, 0, dequantize_types, NULL,
     qdq_reshape, dequantize_run, NULL, NULL},
    {"", "DequantizeLinear", 23, CELER_OPS_MAX_VERSION, Q_OUT16 | CELER_DT(CELER_INT32), 0, 0,
     dequantize_types, NULL, qdq_reshape, dequantize_run, NULL, NULL},
    {"", "DynamicQuantizeLinear", 11, CELER_OPS_MAX_VERSION, CELER_DT(CELER_FLOAT), 0, 0,
     dynq_types, NULL, dynq_reshape, dynq_run, NULL, NULL},
    {"", "QLinearMatMul", 10, CELER_OPS_MAX_VERSION, Q8, 0, 0, qmatmul_types, NULL, qmatmul_reshape, qmatmul_run,
     NULL, NULL},
    {"", "QLinearConv", 10, CELER_OPS_MAX_VERSION, Q8, 0, 0, qconv_types, qconv_init,
     qconv_reshape, qconv_run, free, NULL},
};

const celer_kernel_family celer_family_quant = {"quant", kernels, (int)CELER_ARRAY_LEN(kernels)};
