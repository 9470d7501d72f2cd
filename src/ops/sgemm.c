/* sgemm: Y = act(A B + bias) over B packed once at load (see sgemm.h).
 *
 * Layout: panel p holds columns [p NR, p NR + NR) of B as K rows of NR floats, so a step of K
 * reads one contiguous 128-byte row of the panel. A run walks the panels in order, within a panel
 * K in blocks (a block stays in L2 while every row block of A passes over it), and within a block
 * rows of A in tiles of the micro-kernel's height: the tile of Y lives in registers for the whole
 * block, each step of K loads the panel row once and broadcasts one value of A per row
 * into fused multiply-adds. A is read in place (no packing: it is the broadcast operand).
 *
 * Variants, same layout: AVX-512 (12 rows x 32 columns: 24 accumulators of 32 registers), AVX2 +
 * FMA (6 rows x 16 columns, twice per panel: 12 of 16 registers), plain C (4 x 32, what the
 * compiler makes of it). Each is compiled with __attribute__((target)) and picked per run with
 * __builtin_cpu_supports, so the portable build uses the machine's width. */
#include "sgemm.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define NR CELER_SGEMM_NR
#define KC_MAX 1536 /* K block: at most this many rows of a panel (192 KiB, L2) per pass; see run_block */
#define MR_MAX 12   /* the tallest micro-kernel's rows */
/* Below this many multiply-adds one thread does the product. The team spins between regions
 * (src/cli/main.c), so a split costs about 1 us; measured on the shared 2-core Zen 4 (1 thread
 * against 2 always split, min of 3 alternating rounds, us a product): M=1 K=512 N=256 (128K)
 * 6.4 -> 4.0, M=8 K=256 N=64 (128K, 2 panels) 2.4 -> 2.1, M=1 K=1000 N=512 24.4 -> 13.3, but
 * M=2 K=256 N=64 (32K) 0.95 -> 2.25 and M=1 K=256 N=64 0.75 -> 1.2 lose. */
#define PAR_MIN_MACS (INT64_C(1) << 17)

celer_status celer_sgemm_pack(const char *who, const float *b, int64_t k, int64_t n, bool trans_b,
                              const float *bias, celer_sgemm_b *out) {
    memset(out, 0, sizeof *out);
    int64_t panels = (n + NR - 1) / NR;
    size_t floats = (size_t)panels * (size_t)(k ? k : 1) * NR;
    float *data = aligned_alloc(64, floats * sizeof(float)); /* a multiple of 64: NR floats are 128 bytes */
    float *pbias = bias ? aligned_alloc(64, (size_t)panels * NR * sizeof(float)) : NULL;
    if (!data || (bias && !pbias)) {
        free(data);
        free(pbias);
        return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory packing B [%lld x %lld] (%zu MB)", who,
                            (long long)k, (long long)n, (floats * sizeof(float)) >> 20);
    }
    celer_sgemm_pack_into(b, trans_b ? k : n, k, n, trans_b, data, out);
    out->bias = pbias;
    for (int64_t j = 0; pbias && j < panels * NR; j++) pbias[j] = j < n ? bias[j] : 0.f;
    return CELER_OK;
}

void celer_sgemm_b_free(celer_sgemm_b *p) {
    free(p->data);
    free(p->bias);
    memset(p, 0, sizeof *p);
}

size_t celer_sgemm_packed_floats(int64_t k, int64_t n) {
    return (size_t)((n + NR - 1) / NR) * (size_t)(k ? k : 1) * NR;
}

void celer_sgemm_pack_into(const float *b, int64_t ldb, int64_t k, int64_t n, bool trans_b, float *data,
                           celer_sgemm_b *out) {
    *out = (celer_sgemm_b){.k = k, .n = n, .panels = (n + NR - 1) / NR, .data = data};
    for (int64_t p = 0; p < out->panels; p++) {
        int64_t cols = n - p * NR < NR ? n - p * NR : NR;
        float *dst = data + (size_t)p * (size_t)k * NR;
        if (trans_b) /* column j of the panel is row p NR + j of B */
            for (int64_t j = 0; j < NR; j++)
                for (int64_t kk = 0; kk < k; kk++) dst[kk * NR + j] = j < cols ? b[(p * NR + j) * ldb + kk] : 0.f;
        else
            for (int64_t kk = 0; kk < k; kk++) {
                memcpy(dst + kk * NR, b + kk * ldb + p * NR, sizeof(float) * (size_t)cols);
                for (int64_t j = cols; j < NR; j++) dst[kk * NR + j] = 0.f;
            }
    }
}

