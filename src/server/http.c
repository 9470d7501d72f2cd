/* HTTP front end on libmicrohttpd: routes, request bodies, the KServe v2 endpoints, errors as
 * {"error": "..."}, and the access log.
 *
 * Connection threads (MHD's pool) read bodies, decode requests and encode responses; they never
 * compute. An inference request is decoded, handed to the model's queue, and its connection is
 * suspended; the worker that ran it encodes the response and resumes the connection. Loads and
 * unloads of the repository API run on the registry's action pool the same way.
 *
 * Hostile clients: what the headers decide (route, body caps, a full queue) is answered before any
 * body byte is buffered; headers and bodies have total deadlines (the reaper); bodies buffered
 * across connections have a budget. Limits: docs/server.md, "Limits and failure behaviour". */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"

typedef enum req_state { REQ_READING, REQ_WAITING, REQ_READY } req_state;

/* One open connection, for the reaper: a trickle of bytes restarts MHD's idle timeout, so the
 * total time a request's headers, then its body, may take is enforced here. */
typedef struct conn_ctx {
    struct conn_ctx *prev, *next;
    int fd;
    _Atomic int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none (the request is being answered) */
} conn_ctx;

struct celer_http {
    struct MHD_Daemon *daemon;
    const celer_server_options *opts;
    celer_registry *registry;
    celer_metrics *metrics;
    atomic_ullong next_id;
    atomic_int active;         /* requests received and not completed (for graceful shutdown) */
    atomic_int suspended;      /* of those, waiting on a worker: the daemon must not stop under them */
    atomic_bool draining;      /* shutting down: answers close their connection */
    atomic_llong body_bytes;   /* request body bytes reserved across all connections */
    unsigned max_connections;  /* below the open-files limit */
    MHD_socket listen_fd;      /* handed back by MHD at shutdown; else MHD_INVALID_SOCKET */
    /* the reaper: connections past their header or body deadline are shut down */
    pthread_mutex_t conns_lock;
    pthread_cond_t reaper_wake;
    conn_ctx *conns;
    bool reaper_started, reaper_stop;
    pthread_t reaper;
    celer_series *m_requests[6]; /* by status class: 1xx..5xx (index 1..5) */
    celer_cache *cache;
    celer_redis *redis; /* NULL: no shared tier */
    celer_series *m_cache_hits, *m_cache_misses, *m_cache_lookup;
    celer_series *m_redis_hits, *m_redis_misses, *m_redis_lookup;
};

#define PACK_MAX ((size_t)64 << 20) /* larger results are not cached */

typedef enum cache_state { CACHE_NONE, CACHE_BYPASS, CACHE_HIT, CACHE_MISS } cache_state;
static const char *const cache_state_names[] = {NULL, "bypass", "hit", "miss"};

#define MAX_URL 2048 /* longer paths get 414 */

typedef struct route_args {
    const char *model, *version;
    char predict_model[256]; /* "{m}:predict" segment without its suffix */
} route_args;

