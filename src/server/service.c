/* The request service: one request path for every transport (see service.h for the life of a
 * call). Transports decode and encode; everything a request goes through between is here.
 *
 * Threads: begin, find_response, reject, start and end run on the transport's IO thread; done
 * callbacks run there (answered at once) or on a scheduler worker. A model request is one job on
 * its version's queue; a pipeline request is a job on the pipeline's task queue whose model calls
 * are jobs on those models' queues (see "pipelines" below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service.h"
#include "shm.h"
#include "trace.h"

#define PACK_MAX ((size_t)64 << 20) /* larger results are not cached */

const char *const celer_service_cache_names[4] = {NULL, "bypass", "hit", "miss"};
const char *const celer_server_extensions[] = {"classification", "model_repository", "statistics",
                                               "binary_tensor_data", "model_configuration", "system_shared_memory",
                                               "trace", NULL};

struct celer_service {
    const celer_server_options *opts;
    celer_registry *registry;
    celer_metrics *metrics;
    celer_cache *cache;
    celer_redis *redis; /* NULL: no shared tier */
    celer_shm *shm;     /* system shared memory regions (owned) */
    celer_series *m_cache_hits, *m_cache_misses, *m_cache_lookup;
    celer_series *m_redis_hits, *m_redis_misses, *m_redis_lookup;
};

struct celer_service_call {
    celer_service *svc;
    served_version *version;
    celer_arena arena;
    int64_t start_ns;
    celer_service_protocol protocol; /* the series its outcomes count in, its pipeline's model calls' too */
    bool admitted; /* holds a place in its version's queue (celer_sched_queue_admit) */
    const celer_kserve_request *req;
    celer_service_request r; /* the transport's fields (id, deadline, salt) */
    const celer_service_callbacks *cb;
    void *user;
    bool suspended; /* cb->suspend was called: done comes on another thread, then cb->resume */
    atomic_bool cancelled; /* celer_service_cancel: its queued jobs are dropped */
    /* the model's inputs in its order, and its job */
    celer_tensor *inputs;
    celer_job job;
    /* pipeline in flight: the run, and the model call it waits for */
    celer_pipeline_run *run;
    bool before_batch; /* counted in version->before_batch */
    served_version *call_version;
    celer_tensor *call_inputs;
    celer_job call_job;
    int64_t call_start_ns; /* when the model call was submitted, for its duration */
    /* result cache */
    celer_service_cache cache;
    int64_t cache_ns;  /* lookups (and, for a leader, the insertion): Triton's cache_hit / cache_miss time */
    int64_t insert_ns; /* of which the insertion, done after the run: not the outputs' time */
    bool cache_leader; /* computes for the calls coalesced on cache_key */
    celer_cache_key cache_key;
    celer_cache_waiter waiter;
    /* the outputs being answered: whose memory they are in (celer_service_keep_outputs) */
    enum { OUTPUTS_OWN, OUTPUTS_JOB, OUTPUTS_BORROWED } outputs_from;
    const celer_job *outputs_job; /* OUTPUTS_JOB: the model job whose run made them */
    celer_sched_hold *hold;  /* kept until the call ends */
    /* response cache */
    bool raw_keyed; /* raw_key is set: a successful answer may be kept under it */
    celer_cache_key raw_key;
    int64_t raw_expires_ns; /* when the result it comes from expires */
    /* system shared memory: the request with its inputs read from their regions (req points here
     * then), and the outputs to write into regions, each holding its region until the call ends */
    celer_kserve_request shm_req;
    struct shm_output *shm_outs; /* in the arena */
    int n_shm_outs;
    /* tracing (trace.h), only for a traced request (else NULL, and nothing is done for it): its
     * SERVER span, and the span of the pipeline's model call in flight (both in the arena) */
    celer_span *span;
    celer_span *call_span;
    bool span_computing; /* a pipeline's first run began: "queued" and "compute start" are recorded */
};

/* An output requested in a region: its index among the version's outputs, the request, and the
 * place its bytes go (a reference on the region is held). */
typedef struct shm_output {
    int output;
    const celer_kserve_output_request *o;
    celer_shm_region *region;
    char *addr;
} shm_output;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- statistics and metrics ----
 * Every request is measured once and counted once, by account(): Triton's statistics of its
 * version (which the statistics endpoints and the nv_* counters read), celer's series and Triton's
 * summaries all take the same durations. */

/* What one request (or a pipeline's call of a model) came to. */
typedef struct outcome {
    celer_status status;      /* CELER_OK, or the failure */
    celer_fail_reason reason; /* of a failure */
    int64_t request_ns;       /* from its arrival (a call: its submit) to its answer encoded */
    bool observe_request;     /* into celer's request histogram (not a pipeline's call: its pipeline's is) */
    celer_service_protocol protocol;
    const celer_job *job;     /* the run that computed it, or NULL (a cache hit, a failure before one) */
    int64_t output_ns;        /* with a job: from the run's end to its outputs encoded or handed on */
    celer_service_cache cache;
    int64_t cache_ns;         /* HIT: lookup and copy out; MISS: lookup and insertion */
} outcome;

/* A failure's reason from its status, else `dflt` (BACKEND for what a run reported, OTHER for a
 * request refused before one). */
static celer_fail_reason fail_reason(celer_status st, celer_fail_reason dflt) {
    if (st == CELER_ERR_CANCELLED) return CELER_FAIL_CANCELED;
    if (st == CELER_ERR_UNAVAILABLE || st == CELER_ERR_TIMEOUT) return CELER_FAIL_REJECTED;
    return dflt;
}

/* A duration as Triton's summaries take it: whole microseconds. */
static double whole_us(int64_t ns) { return (double)(ns / 1000); }

/* Rows a job computed: its batch dim for a model that batches, else 1 (Triton's inference_count). */
static int64_t job_rows(const served_version *v, const celer_job *job) {
    if (!v->batched || v->n_inputs < 1 || job->inputs[0].shape.rank < 1) return 1;
    return CELER_MAX(job->inputs[0].shape.dims[0], 0);
}

#define ADD(field, x) atomic_fetch_add_explicit(&c->field, (unsigned long long)(x), memory_order_relaxed)

