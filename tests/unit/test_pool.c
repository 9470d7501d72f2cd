/* Pooling operators on small hand-checked inputs: MaxPool (+Indices, storage_order, dilations,
 * ceil_mode), AveragePool (count_include_pad), LpPool, global pools, MaxUnpool, MaxRoiPool. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct {
    celer_onnx_attr attrs[10];
    int n;
    int64_t store[10][8];
} attrs_t;

static void a_ints(attrs_t *a, const char *name, int n, const int64_t *v) {
    memcpy(a->store[a->n], v, (size_t)n * sizeof *v);
    a->attrs[a->n] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INTS, .n = n,
                                       .ints = a->store[a->n]};
    a->n++;
}
static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s,
                                         .s_len = strlen(s)};
}
static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in, int n_out) {
    static const char *const names[] = {"x", "i", "s"};
    static const char *const outs[] = {"y", "ind"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = n_out, .n_attrs = a->n, .inputs = names,
                             .outputs = outs, .attrs = a->attrs};
}

static float x16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void expect_f32(const celer_tensor *t, const float *want, int n) {
    assert_int_equal(celer_shape_numel(&t->shape), n);
    for (int i = 0; i < n; i++) {
        if (fabsf(((float *)t->data)[i] - want[i]) > 1e-5f * (1 + fabsf(want[i])))
            print_error("element %d: %g, expected %g\n", i, ((float *)t->data)[i], want[i]);
        assert_true(fabsf(((float *)t->data)[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])));
    }
}

static void test_maxpool(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 4, 4}}, x16};
    const celer_tensor *in[] = {&x};
    celer_tensor out[2];
    /* 2x2 stride 2 with indices */
    attrs_t a = {0};
    a_ints(&a, "kernel_shape", 2, (int64_t[]){2, 2});
    a_ints(&a, "strides", 2, (int64_t[]){2, 2});
    celer_onnx_node node = make_node("MaxPool", &a, 1, 2);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 2), CELER_OK);
    expect_f32(&out[0], (float[]){6, 8, 14, 16}, 4);
    assert_int_equal(out[1].dtype, CELER_INT64);
    int64_t *ind = out[1].data;
    assert_true(ind[0] == 5 && ind[1] == 7 && ind[2] == 13 && ind[3] == 15);
    tu_free_outputs(out, 2);
    /* column-major indices: (h, w) -> w * H + h */
    a_int(&a, "storage_order", 1);
    node = make_node("MaxPool", &a, 1, 2);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 2), CELER_OK);
    ind = out[1].data;
    assert_true(ind[0] == 5 && ind[1] == 13 && ind[2] == 7 && ind[3] == 15);
    tu_free_outputs(out, 2);

    /* 3x3 stride 2 with ceil_mode: 4 -> 2 (floor would give 1) */
    attrs_t c = {0};
    a_ints(&c, "kernel_shape", 2, (int64_t[]){3, 3});
    a_ints(&c, "strides", 2, (int64_t[]){2, 2});
    a_int(&c, "ceil_mode", 1);
    node = make_node("MaxPool", &c, 1, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){11, 12, 15, 16}, 4);
    tu_free_outputs(out, 1);

    /* dilation 2, kernel 2: window {0, 2} */
    attrs_t d = {0};
    a_ints(&d, "kernel_shape", 2, (int64_t[]){2, 2});
    a_ints(&d, "dilations", 2, (int64_t[]){2, 2});
    node = make_node("MaxPool", &d, 1, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){11, 12, 15, 16}, 4);
    tu_free_outputs(out, 1);

    /* SAME_UPPER, kernel 2, stride 1: padding at the end only */
    attrs_t su = {0};
    a_ints(&su, "kernel_shape", 2, (int64_t[]){2, 2});
    a_str(&su, "auto_pad", "SAME_UPPER");
    node = make_node("MaxPool", &su, 1, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){6, 7, 8, 8, 10, 11, 12, 12, 14, 15, 16, 16, 14, 15, 16, 16}, 16);
    tu_free_outputs(out, 1);

    /* uint8 */
    uint8_t xu[4] = {3, 250, 7, 1};
    celer_tensor tu8 = {CELER_UINT8, {4, {1, 1, 2, 2}}, xu};
    const celer_tensor *inu[] = {&tu8};
    attrs_t u = {0};
    a_ints(&u, "kernel_shape", 2, (int64_t[]){2, 2});
    node = make_node("MaxPool", &u, 1, 1);
    assert_int_equal(tu_run_op(&node, 12, inu, 1, out, 1), CELER_OK);
    assert_int_equal(((uint8_t *)out[0].data)[0], 250);
    tu_free_outputs(out, 1);
    /* ...but not before opset 12 */
    assert_int_equal(tu_run_op(&node, 11, inu, 1, out, 1), CELER_ERR_UNSUPPORTED);

    /* missing kernel_shape is a clean error */
    attrs_t none = {0};
    node = make_node("MaxPool", &none, 1, 1);
    assert_int_equal(tu_run_op(&node, 12, in, 1, out, 1), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "kernel_shape"));
}