typedef struct http_req {
    celer_http *srv;
    struct MHD_Connection *conn;
    conn_ctx *cctx; /* NULL when the connection could not be tracked */
    char method[16];
    char path[MAX_URL];
    char segbuf[MAX_URL]; /* the path split into segments; route_args point into it */
    char request_id[64];
    int64_t start_ns;
    int route;            /* index in routes[], or a ROUTE_ value */
    route_args args;
    char *body;
    size_t body_len, body_cap;
    size_t body_reserved; /* counted in srv->body_bytes */
    bool admitted;        /* holds a place in its version's queue (celer_sched_queue_admit) */
    _Atomic req_state state;
    /* response */
    int status;
    celer_jbuf resp;
    size_t json_len; /* < resp.len: binary tail; send Inference-Header-Content-Length */
    const char *content_type;
    bool retry_after;
    char allow[32]; /* 405: the methods the path takes */
    /* inference in flight */
    celer_arena arena;
    served_version *version;
    celer_kserve_request kreq;
    celer_tensor *inputs;
    celer_job job;
    bool predict;        /* KServe v1 :predict */
    /* pipeline in flight: the run, and the model call it waits for */
    celer_pipeline_run *run;
    bool before_batch; /* counted in version->before_batch */
    served_version *call_version;
    celer_tensor *call_inputs;
    celer_job call_job;
    /* result cache */
    cache_state cache;
    bool cache_leader;         /* computes for the requests coalesced on cache_key */
    celer_cache_key cache_key;
    celer_cache_waiter waiter;
    bool raw_keyed;            /* raw_key is set: a successful answer is kept under it */
    celer_cache_key raw_key;
    int64_t raw_expires_ns;    /* when the result it comes from expires */
} http_req;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Bounded copy with a terminating NUL (no printf on the per-request path). */
static void copy_text(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* ---- responses ---- */

static void reply_json(http_req *q, int status) {
    q->status = status;
    q->content_type = "application/json";
}

static void reply_error(http_req *q, int status, const char *message) {
    celer_jbuf_reset(&q->resp);
    celer_kserve_encode_error(message, &q->resp);
    reply_json(q, status);
}

/* Sets q's reply to the failure `st`: its HTTP status (and Retry-After) come from the status
 * table in src/base, the one place that decides them. */
static void reply_status(http_req *q, celer_status st, const char *message) {
    reply_error(q, celer_status_http(st), message);
    q->retry_after = celer_status_retryable(st);
}

static enum MHD_Result send_reply(http_req *q) {
    if (q->resp.status) { /* the encoder hit its cap (the server's answer is too large: its fault) or malloc failed */
        char msg[256];
        snprintf(msg, sizeof msg, "response too large or out of memory: %s", celer_status_name(q->resp.status));
        celer_status st = q->resp.status == CELER_ERR_LIMIT ? CELER_ERR_INTERNAL : q->resp.status;
        celer_jbuf_free(&q->resp);
        celer_jbuf_init(&q->resp, 0);
        reply_status(q, st, msg);
        q->json_len = 0;
    }
    size_t len = q->resp.len;
    char *data = q->resp.data;
    q->resp.data = NULL;
    q->resp.len = q->resp.cap = 0;
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, data ? data : (char *)"", data ? free : NULL);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", q->content_type ? q->content_type : "application/json");
    MHD_add_response_header(r, "X-Request-Id", q->request_id);
    if (q->json_len && q->json_len < len) {
        char hl[32];
        snprintf(hl, sizeof hl, "%zu", q->json_len);
        MHD_add_response_header(r, "Inference-Header-Content-Length", hl);
    }
    if (q->retry_after) MHD_add_response_header(r, "Retry-After", "1");
    if (q->cache != CACHE_NONE) MHD_add_response_header(r, "X-Celer-Cache", cache_state_names[q->cache]);
    if (q->status == 405) MHD_add_response_header(r, "Allow", q->allow);
    if (atomic_load(&q->srv->draining)) MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(q->conn, (unsigned)q->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- suspension: a request waits for a worker with its connection suspended ---- */

static void suspend(http_req *q) {
    atomic_fetch_add(&q->srv->suspended, 1);
    atomic_store(&q->state, REQ_WAITING);
    MHD_suspend_connection(q->conn);
}

/* Hands q's answer to its connection thread; q may be freed as soon as this returns. */
static void resume(http_req *q) {
    celer_http *srv = q->srv;
    atomic_store(&q->state, REQ_READY);
    MHD_resume_connection(q->conn);
    atomic_fetch_sub(&srv->suspended, 1); /* after the resume: the daemon may stop from now on */
}

/* ---- inference ---- */

/* The request no longer counts as on its way to the pipeline's batch step. */
static void left_before_batch(http_req *q) {
    if (!q->before_batch) return;
    q->before_batch = false;
    atomic_fetch_sub(&q->version->before_batch, 1);
}

/* ---- the response cache in front of the result cache ----
 * The same request bytes (body and the headers that decide its reading) to the same endpoint get
 * the same response bytes: the response is kept under a key over the raw request, so a repeat is
 * answered by hashing its body, without parsing it. The result cache behind it (keys over decoded
 * tensors) still serves the same tensors sent in another form. An entry lives no longer than the
 * result it was encoded from. Values: json_len (8 bytes), a content-type byte, the body. */

static celer_cache_key raw_request_key(const http_req *q, const char *header_len, const char *content_type) {
    const served_version *v = q->version;
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_str(&k, "raw response");
    celer_cache_key_str(&k, v->owner->name);
    celer_cache_key_str(&k, v->version_str);
    celer_cache_key_u64(&k, v->cache_salt);
    celer_cache_key_u64(&k, q->predict);
    celer_cache_key_str(&k, header_len ? header_len : "(none)");
    celer_cache_key_str(&k, v->pipeline && content_type ? content_type : ""); /* pipelines read raw images by it */
    celer_cache_key_bytes(&k, q->body ? q->body : "", q->body_len);
    return celer_cache_key_end(&k);
}

static void keep_response(http_req *q) {
    size_t len = 9 + q->resp.len;
    char *v = celer_malloc(len);
    if (!v) return;
    uint64_t jl = q->json_len;
    memcpy(v, &jl, 8);
    v[8] = q->content_type && !strcmp(q->content_type, "application/octet-stream");
    memcpy(v + 9, q->resp.data, q->resp.len);
    celer_cache_put(q->srv->cache, q->raw_key, v, len, q->raw_expires_ns);
    free(v);
}

/* Gives back q's place in its queue, taken from its headers. */
static void unadmit(http_req *q) {
    if (!q->admitted) return;
    q->admitted = false;
    celer_sched_queue_unadmit(q->version->queue);
}

/* Answers q from a kept response; false when there is none. */
static bool answer_kept(http_req *q) {
    void *value;
    size_t len;
    /* an arena of its own, sized for one response: a hit takes no request arena (64 KiB blocks) */
    celer_arena kept;
    celer_arena_init(&kept, 4096, 0);
    bool hit = celer_cache_get(q->srv->cache, q->raw_key, now_ns(), &kept, &value, &len) && len >= 9;
    uint64_t jl = 0;
    if (hit) {
        memcpy(&jl, value, 8);
        celer_jbuf_reset(&q->resp);
        celer_jbuf_raw(&q->resp, (const char *)value + 9, len - 9);
        q->content_type = ((const char *)value)[8] ? "application/octet-stream" : "application/json";
    }
    celer_arena_free(&kept);
    if (!hit || q->resp.status) return false;
    q->json_len = (size_t)jl;
    q->status = 200;
    return true;
}

/* Counts an outcome of version v (a request, or a pipeline's call of it) in its statistics and
 * metrics: the one place that does. start_ns: when the request began, for its duration; 0 for a
 * call, whose duration is its pipeline's. */
static void count_outcome(served_version *v, bool ok, int64_t start_ns) {
    if (!ok) {
        atomic_fetch_add(&v->n_failure, 1);
        celer_metrics_add(v->m_failure, 1);
        return;
    }
    atomic_fetch_add(&v->n_success, 1);
    atomic_fetch_add(&v->n_inferences, 1);
    celer_metrics_add(v->m_success, 1);
    if (start_ns) celer_metrics_observe(v->m_duration, (double)(now_ns() - start_ns) * 1e-9);
}

/* Counts how a job of v ran: its wait in the queue, its compute, and its batch. */
static void count_run(served_version *v, const celer_job *job) {
    if (job->batch_first) atomic_fetch_add(&v->n_exec, 1);
    atomic_fetch_add(&v->ns_queue, (unsigned long long)(job->start_ns - job->enqueue_ns));
    atomic_fetch_add(&v->ns_compute, (unsigned long long)(job->end_ns - job->start_ns));
    celer_metrics_observe(v->m_queue, (double)(job->start_ns - job->enqueue_ns) * 1e-9);
    celer_metrics_observe(v->m_compute, (double)(job->end_ns - job->start_ns) * 1e-9);
    if (job->batch_first) celer_metrics_observe(v->m_batch, job->batch_size);
}

/* Sets q's reply from a result (outputs, or the failure), as the request asked for it, and counts
 * it in the version's success/failure statistics. */
static void answer(http_req *q, celer_status st, const char *message, const celer_tensor *outputs, int n_outputs) {
    served_version *v = q->version;
    celer_jbuf_reset(&q->resp);
    if (st) {
        reply_status(q, st, message);
        count_outcome(q->version, false, 0);
        return;
    }
    celer_status es;
    if (q->kreq.object_form) {
        es = celer_kserve_encode_object(q->kreq.object_single, v->output_names, outputs, n_outputs, &q->resp);
        q->json_len = 0;
    } else if (q->predict) {
        es = celer_kserve_encode_predict(v->output_names, outputs, n_outputs, &q->resp);
        q->json_len = 0;
    } else {
        es = celer_kserve_encode_infer(&q->kreq, v->owner->name, v->version_str, v->output_names, outputs, n_outputs,
                                       &q->resp, &q->json_len);
    }
    if (es) {
        char msg[1024];
        snprintf(msg, sizeof msg, "encoding the response: %s", celer_error_message());
        reply_status(q, es == CELER_ERR_LIMIT ? CELER_ERR_INTERNAL : es, msg);
        count_outcome(q->version, false, 0);
        return;
    }
    q->status = 200;
    q->content_type = q->json_len && q->json_len < q->resp.len ? "application/octet-stream" : "application/json";
    if (q->raw_keyed) keep_response(q);
    count_outcome(q->version, true, q->start_ns);
}

/* "celer:" and the key in hex: 38 characters (and a NUL). */
static void redis_key(celer_cache_key k, char out[40]) {
    snprintf(out, 40, "celer:%016llx%016llx", (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* The leader of a cache key is done: stores a success, then answers every request coalesced on
 * the key with the same result. */
static void lead_done(http_req *q, celer_status st, const char *message, const celer_tensor *outputs, int n_outputs) {
    q->cache_leader = false;
    celer_cache *cache = q->srv->cache;
    if (!st) {
        void *packed;
        size_t len;
        if (!celer_cache_pack(outputs, n_outputs, PACK_MAX, &packed, &len)) {
            celer_cache_put(cache, q->cache_key, packed, len, now_ns() + q->version->cache_ttl_ns);
            if (q->srv->redis) { /* a slow or dead Redis costs at most its timeout, once per backoff */
                char rk[40];
                redis_key(q->cache_key, rk);
                celer_redis_set(q->srv->redis, rk, 38, packed, len, q->version->cache_ttl_ns / 1000000);
            }
            free(packed);
        }
    }
    celer_cache_waiter *w = celer_cache_finish(cache, q->cache_key);
    while (w) {
        http_req *wq = w->user;
        w = w->next; /* the waiter's request is gone once resumed */
        answer(wq, st, message, outputs, n_outputs);
        wq->cache = st ? CACHE_MISS : CACHE_HIT;
        resume(wq);
    }
}

static void infer_done(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs, int n_outputs) {
    http_req *q = job->user;
    served_version *v = q->version;
    left_before_batch(q);
    int64_t end = now_ns();
    answer(q, st, message, outputs, n_outputs);
    if (q->cache_leader) lead_done(q, st, message, outputs, n_outputs);
    if (!st) {
        atomic_fetch_add(&v->ns_total, (unsigned long long)(end - q->start_ns));
        count_run(v, job);
        if (v->pipeline) {
            const int64_t *ns = celer_pipeline_run_step_ns(q->run);
            for (int i = 0; i < celer_pipeline_step_count(v->pipeline); i++)
                if (ns[i] > 0) celer_metrics_observe(v->m_steps[i], (double)ns[i] * 1e-9);
        }
    }
    resume(q);
}

/* Orders the decoded inputs as the model lists them (the decoder checked names and shapes). */
static bool order_inputs(http_req *q, char *msg, size_t cap) {
    served_version *v = q->version;
    q->inputs = celer_arena_alloc(&q->arena, sizeof(celer_tensor) * (size_t)(v->n_inputs + 1));
    if (!q->inputs) return snprintf(msg, cap, "out of memory"), false;
    for (int i = 0; i < v->n_inputs; i++) {
        int found = -1;
        for (int k = 0; k < q->kreq.n_inputs && found < 0; k++)
            if (!strcmp(q->kreq.inputs[k].name, v->inputs[i].name)) found = k;
        if (found < 0) return snprintf(msg, cap, "missing input '%s'", v->inputs[i].name), false;
        q->inputs[i] = q->kreq.inputs[found].tensor;
    }
    for (int k = 0; k < q->kreq.n_outputs; k++) {
        bool known = false;
        for (int i = 0; i < v->n_outputs && !known; i++) known = !strcmp(v->output_names[i], q->kreq.outputs[k].name);
        if (!known) return snprintf(msg, cap, "unknown output '%s' requested", q->kreq.outputs[k].name), false;
    }
    return true;
}

/* ---- pipelines ----
 * A pipeline request is a job on the pipeline's task queue: a worker runs its steps until the end
 * or a model call; a call is a job on that model's queue (so it batches with other requests), and
 * its completion hands the outputs back and queues the pipeline job again, so the model's worker
 * goes on with its batch. The connection stays suspended throughout, as for a model. */

static void pipeline_fail(http_req *q, celer_status st, const char *message) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", message);
    infer_done(&q->job, st, msg, NULL, 0);
}

static void pipeline_model_done(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs,
                                int n_outputs) {
    http_req *q = job->user;
    served_version *mv = q->call_version;
    q->call_version = NULL;
    if (!st) st = celer_pipeline_resume(q->run, mv->output_names, outputs, n_outputs);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "model '%s': %s", mv->owner->name, message && *message ? message : celer_error_message());
        count_outcome(mv, false, 0);
        celer_registry_release(mv);
        pipeline_fail(q, st, msg);
        return;
    }
    count_outcome(mv, true, 0);
    count_run(mv, job);
    celer_registry_release(mv);
    st = celer_sched_submit(q->version->queue, &q->job);
    if (st) pipeline_fail(q, st, celer_error_message());
}

/* Runs on a worker: steps until done (answer) or a model call (submitted; the worker moves on). */
static void pipeline_task(celer_job *job, celer_status st, const char *message, const celer_tensor *outputs,
                          int n_outputs) {
    (void)outputs, (void)n_outputs;
    http_req *q = job->user;
    if (st) {
        pipeline_fail(q, st, message);
        return;
    }
    const celer_pipeline_call *call = NULL;
    st = celer_pipeline_run_steps(q->run, &call);
    if (st) {
        pipeline_fail(q, st, celer_error_message());
        return;
    }
    if (!call) {
        infer_done(job, CELER_OK, "", celer_pipeline_run_outputs(q->run), celer_pipeline_output_count(q->version->pipeline));
        return;
    }
    if (!call->model) { /* a step that batches across requests: wait for it in its queue */
        left_before_batch(q);
        st = celer_sched_submit(q->version->step_queues[call->batch_step], job);
        if (st) pipeline_fail(q, st, celer_error_message());
        return;
    }
    char msg[1024];
    celer_status code = CELER_OK;
    served_version *mv = celer_registry_acquire(q->srv->registry, call->model, call->version, &code, msg, sizeof msg);
    if (!mv) {
        /* the pipeline is fine; the model it needs is not serving: the service is unavailable */
        pipeline_fail(q, CELER_ERR_UNAVAILABLE, msg);
        return;
    }
    q->call_inputs = celer_arena_alloc(&q->arena, sizeof *q->call_inputs * (size_t)(mv->n_inputs + 1));
    for (int i = 0; q->call_inputs && i < mv->n_inputs; i++) {
        int found = -1;
        for (int k = 0; k < call->n_inputs && found < 0; k++)
            if (!strcmp(call->input_names[k], mv->inputs[i].name)) found = k;
        if (found < 0) {
            snprintf(msg, sizeof msg, "pipeline '%s' gives model '%s' no input '%s'", q->version->owner->name, call->model,
                     mv->inputs[i].name);
            celer_registry_release(mv);
            pipeline_fail(q, CELER_ERR_INTERNAL, msg);
            return;
        }
        q->call_inputs[i] = call->inputs[found];
    }
    if (!q->call_inputs) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        celer_registry_release(mv);
        pipeline_fail(q, celer_error_status(), msg);
        return;
    }
    q->call_version = mv;
    q->call_job = (celer_job){.inputs = q->call_inputs, .done = pipeline_model_done, .user = q,
                              .deadline_ns = q->job.deadline_ns};
    st = celer_sched_submit(mv->queue, &q->call_job);
    if (st) {
        snprintf(msg, sizeof msg, "model '%s': %s", call->model, celer_error_message());
        q->call_version = NULL;
        celer_registry_release(mv);
        pipeline_fail(q, st, msg);
    }
}

/* Decodes a pipeline request (business-object JSON, KServe v2, or a raw image body for a
 * pipeline with one BYTES input) into a run. Returns false with the reply set. */
static bool pipeline_decode(http_req *q, size_t json_len) {
    served_version *v = q->version;
    const celer_pipeline *p = v->pipeline;
    const char *ct = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Type");
    int bytes_input = -1, n_bytes = 0;
    for (int i = 0; i < v->n_inputs; i++)
        if (v->inputs[i].dtype == CELER_STRING) bytes_input = i, n_bytes++;
    bool raw = json_len == SIZE_MAX && ct && !strstr(ct, "json") && n_bytes == 1 &&
               (!strncmp(ct, "image/", 6) || !strncmp(ct, "application/octet-stream", 24));
    celer_status st = CELER_OK;
    if (raw) {
        memset(&q->kreq, 0, sizeof q->kreq);
        q->kreq.inputs = celer_arena_alloc(&q->arena, sizeof *q->kreq.inputs);
        celer_str *el = celer_arena_alloc(&q->arena, sizeof *el);
        if (!q->kreq.inputs || !el || celer_str_dup(&q->arena, (celer_str){q->body, q->body_len}, el)) {
            reply_status(q, celer_error_status(), celer_error_message());
            return false;
        }
        q->kreq.inputs[0] = (celer_kserve_input){.name = v->inputs[bytes_input].name,
                                                 .tensor = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {1}}, .data = el}};
        q->kreq.n_inputs = 1;
    } else {
        celer_json *root = NULL;
        bool object = false;
        if (json_len == SIZE_MAX) {
            st = celer_json_parse(q->body ? q->body : "", q->body_len, &q->arena, &root);
            if (st) celer_error_wrap(st, "request body");
            object = !st && (root->type == CELER_JSON_ARRAY ||
                             (root->type == CELER_JSON_OBJECT && !celer_json_get(root, "inputs")));
        }
        if (!st && object) st = celer_kserve_decode_object(root, v->inputs, v->n_inputs, &q->arena, &q->kreq);
        else if (!st)
            st = celer_kserve_decode_infer(q->body ? q->body : "", q->body_len, json_len, v->inputs, v->n_inputs,
                                           &q->arena, &q->kreq);
    }
    if (!st) st = celer_pipeline_run_init(p, &q->arena, &q->run);
    if (!st) celer_pipeline_set_batching(q->run, true);
    for (int k = 0; !st && k < q->kreq.n_inputs; k++) {
        int i = 0;
        while (i < v->n_inputs && strcmp(v->inputs[i].name, q->kreq.inputs[k].name)) i++;
        st = celer_pipeline_set_input(q->run, i, &q->kreq.inputs[k].tensor);
    }
    if (!st) {
        celer_pipeline_set_parameters(q->run, q->kreq.param_keys, q->kreq.param_values, q->kreq.n_params);
        for (int k = 0; k < q->kreq.n_outputs; k++) {
            bool known = false;
            for (int i = 0; i < v->n_outputs && !known; i++) known = !strcmp(v->output_names[i], q->kreq.outputs[k].name);
            if (!known) st = celer_errorf(CELER_ERR_INVALID, "unknown output '%s' requested", q->kreq.outputs[k].name);
        }
    }
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        reply_status(q, st, msg);
        count_outcome(q->version, false, 0);
        return false;
    }
    return true;
}

