/* JSON module: strict parser, numeric-array spans, tensor decoding, exact number parsing against
 * strtof/strtod, shortest round-trip formatting, the output buffer, and timing figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "server/json.h"

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

static celer_status parse(const char *s, celer_json **out) { return celer_json_parse(s, strlen(s), &arena, out); }

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* ---- parser ---- */

static void test_parse_basic(void **state) {
    (void)state;
    celer_json *j;
    assert_int_equal(parse(" {\"a\": 1.5, \"b\": [true, false, null], \"c\": \"x\\ty\", \"d\": {}, \"e\": []} ", &j), 0);
    assert_int_equal(j->type, CELER_JSON_OBJECT);
    assert_int_equal(j->n, 5);
    const celer_json *a = celer_json_get(j, "a");
    assert_non_null(a);
    assert_int_equal(a->type, CELER_JSON_NUMBER);
    assert_true(a->number == 1.5);
    const celer_json *b = celer_json_get(j, "b");
    assert_int_equal(b->type, CELER_JSON_ARRAY);
    assert_int_equal(b->n, 3);
    assert_true(b->items[0].boolean);
    assert_int_equal(b->items[2].type, CELER_JSON_NULL);
    assert_string_equal(celer_json_get(j, "c")->string, "x\ty");
    assert_int_equal(celer_json_get(j, "d")->type, CELER_JSON_OBJECT);
    assert_int_equal(celer_json_get(j, "e")->type, CELER_JSON_ARRAY);
    assert_int_equal(celer_json_get(j, "e")->n, 0);
    assert_null(celer_json_get(j, "zz"));
    assert_null(celer_json_get(a, "a"));
    assert_int_equal(b->raw_len, strlen("[true, false, null]"));
}

static void test_parse_strings(void **state) {
    (void)state;
    celer_json *j;
    assert_int_equal(parse("\"\\u00e9\\u20ac\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\"", &j), 0);
    assert_string_equal(j->string, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"\\/\b\f\n\r");
    assert_int_equal(j->string_len, 2 + 3 + 4 + 7);
    assert_int_equal(parse("\"\\u0000x\"", &j), 0); /* embedded NUL kept, length says so */
    assert_int_equal(j->string_len, 2);
    assert_int_equal(parse("\"caf\xc3\xa9\"", &j), 0); /* raw UTF-8 passes through */
    assert_string_equal(j->string, "caf\xc3\xa9");
    const char *bad[] = {"\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
                         "\"a\nb\"", "\"abc", "\"\\", "\"\\u00zz\"", "\"\x01\""};
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        assert_int_equal(parse(bad[i], &j), CELER_ERR_PARSE);
    }
}

static void test_parse_errors(void **state) {
    (void)state;
    const char *bad[] = {"", " ", "[,1]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "[true false]", "01", "1.", ".5",
                         "1e", "-", "+1", "tru", "nul", "[\"a\",]", "{} x", "[1]]", "[\"x\", 1", "{\"a\":}",
                         "-NaN", "NaNx", "[NaN", "[1,2", "\"\\u", "[[1,2],[3,", "0x10", "1e+", "Infinit"};
    celer_json *j;
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = parse(bad[i], &j);
        if (st != CELER_ERR_PARSE) fail_msg("accepted '%s' (%d)", bad[i], st);
    }
    /* numeric arrays are only checked for characters and balance here; their decoding is strict */
    assert_int_equal(parse("[1,]", &j), 0);
    assert_int_equal(j->type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(parse("[1,]]", &j), CELER_ERR_PARSE);
    assert_int_equal(parse("[1,a]", &j), CELER_ERR_PARSE);
    /* messages carry the byte offset */
    assert_int_equal(parse("{\"a\": [true,, 1]}", &j), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "byte 12"));
    /* depth cap (128), with Triton's words first */
    char deep[300];
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    deep[258] = 0;
    assert_int_equal(parse(deep, &j), CELER_ERR_PARSE);
    assert_ptr_equal(strstr(celer_error_message(), "JSON nesting depth exceeds maximum allowed limit (128) at byte 128"),
                     celer_error_message());
    deep[128] = '1';
    memset(deep + 129, ']', 128);
    deep[257] = 0; /* 128 open + number + 128 close: allowed */
    assert_int_equal(parse(deep, &j), 0);
    assert_int_equal(j->type, CELER_JSON_NUMERIC_ARRAY);
    /* not numeric: the DOM path allows the same 128 levels */
    memcpy(deep + 128, "true", 4);
    memset(deep + 132, ']', 128);
    deep[260] = 0;
    assert_int_equal(parse(deep, &j), 0);
    assert_int_equal(j->type, CELER_JSON_ARRAY);
    char objs[129 * 6 + 8] = "";
    for (int i = 0; i < 129; i++) strcat(objs, "{\"a\":");
    assert_int_equal(parse(objs, &j), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "JSON nesting depth exceeds maximum allowed limit (128)"));
    /* special number tokens */
    assert_int_equal(parse("[NaN, Infinity, -Infinity]", &j), 0);
    assert_int_equal(parse("NaN", &j), 0);
    assert_true(isnan(j->number));
    assert_int_equal(parse("-Infinity", &j), 0);
    assert_true(isinf(j->number) && j->number < 0);
    assert_int_equal(parse("-0", &j), 0);
    assert_true(signbit(j->number));
}

