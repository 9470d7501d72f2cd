/* Building the IR: name resolution, Constant nodes, topological order, uses and lifetimes. */
#include "graph.h"

#include <stdio.h>
#include <string.h>

/* ---- name table: open addressing over value indices ---- */
struct celer_graph_names {
    int cap; /* power of two */
    int *slots; /* value index + 1; 0 = empty */
};

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int names_lookup(const celer_graph *g, const char *name) {
    const struct celer_graph_names *t = g->names;
    for (uint64_t i = hash_name(name) & (uint64_t)(t->cap - 1);; i = (i + 1) & (uint64_t)(t->cap - 1)) {
        int v = t->slots[i] - 1;
        if (v < 0) return -1;
        if (strcmp(g->values[v].name, name) == 0) return v;
    }
}

static void names_insert(celer_graph *g, int v) {
    struct celer_graph_names *t = g->names;
    uint64_t i = hash_name(g->values[v].name) & (uint64_t)(t->cap - 1);
    while (t->slots[i]) i = (i + 1) & (uint64_t)(t->cap - 1);
    t->slots[i] = v + 1;
}

int celer_graph_find(const celer_graph *graph, const char *name) {
    return name && name[0] ? names_lookup(graph, name) : -1;
}

/* Appends a value; named values enter the name table (the caller checked it is new). */
static int add_value(celer_graph *g, const char *name) {
    int v = g->n_values++;
    celer_value *val = &g->values[v];
    memset(val, 0, sizeof *val);
    val->name = name ? name : "";
    val->producer = -1;
    val->last_use = -1;
    if (val->name[0]) names_insert(g, v);
    return v;
}

static void apply_value_info(celer_value *val, const celer_onnx_value_info *vi) {
    if (vi->kind != CELER_VALUE_UNKNOWN) val->kind = vi->kind; /* no type given: a tensor */
    if (vi->dtype != CELER_UNDEFINED) val->dtype = vi->dtype;
    if (vi->has_shape) {
        val->has_shape = true;
        val->shape = vi->shape;
        memcpy(val->dim_params, vi->dim_params, sizeof val->dim_params);
    }
}

/* The tensor a Constant node holds, in whichever attribute form it uses. */
static celer_status constant_tensor(celer_graph *g, const celer_onnx_node *n, const celer_tensor **out) {
    const char *who = n->name && n->name[0] ? n->name : (n->n_outputs ? n->outputs[0] : "?");
    if (n->n_attrs != 1)
        return celer_errorf(CELER_ERR_INVALID, "Constant '%s': expected exactly one attribute, got %d",
                            who, n->n_attrs);
    const celer_onnx_attr *a = &n->attrs[0];
    if (!strcmp(a->name, "value") && a->type == CELER_ATTR_TENSOR && a->t) {
        *out = a->t;
        return CELER_OK;
    }
    celer_tensor *t = celer_arena_alloc(&g->arena, sizeof *t);
    if (!t) return CELER_ERR_NOMEM;
    size_t count = 1, esize;
    const void *src;
    celer_str one; /* value_string as a tensor element */
    if (!strcmp(a->name, "value_float") && a->type == CELER_ATTR_FLOAT) {
        t->dtype = CELER_FLOAT;
        src = &a->f;
    } else if (!strcmp(a->name, "value_int") && a->type == CELER_ATTR_INT) {
        t->dtype = CELER_INT64;
        src = &a->i;
    } else if (!strcmp(a->name, "value_floats") && a->type == CELER_ATTR_FLOATS) {
        t->dtype = CELER_FLOAT;
        t->shape = (celer_shape){1, {a->n}};
        count = (size_t)a->n;
        src = a->floats;
    } else if (!strcmp(a->name, "value_ints") && a->type == CELER_ATTR_INTS) {
        t->dtype = CELER_INT64;
        t->shape = (celer_shape){1, {a->n}};
        count = (size_t)a->n;
        src = a->ints;
    } else if (!strcmp(a->name, "value_string") && a->type == CELER_ATTR_STRING) {
        t->dtype = CELER_STRING;
        one = (celer_str){a->s ? a->s : "", a->s ? a->s_len : 0};
        src = &one;
    } else if (!strcmp(a->name, "value_strings") && a->type == CELER_ATTR_STRINGS) {
        t->dtype = CELER_STRING;
        t->shape = (celer_shape){1, {a->n}};
        count = (size_t)a->n;
        src = a->strings;
    } else {
        return celer_errorf(CELER_ERR_UNSUPPORTED, "Constant '%s': attribute '%s' is not supported",
                            who, a->name);
    }
    esize = celer_dtype_size(t->dtype);
    t->data = celer_arena_alloc(&g->arena, count * esize);
    if (!t->data) return CELER_ERR_NOMEM;
    if (count) memcpy(t->data, src, count * esize);
    *out = t;
    return CELER_OK;
}

