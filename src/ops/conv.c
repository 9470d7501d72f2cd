/* conv operators: Conv, ConvTranspose (float through oneDNN, double through the reference loops)
 * and ConvInteger (reference loops on widened int32 operands).
 *
 * State (init): the parsed window attributes, immutable and shared. Per-context local (reshape):
 * the geometry and, for float, a oneDNN primitive built for the current input shapes, rebuilt
 * only when they change. Plain layouts (ncdhw data, oidhw / iodhw weights) are used as given, so
 * nothing is pre-packed. */
#include <stdlib.h>
#include <string.h>

#include "dnnl_util.h"
#include "ops.h"
#include "reference.h"

typedef struct conv_state {
    celer_win_attrs a;
} conv_state;

typedef struct conv_local {
    celer_shape x, w; /* shapes the primitive was built for */
    bool has_bias, built;
    celer_conv_geom g;
    celer_dnnl_prim prim;
} conv_local;

static celer_status conv_init(const celer_op_info *info, void **state) {
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", info->node->op_type);
    celer_status st = celer_win_attrs_parse(info, &s->a);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

static void conv_free_local(void *p) {
    conv_local *l = p;
    celer_dnnl_prim_destroy(&l->prim);
    free(l);
}

/* Builds the oneDNN (de)convolution for geometry g into l->prim. */
static celer_status conv_build(conv_local *l, bool transpose, bool has_bias, const char *who) {
    const celer_conv_geom *g = &l->g;
    int nsp = g->win.nsp;
    static const dnnl_format_tag_t plain[] = {dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    /* ONNX ConvTranspose weights are (C_in, C_out/group, k...): oneDNN's "io" order */
    static const dnnl_format_tag_t io[] = {dnnl_bac, dnnl_bacd, dnnl_bacde};
    static const dnnl_format_tag_t gio[] = {dnnl_acbd, dnnl_acbde, dnnl_acbdef};
    celer_dnnl_conv_dims cd;
    celer_dnnl_conv_dims_of(g, &cd);
    int64_t bd[1] = {g->m};
    dnnl_format_tag_t wtag = !transpose ? plain[cd.w_rank - 3] : g->group > 1 ? gio[nsp - 1] : io[nsp - 1];

    dnnl_memory_desc_t xmd, wmd, bmd, ymd;
    celer_status st;
    if ((st = celer_dnnl_md(&xmd, cd.rank, cd.x, dnnl_f32, plain[nsp - 1], who)) ||
        (st = celer_dnnl_md(&ymd, cd.rank, cd.y, dnnl_f32, plain[nsp - 1], who)) ||
        (st = celer_dnnl_md(&wmd, cd.w_rank, cd.w, dnnl_f32, wtag, who)) ||
        (has_bias && (st = celer_dnnl_md(&bmd, 1, bd, dnnl_f32, dnnl_a, who))))
        return st;
    if (transpose) {
        dnnl_deconvolution_desc_t d;
        if ((st = celer_dnnl_check(dnnl_dilated_deconvolution_forward_desc_init(
                                       &d, dnnl_forward_inference, dnnl_deconvolution_direct,
                                       &xmd, &wmd, has_bias ? &bmd : NULL, &ymd, cd.strides, cd.dil,
                                       cd.pad_l, cd.pad_r),
                                   who, "deconvolution descriptor")))
            return st;
        return celer_dnnl_prim_create(&l->prim, &d, has_bias, NULL, false, who);
    }
    dnnl_convolution_desc_t d;
    if ((st = celer_dnnl_check(dnnl_dilated_convolution_forward_desc_init(
                                   &d, dnnl_forward_inference, dnnl_convolution_direct, &xmd,
                                   &wmd, has_bias ? &bmd : NULL, &ymd, cd.strides, cd.dil, cd.pad_l, cd.pad_r),
                               who, "convolution descriptor")))
        return st;
    return celer_dnnl_prim_create(&l->prim, &d, has_bias, NULL, false, who);
}

/* Gets this context's local, (re)computing geometry and primitive when the shapes changed. */
static celer_status conv_prepare(celer_kernel_call *call, bool transpose, const celer_tensor *b,
                                 const char *who, conv_local **out) {
    const conv_state *s = call->state;
    const celer_tensor *x = call->in[0], *w = call->in[1];
    conv_local *l = *call->local;
    bool has_bias = b != NULL;
    if (l && celer_shape_equal(&l->x, &x->shape) && celer_shape_equal(&l->w, &w->shape) &&
        l->has_bias == has_bias) {
        *out = l;
        return CELER_OK;
    }
    if (!l) {
        if (!(l = calloc(1, sizeof *l))) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
        *call->local = l;
    }
    celer_dnnl_prim_destroy(&l->prim);
    l->built = false;
    l->x.rank = -1; /* invalid until fully rebuilt */
    celer_shape y;
    celer_status st = celer_conv_geom_make(who, &s->a, &x->shape, &w->shape, transpose, &l->g, &y);
    if (st) return st;
    if (b && (b->shape.rank != 1 || b->shape.dims[0] != l->g.m)) {
        char buf[160];
        return celer_errorf(CELER_ERR_SHAPE, "%s: bias B %s must be [%lld]", who,
                            celer_shape_str(&b->shape, buf, sizeof buf), (long long)l->g.m);
    }
    bool empty = celer_shape_numel(&x->shape) == 0 || celer_shape_numel(&y) == 0;
    if (x->dtype == CELER_FLOAT && !empty) {
        if ((st = conv_build(l, transpose, has_bias, who))) return st;
        l->built = true;
    }
    l->x = x->shape;
    l->w = w->shape;
    l->has_bias = has_bias;
    *out = l;
    return CELER_OK;
}

static celer_shape geom_out_shape(const conv_local *l) {
    celer_shape y = {.rank = l->x.rank, .dims = {l->g.n, l->g.m}};
    for (int i = 0; i < l->g.win.nsp; i++) y.dims[2 + i] = l->g.win.out[3 - l->g.win.nsp + i];
    return y;
}

static celer_status reshape_common(celer_kernel_call *call, bool transpose) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *b = call->n_in > 2 ? call->in[2] : NULL;
    if (call->in[1]->dtype != call->in[0]->dtype || (b && b->dtype != call->in[0]->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "%s: X, W and B must have the same type", who);
    conv_local *l;
    celer_status st = conv_prepare(call, transpose, b, who, &l);
    if (st) return st;
    call->out[0].shape = geom_out_shape(l);
    call->scratch_size = l->built ? l->prim.scratch_bytes : 0;
    return CELER_OK;
}

static celer_status conv_reshape(celer_kernel_call *call) { return reshape_common(call, false); }
static celer_status convt_reshape(celer_kernel_call *call) { return reshape_common(call, true); }

static celer_status run_common(celer_kernel_call *call, bool transpose) {
    conv_local *l = *call->local;
    const celer_tensor *x = call->in[0], *w = call->in[1];
    const celer_tensor *b = call->n_in > 2 ? call->in[2] : NULL;
    if (l->built) {
        char who[160];
        return celer_dnnl_prim_run(&l->prim, x->data, w->data, b ? b->data : NULL,
                                   call->out[0].data, call->scratch,
                                   celer_ops_who(call->info, who, sizeof who));
    }
    if (x->dtype == CELER_DOUBLE) {
        if (transpose)
            celer_ref_conv_transpose_f64(&l->g, x->data, w->data, b ? b->data : NULL, call->out[0].data);
        else
            celer_ref_conv_f64(&l->g, x->data, w->data, b ? b->data : NULL, call->out[0].data);
    }
    return CELER_OK; /* float with an empty input or output: nothing to compute */
}

static celer_status conv_run(celer_kernel_call *call) { return run_common(call, false); }
static celer_status convt_run(celer_kernel_call *call) { return run_common(call, true); }

/* ---- ConvInteger: y(int32) = conv(x - x_zero_point, w - w_zero_point) ---- */

static celer_status convint_types(const celer_op_info *info, celer_dtype *out) {
    (void)info;
    out[0] = CELER_INT32;
    return CELER_OK;
}

static celer_status convint_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *xz = call->n_in > 2 ? call->in[2] : NULL;
    const celer_tensor *wz = call->n_in > 3 ? call->in[3] : NULL;
    conv_local *l;
    celer_status st = conv_prepare(call, false, NULL, who, &l);
    if (st) return st;
    if (xz && celer_shape_numel(&xz->shape) != 1)
        return celer_errorf(CELER_ERR_SHAPE, "%s: x_zero_point must be a scalar", who);
    int64_t wzn = wz ? celer_shape_numel(&wz->shape) : 1;
    if (wzn != 1 && wzn != l->g.m)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: w_zero_point has %lld values, expected 1 or %lld (one per output "
                            "channel)", who, (long long)wzn, (long long)l->g.m);
    call->out[0].shape = geom_out_shape(l);
    size_t nx = (size_t)celer_shape_numel(&call->in[0]->shape);
    size_t nw = (size_t)celer_shape_numel(&call->in[1]->shape);
    call->scratch_size = celer_ref_align64(nx * 4) + celer_ref_align64(nw * 4);
    return CELER_OK;
}

static celer_status convint_run(celer_kernel_call *call) {
    const conv_local *l = *call->local;
    const celer_tensor *x = call->in[0], *w = call->in[1];
    int32_t *xi = call->scratch;
    int32_t *wi = (int32_t *)((char *)call->scratch +
                              celer_ref_align64((size_t)celer_shape_numel(&x->shape) * 4));
    int64_t per_m = l->g.m ? celer_shape_numel(&w->shape) / l->g.m : 1;
    celer_ref_widen_i32(x, call->n_in > 2 ? call->in[2] : NULL, 1, xi);
    celer_ref_widen_i32(w, call->n_in > 3 ? call->in[3] : NULL, per_m, wi);
    celer_ref_conv_i32(&l->g, xi, wi, NULL, call->out[0].data);
    return CELER_OK;
}

#define F32_F64 (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE))
#define U8_I8 (CELER_DT(CELER_UINT8) | CELER_DT(CELER_INT8))

#define CONV_ENTRY(op, since, until, reshape, run)                                             \
    {"", op, since, until, F32_F64, 0, 0, NULL, conv_init, reshape, run, free, conv_free_local}

static const celer_kernel kernels[] = {
    CONV_ENTRY("Conv", 1, 10, conv_reshape, conv_run),
    CONV_ENTRY("Conv", 11, CELER_OPS_MAX_VERSION, conv_reshape, conv_run),
    CONV_ENTRY("ConvTranspose", 1, 10, convt_reshape, convt_run),
    CONV_ENTRY("ConvTranspose", 11, CELER_OPS_MAX_VERSION, convt_reshape, convt_run),
    {"", "ConvInteger", 10, CELER_OPS_MAX_VERSION, U8_I8, 0, 0, convint_types, conv_init,
     convint_reshape, convint_run, free, conv_free_local},
};

const celer_kernel_family celer_family_conv = {"conv", kernels, (int)CELER_ARRAY_LEN(kernels)};
