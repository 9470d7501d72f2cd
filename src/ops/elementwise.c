/* elementwise: unary math and activations (Gelu and Mish among them), binary arithmetic / logic /
 * bitwise / comparison with numpy broadcasting, variadic Max/Min/Sum/Mean, Where, Cast and
 * CastLike.
 *
 * How it is built:
 *  - Inner loops are generated per element type by X-macros over type lists (TL_*): each list
 *    entry names the ONNX type, storage type T, compute type C (float for float16/bfloat16),
 *    arithmetic type U (unsigned for integers, so overflow wraps instead of being undefined),
 *    load/store conversions and a safe conversion CV into C (float -> int saturates).
 *  - Loops run in blocks of EW_BLOCK: each block is computed into a small array and then stored,
 *    which keeps in-place use correct and lets GCC vectorize at -O2 (its "very cheap" cost model
 *    only vectorizes loops whose trip count is a multiple of the vector width).
 *  - Broadcasting collapses the output shape into as few dims as possible (bc_plan), then walks
 *    the outer dims with an odometer and calls the loop on contiguous inner rows; in a row every
 *    input either advances by one element or stays on one element (a scalar).
 *  - Each op is one row of `ops[]` (name, kind, loop tables, attribute names/defaults); the
 *    kernel table at the end maps ONNX versions and type sets to the generic kind handlers.
 * Where the spec is silent: integer x / 0 and x % 0 give 0 (and INT_MIN / -1 wraps) instead of
 * trapping; Max/Min propagate NaN like numpy; float -> int casts saturate (NaN -> 0); Cast to
 * string writes numpy-style shortest text ("NaN", "INF", "-INF" for the special values) into a
 * per-context buffer; Where on strings copies the pointers (they point into the inputs). */
/* Nothing here reads the floating-point exception flags, so let GCC if-convert float selects
 * (clamps, NaN checks); with trapping math on it keeps them as branches and will not vectorize
 * loops like fast_expf's. Results are unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "ops.h"
#include "vmath.h"

#define WHO(info) celer_ops_who((info), who, sizeof who)
#define EW_BLOCK 16
/* Elements per thread below which a loop stays on one thread, and the granule of the split (a
 * whole number of cache lines of the output for any type). The workers spin between the regions
 * of an inference (GOMP_SPINCOUNT, src/cli/main.c), so a split costs about 0.5 us, not the 8 us
 * of waking a sleeping team. Measured on the shared 2-core Zen 4 (chains of 10 nodes, 1 thread
 * against 2 always split, min of 3 alternating rounds): Sigmoid 16K 6.5 -> 4.0 us a node, 64K
 * 25.8 -> 13.6; Relu 16K 0.69 -> 1.09 (loses), 64K 2.56 -> 2.03; Add 16K 1.27 -> 1.54, 64K
 * 4.9 -> 4.6, 256K 22.4 -> 13.2. So loops of tens of instructions an element split from 4K
 * elements a thread, the memory-bound ones of a few from 32K. */
#define EW_PAR_MIN_HEAVY ((size_t)1 << 12)
#define EW_PAR_MIN_CHEAP ((size_t)1 << 15)
#define EW_PAR_ALIGN 64
/* Cast to string: bytes reserved per output string (longest is a double, 24 chars + NUL). */
#define EW_STR_SLOT 32
#define EW_STR_CAP ((size_t)1 << 30)

/* Per-node parameters handed to every loop. */
typedef struct ew_params {
    float alpha, beta, gamma; /* activation attributes (meaning per op, see ops[]) */
    int flag;                 /* Mod: fmod; BitShift: 1 = left; IsInf: 1 = positive, 2 = negative */
    const void *lo, *hi;      /* Clip: bounds as one element of the input's type; NULL = none */
    celer_dtype ta, tb;       /* Pow with mixed types: base and exponent types */
} ew_params;

/* y[i] = f(x[i]) over n contiguous elements. */
typedef void (*unary_fn)(void *y, const void *x, size_t n, const ew_params *p);
/* y[i] = f(x0[i*s0], x1[i*s1], ...) over n elements; bit k of `contig` says input k advances
 * (stride 1) rather than staying on one element (stride 0). */
typedef void (*loop_fn)(void *y, const void *const *x, unsigned contig, size_t n,
                        const ew_params *p);

/* ---- safe conversions ---- */

/* double -> int64 with NaN -> 0 and saturation (a plain C cast is undefined out of range). */
static inline int64_t sat_i64(double v) {
    if (v != v) return 0;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)v;
}
static inline uint64_t sat_u64(double v) {
    if (v != v) return 0;
    if (v < 0) return (uint64_t)sat_i64(v); /* negative values wrap as they do through int64 */
    if (v >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)v;
}

#define LD_ID(x) (x)
#define ST_ID(x) (x)
#define CV_FLT(x) ((float)(x))
#define CV_DBL(x) ((double)(x))
/* Narrow integers go through int64 and wrap, as numpy and most runtimes do. */
#define CV_INT(T, x) \
    _Generic((x), float: (T)sat_i64(x), double: (T)sat_i64(x), default: (T)(x))
#define CV_I8(x) CV_INT(int8_t, x)
#define CV_I16(x) CV_INT(int16_t, x)
#define CV_I32(x) CV_INT(int32_t, x)
#define CV_I64(x) CV_INT(int64_t, x)
#define CV_U8(x) CV_INT(uint8_t, x)
#define CV_U16(x) CV_INT(uint16_t, x)
#define CV_U32(x) CV_INT(uint32_t, x)
#define CV_U64(x) _Generic((x), float: sat_u64(x), double: sat_u64(x), default: (uint64_t)(x))
#define CV_BOOL(x) ((uint8_t)((x) != 0))

/* ---- type lists: X(dtype, suffix, T, C, U, LD, ST, CV, extra...) ---- */
#define TL_FLT(X, ...)                                                                          \
    X(CELER_FLOAT, f32, float, float, float, LD_ID, ST_ID, CV_FLT, __VA_ARGS__)                 \
    TL_FLT_NOT32(X, __VA_ARGS__)
/* the float types but float itself (for ops whose float loop is written apart) */
#define TL_FLT_NOT32(X, ...)                                                                    \
    X(CELER_DOUBLE, f64, double, double, double, LD_ID, ST_ID, CV_DBL, __VA_ARGS__)             \
    X(CELER_FLOAT16, f16, uint16_t, float, float, celer_half_to_float, celer_float_to_half,     \
      CV_FLT, __VA_ARGS__)                                                                      \
    X(CELER_BFLOAT16, bf16, uint16_t, float, float, celer_bf16_to_float, celer_float_to_bf16,   \
      CV_FLT, __VA_ARGS__)
#define TL_SINT(X, ...)                                                                         \
    X(CELER_INT8, i8, int8_t, int8_t, uint32_t, LD_ID, ST_ID, CV_I8, __VA_ARGS__)               \
    X(CELER_INT16, i16, int16_t, int16_t, uint32_t, LD_ID, ST_ID, CV_I16, __VA_ARGS__)          \
    X(CELER_INT32, i32, int32_t, int32_t, uint32_t, LD_ID, ST_ID, CV_I32, __VA_ARGS__)          \
    X(CELER_INT64, i64, int64_t, int64_t, uint64_t, LD_ID, ST_ID, CV_I64, __VA_ARGS__)
#define TL_UINT(X, ...)                                                                         \
    X(CELER_UINT8, u8, uint8_t, uint8_t, uint32_t, LD_ID, ST_ID, CV_U8, __VA_ARGS__)            \
    X(CELER_UINT16, u16, uint16_t, uint16_t, uint32_t, LD_ID, ST_ID, CV_U16, __VA_ARGS__)       \
    X(CELER_UINT32, u32, uint32_t, uint32_t, uint32_t, LD_ID, ST_ID, CV_U32, __VA_ARGS__)       \
    X(CELER_UINT64, u64, uint64_t, uint64_t, uint64_t, LD_ID, ST_ID, CV_U64, __VA_ARGS__)
#define TL_BOOL(X, ...) \
    X(CELER_BOOL, b8, uint8_t, uint8_t, uint32_t, LD_ID, ST_ID, CV_BOOL, __VA_ARGS__)
#define TL_INT(X, ...) TL_SINT(X, __VA_ARGS__) TL_UINT(X, __VA_ARGS__)
#define TL_FS(X, ...) TL_FLT(X, __VA_ARGS__) TL_SINT(X, __VA_ARGS__)
#define TL_NUM(X, ...) TL_FLT(X, __VA_ARGS__) TL_INT(X, __VA_ARGS__)

/* Loop functions of float32 (the type models run in) are also built for AVX2 and AVX-512
 * (CELER_VECTOR_CLONES, picked at load time); the other types keep one portable version, which
 * keeps the binary from tripling in size for loops that rarely run on big tensors. */
#define EW_CLONES_f32 CELER_VECTOR_CLONES
#define EW_CLONES_f64
#define EW_CLONES_f16
#define EW_CLONES_bf16
#define EW_CLONES_i8
#define EW_CLONES_i16
#define EW_CLONES_i32
#define EW_CLONES_i64
#define EW_CLONES_u8
#define EW_CLONES_u16
#define EW_CLONES_u32
#define EW_CLONES_u64
#define EW_CLONES_b8
#define EW_CLONES(sfx) EW_CLONES_##sfx

/* Table entry for function op_suffix at index dtype. */
#define TBL(dt, sfx, T, C, U, LD, ST, CV, op) [dt] = op##_##sfx,

/* Blocked loop: BODY computes element i into *r_ (a block temporary, or y[i] in the tail). */
#define EW_LOOP(OT, y, n, ...)                                                                 \
    do {                                                                                       \
        size_t b_ = 0;                                                                         \
        for (; b_ + EW_BLOCK <= (n); b_ += EW_BLOCK) {                                         \
            OT t_[EW_BLOCK];                                                                   \
            for (size_t j_ = 0; j_ < EW_BLOCK; j_++) {                                         \
                const size_t i = b_ + j_;                                                      \
                OT *const r_ = &t_[j_];                                                        \
                __VA_ARGS__;                                                                   \
            }                                                                                  \
            memcpy(&(y)[b_], t_, sizeof t_);                                                   \
        }                                                                                      \
        for (; b_ < (n); b_++) {                                                               \
            const size_t i = b_;                                                               \
            OT *const r_ = &(y)[b_];                                                           \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
    } while (0)

#define TYPEDEFS(C, U)                       \
    typedef C ct __attribute__((unused)); \
    typedef U ut __attribute__((unused))

/* Unary: EXPR of `v` (type ct) gives y in T. */
#define DEF_UNARY(dt, sfx, T, C, U, LD, ST, CV, op, EXPR)                                      \
    EW_CLONES(sfx)                                                                             \
    static void op##_##sfx(void *yv, const void *xv, size_t n, const ew_params *p) {           \
        TYPEDEFS(C, U);                                                                        \
        (void)p;                                                                               \
        const T *x = xv;                                                                       \
        T *y = yv;                                                                             \
        EW_LOOP(T, y, n, const ct v = LD(x[i]); *r_ = ST(CV(EXPR)));                           \
    }
