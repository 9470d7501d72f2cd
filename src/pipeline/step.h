/* Private to src/pipeline: what a step family file (steps_numeric.c, steps_image.c,
 * steps_post.c, recommend.c) needs to declare a step kind: reading its arguments from
 * pipeline.yaml at load (with errors naming file, line and step), and reading and writing named
 * tensors at run time.
 *
 * A step kind is one table entry (pl_kind). At load, `parse` validates the step's arguments,
 * resolves its tensor names to slots (pl_arg_input / pl_arg_output) and keeps its parameters in
 * the pipeline's arena; the pipeline is then immutable and shared by every request. At run,
 * `run` reads its inputs (pl_in) and allocates its outputs in the request's arena (pl_out); it
 * must not keep state between calls. Errors from `run` are the request's fault (a 400): return
 * celer_errorf with what was expected and what came; the executor prefixes the step's label.
 * `types` states at load what `run` allocates, for the metadata (celer_pipeline_output_types). */
#ifndef CELER_PIPELINE_STEP_H
#define CELER_PIPELINE_STEP_H

#include <yaml.h>

#include "ops/ops.h"
#include "pipeline/pipeline.h"

#define PL_MAX_IO 16/* tensors a step reads or writes */

typedef struct pl_parse pl_parse; /* load-time context (pipeline.c) */
typedef struct pl_exec pl_exec;   /* run-time context (pipeline.c) */
typedef struct pl_types pl_types; /* output-type context (pipeline.c) */
typedef struct pl_step pl_step;

typedef struct pl_kind {
    const char *name; /* as written in pipeline.yaml: "normalize" */
    const char *keys; /* the argument keys it accepts, space-separated (others are an error) */
    /* Validates `args` (a mapping) and fills s->in / s->out / s->params. */
    celer_status (*parse)(pl_parse *c, const yaml_node_t *args, pl_step *s);
    celer_status (*run)(const pl_step *s, pl_exec *x);
    void (*free)(pl_step *s); /* releases what parse opened beyond the arena (files); may be NULL */
    /* Optional: runs the step for n requests waiting at it, at once (the recommend step reads its
     * item matrix once for all of them). A request whose own data is wrong fails alone: pl_fail.
     * Scratch shared by the batch comes from xs[0] (pl_scratch). With run_batch, run may be NULL. */
    void (*run_batch)(const pl_step *s, pl_exec *const *xs, int n);
    /* The per-row types of the outputs from those of the inputs (pl_type_in / pl_type_set): the
     * dtype and shape `run` allocates when it succeeds, so the two must change together. Without
     * it (NULL) the outputs are unknown. */
    void (*types)(const pl_step *s, pl_types *c);
} pl_kind;

struct pl_step {
    const pl_kind *kind;
    int line;        /* 1-based line of the step in pipeline.yaml */
    int index;       /* position among the pipeline's steps, for metrics */
    char label[64];  /* "step 3 (bucketize)" for messages */
    int n_in, n_out;
    int in[PL_MAX_IO], out[PL_MAX_IO]; /* slots */
    void *params;    /* the kind's, in the pipeline's arena */
};

/* A tensor of the request as steps see it (STRING elements are celer_str: image bytes hold NULs). */
typedef struct pl_value {
    celer_tensor t;
    bool set;
} pl_value;

/* ---- load time ---- */

