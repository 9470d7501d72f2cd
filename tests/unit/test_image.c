/* Image operators on small hand-checked inputs: Resize (modes, coordinate transforms, nearest
 * rules, tf_crop_and_resize, dtypes, bad inputs), Upsample, GridSample, AffineGrid, Col2Im, RoiAlign,
 * NonMaxSuppression. The ONNX conformance cases cover the spec's examples; these pin the rest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"
#include "testutil.h"

typedef struct {
    celer_onnx_attr attrs[10];
    int n;
    float fstore[4][8];
} attrs_t;

static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_float(attrs_t *a, const char *name, float v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_FLOAT, .f = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s,
                                         .s_len = strlen(s)};
}
static void a_floats(attrs_t *a, const char *name, int n, const float *v) {
    float *st = a->fstore[a->n % 4];
    memcpy(st, v, (size_t)n * sizeof *v);
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_FLOATS, .n = n,
                                         .floats = st};
}
static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in) {
    static const char *const names[] = {"x", "a", "b", "c", "d"};
    static const char *const outs[] = {"y"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = 1, .n_attrs = a->n, .inputs = names, .outputs = outs,
                             .attrs = a->attrs};
}

static void expect_f32(const celer_tensor *t, const float *want, int n) {
    assert_int_equal(t->dtype, CELER_FLOAT);
    assert_int_equal(celer_shape_numel(&t->shape), n);
    for (int i = 0; i < n; i++) {
        float got = ((float *)t->data)[i];
        if (fabsf(got - want[i]) > 1e-4f * (1 + fabsf(want[i])))
            print_error("element %d: %g, expected %g\n", i, got, want[i]);
        assert_true(fabsf(got - want[i]) <= 1e-4f * (1 + fabsf(want[i])));
    }
}

/* Runs Resize-13 on x with the given sizes (or scales when sizes is NULL). */
static celer_status resize13(attrs_t *a, const celer_tensor *x, const celer_tensor *roi,
                             const float *scales, const int64_t *sizes, celer_tensor *out) {
    int r = x->shape.rank;
    celer_tensor sc = {CELER_FLOAT, {1, {r}}, (void *)scales};
    celer_tensor sz = {CELER_INT64, {1, {r}}, (void *)sizes};
    const celer_tensor *in[] = {x, roi, scales ? &sc : NULL, sizes ? &sz : NULL};
    celer_onnx_node node = make_node("Resize", a, 4);
    return tu_run_op(&node, 13, in, 4, out, 1);
}

static float x22[] = {1, 2, 3, 4};

static void test_resize_nearest(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 2}}, x22}, out[1];
    attrs_t a = {0};
    a_str(&a, "mode", "nearest");
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, 2, 3}, NULL, out), CELER_OK);
    assert_true(out[0].shape.dims[2] == 4 && out[0].shape.dims[3] == 6);
    expect_f32(&out[0], (float[]){1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                  3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4}, 24);
    tu_free_outputs(out, 1);

    /* the four rounding rules on x = o / 2 (asymmetric): 0, .5, 1, 1.5, ... 3.5 */
    static const struct {
        const char *rule;
        float want[8];
    } rules[] = {
        {"round_prefer_ceil", {0, 1, 1, 2, 2, 3, 3, 3}},
        {"round_prefer_floor", {0, 0, 1, 1, 2, 2, 3, 3}},
        {"floor", {0, 0, 1, 1, 2, 2, 3, 3}},
        {"ceil", {0, 1, 1, 2, 2, 3, 3, 3}},
    };
    float v4[] = {0, 1, 2, 3};
    celer_tensor x4 = {CELER_FLOAT, {1, {4}}, v4};
    for (size_t i = 0; i < CELER_ARRAY_LEN(rules); i++) {
        attrs_t b = {0};
        a_str(&b, "mode", "nearest");
        a_str(&b, "coordinate_transformation_mode", "asymmetric");
        a_str(&b, "nearest_mode", rules[i].rule);
        assert_int_equal(resize13(&b, &x4, NULL, NULL, (int64_t[]){8}, out), CELER_OK);
        expect_f32(&out[0], rules[i].want, 8);
        tu_free_outputs(out, 1);
    }

    /* any element type: uint8 */
    uint8_t u[] = {10, 20, 30};
    celer_tensor xu = {CELER_UINT8, {2, {1, 3}}, u};
    attrs_t c = {0};
    a_str(&c, "coordinate_transformation_mode", "asymmetric");
    a_str(&c, "nearest_mode", "floor");
    assert_int_equal(resize13(&c, &xu, NULL, (float[]){2, 2}, NULL, out), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_UINT8);
    static const uint8_t uw[] = {10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30};
    assert_memory_equal(out[0].data, uw, sizeof uw);
    tu_free_outputs(out, 1);
}