/* Counts an outcome of version v in its statistics and metrics: the one place that does. */
static void account(served_version *v, const outcome *o) {
    celer_version_counters *c = &v->stats;
    int64_t request_ns = CELER_MAX(o->request_ns, 0);
    if (o->status) {
        ADD(n_failure, 1);
        ADD(ns_failure, request_ns);
        ADD(n_fail_reason[o->reason], 1);
        celer_metrics_add(v->m_failure[o->protocol], 1);
        return;
    }
    ADD(n_success, 1);
    ADD(ns_success, request_ns);
    celer_metrics_add(v->m_success[o->protocol], 1);
    if (o->observe_request) {
        celer_metrics_observe(v->m_duration[o->protocol], (double)request_ns * 1e-9);
        celer_metrics_observe(v->m_summary[CELER_SUMMARY_REQUEST], whole_us(request_ns));
    }
    if (o->cache == CELER_SERVICE_CACHE_HIT || o->cache == CELER_SERVICE_CACHE_MISS) {
        bool hit = o->cache == CELER_SERVICE_CACHE_HIT;
        ADD(n_cache_hit, hit);
        ADD(ns_cache_hit, hit ? o->cache_ns : 0);
        ADD(n_cache_miss, !hit);
        ADD(ns_cache_miss, hit ? 0 : o->cache_ns);
        celer_metrics_observe(v->m_summary[hit ? CELER_SUMMARY_CACHE_HIT : CELER_SUMMARY_CACHE_MISS],
                              whole_us(o->cache_ns));
    }
    const celer_job *job = o->job;
    if (!job) return;
    int64_t queue = job->start_ns - job->enqueue_ns, input = job->input_end_ns - job->start_ns,
            infer = job->end_ns - job->input_end_ns, output = CELER_MAX(o->output_ns, 0);
    ADD(ns_queue, queue);
    ADD(n_compute, 1);
    ADD(ns_input, input);
    ADD(ns_infer, infer);
    ADD(ns_output, output);
    ADD(n_inferences, job_rows(v, job));
    if (job->batch_first) { /* the execution, counted with its first request: before that one's answer goes */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ADD(n_exec, 1);
        atomic_store_explicit(&c->last_inference_ms,
                              (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
                              memory_order_relaxed);
    }
    celer_metrics_observe(v->m_queue, (double)queue * 1e-9);
    celer_metrics_observe(v->m_compute, (double)infer * 1e-9);
    if (job->batch_first) celer_metrics_observe(v->m_batch, job->batch_size);
    celer_metrics_observe(v->m_summary[CELER_SUMMARY_QUEUE], whole_us(queue));
    celer_metrics_observe(v->m_summary[CELER_SUMMARY_INPUT], whole_us(input));
    celer_metrics_observe(v->m_summary[CELER_SUMMARY_INFER], whole_us(infer));
    celer_metrics_observe(v->m_summary[CELER_SUMMARY_OUTPUT], whole_us(output));
}

#undef ADD

/* A request of v refused before it was started (a full queue, a body that did not decode). */
static void account_refused(served_version *v, celer_service_protocol p, int64_t start_ns, celer_fail_reason reason) {
    outcome o = {.status = CELER_ERR_INVALID, .reason = reason, .request_ns = now_ns() - start_ns, .protocol = p};
    account(v, &o);
}

/* Cache metrics read from the cache's own counters at render time. */
static double cache_stat(celer_cache *c, size_t offset) {
    celer_cache_stats st;
    celer_cache_get_stats(c, &st);
    return (double)*(const uint64_t *)((const char *)&st + offset);
}
static double cache_evictions(void *c) { return cache_stat(c, offsetof(celer_cache_stats, evictions)); }
static double cache_expirations(void *c) { return cache_stat(c, offsetof(celer_cache_stats, expirations)); }
static double cache_coalesced(void *c) { return cache_stat(c, offsetof(celer_cache_stats, coalesced)); }
static double cache_bytes(void *c) { return cache_stat(c, offsetof(celer_cache_stats, bytes)); }
static double cache_entries(void *c) { return cache_stat(c, offsetof(celer_cache_stats, entries)); }

static double redis_errors(void *r) {
    celer_redis_stats st;
    celer_redis_get_stats(r, &st);
    return (double)st.errors;
}
static double redis_up(void *r) {
    celer_redis_stats st;
    celer_redis_get_stats(r, &st);
    return st.up;
}

static void cache_metrics(celer_service *s) {
    celer_metrics *m = s->metrics;
    const char *tier = "tier=\"memory\"";
    s->m_cache_hits = celer_metrics_counter(m, "celer_cache_hits_total", "Results answered from the cache.", tier);
    s->m_cache_misses = celer_metrics_counter(m, "celer_cache_misses_total", "Cache lookups that found nothing.", tier);
    s->m_cache_lookup = celer_metrics_histogram(m, "celer_cache_lookup_duration_seconds",
                                                "Time to look a result up (and unpack it on a hit).", tier,
                                                celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    celer_metrics_counter_fn(m, "celer_cache_evictions_total", "Entries evicted to stay under the byte bound.", tier,
                             cache_evictions, s->cache);
    celer_metrics_counter_fn(m, "celer_cache_expirations_total", "Entries dropped past their TTL.", tier,
                             cache_expirations, s->cache);
    celer_metrics_counter_fn(m, "celer_cache_coalesced_total",
                             "Requests answered by an identical request computing at the same time.", "",
                             cache_coalesced, s->cache);
    celer_metrics_gauge_fn(m, "celer_cache_bytes", "Bytes held (values and entry overhead).", tier, cache_bytes,
                           s->cache);
    celer_metrics_gauge_fn(m, "celer_cache_entries", "Entries held.", tier, cache_entries, s->cache);
    if (!s->redis) return;
    tier = "tier=\"redis\"";
    s->m_redis_hits = celer_metrics_counter(m, "celer_cache_hits_total", "Results answered from the cache.", tier);
    s->m_redis_misses = celer_metrics_counter(m, "celer_cache_misses_total", "Cache lookups that found nothing.", tier);
    s->m_redis_lookup = celer_metrics_histogram(m, "celer_cache_lookup_duration_seconds",
                                                "Time to look a result up (and unpack it on a hit).", tier,
                                                celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    celer_metrics_counter_fn(m, "celer_cache_errors_total",
                             "Cache commands that failed or timed out (the request went on without the tier).", tier,
                             redis_errors, s->redis);
    celer_metrics_gauge_fn(m, "celer_cache_up", "1 while the tier answers.", tier, redis_up, s->redis);
}

celer_status celer_service_init(const celer_server_options *opts, celer_registry *registry, celer_metrics *metrics,
                                celer_cache *cache, celer_redis *redis, celer_service **out) {
    celer_service *s = celer_calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    *s = (celer_service){.opts = opts, .registry = registry, .metrics = metrics, .cache = cache, .redis = redis};
    celer_status st = celer_shm_init(opts->allow_shared_memory, &s->shm);
    if (st) {
        free(s);
        return st;
    }
    cache_metrics(s);
    celer_shm_metrics(s->shm, metrics);
    *out = s;
    return CELER_OK;
}

void celer_service_free(celer_service *s) {
    if (!s) return;
    celer_shm_free(s->shm);
    free(s);
}

celer_registry *celer_service_registry(celer_service *s) { return s->registry; }
celer_shm *celer_service_shm(celer_service *s) { return s->shm; }

/* ---- a call ---- */

celer_service_call *celer_service_begin(celer_service *s, celer_service_protocol protocol, const char *model,
                                        const char *version, int64_t start_ns, celer_status *status, char *msg,
                                        size_t msg_cap) {
    *status = CELER_OK;
    served_version *v = celer_registry_acquire(s->registry, model, version, status, msg, msg_cap);
    if (!v) return NULL;
    if (v->remote && !celer_remote_admit(v->remote, msg, msg_cap)) { /* its upstream is down: at once */
        *status = CELER_ERR_UNAVAILABLE;
        account_refused(v, protocol, start_ns, CELER_FAIL_REJECTED);
        celer_registry_release(v);
        return NULL;
    }
    if (!celer_sched_queue_admit(v->queue)) {
        snprintf(msg, msg_cap, "queue of model '%s' is full", model);
        *status = CELER_ERR_UNAVAILABLE;
        account_refused(v, protocol, start_ns, CELER_FAIL_REJECTED);
        celer_registry_release(v);
        return NULL;
    }
    celer_service_call *c = celer_calloc(1, sizeof *c);
    if (!c) {
        snprintf(msg, msg_cap, "out of memory");
        *status = CELER_ERR_NOMEM;
        celer_sched_queue_unadmit(v->queue);
        celer_registry_release(v);
        return NULL;
    }
    c->svc = s;
    c->version = v;
    c->start_ns = start_ns;
    c->protocol = protocol;
    c->admitted = true;
    celer_arena_init(&c->arena, 64 * 1024, (size_t)s->opts->max_body_bytes * 4 + (64u << 20));
    return c;
}

const served_version *celer_service_version(const celer_service_call *c) { return c->version; }
celer_arena *celer_service_arena(celer_service_call *c) { return &c->arena; }

/* Gives back c's place in its queue, taken at begin. */
static void unadmit(celer_service_call *c) {
    if (!c->admitted) return;
    c->admitted = false;
    celer_sched_queue_unadmit(c->version->queue);
}

void celer_service_end(celer_service_call *c) {
    if (!c) return;
    if (c->span) { /* the transport has sent the answer */
        int64_t now = now_ns();
        celer_span_event_at(c->span, "response sent", now, NULL, 0);
        celer_span_end(c->span, now);
    }
    for (int i = 0; i < c->n_shm_outs; i++) celer_shm_release(c->shm_outs[i].region);
    unadmit(c);
    celer_sched_release(c->hold);
    celer_pipeline_run_end(c->run); /* images a failed or cancelled run still holds, and their budget */
    celer_arena_free(&c->arena);
    celer_registry_release(c->version);
    free(c);
}

static void trace_answer(celer_service_call *c, celer_status st, const char *message);

void celer_service_reject(celer_service_call *c) {
    account_refused(c->version, c->protocol, c->start_ns, CELER_FAIL_OTHER);
    if (c->span) trace_answer(c, CELER_ERR_INVALID, "the request was refused before it ran (it did not decode)");
}

celer_status celer_service_keep_outputs(celer_service_call *c) {
    if (c->outputs_from == OUTPUTS_OWN || c->hold) return CELER_OK;
    if (c->outputs_from == OUTPUTS_BORROWED)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "the outputs are another request's (coalesced on it)");
    return celer_sched_keep_outputs(c->outputs_job, &c->hold);
}

/* ---- the response cache in front of the result cache ----
 * The same request bytes (body and the headers that decide its reading) to the same endpoint get
 * the same response bytes: the response is kept under a key over the raw request, so a repeat is
 * answered by hashing its body, without parsing it. The result cache behind it (keys over decoded
 * tensors) still serves the same tensors sent in another form. An entry lives no longer than the
 * result it was encoded from. */

bool celer_service_find_response(celer_service_call *c, const char *const *parts, int n_parts, const void *body,
                                 size_t len, celer_jbuf *out) {
    const served_version *v = c->version;
    if (v->cache_ttl_ns <= 0) return false;
    /* a tensor in shared memory is not in these bytes (an input), or must be written there (an
     * output): such requests are never answered from kept bytes (a false match only costs a hit) */
    if (body && memmem(body, len, "shared_memory_region", 20)) return false;
    int64_t t0 = now_ns();
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_str(&k, "raw response");
    celer_cache_key_str(&k, v->owner->name);
    celer_cache_key_str(&k, v->version_str);
    celer_cache_key_u64(&k, v->cache_salt);
    for (int i = 0; i < n_parts; i++) celer_cache_key_str(&k, parts[i] ? parts[i] : "(none)");
    celer_cache_key_bytes(&k, body ? body : "", len);
    c->raw_key = celer_cache_key_end(&k);
    c->raw_keyed = true;
    c->raw_expires_ns = t0 + v->cache_ttl_ns;
    /* an arena of its own, sized for one response: a hit takes no request arena (64 KiB blocks) */
    celer_arena kept;
    celer_arena_init(&kept, 4096, 0);
    void *value;
    size_t vlen;
    size_t before = out->len;
    bool hit = celer_cache_get(c->svc->cache, c->raw_key, now_ns(), &kept, &value, &vlen);
    if (hit) celer_jbuf_raw(out, value, vlen);
    celer_arena_free(&kept);
    int64_t t1 = now_ns();
    c->cache_ns += t1 - t0;
    if (!hit || out->status) {
        out->len = before;
        return false;
    }
    celer_metrics_observe(c->svc->m_cache_lookup, (double)(t1 - t0) * 1e-9);
    celer_metrics_add(c->svc->m_cache_hits, 1);
    c->raw_keyed = false;
    c->cache = CELER_SERVICE_CACHE_HIT;
    if (c->span) trace_answer(c, CELER_OK, "");
    outcome o = {.request_ns = t1 - c->start_ns, .observe_request = true, .protocol = c->protocol,
                 .cache = CELER_SERVICE_CACHE_HIT, .cache_ns = c->cache_ns};
    account(c->version, &o);
    return true;
}

void celer_service_keep_response(celer_service_call *c, const void *bytes, size_t len) {
    if (!c->raw_keyed) return;
    celer_cache_put(c->svc->cache, c->raw_key, bytes, len, c->raw_expires_ns);
}

/* ---- answering ---- */

/* The request no longer counts as on its way to the pipeline's batch step. */
static void left_before_batch(celer_service_call *c) {
    if (!c->before_batch) return;
    c->before_batch = false;
    atomic_fetch_sub(&c->version->before_batch, 1);
}

/* The outputs asked for classification replaced by their top K strings (Triton's extension), in
 * c's arena; *outs is `outputs` itself when none is. After the result cache: entries hold the
 * tensors. */
static celer_status classify_outputs(celer_service_call *c, const celer_tensor *outputs, int n_outputs,
                                     const celer_tensor **outs) {
    const served_version *v = c->version;
    const celer_kserve_request *req = c->req;
    *outs = outputs;
    celer_tensor *copy = NULL;
    for (int k = 0; req && k < req->n_outputs; k++) {
        if (!req->outputs[k].classification) continue;
        int i = 0;
        while (i < n_outputs && i < v->n_outputs && strcmp(v->output_names[i], req->outputs[k].name)) i++;
        if (i == n_outputs || i == v->n_outputs) continue; /* refused before it ran */
        if (!copy) {
            copy = celer_arena_alloc(&c->arena, sizeof *copy * (size_t)n_outputs);
            if (!copy) return celer_error_wrap(celer_error_status(), "classification");
            memcpy(copy, outputs, sizeof *copy * (size_t)n_outputs);
        }
        const celer_labels *lb = v->labels ? &v->labels[i] : NULL;
        /* a pipeline's outputs have rows first, like a batching model's */
        CELER_TRY(celer_kserve_classify(&outputs[i], v->batched || v->pipeline, req->outputs[k].classification,
                                        lb ? lb->items : NULL, lb ? lb->n : 0, v->output_names[i], &c->arena, &copy[i]));
    }
    if (copy) *outs = copy;
    return CELER_OK;
}
static celer_status shm_write_outputs(celer_service_call *c, const celer_tensor *outputs, int n_outputs);

/* ---- tracing (trace.h): spans of traced requests only ---- */

void celer_service_trace(celer_service_call *c, const char *traceparent, size_t tp_len, const char *tracestate,
                         size_t ts_len, const char *name) {
    if (!celer_trace_active()) return;
    celer_trace_ctx parent;
    celer_trace_parse_parent(traceparent, traceparent ? tp_len : 0, &parent);
    celer_trace_parse_state(&parent, tracestate, ts_len);
    const served_version *v = c->version;
    if (!celer_trace_sample(v->owner->name, &parent)) return;
    celer_span *s = celer_arena_alloc_uninit(&c->arena, sizeof *s); /* celer_span_begin sets what is read */
    if (!s) return; /* untraced rather than refused */
    celer_span_begin(s, name, CELER_SPAN_SERVER, NULL, &parent, c->start_ns);
    celer_span_attr_str(s, "celer.model", v->owner->name);
    celer_span_attr_str(s, "celer.model_version", v->version_str);
    celer_span_attr_str(s, "celer.protocol", c->protocol == CELER_PROTOCOL_GRPC ? "grpc" : "http");
    c->span = s;
}

bool celer_service_traceparent(const celer_service_call *c, char *out, const char **tracestate) {
    if (!c || !c->span) return false;
    celer_span_traceparent(c->span, out);
    *tracestate = c->span->state_len ? c->span->state : NULL;
    return true;
}

bool celer_service_trace_id(const celer_service_call *c, char out[33]) {
    if (!c || !c->span) return false;
    celer_trace_hex(c->span->trace_id, 16, out);
    return true;
}

/* The answer's outcome on c's span. */
static void trace_answer(celer_service_call *c, celer_status st, const char *message) {
    celer_span *s = c->span;
    if (c->protocol == CELER_PROTOCOL_GRPC) celer_span_attr_int(s, "rpc.grpc.status_code", celer_status_grpc(st));
    else celer_span_attr_int(s, "http.response.status_code", st ? celer_status_http(st) : 200);
    if (c->cache != CELER_SERVICE_CACHE_NONE) celer_span_attr_str(s, "celer.cache", celer_service_cache_names[c->cache]);
    if (st) celer_span_fail(s, message && *message ? message : celer_status_name(st));
}

/* A model run's times as events of span s. */
static void trace_job(celer_span *s, const celer_job *job) {
    celer_span_event_at(s, "queued", job->enqueue_ns, NULL, 0);
    celer_span_event_at(s, "batch formed", job->start_ns, "celer.batch_size", job->batch_size);
    celer_span_event_at(s, "compute start", job->input_end_ns, NULL, 0);
    celer_span_event_at(s, "compute end", job->end_ns, NULL, 0);
}

/* A pipeline step ran (the run's hook): a child span of the request's. */
static void trace_step(void *user, int step, int64_t start_ns, int64_t end_ns) {
    celer_service_call *c = user;
    celer_span s;
    const char *name = celer_pipeline_step_name(c->version->pipeline, step);
    celer_span_begin(&s, NULL, CELER_SPAN_INTERNAL, c->span, NULL, start_ns);
    celer_span_name(&s, "step ", name);
    celer_span_attr_str(&s, "celer.step", name);
    celer_span_attr_int(&s, "celer.step_index", step);
    celer_span_end(&s, end_ns);
}

/* Hands c's result to its transport to encode, counts it (a success only when it also encoded:
 * `job` the run that computed it, `reason` what a failure of it counts as unless its status says),
 * then lets the transport send it when it waits on another thread: c may be gone after that. An
 * output requested in a region is written there first (a failure to write it is the answer). */
static void answer(celer_service_call *c, celer_status st, const char *message, const celer_tensor *outputs,
                   int n_outputs, const celer_job *job, celer_fail_reason reason) {
    char msg[1024];
    if (!st && (st = classify_outputs(c, outputs, n_outputs, &outputs))) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        message = msg;
    }
    if (!st && c->n_shm_outs && (st = shm_write_outputs(c, outputs, n_outputs))) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        message = msg;
    }
    celer_service_result r = {.status = st, .message = st ? (message ? message : "") : "", .outputs = outputs,
                              .n_outputs = st ? 0 : n_outputs, .version = c->version, .cache = c->cache};
    celer_status es = c->cb->done(c->user, &r);
    int64_t now = now_ns();
    if (c->span) trace_answer(c, st ? st : es, st ? r.message : "");
    outcome o = {.status = st ? st : es, .reason = st ? fail_reason(st, reason) : CELER_FAIL_OTHER,
                 .request_ns = now - c->start_ns, .observe_request = true, .protocol = c->protocol,
                 .job = c->cache == CELER_SERVICE_CACHE_HIT ? NULL : job, .cache = c->cache,
                 .cache_ns = c->cache_ns};
    if (o.job) o.output_ns = now - job->end_ns - c->insert_ns;
    account(c->version, &o);
    if (c->suspended) c->cb->resume(c->user);
}

