/* Runtime: one compiled model run from many threads at once, arena reuse across shapes, input
 * validation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "testutil.h"

#define ONNX_DATA "/usr/share/libonnx-testdata/data"
#define N_THREADS 8
#define N_SETS 4

static char *path_in(const char *root_env, const char *fallback, const char *rel) {
    static char buf[4][1024];
    static int k;
    const char *root = getenv(root_env);
    char *p = buf[k++ & 3];
    snprintf(p, 1024, "%s/%s", root ? root : fallback, rel);
    return p;
}

/* Random float inputs for every model input, symbolic dims set to `dim`. Data malloc'ed. */
static void make_inputs(const celer_model *m, int64_t dim, uint64_t *seed, celer_tensor *in) {
    for (int i = 0; i < celer_model_input_count(m); i++) {
        const celer_io_desc *d = celer_model_input(m, i);
        assert_int_equal(d->dtype, CELER_FLOAT);
        in[i].dtype = d->dtype;
        in[i].shape = d->shape;
        for (int r = 0; r < d->shape.rank; r++)
            if (in[i].shape.dims[r] < 0) in[i].shape.dims[r] = dim;
        size_t n = (size_t)celer_shape_numel(&in[i].shape);
        in[i].data = malloc(n * sizeof(float) + 1);
        tu_fill_random(in[i].data, n, -1, 1, seed);
    }
}

typedef struct {
    const celer_model *model;
    celer_tensor (*inputs)[4];
    celer_tensor (*expected)[4];
    int iterations, thread, mismatches;
    celer_status status;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    celer_context *ctx;
    if ((a->status = celer_context_init(a->model, &ctx))) return NULL;
    int n_out = celer_model_output_count(a->model);
    for (int it = 0; it < a->iterations; it++) {
        int s = (it + a->thread) % N_SETS;
        const celer_tensor *out;
        if ((a->status = celer_context_run(ctx, a->inputs[s], &out))) break;
        for (int o = 0; o < n_out; o++) {
            size_t bytes;
            celer_tensor_bytes(&a->expected[s][o], &bytes);
            if (!celer_shape_equal(&out[o].shape, &a->expected[s][o].shape) ||
                memcmp(out[o].data, a->expected[s][o].data, bytes))
                a->mismatches++;
        }
    }
    celer_context_free(ctx);
    return NULL;
}

/* Runs `path` from N_THREADS threads, each with its own context, on N_SETS input sets (two of
 * them with another batch size, so contexts re-plan), and checks every output against a
 * single-threaded run. */
static void run_concurrently(const char *path, int iterations) {
    celer_model *m;
    celer_status st = celer_model_load(path, NULL, &m);
    if (st) fail_msg("%s: %s", path, celer_error_message());
    celer_tensor inputs[N_SETS][4] = {0}, expected[N_SETS][4] = {0};
    uint64_t seed = 42;
    assert_true(celer_model_input_count(m) <= 4 && celer_model_output_count(m) <= 4);
    celer_context *ref;
    assert_int_equal(celer_context_init(m, &ref), CELER_OK);
    for (int s = 0; s < N_SETS; s++) {
        make_inputs(m, s % 2 ? 3 : 1, &seed, inputs[s]);
        const celer_tensor *out;
        st = celer_context_run(ref, inputs[s], &out);
        if (st) fail_msg("%s: %s", path, celer_error_message());
        for (int o = 0; o < celer_model_output_count(m); o++) {
            size_t bytes;
            celer_tensor_bytes(&out[o], &bytes);
            expected[s][o] = out[o];
            expected[s][o].data = malloc(bytes + 1);
            memcpy(expected[s][o].data, out[o].data, bytes);
        }
    }
    celer_context_free(ref);

    pthread_t threads[N_THREADS];
    worker_arg args[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        args[t] = (worker_arg){.model = m, .inputs = inputs, .expected = expected,
                               .iterations = iterations, .thread = t};
        pthread_create(&threads[t], NULL, worker, &args[t]);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(threads[t], NULL);
        if (args[t].status) fail_msg("%s thread %d: %s", path, t, celer_error_message());
        assert_int_equal(args[t].mismatches, 0);
    }
    for (int s = 0; s < N_SETS; s++)
        for (int i = 0; i < 4; i++) {
            free(inputs[s][i].data);
            free(expected[s][i].data);
        }
    celer_model_free(m);
}

