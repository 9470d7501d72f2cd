/* Remote models: remote.yaml, the upstream's metadata at load, and the client that sends calls
 * from one IO thread (see remote.h and docs/remote.md).
 *
 * Threads: celer_remote_submit runs on whichever thread the service hands a job on (a transport's
 * for a request, a worker's for a pipeline's call) and only queues it (under the hub's lock); the
 * hub's thread forms calls (one job, or several gathered into a batch), sends them (libcurl's multi
 * interface for HTTP/1.1, h2client.h for gRPC), and completes their jobs. celer_remote_open runs
 * on the loading thread, before the hub knows the remote. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "config.h"
#include "grpc_codec.h"
#include "h2client.h"
#include "json.h"
#include "log.h"
#include "remote.h"
#include "trace.h"

#define GRPC_SERVICE "/inference.GRPCInferenceService/"
#define RETRY_BASE_MS 20    /* first retry after 10-30 ms, then doubling */
#define BUDGET_FLOOR 10.0   /* retries always allowed in a burst, whatever the ratio */
#define MESSAGE_MAX 1024
#define H2_CONNS 2          /* HTTP/2 connections per gRPC upstream model: its calls are streams on them */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- remote.yaml ---- */

/* The keys, with what they take: one table for the parser and its messages. */
typedef enum key_kind { K_STR, K_INT, K_RATIO, K_MAP, K_CACHE, K_BREAKER } key_kind;
static const struct remote_key {
    const char *name;
    key_kind kind;
    int64_t lo, hi;
} remote_keys[] = {
    {"url", K_STR, 0, 0},
    {"model", K_STR, 0, 0},
    {"version", K_STR, 0, 0},
    {"timeout_ms", K_INT, 1, 3600000},
    {"connect_timeout_ms", K_INT, 1, 600000},
    {"health_interval_ms", K_INT, 0, 3600000},
    {"max_inflight", K_INT, 1, 65536},
    {"max_queue_size", K_INT, 1, 1 << 20},
    {"retries", K_INT, 0, 10},
    {"retry_budget", K_RATIO, 0, 1},
    {"circuit_breaker", K_BREAKER, 0, 0},
    {"max_batch_size", K_INT, 0, CELER_MAX_BATCH_JOBS},
    {"cache", K_CACHE, 0, 0},
    {"bearer_token_env", K_STR, 0, 0},
    {"bearer_token_file", K_STR, 0, 0},
    {"headers", K_MAP, 0, 0},
    {"headers_env", K_MAP, 0, 0},
    {"ca_file", K_STR, 0, 0},
};

typedef struct yparse {
    yaml_document_t *doc;
    const char *shown, *mdir, *name;
    celer_arena *arena;
    celer_remote_config *cfg;
} yparse;

static celer_status yerr(const yparse *p, const yaml_node_t *n, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return celer_errorf(CELER_ERR_INVALID, "%s:%d: %s", p->shown, n ? (int)n->start_mark.line + 1 : 0, msg);
}

static const char *yscalar(const yparse *p, const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE) return NULL;
    return celer_arena_strndup(p->arena, (const char *)n->data.scalar.value, n->data.scalar.length);
}

static celer_status yint(const yparse *p, const yaml_node_t *n, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const char *s = yscalar(p, n);
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi)
        return yerr(p, n, "'%s' must be an integer from %lld to %lld", key, (long long)lo, (long long)hi);
    *out = v;
    return CELER_OK;
}

static celer_status add_header(yparse *p, const yaml_node_t *n, const char *name, const char *value) {
    celer_remote_config *c = p->cfg;
    if (c->n_headers == CELER_REMOTE_MAX_HEADERS) return yerr(p, n, "more than %d headers", CELER_REMOTE_MAX_HEADERS);
    for (const char *q = name; *q; q++)
        if (!isalnum((unsigned char)*q) && !strchr("-_", *q)) return yerr(p, n, "header name '%s' is not a token", name);
    if (!*name) return yerr(p, n, "an empty header name");
    size_t nl = strlen(name);
    for (int i = 0; i < c->n_headers; i++) /* one Authorization: a token from two places is a mistake */
        if (!strncasecmp(c->headers[i], name, nl) && c->headers[i][nl] == ':')
            return yerr(p, n, "header '%s' is given twice (bearer_token_env, bearer_token_file, headers and "
                        "headers_env each add one)", name);
    for (const char *q = value; *q; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t') return yerr(p, n, "the value of header '%s' has a control character", name);
    size_t len = strlen(name) + strlen(value) + 3;
    char *h = celer_arena_alloc(p->arena, len);
    if (!h) return celer_error_wrap(celer_error_status(), "%s", p->shown);
    snprintf(h, len, "%s: %s", name, value);
    c->headers[c->n_headers++] = h;
    return CELER_OK;
}

static celer_status env_value(yparse *p, const yaml_node_t *n, const char *var, const char **out) {
    const char *v = var ? getenv(var) : NULL;
    if (!var || !*var) return yerr(p, n, "an environment variable name is expected");
    if (!v) return celer_errorf(CELER_ERR_NOT_FOUND, "%s:%d: environment variable '%s' is not set", p->shown,
                                (int)n->start_mark.line + 1, var);
    *out = v;
    return CELER_OK;
}

/* The bearer token file: inside the model folder, at most 16 KiB, one trailing newline dropped. */
static celer_status token_file(yparse *p, const yaml_node_t *n, const char *file, const char **out) {
    char path[PATH_MAX];
    celer_status st = celer_path_inside(p->mdir, file ? file : "", path, sizeof path);
    if (st) return celer_errorf(st, "%s:%d: bearer_token_file '%s' must be a file inside the model folder", p->shown,
                                (int)n->start_mark.line + 1, file ? file : "");
    FILE *f = fopen(path, "rb");
    if (!f) return celer_errorf(CELER_ERR_IO, "%s: cannot open bearer_token_file '%s'", p->shown, file);
    char buf[16384];
    size_t len = fread(buf, 1, sizeof buf, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) return yerr(p, n, "bearer_token_file '%s' is over 16 KiB", file);
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
    *out = celer_arena_strndup(p->arena, buf, len);
    return *out ? CELER_OK : celer_error_wrap(celer_error_status(), "%s", p->shown);
}

static celer_status parse_key(yparse *p, const struct remote_key *k, const yaml_node_t *v) {
    celer_remote_config *c = p->cfg;
    int64_t x = 0;
    const char *s;
    switch (k->kind) {
    case K_STR:
        if (!(s = yscalar(p, v))) return yerr(p, v, "'%s' must be a string", k->name);
        if (!strcmp(k->name, "url")) c->url = s;
        else if (!strcmp(k->name, "model")) c->model = s;
        else if (!strcmp(k->name, "version")) c->version = s;
        else if (!strcmp(k->name, "ca_file")) {
            char path[PATH_MAX];
            celer_status st = celer_path_inside(p->mdir, s, path, sizeof path);
            if (st) return celer_errorf(st, "%s:%d: ca_file '%s' must be a file inside the model folder", p->shown,
                                        (int)v->start_mark.line + 1, s);
            c->ca_file = celer_arena_strndup(p->arena, path, strlen(path));
        } else {
            const char *token;
            bool env = !strcmp(k->name, "bearer_token_env");
            CELER_TRY(env ? env_value(p, v, s, &token) : token_file(p, v, s, &token));
            if (!*token) return yerr(p, v, "the bearer token from %s '%s' is empty", k->name, s);
            CELER_TRY(add_header(p, v, "Authorization", ""));
            size_t len = strlen(token) + 32;
            char *h = celer_arena_alloc(p->arena, len);
            if (!h) return celer_error_wrap(celer_error_status(), "%s", p->shown);
            snprintf(h, len, "Authorization: Bearer %s", token);
            for (const char *q = token; *q; q++)
                if ((unsigned char)*q < 0x20) return yerr(p, v, "the bearer token from '%s' has a control character", s);
            c->headers[c->n_headers - 1] = h;
        }
        return CELER_OK;
    case K_INT:
        CELER_TRY(yint(p, v, k->name, k->lo, k->hi, &x));
        if (!strcmp(k->name, "timeout_ms")) c->timeout_ms = x;
        else if (!strcmp(k->name, "connect_timeout_ms")) c->connect_timeout_ms = x;
        else if (!strcmp(k->name, "health_interval_ms")) c->health_interval_ms = x;
        else if (!strcmp(k->name, "max_inflight")) c->max_inflight = (int)x;
        else if (!strcmp(k->name, "max_queue_size")) c->max_queue_size = (int)x;
        else if (!strcmp(k->name, "retries")) c->retries = (int)x;
        else c->max_batch_size = (int)x;
        return CELER_OK;
    case K_RATIO: {
        char *end;
        double d = (s = yscalar(p, v)) ? strtod(s, &end) : -1;
        if (!s || !*s || *end || !(d >= 0 && d <= 1)) return yerr(p, v, "'%s' must be a number from 0 to 1", k->name);
        c->retry_budget = d;
        return CELER_OK;
    }
    case K_CACHE:
        if ((s = yscalar(p, v))) {
            if (strcmp(s, "true") && strcmp(s, "false")) return yerr(p, v, "'cache' is true, false or {ttl: seconds}");
            c->cache_ttl_s = s[0] == 't' ? 60 : 0;
            return CELER_OK;
        }
        if (v->type != YAML_MAPPING_NODE) return yerr(p, v, "'cache' is true, false or {ttl: seconds}");
        /* {ttl: seconds} is read with the maps below */
        __attribute__((fallthrough));
    case K_BREAKER:
    case K_MAP:
        if (v->type != YAML_MAPPING_NODE) return yerr(p, v, "'%s' must be a mapping", k->name);
        for (yaml_node_pair_t *pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
            const yaml_node_t *kn = yaml_document_get_node(p->doc, pr->key), *vn = yaml_document_get_node(p->doc, pr->value);
            const char *ks = yscalar(p, kn), *vs = yscalar(p, vn);
            if (!ks || !vs) return yerr(p, vn, "'%s' takes names and scalar values", k->name);
            if (k->kind == K_CACHE) {
                char *end;
                double ttl = strtod(vs, &end);
                if (strcmp(ks, "ttl")) return yerr(p, kn, "'cache' takes only 'ttl', not '%s'", ks);
                if (!*vs || *end || !(ttl > 0 && ttl <= 30 * 86400))
                    return yerr(p, vn, "'cache' ttl must be more than 0 and at most 30 days in seconds, not %s", vs);
                c->cache_ttl_s = ttl;
            } else if (k->kind == K_BREAKER) {
                if (!strcmp(ks, "failures")) {
                    CELER_TRY(yint(p, vn, "circuit_breaker.failures", 1, 1000000, &x));
                    c->breaker_failures = (int)x;
                } else if (!strcmp(ks, "open_ms")) CELER_TRY(yint(p, vn, "circuit_breaker.open_ms", 1, 3600000, &c->breaker_open_ms));
                else return yerr(p, kn, "'circuit_breaker' takes failures and open_ms, not '%s'", ks);
            } else if (!strcmp(k->name, "headers")) {
                CELER_TRY(add_header(p, kn, ks, vs));
            } else {
                const char *val = NULL;
                CELER_TRY(env_value(p, vn, vs, &val));
                CELER_TRY(add_header(p, kn, ks, val));
            }
        }
        return CELER_OK;
    }
    return CELER_OK;
}

/* url: scheme://host[:port] with nothing after; grpc(s) are sent as http(s) over HTTP/2. */
static celer_status parse_url(yparse *p, const yaml_node_t *n) {
    celer_remote_config *c = p->cfg;
    static const char *const schemes[][2] = {{"http://", "http://"}, {"https://", "https://"},
                                             {"grpc://", "http://"}, {"grpcs://", "https://"}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(schemes); i++) {
        size_t sl = strlen(schemes[i][0]);
        if (strncmp(c->url, schemes[i][0], sl)) continue;
        const char *host = c->url + sl;
        size_t hl = strlen(host);
        while (hl && host[hl - 1] == '/') hl--;
        if (!hl || memchr(host, '/', hl) || memchr(host, '?', hl) || memchr(host, '@', hl))
            return yerr(p, n, "url '%s' must be scheme://host[:port] (no path, query or user)", c->url);
        c->grpc = i >= 2;
        size_t len = strlen(schemes[i][1]) + hl + 1;
        char *u = celer_arena_alloc(p->arena, len);
        if (!u) return celer_error_wrap(celer_error_status(), "%s", p->shown);
        snprintf(u, len, "%s%.*s", schemes[i][1], (int)hl, host);
        c->base = u;
        c->url = celer_arena_strndup(p->arena, c->url, sl + hl);
        if (!c->url) return celer_error_wrap(celer_error_status(), "%s", p->shown);
        return CELER_OK;
    }
    return yerr(p, n, "url '%s' must start with http://, https://, grpc:// or grpcs://", c->url);
}

celer_status celer_remote_parse(const char *text, size_t len, const char *shown, const char *mdir, const char *name,
                                celer_arena *arena, celer_remote_config *out) {
    *out = (celer_remote_config){.model = name, .version = "", .timeout_ms = 10000, .connect_timeout_ms = 1000, .health_interval_ms = 5000,
                                 .max_inflight = 64, .max_queue_size = 1024, .retries = 2, .retry_budget = 0.1,
                                 .breaker_failures = 5, .breaker_open_ms = 1000};
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", shown);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        celer_status st = celer_errorf(CELER_ERR_PARSE, "%s:%zu:%zu: %s", shown, parser.problem_mark.line + 1,
                                       parser.problem_mark.column + 1, parser.problem ? parser.problem : "malformed YAML");
        yaml_parser_delete(&parser);
        return st;
    }
    yaml_parser_delete(&parser);
    yparse p = {.doc = &doc, .shown = shown, .mdir = mdir, .name = name, .arena = arena, .cfg = out};
    celer_status st = CELER_OK;
    const yaml_node_t *root = yaml_document_get_root_node(&doc), *url_node = root;
    if (!root || root->type != YAML_MAPPING_NODE) st = yerr(&p, root, "remote.yaml must be a mapping with at least 'url'");
    for (yaml_node_pair_t *pr = st ? NULL : root->data.mapping.pairs.start; pr && pr < root->data.mapping.pairs.top && !st;
         pr++) {
        const yaml_node_t *kn = yaml_document_get_node(&doc, pr->key), *vn = yaml_document_get_node(&doc, pr->value);
        const char *ks = yscalar(&p, kn);
        const struct remote_key *k = NULL;
        for (size_t i = 0; ks && i < CELER_ARRAY_LEN(remote_keys) && !k; i++)
            if (!strcmp(remote_keys[i].name, ks)) k = &remote_keys[i];
        if (!k) {
            st = yerr(&p, kn, "unknown key '%s' (keys: url model version timeout_ms connect_timeout_ms health_interval_ms max_inflight "
                      "max_queue_size retries retry_budget circuit_breaker max_batch_size cache bearer_token_env "
                      "bearer_token_file headers headers_env ca_file)", ks ? ks : "?");
            break;
        }
        if (!strcmp(ks, "url")) url_node = vn;
        st = parse_key(&p, k, vn);
    }
    if (!st && !out->url) st = yerr(&p, root, "'url' is required (http://, https://, grpc:// or grpcs://host:port)");
    if (!st) st = parse_url(&p, url_node);
    if (!st && (!*out->model || strchr(out->model, '/'))) st = yerr(&p, root, "'model' must be a model name");
    yaml_document_delete(&doc);
    return st;
}

