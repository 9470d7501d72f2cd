/* HTTP front end on libmicrohttpd: routes, request bodies, the KServe v2 endpoints, errors as
 * {"error": "..."}, and the access log.
 *
 * Connection threads (MHD's pool) read bodies, decode requests and encode responses; they never
 * compute. An inference request is begun on the request service from its headers, decoded with
 * the KServe codec (kserve.c) and started there (service.h: cache, coalescing, pipelines, queues
 * and statistics live behind it); when it goes to a worker its connection is suspended, and the
 * worker encodes the response and resumes the connection. Loads and unloads of the repository API
 * run on the registry's action pool the same way.
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

#include "auth.h"
#include "body.h"
#include "compress.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "shm.h"
#include "trace.h"

typedef enum req_state { REQ_READING, REQ_WAITING, REQ_READY } req_state;

/* One open connection, for the reaper: a trickle of bytes restarts MHD's idle timeout, so the
 * total time a request's headers, then its body, may take is enforced here. */
typedef struct conn_ctx {
    struct conn_ctx *prev, *next;
    int fd;
    _Atomic int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none (the request is being answered) */
    atomic_bool busy;            /* a request is being received or answered (else idle, for the drain) */
    celer_tls_out *tls_out;      /* HTTPS: the session's sending (tls.h); NULL on plain HTTP */
} conn_ctx;

struct celer_http {
    struct MHD_Daemon *daemon;
    const celer_server_options *opts;
    celer_registry *registry;
    celer_metrics *metrics;
    atomic_ullong next_id;
    atomic_int active;         /* requests received and not completed (for graceful shutdown) */
    atomic_int suspended;      /* of those, waiting on a worker: the daemon must not stop under them */
    atomic_bool draining;      /* shutting down: every answer closes its connection */
    atomic_bool closed;        /* the drain delay is over: new requests get 503 */
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
    celer_service *service;
};

#define MAX_URL 2048 /* longer paths get 414 */

typedef struct route_args {
    const char *model, *version;
    const char *file; /* /docs/assets/{f} */
    const char *region; /* /v2/{system,cuda}sharedmemory/region/{r}/... */
    char predict_model[256]; /* "{m}:predict" segment without its suffix */
} route_args;

/* A large answer, sent from the output tensors as the socket drains (libmicrohttpd calls
 * read_answer for each block), compressed on the way when the client asked. */
typedef struct http_answer {
    celer_body body;
    bool compress, input_done;
    celer_deflate z;
    size_t stage_len, stage_off; /* compressing: body bytes read and not yet deflated */
    uint8_t stage[64 << 10];
} http_answer;

