/* The registry of served models: loading from the repository, warm-up, version selection,
 * reference counting of in-flight requests, and swaps that drain the old version first. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "openapi.h"
#include "server_internal.h"

#define MAX_MODELS 4096
/* How long a batch step of a pipeline waits for requests still on their way to it. */
#define PIPELINE_BATCH_DELAY_US 2000
/* Repository actions (load/unload through the API) run on a small pool fed by a bounded queue,
 * so a burst of requests neither starts a thread each nor piles up without end. One thread is
 * enough: loads and unloads run one at a time under load_lock anyway. */
#define ACTION_THREADS 1
/* config.pbtxt is read whole; the parser has a tighter cap of its own and says so */
#define CONFIG_MAX_BYTES (16 << 20)
#define ACTION_QUEUE_CAP 64

typedef struct repo_action {
    char name[256];
    bool unload;
    const celer_load_overrides *ov;
    void (*done)(void *user, celer_status st, const char *message);
    void *user;
} repo_action;

const char *const celer_protocol_names[CELER_PROTOCOL_COUNT] = {"http", "grpc"};
const char *const celer_fail_reason_names[CELER_FAIL_COUNT] = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};

const char *const celer_model_state_names[MODEL_STATE_COUNT] = {
    [MODEL_LOADING] = "LOADING", [MODEL_READY] = "READY", [MODEL_UNAVAILABLE] = "UNAVAILABLE",
    [MODEL_UNLOADING] = "UNLOADING"};

struct celer_registry {
    const celer_server_options *opts;
    celer_sched *sched;
    celer_metrics *metrics;
    celer_remote_hub *remote_hub; /* made with the first remote model (under load_lock) */
    /* Readers (request lookups) hold the read lock only to find a version and bump its count. */
    pthread_rwlock_t lock;
    /* Loads and unloads run one at a time (API calls and the poller). */
    pthread_mutex_t load_lock;
    int n_models;
    served_model *models[MAX_MODELS];
    /* Polling takes a changed model only when two scans in a row see the same files, so a
     * version folder still being copied is never loaded half-written. */
    int n_pending;
    struct pending {
        char name[256];
        uint64_t fp;
    } pending[MAX_MODELS];
    /* the action pool: a ring of queued actions, its workers, and whether it was stopped */
    pthread_mutex_t act_lock;
    pthread_cond_t act_cond;
    repo_action actions[ACTION_QUEUE_CAP];
    int act_head, act_len, act_threads;
    bool act_stop, act_joined;
    pthread_t act_thread[ACTION_THREADS];
    char source[512], source_error[1024]; /* why the repository's source cannot be read; "" when it can (under lock) */
    bool source_unready;                  /* and whether that keeps the server unready */
    atomic_bool draining;                 /* shutdown began: the server is not ready, whatever the models */
    celer_status (*refresh)(void *user);  /* run before a load by name (set before serving) */
    void *refresh_user;
    /* the OpenAPI documents (openapi.h), rebuilt under load_lock when a load or unload ran;
     * docs_lock guards the table for the readers */
    bool docs_dirty;
    pthread_mutex_t docs_lock;
    struct api_doc *docs;
    int n_docs;
};

/* A fingerprint of what a model folder holds: config and version folders (mtimes and sizes). */
static uint64_t fingerprint(const celer_repo_model *rm) {
    uint64_t h = (1469598103934665603ull ^ (uint64_t)rm->config_mtime_ns) * 1099511628211ull;
    h = (h ^ (uint64_t)rm->pipeline_mtime_ns ^ ((uint64_t)rm->pipeline_bytes << 20) ^ (rm->pipeline_path != NULL) ^
         ((uint64_t)(rm->problem != NULL) << 1) ^ ((uint64_t)(rm->remote_path != NULL) << 2)) *
        1099511628211ull;
    for (int i = 0; i < rm->n_versions; i++) {
        const celer_repo_version *v = &rm->versions[i];
        h = (h ^ (uint64_t)v->version) * 1099511628211ull;
        h = (h ^ (uint64_t)v->mtime_ns) * 1099511628211ull;
        h = (h ^ (uint64_t)v->bytes) * 1099511628211ull;
    }
    return h;
}

/* True when `fp` for `name` was already seen by the previous scan; records it otherwise. */
static bool stable_since_last_scan(celer_registry *r, const char *name, uint64_t fp) {
    for (int i = 0; i < r->n_pending; i++)
        if (!strcmp(r->pending[i].name, name)) {
            bool same = r->pending[i].fp == fp;
            r->pending[i].fp = fp;
            return same;
        }
    if (r->n_pending < MAX_MODELS) {
        snprintf(r->pending[r->n_pending].name, sizeof r->pending[0].name, "%s", name);
        r->pending[r->n_pending++].fp = fp;
    }
    return false;
}

static void *action_worker(void *arg);

celer_status celer_registry_init(const celer_server_options *opts, celer_sched *sched, celer_metrics *metrics,
                                 celer_registry **out) {
    celer_registry *r = calloc(1, sizeof *r);
    if (!r) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    r->opts = opts;
    r->sched = sched;
    r->metrics = metrics;
    pthread_rwlock_init(&r->lock, NULL);
    pthread_mutex_init(&r->load_lock, NULL);
    pthread_mutex_init(&r->act_lock, NULL);
    pthread_mutex_init(&r->docs_lock, NULL);
    pthread_cond_init(&r->act_cond, NULL);
    for (; r->act_threads < ACTION_THREADS; r->act_threads++)
        if (pthread_create(&r->act_thread[r->act_threads], NULL, action_worker, r)) {
            celer_registry_free(r);
            return celer_errorf(CELER_ERR_NOMEM, "cannot start the repository action thread");
        }
    *out = r;
    return CELER_OK;
}

/* ---- versions ---- */

static double queue_depth(void *user) {
    served_version *v = user;
    return v->queue ? celer_sched_queue_depth(v->queue) : 0;
}

/* Triton's per-version counters (its metrics.cc names), each a field of celer_version_counters
 * read at render time; `us`: a duration in ns shown in microseconds; `cache`: only for versions
 * that cache. */
typedef struct triton_counter {
    const char *name, *help;
    size_t offset;
    bool us, cache;
} triton_counter;
#define COUNTER(f) offsetof(celer_version_counters, f)
static const triton_counter triton_counters[] = {
    {"nv_inference_request_success", "Successful inference requests of the model version, all batch sizes (Triton's name).",
     COUNTER(n_success), false, false},
    {"nv_inference_count", "Inferences (batch rows) computed by the model version; cache hits excluded (Triton's name).",
     COUNTER(n_inferences), false, false},
    {"nv_inference_exec_count", "Executions of the model version; cache hits excluded (Triton's name).",
     COUNTER(n_exec), false, false},
    {"nv_inference_request_duration_us",
     "Total duration of the model version's successful requests in microseconds, cache hits included (Triton's name).",
     COUNTER(ns_success), true, false},
    {"nv_inference_queue_duration_us",
     "Total time the model version's successful requests waited in its queue, in microseconds (Triton's name).",
     COUNTER(ns_queue), true, false},
    {"nv_inference_compute_input_duration_us",
     "Total time spent preparing inputs for the model version's runs, in microseconds; cache hits excluded (Triton's name).",
     COUNTER(ns_input), true, false},
    {"nv_inference_compute_infer_duration_us",
     "Total time the model version ran for its requests, in microseconds; cache hits excluded (Triton's name).",
     COUNTER(ns_infer), true, false},
    {"nv_inference_compute_output_duration_us",
     "Total time spent taking the model version's outputs into answers, in microseconds; cache hits excluded "
     "(Triton's name).",
     COUNTER(ns_output), true, false},
    {"nv_cache_num_hits_per_model", "Requests of the model version answered from the cache (Triton's name).",
     COUNTER(n_cache_hit), false, true},
    {"nv_cache_hit_duration_per_model",
     "Total time of the model version's cache hits (lookup and copy out), in microseconds (Triton's name).",
     COUNTER(ns_cache_hit), true, true},
    {"nv_cache_num_misses_per_model", "Requests of the model version that missed the cache (Triton's name).",
     COUNTER(n_cache_miss), false, true},
    {"nv_cache_miss_duration_per_model",
     "Total time of the model version's cache misses (lookup and insertion), in microseconds (Triton's name).",
     COUNTER(ns_cache_miss), true, true},
};
#undef COUNTER

/* Triton's latency summaries, indexed by celer_summary. */
typedef struct triton_summary {
    const char *name, *help;
    bool cache;
} triton_summary;
static const triton_summary triton_summaries[CELER_SUMMARY_COUNT] = {
    [CELER_SUMMARY_REQUEST] = {"nv_inference_request_summary_us",
                               "Durations of the model version's successful requests in microseconds (Triton's name).",
                               false},
    [CELER_SUMMARY_QUEUE] = {"nv_inference_queue_summary_us",
                             "Queue waits of the model version's successful requests in microseconds (Triton's name).",
                             false},
    [CELER_SUMMARY_INPUT] = {"nv_inference_compute_input_summary_us",
                             "Input preparation per computed request in microseconds (Triton's name).", false},
    [CELER_SUMMARY_INFER] = {"nv_inference_compute_infer_summary_us",
                             "Model run per computed request in microseconds (Triton's name).", false},
    [CELER_SUMMARY_OUTPUT] = {"nv_inference_compute_output_summary_us",
                              "Output extraction per computed request in microseconds (Triton's name).", false},
    [CELER_SUMMARY_CACHE_HIT] = {"nv_cache_hit_summary_per_model",
                                 "Cache hit durations of the model version in microseconds (Triton's name).", true},
    [CELER_SUMMARY_CACHE_MISS] = {"nv_cache_miss_summary_per_model",
                                  "Cache miss durations of the model version in microseconds (Triton's name).", true},
};

static void version_metrics(celer_registry *r, served_version *v, double load_seconds) {
    char name[600], labels[800];
    celer_metrics_escape(v->owner->name, name, sizeof name);
    snprintf(labels, sizeof labels, "model=\"%s\",version=\"%s\"", name, v->version_str);
    const double *b = celer_metrics_latency_buckets;
    int nb = celer_metrics_latency_bucket_count;
    for (int p = 0; p < CELER_PROTOCOL_COUNT; p++) { /* up front: two protocols, three series each */
        char with_protocol[900], with_outcome[1000];
        snprintf(with_protocol, sizeof with_protocol, "%s,protocol=\"%s\"", labels, celer_protocol_names[p]);
        snprintf(with_outcome, sizeof with_outcome, "%s,outcome=\"success\"", with_protocol);
        v->m_success[p] = celer_metrics_counter(r->metrics, "celer_inference_requests_total",
                                                "Inference requests by model, version, protocol and outcome.",
                                                with_outcome);
        snprintf(with_outcome, sizeof with_outcome, "%s,outcome=\"failure\"", with_protocol);
        v->m_failure[p] = celer_metrics_counter(r->metrics, "celer_inference_requests_total",
                                                "Inference requests by model, version, protocol and outcome.",
                                                with_outcome);
        v->m_duration[p] = celer_metrics_histogram(r->metrics, "celer_inference_request_duration_seconds",
                                                   "Time from request decoded to response encoded.", with_protocol, b,
                                                   nb);
    }
    v->m_queue = celer_metrics_histogram(r->metrics, "celer_inference_queue_duration_seconds",
                                         "Time requests wait in the model's queue.", labels, b, nb);
    v->m_compute = celer_metrics_histogram(r->metrics, "celer_inference_compute_duration_seconds",
                                           "Time the model runs per batch, seen by each request.", labels, b, nb);
    static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    v->m_batch = celer_metrics_histogram(r->metrics, "celer_inference_batch_size", "Rows per executed batch.", labels,
                                         batch_bounds, (int)CELER_ARRAY_LEN(batch_bounds));
    bool cached = v->cache_ttl_ns > 0;
    for (int i = 0; i < CELER_SUMMARY_COUNT; i++) {
        const triton_summary *t = &triton_summaries[i];
        /* as Triton: no request summary with a cache (its durations mix hits and runs), cache
         * summaries only with one */
        if (t->cache ? cached : !(cached && i == CELER_SUMMARY_REQUEST))
            v->m_summary[i] = celer_metrics_summary(r->metrics, t->name, t->help, labels);
    }
    v->load_seconds = load_seconds;
}