/* Predicate: EXPR of `v` gives a bool. */
#define DEF_PRED(dt, sfx, T, C, U, LD, ST, CV, op, EXPR)                                       \
    static void op##_##sfx(void *yv, const void *xv, size_t n, const ew_params *p) {          \
        TYPEDEFS(C, U);                                                                        \
        (void)p;                                                                               \
        const T *x = xv;                                                                       \
        uint8_t *y = yv;                                                                       \
        EW_LOOP(uint8_t, y, n, const ct v = LD(x[i]); *r_ = (uint8_t)((EXPR) != 0));           \
    }

/* Binary body: OUT is an expression of `a`, `b` (type ct) yielding the stored OT value. The four
 * stride patterns get their own loops so the common ones stay simple enough to vectorize. */
#define DEF_BIN_BODY(CLONES, name, T, C, U, LD, OT, OUT)                                       \
    CLONES                                                                                     \
    static void name(void *yv, const void *const *xv, unsigned m, size_t n,                    \
                     const ew_params *p) {                                                     \
        TYPEDEFS(C, U);                                                                        \
        (void)p;                                                                               \
        const T *xa = xv[0], *xb = xv[1];                                                      \
        OT *y = yv;                                                                            \
        switch (m & 3u) {                                                                      \
        case 3: EW_LOOP(OT, y, n, const ct a = LD(xa[i]); const ct b = LD(xb[i]); *r_ = OUT); \
            break;                                                                             \
        case 1: {                                                                              \
            const ct b = LD(xb[0]);                                                            \
            EW_LOOP(OT, y, n, const ct a = LD(xa[i]); *r_ = OUT);                              \
            break;                                                                             \
        }                                                                                      \
        case 2: {                                                                              \
            const ct a = LD(xa[0]);                                                            \
            EW_LOOP(OT, y, n, const ct b = LD(xb[i]); *r_ = OUT);                              \
            break;                                                                             \
        }                                                                                      \
        default: {                                                                             \
            const ct a = LD(xa[0]);                                                            \
            const ct b = LD(xb[0]);                                                            \
            const OT r = OUT;                                                                  \
            for (size_t i = 0; i < n; i++) y[i] = r;                                           \
        }                                                                                      \
        }                                                                                      \
    }
#define DEF_ARITH(dt, sfx, T, C, U, LD, ST, CV, op, EXPR) \
    DEF_BIN_BODY(EW_CLONES(sfx), op##_##sfx, T, C, U, LD, T, ST(CV(EXPR)))
#define DEF_CMP(dt, sfx, T, C, U, LD, ST, CV, op, EXPR) \
    DEF_BIN_BODY(EW_CLONES(sfx), op##_##sfx, T, C, U, LD, uint8_t, (uint8_t)((EXPR) != 0))

/* exp and erf of the compute type: the vectorizable ones (vmath.h) for float (also
 * float16/bfloat16), libm else */
#define EW_EXP(v) _Generic((v), float: celer_fast_expf, default: exp)(v)
#define EW_ERF(v) _Generic((v), float: celer_fast_erff, default: erf)(v)
/* and the other transcendental activations: no libm call per float element (a call stops the
 * vectorizer); double keeps libm */
#define EW_EXPM1(v) _Generic((v), float: celer_fast_expm1f, default: expm1)(v)
#define EW_TANH(v) _Generic((v), float: celer_fast_tanhf, default: tanh)(v)
#define EW_SIGMOID(v) _Generic((v), float: celer_fast_sigmoidf, default: sigmoid_d)(v)
#define EW_SOFTPLUS(v) _Generic((v), float: softplus_f, default: softplus_d)(v)
static inline double sigmoid_d(double v) { return 1 / (1 + exp(-v)); }
/* log(1 + e^v) = max(v, 0) + log1p(e^-|v|), without overflow for large v. In float log1p(u),
 * u in (0, 1], is 2 atanh(s) with s = u / (2 + u) <= 1/3: the odd series to s^15 (truncation
 * under 2e-8 relative), no cancellation. */
static inline float softplus_f(float v) {
    float u = celer_fast_expf(-fabsf(v)), s = u / (2.0f + u), z = s * s;
    float q = 1.0f / 15;
    q = q * z + 1.0f / 13;
    q = q * z + 1.0f / 11;
    q = q * z + 1.0f / 9;
    q = q * z + 1.0f / 7;
    q = q * z + 1.0f / 5;
    q = q * z + 1.0f / 3;
    q = q * z + 1.0f;
    return (v > 0 ? v : 0.0f) + 2.0f * s * q;
}
static inline double softplus_d(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }
/* min(max(v, 0), 1) with plain compares (fmin/fmax's NaN rules keep GCC from vectorizing):
 * NaN passes through. */
/* Elu and Celu with the exponential computed before the select: GCC will not if-convert a
 * conditional call of it (it does for Selu's else-branch, so that one stays an expression). */
static inline float elu_f(float v, float a) {
    float e = a * celer_fast_expm1f(v);
    return v < 0 ? e : v;
}
static inline double elu_d(double v, double a) { return v < 0 ? a * expm1(v) : v; }
static inline float celu_f(float v, float a) {
    float e = a * celer_fast_expm1f(v / a);
    return v > 0 ? v : e;
}
static inline double celu_d(double v, double a) { return v > 0 ? v : a * expm1(v / a); }
#define EW_ELU(v, a) _Generic((v), float: elu_f, default: elu_d)(v, a)
#define EW_CELU(v, a) _Generic((v), float: celu_f, default: celu_d)(v, a)
#define EW_UNIT(v) ((v) < 0 ? (ct)0 : (v) > 1 ? (ct)1 : (v))

/* GELU (Gelu-20) in double: x/2 (1 + erf(x / sqrt 2)), or with approximate = "tanh"
 * x/2 (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3), written as x / (1 + e^-2z): the same value
 * without the cancellation of 1 + tanh(z) for negative z. */
static inline double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }
#define GELU_K 0.79788456080286536 /* sqrt(2/pi) */
static inline float gelu_tanh_f(float x) {
    float z = (float)GELU_K * (x + 0.044715f * x * x * x);
    return x / (1.0f + celer_fast_expf(-2.0f * z));
}
static inline double gelu_tanh_d(double x) {
    double z = GELU_K * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * z));
}
/* Mish (Mish-18): x tanh(ln(1 + e^x)). With e = e^x, tanh(ln(1 + e)) = n / (n + 2) for
 * n = e (e + 2), which needs one exp and no log; past x = 20 the ratio is 1 in float (and e^2x
 * would overflow), so x is clamped there for the exp only. */
static inline float mish_f(float x) {
    float e = celer_fast_expf(x < 20.0f ? x : 20.0f), n = e * (e + 2.0f);
    return x * n / (n + 2.0f);
}
static inline double mish_d(double x) {
    return x * tanh(x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)));
}
#define EW_GELU(v) _Generic((v), float: celer_fast_gelu, default: gelu_d)(v)
#define EW_GELU_TANH(v) _Generic((v), float: gelu_tanh_f, default: gelu_tanh_d)(v)
#define EW_MISH(v) _Generic((v), float: mish_f, default: mish_d)(v)

/* ---- unary ops ---- */
TL_FLT(DEF_UNARY, abs, fabs(v))
TL_SINT(DEF_UNARY, abs, v < 0 ? (ut)0 - (ut)v : (ut)v)
TL_UINT(DEF_UNARY, abs, v)
TL_FLT(DEF_UNARY, neg, -v)
TL_SINT(DEF_UNARY, neg, (ut)0 - (ut)v)
TL_FLT(DEF_UNARY, recip, (ct)1 / v)
TL_FLT(DEF_UNARY, sqrt, sqrt(v))
TL_FLT(DEF_UNARY, exp, EW_EXP(v))
TL_FLT(DEF_UNARY, log, log(v))
TL_FLT(DEF_UNARY, sin, sin(v))
TL_FLT(DEF_UNARY, cos, cos(v))
TL_FLT(DEF_UNARY, tan, tan(v))
TL_FLT(DEF_UNARY, asin, asin(v))
TL_FLT(DEF_UNARY, acos, acos(v))
TL_FLT(DEF_UNARY, atan, atan(v))
TL_FLT(DEF_UNARY, sinh, sinh(v))
TL_FLT(DEF_UNARY, cosh, cosh(v))
TL_FLT(DEF_UNARY, asinh, asinh(v))
TL_FLT(DEF_UNARY, acosh, acosh(v))
TL_FLT(DEF_UNARY, atanh, atanh(v))
TL_FLT(DEF_UNARY, erf, EW_ERF(v))
TL_INT(DEF_UNARY, erf, erf((double)v))
TL_FLT(DEF_UNARY, sigmoid, EW_SIGMOID(v))
TL_FLT(DEF_UNARY, tanh, EW_TANH(v))
/* NaN passes through Relu unchanged (v < 0 is false), as in numpy's maximum-based reference. */
TL_FS(DEF_UNARY, relu, v < 0 ? (ct)0 : v)
TL_FLT(DEF_UNARY, leaky, v < 0 ? v * (ct)p->alpha : v)
TL_FLT(DEF_UNARY, elu, EW_ELU(v, (ct)p->alpha))
TL_FLT(DEF_UNARY, selu, v > 0 ? (ct)p->gamma * v : (ct)p->gamma * (ct)p->alpha * EW_EXPM1(v))
TL_FLT(DEF_UNARY, celu, EW_CELU(v, (ct)p->alpha))
TL_FLT(DEF_UNARY, hsig, EW_UNIT((ct)p->alpha * v + (ct)p->beta))
TL_FLT(DEF_UNARY, hswish, v * EW_UNIT(v * ((ct)1 / 6) + (ct)0.5))
TL_FLT(DEF_UNARY, softplus, EW_SOFTPLUS(v))
TL_FLT(DEF_UNARY, softsign, v / ((ct)1 + fabs(v)))
TL_FLT(DEF_UNARY, thrrelu, v > (ct)p->alpha ? v : (ct)0)
TL_FLT_NOT32(DEF_UNARY, gelu, EW_GELU(v))
TL_FLT_NOT32(DEF_UNARY, gelu_tanh, EW_GELU_TANH(v))
TL_FLT_NOT32(DEF_UNARY, mish, EW_MISH(v))
/* float Gelu and Mish (transformer and detector activations over whole feature maps): a plain
 * loop also built for AVX2 + FMA (CELER_VECTOR_CLONES, as fused.c's Gelu): 2.3x the blocked
 * loop (1M floats: 0.97 ms against 2.24). Reads element i before writing it: in place is fine. */
#define DEF_UNARY_V(op, F)                                                                     \
    CELER_VECTOR_CLONES static void op##_vf32(void *yv, const void *xv, size_t n,              \
                                              const ew_params *p) {                            \
        (void)p;                                                                               \
        const float *x = xv;                                                                   \
        float *y = yv;                                                                         \
        for (size_t i = 0; i < n; i++) y[i] = F(x[i]);                                         \
    }
DEF_UNARY_V(gelu, celer_fast_gelu)
DEF_UNARY_V(gelu_tanh, gelu_tanh_f)
DEF_UNARY_V(mish, mish_f)
TL_INT(DEF_UNARY, bnot, ~(ut)v)
/* Shrink: alpha = bias, beta = lambd; integers are compared and shifted in double */
TL_NUM(DEF_UNARY, shrink,
       (double)v < -(double)p->beta   ? (double)v + p->alpha
       : (double)v > (double)p->beta  ? (double)v - p->alpha
                                      : 0.0)
