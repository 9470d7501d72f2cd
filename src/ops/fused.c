/* fused operators: the internal operators that graph passes create (graph/optimize.c), in domain
 * CELER_GRAPH_INTERNAL_DOMAIN; their names, input slots and attributes are in graph/fused.h. A
 * file cannot name them.
 *
 *   FusedConv(X, W, B?, Sum?, bn_scale?, bn_bias?, bn_mean?, bn_var?) -> Y
 *       Y = sum_activation(activation(BN(conv(X, W) + B)) + Sum), float only, W and the BN
 *       parameters constant; with attribute transposed = 1 the conv is a ConvTranspose (its W,
 *       attributes and oneDNN's deconvolution; no BN). At load (init) BatchNormalization is folded into the weights and
 *       bias and the weights are reordered once into the layout oneDNN's convolution wants;
 *       nothing reads W afterwards. The activations and the residual Sum are oneDNN post-ops;
 *       Sum is accumulated in place when the executor lets Y share its buffer.
 *       Attributes: the Conv's, plus activation / sum_activation (Relu, LeakyRelu, Clip,
 *       Sigmoid, Tanh, HardSwish, HardSigmoid, Swish, Gelu, GeluTanh) with *_alpha / *_beta, bn_epsilon, and x_blocked / y_blocked: the channel
 *       block of X's and Y's (and Sum's) layout when they are blocked (nChw8c for 8), else plain.
 *   BlockedPool(X) -> Y: 1-D or 2-D MaxPool (mode "max") or AveragePool ("avg", count_include_pad) with
 *       the ONNX op's window attributes, through oneDNN's pooling, X and Y blocked.
 *   BlockedGlobalAveragePool(X) -> Y: GlobalAveragePool of a blocked X (attribute `block`); Y is
 *       [N, C, 1...], whose bytes are the same in both layouts.
 *   BlockedScale(X, S) -> Y = X * S: a blocked X times channel scales S [N or 1, C, 1...] (the
 *       squeeze-excite Mul), Y blocked.
 *   BlockedConcat(X1, X2, ...) -> Y: Concat along channels (axis 1) of blocked tensors, each with
 *       channels a multiple of the block (attribute `block`), Y blocked: per sample, the parts'
 *       bytes one after the other (the U-Net's skip connections).
 *   LayoutToPlain(X) -> Y: a blocked tensor (attribute `block`) back to the plain layout.
 *   FusedMatMul(A, B, bias?) -> Y = activation(A B + bias), float, B a constant matrix ([K, N], or
 *       [N, K] with transB = 1), bias a constant of N values; from MatMul (+ Add) and from Gemm
 *       with alpha = beta = 1. B and the bias are packed at load into column panels (sgemm.h) and
 *       the file's copies released; the bias and the activation are applied to each tile of Y
 *       as its product finishes. activation: Relu, LeakyRelu, Clip, Sigmoid, Tanh, Gelu, HardSwish,
 *       HardSigmoid, Swish, with activation_alpha / activation_beta.
 *   Gelu(X) -> Y = X/2 (1 + erf(X / sqrt 2)), from the Div/Erf/Add/Mul/Mul pattern exporters write.
 *
 * A blocked tensor has its NCHW shape in celer_tensor.shape and its bytes in N, C/block,
 * spatial..., block order. Its channel count C is padded up to a multiple of the block (24 -> 32
 * by 16, as oneDNN's padded blocked layouts have it), so the executor, which sizes buffers from
 * shapes, allocates the padded bytes: the padding channels are 0 out of a FusedConv (oneDNN zeroes
 * them) and stay finite through the ops after it (activations of 0); a FusedConv reading X
 * blocked takes its true C from W, and LayoutToPlain drops the padding (attribute `channels`). */
/* Nothing here reads floating-point exception flags: lets GCC keep the selects of the
 * activation loops (and of vmath.h, inlined into them) branch-free, so they vectorize. A
 * function-level attribute would not do: GCC does not inline across differing options. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#endif

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "dnnl_util.h"
#include "graph/fused.h"
#include "graph/graph.h"
#include "ops.h"
#include "reference.h"
#include "sgemm.h"
#include "vmath.h"


int celer_ops_layout_block(void) {
    /* oneDNN's AVX-512 convolutions block channels by 16, the AVX2 and SSE4.1 ones by 8 */
    return dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core ? 16 : 8;
}

/* Live FusedConv primitives on a reference implementation (see celer_ops_reference_convs). */
static atomic_long reference_convs;

long celer_ops_reference_convs(void) { return atomic_load(&reference_convs); }

/* A fused activation as up to two oneDNN eltwise post-ops (n 0: none). */
typedef struct activation {
    int n;
    struct { dnnl_alg_kind_t alg; float alpha, beta; } op[2];
} activation;

/* How each activation FusedConv takes runs: the first post-op gets the node's activation_alpha
 * and activation_beta (which the graph pass sets as the ONNX op means them), the second fixed
 * parameters. oneDNN 2.6 has no hard sigmoid: max(0, min(1, alpha x + beta)) is linear, clip. */
static const struct {
    const char *name;
    dnnl_alg_kind_t alg, then; /* then: 0 for none */
    float then_alpha, then_beta;
} conv_acts[] = {
    {.name = "Relu", .alg = dnnl_eltwise_relu},
    {.name = "LeakyRelu", .alg = dnnl_eltwise_relu},
    {.name = "Sigmoid", .alg = dnnl_eltwise_logistic},
    {.name = "Tanh", .alg = dnnl_eltwise_tanh},
    {.name = "Clip", .alg = dnnl_eltwise_clip},
    {.name = "HardSwish", .alg = dnnl_eltwise_hardswish},
    {.name = "Swish", .alg = dnnl_eltwise_swish},
    {.name = "Gelu", .alg = dnnl_eltwise_gelu_erf},
    {.name = "GeluTanh", .alg = dnnl_eltwise_gelu_tanh},
    {.name = "HardSigmoid", .alg = dnnl_eltwise_linear, .then = dnnl_eltwise_clip, .then_alpha = 0.f, .then_beta = 1.f},
};

typedef struct mm_state mm_state; /* FusedMatMul's, below: the GEMM path of one-channel convs */

typedef struct fused_state {
    celer_win_attrs a;
    int nsp;           /* spatial dims: 1 to 3 */
    bool transposed;   /* a ConvTranspose: oneDNN's deconvolution */
    celer_shape w;     /* [M, C/group, k...]; transposed [C, M/group, k...] */
    int64_t m;         /* output channels */
    int x_block, y_block;
    bool has_sum;
    activation act, sum_act;
    float *bias;       /* M folded bias values, or NULL */
    void *packed;      /* folded weights in packed_md's layout (aligned, owned) */
    dnnl_memory_desc_t packed_md;
    mm_state *gemm;    /* a GEMM path (owned), else NULL: one input channel, W^T packed for im2col x W^T
                        * (gemm_conv_*), or with `patches` a ConvTranspose with kernel = stride (patch_*) */
    bool patches;
    mm_state *after;   /* the last activation when celer applies it after oneDNN's primitive (owned), or NULL */
} fused_state;

static celer_status gemm_conv_init(const celer_op_info *info, fused_state *s, const float *fw, const char *who);
static size_t gemm_conv_scratch(const fused_state *s, const celer_conv_geom *g);
static void gemm_conv_run(const fused_state *s, const celer_conv_geom *g, const float *x, float *y, void *scratch);
static celer_status patch_init(const celer_op_info *info, fused_state *s, const float *fw, const char *who);
static celer_status after_init(fused_state *s, const char *who);
static void after_run(const fused_state *s, float *y, int64_t n);
static size_t patch_scratch(const fused_state *s, const celer_conv_geom *g);
static void patch_run(const fused_state *s, const celer_conv_geom *g, const float *x, float *y, void *scratch);
static void mm_free(void *state);

typedef struct fused_local {
    celer_shape x; /* shape the primitive was built for; rank -1 until built */
    bool built;    /* false for empty tensors: nothing to compute */
    celer_conv_geom g;
    celer_dnnl_prim prim;
    void *weights; /* own copy when the primitive wanted another layout than packed_md */
    dnnl_memory_desc_t y_user;
    bool reorder_x, reorder_y;
    bool on_reference; /* counted in reference_convs */
    celer_dnnl_reorder rx, ry_in, ry_out;
    size_t x_bytes, y_bytes;
} fused_local;