/* A micro-kernel: the tile c[rows][width] (leading dimension ldc) =
 * (load ? c : 0) + (bias ? bias row : 0) + a[rows][kc] (leading dimension lda) x bp[kc][width],
 * the first width (NR, or HALF_NR for a last panel of at most that many columns) of the panel's
 * NR columns. rows is at most the variant's height. */
typedef void (*tile_fn)(int rows, int width, int64_t kc, const float *a, int64_t lda, const float *bp, float *c,
                        int64_t ldc, const float *bias, bool load);
/* A last panel this narrow or narrower runs half a tile: attention's 16-wide heads (P V with N =
 * 16) computed 32 columns, half of them padding. */
#define HALF_NR (NR / 2)

/* ---- plain C ---- */

#define PLAIN_MR 4

static void tile_plain(int rows, int width, int64_t kc, const float *a, int64_t lda, const float *bp, float *c,
                       int64_t ldc, const float *bias, bool load) {
    float acc[PLAIN_MR][NR];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = (load && j < width ? c[r * ldc + j] : 0.f) + (bias ? bias[j] : 0.f);
    for (int64_t kk = 0; kk < kc; kk++, bp += NR)
        for (int r = 0; r < rows; r++) {
            float av = a[r * lda + kk];
            for (int j = 0; j < NR; j++) acc[r][j] += av * bp[j];
        }
    for (int r = 0; r < rows; r++) memcpy(c + r * ldc, acc[r], sizeof(float) * (size_t)width);
}

/* ---- AVX2 + FMA: 6 rows x 16 columns, the two halves of a panel one after the other ---- */

#define AVX2_MR 6

/* rows is a constant in every inlined copy (see tile_avx2), so the loops over it unroll and the
 * accumulators stay in registers. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
half_avx2(const int rows, int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc,
          const float *bias, bool load) {
    __m256 c0[AVX2_MR], c1[AVX2_MR];
    __m256 i0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    __m256 i1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        c0[r] = load ? _mm256_add_ps(i0, _mm256_loadu_ps(c + r * ldc)) : i0;
        c1[r] = load ? _mm256_add_ps(i1, _mm256_loadu_ps(c + r * ldc + 8)) : i1;
    }
    for (int64_t kk = 0; kk < kc; kk++, bp += NR) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        for (int r = 0; r < rows; r++) {
            __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(c + r * ldc, c0[r]);
        _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
    }
}

__attribute__((target("avx2,fma"))) static void tile_avx2(int rows, int width, int64_t kc, const float *a,
                                                          int64_t lda, const float *bp, float *c, int64_t ldc,
                                                          const float *bias, bool load) {
    for (int h = 0; h < width; h += 16) {
        const float *bh = bias ? bias + h : NULL;
        switch (rows) {
#define HALF(R) \
    case R: half_avx2(R, kc, a, lda, bp + h, c + h, ldc, bh, load); break;
            HALF(1) HALF(2) HALF(3) HALF(4) HALF(5) HALF(6)
#undef HALF
        }
    }
}

/* ---- AVX-512: 12 rows x 32 columns ---- */

#define AVX512_MR 12

__attribute__((target("avx512f"), always_inline)) static inline void
tile_avx512_n(const int rows, int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc,
              const float *bias, bool load) {
    __m512 c0[AVX512_MR], c1[AVX512_MR];
    __m512 i0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    __m512 i1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        c0[r] = load ? _mm512_add_ps(i0, _mm512_loadu_ps(c + r * ldc)) : i0;
        c1[r] = load ? _mm512_add_ps(i1, _mm512_loadu_ps(c + r * ldc + 16)) : i1;
    }
    for (int64_t kk = 0; kk < kc; kk++, bp += NR) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        for (int r = 0; r < rows; r++) {
            __m512 av = _mm512_set1_ps(a[r * lda + kk]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(c + r * ldc, c0[r]);
        _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
    }
}

/* The first 16 columns of a panel: 12 accumulators, one panel load a step. */
__attribute__((target("avx512f"), always_inline)) static inline void
half_avx512(const int rows, int64_t kc, const float *a, int64_t lda, const float *bp, float *c, int64_t ldc,
            const float *bias, bool load) {
    __m512 c0[AVX512_MR];
    __m512 i0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) c0[r] = load ? _mm512_add_ps(i0, _mm512_loadu_ps(c + r * ldc)) : i0;
    for (int64_t kk = 0; kk < kc; kk++, bp += NR) {
        __m512 b0 = _mm512_load_ps(bp);
        for (int r = 0; r < rows; r++) c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + kk]), b0, c0[r]);
    }
    for (int r = 0; r < rows; r++) _mm512_storeu_ps(c + r * ldc, c0[r]);
}

