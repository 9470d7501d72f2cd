/* Compiling a model: kernel resolution, type inference, kernel init. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime_internal.h"

static const char *node_label(const celer_node *n, int index, char *buf, size_t cap) {
    const celer_onnx_node *s = n->src;
    if (s->name && s->name[0])
        snprintf(buf, cap, "node %d (%s '%s')", index, s->op_type, s->name);
    else
        snprintf(buf, cap, "node %d (%s)", index, s->op_type);
    return buf;
}

/* Resolves node k's kernel and infers its output types into the graph's values (compiling the
 * subgraphs of control nodes when `m` is given). On failure the message names the node; `cn` is
 * filled as far as it got. */
static celer_status resolve_node(celer_model *m, celer_graph *g, int k, celer_arena *arena, compiled_node *cn) {
    const celer_node *n = &g->nodes[k];
    char label[256];
    celer_dtype *types = celer_arena_alloc(arena, sizeof(celer_dtype) * (size_t)(n->n_inputs + 1));
    const celer_tensor **consts = celer_arena_alloc(arena, sizeof(void *) * (size_t)(n->n_inputs + 1));
    celer_dtype *out_types = celer_arena_alloc(arena, sizeof(celer_dtype) * (size_t)(n->n_outputs + 1));
    if (!types || !consts || !out_types) return CELER_ERR_NOMEM;
    for (int j = 0; j < n->n_inputs; j++) {
        int v = n->inputs[j];
        if (v < 0) continue;
        const celer_value *val = &g->values[v];
        if (val->kind != CELER_VALUE_TENSOR)
            return celer_errorf(CELER_ERR_UNSUPPORTED,
                                "%s: input '%s' is a sequence, map or optional value, which celer does not support yet",
                                node_label(n, k, label, sizeof label), val->name);
        if (val->dtype == CELER_UNDEFINED)
            return celer_errorf(CELER_ERR_INVALID, "%s: the type of input '%s' is unknown",
                                node_label(n, k, label, sizeof label), val->name);
        types[j] = val->dtype;
        consts[j] = val->constant;
    }
    const char *domain = n->src->domain ? n->src->domain : "";
    /* the passes' own operators have one version */
    int64_t opset = strcmp(domain, CELER_GRAPH_INTERNAL_DOMAIN) ? celer_onnx_opset_version(g->model, domain) : 1;
    if (opset <= 0)
        return celer_errorf(CELER_ERR_INVALID, "%s: the model imports no opset for domain '%s'",
                            node_label(n, k, label, sizeof label), domain[0] ? domain : "ai.onnx");
    const celer_kernel *kern = celer_ops_find(domain, n->src->op_type, (int)opset, types, n->n_inputs);
    if (!kern) return celer_error_wrap(CELER_ERR_UNSUPPORTED, "%s", node_label(n, k, label, sizeof label));
    bool *present = celer_arena_alloc(arena, sizeof(bool) * (size_t)(n->n_inputs + 1));
    if (!present) return CELER_ERR_NOMEM;
    for (int j = 0; j < n->n_inputs; j++) present[j] = n->inputs[j] >= 0;
    /* kernels index their required inputs and outputs without checking */
    celer_status st = celer_ops_check_arity(domain, n->src->op_type, (int)opset, present,
                                            n->n_inputs, n->n_outputs);
    if (st) return celer_error_wrap(st, "%s", node_label(n, k, label, sizeof label));
    cn->kernel = kern;
    cn->info = (celer_op_info){.node = n->src, .opset = (int)opset, .since_version = kern->since,
                               .n_inputs = n->n_inputs, .n_outputs = n->n_outputs,
                               .input_types = types, .input_constants = consts};
    if (!kern->run && !(kern->flags & (CELER_KERNEL_ALIAS | CELER_KERNEL_CONTROL)))
        return celer_errorf(CELER_ERR_INTERNAL, "%s: kernel has no run function",
                            node_label(n, k, label, sizeof label));
    if (kern->flags & CELER_KERNEL_CONTROL) {
        if (!m) { /* checking only: subgraph outputs are not typed here */
            for (int j = 0; j < n->n_outputs; j++) out_types[j] = CELER_FLOAT;
        } else if ((st = celer_control_compile(m, g, k, cn, out_types))) {
            return celer_error_wrap(st, "%s", node_label(n, k, label, sizeof label));
        }
    } else if (kern->infer_types) {
        if ((st = kern->infer_types(&cn->info, out_types)))
            return celer_error_wrap(st, "%s", node_label(n, k, label, sizeof label));
    } else {
        celer_dtype t = kern->type_input >= 0 && kern->type_input < n->n_inputs ? types[kern->type_input]
                                                                                 : CELER_UNDEFINED;
        for (int j = 0; j < n->n_outputs; j++) out_types[j] = t;
    }
    for (int j = 0; j < n->n_outputs; j++) g->values[n->outputs[j]].dtype = out_types[j];
    return CELER_OK;
}