static void test_resize_linear(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 2}}, x22}, out[1];
    attrs_t a = {0};
    a_str(&a, "mode", "linear");
    static const float half[] = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                                 2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, 2, 2}, NULL, out), CELER_OK);
    expect_f32(&out[0], half, 16);
    tu_free_outputs(out, 1);

    attrs_t b = {0};
    a_str(&b, "mode", "linear");
    a_str(&b, "coordinate_transformation_mode", "align_corners");
    const float t = 1.0f / 3, u = 2.0f / 3;
    assert_int_equal(resize13(&b, &x, NULL, NULL, (int64_t[]){1, 1, 4, 4}, out), CELER_OK);
    expect_f32(&out[0], (float[]){1, 1 + t, 1 + u, 2, 1 + 2 * t, 2, 2 + t, 2 + u,
                                  2 + t, 2 + u, 3, 3 + t, 3, 3 + t, 3 + u, 4}, 16);
    tu_free_outputs(out, 1);

    /* double and float16 take the same path */
    double xd[] = {1, 2, 3, 4};
    celer_tensor x_d = {CELER_DOUBLE, {4, {1, 1, 2, 2}}, xd};
    assert_int_equal(resize13(&a, &x_d, NULL, (float[]){1, 1, 2, 2}, NULL, out), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_DOUBLE);
    for (int i = 0; i < 16; i++) assert_true(fabs(((double *)out[0].data)[i] - half[i]) < 1e-12);
    tu_free_outputs(out, 1);
    uint16_t xh[4];
    for (int i = 0; i < 4; i++) xh[i] = celer_float_to_half(x22[i]);
    celer_tensor x_h = {CELER_FLOAT16, {4, {1, 1, 2, 2}}, xh};
    assert_int_equal(resize13(&a, &x_h, NULL, (float[]){1, 1, 2, 2}, NULL, out), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_FLOAT16);
    for (int i = 0; i < 16; i++)
        assert_true(fabsf(celer_half_to_float(((uint16_t *)out[0].data)[i]) - half[i]) < 1e-3f);
    tu_free_outputs(out, 1);

    /* linear on integers is refused cleanly */
    int8_t xi[] = {1, 2, 3, 4};
    celer_tensor x_i = {CELER_INT8, {4, {1, 1, 2, 2}}, xi};
    assert_int_equal(resize13(&a, &x_i, NULL, (float[]){1, 1, 2, 2}, NULL, out),
                     CELER_ERR_UNSUPPORTED);
}

/* The separable passes against a direct per-element bilinear formula on NCHW data. */
static void test_resize_linear_matches_direct(void **unused) {
    (void)unused;
    enum { N = 2, C = 3, H = 7, W = 9, OH = 15, OW = 4 };
    static float xv[N * C * H * W], want[N * C * OH * OW];
    uint64_t seed = 7;
    tu_fill_random(xv, CELER_ARRAY_LEN(xv), -2, 2, &seed);
    for (int p = 0; p < N * C; p++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double fy = (oh + 0.5) * H / OH - 0.5, fx = (ow + 0.5) * W / OW - 0.5;
                fy = fmin(fmax(fy, 0), H - 1), fx = fmin(fmax(fx, 0), W - 1);
                int y0 = (int)fy, x0 = (int)fx, y1 = y0 + (y0 < H - 1), x1 = x0 + (x0 < W - 1);
                double ly = fy - y0, lx = fx - x0;
                const float *s = xv + p * H * W;
                want[(p * OH + oh) * OW + ow] =
                    (float)((1 - ly) * ((1 - lx) * s[y0 * W + x0] + lx * s[y0 * W + x1]) +
                            ly * ((1 - lx) * s[y1 * W + x0] + lx * s[y1 * W + x1]));
            }
    celer_tensor x = {CELER_FLOAT, {4, {N, C, H, W}}, xv}, out[1];
    attrs_t a = {0};
    a_str(&a, "mode", "linear");
    assert_int_equal(resize13(&a, &x, NULL, NULL, (int64_t[]){N, C, OH, OW}, out), CELER_OK);
    assert_true(tu_max_rel_diff(out[0].data, want, CELER_ARRAY_LEN(want)) < 1e-5);
    tu_free_outputs(out, 1);
}

