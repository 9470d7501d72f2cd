/* Control flow: If, Loop and Scan run their subgraphs in child contexts of the running context.
 *
 * Each control node gets, per execution context, one child context per subgraph (made at its
 * first run) and growable buffers for loop-carried values and scan outputs. Values of enclosing
 * graphs are bound to the child by pointer, never copied; results are copied into the parent's
 * arena because the child's arena is reused by its next run. */
#include <stdlib.h>
#include <string.h>

#include "runtime_internal.h"

typedef struct grow_buf {
    unsigned char *p;
    size_t cap;
} grow_buf;

typedef struct control_local {
    int n_children;
    celer_context **children;
    const celer_tensor **outer;  /* bindings for a child's outer values (largest n_outer) */
    int n_state;                 /* Loop/Scan: carried values */
    grow_buf *carry[2];          /* double-buffered carried values */
    int n_scan_in;
    grow_buf *slices;            /* Scan: the current slice of each scan input */
    celer_tensor *body_in;       /* a body's formal inputs for the next iteration */
    grow_buf iter_and_cond;      /* Loop: storage of the iteration number and condition */
    size_t max_bytes;            /* the model's cap on one buffer */
} control_local;

/* Makes buffer b at least `need` bytes (at most `cap`); keeps its contents. */
static celer_status grow(grow_buf *b, size_t need, size_t cap_bytes) {
    if (need <= b->cap) return CELER_OK;
    if (need > cap_bytes)
        return celer_errorf(CELER_ERR_LIMIT, "control flow needs a %zu-byte buffer", need);
    size_t cap = CELER_MAX(need, b->cap * 2);
    unsigned char *p = realloc(b->p, cap);
    if (!p) return celer_errorf(CELER_ERR_NOMEM, "out of memory for a %zu-byte buffer", cap);
    b->p = p;
    b->cap = cap;
    return CELER_OK;
}

void celer_control_free_local(void *p) {
    control_local *l = p;
    if (!l) return;
    for (int i = 0; i < l->n_children; i++) celer_context_free(l->children[i]);
    for (int h = 0; h < 2; h++) {
        for (int i = 0; l->carry[h] && i < l->n_state; i++) free(l->carry[h][i].p);
        free(l->carry[h]);
    }
    for (int i = 0; l->slices && i < l->n_scan_in; i++) free(l->slices[i].p);
    free(l->slices);
    free(l->iter_and_cond.p);
    free(l->children);
    free(l->outer);
    free(l->body_in);
    free(l);
}

static celer_status make_local(const celer_model *m, const compiled_node *cn, const celer_node *n,
                               control_local **out) {
    control_local *l = calloc(1, sizeof *l);
    if (!l) return CELER_ERR_NOMEM;
    *out = l;
    int max_outer = 1, max_in = 1;
    l->children = calloc((size_t)n->n_subgraphs, sizeof *l->children);
    if (!l->children) return CELER_ERR_NOMEM;
    for (int s = 0; s < n->n_subgraphs; s++) {
        celer_status st = celer_exec_context_new(m, cn->subs[s], &l->children[s]);
        if (st) return st;
        l->n_children++;
        max_outer = CELER_MAX(max_outer, cn->subs[s]->graph->n_outer);
        max_in = CELER_MAX(max_in, cn->subs[s]->graph->n_inputs);
    }
    l->outer = calloc((size_t)max_outer, sizeof *l->outer);
    l->body_in = calloc((size_t)max_in, sizeof *l->body_in);
    l->n_state = n->n_inputs;
    l->n_scan_in = n->n_inputs;
    l->carry[0] = calloc((size_t)n->n_inputs + 1, sizeof(grow_buf));
    l->carry[1] = calloc((size_t)n->n_inputs + 1, sizeof(grow_buf));
    l->slices = calloc((size_t)n->n_inputs + 1, sizeof(grow_buf));
    if (!l->outer || !l->body_in || !l->carry[0] || !l->carry[1] || !l->slices) return CELER_ERR_NOMEM;
    l->max_bytes = m->opts.max_arena_bytes;
    return grow(&l->iter_and_cond, 16, l->max_bytes);
}

/* Binds the child's outer values to the parent's tensors. */
static const celer_tensor *const *bind_outer(celer_context *parent, const compiled_graph *sub, control_local *l) {
    for (int i = 0; i < sub->graph->n_outer; i++) l->outer[i] = celer_exec_tensor(parent, sub->outer_src[i]);
    return l->outer;
}

