/* The protobuf wire codec of Triton's gRPC service, by hand (see grpc_codec.h): ModelInferRequest
 * decoded into the celer_kserve_request of the HTTP codec with its checks and messages (kserve.h),
 * ModelInferResponse encoded with every output in raw_output_contents. Field numbers are those of
 * tests/grpc/proto/grpc_service.proto. The reader follows protobuf's rules: fields in any order,
 * the last value of a singular field wins, a message field given twice is merged (its repeated
 * fields concatenate), repeated scalars packed or not, unknown fields skipped by wire type. */
#include "server/grpc_codec.h"
#include "server/body.h"
#include "server/trace.h"

#include <stdio.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_input_contents is little-endian; celer uses tensor bytes as they are"
#endif

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_SGROUP = 3, WIRE_EGROUP = 4, WIRE_I32 = 5 };
#define MAX_FIELD_NUMBER ((1u << 29) - 1)

/* ---- field numbers (grpc_service.proto) ---- */
enum { REQ_MODEL_NAME = 1, REQ_MODEL_VERSION = 2, REQ_ID = 3, REQ_PARAMS = 4, REQ_INPUTS = 5, REQ_OUTPUTS = 6,
       REQ_RAW = 7 };
enum { IN_NAME = 1, IN_DATATYPE = 2, IN_SHAPE = 3, IN_PARAMS = 4, IN_CONTENTS = 5 };
enum { OREQ_NAME = 1, OREQ_PARAMS = 2 };
enum { MAP_KEY = 1, MAP_VALUE = 2 };
enum { P_BOOL = 1, P_INT64 = 2, P_STRING = 3, P_DOUBLE = 4, P_UINT64 = 5 };
enum { C_BOOL = 1, C_INT = 2, C_INT64 = 3, C_UINT = 4, C_UINT64 = 5, C_FP32 = 6, C_FP64 = 7, C_BYTES = 8 };
enum { RESP_MODEL_NAME = 1, RESP_MODEL_VERSION = 2, RESP_ID = 3, RESP_OUTPUTS = 5, RESP_RAW = 6 };
enum { OUT_NAME = 1, OUT_DATATYPE = 2, OUT_SHAPE = 3, OUT_PARAMS = 4 };

/* Entries of one request's `parameters` map (each costs arena memory, and a key given twice is
 * found by comparing keys pairwise), and the length of their names. */
#define MAX_PARAMS 256
#define MAX_PARAM_NAME 256

/* ======================================================================================== */
/* writer                                                                                   */
/* ======================================================================================== */

void celer_pb_put_raw_varint(celer_jbuf *b, uint64_t v) {
    char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (char)v;
    celer_jbuf_raw(b, tmp, n);
}

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_tag(celer_jbuf *b, int field, int wire) { celer_pb_put_raw_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

void celer_pb_put_varint(celer_jbuf *b, int field, uint64_t v) {
    put_tag(b, field, WIRE_VARINT);
    celer_pb_put_raw_varint(b, v);
}

void celer_pb_put_bool(celer_jbuf *b, int field, bool v) {
    if (v) celer_pb_put_varint(b, field, 1);
}

void celer_pb_put_bytes(celer_jbuf *b, int field, const void *p, size_t n) {
    put_tag(b, field, WIRE_LEN);
    celer_pb_put_raw_varint(b, n);
    celer_jbuf_raw(b, p, n);
}

void celer_pb_put_str(celer_jbuf *b, int field, const char *s) {
    if (s) celer_pb_put_bytes(b, field, s, strlen(s));
}

size_t celer_pb_begin(celer_jbuf *b, int field) {
    put_tag(b, field, WIRE_LEN);
    size_t mark = b->len;
    celer_jbuf_raw(b, "\x80\x80\x80\x80\x00", 5);
    return mark;
}

void celer_pb_end(celer_jbuf *b, size_t mark) {
    if (!b->status) celer_pb_patch_len(b, mark, b->len - mark - 5);
}

void celer_pb_patch_len(celer_jbuf *b, size_t mark, size_t n) {
    if (b->status) return;
    if ((uint64_t)n >> 35) { /* what 5 varint bytes hold */
        b->status = celer_errorf(CELER_ERR_LIMIT, "a nested message of %zu bytes is too large for its length field", n);
        return;
    }
    for (int i = 0; i < 4; i++) b->data[mark + (size_t)i] = (char)(0x80 | ((uint64_t)n >> (7 * i) & 0x7f));
    b->data[mark + 4] = (char)((uint64_t)n >> 28);
}

/* ======================================================================================== */
/* reader                                                                                   */
/* ======================================================================================== */

/* A varint at *pp (< end); advances *pp. False when truncated or longer than 64 bits. */
static bool read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return false;
        uint8_t c = *p++;
        if (shift == 63 && c > 1) return false; /* the 10th byte only carries bit 63 */
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

static uint64_t read_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int celer_pb_next(celer_pb_reader *r, celer_pb_field *f, const char *what) {
    if (r->p >= r->end) return 0;
    size_t at = (size_t)(r->end - r->p); /* for messages: bytes left where the field starts */
    uint64_t tag;
    memset(f, 0, sizeof *f);
    if (!read_varint(&r->p, r->end, &tag)) {
        celer_errorf(CELER_ERR_PARSE, "%s: truncated or overlong field tag (%zu bytes left)", what, at);
        return -1;
    }
    if ((tag >> 3) == 0 || (tag >> 3) > MAX_FIELD_NUMBER) {
        celer_errorf(CELER_ERR_PARSE, "%s: invalid field number %llu", what, (unsigned long long)(tag >> 3));
        return -1;
    }
    f->number = (int)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case WIRE_VARINT:
        if (read_varint(&r->p, r->end, &f->varint)) return 1;
        celer_errorf(CELER_ERR_PARSE, "%s: field %d: truncated or overlong varint", what, f->number);
        return -1;
    case WIRE_I64:
    case WIRE_I32: {
        int n = f->wire == WIRE_I64 ? 8 : 4;
        if (left < (size_t)n) {
            celer_errorf(CELER_ERR_PARSE, "%s: field %d: truncated %d-bit value", what, f->number, n * 8);
            return -1;
        }
        f->varint = read_le(r->p, n);
        r->p += n;
        return 1;
    }
    case WIRE_LEN: {
        uint64_t n;
        if (!read_varint(&r->p, r->end, &n)) {
            celer_errorf(CELER_ERR_PARSE, "%s: field %d: truncated length", what, f->number);
            return -1;
        }
        left = (size_t)(r->end - r->p);
        if (n > left) {
            celer_errorf(CELER_ERR_PARSE, "%s: field %d: length %llu but only %zu bytes left (truncated?)", what, f->number,
                         (unsigned long long)n, left);
            return -1;
        }
        f->p = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    case WIRE_SGROUP:
    case WIRE_EGROUP: /* proto2's groups: no message of these protos has one */
        celer_errorf(CELER_ERR_PARSE, "%s: field %d: groups (wire types 3 and 4) are not accepted", what, f->number);
        return -1;
    default:
        celer_errorf(CELER_ERR_PARSE, "%s: field %d: invalid wire type %d", what, f->number, f->wire);
        return -1;
    }
}

/* ======================================================================================== */
/* ModelInferRequest                                                                        */
/* ======================================================================================== */

typedef struct span {
    const uint8_t *p;
    size_t len;
} span;

static span field_span(const celer_pb_field *f) { return (span){f->p, f->len}; }

static bool span_eq(span s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* A known field must come with its wire type (a packed repeated scalar is checked by its reader). */
static celer_status want_wire(const celer_pb_field *f, int wire, const char *what, const char *name) {
    if (f->wire == wire) return CELER_OK;
    return celer_errorf(CELER_ERR_PARSE, "%s: field %d (%s) has wire type %d, expected %d", what, f->number, name, f->wire,
                        wire);
}

/* A protobuf string as a NUL-terminated arena copy. Protobuf strings are UTF-8 (protobuf's own
 * parsers refuse others); a NUL byte is refused too, as the copy is read as a C string. */
static celer_status pb_string(span s, celer_arena *arena, const char *what, const char **out) {
    if (!s.len) s.p = (const uint8_t *)""; /* an absent field: {NULL, 0} */
    if (memchr(s.p, 0, s.len)) return celer_errorf(CELER_ERR_INVALID, "%s holds a NUL byte", what);
    if (!celer_json_utf8_valid((const char *)s.p, s.len)) return celer_errorf(CELER_ERR_INVALID, "%s is not valid UTF-8", what);
    char *c = celer_arena_strndup(arena, (const char *)s.p, s.len);
    if (!c) return celer_error_wrap(celer_error_status(), "%s", what);
    *out = c;
    return CELER_OK;
}

/* "input 'x'" for messages, in the arena (the request's messages outlive this call). */
static const char *what_name(celer_arena *arena, const char *fmt, const char *name) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, fmt, name);
    const char *w = celer_arena_strndup(arena, tmp, strlen(tmp));
    return w ? w : "input";
}