TL_FS(DEF_UNARY, sign, v > 0 ? (ct)1 : v < 0 ? (ct)-1 : v)
TL_UINT(DEF_UNARY, sign, v > 0 ? 1 : 0)
TL_FLT(DEF_UNARY, round, rint(v)) /* default rounding mode: half to even */
TL_FLT(DEF_UNARY, ceil, ceil(v))
TL_FLT(DEF_UNARY, floor, floor(v))
TL_BOOL(DEF_UNARY, not, !v)
/* Mean's final division by the input count (alpha). */
TL_FLT(DEF_UNARY, divn, v / (ct)p->alpha)
TL_FLT(DEF_PRED, isnan, isnan(v))
TL_FLT(DEF_PRED, isinf, isinf(v) && (v > 0 ? (p->flag & 1) : (p->flag & 2)))

/* Clip: bounds are single elements of the input's own type; NaN passes through. */
#define DEF_CLIP(dt, sfx, T, C, U, LD, ST, CV, op)                                             \
    EW_CLONES(sfx)                                                                             \
    static void op##_##sfx(void *yv, const void *xv, size_t n, const ew_params *p) {           \
        TYPEDEFS(C, U);                                                                        \
        const T *x = xv;                                                                       \
        T *y = yv;                                                                             \
        const bool has_lo = p->lo != NULL, has_hi = p->hi != NULL;                            \
        const ct lo = has_lo ? LD(*(const T *)p->lo) : (ct)0;                                  \
        const ct hi = has_hi ? LD(*(const T *)p->hi) : (ct)0;                                  \
        EW_LOOP(T, y, n, ct v = LD(x[i]); v = has_lo && v < lo ? lo : v;                       \
                v = has_hi && v > hi ? hi : v; *r_ = ST(v));                                   \
    }
TL_NUM(DEF_CLIP, clip)

