/* KServe v2 / v1 protocol: request decoding (JSON, binary extension, raw), validation messages,
 * response encoding, and decode(encode(x)) == x for every datatype. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "server/kserve.h"
#include "opcase.h"

static celer_arena arena;

static int setup(void **state) {
    (void)state;
    celer_arena_init(&arena, 0, 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    celer_arena_free(&arena);
    return 0;
}

static const celer_kserve_tensor_spec SPEC_XY[] = {
    {.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "y", .dtype = CELER_INT64, .rank = 1, .dims = {2}},
};

static celer_status dec(const char *body, celer_kserve_request *r) {
    return celer_kserve_decode_infer(body, strlen(body), SIZE_MAX, SPEC_XY, 2, &arena, r);
}

static void expect_error(const char *body, celer_status want, const char *msg) {
    celer_kserve_request r;
    celer_status st = dec(body, &r);
    if (st != want) fail_msg("status %d (want %d) for %s: %s", st, want, body, celer_error_message());
    if (msg && strcmp(celer_error_message(), msg) != 0) fail_msg("message '%s', want '%s'", celer_error_message(), msg);
}

static void test_datatypes(void **state) {
    (void)state;
    const char *names[] = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                           "INT32", "INT64", "FP16", "FP32", "FP64", "BF16", "BYTES"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(names); i++) {
        celer_dtype t = celer_dtype_from_kserve_name(names[i]);
        assert_int_not_equal(t, CELER_UNDEFINED);
        assert_string_equal(celer_dtype_kserve_name(t), names[i]);
    }
    assert_int_equal(celer_dtype_from_kserve_name("FP33"), CELER_UNDEFINED);
    assert_int_equal(celer_dtype_from_kserve_name("fp32"), CELER_UNDEFINED);
    assert_int_equal(celer_dtype_from_kserve_name(NULL), CELER_UNDEFINED);
    assert_null(celer_dtype_kserve_name(CELER_COMPLEX64));
    assert_int_equal(celer_dtype_from_kserve_name("FP32"), CELER_FLOAT);
    assert_int_equal(celer_dtype_from_kserve_name("BYTES"), CELER_STRING);
}

static const char *GOOD =
    "{\"id\":\"req-1\",\"parameters\":{\"binary_data_output\":true,\"timeout\":2500,\"tier\":1},"
    "\"inputs\":[{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[7,-9000000000]},"
    "{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[[1,2,3],[4.5,-0.25,1e-3]]}],"
    "\"outputs\":[{\"name\":\"z\",\"parameters\":{\"binary_data\":false}},{\"name\":\"w\"}]}";

static void test_decode_json(void **state) {
    (void)state;
    celer_kserve_request r;
    assert_int_equal(dec(GOOD, &r), 0);
    assert_string_equal(r.id, "req-1");
    assert_true(r.binary_data_output);
    assert_int_equal(r.timeout_us, 2500);
    assert_int_equal(r.n_inputs, 2);
    assert_string_equal(r.inputs[0].name, "y");
    assert_int_equal(r.inputs[0].tensor.dtype, CELER_INT64);
    assert_true(((int64_t *)r.inputs[0].tensor.data)[1] == -9000000000ll);
    assert_string_equal(r.inputs[1].name, "x");
    assert_int_equal(r.inputs[1].tensor.shape.rank, 2);
    assert_int_equal(r.inputs[1].tensor.shape.dims[0], 2);
    const float *x = r.inputs[1].tensor.data;
    assert_true(x[3] == 4.5f && x[4] == -0.25f && x[5] == 1e-3f);
    assert_int_equal(r.n_outputs, 2);
    assert_string_equal(r.outputs[0].name, "z");
    assert_false(r.outputs[0].binary);
    /* flat data is accepted for any rank */
    assert_int_equal(dec("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]},"
                         "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]}]}",
                         &r),
                     0);
    assert_null(r.id);
    assert_int_equal(r.n_outputs, 0);
    assert_false(r.binary_data_output);
    /* BYTES as JSON strings; BOOL; FP16 as numbers */
    celer_kserve_tensor_spec sp[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {2}},
                                     {.name = "b", .dtype = CELER_BOOL, .rank = 1, .dims = {3}},
                                     {.name = "h", .dtype = CELER_FLOAT16, .rank = 0}};
    const char *body = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"ab\",\"\\u00e9\"]},"
                       "{\"name\":\"b\",\"shape\":[3],\"datatype\":\"BOOL\",\"data\":[true,false,true]},"
                       "{\"name\":\"h\",\"shape\":[],\"datatype\":\"FP16\",\"data\":[1.5]}]}";
    assert_int_equal(celer_kserve_decode_infer(body, strlen(body), SIZE_MAX, sp, 3, &arena, &r), 0);
    assert_string_equal(((const celer_str *)r.inputs[0].tensor.data)[1].data, "\xc3\xa9");
    assert_int_equal(((uint8_t *)r.inputs[1].tensor.data)[2], 1);
    assert_int_equal(r.inputs[2].tensor.shape.rank, 0);
    assert_int_equal(((uint16_t *)r.inputs[2].tensor.data)[0], 0x3e00);
}