/* ---- the hub and its remotes ---- */

typedef enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state;
/* Errors by kind, for celer_remote_errors_total{kind}. */
typedef enum err_kind { E_CONNECT, E_TIMEOUT, E_STATUS, E_PROTOCOL, E_CIRCUIT, E_QUEUE_FULL, E_COUNT } err_kind;
static const char *const err_kind_names[E_COUNT] = {"connect", "timeout", "status", "protocol", "circuit_open",
                                                    "queue_full"};

typedef struct rcall rcall;

struct celer_remote {
    celer_remote_hub *hub;
    celer_remote_config cfg;
    char name[256];
    celer_remote_desc desc;
    const char *infer_url, *ready_url; /* where calls and probes go: HTTP, the model's endpoints;
                                          gRPC, the RPCs' paths on the HTTP/2 pool */
    char *ready_body;            /* gRPC: ModelReadyRequest, framed */
    celer_h2c *h2;               /* gRPC: the HTTP/2 client's pool; NULL for HTTP (libcurl) */
    celer_h2c_header h2_headers[CELER_REMOTE_MAX_HEADERS]; /* the config's headers, names lower-cased */
    size_t ready_len;
    bool batched;                /* the upstream batches and the config gathers */
    /* under the hub's lock */
    celer_job **ring;            /* waiting jobs: max_queue_size, plus those about to take a free place
                                    in flight (the hub's thread forms calls a moment later) */
    int ring_cap;
    int head, n_waiting;
    int n_inflight;              /* calls sent or waiting to retry, probes excluded */
    rcall *retries;              /* calls waiting for their retry */
    int consecutive;             /* failures in a row */
    int64_t opened_ns;           /* the circuit opened (or its probe failed) then */
    int64_t next_health_ns;      /* a closed circuit's next probe, unless a call answers before */
    bool probing;
    double budget;               /* retry tokens */
    bool closing;
    char last_error[MESSAGE_MAX];
    atomic_int breaker;          /* breaker_state, read without the lock */
    void (*on_batch)(void *user, const celer_sched_batch *b); /* after each call's jobs got done */
    void *on_batch_user;
    celer_remote *next;
    /* metrics */
    celer_series *m_duration, *m_errors[E_COUNT], *m_retries, *m_inflight, *m_waiting, *m_circuit;
};

struct celer_remote_hub {
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t idle;       /* a remote's calls ended (close waits on it) */
    bool stop;
    celer_remote *remotes;
    celer_metrics *metrics;
    size_t max_response;
    uint64_t rng;
    CURL *spare[64];           /* easy handles kept for reuse (hub thread only) */
    bool progress;             /* a call ended in this iteration: look again before sleeping */
    bool sleeping, queued;     /* (under mu) the loop is about to poll or polls; a job was queued since
                                  it last looked: a submit wakes it only when it sleeps */
    rcall *spare_calls;        /* ended calls kept for reuse (under mu) */
    int n_spare_calls;
    /* the gRPC pools polled this turn, and their sockets (the hub's thread; grown under mu) */
    celer_remote **h2_list;
    struct pollfd *pfds;
    struct curl_waitfd *wfds;
    int *first;
    int h2_cap;
    uint64_t loop_gen;         /* iterations of the hub's loop begun (under mu): a remote taken out of
                                  the list is no longer used once it moved on */
    int n_spare;
};

/* One call upstream (or a readiness probe: n_jobs 0), from its forming to its completion. */
struct rcall {
    celer_remote *r;
    int n_jobs;
    int64_t deadline_ns;                /* the earliest of its jobs' and the config's; 0 for a probe */
    int attempt;
    int64_t retry_at_ns, formed_ns, sent_ns;
    rcall *next;
    CURL *h;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    size_t json_len;                    /* of the request's JSON (HTTP) */
    size_t header_len;                  /* the answer's Inference-Header-Content-Length; SIZE_MAX when absent */
    int http_status;                    /* HTTP/2 without libcurl: ":status" */
    int grpc_status;                    /* -1 when absent */
    char grpc_message[512];
    celer_span *span;                   /* CLIENT span when a job is traced */
    /* gRPC over h2c: the call as the HTTP/2 client takes it */
    celer_h2c_call h2;
    celer_h2c_header h2_headers[CELER_REMOTE_MAX_HEADERS + 4];
    char grpc_timeout[32], traceparent[64];
    bool sync_done;                     /* a blocking exchange at open (exchange()) */
    CURLcode sync_res;
    /* from here on, kept when the call is reused (call_new) */
    celer_job *jobs[CELER_MAX_BATCH_JOBS]; /* read up to n_jobs */
    int64_t rows[CELER_MAX_BATCH_JOBS];    /* of each job, when gathered */
    celer_jbuf req, resp;                  /* their memory */
    celer_arena arena;                     /* the decoded answer */
};

static void remote_metrics(celer_remote *r) {
    celer_metrics *m = r->hub->metrics;
    char name[600], labels[700];
    celer_metrics_escape(r->name, name, sizeof name);
    /* a remote model serves as version 1 (registry.c): its series go with the version's at unload */
    snprintf(labels, sizeof labels, "model=\"%s\",version=\"1\"", name);
    r->m_duration = celer_metrics_histogram(m, "celer_remote_call_duration_seconds",
                                            "Time of each call to a remote model's upstream, sent to answered.", labels,
                                            celer_metrics_latency_buckets, celer_metrics_latency_bucket_count);
    for (int k = 0; k < E_COUNT; k++) {
        char with_kind[800];
        snprintf(with_kind, sizeof with_kind, "%s,kind=\"%s\"", labels, err_kind_names[k]);
        r->m_errors[k] = celer_metrics_counter(m, "celer_remote_errors_total",
                                               "Failed calls of remote models, by kind of failure.", with_kind);
    }
    r->m_retries = celer_metrics_counter(m, "celer_remote_retries_total", "Calls of remote models sent again.", labels);
    r->m_inflight = celer_metrics_gauge(m, "celer_remote_inflight", "Calls of a remote model in flight.", labels);
    r->m_waiting = celer_metrics_gauge(m, "celer_remote_waiting", "Calls of a remote model waiting for a place in flight.",
                                       labels);
    r->m_circuit = celer_metrics_gauge(m, "celer_remote_circuit_state",
                                       "A remote model's circuit breaker: 0 closed, 1 open, 2 half-open.", labels);
}

/* ---- encoding calls ---- */

/* The call's request body: HTTP JSON header + binary tensors, or a framed ModelInferRequest. The
 * inputs of gathered jobs are concatenated along the batch dim. */
