/* ops: the kernel table and the calling convention every kernel follows.
 *
 * A kernel is found once, at load, by (domain, op type, opset -> since_version range, dtype) and
 * then lives through four phases:
 *   infer_types  at load: output element types from input types and attributes;
 *   init         at load: parse attributes, pre-pack constant weights into `state` (immutable and
 *                shared by every thread afterwards);
 *   reshape      before each run: output shapes from input shapes (and values: inputs are already
 *                computed), optional per-context `local` state (e.g. a library primitive built for
 *                these shapes, owned by one execution context), scratch bytes wanted for run;
 *   run          compute. No allocation here: memory comes from outputs and scratch.
 * Each family of operators lives in one file (elementwise.c, conv.c, ...) and exports one table,
 * listed in registry.c. */
#ifndef CELER_OPS_H
#define CELER_OPS_H

#include "base/base.h"
#include "onnx/onnx.h"
#include "tensor/tensor.h"

#define CELER_OPS_MAX_VERSION 1000

/* What a kernel knows about its node at load. */
typedef struct celer_op_info {
    const celer_onnx_node *node;   /* attributes; node->name and op_type for messages */
    int opset;                     /* the model's opset for the node's domain */
    int since_version;             /* since_version of the kernel entry chosen */
    int n_inputs, n_outputs;
    const celer_dtype *input_types; /* CELER_UNDEFINED for omitted optional inputs */
    const celer_tensor *const *input_constants; /* non-NULL where an input is known at load */
} celer_op_info;

/* One call of reshape or run. The executor fills everything; the kernel writes out[i].shape (and
 * may change out[i].dtype) in reshape, and the elements of out[i].data in run. in[i] is NULL for
 * an omitted optional input. out[] has one entry per node output (omitted ones included). */
typedef struct celer_kernel_call {
    const celer_op_info *info;
    const void *state; /* from init; read-only */
    void **local;      /* per-context slot, NULL at first; kernel-owned, freed with free_local */
    const celer_tensor *const *in;
    int n_in;
    celer_tensor *out;
    int n_out;
    void *scratch;       /* run: scratch_size bytes, 64-byte aligned, uninitialised; never NULL */
    size_t scratch_size; /* reshape: set to the scratch bytes run will need (0 by default) */
} celer_kernel_call;

typedef celer_status (*celer_infer_types_fn)(const celer_op_info *info, celer_dtype *out_types);
typedef celer_status (*celer_init_fn)(const celer_op_info *info, void **state);
typedef celer_status (*celer_call_fn)(celer_kernel_call *call);
typedef void (*celer_free_fn)(void *p);

enum {
    /* out[0] is a view of in[0]'s bytes (Reshape, Identity, Squeeze...): the executor makes
     * out[0].data alias in[0].data after reshape; `run` may be NULL. */
    CELER_KERNEL_ALIAS = 1u << 0,
    /* out[0] may be written into in[0]'s buffer when that input dies here and the sizes match
     * (elementwise ops read element i before writing element i). With CELER_KERNEL_INPLACE_ON(i)
     * the buffer is in[i]'s, and only when no other input reads that buffer (the kernel reads its
     * other inputs in any order: a convolution accumulating into its residual input). */
    CELER_KERNEL_INPLACE = 1u << 1,
    /* Control flow (If, Loop, Scan): run by the runtime itself, which owns subgraph execution;
     * the entry exists so resolution and documentation treat it like any operator. */
    CELER_KERNEL_CONTROL = 1u << 2,
    /* init copies what it needs of every input that is constant at load (packed weights) and
     * reshape/run never read those inputs' bytes: the runtime may give their memory back. */
    CELER_KERNEL_PACKS_CONSTANTS = 1u << 3,
};

/* In place over input i rather than input 0 (i < 256). */
#define CELER_KERNEL_INPLACE_ON(i) (CELER_KERNEL_INPLACE | ((unsigned)(i) << 8))
#define CELER_KERNEL_INPLACE_INPUT(flags) ((int)(((flags) >> 8) & 0xffu))

typedef struct celer_kernel {
    const char *domain;       /* "" = ai.onnx, "ai.onnx.ml", "com.microsoft"... */
    const char *op;
    int since, until;         /* version range [since, until] of the domain's opset served */
    uint32_t dtypes;          /* set of CELER_DT(t) accepted for input `type_input` */
    int type_input;           /* which input's type selects this entry (usually 0; -1: any) */
    unsigned flags;           /* CELER_KERNEL_* */
    celer_infer_types_fn infer_types; /* NULL: every output takes input `type_input`'s type */
                                      /* (required when type_input is -1) */
    celer_init_fn init;               /* NULL: no state */
    celer_call_fn reshape;            /* required unless CELER_KERNEL_CONTROL */
    celer_call_fn run;                /* required unless CELER_KERNEL_ALIAS or _CONTROL */
    celer_free_fn free_state, free_local;
} celer_kernel;

/* A family's table, exported by its file and listed in registry.c. */
typedef struct celer_kernel_family {
    const char *name; /* "elementwise", "conv", ... */
    const celer_kernel *kernels;
    int count;
} celer_kernel_family;

/* Finds the kernel for `op` in `domain` at the model's `opset` whose dtype set holds the type of
 * its `type_input` (input_types[type_input]; entries with type_input -1 take any types). On
 * failure returns NULL with CELER_ERR_UNSUPPORTED and a message naming op, version and dtype (or
 * saying that the op is unknown). */
const celer_kernel *celer_ops_find(const char *domain, const char *op, int opset,
                                   const celer_dtype *input_types, int n_inputs);