/* ---- Triton's statistics of a version (the statistics extension and nv_* metrics) ---- */

/* Batch sizes kept apart in batch_stats: up to max_batch_size of them, at most 1024 (half the
 * slots, so probes stay short); executions of further sizes count in execution_count only. */
#define MAX_BATCH_SIZES 1024

static celer_status batch_slots_init(served_version *v, int max_batch_size) {
    int sizes = CELER_MIN(CELER_MAX(max_batch_size, 1), MAX_BATCH_SIZES), n = 4;
    while (n < 2 * sizes) n *= 2;
    v->stats.batches = calloc((size_t)n, sizeof *v->stats.batches);
    if (!v->stats.batches) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    v->stats.n_batch_slots = n;
    return CELER_OK;
}

/* The slot of batch size `rows` (claimed when new), or NULL when every slot holds another size. */
static celer_batch_slot *batch_slot(celer_version_counters *c, int64_t rows) {
    int n = c->n_batch_slots;
    for (int i = 0, k = (int)((uint64_t)rows * 0x9E3779B97F4A7C15ull >> 40) & (n - 1); i < n; i++, k = (k + 1) & (n - 1)) {
        long long have = atomic_load_explicit(&c->batches[k].rows, memory_order_acquire);
        if (!have && atomic_compare_exchange_strong(&c->batches[k].rows, &have, rows)) return &c->batches[k];
        if (have == rows) return &c->batches[k];
    }
    return NULL;
}

/* on_batch of a model's queue: one execution's durations by its batch size (Triton's batch_stats),
 * on the worker that ran it once its requests were answered (its execution_count and
 * last_inference were counted with its first request, service.c). */
static void version_batch_done(void *user, const celer_sched_batch *b) {
    served_version *v = user;
    celer_version_counters *c = &v->stats;
    celer_batch_slot *s = c->batches ? batch_slot(c, b->rows) : NULL;
    if (!s) return;
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ns_input, (unsigned long long)b->input_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ns_infer, (unsigned long long)b->infer_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ns_output, (unsigned long long)b->output_ns, memory_order_relaxed);
}

/* A counter of celer_version_counters, read by the nv_* series at render time: `user` points at
 * the field. */
static double counter_value(void *user) { return (double)atomic_load_explicit((atomic_ullong *)user, memory_order_relaxed); }
static double counter_us(void *user) {
    return (double)(atomic_load_explicit((atomic_ullong *)user, memory_order_relaxed) / 1000); /* whole us, as Triton */
}


/* The series that read the version (its queue depth) and its load time are pointed at it once it
 * serves: every load of one version number shares the series of that number, so a reload of the
 * same version must not touch them before the swap (nor a failed one at all). */
static void version_publish(celer_registry *r, served_version *v) {
    char name[600], labels[800], with_reason[900];
    celer_metrics_escape(v->owner->name, name, sizeof name);
    snprintf(labels, sizeof labels, "model=\"%s\",version=\"%s\"", name, v->version_str);
    celer_metrics_gauge_fn(r->metrics, "celer_inference_queue_depth", "Requests waiting in the model's queue.", labels,
                           queue_depth, v);
    celer_metrics_set(celer_metrics_gauge(r->metrics, "celer_model_load_duration_seconds",
                                          "Time to load, compile and warm up the version.", labels),
                      v->load_seconds);
    /* Triton's names, read from the statistics above: the same measurements, no second count */
    bool cached = v->cache_ttl_ns > 0;
    for (size_t i = 0; i < CELER_ARRAY_LEN(triton_counters); i++) {
        const triton_counter *t = &triton_counters[i];
        if (t->cache && !cached) { /* as Triton: cache series only with a cache (a reload may drop it) */
            celer_metrics_remove_series(r->metrics, t->name, labels);
            continue;
        }
        celer_metrics_counter_fn(r->metrics, t->name, t->help, labels, t->us ? counter_us : counter_value,
                                 (char *)&v->stats + t->offset);
    }
    for (int i = 0; i < CELER_SUMMARY_COUNT; i++) /* a reload that turned the cache on or off */
        if (!v->m_summary[i]) celer_metrics_remove_series(r->metrics, triton_summaries[i].name, labels);
    for (int i = 0; i < CELER_FAIL_COUNT; i++) {
        snprintf(with_reason, sizeof with_reason, "%s,reason=\"%s\"", labels, celer_fail_reason_names[i]);
        celer_metrics_counter_fn(r->metrics, "nv_inference_request_failure",
                                 "Failed inference requests of the model version, by reason (Triton's name).",
                                 with_reason, counter_value, &v->stats.n_fail_reason[i]);
    }
    celer_metrics_gauge_fn(r->metrics, "nv_inference_pending_request_count",
                           "Requests waiting in the model version's queue (Triton's name).", labels, queue_depth, v);
    celer_metrics_set(celer_metrics_gauge(r->metrics, "nv_model_load_duration_secs",
                                          "Time to load the model version, in seconds (Triton's name).", labels),
                      v->load_seconds);
}

/* celer_model_state{model,state} is 1 for the model's current state, 0 for the others. */
static void state_metrics(celer_registry *r, const served_model *m) {
    char name[600], labels[800];
    celer_metrics_escape(m->name, name, sizeof name);
    for (int s = 0; s < MODEL_STATE_COUNT; s++) {
        snprintf(labels, sizeof labels, "model=\"%s\",state=\"%s\"", name, celer_model_state_names[s]);
        celer_metrics_set(celer_metrics_gauge(r->metrics, "celer_model_state", "1 for the model's current state.", labels),
                          m->state == (model_state)s);
    }
}

static void version_free(celer_registry *r, served_version *v) {
    if (!v) return;
    /* step queues hand their jobs to the pipeline's queue: they drain first */
    for (int i = 0; v->step_queues && i < celer_pipeline_step_count(v->pipeline); i++)
        if (v->step_queues[i]) celer_sched_queue_remove(r->sched, v->step_queues[i]);
    free(v->step_queues);
    if (v->queue) celer_sched_queue_remove(r->sched, v->queue);
    celer_remote_close(v->remote); /* its calls in flight end first */
    celer_model_free(v->model);
    celer_pipeline_free(v->pipeline);
    free(v->m_steps);
    free(v->stats.batches);
    free(v->inputs);
    free(v->output_names);
    free(v->output_types);
    celer_arena_free(&v->arena);
    free(v);
}

/* Runs the model once on zeros (symbolic dims 1) so the first request does not pay for kernel
 * set-up; models with string inputs are not warmed, nor those that refuse zeros as input values. */
static celer_status warm_up(served_version *v) {
    int n = celer_model_input_count(v->model);
    celer_tensor *in = calloc((size_t)n + 1, sizeof *in);
    if (!in) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    celer_status st = CELER_OK;
    for (int i = 0; i < n && !st; i++) {
        const celer_io_desc *d = celer_model_input(v->model, i);
        if (d->dtype == CELER_STRING || !d->has_shape) goto skip;
        in[i].dtype = d->dtype;
        in[i].shape = d->shape;
        for (int k = 0; k < d->shape.rank; k++)
            if (in[i].shape.dims[k] < 0) in[i].shape.dims[k] = 1;
        size_t bytes;
        if ((st = celer_tensor_bytes(&in[i], &bytes))) break;
        if (bytes > (256u << 20)) goto skip; /* huge inputs: let the first request pay */
        in[i].data = calloc(1, bytes + 1);
        if (!in[i].data) st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        celer_context *ctx;
        if (!(st = celer_context_init(v->model, &ctx))) {
            const celer_tensor *out;
            st = celer_context_run(ctx, in, &out);
            celer_context_free(ctx);
            /* zeros are not a valid input of every model (an ImageDecoder's encoded bytes):
             * a value the model refuses leaves it cold, not unavailable */
            if (st == CELER_ERR_INVALID) st = CELER_OK;
            if (st) celer_error_wrap(st, "warm-up run");
        }
    }
skip:
    for (int i = 0; i < n; i++) free(in[i].data);
    free(in);
    return st;
}

/* Result caching for a model version: Triton's `response_cache { enable: true }`, for
 * parameters { key: "cache_ttl_seconds" } seconds (60 when absent). The salt hashes the config as
 * served and the version's files, so a changed model never answers from an old entry. */
static void cache_settings(served_version *v, const celer_model_config *cfg, int64_t bytes) {
    double ttl = 60;
    for (int i = 0; i < cfg->n_parameters; i++)
        if (!strcmp(cfg->parameter_keys[i], "cache_ttl_seconds")) {
            char *end;
            double t = strtod(cfg->parameter_values[i], &end);
            if (!*end && t > 0) ttl = t;
        }
    v->cache_ttl_ns = cfg->response_cache ? (int64_t)(ttl * 1e9) : 0;
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_config_to_json(cfg, &b);
    uint64_t h = XXH3_64bits(b.data ? b.data : "", b.len);
    celer_jbuf_free(&b);
    int64_t parts[3] = {v->version, v->mtime_ns, bytes};
    v->cache_salt = XXH3_64bits_withSeed(parts, sizeof parts, h);
}

static celer_status read_model_file(const char *mdir, const char *model, const char *name, size_t cap,
                                    celer_arena *arena, char **text, size_t *len);

#define LABEL_FILE_MAX ((size_t)64 << 20)
#define LABELS_MAX 1000000 /* classification ranks at most this many classes (Triton's cap) */

/* The lines of a label file as Triton reads them (std::getline: split at '\n', nothing trimmed, no
 * line after a final '\n'), at most LABELS_MAX; they point into `text`. */
static celer_status split_labels(char *text, size_t len, celer_arena *arena, celer_labels *out) {
    size_t n = 0;
    for (size_t i = 0; i < len && n < LABELS_MAX; i++) n += text[i] == '\n' || i + 1 == len;
    out->items = celer_arena_alloc(arena, sizeof *out->items * (n ? n : 1));
    if (!out->items) return celer_errorf(CELER_ERR_NOMEM, "out of memory for %zu labels", n);
    size_t start = 0;
    for (size_t i = 0; i < len && out->n < n; i++)
        if (text[i] == '\n' || i + 1 == len) {
            size_t end = text[i] == '\n' ? i : i + 1;
            out->items[out->n++] = (celer_str){text + start, end - start};
            start = i + 1;
        }
    return CELER_OK;
}

/* The version's reshapes (config `reshape`) and label files (config `label_filename`, read from the
 * model folder `mdir` as Triton reads it, confined to it), by model input and output, into
 * v->arena; v's inputs and output names are set. */