static void test_decode_errors(void **state) {
    (void)state;
    const char *y = "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]}";
    char body[1024];
#define B(...) (snprintf(body, sizeof body, __VA_ARGS__), body)
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"INT64\",\"data\":[1,2,3,4,5,6]},%s]}", y),
                 CELER_ERR_DTYPE, "input 'x': expected FP32, got INT64");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5]},%s]}", y),
                 CELER_ERR_SHAPE, "input 'x': shape [2,3] has 6 elements but data has 5");
    expect_error(B("{\"inputs\":[{\"name\":\"foo\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]},%s]}", y),
                 CELER_ERR_INVALID, "unknown input 'foo' (model inputs: x, y)");
    expect_error(B("{\"inputs\":[%s]}", y), CELER_ERR_INVALID, "missing input 'x'");
    expect_error(B("{\"inputs\":[%s,%s]}", y, y), CELER_ERR_INVALID, "input 'y' already exists in request: it is given twice");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_SHAPE, "input 'x': expected shape [-1,3] (rank 2), got [3]");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]},%s]}", y),
                 CELER_ERR_SHAPE, "input 'x': dimension 1 is 4, the model expects 3 (shape [-1,3], got [1,4])");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP33\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_DTYPE, "input 'x': unknown datatype 'FP33' (expected FP32)");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\"},%s]}", y), CELER_ERR_INVALID,
                 "input 'x': no 'data' and no parameters.binary_data_size");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,-3],\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3.0],\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,,3],\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":\"1,3\",\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3,4,5,6,7,8,9],\"datatype\":\"FP32\",\"data\":[1]},%s]}", y),
                 CELER_ERR_LIMIT, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1000000000000,3],\"datatype\":\"FP32\",\"data\":[1,2,3]},%s]}", y),
                 CELER_ERR_SHAPE, "input 'x': shape [1000000000000,3] has 3000000000000 elements but data has 3");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[4611686018427387904,3],\"datatype\":\"FP32\",\"data\":[1]},%s]}", y),
                 CELER_ERR_LIMIT, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,\"3\"]},%s]}", y),
                 CELER_ERR_INVALID, NULL);
    /* any nesting of the right element count is taken (Triton's reading); the count must match */
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[[1,2],[3,4],[5,6]]},%s]}", y),
                 CELER_OK, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[[1,2],[[3],4]]},%s]}", y),
                 CELER_ERR_SHAPE, "input 'x': shape [2,3] has 6 elements but data has 4");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3],"
                   "\"parameters\":{\"binary_data_size\":12}},%s]}", y),
                 CELER_ERR_INVALID, "input 'x': has both 'data' and parameters.binary_data_size");
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\","
                   "\"parameters\":{\"binary_data_size\":12}},%s]}", y),
                 CELER_ERR_INVALID, "input 'x': binary_data_size given but the request has no Inference-Header-Content-Length header");
    expect_error(B("{\"id\":5,\"inputs\":[]}"), CELER_ERR_INVALID, "request 'id' must be a string");
    expect_error(B("{\"inputs\":{}}"), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[1,2]}"), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[{\"shape\":[1]}]}"), CELER_ERR_INVALID, NULL);
    expect_error(B("{}"), CELER_ERR_INVALID, "request has no 'inputs'");
    expect_error(B("[1,2]"), CELER_ERR_INVALID, "request body must be a JSON object");
    expect_error(B("{\"inputs\":[%s],\"parameters\":{\"timeout\":-1}}", y), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s],\"parameters\":{\"timeout\":1.5}}", y), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s],\"parameters\":{\"binary_data_output\":1}}", y), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s],\"outputs\":[{\"name\":\"a\"},{\"name\":\"a\"}]}", y), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s],\"outputs\":[{\"name\":\"a\",\"parameters\":{\"binary_data\":\"yes\"}}]}", y),
                 CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s],\"outputs\":[{}]}", y), CELER_ERR_INVALID, NULL);
    expect_error(B("{\"inputs\":[%s]", y), CELER_ERR_PARSE, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,1e]},%s]}", y),
                 CELER_ERR_PARSE, NULL);
    expect_error(B("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]},"
                   "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2.5]}]}"),
                 CELER_ERR_INVALID, NULL);
    assert_non_null(strstr(celer_error_message(), "input 'y': element 1"));
#undef B
}

/* JSON header + binary tail. */
static size_t make_binary(char *out, const char *json, const void *tail, size_t tail_len) {
    size_t jl = strlen(json);
    memcpy(out, json, jl);
    memcpy(out + jl, tail, tail_len);
    return jl;
}

static void test_decode_binary(void **state) {
    (void)state;
    char body[1024];
    float xs[6] = {1, 2, 3, 4, 5, 6};
    int64_t ys[2] = {11, -12};
    char tail[64];
    memcpy(tail, xs, 24);
    memcpy(tail + 24, ys, 16);
    const char *json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":24}},"
                       "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":16}}]}";
    size_t jl = make_binary(body, json, tail, 40);
    celer_kserve_request r;
    assert_int_equal(celer_kserve_decode_infer(body, jl + 40, jl, SPEC_XY, 2, &arena, &r), 0);
    assert_memory_equal(r.inputs[0].tensor.data, xs, 24);
    assert_memory_equal(r.inputs[1].tensor.data, ys, 16);
    /* trailing bytes */
    assert_int_equal(celer_kserve_decode_infer(body, jl + 41, jl, SPEC_XY, 2, &arena, &r), CELER_ERR_INVALID);
    assert_string_equal(celer_error_message(), "1 trailing bytes after the binary inputs");
    /* too short */
    assert_int_equal(celer_kserve_decode_infer(body, jl + 39, jl, SPEC_XY, 2, &arena, &r), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "binary_data_size 16 but only 15 bytes remain"));
    /* header length past the body */
    assert_int_equal(celer_kserve_decode_infer(body, jl + 40, jl + 41, SPEC_XY, 2, &arena, &r), CELER_ERR_PARSE);
    /* every prefix of the body and every header length: an error, never a crash */
    for (size_t cut = 0; cut < jl + 40; cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, body, cut);
        assert_int_not_equal(celer_kserve_decode_infer(copy, cut, jl, SPEC_XY, 2, &arena, &r), 0);
        assert_int_not_equal(celer_kserve_decode_infer(copy, cut, cut, SPEC_XY, 2, &arena, &r), 0);
        free(copy);
    }
    /* wrong size */
    const char *json2 = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":100}},"
                        "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]}]}";
    char big[100] = {0};
    jl = make_binary(body, json2, big, 100);
    assert_int_equal(celer_kserve_decode_infer(body, jl + 100, jl, SPEC_XY, 2, &arena, &r), CELER_ERR_INVALID);
    assert_string_equal(celer_error_message(), "input 'x': binary_data_size 100 but 24 bytes expected (shape [2,3], FP32)");
    /* misaligned tail: copied, still right */
    const char *json3 = "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":24}},"
                        "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":16}}] }";
    jl = make_binary(body + 1, json3, tail, 40);
    assert_int_equal(celer_kserve_decode_infer(body + 1, jl + 40, jl, SPEC_XY, 2, &arena, &r), 0);
    assert_memory_equal(r.inputs[0].tensor.data, xs, 24);
    assert_memory_equal(r.inputs[1].tensor.data, ys, 16);
    /* BYTES in binary: 4-byte little-endian length + bytes */
    celer_kserve_tensor_spec sp[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}}};
    const char sb[] = "\x02\x00\x00\x00hi\x00\x00\x00\x00\x03\x00\x00\x00" "abc";
    const char *json4 = "{\"inputs\":[{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":17}}]}";
    jl = make_binary(body, json4, sb, 17);
    assert_int_equal(celer_kserve_decode_infer(body, jl + 17, jl, sp, 1, &arena, &r), 0);
    TU_ASSERT_STR(&r.inputs[0].tensor, 0, TU_LIT("hi"));
    TU_ASSERT_STR(&r.inputs[0].tensor, 1, TU_LIT(""));
    TU_ASSERT_STR(&r.inputs[0].tensor, 2, TU_LIT("abc"));
    for (size_t cut = jl; cut < jl + 17; cut++) /* truncated tails */
        assert_int_not_equal(celer_kserve_decode_infer(body, cut, jl, sp, 1, &arena, &r), 0);
    const char *json5 = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":17}}]}";
    jl = make_binary(body, json5, sb, 17);
    assert_int_equal(celer_kserve_decode_infer(body, jl + 17, jl, sp, 1, &arena, &r), CELER_ERR_INVALID);
    const char bad_len[] = "\xff\xff\xff\xff" "abc";
    const char *json6 = "{\"inputs\":[{\"name\":\"s\",\"shape\":[1],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":7}}]}";
    jl = make_binary(body, json6, bad_len, 7);
    assert_int_equal(celer_kserve_decode_infer(body, jl + 7, jl, sp, 1, &arena, &r), CELER_ERR_INVALID);
}

