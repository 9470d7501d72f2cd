/* Private to src/server: the registry of served models (registry.c) shared with the HTTP front
 * end (http.c) and the program entry (server.c). */
#ifndef CELER_SERVER_INTERNAL_H
#define CELER_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "pipeline/pipeline.h"
#include "runtime/runtime.h"
#include "server/cache.h"
#include "server/config.h"
#include "server/redis.h"
#include "server/kserve.h"
#include "server/metrics.h"
#include "server/overrides.h"
#include "server/remote.h"
#include "server/sched.h"
#include "server/server.h"

typedef enum model_state { MODEL_LOADING, MODEL_READY, MODEL_UNAVAILABLE, MODEL_UNLOADING, MODEL_STATE_COUNT } model_state;
extern const char *const celer_model_state_names[MODEL_STATE_COUNT]; /* "LOADING", "READY"... */

/* The transport a request came by: the `protocol` label of a version's request series (the
 * transport passes it to celer_service_begin, service.h). */
typedef enum celer_service_protocol { CELER_PROTOCOL_HTTP, CELER_PROTOCOL_GRPC, CELER_PROTOCOL_COUNT } celer_service_protocol;
extern const char *const celer_protocol_names[CELER_PROTOCOL_COUNT]; /* "http", "grpc" */

typedef struct served_model served_model;

/* Triton's config `reshape` of a model input or output: the client sends (and receives) shape
 * `client`, the model sees `model`; both after the batch dim when the model batches. The values of
 * the variable dims of one fill those of the other, in order (the config check made their element
 * counts agree). */
typedef struct celer_reshape {
    bool on;
    int client_rank, model_rank;
    int64_t client[CELER_MAX_RANK], model[CELER_MAX_RANK];
    int full_rank;                /* the client's shape with the batch dim (-1), for metadata */
    int64_t full[CELER_MAX_RANK];
} celer_reshape;

/* The lines of an output's label file (config label_filename), for classification. */
typedef struct celer_labels {
    size_t n;
    celer_str *items;
} celer_labels;
/* Why a request failed, as Triton's nv_inference_request_failure{reason} says. */
typedef enum celer_fail_reason { CELER_FAIL_REJECTED, CELER_FAIL_CANCELED, CELER_FAIL_BACKEND, CELER_FAIL_OTHER,
                                 CELER_FAIL_COUNT } celer_fail_reason;
extern const char *const celer_fail_reason_names[CELER_FAIL_COUNT]; /* "REJECTED", ... */

/* Triton's latency summaries of a version (metrics in microseconds). */
typedef enum celer_summary { CELER_SUMMARY_REQUEST, CELER_SUMMARY_QUEUE, CELER_SUMMARY_INPUT, CELER_SUMMARY_INFER,
                             CELER_SUMMARY_OUTPUT, CELER_SUMMARY_CACHE_HIT, CELER_SUMMARY_CACHE_MISS,
                             CELER_SUMMARY_COUNT } celer_summary;

/* One batch size of a version's executions (Triton's batch_stats): `rows` 0 = a free slot. */
typedef struct celer_batch_slot {
    atomic_llong rows;
    atomic_ullong count, ns_input, ns_infer, ns_output;
} celer_batch_slot;

/* Triton's statistics of one version (its statistics extension), all atomics: updated without a
 * lock on the request path, read as they are by the statistics endpoints and the metrics. */
typedef struct celer_version_counters {
    atomic_ullong n_success, ns_success;           /* requests answered, cache hits included */
    atomic_ullong n_failure, ns_failure;
    atomic_ullong n_fail_reason[CELER_FAIL_COUNT];
    atomic_ullong ns_queue;                        /* over the successes */
    atomic_ullong n_compute, ns_input, ns_infer, ns_output; /* successes that ran the model */
    atomic_ullong n_cache_hit, ns_cache_hit, n_cache_miss, ns_cache_miss;
    atomic_ullong n_inferences;                    /* rows computed (cache hits excluded) */
    atomic_ullong n_exec;                          /* executions (counted with their first request) */
    atomic_ullong last_inference_ms;               /* CLOCK_REALTIME of the last execution */
    celer_batch_slot *batches;                     /* n_batch_slots, found by rows (open addressing) */
    int n_batch_slots;
} celer_version_counters;