static celer_status encode_call(rcall *c) {
    celer_remote *r = c->r;
    const celer_remote_desc *d = &r->desc;
    celer_jbuf *b = &c->req;
    int64_t total_rows = 0;
    for (int j = 0; j < c->n_jobs; j++) total_rows += c->rows[j];
    size_t sizes[CELER_CONFIG_MAX_IO];
    for (int i = 0; i < d->n_inputs && i < CELER_CONFIG_MAX_IO; i++) {
        sizes[i] = 0;
        for (int j = 0; j < c->n_jobs; j++) {
            size_t n;
            CELER_TRY(celer_kserve_binary_size(&c->jobs[j]->inputs[i], d->inputs[i].name, &n));
            sizes[i] += n;
        }
    }
    const celer_tensor *first = c->jobs[0]->inputs;
    if (!r->cfg.grpc) {
        celer_jbuf_raw(b, "{\"inputs\":[", 11);
        for (int i = 0; i < d->n_inputs; i++) {
            const celer_tensor *t = &first[i];
            celer_jbuf_raw(b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
            celer_jbuf_str(b, d->inputs[i].name);
            celer_jbuf_raw(b, ",\"datatype\":", 12);
            celer_jbuf_str(b, celer_dtype_kserve_name(t->dtype));
            celer_jbuf_raw(b, ",\"shape\":[", 10);
            for (int k = 0; k < t->shape.rank; k++) {
                if (k) celer_jbuf_raw(b, ",", 1);
                celer_jbuf_int(b, k == 0 && c->n_jobs > 1 ? total_rows : t->shape.dims[k]);
            }
            celer_jbuf_raw(b, "],\"parameters\":{\"binary_data_size\":", 35);
            celer_jbuf_uint(b, sizes[i]);
            celer_jbuf_raw(b, "}}", 2);
        }
        celer_jbuf_raw(b, "],\"outputs\":[", 13);
        for (int i = 0; i < d->n_outputs; i++) {
            celer_jbuf_raw(b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
            celer_jbuf_str(b, d->outputs[i].name);
            celer_jbuf_raw(b, ",\"parameters\":{\"binary_data\":true}}", 35);
        }
        celer_jbuf_raw(b, "]", 1);
        if (c->deadline_ns) { /* what is left of it, in microseconds, as Triton's `timeout` */
            celer_jbuf_raw(b, ",\"parameters\":{\"timeout\":", 25);
            celer_jbuf_int(b, CELER_MAX((c->deadline_ns - now_ns()) / 1000, 1));
            celer_jbuf_raw(b, "}", 1);
        }
        celer_jbuf_raw(b, "}", 1);
        c->json_len = b->len;
        for (int i = 0; i < d->n_inputs; i++)
            for (int j = 0; j < c->n_jobs; j++) {
                size_t n;
                CELER_TRY(celer_kserve_binary_size(&c->jobs[j]->inputs[i], d->inputs[i].name, &n));
                celer_kserve_write_binary(b, &c->jobs[j]->inputs[i], n);
            }
        return b->status;
    }
    /* gRPC: the 5-byte prefix, then ModelInferRequest */
    celer_jbuf_raw(b, "\0\0\0\0\0", 5);
    celer_pb_put_str(b, 1, r->cfg.model);
    if (*r->cfg.version) celer_pb_put_str(b, 2, r->cfg.version);
    for (int i = 0; i < d->n_inputs; i++) {
        const celer_tensor *t = &first[i];
        size_t m = celer_pb_begin(b, 5);
        celer_pb_put_str(b, 1, d->inputs[i].name);
        celer_pb_put_str(b, 2, celer_dtype_kserve_name(t->dtype));
        size_t s = celer_pb_begin(b, 3);
        for (int k = 0; k < t->shape.rank; k++)
            celer_pb_put_raw_varint(b, (uint64_t)(k == 0 && c->n_jobs > 1 ? total_rows : t->shape.dims[k]));
        celer_pb_end(b, s);
        celer_pb_end(b, m);
    }
    for (int i = 0; i < d->n_outputs; i++) {
        size_t m = celer_pb_begin(b, 6);
        celer_pb_put_str(b, 1, d->outputs[i].name);
        celer_pb_end(b, m);
    }
    for (int i = 0; i < d->n_inputs; i++) {
        size_t m = celer_pb_begin(b, 7);
        for (int j = 0; j < c->n_jobs; j++) {
            size_t n;
            CELER_TRY(celer_kserve_binary_size(&c->jobs[j]->inputs[i], d->inputs[i].name, &n));
            celer_kserve_write_binary(b, &c->jobs[j]->inputs[i], n);
        }
        celer_pb_end(b, m);
    }
    if (b->status) return b->status;
    uint32_t len = (uint32_t)(b->len - 5);
    unsigned char *p = (unsigned char *)b->data;
    p[1] = (unsigned char)(len >> 24), p[2] = (unsigned char)(len >> 16), p[3] = (unsigned char)(len >> 8),
    p[4] = (unsigned char)len;
    return CELER_OK;
}

/* ---- decoding answers ---- */

/* A packed repeated int64 (a shape) appended to dims; CELER_ERR_LIMIT past CELER_MAX_RANK. */
static celer_status packed_dims(const uint8_t *p, size_t len, int64_t *dims, int *rank) {
    for (const uint8_t *end = p + len; p < end;) {
        uint64_t v = 0;
        for (int shift = 0; p < end && shift < 64; shift += 7) {
            uint8_t b = *p++;
            v |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
        }
        if (*rank == CELER_MAX_RANK) return celer_errorf(CELER_ERR_LIMIT, "a shape has more than %d dims", CELER_MAX_RANK);
        dims[(*rank)++] = (int64_t)v;
    }
    return CELER_OK;
}

/* Dims of a JSON shape array (at most CELER_MAX_RANK). */
static celer_status json_dims(const celer_json *shape, celer_arena *a, int64_t *dims, int *rank) {
    *rank = 0;
    if (shape && shape->type == CELER_JSON_ARRAY && shape->n == 0) return CELER_OK;
    if (!shape || shape->type != CELER_JSON_NUMERIC_ARRAY) return celer_errorf(CELER_ERR_PARSE, "a shape is not an array of integers");
    int n = 1;
    for (size_t i = 0; i < shape->raw_len; i++) n += shape->raw[i] == ',';
    if (n > CELER_MAX_RANK) return celer_errorf(CELER_ERR_LIMIT, "a shape has more than %d dims", CELER_MAX_RANK);
    celer_shape s = {.rank = 1, .dims = {n}};
    CELER_TRY(celer_json_decode_tensor(shape, CELER_INT64, &s, dims, a, "shape"));
    *rank = n;
    return CELER_OK;
}


/* What an answer is checked against, and where its decoding goes. */
typedef struct answer {
    const celer_remote_desc *d;
    int64_t rows;        /* rows sent, when the upstream batches */
    celer_arena *arena;
} answer;

/* Checks output `i` as the upstream declares it (datatype, dims, the rows sent) against its
 * metadata, into t's dtype and shape. */
static celer_status check_output(const answer *a, int i, const char *datatype, size_t dt_len, const int64_t *dims,
                                 int rank, celer_tensor *t) {
    const celer_io_desc *o = &a->d->outputs[i];
    char dt[32];
    snprintf(dt, sizeof dt, "%.*s", (int)CELER_MIN(dt_len, 31), datatype);
    celer_dtype dtype = celer_dtype_from_kserve_name(dt);
    if (dtype != o->dtype)
        return celer_errorf(CELER_ERR_DTYPE, "output '%s' has datatype %s, its metadata says %s", o->name, dt,
                            celer_dtype_kserve_name(o->dtype));
    if (rank != o->shape.rank || rank > CELER_MAX_RANK)
        return celer_errorf(CELER_ERR_SHAPE, "output '%s' has %d dims, its metadata says %d", o->name, rank, o->shape.rank);
    t->dtype = dtype;
    t->shape.rank = rank;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0 || (o->shape.dims[k] >= 0 && dims[k] != o->shape.dims[k]))
            return celer_errorf(CELER_ERR_SHAPE, "output '%s' dim %d is %lld, its metadata says %lld", o->name, k,
                                (long long)dims[k], (long long)o->shape.dims[k]);
        t->shape.dims[k] = dims[k];
    }
    if (a->d->max_batch_size > 0 && (rank < 1 || dims[0] != a->rows))
        return celer_errorf(CELER_ERR_SHAPE, "output '%s' has %lld rows for a request of %lld", o->name,
                            rank ? (long long)dims[0] : 0LL, (long long)a->rows);
    size_t bytes; /* numel * element size (a celer_str for BYTES) must fit: the callers multiply */
    if (celer_tensor_bytes(t, &bytes)) return celer_errorf(CELER_ERR_SHAPE, "output '%s': shape too large", o->name);
    return CELER_OK;
}

/* Output `i` in binary form (n bytes at data): checked, then t points into the answer (copied
 * into the call's arena when unaligned for its type; BYTES elements are copied there). */
static celer_status take_output(const answer *a, int i, const char *datatype, size_t dt_len, const int64_t *dims, int rank,
                                const char *data, size_t n, celer_tensor *t) {
    CELER_TRY(check_output(a, i, datatype, dt_len, dims, rank, t));
    const char *name = a->d->outputs[i].name;
    int64_t numel = celer_shape_numel(&t->shape);
    if (t->dtype == CELER_STRING) {
        char what[300];
        snprintf(what, sizeof what, "output '%s'", name);
        return celer_kserve_decode_bytes(data, n, (size_t)numel, true, a->arena, what, &t->data);
    }
    size_t es = celer_dtype_size(t->dtype), need = (size_t)numel * es;
    if (n != need)
        return celer_errorf(CELER_ERR_SHAPE, "output '%s' has %zu bytes for %lld elements of %zu", name, n,
                            (long long)numel, es);
    if (es > 1 && ((uintptr_t)data % (es > 8 ? 8 : es))) {
        char *copy = celer_arena_alloc_uninit(a->arena, need ? need : 1);
        if (!copy) return celer_error_wrap(celer_error_status(), "output '%s'", name);
        memcpy(copy, data, need);
        data = copy;
    }
    t->data = (void *)data;
    return CELER_OK;
}

/* HTTP: {"outputs":[{"name","datatype","shape","parameters":{"binary_data_size"}}...]} then the
 * binary parts, in the order of the outputs that have them; or "data" as JSON. */
static celer_status decode_http(const answer *a, const char *body, size_t len, size_t json_len, celer_tensor *outs) {
    const celer_remote_desc *d = a->d;
    size_t hl = json_len == SIZE_MAX ? len : json_len;
    if (hl > len) return celer_errorf(CELER_ERR_PARSE, "Inference-Header-Content-Length %zu is past the body's %zu bytes", hl, len);
    celer_json *root;
    CELER_TRY(celer_json_parse(body, hl, a->arena, &root));
    const celer_json *outputs = celer_json_get(root, "outputs");
    if (!outputs || outputs->type != CELER_JSON_ARRAY) return celer_errorf(CELER_ERR_PARSE, "the answer has no outputs array");
    bool seen[CELER_CONFIG_MAX_IO] = {0};
    size_t off = hl;
    for (int k = 0; k < outputs->n; k++) {
        const celer_json *o = &outputs->items[k], *name = celer_json_get(o, "name"), *dt = celer_json_get(o, "datatype"),
                         *shape = celer_json_get(o, "shape"), *params = celer_json_get(o, "parameters"),
                         *bsize = params ? celer_json_get(params, "binary_data_size") : NULL;
        if (!name || name->type != CELER_JSON_STRING || !dt || dt->type != CELER_JSON_STRING || !shape ||
            (shape->type != CELER_JSON_ARRAY && shape->type != CELER_JSON_NUMERIC_ARRAY))
            return celer_errorf(CELER_ERR_PARSE, "output %d lacks name, datatype or shape", k);
        int i = 0;
        while (i < d->n_outputs && strcmp(d->outputs[i].name, name->string)) i++;
        if (i == d->n_outputs || i >= CELER_CONFIG_MAX_IO) { /* not asked for: its binary part is skipped */
            if (!bsize) continue;
            if (bsize->type != CELER_JSON_NUMBER || bsize->number < 0 || bsize->number > (double)(len - off))
                return celer_errorf(CELER_ERR_PARSE, "output '%s': binary_data_size past the body", name->string);
            off += (size_t)bsize->number;
            continue;
        }
        int64_t dims[CELER_MAX_RANK];
        int rank;
        CELER_TRY(json_dims(shape, a->arena, dims, &rank));
        celer_tensor *t = &outs[i];
        if (bsize) {
            if (bsize->type != CELER_JSON_NUMBER || bsize->number < 0 || bsize->number > (double)(len - off))
                return celer_errorf(CELER_ERR_PARSE, "output '%s': binary_data_size past the body", name->string);
            size_t n = (size_t)bsize->number;
            CELER_TRY(take_output(a, i, dt->string, dt->string_len, dims, rank, body + off, n, t));
            off += n;
        } else {
            const celer_json *data = celer_json_get(o, "data");
            if (!data) return celer_errorf(CELER_ERR_PARSE, "output '%s' has neither data nor binary_data_size", name->string);
            CELER_TRY(check_output(a, i, dt->string, dt->string_len, dims, rank, t));
            int64_t numel = celer_shape_numel(&t->shape);
            if ((uint64_t)numel > data->raw_len) /* each element takes a byte of the text at least: before allocating */
                return celer_errorf(CELER_ERR_SHAPE, "output '%s' has %lld elements in %zu bytes of data", name->string,
                                    (long long)numel, data->raw_len);
            size_t es = t->dtype == CELER_STRING ? sizeof(celer_str) : celer_dtype_size(t->dtype);
            void *buf = celer_arena_alloc(a->arena, (size_t)numel * es + 1);
            if (!buf) return celer_error_wrap(celer_error_status(), "output '%s'", name->string);
            CELER_TRY(celer_json_decode_tensor(data, t->dtype, &t->shape, buf, a->arena, name->string));
            t->data = buf;
        }
        seen[i] = true;
    }
    for (int i = 0; i < d->n_outputs; i++)
        if (!seen[i]) return celer_errorf(CELER_ERR_INVALID, "the answer lacks output '%s'", d->outputs[i].name);
    return CELER_OK;
}