/* The cache key of a decoded request: what is asked (endpoint, version, its config and files) and
 * every input as sent (name, dtype, shape, bytes; absent ones too, their defaults being part of
 * the config), the outputs selected and the request parameters that can steer a pipeline. */
static celer_cache_key request_key(const http_req *q) {
    const served_version *v = q->version;
    celer_cache_keyer k;
    celer_cache_key_begin(&k);
    celer_cache_key_str(&k, v->owner->name);
    celer_cache_key_str(&k, v->version_str);
    celer_cache_key_u64(&k, v->cache_salt);
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_kserve_input *in = NULL;
        for (int j = 0; j < q->kreq.n_inputs && !in; j++)
            if (!strcmp(q->kreq.inputs[j].name, v->inputs[i].name)) in = &q->kreq.inputs[j];
        if (in) celer_cache_key_tensor(&k, in->name, &in->tensor);
        else celer_cache_key_str(&k, ""); /* absent: the default */
    }
    celer_cache_key_u64(&k, (uint64_t)q->kreq.n_outputs);
    for (int i = 0; i < q->kreq.n_outputs; i++) celer_cache_key_str(&k, q->kreq.outputs[i].name);
    if (v->pipeline)
        for (int i = 0; i < q->kreq.n_params; i++) {
            celer_cache_key_str(&k, q->kreq.param_keys[i]);
            celer_cache_key_str(&k, q->kreq.param_values[i]);
        }
    return celer_cache_key_end(&k);
}

