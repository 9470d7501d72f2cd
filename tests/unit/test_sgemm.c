/* sgemm (B packed at load) against a plain double-precision product on random shapes, with each
 * micro-kernel variant the CPU has forced in turn (plain C, AVX2 + FMA, AVX-512), on one thread
 * and on two (panels and rows split); and FusedMatMul, which runs on it, with every activation
 * against the reference GEMM followed by libm's activation; Gemm and MatMul with a constant B,
 * which run on it too. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "graph/fused.h"
#include "graph/graph.h"
#include "ops/ops.h"
#include "ops/reference.h"
#include "ops/sgemm.h"
#include "testutil.h"

static int64_t rnd(uint64_t *seed, int64_t lo, int64_t hi) {
    float f;
    tu_fill_random(&f, 1, 0, 1, seed);
    int64_t v = lo + (int64_t)(f * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

static float *random_floats(size_t n, uint64_t *seed) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    tu_fill_random(p, n, -1, 1, seed);
    return p;
}

/* An epilogue that must run exactly once on each element, after the whole sum: y = 2 y + 1. */
static void twice_plus_one(const void *ctx, float *y, int64_t ldy, int64_t rows, int64_t n) {
    assert_ptr_equal(ctx, (const void *)twice_plus_one);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) y[r * ldy + i] = 2 * y[r * ldy + i] + 1;
}

static const celer_sgemm_isa isas[] = {CELER_SGEMM_PLAIN, CELER_SGEMM_AVX2, CELER_SGEMM_AVX512};
static const char *const isa_names[] = {"auto", "plain", "avx2", "avx512"};

/* `iters` random products per variant; shapes from the ranges given (every seventh N 16 or 48),
 * every fourth one with leading dimensions wider than the matrices. */
static void check_random(int iters, int64_t m_max, int64_t k_max, int64_t n_max, int threads, uint64_t seed) {
    omp_set_num_threads(threads);
    for (size_t v = 0; v < CELER_ARRAY_LEN(isas); v++) {
        if (celer_sgemm_force_isa(isas[v]) != isas[v]) continue; /* the CPU lacks it */
        for (int it = 0; it < iters; it++) {
            int64_t m = rnd(&seed, 1, m_max), k = rnd(&seed, 0, k_max) | 1, n = rnd(&seed, 1, n_max) | 1;
            if (it % 7 == 6) n = it % 14 == 6 ? 16 : 48; /* a last panel of exactly half a tile's width */
            bool tb = it & 1, with_bias = (it >> 1) & 1, acc = (it % 3) == 0, epi = (it % 5) < 2;
            int64_t lda = k + (it % 4 == 3 ? 5 : 0), ldy = n + (it % 4 == 3 ? 3 : 0);
            float *a = random_floats((size_t)(m * lda), &seed), *b = random_floats((size_t)(k * n), &seed);
            float *bias = random_floats((size_t)n, &seed), *y = random_floats((size_t)(m * ldy), &seed);
            double *want = malloc(sizeof(double) * (size_t)(m * n));
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = (acc ? y[i * ldy + j] : 0) + (with_bias ? bias[j] : 0);
                    for (int64_t p = 0; p < k; p++) s += (double)a[i * lda + p] * b[tb ? j * k + p : p * n + j];
                    want[i * n + j] = epi ? 2 * s + 1 : s;
                }
            float pad = y[ldy - 1];
            celer_sgemm_b pb;
            assert_int_equal(celer_sgemm_pack("t", b, k, n, tb, with_bias ? bias : NULL, &pb), CELER_OK);
            celer_sgemm_run(&pb, m, a, lda, y, ldy, acc, epi ? twice_plus_one : NULL, (const void *)twice_plus_one);
            double maxd = 0, maxw = 1;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    maxd = fmax(maxd, fabs(y[i * ldy + j] - want[i * n + j]));
                    maxw = fmax(maxw, fabs(want[i * n + j]));
                }
            if (maxd / maxw > 1e-5 || isnan(maxd))
                print_error("%s threads=%d it=%d m=%lld k=%lld n=%lld tb=%d bias=%d acc=%d epi=%d: err %g\n",
                            isa_names[isas[v]], threads, it, (long long)m, (long long)k, (long long)n, tb,
                            with_bias, acc, epi, maxd / maxw);
            assert_true(maxd / maxw <= 1e-5);
            if (ldy > n) assert_true(y[ldy - 1] == pad); /* the padding of a row is not written */
            celer_sgemm_b_free(&pb);
            free(a), free(b), free(bias), free(y), free(want);
        }
    }
    celer_sgemm_force_isa(CELER_SGEMM_AUTO);
    omp_set_num_threads(1);
}