typedef struct http_req {
    celer_http *srv;
    struct MHD_Connection *conn;
    conn_ctx *cctx; /* NULL when the connection could not be tracked */
    char method[16];
    char path[MAX_URL];
    char segbuf[MAX_URL]; /* the path split into segments; route_args point into it */
    char request_id[64];
    celer_auth_id key;         /* who its API key says it is (auth.h): its NAME is in the access log */
    char challenge[128];       /* a refusal's WWW-Authenticate */
    bool refused_body;         /* refused from its headers for its key while a body was coming: answered
                                  at once, the body unread, and the connection closed */
    int64_t start_ns;
    int route;            /* index in routes[], or a ROUTE_ value */
    route_args args;
    char *body;
    size_t body_len, body_cap;
    size_t body_reserved; /* counted in srv->body_bytes */
    celer_coding coding;  /* Content-Encoding: a gzip or deflate body is inflated as it comes */
    celer_inflate inflate;
    celer_coding accept;  /* the coding a large answer takes (Accept-Encoding) */
    http_answer *answer;  /* an answer sent from the tensors (owned; else resp holds it) */
    bool body_refused;    /* append_body set the reply (413, 503) */
    _Atomic req_state state;
    /* response */
    int status;
    celer_jbuf resp;
    size_t json_len; /* < resp.len: binary tail; send Inference-Header-Content-Length */
    const char *content_type;
    const char *csp; /* Content-Security-Policy of a page */
    bool retry_after;
    char allow[32]; /* 405: the methods the path takes */
    /* inference: the service's call, and the request decoded for it (in the call's arena) */
    celer_service_call *call;
    celer_kserve_request kreq;
    bool predict;               /* KServe v1 :predict */
    bool parked;                /* suspended for the service: a worker resumes it */
    celer_service_cache cache;  /* for X-Celer-Cache */
    /* a load or unload: its body's JSON, which the parameters point into until the answer */
    celer_arena repo_arena;
    bool has_repo_arena;
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
    celer_log_verbose(1, "%s %s answered %d: %s", q->method, q->path, status, message);
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

static enum MHD_Result queue_with_headers(http_req *q, struct MHD_Response *r, size_t plain_len, bool compressed);
static enum MHD_Result send_answer(http_req *q);

static enum MHD_Result send_reply(http_req *q) {
    if (q->answer) return send_answer(q);
    if (q->resp.status) { /* the encoder hit its cap (the server's answer is too large: its fault) or malloc failed */
        char msg[256];
        snprintf(msg, sizeof msg, "response too large or out of memory: %s", celer_status_name(q->resp.status));
        celer_status st = q->resp.status == CELER_ERR_LIMIT ? CELER_ERR_INTERNAL : q->resp.status;
        celer_jbuf_free(&q->resp);
        celer_jbuf_init(&q->resp, 0);
        reply_status(q, st, msg);
        q->json_len = 0;
    }
    bool compressed = false;
    size_t plain_len = q->resp.len; /* Inference-Header-Content-Length counts uncompressed bytes */
    if (q->accept != CELER_CODING_IDENTITY && q->resp.len >= (size_t)q->srv->opts->compress_min_bytes &&
        q->resp.len) {
        /* on failure (memory) the answer goes uncompressed, as Triton does */
        celer_jbuf z;
        celer_jbuf_init(&z, q->resp.len + (q->resp.len >> 3) + 1024);
        if (!celer_compress(q->accept, q->resp.data, q->resp.len, &z)) {
            celer_jbuf_free(&q->resp);
            q->resp = z;
            compressed = true;
        } else {
            celer_jbuf_free(&z);
        }
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
    enum MHD_Result ret = queue_with_headers(q, r, plain_len, compressed);
    /* HTTPS: libmicrohttpd writes this header and body back to back; they go in one write (tls.h).
     * Not when it sends no body (HEAD, 204, 304): the completion flushes a header held in vain. */
    if (ret == MHD_YES && len && q->cctx && q->cctx->tls_out && strcmp(q->method, "HEAD") && q->status >= 200 &&
        q->status != 204 && q->status != 304)
        celer_tls_out_hold_next(q->cctx->tls_out);
    return ret;
}

/* Adds q's headers to r and queues it. plain_len: the answer's uncompressed size. */
static enum MHD_Result queue_with_headers(http_req *q, struct MHD_Response *r, size_t plain_len, bool compressed) {
    MHD_add_response_header(r, "Content-Type", q->content_type ? q->content_type : "application/json");
    MHD_add_response_header(r, "X-Request-Id", q->request_id);
    if (compressed) MHD_add_response_header(r, "Content-Encoding", celer_coding_names[q->accept]);
    if (plain_len >= (size_t)q->srv->opts->compress_min_bytes) /* this answer depends on Accept-Encoding */
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    if (q->status == 415) MHD_add_response_header(r, "Accept-Encoding", "gzip, deflate");
    if (q->json_len && q->json_len < plain_len) {
        char hl[32];
        snprintf(hl, sizeof hl, "%zu", q->json_len);
        MHD_add_response_header(r, "Inference-Header-Content-Length", hl);
    }
    if (q->retry_after) MHD_add_response_header(r, "Retry-After", "1");
    if (q->csp) MHD_add_response_header(r, "Content-Security-Policy", q->csp);
    if (q->cache != CELER_SERVICE_CACHE_NONE)
        MHD_add_response_header(r, "X-Celer-Cache", celer_service_cache_names[q->cache]);
    if (q->status == 405) MHD_add_response_header(r, "Allow", q->allow);
    if (q->challenge[0]) MHD_add_response_header(r, "WWW-Authenticate", q->challenge);
    /* a refused key's body is never read: the connection cannot carry another request */
    if (atomic_load(&q->srv->draining) || q->refused_body) MHD_add_response_header(r, "Connection", "close");
    char tp[CELER_TRACEPARENT_LEN + 1];
    const char *ts;
    if (celer_service_traceparent(q->call, tp, &ts)) { /* a traced request: its own span is the parent now */
        MHD_add_response_header(r, "traceparent", tp);
        if (ts) MHD_add_response_header(r, "tracestate", ts);
    }
    enum MHD_Result ret = MHD_queue_response(q->conn, (unsigned)q->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* libmicrohttpd's reader of a large answer: the next block of it, from the tensors, deflated when
 * the client asked. On the connection's thread, while q lives. */
static ssize_t read_answer(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    http_answer *a = cls;
    if (!a->compress) {
        size_t n = celer_body_read(&a->body, buf, max);
        return n ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t w = 0;
    while (!w) { /* deflate may take input without giving output yet */
        if (a->z.done) return MHD_CONTENT_READER_END_OF_STREAM;
        if (a->stage_off == a->stage_len && !a->input_done) {
            a->stage_len = celer_body_read(&a->body, a->stage, sizeof a->stage);
            a->stage_off = 0;
            a->input_done = !a->stage_len;
        }
        size_t k = a->stage_len - a->stage_off;
        w = celer_deflate_step(&a->z, a->stage + a->stage_off, &k, buf, max, a->input_done);
        a->stage_off += k;
    }
    return (ssize_t)w;
}

/* Sends q's large answer from its tensors (chunked when compressed: its size is not known). */
static enum MHD_Result send_answer(http_req *q) {
    http_answer *a = q->answer;
    a->compress = q->accept != CELER_CODING_IDENTITY && a->body.total >= (size_t)q->srv->opts->compress_min_bytes &&
                  !celer_deflate_init(&a->z, q->accept); /* on failure: uncompressed */
    struct MHD_Response *r =
        MHD_create_response_from_callback(a->compress ? MHD_SIZE_UNKNOWN : a->body.total, 256 << 10, read_answer, a, NULL);
    if (!r) return MHD_NO;
    return queue_with_headers(q, r, a->body.total, a->compress);
}

static void answer_free(http_answer *a) {
    if (!a) return;
    celer_deflate_end(&a->z);
    celer_body_free(&a->body);
    free(a);
}

/* ---- suspension: a request waits for a worker with its connection suspended ---- */

static void suspend(http_req *q) {
    q->parked = true;
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

/* ---- inference: the KServe codec around the request service ---- */

static void svc_suspend(void *user) { suspend(user); }
static void svc_resume(void *user) { resume(user); }

/* The response cache's value: json_len (8 bytes), a content-type byte, the body. */
#define KEPT_HEADER 9

static void keep_response(http_req *q) {
    size_t len = KEPT_HEADER + q->resp.len;
    char *v = celer_malloc(len);
    if (!v) return;
    uint64_t jl = q->json_len;
    memcpy(v, &jl, 8);
    v[8] = q->content_type && !strcmp(q->content_type, "application/octet-stream");
    memcpy(v + KEPT_HEADER, q->resp.data, q->resp.len);
    celer_service_keep_response(q->call, v, len);
    free(v);
}

/* Answers q from a kept response; false when there is none. */
static bool answer_kept(http_req *q, const char *header_len, const char *content_type) {
    const served_version *v = celer_service_version(q->call);
    const char *parts[] = {"http", q->predict ? "predict" : "infer", header_len,
                           v->pipeline && content_type ? content_type : ""}; /* pipelines read raw images by it */
    celer_jbuf_reset(&q->resp);
    if (!celer_service_find_response(q->call, parts, (int)CELER_ARRAY_LEN(parts), q->body, q->body_len, &q->resp))
        return false;
    if (q->resp.len < KEPT_HEADER) { /* not ours: cannot happen, but never answer garbage */
        celer_jbuf_reset(&q->resp);
        reply_status(q, CELER_ERR_INTERNAL, "malformed response cache entry");
        return true;
    }
    uint64_t jl;
    memcpy(&jl, q->resp.data, 8);
    q->content_type = q->resp.data[8] ? "application/octet-stream" : "application/json";
    memmove(q->resp.data, q->resp.data + KEPT_HEADER, q->resp.len - KEPT_HEADER);
    q->resp.len -= KEPT_HEADER;
    q->json_len = (size_t)jl;
    q->status = 200;
    q->cache = CELER_SERVICE_CACHE_HIT;
    return true;
}

/* An infer answer whose tensors are large: encoded as parts (the JSON, then the tensors where they
 * lie), the outputs kept until the call ends, and sent by read_answer as the client reads. When
 * they cannot be kept (another request's), the parts are copied into q->resp, as a small answer. */
static celer_status answer_from_tensors(http_req *q, const celer_service_result *r) {
    const served_version *v = r->version;
    size_t cap = (size_t)q->srv->opts->max_response_bytes;
    http_answer *a = celer_calloc(1, sizeof *a);
    if (!a) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the answer");
    q->answer = a;
    celer_body_init(&a->body, 0);
    celer_status st = celer_kserve_encode_infer_body(&q->kreq, v->owner->name, v->version_str, v->output_names,
                                                     r->outputs, r->n_outputs, &a->body, &q->json_len);
    celer_body_finish(&a->body);
    if (!st) st = a->body.head.status;
    if (st == CELER_ERR_LIMIT)
        return celer_errorf(st, "the JSON of the answer is over %zu bytes: ask for the outputs in binary "
                            "(binary_data_output), which is sent from the tensors", a->body.head.max);
    if (st) return celer_error_wrap(st, "encoding the response");
    if (a->body.total > cap)
        return celer_errorf(CELER_ERR_LIMIT, "the answer would be %zu bytes, over --max-response-bytes (%zu): ask "
                            "for fewer rows or outputs, or raise the flag", a->body.total, cap);
    st = a->body.n_refs ? celer_service_keep_outputs(q->call) : CELER_OK;
    if (st == CELER_ERR_UNSUPPORTED) { /* copied, within what one buffer holds */
        celer_body_flatten(&a->body, &q->resp);
        answer_free(a);
        q->answer = NULL;
        if (q->resp.status == CELER_ERR_LIMIT)
            return celer_errorf(CELER_ERR_LIMIT, "the answer (another request's result, which is copied) is over "
                                "%zu bytes", q->resp.max);
        return q->resp.status ? celer_error_wrap(q->resp.status, "encoding the response") : CELER_OK;
    }
    return st ? celer_error_wrap(st, "keeping the outputs for the answer") : CELER_OK;
}

/* The service's answer, encoded as the request asked for it (on a worker, or on the connection
 * thread for a cache hit or a refused request). */
static celer_status svc_done(void *user, const celer_service_result *r) {
    http_req *q = user;
    const served_version *v = r->version;
    q->cache = r->cache;
    celer_jbuf_reset(&q->resp);
    if (r->status) {
        reply_status(q, r->status, r->message);
        return CELER_OK;
    }
    celer_status es;
    bool streamed = false;
    size_t cap = (size_t)q->srv->opts->max_response_bytes;
    q->resp.max = CELER_MIN(cap, (size_t)1 << 30); /* what one buffer holds: JSON, and answers not streamed */
    if (q->kreq.object_form) {
        es = celer_kserve_encode_object(q->kreq.object_single, v->output_names, r->outputs, r->n_outputs, &q->resp);
        q->json_len = 0;
    } else if (q->predict) {
        es = celer_kserve_encode_predict(v->output_names, r->outputs, r->n_outputs, &q->resp);
        q->json_len = 0;
    } else if (celer_outputs_bytes(r->outputs, r->n_outputs) >= CELER_BODY_STREAM_MIN) {
        es = answer_from_tensors(q, r); /* with its own message */
        streamed = true;
    } else {
        es = celer_kserve_encode_infer(&q->kreq, v->owner->name, v->version_str, v->output_names, r->outputs,
                                       r->n_outputs, &q->resp, &q->json_len);
    }
    if (es) {
        char msg[1024];
        if (streamed)
            snprintf(msg, sizeof msg, "%s", celer_error_message());
        else if (es == CELER_ERR_LIMIT && q->resp.max < cap)
            snprintf(msg, sizeof msg, "the answer is over %zu bytes, what one buffer holds (JSON data, BYTES outputs, "
                     ":predict and business objects are built in one): ask for the outputs in binary", q->resp.max);
        else if (es == CELER_ERR_LIMIT)
            snprintf(msg, sizeof msg, "the answer is over %zu bytes (--max-response-bytes): ask for fewer rows or "
                     "outputs, or raise the flag", cap);
        else
            snprintf(msg, sizeof msg, "encoding the response: %s", celer_error_message());
        answer_free(q->answer);
        q->answer = NULL;
        celer_jbuf_reset(&q->resp);
        q->resp.max = (size_t)1 << 30; /* the error's own room */
        reply_status(q, es, msg);
        return es;
    }
    q->status = 200;
    size_t len = q->answer ? q->answer->body.total : q->resp.len;
    q->content_type = q->json_len && q->json_len < len ? "application/octet-stream" : "application/json";
    if (!q->answer) keep_response(q);
    return CELER_OK;
}

static const celer_service_callbacks svc_callbacks = {svc_suspend, svc_done, svc_resume};

/* Decodes a pipeline request: business-object JSON, KServe v2, or a raw image body for a
 * pipeline with one BYTES input. */
static celer_status pipeline_decode(http_req *q, size_t json_len) {
    const served_version *v = celer_service_version(q->call);
    celer_arena *arena = celer_service_arena(q->call);
    const char *ct = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Type");
    int bytes_input = -1, n_bytes = 0;
    for (int i = 0; i < v->n_inputs; i++)
        if (v->inputs[i].dtype == CELER_STRING) bytes_input = i, n_bytes++;
    bool raw = json_len == SIZE_MAX && ct && !strstr(ct, "json") && n_bytes == 1 &&
               (!strncmp(ct, "image/", 6) || !strncmp(ct, "application/octet-stream", 24));
    if (raw) {
        memset(&q->kreq, 0, sizeof q->kreq);
        q->kreq.inputs = celer_arena_alloc(arena, sizeof *q->kreq.inputs);
        celer_str *el = celer_arena_alloc(arena, sizeof *el);
        if (!q->kreq.inputs || !el || celer_str_dup(arena, (celer_str){q->body ? q->body : "", q->body_len}, el))
            return celer_errorf(celer_error_status(), "%s", celer_error_message());
        q->kreq.inputs[0] = (celer_kserve_input){.name = v->inputs[bytes_input].name,
                                                 .tensor = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {1}}, .data = el}};
        q->kreq.n_inputs = 1;
        return CELER_OK;
    }
    if (json_len == SIZE_MAX) {
        celer_json *root = NULL;
        celer_status st = celer_json_parse(q->body ? q->body : "", q->body_len, arena, &root);
        if (st) return celer_error_wrap(st, "request body");
        if (root->type == CELER_JSON_ARRAY || (root->type == CELER_JSON_OBJECT && !celer_json_get(root, "inputs")))
            return celer_kserve_decode_object(root, v->inputs, v->n_inputs, arena, &q->kreq);
    }
    return celer_kserve_decode_infer(q->body ? q->body : "", q->body_len, json_len, v->inputs, v->n_inputs, arena,
                                     &q->kreq);
}

/* Decodes an inference request and starts it on the service; admit() began the call. */
static enum MHD_Result start_infer(http_req *q) {
    const served_version *v = celer_service_version(q->call);
    celer_arena *arena = celer_service_arena(q->call);
    const char *hl = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    size_t json_len = SIZE_MAX;
    if (hl) {
        char *end;
        unsigned long long n = strtoull(hl, &end, 10);
        if (*end || end == hl || n > q->body_len) {
            reply_status(q, CELER_ERR_INVALID, "Inference-Header-Content-Length is not a number within the body size");
            celer_service_reject(q->call);
            return send_reply(q);
        }
        json_len = (size_t)n;
    }
    if (answer_kept(q, hl, MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Content-Type")))
        return send_reply(q);
    celer_status st;
    if (v->pipeline && q->predict)
        st = celer_errorf(CELER_ERR_INVALID, "pipelines take /v2/models/{name}/infer requests (business objects or KServe v2)");
    else if (v->pipeline)
        st = pipeline_decode(q, json_len);
    else if (q->predict)
        st = celer_kserve_decode_predict(q->body ? q->body : "", q->body_len, v->inputs, v->n_inputs, arena, &q->kreq);
    else if (json_len == 0) /* the raw form: messages name the model, as Triton's do */
        st = celer_kserve_decode_raw(q->body ? q->body : "", q->body_len, v->inputs, v->n_inputs, v->owner->name, arena,
                                     &q->kreq);
    else
        st = celer_kserve_decode_infer(q->body ? q->body : "", q->body_len, json_len, v->inputs, v->n_inputs, arena,
                                       &q->kreq);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        reply_status(q, st, msg);
        celer_service_reject(q->call);
        return send_reply(q);
    }
    celer_service_request r = {.kreq = &q->kreq, .request_id = q->request_id};
    celer_service_start(q->call, &r, &svc_callbacks, q);
    /* suspended: the worker resumes the connection with the answer; else it is answered already */
    return q->parked ? MHD_YES : send_reply(q);
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
    else if (celer_registry_draining(q->srv->registry))
        reply_status(q, CELER_ERR_UNAVAILABLE, "the server is shutting down");
    else
        reply_status(q, CELER_ERR_UNAVAILABLE, "not every model is ready (see POST /v2/repository/index)");
    return send_reply(q);
}

static enum MHD_Result h_server_meta(http_req *q, const route_args *a) {
    (void)a;
    celer_jbuf_raw(&q->resp, "{\"name\":", 8);
    celer_jbuf_str(&q->resp, CELER_SERVER_NAME);
    celer_jbuf_raw(&q->resp, ",\"version\":", 11);
    celer_jbuf_str(&q->resp, CELER_SERVER_VERSION);
    celer_jbuf_raw(&q->resp, ",\"extensions\":[", 15);
    for (int i = 0; celer_server_extensions[i]; i++) {
        if (i) celer_jbuf_raw(&q->resp, ",", 1);
        celer_jbuf_str(&q->resp, celer_server_extensions[i]);
    }
    celer_jbuf_raw(&q->resp, "]}", 2);
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
    char why[1024];
    if (v->remote && !celer_remote_ready(v->remote, why, sizeof why)) reply_status(q, CELER_ERR_UNAVAILABLE, why);
    else reply_json(q, 200);
}
static void model_config(http_req *q, served_version *v) {
    celer_registry_config_json(q->srv->registry, v, &q->resp);
    reply_json(q, 200);
}

static enum MHD_Result h_model_meta(http_req *q, const route_args *a) { return with_version(q, a, model_meta); }
static enum MHD_Result h_model_ready(http_req *q, const route_args *a) { return with_version(q, a, model_ready); }
static enum MHD_Result h_model_config(http_req *q, const route_args *a) { return with_version(q, a, model_config); }

static enum MHD_Result h_stats(http_req *q, const route_args *a) {
    celer_status st = celer_service_stats_json(q->srv->service, a->model, a->version, &q->resp);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        reply_status(q, st, msg);
    } else {
        reply_json(q, 200);
    }
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
            if (r && r->type != CELER_JSON_BOOL) { /* Triton's words */
                char msg[160];
                snprintf(msg, sizeof msg, "Invalid value for 'ready': expected a boolean, got %.*s%s",
                         (int)CELER_MIN(r->raw_len, 40), r->raw, r->raw_len > 40 ? "..." : "");
                celer_arena_free(&arena);
                reply_status(q, CELER_ERR_INVALID, msg);
                return send_reply(q);
            }
            ready_only = r && r->boolean;
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

#define MAX_REPO_PARAMS (CELER_LOAD_MAX_FILES + 8)

/* The body of a load or unload: {"parameters": {...}}, decoded for the service (which checks
 * them): a JSON string is a string, or the base64 text of a file's bytes under a "file:" key, as
 * Triton's client sends them. The parameters point into q->repo_arena. */
static celer_status decode_repo_body(http_req *q, bool unload, celer_repo_param *params, int *n) {
    *n = 0;
    if (!q->body_len) return CELER_OK;
    /* the DOM holds unescaped copies of the strings: at most the body's size again */
    celer_arena_init(&q->repo_arena, 64 * 1024, 2 * q->body_len + (1u << 20));
    q->has_repo_arena = true;
    celer_json *doc;
    celer_status st = celer_json_parse(q->body, q->body_len, &q->repo_arena, &doc);
    if (st) return celer_error_wrap(st, "request body");
    if (doc->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "request body must be a JSON object");
    for (int i = 0; i < doc->n; i++)
        if (strcmp(doc->keys[i], "parameters"))
            return celer_errorf(CELER_ERR_INVALID, "unknown field '%.64s' (a %s request takes 'parameters')",
                                doc->keys[i], unload ? "unload" : "load");
    const celer_json *ps = celer_json_get(doc, "parameters");
    if (!ps) return CELER_OK;
    if (ps->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "'parameters' must be an object");
    if (ps->n > MAX_REPO_PARAMS)
        return celer_errorf(CELER_ERR_LIMIT, "%d parameters, at most %d", ps->n, MAX_REPO_PARAMS);
    for (int i = 0; i < ps->n; i++) {
        const celer_json *v = &ps->items[i];
        celer_repo_param *p = &params[(*n)++];
        *p = (celer_repo_param){.key = ps->keys[i], .kind = CELER_REPO_OTHER};
        if (v->type == CELER_JSON_STRING) {
            p->kind = strncmp(p->key, "file:", 5) ? CELER_REPO_STRING : CELER_REPO_BASE64;
            p->bytes = v->string, p->len = v->string_len;
        } else if (v->type == CELER_JSON_BOOL) {
            p->kind = CELER_REPO_BOOL, p->boolean = v->boolean;
        } else if (v->type == CELER_JSON_NUMBER && v->number >= -9e18 && v->number <= 9e18 &&
                   v->number == (double)(int64_t)v->number) {
            p->kind = CELER_REPO_INT, p->integer = (int64_t)v->number;
        }
    }
    return CELER_OK;
}

static enum MHD_Result repo_action(http_req *q, const route_args *a, bool unload) {
    celer_repo_param *params = celer_malloc(sizeof *params * MAX_REPO_PARAMS);
    int n = 0;
    celer_status st = params ? decode_repo_body(q, unload, params, &n)
                             : celer_errorf(CELER_ERR_NOMEM, "out of memory for the request's parameters");
    bool parked = !st;
    if (parked) { /* before the submit: the pool may answer before the service returns */
        suspend(q);
        st = celer_service_repo_action(q->srv->service, a->model, unload, params, n, repo_action_done, q);
    }
    free(params);
    if (!st) return MHD_YES;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", celer_error_message());
    reply_status(q, st, msg);
    if (!parked) return send_reply(q);
    resume(q); /* refused at once: answered when MHD comes back to it */
    return MHD_YES;
}

static enum MHD_Result h_load(http_req *q, const route_args *a) { return repo_action(q, a, false); }
static enum MHD_Result h_unload(http_req *q, const route_args *a) { return repo_action(q, a, true); }

/* ---- log settings ---- */

static void log_setting_json(void *user, const char *name, const celer_log_value *v) {
    celer_jbuf *b = user;
    celer_jbuf_raw(b, b->len > 1 ? "," : "", b->len > 1);
    celer_jbuf_str(b, name);
    celer_jbuf_raw(b, ":", 1);
    if (v->kind == CELER_LOG_BOOL) celer_jbuf_raw(b, v->b ? "true" : "false", v->b ? 4 : 5);
    else if (v->kind == CELER_LOG_UINT) celer_jbuf_uint(b, v->u);
    else celer_jbuf_strn(b, v->s, v->len);
}

/* A member of a POST /v2/logging body as the log settings take it. */
static celer_log_value log_value(const celer_json *j) {
    celer_log_value v = {.kind = CELER_LOG_OTHER};
    switch (j->type) {
    case CELER_JSON_NULL: v.kind = CELER_LOG_NULL; break;
    case CELER_JSON_BOOL: v.kind = CELER_LOG_BOOL, v.b = j->boolean; break;
    case CELER_JSON_NUMBER:
        v.kind = CELER_LOG_UINT;
        v.bad_number = !(j->number >= 0 && j->number < 9007199254740992.0 && j->number == (double)(uint64_t)j->number);
        v.u = v.bad_number ? 0 : (uint64_t)j->number;
        break;
    case CELER_JSON_STRING: v.kind = CELER_LOG_STRING, v.s = j->string, v.len = j->string_len; break;
    default: break;
    }
    return v;
}

/* GET /v2/logging: Triton's log settings; POST: changes the ones its body names (a JSON object;
 * every one checked before any applies) and answers the settings after. */
static enum MHD_Result h_logging(http_req *q, const route_args *a) {
    (void)a;
    if (!strcmp(q->method, "POST") && q->body_len) {
        celer_arena arena;
        celer_arena_init(&arena, 4096, 1 << 20);
        celer_json *doc;
        celer_log_change change = {0};
        celer_status st = celer_json_parse(q->body, q->body_len, &arena, &doc);
        if (st) st = celer_error_wrap(st, "request body");
        else if (doc->type != CELER_JSON_OBJECT)
            st = celer_errorf(CELER_ERR_INVALID, "the log settings must be a JSON object");
        for (int i = 0; !st && i < doc->n; i++) {
            celer_log_value v = log_value(&doc->items[i]);
            st = celer_log_change_set(&change, doc->keys[i], strlen(doc->keys[i]), &v);
        }
        celer_arena_free(&arena);
        if (st) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            reply_status(q, st, msg);
            return send_reply(q);
        }
        celer_log_change_apply(&change);
    }
    celer_jbuf_raw(&q->resp, "{", 1);
    celer_log_settings(log_setting_json, &q->resp);
    celer_jbuf_raw(&q->resp, "}", 1);
    reply_json(q, 200);
    return send_reply(q);
}

/* ---- trace settings (trace.h) ---- */

static void trace_setting_json(void *user, const char *name, const char *const *values, int n) {
    celer_jbuf *b = user;
    celer_jbuf_raw(b, b->len > 1 ? "," : "", b->len > 1);
    celer_jbuf_str(b, name);
    celer_jbuf_raw(b, ":", 1);
    bool array = !strcmp(name, "trace_level"); /* Triton's: an array; the others strings */
    if (array) celer_jbuf_raw(b, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i) celer_jbuf_raw(b, ",", 1);
        celer_jbuf_str(b, values[i]);
    }
    if (array) celer_jbuf_raw(b, "]", 1);
}

/* A member of a POST .../trace/setting body as the trace settings take it. */
static celer_trace_value trace_value(const celer_json *j) {
    celer_trace_value v = {.other = true};
    if (j->type == CELER_JSON_NULL) {
        v = (celer_trace_value){.null = true};
    } else if (j->type == CELER_JSON_STRING) {
        v = (celer_trace_value){.n = 1, .s = {j->string}, .len = {j->string_len}};
    } else if (j->type == CELER_JSON_ARRAY && j->n <= CELER_TRACE_MAX_VALUES) {
        v = (celer_trace_value){.n = j->n};
        for (int i = 0; i < j->n; i++) {
            if (j->items[i].type != CELER_JSON_STRING) return (celer_trace_value){.other = true};
            v.s[i] = j->items[i].string, v.len[i] = j->items[i].string_len;
        }
    }
    return v;
}

/* GET /v2[/models/{m}]/trace/setting: the trace settings in effect (the model's: its own, else the
 * global ones); POST: changes the ones its body names (each checked before any applies; null
 * reverts a model's setting to the global one) and answers the settings after. */
static enum MHD_Result h_trace_setting(http_req *q, const route_args *a) {
    if (!strcmp(q->method, "POST") && q->body_len) {
        celer_arena arena;
        celer_arena_init(&arena, 4096, 1 << 20);
        celer_json *doc;
        celer_trace_change change = {0};
        celer_status st = celer_json_parse(q->body, q->body_len, &arena, &doc);
        if (st) st = celer_error_wrap(st, "request body");
        else if (doc->type != CELER_JSON_OBJECT)
            st = celer_errorf(CELER_ERR_INVALID, "the trace settings must be a JSON object");
        for (int i = 0; !st && i < doc->n; i++) {
            celer_trace_value v = trace_value(&doc->items[i]);
            st = celer_trace_change_set(&change, doc->keys[i], strlen(doc->keys[i]), &v);
        }
        celer_arena_free(&arena);
        if (!st) st = celer_trace_change_apply(a->model, &change);
        if (st) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            reply_status(q, st, msg);
            return send_reply(q);
        }
    }
    celer_jbuf_raw(&q->resp, "{", 1);
    celer_trace_settings(a->model, trace_setting_json, &q->resp);
    celer_jbuf_raw(&q->resp, "}", 1);
    reply_json(q, 200);
    return send_reply(q);
}

static enum MHD_Result h_metrics(http_req *q, const route_args *a) {
    (void)a;
    celer_metrics_render(q->srv->metrics, &q->resp);
    q->status = 200;
    q->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return send_reply(q);
}

/* ---- system shared memory (shm.h); CUDA shared memory: none, no GPU ---- */

static enum MHD_Result reply_failed(http_req *q, celer_status st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", celer_error_message());
    celer_jbuf_reset(&q->resp);
    reply_status(q, st, msg);
    return send_reply(q);
}

/* GET /v2/systemsharedmemory[/region/{r}]/status: [{"name","key","offset","byte_size"}]. */
static enum MHD_Result h_shm_status(http_req *q, const route_args *a) {
    celer_status st = celer_shm_status_json(celer_service_shm(q->srv->service), a->region, &q->resp);
    if (st) return reply_failed(q, st);
    reply_json(q, 200);
    return send_reply(q);
}

/* POST /v2/systemsharedmemory/region/{r}/register {"key","offset","byte_size"}. */
static enum MHD_Result h_shm_register(http_req *q, const route_args *a) {
    celer_shm *shm = celer_service_shm(q->srv->service);
    celer_status st = celer_shm_check_allowed(shm);
    if (st) return reply_failed(q, st);
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 20);
    const char *key;
    uint64_t offset, byte_size;
    st = celer_kserve_decode_shm_register(q->body ? q->body : "", q->body_len, &arena, &key, &offset, &byte_size);
    if (!st) st = celer_shm_register(shm, a->region, key, offset, byte_size);
    celer_arena_free(&arena);
    if (st) return reply_failed(q, st);
    reply_json(q, 200);
    return send_reply(q);
}

/* POST /v2/systemsharedmemory[/region/{r}]/unregister, with an empty body. */
static enum MHD_Result h_shm_unregister(http_req *q, const route_args *a) {
    celer_status st = celer_shm_check_allowed(celer_service_shm(q->srv->service));
    if (!st && q->body_len)
        st = celer_errorf(CELER_ERR_INVALID, "an unregister request has no body (%zu bytes sent)", q->body_len);
    if (!st) st = celer_shm_unregister(celer_service_shm(q->srv->service), a->region);
    if (st) return reply_failed(q, st);
    reply_json(q, 200);
    return send_reply(q);
}

/* /v2/cudasharedmemory/...: the action is the path's last segment (shm.h: register refused, an
 * empty status, nothing to unregister). */
static enum MHD_Result h_cuda_shm(http_req *q, const route_args *a) {
    const char *action = strrchr(q->path, '/') + 1;
    celer_status st = celer_shm_cuda(celer_service_shm(q->srv->service), action, a->region);
    if (st) return reply_failed(q, st);
    if (!strcmp(action, "status")) celer_jbuf_raw(&q->resp, "[]", 2);
    reply_json(q, 200);
    return send_reply(q);
}

/* ---- OpenAPI documents and the /docs page ---- */

static enum MHD_Result h_openapi(http_req *q, const route_args *a) {
    celer_status st = celer_registry_openapi(q->srv->registry, a->model, a->version, &q->resp);
    if (st) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        celer_jbuf_reset(&q->resp);
        reply_status(q, st, msg);
    } else {
        reply_json(q, 200);
    }
    return send_reply(q);
}