static dnnl_format_tag_t plain_tag(int rank) {
    static const dnnl_format_tag_t t[] = {dnnl_abc, dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    return t[rank - 3];
}

static dnnl_format_tag_t blocked_tag(int rank, int block) {
    static const dnnl_format_tag_t b8[] = {dnnl_aBc8b, dnnl_aBcd8b, dnnl_aBcde8b};
    static const dnnl_format_tag_t b16[] = {dnnl_aBc16b, dnnl_aBcd16b, dnnl_aBcde16b};
    return block == 16 ? b16[rank - 3] : b8[rank - 3];
}

/* Layout of a data tensor of `rank` with channel block `block` (0: plain). */
static celer_status data_md(dnnl_memory_desc_t *md, const int64_t *dims, int rank, int block, const char *who) {
    return celer_dnnl_md(md, rank, dims, dnnl_f32, block ? blocked_tag(rank, block) : plain_tag(rank), who);
}

/* The activation named by attribute `slot` with its parameters in attributes `alpha`, `beta`. */
static celer_status parse_activation(const celer_op_info *info, const char *slot, const char *alpha, const char *beta,
                                     activation *out) {
    char who[160];
    const char *name = celer_onnx_attr_string(info->node, slot, NULL);
    memset(out, 0, sizeof *out);
    if (!name) return CELER_OK;
    size_t i = 0;
    while (i < CELER_ARRAY_LEN(conv_acts) && strcmp(conv_acts[i].name, name)) i++;
    if (i == CELER_ARRAY_LEN(conv_acts))
        return celer_errorf(CELER_ERR_INTERNAL, "%s: unknown fused activation '%s'",
                            celer_ops_who(info, who, sizeof who), name);
    out->op[0].alg = conv_acts[i].alg;
    out->op[0].alpha = celer_onnx_attr_float(info->node, alpha, 0.f);
    out->op[0].beta = celer_onnx_attr_float(info->node, beta, 0.f);
    out->n = 1;
    if (conv_acts[i].then) {
        out->op[1].alg = conv_acts[i].then;
        out->op[1].alpha = conv_acts[i].then_alpha;
        out->op[1].beta = conv_acts[i].then_beta;
        out->n = 2;
    }
    return CELER_OK;
}

/* Appends activation a's post-ops to po. */
static celer_status append_activation(dnnl_post_ops_t po, const activation *a, const char *who) {
    celer_status st = CELER_OK;
    for (int i = 0; i < a->n && !st; i++)
        st = celer_dnnl_check(dnnl_post_ops_append_eltwise(po, 1.f, a->op[i].alg, a->op[i].alpha, a->op[i].beta),
                              who, "post-ops");
    return st;
}

static void fused_free_state(void *p) {
    fused_state *s = p;
    if (!s) return;
    free(s->bias);
    free(s->packed);
    mm_free(s->gemm);
    mm_free(s->after);
    free(s);
}

/* Builds the convolution for geometry g: X and Y in their graph layouts when blocked and
 * `graph_data` (else oneDNN's choice), weights in `wmd` (NULL: oneDNN's choice); only its
 * layouts with `layouts_only`. */
static celer_status build_conv(const fused_state *s, const celer_conv_geom *g, const dnnl_memory_desc_t *wmd,
                               bool graph_data, bool layouts_only, celer_dnnl_prim *p, const char *who) {
    celer_dnnl_conv_dims cd;
    celer_dnnl_conv_dims_of(g, &cd);
    int64_t bd[1] = {g->m};
    dnnl_memory_desc_t xmd, wany, bmd, ymd;
    celer_status st;
    int xb = graph_data ? s->x_block : 0, yb = graph_data ? s->y_block : 0;
    if ((st = xb ? data_md(&xmd, cd.x, cd.rank, xb, who)
                 : celer_dnnl_md(&xmd, cd.rank, cd.x, dnnl_f32, dnnl_format_tag_any, who)) ||
        (st = yb ? data_md(&ymd, cd.y, cd.rank, yb, who)
                 : celer_dnnl_md(&ymd, cd.rank, cd.y, dnnl_f32, dnnl_format_tag_any, who)) ||
        (!wmd && (st = celer_dnnl_md(&wany, cd.w_rank, cd.w, dnnl_f32, dnnl_format_tag_any, who))) ||
        (s->bias && (st = celer_dnnl_md(&bmd, 1, bd, dnnl_f32, dnnl_a, who))))
        return st;
    /* the two descriptors have the same head (oneDNN: "deconvolution_desc_t is convolution_desc_t") */
    dnnl_convolution_desc_t d;
    if ((st = celer_dnnl_check(
             s->transposed
                 ? dnnl_dilated_deconvolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_deconvolution_direct,
                                                                &xmd, wmd ? wmd : &wany, s->bias ? &bmd : NULL, &ymd,
                                                                cd.strides, cd.dil, cd.pad_l, cd.pad_r)
                 : dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_inference, dnnl_convolution_direct,
                                                              &xmd, wmd ? wmd : &wany, s->bias ? &bmd : NULL, &ymd,
                                                              cd.strides, cd.dil, cd.pad_l, cd.pad_r),
             who, s->transposed ? "deconvolution descriptor" : "convolution descriptor")))
        return st;
    dnnl_post_ops_t po = NULL;
    if ((st = celer_dnnl_check(dnnl_post_ops_create(&po), who, "post-ops"))) return st;
    st = append_activation(po, &s->act, who);
    if (!st && s->has_sum) st = celer_dnnl_check(dnnl_post_ops_append_sum(po, 1.f), who, "post-ops");
    if (!st) st = append_activation(po, &s->sum_act, who);
    if (!st) st = celer_dnnl_prim_create(p, &d, s->bias != NULL, po, layouts_only, who);
    dnnl_post_ops_destroy(po);
    return st;
}

/* A constant input of the node that must be a float vector of m values (NULL when omitted). */
static celer_status vector_input(const celer_op_info *info, int slot, int64_t m, const float **out) {
    char who[160];
    *out = NULL;
    if (slot >= info->n_inputs || info->input_types[slot] == CELER_UNDEFINED) return CELER_OK;
    const celer_tensor *t = info->input_constants[slot];
    if (!t || t->dtype != CELER_FLOAT || celer_shape_numel(&t->shape) != m)
        return celer_errorf(CELER_ERR_SHAPE, "%s: input %d must be a constant float vector of %lld values",
                            celer_ops_who(info, who, sizeof who), slot, (long long)m);
    *out = t->data;
    return CELER_OK;
}

/* Folds BN (when given) into copies of W and B: w' = w * g, b' = (b - mean) * g + beta with
 * g = scale / sqrt(var + eps). Returns the plain folded weights (malloc, caller frees) and sets
 * s->bias. */
static celer_status fold_weights(const celer_op_info *info, fused_state *s, float **out) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    const celer_tensor *w = info->input_constants[FC_W];
    int64_t m = s->m, per = m ? celer_shape_numel(&w->shape) / m : 0;
    const float *b, *scale, *beta, *mean, *var;
    celer_status st;
    if ((st = vector_input(info, FC_B, m, &b)) || (st = vector_input(info, FC_BN_SCALE, m, &scale)) ||
        (st = vector_input(info, FC_BN_BIAS, m, &beta)) || (st = vector_input(info, FC_BN_MEAN, m, &mean)) ||
        (st = vector_input(info, FC_BN_VAR, m, &var)))
        return st;
    bool bn = scale && beta && mean && var;
    if ((!bn || s->transposed) && (scale || beta || mean || var)) /* transposed: W's rows are not channels */
        return celer_errorf(CELER_ERR_INTERNAL, "%s: partial or transposed BatchNormalization parameters", who);
    float eps = celer_onnx_attr_float(info->node, FUSED_ATTR_BN_EPSILON, 1e-5f);
    float *fw = malloc(sizeof(float) * (size_t)(m * per + 1));
    if (!fw) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory folding weights", who);
    if (b || bn) {
        if (!(s->bias = malloc(sizeof(float) * (size_t)(m + 1)))) {
            free(fw);
            return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory folding weights", who);
        }
    }
    const float *src = w->data;
    for (int64_t o = 0; o < m; o++) {
        double gain = bn ? scale[o] / sqrt((double)var[o] + (double)eps) : 1.0;
        for (int64_t i = 0; i < per; i++) fw[o * per + i] = (float)(src[o * per + i] * gain);
        if (s->bias)
            s->bias[o] = (float)(((b ? b[o] : 0.0) - (bn ? mean[o] : 0.0)) * gain + (bn ? beta[o] : 0.0));
    }
    *out = fw;
    return CELER_OK;
}

/* The weight descriptor of W as the file has it: dims ([G,] M/G, C/G, k...) in that order, or
 * for a ConvTranspose in ([G,] C/G, M/G, k...) order (oneDNN's "io"). */
static celer_status plain_weights_md(const fused_state *s, dnnl_memory_desc_t *md, const char *who) {
    static const dnnl_format_tag_t grouped[] = {dnnl_abcd, dnnl_abcde, dnnl_abcdef};
    static const dnnl_format_tag_t io[] = {dnnl_bac, dnnl_bacd, dnnl_bacde};
    static const dnnl_format_tag_t gio[] = {dnnl_acbd, dnnl_acbde, dnnl_acbdef};
    int64_t wd[6], g = s->a.group;
    int wr = 0;
    if (g > 1) wd[wr++] = g;
    wd[wr++] = s->m / g;
    wd[wr++] = s->transposed ? s->w.dims[0] / g : s->w.dims[1];
    for (int i = 2; i < s->w.rank; i++) wd[wr++] = s->w.dims[i];
    dnnl_format_tag_t tag = s->transposed ? (g > 1 ? gio : io)[s->nsp - 1] : g > 1 ? grouped[s->nsp - 1] : plain_tag(wr);
    return celer_dnnl_md(md, wr, wd, dnnl_f32, tag, who);
}

/* Copies `from` (layout fmd) into a new aligned buffer of layout tmd. */
static celer_status reorder_copy(const void *from, const dnnl_memory_desc_t *fmd, const dnnl_memory_desc_t *tmd,
                                 void **out, const char *who) {
    size_t bytes = dnnl_memory_desc_get_size(tmd);
    void *buf = aligned_alloc(64, celer_ref_align64(bytes ? bytes : 1));
    if (!buf) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory packing weights", who);
    celer_dnnl_reorder r;
    celer_status st = celer_dnnl_reorder_create(&r, fmd, tmd, who);
    if (!st) st = celer_dnnl_reorder_run(&r, from, buf, who);
    celer_dnnl_reorder_destroy(&r);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    return CELER_OK;
}

