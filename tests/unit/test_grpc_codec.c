/* The gRPC protobuf codec (grpc_codec.c): ModelInferRequest decoding (raw and typed contents, every
 * datatype, BYTES, parameters, protobuf's wire rules, truncation), the checks shared with the
 * HTTP codec, ModelInferResponse encoding read back by a small decoder written here, and the
 * ModelConfig message of the ModelConfig RPC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "server/config.h"
#include "server/grpc_codec.h"

static celer_arena arena;
static celer_jbuf msg; /* the request being built */

static int setup(void **state) {
    (void)state;
    celer_arena_init(&arena, 0, 0);
    celer_jbuf_init(&msg, 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    celer_arena_free(&arena);
    celer_jbuf_free(&msg);
    return 0;
}

/* ---- building requests (field numbers of grpc_service.proto) ---- */

static void put_shape(celer_jbuf *b, const int64_t *dims, int rank, bool packed) {
    if (!packed) {
        for (int d = 0; d < rank; d++) celer_pb_put_varint(b, 3, (uint64_t)dims[d]);
        return;
    }
    celer_jbuf list;
    celer_jbuf_init(&list, 0);
    for (int d = 0; d < rank; d++) celer_pb_put_raw_varint(&list, (uint64_t)dims[d]);
    celer_pb_put_bytes(b, 3, list.data ? list.data : "", list.len);
    celer_jbuf_free(&list);
}

/* An InferInputTensor without contents; returns nothing, appended to `b` as field 5. */
static void put_input(celer_jbuf *b, const char *name, const char *datatype, const int64_t *dims, int rank) {
    size_t m = celer_pb_begin(b, 5);
    celer_pb_put_str(b, 1, name);
    celer_pb_put_str(b, 2, datatype);
    put_shape(b, dims, rank, true);
    celer_pb_end(b, m);
}

/* A map<string, InferParameter> entry; kind is the InferParameter field (1 bool ... 5 uint64). */
static void put_param(celer_jbuf *b, int field, const char *key, int kind, uint64_t v, const char *s) {
    size_t e = celer_pb_begin(b, field);
    celer_pb_put_str(b, 1, key);
    size_t val = celer_pb_begin(b, 2);
    if (kind == 3) celer_pb_put_str(b, 3, s);
    else if (kind == 4) {
        char tag = (char)(4 << 3 | 1);
        celer_jbuf_raw(b, &tag, 1);
        celer_jbuf_raw(b, (const char *)&v, 8);
    } else if (kind) celer_pb_put_varint(b, kind, v);
    celer_pb_end(b, val);
    celer_pb_end(b, e);
}

static celer_status decode(const celer_kserve_tensor_spec *spec, int n_spec, celer_kserve_request *r) {
    assert_int_equal(msg.status, 0);
    return celer_grpc_decode_infer((const uint8_t *)msg.data, msg.len, spec, n_spec, &arena, r);
}

static void expect(celer_status st, celer_status want, const char *needle) {
    if (st != want) fail_msg("status %d (want %d): %s", st, want, celer_error_message());
    if (needle && !strstr(celer_error_message(), needle))
        fail_msg("message '%s' lacks '%s'", celer_error_message(), needle);
}

/* ---- every datatype ---- */

typedef struct dt_case {
    celer_dtype dtype;
    const char *name; /* KServe datatype */
} dt_case;
static const dt_case DTYPES[] = {
    {CELER_BOOL, "BOOL"},     {CELER_UINT8, "UINT8"},   {CELER_UINT16, "UINT16"}, {CELER_UINT32, "UINT32"},
    {CELER_UINT64, "UINT64"}, {CELER_INT8, "INT8"},     {CELER_INT16, "INT16"},   {CELER_INT32, "INT32"},
    {CELER_INT64, "INT64"},   {CELER_FLOAT16, "FP16"},  {CELER_FLOAT, "FP32"},    {CELER_DOUBLE, "FP64"},
    {CELER_BFLOAT16, "BF16"}, {CELER_STRING, "BYTES"},
};
enum { N_DT = sizeof DTYPES / sizeof DTYPES[0] };

static char dt_names[N_DT][8];
static celer_kserve_tensor_spec all_spec[N_DT];

static void make_all_spec(void) {
    for (int i = 0; i < N_DT; i++) {
        snprintf(dt_names[i], sizeof dt_names[i], "t%d", i);
        all_spec[i] = (celer_kserve_tensor_spec){.name = dt_names[i], .dtype = DTYPES[i].dtype, .rank = 2, .dims = {-1, 3}};
    }
}

/* Values for element j of dtype t: extremes of the type, so narrowing and sign bugs show. */
static void fill_element(celer_dtype t, void *dst, int j) {
    static const char *const strs[] = {"", "a\0b", "hello", "\xff\x00", "", "z"};
    switch (t) {
    case CELER_BOOL: ((uint8_t *)dst)[j] = (uint8_t)(j % 2); break;
    case CELER_UINT8: ((uint8_t *)dst)[j] = (uint8_t)(255 - j); break;
    case CELER_UINT16: ((uint16_t *)dst)[j] = (uint16_t)(65535 - j); break;
    case CELER_UINT32: ((uint32_t *)dst)[j] = UINT32_MAX - (uint32_t)j; break;
    case CELER_UINT64: ((uint64_t *)dst)[j] = UINT64_MAX - (uint64_t)j; break;
    case CELER_INT8: ((int8_t *)dst)[j] = (int8_t)(j % 2 ? -128 + j : 127 - j); break;
    case CELER_INT16: ((int16_t *)dst)[j] = (int16_t)(j % 2 ? -32768 + j : 32767 - j); break;
    case CELER_INT32: ((int32_t *)dst)[j] = j % 2 ? INT32_MIN + j : INT32_MAX - j; break;
    case CELER_INT64: ((int64_t *)dst)[j] = j % 2 ? INT64_MIN + j : INT64_MAX - j; break;
    case CELER_FLOAT16: case CELER_BFLOAT16: ((uint16_t *)dst)[j] = (uint16_t)(0x3c00 + j * 17); break;
    case CELER_FLOAT: ((float *)dst)[j] = j % 2 ? -1e-30f * (float)j : 3.25e30f; break;
    case CELER_DOUBLE: ((double *)dst)[j] = j % 2 ? -1e-300 * j : 1.5e300; break;
    case CELER_STRING: {
        static const size_t lens[] = {0, 3, 5, 2, 0, 1};
        ((celer_str *)dst)[j] = (celer_str){strs[j], lens[j]};
        break;
    }
    default: fail();
    }
}

static celer_tensor make_tensor(celer_dtype t) {
    celer_tensor x = {.dtype = t, .shape = {.rank = 2, .dims = {2, 3}}};
    x.data = celer_arena_alloc(&arena, 6 * celer_dtype_size(t));
    for (int j = 0; j < 6; j++) fill_element(t, x.data, j);
    return x;
}

static void assert_same_tensor(const celer_tensor *a, const celer_tensor *b) {
    assert_int_equal(a->dtype, b->dtype);
    assert_true(celer_shape_equal(&a->shape, &b->shape));
    int64_t n = celer_shape_numel(&a->shape);
    if (a->dtype == CELER_STRING) {
        for (int64_t i = 0; i < n; i++) TU_ASSERT_STR(b, i, ((const celer_str *)a->data)[i]);
        return;
    }
    assert_memory_equal(a->data, b->data, (size_t)n * celer_dtype_size(a->dtype));
}

/* Raw bytes of a tensor: fixed-size elements as they are, BYTES length-prefixed. */
static void put_raw(celer_jbuf *b, const celer_tensor *t) {
    celer_jbuf tmp;
    celer_jbuf_init(&tmp, 0);
    size_t size;
    assert_int_equal(celer_kserve_binary_size(t, "t", &size), 0);
    celer_kserve_write_binary(&tmp, t, size);
    celer_pb_put_bytes(b, 7, tmp.data ? tmp.data : "", tmp.len);
    celer_jbuf_free(&tmp);
}

/* Typed contents of a tensor, packed or one field per element. */
static void put_contents(celer_jbuf *b, const celer_tensor *t, bool packed) {
    static const int field_of[CELER_DTYPE_COUNT] = {
        [CELER_BOOL] = 1,  [CELER_INT8] = 2,   [CELER_INT16] = 2,  [CELER_INT32] = 2, [CELER_INT64] = 3,
        [CELER_UINT8] = 4, [CELER_UINT16] = 4, [CELER_UINT32] = 4, [CELER_UINT64] = 5, [CELER_FLOAT] = 6,
        [CELER_DOUBLE] = 7, [CELER_STRING] = 8,
    };
    int field = field_of[t->dtype];
    size_t c = celer_pb_begin(b, 5);
    celer_jbuf body;
    celer_jbuf_init(&body, 0);
    for (int j = 0; j < 6; j++) {
        uint64_t v = 0;
        switch (t->dtype) {
        case CELER_BOOL: case CELER_UINT8: v = ((uint8_t *)t->data)[j]; break;
        case CELER_UINT16: v = ((uint16_t *)t->data)[j]; break;
        case CELER_UINT32: v = ((uint32_t *)t->data)[j]; break;
        case CELER_UINT64: v = ((uint64_t *)t->data)[j]; break;
        case CELER_INT8: v = (uint64_t)(int64_t)((int8_t *)t->data)[j]; break;
        case CELER_INT16: v = (uint64_t)(int64_t)((int16_t *)t->data)[j]; break;
        case CELER_INT32: v = (uint64_t)(int64_t)((int32_t *)t->data)[j]; break;
        case CELER_INT64: v = (uint64_t)((int64_t *)t->data)[j]; break;
        default: break;
        }
        if (t->dtype == CELER_STRING) {
            celer_str e = ((celer_str *)t->data)[j];
            celer_pb_put_bytes(b, 8, e.data, e.len);
        } else if (t->dtype == CELER_FLOAT || t->dtype == CELER_DOUBLE) {
            size_t n = t->dtype == CELER_FLOAT ? 4 : 8;
            char tag = (char)(field << 3 | (n == 4 ? 5 : 1));
            if (!packed) celer_jbuf_raw(b, &tag, 1);
            celer_jbuf_raw(packed ? &body : b, (char *)t->data + (size_t)j * n, n);
        } else if (packed) {
            celer_pb_put_raw_varint(&body, v);
        } else {
            celer_pb_put_varint(b, field, v);
        }
    }
    if (packed && t->dtype != CELER_STRING) celer_pb_put_bytes(b, field, body.data ? body.data : "", body.len);
    celer_jbuf_free(&body);
    celer_pb_end(b, c);
}

/* ---- reading responses back: a small decoder of ModelInferResponse ---- */

typedef struct resp {
    char model[64], version[64], id[64];
    int n_out, n_raw;
    char names[16][32], dtypes[16][16];
    int n_params[16]; /* parameters map entries of each output */
    celer_shape shapes[16];
    const uint8_t *raw[16];
    size_t raw_len[16];
} resp;

static void copy_str(char *dst, size_t cap, const celer_pb_field *f) {
    assert_int_equal(f->wire, 2);
    assert_true(f->len < cap);
    memcpy(dst, f->p, f->len);
    dst[f->len] = 0;
}

static void read_response(const uint8_t *p, size_t len, resp *r) {
    memset(r, 0, sizeof *r);
    celer_pb_reader rd = {p, p + len};
    celer_pb_field f;
    int k;
    while ((k = celer_pb_next(&rd, &f, "response")) > 0) {
        if (f.number == 1) copy_str(r->model, sizeof r->model, &f);
        else if (f.number == 2) copy_str(r->version, sizeof r->version, &f);
        else if (f.number == 3) copy_str(r->id, sizeof r->id, &f);
        else if (f.number == 5) {
            assert_true(r->n_out < 16);
            int o = r->n_out++;
            celer_pb_reader in = {f.p, f.p + f.len};
            celer_pb_field g;
            while ((k = celer_pb_next(&in, &g, "output")) > 0) {
                if (g.number == 1) copy_str(r->names[o], sizeof r->names[o], &g);
                else if (g.number == 2) copy_str(r->dtypes[o], sizeof r->dtypes[o], &g);
                else if (g.number == 4) r->n_params[o]++;
                else if (g.number == 3) {
                    assert_int_equal(g.wire, 2); /* packed */
                    celer_pb_reader d = {g.p, g.p + g.len};
                    while (d.p < d.end) { /* bare varints */
                        uint64_t v = 0;
                        int shift = 0;
                        uint8_t c;
                        do {
                            c = *d.p++;
                            v |= (uint64_t)(c & 0x7f) << shift;
                            shift += 7;
                        } while (c & 0x80);
                        r->shapes[o].dims[r->shapes[o].rank++] = (int64_t)v;
                    }
                } else fail_msg("unexpected output field %d", g.number);
            }
            assert_int_equal(k, 0);
        } else if (f.number == 6) {
            assert_int_equal(f.wire, 2);
            assert_true(r->n_raw < 16);
            r->raw[r->n_raw] = f.p;
            r->raw_len[r->n_raw++] = f.len;
        } else fail_msg("unexpected response field %d", f.number);
    }
    assert_int_equal(k, 0);
}

/* ---- tests ---- */

/* Every datatype in raw_input_contents, decoded in place, then encoded as a response and read back. */
static void test_round_trip_raw(void **state) {
    (void)state;
    make_all_spec();
    celer_tensor want[N_DT];
    int64_t dims[2] = {2, 3};
    for (int i = 0; i < N_DT; i++) {
        want[i] = make_tensor(DTYPES[i].dtype);
        put_input(&msg, dt_names[i], DTYPES[i].name, dims, 2);
    }
    for (int i = 0; i < N_DT; i++) put_raw(&msg, &want[i]);
    celer_pb_put_str(&msg, 1, "every");
    celer_pb_put_str(&msg, 3, "req-7");
    celer_kserve_request r;
    expect(decode(all_spec, N_DT, &r), 0, NULL);
    assert_string_equal(r.id, "req-7");
    assert_int_equal(r.n_inputs, N_DT);
    for (int i = 0; i < N_DT; i++) {
        assert_string_equal(r.inputs[i].name, dt_names[i]);
        assert_same_tensor(&want[i], &r.inputs[i].tensor);
    }
    /* one-byte elements are always aligned: used where they lie in the message */
    const uint8_t *u8 = r.inputs[1].tensor.data;
    assert_true(u8 >= (const uint8_t *)msg.data && u8 < (const uint8_t *)msg.data + msg.len);
    /* BYTES elements point into the message too, NULs kept */
    const celer_str *s = r.inputs[N_DT - 1].tensor.data;
    assert_true((const char *)s[1].data > msg.data && (const char *)s[1].data < msg.data + msg.len);

    const char *names[N_DT];
    celer_tensor outs[N_DT];
    for (int i = 0; i < N_DT; i++) names[i] = r.inputs[i].name, outs[i] = r.inputs[i].tensor;
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    assert_int_equal(celer_grpc_encode_infer(&r, "every", "3", names, outs, N_DT, &out), 0);
    resp rs;
    read_response((const uint8_t *)out.data, out.len, &rs);
    assert_string_equal(rs.model, "every");
    assert_string_equal(rs.version, "3");
    assert_string_equal(rs.id, "req-7");
    assert_int_equal(rs.n_out, N_DT);
    assert_int_equal(rs.n_raw, N_DT);
    for (int i = 0; i < N_DT; i++) { /* each raw entry is the bytes the request sent */
        assert_string_equal(rs.names[i], dt_names[i]);
        assert_string_equal(rs.dtypes[i], DTYPES[i].name);
        assert_true(celer_shape_equal(&rs.shapes[i], &want[i].shape));
        celer_jbuf one;
        celer_jbuf_init(&one, 0);
        size_t size;
        assert_int_equal(celer_kserve_binary_size(&want[i], "t", &size), 0);
        celer_kserve_write_binary(&one, &want[i], size);
        assert_int_equal(rs.raw_len[i], one.len);
        if (one.len) assert_memory_equal(rs.raw[i], one.data, one.len);
        celer_jbuf_free(&one);
    }
    celer_jbuf_free(&out);
}

/* Every output read back exactly, BYTES with a NUL and empty elements included. */
static void test_encode(void **state) {
    (void)state;
    for (int i = 0; i < N_DT; i++) {
        celer_tensor t = make_tensor(DTYPES[i].dtype);
        const char *name = "out";
        celer_kserve_request req = {.id = i % 2 ? "x" : NULL};
        celer_jbuf out;
        celer_jbuf_init(&out, 0);
        assert_int_equal(celer_grpc_encode_infer(&req, "m", i % 3 ? "1" : NULL, &name, &t, 1, &out), 0);
        resp rs;
        read_response((const uint8_t *)out.data, out.len, &rs);
        assert_string_equal(rs.model, "m");
        assert_string_equal(rs.id, i % 2 ? "x" : "");
        assert_int_equal(rs.n_out, 1);
        assert_int_equal(rs.n_raw, 1);
        assert_string_equal(rs.names[0], "out");
        assert_string_equal(rs.dtypes[0], DTYPES[i].name);
        assert_true(celer_shape_equal(&rs.shapes[0], &t.shape));
        /* the raw entry decodes back to the same tensor through the request decoder's rules */
        celer_kserve_tensor_spec sp = {.name = "out", .dtype = t.dtype, .rank = 2, .dims = {2, 3}};
        celer_jbuf_reset(&msg);
        int64_t dims[2] = {2, 3};
        put_input(&msg, "out", DTYPES[i].name, dims, 2);
        celer_pb_put_bytes(&msg, 7, rs.raw[0], rs.raw_len[0]);
        celer_kserve_request r;
        expect(decode(&sp, 1, &r), 0, NULL);
        assert_same_tensor(&t, &r.inputs[0].tensor);
        celer_jbuf_free(&out);
    }
    /* BYTES raw form: 4-byte little-endian length, then the bytes */
    celer_tensor t = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = TU_STRS("ab", "", "c")};
    ((celer_str *)t.data)[0] = TU_LIT("a\0");
    const char *name = "s";
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    assert_int_equal(celer_grpc_encode_infer(NULL, "m", NULL, &name, &t, 1, &out), 0);
    resp rs;
    read_response((const uint8_t *)out.data, out.len, &rs);
    assert_int_equal(rs.raw_len[0], 4 + 2 + 4 + 0 + 4 + 1);
    assert_memory_equal(rs.raw[0], "\2\0\0\0a\0\0\0\0\0\1\0\0\0c", 15);
    /* requested outputs: that order, unknown ones NOT_FOUND */
    celer_tensor two[2] = {make_tensor(CELER_FLOAT), make_tensor(CELER_INT64)};
    const char *names2[2] = {"a", "b"};
    celer_kserve_output_request ask[2] = {{.name = "b"}, {.name = "a"}};
    celer_kserve_request req = {.n_outputs = 2, .outputs = ask};
    celer_jbuf_reset(&out); /* the encoder appends */
    assert_int_equal(celer_grpc_encode_infer(&req, "m", NULL, names2, two, 2, &out), 0);
    read_response((const uint8_t *)out.data, out.len, &rs);
    assert_int_equal(rs.n_out, 2);
    assert_string_equal(rs.names[0], "b");
    assert_string_equal(rs.dtypes[0], "INT64");
    assert_int_equal(rs.raw_len[0], 48);
    assert_string_equal(rs.names[1], "a");
    ask[1].name = "zz";
    expect(celer_grpc_encode_infer(&req, "m", NULL, names2, two, 2, &out), CELER_ERR_NOT_FOUND, "unknown output 'zz'");
    celer_jbuf_free(&out);
    /* growth bounded by the buffer's cap: the jbuf's status comes back */
    celer_jbuf small;
    celer_jbuf_init(&small, 40);
    assert_int_equal(celer_grpc_encode_infer(NULL, "m", NULL, names2, two, 2, &small), CELER_ERR_LIMIT);
    celer_jbuf_free(&small);
}

