/* Helpers shared by the unit tests (cmocka). */
#ifndef CELER_TESTUTIL_H
#define CELER_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"
#include "onnx/onnx.h"
#include "ops/ops.h"
#include "tensor/tensor.h"

/* Runs one operator through the kernel table as the executor would (find, infer_types, init,
 * reshape, run), with `node` describing attributes and input/output counts. Output buffers are
 * malloc'ed into out[i].data (caller frees with tu_free_outputs). Returns the first failing
 * status; the message is in celer_error_message(). */
celer_status tu_run_op(const celer_onnx_node *node, int opset, const celer_tensor *const *in,
                       int n_in, celer_tensor *out, int n_out);
void tu_free_outputs(celer_tensor *out, int n_out);

/* Deterministic pseudo-random floats in [lo, hi) (xorshift). */
void tu_fill_random(float *p, size_t n, float lo, float hi, uint64_t *seed);
/* max |a-b| / max(|b|, tiny) over n floats. */
double tu_max_rel_diff(const float *a, const float *b, size_t n);

/* ---- images ---- */
/* A PNG of w x h `pixels` (libpng's simplified format: PNG_FORMAT_RGB, _GRAY, _RGBA), malloc'd
 * (caller frees); *len its size. */
uint8_t *tu_png(int w, int h, uint32_t format, const uint8_t *pixels, size_t *len);

/* ---- STRING tensors (elements are celer_str) ---- */
/* n C strings (NULL: "") as celer_str elements, in memory freed at exit. */
celer_str *tu_strs(const char *const *v, size_t n);
#define TU_STRS(...)                                    \
    tu_strs((const char *const[]){__VA_ARGS__},         \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* A string literal as one element, NULs inside included: TU_LIT("a\0b") has length 3. */
#define TU_LIT(s) ((celer_str){(s), sizeof(s) - 1})
/* Element i of STRING tensor t as a C string, for assert_string_equal on text without NULs. */
#define TU_S(t, i) (((const celer_str *)(t)->data)[i].data)
/* Asserts element i of STRING tensor t is exactly the bytes of `want`. */
#define TU_ASSERT_STR(t, i, want)                                                  \
    do {                                                                           \
        celer_str got_ = ((const celer_str *)(t)->data)[i], want_ = (want);        \
        assert_int_equal(got_.len, want_.len);                                     \
        if (want_.len) assert_memory_equal(got_.data, want_.data, want_.len);      \
    } while (0)

#endif