/* Copies `src` into the parent's value v (a node output). */
static celer_status emit(celer_context *c, int v, const celer_tensor *src) {
    size_t bytes;
    celer_tensor *t = celer_exec_tensor(c, v);
    t->dtype = src->dtype;
    t->shape = src->shape;
    celer_status st = celer_tensor_bytes(t, &bytes);
    if (!st) st = celer_exec_alloc_output(c, v, bytes);
    if (!st && bytes) memcpy(t->data, src->data, bytes);
    return st;
}

/* Copies `src` into carried buffer b and describes it in *dst. */
static celer_status carry(grow_buf *b, const celer_tensor *src, celer_tensor *dst, size_t max_bytes) {
    size_t bytes;
    celer_status st = celer_tensor_bytes(src, &bytes);
    if (!st) st = grow(b, bytes ? bytes : 1, max_bytes);
    if (st) return st;
    if (bytes) memmove(b->p, src->data, bytes);
    *dst = *src;
    dst->data = b->p;
    return CELER_OK;
}

static const compiled_graph *sub_named(const compiled_node *cn, const celer_node *n, const char *attr, int *index) {
    for (int s = 0; s < n->n_subgraphs; s++)
        if (!strcmp(n->subgraph_attrs[s], attr)) {
            *index = s;
            return cn->subs[s];
        }
    return NULL;
}

static bool truthy(const celer_tensor *t) {
    return t && celer_shape_numel(&t->shape) >= 1 && ((const uint8_t *)t->data)[0] != 0;
}

/* ---- compile ---- */

/* Sets undeclared input types of subgraph `sub` from `types` (one per formal input). */
static void type_inputs(celer_graph *sub, const celer_dtype *types, int n) {
    for (int i = 0; i < sub->n_inputs && i < n; i++) {
        celer_value *v = &sub->values[sub->inputs[i]];
        if (v->dtype == CELER_UNDEFINED) v->dtype = types[i];
    }
}

celer_status celer_control_compile(celer_model *m, celer_graph *g, int k, compiled_node *cn, celer_dtype *out_types) {
    const celer_node *n = &g->nodes[k];
    const char *op = n->src->op_type;
    cn->subs = celer_arena_alloc(&m->arena, sizeof(compiled_graph *) * (size_t)(n->n_subgraphs + 1));
    if (!cn->subs) return CELER_ERR_NOMEM;
    celer_dtype types[CELER_GRAPH_MAX_NODE_IO + 2];
    int n_in = 0;
    if (!strcmp(op, "Loop")) {
        if (n->n_inputs < 2) return celer_errorf(CELER_ERR_INVALID, "Loop needs at least 2 inputs (M, cond)");
        types[n_in++] = CELER_INT64;
        types[n_in++] = CELER_BOOL;
        for (int i = 2; i < n->n_inputs; i++) types[n_in++] = cn->info.input_types[i];
    } else if (!strcmp(op, "Scan")) {
        for (int i = 0; i < n->n_inputs; i++) types[n_in++] = cn->info.input_types[i];
    }
    for (int s = 0; s < n->n_subgraphs; s++) {
        celer_graph *sub = n->subgraphs[s];
        type_inputs(sub, types, n_in);
        cn->subs[s] = celer_arena_alloc(&m->arena, sizeof(compiled_graph));
        if (!cn->subs[s]) return CELER_ERR_NOMEM;
        celer_status st = celer_runtime_compile_graph(m, sub, g, cn->subs[s]);
        if (st) return celer_error_wrap(st, "subgraph '%s'", n->subgraph_attrs[s]);
    }
    int which;
    const compiled_graph *body = sub_named(cn, n, !strcmp(op, "If") ? "then_branch" : "body", &which);
    if (!body) return celer_errorf(CELER_ERR_INVALID, "%s has no %s attribute", op, !strcmp(op, "If") ? "then_branch" : "body");
    const celer_graph *b = body->graph;
    int skip = !strcmp(op, "Loop") ? 1 : 0; /* Loop's body starts its outputs with the condition */
    if (!strcmp(op, "If")) {
        int other;
        const compiled_graph *e = sub_named(cn, n, "else_branch", &other);
        if (!e || e->graph->n_outputs != b->n_outputs || b->n_outputs != n->n_outputs)
            return celer_errorf(CELER_ERR_INVALID, "If: then_branch and else_branch must have %d outputs each", n->n_outputs);
    } else if (!strcmp(op, "Loop")) {
        if (b->n_inputs != n->n_inputs || b->n_outputs != n->n_outputs + 1)
            return celer_errorf(CELER_ERR_INVALID, "Loop: body has %d inputs and %d outputs; the node needs %d and %d",
                                b->n_inputs, b->n_outputs, n->n_inputs, n->n_outputs + 1);
    } else if (b->n_inputs != n->n_inputs || b->n_outputs != n->n_outputs) {
        return celer_errorf(CELER_ERR_INVALID, "Scan: body has %d inputs and %d outputs; the node has %d and %d",
                            b->n_inputs, b->n_outputs, n->n_inputs, n->n_outputs);
    }
    for (int j = 0; j < n->n_outputs; j++) {
        const celer_value *v = &b->values[b->outputs[j + skip]];
        if (v->kind != CELER_VALUE_TENSOR || v->dtype == CELER_UNDEFINED)
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: output %d of the subgraph is not a typed tensor", op, j);
        out_types[j] = v->dtype;
    }
    return CELER_OK;
}

