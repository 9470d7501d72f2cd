/* Graph optimization passes, run once at load on the main graph before kernels are resolved
 * (after the runtime's constant folding, which needs kernels). `passes[]` at the end lists them
 * in order; docs/engine.md has the table of what each rewrites and when.
 *
 * Each pass is small, states its preconditions next to its code, and leaves the graph's inputs,
 * outputs and the names of surviving values as they were. The fusions build internal operators
 * (domain CELER_GRAPH_INTERNAL_DOMAIN, names and attributes in fused.h, kernels in ops/fused.c),
 * chiefly
 *
 *   FusedConv(X, W, B?, Sum?, bn_scale?, bn_bias?, bn_mean?, bn_var?) -> Y
 *     Y = sum_activation(activation(BN(conv(X, W) + B)) + Sum)
 *   FusedMatMul(A, B, bias?) -> Y = activation(A B + bias)
 *
 * and Gelu, LayerNormalization (any opset), BlockedPool. The layout pass then keeps FusedConv
 * outputs in oneDNN's channel-blocked layout (nChw8c) while convolutions and pools read them,
 * and inserts LayoutToPlain nodes for every other reader. Subgraphs (If/Loop/Scan bodies) are
 * left as they are: they bind enclosing values by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fused.h"
#include "graph.h"

/* Extra attributes a FusedConv may gain beyond its Conv's. */
#define FC_EXTRA_ATTRS 13

/* A synthetic node: an onnx node whose attribute array the passes may extend. */
typedef struct synth_node {
    celer_onnx_node node;
    celer_onnx_attr *attrs;
    int cap;
} synth_node;

static bool is_op(const celer_node *n, const char *domain, const char *op) {
    if (!n->src) return false;
    const char *d = n->src->domain ? n->src->domain : "";
    if (!strcmp(d, "ai.onnx")) d = "";
    return !strcmp(d, domain) && !strcmp(n->src->op_type, op);
}

static bool is_onnx(const celer_node *n, const char *op) { return is_op(n, "", op); }
static bool is_fused_conv(const celer_node *n) {
    return is_op(n, CELER_GRAPH_INTERNAL_DOMAIN, FUSED_OP_CONV);
}

static const celer_tensor *constant_of(const celer_graph *g, int v) {
    return v >= 0 ? g->values[v].constant : NULL;
}

/* The node reading value v, when exactly one node input slot reads it (no subgraph reads, not a
 * graph output); -1 otherwise. users[] is filled by index_users. */
static int sole_user(const celer_graph *g, const int *users, int v) {
    const celer_value *val = &g->values[v];
    return val->n_uses == 1 && !val->is_output ? users[v] : -1;
}

/* users[v]: the last node reading v through an input slot (what sole_user needs). */
static int *index_users(celer_graph *g) {
    int *users = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(g->n_values + 1));
    if (!users) return NULL;
    for (int v = 0; v < g->n_values; v++) users[v] = -1;
    for (int k = 0; k < g->n_nodes; k++)
        for (int j = 0; j < g->nodes[k].n_inputs; j++)
            if (g->nodes[k].inputs[j] >= 0) users[g->nodes[k].inputs[j]] = k;
    return users;
}

static synth_node *synth_new(celer_graph *g, const celer_onnx_node *like, const char *op, int extra_attrs) {
    synth_node *s = celer_arena_alloc(&g->arena, sizeof *s);
    int base = like ? like->n_attrs : 0;
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->cap = base + extra_attrs;
    s->attrs = celer_arena_alloc(&g->arena, sizeof(celer_onnx_attr) * (size_t)(s->cap + 1));
    if (!s->attrs) return NULL;
    if (base) memcpy(s->attrs, like->attrs, sizeof(celer_onnx_attr) * (size_t)base);
    s->node.name = like && like->name ? like->name : "";
    s->node.op_type = op;
    s->node.domain = CELER_GRAPH_INTERNAL_DOMAIN;
    s->node.n_attrs = base;
    s->node.attrs = s->attrs;
    return s;
}

/* The synth_node behind a node the passes made (its src is the first member). */
static synth_node *synth_of(const celer_node *n) { return (synth_node *)(uintptr_t)n->src; }

static celer_onnx_attr *synth_attr(synth_node *s, const char *name) {
    for (int i = 0; i < s->node.n_attrs; i++)
        if (!strcmp(s->attrs[i].name, name)) return &s->attrs[i];
    if (s->node.n_attrs >= s->cap) return NULL;
    celer_onnx_attr *a = &s->attrs[s->node.n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    return a;
}

static celer_status set_int(synth_node *s, const char *name, int64_t v) {
    celer_onnx_attr *a = synth_attr(s, name);
    if (!a) return celer_errorf(CELER_ERR_INTERNAL, "optimize: no room for attribute '%s'", name);
    a->type = CELER_ATTR_INT;
    a->i = v;
    return CELER_OK;
}

static celer_status set_float(synth_node *s, const char *name, float v) {
    celer_onnx_attr *a = synth_attr(s, name);
    if (!a) return celer_errorf(CELER_ERR_INTERNAL, "optimize: no room for attribute '%s'", name);
    a->type = CELER_ATTR_FLOAT;
    a->f = v;
    return CELER_OK;
}

static celer_status set_string(synth_node *s, const char *name, const char *v) {
    celer_onnx_attr *a = synth_attr(s, name);
    if (!a) return celer_errorf(CELER_ERR_INTERNAL, "optimize: no room for attribute '%s'", name);
    a->type = CELER_ATTR_STRING;
    a->s = v;
    a->s_len = strlen(v);
    return CELER_OK;
}

static bool has_attr(const celer_node *n, const char *name) {
    return celer_onnx_attr_find(n->src, name) != NULL;
}

/* The operand of binary node n other than v (n reads v once), or -1. */
static int other_operand(const celer_node *n, int v) {
    if (n->n_inputs != 2) return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

/* ONNX's own Gelu (opset 20) in its exact (erf) form: the same function as the internal Gelu
 * the Gelu pass makes from its erf pattern. */
static bool is_exact_gelu(const celer_node *n) {
    if (!is_onnx(n, "Gelu") || n->n_inputs != 1 || n->n_outputs != 1) return false;
    const celer_onnx_attr *a = celer_onnx_attr_find(n->src, "approximate");
    return !a || (a->type == CELER_ATTR_STRING && !strcmp(a->s, "none"));
}

/* Makes fused node k produce value v (taking it over from the node it fused). */
static void take_output(celer_graph *g, int k, int v) {
    g->nodes[k].outputs[0] = v;
    g->values[v].producer = k;
}

/* Gives node n `count` input slots, the new ones omitted (-1). */
static celer_status widen_inputs(celer_graph *g, celer_node *n, int count) {
    int *in = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)count);
    if (!in) return CELER_ERR_NOMEM;
    for (int j = 0; j < count; j++) in[j] = j < n->n_inputs ? n->inputs[j] : -1;
    n->inputs = in;
    n->n_inputs = count;
    return CELER_OK;
}