/* ---- binary ops ---- */
static inline double mod_f(double a, double b, int fmod_mode) {
    double r = fmod(a, b);
    if (!fmod_mode && r != 0 && ((r < 0) != (b < 0))) r += b; /* sign follows the divisor */
    return r;
}
static inline int64_t mod_s(int64_t a, int64_t b, int fmod_mode) {
    if (b == 0 || b == -1) return 0; /* x % 0 is defined as 0 here; INT_MIN % -1 would trap */
    int64_t r = a % b;
    if (!fmod_mode && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

TL_FLT(DEF_ARITH, add, a + b)
TL_INT(DEF_ARITH, add, (ut)a + (ut)b)
TL_FLT(DEF_ARITH, sub, a - b)
TL_INT(DEF_ARITH, sub, (ut)a - (ut)b)
TL_FLT(DEF_ARITH, mul, a * b)
TL_INT(DEF_ARITH, mul, (ut)a * (ut)b)
TL_FLT(DEF_ARITH, div, a / b)
/* integer division truncates toward zero; x / 0 is defined as 0 here (C would trap) */
TL_SINT(DEF_ARITH, div, b == 0 ? (ut)0 : b == -1 ? (ut)0 - (ut)a : (ut)(a / b))
TL_UINT(DEF_ARITH, div, b == 0 ? (ut)0 : (ut)(a / b))
TL_FLT(DEF_ARITH, mod, mod_f(a, b, p->flag))
TL_SINT(DEF_ARITH, mod, mod_s(a, b, p->flag))
TL_UINT(DEF_ARITH, mod, b == 0 ? (ut)0 : (ut)(a % b))
TL_FLT(DEF_ARITH, pow, pow(a, b))
TL_UINT(DEF_ARITH, shift,
        (size_t)b >= 8 * sizeof(ct) ? (ut)0 : p->flag ? (ut)((ut)a << b) : (ut)(a >> b))
TL_BOOL(DEF_ARITH, and, (a != 0) & (b != 0))
TL_BOOL(DEF_ARITH, or, (a != 0) | (b != 0))
TL_BOOL(DEF_ARITH, xor, (a != 0) ^ (b != 0))
TL_INT(DEF_ARITH, band, (ut)a & (ut)b)
TL_INT(DEF_ARITH, bor, (ut)a | (ut)b)
TL_INT(DEF_ARITH, bxor, (ut)a ^ (ut)b)
/* Max/Min propagate NaN like numpy.maximum/minimum. */
TL_FLT(DEF_ARITH, max, (a > b || isnan(a)) ? a : b)
TL_INT(DEF_ARITH, max, a > b ? a : b)
TL_FLT(DEF_ARITH, min, (a < b || isnan(a)) ? a : b)
TL_INT(DEF_ARITH, min, a < b ? a : b)
TL_FLT(DEF_ARITH, prelu, a < 0 ? a * b : a)
TL_SINT(DEF_ARITH, prelu, a < 0 ? (ut)a * (ut)b : (ut)a)
TL_UINT(DEF_ARITH, prelu, a)
TL_NUM(DEF_CMP, eq, a == b)
TL_BOOL(DEF_CMP, eq, a == b)
TL_NUM(DEF_CMP, gt, a > b)
TL_NUM(DEF_CMP, lt, a < b)
TL_NUM(DEF_CMP, ge, a >= b)
TL_NUM(DEF_CMP, le, a <= b)

static void eq_str(void *yv, const void *const *xv, unsigned m, size_t n, const ew_params *p) {
    (void)p;
    const celer_str *xa = xv[0], *xb = xv[1];
    uint8_t *y = yv;
    size_t sa = m & 1u, sb = (m >> 1) & 1u;
    for (size_t i = 0; i < n; i++) y[i] = celer_str_eq(xa[i * sa], xb[i * sb]);
}

/* ---- Pow with base and exponent of different types (opset >= 12) ---- */
static double ld_dbl(const void *x, size_t i, celer_dtype t) {
    celer_tensor v = {.dtype = t, .data = (void *)x};
    return celer_ops_double_at(&v, (int64_t)i);
}
static bool is_int(celer_dtype t) {
    return (unsigned)t < 32 && (CELER_DT(t) & (CELER_DTS_INTS | CELER_DT(CELER_BOOL)));
}
/* Exact integer power with wrap-around; negative exponents truncate like a cast of pow(). */
static int64_t ipow(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}
static void pow_mixed(void *y, const void *const *x, unsigned m, size_t n, const ew_params *p) {
    size_t sa = m & 1u, sb = (m >> 1) & 1u;
    celer_tensor out = {.dtype = p->ta, .data = y};
    for (size_t i = 0; i < n; i++) {
        if (is_int(p->ta) && is_int(p->tb)) {
            celer_tensor va = {.dtype = p->ta, .data = (void *)x[0]};
            celer_tensor vb = {.dtype = p->tb, .data = (void *)x[1]};
            int64_t r = ipow(celer_ops_int_at(&va, (int64_t)(i * sa)),
                             celer_ops_int_at(&vb, (int64_t)(i * sb)));
            if (p->ta == CELER_INT32)
                ((int32_t *)y)[i] = (int32_t)r;
            else
                ((int64_t *)y)[i] = r;
        } else {
            double r = pow(ld_dbl(x[0], i * sa, p->ta), ld_dbl(x[1], i * sb, p->tb));
            if (p->ta == CELER_INT32)
                ((int32_t *)y)[i] = (int32_t)sat_i64(r);
            else if (p->ta == CELER_INT64)
                ((int64_t *)y)[i] = sat_i64(r);
            else
                celer_ops_double_store(&out, (int64_t)i, r);
        }
    }
}

/* ---- Where: copies by element size (also built for AVX2 / AVX-512: masked blends) ---- */
typedef struct bytes16 {
    unsigned char b[16];
} bytes16;
#define DEF_WHERE(name, T)                                                                     \
    CELER_VECTOR_CLONES                                                                        \
    static void name(void *yv, const void *const *xv, unsigned m, size_t n,                    \
                     const ew_params *p) {                                                     \
        (void)p;                                                                               \
        const uint8_t *c = xv[0];                                                              \
        const T *a = xv[1], *b = xv[2];                                                        \
        T *y = yv;                                                                             \
        size_t sc = m & 1u, sa = (m >> 1) & 1u, sb = (m >> 2) & 1u;                            \
        if (m == 7) {                                                                          \
            for (size_t i = 0; i < n; i++) y[i] = c[i] ? a[i] : b[i];                          \
        } else {                                                                               \
            for (size_t i = 0; i < n; i++) y[i] = c[i * sc] ? a[i * sa] : b[i * sb];           \
        }                                                                                      \
    }
DEF_WHERE(where_1, uint8_t)
DEF_WHERE(where_2, uint16_t)
DEF_WHERE(where_4, uint32_t)
DEF_WHERE(where_8, uint64_t)
DEF_WHERE(where_16, bytes16)

/* Broadcast copy (the first input of Max/Min/Sum/Mean when it is smaller than the output). */
#define DEF_COPY(name, T)                                                                      \
    static void name(void *yv, const void *const *xv, unsigned m, size_t n,                   \
                     const ew_params *p) {                                                     \
        (void)p;                                                                               \
        const T *x = xv[0];                                                                    \
        T *y = yv;                                                                             \
        size_t s = m & 1u;                                                                     \
        for (size_t i = 0; i < n; i++) y[i] = x[i * s];                                        \
    }
DEF_COPY(copy_1, uint8_t)
DEF_COPY(copy_2, uint16_t)
DEF_COPY(copy_4, uint32_t)
DEF_COPY(copy_8, uint64_t)
static const loop_fn copy_by_size[9] = {[1] = copy_1, [2] = copy_2, [4] = copy_4, [8] = copy_8};

/* ---- Cast: one function per (source, destination) pair ---- */
#define TL_DST(X, ...)                                                                          \
    X(CELER_FLOAT, f32, float, CV_FLT, ST_ID, __VA_ARGS__)                                      \
    X(CELER_DOUBLE, f64, double, CV_DBL, ST_ID, __VA_ARGS__)                                    \
    X(CELER_FLOAT16, f16, uint16_t, CV_FLT, celer_float_to_half, __VA_ARGS__)                   \
    X(CELER_BFLOAT16, bf16, uint16_t, CV_FLT, celer_float_to_bf16, __VA_ARGS__)                 \
    X(CELER_INT8, i8, int8_t, CV_I8, ST_ID, __VA_ARGS__)                                        \
    X(CELER_INT16, i16, int16_t, CV_I16, ST_ID, __VA_ARGS__)                                    \
    X(CELER_INT32, i32, int32_t, CV_I32, ST_ID, __VA_ARGS__)                                    \
    X(CELER_INT64, i64, int64_t, CV_I64, ST_ID, __VA_ARGS__)                                    \
    X(CELER_UINT8, u8, uint8_t, CV_U8, ST_ID, __VA_ARGS__)                                      \
    X(CELER_UINT16, u16, uint16_t, CV_U16, ST_ID, __VA_ARGS__)                                  \
    X(CELER_UINT32, u32, uint32_t, CV_U32, ST_ID, __VA_ARGS__)                                  \
    X(CELER_UINT64, u64, uint64_t, CV_U64, ST_ID, __VA_ARGS__)                                  \
    X(CELER_BOOL, b8, uint8_t, CV_BOOL, ST_ID, __VA_ARGS__)
#define DEF_CAST(dt2, sfx2, T2, CV2, ST2, sfx1, T1, LD1)                                        \
    static void cast_##sfx1##_##sfx2(void *yv, const void *xv, size_t n, const ew_params *p) { \
        (void)p;                                                                               \
        const T1 *x = xv;                                                                      \
        T2 *y = yv;                                                                            \
        EW_LOOP(T2, y, n, *r_ = ST2(CV2(LD1(x[i]))));                                           \
    }
#define CAST_ROW(dt, sfx, T, C, U, LD, ST, CV, unused) TL_DST(DEF_CAST, sfx, T, LD)
#define CAST_TBL(dt2, sfx2, T2, CV2, ST2, dt1, sfx1) [dt1][dt2] = cast_##sfx1##_##sfx2,
#define CAST_TBL_ROW(dt, sfx, T, C, U, LD, ST, CV, unused) TL_DST(CAST_TBL, dt, sfx)
TL_NUM(CAST_ROW, 0)
TL_BOOL(CAST_ROW, 0)
static const unary_fn cast_fns[CELER_DTYPE_COUNT][CELER_DTYPE_COUNT] = {
    TL_NUM(CAST_TBL_ROW, 0) TL_BOOL(CAST_TBL_ROW, 0)};

/* ---- the op table ---- */
typedef enum ew_kind {
    EW_UNARY,    /* y = f(x), same type */
    EW_PRED,     /* bool y = f(x) */
    EW_CLIP,     /* unary with bounds from attributes (< 11) or inputs */
    EW_BINARY,   /* broadcast, same type in and out */
    EW_CMP,      /* broadcast, bool out */
    EW_PRELU,    /* broadcast of the slope into X's shape */
    EW_POW,      /* broadcast, exponent type may differ */
    EW_VARIADIC, /* Max/Min/Sum/Mean: pairwise fold */
    EW_WHERE,
    EW_CAST,
    EW_CASTLIKE,
} ew_kind;

typedef struct ew_attr {
    const char *name;
    float dflt;
} ew_attr;

typedef struct ew_op {
    const char *name;
    ew_kind kind;
    const unary_fn *unary; /* EW_UNARY / EW_PRED / EW_CLIP, indexed by dtype */
    const loop_fn *loop;   /* EW_BINARY / EW_CMP / EW_PRELU / EW_POW / EW_VARIADIC */
    ew_attr alpha, beta, gamma;
    bool mean;             /* EW_VARIADIC: divide by the input count */
    bool heavy;            /* tens of instructions an element (exp, libm): splits across threads
                            * from EW_PAR_MIN_HEAVY elements a thread, else EW_PAR_MIN_CHEAP */
} ew_op;

#define UTAB(op, ...) static const unary_fn op##_tab[CELER_DTYPE_COUNT] = {__VA_ARGS__}
#define LTAB(op, ...) static const loop_fn op##_tab[CELER_DTYPE_COUNT] = {__VA_ARGS__}
UTAB(abs, TL_NUM(TBL, abs));
UTAB(neg, TL_FS(TBL, neg));
UTAB(recip, TL_FLT(TBL, recip));
UTAB(sqrt, TL_FLT(TBL, sqrt));
UTAB(exp, TL_FLT(TBL, exp));
UTAB(log, TL_FLT(TBL, log));
UTAB(sin, TL_FLT(TBL, sin));
UTAB(cos, TL_FLT(TBL, cos));
UTAB(tan, TL_FLT(TBL, tan));
UTAB(asin, TL_FLT(TBL, asin));
UTAB(acos, TL_FLT(TBL, acos));
UTAB(atan, TL_FLT(TBL, atan));
UTAB(sinh, TL_FLT(TBL, sinh));
UTAB(cosh, TL_FLT(TBL, cosh));
UTAB(asinh, TL_FLT(TBL, asinh));
UTAB(acosh, TL_FLT(TBL, acosh));
UTAB(atanh, TL_FLT(TBL, atanh));
UTAB(erf, TL_NUM(TBL, erf));
UTAB(sigmoid, TL_FLT(TBL, sigmoid));
UTAB(tanh, TL_FLT(TBL, tanh));
UTAB(relu, TL_FS(TBL, relu));
UTAB(leaky, TL_FLT(TBL, leaky));
UTAB(elu, TL_FLT(TBL, elu));
UTAB(selu, TL_FLT(TBL, selu));
UTAB(celu, TL_FLT(TBL, celu));
UTAB(hsig, TL_FLT(TBL, hsig));
UTAB(hswish, TL_FLT(TBL, hswish));
UTAB(softplus, TL_FLT(TBL, softplus));
UTAB(softsign, TL_FLT(TBL, softsign));
UTAB(thrrelu, TL_FLT(TBL, thrrelu));
#define TBL_V(op) [CELER_FLOAT] = op##_vf32, TL_FLT_NOT32(TBL, op)
UTAB(gelu, TBL_V(gelu));
UTAB(gelu_tanh, TBL_V(gelu_tanh));
UTAB(mish, TBL_V(mish));
UTAB(bnot, TL_INT(TBL, bnot));
UTAB(shrink, TL_NUM(TBL, shrink));
UTAB(sign, TL_NUM(TBL, sign));
UTAB(round, TL_FLT(TBL, round));
UTAB(ceil, TL_FLT(TBL, ceil));
UTAB(floor, TL_FLT(TBL, floor));
UTAB(not, TL_BOOL(TBL, not));
UTAB(divn, TL_FLT(TBL, divn));
UTAB(isnan, TL_FLT(TBL, isnan));
UTAB(isinf, TL_FLT(TBL, isinf));
UTAB(clip, TL_NUM(TBL, clip));
LTAB(add, TL_NUM(TBL, add));
LTAB(sub, TL_NUM(TBL, sub));
LTAB(mul, TL_NUM(TBL, mul));
LTAB(div, TL_NUM(TBL, div));
LTAB(mod, TL_NUM(TBL, mod));
LTAB(pow, TL_FLT(TBL, pow));
LTAB(shift, TL_UINT(TBL, shift));
LTAB(and, TL_BOOL(TBL, and));
LTAB(or, TL_BOOL(TBL, or));
LTAB(xor, TL_BOOL(TBL, xor));
LTAB(band, TL_INT(TBL, band));
LTAB(bor, TL_INT(TBL, bor));
LTAB(bxor, TL_INT(TBL, bxor));
LTAB(max, TL_NUM(TBL, max));
LTAB(min, TL_NUM(TBL, min));
LTAB(prelu, TL_NUM(TBL, prelu));
LTAB(eq, TL_NUM(TBL, eq) TL_BOOL(TBL, eq)[CELER_STRING] = eq_str);
LTAB(gt, TL_NUM(TBL, gt));
LTAB(lt, TL_NUM(TBL, lt));
LTAB(ge, TL_NUM(TBL, ge));
LTAB(le, TL_NUM(TBL, le));

#define SELU_ALPHA 1.67326319217681884765625f
#define SELU_GAMMA 1.05070102214050292968750f
static const ew_op ops[] = {
    {"Abs", EW_UNARY, .unary = abs_tab},
    {"Neg", EW_UNARY, .unary = neg_tab},
    {"Reciprocal", EW_UNARY, .unary = recip_tab},
    {"Sqrt", EW_UNARY, .unary = sqrt_tab},
    {"Exp", EW_UNARY, .unary = exp_tab, .heavy = true},
    {"Log", EW_UNARY, .unary = log_tab, .heavy = true},
    {"Sin", EW_UNARY, .unary = sin_tab, .heavy = true},
    {"Cos", EW_UNARY, .unary = cos_tab, .heavy = true},
    {"Tan", EW_UNARY, .unary = tan_tab, .heavy = true},
    {"Asin", EW_UNARY, .unary = asin_tab, .heavy = true},
    {"Acos", EW_UNARY, .unary = acos_tab, .heavy = true},
    {"Atan", EW_UNARY, .unary = atan_tab, .heavy = true},
    {"Sinh", EW_UNARY, .unary = sinh_tab, .heavy = true},
    {"Cosh", EW_UNARY, .unary = cosh_tab, .heavy = true},
    {"Asinh", EW_UNARY, .unary = asinh_tab, .heavy = true},
    {"Acosh", EW_UNARY, .unary = acosh_tab, .heavy = true},
    {"Atanh", EW_UNARY, .unary = atanh_tab, .heavy = true},
    {"Erf", EW_UNARY, .unary = erf_tab, .heavy = true},
    {"Sigmoid", EW_UNARY, .unary = sigmoid_tab, .heavy = true},
    {"Tanh", EW_UNARY, .unary = tanh_tab, .heavy = true},
    {"Relu", EW_UNARY, .unary = relu_tab},
    {"LeakyRelu", EW_UNARY, .unary = leaky_tab, .alpha = {"alpha", 0.01f}},
    {"Elu", EW_UNARY, .unary = elu_tab, .alpha = {"alpha", 1.0f}, .heavy = true},
    {"Selu", EW_UNARY, .unary = selu_tab, .alpha = {"alpha", SELU_ALPHA}, .gamma = {"gamma", SELU_GAMMA},
     .heavy = true},
    {"Celu", EW_UNARY, .unary = celu_tab, .alpha = {"alpha", 1.0f}, .heavy = true},
    {"HardSigmoid", EW_UNARY, .unary = hsig_tab, .alpha = {"alpha", 0.2f}, .beta = {"beta", 0.5f}},
    {"HardSwish", EW_UNARY, .unary = hswish_tab},
    {"Softplus", EW_UNARY, .unary = softplus_tab, .heavy = true},
    {"Softsign", EW_UNARY, .unary = softsign_tab},
    {"ThresholdedRelu", EW_UNARY, .unary = thrrelu_tab, .alpha = {"alpha", 1.0f}},
    {"Gelu", EW_UNARY, .unary = gelu_tab, .heavy = true}, /* approximate = "tanh": gelu_tanh_op */
    {"Mish", EW_UNARY, .unary = mish_tab, .heavy = true},
    {"BitwiseNot", EW_UNARY, .unary = bnot_tab},
    {"Shrink", EW_UNARY, .unary = shrink_tab, .alpha = {"bias", 0.0f}, .beta = {"lambd", 0.5f}},
    {"Sign", EW_UNARY, .unary = sign_tab},
    {"Round", EW_UNARY, .unary = round_tab},
    {"Ceil", EW_UNARY, .unary = ceil_tab},
    {"Floor", EW_UNARY, .unary = floor_tab},
    {"Not", EW_UNARY, .unary = not_tab},
    {"IsNaN", EW_PRED, .unary = isnan_tab},
    {"IsInf", EW_PRED, .unary = isinf_tab},
    {"Clip", EW_CLIP, .unary = clip_tab},
    {"Add", EW_BINARY, .loop = add_tab},
    {"Sub", EW_BINARY, .loop = sub_tab},
    {"Mul", EW_BINARY, .loop = mul_tab},
    {"Div", EW_BINARY, .loop = div_tab},
    {"Mod", EW_BINARY, .loop = mod_tab, .heavy = true},
    {"BitShift", EW_BINARY, .loop = shift_tab},
    {"And", EW_BINARY, .loop = and_tab},
    {"Or", EW_BINARY, .loop = or_tab},
    {"Xor", EW_BINARY, .loop = xor_tab},
    {"BitwiseAnd", EW_BINARY, .loop = band_tab},
    {"BitwiseOr", EW_BINARY, .loop = bor_tab},
    {"BitwiseXor", EW_BINARY, .loop = bxor_tab},
    {"Pow", EW_POW, .loop = pow_tab, .heavy = true},
    {"PRelu", EW_PRELU, .loop = prelu_tab},
    {"Equal", EW_CMP, .loop = eq_tab},
    {"Greater", EW_CMP, .loop = gt_tab},
    {"Less", EW_CMP, .loop = lt_tab},
    {"GreaterOrEqual", EW_CMP, .loop = ge_tab},
    {"LessOrEqual", EW_CMP, .loop = le_tab},
    {"Max", EW_VARIADIC, .loop = max_tab},
    {"Min", EW_VARIADIC, .loop = min_tab},
    {"Sum", EW_VARIADIC, .loop = add_tab},
    {"Mean", EW_VARIADIC, .loop = add_tab, .mean = true},
    {"Where", EW_WHERE, .unary = NULL},
    {"Cast", EW_CAST, .unary = NULL},
    {"CastLike", EW_CASTLIKE, .unary = NULL},
};

/* Gelu's other row, chosen by its attribute in ew_init rather than by name. */
static const ew_op gelu_tanh_op = {"Gelu", EW_UNARY, .unary = gelu_tanh_tab, .heavy = true};

static const ew_op *find_op(const char *name) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(ops); i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    return NULL;
}

