/* Implementation of opcase.h. */
#include <stdio.h>
#include <string.h>

#include "opcase.h"

celer_status tu_run(const char *op, int opset, const celer_onnx_attr *at, int nat,
                    const celer_tensor *const *in, int n_in, celer_tensor *out, int n_out) {
    static const char *const ins[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"};
    static const char *const outs[] = {"o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7"};
    const char *in_names[8];
    for (int i = 0; i < n_in && i < 8; i++) in_names[i] = in[i] ? ins[i] : "";
    celer_onnx_node node = {.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                            .n_outputs = n_out, .n_attrs = nat, .inputs = in_names,
                            .outputs = outs, .attrs = at};
    celer_status st = tu_run_op(&node, opset, in, n_in, out, n_out);
    if (st) printf("    (%s: %s)\n", op, celer_error_message());
    return st;
}

void tu_check_shape(const celer_tensor *t, int rank, const int64_t *dims) {
    assert_int_equal(t->shape.rank, rank);
    for (int i = 0; i < rank; i++) assert_int_equal(t->shape.dims[i], dims[i]);
}

void tu_check_data(const celer_tensor *t, const void *want, size_t bytes) {
    size_t have = 0;
    assert_int_equal(celer_tensor_bytes(t, &have), 0);
    assert_int_equal(have, bytes);
    assert_memory_equal(t->data, want, bytes);
}
void tu_expect_err(celer_status st, celer_status want, const char *substr) {
    assert_int_equal(st, want);
    if (!strstr(celer_error_message(), substr)) {
        printf("message '%s' lacks '%s'\n", celer_error_message(), substr);
        fail();
    }
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t rnd_value(uint64_t *s) {
    static const int64_t odd[] = {INT64_MAX, INT64_MIN, 1LL << 40, -(1LL << 40), 7};
    return rnd(s) % 4 ? (int64_t)(rnd(s) % 9) - 4 : odd[rnd(s) % CELER_ARRAY_LEN(odd)];
}

void tu_fuzz_ops(const tu_fuzz_case *cases, size_t n_cases, int iters) {
    static const celer_dtype types[] = {CELER_FLOAT, CELER_INT64, CELER_INT32, CELER_BOOL,
                                        CELER_STRING};
    static const char *const modes[] = {"constant", "reflect", "edge", "DCR", "CRD", "add", "mul",
                                        "none", "bogus"};
    static const char *const names[] = {"axis", "batch_dims", "k", "blocksize", "sorted",
                                        "upper", "allowzero", "start", "end", "time_axis",
                                        "batch_axis", "dtype"};
    static const char *const list_names[] = {"perm", "axes", "starts", "ends", "pads", "split"};
    static celer_str strs[256 * sizeof(int64_t) / sizeof(celer_str)]; /* fills a buf[i] exactly */
    for (size_t i = 0; i < CELER_ARRAY_LEN(strs); i++) strs[i] = i % 3 ? (celer_str){"s", 1} : (celer_str){"", 0};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t c = 0; c < n_cases; c++) {
        int ok = 0;
        for (int it = 0; it < iters; it++) {
            int64_t buf[5][256];
            celer_tensor t[5];
            const celer_tensor *in[5];
            bool same = rnd(&seed) % 3 == 0; /* inputs alike: reaches the success paths */
            for (int i = 0; i < cases[c].n_in; i++) {
                celer_dtype dt = i == 0 ? types[rnd(&seed) % CELER_ARRAY_LEN(types)]
                                        : rnd(&seed) % 5 ? CELER_INT64 : types[rnd(&seed) % 4];
                t[i] = (celer_tensor){.dtype = dt, .shape = {.rank = (int)(rnd(&seed) % (i ? 2 : 5))},
                                      .data = buf[i]};
                for (int d = 0; d < t[i].shape.rank; d++)
                    t[i].shape.dims[d] = (int64_t)(rnd(&seed) % (i ? 5 : 4));
                if (same && i > 0) {
                    t[i].dtype = dt = t[0].dtype;
                    t[i].shape = t[0].shape;
                }
                for (int k = 0; k < 256; k++) buf[i][k] = rnd_value(&seed);
                /* int32 gets small values only: int32 extremes ask for valid multi-GB outputs
                 * (a Range from INT32_MIN), which only slow the test down */
                if (dt == CELER_INT32)
                    for (int k = 0; k < 256; k++)
                        ((int32_t *)buf[i])[k] = (int32_t)(rnd(&seed) % 9) - 4;
                if (dt == CELER_BOOL)
                    for (int k = 0; k < 256; k++) ((uint8_t *)buf[i])[k] = (uint8_t)(buf[i][k] & 1);
                if (dt == CELER_STRING) memcpy(buf[i], strs, sizeof strs);
                in[i] = rnd(&seed) % 16 || i == 0 ? &t[i] : NULL; /* sometimes omitted */
            }
            celer_onnx_attr at[10];
            int64_t lists[10][4];
            int nat = 0;
            for (int a = (int)(rnd(&seed) % 4); a > 0; a--) {
                const char *nm = names[rnd(&seed) % CELER_ARRAY_LEN(names)];
                at[nat++] = (celer_onnx_attr){.name = nm, .type = CELER_ATTR_INT, .i = rnd_value(&seed)};
            }
            for (int l = (int)(rnd(&seed) % 4); l > 0; l--) {
                const char *nm = list_names[rnd(&seed) % CELER_ARRAY_LEN(list_names)];
                int n = (int)(rnd(&seed) % 5);
                for (int k = 0; k < n; k++) lists[nat][k] = rnd_value(&seed);
                at[nat] = (celer_onnx_attr){.name = nm, .type = CELER_ATTR_INTS, .n = n,
                                            .ints = lists[nat]};
                nat++;
            }
            if (rnd(&seed) % 2) {
                const char *m = modes[rnd(&seed) % CELER_ARRAY_LEN(modes)];
                at[nat++] = (celer_onnx_attr){.name = rnd(&seed) % 2 ? "mode" : "reduction",
                                              .type = CELER_ATTR_STRING, .s = m, .s_len = strlen(m)};
            }
            static const char *const ins[] = {"i0", "i1", "i2", "i3", "i4"};
            static const char *const outs[] = {"o0", "o1", "o2", "o3"};
            celer_onnx_node node = {.name = "f", .op_type = cases[c].op, .domain = "",
                                    .n_inputs = cases[c].n_in, .n_outputs = cases[c].n_out,
                                    .n_attrs = nat, .inputs = ins, .outputs = outs, .attrs = at};
            celer_tensor out[4];
            memset(out, 0, sizeof out);
            ok += tu_run_op(&node, cases[c].opset, in, cases[c].n_in, out, cases[c].n_out) == 0;
            tu_free_outputs(out, cases[c].n_out);
        }
        printf("    fuzz %s-%d: %d of %d runs succeeded\n", cases[c].op, cases[c].opset, ok, iters);
    }
}