/* gRPC: the framed ModelInferResponse; outputs (5) with raw_output_contents (6) in their order. */
static celer_status decode_grpc(const answer *a, const char *body, size_t len, celer_tensor *outs) {
    const celer_remote_desc *d = a->d;
    const uint8_t *p = (const uint8_t *)body;
    if (len < 5 || p[0] != 0) return celer_errorf(CELER_ERR_PARSE, "the answer is not one uncompressed gRPC message");
    size_t mlen = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (mlen != len - 5) return celer_errorf(CELER_ERR_PARSE, "gRPC message of %zu bytes in %zu", mlen, len - 5);
    celer_pb_reader rd = {p + 5, p + len};
    celer_pb_field f;
    int n_out = 0, n_raw = 0, rc;
    int which[CELER_CONFIG_MAX_IO];
    struct {
        const char *dt;
        size_t dt_len;
        int rank;
        int64_t dims[CELER_MAX_RANK];
    } meta[CELER_CONFIG_MAX_IO];
    while ((rc = celer_pb_next(&rd, &f, "ModelInferResponse")) > 0) {
        if (f.number == 5 && f.wire == 2) {
            if (n_out == CELER_CONFIG_MAX_IO) return celer_errorf(CELER_ERR_LIMIT, "more than %d outputs", CELER_CONFIG_MAX_IO);
            celer_pb_reader o = {f.p, f.p + f.len};
            celer_pb_field g;
            const char *name = "";
            size_t name_len = 0;
            meta[n_out].dt = "", meta[n_out].dt_len = 0, meta[n_out].rank = 0;
            int orc;
            while ((orc = celer_pb_next(&o, &g, "InferOutputTensor")) > 0) {
                if (g.number == 1 && g.wire == 2) name = (const char *)g.p, name_len = g.len;
                else if (g.number == 2 && g.wire == 2) meta[n_out].dt = (const char *)g.p, meta[n_out].dt_len = g.len;
                else if (g.number == 3 && g.wire == 0 && meta[n_out].rank == CELER_MAX_RANK)
                    return celer_errorf(CELER_ERR_LIMIT, "a shape has more than %d dims", CELER_MAX_RANK);
                else if (g.number == 3 && g.wire == 0)
                    meta[n_out].dims[meta[n_out].rank++] = (int64_t)g.varint;
                else if (g.number == 3 && g.wire == 2)
                    CELER_TRY(packed_dims(g.p, g.len, meta[n_out].dims, &meta[n_out].rank));
                else if (g.number == 5)
                    return celer_errorf(CELER_ERR_UNSUPPORTED, "output '%.*s' came in typed contents, not raw",
                                        (int)name_len, name);
            }
            if (orc < 0) return celer_error_status();
            int i = 0;
            while (i < d->n_outputs && (strlen(d->outputs[i].name) != name_len || memcmp(d->outputs[i].name, name, name_len))) i++;
            which[n_out++] = i; /* n_outputs: not asked for */
        } else if (f.number == 6 && f.wire == 2) {
            if (n_raw >= n_out) return celer_errorf(CELER_ERR_PARSE, "more raw_output_contents than outputs");
            int i = which[n_raw];
            if (i < d->n_outputs)
                CELER_TRY(take_output(a, i, meta[n_raw].dt, meta[n_raw].dt_len, meta[n_raw].dims, meta[n_raw].rank,
                                      (const char *)f.p, f.len, &outs[i]));
            n_raw++;
        }
    }
    if (rc < 0) return celer_error_status();
    for (int i = 0; i < d->n_outputs; i++) {
        bool got = false;
        for (int k = 0; k < n_raw; k++) got |= which[k] == i;
        if (!got) return celer_errorf(CELER_ERR_INVALID, "the answer lacks output '%s' (in raw_output_contents)", d->outputs[i].name);
    }
    return CELER_OK;
}

celer_status celer_remote_decode(const celer_remote_desc *d, bool grpc, int64_t rows, const char *body, size_t len,
                                 size_t json_len, celer_arena *arena, celer_tensor *outs) {
    answer a = {d, rows, arena};
    return grpc ? decode_grpc(&a, body ? body : "", len, outs) : decode_http(&a, body ? body : "", len, json_len, outs);
}

/* ---- the exchange: curl callbacks shared by calls, probes and the loader ---- */

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    rcall *c = user;
    celer_jbuf_raw(&c->resp, p, size * n);
    return c->resp.status ? 0 : size * n;
}

/* One header or trailer of an answer: the ones read are kept in the call. */
static void take_header(rcall *c, const char *name, size_t nl, const char *v, size_t vl) {
    char num[32];
#define IS(lit) (nl == sizeof(lit) - 1 && !strncasecmp(name, lit, nl))
    if (IS("inference-header-content-length")) {
        snprintf(num, sizeof num, "%.*s", (int)CELER_MIN(vl, 31), v);
        c->header_len = (size_t)strtoull(num, NULL, 10);
    } else if (IS(":status")) {
        snprintf(num, sizeof num, "%.*s", (int)CELER_MIN(vl, 31), v);
        c->http_status = atoi(num);
    } else if (IS("grpc-status")) {
        snprintf(num, sizeof num, "%.*s", (int)CELER_MIN(vl, 31), v);
        c->grpc_status = atoi(num);
    } else if (IS("grpc-message")) { /* percent-encoded */
        size_t o = 0;
        for (size_t i = 0; i < vl && o + 1 < sizeof c->grpc_message; i++) {
            if (v[i] == '%' && i + 2 < vl && isxdigit((unsigned char)v[i + 1]) && isxdigit((unsigned char)v[i + 2])) {
                char hex[3] = {v[i + 1], v[i + 2], 0};
                c->grpc_message[o++] = (char)strtol(hex, NULL, 16);
                i += 2;
            } else {
                c->grpc_message[o++] = v[i];
            }
        }
        c->grpc_message[o] = 0;
    }
#undef IS
}

/* Header lines and, on HTTP/2, trailers (libcurl hands both here). */
static size_t on_header(char *p, size_t size, size_t n, void *user) {
    size_t len = size * n;
    const char *colon = memchr(p, ':', len);
    if (colon && colon > p) {
        const char *v = colon + 1, *end = p + len;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
        take_header(user, p, (size_t)(colon - p), v, (size_t)(end - v));
    }
    return len;
}

/* Sets up c->h (HTTP/1.1: gRPC goes through h2client.h) for a POST of c->req, or a GET of `url`
 * when c->req is empty. */
static celer_status setup_easy(rcall *c, const char *url, int64_t timeout_ms, const char *traceparent) {
    celer_remote *r = c->r;
    const celer_remote_config *cfg = &r->cfg;
    CURL *h = c->h;
    c->header_len = SIZE_MAX;
    c->grpc_status = -1;
    c->grpc_message[0] = 0;
    c->errbuf[0] = 0;
    celer_jbuf_reset(&c->resp);
    curl_slist_free_all(c->headers);
    struct curl_slist *hs = NULL;
    char line[128];
    hs = curl_slist_append(hs, "Expect:"); /* no 100-continue round trip */
    if (c->req.len) {
        hs = curl_slist_append(hs, "Content-Type: application/octet-stream");
        snprintf(line, sizeof line, "Inference-Header-Content-Length: %zu", c->json_len);
        hs = curl_slist_append(hs, line);
    }
    if (traceparent) {
        snprintf(line, sizeof line, "traceparent: %s", traceparent);
        hs = curl_slist_append(hs, line);
    }
    for (int i = 0; i < cfg->n_headers; i++) hs = curl_slist_append(hs, cfg->headers[i]);
    if (!hs) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the headers of a call");
    c->headers = hs;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CELER_MAX(timeout_ms, 1));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    if (cfg->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->req.len) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req.data ? c->req.data : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    return CELER_OK;
}

/* What became of one exchange: its status, the kind of failure, whether it may be sent again
 * (it did not reach the model) and whether it counts toward opening the circuit. */
typedef struct verdict {
    celer_status st;
    err_kind kind;
    bool retryable, down;
} verdict;

/* The error text of an HTTP answer ({"error": "..."}), or its first bytes. */
static void http_error_text(rcall *c, char *out, size_t cap) {
    celer_json *root;
    const char *body = c->resp.data ? c->resp.data : "";
    celer_arena a;
    celer_arena_init(&a, 4096, 1 << 20);
    const celer_json *e = NULL;
    if (!celer_json_parse(body, CELER_MIN(c->resp.len, (size_t)65536), &a, &root)) e = celer_json_get(root, "error");
    if (e && e->type == CELER_JSON_STRING) snprintf(out, cap, "%s", e->string);
    else snprintf(out, cap, "%.*s", (int)CELER_MIN(c->resp.len, (size_t)200), body);
    celer_arena_free(&a);
}

