/* Tracing (src/server/trace.c): traceparent parsing by every W3C rule, tracestate kept or
 * dropped, the OTLP JSON of a span (parsed back: field names and types), the OTLP protobuf of
 * spans (read back by a strict reader of its own: fields, wire types, minimal varints), the ring dropping and
 * counting when full, and the settings' checks and per-model overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "server/json.h"
#include "server/trace.h"

#define TRACE "0af7651916cd43dd8448eb211c80319c"
#define PARENT "b7ad6b7169203331"

static bool parse(const char *s, celer_trace_ctx *c) { return celer_trace_parse_parent(s, strlen(s), c); }

static void test_traceparent_valid(void **state) {
    (void)state;
    celer_trace_ctx c;
    assert_true(parse("00-" TRACE "-" PARENT "-01", &c));
    assert_true(c.valid);
    char hex[33];
    celer_trace_hex(c.trace_id, 16, hex);
    assert_string_equal(hex, TRACE);
    celer_trace_hex(c.parent_id, 8, hex);
    assert_string_equal(hex, PARENT);
    assert_int_equal(c.flags, 1);
    assert_true(parse("00-" TRACE "-" PARENT "-00", &c));
    assert_int_equal(c.flags & 1, 0);
    assert_true(parse("00-" TRACE "-" PARENT "-03", &c)); /* other flag bits: sampled is masked */
    assert_int_equal(c.flags & 1, 1);
    /* a higher version: its first four fields, with or without more after them */
    assert_true(parse("01-" TRACE "-" PARENT "-01", &c));
    assert_true(parse("cc-" TRACE "-" PARENT "-01-what-the-future-holds", &c));
    celer_trace_hex(c.trace_id, 16, hex);
    assert_string_equal(hex, TRACE);
}

static void test_traceparent_invalid(void **state) {
    (void)state;
    celer_trace_ctx c;
    const char *bad[] = {
        "",
        "00-" TRACE "-" PARENT "-0",                          /* 54 characters */
        "00-" TRACE "-" PARENT "-011",                        /* version 00 is exactly 55 */
        "00-" TRACE "-" PARENT "-01-x",                       /* ... even with a dash */
        "00-0AF7651916CD43DD8448EB211C80319C-" PARENT "-01", /* uppercase */
        "00-" TRACE "-B7AD6B7169203331-01",
        "00-" TRACE "-" PARENT "-0A",
        "0A-" TRACE "-" PARENT "-01",
        "00-00000000000000000000000000000000-" PARENT "-01", /* all-zero trace id */
        "00-" TRACE "-0000000000000000-01",                   /* all-zero parent id */
        "ff-" TRACE "-" PARENT "-01",                         /* version ff */
        "00_" TRACE "-" PARENT "-01",
        "00-" TRACE "_" PARENT "-01",
        "00-" TRACE "-" PARENT "_01",
        "01-" TRACE "-" PARENT "-01x",                        /* a higher version's tail starts with '-' */
        "00-0af7651916cd43dd8448eb211c80319g-" PARENT "-01",
        "00- af7651916cd43dd8448eb211c80319c-" PARENT "-01",
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        c.valid = true;
        assert_false(parse(bad[i], &c));
        assert_false(c.valid);
    }
    assert_false(celer_trace_parse_parent(NULL, 0, &c));
}