/* "celer:" and the key in hex: 38 characters (and a NUL). */
static void redis_key(celer_cache_key k, char out[40]) {
    snprintf(out, 40, "celer:%016llx%016llx", (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* The leader of a cache key is done: stores a success, then answers every call coalesced on the
 * key with the same result. */
static void lead_done(celer_service_call *c, const celer_job *job, celer_status st, const char *message,
                      const celer_tensor *outputs, int n_outputs) {
    c->cache_leader = false;
    celer_service *s = c->svc;
    int64_t t0 = now_ns();
    if (!st) {
        void *packed;
        size_t len;
        if (!celer_cache_pack(outputs, n_outputs, PACK_MAX, &packed, &len)) {
            celer_cache_put(s->cache, c->cache_key, packed, len, now_ns() + c->version->cache_ttl_ns);
            if (s->redis) { /* a slow or dead Redis costs at most its timeout, once per backoff */
                char rk[40];
                redis_key(c->cache_key, rk);
                celer_redis_set(s->redis, rk, 38, packed, len, c->version->cache_ttl_ns / 1000000);
            }
            free(packed);
        }
    }
    c->insert_ns = now_ns() - t0;
    c->cache_ns += c->insert_ns;
    celer_cache_waiter *w = celer_cache_finish(s->cache, c->cache_key);
    while (w) {
        celer_service_call *wc = w->user;
        w = w->next; /* the waiter's call is gone once answered */
        wc->cache = st ? CELER_SERVICE_CACHE_MISS : CELER_SERVICE_CACHE_HIT;
        /* a model run's memory can be held for them too; a pipeline's is in the leader's arena */
        wc->outputs_from = c->outputs_from == OUTPUTS_JOB ? OUTPUTS_JOB : OUTPUTS_BORROWED;
        wc->outputs_job = job;
        answer(wc, st, message, outputs, n_outputs, NULL, CELER_FAIL_BACKEND);
    }
}

/* c is done (its job completed, or it failed before or while queued: `reason`, unless its status
 * says). */
static void finish(celer_service_call *c, const celer_job *job, celer_status st, const char *message,
                   const celer_tensor *outputs, int n_outputs, celer_fail_reason reason) {
    served_version *v = c->version;
    left_before_batch(c);
    if (c->span && job && !v->pipeline && job->start_ns) trace_job(c->span, job);
    else if (c->span && v->pipeline && c->span_computing) celer_span_event_at(c->span, "compute end", now_ns(), NULL, 0);
    bool leader = c->cache_leader;
    if (!st && job) {
        if (v->pipeline) {
            const int64_t *ns = celer_pipeline_run_step_ns(c->run);
            for (int i = 0; i < celer_pipeline_step_count(v->pipeline); i++)
                if (ns[i] > 0) celer_metrics_observe(v->m_steps[i], (double)ns[i] * 1e-9);
        }
    }
    /* a model's outputs are in its worker's run; a pipeline's in the call's own run */
    c->outputs_from = v->pipeline || !job ? OUTPUTS_OWN : OUTPUTS_JOB;
    c->outputs_job = job;
    if (leader) lead_done(c, job, st, message, outputs, n_outputs); /* c's outputs stay valid until its answer */
    answer(c, st, message, outputs, n_outputs, job, reason);     /* c may be gone from here on */
}

/* ---- config reshape ----
 * The client sends and receives the config's dims, the model sees its reshape: the tensor's data
 * stays, its shape is relabelled on the way in (requests, a pipeline's calls) and out. */

/* Shape `in` of tensor `name` from one side's dims to the other's (to_model: client to model);
 * the batch dim, when v batches, stays. CELER_ERR_SHAPE when `in` does not fit the side it comes
 * from (a model output the reshape does not describe). */
static celer_status reshape_shape(const served_version *v, const celer_reshape *r, bool to_model, const char *name,
                                  const celer_shape *in, celer_shape *out) {
    const int64_t *from = to_model ? r->client : r->model, *to = to_model ? r->model : r->client;
    int from_rank = to_model ? r->client_rank : r->model_rank, to_rank = to_model ? r->model_rank : r->client_rank;
    int off = v->batched ? 1 : 0, nv = 0, k = 0;
    int64_t var[CELER_MAX_RANK];
    bool ok = in->rank == from_rank + off && to_rank + off <= CELER_MAX_RANK;
    for (int d = 0; ok && d < from_rank; d++) {
        if (from[d] < 0) var[nv++] = in->dims[d + off];
        else ok = in->dims[d + off] == from[d];
    }
    if (ok) {
        out->rank = to_rank + off;
        if (off) out->dims[0] = in->dims[0];
        for (int d = 0; d < to_rank; d++) out->dims[d + off] = to[d] >= 0 ? to[d] : k < nv ? var[k++] : -1;
        ok = k == nv && celer_shape_numel(out) == celer_shape_numel(in);
    }
    if (ok) return CELER_OK;
    char a[200], b[200];
    return celer_errorf(CELER_ERR_SHAPE, "%s '%s': shape %s does not fit its config %s %s%s", to_model ? "input" : "output",
                        name, celer_shape_str(in, a, sizeof a), to_model ? "dims" : "reshape",
                        celer_kserve_dims_text(from, from_rank, b, sizeof b), off ? " (after the batch dim)" : "");
}

/* The inputs of a call of v (an array the caller owns) in the shapes v's model sees. */
static celer_status reshape_inputs(const served_version *v, celer_tensor *inputs) {
    for (int i = 0; v->reshape_in && i < v->n_inputs; i++)
        if (v->reshape_in[i].on)
            CELER_TRY(reshape_shape(v, &v->reshape_in[i], true, v->inputs[i].name, &inputs[i].shape, &inputs[i].shape));
    return CELER_OK;
}

/* v's outputs in the shapes its clients see: *outs is `outputs` itself, or a copy in `arena`. */
static celer_status reshape_outputs(const served_version *v, const celer_tensor *outputs, int n, celer_arena *arena,
                                    const celer_tensor **outs) {
    *outs = outputs;
    if (!v->reshape_out || !outputs) return CELER_OK;
    celer_tensor *copy = celer_arena_alloc(arena, sizeof *copy * (size_t)(n + 1));
    if (!copy) return celer_error_wrap(celer_error_status(), "outputs");
    memcpy(copy, outputs, sizeof *copy * (size_t)n);
    for (int i = 0; i < n && i < v->n_outputs; i++)
        if (v->reshape_out[i].on)
            CELER_TRY(reshape_shape(v, &v->reshape_out[i], false, v->output_names[i], &copy[i].shape, &copy[i].shape));
    *outs = copy;
    return CELER_OK;
}

static void infer_done(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs,
                       int n_outputs) {
    celer_service_call *c = job->user;
    char msg[1024];
    if (!st && (st = reshape_outputs(c->version, outputs, n_outputs, &c->arena, &outputs))) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        message = msg;
    }
    finish(c, job, st, message, outputs, n_outputs, CELER_FAIL_BACKEND);
}

/* Queues job for version v: on its queue for a worker, or a remote model's to its upstream's
 * client (remote.h), which sends it from its own thread. The same contract either way. */
static celer_status submit(served_version *v, celer_job *job) {
    return v->remote ? celer_remote_submit(v->remote, job) : celer_sched_submit(v->queue, job);
}

/* ---- pipelines ----
 * A pipeline request is a job on the pipeline's task queue: a worker runs its steps until the end
 * or a model call; a call is a job on that model's queue (so it batches with other requests), and
 * its completion hands the outputs back and queues the pipeline job again, so the model's worker
 * goes on with its batch. The transport's connection or stream waits throughout, as for a model. */

static void pipeline_fail(celer_service_call *c, celer_status st, const char *message) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", message);
    finish(c, NULL, st, msg, NULL, 0, CELER_FAIL_BACKEND);
}

/* A pipeline's call of model version mv came back (`st`), its outputs handed on: counted for mv. */
static void account_call(celer_service_call *c, served_version *mv, celer_status st, const celer_job *job) {
    int64_t now = now_ns();
    outcome o = {.status = st, .reason = fail_reason(st, CELER_FAIL_BACKEND), .request_ns = now - c->call_start_ns,
                 .protocol = c->protocol, .job = st ? NULL : job, .output_ns = now - job->end_ns};
    account(mv, &o);
}

static void pipeline_model_done(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs,
                                int n_outputs) {
    celer_service_call *c = job->user;
    served_version *mv = c->call_version;
    c->call_version = NULL;
    if (c->call_span) {
        if (job->start_ns) trace_job(c->call_span, job);
        if (st) celer_span_fail(c->call_span, message && *message ? message : celer_status_name(st));
        celer_span_end(c->call_span, now_ns());
    }
    if (!st) st = reshape_outputs(mv, outputs, n_outputs, &c->arena, &outputs);
    if (!st) st = celer_pipeline_resume(c->run, mv->output_names, outputs, n_outputs);
    account_call(c, mv, st, job);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "model '%s': %s", mv->owner->name, message && *message ? message : celer_error_message());
        celer_registry_release(mv);
        pipeline_fail(c, st, msg);
        return;
    }
    celer_registry_release(mv);
    st = celer_sched_submit(c->version->queue, &c->job);
    if (st) pipeline_fail(c, st, celer_error_message());
}