/* Typed contents for every datatype that has a field, packed and unpacked. */
static void test_round_trip_typed(void **state) {
    (void)state;
    make_all_spec();
    for (int packed = 0; packed < 2; packed++) {
        for (int i = 0; i < N_DT; i++) {
            celer_dtype t = DTYPES[i].dtype;
            celer_tensor want = make_tensor(t);
            celer_jbuf_reset(&msg);
            size_t m = celer_pb_begin(&msg, 5);
            celer_pb_put_str(&msg, 1, dt_names[i]);
            celer_pb_put_str(&msg, 2, DTYPES[i].name);
            int64_t dims[2] = {2, 3};
            put_shape(&msg, dims, 2, packed);
            if (t != CELER_FLOAT16 && t != CELER_BFLOAT16) put_contents(&msg, &want, packed);
            else celer_pb_put_bytes(&msg, 5, "", 0); /* an empty contents message */
            celer_pb_end(&msg, m);
            celer_kserve_request r;
            celer_status st = decode(&all_spec[i], 1, &r);
            if (t == CELER_FLOAT16 || t == CELER_BFLOAT16) {
                expect(st, CELER_ERR_INVALID, "has no typed contents field: send it in raw_input_contents");
                continue;
            }
            expect(st, 0, NULL);
            assert_same_tensor(&want, &r.inputs[0].tensor);
        }
    }
}