static void test_tracestate(void **state) {
    (void)state;
    celer_trace_ctx c;
    assert_true(parse("00-" TRACE "-" PARENT "-01", &c));
    celer_trace_parse_state(&c, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 39);
    assert_int_equal(c.state_len, 39);
    assert_string_equal(c.state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /* too long: dropped, not cut */
    char big[CELER_TRACE_STATE_MAX + 2];
    memset(big, 'a', sizeof big);
    assert_true(parse("00-" TRACE "-" PARENT "-01", &c));
    celer_trace_parse_state(&c, big, sizeof big);
    assert_int_equal(c.state_len, 0);
    /* control bytes: dropped */
    celer_trace_parse_state(&c, "a=b\nc=d", 7);
    assert_int_equal(c.state_len, 0);
    /* an invalid traceparent: tracestate ignored */
    parse("garbage", &c);
    celer_trace_parse_state(&c, "a=b", 3);
    assert_int_equal(c.state_len, 0);
}

/* The exported JSON, parsed back: every field the official exporter sends, of its type. */
static void test_span_json(void **state) {
    (void)state;
    celer_trace_ctx parent;
    assert_true(parse("00-" TRACE "-" PARENT "-01", &parent));
    celer_trace_parse_state(&parent, "k=v", 3);
    static celer_span s, child;
    celer_span_begin(&s, "POST /v2/models/{m}/infer", CELER_SPAN_SERVER, NULL, &parent, 1000);
    celer_span_attr_str(&s, "celer.model", "m\"x");
    celer_span_attr_int(&s, "http.response.status_code", 200);
    celer_span_event_at(&s, "queued", 1100, NULL, 0);
    celer_span_event_at(&s, "batch formed", 1200, "celer.batch_size", 4);
    celer_span_begin(&child, "step a", CELER_SPAN_INTERNAL, &s, NULL, 1150);
    celer_span_link_to(&child, &s);
    celer_span_fail(&child, "it broke");
    s.end_ns = 2000;
    child.end_ns = 1300;
    char tp[CELER_TRACEPARENT_LEN + 1];
    celer_span_traceparent(&s, tp);
    assert_int_equal(strlen(tp), 55);
    assert_memory_equal(tp, "00-" TRACE "-", 36);
    assert_memory_equal(tp + 52, "-01", 3);

    celer_span both[2] = {s, child};
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_trace_export_json(both, 2, (int64_t)1796484391000000000LL, &b);
    assert_int_equal(b.status, CELER_OK);
    celer_arena a;
    celer_arena_init(&a, 4096, 0);
    celer_json *doc;
    assert_int_equal(celer_json_parse(b.data, b.len, &a, &doc), CELER_OK);
    const celer_json *rs = &celer_json_get(doc, "resourceSpans")->items[0];
    const celer_json *res = celer_json_get(celer_json_get(rs, "resource"), "attributes");
    assert_true(res && res->n >= 4);
    assert_string_equal(celer_json_get(&res->items[0], "key")->string, "service.name");
    const celer_json *ss = &celer_json_get(rs, "scopeSpans")->items[0];
    assert_string_equal(celer_json_get(celer_json_get(ss, "scope"), "name")->string, "celer");
    const celer_json *spans = celer_json_get(ss, "spans");
    assert_int_equal(spans->n, 2);
    const celer_json *j = &spans->items[0];
    assert_string_equal(celer_json_get(j, "traceId")->string, TRACE);
    assert_int_equal(strlen(celer_json_get(j, "spanId")->string), 16);
    assert_string_equal(celer_json_get(j, "parentSpanId")->string, PARENT);
    assert_string_equal(celer_json_get(j, "traceState")->string, "k=v");
    assert_int_equal(celer_json_get(j, "kind")->type, CELER_JSON_NUMBER);
    assert_int_equal((int)celer_json_get(j, "kind")->number, 2);
    assert_int_equal((int)celer_json_get(j, "flags")->number, 0x301); /* sampled, parent known remote */
    assert_string_equal(celer_json_get(j, "startTimeUnixNano")->string, "1796484391000001000");
    assert_string_equal(celer_json_get(j, "endTimeUnixNano")->string, "1796484391000002000");
    const celer_json *at = celer_json_get(j, "attributes");
    assert_string_equal(celer_json_get(celer_json_get(&at->items[0], "value"), "stringValue")->string, "m\"x");
    assert_string_equal(celer_json_get(celer_json_get(&at->items[1], "value"), "intValue")->string, "200");
    const celer_json *ev = celer_json_get(j, "events");
    assert_int_equal(ev->n, 2);
    assert_string_equal(celer_json_get(&ev->items[1], "name")->string, "batch formed");
    assert_string_equal(celer_json_get(&ev->items[1], "timeUnixNano")->string, "1796484391000001200");
    assert_int_equal(celer_json_get(&ev->items[1], "attributes")->n, 1);
    /* fields at their default are left out (protobuf's JSON mapping; receivers read them as default) */
    for (const char *const *k = (const char *const[]){"droppedAttributesCount", "droppedEventsCount",
                                                       "droppedLinksCount", "links", NULL};
         *k; k++)
        assert_null(celer_json_get(j, *k));
    assert_null(celer_json_get(&ev->items[0], "attributes"));
    assert_null(celer_json_get(&ev->items[0], "droppedAttributesCount"));
    assert_int_equal((int)celer_json_get(celer_json_get(j, "status"), "code")->number, 0);
    const celer_json *c = &spans->items[1];
    assert_string_equal(celer_json_get(c, "traceId")->string, TRACE);
    assert_string_equal(celer_json_get(c, "parentSpanId")->string, celer_json_get(j, "spanId")->string);
    assert_int_equal((int)celer_json_get(c, "kind")->number, 1);
    assert_int_equal((int)celer_json_get(c, "flags")->number, 0x101); /* a local parent */
    assert_int_equal((int)celer_json_get(celer_json_get(c, "status"), "code")->number, 2);
    assert_string_equal(celer_json_get(celer_json_get(c, "status"), "message")->string, "it broke");
    const celer_json *lk = celer_json_get(c, "links");
    assert_int_equal(lk->n, 1);
    assert_string_equal(celer_json_get(&lk->items[0], "spanId")->string, celer_json_get(j, "spanId")->string);
    celer_arena_free(&a);
    celer_jbuf_free(&b);

    /* a root span: a new random trace id, no parentSpanId */
    celer_span_begin(&s, "batch x", CELER_SPAN_INTERNAL, NULL, NULL, 5);
    celer_trace_ctx none;
    char hex[33];
    celer_trace_hex(s.trace_id, 16, hex);
    assert_string_not_equal(hex, TRACE);
    assert_false(s.has_parent);
    (void)none;
    /* more links than a span keeps: counted dropped */
    for (int i = 0; i < CELER_SPAN_MAX_LINKS + 3; i++) celer_span_link_to(&s, &child);
    assert_int_equal(s.n_links, CELER_SPAN_MAX_LINKS);
    assert_int_equal(s.dropped_links, 3);
    /* ... and then written: the count is not a default any more */
    celer_jbuf_init(&b, 0);
    celer_trace_export_json(&s, 1, 0, &b);
    celer_arena_init(&a, 4096, 0);
    assert_int_equal(celer_json_parse(b.data, b.len, &a, &doc), CELER_OK);
    j = &celer_json_get(&celer_json_get(doc, "resourceSpans")->items[0], "scopeSpans")->items[0];
    j = &celer_json_get(j, "spans")->items[0];
    assert_int_equal(celer_json_get(j, "links")->n, CELER_SPAN_MAX_LINKS);
    assert_int_equal((int)celer_json_get(j, "droppedLinksCount")->number, 3);
    assert_null(celer_json_get(j, "attributes")); /* none: left out */
    celer_arena_free(&a);
    celer_jbuf_free(&b);
}

/* ---- a strict protobuf reader, for the tests only: a message is a list of fields; a varint that
 * is not minimal, a length past its message or a wire type OTLP does not use fails the read ---- */

typedef struct pbf {
    int num, wire;
    uint64_t v; /* varint, fixed64, fixed32 */
    const uint8_t *p;
    size_t len; /* length-delimited */
} pbf;

static bool rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10 && *p < end; i++) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i && !b) return false; /* a redundant trailing 0 group: not minimal */
            *out = v;
            return true;
        }
    }
    return false;
}