int celer_model_check(const celer_onnx_model *onnx, celer_check_fn report, void *user) {
    celer_graph *g;
    if (celer_graph_build(onnx, &g)) {
        report(user, -1, NULL, CELER_ERR_INVALID, celer_error_message());
        return 1;
    }
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    /* values whose type this check cannot know: outputs of a node that cannot run, of a control
     * node (its subgraphs are not typed here), and of every node fed by one. Their consumers are
     * not checked: a guessed type would only report errors that are not the model's (one gap
     * would cascade into wrong type complaints). */
    bool *unknown = celer_arena_alloc(&arena, sizeof(bool) * (size_t)(g->n_values + 1));
    if (!unknown) {
        report(user, -1, NULL, CELER_ERR_NOMEM, "out of memory checking the model");
        celer_arena_free(&arena);
        celer_graph_free(g);
        return 1;
    }
    memset(unknown, 0, sizeof(bool) * (size_t)(g->n_values + 1));
    int problems = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const celer_node *n = &g->nodes[k];
        bool skip = false;
        for (int j = 0; j < n->n_inputs && !skip; j++) skip = n->inputs[j] >= 0 && unknown[n->inputs[j]];
        compiled_node cn = {0};
        celer_status st = skip ? CELER_OK : resolve_node(NULL, g, k, &arena, &cn);
        if (!st && !skip && cn.kernel->init && !(cn.kernel->flags & CELER_KERNEL_CONTROL)) {
            /* what a kernel refuses at init (an attribute value it does not implement) is the
             * model's problem too: load would stop there */
            void *state = NULL;
            char label[256];
            if ((st = cn.kernel->init(&cn.info, &state)))
                st = celer_error_wrap(st, "%s", node_label(n, k, label, sizeof label));
            if (state && cn.kernel->free_state) cn.kernel->free_state(state);
        }
        if (st) {
            report(user, k, n->src, st, celer_error_message());
            problems++;
        }
        if (st || skip || (cn.kernel && (cn.kernel->flags & CELER_KERNEL_CONTROL)))
            for (int j = 0; j < n->n_outputs; j++) unknown[n->outputs[j]] = true;
    }
    celer_arena_free(&arena);
    celer_graph_free(g);
    return problems;
}

/* ---- constant folding: a node whose inputs are all constants runs once, at load, through its
 * own kernel, and its outputs become constants (graph arena). The graph passes then see them
 * (a BN scale computed by Sqrt/Div, a Reshape target made by Concat...). Skipped: control flow,
 * random operators (their outputs must differ per run), nodes without inputs, strings, outputs
 * above FOLD_MAX_BYTES (a ConstantOfShape must not grow the model), and any node whose kernel
 * fails here, which is left for the run to report. */
#define FOLD_MAX_BYTES ((size_t)16 << 20)

