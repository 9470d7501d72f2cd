/* The gRPC front end: HTTP/2 cleartext with prior knowledge on libnghttp2, gRPC's framing
 * (a 5-byte prefix per message, answers as HEADERS + DATA + trailers, Trailers-Only for an error
 * before any message), and a table of RPCs. See docs/server.md, "gRPC", and
 * shared/reference/grpc.md for the wire rules.
 *
 * A stream carries one RPC; each request message it receives is a call (grpc_call): a unary RPC
 * has one, ModelStreamInfer one per message, answered as each finishes. Calls that compute or
 * wait (ModelInfer, loads) are started on the request service or the registry's action pool and
 * come back through the done list.
 *
 * Threading: one IO thread owns the listening socket, every connection and its nghttp2 session
 * (a session is not thread-safe). One is enough for now: the cheap RPCs answered on it cost a few
 * microseconds each, and the measured prototype served 360k calls/s from one IO thread; more (one
 * SO_REUSEPORT listener each) when ModelInfer makes it the limit. A worker never touches the
 * session: it encodes its answer into the call's buffer, puts the call on the done list (mutex'd)
 * and writes the eventfd; the IO thread drains the whole list per wake-up and submits the answers.
 * A call whose stream closed (reset by the client, or its connection gone) while a worker held it
 * is cancelled (its queued work is dropped) and freed when the worker hands it back.
 *
 * Flow control: nghttp2 gives no window back by itself (no_auto_window_update); the IO thread
 * consumes the bytes of a unary message as they arrive, and those of a streaming RPC only while
 * the stream holds fewer than STREAM_MAX_CALLS calls and STREAM_MAX_OUT_BYTES of unsent answers:
 * a client that does not read its answers stalls its own sender.
 *
 * TLS (--tls-cert): each connection gets a GnuTLS session (tls.c: certificates, priorities, ALPN
 * h2, mTLS); its non-blocking handshake runs in the connection's IO turns before nghttp2 sends or
 * reads a byte, then conn_recv/conn_send go through it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "body.h"
#include "compress.h"
#include "grpc.h"
#include "grpc_codec.h"
#include "listen.h"
#include "log.h"
#include "shm.h"
#include "trace.h"

#define MAX_STREAMS 256                  /* concurrent streams per connection (nghttp2: unlimited) */
#define STREAM_WINDOW (1 << 20)          /* initial window of each stream */
#define CONN_WINDOW (16 << 20)           /* the connection's window */
#define MAX_HEADER_BYTES (16 << 10)      /* a stream's header list (names + values + 32 each, as RFC 9113) */
#define GATHER_BYTES (64 << 10)          /* what one write() sends at most */
#define MAX_DATA_FRAME (64 << 10)        /* DATA payload per frame at most (the peer's limit too) */
#define READ_BYTES_PER_TURN (64 << 10)   /* what one connection's turn reads at most */
#define MAX_NAME 256                     /* model names and versions read from messages */
#define SMALL_MESSAGE_CAP (1 << 20)      /* encoded answers of the inline RPCs */
#define STREAM_MAX_CALLS 128             /* a streaming RPC's calls running or unsent before it pauses */
#define STREAM_MAX_OUT_BYTES (16 << 20)  /* ... or its unsent answers' bytes */
#define SERVICE_PREFIX "/inference.GRPCInferenceService/"
#define ACCEPT_ENCODING "identity,deflate,gzip" /* the codings request messages may take */
#define MAX_RPCS 32                      /* entries of rpcs[] (checked there) */
#define GRPC_CODES 17                    /* gRPC's canonical codes, OK (0) to UNAUTHENTICATED (16) */

typedef struct grpc_conn grpc_conn;
typedef struct grpc_stream grpc_stream;
typedef struct grpc_call grpc_call;

/* An RPC's handler, run on the IO thread: reads the request message (msg, len: the call's, valid
 * during the call) and writes the response message into `out`; on failure returns the status with
 * its message set (celer_errorf) and `out` is ignored. */
typedef celer_status (*rpc_fn)(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out);

/* An RPC that computes or waits: started from the IO thread with its request in c->msg; its
 * answer comes back through call_answered, at once or through the done list. */
typedef void (*rpc_start_fn)(celer_grpc *g, grpc_call *c);

typedef struct grpc_rpc {
    const char *path;
    rpc_fn fn;          /* answered on the IO thread (cheap) */
    rpc_start_fn start; /* or started there and answered later; neither: UNIMPLEMENTED ("<Name> is not implemented yet") */
    bool streaming;     /* many request messages, each answered by a message of its own */
    celer_auth_scope scope; /* what an API key needs (auth.h): every row has one, or the port does not start */
} grpc_rpc;

/* One request message and its answer. */
struct grpc_call {
    celer_grpc *g;
    grpc_stream *stream;    /* NULL once its stream is gone while a worker or the action pool holds it */
    bool streaming;         /* of a streaming RPC: an error is a message, not the stream's status */
    bool running;           /* held by a worker or the action pool (in the stream's `running` list) */
    grpc_call *prev, *next; /* the stream's running calls */
    grpc_call *link;        /* the done list; the stream's waiting list or answer queue */
    /* the request message (malloc'ed, owned; msg_held bytes of it counted in g->msg_bytes until
     * freed); a compressed one is inflated into it as its wire bytes (wire_len of them) come */
    uint8_t *msg;
    size_t msg_len, msg_held, wire_len;
    bool compressed;
    celer_inflate inflate;
    celer_coding answer_coding; /* the stream's: answers this large or more are compressed with it */
    /* an inference: its call of the request service; its tensors point into msg until it ends */
    celer_service_call *svc;
    celer_kserve_request kreq;
    /* the answer: one message with its 5-byte prefix (owned), how much of it nghttp2 took, and a
     * unary call's status (streaming calls always answer with a message) */
    celer_jbuf resp;
    celer_body *answer_body; /* or a large answer sent from the tensors (owned): the call ends once it is sent */
    size_t resp_off;
    celer_status status;
    char message[1024];
};

struct grpc_stream {
    celer_grpc *g;
    grpc_conn *conn;
    grpc_stream *prev, *next; /* the connection's streams */
    int32_t id;
    const grpc_rpc *rpc;
    size_t header_bytes;
    int64_t start_ns;     /* when its headers began (CLOCK_MONOTONIC) */
    int64_t deadline_ns;  /* from grpc-timeout (CLOCK_MONOTONIC); 0 = none */
    bool is_post, is_grpc, reset_after_answer;
    celer_coding coding;        /* grpc-encoding of the request's messages */
    char encoding[32];          /* ... as sent, for messages */
    celer_coding answer_coding; /* the request's coding when grpc-accept-encoding lists it, else identity */
    bool accepts[3];            /* by celer_coding: what grpc-accept-encoding lists */
    celer_auth_id key;   /* who its authorization metadata says it is (auth.h); the key itself is not kept */
    /* tracing: the request's traceparent and tracestate as sent (bounded: longer ones are not
     * valid and dropped), and the traceparent answered (its first traced call's span) */
    char traceparent_in[128], tracestate_in[CELER_TRACE_STATE_MAX + 1];
    char traceparent_out[CELER_TRACEPARENT_LEN + 1], tracestate_out[CELER_TRACE_STATE_MAX + 1];
    celer_status early;  /* an error found in the headers, answered at their end */
    char early_msg[256];
    /* receiving: the prefix of the message being read, then its bytes into `reading` */
    uint8_t prefix[5];
    size_t prefix_got, msg_got;
    grpc_call *reading;
    int n_msgs;
    bool half_closed;     /* the client's END_STREAM came */
    size_t unconsumed;    /* DATA bytes whose window is held back while the stream is paused */
    /* calls: running, complete but not started (a paused stream, or a unary one until END_STREAM),
     * and answered but not sent, in order; n_held counts the running and unsent ones */
    grpc_call *running;
    grpc_call *waiting, *waiting_tail;
    grpc_call *out, *out_tail;
    int n_held;
    size_t out_bytes;
    /* answering: response HEADERS submitted; the data provider waits for an answer; the status is
     * final (trailers follow the queued answers); nothing more is sent */
    bool responding, deferred, finished, done_sending;
    int grpc_status;
    char grpc_message[768]; /* percent-encoded */
};

struct grpc_conn {
    celer_grpc *g;
    int fd;
    nghttp2_session *session;
    gnutls_session_t tls; /* NULL: h2c */
    bool handshaken;      /* TLS: the handshake is done (ALPN h2 agreed) */
    int64_t accepted_ms;  /* TLS: the handshake must be done --header-timeout-secs after */
    grpc_conn *prev, *next;
    grpc_stream *streams;
    int n_streams;
    int64_t last_active_ms;
    bool want_out, goaway_sent;
    bool noticed; /* the shutdown notice was submitted */
    bool pump; /* a stream may start calls it held back (see pump_streams) */
    uint8_t *out; /* bytes from nghttp2 not yet written (malloc'ed, owned) */
    size_t out_len, out_off, out_cap;
};

struct celer_grpc {
    const celer_server_options *opts;
    celer_service *service;
    celer_registry *registry;
    celer_tls *tls; /* NULL: h2c */
    int listen_fd, event_fd, epoll_fd;
    pthread_t thread;
    bool started;
    atomic_bool noticing, draining, stopping;
    bool notice_done; /* IO thread: the shutdown notice went to every connection (see conn_flush) */
    bool drain_done; /* IO thread: the listener is closed */
    grpc_conn *conns;
    int n_conns, max_conns;
    /* request message bytes all streams hold, and bytes of answers not sent yet (clients reading
     * slowly): together within --max-body-total-bytes (IO thread only) */
    int64_t msg_bytes, unsent_bytes;
    atomic_int active, suspended;
    pthread_mutex_t done_lock;
    grpc_call *done;   /* calls handed back by workers and the action pool */
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    /* celer_grpc_requests_total{method,code}, made on first use (IO thread only): by the RPC's
     * index in rpcs[] (MAX_RPCS: a method not in it) and code */
    celer_metrics *metrics;
    celer_series *m_status[MAX_RPCS + 1][GRPC_CODES];
};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the RPCs ---- */

/* Copies a string field NUL-terminated; CELER_ERR_LIMIT beyond the cap. */
static celer_status copy_name(const celer_pb_field *f, char *dst, size_t cap, const char *what) {
    if (f->wire != 2)
        return celer_errorf(CELER_ERR_PARSE, "%s: expected a string (wire type 2), got wire type %d", what, f->wire);
    if (f->len >= cap) return celer_errorf(CELER_ERR_LIMIT, "%s is %zu bytes long; at most %zu", what, f->len, cap - 1);
    memcpy(dst, f->p, f->len);
    dst[f->len] = 0;
    return CELER_OK;
}

static celer_status rpc_server_live(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)g, (void)msg, (void)len;
    celer_pb_put_bool(out, 1, true); /* ServerLiveResponse.live */
    return CELER_OK;
}

static celer_status rpc_server_ready(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)msg, (void)len;
    celer_pb_put_bool(out, 1, celer_registry_ready(g->registry)); /* ServerReadyResponse.ready */
    return CELER_OK;
}

/* The name (field 1) and version (field 2) of a ModelReadyRequest, ModelMetadataRequest or
 * ModelStatisticsRequest; an empty name is an error when `required`. */