static void test_decode_raw(void **state) {
    (void)state;
    celer_kserve_tensor_spec sp[] = {{.name = "img", .dtype = CELER_FLOAT, .rank = 2, .dims = {1, 3}}};
    float v[3] = {1, 2, 3};
    celer_kserve_request r;
    assert_int_equal(celer_kserve_decode_infer((const char *)v, 12, 0, sp, 1, &arena, &r), 0);
    assert_int_equal(r.n_inputs, 1);
    assert_string_equal(r.inputs[0].name, "img");
    assert_memory_equal(r.inputs[0].tensor.data, v, 12);
    assert_int_equal(r.inputs[0].tensor.shape.dims[1], 3);
    assert_int_equal(celer_kserve_decode_infer((const char *)v, 8, 0, sp, 1, &arena, &r), CELER_ERR_SHAPE);
    assert_string_equal(celer_error_message(), "input 'img': raw body has 8 bytes but shape [1,3] of FP32 needs 12");
    assert_int_equal(celer_kserve_decode_infer((const char *)v, 12, 0, SPEC_XY, 2, &arena, &r), CELER_ERR_INVALID);
    /* Triton's words first (its clients match them), then which inputs */
    assert_ptr_equal(strstr(celer_error_message(), "Raw request must only have 1 input (found 1) to be deduced but got 2 "
                                                   "inputs in the model configuration"),
                     celer_error_message());
    assert_non_null(strstr(celer_error_message(), "(x, y)"));
    assert_int_equal(celer_kserve_decode_raw((const char *)v, 12, SPEC_XY, 2, "simple", &arena, &r), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "but got 2 inputs in 'simple' model configuration"));
    /* one variable dim comes from the body length: x is [-1,3], 12 bytes are one row */
    assert_int_equal(celer_kserve_decode_infer((const char *)v, 12, 0, SPEC_XY, 1, &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 1);
    assert_int_equal(celer_kserve_decode_infer((const char *)v, 8, 0, SPEC_XY, 1, &arena, &r), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "input 'x'"));
    /* a batched model as Triton deduces: batch 1, the one variable dim of the rest from the length */
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    celer_kserve_tensor_spec bv[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, -1}, .batched = true}};
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 32, bv, 1, "m", &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.rank, 2);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 1);
    assert_int_equal(r.inputs[0].tensor.shape.dims[1], 8);
    assert_memory_equal(r.inputs[0].tensor.data, w, 32);
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 0, bv, 1, "m", &arena, &r), 0); /* [1,0] */
    assert_int_equal(r.inputs[0].tensor.shape.dims[1], 0);
    celer_kserve_tensor_spec bv3[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 3, .dims = {-1, -1, 2}, .batched = true}};
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 32, bv3, 1, "m", &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 1);
    assert_int_equal(r.inputs[0].tensor.shape.dims[1], 4);
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 28, bv3, 1, "m", &arena, &r), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "input 'x': a raw body of 28 bytes does not determine dimension 1"));
    celer_kserve_tensor_spec two[] = {{.name = "INPUT0", .dtype = CELER_FLOAT16, .rank = 3, .dims = {-1, -1, -1}, .batched = true}};
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 8, two, 1, "m", &arena, &r), CELER_ERR_SHAPE);
    assert_ptr_equal(strstr(celer_error_message(), "The shape of the raw input 'INPUT0' can not be deduced because there "
                                                   "are more than one variable-sized dimension"),
                     celer_error_message());
    /* fixed dims after the batch: celer also takes several whole rows (Triton only one) */
    celer_kserve_tensor_spec bf[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 4}, .batched = true}};
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 16, bf, 1, "m", &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 1);
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 32, bf, 1, "m", &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 2);
    assert_int_equal(celer_kserve_decode_raw((const char *)w, 8, bf, 1, "m", &arena, &r), CELER_ERR_SHAPE);
    /* BYTES: the body is the one element, as it is (Triton wants dims [1]) */
    const char sb[] = "\x01\x00\x00\x00z\x00\x00\x00\x00";
    celer_kserve_tensor_spec sbat[] = {{.name = "s", .dtype = CELER_STRING, .rank = 2, .dims = {-1, 1}, .batched = true}};
    assert_int_equal(celer_kserve_decode_raw(sb, 9, sbat, 1, "m", &arena, &r), 0);
    assert_int_equal(r.inputs[0].tensor.shape.rank, 2);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0] * r.inputs[0].tensor.shape.dims[1], 1);
    TU_ASSERT_STR(&r.inputs[0].tensor, 0, TU_LIT("\x01\x00\x00\x00z\x00\x00\x00\x00"));
    celer_kserve_tensor_spec ss[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {2}}};
    assert_int_equal(celer_kserve_decode_infer(sb, 9, 0, ss, 1, &arena, &r), CELER_ERR_INVALID);
    assert_ptr_equal(strstr(celer_error_message(), "For BYTE datatype raw input 's', the model must have input shape [1]"),
                     celer_error_message());
}

static void test_every_prefix_and_garbage(void **state) {
    (void)state;
    size_t n = strlen(GOOD);
    celer_kserve_request r;
    for (size_t cut = 0; cut < n; cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, GOOD, cut);
        celer_status st = celer_kserve_decode_infer(copy, cut, SIZE_MAX, SPEC_XY, 2, &arena, &r);
        free(copy);
        if (st == 0) fail_msg("prefix of %zu bytes accepted", cut);
    }
    /* mutate single bytes of a valid request: must never crash */
    uint64_t seed = 7;
    const char alphabet[] = "[]{},:\"\\0123456789.eE-xyntf ";
    char *m = malloc(n);
    for (int k = 0; k < 20000; k++) {
        memcpy(m, GOOD, n);
        for (int j = 0; j < 3; j++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            m[seed % n] = alphabet[(seed >> 20) % (sizeof alphabet - 1)];
        }
        (void)celer_kserve_decode_infer(m, n, SIZE_MAX, SPEC_XY, 2, &arena, &r);
        if (k % 1000 == 0) {
            celer_arena_free(&arena);
            celer_arena_init(&arena, 0, 0);
        }
    }
    free(m);
}

/* ---- encoding ---- */

