/* Execution contexts: the per-run activation allocator and the node loop.
 *
 * Lifetimes are fixed at load (each value's use count and last user); offsets are assigned as the
 * run goes, because shapes may depend on input values (Reshape targets, NonZero...). Buffers live
 * at offsets in one arena per context: a best-fit free list over a virtual address range, released
 * when their last reader has run, reused in place by elementwise ops at last use, and shared by
 * views (Reshape-like ops). A run that outgrows the arena takes overflow blocks and records its
 * peak; the next run starts with an arena of that size, so steady state allocates nothing. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "runtime_internal.h"

#define ALIGN 64

typedef struct buffer {
    size_t off, size;   /* virtual range; size is rounded to ALIGN */
    unsigned char *ptr; /* arena + off, or an overflow block */
    int overflow;       /* index of ptr in the context's overflow list, or -1 for arena memory */
    int refs;           /* pending reads by nodes (+1 for graph outputs) of values using it */
} buffer;

typedef struct span {
    size_t off, size;
} span;

struct celer_context {
    const celer_model *model;
    const compiled_graph *cg;
    int n_values;
    celer_tensor *tensors; /* per value */
    int *buf_of;           /* per value: buffer index, -1 for memory the context does not own */
    buffer *bufs;          /* per value, plus one for scratch */
    void **locals;         /* per node: kernel per-context state */
    span *free_spans;      /* sorted by offset, coalesced */
    int n_free;
    size_t top, peak;
    unsigned char *arena;
    size_t arena_cap;
    void **overflow; /* blocks taken when the arena was too small: freed when their buffer is
                      * released, or at the next run (NULL once freed) */
    int n_overflow;
    const celer_tensor **in_ptrs; /* scratch for node input pointers */
    celer_tensor *outputs;        /* the graph outputs of the last run */
    celer_node_profile *profile;  /* per node while profiling, else NULL */
};

celer_status celer_context_init(const celer_model *model, celer_context **out) {
    return celer_exec_context_new(model, &model->main, out);
}

celer_status celer_exec_context_new(const celer_model *model, const compiled_graph *cg, celer_context **out) {
    const celer_graph *g = cg->graph;
    celer_context *c = calloc(1, sizeof *c);
    if (!c) return celer_errorf(CELER_ERR_NOMEM, "out of memory creating an execution context");
    int max_in = 1;
    for (int k = 0; k < g->n_nodes; k++) max_in = CELER_MAX(max_in, g->nodes[k].n_inputs);
    size_t nv = (size_t)g->n_values;
    c->model = model;
    c->cg = cg;
    c->n_values = g->n_values;
    c->tensors = calloc(nv + 1, sizeof *c->tensors);
    c->buf_of = calloc(nv + 1, sizeof *c->buf_of);
    c->bufs = calloc(nv + 2, sizeof *c->bufs);
    c->locals = calloc((size_t)g->n_nodes + 1, sizeof *c->locals);
    c->free_spans = calloc(nv + 2, sizeof *c->free_spans);
    c->overflow = calloc(nv + (size_t)g->n_nodes + 2, sizeof *c->overflow); /* values + scratch per node */
    c->in_ptrs = calloc((size_t)max_in, sizeof *c->in_ptrs);
    c->outputs = calloc((size_t)g->n_outputs + 1, sizeof *c->outputs);
    if (!c->tensors || !c->buf_of || !c->bufs || !c->locals || !c->free_spans || !c->overflow ||
        !c->in_ptrs || !c->outputs) {
        celer_context_free(c);
        return celer_errorf(CELER_ERR_NOMEM, "out of memory creating an execution context");
    }
    for (int v = 0; v < g->n_values; v++) {
        c->buf_of[v] = -1;
        if (g->values[v].constant) c->tensors[v] = *g->values[v].constant;
    }
    *out = c;
    return CELER_OK;
}