static celer_status read_model_request(const uint8_t *msg, size_t len, const char *what, bool required,
                                       char name[MAX_NAME], char version[MAX_NAME]) {
    char field[96];
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int more;
    name[0] = version[0] = 0;
    while ((more = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number != 1 && f.number != 2) continue;
        snprintf(field, sizeof field, "%s.%s", what, f.number == 1 ? "name" : "version");
        CELER_TRY(copy_name(&f, f.number == 1 ? name : version, MAX_NAME, field));
    }
    if (more < 0) return CELER_ERR_PARSE;
    if (required && !name[0]) return celer_errorf(CELER_ERR_INVALID, "%s: the model name (field 1) is empty", what);
    return CELER_OK;
}

/* The version a ModelReady, ModelMetadata or ModelConfig request names, acquired into *v (release it);
 * CELER_ERR_NOT_FOUND, or CELER_ERR_UNAVAILABLE for a model not ready, with the message set. */
static celer_status acquire_requested(celer_grpc *g, const uint8_t *msg, size_t len, const char *what,
                                      served_version **v) {
    char name[MAX_NAME], version[MAX_NAME], err[1024];
    CELER_TRY(read_model_request(msg, len, what, true, name, version));
    celer_status st = CELER_OK;
    *v = celer_registry_acquire(g->registry, name, version, &st, err, sizeof err);
    return *v ? CELER_OK : celer_errorf(st, "%s", err);
}

/* ModelReadyRequest{name=1, version=2} -> ModelReadyResponse{ready=1}: false for a model or
 * version that is unknown, unloaded or not ready, as Triton answers (clients poll it in a loop:
 * tritonclient's is_model_ready returns False rather than raising); an empty name is an error. */
static celer_status rpc_model_ready(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    served_version *v;
    celer_status st = acquire_requested(g, msg, len, "ModelReadyRequest", &v);
    if (st && st != CELER_ERR_UNAVAILABLE && st != CELER_ERR_NOT_FOUND) return st;
    char why[1024];
    celer_pb_put_bool(out, 1, !st && (!v->remote || celer_remote_ready(v->remote, why, sizeof why)));
    if (!st) celer_registry_release(v);
    return CELER_OK;
}

/* ServerMetadataResponse{name=1, version=2, extensions=3}: what GET /v2 says. */
static celer_status rpc_server_metadata(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)g, (void)msg, (void)len;
    celer_pb_put_str(out, 1, CELER_SERVER_NAME);
    celer_pb_put_str(out, 2, CELER_SERVER_VERSION);
    for (int i = 0; celer_server_extensions[i]; i++) celer_pb_put_str(out, 3, celer_server_extensions[i]);
    return CELER_OK;
}

/* ModelMetadataRequest{name=1, version=2} -> ModelMetadataResponse{name=1, versions=2, platform=3,
 * inputs=4, outputs=5: TensorMetadata{name=1, datatype=2, shape=3}}: what GET /v2/models/{m}
 * says, from the same celer_registry_metadata. */
static celer_status rpc_model_metadata(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    served_version *v;
    CELER_TRY(acquire_requested(g, msg, len, "ModelMetadataRequest", &v));
    celer_model_meta *m = celer_malloc(sizeof *m); /* tens of KiB: not on the IO thread's stack */
    if (!m) {
        celer_status st = celer_errorf(CELER_ERR_NOMEM, "out of memory for the metadata of model '%s'", v->owner->name);
        celer_registry_release(v);
        return st;
    }
    celer_registry_metadata(v, m);
    celer_pb_put_str(out, 1, m->name);
    for (int k = 0; k < m->n_versions; k++) celer_pb_put_str(out, 2, m->versions[k]);
    celer_pb_put_str(out, 3, m->platform);
    for (int io = 0; io < 2; io++) {
        const celer_tensor_meta *t = io ? m->outputs : m->inputs;
        for (int i = 0; i < (io ? m->n_outputs : m->n_inputs); i++) {
            size_t mark = celer_pb_begin(out, io ? 5 : 4);
            celer_pb_put_str(out, 1, t[i].name);
            if (t[i].typed) {
                const char *dt = celer_dtype_kserve_name(t[i].dtype);
                celer_pb_put_str(out, 2, dt ? dt : "UNKNOWN");
                for (int k = 0; k < t[i].rank; k++) celer_pb_put_varint(out, 3, (uint64_t)t[i].dims[k]); /* -1: variable */
            }
            celer_pb_end(out, mark);
        }
    }
    free(m);
    celer_registry_release(v);
    return CELER_OK;
}

/* ModelConfigRequest{name=1, version=2} -> ModelConfigResponse{config=1: ModelConfig}: the
 * completed config GET /v2/models/{m}[/versions/{v}]/config writes, by the same walk. */
static celer_status rpc_model_config(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    served_version *v;
    CELER_TRY(acquire_requested(g, msg, len, "ModelConfigRequest", &v));
    size_t mark = celer_pb_begin(out, 1);
    celer_registry_config_pb(g->registry, v, out);
    celer_pb_end(out, mark);
    celer_registry_release(v);
    return CELER_OK;
}

/* StatisticDuration{count=1, ns=2} as field `field` of the message being written. */
static void put_duration(celer_jbuf *out, int field, celer_stat_duration d) {
    size_t mark = celer_pb_begin(out, field);
    if (d.count) celer_pb_put_varint(out, 1, d.count);
    if (d.ns) celer_pb_put_varint(out, 2, d.ns);
    celer_pb_end(out, mark);
}

/* One ModelStatistics{name=1, version=2, last_inference=3, inference_count=4, execution_count=5,
 * inference_stats=6: InferStatistics{success=1, fail=2, queue=3, compute_input=4, compute_infer=5,
 * compute_output=6, cache_hit=7, cache_miss=8}, batch_stats=7: InferBatchStatistics{batch_size=1,
 * compute_input=2, compute_infer=3, compute_output=4}} of ModelStatisticsResponse (field 1):
 * every field GET .../stats writes (memory_usage and response_stats are empty there too). */
static void version_stats_pb(void *user, const celer_version_stats *st) {
    celer_jbuf *out = user;
    size_t mark = celer_pb_begin(out, 1);
    celer_pb_put_str(out, 1, st->name);
    celer_pb_put_str(out, 2, st->version);
    if (st->last_inference) celer_pb_put_varint(out, 3, st->last_inference);
    if (st->inference_count) celer_pb_put_varint(out, 4, st->inference_count);
    if (st->execution_count) celer_pb_put_varint(out, 5, st->execution_count);
    size_t infer = celer_pb_begin(out, 6);
    const celer_stat_duration *d[] = {&st->success,        &st->fail,           &st->queue,     &st->compute_input,
                                      &st->compute_infer, &st->compute_output, &st->cache_hit, &st->cache_miss};
    for (int i = 0; i < (int)CELER_ARRAY_LEN(d); i++) put_duration(out, i + 1, *d[i]);
    celer_pb_end(out, infer);
    for (int i = 0; i < st->n_batches; i++) {
        const celer_batch_stats *b = &st->batches[i];
        size_t bm = celer_pb_begin(out, 7);
        celer_pb_put_varint(out, 1, b->batch_size);
        put_duration(out, 2, b->compute_input);
        put_duration(out, 3, b->compute_infer);
        put_duration(out, 4, b->compute_output);
        celer_pb_end(out, bm);
    }
    celer_pb_end(out, mark);
}

/* ModelStatisticsRequest{name=1, version=2} ("" = every model, every version): what
 * GET /v2/models[/{m}[/versions/{v}]]/stats says, from the same celer_registry_stats. */
static celer_status rpc_model_statistics(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    char name[MAX_NAME], version[MAX_NAME];
    CELER_TRY(read_model_request(msg, len, "ModelStatisticsRequest", false, name, version)); /* "": every model */
    return celer_registry_stats(g->registry, name[0] ? name : NULL, version[0] ? version : NULL, version_stats_pb, out);
}

/* One RepositoryIndexResponse.ModelIndex{name=1, version=2, state=3, reason=4} (field 1). */
static void index_entry_pb(void *user, const celer_index_entry *e) {
    celer_jbuf *out = user;
    size_t mark = celer_pb_begin(out, 1);
    celer_pb_put_str(out, 1, e->name);
    if (e->version) celer_pb_put_str(out, 2, e->version);
    if (e->state) celer_pb_put_str(out, 3, e->state);
    if (e->reason && e->reason[0]) celer_pb_put_str(out, 4, e->reason);
    celer_pb_end(out, mark);
}

/* RepositoryIndexRequest{repository_name=1, ready=2}: what POST /v2/repository/index says. celer
 * serves one repository: a name other than "" is NOT_FOUND. */
static celer_status rpc_repository_index(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int more;
    bool ready = false;
    while ((more = celer_pb_next(&r, &f, "RepositoryIndexRequest")) > 0) {
        if (f.number == 1 && f.wire == 2 && f.len)
            return celer_errorf(CELER_ERR_NOT_FOUND, "repository '%.*s': celer serves one repository; leave the name empty",
                                (int)CELER_MIN(f.len, 128), (const char *)f.p);
        if (f.number == 2 && f.wire == 0) ready = f.varint != 0;
    }
    if (more < 0) return CELER_ERR_PARSE;
    celer_registry_index(g->registry, ready, index_entry_pb, out);
    return CELER_OK;
}

/* grpc.health.v1 HealthCheckRequest{service=1} -> HealthCheckResponse{status=1}: "" (or the
 * service's own name) by the server's readiness, a model name by that model's; an unknown name is
 * NOT_FOUND, as the gRPC health spec says for Check. */
static celer_status rpc_health_check(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    enum { SERVING = 1, NOT_SERVING = 2 };
    char service[MAX_NAME] = "", err[1024];
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int more;
    while ((more = celer_pb_next(&r, &f, "HealthCheckRequest")) > 0)
        if (f.number == 1) CELER_TRY(copy_name(&f, service, sizeof service, "HealthCheckRequest.service"));
    if (more < 0) return CELER_ERR_PARSE;
    bool ok;
    if (!service[0] || !strcmp(service, "inference.GRPCInferenceService")) {
        ok = celer_registry_ready(g->registry);
    } else {
        celer_status st = CELER_OK;
        served_version *v = celer_registry_acquire(g->registry, service, NULL, &st, err, sizeof err);
        if (!v && st != CELER_ERR_UNAVAILABLE)
            return celer_errorf(st, "health check of service '%s': no such model (%s)", service, err);
        ok = v != NULL;
        if (v) celer_registry_release(v);
    }
    celer_pb_put_varint(out, 1, ok ? SERVING : NOT_SERVING);
    return CELER_OK;
}

/* One LogSettingsResponse.settings entry {key=1, value=2: SettingValue{bool_param=1,
 * uint32_param=2, string_param=3}}; the oneof is written even at its default, so clients see
 * which one is set. */
static void log_setting_pb(void *user, const char *name, const celer_log_value *v) {
    celer_jbuf *out = user;
    size_t entry = celer_pb_begin(out, 1);
    celer_pb_put_str(out, 1, name);
    size_t value = celer_pb_begin(out, 2);
    if (v->kind == CELER_LOG_BOOL) celer_pb_put_varint(out, 1, v->b);
    else if (v->kind == CELER_LOG_UINT) celer_pb_put_varint(out, 2, v->u);
    else celer_pb_put_bytes(out, 3, v->s, v->len);
    celer_pb_end(out, value);
    celer_pb_end(out, entry);
}

/* ---- system shared memory (shm.h); CUDA shared memory: none, no GPU ---- */

/* One SystemSharedMemoryStatusResponse.regions entry {key=1: name, value=2: RegionStatus{name=1,
 * key=2, offset=3, byte_size=4}} (field 1). */