/* raw_input_contents and contents together: refused in Triton's words. */
static void test_mixing_refused(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 1, .dims = {2}},
                                                 {.name = "y", .dtype = CELER_FLOAT, .rank = 1, .dims = {2}}};
    int64_t dims[1] = {2};
    float v[2] = {1, 2};
    put_input(&msg, "x", "FP32", dims, 1);
    size_t m = celer_pb_begin(&msg, 5);
    celer_pb_put_str(&msg, 1, "y");
    celer_pb_put_str(&msg, 2, "FP32");
    put_shape(&msg, dims, 1, true);
    celer_pb_put_bytes(&msg, 5, "\x35\0\0\x80\x3f", 5); /* fp32_contents: 1.0 */
    celer_pb_end(&msg, m);
    celer_pb_put_bytes(&msg, 7, v, 8);
    celer_pb_put_bytes(&msg, 7, v, 8);
    celer_pb_put_str(&msg, 1, "mlp");
    celer_kserve_request r;
    expect(decode(sp, 2, &r), CELER_ERR_INVALID,
           "contents field must not be specified when using raw_input_contents for 'y' for model 'mlp'");
    assert_string_equal(celer_error_message(),
                        "contents field must not be specified when using raw_input_contents for 'y' for model 'mlp'");
}

/* raw entries: one per input, each exactly shape x element size. */
static void test_raw_mismatch(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}},
                                                 {.name = "y", .dtype = CELER_INT64, .rank = 1, .dims = {-1}, .optional = true}};
    int64_t dims[1] = {2};
    float v[3] = {1, 2, 3};
    celer_kserve_request r;
    put_input(&msg, "x", "FP32", dims, 1);
    celer_pb_put_bytes(&msg, 7, v, 8);
    celer_pb_put_bytes(&msg, 7, v, 8);
    expect(decode(sp, 2, &r), CELER_ERR_INVALID, "the request has 1 inputs but 2 raw_input_contents");
    celer_jbuf_reset(&msg);
    put_input(&msg, "x", "FP32", dims, 1);
    celer_pb_put_bytes(&msg, 7, v, 12);
    expect(decode(sp, 2, &r), CELER_ERR_INVALID,
           "input 'x': raw_input_contents[0] has 12 bytes but shape [2] of FP32 needs 8");
    /* BYTES raw: lengths must fill the entry exactly */
    static const celer_kserve_tensor_spec ss[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {2}}};
    celer_jbuf_reset(&msg);
    put_input(&msg, "s", "BYTES", dims, 1);
    celer_pb_put_bytes(&msg, 7, "\1\0\0\0a\5\0\0\0b", 10);
    expect(decode(ss, 1, &r), CELER_ERR_INVALID, "input 's': BYTES element 1: length 5 but only 1 bytes remain");
    celer_jbuf_reset(&msg);
    put_input(&msg, "s", "BYTES", dims, 1);
    celer_pb_put_bytes(&msg, 7, "\1\0\0\0a\0\0\0\0zz", 11);
    expect(decode(ss, 1, &r), CELER_ERR_INVALID, "input 's'");
    /* no data at all */
    celer_jbuf_reset(&msg);
    put_input(&msg, "x", "FP32", dims, 1);
    expect(decode(sp, 2, &r), CELER_ERR_INVALID, "input 'x': no 'contents' and no raw_input_contents");
    /* an empty tensor needs none */
    celer_jbuf_reset(&msg);
    int64_t zero[1] = {0};
    put_input(&msg, "x", "FP32", zero, 1);
    expect(decode(sp, 2, &r), 0, NULL);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 0);
    /* typed element count against the shape */
    celer_jbuf_reset(&msg);
    size_t m = celer_pb_begin(&msg, 5);
    celer_pb_put_str(&msg, 1, "x");
    celer_pb_put_str(&msg, 2, "FP32");
    put_shape(&msg, dims, 1, true);
    celer_pb_put_bytes(&msg, 5, "\x35\0\0\x80\x3f", 5);
    celer_pb_end(&msg, m);
    expect(decode(sp, 2, &r), CELER_ERR_SHAPE, "input 'x': shape [2] has 2 elements but fp32_contents has 1");
    /* the wrong typed field for the datatype */
    celer_jbuf_reset(&msg);
    m = celer_pb_begin(&msg, 5);
    celer_pb_put_str(&msg, 1, "x");
    celer_pb_put_str(&msg, 2, "FP32");
    put_shape(&msg, dims, 1, true);
    celer_pb_put_bytes(&msg, 5, "\x10\x01\x10\x02", 4); /* int_contents 1, 2 */
    celer_pb_end(&msg, m);
    expect(decode(sp, 2, &r), CELER_ERR_INVALID, "input 'x': datatype FP32 takes fp32_contents, got int_contents");
}

