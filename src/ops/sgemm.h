/* sgemm: float matrix products with a constant B packed once at load (module-private to ops).
 *
 * OpenBLAS's SGEMM repacks B on every call, which for the few rows of an inference costs about
 * as much as the product. Here B is copied at load into panels of CELER_SGEMM_NR columns, each
 * panel K rows of NR contiguous floats (zero-padded past N), with the bias beside it; a run reads
 * A in place and keeps a tile of rows x NR of Y in registers while it walks a block of K, adding
 * the bias in the first block and applying the caller's activation to the tile in the last. The
 * micro-kernels (AVX-512, AVX2 + FMA, plain C) are picked at run time from the CPU; the layout is
 * the same for all, so a model packed once runs on any of them. */
#ifndef CELER_OPS_SGEMM_H
#define CELER_OPS_SGEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"

#define CELER_SGEMM_NR 32 /* columns per panel */

typedef struct celer_sgemm_b {
    int64_t k, n, panels;
    float *data; /* panels * k * NR floats, 64-byte aligned; owned */
    float *bias; /* panels * NR floats (0 past N), or NULL for no bias; owned */
} celer_sgemm_b;

/* Packs b ([k, n] row-major, or [n, k] with trans_b) and bias (n floats, or NULL) into *out; both
 * are copied, the caller keeps its memory. CELER_ERR_NOMEM when the copies cannot be allocated;
 * `who` names the node in the message. Free with celer_sgemm_b_free. */
celer_status celer_sgemm_pack(const char *who, const float *b, int64_t k, int64_t n, bool trans_b,
                              const float *bias, celer_sgemm_b *out);

/* Frees the copies of celer_sgemm_pack (and zeroes *p); a zeroed struct is fine. */
void celer_sgemm_b_free(celer_sgemm_b *p);

/* Applied to each finished tile of Y, in place: rows x n values from y, rows ldy apart. */
typedef void (*celer_sgemm_epilogue)(const void *ctx, float *y, int64_t ldy, int64_t rows, int64_t n);

/* Y[m, n] = epi(A[m, k] B + bias), or epi(Y + A B + bias) with accumulate. A and Y row-major with
 * leading dimensions lda >= k and ldy >= n; they are read and written in place, nothing is
 * allocated. Splits the work over the OpenMP team (omp_get_max_threads) when it is big enough.
 * epi may be NULL. m and b->k may be 0 (Y = bias, activated). */
void celer_sgemm_run(const celer_sgemm_b *b, int64_t m, const float *a, int64_t lda, float *y, int64_t ldy,
                     bool accumulate, celer_sgemm_epilogue epi, const void *epi_ctx);

/* For a B that changes per call (attention's Q K^T and P V): the floats of 64-byte aligned memory
 * celer_sgemm_pack_into needs for a [k, n] B. */
size_t celer_sgemm_packed_floats(int64_t k, int64_t n);

/* Packs b ([k, n] with row stride ldb >= n, or [n, k] with trans_b and row stride ldb >= k) into
 * the caller's `data` (celer_sgemm_packed_floats(k, n) floats, 64-byte aligned) and makes *out a
 * view of it, without bias: out->data points into `data`, which the caller keeps owning (never
 * pass such a view to celer_sgemm_b_free). Allocates nothing. */
void celer_sgemm_pack_into(const float *b, int64_t ldb, int64_t k, int64_t n, bool trans_b, float *data,
                           celer_sgemm_b *out);

/* Rows [r0, r1) of Y = A B as celer_sgemm_run computes them (no bias, no epilogue, no accumulate),
 * on the calling thread only: for callers that split the work over the team themselves. */
void celer_sgemm_run_rows(const celer_sgemm_b *b, int64_t r0, int64_t r1, const float *a, int64_t lda, float *y,
                          int64_t ldy);

/* The micro-kernel variants. */
typedef enum celer_sgemm_isa {
    CELER_SGEMM_AUTO,   /* the best the CPU has */
    CELER_SGEMM_PLAIN,  /* portable C */
    CELER_SGEMM_AVX2,   /* AVX2 + FMA */
    CELER_SGEMM_AVX512, /* AVX-512F */
} celer_sgemm_isa;

/* For tests and benchmarks: makes every later run use `isa` (AUTO: back to the CPU's best) and
 * returns the variant now in use, which is the CPU's best when it lacks `isa`. Not thread-safe:
 * call it while nothing runs. */
celer_sgemm_isa celer_sgemm_force_isa(celer_sgemm_isa isa);

#endif