static void shm_status_pb(void *user, const celer_shm_info *info) {
    celer_jbuf *out = user;
    size_t entry = celer_pb_begin(out, 1);
    celer_pb_put_str(out, 1, info->name);
    size_t value = celer_pb_begin(out, 2);
    celer_pb_put_str(out, 1, info->name);
    celer_pb_put_str(out, 2, info->key);
    if (info->offset) celer_pb_put_varint(out, 3, info->offset);
    if (info->byte_size) celer_pb_put_varint(out, 4, info->byte_size);
    celer_pb_end(out, value);
    celer_pb_end(out, entry);
}

/* LogSettingsRequest{settings=1: map<string, SettingValue>} -> LogSettingsResponse (same shape):
 * the settings after the request's changes, which are checked whole before any applies (log.h:
 * the same rules and messages as POST /v2/logging). A SettingValue with no member set changes
 * nothing, as a JSON null. */
static celer_status rpc_log_settings(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)g;
    const char *what = "LogSettingsRequest";
    celer_log_change change = {0};
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int more;
    while ((more = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number != 1 || f.wire != 2) continue;
        const uint8_t *key = (const uint8_t *)"";
        size_t key_len = 0;
        celer_log_value v = {.kind = CELER_LOG_NULL};
        celer_pb_reader e = {f.p, f.p + f.len};
        celer_pb_field k;
        while ((more = celer_pb_next(&e, &k, what)) > 0) {
            if (k.number == 1 && k.wire == 2) key = k.p, key_len = k.len;
            if (k.number != 2 || k.wire != 2) continue;
            v = (celer_log_value){.kind = CELER_LOG_NULL}; /* the last value wins */
            celer_pb_reader vr = {k.p, k.p + k.len};
            celer_pb_field x;
            while ((more = celer_pb_next(&vr, &x, what)) > 0) {
                if (x.number == 1 && x.wire == 0) v = (celer_log_value){.kind = CELER_LOG_BOOL, .b = x.varint != 0};
                else if (x.number == 2 && x.wire == 0)
                    v = (celer_log_value){.kind = CELER_LOG_UINT, .u = (uint32_t)x.varint};
                else if (x.number == 3 && x.wire == 2)
                    v = (celer_log_value){.kind = CELER_LOG_STRING, .s = (const char *)x.p, .len = x.len};
            }
            if (more < 0) return CELER_ERR_PARSE;
        }
        if (more < 0) return CELER_ERR_PARSE;
        CELER_TRY(celer_log_change_set(&change, (const char *)key, key_len, &v));
    }
    if (more < 0) return CELER_ERR_PARSE;
    celer_log_change_apply(&change);
    celer_log_settings(log_setting_pb, out);
    return CELER_OK;
}

/* TraceSettingRequest -> TraceSettingResponse{settings=1: map<string, SettingValue{value=1...}>}:
 * the settings in effect for the model (model_name "" = global) after the request's changes,
 * checked whole before any applies (trace.h: as POST /v2[/models/{m}]/trace/setting). */
static celer_status rpc_trace_setting(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)g;
    char model[MAX_NAME];
    celer_trace_change change = {0};
    CELER_TRY(celer_grpc_decode_trace_setting(msg, len, model, sizeof model, &change));
    CELER_TRY(celer_trace_change_apply(model, &change));
    celer_trace_settings(model, celer_grpc_encode_trace_setting, out);
    return CELER_OK;
}

/* SystemSharedMemoryStatusRequest{name=1} ("" = every region): what
 * GET /v2/systemsharedmemory[/region/{name}]/status says. */
static celer_status rpc_shm_status(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 16);
    const char *name;
    celer_status st = celer_grpc_decode_shm_name(msg, len, "SystemSharedMemoryStatusRequest", &arena, &name);
    if (!st) st = celer_shm_status(celer_service_shm(g->service), name, shm_status_pb, out);
    celer_arena_free(&arena);
    return st;
}

/* SystemSharedMemoryRegisterRequest{name=1, key=2, offset=3, byte_size=4} -> {}. */
static celer_status rpc_shm_register(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)out;
    celer_shm *shm = celer_service_shm(g->service);
    CELER_TRY(celer_shm_check_allowed(shm));
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 16);
    const char *name, *key;
    uint64_t offset, byte_size;
    celer_status st = celer_grpc_decode_shm_register(msg, len, &arena, &name, &key, &offset, &byte_size);
    if (!st) st = celer_shm_register(shm, name, key, offset, byte_size);
    celer_arena_free(&arena);
    return st;
}

/* SystemSharedMemoryUnregisterRequest{name=1} ("" = every region) -> {}. */
static celer_status rpc_shm_unregister(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)out;
    celer_shm *shm = celer_service_shm(g->service);
    CELER_TRY(celer_shm_check_allowed(shm));
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 16);
    const char *name;
    celer_status st = celer_grpc_decode_shm_name(msg, len, "SystemSharedMemoryUnregisterRequest", &arena, &name);
    if (!st) st = celer_shm_unregister(shm, name);
    celer_arena_free(&arena);
    return st;
}

/* CudaSharedMemory{Status,Register,Unregister} (shm.h: register refused, an empty status, nothing
 * to unregister); the answers are empty messages. */
static celer_status cuda_shm(celer_grpc *g, const uint8_t *msg, size_t len, const char *what, const char *action) {
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 16);
    const char *name;
    celer_status st = celer_grpc_decode_shm_name(msg, len, what, &arena, &name);
    if (!st) st = celer_shm_cuda(celer_service_shm(g->service), action, name);
    celer_arena_free(&arena);
    return st;
}
static celer_status rpc_cuda_shm_status(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)out;
    return cuda_shm(g, msg, len, "CudaSharedMemoryStatusRequest", "status");
}
static celer_status rpc_cuda_shm_register(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)out;
    return cuda_shm(g, msg, len, "CudaSharedMemoryRegisterRequest", "register");
}
static celer_status rpc_cuda_shm_unregister(celer_grpc *g, const uint8_t *msg, size_t len, celer_jbuf *out) {
    (void)out;
    return cuda_shm(g, msg, len, "CudaSharedMemoryUnregisterRequest", "unregister");
}

static void start_model_infer(celer_grpc *g, grpc_call *c);
static void start_model_load(celer_grpc *g, grpc_call *c);
static void start_model_unload(celer_grpc *g, grpc_call *c);

/* Every RPC of Triton's grpc_service.proto and health.proto, with the scope an API key needs (the same as
 * HTTP's routes[] for the same thing; health open for probes). */
static const grpc_rpc rpcs[] = {
    {SERVICE_PREFIX "ServerLive", rpc_server_live, NULL, false, CELER_SCOPE_OPEN},
    {SERVICE_PREFIX "ServerReady", rpc_server_ready, NULL, false, CELER_SCOPE_OPEN},
    {SERVICE_PREFIX "ModelReady", rpc_model_ready, NULL, false, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ServerMetadata", rpc_server_metadata, NULL, false, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ModelMetadata", rpc_model_metadata, NULL, false, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ModelInfer", NULL, start_model_infer, false, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ModelStreamInfer", NULL, start_model_infer, true, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ModelConfig", rpc_model_config, NULL, false, CELER_SCOPE_INFER},
    {SERVICE_PREFIX "ModelStatistics", rpc_model_statistics, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "RepositoryIndex", rpc_repository_index, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "RepositoryModelLoad", NULL, start_model_load, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "RepositoryModelUnload", NULL, start_model_unload, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "SystemSharedMemoryStatus", rpc_shm_status, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "SystemSharedMemoryRegister", rpc_shm_register, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "SystemSharedMemoryUnregister", rpc_shm_unregister, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "CudaSharedMemoryStatus", rpc_cuda_shm_status, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "CudaSharedMemoryRegister", rpc_cuda_shm_register, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "CudaSharedMemoryUnregister", rpc_cuda_shm_unregister, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "TraceSetting", rpc_trace_setting, NULL, false, CELER_SCOPE_ADMIN},
    {SERVICE_PREFIX "LogSettings", rpc_log_settings, NULL, false, CELER_SCOPE_ADMIN},
    {"/grpc.health.v1.Health/Check", rpc_health_check, NULL, false, CELER_SCOPE_OPEN},
};

_Static_assert(CELER_ARRAY_LEN(rpcs) <= MAX_RPCS, "rpcs[] outgrew celer_grpc.m_status: raise MAX_RPCS");

static const grpc_rpc *find_rpc(const char *path, size_t len) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(rpcs); i++)
        if (strlen(rpcs[i].path) == len && !memcmp(rpcs[i].path, path, len)) return &rpcs[i];
    return NULL;
}

static const char *rpc_name(const grpc_rpc *rpc) { return strrchr(rpc->path, '/') + 1; }

/* ---- answers ---- */

/* grpc-message: UTF-8 with every byte outside 0x20-0x7E, and '%', as %XX; cut at the buffer. */
static void percent_encode(const char *s, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 <= cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e || c == '%') {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

/* The `code` label: gRPC's canonical names (grpc/grpc doc/statuscodes.md). */
static const char *const grpc_code_names[GRPC_CODES] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};

/* Counts a call of `rpc` (NULL: a method not in rpcs[], counted as "unknown") answered with `code`
 * in celer_grpc_requests_total{method,code}. IO thread. A series is made the first time its pair
 * is answered, under the metrics lock (a /metrics render holds it: the wait happens once per pair);
 * 22 methods x 17 codes up front would be 374 lines of zeros in every scrape. */
static void count_status(celer_grpc *g, const grpc_rpc *rpc, int code) {
    if (code < 0 || code >= GRPC_CODES) code = 2; /* UNKNOWN */
    size_t i = rpc ? (size_t)(rpc - rpcs) : MAX_RPCS;
    celer_series **series = &g->m_status[i][code];
    if (!*series && g->metrics) {
        char labels[128];
        snprintf(labels, sizeof labels, "method=\"%s\",code=\"%s\"", rpc ? strrchr(rpc->path, '/') + 1 : "unknown",
                 grpc_code_names[code]);
        *series = celer_metrics_counter(g->metrics, "celer_grpc_requests_total", "gRPC calls by method and status.",
                                        labels); /* NULL on no memory: not counted, tried again next time */
    }
    celer_metrics_add(*series, 1);
}

/* The verbose line of a call whose status is final (log.h: log_verbose_level >= 1). */
static void log_call(const grpc_stream *s, int code, const char *message) {
    if (!celer_log_verbose_enabled(1)) return;
    const char *name = s->rpc ? s->rpc->path : "(unknown method)";
    if (code < 0 || code >= GRPC_CODES) code = 2;
    celer_log_verbose(1, "grpc %s %s %.3fms%s%s%s%s", name, grpc_code_names[code],
                      (double)(mono_ns() - s->start_ns) / 1e6, s->key.kind == CELER_AUTH_KNOWN ? " key=" : "",
                      s->key.kind == CELER_AUTH_KNOWN ? s->key.name : "", message[0] ? ": " : "", message);
}

#define NV(name, value)                                                                                           \
    { (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value), NGHTTP2_NV_FLAG_NO_COPY_NAME }

static int submit_trailers(grpc_stream *s) {
    char code[16];
    snprintf(code, sizeof code, "%d", s->grpc_status);
    nghttp2_nv nv[] = {NV("grpc-status", code), NV("grpc-message", s->grpc_message)};
    return nghttp2_submit_trailer(s->conn->session, s->id, nv, s->grpc_message[0] ? 2 : 1);
}

/* The bytes of c's answer to send, and of them the ones held in memory of its own (the rest of a
 * large answer is the tensors' memory). */
static size_t answer_len(const grpc_call *c) { return c->answer_body ? c->answer_body->total : c->resp.len; }
static size_t answer_mem(const grpc_call *c) { return c->answer_body ? c->answer_body->head.len : c->resp.len; }

