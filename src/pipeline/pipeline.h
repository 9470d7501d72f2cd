/* pipeline: pre/post-processing and business logic declared in a model repository folder as
 * pipeline.yaml (docs/pipelines.md): request fields -> steps (numeric, image, postprocess,
 * recommend, route, calls of the repository's models) -> outputs, run in C, in process.
 *
 * A loaded pipeline is immutable and shared by every request. A request's run is a small state
 * machine over the pipeline's steps, all its memory in one arena the caller gives: the caller
 * sets the inputs, calls celer_pipeline_run_steps until it either finishes or asks for a model
 * call; the caller performs the call (the server through the model's queue, so batching applies)
 * and hands the outputs back with celer_pipeline_resume. Nothing blocks, so a worker never waits
 * for another. */
#ifndef CELER_PIPELINE_H
#define CELER_PIPELINE_H

#include "base/base.h"
#include "tensor/tensor.h"

/* Caps on what a pipeline file may declare. */
#define CELER_PIPELINE_MAX_IO 64      /* inputs, outputs */
#define CELER_PIPELINE_MAX_STEPS 1024 /* steps, branches included */
#define CELER_PIPELINE_MAX_FILE (1 << 20)

typedef struct celer_pipeline celer_pipeline;

/* A declared input: per-row shape (without the leading batch dim; -1 = variable), and the row
 * used when a request leaves it out. */
typedef struct celer_pipeline_io {
    const char *name;
    celer_dtype dtype;
    int rank;
    int64_t dims[CELER_MAX_RANK];
    bool has_default;
    celer_tensor default_row; /* shape = dims, a variable dim from the default's length */
} celer_pipeline_io;

/* Loads and validates `path` (a pipeline.yaml); files it names are relative to its folder and must
 * resolve inside it (celer_path_inside). Errors are CELER_ERR_PARSE / CELER_ERR_INVALID /
 * CELER_ERR_IO naming the file, line and step. On success *out is owned by the caller:
 * celer_pipeline_free. */
celer_status celer_pipeline_load(const char *path, celer_pipeline **out);
/* Same from text in memory; `path` is used in messages and `dir` for relative file names. */
celer_status celer_pipeline_parse(const char *text, size_t len, const char *path, const char *dir,
                                  celer_pipeline **out);
void celer_pipeline_free(celer_pipeline *p);

const char *celer_pipeline_description(const celer_pipeline *p); /* "" when none */
/* Seconds a result may be served from the result cache (`cache:` in the file); 0 = not cached. */
double celer_pipeline_cache_ttl(const celer_pipeline *p);
int celer_pipeline_input_count(const celer_pipeline *p);
const celer_pipeline_io *celer_pipeline_input(const celer_pipeline *p, int i);
int celer_pipeline_output_count(const celer_pipeline *p);
const char *celer_pipeline_output_name(const celer_pipeline *p, int i);
/* Steps in file order (branches included), with labels like "3_bucketize" for metrics. */
int celer_pipeline_step_count(const celer_pipeline *p);
const char *celer_pipeline_step_name(const celer_pipeline *p, int i);
/* Whether input i is an encoded image: a decode_image step reads it (documents show a picture
 * in their examples). */
bool celer_pipeline_input_is_image(const celer_pipeline *p, int i);
/* Names of the models the pipeline calls (each once), to check against the repository. */
int celer_pipeline_model_count(const celer_pipeline *p);
const char *celer_pipeline_model_name(const celer_pipeline *p, int i);

/* ---- output types, worked out at load ----
 * KServe metadata and the OpenAPI documents give every output's datatype and shape before any
 * request runs. They follow from the declared inputs through each step's rule (what its run
 * allocates when it succeeds), and from the metadata of the models the pipeline calls. */

/* A tensor's type as known at load, per row (without the leading row dimension every pipeline
 * tensor has): dtype CELER_UNDEFINED when unknown; rank -1 when unknown; a dim -1 when it varies
 * from request to request. */
typedef struct celer_pipeline_type {
    celer_dtype dtype;
    int rank;
    int64_t dims[CELER_MAX_RANK];
} celer_pipeline_type;

/* How a model step's callee looks: model `model` (version "" = latest), its input or output
 * `tensor` as GET /v2/models/{model} reports it: dtype and the whole shape, the batch dimension
 * included (as -1) when the model batches. False when the model or tensor is unknown (not loaded
 * yet): the step's outputs are then unknown. A model step takes the first dim of what the model
 * returns as the rows, batching or not, so that dim is dropped and the rest is per row. */
typedef bool (*celer_pipeline_model_io_fn)(void *user, const char *model, const char *version, const char *tensor,
                                           bool output, celer_pipeline_type *out);