/* Renders the document at #swagger-ui's data-url; a file of its own, so that the page needs no
 * inline script and a strict Content-Security-Policy holds. */
static const char docs_script[] =
    "// celer's /docs: Swagger UI on the OpenAPI document named by #swagger-ui's data-url. With API keys\n"
    "// (--api-keys) the document answers 401: the page asks for a key once, keeps it in memory only, and\n"
    "// sends it with the document's request and every 'Try it out'.\n"
    "window.addEventListener('load', function () {\n"
    "  var el = document.getElementById('swagger-ui'), url = el.getAttribute('data-url');\n"
    "  function start(key) {\n"
    "    window.ui = SwaggerUIBundle({url: url, dom_id: '#swagger-ui', deepLinking: true, tryItOutEnabled: true,\n"
    "                                 validatorUrl: null, requestInterceptor: function (r) {\n"
    "                                   if (key) r.headers.Authorization = 'Bearer ' + key;\n"
    "                                   return r;\n"
    "                                 }});\n"
    "  }\n"
    "  fetch(url).then(function (r) {\n"
    "    start(r.status === 401 ? window.prompt('API key (with the infer scope) for ' + location.host) : null);\n"
    "  }, function () { start(null); });\n"
    "});\n";

/* The files of --docs-assets that /docs/assets/ serves from a local folder. */
static const struct docs_asset {
    const char *name, *content_type;
} docs_assets[] = {
    {"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
    {"swagger-ui.css", "text/css; charset=utf-8"},
};

/* Whether --docs-assets names a URL (else a local folder). */
static bool assets_remote(const char *assets) { return !strncmp(assets, "https://", 8) || !strncmp(assets, "http://", 7); }

static enum MHD_Result docs_off(http_req *q) {
    reply_error(q, 404, "the /docs page is off: start celer with --docs (the documents are at /v2/openapi.json)");
    return send_reply(q);
}

/* GET /docs and /v2/models/{m}/docs: the page, loading Swagger UI from --docs-assets. */
static enum MHD_Result h_docs(http_req *q, const route_args *a) {
    const celer_server_options *o = q->srv->opts;
    if (!o->docs) return docs_off(q);
    bool remote = assets_remote(o->docs_assets);
    char base[1024], origin[512] = "", doc[800] = "/v2/openapi.json";
    size_t bl = strlen(o->docs_assets);
    while (bl && o->docs_assets[bl - 1] == '/') bl--;
    snprintf(base, sizeof base, "%.*s", remote ? (int)bl : 0, o->docs_assets);
    if (!remote) snprintf(base, sizeof base, "/docs/assets");
    if (remote) { /* scheme://host[:port] for the policy */
        const char *host = strstr(base, "://") + 3, *slash = strchr(host, '/');
        snprintf(origin, sizeof origin, " %.*s", (int)(slash ? (size_t)(slash - base) : strlen(base)), base);
    }
    if (a->model) { /* percent-encoded: safe in the URL and in the attribute */
        size_t n = (size_t)snprintf(doc, sizeof doc, "/v2/models/");
        for (const unsigned char *p = (const unsigned char *)a->model; *p && n + 4 < sizeof doc; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
                doc[n++] = (char)*p;
            else
                n += (size_t)snprintf(doc + n, sizeof doc - n, "%%%02X", *p);
        }
        snprintf(doc + n, sizeof doc - n, "/openapi.json");
    }
    char page[8192];
    int len = snprintf(page, sizeof page,
                       "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<title>celer: API</title>\n<link rel=\"stylesheet\" href=\"%s/swagger-ui.css\">\n</head>\n"
                       "<body>\n<div id=\"swagger-ui\" data-url=\"%s\"></div>\n"
                       "<script src=\"%s/swagger-ui-bundle.js\"></script>\n<script src=\"/docs/celer-docs.js\"></script>\n"
                       "</body>\n</html>\n",
                       base, doc, base);
    celer_jbuf_raw(&q->resp, page, (size_t)len);
    static _Thread_local char csp[2600]; /* four origins of up to 512 bytes */
    snprintf(csp, sizeof csp,
             "default-src 'none'; script-src 'self'%s; style-src 'self'%s; img-src 'self' data:%s; font-src 'self'%s; "
             "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             origin, origin, origin, origin);
    q->csp = csp;
    q->status = 200;
    q->content_type = "text/html; charset=utf-8";
    return send_reply(q);
}

static enum MHD_Result h_docs_script(http_req *q, const route_args *a) {
    (void)a;
    if (!q->srv->opts->docs) return docs_off(q);
    celer_jbuf_raw(&q->resp, docs_script, sizeof docs_script - 1);
    q->status = 200;
    q->content_type = "text/javascript; charset=utf-8";
    return send_reply(q);
}

/* GET /docs/assets/{f}: one of Swagger UI's files from the --docs-assets folder. */
static enum MHD_Result h_docs_asset(http_req *q, const route_args *a) {
    const celer_server_options *o = q->srv->opts;
    if (!o->docs) return docs_off(q);
    const struct docs_asset *f = NULL;
    for (size_t i = 0; i < CELER_ARRAY_LEN(docs_assets) && !f; i++)
        if (!strcmp(docs_assets[i].name, a->file)) f = &docs_assets[i];
    if (!f || assets_remote(o->docs_assets)) {
        reply_error(q, 404, "no such asset (the page loads swagger-ui-bundle.js and swagger-ui.css)");
        return send_reply(q);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->docs_assets, f->name);
    FILE *fp = fopen(path, "rb");
    char buf[65536];
    size_t n;
    while (fp && (n = fread(buf, 1, sizeof buf, fp)) > 0 && q->resp.len < (32u << 20)) celer_jbuf_raw(&q->resp, buf, n);
    if (!fp || ferror(fp) || q->resp.len >= (32u << 20)) {
        if (fp) fclose(fp);
        celer_log(CELER_LOG_WARNING, "--docs-assets: cannot read %s", path);
        celer_jbuf_reset(&q->resp);
        reply_error(q, 404, "the asset cannot be read (the server log says which file)");
        return send_reply(q);
    }
    fclose(fp);
    q->status = 200;
    q->content_type = f->content_type;
    return send_reply(q);
}

/* The route table: method, path pattern ({m}, {v}, {f}, {r} match one segment; "{m}:predict" a segment
 * ending in ":predict"), handler, and the scope an API key needs (auth.h; every row has one: the
 * front end refuses to start otherwise). The /docs page and its files are open: a browser cannot
 * send a key when it opens a page, and they hold nothing of the models; the OpenAPI documents
 * describe the models as their metadata does, and need `infer` as it does. */
static const struct route {
    const char *method, *pattern;
    route_fn fn;
    celer_auth_scope scope;
} routes[] = {
    {"GET", "/v2/health/live", h_live, CELER_SCOPE_OPEN},
    {"GET", "/v2/health/ready", h_ready, CELER_SCOPE_OPEN},
    {"GET", "/v2", h_server_meta, CELER_SCOPE_INFER},
    {"GET", "/v2/models/stats", h_stats, CELER_SCOPE_ADMIN},
    {"GET", "/v2/models/{m}", h_model_meta, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/versions/{v}", h_model_meta, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/ready", h_model_ready, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/versions/{v}/ready", h_model_ready, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/config", h_model_config, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/versions/{v}/config", h_model_config, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/stats", h_stats, CELER_SCOPE_ADMIN},
    {"GET", "/v2/models/{m}/versions/{v}/stats", h_stats, CELER_SCOPE_ADMIN},
    {"POST", "/v2/models/{m}/infer", h_infer, CELER_SCOPE_INFER},
    {"POST", "/v2/models/{m}/versions/{v}/infer", h_infer, CELER_SCOPE_INFER},
    {"POST", "/v2/repository/index", h_index, CELER_SCOPE_ADMIN},
    {"POST", "/v2/repository/models/{m}/load", h_load, CELER_SCOPE_ADMIN},
    {"POST", "/v2/repository/models/{m}/unload", h_unload, CELER_SCOPE_ADMIN},
    {"POST", "/v1/models/{m}:predict", h_predict, CELER_SCOPE_INFER},
    {"GET", "/v2/logging", h_logging, CELER_SCOPE_ADMIN},
    {"POST", "/v2/logging", h_logging, CELER_SCOPE_ADMIN},
    {"GET", "/metrics", h_metrics, CELER_SCOPE_METRICS},
    {"GET", "/v2/openapi.json", h_openapi, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/openapi.json", h_openapi, CELER_SCOPE_INFER},
    {"GET", "/v2/models/{m}/versions/{v}/openapi.json", h_openapi, CELER_SCOPE_INFER},
    {"GET", "/docs", h_docs, CELER_SCOPE_OPEN},
    {"GET", "/v2/models/{m}/docs", h_docs, CELER_SCOPE_OPEN},
    {"GET", "/docs/celer-docs.js", h_docs_script, CELER_SCOPE_OPEN},
    {"GET", "/docs/assets/{f}", h_docs_asset, CELER_SCOPE_OPEN},
    {"GET", "/v2/systemsharedmemory/status", h_shm_status, CELER_SCOPE_ADMIN},
    {"GET", "/v2/systemsharedmemory/region/{r}/status", h_shm_status, CELER_SCOPE_ADMIN},
    {"POST", "/v2/systemsharedmemory/region/{r}/register", h_shm_register, CELER_SCOPE_ADMIN},
    {"POST", "/v2/systemsharedmemory/unregister", h_shm_unregister, CELER_SCOPE_ADMIN},
    {"POST", "/v2/systemsharedmemory/region/{r}/unregister", h_shm_unregister, CELER_SCOPE_ADMIN},
    {"GET", "/v2/cudasharedmemory/status", h_cuda_shm, CELER_SCOPE_ADMIN},
    {"GET", "/v2/cudasharedmemory/region/{r}/status", h_cuda_shm, CELER_SCOPE_ADMIN},
    {"POST", "/v2/cudasharedmemory/region/{r}/register", h_cuda_shm, CELER_SCOPE_ADMIN},
    {"POST", "/v2/cudasharedmemory/unregister", h_cuda_shm, CELER_SCOPE_ADMIN},
    {"POST", "/v2/cudasharedmemory/region/{r}/unregister", h_cuda_shm, CELER_SCOPE_ADMIN},
    {"GET", "/v2/trace/setting", h_trace_setting, CELER_SCOPE_ADMIN},
    {"POST", "/v2/trace/setting", h_trace_setting, CELER_SCOPE_ADMIN},
    {"GET", "/v2/models/{m}/trace/setting", h_trace_setting, CELER_SCOPE_ADMIN},
    {"POST", "/v2/models/{m}/trace/setting", h_trace_setting, CELER_SCOPE_ADMIN},
};

#define MAX_SEGMENTS 16

/* The patterns split into segments once, so that matching a request compares segment counts,
 * then lengths, instead of walking every pattern's text (this runs for every request). */
typedef enum seg_kind { SEG_TEXT, SEG_MODEL, SEG_VERSION, SEG_FILE, SEG_REGION, SEG_PREDICT } seg_kind;
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
            else if (len == 3 && !memcmp(p, "{f}", 3)) sg->kind = SEG_FILE;
            else if (len == 3 && !memcmp(p, "{r}", 3)) sg->kind = SEG_REGION;
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
    a->model = a->version = a->file = a->region = NULL;
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
        case SEG_FILE:
            if (!n) return false;
            a->file = seg[i];
            break;
        case SEG_REGION:
            if (!n) return false;
            a->region = seg[i];
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
    celer_inflate_end(&q->inflate);
    free(q->body);
    q->body = NULL;
    q->body_len = q->body_cap = 0;
    atomic_fetch_sub(&q->srv->body_bytes, (long long)q->body_reserved);
    q->body_reserved = 0;
    atomic_store(&q->state, REQ_READY);
}

/* A body over --max-body-bytes (`size` bytes, or at least that many when `at_least`: a chunked body
 * that grew past it), in Triton's words for the form its headers say (its clients match them); the
 * status stays celer's 413. */
static void body_limit_message(struct MHD_Connection *conn, unsigned long long size_n, bool at_least, long long max,
                               char *msg, size_t cap) {
    const char *hl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    bool raw = hl && !strcmp(hl, "0");
    char size[64];
    snprintf(size, sizeof size, "%s%llu", at_least ? "at least " : "", size_n);
    if (raw)
        snprintf(msg, cap,
                 "Raw input has a byte_size (%s bytes) that exceeds the maximum allowed value of %lld bytes: the "
                 "request body is over celer's --max-body-bytes",
                 size, max);
    else
        snprintf(msg, cap,
                 "request JSON size of %s bytes exceeds the maximum allowed input size of %lld bytes: the request "
                 "body is over celer's --max-body-bytes",
                 size, max);
}

/* Decides what it can from the headers alone, before any body byte is read or buffered: a path
 * too long or unknown, a body over its cap or over what all connections may buffer together, a
 * model that is missing, loading or whose queue is full. Returns false with the reply set. */
static bool admit(http_req *q, struct MHD_Connection *conn, const char *url) {
    celer_http *srv = q->srv;
    /* q counts in srv->active before this is read, so shutdown either sees q or q sees it: nothing
     * reaches a worker once the front end may be stopped */
    if (atomic_load(&srv->closed)) {
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
    if (q->route >= 0) { /* the API key first: nothing else is decided, or read, for a client without one */
        celer_auth_scope scope = routes[q->route].scope;
        celer_status st = celer_auth_check(scope, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                                           &q->key);
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            celer_auth_challenge(&q->key, st, scope, q->challenge, sizeof q->challenge);
            reply_status(q, st, msg);
            const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            q->refused_body = (cl && strcmp(cl, "0")) ||
                              MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
            return false;
        }
    }
    const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
    q->coding = ce ? celer_coding_parse(ce, strlen(ce)) : CELER_CODING_IDENTITY;
    q->accept = celer_coding_accepted(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    if (q->coding == CELER_CODING_UNKNOWN) {
        /* RFC 9110 15.5.16: 415 with the codings taken in Accept-Encoding (send_reply adds it) */
        char msg[200];
        snprintf(msg, sizeof msg, "Unsupported compression type '%.64s': send the body as gzip, deflate or identity", ce);
        reply_error(q, 415, msg);
        return false;
    }
    if (q->coding != CELER_CODING_IDENTITY) celer_inflate_init(&q->inflate, q->coding, (size_t)srv->opts->max_body_bytes);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    char msg[1024];
    if (declared > (unsigned long long)srv->opts->max_body_bytes) {
        body_limit_message(conn, declared, false, srv->opts->max_body_bytes, msg, sizeof msg);
        reply_status(q, CELER_ERR_LIMIT, msg);
        return false;
    }
    if (q->route < 0) return true; /* answered once the body (if any) is discarded */
    if (is_infer_route(q->route)) {
        celer_status code = CELER_OK;
        q->call = celer_service_begin(srv->service, CELER_PROTOCOL_HTTP, q->args.model, q->args.version, q->start_ns,
                                      &code, msg, sizeof msg);
        if (!q->call) {
            reply_status(q, code, msg);
            return false;
        }
        if (celer_trace_active()) {
            const char *tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
            const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "tracestate");
            char name[160]; /* "POST /v2/models/{m}/infer": the method and the route, as OTel names HTTP spans */
            size_t ml = strlen(q->method), pl = strlen(routes[q->route].pattern);
            memcpy(name, q->method, ml);
            name[ml] = ' ';
            memcpy(name + ml + 1, routes[q->route].pattern, pl + 1);
            celer_service_trace(q->call, tp, tp ? strlen(tp) : 0, ts, ts ? strlen(ts) : 0, name);
        }
    }
    if (declared && q->coding == CELER_CODING_IDENTITY) { /* one allocation, not grown chunk by chunk; up to 1 MiB before any byte came */
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

/* Appends n body bytes (as sent, or inflated) to q's body, within --max-body-bytes and the budget
 * of all connections; on failure q's reply is set (413, 503) and the caller drops the body. */
static celer_status append_body(void *user, const void *data, size_t n) {
    http_req *q = user;
    celer_http *srv = q->srv;
    if (q->body_len + n > (size_t)srv->opts->max_body_bytes) {
        char msg[400];
        body_limit_message(q->conn, (unsigned long long)(q->body_len + n), true, srv->opts->max_body_bytes, msg,
                           sizeof msg);
        if (q->coding != CELER_CODING_IDENTITY) /* the inflated size is what counts */
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (inflated from a %s body)",
                     q->coding == CELER_CODING_GZIP ? "gzip" : "deflate");
        reply_status(q, CELER_ERR_LIMIT, msg);
        q->body_refused = true;
        return CELER_ERR_LIMIT;
    }
    if (q->body_len + n + 1 > q->body_cap) {
        size_t cap = CELER_MAX(q->body_cap * 2, q->body_len + n + 1);
        if (cap > (size_t)srv->opts->max_body_bytes + 1) cap = (size_t)srv->opts->max_body_bytes + 1;
        q->body_refused = true;
        if (!reserve_body(q, cap)) return CELER_ERR_UNAVAILABLE;
        char *b = celer_realloc(q->body, cap);
        if (!b) {
            reply_status(q, CELER_ERR_NOMEM, "out of memory for the request body");
            return CELER_ERR_NOMEM;
        }
        q->body_refused = false;
        q->body = b;
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, data, n);
    q->body_len += n;
    q->body[q->body_len] = 0;
    return CELER_OK;
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
        if (q->cctx) atomic_store(&q->cctx->busy, true);
        *con_cls = q;
        if (!admit(q, conn, url)) {
            /* Decided from the headers: nothing of the body is buffered. A client that waits for
             * "100 Continue" gets the answer now and never sends its body; any other is answered
             * once its body has been read and dropped (within --body-timeout-secs): closing on
             * unread bytes would reset the connection and lose the answer. */
            drop_body(q);
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            /* a client without a valid key gets no more of the server's time: answered now, and its
             * connection closed with its body unread (without a body, as usual: keep-alive goes on) */
            if (q->refused_body || (expect && !strcasecmp(expect, "100-continue"))) return send_reply(q);
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
        celer_status st = q->coding == CELER_CODING_IDENTITY ? append_body(q, upload_data, n)
                                                             : celer_inflate_feed(&q->inflate, upload_data, n, append_body, q);
        if (st && !q->body_refused) { /* the inflater's refusal (append_body answers its own) */
            char msg[400];
            snprintf(msg, sizeof msg, "%s%s", celer_error_message(), st == CELER_ERR_LIMIT ? " (--max-body-bytes)" : "");
            reply_status(q, st, msg);
        }
        if (st) drop_body(q); /* the rest is read and discarded; the answer goes at the end */
        return MHD_YES;
    }
    switch (atomic_load(&q->state)) {
    case REQ_READY: return send_reply(q);
    case REQ_WAITING: return MHD_YES; /* spurious call while suspended */
    case REQ_READING: break;
    }
    if (q->coding != CELER_CODING_IDENTITY && (q->inflate.started || q->inflate.n_head)) { /* no byte: an empty body */
        celer_status st = celer_inflate_finish(&q->inflate);
        celer_inflate_end(&q->inflate);
        if (st) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            reply_status(q, st, msg);
            drop_body(q);
            return send_reply(q);
        }
    }
    set_deadline(q, 0); /* the whole request is here: computing and answering it has no deadline here */
    if (q->route < 0) return reply_no_route(q);
    return routes[q->route].fn(q, &q->args);
}

static void log_request(const celer_http *srv, const http_req *q, struct MHD_Connection *conn) {
    char trace_id[33];
    if (srv->opts->quiet) return;
    char addr[64];
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    celer_listen_peer(ci ? ci->client_addr : NULL, addr, sizeof addr);
    celer_log_access a = {.remote = addr, .method = q->method, .path = q->path, .request_id = q->request_id,
                          .status = q->status, .ms = (double)(now_ns() - q->start_ns) / 1e6,
                          .key = q->key.kind == CELER_AUTH_KNOWN ? q->key.name : NULL,
                          .trace_id = celer_service_trace_id(q->call, trace_id) ? trace_id : NULL};
    celer_log_request(&a);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)toe;
    celer_http *srv = cls;
    http_req *q = *con_cls;
    if (!q) return;
    /* an answer never left half-sent: a socket too full to take a held header closes */
    if (q->cctx && q->cctx->tls_out && !celer_tls_out_flush(q->cctx->tls_out)) shutdown(q->cctx->fd, SHUT_RDWR);
    /* a client that hung up while its request ran: the worker still owns q until it resumes,
     * and MHD only completes a suspended connection after it was resumed */
    log_request(srv, q, conn);
    set_deadline(q, srv->opts->header_timeout_secs); /* for the connection's next request */
    int cls_i = q->status / 100;
    if (cls_i >= 1 && cls_i <= 5) celer_metrics_add(srv->m_requests[cls_i], 1);
    answer_free(q->answer); /* before the call ends: its tensors are the call's */
    celer_service_end(q->call);
    celer_jbuf_free(&q->resp);
    if (q->has_repo_arena) celer_arena_free(&q->repo_arena);
    if (q->cctx) atomic_store(&q->cctx->busy, false);
    drop_body(q);
    free(q);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active, 1);
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
        const union MHD_ConnectionInfo *ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ti && ti->tls_session && celer_tls_out_attach(ti->tls_session, c->fd, &c->tls_out) != CELER_OK)
            c->tls_out = NULL; /* out of memory: GnuTLS's own sending, a write per record */
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_ctx *c = *socket_context;
        if (!c) return;
        pthread_mutex_lock(&srv->conns_lock);
        if (c->prev) c->prev->next = c->next;
        else srv->conns = c->next;
        if (c->next) c->next->prev = c->prev;
        pthread_mutex_unlock(&srv->conns_lock);
        celer_tls_out_free(c->tls_out); /* libmicrohttpd deinit'ed the session before telling */
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

