/* Gemm / MatMul / MatMulInteger: the OpenBLAS kernels against the reference loops on random
 * shapes (transA/transB/alpha/beta, C broadcast, 1-D operands, batch broadcasting), plus
 * hand-checked values and error paths. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/reference.h"
#include "ops/sgemm.h"
#include "testutil.h"

static celer_onnx_attr attrs[8];

static celer_onnx_node make_node(const char *op, int n_attrs, int n_in) {
    static const char *const names[] = {"a", "b", "c", "d"};
    static const char *const outs[] = {"y"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = 1, .n_attrs = n_attrs, .inputs = names, .outputs = outs,
                             .attrs = attrs};
}

static celer_tensor make_f32(int rank, const int64_t *dims, uint64_t *seed) {
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = rank}};
    memcpy(t.shape.dims, dims, (size_t)rank * sizeof *dims);
    size_t n = (size_t)celer_shape_numel(&t.shape);
    t.data = malloc(n ? n * 4 : 4);
    tu_fill_random(t.data, n, -1, 1, seed);
    return t;
}

static int64_t rnd(uint64_t *seed, int64_t lo, int64_t hi) {
    float f;
    tu_fill_random(&f, 1, 0, 1, seed);
    int64_t v = lo + (int64_t)(f * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

static void test_gemm_random(void **unused) {
    (void)unused;
    uint64_t seed = 42;
    for (int it = 0; it < 80; it++) {
        int64_t m = rnd(&seed, 1, 40), n = rnd(&seed, 1, 40), k = rnd(&seed, 1, 70);
        bool ta = it & 1, tb = (it >> 1) & 1;
        float alpha = it % 3 ? 0.5f + (float)rnd(&seed, 0, 4) : 1.0f;
        float beta = it % 5 == 0 ? 0.0f : (float)rnd(&seed, -2, 2) * 0.75f;
        int ckind = it % 7; /* 0 none, 1 scalar, 2 (n), 3 (1,n), 4 (m,1), 5 (m,n), 6 rank-0 */
        static const int crank[] = {0, 1, 1, 2, 2, 2, 0};
        int64_t cdims[6][2] = {{0}, {1}, {n}, {1, n}, {m, 1}, {m, n}};
        celer_tensor a = make_f32(2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k}, &seed);
        celer_tensor b = make_f32(2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n}, &seed);
        celer_tensor c = make_f32(crank[ckind], cdims[ckind < 6 ? ckind : 0], &seed);
        attrs[0] = (celer_onnx_attr){.name = "alpha", .type = CELER_ATTR_FLOAT, .f = alpha};
        attrs[1] = (celer_onnx_attr){.name = "beta", .type = CELER_ATTR_FLOAT, .f = beta};
        attrs[2] = (celer_onnx_attr){.name = "transA", .type = CELER_ATTR_INT, .i = ta};
        attrs[3] = (celer_onnx_attr){.name = "transB", .type = CELER_ATTR_INT, .i = tb};
        int n_in = ckind ? 3 : 2;
        celer_onnx_node node = make_node("Gemm", 4, n_in);
        const celer_tensor *in[] = {&a, &b, &c};
        celer_tensor out[1];
        assert_int_equal(tu_run_op(&node, 13, in, n_in, out, 1), CELER_OK);
        assert_int_equal(out[0].shape.rank, 2);
        assert_int_equal(out[0].shape.dims[0], m);
        assert_int_equal(out[0].shape.dims[1], n);
        float *ref = malloc((size_t)(m * n) * 4);
        celer_ref_gemm_f32(ta, tb, m, n, k, alpha, a.data, b.data, beta, ckind ? c.data : NULL,
                           &c.shape, ref);
        double err = tu_max_rel_diff(out[0].data, ref, (size_t)(m * n));
        if (err > 1e-4) print_error("gemm it=%d err=%g\n", it, err);
        assert_true(err <= 1e-4);
        tu_free_outputs(out, 1);
        free(ref), free(a.data), free(b.data), free(c.data);
    }
}