void celer_context_free(celer_context *c) {
    if (!c) return;
    const compiled_graph *cg = c->cg;
    if (c->locals)
        for (int k = 0; k < cg->graph->n_nodes; k++) {
            if (!c->locals[k]) continue;
            const celer_kernel *kern = cg->nodes[k].kernel;
            if (kern->flags & CELER_KERNEL_CONTROL)
                celer_control_free_local(c->locals[k]);
            else if (kern->free_local)
                kern->free_local(c->locals[k]);
        }
    for (int i = 0; i < c->n_overflow; i++) free(c->overflow[i]);
    free(c->arena);
    free(c->tensors);
    free(c->buf_of);
    free(c->bufs);
    free(c->locals);
    free(c->free_spans);
    free(c->overflow);
    free(c->in_ptrs);
    free(c->outputs);
    free(c->profile);
    free(c);
}

celer_status celer_context_set_profiling(celer_context *c, bool on) {
    free(c->profile);
    c->profile = NULL;
    if (!on) return CELER_OK;
    const celer_graph *g = c->cg->graph;
    if (!(c->profile = calloc((size_t)g->n_nodes + 1, sizeof *c->profile)))
        return celer_errorf(CELER_ERR_NOMEM, "out of memory starting a profile");
    for (int k = 0; k < g->n_nodes; k++) {
        c->profile[k].op_type = g->nodes[k].src->op_type;
        c->profile[k].name = g->nodes[k].src->name ? g->nodes[k].src->name : "";
    }
    return CELER_OK;
}

int celer_context_profile(const celer_context *c, const celer_node_profile **out) {
    *out = c->profile;
    return c->profile ? c->cg->graph->n_nodes : 0;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Multiply-adds x 2 of the node just run, for the ops that are mostly that. */
static double node_flop(const char *op, const celer_kernel_call *call) {
    const celer_tensor *y = &call->out[0];
    if (!strcmp(op, "Conv") || !strcmp(op, "FusedConv")) {
        const celer_tensor *w = call->n_in > 1 ? call->in[1] : NULL;
        if (!w || w->shape.rank < 1 || w->shape.dims[0] <= 0) return 0;
        /* each output element: C/group x kernel products */
        return 2.0 * (double)celer_shape_numel(&y->shape) * (double)(celer_shape_numel(&w->shape) / w->shape.dims[0]);
    }
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul") || !strcmp(op, "FusedMatMul")) {
        const celer_tensor *a = call->in[0];
        if (!a || a->shape.rank < 1 || y->shape.rank < 1) return 0;
        int64_t k = a->shape.rank == 1 ? a->shape.dims[0] : a->shape.dims[a->shape.rank - 1];
        if (!strcmp(op, "Gemm") && celer_onnx_attr_int(call->info->node, "transA", 0)) k = a->shape.dims[0];
        return 2.0 * (double)celer_shape_numel(&y->shape) * (double)k;
    }
    return 0;
}

size_t celer_context_arena_bytes(const celer_context *c) { return c->arena_cap; }

/* ---- allocator ---- */

static void span_release(celer_context *c, size_t off, size_t size) {
    int i = 0;
    while (i < c->n_free && c->free_spans[i].off < off) i++;
    memmove(&c->free_spans[i + 1], &c->free_spans[i], sizeof(span) * (size_t)(c->n_free - i));
    c->free_spans[i] = (span){off, size};
    c->n_free++;
    if (i + 1 < c->n_free && c->free_spans[i].off + c->free_spans[i].size == c->free_spans[i + 1].off) {
        c->free_spans[i].size += c->free_spans[i + 1].size;
        memmove(&c->free_spans[i + 1], &c->free_spans[i + 2], sizeof(span) * (size_t)(c->n_free - i - 2));
        c->n_free--;
    }
    if (i > 0 && c->free_spans[i - 1].off + c->free_spans[i - 1].size == c->free_spans[i].off) {
        c->free_spans[i - 1].size += c->free_spans[i].size;
        memmove(&c->free_spans[i], &c->free_spans[i + 1], sizeof(span) * (size_t)(c->n_free - i - 1));
        c->n_free--;
        i--;
    }
    /* a free span at the top gives its room back */
    if (c->free_spans[i].off + c->free_spans[i].size == c->top) {
        c->top = c->free_spans[i].off;
        c->n_free--;
    }
}