/* MHD's flags for an address's family: IPv6 binds IPv6-only unless dual stack is asked for. */
static unsigned mhd_family(const celer_listen_addr *a) {
    if (a->sa.ss_family != AF_INET6) return 0;
    return a->dual ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
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

celer_status celer_http_start(const celer_server_options *opts, celer_service *service, celer_metrics *metrics,
                              celer_tls *tls, celer_http **out) {
    pthread_once(&compiled_once, compile_routes);
    for (size_t i = 0; i < CELER_ARRAY_LEN(routes); i++)
        if (routes[i].scope <= CELER_SCOPE_NONE || routes[i].scope >= CELER_SCOPE_COUNT)
            return celer_errorf(CELER_ERR_INTERNAL, "route %s %s has no API key scope in routes[] (http.c)",
                                routes[i].method, routes[i].pattern);
    celer_http *srv = calloc(1, sizeof *srv);
    if (!srv) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    srv->opts = opts;
    srv->service = service;
    srv->registry = celer_service_registry(service);
    srv->metrics = metrics;
    for (int c = 1; c <= 5; c++) {
        char labels[32];
        snprintf(labels, sizeof labels, "code=\"%dxx\"", c);
        srv->m_requests[c] = celer_metrics_counter(metrics, "celer_http_requests_total", "HTTP requests by status class.", labels);
    }
    celer_listen_addr addr;
    celer_status st = celer_listen_resolve(opts->http_address, opts->http_port, "--http-address", &addr);
    if (st) {
        free(srv);
        return st;
    }
    srv->max_connections = connection_limit(opts);
    srv->listen_fd = MHD_INVALID_SOCKET;
    pthread_mutex_init(&srv->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->reaper_wake, &ca);
    pthread_condattr_destroy(&ca);
    /* MHD_USE_ITC: quiescing (closing the listener at shutdown) needs it with a thread pool.
     * poll(), not epoll: in libmicrohttpd 0.9.75 MHD_quiesce_daemon races the epoll loop of the
     * daemon's own threads (both take the listener out of the epoll set; the loser panics with
     * "Failed to remove listen FD from epoll set" and the process aborts: seen once at SIGTERM
     * in a CI run); with poll() quiescing only sets a flag the threads read. Each thread polls
     * its own connections only. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     mhd_family(&addr);
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        free(srv);
        return celer_errorf(CELER_ERR_UNSUPPORTED, "--tls-cert: this libmicrohttpd was built without TLS");
    }
    if (tls) flags |= MHD_USE_TLS;
    srv->daemon = MHD_start_daemon(flags, (uint16_t)opts->http_port, NULL, NULL, on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.sa,
                                   MHD_OPTION_THREAD_POOL_SIZE, (unsigned)CELER_MAX(opts->http_threads, 1),
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->request_timeout_secs,
                                   MHD_OPTION_CONNECTION_LIMIT, srv->max_connections,
                                   /* room for a request line up to MAX_URL and headers, and for MHD's own 414/431 */
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   /* TLS (tls.c): the certificate asked for at each handshake, so a
                                    * reload needs no restart; without TLS the options end here */
                                   tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, celer_tls_cert_callback,
                                   MHD_OPTION_HTTPS_PRIORITIES, celer_tls_priorities_http, MHD_OPTION_END);
    if (srv->daemon && !pthread_create(&srv->reaper, NULL, reaper_main, srv)) srv->reaper_started = true;
    if (!srv->daemon || !srv->reaper_started) {
        if (srv->daemon) MHD_stop_daemon(srv->daemon);
        pthread_cond_destroy(&srv->reaper_wake);
        pthread_mutex_destroy(&srv->conns_lock);
        free(srv);
        return celer_errorf(CELER_ERR_IO, "cannot listen on %s (in use, or not allowed)", addr.text);
    }
    *out = srv;
    return CELER_OK;
}

