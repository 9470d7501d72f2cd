/* DeformConv: hand-checked bilinear samples (fractional, half outside, wholly outside), mask and
 * bias, and the refusals. ONNX Runtime's answers on larger shapes are the conformance cases
 * test_deformconv_* (tests/conformance/opset/cases_deformconv.py). */
#include "opcase.h"

/* X = [[1, 2], [3, 4]], a 1x1 kernel of weight 1: each output is X sampled at its own position
 * plus the offset. (0,0)+(.5,.5): the mean 2.5; (0,1)+(0,-.5): 1.5; (1,0)+(-1.5,0) = (-.5,0):
 * half of X[0][0] = 0.5 (the row above is outside, zero); (1,1)+(5,5): outside, 0. */
static void test_deform_samples(void **st) {
    (void)st;
    celer_tensor x = TEN(CELER_FLOAT, F32(1, 2, 3, 4), 1, 1, 2, 2);
    celer_tensor w = TEN(CELER_FLOAT, F32(1), 1, 1, 1, 1);
    celer_tensor off = TEN(CELER_FLOAT, F32(0.5f, 0, -1.5f, 5, /* dx: */ 0.5f, -0.5f, 0, 5), 1, 2, 2, 2);
    celer_tensor out[1];
    assert_int_equal(tu_run("DeformConv", 19, NOAT, IN(&x, &w, &off), out, 1), CELER_OK);
    EXPECT_SHAPE(&out[0], 1, 1, 2, 2);
    EXPECT_F32(&out[0], 2.5f, 1.5f, 0.5f, 0);
    tu_free_outputs(out, 1);

    /* bias 10 and a mask halving the second tap; opset 22 serves the same */
    celer_tensor b = TEN(CELER_FLOAT, F32(10), 1);
    celer_tensor mask = TEN(CELER_FLOAT, F32(1, 0.5f, 1, 1), 1, 1, 2, 2);
    assert_int_equal(tu_run("DeformConv", 22, NOAT, IN(&x, &w, &off, &b, &mask), out, 1), CELER_OK);
    EXPECT_F32(&out[0], 12.5f, 10.75f, 10.5f, 10);
    tu_free_outputs(out, 1);

    /* mask without bias (B omitted), pads 1 on top and left: the output grows to 3x3 */
    celer_tensor zoff = TEN(CELER_FLOAT, (float[18]){0}, 1, 2, 3, 3);
    celer_tensor ones = TEN(CELER_FLOAT, F32(1, 1, 1, 1, 1, 1, 1, 1, 2), 1, 1, 3, 3);
    assert_int_equal(tu_run("DeformConv", 19, AT(AINTS("pads", 1, 1, 0, 0)), IN(&x, &w, &zoff, NULL, &ones),
                            out, 1),
                     CELER_OK);
    EXPECT_F32(&out[0], 0, 0, 0, 0, 1, 2, 0, 3, 8);
    tu_free_outputs(out, 1);
}

static void test_deform_refusals(void **st) {
    (void)st;
    celer_tensor x = TEN(CELER_FLOAT, (float[16]){0}, 1, 2, 2, 2, 2);
    celer_tensor w = TEN(CELER_FLOAT, (float[4]){0}, 2, 2, 1, 1);
    celer_tensor x4 = TEN(CELER_FLOAT, (float[8]){0}, 1, 2, 2, 2);
    celer_tensor off = TEN(CELER_FLOAT, (float[8]){0}, 1, 2, 2, 2);
    celer_tensor out[1];
    /* other ranks, by name: at load from the attributes, at reshape from the shapes */
    tu_expect_err(tu_run("DeformConv", 19, AT(AINTS("kernel_shape", 1, 1, 1)), IN(&x, &w, &off), out, 1),
                  CELER_ERR_UNSUPPORTED, "kernel_shape has 3 values, that is 3-D");
    tu_expect_err(tu_run("DeformConv", 19, AT(AINTS("pads", 0, 0)), IN(&x4, &w, &off), out, 1),
                  CELER_ERR_UNSUPPORTED, "pads has 2 values, that is 1-D");
    tu_expect_err(tu_run("DeformConv", 19, NOAT, IN(&x, &w, &off), out, 1), CELER_ERR_UNSUPPORTED,
                  "only 2-D DeformConv");
    tu_expect_err(tu_run("DeformConv", 18, NOAT, IN(&x4, &w, &off), out, 1), CELER_ERR_UNSUPPORTED,
                  "opset 18");
    /* offset must hold 2 values per tap and offset group, mask 1 */
    celer_tensor off3 = TEN(CELER_FLOAT, (float[12]){0}, 1, 3, 2, 2);
    tu_expect_err(tu_run("DeformConv", 19, NOAT, IN(&x4, &w, &off3), out, 1), CELER_ERR_SHAPE,
                  "offset [1,3,2,2] must be [1, 2, 2, 2]");
    tu_expect_err(tu_run("DeformConv", 19, NOAT, IN(&x4, &w, &off, NULL, &off), out, 1), CELER_ERR_SHAPE,
                  "mask [1,2,2,2] must be [1, 1, 2, 2]");
    tu_expect_err(tu_run("DeformConv", 19, AT(AINT("offset_group", 3)), IN(&x4, &w, &off), out, 1),
                  CELER_ERR_SHAPE, "not divisible by offset_group 3");
    tu_expect_err(tu_run("DeformConv", 19, AT(AINT("offset_group", 0)), IN(&x4, &w, &off), out, 1),
                  CELER_ERR_INVALID, "offset_group 0");
    celer_tensor b = TEN(CELER_FLOAT, (float[3]){0}, 3);
    tu_expect_err(tu_run("DeformConv", 19, NOAT, IN(&x4, &w, &off, &b), out, 1), CELER_ERR_SHAPE,
                  "bias B [3] must be [2]");
}

/* random shapes and attributes: errors are fine, crashes and sanitizer reports are not */
static void test_deform_fuzz(void **st) {
    (void)st;
    static const tu_fuzz_case cases[] = {{"DeformConv", 19, 5, 1}, {"DeformConv", 22, 3, 1}};
    tu_fuzz_ops(cases, CELER_ARRAY_LEN(cases), 300);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deform_samples),
        cmocka_unit_test(test_deform_refusals),
        cmocka_unit_test(test_deform_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