/* The fields of msg[0..len) into f (up to cap); their number, or -1 when malformed. */
static int pb_fields(const uint8_t *msg, size_t len, pbf *f, int cap) {
    const uint8_t *p = msg, *end = msg + len;
    int n = 0;
    while (p < end) {
        uint64_t key;
        if (!rd_varint(&p, end, &key) || n == cap || (key >> 3) == 0) return -1;
        pbf x = {(int)(key >> 3), (int)(key & 7), 0, NULL, 0};
        if (x.wire == 0) {
            if (!rd_varint(&p, end, &x.v)) return -1;
        } else if (x.wire == 1 || x.wire == 5) {
            int w = x.wire == 1 ? 8 : 4;
            if (end - p < w) return -1;
            for (int i = 0; i < w; i++) x.v |= (uint64_t)p[i] << (8 * i);
            p += w;
        } else if (x.wire == 2) {
            uint64_t l;
            if (!rd_varint(&p, end, &l) || l > (uint64_t)(end - p)) return -1;
            x.p = p, x.len = (size_t)l, p += l;
        } else {
            return -1;
        }
        f[n++] = x;
    }
    return n;
}

/* The k-th field numbered num (wire type `wire`) of msg, or NULL; *count gets how many there are. */
static const pbf *pb_get(const pbf *f, int n, int num, int wire, int k, int *count) {
    const pbf *got = NULL;
    int c = 0;
    for (int i = 0; i < n; i++)
        if (f[i].num == num) {
            assert_int_equal(f[i].wire, wire);
            if (c++ == k) got = &f[i];
        }
    if (count) *count = c;
    return got;
}