typedef struct ew_state {
    const ew_op *op;
    ew_params p;
    celer_dtype to;               /* Cast: target type */
    bool legacy;                  /* opset < 7 binary op: B broadcasts onto A by attributes */
    int64_t axis;                 /* legacy: where B's dims start in A; -1 = trailing */
    _Alignas(8) unsigned char lo[8], hi[8]; /* Clip < 11: attribute bounds in the input's type */
} ew_state;

/* ---- broadcasting ---- */

/* Output dims collapsed into as few runs as possible, with each input's element stride per run
 * (0 where the input is broadcast). The innermost run is contiguous in every input that
 * advances along it. */
typedef struct bc_plan {
    int rank, n_in;
    int64_t dims[CELER_MAX_RANK];
    int64_t strides[3][CELER_MAX_RANK];
} bc_plan;

static celer_status bc_make(bc_plan *pl, const celer_shape *out, const celer_tensor *const *x,
                            int n_in) {
    int64_t full[3][CELER_MAX_RANK];
    const int r = out->rank;
    pl->n_in = n_in;
    pl->rank = 0;
    for (int k = 0; k < n_in; k++) {
        const celer_shape *s = &x[k]->shape;
        int64_t stride = 1;
        if (s->rank > r) return celer_errorf(CELER_ERR_INTERNAL, "input rank exceeds output rank");
        for (int d = r - 1; d >= 0; d--) {
            int sd = d - (r - s->rank);
            int64_t dim = sd >= 0 ? s->dims[sd] : 1;
            if (dim != out->dims[d] && dim != 1)
                return celer_errorf(CELER_ERR_INTERNAL, "input does not broadcast to output");
            full[k][d] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
    }
    for (int d = 0; d < r; d++) {
        if (out->dims[d] == 1) continue; /* size-1 dims never move */
        int q = pl->rank - 1;
        bool merge = q >= 0;
        for (int k = 0; k < n_in && merge; k++)
            merge = pl->strides[k][q] == full[k][d] * out->dims[d];
        if (merge) {
            pl->dims[q] *= out->dims[d];
            for (int k = 0; k < n_in; k++) pl->strides[k][q] = full[k][d];
        } else {
            pl->dims[pl->rank] = out->dims[d];
            for (int k = 0; k < n_in; k++) pl->strides[k][pl->rank] = full[k][d];
            pl->rank++;
        }
    }
    if (pl->rank == 0) { /* a single element */
        pl->rank = 1;
        pl->dims[0] = 1;
        for (int k = 0; k < n_in; k++) pl->strides[k][0] = 0;
    }
    return CELER_OK;
}

/* One broadcast loop over the output, split across the run's threads by element ranges. */
typedef struct bc_job {
    const bc_plan *pl;
    char *out;
    size_t out_size;
    const void *const *x;
    const size_t *x_size;
    loop_fn fn;
    const ew_params *p;
} bc_job;

/* Runs fn over output elements [lo, hi) of the plan (out is contiguous): the odometer starts at
 * lo's row, and the first and last rows may be partial. */
static void bc_range(void *ctx, size_t lo, size_t hi) {
    const bc_job *j = ctx;
    const bc_plan *pl = j->pl;
    const int r = pl->rank;
    const size_t inner = (size_t)pl->dims[r - 1];
    int64_t idx[CELER_MAX_RANK] = {0}, off[3] = {0};
    unsigned contig = 0;
    for (int k = 0; k < pl->n_in; k++)
        if (pl->strides[k][r - 1]) contig |= 1u << k;
    size_t row = lo / inner, col = lo % inner;
    for (int d = r - 2; d >= 0; d--) { /* row -> odometer position */
        idx[d] = (int64_t)(row % (size_t)pl->dims[d]);
        row /= (size_t)pl->dims[d];
        for (int k = 0; k < pl->n_in; k++) off[k] += idx[d] * pl->strides[k][d];
    }
    const void *xp[3];
    for (size_t e = lo; e < hi;) {
        size_t len = CELER_MIN(inner - col, hi - e);
        for (int k = 0; k < pl->n_in; k++)
            xp[k] = (const char *)j->x[k] +
                    (off[k] + (int64_t)col * pl->strides[k][r - 1]) * (int64_t)j->x_size[k];
        j->fn(j->out + e * j->out_size, xp, contig, len, j->p);
        e += len;
        col = 0;
        for (int d = r - 2; d >= 0; d--) { /* odometer over the outer dims */
            for (int k = 0; k < pl->n_in; k++) off[k] += pl->strides[k][d];
            if (++idx[d] < pl->dims[d]) break;
            for (int k = 0; k < pl->n_in; k++) off[k] -= pl->strides[k][d] * pl->dims[d];
            idx[d] = 0;
        }
    }
}

/* Runs fn over every output element of the plan; out is contiguous. */
static void bc_walk(const bc_plan *pl, void *out, size_t out_size, const void *const *x,
                    const size_t *x_size, loop_fn fn, const ew_params *p, size_t par_min) {
    size_t total = 1;
    for (int d = 0; d < pl->rank; d++) total *= (size_t)pl->dims[d];
    bc_job j = {pl, out, out_size, x, x_size, fn, p};
    celer_ops_parallel_for(total, par_min, EW_PAR_ALIGN, bc_range, &j);
}

/* out = fn(x[0], ..., x[n_in-1]) broadcast to out's shape; split across threads from par_min
 * elements a thread. */
static celer_status apply(loop_fn fn, celer_tensor *out, const celer_tensor *const *x, int n_in,
                          const ew_params *p, size_t par_min) {
    bc_plan pl;
    celer_status st = bc_make(&pl, &out->shape, x, n_in);
    if (st) return st;
    const void *xd[3];
    size_t xs[3];
    for (int k = 0; k < n_in; k++) {
        xd[k] = x[k]->data;
        xs[k] = celer_dtype_size(x[k]->dtype);
    }
    bc_walk(&pl, out->data, celer_dtype_size(out->dtype), xd, xs, fn, p, par_min);
    return CELER_OK;
}

/* ---- load-time phases ---- */

static bool valid_index(celer_dtype t) { return (unsigned)t < CELER_DTYPE_COUNT; }

/* Types a Cast may produce at `since`, per the ONNX schemas. */
static uint32_t cast_types(int since) {
    uint32_t s = CELER_DTS_NUMERIC | CELER_DT(CELER_BOOL);
    if (since >= 9) s |= CELER_DT(CELER_STRING);
    if (since >= 13) s |= CELER_DT(CELER_BFLOAT16);
    return s;
}

static celer_status infer_types(const celer_op_info *info, celer_dtype *out) {
    char who[160];
    const ew_op *op = find_op(info->node->op_type);
    if (!op) return celer_errorf(CELER_ERR_INTERNAL, "%s: not an elementwise op", WHO(info));
    if (info->n_inputs < 1 || !info->input_types[0])
        return celer_errorf(CELER_ERR_INVALID, "%s: input 0 is required", WHO(info));
    if (info->n_outputs < 1)
        return celer_errorf(CELER_ERR_INVALID, "%s: needs one output", WHO(info));
    const celer_dtype *in = info->input_types;
    celer_dtype t0 = in[0], res = t0;
    int need_same_from = 1; /* inputs from this index on must have input 0's type */
    int min_in = 1, max_in = 1;
    switch (op->kind) {
    case EW_UNARY: break;
    case EW_PRED: res = CELER_BOOL; break;
    case EW_CLIP: max_in = 3; break;
    case EW_BINARY:
    case EW_PRELU: min_in = max_in = 2; break;
    case EW_CMP: min_in = max_in = 2; res = CELER_BOOL; break;
    case EW_POW: /* the exponent's type may differ from opset 12 on */
        min_in = max_in = 2;
        need_same_from = info->since_version >= 12 ? 2 : 1;
        break;
    case EW_VARIADIC: max_in = 1 << 20; break;
    case EW_WHERE:
        min_in = max_in = 3;
        need_same_from = 3;
        if (t0 != CELER_BOOL || in[1] != in[2])
            return celer_errorf(CELER_ERR_DTYPE,
                                "%s: expects (bool, T, T), got (%s, %s, %s)", WHO(info),
                                celer_dtype_name(t0), celer_dtype_name(in[1]),
                                celer_dtype_name(in[2]));
        res = in[1];
        break;
    case EW_CAST: {
        const celer_onnx_attr *a = celer_onnx_attr_find(info->node, "to");
        if (!a || a->type != CELER_ATTR_INT)
            return celer_errorf(CELER_ERR_INVALID, "%s: attribute 'to' (int) is required",
                                WHO(info));
        if (a->i <= 0 || a->i >= 32 || !(cast_types(info->since_version) & CELER_DT(a->i)))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: cannot cast to type %lld (%s)",
                                WHO(info), (long long)a->i,
                                celer_dtype_name((celer_dtype)a->i));
        res = (celer_dtype)a->i;
        break;
    }
    case EW_CASTLIKE:
        min_in = max_in = 2;
        need_same_from = 2;
        res = in[1];
        if (!valid_index(res) || !(cast_types(13) & CELER_DT(res)))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: cannot cast to type %s", WHO(info),
                                celer_dtype_name(res));
        break;
    }
    if (info->n_inputs < min_in || info->n_inputs > max_in)
        return celer_errorf(CELER_ERR_INVALID, "%s: expects %d to %d inputs, got %d", WHO(info),
                            min_in, max_in, info->n_inputs);
    for (int k = need_same_from; k < info->n_inputs; k++)
        if (in[k] != CELER_UNDEFINED && in[k] != t0)
            return celer_errorf(CELER_ERR_DTYPE, "%s: input %d is %s, expected %s like input 0",
                                WHO(info), k, celer_dtype_name(in[k]), celer_dtype_name(t0));
    for (int k = 0; k < info->n_inputs; k++)
        if (k < min_in && in[k] == CELER_UNDEFINED)
            return celer_errorf(CELER_ERR_INVALID, "%s: input %d is required", WHO(info), k);
    out[0] = res;
    for (int k = 1; k < info->n_outputs; k++) out[k] = res;
    return CELER_OK;
}

