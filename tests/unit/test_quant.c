/* Quantisation operators: rounding (half to even), saturation, per-axis parameters, dynamic
 * range, and QLinearMatMul / QLinearConv against float computations on dequantised values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"
#include "testutil.h"

static celer_onnx_attr attrs[4];

static celer_onnx_node make_node(const char *op, int n_attrs, int n_in, int n_out) {
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    static const char *const outs[] = {"y", "s", "z"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = n_out, .n_attrs = n_attrs, .inputs = names,
                             .outputs = outs, .attrs = attrs};
}

static void test_quantize(void **unused) {
    (void)unused;
    float x[8] = {0, 1, 2.5f, 3.5f, -1.5f, 1000, -1000, 0.49f};
    float scale = 1;
    int8_t zp = 1;
    celer_tensor tx = {CELER_FLOAT, {1, {8}}, x}, ts = {CELER_FLOAT, {0, {0}}, &scale},
                 tz = {CELER_INT8, {0, {0}}, &zp};
    const celer_tensor *in[] = {&tx, &ts, &tz};
    celer_tensor out[1];
    celer_onnx_node node = make_node("QuantizeLinear", 0, 3, 1);
    assert_int_equal(tu_run_op(&node, 13, in, 3, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT8);
    int8_t want[8] = {1, 2, 3, 5, -1, 127, -128, 1}; /* 2.5 -> 2, 3.5 -> 4, -1.5 -> -2 */
    assert_memory_equal(out[0].data, want, 8);
    tu_free_outputs(out, 1);
    /* no zero point: uint8 */
    assert_int_equal(tu_run_op(&node, 13, in, 2, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_UINT8);
    uint8_t wantu[8] = {0, 1, 2, 4, 0, 255, 0, 0};
    assert_memory_equal(out[0].data, wantu, 8);
    tu_free_outputs(out, 1);
}

static void test_per_axis(void **unused) {
    (void)unused;
    /* x (1, 3, 2), axis 1: one scale / zero point per channel */
    float x[6] = {1, 2, 3, 4, 5, 6};
    float sc[3] = {1, 2, 0.5f};
    uint8_t zp[3] = {0, 10, 100};
    celer_tensor tx = {CELER_FLOAT, {3, {1, 3, 2}}, x}, ts = {CELER_FLOAT, {1, {3}}, sc},
                 tz = {CELER_UINT8, {1, {3}}, zp};
    const celer_tensor *in[] = {&tx, &ts, &tz};
    celer_tensor out[1], back[1];
    celer_onnx_node q = make_node("QuantizeLinear", 0, 3, 1);
    assert_int_equal(tu_run_op(&q, 13, in, 3, out, 1), CELER_OK);
    uint8_t want[6] = {1, 2, 12, 12, 110, 112}; /* 3/2=1.5 -> 2, 4/2 = 2 */
    assert_memory_equal(out[0].data, want, 6);
    celer_onnx_node dq = make_node("DequantizeLinear", 0, 3, 1);
    const celer_tensor *din[] = {&out[0], &ts, &tz};
    assert_int_equal(tu_run_op(&dq, 13, din, 3, back, 1), CELER_OK);
    assert_int_equal(back[0].dtype, CELER_FLOAT);
    float wantf[6] = {1, 2, 4, 4, 5, 6};
    assert_memory_equal(back[0].data, wantf, sizeof wantf);
    tu_free_outputs(back, 1);
    tu_free_outputs(out, 1);
    /* a scale that fits no axis is a shape error */
    ts.shape = (celer_shape){1, {2}};
    tz.shape = (celer_shape){1, {2}};
    assert_int_equal(tu_run_op(&q, 13, in, 3, out, 1), CELER_ERR_SHAPE);
}

