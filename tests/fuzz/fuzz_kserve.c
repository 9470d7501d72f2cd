/* libFuzzer target for the KServe request decoders of the server. The input is split as
 *   byte 0:     decoder (% 3: 0 infer, 1 predict, 2 business objects) and tensor spec set (/ 3);
 *   bytes 1-2:  Inference-Header-Content-Length, little-endian (0xffff: header absent), for infer;
 *   the rest:   the request body (libFuzzer's exact-size copy, so a read past it is caught).
 * The spec sets are what the server builds: from models (any rank, fixed and variable dims,
 * scalars) for every decoder, from pipelines (rows first, defaults) for the object form. A clean
 * error is fine; a crash, leak, sanitizer report, or a decoded input that breaks the decoder's
 * promises (known name, the spec's dtype and rank, its fixed dims) is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/json.h"
#include "server/kserve.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const float v_default[3] = {0, 0, 0};
static const celer_tensor v_row = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {3}}, .data = (void *)v_default};
static const float age_default = 40;
static const celer_tensor age_row = {.dtype = CELER_FLOAT, .shape = {.rank = 0}, .data = (void *)&age_default};
static const celer_str country_default[1] = {{"?", 1}};
static const celer_tensor country_row = {.dtype = CELER_STRING, .shape = {.rank = 0}, .data = (void *)country_default};
static const double score_default[2] = {0.5, -1};
static const celer_tensor score_row = {.dtype = CELER_DOUBLE, .shape = {.rank = 1, .dims = {2}}, .data = (void *)score_default};

/* models: as tests/unit/test_kserve.c's; one fixed input (raw form); many dtypes, a scalar */
static const celer_kserve_tensor_spec model_xy[] = {
    {.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "y", .dtype = CELER_INT64, .rank = 1, .dims = {2}},
};
static const celer_kserve_tensor_spec model_img[] = {
    {.name = "img", .dtype = CELER_FLOAT, .rank = 2, .dims = {1, 3}},
};
static const celer_kserve_tensor_spec model_mixed[] = {
    {.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
    {.name = "b", .dtype = CELER_BOOL, .rank = 2, .dims = {-1, 2}},
    {.name = "h", .dtype = CELER_FLOAT16, .rank = 2, .dims = {2, -1}},
    {.name = "u", .dtype = CELER_UINT8, .rank = 2, .dims = {-1, -1}},
    {.name = "n", .dtype = CELER_INT32, .rank = 0},
};
/* pipelines: rows first, some fields with a default row */
static const celer_kserve_tensor_spec pipe_tabular[] = {
    {.name = "age", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}, .optional = true, .default_row = &age_row},
    {.name = "id", .dtype = CELER_INT64, .rank = 1, .dims = {-1}},
    {.name = "country", .dtype = CELER_STRING, .rank = 1, .dims = {-1}, .optional = true, .default_row = &country_row},
    {.name = "exclude", .dtype = CELER_INT64, .rank = 2, .dims = {-1, -1}},
    {.name = "v", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}, .optional = true, .default_row = &v_row},
    {.name = "flag", .dtype = CELER_BOOL, .rank = 1, .dims = {-1}},
};
static const celer_kserve_tensor_spec pipe_image[] = {
    {.name = "image", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
    {.name = "score", .dtype = CELER_DOUBLE, .rank = 2, .dims = {-1, 2}, .optional = true, .default_row = &score_row},
};

static const spec_set sets[] = {SET(model_xy), SET(model_img), SET(model_mixed), SET(pipe_tabular), SET(pipe_image)};
enum { N_MODEL_SETS = 3, N_SETS = sizeof sets / sizeof sets[0] };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int decoder = data[0] % 3, set_i = data[0] / 3 % N_SETS;
    if (decoder == 2 && set_i < N_MODEL_SETS) set_i = N_MODEL_SETS + set_i % (N_SETS - N_MODEL_SETS);
    const spec_set *set = &sets[set_i];
    unsigned header = data[1] | (unsigned)data[2] << 8;
    size_t json_len = header == 0xffff ? SIZE_MAX : header;
    const char *body = (const char *)data + 3;
    size_t len = size - 3;

    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 64u << 20); /* the server's request arena is capped too */
    celer_kserve_request req;
    celer_status st;
    if (decoder == 0) {
        st = celer_kserve_decode_infer(body, len, json_len, set->spec, set->n, &arena, &req);
    } else if (decoder == 1) {
        st = celer_kserve_decode_predict(body, len, set->spec, set->n, &arena, &req);
    } else {
        celer_json *root;
        st = celer_json_parse(body, len, &arena, &root);
        if (!st) st = celer_kserve_decode_object(root, set->spec, set->n, &arena, &req);
    }
    if (!st) {
        if (req.n_inputs < 0 || req.n_inputs > CELER_KSERVE_MAX_TENSORS) abort();
        for (int i = 0; i < req.n_inputs; i++) fuzz_check_input(&req.inputs[i], set);
        for (int i = 0; i < req.n_outputs; i++)
            if (!req.outputs[i].name) abort();
        for (int i = 0; i < req.n_params; i++)
            if (!req.param_keys[i] || !req.param_values[i]) abort();
    }
    celer_arena_free(&arena);
    return 0;
}