static const char *dt_name(celer_dtype t) {
    const char *n = celer_dtype_kserve_name(t);
    return n ? n : celer_dtype_name(t);
}

/* One InferParameter of a map entry: the oneof's last value wins. kind 0: no value set. */
typedef struct param {
    span key;
    int kind;   /* P_BOOL ... P_UINT64, or 0 */
    uint64_t u; /* bool, int64 (two's complement), uint64, double (its bits) */
    span s;     /* string */
} param;

static const char *const param_kind_names[] = {"no value", "bool_param", "int64_param", "string_param", "double_param",
                                               "uint64_param"};

static celer_status read_param_entry(span entry, const char *what, param *out) {
    memset(out, 0, sizeof *out);
    celer_pb_reader r = {entry.p, entry.p + entry.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number == MAP_KEY) {
            CELER_TRY(want_wire(&f, WIRE_LEN, what, "key"));
            out->key = field_span(&f);
        } else if (f.number == MAP_VALUE) {
            CELER_TRY(want_wire(&f, WIRE_LEN, what, "value"));
            celer_pb_reader v = {f.p, f.p + f.len};
            celer_pb_field g;
            int kv;
            while ((kv = celer_pb_next(&v, &g, what)) > 0) {
                static const int wires[] = {0, WIRE_VARINT, WIRE_VARINT, WIRE_LEN, WIRE_I64, WIRE_VARINT};
                if (g.number < P_BOOL || g.number > P_UINT64) continue;
                CELER_TRY(want_wire(&g, wires[g.number], what, param_kind_names[g.number]));
                out->kind = g.number;
                out->u = g.varint;
                out->s = field_span(&g);
            }
            if (kv < 0) return CELER_ERR_PARSE;
        }
    }
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

static double param_double(const param *p) {
    double d;
    memcpy(&d, &p->u, sizeof d);
    return d;
}

/* What the reserved-parameter check calls asking for nothing: false, 0, "" or "0", or no value. */
static bool param_asks_nothing(const param *p) {
    switch (p->kind) {
    case P_STRING: return p->s.len == 0 || span_eq(p->s, "0");
    case P_DOUBLE: return param_double(p) == 0;
    default: return p->u == 0; /* also kind 0 */
    }
}

/* Request parameters: reserved names refused, `timeout` read, every valued one passed on as text
 * (bool "true"/"false", numbers in decimal, strings as they are), as the HTTP codec does. */
static celer_status decode_request_params(const span *entries, int n, celer_arena *arena, celer_kserve_request *out) {
    if (n == 0) return CELER_OK;
    out->param_keys = celer_arena_alloc(arena, sizeof(char *) * (size_t)(n + 1) * 2);
    if (!out->param_keys) return celer_error_wrap(celer_error_status(), "request parameters");
    out->param_values = out->param_keys + n + 1;
    param *ps = celer_arena_alloc(arena, sizeof *ps * (size_t)n);
    if (!ps) return celer_error_wrap(celer_error_status(), "request parameters");
    for (int i = 0; i < n; i++) {
        CELER_TRY(read_param_entry(entries[i], "request parameters", &ps[i]));
        if (ps[i].key.len > MAX_PARAM_NAME)
            return celer_errorf(CELER_ERR_LIMIT, "a request parameter's name has %zu bytes, at most %d", ps[i].key.len,
                                MAX_PARAM_NAME);
    }
    for (int i = 0; i < n; i++) {
        param p = ps[i];
        bool later = false; /* a map's key given again: the last entry wins */
        for (int j = i + 1; j < n && !later; j++)
            later = ps[j].key.len == p.key.len && (p.key.len == 0 || !memcmp(ps[j].key.p, p.key.p, p.key.len));
        if (later) continue;
        const char *key;
        CELER_TRY(pb_string(p.key, arena, "a request parameter's name", &key));
        CELER_TRY(celer_kserve_check_request_param(key, param_asks_nothing(&p)));
        if (!strcmp(key, "timeout")) {
            if (p.kind != P_INT64 || (int64_t)p.u < 0)
                return celer_errorf(CELER_ERR_INVALID,
                                    "request parameter 'timeout' must be an int64_param of microseconds >= 0, got %s%s",
                                    param_kind_names[p.kind], p.kind == P_INT64 ? " < 0" : "");
            out->timeout_us = (int64_t)p.u;
        }
        const char *text = NULL;
        char num[32];
        switch (p.kind) {
        case P_BOOL: text = p.u ? "true" : "false"; break;
        case P_INT64: snprintf(num, sizeof num, "%lld", (long long)(int64_t)p.u); break;
        case P_UINT64: snprintf(num, sizeof num, "%llu", (unsigned long long)p.u); break;
        case P_DOUBLE: celer_json_format_double(param_double(&p), num); break;
        case P_STRING: {
            char w[300];
            snprintf(w, sizeof w, "request parameter '%.200s'", key);
            CELER_TRY(pb_string(p.s, arena, w, &text));
            break;
        }
        default: continue; /* no value: as a JSON null, nothing to pass on */
        }
        if (!text && !(text = celer_arena_strndup(arena, num, strlen(num))))
            return celer_error_wrap(celer_error_status(), "request parameter '%s'", key);
        out->param_keys[out->n_params] = key;
        out->param_values[out->n_params++] = text;
    }
    return CELER_OK;
}