static celer_status io_extras(const served_model *m, const char *mdir, served_version *v) {
    const celer_model_config *cfg = &m->config;
    celer_arena_init(&v->arena, 4096, 0);
    for (int pass = 0; pass < 2; pass++) {
        bool in = pass == 0;
        int n = in ? v->n_inputs : v->n_outputs, nc = in ? cfg->n_inputs : cfg->n_outputs;
        const celer_config_io *list = in ? cfg->inputs : cfg->outputs;
        for (int i = 0; i < n; i++) {
            const char *name = in ? v->inputs[i].name : v->output_names[i];
            const celer_config_io *io = NULL;
            for (int c = 0; c < nc && !io; c++)
                if (!strcmp(list[c].name, name)) io = &list[c];
            if (!io) continue;
            if (io->has_reshape) {
                celer_reshape **rs = in ? &v->reshape_in : &v->reshape_out;
                if (!*rs && !(*rs = celer_arena_alloc(&v->arena, sizeof **rs * (size_t)n)))
                    return celer_errorf(CELER_ERR_NOMEM, "out of memory");
                celer_reshape *r = &(*rs)[i];
                int off = v->batched ? 1 : 0;
                *r = (celer_reshape){.on = true, .client_rank = io->rank, .model_rank = io->reshape_rank,
                                     .full_rank = io->rank + off};
                memcpy(r->client, io->dims, sizeof r->client);
                memcpy(r->model, io->reshape, sizeof r->model);
                r->full[0] = -1;
                memcpy(r->full + off, io->dims, sizeof *io->dims * (size_t)io->rank);
            }
            if (!in && io->label_filename) {
                if (!v->labels && !(v->labels = celer_arena_alloc(&v->arena, sizeof *v->labels * (size_t)n)))
                    return celer_errorf(CELER_ERR_NOMEM, "out of memory");
                char *text = NULL;
                size_t len = 0;
                CELER_TRY(read_model_file(mdir, m->name, io->label_filename, LABEL_FILE_MAX, &v->arena, &text, &len));
                CELER_TRY(split_labels(text, len, &v->arena, &v->labels[i]));
            }
        }
    }
    return CELER_OK;
}

/* Loads one version of model m from <mdir>/<version>/model.onnx (`mdir` the model folder
 * resolved): compile, complete the config against it (the first version completes m->config),
 * build the request spec, make its queue, warm up. */
static celer_status version_load(celer_registry *r, served_model *m, const char *mdir, const celer_repo_version *rv,
                                 bool first, served_version **out) {
    served_version *v = calloc(1, sizeof *v);
    if (!v) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    v->owner = m;
    v->version = rv->version;
    v->mtime_ns = rv->mtime_ns;
    snprintf(v->version_str, sizeof v->version_str, "%lld", (long long)rv->version);
    atomic_init(&v->refs, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    celer_model_options mo = {.threads = r->opts->threads};
    char rel[64], path[PATH_MAX];
    snprintf(rel, sizeof rel, "%lld/model.onnx", (long long)rv->version); /* the folder's name: no leading 0 */
    celer_status st = celer_path_inside(mdir, rel, path, sizeof path);
    if (!st) st = celer_model_load(path, &mo, &v->model);
    if (st) goto fail;
    if (first && (st = celer_config_complete(&m->config, m->name, v->model, r->opts->default_max_batch, &m->arena)))
        goto fail;
    const celer_model_config *cfg = &m->config;
    v->batched = cfg->max_batch_size > 0;
    v->n_inputs = celer_model_input_count(v->model);
    v->n_outputs = celer_model_output_count(v->model);
    v->inputs = calloc((size_t)v->n_inputs + 1, sizeof *v->inputs);
    v->output_names = calloc((size_t)v->n_outputs + 1, sizeof *v->output_names);
    if (!v->inputs || !v->output_names) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_io_desc *d = celer_model_input(v->model, i);
        celer_kserve_tensor_spec *s = &v->inputs[i];
        s->name = d->name;
        s->dtype = d->dtype;
        s->batched = v->batched;
        s->rank = d->has_shape ? d->shape.rank : 0;
        for (int k = 0; k < s->rank; k++) s->dims[k] = d->shape.dims[k];
        /* a declared config shape narrows the model's symbolic dims; with a reshape, requests send
         * the config's dims (the model sees the reshape) */
        for (int c = 0; c < cfg->n_inputs; c++) {
            const celer_config_io *io = &cfg->inputs[c];
            if (strcmp(io->name, d->name)) continue;
            int off = cfg->max_batch_size > 0 ? 1 : 0;
            if (io->has_reshape) {
                s->rank = io->rank + off;
                s->dims[0] = -1;
                memcpy(s->dims + off, io->dims, sizeof *io->dims * (size_t)io->rank);
            } else if (io->rank + off == s->rank) {
                for (int k = 0; k < io->rank; k++)
                    if (s->dims[k + off] < 0) s->dims[k + off] = io->dims[k];
            }
        }
    }
    for (int i = 0; i < v->n_outputs; i++) v->output_names[i] = celer_model_output(v->model, i)->name;
    if ((st = io_extras(m, mdir, v))) goto fail;
    if ((st = warm_up(v))) goto fail;
    cache_settings(v, cfg, rv->bytes);
    v->batched = cfg->max_batch_size > 0;
    v->default_timeout_us = cfg->default_timeout_us;
    v->allow_timeout_override = cfg->allow_timeout_override;
    celer_sched_queue_options qo = {.max_batch_size = cfg->max_batch_size,
                                    .max_queue_delay_us = cfg->max_queue_delay_us,
                                    .max_queue_size = cfg->max_queue_size > 0 ? cfg->max_queue_size
                                                                             : r->opts->max_queue_size};
    if (!cfg->dynamic_batching) qo.max_batch_size = 0;
    qo.n_preferred = CELER_MIN(cfg->n_preferred, 16);
    memcpy(qo.preferred_batch_size, cfg->preferred_batch_size, sizeof(int) * (size_t)qo.n_preferred);
    qo.on_batch = version_batch_done;
    qo.on_batch_user = v;
    if ((st = batch_slots_init(v, qo.max_batch_size))) goto fail;
    if ((st = celer_sched_queue_add(r->sched, v->model, &qo, &v->queue))) goto fail;
    char qname[320];
    snprintf(qname, sizeof qname, "%s version %s", m->name, v->version_str);
    celer_sched_queue_set_name(v->queue, qname);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    version_metrics(r, v, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    *out = v;
    return CELER_OK;
fail:
    celer_error_wrap(st, "version %lld", (long long)rv->version); /* load_model names the model */
    version_free(r, v);
    return st;
}

/* Waits until no request holds v, then frees it (the queue drains first). */
static void version_retire(celer_registry *r, served_version *v) {
    celer_registry_release(v); /* the registry's own reference */
    while (atomic_load(&v->refs) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* the series of a version number stay while a version of that number serves: the one that
     * replaced v (a reload of the same version) or the one v failed to replace */
    const served_model *m = v->owner;
    served_version *same = NULL;
    for (int k = 0; k < m->n_versions; k++)
        if (m->versions[k] != v && m->versions[k]->version == v->version) same = m->versions[k];
    if (same) {
        version_publish(r, same); /* the queue-depth series may still point at v */
    } else {
        char labels[800], name[600];
        celer_metrics_escape(m->name, name, sizeof name);
        snprintf(labels, sizeof labels, "model=\"%s\",version=\"%s\"", name, v->version_str);
        celer_metrics_remove(r->metrics, labels);
    }
    version_free(r, v);
}

void celer_registry_release(served_version *v) {
    if (v) atomic_fetch_sub(&v->refs, 1);
}

/* ---- models ---- */

static served_model *find_model(celer_registry *r, const char *name) {
    for (int i = 0; i < r->n_models; i++)
        if (!strcmp(r->models[i]->name, name)) return r->models[i];
    return NULL;
}

static void set_state(celer_registry *r, served_model *m, model_state s, const char *reason) {
    pthread_rwlock_wrlock(&r->lock);
    m->state = s;
    snprintf(m->reason, sizeof m->reason, "%s", reason ? reason : "");
    pthread_rwlock_unlock(&r->lock);
    state_metrics(r, m);
}

/* A batch of pipeline requests waiting at one batch step (e.g. recommend): runs the step for all
 * of them at once, then hands each back to the pipeline's queue. */
static void pipeline_step_batch(void *user, celer_job *const *jobs, int n) {
    served_version *v = user;
    celer_pipeline_run *runs[CELER_MAX_BATCH_JOBS] = {0};
    for (int i = 0; i < n; i++) runs[i] = jobs[i]->task;
    celer_pipeline_run_batch(runs, n);
    for (int i = 0; i < n; i++) {
        celer_status st = celer_sched_submit(v->queue, jobs[i]);
        if (st) jobs[i]->done(jobs[i], st, celer_error_message(), NULL, 0);
    }
}

/* A batch step waits for requests still before it (bounded by the queue's delay). */
static bool pipeline_step_wait(void *user) { return atomic_load(&((served_version *)user)->before_batch) > 0; }

/* Reads <mdir>/<name> (resolved inside mdir) into `arena`, NUL-terminated, at most `cap` bytes;
 * messages name <model>/<name>. */
static celer_status read_model_file(const char *mdir, const char *model, const char *name, size_t cap,
                                    celer_arena *arena, char **text, size_t *len) {
    char path[PATH_MAX];
    CELER_TRY(celer_path_inside(mdir, name, path, sizeof path));
    FILE *f = fopen(path, "rb");
    if (!f) return celer_errorf(CELER_ERR_IO, "cannot open %s/%s: %s", model, name, strerror(errno));
    struct stat sb;
    celer_status st = CELER_OK;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode))
        st = celer_errorf(CELER_ERR_INVALID, "%s/%s is not a regular file", model, name);
    else if ((uint64_t)sb.st_size > cap)
        st = celer_errorf(CELER_ERR_LIMIT, "%s/%s has %lld bytes, at most %zu", model, name, (long long)sb.st_size,
                          cap);
    else if (!(*text = celer_arena_alloc(arena, (size_t)sb.st_size + 1)))
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory reading %s/%s", model, name);
    else if ((*len = fread(*text, 1, (size_t)sb.st_size, f)) != (size_t)sb.st_size || ferror(f))
        st = celer_errorf(CELER_ERR_IO, "cannot read %s/%s", model, name);
    fclose(f);
    return st;
}

static bool callee_io(void *user, const char *model, const char *version, const char *tensor, bool output,
                      celer_pipeline_type *out);

/* Version 1 of a folder that has no version folders (a pipeline, a remote model): NULL when out of
 * memory, with the message set. */
