/* Element type table, shapes and half-precision conversions. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The one table of element types: size, ONNX name and KServe v2 datatype name (NULL: none),
 * indexed by celer_dtype. */
static const struct {
    size_t size;
    const char *name, *kserve;
} dtype_table[CELER_DTYPE_COUNT] = {
    [CELER_UNDEFINED] = {0, "undefined", NULL},      [CELER_FLOAT] = {4, "float", "FP32"},
    [CELER_UINT8] = {1, "uint8", "UINT8"},           [CELER_INT8] = {1, "int8", "INT8"},
    [CELER_UINT16] = {2, "uint16", "UINT16"},        [CELER_INT16] = {2, "int16", "INT16"},
    [CELER_INT32] = {4, "int32", "INT32"},           [CELER_INT64] = {8, "int64", "INT64"},
    [CELER_STRING] = {sizeof(celer_str), "string", "BYTES"}, [CELER_BOOL] = {1, "bool", "BOOL"},
    [CELER_FLOAT16] = {2, "float16", "FP16"},        [CELER_DOUBLE] = {8, "double", "FP64"},
    [CELER_UINT32] = {4, "uint32", "UINT32"},        [CELER_UINT64] = {8, "uint64", "UINT64"},
    [CELER_COMPLEX64] = {8, "complex64", NULL},      [CELER_COMPLEX128] = {16, "complex128", NULL},
    [CELER_BFLOAT16] = {2, "bfloat16", "BF16"},
};

size_t celer_dtype_size(celer_dtype t) {
    return (unsigned)t < CELER_DTYPE_COUNT ? dtype_table[t].size : 0;
}

const char *celer_dtype_name(celer_dtype t) {
    return (unsigned)t < CELER_DTYPE_COUNT ? dtype_table[t].name : "?";
}

celer_dtype celer_dtype_from_name(const char *name) {
    for (int t = 1; t < CELER_DTYPE_COUNT; t++)
        if (strcmp(dtype_table[t].name, name) == 0) return (celer_dtype)t;
    return CELER_UNDEFINED;
}

const char *celer_dtype_kserve_name(celer_dtype t) {
    return (unsigned)t < CELER_DTYPE_COUNT ? dtype_table[t].kserve : NULL;
}

celer_dtype celer_dtype_from_kserve_name(const char *name) {
    for (int t = 1; name && t < CELER_DTYPE_COUNT; t++)
        if (dtype_table[t].kserve && strcmp(dtype_table[t].kserve, name) == 0) return (celer_dtype)t;
    return CELER_UNDEFINED;
}

bool celer_str_eq(celer_str a, celer_str b) { return a.len == b.len && (!a.len || !memcmp(a.data, b.data, a.len)); }

int celer_str_cmp(celer_str a, celer_str b) {
    int r = memcmp(a.data ? a.data : "", b.data ? b.data : "", CELER_MIN(a.len, b.len));
    return r ? r : a.len < b.len ? -1 : a.len > b.len;
}

celer_status celer_str_dup(celer_arena *arena, celer_str s, celer_str *out) {
    char *d = celer_arena_strndup(arena, s.len ? s.data : "", s.len);
    if (!d) return CELER_ERR_NOMEM;
    *out = (celer_str){d, s.len};
    return CELER_OK;
}

int64_t celer_shape_numel(const celer_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n)) return -1;
    }
    return n;
}

bool celer_shape_equal(const celer_shape *a, const celer_shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

char *celer_shape_str(const celer_shape *s, char *buf, size_t cap) {
    size_t n = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "[");
    for (int i = 0; i < s->rank && n < cap; i++) {
        if (s->dims[i] < 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s?", i ? "," : "");
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)s->dims[i]);
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

celer_status celer_shape_broadcast(const celer_shape *a, const celer_shape *b, celer_shape *out) {
    int rank = CELER_MAX(a->rank, b->rank);
    celer_shape r = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        int ia = a->rank - rank + i, ib = b->rank - rank + i;
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == db || db == 1)
            r.dims[i] = da;
        else if (da == 1)
            r.dims[i] = db;
        else {
            char sa[128], sb[128];
            return celer_errorf(CELER_ERR_SHAPE, "shapes %s and %s do not broadcast (axis %d: %lld vs %lld)",
                                celer_shape_str(a, sa, sizeof sa), celer_shape_str(b, sb, sizeof sb), i,
                                (long long)da, (long long)db);
        }
    }
    *out = r;
    return CELER_OK;
}

celer_status celer_tensor_bytes(const celer_tensor *t, size_t *out) {
    int64_t n = celer_shape_numel(&t->shape);
    if (n < 0 || celer_mul_size((size_t)n, celer_dtype_size(t->dtype), out))
        return celer_errorf(CELER_ERR_LIMIT, "tensor size overflows or is unknown");
    return CELER_OK;
}

/* ---- half precision ---- */
float celer_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            float f = ldexpf((float)mant, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t celer_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                   /* below smallest normal half */
        float a;
        memcpy(&a, &absx, 4);
        /* subnormal half: value / 2^-24, rounded to nearest even */
        float m = a * 16777216.0f;
        uint32_t r = (uint32_t)nearbyintf(m);
        return (uint16_t)(sign | r);
    }
    uint32_t exp = (absx >> 23) - 112, mant = absx & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float celer_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t celer_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
