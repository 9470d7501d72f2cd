/* graph: the intermediate representation built from a decoded ONNX graph.
 *
 * Values (tensors) and nodes are numbered; nodes are in topological order; Constant nodes are
 * turned into constant values; every value knows its producer, its uses and its last user, which
 * is what memory planning needs. The graph borrows the ONNX model (names, attributes, weights):
 * free the graph before the model. */
#ifndef CELER_GRAPH_H
#define CELER_GRAPH_H

#include "base/base.h"
#include "onnx/onnx.h"
#include "tensor/tensor.h"

/* Caps on what a model may ask of us. */
#define CELER_GRAPH_MAX_NODES (1 << 20)
#define CELER_GRAPH_MAX_NODE_IO 4096

typedef struct celer_value {
    const char *name;                       /* "" for outputs a node omits */
    celer_dtype dtype;                      /* CELER_UNDEFINED until known */
    bool has_shape;                         /* static shape known (dims may still be -1) */
    celer_shape shape;
    const char *dim_params[CELER_MAX_RANK]; /* symbolic dim names of declared shapes */
    const celer_tensor *constant;           /* initializer or Constant output; else NULL */
    int producer;                           /* node index; -1 for graph inputs and constants */
    int n_uses;                             /* node input slots reading it */
    int last_use;                           /* index of the last node reading it; -1 if none */
    bool is_input, is_output;               /* graph input (fed at run time) / graph output */
    bool is_outer;                          /* subgraphs: a value of an enclosing graph */
    celer_value_kind kind;                  /* tensor unless declared otherwise */
} celer_value;

typedef struct celer_graph celer_graph;

typedef struct celer_node {
    const celer_onnx_node *src; /* op type, domain, attributes */
    int n_inputs, n_outputs;
    int *inputs;  /* value indices; -1 for omitted optional inputs */
    int *outputs; /* value indices; omitted outputs get an unnamed value of their own */
    /* Control flow (If/Loop/Scan): the node's graph attributes, built as graphs of their own, and
     * the values of this graph they read from the enclosing scope (which must stay alive until
     * the node runs, so they count as uses). */
    int n_subgraphs, n_implicit;
    celer_graph **subgraphs;
    const char **subgraph_attrs; /* attribute name of each subgraph ("then_branch", "body") */
    int *implicit;
} celer_node;

struct celer_graph {
    const celer_onnx_model *model; /* borrowed */
    const celer_onnx_graph *src;   /* borrowed */
    celer_arena arena;             /* everything below lives here */
    int n_values, n_nodes, n_inputs, n_outputs;
    int values_cap, nodes_cap; /* room in values[] and nodes[] before they must grow */
    celer_value *values;
    celer_node *nodes;
    int *inputs;  /* run-time inputs in declaration order (initializer-backed inputs excluded) */
    int *outputs; /* graph outputs in declaration order */
    int n_outer;
    int *outer;   /* subgraphs: values read from an enclosing graph, bound at run time */
    int n_subgraphs;
    celer_graph **subgraphs; /* every node's subgraphs, owned (freed with this graph) */
    struct celer_graph_names *names; /* name -> value index */
};

/* Builds the IR of `model`'s main graph, and of every subgraph of its nodes (recursively). On
 * success *out is owned by the caller (free with celer_graph_free, which frees the subgraphs too)
 * and borrows `model`. Errors name the node and tensor at fault (dangling input, duplicate
 * producer, cycle, malformed Constant). */
celer_status celer_graph_build(const celer_onnx_model *model, celer_graph **out);
void celer_graph_free(celer_graph *graph);

/* The subgraph of `node` built from its graph attribute `attr`, or NULL. */
celer_graph *celer_graph_subgraph(const celer_node *node, const char *attr);

/* Value index of `name`, or -1. */
int celer_graph_find(const celer_graph *graph, const char *name);

/* ---- rewriting, for the optimization passes (optimize.c) ----
 * A pass edits nodes in place (inputs, outputs, src), appends nodes and values, and marks nodes
 * dead by setting src to NULL; celer_graph_finish_rewrite then drops dead nodes, sorts the rest
 * topologically and recomputes producers, uses and last users. Between the edits and that call
 * the bookkeeping fields are stale. Everything new lives in the graph's arena. */

/* Domain of the operators that passes create (FusedConv, ...). A file may not use it. */
#define CELER_GRAPH_INTERNAL_DOMAIN "ai.celer.internal"

/* Appends a value named `name` (copied; for messages only: it does not enter the name table, so
 * celer_graph_find does not see it). Returns its index, or -1 when out of memory. */
int celer_graph_add_value(celer_graph *graph, const char *name);
/* Appends a node (src borrowed, must live as long as the graph) with room for n_inputs inputs and
 * n_outputs outputs, all -1. Returns its index, or -1 when out of memory. Invalidates pointers
 * into graph->nodes. */
int celer_graph_add_node(celer_graph *graph, const celer_onnx_node *src, int n_inputs, int n_outputs);
/* Drops dead nodes, re-sorts and recomputes the bookkeeping (see above). Fails only when out of
 * memory or when a pass made a cycle (a bug, reported as CELER_ERR_INTERNAL). */
celer_status celer_graph_finish_rewrite(celer_graph *graph);

/* Graph-level optimizations, run on a built graph before kernels are resolved. */
typedef struct celer_graph_opt {
    /* channel block of the blocked activation layout (nChw8c: 8) that convolution chains keep
     * between them; 0 keeps every activation plain */
    int layout_block;
} celer_graph_opt;

/* Runs the passes of optimize.c (fusions, layout, dead nodes) on graph and its subgraphs. Every
 * pass keeps the graph's outputs and their values; see docs/engine.md for each pass's
 * preconditions. */
celer_status celer_graph_optimize(celer_graph *graph, const celer_graph_opt *opt);

#endif