/* Output channels of a FusedConv (W is [M, C/group, k...], transposed [C, M/group, k...]). */
static int64_t fused_out_channels(const celer_graph *g, const celer_node *f) {
    const celer_tensor *w = constant_of(g, f->inputs[FC_W]);
    if (!has_attr(f, FUSED_ATTR_TRANSPOSED)) return w->shape.dims[0];
    return w->shape.dims[1] * celer_onnx_attr_int(f->src, "group", 1);
}

/* ---- conv-to-fused: Conv and ConvTranspose with constant float weights (and constant bias) ->
 * FusedConv (attribute transposed for a ConvTranspose: oneDNN's deconvolution, which then keeps
 * the blocked layout and takes post-ops as a convolution does).
 * Preconditions: default domain, W an initializer or Constant of type float and rank 3 to 5, B
 * absent or constant float. Everything else about the Conv is checked by the kernel. */
static celer_status pass_conv_to_fused(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *n = &g->nodes[k];
        bool transposed = is_onnx(n, "ConvTranspose");
        if ((!transposed && !is_onnx(n, "Conv")) || n->n_inputs < 2 || n->n_outputs != 1) continue;
        const celer_tensor *w = constant_of(g, n->inputs[1]);
        const celer_tensor *b = n->n_inputs > 2 ? constant_of(g, n->inputs[2]) : NULL;
        if (!w || w->dtype != CELER_FLOAT || w->shape.rank < 3 || w->shape.rank > 5) continue;
        if (n->n_inputs > 2 && n->inputs[2] >= 0 && (!b || b->dtype != CELER_FLOAT)) continue;
        if (n->n_inputs > 3) continue;
        synth_node *s = synth_new(g, n->src, FUSED_OP_CONV, FC_EXTRA_ATTRS);
        if (!s) return CELER_ERR_NOMEM;
        celer_status st = widen_inputs(g, n, FC_INPUTS);
        if (!st && transposed) st = set_int(s, FUSED_ATTR_TRANSPOSED, 1);
        if (st) return st;
        n->src = &s->node;
    }
    return CELER_OK;
}

/* ---- fold-batchnorm: FusedConv -> BatchNormalization (inference form) becomes one FusedConv
 * carrying the BN parameters; its kernel folds them into W and B at load.
 * Preconditions: the conv output is read only by the BN; the conv is no ConvTranspose and has no
 * activation or residual yet; the BN's four parameters are constants; BN is not in training mode and its extra outputs
 * (opsets < 14 list them) are unused. */
static celer_status pass_fold_batchnorm(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *f = &g->nodes[k];
        if (!is_fused_conv(f) || f->inputs[FC_BN_SCALE] >= 0 || f->inputs[FC_SUM] >= 0 ||
            has_attr(f, FUSED_ATTR_ACTIVATION) || has_attr(f, FUSED_ATTR_TRANSPOSED))
            continue;
        int u = sole_user(g, users, f->outputs[0]);
        if (u < 0) continue;
        celer_node *bn = &g->nodes[u];
        if (!is_onnx(bn, "BatchNormalization") || bn->n_inputs != 5 || bn->inputs[0] != f->outputs[0] ||
            celer_onnx_attr_int(bn->src, "training_mode", 0) != 0 || celer_onnx_attr_find(bn->src, "spatial"))
            continue;
        bool ok = true;
        for (int j = 1; j < 5 && ok; j++) {
            const celer_tensor *p = constant_of(g, bn->inputs[j]);
            ok = p && p->dtype == CELER_FLOAT && p->shape.rank == 1;
        }
        for (int j = 1; j < bn->n_outputs && ok; j++)
            ok = g->values[bn->outputs[j]].n_uses == 0 && !g->values[bn->outputs[j]].is_output;
        if (!ok) continue;
        synth_node *s = synth_of(f);
        celer_status st = set_float(s, FUSED_ATTR_BN_EPSILON, celer_onnx_attr_float(bn->src, "epsilon", 1e-5f));
        if (st) return st;
        for (int j = 0; j < 4; j++) f->inputs[FC_BN_SCALE + j] = bn->inputs[1 + j];
        take_output(g, k, bn->outputs[0]);
        bn->src = NULL;
    }
    return CELER_OK;
}

/* Activations a FusedConv runs as a post-op, with their parameters. */
static bool activation_of(const celer_graph *g, const celer_node *n, const char **name, float *alpha,
                          float *beta) {
    *alpha = 0.f;
    *beta = 0.f;
    if (n->n_outputs != 1 || n->n_inputs < 1) return false;
    if (is_onnx(n, "Relu") || is_onnx(n, "Sigmoid") || is_onnx(n, "Tanh")) {
        *name = n->src->op_type;
        return n->n_inputs == 1;
    }
    if (is_onnx(n, "LeakyRelu")) {
        *name = "LeakyRelu";
        *alpha = celer_onnx_attr_float(n->src, "alpha", 0.01f);
        return n->n_inputs == 1;
    }
    if (is_onnx(n, "Clip")) {
        *name = "Clip";
        *alpha = celer_onnx_attr_float(n->src, "min", -3.402823466e38f);
        *beta = celer_onnx_attr_float(n->src, "max", 3.402823466e38f);
        for (int j = 1; j < n->n_inputs; j++) { /* opset 11+: min and max are inputs */
            if (n->inputs[j] < 0) continue;
            const celer_tensor *t = constant_of(g, n->inputs[j]);
            if (!t || t->dtype != CELER_FLOAT || celer_shape_numel(&t->shape) != 1) return false;
            *(j == 1 ? alpha : beta) = *(const float *)t->data;
        }
        return true;
    }
    return false;
}