/* One loaded version: immutable once READY, shared by every request using it. */
typedef struct served_version {
    served_model *owner;
    int64_t version;
    char version_str[24];
    celer_model *model;               /* NULL for a pipeline and a remote model */
    celer_pipeline *pipeline;         /* the folder's pipeline.yaml; its queue holds tasks */
    celer_remote *remote;             /* the folder's remote.yaml; its queue hands jobs to it */
    celer_remote_desc remote_desc;    /* remote: what the upstream serves (in `arena`) */
    celer_series **m_steps;           /* pipeline: per-step duration histograms */
    celer_sched_queue **step_queues;  /* pipeline: for steps that batch across requests, their queue */
    int n_batch_steps;                /* pipeline: steps that batch across requests */
    atomic_int before_batch;          /* pipeline: requests that have not reached a batch step yet */
    celer_sched_queue *queue;
    int n_inputs, n_outputs;
    celer_kserve_tensor_spec *inputs; /* what requests must send (batch dim included) */
    const char **output_names;
    celer_reshape *reshape_in, *reshape_out; /* per model input / output; NULL when none has a reshape */
    celer_labels *labels;             /* per model output; NULL when none has a label file */
    celer_arena arena;                /* the reshapes and labels */
    celer_pipeline_type *output_types; /* pipeline: its outputs' per-row types, worked out at load */
    atomic_int refs;                  /* requests holding it; the registry holds one */
    int64_t mtime_ns;                 /* of its folder when loaded, for polling */
    double load_seconds;              /* load, compile and warm-up time (a gauge once it serves) */
    int64_t cache_ttl_ns;             /* results cached this long; 0 = not cached */
    /* what requests read of the config at run time, copied at load: a reload replaces the model's
     * config under the registry's lock while requests of a kept version go on */
    bool batched;                     /* max_batch_size > 0: requests and outputs carry rows first */
    int64_t default_timeout_us;
    bool allow_timeout_override;
    uint64_t cache_salt;              /* hash of its config and files: part of every cache key */
    /* metrics */
    celer_series *m_success[CELER_PROTOCOL_COUNT], *m_failure[CELER_PROTOCOL_COUNT]; /* by the request's protocol */
    celer_series *m_duration[CELER_PROTOCOL_COUNT];
    celer_series *m_queue, *m_compute, *m_batch; /* the model's, whoever asked */
    /* Triton's summaries (nv_*_summary_us), observed with the same durations; NULL when Triton
     * leaves one out (the request's with a cache, the cache's without) */
    celer_series *m_summary[CELER_SUMMARY_COUNT];
    /* Triton's statistics, counted once by the service (requests and executions) and by on_batch
     * (durations by batch size); the nv_inference_* counters read these very fields */
    celer_version_counters stats;
} served_version;

struct served_model {
    char name[256];
    model_state state;
    char reason[1024];              /* why UNAVAILABLE; while READY, why the last load failed */
    celer_arena arena;              /* config */
    celer_model_config config;
    int64_t config_mtime_ns;
    uint64_t tried_fp;              /* repository state of the last load attempt (see registry.c) */
    bool absent;                    /* asked for at start (--load-model) and not in the repository */
    bool retry_remote;              /* a remote model not serving because its upstream could not be
                                       reached at its last load: loaded again later */
    /* what its serving versions were loaded with beyond its folder (Triton's load parameters) */
    enum { LOADED_AS_IS, LOADED_WITH_CONFIG, LOADED_FROM_FILES } loaded_with;
    uint64_t override_fp;           /* LOADED_WITH_CONFIG: its folder's fingerprint then (the override
                                       stays while the folder does not change, as in Triton) */
    int n_versions;
    served_version *versions[CELER_CONFIG_MAX_VERSIONS]; /* ascending */
};

typedef struct celer_registry celer_registry;

celer_status celer_registry_init(const celer_server_options *opts, celer_sched *sched, celer_metrics *metrics,
                                 celer_registry **out);
void celer_registry_free(celer_registry *r);

/* Loads every model of the repository (failures are recorded as UNAVAILABLE, not returned). */
void celer_registry_load_all(celer_registry *r);
/* Loads the models named (explicit mode's --load-model), with one scan: failures recorded as
 * load_all records them, and a name not in the repository as an UNAVAILABLE entry saying so. */
