/* Private to the runtime module: compiled graphs shared by model.c, exec.c and control.c. */
#ifndef CELER_RUNTIME_INTERNAL_H
#define CELER_RUNTIME_INTERNAL_H

#include "ops/ops.h"
#include "runtime.h"

/* Largest activation arena one run may use, unless the model options say otherwise. */
#define CELER_RUNTIME_MAX_ARENA (16ull << 30)
/* Most iterations one Loop or Scan node may run. */
#define CELER_RUNTIME_MAX_ITERATIONS (1ll << 24)

typedef struct compiled_graph compiled_graph;

typedef struct compiled_node {
    const celer_kernel *kernel;
    celer_op_info info;
    void *state;           /* kernel's shared state; owned, freed with kernel->free_state */
    compiled_graph **subs; /* control nodes: one per node->subgraphs entry */
} compiled_node;

/* A graph with one kernel per node: the model's main graph or a subgraph of a control node. */
struct compiled_graph {
    celer_graph *graph;  /* borrowed from the model's graph tree */
    compiled_node *nodes;
    int *outer_src;      /* per graph->outer[i]: the value index in the enclosing graph */
};

struct celer_model {
    celer_onnx_model *onnx; /* owned */
    celer_graph *graph;     /* owned */
    celer_arena arena;      /* compiled graphs, io descriptions */
    celer_model_options opts;
    compiled_graph main;
    celer_io_desc *inputs, *outputs;
};

/* model.c: compiles g (whose enclosing graph is `parent`, NULL for the main graph) into cg. */
celer_status celer_runtime_compile_graph(celer_model *m, celer_graph *g, const celer_graph *parent,
                                         compiled_graph *cg);
/* Frees the kernel states of cg and its subgraphs. */
void celer_runtime_free_graph(compiled_graph *cg);

/* exec.c: intra-op threads of the calling thread's next kernels (OpenMP for oneDNN, OpenBLAS). */
void celer_runtime_set_threads(int n);

/* exec.c: contexts over any compiled graph. */
celer_status celer_exec_context_new(const celer_model *m, const compiled_graph *cg, celer_context **out);
/* Runs ctx's graph on its formal inputs (graph->inputs order) with `outer` bound to
 * graph->outer in order. Inputs are not checked (the caller has). Outputs as for
 * celer_context_run. */
celer_status celer_exec_run(celer_context *ctx, const celer_tensor *inputs, const celer_tensor *const *outer,
                            const celer_tensor **outputs);
/* Allocates the buffer of value v (an output of the node being run) and points its tensor at it. */
celer_status celer_exec_alloc_output(celer_context *ctx, int v, size_t bytes);
/* The tensor of value v in ctx. */
celer_tensor *celer_exec_tensor(celer_context *ctx, int v);

/* control.c: output types of control node k of g, compiling its subgraphs into cn->subs. */
celer_status celer_control_compile(celer_model *m, celer_graph *g, int k, compiled_node *cn,
                                   celer_dtype *out_types);
/* Runs control node k of ctx's graph; its per-context state lives in *local. */
celer_status celer_control_run(celer_context *ctx, const celer_model *m, const compiled_graph *cg, int k,
                               void **local);
void celer_control_free_local(void *local);

#endif
