/* Tracing (src/server/trace.c): traceparent parsing by every W3C rule, tracestate kept or
 * dropped, the OTLP JSON of a span (parsed back: field names and types), the ring dropping and
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
        cmocka_unit_test(test_ring_drops_when_full), cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
