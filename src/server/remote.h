/* Remote models (remote.c), private to src/server: a model folder holding a remote.yaml is served
 * by calling a model of another KServe v2 server (Triton, another celer) over HTTP or gRPC.
 *
 * The registry loads it like a model: celer_remote_open reads the upstream's metadata and
 * max_batch_size. A remote model's requests go through the request service like a local model's
 * (admission, result cache and coalescing, pipelines' model steps, deadlines, statistics): only the
 * run differs. Where a local model's job goes to its queue for a worker, a remote model's goes to
 * the hub (celer_remote_submit), which sends it from its own IO thread (HTTP/1.1 keep-alive
 * connections through libcurl's multi interface; gRPC as streams multiplexed on a few HTTP/2
 * connections of h2client.h) and completes it through its `done` on that thread when its answer
 * came (or failed), as a worker would. No thread waits on a call, and no worker is woken to hand
 * a job on.
 *
 * Per upstream model: at most max_inflight calls in flight, the rest waiting (at most
 * max_queue_size, then CELER_ERR_UNAVAILABLE); calls bounded by the job's deadline and the
 * config's timeout, which are sent upstream; retries of failures that did not reach the model
 * (connection refused, 503, UNAVAILABLE) with jittered backoff within a budget; a circuit breaker
 * that fails calls at once after consecutive failures and probes the upstream's readiness until it
 * answers; optionally gathers waiting calls into one batched request. See docs/remote.md. */
#ifndef CELER_SERVER_REMOTE_H
#define CELER_SERVER_REMOTE_H

#include "runtime/runtime.h"
#include "server/kserve.h"
#include "server/metrics.h"
#include "server/sched.h"

#define CELER_REMOTE_MAX_HEADERS 16

/* remote.yaml, parsed (strings in the arena given to celer_remote_parse). */
typedef struct celer_remote_config {
    const char *url;              /* as written, without a trailing slash: for messages and the config */
    const char *base;             /* http(s)://host:port: what is connected to (grpc:// is HTTP/2 on http) */
    bool grpc;                    /* grpc:// or grpcs:// */
    const char *model, *version;  /* upstream's; version "" = its default */
    int64_t timeout_ms, connect_timeout_ms;
    int64_t health_interval_ms;   /* an idle upstream's readiness is probed this often; 0 = never */
    int max_inflight, max_queue_size;
    int retries;
    double retry_budget;          /* retries per call, on average, at most this (plus a floor) */
    int breaker_failures;
    int64_t breaker_open_ms;
    int max_batch_size;           /* gather calls into upstream batches of at most this many rows; 0 = off */
    double cache_ttl_s;           /* 0: results not cached */
    const char *ca_file;          /* absolute path, resolved inside the model folder; NULL = system CAs */
    int n_headers;
    const char *headers[CELER_REMOTE_MAX_HEADERS]; /* "Name: value", Authorization included */
} celer_remote_config;

/* Parses remote.yaml (`shown`: its name in messages) of the model folder `mdir` for model `name`:
 * unknown keys, bad values, env vars that are not set and files outside the folder are errors
 * naming them. CELER_ERR_PARSE / CELER_ERR_INVALID / CELER_ERR_NOT_FOUND. */
celer_status celer_remote_parse(const char *text, size_t len, const char *shown, const char *mdir, const char *name,
                                celer_arena *arena, celer_remote_config *out);

/* What the upstream serves, read at open (in the arena given to it). */
typedef struct celer_remote_desc {
    const char *platform;
    int max_batch_size;
    int n_inputs, n_outputs;
    celer_kserve_tensor_spec *inputs; /* shapes as the metadata gives them: batch dim included */
    celer_io_desc *outputs;
} celer_remote_desc;

/* ---- what the upstream answers (outside bytes: also fuzzed, tests/fuzz/fuzz_remote.c) ---- */

/* Model metadata (HTTP JSON, or a framed gRPC ModelMetadataResponse) into *desc, in `arena`
 * (max_batch_size left 0). Datatypes celer does not serve are CELER_ERR_INVALID naming the tensor. */
celer_status celer_remote_decode_metadata(bool grpc, const char *body, size_t len, celer_arena *arena,
                                          celer_remote_desc *desc);
/* max_batch_size of a model config (HTTP JSON, or a framed gRPC ModelConfigResponse); 0 when absent. */
celer_status celer_remote_decode_max_batch(bool grpc, const char *body, size_t len, celer_arena *arena, int *mbs);
/* An infer answer: HTTP JSON with binary parts (json_len: Inference-Header-Content-Length, SIZE_MAX
 * when absent) or a framed ModelInferResponse with raw contents, checked against d (every output,
 * its datatype and dims; `rows` rows when d batches) into outs[d->n_outputs], in d's order. Data
 * points into `body` where aligned, else into `arena`. */
celer_status celer_remote_decode(const celer_remote_desc *d, bool grpc, int64_t rows, const char *body, size_t len,
                                 size_t json_len, celer_arena *arena, celer_tensor *outs);

typedef struct celer_remote_hub celer_remote_hub;
typedef struct celer_remote celer_remote;

/* The client's IO thread and connection pools, shared by every remote model; answers larger than
 * max_response_bytes are errors. Metrics go to `metrics` (borrowed). */
celer_status celer_remote_hub_init(celer_metrics *metrics, size_t max_response_bytes, celer_remote_hub **out);
/* After every remote was closed. */
void celer_remote_hub_free(celer_remote_hub *h);

/* Opens the upstream model of `cfg` (copied; its strings must outlive the remote) for local model
 * `name`: reads its metadata and config, blocking at most connect_timeout_ms + timeout_ms each,
 * into *desc (in `arena`). on_batch (optional) is called on the hub's thread after each call that
 * succeeded, once its jobs got their done (as a model queue's on_batch: rows, encoding time as
 * input, the round trip as infer). CELER_ERR_UNAVAILABLE when the upstream cannot be reached or does not
 * serve the model (a later load may succeed), CELER_ERR_INVALID for what it serves that celer
 * cannot (a datatype). */
celer_status celer_remote_open(celer_remote_hub *h, const celer_remote_config *cfg, const char *name,
                               void (*on_batch)(void *user, const celer_sched_batch *b), void *on_batch_user,
                               celer_arena *arena, celer_remote_desc *desc, celer_remote **out);
/* Queues a job, as celer_sched_submit does (remote.h's top: the service hands a remote model's
 * jobs here directly, its version's queue only admits requests): its inputs in the order of
 * desc->inputs; done comes later on the hub's thread with the outputs in the order of
 * desc->outputs (valid during done only), or with the failure. CELER_ERR_UNAVAILABLE (done never
 * called) while the circuit is open, when max_queue_size jobs wait, or while it closes. */
celer_status celer_remote_submit(celer_remote *r, celer_job *job);
/* False, with the reason in `why`, while the circuit is open (the upstream failed or said it is
 * not ready, and has not answered a probe since): the model's ready endpoints. */
bool celer_remote_ready(celer_remote *r, char *why, size_t cap);
/* The same for a request about to be read (the service's begin): a refusal is counted as a
 * circuit_open error, so an open circuit refuses before any body is received. */
bool celer_remote_admit(celer_remote *r, char *why, size_t cap);
/* Waits for its calls (bounded by their deadlines), then frees it. After its queue was removed. */
void celer_remote_close(celer_remote *r);

#endif