/* The parameters of an input or output: every name not in `known` refused (kserve.h); the
 * classification count, when asked (`classification` not NULL), read as Triton reads it. */
static celer_status check_tensor_params(span msg, int params_field, const char *const *known, celer_arena *arena,
                                        const char *what, uint32_t *classification) {
    celer_pb_reader r = {msg.p, msg.p + msg.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number != params_field) continue;
        CELER_TRY(want_wire(&f, WIRE_LEN, what, "parameters"));
        param p;
        CELER_TRY(read_param_entry(field_span(&f), what, &p));
        const char *key;
        CELER_TRY(pb_string(p.key, arena, what, &key));
        CELER_TRY(celer_kserve_check_tensor_param(key, known, what));
        if (classification && !strcmp(key, "classification")) {
            if (p.kind != P_INT64)
                return celer_errorf(CELER_ERR_INVALID,
                                    "invalid value type for 'classification' parameter, expected int64_param: %s gave %s",
                                    what, param_kind_names[p.kind]);
            if ((int64_t)p.u <= 0) /* Triton's words; it wants at least 1 */
                return celer_errorf(CELER_ERR_INVALID,
                                    "invalid value for 'classification' parameter, expected >= 0: %s asked for %lld "
                                    "classes, at least 1 is needed",
                                    what, (long long)(int64_t)p.u);
            *classification = p.u > UINT32_MAX ? UINT32_MAX : (uint32_t)p.u; /* more than there are: all of them */
        }
    }
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

/* The shared-memory parameters of an input or output message (`name`: the tensor's): a region's
 * name as string_param, offset and byte size as int64_param >= 0, as Triton's clients send them. */
static celer_status read_shm(span msg, int params_field, const char *name, celer_arena *arena, celer_kserve_shm *shm) {
    static const int kinds[3] = {P_STRING, P_INT64, P_INT64};
    memset(shm, 0, sizeof *shm);
    bool has[3] = {false, false, false};
    celer_pb_reader r = {msg.p, msg.p + msg.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, name)) > 0) {
        if (f.number != params_field || f.wire != WIRE_LEN) continue; /* the wire is checked by check_tensor_params */
        param p;
        CELER_TRY(read_param_entry(field_span(&f), name, &p));
        int i = -1;
        for (int j = 0; j < 3 && i < 0; j++) {
            static const char *const keys[3] = {"shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"};
            if (span_eq(p.key, keys[j])) i = j;
        }
        if (i < 0) continue;
        const char *key = i == 0 ? "shared_memory_region" : i == 1 ? "shared_memory_offset" : "shared_memory_byte_size";
        if (p.kind != kinds[i])
            return celer_errorf(CELER_ERR_INVALID, "invalid value type for '%s' parameter for tensor '%s', expected %s, got %s",
                                key, name, param_kind_names[kinds[i]], param_kind_names[p.kind]);
        has[i] = true;
        if (i == 0) {
            char w[300];
            snprintf(w, sizeof w, "parameter 'shared_memory_region' of tensor '%.200s'", name);
            CELER_TRY(pb_string(p.s, arena, w, &shm->region));
        } else if ((int64_t)p.u < 0) {
            return celer_errorf(CELER_ERR_INVALID, "'%s' parameter for tensor '%s' must be >= 0, got %lld", key, name,
                                (long long)(int64_t)p.u);
        } else {
            *(i == 1 ? &shm->offset : &shm->byte_size) = p.u;
        }
    }
    if (k < 0) return CELER_ERR_PARSE;
    return celer_kserve_check_shm(has, name);
}

/* Whether the parameters of a message hold `key`. */
static bool has_param(span msg, int params_field, const char *key) {
    celer_pb_reader r = {msg.p, msg.p + msg.len};
    celer_pb_field f;
    while (celer_pb_next(&r, &f, "parameters") > 0) {
        param p;
        if (f.number == params_field && f.wire == WIRE_LEN && !read_param_entry(field_span(&f), "parameters", &p) &&
            span_eq(p.key, key))
            return true;
    }
    return false;
}

static celer_status decode_outputs(const span *msgs, int n, celer_arena *arena, celer_kserve_request *out) {
    if (n == 0) return CELER_OK;
    out->outputs = celer_arena_alloc(arena, (size_t)n * sizeof *out->outputs);
    if (!out->outputs) return celer_error_wrap(celer_error_status(), "requested outputs");
    for (int i = 0; i < n; i++) {
        char w[64];
        snprintf(w, sizeof w, "outputs[%d]", i);
        span name = {0};
        celer_pb_reader r = {msgs[i].p, msgs[i].p + msgs[i].len};
        celer_pb_field f;
        int k;
        while ((k = celer_pb_next(&r, &f, w)) > 0)
            if (f.number == OREQ_NAME) {
                CELER_TRY(want_wire(&f, WIRE_LEN, w, "name"));
                name = field_span(&f);
            }
        if (k < 0) return CELER_ERR_PARSE;
        if (name.len == 0) return celer_errorf(CELER_ERR_INVALID, "outputs[%d]: missing 'name'", i);
        const char *s;
        CELER_TRY(pb_string(name, arena, w, &s));
        for (int j = 0; j < i; j++)
            if (!strcmp(out->outputs[j].name, s))
                return celer_errorf(CELER_ERR_INVALID, "output '%s' already exists in request: it is requested twice", s);
        /* binary_data means nothing here (outputs always go in raw_output_contents): Triton
         * ignores it on gRPC, so it is accepted */
        CELER_TRY(read_shm(msgs[i], OREQ_PARAMS, s, arena, &out->outputs[i].shm));
        if (out->outputs[i].shm.region && has_param(msgs[i], OREQ_PARAMS, "classification"))
            return celer_errorf(CELER_ERR_INVALID,
                                "output can't set both 'shared_memory_region' and 'classification' (output '%s')", s);
        static const char *const known[] = {"binary_data", "classification", NULL};
        CELER_TRY(check_tensor_params(msgs[i], OREQ_PARAMS, known, arena, what_name(arena, "output '%s'", s),
                                      &out->outputs[i].classification));
        out->outputs[i].name = s;
        out->outputs[i].binary = true;
    }
    out->n_outputs = n;
    return CELER_OK;
}

