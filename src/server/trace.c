/* Tracing: trace context parsing, spans, the exporter's ring and thread, and the trace settings
 * (see trace.h). */
#include "server/trace.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "server/log.h"
#include "server/service.h"

/* Spans per post, and the queue length that wakes the exporter: a post has a cost of its own
 * (about 80 us: measured, 128 spans a post cost half as much again CPU per span as 512, and 1024
 * some 15% less than 512). Twice Triton's OpenTelemetry batch (512), as the queue (its 2048) is
 * half again: 3072 spans of 2.6 KB, 8 MB, leave room for two more posts' worth while one is out. */
#define EXPORT_BATCH 1024
#define EXPORT_EVERY_NS 5000000000LL /* ... or this long after the last post */
#define RING_SPANS 3072           /* queued spans at most */
#define MAX_ATTEMPTS 5            /* posts of one batch before it is given up */
#define MAX_OVERRIDES 1024        /* models with settings of their own */
#define RESOURCE_MAX 8192         /* the resource's JSON, and its protobuf */

enum { LEVEL_OFF, LEVEL_TIMESTAMPS };

static const char hexd[] = "0123456789abcdef";

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- W3C trace context ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* uppercase is invalid */
}

/* n bytes from 2n lowercase hex digits; false on any other character. */
static bool unhex(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
        if (a < 0 || b < 0) return false;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

bool celer_trace_parse_parent(const char *s, size_t len, celer_trace_ctx *out) {
    out->valid = false;
    out->state_len = 0;
    out->state[0] = 0;
    uint8_t version;
    if (!s || len < CELER_TRACEPARENT_LEN || !unhex(s, &version, 1) || version == 0xff) return false;
    if (version == 0 && len != CELER_TRACEPARENT_LEN) return false;
    if (len > CELER_TRACEPARENT_LEN && s[CELER_TRACEPARENT_LEN] != '-') return false; /* a higher version's tail */
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return false;
    celer_trace_ctx c = {0};
    if (!unhex(s + 3, c.trace_id, 16) || !unhex(s + 36, c.parent_id, 8) || !unhex(s + 53, &c.flags, 1)) return false;
    if (all_zero(c.trace_id, 16) || all_zero(c.parent_id, 8)) return false;
    memcpy(out->trace_id, c.trace_id, 16);
    memcpy(out->parent_id, c.parent_id, 8);
    out->flags = c.flags;
    out->valid = true;
    return true;
}

void celer_trace_parse_state(celer_trace_ctx *ctx, const char *s, size_t len) {
    if (!ctx->valid || !s || !len || len > CELER_TRACE_STATE_MAX) return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return; /* not a header value W3C allows */
    memcpy(ctx->state, s, len);
    ctx->state[len] = 0;
    ctx->state_len = len;
}

void celer_trace_hex(const uint8_t *id, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[id[i] >> 4];
        out[2 * i + 1] = hexd[id[i] & 15];
    }
    out[2 * n] = 0;
}

/* ---- random ids: splitmix64 per thread, seeded from the kernel ---- */

static _Thread_local uint64_t rng_state;
static _Thread_local bool rng_seeded;

static uint64_t rng_next(void) {
    if (!rng_seeded) {
        if (getrandom(&rng_state, sizeof rng_state, GRND_NONBLOCK) != sizeof rng_state)
            rng_state = (uint64_t)mono_ns() ^ (uint64_t)(uintptr_t)&rng_state;
        rng_seeded = true;
    }
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void random_id(uint8_t *out, size_t n) {
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = rng_next();
            memcpy(out + i, &v, CELER_MIN(8, n - i));
        }
    } while (all_zero(out, n));
}

/* ---- spans ---- */

/* Returns the length copied. */
static size_t copy_text(char *dst, size_t cap, const char *src) {
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = 0;
    return n;
}

void celer_span_begin(celer_span *s, const char *name, celer_span_kind kind, const celer_span *local_parent,
                      const celer_trace_ctx *remote_parent, int64_t start_ns) {
    s->n_attrs = s->n_events = s->n_links = s->dropped_links = 0;
    s->status = 0;
    s->state_len = 0; /* state and status_message are not touched: their lines, far down, stay cold */
    s->has_parent = s->parent_remote = false;
    s->kind = (uint8_t)kind;
    s->name_len = (uint8_t)copy_text(s->name, sizeof s->name, name);
    s->start_ns = s->end_ns = start_ns;
    s->flags = 1; /* sampled: only traced requests make spans */
    if (local_parent) {
        memcpy(s->trace_id, local_parent->trace_id, 16);
        memcpy(s->parent_id, local_parent->span_id, 8);
        s->has_parent = true;
        s->flags = local_parent->flags;
        if (local_parent->state_len) memcpy(s->state, local_parent->state, local_parent->state_len + 1);
        s->state_len = local_parent->state_len;
    } else if (remote_parent && remote_parent->valid) {
        memcpy(s->trace_id, remote_parent->trace_id, 16);
        memcpy(s->parent_id, remote_parent->parent_id, 8);
        s->has_parent = s->parent_remote = true;
        s->flags = (uint8_t)(remote_parent->flags | 1);
        if (remote_parent->state_len) memcpy(s->state, remote_parent->state, remote_parent->state_len + 1);
        s->state_len = remote_parent->state_len;
    } else {
        random_id(s->trace_id, 16);
    }
    random_id(s->span_id, 8);
}

void celer_span_name(celer_span *s, const char *prefix, const char *name) {
    size_t n = strnlen(prefix, sizeof s->name - 1);
    memcpy(s->name, prefix, n);
    s->name_len = (uint8_t)(n + copy_text(s->name + n, sizeof s->name - n, name));
}

void celer_span_attr_str(celer_span *s, const char *key, const char *value) {
    if (s->n_attrs == CELER_SPAN_MAX_ATTRS) return;
    celer_span_attr *a = &s->attrs[s->n_attrs++];
    a->key = key;
    a->is_int = false;
    a->s_len = (uint8_t)copy_text(a->s, sizeof a->s, value);
}

void celer_span_attr_int(celer_span *s, const char *key, int64_t value) {
    if (s->n_attrs == CELER_SPAN_MAX_ATTRS) return;
    celer_span_attr *a = &s->attrs[s->n_attrs++];
    a->key = key;
    a->is_int = true;
    a->i = value;
}

void celer_span_event_at(celer_span *s, const char *name, int64_t t_ns, const char *attr, int64_t attr_value) {
    if (s->n_events == CELER_SPAN_MAX_EVENTS) return;
    s->events[s->n_events++] = (celer_span_event){name, t_ns, attr, attr_value};
}

void celer_span_link_to(celer_span *s, const celer_span *to) {
    if (s->n_links == CELER_SPAN_MAX_LINKS) {
        s->dropped_links++;
        return;
    }
    celer_span_link *l = &s->links[s->n_links++];
    memcpy(l->trace_id, to->trace_id, 16);
    memcpy(l->span_id, to->span_id, 8);
    l->flags = to->flags;
}

void celer_span_fail(celer_span *s, const char *message) {
    s->status = 2;
    copy_text(s->status_message, sizeof s->status_message, message);
}

void celer_span_traceparent(const celer_span *s, char out[CELER_TRACEPARENT_LEN + 1]) {
    memcpy(out, "00-", 3);
    celer_trace_hex(s->trace_id, 16, out + 3);
    out[35] = '-';
    celer_trace_hex(s->span_id, 8, out + 36);
    out[52] = '-';
    celer_trace_hex(&s->flags, 1, out + 53);
}

