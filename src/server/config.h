/* Model configuration: Triton's config.pbtxt (protobuf text format of inference.ModelConfig, the
 * fields that matter for ONNX on CPU), completion from the ONNX model, JSON rendering, and the
 * layout of a model repository on disk. Private to src/server. */
#ifndef CELER_SERVER_CONFIG_H
#define CELER_SERVER_CONFIG_H

#include "base/base.h"
#include "runtime/runtime.h"
#include "server/json.h"
#include "tensor/tensor.h"

#define CELER_CONFIG_MAX_IO 256
#define CELER_CONFIG_MAX_PREFERRED 16
#define CELER_CONFIG_MAX_VERSIONS 256

typedef struct celer_config_io {
    const char *name;
    celer_dtype dtype;        /* from data_type (TYPE_FP32 -> CELER_FLOAT, TYPE_STRING -> CELER_STRING);
                                 CELER_UNDEFINED after parsing when data_type is absent (completion
                                 takes it from the model) */
    int rank;                 /* dims without the implicit batch dim (when max_batch_size > 0);
                                 -1 after parsing when dims is absent (completion fills it) */
    int64_t dims[CELER_MAX_RANK]; /* -1 = variable */
    bool optional;
    const char *label_filename; /* outputs; NULL when absent */
    /* Triton's `reshape { shape }`: the model sees this shape (plus the batch dim) instead of
     * dims; the element count is the same, so serving must only relabel the shape of the request
     * tensor before the run (and of the output after it). */
    bool has_reshape;
    int reshape_rank;
    int64_t reshape[CELER_MAX_RANK];
} celer_config_io;

typedef enum celer_version_policy { CELER_VERSIONS_LATEST, CELER_VERSIONS_ALL, CELER_VERSIONS_SPECIFIC } celer_version_policy;

typedef struct celer_model_config {
    const char *name;
    const char *platform; /* "onnxruntime_onnx" when completed */
    const char *backend;  /* "onnxruntime" or NULL */
    int max_batch_size;   /* 0: no implicit batch dim */
    int n_inputs, n_outputs;
    celer_config_io *inputs, *outputs;
    celer_version_policy version_policy;
    int latest_num_versions;  /* LATEST: how many (default 1) */
    int n_versions;           /* SPECIFIC */
    int64_t *versions;
    int instance_count;       /* sum of instance_group counts; 0 = not set */
    bool dynamic_batching;    /* dynamic_batching block present */
    int n_preferred;
    int preferred_batch_size[CELER_CONFIG_MAX_PREFERRED];
    int64_t max_queue_delay_us;
    int max_queue_size;       /* 0 = unbounded in Triton; celer applies its own default cap */
    int64_t default_timeout_us;
    bool allow_timeout_override;
    bool response_cache;
    int n_parameters;
    const char **parameter_keys, **parameter_values; /* parameters {key, value{string_value}} */
} celer_model_config;

/* Parses config.pbtxt text. Unknown fields of ModelConfig are skipped (Triton has many, e.g.
 * optimization); malformed text is CELER_ERR_PARSE naming `path`, line and column; values of the
 * wrong kind or out of range are CELER_ERR_INVALID naming the field. Strings and arrays are
 * allocated in `arena`. */
celer_status celer_config_parse(const char *text, size_t len, const char *path, celer_arena *arena,
                                 celer_model_config *out);

/* The same from Triton's JSON model config (the load parameter `config`; what GET
 * /v2/models/{m}/config writes reads back): protobuf's JSON mapping of ModelConfig, with enum
 * names as strings in any case, 64-bit integers as numbers or strings, lowerCamelCase names too,
 * the parameters map as an object, null for a default. Fields celer does not use are skipped, as in
 * config.pbtxt. Messages start with `what`. */
celer_status celer_config_parse_json(const char *text, size_t len, const char *what, celer_arena *arena,
                                     celer_model_config *out);

/* Completes `cfg` from the compiled model and checks they agree. With no inputs/outputs given,
 * they are taken from the ONNX graph; when max_batch_size was not set (0) and every input and
 * output has a symbolic first dim, that dim becomes the implicit batch dim with
 * max_batch_size = `default_max_batch` (dims then exclude it). Declared inputs/outputs must exist
 * in the model with the same dtype and compatible dims (with the batch dim prepended when
 * max_batch_size > 0). A batchable model without a dynamic_batching block gets dynamic batching
 * with max_queue_delay_us 0 (batch what is queued, never wait). name and platform are filled;
 * `model_name` is the repository folder name (a config `name` that differs is an error, as in
 * Triton). Messages name the model, the tensor and expected vs got. */
celer_status celer_config_complete(celer_model_config *cfg, const char *model_name, const celer_model *model,
                                   int default_max_batch, celer_arena *arena);

/* Writes the config as Triton's JSON model config (GET /v2/models/{m}/config), appended to `out`
 * (a failed growth is recorded in out->status). */
void celer_config_to_json(const celer_model_config *cfg, celer_jbuf *out);

/* Appends the same config as the protobuf ModelConfig message of Triton's model_config.proto (the
 * gRPC ModelConfig RPC): one walk writes both forms, so every key of the JSON is a field here with
 * the same value; values at their proto3 default are left out. Failures are in out->status. */
void celer_config_to_pb(const celer_model_config *cfg, celer_jbuf *out);

/* ---- repository layout ---- */
typedef struct celer_repo_version {
    int64_t version;        /* numeric folder name */
    const char *path;       /* <repo>/<model>/<version>/model.onnx */
    int64_t mtime_ns;       /* newest mtime over the version folder's files */
    int64_t bytes;          /* total size of its files */
} celer_repo_version;

typedef struct celer_repo_model {
    const char *name;             /* folder name */
    const char *config_path;      /* <repo>/<model>/config.pbtxt, NULL when absent */
    int64_t config_mtime_ns;
    int n_versions;               /* at most CELER_CONFIG_MAX_VERSIONS */
    celer_repo_version *versions; /* ascending; only numeric folders holding model.onnx */
    const char *problem;          /* why the folder cannot be served as it is (more version folders than
                                     CELER_CONFIG_MAX_VERSIONS: then no versions are listed); NULL when none */
    const char *pipeline_path;    /* <repo>/<model>/pipeline.yaml: the folder is a pipeline */
    const char *remote_path;      /* <repo>/<model>/remote.yaml: the folder is a remote model (remote.h) */
    int64_t pipeline_mtime_ns, pipeline_bytes; /* a pipeline's or remote model's folder: newest mtime and
                                                  total size of its files */
} celer_repo_model;

/* Lists the models of a repository folder (sorted by name; hidden and non-folder entries are
 * skipped). Allocations in `arena`. CELER_ERR_IO names the folder when it cannot be read. A model
 * folder over a cap is listed with its `problem` set, and the others are unaffected. Paths are
 * joined as found: symlinks are followed, and whether they stay inside the model's folder is for
 * the loader to check (celer_path_inside) right before it opens the file. */
celer_status celer_repo_scan(const char *dir, celer_arena *arena, celer_repo_model **models, int *n_models);

/* The versions `cfg`'s policy selects among `m`'s (latest N, all, or specific ones that exist);
 * writes indices into m->versions to `selected` (capacity m->n_versions), returns the count. */
int celer_repo_select_versions(const celer_model_config *cfg, const celer_repo_model *m, int *selected);

#endif