static bool pb_str_is(const pbf *x, const char *s) { return x && x->len == strlen(s) && !memcmp(x->p, s, x->len); }

/* A KeyValue: key and its AnyValue's one field. */
static void kv_read(const pbf *kv, const char **key, size_t *klen, pbf *value) {
    pbf f[4], a[4];
    int n = pb_fields(kv->p, kv->len, f, 4);
    assert_int_equal(n, 2);
    const pbf *k = pb_get(f, n, 1, 2, 0, NULL), *v = pb_get(f, n, 2, 2, 0, NULL);
    assert_non_null(k);
    assert_non_null(v);
    *key = (const char *)k->p, *klen = k->len;
    assert_int_equal(pb_fields(v->p, v->len, a, 4), 1); /* a oneof: exactly one value */
    *value = a[0];
}

/* The spans of an ExportTraceServiceRequest (one resource, one scope), checked on the way. */
static int request_spans(const uint8_t *msg, size_t len, pbf *spans, int cap) {
    pbf top[4], rs[8], ss[2100];
    int n = pb_fields(msg, len, top, 4), c;
    assert_int_equal(n, 1);
    assert_int_equal(top[0].num, 1);
    n = pb_fields(top[0].p, top[0].len, rs, 8);
    assert_int_equal(n, 2);
    const pbf *res = pb_get(rs, n, 1, 2, 0, NULL), *scope_spans = pb_get(rs, n, 2, 2, 0, NULL);
    assert_non_null(res);
    assert_non_null(scope_spans);
    pbf ra[32];
    int nr = pb_fields(res->p, res->len, ra, 32);
    assert_true(nr >= 4);
    const char *key;
    size_t klen;
    pbf v;
    kv_read(pb_get(ra, nr, 1, 2, 0, NULL), &key, &klen, &v);
    assert_true(klen == 12 && !memcmp(key, "service.name", 12) && v.num == 1 && pb_str_is(&v, "celer"));
    n = pb_fields(scope_spans->p, scope_spans->len, ss, 2100);
    assert_true(n >= 1);
    pbf sc[4];
    const pbf *scope = pb_get(ss, n, 1, 2, 0, NULL);
    assert_non_null(scope);
    int nsc = pb_fields(scope->p, scope->len, sc, 4);
    assert_true(pb_str_is(pb_get(sc, nsc, 1, 2, 0, NULL), "celer"));
    pb_get(ss, n, 2, 2, 0, &c);
    assert_true(c <= cap);
    for (int i = 0; i < c; i++) spans[i] = *pb_get(ss, n, 2, 2, i, NULL);
    return c;
}