static celer_status ew_init(const celer_op_info *info, void **state) {
    char who[160];
    const celer_onnx_node *node = info->node;
    const ew_op *op = find_op(node->op_type);
    if (!op) return celer_errorf(CELER_ERR_INTERNAL, "%s: not an elementwise op", WHO(info));
    ew_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(info));
    s->op = op;
    const ew_attr *attrs[3] = {&op->alpha, &op->beta, &op->gamma};
    float *vals[3] = {&s->p.alpha, &s->p.beta, &s->p.gamma};
    for (int k = 0; k < 3; k++)
        *vals[k] = attrs[k]->name ? celer_onnx_attr_float(node, attrs[k]->name, attrs[k]->dflt) : 0;
    celer_status st = CELER_OK;
    const char *name = op->name;
    if (!strcmp(name, "Mod")) {
        int64_t f = celer_onnx_attr_int(node, "fmod", 0);
        if (f != 0 && f != 1)
            st = celer_errorf(CELER_ERR_INVALID, "%s: fmod must be 0 or 1, got %lld", WHO(info),
                              (long long)f);
        s->p.flag = (int)f;
    } else if (!strcmp(name, "BitShift")) {
        const char *d = celer_onnx_attr_string(node, "direction", "");
        if (strcmp(d, "LEFT") && strcmp(d, "RIGHT"))
            st = celer_errorf(CELER_ERR_INVALID,
                              "%s: direction must be \"LEFT\" or \"RIGHT\", got \"%s\"", WHO(info), d);
        s->p.flag = !strcmp(d, "LEFT");
    } else if (!strcmp(name, "IsInf")) {
        s->p.flag = (celer_onnx_attr_int(node, "detect_positive", 1) ? 1 : 0) |
                    (celer_onnx_attr_int(node, "detect_negative", 1) ? 2 : 0);
    } else if (!strcmp(name, "Gelu")) {
        const char *a = celer_onnx_attr_string(node, "approximate", "none");
        if (!strcmp(a, "tanh"))
            s->op = &gelu_tanh_op;
        else if (strcmp(a, "none"))
            st = celer_errorf(CELER_ERR_UNSUPPORTED,
                              "%s: attribute approximate = \"%s\" is not supported (\"none\" or \"tanh\")",
                              WHO(info), a);
    } else if (!strcmp(name, "Celu") && s->p.alpha == 0) {
        st = celer_errorf(CELER_ERR_INVALID, "%s: alpha must not be 0", WHO(info));
    } else if (op->kind == EW_CLIP && info->since_version < 11) {
        /* bounds are float attributes; store them in the input's type for the loop */
        celer_tensor lo = {.dtype = info->input_types[0], .data = s->lo};
        celer_tensor hi = {.dtype = info->input_types[0], .data = s->hi};
        celer_ops_double_store(&lo, 0, celer_onnx_attr_float(node, "min", -FLT_MAX));
        celer_ops_double_store(&hi, 0, celer_onnx_attr_float(node, "max", FLT_MAX));
        s->p.lo = s->lo;
        s->p.hi = s->hi;
    } else if (op->kind == EW_CAST) {
        s->to = (celer_dtype)celer_onnx_attr_int(node, "to", 0);
    }
    if (!st && info->since_version < 7 && info->n_inputs == 2 &&
        (op->kind == EW_BINARY || op->kind == EW_CMP || op->kind == EW_POW ||
         op->kind == EW_PRELU)) {
        s->legacy = true;
        s->axis = celer_onnx_attr_find(node, "axis") ? celer_onnx_attr_int(node, "axis", 0) : -1;
        if (!celer_onnx_attr_int(node, "broadcast", 0)) s->axis = -1;
    }
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

/* ---- per-run phases ---- */

static celer_status check_numel(const celer_op_info *info, const celer_shape *s) {
    char who[160];
    if (celer_shape_numel(s) < 0) {
        char buf[128];
        return celer_errorf(CELER_ERR_LIMIT, "%s: output shape %s is too large", WHO(info),
                            celer_shape_str(s, buf, sizeof buf));
    }
    return CELER_OK;
}

/* Inputs as the loops see them. Opset < 7 binary ops broadcast B onto A by their own rules:
 * with `axis`, B's dims line up with A's from that axis on; PRelu-6 applies a 1-D slope of
 * length C along axis 1. The view (a copy of B's header with a new shape) lives in *tmp. */
static celer_status binary_inputs(const celer_kernel_call *call, celer_tensor *tmp,
                                  const celer_tensor *ins[2]) {
    const ew_state *s = call->state;
    ins[0] = call->in[0];
    ins[1] = call->in[1];
    if (!s->legacy) return CELER_OK;
    const celer_shape *a = &ins[0]->shape, *b = &ins[1]->shape;
    *tmp = *ins[1];
    if (s->op->kind == EW_PRELU) {
        if (b->rank == 1 && a->rank >= 2 && b->dims[0] == a->dims[1] && b->dims[0] != 1) {
            tmp->shape.rank = a->rank - 1;
            for (int d = 1; d < tmp->shape.rank; d++) tmp->shape.dims[d] = 1;
            ins[1] = tmp;
        }
        return CELER_OK;
    }
    if (s->axis < 0) return CELER_OK; /* trailing alignment is numpy's rule */
    int64_t axis = s->axis < 0 ? s->axis + a->rank : s->axis;
    if (axis < 0 || axis + b->rank > a->rank) {
        char who[160], sa[128], sb[128];
        return celer_errorf(CELER_ERR_SHAPE, "%s: B %s does not fit A %s at axis %lld",
                            WHO(call->info), celer_shape_str(b, sb, sizeof sb),
                            celer_shape_str(a, sa, sizeof sa), (long long)s->axis);
    }
    /* B's dims followed by ones up to A's rank, so numpy alignment puts them at `axis` */
    tmp->shape.rank = a->rank - (int)axis;
    for (int d = b->rank; d < tmp->shape.rank; d++) tmp->shape.dims[d] = 1;
    ins[1] = tmp;
    return CELER_OK;
}

/* Output shape: broadcast of every present input. */
static celer_status reshape_bcast(celer_kernel_call *call) {
    char who[160];
    const celer_op_info *info = call->info;
    celer_shape s = {0};
    bool first = true;
    celer_tensor tmp;
    const celer_tensor *ins2[2];
    const celer_tensor *const *in = call->in;
    if (((const ew_state *)call->state)->legacy) {
        celer_status st = binary_inputs(call, &tmp, ins2);
        if (st) return st;
        in = ins2;
    }
    for (int k = 0; k < call->n_in; k++) {
        if (!in[k]) continue;
        if (first) {
            s = in[k]->shape;
            first = false;
        } else {
            celer_status st = celer_shape_broadcast(&s, &in[k]->shape, &s);
            if (st) return celer_error_wrap(st, "%s: input %d", WHO(info), k);
        }
    }
    if (first) return celer_errorf(CELER_ERR_INVALID, "%s: no inputs", WHO(info));
    call->out[0].shape = s;
    return check_numel(info, &s);
}

static celer_status reshape_prelu(celer_kernel_call *call) {
    char who[160], a[128], b[128];
    celer_shape s;
    celer_tensor tmp;
    const celer_tensor *ins[2];
    celer_status st = binary_inputs(call, &tmp, ins);
    if (st) return st;
    const celer_shape *x = &ins[0]->shape, *slope = &ins[1]->shape;
    if (celer_shape_broadcast(x, slope, &s) || !celer_shape_equal(&s, x))
        return celer_errorf(CELER_ERR_SHAPE, "%s: slope %s does not broadcast to X %s",
                            WHO(call->info), celer_shape_str(slope, a, sizeof a),
                            celer_shape_str(x, b, sizeof b));
    call->out[0].shape = *x;
    return CELER_OK;
}

/* Clip >= 11: min and max, when given, must be single elements. */
static celer_status reshape_clip(celer_kernel_call *call) {
    char who[160];
    for (int k = 1; k < call->n_in && k < 3; k++) {
        const celer_tensor *b = call->in[k];
        if (b && celer_shape_numel(&b->shape) != 1) {
            char buf[128];
            return celer_errorf(CELER_ERR_SHAPE, "%s: %s must be a scalar, got shape %s",
                                WHO(call->info), k == 1 ? "min" : "max",
                                celer_shape_str(&b->shape, buf, sizeof buf));
        }
    }
    return celer_ops_reshape_same(call);
}

/* Cast/CastLike to string keep the text in a per-context buffer (*local), sized here so run does
 * not allocate; the output's strings stay valid until this node runs again in the context. */
typedef struct str_buf {
    size_t cap;
    char data[];
} str_buf;

static celer_status reshape_cast(celer_kernel_call *call) {
    char who[160];
    call->out[0].shape = call->in[0]->shape;
    if (call->out[0].dtype != CELER_STRING || call->in[0]->dtype == CELER_STRING) return CELER_OK;
    int64_t n = celer_shape_numel(&call->in[0]->shape);
    size_t need;
    if (n < 0 || celer_mul_size((size_t)n, EW_STR_SLOT, &need) || need > EW_STR_CAP)
        return celer_errorf(CELER_ERR_LIMIT, "%s: too many elements to format as strings",
                            WHO(call->info));
    str_buf *b = *call->local;
    if (!b || b->cap < need) {
        free(b);
        *call->local = b = malloc(sizeof *b + (need ? need : 1));
        if (!b) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", WHO(call->info));
        b->cap = need;
    }
    return CELER_OK;
}

static celer_status check_fn(const celer_op_info *info, const void *fn, celer_dtype t) {
    char who[160];
    if (!fn)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: no loop for type %s", WHO(info),
                            celer_dtype_name(t));
    return CELER_OK;
}

static celer_status check_same_types(celer_kernel_call *call, int from) {
    char who[160];
    for (int k = from; k < call->n_in; k++)
        if (call->in[k] && call->in[k]->dtype != call->in[0]->dtype)
            return celer_errorf(CELER_ERR_DTYPE, "%s: input %d is %s, expected %s",
                                WHO(call->info), k, celer_dtype_name(call->in[k]->dtype),
                                celer_dtype_name(call->in[0]->dtype));
    return CELER_OK;
}

/* A unary loop split across the run's threads by element ranges. */
typedef struct unary_job {
    unary_fn fn;
    char *y;
    const char *x;
    size_t y_size, x_size;
    const ew_params *p;
} unary_job;
static void unary_range(void *ctx, size_t lo, size_t hi) {
    const unary_job *j = ctx;
    j->fn(j->y + lo * j->y_size, j->x + lo * j->x_size, hi - lo, j->p);
}

static size_t op_par_min(const ew_op *op) {
    return op->heavy ? EW_PAR_MIN_HEAVY : EW_PAR_MIN_CHEAP;
}