static void test_threads_mlp(void **state) {
    (void)state;
    run_concurrently(path_in("CELER_EXAMPLES", "examples", "mlp/model.onnx"), 500);
}

static void test_threads_conv(void **state) {
    (void)state;
    run_concurrently(ONNX_DATA "/pytorch-converted/test_Conv2d_groups/model.onnx", 100);
    run_concurrently(ONNX_DATA "/pytorch-converted/test_MaxPool2d_stride_padding_dilation/model.onnx", 100);
    run_concurrently(ONNX_DATA "/pytorch-converted/test_BatchNorm2d_eval/model.onnx", 100);
}

/* The same context run on growing then shrinking shapes keeps giving right answers, and its
 * arena stops growing once it has seen the largest shape. */
static void test_arena_reuse(void **state) {
    (void)state;
    celer_model *m;
    assert_int_equal(celer_model_load(path_in("CELER_EXAMPLES", "examples", "mlp/model.onnx"), NULL, &m), CELER_OK);
    celer_context *a, *b;
    assert_int_equal(celer_context_init(m, &a), CELER_OK);
    uint64_t seed = 7;
    size_t arena_after_big = 0;
    const int64_t batches[] = {1, 64, 5, 64, 2, 64};
    for (size_t i = 0; i < CELER_ARRAY_LEN(batches); i++) {
        celer_tensor in[4] = {0};
        make_inputs(m, batches[i], &seed, in);
        const celer_tensor *out_a, *out_b;
        assert_int_equal(celer_context_run(a, in, &out_a), CELER_OK);
        /* a fresh context is the reference */
        assert_int_equal(celer_context_init(m, &b), CELER_OK);
        assert_int_equal(celer_context_run(b, in, &out_b), CELER_OK);
        size_t bytes;
        celer_tensor_bytes(&out_b[0], &bytes);
        assert_int_equal(out_a[0].shape.dims[0], batches[i]);
        assert_memory_equal(out_a[0].data, out_b[0].data, bytes);
        celer_context_free(b);
        free(in[0].data);
        if (i == 2) arena_after_big = celer_context_arena_bytes(a);
        if (i > 2) assert_int_equal(celer_context_arena_bytes(a), arena_after_big);
    }
    assert_true(arena_after_big > 0);
    celer_context_free(a);
    celer_model_free(m);
}

static void test_input_errors(void **state) {
    (void)state;
    celer_model *m;
    assert_int_equal(celer_model_load(path_in("CELER_EXAMPLES", "examples", "mlp/model.onnx"), NULL, &m), CELER_OK);
    celer_context *c;
    assert_int_equal(celer_context_init(m, &c), CELER_OK);
    float data[64] = {0};
    const celer_tensor *out;
    celer_tensor in = {.dtype = CELER_DOUBLE, .shape = {2, {2, 16}}, .data = data};
    assert_int_equal(celer_context_run(c, &in, &out), CELER_ERR_DTYPE);
    assert_non_null(strstr(celer_error_message(), "expected float, got double"));
    in = (celer_tensor){.dtype = CELER_FLOAT, .shape = {2, {2, 15}}, .data = data};
    assert_int_equal(celer_context_run(c, &in, &out), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "got [2,15]"));
    in = (celer_tensor){.dtype = CELER_FLOAT, .shape = {1, {32}}, .data = data};
    assert_int_equal(celer_context_run(c, &in, &out), CELER_ERR_SHAPE);
    celer_context_free(c);
    celer_model_free(m);
}

static void test_unsupported_op_message(void **state) {
    (void)state;
    celer_model *m = NULL;
    /* a model whose operator has no kernel: the load fails naming op, opset and node */
    celer_status st = celer_model_load(ONNX_DATA "/node/test_bernoulli/model.onnx", NULL, &m);
    if (st == CELER_OK) {
        celer_model_free(m);
        skip();
    }
    assert_int_equal(st, CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "Bernoulli"));
    assert_non_null(strstr(celer_error_message(), "node 0"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_mlp),
        cmocka_unit_test(test_threads_conv),
        cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_unsupported_op_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