/* Weights packing at load: the layout oneDNN wants depends on channels, kernel and ISA, hardly
 * on the image size, which is not known yet; a representative input (28 pixels a side, or the
 * kernel's extent) asks for it. A run with other shapes that wants another layout repacks into
 * its context (see fused_reshape). */
static celer_status pack_weights(fused_state *s, const float *fw, const char *who) {
    dnnl_memory_desc_t plain;
    celer_status st = plain_weights_md(s, &plain, who);
    if (st) return st;
    celer_shape x = {.rank = s->w.rank, .dims = {1, s->transposed ? s->w.dims[0] : s->w.dims[1] * s->a.group}};
    for (int i = 0; i < s->nsp; i++) {
        int64_t dil = i < s->a.n_dilations ? s->a.dilations[i] : 1;
        int64_t stride = i < s->a.n_strides ? s->a.strides[i] : 1;
        x.dims[2 + i] = CELER_MAX((s->w.dims[2 + i] - 1) * dil + 1, 28 * stride);
    }
    celer_conv_geom g;
    celer_shape y;
    celer_dnnl_prim p = {0};
    const dnnl_memory_desc_t *want = &plain;
    celer_status guess = celer_conv_geom_make(who, &s->a, &x, &s->w, s->transposed, &g, &y);
    if (!guess) guess = build_conv(s, &g, NULL, true, true, &p, who);
    if (!guess) want = &p.weights_md;
    st = reorder_copy(fw, &plain, want, &s->packed, who);
    s->packed_md = *want;
    return st; /* (a failed guess only means plain weights: its message is not kept) */
}