__attribute__((target("avx512f"))) static void tile_avx512(int rows, int width, int64_t kc, const float *a,
                                                           int64_t lda, const float *bp, float *c, int64_t ldc,
                                                           const float *bias, bool load) {
    if (width <= HALF_NR) {
        switch (rows) {
#define ROWS(R) \
    case R: half_avx512(R, kc, a, lda, bp, c, ldc, bias, load); break;
            ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12)
#undef ROWS
        }
        return;
    }
    switch (rows) {
#define ROWS(R) \
    case R: tile_avx512_n(R, kc, a, lda, bp, c, ldc, bias, load); break;
        ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12)
#undef ROWS
    }
}

/* ---- dispatch ---- */

static const struct {
    tile_fn tile;
    int mr;
} variants[] = {
    [CELER_SGEMM_PLAIN] = {tile_plain, PLAIN_MR},
    [CELER_SGEMM_AVX2] = {tile_avx2, AVX2_MR},
    [CELER_SGEMM_AVX512] = {tile_avx512, AVX512_MR},
};

static celer_sgemm_isa forced = CELER_SGEMM_AUTO;

static celer_sgemm_isa best_isa(void) {
    if (__builtin_cpu_supports("avx512f")) return CELER_SGEMM_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CELER_SGEMM_AVX2;
    return CELER_SGEMM_PLAIN;
}

static bool cpu_has(celer_sgemm_isa isa) {
    return isa == CELER_SGEMM_PLAIN || (isa == CELER_SGEMM_AVX2 && best_isa() >= CELER_SGEMM_AVX2) ||
           (isa == CELER_SGEMM_AVX512 && best_isa() == CELER_SGEMM_AVX512);
}

celer_sgemm_isa celer_sgemm_force_isa(celer_sgemm_isa isa) {
    forced = isa != CELER_SGEMM_AUTO && cpu_has(isa) ? isa : CELER_SGEMM_AUTO;
    return forced != CELER_SGEMM_AUTO ? forced : best_isa();
}

/* ---- the loops ---- */

typedef struct job {
    const celer_sgemm_b *b;
    const float *a;
    int64_t lda, ldy;
    float *y;
    bool accumulate;
    celer_sgemm_epilogue epi;
    const void *epi_ctx;
    tile_fn tile;
    int mr;
} job;

/* Rows [r0, r1) x panels [p0, p1) of Y: panel by panel, so B is read in the order it is packed
 * (a stream the prefetchers follow), and within a panel, K in at most KC_MAX-row blocks of equal
 * size, every row tile over a block while the block is in L2. Measured on the shared Zen 4, 1
 * thread, products whose B comes from memory (12 BERT-base feed-forward pairs, M=128): the old
 * order (blocks of 256 rows of K outer, panels inner, jumping between panels every block) took
 * 146 ms, panels outer with 256-row blocks 141, with 768 or more 134 (ONNX Runtime 140); M=8 13.1
 * -> 10.7 ms, M=1024 292 -> 271. */
static void run_block(const job *j, int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
    const celer_sgemm_b *b = j->b;
    int64_t k = b->k;
    int64_t blocks = (k + KC_MAX - 1) / KC_MAX, kb = blocks > 1 ? (k + blocks - 1) / blocks : k > 0 ? k : 1;
    for (int64_t p = p0; p < p1; p++) {
        int64_t cols = b->n - p * NR < NR ? b->n - p * NR : NR;
        int width = cols <= HALF_NR ? HALF_NR : NR;
        for (int64_t k0 = 0; k0 == 0 || k0 < k; k0 += kb) {
            int64_t kc = k - k0 < kb ? k - k0 : kb;
            bool first = k0 == 0, last = k0 + kc >= k, load = !first || j->accumulate;
            const float *bp = b->data + ((size_t)p * (size_t)k + (size_t)k0) * NR;
            const float *bias = first && b->bias ? b->bias + p * NR : NULL;
            for (int64_t i = r0; i < r1; i += j->mr) {
                int rows = (int)(r1 - i < j->mr ? r1 - i : j->mr);
                const float *a = j->a + i * j->lda + k0;
                float *c = j->y + i * j->ldy + p * NR;
                if (cols == width) {
                    j->tile(rows, width, kc, a, j->lda, bp, c, j->ldy, bias, load);
                } else { /* the last, narrower panel: through a tile of the kernel's width on the stack */
                    float t[MR_MAX * NR] = {0};
                    if (load)
                        for (int r = 0; r < rows; r++) memcpy(t + r * NR, c + r * j->ldy, sizeof(float) * (size_t)cols);
                    j->tile(rows, width, kc, a, j->lda, bp, t, NR, bias, load);
                    for (int r = 0; r < rows; r++) memcpy(c + r * j->ldy, t + r * NR, sizeof(float) * (size_t)cols);
                }
                if (last && j->epi) j->epi(j->epi_ctx, c, j->ldy, rows, cols);
            }
        }
    }
}