static void test_gemm_known(void **unused) {
    (void)unused;
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1}, c[2] = {10, 20};
    celer_tensor ta = {CELER_FLOAT, {2, {2, 3}}, a}, tb = {CELER_FLOAT, {2, {3, 2}}, b},
                 tc = {CELER_FLOAT, {1, {2}}, c};
    attrs[0] = (celer_onnx_attr){.name = "beta", .type = CELER_ATTR_FLOAT, .f = 2};
    celer_onnx_node node = make_node("Gemm", 1, 3);
    const celer_tensor *in[] = {&ta, &tb, &tc};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 11, in, 3, out, 1), CELER_OK);
    float want[4] = {4 + 20, 5 + 40, 10 + 20, 11 + 40};
    assert_true(tu_max_rel_diff(out[0].data, want, 4) < 1e-7);
    tu_free_outputs(out, 1);

    /* int64 Gemm uses the integer loops */
    int64_t ai[4] = {1, 2, 3, 4}, bi[4] = {5, 6, 7, 8};
    celer_tensor tai = {CELER_INT64, {2, {2, 2}}, ai}, tbi = {CELER_INT64, {2, {2, 2}}, bi};
    const celer_tensor *in2[] = {&tai, &tbi};
    celer_onnx_node n2 = make_node("Gemm", 0, 2);
    assert_int_equal(tu_run_op(&n2, 13, in2, 2, out, 1), CELER_OK);
    int64_t *y = out[0].data;
    assert_true(y[0] == 19 && y[1] == 22 && y[2] == 43 && y[3] == 50);
    tu_free_outputs(out, 1);

    /* bad shapes give a clean error */
    tc.shape = (celer_shape){1, {3}};
    assert_int_equal(tu_run_op(&node, 11, in, 3, out, 1), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "does not broadcast"));
    tb.shape = (celer_shape){2, {2, 3}};
    assert_int_equal(tu_run_op(&node, 11, in, 3, out, 1), CELER_ERR_SHAPE);
}

typedef struct {
    int ra, rb;
    int64_t a[5], b[5];
} mm_case;

static void check_matmul(const mm_case *mc, uint64_t *seed) {
    celer_tensor a = make_f32(mc->ra, mc->a, seed), b = make_f32(mc->rb, mc->b, seed);
    celer_onnx_node node = make_node("MatMul", 0, 2);
    const celer_tensor *in[] = {&a, &b};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 13, in, 2, out, 1), CELER_OK);
    celer_matmul_plan p;
    celer_shape ys;
    assert_int_equal(celer_matmul_plan_make("t", &a.shape, &b.shape, &p, &ys), CELER_OK);
    assert_true(celer_shape_equal(&ys, &out[0].shape));
    size_t n = (size_t)celer_shape_numel(&ys);
    float *ref = malloc(n ? n * 4 : 4);
    celer_ref_matmul_f32(&p, a.data, b.data, ref);
    double err = tu_max_rel_diff(out[0].data, ref, n);
    assert_true(err <= 1e-4);
    tu_free_outputs(out, 1);
    free(ref), free(a.data), free(b.data);
}

static void test_matmul_random(void **unused) {
    (void)unused;
    uint64_t seed = 99;
    for (int it = 0; it < 100; it++) {
        mm_case mc = {0};
        int64_t m = rnd(&seed, 1, 20), n = rnd(&seed, 1, 20), k = rnd(&seed, 1, 30);
        mc.ra = (int)rnd(&seed, 1, 5);
        mc.rb = (int)rnd(&seed, 1, 5);
        int r = CELER_MAX(mc.ra, mc.rb) - 2;
        int64_t batch[3];
        for (int i = 0; i < 3; i++) batch[i] = rnd(&seed, 1, 3);
        /* A: batch dims (some set to 1 to broadcast), then m, k */
        for (int i = 0; i < mc.ra - 2; i++)
            mc.a[i] = rnd(&seed, 0, 3) ? batch[r - (mc.ra - 2) + i] : 1;
        for (int i = 0; i < mc.rb - 2; i++)
            mc.b[i] = rnd(&seed, 0, 3) ? batch[r - (mc.rb - 2) + i] : 1;
        if (mc.ra == 1) mc.a[0] = k;
        else mc.a[mc.ra - 2] = m, mc.a[mc.ra - 1] = k;
        if (mc.rb == 1) mc.b[0] = k;
        else mc.b[mc.rb - 2] = k, mc.b[mc.rb - 1] = n;
        check_matmul(&mc, &seed);
    }
    /* fixed corner cases: shared B (one tall GEMM), broadcast A, vector x vector, K = 0 */
    mm_case fixed[] = {
        {3, 2, {4, 5, 6}, {6, 7}},    {2, 3, {5, 6}, {4, 6, 7}}, {1, 1, {6}, {6}},
        {4, 3, {2, 1, 3, 4}, {5, 4, 2}}, {2, 2, {3, 0}, {0, 4}},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(fixed); i++) check_matmul(&fixed[i], &seed);
}

