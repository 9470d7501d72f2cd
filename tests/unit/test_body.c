/* Answer bodies in parts (src/server/body.c): what the KServe and gRPC encoders write as parts
 * (tensors by reference) reads back, in pieces of any size, as exactly the bytes the one-buffer
 * encoders write; tensors are referenced, not copied; BYTES elements go into the head. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "server/body.h"
#include "server/grpc_codec.h"

static float big[4096];
static int64_t ints[6] = {1, -2, 3, -4, 5, -6};
static celer_str strs[3] = {{"a", 1}, {"", 0}, {"x\0y", 3}};

static void outputs(celer_tensor *t) {
    for (int i = 0; i < 4096; i++) big[i] = (float)i * 0.5f;
    t[0] = (celer_tensor){.dtype = CELER_FLOAT, .shape = {2, {64, 64}}, .data = big};
    t[1] = (celer_tensor){.dtype = CELER_STRING, .shape = {1, {3}}, .data = strs};
    t[2] = (celer_tensor){.dtype = CELER_INT64, .shape = {2, {2, 3}}, .data = ints};
}

/* Reads b whole in pieces of `step` bytes. */
static char *read_all(celer_body *b, size_t step, size_t *len) {
    char *out = malloc(b->total + 1);
    size_t n = 0, k;
    while ((k = celer_body_read(b, out + n, CELER_MIN(step, b->total + 1 - n))) > 0) n += k;
    *len = n;
    b->cur = 0, b->off = 0; /* rewind for the next reading */
    return out;
}

static void test_kserve_parts(void **state) {
    (void)state;
    celer_tensor t[3];
    outputs(t);
    const char *names[3] = {"f", "s", "i"};
    celer_kserve_output_request want[3] = {{.name = "f", .binary = true}, {.name = "s", .binary = true}, {.name = "i"}};
    celer_kserve_request req = {.id = "r1", .n_outputs = 3, .outputs = want};
    celer_jbuf flat;
    celer_jbuf_init(&flat, 0);
    size_t jl_flat, jl_body;
    assert_int_equal(celer_kserve_encode_infer(&req, "m", "1", names, t, 3, &flat, &jl_flat), CELER_OK);
    celer_body b;
    celer_body_init(&b, 0);
    assert_int_equal(celer_kserve_encode_infer_body(&req, "m", "1", names, t, 3, &b, &jl_body), CELER_OK);
    celer_body_finish(&b);
    assert_int_equal(jl_body, jl_flat);
    assert_int_equal(b.total, flat.len);
    assert_int_equal(b.n_refs, 1); /* the floats; the strings are in the head */
    bool referenced = false;
    for (int i = 0; i < b.n; i++) referenced |= b.part[i].p == (const uint8_t *)big;
    assert_true(referenced);
    assert_true(b.head.len < flat.len - sizeof big + 1); /* the floats were not copied into the head */
    size_t steps[] = {1, 7, 4096, 1 << 20};
    for (size_t s = 0; s < CELER_ARRAY_LEN(steps); s++) {
        size_t n;
        char *got = read_all(&b, steps[s], &n);
        assert_int_equal(n, flat.len);
        assert_memory_equal(got, flat.data, n);
        free(got);
    }
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    celer_body_flatten(&b, &out);
    assert_int_equal(out.len, flat.len);
    assert_memory_equal(out.data, flat.data, out.len);
    celer_jbuf_free(&out);
    celer_body_free(&b);
    celer_jbuf_free(&flat);
}

static void test_grpc_parts(void **state) {
    (void)state;
    celer_tensor t[3];
    outputs(t);
    const char *names[3] = {"f", "s", "i"};
    celer_jbuf flat;
    celer_jbuf_init(&flat, 0);
    celer_jbuf_raw(&flat, "\0\0\0\0\0", 5);
    size_t mark = celer_pb_begin(&flat, 2); /* as a stream wraps it */
    assert_int_equal(celer_grpc_encode_infer(NULL, "m", "1", names, t, 3, &flat), CELER_OK);
    celer_pb_end(&flat, mark);
    celer_body b;
    celer_body_init(&b, 0);
    celer_jbuf_raw(&b.head, "\0\0\0\0\0", 5);
    size_t bmark = celer_pb_begin(&b.head, 2);
    assert_int_equal(celer_grpc_encode_infer_body(NULL, "m", "1", names, t, 3, &b), CELER_OK);
    celer_body_finish(&b);
    celer_pb_patch_len(&b.head, bmark, b.total - bmark - 5);
    assert_int_equal(b.total, flat.len);
    size_t n;
    char *got = read_all(&b, 333, &n);
    assert_int_equal(n, flat.len);
    assert_memory_equal(got, flat.data, n);
    free(got);
    celer_body_free(&b);
    celer_jbuf_free(&flat);
}

static void test_sizes(void **state) {
    (void)state;
    celer_tensor t[3];
    outputs(t);
    assert_int_equal(celer_outputs_bytes(t, 3), sizeof big + sizeof ints); /* BYTES not counted */
    celer_body b;
    celer_body_init(&b, 0);
    celer_body_ref(&b, big, 0); /* an empty part is no part */
    celer_jbuf_raw(&b.head, "ab", 2);
    celer_body_ref(&b, "cd", 2);
    celer_jbuf_raw(&b.head, "ef", 2);
    celer_body_finish(&b);
    assert_int_equal(b.n, 3);
    char out[8] = {0};
    assert_int_equal(celer_body_read(&b, out, sizeof out), 6);
    assert_string_equal(out, "abcdef");
    assert_int_equal(celer_body_read(&b, out, sizeof out), 0);
    celer_body_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kserve_parts),
        cmocka_unit_test(test_grpc_parts),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