static void test_encode(void **state) {
    (void)state;
    float z[4] = {0.5f, -1, NAN, INFINITY};
    int32_t w[2] = {1, -2};
    celer_str sv[2] = {TU_LIT("a\"b"), TU_LIT("")};
    celer_tensor outs[3] = {
        {.dtype = CELER_FLOAT, .shape = {.rank = 2, .dims = {2, 2}}, .data = z},
        {.dtype = CELER_INT32, .shape = {.rank = 1, .dims = {2}}, .data = w},
        {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {2}}, .data = sv},
    };
    const char *names[3] = {"z", "w", "s"};
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    size_t jl;
    celer_kserve_request req = {.id = "r1"};
    assert_int_equal(celer_kserve_encode_infer(&req, "m", "1", names, outs, 3, &b, &jl), 0);
    assert_string_equal(b.data, "{\"model_name\":\"m\",\"model_version\":\"1\",\"id\":\"r1\",\"outputs\":["
                                "{\"name\":\"z\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[0.5,-1,NaN,Infinity]},"
                                "{\"name\":\"w\",\"datatype\":\"INT32\",\"shape\":[2],\"data\":[1,-2]},"
                                "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\\\"b\",\"\"]}]}");
    assert_int_equal(jl, b.len);
    /* selection and binary outputs */
    celer_kserve_output_request sel[2] = {{.name = "s", .binary = true}, {.name = "w", .binary = false}};
    req = (celer_kserve_request){.n_outputs = 2, .outputs = sel};
    assert_int_equal(celer_kserve_encode_infer(&req, "m", NULL, names, outs, 3, &b, &jl), 0);
    const char *want = "{\"model_name\":\"m\",\"outputs\":["
                       "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":11}},"
                       "{\"name\":\"w\",\"datatype\":\"INT32\",\"shape\":[2],\"data\":[1,-2]}]}";
    assert_int_equal(jl, strlen(want));
    assert_memory_equal(b.data, want, jl);
    assert_int_equal(b.len, jl + 11);
    assert_memory_equal(b.data + jl, "\x03\x00\x00\x00" "a\"b\x00\x00\x00\x00", 11);
    /* binary_data_output applies to all */
    req = (celer_kserve_request){.binary_data_output = true};
    assert_int_equal(celer_kserve_encode_infer(&req, "m", NULL, names, outs, 2, &b, &jl), 0);
    assert_int_equal(b.len, jl + 16 + 8);
    assert_memory_equal(b.data + jl, z, 16);
    assert_memory_equal(b.data + jl + 16, w, 8);
    /* unknown requested output */
    celer_kserve_output_request bad[1] = {{.name = "nope"}};
    req = (celer_kserve_request){.n_outputs = 1, .outputs = bad};
    assert_int_equal(celer_kserve_encode_infer(&req, "m", NULL, names, outs, 3, &b, &jl), CELER_ERR_NOT_FOUND);
    /* error body */
    celer_kserve_encode_error("input 'x': bad \"thing\"\n", &b);
    assert_string_equal(b.data, "{\"error\":\"input 'x': bad \\\"thing\\\"\\n\"}");
    celer_jbuf_free(&b);
}

/* BYTES elements are byte strings with a length: a NUL does not end them, in JSON (\u0000) or
 * binary (4-byte length prefixes), on the way in and out. */
static void test_bytes_any_byte(void **state) {
    (void)state;
    celer_kserve_tensor_spec sp[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}}};
    celer_kserve_request r;
    /* JSON in: \u0000 is a byte of the element, "" an empty element */
    const char *body = "{\"inputs\":[{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\","
                       "\"data\":[\"he\\u0000llo\",\"\",\"\\u0000\"]}]}";
    assert_int_equal(celer_kserve_decode_infer(body, strlen(body), SIZE_MAX, sp, 1, &arena, &r), CELER_OK);
    TU_ASSERT_STR(&r.inputs[0].tensor, 0, TU_LIT("he\0llo"));
    TU_ASSERT_STR(&r.inputs[0].tensor, 1, TU_LIT(""));
    TU_ASSERT_STR(&r.inputs[0].tensor, 2, TU_LIT("\0"));
    /* binary in: 00 01 02 03 and an empty element */
    char buf[512];
    const char tail[] = "\x04\x00\x00\x00\x00\x01\x02\x03\x00\x00\x00\x00";
    const char *json = "{\"inputs\":[{\"name\":\"s\",\"shape\":[2],\"datatype\":\"BYTES\","
                       "\"parameters\":{\"binary_data_size\":12}}]}";
    size_t jl = make_binary(buf, json, tail, 12);
    assert_int_equal(celer_kserve_decode_infer(buf, jl + 12, jl, sp, 1, &arena, &r), CELER_OK);
    TU_ASSERT_STR(&r.inputs[0].tensor, 0, TU_LIT("\x00\x01\x02\x03"));
    TU_ASSERT_STR(&r.inputs[0].tensor, 1, TU_LIT(""));
    /* raw body (the model's single BYTES input): the bytes as they are, one element */
    celer_kserve_tensor_spec one[] = {{.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {1}}};
    assert_int_equal(celer_kserve_decode_infer(tail, 8, 0, one, 1, &arena, &r), CELER_OK);
    TU_ASSERT_STR(&r.inputs[0].tensor, 0, TU_LIT("\x04\x00\x00\x00\x00\x01\x02\x03"));

    /* JSON out: NUL and control bytes escaped, nothing cut */
    celer_str sv[3] = {TU_LIT("he\0llo"), TU_LIT(""), TU_LIT("\x01\x1f")};
    celer_tensor t = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = sv};
    const char *name = "s";
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    assert_int_equal(celer_kserve_encode_infer(NULL, "m", NULL, &name, &t, 1, &b, &jl), CELER_OK);
    assert_string_equal(b.data, "{\"model_name\":\"m\",\"outputs\":[{\"name\":\"s\",\"datatype\":\"BYTES\","
                                "\"shape\":[3],\"data\":[\"he\\u0000llo\",\"\",\"\\u0001\\u001f\"]}]}");
    assert_int_equal(jl, b.len);
    /* binary out: 4-byte length prefixes, every byte */
    celer_str bv[2] = {TU_LIT("\x00\x01\x02\x03"), TU_LIT("")};
    celer_tensor tb = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {2}}, .data = bv};
    celer_kserve_request req = {.binary_data_output = true};
    assert_int_equal(celer_kserve_encode_infer(&req, "m", NULL, &name, &tb, 1, &b, &jl), CELER_OK);
    assert_non_null(strstr(b.data, "\"binary_data_size\":12"));
    assert_int_equal(b.len, jl + 12);
    assert_memory_equal(b.data + jl, tail, 12);
    /* bytes that are not UTF-8 cannot be a JSON string: that output goes binary, not U+FFFD */
    celer_str nv[1] = {TU_LIT("\xff\x00")};
    celer_tensor tn = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {1}}, .data = nv};
    assert_int_equal(celer_kserve_encode_infer(NULL, "m", NULL, &name, &tn, 1, &b, &jl), CELER_OK);
    assert_non_null(strstr(b.data, "\"binary_data_size\":6"));
    assert_int_equal(b.len, jl + 6);
    assert_memory_equal(b.data + jl, "\x02\x00\x00\x00\xff\x00", 6);
    /* ... and the v1 form, which has no binary form, says so */
    assert_int_equal(celer_kserve_encode_predict(&name, &tn, 1, &b), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "not UTF-8"));
    celer_jbuf_free(&b);
}

/* Turns an encoded response into a request: "outputs" -> "inputs" (one byte shorter). */
static size_t response_to_request(char *buf, size_t len, size_t json_len) {
    char *p = strstr(buf, "\"outputs\":[");
    assert_non_null(p);
    memcpy(p, "\"inputs\":[", 10);
    memmove(p + 10, p + 11, len - (size_t)(p + 11 - buf));
    (void)json_len;
    return len - 1;
}

/* What celer does not implement is refused by name, never ignored: Triton's reserved request
 * parameters (unless they ask for nothing) and the prefix triton_, tensor parameters other than
 * the ones celer reads (classification, shared memory, unknown). */