static void test_span_proto(void **state) {
    (void)state;
    celer_trace_ctx parent;
    assert_true(parse("00-" TRACE "-" PARENT "-01", &parent));
    celer_trace_parse_state(&parent, "k=v", 3);
    static celer_span s, child, big;
    celer_span_begin(&s, "POST /v2/models/{m}/infer", CELER_SPAN_SERVER, NULL, &parent, 1000);
    celer_span_attr_str(&s, "celer.model", "m\"x");
    celer_span_attr_int(&s, "http.response.status_code", 200);
    celer_span_attr_int(&s, "neg", -5);
    celer_span_attr_str(&s, "empty", "");
    celer_span_event_at(&s, "queued", 1100, NULL, 0);
    celer_span_event_at(&s, "batch formed", 1200, "celer.batch_size", 4);
    s.end_ns = 2000;
    celer_span_begin(&child, "step a", CELER_SPAN_INTERNAL, &s, NULL, 1150);
    celer_span_link_to(&child, &s);
    celer_span_fail(&child, "it broke");
    child.end_ns = 1300;
    /* the longest name, cut in the middle of a 2-byte character; 32 links and 3 more dropped */
    char name[200];
    memset(name, 'n', sizeof name);
    memcpy(name + 94, "\xc3\xa9", 2); /* "é" at bytes 94-95: the cut at 95 leaves half of it */
    name[199] = 0;
    celer_span_begin(&big, NULL, CELER_SPAN_INTERNAL, NULL, NULL, 5);
    celer_span_name(&big, "", name);
    for (int i = 0; i < CELER_SPAN_MAX_LINKS + 3; i++) celer_span_link_to(&big, &child);
    big.end_ns = 6;

    celer_span all[3] = {s, child, big};
    const int64_t offset = 1796484391000000000LL;
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    size_t start = celer_trace_export_proto(all, 3, offset, &b);
    assert_int_equal(b.status, CELER_OK);
    const uint8_t *msg = (const uint8_t *)b.data + start;
    size_t len = b.len - start;
    pbf spans[4];
    assert_int_equal(request_spans(msg, len, spans, 4), 3);

    /* the request's span */
    pbf f[64];
    int n = pb_fields(spans[0].p, spans[0].len, f, 64), c;
    assert_true(n > 0);
    const pbf *x = pb_get(f, n, 1, 2, 0, NULL);
    assert_true(x && x->len == 16 && !memcmp(x->p, parent.trace_id, 16)); /* raw bytes, not hex */
    assert_true((x = pb_get(f, n, 2, 2, 0, NULL)) && x->len == 8 && !memcmp(x->p, s.span_id, 8));
    assert_true(pb_str_is(pb_get(f, n, 3, 2, 0, NULL), "k=v"));
    assert_true((x = pb_get(f, n, 4, 2, 0, NULL)) && x->len == 8 && !memcmp(x->p, parent.parent_id, 8));
    assert_true(pb_str_is(pb_get(f, n, 5, 2, 0, NULL), "POST /v2/models/{m}/infer"));
    assert_int_equal(pb_get(f, n, 6, 0, 0, NULL)->v, 2);                                  /* SERVER */
    assert_int_equal(pb_get(f, n, 7, 1, 0, NULL)->v, (uint64_t)offset + 1000);            /* fixed64 */
    assert_int_equal(pb_get(f, n, 8, 1, 0, NULL)->v, (uint64_t)offset + 2000);
    assert_int_equal(pb_get(f, n, 16, 5, 0, NULL)->v, 0x301); /* sampled, parent known remote */
    pb_get(f, n, 9, 2, 0, &c);
    assert_int_equal(c, 4);
    const char *key;
    size_t klen;
    pbf v;
    kv_read(pb_get(f, n, 9, 2, 0, NULL), &key, &klen, &v);
    assert_true(klen == 11 && !memcmp(key, "celer.model", 11) && v.num == 1 && pb_str_is(&v, "m\"x"));
    kv_read(pb_get(f, n, 9, 2, 1, NULL), &key, &klen, &v);
    assert_true(v.num == 3 && v.wire == 0 && v.v == 200); /* int_value */
    kv_read(pb_get(f, n, 9, 2, 2, NULL), &key, &klen, &v);
    assert_true(v.num == 3 && (int64_t)v.v == -5); /* two's complement, ten bytes */
    kv_read(pb_get(f, n, 9, 2, 3, NULL), &key, &klen, &v);
    assert_true(v.num == 1 && v.len == 0); /* an empty string is still written: the oneof's case */
    pb_get(f, n, 11, 2, 0, &c);
    assert_int_equal(c, 2);
    pbf e[8];
    x = pb_get(f, n, 11, 2, 0, NULL);
    int ne = pb_fields(x->p, x->len, e, 8);
    assert_int_equal(ne, 2); /* time and name; no attributes, no dropped count */
    assert_int_equal(pb_get(e, ne, 1, 1, 0, NULL)->v, (uint64_t)offset + 1100);
    assert_true(pb_str_is(pb_get(e, ne, 2, 2, 0, NULL), "queued"));
    x = pb_get(f, n, 11, 2, 1, NULL);
    ne = pb_fields(x->p, x->len, e, 8);
    assert_int_equal(ne, 3);
    kv_read(pb_get(e, ne, 3, 2, 0, NULL), &key, &klen, &v);
    assert_true(klen == 16 && !memcmp(key, "celer.batch_size", 16) && v.num == 3 && v.v == 4);
    /* proto3 defaults left out: no links, no dropped counts; status there but empty (UNSET) */
    for (int num = 10; num <= 14; num++)
        if (num != 11) assert_null(pb_get(f, n, num, num == 13 ? 2 : 0, 0, NULL));
    assert_true((x = pb_get(f, n, 15, 2, 0, NULL)) && x->len == 0);

    /* the child: a local parent, a link, status ERROR with its message */
    n = pb_fields(spans[1].p, spans[1].len, f, 64);
    assert_true(n > 0);
    assert_true((x = pb_get(f, n, 4, 2, 0, NULL)) && !memcmp(x->p, s.span_id, 8));
    assert_int_equal(pb_get(f, n, 6, 0, 0, NULL)->v, 1);
    assert_int_equal(pb_get(f, n, 16, 5, 0, NULL)->v, 0x101);
    assert_true(pb_str_is(pb_get(f, n, 3, 2, 0, NULL), "k=v")); /* the parent's tracestate */
    x = pb_get(f, n, 13, 2, 0, &c);
    assert_int_equal(c, 1);
    pbf l[8];
    int nl = pb_fields(x->p, x->len, l, 8);
    assert_int_equal(nl, 3);
    assert_true(!memcmp(pb_get(l, nl, 1, 2, 0, NULL)->p, parent.trace_id, 16));
    assert_true(!memcmp(pb_get(l, nl, 2, 2, 0, NULL)->p, s.span_id, 8));
    assert_int_equal(pb_get(l, nl, 6, 5, 0, NULL)->v, 0x101);
    x = pb_get(f, n, 15, 2, 0, NULL);
    pbf st[4];
    int nst = pb_fields(x->p, x->len, st, 4);
    assert_true(pb_str_is(pb_get(st, nst, 2, 2, 0, NULL), "it broke"));
    assert_int_equal(pb_get(st, nst, 3, 0, 0, NULL)->v, 2); /* ERROR */

    /* the big one: no parent, no attributes, events or state; a name cut to 95 bytes whose half
     * character became '?' (protobuf strings must be UTF-8); 32 links, 3 dropped */
    n = pb_fields(spans[2].p, spans[2].len, f, 64);
    assert_true(n > 0);
    assert_null(pb_get(f, n, 3, 2, 0, NULL));
    assert_null(pb_get(f, n, 4, 2, 0, NULL));
    assert_null(pb_get(f, n, 9, 2, 0, NULL));
    assert_null(pb_get(f, n, 11, 2, 0, NULL));
    x = pb_get(f, n, 5, 2, 0, NULL);
    assert_true(x && x->len == 95 && x->p[94] == '?' && x->p[93] == 'n');
    pb_get(f, n, 13, 2, 0, &c);
    assert_int_equal(c, CELER_SPAN_MAX_LINKS);
    assert_int_equal(pb_get(f, n, 14, 0, 0, NULL)->v, 3);
    assert_int_equal(pb_get(f, n, 16, 5, 0, NULL)->v, 0x101); /* a root: parent not remote */
    celer_jbuf_free(&b);

    /* 1024 spans: lengths of two and three bytes around the header, all read back */
    static celer_span many[1024];
    for (int i = 0; i < 1024; i++) many[i] = i % 2 ? child : s;
    celer_jbuf_init(&b, 0);
    start = celer_trace_export_proto(many, 1024, offset, &b);
    assert_int_equal(b.status, CELER_OK);
    static pbf all_spans[1024];
    assert_int_equal(request_spans((const uint8_t *)b.data + start, b.len - start, all_spans, 1024), 1024);
    assert_int_equal(all_spans[1023].len, spans[1].len);
    celer_jbuf_free(&b);
    /* no spans: still a well-formed request */
    celer_jbuf_init(&b, 0);
    start = celer_trace_export_proto(many, 0, offset, &b);
    assert_int_equal(request_spans((const uint8_t *)b.data + start, b.len - start, all_spans, 1), 0);
    celer_jbuf_free(&b);
}