/* ONNX's Gelu (opset 20) in its tanh form. */
static bool is_tanh_gelu(const celer_node *n) {
    if (!is_onnx(n, "Gelu") || n->n_inputs != 1 || n->n_outputs != 1) return false;
    const celer_onnx_attr *a = celer_onnx_attr_find(n->src, "approximate");
    return a && a->type == CELER_ATTR_STRING && !strcmp(a->s, "tanh");
}

/* Activations only a FusedConv runs (oneDNN post-ops), beyond activation_of's. */
static bool conv_activation_of(const celer_graph *g, const celer_node *n, const char **name, float *alpha,
                               float *beta) {
    if (activation_of(g, n, name, alpha, beta)) return true;
    if (n->n_outputs != 1 || n->n_inputs != 1) return false;
    if (is_onnx(n, "HardSwish")) *name = "HardSwish";
    else if (is_onnx(n, "HardSigmoid")) {
        *name = "HardSigmoid";
        *alpha = celer_onnx_attr_float(n->src, "alpha", 0.2f);
        *beta = celer_onnx_attr_float(n->src, "beta", 0.5f);
    } else if (is_op(n, CELER_GRAPH_INTERNAL_DOMAIN, FUSED_OP_GELU) || is_exact_gelu(n)) *name = "Gelu";
    else if (is_tanh_gelu(n)) *name = "GeluTanh";
    else return false;
    return true;
}

/* SiLU as exporters write it, Mul(v, Sigmoid(v)) (operands in either order), with v read by
 * those two nodes alone and the Sigmoid's output by the Mul alone: the Mul's node index, and
 * the Sigmoid's in *sig; -1 otherwise. */
static int silu_of(const celer_graph *g, const int *users, int v, int *sig) {
    const celer_value *val = &g->values[v];
    int m = users[v];
    if (val->n_uses != 2 || val->is_output || m < 0 || !is_onnx(&g->nodes[m], "Mul") ||
        g->nodes[m].n_outputs != 1)
        return -1;
    int sv = other_operand(&g->nodes[m], v);
    int sk = sv >= 0 && sv != v ? g->values[sv].producer : -1;
    if (sk < 0 || !is_onnx(&g->nodes[sk], "Sigmoid") || g->nodes[sk].n_inputs != 1 || g->nodes[sk].inputs[0] != v ||
        sole_user(g, users, sv) != m)
        return -1;
    *sig = sk;
    return m;
}

/* Fuses the activation that alone reads FusedConv k's output, if any, or the SiLU pattern
 * reading it; before a residual Add it becomes "activation", after one "sum_activation". */
static celer_status absorb_activation(celer_graph *g, const int *users, int k) {
    celer_node *f = &g->nodes[k];
    bool after_sum = f->inputs[FC_SUM] >= 0;
    const char *slot = after_sum ? FUSED_ATTR_SUM_ACTIVATION : FUSED_ATTR_ACTIVATION;
    if (has_attr(f, slot)) return CELER_OK;
    const char *name;
    float alpha, beta;
    int sig = -1, u = sole_user(g, users, f->outputs[0]);
    if (u >= 0) {
        if (!conv_activation_of(g, &g->nodes[u], &name, &alpha, &beta) || g->nodes[u].inputs[0] != f->outputs[0])
            return CELER_OK;
    } else if ((u = silu_of(g, users, f->outputs[0], &sig)) >= 0) {
        name = "Swish", alpha = 1.f, beta = 0.f;
    } else {
        return CELER_OK;
    }
    celer_node *a = &g->nodes[u];
    if (sig >= 0) g->nodes[sig].src = NULL;
    synth_node *s = synth_of(f);
    celer_status st;
    if ((st = set_string(s, slot, name)) ||
        (st = set_float(s, after_sum ? FUSED_ATTR_SUM_ACTIVATION_ALPHA : FUSED_ATTR_ACTIVATION_ALPHA, alpha)) ||
        (st = set_float(s, after_sum ? FUSED_ATTR_SUM_ACTIVATION_BETA : FUSED_ATTR_ACTIVATION_BETA, beta)))
        return st;
    take_output(g, k, a->outputs[0]);
    a->src = NULL;
    return CELER_OK;
}

/* ---- fuse-conv-activation: FusedConv -> Relu / LeakyRelu / Clip / Sigmoid / Tanh / HardSwish /
 * HardSigmoid / Gelu (internal, or ONNX's in either form) / SiLU as Mul(x, Sigmoid(x)).
 * Preconditions: the conv output is read only by the activation (by the Sigmoid and the Mul for
 * SiLU); Clip's bounds are constants. */
static celer_status pass_fuse_activation(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_status st = is_fused_conv(&g->nodes[k]) ? absorb_activation(g, users, k) : CELER_OK;
        if (st) return st;
    }
    return CELER_OK;
}

/* ---- fuse-gelu: the erf form of GELU as exporters write it,
 *   Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5)    (or Mul(x, 1/sqrt 2) for the Div,
 * operands of Add and Mul in either order) becomes one Gelu(x) node.
 * Preconditions: the constants are float scalars equal to those values within 1e-6 relative;
 * every intermediate value is read only by the next node of the pattern. */
static bool scalar_is(const celer_graph *g, int v, double want) {
    const celer_tensor *t = constant_of(g, v);
    if (!t || t->dtype != CELER_FLOAT || celer_shape_numel(&t->shape) != 1) return false;
    double got = *(const float *)t->data;
    return got == got && (got - want < 0 ? want - got : got - want) <= 1e-6 * (want < 0 ? -want : want);
}