/* Checks a node's input and output counts against the operator's schema at `opset`
 * (present[i]: input i is named, not omitted). CELER_ERR_INVALID with a message naming the op
 * when a required input or output is missing; ok for operators it does not know (arity.c). */
celer_status celer_ops_check_arity(const char *domain, const char *op, int opset,
                                   const bool *present, int n_in, int n_out);

/* Whether any kernel exists for (domain, op) at any version: lets callers tell "unknown op" from
 * "known op, unsupported version/type". */
bool celer_ops_known(const char *domain, const char *op);

/* Channel block of the blocked activation layout the fused convolutions keep between them on
 * this CPU (8 or 16), for the graph's layout pass (fused.c). */
int celer_ops_layout_block(void);

/* Convolution primitives alive in any context that run on one of oneDNN's reference
 * implementations (slow scalar loops: a layout or shape oneDNN has no fast code for), for
 * `celer bench` and the tests; 0 is what a model should get. Thread-safe. */
long celer_ops_reference_convs(void);

/* The families, for documentation and inspection. */
const celer_kernel_family *const *celer_ops_families(int *count);

/* ---- helpers kernels share (implemented in common.c) ---- */

/* Largest output or scratch buffer a kernel accepts: sizes come from input values and
 * attributes, so anything can be asked for. */
#define CELER_OPS_MAX_BYTES ((size_t)16 << 30)

/* A kernel's output strings (BYTES elements point into it): held in the execution context's
 * per-node slot (*call->local), grown by reshape (which may allocate; run never does) and replaced
 * by the next reshape. Kernels that use it give celer_ops_str_buf_free as their free_local. */
typedef struct celer_ops_str_buf {
    char *buf;
    size_t cap;
} celer_ops_str_buf;
/* Makes *c->local a string buffer of at least `bytes` bytes; CELER_ERR_LIMIT past
 * CELER_OPS_MAX_BYTES, CELER_ERR_NOMEM with the node named. */
celer_status celer_ops_str_buf_reserve(celer_kernel_call *c, size_t bytes);
void celer_ops_str_buf_free(void *p);

/* Records "<Op 'name'>: <message>" and returns `status`. */
celer_status celer_ops_error(const celer_op_info *info, celer_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Input i of the call, or NULL when the node omits it or lists fewer inputs. */
const celer_tensor *celer_ops_input(const celer_kernel_call *call, int i);
/* CELER_ERR_LIMIT naming the shape when out's byte size overflows or passes CELER_OPS_MAX_BYTES
 * (call it in reshape after computing an output shape from input values). */
celer_status celer_ops_check_output(const celer_op_info *info, const celer_tensor *out);
/* Checks that the node lists inputs 0..n_required-1 (none omitted) and at least one output. */
celer_status celer_ops_require(const celer_kernel_call *call, int n_required);
/* call->scratch_size += a * b bytes, overflow-checked and capped at CELER_OPS_MAX_BYTES. */
celer_status celer_ops_add_scratch(celer_kernel_call *call, size_t a, size_t b);

/* reshape for ops whose out[0] has in[0]'s shape. */
celer_status celer_ops_reshape_same(celer_kernel_call *call);
/* Normalises a possibly negative axis against `rank`; CELER_ERR_INVALID with the op name if out
 * of range. */
celer_status celer_ops_axis(const celer_op_info *info, int64_t axis, int rank, int *out);
/* Reads element i of an integer tensor (any int dtype) as int64. */
int64_t celer_ops_int_at(const celer_tensor *t, int64_t i);
/* Reads element i of any numeric tensor as double. */
double celer_ops_double_at(const celer_tensor *t, int64_t i);
/* Writes v into element i of any numeric tensor (rounding/conversion as C casts do). */
void celer_ops_double_store(celer_tensor *t, int64_t i, double v);
/* Product of dims[from, to); dims of real tensors, so it cannot overflow. */
int64_t celer_ops_dims_prod(const int64_t *dims, int from, int to);
/* Row-major element strides of shape s into strides[0..rank). */
void celer_ops_strides(const celer_shape *s, int64_t *strides);

/* Runs fn(ctx, lo, hi) over [0, n) split into one contiguous range per thread of the run's OpenMP
 * team (omp_get_max_threads(), which the executor sets per run), every range but the last a
 * multiple of `align` items (so threads do not share cache lines of the output). Stays on the
 * calling thread when n < 2 * min_per_thread (too small to pay for the wake-up), when the run
 * has one thread, or inside a parallel region. fn must not allocate: it may run on any thread. */
void celer_ops_parallel_for(size_t n, size_t min_per_thread, size_t align,
                            void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);

/* y[i] /= d[i] for i < n, for d in [1, 2^126] (sigmoid denominators 1 + e^t with t kept <= 80):
 * on AVX-512 or AVX2 as the hardware's reciprocal estimate and one Newton step (relative error
 * about 1e-7; a divide is several times slower than the rest of a sigmoid), else divides. A NaN
 * in d or y gives NaN. */
void celer_ops_div_by(float *y, const float *d, int64_t n);

/* Scratch laid out in 64-byte aligned pieces, computed the same way by reshape (base NULL: only
 * sizes, read `off` afterwards) and by run (base = call->scratch). */
typedef struct celer_ops_carve {
    char *base;
    size_t off;
    bool overflow; /* a piece was too large: report CELER_ERR_LIMIT */
} celer_ops_carve;
/* The next n elements of es bytes; NULL when base is NULL or after an overflow. */
void *celer_ops_carve_elems(celer_ops_carve *cv, int64_t n, size_t es);

/* Formats the standard "Op 'name'" prefix for messages into buf; returns buf. */
const char *celer_ops_who(const celer_op_info *info, char *buf, size_t cap);

#endif