static void test_sgemm_random(void **unused) {
    (void)unused;
    check_random(150, 40, 99, 99, 1, 7);
}

/* K past one block (1536: three blocks of 1034, 1034 and 1032) and N past a few panels: the
 * accumulation across K blocks. */
static void test_sgemm_k_blocks(void **unused) {
    (void)unused;
    check_random(12, 30, 3100, 140, 1, 11);
}

/* Two threads: products big enough to split, by rows (B up to 1 MB, or N <= 32) or by panels (B
 * past 1 MB with fewer than 512 rows), and the 1-4 row products (MLP at batch 1) that split by
 * panels from 128K multiply-adds. */
static void test_sgemm_threads(void **unused) {
    (void)unused;
    check_random(6, 150, 1200, 200, 2, 13);
    check_random(6, 400, 1200, 31, 2, 17);
    check_random(8, 4, 1100, 600, 2, 19);
}

/* K = 0: Y = bias (activated); M = 0 and N = 0: nothing written. */
static void test_sgemm_empty(void **unused) {
    (void)unused;
    float bias[3] = {1, -2, 3}, y[6] = {9, 9, 9, 9, 9, 9};
    celer_sgemm_b pb;
    assert_int_equal(celer_sgemm_pack("t", NULL, 0, 3, false, bias, &pb), CELER_OK);
    celer_sgemm_run(&pb, 2, bias, 0, y, 3, false, twice_plus_one, (const void *)twice_plus_one);
    const float want[6] = {3, -3, 7, 3, -3, 7};
    assert_memory_equal(y, want, sizeof want);
    celer_sgemm_run(&pb, 0, bias, 0, y, 3, false, NULL, NULL);
    assert_memory_equal(y, want, sizeof want);
    celer_sgemm_b_free(&pb);
    celer_sgemm_b_free(&pb); /* a zeroed struct frees to nothing */
}

/* ---- FusedMatMul ---- */

/* Runs `op` (opset 13 for ai.onnx) on in[0..n_in) with every input but the first given as a constant
 * at init, as the runtime does for initializers; out is malloc'd. The constants' bytes are NaN
 * during run when the kernel says it packs them (it may not read them then). */
static celer_status run_const(const char *domain, const char *op, const celer_onnx_attr *attrs, int n_attrs,
                              const celer_tensor *const *in, int n_in, celer_tensor *out) {
    static const char *const names[] = {"a", "b", "c"}, *const outs[] = {"y"};
    celer_onnx_node node = {.name = "mm", .op_type = op, .domain = domain, .n_inputs = n_in, .n_outputs = 1,
                            .n_attrs = n_attrs, .inputs = names, .outputs = outs, .attrs = attrs};
    celer_dtype types[3] = {CELER_FLOAT, CELER_FLOAT, CELER_FLOAT};
    const celer_tensor *consts[3] = {NULL, in[1], n_in > 2 ? in[2] : NULL};
    int opset = *domain ? 1 : 13;
    celer_op_info info = {.node = &node, .opset = opset, .n_inputs = n_in, .n_outputs = 1, .input_types = types,
                          .input_constants = consts};
    const celer_kernel *k = celer_ops_find(domain, op, opset, types, n_in);
    assert_non_null(k);
    void *state = NULL;
    celer_status st = k->init(&info, &state);
    if (st) return st;
    memset(out, 0, sizeof *out);
    out->dtype = CELER_FLOAT;
    celer_kernel_call call = {.info = &info, .state = state, .in = in, .n_in = n_in, .out = out, .n_out = 1};
    if (!(st = k->reshape(&call))) {
        out->data = malloc(sizeof(float) * (size_t)(celer_shape_numel(&out->shape) + 1));
        size_t nb = (size_t)celer_shape_numel(&in[1]->shape);
        float *saved = malloc(sizeof(float) * (nb + 1));
        memcpy(saved, in[1]->data, sizeof(float) * nb);
        if (k->flags & CELER_KERNEL_PACKS_CONSTANTS)
            for (size_t i = 0; i < nb; i++) ((float *)in[1]->data)[i] = NAN;
        st = k->run(&call);
        memcpy(in[1]->data, saved, sizeof(float) * nb);
        free(saved);
    }
    k->free_state(state);
    return st;
}