/* Runs on a worker: steps until done (answer) or a model call (submitted; the worker moves on). */
static void pipeline_task(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs,
                          int n_outputs) {
    (void)outputs, (void)n_outputs;
    celer_service_call *c = job->user;
    if (st) {
        pipeline_fail(c, st, message);
        return;
    }
    if (c->span && !c->span_computing) {
        c->span_computing = true;
        celer_span_event_at(c->span, "queued", job->enqueue_ns, NULL, 0);
        celer_span_event_at(c->span, "compute start", job->start_ns, NULL, 0);
    }
    const celer_pipeline_call *call = NULL;
    st = celer_pipeline_run_steps(c->run, &call);
    if (st) {
        pipeline_fail(c, st, celer_error_message());
        return;
    }
    if (!call) {
        finish(c, job, CELER_OK, "", celer_pipeline_run_outputs(c->run), celer_pipeline_output_count(c->version->pipeline),
               CELER_FAIL_BACKEND);
        return;
    }
    if (!call->model) { /* a step that batches across requests: wait for it in its queue */
        left_before_batch(c);
        st = celer_sched_submit(c->version->step_queues[call->batch_step], job);
        if (st) pipeline_fail(c, st, celer_error_message());
        return;
    }
    char msg[1024];
    celer_status code = CELER_OK;
    served_version *mv = celer_registry_acquire(c->svc->registry, call->model, call->version, &code, msg, sizeof msg);
    if (!mv) {
        /* the pipeline is fine; the model it needs is not serving: the service is unavailable */
        pipeline_fail(c, CELER_ERR_UNAVAILABLE, msg);
        return;
    }
    c->call_inputs = celer_arena_alloc(&c->arena, sizeof *c->call_inputs * (size_t)(mv->n_inputs + 1));
    for (int i = 0; c->call_inputs && i < mv->n_inputs; i++) {
        int found = -1;
        for (int k = 0; k < call->n_inputs && found < 0; k++)
            if (!strcmp(call->input_names[k], mv->inputs[i].name)) found = k;
        if (found < 0) {
            snprintf(msg, sizeof msg, "pipeline '%s' gives model '%s' no input '%s'", c->version->owner->name, call->model,
                     mv->inputs[i].name);
            celer_registry_release(mv);
            pipeline_fail(c, CELER_ERR_INTERNAL, msg);
            return;
        }
        c->call_inputs[i] = call->inputs[found];
    }
    if (!c->call_inputs || reshape_inputs(mv, c->call_inputs)) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        celer_registry_release(mv);
        pipeline_fail(c, celer_error_status(), msg);
        return;
    }
    c->call_version = mv;
    c->call_start_ns = now_ns();
    if (c->span && (c->call_span || (c->call_span = celer_arena_alloc_uninit(&c->arena, sizeof *c->call_span)))) {
        celer_span_begin(c->call_span, NULL, CELER_SPAN_INTERNAL, c->span, NULL, c->call_start_ns);
        celer_span_name(c->call_span, "model ", mv->owner->name);
        celer_span_attr_str(c->call_span, "celer.model", mv->owner->name);
        celer_span_attr_str(c->call_span, "celer.model_version", mv->version_str);
    }
    c->call_job = (celer_job){.inputs = c->call_inputs, .done = pipeline_model_done, .user = c,
                              .deadline_ns = c->job.deadline_ns, .cancelled = c->job.cancelled, .span = c->call_span};
    st = submit(mv, &c->call_job);
    if (st) {
        snprintf(msg, sizeof msg, "model '%s': %s", call->model, celer_error_message());
        c->call_version = NULL;
        celer_registry_release(mv);
        pipeline_fail(c, st, msg);
    }
}