static void test_dynamic(void **unused) {
    (void)unused;
    float x[6] = {0, 2, -3, -2.4f, 1.34f, 0.6f};
    celer_tensor tx = {CELER_FLOAT, {1, {6}}, x};
    const celer_tensor *in[] = {&tx};
    celer_tensor out[3];
    celer_onnx_node node = make_node("DynamicQuantizeLinear", 0, 1, 3);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 3), CELER_OK);
    float scale = *(float *)out[1].data;
    uint8_t zp = *(uint8_t *)out[2].data;
    assert_float_equal(scale, 5.0f / 255, 1e-7);
    assert_int_equal(zp, 153);
    uint8_t want[6] = {153, 255, 0, 31, 221, 184};
    assert_memory_equal(out[0].data, want, 6);
    tu_free_outputs(out, 3);
    /* all zeros: scale 0, no division by zero */
    memset(x, 0, sizeof x);
    assert_int_equal(tu_run_op(&node, 11, in, 1, out, 3), CELER_OK);
    assert_int_equal(((uint8_t *)out[0].data)[0], 0);
    tu_free_outputs(out, 3);
}

/* Requantised result vs float arithmetic on the dequantised operands. */
static void test_qlinearmatmul(void **unused) {
    (void)unused;
    uint8_t a[2 * 4], b[4 * 3];
    for (int i = 0; i < 8; i++) a[i] = (uint8_t)(i * 31 % 256);
    for (int i = 0; i < 12; i++) b[i] = (uint8_t)(i * 57 % 256);
    float as = 0.02f, bs = 0.01f, ys = 0.5f;
    uint8_t az = 100, bz = 120, yz = 128;
    celer_tensor ta = {CELER_UINT8, {2, {2, 4}}, a}, tb = {CELER_UINT8, {2, {4, 3}}, b};
    celer_tensor tas = {CELER_FLOAT, {0, {0}}, &as}, tbs = {CELER_FLOAT, {0, {0}}, &bs},
                 tys = {CELER_FLOAT, {0, {0}}, &ys};
    celer_tensor taz = {CELER_UINT8, {0, {0}}, &az}, tbz = {CELER_UINT8, {0, {0}}, &bz},
                 tyz = {CELER_UINT8, {0, {0}}, &yz};
    const celer_tensor *in[] = {&ta, &tas, &taz, &tb, &tbs, &tbz, &tys, &tyz};
    celer_tensor out[1];
    celer_onnx_node node = make_node("QLinearMatMul", 0, 8, 1);
    assert_int_equal(tu_run_op(&node, 10, in, 8, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_UINT8);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double acc = 0;
            for (int k = 0; k < 4; k++)
                acc += (a[i * 4 + k] - az) * as * (double)((b[k * 3 + j] - bz) * bs);
            double q = fmin(255, fmax(0, nearbyint(acc / ys) + yz));
            assert_int_equal(((uint8_t *)out[0].data)[i * 3 + j], (int)q);
        }
    tu_free_outputs(out, 1);
}