static void answer_body_free(grpc_call *c) {
    if (!c->answer_body) return;
    celer_body_free(c->answer_body);
    free(c->answer_body);
    c->answer_body = NULL;
}

/* Frees a call; its request message and answer go with it. IO thread. */
static void call_free(celer_grpc *g, grpc_call *c) {
    answer_body_free(c); /* before the call ends: its tensors are the call's */
    celer_service_end(c->svc);
    if (c->msg) g->msg_bytes -= (int64_t)c->msg_held;
    free(c->msg);
    celer_inflate_end(&c->inflate);
    celer_jbuf_free(&c->resp);
    free(c);
}

/* Pops the head of a call list (waiting or out). */
static grpc_call *pop(grpc_call **head, grpc_call **tail) {
    grpc_call *c = *head;
    if (c && !(*head = c->link)) *tail = NULL;
    if (c) c->link = NULL;
    return c;
}

static void push(grpc_call **head, grpc_call **tail, grpc_call *c) {
    c->link = NULL;
    if (*tail) (*tail)->link = c;
    else *head = c;
    *tail = c;
}

static bool stream_paused(const grpc_stream *s) {
    return s->n_held >= STREAM_MAX_CALLS || s->out_bytes >= STREAM_MAX_OUT_BYTES;
}

/* One of the stream's calls is gone: when that unpauses it, the window held back is given back
 * and its waiting calls are started (by pump_streams, outside nghttp2's callbacks). */
static void stream_release(grpc_stream *s) {
    s->n_held--;
    if (stream_paused(s) || !s->conn) return;
    if (s->unconsumed) {
        nghttp2_session_consume(s->conn->session, s->id, s->unconsumed);
        s->unconsumed = 0;
    }
    if (s->waiting && s->rpc->streaming) s->conn->pump = true;
}

/* The DATA of an answer: the queued answers as they come, then trailers (EOF without END_STREAM)
 * once the status is final; deferred while the queue is empty. */
static ssize_t read_answer(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                           nghttp2_data_source *source, void *user) {
    (void)session, (void)id, (void)user;
    grpc_stream *s = source->ptr;
    size_t n = 0;
    for (grpc_call *c; (c = s->out) && n < length;) { /* small answers share a DATA frame */
        size_t k = CELER_MIN(length - n, answer_len(c) - c->resp_off);
        if (c->answer_body) celer_body_read(c->answer_body, buf + n, k);
        else memcpy(buf + n, c->resp.data + c->resp_off, k);
        c->resp_off += k, n += k;
        if (c->resp_off < answer_len(c)) break;
        pop(&s->out, &s->out_tail);
        s->out_bytes -= answer_mem(c);
        s->g->unsent_bytes -= (int64_t)answer_mem(c);
        call_free(s->g, c);
        stream_release(s);
    }
    if (s->out) return (ssize_t)n;
    if (!s->finished) {
        if (n) return (ssize_t)n;
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    s->done_sending = true;
    if (submit_trailers(s)) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return (ssize_t)n;
}

/* Sends what the stream has: the response HEADERS with a data provider at its first answer, or
 * Trailers-Only (one HEADERS frame with END_STREAM) when its status is final before any answer;
 * later answers resume the provider. Always :status 200: clients turn other HTTP statuses into
 * codes of their own. IO thread, outside nghttp2's callbacks or from its receive callbacks. */
static void stream_send(grpc_stream *s) {
    if (!s->conn || s->done_sending) return;
    nghttp2_session *session = s->conn->session;
    if (s->responding) {
        if (s->deferred && (s->out || s->finished)) {
            s->deferred = false;
            nghttp2_session_resume_data(session, s->id);
        }
        return;
    }
    if (!s->out && !s->finished) return;
    s->responding = true;
    char code[16];
    snprintf(code, sizeof code, "%d", s->grpc_status);
    int rv;
    /* a traced call's traceparent (and tracestate), as initial metadata, or in Trailers-Only */
    nghttp2_nv trace_nv[2] = {NV("traceparent", s->traceparent_out), NV("tracestate", s->tracestate_out)};
    size_t n_trace = s->traceparent_out[0] ? (s->tracestate_out[0] ? 2 : 1) : 0;
    if (s->out) {
        nghttp2_nv nv[6] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("grpc-accept-encoding", ACCEPT_ENCODING)};
        size_t n = 3;
        if (s->answer_coding) nv[n++] = (nghttp2_nv)NV("grpc-encoding", celer_coding_names[s->answer_coding]); /* answers may be compressed */
        for (size_t i = 0; i < n_trace; i++) nv[n++] = trace_nv[i];
        nghttp2_data_provider data = {.source.ptr = s, .read_callback = read_answer};
        rv = nghttp2_submit_response(session, s->id, nv, n, &data);
    } else {
        nghttp2_nv nv[7] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                            NV("grpc-accept-encoding", ACCEPT_ENCODING), NV("grpc-status", code)};
        size_t n = 4;
        if (s->grpc_message[0]) nv[n++] = (nghttp2_nv)NV("grpc-message", s->grpc_message);
        for (size_t i = 0; i < n_trace; i++) nv[n++] = trace_nv[i];
        s->done_sending = true;
        rv = nghttp2_submit_response(session, s->id, nv, n, NULL);
    }
    if (rv) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
}

/* The stream's status is final: trailers follow its queued answers. The first status wins. */
static void stream_finish(grpc_stream *s, celer_status st, const char *message) {
    if (s->finished) return;
    s->finished = true;
    s->grpc_status = celer_status_grpc(st);
    count_status(s->g, s->rpc, s->grpc_status);
    log_call(s, s->grpc_status, st ? message : "");
    percent_encode(st ? message : "", s->grpc_message, sizeof s->grpc_message);
    stream_send(s);
}

/* The stream fails as a whole (a malformed or oversized message, a refused header): calls not
 * started are dropped, running ones cancelled (their answers dropped when they come back), and the
 * status goes out after the answers already queued. The rest of the request is not read: the
 * stream is reset once answered. */
static void stream_fail(grpc_stream *s, celer_status st, const char *message) {
    if (s->finished) return;
    for (grpc_call *c; (c = pop(&s->waiting, &s->waiting_tail));) call_free(s->g, c);
    if (s->reading) {
        call_free(s->g, s->reading);
        s->reading = NULL;
    }
    for (grpc_call *c = s->running; c; c = c->next)
        if (c->svc) celer_service_cancel(c->svc);
    s->reset_after_answer = true;
    stream_finish(s, st, message);
}

/* A streaming RPC ends well when the client has half-closed and every call is answered. */
static void stream_maybe_finish(grpc_stream *s) {
    if (s->rpc && s->rpc->streaming && s->half_closed && !s->running && !s->waiting && !s->reading)
        stream_finish(s, CELER_OK, "");
}

/* Writes the 5-byte prefix of the message c->resp holds (its first 5 bytes were reserved). */
static void seal_message(grpc_call *c) {
    uint32_t n = (uint32_t)(c->resp.len - 5);
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(c->resp.data + 1, be, 4);
}

/* Compresses the sealed answer in c->resp when its stream's answers take a coding and it is
 * --compress-min-bytes or more: the prefix's flag says so. A failure (memory) leaves it as it was:
 * a message may always go uncompressed. Any thread: reads only the call. */
static void compress_answer(grpc_call *c) {
    size_t n = c->resp.len - 5;
    if (c->answer_coding == CELER_CODING_IDENTITY || n < (size_t)c->g->opts->compress_min_bytes || c->resp.status) return;
    celer_jbuf z;
    celer_jbuf_init(&z, c->resp.max);
    celer_jbuf_raw(&z, "\1\0\0\0\0", 5);
    if (celer_compress(c->answer_coding, c->resp.data + 5, n, &z) || z.len - 5 > UINT32_MAX) {
        celer_jbuf_free(&z);
        return;
    }
    celer_jbuf_free(&c->resp);
    c->resp = z;
    seal_message(c);
}

/* The id (field 3) of a ModelInferRequest, for an error answered before the request decoded
 * (then kreq.id is not set); "" when absent or malformed. */
static void infer_request_id(const grpc_call *c, char *out, size_t cap) {
    out[0] = 0;
    if (c->kreq.id) {
        snprintf(out, cap, "%s", c->kreq.id);
        return;
    }
    celer_pb_reader r = {c->msg, c->msg + c->msg_len};
    celer_pb_field f;
    while (celer_pb_next(&r, &f, "ModelInferRequest") > 0)
        if (f.number == 3 && f.wire == 2 && f.len < cap) {
            memcpy(out, f.p, f.len);
            out[f.len] = 0;
        }
}

/* A call failed: a unary call keeps the status for the stream's trailers; a streaming one answers
 * with a ModelStreamInferResponse{error_message=1, infer_response=2{id=3}} (the id ties the error
 * to its request) and the stream goes on. Any thread (the call's owner). */
static void call_fail(grpc_call *c, celer_status st, const char *message) {
    if (!c->streaming) {
        c->status = st;
        snprintf(c->message, sizeof c->message, "%s", message);
        return;
    }
    char id[MAX_NAME];
    infer_request_id(c, id, sizeof id);
    celer_jbuf_free(&c->resp);
    celer_jbuf_init(&c->resp, SMALL_MESSAGE_CAP);
    celer_jbuf_raw(&c->resp, "\0\0\0\0\0", 5);
    celer_pb_put_str(&c->resp, 1, message[0] ? message : celer_status_name(st));
    if (id[0]) {
        size_t mark = celer_pb_begin(&c->resp, 2);
        celer_pb_put_str(&c->resp, 3, id);
        celer_pb_end(&c->resp, mark);
    }
    seal_message(c); /* a failed growth leaves it short of the id: still a valid message */
}

/* The call's answer is ready (IO thread): queued to be sent, or the stream's status (a unary
 * error); a call whose stream is gone, or failed, is freed. */
static void call_answered(celer_grpc *g, grpc_call *c) {
    if (!c->answer_body) { /* its version, arena and queue place go back now; a large answer's once sent */
        celer_service_end(c->svc);
        c->svc = NULL;
    }
    grpc_stream *s = c->stream;
    if (!s) {
        atomic_fetch_sub(&g->active, 1); /* counted while detached (see stream_close) */
        call_free(g, c);
        return;
    }
    if (c->running) {
        c->running = false;
        if (c->prev) c->prev->next = c->next;
        else s->running = c->next;
        if (c->next) c->next->prev = c->prev;
    }
    if (c->msg && !c->answer_body) { /* not needed any more: the answer is encoded (a large one may view it) */
        g->msg_bytes -= (int64_t)c->msg_held;
        free(c->msg);
        c->msg = NULL;
    }
    if (s->finished || (!c->streaming && c->status)) {
        if (!c->streaming) stream_finish(s, c->status, c->message);
        call_free(g, c);
        stream_release(s);
    } else {
        push(&s->out, &s->out_tail, c);
        s->out_bytes += answer_mem(c);
        g->unsent_bytes += (int64_t)answer_mem(c);
        if (!c->streaming) stream_finish(s, CELER_OK, "");
        stream_send(s);
    }
    stream_maybe_finish(s);
}

/* A worker's or the action pool's hand-back, once the answer is encoded into c->resp: the IO
 * thread takes it from the done list. Any thread. */
static void hand_back(celer_grpc *g, grpc_call *c) {
    pthread_mutex_lock(&g->done_lock);
    c->link = g->done;
    g->done = c;
    pthread_mutex_unlock(&g->done_lock);
    uint64_t one = 1;
    (void)!write(g->event_fd, &one, sizeof one);
}