/* ---- run ---- */

static celer_status run_if(celer_context *c, const compiled_node *cn, const celer_node *n, control_local *l) {
    const celer_tensor *cond = celer_exec_tensor(c, n->inputs[0]);
    int s = 0;
    const compiled_graph *sub = sub_named(cn, n, truthy(cond) ? "then_branch" : "else_branch", &s);
    const celer_tensor *out;
    celer_status st = celer_exec_run(l->children[s], NULL, bind_outer(c, sub, l), &out);
    for (int j = 0; !st && j < n->n_outputs; j++) st = emit(c, n->outputs[j], &out[j]);
    return st;
}

static celer_status run_loop(celer_context *c, const compiled_node *cn, const celer_node *n, control_local *l) {
    int s = 0;
    const compiled_graph *body = sub_named(cn, n, "body", &s);
    const int n_state = n->n_inputs - 2, n_scan = n->n_outputs - n_state;
    const celer_tensor *max_t = n->inputs[0] >= 0 ? celer_exec_tensor(c, n->inputs[0]) : NULL;
    const celer_tensor *cond_t = n->inputs[1] >= 0 ? celer_exec_tensor(c, n->inputs[1]) : NULL;
    int64_t max_iter = max_t && celer_shape_numel(&max_t->shape) >= 1 ? ((const int64_t *)max_t->data)[0] : -1;
    bool cond = cond_t ? truthy(cond_t) : true;
    int64_t *iter = (int64_t *)l->iter_and_cond.p;
    uint8_t *cond_byte = l->iter_and_cond.p + 8;
    l->body_in[0] = (celer_tensor){.dtype = CELER_INT64, .shape = {0, {0}}, .data = iter};
    l->body_in[1] = (celer_tensor){.dtype = CELER_BOOL, .shape = {0, {0}}, .data = cond_byte};
    for (int i = 0; i < n_state; i++) l->body_in[2 + i] = *celer_exec_tensor(c, n->inputs[2 + i]);
    celer_shape scan_shape[CELER_GRAPH_MAX_NODE_IO];
    celer_status st = CELER_OK;
    int64_t it = 0;
    for (; (max_iter < 0 || it < max_iter) && cond; it++) {
        if (it >= CELER_RUNTIME_MAX_ITERATIONS)
            return celer_errorf(CELER_ERR_LIMIT, "Loop ran more than %lld iterations", (long long)CELER_RUNTIME_MAX_ITERATIONS);
        *iter = it;
        *cond_byte = 1;
        const celer_tensor *out;
        if ((st = celer_exec_run(l->children[s], l->body_in, bind_outer(c, body, l), &out))) return st;
        cond = truthy(&out[0]);
        grow_buf *next = l->carry[it & 1];
        for (int i = 0; i < n_state; i++)
            if ((st = carry(&next[i], &out[1 + i], &l->body_in[2 + i], l->max_bytes))) return st;
        for (int j = 0; j < n_scan; j++) {
            const celer_tensor *o = &out[1 + n_state + j];
            size_t bytes, total;
            if ((st = celer_tensor_bytes(o, &bytes))) return st;
            if (it == 0) {
                scan_shape[j] = o->shape;
            } else if (!celer_shape_equal(&scan_shape[j], &o->shape)) {
                return celer_errorf(CELER_ERR_SHAPE, "Loop: scan output %d changes shape between iterations", j);
            }
            if (celer_mul_size(bytes, (size_t)it + 1, &total)) return celer_errorf(CELER_ERR_LIMIT, "Loop: scan output too large");
            if ((st = grow(&l->slices[j], total ? total : 1, l->max_bytes))) return st;
            if (bytes) memcpy(l->slices[j].p + bytes * (size_t)it, o->data, bytes);
        }
    }
    for (int i = 0; i < n_state && !st; i++) st = emit(c, n->outputs[i], &l->body_in[2 + i]);
    for (int j = 0; j < n_scan && !st; j++) {
        celer_tensor t = {.dtype = celer_exec_tensor(c, n->outputs[n_state + j])->dtype, .data = l->slices[j].p};
        if (it == 0) {
            t.shape = (celer_shape){1, {0}};
        } else {
            if (scan_shape[j].rank >= CELER_MAX_RANK) return celer_errorf(CELER_ERR_UNSUPPORTED, "Loop: scan output rank too high");
            t.shape.rank = scan_shape[j].rank + 1;
            t.shape.dims[0] = it;
            memcpy(&t.shape.dims[1], scan_shape[j].dims, sizeof(int64_t) * (size_t)scan_shape[j].rank);
        }
        st = emit(c, n->outputs[n_state + j], &t);
    }
    return st;
}