void celer_registry_load_some(celer_registry *r, const char *const *names, int n_names);
/* Rescans the repository: loads new or changed models/versions beside the serving ones and swaps
 * them in, unloads removed ones (draining in-flight requests). */
void celer_registry_poll(celer_registry *r);
/* Repository API: (re)loads / unloads one model. Load errors are returned (and recorded). They
 * block for as long as the load takes; HTTP handlers use celer_registry_submit_action. Every file
 * a load opens must resolve inside the model's folder (symlinks followed), and messages name files
 * relative to the repository root. */
celer_status celer_registry_load(celer_registry *r, const char *name);
celer_status celer_registry_unload(celer_registry *r, const char *name);
/* A load with Triton's overrides (`ov` NULL: celer_registry_load). A config alone replaces the
 * folder's config.pbtxt, and stays while the folder does not change (a load without parameters
 * then keeps it; a change of the folder, by a load or a poll, takes the repository's again). With
 * files the model loads from them alone, written into a private folder that is removed once it
 * loaded (the model's name need not be in the repository; polls leave it alone until it is loaded
 * again or unloaded). A load with overrides that fails changes nothing: the serving versions, the
 * model's state and the index stay as they were. */
celer_status celer_registry_load_with(celer_registry *r, const char *name, const celer_load_overrides *ov);

/* Queues a load (or an unload when `unload`) of model `name`, with overrides `ov` (NULL: none;
 * borrowed, with everything it points to, until done is called) for the registry's action pool (one
 * thread, at most 64 actions waiting) and returns at once. `name` is copied (at most 255 bytes:
 * longer is CELER_ERR_LIMIT). When the queue is full, or the pool is stopped, returns
 * CELER_ERR_UNAVAILABLE with a message and `done` is never called. Otherwise returns CELER_OK and
 * calls done(user, status, message) exactly once: on the pool thread when the action finished
 * (message: the error, "" on success), or on the thread stopping the pool with
 * CELER_ERR_UNAVAILABLE when it was still queued then. `message` is valid only during the call;
 * `user` stays the caller's. */
celer_status celer_registry_submit_action(celer_registry *r, const char *name, bool unload,
                                          const celer_load_overrides *ov,
                                          void (*done)(void *user, celer_status st, const char *message), void *user);
/* Stops the action pool: queued actions get done(CELER_ERR_UNAVAILABLE) on the calling thread, the
 * running one finishes, later submits are refused. For shutdown before the HTTP server stops (its
 * suspended connections get their answers); celer_registry_free calls it too. Idempotent; must
 * not be called from a `done` callback. */
void celer_registry_stop_actions(celer_registry *r);

/* Finds a READY version (`version` NULL or "" = the latest loaded) and takes a reference;
 * release it with celer_registry_release. On failure returns NULL with *status
 * CELER_ERR_NOT_FOUND (no such model or version) or CELER_ERR_UNAVAILABLE (the model exists but
 * is not ready: the message gives its state and reason), and the message in msg. */
served_version *celer_registry_acquire(celer_registry *r, const char *name, const char *version, celer_status *status,
                                       char *msg, size_t msg_cap);
void celer_registry_release(served_version *v);

/* The names of remote models whose last load failed for a reason that may pass (their upstream
 * could not be reached) and that serve no version: up to `cap` of them, for the caller to load
 * again (server.c does, with backoff, through the action pool). */
int celer_registry_remote_retries(celer_registry *r, char (*names)[256], int cap);

/* True when every model that should be served is READY (or --strict-readiness is off), the
 * repository's source could be read once, and shutdown has not begun. */
bool celer_registry_ready(celer_registry *r);
/* Shutdown began (SIGTERM): the server's readiness (HTTP /v2/health/ready, gRPC ServerReady and
 * grpc.health.v1 for "") is false from now on, for both transports; models stay ready and served
 * while the server drains. */
void celer_registry_set_draining(celer_registry *r);
bool celer_registry_draining(celer_registry *r);
/* Records why the repository's source (an S3 bucket, named `source`) cannot be read, or clears it
 * (reason NULL): while set, the repository index lists the source as an UNAVAILABLE entry with the
 * reason (a URL is never a model's name), and when `unready` the server is not ready (before the
 * source was ever read; later the serving models go on, and a replica must not leave its Service
 * for it). Copied. */
