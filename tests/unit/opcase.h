/* Shared by the operator-family tests (test_shape.c, test_indexing.c): literal tensors and
 * attributes in one line, running one op, checking results, and a random-input robustness loop. */
#ifndef CELER_OPCASE_H
#define CELER_OPCASE_H

#include "testutil.h"

#define NARGS(T, ...) ((int)(sizeof((T[]){__VA_ARGS__}) / sizeof(T)))
#define TEN(dt, ptr, ...)                                                                          \
    ((celer_tensor){.dtype = dt,                                                                   \
                    .shape = {.rank = NARGS(int64_t, __VA_ARGS__), .dims = {__VA_ARGS__}},         \
                    .data = (void *)(ptr)})
#define SCALAR(dt, ptr) ((celer_tensor){.dtype = dt, .shape = {.rank = 0}, .data = (void *)(ptr)})
#define I64(...) ((int64_t[]){__VA_ARGS__})
#define I32(...) ((int32_t[]){__VA_ARGS__})
#define F32(...) ((float[]){__VA_ARGS__})
#define AINT(nm, v) {.name = nm, .type = CELER_ATTR_INT, .i = (v)}
#define AFLOAT(nm, v) {.name = nm, .type = CELER_ATTR_FLOAT, .f = (v)}
#define ASTR(nm, v) {.name = nm, .type = CELER_ATTR_STRING, .s = (v), .s_len = sizeof(v) - 1}
#define AINTS(nm, ...)                                                                             \
    {.name = nm, .type = CELER_ATTR_INTS, .n = NARGS(int64_t, __VA_ARGS__),                        \
     .ints = (const int64_t[]){__VA_ARGS__}}
#define AT(...) (const celer_onnx_attr[]){__VA_ARGS__}, NARGS(celer_onnx_attr, __VA_ARGS__)
#define NOAT NULL, 0
#define IN(...)                                                                                    \
    (const celer_tensor *const[]){__VA_ARGS__}, NARGS(const celer_tensor *, __VA_ARGS__)

/* Runs `op` with the given attributes and inputs (NULL = omitted); prints the message on failure. */
celer_status tu_run(const char *op, int opset, const celer_onnx_attr *at, int nat, const celer_tensor *const *in,
                    int n_in, celer_tensor *out, int n_out);
void tu_check_shape(const celer_tensor *t, int rank, const int64_t *dims);
void tu_check_data(const celer_tensor *t, const void *want, size_t bytes);
/* Asserts `st` == `want` and that the thread's message contains `substr`. */
void tu_expect_err(celer_status st, celer_status want, const char *substr);
#define EXPECT_SHAPE(t, ...) tu_check_shape(t, NARGS(int64_t, __VA_ARGS__), I64(__VA_ARGS__))
#define EXPECT_RANK0(t) assert_int_equal((t)->shape.rank, 0)
#define EXPECT_I64(t, ...) tu_check_data(t, I64(__VA_ARGS__), sizeof(I64(__VA_ARGS__)))
#define EXPECT_F32(t, ...) tu_check_data(t, F32(__VA_ARGS__), sizeof(F32(__VA_ARGS__)))
#define EXPECT_EMPTY(t) assert_int_equal(celer_shape_numel(&(t)->shape), 0)

/* Random inputs (rank 0-3, small and extreme int64 values, strings, omitted inputs) and random
 * attributes for each case, `iters` times: any status is fine, a crash or sanitizer report is not. */
typedef struct tu_fuzz_case {
    const char *op;
    int opset, n_in, n_out;
} tu_fuzz_case;
void tu_fuzz_ops(const tu_fuzz_case *cases, size_t n_cases, int iters);

#endif