static bool is_constant_node(const celer_onnx_node *n) {
    return !strcmp(n->op_type, "Constant") && (!n->domain[0] || !strcmp(n->domain, "ai.onnx"));
}

static const char *node_label(const celer_onnx_node *n, int index, char *buf, size_t cap) {
    if (n->name && n->name[0])
        snprintf(buf, cap, "node %d (%s '%s')", index, n->op_type, n->name);
    else
        snprintf(buf, cap, "node %d (%s)", index, n->op_type);
    return buf;
}

/* The j-th value node n reads: its inputs, then the enclosing-scope values its subgraphs read. */
static int node_read(const celer_node *n, int j) {
    return j < n->n_inputs ? n->inputs[j] : n->implicit[j - n->n_inputs];
}

/* Kahn's algorithm over the non-Constant nodes; ONNX asks files to be sorted, not all are. */
static celer_status sort_nodes(celer_graph *g, celer_node *unsorted, int n) {
    int *pending = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n ? n : 1));
    int *order = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n ? n : 1));
    /* consumers of each value: CSR built from node inputs */
    int *head = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(g->n_values + 1));
    if (!pending || !order || !head) return CELER_ERR_NOMEM;
    size_t edges = 0;
    for (int i = 0; i < n; i++) edges += (size_t)unsorted[i].n_inputs + (size_t)unsorted[i].n_implicit;
    int *adj = celer_arena_alloc(&g->arena, sizeof(int) * (edges ? edges : 1));
    int *fill = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(g->n_values + 1));
    if (!adj || !fill) return CELER_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < unsorted[i].n_inputs + unsorted[i].n_implicit; j++) {
            int v = node_read(&unsorted[i], j);
            if (v >= 0 && g->values[v].producer >= 0) {
                head[v + 1]++;
                pending[i]++;
            }
        }
    for (int v = 0; v < g->n_values; v++) head[v + 1] += head[v];
    memcpy(fill, head, sizeof(int) * (size_t)(g->n_values + 1));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < unsorted[i].n_inputs + unsorted[i].n_implicit; j++) {
            int v = node_read(&unsorted[i], j);
            if (v >= 0 && g->values[v].producer >= 0) adj[fill[v]++] = i;
        }
    int n_ready = 0, done = 0;
    for (int i = 0; i < n; i++)
        if (!pending[i]) order[n_ready++] = i;
    /* order[] doubles as the queue: entries before n_ready are ready, in the file's order */
    while (done < n_ready) {
        int i = order[done++];
        for (int j = 0; j < unsorted[i].n_outputs; j++) {
            int v = unsorted[i].outputs[j];
            for (int e = head[v]; e < head[v + 1]; e++)
                if (--pending[adj[e]] == 0) order[n_ready++] = adj[e];
        }
    }
    if (n_ready != n) {
        for (int i = 0; i < n; i++)
            if (pending[i]) {
                char label[256];
                return celer_errorf(CELER_ERR_INVALID, "%s is part of a cycle or reads its own output",
                                    node_label(unsorted[i].src, i, label, sizeof label));
            }
    }
    for (int k = 0; k < n; k++) {
        g->nodes[k] = unsorted[order[k]];
        for (int j = 0; j < g->nodes[k].n_outputs; j++) g->values[g->nodes[k].outputs[j]].producer = k;
    }
    return CELER_OK;
}

