/* Tracing (trace.c), private to src/server: W3C trace context in and out, spans of requests,
 * pipeline steps, model calls and batches, and their export over OTLP/HTTP (protobuf, the default,
 * or JSON: --trace-otlp-protocol, OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL) from one thread.
 *
 * Propagation: a request's `traceparent` (and `tracestate`, only with a valid traceparent) is
 * parsed strictly; a request is traced when it arrives with a sampled parent (flags & 1), or when
 * the sampler picks it (trace_rate: 1 in N; 0 = only those with a sampled parent), and tracing is
 * on: an exporter is configured (--trace-otlp-url or the OTEL_* endpoint variables) and
 * trace_level is not OFF.
 *
 * Spans are fixed-size records (celer_span) filled by whoever traces (the request service, the
 * scheduler) from timestamps they already take (CLOCK_MONOTONIC), and handed to the exporter with
 * celer_span_end: a copy into a bounded ring, under a lock held for the copy only. A full ring
 * drops the span and counts it (celer_trace_spans_dropped_total): a worker never waits for the
 * exporter. The exporter thread posts up to 1024 spans at a time (at 1024 queued, every 5 s, and
 * at shutdown), retrying 429/502/503/504 and connection failures with backoff (Retry-After honoured).
 *
 * Settings are Triton's (GET/POST /v2[/models/{m}]/trace/setting, gRPC TraceSetting): strings
 * trace_level (an array: OFF, TIMESTAMPS; TENSORS is refused, as in Triton's OpenTelemetry mode),
 * trace_rate, trace_count (-1 = unlimited), log_frequency (kept, unused: there is no trace file)
 * and trace_file (only "": spans go to the OTLP endpoint). A model may override each; a null
 * value reverts the override to the global value (on the global settings: to the flag's). Both
 * transports decode into celer_trace_value and encode what celer_trace_settings reports, so the
 * rules and messages are the same on both. See docs/server.md, "Tracing". */
#ifndef CELER_SERVER_TRACE_H
#define CELER_SERVER_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/json.h"
#include "server/metrics.h"
#include "server/server.h"

#define CELER_TRACE_STATE_MAX 512 /* a longer tracestate is dropped (W3C: at least 512 must pass) */
#define CELER_SPAN_MAX_ATTRS 8
#define CELER_SPAN_MAX_EVENTS 8
#define CELER_SPAN_MAX_LINKS 32   /* a batch of more requests links the first 32 (droppedLinksCount) */
#define CELER_TRACEPARENT_LEN 55  /* "00-" 32 hex "-" 16 hex "-" 2 hex */

/* An incoming trace context. */
typedef struct celer_trace_ctx {
    bool valid;
    uint8_t trace_id[16], parent_id[8];
    uint8_t flags; /* W3C trace flags: sampled = flags & 1 */
    size_t state_len; /* 0: no tracestate (or one dropped) */
    char state[CELER_TRACE_STATE_MAX + 1];
} celer_trace_ctx;

/* Parses a traceparent header value (len bytes, not NUL-terminated): version 00 exactly 55
 * characters; lowercase hex only; trace id and parent id not all zeros; version ff invalid; a
 * higher version may be longer, with "-" after the flags, and its first four fields are read.
 * Returns whether it is valid; *out is cleared first, and set only then. */
bool celer_trace_parse_parent(const char *s, size_t len, celer_trace_ctx *out);
/* Keeps a tracestate value, opaque, when ctx is valid and the value fits CELER_TRACE_STATE_MAX
 * bytes of visible ASCII (else it is dropped, as W3C allows). */
void celer_trace_parse_state(celer_trace_ctx *ctx, const char *s, size_t len);

typedef enum celer_span_kind { CELER_SPAN_INTERNAL = 1, CELER_SPAN_SERVER = 2, CELER_SPAN_CLIENT = 3 } celer_span_kind;

typedef struct celer_span_attr {
    const char *key; /* static text (ASCII) */
    bool is_int;
    uint8_t s_len; /* of s */
    int64_t i;
    char s[64]; /* longer values are cut */
} celer_span_attr;

typedef struct celer_span_event {
    const char *name; /* static text (ASCII) */
    int64_t t_ns;     /* CLOCK_MONOTONIC */
    const char *attr; /* an int attribute's key (static), or NULL */
    int64_t attr_value;
} celer_span_event;

typedef struct celer_span_link {
    uint8_t trace_id[16], span_id[8];
    uint8_t flags;
} celer_span_link;

/* One span: plain bytes, copied into the exporter's ring. Times are CLOCK_MONOTONIC; the exporter
 * turns them into Unix time when it posts. */
typedef struct celer_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    bool has_parent, parent_remote;
    uint8_t flags; /* W3C trace flags (sampled) */
    uint8_t kind;  /* celer_span_kind */
    uint8_t status; /* 0 UNSET, 2 ERROR (then status_message says why) */
    uint8_t name_len;
    char name[96];
    int64_t start_ns, end_ns;
    int n_attrs, n_events, n_links, dropped_links;
    size_t state_len;
    /* the parts below are copied into the ring only as far as they are used */
    celer_span_attr attrs[CELER_SPAN_MAX_ATTRS];
    celer_span_event events[CELER_SPAN_MAX_EVENTS];
    celer_span_link links[CELER_SPAN_MAX_LINKS];
    char status_message[160];                /* read only when status is 2 */
    char state[CELER_TRACE_STATE_MAX + 1];  /* read only when state_len is not 0 */
} celer_span;