/* Decodes and queues an inference request; admit() acquired q->version from its headers. */
static enum MHD_Result start_infer(http_req *q) {
    char msg[1024];
    celer_arena_init(&q->arena, 64 * 1024, (size_t)q->srv->opts->max_body_bytes * 4 + (64u << 20));
    const char *hl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    size_t json_len = SIZE_MAX;
    if (hl) {
        char *end;
        unsigned long long v = strtoull(hl, &end, 10);
        if (*end || end == hl || v > q->body_len) {
            reply_status(q, CELER_ERR_INVALID, "Inference-Header-Content-Length is not a number within the body size");
            count_outcome(q->version, false, 0);
            return send_reply(q);
        }
        json_len = (size_t)v;
    }
    if (q->version->cache_ttl_ns > 0) {
        int64_t t0 = now_ns();
        q->raw_key = raw_request_key(q, hl, MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Type"));
        q->raw_keyed = true;
        q->raw_expires_ns = t0 + q->version->cache_ttl_ns;
        if (answer_kept(q)) {
            celer_metrics_observe(q->srv->m_cache_lookup, (double)(now_ns() - t0) * 1e-9);
            celer_metrics_add(q->srv->m_cache_hits, 1);
            count_outcome(q->version, true, q->start_ns);
            q->cache = CACHE_HIT;
            q->raw_keyed = false;
            return send_reply(q);
        }
    }
    celer_status st;
    if (q->version->pipeline) {
        if (q->predict) {
            reply_status(q, CELER_ERR_INVALID, "pipelines take /v2/models/{name}/infer requests (business objects or KServe v2)");
            count_outcome(q->version, false, 0);
            return send_reply(q);
        }
        if (!pipeline_decode(q, json_len)) return send_reply(q);
        st = CELER_OK;
    } else if (q->predict)
        st = celer_kserve_decode_predict(q->body ? q->body : "", q->body_len, q->version->inputs, q->version->n_inputs,
                                         &q->arena, &q->kreq);
    else
        st = celer_kserve_decode_infer(q->body ? q->body : "", q->body_len, json_len, q->version->inputs,
                                       q->version->n_inputs, &q->arena, &q->kreq);
    if (st) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        reply_status(q, st, msg);
        count_outcome(q->version, false, 0);
        return send_reply(q);
    }
    if (!q->version->pipeline && !order_inputs(q, msg, sizeof msg)) {
        reply_status(q, CELER_ERR_INVALID, msg);
        count_outcome(q->version, false, 0);
        return send_reply(q);
    }
    const celer_model_config *cfg = &q->version->owner->config;
    int64_t timeout_us = cfg->default_timeout_us;
    if (q->kreq.timeout_us > 0 && (cfg->allow_timeout_override || !timeout_us)) timeout_us = q->kreq.timeout_us;
    q->job = (celer_job){.inputs = q->inputs, .done = q->version->pipeline ? pipeline_task : infer_done, .user = q,
                         .task = q->run,
                         .deadline_ns = timeout_us > 0 ? now_ns() + timeout_us * 1000 : 0};
    q->cache = CACHE_BYPASS;
    if (q->version->cache_ttl_ns > 0) {
        q->cache_key = request_key(q);
        int64_t t0 = now_ns();
        void *value;
        size_t len;
        celer_tensor *outs;
        int n;
        int64_t expires = 0;
        bool hit = celer_cache_get_ex(q->srv->cache, q->cache_key, t0, &q->arena, &value, &len, &expires) &&
                   !celer_cache_unpack(value, len, &q->arena, &outs, &n) && n == q->version->n_outputs;
        if (hit) q->raw_expires_ns = expires;
        celer_metrics_observe(q->srv->m_cache_lookup, (double)(now_ns() - t0) * 1e-9);
        celer_metrics_add(hit ? q->srv->m_cache_hits : q->srv->m_cache_misses, 1);
        if (!hit && q->srv->redis) {
            /* the shared tier: one round trip (GET + PTTL), bounded by its timeout */
            char rk[40];
            redis_key(q->cache_key, rk);
            int64_t ttl_ms = -1, t1 = now_ns();
            celer_redis_result rr = celer_redis_get(q->srv->redis, rk, 38, &q->arena, &value, &len, &ttl_ms);
            hit = rr == CELER_REDIS_HIT && !celer_cache_unpack(value, len, &q->arena, &outs, &n) &&
                  n == q->version->n_outputs;
            celer_metrics_observe(q->srv->m_redis_lookup, (double)(now_ns() - t1) * 1e-9);
            if (rr != CELER_REDIS_UNAVAILABLE) celer_metrics_add(hit ? q->srv->m_redis_hits : q->srv->m_redis_misses, 1);
            if (hit) { /* kept here too, no longer than Redis keeps it */
                int64_t ttl_ns = q->version->cache_ttl_ns;
                if (ttl_ms >= 0) ttl_ns = CELER_MIN(ttl_ns, ttl_ms * 1000000);
                q->raw_expires_ns = now_ns() + ttl_ns;
                celer_cache_put(q->srv->cache, q->cache_key, value, len, q->raw_expires_ns);
            }
        }
        if (hit) { /* answered here: encoding one result is the connection thread's work */
            q->cache = CACHE_HIT;
            answer(q, CELER_OK, "", outs, n);
            return send_reply(q);
        }
        q->cache = CACHE_MISS;
    }
    suspend(q);
    if (q->cache == CACHE_MISS) {
        /* an identical request computing right now answers this one too */
        q->waiter.user = q;
        if (!celer_cache_join(q->srv->cache, q->cache_key, &q->waiter)) return MHD_YES;
        q->cache_leader = true;
    }
    if (q->version->n_batch_steps) {
        q->before_batch = true;
        atomic_fetch_add(&q->version->before_batch, 1);
    }
    unadmit(q); /* the job takes its place in the queue now */
    st = celer_sched_submit(q->version->queue, &q->job);
    if (st) {
        /* full queue or a version being unloaded: overloaded; a batch-shape problem: the request */
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        left_before_batch(q);
        reply_status(q, st, msg);
        count_outcome(q->version, false, 0);
        if (q->cache_leader) lead_done(q, st, msg, NULL, 0);
        resume(q);
    }
    return MHD_YES;
}

