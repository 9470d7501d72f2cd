/* libFuzzer target for the trace context a request brings and the trace settings a client sends:
 * byte 0 picks (% 3) a traceparent header (and, after a NUL in it, a tracestate), a
 * TraceSettingRequest (gRPC's protobuf) or a POST .../trace/setting body (JSON, decoded as
 * http.c does). A clean refusal is fine; a crash, leak or sanitizer report is a bug, and so is a
 * context accepted against the W3C rules (a version 00 not 55 long, ff, all-zero ids, uppercase),
 * a tracestate kept longer than the cap or with a control byte, or a traceparent answered for it
 * that is not 55 characters of its trace. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc_codec.h"
#include "server/json.h"
#include "server/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void each_setting(void *user, const char *name, const char *const *values, int n) {
    (void)user;
    if (!name || n < 1 || !values[0]) abort();
}

static void check_context(const char *in, size_t n) {
    const char *nul = memchr(in, 0, n);
    size_t tp_len = nul ? (size_t)(nul - in) : n;
    celer_trace_ctx c;
    bool ok = celer_trace_parse_parent(in, tp_len, &c);
    if (ok != c.valid) abort();
    if (ok) {
        if (tp_len < CELER_TRACEPARENT_LEN || (in[0] == '0' && in[1] == '0' && tp_len != CELER_TRACEPARENT_LEN) ||
            (in[0] == 'f' && in[1] == 'f'))
            abort();
        for (size_t i = 0; i < CELER_TRACEPARENT_LEN; i++)
            if (in[i] >= 'A' && in[i] <= 'F') abort();
        static const uint8_t zero[16];
        if (!memcmp(c.trace_id, zero, 16) || !memcmp(c.parent_id, zero, 8)) abort();
    }
    if (nul) celer_trace_parse_state(&c, nul + 1, n - tp_len - 1);
    if (c.state_len > CELER_TRACE_STATE_MAX || strlen(c.state) != c.state_len) abort();
    for (size_t i = 0; i < c.state_len; i++)
        if ((unsigned char)c.state[i] < 0x20 || (unsigned char)c.state[i] > 0x7e) abort();
    if (!ok) return;
    static celer_span s;
    celer_span_begin(&s, "fuzz", CELER_SPAN_SERVER, NULL, &c, 1);
    char tp[CELER_TRACEPARENT_LEN + 1];
    celer_span_traceparent(&s, tp);
    celer_trace_ctx back;
    if (strlen(tp) != CELER_TRACEPARENT_LEN || !celer_trace_parse_parent(tp, CELER_TRACEPARENT_LEN, &back) ||
        memcmp(back.trace_id, c.trace_id, 16) || !(back.flags & 1))
        abort();
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_trace_export_json(&s, 1, 0, &b);
    if (b.status) abort();
    celer_jbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: check_context(in, n); break;
    case 1: {
        char model[256];
        celer_trace_change c = {0};
        if (celer_grpc_decode_trace_setting((const uint8_t *)in, n, model, sizeof model, &c) == CELER_OK) {
            if (strlen(model) >= sizeof model) abort();
            if (c.set_rate && c.rate < 0) abort();
            if (c.set_count && c.count < -1) abort();
            celer_trace_settings(model, each_setting, NULL); /* not applied: the fuzzer's runs stay independent */
        }
        break;
    }
    default: {
        celer_arena a;
        celer_arena_init(&a, 4096, 1 << 20);
        celer_json *doc;
        celer_trace_change c = {0};
        if (celer_json_parse(in, n, &a, &doc) == CELER_OK && doc->type == CELER_JSON_OBJECT) {
            for (int i = 0; i < doc->n; i++) {
                const celer_json *j = &doc->items[i];
                celer_trace_value v = {.other = true};
                if (j->type == CELER_JSON_NULL) v = (celer_trace_value){.null = true};
                else if (j->type == CELER_JSON_STRING) v = (celer_trace_value){.n = 1, .s = {j->string}, .len = {j->string_len}};
                else if (j->type == CELER_JSON_ARRAY && j->n <= CELER_TRACE_MAX_VALUES) {
                    v = (celer_trace_value){.n = j->n};
                    for (int k = 0; k < j->n; k++) {
                        if (j->items[k].type != CELER_JSON_STRING) v.other = true;
                        else v.s[k] = j->items[k].string, v.len[k] = j->items[k].string_len;
                    }
                }
                if (celer_trace_change_set(&c, doc->keys[i], strlen(doc->keys[i]), &v)) break;
            }
        }
        celer_arena_free(&a);
        break;
    }
    }
    return 0;
}
