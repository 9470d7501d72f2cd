/* tensor: element types, shapes, tensors (views over memory someone else owns), .npy I/O. */
#ifndef CELER_TENSOR_H
#define CELER_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Element types, numbered as ONNX's TensorProto.DataType so files map without a table. */
typedef enum celer_dtype {
    CELER_UNDEFINED = 0,
    CELER_FLOAT = 1,
    CELER_UINT8 = 2,
    CELER_INT8 = 3,
    CELER_UINT16 = 4,
    CELER_INT16 = 5,
    CELER_INT32 = 6,
    CELER_INT64 = 7,
    CELER_STRING = 8, /* elements are celer_str (bytes + length), the bytes owned by whoever owns the tensor */
    CELER_BOOL = 9,   /* one byte, 0 or 1 */
    CELER_FLOAT16 = 10,
    CELER_DOUBLE = 11,
    CELER_UINT32 = 12,
    CELER_UINT64 = 13,
    CELER_COMPLEX64 = 14,
    CELER_COMPLEX128 = 15,
    CELER_BFLOAT16 = 16,
    CELER_DTYPE_COUNT
} celer_dtype;

/* The element of a CELER_STRING tensor: a byte string that may hold any byte, NUL included
 * (KServe BYTES, ONNX string). Readers use `len` only; bytes made by celer keep a NUL at
 * data[len] so they can be printed, but that NUL is not part of the value. `data` may be NULL
 * when len is 0. Elements are copied by value (sizeof(celer_str) bytes), the bytes are shared. */
typedef struct celer_str {
    const char *data;
    size_t len;
} celer_str;

/* A celer_str over a NUL-terminated C string (NULL gives the empty string). */
static inline celer_str celer_str_c(const char *s) {
    size_t n = 0;
    if (s)
        while (s[n]) n++;
    return (celer_str){s ? s : "", n};
}
/* Byte equality of two strings. */
bool celer_str_eq(celer_str a, celer_str b);
/* Byte-wise order (memcmp, then the shorter first): <0, 0, >0. */
int celer_str_cmp(celer_str a, celer_str b);
/* Copies s into `arena` with a NUL after its bytes; *out points to the copy. NOMEM when the
 * arena is full. The copy is owned by the arena. */
celer_status celer_str_dup(celer_arena *arena, celer_str s, celer_str *out);

/* Bit for a dtype in a dtype set (kernel tables use sets). */
#define CELER_DT(t) (1u << (t))
#define CELER_DTS_FLOATS (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE) | CELER_DT(CELER_FLOAT16))
#define CELER_DTS_SINTS \
    (CELER_DT(CELER_INT8) | CELER_DT(CELER_INT16) | CELER_DT(CELER_INT32) | CELER_DT(CELER_INT64))
#define CELER_DTS_UINTS \
    (CELER_DT(CELER_UINT8) | CELER_DT(CELER_UINT16) | CELER_DT(CELER_UINT32) | CELER_DT(CELER_UINT64))
#define CELER_DTS_INTS (CELER_DTS_SINTS | CELER_DTS_UINTS)
#define CELER_DTS_NUMERIC (CELER_DTS_FLOATS | CELER_DTS_INTS)
#define CELER_DTS_ALL (CELER_DTS_NUMERIC | CELER_DT(CELER_BOOL) | CELER_DT(CELER_STRING) | CELER_DT(CELER_BFLOAT16))

/* Bytes per element; 0 for CELER_UNDEFINED or an unknown code. */
size_t celer_dtype_size(celer_dtype t);
/* Lower-case ONNX name ("float", "int64", "float16"); "?" for unknown codes. */
const char *celer_dtype_name(celer_dtype t);
/* Parses an ONNX name back ("float" -> CELER_FLOAT); CELER_UNDEFINED when unknown. */
celer_dtype celer_dtype_from_name(const char *name);
/* KServe v2 / Triton datatype name ("FP32", "BYTES"...); NULL for types KServe has none for. */
const char *celer_dtype_kserve_name(celer_dtype t);
/* "FP32" -> CELER_FLOAT ...; CELER_UNDEFINED when unknown. */
celer_dtype celer_dtype_from_kserve_name(const char *name);

#define CELER_MAX_RANK 8

/* A shape. In static contexts a dim of -1 means "unknown" (symbolic); run-time shapes are >= 0. */
typedef struct celer_shape {
    int rank;
    int64_t dims[CELER_MAX_RANK];
} celer_shape;

/* Element count of a fully known shape; -1 when a dim is unknown or the product overflows. */
int64_t celer_shape_numel(const celer_shape *s);
bool celer_shape_equal(const celer_shape *a, const celer_shape *b);
/* Writes "[1,3,224,224]" (unknown dims as "?") into buf; returns buf. */
char *celer_shape_str(const celer_shape *s, char *buf, size_t cap);
/* Numpy-style broadcast of a and b into out; CELER_ERR_SHAPE (message set) when incompatible. */
celer_status celer_shape_broadcast(const celer_shape *a, const celer_shape *b, celer_shape *out);

/* A tensor is a view: dtype, shape and a pointer to row-major contiguous elements. It never owns
 * `data`; the owner is stated by whoever hands the tensor out (model arena, execution arena,
 * caller). */
typedef struct celer_tensor {
    celer_dtype dtype;
    celer_shape shape;
    void *data;
} celer_tensor;

/* Byte size of a tensor with known shape; sets *out and returns 0, or CELER_ERR_LIMIT on overflow. */
celer_status celer_tensor_bytes(const celer_tensor *t, size_t *out);

/* ---- half-precision conversions ---- */
float celer_half_to_float(uint16_t h);
uint16_t celer_float_to_half(float f);
float celer_bf16_to_float(uint16_t h);
uint16_t celer_float_to_bf16(float f);

/* ---- .npy files (NumPy format 1.0-3.0, little-endian, C order) ---- */

/* Reads `path` into a tensor whose data (and, for strings, the strings) are allocated in `arena`.
 * Fortran order, big-endian data, object arrays and rank > CELER_MAX_RANK are rejected with a
 * message naming the file. Unicode string arrays ('<U') are converted to UTF-8 strings. */
celer_status celer_npy_read(const char *path, celer_arena *arena, celer_tensor *out);
/* Parses an in-memory .npy image; same ownership as celer_npy_read. */
celer_status celer_npy_parse(const void *bytes, size_t len, const char *what, celer_arena *arena,
                             celer_tensor *out);
/* A .npy file read whole into pages of its own (read-only), its tensor pointing into them, for
 * large tables used in place (a recommender's item matrix): parsed without a second copy, and
 * unchanged when the file is overwritten or truncated later (a file mapping would fault). */
typedef struct celer_npy_map {
    celer_tensor tensor; /* data points into `map`; valid until celer_npy_map_close */
    void *map;
    size_t len;
} celer_npy_map;
/* Reads `path`. Numeric dtypes only, with data aligned to the element size (NumPy pads headers
 * to 64 bytes, so files it writes qualify); anything else is refused naming the file. On success
 * *out owns the mapping: celer_npy_map_close. */
celer_status celer_npy_map_open(const char *path, celer_npy_map *out);
void celer_npy_map_close(celer_npy_map *m);
/* Writes `t` to `path` (version 1.0 header). Strings are written as '<U' arrays when they are all
 * UTF-8, else as '|S' byte arrays. */
celer_status celer_npy_write(const char *path, const celer_tensor *t);

#endif