static void test_resize_cubic_and_crop(void **unused) {
    (void)unused;
    celer_tensor out[1];
    /* cubic at scale 1 is the identity (weights 0, 1, 0, 0) */
    float v[] = {3, -1, 4, 1, -5, 9};
    celer_tensor x = {CELER_FLOAT, {2, {2, 3}}, v};
    attrs_t a = {0};
    a_str(&a, "mode", "cubic");
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1}, NULL, out), CELER_OK);
    expect_f32(&out[0], v, 6);
    tu_free_outputs(out, 1);

    /* tf_crop_and_resize on [0, 10, 20, 30], roi [-0.5, 1.5], 3 samples: x = -1.5, 1.5, 4.5 */
    float v4[] = {0, 10, 20, 30}, roi[] = {-0.5f, 1.5f};
    celer_tensor x4 = {CELER_FLOAT, {1, {4}}, v4}, r = {CELER_FLOAT, {1, {2}}, roi};
    attrs_t b = {0};
    a_str(&b, "mode", "linear");
    a_str(&b, "coordinate_transformation_mode", "tf_crop_and_resize");
    a_float(&b, "extrapolation_value", 7);
    assert_int_equal(resize13(&b, &x4, &r, NULL, (int64_t[]){3}, out), CELER_OK);
    expect_f32(&out[0], (float[]){7, 15, 7}, 3);
    tu_free_outputs(out, 1);
    /* nearest takes the extrapolation value too; without roi it is an error */
    attrs_t c = {0};
    a_str(&c, "coordinate_transformation_mode", "tf_crop_and_resize");
    a_float(&c, "extrapolation_value", 7);
    assert_int_equal(resize13(&c, &x4, &r, NULL, (int64_t[]){3}, out), CELER_OK);
    expect_f32(&out[0], (float[]){7, 10, 7}, 3); /* 1.5 rounds to 1 (round_prefer_floor) */
    tu_free_outputs(out, 1);
    assert_int_equal(resize13(&c, &x4, NULL, NULL, (int64_t[]){3}, out), CELER_ERR_INVALID);
}

static void test_resize_bad_inputs(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 2}}, x22}, out[1];
    attrs_t a = {0};
    /* scales with the wrong count */
    celer_tensor sc3 = {CELER_FLOAT, {1, {3}}, (float[]){1, 2, 2}};
    const celer_tensor *in3[] = {&x, NULL, &sc3, NULL};
    celer_onnx_node node = make_node("Resize", &a, 4);
    assert_int_equal(tu_run_op(&node, 13, in3, 4, out, 1), CELER_ERR_SHAPE);
    /* non-positive sizes and scales, NaN scale */
    assert_int_equal(resize13(&a, &x, NULL, NULL, (int64_t[]){1, 1, 0, 2}, out),
                     CELER_ERR_INVALID);
    assert_int_equal(resize13(&a, &x, NULL, NULL, (int64_t[]){1, 1, -3, 2}, out),
                     CELER_ERR_INVALID);
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, 0, 2}, NULL, out), CELER_ERR_INVALID);
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, NAN, 2}, NULL, out),
                     CELER_ERR_INVALID);
    /* both scales and sizes, or neither */
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, 2, 2}, (int64_t[]){1, 1, 4, 4}, out),
                     CELER_ERR_INVALID);
    assert_int_equal(resize13(&a, &x, NULL, NULL, NULL, out), CELER_ERR_INVALID);
    /* huge outputs: one dim past the cap, and a product past the byte limit */
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1, 1, 1e30f, 1}, NULL, out),
                     CELER_ERR_LIMIT);
    assert_int_equal(resize13(&a, &x, NULL, (float[]){1e5f, 1e5f, 1e5f, 1e5f}, NULL, out),
                     CELER_ERR_LIMIT);
    assert_int_equal(resize13(&a, &x, NULL, NULL, (int64_t[]){1, 1, 1 << 20, 1 << 20}, out),
                     CELER_ERR_LIMIT);
    /* unknown attribute values */
    attrs_t b = {0};
    a_str(&b, "mode", "bogus");
    assert_int_equal(resize13(&b, &x, NULL, (float[]){1, 1, 2, 2}, NULL, out),
                     CELER_ERR_UNSUPPORTED);
    /* sizes must be int64 */
    celer_tensor sz32 = {CELER_INT32, {1, {4}}, (int32_t[]){1, 1, 4, 4}};
    const celer_tensor *in4[] = {&x, NULL, NULL, &sz32};
    assert_int_equal(tu_run_op(&node, 13, in4, 4, out, 1), CELER_ERR_DTYPE);
}