/* Asks for the parts of a queued span an encoder reads (its head, six attributes, six events) ahead
 * of time: the ring is 8 MB that workers on the other core wrote, so these reads miss the cache, and
 * a span two ahead arrives while this one is encoded. */
static void prefetch_span(const celer_span *s) {
    const char *p = (const char *)s;
    for (size_t o = 0; o < offsetof(celer_span, attrs) + 6 * sizeof(celer_span_attr); o += 64) __builtin_prefetch(p + o);
    for (size_t o = offsetof(celer_span, events); o < offsetof(celer_span, events) + 6 * sizeof(celer_span_event); o += 64)
        __builtin_prefetch(p + o);
}

/* ---- OTLP/HTTP JSON: protobuf's JSON mapping with OTLP's deviations (hex ids, 64-bit integers as
 * decimal strings, enums as integers), in the shape and field order the official exporter sends ---- */

/* A span's JSON is written with a bare pointer straight into the body, where room for the largest
 * span (SPAN_JSON_MAX) is reserved first: the exporter formats up to 1024 spans per post, and
 * per-call bounds checks (then a copy of each span) were most of its time. */
#define SPAN_JSON_MAX (24 * 1024)

#define W(p, s) (memcpy(p, s, sizeof(s) - 1), p += sizeof(s) - 1)

static char *w_hex(char *p, const uint8_t *id, size_t n) {
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        *p++ = hexd[id[i] >> 4];
        *p++ = hexd[id[i] & 15];
    }
    *p++ = '"';
    return p;
}

static const char digit_pairs[201] = "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/* Two digits a step, written in place (its length found first): a time is 19 digits, and a span
 * has up to ten times. */
static char *w_uint(char *p, uint64_t v) {
    int n = 1;
    for (uint64_t x = 10; n < 20 && v >= x; x *= 10) n++; /* 10^19 still fits: n stops at 20 */
    char *end = p + n, *t = end;
    while (v >= 100) {
        t -= 2;
        memcpy(t, digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, digit_pairs + 2 * v, 2);
    } else {
        *--t = (char)('0' + v);
    }
    return end;
}