/* Resolves `name` in g; in a subgraph an unknown name becomes a value of the enclosing scope. */
static celer_status resolve_name(celer_graph *g, bool is_sub, const char *name, int *out) {
    int v = names_lookup(g, name);
    if (v < 0 && is_sub) {
        v = add_value(g, name);
        g->values[v].is_outer = true;
        g->outer[g->n_outer++] = v;
    }
    *out = v;
    return v >= 0 ? CELER_OK : CELER_ERR_INVALID;
}

static celer_status build_graph(const celer_onnx_model *model, const celer_onnx_graph *src, bool is_sub,
                                int depth, celer_graph **out);

static void count_uses(celer_graph *g) {
    for (int v = 0; v < g->n_values; v++) {
        g->values[v].n_uses = 0;
        g->values[v].last_use = -1;
    }
    for (int k = 0; k < g->n_nodes; k++)
        for (int j = 0; j < g->nodes[k].n_inputs + g->nodes[k].n_implicit; j++) {
            int v = node_read(&g->nodes[k], j);
            if (v < 0) continue;
            g->values[v].n_uses++;
            g->values[v].last_use = k;
        }
}

int celer_graph_add_value(celer_graph *g, const char *name) {
    if (g->n_values >= g->values_cap) {
        int cap = g->values_cap * 2 + 16;
        celer_value *nv = celer_arena_alloc(&g->arena, sizeof(celer_value) * (size_t)cap);
        if (!nv) return -1;
        memcpy(nv, g->values, sizeof(celer_value) * (size_t)g->n_values);
        g->values = nv;
        g->values_cap = cap;
    }
    size_t len = strlen(name ? name : "");
    char *copy = celer_arena_alloc(&g->arena, len + 1);
    if (!copy) return -1;
    memcpy(copy, name ? name : "", len + 1);
    int v = g->n_values++;
    celer_value *val = &g->values[v];
    memset(val, 0, sizeof *val);
    val->name = copy;
    val->producer = -1;
    val->last_use = -1;
    return v;
}

int celer_graph_add_node(celer_graph *g, const celer_onnx_node *src, int n_inputs, int n_outputs) {
    if (g->n_nodes >= g->nodes_cap) {
        int cap = g->nodes_cap * 2 + 16;
        celer_node *nn = celer_arena_alloc(&g->arena, sizeof(celer_node) * (size_t)cap);
        if (!nn) return -1;
        memcpy(nn, g->nodes, sizeof(celer_node) * (size_t)g->n_nodes);
        g->nodes = nn;
        g->nodes_cap = cap;
    }
    celer_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->src = src;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    n->inputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n_inputs + 1));
    n->outputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n_outputs + 1));
    if (!n->inputs || !n->outputs) return -1;
    for (int j = 0; j < n_inputs; j++) n->inputs[j] = -1;
    for (int j = 0; j < n_outputs; j++) n->outputs[j] = -1;
    return g->n_nodes++;
}

celer_status celer_graph_finish_rewrite(celer_graph *g) {
    int n = 0;
    celer_node *live = celer_arena_alloc(&g->arena, sizeof(celer_node) * (size_t)(g->n_nodes + 1));
    if (!live) return CELER_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
    for (int k = 0; k < g->n_nodes; k++) {
        if (!g->nodes[k].src) continue;
        live[n] = g->nodes[k];
        for (int j = 0; j < live[n].n_outputs; j++) g->values[live[n].outputs[j]].producer = n;
        n++;
    }
    g->n_nodes = n;
    celer_status st = sort_nodes(g, live, n);
    if (st) return st == CELER_ERR_NOMEM ? st : celer_error_wrap(CELER_ERR_INTERNAL, "after graph optimization");
    count_uses(g);
    return CELER_OK;
}

/* Builds every subgraph of the source graph's nodes up front (they do not depend on this graph's
 * values), so the value table can be sized for the enclosing-scope values they read. */