/* The call goes to another thread (IO thread): counted, and listed on its stream so a reset can
 * cancel it. */
static void call_park(celer_grpc *g, grpc_call *c) {
    grpc_stream *s = c->stream;
    c->running = true;
    c->prev = NULL;
    c->next = s->running;
    if (s->running) s->running->prev = c;
    s->running = c;
    atomic_fetch_add(&g->suspended, 1);
}

/* Runs an inline RPC on its request message. */
static void run_inline(celer_grpc *g, grpc_call *c) {
    const grpc_rpc *rpc = c->stream->rpc;
    celer_jbuf_init(&c->resp, SMALL_MESSAGE_CAP);
    celer_jbuf_raw(&c->resp, "\0\0\0\0\0", 5);
    celer_status st = rpc->fn(g, c->msg, c->msg_len, &c->resp);
    if (!st && c->resp.status) st = celer_errorf(c->resp.status, "%s: the answer could not be encoded", rpc->path);
    if (st) {
        call_fail(c, st, celer_error_message());
    } else {
        seal_message(c);
        compress_answer(c);
    }
    call_answered(g, c);
}

/* Starts a complete request message (IO thread): it is held (n_held) until its answer is sent. */
static void call_start(celer_grpc *g, grpc_call *c) {
    grpc_stream *s = c->stream;
    s->n_held++;
    if (s->deadline_ns && mono_ns() > s->deadline_ns) {
        call_fail(c, CELER_ERR_TIMEOUT, "the deadline (grpc-timeout) passed before the call was run");
        call_answered(g, c);
        return;
    }
    if (s->rpc->start) s->rpc->start(g, c);
    else run_inline(g, c);
}

/* Starts the calls a streaming RPC held back while it was paused, on every stream of c that has
 * some, until each pauses again. Outside nghttp2's callbacks: a call may be answered at once. */
static void pump_streams(grpc_conn *conn) {
    conn->pump = false;
    for (grpc_stream *s = conn->streams, *next; s; s = next) {
        next = s->next; /* starting calls never closes a stream */
        while (s->waiting && !s->finished && !stream_paused(s))
            call_start(conn->g, pop(&s->waiting, &s->waiting_tail));
    }
}

/* ---- ModelInfer and ModelStreamInfer, through the request service ----
 * The IO thread reads the target, begins the call, decodes the message against the model (tensor
 * bytes used in place in c->msg) and starts it; the answer is encoded where the service gives it
 * (a worker, or here for a cache hit or a refusal) and submitted by the IO thread. */

static void svc_suspend(void *user) {
    grpc_call *c = user;
    call_park(c->g, c);
}

static void svc_resume(void *user) {
    grpc_call *c = user;
    hand_back(c->g, c);
}

/* The largest answer message: --max-response-bytes, and protobuf's 2 GiB - 1 (a gRPC message
 * over it cannot be parsed by any client); one buffer holds at most 1 GiB. */
static size_t max_message(const celer_grpc *g) {
    return CELER_MIN(CELER_MIN((size_t)g->opts->max_response_bytes, (size_t)INT32_MAX), (size_t)1 << 30);
}

/* An answer whose tensors are large: a ModelInferResponse (wrapped on a stream) in parts, the
 * fields in the body's head and raw_output_contents where the tensors lie, the outputs kept until
 * the call ends, sent by read_answer frame by frame. Uncompressed: a compressed message's length
 * must be known before its first byte. When the outputs cannot be kept (another request's), the
 * parts are copied into c->resp. Any thread (a worker): reads only the call. */
static celer_status answer_from_tensors(grpc_call *c, const celer_service_result *r) {
    const served_version *v = r->version;
    size_t cap = CELER_MIN((size_t)c->g->opts->max_response_bytes, (size_t)INT32_MAX);
    celer_body *b = celer_calloc(1, sizeof *b);
    if (!b) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the answer");
    c->answer_body = b;
    celer_body_init(b, 0);
    celer_jbuf_raw(&b->head, "\0\0\0\0\0", 5);
    size_t mark = c->streaming ? celer_pb_begin(&b->head, 2) : 0;
    celer_status st = celer_grpc_encode_infer_body(&c->kreq, v->owner->name, v->version_str, v->output_names,
                                                   r->outputs, r->n_outputs, b);
    celer_body_finish(b);
    if (!st) st = b->head.status;
    if (st) return celer_error_wrap(st, "encoding the response");
    size_t n = b->total - 5;
    if (n > INT32_MAX)
        return celer_errorf(CELER_ERR_LIMIT, "the answer would be a message of %zu bytes: a gRPC message is at most "
                            "2 GiB - 1 bytes (protobuf's limit); ask for fewer rows or outputs, or use HTTP", n);
    if (n > cap)
        return celer_errorf(CELER_ERR_LIMIT, "the answer would be a message of %zu bytes, over --max-response-bytes "
                            "(%zu): ask for fewer rows or outputs, or raise the flag", n, cap);
    if (c->streaming) celer_pb_patch_len(&b->head, mark, b->total - mark - 5);
    uint8_t be[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(b->head.data + 1, be, 4);
    st = b->n_refs ? celer_service_keep_outputs(c->svc) : CELER_OK;
    if (st == CELER_ERR_UNSUPPORTED) { /* copied, within what one buffer holds */
        celer_jbuf_init(&c->resp, max_message(c->g) + 5);
        celer_body_flatten(b, &c->resp);
        answer_body_free(c);
        if (c->resp.status == CELER_ERR_LIMIT)
            return celer_errorf(CELER_ERR_LIMIT, "the answer (another request's result, which is copied) is over "
                                "%zu bytes", max_message(c->g));
        return c->resp.status ? celer_error_wrap(c->resp.status, "encoding the response") : CELER_OK;
    }
    return st ? celer_error_wrap(st, "keeping the outputs for the answer") : CELER_OK;
}

/* Encodes the service's answer into c->resp: a ModelInferResponse, wrapped as
 * ModelStreamInferResponse.infer_response (field 2) on a stream. Any thread: reads only the call. */
static celer_status svc_done(void *user, const celer_service_result *r) {
    grpc_call *c = user;
    if (r->status) {
        call_fail(c, r->status, r->message);
        return CELER_OK;
    }
    const served_version *v = r->version;
    if (celer_outputs_bytes(r->outputs, r->n_outputs) >= CELER_BODY_STREAM_MIN) {
        celer_status es = answer_from_tensors(c, r);
        if (es) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            answer_body_free(c);
            call_fail(c, es, msg);
        }
        return es;
    }
    size_t cap = max_message(c->g);
    celer_jbuf_init(&c->resp, cap + 5);
    celer_jbuf_raw(&c->resp, "\0\0\0\0\0", 5);
    size_t mark = c->streaming ? celer_pb_begin(&c->resp, 2) : 0;
    celer_status es = celer_grpc_encode_infer(&c->kreq, v->owner->name, v->version_str, v->output_names, r->outputs,
                                              r->n_outputs, &c->resp);
    if (c->streaming) celer_pb_end(&c->resp, mark);
    if (!es && c->resp.status == CELER_ERR_LIMIT)
        es = celer_errorf(CELER_ERR_LIMIT, "the answer is over %zu bytes (--max-response-bytes, and 2 GiB - 1 a "
                          "gRPC message): ask for fewer rows or outputs", cap);
    else if (!es && c->resp.status)
        es = celer_errorf(c->resp.status, "out of memory for the response");
    if (es) {
        char msg[1024];
        snprintf(msg, sizeof msg, "encoding the response: %s", celer_error_message());
        call_fail(c, es, msg);
        return es;
    }
    seal_message(c);
    compress_answer(c);
    return CELER_OK;
}

static const celer_service_callbacks svc_callbacks = {svc_suspend, svc_done, svc_resume};

static void start_model_infer(celer_grpc *g, grpc_call *c) {
    grpc_stream *s = c->stream;
    char model[MAX_NAME], version[MAX_NAME], msg[1024];
    celer_status st = celer_grpc_infer_target(c->msg, c->msg_len, model, sizeof model, version, sizeof version);
    if (!st && !model[0]) st = celer_errorf(CELER_ERR_INVALID, "ModelInferRequest: the model name (field 1) is empty");
    if (st) {
        call_fail(c, st, celer_error_message());
        call_answered(g, c);
        return;
    }
    c->svc = celer_service_begin(g->service, CELER_PROTOCOL_GRPC, model, version, s->start_ns, &st, msg, sizeof msg);
    if (!c->svc) {
        call_fail(c, st, msg);
        call_answered(g, c);
        return;
    }
    if (celer_trace_active()) {
        celer_service_trace(c->svc, s->traceparent_in[0] ? s->traceparent_in : NULL, strlen(s->traceparent_in),
                            s->tracestate_in[0] ? s->tracestate_in : NULL, strlen(s->tracestate_in), s->rpc->path + 1);
        const char *ts;
        if (!s->traceparent_out[0] && celer_service_traceparent(c->svc, s->traceparent_out, &ts) && ts)
            snprintf(s->tracestate_out, sizeof s->tracestate_out, "%s", ts);
    }
    const served_version *v = celer_service_version(c->svc);
    st = celer_grpc_decode_infer(c->msg, c->msg_len, v->inputs, v->n_inputs, celer_service_arena(c->svc), &c->kreq);
    if (st) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        celer_service_reject(c->svc);
        call_fail(c, st, msg);
        call_answered(g, c);
        return;
    }
    celer_service_request r = {.kreq = &c->kreq, .request_id = c->kreq.id, .deadline_ns = s->deadline_ns};
    celer_service_start(c->svc, &r, &svc_callbacks, c);
    if (!c->running) call_answered(g, c); /* answered during start (a cache hit, a refusal) */
}

/* ---- RepositoryModelLoad and RepositoryModelUnload, on the registry's action pool ---- */

/* The action is done (on the action pool): an empty response, or the error. */
static void repo_done(void *user, celer_status st, const char *message) {
    grpc_call *c = user;
    if (st) {
        call_fail(c, st, message);
    } else {
        celer_jbuf_init(&c->resp, 16);
        celer_jbuf_raw(&c->resp, "\0\0\0\0\0", 5); /* RepositoryModelLoadResponse{} */
    }
    hand_back(c->g, c);
}

#define MAX_REPO_PARAMS (CELER_LOAD_MAX_FILES + 8)

/* RepositoryModel{Load,Unload}Request{repository_name=1, model_name=2, parameters=3:
 * map<string, ModelRepositoryParameter{bool_param=1, int64_param=2, string_param=3, bytes_param=4}>}:
 * the model's name and the parameters for the service (which checks them, as for HTTP), their
 * bytes left in the call's message, their keys copied into `keys` (an arena the caller frees). */
