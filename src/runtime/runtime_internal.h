/* Private to the runtime module: the compiled model shared by model.c and exec.c. */
#ifndef CELER_RUNTIME_INTERNAL_H
#define CELER_RUNTIME_INTERNAL_H

#include "ops/ops.h"
#include "runtime.h"

/* Largest activation arena one run may use. */
#define CELER_RUNTIME_MAX_ARENA (16ull << 30)

typedef struct compiled_node {
    const celer_kernel *kernel;
    celer_op_info info;
    void *state; /* kernel's shared state; owned, freed with kernel->free_state */
} compiled_node;

struct celer_model {
    celer_onnx_model *onnx; /* owned */
    celer_graph *graph;     /* owned */
    celer_arena arena;      /* compiled nodes, io descriptions */
    celer_model_options opts;
    compiled_node *nodes;   /* graph->n_nodes */
    celer_io_desc *inputs, *outputs;
};

#endif