/* The typed field of InferTensorContents for each datatype (0: none, raw only). */
static int contents_field(celer_dtype t) {
    switch (t) {
    case CELER_BOOL: return C_BOOL;
    case CELER_INT8: case CELER_INT16: case CELER_INT32: return C_INT;
    case CELER_INT64: return C_INT64;
    case CELER_UINT8: case CELER_UINT16: case CELER_UINT32: return C_UINT;
    case CELER_UINT64: return C_UINT64;
    case CELER_FLOAT: return C_FP32;
    case CELER_DOUBLE: return C_FP64;
    case CELER_STRING: return C_BYTES;
    default: return 0;
    }
}
static const char *const contents_names[] = {"", "bool_contents", "int_contents", "int64_contents", "uint_contents",
                                             "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"};
static const int contents_wires[] = {0, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_VARINT, WIRE_I32,
                                     WIRE_I64, WIRE_LEN};

/* Element i of a typed tensor from its wire value, narrowed with a range check. */
static celer_status store_element(celer_dtype t, void *dst, size_t i, uint64_t v, const char *what) {
    int64_t s = (int64_t)v;
    int64_t lo = 0, hi = 0;
    switch (t) {
    case CELER_BOOL: ((uint8_t *)dst)[i] = v != 0; return CELER_OK;
    case CELER_INT8: lo = INT8_MIN, hi = INT8_MAX; break;
    case CELER_INT16: lo = INT16_MIN, hi = INT16_MAX; break;
    case CELER_INT32: lo = INT32_MIN, hi = INT32_MAX; break;
    case CELER_INT64: ((int64_t *)dst)[i] = s; return CELER_OK;
    case CELER_UINT8: hi = UINT8_MAX; break;
    case CELER_UINT16: hi = UINT16_MAX; break;
    case CELER_UINT32: hi = UINT32_MAX; break;
    case CELER_UINT64: ((uint64_t *)dst)[i] = v; return CELER_OK;
    case CELER_FLOAT: {
        uint32_t bits = (uint32_t)v;
        memcpy((float *)dst + i, &bits, 4);
        return CELER_OK;
    }
    case CELER_DOUBLE: memcpy((double *)dst + i, &v, 8); return CELER_OK;
    default: return celer_errorf(CELER_ERR_INTERNAL, "%s: no typed contents for %s", what, dt_name(t));
    }
    bool is_signed = t == CELER_INT8 || t == CELER_INT16 || t == CELER_INT32;
    if (is_signed ? (s < lo || s > hi) : v > (uint64_t)hi) {
        if (is_signed)
            return celer_errorf(CELER_ERR_INVALID, "%s: element %zu is %lld, out of range for %s", what, i, (long long)s,
                                dt_name(t));
        return celer_errorf(CELER_ERR_INVALID, "%s: element %zu is %llu, out of range for %s", what, i,
                            (unsigned long long)v, dt_name(t));
    }
    switch (t) {
    case CELER_INT8: ((int8_t *)dst)[i] = (int8_t)s; break;
    case CELER_INT16: ((int16_t *)dst)[i] = (int16_t)s; break;
    case CELER_INT32: ((int32_t *)dst)[i] = (int32_t)s; break;
    case CELER_UINT8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
    case CELER_UINT16: ((uint16_t *)dst)[i] = (uint16_t)v; break;
    default: ((uint32_t *)dst)[i] = (uint32_t)v; break;
    }
    return CELER_OK;
}

/* Walks the typed contents of one input (every `contents` field of its message, merged as
 * protobuf merges a message given twice), counting its elements into *count or, with `dst`
 * (room for `cap` elements), storing them. Another typed field holding elements is refused. */
static celer_status walk_contents(span input, celer_dtype dtype, void *dst, size_t cap, size_t *count, const char *what) {
    int want = contents_field(dtype), ew = contents_wires[want];
    size_t esize = ew == WIRE_I32 ? 4 : 8, n = 0;
    celer_pb_reader r = {input.p, input.p + input.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number != IN_CONTENTS) continue;
        CELER_TRY(want_wire(&f, WIRE_LEN, what, "contents"));
        celer_pb_reader c = {f.p, f.p + f.len};
        celer_pb_field e;
        int kc;
        while ((kc = celer_pb_next(&c, &e, what)) > 0) {
            if (e.number < C_BOOL || e.number > C_BYTES) continue;
            if (e.number != want) {
                if (e.number == C_BYTES || e.wire != WIRE_LEN || e.len) /* an empty packed list holds nothing */
                    return celer_errorf(CELER_ERR_INVALID, "%s: datatype %s takes %s, got %s", what, dt_name(dtype),
                                        contents_names[want], contents_names[e.number]);
                continue;
            }
            if (want == C_BYTES) {
                CELER_TRY(want_wire(&e, WIRE_LEN, what, contents_names[want]));
                if (dst && n < cap) ((celer_str *)dst)[n] = (celer_str){(const char *)e.p, e.len};
                n++;
            } else if (e.wire == ew) { /* one unpacked element */
                if (dst && n < cap) CELER_TRY(store_element(dtype, dst, n, e.varint, what));
                n++;
            } else if (e.wire == WIRE_LEN) { /* packed */
                const uint8_t *p = e.p, *end = e.p + e.len;
                if (ew != WIRE_VARINT && e.len % esize)
                    return celer_errorf(CELER_ERR_PARSE, "%s: packed %s of %zu bytes is not a whole number of elements", what,
                                        contents_names[want], e.len);
                while (p < end) {
                    uint64_t v;
                    if (ew == WIRE_VARINT) {
                        if (!read_varint(&p, end, &v))
                            return celer_errorf(CELER_ERR_PARSE, "%s: packed %s: truncated or overlong varint", what,
                                                contents_names[want]);
                    } else {
                        v = read_le(p, (int)esize);
                        p += esize;
                    }
                    if (dst && n < cap) CELER_TRY(store_element(dtype, dst, n, v, what));
                    n++;
                }
            } else {
                return want_wire(&e, ew, what, contents_names[want]);
            }
        }
        if (kc < 0) return CELER_ERR_PARSE;
    }
    if (k < 0) return CELER_ERR_PARSE;
    *count = n;
    return CELER_OK;
}

