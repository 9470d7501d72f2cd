/* `celer serve`: flags, start-up, the signal loop (repository polling, graceful shutdown). */
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "grpc.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "s3_mirror.h"
#include "trace.h"
#include "tls.h"

#define OPT(field) offsetof(celer_server_options, field)

/* The one table of flags: name, environment variable, default, help. */
static const celer_server_flag flags[] = {
    {"model-repository", "CELER_MODEL_REPOSITORY", NULL,
     "folder of models in Triton's layout <model>/<version>/model.onnx, or s3://[http[s]://host:port/]bucket[/prefix] "
     "(credentials and endpoint from the AWS_* environment) (required)",
     CELER_FLAG_STRING, OPT(model_repository)},
    {"model-cache-dir", "CELER_MODEL_CACHE_DIR", "",
     "where an S3 repository's local copy lives (an earlier copy there is reused); empty = a private temporary "
     "folder removed at exit", CELER_FLAG_STRING, OPT(model_cache_dir)},
    {"model-cache-max-bytes", "CELER_MODEL_CACHE_MAX_BYTES", "10737418240",
     "cap on an S3 repository's local copy; a bucket whose complete models hold more is refused", CELER_FLAG_SIZE,
     OPT(model_cache_max_bytes)},
    {"http-address", "CELER_HTTP_ADDRESS", "",
     "address to listen on: IPv4 (0.0.0.0, 127.0.0.1) or IPv6 (::, ::1); empty = both families (:: dual stack, "
     "0.0.0.0 where the kernel has IPv6 off)", CELER_FLAG_STRING, OPT(http_address)},
    {"http-port", "CELER_HTTP_PORT", "8000", "HTTP port (KServe v2 API and /metrics)", CELER_FLAG_INT, OPT(http_port)},
    {"grpc-address", "CELER_GRPC_ADDRESS", "", "address to listen on for gRPC, as --http-address (empty = both "
     "families)", CELER_FLAG_STRING, OPT(grpc_address)},
    {"grpc-port", "CELER_GRPC_PORT", "8001", "gRPC port (Triton's GRPCInferenceService and grpc.health.v1, h2c); 0 = off",
     CELER_FLAG_INT, OPT(grpc_port)},
    {"metrics-port", "CELER_METRICS_PORT", "0",
     "a port of its own for GET /metrics, as Triton's 8002 (/metrics on the HTTP port stays); 0 = none",
     CELER_FLAG_INT, OPT(metrics_port)},
    {"metrics-address", "CELER_METRICS_ADDRESS", "", "address the metrics port listens on, as --http-address "
     "(empty = both families)", CELER_FLAG_STRING, OPT(metrics_address)},
    {"grpc-max-message-bytes", "CELER_GRPC_MAX_MESSAGE_BYTES", "67108864",
     "largest gRPC request message; larger ones get RESOURCE_EXHAUSTED", CELER_FLAG_SIZE, OPT(grpc_max_message_bytes)},
    {"http-threads", "CELER_HTTP_THREADS", "2", "connection threads (they parse and encode, never compute)", CELER_FLAG_INT,
     OPT(http_threads)},
    {"workers", "CELER_WORKERS", "0", "inference worker threads; 0 = one per CPU the process may use (its affinity mask, lowered to its cgroup's CPU "
     "quota)", CELER_FLAG_INT, OPT(workers)},
    {"threads", "CELER_THREADS", "1", "intra-op threads per inference (latency); keep 1 under load", CELER_FLAG_INT,
     OPT(threads)},
    {"max-body-bytes", "CELER_MAX_BODY_BYTES", "67108864", "largest request body; larger ones get 413", CELER_FLAG_SIZE,
     OPT(max_body_bytes)},
    {"max-body-total-bytes", "CELER_MAX_BODY_TOTAL_BYTES", "268435456",
     "request body bytes all connections may hold together (gRPC: with the answers clients have not read yet); "
     "a request that would go past it gets 503",
     CELER_FLAG_SIZE, OPT(max_body_total_bytes)},
    {"max-response-bytes", "CELER_MAX_RESPONSE_BYTES", "1073741824",
     "largest answer (413 / RESOURCE_EXHAUSTED beyond); answers of 64 MiB of tensors or more are sent from the "
     "tensors as the client reads (gRPC: at most 2 GiB - 1 a message, protobuf's limit)",
     CELER_FLAG_SIZE, OPT(max_response_bytes)},
    {"compress-min-bytes", "CELER_COMPRESS_MIN_BYTES", "1024",
     "answers of this many bytes or more are compressed (gzip or deflate) when the client takes it: HTTP's "
     "Accept-Encoding, and on gRPC when the request came compressed and grpc-accept-encoding allows it",
     CELER_FLAG_SIZE, OPT(compress_min_bytes)},
    {"image-memory-bytes", "CELER_IMAGE_MEMORY_BYTES", "536870912",
     "decoded image pixels all requests may hold together (pipelines' decode_image); an image needing more than "
     "this gets 413, one that finds it held by others 503; 0 = no cap",
     CELER_FLAG_SIZE, OPT(image_memory_bytes)},
    {"request-timeout-secs", "CELER_REQUEST_TIMEOUT_SECS", "30",
     "close connections idle this long (no byte received or sent)", CELER_FLAG_INT, OPT(request_timeout_secs)},
    {"header-timeout-secs", "CELER_HEADER_TIMEOUT_SECS", "10",
     "a request's headers must be complete this long after its connection opened or answered the previous "
     "request, however slowly bytes keep coming; then the connection is closed",
     CELER_FLAG_INT, OPT(header_timeout_secs)},
    {"body-timeout-secs", "CELER_BODY_TIMEOUT_SECS", "60",
     "a request's body must be complete this long after its headers; then the connection is closed",
     CELER_FLAG_INT, OPT(body_timeout_secs)},
    {"max-connections", "CELER_MAX_CONNECTIONS", "0",
     "open connections at most; 0 = the open-files limit less 64 (raised to its hard limit at start)",
     CELER_FLAG_INT, OPT(max_connections)},
    {"repository-poll-secs", "CELER_REPOSITORY_POLL_SECS", "0",
     "rescan the repository this often and load new or changed versions; 0 = only through the API (15 in "
     "--model-control-mode poll when not given)", CELER_FLAG_INT, OPT(repository_poll_secs)},
    {"model-control-mode", "CELER_MODEL_CONTROL_MODE", "",
     "Triton's model control: none (every model at start, no change after, repository API refused), poll (every "
     "model at start, then polling, API refused) or explicit (only --load-model at start, then the API); empty = "
     "celer's own: every model at start, polling with --repository-poll-secs, the API on", CELER_FLAG_STRING,
     OPT(model_control_mode)},
    {"load-model", "CELER_LOAD_MODEL", NULL,
     "with --model-control-mode explicit: a model to load at start (give the flag once per model; '*' alone loads "
     "every one); the environment variable takes them comma-separated", CELER_FLAG_LIST, OPT(load_models)},
    {"strict-readiness", "CELER_STRICT_READINESS", "1",
     "ready (/v2/health/ready, ServerReady, grpc.health) only while every model is ready; false: ready once serving, "
     "whatever the models' state", CELER_FLAG_BOOL, OPT(strict_readiness)},
    {"default-max-batch", "CELER_DEFAULT_MAX_BATCH", "8",
     "max_batch_size for models without a config whose first dims are symbolic", CELER_FLAG_INT, OPT(default_max_batch)},
    {"max-queue-size", "CELER_MAX_QUEUE_SIZE", "1024", "queue cap for models whose config sets none; beyond it 503",
     CELER_FLAG_INT, OPT(max_queue_size)},
    {"drain-delay-secs", "CELER_DRAIN_DELAY_SECS", "5",
     "on SIGTERM or SIGINT, readiness turns 503 at once and the server goes on serving this long, with "
     "`Connection: close` on every HTTP answer and GOAWAY on gRPC, so load balancers stop routing to it; then "
     "the listeners close (a second signal ends the delay early); 0 = close them at once",
     CELER_FLAG_INT, OPT(drain_delay_secs)},
    {"shutdown-timeout-secs", "CELER_SHUTDOWN_TIMEOUT_SECS", "30",
     "on SIGTERM the process exits 0 within this long after the signal (the drain delay included, so it must be "
     "greater), whatever clients do: in-flight requests finish, a second before it those still queued get 503, "
     "then the rest are cut", CELER_FLAG_INT, OPT(shutdown_timeout_secs)},
    {"log-format", "CELER_LOG_FORMAT", "default",
     "log line format: default (\"text\" too), ISO8601 (a timestamp and level letter before every line) or json "
     "(one object per line); changed at run time by POST /v2/logging", CELER_FLAG_STRING, OPT(log_format)},
    {"log-info", "CELER_LOG_INFO", "true", "info lines (the access log among them)", CELER_FLAG_BOOL, OPT(log_info)},
    {"log-warning", "CELER_LOG_WARNING", "true", "warning lines", CELER_FLAG_BOOL, OPT(log_warning)},
    {"log-error", "CELER_LOG_ERROR", "true", "error lines", CELER_FLAG_BOOL, OPT(log_error)},
    {"log-verbose", "CELER_LOG_VERBOSE", "0",
     "verbose level: 1 adds a line per gRPC call and the message of every failed request; 0 = none",
     CELER_FLAG_INT, OPT(log_verbose)},
    {"quiet", "CELER_QUIET", "0", "no access log", CELER_FLAG_BOOL, OPT(quiet)},
    {"cache-bytes", "CELER_CACHE_BYTES", "268435456",
     "in-process result cache for models and pipelines that enable it (config response_cache, pipeline.yaml "
     "cache); 0 = none",
     CELER_FLAG_SIZE, OPT(cache_bytes)},
    {"cache-redis", "CELER_CACHE_REDIS", "",
     "redis://[[user]:password@]host[:port][/db]: a shared result cache tier behind the in-process one", CELER_FLAG_STRING,
     OPT(cache_redis)},
    {"cache-redis-timeout-ms", "CELER_CACHE_REDIS_TIMEOUT_MS", "10",
     "Redis connect and command timeout; a slow or dead Redis is skipped (backoff up to 5 s)", CELER_FLAG_INT,
     OPT(cache_redis_timeout_ms)},
    {"docs", "CELER_DOCS", "0",
     "serve /docs and /v2/models/{name}/docs: Swagger UI on the OpenAPI documents (/v2/openapi.json, always "
     "served)", CELER_FLAG_BOOL, OPT(docs)},
    {"docs-assets", "CELER_DOCS_ASSETS", "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5",
     "where the /docs page loads Swagger UI's swagger-ui-bundle.js and swagger-ui.css: a URL, or a folder holding "
     "them (npm's swagger-ui-dist) for machines without internet", CELER_FLAG_STRING, OPT(docs_assets)},
    {"allow-shared-memory", "CELER_ALLOW_SHARED_MEMORY", "0",
     "let clients register system shared memory regions (/dev/shm objects the server maps, reads inputs from and "
     "writes outputs into: only for clients on this machine that you trust with the server's access to /dev/shm)",
     CELER_FLAG_BOOL, OPT(allow_shared_memory)},
    {"api-keys", "CELER_API_KEYS", "",
     "a file of API keys, one a line: SCOPES KEY [NAME], SCOPES a comma list of infer, admin and metrics; requests "
     "then need 'Authorization: Bearer KEY' with the endpoint's scope (health stays open, /metrics too unless a key "
     "has the metrics scope); SIGHUP reloads it; empty = no keys, every endpoint open",
     CELER_FLAG_STRING, OPT(api_keys)},
    {"trace-otlp-url", "CELER_TRACE_OTLP_URL", "",
     "export spans over OTLP/HTTP to this URL (e.g. http://collector:4318/v1/traces); empty = "
     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else no tracing",
     CELER_FLAG_STRING, OPT(trace_otlp_url)},
    {"trace-otlp-protocol", "CELER_TRACE_OTLP_PROTOCOL", "",
     "http/protobuf or http/json; empty = OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else "
     "http/protobuf", CELER_FLAG_STRING, OPT(trace_otlp_protocol)},
    {"trace-rate", "CELER_TRACE_RATE", "1000",
     "trace 1 in N requests; 0 = only requests whose traceparent is sampled (those are always traced); changed at run "
     "time by POST /v2/trace/setting", CELER_FLAG_INT, OPT(trace_rate)},
    {"trace-level", "CELER_TRACE_LEVEL", "TIMESTAMPS", "OFF (no spans) or TIMESTAMPS", CELER_FLAG_STRING,
     OPT(trace_level)},
    {"tls-cert", "CELER_TLS_CERT", "",
     "PEM certificate chain (leaf first): the HTTP and gRPC ports serve TLS 1.2/1.3 with it (gRPC with ALPN h2); "
     "needs --tls-key; SIGHUP reloads it", CELER_FLAG_STRING, OPT(tls_cert)},
    {"tls-key", "CELER_TLS_KEY", "", "PEM private key of --tls-cert's certificate; SIGHUP reloads it",
     CELER_FLAG_STRING, OPT(tls_key)},
    {"tls-client-ca", "CELER_TLS_CLIENT_CA", "",
     "PEM CA certificates for mutual TLS: a client without a certificate one of them signed fails the handshake; "
     "SIGHUP reloads it", CELER_FLAG_STRING, OPT(tls_client_ca)},
};