static served_version *folder_version(served_model *m, const celer_repo_model *rm) {
    served_version *v = calloc(1, sizeof *v);
    if (!v) {
        celer_errorf(CELER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    v->owner = m;
    v->version = 1;
    v->mtime_ns = rm->pipeline_mtime_ns;
    snprintf(v->version_str, sizeof v->version_str, "1");
    atomic_init(&v->refs, 1);
    celer_arena_init(&v->arena, 4096, 0);
    return v;
}

/* A pipeline folder is served as version 1 of an endpoint: its pipeline (files it names must be
 * inside `mdir`, the model folder resolved), the request spec from its declared inputs (rows
 * first), a task queue on the shared workers (and one per batch step), step metrics. Models it
 * calls must be in the repository. */
static celer_status pipeline_load(celer_registry *r, served_model *m, const celer_repo_model *rm, const char *mdir,
                                  served_version **out) {
    served_version *v = folder_version(m, rm);
    if (!v) return celer_error_status();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* read here rather than by celer_pipeline_load: the pipeline names itself by its path relative
     * to the repository (in load errors and in errors of requests) and its files resolve in mdir */
    char shown[300];
    snprintf(shown, sizeof shown, "%s/pipeline.yaml", rm->name);
    celer_arena text_arena;
    celer_arena_init(&text_arena, 0, 0);
    char *text = NULL;
    size_t len = 0;
    celer_status st =
        read_model_file(mdir, rm->name, "pipeline.yaml", CELER_PIPELINE_MAX_FILE, &text_arena, &text, &len);
    if (!st) st = celer_pipeline_parse(text, len, shown, mdir, &v->pipeline);
    celer_arena_free(&text_arena);
    if (st) goto fail;
    const celer_pipeline *p = v->pipeline;
    for (int i = 0; i < celer_pipeline_model_count(p) && !st; i++) {
        const char *called = celer_pipeline_model_name(p, i);
        served_model *cm = NULL;
        for (int k = 0; k < r->n_models && !cm; k++)
            if (!strcmp(r->models[k]->name, called)) cm = r->models[k];
        /* a model that is in the repository but not serving (yet) answers 503 per request */
        if (!cm)
            st = celer_errorf(CELER_ERR_NOT_FOUND, "%s: calls model '%s', which is not in the repository (or, in "
                              "explicit model control, not loaded: load it first)", shown,
                              called);
        else if (cm->n_versions && cm->versions[0]->pipeline)
            st = celer_errorf(CELER_ERR_INVALID, "%s: calls '%s', which is a pipeline (call its models instead)", shown,
                              called);
    }
    if (st) goto fail;
    v->n_inputs = celer_pipeline_input_count(p);
    v->n_outputs = celer_pipeline_output_count(p);
    v->inputs = calloc((size_t)v->n_inputs + 1, sizeof *v->inputs);
    v->output_names = calloc((size_t)v->n_outputs + 1, sizeof *v->output_names);
    v->m_steps = calloc((size_t)celer_pipeline_step_count(p) + 1, sizeof *v->m_steps);
    if (!v->inputs || !v->output_names || !v->m_steps) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_pipeline_io *io = celer_pipeline_input(p, i);
        celer_kserve_tensor_spec *s = &v->inputs[i];
        s->name = io->name;
        s->dtype = io->dtype;
        s->rank = io->rank + 1;
        s->optional = io->has_default;
        s->default_row = io->has_default ? &io->default_row : NULL;
        s->dims[0] = -1;
        for (int k = 0; k < io->rank; k++) s->dims[k + 1] = io->dims[k];
    }
    for (int i = 0; i < v->n_outputs; i++) v->output_names[i] = celer_pipeline_output_name(p, i);
    /* the outputs' types for the metadata and the documents, from the models it calls as they
     * serve now (models load before pipelines) */
    if (!(v->output_types = calloc((size_t)v->n_outputs + 1, sizeof *v->output_types))) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    celer_pipeline_output_types(p, callee_io, r, v->output_types);
    v->cache_ttl_ns = (int64_t)(celer_pipeline_cache_ttl(p) * 1e9);
    int64_t parts[2] = {rm->pipeline_mtime_ns, rm->pipeline_bytes}; /* pipeline.yaml and its files */
    v->cache_salt = XXH3_64bits(parts, sizeof parts);
    celer_sched_queue_options qo = {.max_queue_size = r->opts->max_queue_size};
    if ((st = celer_sched_queue_add(r->sched, NULL, &qo, &v->queue))) goto fail;
    v->step_queues = calloc((size_t)celer_pipeline_step_count(p) + 1, sizeof *v->step_queues);
    if (!v->step_queues) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < celer_pipeline_step_count(p); i++) {
        if (!celer_pipeline_step_batches(p, i)) continue;
        /* the batch is what is queued, plus the requests on their way (at most
         * PIPELINE_BATCH_DELAY_US): a lone request never waits, and under load requests share one
         * pass over the data */
        celer_sched_queue_options bo = {.max_queue_size = r->opts->max_queue_size, .max_batch_size = CELER_MAX_BATCH_JOBS,
                                        .batch_fn = pipeline_step_batch, .batch_user = v,
                                        .batch_wait = pipeline_step_wait, .max_queue_delay_us = PIPELINE_BATCH_DELAY_US};
        if ((st = celer_sched_queue_add(r->sched, NULL, &bo, &v->step_queues[i]))) goto fail;
        v->n_batch_steps++;
        char qname[400];
        snprintf(qname, sizeof qname, "pipeline %s step %s", m->name, celer_pipeline_step_name(p, i));
        celer_sched_queue_set_name(v->step_queues[i], qname);
    }
    char qname[320];
    snprintf(qname, sizeof qname, "pipeline %s", m->name);
    celer_sched_queue_set_name(v->queue, qname);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    version_metrics(r, v, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    char name[600], labels[900];
    celer_metrics_escape(m->name, name, sizeof name);
    for (int i = 0; i < celer_pipeline_step_count(p); i++) {
        snprintf(labels, sizeof labels, "pipeline=\"%s\",step=\"%s\"", name, celer_pipeline_step_name(p, i));
        v->m_steps[i] = celer_metrics_histogram(r->metrics, "celer_pipeline_step_duration_seconds",
                                                "Time per pipeline step (a model step: from its call to its outputs).",
                                                labels, celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    }
    *out = v;
    return CELER_OK;
fail:
    version_free(r, v);
    return st;
}

/* A remote model's folder is served as version 1 of the model upstream (remote.h): its
 * remote.yaml, the upstream's metadata read now (the load fails while it cannot be read; server.c
 * loads it again with backoff, as a poll or a load through the API would), a queue that only admits requests (their jobs go to the remote:
 * service.c), and the config it serves with made from the metadata (`cfg`, in `arena`). */
static celer_status remote_load(celer_registry *r, served_model *m, const celer_repo_model *rm, const char *mdir,
                                celer_arena *arena, celer_model_config *cfg, served_version **out) {
    served_version *v = folder_version(m, rm);
    if (!v) return celer_error_status();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char shown[300], *text = NULL;
    size_t len = 0;
    snprintf(shown, sizeof shown, "%s/remote.yaml", rm->name);
    celer_remote_config rc;
    celer_status st = read_model_file(mdir, rm->name, "remote.yaml", CONFIG_MAX_BYTES, &v->arena, &text, &len);
    if (!st) st = celer_remote_parse(text, len, shown, mdir, m->name, &v->arena, &rc);
    if (!st && !r->remote_hub)
        st = celer_remote_hub_init(r->metrics, (size_t)r->opts->max_body_bytes * 4 + (64u << 20), &r->remote_hub);
    if (!st) st = batch_slots_init(v, CELER_MAX_BATCH_JOBS); /* gathered calls: up to as many rows as jobs */
    if (!st)
        st = celer_remote_open(r->remote_hub, &rc, m->name, version_batch_done, v, &v->arena, &v->remote_desc, &v->remote);
    if (st) goto fail;
    const celer_remote_desc *d = &v->remote_desc;
    v->batched = d->max_batch_size > 0;
    v->n_inputs = d->n_inputs;
    v->n_outputs = d->n_outputs;
    v->inputs = calloc((size_t)v->n_inputs + 1, sizeof *v->inputs);
    v->output_names = calloc((size_t)v->n_outputs + 1, sizeof *v->output_names);
    *cfg = (celer_model_config){.name = celer_arena_strndup(arena, m->name, strlen(m->name)),
                                .platform = celer_arena_strndup(arena, d->platform, strlen(d->platform)),
                                .max_batch_size = d->max_batch_size, .n_inputs = d->n_inputs, .n_outputs = d->n_outputs,
                                .response_cache = rc.cache_ttl_s > 0, .n_parameters = 2};
    cfg->inputs = celer_arena_alloc(arena, sizeof *cfg->inputs * (size_t)(d->n_inputs + 1));
    cfg->outputs = celer_arena_alloc(arena, sizeof *cfg->outputs * (size_t)(d->n_outputs + 1));
    cfg->parameter_keys = celer_arena_alloc(arena, sizeof(char *) * 2);
    cfg->parameter_values = celer_arena_alloc(arena, sizeof(char *) * 2);
    if (!v->inputs || !v->output_names || !cfg->name || !cfg->platform || !cfg->inputs || !cfg->outputs ||
        !cfg->parameter_keys || !cfg->parameter_values) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* the config says where it is served from; the dims after the batch dim, as Triton's do */
    cfg->parameter_keys[0] = "remote_url", cfg->parameter_values[0] = celer_arena_strndup(arena, rc.url, strlen(rc.url));
    cfg->parameter_keys[1] = "remote_model", cfg->parameter_values[1] = celer_arena_strndup(arena, rc.model, strlen(rc.model));
    int off = v->batched ? 1 : 0;
    for (int i = 0; i < d->n_inputs + d->n_outputs; i++) {
        bool in = i < d->n_inputs;
        const int64_t *dims = in ? d->inputs[i].dims : d->outputs[i - d->n_inputs].shape.dims;
        int rank = in ? d->inputs[i].rank : d->outputs[i - d->n_inputs].shape.rank;
        celer_config_io *io = in ? &cfg->inputs[i] : &cfg->outputs[i - d->n_inputs];
        *io = (celer_config_io){.name = in ? d->inputs[i].name : d->outputs[i - d->n_inputs].name,
                                .dtype = in ? d->inputs[i].dtype : d->outputs[i - d->n_inputs].dtype,
                                .rank = rank - off};
        memcpy(io->dims, dims + off, sizeof *dims * (size_t)(rank - off));
    }
    for (int i = 0; i < v->n_inputs; i++) v->inputs[i] = d->inputs[i];
    for (int i = 0; i < v->n_outputs; i++) v->output_names[i] = d->outputs[i].name;
    v->cache_ttl_ns = (int64_t)(rc.cache_ttl_s * 1e9);
    int64_t parts[2] = {rm->pipeline_mtime_ns, rm->pipeline_bytes}; /* remote.yaml and its files */
    v->cache_salt = XXH3_64bits(parts, sizeof parts);
    v->default_timeout_us = rc.timeout_ms * 1000;
    v->allow_timeout_override = true;
    /* the queue admits requests (its places bound those being read and decoded); their jobs go to
     * the remote, which queues them itself (service.c) */
    celer_sched_queue_options qo = {.max_queue_size = r->opts->max_queue_size};
    if ((st = celer_sched_queue_add(r->sched, NULL, &qo, &v->queue))) goto fail;
    char qname[320];
    snprintf(qname, sizeof qname, "remote model %s", m->name);
    celer_sched_queue_set_name(v->queue, qname);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    version_metrics(r, v, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    *out = v;
    return CELER_OK;
fail:
    version_free(r, v);
    return st;
}

/* Copies `msg` to out (`cap` bytes) with the repository's folder taken out of every path in it
 * ("/srv/repo/mlp/1/model.onnx" -> "mlp/1/model.onnx"): the loaders below the registry name the
 * files they open by their full path, and load errors reach clients (the repository index and
 * API) and logs. Both the folder as configured and as resolved are taken out, where a path starts
 * (after a space, quote, parenthesis or colon, or at the start). */
static void repository_relative(const char *repo, const char *msg, char *out, size_t cap) {
    char prefix[2][PATH_MAX + 1];
    size_t plen[2] = {0, 0};
    snprintf(prefix[0], sizeof prefix[0], "%s", repo);
    if (!realpath(repo, prefix[1])) prefix[1][0] = 0;
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(prefix[i]);
        while (n > 1 && prefix[i][n - 1] == '/') prefix[i][--n] = 0;
        if (n == 0 || n + 1 >= sizeof prefix[i] || !strcmp(prefix[i], "/")) continue;
        prefix[i][n] = '/';
        prefix[i][n + 1] = 0;
        plen[i] = n + 1;
    }
    int longest = plen[1] > plen[0]; /* try the longer first: one may extend the other */
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < cap;) {
        bool start = p == msg || strchr(" '\"(:=`", p[-1]);
        size_t skip = 0;
        for (int k = 0; k < 2 && start && !skip; k++) {
            int i = k ? !longest : longest;
            if (plen[i] && !strncmp(p, prefix[i], plen[i])) skip = plen[i];
        }
        if (skip)
            p += skip;
        else
            out[o++] = *p++;
    }
    out[o] = 0;
}

/* Where a load takes a model from, when not from the repository as it is (Triton's load
 * parameters). */
typedef struct load_source {
    const char *root;     /* the folder holding the model's folder: a load's private one */
    const char *config;   /* JSON replacing the folder's config.pbtxt; NULL: the folder's */
    size_t config_len;
    bool quiet_failure;   /* a failed load changes nothing, not even the model's state (its answer says why) */
} load_source;

/* Takes a model that failed its first load out of the registry again (a load with overrides). */
static void forget_model(celer_registry *r, served_model *m) {
    pthread_rwlock_wrlock(&r->lock);
    for (int i = 0; i < r->n_models; i++)
        if (r->models[i] == m) {
            memmove(r->models + i, r->models + i + 1, sizeof *r->models * (size_t)(r->n_models - i - 1));
            r->n_models--;
            break;
        }
    pthread_rwlock_unlock(&r->lock);
    celer_arena_free(&m->arena);
    free(m);
}

/* Loads (or reloads) model `rm` (from `src`: NULL for the repository as it is): new versions are
 * loaded beside the serving ones and swapped in at once; versions no longer selected are retired
 * after the swap. On failure the serving versions stay. Caller holds load_lock. */
static celer_status load_model(celer_registry *r, const celer_repo_model *rm, const load_source *src) {
    const char *root = src && src->root ? src->root : r->opts->model_repository;
    r->docs_dirty = true;
    served_model *m = find_model(r, rm->name);
    bool fresh = !m;
    if (fresh) {
        if (r->n_models == MAX_MODELS) return celer_errorf(CELER_ERR_LIMIT, "more than %d models", MAX_MODELS);
        m = calloc(1, sizeof *m);
        if (!m) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
        snprintf(m->name, sizeof m->name, "%s", rm->name);
        celer_arena_init(&m->arena, 16 * 1024, 0);
        m->state = MODEL_LOADING;
        pthread_rwlock_wrlock(&r->lock);
        r->models[r->n_models++] = m;
        pthread_rwlock_unlock(&r->lock);
    }
    /* a fresh config for this load; swapped in with the versions */
    celer_arena arena;
    celer_arena_init(&arena, 16 * 1024, 0);
    celer_model_config cfg = {0};
    celer_status st = CELER_OK;
    if (rm->problem) st = celer_errorf(CELER_ERR_LIMIT, "%s", rm->problem);
    else if (rm->n_versions > CELER_CONFIG_MAX_VERSIONS) /* the scan keeps to it: the arrays below rely on it */
        st = celer_errorf(CELER_ERR_LIMIT, "more than %d versions", CELER_CONFIG_MAX_VERSIONS);
    /* every file of the model resolves inside its folder, itself inside the repository */
    char mdir[PATH_MAX];
    if (!st && (st = celer_path_inside(root, rm->name, mdir, sizeof mdir)) == CELER_ERR_INVALID)
        celer_errorf(st, "the model folder '%s' resolves outside the repository (through a symlink)", rm->name);
    if (!st) {
        struct stat sb;
        if (stat(mdir, &sb) || !S_ISDIR(sb.st_mode))
            st = celer_errorf(CELER_ERR_NOT_FOUND, "'%s' is not a folder", rm->name);
    }
    if (!st && src && src->config && rm->pipeline_path)
        st = celer_errorf(CELER_ERR_INVALID, "'%s' is a pipeline: its pipeline.yaml is its config, a model config "
                          "cannot replace it", rm->name);
    else if (!st && src && src->config)
        st = celer_config_parse_json(src->config, src->config_len, "Invalid config override", &arena, &cfg);
    else if (!st && rm->config_path) {
        char shown[300], *text = NULL;
        size_t len = 0;
        snprintf(shown, sizeof shown, "%s/config.pbtxt", rm->name);
        st = read_model_file(mdir, rm->name, "config.pbtxt", CONFIG_MAX_BYTES, &arena, &text, &len);
        if (!st) st = celer_config_parse(text, len, shown, &arena, &cfg);
    }
    served_version *loaded[CELER_CONFIG_MAX_VERSIONS];
    int n_loaded = 0;
    int selected[CELER_CONFIG_MAX_VERSIONS];
    int n_sel = 0;
    if (!st && rm->pipeline_path) {
        if (rm->n_versions)
            st = celer_errorf(CELER_ERR_INVALID,
                              "the folder has both pipeline.yaml and version folders: a pipeline calls models that "
                              "live in folders of their own");
        served_version *v = NULL;
        if (!st && !(st = pipeline_load(r, m, rm, mdir, &v))) {
            loaded[n_loaded++] = v;
            cfg.name = celer_arena_strndup(&arena, rm->name, strlen(rm->name));
            cfg.platform = "celer_pipeline";
        }
        n_sel = -1; /* no version folders to load */
    }
    if (!st && rm->remote_path) {
        if (rm->n_versions)
            st = celer_errorf(CELER_ERR_INVALID, "the folder has both remote.yaml and version folders: a remote model "
                              "is served from its upstream alone");
        else if (src && src->config)
            st = celer_errorf(CELER_ERR_INVALID, "'%s' is a remote model: its remote.yaml and its upstream make its "
                              "config, a model config cannot replace it", rm->name);
        served_version *v = NULL;
        if (!st && !(st = remote_load(r, m, rm, mdir, &arena, &cfg, &v))) loaded[n_loaded++] = v;
        n_sel = -1;
    }
    if (!st && n_sel == 0) {
        n_sel = celer_repo_select_versions(&cfg, rm, selected);
        if (n_sel == 0) st = celer_errorf(CELER_ERR_NOT_FOUND, "no version folder with a model.onnx matches the version policy");
    }
    /* the config is completed against the first version loaded; keep it in m only on success */
    served_model staging = *m;
    staging.arena = arena;
    staging.config = cfg;
    for (int i = 0; i < n_sel && !st; i++) { /* n_sel < 0 for pipelines */
        const celer_repo_version *rv = &rm->versions[selected[i]];
        /* an unchanged serving version is kept as is */
        served_version *keep = NULL;
        for (int k = 0; k < m->n_versions; k++)
            if (m->versions[k]->version == rv->version && m->versions[k]->mtime_ns == rv->mtime_ns &&
                m->config_mtime_ns == rm->config_mtime_ns)
                keep = m->versions[k];
        if (keep) {
            loaded[n_loaded++] = keep;
            continue;
        }
        served_version *v = NULL;
        if ((st = version_load(r, &staging, mdir, rv, i == 0, &v))) break;
        v->owner = m;
        loaded[n_loaded++] = v;
    }
    if (!st && n_loaded && staging.config.name == NULL) st = celer_errorf(CELER_ERR_INTERNAL, "config not completed");
    if (st) {
        char reason[1024];
        repository_relative(root, celer_error_message(), reason, sizeof reason);
        for (int i = 0; i < n_loaded; i++) {
            bool serving = false;
            for (int k = 0; k < m->n_versions; k++) serving |= m->versions[k] == loaded[i];
            if (!serving) version_retire(r, loaded[i]);
        }
        celer_arena_free(&staging.arena); /* `arena` and the blocks completion added */
        if (src && src->quiet_failure) {
            celer_errorf(st, "model '%s': %s", m->name, reason);
            if (fresh) forget_model(r, m);
            return st;
        }
        /* a remote model whose upstream could not be reached is loaded again later (server.c) */
        pthread_rwlock_wrlock(&r->lock); /* read by celer_registry_remote_retries */
        m->retry_remote = rm->remote_path && celer_status_retryable(st);
        pthread_rwlock_unlock(&r->lock);
        if (m->n_versions == 0) {
            set_state(r, m, MODEL_UNAVAILABLE, reason);
        } else { /* the versions before it keep serving; the index says what failed until a load works */
            char kept[sizeof m->reason];
            snprintf(kept, sizeof kept, "serving the versions loaded before; the last load failed: %.960s", reason);
            set_state(r, m, m->state, kept);
        }
        celer_errorf(st, "failed to load '%s': %s", m->name, reason); /* Triton's words first */
        return st;
    }
    /* swap */
    served_version *old[CELER_CONFIG_MAX_VERSIONS];
    int n_old = m->n_versions;
    memcpy(old, m->versions, sizeof(served_version *) * (size_t)n_old);
    celer_arena old_arena = m->arena;
    pthread_rwlock_wrlock(&r->lock);
    /* keep versions ascending */
    for (int a = 1; a < n_loaded; a++)
        for (int b = a; b > 0 && loaded[b]->version < loaded[b - 1]->version; b--) {
            served_version *t = loaded[b];
            loaded[b] = loaded[b - 1];
            loaded[b - 1] = t;
        }
    memcpy(m->versions, loaded, sizeof(served_version *) * (size_t)n_loaded);
    m->n_versions = n_loaded;
    m->arena = staging.arena;
    m->config = staging.config;
    m->config_mtime_ns = rm->config_mtime_ns;
    m->state = MODEL_READY;
    m->absent = false;
    m->retry_remote = false;
    m->reason[0] = 0;
    pthread_rwlock_unlock(&r->lock);
    state_metrics(r, m);
    for (int k = 0; k < n_loaded; k++) version_publish(r, loaded[k]);
    for (int i = 0; i < n_old; i++) {
        bool kept = false;
        for (int k = 0; k < n_loaded; k++) kept |= loaded[k] == old[i];
        if (!kept) version_retire(r, old[i]);
    }
    if (!fresh) celer_arena_free(&old_arena);
    return CELER_OK;
}

static void unload_model(celer_registry *r, served_model *m) {
    r->docs_dirty = true;
    m->loaded_with = LOADED_AS_IS;
    served_version *old[CELER_CONFIG_MAX_VERSIONS];
    pthread_rwlock_wrlock(&r->lock);
    int n_old = m->n_versions;
    memcpy(old, m->versions, sizeof(served_version *) * (size_t)n_old);
    m->n_versions = 0;
    m->state = MODEL_UNLOADING;
    pthread_rwlock_unlock(&r->lock);
    for (int i = 0; i < n_old; i++) version_retire(r, old[i]);
    set_state(r, m, MODEL_UNAVAILABLE, "unloaded");
}

/* ---- OpenAPI documents ---- */

typedef struct api_doc {
    char key[300]; /* "" the server's, "<model>", "<model>/<version>" */
    char *text;
    size_t len;
} api_doc;

static void free_docs(api_doc *d, int n) {
    for (int i = 0; i < n; i++) free(d[i].text);
    free(d);
}

/* The per-row type of a pipeline's callee tensor (celer_pipeline_output_types): the serving
 * version of `model` as its metadata gives it. Under load_lock. */
static bool callee_io(void *user, const char *model, const char *version, const char *tensor, bool output,
                      celer_pipeline_type *out) {
    celer_registry *r = user;
    served_model *m = find_model(r, model);
    if (!m || !m->n_versions || m->versions[0]->pipeline) return false;
    const served_version *v = m->versions[m->n_versions - 1];
    for (int k = 0; version && *version && k < m->n_versions; k++)
        if (!strcmp(m->versions[k]->version_str, version)) v = m->versions[k];
    for (int i = 0; i < (output ? v->n_outputs : v->n_inputs); i++) {
        if (output) {
            const celer_io_desc *d = celer_version_output(v, i);
            if (strcmp(d->name, tensor)) continue;
            const celer_reshape *rs = v->reshape_out && v->reshape_out[i].on ? &v->reshape_out[i] : NULL;
            out->dtype = d->dtype;
            out->rank = rs ? rs->full_rank : d->has_shape ? d->shape.rank : -1;
            memcpy(out->dims, rs ? rs->full : d->shape.dims, sizeof out->dims);
        } else {
            if (strcmp(v->inputs[i].name, tensor)) continue;
            out->dtype = v->inputs[i].dtype;
            out->rank = v->inputs[i].rank;
            memcpy(out->dims, v->inputs[i].dims, sizeof out->dims);
        }
        return true;
    }
    return false;
}

/* What the generator needs of version v, in arena a (NULL when it runs out). */
static bool describe_version(const served_version *v, celer_arena *a, celer_openapi_version *out) {
    out->version = v->version_str;
    out->n_inputs = v->n_inputs, out->n_outputs = v->n_outputs;
    celer_openapi_tensor *in = celer_arena_alloc(a, sizeof *in * (size_t)(v->n_inputs + v->n_outputs + 1));
    if (!in) return false;
    celer_openapi_tensor *outs = in + v->n_inputs;
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_kserve_tensor_spec *s = &v->inputs[i];
        in[i] = (celer_openapi_tensor){s->name, s->dtype, s->rank, s->dims, s->default_row,
                                       v->pipeline && celer_pipeline_input_is_image(v->pipeline, i)};
    }
    for (int i = 0; i < v->n_outputs; i++) {
        if (v->pipeline) {
            const celer_pipeline_type *t = &v->output_types[i];
            int64_t *dims = celer_arena_alloc(a, sizeof *dims * (CELER_MAX_RANK + 1));
            if (!dims) return false;
            dims[0] = -1; /* the rows */
            if (t->rank >= 0) memcpy(dims + 1, t->dims, sizeof *dims * (size_t)CELER_MIN(t->rank, CELER_MAX_RANK - 1));
            outs[i] = (celer_openapi_tensor){v->output_names[i], t->dtype, t->rank < 0 ? -1 : t->rank + 1, dims, NULL, false};
        } else {
            const celer_io_desc *d = celer_version_output(v, i);
            const celer_reshape *rs = v->reshape_out && v->reshape_out[i].on ? &v->reshape_out[i] : NULL;
            outs[i] = rs ? (celer_openapi_tensor){d->name, d->dtype, rs->full_rank, rs->full, NULL, false}
                         : (celer_openapi_tensor){d->name, d->dtype, d->has_shape ? d->shape.rank : -1, d->shape.dims,
                                                  NULL, false};
        }
    }
    out->inputs = in, out->outputs = outs;
    return true;
}