/* ---- repository API, run off the connection threads ---- */

/* On the registry's action pool: the load or unload is done; answers its request. */
static void repo_action_done(void *user, celer_status st, const char *message) {
    http_req *q = user;
    celer_jbuf_reset(&q->resp);
    if (st) {
        reply_status(q, st, message);
    } else {
        celer_jbuf_raw(&q->resp, "{}", 2);
        reply_json(q, 200);
    }
    resume(q);
}

/* Loads and unloads run on the registry's pool (one thread, a bounded queue): a flood of them
 * waits there, or gets 503 when the queue is full, instead of starting a thread each. */
static enum MHD_Result start_repo_action(http_req *q, const char *model, bool unload) {
    suspend(q); /* before the submit: the pool may answer before it returns */
    celer_status st = celer_registry_submit_action(q->srv->registry, model, unload, repo_action_done, q);
    if (st) {
        reply_status(q, st, celer_error_message());
        resume(q);
    }
    return MHD_YES;
}

/* ---- routes ---- */

typedef enum MHD_Result (*route_fn)(http_req *q, const route_args *a);

static enum MHD_Result h_live(http_req *q, const route_args *a) {
    (void)a;
    reply_json(q, 200);
    return send_reply(q);
}

static enum MHD_Result h_ready(http_req *q, const route_args *a) {
    (void)a;
    if (celer_registry_ready(q->srv->registry))
        reply_json(q, 200);
    else
        reply_status(q, CELER_ERR_UNAVAILABLE, "not every model is ready (see POST /v2/repository/index)");
    return send_reply(q);
}

static enum MHD_Result h_server_meta(http_req *q, const route_args *a) {
    (void)a;
    celer_jbuf_raw(&q->resp,
                   "{\"name\":\"celer\",\"version\":\"0.1.0\",\"extensions\":[\"model_repository\",\"statistics\","
                   "\"binary_tensor_data\",\"model_configuration\"]}",
                   strlen("{\"name\":\"celer\",\"version\":\"0.1.0\",\"extensions\":[\"model_repository\",\"statistics\","
                          "\"binary_tensor_data\",\"model_configuration\"]}"));
    reply_json(q, 200);
    return send_reply(q);
}

/* Runs `fn` on the version a route names, answering 404/503 itself when there is none. */
static enum MHD_Result with_version(http_req *q, const route_args *a, void (*fn)(http_req *, served_version *)) {
    char msg[1024];
    celer_status code = CELER_OK;
    served_version *v = celer_registry_acquire(q->srv->registry, a->model, a->version, &code, msg, sizeof msg);
    if (!v) {
        reply_status(q, code, msg);
        return send_reply(q);
    }
    fn(q, v);
    celer_registry_release(v);
    return send_reply(q);
}

static void model_meta(http_req *q, served_version *v) {
    celer_registry_metadata_json(v, &q->resp);
    reply_json(q, 200);
}
static void model_ready(http_req *q, served_version *v) {
    (void)v;
    reply_json(q, 200);
}
static void model_config(http_req *q, served_version *v) {
    celer_config_to_json(&v->owner->config, &q->resp);
    reply_json(q, 200);
}

static enum MHD_Result h_model_meta(http_req *q, const route_args *a) { return with_version(q, a, model_meta); }
static enum MHD_Result h_model_ready(http_req *q, const route_args *a) { return with_version(q, a, model_ready); }
static enum MHD_Result h_model_config(http_req *q, const route_args *a) { return with_version(q, a, model_config); }

static enum MHD_Result h_stats(http_req *q, const route_args *a) {
    celer_registry_stats_json(q->srv->registry, a->model, &q->resp);
    reply_json(q, 200);
    return send_reply(q);
}

static enum MHD_Result h_infer(http_req *q, const route_args *a) {
    (void)a;
    return start_infer(q);
}

static enum MHD_Result h_predict(http_req *q, const route_args *a) {
    (void)a;
    q->predict = true;
    return start_infer(q);
}

static enum MHD_Result h_index(http_req *q, const route_args *a) {
    (void)a;
    bool ready_only = false;
    if (q->body_len) {
        celer_arena arena;
        celer_arena_init(&arena, 4096, 1 << 20);
        celer_json *doc;
        if (celer_json_parse(q->body, q->body_len, &arena, &doc) == CELER_OK) {
            const celer_json *r = celer_json_get(doc, "ready");
            ready_only = r && r->type == CELER_JSON_BOOL && r->boolean;
        } else {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            celer_arena_free(&arena);
            reply_status(q, CELER_ERR_PARSE, msg);
            return send_reply(q);
        }
        celer_arena_free(&arena);
    }
    celer_registry_index_json(q->srv->registry, ready_only, &q->resp);
    reply_json(q, 200);
    return send_reply(q);
}

static enum MHD_Result h_load(http_req *q, const route_args *a) { return start_repo_action(q, a->model, false); }
static enum MHD_Result h_unload(http_req *q, const route_args *a) { return start_repo_action(q, a->model, true); }

static enum MHD_Result h_metrics(http_req *q, const route_args *a) {
    (void)a;
    celer_metrics_render(q->srv->metrics, &q->resp);
    q->status = 200;
    q->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return send_reply(q);
}

/* The route table: method, path pattern ({m}, {v} match one segment; "{m}:predict" a segment
 * ending in ":predict"), handler. */
static const struct route {
    const char *method, *pattern;
    route_fn fn;
} routes[] = {
    {"GET", "/v2/health/live", h_live},
    {"GET", "/v2/health/ready", h_ready},
    {"GET", "/v2", h_server_meta},
    {"GET", "/v2/models/stats", h_stats},
    {"GET", "/v2/models/{m}", h_model_meta},
    {"GET", "/v2/models/{m}/versions/{v}", h_model_meta},
    {"GET", "/v2/models/{m}/ready", h_model_ready},
    {"GET", "/v2/models/{m}/versions/{v}/ready", h_model_ready},
    {"GET", "/v2/models/{m}/config", h_model_config},
    {"GET", "/v2/models/{m}/versions/{v}/config", h_model_config},
    {"GET", "/v2/models/{m}/stats", h_stats},
    {"GET", "/v2/models/{m}/versions/{v}/stats", h_stats},
    {"POST", "/v2/models/{m}/infer", h_infer},
    {"POST", "/v2/models/{m}/versions/{v}/infer", h_infer},
    {"POST", "/v2/repository/index", h_index},
    {"POST", "/v2/repository/models/{m}/load", h_load},
    {"POST", "/v2/repository/models/{m}/unload", h_unload},
    {"POST", "/v1/models/{m}:predict", h_predict},
    {"GET", "/metrics", h_metrics},
};

#define MAX_SEGMENTS 16

/* The patterns split into segments once, so that matching a request compares segment counts,
 * then lengths, instead of walking every pattern's text (this runs for every request). */
typedef enum seg_kind { SEG_TEXT, SEG_MODEL, SEG_VERSION, SEG_PREDICT } seg_kind;
typedef struct route_seg {
    const char *text;
    size_t len;
    seg_kind kind;
} route_seg;
static struct compiled_route {
    int count;
    route_seg seg[MAX_SEGMENTS];
} compiled[CELER_ARRAY_LEN(routes)];
static pthread_once_t compiled_once = PTHREAD_ONCE_INIT;

