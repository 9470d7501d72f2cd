/* libFuzzer target: arbitrary bytes through the whole load path (reader, graph, kernel resolution
 * and init) and, when every input has a small static shape, one run on zero-filled inputs, so
 * kernels see hostile attributes and shapes. A clean error is fine; a crash, leak or sanitizer
 * report is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

#define MAX_INPUT_ELEMENTS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    celer_onnx_model *onnx;
    if (celer_onnx_parse(data, size, NULL, &onnx)) return 0;
    celer_model *m;
    celer_model_options opts = {.threads = 1, .max_arena_bytes = 64 << 20};
    if (celer_model_compile(onnx, &opts, &m)) return 0;
    int n = celer_model_input_count(m);
    celer_tensor *in = calloc((size_t)n + 1, sizeof *in);
    bool ok = in != NULL;
    for (int i = 0; ok && i < n; i++) {
        const celer_io_desc *d = celer_model_input(m, i);
        int64_t numel = d->has_shape ? celer_shape_numel(&d->shape) : -1;
        ok = numel >= 0 && numel <= MAX_INPUT_ELEMENTS && d->dtype != CELER_STRING && celer_dtype_size(d->dtype);
        if (!ok) break;
        in[i].dtype = d->dtype;
        in[i].shape = d->shape;
        in[i].data = calloc((size_t)numel + 1, celer_dtype_size(d->dtype));
        ok = in[i].data != NULL;
    }
    celer_context *ctx;
    if (ok && celer_context_init(m, &ctx) == CELER_OK) {
        const celer_tensor *out;
        celer_context_run(ctx, in, &out);
        celer_context_free(ctx);
    }
    for (int i = 0; in && i < n; i++) free(in[i].data);
    free(in);
    celer_model_free(m);
    return 0;
}