/* The bytes of a raw entry: in place when aligned for the element type (the message outlives the
 * request), else an arena copy, as kernels read elements through typed pointers. */
static celer_status raw_fixed(span raw, celer_dtype dtype, celer_arena *arena, void **out) {
    size_t esize = celer_dtype_size(dtype);
    if (((uintptr_t)raw.p % esize) == 0) {
        *out = (void *)(uintptr_t)raw.p;
        return CELER_OK;
    }
    void *buf = celer_arena_alloc_uninit(arena, raw.len ? raw.len : 1);
    if (!buf) return CELER_ERR_NOMEM;
    memcpy(buf, raw.p, raw.len);
    *out = buf;
    return CELER_OK;
}

/* One InferInputTensor: name and datatype (last value wins), contents present or not. */
typedef struct in_msg {
    span msg, name, datatype;
    bool has_contents;
    celer_kserve_shm shm; /* region set: the input is in shared memory (no contents, no raw entry) */
} in_msg;

static celer_status scan_input(span msg, int index, in_msg *in) {
    char w[64];
    snprintf(w, sizeof w, "inputs[%d]", index);
    memset(in, 0, sizeof *in);
    in->msg = msg;
    celer_pb_reader r = {msg.p, msg.p + msg.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, w)) > 0) {
        switch (f.number) {
        case IN_NAME:
            CELER_TRY(want_wire(&f, WIRE_LEN, w, "name"));
            in->name = field_span(&f);
            break;
        case IN_DATATYPE:
            CELER_TRY(want_wire(&f, WIRE_LEN, w, "datatype"));
            in->datatype = field_span(&f);
            break;
        case IN_CONTENTS:
            CELER_TRY(want_wire(&f, WIRE_LEN, w, "contents"));
            in->has_contents = true;
            break;
        default: break;
        }
    }
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

/* The shape: repeated int64, packed or not, concatenated over every occurrence. */
static celer_status read_shape(span msg, celer_shape *s, const char *what) {
    s->rank = 0;
    celer_pb_reader r = {msg.p, msg.p + msg.len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number != IN_SHAPE) continue;
        bool packed = f.wire == WIRE_LEN;
        const uint8_t *p = f.p, *end = packed ? f.p + f.len : NULL;
        if (!packed) CELER_TRY(want_wire(&f, WIRE_VARINT, what, "shape"));
        for (;;) {
            uint64_t v = f.varint;
            if (packed) {
                if (p >= end) break;
                if (!read_varint(&p, end, &v))
                    return celer_errorf(CELER_ERR_PARSE, "%s: packed shape: truncated or overlong varint", what);
            }
            if ((int64_t)v < 0)
                return celer_errorf(CELER_ERR_INVALID, "%s: 'shape' must hold non-negative integers, got %lld", what,
                                    (long long)(int64_t)v);
            if (s->rank == CELER_MAX_RANK)
                return celer_errorf(CELER_ERR_LIMIT, "%s: shape has more than %d dimensions", what, CELER_MAX_RANK);
            s->dims[s->rank++] = (int64_t)v;
            if (!packed) break;
        }
    }
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

static int find_spec(const celer_kserve_tensor_spec *spec, int n_spec, span name) {
    for (int i = 0; i < n_spec; i++)
        if (span_eq(name, spec[i].name)) return i;
    return -1;
}

/* One input against its spec, its data from `raw` (raw_input_contents[index]) or typed contents. */
static celer_status decode_input(const in_msg *in, const celer_kserve_tensor_spec *sp, const span *raw, int index,
                                 celer_arena *arena, celer_kserve_input *out) {
    const char *what = what_name(arena, "input '%s'", sp->name);
    char a[200];
    if (in->datatype.len == 0)
        return celer_errorf(CELER_ERR_INVALID, "%s: missing 'datatype' (expected %s)", what, dt_name(sp->dtype));
    char dts[16] = "";
    if (in->datatype.len < sizeof dts) memcpy(dts, in->datatype.p, in->datatype.len);
    celer_dtype dtype = memchr(dts, 0, in->datatype.len) ? CELER_UNDEFINED : celer_dtype_from_kserve_name(dts);
    if (dtype == CELER_UNDEFINED)
        return celer_errorf(CELER_ERR_DTYPE, "%s: unknown datatype '%.*s' (expected %s)", what,
                            (int)CELER_MIN(in->datatype.len, 40), (const char *)in->datatype.p, dt_name(sp->dtype));
    if (dtype != sp->dtype) return celer_errorf(CELER_ERR_DTYPE, "%s: expected %s, got %s", what, dt_name(sp->dtype), dts);

    celer_tensor t = {.dtype = dtype};
    CELER_TRY(read_shape(in->msg, &t.shape, what));
    CELER_TRY(celer_kserve_check_shape(sp, &t.shape, what));
    int64_t numel = celer_shape_numel(&t.shape);
    if (numel < 0)
        return celer_errorf(CELER_ERR_LIMIT, "%s: shape %s is too large", what,
                            celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a));
    CELER_TRY(check_tensor_params(in->msg, IN_PARAMS, NULL, arena, what, NULL));

    if (in->shm.region) { /* read by the service from the region; t.data stays NULL */
        out->shm = in->shm;
    } else if (raw) {
        if (dtype == CELER_STRING) {
            CELER_TRY(celer_kserve_decode_bytes((const char *)raw->p, raw->len, (size_t)numel, false, arena, what, &t.data));
        } else {
            size_t need;
            if (celer_mul_size((size_t)numel, celer_dtype_size(dtype), &need))
                return celer_errorf(CELER_ERR_LIMIT, "%s: tensor too large", what);
            if (raw->len != need)
                return celer_errorf(CELER_ERR_INVALID, "%s: raw_input_contents[%d] has %zu bytes but shape %s of %s needs %zu",
                                    what, index, raw->len, celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a),
                                    dt_name(dtype), need);
            CELER_TRY(raw_fixed(*raw, dtype, arena, &t.data));
        }
    } else if (!in->has_contents) {
        if (numel > 0) return celer_errorf(CELER_ERR_INVALID, "%s: no 'contents' and no raw_input_contents", what);
        t.data = celer_arena_alloc(arena, 1); /* no elements: any valid pointer */
        if (!t.data) return celer_error_wrap(celer_error_status(), "%s", what);
    } else if (!contents_field(dtype)) {
        return celer_errorf(CELER_ERR_INVALID, "%s: %s has no typed contents field: send it in raw_input_contents", what,
                            dt_name(dtype));
    } else {
        size_t count;
        CELER_TRY(walk_contents(in->msg, dtype, NULL, 0, &count, what));
        if (count != (uint64_t)numel) /* every element took at least a byte: numel is bounded below */
            return celer_errorf(CELER_ERR_SHAPE, "%s: shape %s has %lld elements but %s has %zu", what,
                                celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a), (long long)numel,
                                contents_names[contents_field(dtype)], count);
        size_t bytes = count * celer_dtype_size(dtype); /* count <= message length: no overflow */
        t.data = celer_arena_alloc_uninit(arena, bytes ? bytes : 1); /* the walk writes every element */
        if (!t.data) return celer_error_wrap(celer_error_status(), "%s", what);
        CELER_TRY(walk_contents(in->msg, dtype, t.data, count, &count, what));
    }
    out->name = sp->name;
    out->tensor = t;
    return CELER_OK;
}