void celer_registry_set_source_error(celer_registry *r, const char *source, const char *reason, bool unready);
/* A function the repository API's load runs before it scans (an S3 repository's sync: a model
 * loaded by name is the bucket's current one); a failure is the load's error. fn may run on the
 * action thread while the poller runs: it must be safe to call from two threads. */
void celer_registry_set_refresh(celer_registry *r, celer_status (*fn)(void *user), void *user);

/* The repository index, one entry per model version (or per model with no version loaded), for
 * each transport to encode; only ready ones when `ready_only`. each(user, e) runs under the
 * registry's read lock: it must not call the registry; `e` is valid during the call. */
typedef struct celer_index_entry {
    const char *name, *version; /* version NULL: none loaded */
    const char *state, *reason; /* state NULL: in the repository, never loaded (Triton's modes list those;
                                   reason NULL then too) */
} celer_index_entry;
void celer_registry_index(celer_registry *r, bool ready_only, void (*each)(void *user, const celer_index_entry *e),
                          void *user);
/* The index as KServe JSON: [{"name","version","state","reason"}]. */
void celer_registry_index_json(celer_registry *r, bool ready_only, celer_jbuf *out);
/* A version's metadata, for each transport to encode (KServe JSON, gRPC ModelMetadataResponse).
 * Pointers into v: valid while it is held. */
typedef struct celer_tensor_meta {
    const char *name;
    celer_dtype dtype;
    int rank;
    const int64_t *dims; /* -1: variable */
    bool typed;          /* false: a pipeline output whose type could not be worked out at load */
} celer_tensor_meta;
typedef struct celer_model_meta {
    const char *name, *platform;
    int n_versions, n_inputs, n_outputs;
    const char *versions[CELER_CONFIG_MAX_VERSIONS];
    celer_tensor_meta inputs[CELER_CONFIG_MAX_IO], outputs[CELER_CONFIG_MAX_IO];
    int64_t row_dims[CELER_CONFIG_MAX_IO][CELER_MAX_RANK]; /* a pipeline's output shapes: -1 rows, then per row */
} celer_model_meta;
void celer_registry_metadata(const served_version *v, celer_model_meta *out);
/* Output i of a model version, local or remote (NULL for a pipeline's). */
const celer_io_desc *celer_version_output(const served_version *v, int i);

/* Appends the OpenAPI document (openapi.h) of the server (model NULL), of a model (version NULL)
 * or of one of its versions to out, as the registry keeps it since the last load or unload.
 * CELER_ERR_NOT_FOUND naming what is not serving. */
celer_status celer_registry_openapi(celer_registry *r, const char *model, const char *version, celer_jbuf *out);

/* Writes model metadata / config / statistics JSON for a version. */
void celer_registry_metadata_json(const served_version *v, celer_jbuf *out);
/* The config v's model serves with, as Triton's JSON or ModelConfig message, read under the
 * registry's lock (a reload swaps it). */
void celer_registry_config_json(celer_registry *r, const served_version *v, celer_jbuf *out);
void celer_registry_config_pb(celer_registry *r, const served_version *v, celer_jbuf *out);
/* Triton statistics of one version, for each transport to encode (JSON and
 * ModelStatisticsResponse carry the same fields). */
typedef struct celer_stat_duration {
    unsigned long long count, ns;
} celer_stat_duration;
typedef struct celer_batch_stats {
    unsigned long long batch_size;
    celer_stat_duration compute_input, compute_infer, compute_output;
} celer_batch_stats;
typedef struct celer_version_stats {
    const char *name, *version;
    unsigned long long last_inference, inference_count, execution_count;
    celer_stat_duration success, fail, queue, compute_input, compute_infer, compute_output, cache_hit, cache_miss;
    int n_batches;
    const celer_batch_stats *batches; /* ascending batch size */
} celer_version_stats;
/* Calls each(user, st) for every loaded version of model `name` (NULL: every model) and `version`
 * (NULL: every one), under the registry's read lock (each must not call the registry; `st` is
 * valid during the call). CELER_ERR_NOT_FOUND with a message naming what is unknown, before any
 * call. */
celer_status celer_registry_stats(celer_registry *r, const char *name, const char *version,
                                  void (*each)(void *user, const celer_version_stats *st), void *user);
/* The statistics as Triton's JSON; the same errors (nothing written then). */
celer_status celer_registry_stats_json(celer_registry *r, const char *name, const char *version, celer_jbuf *out);

#endif