static celer_status pass_fuse_gelu(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *e = &g->nodes[k];
        if (!is_onnx(e, "Erf") || e->n_inputs != 1 || e->n_outputs != 1 || e->inputs[0] < 0) continue;
        int dv = e->inputs[0], dk = g->values[dv].producer;
        if (dk < 0 || sole_user(g, users, dv) != k) continue;
        celer_node *d = &g->nodes[dk];
        int x;
        if (is_onnx(d, "Div") && d->n_inputs == 2 && scalar_is(g, d->inputs[1], 1.4142135623730951)) {
            x = d->inputs[0];
        } else if (is_onnx(d, "Mul") && d->n_inputs == 2) {
            x = scalar_is(g, d->inputs[1], 0.7071067811865476) ? d->inputs[0]
                : scalar_is(g, d->inputs[0], 0.7071067811865476) ? d->inputs[1] : -1;
        } else {
            continue;
        }
        int ak = sole_user(g, users, e->outputs[0]);
        if (x < 0 || ak < 0 || !is_onnx(&g->nodes[ak], "Add") ||
            !scalar_is(g, other_operand(&g->nodes[ak], e->outputs[0]), 1.0))
            continue;
        int m1 = sole_user(g, users, g->nodes[ak].outputs[0]);
        if (m1 < 0 || !is_onnx(&g->nodes[m1], "Mul") || other_operand(&g->nodes[m1], g->nodes[ak].outputs[0]) != x)
            continue;
        int m2 = sole_user(g, users, g->nodes[m1].outputs[0]);
        if (m2 < 0 || !is_onnx(&g->nodes[m2], "Mul") || !scalar_is(g, other_operand(&g->nodes[m2], g->nodes[m1].outputs[0]), 0.5))
            continue;
        synth_node *s = synth_new(g, NULL, FUSED_OP_GELU, 0);
        if (!s) return CELER_ERR_NOMEM;
        s->node.name = g->nodes[m2].src->name;
        celer_node *out = &g->nodes[m2];
        out->src = &s->node;
        out->inputs[0] = x;
        out->n_inputs = 1;
        d->src = e->src = g->nodes[ak].src = g->nodes[m1].src = NULL;
    }
    return CELER_OK;
}

/* Whether reduction node n (ReduceMean) averages over the last axis only, keeping it: axes
 * [-1] as attribute (opsets < 18) or constant input. */
static bool mean_over_last(const celer_graph *g, const celer_node *n) {
    if (!is_onnx(n, "ReduceMean") || n->n_outputs != 1 || celer_onnx_attr_int(n->src, "keepdims", 1) != 1)
        return false;
    const int64_t *axes;
    if (celer_onnx_attr_ints(n->src, "axes", &axes) == 1) return axes[0] == -1 && n->n_inputs == 1;
    const celer_tensor *t = n->n_inputs == 2 ? constant_of(g, n->inputs[1]) : NULL;
    return t && t->dtype == CELER_INT64 && celer_shape_numel(&t->shape) == 1 && *(const int64_t *)t->data == -1;
}

/* ---- fuse-layernorm: LayerNormalization written out, as exporters do below opset 17:
 *   d = Sub(x, ReduceMean(x)); y = Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), eps)))
 *   [ y = Mul(y, gamma) ] [ y = Add(y, beta) ]
 * becomes the internal LayerNormalization (same kernel as ONNX's, at any opset), axis -1.
 * Preconditions: both means over the last axis with keepdims; eps a float scalar constant; Pow's
 * exponent 2 (or Mul(d, d)); gamma and beta float constants; every intermediate read only inside
 * the pattern (d by the square and the Div). Without gamma, a scale of 1 is made. */
static celer_status pass_fuse_layernorm(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *m1 = &g->nodes[k];
        if (!mean_over_last(g, m1)) continue;
        int x = m1->inputs[0], sk = sole_user(g, users, m1->outputs[0]);
        if (sk < 0 || !is_onnx(&g->nodes[sk], "Sub") || g->nodes[sk].inputs[0] != x ||
            g->nodes[sk].inputs[1] != m1->outputs[0])
            continue;
        int d = g->nodes[sk].outputs[0];
        if (g->values[d].n_uses > 3 || g->values[d].is_output) continue;
        /* the square: the node reading d that is not the final Div */
        int pk = -1, dk = -1;
        for (int u = sk + 1; u < g->n_nodes && (pk < 0 || dk < 0); u++) {
            const celer_node *r = &g->nodes[u];
            if (!r->src) continue;
            bool reads = false;
            for (int j = 0; j < r->n_inputs; j++) reads |= r->inputs[j] == d;
            if (!reads) continue;
            if (is_onnx(r, "Div") && r->inputs[0] == d) dk = u;
            else if ((is_onnx(r, "Pow") && r->inputs[0] == d && scalar_is(g, r->inputs[1], 2.0)) ||
                     (is_onnx(r, "Mul") && r->inputs[0] == d && r->inputs[1] == d))
                pk = u;
            else
                break;
        }
        /* d read by the square (once, or twice as Mul(d, d)) and the Div only */
        if (pk < 0 || dk < 0 || g->values[d].n_uses != (is_onnx(&g->nodes[pk], "Mul") ? 3 : 2)) continue;
        int m2 = sole_user(g, users, g->nodes[pk].outputs[0]);
        if (m2 < 0 || !mean_over_last(g, &g->nodes[m2])) continue;
        int ak = sole_user(g, users, g->nodes[m2].outputs[0]);
        if (ak < 0 || !is_onnx(&g->nodes[ak], "Add")) continue;
        int eps_v = other_operand(&g->nodes[ak], g->nodes[m2].outputs[0]);
        const celer_tensor *eps = constant_of(g, eps_v);
        if (!eps || eps->dtype != CELER_FLOAT || celer_shape_numel(&eps->shape) != 1) continue;
        int qk = sole_user(g, users, g->nodes[ak].outputs[0]);
        if (qk < 0 || !is_onnx(&g->nodes[qk], "Sqrt") || sole_user(g, users, g->nodes[qk].outputs[0]) != dk ||
            g->nodes[dk].inputs[1] != g->nodes[qk].outputs[0])
            continue;
        /* optional affine tail */
        int last = dk, gamma = -1, beta = -1, mk = -1, bk = -1;
        int u = sole_user(g, users, g->nodes[dk].outputs[0]);
        if (u >= 0 && is_onnx(&g->nodes[u], "Mul")) {
            int c = other_operand(&g->nodes[u], g->nodes[dk].outputs[0]);
            const celer_tensor *t = constant_of(g, c);
            if (t && t->dtype == CELER_FLOAT) {
                gamma = c;
                last = mk = u;
                u = sole_user(g, users, g->nodes[u].outputs[0]);
            }
        }
        if (u >= 0 && is_onnx(&g->nodes[u], "Add")) {
            int c = other_operand(&g->nodes[u], g->nodes[last].outputs[0]);
            const celer_tensor *t = constant_of(g, c);
            if (t && t->dtype == CELER_FLOAT) {
                beta = c;
                last = bk = u;
            }
        }
        if (gamma < 0) { /* the kernel needs a scale: 1 */
            celer_tensor *one = celer_arena_alloc(&g->arena, sizeof *one);
            float *v = celer_arena_alloc(&g->arena, sizeof(float));
            gamma = celer_graph_add_value(g, "layernorm scale 1");
            if (!one || !v || gamma < 0) return CELER_ERR_NOMEM;
            *v = 1.0f;
            *one = (celer_tensor){.dtype = CELER_FLOAT, .shape = {1, {1}}, .data = v};
            g->values[gamma].constant = one;
            g->values[gamma].dtype = CELER_FLOAT;
            g->values[gamma].has_shape = true;
            g->values[gamma].shape = one->shape;
        }
        synth_node *s = synth_new(g, NULL, "LayerNormalization", 2);
        celer_status st;
        if (!s) return CELER_ERR_NOMEM;
        s->node.name = g->nodes[last].src->name;
        if ((st = set_int(s, "axis", -1)) || (st = set_float(s, "epsilon", *(const float *)eps->data))) return st;
        celer_node *out = &g->nodes[last];
        if ((st = widen_inputs(g, out, 3))) return st;
        out->src = &s->node;
        out->inputs[0] = x;
        out->inputs[1] = gamma;
        out->inputs[2] = beta;
        int dead[] = {k, sk, pk, m2, ak, qk, dk, mk, bk};
        for (size_t i = 0; i < CELER_ARRAY_LEN(dead); i++)
            if (dead[i] >= 0 && dead[i] != last) g->nodes[dead[i]].src = NULL;
    }
    return CELER_OK;
}