celer_status celer_grpc_decode_infer(const uint8_t *msg, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                     celer_arena *arena, celer_kserve_request *out) {
    static const char what[] = "ModelInferRequest";
    memset(out, 0, sizeof *out);
    if (!msg) msg = (const uint8_t *)""; /* an empty message (len 0): no arithmetic on NULL */
    /* first pass: count the repeated fields (fields come in any order) */
    int n_in = 0, n_out = 0, n_raw = 0, n_par = 0;
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int k;
    static const char *const names[] = {"", "model_name", "model_version", "id", "parameters", "inputs", "outputs",
                                        "raw_input_contents"};
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number > REQ_RAW) continue;
        CELER_TRY(want_wire(&f, WIRE_LEN, what, names[f.number]));
        n_par += f.number == REQ_PARAMS;
        n_in += f.number == REQ_INPUTS;
        n_out += f.number == REQ_OUTPUTS;
        n_raw += f.number == REQ_RAW;
    }
    if (k < 0) return CELER_ERR_PARSE;
    if (n_in > CELER_KSERVE_MAX_TENSORS)
        return celer_errorf(CELER_ERR_LIMIT, "request has %d inputs; at most %d are allowed", n_in, CELER_KSERVE_MAX_TENSORS);
    if (n_raw > CELER_KSERVE_MAX_TENSORS)
        return celer_errorf(CELER_ERR_LIMIT, "request has %d raw_input_contents; at most %d are allowed", n_raw,
                            CELER_KSERVE_MAX_TENSORS);
    if (n_out > CELER_KSERVE_MAX_TENSORS)
        return celer_errorf(CELER_ERR_LIMIT, "%d outputs requested; at most %d are allowed", n_out, CELER_KSERVE_MAX_TENSORS);
    if (n_par > MAX_PARAMS)
        return celer_errorf(CELER_ERR_LIMIT, "request has %d parameters; at most %d are allowed", n_par, MAX_PARAMS);

    /* second pass: where each is */
    span *spans = celer_arena_alloc(arena, sizeof(span) * (size_t)(n_par + n_in + n_out + n_raw + 1));
    in_msg *ins = celer_arena_alloc(arena, sizeof(in_msg) * (size_t)(n_in + 1));
    out->inputs = celer_arena_alloc(arena, sizeof *out->inputs * (size_t)(n_in + 1));
    uint8_t *seen = celer_arena_alloc(arena, (size_t)(n_spec > 0 ? n_spec : 1));
    if (!spans || !ins || !out->inputs || !seen) return celer_error_wrap(celer_error_status(), "%s", what);
    span *pars = spans, *outs = pars + n_par, *raws = outs + n_out, model = {0}, id = {0};
    bool has_id = false;
    int i_in = 0, i_out = 0, i_raw = 0, i_par = 0;
    r = (celer_pb_reader){msg, msg + len};
    while (celer_pb_next(&r, &f, what) > 0) {
        switch (f.number) {
        case REQ_MODEL_NAME: model = field_span(&f); break;
        case REQ_ID: id = field_span(&f), has_id = true; break;
        case REQ_PARAMS: pars[i_par++] = field_span(&f); break;
        case REQ_INPUTS:
            CELER_TRY(scan_input(field_span(&f), i_in, &ins[i_in]));
            i_in++;
            break;
        case REQ_OUTPUTS: outs[i_out++] = field_span(&f); break;
        case REQ_RAW: raws[i_raw++] = field_span(&f); break;
        default: break;
        }
    }

    /* inputs in shared memory: no contents, and no raw entry (the others' entries go in order) */
    int n_shm = 0;
    for (int i = 0; i < n_in; i++) {
        char w[300];
        snprintf(w, sizeof w, "%.*s", (int)CELER_MIN(ins[i].name.len, 200), ins[i].name.len ? (const char *)ins[i].name.p : "");
        CELER_TRY(read_shm(ins[i].msg, IN_PARAMS, w, arena, &ins[i].shm));
        if (!ins[i].shm.region) continue;
        n_shm++;
        if (ins[i].has_contents) /* Triton's wording */
            return celer_errorf(CELER_ERR_INVALID,
                                "unexpected 'content' provided when using shared memory for input tensor '%s' for model "
                                "'%.*s'", w, (int)CELER_MIN(model.len, 200), (const char *)model.p);
    }
    if (n_raw) {
        for (int i = 0; i < n_in; i++) /* Triton's wording, so clients see the same answer */
            if (ins[i].has_contents)
                return celer_errorf(CELER_ERR_INVALID,
                                    "contents field must not be specified when using raw_input_contents for '%.*s' for "
                                    "model '%.*s'",
                                    (int)CELER_MIN(ins[i].name.len, 200), (const char *)ins[i].name.p,
                                    (int)CELER_MIN(model.len, 200), (const char *)model.p);
        if (n_raw != n_in - n_shm)
            return celer_errorf(CELER_ERR_INVALID,
                                "the request has %d inputs%s but %d raw_input_contents: send one entry per input%s, in "
                                "the order of 'inputs'",
                                n_in - n_shm, n_shm ? " outside shared memory" : "", n_raw,
                                n_shm ? " not in shared memory" : "");
    }
    if (has_id) CELER_TRY(pb_string(id, arena, "request 'id'", &out->id));
    CELER_TRY(decode_request_params(pars, n_par, arena, out));
    CELER_TRY(decode_outputs(outs, n_out, arena, out));

    char spec_list[300];
    int next_raw = 0; /* raw_input_contents go to the inputs not in shared memory, in order */
    for (int i = 0; i < n_in; i++) {
        const in_msg *in = &ins[i];
        if (in->name.len == 0) return celer_errorf(CELER_ERR_INVALID, "inputs[%d]: missing 'name'", i);
        int si = find_spec(spec, n_spec, in->name);
        if (si < 0)
            return celer_errorf(CELER_ERR_INVALID, "unknown input '%.*s' (model inputs: %s)", (int)CELER_MIN(in->name.len, 200),
                                (const char *)in->name.p, celer_kserve_spec_names(spec, n_spec, spec_list, sizeof spec_list));
        if (seen[si])
            return celer_errorf(CELER_ERR_INVALID, "input '%s' already exists in request: it is given twice", spec[si].name);
        seen[si] = 1;
        int raw_index = next_raw;
        if (n_raw && !in->shm.region) next_raw++;
        CELER_TRY(decode_input(in, &spec[si], n_raw && !in->shm.region ? &raws[raw_index] : NULL, raw_index, arena,
                               &out->inputs[i]));
    }
    out->n_inputs = n_in;
    for (int s = 0; s < n_spec; s++)
        if (!seen[s] && !spec[s].optional) return celer_errorf(CELER_ERR_INVALID, "missing input '%s'", spec[s].name);
    return CELER_OK;
}