static celer_status run_fused(const celer_onnx_attr *attrs, int n_attrs, const celer_tensor *a,
                              const celer_tensor *b, const celer_tensor *bias, celer_tensor *out) {
    const celer_tensor *in[3] = {a, b, bias};
    return run_const(CELER_GRAPH_INTERNAL_DOMAIN, FUSED_OP_MATMUL, attrs, n_attrs, in, bias ? 3 : 2, out);
}

/* Gemm (alpha, beta, transB, C broadcast) and MatMul (batched A) with a constant B run on the
 * packed panels: against the reference loops. */
static void test_gemm_matmul_constant_b(void **unused) {
    (void)unused;
    uint64_t seed = 3;
    for (int it = 0; it < 60; it++) {
        int64_t m = rnd(&seed, 1, 40), k = rnd(&seed, 0, 300) | 1, n = rnd(&seed, 1, 80) | 1;
        bool tb = it & 1, gemm = (it >> 1) & 1;
        float alpha = it % 3 ? 1.f : 0.5f, beta = it % 5 ? 1.f : -2.f;
        int ckind = it % 4; /* Gemm's C: none, [n], [m, 1], [m, n] */
        int64_t batch = gemm ? 1 : rnd(&seed, 1, 3);
        celer_tensor a = {CELER_FLOAT, {gemm ? 2 : 3, {0}}, random_floats((size_t)(batch * m * k), &seed)};
        if (gemm) memcpy(a.shape.dims, (int64_t[]){m, k}, 2 * sizeof(int64_t));
        else memcpy(a.shape.dims, (int64_t[]){batch, m, k}, 3 * sizeof(int64_t));
        if (!gemm) tb = false;
        celer_tensor b = {CELER_FLOAT, {2, {tb ? n : k, tb ? k : n}}, random_floats((size_t)(k * n), &seed)};
        celer_tensor c = {CELER_FLOAT, {ckind == 1 ? 1 : 2, {0}}, random_floats((size_t)(m * n), &seed)};
        if (ckind == 1) c.shape.dims[0] = n;
        else memcpy(c.shape.dims, (int64_t[]){m, ckind == 2 ? 1 : n}, 2 * sizeof(int64_t));
        celer_onnx_attr at[3] = {{.name = "alpha", .type = CELER_ATTR_FLOAT, .f = alpha},
                                 {.name = "beta", .type = CELER_ATTR_FLOAT, .f = beta},
                                 {.name = "transB", .type = CELER_ATTR_INT, .i = tb}};
        const celer_tensor *in[3] = {&a, &b, &c};
        int n_in = gemm && ckind ? 3 : 2;
        celer_tensor y;
        assert_int_equal(run_const("", gemm ? "Gemm" : "MatMul", gemm ? at : NULL, gemm ? 3 : 0, in, n_in, &y),
                         CELER_OK);
        int64_t rows = batch * m;
        assert_int_equal(celer_shape_numel(&y.shape), rows * n);
        float *ref = malloc(sizeof(float) * (size_t)(rows * n));
        if (gemm) celer_ref_gemm_f32(false, tb, m, n, k, alpha, a.data, b.data, beta, ckind ? c.data : NULL, &c.shape, ref);
        else celer_ref_gemm_f32(false, false, rows, n, k, 1.f, a.data, b.data, 0.f, NULL, NULL, ref);
        double err = tu_max_rel_diff(y.data, ref, (size_t)(rows * n));
        if (err > 1e-5) print_error("%s it=%d m=%lld k=%lld n=%lld: err %g\n", gemm ? "Gemm" : "MatMul", it,
                                    (long long)rows, (long long)k, (long long)n, err);
        assert_true(err <= 1e-5);
        free(ref), free(y.data), free(a.data), free(b.data), free(c.data);
    }
}