/* BYTES: NUL bytes and empty elements, raw and in bytes_contents. */
static void test_bytes(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec ss[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}}};
    int64_t dims[1] = {3};
    celer_kserve_request r;
    put_input(&msg, "s", "BYTES", dims, 1);
    celer_pb_put_bytes(&msg, 7, "\3\0\0\0\0a\0\0\0\0\0\2\0\0\0\0\0", 17);
    expect(decode(ss, 1, &r), 0, NULL);
    const celer_tensor *t = &r.inputs[0].tensor;
    TU_ASSERT_STR(t, 0, TU_LIT("\0a\0"));
    TU_ASSERT_STR(t, 1, TU_LIT(""));
    TU_ASSERT_STR(t, 2, TU_LIT("\0\0"));
    celer_jbuf_reset(&msg);
    size_t m = celer_pb_begin(&msg, 5);
    celer_pb_put_str(&msg, 1, "s");
    celer_pb_put_str(&msg, 2, "BYTES");
    put_shape(&msg, dims, 1, false);
    size_t c = celer_pb_begin(&msg, 5);
    celer_pb_put_bytes(&msg, 8, "", 0);
    celer_pb_end(&msg, c);
    c = celer_pb_begin(&msg, 5); /* contents given twice: merged, as protobuf merges messages */
    celer_pb_put_bytes(&msg, 8, "x\0y", 3);
    celer_pb_put_bytes(&msg, 8, "\0", 1);
    celer_pb_end(&msg, c);
    celer_pb_end(&msg, m);
    expect(decode(ss, 1, &r), 0, NULL);
    t = &r.inputs[0].tensor;
    TU_ASSERT_STR(t, 0, TU_LIT(""));
    TU_ASSERT_STR(t, 1, TU_LIT("x\0y"));
    TU_ASSERT_STR(t, 2, TU_LIT("\0"));
}

/* Fields out of order, an unpacked shape, singular fields given twice (the last wins), and
 * unknown fields of every wire type skipped at each level. */
