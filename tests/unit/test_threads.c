/* celer's own loops split across threads (celer_ops_parallel_for): elementwise, LayerNorm and pool
 * kernels on sizes just past their split thresholds (elementwise.c, norm.c, pool.c) give the same
 * bytes on 2 threads as on 1, including tails that are not a multiple of the split's granule. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"

typedef struct thr_case {
    const char *op;
    const celer_onnx_attr *at;
    int nat;
    int rank;
    int64_t dims[4];
    int n_in;  /* inputs: x, then (LayerNorm) scale and bias over the last axis, or (Add) y of x's shape */
    int n_out;
} thr_case;

static const celer_onnx_attr ln_at[] = {AINT("axis", -1)};
static const celer_onnx_attr pool1d_at[] = {AINTS("kernel_shape", 3), AINTS("pads", 1, 1)};

/* Each a little past 2 threads' worth of its threshold, sizes odd where the split has a granule. */
static const thr_case cases[] = {
    {"Sigmoid", NULL, 0, 2, {3, 4099}, 1, 1},       /* heavy: 4K elements a thread */
    {"Relu", NULL, 0, 1, {70001}, 1, 1},            /* cheap: 32K a thread */
    {"Add", NULL, 0, 2, {7, 10007}, 2, 1},          /* cheap binary */
    {"LayerNormalization", ln_at, 1, 3, {1, 23, 768}, 3, 1}, /* 4K elements a thread */
    {"LayerNormalization", ln_at, 1, 2, {40, 383}, 3, 3},    /* + mean and inverse deviation */
    {"MaxPool", pool1d_at, 2, 3, {2, 33, 301}, 1, 1},        /* 16K read + written a thread */
    {"GlobalAveragePool", NULL, 0, 4, {1, 37, 29, 31}, 1, 1},
};

static float *random_floats(size_t n, unsigned seed) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    srand(seed);
    for (size_t i = 0; i < n; i++) v[i] = (float)rand() / (float)RAND_MAX * 8.f - 4.f;
    return v;
}

static void run_case(const thr_case *c, int threads, celer_tensor *out) {
    celer_tensor x = {.dtype = CELER_FLOAT, .shape = {.rank = c->rank}};
    size_t n = 1;
    for (int d = 0; d < c->rank; d++) n *= (size_t)(x.shape.dims[d] = c->dims[d]);
    int64_t last = c->dims[c->rank - 1];
    x.data = random_floats(n, 1);
    celer_tensor y = x, w = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {last}}}, b = w;
    y.data = random_floats(n, 2);
    w.data = random_floats((size_t)last, 3);
    b.data = random_floats((size_t)last, 4);
    const celer_tensor *in[3] = {&x, c->n_in == 2 ? &y : &w, &b};
    omp_set_num_threads(threads);
    assert_int_equal(tu_run(c->op, 17, c->at, c->nat, in, c->n_in, out, c->n_out), 0);
    omp_set_num_threads(1);
    free(x.data);
    free(y.data);
    free(w.data);
    free(b.data);
}

static void test_two_threads_same_bytes(void **unused) {
    (void)unused;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const thr_case *c = &cases[i];
        celer_tensor one[3] = {0}, two[3] = {0};
        run_case(c, 1, one);
        run_case(c, 2, two);
        for (int o = 0; o < c->n_out; o++) {
            size_t bytes1 = 0, bytes2 = 0;
            assert_int_equal(celer_tensor_bytes(&one[o], &bytes1), 0);
            assert_int_equal(celer_tensor_bytes(&two[o], &bytes2), 0);
            assert_int_equal(bytes1, bytes2);
            if (memcmp(one[o].data, two[o].data, bytes1)) {
                print_error("%s output %d differs between 1 and 2 threads\n", c->op, o);
                fail();
            }
        }
        tu_free_outputs(one, c->n_out);
        tu_free_outputs(two, c->n_out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