/* Copies a string field into buf (cap bytes with the NUL). */
static celer_status copy_target(span s, char *buf, size_t cap, const char *name) {
    if (s.len && memchr(s.p, 0, s.len)) return celer_errorf(CELER_ERR_INVALID, "ModelInferRequest: %s holds a NUL byte", name);
    if (s.len >= cap)
        return celer_errorf(CELER_ERR_LIMIT, "ModelInferRequest: %s of %zu bytes, at most %zu", name, s.len,
                            cap ? cap - 1 : 0);
    if (s.len) memcpy(buf, s.p, s.len);
    buf[s.len] = 0;
    return CELER_OK;
}

celer_status celer_grpc_infer_target(const uint8_t *msg, size_t len, char *model, size_t model_cap, char *version,
                                     size_t version_cap) {
    static const char what[] = "ModelInferRequest";
    span m = {0}, v = {0};
    if (!msg) msg = (const uint8_t *)"";
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number == REQ_MODEL_NAME) {
            CELER_TRY(want_wire(&f, WIRE_LEN, what, "model_name"));
            m = field_span(&f);
        } else if (f.number == REQ_MODEL_VERSION) {
            CELER_TRY(want_wire(&f, WIRE_LEN, what, "model_version"));
            v = field_span(&f);
        }
    }
    if (k < 0) return CELER_ERR_PARSE;
    CELER_TRY(copy_target(m, model, model_cap, "model_name"));
    return copy_target(v, version, version_cap, "model_version");
}

/* ======================================================================================== */
/* ModelInferResponse                                                                       */
/* ======================================================================================== */

/* One entry {key, InferParameter} of a parameters map (field `field`): a string_param (s) or an
 * int64_param (v). */
static void put_param(celer_jbuf *out, int field, const char *key, int kind, uint64_t v, const char *s) {
    size_t entry = celer_pb_begin(out, field);
    celer_pb_put_str(out, MAP_KEY, key);
    size_t value = celer_pb_begin(out, MAP_VALUE);
    if (kind == P_STRING) celer_pb_put_str(out, P_STRING, s);
    else celer_pb_put_varint(out, kind, v);
    celer_pb_end(out, value);
    celer_pb_end(out, entry);
}

/* The response's fields into `out`; raw_output_contents copied, or, with `body` (whose head `out`
 * is), as its parts by reference. */
static celer_status encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                 const char *const *names, const celer_tensor *outputs, int n_outputs, celer_jbuf *out,
                                 celer_body *body) {
    int sel[CELER_KSERVE_MAX_TENSORS];
    size_t bsize[CELER_KSERVE_MAX_TENSORS];
    const celer_kserve_shm *shm[CELER_KSERVE_MAX_TENSORS] = {0}; /* written into a region by the service */
    int n_sel = 0;
    if (req && req->n_outputs > 0) {
        if (req->n_outputs > CELER_KSERVE_MAX_TENSORS) return celer_errorf(CELER_ERR_LIMIT, "too many outputs requested");
        for (int q = 0; q < req->n_outputs; q++) {
            int found = -1;
            for (int i = 0; i < n_outputs && found < 0; i++)
                if (!strcmp(names[i], req->outputs[q].name)) found = i;
            if (found < 0) return celer_errorf(CELER_ERR_NOT_FOUND, "unknown output '%s' requested", req->outputs[q].name);
            if (req->outputs[q].shm.region) shm[n_sel] = &req->outputs[q].shm;
            sel[n_sel++] = found;
        }
    } else {
        if (n_outputs > CELER_KSERVE_MAX_TENSORS) return celer_errorf(CELER_ERR_LIMIT, "model has too many outputs");
        for (int i = 0; i < n_outputs; i++) sel[n_sel++] = i;
    }
    for (int k = 0; k < n_sel; k++) {
        const celer_tensor *t = &outputs[sel[k]];
        if (!celer_dtype_kserve_name(t->dtype))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "output '%s' has type %s, which KServe cannot represent", names[sel[k]],
                                celer_dtype_name(t->dtype));
        CELER_TRY(celer_kserve_binary_size(t, names[sel[k]], &bsize[k]));
    }
    if (model_name && *model_name) celer_pb_put_str(out, RESP_MODEL_NAME, model_name);
    if (model_version && *model_version) celer_pb_put_str(out, RESP_MODEL_VERSION, model_version);
    if (req && req->id && *req->id) celer_pb_put_str(out, RESP_ID, req->id);
    for (int k = 0; k < n_sel; k++) {
        const celer_tensor *t = &outputs[sel[k]];
        size_t mark = celer_pb_begin(out, RESP_OUTPUTS);
        celer_pb_put_str(out, OUT_NAME, names[sel[k]]);
        celer_pb_put_str(out, OUT_DATATYPE, celer_dtype_kserve_name(t->dtype));
        if (t->shape.rank > 0) { /* packed */
            size_t n = 0;
            for (int d = 0; d < t->shape.rank; d++) n += varint_size((uint64_t)t->shape.dims[d]);
            put_tag(out, OUT_SHAPE, WIRE_LEN);
            celer_pb_put_raw_varint(out, n);
            for (int d = 0; d < t->shape.rank; d++) celer_pb_put_raw_varint(out, (uint64_t)t->shape.dims[d]);
        }
        if (shm[k]) { /* its bytes are in the region: where, and how many */
            put_param(out, OUT_PARAMS, "shared_memory_region", P_STRING, 0, shm[k]->region);
            put_param(out, OUT_PARAMS, "shared_memory_offset", P_INT64, shm[k]->offset, NULL);
            put_param(out, OUT_PARAMS, "shared_memory_byte_size", P_INT64, bsize[k], NULL);
        }
        celer_pb_end(out, mark);
    }
    for (int k = 0; k < n_sel; k++) { /* one entry per output, empty for one in a region (as Triton) */
        put_tag(out, RESP_RAW, WIRE_LEN);
        celer_pb_put_raw_varint(out, shm[k] ? 0 : bsize[k]);
        if (shm[k]) continue; /* written into its region: an empty entry keeps the outputs' order */
        if (body) celer_body_tensor(body, &outputs[sel[k]], bsize[k]);
        else celer_kserve_write_binary(out, &outputs[sel[k]], bsize[k]);
    }
    return out->status;
}