const celer_server_flag *celer_server_flags(int *count) {
    *count = (int)CELER_ARRAY_LEN(flags);
    return flags;
}

static bool is_bool_word(const char *s) {
    static const char *const words[] = {"1", "0", "true", "false", "yes", "no"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(words); i++)
        if (!strcmp(s, words[i])) return true;
    return false;
}

/* The environment's lists, split at their commas (the options point into it). */
static char env_lists[8192];
static size_t env_lists_used;

static celer_status add_to_list(celer_flag_list *l, const char *value, const char *origin) {
    if (!*value) return celer_errorf(CELER_ERR_INVALID, "%s: an empty value", origin);
    if (l->n == CELER_MAX_FLAG_VALUES)
        return celer_errorf(CELER_ERR_LIMIT, "%s: more than %d values", origin, CELER_MAX_FLAG_VALUES);
    l->values[l->n++] = value;
    return CELER_OK;
}

static celer_status set_flag(const celer_server_flag *f, const char *value, const char *origin, celer_server_options *o,
                             bool from_env) {
    char *field = (char *)o + f->offset;
    if (f->kind == CELER_FLAG_STRING) {
        *(const char **)field = value;
        return CELER_OK;
    }
    if (f->kind == CELER_FLAG_LIST) {
        celer_flag_list *l = (celer_flag_list *)field;
        if (!from_env) return add_to_list(l, value, origin);
        size_t len = strlen(value);
        if (len + 1 > sizeof env_lists - env_lists_used)
            return celer_errorf(CELER_ERR_LIMIT, "%s: longer than %zu bytes", origin, sizeof env_lists - 1);
        char *copy = memcpy(env_lists + env_lists_used, value, len + 1);
        env_lists_used += len + 1;
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            CELER_TRY(add_to_list(l, tok, origin));
        return CELER_OK;
    }
    if (f->kind == CELER_FLAG_BOOL) {
        bool on = !strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes");
        if (!on && strcmp(value, "0") && strcmp(value, "false") && strcmp(value, "no"))
            return celer_errorf(CELER_ERR_INVALID, "%s: '%s' is not a boolean (true/false)", origin, value);
        *(int *)field = on;
        return CELER_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || *end || end == value || v < 0)
        return celer_errorf(CELER_ERR_INVALID, "%s: '%s' is not a non-negative integer", origin, value);
    if (f->kind == CELER_FLAG_SIZE)
        *(long long *)field = v;
    else if (v > 1 << 30)
        return celer_errorf(CELER_ERR_INVALID, "%s: %lld is too large", origin, v);
    else
        *(int *)field = (int)v;
    return CELER_OK;
}