static celer_status prebuild_subgraphs(celer_graph *g, const celer_onnx_graph *src, int depth, size_t *outer_reads) {
    int count = 0;
    for (int i = 0; i < src->n_nodes; i++)
        for (int a = 0; a < src->nodes[i].n_attrs; a++)
            count += src->nodes[i].attrs[a].type == CELER_ATTR_GRAPH && src->nodes[i].attrs[a].g;
    *outer_reads = 0;
    if (!count) return CELER_OK;
    if (depth >= CELER_ONNX_MAX_GRAPH_DEPTH)
        return celer_errorf(CELER_ERR_LIMIT, "subgraphs nest deeper than %d", CELER_ONNX_MAX_GRAPH_DEPTH);
    g->subgraphs = celer_arena_alloc(&g->arena, sizeof(celer_graph *) * (size_t)count);
    if (!g->subgraphs) return CELER_ERR_NOMEM;
    for (int i = 0; i < src->n_nodes; i++)
        for (int a = 0; a < src->nodes[i].n_attrs; a++) {
            const celer_onnx_attr *at = &src->nodes[i].attrs[a];
            if (at->type != CELER_ATTR_GRAPH || !at->g) continue;
            celer_graph *sub;
            celer_status st = build_graph(g->model, at->g, true, depth + 1, &sub);
            if (st) {
                char label[256];
                return celer_error_wrap(st, "%s: attribute '%s'", node_label(&src->nodes[i], i, label, sizeof label),
                                        at->name);
            }
            g->subgraphs[g->n_subgraphs++] = sub;
            *outer_reads += (size_t)sub->n_outer;
        }
    return CELER_OK;
}

/* Attaches node's prebuilt subgraphs (taken in order from *next) and resolves the enclosing-scope
 * values they read in g. */
static celer_status link_subgraphs(celer_graph *g, bool is_sub, celer_node *node, int *next) {
    const celer_onnx_node *n = node->src;
    int count = 0;
    size_t reads = 0;
    for (int a = 0; a < n->n_attrs; a++) count += n->attrs[a].type == CELER_ATTR_GRAPH && n->attrs[a].g;
    if (!count) return CELER_OK;
    node->subgraphs = &g->subgraphs[*next];
    node->subgraph_attrs = celer_arena_alloc(&g->arena, sizeof(char *) * (size_t)count);
    if (!node->subgraph_attrs) return CELER_ERR_NOMEM;
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].type == CELER_ATTR_GRAPH && n->attrs[a].g) {
            reads += (size_t)g->subgraphs[*next]->n_outer;
            node->subgraph_attrs[node->n_subgraphs++] = n->attrs[a].name;
            (*next)++;
        }
    node->implicit = celer_arena_alloc(&g->arena, sizeof(int) * (reads + 1));
    if (!node->implicit) return CELER_ERR_NOMEM;
    for (int s = 0; s < node->n_subgraphs; s++) {
        const celer_graph *sub = node->subgraphs[s];
        for (int i = 0; i < sub->n_outer; i++) {
            const char *name = sub->values[sub->outer[i]].name;
            int v;
            if (resolve_name(g, is_sub, name, &v))
                return celer_errorf(CELER_ERR_INVALID,
                                    "subgraph '%s' reads '%s', which no enclosing graph defines",
                                    node->subgraph_attrs[s], name);
            bool dup = false;
            for (int k = 0; k < node->n_implicit && !dup; k++) dup = node->implicit[k] == v;
            if (!dup) node->implicit[node->n_implicit++] = v;
        }
    }
    return CELER_OK;
}

celer_graph *celer_graph_subgraph(const celer_node *node, const char *attr) {
    for (int s = 0; s < node->n_subgraphs; s++)
        if (!strcmp(node->subgraph_attrs[s], attr)) return node->subgraphs[s];
    return NULL;
}

celer_status celer_graph_build(const celer_onnx_model *model, celer_graph **out) {
    if (!model->graph) return celer_errorf(CELER_ERR_INVALID, "the model has no graph");
    return build_graph(model, model->graph, false, 0, out);
}