static void test_refused_parameters(void **state) {
    (void)state;
    static const char *const in = "\"inputs\":[{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]},{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]";
    static const struct {
        const char *params, *in_params, *out_params, *want;
    } cases[] = {
        {"\"sequence_id\":7", NULL, NULL, "request parameter 'sequence_id' is refused"},
        {"\"sequence_start\":true", NULL, NULL, "'sequence_start'"},
        {"\"sequence_end\":\"1\"", NULL, NULL, "'sequence_end'"},
        {"\"priority\":1", NULL, NULL, "priority levels"},
        {"\"headers\":{\"a\":\"b\"}", NULL, NULL, "'headers'"},
        {"\"triton_x\":1", NULL, NULL, "triton_"},
        {NULL, "\"binary\":true", NULL, "input 'x': unknown parameter 'binary'"},
        {NULL, NULL, "\"classification\":-1", "Unable to set 'classification': output 'z': expected a non-negative integer"},
        {NULL, NULL, "\"classification\":2.0", "Unable to set 'classification'"},
        {NULL, NULL, "\"classification\":\"3\"", "Unable to set 'classification'"},
        {NULL, NULL, "\"shared_memory_byte_size\":8",
         "'shared_memory_byte_size' can not be specified without 'shared_memory_region' parameter for tensor 'z'"},
        {NULL, NULL, "\"binary_data\":true,\"class\":1", "output 'z': unknown parameter 'class'"},
        /* asking for nothing passes */
        {"\"sequence_id\":0,\"sequence_start\":false,\"priority\":0,\"mine\":\"x\"", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        char body[1024];
        int n = snprintf(body, sizeof body, "{%s%s%s%s", cases[i].params ? "\"parameters\":{" : "",
                         cases[i].params ? cases[i].params : "", cases[i].params ? "}," : "", in);
        if (cases[i].in_params) n += snprintf(body + n, sizeof body - (size_t)n, ",\"parameters\":{%s}", cases[i].in_params);
        n += snprintf(body + n, sizeof body - (size_t)n, "}]");
        if (cases[i].out_params)
            n += snprintf(body + n, sizeof body - (size_t)n, ",\"outputs\":[{\"name\":\"z\",\"parameters\":{%s}}]",
                          cases[i].out_params);
        snprintf(body + n, sizeof body - (size_t)n, "}");
        celer_kserve_request r;
        if (!cases[i].want) {
            if (dec(body, &r)) fail_msg("%s: %s", body, celer_error_message());
            continue;
        }
        tu_expect_err(dec(body, &r), CELER_ERR_INVALID, cases[i].want);
    }
    /* binary_data_size is the one parameter an input takes: 12 bytes after the JSON */
    char bin[512];
    int jl = snprintf(bin, sizeof bin, "%s",
                      "{\"inputs\":[{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]},"
                      "{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":12}}]}");
    memset(bin + jl, 0, 12);
    celer_kserve_request r;
    assert_int_equal(celer_kserve_decode_infer(bin, (size_t)jl + 12, (size_t)jl, SPEC_XY, 2, &arena, &r), CELER_OK);
    /* classification is read: a count (more than 2^32-1 is all of them), 0 the tensor itself;
     * an output asked twice is Triton's error */
    static const struct {
        const char *value;
        uint32_t want;
    } counts[] = {{"3", 3}, {"0", 0}, {"99999999999", UINT32_MAX}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(counts); i++) {
        char body[512];
        snprintf(body, sizeof body, "{%s}],\"outputs\":[{\"name\":\"z\",\"parameters\":{\"classification\":%s,"
                 "\"binary_data\":true}}]}", in, counts[i].value);
        assert_int_equal(dec(body, &r), CELER_OK);
        assert_int_equal(r.outputs[0].classification, counts[i].want);
        assert_true(r.outputs[0].binary);
    }
    char twice[512];
    snprintf(twice, sizeof twice, "{%s}],\"outputs\":[{\"name\":\"z\"},{\"name\":\"z\"}]}", in);
    tu_expect_err(dec(twice, &r), CELER_ERR_INVALID, "output 'z' already exists in request");
}

/* Triton's classification: the top K per row as "value:index[:label]", values as C++'s
 * std::to_string writes them, highest first, ties by index, NaN last. */
static celer_tensor classify(celer_dtype dt, int rank, const int64_t *dims, const void *data, bool batched, uint32_t k,
                             const celer_str *labels, size_t n_labels) {
    celer_tensor t = {.dtype = dt, .shape = {.rank = rank}, .data = (void *)(uintptr_t)data}, out;
    for (int i = 0; i < rank; i++) t.shape.dims[i] = dims[i];
    celer_status st = celer_kserve_classify(&t, batched, k, labels, n_labels, "o", &arena, &out);
    if (st) fail_msg("classify: %s", celer_error_message());
    return out;
}

static void expect_classes(const celer_tensor *t, int rank, int64_t d0, int64_t d1, const char *const *want, int n) {
    assert_int_equal(t->dtype, CELER_STRING);
    assert_int_equal(t->shape.rank, rank);
    assert_int_equal(t->shape.dims[0], d0);
    if (rank > 1) assert_int_equal(t->shape.dims[1], d1);
    for (int i = 0; i < n; i++) {
        celer_str s = ((const celer_str *)t->data)[i];
        if (s.len != strlen(want[i]) || memcmp(s.data, want[i], s.len))
            fail_msg("element %d: '%.*s', want '%s'", i, (int)s.len, s.data, want[i]);
    }
}