static void test_ring_drops_when_full(void **state) {
    (void)state;
    celer_trace_ring *r;
    assert_int_equal(celer_trace_ring_new(4, &r), CELER_OK);
    static celer_span s;
    celer_span_begin(&s, "x", CELER_SPAN_SERVER, NULL, NULL, 1);
    for (int i = 0; i < 4; i++) assert_true(celer_trace_ring_push(r, &s));
    assert_int_equal(celer_trace_ring_count(r), 4);
    assert_false(celer_trace_ring_push(r, &s)); /* full: dropped at once, never waits */
    assert_false(celer_trace_ring_push(r, &s));
    assert_int_equal(celer_trace_ring_dropped(r), 2);
    assert_int_equal(celer_trace_ring_count(r), 4);
    celer_trace_ring_free(r);
}

typedef struct seen {
    char text[512];
} seen;

static void collect(void *user, const char *name, const char *const *values, int n) {
    seen *s = user;
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%s=", name);
    for (int i = 0; i < n; i++) {
        len = strlen(s->text);
        snprintf(s->text + len, sizeof s->text - len, "%s%s", i ? "," : "", values[i]);
    }
    len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, " ");
}

static const char *settings_text(const char *model, seen *s) {
    s->text[0] = 0;
    celer_trace_settings(model, collect, s);
    return s->text;
}