/* ---- matmul-to-fused: MatMul(A, B) [+ Add(bias)] and Gemm(A, B, C) with a constant float
 * matrix B become FusedMatMul(A, B, bias), and an activation alone reading its output is fused
 * (those of FusedConv but GELU's tanh form, and SiLU as Mul(x, Sigmoid(x))).
 * Preconditions: MatMul's bias is a constant float vector of N values read by the Add alone
 * with the MatMul's output (Add's other operand); Gemm has alpha = beta = 1, transA = 0, and C
 * absent or a constant of N values ([N] or [1, N]). */
static celer_status pass_fuse_matmul(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *n = &g->nodes[k];
        bool gemm = is_onnx(n, "Gemm");
        if ((!gemm && !is_onnx(n, "MatMul")) || n->n_outputs != 1 || n->n_inputs < 2) continue;
        const celer_tensor *b = constant_of(g, n->inputs[1]);
        if (!b || b->dtype != CELER_FLOAT || b->shape.rank != 2) continue;
        int64_t cols = b->shape.dims[gemm && celer_onnx_attr_int(n->src, "transB", 0) ? 0 : 1];
        int bias = -1;
        if (gemm) {
            if (celer_onnx_attr_float(n->src, "alpha", 1.f) != 1.f || celer_onnx_attr_int(n->src, "transA", 0) ||
                (n->n_inputs > 2 && n->inputs[2] >= 0 && celer_onnx_attr_float(n->src, "beta", 1.f) != 1.f))
                continue;
            if (n->n_inputs > 2 && n->inputs[2] >= 0) {
                const celer_tensor *c = constant_of(g, n->inputs[2]);
                if (!c || c->dtype != CELER_FLOAT || c->shape.rank > 2 || celer_shape_numel(&c->shape) != cols ||
                    (c->shape.rank == 2 && c->shape.dims[0] != 1))
                    continue;
                bias = n->inputs[2];
            }
        }
        synth_node *s = synth_new(g, n->src, FUSED_OP_MATMUL, 3);
        if (!s) return CELER_ERR_NOMEM;
        celer_status st = widen_inputs(g, n, 3);
        if (st) return st;
        n->src = &s->node;
        n->inputs[2] = bias;
        if (!gemm) { /* a bias Add after the MatMul */
            int u = sole_user(g, users, n->outputs[0]);
            int c = u >= 0 && is_onnx(&g->nodes[u], "Add") ? other_operand(&g->nodes[u], n->outputs[0]) : -1;
            const celer_tensor *ct = constant_of(g, c);
            if (ct && ct->dtype == CELER_FLOAT && ct->shape.rank == 1 && ct->shape.dims[0] == cols &&
                g->nodes[u].n_outputs == 1) {
                n->inputs[2] = c;
                take_output(g, k, g->nodes[u].outputs[0]);
                g->nodes[u].src = NULL;
            }
        }
        int sig = -1, u = sole_user(g, users, n->outputs[0]);
        const char *name = NULL;
        float alpha = 0, beta = 0;
        if (u >= 0) { /* FusedMatMul's epilogue has no tanh form of GELU */
            if (!conv_activation_of(g, &g->nodes[u], &name, &alpha, &beta) || !strcmp(name, "GeluTanh") ||
                g->nodes[u].inputs[0] != n->outputs[0])
                continue;
        } else if ((u = silu_of(g, users, n->outputs[0], &sig)) >= 0) {
            name = "Swish", alpha = 1.f, beta = 0.f;
        } else {
            continue;
        }
        celer_node *a = &g->nodes[u];
        if ((st = set_string(s, FUSED_ATTR_ACTIVATION, name)) || (st = set_float(s, FUSED_ATTR_ACTIVATION_ALPHA, alpha)) ||
            (st = set_float(s, FUSED_ATTR_ACTIVATION_BETA, beta)))
            return st;
        if (sig >= 0) g->nodes[sig].src = NULL;
        take_output(g, k, a->outputs[0]);
        a->src = NULL;
    }
    return CELER_OK;
}

/* ---- fuse-conv-add: Add(FusedConv F, FusedConv G) -> F with G's output as its residual input,
 * run as oneDNN's sum post-op (in place into G's buffer when the Add was its last reader).
 * Preconditions: both operands are outputs of FusedConvs with the same number of output channels
 * and weight rank (so no broadcasting can be involved but for spatial sizes, which the kernel
 * checks); F's output is read only by the Add; F has no residual and no post-residual activation.
 * When both qualify, the one computed later becomes F. An activation reading the sum alone is
 * fused as well (sum_activation). */
