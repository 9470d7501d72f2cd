/* gemm operators: Gemm and MatMul (float/double through OpenBLAS, integer types through the
 * reference loops) and MatMulInteger (int32 accumulation on widened operands).
 *
 * A float B that is a constant matrix is packed at load (sgemm.h) and the products run on the
 * packed panels instead of SGEMM, which repacks B on every call; the file's B stays (these
 * kernels may also see B as a variable). The graph passes turn most such nodes into FusedMatMul;
 * these are the rest (Gemm with alpha or beta other than 1, CELER_OPTIMIZE=0).
 *
 * Nothing here is shape-dependent enough to need per-context state: reshape validates and plans,
 * run recomputes the (cheap) plan and calls BLAS. Thread counts belong to the executor. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "reference.h"
#include "sgemm.h"

/* BLAS takes int sizes: larger matrices are rejected rather than truncated. */
#define BLAS_MAX_DIM INT64_C(0x7fffffff)

static celer_status check_blas_dims(const char *who, int64_t m, int64_t n, int64_t k) {
    if (m > BLAS_MAX_DIM || n > BLAS_MAX_DIM || k > BLAS_MAX_DIM)
        return celer_errorf(CELER_ERR_LIMIT, "%s: matrix dimension above 2^31-1 (M=%lld N=%lld K=%lld)",
                            who, (long long)m, (long long)n, (long long)k);
    return CELER_OK;
}

/* Y (m x n, row-major) = alpha * op(A) op(B) + beta * Y, for float or double; lda/ldb follow the
 * stored (untransposed) layouts. Handles the empty cases BLAS rejects. */
static void blas_gemm(celer_dtype t, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, const void *b, double beta, void *y) {
    if (m == 0 || n == 0) return;
    if (k == 0) { /* no products: Y = beta * Y */
        for (int64_t i = 0; i < m * n; i++) {
            if (t == CELER_FLOAT) ((float *)y)[i] = beta == 0 ? 0.f : (float)beta * ((float *)y)[i];
            else ((double *)y)[i] = beta == 0 ? 0.0 : beta * ((double *)y)[i];
        }
        return;
    }
    int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n);
    enum CBLAS_TRANSPOSE tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
    if (t == CELER_FLOAT)
        cblas_sgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, (float)alpha, a, lda, b, ldb,
                    (float)beta, y, (int)n);
    else
        cblas_dgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, alpha, a, lda, b, ldb, beta,
                    y, (int)n);
}

/* ---- Gemm ---- */

/* B, when it is a constant float matrix (scaled by `alpha` for Gemm), packed into *out (data
 * NULL otherwise: the BLAS path serves). */
static celer_status pack_constant_b(const celer_op_info *info, bool tb, float alpha, celer_sgemm_b *out) {
    const celer_tensor *b = info->n_inputs > 1 ? info->input_constants[1] : NULL;
    memset(out, 0, sizeof *out);
    if (!b || b->dtype != CELER_FLOAT || b->shape.rank != 2 || b->shape.dims[0] > BLAS_MAX_DIM ||
        b->shape.dims[1] > BLAS_MAX_DIM || info->input_types[0] != CELER_FLOAT)
        return CELER_OK;
    char who[160];
    int64_t k = b->shape.dims[tb ? 1 : 0], n = b->shape.dims[tb ? 0 : 1];
    celer_status st = celer_sgemm_pack(celer_ops_who(info, who, sizeof who), b->data, k, n, tb, NULL, out);
    if (!st && alpha != 1.f)
        for (size_t i = 0; i < (size_t)(out->panels * out->k * CELER_SGEMM_NR); i++) out->data[i] *= alpha;
    return st;
}

typedef struct gemm_state {
    double alpha, beta;
    bool ta, tb;
    celer_sgemm_b packed; /* alpha B when B is a constant float matrix and transA = 0 (owned) */
} gemm_state;

static void gemm_free(void *state) {
    gemm_state *s = state;
    if (s) celer_sgemm_b_free(&s->packed);
    free(s);
}

