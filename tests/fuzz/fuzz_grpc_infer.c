/* libFuzzer target for the gRPC ModelInferRequest decoder (grpc_codec.c). The input is
 *   byte 0:    the tensor spec set (% the number of sets);
 *   the rest:  the ModelInferRequest bytes (libFuzzer's exact-size copy, so a read past them is
 *              caught).
 * A decoded request is then checked against the decoder's promises (known name, the spec's dtype
 * and rank, its fixed dims, every byte readable), encoded back as a ModelInferResponse into a
 * capped buffer, and that response is walked with the reader. A clean error is fine; a crash,
 * leak or sanitizer report, or a broken promise, is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc_codec.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* as tests/fuzz/fuzz_kserve.c's model sets, and one input of every datatype */
static const celer_kserve_tensor_spec model_xy[] = {
    {.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "y", .dtype = CELER_INT64, .rank = 1, .dims = {2}},
};
static const celer_kserve_tensor_spec model_mixed[] = {
    {.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
    {.name = "b", .dtype = CELER_BOOL, .rank = 2, .dims = {-1, 2}},
    {.name = "h", .dtype = CELER_FLOAT16, .rank = 2, .dims = {2, -1}},
    {.name = "u", .dtype = CELER_UINT8, .rank = 2, .dims = {-1, -1}},
    {.name = "n", .dtype = CELER_INT32, .rank = 0},
};
static const celer_kserve_tensor_spec model_every[] = {
    {.name = "bool", .dtype = CELER_BOOL, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "u8", .dtype = CELER_UINT8, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "u16", .dtype = CELER_UINT16, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "u32", .dtype = CELER_UINT32, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "u64", .dtype = CELER_UINT64, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "i8", .dtype = CELER_INT8, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "i16", .dtype = CELER_INT16, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "i32", .dtype = CELER_INT32, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "i64", .dtype = CELER_INT64, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "f16", .dtype = CELER_FLOAT16, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "f32", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "f64", .dtype = CELER_DOUBLE, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "bf16", .dtype = CELER_BFLOAT16, .rank = 1, .dims = {-1}, .optional = true},
    {.name = "str", .dtype = CELER_STRING, .rank = 1, .dims = {-1}, .optional = true},
};

static const spec_set sets[] = {SET(model_xy), SET(model_mixed), SET(model_every)};
enum { N_SETS = sizeof sets / sizeof sets[0] };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const spec_set *set = &sets[data[0] % N_SETS];
    const uint8_t *msg = data + 1;
    size_t len = size - 1;

    char model[64], version[16];
    (void)celer_grpc_infer_target(msg, len, model, sizeof model, version, sizeof version);

    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 64u << 20); /* the server's request arena is capped too */
    celer_kserve_request req;
    celer_status st = celer_grpc_decode_infer(msg, len, set->spec, set->n, &arena, &req);
    if (!st) {
        if (req.n_inputs < 0 || req.n_inputs > CELER_KSERVE_MAX_TENSORS) abort();
        for (int i = 0; i < req.n_inputs; i++) fuzz_check_input(&req.inputs[i], set);
        for (int i = 0; i < req.n_outputs; i++)
            if (!req.outputs[i].name) abort();
        for (int i = 0; i < req.n_params; i++)
            if (!req.param_keys[i] || !req.param_values[i]) abort();
        if (req.timeout_us < 0) abort();
        /* the inputs answered as outputs (the requested ones among them, or all) */
        const char *names[CELER_KSERVE_MAX_TENSORS];
        celer_tensor outs[CELER_KSERVE_MAX_TENSORS];
        int n_outs = 0; /* an input in shared memory has no data here (the service reads it): not echoed */
        for (int i = 0; i < req.n_inputs; i++)
            if (!req.inputs[i].shm.region) names[n_outs] = req.inputs[i].name, outs[n_outs++] = req.inputs[i].tensor;
        celer_jbuf out;
        celer_jbuf_init(&out, 1u << 20);
        if (!celer_grpc_encode_infer(&req, model, version, names, outs, n_outs, &out)) {
            const uint8_t *p = out.data ? (const uint8_t *)out.data : (const uint8_t *)""; /* empty: never written */
            celer_pb_reader r = {p, p + out.len};
            celer_pb_field f;
            int k;
            while ((k = celer_pb_next(&r, &f, "response")) > 0) {}
            if (k < 0) abort(); /* what the encoder writes must read back */
        }
        celer_jbuf_free(&out);
    }
    celer_arena_free(&arena);
    return 0;
}