static char *w_int(char *p, int64_t v) {
    if (v < 0) *p++ = '-';
    return w_uint(p, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* An int64 as OTLP's JSON writes it: a decimal string. */
static char *w_nanos(char *p, int64_t v) {
    *p++ = '"';
    p = w_int(p, v);
    *p++ = '"';
    return p;
}

/* A JSON string of s[0..n): '"', '\\' and control bytes escaped (6 bytes at most per byte). */
static char *w_str(char *p, const char *s, size_t n) {
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hexd[c >> 4];
            p[5] = hexd[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    return p;
}

/* A NUL-terminated string, in one pass (most are short and need no escape). */
static char *w_cstr(char *p, const char *s) {
    *p++ = '"';
    for (unsigned char c; (c = (unsigned char)*s); s++) {
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
        } else if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else {
            memcpy(p, "\\u00", 4);
            p[4] = hexd[c >> 4];
            p[5] = hexd[c & 15];
            p += 6;
        }
    }
    *p++ = '"';
    return p;
}

static char *w_attr(char *p, const char *key, bool is_int, int64_t i, const char *s) {
    W(p, "{\"key\":");
    p = w_cstr(p, key);
    if (is_int) {
        W(p, ",\"value\":{\"intValue\":");
        p = w_nanos(p, i);
    } else {
        W(p, ",\"value\":{\"stringValue\":");
        p = w_cstr(p, s);
    }
    W(p, "}}");
    return p;
}

/* One span; p has SPAN_JSON_MAX bytes (the fields' caps bound what a span can take). Fields at
 * their default (empty arrays, zero counts) are left out, as protobuf's JSON mapping does and as
 * OTLP receivers read them: a quarter of a request's span bytes were such fields, and every byte is paid for
 * three times (formatted here, sent, read by the receiver). */
static char *span_json(const celer_span *s, int64_t offset, char *p) {
    W(p, "{\"traceId\":");
    p = w_hex(p, s->trace_id, 16);
    W(p, ",\"spanId\":");
    p = w_hex(p, s->span_id, 8);
    if (s->state_len) {
        W(p, ",\"traceState\":");
        p = w_str(p, s->state, s->state_len);
    }
    if (s->has_parent) {
        W(p, ",\"parentSpanId\":");
        p = w_hex(p, s->parent_id, 8);
    }
    W(p, ",\"name\":");
    p = w_cstr(p, s->name);
    W(p, ",\"kind\":");
    p = w_int(p, s->kind);
    W(p, ",\"startTimeUnixNano\":");
    p = w_nanos(p, s->start_ns + offset);
    W(p, ",\"endTimeUnixNano\":");
    p = w_nanos(p, s->end_ns + offset);
    if (s->n_attrs) {
        W(p, ",\"attributes\":[");
        for (int i = 0; i < s->n_attrs; i++) {
            if (i) *p++ = ',';
            p = w_attr(p, s->attrs[i].key, s->attrs[i].is_int, s->attrs[i].i, s->attrs[i].s);
        }
        *p++ = ']';
    }
    if (s->n_events) {
        W(p, ",\"events\":[");
        for (int i = 0; i < s->n_events; i++) {
            const celer_span_event *e = &s->events[i];
            if (i) *p++ = ',';
            W(p, "{\"timeUnixNano\":");
            p = w_nanos(p, e->t_ns + offset);
            W(p, ",\"name\":");
            p = w_cstr(p, e->name);
            if (e->attr) {
                W(p, ",\"attributes\":[");
                p = w_attr(p, e->attr, true, e->attr_value, NULL);
                *p++ = ']';
            }
            *p++ = '}';
        }
        *p++ = ']';
    }
    W(p, ",\"status\":{\"code\":"); /* kept at UNSET (0): readers look for it */
    p = w_int(p, s->status);
    if (s->status == 2 && s->status_message[0]) {
        W(p, ",\"message\":");
        p = w_cstr(p, s->status_message);
    }
    *p++ = '}';
    if (s->n_links) {
        W(p, ",\"links\":[");
        for (int i = 0; i < s->n_links; i++) {
            const celer_span_link *l = &s->links[i];
            if (i) *p++ = ',';
            W(p, "{\"traceId\":");
            p = w_hex(p, l->trace_id, 16);
            W(p, ",\"spanId\":");
            p = w_hex(p, l->span_id, 8);
            W(p, ",\"flags\":");
            p = w_int(p, 0x100 | l->flags); /* the linked span is this process's */
            *p++ = '}';
        }
        *p++ = ']';
    }
    if (s->dropped_links) {
        W(p, ",\"droppedLinksCount\":");
        p = w_int(p, s->dropped_links);
    }
    /* flags: W3C flags in bits 0-7; bit 8: whether the parent's remoteness is known, bit 9: remote */
    W(p, ",\"flags\":");
    p = w_int(p, s->flags | 0x100 | (s->parent_remote ? 0x200 : 0));
    *p++ = '}';
    return p;
}

#define LIT(b, s) celer_jbuf_raw(b, s, sizeof(s) - 1)

static void put_attr(celer_jbuf *b, const char *key, bool is_int, int64_t i, const char *s) {
    char buf[1024]; /* a key and value of 255 bytes each, escaped */
    char *end = w_attr(buf, key, is_int, i, s);
    celer_jbuf_raw(b, buf, (size_t)(end - buf));
}

/* The resource, built once at start: service.name, telemetry.sdk.*, OTEL_RESOURCE_ATTRIBUTES. */
#define SDK_ATTR(k, v) "{\"key\":\"" k "\",\"value\":{\"stringValue\":\"" v "\"}}"
static char resource_json[RESOURCE_MAX] =
    "{\"attributes\":[" SDK_ATTR("service.name", "celer") "," SDK_ATTR("telemetry.sdk.language", "c") ","
    SDK_ATTR("telemetry.sdk.name", "celer") "," SDK_ATTR("telemetry.sdk.version", CELER_SERVER_VERSION)
    "],\"droppedAttributesCount\":0}";

void celer_trace_export_json(const celer_span *spans, int n, int64_t offset_ns, celer_jbuf *out) {
    LIT(out, "{\"resourceSpans\":[{\"resource\":");
    celer_jbuf_raw(out, resource_json, strlen(resource_json));
    LIT(out, ",\"scopeSpans\":[{\"scope\":{\"name\":\"celer\",\"version\":\"" CELER_SERVER_VERSION "\"},\"spans\":[");
    for (int i = 0; i < n; i++) { /* formatted in place: no copy of the body */
        if (i + 2 < n) prefetch_span(&spans[i + 2]);
        char *p = celer_jbuf_reserve(out, SPAN_JSON_MAX + 1), *start = p;
        if (!p) return; /* out->status says why */
        if (i) *p++ = ',';
        p = span_json(&spans[i], offset_ns, p);
        celer_jbuf_commit(out, (size_t)(p - start));
    }
    LIT(out, "]}]}]}");
}

/* Percent-decodes OTEL_RESOURCE_ATTRIBUTES text (W3C Baggage's encoding) into out (cap bytes). */
static void pct_decode(const char *s, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (s[i] == '%' && i + 2 < n + 0 && hexval((char)(s[i + 1] | 0x20)) >= 0 && hexval((char)(s[i + 2] | 0x20)) >= 0) {
            out[o++] = (char)(hexval((char)(s[i + 1] | 0x20)) << 4 | hexval((char)(s[i + 2] | 0x20)));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = 0;
}

/* ---- OTLP/HTTP protobuf: ExportTraceServiceRequest (opentelemetry-proto collector/trace/v1,
 * trace/v1, common/v1, resource/v1), encoded by hand. Fields at their proto3 default are left out
 * (a oneof's value is always written: its presence is the case). Field numbers and wire types are
 * the TAG_* bytes below.
 *
 * Sizes: a length-delimited field needs its length before its bytes. Everything inside a span is
 * small and bounded, so span_pb computes its parts' sizes from the fields first (lengths kept in a
 * few local arrays, not computed twice) and writes canonical varints. The two messages that hold a
 * whole post (ResourceSpans, ScopeSpans) are sized after their spans: the spans are written after
 * room for the largest header, which then goes right-aligned in front of them, so the body starts a
 * few bytes into the buffer. That keeps every varint minimal (no padded "redundant" varint, which
 * parsers accept but is not what protobuf's own encoders write) and needs no patch or copy. ---- */

/* Room for the largest span: ids, a 512-byte tracestate, the name, 8 attributes and 8 events whose
 * static keys and names are cut at KEY_PB_MAX, 32 links, the status message: about 10 KB. */
#define SPAN_PB_MAX (16 * 1024)
#define KEY_PB_MAX 255 /* attribute keys and event names are static text; cut to bound SPAN_PB_MAX */

enum { /* (field number << 3) | wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    TAG_REQ_RESOURCE_SPANS = 0x0a,                        /* ExportTraceServiceRequest.resource_spans = 1 */
    TAG_RS_RESOURCE = 0x0a, TAG_RS_SCOPE_SPANS = 0x12,    /* ResourceSpans */
    TAG_RES_ATTRIBUTES = 0x0a,                            /* Resource.attributes = 1 */
    TAG_SS_SCOPE = 0x0a, TAG_SS_SPANS = 0x12,             /* ScopeSpans */
    TAG_SCOPE_NAME = 0x0a, TAG_SCOPE_VERSION = 0x12,      /* InstrumentationScope */
    TAG_KV_KEY = 0x0a, TAG_KV_VALUE = 0x12,               /* KeyValue */
    TAG_ANY_STRING = 0x0a, TAG_ANY_INT = 0x18,            /* AnyValue.string_value = 1, int_value = 3 */
    TAG_TRACE_ID = 0x0a, TAG_SPAN_ID = 0x12, TAG_TRACE_STATE = 0x1a, TAG_PARENT = 0x22, TAG_NAME = 0x2a,
    TAG_KIND = 0x30, TAG_START = 0x39, TAG_END = 0x41, TAG_ATTRIBUTES = 0x4a, TAG_EVENTS = 0x5a, TAG_LINKS = 0x6a,
    TAG_DROPPED_LINKS = 0x70, TAG_STATUS = 0x7a,          /* Span; flags = 16 is two bytes: 0x85 0x01 */
    TAG_EVENT_TIME = 0x09, TAG_EVENT_NAME = 0x12, TAG_EVENT_ATTRIBUTES = 0x1a, /* Span.Event */
    TAG_LINK_TRACE_ID = 0x0a, TAG_LINK_SPAN_ID = 0x12, TAG_LINK_FLAGS = 0x35,  /* Span.Link */
    TAG_STATUS_MESSAGE = 0x12, TAG_STATUS_CODE = 0x18,    /* Status */
};

static size_t vsize(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* A length-delimited field of n bytes: its one-byte tag, its length, the bytes. */
static size_t field_size(size_t n) { return 1 + vsize(n) + n; }

static uint8_t *pb_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *pb_fixed64(uint8_t *p, uint8_t tag, uint64_t v) {
    *p++ = tag;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); /* little-endian, whatever the host */
    return p + 8;
}

static uint8_t *pb_bytes(uint8_t *p, uint8_t tag, const void *s, size_t n) {
    *p++ = tag;
    p = pb_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

/* Replaces what is not UTF-8 in p[0..n) with '?' (same length): protobuf strings must be UTF-8, and
 * receivers refuse the whole post otherwise (a name cut mid-character, a model's odd bytes). */
static void utf8_repair(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (k && i + k <= n && (k == 1 || celer_json_utf8_valid((const char *)p + i, k))) {
            i += k;
        } else {
            p[i++] = '?';
        }
    }
}

/* A string field from input (names, values, messages): bytes copied, then checked, eight at a time
 * (nearly always ASCII). Static text (keys, event names) goes through pb_bytes unchecked. */
static uint8_t *pb_text(uint8_t *p, uint8_t tag, const char *s, size_t n) {
    p = pb_bytes(p, tag, s, n);
    uint64_t high = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        high |= w;
    }
    for (; i < n; i++) high |= (uint8_t)s[i];
    if (high & 0x8080808080808080ULL) utf8_repair(p - n, n);
    return p;
}

/* AnyValue of a string (slen bytes) or an int64 (negative: ten bytes, two's complement). */
static size_t any_size(bool is_int, int64_t i, size_t slen) {
    return is_int ? 1 + vsize((uint64_t)i) : field_size(slen);
}

/* A KeyValue message's size (without its own tag and length). */
static size_t kv_size(size_t klen, bool is_int, int64_t i, size_t slen) {
    return field_size(klen) + field_size(any_size(is_int, i, slen));
}

/* A KeyValue field: tag, length (size, from kv_size), key, value. `checked`: the key is input (the
 * resource's), not celer's static text, and must be made UTF-8. */
static uint8_t *pb_kv(uint8_t *p, uint8_t tag, size_t size, const char *key, size_t klen, bool checked, bool is_int,
                      int64_t i, const char *s, size_t slen) {
    *p++ = tag;
    p = pb_varint(p, size);
    p = checked ? pb_text(p, TAG_KV_KEY, key, klen) : pb_bytes(p, TAG_KV_KEY, key, klen);
    *p++ = TAG_KV_VALUE;
    p = pb_varint(p, any_size(is_int, i, slen));
    if (is_int) {
        *p++ = TAG_ANY_INT;
        return pb_varint(p, (uint64_t)i);
    }
    return pb_text(p, TAG_ANY_STRING, s, slen);
}

#define LINK_PB_SIZE (18 + 10 + 5) /* trace id, span id, flags (fixed32, never 0) */

/* One Span field (tag, length, message) at p, which has SPAN_PB_MAX bytes. */
static uint8_t *span_pb(const celer_span *s, int64_t offset, uint8_t *p) {
    size_t klen[CELER_SPAN_MAX_ATTRS], slen[CELER_SPAN_MAX_ATTRS], attr[CELER_SPAN_MAX_ATTRS];
    size_t enlen[CELER_SPAN_MAX_EVENTS], eklen[CELER_SPAN_MAX_EVENTS], eattr[CELER_SPAN_MAX_EVENTS],
        event[CELER_SPAN_MAX_EVENTS];
    size_t name_len = s->name_len, msg_len = s->status == 2 ? strnlen(s->status_message,
                                                                                             sizeof s->status_message) : 0;
    uint64_t start = (uint64_t)(s->start_ns + offset), end = (uint64_t)(s->end_ns + offset);
    size_t size = 18 + 10 + (s->has_parent ? 10 : 0) + 6; /* ids, parent, flags (fixed32, bit 8 always set) */
    if (s->state_len) size += field_size(s->state_len);
    if (name_len) size += field_size(name_len);
    if (s->kind) size += 2;
    if (start) size += 9;
    if (end) size += 9;
    for (int i = 0; i < s->n_attrs; i++) {
        const celer_span_attr *a = &s->attrs[i];
        klen[i] = strnlen(a->key, KEY_PB_MAX);
        slen[i] = a->is_int ? 0 : a->s_len;
        attr[i] = kv_size(klen[i], a->is_int, a->i, slen[i]);
        size += field_size(attr[i]);
    }
    for (int i = 0; i < s->n_events; i++) {
        const celer_span_event *e = &s->events[i];
        enlen[i] = strnlen(e->name, KEY_PB_MAX);
        event[i] = 9 + (enlen[i] ? field_size(enlen[i]) : 0);
        eklen[i] = eattr[i] = 0;
        if (e->attr) {
            eklen[i] = strnlen(e->attr, KEY_PB_MAX);
            eattr[i] = kv_size(eklen[i], true, e->attr_value, 0);
            event[i] += field_size(eattr[i]);
        }
        size += field_size(event[i]);
    }
    size += (size_t)s->n_links * field_size(LINK_PB_SIZE);
    if (s->dropped_links) size += 1 + vsize((uint64_t)s->dropped_links);
    size_t status = (msg_len ? field_size(msg_len) : 0) + (s->status ? 2 : 0);
    size += field_size(status); /* written even when empty (UNSET), as the official exporter does */

    *p++ = TAG_SS_SPANS;
    p = pb_varint(p, size);
    p = pb_bytes(p, TAG_TRACE_ID, s->trace_id, 16);
    p = pb_bytes(p, TAG_SPAN_ID, s->span_id, 8);
    if (s->state_len) p = pb_bytes(p, TAG_TRACE_STATE, s->state, s->state_len); /* visible ASCII (parse_state) */
    if (s->has_parent) p = pb_bytes(p, TAG_PARENT, s->parent_id, 8);
    if (name_len) p = pb_text(p, TAG_NAME, s->name, name_len);
    if (s->kind) *p++ = TAG_KIND, *p++ = s->kind;
    if (start) p = pb_fixed64(p, TAG_START, start);
    if (end) p = pb_fixed64(p, TAG_END, end);
    for (int i = 0; i < s->n_attrs; i++) {
        const celer_span_attr *a = &s->attrs[i];
        p = pb_kv(p, TAG_ATTRIBUTES, attr[i], a->key, klen[i], false, a->is_int, a->i, a->s, slen[i]);
    }
    for (int i = 0; i < s->n_events; i++) {
        const celer_span_event *e = &s->events[i];
        *p++ = TAG_EVENTS;
        p = pb_varint(p, event[i]);
        p = pb_fixed64(p, TAG_EVENT_TIME, (uint64_t)(e->t_ns + offset));
        if (enlen[i]) p = pb_bytes(p, TAG_EVENT_NAME, e->name, enlen[i]);
        if (e->attr) p = pb_kv(p, TAG_EVENT_ATTRIBUTES, eattr[i], e->attr, eklen[i], false, true, e->attr_value, NULL, 0);
    }
    for (int i = 0; i < s->n_links; i++) {
        const celer_span_link *l = &s->links[i];
        *p++ = TAG_LINKS;
        *p++ = LINK_PB_SIZE;
        p = pb_bytes(p, TAG_LINK_TRACE_ID, l->trace_id, 16);
        p = pb_bytes(p, TAG_LINK_SPAN_ID, l->span_id, 8);
        uint32_t f = 0x100u | l->flags; /* the linked span is this process's */
        *p++ = TAG_LINK_FLAGS;
        for (int b = 0; b < 4; b++) *p++ = (uint8_t)(f >> (8 * b));
    }
    if (s->dropped_links) *p++ = TAG_DROPPED_LINKS, p = pb_varint(p, (uint64_t)s->dropped_links);
    *p++ = TAG_STATUS;
    p = pb_varint(p, status);
    if (msg_len) p = pb_text(p, TAG_STATUS_MESSAGE, s->status_message, msg_len);
    if (s->status) *p++ = TAG_STATUS_CODE, *p++ = s->status;
    /* flags = 16 (fixed32): W3C flags in bits 0-7; bit 8: whether the parent's remoteness is known, bit 9: remote */
    uint32_t f = s->flags | 0x100u | (s->parent_remote ? 0x200u : 0);
    *p++ = 0x85, *p++ = 0x01;
    for (int b = 0; b < 4; b++) *p++ = (uint8_t)(f >> (8 * b));
    return p;
}

/* The Resource and InstrumentationScope fields, each with its tag and length, built once at start
 * (build_resource) from the same attributes as the JSON's. */
static uint8_t resource_pb[RESOURCE_MAX], scope_pb[64];
static size_t resource_pb_len, scope_pb_len;

/* resource_pb from n attributes (NUL-terminated keys and values, each under 128 bytes). */
static void build_resource_pb(const char (*keys)[100], const char (*vals)[100], int n) {
    size_t body = 0, kl[64], vl[64], kv[64];
    for (int i = 0; i < n; i++) {
        kl[i] = strlen(keys[i]), vl[i] = strlen(vals[i]);
        kv[i] = kv_size(kl[i], false, 0, vl[i]);
        body += field_size(kv[i]);
    }
    uint8_t *p = resource_pb;
    *p++ = TAG_RS_RESOURCE;
    p = pb_varint(p, body);
    for (int i = 0; i < n; i++) p = pb_kv(p, TAG_RES_ATTRIBUTES, kv[i], keys[i], kl[i], true, false, 0, vals[i], vl[i]);
    resource_pb_len = (size_t)(p - resource_pb);
    static const char name[] = "celer", version[] = CELER_SERVER_VERSION;
    p = scope_pb;
    *p++ = TAG_SS_SCOPE;
    p = pb_varint(p, field_size(sizeof name - 1) + field_size(sizeof version - 1));
    p = pb_text(p, TAG_SCOPE_NAME, name, sizeof name - 1);
    p = pb_text(p, TAG_SCOPE_VERSION, version, sizeof version - 1);
    scope_pb_len = (size_t)(p - scope_pb);
}

static void build_resource(void);

size_t celer_trace_export_proto(const celer_span *spans, int n, int64_t offset_ns, celer_jbuf *out) {
    if (!resource_pb_len) build_resource();
    size_t head_max = 2 * (1 + 5) + resource_pb_len + scope_pb_len; /* lengths up to 2^35 (the body is capped far below) */
    if (!celer_jbuf_reserve(out, head_max)) return 0;
    celer_jbuf_commit(out, head_max);
    for (int i = 0; i < n; i++) { /* written in place: no copy of the body */
        if (i + 2 < n) prefetch_span(&spans[i + 2]);
        uint8_t *p = (uint8_t *)celer_jbuf_reserve(out, SPAN_PB_MAX);
        if (!p) return 0; /* out->status says why */
        celer_jbuf_commit(out, (size_t)(span_pb(&spans[i], offset_ns, p) - p));
    }
    size_t spans_len = out->len - head_max;
    size_t ss = scope_pb_len + spans_len, rs = resource_pb_len + 1 + vsize(ss) + ss;
    size_t head = 1 + vsize(rs) + resource_pb_len + 1 + vsize(ss) + scope_pb_len;
    uint8_t *p = (uint8_t *)out->data + head_max - head;
    *p++ = TAG_REQ_RESOURCE_SPANS;
    p = pb_varint(p, rs);
    memcpy(p, resource_pb, resource_pb_len);
    p += resource_pb_len;
    *p++ = TAG_RS_SCOPE_SPANS;
    p = pb_varint(p, ss);
    memcpy(p, scope_pb, scope_pb_len);
    return head_max - head;
}

#define RESOURCE_ATTRS 16 /* service.name, telemetry.sdk.* and up to 12 of OTEL_RESOURCE_ATTRIBUTES' */

/* The resource of both encodings (resource_json, resource_pb, scope_pb): service.name (from
 * OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES', else "celer"), telemetry.sdk.*, then the other
 * pairs of OTEL_RESOURCE_ATTRIBUTES (keys and values cut at 99 bytes). */
static void build_resource(void) {
    char keys[RESOURCE_ATTRS][100] = {"service.name", "telemetry.sdk.language", "telemetry.sdk.name", "telemetry.sdk.version"};
    char vals[RESOURCE_ATTRS][100] = {"celer", "c", "celer", CELER_SERVER_VERSION};
    int n = 4;
    const char *ra = getenv("OTEL_RESOURCE_ATTRIBUTES");
    for (const char *p = ra; p && *p;) {
        const char *end = strchr(p, ','), *eq;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        eq = memchr(p, '=', len);
        if (eq) {
            char key[100], val[100];
            while (*p == ' ') p++, len--;
            pct_decode(p, (size_t)(eq - p), key, sizeof key);
            pct_decode(eq + 1, len - (size_t)(eq + 1 - p), val, sizeof val);
            if (!strcmp(key, "service.name")) copy_text(vals[0], sizeof vals[0], val);
            else if (key[0] && strncmp(key, "telemetry.sdk.", 14) && n < RESOURCE_ATTRS) {
                copy_text(keys[n], sizeof keys[n], key);
                copy_text(vals[n], sizeof vals[n], val);
                n++;
            }
        }
        p = end ? end + 1 : p + len;
    }
    const char *sn = getenv("OTEL_SERVICE_NAME");
    if (sn && *sn) copy_text(vals[0], sizeof vals[0], sn);
    celer_jbuf b;
    celer_jbuf_init(&b, RESOURCE_MAX - 1);
    LIT(&b, "{\"attributes\":[");
    for (int i = 0; i < n; i++) {
        if (i) LIT(&b, ",");
        put_attr(&b, keys[i], false, 0, vals[i]);
    }
    LIT(&b, "],\"droppedAttributesCount\":0}");
    if (!b.status && b.len < sizeof resource_json) {
        memcpy(resource_json, b.data, b.len);
        resource_json[b.len] = 0;
    }
    celer_jbuf_free(&b);
    build_resource_pb(keys, vals, n);
}

/* ---- the ring: workers copy finished spans in; the exporter reads the oldest in place ----
 * Slots [head, head + count) are queued. A producer writes the slot at head + count under the
 * lock; the exporter reads up to EXPORT_BATCH queued slots without it (no producer writes them
 * while they count) and gives them back by moving head. */

struct celer_trace_ring {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    celer_span *slots;
    int cap, head, count;
    atomic_ullong dropped;
};

celer_status celer_trace_ring_new(int capacity, celer_trace_ring **out) {
    celer_trace_ring *r = celer_calloc(1, sizeof *r);
    if (!r || !(r->slots = celer_malloc(sizeof *r->slots * (size_t)capacity))) {
        free(r);
        return celer_errorf(CELER_ERR_NOMEM, "out of memory for the trace queue (%d spans)", capacity);
    }
    r->cap = capacity;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    *out = r;
    return CELER_OK;
}

/* Copies the used parts of span s (a request's is about 800 of its 4 KiB bytes). */
static void copy_span(celer_span *dst, const celer_span *s) {
    memcpy(dst, s, offsetof(celer_span, attrs));
    memcpy(dst->attrs, s->attrs, sizeof s->attrs[0] * (size_t)s->n_attrs);
    memcpy(dst->events, s->events, sizeof s->events[0] * (size_t)s->n_events);
    memcpy(dst->links, s->links, sizeof s->links[0] * (size_t)s->n_links);
    if (s->status) memcpy(dst->status_message, s->status_message, sizeof s->status_message);
    /* only when there is one: the encoders read state_len bytes, and the NUL alone cost a cache line
     * 2 KB away (a request's span is 13 lines of the ring's 8 MB, all cold) */
    if (s->state_len) memcpy(dst->state, s->state, s->state_len + 1);
}

bool celer_trace_ring_push(celer_trace_ring *r, const celer_span *s) {
    pthread_mutex_lock(&r->mu);
    if (r->count == r->cap) {
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return false;
    }
    celer_span *dst = &r->slots[(r->head + r->count) % r->cap];
    copy_span(dst, s);
    bool wake = ++r->count == EXPORT_BATCH;
    pthread_mutex_unlock(&r->mu);
    if (wake) pthread_cond_signal(&r->wake);
    return true;
}

int celer_trace_ring_count(celer_trace_ring *r) {
    pthread_mutex_lock(&r->mu);
    int n = r->count;
    pthread_mutex_unlock(&r->mu);
    return n;
}

uint64_t celer_trace_ring_dropped(celer_trace_ring *r) { return atomic_load(&r->dropped); }

void celer_trace_ring_free(celer_trace_ring *r) {
    if (!r) return;
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r->slots);
    free(r);
}

/* ---- settings ---- */

typedef struct trace_settings {
    int level;
    int64_t rate, count, freq;
} trace_settings;

typedef struct model_override {
    char model[256];
    bool has_level, has_rate, has_count, has_freq;
    trace_settings s;
} model_override;

static struct {
    atomic_bool exporting;                 /* an endpoint is configured and the exporter runs */
    atomic_int level;                      /* global settings, read lock-free */
    atomic_llong rate, count, freq;
    trace_settings flags;                  /* what null reverts the globals to */
    atomic_int n_overrides;                /* 0: no model has settings of its own (no lock taken) */
    pthread_mutex_t mu;                    /* overrides and changes */
    model_override *overrides;             /* MAX_OVERRIDES of them, allocated at the first */
    atomic_ullong counter;                 /* requests considered by the sampler */
} cfg = {.level = LEVEL_TIMESTAMPS, .rate = 1000, .count = -1, .flags = {LEVEL_TIMESTAMPS, 1000, -1, 0},
         .mu = PTHREAD_MUTEX_INITIALIZER};

static model_override *find_override(const char *model) {
    for (int i = 0; i < atomic_load(&cfg.n_overrides); i++)
        if (!strcmp(cfg.overrides[i].model, model)) return &cfg.overrides[i];
    return NULL;
}

/* The settings in effect for model (NULL: global). */
static trace_settings effective(const char *model) {
    trace_settings s = {atomic_load_explicit(&cfg.level, memory_order_relaxed),
                        atomic_load_explicit(&cfg.rate, memory_order_relaxed),
                        atomic_load_explicit(&cfg.count, memory_order_relaxed),
                        atomic_load_explicit(&cfg.freq, memory_order_relaxed)};
    if (!model || !model[0] || !atomic_load_explicit(&cfg.n_overrides, memory_order_acquire)) return s;
    pthread_mutex_lock(&cfg.mu);
    const model_override *o = find_override(model);
    if (o) {
        if (o->has_level) s.level = o->s.level;
        if (o->has_rate) s.rate = o->s.rate;
        if (o->has_count) s.count = o->s.count;
        if (o->has_freq) s.freq = o->s.freq;
    }
    pthread_mutex_unlock(&cfg.mu);
    return s;
}

/* trace_count: takes one trace from the global count (or the model's), unless unlimited. */
static bool take_count(const char *model) {
    if (atomic_load_explicit(&cfg.n_overrides, memory_order_acquire) && model) {
        pthread_mutex_lock(&cfg.mu);
        model_override *o = find_override(model);
        if (o && o->has_count) {
            bool ok = o->s.count != 0;
            if (o->s.count > 0) o->s.count--;
            pthread_mutex_unlock(&cfg.mu);
            return ok;
        }
        pthread_mutex_unlock(&cfg.mu);
    }
    long long c = atomic_load(&cfg.count);
    while (c > 0 && !atomic_compare_exchange_weak(&cfg.count, &c, c - 1)) {
    }
    return c != 0;
}

bool celer_trace_active(void) { return atomic_load_explicit(&cfg.exporting, memory_order_relaxed); }

bool celer_trace_sample(const char *model, const celer_trace_ctx *parent) {
    if (!atomic_load_explicit(&cfg.exporting, memory_order_relaxed)) return false;
    trace_settings s = effective(model);
    if (s.level == LEVEL_OFF) return false;
    if (parent && parent->valid && (parent->flags & 1)) return true; /* always, whatever rate and count say */
    if (s.rate <= 0) return false;
    /* every request at rate 1: no count to keep (the shared counter's line is not bounced between cores) */
    if (s.rate > 1 && atomic_fetch_add_explicit(&cfg.counter, 1, memory_order_relaxed) % (unsigned long long)s.rate)
        return false;
    return s.count < 0 || take_count(model);
}

static bool same(const char *s, size_t n, const char *lit) { return strlen(lit) == n && !memcmp(s, lit, n); }

/* A decimal integer in s[0..n) within [lo, INT64_MAX]. */
static bool parse_int(const char *s, size_t n, int64_t lo, int64_t *out) {
    char buf[24];
    if (!n || n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno || v < lo || buf[0] == ' ' || buf[0] == '+') return false;
    *out = v;
    return true;
}

celer_status celer_trace_change_set(celer_trace_change *c, const char *name, size_t name_len, const celer_trace_value *v) {
    enum { T_FILE, T_LEVEL, T_RATE, T_COUNT, T_FREQ } id;
    if (same(name, name_len, "trace_file")) id = T_FILE;
    else if (same(name, name_len, "trace_level")) id = T_LEVEL;
    else if (same(name, name_len, "trace_rate")) id = T_RATE;
    else if (same(name, name_len, "trace_count")) id = T_COUNT;
    else if (same(name, name_len, "log_frequency")) id = T_FREQ;
    else
        return celer_errorf(CELER_ERR_INVALID, "unknown trace setting '%.*s': expected trace_file, trace_level, "
                            "trace_rate, trace_count or log_frequency", (int)CELER_MIN(name_len, 64), name);
    if (v->null) {
        switch (id) {
        case T_FILE: break;
        case T_LEVEL: c->clear_level = true, c->set_level = false; break;
        case T_RATE: c->clear_rate = true, c->set_rate = false; break;
        case T_COUNT: c->clear_count = true, c->set_count = false; break;
        case T_FREQ: c->clear_freq = true, c->set_freq = false; break;
        }
        return CELER_OK;
    }
    if (v->other || v->n < 1 || (id != T_LEVEL && v->n != 1))
        return celer_errorf(CELER_ERR_INVALID, "expect %s for '%.*s'", id == T_LEVEL ? "an array of strings" : "a string",
                            (int)name_len, name);
    int64_t x;
    switch (id) {
    case T_FILE:
        if (v->len[0])
            return celer_errorf(CELER_ERR_INVALID, "trace file location can not be updated through network protocol: "
                                "celer exports spans over OTLP (trace_file \"\")");
        break;
    case T_LEVEL: {
        bool off = false, ts = false;
        for (int i = 0; i < v->n; i++) {
            if (same(v->s[i], v->len[i], "OFF")) off = true;
            else if (same(v->s[i], v->len[i], "TIMESTAMPS")) ts = true;
            else if (same(v->s[i], v->len[i], "TENSORS"))
                return celer_errorf(CELER_ERR_INVALID, "trace_level TENSORS is not supported: celer exports "
                                    "OpenTelemetry spans, which carry timestamps only (as Triton's OpenTelemetry mode)");
            else
                return celer_errorf(CELER_ERR_INVALID, "invalid trace_level '%.*s': expected OFF, TIMESTAMPS (or "
                                    "TENSORS, not supported)", (int)CELER_MIN(v->len[i], 64), v->s[i]);
        }
        if (off && ts) return celer_errorf(CELER_ERR_INVALID, "trace_level OFF cannot be given with TIMESTAMPS");
        c->set_level = true, c->clear_level = false, c->level = ts ? LEVEL_TIMESTAMPS : LEVEL_OFF;
        break;
    }
    case T_RATE:
        if (!parse_int(v->s[0], v->len[0], 0, &x))
            return celer_errorf(CELER_ERR_INVALID, "Unable to parse 'trace_rate', got: %.*s (expected an integer >= 0: "
                                "1 in N requests; 0 = only those with a sampled parent)", (int)CELER_MIN(v->len[0], 64), v->s[0]);
        c->set_rate = true, c->clear_rate = false, c->rate = x;
        break;
    case T_COUNT:
        if (!parse_int(v->s[0], v->len[0], -1, &x))
            return celer_errorf(CELER_ERR_INVALID, "Unable to parse 'trace_count', got: %.*s (expected an integer >= -1; "
                                "-1 = unlimited)", (int)CELER_MIN(v->len[0], 64), v->s[0]);
        c->set_count = true, c->clear_count = false, c->count = x;
        break;
    case T_FREQ:
        if (!parse_int(v->s[0], v->len[0], 0, &x))
            return celer_errorf(CELER_ERR_INVALID, "Unable to parse 'log_frequency', got: %.*s (expected an integer >= 0)",
                                (int)CELER_MIN(v->len[0], 64), v->s[0]);
        c->set_freq = true, c->clear_freq = false, c->freq = x;
        break;
    }
    return CELER_OK;
}

celer_status celer_trace_change_apply(const char *model, const celer_trace_change *c) {
    pthread_mutex_lock(&cfg.mu);
    if (!model || !model[0]) {
        if (c->set_level || c->clear_level) atomic_store(&cfg.level, c->set_level ? c->level : cfg.flags.level);
        if (c->set_rate || c->clear_rate) atomic_store(&cfg.rate, c->set_rate ? c->rate : cfg.flags.rate);
        if (c->set_count || c->clear_count) atomic_store(&cfg.count, c->set_count ? c->count : cfg.flags.count);
        if (c->set_freq || c->clear_freq) atomic_store(&cfg.freq, c->set_freq ? c->freq : cfg.flags.freq);
        pthread_mutex_unlock(&cfg.mu);
        return CELER_OK;
    }
    model_override *o = find_override(model);
    if (!o) {
        bool any = c->set_level || c->set_rate || c->set_count || c->set_freq;
        if (!any) { /* only nulls: nothing to keep */
            pthread_mutex_unlock(&cfg.mu);
            return CELER_OK;
        }
        if (!cfg.overrides && !(cfg.overrides = celer_calloc(MAX_OVERRIDES, sizeof *cfg.overrides))) {
            pthread_mutex_unlock(&cfg.mu);
            return celer_errorf(CELER_ERR_NOMEM, "out of memory for the model's trace settings");
        }
        int n = atomic_load(&cfg.n_overrides);
        if (n == MAX_OVERRIDES || strlen(model) >= sizeof o->model) {
            pthread_mutex_unlock(&cfg.mu);
            return celer_errorf(CELER_ERR_LIMIT, "trace settings of their own for %d models at most (names up to 255 "
                                "bytes)", MAX_OVERRIDES);
        }
        o = &cfg.overrides[n];
        *o = (model_override){0};
        copy_text(o->model, sizeof o->model, model);
        atomic_store_explicit(&cfg.n_overrides, n + 1, memory_order_release); /* readers take the lock to read it */
    }
    if (c->set_level || c->clear_level) o->has_level = c->set_level, o->s.level = c->level;
    if (c->set_rate || c->clear_rate) o->has_rate = c->set_rate, o->s.rate = c->rate;
    if (c->set_count || c->clear_count) o->has_count = c->set_count, o->s.count = c->count;
    if (c->set_freq || c->clear_freq) o->has_freq = c->set_freq, o->s.freq = c->freq;
    pthread_mutex_unlock(&cfg.mu);
    return CELER_OK;
}

void celer_trace_settings(const char *model,
                          void (*each)(void *user, const char *name, const char *const *values, int n), void *user) {
    trace_settings s = effective(model);
    char rate[24], count[24], freq[24];
    snprintf(rate, sizeof rate, "%lld", (long long)s.rate);
    snprintf(count, sizeof count, "%lld", (long long)s.count);
    snprintf(freq, sizeof freq, "%lld", (long long)s.freq);
    const char *file = "", *level = s.level == LEVEL_OFF ? "OFF" : "TIMESTAMPS", *r = rate, *c = count, *f = freq;
    each(user, "trace_file", &file, 1);
    each(user, "trace_level", &level, 1);
    each(user, "trace_rate", &r, 1);
    each(user, "trace_count", &c, 1);
    each(user, "log_frequency", &f, 1);
}

/* ---- the exporter thread ---- */

static struct {
    celer_trace_ring *ring;
    char *url;
    bool json; /* http/json; else http/protobuf */
    pthread_t thread;
    bool started, stop; /* stop: under ring->mu */
    atomic_ullong exported, failed, retries;
} ex;

void celer_span_end(celer_span *s, int64_t end_ns) {
    s->end_ns = end_ns;
    if (ex.ring) celer_trace_ring_push(ex.ring, s);
}

static size_t discard_body(char *p, size_t size, size_t n, void *user) {
    (void)p, (void)user;
    return size * n;
}

/* Retry-After in seconds (an HTTP date is not read: the backoff applies then). */
static size_t read_header(char *p, size_t size, size_t n, void *user) {
    size_t len = size * n;
    long *retry_after = user;
    if (len > 12 && !strncasecmp(p, "retry-after:", 12)) {
        long v = strtol(p + 12, NULL, 10);
        if (v > 0) *retry_after = CELER_MIN(v, 30);
    }
    return len;
}

/* Whether the exporter is stopping (its waits end early then). */
static bool stopping(void) {
    pthread_mutex_lock(&ex.ring->mu);
    bool s = ex.stop;
    pthread_mutex_unlock(&ex.ring->mu);
    return s;
}

/* Sleeps ms, or until stop. */
static void pause_ms(long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
    pthread_mutex_lock(&ex.ring->mu);
    while (!ex.stop && pthread_cond_timedwait(&ex.ring->wake, &ex.ring->mu, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&ex.ring->mu);
}

/* Posts one body: retried on 429/502/503/504 and on failures to connect, with backoff (or the
 * receiver's Retry-After), unless `once`. Returns whether it was accepted (2xx). */
static bool post(CURL *h, const char *body, size_t len, bool once) {
    long backoff_ms = 500;
    for (int attempt = 1;; attempt++) {
        long status = 0, retry_after = 0;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) return true;
        bool retryable = rc != CURLE_OK || status == 429 || status == 502 || status == 503 || status == 504;
        if (!retryable || once || attempt == MAX_ATTEMPTS || stopping()) {
            if (rc != CURLE_OK)
                celer_log(CELER_LOG_WARNING, "trace export to %s failed: %s", ex.url, curl_easy_strerror(rc));
            else
                celer_log(CELER_LOG_WARNING, "trace export to %s answered %ld: spans dropped", ex.url, status);
            return false;
        }
        atomic_fetch_add(&ex.retries, 1);
        pause_ms(retry_after ? retry_after * 1000 : backoff_ms);
        backoff_ms = CELER_MIN(backoff_ms * 2, 8000);
    }
}

static int64_t unix_offset(void) {
    struct timespec rt, mt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    return ((int64_t)rt.tv_sec - (int64_t)mt.tv_sec) * 1000000000 + (rt.tv_nsec - mt.tv_nsec);
}

/* Posts the queued spans, EXPORT_BATCH at a time. */
static void export_queued(CURL *h, celer_jbuf *body, bool once) {
    celer_trace_ring *r = ex.ring;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int head = r->head, n = CELER_MIN(r->count, EXPORT_BATCH);
        pthread_mutex_unlock(&r->mu);
        if (!n) return;
        n = CELER_MIN(n, r->cap - head); /* the contiguous part; the rest next turn */
        celer_jbuf_reset(body);
        size_t start = 0;
        if (ex.json) celer_trace_export_json(&r->slots[head], n, unix_offset(), body);
        else start = celer_trace_export_proto(&r->slots[head], n, unix_offset(), body);
        bool ok = !body->status && post(h, body->data + start, body->len - start, once);
        bool give_up = !ok && (once || stopping()); /* shutting down: one failure ends the export */
        pthread_mutex_lock(&r->mu);
        if (give_up) n = r->count; /* the rest is counted failed with it */
        r->head = (r->head + n) % r->cap;
        r->count -= n;
        pthread_mutex_unlock(&r->mu);
        atomic_fetch_add(ok ? &ex.exported : &ex.failed, (unsigned long long)n);
        if (give_up) return;
    }
}