void celer_http_notice(celer_http *h) {
    if (h) atomic_store(&h->draining, true);
}

void celer_http_drain(celer_http *h) {
    if (!h || !h->daemon) return;
    atomic_store(&h->draining, true);
    atomic_store(&h->closed, true);
    /* MHD stops polling the listener and hands it back. Shutting it down refuses new connections at
     * once instead of leaving them in the backlog unanswered; it is closed only after the daemon
     * stopped, as MHD's threads may still be polling it until they see the flag quiescing set. */
    h->listen_fd = MHD_quiesce_daemon(h->daemon);
    if (h->listen_fd != MHD_INVALID_SOCKET) shutdown(h->listen_fd, SHUT_RDWR);
    /* Idle keep-alive connections are closed now (MHD closes a socket shut down under it as on any
     * network error). One whose answer is on its way keeps it: that answer says close. */
    pthread_mutex_lock(&h->conns_lock);
    for (conn_ctx *c = h->conns; c; c = c->next)
        if (!atomic_load(&c->busy)) shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&h->conns_lock);
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

/* ---- the metrics port ----
 * Triton serves its metrics on a port of their own (8002): a second, small daemon (one thread, a
 * few connections) that answers GET /metrics and nothing else, with the same text as /metrics on
 * the HTTP port. Bodies are read and dropped; a scraper sends none. */