static void test_wire_rules(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_INT32, .rank = 2, .dims = {-1, 2}}};
    int32_t v[4] = {1, -2, 3, -4};
    celer_pb_put_bytes(&msg, 7, v, 16); /* raw before the inputs */
    celer_pb_put_str(&msg, 3, "first");
    celer_jbuf_raw(&msg, "\xa0\x06\x7f", 3);                   /* field 100, varint */
    celer_jbuf_raw(&msg, "\xa9\x06" "12345678", 10);           /* field 101, fixed64 */
    celer_jbuf_raw(&msg, "\xb5\x06" "1234", 6);                /* field 102, fixed32 */
    celer_jbuf_raw(&msg, "\xba\x06\x03" "abc", 6);             /* field 103, bytes */
    size_t m = celer_pb_begin(&msg, 5);
    celer_pb_put_varint(&msg, 3, 2);                           /* shape, unpacked: 2 */
    celer_pb_put_str(&msg, 2, "FP32");                         /* overridden below */
    celer_jbuf_raw(&msg, "\xa0\x06\x01", 3);                   /* unknown inside the input */
    celer_pb_put_str(&msg, 1, "y");
    celer_pb_put_bytes(&msg, 3, "\x02", 1);                    /* shape continues, packed: 2 */
    celer_pb_put_str(&msg, 1, "x");                            /* the last name wins */
    celer_pb_put_str(&msg, 2, "INT32");
    celer_pb_end(&msg, m);
    celer_pb_put_str(&msg, 3, "second");
    celer_kserve_request r;
    expect(decode(sp, 1, &r), 0, NULL);
    assert_string_equal(r.id, "second");
    assert_int_equal(r.inputs[0].tensor.shape.rank, 2);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 2);
    assert_int_equal(r.inputs[0].tensor.shape.dims[1], 2);
    assert_memory_equal(r.inputs[0].tensor.data, v, 16);
    /* found by fuzz_grpc_infer (UBSan: arithmetic on NULL): an empty message given as NULL, a
     * parameter without a key (an empty name), an unpacked shape beside a packed one */
    expect(celer_grpc_decode_infer(NULL, 0, sp, 1, &arena, &r), CELER_ERR_INVALID, "missing input 'x'");
    celer_jbuf_raw(&msg, "\x22\x06\x12\x04\x10\x05\x10\x06", 8); /* parameters {value {int64_param 5, 6}} */
    expect(decode(sp, 1, &r), 0, NULL);
    assert_int_equal(r.n_params, 1);
    assert_string_equal(r.param_keys[0], "");
    assert_string_equal(r.param_values[0], "6"); /* the oneof's last value */
    /* groups and wire types 6/7 are malformed */
    celer_jbuf_raw(&msg, "\xa3\x06", 2);
    expect(decode(sp, 1, &r), CELER_ERR_PARSE, "groups");
    /* a known field with another wire type */
    celer_jbuf_reset(&msg);
    celer_pb_put_varint(&msg, 5, 1);
    expect(decode(sp, 1, &r), CELER_ERR_PARSE, "field 5 (inputs) has wire type 0, expected 2");
    /* shape: non-negative, at most CELER_MAX_RANK dims, the spec's rank and dims */
    celer_jbuf_reset(&msg);
    int64_t neg[2] = {-1, 2};
    put_input(&msg, "x", "INT32", neg, 2);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "input 'x': 'shape' must hold non-negative integers, got -1");
    celer_jbuf_reset(&msg);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    put_input(&msg, "x", "INT32", nine, 9);
    expect(decode(sp, 1, &r), CELER_ERR_LIMIT, "input 'x': shape has more than 8 dimensions");
    celer_jbuf_reset(&msg);
    int64_t bad[2] = {2, 3};
    put_input(&msg, "x", "INT32", bad, 2);
    expect(decode(sp, 1, &r), CELER_ERR_SHAPE, "input 'x': dimension 1 is 3, the model expects 2");
    /* element counts that overflow */
    celer_jbuf_reset(&msg);
    int64_t huge[2] = {INT64_MAX / 2 + 1, 2};
    put_input(&msg, "x", "INT32", huge, 2);
    expect(decode(sp, 1, &r), CELER_ERR_LIMIT, "is too large");
    /* names and datatypes as the HTTP codec checks them */
    celer_jbuf_reset(&msg);
    put_input(&msg, "q", "INT32", bad, 2);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "unknown input 'q' (model inputs: x)");
    celer_jbuf_reset(&msg);
    put_input(&msg, "x", "FP32", bad, 2);
    expect(decode(sp, 1, &r), CELER_ERR_DTYPE, "input 'x': expected INT32, got FP32");
    celer_jbuf_reset(&msg);
    put_input(&msg, "x", "FP33", bad, 2);
    expect(decode(sp, 1, &r), CELER_ERR_DTYPE, "input 'x': unknown datatype 'FP33' (expected INT32)");
    celer_jbuf_reset(&msg);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "missing input 'x'");
    /* caps: inputs */
    celer_jbuf_reset(&msg);
    for (int i = 0; i <= CELER_KSERVE_MAX_TENSORS; i++) put_input(&msg, "x", "INT32", bad, 2);
    expect(decode(sp, 1, &r), CELER_ERR_LIMIT, "at most 256");
}

/* Every prefix of a valid request fails cleanly (each copied to a buffer of its exact size, so
 * ASan sees any read past it), and so do bytes flipped one at a time. */
static void test_truncated(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 1, .dims = {2}},
                                                 {.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {2}}};
    int64_t dims[1] = {2};
    float v[2] = {1, 2};
    celer_pb_put_str(&msg, 1, "m");
    put_param(&msg, 4, "tier", 2, 5, NULL);
    size_t o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    celer_pb_end(&msg, o);
    put_input(&msg, "x", "FP32", dims, 1);
    put_input(&msg, "s", "BYTES", dims, 1);
    celer_pb_put_bytes(&msg, 7, v, 8);
    celer_pb_put_bytes(&msg, 7, "\1\0\0\0a\0\0\0\0", 9);
    celer_kserve_request r;
    expect(decode(sp, 2, &r), 0, NULL);
    for (size_t n = 0; n < msg.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, msg.data, n);
        celer_status st = celer_grpc_decode_infer(copy, n, sp, 2, &arena, &r);
        if (st == 0) fail_msg("prefix of %zu bytes (of %zu) decoded", n, msg.len);
        char model[8], version[8];
        (void)celer_grpc_infer_target(copy, n, model, sizeof model, version, sizeof version);
        free(copy);
    }
    for (size_t i = 0; i < msg.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = malloc(msg.len);
            memcpy(copy, msg.data, msg.len);
            copy[i] ^= (uint8_t)(1 << bit);
            (void)celer_grpc_decode_infer(copy, msg.len, sp, 2, &arena, &r);
            free(copy);
        }
}

/* Request parameters: timeout, reserved names, values passed on as text; output and input
 * parameters as the HTTP codec checks them. */
static void test_parameters(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_UINT8, .rank = 1, .dims = {1}}};
    int64_t dims[1] = {1};
    celer_kserve_request r;