static celer_status read_repo_request(const grpc_call *c, bool unload, char name[MAX_NAME], celer_repo_param *params,
                                      int *n, celer_arena *keys) {
    const char *what = unload ? "RepositoryModelUnloadRequest" : "RepositoryModelLoadRequest";
    char field[96];
    celer_pb_reader r = {c->msg, c->msg + c->msg_len};
    celer_pb_field f;
    int more;
    name[0] = 0;
    *n = 0;
    while ((more = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number == 1 && f.wire == 2 && f.len)
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: repository_name '%.*s': celer serves one repository; "
                                "leave it empty", what, (int)CELER_MIN(f.len, 128), (const char *)f.p);
        if (f.number == 2) {
            snprintf(field, sizeof field, "%s.model_name", what);
            CELER_TRY(copy_name(&f, name, MAX_NAME, field));
        }
        if (f.number != 3 || f.wire != 2) continue;
        if (*n == MAX_REPO_PARAMS)
            return celer_errorf(CELER_ERR_LIMIT, "%s: more than %d parameters", what, MAX_REPO_PARAMS);
        /* a map entry {key=1, value=2}; a missing value is bool_param false, proto3's default */
        celer_repo_param *p = &params[*n];
        *p = (celer_repo_param){.key = "", .kind = CELER_REPO_BOOL};
        celer_pb_reader e = {f.p, f.p + f.len};
        celer_pb_field k;
        while ((more = celer_pb_next(&e, &k, what)) > 0) {
            if (k.number == 1 && k.wire == 2) {
                char *key = celer_arena_strndup(keys, (const char *)k.p, k.len);
                if (!key) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the request's parameters");
                p->key = key;
            }
            if (k.number != 2 || k.wire != 2) continue;
            celer_pb_reader vr = {k.p, k.p + k.len};
            celer_pb_field v;
            p->kind = CELER_REPO_BOOL, p->boolean = false;
            while ((more = celer_pb_next(&vr, &v, what)) > 0) { /* the oneof: the last one given wins */
                if (v.number == 1 && v.wire == 0) p->kind = CELER_REPO_BOOL, p->boolean = v.varint != 0;
                else if (v.number == 2 && v.wire == 0) p->kind = CELER_REPO_INT, p->integer = (int64_t)v.varint;
                else if ((v.number == 3 || v.number == 4) && v.wire == 2)
                    p->kind = v.number == 3 ? CELER_REPO_STRING : CELER_REPO_BYTES, p->bytes = (const char *)v.p,
                    p->len = v.len;
            }
            if (more < 0) return CELER_ERR_PARSE;
        }
        if (more < 0) return CELER_ERR_PARSE;
        (*n)++;
    }
    if (more < 0) return CELER_ERR_PARSE;
    if (!name[0]) return celer_errorf(CELER_ERR_INVALID, "%s: the model name (field 2) is empty", what);
    return CELER_OK;
}

static void start_repo_action(celer_grpc *g, grpc_call *c, bool unload) {
    char name[MAX_NAME];
    celer_arena keys;
    celer_arena_init(&keys, 4096, c->msg_len + 65536); /* the keys, NUL-terminated: about the message */
    celer_repo_param *params = celer_malloc(sizeof *params * MAX_REPO_PARAMS);
    int n = 0;
    celer_status st = params ? read_repo_request(c, unload, name, params, &n, &keys)
                             : celer_errorf(CELER_ERR_NOMEM, "out of memory for the request's parameters");
    if (!st) {
        call_park(g, c); /* before the submit: the pool may answer before it returns */
        st = celer_service_repo_action(g->service, name, unload, params, n, repo_done, c);
        if (st) {
            c->running = false; /* refused at once (a bad parameter, a full queue): answered here */
            grpc_stream *s = c->stream;
            if (c->prev) c->prev->next = c->next;
            else s->running = c->next;
            if (c->next) c->next->prev = c->prev;
            atomic_fetch_sub(&g->suspended, 1);
        }
    }
    free(params);
    celer_arena_free(&keys);
    if (!st) return;
    call_fail(c, st, celer_error_message());
    call_answered(g, c);
}

static void start_model_load(celer_grpc *g, grpc_call *c) { start_repo_action(g, c, false); }
static void start_model_unload(celer_grpc *g, grpc_call *c) { start_repo_action(g, c, true); }

/* ---- streams ---- */

/* Unlinks the stream from its connection and frees it: calls a worker or the action pool holds
 * are cancelled and detached (freed when handed back, counted in g->active until then); the
 * window of bytes it held back goes back to the connection. */
static void stream_close(grpc_stream *s) {
    grpc_conn *conn = s->conn;
    celer_grpc *g = conn->g;
    if (s->prev) s->prev->next = s->next;
    else conn->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    conn->n_streams--;
    nghttp2_session_set_stream_user_data(conn->session, s->id, NULL);
    if (!s->finished && s->rpc) {
        count_status(g, s->rpc, 1 /* CANCELLED: the client reset it, or went away */);
        log_call(s, 1, "the client reset the stream or closed its connection");
    }
    if (s->unconsumed) nghttp2_session_consume_connection(conn->session, s->unconsumed);
    for (grpc_call *c = s->running, *next; c; c = next) {
        next = c->next;
        c->stream = NULL;
        c->running = false;
        if (c->svc) celer_service_cancel(c->svc);
        atomic_fetch_add(&g->active, 1);
    }
    for (grpc_call *c; (c = pop(&s->waiting, &s->waiting_tail));) call_free(g, c);
    for (grpc_call *c; (c = pop(&s->out, &s->out_tail));) {
        g->unsent_bytes -= (int64_t)answer_mem(c);
        call_free(g, c);
    }
    if (s->reading) call_free(g, s->reading);
    atomic_fetch_sub(&g->active, 1);
    free(s);
}
static int64_t parse_timeout_ns(const uint8_t *v, size_t n) {
    if (n < 2 || n > 9) return -1;
    int64_t x = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
    }
    static const struct { char unit; int64_t ns; } units[] = {
        {'H', 3600000000000LL}, {'M', 60000000000LL}, {'S', 1000000000LL}, {'m', 1000000LL}, {'u', 1000LL}, {'n', 1},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(units); i++)
        if (v[n - 1] == units[i].unit) return x > INT64_MAX / units[i].ns ? INT64_MAX : x * units[i].ns;
    return -1;
}

static void set_early(grpc_stream *s, celer_status st, const char *fmt, const char *arg, size_t arg_len) {
    if (s->early) return;
    s->early = st;
    char quoted[160];
    snprintf(quoted, sizeof quoted, "%.*s", (int)CELER_MIN(arg_len, 128), arg);
    snprintf(s->early_msg, sizeof s->early_msg, fmt, quoted);
}