static celer_status pass_fuse_add(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *users = index_users(g);
    if (!users) return CELER_ERR_NOMEM;
    for (int k = 0; k < g->n_nodes; k++) {
        celer_node *add = &g->nodes[k];
        if (!is_onnx(add, "Add") || add->n_inputs != 2 || add->n_outputs != 1 || has_attr(add, "broadcast"))
            continue;
        int a = add->inputs[0], b = add->inputs[1];
        if (a < 0 || b < 0 || a == b) continue;
        int pa = g->values[a].producer, pb = g->values[b].producer;
        if (pa < 0 || pb < 0 || !is_fused_conv(&g->nodes[pa]) || !is_fused_conv(&g->nodes[pb])) continue;
        const celer_tensor *wa = constant_of(g, g->nodes[pa].inputs[FC_W]);
        const celer_tensor *wb = constant_of(g, g->nodes[pb].inputs[FC_W]);
        if (wa->shape.rank != wb->shape.rank ||
            fused_out_channels(g, &g->nodes[pa]) != fused_out_channels(g, &g->nodes[pb]))
            continue;
        bool ok_a = sole_user(g, users, a) == k && g->nodes[pa].inputs[FC_SUM] < 0;
        bool ok_b = sole_user(g, users, b) == k && g->nodes[pb].inputs[FC_SUM] < 0;
        if (ok_a && ok_b) ok_a = pa > pb; /* fuse into the later one */
        else if (!ok_a && !ok_b) continue;
        int fk = ok_a ? pa : pb;
        g->nodes[fk].inputs[FC_SUM] = ok_a ? b : a;
        take_output(g, fk, add->outputs[0]);
        add->src = NULL;
        /* the activation after the Add right away: the next block's Add reads its output */
        celer_status st = absorb_activation(g, users, fk);
        if (st) return st;
    }
    return CELER_OK;
}

/* Every reader of every value: (node, input slot) pairs, CSR by value. Implicit (subgraph)
 * reads have slot -1. */
typedef struct readers {
    int *head; /* readers of v: at[head[v]] .. at[head[v+1]-1] */
    struct { int node, slot; } *at;
} readers;

static celer_status index_readers(celer_graph *g, readers *r) {
    int nv = g->n_values;
    r->head = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(nv + 2));
    if (!r->head) return CELER_ERR_NOMEM;
    size_t total = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const celer_node *n = &g->nodes[k];
        for (int j = 0; j < n->n_inputs + n->n_implicit; j++) {
            int v = j < n->n_inputs ? n->inputs[j] : n->implicit[j - n->n_inputs];
            if (v >= 0) r->head[v + 1]++, total++;
        }
    }
    for (int v = 0; v < nv; v++) r->head[v + 1] += r->head[v];
    r->at = celer_arena_alloc(&g->arena, sizeof(*r->at) * (total + 1));
    int *fill = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(nv + 1));
    if (!r->at || !fill) return CELER_ERR_NOMEM;
    memcpy(fill, r->head, sizeof(int) * (size_t)nv);
    for (int k = 0; k < g->n_nodes; k++) {
        const celer_node *n = &g->nodes[k];
        for (int j = 0; j < n->n_inputs + n->n_implicit; j++) {
            int v = j < n->n_inputs ? n->inputs[j] : n->implicit[j - n->n_inputs];
            if (v < 0) continue;
            r->at[fill[v]].node = k;
            r->at[fill[v]++].slot = j < n->n_inputs ? j : -1;
        }
    }
    return CELER_OK;
}

/* A 1-D or 2-D float MaxPool (no Indices output) or AveragePool (no ceil_mode) that oneDNN's
 * pooling can run on blocked data as BlockedPool. */
static bool poolable(const celer_node *n) {
    bool max = is_onnx(n, "MaxPool"), avg = is_onnx(n, "AveragePool");
    const int64_t *k;
    if ((!max && !avg) || n->n_inputs != 1 || n->n_outputs != 1) return false;
    int nk = celer_onnx_attr_ints(n->src, "kernel_shape", &k);
    if (nk != 1 && nk != 2) return false;
    return max || celer_onnx_attr_int(n->src, "ceil_mode", 0) == 0;
}

/* Elementwise activations whose kernels run on blocked data as on plain (the same values in
 * another order): the ones FusedConv did not absorb. */
static bool layout_free_unary(const celer_node *n) {
    static const char *const ops[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
                                      "Elu", "Selu", "Softplus", "Gelu", "Erf", "Abs", "Neg", "Exp"};
    if (n->n_inputs != 1 || n->n_outputs != 1) return false;
    for (size_t i = 0; i < CELER_ARRAY_LEN(ops); i++)
        if (is_onnx(n, ops[i])) return true;
    return is_op(n, CELER_GRAPH_INTERNAL_DOMAIN, FUSED_OP_GELU);
}

/* A Concat along axis 1 (channels of NC...). */
static bool is_channel_concat(const celer_node *n) {
    return is_onnx(n, "Concat") && n->n_inputs >= 1 && n->n_outputs == 1 && celer_onnx_attr_int(n->src, "axis", 0) == 1;
}

static bool is_global_avg(const celer_node *n) {
    return is_onnx(n, "GlobalAveragePool") && n->n_inputs == 1 && n->n_outputs == 1;
}

/* A FusedConv that maps a 1x1 (1, 1x1x1) input to a 1x1 output: kernel of ones, no padding. */
static bool conv_keeps_one(const celer_graph *g, const celer_node *f) {
    if (has_attr(f, FUSED_ATTR_TRANSPOSED)) return false;
    const celer_tensor *w = constant_of(g, f->inputs[FC_W]);
    for (int i = 2; i < w->shape.rank; i++)
        if (w->shape.dims[i] != 1) return false;
    const int64_t *pads;
    int np = celer_onnx_attr_ints(f->src, "pads", &pads);
    for (int i = 0; i < np; i++)
        if (pads[i]) return false;
    const char *ap = celer_onnx_attr_string(f->src, "auto_pad", "NOTSET");
    return !strcmp(ap, "NOTSET") || !strcmp(ap, "VALID");
}

/* Node roles in the layout pass. BLOCKED: writes a new blocked value (plain readers get a
 * LayoutToPlain). ONE: writes [N, C, 1...] with C a multiple of the block, whose bytes are the
 * same in both layouts, so its value serves blocked and plain readers as it is. */
enum { LAYOUT_PLAIN, LAYOUT_BLOCKED, LAYOUT_ONE };

/* What the layout pass knows of each node before choosing: whether its output is 1x1 in space
 * (a GlobalAveragePool, or a FusedConv keeping a 1x1 input 1x1), and whether it could be ONE
 * (that, with channels a multiple of the block, known for a FusedConv; for a GlobalAveragePool
 * only once its input is blocked). */
typedef struct layout_info {
    bool spatial_one, maybe_one;
} layout_info;

static int producer_of(const celer_graph *g, const celer_node *n, int slot) {
    return slot < n->n_inputs && n->inputs[slot] >= 0 ? g->values[n->inputs[slot]].producer : -1;
}