static void classify(rcall *c, CURLcode res, char *msg, size_t cap, verdict *v) {
    const celer_remote *r = c->r;
    long http = c->http_status;
    if (c->h) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &http);
    *v = (verdict){.st = CELER_OK};
    char text[600];
    int n = snprintf(msg, cap, "upstream %s model '%s': ", r->cfg.url, r->cfg.model);
    msg += n, cap -= (size_t)n;
    if (res == CURLE_OPERATION_TIMEDOUT) {
        *v = (verdict){CELER_ERR_TIMEOUT, E_TIMEOUT, false, true};
        snprintf(msg, cap, "timed out (%s)", c->errbuf[0] ? c->errbuf : "no answer in time");
    } else if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST) {
        *v = (verdict){CELER_ERR_UNAVAILABLE, E_CONNECT, true, true};
        snprintf(msg, cap, "cannot connect: %s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    } else if (res == CURLE_WRITE_ERROR && c->resp.status) {
        *v = (verdict){CELER_ERR_UPSTREAM, E_PROTOCOL, false, false};
        snprintf(msg, cap, "the answer is over %zu bytes", c->resp.max);
    } else if (res != CURLE_OK) { /* the connection broke: the model may have run, so it is not sent again */
        *v = (verdict){CELER_ERR_UNAVAILABLE, E_CONNECT, false, true};
        snprintf(msg, cap, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
    } else if (r->cfg.grpc) {
        int g = c->grpc_status;
        if (http != 200 || g < 0) {
            *v = (verdict){CELER_ERR_UPSTREAM, E_PROTOCOL, false, true};
            snprintf(msg, cap, "not a gRPC answer (HTTP status %ld%s)", http, g < 0 ? ", no grpc-status" : "");
        } else if (g) {
            /* the gRPC code's meaning, as a KServe client would take it */
            celer_status st = g == 3 || g == 11 ? CELER_ERR_INVALID : g == 4 ? CELER_ERR_TIMEOUT
                              : g == 8 || g == 14 || g == 1 ? CELER_ERR_UNAVAILABLE : CELER_ERR_UPSTREAM;
            *v = (verdict){st, g == 4 ? E_TIMEOUT : E_STATUS, g == 14, g == 14 || g == 13 || g == 2 || g == 4};
            snprintf(msg, cap, "%sgRPC status %d: %s", g == 4 ? "timed out upstream: " : "", g, c->grpc_message);
        }
    } else if (http != 200) {
        http_error_text(c, text, sizeof text);
        celer_status st = http == 413 ? CELER_ERR_LIMIT : http == 408 || http == 504 ? CELER_ERR_TIMEOUT
                          : http == 429 || http == 503 ? CELER_ERR_UNAVAILABLE
                          : http >= 400 && http < 500 && http != 401 && http != 403 && http != 404 ? CELER_ERR_INVALID
                                                                                                   : CELER_ERR_UPSTREAM;
        bool late = st == CELER_ERR_TIMEOUT;
        *v = (verdict){st, late ? E_TIMEOUT : E_STATUS, http == 503, http >= 500 || http == 408};
        snprintf(msg, cap, "%sHTTP status %ld: %s", late ? "timed out upstream: " : "", http, text);
    }
}

/* ---- the hub's thread ---- */

/* A call for r: a kept one (`h` given: under the hub's lock), with its buffers' memory, or a new
 * one. */
static rcall *call_new(celer_remote *r, celer_remote_hub *h) {
    rcall *c = h ? h->spare_calls : NULL;
    if (c) {
        h->spare_calls = c->next;
        h->n_spare_calls--;
        memset(c, 0, offsetof(rcall, jobs));
        celer_jbuf_reset(&c->req);
        celer_jbuf_reset(&c->resp);
        c->resp.status = c->req.status = CELER_OK;
    } else {
        if (!(c = calloc(1, sizeof *c))) return NULL;
        celer_jbuf_init(&c->req, 0);
        celer_jbuf_init(&c->resp, r->hub->max_response);
        celer_arena_init(&c->arena, 4096, r->hub->max_response * 2 + (1u << 20));
    }
    c->r = r;
    return c;
}

static void call_free(rcall *c) {
    celer_remote_hub *h = c->r->hub;
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    free(c->span);
    c->span = NULL;
    celer_arena_free(&c->arena);
    celer_arena_init(&c->arena, 4096, h->max_response * 2 + (1u << 20));
    /* kept for the next call, with its buffers when they are small: a call costs no allocation */
    pthread_mutex_lock(&h->mu);
    bool keep = h->n_spare_calls < 64 && c->req.cap <= (1u << 20) && c->resp.cap <= (1u << 20);
    if (keep) {
        c->next = h->spare_calls;
        h->spare_calls = c;
        h->n_spare_calls++;
    }
    pthread_mutex_unlock(&h->mu);
    if (keep) return;
    celer_jbuf_free(&c->req);
    celer_jbuf_free(&c->resp);
    celer_arena_free(&c->arena);
    free(c);
}

static CURL *easy_get(celer_remote_hub *h) { return h->n_spare ? h->spare[--h->n_spare] : curl_easy_init(); }
static void easy_put(celer_remote_hub *h, CURL *e) {
    if (!e) return;
    if (h->n_spare < (int)CELER_ARRAY_LEN(h->spare)) {
        curl_easy_reset(e);
        h->spare[h->n_spare++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static int64_t job_rows(const celer_remote *r, const celer_job *j) {
    if (r->desc.max_batch_size <= 0 || r->desc.n_inputs < 1 || j->inputs[0].shape.rank < 1) return 1;
    return j->inputs[0].shape.dims[0];
}

/* Whether job b's inputs can be concatenated after a's (same dtypes and dims after the first). */
static bool same_rows(const celer_remote *r, const celer_job *a, const celer_job *b) {
    for (int i = 0; i < r->desc.n_inputs; i++) {
        const celer_tensor *x = &a->inputs[i], *y = &b->inputs[i];
        if (x->dtype != y->dtype || x->shape.rank != y->shape.rank || x->shape.rank < 1) return false;
        for (int k = 1; k < x->shape.rank; k++)
            if (x->shape.dims[k] != y->shape.dims[k]) return false;
    }
    return true;
}

/* Jobs completed outside the lock: a failure each, with its message. */
typedef struct failure {
    celer_job *job;
    celer_status st;
    char msg[MESSAGE_MAX];
} failure;
typedef struct failures {
    failure *items;
    int n, cap;
} failures;

static void fail_later(failures *f, celer_job *j, celer_status st, const char *msg) {
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 16;
        failure *items = realloc(f->items, sizeof *items * (size_t)cap);
        if (!items) { /* completed at once, under the lock: rare, and done never takes it */
            j->done(j, st, msg, NULL, 0);
            return;
        }
        f->items = items, f->cap = cap;
    }
    failure *x = &f->items[f->n++];
    x->job = j, x->st = st;
    snprintf(x->msg, sizeof x->msg, "%s", msg);
}

static void fail_now(failures *f) {
    for (int i = 0; i < f->n; i++) f->items[i].job->done(f->items[i].job, f->items[i].st, f->items[i].msg, NULL, 0);
    free(f->items);
    *f = (failures){0};
}

static void down_message(const celer_remote *r, char *out, size_t cap) {
    /* last_error names the upstream */
    snprintf(out, cap, "remote model '%.200s' is down (circuit open): %.700s", r->name, r->last_error);
}

/* Under the lock: drops the waiting jobs past their deadline or cancelled, and every waiting job
 * while the circuit is not closed; forms calls while there is room in flight. */
static void form_calls(celer_remote *r, int64_t now, failures *f, rcall **start, int64_t *wake) {
    int cap = r->ring_cap, kept = 0;
    bool closed = atomic_load(&r->breaker) == BREAKER_CLOSED;
    char msg[MESSAGE_MAX];
    if (!closed && r->n_waiting) down_message(r, msg, sizeof msg);
    for (int k = 0; k < r->n_waiting; k++) {
        celer_job *j = r->ring[(r->head + k) % cap];
        if (!closed) {
            fail_later(f, j, CELER_ERR_UNAVAILABLE, msg);
            celer_metrics_add(r->m_errors[E_CIRCUIT], 1);
        } else if (j->cancelled && atomic_load_explicit(j->cancelled, memory_order_relaxed)) {
            fail_later(f, j, CELER_ERR_CANCELLED, "cancelled while waiting for the upstream");
        } else if (j->deadline_ns && j->deadline_ns <= now) {
            char m[MESSAGE_MAX];
            snprintf(m, sizeof m, "timed out waiting for a call to upstream %s model '%s' (%d in flight)", r->cfg.url,
                     r->cfg.model, r->n_inflight);
            fail_later(f, j, CELER_ERR_TIMEOUT, m);
            celer_metrics_add(r->m_errors[E_TIMEOUT], 1);
        } else {
            r->ring[(r->head + kept++) % cap] = j;
            if (j->deadline_ns && j->deadline_ns < *wake) *wake = j->deadline_ns;
        }
    }
    r->n_waiting = kept;
    int64_t mbs = CELER_MIN(r->cfg.max_batch_size, r->desc.max_batch_size);
    while (r->n_waiting && r->n_inflight < r->cfg.max_inflight) {
        rcall *c = call_new(r, r->hub);
        if (!c) break;
        c->formed_ns = now;
        int64_t rows = 0;
        do {
            celer_job *j = r->ring[r->head];
            int64_t jr = job_rows(r, j);
            if (c->n_jobs && (!r->batched || rows + jr > mbs || c->n_jobs == CELER_MAX_BATCH_JOBS ||
                              !same_rows(r, c->jobs[0], j)))
                break;
            c->jobs[c->n_jobs] = j;
            c->rows[c->n_jobs++] = jr;
            rows += jr;
            if (j->deadline_ns && (!c->deadline_ns || j->deadline_ns < c->deadline_ns)) c->deadline_ns = j->deadline_ns;
            r->head = (r->head + 1) % cap;
            r->n_waiting--;
        } while (r->n_waiting && r->batched);
        int64_t own = now + r->cfg.timeout_ms * 1000000;
        if (!c->deadline_ns || own < c->deadline_ns) c->deadline_ns = own;
        r->budget = CELER_MIN(r->budget + r->cfg.retry_budget, BUDGET_FLOOR);
        r->n_inflight++;
        c->next = *start;
        *start = c;
    }
    celer_metrics_set(r->m_waiting, r->n_waiting);
    celer_metrics_set(r->m_inflight, r->n_inflight);
}

static void finish_call(celer_remote_hub *h, rcall *c, CURLcode res);

/* ---- gRPC over h2c: the HTTP/2 client's callbacks ---- */

static void h2_header(void *user, const char *name, size_t nl, const char *value, size_t vl) {
    take_header(user, name, nl, value, vl);
}

static bool h2_data(void *user, const uint8_t *p, size_t n) {
    rcall *c = user;
    celer_jbuf_raw(&c->resp, (const char *)p, n);
    return !c->resp.status;
}

/* How an HTTP/2 call ended, as libcurl would have said it: classify() reads that. */
static CURLcode h2_result(const rcall *c, celer_h2c_end how) {
    return how == CELER_H2C_DONE      ? CURLE_OK
           : how == CELER_H2C_REFUSED ? CURLE_COULDNT_CONNECT
           : how == CELER_H2C_TIMEOUT ? CURLE_OPERATION_TIMEDOUT
           : c->resp.status           ? CURLE_WRITE_ERROR
                                      : CURLE_RECV_ERROR;
}

static void h2_close(void *user, celer_h2c_end how, const char *why) {
    rcall *c = user;
    snprintf(c->errbuf, sizeof c->errbuf, "%.*s", (int)sizeof c->errbuf - 1, why);
    finish_call(c->r->hub, c, h2_result(c, how));
}

/* Sends c on the remote's HTTP/2 pool: the headers of setup_easy's, in HTTP/2's lower case. */
static void start_h2(rcall *c, const char *path, int64_t timeout_ms, const char *traceparent,
                     void (*on_close)(void *user, celer_h2c_end how, const char *why)) {
    celer_remote *r = c->r;
    int n = 0;
    c->header_len = SIZE_MAX;
    c->grpc_status = -1;
    c->http_status = 0;
    c->grpc_message[0] = c->errbuf[0] = 0;
    celer_jbuf_reset(&c->resp);
    snprintf(c->grpc_timeout, sizeof c->grpc_timeout, "%lldm", (long long)CELER_MAX(timeout_ms, 1));
    c->h2_headers[n++] = (celer_h2c_header){"content-type", "application/grpc"};
    c->h2_headers[n++] = (celer_h2c_header){"te", "trailers"};
    c->h2_headers[n++] = (celer_h2c_header){"grpc-timeout", c->grpc_timeout};
    if (traceparent) {
        snprintf(c->traceparent, sizeof c->traceparent, "%s", traceparent);
        c->h2_headers[n++] = (celer_h2c_header){"traceparent", c->traceparent};
    }
    for (int i = 0; i < r->cfg.n_headers; i++) c->h2_headers[n++] = r->h2_headers[i];
    c->h2 = (celer_h2c_call){.path = path, .headers = c->h2_headers,
                             .n_headers = n, .body = c->req.data, .len = c->req.len,
                             .deadline_ns = now_ns() + timeout_ms * 1000000, .on_header = h2_header,
                             .on_data = h2_data, .on_close = on_close, .user = c};
    celer_h2c_submit(r->h2, &c->h2); /* c may be gone from here on */
}

/* Sends c (a call, a retry or a probe) on the hub's thread. */
static void start_call(celer_remote_hub *h, rcall *c) {
    celer_remote *r = c->r;
    int64_t now = now_ns();
    celer_status st = CELER_OK;
    char msg[MESSAGE_MAX] = "";
    if (c->n_jobs && !c->req.len && (st = encode_call(c))) {
        celer_error_wrap(st, "upstream %s model '%s': encoding the call", r->cfg.url, r->cfg.model);
        snprintf(msg, sizeof msg, "%s", celer_error_message());
    }
    if (!c->n_jobs && !c->req.len && r->ready_body) celer_jbuf_raw(&c->req, r->ready_body, r->ready_len);
    int64_t timeout_ms = c->n_jobs ? (c->deadline_ns - now) / 1000000 : r->cfg.connect_timeout_ms + r->cfg.timeout_ms;
    if (!st && timeout_ms < 1) {
        st = CELER_ERR_TIMEOUT;
        snprintf(msg, sizeof msg, "upstream %s model '%s': timed out before the call was sent", r->cfg.url, r->cfg.model);
    }
    char tp[64], *traceparent = NULL;
    for (int j = 0; !st && j < c->n_jobs && !c->span; j++) {
        if (!c->jobs[j]->span || !(c->span = malloc(sizeof *c->span))) continue;
        celer_span_begin(c->span, NULL, CELER_SPAN_CLIENT, c->jobs[j]->span, NULL, now);
        celer_span_name(c->span, "remote ", r->name);
        celer_span_attr_str(c->span, "server.address", r->cfg.url);
        celer_span_attr_str(c->span, "celer.upstream_model", r->cfg.model);
        celer_span_attr_int(c->span, "celer.batch_size", c->n_jobs);
    }
    if (c->span) {
        celer_span_traceparent(c->span, tp);
        traceparent = tp;
    }
    if (!st && r->h2) {
        c->sent_ns = now;
        for (int j = 0; j < c->n_jobs; j++) {
            c->jobs[j]->start_ns = c->formed_ns;
            c->jobs[j]->input_end_ns = now;
        }
        start_h2(c, c->n_jobs ? r->infer_url : r->ready_url, timeout_ms, traceparent, h2_close);
        return;
    }
    if (!st && !(c->h = easy_get(h))) st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
    if (!st && (st = setup_easy(c, c->n_jobs ? r->infer_url : r->ready_url, timeout_ms, traceparent)))
        snprintf(msg, sizeof msg, "%s", celer_error_message());
    if (!st && curl_multi_add_handle(h->multi, c->h) != CURLM_OK)
        st = celer_errorf(CELER_ERR_INTERNAL, "libcurl refused the call");
    if (st) {
        if (!msg[0]) snprintf(msg, sizeof msg, "%s", celer_error_message());
        snprintf(c->errbuf, sizeof c->errbuf, "%.*s", (int)sizeof c->errbuf - 1, msg);
        c->req.status = st; /* read by finish_call as the call's own failure */
        finish_call(h, c, CURLE_ABORTED_BY_CALLBACK);
        return;
    }
    c->sent_ns = now;
    for (int j = 0; j < c->n_jobs; j++) {
        c->jobs[j]->start_ns = c->formed_ns;
        c->jobs[j]->input_end_ns = now;
    }
}

/* ModelReadyResponse{ready = 1}: true when ready. */
static bool grpc_ready(const rcall *c) {
    const uint8_t *p = (const uint8_t *)c->resp.data;
    if (c->resp.len < 5 || !p || p[0]) return false;
    celer_pb_reader rd = {p + 5, p + c->resp.len};
    celer_pb_field f;
    while (celer_pb_next(&rd, &f, "ModelReadyResponse") > 0)
        if (f.number == 1 && f.wire == 0) return f.varint != 0;
    return false;
}

/* Hands each job its rows of the outputs (all of them when it was alone). */
static void complete_jobs(rcall *c, celer_status st, const char *msg, celer_tensor *outs, int64_t now) {
    const celer_remote_desc *d = &c->r->desc;
    int64_t off = 0, total = 0;
    for (int j = 0; j < c->n_jobs; j++) total += c->rows[j];
    for (int j = 0; j < c->n_jobs; j++) {
        celer_job *job = c->jobs[j];
        job->end_ns = now;
        if (!job->start_ns) job->start_ns = job->input_end_ns = now;
        job->batch_size = (int)CELER_MIN(total, INT_MAX);
        job->batch_first = j == 0;
        if (st) {
            job->done(job, st, msg, NULL, 0);
            continue;
        }
        celer_tensor slice[CELER_CONFIG_MAX_IO];
        for (int i = 0; i < d->n_outputs; i++) {
            slice[i] = outs[i];
            if (c->n_jobs == 1) continue;
            int64_t row = celer_shape_numel(&outs[i].shape) / CELER_MAX(outs[i].shape.dims[0], 1);
            size_t es = outs[i].dtype == CELER_STRING ? sizeof(celer_str) : celer_dtype_size(outs[i].dtype);
            slice[i].shape.dims[0] = c->rows[j];
            slice[i].data = (char *)outs[i].data + (size_t)(off * row) * es;
        }
        off += c->rows[j];
        job->done(job, CELER_OK, "", slice, d->n_outputs);
    }
}

static void finish_call(celer_remote_hub *h, rcall *c, CURLcode res) {
    celer_remote *r = c->r;
    h->progress = true;
    int64_t now = now_ns();
    char msg[MESSAGE_MAX];
    verdict v;
    if (res == CURLE_ABORTED_BY_CALLBACK && c->req.status) { /* never sent */
        v = (verdict){c->req.status, E_PROTOCOL, false, false};
        snprintf(msg, sizeof msg, "%s", c->errbuf);
    } else {
        if (c->h) curl_multi_remove_handle(h->multi, c->h);
        classify(c, res, msg, sizeof msg, &v);
    }
    bool probe = !c->n_jobs;
    bool ready = probe && !v.st && (r->cfg.grpc ? grpc_ready(c) : true);
    pthread_mutex_lock(&h->mu);
    if (probe) {
        r->probing = false;
        r->next_health_ns = now + r->cfg.health_interval_ms * 1000000;
        int was = atomic_load(&r->breaker);
        if (ready) {
            r->consecutive = 0;
            atomic_store(&r->breaker, BREAKER_CLOSED);
            if (was != BREAKER_CLOSED)
                celer_log(CELER_LOG_INFO, "remote model '%s': upstream %s is ready again, circuit closed", r->name,
                          r->cfg.url);
        } else { /* not ready (or not there): calls fail at once until a probe says otherwise */
            r->opened_ns = now;
            atomic_store(&r->breaker, BREAKER_OPEN);
            if (!v.st) snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "the model is not ready");
            snprintf(r->last_error, sizeof r->last_error, "%s", msg);
            if (was == BREAKER_CLOSED)
                celer_log(CELER_LOG_WARNING, "remote model '%s': circuit open: %s", r->name, msg);
        }
    } else if (v.down) {
        snprintf(r->last_error, sizeof r->last_error, "%s", msg);
        if (++r->consecutive >= r->cfg.breaker_failures && atomic_load(&r->breaker) == BREAKER_CLOSED) {
            r->opened_ns = now;
            atomic_store(&r->breaker, BREAKER_OPEN);
            celer_log(CELER_LOG_WARNING, "remote model '%s': %d failures in a row, circuit open: %s", r->name,
                      r->consecutive, msg);
        }
    } else {
        r->consecutive = 0;
        if (!v.st) r->next_health_ns = now + r->cfg.health_interval_ms * 1000000; /* an answer says it is up */
    }
    bool retry = !probe && v.retryable && c->attempt < r->cfg.retries && r->budget >= 1 &&
                 atomic_load(&r->breaker) == BREAKER_CLOSED && !r->closing;
    if (retry) { /* full jitter around an exponential step, within the deadline */
        h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
        double jitter = 0.5 + (double)(h->rng >> 11) / (double)(1ull << 53);
        int64_t wait = (int64_t)(RETRY_BASE_MS * 1e6 * (double)(1 << c->attempt) * jitter);
        retry = now + wait < c->deadline_ns;
        if (retry) {
            r->budget -= 1;
            c->attempt++;
            c->retry_at_ns = now + wait;
            c->next = r->retries;
            r->retries = c;
        }
    }
    if (!probe && !retry) r->n_inflight--;
    celer_metrics_set(r->m_inflight, r->n_inflight);
    celer_metrics_set(r->m_circuit, atomic_load(&r->breaker));
    pthread_mutex_unlock(&h->mu);
    pthread_cond_broadcast(&h->idle);
    if (!probe) {
        if (c->sent_ns) celer_metrics_observe(r->m_duration, (double)(now - c->sent_ns) * 1e-9);
        if (v.st) celer_metrics_add(r->m_errors[v.kind], 1);
    }
    easy_put(h, c->h);
    c->h = NULL;
    if (retry) {
        celer_metrics_add(r->m_retries, 1);
        return;
    }
    celer_tensor outs[CELER_CONFIG_MAX_IO];
    int64_t rows = 0;
    for (int j = 0; j < c->n_jobs; j++) rows += c->rows[j];
    if (!probe && !v.st &&
        (v.st = celer_remote_decode(&r->desc, r->cfg.grpc, rows, c->resp.data, c->resp.len, c->header_len, &c->arena, outs))) {
        celer_error_wrap(v.st, "upstream %s model '%s' answered what its metadata does not allow", r->cfg.url, r->cfg.model);
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        v.st = CELER_ERR_UPSTREAM;
        celer_metrics_add(r->m_errors[E_PROTOCOL], 1);
    }
    if (c->span) {
        if (v.st) celer_span_fail(c->span, msg);
        celer_span_end(c->span, now_ns());
    }
    if (!probe) complete_jobs(c, v.st, msg, outs, now);
    if (!probe && !v.st && r->on_batch) { /* Triton's batch_stats: encoding, the round trip, handing out */
        celer_sched_batch b = {.rows = rows, .input_ns = c->sent_ns - c->formed_ns, .infer_ns = now - c->sent_ns,
                               .output_ns = now_ns() - now};
        r->on_batch(r->on_batch_user, &b);
    }
    call_free(c);
}

/* Room in the poll set for n gRPC remotes (H2_CONNS sockets each); false when out of memory. */
static bool grow_pollset(celer_remote_hub *h, int n) {
    int cap = CELER_MAX(n, 2 * h->h2_cap);
    celer_remote **l = realloc(h->h2_list, sizeof *l * (size_t)cap);
    if (l) h->h2_list = l;
    struct pollfd *p = l ? realloc(h->pfds, sizeof *p * (size_t)cap * H2_CONNS) : NULL;
    if (p) h->pfds = p;
    struct curl_waitfd *w = p ? realloc(h->wfds, sizeof *w * (size_t)cap * H2_CONNS) : NULL;
    if (w) h->wfds = w;
    int *f = w ? realloc(h->first, sizeof *f * (size_t)(cap + 1)) : NULL;
    if (f) h->first = f;
    if (!f) return false;
    h->h2_cap = cap;
    return true;
}

static void *hub_main(void *arg) {
    celer_remote_hub *h = arg;
    for (;;) {
        rcall *start = NULL;
        failures f = {0};
        pthread_mutex_lock(&h->mu);
        if (h->stop) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        h->loop_gen++;
        h->queued = false;
        int64_t now = now_ns(), wake = now + 1000000000;
        int n_h2 = 0;
        for (celer_remote *r = h->remotes; r; r = r->next) n_h2 += r->h2 != NULL;
        if (n_h2 > h->h2_cap && !grow_pollset(h, n_h2)) n_h2 = h->h2_cap; /* out of memory: the first ones */
        celer_remote **h2_remotes = h->h2_list;
        n_h2 = 0;
        for (celer_remote *r = h->remotes; r; r = r->next) {
            if (r->h2 && n_h2 < h->h2_cap) h2_remotes[n_h2++] = r;
            int64_t reopen = r->opened_ns + r->cfg.breaker_open_ms * 1000000;
            if (atomic_load(&r->breaker) == BREAKER_OPEN && !r->probing && !r->closing) {
                rcall *p = now >= reopen ? call_new(r, h) : NULL;
                if (p) {
                    atomic_store(&r->breaker, BREAKER_HALF_OPEN);
                    r->probing = true;
                    p->next = start;
                    start = p;
                } else if (reopen < wake) {
                    wake = CELER_MAX(reopen, now + 1000000);
                }
            }
            for (rcall **pp = &r->retries; *pp;) {
                rcall *c = *pp;
                if (c->retry_at_ns <= now) {
                    *pp = c->next;
                    c->next = start;
                    start = c;
                } else {
                    if (c->retry_at_ns < wake) wake = c->retry_at_ns;
                    pp = &c->next;
                }
            }
            /* an idle upstream's readiness, probed while the circuit is closed */
            int64_t health = r->next_health_ns;
            if (r->cfg.health_interval_ms && atomic_load(&r->breaker) == BREAKER_CLOSED && !r->probing && !r->closing) {
                rcall *p = now >= health ? call_new(r, h) : NULL;
                if (p) {
                    r->probing = true;
                    p->next = start;
                    start = p;
                } else if (health < wake) {
                    wake = CELER_MAX(health, now + 1000000);
                }
            }
            form_calls(r, now, &f, &start, &wake);
        }
        pthread_mutex_unlock(&h->mu);
        pthread_cond_broadcast(&h->idle); /* a remote closing waits for the loop to move on */
        fail_now(&f);
        while (start) {
            rcall *c = start;
            start = c->next;
            c->next = NULL;
            start_call(h, c);
        }
        int running = 0;
        curl_multi_perform(h->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            rcall *c = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            finish_call(h, c, m->data.result);
        }
        /* the HTTP/2 pools' sockets are polled with libcurl's */
        struct pollfd *pfds = h->pfds;
        struct curl_waitfd *wfds = h->wfds;
        int *first = h->first, n_fds = 0;
        for (int i = 0; i < n_h2; i++) {
            int64_t due = celer_h2c_process(h2_remotes[i]->h2, now_ns(), NULL, 0);
            if (due && due < wake) wake = due;
            first[i] = n_fds;
            n_fds += celer_h2c_poll_fds(h2_remotes[i]->h2, pfds + n_fds, H2_CONNS);
        }
        if (first) first[n_h2] = n_fds;
        for (int i = 0; i < n_fds; i++) wfds[i] = (struct curl_waitfd){pfds[i].fd, pfds[i].events, 0};
        int64_t ms = h->progress ? 0 : CELER_MAX((wake - now_ns() + 999999) / 1000000, 0);
        h->progress = false;
        pthread_mutex_lock(&h->mu);
        if (h->queued) ms = 0; /* queued after the calls were formed: no wakeup will come for it */
        h->sleeping = ms > 0;
        pthread_mutex_unlock(&h->mu);
        curl_multi_poll(h->multi, wfds, (unsigned)n_fds, (int)CELER_MIN(ms, 1000), NULL);
        pthread_mutex_lock(&h->mu);
        h->sleeping = false;
        pthread_mutex_unlock(&h->mu);
        for (int i = 0; i < n_fds; i++) pfds[i].revents = wfds[i].revents;
        for (int i = 0; i < n_h2; i++)
            celer_h2c_process(h2_remotes[i]->h2, now_ns(), pfds + first[i], first[i + 1] - first[i]);
    }
    return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

celer_status celer_remote_hub_init(celer_metrics *metrics, size_t max_response_bytes, celer_remote_hub **out) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc) return celer_errorf(CELER_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    celer_remote_hub *h = calloc(1, sizeof *h);
    if (!h) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    h->metrics = metrics;
    h->max_response = max_response_bytes;
    h->rng = (uint64_t)now_ns() | 1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    if (!(h->multi = curl_multi_init())) {
        free(h);
        return celer_errorf(CELER_ERR_NOMEM, "libcurl: cannot make a multi handle");
    }
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 1024L);
    if (pthread_create(&h->thread, NULL, hub_main, h)) {
        curl_multi_cleanup(h->multi);
        free(h);
        return celer_errorf(CELER_ERR_NOMEM, "cannot start the remote models' thread");
    }
    pthread_setname_np(h->thread, "celer-remote");
    *out = h;
    return CELER_OK;
}

void celer_remote_hub_free(celer_remote_hub *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    pthread_join(h->thread, NULL);
    for (int i = 0; i < h->n_spare; i++) curl_easy_cleanup(h->spare[i]);
    for (rcall *c = h->spare_calls, *next; c; c = next) {
        next = c->next;
        celer_jbuf_free(&c->req);
        celer_jbuf_free(&c->resp);
        celer_arena_free(&c->arena);
        free(c);
    }
    curl_multi_cleanup(h->multi);
    free(h->h2_list);
    free(h->pfds);
    free(h->wfds);
    free(h->first);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->idle);
    free(h);
}

