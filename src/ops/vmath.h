/* vmath: float32 exp and erf written so that loops over them vectorize (libm's are scalar
 * calls), for the elementwise, softmax and fused kernels (module-private to ops). Include after
 * <math.h> and <string.h>; files using them compile with no-trapping-math (see elementwise.c) so
 * that the selects stay branch-free. */
#ifndef CELER_OPS_VMATH_H
#define CELER_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* On a loop function: also compile it for x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512) and pick
 * the version when the program loads (GCC function multi-versioning), so the portable build still
 * runs these loops at the machine's vector width. A clone is never inlined into its caller: put it
 * on a function that runs a whole loop. Plain elsewhere (and under ASan, whose instrumentation
 * does not mix with the ifunc resolvers). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define CELER_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CELER_VECTOR_CLONES
#endif

/* exp for float32 written so loops over it vectorize (libm's expf is a scalar call): Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial fitted here for relative
 * error (max 1.2e-7 over the interval) and a scale by 2^n built from exponent bits in two halves
 * so that overflow and gradual underflow come out right. No branches (they would stop the
 * vectorizer) and no float -> int conversion: n is read from the bits of the rounded value. A NaN
 * input passes the clamps unchanged and makes r, hence the result, NaN. */

/* x = n ln2 + r: returns the polynomial for e^r - 1 (which keeps its relative precision as r
 * goes to 0) and sets *n (|x| <= 104). */
static inline float celer_exp_reduce(float x, int32_t *n) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float nf = t - shifter;
    uint32_t tb;
    memcpy(&tb, &t, 4);
    *n = (int32_t)(tb - 0x4B400000u);      /* t's low mantissa bits hold n */
    float r = x - nf * 0.693359375f;       /* ln2 high part: exact product for |n| <= 256 */
    r = r - nf * -2.12194440054690583e-4f; /* ln2 - high part */
    float q = 0.001381461275741458f;
    q = q * r + 0.008368710055947304f;
    q = q * r + 0.04166838899254799f;
    q = q * r + 0.1666652113199234f;
    q = q * r + 0.4999999403953552f;
    return r + r * r * q;
}

static inline float celer_fast_expf(float x) {
    float xc = x < -104.0f ? -104.0f : x; /* e^-104 is below the smallest subnormal */
    xc = xc > 89.0f ? 89.0f : xc;         /* e^89 overflows to inf */
    int32_t ni;
    float p = 1.0f + celer_exp_reduce(xc, &ni);
    int32_t n1 = ni >> 1, n2 = ni - n1;
    uint32_t b1 = (uint32_t)(n1 + 127) << 23, b2 = (uint32_t)(n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    return p * s1 * s2;
}

/* e^x for x the caller keeps within [-80, 80], where no result is subnormal or infinite: one
 * exponent scale instead of two, and no clamps (the RNN gates, which clamp once for several).
 * Sets *m1 to e^x - 1, with its relative precision near 0 (n = 0 there: no cancellation). */
static inline float celer_bounded_expf(float x, float *m1) {
    int32_t ni;
    float pm1 = celer_exp_reduce(x, &ni);
    uint32_t b = (uint32_t)(ni + 127) << 23;
    float s;
    memcpy(&s, &b, 4);
    float e = (1.0f + pm1) * s;
    *m1 = ni == 0 ? pm1 : e - 1.0f;
    return e;
}
/* erf for float32, vectorizable (libm's is a scalar call that took 8% of a BERT run through its
 * GELUs): below |x| = 0.5 the odd Taylor series to x^11 (truncation under 3e-8 relative), above
 * it 1 - erfc(|x|) with erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a/2), P the Chebyshev fit of
 * Numerical Recipes' erfcc (relative error of erfc below 1.2e-7), sign restored. Both branches
 * are computed and one selected, so the loop has no branch. NaN propagates through either. */
static inline float celer_fast_erff(float x) {
    float a = fabsf(x), z = x * x;
    float s = -1.0f / 1320;
    s = s * z + 1.0f / 216;
    s = s * z - 1.0f / 42;
    s = s * z + 0.1f;
    s = s * z - 1.0f / 3;
    s = s * z + 1.0f;
    float small = 1.12837916709551257f * x * s; /* 2/sqrt(pi) */
    float t = 1.0f / (1.0f + 0.5f * a);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float big = 1.0f - t * celer_fast_expf(p - z);
    big = x < 0 ? -big : big;
    return a < 0.5f ? small : big;
}

/* GELU, erf form: x/2 (1 + erf(x / sqrt 2)), with erfc(a) = t P(t) exp(-a^2), t = 1 / (1 + p a):
 * Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7, which near 0 is relative error of
 * that size in 1 + erf, hence in GELU (so the small-argument series erf itself needs is not). */
static inline float celer_fast_gelu(float x) {
    float u = x * 0.70710678118654752f, a = fabsf(u);
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float erfc = t * p * celer_fast_expf(-u * u); /* erfc(|u|) */
    float one_plus_erf = u < 0 ? erfc : 2.0f - erfc;
    return 0.5f * x * one_plus_erf;
}

/* Logistic sigmoid 1 / (1 + e^-x) on celer_fast_expf: relative error about 2e-7; e^-x overflowing
 * to inf for x < -89 gives the right limit, 0. */
static inline float celer_fast_sigmoidf(float x) { return 1.0f / (1.0f + celer_fast_expf(-x)); }

/* tanh, vectorizable: (1 - e) / (1 + e) with e = e^-2|x|, sign restored; below |x| = 1/4, where
 * 1 - e cancels, the odd Taylor series to x^9 (truncation under 1e-8 relative). Both computed,
 * one selected, no branch. Relative error about 3e-7. */
static inline float celer_fast_tanhf(float x) {
    float a = fabsf(x), z = x * x;
    float e = celer_fast_expf(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0 ? -big : big;
    float s = 62.0f / 2835;
    s = s * z - 17.0f / 315;
    s = s * z + 2.0f / 15;
    s = s * z - 1.0f / 3;
    float small = x + x * z * s;
    return a < 0.25f ? small : big;
}

/* e^x - 1, vectorizable: celer_fast_expf(x) - 1 except below |x| = 1/4, where that cancels, the
 * Taylor series to x^8 (truncation under 1e-9 relative). Both computed, one selected, no branch.
 * Relative error about 3e-7; -1 in the limit, NaN propagates. */
static inline float celer_fast_expm1f(float x) {
    float big = celer_fast_expf(x) - 1.0f;
    float s = 1.0f / 40320;
    s = s * x + 1.0f / 5040;
    s = s * x + 1.0f / 720;
    s = s * x + 1.0f / 120;
    s = s * x + 1.0f / 24;
    s = s * x + 1.0f / 6;
    s = s * x + 0.5f;
    float small = x + x * x * s;
    return fabsf(x) < 0.25f ? small : big;
}

#endif