/* ---- system shared memory ----
 * An input in a region is copied into the call's arena when the call starts, through the guard (a
 * client's truncated object is an error, not a SIGBUS), and its region is let go at once: the model
 * never reads client memory, and an output region overlapping an input's is written after the
 * inputs were read, as Triton allows. An output in a region takes its region when the call starts
 * (so a bad name or range fails before any work) and keeps it until the call ends; whoever answers
 * writes it, once: the worker that has the outputs, or the IO thread for a cache hit. */

/* Reads input `in` (its shape and dtype decoded, its data not) from its region. */
static celer_status shm_read_input(celer_service_call *c, celer_kserve_input *in) {
    char what[300];
    snprintf(what, sizeof what, "input '%.256s'", in->name);
    celer_tensor *t = &in->tensor;
    uint64_t size = in->shm.byte_size;
    int64_t numel = celer_shape_numel(&t->shape);
    size_t need = 0;
    if (numel < 0 || (t->dtype != CELER_STRING && celer_mul_size((size_t)numel, celer_dtype_size(t->dtype), &need)))
        return celer_errorf(CELER_ERR_LIMIT, "%s: shape too large", what);
    if (t->dtype != CELER_STRING && size != need) /* Triton's words first */
        return celer_errorf(CELER_ERR_INVALID,
                            "input byte size mismatch for input '%s' for model '%s'. Expected %zu, got %llu "
                            "(shared_memory_byte_size in region '%s'; the shape's %lld elements of %zu bytes)",
                            in->name, c->version->owner->name, need, (unsigned long long)size, in->shm.region,
                            (long long)numel, celer_dtype_size(t->dtype));
    if (size > SIZE_MAX / 2)
        return celer_errorf(CELER_ERR_LIMIT, "%s: %llu bytes in shared memory", what, (unsigned long long)size);
    celer_shm_region *r;
    char *addr;
    CELER_TRY(celer_shm_acquire(c->svc->shm, in->shm.region, in->shm.offset, size, what, &r, &addr));
    char *dst = celer_arena_alloc_uninit(&c->arena, size ? (size_t)size : 1); /* bounded by the arena's cap */
    celer_status st = dst ? celer_shm_read(r, dst, addr, (size_t)size, what)
                          : celer_errorf(celer_error_status(), "%s: %llu bytes from shared memory region '%s': %s", what,
                                         (unsigned long long)size, in->shm.region, celer_error_message());
    celer_shm_release(r); /* the bytes are the call's now */
    if (st) return st;
    if (t->dtype == CELER_STRING) /* elements point into the copy */
        return celer_kserve_decode_bytes(dst, (size_t)size, (size_t)numel, false, &c->arena, what, &t->data);
    t->data = dst;
    return CELER_OK;
}