static celer_status gemm_init(const celer_op_info *info, void **state) {
    gemm_state *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "Gemm: out of memory");
    s->alpha = celer_onnx_attr_float(info->node, "alpha", 1.0f);
    s->beta = celer_onnx_attr_float(info->node, "beta", 1.0f);
    s->ta = celer_onnx_attr_int(info->node, "transA", 0) != 0;
    s->tb = celer_onnx_attr_int(info->node, "transB", 0) != 0;
    celer_status st = s->ta ? CELER_OK : pack_constant_b(info, s->tb, (float)s->alpha, &s->packed);
    if (st) {
        gemm_free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

typedef struct gemm_dims {
    int64_t m, n, k;
} gemm_dims;

static celer_status gemm_dims_of(const celer_kernel_call *call, gemm_dims *d, const char *who) {
    const gemm_state *s = call->state;
    const celer_tensor *a = call->in[0], *b = call->in[1];
    const celer_tensor *c = call->n_in > 2 ? call->in[2] : NULL;
    char b1[160], b2[160];
    if (a->shape.rank != 2 || b->shape.rank != 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: A %s and B %s must be matrices", who,
                            celer_shape_str(&a->shape, b1, sizeof b1),
                            celer_shape_str(&b->shape, b2, sizeof b2));
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "%s: A, B and C must have the same type", who);
    d->m = a->shape.dims[s->ta ? 1 : 0];
    d->k = a->shape.dims[s->ta ? 0 : 1];
    int64_t kb = b->shape.dims[s->tb ? 1 : 0];
    d->n = b->shape.dims[s->tb ? 0 : 1];
    if (kb != d->k)
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: A %s (transA=%d) and B %s (transB=%d) disagree on K: %lld vs %lld",
                            who, celer_shape_str(&a->shape, b1, sizeof b1), s->ta,
                            celer_shape_str(&b->shape, b2, sizeof b2), s->tb, (long long)d->k,
                            (long long)kb);
    celer_status st = check_blas_dims(who, d->m, d->n, d->k);
    if (!st && c) st = celer_gemm_check_c(who, &c->shape, d->m, d->n);
    return st;
}

static celer_status gemm_reshape(celer_kernel_call *call) {
    char who[160];
    gemm_dims d = {0};
    celer_status st = gemm_dims_of(call, &d, celer_ops_who(call->info, who, sizeof who));
    if (st) return st;
    call->out[0].shape = (celer_shape){.rank = 2, .dims = {d.m, d.n}};
    return celer_ref_check_numel(who, "output", &call->out[0].shape);
}

static celer_status gemm_run(celer_kernel_call *call) {
    const gemm_state *s = call->state;
    const celer_tensor *a = call->in[0], *b = call->in[1];
    const celer_tensor *c = call->n_in > 2 ? call->in[2] : NULL;
    celer_tensor *y = &call->out[0];
    gemm_dims d = {y->shape.dims[0], y->shape.dims[1], a->shape.dims[s->ta ? 0 : 1]};
    if (a->dtype != CELER_FLOAT && a->dtype != CELER_DOUBLE) {
        celer_ref_gemm_int(a->dtype, s->ta, s->tb, d.m, d.n, d.k, s->alpha, a->data, b->data,
                           s->beta, c ? c->data : NULL, c ? &c->shape : NULL, y->data);
        return CELER_OK;
    }
    bool use_c = c && s->beta != 0;
    if (s->packed.data && a->dtype == CELER_FLOAT) { /* Y = beta C, then alpha A B added from the panels */
        float *yf = y->data, beta = (float)s->beta;
        for (int64_t i = 0; use_c && i < d.m; i++)
            for (int64_t j = 0; j < d.n; j++)
                yf[i * d.n + j] = beta * ((const float *)c->data)[celer_gemm_c_index(&c->shape, i, j)];
        celer_sgemm_run(&s->packed, d.m, a->data, d.k, yf, d.n, use_c, NULL, NULL);
        return CELER_OK;
    }
    if (use_c) { /* Y = broadcast C, then BLAS accumulates alpha*A*B onto beta*Y */
        for (int64_t i = 0; i < d.m; i++)
            for (int64_t j = 0; j < d.n; j++) {
                int64_t ci = celer_gemm_c_index(&c->shape, i, j);
                if (a->dtype == CELER_FLOAT) ((float *)y->data)[i * d.n + j] = ((const float *)c->data)[ci];
                else ((double *)y->data)[i * d.n + j] = ((const double *)c->data)[ci];
            }
    }
    blas_gemm(a->dtype, s->ta, s->tb, d.m, d.n, d.k, s->alpha, a->data, b->data,
              use_c ? s->beta : 0.0, y->data);
    return CELER_OK;
}