#define BASE()                                  \
    do {                                        \
        celer_jbuf_reset(&msg);                 \
        put_input(&msg, "x", "UINT8", dims, 1); \
        celer_pb_put_bytes(&msg, 7, "\7", 1);   \
    } while (0)
    BASE();
    double d = 0.25;
    uint64_t dbits;
    memcpy(&dbits, &d, 8);
    put_param(&msg, 4, "timeout", 2, 2500, NULL);
    put_param(&msg, 4, "flag", 1, 1, NULL);
    put_param(&msg, 4, "n", 2, (uint64_t)-42, NULL);
    put_param(&msg, 4, "u", 5, UINT64_MAX, NULL);
    put_param(&msg, 4, "d", 4, dbits, NULL);
    put_param(&msg, 4, "s", 3, 0, "tier-1");
    put_param(&msg, 4, "empty", 0, 0, NULL);
    put_param(&msg, 4, "priority", 2, 0, NULL); /* asks for nothing */
    put_param(&msg, 4, "s", 3, 0, "tier-2");   /* the last entry of a key wins */
    expect(decode(sp, 1, &r), 0, NULL);
    assert_int_equal(r.timeout_us, 2500);
    const char *want[][2] = {{"timeout", "2500"}, {"flag", "true"}, {"n", "-42"}, {"u", "18446744073709551615"},
                             {"d", "0.25"},       {"priority", "0"}, {"s", "tier-2"}};
    assert_int_equal(r.n_params, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(r.param_keys[i], want[i][0]);
        assert_string_equal(r.param_values[i], want[i][1]);
    }
    BASE();
    put_param(&msg, 4, "timeout", 3, 0, "100");
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "request parameter 'timeout' must be an int64_param");
    BASE();
    put_param(&msg, 4, "timeout", 2, (uint64_t)-1, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "'timeout' must be an int64_param of microseconds >= 0");
    BASE();
    put_param(&msg, 4, "priority", 2, 3, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "request parameter 'priority' is refused: celer has no priority levels");
    BASE();
    put_param(&msg, 4, "sequence_id", 5, 9, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "request parameter 'sequence_id' is refused");
    BASE();
    put_param(&msg, 4, "triton_x", 1, 1, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "names starting with triton_ are reserved");
    BASE();
    put_param(&msg, 4, "bad\xff", 1, 1, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "not valid UTF-8");
    BASE();
    for (int i = 0; i <= 256; i++) put_param(&msg, 4, "k", 1, 1, NULL);
    expect(decode(sp, 1, &r), CELER_ERR_LIMIT, "at most 256");

    /* outputs: binary_data accepted (meaningless on gRPC), classification read as Triton reads it
     * (an int64_param of at least 1), others unknown */
    BASE();
    size_t o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    put_param(&msg, 2, "binary_data", 1, 1, NULL);
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), 0, NULL);
    assert_int_equal(r.n_outputs, 1);
    assert_string_equal(r.outputs[0].name, "z");
    o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "output 'z' already exists in request");
    BASE();
    o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    put_param(&msg, 2, "classification", 2, 3, NULL);
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), 0, NULL);
    assert_int_equal(r.outputs[0].classification, 3);
    static const struct {
        int kind;
        uint64_t value;
        const char *want;
    } bad[] = {{2, 0, "invalid value for 'classification' parameter, expected >= 0: output 'z' asked for 0"},
               {2, (uint64_t)-4, "invalid value for 'classification' parameter, expected >= 0"},
               {5, 3, "invalid value type for 'classification' parameter, expected int64_param: output 'z' gave uint64_param"},
               {1, 1, "invalid value type for 'classification' parameter, expected int64_param"}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        BASE();
        o = celer_pb_begin(&msg, 6);
        celer_pb_put_str(&msg, 1, "z");
        put_param(&msg, 2, "classification", bad[i].kind, bad[i].value, NULL);
        celer_pb_end(&msg, o);
        expect(decode(sp, 1, &r), CELER_ERR_INVALID, bad[i].want);
    }
    BASE();
    o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    put_param(&msg, 2, "colour", 3, 0, "red");
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "output 'z': unknown parameter 'colour'");
#undef BASE
}

/* An input "x" of UINT8 [2] with shared-memory parameters (kinds as put_param's; 0: left out). */
static void put_shm_input(const char *region, int region_kind, int64_t offset, int offset_kind, int64_t size,
                          bool contents) {
    int64_t dims[1] = {2};
    size_t m = celer_pb_begin(&msg, 5);
    celer_pb_put_str(&msg, 1, "x");
    celer_pb_put_str(&msg, 2, "UINT8");
    put_shape(&msg, dims, 1, true);
    if (region_kind) put_param(&msg, 4, "shared_memory_region", region_kind, 5, region);
    if (offset_kind) put_param(&msg, 4, "shared_memory_offset", offset_kind, (uint64_t)offset, NULL);
    if (size >= 0) put_param(&msg, 4, "shared_memory_byte_size", 2, (uint64_t)size, NULL);
    if (contents) {
        size_t c = celer_pb_begin(&msg, 5);
        celer_pb_put_varint(&msg, 4, 1);
        celer_pb_put_varint(&msg, 4, 2);
        celer_pb_end(&msg, c);
    }
    celer_pb_end(&msg, m);
}

/* System shared memory: the parameters decoded (the service reads and writes the regions), the raw
 * entries going to the other inputs, Triton's checks and words, and the answer without data. */