static celer_status fused_init(const celer_op_info *info, void **state) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    const celer_tensor *w = info->n_inputs == FC_INPUTS ? info->input_constants[FC_W] : NULL;
    if (!w || w->dtype != CELER_FLOAT || w->shape.rank < 3 || w->shape.rank > 5)
        return celer_errorf(CELER_ERR_INTERNAL, "%s: weights must be a constant float tensor of rank 3 to 5", who);
    fused_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    s->w = w->shape;
    s->nsp = w->shape.rank - 2;
    s->transposed = celer_onnx_attr_int(info->node, FUSED_ATTR_TRANSPOSED, 0) != 0;
    s->has_sum = info->input_types[FC_SUM] != CELER_UNDEFINED;
    s->x_block = (int)celer_onnx_attr_int(info->node, FUSED_ATTR_X_BLOCKED, 0);
    s->y_block = (int)celer_onnx_attr_int(info->node, FUSED_ATTR_Y_BLOCKED, 0);
    float *fw = NULL;
    celer_status st = celer_win_attrs_parse(info, &s->a);
    if (!st && (s->a.group < 1 || w->shape.dims[0] % s->a.group))
        st = celer_errorf(CELER_ERR_SHAPE, "%s: %lld %s channels do not split into %lld groups", who,
                          (long long)w->shape.dims[0], s->transposed ? "input" : "output", (long long)s->a.group);
    s->m = s->transposed ? w->shape.dims[1] * s->a.group : w->shape.dims[0];
    if (!st)
        st = parse_activation(info, FUSED_ATTR_ACTIVATION, FUSED_ATTR_ACTIVATION_ALPHA, FUSED_ATTR_ACTIVATION_BETA,
                              &s->act);
    if (!st)
        st = parse_activation(info, FUSED_ATTR_SUM_ACTIVATION, FUSED_ATTR_SUM_ACTIVATION_ALPHA,
                              FUSED_ATTR_SUM_ACTIVATION_BETA, &s->sum_act);
    if (!st) st = fold_weights(info, s, &fw);
    if (!st) st = gemm_conv_init(info, s, fw, who);
    if (!st && !s->gemm) st = patch_init(info, s, fw, who);
    if (!st && !s->gemm) st = after_init(s, who);
    if (!st && !s->gemm) st = pack_weights(s, fw, who);
    free(fw);
    if (st) {
        fused_free_state(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

static void local_reset(fused_local *l) {
    celer_dnnl_prim_destroy(&l->prim);
    celer_dnnl_reorder_destroy(&l->rx);
    celer_dnnl_reorder_destroy(&l->ry_in);
    celer_dnnl_reorder_destroy(&l->ry_out);
    free(l->weights);
    l->weights = NULL;
    if (l->on_reference) atomic_fetch_sub(&reference_convs, 1);
    l->built = l->reorder_x = l->reorder_y = l->on_reference = false;
    l->x_bytes = l->y_bytes = 0;
    l->x.rank = -1;
}

static void fused_free_local(void *p) {
    fused_local *l = p;
    if (!l) return;
    local_reset(l);
    free(l);
}

static bool on_reference(const celer_dnnl_prim *p) { return !strncmp(p->impl, "ref", 3); }

/* The layouts a context's convolution is tried with, in order: the first that oneDNN runs with
 * its own code (not a reference implementation, which accepts any layout and so never fails, but
 * loops in scalar code: a conv1d 32 -> 64 channels over 250 steps took 137 ms at 2 threads
 * instead of 0.03) is kept; if all end on one, the last that could be built. */
static const struct {
    bool packed_weights; /* the layout packed at load, else oneDNN's choice (a repacked copy) */
    bool graph_data;     /* X and Y blocked as the graph has them, else oneDNN's choice (reorders) */
} attempts[] = {{true, true}, {false, true}, {false, false}};

/* Builds this context's primitive and reorders for input shape x. */
static celer_status local_build(const fused_state *s, fused_local *l, const celer_shape *x, const char *who) {
    celer_status st = CELER_ERR_INTERNAL;
    for (size_t i = 0; i < CELER_ARRAY_LEN(attempts); i++) {
        if (!attempts[i].graph_data && !s->x_block && !s->y_block) continue; /* same as the one before */
        celer_dnnl_prim p;
        celer_status got = build_conv(s, &l->g, attempts[i].packed_weights ? &s->packed_md : NULL,
                                      attempts[i].graph_data, false, &p, who);
        if (got && !st) continue; /* keep the reference one built before */
        if (got) {
            st = got;
            continue;
        }
        celer_dnnl_prim_destroy(&l->prim);
        l->prim = p;
        st = CELER_OK;
        if (!on_reference(&p)) break;
    }
    if (st) return st;
    if (!dnnl_memory_desc_equal(&l->prim.weights_md, &s->packed_md) &&
        (st = reorder_copy(s->packed, &s->packed_md, &l->prim.weights_md, &l->weights, who)))
        return st;
    if (on_reference(&l->prim)) {
        l->on_reference = true;
        atomic_fetch_add(&reference_convs, 1);
    }
    int rank = s->nsp + 2;
    int64_t yd[5] = {l->g.n, l->g.m};
    for (int i = 0; i < s->nsp; i++) yd[2 + i] = l->g.win.out[3 - s->nsp + i];
    dnnl_memory_desc_t x_user;
    if ((st = data_md(&x_user, x->dims, rank, s->x_block, who)) ||
        (st = data_md(&l->y_user, yd, rank, s->y_block, who)))
        return st;
    if (!dnnl_memory_desc_equal(&x_user, &l->prim.src_md)) {
        l->reorder_x = true;
        l->x_bytes = dnnl_memory_desc_get_size(&l->prim.src_md);
        if ((st = celer_dnnl_reorder_create(&l->rx, &x_user, &l->prim.src_md, who))) return st;
    }
    if (!dnnl_memory_desc_equal(&l->y_user, &l->prim.dst_md)) {
        l->reorder_y = true;
        l->y_bytes = dnnl_memory_desc_get_size(&l->prim.dst_md);
        if ((st = celer_dnnl_reorder_create(&l->ry_out, &l->prim.dst_md, &l->y_user, who)) ||
            (s->has_sum && (st = celer_dnnl_reorder_create(&l->ry_in, &l->y_user, &l->prim.dst_md, who))))
            return st;
    }
    l->built = true;
    return CELER_OK;
}

/* Scratch: oneDNN's scratchpad, then X and Y in the primitive's layouts when they differ. */
static void carve(const fused_local *l, void *base, void **pad, void **xb, void **yb, size_t *total) {
    celer_ops_carve cv = {.base = base};
    *pad = celer_ops_carve_elems(&cv, (int64_t)l->prim.scratch_bytes, 1);
    *xb = celer_ops_carve_elems(&cv, (int64_t)l->x_bytes, 1);
    *yb = celer_ops_carve_elems(&cv, (int64_t)l->y_bytes, 1);
    *total = cv.off;
}

/* Channels c padded up to a multiple of block (0: plain, c). */
static int64_t padded_channels(int64_t c, int block) { return block ? (c + block - 1) / block * block : c; }

static celer_status fused_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const fused_state *s = call->state;
    const celer_tensor *x = call->in[FC_X];
    const celer_tensor *sum = s->has_sum ? call->in[FC_SUM] : NULL;
    if (!x || x->dtype != CELER_FLOAT || (sum && sum->dtype != CELER_FLOAT))
        return celer_errorf(CELER_ERR_DTYPE, "%s: X and the residual must be float", who);
    fused_local *l = *call->local;
    if (!l) {
        if (!(l = calloc(1, sizeof *l))) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
        l->x.rank = -1;
        *call->local = l;
    }
    if (!celer_shape_equal(&l->x, &x->shape)) {
        local_reset(l);
        /* a blocked X may carry its channels padded up to the block: W has the true count */
        celer_shape xl = x->shape, y;
        int64_t c = s->transposed ? s->w.dims[0] : s->w.dims[1] * s->a.group;
        if (s->x_block && xl.rank > 1 && xl.dims[1] != c && xl.dims[1] == padded_channels(c, s->x_block))
            xl.dims[1] = c;
        celer_status st = celer_conv_geom_make(who, &s->a, &xl, &s->w, s->transposed, &l->g, &y);
        if (st) return st;
        if (s->gemm) l->built = celer_shape_numel(&xl) && celer_shape_numel(&y);
        else if (celer_shape_numel(&xl) && celer_shape_numel(&y) && (st = local_build(s, l, &xl, who))) return st;
        l->x = x->shape;
    }
    celer_shape y = {.rank = l->x.rank, .dims = {l->g.n, padded_channels(l->g.m, s->y_block)}};
    for (int i = 0; i < s->nsp; i++) y.dims[2 + i] = l->g.win.out[3 - s->nsp + i];
    if (sum && !celer_shape_equal(&sum->shape, &y)) {
        char b1[160], b2[160];
        return celer_errorf(CELER_ERR_SHAPE, "%s: the fused residual Add needs equal shapes: conv output %s, "
                            "residual %s (CELER_OPTIMIZE=0 runs the graph unfused)", who,
                            celer_shape_str(&y, b1, sizeof b1), celer_shape_str(&sum->shape, b2, sizeof b2));
    }
    call->out[0].shape = y;
    void *pad, *xb, *yb;
    if (s->gemm)
        call->scratch_size = !l->built ? 0 : s->patches ? patch_scratch(s, &l->g) : gemm_conv_scratch(s, &l->g);
    else carve(l, NULL, &pad, &xb, &yb, &call->scratch_size);
    return CELER_OK;
}

static celer_status fused_run(celer_kernel_call *call) {
    const fused_state *s = call->state;
    const fused_local *l = *call->local;
    if (!l->built) return CELER_OK;
    if (s->gemm) {
        (s->patches ? patch_run : gemm_conv_run)(s, &l->g, call->in[FC_X]->data, call->out[0].data, call->scratch);
        return CELER_OK;
    }
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *x = call->in[FC_X];
    const celer_tensor *sum = s->has_sum ? call->in[FC_SUM] : NULL;
    void *pad, *xb, *yb, *y = call->out[0].data;
    size_t total;
    carve(l, call->scratch, &pad, &xb, &yb, &total);
    const void *src = x->data;
    void *dst = y;
    celer_status st;
    if (l->reorder_x) {
        if ((st = celer_dnnl_reorder_run(&l->rx, x->data, xb, who))) return st;
        src = xb;
    }
    if (l->reorder_y) {
        dst = yb;
        if (sum && (st = celer_dnnl_reorder_run(&l->ry_in, sum->data, yb, who))) return st;
    } else if (sum && sum->data != y) { /* not in place: start from a copy of the residual */
        memcpy(y, sum->data, dnnl_memory_desc_get_size(&l->y_user));
    }
    if ((st = celer_dnnl_prim_run(&l->prim, src, l->weights ? l->weights : s->packed, s->bias, dst, pad, who)))
        return st;
    if (l->reorder_y && (st = celer_dnnl_reorder_run(&l->ry_out, yb, y, who))) return st;
    if (s->after) after_run(s, y, (int64_t)(dnnl_memory_desc_get_size(&l->y_user) / sizeof(float)));
    return CELER_OK;
}

/* ---- BlockedPool: MaxPool / AveragePool through oneDNN's pooling on blocked data ---- */

typedef struct pool_state {
    celer_win_attrs a;
    bool max, include_pad;
    int nsp; /* 1 or 2 */
    int x_block, y_block;
} pool_state;

typedef struct pool_local {
    celer_shape x; /* rank -1 until built */
    celer_shape y;
    bool built;
    celer_dnnl_prim prim;
} pool_local;

static celer_status pool_init(const celer_op_info *info, void **state) {
    char who[160];
    pool_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", celer_ops_who(info, who, sizeof who));
    celer_status st = celer_win_attrs_parse(info, &s->a);
    s->max = !strcmp(celer_onnx_attr_string(info->node, FUSED_ATTR_POOL_MODE, FUSED_POOL_MAX), FUSED_POOL_MAX);
    s->include_pad = celer_onnx_attr_int(info->node, "count_include_pad", 0) == 1;
    s->x_block = (int)celer_onnx_attr_int(info->node, FUSED_ATTR_X_BLOCKED, 0);
    s->y_block = (int)celer_onnx_attr_int(info->node, FUSED_ATTR_Y_BLOCKED, 0);
    s->nsp = s->a.n_kernel;
    if (!st && s->nsp != 1 && s->nsp != 2)
        st = celer_errorf(CELER_ERR_INTERNAL, "%s: a 1-D or 2-D kernel_shape is required",
                          celer_ops_who(info, who, sizeof who));
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

static void pool_free_local(void *p) {
    pool_local *l = p;
    if (!l) return;
    celer_dnnl_prim_destroy(&l->prim);
    free(l);
}

static celer_status pool_build(const pool_state *s, pool_local *l, const celer_window *w, const char *who) {
    dnnl_memory_desc_t xmd, ymd;
    dnnl_dims_t strides, kernel, dil, pl, pr;
    for (int i = 0, a = 3 - s->nsp; i < s->nsp; i++, a++) { /* the window right-aligns its dims */
        strides[i] = w->stride[a];
        kernel[i] = w->k[a];
        dil[i] = w->dil[a] - 1;
        pl[i] = w->pad_l[a];
        /* right padding as oneDNN counts it: whatever makes its output size ours (ceil_mode) */
        pr[i] = (w->out[a] - 1) * w->stride[a] + (w->k[a] - 1) * w->dil[a] + 1 - w->in[a] - pl[i];
    }
    celer_status st;
    if ((st = data_md(&xmd, l->x.dims, s->nsp + 2, s->x_block, who)) ||
        (st = data_md(&ymd, l->y.dims, s->nsp + 2, s->y_block, who)))
        return st;
    dnnl_alg_kind_t alg = s->max ? dnnl_pooling_max
                          : s->include_pad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t d;
    if ((st = celer_dnnl_check(dnnl_pooling_v2_forward_desc_init(&d, dnnl_forward_inference, alg, &xmd, &ymd,
                                                                 strides, kernel, dil, pl, pr),
                               who, "pooling descriptor")))
        return st;
    return celer_dnnl_prim_create(&l->prim, &d, false, NULL, false, who);
}

static celer_status pool_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const pool_state *s = call->state;
    const celer_tensor *x = call->in[0];
    if (x->dtype != CELER_FLOAT || x->shape.rank != s->nsp + 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: X must be a float tensor of rank %d", who, s->nsp + 2);
    pool_local *l = *call->local;
    if (!l) {
        if (!(l = calloc(1, sizeof *l))) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
        l->x.rank = -1;
        *call->local = l;
    }
    if (!celer_shape_equal(&l->x, &x->shape)) {
        celer_dnnl_prim_destroy(&l->prim);
        l->built = false;
        l->x.rank = -1;
        celer_window w;
        celer_status st = celer_window_forward(who, &s->a, s->nsp, x->shape.dims + 2, s->a.kernel, &w);
        if (st) return st;
        l->y = (celer_shape){s->nsp + 2, {x->shape.dims[0], x->shape.dims[1]}};
        for (int i = 0; i < s->nsp; i++) l->y.dims[2 + i] = w.out[3 - s->nsp + i];
        l->x = x->shape;
        if (celer_shape_numel(&x->shape) && celer_shape_numel(&l->y)) {
            if ((st = pool_build(s, l, &w, who))) {
                l->x.rank = -1;
                return st;
            }
            l->built = true;
        }
    }
    call->out[0].shape = l->y;
    call->scratch_size = l->built ? l->prim.scratch_bytes : 0;
    return CELER_OK;
}

static celer_status pool_run(celer_kernel_call *call) {
    const pool_local *l = *call->local;
    if (!l->built) return CELER_OK;
    char who[160];
    return celer_dnnl_prim_run(&l->prim, call->in[0]->data, NULL, NULL, call->out[0].data, call->scratch,
                               celer_ops_who(call->info, who, sizeof who));
}

/* ---- FusedMatMul and Gelu ---- */

/* Activations FusedMatMul applies to its output in one pass after the product. */
typedef enum mm_act {
    MM_NONE, MM_RELU, MM_LEAKY, MM_CLIP, MM_SIGMOID, MM_TANH, MM_GELU, MM_HARDSWISH, MM_HARDSIGMOID, MM_SWISH
} mm_act;

static const struct {
    const char *name;
    mm_act act;
} mm_acts[] = {
    {"Relu", MM_RELU}, {"LeakyRelu", MM_LEAKY}, {"Clip", MM_CLIP}, {"Sigmoid", MM_SIGMOID},
    {"Tanh", MM_TANH}, {"Gelu", MM_GELU}, {"HardSwish", MM_HARDSWISH}, {"HardSigmoid", MM_HARDSIGMOID},
    {"Swish", MM_SWISH},
};

struct mm_state {
    bool trans_b;
    int64_t k, n; /* B is [K, N], or [N, K] with trans_b */
    mm_act act;
    float alpha, beta;
    celer_sgemm_b packed; /* B and the bias, packed at init (owned) */
};

/* GELU, erf form: x/2 (1 + erf(x / sqrt 2)). Also built for AVX2 + FMA, picked at load when the
 * CPU has them: the loop is mostly polynomial evaluations (twice as wide, fused). */
CELER_VECTOR_CLONES
static void gelu_f32(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = celer_fast_gelu(x[i]);
}

enum { SWISH_CHUNK = 256 }; /* values whose Swish denominators wait on the stack for their divides */

/* The activation over rows x n values of Y (row stride ldy), in place: one call per GEMM tile.
 * No libm call per element (tanh on vmath's too). */
CELER_VECTOR_CLONES
static void activate(const mm_state *s, float *y, int64_t ldy, int64_t rows, int64_t n) {
    float a = s->alpha, b = s->beta;
    for (int64_t r = 0; r < rows; r++, y += ldy) {
        switch (s->act) {
        case MM_NONE: break;
        case MM_RELU: for (int64_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0.0f : y[i]; break;
        case MM_LEAKY: for (int64_t i = 0; i < n; i++) y[i] = y[i] < 0 ? y[i] * a : y[i]; break;
        case MM_CLIP: for (int64_t i = 0; i < n; i++) y[i] = y[i] < a ? a : y[i] > b ? b : y[i]; break;
        case MM_SIGMOID: for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + celer_fast_expf(-y[i])); break;
        case MM_TANH: for (int64_t i = 0; i < n; i++) y[i] = celer_fast_tanhf(y[i]); break;
        case MM_GELU: for (int64_t i = 0; i < n; i++) y[i] = celer_fast_gelu(y[i]); break;
        case MM_HARDSWISH: /* x clip(x / 6 + 1/2, 0, 1); selects, not fminf/fmaxf: they vectorize */
            for (int64_t i = 0; i < n; i++) {
                float t = y[i] * (1.0f / 6.0f) + 0.5f;
                y[i] *= t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            }
            break;
        case MM_HARDSIGMOID:
            for (int64_t i = 0; i < n; i++) {
                float t = a * y[i] + b;
                y[i] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            }
            break;
        case MM_SWISH: /* x / (1 + e^-ax): the denominators in a chunk, then the divides */
            for (int64_t i0 = 0; i0 < n; i0 += SWISH_CHUNK) {
                int64_t m = n - i0 < SWISH_CHUNK ? n - i0 : SWISH_CHUNK;
                float d[SWISH_CHUNK], m1;
                for (int64_t i = 0; i < m; i++) {
                    float t = -a * y[i0 + i];
                    t = t < -80.0f ? -80.0f : t; /* two selects GCC makes min and max */
                    t = t > 80.0f ? 80.0f : t;
                    d[i] = 1.0f + celer_bounded_expf(t, &m1);
                }
                celer_ops_div_by(y + i0, d, m);
            }
            break;
        }
    }
}

static celer_status mm_init(const celer_op_info *info, void **state) {
    char who[160];
    celer_ops_who(info, who, sizeof who);
    const celer_tensor *b = info->input_constants[1];
    const celer_tensor *bias = info->n_inputs > 2 ? info->input_constants[2] : NULL;
    mm_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    s->trans_b = celer_onnx_attr_int(info->node, "transB", 0) != 0;
    celer_status st = CELER_OK;
    if (!b || b->dtype != CELER_FLOAT || b->shape.rank != 2)
        st = celer_errorf(CELER_ERR_INTERNAL, "%s: B must be a constant float matrix", who);
    else {
        s->k = b->shape.dims[s->trans_b ? 1 : 0];
        s->n = b->shape.dims[s->trans_b ? 0 : 1];
    }
    if (!st && info->n_inputs > 2 && info->input_types[2] != CELER_UNDEFINED &&
        (!bias || bias->dtype != CELER_FLOAT || celer_shape_numel(&bias->shape) != s->n))
        st = celer_errorf(CELER_ERR_INTERNAL, "%s: the bias must be a constant float vector of %lld values", who,
                          (long long)s->n);
    const char *act = celer_onnx_attr_string(info->node, FUSED_ATTR_ACTIVATION, NULL);
    if (!st && s->k <= INT32_MAX && s->n <= INT32_MAX) /* larger: refused by reshape, as before */
        st = celer_sgemm_pack(who, b->data, s->k, s->n, s->trans_b, bias ? bias->data : NULL, &s->packed);
    if (!st && act) {
        size_t i = 0;
        while (i < CELER_ARRAY_LEN(mm_acts) && strcmp(mm_acts[i].name, act)) i++;
        if (i == CELER_ARRAY_LEN(mm_acts))
            st = celer_errorf(CELER_ERR_INTERNAL, "%s: unknown fused activation '%s'", who, act);
        else
            s->act = mm_acts[i].act;
        s->alpha = celer_onnx_attr_float(info->node, FUSED_ATTR_ACTIVATION_ALPHA, 0.f);
        s->beta = celer_onnx_attr_float(info->node, FUSED_ATTR_ACTIVATION_BETA, 0.f);
    }
    if (st) {
        celer_sgemm_b_free(&s->packed);
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

/* Frees the state of mm_init and its packed B. */
static void mm_free(void *state) {
    mm_state *s = state;
    if (s) celer_sgemm_b_free(&s->packed);
    free(s);
}

static celer_status mm_reshape(celer_kernel_call *call) {
    char who[160], b1[160];
    celer_ops_who(call->info, who, sizeof who);
    const mm_state *s = call->state;
    const celer_tensor *a = call->in[0];
    if (a->dtype != CELER_FLOAT) return celer_errorf(CELER_ERR_DTYPE, "%s: A must be float", who);
    if (a->shape.rank < 1 || a->shape.dims[a->shape.rank - 1] != s->k || (s->trans_b && a->shape.rank != 2))
        return celer_errorf(CELER_ERR_SHAPE, "%s: A %s does not match B's K=%lld", who,
                            celer_shape_str(&a->shape, b1, sizeof b1), (long long)s->k);
    celer_shape y = a->shape;
    y.dims[y.rank - 1] = s->n;
    if (!s->trans_b && a->shape.rank == 1) y.rank = 1; /* MatMul of a vector: [K] x [K,N] -> [N] */
    int64_t rows = s->k ? celer_shape_numel(&a->shape) / s->k : 0;
    if (rows > INT32_MAX || s->n > INT32_MAX || s->k > INT32_MAX)
        return celer_errorf(CELER_ERR_LIMIT, "%s: matrix dimension above 2^31-1", who);
    call->out[0].shape = y;
    return CELER_OK;
}

/* The activation of each finished tile of Y (celer_sgemm_epilogue; ctx is the mm_state). */
static void mm_epilogue(const void *ctx, float *y, int64_t ldy, int64_t rows, int64_t n) {
    activate(ctx, y, ldy, rows, n);
}

static celer_status mm_run(celer_kernel_call *call) {
    const mm_state *s = call->state;
    int64_t m = s->k ? celer_shape_numel(&call->in[0]->shape) / s->k : 0;
    if (!m) m = celer_shape_numel(&call->out[0].shape) / (s->n ? s->n : 1); /* K = 0: Y = bias */
    celer_sgemm_run(&s->packed, m, call->in[0]->data, s->k, call->out[0].data, s->n, false,
                    s->act == MM_NONE ? NULL : mm_epilogue, s);
    return CELER_OK;
}

static celer_status gelu_run(celer_kernel_call *call) {
    gelu_f32(call->in[0]->data, call->out[0].data, celer_shape_numel(&call->in[0]->shape));
    return CELER_OK;
}

/* ---- FusedConv over one input channel as a GEMM ----
 * A 1-D convolution of one input channel (the first layer of a raw-audio model: 1 -> 32 channels,
 * kernel 80, stride 4 over 16000 samples) has no oneDNN kernel writing the blocked layout: it
 * ran on brgconv in nwc plus a reorder (0.55 ms at 1 thread), its gemm convolution with the
 * activation post-op took 0.95. As ONNX Runtime does, it is im2col rows [T, K] (each a copy of K
 * samples) times W^T [K, M] packed at load (sgemm.h), bias and activation in the GEMM's epilogue,
 * then the [T, M] result laid out as Y wants. Taken for a plain X, group 1, no dilation, no
 * residual, and the activations FusedMatMul's epilogue has. */

/* A new GEMM state with the node's activation when FusedMatMul's epilogue has it (*out NULL when
 * it does not: the conv stays on oneDNN). CELER_ERR_NOMEM when it cannot be allocated. */
static celer_status gemm_state(const celer_op_info *info, const char *who, mm_state **out) {
    const char *act = celer_onnx_attr_string(info->node, FUSED_ATTR_ACTIVATION, NULL);
    size_t i = 0;
    *out = NULL;
    while (act && i < CELER_ARRAY_LEN(mm_acts) && strcmp(mm_acts[i].name, act)) i++;
    if (act && i == CELER_ARRAY_LEN(mm_acts)) return CELER_OK;
    mm_state *g = calloc(1, sizeof *g);
    if (!g) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    g->act = act ? mm_acts[i].act : MM_NONE;
    g->alpha = celer_onnx_attr_float(info->node, FUSED_ATTR_ACTIVATION_ALPHA, 0.f);
    g->beta = celer_onnx_attr_float(info->node, FUSED_ATTR_ACTIVATION_BETA, 0.f);
    *out = g;
    return CELER_OK;
}

/* Sets s->gemm when the conv qualifies (else leaves it NULL): fw is W folded, [M, K]. */
static celer_status gemm_conv_init(const celer_op_info *info, fused_state *s, const float *fw, const char *who) {
    bool dilated = s->a.n_dilations > 0 && s->a.dilations[0] != 1;
    if (s->nsp != 1 || s->transposed || s->a.group != 1 || s->w.dims[1] != 1 || s->has_sum || s->sum_act.n ||
        dilated || s->x_block) /* a blocked X (one channel padded to the block): oneDNN's */
        return CELER_OK;
    mm_state *g;
    celer_status st = gemm_state(info, who, &g);
    if (st || !g) return st;
    g->trans_b = true;
    g->k = s->w.dims[2];
    g->n = s->m;
    if ((st = celer_sgemm_pack(who, fw, g->k, g->n, true, s->bias, &g->packed))) {
        free(g);
        return st;
    }
    s->gemm = g;
    return CELER_OK;
}

/* Elements a thread should copy before the copies around a GEMM path are split (cheap work). */
#define COPY_PAR_ELEMS 32768

/* Scratch of one sample: X padded (the samples the windows cover), im2col rows, the [T, M] product. */
typedef struct gemm_conv_bufs {
    float *xp, *a, *y;
    int64_t len; /* samples of xp */
} gemm_conv_bufs;

static size_t gemm_conv_carve(const fused_state *s, const celer_conv_geom *g, void *base, gemm_conv_bufs *b) {
    const celer_window *w = &g->win;
    int64_t t = w->out[2];
    celer_ops_carve cv = {.base = base};
    b->len = (t - 1) * w->stride[2] + s->gemm->k;
    b->xp = celer_ops_carve_elems(&cv, b->len, sizeof(float));
    b->a = celer_ops_carve_elems(&cv, t * s->gemm->k, sizeof(float));
    b->y = celer_ops_carve_elems(&cv, t * s->m, sizeof(float));
    return cv.off;
}

static size_t gemm_conv_scratch(const fused_state *s, const celer_conv_geom *g) {
    gemm_conv_bufs b;
    return gemm_conv_carve(s, g, NULL, &b);
}

/* The m channel values v of pixel o into Y of `plane` pixels a channel: plain (b = 1) or blocked
 * by b ([mp/b][plane][b]), the padding channels up to mp 0. */
static void put_pixel(float *y, int64_t plane, int64_t o, const float *v, int64_t m, int64_t mp, int64_t b) {
    if (b == 1) {
        for (int64_t c = 0; c < m; c++) y[c * plane + o] = v[c];
        return;
    }
    for (int64_t c0 = 0; c0 < mp; c0 += b) {
        float *yo = y + ((c0 / b) * plane + o) * b;
        int64_t real = m - c0 < b ? m - c0 : b;
        memcpy(yo, v + c0, sizeof(float) * (size_t)real);
        for (int64_t c = real; c < b; c++) yo[c] = 0.0f;
    }
}

typedef struct gemm_conv_job {
    const fused_state *s;
    gemm_conv_bufs buf;
    int64_t t, stride;
    float *yn; /* one sample of Y */
} gemm_conv_job;

/* Rows [lo, hi) of im2col: row r is the K samples its window covers in the padded X. */
static void gemm_conv_rows(void *ctx, size_t lo, size_t hi) {
    const gemm_conv_job *j = ctx;
    int64_t k = j->s->gemm->k;
    for (int64_t r = (int64_t)lo; r < (int64_t)hi; r++)
        memcpy(j->buf.a + r * k, j->buf.xp + r * j->stride, sizeof(float) * (size_t)k);
}

/* Rows [lo, hi) of the [T, M] product into Y: [mp/b][T][b] (plain: b = 1), padding channels 0. */
static void gemm_conv_scatter(void *ctx, size_t lo, size_t hi) {
    const gemm_conv_job *j = ctx;
    int64_t m = j->s->m, b = j->s->y_block ? j->s->y_block : 1, mp = padded_channels(m, j->s->y_block);
    for (int64_t r = (int64_t)lo; r < (int64_t)hi; r++) {
        put_pixel(j->yn, j->t, r, j->buf.y + r * m, m, mp, b);
    }
}

/* im2col and the scatter split over the team like the product (serial, they took a third of the
 * audio model's time at batch 8 on 2 threads). */
static void gemm_conv_run(const fused_state *s, const celer_conv_geom *g, const float *x, float *y, void *scratch) {
    const celer_window *w = &g->win;
    const mm_state *mm = s->gemm;
    int64_t in = w->in[2], pad = w->pad_l[2], k = mm->k, m = s->m, mp = padded_channels(m, s->y_block);
    gemm_conv_job j = {.s = s, .t = w->out[2], .stride = w->stride[2]};
    gemm_conv_carve(s, g, scratch, &j.buf);
    for (int64_t n = 0; n < g->n; n++) {
        const float *xn = x + n * in;
        for (int64_t p = 0; p < j.buf.len; p++) j.buf.xp[p] = p >= pad && p - pad < in ? xn[p - pad] : 0.0f;
        celer_ops_parallel_for((size_t)j.t, (size_t)(COPY_PAR_ELEMS / k + 1), 1, gemm_conv_rows, &j);
        celer_sgemm_run(&mm->packed, j.t, j.buf.a, k, j.buf.y, m, false, mm->act == MM_NONE ? NULL : mm_epilogue, mm);
        j.yn = y + n * mp * j.t;
        celer_ops_parallel_for((size_t)j.t, (size_t)(COPY_PAR_ELEMS / m + 1), 1, gemm_conv_scatter, &j);
    }
}

/* ---- activations applied after the convolution ----
 * oneDNN 2.6's swish post-op made its convolutions slower than the convolution plus a separate
 * pass of celer's own SiLU loop (vmath's exp): EfficientNet-B0 at 1 thread 12.2 -> 11.6 ms, most
 * of it in the depthwise convolutions over 112x112 and 56x56. So a Swish that is the last
 * activation (the only one, or the one after the residual sum) runs as that pass over Y, split
 * over the team; the padding channels of a blocked Y stay 0 (SiLU(0) = 0). */

/* Elements of the pass a thread should get before the team is woken (an exp and a divide each). */
#define AFTER_PAR_ELEMS 8192

static bool act_after(const activation *a) { return a->n == 1 && a->op[0].alg == dnnl_eltwise_swish; }

/* Moves the last activation into s->after when it is one celer applies itself. */
static celer_status after_init(fused_state *s, const char *who) {
    activation *last = s->has_sum ? &s->sum_act : &s->act;
    if (!act_after(last)) return CELER_OK;
    if (!(s->after = calloc(1, sizeof *s->after))) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    s->after->act = MM_SWISH;
    s->after->alpha = last->op[0].alpha;
    last->n = 0;
    return CELER_OK;
}

typedef struct after_job {
    const mm_state *act;
    float *y;
} after_job;

static void after_range(void *ctx, size_t lo, size_t hi) {
    const after_job *j = ctx;
    activate(j->act, j->y + lo, 0, 1, (int64_t)(hi - lo));
}

/* s->after over the n floats of y, in place. */
static void after_run(const fused_state *s, float *y, int64_t n) {
    after_job j = {s->after, y};
    celer_ops_parallel_for((size_t)n, AFTER_PAR_ELEMS, 16, after_range, &j);
}

/* ---- ConvTranspose with kernel = stride as one GEMM ----
 * The U-Net's upsampling (kernel 2, stride 2, no padding): each input pixel writes its own patch
 * of k1 x k2 output pixels and no two patches overlap, so the layer is the pixels' channel rows
 * X^T [P, C] times W as [C, k1 k2 M] (packed at load, bias per column, activation in the GEMM's
 * epilogue), each row then scattered into its patch. oneDNN runs it as a backward convolution:
 * 64 -> 32 channels over 64x64 took 2.37 ms at 1 thread, ONNX Runtime 0.98. Taken for group 1,
 * no dilation, padding or output padding, no residual; X and Y plain or blocked. */

static int64_t patch_size(const fused_state *s) {
    int64_t q = 1;
    for (int i = 0; i < s->nsp; i++) q *= s->w.dims[2 + i];
    return q;
}

/* Sets s->gemm and s->patches when the ConvTranspose qualifies (else leaves them): fw is W folded,
 * [C, M, k...] as the file has it. */
static celer_status patch_init(const celer_op_info *info, fused_state *s, const float *fw, const char *who) {
    const celer_win_attrs *a = &s->a;
    bool plain = s->transposed && a->group == 1 && !s->has_sum && !s->sum_act.n && a->n_out_shape <= 0 &&
                 (a->auto_pad == CELER_AUTO_PAD_NOTSET || a->auto_pad == CELER_AUTO_PAD_VALID) &&
                 a->n_strides == s->nsp;
    for (int i = 0; plain && i < s->nsp; i++)
        plain = a->strides[i] == s->w.dims[2 + i] && (a->n_dilations <= 0 || a->dilations[i] == 1) &&
                (a->n_out_pad <= 0 || a->out_pad[i] == 0); /* counts are -1 for an absent attribute */
    for (int i = 0; plain && i < a->n_pads; i++) plain = a->pads[i] == 0;
    if (!plain) return CELER_OK;
    mm_state *g;
    celer_status st = gemm_state(info, who, &g);
    if (st || !g) return st;
    int64_t c = s->w.dims[0], m = s->m, q = patch_size(s);
    g->k = c;
    g->n = q * m;
    float *b = malloc(sizeof(float) * (size_t)(c * g->n + 1));
    float *bias = s->bias ? malloc(sizeof(float) * (size_t)g->n) : NULL;
    if (!b || (s->bias && !bias)) st = celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", who);
    if (!st) { /* column j M + o of row ci: W[ci][o][j] */
        for (int64_t ci = 0; ci < c; ci++)
            for (int64_t o = 0; o < m; o++)
                for (int64_t j = 0; j < q; j++) b[ci * g->n + j * m + o] = fw[(ci * m + o) * q + j];
        for (int64_t j = 0; bias && j < q; j++) memcpy(bias + j * m, s->bias, sizeof(float) * (size_t)m);
        st = celer_sgemm_pack(who, b, c, g->n, false, bias, &g->packed);
    }
    free(b);
    free(bias);
    if (st) {
        free(g);
        return st;
    }
    s->gemm = g;
    s->patches = true;
    return CELER_OK;
}

/* Scratch of one sample: the rows X^T [P, C] and the product [P, k M]. */
static size_t patch_carve(const fused_state *s, const celer_conv_geom *g, void *base, float **a, float **z) {
    int64_t p = g->win.in[0] * g->win.in[1] * g->win.in[2];
    celer_ops_carve cv = {.base = base};
    *a = celer_ops_carve_elems(&cv, p * s->gemm->k, sizeof(float));
    *z = celer_ops_carve_elems(&cv, p * s->gemm->n, sizeof(float));
    return cv.off;
}

static size_t patch_scratch(const fused_state *s, const celer_conv_geom *g) {
    float *a, *z;
    return patch_carve(s, g, NULL, &a, &z);
}

typedef struct patch_job {
    const fused_state *s;
    const celer_window *w;
    const float *x; /* one sample of X */
    float *y, *a, *z;  /* one sample of Y; the scratch */
} patch_job;

/* Pixels [lo, hi) of X into rows of a: X[c][p] (plain) or X[c/b][p][c%b] (blocked). */
static void patch_gather(void *ctx, size_t lo, size_t hi) {
    const patch_job *j = ctx;
    int64_t c = j->s->gemm->k, b = j->s->x_block, np = j->w->in[0] * j->w->in[1] * j->w->in[2];
    for (int64_t p = (int64_t)lo; p < (int64_t)hi; p++) {
        float *row = j->a + p * c;
        if (b) /* a block's channels of one pixel are contiguous */
            for (int64_t c0 = 0; c0 < c; c0 += b)
                memcpy(row + c0, j->x + ((c0 / b) * np + p) * b, sizeof(float) * (size_t)(c - c0 < b ? c - c0 : b));
        else
            for (int64_t ci = 0; ci < c; ci++) row[ci] = j->x[ci * np + p];
    }
}

/* Rows [lo, hi) of z into their patches of Y (blocked: the padding channels 0). */
static void patch_scatter(void *ctx, size_t lo, size_t hi) {
    const patch_job *j = ctx;
    const celer_window *w = j->w;
    int64_t m = j->s->m, b = j->s->y_block ? j->s->y_block : 1, mp = padded_channels(m, j->s->y_block);
    int64_t op = w->out[0] * w->out[1] * w->out[2], n = j->s->gemm->n;
    for (int64_t p = (int64_t)lo; p < (int64_t)hi; p++) {
        int64_t i2 = p % w->in[2], i1 = p / w->in[2] % w->in[1], i0 = p / (w->in[2] * w->in[1]);
        const float *zr = j->z + p * n;
        for (int64_t a0 = 0, q = 0; a0 < w->k[0]; a0++)
            for (int64_t a1 = 0; a1 < w->k[1]; a1++)
                for (int64_t a2 = 0; a2 < w->k[2]; a2++, q++) {
                    int64_t o = ((i0 * w->k[0] + a0) * w->out[1] + i1 * w->k[1] + a1) * w->out[2] + i2 * w->k[2] + a2;
                    put_pixel(j->y, op, o, zr + q * m, m, mp, b);
                }
    }
}

static void patch_run(const fused_state *s, const celer_conv_geom *g, const float *x, float *y, void *scratch) {
    const celer_window *w = &g->win;
    const mm_state *mm = s->gemm;
    int64_t np = w->in[0] * w->in[1] * w->in[2], op = w->out[0] * w->out[1] * w->out[2];
    int64_t cp = padded_channels(mm->k, s->x_block), mp = padded_channels(s->m, s->y_block);
    patch_job j = {.s = s, .w = w};
    patch_carve(s, g, scratch, &j.a, &j.z);
    for (int64_t n = 0; n < g->n; n++) {
        j.x = x + n * cp * np;
        j.y = y + n * mp * op;
        celer_ops_parallel_for((size_t)np, (size_t)(COPY_PAR_ELEMS / mm->k + 1), 1, patch_gather, &j);
        celer_sgemm_run(&mm->packed, np, j.a, mm->k, j.z, mm->n, false, mm->act == MM_NONE ? NULL : mm_epilogue, mm);
        celer_ops_parallel_for((size_t)np, (size_t)(COPY_PAR_ELEMS / mm->n + 1), 1, patch_scatter, &j);
    }
}

/* ---- BlockedGlobalAveragePool and BlockedScale: the squeeze-excite chain on blocked data ---- */

/* The channel block of a blocked input (attribute `block`), checked against X's channels. */
static celer_status block_of(const celer_kernel_call *call, const celer_tensor *x, int64_t *block) {
    char who[160];
    *block = celer_onnx_attr_int(call->info->node, FUSED_ATTR_BLOCK, 0);
    if (*block <= 0 || x->shape.rank < 3 || x->shape.dims[1] % *block)
        return celer_errorf(CELER_ERR_INTERNAL, "%s: block %lld does not divide the channels of a rank-%d X",
                            celer_ops_who(call->info, who, sizeof who), (long long)*block, x->shape.rank);
    return CELER_OK;
}

/* BlockedGlobalAveragePool(X blocked) -> Y [N, C, 1...]: a 1x1 tensor has the same bytes in the
 * blocked and the plain layout, so Y serves readers of either. */
static celer_status gap_reshape(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0];
    int64_t block;
    celer_status st = block_of(call, x, &block);
    if (st) return st;
    celer_shape y = x->shape;
    for (int i = 2; i < y.rank; i++) y.dims[i] = 1;
    call->out[0].shape = y;
    return CELER_OK;
}

/* Elements of the squeeze-excite steps a thread should get before they are split (a pass of one
 * add or multiply an element; EfficientNet-B0's run from 12K to 1.2M elements). */
#define SE_PAR_ELEMS 16384

typedef struct se_job {
    const float *in, *scale;
    float *out;
    int64_t sp, b, cb, c, scale_n; /* space, block, blocks a sample, channels, samples of scale */
} se_job;

/* One block of bl channels (bl a constant after inlining: oneDNN's 16 on AVX-512, 8 on AVX2) of
 * sp pixels averaged into o: four pixels a step into four sums kept in registers (one sum was
 * bound by the adds' latency: EfficientNet-B0's 17 pools 0.32 -> 0.10 ms). */
__attribute__((always_inline)) static inline void gap_fixed(const float *src, float *o, int64_t sp, float inv,
                                                             const int bl) {
    float acc[4][16] = {{0}};
    int64_t p = 0;
    for (; p + 4 <= sp; p += 4)
        for (int q = 0; q < 4; q++)
            for (int k = 0; k < bl; k++) acc[q][k] += src[(p + q) * bl + k];
    for (; p < sp; p++)
        for (int k = 0; k < bl; k++) acc[0][k] += src[p * bl + k];
    for (int k = 0; k < bl; k++) o[k] = sp ? (acc[0][k] + acc[1][k] + acc[2][k] + acc[3][k]) * inv : NAN;
}

/* Channel blocks [lo, hi) of in ([n][c/b][sp][b]) averaged over space into out ([n][c]). */
CELER_VECTOR_CLONES
static void gap_blocks(void *ctx, size_t lo, size_t hi) {
    const se_job *j = ctx;
    int64_t sp = j->sp, b = j->b;
    float inv = sp ? 1.0f / (float)sp : 0.0f;
    for (int64_t i = (int64_t)lo; i < (int64_t)hi; i++) {
        const float *src = j->in + i * sp * b;
        float *o = j->out + i * b;
        if (b == 16) {
            gap_fixed(src, o, sp, inv, 16);
        } else if (b == 8) {
            gap_fixed(src, o, sp, inv, 8);
        } else {
            for (int64_t k = 0; k < b; k++) o[k] = 0.0f;
            for (int64_t p = 0; p < sp; p++)
                for (int64_t k = 0; k < b; k++) o[k] += src[p * b + k];
            for (int64_t k = 0; k < b; k++) o[k] = sp ? o[k] * inv : NAN;
        }
    }
}

static celer_status gap_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0];
    int64_t b = celer_onnx_attr_int(call->info->node, FUSED_ATTR_BLOCK, 8);
    int64_t n = x->shape.dims[0], c = x->shape.dims[1], sp = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    se_job j = {.in = x->data, .out = call->out[0].data, .sp = sp, .b = b};
    int64_t per = sp * b > 0 ? sp * b : 1;
    celer_ops_parallel_for((size_t)(n * (c / b)), (size_t)(SE_PAR_ELEMS / per + 1), 1, gap_blocks, &j);
    return CELER_OK;
}

/* BlockedScale(X blocked, S [N or 1, C, 1...]) -> Y blocked = X * S broadcast over space (the
 * squeeze-excite Mul). S has the same bytes in both layouts. */
static celer_status scale_reshape(celer_kernel_call *call) {
    char who[160], b1[160], b2[160];
    const celer_tensor *x = call->in[0], *sc = call->in[1];
    int64_t block;
    celer_status st = block_of(call, x, &block);
    if (st) return st;
    bool ok = sc->dtype == CELER_FLOAT && x->dtype == CELER_FLOAT && sc->shape.rank == x->shape.rank &&
              (sc->shape.dims[0] == x->shape.dims[0] || sc->shape.dims[0] == 1) &&
              sc->shape.dims[1] == x->shape.dims[1];
    for (int i = 2; i < sc->shape.rank && ok; i++) ok = sc->shape.dims[i] == 1;
    if (!ok)
        return celer_errorf(CELER_ERR_SHAPE, "%s: the channel scales must be float [N or 1, C, 1...] for X %s, got %s "
                            "(CELER_OPTIMIZE=0 runs the graph unfused)", celer_ops_who(call->info, who, sizeof who),
                            celer_shape_str(&x->shape, b1, sizeof b1), celer_shape_str(&sc->shape, b2, sizeof b2));
    return celer_ops_reshape_same(call);
}

/* One block of 16 or 8 channels of sp pixels times its scales, a pixel's block one vector (in
 * the CPU's width, or two halves). Written with vector types: GCC left the loop over the block
 * scalar (in place, src may be dst), 16 multiplies a pixel: EfficientNet-B0's 16 scales took 0.57
 * ms at 1 thread, now 0.10 (perf's share of a run). */
typedef float scale_v16 __attribute__((vector_size(64)));
typedef float scale_v8 __attribute__((vector_size(32)));
#define SCALE_FIXED(name, vt)                                                                     \
    __attribute__((always_inline)) static inline void name(const float *src, const float *sc, float *dst, \
                                                            int64_t sp) {                         \
        vt sv;                                                                                    \
        memcpy(&sv, sc, sizeof sv);                                                               \
        for (int64_t p = 0; p < sp; p++) {                                                        \
            vt v;                                                                                 \
            memcpy(&v, src + p * (int64_t)(sizeof(vt) / sizeof(float)), sizeof v);               \
            v *= sv;                                                                              \
            memcpy(dst + p * (int64_t)(sizeof(vt) / sizeof(float)), &v, sizeof v);               \
        }                                                                                         \
    }
SCALE_FIXED(scale_fixed16, scale_v16)
SCALE_FIXED(scale_fixed8, scale_v8)
#undef SCALE_FIXED

/* Channel blocks [lo, hi) (sample i = block / (c/b)) of in times their scales. */
CELER_VECTOR_CLONES
static void scale_blocks(void *ctx, size_t lo, size_t hi) {
    const se_job *j = ctx;
    int64_t sp = j->sp, b = j->b;
    for (int64_t blk = (int64_t)lo; blk < (int64_t)hi; blk++) { /* [n][c/b][sp][b] */
        int64_t i = blk / j->cb, cb = blk % j->cb;
        const float *src = j->in + blk * sp * b, *s8 = j->scale + (j->scale_n == 1 ? 0 : i * j->c) + cb * b;
        float *dst = j->out + blk * sp * b;
        if (b == 16)
            scale_fixed16(src, s8, dst, sp);
        else if (b == 8)
            scale_fixed8(src, s8, dst, sp);
        else
            for (int64_t p = 0; p < sp; p++)
                for (int64_t k = 0; k < b; k++) dst[p * b + k] = src[p * b + k] * s8[k];
    }
}

static celer_status scale_run(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0], *sc = call->in[1];
    int64_t b = celer_onnx_attr_int(call->info->node, FUSED_ATTR_BLOCK, 8);
    int64_t n = x->shape.dims[0], c = x->shape.dims[1], sp = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    se_job j = {.in = x->data, .scale = sc->data, .out = call->out[0].data, .sp = sp, .b = b, .cb = c / b, .c = c,
                .scale_n = sc->shape.dims[0]};
    int64_t per = sp * b > 0 ? sp * b : 1;
    celer_ops_parallel_for((size_t)(n * (c / b)), (size_t)(SE_PAR_ELEMS / per + 1), 1, scale_blocks, &j);
    return CELER_OK;
}