static void test_upsample_and_resize10(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 2}}, x22}, out[1];
    static const float want[] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    attrs_t a = {0};
    a_str(&a, "mode", "nearest");
    a_floats(&a, "scales", 4, (float[]){1, 1, 2, 3});
    celer_onnx_node node = make_node("Upsample", &a, 1);
    const celer_tensor *in1[] = {&x};
    assert_int_equal(tu_run_op(&node, 7, in1, 1, out, 1), CELER_OK);
    expect_f32(&out[0], want, 24);
    tu_free_outputs(out, 1);

    attrs_t b = {0};
    celer_tensor sc = {CELER_FLOAT, {1, {4}}, (float[]){1, 1, 2, 3}};
    const celer_tensor *in2[] = {&x, &sc};
    node = make_node("Upsample", &b, 2);
    assert_int_equal(tu_run_op(&node, 9, in2, 2, out, 1), CELER_OK);
    expect_f32(&out[0], want, 24);
    tu_free_outputs(out, 1);
    /* Upsample-7 with a scales attribute of the wrong length */
    attrs_t c = {0};
    a_floats(&c, "scales", 2, (float[]){2, 2});
    node = make_node("Upsample", &c, 1);
    assert_int_equal(tu_run_op(&node, 7, in1, 1, out, 1), CELER_ERR_SHAPE);

    /* Resize-10 (asymmetric): linear 2x on [1, 2] gives 1, 1.5, 2, 2 (edge clamp) */
    float v2[] = {1, 2};
    celer_tensor x2 = {CELER_FLOAT, {1, {2}}, v2}, sc2 = {CELER_FLOAT, {1, {1}}, (float[]){2}};
    const celer_tensor *in3[] = {&x2, &sc2};
    attrs_t d = {0};
    a_str(&d, "mode", "linear");
    node = make_node("Resize", &d, 2);
    assert_int_equal(tu_run_op(&node, 10, in3, 2, out, 1), CELER_OK);
    expect_f32(&out[0], (float[]){1, 1.5f, 2, 2}, 4);
    tu_free_outputs(out, 1);
}

static void test_gridsample(void **unused) {
    (void)unused;
    float xv[] = {0, 1, 2, 3, 4, 5}; /* 1x1x2x3 */
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 3}}, xv}, out[1];
    /* align_corners: the grid of pixel centres reproduces the input */
    float gv[12];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            gv[(i * 3 + j) * 2] = (float)j - 1;
            gv[(i * 3 + j) * 2 + 1] = (float)i * 2 - 1;
        }
    celer_tensor g = {CELER_FLOAT, {4, {1, 2, 3, 2}}, gv};
    const celer_tensor *in[] = {&x, &g};
    attrs_t a = {0};
    a_int(&a, "align_corners", 1);
    celer_onnx_node node = make_node("GridSample", &a, 2);
    assert_int_equal(tu_run_op(&node, 16, in, 2, out, 1), CELER_OK);
    expect_f32(&out[0], xv, 6);
    tu_free_outputs(out, 1);
    /* far outside: zeros padding gives 0, border the nearest edge pixel */
    float gf[] = {5, 5, -5, -5};
    celer_tensor g2 = {CELER_FLOAT, {4, {1, 1, 2, 2}}, gf};
    const celer_tensor *in2[] = {&x, &g2};
    static const struct {
        const char *mode, *pad;
        float want[2];
    } cases[] = {{"bilinear", "zeros", {0, 0}},     {"bilinear", "border", {5, 0}},
                 {"nearest", "border", {5, 0}},     {"bicubic", "zeros", {0, 0}},
                 {"bicubic", "border", {5, 0}}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        attrs_t b = {0};
        a_str(&b, "mode", cases[i].mode);
        a_str(&b, "padding_mode", cases[i].pad);
        node = make_node("GridSample", &b, 2);
        assert_int_equal(tu_run_op(&node, 16, in2, 2, out, 1), CELER_OK);
        expect_f32(&out[0], cases[i].want, 2);
        tu_free_outputs(out, 1);
    }
    /* grid batch must match */
    celer_tensor g3 = {CELER_FLOAT, {4, {2, 1, 1, 2}}, gf};
    const celer_tensor *in3[] = {&x, &g3};
    node = make_node("GridSample", &a, 2);
    assert_int_equal(tu_run_op(&node, 16, in3, 2, out, 1), CELER_ERR_SHAPE);
}

static void test_roialign(void **unused) {
    (void)unused;
    celer_tensor x = {CELER_FLOAT, {4, {1, 1, 2, 2}}, (float[]){0, 1, 2, 3}}, out[1];
    celer_tensor rois = {CELER_FLOAT, {2, {1, 4}}, (float[]){0, 0, 1, 1}};
    celer_tensor bi = {CELER_INT64, {1, {1}}, (int64_t[]){0}};
    const celer_tensor *in[] = {&x, &rois, &bi};
    /* one sample at (0.5, 0.5): avg is the bilinear value, max the largest weighted corner */
    static const struct {
        const char *mode;
        float want;
    } cases[] = {{"avg", 1.5f}, {"max", 0.75f}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        attrs_t a = {0};
        a_str(&a, "mode", cases[i].mode);
        a_int(&a, "sampling_ratio", 1);
        a_str(&a, "coordinate_transformation_mode", "output_half_pixel");
        celer_onnx_node node = make_node("RoiAlign", &a, 3);
        assert_int_equal(tu_run_op(&node, 16, in, 3, out, 1), CELER_OK);
        expect_f32(&out[0], &cases[i].want, 1);
        tu_free_outputs(out, 1);
    }
    /* a bad batch index is an error */
    celer_tensor bad = {CELER_INT64, {1, {1}}, (int64_t[]){3}};
    const celer_tensor *in2[] = {&x, &rois, &bad};
    attrs_t a = {0};
    celer_onnx_node node = make_node("RoiAlign", &a, 3);
    assert_int_equal(tu_run_op(&node, 16, in2, 3, out, 1), CELER_ERR_INVALID);
    /* a huge roi with adaptive sampling hits the sample cap instead of looping forever */
    celer_tensor big = {CELER_FLOAT, {2, {1, 4}}, (float[]){0, 0, 1e9f, 1e9f}};
    const celer_tensor *in3[] = {&x, &big, &bi};
    assert_int_equal(tu_run_op(&node, 16, in3, 3, out, 1), CELER_ERR_LIMIT);
}

