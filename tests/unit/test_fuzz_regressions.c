/* Fuzzer findings: every file in $CELER_TEST_DATA/fuzz_regressions is a model that once crashed
 * (or hit a sanitizer report, a hang or an unbounded allocation) in tests/fuzz/fuzz_model. Each
 * goes through the same path as the fuzzer: parse, compile and, when every input has a small
 * static shape, one run on zero-filled inputs. Any clean status is fine; the test only asks that
 * nothing crashes (run it under -DCELER_SANITIZE=ON to also catch the UB ones). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "testutil.h"

#define MAX_INPUT_ELEMENTS 4096

static void *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);
            if (!nb) break;
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    *len = n;
    return buf;
}

/* The fuzz target's body; returns the first failing status (for the log only). */
static celer_status load_and_run(const void *bytes, size_t len) {
    celer_onnx_model *onnx;
    celer_status st = celer_onnx_parse(bytes, len, NULL, &onnx);
    if (st) return st;
    celer_model *m;
    celer_model_options opts = {.threads = 1, .max_arena_bytes = 64 << 20};
    if ((st = celer_model_compile(onnx, &opts, &m))) return st;
    int n = celer_model_input_count(m);
    celer_tensor *in = calloc((size_t)n + 1, sizeof *in);
    assert_non_null(in);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        const celer_io_desc *d = celer_model_input(m, i);
        int64_t numel = d->has_shape ? celer_shape_numel(&d->shape) : -1;
        ok = numel >= 0 && numel <= MAX_INPUT_ELEMENTS && d->dtype != CELER_STRING &&
             celer_dtype_size(d->dtype);
        if (!ok) break;
        in[i].dtype = d->dtype;
        in[i].shape = d->shape;
        in[i].data = calloc((size_t)numel + 1, celer_dtype_size(d->dtype));
        assert_non_null(in[i].data);
    }
    celer_context *ctx;
    if (ok && !(st = celer_context_init(m, &ctx))) {
        const celer_tensor *out;
        st = celer_context_run(ctx, in, &out);
        celer_context_free(ctx);
    }
    for (int i = 0; i < n; i++) free(in[i].data);
    free(in);
    celer_model_free(m);
    return st;
}

/* Files whose outcome is pinned down (the rest only have to not crash). */
static const struct {
    const char *file;
    celer_status status;
    const char *message; /* a fragment of celer_error_message(); NULL when ok */
} outcomes[] = {
    {"avgpool_huge_kernel_same_upper.onnx", CELER_OK, NULL},
    {"batchnorm_inference_scratch.onnx", CELER_OK, NULL},
    {"compress_empty_huge_dims.onnx", CELER_ERR_LIMIT, "input 0 has a 0 dim but its other dims"},
    {"conv_missing_weight.onnx", CELER_ERR_INVALID, "Conv needs at least 2 input(s), the node has 1"},
    {"reduce_no_outputs.onnx", CELER_ERR_INVALID, "ReduceSum needs at least 1 output(s)"},
    {"resize_huge_plan.onnx", CELER_ERR_LIMIT, "resize plan of"},
    {"scan_num_scan_inputs_int_min.onnx", CELER_ERR_INVALID, "num_scan_inputs -2147483648"},
    {"topk_empty_axis.onnx", CELER_OK, NULL},
};

static void check_outcome(const char *file, celer_status st) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(outcomes); i++) {
        if (strcmp(outcomes[i].file, file)) continue;
        if (st != outcomes[i].status)
            fail_msg("%s: expected %s, got %s: %s", file, celer_status_name(outcomes[i].status),
                     celer_status_name(st), celer_error_message());
        if (outcomes[i].message && !strstr(celer_error_message(), outcomes[i].message))
            fail_msg("%s: message '%s' lacks '%s'", file, celer_error_message(), outcomes[i].message);
    }
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void test_regressions(void **state) {
    (void)state;
    const char *root = getenv("CELER_TEST_DATA");
    if (!root) {
        print_message("CELER_TEST_DATA not set, skipped\n");
        skip();
    }
    char dir[1024], path[1536];
    snprintf(dir, sizeof dir, "%s/fuzz_regressions", root);
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name), ran = 0;
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, list[i]->d_name);
            size_t len = 0;
            void *bytes = read_all(path, &len);
            assert_non_null(bytes);
            celer_status st = load_and_run(bytes, len);
            print_message("%-40s %s%s%s\n", list[i]->d_name, celer_status_name(st),
                          st ? ": " : "", st ? celer_error_message() : "");
            check_outcome(list[i]->d_name, st);
            free(bytes);
            ran++;
        }
        free(list[i]);
    }
    free(list);
    assert_true(ran > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_regressions)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