static bool foldable_op(const celer_node *n) {
    static const char *const never[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Multinomial", "Bernoulli"};
    if (n->n_inputs == 0 || n->n_outputs == 0 || n->n_subgraphs) return false;
    for (size_t i = 0; i < CELER_ARRAY_LEN(never); i++)
        if (!strcmp(n->src->op_type, never[i])) return false;
    return true;
}

/* Runs node k of g on its constant inputs; on success its outputs are constants of g. */
static celer_status fold_node(celer_graph *g, int k, celer_arena *tmp) {
    celer_node *n = &g->nodes[k];
    compiled_node cn = {0};
    celer_status st = resolve_node(NULL, g, k, tmp, &cn);
    if (st) return st;
    const celer_kernel *kern = cn.kernel;
    if (kern->flags & CELER_KERNEL_CONTROL) return CELER_ERR_UNSUPPORTED;
    const celer_tensor **in = celer_arena_alloc(tmp, sizeof(void *) * (size_t)(n->n_inputs + 1));
    celer_tensor *out = celer_arena_alloc(&g->arena, sizeof(celer_tensor) * (size_t)(n->n_outputs + 1));
    if (!in || !out) return CELER_ERR_NOMEM;
    for (int j = 0; j < n->n_inputs; j++) {
        in[j] = n->inputs[j] >= 0 ? g->values[n->inputs[j]].constant : NULL;
        if (in[j] && in[j]->dtype == CELER_STRING) return CELER_ERR_UNSUPPORTED;
    }
    for (int j = 0; j < n->n_outputs; j++) {
        out[j].dtype = g->values[n->outputs[j]].dtype;
        if (out[j].dtype == CELER_STRING) return CELER_ERR_UNSUPPORTED;
    }
    void *state = NULL, *local = NULL, *scratch = NULL;
    celer_kernel_call call = {.info = &cn.info, .local = &local, .in = in, .n_in = n->n_inputs, .out = out,
                              .n_out = n->n_outputs};
    if (kern->init && (st = kern->init(&cn.info, &state))) return st;
    call.state = state;
    st = kern->reshape(&call);
    size_t total = 0;
    for (int j = 0; !st && j < n->n_outputs; j++) {
        size_t bytes;
        if (celer_tensor_bytes(&out[j], &bytes) || (total += bytes) > FOLD_MAX_BYTES) st = CELER_ERR_LIMIT;
        else if (j == 0 && (kern->flags & CELER_KERNEL_ALIAS)) out[j].data = in[0]->data;
        else if (!(out[j].data = celer_arena_alloc(&g->arena, bytes ? bytes : 1))) st = CELER_ERR_NOMEM;
    }
    if (!st && call.scratch_size > FOLD_MAX_BYTES) st = CELER_ERR_LIMIT;
    if (!st && kern->run) {
        static _Alignas(64) unsigned char no_scratch[64];
        scratch = call.scratch_size ? aligned_alloc(64, (call.scratch_size + 63) & ~(size_t)63) : NULL;
        call.scratch = call.scratch_size ? scratch : no_scratch;
        st = call.scratch ? kern->run(&call) : CELER_ERR_NOMEM;
    }
    free(scratch);
    if (local && kern->free_local) kern->free_local(local);
    if (state && kern->free_state) kern->free_state(state);
    if (st) return st;
    for (int j = 0; j < n->n_outputs; j++) {
        celer_value *v = &g->values[n->outputs[j]];
        v->constant = &out[j];
        v->has_shape = true;
        v->shape = out[j].shape;
        v->producer = -1;
    }
    n->src = NULL;
    return CELER_OK;
}

static celer_status fold_constants(celer_graph *g) {
    celer_arena tmp;
    celer_arena_init(&tmp, 16 * 1024, 0);
    bool folded = false;
    for (int k = 0; k < g->n_nodes; k++) {
        const celer_node *n = &g->nodes[k];
        if (!foldable_op(n)) continue;
        bool all_constant = true;
        for (int j = 0; j < n->n_inputs && all_constant; j++)
            all_constant = n->inputs[j] < 0 || g->values[n->inputs[j]].constant;
        for (int j = 0; j < n->n_outputs && all_constant; j++)
            all_constant = !g->values[n->outputs[j]].is_output; /* outputs stay computed values */
        if (!all_constant) continue;
        celer_status st = fold_node(g, k, &tmp);
        if (st == CELER_ERR_NOMEM) {
            celer_arena_free(&tmp);
            return st;
        }
        folded |= st == CELER_OK;
    }
    celer_arena_free(&tmp);
    return folded ? celer_graph_finish_rewrite(g) : CELER_OK;
}

static void describe(const celer_value *v, celer_io_desc *d) {
    d->name = v->name;
    d->dtype = v->dtype;
    d->has_shape = v->has_shape;
    d->shape = v->shape;
    d->dim_params = v->dim_params;
}

/* Whether a constant other than v shares bytes with v's (a folded Reshape points at its input's
 * data) and may still be read after node k: then v's bytes must stay, since the loader's pages
 * given back read as zeros. */
static bool bytes_shared(const celer_graph *g, int v, int k, const int *unpacked) {
    const celer_tensor *t = g->values[v].constant;
    size_t n, m;
    if (celer_tensor_bytes(t, &n)) return true;
    uintptr_t a = (uintptr_t)t->data;
    for (int u = 0; u < g->n_values; u++) {
        const celer_value *o = &g->values[u];
        if (u == v || !o->constant || !o->constant->data || celer_tensor_bytes(o->constant, &m)) continue;
        uintptr_t b = (uintptr_t)o->constant->data;
        if (b >= a + n || a >= b + m) continue;
        if (o->is_output || unpacked[u] != 0 || o->last_use > k) return true;
    }
    return false;
}

celer_status celer_runtime_compile_graph(celer_model *m, celer_graph *g, const celer_graph *parent,
                                         compiled_graph *cg) {
    char label[256];
    celer_status st;
    cg->graph = g;
    cg->nodes = celer_arena_alloc(&m->arena, sizeof(compiled_node) * (size_t)(g->n_nodes + 1));
    cg->outer_src = celer_arena_alloc(&m->arena, sizeof(int) * (size_t)(g->n_outer + 1));
    if (!cg->nodes || !cg->outer_src) return CELER_ERR_NOMEM;
    for (int i = 0; i < g->n_outer; i++) {
        celer_value *v = &g->values[g->outer[i]];
        int src = parent ? celer_graph_find(parent, v->name) : -1;
        if (src < 0) return celer_errorf(CELER_ERR_INVALID, "'%s' is not defined in the enclosing graph", v->name);
        cg->outer_src[i] = src;
        v->dtype = parent->values[src].dtype;
        v->kind = parent->values[src].kind;
    }
    for (int k = 0; k < g->n_nodes; k++)
        if ((st = resolve_node(m, g, k, &m->arena, &cg->nodes[k]))) return st;
    /* constants read only by kernels that pack them: released after the last such init, so the
     * raw and the packed weights are never all in memory at once */
    int *unpacked = celer_arena_alloc(&m->arena, sizeof(int) * (size_t)(g->n_values + 1));
    if (!unpacked) return CELER_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++) unpacked[v] = g->values[v].n_uses;
    for (int k = 0; k < g->n_nodes; k++)
        if (cg->nodes[k].kernel->flags & CELER_KERNEL_PACKS_CONSTANTS)
            for (int j = 0; j < g->nodes[k].n_inputs; j++)
                if (g->nodes[k].inputs[j] >= 0) unpacked[g->nodes[k].inputs[j]]--;
    for (int k = 0; k < g->n_nodes; k++) {
        compiled_node *cn = &cg->nodes[k];
        if (cn->kernel->init && (st = cn->kernel->init(&cn->info, &cn->state)))
            return celer_error_wrap(st, "%s", node_label(&g->nodes[k], k, label, sizeof label));
        for (int j = 0; j < g->nodes[k].n_inputs; j++) {
            int v = g->nodes[k].inputs[j];
            const celer_value *val = v >= 0 ? &g->values[v] : NULL;
            if (!val || !val->constant || val->is_output || unpacked[v] != 0 || val->last_use != k ||
                !(cn->kernel->flags & CELER_KERNEL_PACKS_CONSTANTS) || bytes_shared(g, v, k, unpacked))
                continue;
            celer_onnx_release_data(m->onnx, val->constant);
        }
    }
    return CELER_OK;
}

