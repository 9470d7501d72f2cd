/* reference: window/convolution geometry and plain-loop reference kernels (module-private to ops).
 *
 * Geometry (padding, auto_pad, output sizes) is shared by the library-backed kernels, the pools
 * and the reference kernels so that they cannot disagree. The reference kernels are simple loops:
 * they are the shipped path only where no library covers a case (double, integer types) and
 * otherwise the yardstick the unit tests compare the library kernels against. */
#ifndef CELER_OPS_REFERENCE_H
#define CELER_OPS_REFERENCE_H

#include <stdbool.h>

#include "ops.h"

/* Largest element count an operator here will produce (2^40): bigger is a CELER_ERR_LIMIT. */
#define CELER_REF_MAX_NUMEL (INT64_C(1) << 40)
/* Largest kernel, stride, dilation, pad or group value accepted from attributes. */
#define CELER_REF_MAX_ATTR (INT64_C(1) << 31)
/* Spatial ranks served (1-D, 2-D, 3-D). */
#define CELER_REF_MAX_SP 3

/* CELER_ERR_LIMIT naming `who` when `s` has an unknown/overflowing or too large element count. */
celer_status celer_ref_check_numel(const char *who, const char *what, const celer_shape *s);

typedef enum celer_auto_pad {
    CELER_AUTO_PAD_NOTSET,
    CELER_AUTO_PAD_SAME_UPPER,
    CELER_AUTO_PAD_SAME_LOWER,
    CELER_AUTO_PAD_VALID,
} celer_auto_pad;

/* Window attributes of Conv, ConvTranspose and the pools, as given (counts -1 when absent). */
typedef struct celer_win_attrs {
    celer_auto_pad auto_pad;
    int n_kernel, n_strides, n_dilations, n_pads, n_out_pad, n_out_shape;
    int64_t kernel[CELER_MAX_RANK], strides[CELER_MAX_RANK], dilations[CELER_MAX_RANK];
    int64_t pads[2 * CELER_MAX_RANK], out_pad[CELER_MAX_RANK], out_shape[CELER_MAX_RANK];
    int64_t group;
    bool ceil_mode;
} celer_win_attrs;

/* Reads and range-checks the attributes above from info->node. */
celer_status celer_win_attrs_parse(const celer_op_info *info, celer_win_attrs *a);

/* Per spatial dim, right-aligned in 3 slots: a 2-D window uses [1] and [2], slot [0] is a unit
 * dim (in = k = out = stride = dil = 1, pads 0). */
typedef struct celer_window {
    int nsp;
    int64_t in[3], k[3], out[3], stride[3], dil[3], pad_l[3], pad_r[3];
} celer_window;

/* Output sizes of a forward window (Conv, pools) over input sizes `in` and kernel sizes `k`
 * (nsp of each), honouring auto_pad, pads, strides, dilations and (pools) ceil_mode. */
celer_status celer_window_forward(const char *who, const celer_win_attrs *a, int nsp,
                                  const int64_t *in, const int64_t *k, celer_window *w);
/* Same for ConvTranspose: output_padding, output_shape, auto_pad. Pads may come out negative
 * when output_shape asks for more than the input covers. */
celer_status celer_window_transpose(const char *who, const celer_win_attrs *a, int nsp,
                                    const int64_t *in, const int64_t *k, celer_window *w);

typedef struct celer_conv_geom {
    int64_t n, c, m, group; /* batch, input channels, output channels, groups */
    celer_window win;
} celer_conv_geom;

/* Geometry of Conv (x: N,C,spatial; w: M,C/group,kernel) or, with `transpose`, ConvTranspose
 * (w: C,M/group,kernel); checks that the shapes agree and writes the output shape to *y. */
celer_status celer_conv_geom_make(const char *who, const celer_win_attrs *a, const celer_shape *x,
                                  const celer_shape *w, bool transpose, celer_conv_geom *g,
                                  celer_shape *y);

/* ---- reference convolution: plain NC(D)(H)W loops over geometry g; b may be NULL ---- */
void celer_ref_conv_f32(const celer_conv_geom *g, const float *x, const float *w, const float *b,
                        float *y);