static void compile_routes(void) {
    for (size_t r = 0; r < CELER_ARRAY_LEN(routes); r++) {
        struct compiled_route *c = &compiled[r];
        const char *p = routes[r].pattern + 1;
        for (;;) {
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            route_seg *sg = &c->seg[c->count++];
            *sg = (route_seg){p, len, SEG_TEXT};
            if (len == 3 && !memcmp(p, "{m}", 3)) sg->kind = SEG_MODEL;
            else if (len == 3 && !memcmp(p, "{v}", 3)) sg->kind = SEG_VERSION;
            else if (len == 11 && !memcmp(p, "{m}:predict", 11)) sg->kind = SEG_PREDICT;
            if (!end) break;
            p = end + 1;
        }
    }
}

/* Splits a path into segments (in place in `buf`) and their lengths; -1 when malformed. The path
 * is not percent-decoded here: libmicrohttpd decoded it once already, and decoding twice would
 * let "%2572" through a proxy's path rules as "r". */
static int split_path(const char *path, char *buf, size_t cap, char **seg, size_t *seg_len) {
    if (path[0] != '/') return -1;
    size_t n = strlen(path);
    if (n + 1 > cap) return -1;
    memcpy(buf, path, n + 1);
    int count = 0;
    char *p = buf + 1;
    for (;;) {
        if (count == MAX_SEGMENTS) return -1;
        seg[count++] = p;
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        seg_len[count - 1] = slash ? (size_t)(slash - p) : strlen(p);
        if (!slash) break;
        p = slash + 1;
    }
    return count;
}

/* Whether the request's segments match route c; fills the captured args. */
static bool match(const struct compiled_route *c, char *const *seg, const size_t *seg_len, int count,
                  route_args *a) {
    if (c->count != count) return false;
    a->model = a->version = NULL;
    for (int i = 0; i < count; i++) {
        const route_seg *p = &c->seg[i];
        size_t n = seg_len[i];
        switch (p->kind) {
        case SEG_TEXT:
            if (n != p->len || memcmp(p->text, seg[i], n)) return false;
            break;
        case SEG_MODEL:
            if (!n) return false;
            a->model = seg[i];
            break;
        case SEG_VERSION:
            if (!n) return false;
            a->version = seg[i];
            break;
        case SEG_PREDICT:
            if (n <= 8 || n - 8 >= sizeof a->predict_model || memcmp(seg[i] + n - 8, ":predict", 8)) return false;
            memcpy(a->predict_model, seg[i], n - 8);
            a->predict_model[n - 8] = 0;
            a->model = a->predict_model;
            break;
        }
    }
    return true;
}

enum { ROUTE_MALFORMED = -1, ROUTE_UNKNOWN = -2, ROUTE_METHOD = -3 };

/* Finds q's route from its method and path, once, when its headers arrive: q->route is the index
 * in routes[] (q->args its captures) or a ROUTE_ value (q->allow set for ROUTE_METHOD). */
static void find_route(http_req *q) {
    char *seg[MAX_SEGMENTS];
    size_t seg_len[MAX_SEGMENTS];
    int count = split_path(q->path, q->segbuf, sizeof q->segbuf, seg, seg_len);
    q->route = count < 0 ? ROUTE_MALFORMED : ROUTE_UNKNOWN;
    for (size_t i = 0; count > 0 && i < CELER_ARRAY_LEN(routes); i++) {
        route_args a;
        if (!match(&compiled[i], seg, seg_len, count, &a)) continue;
        if (strcmp(routes[i].method, q->method)) {
            /* remember what the path takes, for the 405's Allow header */
            if (!strstr(q->allow, routes[i].method)) {
                size_t n = strlen(q->allow);
                snprintf(q->allow + n, sizeof q->allow - n, "%s%s", n ? ", " : "", routes[i].method);
            }
            q->route = ROUTE_METHOD;
            continue;
        }
        q->route = (int)i;
        q->args = a;
        if (a.model == a.predict_model) q->args.model = q->args.predict_model;
        return;
    }
}

/* Answers a request whose route was not found. */
static enum MHD_Result reply_no_route(http_req *q) {
    char msg[MAX_URL + 64];
    if (q->route == ROUTE_MALFORMED) {
        reply_error(q, 400, "malformed path");
    } else if (q->route == ROUTE_METHOD) {
        snprintf(msg, sizeof msg, "method %s is not allowed on %s", q->method, q->path);
        reply_error(q, 405, msg);
    } else {
        snprintf(msg, sizeof msg, "no such endpoint: %s %s", q->method, q->path);
        reply_error(q, 404, msg);
    }
    return send_reply(q);
}

/* ---- MHD callbacks ---- */