static celer_status run_unary(celer_kernel_call *call) {
    const ew_state *s = call->state;
    const celer_tensor *x = call->in[0];
    unary_fn fn = valid_index(x->dtype) ? s->op->unary[x->dtype] : NULL;
    celer_status st = check_fn(call->info, (const void *)fn, x->dtype);
    if (st) return st;
    ew_params p = s->p;
    if (s->op->kind == EW_CLIP && call->info->since_version >= 11) {
        if ((st = check_same_types(call, 1))) return st;
        p.lo = call->n_in > 1 && call->in[1] ? call->in[1]->data : NULL;
        p.hi = call->n_in > 2 && call->in[2] ? call->in[2]->data : NULL;
    }
    unary_job j = {fn, call->out[0].data, x->data, celer_dtype_size(call->out[0].dtype),
                   celer_dtype_size(x->dtype), &p};
    celer_ops_parallel_for((size_t)celer_shape_numel(&x->shape), op_par_min(s->op), EW_PAR_ALIGN,
                           unary_range, &j);
    return CELER_OK;
}

static celer_status run_binary(celer_kernel_call *call) {
    const ew_state *s = call->state;
    celer_dtype t = call->in[0]->dtype;
    loop_fn fn = valid_index(t) ? s->op->loop[t] : NULL;
    celer_status st = check_fn(call->info, (const void *)fn, t);
    if (!st) st = check_same_types(call, 1);
    if (st) return st;
    celer_tensor tmp;
    const celer_tensor *ins[2];
    if ((st = binary_inputs(call, &tmp, ins))) return st;
    return apply(fn, &call->out[0], ins, 2, &s->p, op_par_min(s->op));
}

static celer_status run_pow(celer_kernel_call *call) {
    const ew_state *s = call->state;
    celer_dtype ta = call->in[0]->dtype, tb = call->in[1]->dtype;
    ew_params p = s->p;
    p.ta = ta;
    p.tb = tb;
    loop_fn fn = ta == tb && valid_index(ta) ? pow_tab[ta] : NULL;
    if (!fn) {
        bool base_ok = ta == CELER_INT32 || ta == CELER_INT64 ||
                       (valid_index(ta) && pow_tab[ta]);
        bool exp_ok = (unsigned)tb < 32 && (CELER_DT(tb) & (CELER_DTS_NUMERIC | CELER_DT(CELER_BFLOAT16)));
        if (!base_ok || !exp_ok) {
            char who[160];
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: no loop for %s ^ %s", WHO(call->info),
                                celer_dtype_name(ta), celer_dtype_name(tb));
        }
        fn = pow_mixed;
    }
    celer_tensor tmp;
    const celer_tensor *ins[2];
    celer_status st = binary_inputs(call, &tmp, ins);
    if (st) return st;
    return apply(fn, &call->out[0], ins, 2, &p, op_par_min(s->op));
}

static celer_status run_variadic(celer_kernel_call *call) {
    const ew_state *s = call->state;
    celer_tensor *out = &call->out[0];
    celer_dtype t = call->in[0]->dtype;
    loop_fn fn = valid_index(t) ? s->op->loop[t] : NULL;
    celer_status st = check_fn(call->info, (const void *)fn, t);
    if (!st) st = check_same_types(call, 1);
    if (st) return st;
    /* the first two inputs combine into out in one pass, the rest fold into out; a lone input
     * is copied (broadcast if need be) */
    int n = 0, first = -1, second = -1;
    for (int k = 0; k < call->n_in; k++) {
        if (!call->in[k]) continue;
        if (first < 0)
            first = k;
        else if (second < 0)
            second = k;
        n++;
    }
    if (first < 0) return celer_errorf(CELER_ERR_INVALID, "%s: no inputs", call->info->node->op_type);
    if (second < 0) {
        const celer_tensor *x = call->in[first];
        if (celer_shape_equal(&x->shape, &out->shape)) {
            size_t bytes;
            if ((st = celer_tensor_bytes(x, &bytes))) return st;
            if (out->data != x->data && bytes) memmove(out->data, x->data, bytes);
        } else {
            size_t es = celer_dtype_size(t);
            loop_fn copy = es <= 8 ? copy_by_size[es] : NULL;
            if ((st = check_fn(call->info, (const void *)copy, t))) return st;
            if ((st = apply(copy, out, &x, 1, &s->p, op_par_min(s->op)))) return st;
        }
    } else {
        const celer_tensor *two[2] = {call->in[first], call->in[second]};
        if ((st = apply(fn, out, two, 2, &s->p, op_par_min(s->op)))) return st;
        for (int k = second + 1; k < call->n_in; k++) {
            if (!call->in[k]) continue;
            const celer_tensor *acc[2] = {out, call->in[k]};
            if ((st = apply(fn, out, acc, 2, &s->p, op_par_min(s->op)))) return st;
        }
    }
    if (s->op->mean && n > 1) {
        ew_params p = s->p;
        p.alpha = (float)n;
        divn_tab[t](out->data, out->data, (size_t)celer_shape_numel(&out->shape), &p);
    }
    return CELER_OK;
}

static celer_status run_where(celer_kernel_call *call) {
    static const loop_fn by_size[17] = {[1] = where_1, [2] = where_2, [4] = where_4,
                                        [8] = where_8, [16] = where_16};
    size_t es = celer_dtype_size(call->in[1]->dtype);
    loop_fn fn = es <= 16 ? by_size[es] : NULL;
    celer_status st = check_fn(call->info, (const void *)fn, call->in[1]->dtype);
    if (st) return st;
    if (call->in[0]->dtype != CELER_BOOL || call->in[2]->dtype != call->in[1]->dtype) {
        char who[160];
        return celer_errorf(CELER_ERR_DTYPE, "%s: expects (bool, T, T) inputs", WHO(call->info));
    }
    return apply(fn, &call->out[0], call->in, 3, &((const ew_state *)call->state)->p,
                 EW_PAR_MIN_CHEAP);
}

/* Copies src into out[cap], truncating (formatted numbers always fit EW_STR_SLOT). */
static void copy_str(char *out, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(out, src, n);
    out[n] = 0;
}

/* Shortest text that reads back as the same value of type t, laid out as numpy's str() does:
 * positional for 1e-4 <= |v| < 1e16 ("0.5", "100.0"), scientific otherwise ("1e-05"). */
static void format_float(char *out, size_t cap, double v, celer_dtype t) {
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "INF" : "-INF");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char sci[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
        double back = strtod(sci, NULL);
        bool same = t == CELER_DOUBLE                ? back == v
                    : t == CELER_FLOAT16             ? celer_float_to_half((float)back) ==
                                                           celer_float_to_half((float)v)
                    : t == CELER_BFLOAT16            ? celer_float_to_bf16((float)back) ==
                                                           celer_float_to_bf16((float)v)
                                                     : (float)back == (float)v;
        if (same) break;
    }
    double a = fabs(v);
    if (a < 1e-4 || a >= 1e16) {
        copy_str(out, cap, sci);
        return;
    }
    /* digits and exponent from the scientific form "-d.ddde+XX" */
    char digits[24];
    int nd = 0;
    const char *c = sci + (v < 0);
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') digits[nd++] = *c;
    int e = atoi(c + 1);
    size_t n = 0;
    char buf[64];
    if (v < 0) buf[n++] = '-';
    if (e < 0) {
        buf[n++] = '0';
        buf[n++] = '.';
        for (int k = 0; k < -e - 1; k++) buf[n++] = '0';
        for (int k = 0; k < nd; k++) buf[n++] = digits[k];
    } else {
        for (int k = 0; k <= e; k++) buf[n++] = k < nd ? digits[k] : '0';
        buf[n++] = '.';
        if (nd > e + 1)
            for (int k = e + 1; k < nd; k++) buf[n++] = digits[k];
        else
            buf[n++] = '0';
    }
    buf[n] = 0;
    copy_str(out, cap, buf);
}

static void format_value(char *out, size_t cap, const celer_tensor *x, size_t i) {
    celer_dtype t = x->dtype;
    if (t == CELER_UINT64)
        snprintf(out, cap, "%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
    else if (is_int(t))
        snprintf(out, cap, "%lld", (long long)celer_ops_int_at(x, (int64_t)i));
    else
        format_float(out, cap, celer_ops_double_at(x, (int64_t)i), t);
}

/* Stores an int64 into element i of an integer tensor, wrapping like a C conversion. */
static void store_i64(celer_tensor *y, size_t i, int64_t v) {
    switch (y->dtype) {
    case CELER_INT64: ((int64_t *)y->data)[i] = v; break;
    case CELER_UINT64: ((uint64_t *)y->data)[i] = (uint64_t)v; break;
    case CELER_INT32: ((int32_t *)y->data)[i] = (int32_t)v; break;
    case CELER_UINT32: ((uint32_t *)y->data)[i] = (uint32_t)v; break;
    case CELER_INT16: ((int16_t *)y->data)[i] = (int16_t)v; break;
    case CELER_UINT16: ((uint16_t *)y->data)[i] = (uint16_t)v; break;
    case CELER_INT8: ((int8_t *)y->data)[i] = (int8_t)v; break;
    case CELER_UINT8: ((uint8_t *)y->data)[i] = (uint8_t)v; break;
    case CELER_BOOL: ((uint8_t *)y->data)[i] = v != 0; break;
    default: celer_ops_double_store(y, (int64_t)i, (double)v); break;
    }
}

/* Parses s into element i of y: integers exactly when written as integers, otherwise through
 * strtod, which also reads "INF", "-inf" and "NaN" in any case. */
/* Longest text read as a number; longer strings (and any holding a NUL byte) are refused. */
#define EW_PARSE_MAX 255

static celer_status parse_value(const celer_op_info *info, celer_str str, celer_tensor *y,
                                size_t i) {
    char buf[EW_PARSE_MAX + 1], *end;
    /* strtod needs a C string: a copy, so bytes after an embedded NUL are not ignored */
    if (str.len > EW_PARSE_MAX || (str.len && memchr(str.data, 0, str.len))) {
        char who[160];
        return celer_errorf(CELER_ERR_INVALID, "%s: cannot read a string of %zu bytes%s as %s", WHO(info), str.len,
                            str.len > EW_PARSE_MAX ? "" : " holding a NUL byte", celer_dtype_name(y->dtype));
    }
    if (str.len) memcpy(buf, str.data, str.len);
    buf[str.len] = 0;
    const char *s = buf;
    if (is_int(y->dtype)) {
        errno = 0;
        if (y->dtype == CELER_UINT64 && !strchr(s, '-')) {
            unsigned long long u = strtoull(s, &end, 10);
            if (end != s && !*end && !errno) {
                ((uint64_t *)y->data)[i] = u;
                return CELER_OK;
            }
        } else {
            long long v = strtoll(s, &end, 10);
            if (end != s && !*end && !errno) {
                store_i64(y, i, v);
                return CELER_OK;
            }
        }
    }
    double d = strtod(s, &end);
    while (end != s && (*end == ' ' || *end == '\t' || *end == '\n')) end++;
    if (end == s || *end) {
        char who[160];
        return celer_errorf(CELER_ERR_INVALID, "%s: cannot read \"%.40s\" as %s", WHO(info), s,
                            celer_dtype_name(y->dtype));
    }
    if (y->dtype == CELER_UINT64)
        ((uint64_t *)y->data)[i] = sat_u64(d);
    else if (is_int(y->dtype) && y->dtype != CELER_BOOL)
        store_i64(y, i, sat_i64(d));
    else
        celer_ops_double_store(y, (int64_t)i, d);
    return CELER_OK;
}

static celer_status run_cast(celer_kernel_call *call) {
    const celer_tensor *x = call->in[0];
    celer_tensor *y = &call->out[0];
    size_t n = (size_t)celer_shape_numel(&x->shape);
    celer_dtype from = x->dtype, to = y->dtype;
    if (from == to) {
        size_t bytes = n * celer_dtype_size(from);
        if (y->data != x->data && bytes) memmove(y->data, x->data, bytes);
        return CELER_OK;
    }
    if (to == CELER_STRING) {
        str_buf *b = *call->local;
        if (!b || b->cap < n * EW_STR_SLOT)
            return celer_errorf(CELER_ERR_INTERNAL, "Cast: string buffer missing");
        celer_str *out = y->data;
        for (size_t i = 0; i < n; i++) {
            char *slot = b->data + i * EW_STR_SLOT;
            format_value(slot, EW_STR_SLOT, x, i);
            out[i] = (celer_str){slot, strlen(slot)};
        }
        return CELER_OK;
    }
    if (from == CELER_STRING) {
        const celer_str *in = x->data;
        for (size_t i = 0; i < n; i++) {
            celer_status st = parse_value(call->info, in[i], y, i);
            if (st) return st;
        }
        return CELER_OK;
    }
    unary_fn fn = valid_index(from) && valid_index(to) ? cast_fns[from][to] : NULL;
    if (!fn) {
        char who[160];
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: cannot cast %s to %s", WHO(call->info),
                            celer_dtype_name(from), celer_dtype_name(to));
    }
    fn(y->data, x->data, n, NULL);
    return CELER_OK;
}