celer_status celer_grpc_encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                     const char *const *names, const celer_tensor *outputs, int n_outputs,
                                     celer_jbuf *out) {
    return encode_infer(req, model_name, model_version, names, outputs, n_outputs, out, NULL);
}

celer_status celer_grpc_encode_infer_body(const celer_kserve_request *req, const char *model_name,
                                          const char *model_version, const char *const *names,
                                          const celer_tensor *outputs, int n_outputs, celer_body *body) {
    return encode_infer(req, model_name, model_version, names, outputs, n_outputs, &body->head, body);
}

/* ======================================================================================== */
/* System shared memory requests                                                           */
/* ======================================================================================== */

#define MAX_SHM_STRING 4096 /* names and keys are at most 255 bytes (shm.h checks): anything longer is refused early */

static celer_status shm_string(const celer_pb_field *f, celer_arena *arena, const char *what, const char *field,
                               const char **out) {
    char w[160];
    snprintf(w, sizeof w, "%s.%s", what, field);
    CELER_TRY(want_wire(f, WIRE_LEN, what, field));
    if (f->len > MAX_SHM_STRING) return celer_errorf(CELER_ERR_LIMIT, "%s has %zu bytes, at most 255", w, f->len);
    return pb_string(field_span(f), arena, w, out);
}

celer_status celer_grpc_decode_shm_register(const uint8_t *msg, size_t len, celer_arena *arena, const char **name,
                                            const char **key, uint64_t *offset, uint64_t *byte_size) {
    static const char what[] = "SystemSharedMemoryRegisterRequest";
    *name = *key = "";
    *offset = *byte_size = 0;
    if (!msg) msg = (const uint8_t *)"";
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0) {
        switch (f.number) {
        case 1: CELER_TRY(shm_string(&f, arena, what, "name", name)); break;
        case 2: CELER_TRY(shm_string(&f, arena, what, "key", key)); break;
        case 3:
            CELER_TRY(want_wire(&f, WIRE_VARINT, what, "offset"));
            *offset = f.varint;
            break;
        case 4:
            CELER_TRY(want_wire(&f, WIRE_VARINT, what, "byte_size"));
            *byte_size = f.varint;
            break;
        default: break;
        }
    }
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

celer_status celer_grpc_decode_shm_name(const uint8_t *msg, size_t len, const char *what, celer_arena *arena,
                                        const char **name) {
    *name = "";
    if (!msg) msg = (const uint8_t *)"";
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&r, &f, what)) > 0)
        if (f.number == 1) CELER_TRY(shm_string(&f, arena, what, "name", name));
    return k < 0 ? CELER_ERR_PARSE : CELER_OK;
}

/* ---- TraceSetting ---- */

celer_status celer_grpc_decode_trace_setting(const uint8_t *msg, size_t len, char *model, size_t model_cap,
                                             celer_trace_change *change) {
    const char *what = "TraceSettingRequest";
    celer_pb_reader r = {msg, msg + len};
    celer_pb_field f;
    int more;
    model[0] = 0;
    while ((more = celer_pb_next(&r, &f, what)) > 0) {
        if (f.number == 2 && f.wire == 2) {
            if (f.len >= model_cap || memchr(f.p, 0, f.len))
                return celer_errorf(CELER_ERR_INVALID, "%s.model_name: %zu bytes or a NUL byte (at most %zu bytes)",
                                    what, f.len, model_cap - 1);
            memcpy(model, f.p, f.len);
            model[f.len] = 0;
        }
        if (f.number != 1 || f.wire != 2) continue;
        const char *key = "";
        size_t key_len = 0;
        celer_trace_value v = {.null = true};
        celer_pb_reader e = {f.p, f.p + f.len};
        celer_pb_field k;
        while ((more = celer_pb_next(&e, &k, what)) > 0) {
            if (k.number == 1 && k.wire == 2) key = (const char *)k.p, key_len = k.len;
            if (k.number != 2 || k.wire != 2) continue;
            v = (celer_trace_value){.null = true}; /* the last value wins */
            celer_pb_reader vr = {k.p, k.p + k.len};
            celer_pb_field x;
            while ((more = celer_pb_next(&vr, &x, what)) > 0) {
                if (x.number != 1 || x.wire != 2) continue;
                if (v.n == CELER_TRACE_MAX_VALUES) {
                    v.other = true; /* more values than any setting takes */
                    continue;
                }
                v.null = false;
                v.s[v.n] = (const char *)x.p, v.len[v.n] = x.len;
                v.n++;
            }
            if (more < 0) return CELER_ERR_PARSE;
        }
        if (more < 0) return CELER_ERR_PARSE;
        CELER_TRY(celer_trace_change_set(change, key, key_len, &v));
    }
    return more < 0 ? CELER_ERR_PARSE : CELER_OK;
}

void celer_grpc_encode_trace_setting(void *user, const char *name, const char *const *values, int n) {
    celer_jbuf *out = user;
    size_t entry = celer_pb_begin(out, 1);
    celer_pb_put_str(out, 1, name);
    size_t value = celer_pb_begin(out, 2);
    for (int i = 0; i < n; i++) celer_pb_put_bytes(out, 1, values[i], strlen(values[i]));
    celer_pb_end(out, value);
    celer_pb_end(out, entry);
}