/* ---- opening: the upstream's metadata and config, on the loading thread ---- */

/* A gRPC request {name = 1, version = 2} (ModelMetadata, ModelConfig, ModelReady), framed. */
static void grpc_name_request(const celer_remote_config *cfg, celer_jbuf *b) {
    celer_jbuf_raw(b, "\0\0\0\0\0", 5);
    celer_pb_put_str(b, 1, cfg->model);
    if (*cfg->version) celer_pb_put_str(b, 2, cfg->version);
    uint32_t len = (uint32_t)(b->len - 5);
    unsigned char *p = (unsigned char *)b->data;
    if (!b->status) p[1] = (unsigned char)(len >> 24), p[2] = (unsigned char)(len >> 16), p[3] = (unsigned char)(len >> 8),
                    p[4] = (unsigned char)len;
}

/* A gRPC exchange at open ended: how, as libcurl would say it, for the loop below. */
static void sync_close(void *user, celer_h2c_end how, const char *why) {
    rcall *c = user;
    c->sync_res = h2_result(c, how);
    c->sync_done = true;
    snprintf(c->errbuf, sizeof c->errbuf, "%.*s", (int)sizeof c->errbuf - 1, why);
}

/* One exchange, blocking: GET `url` (HTTP, libcurl) or the gRPC call whose path `url` is (on the
 * remote's HTTP/2 pool, driven here: the hub does not know the remote yet); the answer in c->resp. */