static double act_ref(int act, double x, double alpha, double beta) {
    switch (act) {
    case 1: return x < 0 ? 0 : x;
    case 2: return x < 0 ? alpha * x : x;
    case 3: return x < alpha ? alpha : x > beta ? beta : x;
    case 4: return 1 / (1 + exp(-x));
    case 5: return tanh(x);
    case 6: return x / 2 * (1 + erf(x / sqrt(2)));
    case 7: return x / (1 + exp(-alpha * x));
    }
    return x;
}

static void test_fused_matmul_activations(void **unused) {
    (void)unused;
    static const char *const acts[] = {NULL, "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Gelu", "Swish"};
    uint64_t seed = 5;
    for (int it = 0; it < 80; it++) {
        int act = it % 8;
        bool tb = (it / 8) & 1, with_bias = (it / 16) & 1, batched = (it / 32) & 1;
        int64_t m = rnd(&seed, 1, 40), k = rnd(&seed, 1, 300) | 1, n = rnd(&seed, 1, 80) | 1;
        float alpha = act == 3 ? -0.5f : act == 7 ? 1.5f : 0.1f, beta = 0.75f;
        celer_onnx_attr at[4] = {{.name = "transB", .type = CELER_ATTR_INT, .i = tb}};
        int nat = 1;
        if (acts[act]) {
            at[nat++] = (celer_onnx_attr){.name = FUSED_ATTR_ACTIVATION, .type = CELER_ATTR_STRING,
                                          .s = acts[act], .s_len = strlen(acts[act])};
            at[nat++] = (celer_onnx_attr){.name = FUSED_ATTR_ACTIVATION_ALPHA, .type = CELER_ATTR_FLOAT, .f = alpha};
            at[nat++] = (celer_onnx_attr){.name = FUSED_ATTR_ACTIVATION_BETA, .type = CELER_ATTR_FLOAT, .f = beta};
        }
        /* batched: A [2, m, k], the product of its 2 m rows */
        int64_t rows = batched ? 2 * m : m;
        celer_tensor a = {CELER_FLOAT, {batched ? 3 : 2, {0}}, random_floats((size_t)(rows * k), &seed)};
        if (batched) memcpy(a.shape.dims, (int64_t[]){2, m, k}, 3 * sizeof(int64_t));
        else memcpy(a.shape.dims, (int64_t[]){m, k}, 2 * sizeof(int64_t));
        if (batched && tb) a.shape = (celer_shape){2, {rows, k}}; /* transB takes matrices only */
        celer_tensor b = {CELER_FLOAT, {2, {tb ? n : k, tb ? k : n}}, random_floats((size_t)(k * n), &seed)};
        celer_tensor bias = {CELER_FLOAT, {1, {n}}, random_floats((size_t)n, &seed)};
        celer_tensor y;
        assert_int_equal(run_fused(at, nat, &a, &b, with_bias ? &bias : NULL, &y), CELER_OK);
        assert_int_equal(celer_shape_numel(&y.shape), rows * n);
        assert_int_equal(y.shape.dims[y.shape.rank - 1], n);
        float *ref = malloc(sizeof(float) * (size_t)(rows * n));
        celer_ref_gemm_f32(false, tb, rows, n, k, 1.f, a.data, b.data, 0.f, NULL, NULL, ref);
        for (int64_t i = 0; i < rows * n; i++)
            ref[i] = (float)act_ref(act, (double)ref[i] + (with_bias ? ((float *)bias.data)[i % n] : 0), alpha, beta);
        double err = tu_max_rel_diff(y.data, ref, (size_t)(rows * n));
        if (err > 1e-5) print_error("FusedMatMul %s it=%d m=%lld k=%lld n=%lld: err %g\n", acts[act] ? acts[act] : "-",
                                    it, (long long)rows, (long long)k, (long long)n, err);
        assert_true(err <= 1e-5);
        free(ref), free(y.data), free(a.data), free(b.data), free(bias.data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_random),
        cmocka_unit_test(test_sgemm_k_blocks),
        cmocka_unit_test(test_sgemm_threads),
        cmocka_unit_test(test_sgemm_empty),
        cmocka_unit_test(test_fused_matmul_activations),
        cmocka_unit_test(test_gemm_matmul_constant_b),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