/* ---- MatMul ---- */

/* The state: a celer_sgemm_b, its data NULL unless B is a constant float matrix (owned). */
static celer_status matmul_init(const celer_op_info *info, void **state) {
    celer_sgemm_b *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "MatMul: out of memory");
    celer_status st = pack_constant_b(info, false, 1.f, s);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

static void matmul_free(void *state) {
    if (state) celer_sgemm_b_free(state);
    free(state);
}

/* ---- MatMul with a B that changes per call (attention's per-head Q K^T and P V) ----
 * OpenBLAS splits each of these small products over its own threads, which at 2 threads fought
 * the OpenMP team spinning between regions (ViT-small's 24 MatMuls: 8 ms at 1 thread, 94 ms at
 * 2). With more than one thread, every distinct B is packed per call into scratch (sgemm.h
 * panels), then blocks of rows of every batch are shared over the team, each product
 * single-threaded on the sgemm micro-kernel. */

/* Past this much packed B the scratch is not worth it: BLAS serves (it packs in place). */
#define VARB_MAX_PACK_BYTES (INT64_C(256) << 20)
/* Rows of one work item: a multiple of every micro-kernel's height (12, 6, 4). */
#define VARB_ROWS 48
/* Multiply-adds a thread should get before the team is woken for it. */
#define VARB_PAR_MACS (INT64_C(1) << 19)
#define VARB_PAR_PACK (INT64_C(1) << 16) /* floats of B packed, likewise */

/* Floats of scratch the variable-B path needs for plan p (0: use BLAS instead). */
static size_t varb_scratch_floats(const celer_matmul_plan *p) {
    if (p->m == 0 || p->n == 0 || p->batch == 0) return 0;
    int64_t packs = p->b_shared ? 1 : p->batch;
    size_t one = celer_sgemm_packed_floats(p->k, p->n);
    if (one > (size_t)VARB_MAX_PACK_BYTES / sizeof(float) / (size_t)packs) return 0;
    return one * (size_t)packs;
}

typedef struct varb_job {
    const celer_matmul_plan *p;
    const float *a, *b;
    float *y, *packed; /* packed: the B panels, one celer_sgemm_packed_floats apart */
    size_t pack_floats;
    int64_t row_blocks; /* per batch */
} varb_job;

static void varb_pack(void *ctx, size_t lo, size_t hi) {
    const varb_job *j = ctx;
    for (size_t i = lo; i < hi; i++) {
        int64_t ao, bo;
        celer_matmul_plan_offsets(j->p, (int64_t)i, &ao, &bo);
        celer_sgemm_b view;
        celer_sgemm_pack_into(j->b + bo, j->p->n, j->p->k, j->p->n, false, j->packed + i * j->pack_floats, &view);
    }
}

static void varb_run(void *ctx, size_t lo, size_t hi) {
    const varb_job *j = ctx;
    const celer_matmul_plan *p = j->p;
    for (size_t item = lo; item < hi; item++) {
        int64_t bi = (int64_t)item / j->row_blocks, r0 = (int64_t)item % j->row_blocks * VARB_ROWS;
        int64_t r1 = r0 + VARB_ROWS < p->m ? r0 + VARB_ROWS : p->m, ao, bo;
        celer_matmul_plan_offsets(p, bi, &ao, &bo);
        celer_sgemm_b view = {.k = p->k, .n = p->n, .panels = (p->n + CELER_SGEMM_NR - 1) / CELER_SGEMM_NR,
                              .data = j->packed + (p->b_shared ? 0 : (size_t)bi * j->pack_floats)};
        celer_sgemm_run_rows(&view, r0, r1, j->a + ao, p->k, j->y + bi * p->m * p->n, p->n);
    }
}

/* Whether plan p runs on the variable-B path: only when the team has threads to share it with
 * and the product is big enough to be split. On one thread OpenBLAS stays: its small-matrix
 * kernel beat the packed one on BERT-tiny's 16-wide heads (whole model 0.44 vs 0.50 ms), where
 * a 32-column panel is half padding. */
static bool varb_wanted(const celer_matmul_plan *p) {
    double macs = (double)p->batch * (double)p->m * (double)p->n * (double)p->k;
    return omp_get_max_threads() > 1 && macs >= 2.0 * (double)VARB_PAR_MACS && varb_scratch_floats(p);
}