/* The inputs in regions read into the arena: c->req becomes a copy of the request with them. */
static celer_status shm_read_inputs(celer_service_call *c) {
    const celer_kserve_request *req = c->req;
    int n = 0;
    for (int i = 0; i < req->n_inputs; i++) n += req->inputs[i].shm.region != NULL;
    if (!n) return CELER_OK;
    CELER_TRY(celer_shm_check_allowed(c->svc->shm));
    celer_kserve_input *ins = celer_arena_alloc(&c->arena, sizeof *ins * (size_t)req->n_inputs);
    if (!ins) return celer_errorf(celer_error_status(), "%s", celer_error_message());
    memcpy(ins, req->inputs, sizeof *ins * (size_t)req->n_inputs);
    for (int i = 0; i < req->n_inputs; i++)
        if (ins[i].shm.region) CELER_TRY(shm_read_input(c, &ins[i]));
    c->shm_req = *req;
    c->shm_req.inputs = ins;
    c->req = &c->shm_req;
    return CELER_OK;
}

/* Takes the regions of the outputs requested in shared memory (their names are known: checked). */
static celer_status shm_take_outputs(celer_service_call *c) {
    const served_version *v = c->version;
    const celer_kserve_request *req = c->req;
    int n = 0;
    for (int k = 0; k < req->n_outputs; k++) n += req->outputs[k].shm.region != NULL;
    if (!n) return CELER_OK;
    CELER_TRY(celer_shm_check_allowed(c->svc->shm));
    c->shm_outs = celer_arena_alloc(&c->arena, sizeof *c->shm_outs * (size_t)n);
    if (!c->shm_outs) return celer_errorf(celer_error_status(), "%s", celer_error_message());
    for (int k = 0; k < req->n_outputs; k++) {
        const celer_kserve_output_request *o = &req->outputs[k];
        if (!o->shm.region) continue;
        int index = 0;
        while (index < v->n_outputs && strcmp(v->output_names[index], o->name)) index++;
        if (index == v->n_outputs) return celer_errorf(CELER_ERR_INVALID, "unknown output '%s' requested", o->name);
        char what[300];
        snprintf(what, sizeof what, "output '%.256s'", o->name);
        shm_output *so = &c->shm_outs[c->n_shm_outs];
        CELER_TRY(celer_shm_acquire(c->svc->shm, o->shm.region, o->shm.offset, o->shm.byte_size, what, &so->region,
                                    &so->addr));
        so->output = index;
        so->o = o;
        c->n_shm_outs++; /* released by celer_service_end */
    }
    return CELER_OK;
}

/* Writes the outputs requested in regions (answer(), on the thread that has them). */
static celer_status shm_write_outputs(celer_service_call *c, const celer_tensor *outputs, int n_outputs) {
    for (int i = 0; i < c->n_shm_outs; i++) {
        const shm_output *so = &c->shm_outs[i];
        if (so->output >= n_outputs)
            return celer_errorf(CELER_ERR_INTERNAL, "output '%s' missing from the result", so->o->name);
        const celer_tensor *t = &outputs[so->output];
        char what[300];
        snprintf(what, sizeof what, "output '%.256s'", so->o->name);
        size_t size;
        CELER_TRY(celer_kserve_binary_size(t, so->o->name, &size));
        if (size > so->o->shm.byte_size) /* Triton's words first */
            return celer_errorf(CELER_ERR_INVALID,
                                "shared memory size specified with the request for output '%s' (%llu bytes) should be at "
                                "least %zu bytes to hold the results (region '%s')",
                                so->o->name, (unsigned long long)so->o->shm.byte_size, size, so->o->shm.region);
        CELER_TRY(celer_shm_write_tensor(so->region, so->addr, t, size, what));
    }
    return CELER_OK;
}

/* ---- starting a call ---- */