/* ---- nghttp2 callbacks (IO thread) ---- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
    grpc_conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    grpc_stream *s = calloc(1, sizeof *s);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    s->g = c->g;
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->start_ns = mono_ns();
    s->next = c->streams;
    if (c->streams) c->streams->prev = s;
    c->streams = s;
    c->n_streams++;
    atomic_fetch_add(&c->g->active, 1);
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user) {
    (void)flags, (void)user;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s || frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* request trailers: nothing we use */
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > MAX_HEADER_BYTES) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* reset */
#define IS(lit) (namelen == sizeof(lit) - 1 && !memcmp(name, lit, namelen))
    if (IS(":method")) {
        s->is_post = valuelen == 4 && !memcmp(value, "POST", 4);
    } else if (IS(":path")) {
        s->rpc = find_rpc((const char *)value, valuelen);
        if (!s->rpc)
            set_early(s, CELER_ERR_UNSUPPORTED,
                      "unknown method '%s' (served: inference.GRPCInferenceService, grpc.health.v1.Health)",
                      (const char *)value, valuelen);
    } else if (IS("content-type")) {
        s->is_grpc = valuelen >= 16 && !memcmp(value, "application/grpc", 16) &&
                     (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (IS("grpc-encoding")) {
        s->coding = celer_coding_parse((const char *)value, valuelen);
        snprintf(s->encoding, sizeof s->encoding, "%.*s", (int)CELER_MIN(valuelen, 24), (const char *)value);
    } else if (IS("grpc-accept-encoding")) {
        for (int k = CELER_CODING_GZIP; k <= CELER_CODING_DEFLATE; k++)
            s->accepts[k] = celer_coding_listed((const char *)value, valuelen, (celer_coding)k);
    } else if (IS("authorization")) { /* after :path (pseudo-headers come first): an open RPC hashes nothing */
        if (s->rpc && s->rpc->scope != CELER_SCOPE_OPEN) celer_auth_identify((const char *)value, valuelen, &s->key);
    } else if (IS("traceparent") && valuelen < sizeof s->traceparent_in) {
        memcpy(s->traceparent_in, value, valuelen);
        s->traceparent_in[valuelen] = 0;
    } else if (IS("tracestate") && valuelen < sizeof s->tracestate_in) {
        memcpy(s->tracestate_in, value, valuelen);
        s->tracestate_in[valuelen] = 0;
    } else if (IS("grpc-timeout")) {
        int64_t ns = parse_timeout_ns(value, valuelen);
        if (ns < 0)
            set_early(s, CELER_ERR_INVALID, "grpc-timeout '%s' is malformed: 1 to 8 digits and a unit (H, M, S, m, u, n)",
                      (const char *)value, valuelen);
        else
            s->deadline_ns = mono_ns() + CELER_MIN(ns, INT64_MAX / 4);
    }
#undef IS
    return 0;
}

/* The request's headers are complete: errors found in them are answered now. */
static void headers_done(grpc_stream *s) {
    if (!s->is_grpc) {
        /* not a gRPC client: plain HTTP 415, as gRPC's protocol says */
        nghttp2_nv nv[] = {NV(":status", "415"), NV("content-type", "text/plain")};
        s->finished = s->responding = s->done_sending = s->reset_after_answer = true;
        nghttp2_submit_response(s->conn->session, s->id, nv, CELER_ARRAY_LEN(nv), NULL);
        return;
    }
    /* answers compressed as the request was, when the client takes it back (as grpc-go does): a
     * client that did not compress is not made to pay for inflating */
    if ((s->coding == CELER_CODING_GZIP || s->coding == CELER_CODING_DEFLATE) && s->accepts[s->coding])
        s->answer_coding = s->coding;
    if (!s->is_post && !s->early) set_early(s, CELER_ERR_INVALID, "gRPC calls are POST requests%s", "", 0);
    if (!s->rpc && !s->early) set_early(s, CELER_ERR_UNSUPPORTED, "no method named (:path missing)%s", "", 0);
    if (!s->early) { /* the API key, before any message byte is read: UNAUTHENTICATED / PERMISSION_DENIED */
        celer_status st = celer_auth_allow(&s->key, s->rpc->scope);
        if (st) {
            s->early = st;
            snprintf(s->early_msg, sizeof s->early_msg, "%s", celer_error_message());
        }
    }
    if (!s->early && !s->rpc->fn && !s->rpc->start) {
        const char *name = rpc_name(s->rpc);
        set_early(s, CELER_ERR_UNSUPPORTED, "%s is not implemented yet", name, strlen(name));
    }
    if (s->early) stream_fail(s, s->early, s->early_msg);
}

/* A request message is complete: a streaming RPC starts it (or holds it while paused); a unary
 * one waits for the client's END_STREAM. */
static void message_done(celer_grpc *g, grpc_stream *s) {
    grpc_call *c = s->reading;
    s->reading = NULL;
    s->prefix_got = 0; /* a next message would start here */
    if (s->rpc->streaming && !s->waiting && !stream_paused(s)) call_start(g, c);
    else push(&s->waiting, &s->waiting_tail, c);
}

/* The request is complete (END_STREAM): a unary RPC runs its one message; a streaming one ends
 * when its calls are answered. */
static void request_done(celer_grpc *g, grpc_stream *s) {
    s->half_closed = true;
    if (s->finished) return;
    char msg[256];
    if (s->rpc->streaming) {
        if (s->reading || s->prefix_got) stream_fail(s, CELER_ERR_PARSE, "the last request message is truncated");
        else stream_maybe_finish(s);
        return;
    }
    if (s->n_msgs != 1 || s->prefix_got != 0) {
        snprintf(msg, sizeof msg, "%s takes exactly one request message: got %s", rpc_name(s->rpc),
                 s->n_msgs ? "a truncated one" : "none");
        stream_fail(s, CELER_ERR_PARSE, msg);
        return;
    }
    call_start(g, pop(&s->waiting, &s->waiting_tail));
}

/* A message's 5-byte prefix is read: checks it and makes its call. False when the stream failed. */
static bool message_begin(celer_grpc *g, grpc_stream *s) {
    char msg[256];
    if (++s->n_msgs > 1 && !s->rpc->streaming) {
        snprintf(msg, sizeof msg, "%s takes exactly one request message: got more", rpc_name(s->rpc));
        stream_fail(s, CELER_ERR_INVALID, msg);
        return false;
    }
    size_t m = (size_t)s->prefix[1] << 24 | (size_t)s->prefix[2] << 16 | (size_t)s->prefix[3] << 8 | s->prefix[4];
    bool compressed = s->prefix[0] == 1;
    if (compressed && s->coding == CELER_CODING_UNKNOWN) { /* gRPC's compression spec: UNIMPLEMENTED */
        snprintf(msg, sizeof msg, "grpc-encoding '%s' is not supported: compress with gzip or deflate, or not at all",
                 s->encoding);
        stream_fail(s, CELER_ERR_UNSUPPORTED, msg);
        return false;
    }
    if (compressed && s->coding == CELER_CODING_IDENTITY) { /* the spec: INTERNAL */
        stream_fail(s, CELER_ERR_INTERNAL, "a message is flagged compressed but the request has no grpc-encoding");
        return false;
    }
    if (s->prefix[0] > 1) {
        snprintf(msg, sizeof msg, "the message prefix's compressed flag is %d; expected 0 or 1", s->prefix[0]);
        stream_fail(s, CELER_ERR_PARSE, msg);
        return false;
    }
    /* the cap is checked from the prefix, before any byte is kept */
    if ((long long)m > g->opts->grpc_max_message_bytes) {
        snprintf(msg, sizeof msg, "the request message is %zu bytes; the server takes at most %lld "
                 "(--grpc-max-message-bytes)", m, g->opts->grpc_max_message_bytes);
        stream_fail(s, CELER_ERR_LIMIT, msg);
        return false;
    }
    if (g->msg_bytes + g->unsent_bytes + (int64_t)m > g->opts->max_body_total_bytes) {
        snprintf(msg, sizeof msg, "request messages being received and answers waiting to be sent hold %lld bytes "
                 "already (--max-body-total-bytes %lld)", (long long)(g->msg_bytes + g->unsent_bytes),
                 g->opts->max_body_total_bytes);
        stream_fail(s, CELER_ERR_UNAVAILABLE, msg);
        return false;
    }
    /* a compressed message's buffer grows as it inflates (inflate_sink) from a start of its wire size */
    size_t held = compressed ? CELER_MAX(CELER_MIN(m, (size_t)g->opts->grpc_max_message_bytes), (size_t)4096) : m;
    grpc_call *c = calloc(1, sizeof *c);
    uint8_t *p = c ? malloc(held ? held : 1) : NULL;
    if (!p) {
        free(c);
        stream_fail(s, CELER_ERR_NOMEM, "no memory for the request message");
        return false;
    }
    c->g = g;
    c->stream = s;
    c->streaming = s->rpc->streaming;
    c->msg = p;
    c->msg_len = compressed ? 0 : m;
    c->msg_held = held;
    c->wire_len = m;
    c->compressed = compressed;
    c->answer_coding = s->answer_coding;
    if (compressed) celer_inflate_init(&c->inflate, s->coding, (size_t)g->opts->grpc_max_message_bytes);
    g->msg_bytes += (int64_t)held;
    s->reading = c;
    s->msg_got = 0;
    return true;
}

/* Inflated bytes of a compressed request message: appended to its buffer, grown within
 * --grpc-max-message-bytes (the inflater's cap) and the budget all streams share. IO thread. */
static celer_status inflate_sink(void *user, const void *p, size_t n) {
    grpc_call *c = user;
    celer_grpc *g = c->g;
    if (c->msg_len + n > c->msg_held) {
        size_t held = CELER_MIN(CELER_MAX(c->msg_held * 2, c->msg_len + n), (size_t)g->opts->grpc_max_message_bytes);
        int64_t more = (int64_t)(held - c->msg_held);
        if (g->msg_bytes + g->unsent_bytes + more > g->opts->max_body_total_bytes)
            return celer_errorf(CELER_ERR_UNAVAILABLE, "request messages being received and answers waiting to be "
                                "sent hold %lld bytes already (--max-body-total-bytes %lld)",
                                (long long)(g->msg_bytes + g->unsent_bytes), g->opts->max_body_total_bytes);
        uint8_t *q = realloc(c->msg, held);
        if (!q) return celer_errorf(CELER_ERR_NOMEM, "no memory for the inflated request message");
        c->msg = q;
        c->msg_held = held;
        g->msg_bytes += more;
    }
    memcpy(c->msg + c->msg_len, p, n);
    c->msg_len += n;
    return CELER_OK;
}

/* A message's wire bytes are all here: a compressed one must have ended. False when the stream
 * failed. */
static bool message_complete(celer_grpc *g, grpc_stream *s) {
    grpc_call *c = s->reading;
    if (c->compressed) {
        celer_status st = celer_inflate_finish(&c->inflate);
        celer_inflate_end(&c->inflate);
        if (st) {
            char msg[512];
            snprintf(msg, sizeof msg, "the request message: %s", celer_error_message());
            stream_fail(s, st, msg);
            return false;
        }
    }
    message_done(g, s);
    return true;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *user) {
    (void)flags;
    grpc_conn *conn = user;
    celer_grpc *g = conn->g;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, id);
    size_t n_data = len;
    while (s && !s->finished && len > 0) { /* once finished (answered early, failed) the rest is dropped */
        if (!s->reading) {
            size_t n = CELER_MIN(len, 5 - s->prefix_got);
            memcpy(s->prefix + s->prefix_got, data, n);
            s->prefix_got += n, data += n, len -= n;
            if (s->prefix_got < 5 || !message_begin(g, s)) continue;
            if (!s->reading->wire_len) message_complete(g, s); /* an empty message is complete at once */
            continue;
        }
        grpc_call *c = s->reading;
        size_t n = CELER_MIN(len, c->wire_len - s->msg_got);
        if (!c->compressed) {
            memcpy(c->msg + s->msg_got, data, n);
        } else {
            celer_status st = celer_inflate_feed(&c->inflate, data, n, inflate_sink, c);
            if (st) {
                char msg[512];
                snprintf(msg, sizeof msg, "the request message: %s%s", celer_error_message(),
                         st == CELER_ERR_LIMIT ? " (--grpc-max-message-bytes)" : "");
                stream_fail(s, st, msg);
                continue;
            }
        }
        s->msg_got += n, data += n, len -= n;
        if (s->msg_got == c->wire_len) message_complete(g, s);
    }
    /* the window is given back now, unless a streaming RPC is paused: then when it resumes */
    if (s && !s->finished && s->rpc->streaming && stream_paused(s)) s->unconsumed += n_data;
    else nghttp2_session_consume(session, id, n_data);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
    grpc_conn *c = user;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) headers_done(s);
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        request_done(c->g, s);
    return 0;
}

/* An answer sent early, before the client's END_STREAM: reset the stream (NO_ERROR) so the client
 * stops sending a message nobody reads. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user) {
    (void)user;
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s && s->reset_after_answer) {
        /* still open on the client's side (this callback runs before our END_STREAM changes it) */
        nghttp2_stream *st = nghttp2_session_find_stream(session, s->id);
        nghttp2_stream_proto_state state = st ? nghttp2_stream_get_state(st) : NGHTTP2_STREAM_STATE_CLOSED;
        if (state == NGHTTP2_STREAM_STATE_OPEN || state == NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/* DATA frames as large as the window and the peer's SETTINGS_MAX_FRAME_SIZE allow, up to
 * MAX_DATA_FRAME: nghttp2's 16 KiB default costs a callback and a frame header per 16 KiB, and a
 * large answer's frames are most of what the IO thread does while it goes out. */
static ssize_t data_frame_length(nghttp2_session *session, uint8_t type, int32_t id, int32_t session_window,
                                 int32_t stream_window, uint32_t remote_max_frame, void *user) {
    (void)session, (void)type, (void)id, (void)user;
    int32_t window = CELER_MIN(session_window, stream_window);
    return (ssize_t)CELER_MIN(CELER_MIN((uint32_t)CELER_MAX(window, 1), remote_max_frame), (uint32_t)MAX_DATA_FRAME);
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user) {
    (void)error_code, (void)user;
    grpc_stream *s = nghttp2_session_get_stream_user_data(session, id);
    if (s) stream_close(s);
    return 0;
}

/* ---- connections ---- */

static void conn_close(celer_grpc *g, grpc_conn *c) {
    while (c->streams) stream_close(c->streams);
    nghttp2_session_del(c->session);
    if (c->tls) gnutls_deinit(c->tls);
    epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else g->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    g->n_conns--;
    free(c->out);
    free(c);
}

static void conn_want_out(celer_grpc *g, grpc_conn *c, bool on) {
    if (c->want_out == on) return;
    c->want_out = on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* ---- the connection's bytes: the socket's, or through its TLS session ---- */

/* A GnuTLS result as read(2)/write(2) would give it: -1 with errno EAGAIN, EINTR or EIO. */
static ssize_t tls_io(ssize_t r) {
    if (r >= 0) return r;
    errno = r == GNUTLS_E_AGAIN ? EAGAIN : r == GNUTLS_E_INTERRUPTED ? EINTR : EIO;
    return -1;
}

static ssize_t conn_recv(grpc_conn *c, void *buf, size_t n) {
    return c->tls ? tls_io(gnutls_record_recv(c->tls, buf, n)) : read(c->fd, buf, n);
}

/* After EAGAIN, TLS must be called again with the same bytes: conn_flush does (out_off stays). */
static ssize_t conn_send(grpc_conn *c, const void *buf, size_t n) {
    return c->tls ? tls_io(gnutls_record_send(c->tls, buf, n)) : write(c->fd, buf, n);
}

/* Runs the TLS handshake as far as the socket lets it. False when the connection was closed (the
 * handshake failed: no certificate the client CA signed, TLS below 1.2, no ALPN h2). */
static bool conn_handshake(celer_grpc *g, grpc_conn *c) {
    int r;
    do r = gnutls_handshake(c->tls);
    while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r));
    if (r == GNUTLS_E_AGAIN) {
        conn_want_out(g, c, gnutls_record_get_direction(c->tls) == 1);
        return true;
    }
    if (r == 0 && celer_tls_alpn_h2(c->tls)) {
        c->handshaken = true;
        c->last_active_ms = mono_ms();
        return true;
    }
    if (r < 0) gnutls_alert_send_appropriate(c->tls, r); /* best effort: the client learns why */
    else gnutls_alert_send(c->tls, GNUTLS_AL_FATAL, GNUTLS_A_NO_APPLICATION_PROTOCOL);
    celer_log_verbose(1, "gRPC: TLS handshake refused: %s",
                      r < 0 ? gnutls_strerror(r) : "the client did not offer ALPN h2");
    conn_close(g, c);
    return false;
}

/* Sends what nghttp2 has, up to GATHER_BYTES a write; what the socket does not take waits for
 * EPOLLOUT. Then closes the connection when it is finished. Returns false when it was closed. */