/* Whether node r can read a blocked value at input slot j (a Mul only as the X of a
 * squeeze-excite scale: its other operand could be ONE; a channel Concat when all its parts could
 * be blocked: FusedConvs with channels a multiple of the block, pools, activations). */
static bool reads_blocked(const celer_graph *g, const layout_info *li, const celer_node *r, int j, int block) {
    if (is_fused_conv(r)) return j == FC_X || j == FC_SUM;
    if (poolable(r) || is_global_avg(r) || layout_free_unary(r)) return j == 0;
    if (is_channel_concat(r)) {
        bool ok = true;
        for (int i = 0; i < r->n_inputs && ok; i++) {
            int p = producer_of(g, r, i);
            const celer_node *pn = p >= 0 ? &g->nodes[p] : NULL;
            ok = pn && ((is_fused_conv(pn) && !li[p].maybe_one && fused_out_channels(g, pn) % block == 0) ||
                        poolable(pn) || layout_free_unary(pn));
        }
        return ok;
    }
    if (!is_onnx(r, "Mul") || r->n_inputs != 2 || r->n_outputs != 1 || j > 1) return false;
    int ps = producer_of(g, r, 1 - j);
    return ps >= 0 && li[ps].maybe_one;
}

/* ---- blocked-layout: activations stay in the blocked layout (channels in blocks of
 * opt->layout_block, innermost) between the nodes that can read and write it: FusedConv (X,
 * residual and Y), 1-D and 2-D pooling (converted to BlockedPool), the activations FusedConv did
 * not absorb (layout_free_unary: run as they are), and the squeeze-excite chain: a
 * GlobalAveragePool of a blocked tensor (BlockedGlobalAveragePool) and the 1x1 convolutions after
 * it write [N, C, 1, 1], the same bytes in both layouts, and Mul(X blocked, those scales) becomes
 * BlockedScale; a Concat along channels of blocked parts is a BlockedConcat. Going in topological order, a FusedConv output is blocked when its channel count
 * is a multiple of the block and a reader can take it blocked (or it has a residual: the sum
 * post-op accumulates in place, so Y takes the residual's layout, which is blocked by the same
 * rule since both have the same channels); a pool, activation or scale is blocked when its input
 * is. Every other reader (and a graph output) gets the plain tensor from one LayoutToPlain node,
 * which takes over the original value and its name. */