static void hex_id(char *out, unsigned long long v) {
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

/* A client's X-Request-Id is echoed in a header and the access log: only visible ASCII is taken. */
static bool request_id_ok(const char *id) {
    size_t n = 0;
    for (; id[n]; n++)
        if (id[n] < 0x21 || id[n] > 0x7e || n + 1 >= 64) return false;
    return n > 0;
}

/* Whether the route computes on a model or pipeline (its queue is asked before the body is read). */
static bool is_infer_route(int route) {
    return route >= 0 && (routes[route].fn == h_infer || routes[route].fn == h_predict);
}

/* Counts `total` bytes of body for q against what all connections may hold together; false
 * with a 503 set when that is full (the bytes come back when the request completes). */
static bool reserve_body(http_req *q, size_t total) {
    celer_http *srv = q->srv;
    if (total <= q->body_reserved) return true;
    long long more = (long long)(total - q->body_reserved);
    long long now = atomic_fetch_add(&srv->body_bytes, more) + more;
    if (now > srv->opts->max_body_total_bytes) {
        atomic_fetch_sub(&srv->body_bytes, more);
        char msg[160];
        snprintf(msg, sizeof msg, "request bodies being received hold %lld bytes already (--max-body-total-bytes %lld)",
                 now - more, srv->opts->max_body_total_bytes);
        reply_status(q, CELER_ERR_UNAVAILABLE, msg);
        return false;
    }
    q->body_reserved = total;
    return true;
}

/* Frees q's body and its reservation: the request was answered without it. */
static void drop_body(http_req *q) {
    free(q->body);
    q->body = NULL;
    q->body_len = q->body_cap = 0;
    atomic_fetch_sub(&q->srv->body_bytes, (long long)q->body_reserved);
    q->body_reserved = 0;
    atomic_store(&q->state, REQ_READY);
}

/* Decides what it can from the headers alone, before any body byte is read or buffered: a path
 * too long or unknown, a body over its cap or over what all connections may buffer together, a
 * model that is missing, loading or whose queue is full. Returns false with the reply set. */
static bool admit(http_req *q, struct MHD_Connection *conn, const char *url) {
    celer_http *srv = q->srv;
    /* q counts in srv->active before this is read, so shutdown either sees q or q sees it */
    if (atomic_load(&srv->draining)) {
        reply_status(q, CELER_ERR_UNAVAILABLE, "the server is shutting down");
        return false;
    }
    if (strlen(url) >= MAX_URL) {
        char msg[96];
        snprintf(msg, sizeof msg, "request path longer than %d bytes", MAX_URL - 1);
        reply_error(q, 414, msg);
        return false;
    }
    find_route(q);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    char msg[1024];
    if (declared > (unsigned long long)srv->opts->max_body_bytes) {
        snprintf(msg, sizeof msg, "request body of %llu bytes exceeds the limit of %lld bytes (--max-body-bytes)",
                 declared, srv->opts->max_body_bytes);
        reply_status(q, CELER_ERR_LIMIT, msg);
        return false;
    }
    if (q->route < 0) return true; /* answered once the body (if any) is discarded */
    if (is_infer_route(q->route)) {
        celer_status code = CELER_OK;
        const char *model = q->args.model;
        q->version = celer_registry_acquire(srv->registry, model, q->args.version, &code, msg, sizeof msg);
        if (!q->version) {
            reply_status(q, code, msg);
            return false;
        }
        if (!(q->admitted = celer_sched_queue_admit(q->version->queue))) {
            snprintf(msg, sizeof msg, "queue of model '%s' is full", model);
            reply_status(q, CELER_ERR_UNAVAILABLE, msg);
            count_outcome(q->version, false, 0);
            return false;
        }
    }
    if (declared) { /* one allocation, not grown chunk by chunk; up to 1 MiB before any byte came */
        if (!reserve_body(q, (size_t)declared + 1)) return false;
        size_t cap = (size_t)CELER_MIN(declared, 1ull << 20) + 1;
        q->body = celer_malloc(cap);
        if (!q->body) {
            reply_status(q, CELER_ERR_NOMEM, "out of memory for the request body");
            return false;
        }
        q->body_cap = cap;
    }
    return true;
}

/* Sets when q's connection must have delivered what it is reading now; 0: no deadline. */
static void set_deadline(http_req *q, int secs) {
    if (q->cctx) atomic_store(&q->cctx->deadline_ns, secs > 0 ? now_ns() + (int64_t)secs * 1000000000 : 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    celer_http *srv = cls;
    http_req *q = *con_cls;
    if (!q) {
        q = celer_calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        q->srv = srv;
        q->conn = conn;
        q->start_ns = now_ns();
        q->status = 500;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        q->cctx = ci ? ci->socket_context : NULL;
        copy_text(q->method, sizeof q->method, method);
        copy_text(q->path, sizeof q->path, url);
        celer_jbuf_init(&q->resp, 0);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && request_id_ok(rid))
            copy_text(q->request_id, sizeof q->request_id, rid);
        else
            hex_id(q->request_id, (unsigned long long)atomic_fetch_add(&srv->next_id, 1) + 1);
        atomic_fetch_add(&srv->active, 1);
        *con_cls = q;
        if (!admit(q, conn, url)) {
            /* Decided from the headers: nothing of the body is buffered. A client that waits for
             * "100 Continue" gets the answer now and never sends its body; any other is answered
             * once its body has been read and dropped (within --body-timeout-secs): closing on
             * unread bytes would reset the connection and lose the answer. */
            drop_body(q);
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if (expect && !strcasecmp(expect, "100-continue")) return send_reply(q);
            set_deadline(q, srv->opts->body_timeout_secs);
            return MHD_YES;
        }
        set_deadline(q, srv->opts->body_timeout_secs);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (atomic_load(&q->state) == REQ_READY) return MHD_YES; /* answered already: discarded */
        if (q->body_len + n > (size_t)srv->opts->max_body_bytes) {
            char msg[160];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %lld bytes (--max-body-bytes)",
                     srv->opts->max_body_bytes);
            reply_status(q, CELER_ERR_LIMIT, msg);
            drop_body(q); /* the rest is read and discarded; the answer goes at the end */
            return MHD_YES;
        }
        if (q->body_len + n + 1 > q->body_cap) {
            size_t cap = CELER_MAX(q->body_cap * 2, q->body_len + n + 1);
            if (cap > (size_t)srv->opts->max_body_bytes + 1) cap = (size_t)srv->opts->max_body_bytes + 1;
            if (!reserve_body(q, cap)) {
                drop_body(q);
                return MHD_YES;
            }
            char *b = celer_realloc(q->body, cap);
            if (!b) {
                reply_status(q, CELER_ERR_NOMEM, "out of memory for the request body");
                drop_body(q);
                return MHD_YES;
            }
            q->body = b;
            q->body_cap = cap;
        }
        memcpy(q->body + q->body_len, upload_data, n);
        q->body_len += n;
        q->body[q->body_len] = 0;
        return MHD_YES;
    }
    switch (atomic_load(&q->state)) {
    case REQ_READY: return send_reply(q);
    case REQ_WAITING: return MHD_YES; /* spurious call while suspended */
    case REQ_READING: break;
    }
    set_deadline(q, 0); /* the whole request is here: computing and answering it has no deadline here */
    if (q->route < 0) return reply_no_route(q);
    return routes[q->route].fn(q, &q->args);
}

/* The path for the text access log: bytes outside visible ASCII (a decoded %0a, say) as %XX, so
 * a path cannot forge log lines. */
static void log_escape(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '"' && *p != '%') out[o++] = (char)*p;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
}