static void test_classify(void **state) {
    (void)state;
    celer_str labels[3] = {TU_LIT("a"), TU_LIT(""), TU_LIT("c")};
    float f[4] = {0.1f, 0.7f, 0.7f, -2};
    celer_tensor t = classify(CELER_FLOAT, 1, (int64_t[]){4}, f, false, 3, labels, 3);
    expect_classes(&t, 1, 3, 0, (const char *const[]){"0.700000:1", "0.700000:2:c", "0.100000:0:a"}, 3);
    /* batched: per row; K above the count gives them all */
    int64_t i64[6] = {5, -1, 9, 0, 0, -7};
    t = classify(CELER_INT64, 2, (int64_t[]){2, 3}, i64, true, 10, NULL, 0);
    expect_classes(&t, 2, 2, 3, (const char *const[]){"9:2", "5:0", "-1:1", "0:0", "0:1", "-7:2"}, 6);
    /* the same unbatched: one list over the whole tensor */
    t = classify(CELER_INT64, 2, (int64_t[]){2, 3}, i64, false, 2, NULL, 0);
    expect_classes(&t, 1, 2, 0, (const char *const[]){"9:2", "5:0"}, 2);
    uint64_t u64[2] = {UINT64_MAX, 1};
    t = classify(CELER_UINT64, 1, (int64_t[]){2}, u64, false, 1, NULL, 0);
    expect_classes(&t, 1, 1, 0, (const char *const[]){"18446744073709551615:0"}, 1);
    int8_t i8[3] = {-128, 127, 0};
    t = classify(CELER_INT8, 2, (int64_t[]){1, 3}, i8, true, 3, labels, 3);
    expect_classes(&t, 2, 1, 3, (const char *const[]){"127:1", "0:2:c", "-128:0:a"}, 3);
    uint8_t u8[2] = {255, 3};
    t = classify(CELER_UINT8, 1, (int64_t[]){2}, u8, false, 2, NULL, 0);
    expect_classes(&t, 1, 2, 0, (const char *const[]){"255:0", "3:1"}, 2);
    uint16_t u16[2] = {65535, 3};
    int16_t i16[2] = {-3, -32768};
    uint32_t u32[2] = {7, UINT32_MAX};
    int32_t i32[2] = {INT32_MIN, 2};
    t = classify(CELER_UINT16, 1, (int64_t[]){2}, u16, false, 1, NULL, 0);
    expect_classes(&t, 1, 1, 0, (const char *const[]){"65535:0"}, 1);
    t = classify(CELER_INT16, 1, (int64_t[]){2}, i16, false, 2, NULL, 0);
    expect_classes(&t, 1, 2, 0, (const char *const[]){"-3:0", "-32768:1"}, 2);
    t = classify(CELER_UINT32, 1, (int64_t[]){2}, u32, false, 1, NULL, 0);
    expect_classes(&t, 1, 1, 0, (const char *const[]){"4294967295:1"}, 1);
    t = classify(CELER_INT32, 1, (int64_t[]){2}, i32, false, 2, NULL, 0);
    expect_classes(&t, 1, 2, 0, (const char *const[]){"2:1", "-2147483648:0"}, 2);
    /* doubles with %f, NaN after every number, -0 as C++ writes it */
    double d[4] = {NAN, 1e20, -0.0, 1.0 / 3};
    t = classify(CELER_DOUBLE, 1, (int64_t[]){4}, d, false, 4, NULL, 0);
    expect_classes(&t, 1, 4, 0,
                   (const char *const[]){"100000000000000000000.000000:1", "0.333333:3", "-0.000000:2", "nan:0"}, 4);
    /* FP16 and BF16 through their float value (Triton refuses them) */
    uint16_t h[2] = {celer_float_to_half(1.5f), celer_float_to_half(-0.25f)};
    t = classify(CELER_FLOAT16, 1, (int64_t[]){2}, h, false, 2, NULL, 0);
    expect_classes(&t, 1, 2, 0, (const char *const[]){"1.500000:0", "-0.250000:1"}, 2);
    uint16_t bf[2] = {celer_float_to_bf16(-1), celer_float_to_bf16(2)};
    t = classify(CELER_BFLOAT16, 1, (int64_t[]){2}, bf, false, 1, NULL, 0);
    expect_classes(&t, 1, 1, 0, (const char *const[]){"2.000000:1"}, 1);
    /* a batched output with no rows: one empty list, as Triton */
    t = classify(CELER_FLOAT, 2, (int64_t[]){0, 4}, f, true, 3, NULL, 0);
    expect_classes(&t, 1, 0, 0, NULL, 0);
    /* equal values keep index order over many elements (std::sort's order is only known up to 16) */
    float same[40];
    for (int i = 0; i < 40; i++) same[i] = i == 33 ? 2.f : 1.f;
    t = classify(CELER_FLOAT, 1, (int64_t[]){40}, same, false, 4, NULL, 0);
    expect_classes(&t, 1, 4, 0, (const char *const[]){"2.000000:33", "1.000000:0", "1.000000:1", "1.000000:2"}, 4);
    /* what Triton refuses, with its words first */
    celer_tensor out;
    celer_str sv[1] = {TU_LIT("x")};
    celer_tensor st = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {1}}, .data = sv};
    tu_expect_err(celer_kserve_classify(&st, false, 1, NULL, 0, "o", &arena, &out), CELER_ERR_INVALID,
                  "class result not available for output due to unsupported type 'BYTES'");
    assert_ptr_equal(strstr(celer_error_message(), "class result"), celer_error_message());
    uint8_t b8[1] = {1};
    celer_tensor bt = {.dtype = CELER_BOOL, .shape = {.rank = 1, .dims = {1}}, .data = b8};
    tu_expect_err(celer_kserve_classify(&bt, false, 1, NULL, 0, "o", &arena, &out), CELER_ERR_INVALID,
                  "unsupported type 'BOOL'");
    float *big = calloc(1000001, sizeof *big);
    assert_non_null(big);
    celer_tensor bgt = {.dtype = CELER_FLOAT, .shape = {.rank = 2, .dims = {1, 1000001}}, .data = big};
    tu_expect_err(celer_kserve_classify(&bgt, true, 1, NULL, 0, "o", &arena, &out), CELER_ERR_INVALID,
                  "classification output tensor too large");
    bgt.shape.dims[1] = 1000000; /* at the cap: allowed */
    assert_int_equal(celer_kserve_classify(&bgt, true, 1, NULL, 0, "o", &arena, &out), CELER_OK);
    free(big);
}

/* System shared memory: the codec decodes the parameters (the service reads and writes the
 * regions), checks them as Triton does, and answers an output in a region without data. */