static celer_status pass_blocked_layout(celer_graph *g, const celer_graph_opt *opt) {
    int block = opt->layout_block;
    if (block <= 0) return CELER_OK;
    int n0 = g->n_nodes;
    readers rd;
    celer_status st = index_readers(g, &rd);
    if (st) return st;
    unsigned char *role = celer_arena_alloc(&g->arena, (size_t)(n0 + 1));
    int64_t *chan = celer_arena_alloc(&g->arena, sizeof(int64_t) * (size_t)(n0 + 1)); /* channels written */
    signed char *xslot = celer_arena_alloc(&g->arena, (size_t)(n0 + 1)); /* a scale's X slot, else -1 */
    layout_info *li = celer_arena_alloc(&g->arena, sizeof *li * (size_t)(n0 + 1));
    if (!role || !xslot || !li || !chan) return CELER_ERR_NOMEM;
    for (int k = 0; k < n0; k++) {
        const celer_node *f = &g->nodes[k];
        int p = f->src ? producer_of(g, f, 0) : -1;
        li[k].spatial_one = li[k].maybe_one = false;
        if (f->src && is_global_avg(f)) {
            li[k].spatial_one = li[k].maybe_one = true;
        } else if (f->src && is_fused_conv(f) && f->inputs[FC_SUM] < 0 && p >= 0 && li[p].spatial_one &&
                   conv_keeps_one(g, f)) {
            li[k].spatial_one = li[k].maybe_one = true;
        }
    }
    for (int k = 0; k < n0; k++) {
        const celer_node *f = &g->nodes[k];
        role[k] = LAYOUT_PLAIN;
        xslot[k] = -1;
        chan[k] = 0;
        if (!f->src || f->n_outputs < 1) continue;
        int y = f->outputs[0], p = producer_of(g, f, 0);
        bool in_blocked = p >= 0 && role[p] == LAYOUT_BLOCKED;
        if (p >= 0) chan[k] = chan[p];
        if (poolable(f) || layout_free_unary(f)) {
            role[k] = in_blocked ? LAYOUT_BLOCKED : LAYOUT_PLAIN;
        } else if (is_global_avg(f)) {
            role[k] = in_blocked ? LAYOUT_ONE : LAYOUT_PLAIN;
        } else if (is_channel_concat(f)) { /* padded parts would leave gaps */
            bool all = true;
            chan[k] = 0;
            for (int j = 0; j < f->n_inputs && all; j++) {
                int pj = producer_of(g, f, j);
                all = pj >= 0 && role[pj] == LAYOUT_BLOCKED && chan[pj] % block == 0;
                chan[k] += all ? chan[pj] : 0;
            }
            role[k] = all ? LAYOUT_BLOCKED : LAYOUT_PLAIN;
        } else if (is_onnx(f, "Mul")) {
            for (int j = 0; j < 2 && f->n_inputs == 2 && f->n_outputs == 1 && xslot[k] < 0; j++) {
                int px = producer_of(g, f, j), ps = producer_of(g, f, 1 - j);
                if (px >= 0 && ps >= 0 && role[px] == LAYOUT_BLOCKED && role[ps] == LAYOUT_ONE && chan[px] == chan[ps])
                    xslot[k] = (signed char)j;
            }
            role[k] = xslot[k] >= 0 ? LAYOUT_BLOCKED : LAYOUT_PLAIN;
            chan[k] = xslot[k] >= 0 ? chan[producer_of(g, f, xslot[k])] : 0;
        } else if (is_fused_conv(f) && li[k].maybe_one) {
            role[k] = LAYOUT_ONE;
            chan[k] = fused_out_channels(g, f);
        } else if (is_fused_conv(f)) {
            chan[k] = fused_out_channels(g, f);
            bool b = f->inputs[FC_SUM] >= 0;
            for (int e = rd.head[y]; e < rd.head[y + 1] && !b; e++)
                b = reads_blocked(g, li, &g->nodes[rd.at[e].node], rd.at[e].slot, block);
            role[k] = b ? LAYOUT_BLOCKED : LAYOUT_PLAIN;
        }
    }
    for (int k = 0; k < n0; k++) {
        if (role[k] == LAYOUT_PLAIN) continue;
        celer_node *f = &g->nodes[k];
        int y = f->outputs[0];
        synth_node *s = NULL;
        if (poolable(f)) { /* its input was rewired when its producer was seen */
            if (!(s = synth_new(g, f->src, FUSED_OP_BLOCKED_POOL, 4))) return CELER_ERR_NOMEM;
            if ((st = set_string(s, FUSED_ATTR_POOL_MODE, is_onnx(f, "MaxPool") ? FUSED_POOL_MAX : FUSED_POOL_AVG)) ||
                (st = set_int(s, FUSED_ATTR_X_BLOCKED, block)) || (st = set_int(s, FUSED_ATTR_Y_BLOCKED, block)))
                return st;
        } else if (is_global_avg(f) || xslot[k] >= 0 || is_channel_concat(f)) {
            const char *op = is_global_avg(f)        ? FUSED_OP_BLOCKED_GLOBAL_AVG
                             : is_channel_concat(f) ? FUSED_OP_BLOCKED_CONCAT
                                                    : FUSED_OP_BLOCKED_SCALE;
            if (!(s = synth_new(g, f->src, op, 1))) return CELER_ERR_NOMEM;
            if ((st = set_int(s, FUSED_ATTR_BLOCK, block))) return st;
            if (xslot[k] == 1) { /* X first */
                int t = f->inputs[0];
                f->inputs[0] = f->inputs[1];
                f->inputs[1] = t;
            }
        } else if (is_fused_conv(f) && (st = set_int(synth_of(f), FUSED_ATTR_Y_BLOCKED, block))) {
            return st;
        }
        if (s) f->src = &s->node;
        bool padded = chan[k] % block != 0;
        if (role[k] == LAYOUT_ONE && !padded) { /* same bytes: readers keep the value; convolutions are told */
            for (int e = rd.head[y]; e < rd.head[y + 1]; e++) {
                celer_node *r = &g->nodes[rd.at[e].node];
                if (is_fused_conv(r) && rd.at[e].slot == FC_X &&
                    (st = set_int(synth_of(r), FUSED_ATTR_X_BLOCKED, block)))
                    return st;
            }
            continue;
        }
        char name[256];
        snprintf(name, sizeof name, "%s (blocked)", g->values[y].name);
        int yb = celer_graph_add_value(g, name);
        if (yb < 0) return CELER_ERR_NOMEM;
        g->values[yb].dtype = g->values[y].dtype;
        f->outputs[0] = yb;
        bool plain_readers = g->values[y].is_output;
        for (int e = rd.head[y]; e < rd.head[y + 1]; e++) {
            int u = rd.at[e].node, j = rd.at[e].slot;
            celer_node *r = &g->nodes[u];
            if (is_fused_conv(r) && j == FC_X) {
                r->inputs[j] = yb;
                if ((st = set_int(synth_of(r), FUSED_ATTR_X_BLOCKED, block))) return st;
            } else if ((is_fused_conv(r) && j == FC_SUM) ||
                       (role[u] != LAYOUT_PLAIN && xslot[u] < 0 && (j == 0 || is_channel_concat(r))) ||
                       (xslot[u] >= 0 && j == (role[k] == LAYOUT_ONE ? 1 - xslot[u] : xslot[u]))) {
                r->inputs[j] = yb; /* a blocked pool, activation, average, concat or scale (not yet rewritten) */
            } else {
                plain_readers = true;
            }
        }
        if (!plain_readers) continue;
        synth_node *t = synth_new(g, NULL, FUSED_OP_LAYOUT_TO_PLAIN, 2);
        if (!t) return CELER_ERR_NOMEM;
        t->node.name = f->src->name;
        if ((st = set_int(t, FUSED_ATTR_BLOCK, block)) || (padded && (st = set_int(t, FUSED_ATTR_CHANNELS, chan[k]))))
            return st;
        int r = celer_graph_add_node(g, &t->node, 1, 1);
        if (r < 0) return CELER_ERR_NOMEM;
        g->nodes[r].inputs[0] = yb;
        g->nodes[r].outputs[0] = y;
    }
    return CELER_OK;
}

/* ---- dead-nodes: nodes none of whose outputs is read or is a graph output. ONNX operators have
 * no side effects, so removing them changes nothing but time and memory. A node without outputs
 * is malformed and stays, for kernel resolution to report. */
static celer_status pass_dead_nodes(celer_graph *g, const celer_graph_opt *opt) {
    (void)opt;
    int *live_uses = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(g->n_values + 1));
    if (!live_uses) return CELER_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++) live_uses[v] = g->values[v].n_uses + g->values[v].is_output;
    for (int k = g->n_nodes - 1; k >= 0; k--) { /* reverse topological order: one sweep */
        celer_node *n = &g->nodes[k];
        bool used = n->n_outputs == 0;
        for (int j = 0; j < n->n_outputs && !used; j++) used = live_uses[n->outputs[j]] > 0;
        if (used) continue;
        for (int j = 0; j < n->n_inputs + n->n_implicit; j++) {
            int v = j < n->n_inputs ? n->inputs[j] : n->implicit[j - n->n_inputs];
            if (v >= 0) live_uses[v]--;
        }
        n->src = NULL;
    }
    return CELER_OK;
}

typedef struct pass {
    const char *name;
    celer_status (*run)(celer_graph *g, const celer_graph_opt *opt);
} pass;

/* In order; fusions before layout, which needs the final FusedConv nodes. */
static const pass passes[] = {
    {"dead-nodes", pass_dead_nodes},
    {"conv-to-fused", pass_conv_to_fused},
    {"fold-batchnorm", pass_fold_batchnorm},
    {"fuse-gelu", pass_fuse_gelu}, /* before the activation fusions, which take its Gelu */
    {"fuse-conv-activation", pass_fuse_activation},
    {"fuse-conv-add", pass_fuse_add},
    {"fuse-layernorm", pass_fuse_layernorm},
    {"matmul-to-fused", pass_fuse_matmul},
    {"blocked-layout", pass_blocked_layout},
};

celer_status celer_graph_optimize(celer_graph *g, const celer_graph_opt *opt) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(passes); i++) {
        celer_status st = passes[i].run(g, opt);
        if (!st) st = celer_graph_finish_rewrite(g);
        if (st) return celer_error_wrap(st, "graph optimization pass '%s'", passes[i].name);
    }
    return CELER_OK;
}