/* A float MatMul whose B is an input (attention's per-head products) runs, with 2+ threads, on
 * sgemm with B packed per call and rows of every batch shared over the team (one thread: OpenBLAS,
 * checked by the same loop): random attention-like shapes big enough to split (odd sizes, shared
 * and broadcast B, broadcast A), each micro-kernel variant the CPU has, against the reference
 * loops. */
static void test_matmul_variable_b(void **unused) {
    (void)unused;
    static const celer_sgemm_isa isas[] = {CELER_SGEMM_PLAIN, CELER_SGEMM_AVX2, CELER_SGEMM_AVX512};
    uint64_t seed = 7;
    mm_case fixed[] = {
        {4, 4, {1, 3, 97, 64}, {1, 3, 64, 97}},  /* Q K^T */
        {4, 4, {1, 3, 97, 97}, {1, 3, 97, 64}},  /* P V */
        {3, 2, {2, 131, 40}, {40, 70}},          /* one B for every batch */
        {3, 3, {1, 130, 33}, {3, 33, 45}},       /* A broadcast over B's batches */
        {2, 2, {1, 5}, {5, 1}},                  /* tiny: one thread */
        {4, 4, {2, 2, 49, 0}, {2, 2, 0, 33}},    /* K = 0: zeros */
    };
    for (size_t v = 0; v < CELER_ARRAY_LEN(isas); v++) {
        if (celer_sgemm_force_isa(isas[v]) != isas[v]) continue; /* the CPU lacks it */
        for (int threads = 1; threads <= 2; threads++) {
            omp_set_num_threads(threads);
            for (size_t i = 0; i < CELER_ARRAY_LEN(fixed); i++) check_matmul(&fixed[i], &seed);
            for (int it = 0; it < 8; it++) {
                int64_t h = rnd(&seed, 1, 5), m = rnd(&seed, 1, 150), k = rnd(&seed, 1, 90),
                        n = rnd(&seed, 1, 150);
                mm_case mc = {4, 4, {1, h, m, k}, {1, h, k, n}};
                check_matmul(&mc, &seed);
            }
        }
    }
    omp_set_num_threads(1);
    celer_sgemm_force_isa(CELER_SGEMM_AUTO);
}

static void test_matmul_errors(void **unused) {
    (void)unused;
    uint64_t seed = 1;
    celer_tensor a = make_f32(3, (int64_t[]){2, 3, 4}, &seed), b = make_f32(3, (int64_t[]){3, 4, 5}, &seed);
    celer_onnx_node node = make_node("MatMul", 0, 2);
    const celer_tensor *in[] = {&a, &b};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 13, in, 2, out, 1), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "broadcast"));
    b.shape = (celer_shape){2, {5, 5}};
    assert_int_equal(tu_run_op(&node, 13, in, 2, out, 1), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "inner"));
    free(a.data), free(b.data);
}

static void test_matmulinteger(void **unused) {
    (void)unused;
    uint8_t a[2 * 3 * 4];
    int8_t b[4 * 5];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i * 29 % 256);
    for (size_t i = 0; i < sizeof b; i++) b[i] = (int8_t)((int)(i * 13 % 255) - 127);
    uint8_t az[3] = {3, 100, 255};
    int8_t bz[5] = {0, 1, -1, 5, -128};
    celer_tensor ta = {CELER_UINT8, {3, {2, 3, 4}}, a}, tb = {CELER_INT8, {2, {4, 5}}, b};
    celer_tensor taz = {CELER_UINT8, {1, {3}}, az}, tbz = {CELER_INT8, {1, {5}}, bz};
    const celer_tensor *in[] = {&ta, &tb, &taz, &tbz};
    celer_onnx_node node = make_node("MatMulInteger", 0, 4);
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 10, in, 4, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT32);
    const int32_t *y = out[0].data;
    for (int bt = 0; bt < 2; bt++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                int32_t acc = 0;
                for (int q = 0; q < 4; q++)
                    acc += ((int32_t)a[(bt * 3 + i) * 4 + q] - az[i]) * ((int32_t)b[q * 5 + j] - bz[j]);
                assert_int_equal(y[(bt * 3 + i) * 5 + j], acc);
            }
    tu_free_outputs(out, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_known),
        cmocka_unit_test(test_gemm_random),
        cmocka_unit_test(test_matmul_random),
        cmocka_unit_test(test_matmul_variable_b),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_matmulinteger),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