static celer_status exchange(rcall *c, const char *url, char *msg, size_t cap) {
    celer_remote *r = c->r;
    const celer_remote_config *cfg = &r->cfg;
    int64_t timeout_ms = cfg->connect_timeout_ms + cfg->timeout_ms;
    celer_jbuf_reset(&c->req);
    verdict v = {0};
    celer_status st = CELER_OK;
    if (cfg->grpc) {
        grpc_name_request(cfg, &c->req);
        c->sync_done = false;
        start_h2(c, url, timeout_ms, NULL, sync_close);
        while (!c->sync_done) {
            struct pollfd fds[8];
            int n = celer_h2c_poll_fds(r->h2, fds, 8);
            poll(fds, (nfds_t)n, 20);
            celer_h2c_process(r->h2, now_ns(), fds, n);
        }
        classify(c, c->sync_res, msg, cap, &v);
        st = v.st;
    } else {
        if (!(c->h = curl_easy_init())) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
        st = setup_easy(c, url, timeout_ms, NULL);
        if (!st) {
            CURLcode res = curl_easy_perform(c->h);
            classify(c, res, msg, cap, &v);
            st = v.st;
        }
        curl_easy_cleanup(c->h);
        c->h = NULL;
    }
    if (st) return celer_errorf(st == CELER_ERR_INVALID || st == CELER_ERR_UPSTREAM ? CELER_ERR_UNAVAILABLE : st, "%s", msg);
    if (cfg->grpc) {
        const uint8_t *p = (const uint8_t *)c->resp.data;
        if (c->resp.len < 5 || p[0] || ((size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4]) != c->resp.len - 5)
            return celer_errorf(CELER_ERR_UNAVAILABLE, "upstream %s: not one uncompressed gRPC message", cfg->url);
    }
    return CELER_OK;
}

/* One tensor of the metadata into the desc. */
static celer_status add_tensor(celer_remote_desc *d, bool input, const char *name, size_t name_len, const char *dt,
                               size_t dt_len, const int64_t *dims, int rank, celer_arena *a) {
    char dts[32];
    snprintf(dts, sizeof dts, "%.*s", (int)CELER_MIN(dt_len, 31), dt);
    celer_dtype dtype = celer_dtype_from_kserve_name(dts);
    const char *nm = celer_arena_strndup(a, name, name_len);
    if (!nm) return celer_error_wrap(celer_error_status(), "metadata");
    if (dtype == CELER_UNDEFINED)
        return celer_errorf(CELER_ERR_INVALID, "%s '%s' has datatype '%s', which celer does not serve",
                            input ? "input" : "output", nm, dts);
    int i = input ? d->n_inputs : d->n_outputs;
    if (i == CELER_CONFIG_MAX_IO) return celer_errorf(CELER_ERR_LIMIT, "more than %d tensors", CELER_CONFIG_MAX_IO);
    if (input) {
        celer_kserve_tensor_spec *s = &d->inputs[d->n_inputs++];
        *s = (celer_kserve_tensor_spec){.name = nm, .dtype = dtype, .rank = rank};
        memcpy(s->dims, dims, sizeof *dims * (size_t)rank);
    } else {
        celer_io_desc *o = &d->outputs[d->n_outputs++];
        *o = (celer_io_desc){.name = nm, .dtype = dtype, .has_shape = true};
        o->shape.rank = rank;
        memcpy(o->shape.dims, dims, sizeof *dims * (size_t)rank);
    }
    return CELER_OK;
}

static celer_status metadata_http(const char *body, size_t len, celer_arena *scratch, celer_remote_desc *d,
                                  celer_arena *a) {
    celer_json *root;
    CELER_TRY(celer_json_parse(body, len, scratch, &root));
    const celer_json *pf = celer_json_get(root, "platform");
    d->platform = pf && pf->type == CELER_JSON_STRING ? celer_arena_strndup(a, pf->string, pf->string_len) : "";
    for (int io = 0; io < 2; io++) {
        const celer_json *arr = celer_json_get(root, io ? "outputs" : "inputs");
        if (!arr || arr->type != CELER_JSON_ARRAY) return celer_errorf(CELER_ERR_PARSE, "the metadata has no %s", io ? "outputs" : "inputs");
        for (int k = 0; k < arr->n; k++) {
            const celer_json *t = &arr->items[k], *nm = celer_json_get(t, "name"), *dt = celer_json_get(t, "datatype");
            if (!nm || nm->type != CELER_JSON_STRING || !dt || dt->type != CELER_JSON_STRING)
                return celer_errorf(CELER_ERR_PARSE, "a tensor of the metadata lacks name or datatype");
            int64_t dims[CELER_MAX_RANK];
            int rank;
            CELER_TRY(json_dims(celer_json_get(t, "shape"), scratch, dims, &rank));
            CELER_TRY(add_tensor(d, !io, nm->string, nm->string_len, dt->string, dt->string_len, dims, rank, a));
        }
    }
    return CELER_OK;
}

static celer_status metadata_grpc(const char *body, size_t len, celer_remote_desc *d, celer_arena *a) {
    if (len < 5) return celer_errorf(CELER_ERR_PARSE, "not a gRPC message");
    celer_pb_reader rd = {(const uint8_t *)body + 5, (const uint8_t *)body + len};
    celer_pb_field f;
    int rc;
    d->platform = "";
    while ((rc = celer_pb_next(&rd, &f, "ModelMetadataResponse")) > 0) {
        if (f.number == 3 && f.wire == 2) d->platform = celer_arena_strndup(a, (const char *)f.p, f.len);
        if ((f.number != 4 && f.number != 5) || f.wire != 2) continue;
        celer_pb_reader t = {f.p, f.p + f.len};
        celer_pb_field g;
        const char *nm = "", *dt = "";
        size_t nl = 0, dl = 0;
        int64_t dims[CELER_MAX_RANK];
        int rank = 0, trc;
        while ((trc = celer_pb_next(&t, &g, "TensorMetadata")) > 0) {
            if (g.number == 1 && g.wire == 2) nm = (const char *)g.p, nl = g.len;
            else if (g.number == 2 && g.wire == 2) dt = (const char *)g.p, dl = g.len;
            else if (g.number == 3 && g.wire == 0 && rank == CELER_MAX_RANK)
                return celer_errorf(CELER_ERR_LIMIT, "a shape has more than %d dims", CELER_MAX_RANK);
            else if (g.number == 3 && g.wire == 0) dims[rank++] = (int64_t)g.varint;
            else if (g.number == 3 && g.wire == 2) CELER_TRY(packed_dims(g.p, g.len, dims, &rank));
        }
        if (trc < 0) return celer_error_status();
        CELER_TRY(add_tensor(d, f.number == 4, nm, nl, dt, dl, dims, rank, a));
    }
    return rc < 0 ? celer_error_status() : CELER_OK;
}