/* Triton's model control flags, and how they map onto polling (Triton's words first in the
 * messages). */
static celer_status check_model_control(celer_server_options *o) {
    static char mode[16];
    size_t n = strlen(o->model_control_mode);
    for (size_t i = 0; i < n && i + 1 < sizeof mode; i++) mode[i] = (char)tolower((unsigned char)o->model_control_mode[i]);
    mode[CELER_MIN(n, sizeof mode - 1)] = 0;
    if (n >= sizeof mode || (n && strcmp(mode, "none") && strcmp(mode, "poll") && strcmp(mode, "explicit")))
        return celer_errorf(CELER_ERR_INVALID, "invalid argument for --model-control-mode: '%s' (expected none, poll or "
                            "explicit; leave it out for celer's own)", o->model_control_mode);
    o->model_control_mode = mode;
    bool explicit = !strcmp(mode, "explicit");
    if (o->load_models.n && !explicit)
        return celer_errorf(CELER_ERR_INVALID, "Use of '--load-model' requires setting '--model-control-mode=explicit' "
                            "as well");
    for (int i = 0; i < o->load_models.n; i++)
        if (!strcmp(o->load_models.values[i], "*") && o->load_models.n > 1)
            return celer_errorf(CELER_ERR_INVALID, "Wildcard model name '*' must be the ONLY startup model if specified "
                                "at all (--load-model is given %d times)", o->load_models.n);
    if (!strcmp(mode, "poll") && !o->repository_poll_secs) o->repository_poll_secs = 15; /* Triton's default */
    if ((explicit || !strcmp(mode, "none")) && o->repository_poll_secs)
        return celer_errorf(CELER_ERR_INVALID, "--repository-poll-secs %d polls the repository: --model-control-mode %s "
                            "does not (use poll, or leave the mode out)", o->repository_poll_secs, mode);
    return CELER_OK;
}