static void test_shared_memory_params(void **state) {
    (void)state;
    static const char *const y = "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[1,2]}";
    char body[1024];
    celer_kserve_request r;
    snprintf(body, sizeof body,
             "{\"inputs\":[%s,{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"parameters\":"
             "{\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":24,\"shared_memory_offset\":8}}],"
             "\"outputs\":[{\"name\":\"z\",\"parameters\":{\"binary_data\":false,\"shared_memory_region\":\"out\","
             "\"shared_memory_byte_size\":64}},{\"name\":\"w\"}]}", y);
    assert_int_equal(dec(body, &r), CELER_OK);
    assert_null(r.inputs[0].shm.region);
    assert_string_equal(r.inputs[1].shm.region, "in");
    assert_int_equal(r.inputs[1].shm.offset, 8);
    assert_int_equal(r.inputs[1].shm.byte_size, 24);
    assert_null(r.inputs[1].tensor.data); /* the service fills it from the region */
    assert_int_equal(r.inputs[1].tensor.shape.dims[0], 2);
    assert_string_equal(r.outputs[0].shm.region, "out");
    assert_int_equal(r.outputs[0].shm.offset, 0);
    assert_int_equal(r.outputs[0].shm.byte_size, 64);
    assert_null(r.outputs[1].shm.region);

    /* the answer: the output in a region has its parameters and no data, the other its data */
    float zd[2] = {1, 2}, wd[1] = {3};
    celer_tensor outs[2] = {{.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {2}}, .data = zd},
                            {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {1}}, .data = wd}};
    const char *names[] = {"z", "w"};
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    size_t jl;
    assert_int_equal(celer_kserve_encode_infer(&r, "m", "1", names, outs, 2, &out, &jl), CELER_OK);
    assert_string_equal(out.data,
                        "{\"model_name\":\"m\",\"model_version\":\"1\",\"outputs\":[{\"name\":\"z\",\"datatype\":\"FP32\","
                        "\"shape\":[2],\"parameters\":{\"shared_memory_region\":\"out\",\"shared_memory_offset\":0,"
                        "\"shared_memory_byte_size\":8}},{\"name\":\"w\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[3]}]}");
    assert_int_equal(jl, out.len);
    celer_jbuf_free(&out);

    static const struct {
        const char *x_params, *out_params, *want;
    } cases[] = {
        {"\"shared_memory_region\":\"in\"", NULL,
         "'shared_memory_region' needs 'shared_memory_byte_size' (the tensor's bytes in the region) for tensor 'x'"},
        {"\"shared_memory_offset\":4", NULL,
         "'shared_memory_offset' can not be specified without 'shared_memory_region' parameter for tensor 'x'"},
        {"\"shared_memory_region\":7,\"shared_memory_byte_size\":24", NULL, "Unable to parse 'shared_memory_region'"},
        {"\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":-1", NULL,
         "Unable to parse 'shared_memory_byte_size' of tensor 'x': expected an integer >= 0, got -1"},
        {"\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":24,\"shared_memory_offset\":1.5", NULL,
         "Unable to parse 'shared_memory_offset'"},
        {"\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":24,\"binary_data_size\":24", NULL,
         "Input must set only one of the following fields: 'data', 'binary_data_size' in 'parameters', "
         "'shared_memory_region' in 'parameters'. But set 'binary_data_size' 'shared_memory_region' (input 'x')"},
        {NULL, "\"shared_memory_region\":\"out\",\"shared_memory_byte_size\":8,\"binary_data\":true",
         "Output can't set both 'shared_memory_region' and 'binary_data' (output 'z')"},
        {NULL, "\"shared_memory_region\":\"out\",\"shared_memory_byte_size\":8,\"classification\":2",
         "Output can't set both 'shared_memory_region' and 'classification' (output 'z')"},
        {NULL, "\"shared_memory_region\":\"o\\u0000x\",\"shared_memory_byte_size\":8",
         "Unable to parse 'shared_memory_region' of tensor 'z'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        int n = snprintf(body, sizeof body, "{\"inputs\":[%s,{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\"", y);
        if (cases[i].x_params) n += snprintf(body + n, sizeof body - (size_t)n, ",\"parameters\":{%s}}]", cases[i].x_params);
        else n += snprintf(body + n, sizeof body - (size_t)n, ",\"data\":[1,2,3]}]");
        if (cases[i].out_params)
            n += snprintf(body + n, sizeof body - (size_t)n, ",\"outputs\":[{\"name\":\"z\",\"parameters\":{%s}}]",
                          cases[i].out_params);
        snprintf(body + n, sizeof body - (size_t)n, "}");
        tu_expect_err(dec(body, &r), CELER_ERR_INVALID, cases[i].want);
    }
    /* data and a region: Triton's words */
    snprintf(body, sizeof body, "{\"inputs\":[%s,{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3],"
             "\"parameters\":{\"shared_memory_region\":\"in\",\"shared_memory_byte_size\":12}}]}", y);
    tu_expect_err(dec(body, &r), CELER_ERR_INVALID, "But set 'data' 'shared_memory_region' (input 'x')");
}

/* The body of a register request. */
static void test_shared_memory_register_body(void **state) {
    (void)state;
    const char *key;
    uint64_t off, size;
#define REG(b) celer_kserve_decode_shm_register(b, strlen(b), &arena, &key, &off, &size)
    assert_int_equal(REG("{\"key\":\"/in\",\"offset\":16,\"byte_size\":64}"), CELER_OK);
    assert_string_equal(key, "/in");
    assert_int_equal(off, 16);
    assert_int_equal(size, 64);
    assert_int_equal(REG("{\"key\":\"/in\",\"byte_size\":64}"), CELER_OK);
    assert_int_equal(off, 0);
    tu_expect_err(REG("{\"byte_size\":64}"), CELER_ERR_INVALID, "Shared memory register request has no 'key' field");
    tu_expect_err(REG("{\"key\":\"/in\"}"), CELER_ERR_INVALID, "Shared memory register request has no 'byte_size' field");
    tu_expect_err(REG("{\"key\":3,\"byte_size\":64}"), CELER_ERR_INVALID, "'key' must be a string");
    tu_expect_err(REG("{\"key\":\"/in\",\"byte_size\":-64}"), CELER_ERR_INVALID, "'byte_size' must be an integer >= 0");
    tu_expect_err(REG("{\"key\":\"/in\",\"byte_size\":64,\"offset\":\"1\"}"), CELER_ERR_INVALID,
                  "'offset' must be an integer >= 0");
    tu_expect_err(REG("{\"key\":\"/in\",\"byte_size\":64,\"device_id\":0}"), CELER_ERR_INVALID,
                  "unknown field 'device_id'");
    tu_expect_err(REG("[1]"), CELER_ERR_INVALID, "a JSON object");
    assert_int_equal(REG("{\"key\":"), CELER_ERR_PARSE);
#undef REG
}