/* Rebuilds every document when a load or unload ran since the last time; the caller holds
 * load_lock (nothing that is described can change meanwhile). A failure keeps the old ones. */
static void docs_rebuild(celer_registry *r) {
    if (!r->docs_dirty) return;
    celer_arena a;
    celer_arena_init(&a, 64 * 1024, 0);
    celer_openapi_model *models = celer_arena_alloc(&a, sizeof *models * (size_t)(r->n_models + 1));
    int n = 0, n_docs = 1;
    bool ok = models != NULL;
    for (int i = 0; ok && i < r->n_models; i++) {
        const served_model *m = r->models[i];
        if (!m->n_versions) continue;
        celer_openapi_version *vs = celer_arena_alloc(&a, sizeof *vs * (size_t)m->n_versions);
        ok = vs != NULL;
        for (int k = 0; ok && k < m->n_versions; k++) ok = describe_version(m->versions[k], &a, &vs[k]);
        const celer_pipeline *p = m->versions[0]->pipeline;
        models[n++] = (celer_openapi_model){m->name, p != NULL, p ? celer_pipeline_description(p) : "",
                                            m->config.max_batch_size, m->n_versions, vs};
        n_docs += 1 + m->n_versions;
    }
    api_doc *docs = ok ? calloc((size_t)n_docs, sizeof *docs) : NULL;
    celer_openapi_opts o = {.docs = r->opts->docs};
    celer_status st = docs ? CELER_OK : CELER_ERR_NOMEM;
    int d = 0;
    /* the server's (i = -1), then each model's (k = -1) and each of its versions' */
    for (int i = -1; !st && i < n; i++)
        for (int k = -1; !st && k < (i < 0 ? 0 : models[i].n_versions); k++) {
            if (i >= 0 && k < 0) snprintf(docs[d].key, sizeof docs[d].key, "%s", models[i].name);
            else if (i >= 0) snprintf(docs[d].key, sizeof docs[d].key, "%s/%s", models[i].name, models[i].versions[k].version);
            celer_jbuf b;
            celer_jbuf_init(&b, 0);
            celer_openapi_write(models, n, i, k, &o, &b);
            docs[d].text = b.data, docs[d].len = b.len;
            d++;
            st = b.status;
        }
    celer_arena_free(&a);
    if (st) {
        celer_log(CELER_LOG_WARNING, "the OpenAPI documents were not rebuilt: %s", celer_status_name(st));
        free_docs(docs, d);
        docs = NULL;
    }
    if (!docs) return; /* tried again at the next change */
    pthread_mutex_lock(&r->docs_lock);
    api_doc *old = r->docs;
    int n_old = r->n_docs;
    r->docs = docs, r->n_docs = n_docs;
    pthread_mutex_unlock(&r->docs_lock);
    free_docs(old, n_old);
    r->docs_dirty = false;
}