/* The pipeline's arena: parameters live as long as the pipeline. */
celer_arena *pl_arena(pl_parse *c);
/* CELER_ERR_INVALID "<file>:<line>: <step label>: <message>" with the node's line. */
celer_status pl_error(pl_parse *c, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The value of `key` in mapping `args`, or NULL when absent. */
const yaml_node_t *pl_arg(pl_parse *c, const yaml_node_t *args, const char *key);

/* Typed arguments. `required`: absence is an error; otherwise *out is left as the caller set it.
 * Each returns CELER_OK, or an error naming the key and what it must be. */
celer_status pl_arg_double(pl_parse *c, const yaml_node_t *args, const char *key, bool required, double *out);
celer_status pl_arg_int(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int64_t min,
                        int64_t max, int64_t *out);
celer_status pl_arg_string(pl_parse *c, const yaml_node_t *args, const char *key, bool required, const char **out);
/* A number or a sequence of numbers (a scalar gives *n = 1); at most `max` of them. Arena-owned. */
celer_status pl_arg_doubles(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int max,
                            double **out, int *n);
/* A sequence of scalars as strings (at most `max`). Arena-owned. */
celer_status pl_arg_strings(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int max,
                            const char ***out, int *n);
/* A file name relative to the pipeline's folder; *out is its resolved path (arena-owned). The file
 * must exist and resolve inside the folder (no absolute name; `..` and symlinks must not leave it). */
celer_status pl_arg_path(pl_parse *c, const yaml_node_t *args, const char *key, bool required, const char **out);
/* The lines of a text file (trailing \r\n dropped; a line over 4094 bytes or more than `max`
 * lines is an error naming the file), arena-owned: vocabularies, labels. */
celer_status pl_read_lines(pl_parse *c, const yaml_node_t *at, const char *path, int max, const char ***out, int *n);
/* A dtype named as in KServe ("FP32", "INT64", "BYTES"...) or ONNX ("float", "int64"). */
celer_status pl_arg_dtype(pl_parse *c, const yaml_node_t *args, const char *key, bool required, celer_dtype *out);

/* Tensor names. pl_arg_input resolves `key` (default "input") to a tensor that earlier steps or
 * the pipeline's inputs define on every path to this step and appends it to s->in.
 * pl_arg_inputs does the same for a sequence of names. pl_arg_output appends the slot for the
 * name under `key` (when absent: `dflt`, NULL = error) to s->out and marks it defined.
 * pl_arg_outputs reads a sequence of exactly `n` names. */
celer_status pl_arg_input(pl_parse *c, const yaml_node_t *args, const char *key, pl_step *s);
celer_status pl_arg_inputs(pl_parse *c, const yaml_node_t *args, const char *key, int max, pl_step *s);
celer_status pl_arg_output(pl_parse *c, const yaml_node_t *args, const char *key, const char *dflt, pl_step *s);
celer_status pl_arg_outputs(pl_parse *c, const yaml_node_t *args, const char *key, int n, pl_step *s);
/* The name of the tensor in slot `slot` (for defaults like "output defaults to the input"). */
const char *pl_slot_name(pl_parse *c, int slot);

/* ---- run time ---- */

/* The value of the step's i-th input (always set: load checked the data flow). */
const pl_value *pl_in(pl_exec *x, const pl_step *s, int i);
/* Allocates the step's i-th output in the request arena: a tensor of `dtype` and `shape`, data
 * uninitialised (STRING: zeroed, i.e. empty strings). Returns NULL (error set) past the request's memory cap. */
celer_tensor *pl_out(pl_exec *x, const pl_step *s, int i, celer_dtype dtype, const celer_shape *shape);
/* Like pl_out for a large decoded image: the data is malloc'd outside the request arena and
 * reserved against the image budget first (celer_pipeline_set_image_budget). The run owns it and
 * frees it once no step still to run reads the tensor (or at celer_pipeline_run_end). Errors:
 * CELER_ERR_LIMIT when the image alone needs more than the budget, CELER_ERR_UNAVAILABLE when other
 * requests hold it, CELER_ERR_NOMEM when malloc fails; `what` names the tensor in messages. */
celer_status pl_out_image(pl_exec *x, const pl_step *s, int i, celer_dtype dtype, const celer_shape *shape,
                          const char *what, celer_tensor **out);
/* The image budget for memory a step holds only during its call (decoder working memory): take
 * `bytes` (errors as pl_out_image) and give them back before returning. */
size_t pl_image_budget(void); /* 0 = none */
celer_status pl_image_take(size_t bytes, const char *what);
void pl_image_give(size_t bytes);
/* Scratch memory for the run, freed with the request. NULL with the error set past the cap. */
void *pl_scratch(pl_exec *x, size_t bytes);
/* In run_batch: marks request x failed with `status` and the current error message. */
void pl_fail(pl_exec *x, celer_status status);
bool pl_failed(const pl_exec *x);
/* Rows of the request (the leading dim every input shares). */
int64_t pl_rows(const pl_exec *x);

/* Helpers for kinds. */
/* Element i of a numeric tensor as a double: celer_ops_double_at (ops/ops.h). */
/* Element i of an integer tensor, exactly (floats: truncated, 0 when out of range). */
int64_t pl_get_i64(const celer_tensor *t, int64_t i);
/* True for the numeric dtypes (integers, floats, BOOL). */
bool pl_is_numeric(celer_dtype t);
/* CELER_ERR_DTYPE "<what> must be numeric, got <dtype>" when t is not. */
celer_status pl_need_numeric(const celer_tensor *t, const char *what);

/* ---- output types (celer_pipeline_output_types) ----
 * Per row, as in celer_pipeline_type: the row dim every tensor has is left out, so a step's
 * `axis` counts it (axis 1 is per-row dim 0). A rule states what run gives when it succeeds; where
 * that cannot be worked out (an axis or rank that makes every run fail) it gives unknown. */

/* The type of the step's i-th input (a copy taken before the step: an output may replace it). */
const celer_pipeline_type *pl_type_in(const pl_types *c, const pl_step *s, int i);
/* Sets the type of the step's i-th output. */
void pl_type_set(pl_types *c, const pl_step *s, int i, const celer_pipeline_type *t);
/* dtype and rank unknown. */
celer_pipeline_type pl_type_unknown(void);
/* Output 0 takes input 0's per-row shape, with `dtype` (elementwise steps). */
void pl_type_same_shape(pl_types *c, const pl_step *s, celer_dtype dtype);

/* ---- the step kinds (one table in pipeline.c) ---- */
extern const pl_kind pl_kind_normalize, pl_kind_scale, pl_kind_clip, pl_kind_log1p, pl_kind_fill_missing,
    pl_kind_cast, pl_kind_bucketize, pl_kind_lookup, pl_kind_one_hot, pl_kind_concat;
extern const pl_kind pl_kind_decode_image, pl_kind_resize, pl_kind_center_crop, pl_kind_to_chw;
extern const pl_kind pl_kind_softmax, pl_kind_sigmoid, pl_kind_argmax, pl_kind_top_k, pl_kind_threshold;
extern const pl_kind pl_kind_recommend;

#endif