/* ---- the kernel table ---- */
#define MAXV CELER_OPS_MAX_VERSION
#define BF CELER_DT(CELER_BFLOAT16)
#define FL CELER_DTS_FLOATS                                      /* float, double, float16 */
#define NUM CELER_DTS_NUMERIC                                    /* FL and every integer */
#define B1 CELER_DT(CELER_BOOL)
#define I3264 (CELER_DT(CELER_INT32) | CELER_DT(CELER_INT64))
#define INTS CELER_DTS_INTS
#define ARITH7 (FL | I3264 | CELER_DT(CELER_UINT32) | CELER_DT(CELER_UINT64))
#define WHERE_T (NUM | B1 | CELER_DT(CELER_STRING) | CELER_DT(CELER_COMPLEX64) | CELER_DT(CELER_COMPLEX128))
#define CAST_T (NUM | B1)
#define IP CELER_KERNEL_INPLACE

#define K(op, since, until, types, tin, flags, reshape, run) \
    {"", op, since, until, types, tin, flags, infer_types, ew_init, reshape, run, free, NULL}
#define KU(op, since, until, types) K(op, since, until, types, 0, IP, celer_ops_reshape_same, run_unary)
#define KP(op, since, until, types) K(op, since, until, types, 0, 0, celer_ops_reshape_same, run_unary)
#define KB(op, since, until, types) K(op, since, until, types, 0, IP, reshape_bcast, run_binary)
#define KC(op, since, until, types) K(op, since, until, types, 0, 0, reshape_bcast, run_binary)
#define KV(op, since, until, types) K(op, since, until, types, 0, IP, reshape_bcast, run_variadic)
#define KCAST(op, since, until, types) \
    {"", op, since, until, types, 0, 0, infer_types, ew_init, reshape_cast, run_cast, free, free}

static const celer_kernel kernels[] = {
    KU("Abs", 6, 12, NUM), KU("Abs", 13, MAXV, NUM | BF),
    KU("Neg", 6, 12, FL | CELER_DTS_SINTS), KU("Neg", 13, MAXV, FL | CELER_DTS_SINTS | BF),
    KU("Reciprocal", 6, 12, FL), KU("Reciprocal", 13, MAXV, FL | BF),
    KU("Sqrt", 6, 12, FL), KU("Sqrt", 13, MAXV, FL | BF),
    KU("Exp", 6, 12, FL), KU("Exp", 13, MAXV, FL | BF),
    KU("Log", 6, 12, FL), KU("Log", 13, MAXV, FL | BF),
    KU("Sin", 7, MAXV, FL), KU("Cos", 7, MAXV, FL), KU("Tan", 7, MAXV, FL),
    KU("Asin", 7, MAXV, FL), KU("Acos", 7, MAXV, FL), KU("Atan", 7, MAXV, FL),
    KU("Sinh", 9, MAXV, FL), KU("Cosh", 9, MAXV, FL), KU("Asinh", 9, MAXV, FL),
    KU("Acosh", 9, MAXV, FL), KU("Atanh", 9, MAXV, FL),
    KU("Erf", 9, 12, NUM), KU("Erf", 13, MAXV, NUM | BF),
    KU("Sigmoid", 6, 12, FL), KU("Sigmoid", 13, MAXV, FL | BF),
    KU("Tanh", 6, 12, FL), KU("Tanh", 13, MAXV, FL | BF),
    KU("Relu", 6, 12, FL), KU("Relu", 13, 13, FL | BF),
    KU("Relu", 14, MAXV, FL | BF | CELER_DTS_SINTS),
    KU("LeakyRelu", 6, 15, FL), KU("LeakyRelu", 16, MAXV, FL | BF),
    KU("Elu", 6, MAXV, FL), KU("Selu", 6, MAXV, FL), KU("Celu", 12, MAXV, CELER_DT(CELER_FLOAT)),
    KU("HardSigmoid", 6, MAXV, FL), KU("HardSwish", 14, MAXV, FL),
    KU("Softplus", 1, MAXV, FL), KU("Softsign", 1, MAXV, FL),
    KU("ThresholdedRelu", 10, MAXV, FL), KU("Shrink", 9, MAXV, NUM),
    KU("Gelu", 20, MAXV, FL | BF), KU("Mish", 18, MAXV, FL),
    KU("Sign", 9, 12, NUM), KU("Sign", 13, MAXV, NUM | BF),
    KU("Round", 11, MAXV, FL),
    KU("Ceil", 6, 12, FL), KU("Ceil", 13, MAXV, FL | BF),
    KU("Floor", 6, 12, FL), KU("Floor", 13, MAXV, FL | BF),
    KU("Not", 1, MAXV, B1),
    KP("IsNaN", 9, 12, FL), KP("IsNaN", 13, MAXV, FL | BF),
    KP("IsInf", 10, MAXV, CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE)),
    KU("Clip", 6, 10, FL),
    K("Clip", 11, 11, FL, 0, IP, reshape_clip, run_unary),
    K("Clip", 12, 12, NUM, 0, IP, reshape_clip, run_unary),
    K("Clip", 13, MAXV, NUM | BF, 0, IP, reshape_clip, run_unary),
    KB("Add", 6, 6, ARITH7), KB("Sub", 6, 6, ARITH7), KB("Mul", 6, 6, ARITH7),
    KB("Div", 6, 6, ARITH7), KB("And", 1, 6, B1), KB("Or", 1, 6, B1), KB("Xor", 1, 6, B1),
    K("Pow", 1, 6, FL, 0, IP, reshape_bcast, run_pow),
    KC("Equal", 1, 6, B1 | I3264), KC("Greater", 1, 6, FL), KC("Less", 1, 6, FL),
    K("PRelu", 6, 6, FL, 0, IP, reshape_prelu, run_binary),
    KB("Add", 7, 12, ARITH7), KB("Add", 13, 13, ARITH7 | BF), KB("Add", 14, MAXV, NUM | BF),
    KB("Sub", 7, 12, ARITH7), KB("Sub", 13, 13, ARITH7 | BF), KB("Sub", 14, MAXV, NUM | BF),
    KB("Mul", 7, 12, ARITH7), KB("Mul", 13, 13, ARITH7 | BF), KB("Mul", 14, MAXV, NUM | BF),
    KB("Div", 7, 12, ARITH7), KB("Div", 13, 13, ARITH7 | BF), KB("Div", 14, MAXV, NUM | BF),
    K("Pow", 7, 11, FL, 0, IP, reshape_bcast, run_pow),
    K("Pow", 12, 12, FL | I3264, 0, IP, reshape_bcast, run_pow),
    K("Pow", 13, MAXV, FL | I3264 | BF, 0, IP, reshape_bcast, run_pow),
    KB("Mod", 10, 12, NUM), KB("Mod", 13, MAXV, NUM | BF),
    KB("BitShift", 11, MAXV, CELER_DTS_UINTS),
    KB("And", 7, MAXV, B1), KB("Or", 7, MAXV, B1), KB("Xor", 7, MAXV, B1),
    KB("BitwiseAnd", 18, MAXV, INTS), KB("BitwiseOr", 18, MAXV, INTS),
    KB("BitwiseXor", 18, MAXV, INTS), KU("BitwiseNot", 18, MAXV, INTS),
    KC("Equal", 7, 10, B1 | I3264), KC("Equal", 11, 12, B1 | NUM),
    KC("Equal", 13, MAXV, B1 | NUM | BF | CELER_DT(CELER_STRING)),
    KC("Greater", 7, 8, FL), KC("Greater", 9, 12, NUM), KC("Greater", 13, MAXV, NUM | BF),
    KC("Less", 7, 8, FL), KC("Less", 9, 12, NUM), KC("Less", 13, MAXV, NUM | BF),
    KC("GreaterOrEqual", 12, 15, NUM), KC("GreaterOrEqual", 16, MAXV, NUM | BF),
    KC("LessOrEqual", 12, 15, NUM), KC("LessOrEqual", 16, MAXV, NUM | BF),
    K("PRelu", 7, 8, FL, 0, IP, reshape_prelu, run_binary),
    K("PRelu", 9, 15, ARITH7, 0, IP, reshape_prelu, run_binary),
    K("PRelu", 16, MAXV, ARITH7 | BF, 0, IP, reshape_prelu, run_binary),
    KV("Max", 6, 11, FL), KV("Max", 12, 12, NUM), KV("Max", 13, MAXV, NUM | BF),
    KV("Min", 6, 11, FL), KV("Min", 12, 12, NUM), KV("Min", 13, MAXV, NUM | BF),
    KV("Sum", 6, 12, FL), KV("Sum", 13, MAXV, FL | BF),
    KV("Mean", 6, 12, FL), KV("Mean", 13, MAXV, FL | BF),
    K("Where", 9, 15, WHERE_T, 1, 0, reshape_bcast, run_where),
    K("Where", 16, MAXV, WHERE_T | BF, 1, 0, reshape_bcast, run_where),
    KCAST("Cast", 6, 8, CAST_T), KCAST("Cast", 9, 12, CAST_T | CELER_DT(CELER_STRING)),
    KCAST("Cast", 13, MAXV, CAST_T | BF | CELER_DT(CELER_STRING)),
    KCAST("CastLike", 15, MAXV, CAST_T | BF | CELER_DT(CELER_STRING)),
};

const celer_kernel_family celer_family_elementwise = {"elementwise", kernels,
                                                      (int)CELER_ARRAY_LEN(kernels)};