celer_status celer_registry_openapi(celer_registry *r, const char *model, const char *version, celer_jbuf *out) {
    char k[300];
    if (!model) snprintf(k, sizeof k, "%s", "");
    else if (!version) snprintf(k, sizeof k, "%s", model);
    else snprintf(k, sizeof k, "%s/%s", model, version);
    celer_status st = CELER_ERR_NOT_FOUND;
    pthread_mutex_lock(&r->docs_lock);
    for (int i = 0; i < r->n_docs && st; i++)
        if (!strcmp(r->docs[i].key, k)) {
            celer_jbuf_raw(out, r->docs[i].text, r->docs[i].len);
            st = out->status;
        }
    pthread_mutex_unlock(&r->docs_lock);
    if (st == CELER_ERR_NOT_FOUND) {
        if (!model) return celer_errorf(st, "no OpenAPI document yet");
        return version ? celer_errorf(st, "model '%s' has no version '%s' serving", model, version)
                       : celer_errorf(st, "model '%s' is not serving", model);
    }
    return st ? celer_errorf(st, "out of memory for the OpenAPI document") : CELER_OK;
}

/* Scans the repository and loads what changed; `wait_stable`: only what two scans in a row saw. */
static void scan_and_load(celer_registry *r, bool wait_stable) {
    pthread_mutex_lock(&r->load_lock);
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    celer_repo_model *models;
    int n;
    if (celer_repo_scan(r->opts->model_repository, &arena, &models, &n)) {
        celer_log(CELER_LOG_ERROR, "repository: %s", celer_error_message());
    } else {
        /* models first, then pipelines, which check the models they call */
        for (int pass = 0, i = 0; pass < 2; i = 0, pass++)
        for (; i < n; i++) {
            if ((models[i].pipeline_path != NULL) != (pass == 1)) continue;
            served_model *m = find_model(r, models[i].name);
            if (m && m->state == MODEL_UNAVAILABLE && !strcmp(m->reason, "unloaded")) continue; /* explicit unload */
            if (m && m->loaded_with == LOADED_FROM_FILES && m->n_versions) continue; /* until loaded again or unloaded */
            uint64_t fp = fingerprint(&models[i]);
            if (m && m->tried_fp == fp) continue; /* nothing changed since the last attempt */
            if (wait_stable && !stable_since_last_scan(r, models[i].name, fp)) continue;
            celer_status st = load_model(r, &models[i], NULL);
            /* a failure that may pass (memory ran short) is tried again at the next scan */
            if ((m = find_model(r, models[i].name))) m->tried_fp = celer_status_retryable(st) ? 0 : fp;
            if (m && !st) m->loaded_with = LOADED_AS_IS; /* a config given by a load is gone now */
            if (st) celer_log(CELER_LOG_ERROR, "%s", celer_error_message());
        }
        /* models whose folder disappeared */
        for (int i = 0; i < r->n_models; i++) {
            bool present = false;
            for (int k = 0; k < n && !present; k++) present = !strcmp(models[k].name, r->models[i]->name);
            if (!present && r->models[i]->n_versions && r->models[i]->loaded_with != LOADED_FROM_FILES)
                unload_model(r, r->models[i]);
        }
    }
    celer_arena_free(&arena);
    docs_rebuild(r);
    pthread_mutex_unlock(&r->load_lock);
}

void celer_registry_load_all(celer_registry *r) { scan_and_load(r, false); }

/* A model asked for that is not in the repository: an UNAVAILABLE entry saying so (the index
 * shows it, and with strict readiness the server is not ready), unless it is known already. */
static void record_missing(celer_registry *r, const char *name) {
    if (find_model(r, name) || r->n_models == MAX_MODELS) return;
    served_model *m = calloc(1, sizeof *m);
    if (!m) return;
    snprintf(m->name, sizeof m->name, "%s", name);
    celer_arena_init(&m->arena, 1024, 0);
    m->state = MODEL_UNAVAILABLE;
    m->absent = true;
    snprintf(m->reason, sizeof m->reason, "model '%.255s' is not in the repository", name);
    pthread_rwlock_wrlock(&r->lock);
    r->models[r->n_models++] = m;
    pthread_rwlock_unlock(&r->lock);
    state_metrics(r, m);
}

void celer_registry_load_some(celer_registry *r, const char *const *names, int n_names) {
    pthread_mutex_lock(&r->load_lock);
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    celer_repo_model *models;
    int n;
    if (celer_repo_scan(r->opts->model_repository, &arena, &models, &n)) {
        celer_log(CELER_LOG_ERROR, "repository: %s", celer_error_message());
        n = 0;
    }
    for (int k = 0; k < n_names; k++) {
        bool found = false;
        for (int i = 0; i < n && !found; i++) found = !strcmp(models[i].name, names[k]);
        if (!found) {
            celer_log(CELER_LOG_ERROR, "--load-model '%s': not in the repository", names[k]);
            record_missing(r, names[k]);
        }
    }
    /* models first, then pipelines, which check the models they call */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if ((models[i].pipeline_path != NULL) != (pass == 1)) continue;
            bool wanted = false;
            for (int k = 0; k < n_names && !wanted; k++) wanted = !strcmp(models[i].name, names[k]);
            if (!wanted) continue;
            celer_status st = load_model(r, &models[i], NULL);
            served_model *m = find_model(r, models[i].name);
            if (m) m->tried_fp = celer_status_retryable(st) ? 0 : fingerprint(&models[i]);
            if (st) celer_log(CELER_LOG_ERROR, "%s", celer_error_message());
        }
    celer_arena_free(&arena);
    docs_rebuild(r);
    pthread_mutex_unlock(&r->load_lock);
}

void celer_registry_poll(celer_registry *r) { scan_and_load(r, true); }

/* Makes the next load of m reload every version (nothing kept as it was). */
static void reload_all(served_model *m) {
    m->config_mtime_ns = -1;
    for (int k = 0; k < m->n_versions; k++) m->versions[k]->mtime_ns = -1;
}

/* A load from the files of a load with overrides, in a private folder removed once it is done. */
static celer_status load_from_files(celer_registry *r, const char *name, const celer_load_overrides *ov) {
    char root[PATH_MAX];
    celer_status st = celer_override_write(name, ov, root, sizeof root);
    celer_arena arena;
    celer_arena_init(&arena, 16 * 1024, 0);
    celer_repo_model *models = NULL;
    int n = 0;
    if (!st && (st = celer_repo_scan(root, &arena, &models, &n)) == CELER_OK && n != 1)
        st = celer_errorf(CELER_ERR_INTERNAL, "the load's folder holds %d models", n);
    if (!st && models[0].pipeline_path)
        st = celer_errorf(CELER_ERR_INVALID, "file parameter 'file:pipeline.yaml': a pipeline loads from its folder of "
                          "the repository, not from load files");
    if (!st && !models[0].n_versions)
        st = celer_errorf(CELER_ERR_INVALID, "the load's files hold no <version>/model.onnx (e.g. 'file:1/model.onnx')");
    if (!st) {
        pthread_mutex_lock(&r->load_lock);
        served_model *m = find_model(r, name);
        if (m) reload_all(m);
        load_source src = {.root = root, .config = ov->config, .config_len = ov->config_len, .quiet_failure = true};
        st = load_model(r, &models[0], &src);
        if (!st && (m = find_model(r, name))) {
            m->loaded_with = LOADED_FROM_FILES;
            m->config_mtime_ns = -1; /* nothing of it is the repository's: a later load takes all of it again */
        }
        docs_rebuild(r);
        pthread_mutex_unlock(&r->load_lock);
    }
    celer_arena_free(&arena);
    celer_override_remove(root); /* everything was read at load: the model holds its bytes */
    return st;
}

celer_status celer_registry_load(celer_registry *r, const char *name) { return celer_registry_load_with(r, name, NULL); }