static void test_shared_memory(void **state) {
    (void)state;
    static const celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_UINT8, .rank = 1, .dims = {2}},
                                                  {.name = "y", .dtype = CELER_UINT8, .rank = 1, .dims = {1}}};
    int64_t one[1] = {1};
    celer_kserve_request r;
    /* x in a region, y raw: the one raw entry is y's, in either order of the inputs */
    for (int order = 0; order < 2; order++) {
        celer_jbuf_reset(&msg);
        if (order) put_input(&msg, "y", "UINT8", one, 1);
        put_shm_input("in", 3, 8, 2, 2, false);
        if (!order) put_input(&msg, "y", "UINT8", one, 1);
        celer_pb_put_bytes(&msg, 7, "\7", 1);
        expect(decode(sp, 2, &r), 0, NULL);
        const celer_kserve_input *x = &r.inputs[order], *y = &r.inputs[1 - order];
        assert_string_equal(x->shm.region, "in");
        assert_int_equal(x->shm.offset, 8);
        assert_int_equal(x->shm.byte_size, 2);
        assert_null(x->tensor.data);
        assert_null(y->shm.region);
        assert_int_equal(((const uint8_t *)y->tensor.data)[0], 7);
    }
    /* both in regions: no raw entry at all */
    celer_jbuf_reset(&msg);
    put_shm_input("in", 3, 0, 0, 2, false);
    expect(decode(sp, 1, &r), 0, NULL);
    assert_int_equal(r.inputs[0].shm.offset, 0);
    /* a raw entry for the input in a region too: one entry too many */
    celer_pb_put_bytes(&msg, 7, "\1\2", 2);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "the request has 0 inputs outside shared memory but 1 raw_input_contents");
    static const struct {
        int region_kind, offset_kind;
        int64_t offset, size;
        bool contents;
        const char *want;
    } bad[] = {
        {3, 0, 0, 2, true, "unexpected 'content' provided when using shared memory for input tensor 'x' for model ''"},
        {2, 0, 0, 2, false, "invalid value type for 'shared_memory_region' parameter for tensor 'x', expected string_param"},
        {3, 5, 1, 2, false, "invalid value type for 'shared_memory_offset' parameter for tensor 'x', expected int64_param"},
        {3, 2, -1, 2, false, "'shared_memory_offset' parameter for tensor 'x' must be >= 0"},
        {0, 2, 4, -1, false, "'shared_memory_offset' can not be specified without 'shared_memory_region' parameter"},
        {3, 0, 0, -1, false, "'shared_memory_region' needs 'shared_memory_byte_size'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_jbuf_reset(&msg);
        put_shm_input("in", bad[i].region_kind, bad[i].offset, bad[i].offset_kind, bad[i].size, bad[i].contents);
        expect(decode(sp, 1, &r), CELER_ERR_INVALID, bad[i].want);
    }
    /* outputs: decoded; not with classification */
    celer_jbuf_reset(&msg);
    put_shm_input("in", 3, 0, 0, 2, false);
    size_t o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "z");
    put_param(&msg, 2, "shared_memory_region", 3, 0, "out");
    put_param(&msg, 2, "shared_memory_offset", 2, 16, NULL);
    put_param(&msg, 2, "shared_memory_byte_size", 2, 64, NULL);
    celer_pb_end(&msg, o);
    o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "w");
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), 0, NULL);
    assert_string_equal(r.outputs[0].shm.region, "out");
    assert_int_equal(r.outputs[0].shm.offset, 16);
    assert_int_equal(r.outputs[0].shm.byte_size, 64);
    assert_null(r.outputs[1].shm.region);
    /* the answer: an empty raw entry and its parameters for z, w's bytes */
    uint8_t zd[3] = {1, 2, 3}, wd[1] = {9};
    celer_tensor outs[2] = {{.dtype = CELER_UINT8, .shape = {.rank = 1, .dims = {3}}, .data = zd},
                            {.dtype = CELER_UINT8, .shape = {.rank = 1, .dims = {1}}, .data = wd}};
    const char *names[2] = {"z", "w"};
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    assert_int_equal(celer_grpc_encode_infer(&r, "m", "1", names, outs, 2, &out), 0);
    resp rs;
    read_response((const uint8_t *)out.data, out.len, &rs);
    assert_int_equal(rs.n_out, 2);
    assert_int_equal(rs.n_raw, 2);
    assert_string_equal(rs.names[0], "z");
    assert_int_equal(rs.n_params[0], 3);
    assert_int_equal(rs.raw_len[0], 0);
    assert_int_equal(rs.n_params[1], 0);
    assert_int_equal(rs.raw_len[1], 1);
    assert_int_equal(rs.raw[1][0], 9);
    celer_jbuf_free(&out);
    o = celer_pb_begin(&msg, 6);
    celer_pb_put_str(&msg, 1, "v");
    put_param(&msg, 2, "shared_memory_region", 3, 0, "out");
    put_param(&msg, 2, "shared_memory_byte_size", 2, 64, NULL);
    put_param(&msg, 2, "classification", 2, 2, NULL);
    celer_pb_end(&msg, o);
    expect(decode(sp, 1, &r), CELER_ERR_INVALID, "output can't set both 'shared_memory_region' and 'classification'");

    /* the registry's requests */
    const char *name, *key;
    uint64_t off, size;
    celer_jbuf_reset(&msg);
    celer_pb_put_str(&msg, 1, "in");
    celer_pb_put_str(&msg, 2, "/celer_in");
    celer_pb_put_varint(&msg, 3, 4096);
    celer_pb_put_varint(&msg, 4, 64);
    assert_int_equal(celer_grpc_decode_shm_register((const uint8_t *)msg.data, msg.len, &arena, &name, &key, &off, &size), 0);
    assert_string_equal(name, "in");
    assert_string_equal(key, "/celer_in");
    assert_int_equal(off, 4096);
    assert_int_equal(size, 64);
    assert_int_equal(celer_grpc_decode_shm_register(NULL, 0, &arena, &name, &key, &off, &size), 0);
    assert_string_equal(name, "");
    celer_jbuf_reset(&msg);
    celer_pb_put_bytes(&msg, 2, "/a\0b", 4);
    expect(celer_grpc_decode_shm_register((const uint8_t *)msg.data, msg.len, &arena, &name, &key, &off, &size),
           CELER_ERR_INVALID, "SystemSharedMemoryRegisterRequest.key holds a NUL byte");
    celer_jbuf_reset(&msg);
    celer_pb_put_str(&msg, 3, "x");
    expect(celer_grpc_decode_shm_register((const uint8_t *)msg.data, msg.len, &arena, &name, &key, &off, &size),
           CELER_ERR_PARSE, "offset");
    celer_jbuf_reset(&msg);
    celer_pb_put_str(&msg, 1, "out");
    assert_int_equal(celer_grpc_decode_shm_name((const uint8_t *)msg.data, msg.len, "Status", &arena, &name), 0);
    assert_string_equal(name, "out");
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    celer_jbuf_reset(&msg);
    celer_pb_put_str(&msg, 1, big);
    expect(celer_grpc_decode_shm_name((const uint8_t *)msg.data, msg.len, "Status", &arena, &name), CELER_ERR_LIMIT,
           "Status.name has 4999 bytes");
}

/* Typed values narrower than their field: out of range names the input and the element. */
static void test_narrowing(void **state) {
    (void)state;
    static const struct {
        celer_dtype t;
        const char *name;
        int field;
        uint64_t bad;
        const char *msg;
    } cases[] = {
        {CELER_INT8, "INT8", 2, 128, "input 'x': element 1 is 128, out of range for INT8"},
        {CELER_INT8, "INT8", 2, (uint64_t)-129, "input 'x': element 1 is -129, out of range for INT8"},
        {CELER_INT16, "INT16", 2, 40000, "element 1 is 40000, out of range for INT16"},
        {CELER_INT32, "INT32", 2, 1ull << 31, "element 1 is 2147483648, out of range for INT32"},
        {CELER_UINT8, "UINT8", 4, 256, "input 'x': element 1 is 256, out of range for UINT8"},
        {CELER_UINT16, "UINT16", 4, 65536, "element 1 is 65536, out of range for UINT16"},
        {CELER_UINT32, "UINT32", 4, 1ull << 32, "element 1 is 4294967296, out of range for UINT32"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        celer_kserve_tensor_spec sp = {.name = "x", .dtype = cases[i].t, .rank = 1, .dims = {2}};
        int64_t dims[1] = {2};
        celer_jbuf_reset(&msg);
        size_t m = celer_pb_begin(&msg, 5);
        celer_pb_put_str(&msg, 1, "x");
        celer_pb_put_str(&msg, 2, cases[i].name);
        put_shape(&msg, dims, 1, true);
        size_t c = celer_pb_begin(&msg, 5);
        celer_pb_put_varint(&msg, cases[i].field, 1);
        celer_pb_put_varint(&msg, cases[i].field, cases[i].bad);
        celer_pb_end(&msg, c);
        celer_pb_end(&msg, m);
        celer_kserve_request r;
        expect(decode(&sp, 1, &r), CELER_ERR_INVALID, cases[i].msg);
    }
}

static void test_infer_target(void **state) {
    (void)state;
    char model[8], version[4];
    celer_pb_put_str(&msg, 1, "first");
    celer_pb_put_str(&msg, 2, "12");
    celer_pb_put_str(&msg, 1, "mlp"); /* the last wins */
    assert_int_equal(celer_grpc_infer_target((const uint8_t *)msg.data, msg.len, model, sizeof model, version, sizeof version), 0);
    assert_string_equal(model, "mlp");
    assert_string_equal(version, "12");
    celer_pb_put_str(&msg, 2, "1234");
    expect(celer_grpc_infer_target((const uint8_t *)msg.data, msg.len, model, sizeof model, version, sizeof version),
           CELER_ERR_LIMIT, "model_version of 4 bytes, at most 3");
    celer_jbuf_reset(&msg);
    assert_int_equal(celer_grpc_infer_target((const uint8_t *)msg.data, msg.len, model, sizeof model, version, sizeof version), 0);
    assert_string_equal(model, "");
}

/* The writer: varints of every length, nested lengths patched, read back by the reader. */
static void test_writer_reader(void **state) {
    (void)state;
    static const uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 35, UINT64_MAX};
    for (size_t i = 0; i < CELER_ARRAY_LEN(vals); i++) celer_pb_put_varint(&msg, (int)i + 1, vals[i]);
    size_t m = celer_pb_begin(&msg, 20);
    celer_pb_put_str(&msg, 1, "inner");
    celer_pb_put_bool(&msg, 2, false);
    celer_pb_put_bool(&msg, 3, true);
    celer_pb_end(&msg, m);
    celer_pb_put_varint(&msg, 536870911, 5); /* the largest field number */
    celer_pb_reader r = {(const uint8_t *)msg.data, (const uint8_t *)msg.data + msg.len};
    celer_pb_field f;
    for (size_t i = 0; i < CELER_ARRAY_LEN(vals); i++) {
        assert_int_equal(celer_pb_next(&r, &f, "t"), 1);
        assert_int_equal(f.number, (int)i + 1);
        assert_true(f.varint == vals[i]);
    }
    assert_int_equal(celer_pb_next(&r, &f, "t"), 1);
    assert_int_equal(f.number, 20);
    assert_int_equal(f.len, 2 + 5 + 2);
    assert_int_equal(celer_pb_next(&r, &f, "t"), 1);
    assert_int_equal(f.number, 536870911);
    assert_int_equal(celer_pb_next(&r, &f, "t"), 0);
    /* malformed: an 11-byte varint, a length past the end, field number 0 */
    static const char *const bad[] = {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "\x0a\x05" "ab", "\x00\x01"};
    static const size_t bad_len[] = {11, 4, 2};
    static const char *const why[] = {"truncated or overlong varint", "length 5 but only 2 bytes left",
                                      "invalid field number 0"};
    for (int i = 0; i < 3; i++) {
        celer_pb_reader b = {(const uint8_t *)bad[i], (const uint8_t *)bad[i] + bad_len[i]};
        assert_int_equal(celer_pb_next(&b, &f, "msg"), -1);
        assert_int_equal(celer_error_status(), CELER_ERR_PARSE);
        assert_non_null(strstr(celer_error_message(), why[i]));
    }
}