/* Thread t of nt: rows (in whole tiles) when each thread gets ROWS_SPLIT_MIN rows or B is at most
 * ROWS_SPLIT_MAX_B bytes, else panels split evenly when there are enough of them, else rows.
 * Split by rows, a thread reads all of B but only its rows of A and writes only its rows of Y,
 * the rows the row-split loops before and after it (celer_ops_parallel_for's halves: LayerNorm,
 * Softmax, Add) touch on the same core; split by panels, every row of Y is half written by the
 * other core, and the next node pulls those lines across. When the two vCPUs are far apart (a
 * core-to-core round trip of 330-430 ns instead of 50-70, which the shared machine switches
 * between), that traffic made BERT-tiny batch 8 at 2 threads 4.2 ms against 3.1 on one; rows:
 * 3.5 (ONNX Runtime 3.9 there). Near: 1.94 -> 1.80 ms (ONNX Runtime 2.0), batch 1 0.303 ->
 * 0.291, GPT-small batch 8 71.3 -> 70.5.
 * Panels stay for a large B with few rows: BERT-base batch 1 (B up to 9 MB, its 85 M weights
 * streamed from memory by both cores) took 134-136 ms split by rows, 108-128 by panels. */
#define ROWS_SPLIT_MIN 256
#define ROWS_SPLIT_MAX_B ((size_t)1 << 20)
static void run_share(const job *j, int64_t m, int t, int nt) {
    int64_t panels = j->b->panels;
    size_t b_bytes = (size_t)panels * (size_t)j->b->k * NR * sizeof(float);
    bool by_rows = m >= (int64_t)j->mr * nt && (m >= (int64_t)ROWS_SPLIT_MIN * nt || b_bytes <= ROWS_SPLIT_MAX_B);
    if (panels >= nt && !by_rows) {
        run_block(j, 0, m, panels * t / nt, panels * (t + 1) / nt);
    } else {
        int64_t tiles = (m + j->mr - 1) / j->mr;
        int64_t r0 = tiles * t / nt * j->mr, r1 = tiles * (t + 1) / nt * j->mr;
        run_block(j, r0 < m ? r0 : m, r1 < m ? r1 : m, 0, panels);
    }
}

void celer_sgemm_run(const celer_sgemm_b *b, int64_t m, const float *a, int64_t lda, float *y, int64_t ldy,
                     bool accumulate, celer_sgemm_epilogue epi, const void *epi_ctx) {
    if (m <= 0 || b->n <= 0) return;
    celer_sgemm_isa isa = forced != CELER_SGEMM_AUTO ? forced : best_isa();
    job j = {b, a, lda, ldy, y, accumulate, epi, epi_ctx, variants[isa].tile, variants[isa].mr};
    int nt = omp_get_max_threads();
    if (nt > 1 && (double)m * (double)b->n * (double)b->k >= (double)PAR_MIN_MACS && (b->panels > 1 || m > j.mr)) {
#pragma omp parallel num_threads(nt)
        run_share(&j, m, omp_get_thread_num(), omp_get_num_threads());
    } else {
        run_block(&j, 0, m, 0, b->panels);
    }
}

void celer_sgemm_run_rows(const celer_sgemm_b *b, int64_t r0, int64_t r1, const float *a, int64_t lda, float *y,
                          int64_t ldy) {
    if (r1 <= r0 || b->n <= 0) return;
    celer_sgemm_isa isa = forced != CELER_SGEMM_AUTO ? forced : best_isa();
    job j = {b, a, lda, ldy, y, false, NULL, NULL, variants[isa].tile, variants[isa].mr};
    run_block(&j, r0, r1, 0, b->panels);
}