/* Starts the exporter from the flags and the environment (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 * OTEL_EXPORTER_OTLP_ENDPOINT + "/v1/traces", OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and
 * registers its counters; with no endpoint nothing is traced (the settings still answer).
 * CELER_ERR_INVALID naming the flag for a bad --trace-level or --trace-rate. */
celer_status celer_trace_start(const celer_server_options *opts, celer_metrics *metrics);
/* Posts what is queued (one try, at most ~2 s) and stops the exporter. */
void celer_trace_stop(void);

/* Whether tracing is on (an exporter runs): one relaxed load, for hooks to skip everything. */
bool celer_trace_active(void);
/* Whether a request for `model` is traced, given its context (NULL: none): the sampling decision,
 * made once per request. False at once (one relaxed load) while tracing is off. */
bool celer_trace_sample(const char *model, const celer_trace_ctx *parent);

/* Begins span s (its memory the caller's): a new random span id, in parent's trace (parent NULL:
 * a new trace id; remote: the parent is another process's); start_ns CLOCK_MONOTONIC. */
void celer_span_begin(celer_span *s, const char *name, celer_span_kind kind, const celer_span *local_parent,
                      const celer_trace_ctx *remote_parent, int64_t start_ns);
/* Names s `prefix` followed by `name` (cut to fit): for names made of two parts, without snprintf. */
void celer_span_name(celer_span *s, const char *prefix, const char *name);
void celer_span_attr_str(celer_span *s, const char *key, const char *value);
void celer_span_attr_int(celer_span *s, const char *key, int64_t value);
/* An event at t_ns, with one int attribute when attr is not NULL; beyond CELER_SPAN_MAX_EVENTS dropped. */
void celer_span_event_at(celer_span *s, const char *name, int64_t t_ns, const char *attr, int64_t attr_value);
void celer_span_link_to(celer_span *s, const celer_span *to);
void celer_span_fail(celer_span *s, const char *message);
/* Ends s at end_ns and queues a copy for export (dropped and counted when the ring is full). */
void celer_span_end(celer_span *s, int64_t end_ns);

/* "00-<trace id>-<span id>-<flags>" of s, what goes back to the client: CELER_TRACEPARENT_LEN + 1 bytes. */
void celer_span_traceparent(const celer_span *s, char out[CELER_TRACEPARENT_LEN + 1]);
void celer_trace_hex(const uint8_t *id, size_t n, char *out); /* 2n hex digits and a NUL */

/* The OTLP/HTTP JSON body of n spans ({"resourceSpans":[...]}); offset_ns turns their monotonic
 * times into Unix nanoseconds. */
void celer_trace_export_json(const celer_span *spans, int n, int64_t offset_ns, celer_jbuf *out);
/* The same spans as OTLP/HTTP protobuf (an ExportTraceServiceRequest), appended to out: the
 * message is out->data[returned offset .. out->len) (its header goes in front of the spans once
 * their size is known: the first bytes are room left over). 0 with out->status set on failure. */
size_t celer_trace_export_proto(const celer_span *spans, int n, int64_t offset_ns, celer_jbuf *out);

/* The ring alone, for tests: celer_trace_ring_push returns false (and counts a drop) when full. */
typedef struct celer_trace_ring celer_trace_ring;
celer_status celer_trace_ring_new(int capacity, celer_trace_ring **out);
bool celer_trace_ring_push(celer_trace_ring *r, const celer_span *s);
int celer_trace_ring_count(celer_trace_ring *r);
uint64_t celer_trace_ring_dropped(celer_trace_ring *r);
void celer_trace_ring_free(celer_trace_ring *r);

/* ---- the settings, as the trace setting endpoints read and change them ---- */

#define CELER_TRACE_MAX_VALUES 4
/* A value as a transport decoded it: null, or up to 4 strings (a JSON string is one; an array of
 * strings, or gRPC's repeated value, is each); `other` for a JSON value of another type. */
typedef struct celer_trace_value {
    bool null, other;
    int n;
    const char *s[CELER_TRACE_MAX_VALUES];
    size_t len[CELER_TRACE_MAX_VALUES];
} celer_trace_value;

/* A change of several settings, all applied or none: collect them with celer_trace_change_set
 * (CELER_ERR_INVALID with Triton's wording for an unknown setting, a value that is not what it
 * takes, TENSORS, a trace_file other than ""), then celer_trace_change_apply. */
typedef struct celer_trace_change {
    bool set_level, set_rate, set_count, set_freq;     /* given */
    bool clear_level, clear_rate, clear_count, clear_freq; /* given as null */
    int level;
    int64_t rate, count, freq;
} celer_trace_change;
celer_status celer_trace_change_set(celer_trace_change *c, const char *name, size_t name_len, const celer_trace_value *v);
/* For `model` (NULL or "": the global settings). CELER_ERR_LIMIT when 1024 models have overrides already. */
celer_status celer_trace_change_apply(const char *model, const celer_trace_change *c);

/* The settings in effect for `model` (NULL or "": global), each(user, name, values, n): trace_file,
 * trace_level (1 value), trace_rate, trace_count, log_frequency. */
void celer_trace_settings(const char *model,
                          void (*each)(void *user, const char *name, const char *const *values, int n), void *user);

#endif