static bool conn_flush(celer_grpc *g, grpc_conn *c) {
    if (c->tls && !c->handshaken) {
        if (!conn_handshake(g, c)) return false;
        if (!c->handshaken) return true; /* nothing of nghttp2's goes out before it is done */
    }
    for (;;) {
        if (c->pump) pump_streams(c);
        /* the drain delay: a connection opened since the notices gets its own once its first calls
         * are answered (a GOAWAY before the client's first call reads as a failed connect, and
         * grpc clients back off); after the delay every connection gets it */
        if (g->notice_done && !c->noticed && c->n_streams == 0 &&
            (g->drain_done || nghttp2_session_get_last_proc_stream_id(c->session) > 0)) {
            nghttp2_submit_shutdown_notice(c->session);
            c->noticed = true;
        }
        /* draining: once its calls are answered (streams close while sending), the final GOAWAY */
        if (g->drain_done && !c->goaway_sent && c->n_streams == 0) {
            nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->session),
                                  NGHTTP2_NO_ERROR, NULL, 0);
            c->goaway_sent = true;
        }
        if (c->out_off < c->out_len) {
            ssize_t w = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                conn_want_out(g, c, true);
                return true;
            }
            if (w < 0) goto close;
            c->out_off += (size_t)w;
            c->last_active_ms = mono_ms();
            continue;
        }
        c->out_off = c->out_len = 0;
        while (c->out_len < GATHER_BYTES) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(c->session, &p);
            if (n < 0) goto close;
            if (n == 0) break;
            if (c->out_len + (size_t)n > c->out_cap) { /* at most GATHER_BYTES plus one frame */
                size_t cap = c->out_len + (size_t)n + GATHER_BYTES;
                uint8_t *q = realloc(c->out, cap);
                if (!q) goto close;
                c->out = q, c->out_cap = cap;
            }
            memcpy(c->out + c->out_len, p, (size_t)n);
            c->out_len += (size_t)n;
        }
        if (c->out_len == 0 && !c->pump && !(g->drain_done && !c->goaway_sent && c->n_streams == 0)) break;
    }
    conn_want_out(g, c, false);
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) goto close;
    if (c->goaway_sent) goto close; /* flushed: nothing more will be answered */
    return true;
close:
    conn_close(g, c);
    return false;
}

/* Reads what the socket has, READ_BYTES_PER_TURN at most: a client that keeps its socket full
 * cannot hold the IO thread, and what nghttp2 queued meanwhile (a GOAWAY past its stream reset
 * rate limit: nghttp2 keeps taking new streams until that GOAWAY is sent) goes out each turn. The
 * rest stays readable for the next epoll turn (level-triggered). */
static void conn_read(celer_grpc *g, grpc_conn *c) {
    if (c->tls && !c->handshaken) {
        if (!conn_handshake(g, c) || !c->handshaken) return; /* closed, or waiting for bytes */
    }
    uint8_t buf[16384];
    /* TLS: bytes GnuTLS decrypted and holds (at most a record) are read in this turn, as epoll
     * will not tell of them */
    for (size_t got = 0; got < READ_BYTES_PER_TURN || (c->tls && gnutls_record_check_pending(c->tls));) {
        ssize_t n = conn_recv(c, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            conn_close(g, c);
            return;
        }
        c->last_active_ms = mono_ms();
        got += (size_t)n;
        if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0) {
            conn_close(g, c);
            return;
        }
        if (!c->tls && (size_t)n < sizeof buf) break; /* a TLS record is smaller than buf: read to EAGAIN */
    }
    conn_flush(g, c);
}

static void accept_all(celer_grpc *g) {
    for (;;) {
        int fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or out of descriptors: the next turn tries again */
        if (g->n_conns >= g->max_conns) { /* over the cap: refused at once */
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        grpc_conn *c = calloc(1, sizeof *c);
        if (!c || (g->tls && celer_tls_session_new(g->tls, fd, &c->tls)) ||
            nghttp2_session_server_new2(&c->session, g->callbacks, c, g->option)) {
            if (c && c->tls) gnutls_deinit(c->tls);
            free(c);
            close(fd);
            continue;
        }
        c->g = g;
        c->fd = fd;
        c->last_active_ms = c->accepted_ms = mono_ms();
        nghttp2_settings_entry settings[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
        };
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, CELER_ARRAY_LEN(settings)) ||
            nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) ||
            epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
            nghttp2_session_del(c->session);
            if (c->tls) gnutls_deinit(c->tls);
            free(c);
            close(fd);
            continue;
        }
        c->next = g->conns;
        if (g->conns) g->conns->prev = c;
        g->conns = c;
        g->n_conns++;
        conn_flush(g, c);
    }
}

/* The eventfd: answers handed back by workers, and drain/stop. */
static void on_event(celer_grpc *g) {
    uint64_t v;
    (void)!read(g->event_fd, &v, sizeof v);
    pthread_mutex_lock(&g->done_lock);
    grpc_call *list = g->done;
    g->done = NULL;
    pthread_mutex_unlock(&g->done_lock);
    while (list) {
        grpc_call *c = list;
        list = c->link;
        atomic_fetch_sub(&g->suspended, 1);
        call_answered(g, c);
    }
    if ((atomic_load(&g->noticing) || atomic_load(&g->draining)) && !g->notice_done) {
        g->notice_done = true;
        for (grpc_conn *c = g->conns; c; c = c->next) {
            nghttp2_submit_shutdown_notice(c->session);
            c->noticed = true;
        }
    }
    if (atomic_load(&g->draining) && !g->drain_done) {
        g->drain_done = true;
        epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, g->listen_fd, NULL);
        close(g->listen_fd);
        g->listen_fd = -1;
    }
    for (grpc_conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        conn_flush(g, c);
    }
}

/* Closes connections idle longer than --request-timeout-secs (no byte either way), unless a
 * worker holds one of their calls or they carry an open ModelStreamInfer: a stream may rightly
 * wait minutes between requests, and closing its connection would fail it (each such connection
 * still counts against --max-connections). */
static void close_idle(celer_grpc *g) {
    int64_t now = mono_ms(), limit = (int64_t)g->opts->request_timeout_secs * 1000;
    if (limit <= 0) return;
    for (grpc_conn *c = g->conns, *next; c; c = next) {
        next = c->next;
        bool held = false;
        for (grpc_stream *s = c->streams; s && !held; s = s->next)
            held = s->running != NULL || (s->rpc && s->rpc->streaming && !s->finished);
        bool handshake_late = c->tls && !c->handshaken &&
                              now - c->accepted_ms > (int64_t)g->opts->header_timeout_secs * 1000;
        if ((!held && now - c->last_active_ms > limit) || handshake_late) conn_close(g, c);
    }
}

static void *io_thread(void *arg) {
    celer_grpc *g = arg;
    struct epoll_event evs[64];
    int64_t last_sweep = mono_ms();
    while (!atomic_load(&g->stopping)) {
        int n = epoll_wait(g->epoll_fd, evs, CELER_ARRAY_LEN(evs), 1000);
        bool event = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &g->listen_fd) {
                accept_all(g);
            } else if (p == &g->event_fd) {
                event = true; /* after the batch: it may close connections the batch still names */
            } else {
                grpc_conn *c = p;
                /* each fd appears once per batch and only its own event closes it (a new one from
                 * accept_all cannot be in this batch) */
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(g, c);
                else if (evs[i].events & EPOLLOUT) conn_flush(g, c);
            }
        }
        if (event) on_event(g);
        if (mono_ms() - last_sweep >= 1000) {
            close_idle(g);
            last_sweep = mono_ms();
        }
    }
    return NULL;
}

/* ---- start, drain, stop ---- */

static void grpc_free(celer_grpc *g) {
    while (g->conns) conn_close(g, g->conns);
    if (g->listen_fd >= 0) close(g->listen_fd);
    if (g->event_fd >= 0) close(g->event_fd);
    if (g->epoll_fd >= 0) close(g->epoll_fd);
    if (g->callbacks) nghttp2_session_callbacks_del(g->callbacks);
    if (g->option) nghttp2_option_del(g->option);
    pthread_mutex_destroy(&g->done_lock);
    free(g);
}

celer_status celer_grpc_start(const celer_server_options *opts, celer_service *service, celer_metrics *metrics,
                              celer_tls *tls, celer_grpc **out) {
    *out = NULL;
    if (opts->grpc_port == 0) return CELER_OK;
    for (size_t i = 0; i < CELER_ARRAY_LEN(rpcs); i++)
        if (rpcs[i].scope <= CELER_SCOPE_NONE || rpcs[i].scope >= CELER_SCOPE_COUNT)
            return celer_errorf(CELER_ERR_INTERNAL, "RPC %s has no API key scope in rpcs[] (grpc.c)", rpcs[i].path);
    celer_grpc *g = calloc(1, sizeof *g);
    if (!g) return celer_errorf(CELER_ERR_NOMEM, "no memory for the gRPC front end");
    g->opts = opts;
    g->service = service;
    g->registry = celer_service_registry(service);
    g->metrics = metrics;
    g->tls = tls;
    g->listen_fd = g->event_fd = g->epoll_fd = -1;
    pthread_mutex_init(&g->done_lock, NULL);
    struct rlimit rl;
    g->max_conns = opts->max_connections > 0 ? opts->max_connections : 1024;
    if (opts->max_connections <= 0 && !getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128)
        g->max_conns = (int)CELER_MIN(rl.rlim_cur - 64, 1 << 20);
    celer_status st = CELER_OK;
    if (nghttp2_session_callbacks_new(&g->callbacks) || nghttp2_option_new(&g->option)) {
        st = celer_errorf(CELER_ERR_NOMEM, "no memory for the gRPC front end");
        goto fail;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(g->callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(g->callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g->callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g->callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(g->callbacks, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(g->callbacks, on_stream_close);
    nghttp2_session_callbacks_set_data_source_read_length_callback(g->callbacks, data_frame_length);
    /* windows are given back as the IO thread takes the bytes (see "Flow control" at the top) */
    nghttp2_option_set_no_auto_window_update(g->option, 1);
    /* nghttp2's own protections (rapid reset, CONTINUATION floods, SETTINGS and ACK floods) stay at
     * their defaults; streams beyond MAX_STREAMS are refused by nghttp2 from our SETTINGS */

    celer_listen_addr addr;
    if ((st = celer_listen_resolve(opts->grpc_address, opts->grpc_port, "--grpc-address", &addr)) ||
        (st = celer_listen_open(&addr, "gRPC", &g->listen_fd)))
        goto fail;
    g->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &g->listen_fd};
    struct epoll_event eev = {.events = EPOLLIN, .data.ptr = &g->event_fd};
    if (g->event_fd < 0 || g->epoll_fd < 0 || epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->listen_fd, &lev) ||
        epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->event_fd, &eev)) {
        st = celer_errorf(CELER_ERR_IO, "gRPC front end: epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&g->thread, NULL, io_thread, g)) {
        st = celer_errorf(CELER_ERR_IO, "gRPC front end: cannot start its IO thread");
        goto fail;
    }
    g->started = true;
    *out = g;
    return CELER_OK;
fail:
    grpc_free(g);
    return st;
}

static void wake(celer_grpc *g) {
    uint64_t one = 1;
    (void)!write(g->event_fd, &one, sizeof one);
}

void celer_grpc_notice(celer_grpc *g) {
    if (!g) return;
    atomic_store(&g->noticing, true);
    wake(g);
}

void celer_grpc_drain(celer_grpc *g) {
    if (!g) return;
    atomic_store(&g->draining, true);
    wake(g);
}

int celer_grpc_active(const celer_grpc *g) { return g ? atomic_load(&g->active) : 0; }
int celer_grpc_suspended(const celer_grpc *g) { return g ? atomic_load(&g->suspended) : 0; }

void celer_grpc_stop(celer_grpc *g) {
    if (!g) return;
    atomic_store(&g->stopping, true);
    wake(g);
    pthread_join(g->thread, NULL);
    grpc_free(g);
}