static void test_numeric_arrays(void **state) {
    (void)state;
    celer_json *j;
    assert_int_equal(parse("{\"d\": [1, 2.5e3, -3] , \"n\": [ [ [1],[2] ] ], \"s\": [\"a\"], \"e\":[], \"z\": [NaN,-Infinity]}", &j), 0);
    const celer_json *d = celer_json_get(j, "d");
    assert_int_equal(d->type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(d->raw_len, strlen("[1, 2.5e3, -3]"));
    assert_memory_equal(d->raw, "[1, 2.5e3, -3]", d->raw_len);
    assert_int_equal(celer_json_get(j, "n")->type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(celer_json_get(j, "s")->type, CELER_JSON_ARRAY);
    assert_int_equal(celer_json_get(j, "e")->type, CELER_JSON_ARRAY);
    assert_int_equal(celer_json_get(j, "z")->type, CELER_JSON_NUMERIC_ARRAY);
    /* a numeric-looking array holding something else parses normally */
    assert_int_equal(parse("[1, \"a\", {\"b\": [2, 3]}, true, [4, [5]], [6, null]]", &j), 0);
    assert_int_equal(j->type, CELER_JSON_ARRAY);
    assert_int_equal(j->n, 6);
    assert_int_equal(j->items[0].type, CELER_JSON_NUMBER);
    assert_string_equal(j->items[1].string, "a");
    assert_int_equal(celer_json_get(&j->items[2], "b")->type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(j->items[4].type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(j->items[5].type, CELER_JSON_ARRAY);
    assert_int_equal(j->items[5].items[1].type, CELER_JSON_NULL);
    assert_int_equal(parse("[[1,2],[3,\"x\"]]", &j), 0);
    assert_int_equal(j->type, CELER_JSON_ARRAY);
    assert_int_equal(j->items[0].type, CELER_JSON_NUMERIC_ARRAY);
    assert_int_equal(j->items[1].type, CELER_JSON_ARRAY);
    /* a bad array after a fallback still errors */
    assert_int_equal(parse("[[1,2],[3,\"x\"],[4,", &j), CELER_ERR_PARSE);
    assert_int_equal(parse("[1, \"a\"", &j), CELER_ERR_PARSE);
    /* deep nesting that fails late is still linear (just check it works) */
    char buf[4096] = "";
    for (int i = 0; i < 60; i++) strcat(buf, "[");
    for (int i = 0; i < 300; i++) strcat(buf, "1,");
    strcat(buf, "\"x\"");
    for (int i = 0; i < 60; i++) strcat(buf, "]");
    assert_int_equal(parse(buf, &j), 0);
}

static void test_every_prefix(void **state) {
    (void)state;
    const char *doc = "{\"id\":\"r\\u00e91\",\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\","
                      "\"data\":[[1.5,-2e-3],[NaN,Infinity]]},{\"name\":\"s\",\"data\":[\"a\\n\",true,null,-0.0]}],"
                      "\"parameters\":{\"t\":{}}}";
    size_t n = strlen(doc);
    celer_json *j;
    assert_int_equal(celer_json_parse(doc, n, &arena, &j), 0);
    for (size_t i = 0; i < n; i++) {
        char *copy = malloc(i ? i : 1); /* exact-size copy so ASan catches any overread */
        memcpy(copy, doc, i);
        celer_status st = celer_json_parse(copy, i, &arena, &j);
        free(copy);
        if (st == 0) fail_msg("prefix of %zu bytes accepted", i);
    }
    /* random garbage: only that it never crashes */
    char g[64];
    const char alphabet[] = "[]{},:\"\\0123456789.eE+-tfnaulrsNIy \x01\xc3";
    for (int k = 0; k < 20000; k++) {
        size_t len = next_u64() % sizeof g;
        for (size_t i = 0; i < len; i++) g[i] = alphabet[next_u64() % (sizeof alphabet - 1)];
        char *copy = malloc(len ? len : 1);
        memcpy(copy, g, len);
        (void)celer_json_parse(copy, len, &arena, &j);
        free(copy);
    }
    celer_arena_free(&arena);
    celer_arena_init(&arena, 0, 0);
}

/* ---- tensor decoding ---- */

static celer_status decode(const char *text, celer_dtype dt, int rank, const int64_t *dims, void *out) {
    celer_json *j;
    celer_status st = parse(text, &j);
    if (st) return st;
    celer_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dims[i] = dims[i];
    return celer_json_decode_tensor(j, dt, &s, out, &arena, "input 'x'");
}

static celer_status decode_exact(const char *text, celer_dtype dt, int rank, const int64_t *dims, void *out) {
    celer_json *j;
    celer_status st = parse(text, &j);
    if (st) return st;
    celer_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dims[i] = dims[i];
    return celer_json_decode_tensor_exact(j, dt, &s, out, &arena, "input 'x'");
}

/* `levels` arrays around `leaf` (a number or a string), for the nesting limit. */
static const char *nested(int levels, const char *leaf, char *buf) {
    memset(buf, '[', (size_t)levels);
    strcpy(buf + levels, leaf);
    size_t n = strlen(buf);
    memset(buf + n, ']', (size_t)levels);
    buf[n + (size_t)levels] = 0;
    return buf;
}

static void test_decode_tensor(void **state) {
    (void)state;
    float f[6];
    int64_t d23[] = {2, 3}, d6[] = {6}, d32[] = {3, 2};
    assert_int_equal(decode("[[1,2,3],[4,5,6]]", CELER_FLOAT, 2, d23, f), 0);
    for (int i = 0; i < 6; i++) assert_true(f[i] == i + 1);
    assert_int_equal(decode("[1,2,3,4,5,6.5]", CELER_FLOAT, 2, d23, f), 0); /* flat */
    assert_true(f[5] == 6.5f);
    assert_int_equal(decode("[1,2,3,4,5,6]", CELER_FLOAT, 1, d6, f), 0);
    /* any nesting of the right element count, as Triton reads it: the leaves in order */
    static const char *const any[] = {"[[1,2],[3,4],[5,6]]", "[[1,2,3],4,5,6]", "[1,2,3,[4,5,6]]",
                                      "[[[1,2,3]],[[4,5,6]]]", "[[1],[[2,[3]]],[],4,[5,6]]", "[[[[[[1,2,3,4,5,6]]]]]]"};
    for (size_t k = 0; k < CELER_ARRAY_LEN(any); k++) {
        memset(f, 0, sizeof f);
        if (decode(any[k], CELER_FLOAT, 2, d23, f)) fail_msg("%s: %s", any[k], celer_error_message());
        for (int i = 0; i < 6; i++) assert_true(f[i] == i + 1);
    }
    assert_int_equal(decode("[[1,2],[3,4]]", CELER_FLOAT, 1, d6, f), CELER_ERR_SHAPE);
    assert_string_equal(celer_error_message(), "input 'x': shape [6] has 6 elements but data has 4");
    assert_int_equal(decode("[[1,2,3],[4,5,6],[7]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "data has 7"));
    /* ... up to Triton's depth: a value at depth 100 is refused, with its words first */
    char buf[512];
    int64_t d1[] = {1}, d11[] = {1, 1};
    assert_int_equal(decode(nested(99, "5", buf), CELER_FLOAT, 2, d11, f), 0);
    assert_true(f[0] == 5);
    assert_int_equal(decode(nested(100, "5", buf), CELER_FLOAT, 2, d11, f), CELER_ERR_INVALID);
    assert_ptr_equal(strstr(celer_error_message(), "JSON nesting depth exceeds maximum allowed limit (100): input 'x'"),
                     celer_error_message());
    assert_int_equal(decode(nested(100, "", buf), CELER_FLOAT, 1, (int64_t[]){0}, f), 0); /* empty at depth 99 */
    celer_str strs[1];
    assert_int_equal(decode(nested(99, "\"hello\"", buf), CELER_STRING, 1, d1, strs), 0);
    assert_int_equal(strs[0].len, 5);
    assert_int_equal(decode(nested(100, "\"hello\"", buf), CELER_STRING, 1, d1, strs), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "JSON nesting depth exceeds maximum allowed limit (100)"));
    assert_int_equal(decode(nested(120, "1", buf), CELER_INT64, 2, d11, (int64_t[1]){0}), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "JSON nesting depth exceeds maximum allowed limit (100)"));
    /* the exact form (v1 instances, business objects): nested data must match the shape */
    assert_int_equal(decode_exact("[[1,2,3],[4,5,6]]", CELER_FLOAT, 2, d23, f), 0);
    assert_int_equal(decode_exact("[1,2,3,4,5,6]", CELER_FLOAT, 2, d23, f), 0);
    assert_int_equal(decode_exact("[[1,2],[3,4],[5,6]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "input 'x'"));
    assert_int_equal(decode_exact("[[1,2,3],[4,5]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[[1,2,3],[4,5,6,7]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[[1,2,3],[4,5,6],[7,8,9]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[[1,2,3],4,5,6]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[1,2,3,[4,5,6]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[[[1,2,3]],[[4,5,6]]]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_int_equal(decode_exact("[[1,2],[3,4],[5,6]]", CELER_FLOAT, 2, d32, f), 0);
    assert_int_equal(decode_exact("[[1,2],[3,4]]", CELER_FLOAT, 1, d6, f), CELER_ERR_SHAPE);
    /* flat count */
    assert_int_equal(decode("[1,2,3,4,5]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_string_equal(celer_error_message(), "input 'x': shape [2,3] has 6 elements but data has 5");
    assert_int_equal(decode("[1,2,3,4,5,6,7,8]", CELER_FLOAT, 2, d23, f), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "data has 8"));
    /* malformed numbers inside a numeric span */
    assert_int_equal(decode("[1,,2,3,4,5]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    assert_int_equal(decode("[1,2,3,4,5,6,]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    assert_int_equal(decode("[1 2,3,4,5,6]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    assert_int_equal(decode("[1,2,3,4,5,--6]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    assert_int_equal(decode("[1,2,3,4,5,1e]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    assert_int_equal(decode("[1,2,3,4,5,01]", CELER_FLOAT, 1, d6, f), CELER_ERR_PARSE);
    /* mixed node arrays */
    assert_int_equal(decode("[[1,2,3],[4,5,\"x\"]]", CELER_FLOAT, 2, d23, f), CELER_ERR_INVALID);
    assert_int_equal(decode("[1,2,3,4,5,true]", CELER_FLOAT, 1, d6, f), CELER_ERR_INVALID);
    assert_int_equal(decode("[1,2,3,4,5,null]", CELER_FLOAT, 1, d6, f), CELER_ERR_INVALID);
    /* specials */
    assert_int_equal(decode("[NaN,Infinity,-Infinity,-0,1e39,1e-50]", CELER_FLOAT, 1, d6, f), 0);
    assert_true(isnan(f[0]) && isinf(f[1]) && f[1] > 0 && isinf(f[2]) && f[2] < 0 && signbit(f[3]));
    assert_true(isinf(f[4]) && f[5] == 0);
    /* scalar */
    assert_int_equal(decode("7", CELER_FLOAT, 0, NULL, f), 0);
    assert_true(f[0] == 7);
    assert_int_equal(decode("[7]", CELER_FLOAT, 0, NULL, f), 0);
    assert_int_equal(decode("[7,8]", CELER_FLOAT, 0, NULL, f), CELER_ERR_SHAPE);
    /* empty */
    int64_t d0[] = {0}, d20[] = {2, 0};
    assert_int_equal(decode("[]", CELER_FLOAT, 1, d0, f), 0);
    assert_int_equal(decode("[[],[]]", CELER_FLOAT, 2, d20, f), 0);
    assert_int_equal(decode("[]", CELER_FLOAT, 1, d6, f), CELER_ERR_SHAPE);
}

static void test_decode_dtypes(void **state) {
    (void)state;
    int64_t d4[] = {4}, d3[] = {3}, d2[] = {2};
    int8_t i8[4];
    assert_int_equal(decode("[-128,127,0,1e2]", CELER_INT8, 1, d4, i8), 0);
    assert_int_equal(i8[0], -128);
    assert_int_equal(i8[3], 100);
    assert_int_equal(decode("[-129,0,0,0]", CELER_INT8, 1, d4, i8), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "out of range"));
    assert_int_equal(decode("[1.5,0,0,0]", CELER_INT8, 1, d4, i8), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "not an integer"));
    assert_int_equal(decode("[NaN,0,0,0]", CELER_INT8, 1, d4, i8), CELER_ERR_INVALID);
    uint8_t u8[4];
    assert_int_equal(decode("[255,0,2.0,1.0e1]", CELER_UINT8, 1, d4, u8), 0);
    assert_int_equal(u8[3], 10);
    assert_int_equal(decode("[-1,0,0,0]", CELER_UINT8, 1, d4, u8), CELER_ERR_INVALID);
    assert_int_equal(decode("[-0,0,0,0]", CELER_UINT8, 1, d4, u8), 0);
    int64_t i64[3];
    assert_int_equal(decode("[-9223372036854775808,9223372036854775807,123456789012345678]", CELER_INT64, 1, d3, i64), 0);
    assert_true(i64[0] == INT64_MIN && i64[1] == INT64_MAX && i64[2] == 123456789012345678ll);
    assert_int_equal(decode("[9223372036854775808,0,0]", CELER_INT64, 1, d3, i64), CELER_ERR_INVALID);
    uint64_t u64[3];
    assert_int_equal(decode("[18446744073709551615,0,1]", CELER_UINT64, 1, d3, u64), 0);
    assert_true(u64[0] == UINT64_MAX);
    assert_int_equal(decode("[18446744073709551616,0,1]", CELER_UINT64, 1, d3, u64), CELER_ERR_INVALID);
    int16_t i16[2];
    assert_int_equal(decode("[-32768,32767]", CELER_INT16, 1, d2, i16), 0);
    uint16_t u16[2];
    assert_int_equal(decode("[65535,65536]", CELER_UINT16, 1, d2, u16), CELER_ERR_INVALID);
    int32_t i32[2];
    assert_int_equal(decode("[-2147483648,2147483647]", CELER_INT32, 1, d2, i32), 0);
    assert_true(i32[0] == INT32_MIN);
    uint32_t u32[2];
    assert_int_equal(decode("[4294967295,0]", CELER_UINT32, 1, d2, u32), 0);
    assert_true(u32[0] == UINT32_MAX);
    uint8_t b[4];
    assert_int_equal(decode("[true,false,1,0]", CELER_BOOL, 1, d4, b), 0);
    assert_true(b[0] == 1 && b[1] == 0 && b[2] == 1 && b[3] == 0);
    assert_int_equal(decode("[1,0,1,0]", CELER_BOOL, 1, d4, b), 0);
    assert_int_equal(decode("[2,0,1,0]", CELER_BOOL, 1, d4, b), CELER_ERR_INVALID);
    assert_int_equal(decode("[true,false,true]", CELER_BOOL, 1, d4, b), CELER_ERR_SHAPE);
    double dd[2];
    assert_int_equal(decode("[0.1,1e300]", CELER_DOUBLE, 1, d2, dd), 0);
    assert_true(dd[0] == 0.1 && dd[1] == 1e300);
    uint16_t h[3];
    assert_int_equal(decode("[1.5,-2,65504]", CELER_FLOAT16, 1, d3, h), 0);
    assert_int_equal(h[0], 0x3e00);
    assert_int_equal(h[1], 0xc000);
    assert_int_equal(h[2], 0x7bff);
    assert_int_equal(decode("[1.5,-2,3]", CELER_BFLOAT16, 1, d3, h), 0);
    assert_int_equal(h[0], 0x3fc0);
    celer_str s[3];
    assert_int_equal(decode("[\"a\",\"\\u00e9\",\"\"]", CELER_STRING, 1, d3, s), 0);
    assert_string_equal(s[0].data, "a");
    assert_string_equal(s[1].data, "\xc3\xa9");
    assert_int_equal(s[2].len, 0);
    /* \u0000 is a byte of the string, not its end */
    assert_int_equal(decode("[\"he\\u0000llo\",\"\\u0000\",\"x\"]", CELER_STRING, 1, d3, s), 0);
    assert_int_equal(s[0].len, 6);
    assert_memory_equal(s[0].data, "he\0llo", 6);
    assert_int_equal(s[1].len, 1);
    assert_int_equal(s[1].data[0], 0);
    assert_int_equal(decode("[\"a\",1,\"b\"]", CELER_STRING, 1, d3, s), CELER_ERR_INVALID);
    assert_int_equal(decode("[1,2,3]", CELER_STRING, 1, d3, s), CELER_ERR_INVALID);
    int64_t d22[] = {2, 2};
    celer_str s4[4];
    assert_int_equal(decode("[[\"a\",\"b\"],[\"c\",\"d\"]]", CELER_STRING, 2, d22, s4), 0);
    assert_string_equal(s4[3].data, "d");
}

/* ---- exact number parsing ---- */

static void check_float_text(const char *txt) {
    float want = strtof(txt, NULL), got = 0;
    size_t n = celer_json_parse_float(txt, txt + strlen(txt), &got);
    if (n != strlen(txt) || memcmp(&want, &got, 4) != 0)
        fail_msg("parse_float('%s') = %.9g (%zu bytes), strtof = %.9g", txt, got, n, want);
}

static void check_double_text(const char *txt) {
    double want = strtod(txt, NULL), got = 0;
    size_t n = celer_json_parse_double(txt, txt + strlen(txt), &got);
    if (n != strlen(txt) || memcmp(&want, &got, 8) != 0)
        fail_msg("parse_double('%s') = %.17g (%zu bytes), strtod = %.17g", txt, got, n, want);
}

static void test_parse_numbers_exact(void **state) {
    (void)state;
    const char *fixed[] = {"0", "-0", "1", "0.1", "3.4028235e38", "3.4028236e38", "1.17549435e-38", "1.4e-45",
                           "7e-46", "0.00000000000000000000000000001", "16777217", "16777219", "33554433",
                           "0.48500001430511475", "1.00000005960464477539062500000001", "1.000000059604644775390625",
                           "123456789012345678901234567890", "9007199254740993", "1e22", "1e23", "2.2250738585072011e-308",
                           "4.9406564584124654e-324", "1.7976931348623157e308", "1e-400", "1e400"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(fixed); i++) {
        check_float_text(fixed[i]);
        check_double_text(fixed[i]);
    }
    char txt[64];
    /* float halfway cases: exact decimals of float midpoints, and their neighbours */
    for (int i = 0; i < 20000; i++) {
        uint32_t bits = (uint32_t)next_u64() & 0x7f7fffffu;
        float a;
        memcpy(&a, &bits, 4);
        float b = nextafterf(a, INFINITY);
        double mid = ((double)a + (double)b) / 2;
        snprintf(txt, sizeof txt, "%.25g", mid);
        check_float_text(txt);
        snprintf(txt, sizeof txt, "%.17g", mid);
        check_float_text(txt);
    }
    /* random bit patterns printed at round-trip and at lower precision */
    for (int i = 0; i < 300000; i++) {
        uint32_t bits = (uint32_t)next_u64();
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f)) continue;
        snprintf(txt, sizeof txt, "%.9g", f);
        check_float_text(txt);
        snprintf(txt, sizeof txt, "%.*g", (int)(next_u64() % 9) + 1, f);
        check_float_text(txt);
        snprintf(txt, sizeof txt, "%.17g", (double)f); /* what Python's json writes for float32 data */
        check_float_text(txt);
    }
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = next_u64();
        double d;
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) continue;
        snprintf(txt, sizeof txt, "%.17g", d);
        check_double_text(txt);
        check_float_text(txt);
        snprintf(txt, sizeof txt, "%.*g", (int)(next_u64() % 17) + 1, d);
        check_double_text(txt);
    }
    /* random decimal strings of varying length and exponent */
    for (int i = 0; i < 300000; i++) {
        char *w = txt;
        if (next_u64() & 1) *w++ = '-';
        int ni = (int)(next_u64() % 12), nf = (int)(next_u64() % 14);
        if (ni == 0) {
            *w++ = '0';
        } else {
            *w++ = (char)('1' + next_u64() % 9);
            for (int k = 1; k < ni; k++) *w++ = (char)('0' + next_u64() % 10);
        }
        if (nf) {
            *w++ = '.';
            for (int k = 0; k < nf; k++) *w++ = (char)('0' + next_u64() % 10);
        }
        if (next_u64() % 3 == 0) w += sprintf(w, "e%d", (int)(next_u64() % 90) - 50);
        *w = 0;
        check_float_text(txt);
        check_double_text(txt);
    }
    /* not numbers */
    float f;
    assert_int_equal(celer_json_parse_float("abc", "abc" + 3, &f), 0);
    assert_int_equal(celer_json_parse_float("-", "-" + 1, &f), 0);
    assert_int_equal(celer_json_parse_float("1.5,", "1.5," + 4, &f), 3);
    assert_int_equal(celer_json_parse_float("NaN", "NaN" + 3, &f), 3);
    assert_true(isnan(f));
}

/* ---- formatting ---- */

static int sig_digits(const char *s) {
    char d[64];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') d[n++] = *s;
    int a = 0;
    while (a < n && d[a] == '0') a++;
    while (n > a && d[n - 1] == '0') n--;
    return n - a;
}

static bool valid_json_number(const char *s) {
    celer_json *j;
    celer_arena a;
    celer_arena_init(&a, 0, 0);
    bool ok = celer_json_parse(s, strlen(s), &a, &j) == 0 && j->type == CELER_JSON_NUMBER;
    celer_arena_free(&a);
    return ok;
}

static void check_format_float(float f, bool check_shortest) {
    char buf[32];
    int n = celer_json_format_float(f, buf);
    assert_int_equal(n, (int)strlen(buf));
    assert_true(n <= 16);
    float back = strtof(buf, NULL);
    if (memcmp(&back, &f, 4) != 0) fail_msg("format_float(%.9g) = '%s' does not round-trip", f, buf);
    if (!check_shortest) return;
    int p = 1;
    char ref[40];
    for (; p < 9; p++) {
        snprintf(ref, sizeof ref, "%.*e", p - 1, f);
        if (strtof(ref, NULL) == f) break;
    }
    int got = sig_digits(buf);
    if (got > p) fail_msg("format_float(%.9g) = '%s' has %d digits, %d suffice", f, buf, got, p);
}

static void check_format_double(double d) {
    char buf[40];
    int n = celer_json_format_double(d, buf);
    assert_int_equal(n, (int)strlen(buf));
    assert_true(n <= 25);
    double back = strtod(buf, NULL);
    if (memcmp(&back, &d, 8) != 0) fail_msg("format_double(%.17g) = '%s' does not round-trip", d, buf);
    int p = 1;
    char ref[40];
    for (; p < 17; p++) {
        snprintf(ref, sizeof ref, "%.*e", p - 1, d);
        if (strtod(ref, NULL) == d) break;
    }
    if (sig_digits(buf) > p) fail_msg("format_double(%.17g) = '%s' is not shortest (%d digits)", d, buf, p);
}

static void test_format(void **state) {
    (void)state;
    char buf[32];
    struct {
        float f;
        const char *s;
    } cases[] = {{0.0f, "0"},         {-0.0f, "-0"},     {1.0f, "1"},        {3.0f, "3"},          {0.1f, "0.1"},
                 {-2.5f, "-2.5"},     {1e-5f, "0.00001"}, {1e-6f, "1e-6"},    {1.5e20f, "1.5e20"},  {1e10f, "10000000000"},
                 {16777216.0f, "16777216"}, {3.4028235e38f, "3.4028235e38"}, {1.4e-45f, "1e-45"}, {0.3f, "0.3"},
                 {123.456f, "123.456"}, {1e15f, "1e15"}, {NAN, "NaN"},     {INFINITY, "Infinity"}, {-INFINITY, "-Infinity"}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        celer_json_format_float(cases[i].f, buf);
        if (strcmp(buf, cases[i].s)) fail_msg("format_float: got '%s', want '%s'", buf, cases[i].s);
        if (isfinite(cases[i].f)) assert_true(valid_json_number(buf));
    }
    celer_json_format_double(0.1, buf);
    assert_string_equal(buf, "0.1");
    celer_json_format_double(1e300, buf);
    assert_string_equal(buf, "1e300");
    celer_json_format_double(5e-324, buf);
    assert_string_equal(buf, "5e-324");
    celer_json_format_double(-123456789.125, buf);
    assert_string_equal(buf, "-123456789.125");
    /* powers of two: the lower half-interval is narrower */
    for (int e = -149; e < 128; e++) check_format_float(ldexpf(1.0f, e), true);
    for (int e = -1074; e < 1024; e += 3) check_format_double(ldexp(1.0, e));
    /* random bit patterns, shortest and round-trip; every format must be valid JSON */
    for (int i = 0; i < 300000; i++) {
        uint32_t bits = (uint32_t)next_u64();
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f)) continue;
        check_format_float(f, true);
        if (i % 1000 == 0) {
            celer_json_format_float(f, buf);
            assert_true(valid_json_number(buf));
        }
    }
    for (int i = 0; i < 100000; i++) {
        float f = (float)(next_u64() % 100000) / 1000.0f; /* short decimals */
        check_format_float(f, true);
    }
    for (int i = 0; i < 30000; i++) {
        uint64_t bits = next_u64();
        double d;
        memcpy(&d, &bits, 8);
        if (!isfinite(d)) continue;
        check_format_double(d);
        if (i % 1000 == 0) {
            celer_json_format_double(d, buf);
            assert_true(valid_json_number(buf));
        }
    }
}

/* ---- writer ---- */

static void test_jbuf(void **state) {
    (void)state;
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_jbuf_raw(&b, "{", 1);
    celer_jbuf_str(&b, "a\"b\\c\n\x01\xc3\xa9\xff\xe2\x82");
    celer_jbuf_raw(&b, ":", 1);
    celer_jbuf_int(&b, INT64_MIN);
    celer_jbuf_raw(&b, ",", 1);
    celer_jbuf_uint(&b, UINT64_MAX);
    celer_jbuf_raw(&b, ",", 1);
    celer_jbuf_double(&b, NAN);
    celer_jbuf_raw(&b, "}", 1);
    assert_int_equal(b.status, 0);
    assert_string_equal(b.data, "{\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\":-9223372036854775808,18446744073709551615,NaN}");
    assert_int_equal(b.len, strlen(b.data));
    celer_jbuf_reset(&b);
    assert_int_equal(b.len, 0);
    float fd[] = {1.5f, -0.0f, NAN, 1e-7f};
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = 2, .dims = {2, 2}}, .data = fd};
    celer_jbuf_tensor_data(&b, &t);
    assert_string_equal(b.data, "[1.5,-0,NaN,1e-7]");
    celer_jbuf_reset(&b);
    int64_t id[] = {-1, 2};
    t = (celer_tensor){.dtype = CELER_INT64, .shape = {.rank = 1, .dims = {2}}, .data = id};
    celer_jbuf_tensor_data(&b, &t);
    assert_string_equal(b.data, "[-1,2]");
    celer_jbuf_reset(&b);
    uint8_t bo[] = {1, 0};
    t = (celer_tensor){.dtype = CELER_BOOL, .shape = {.rank = 1, .dims = {2}}, .data = bo};
    celer_jbuf_tensor_data(&b, &t);
    assert_string_equal(b.data, "[true,false]");
    celer_jbuf_reset(&b);
    celer_str ss[] = {TU_LIT("x"), TU_LIT("\"y\""), TU_LIT("a\0b\x01")};
    t = (celer_tensor){.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = ss};
    celer_jbuf_tensor_data(&b, &t);
    assert_string_equal(b.data, "[\"x\",\"\\\"y\\\"\",\"a\\u0000b\\u0001\"]");
    celer_jbuf_reset(&b);
    /* bytes that are not UTF-8: an error rather than U+FFFD in their place */
    celer_str bad[] = {TU_LIT("ok"), TU_LIT("\xc3")};
    t = (celer_tensor){.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {2}}, .data = bad};
    celer_jbuf_tensor_data(&b, &t);
    assert_int_equal(b.status, CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "element 1"));
    celer_jbuf_free(&b);
    celer_jbuf_init(&b, 0);
    uint16_t hh[] = {0x3e00, 0x3c00};
    t = (celer_tensor){.dtype = CELER_FLOAT16, .shape = {.rank = 1, .dims = {2}}, .data = hh};
    celer_jbuf_tensor_data(&b, &t);
    assert_string_equal(b.data, "[1.5,1]");
    celer_jbuf_free(&b);
    /* the cap: first error sticks, later writes ignored */
    celer_jbuf_init(&b, 10);
    celer_jbuf_raw(&b, "0123456789", 10);
    assert_int_equal(b.status, 0);
    celer_jbuf_raw(&b, "x", 1);
    assert_int_equal(b.status, CELER_ERR_LIMIT);
    celer_jbuf_reset(&b);
    assert_int_equal(b.status, 0);
    celer_jbuf_str(&b, "0123456789");
    assert_int_equal(b.status, CELER_ERR_LIMIT);
    celer_jbuf_int(&b, 1);
    assert_int_equal(b.status, CELER_ERR_LIMIT);
    celer_jbuf_free(&b);
}

/* ---- timing (printed, not asserted) ---- */

static void test_benchmark(void **state) {
    (void)state;
    enum { N = 150528 };
    float *vals = malloc(N * sizeof(float)), *out = malloc(N * sizeof(float));
    tu_fill_random(vals, N, -3.0f, 3.0f, &(uint64_t){42});
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    const char *head = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3,224,224],\"datatype\":\"FP32\",\"data\":";
    celer_jbuf_raw(&b, head, strlen(head));
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {N}}, .data = vals};
    double t0 = now_us();
    celer_jbuf_tensor_data(&b, &t);
    double t_fmt = now_us() - t0;
    celer_jbuf_raw(&b, "}]}", 3);
    size_t body_len = b.len;
    double best_parse = 1e30, best_1000 = 1e30;
    celer_shape s = {.rank = 4, .dims = {1, 3, 224, 224}};
    for (int rep = 0; rep < 5; rep++) {
        celer_arena a;
        celer_arena_init(&a, 0, 0);
        t0 = now_us();
        celer_json *j;
        assert_int_equal(celer_json_parse(b.data, b.len, &a, &j), 0);
        const celer_json *in = &celer_json_get(j, "inputs")->items[0];
        assert_int_equal(celer_json_decode_tensor(celer_json_get(in, "data"), CELER_FLOAT, &s, out, &a, "x"), 0);
        double dt = now_us() - t0;
        if (dt < best_parse) best_parse = dt;
        celer_arena_free(&a);
    }
    assert_memory_equal(vals, out, N * sizeof(float));
    char buf[32];
    volatile int sink = 0;
    for (int rep = 0; rep < 20; rep++) {
        t0 = now_us();
        for (int i = 0; i < 1000; i++) sink += celer_json_format_float(vals[i], buf);
        double dt = now_us() - t0;
        if (dt < best_1000) best_1000 = dt;
    }
    /* a 17-digit body (what Python json.dumps writes for float32 values) */
    celer_jbuf b17;
    celer_jbuf_init(&b17, 0);
    celer_jbuf_raw(&b17, "[", 1);
    for (int i = 0; i < N; i++) {
        char tmp[40];
        int n = snprintf(tmp, sizeof tmp, "%s%.17g", i ? ", " : "", (double)vals[i]);
        celer_jbuf_raw(&b17, tmp, (size_t)n);
    }
    celer_jbuf_raw(&b17, "]", 1);
    double best17 = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        celer_arena a;
        celer_arena_init(&a, 0, 0);
        t0 = now_us();
        celer_json *j;
        assert_int_equal(celer_json_parse(b17.data, b17.len, &a, &j), 0);
        assert_int_equal(celer_json_decode_tensor(j, CELER_FLOAT, &s, out, &a, "x"), 0);
        double dt = now_us() - t0;
        if (dt < best17) best17 = dt;
        celer_arena_free(&a);
    }
    assert_memory_equal(vals, out, N * sizeof(float));
    /* for scale: strtof alone over the same numbers */
    double best_strtof = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now_us();
        const char *p = strchr(b.data, '[') + 1;
        p = strchr(p, '[') + 1; /* data array */
        p = strstr(p, "\"data\":[") + 8;
        for (int i = 0; i < N; i++) {
            char *e;
            out[i] = strtof(p, &e);
            p = e + 1;
        }
        double dt = now_us() - t0;
        if (dt < best_strtof) best_strtof = dt;
    }
    assert_memory_equal(vals, out, N * sizeof(float));
    print_message("bench: strtof alone over the same %d numbers: %.2f ms\n", N, best_strtof / 1e3);
    print_message("bench: parse+decode %d FP32 (%zu bytes, shortest form): %.2f ms\n", N, body_len, best_parse / 1e3);
    print_message("bench: parse+decode %d FP32 (%zu bytes, %%.17g form): %.2f ms\n", N, b17.len, best17 / 1e3);
    print_message("bench: format %d FP32 as a JSON array: %.2f ms; 1000 floats: %.1f us\n", N, t_fmt / 1e3, best_1000);
    celer_jbuf_free(&b17);
    celer_jbuf_free(&b);
    free(vals);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numeric_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_dtypes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_numbers_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jbuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_benchmark, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