static celer_status buf_alloc(celer_context *c, int b, size_t bytes) {
    size_t size;
    if (celer_add_size(bytes, ALIGN - 1, &size)) goto limit;
    size &= ~(size_t)(ALIGN - 1);
    if (!size) size = ALIGN;
    int best = -1;
    for (int i = 0; i < c->n_free; i++)
        if (c->free_spans[i].size >= size && (best < 0 || c->free_spans[i].size < c->free_spans[best].size))
            best = i;
    size_t off;
    if (best >= 0) {
        off = c->free_spans[best].off;
        c->free_spans[best].off += size;
        c->free_spans[best].size -= size;
        if (!c->free_spans[best].size) {
            memmove(&c->free_spans[best], &c->free_spans[best + 1],
                    sizeof(span) * (size_t)(c->n_free - best - 1));
            c->n_free--;
        }
    } else {
        off = c->top;
        if (off + size > c->model->opts.max_arena_bytes) goto limit;
        c->top += size;
    }
    if (off + size > c->peak) c->peak = off + size;
    buffer *buf = &c->bufs[b];
    buf->off = off;
    buf->size = size;
    buf->refs = 0;
    buf->overflow = -1;
    if (off + size <= c->arena_cap) {
        buf->ptr = c->arena + off;
    } else {
        buf->ptr = aligned_alloc(ALIGN, size);
        if (!buf->ptr) return celer_errorf(CELER_ERR_NOMEM, "out of memory for a %zu-byte activation", size);
        buf->overflow = c->n_overflow;
        c->overflow[c->n_overflow++] = buf->ptr;
    }
    return CELER_OK;
limit:
    return celer_errorf(CELER_ERR_LIMIT, "activations need more than the %zu bytes allowed per context",
                        c->model->opts.max_arena_bytes);
}

/* Releases buffer b: its span goes back to the free list, and an overflow block is freed now.
 * Keeping overflow blocks to the end of the run would make the first run (or any run that outgrows
 * the arena) hold every activation it ever made at once: BERT-base at batch 8 peaked at 1.3 GB
 * of RSS in its first run while its arena needs a fraction of that. */
static void buf_release(celer_context *c, int b) {
    buffer *buf = &c->bufs[b];
    span_release(c, buf->off, buf->size);
    if (buf->overflow >= 0) {
        free(c->overflow[buf->overflow]);
        c->overflow[buf->overflow] = NULL;
        buf->overflow = -1;
    }
}

/* Drops one pending read of buffer b; releases it when none remain. */
static void buf_unref(celer_context *c, int b) {
    if (b < 0) return;
    if (--c->bufs[b].refs == 0) buf_release(c, b);
}

/* Gets the arena ready for a run: frees last run's overflow blocks and grows the arena to the
 * peak seen so far (no outputs of the last run survive this). */
static celer_status reset_arena(celer_context *c) {
    for (int i = 0; i < c->n_overflow; i++) free(c->overflow[i]);
    c->n_overflow = 0;
    if (c->peak > c->arena_cap) {
        free(c->arena);
        c->arena = aligned_alloc(ALIGN, c->peak);
        c->arena_cap = c->arena ? c->peak : 0;
        if (!c->arena) return celer_errorf(CELER_ERR_NOMEM, "out of memory for a %zu-byte arena", c->peak);
    }
    c->n_free = 0;
    c->top = 0;
    return CELER_OK;
}

/* ---- run ---- */

static const char *node_label(const celer_graph *g, int k, char *buf, size_t cap) {
    const celer_onnx_node *s = g->nodes[k].src;
    if (s->name && s->name[0])
        snprintf(buf, cap, "node %d (%s '%s')", k, s->op_type, s->name);
    else
        snprintf(buf, cap, "node %d (%s)", k, s->op_type);
    return buf;
}