static void test_qlinearconv(void **unused) {
    (void)unused;
    /* x (1,1,3,3) uint8, w (2,1,2,2) int8 per-channel scales, bias, pads 0 -> y (1,2,2,2) */
    uint8_t x[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    int8_t w[8] = {1, -1, 2, 0, 3, 1, -2, 4};
    float xs = 0.1f, ws[2] = {0.05f, 0.2f}, ys = 0.25f;
    uint8_t xz = 5, yz = 10;
    int8_t wz[2] = {0, 1};
    int32_t bias[2] = {100, -50};
    celer_tensor tx = {CELER_UINT8, {4, {1, 1, 3, 3}}, x}, tw = {CELER_INT8, {4, {2, 1, 2, 2}}, w};
    celer_tensor txs = {CELER_FLOAT, {0, {0}}, &xs}, tws = {CELER_FLOAT, {1, {2}}, ws},
                 tys = {CELER_FLOAT, {0, {0}}, &ys};
    celer_tensor txz = {CELER_UINT8, {0, {0}}, &xz}, twz = {CELER_INT8, {1, {2}}, wz},
                 tyz = {CELER_UINT8, {0, {0}}, &yz}, tb = {CELER_INT32, {1, {2}}, bias};
    const celer_tensor *in[] = {&tx, &txs, &txz, &tw, &tws, &twz, &tys, &tyz, &tb};
    celer_tensor out[1];
    celer_onnx_node node = make_node("QLinearConv", 0, 9, 1);
    assert_int_equal(tu_run_op(&node, 10, in, 9, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.dims[1], 2);
    assert_int_equal(out[0].shape.dims[2], 2);
    for (int m = 0; m < 2; m++)
        for (int oh = 0; oh < 2; oh++)
            for (int ow = 0; ow < 2; ow++) {
                int32_t acc = bias[m];
                for (int kh = 0; kh < 2; kh++)
                    for (int kw = 0; kw < 2; kw++)
                        acc += (x[(oh + kh) * 3 + ow + kw] - xz) * (w[m * 4 + kh * 2 + kw] - wz[m]);
                double q = fmin(255, fmax(0, nearbyint(acc * (double)xs * ws[m] / ys) + yz));
                assert_int_equal(((uint8_t *)out[0].data)[(m * 2 + oh) * 2 + ow], (int)q);
            }
    tu_free_outputs(out, 1);
}

/* Opset 21: blocked quantization (x [2, 5], axis 1, block_size 2: three blocks, the last one
 * short) and 16-bit outputs; values worked by hand. */
static void test_blocked(void **unused) {
    (void)unused;
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, -1, -2, -3, -4, -5), 2, 5);
    celer_tensor sc = TEN(CELER_FLOAT, F32(1, 2, 0.5f, 0.5f, 1, 4), 2, 3);
    celer_tensor zp = TEN(CELER_INT8, ((int8_t[]){0, 1, -1, 2, 0, 3}), 2, 3);
    celer_tensor out[1], back[1];
    assert_int_equal(tu_run("QuantizeLinear", 21, AT(AINT("axis", 1), AINT("block_size", 2)),
                            IN(&x, &sc, &zp), out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT8);
    /* 1/1, 2/1 | 3/2 = 1.5 -> 2, 4/2 = 2 (+1) | 5/0.5 - 1 ; -1/0.5 + 2, -2/0.5 + 2 | -3, -4 | -5/4 -> -1 (+3) */
    int8_t want[10] = {1, 2, 3, 3, 9, 0, -2, -3, -4, 2};
    assert_memory_equal(out[0].data, want, 10);
    const celer_tensor *din[] = {&out[0], &sc, &zp};
    assert_int_equal(tu_run("DequantizeLinear", 21, AT(AINT("axis", -1), AINT("block_size", 2)), din, 3,
                            back, 1), CELER_OK);
    EXPECT_F32(&back[0], 1, 2, 4, 4, 5, -1, -2, -3, -4, -4);
    tu_free_outputs(back, 1);
    tu_free_outputs(out, 1);
    /* a scale that does not have ceil(5 / 2) = 3 blocks on the axis */
    celer_tensor sc2 = TEN(CELER_FLOAT, F32(1, 1, 1, 1), 2, 2);
    tu_expect_err(tu_run("QuantizeLinear", 21, AT(AINT("axis", 1), AINT("block_size", 2)), IN(&x, &sc2),
                         out, 1), CELER_ERR_SHAPE, "ceil(5 / block_size 2) = 3 on axis 1");
    /* a block larger than the axis is one block; INT64_MAX must not overflow the count */
    celer_tensor sc1 = TEN(CELER_FLOAT, F32(1, 2), 2, 1);
    assert_int_equal(tu_run("QuantizeLinear", 21, AT(AINT("axis", 1), AINT("block_size", INT64_MAX)),
                            IN(&x, &sc1), out, 1), CELER_OK);
    uint8_t w1[10] = {1, 2, 3, 4, 5, 0, 0, 0, 0, 0};
    assert_memory_equal(out[0].data, w1, 10);
    tu_free_outputs(out, 1);
    /* int16 through output_dtype, saturated */
    celer_tensor s1 = SCALAR(CELER_FLOAT, F32(0.0001f));
    assert_int_equal(tu_run("QuantizeLinear", 21, AT(AINT("output_dtype", CELER_INT16)), IN(&x, &s1), out, 1),
                     CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT16);
    int16_t w16[10] = {10000, 20000, 30000, 32767, 32767, -10000, -20000, -30000, -32768, -32768};
    assert_memory_equal(out[0].data, w16, sizeof w16);
    tu_free_outputs(out, 1);
}

/* Types celer does not have are refused at load naming the attribute, value and type; so are
 * 16-bit types before opset 21 and a precision other than float. */
static void test_refusals(void **unused) {
    (void)unused;
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2), 2), s = SCALAR(CELER_FLOAT, F32(1));
    celer_tensor q = TEN(CELER_INT8, ((int8_t[]){1, 2}), 2);
    celer_tensor z16 = SCALAR(CELER_INT16, ((int16_t[]){0}));
    celer_tensor out[1];
    tu_expect_err(tu_run("QuantizeLinear", 21, AT(AINT("output_dtype", 17)), IN(&x, &s), out, 1),
                  CELER_ERR_UNSUPPORTED, "output_dtype 17 (float8e4m3fn) is an element type celer does not have");
    tu_expect_err(tu_run("QuantizeLinear", 23, AT(AINT("output_dtype", 22)), IN(&x, &s), out, 1),
                  CELER_ERR_UNSUPPORTED, "output_dtype 22 (int4)");
    tu_expect_err(tu_run("QuantizeLinear", 23, AT(AINT("output_dtype", 23)), IN(&x, &s), out, 1),
                  CELER_ERR_UNSUPPORTED, "output_dtype 23 (float4e2m1)");
    tu_expect_err(tu_run("DequantizeLinear", 23, AT(AINT("output_dtype", 18)), IN(&q, &s), out, 1),
                  CELER_ERR_UNSUPPORTED, "output_dtype 18 (float8e4m3fnuz)");
    tu_expect_err(tu_run("QuantizeLinear", 23, AT(AINT("precision", 10)), IN(&x, &s), out, 1),
                  CELER_ERR_UNSUPPORTED, "precision 10 (float16) is not supported");
    tu_expect_err(tu_run("QuantizeLinear", 19, NOAT, IN(&x, &s, &z16), out, 1), CELER_ERR_UNSUPPORTED,
                  "output type int16 (zero point) is not int8/uint8");
    tu_expect_err(tu_run("QuantizeLinear", 21, AT(AINT("output_dtype", CELER_UINT8)), IN(&x, &s, &z16), out, 1),
                  CELER_ERR_DTYPE, "output_dtype uint8 differs from the zero point's type int16");
    celer_tensor zu = SCALAR(CELER_UINT8, ((uint8_t[]){0}));
    tu_expect_err(tu_run("DequantizeLinear", 21, NOAT, IN(&q, &s, &zu), out, 1), CELER_ERR_DTYPE,
                  "x_zero_point is uint8, expected x's type int8");
    tu_expect_err(tu_run("DequantizeLinear", 21, NOAT, IN(&q, NULL), out, 1), CELER_ERR_INVALID, "");
    static const tu_fuzz_case fz[] = {{"QuantizeLinear", 21, 3, 1}, {"DequantizeLinear", 21, 3, 1},
                                      {"QuantizeLinear", 23, 3, 1}, {"DequantizeLinear", 23, 3, 1}};
    tu_fuzz_ops(fz, CELER_ARRAY_LEN(fz), 1500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize),      cmocka_unit_test(test_per_axis),
        cmocka_unit_test(test_dynamic),       cmocka_unit_test(test_qlinearmatmul),
        cmocka_unit_test(test_qlinearconv),   cmocka_unit_test(test_blocked),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