/* The per-row types of the pipeline's outputs, in declared order (celer_pipeline_output_count
 * of them into out, the caller's), worked out from the declared inputs through every step; a
 * route's branches merge (the same dtype, else unknown; dims that differ become -1; ranks that
 * differ: unknown). Pure: reads p, calls fn (may be NULL: model outputs unknown), writes out; safe
 * on a pipeline that requests are running. Out of memory for its scratch (a few KB per route
 * level) makes every output unknown. */
void celer_pipeline_output_types(const celer_pipeline *p, celer_pipeline_model_io_fn fn, void *user,
                                 celer_pipeline_type *out);

/* ---- running ---- */
typedef struct celer_pipeline_run celer_pipeline_run;

/* A model call the caller performs, then answers with celer_pipeline_resume. Arrays are valid
 * until then. */
typedef struct celer_pipeline_call {
    const char *model;               /* NULL: a batch step instead (below) */
    int batch_step;                  /* model NULL: this step (index as in celer_pipeline_step_name) runs
                                        for many requests at once: celer_pipeline_run_batch */
    const char *version;             /* "" = latest */
    int n_inputs;
    const char *const *input_names;  /* model input names */
    const celer_tensor *inputs;
} celer_pipeline_call;

/* Starts a run of `p` with everything in `arena` (the request's; its cap bounds the run's
 * memory). *out lives in the arena. */
celer_status celer_pipeline_run_init(const celer_pipeline *p, celer_arena *arena, celer_pipeline_run **out);
/* Sets input i (with its leading batch dim) from a tensor the caller keeps alive for the run
 * (STRING elements are celer_str: they may hold NUL bytes). Checks dtype and per-row shape
 * (CELER_ERR_DTYPE / CELER_ERR_SHAPE naming the input). */
celer_status celer_pipeline_set_input(celer_pipeline_run *r, int i, const celer_tensor *t);
/* Request parameters a `route` step may read (borrowed for the run). */
void celer_pipeline_set_parameters(celer_pipeline_run *r, const char *const *keys, const char *const *values,
                                   int n);
/* Runs steps until the pipeline finishes (*call = NULL) or needs a model (*call set). Inputs not
 * set take their defaults (CELER_ERR_INVALID "missing input" without one). Errors name the step
 * and are the request's fault (bad values, shapes, an unmatched route), except CELER_ERR_NOMEM
 * and CELER_ERR_LIMIT (the arena's cap). */
celer_status celer_pipeline_run_steps(celer_pipeline_run *r, const celer_pipeline_call **call);
/* Lets run_steps stop at steps that batch across requests (celer_pipeline_step_batches) instead
 * of running them alone; off by default. */
void celer_pipeline_set_batching(celer_pipeline_run *r, bool on);
/* Called after each step of r ran (a model call's or a batch step's once its outputs came back),
 * with the step's index and when it began and ended (CLOCK_MONOTONIC): for tracing. Off (NULL) by
 * default, and then no clock is read for it. */
typedef void (*celer_pipeline_step_fn)(void *user, int step, int64_t start_ns, int64_t end_ns);
void celer_pipeline_set_step_hook(celer_pipeline_run *r, celer_pipeline_step_fn fn, void *user);
/* True when step i can run for many requests at once. */
bool celer_pipeline_step_batches(const celer_pipeline *p, int i);
/* Runs the batch step that each of the n runs (of one pipeline) stopped at, at once. Each run then
 * goes on with celer_pipeline_run_steps, which first reports that run's own failure, if any. */
void celer_pipeline_run_batch(celer_pipeline_run *const *runs, int n);
/* Hands back the outputs of the call asked for: copies the ones the step maps into the arena. */
celer_status celer_pipeline_resume(celer_pipeline_run *r, const char *const *names, const celer_tensor *outputs,
                                   int n_outputs);
/* After a run finished: the outputs in declared order (celer_pipeline_output_count of them). */
const celer_tensor *celer_pipeline_run_outputs(const celer_pipeline_run *r);
/* Ends a run: frees what it holds outside the caller's arena, its decoded images, and gives their
 * share of the image budget back. Call it once the outputs are no longer needed (they may point
 * into those images), before freeing the arena, whether the run finished, failed or was abandoned
 * while a model call was pending. Idempotent; NULL does nothing. (A run frees an image itself as
 * soon as no step still to run reads it, and all of them when a step fails.) */
void celer_pipeline_run_end(celer_pipeline_run *r);
/* Nanoseconds spent in each step by this run (0 for steps not run); a model step counts the
 * time from the call's request to its resume. Indexed like celer_pipeline_step_name. */
const int64_t *celer_pipeline_run_step_ns(const celer_pipeline_run *r);