static celer_status check_inputs(const celer_model *m, const celer_tensor *inputs) {
    char want[160], got[160];
    for (int i = 0; i < m->graph->n_inputs; i++) {
        const celer_io_desc *d = &m->inputs[i];
        const celer_tensor *t = &inputs[i];
        if (t->dtype != d->dtype)
            return celer_errorf(CELER_ERR_DTYPE, "input '%s': expected %s, got %s", d->name,
                                celer_dtype_name(d->dtype), celer_dtype_name(t->dtype));
        bool ok = t->shape.rank >= 0 && t->shape.rank <= CELER_MAX_RANK;
        for (int r = 0; ok && r < t->shape.rank; r++) ok = t->shape.dims[r] >= 0;
        if (ok && d->has_shape) {
            ok = t->shape.rank == d->shape.rank;
            for (int r = 0; ok && r < d->shape.rank; r++)
                ok = d->shape.dims[r] < 0 || d->shape.dims[r] == t->shape.dims[r];
        }
        if (!ok)
            return celer_errorf(CELER_ERR_SHAPE, "input '%s': expected shape %s, got %s", d->name,
                                celer_shape_str(&d->shape, want, sizeof want),
                                celer_shape_str(&t->shape, got, sizeof got));
        if (!t->data && celer_shape_numel(&t->shape) > 0)
            return celer_errorf(CELER_ERR_INVALID, "input '%s' has no data", d->name);
    }
    return CELER_OK;
}

celer_status celer_context_run(celer_context *c, const celer_tensor *inputs, const celer_tensor **outputs) {
    const celer_model *m = c->model;
    celer_status st = check_inputs(m, inputs);
    if (st) return st;
    celer_runtime_set_threads(m->opts.threads);
    return celer_exec_run(c, inputs, NULL, outputs);
}

void celer_runtime_set_threads(int n) {
    omp_set_num_threads(n); /* per calling thread: each worker sets its own */
    if (openblas_get_num_threads() != n) openblas_set_num_threads(n);
}

celer_tensor *celer_exec_tensor(celer_context *c, int v) { return &c->tensors[v]; }

/* ---- outputs that outlive the run ---- */

struct celer_outputs_hold {
    unsigned char *arena;
    size_t arena_size;
    int n;
    struct {
        unsigned char *p;
        size_t size;
    } blocks[]; /* overflow blocks still alive at the run's end */
};

celer_status celer_context_keep_outputs(celer_context *c, celer_outputs_hold **out) {
    int n = 0;
    for (int i = 0; i < c->n_overflow; i++) n += c->overflow[i] != NULL;
    celer_outputs_hold *h = malloc(sizeof *h + (size_t)n * sizeof h->blocks[0]);
    if (!h) return celer_errorf(CELER_ERR_NOMEM, "out of memory keeping a run's outputs");
    h->arena = c->arena;
    h->arena_size = c->arena_cap;
    h->n = 0;
    for (int i = 0; i < c->n_overflow; i++) {
        if (!c->overflow[i]) continue;
        size_t size = 0; /* the block's buffer knows its size */
        for (int b = 0; b <= c->n_values; b++)
            if (c->bufs[b].overflow == i) size = c->bufs[b].size;
        h->blocks[h->n].p = c->overflow[i];
        h->blocks[h->n++].size = size;
        c->overflow[i] = NULL;
    }
    /* the context forgets them: its next run starts with a fresh arena of the peak's size */
    for (int b = 0; b <= c->n_values; b++) c->bufs[b].overflow = -1;
    c->n_overflow = 0;
    c->arena = NULL;
    c->arena_cap = 0;
    *out = h;
    return CELER_OK;
}

bool celer_outputs_hold_covers(const celer_outputs_hold *h, const void *p, size_t n) {
    const unsigned char *q = p;
    if (!h || !q) return false;
    if (h->arena && q >= h->arena && n <= h->arena_size && (size_t)(q - h->arena) <= h->arena_size - n) return true;
    for (int i = 0; i < h->n; i++)
        if (q >= h->blocks[i].p && n <= h->blocks[i].size && (size_t)(q - h->blocks[i].p) <= h->blocks[i].size - n)
            return true;
    return false;
}

void celer_outputs_release(celer_outputs_hold *h) {
    if (!h) return;
    free(h->arena);
    for (int i = 0; i < h->n; i++) free(h->blocks[i].p);
    free(h);
}

celer_status celer_exec_alloc_output(celer_context *c, int v, size_t bytes) {
    const celer_value *val = &c->cg->graph->values[v];
    celer_status st = buf_alloc(c, v, bytes);
    if (st) return st;
    c->tensors[v].data = c->bufs[v].ptr;
    c->buf_of[v] = v;
    c->bufs[v].refs = val->n_uses + (val->is_output ? 1 : 0);
    return CELER_OK;
}