celer_status celer_server_parse_args(int argc, char **argv, celer_server_options *o) {
    memset(o, 0, sizeof *o);
    env_lists_used = 0;
    char origin[128];
    for (size_t i = 0; i < CELER_ARRAY_LEN(flags); i++) {
        const char *env = getenv(flags[i].env);
        snprintf(origin, sizeof origin, "--%s", flags[i].name);
        if (flags[i].dflt) CELER_TRY(set_flag(&flags[i], flags[i].dflt, origin, o, false));
        snprintf(origin, sizeof origin, "environment variable %s", flags[i].env);
        if (env && *env) CELER_TRY(set_flag(&flags[i], env, origin, o, true));
    }
    bool listed[CELER_ARRAY_LEN(flags)] = {0};
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2))
            return celer_errorf(CELER_ERR_INVALID, "unexpected argument '%s' (see celer serve --help)", arg);
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        const celer_server_flag *f = NULL;
        for (size_t i = 0; i < CELER_ARRAY_LEN(flags) && !f; i++)
            if (strlen(flags[i].name) == len && !strncmp(flags[i].name, arg + 2, len)) f = &flags[i];
        if (!f) return celer_errorf(CELER_ERR_INVALID, "unknown flag '%s' (see celer serve --help)", arg);
        const char *value = eq ? eq + 1 : NULL;
        if (!value && f->kind == CELER_FLAG_BOOL) /* `--quiet`, or as Triton's `--strict-readiness false` */
            value = a + 1 < argc && is_bool_word(argv[a + 1]) ? argv[++a] : "1";
        if (!value && a + 1 < argc) value = argv[++a];
        if (!value) return celer_errorf(CELER_ERR_INVALID, "--%s needs a value", f->name);
        snprintf(origin, sizeof origin, "--%s", f->name);
        if (f->kind == CELER_FLAG_LIST && !listed[f - flags]) { /* flags replace the environment's values */
            listed[f - flags] = true;
            ((celer_flag_list *)((char *)o + f->offset))->n = 0;
        }
        CELER_TRY(set_flag(f, value, origin, o, false));
    }
    if (!o->model_repository || !o->model_repository[0])
        return celer_errorf(CELER_ERR_INVALID, "--model-repository DIR is required (or CELER_MODEL_REPOSITORY)");
    if (o->http_port < 1 || o->http_port > 65535)
        return celer_errorf(CELER_ERR_INVALID, "--http-port %d is not a port number", o->http_port);
    if (o->grpc_port > 65535)
        return celer_errorf(CELER_ERR_INVALID, "--grpc-port %d is not a port number (0 turns gRPC off)", o->grpc_port);
    if (o->metrics_port > 65535)
        return celer_errorf(CELER_ERR_INVALID, "--metrics-port %d is not a port number (0 turns it off)", o->metrics_port);
    if (o->metrics_port && (o->metrics_port == o->http_port || o->metrics_port == o->grpc_port))
        return celer_errorf(CELER_ERR_INVALID, "--metrics-port %d is already the %s port", o->metrics_port,
                            o->metrics_port == o->http_port ? "HTTP" : "gRPC");
    if (o->grpc_max_message_bytes < 1024 || o->grpc_max_message_bytes > 0xffffffffLL)
        return celer_errorf(CELER_ERR_INVALID, "--grpc-max-message-bytes must be between 1024 and 4294967295 (the "
                            "gRPC prefix's limit), not %lld", o->grpc_max_message_bytes);
    CELER_TRY(celer_log_configure(o));
    if (o->max_body_bytes < 1024) return celer_errorf(CELER_ERR_INVALID, "--max-body-bytes must be at least 1024");
    if (o->max_response_bytes < 1024)
        return celer_errorf(CELER_ERR_INVALID, "--max-response-bytes must be at least 1024");
    if (o->max_body_total_bytes < o->max_body_bytes)
        return celer_errorf(CELER_ERR_INVALID, "--max-body-total-bytes (%lld) must be at least --max-body-bytes (%lld)",
                            o->max_body_total_bytes, o->max_body_bytes);
    if (o->header_timeout_secs < 1 || o->body_timeout_secs < 1)
        return celer_errorf(CELER_ERR_INVALID, "--header-timeout-secs and --body-timeout-secs must be at least 1");
    CELER_TRY(check_model_control(o));
    if (o->shutdown_timeout_secs <= o->drain_delay_secs)
        return celer_errorf(CELER_ERR_INVALID, "--shutdown-timeout-secs (%d) must be greater than --drain-delay-secs "
                            "(%d): the timeout counts from the signal and includes the delay",
                            o->shutdown_timeout_secs, o->drain_delay_secs);
    if (!o->tls_cert[0] != !o->tls_key[0])
        return celer_errorf(CELER_ERR_INVALID, "--tls-cert and --tls-key go together: %s was given without %s",
                            o->tls_cert[0] ? "--tls-cert" : "--tls-key", o->tls_cert[0] ? "--tls-key" : "--tls-cert");
    if (o->tls_client_ca[0] && !o->tls_cert[0])
        return celer_errorf(CELER_ERR_INVALID, "--tls-client-ca needs --tls-cert and --tls-key (client certificates are "
                            "asked for in the TLS handshake)");
    if (o->threads < 1) o->threads = 1;
    if (o->cache_bytes < 0) return celer_errorf(CELER_ERR_INVALID, "--cache-bytes must not be negative");
    return CELER_OK;
}