/* ---- image memory ----
 * Decoded pixels (and the decoders' working memory) are counted against one budget for the whole
 * process, reserved from the image headers before any pixel memory is taken: a small compressed
 * file can decode to hundreds of MiB. A request whose images alone need more than the budget fails
 * with CELER_ERR_LIMIT (413); one that finds the budget held by other requests fails with
 * CELER_ERR_UNAVAILABLE (503, retry later). */
#define CELER_PIPELINE_IMAGE_BUDGET_DEFAULT ((size_t)512 << 20)
/* Sets the budget in bytes (0 = no budget); takes effect for reservations made afterwards. */
void celer_pipeline_set_image_budget(size_t bytes);
/* Bytes reserved by image decodes in flight (for a gauge, and tests). */
size_t celer_pipeline_image_bytes_in_use(void);

/* ---- one encoded image, outside a pipeline (for the ImageDecoder operator) ----
 * The decode_image step's decoders (libjpeg-turbo, libpng) on one JPEG or PNG file of n bytes at
 * p, as RGB: a PNG's alpha dropped, grey replicated. `name` is used in messages. Not counted
 * against the image budget: the caller's memory holds the pixels. */
typedef struct celer_image_info {
    uint32_t width, height;
    size_t tmp_bytes; /* conversion buffer celer_image_decode_rgb needs (0: pass NULL) */
} celer_image_info;
/* Reads the header: CELER_ERR_INVALID when the bytes are not a readable JPEG / PNG header,
 * CELER_ERR_LIMIT for a side over 8192. */
celer_status celer_image_probe(const uint8_t *p, size_t n, const char *name, celer_image_info *info);
/* Decodes into dst (height * width * 3 bytes, caller's), through tmp (info.tmp_bytes, caller's). */
celer_status celer_image_decode_rgb(const uint8_t *p, size_t n, const char *name, uint8_t *dst, uint8_t *tmp);

/* ---- the recommend index (also usable on its own) ----
 * Scores a user embedding against an item matrix by dot product and returns the top-k item ids
 * and scores. The matrix is a .npy file, mapped; on CPUs with AVX2 and FMA it is repacked once at
 * load into panels of 8 items for the scoring kernel and the mapping closed (100k x 64 float32 is
 * 25.6 MB either way). A loaded index is immutable and shared by every worker thread; each call
 * brings its own scratch. */

/* Caps on what a request may ask of the recommend step. */
#define CELER_RECOMMEND_MAX_K 10000
#define CELER_RECOMMEND_MAX_EXCLUDE 100000
#define CELER_RECOMMEND_MAX_BATCH 256 /* users scored in one pass */

typedef struct celer_recommend celer_recommend;

/* Maps the item matrix `items_npy` (float32, [items, dim]) and, when `ids_npy` is not NULL, the
 * item ids (int64, [items]); without ids an item's id is its row. Errors name the file and what
 * is wrong (rank, dtype, counts that differ). On success *out is owned by the caller:
 * celer_recommend_free. */
celer_status celer_recommend_open(const char *items_npy, const char *ids_npy, celer_recommend **out);
void celer_recommend_free(celer_recommend *r);

int64_t celer_recommend_items(const celer_recommend *r);
int64_t celer_recommend_dim(const celer_recommend *r);

/* Scratch bytes celer_recommend_topk needs for k results and n_exclude excluded ids (64-byte
 * aligned memory the caller owns, e.g. from a request arena). */
size_t celer_recommend_scratch_bytes(const celer_recommend *r, int k, int n_exclude);

/* The k items with the highest score user . item, best first, skipping the ids in `exclude`
 * (any order, duplicates allowed). Ties go to the lower id; items scoring NaN are skipped. Writes
 * *n_out <= k results to ids/scores (fewer when fewer items remain). CELER_ERR_INVALID with a
 * message when dim differs from the matrix's or k / n_exclude pass their caps. No allocation. */
celer_status celer_recommend_topk(const celer_recommend *r, const float *user, int64_t dim,
                                  const int64_t *exclude, int n_exclude, int k, void *scratch,
                                  int64_t *ids, float *scores, int *n_out);

/* The same for n_users embeddings at once ([n_users, dim] row-major) in one pass over the matrix:
 * the matrix is read once for all of them, which is what makes concurrent requests cheap.
 * exclude[u] / n_exclude[u] per user; results [n_users, k] with n_out[u] per user. Scratch from
 * celer_recommend_batch_scratch_bytes (n_exclude_total = sum of n_exclude). No allocation. */
size_t celer_recommend_batch_scratch_bytes(const celer_recommend *r, int n_users, int k, int64_t n_exclude_total);
celer_status celer_recommend_topk_batch(const celer_recommend *r, const float *users, int n_users,
                                        const int64_t *const *exclude, const int *n_exclude, int k, void *scratch,
                                        int64_t *ids, float *scores, int *n_out);

#endif