/* Whether every requested output is one the version has, and of a type that can be classified
 * when asked (a model's types are known before it runs). */
static celer_status check_outputs(const served_version *v, const celer_kserve_request *req) {
    for (int k = 0; k < req->n_outputs; k++) {
        int i = 0;
        while (i < v->n_outputs && strcmp(v->output_names[i], req->outputs[k].name)) i++;
        if (i == v->n_outputs) return celer_errorf(CELER_ERR_INVALID, "unknown output '%s' requested", req->outputs[k].name);
        const celer_io_desc *d = req->outputs[k].classification ? celer_version_output(v, i) : NULL;
        if (d) CELER_TRY(celer_kserve_classify_check(d->dtype, v->output_names[i]));
    }
    return CELER_OK;
}

/* Orders a model's inputs as the model lists them (the decoder checked names and shapes). */
static celer_status order_inputs(celer_service_call *c) {
    const served_version *v = c->version;
    const celer_kserve_request *req = c->req;
    c->inputs = celer_arena_alloc(&c->arena, sizeof(celer_tensor) * (size_t)(v->n_inputs + 1));
    if (!c->inputs) return celer_errorf(celer_error_status(), "%s", celer_error_message());
    for (int i = 0; i < v->n_inputs; i++) {
        int found = -1;
        for (int k = 0; k < req->n_inputs && found < 0; k++)
            if (!strcmp(req->inputs[k].name, v->inputs[i].name)) found = k;
        if (found < 0) return celer_errorf(CELER_ERR_INVALID, "missing input '%s'", v->inputs[i].name);
        c->inputs[i] = req->inputs[found].tensor;
    }
    CELER_TRY(reshape_inputs(v, c->inputs));
    return check_outputs(v, req);
}

/* A pipeline's run from the decoded request: its inputs, parameters and outputs checked. */
static celer_status pipeline_prepare(celer_service_call *c) {
    const served_version *v = c->version;
    const celer_kserve_request *req = c->req;
    CELER_TRY(celer_pipeline_run_init(v->pipeline, &c->arena, &c->run));
    celer_pipeline_set_batching(c->run, true);
    if (c->span) celer_pipeline_set_step_hook(c->run, trace_step, c);
    for (int k = 0; k < req->n_inputs; k++) {
        int i = 0;
        while (i < v->n_inputs && strcmp(v->inputs[i].name, req->inputs[k].name)) i++;
        CELER_TRY(celer_pipeline_set_input(c->run, i, &req->inputs[k].tensor));
    }
    celer_pipeline_set_parameters(c->run, req->param_keys, req->param_values, req->n_params);
    return check_outputs(v, req);
}

/* The cache key of a decoded request: what is asked (endpoint, version, its config and files) and
 * every input as sent (name, dtype, shape, bytes; absent ones too, their defaults being part of
 * the config), the outputs selected and the request parameters that can steer a pipeline. */
static celer_cache_key request_key(const celer_service_call *c) {
    const served_version *v = c->version;
    const celer_kserve_request *req = c->req;
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_str(&k, v->owner->name);
    celer_cache_key_str(&k, v->version_str);
    celer_cache_key_u64(&k, v->cache_salt);
    celer_cache_key_u64(&k, c->r.cache_salt);
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_kserve_input *in = NULL;
        for (int j = 0; j < req->n_inputs && !in; j++)
            if (!strcmp(req->inputs[j].name, v->inputs[i].name)) in = &req->inputs[j];
        if (in) celer_cache_key_tensor(&k, in->name, &in->tensor);
        else celer_cache_key_str(&k, ""); /* absent: the default */
    }
    celer_cache_key_u64(&k, (uint64_t)req->n_outputs);
    for (int i = 0; i < req->n_outputs; i++) celer_cache_key_str(&k, req->outputs[i].name);
    if (v->pipeline)
        for (int i = 0; i < req->n_params; i++) {
            celer_cache_key_str(&k, req->param_keys[i]);
            celer_cache_key_str(&k, req->param_values[i]);
        }
    return celer_cache_key_end(&k);
}

/* Looks c's result up in the memory tier, then the shared one; true with the outputs on a hit. */
static bool cache_lookup(celer_service_call *c, celer_tensor **outs, int *n) {
    celer_service *s = c->svc;
    const served_version *v = c->version;
    int64_t t0 = now_ns(), expires = 0;
    void *value;
    size_t len;
    bool hit = celer_cache_get_ex(s->cache, c->cache_key, t0, &c->arena, &value, &len, &expires) &&
               !celer_cache_unpack(value, len, &c->arena, outs, n) && *n == v->n_outputs;
    if (hit) c->raw_expires_ns = expires;
    int64_t t1 = now_ns();
    c->cache_ns += t1 - t0;
    celer_metrics_observe(s->m_cache_lookup, (double)(t1 - t0) * 1e-9);
    celer_metrics_add(hit ? s->m_cache_hits : s->m_cache_misses, 1);
    if (hit || !s->redis) return hit;
    /* the shared tier: one round trip (GET + PTTL), bounded by its timeout */
    char rk[40];
    redis_key(c->cache_key, rk);
    int64_t ttl_ms = -1;
    t1 = now_ns();
    celer_redis_result rr = celer_redis_get(s->redis, rk, 38, &c->arena, &value, &len, &ttl_ms);
    hit = rr == CELER_REDIS_HIT && !celer_cache_unpack(value, len, &c->arena, outs, n) && *n == v->n_outputs;
    int64_t t2 = now_ns();
    c->cache_ns += t2 - t1;
    celer_metrics_observe(s->m_redis_lookup, (double)(t2 - t1) * 1e-9);
    if (rr != CELER_REDIS_UNAVAILABLE) celer_metrics_add(hit ? s->m_redis_hits : s->m_redis_misses, 1);
    if (hit) { /* kept here too, no longer than Redis keeps it */
        int64_t ttl_ns = v->cache_ttl_ns;
        if (ttl_ms >= 0) ttl_ns = CELER_MIN(ttl_ns, ttl_ms * 1000000);
        c->raw_expires_ns = now_ns() + ttl_ns;
        celer_cache_put(s->cache, c->cache_key, value, len, c->raw_expires_ns);
    }
    return hit;
}

void celer_service_start(celer_service_call *c, const celer_service_request *r, const celer_service_callbacks *cb,
                         void *user) {
    served_version *v = c->version;
    const celer_kserve_request *req = r->kreq;
    c->r = *r;
    c->req = req;
    c->cb = cb;
    c->user = user;
    celer_status st = shm_read_inputs(c);
    if (!st) st = v->pipeline ? pipeline_prepare(c) : order_inputs(c);
    if (!st) st = shm_take_outputs(c);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        answer(c, st, msg, NULL, 0, NULL, CELER_FAIL_OTHER);
        return;
    }
    int64_t timeout_us = v->default_timeout_us; /* the version's copy: a reload swaps the model's config */
    if (req->timeout_us > 0 && (v->allow_timeout_override || !timeout_us)) timeout_us = req->timeout_us;
    int64_t deadline = timeout_us > 0 ? now_ns() + timeout_us * 1000 : 0;
    if (r->deadline_ns > 0 && (!deadline || r->deadline_ns < deadline)) deadline = r->deadline_ns;
    c->job = (celer_job){.inputs = c->inputs, .done = v->pipeline ? pipeline_task : infer_done, .user = c,
                         .task = c->run, .deadline_ns = deadline, .span = c->span};
    c->cache = CELER_SERVICE_CACHE_BYPASS;
    if (v->cache_ttl_ns > 0) {
        c->cache_key = request_key(c);
        celer_tensor *outs;
        int n;
        if (cache_lookup(c, &outs, &n)) { /* answered here: encoding one result is the IO thread's work */
            c->cache = CELER_SERVICE_CACHE_HIT;
            answer(c, CELER_OK, "", outs, n, NULL, CELER_FAIL_OTHER);
            return;
        }
        c->cache = CELER_SERVICE_CACHE_MISS;
    }
    c->suspended = true;
    cb->suspend(user); /* from here on, done may come on another thread at any time */
    if (c->cache == CELER_SERVICE_CACHE_MISS) {
        /* an identical request computing right now answers this one too */
        c->waiter.user = c;
        if (!celer_cache_join(c->svc->cache, c->cache_key, &c->waiter)) return;
        c->cache_leader = true;
    }
    if (v->n_batch_steps) {
        c->before_batch = true;
        atomic_fetch_add(&v->before_batch, 1);
    }
    /* a leader's result answers the calls coalesced on it and is cached: it computes even when its
     * own client goes away */
    if (!c->cache_leader) c->job.cancelled = &c->cancelled;
    unadmit(c); /* the job takes its place in the queue now */
    st = submit(v, &c->job);
    if (st) {
        /* full queue or a version being unloaded: overloaded; a batch-shape problem: the request */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        finish(c, NULL, st, msg, NULL, 0, CELER_FAIL_OTHER);
    }
}