/* ---- BlockedConcat ---- */

static celer_status concat_reshape(celer_kernel_call *call) {
    char who[160], b1[160], b2[160];
    const celer_tensor *x0 = call->in[0];
    celer_shape y = x0->shape;
    y.dims[1] = 0;
    for (int j = 0; j < call->n_in; j++) {
        const celer_tensor *x = call->in[j];
        int64_t block;
        celer_status st = block_of(call, x, &block);
        if (st) return st;
        bool ok = x->dtype == CELER_FLOAT && x->shape.rank == x0->shape.rank && x->shape.dims[0] == x0->shape.dims[0];
        for (int i = 2; i < x->shape.rank && ok; i++) ok = x->shape.dims[i] == x0->shape.dims[i];
        if (!ok)
            return celer_errorf(CELER_ERR_SHAPE, "%s: input %d %s does not concatenate with input 0 %s along "
                                "channels (float, equal dims but axis 1)", celer_ops_who(call->info, who, sizeof who),
                                j, celer_shape_str(&x->shape, b1, sizeof b1), celer_shape_str(&x0->shape, b2, sizeof b2));
        y.dims[1] += x->shape.dims[1];
    }
    call->out[0].shape = y;
    return CELER_OK;
}

static celer_status concat_run(celer_kernel_call *call) {
    const celer_shape *y = &call->out[0].shape;
    int64_t sp = celer_ops_dims_prod(y->dims, 2, y->rank);
    float *out = call->out[0].data;
    for (int64_t i = 0; i < y->dims[0]; i++) /* [n][c/b][sp][b]: channel blocks are outside space */
        for (int j = 0; j < call->n_in; j++) {
            int64_t len = call->in[j]->shape.dims[1] * sp;
            memcpy(out, (const float *)call->in[j]->data + i * len, sizeof(float) * (size_t)len);
            out += len;
        }
    return CELER_OK;
}