/* Y = A B for float A and B under plan p; scratch holds varb_scratch_floats(p) floats. */
static void matmul_varb(const celer_matmul_plan *p, const float *a, const float *b, float *y, float *scratch) {
    varb_job j = {p, a, b, y, scratch, celer_sgemm_packed_floats(p->k, p->n), (p->m + VARB_ROWS - 1) / VARB_ROWS};
    int64_t packs = p->b_shared ? 1 : p->batch, kn = p->k * p->n > 0 ? p->k * p->n : 1;
    celer_ops_parallel_for((size_t)packs, (size_t)(VARB_PAR_PACK / kn + 1), 1, varb_pack, &j);
    int64_t item_macs = VARB_ROWS * kn;
    celer_ops_parallel_for((size_t)(p->batch * j.row_blocks), (size_t)(VARB_PAR_MACS / item_macs + 1), 1, varb_run,
                           &j);
}

static celer_status matmul_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *a = call->in[0], *b = call->in[1];
    if (a->dtype != b->dtype)
        return celer_errorf(CELER_ERR_DTYPE, "%s: A is %s but B is %s", who,
                            celer_dtype_name(a->dtype), celer_dtype_name(b->dtype));
    celer_matmul_plan p;
    celer_status st = celer_matmul_plan_make(who, &a->shape, &b->shape, &p, &call->out[0].shape);
    if (st) return st;
    int64_t rows;
    if (__builtin_mul_overflow(p.batch, p.m, &rows)) rows = INT64_MAX;
    if ((st = check_blas_dims(who, p.b_shared && p.a_dense ? rows : p.m, p.n, p.k))) return st;
    const celer_sgemm_b *packed = call->state;
    if (a->dtype == CELER_FLOAT && !(packed && packed->data && p.b_shared && p.a_dense))
        call->scratch_size = varb_scratch_floats(&p) * sizeof(float);
    return CELER_OK;
}

static celer_status matmul_run(celer_kernel_call *call) {
    const celer_tensor *a = call->in[0], *b = call->in[1];
    celer_tensor *y = &call->out[0];
    celer_matmul_plan p;
    celer_shape ys;
    celer_status st = celer_matmul_plan_make("MatMul", &a->shape, &b->shape, &p, &ys);
    if (st) return st;
    if (a->dtype != CELER_FLOAT && a->dtype != CELER_DOUBLE) {
        celer_ref_matmul_int(a->dtype, &p, a->data, b->data, y->data);
        return CELER_OK;
    }
    size_t es = celer_dtype_size(a->dtype);
    const celer_sgemm_b *packed = call->state;
    if (packed && packed->data && p.b_shared && p.a_dense && a->dtype == CELER_FLOAT) {
        celer_sgemm_run(packed, p.batch * p.m, a->data, p.k, y->data, p.n, false, NULL, NULL);
        return CELER_OK;
    }
    if (a->dtype == CELER_FLOAT && varb_wanted(&p)) {
        matmul_varb(&p, a->data, b->data, y->data, call->scratch);
        return CELER_OK;
    }
    if (p.b_shared && p.a_dense) { /* one tall GEMM: (batch*m, k) x (k, n) */
        blas_gemm(a->dtype, false, false, p.batch * p.m, p.n, p.k, 1.0, a->data, b->data, 0.0,
                  y->data);
        return CELER_OK;
    }
    for (int64_t bi = 0; bi < p.batch; bi++) {
        int64_t ao, bo;
        celer_matmul_plan_offsets(&p, bi, &ao, &bo);
        blas_gemm(a->dtype, false, false, p.m, p.n, p.k, 1.0, (const char *)a->data + ao * es,
                  (const char *)b->data + bo * es, 0.0, (char *)y->data + bi * p.m * p.n * es);
    }
    return CELER_OK;
}

/* ---- MatMulInteger: int32 (A - a_zero_point) @ (B - b_zero_point) ---- */

static celer_status int32_out(const celer_op_info *info, celer_dtype *out) {
    (void)info;
    out[0] = CELER_INT32;
    return CELER_OK;
}

