/* The request service (service.c), private to src/server: the request path every transport
 * shares. A transport (HTTP today, gRPC next) decodes bytes into a celer_kserve_request, hands it
 * here, and encodes what comes back; everything between is here: admission to a version's queue,
 * the result cache and its shared tier, coalescing of identical requests, the response cache,
 * pipelines and the model calls they make, deadlines, statistics and metrics.
 *
 * A call goes:
 *   celer_service_begin      (the protocol, and model and version from the route or message:
 *                            acquire, admit)
 *   [celer_service_find_response]  (the transport's encoded answer to the same request bytes)
 *   the transport decodes its body into the call's arena, against celer_service_version(c)
 *   celer_service_start      (or celer_service_reject when the body did not decode)
 *   done(...)                exactly once, on the starting thread, or later on a worker after
 *                            suspend(...) and followed by resume(...)
 *   celer_service_end        (after the transport has sent its answer)
 * See docs/server.md, "The request service". */
#ifndef CELER_SERVER_SERVICE_H
#define CELER_SERVER_SERVICE_H

#include "server_internal.h"

typedef struct celer_service celer_service;
typedef struct celer_service_call celer_service_call;

/* A request as its transport decoded it. */
typedef struct celer_service_request {
    const celer_kserve_request *kreq; /* inputs, requested outputs, parameters, timeout, id */
    const char *request_id;           /* the transport's id (X-Request-Id...), for messages; may be NULL */
    int64_t deadline_ns;              /* the transport's own deadline (CLOCK_MONOTONIC; 0 = none, e.g.
                                         grpc-timeout): the earlier of it and the request's applies */
    uint64_t cache_salt;              /* results are shared only between requests of equal salt (a
                                         tenant, a key scope); 0 for the common pool */
} celer_service_request;

/* How the result cache took part in an answer (the X-Celer-Cache header). */
typedef enum celer_service_cache {
    CELER_SERVICE_CACHE_NONE,   /* not an inference, or answered before a lookup */
    CELER_SERVICE_CACHE_BYPASS, /* the version does not cache */
    CELER_SERVICE_CACHE_HIT,
    CELER_SERVICE_CACHE_MISS,
} celer_service_cache;
extern const char *const celer_service_cache_names[4]; /* NULL, "bypass", "hit", "miss" */

/* What a call produced, for the transport to encode. Valid only during the done callback. */
typedef struct celer_service_result {
    celer_status status;         /* CELER_OK, or the failure (its HTTP status and gRPC code: base.h) */
    const char *message;         /* the failure's text; "" on success */
    const celer_tensor *outputs; /* on success: every output, in the order of version->output_names */
    int n_outputs;
    const served_version *version;
    celer_service_cache cache;
} celer_service_result;

typedef struct celer_service_callbacks {
    /* The call goes on another thread: the transport parks its connection or stream now (done and
     * resume follow on a worker, possibly before suspend's caller returns). Not called when done
     * comes during celer_service_start. */
    void (*suspend)(void *user);
    /* The answer: encodes it and returns the encoder's status (CELER_OK counts the call as a
     * success of its version, anything else as a failure). The call is still alive: the answer is
     * not sent yet. Runs on the thread of celer_service_start (a cache hit, a refused request) or
     * on a worker; never under a lock of the service. */
    celer_status (*done)(void *user, const celer_service_result *r);
    /* After done, when suspend was called: the transport sends the answer; from then on the call
     * may be ended at any time by the transport's own thread. */
    void (*resume)(void *user);
} celer_service_callbacks;

/* Creates the service over the registry, metrics, result cache and optional Redis tier (all
 * borrowed; they must outlive it) and registers the cache metrics. */
celer_status celer_service_init(const celer_server_options *opts, celer_registry *registry, celer_metrics *metrics,
                                celer_cache *cache, celer_redis *redis, celer_service **out);
void celer_service_free(celer_service *s);