/* One sync of an S3 repository's copy, logged when it changed something or failed; the serving
 * versions are left alone on a failure, and the registry is told why (the index shows it; not
 * ready meanwhile only while no sync ever worked: `first`). */
static celer_status sync_s3(celer_s3_mirror *mirror, const char *url, celer_registry *registry, bool first) {
    celer_s3_sync_stats s;
    celer_status st = celer_s3_mirror_sync(mirror, &s);
    celer_registry_set_source_error(registry, url, st ? celer_error_message() : NULL, first);
    if (st)
        celer_log(CELER_LOG_WARNING, "%s: sync failed, serving what was there: %s", url, celer_error_message());
    else if (s.objects_downloaded || s.objects_removed)
        celer_log(CELER_LOG_INFO, "%s: %lld objects (%lld bytes) downloaded, %lld unchanged, %lld removed; %d units "
                "taken, %d not complete yet (%lld list calls)", url, (long long)s.objects_downloaded,
                (long long)s.bytes_downloaded, (long long)s.objects_unchanged, (long long)s.objects_removed,
                s.units_taken, s.units_waiting, (long long)s.list_calls);
    return st;
}

/* The repository API's load of one model syncs the copy first (celer_registry_set_refresh). */
typedef struct s3_refresh {
    celer_s3_mirror *mirror;
    const char *url;
    celer_registry *registry;
    _Atomic bool synced; /* a sync worked once */
} s3_refresh;