static celer_status build_graph(const celer_onnx_model *model, const celer_onnx_graph *src, bool is_sub,
                                int depth, celer_graph **out) {
    if (src->n_nodes > CELER_GRAPH_MAX_NODES)
        return celer_errorf(CELER_ERR_LIMIT, "the graph has %d nodes; at most %d are supported",
                            src->n_nodes, CELER_GRAPH_MAX_NODES);
    celer_arena arena;
    celer_arena_init(&arena, 256 * 1024, 0);
    celer_graph *g = celer_arena_alloc(&arena, sizeof *g);
    if (!g) {
        celer_arena_free(&arena);
        return CELER_ERR_NOMEM;
    }
    g->arena = arena;
    g->model = model;
    g->src = src;
    celer_status st = CELER_OK;
    char label[256];

    size_t max_values = (size_t)src->n_initializers + (size_t)src->n_inputs;
    for (int i = 0; i < src->n_nodes; i++) {
        const celer_onnx_node *n = &src->nodes[i];
        if (n->n_inputs > CELER_GRAPH_MAX_NODE_IO || n->n_outputs > CELER_GRAPH_MAX_NODE_IO) {
            st = celer_errorf(CELER_ERR_LIMIT, "%s has %d inputs and %d outputs; at most %d each",
                              node_label(n, i, label, sizeof label), n->n_inputs, n->n_outputs,
                              CELER_GRAPH_MAX_NODE_IO);
            goto fail;
        }
        max_values += (size_t)n->n_outputs;
        if (is_sub) max_values += (size_t)n->n_inputs; /* each may read the enclosing scope */
    }
    size_t outer_reads;
    if ((st = prebuild_subgraphs(g, src, depth, &outer_reads))) goto fail;
    max_values += outer_reads;
    g->values = celer_arena_alloc(&g->arena, sizeof(celer_value) * (max_values + 1));
    g->values_cap = (int)max_values + 1;
    g->names = celer_arena_alloc(&g->arena, sizeof *g->names);
    if (!g->values || !g->names) goto nomem;
    g->names->cap = 16;
    while ((size_t)g->names->cap < 2 * max_values + 2) g->names->cap *= 2;
    g->names->slots = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)g->names->cap);
    g->outer = celer_arena_alloc(&g->arena, sizeof(int) * (max_values + 1));
    if (!g->names->slots || !g->outer) goto nomem;

    for (int i = 0; i < src->n_initializers; i++) {
        const celer_onnx_named_tensor *t = &src->initializers[i];
        if (!t->name || !t->name[0] || names_lookup(g, t->name) >= 0) {
            st = celer_errorf(CELER_ERR_INVALID, "initializer %d has an empty or duplicate name '%s'",
                              i, t->name ? t->name : "");
            goto fail;
        }
        int v = add_value(g, t->name);
        g->values[v].constant = &t->tensor;
        g->values[v].dtype = t->tensor.dtype;
        g->values[v].has_shape = true;
        g->values[v].shape = t->tensor.shape;
    }
    g->inputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(src->n_inputs + 1));
    if (!g->inputs) goto nomem;
    for (int i = 0; i < src->n_inputs; i++) {
        const celer_onnx_value_info *vi = &src->inputs[i];
        if (!vi->name || !vi->name[0]) {
            st = celer_errorf(CELER_ERR_INVALID, "graph input %d has no name", i);
            goto fail;
        }
        if (names_lookup(g, vi->name) >= 0) continue; /* has an initializer: a constant */
        int v = add_value(g, vi->name);
        apply_value_info(&g->values[v], vi);
        g->values[v].is_input = true;
        g->inputs[g->n_inputs++] = v;
    }

    /* node outputs (and Constant nodes as constants) */
    celer_node *unsorted = celer_arena_alloc(&g->arena, sizeof(celer_node) * (size_t)(src->n_nodes + 1));
    if (!unsorted) goto nomem;
    int n_kept = 0, next_sub = 0;
    for (int i = 0; i < src->n_nodes; i++) {
        const celer_onnx_node *n = &src->nodes[i];
        for (int j = 0; j < n->n_outputs; j++) {
            const char *name = n->outputs[j];
            if (name[0] && names_lookup(g, name) >= 0) {
                st = celer_errorf(CELER_ERR_INVALID, "%s: output '%s' is already produced elsewhere",
                                  node_label(n, i, label, sizeof label), name);
                goto fail;
            }
        }
        if (n->domain && !strcmp(n->domain, CELER_GRAPH_INTERNAL_DOMAIN)) {
            st = celer_errorf(CELER_ERR_INVALID, "%s: domain '%s' is reserved for celer's own operators",
                              node_label(n, i, label, sizeof label), n->domain);
            goto fail;
        }
        if (is_constant_node(n)) {
            const celer_tensor *t = NULL;
            if (n->n_outputs != 1) {
                st = celer_errorf(CELER_ERR_INVALID, "%s must have one output",
                                  node_label(n, i, label, sizeof label));
                goto fail;
            }
            if ((st = constant_tensor(g, n, &t))) goto fail;
            int v = add_value(g, n->outputs[0]);
            g->values[v].constant = t;
            g->values[v].dtype = t->dtype;
            g->values[v].has_shape = true;
            g->values[v].shape = t->shape;
            continue;
        }
        celer_node *node = &unsorted[n_kept++];
        node->src = n;
        node->n_inputs = n->n_inputs;
        node->n_outputs = n->n_outputs;
        node->inputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n->n_inputs + 1));
        node->outputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(n->n_outputs + 1));
        if (!node->inputs || !node->outputs) goto nomem;
        for (int j = 0; j < n->n_outputs; j++) {
            node->outputs[j] = add_value(g, n->outputs[j]);
            g->values[node->outputs[j]].producer = n_kept - 1; /* provisional: unsorted index */
        }
    }
    for (int i = 0; i < n_kept; i++) {
        celer_node *node = &unsorted[i];
        for (int j = 0; j < node->n_inputs; j++) {
            const char *name = node->src->inputs[j];
            if (!name[0]) {
                node->inputs[j] = -1;
                continue;
            }
            int v;
            if (resolve_name(g, is_sub, name, &v)) {
                st = celer_errorf(CELER_ERR_INVALID,
                                  "%s: input '%s' is not produced by any node, initializer or graph input",
                                  node_label(node->src, i, label, sizeof label), name);
                goto fail;
            }
            node->inputs[j] = v;
        }
        if ((st = link_subgraphs(g, is_sub, node, &next_sub))) {
            celer_error_wrap(st, "%s", node_label(node->src, i, label, sizeof label));
            goto fail;
        }
    }
    g->nodes = celer_arena_alloc(&g->arena, sizeof(celer_node) * (size_t)(n_kept + 1));
    if (!g->nodes) goto nomem;
    g->n_nodes = n_kept;
    g->nodes_cap = n_kept + 1;
    if ((st = sort_nodes(g, unsorted, n_kept))) goto fail;

    for (int i = 0; i < src->n_value_infos; i++) {
        int v = names_lookup(g, src->value_infos[i].name ? src->value_infos[i].name : "");
        if (v >= 0 && !g->values[v].constant) apply_value_info(&g->values[v], &src->value_infos[i]);
    }
    g->outputs = celer_arena_alloc(&g->arena, sizeof(int) * (size_t)(src->n_outputs + 1));
    if (!g->outputs) goto nomem;
    for (int i = 0; i < src->n_outputs; i++) {
        const char *name = src->outputs[i].name ? src->outputs[i].name : "";
        int v = names_lookup(g, name);
        if (v < 0) {
            st = celer_errorf(CELER_ERR_INVALID, "graph output '%s' is not produced by any node", name);
            goto fail;
        }
        if (!g->values[v].constant) apply_value_info(&g->values[v], &src->outputs[i]);
        g->values[v].is_output = true;
        g->outputs[g->n_outputs++] = v;
    }
    count_uses(g);
    *out = g;
    return CELER_OK;
nomem:
    st = CELER_ERR_NOMEM;
fail:
    celer_graph_free(g);
    return st;
}

void celer_graph_free(celer_graph *graph) {
    if (!graph) return;
    for (int s = 0; s < graph->n_subgraphs; s++) celer_graph_free(graph->subgraphs[s]);
    celer_arena arena = graph->arena;
    celer_arena_free(&arena);
}