/* Reads an INTS attribute into axes[0..n) with a default of 0 and normalises negative values. */
static void read_axes(const celer_onnx_node *node, const char *name, int n, int64_t *axes) {
    const int64_t *a;
    int count = celer_onnx_attr_ints(node, name, &a);
    for (int i = 0; i < n; i++) axes[i] = i < count ? a[i] : 0;
}

static celer_status run_scan(celer_context *c, const compiled_node *cn, const celer_node *n, control_local *l) {
    int s = 0;
    const compiled_graph *body = sub_named(cn, n, "body", &s);
    const celer_onnx_node *src = n->src;
    const int64_t n_scan_attr = celer_onnx_attr_int(src, "num_scan_inputs", 0);
    if (n_scan_attr < 1 || n_scan_attr > n->n_inputs) /* before any int arithmetic on it */
        return celer_errorf(CELER_ERR_INVALID, "Scan: num_scan_inputs %lld does not fit %d inputs",
                            (long long)n_scan_attr, n->n_inputs);
    const int n_scan_in = (int)n_scan_attr;
    const int n_state = n->n_inputs - n_scan_in, n_scan_out = n->n_outputs - n_state;
    if (n_scan_out < 0)
        return celer_errorf(CELER_ERR_INVALID, "Scan: num_scan_inputs %d does not fit %d inputs", n_scan_in, n->n_inputs);
    int64_t in_axes[CELER_GRAPH_MAX_NODE_IO], in_dirs[CELER_GRAPH_MAX_NODE_IO];
    int64_t out_axes[CELER_GRAPH_MAX_NODE_IO], out_dirs[CELER_GRAPH_MAX_NODE_IO];
    read_axes(src, "scan_input_axes", n_scan_in, in_axes);
    read_axes(src, "scan_input_directions", n_scan_in, in_dirs);
    read_axes(src, "scan_output_axes", n_scan_out, out_axes);
    read_axes(src, "scan_output_directions", n_scan_out, out_dirs);
    int64_t T = -1;
    for (int i = 0; i < n_scan_in; i++) {
        const celer_tensor *x = celer_exec_tensor(c, n->inputs[n_state + i]);
        int r = x->shape.rank;
        if (in_axes[i] < -r || in_axes[i] >= r)
            return celer_errorf(CELER_ERR_INVALID, "Scan: scan_input_axes[%d] = %lld is out of range for rank %d", i,
                                (long long)in_axes[i], r);
        if (in_axes[i] < 0) in_axes[i] += r;
        int64_t len = x->shape.dims[in_axes[i]];
        if (T >= 0 && len != T)
            return celer_errorf(CELER_ERR_SHAPE, "Scan: scan inputs have different lengths (%lld and %lld)", (long long)T,
                                (long long)len);
        T = len;
    }
    for (int i = 0; i < n_state; i++) l->body_in[i] = *celer_exec_tensor(c, n->inputs[i]);
    celer_status st = CELER_OK;
    for (int64_t t = 0; t < T; t++) {
        /* slice t (or T-1-t) of every scan input, along its axis, into a contiguous buffer */
        for (int i = 0; i < n_scan_in; i++) {
            const celer_tensor *x = celer_exec_tensor(c, n->inputs[n_state + i]);
            int ax = (int)in_axes[i];
            int64_t pos = in_dirs[i] ? T - 1 - t : t;
            size_t es = celer_dtype_size(x->dtype), outer = 1, inner = es;
            for (int d = 0; d < ax; d++) outer *= (size_t)x->shape.dims[d];
            for (int d = ax + 1; d < x->shape.rank; d++) inner *= (size_t)x->shape.dims[d];
            if ((st = grow(&l->slices[i], outer * inner > 0 ? outer * inner : 1, l->max_bytes))) return st;
            for (size_t o = 0; o < outer; o++)
                memcpy(l->slices[i].p + o * inner, (const unsigned char *)x->data + (o * (size_t)T + (size_t)pos) * inner, inner);
            celer_tensor *b = &l->body_in[n_state + i];
            b->dtype = x->dtype;
            b->shape.rank = x->shape.rank - 1;
            for (int d = 0, e = 0; d < x->shape.rank; d++)
                if (d != ax) b->shape.dims[e++] = x->shape.dims[d];
            b->data = l->slices[i].p;
        }
        const celer_tensor *out;
        if ((st = celer_exec_run(l->children[s], l->body_in, bind_outer(c, body, l), &out))) return st;
        for (int j = 0; j < n_scan_out; j++) {
            const celer_tensor *o = &out[n_state + j];
            int v = n->outputs[n_state + j];
            celer_tensor *dst = celer_exec_tensor(c, v);
            int r = o->shape.rank + 1;
            int64_t ax = out_axes[j] < 0 ? out_axes[j] + r : out_axes[j];
            if (ax < 0 || ax >= r || r > CELER_MAX_RANK)
                return celer_errorf(CELER_ERR_INVALID, "Scan: scan_output_axes[%d] is out of range", j);
            if (t == 0) { /* the stacked output's shape is known once the first slice is */
                dst->dtype = o->dtype;
                dst->shape.rank = r;
                for (int d = 0, e = 0; d < r; d++) dst->shape.dims[d] = d == ax ? T : o->shape.dims[e++];
                size_t bytes;
                if ((st = celer_tensor_bytes(dst, &bytes)) || (st = celer_exec_alloc_output(c, v, bytes))) return st;
            }
            size_t es = celer_dtype_size(o->dtype), outer = 1, inner = es;
            for (int d = 0; d < ax; d++) outer *= (size_t)o->shape.dims[d];
            for (int d = (int)ax; d < o->shape.rank; d++) inner *= (size_t)o->shape.dims[d];
            if (outer * inner != (size_t)celer_shape_numel(&o->shape) * es || dst->shape.dims[ax] != T)
                return celer_errorf(CELER_ERR_SHAPE, "Scan: scan output %d changes shape between iterations", j);
            int64_t pos = out_dirs[j] ? T - 1 - t : t;
            for (size_t q = 0; q < outer; q++)
                memcpy((unsigned char *)dst->data + (q * (size_t)T + (size_t)pos) * inner,
                       (const unsigned char *)o->data + q * inner, inner);
        }
        grow_buf *next = l->carry[t & 1];
        for (int i = 0; i < n_state; i++)
            if ((st = carry(&next[i], &out[i], &l->body_in[i], l->max_bytes))) return st;
    }
    for (int i = 0; i < n_state && !st; i++) st = emit(c, n->outputs[i], &l->body_in[i]);
    if (T == 0)
        for (int j = 0; j < n_scan_out && !st; j++) {
            celer_tensor empty = {.dtype = celer_exec_tensor(c, n->outputs[n_state + j])->dtype, .shape = {1, {0}}};
            st = emit(c, n->outputs[n_state + j], &empty);
        }
    return st;
}

celer_status celer_control_run(celer_context *c, const celer_model *m, const compiled_graph *cg, int k, void **local) {
    const celer_node *n = &cg->graph->nodes[k];
    const compiled_node *cn = &cg->nodes[k];
    celer_status st;
    if (!*local) {
        control_local *l = NULL;
        st = make_local(m, cn, n, &l);
        *local = l;
        if (st) return st;
    }
    control_local *l = *local;
    const char *op = n->src->op_type;
    if (!strcmp(op, "If")) return run_if(c, cn, n, l);
    if (!strcmp(op, "Loop")) return run_loop(c, cn, n, l);
    return run_scan(c, cn, n, l);
}