void celer_ref_conv_f64(const celer_conv_geom *g, const double *x, const double *w,
                        const double *b, double *y);
/* Integer convolution on zero-point-adjusted int32 operands, int32 result (wraps on overflow). */
void celer_ref_conv_i32(const celer_conv_geom *g, const int32_t *x, const int32_t *w,
                        const int32_t *b, int32_t *y);
void celer_ref_conv_transpose_f32(const celer_conv_geom *g, const float *x, const float *w,
                                  const float *b, float *y);
void celer_ref_conv_transpose_f64(const celer_conv_geom *g, const double *x, const double *w,
                                  const double *b, double *y);

/* Widens int8/uint8 (or any integer) tensor t to int32 minus its zero point into out. zp may be
 * NULL (0), hold one value, or one value per "row": element i uses zp[(i / inner) % numel(zp)]
 * (per output channel of conv weights: inner = elements per channel; per column of a matrix:
 * inner = 1). */
void celer_ref_widen_i32(const celer_tensor *t, const celer_tensor *zp, int64_t inner,
                         int32_t *out);

/* Rounds n up to a multiple of 64 (scratch sub-buffers stay aligned). */
static inline size_t celer_ref_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* ---- Gemm: Y(M,N) = alpha * op(A) * op(B) + beta * C, C (rank <= 2) broadcast, may be NULL ---- */
/* Checks that C broadcasts to (m, n). */
celer_status celer_gemm_check_c(const char *who, const celer_shape *c, int64_t m, int64_t n);
/* Index of element (i, j) of C broadcast to (m, n). */
int64_t celer_gemm_c_index(const celer_shape *c, int64_t i, int64_t j);
void celer_ref_gemm_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, const float *b, float beta, const float *c,
                        const celer_shape *cshape, float *y);
void celer_ref_gemm_f64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                        const double *a, const double *b, double beta, const double *c,
                        const celer_shape *cshape, double *y);
/* Any integer dtype (int32/int64/uint32/uint64): exact integer products, then alpha/beta in
 * double. a, b, c, y are all of dtype `t`. */
void celer_ref_gemm_int(celer_dtype t, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        double alpha, const void *a, const void *b, double beta, const void *c,
                        const celer_shape *cshape, void *y);

/* ---- MatMul with numpy semantics: 1-D promotion and batch broadcasting ---- */
typedef struct celer_matmul_plan {
    int64_t m, k, n, batch; /* batch: product of the broadcast batch dims */
    int batch_rank;
    int64_t bdims[CELER_MAX_RANK];
    int64_t a_bstride[CELER_MAX_RANK], b_bstride[CELER_MAX_RANK]; /* elements; 0 = broadcast */
    bool b_shared; /* every batch uses the same B (B has no batch dims that are not 1) */
    bool a_dense;  /* A's batches are consecutive (so A can be one (batch*m, k) matrix) */
} celer_matmul_plan;

/* Plans A @ B and writes the output shape to *y; CELER_ERR_SHAPE naming `who` on mismatch. */
celer_status celer_matmul_plan_make(const char *who, const celer_shape *a, const celer_shape *b,
                                    celer_matmul_plan *p, celer_shape *y);
/* Element offsets into A and B of batch number `bi` (0 <= bi < p->batch). */
void celer_matmul_plan_offsets(const celer_matmul_plan *p, int64_t bi, int64_t *a_off,
                               int64_t *b_off);
void celer_ref_matmul_f32(const celer_matmul_plan *p, const float *a, const float *b, float *y);
void celer_ref_matmul_f64(const celer_matmul_plan *p, const double *a, const double *b, double *y);
/* Integer MatMul (int32/int64/uint32/uint64, wrapping); a, b, y of dtype t. */
void celer_ref_matmul_int(celer_dtype t, const celer_matmul_plan *p, const void *a, const void *b,
                          void *y);
/* int32 operands (zero points already subtracted) -> int32, wrapping. */
void celer_ref_matmul_i32(const celer_matmul_plan *p, const int32_t *a, const int32_t *b,
                          int32_t *y);

#endif