static celer_status refresh_s3(void *user) {
    s3_refresh *f = user;
    celer_status st = sync_s3(f->mirror, f->url, f->registry, !atomic_load(&f->synced));
    if (!st) atomic_store(&f->synced, true);
    return st;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An s3:// repository: its local copy, synced before the models load. A repository without READY
 * markers is listed twice a second apart at start (a version is taken once its listing held
 * still). A failing sync is returned in *sync_st (the server starts unready and retries); other
 * errors (the URL, the cache folder) are returned. */
static celer_status open_s3(const celer_server_options *local, celer_s3_mirror **out, celer_status *sync_st) {
    CELER_TRY(celer_s3_mirror_open(local->model_repository, local->model_cache_dir,
                                   local->model_cache_max_bytes, out));
    celer_s3_sync_stats s, again;
    int64_t t0 = mono_ms();
    celer_status st = celer_s3_mirror_sync(*out, &s);
    int64_t ms = mono_ms() - t0;
    if (!st && s.units_waiting) {
        struct timespec second = {1, 0};
        nanosleep(&second, NULL);
        t0 = mono_ms();
        st = celer_s3_mirror_sync(*out, &again);
        ms += mono_ms() - t0;
        s.objects_downloaded += again.objects_downloaded, s.bytes_downloaded += again.bytes_downloaded;
        s.objects_unchanged = again.objects_unchanged, s.units_taken = again.units_taken;
        s.units_waiting = again.units_waiting;
    }
    if ((*sync_st = st)) {
        celer_log(CELER_LOG_ERROR, "%s: cannot sync, starting unready and retrying: %s", local->model_repository,
                celer_error_message());
        return CELER_OK;
    }
    celer_log(CELER_LOG_INFO, "%s: local copy in %s: %lld objects (%lld bytes) downloaded, %lld unchanged in %.2f s; "
            "%d units taken, %d not complete yet", local->model_repository, celer_s3_mirror_dir(*out),
            (long long)s.objects_downloaded, (long long)s.bytes_downloaded, (long long)s.objects_unchanged,
            (double)ms / 1e3, s.units_taken, s.units_waiting);
    return CELER_OK;
}


/* The models loaded at start: every one, or in explicit mode those of --load-model ('*': every one). */
static void load_at_start(celer_registry *registry, const celer_server_options *opts) {
    const celer_flag_list *l = &opts->load_models;
    if (strcmp(opts->model_control_mode, "explicit") || (l->n == 1 && !strcmp(l->values[0], "*")))
        celer_registry_load_all(registry);
    else
        celer_registry_load_some(registry, l->values, l->n);
}

/* Requests in flight on both front ends. */
static int active(celer_http *http, celer_grpc *grpc) { return celer_http_active(http) + celer_grpc_active(grpc); }
static int suspended(celer_http *http, celer_grpc *grpc) {
    return celer_http_suspended(http) + celer_grpc_suspended(grpc);
}

/* Waits until count(http, grpc) is 0 or the clock passes `until_ms`; true when it is 0. */
static bool wait_zero(int (*count)(celer_http *, celer_grpc *), celer_http *http, celer_grpc *grpc, int64_t until_ms) {
    while (count(http, grpc) > 0 && mono_ms() < until_ms) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return count(http, grpc) == 0;
}

/* The watchdog: whatever clients do (keep sending, never read) and whatever the cleanup does, the
 * process ends `shutdown_timeout_secs` after the signal. The front ends are read under the lock,
 * and celer_server_run takes it (finished) before it frees them. */
typedef struct watchdog {
    pthread_mutex_t lock;
    bool finished;
    int64_t deadline_ms;
    celer_http *http;
    celer_grpc *grpc;
} watchdog;

static void *watchdog_main(void *p) {
    watchdog *w = p;
    int64_t left;
    while ((left = w->deadline_ms - mono_ms()) > 0) {
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&w->lock);
    if (w->finished)
        celer_log(CELER_LOG_WARNING, "shutdown timeout: the cleanup did not finish in time");
    else
        celer_log(CELER_LOG_WARNING, "shutdown timeout: %d requests cut", active(w->http, w->grpc));
    celer_log(CELER_LOG_INFO, "exiting");
    fflush(stderr);
    _exit(0);
}

/* SIGTERM or SIGINT (docs/server.md, "Shutdown and draining"): readiness turns false at once on
 * both transports; for --drain-delay-secs every request and connection is still served, HTTP
 * answers with `Connection: close` and gRPC connections get a GOAWAY notice, so clients move to
 * other replicas; a second signal ends the delay. Then the listeners close (connects refused), idle
 * keep-alive connections are closed, and in-flight requests finish; a second before the timeout,
 * requests still queued are answered 503, so every suspended connection is resumed before the
 * daemon stops. Returns at the timeout (less a margin for the cleanup) at the latest. */
static void shutdown_http(const celer_server_options *opts, celer_http *http, celer_grpc *grpc,
                          celer_http_metrics *metrics_port, celer_registry *registry, celer_sched *sched,
                          const sigset_t *sigs) {
    int64_t t0 = mono_ms(), limit = (int64_t)opts->shutdown_timeout_secs * 1000;
    int64_t delay = (int64_t)opts->drain_delay_secs * 1000;
    celer_registry_set_draining(registry);
    celer_http_notice(http);
    celer_grpc_notice(grpc);
    celer_log(CELER_LOG_INFO, "draining: ready is now 503; serving for %d s with Connection: close%s",
              opts->drain_delay_secs, grpc ? " (GOAWAY on gRPC)" : "");
    for (int64_t left; (left = t0 + delay - mono_ms()) > 0;) {
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            celer_log(CELER_LOG_INFO, "a second signal: ending the drain delay now");
            break;
        }
    }
    celer_http_drain(http);
    celer_grpc_drain(grpc);
    celer_http_metrics_drain(metrics_port);
    celer_registry_stop_actions(registry); /* queued loads and unloads get 503; the running one finishes */
    celer_log(CELER_LOG_INFO, "listeners closed; finishing %d requests", active(http, grpc));
    int64_t grace = CELER_MAX(mono_ms() - t0, limit > 2000 ? limit - 1000 : limit / 2);
    int64_t margin = CELER_MIN(200, limit / 10); /* for the cleanup, before the watchdog ends it */
    if (wait_zero(active, http, grpc, t0 + grace)) {
        /* nothing in flight: a gRPC call still arriving is refused rather than queued, so no
         * worker holds a call when the front ends stop */
        celer_sched_cancel(sched, "the server is shutting down");
        return;
    }
    celer_log(CELER_LOG_WARNING, "shutdown timeout near: answering %d queued requests with 503", suspended(http, grpc));
    celer_sched_cancel(sched, "the server is shutting down");
    /* their answers are sent while the daemon runs; a client that does not read its answer is
     * cut off at the limit (only suspended requests would keep the daemon from stopping) */
    if (!wait_zero(active, http, grpc, t0 + limit - margin))
        celer_log(CELER_LOG_WARNING, "shutdown timeout: %d requests cut", active(http, grpc));
}

