/* libFuzzer target for what pipelines take from outside. The first byte picks the path:
 *   0: pipeline.yaml text through the loader, then a run on the inputs' defaults (up to the first
 *      model call);
 *   1: bytes as an image through decode_image -> resize -> center_crop -> to_chw;
 *   2: a request body through the business-object JSON decoder of the server.
 * A clean error is fine; a crash, leak or sanitizer report is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"
#include "server/kserve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char image_yaml[] = "inputs: [{name: image, dtype: BYTES}]\n"
                                 "steps:\n"
                                 "  - decode_image: {input: image, channels: 3}\n"
                                 "  - resize: {input: image, shorter_side: 16}\n"
                                 "  - center_crop: {input: image, size: [8, 8]}\n"
                                 "  - to_chw: {input: image, output: chw}\n"
                                 "outputs: [chw]\n";

static void run_defaults(const celer_pipeline *p, const celer_tensor *input) {
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 64u << 20);
    celer_pipeline_run *r;
    if (!celer_pipeline_run_init(p, &arena, &r)) {
        if (!input || !celer_pipeline_set_input(r, 0, input)) {
            const celer_pipeline_call *call;
            celer_pipeline_run_steps(r, &call);
        }
        celer_pipeline_run_end(r); /* decoded images live outside the arena */
    }
    celer_arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    celer_pipeline *p = NULL;
    switch (data[0] % 3) {
    case 0:
        if (!celer_pipeline_parse(text, len, "fuzz.yaml", "/nonexistent", &p)) run_defaults(p, NULL);
        break;
    case 1:
        if (!celer_pipeline_parse(image_yaml, sizeof image_yaml - 1, "image.yaml", "/nonexistent", &p)) {
            char *copy = malloc(len + 1);
            if (copy) {
                memcpy(copy, text, len);
                copy[len] = 0;
                celer_str els[1] = {{copy, len}};
                celer_tensor t = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {1}}, .data = els};
                run_defaults(p, &t);
                free(copy);
            }
        }
        break;
    default: {
        static const celer_kserve_tensor_spec spec[] = {
            {.name = "age", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}},
            {.name = "id", .dtype = CELER_INT64, .rank = 1, .dims = {-1}},
            {.name = "country", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
            {.name = "exclude", .dtype = CELER_INT64, .rank = 2, .dims = {-1, -1}},
            {.name = "v", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}},
            {.name = "flag", .dtype = CELER_BOOL, .rank = 1, .dims = {-1}},
        };
        celer_arena arena;
        celer_arena_init(&arena, 64 * 1024, 64u << 20);
        celer_json *root;
        celer_kserve_request req;
        if (!celer_json_parse(text, len, &arena, &root))
            celer_kserve_decode_object(root, spec, (int)(sizeof spec / sizeof spec[0]), &arena, &req);
        celer_arena_free(&arena);
    }
    }
    celer_pipeline_free(p);
    return 0;
}