celer_status celer_registry_load_with(celer_registry *r, const char *name, const celer_load_overrides *ov) {
    if (ov && ov->n_files) return load_from_files(r, name, ov);
    if (r->refresh) CELER_TRY(r->refresh(r->refresh_user));
    pthread_mutex_lock(&r->load_lock);
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 0);
    celer_repo_model *models;
    int n;
    celer_status st = celer_repo_scan(r->opts->model_repository, &arena, &models, &n);
    if (!st) {
        st = celer_errorf(CELER_ERR_NOT_FOUND,
                          "failed to load '%s', failed to poll from model repository: no folder '%s' in it", name,
                          name);
        for (int i = 0; i < n; i++) {
            if (strcmp(models[i].name, name)) continue;
            served_model *m = find_model(r, name);
            uint64_t fp = fingerprint(&models[i]);
            /* as Triton: a config given before stays while the folder is as it was then */
            if (!ov && m && m->loaded_with == LOADED_WITH_CONFIG && m->override_fp == fp && m->n_versions) {
                st = CELER_OK;
                break;
            }
            if (m) reload_all(m);
            load_source src = {.config = ov ? ov->config : NULL, .config_len = ov ? ov->config_len : 0,
                               .quiet_failure = ov != NULL};
            st = load_model(r, &models[i], &src);
            if ((m = find_model(r, name))) {
                m->tried_fp = fp;
                if (!st) {
                    m->loaded_with = ov ? LOADED_WITH_CONFIG : LOADED_AS_IS;
                    m->override_fp = fp;
                    if (ov) m->config_mtime_ns = -1; /* a later load from the folder keeps no version of this */
                }
            }
        }
    } else { /* the message names the repository's path: for the log only */
        celer_log(CELER_LOG_ERROR, "repository: %s", celer_error_message());
        celer_errorf(st, "the model repository cannot be scanned (the server log says why)");
    }
    celer_arena_free(&arena);
    docs_rebuild(r);
    pthread_mutex_unlock(&r->load_lock);
    return st;
}

celer_status celer_registry_unload(celer_registry *r, const char *name) {
    pthread_mutex_lock(&r->load_lock);
    served_model *m = find_model(r, name);
    celer_status st = CELER_OK;
    if (!m)
        st = celer_errorf(CELER_ERR_NOT_FOUND, "Request for unknown model: '%s' is not found", name);
    else
        unload_model(r, m);
    docs_rebuild(r);
    pthread_mutex_unlock(&r->load_lock);
    return st;
}

/* ---- the action pool ---- */

static void *action_worker(void *arg) {
    celer_registry *r = arg;
    pthread_mutex_lock(&r->act_lock);
    for (;;) {
        while (!r->act_len && !r->act_stop) pthread_cond_wait(&r->act_cond, &r->act_lock);
        if (!r->act_len) break; /* stopped: what was queued was cancelled by the stopper */
        repo_action a = r->actions[r->act_head];
        r->act_head = (r->act_head + 1) % ACTION_QUEUE_CAP;
        r->act_len--;
        pthread_mutex_unlock(&r->act_lock);
        celer_status st = a.unload ? celer_registry_unload(r, a.name) : celer_registry_load_with(r, a.name, a.ov);
        a.done(a.user, st, st ? celer_error_message() : "");
        pthread_mutex_lock(&r->act_lock);
    }
    pthread_mutex_unlock(&r->act_lock);
    return NULL;
}

celer_status celer_registry_submit_action(celer_registry *r, const char *name, bool unload,
                                          const celer_load_overrides *ov,
                                          void (*done)(void *user, celer_status st, const char *message), void *user) {
    if (strlen(name) >= sizeof r->actions[0].name)
        return celer_errorf(CELER_ERR_LIMIT, "model name of %zu bytes, at most %zu", strlen(name),
                            sizeof r->actions[0].name - 1);
    pthread_mutex_lock(&r->act_lock);
    celer_status st = CELER_OK;
    if (r->act_stop)
        st = celer_errorf(CELER_ERR_UNAVAILABLE, "the server is shutting down");
    else if (r->act_len == ACTION_QUEUE_CAP)
        st = celer_errorf(CELER_ERR_UNAVAILABLE, "%d repository actions are already waiting: retry later",
                          ACTION_QUEUE_CAP);
    if (!st) {
        repo_action *a = &r->actions[(r->act_head + r->act_len) % ACTION_QUEUE_CAP];
        snprintf(a->name, sizeof a->name, "%s", name);
        a->unload = unload;
        a->ov = ov;
        a->done = done;
        a->user = user;
        r->act_len++;
        pthread_cond_signal(&r->act_cond);
    }
    pthread_mutex_unlock(&r->act_lock);
    return st;
}

void celer_registry_stop_actions(celer_registry *r) {
    repo_action cancelled[ACTION_QUEUE_CAP];
    int n = 0;
    pthread_mutex_lock(&r->act_lock);
    bool join = !r->act_joined;
    r->act_stop = r->act_joined = true;
    for (; r->act_len; r->act_len--, r->act_head = (r->act_head + 1) % ACTION_QUEUE_CAP)
        cancelled[n++] = r->actions[r->act_head];
    pthread_cond_broadcast(&r->act_cond);
    pthread_mutex_unlock(&r->act_lock);
    for (int i = 0; i < n; i++) {
        celer_errorf(CELER_ERR_UNAVAILABLE, "the server is shutting down: the %s of '%s' did not run",
                     cancelled[i].unload ? "unload" : "load", cancelled[i].name);
        cancelled[i].done(cancelled[i].user, CELER_ERR_UNAVAILABLE, celer_error_message());
    }
    for (int i = 0; join && i < r->act_threads; i++) pthread_join(r->act_thread[i], NULL);
}

void celer_registry_free(celer_registry *r) {
    if (!r) return;
    celer_registry_stop_actions(r);
    for (int i = 0; i < r->n_models; i++) {
        served_model *m = r->models[i];
        int n = m->n_versions;
        m->n_versions = 0; /* taken out first: version_retire looks at the serving ones */
        for (int k = 0; k < n; k++) version_retire(r, m->versions[k]);
        celer_arena_free(&m->arena);
        free(m);
    }
    celer_remote_hub_free(r->remote_hub);
    free_docs(r->docs, r->n_docs);
    pthread_rwlock_destroy(&r->lock);
    pthread_mutex_destroy(&r->load_lock);
    pthread_mutex_destroy(&r->act_lock);
    pthread_mutex_destroy(&r->docs_lock);
    pthread_cond_destroy(&r->act_cond);
    free(r);
}

/* ---- lookups ---- */

served_version *celer_registry_acquire(celer_registry *r, const char *name, const char *version, celer_status *status,
                                       char *msg, size_t msg_cap) {
    served_version *found = NULL;
    pthread_rwlock_rdlock(&r->lock);
    served_model *m = find_model(r, name);
    /* Triton's words first: its clients match "Request for unknown model" */
    if (!m) {
        *status = CELER_ERR_NOT_FOUND;
        snprintf(msg, msg_cap, "Request for unknown model: '%s' is not found", name);
    } else if (m->state != MODEL_READY || !m->n_versions) {
        *status = m->state == MODEL_UNAVAILABLE && (m->absent || !strcmp(m->reason, "unloaded")) ? CELER_ERR_NOT_FOUND
                                                                                                  : CELER_ERR_UNAVAILABLE;
        snprintf(msg, msg_cap, "Request for unknown model: '%s' has no available versions: it is %s%s%s", name,
                 celer_model_state_names[m->state], m->reason[0] ? ": " : "", m->reason);
    } else if (!version || !version[0]) {
        found = m->versions[m->n_versions - 1];
    } else {
        for (int k = 0; k < m->n_versions && !found; k++)
            if (!strcmp(m->versions[k]->version_str, version)) found = m->versions[k];
        if (!found) {
            *status = CELER_ERR_NOT_FOUND;
            snprintf(msg, msg_cap, "Request for unknown model: '%s' version %s is not found: no such version is loaded",
                     name, version);
        }
    }
    if (found) atomic_fetch_add(&found->refs, 1);
    pthread_rwlock_unlock(&r->lock);
    return found;
}

void celer_registry_set_refresh(celer_registry *r, celer_status (*fn)(void *user), void *user) {
    r->refresh = fn, r->refresh_user = user;
}

void celer_registry_set_source_error(celer_registry *r, const char *source, const char *reason, bool unready) {
    pthread_rwlock_wrlock(&r->lock);
    r->source_unready = reason && unready;
    snprintf(r->source, sizeof r->source, "%s", source);
    snprintf(r->source_error, sizeof r->source_error, "%s", reason ? reason : "");
    pthread_rwlock_unlock(&r->lock);
}

void celer_registry_set_draining(celer_registry *r) { atomic_store(&r->draining, true); }
bool celer_registry_draining(celer_registry *r) { return atomic_load(&r->draining); }

int celer_registry_remote_retries(celer_registry *r, char (*names)[256], int cap) {
    int n = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n_models && n < cap; i++) {
        const served_model *m = r->models[i];
        if (m->retry_remote && !m->n_versions && m->state == MODEL_UNAVAILABLE) snprintf(names[n++], 256, "%s", m->name);
    }
    pthread_rwlock_unlock(&r->lock);
    return n;
}

bool celer_registry_ready(celer_registry *r) {
    if (atomic_load(&r->draining)) return false;
    bool ready = true;
    pthread_rwlock_rdlock(&r->lock);
    if (r->source_unready) ready = false;
    for (int i = 0; i < r->n_models && r->opts->strict_readiness; i++)
        if (r->models[i]->state != MODEL_READY && strcmp(r->models[i]->reason, "unloaded")) ready = false;
    pthread_rwlock_unlock(&r->lock);
    return ready;
}

/* ---- JSON views ---- */

void celer_registry_index(celer_registry *r, bool ready_only, void (*each)(void *user, const celer_index_entry *e),
                          void *user) {
    /* in Triton's modes the index lists what the repository holds too, loaded or not (what an
     * explicit load can take) */
    celer_arena arena;
    celer_arena_init(&arena, 16 * 1024, 0);
    celer_repo_model *repo = NULL;
    int n_repo = 0;
    if (r->opts->model_control_mode[0] && !ready_only &&
        celer_repo_scan(r->opts->model_repository, &arena, &repo, &n_repo))
        n_repo = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n_models; i++) {
        served_model *m = r->models[i];
        if (ready_only && m->state != MODEL_READY) continue;
        int count = m->n_versions ? m->n_versions : 1;
        for (int k = 0; k < count; k++) {
            celer_index_entry e = {m->name, m->n_versions ? m->versions[k]->version_str : NULL,
                                   celer_model_state_names[m->state], m->reason};
            each(user, &e);
        }
    }
    for (int i = 0; i < n_repo; i++)
        if (!find_model(r, repo[i].name)) {
            celer_index_entry e = {repo[i].name, NULL, NULL, NULL}; /* name only, as Triton lists it */
            each(user, &e);
        }
    if (!ready_only && r->source_error[0]) {
        celer_index_entry e = {r->source, NULL, celer_model_state_names[MODEL_UNAVAILABLE], r->source_error};
        each(user, &e);
    }
    pthread_rwlock_unlock(&r->lock);
    celer_arena_free(&arena);
}

typedef struct json_list {
    celer_jbuf *out;
    int n;
} json_list;

static void index_entry_json(void *user, const celer_index_entry *e) {
    json_list *l = user;
    celer_jbuf *out = l->out;
    if (l->n++) celer_jbuf_raw(out, ",", 1);
    celer_jbuf_raw(out, "{\"name\":", 8);
    celer_jbuf_str(out, e->name);
    if (e->version) {
        celer_jbuf_raw(out, ",\"version\":", 11);
        celer_jbuf_str(out, e->version);
    }
    if (!e->state) { /* in the repository, never loaded */
        celer_jbuf_raw(out, "}", 1);
        return;
    }
    celer_jbuf_raw(out, ",\"state\":", 9);
    celer_jbuf_str(out, e->state);
    celer_jbuf_raw(out, ",\"reason\":", 10);
    celer_jbuf_str(out, e->reason);
    celer_jbuf_raw(out, "}", 1);
}