void celer_runtime_free_graph(compiled_graph *cg) {
    if (!cg->nodes || !cg->graph) return;
    for (int k = 0; k < cg->graph->n_nodes; k++) {
        compiled_node *cn = &cg->nodes[k];
        if (cn->state && cn->kernel && cn->kernel->free_state) cn->kernel->free_state(cn->state);
        cn->state = NULL;
        for (int s = 0; cn->subs && s < cg->graph->nodes[k].n_subgraphs; s++)
            if (cn->subs[s]) celer_runtime_free_graph(cn->subs[s]);
    }
}

celer_status celer_model_compile(celer_onnx_model *onnx, const celer_model_options *opts,
                                 celer_model **out) {
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    celer_model *m = celer_arena_alloc(&arena, sizeof *m);
    if (!m) {
        celer_onnx_free(onnx);
        celer_arena_free(&arena);
        return CELER_ERR_NOMEM;
    }
    m->arena = arena;
    m->onnx = onnx;
    if (opts) m->opts = *opts;
    if (m->opts.threads <= 0) m->opts.threads = 1;
    if (!m->opts.max_arena_bytes) m->opts.max_arena_bytes = CELER_RUNTIME_MAX_ARENA;
    celer_status st = celer_graph_build(onnx, &m->graph);
    if (st) goto fail;
    celer_graph *g = m->graph;
    const char *env = getenv("CELER_OPTIMIZE"); /* CELER_OPTIMIZE=0: for comparing and debugging */
    if (env && !strcmp(env, "0")) m->opts.no_optimize = true;
    if (!m->opts.no_optimize) {
        celer_graph_opt gopt = {.layout_block = celer_ops_layout_block()};
        if ((st = fold_constants(g)) || (st = celer_graph_optimize(g, &gopt))) goto fail;
    }
    celer_runtime_set_threads(m->opts.threads); /* weight packing runs oneDNN reorders */
    if ((st = celer_runtime_compile_graph(m, g, NULL, &m->main))) goto fail;
    m->inputs = celer_arena_alloc(&m->arena, sizeof(celer_io_desc) * (size_t)(g->n_inputs + 1));
    m->outputs = celer_arena_alloc(&m->arena, sizeof(celer_io_desc) * (size_t)(g->n_outputs + 1));
    if (!m->inputs || !m->outputs) {
        st = CELER_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < g->n_inputs; i++) describe(&g->values[g->inputs[i]], &m->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++) describe(&g->values[g->outputs[i]], &m->outputs[i]);
    *out = m;
    return CELER_OK;
fail:
    celer_model_free(m);
    return st;
}