/* ---- ModelConfig (model_config.proto), read back by a small dumper ---- */

/* Appends the message as "field:value" tokens: varints as signed 64-bit numbers, the
 * length-delimited fields whose dotted path is in `nested` as "field{...}", other ones as
 * 'strings'. */
static void dump_pb(const uint8_t *p, size_t n, const char *path, const char *const *nested, celer_jbuf *out) {
    celer_pb_reader r = {p, p + n};
    celer_pb_field f;
    int more;
    while ((more = celer_pb_next(&r, &f, "ModelConfig")) > 0) {
        char sub[64], tok[64];
        snprintf(sub, sizeof sub, "%s%s%d", path, *path ? "." : "", f.number);
        bool message = false;
        for (int i = 0; nested[i]; i++) message = message || !strcmp(nested[i], sub);
        if (out->len && out->data[out->len - 1] != '{') celer_jbuf_raw(out, " ", 1);
        if (f.wire == 0) {
            snprintf(tok, sizeof tok, "%d:%lld", f.number, (long long)f.varint);
            celer_jbuf_raw(out, tok, strlen(tok));
        } else if (message) {
            snprintf(tok, sizeof tok, "%d{", f.number);
            celer_jbuf_raw(out, tok, strlen(tok));
            dump_pb(f.p, f.len, sub, nested, out);
            celer_jbuf_raw(out, "}", 1);
        } else {
            assert_int_equal(f.wire, 2);
            snprintf(tok, sizeof tok, "%d:'", f.number);
            celer_jbuf_raw(out, tok, strlen(tok));
            celer_jbuf_raw(out, (const char *)f.p, f.len);
            celer_jbuf_raw(out, "'", 1);
        }
    }
    assert_int_equal(more, 0);
}

/* The config parsed from `text`, written by celer_config_to_pb and dumped. */
static void expect_config_pb(const char *text, const char *want) {
    static const char *const nested[] = {
        "3",  "3.1", "3.2", "3.3", /* version_policy: latest, all, specific */
        "5",  "5.5", "6",   "6.5", /* input, output, their reshape */
        "7",                       /* instance_group */
        "11", "11.6",              /* dynamic_batching, default_queue_policy */
        "14", "14.2",              /* parameters entry, its ModelParameter */
        "24",                      /* response_cache */
        NULL};
    celer_model_config cfg;
    assert_int_equal(celer_config_parse(text, strlen(text), "config.pbtxt", &arena, &cfg), CELER_OK);
    celer_config_to_pb(&cfg, &msg);
    assert_int_equal(msg.status, CELER_OK);
    celer_jbuf dump;
    celer_jbuf_init(&dump, 0);
    dump_pb((const uint8_t *)msg.data, msg.len, "", nested, &dump);
    if (strcmp(dump.data ? dump.data : "", want)) fail_msg("got  %s\nwant %s", dump.data ? dump.data : "", want);
    celer_jbuf_free(&dump);
    celer_jbuf_reset(&msg);
}

/* Every key the JSON config has, with model_config.proto's field numbers and enum values
 * (TYPE_INT64 = 9, TYPE_FP32 = 11, KIND_CPU = 2); -1 dims sign-extended; proto3 defaults (false,
 * 0, "", FORMAT_NONE) left out, but the messages the JSON always has (response_cache, the
 * version policy) present even when empty. */
static void test_model_config(void **state) {
    (void)state;
    expect_config_pb("name: \"m\" platform: \"onnxruntime_onnx\" max_batch_size: 8\n"
                     "version_policy { specific { versions: [3, 1] } }\n"
                     "input { name: \"x\" data_type: TYPE_INT64 dims: [-1, 4] optional: true }\n"
                     "input { name: \"r\" data_type: TYPE_FP32 dims: [2, 3] reshape { shape: [6] } }\n"
                     "output { name: \"y\" data_type: TYPE_FP32 dims: [5] label_filename: \"l.txt\" }\n"
                     "instance_group { count: 2 kind: KIND_CPU }\n"
                     "dynamic_batching { preferred_batch_size: [2, 4] max_queue_delay_microseconds: 50\n"
                     "  default_queue_policy { default_timeout_microseconds: 7 allow_timeout_override: true\n"
                     "    max_queue_size: 10 } }\n"
                     "response_cache { enable: true }\n"
                     "parameters { key: \"k\" value { string_value: \"v\" } }",
                     "1:'m' 2:'onnxruntime_onnx' 3{3{1:3 1:1}} 4:8"
                     " 5{1:'x' 2:9 4:-1 4:4 8:1} 5{1:'r' 2:11 4:2 4:3 5{1:6}}"
                     " 6{1:'y' 2:11 3:5 4:'l.txt'}"
                     " 7{1:'m' 4:2 2:2}"
                     " 11{1:2 1:4 2:50 6{2:7 3:1 4:10}}"
                     " 24{1:1}"
                     " 14{1:'k' 2{1:'v'}}"
                     " 8:'model.onnx'");
    expect_config_pb("", "3{1{1:1}} 24{} 8:'model.onnx'");
    expect_config_pb("version_policy { all { } }", "3{2{}} 24{} 8:'model.onnx'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writer_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_typed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixing_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_narrowing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infer_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