static void test_nms(void **unused) {
    (void)unused;
    float boxes[] = {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f,
                     0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101};
    float scores[] = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};
    celer_tensor b = {CELER_FLOAT, {3, {1, 6, 4}}, boxes};
    celer_tensor s = {CELER_FLOAT, {3, {1, 1, 6}}, scores};
    celer_tensor m = {CELER_INT64, {1, {1}}, (int64_t[]){3}};
    celer_tensor iou = {CELER_FLOAT, {1, {1}}, (float[]){0.5f}};
    celer_tensor thr = {CELER_FLOAT, {1, {1}}, (float[]){0.4f}};
    const celer_tensor *in[] = {&b, &s, &m, &iou, NULL};
    celer_tensor out[1];
    attrs_t a = {0};
    celer_onnx_node node = make_node("NonMaxSuppression", &a, 5);
    assert_int_equal(tu_run_op(&node, 11, in, 5, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT64);
    assert_true(out[0].shape.dims[0] == 3 && out[0].shape.dims[1] == 3);
    static const int64_t want[] = {0, 0, 3, 0, 0, 0, 0, 0, 5};
    assert_memory_equal(out[0].data, want, sizeof want);
    tu_free_outputs(out, 1);
    /* score threshold 0.4 drops box 5 */
    in[4] = &thr;
    assert_int_equal(tu_run_op(&node, 11, in, 5, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.dims[0], 2);
    assert_memory_equal(out[0].data, want, 6 * sizeof(int64_t));
    tu_free_outputs(out, 1);
    /* no max_output_boxes_per_class: nothing selected */
    const celer_tensor *in2[] = {&b, &s};
    node = make_node("NonMaxSuppression", &a, 2);
    assert_int_equal(tu_run_op(&node, 10, in2, 2, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.dims[0], 0);
    tu_free_outputs(out, 1);
    /* mismatched scores */
    celer_tensor s2 = {CELER_FLOAT, {3, {1, 1, 5}}, scores};
    const celer_tensor *in3[] = {&b, &s2};
    assert_int_equal(tu_run_op(&node, 11, in3, 2, out, 1), CELER_ERR_SHAPE);
    /* iou_threshold out of range */
    celer_tensor iou2 = {CELER_FLOAT, {1, {1}}, (float[]){1.5f}};
    const celer_tensor *in4[] = {&b, &s, &m, &iou2};
    node = make_node("NonMaxSuppression", &a, 4);
    assert_int_equal(tu_run_op(&node, 11, in4, 4, out, 1), CELER_ERR_INVALID);
}

/* Resize 18/19: axes, keep_aspect_ratio_policy, antialias (values worked by hand), and the
 * attribute values refused at load. */
static void test_resize18(void **unused) {
    (void)unused;
    celer_tensor out[1];
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4), 2, 2), two = TEN(CELER_FLOAT, F32(2), 1);
    /* axes [-1]: the scale applies to the last axis only; asymmetric o / 2 -> 0, 0, 1, 1 */
    assert_int_equal(tu_run("Resize", 18, AT(AINTS("axes", -1), ASTR("coordinate_transformation_mode", "asymmetric")),
                            IN(&x, NULL, &two), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 2, 4);
    EXPECT_F32(&out[0], 1, 1, 2, 2, 3, 3, 4, 4);
    tu_free_outputs(out, 1);
    /* [4, 6] to sizes [3, 3]: one scale, min 0.5 -> [2, 3]; max 0.75 -> [3, 4.5 rounded up = 5] */
    static float img[24];
    celer_tensor x4 = TEN(CELER_FLOAT, img, 1, 1, 4, 6), sz = TEN(CELER_INT64, I64(3, 3), 2);
    assert_int_equal(tu_run("Resize", 18, AT(AINTS("axes", 2, 3), ASTR("keep_aspect_ratio_policy", "not_larger")),
                            IN(&x4, NULL, NULL, &sz), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 2, 3);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Resize", 18, AT(AINTS("axes", 2, 3), ASTR("keep_aspect_ratio_policy", "not_smaller")),
                            IN(&x4, NULL, NULL, &sz), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 3, 5);
    tu_free_outputs(out, 1);
    /* antialias, [0, 4, 8, 12] halved: output 0 centred on 1.0 reads -1..2 (-1 as the edge) with
     * the tent stretched 2x, weights 1/8 3/8 3/8 1/8 -> 2.5; output 1 reads 1..4 -> 9.5. With
     * exclude_outside the taps past the edge are dropped: 5/1.75 and 16/1.75. */
    celer_tensor r = TEN(CELER_FLOAT, F32(0, 4, 8, 12), 1, 4), half = TEN(CELER_FLOAT, F32(0.5f), 1);
    assert_int_equal(tu_run("Resize", 18, AT(AINTS("axes", 1), ASTR("mode", "linear"), AINT("antialias", 1)),
                            IN(&r, NULL, &half), out, 1), CELER_OK);
    EXPECT_F32(&out[0], 2.5f, 9.5f);
    tu_free_outputs(out, 1);
    assert_int_equal(tu_run("Resize", 18,
                            AT(AINTS("axes", 1), ASTR("mode", "linear"), AINT("antialias", 1), AINT("exclude_outside", 1)),
                            IN(&r, NULL, &half), out, 1), CELER_OK);
    assert_float_equal(((float *)out[0].data)[0], 5 / 1.75f, 1e-6);
    assert_float_equal(((float *)out[0].data)[1], 16 / 1.75f, 1e-6);
    tu_free_outputs(out, 1);
    /* refusals, naming attribute and value */
    tu_expect_err(tu_run("Resize", 18, AT(ASTR("coordinate_transformation_mode", "half_pixel_symmetric")),
                         IN(&x, NULL, &two), out, 1),
                  CELER_ERR_UNSUPPORTED, "coordinate_transformation_mode 'half_pixel_symmetric' is not supported");
    tu_expect_err(tu_run("Resize", 18, AT(ASTR("keep_aspect_ratio_policy", "fit")), IN(&x4, NULL, NULL, &sz), out, 1),
                  CELER_ERR_UNSUPPORTED, "keep_aspect_ratio_policy 'fit' is not supported");
    tu_expect_err(tu_run("Resize", 19, AT(AINTS("axes", 1, -1)), IN(&x, NULL, &sz), out, 1), CELER_ERR_INVALID,
                  "attribute 'axes' repeats axis 1");
    tu_expect_err(tu_run("Resize", 19, AT(AINTS("axes", 1)), IN(&x, NULL, NULL, &sz), out, 1), CELER_ERR_SHAPE,
                  "'sizes' must have 1 values (the length of 'axes')");
    /* one output from 2^18 samples: the cubic window with edge taps is 2^20 + 1 taps, past the
     * cap; without the edge taps it is the input's length */
    static float wide[1 << 18];
    celer_tensor xw = TEN(CELER_FLOAT, wide, 1, 1 << 18), sz1 = TEN(CELER_INT64, I64(1), 1);
    tu_expect_err(tu_run("Resize", 19, AT(AINTS("axes", 1), ASTR("mode", "cubic"), AINT("antialias", 1)),
                         IN(&xw, NULL, NULL, &sz1), out, 1), CELER_ERR_LIMIT, "needs a window of more than 1048576");
    assert_int_equal(tu_run("Resize", 19, AT(AINTS("axes", 1), ASTR("mode", "cubic"), AINT("antialias", 1),
                                             AINT("exclude_outside", 1)), IN(&xw, NULL, NULL, &sz1), out, 1),
                     CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1);
    tu_free_outputs(out, 1);
    /* random inputs and attributes (axes lists with extreme values among them) */
    static const tu_fuzz_case fz[] = {{"Resize", 18, 4, 1}, {"Resize", 19, 4, 1}};
    tu_fuzz_ops(fz, CELER_ARRAY_LEN(fz), 1500);
}

/* GridSample 20/22: N-D input, the renamed modes, bfloat16; nearest rounds before it pads. */
static void test_gridsample20(void **unused) {
    (void)unused;
    celer_tensor out[1];
    /* W=4, align_corners=0: x = 2g + 1.5; g = 2.5 gives 6.5, rounded to 6 (even), reflected about
     * [-0.5, 3.5] to pixel 1. Reflecting 6.5 first gave 0.5 and pixel 0 (opset 16 did so). */
    celer_tensor x = TEN(CELER_FLOAT, F32(10, 11, 12, 13), 1, 1, 1, 4);
    celer_tensor g = TEN(CELER_FLOAT, F32(2.5f, 0), 1, 1, 1, 2);
    for (int opset = 16; opset <= 20; opset += 4) {
        assert_int_equal(tu_run("GridSample", opset, AT(ASTR("mode", "nearest"), ASTR("padding_mode", "reflection")),
                                IN(&x, &g), out, 1), CELER_OK);
        EXPECT_F32(&out[0], 11);
        tu_free_outputs(out, 1);
    }
    /* one spatial axis (rank 3): align_corners=1 puts g at x = g + 1 */
    celer_tensor x1 = TEN(CELER_FLOAT, F32(0, 10, 20), 1, 1, 3);
    celer_tensor g1 = TEN(CELER_FLOAT, F32(-1, -0.5f, 0.25f, 1), 1, 4, 1);
    assert_int_equal(tu_run("GridSample", 20, AT(AINT("align_corners", 1)), IN(&x1, &g1), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 4);
    EXPECT_F32(&out[0], 0, 5, 12.5f, 20);
    tu_free_outputs(out, 1);
    /* 5-D cubic (ONNX Runtime has no 5-D cubic to compare with): the voxel centres with
     * align_corners=1 reproduce X, whatever the padding */
    float xv[24], gv[72];
    for (int i = 0; i < 24; i++) xv[i] = (float)(i * 7 % 11) - 3;
    for (int d = 0, i = 0; d < 2; d++)
        for (int h = 0; h < 3; h++)
            for (int w = 0; w < 4; w++, i++) {
                gv[i * 3] = (float)w * 2 / 3 - 1, gv[i * 3 + 1] = (float)h - 1, gv[i * 3 + 2] = (float)d * 2 - 1;
            }
    celer_tensor x5 = TEN(CELER_FLOAT, xv, 1, 1, 2, 3, 4), g5 = TEN(CELER_FLOAT, gv, 1, 2, 3, 4, 3);
    assert_int_equal(tu_run("GridSample", 20, AT(ASTR("mode", "cubic"), AINT("align_corners", 1),
                                                 ASTR("padding_mode", "reflection")), IN(&x5, &g5), out, 1),
                     CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 2, 3, 4);
    for (int i = 0; i < 24; i++) assert_true(fabsf(((float *)out[0].data)[i] - xv[i]) < 1e-5f);
    tu_free_outputs(out, 1);
    /* bfloat16 X and grid from 22: halfway between 1 and 3 */
    uint16_t xb[] = {celer_float_to_bf16(1), celer_float_to_bf16(3)}, gb[] = {0, 0};
    celer_tensor xh = TEN(CELER_BFLOAT16, xb, 1, 1, 1, 2), gh = TEN(CELER_BFLOAT16, gb, 1, 1, 1, 2);
    assert_int_equal(tu_run("GridSample", 22, NOAT, IN(&xh, &gh), out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_BFLOAT16);
    assert_true(celer_bf16_to_float(((uint16_t *)out[0].data)[0]) == 2);
    tu_free_outputs(out, 1);
    /* refusals name the attribute and value; opset 16 stays 4-D */
    tu_expect_err(tu_run("GridSample", 20, AT(ASTR("mode", "bilinear")), IN(&x, &g), out, 1),
                  CELER_ERR_UNSUPPORTED, "mode 'bilinear' is the name before opset 20; at opset 20 it is 'linear'");
    tu_expect_err(tu_run("GridSample", 16, AT(ASTR("mode", "cubic")), IN(&x, &g), out, 1),
                  CELER_ERR_UNSUPPORTED, "mode 'cubic' is only defined from opset 20; at opset 16 it is 'bicubic'");
    tu_expect_err(tu_run("GridSample", 22, AT(AINT("align_corners", 2)), IN(&x, &g), out, 1),
                  CELER_ERR_INVALID, "align_corners 2");
    tu_expect_err(tu_run("GridSample", 16, NOAT, IN(&x5, &g5), out, 1), CELER_ERR_SHAPE, "rank 4");
    tu_expect_err(tu_run("GridSample", 20, NOAT, IN(&x5, &g), out, 1), CELER_ERR_SHAPE, "rank 5");
}

static void test_affinegrid(void **unused) {
    (void)unused;
    celer_tensor out[1];
    /* the identity gives the pixel centres, x first */
    celer_tensor id = TEN(CELER_FLOAT, F32(1, 0, 0, 0, 1, 0), 1, 2, 3);
    celer_tensor sz = TEN(CELER_INT64, I64(1, 3, 2, 2), 4);
    assert_int_equal(tu_run("AffineGrid", 20, NOAT, IN(&id, &sz), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 2, 2, 2);
    EXPECT_F32(&out[0], -0.5f, -0.5f, 0.5f, -0.5f, -0.5f, 0.5f, 0.5f, 0.5f);
    tu_free_outputs(out, 1);
    /* 3-D: a translation by (1, 2, 3); D=1, H=1, W=3 with align_corners; a single position is 1 */
    celer_tensor tr = TEN(CELER_FLOAT, F32(1, 0, 0, 1, 0, 1, 0, 2, 0, 0, 1, 3), 1, 3, 4);
    celer_tensor sz3 = TEN(CELER_INT64, I64(1, 1, 1, 1, 3), 5);
    assert_int_equal(tu_run("AffineGrid", 20, AT(AINT("align_corners", 1)), IN(&tr, &sz3), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 1, 3, 3);
    EXPECT_F32(&out[0], 0, 3, 4, 1, 3, 4, 2, 3, 4);
    tu_free_outputs(out, 1);
    celer_tensor bad_n = TEN(CELER_INT64, I64(2, 3, 2, 2), 4), neg = TEN(CELER_INT64, I64(1, 3, -1, 2), 4);
    tu_expect_err(tu_run("AffineGrid", 20, NOAT, IN(&id, &bad_n), out, 1), CELER_ERR_INVALID, "theta's N (1)");
    tu_expect_err(tu_run("AffineGrid", 20, NOAT, IN(&id, &neg), out, 1), CELER_ERR_INVALID, "dims >= 0");
    tu_expect_err(tu_run("AffineGrid", 20, NOAT, IN(&id, &sz3), out, 1), CELER_ERR_SHAPE, "must be 4 int64 values");
    tu_expect_err(tu_run("AffineGrid", 20, AT(AINT("align_corners", -1)), IN(&id, &sz), out, 1),
                  CELER_ERR_INVALID, "align_corners -1");
}

static void test_col2im(void **unused) {
    (void)unused;
    celer_tensor out[1];
    /* 2x2 blocks of ones over a 3x3 image: each pixel counts the blocks covering it */
    float ones[16];
    for (int i = 0; i < 16; i++) ones[i] = 1;
    celer_tensor x = TEN(CELER_FLOAT, ones, 1, 4, 4);
    celer_tensor im = TEN(CELER_INT64, I64(3, 3), 2), bl = TEN(CELER_INT64, I64(2, 2), 2);
    assert_int_equal(tu_run("Col2Im", 18, NOAT, IN(&x, &im, &bl), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 3, 3);
    EXPECT_F32(&out[0], 1, 2, 1, 2, 4, 2, 1, 2, 1);
    tu_free_outputs(out, 1);
    /* pads drop what falls outside: 1-D-like [1, 5] image, block 3, pads 1/1, stride 2: blocks at
     * -1..1 and 1..3 (L=2) */
    celer_tensor x2 = TEN(CELER_FLOAT, F32(1, 10, 2, 20, 3, 30), 1, 3, 2);
    celer_tensor im2 = TEN(CELER_INT64, I64(1, 4), 2), bl2 = TEN(CELER_INT64, I64(1, 3), 2);
    assert_int_equal(tu_run("Col2Im", 18, AT(AINTS("pads", 0, 1, 0, 1), AINTS("strides", 1, 2)),
                            IN(&x2, &im2, &bl2), out, 1), CELER_OK);
    EXPECT_F32(&out[0], 2, 3 + 10, 20, 30);
    tu_free_outputs(out, 1);
    tu_expect_err(tu_run("Col2Im", 18, NOAT, IN(&x2, &im, &bl), out, 1), CELER_ERR_SHAPE, "expected [N, C * 4, 4]");
    tu_expect_err(tu_run("Col2Im", 18, AT(AINTS("strides", 1)), IN(&x, &im, &bl), out, 1), CELER_ERR_INVALID,
                  "strides (1 values)");
    tu_expect_err(tu_run("Col2Im", 18, AT(AINTS("dilations", 1, 0)), IN(&x, &im, &bl), out, 1), CELER_ERR_INVALID,
                  "dilations[1] = 0");
    celer_tensor big = TEN(CELER_INT64, I64(4, 4), 2);
    tu_expect_err(tu_run("Col2Im", 18, NOAT, IN(&x, &im, &big), out, 1), CELER_ERR_INVALID, "larger than");
    /* random inputs and attributes: any status, no crash */
    static const tu_fuzz_case fz[] = {{"Col2Im", 18, 3, 1}, {"AffineGrid", 20, 2, 1},
                                      {"GridSample", 20, 2, 1}, {"GridSample", 22, 2, 1}};
    tu_fuzz_ops(fz, CELER_ARRAY_LEN(fz), 1500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_nearest),
        cmocka_unit_test(test_resize_linear),
        cmocka_unit_test(test_resize_linear_matches_direct),
        cmocka_unit_test(test_resize_cubic_and_crop),
        cmocka_unit_test(test_resize_bad_inputs),
        cmocka_unit_test(test_upsample_and_resize10),
        cmocka_unit_test(test_resize18),
        cmocka_unit_test(test_gridsample),
        cmocka_unit_test(test_gridsample20),
        cmocka_unit_test(test_affinegrid),
        cmocka_unit_test(test_col2im),
        cmocka_unit_test(test_roialign),
        cmocka_unit_test(test_nms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