static void *exporter_main(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "celer-trace"); /* for top and perf */
    CURL *h = curl_easy_init();
    struct curl_slist *hdr =
        curl_slist_append(NULL, ex.json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
    /* no "Expect: 100-continue" (libcurl asks it of bodies over 1 MB, which 1024 large spans can
     * be): a round trip per post, or a 1 s wait with a receiver that does not answer it */
    struct curl_slist *more = hdr ? curl_slist_append(hdr, "Expect:") : NULL;
    if (more) hdr = more;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, ex.url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, read_header);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "celer/" CELER_SERVER_VERSION);
    }
    celer_jbuf body;
    celer_jbuf_init(&body, 0);
    celer_trace_ring *r = ex.ring;
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += EXPORT_EVERY_NS / 1000000000;
        pthread_mutex_lock(&r->mu);
        while (!ex.stop && r->count < EXPORT_BATCH &&
               pthread_cond_timedwait(&r->wake, &r->mu, &until) != ETIMEDOUT) {
        }
        bool stop = ex.stop;
        pthread_mutex_unlock(&r->mu);
        if (h && stop) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L); /* shutdown waits this long at most */
        if (h) export_queued(h, &body, stop);
        if (stop) break;
    }
    celer_jbuf_free(&body);
    curl_slist_free_all(hdr);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

