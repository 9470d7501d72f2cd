/* A program embedding celer as a user would: built with the public headers alone (the build's
 * include/ folder) and linked with libceler.a alone, so any declaration or symbol a user needs
 * that is missing from the public library fails this build. Loads a model, runs it on a .npy
 * input and prints each output's name, shape and first values.
 * usage: celer_embed MODEL.onnx INPUT.npy */
#include <stdio.h>

#include "runtime/runtime.h"
#include "tensor/tensor.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.onnx INPUT.npy\n", argv[0]);
        return 2;
    }
    celer_arena arena;
    celer_arena_init(&arena, 1 << 16, 0);
    celer_model *model = NULL;
    celer_context *ctx = NULL;
    celer_tensor input;
    const celer_tensor *outputs;
    celer_status st = celer_npy_read(argv[2], &arena, &input);
    if (!st) st = celer_model_load(argv[1], &(celer_model_options){.threads = 1}, &model);
    if (!st && celer_model_input_count(model) != 1)
        st = celer_errorf(CELER_ERR_INVALID, "%s: %d inputs, this example feeds one", argv[1],
                          celer_model_input_count(model));
    if (!st) st = celer_context_init(model, &ctx);
    if (!st) st = celer_context_run(ctx, &input, &outputs);
    for (int i = 0; !st && i < celer_model_output_count(model); i++) {
        const celer_tensor *t = &outputs[i];
        char shape[256];
        printf("%s %s %s", celer_model_output(model, i)->name, celer_dtype_name(t->dtype),
               celer_shape_str(&t->shape, shape, sizeof shape));
        int64_t n = celer_shape_numel(&t->shape);
        for (int64_t k = 0; k < n && k < 4 && t->dtype == CELER_FLOAT; k++) printf(" %g", ((const float *)t->data)[k]);
        printf("\n");
    }
    if (st) fprintf(stderr, "celer_embed: %s: %s\n", celer_status_name(st), celer_error_message());
    celer_context_free(ctx);
    celer_model_free(model);
    celer_arena_free(&arena);
    return st ? 1 : 0;
}