static void test_round_trip_every_dtype(void **state) {
    (void)state;
    static const celer_dtype types[] = {CELER_BOOL,  CELER_UINT8,   CELER_UINT16, CELER_UINT32, CELER_UINT64,
                                        CELER_INT8,  CELER_INT16,   CELER_INT32,  CELER_INT64,  CELER_FLOAT16,
                                        CELER_FLOAT, CELER_DOUBLE,  CELER_BFLOAT16, CELER_STRING};
    enum { N = 6 };
    uint64_t seed = 99;
    for (int binary = 0; binary < 2; binary++) {
        for (size_t k = 0; k < CELER_ARRAY_LEN(types); k++) {
            celer_dtype dt = types[k];
            size_t es = celer_dtype_size(dt);
            unsigned char data[N * 8];
            celer_str strs[N] = {TU_LIT(""), TU_LIT("a\0b"), TU_LIT("\xc3\xa9t\xc3\xa9"), TU_LIT("q\"uote"),
                                 TU_LIT("line\nbreak\x01"), TU_LIT("\0")};
            for (size_t i = 0; i < sizeof data; i++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                data[i] = (unsigned char)seed;
            }
            if (dt == CELER_BOOL)
                for (int i = 0; i < N; i++) data[i] &= 1;
            if (dt == CELER_FLOAT) { /* specials too */
                ((float *)data)[0] = INFINITY;
                ((float *)data)[1] = -INFINITY;
                ((float *)data)[2] = -0.0f;
                ((float *)data)[3] = 1e-45f;
            }
            if (dt == CELER_DOUBLE) ((double *)data)[0] = 5e-324;
            if (dt == CELER_FLOAT16 || dt == CELER_BFLOAT16) /* keep them finite: NaN payloads do not survive */
                for (int i = 0; i < N; i++) ((uint16_t *)data)[i] &= 0xbfff;
            if (dt == CELER_FLOAT || dt == CELER_DOUBLE) /* random bits: clear the top exponent bit to avoid NaN */
                for (int i = 4; i < N; i++) data[i * es + es - 1] &= 0xbf;
            if (dt == CELER_DOUBLE) data[es - 1] &= 0xbf;
            celer_tensor t = {.dtype = dt, .shape = {.rank = 2, .dims = {2, 3}}, .data = dt == CELER_STRING ? (void *)strs : data};
            const char *name = "t";
            celer_jbuf b;
            celer_jbuf_init(&b, 0);
            size_t jl;
            celer_kserve_request req = {.binary_data_output = binary};
            assert_int_equal(celer_kserve_encode_infer(&req, "m", "1", &name, &t, 1, &b, &jl), 0);
            size_t len = response_to_request(b.data, b.len, jl);
            celer_kserve_tensor_spec sp = {.name = "t", .dtype = dt, .rank = 2, .dims = {-1, 3}};
            celer_kserve_request r;
            celer_status st = celer_kserve_decode_infer(b.data, len, binary ? jl - 1 : SIZE_MAX, &sp, 1, &arena, &r);
            if (st) fail_msg("%s (%s): %s\n%s", celer_dtype_kserve_name(dt), binary ? "binary" : "json", celer_error_message(), b.data);
            const celer_tensor *got = &r.inputs[0].tensor;
            assert_int_equal(got->dtype, dt);
            assert_true(celer_shape_equal(&got->shape, &t.shape));
            if (dt == CELER_STRING) {
                for (int i = 0; i < N; i++) TU_ASSERT_STR(got, i, strs[i]);
            } else {
                if (memcmp(got->data, data, N * es) != 0) fail_msg("%s round trip differs:\n%s", celer_dtype_kserve_name(dt), b.data);
            }
            celer_jbuf_free(&b);
        }
    }
    /* NaN survives as NaN (payload and sign are not kept by JSON) */
    float nanv[3] = {NAN, -NAN, 1};
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {3}}, .data = nanv};
    const char *name = "t";
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    size_t jl;
    assert_int_equal(celer_kserve_encode_infer(NULL, "m", NULL, &name, &t, 1, &b, &jl), 0);
    size_t len = response_to_request(b.data, b.len, jl);
    celer_kserve_tensor_spec sp = {.name = "t", .dtype = CELER_FLOAT, .rank = 1, .dims = {3}};
    celer_kserve_request r;
    assert_int_equal(celer_kserve_decode_infer(b.data, len, SIZE_MAX, &sp, 1, &arena, &r), 0);
    const float *g = r.inputs[0].tensor.data;
    assert_true(isnan(g[0]) && isnan(g[1]) && g[2] == 1);
    celer_jbuf_free(&b);
}

/* ---- KServe v1 ---- */

static void test_predict(void **state) {
    (void)state;
    celer_kserve_tensor_spec sp[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}}};
    celer_kserve_request r;
    const char *body = "{\"instances\": [[1,2,3],[4,5,6]]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), 0);
    assert_int_equal(r.n_inputs, 1);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 2);
    assert_true(((float *)r.inputs[0].tensor.data)[5] == 6);
    body = "{\"instances\": [[1,2,3],[4,5]]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), CELER_ERR_SHAPE);
    body = "{\"instances\": [[1,2],[4,5]]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "input 'x'"));
    body = "{\"instances\": [1,2,3]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), CELER_ERR_SHAPE);
    body = "{\"instances\": []}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), CELER_ERR_INVALID);
    body = "{\"inputs\": [[1,2,3]]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), sp, 1, &arena, &r), CELER_ERR_INVALID);
    /* rank-1 input: scalar rows; strings */
    celer_kserve_tensor_spec s1[] = {{.name = "t", .dtype = CELER_STRING, .rank = 1, .dims = {-1}}};
    body = "{\"instances\": [\"a\", \"b\"]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s1, 1, &arena, &r), 0);
    assert_string_equal(((const celer_str *)r.inputs[0].tensor.data)[1].data, "b");
    /* several inputs: an object per instance */
    celer_kserve_tensor_spec s2[] = {{.name = "a", .dtype = CELER_INT64, .rank = 2, .dims = {-1, 2}},
                                     {.name = "b", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}}};
    body = "{\"instances\": [{\"a\": [1,2], \"b\": 0.5}, {\"b\": 1.5, \"a\": [3,4]}]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s2, 2, &arena, &r), 0);
    assert_int_equal(r.n_inputs, 2);
    assert_int_equal(((int64_t *)r.inputs[0].tensor.data)[3], 4);
    assert_true(((float *)r.inputs[1].tensor.data)[1] == 1.5f);
    assert_int_equal(r.inputs[0].tensor.shape.dims[0], 2);
    body = "{\"instances\": [{\"a\": [1,2], \"b\": 0.5}, {\"a\": [3,4]}]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s2, 2, &arena, &r), CELER_ERR_INVALID);
    assert_string_equal(celer_error_message(), "instances[1]: missing input 'b'");
    body = "{\"instances\": [{\"a\": [1,2], \"b\": 0.5, \"c\": 1}]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s2, 2, &arena, &r), CELER_ERR_INVALID);
    body = "{\"instances\": [{\"a\": [1,2,3], \"b\": 0.5}]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s2, 2, &arena, &r), CELER_ERR_SHAPE);
    body = "{\"instances\": [[1,2]]}";
    assert_int_equal(celer_kserve_decode_predict(body, strlen(body), s2, 2, &arena, &r), CELER_ERR_INVALID);
    /* every prefix */
    body = "{\"instances\": [{\"a\": [1,2], \"b\": 0.5}, {\"b\": 1.5, \"a\": [3,4]}]}";
    for (size_t cut = 0; cut < strlen(body); cut++) {
        char *copy = malloc(cut ? cut : 1);
        memcpy(copy, body, cut);
        assert_int_not_equal(celer_kserve_decode_predict(copy, cut, s2, 2, &arena, &r), 0);
        free(copy);
    }

    /* encode */
    float y[6] = {1, 2, 3, 4, 5, 6};
    int64_t lab[2] = {7, 8};
    celer_tensor outs[2] = {{.dtype = CELER_FLOAT, .shape = {.rank = 3, .dims = {2, 1, 3}}, .data = y},
                            {.dtype = CELER_INT64, .shape = {.rank = 1, .dims = {2}}, .data = lab}};
    const char *names[2] = {"y", "label"};
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    assert_int_equal(celer_kserve_encode_predict(names, outs, 1, &b), 0);
    assert_string_equal(b.data, "{\"predictions\":[[[1,2,3]],[[4,5,6]]]}");
    assert_int_equal(celer_kserve_encode_predict(names + 1, outs + 1, 1, &b), 0);
    assert_string_equal(b.data, "{\"predictions\":[7,8]}");
    assert_int_equal(celer_kserve_encode_predict(names, outs, 2, &b), 0);
    assert_string_equal(b.data, "{\"predictions\":[{\"y\":[[1,2,3]],\"label\":7},{\"y\":[[4,5,6]],\"label\":8}]}");
    outs[1].shape.dims[0] = 3;
    assert_int_equal(celer_kserve_encode_predict(names, outs, 2, &b), CELER_ERR_SHAPE);
    celer_jbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_datatypes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_prefix_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_every_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_any_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_predict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_classify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_memory_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_memory_register_body, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