/* ---- the repository API ---- */

/* A load or unload on its way through the registry's action pool: what it was asked with (the
 * name and paths copied, the bytes the transport's), and whom to answer. */
typedef struct repo_job {
    void (*done)(void *user, celer_status st, const char *message);
    void *user;
    celer_load_overrides ov;
    celer_load_file files[]; /* ov.n_files, their paths after them */
} repo_job;

static void repo_job_done(void *user, celer_status st, const char *message) {
    repo_job *j = user;
    j->done(j->user, st, message);
    free(j);
}

static const char *const repo_kind_names[] = {"BOOL", "INT", "STRING", "BYTES", "BYTES", "OTHER"};

/* A model name a load can take: what Triton refuses, refused the same way. */
static celer_status check_model_name(const char *model) {
    if (!model[0]) return celer_errorf(CELER_ERR_INVALID, "Model name cannot be empty. Please enter a valid name to deploy.");
    if (!strcmp(model, ".") || !strcmp(model, "..") || strchr(model, '/'))
        return celer_errorf(CELER_ERR_INVALID, "invalid model name '%.255s', model name must not contain path traversal "
                            "characters", model);
    if (strlen(model) > 255) return celer_errorf(CELER_ERR_LIMIT, "model name of %zu bytes, at most 255", strlen(model));
    return CELER_OK;
}

/* Checks the parameters of a load into `ov` (files counted, not yet listed) or of an unload. */
static celer_status check_repo_params(const celer_service *s, bool unload, const celer_repo_param *params, int n,
                                      celer_load_overrides *ov, size_t *path_bytes) {
    size_t decoded = 0;
    for (int i = 0; i < n; i++) {
        const celer_repo_param *p = &params[i];
        if (unload) {
            if (!strcmp(p->key, "unload_dependents") && p->kind == CELER_REPO_BOOL && !p->boolean) continue;
            if (!strcmp(p->key, "unload_dependents"))
                return celer_errorf(CELER_ERR_INVALID, "unload parameter 'unload_dependents' must be false: celer's "
                                    "models have no dependents to unload");
            return celer_errorf(CELER_ERR_INVALID, "unload parameter '%.64s' is not supported (an unload takes "
                                "'unload_dependents')", p->key);
        }
        if (!strcmp(p->key, "config")) {
            if (p->kind != CELER_REPO_STRING)
                return celer_errorf(CELER_ERR_INVALID, "Config parameter 'config' must have string type for its value, "
                                    "not %s", repo_kind_names[p->kind]);
            /* checked now: an invalid config is refused before anything happens */
            celer_arena a;
            celer_arena_init(&a, 16 * 1024, 0);
            celer_model_config cfg;
            celer_status st = celer_config_parse_json(p->bytes, p->len, "Invalid config override", &a, &cfg);
            celer_arena_free(&a);
            CELER_TRY(st);
            ov->config = p->bytes;
            ov->config_len = p->len;
        } else if (!strncmp(p->key, "file:", 5)) {
            if (p->kind != CELER_REPO_BYTES && p->kind != CELER_REPO_BASE64)
                return celer_errorf(CELER_ERR_INVALID, "File parameter '%.200s' must have bytes type for its value, not %s",
                                    p->key, repo_kind_names[p->kind]);
            CELER_TRY(celer_override_check_path(p->key + 5));
            if (++ov->n_files > CELER_LOAD_MAX_FILES)
                return celer_errorf(CELER_ERR_LIMIT, "a load brings more than %d files", CELER_LOAD_MAX_FILES);
            decoded += p->kind == CELER_REPO_BASE64 ? p->len / 4 * 3 : p->len; /* at least this much */
            if (decoded > (size_t)s->opts->max_body_bytes)
                return celer_errorf(CELER_ERR_LIMIT, "the files of the load hold more than %lld bytes (--max-body-bytes)",
                                    s->opts->max_body_bytes);
            *path_bytes += strlen(p->key + 5) + 1;
        } else {
            return celer_errorf(CELER_ERR_INVALID, "Unrecognized load parameter '%.64s' with type '%s' (a load takes "
                                "'config' and 'file:<path>')", p->key, repo_kind_names[p->kind]);
        }
    }
    if (ov->n_files && !ov->config)
        return celer_errorf(CELER_ERR_INVALID, "Load parameter 'config' must be specified for model file override");
    return CELER_OK;
}

celer_status celer_service_repo_action(celer_service *s, const char *model, bool unload, const celer_repo_param *params,
                                       int n_params, void (*done)(void *user, celer_status st, const char *message),
                                       void *user) {
    const char *mode = s->opts->model_control_mode;
    if (!strcmp(mode, "none") || !strcmp(mode, "poll"))
        return celer_errorf(CELER_ERR_UNAVAILABLE, "explicit model load / unload is not allowed if polling is enabled "
                            "(--model-control-mode %s; explicit, or no mode, takes loads and unloads)", mode);
    if (!unload) CELER_TRY(check_model_name(model));
    celer_load_overrides ov = {.max_bytes = (size_t)s->opts->max_body_bytes};
    size_t path_bytes = 0;
    CELER_TRY(check_repo_params(s, unload, params, n_params, &ov, &path_bytes));
    bool overrides = ov.config || ov.n_files;
    repo_job *j = celer_malloc(sizeof *j + sizeof(celer_load_file) * (size_t)ov.n_files + path_bytes);
    if (!j) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    j->done = done, j->user = user, j->ov = ov;
    char *paths = (char *)(j->files + ov.n_files);
    int k = 0;
    for (int i = 0; i < n_params && !unload; i++) {
        const celer_repo_param *p = &params[i];
        if (strncmp(p->key, "file:", 5)) continue;
        size_t len = strlen(p->key + 5) + 1;
        j->files[k++] = (celer_load_file){memcpy(paths, p->key + 5, len), p->bytes, p->len, p->kind == CELER_REPO_BASE64};
        paths += len;
    }
    j->ov.files = j->files;
    celer_status st = celer_registry_submit_action(s->registry, model, unload, overrides ? &j->ov : NULL, repo_job_done, j);
    if (st) free(j);
    return st;
}

void celer_service_cancel(celer_service_call *c) { atomic_store(&c->cancelled, true); }

/* ---- statistics ---- */

celer_status celer_service_stats_json(celer_service *s, const char *model, const char *version, celer_jbuf *out) {
    return celer_registry_stats_json(s->registry, model, version, out);
}