/* A remote model loaded again (its upstream could not be reached before): said in the log. */
static void remote_loaded(void *user, celer_status st, const char *message) {
    char *name = user; /* strdup'ed by the loop */
    if (!st) celer_log(CELER_LOG_INFO, "remote model '%s' loaded: its upstream answers now", name ? name : "?");
    else celer_log(CELER_LOG_INFO, "remote model not loaded yet: %s", message);
    free(name);
}

/* The thread that takes SIGTERM, SIGINT and SIGHUP (sigtimedwait). */
static pid_t signal_tid;

/* A SIGTERM or SIGINT delivered to another thread goes on to the signal thread, where it waits
 * (blocked) for sigtimedwait. The kernel gives a process's signal to any thread that does not
 * block it, and OpenBLAS starts its threads when the library loads, before celer blocks anything:
 * a SIGTERM sent while the main thread was not inside sigtimedwait (starting up, syncing an S3
 * repository) went to one of them and its default action killed the process. */
static void forward_signal(int sig) {
    int saved = errno;
    syscall(SYS_tgkill, getpid(), signal_tid, sig);
    errno = saved;
}

celer_status celer_server_run(const celer_server_options *opts) {
    /* signals are taken by this thread only (sigtimedwait); block them before any thread starts,
     * and forward them from threads that already run */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP); /* reloads what is reloadable: the API keys and the TLS files */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal_tid = (pid_t)syscall(SYS_gettid);
    struct sigaction fwd = {.sa_handler = forward_signal};
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGINT, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A fixed threshold (glibc raises its default after each large free): request bodies and
     * tensors above it get pages of their own, returned when the request ends, so memory goes back
     * to its idle level after a burst instead of staying in the heap. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* A thread's heap is given back only past 8 MiB of free space at its top. glibc's 128 KiB
     * (fixed too once the mmap threshold is set) gave pages back and faulted them in again on every
     * request when many connections' buffers came and went in one heap: with HTTPS (GnuTLS's
     * record buffers), 10% of the server's time went to madvise and page faults (2 MiB was not
     * enough at 64 connections). */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    celer_pipeline_set_image_budget((size_t)opts->image_memory_bytes);

    celer_metrics *metrics = NULL;
    celer_sched *sched = NULL;
    celer_registry *registry = NULL;
    celer_service *service = NULL;
    celer_http *http = NULL;
    celer_grpc *grpc = NULL;
    celer_http_metrics *metrics_port = NULL;
    celer_tls *tls = NULL;
    celer_cache *cache = NULL;
    celer_redis *redis = NULL;
    celer_s3_mirror *mirror = NULL;
    celer_server_options local = *opts; /* an S3 repository is served from its copy's folder */
    const char *url = opts->model_repository;
    opts = &local;
    celer_status st = CELER_OK, sync_st = CELER_OK;
    char sync_error[1024] = "";
    if (!strncmp(url, "s3://", 5)) {
        if ((st = open_s3(&local, &mirror, &sync_st))) goto done;
        if (sync_st) snprintf(sync_error, sizeof sync_error, "%s", celer_error_message());
        local.model_repository = celer_s3_mirror_dir(mirror);
    }
    int redis_pool = CELER_MAX(opts->http_threads, 1) + (opts->workers > 0 ? opts->workers : celer_cpu_count());
    if ((st = celer_metrics_init(&metrics)) || (st = celer_auth_start(opts->api_keys, metrics)) ||
        (st = celer_tls_init(opts, metrics, &tls)) ||
        (st = celer_cache_init((size_t)opts->cache_bytes, &cache)) ||
        (opts->cache_redis[0] && (st = celer_redis_open(opts->cache_redis, opts->cache_redis_timeout_ms, redis_pool, &redis))) ||
        (st = celer_trace_start(opts, metrics)) || (st = celer_sched_init(opts->workers, &sched)) ||
        (st = celer_registry_init(opts, sched, metrics, &registry)))
        goto done;
    if (sync_st) celer_registry_set_source_error(registry, url, sync_error, true);
    s3_refresh refresh = {mirror, url, registry, !sync_st};
    if (mirror) {
        celer_s3_mirror_metrics(mirror, metrics, url);
        celer_registry_set_refresh(registry, refresh_s3, &refresh);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    load_at_start(registry, opts);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if ((st = celer_service_init(opts, registry, metrics, cache, redis, &service)) ||
        (st = celer_http_start(opts, service, metrics, tls, &http)) ||
        (st = celer_grpc_start(opts, service, metrics, tls, &grpc)) ||
        (st = celer_http_metrics_start(opts, metrics, &metrics_port)))
        goto done;
    /* the addresses parsed as the front ends did (they started, so these parse) */
    celer_listen_addr http_a, grpc_a, metrics_a;
    celer_listen_resolve(opts->http_address, opts->http_port, "--http-address", &http_a);
    celer_listen_resolve(opts->grpc_address, opts->grpc_port, "--grpc-address", &grpc_a);
    celer_listen_resolve(opts->metrics_address, opts->metrics_port, "--metrics-address", &metrics_a);
    char grpc_at[120] = "", metrics_at[120] = "";
    if (grpc) snprintf(grpc_at, sizeof grpc_at, " and grpc://%s%s", grpc_a.text, tls ? " (TLS, ALPN h2)" : "");
    if (metrics_port) snprintf(metrics_at, sizeof metrics_at, ", metrics on http://%s/metrics", metrics_a.text);
    celer_log(CELER_LOG_INFO, "serving %s on %s://%s%s%s (models loaded in %.0f ms)", url,
            tls ? "https" : "http", http_a.text, grpc_at, metrics_at,
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

    /* an S3 source that could not be synced is retried every 1, 2, 4 ... 30 s (with up to a
     * quarter more, so that replicas spread), polling or not */
    int backoff = 1, remote_backoff = 1;
    unsigned seed = (unsigned)getpid() ^ (unsigned)mono_ms();
    for (;;) {
        int secs = opts->repository_poll_secs > 0 ? opts->repository_poll_secs : 3600;
        if (sync_st) secs = CELER_MIN(secs, backoff + (int)(rand_r(&seed) % (unsigned)(backoff / 4 + 1)));
        /* remote models whose upstream could not be reached are loaded again after 1, 2, 4 ... 30 s,
         * on the action pool (a load waits on its upstream; this thread takes the signals) */
        char retry[16][256];
        int n_retry = celer_registry_remote_retries(registry, retry, 16);
        if (n_retry) secs = CELER_MIN(secs, remote_backoff);
        remote_backoff = n_retry ? CELER_MIN(remote_backoff * 2, 30) : 1;
        struct timespec wait = {secs, 0};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) break;
        if (sig == SIGHUP) {
            celer_auth_reload();
            celer_tls_reload(tls);
            continue;
        }
        if (!(sig < 0 && errno == EAGAIN)) continue;
        for (int i = 0; i < n_retry; i++) {
            char *name = strdup(retry[i]);
            if (celer_registry_submit_action(registry, retry[i], false, NULL, remote_loaded, name)) free(name);
        }
        if (mirror && (sync_st || opts->repository_poll_secs > 0)) {
            bool never = !atomic_load(&refresh.synced);
            sync_st = sync_s3(mirror, url, registry, never);
            backoff = sync_st ? CELER_MIN(backoff * 2, 30) : 1;
            if (sync_st) continue;
            atomic_store(&refresh.synced, true);
            if (never) {
                load_at_start(registry, opts); /* the models the first sync could not fetch */
                continue;
            }
        }
        if (opts->repository_poll_secs > 0) celer_registry_poll(registry);
    }
    /* static: the detached watchdog may wake after this function returned */
    static watchdog dog = {.lock = PTHREAD_MUTEX_INITIALIZER};
    dog.deadline_ms = mono_ms() + (int64_t)opts->shutdown_timeout_secs * 1000;
    dog.http = http, dog.grpc = grpc;
    pthread_t dog_thread;
    if (!pthread_create(&dog_thread, NULL, watchdog_main, &dog)) pthread_detach(dog_thread);
    shutdown_http(opts, http, grpc, metrics_port, registry, sched, &sigs);
    pthread_mutex_lock(&dog.lock); /* the front ends are freed below; the watchdog only exits from now on */
    dog.finished = true;
    pthread_mutex_unlock(&dog.lock);
done:
    if (st) celer_log(CELER_LOG_ERROR, "error: %s", celer_error_message());
    if (suspended(http, grpc) > 0) {
        /* an execution outlived the timeout: nothing can be freed while it may still answer; the
         * process ends here and the kernel reclaims the rest */
        celer_log(CELER_LOG_WARNING, "%d requests still running at the shutdown timeout; exiting without them",
                suspended(http, grpc));
        celer_log(CELER_LOG_INFO, "exiting");
        fflush(stderr);
        _exit(0);
    }
    /* no request waits on a worker: the front end goes first (closing every connection, answered or
     * not), so no request can reach a model while the registry frees it */
    celer_http_metrics_stop(metrics_port);
    celer_grpc_stop(grpc);
    celer_http_stop(http);
    celer_auth_stop(); /* no check runs any more */
    celer_trace_stop(); /* the spans of the last requests go out (bounded) */
    celer_tls_free(tls); /* after both front ends: no handshake runs any more */
    celer_service_free(service);
    celer_registry_free(registry);
    celer_sched_free(sched);
    celer_metrics_free(metrics);
    celer_cache_free(cache);
    celer_redis_close(redis);
    celer_s3_mirror_close(mirror);
    if (!st) celer_log(CELER_LOG_INFO, "exiting");
    return st;
}