void celer_registry_index_json(celer_registry *r, bool ready_only, celer_jbuf *out) {
    json_list l = {out, 0};
    celer_jbuf_raw(out, "[", 1);
    celer_registry_index(r, ready_only, index_entry_json, &l);
    celer_jbuf_raw(out, "]", 1);
}

const celer_io_desc *celer_version_output(const served_version *v, int i) {
    if (v->remote) return &v->remote_desc.outputs[i];
    return v->model ? celer_model_output(v->model, i) : NULL;
}

void celer_registry_metadata(const served_version *v, celer_model_meta *out) {
    const served_model *m = v->owner;
    out->name = m->name;
    out->platform = v->pipeline ? "celer_pipeline" : v->remote ? v->remote_desc.platform : "onnxruntime_onnx";
    out->n_versions = m->n_versions;
    for (int k = 0; k < m->n_versions; k++) out->versions[k] = m->versions[k]->version_str;
    out->n_inputs = v->n_inputs;
    for (int i = 0; i < v->n_inputs; i++)
        out->inputs[i] = (celer_tensor_meta){v->inputs[i].name, v->inputs[i].dtype, v->inputs[i].rank, v->inputs[i].dims, true};
    out->n_outputs = v->n_outputs;
    for (int i = 0; i < v->n_outputs; i++) {
        if (v->pipeline) { /* per row, worked out at load: the rows come first */
            const celer_pipeline_type *t = &v->output_types[i];
            bool known = t->dtype != CELER_UNDEFINED && t->rank >= 0 && t->rank < CELER_MAX_RANK;
            int64_t *d = out->row_dims[i];
            d[0] = -1;
            if (known) memcpy(d + 1, t->dims, sizeof *d * (size_t)t->rank);
            out->outputs[i] = (celer_tensor_meta){v->output_names[i], t->dtype, known ? t->rank + 1 : 0, d, known};
            continue;
        }
        const celer_io_desc *d = celer_version_output(v, i);
        const celer_reshape *rs = v->reshape_out && v->reshape_out[i].on ? &v->reshape_out[i] : NULL;
        out->outputs[i] = rs ? (celer_tensor_meta){d->name, d->dtype, rs->full_rank, rs->full, true}
                             : (celer_tensor_meta){d->name, d->dtype, d->has_shape ? d->shape.rank : 0, d->shape.dims, true};
    }
}

static void tensor_meta_json(celer_jbuf *out, const celer_tensor_meta *t) {
    celer_jbuf_raw(out, "{\"name\":", 8);
    celer_jbuf_str(out, t->name);
    if (t->typed) {
        celer_jbuf_raw(out, ",\"datatype\":", 12);
        const char *dt = celer_dtype_kserve_name(t->dtype);
        celer_jbuf_str(out, dt ? dt : "UNKNOWN");
        celer_jbuf_raw(out, ",\"shape\":[", 10);
        for (int k = 0; k < t->rank; k++) {
            if (k) celer_jbuf_raw(out, ",", 1);
            celer_jbuf_int(out, t->dims[k]);
        }
        celer_jbuf_raw(out, "]", 1);
    }
    celer_jbuf_raw(out, "}", 1);
}

void celer_registry_config_json(celer_registry *r, const served_version *v, celer_jbuf *out) {
    pthread_rwlock_rdlock(&r->lock);
    celer_config_to_json(&v->owner->config, out);
    pthread_rwlock_unlock(&r->lock);
}

void celer_registry_config_pb(celer_registry *r, const served_version *v, celer_jbuf *out) {
    pthread_rwlock_rdlock(&r->lock);
    celer_config_to_pb(&v->owner->config, out);
    pthread_rwlock_unlock(&r->lock);
}

void celer_registry_metadata_json(const served_version *v, celer_jbuf *out) {
    celer_model_meta *m = celer_malloc(sizeof *m); /* tens of KiB: not on a connection thread's stack */
    if (!m) {
        out->status = CELER_ERR_NOMEM;
        return;
    }
    celer_registry_metadata(v, m);
    celer_jbuf_raw(out, "{\"name\":", 8);
    celer_jbuf_str(out, m->name);
    celer_jbuf_raw(out, ",\"versions\":[", 13);
    for (int k = 0; k < m->n_versions; k++) {
        if (k) celer_jbuf_raw(out, ",", 1);
        celer_jbuf_str(out, m->versions[k]);
    }
    celer_jbuf_raw(out, "],\"platform\":", 13);
    celer_jbuf_str(out, m->platform);
    for (int io = 0; io < 2; io++) {
        celer_jbuf_raw(out, io ? "],\"outputs\":[" : ",\"inputs\":[", io ? 13 : 11);
        int n = io ? m->n_outputs : m->n_inputs;
        for (int i = 0; i < n; i++) {
            if (i) celer_jbuf_raw(out, ",", 1);
            tensor_meta_json(out, io ? &m->outputs[i] : &m->inputs[i]);
        }
    }
    celer_jbuf_raw(out, "]}", 2);
    free(m);
}

static int cmp_batch(const void *a, const void *b) {
    const celer_batch_stats *x = a, *y = b;
    return x->batch_size < y->batch_size ? -1 : x->batch_size > y->batch_size;
}

/* Reads v's counters into st (batches into `batches`, room for v's slots). */
static void version_stats(const served_model *m, served_version *v, celer_batch_stats *batches,
                          celer_version_stats *st) {
    celer_version_counters *c = &v->stats;
#define LOAD(f) atomic_load_explicit(&c->f, memory_order_relaxed)
    unsigned long long ok = LOAD(n_success), computed = LOAD(n_compute);
    *st = (celer_version_stats){
        .name = m->name, .version = v->version_str, .last_inference = LOAD(last_inference_ms),
        .inference_count = LOAD(n_inferences), .execution_count = LOAD(n_exec),
        .success = {ok, LOAD(ns_success)}, .fail = {LOAD(n_failure), LOAD(ns_failure)}, .queue = {ok, LOAD(ns_queue)},
        .compute_input = {computed, LOAD(ns_input)}, .compute_infer = {computed, LOAD(ns_infer)},
        .compute_output = {computed, LOAD(ns_output)}, .cache_hit = {LOAD(n_cache_hit), LOAD(ns_cache_hit)},
        .cache_miss = {LOAD(n_cache_miss), LOAD(ns_cache_miss)}, .batches = batches};
#undef LOAD
    for (int i = 0; i < c->n_batch_slots; i++) {
        const celer_batch_slot *b = &c->batches[i];
        long long rows = atomic_load_explicit(&b->rows, memory_order_acquire);
        unsigned long long n = atomic_load_explicit(&b->count, memory_order_relaxed);
        if (!rows || !n) continue; /* claimed, not counted yet */
        batches[st->n_batches++] = (celer_batch_stats){
            (unsigned long long)rows, {n, atomic_load_explicit(&b->ns_input, memory_order_relaxed)},
            {n, atomic_load_explicit(&b->ns_infer, memory_order_relaxed)},
            {n, atomic_load_explicit(&b->ns_output, memory_order_relaxed)}};
    }
    qsort(batches, (size_t)st->n_batches, sizeof *batches, cmp_batch);
}

celer_status celer_registry_stats(celer_registry *r, const char *name, const char *version,
                                  void (*each)(void *user, const celer_version_stats *st), void *user) {
    pthread_rwlock_rdlock(&r->lock);
    bool model_found = !name, version_found = !version;
    int most_slots = 0;
    for (int i = 0; i < r->n_models; i++) {
        served_model *m = r->models[i];
        if (name && strcmp(name, m->name)) continue;
        model_found = true;
        for (int k = 0; k < m->n_versions; k++) {
            version_found |= !version || !strcmp(m->versions[k]->version_str, version);
            most_slots = CELER_MAX(most_slots, m->versions[k]->stats.n_batch_slots);
        }
    }
    if (!model_found || !version_found) {
        pthread_rwlock_unlock(&r->lock);
        if (!model_found)
            return celer_errorf(CELER_ERR_NOT_FOUND, "requested model '%s' is not available (unknown model '%s')",
                                name, name);
        return celer_errorf(CELER_ERR_NOT_FOUND,
                            "requested model version is not available for model '%s': no version '%s' loaded", name,
                            version);
    }
    celer_batch_stats *batches = calloc((size_t)most_slots + 1, sizeof *batches);
    if (!batches) {
        pthread_rwlock_unlock(&r->lock);
        return celer_errorf(CELER_ERR_NOMEM, "out of memory for the statistics");
    }
    for (int i = 0; i < r->n_models; i++) {
        served_model *m = r->models[i];
        if (name && strcmp(name, m->name)) continue;
        for (int k = 0; k < m->n_versions; k++) {
            served_version *v = m->versions[k];
            if (version && strcmp(v->version_str, version)) continue;
            celer_version_stats st;
            version_stats(m, v, batches, &st);
            each(user, &st);
        }
    }
    pthread_rwlock_unlock(&r->lock);
    free(batches);
    return CELER_OK;
}

/* "name":{"count":N,"ns":N} */
static void duration_json(celer_jbuf *out, const char *name, celer_stat_duration d, bool comma) {
    char buf[160];
    int n = snprintf(buf, sizeof buf, "%s\"%s\":{\"count\":%llu,\"ns\":%llu}", comma ? "," : "", name, d.count, d.ns);
    celer_jbuf_raw(out, buf, (size_t)n);
}

/* One entry of Triton's model_stats: its fields in Triton's order. */
static void version_stats_json(void *user, const celer_version_stats *st) {
    json_list *l = user;
    celer_jbuf *out = l->out;
    if (l->n++) celer_jbuf_raw(out, ",", 1);
    char buf[200];
    celer_jbuf_raw(out, "{\"name\":", 8);
    celer_jbuf_str(out, st->name);
    celer_jbuf_raw(out, ",\"version\":", 11);
    celer_jbuf_str(out, st->version);
    int n = snprintf(buf, sizeof buf, ",\"last_inference\":%llu,\"inference_count\":%llu,\"execution_count\":%llu,"
                     "\"inference_stats\":{", st->last_inference, st->inference_count, st->execution_count);
    celer_jbuf_raw(out, buf, (size_t)n);
    duration_json(out, "success", st->success, false);
    duration_json(out, "fail", st->fail, true);
    duration_json(out, "queue", st->queue, true);
    duration_json(out, "compute_input", st->compute_input, true);
    duration_json(out, "compute_infer", st->compute_infer, true);
    duration_json(out, "compute_output", st->compute_output, true);
    duration_json(out, "cache_hit", st->cache_hit, true);
    duration_json(out, "cache_miss", st->cache_miss, true);
    celer_jbuf_raw(out, "},\"response_stats\":{},\"batch_stats\":[", 37);
    for (int i = 0; i < st->n_batches; i++) {
        const celer_batch_stats *b = &st->batches[i];
        n = snprintf(buf, sizeof buf, "%s{\"batch_size\":%llu", i ? "," : "", b->batch_size);
        celer_jbuf_raw(out, buf, (size_t)n);
        duration_json(out, "compute_input", b->compute_input, true);
        duration_json(out, "compute_infer", b->compute_infer, true);
        duration_json(out, "compute_output", b->compute_output, true);
        celer_jbuf_raw(out, "}", 1);
    }
    celer_jbuf_raw(out, "],\"memory_usage\":[]}", 20);
}

celer_status celer_registry_stats_json(celer_registry *r, const char *name, const char *version, celer_jbuf *out) {
    json_list l = {out, 0};
    size_t start = out->len;
    celer_jbuf_raw(out, "{\"model_stats\":[", 16);
    celer_status st = celer_registry_stats(r, name, version, version_stats_json, &l);
    if (st) {
        out->len = start; /* nothing written */
        return st;
    }
    celer_jbuf_raw(out, "]}", 2);
    return CELER_OK;
}
