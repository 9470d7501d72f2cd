/* runtime: compiled models and execution contexts.
 *
 * A celer_model is compiled once (graph built, types inferred, one kernel resolved and initialised
 * per node, lifetimes planned) and is immutable afterwards: any number of threads may run it at
 * once, each through its own celer_context, without a lock. A context owns everything a run
 * writes: one activation arena (buffers reused across values by lifetime, in place at last use,
 * views for Reshape-like ops) and the kernels' per-context state. */
#ifndef CELER_RUNTIME_H
#define CELER_RUNTIME_H

#include "base/base.h"
#include "graph/graph.h"
#include "onnx/onnx.h"
#include "tensor/tensor.h"

typedef struct celer_model celer_model;
typedef struct celer_context celer_context;

typedef struct celer_model_options {
    int threads;            /* intra-op threads per run (oneDNN/OpenMP, OpenBLAS); 0 means 1 */
    size_t max_arena_bytes; /* cap on one context's activations; 0 means 16 GiB */
    bool no_optimize;       /* run the graph as the file has it: no fusions, plain layouts */
} celer_model_options;

/* A graph input or output as a caller sees it. */
typedef struct celer_io_desc {
    const char *name;
    celer_dtype dtype;
    bool has_shape;
    celer_shape shape;                      /* -1 where the dim is symbolic or unknown */
    const char *const *dim_params;          /* CELER_MAX_RANK entries, NULL where none */
} celer_io_desc;

/* Loads and compiles `path`. Fails (with a message naming the node, op, opset version and type)
 * if any node has no kernel. On success *out is owned by the caller: celer_model_free. */
celer_status celer_model_load(const char *path, const celer_model_options *opts, celer_model **out);
/* Compiles an already decoded model; takes ownership of `onnx` in every case (freed on failure). */
celer_status celer_model_compile(celer_onnx_model *onnx, const celer_model_options *opts,
                                 celer_model **out);
/* Frees the model. Every context made from it must be freed first. NULL is ok. */
void celer_model_free(celer_model *model);

int celer_model_input_count(const celer_model *model);
int celer_model_output_count(const celer_model *model);
/* Descriptions owned by the model. */
const celer_io_desc *celer_model_input(const celer_model *model, int i);
const celer_io_desc *celer_model_output(const celer_model *model, int i);
/* Index of the input named `name`, or -1. */
int celer_model_input_index(const celer_model *model, const char *name);
const celer_onnx_model *celer_model_onnx(const celer_model *model);

/* One problem found by celer_model_check. */
typedef void (*celer_check_fn)(void *user, int node_index, const celer_onnx_node *node,
                               celer_status status, const char *message);
/* Type-checks and resolves kernels for every node of `onnx` without stopping at the first
 * problem; calls `report` once per node that cannot run. Returns the number of such nodes. */
int celer_model_check(const celer_onnx_model *onnx, celer_check_fn report, void *user);

/* Makes an execution context for `model` (which must outlive it). */
celer_status celer_context_init(const celer_model *model, celer_context **out);
void celer_context_free(celer_context *ctx);

/* Runs the model on `inputs` (one per model input, in order; read, never written or kept).
 * Checks dtype and shape of each input against the model. On success *outputs points to an
 * array of celer_model_output_count() tensors owned by the context, valid until the next run
 * on this context or its free. */
celer_status celer_context_run(celer_context *ctx, const celer_tensor *inputs,
                               const celer_tensor **outputs);

/* The memory of a run's outputs, taken from its context so the outputs outlive the next run (an
 * answer streamed to a slow client while the context serves other requests). */
typedef struct celer_outputs_hold celer_outputs_hold;
/* Takes the memory the last run of ctx wrote into (its arena and the blocks that outgrew it):
 * every output in it stays valid until celer_outputs_release, whatever ctx runs next (its next
 * run allocates a fresh arena). Outputs not in that memory (model constants, views of the run's
 * inputs) live as long as the model or the inputs do; celer_outputs_hold_covers tells them apart.
 * CELER_ERR_NOMEM (nothing taken) when the hold cannot be allocated. */
celer_status celer_context_keep_outputs(celer_context *ctx, celer_outputs_hold **out);
/* Whether [p, p + n) lies in memory the hold owns. */
bool celer_outputs_hold_covers(const celer_outputs_hold *h, const void *p, size_t n);
/* Frees the memory; NULL: nothing. */
void celer_outputs_release(celer_outputs_hold *h);

/* Time spent in one node over the profiled runs of a context. */
typedef struct celer_node_profile {
    const char *op_type, *name; /* of the node as compiled (fused nodes: FusedConv...) */
    double ms;                  /* wall time summed over the profiled runs */
    double flop;                /* floating-point operations summed likewise (convolutions, GEMMs; 0 else) */
    int runs;
} celer_node_profile;

/* Starts (on) or stops timing every node of the context's main graph in the runs that follow;
 * starting clears what was gathered. Costs two clock reads per node. */
celer_status celer_context_set_profiling(celer_context *ctx, bool on);
/* The per-node figures so far, one per node of the compiled main graph (owned by the context);
 * returns their count (0 when profiling never started). */
int celer_context_profile(const celer_context *ctx, const celer_node_profile **out);

/* Bytes of the context's activation arena (after the runs so far). */
size_t celer_context_arena_bytes(const celer_context *ctx);

#endif