celer_registry *celer_service_registry(celer_service *s);
/* The system shared memory registry (shm.h) the service reads inputs from and writes outputs into;
 * transports register, list and unregister regions through it. */
typedef struct celer_shm celer_shm;
celer_shm *celer_service_shm(celer_service *s);

/* What the server metadata says on every protocol. */
#define CELER_SERVER_NAME "celer"
#define CELER_SERVER_VERSION "0.1.0"
extern const char *const celer_server_extensions[]; /* the protocol extensions celer implements; NULL-terminated */

/* Begins an inference call of `model` (`version` NULL or "" = the latest) that came by `protocol`
 * (the `protocol` label its outcome, and its pipeline's model calls, count under): takes a
 * reference on the version and a place in its queue, decided before any body byte is read.
 * start_ns: when the request arrived (CLOCK_MONOTONIC), for its duration. On failure returns NULL
 * with *status (CELER_ERR_NOT_FOUND, CELER_ERR_UNAVAILABLE for a model not ready or a full queue,
 * counted as a failure of the version, CELER_ERR_NOMEM) and the message in msg. The call is the
 * caller's until celer_service_end. */
celer_service_call *celer_service_begin(celer_service *s, celer_service_protocol protocol, const char *model,
                                        const char *version, int64_t start_ns, celer_status *status, char *msg,
                                        size_t msg_cap);

/* Tracing (trace.h), right after begin: the request's traceparent and tracestate header values
 * (NULL when absent; not NUL-terminated) and its span's name ("POST /v2/models/{m}/infer"). When
 * the request is traced (a sampled parent, or the sampler), its SERVER span starts at start_ns,
 * gets the events of its run, and ends at celer_service_end ("response sent"). Nothing is done
 * (no allocation, no clock read) for a request that is not. */
void celer_service_trace(celer_service_call *c, const char *traceparent, size_t tp_len, const char *tracestate,
                         size_t ts_len, const char *name);
/* When c is traced: its traceparent for the response (this request's span id; 56 bytes with the
 * NUL) and *tracestate (the incoming one, or NULL), and true. */
bool celer_service_traceparent(const celer_service_call *c, char *out, const char **tracestate);
/* When c is traced: its trace id (32 hex digits and a NUL) for the access log, and true. */
bool celer_service_trace_id(const celer_service_call *c, char out[33]);

/* The version being called: its inputs (decoding spec), output names, name and version. */
const served_version *celer_service_version(const celer_service_call *c);
/* The call's arena: what the transport decodes goes here, freed by celer_service_end. Bounded by
 * four times --max-body-bytes plus 64 MiB. */
celer_arena *celer_service_arena(celer_service_call *c);

/* The response cache, for versions that cache: the same request bytes to the same endpoint get
 * the same encoded answer without being decoded. `parts` (n_parts strings: the transport, the
 * endpoint form and the headers that decide how the body is read) and the body make the key. On
 * a hit appends the kept bytes to `out`, counts a cache hit and a success, and returns true: the
 * transport answers with them and calls celer_service_end. On a miss returns false and remembers
 * the key: a successful answer of this call can be kept under it with celer_service_keep_response. */
bool celer_service_find_response(celer_service_call *c, const char *const *parts, int n_parts, const void *body,
                                 size_t len, celer_jbuf *out);
/* From the done callback of a successful call that looked for its response: keeps `bytes` (copied)
 * as the answer to the same request bytes, for no longer than the result it was encoded from. */
void celer_service_keep_response(celer_service_call *c, const void *bytes, size_t len);

/* From the done callback of a successful call: makes the outputs it was given stay valid until
 * celer_service_end, so the transport can send them as the client reads, without copying them
 * (the model run's memory is taken from its worker: celer_sched_keep_outputs). Outputs of a cache
 * hit and of the call's own pipeline run are the call's already. BYTES elements' bytes are not
 * kept: encode them during done. CELER_ERR_UNSUPPORTED when the outputs are another call's (a
 * request coalesced on a pipeline request computing the same): copy them then; CELER_ERR_NOMEM. */