static celer_status set1(celer_trace_change *c, const char *name, const char *value) {
    celer_trace_value v = {.null = value == NULL, .n = value ? 1 : 0, .s = {value}, .len = {value ? strlen(value) : 0}};
    return celer_trace_change_set(c, name, strlen(name), &v);
}

static void test_settings(void **state) {
    (void)state;
    seen s;
    assert_string_equal(settings_text(NULL, &s),
                        "trace_file= trace_level=TIMESTAMPS trace_rate=1000 trace_count=-1 log_frequency=0 ");
    celer_trace_change c = {0};
    assert_int_equal(set1(&c, "trace_rate", "5"), CELER_OK);
    assert_int_equal(set1(&c, "trace_count", "-1"), CELER_OK);
    assert_int_equal(set1(&c, "trace_file", ""), CELER_OK);
    assert_int_equal(celer_trace_change_apply("m", &c), CELER_OK);
    assert_string_equal(settings_text("m", &s),
                        "trace_file= trace_level=TIMESTAMPS trace_rate=5 trace_count=-1 log_frequency=0 ");
    assert_string_equal(settings_text("other", &s),
                        "trace_file= trace_level=TIMESTAMPS trace_rate=1000 trace_count=-1 log_frequency=0 ");
    c = (celer_trace_change){0};
    assert_int_equal(set1(&c, "trace_rate", NULL), CELER_OK); /* null: back to the global value */
    assert_int_equal(celer_trace_change_apply("m", &c), CELER_OK);
    assert_string_equal(settings_text("m", &s),
                        "trace_file= trace_level=TIMESTAMPS trace_rate=1000 trace_count=-1 log_frequency=0 ");
    /* refusals */
    c = (celer_trace_change){0};
    assert_int_equal(set1(&c, "trace_rate", "-1"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_rate", "1x"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_rate", ""), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_rate", "99999999999999999999999"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_count", "-2"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_file", "/tmp/x"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "trace_level", "TENSORS"), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "TENSORS"));
    assert_int_equal(set1(&c, "trace_level", "LOUD"), CELER_ERR_INVALID);
    assert_int_equal(set1(&c, "no_such", "1"), CELER_ERR_INVALID);
    celer_trace_value two = {.n = 2, .s = {"OFF", "TIMESTAMPS"}, .len = {3, 10}};
    assert_int_equal(celer_trace_change_set(&c, "trace_level", 11, &two), CELER_ERR_INVALID);
    two = (celer_trace_value){.n = 2, .s = {"1", "2"}, .len = {1, 1}};
    assert_int_equal(celer_trace_change_set(&c, "trace_rate", 10, &two), CELER_ERR_INVALID);
    celer_trace_value other = {.other = true};
    assert_int_equal(celer_trace_change_set(&c, "trace_rate", 10, &other), CELER_ERR_INVALID);
    /* the global level OFF, then back */
    c = (celer_trace_change){0};
    assert_int_equal(set1(&c, "trace_level", "OFF"), CELER_OK);
    assert_int_equal(celer_trace_change_apply(NULL, &c), CELER_OK);
    assert_non_null(strstr(settings_text("m", &s), "trace_level=OFF"));
    c = (celer_trace_change){0};
    assert_int_equal(set1(&c, "trace_level", NULL), CELER_OK);
    assert_int_equal(celer_trace_change_apply(NULL, &c), CELER_OK);
    assert_non_null(strstr(settings_text(NULL, &s), "trace_level=TIMESTAMPS"));
    /* tracing off (no exporter): nothing is sampled, even a sampled parent */
    celer_trace_ctx p;
    assert_true(parse("00-" TRACE "-" PARENT "-01", &p));
    assert_false(celer_trace_active());
    assert_false(celer_trace_sample("m", &p));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid), cmocka_unit_test(test_traceparent_invalid),
        cmocka_unit_test(test_tracestate),        cmocka_unit_test(test_span_json),
        cmocka_unit_test(test_span_proto),
        cmocka_unit_test(test_ring_drops_when_full), cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