/* ---- LayoutToPlain ---- */

/* Y has attribute `channels` (X's padded count when absent), X's others dims. */
static celer_status to_plain_reshape(celer_kernel_call *call) {
    char who[160];
    int64_t block = celer_onnx_attr_int(call->info->node, FUSED_ATTR_BLOCK, 0);
    const celer_tensor *x = call->in[0];
    int64_t c = x->shape.rank >= 2 ? celer_onnx_attr_int(call->info->node, FUSED_ATTR_CHANNELS, x->shape.dims[1]) : 0;
    if (block <= 0 || x->shape.rank < 2 || x->shape.dims[1] % block || c > x->shape.dims[1] ||
        c <= x->shape.dims[1] - block)
        return celer_errorf(CELER_ERR_INTERNAL, "%s: block %lld and %lld channels do not fit X's %lld",
                            celer_ops_who(call->info, who, sizeof who), (long long)block, (long long)c,
                            (long long)(x->shape.rank >= 2 ? x->shape.dims[1] : 0));
    call->out[0].shape = x->shape;
    call->out[0].shape.dims[1] = c;
    return CELER_OK;
}

static celer_status to_plain_run(celer_kernel_call *call) {
    int64_t b = celer_onnx_attr_int(call->info->node, FUSED_ATTR_BLOCK, 8);
    const celer_tensor *x = call->in[0];
    const float *in = x->data;
    float *out = call->out[0].data;
    int64_t n = x->shape.dims[0], cp = x->shape.dims[1], c = call->out[0].shape.dims[1];
    int64_t sp = celer_ops_dims_prod(x->shape.dims, 2, x->shape.rank);
    /* in: [n][cp/b][sp][b] -> out: [n][c][sp], the padding channels (c..cp) dropped */
    for (int64_t i = 0; i < n; i++)
        for (int64_t cb = 0; cb < cp / b; cb++) {
            const float *src = in + (i * cp + cb * b) * sp;
            float *dst = out + (i * c + cb * b) * sp;
            int64_t nb = CELER_MIN(b, c - cb * b);
            for (int64_t j = 0; j < nb; j++)
                for (int64_t p = 0; p < sp; p++) dst[j * sp + p] = src[p * b + j];
        }
    return CELER_OK;
}