static celer_status matmulint_reshape(celer_kernel_call *call) {
    char who[160];
    celer_ops_who(call->info, who, sizeof who);
    const celer_tensor *a = call->in[0], *b = call->in[1];
    const celer_tensor *az = call->n_in > 2 ? call->in[2] : NULL;
    const celer_tensor *bz = call->n_in > 3 ? call->in[3] : NULL;
    celer_matmul_plan p;
    celer_status st = celer_matmul_plan_make(who, &a->shape, &b->shape, &p, &call->out[0].shape);
    if (st) return st;
    int64_t azn = az ? celer_shape_numel(&az->shape) : 1, bzn = bz ? celer_shape_numel(&bz->shape) : 1;
    int64_t a_rows = p.k ? celer_shape_numel(&a->shape) / p.k : 0;
    if ((azn != 1 && azn != p.m && azn != a_rows) || (az && az->dtype != a->dtype))
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: a_zero_point must be a scalar or one %s value per row of A (%lld)",
                            who, celer_dtype_name(a->dtype), (long long)p.m);
    if ((bzn != 1 && bzn != p.n) || (bz && bz->dtype != b->dtype))
        return celer_errorf(CELER_ERR_SHAPE,
                            "%s: b_zero_point must be a scalar or one %s value per column of B (%lld)",
                            who, celer_dtype_name(b->dtype), (long long)p.n);
    size_t na = (size_t)celer_shape_numel(&a->shape), nb = (size_t)celer_shape_numel(&b->shape);
    call->scratch_size = celer_ref_align64(na * 4) + celer_ref_align64(nb * 4);
    return CELER_OK;
}

static celer_status matmulint_run(celer_kernel_call *call) {
    const celer_tensor *a = call->in[0], *b = call->in[1];
    celer_matmul_plan p;
    celer_shape ys;
    celer_status st = celer_matmul_plan_make("MatMulInteger", &a->shape, &b->shape, &p, &ys);
    if (st) return st;
    int32_t *ai = call->scratch;
    int32_t *bi = (int32_t *)((char *)call->scratch +
                              celer_ref_align64((size_t)celer_shape_numel(&a->shape) * 4));
    celer_ref_widen_i32(a, call->n_in > 2 ? call->in[2] : NULL, p.k, ai);
    celer_ref_widen_i32(b, call->n_in > 3 ? call->in[3] : NULL, 1, bi);
    celer_ref_matmul_i32(&p, ai, bi, call->out[0].data);
    return CELER_OK;
}

#define F32_F64 (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE))
#define GEMM_INTS \
    (CELER_DT(CELER_INT32) | CELER_DT(CELER_INT64) | CELER_DT(CELER_UINT32) | CELER_DT(CELER_UINT64))

static const celer_kernel kernels[] = {
    /* opsets 1-6 also had a `broadcast` flag; broadcasting C always is a superset */
    {"", "Gemm", 1, 6, F32_F64, 0, 0, NULL, gemm_init, gemm_reshape, gemm_run, gemm_free, NULL},
    {"", "Gemm", 7, 8, F32_F64, 0, 0, NULL, gemm_init, gemm_reshape, gemm_run, gemm_free, NULL},
    {"", "Gemm", 9, 10, F32_F64 | GEMM_INTS, 0, 0, NULL, gemm_init, gemm_reshape, gemm_run, gemm_free, NULL},
    {"", "Gemm", 11, 12, F32_F64 | GEMM_INTS, 0, 0, NULL, gemm_init, gemm_reshape, gemm_run, gemm_free, NULL},
    {"", "Gemm", 13, CELER_OPS_MAX_VERSION, F32_F64 | GEMM_INTS, 0, 0, NULL, gemm_init, gemm_reshape,
     gemm_run, gemm_free, NULL},
    {"", "MatMul", 1, 8, F32_F64, 0, 0, NULL, matmul_init, matmul_reshape, matmul_run, matmul_free, NULL},
    {"", "MatMul", 9, 12, F32_F64 | GEMM_INTS, 0, 0, NULL, matmul_init, matmul_reshape, matmul_run, matmul_free, NULL},
    {"", "MatMul", 13, CELER_OPS_MAX_VERSION, F32_F64 | GEMM_INTS, 0, 0, NULL, matmul_init, matmul_reshape,
     matmul_run, matmul_free, NULL},
    {"", "MatMulInteger", 10, CELER_OPS_MAX_VERSION, CELER_DT(CELER_UINT8) | CELER_DT(CELER_INT8), 0,
     0, int32_out, NULL, matmulint_reshape, matmulint_run, NULL, NULL},
};

const celer_kernel_family celer_family_gemm = {"gemm", kernels, (int)CELER_ARRAY_LEN(kernels)};