celer_status celer_service_keep_outputs(celer_service_call *c);

/* The transport could not decode the request: counts a failure of the version. The transport
 * answers with its own error and calls celer_service_end. */
void celer_service_reject(celer_service_call *c);

/* Starts the decoded request `r` (r->kreq, r->request_id and every tensor they point to stay
 * untouched until done; they live in the call's arena or the transport's memory; `r` itself is
 * copied). The transport must not end the call before this returns, even when resume came
 * first (HTTP: the connection's thread is the one calling this). Reads the inputs in system
 * shared memory from their regions (into the arena; kreq is not written) and takes the regions of
 * the outputs requested there (written before done: the encoders answer them without data).
 * Checks it against
 * the version (inputs in the model's order, requested outputs known; for a pipeline, its inputs
 * and parameters), sets its deadline (the config's default_timeout, or kreq->timeout_us where
 * allowed, and r->deadline_ns, the earlier), looks the result up in the cache tiers or joins an
 * identical request computing now, else queues it. cb->done is called exactly once (see
 * celer_service_callbacks); `cb` and `user` must stay valid until then. */
void celer_service_start(celer_service_call *c, const celer_service_request *r, const celer_service_callbacks *cb,
                         void *user);

/* The transport's client went away (a reset gRPC stream): the call's jobs still queued (its
 * model's, a pipeline's steps and model calls) complete with CELER_ERR_CANCELLED without running,
 * unless the result cache shares its result with identical requests. done still comes, as always.
 * Any thread, between celer_service_start and celer_service_end. */
void celer_service_cancel(celer_service_call *c);

/* Ends a call: gives back its queue place if still held, the images a pipeline run holds, the
 * arena and the version. After done was called (or when start was never called). */
void celer_service_end(celer_service_call *c);

/* One parameter of a load or unload of the repository API, as its transport decoded it. */
typedef enum celer_repo_kind {
    CELER_REPO_BOOL,
    CELER_REPO_INT,
    CELER_REPO_STRING,
    CELER_REPO_BYTES,  /* gRPC's bytes_param */
    CELER_REPO_BASE64, /* bytes as base64 text: HTTP's JSON carries a `file:` parameter so (Triton's client) */
    CELER_REPO_OTHER,  /* anything else (a JSON object, array or null) */
} celer_repo_kind;
typedef struct celer_repo_param {
    const char *key;   /* NUL-terminated */
    celer_repo_kind kind;
    bool boolean;
    int64_t integer;
    const char *bytes; /* STRING, BYTES, BASE64 */
    size_t len;
} celer_repo_param;

/* A load (or an unload when `unload`) of `model` through the repository API, on any protocol, as
 * Triton takes it: refused outside the modes that allow it (--model-control-mode none or poll:
 * UNAVAILABLE with Triton's message); the parameters checked (a load's `config`, a JSON model
 * config, and its `file:<path>` files, which need it; an unload's `unload_dependents` false;
 * anything else CELER_ERR_INVALID naming it), then queued on the registry's action pool. Returns
 * the refusal (done never called), or CELER_OK and done(user, status, message) is called once when
 * the action finished (on the pool's thread, or the one stopping it: see
 * celer_registry_submit_action). `params` is read during the call; the bytes they point to must
 * stay untouched until done. */
celer_status celer_service_repo_action(celer_service *s, const char *model, bool unload, const celer_repo_param *params,
                                       int n_params, void (*done)(void *user, celer_status st, const char *message),
                                       void *user);

/* Statistics of `model` (NULL: every model) and `version` (NULL: every version) as Triton's JSON.
 * CELER_ERR_NOT_FOUND with a message for an unknown model or version. */
celer_status celer_service_stats_json(celer_service *s, const char *model, const char *version, celer_jbuf *out);

#endif