/* Whether a shape's dims are as bounded as a real tensor's. A shape with a 0 dim holds nothing
 * whatever its other dims, but kernels still multiply and loop over those ([0, 2^40, 2^40] would
 * overflow or spin), so their product may not pass `cap` elements (the activation cap). */
static bool dims_bounded(const celer_shape *s, size_t cap) {
    uint64_t p = 1;
    bool empty = false;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0) return false;
        if (!s->dims[i]) empty = true;
        else if (__builtin_mul_overflow(p, (uint64_t)s->dims[i], &p)) p = UINT64_MAX;
    }
    return !empty || p <= cap;
}

/* Releases the reads node n made and the outputs nobody reads. */
static void finish_node(celer_context *c, const celer_node *n) {
    for (int j = 0; j < n->n_inputs + n->n_implicit; j++) {
        int v = j < n->n_inputs ? n->inputs[j] : n->implicit[j - n->n_inputs];
        if (v >= 0) buf_unref(c, c->buf_of[v]);
    }
    for (int j = 0; j < n->n_outputs; j++) {
        int b = c->buf_of[n->outputs[j]];
        if (b >= 0 && c->bufs[b].refs == 0) buf_release(c, b);
    }
}

celer_status celer_exec_run(celer_context *c, const celer_tensor *inputs, const celer_tensor *const *outer,
                            const celer_tensor **outputs) {
    const celer_model *m = c->model;
    const compiled_graph *cg = c->cg;
    const celer_graph *g = cg->graph;
    char label[256];
    celer_status st;
    if ((st = reset_arena(c))) return st;
    for (int v = 0; v < g->n_values; v++) c->buf_of[v] = -1;
    for (int i = 0; i < g->n_inputs; i++) c->tensors[g->inputs[i]] = inputs[i];
    for (int i = 0; i < g->n_outer; i++) c->tensors[g->outer[i]] = *outer[i];
    const int scratch_buf = g->n_values;

    for (int k = 0; k < g->n_nodes; k++) {
        const celer_node *n = &g->nodes[k];
        const compiled_node *cn = &cg->nodes[k];
        const celer_kernel *kern = cn->kernel;
        /* node outputs are consecutive values (the graph numbers them so) */
        for (int j = 0; j < n->n_outputs; j++) {
            celer_tensor *t = &c->tensors[n->outputs[j]];
            memset(t, 0, sizeof *t);
            t->dtype = g->values[n->outputs[j]].dtype;
        }
        if (kern->flags & CELER_KERNEL_CONTROL) {
            if ((st = celer_control_run(c, m, cg, k, &c->locals[k]))) goto node_fail;
            finish_node(c, n);
            continue;
        }
        for (int j = 0; j < n->n_inputs; j++) c->in_ptrs[j] = n->inputs[j] >= 0 ? &c->tensors[n->inputs[j]] : NULL;
        for (int j = 0; j < n->n_inputs; j++)
            if (c->in_ptrs[j] && !dims_bounded(&c->in_ptrs[j]->shape, m->opts.max_arena_bytes)) {
                st = celer_errorf(CELER_ERR_LIMIT, "input %d has a 0 dim but its other dims multiply "
                                  "past %zu elements", j, m->opts.max_arena_bytes);
                goto node_fail;
            }
        celer_tensor *outs = n->n_outputs ? &c->tensors[n->outputs[0]] : NULL;
        celer_kernel_call call = {.info = &cn->info, .state = cn->state, .local = &c->locals[k],
                                  .in = c->in_ptrs, .n_in = n->n_inputs, .out = outs, .n_out = n->n_outputs};
        if ((st = kern->reshape(&call))) goto node_fail;
        bool any_data = false; /* run has nothing to write when every output is empty */
        for (int j = 0; j < n->n_outputs; j++) {
            int v = n->outputs[j];
            celer_tensor *t = &c->tensors[v];
            size_t bytes;
            if (t->shape.rank < 0 || t->shape.rank > CELER_MAX_RANK || celer_tensor_bytes(t, &bytes)) {
                st = celer_errorf(CELER_ERR_INTERNAL, "output %d has an invalid shape", j);
                goto node_fail;
            }
            if (!dims_bounded(&t->shape, m->opts.max_arena_bytes)) {
                st = celer_errorf(CELER_ERR_LIMIT, "output %d has a 0 dim but its other dims multiply "
                                  "past %zu elements", j, m->opts.max_arena_bytes);
                goto node_fail;
            }
            if (bytes) any_data = true;
            int uses = g->values[v].n_uses + (g->values[v].is_output ? 1 : 0);
            const celer_tensor *in0 = n->n_inputs ? c->in_ptrs[0] : NULL;
            int b0 = n->n_inputs && n->inputs[0] >= 0 ? c->buf_of[n->inputs[0]] : -1;
            size_t in0_bytes = 0;
            if (in0) celer_tensor_bytes(in0, &in0_bytes);
            if (j == 0 && (kern->flags & CELER_KERNEL_INPLACE) && CELER_KERNEL_INPLACE_INPUT(kern->flags)) {
                int ip = CELER_KERNEL_INPLACE_INPUT(kern->flags);
                in0 = ip < n->n_inputs ? c->in_ptrs[ip] : NULL;
                b0 = in0 && n->inputs[ip] >= 0 ? c->buf_of[n->inputs[ip]] : -1;
                in0_bytes = 0;
                if (in0) celer_tensor_bytes(in0, &in0_bytes);
            }
            if (j == 0 && (kern->flags & CELER_KERNEL_ALIAS)) {
                if (!in0 || in0_bytes != bytes || celer_dtype_size(in0->dtype) != celer_dtype_size(t->dtype)) {
                    st = celer_errorf(CELER_ERR_SHAPE, "view of %zu bytes over an input of %zu bytes", bytes, in0_bytes);
                    goto node_fail;
                }
                t->data = in0->data;
                c->buf_of[v] = b0;
                if (b0 >= 0) c->bufs[b0].refs += uses;
                continue;
            }
            if (j == 0 && (kern->flags & CELER_KERNEL_INPLACE) && b0 >= 0 && in0_bytes == bytes &&
                in0->dtype == t->dtype) {
                int reads_here = 0;
                for (int i = 0; i < n->n_inputs; i++)
                    if (n->inputs[i] >= 0 && c->buf_of[n->inputs[i]] == b0) reads_here++;
                bool exclusive = CELER_KERNEL_INPLACE_INPUT(kern->flags) != 0;
                if (c->bufs[b0].refs == reads_here && (!exclusive || reads_here == 1)) {
                    t->data = c->bufs[b0].ptr;
                    c->buf_of[v] = b0;
                    c->bufs[b0].refs += uses;
                    continue;
                }
            }
            if ((st = celer_exec_alloc_output(c, v, bytes))) goto node_fail;
        }
        if (kern->run && any_data) {
            /* never NULL, so a kernel may form `scratch + 0` when it needs none (empty axes) */
            static _Alignas(ALIGN) unsigned char no_scratch[ALIGN];
            call.scratch = no_scratch;
            if (call.scratch_size) {
                if ((st = buf_alloc(c, scratch_buf, call.scratch_size))) goto node_fail;
                call.scratch = c->bufs[scratch_buf].ptr;
                c->bufs[scratch_buf].refs = 1;
            }
            double t0 = c->profile ? now_ms() : 0;
            st = kern->run(&call);
            if (c->profile && !st) {
                c->profile[k].ms += now_ms() - t0;
                c->profile[k].flop += node_flop(n->src->op_type, &call);
                c->profile[k].runs++;
            }
            if (call.scratch_size) buf_unref(c, scratch_buf);
            if (st) goto node_fail;
        }
        finish_node(c, n);
        continue;
    node_fail:
        return celer_error_wrap(st, "%s", node_label(g, k, label, sizeof label));
    }
    for (int i = 0; i < g->n_outputs; i++) c->outputs[i] = c->tensors[g->outputs[i]];
    *outputs = c->outputs;
    return CELER_OK;
}
