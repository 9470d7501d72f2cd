/* server: `celer serve`, an inference server speaking the KServe v2 / Triton protocol over HTTP
 * and gRPC,
 * serving a Triton-layout model repository with per-model queues, dynamic batching, metrics and
 * clean JSON errors. The one public header of src/server; everything else there is private. */
#ifndef CELER_SERVER_H
#define CELER_SERVER_H

#include <stddef.h>

#include "base/base.h"

typedef enum celer_log_format { CELER_LOG_TEXT, CELER_LOG_JSON } celer_log_format;

/* A flag given once per value (`--load-model a --load-model b`; its environment variable holds
 * them comma-separated). */
#define CELER_MAX_FLAG_VALUES 256
typedef struct celer_flag_list {
    int n;
    const char *values[CELER_MAX_FLAG_VALUES];
} celer_flag_list;

typedef struct celer_server_options {
    const char *model_repository; /* a folder, or s3://... (a local copy is served) */
    const char *model_cache_dir;  /* the local copy of an S3 repository; "" = a private temporary folder */
    long long model_cache_max_bytes; /* the copy's size cap */
    const char *http_address;   /* listen.h: IPv4, IPv6, or "" for both families */
    int http_port;
    const char *grpc_address;
    int grpc_port;              /* 0 = no gRPC */
    long long grpc_max_message_bytes; /* larger request messages get RESOURCE_EXHAUSTED */
    const char *metrics_address;
    int metrics_port;           /* 0 = no metrics port (/metrics on the HTTP port stays) */
    int http_threads;           /* connection threads (parse and encode, never compute) */
    int workers;                /* inference workers; 0 = one per CPU the process may use (celer_cpu_count) */
    int threads;                /* intra-op threads per inference */
    long long max_body_bytes;   /* larger bodies get 413 */
    long long max_body_total_bytes; /* body bytes all connections may buffer together; beyond: 503 */
    long long max_response_bytes; /* larger answers get 413 / RESOURCE_EXHAUSTED; large ones stream from the tensors */
    long long compress_min_bytes; /* answers this large or more are compressed when the client takes gzip/deflate */
    int request_timeout_secs;   /* a connection idle this long is closed */
    int header_timeout_secs;    /* a request's headers must be complete this long after the connection
                                   opened or answered its previous request */
    int body_timeout_secs;      /* a request's body must be complete this long after its headers */
    int max_connections;        /* 0 = as many as the open-files limit allows */
    long long image_memory_bytes; /* decoded image pixels all requests may hold together; 0 = no cap */
    int repository_poll_secs;   /* 0 = no polling; models change through the repository API only */
    /* Triton's --model-control-mode: "" (celer's own: every model at start, polling with
     * repository_poll_secs, the repository API on), "none" (every model at start, nothing after,
     * the API refused), "poll" (every model at start, then polling, the API refused) or "explicit"
     * (load_models at start, then the API alone); lower-cased by parsing */
    const char *model_control_mode;
    celer_flag_list load_models; /* explicit mode: the models loaded at start; "*" alone: every one */
    int strict_readiness;        /* ready only while every model is (else: once serving) */
    int default_max_batch;      /* batch size given to batchable models without a config */
    int max_queue_size;         /* queue cap for models whose config sets none */
    int drain_delay_secs;       /* after SIGTERM: unready, still serving (Connection: close, GOAWAY) this long */
    int shutdown_timeout_secs;  /* the process exits this long after SIGTERM at the latest (> drain_delay_secs) */
    const char *log_format;     /* "default" ("text"), "ISO8601" or "json" (log.h) */
    int quiet;                  /* no access log */
    int log_info, log_warning, log_error; /* each class of lines on or off (changed at run time: log.h) */
    int log_verbose;            /* verbose lines up to this level; 0 = none */
    long long cache_bytes;      /* in-process result cache; 0 = none (identical requests still coalesce) */
    const char *cache_redis;    /* redis://... for the shared tier; "" = none */
    int cache_redis_timeout_ms; /* connect and command timeout */
    int docs;                   /* serve /docs, the interactive page of the OpenAPI document */
    const char *docs_assets;    /* where that page loads Swagger UI from: a URL, or a folder served under /docs/assets/ */
    int allow_shared_memory;    /* clients may register system shared memory regions (the server maps them) */
    const char *api_keys;       /* the key file (auth.h: `SCOPES KEY [NAME]` a line, reloaded on SIGHUP); "" = no keys */
    const char *trace_otlp_url; /* OTLP/HTTP endpoint of spans; "" = the OTEL_* variables', else no tracing (trace.h) */
    const char *trace_otlp_protocol; /* http/protobuf or http/json; "" = the OTEL_* variables', else http/protobuf */
    int trace_rate;             /* 1 in N requests traced; 0 = only those with a sampled parent */
    const char *trace_level;    /* OFF or TIMESTAMPS */
    const char *tls_cert;       /* PEM chain, leaf first: HTTPS and gRPC over TLS on the same ports; "" = plain */
    const char *tls_key;        /* PEM private key of tls_cert's leaf; "" with tls_cert only */
    const char *tls_client_ca;  /* PEM CA certificates: clients must show a certificate one of them signed; "" = none */
} celer_server_options;

/* One command-line flag: `--name VALUE`, or the environment variable `env`; the table drives
 * parsing and --help. */
typedef struct celer_server_flag {
    const char *name, *env, *dflt, *help;
    enum { CELER_FLAG_STRING, CELER_FLAG_INT, CELER_FLAG_SIZE, CELER_FLAG_BOOL, CELER_FLAG_LIST } kind; /* int / long long / int / celer_flag_list */
    size_t offset; /* into celer_server_options */
} celer_server_flag;

const celer_server_flag *celer_server_flags(int *count);

/* Fills `opts` from defaults, then the environment, then argv (flags override the environment),
 * and applies the log flags (--log-*) to the process's log settings. CELER_ERR_INVALID with a
 * message naming the flag on a bad value or unknown flag. */
celer_status celer_server_parse_args(int argc, char **argv, celer_server_options *opts);

/* Loads the repository, starts serving and blocks until SIGTERM/SIGINT (SIGHUP reloads the API keys
 * and the TLS files); then drains (unready at
 * once, serving drain_delay_secs more, the listeners closed, in-flight requests finished: see
 * docs/server.md, "Shutdown and draining") and returns CELER_OK, or ends the process with exit
 * code 0 at shutdown_timeout_secs after the signal. Fails
 * early (CELER_ERR_IO naming the address/port or folder) when it cannot start. A model that
 * fails to load does not stop the server: it is reported unavailable with its reason. */
celer_status celer_server_run(const celer_server_options *opts);

#endif