celer_status celer_remote_decode_metadata(bool grpc, const char *body, size_t len, celer_arena *arena,
                                          celer_remote_desc *desc) {
    *desc = (celer_remote_desc){0};
    desc->inputs = celer_arena_alloc(arena, sizeof *desc->inputs * CELER_CONFIG_MAX_IO);
    desc->outputs = celer_arena_alloc(arena, sizeof *desc->outputs * CELER_CONFIG_MAX_IO);
    if (!desc->inputs || !desc->outputs) return celer_error_wrap(celer_error_status(), "metadata");
    if (grpc) return metadata_grpc(body ? body : "", len, desc, arena);
    celer_arena scratch;
    celer_arena_init(&scratch, 4096, len * 16 + (64u << 10)); /* the DOM, bounded by the text */
    celer_status st = metadata_http(body ? body : "", len, &scratch, desc, arena);
    celer_arena_free(&scratch);
    return st;
}

celer_status celer_remote_decode_max_batch(bool grpc, const char *body, size_t len, celer_arena *arena, int *mbs) {
    *mbs = 0;
    body = body ? body : "";
    if (!grpc) {
        celer_json *root;
        CELER_TRY(celer_json_parse(body, len, arena, &root));
        const celer_json *m = celer_json_get(root, "max_batch_size");
        if (m && m->type == CELER_JSON_NUMBER && m->number >= 0 && m->number <= INT_MAX) *mbs = (int)m->number;
        return CELER_OK;
    }
    if (len < 5) return celer_errorf(CELER_ERR_PARSE, "not a gRPC message");
    celer_pb_reader rd = {(const uint8_t *)body + 5, (const uint8_t *)body + len};
    celer_pb_field f, g;
    while (celer_pb_next(&rd, &f, "ModelConfigResponse") > 0) {
        if (f.number != 1 || f.wire != 2) continue;
        celer_pb_reader m = {f.p, f.p + f.len};
        while (celer_pb_next(&m, &g, "ModelConfig") > 0)
            if (g.number == 4 && g.wire == 0) *mbs = CELER_MAX((int)(int32_t)g.varint, 0); /* as HTTP's */
    }
    return CELER_OK;
}

static char *url_join(celer_arena *a, const char *base, const char *tail) {
    size_t n = strlen(base) + strlen(tail) + 1;
    char *u = celer_arena_alloc(a, n);
    if (u) snprintf(u, n, "%s%s", base, tail);
    return u;
}

celer_status celer_remote_open(celer_remote_hub *h, const celer_remote_config *cfg, const char *name,
                               void (*on_batch)(void *user, const celer_sched_batch *b), void *on_batch_user,
                               celer_arena *arena, celer_remote_desc *desc, celer_remote **out) {
    celer_remote *r = calloc(1, sizeof *r);
    if (!r) return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    r->hub = h;
    r->cfg = *cfg;
    r->on_batch = on_batch;
    r->on_batch_user = on_batch_user;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->budget = BUDGET_FLOOR;
    r->next_health_ns = now_ns() + cfg->health_interval_ms * 1000000;
    celer_status st = CELER_OK;
    char msg[MESSAGE_MAX] = "";
    rcall *c = call_new(r, NULL);
    r->ring_cap = cfg->max_queue_size + cfg->max_inflight;
    r->ring = calloc((size_t)r->ring_cap, sizeof *r->ring);
    if (!c || !r->ring) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *meta_url, *config_url;
    if (cfg->grpc) { /* our own HTTP/2 client (h2client.h) */
        bool tls = !strncmp(cfg->base, "https://", 8);
        char host[256], port[16];
        snprintf(port, sizeof port, "%s", tls ? "443" : "80");
        const char *hp = cfg->base + (tls ? 8 : 7), *colon = strrchr(hp, ':'), *bracket = strchr(hp, ']');
        if (hp[0] == '[' && bracket) {
            snprintf(host, sizeof host, "%.*s", (int)(bracket - hp - 1), hp + 1);
            if (bracket[1] == ':') snprintf(port, sizeof port, "%s", bracket + 2);
        } else if (colon) {
            snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
            snprintf(port, sizeof port, "%s", colon + 1);
        } else {
            snprintf(host, sizeof host, "%s", hp);
        }
        if ((st = celer_h2c_open(host, port, tls, cfg->ca_file, H2_CONNS, cfg->connect_timeout_ms, &r->h2))) goto done;
        for (int i = 0; i < cfg->n_headers; i++) {
            const char *line = cfg->headers[i], *colon_at = strchr(line, ':');
            char *name = celer_arena_strndup(arena, line, (size_t)(colon_at - line));
            if (!name) {
                st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
                goto done;
            }
            for (char *q = name; *q; q++) *q = (char)tolower((unsigned char)*q);
            r->h2_headers[i] = (celer_h2c_header){name, colon_at + 1 + (colon_at[1] == ' ')};
        }
        r->infer_url = GRPC_SERVICE "ModelInfer";
        r->ready_url = GRPC_SERVICE "ModelReady";
        meta_url = GRPC_SERVICE "ModelMetadata";
        config_url = GRPC_SERVICE "ModelConfig";
        celer_jbuf b;
        celer_jbuf_init(&b, 0);
        grpc_name_request(cfg, &b);
        r->ready_body = b.status ? NULL : celer_arena_strndup(arena, b.data, b.len);
        r->ready_len = b.len;
        celer_jbuf_free(&b);
    } else {
        char *m = curl_easy_escape(NULL, cfg->model, 0), *v = curl_easy_escape(NULL, cfg->version, 0);
        char base[2048];
        if (m && v)
            snprintf(base, sizeof base, "%s/v2/models/%s%s%s", cfg->base, m, *v ? "/versions/" : "", v);
        curl_free(m);
        curl_free(v);
        if (!m || !v) {
            st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
            goto done;
        }
        meta_url = url_join(arena, base, "");
        config_url = url_join(arena, base, "/config");
        r->infer_url = url_join(arena, base, "/infer");
        r->ready_url = url_join(arena, base, "/ready");
    }
    if (!r->infer_url || !r->ready_url || !meta_url || !config_url || (cfg->grpc && !r->ready_body)) {
        st = celer_errorf(CELER_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = exchange(c, meta_url, msg, sizeof msg))) goto done;
    if ((st = celer_remote_decode_metadata(cfg->grpc, c->resp.data, c->resp.len, arena, desc))) {
        st = celer_error_wrap(st == CELER_ERR_NOMEM ? st : CELER_ERR_UNAVAILABLE, "upstream %s model '%s': its metadata",
                              cfg->url, cfg->model);
        goto done;
    }
    if ((st = exchange(c, config_url, msg, sizeof msg))) goto done;
    if ((st = celer_remote_decode_max_batch(cfg->grpc, c->resp.data, c->resp.len, &c->arena, &desc->max_batch_size))) {
        st = celer_error_wrap(CELER_ERR_UNAVAILABLE, "upstream %s model '%s': its config", cfg->url, cfg->model);
        goto done;
    }
    for (int i = 0; i < desc->n_inputs; i++) desc->inputs[i].batched = desc->max_batch_size > 0;
    if (desc->max_batch_size > 0)
        for (int i = 0; i < desc->n_inputs + desc->n_outputs && !st; i++) {
            int rank = i < desc->n_inputs ? desc->inputs[i].rank : desc->outputs[i - desc->n_inputs].shape.rank;
            if (rank < 1)
                st = celer_errorf(CELER_ERR_UNAVAILABLE, "upstream %s model '%s' batches (max_batch_size %d) but a "
                                  "tensor of its metadata has no dims", cfg->url, cfg->model, desc->max_batch_size);
        }
    if (st) goto done;
    r->desc = *desc;
    r->batched = cfg->max_batch_size > 0 && desc->max_batch_size > 0;
    remote_metrics(r);
    pthread_mutex_lock(&h->mu);
    r->next = h->remotes;
    h->remotes = r;
    pthread_mutex_unlock(&h->mu);
done:
    if (c) call_free(c);
    if (st) {
        celer_h2c_free(r->h2);
        free(r->ring);
        free(r);
        return st;
    }
    *out = r;
    return CELER_OK;
}

/* ---- serving ---- */

celer_status celer_remote_submit(celer_remote *r, celer_job *job) {
    celer_remote_hub *h = r->hub;
    job->enqueue_ns = now_ns();
    job->start_ns = job->input_end_ns = job->end_ns = 0;
    job->batch_size = 0;
    job->batch_first = false;
    char msg[MESSAGE_MAX];
    pthread_mutex_lock(&h->mu);
    celer_status st = CELER_OK;
    if (atomic_load(&r->breaker) != BREAKER_CLOSED) {
        down_message(r, msg, sizeof msg);
        st = celer_errorf(CELER_ERR_UNAVAILABLE, "%s", msg);
        celer_metrics_add(r->m_errors[E_CIRCUIT], 1);
    } else if (r->closing) {
        st = celer_errorf(CELER_ERR_UNAVAILABLE, "remote model '%s' is being unloaded", r->name);
    } else if (r->n_waiting >= r->cfg.max_queue_size + CELER_MAX(r->cfg.max_inflight - r->n_inflight, 0)) {
        st = celer_errorf(CELER_ERR_UNAVAILABLE, "queue of remote model '%s' is full (%d waiting for upstream %s, %d "
                          "in flight)", r->name, r->n_waiting, r->cfg.url, r->n_inflight);
        celer_metrics_add(r->m_errors[E_QUEUE_FULL], 1);
    } else {
        r->ring[(r->head + r->n_waiting++) % r->ring_cap] = job;
    }
    bool wake = !st && h->sleeping;
    h->queued |= !st;
    h->sleeping &= !wake;
    pthread_mutex_unlock(&h->mu);
    if (wake) curl_multi_wakeup(h->multi); /* a write to a socket: only when the loop would not look again */
    return st;
}

bool celer_remote_ready(celer_remote *r, char *why, size_t cap) {
    if (atomic_load_explicit(&r->breaker, memory_order_relaxed) == BREAKER_CLOSED) return true;
    pthread_mutex_lock(&r->hub->mu);
    down_message(r, why, cap);
    pthread_mutex_unlock(&r->hub->mu);
    return false;
}

bool celer_remote_admit(celer_remote *r, char *why, size_t cap) {
    if (celer_remote_ready(r, why, cap)) return true;
    celer_metrics_add(r->m_errors[E_CIRCUIT], 1);
    return false;
}

void celer_remote_close(celer_remote *r) {
    if (!r) return;
    celer_remote_hub *h = r->hub;
    pthread_mutex_lock(&h->mu);
    r->closing = true;
    while (r->n_waiting || r->n_inflight || r->probing || r->retries) {
        curl_multi_wakeup(h->multi);
        pthread_cond_wait(&h->idle, &h->mu);
    }
    for (celer_remote **pp = &h->remotes; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    /* the loop's iteration under way may still poll r's connections: wait for the next one */
    for (uint64_t gen = h->loop_gen; h->loop_gen == gen && !h->stop;) {
        curl_multi_wakeup(h->multi);
        pthread_cond_wait(&h->idle, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    celer_h2c_free(r->h2); /* idle: nothing of it is in flight */
    free(r->ring);
    free(r);
}