static void test_averagepool(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 4, 4}}, x16};
    const celer_tensor *in[] = {&x};
    celer_tensor out[1];
    attrs_t a = {0};
    a_ints(&a, "kernel_shape", 2, (int64_t[]){3, 3});
    a_ints(&a, "pads", 4, (int64_t[]){1, 1, 1, 1});
    a_ints(&a, "strides", 2, (int64_t[]){3, 3});
    celer_onnx_node node = make_node("AveragePool", &a, 1, 1);
    /* windows at (-1,-1) and (2,2): corners see 4 values */
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){(1 + 2 + 5 + 6) / 4.f, (3 + 4 + 7 + 8) / 4.f,
                                  (9 + 10 + 13 + 14) / 4.f, (11 + 12 + 15 + 16) / 4.f}, 4);
    tu_free_outputs(out, 1);
    a_int(&a, "count_include_pad", 1);
    node = make_node("AveragePool", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){14 / 9.f, 22 / 9.f, 46 / 9.f, (11 + 12 + 15 + 16) / 9.f}, 4);
    tu_free_outputs(out, 1);

    /* LpPool p=2 over 2x2 windows, stride 2 */
    attrs_t l = {0};
    a_ints(&l, "kernel_shape", 2, (int64_t[]){2, 2});
    a_ints(&l, "strides", 2, (int64_t[]){2, 2});
    node = make_node("LpPool", &l, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){sqrtf(1 + 4 + 25 + 36), sqrtf(9 + 16 + 49 + 64),
                                  sqrtf(81 + 100 + 169 + 196), sqrtf(121 + 144 + 225 + 256)}, 4);
    tu_free_outputs(out, 1);
}

static void test_global(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {3, {1, 2, 8}}, x16};
    const celer_tensor *in[] = {&x};
    celer_tensor out[1];
    attrs_t a = {0};
    celer_onnx_node node = make_node("GlobalAveragePool", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.rank, 3);
    assert_int_equal(out[0].shape.dims[2], 1);
    expect_f32(&out[0], (float[]){4.5f, 12.5f}, 2);
    tu_free_outputs(out, 1);
    node = make_node("GlobalMaxPool", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){8, 16}, 2);
    tu_free_outputs(out, 1);
    node = make_node("GlobalLpPool", &a, 1, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){sqrtf(204), sqrtf(1292)}, 2);
    tu_free_outputs(out, 1);
}

/* MaxPool's indices fed to MaxUnpool put every maximum back where it came from. */
static void test_maxunpool(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 4, 4}}, x16};
    const celer_tensor *in[] = {&x};
    celer_tensor pooled[2], out[1];
    attrs_t a = {0};
    a_ints(&a, "kernel_shape", 2, (int64_t[]){2, 2});
    a_ints(&a, "strides", 2, (int64_t[]){2, 2});
    celer_onnx_node mp = make_node("MaxPool", &a, 1, 2);
    assert_int_equal(tu_run_op(&mp, 12, in, 1, pooled, 2), CELER_OK);
    const celer_tensor *uin[] = {&pooled[0], &pooled[1]};
    celer_onnx_node up = make_node("MaxUnpool", &a, 2, 1);
    assert_int_equal(tu_run_op(&up, 11, uin, 2, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){0, 0, 0, 0, 0, 6, 0, 8, 0, 0, 0, 0, 0, 14, 0, 16}, 16);
    tu_free_outputs(out, 1);
    /* larger output_shape: same coordinates in the bigger tensor */
    int64_t shape[4] = {1, 1, 5, 5};
    celer_tensor os = {CELER_INT64, {1, {4}}, shape};
    const celer_tensor *uin3[] = {&pooled[0], &pooled[1], &os};
    up = make_node("MaxUnpool", &a, 3, 1);
    assert_int_equal(tu_run_op(&up, 11, uin3, 3, out, 1), CELER_OK);
    assert_float_equal(((float *)out[0].data)[6], 6, 0);
    assert_float_equal(((float *)out[0].data)[18], 16, 0);
    tu_free_outputs(out, 1);
    /* out-of-range index: error, not a write out of bounds */
    ((int64_t *)pooled[1].data)[0] = 99;
    assert_int_equal(tu_run_op(&up, 11, uin, 2, out, 1), CELER_ERR_INVALID);
    tu_free_outputs(out, 1);
    tu_free_outputs(pooled, 2);
}

static void test_maxroipool(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 4, 4}}, x16};
    float rois[5] = {0, 0, 0, 3, 3};
    celer_tensor r = {CELER_FLOAT, {2, {1, 5}}, rois};
    const celer_tensor *in[] = {&x, &r};
    celer_tensor out[1];
    attrs_t a = {0};
    a_ints(&a, "pooled_shape", 2, (int64_t[]){2, 2});
    celer_onnx_node node = make_node("MaxRoiPool", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){6, 8, 14, 16}, 4);
    tu_free_outputs(out, 1);
    rois[0] = 3; /* batch index out of range */
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 1), CELER_ERR_INVALID);
    tu_free_outputs(out, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool),      cmocka_unit_test(test_averagepool),
        cmocka_unit_test(test_global),       cmocka_unit_test(test_maxunpool),
        cmocka_unit_test(test_maxroipool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