#define METRICS_CONNECTIONS 16

struct celer_http_metrics {
    struct MHD_Daemon *daemon;
    celer_metrics *metrics;
    MHD_socket listen_fd; /* handed back by MHD at the drain; else MHD_INVALID_SOCKET */
};

static enum MHD_Result metrics_reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                                     size_t len, const char *allow, const char *challenge) {
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (allow) MHD_add_response_header(r, "Allow", allow);
    if (challenge) {
        MHD_add_response_header(r, "WWW-Authenticate", challenge);
        MHD_add_response_header(r, "Connection", "close");
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_metrics_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                          const char *version, const char *upload_data, size_t *upload_data_size,
                                          void **con_cls) {
    (void)version, (void)upload_data;
    celer_http_metrics *h = cls;
    static int started;
    if (!*con_cls) { /* the headers: answered once the body, if any, is read; a refused key at once */
        *con_cls = &started;
        celer_auth_id id;
        celer_status st = celer_auth_check(CELER_SCOPE_METRICS,
                                           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"), &id);
        if (!st) return MHD_YES;
        char challenge[128];
        celer_auth_challenge(&id, st, CELER_SCOPE_METRICS, challenge, sizeof challenge);
        celer_jbuf b;
        celer_jbuf_init(&b, 0);
        celer_kserve_encode_error(celer_error_message(), &b);
        char *body = b.status ? NULL : b.data;
        if (!body) celer_jbuf_free(&b);
        return body ? metrics_reply(conn, (unsigned)celer_status_http(st), "application/json", body, b.len, NULL,
                                    challenge)
                    : MHD_NO;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    unsigned status = 200;
    const char *type = "text/plain; version=0.0.4; charset=utf-8", *allow = NULL;
    if (strcmp(url, "/metrics")) {
        status = 404;
        type = "application/json";
        celer_kserve_encode_error("this port serves GET /metrics only", &b);
    } else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        status = 405;
        type = "application/json";
        allow = "GET, HEAD";
        celer_kserve_encode_error("/metrics takes GET", &b);
    } else {
        celer_metrics_render(h->metrics, &b);
    }
    if (b.status) {
        celer_jbuf_free(&b);
        return MHD_NO; /* out of memory: the connection is closed */
    }
    char *body = b.data ? b.data : strdup("");
    return body ? metrics_reply(conn, status, type, body, b.len, allow, NULL) : MHD_NO;
}

celer_status celer_http_metrics_start(const celer_server_options *opts, celer_metrics *metrics,
                                      celer_http_metrics **out) {
    *out = NULL;
    if (opts->metrics_port <= 0) return CELER_OK;
    celer_listen_addr addr;
    CELER_TRY(celer_listen_resolve(opts->metrics_address, opts->metrics_port, "--metrics-address", &addr));
    celer_http_metrics *h = calloc(1, sizeof *h);
    if (!h) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    h->metrics = metrics;
    h->listen_fd = MHD_INVALID_SOCKET;
    /* MHD_USE_ITC: the drain quiesces it */
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | mhd_family(&addr),
                                 (uint16_t)opts->metrics_port, NULL, NULL, on_metrics_request, h,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.sa,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->request_timeout_secs,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
    if (!h->daemon) {
        free(h);
        return celer_errorf(CELER_ERR_IO, "cannot listen for metrics on %s (in use, or not allowed)", addr.text);
    }
    *out = h;
    return CELER_OK;
}

void celer_http_metrics_drain(celer_http_metrics *h) {
    if (!h) return;
    h->listen_fd = MHD_quiesce_daemon(h->daemon); /* as celer_http_drain */
    if (h->listen_fd != MHD_INVALID_SOCKET) shutdown(h->listen_fd, SHUT_RDWR);
}

void celer_http_metrics_stop(celer_http_metrics *h) {
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    if (h->listen_fd != MHD_INVALID_SOCKET) close(h->listen_fd);
    free(h);
}