static double m_dropped(void *u) { return (double)celer_trace_ring_dropped(u); }
static double m_exported(void *u) { return (double)atomic_load((atomic_ullong *)u); }

static celer_status parse_level(const char *s, int *out) {
    if (!strcmp(s, "OFF") || !strcmp(s, "off")) *out = LEVEL_OFF;
    else if (!strcmp(s, "TIMESTAMPS") || !strcmp(s, "timestamps")) *out = LEVEL_TIMESTAMPS;
    else return celer_errorf(CELER_ERR_INVALID, "--trace-level must be OFF or TIMESTAMPS, not '%s'", s);
    return CELER_OK;
}

/* The OTLP protocol: --trace-otlp-protocol, else OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
 * OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the OpenTelemetry SDKs' default). The variables
 * are read only when tracing is on; the flag is always checked. */
static celer_status parse_protocol(const char *flag, bool tracing, bool *json) {
    const char *v = flag, *from = "--trace-otlp-protocol";
    if (tracing && (!v || !*v)) v = getenv(from = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    if (tracing && (!v || !*v)) v = getenv(from = "OTEL_EXPORTER_OTLP_PROTOCOL");
    if (!v || !*v) v = "http/protobuf";
    if (!strcmp(v, "http/protobuf") || !strcmp(v, "http/json")) {
        *json = !strcmp(v, "http/json");
        return CELER_OK;
    }
    if (!strcmp(v, "grpc"))
        return celer_errorf(CELER_ERR_INVALID, "%s: OTLP over gRPC is not supported, expected http/protobuf or "
                            "http/json (OTLP over HTTP)", from);
    return celer_errorf(CELER_ERR_INVALID, "%s must be http/protobuf or http/json, not '%.64s'", from, v);
}

celer_status celer_trace_start(const celer_server_options *opts, celer_metrics *metrics) {
    int level;
    CELER_TRY(parse_protocol(opts->trace_otlp_protocol, false, &ex.json));
    CELER_TRY(parse_level(opts->trace_level ? opts->trace_level : "TIMESTAMPS", &level));
    if (opts->trace_rate < 0) return celer_errorf(CELER_ERR_INVALID, "--trace-rate must be 0 or more, not %d", opts->trace_rate);
    cfg.flags = (trace_settings){level, opts->trace_rate, -1, 0};
    atomic_store(&cfg.level, level);
    atomic_store(&cfg.rate, opts->trace_rate);
    atomic_store(&cfg.count, -1);
    atomic_store(&cfg.freq, 0);
    char url[2048] = "";
    const char *traces = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (opts->trace_otlp_url && opts->trace_otlp_url[0]) snprintf(url, sizeof url, "%s", opts->trace_otlp_url);
    else if (traces && traces[0]) snprintf(url, sizeof url, "%s", traces); /* used as given */
    else if (base && base[0]) {                                           /* a base URL */
        size_t n = strlen(base);
        while (n && base[n - 1] == '/') n--;
        snprintf(url, sizeof url, "%.*s/v1/traces", (int)CELER_MIN(n, 2000), base);
    }
    if (!url[0]) return CELER_OK; /* tracing off */
    CELER_TRY(parse_protocol(opts->trace_otlp_protocol, true, &ex.json));
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return celer_errorf(CELER_ERR_INVALID, "--trace-otlp-url must be an http:// or https:// URL, not '%s'", url);
    build_resource();
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return celer_errorf(CELER_ERR_INTERNAL, "libcurl could not start");
    CELER_TRY(celer_trace_ring_new(RING_SPANS, &ex.ring));
    ex.url = strdup(url);
    if (!ex.url || pthread_create(&ex.thread, NULL, exporter_main, NULL)) {
        celer_trace_ring_free(ex.ring);
        ex.ring = NULL;
        free(ex.url);
        return celer_errorf(CELER_ERR_NOMEM, "cannot start the trace exporter");
    }
    ex.started = true;
    celer_metrics_counter_fn(metrics, "celer_trace_spans_dropped_total", "Spans dropped because the export queue was full.",
                             "", m_dropped, ex.ring);
    celer_metrics_counter_fn(metrics, "celer_trace_spans_exported_total", "Spans the OTLP receiver accepted.", "",
                             m_exported, &ex.exported);
    celer_metrics_counter_fn(metrics, "celer_trace_spans_failed_total",
                             "Spans given up: the receiver refused them or could not be reached after retries.", "",
                             m_exported, &ex.failed);
    celer_metrics_counter_fn(metrics, "celer_trace_export_retries_total", "Posts of spans retried (429, 502, 503, 504, "
                             "no connection).", "", m_exported, &ex.retries);
    atomic_store(&cfg.exporting, true);
    celer_log(CELER_LOG_INFO, "tracing: OTLP/HTTP %s to %s (trace_rate %d, trace_level %s)",
              ex.json ? "JSON" : "protobuf", url, opts->trace_rate,
              level ? "TIMESTAMPS" : "OFF");
    return CELER_OK;
}

void celer_trace_stop(void) {
    atomic_store(&cfg.exporting, false);
    if (!ex.started) return;
    pthread_mutex_lock(&ex.ring->mu);
    ex.stop = true;
    pthread_cond_signal(&ex.ring->wake);
    pthread_mutex_unlock(&ex.ring->mu);
    pthread_join(ex.thread, NULL);
    ex.started = false;
    /* the ring stays: a late span (a worker past the shutdown timeout) is queued and never sent */
}