celer_status celer_model_load(const char *path, const celer_model_options *opts, celer_model **out) {
    celer_onnx_model *onnx;
    celer_status st = celer_onnx_load(path, &onnx);
    if (st) return st;
    st = celer_model_compile(onnx, opts, out);
    if (st) return celer_error_wrap(st, "%s", path);
    return CELER_OK;
}

void celer_model_free(celer_model *m) {
    if (!m) return;
    celer_runtime_free_graph(&m->main);
    celer_graph_free(m->graph);
    celer_onnx_free(m->onnx);
    celer_arena arena = m->arena;
    celer_arena_free(&arena);
}

int celer_model_input_count(const celer_model *m) { return m->graph->n_inputs; }
int celer_model_output_count(const celer_model *m) { return m->graph->n_outputs; }
const celer_io_desc *celer_model_input(const celer_model *m, int i) { return &m->inputs[i]; }
const celer_io_desc *celer_model_output(const celer_model *m, int i) { return &m->outputs[i]; }
const celer_onnx_model *celer_model_onnx(const celer_model *m) { return m->onnx; }

int celer_model_input_index(const celer_model *m, const char *name) {
    for (int i = 0; i < m->graph->n_inputs; i++)
        if (!strcmp(m->inputs[i].name, name)) return i;
    return -1;
}