static void log_request(const celer_http *srv, const http_req *q, struct MHD_Connection *conn) {
    if (srv->opts->quiet) return;
    char addr[64] = "-";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, addr, sizeof addr);
    double ms = (double)(now_ns() - q->start_ns) / 1e6;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (srv->opts->log_format && !strcmp(srv->opts->log_format, "json")) {
        celer_jbuf b;
        celer_jbuf_init(&b, 1 << 16);
        celer_jbuf_raw(&b, "{\"time\":", 8);
        celer_jbuf_str(&b, when);
        celer_jbuf_raw(&b, ",\"remote\":", 10);
        celer_jbuf_str(&b, addr);
        celer_jbuf_raw(&b, ",\"method\":", 10);
        celer_jbuf_str(&b, q->method);
        celer_jbuf_raw(&b, ",\"path\":", 8);
        celer_jbuf_str(&b, q->path);
        celer_jbuf_raw(&b, ",\"status\":", 10);
        celer_jbuf_int(&b, q->status);
        celer_jbuf_raw(&b, ",\"duration_ms\":", 15);
        celer_jbuf_double(&b, ms);
        celer_jbuf_raw(&b, ",\"request_id\":", 14);
        celer_jbuf_str(&b, q->request_id);
        celer_jbuf_raw(&b, "}\n", 2);
        if (!b.status) fwrite(b.data, 1, b.len, stderr);
        celer_jbuf_free(&b);
    } else {
        char method[64], path[3 * MAX_URL];
        log_escape(q->method, method, sizeof method);
        log_escape(q->path, path, sizeof path);
        fprintf(stderr, "%s %s \"%s %s\" %d %.3fms id=%s\n", when, addr, method, path, q->status, ms, q->request_id);
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    celer_http *srv = cls;
    http_req *q = *con_cls;
    if (!q) return;
    /* a client that hung up while its request ran: the worker still owns q until it resumes,
     * and MHD only completes a suspended connection after it was resumed */
    log_request(srv, q, conn);
    set_deadline(q, srv->opts->header_timeout_secs); /* for the connection's next request */
    int cls_i = q->status / 100;
    if (cls_i >= 1 && cls_i <= 5) celer_metrics_add(srv->m_requests[cls_i], 1);
    if (q->version) {
        unadmit(q);
        celer_pipeline_run_end(q->run); /* images a failed or cancelled run still holds, and their budget */
        celer_arena_free(&q->arena);
        celer_registry_release(q->version);
    }
    celer_jbuf_free(&q->resp);
    drop_body(q);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
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

static void cache_metrics(celer_http *srv) {
    celer_metrics *m = srv->metrics;
    const char *tier = "tier=\"memory\"";
    srv->m_cache_hits = celer_metrics_counter(m, "celer_cache_hits_total", "Results answered from the cache.", tier);
    srv->m_cache_misses = celer_metrics_counter(m, "celer_cache_misses_total", "Cache lookups that found nothing.", tier);
    srv->m_cache_lookup = celer_metrics_histogram(m, "celer_cache_lookup_duration_seconds",
                                                  "Time to look a result up (and unpack it on a hit).", tier,
                                                  celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    celer_metrics_counter_fn(m, "celer_cache_evictions_total", "Entries evicted to stay under the byte bound.", tier,
                             cache_evictions, srv->cache);
    celer_metrics_counter_fn(m, "celer_cache_expirations_total", "Entries dropped past their TTL.", tier,
                             cache_expirations, srv->cache);
    celer_metrics_counter_fn(m, "celer_cache_coalesced_total",
                             "Requests answered by an identical request computing at the same time.", "",
                             cache_coalesced, srv->cache);
    celer_metrics_gauge_fn(m, "celer_cache_bytes", "Bytes held (values and entry overhead).", tier, cache_bytes,
                           srv->cache);
    celer_metrics_gauge_fn(m, "celer_cache_entries", "Entries held.", tier, cache_entries, srv->cache);
    if (!srv->redis) return;
    tier = "tier=\"redis\"";
    srv->m_redis_hits = celer_metrics_counter(m, "celer_cache_hits_total", "Results answered from the cache.", tier);
    srv->m_redis_misses = celer_metrics_counter(m, "celer_cache_misses_total", "Cache lookups that found nothing.", tier);
    srv->m_redis_lookup = celer_metrics_histogram(m, "celer_cache_lookup_duration_seconds",
                                                  "Time to look a result up (and unpack it on a hit).", tier,
                                                  celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    celer_metrics_counter_fn(m, "celer_cache_errors_total",
                             "Cache commands that failed or timed out (the request went on without the tier).", tier,
                             redis_errors, srv->redis);
    celer_metrics_gauge_fn(m, "celer_cache_up", "1 while the tier answers.", tier, redis_up, srv->redis);
}

/* ---- slow clients ----
 * MHD's idle timeout restarts on every byte, so a client sending a byte a second would hold its
 * connection for ever. Each connection gets a deadline (its request's headers must be complete by
 * then, then its body); a reaper thread shuts down the sockets past it, and MHD closes them as on
 * any network error. The CLOSED notification takes the lock before MHD closes the descriptor, so
 * the reaper never shuts down a descriptor that was closed and reused. */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    celer_http *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_ctx *c = ci ? celer_calloc(1, sizeof *c) : NULL;
        if (!c) return; /* untracked: only MHD's idle timeout applies to it */
        c->fd = ci->connect_fd;
        atomic_store(&c->deadline_ns, now_ns() + (int64_t)srv->opts->header_timeout_secs * 1000000000);
        pthread_mutex_lock(&srv->conns_lock);
        c->next = srv->conns;
        if (srv->conns) srv->conns->prev = c;
        srv->conns = c;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_ctx *c = *socket_context;
        if (!c) return;
        pthread_mutex_lock(&srv->conns_lock);
        if (c->prev) c->prev->next = c->next;
        else srv->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        pthread_mutex_unlock(&srv->conns_lock);
        free(c);
        *socket_context = NULL;
    }
}

static void *reaper_main(void *p) {
    celer_http *srv = p;
    pthread_mutex_lock(&srv->conns_lock);
    while (!srv->reaper_stop) {
        int64_t now = now_ns();
        for (conn_ctx *c = srv->conns; c; c = c->next) {
            int64_t d = atomic_load(&c->deadline_ns);
            if (d && d < now) {
                atomic_store(&c->deadline_ns, 0);
                shutdown(c->fd, SHUT_RDWR);
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 250000000; /* deadlines are whole seconds: a quarter of one is precise enough */
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&srv->reaper_wake, &srv->conns_lock, &until);
    }
    pthread_mutex_unlock(&srv->conns_lock);
    return NULL;
}

/* Connections allowed at once: below the open-files limit (raised to its hard maximum first), so
 * accept() never fails for want of a descriptor; the rest is left for model files, Redis and logs. */
static unsigned connection_limit(const celer_server_options *opts) {
    struct rlimit rl;
    unsigned limit = 10000;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        const rlim_t reserve = 64;
        if (rl.rlim_cur != RLIM_INFINITY)
            limit = rl.rlim_cur > 2 * reserve ? (unsigned)CELER_MIN(rl.rlim_cur - reserve, (rlim_t)limit)
                                              : (unsigned)CELER_MAX(rl.rlim_cur / 2, 1);
    }
    if (opts->max_connections > 0) limit = CELER_MIN(limit, (unsigned)opts->max_connections);
    return limit;
}

celer_status celer_http_start(const celer_server_options *opts, celer_registry *registry, celer_metrics *metrics,
                              celer_cache *cache, celer_redis *redis, celer_http **out) {
    pthread_once(&compiled_once, compile_routes);
    celer_http *srv = calloc(1, sizeof *srv);
    if (!srv) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    srv->opts = opts;
    srv->registry = registry;
    srv->metrics = metrics;
    srv->cache = cache;
    srv->redis = redis;
    cache_metrics(srv);
    for (int c = 1; c <= 5; c++) {
        char labels[32];
        snprintf(labels, sizeof labels, "code=\"%dxx\"", c);
        srv->m_requests[c] = celer_metrics_counter(metrics, "celer_http_requests_total", "HTTP requests by status class.", labels);
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opts->http_port)};
    if (inet_pton(AF_INET, opts->http_address, &addr.sin_addr) != 1) {
        free(srv);
        return celer_errorf(CELER_ERR_INVALID, "--http-address '%s' is not an IPv4 address", opts->http_address);
    }
    srv->max_connections = connection_limit(opts);
    srv->listen_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&srv->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->reaper_wake, &ca);
    pthread_condattr_destroy(&ca);
    /* MHD_USE_ITC: quiescing (closing the listener at shutdown) needs it with a thread pool */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    srv->daemon = MHD_start_daemon(flags, (uint16_t)opts->http_port, NULL, NULL, on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                   MHD_OPTION_THREAD_POOL_SIZE, (unsigned)CELER_MAX(opts->http_threads, 1),
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->request_timeout_secs,
                                   MHD_OPTION_CONNECTION_LIMIT, srv->max_connections,
                                   /* room for a request line up to MAX_URL and headers, and for MHD's own 414/431 */
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    if (srv->daemon && !pthread_create(&srv->reaper, NULL, reaper_main, srv)) srv->reaper_started = true;
    if (!srv->daemon || !srv->reaper_started) {
        if (srv->daemon) MHD_stop_daemon(srv->daemon);
        pthread_cond_destroy(&srv->reaper_wake);
        pthread_mutex_destroy(&srv->conns_lock);
        free(srv);
        return celer_errorf(CELER_ERR_IO, "cannot listen on %s:%d (in use, or not allowed)", opts->http_address,
                            opts->http_port);
    }
    *out = srv;
    return CELER_OK;
}

void celer_http_drain(celer_http *h) {
    if (!h || !h->daemon) return;
    atomic_store(&h->draining, true);
    /* MHD stops polling the listener and hands it back. Shutting it down refuses new connections at
     * once instead of leaving them in the backlog unanswered; it is closed only after the daemon
     * stopped, as MHD's threads may still be taking it out of their epoll sets. */
    h->listen_fd = MHD_quiesce_daemon(h->daemon);
    if (h->listen_fd != MHD_INVALID_SOCKET) shutdown(h->listen_fd, SHUT_RDWR);
}

int celer_http_active(const celer_http *h) { return h ? atomic_load(&h->active) : 0; }
int celer_http_suspended(const celer_http *h) { return h ? atomic_load(&h->suspended) : 0; }

void celer_http_stop(celer_http *h) {
    if (!h) return;
    if (h->daemon) MHD_stop_daemon(h->daemon);
    if (h->listen_fd != MHD_INVALID_SOCKET) close(h->listen_fd);
    pthread_mutex_lock(&h->conns_lock);
    h->reaper_stop = true;
    pthread_cond_signal(&h->reaper_wake);
    pthread_mutex_unlock(&h->conns_lock);
    pthread_join(h->reaper, NULL);
    pthread_cond_destroy(&h->reaper_wake);
    pthread_mutex_destroy(&h->conns_lock);
    free(h);
}