#define F32 CELER_DT(CELER_FLOAT)

static const celer_kernel kernels[] = {
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_CONV, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = FC_X, .flags = CELER_KERNEL_INPLACE_ON(FC_SUM) | CELER_KERNEL_PACKS_CONSTANTS,
     .init = fused_init, .reshape = fused_reshape, .run = fused_run, .free_state = fused_free_state,
     .free_local = fused_free_local},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_BLOCKED_POOL, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .init = pool_init, .reshape = pool_reshape, .run = pool_run,
     .free_state = free, .free_local = pool_free_local},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_MATMUL, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .flags = CELER_KERNEL_PACKS_CONSTANTS, .init = mm_init, .reshape = mm_reshape,
     .run = mm_run, .free_state = mm_free},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_GELU, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .flags = CELER_KERNEL_INPLACE, .reshape = celer_ops_reshape_same,
     .run = gelu_run},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_BLOCKED_GLOBAL_AVG, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .reshape = gap_reshape, .run = gap_run},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_BLOCKED_SCALE, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .flags = CELER_KERNEL_INPLACE, .reshape = scale_reshape, .run = scale_run},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_BLOCKED_CONCAT, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .reshape = concat_reshape, .run = concat_run},
    {.domain = CELER_GRAPH_INTERNAL_DOMAIN, .op = FUSED_OP_LAYOUT_TO_PLAIN, .since = 1, .until = CELER_OPS_MAX_VERSION,
     .dtypes = F32, .type_input = 0, .reshape = to_plain_reshape, .run = to_plain_run},
};

const celer_kernel_family celer_family_fused = {"fused", kernels, (int)CELER_ARRAY_LEN(kernels)};
