/* dnnl_util: the oneDNN pieces the kernels share (module-private to ops).
 *
 * One CPU engine for the process, created on first use (thread-safe). A celer_dnnl_prim bundles a
 * primitive built for one set of shapes with its per-context stream and buffer-less memory objects;
 * run binds the caller's buffers, so running never allocates. Scratchpad is user-managed: its size
 * is reported at build and the caller passes scratch memory to run. */
#ifndef CELER_OPS_DNNL_UTIL_H
#define CELER_OPS_DNNL_UTIL_H

#include <dnnl.h>

#include <stdbool.h>

#include "base/base.h"
#include "reference.h"

/* The process-wide CPU engine, created once. Never destroyed (lives until exit). */
celer_status celer_dnnl_engine(dnnl_engine_t *out);

/* Converts a failed dnnl call into a celer error whose message names `who` (op) and `what`
 * (the call); returns CELER_OK for dnnl_success. */
celer_status celer_dnnl_check(dnnl_status_t s, const char *who, const char *what);

/* oneDNN's view of a (de)convolution geometry: data dims (N, C or M, spatial), weight dims
 * ([G,] M/G, C/G, kernel), strides, dilations (counted from 0 as oneDNN does) and pads. */
typedef struct celer_dnnl_conv_dims {
    int rank, w_rank; /* of the data tensors (spatial dims + 2) and of the weights */
    int64_t x[5], y[5], w[6];
    dnnl_dims_t strides, dil, pad_l, pad_r;
} celer_dnnl_conv_dims;
void celer_dnnl_conv_dims_of(const celer_conv_geom *g, celer_dnnl_conv_dims *d);

/* Plain (dense, row-major with the given letter order) descriptor of rank <= 6. */
celer_status celer_dnnl_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims,
                           dnnl_data_type_t dt, dnnl_format_tag_t tag, const char *who);

typedef struct celer_dnnl_prim {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_memory_t src, weights, bias, dst, scratch; /* no buffers of their own; bound by run */
    size_t scratch_bytes;                          /* what run needs in `scratch` */
    dnnl_memory_desc_t src_md, weights_md, dst_md; /* the layouts the primitive chose */
    char impl[64];                                 /* oneDNN's implementation name */
} celer_dnnl_prim;

/* Builds a forward primitive from an initialised op descriptor (convolution, deconvolution...)
 * with user-managed scratchpad and optional post-ops (NULL: none). Descriptors given with
 * dnnl_format_tag_any are resolved by oneDNN; the chosen ones are in p->*_md. With
 * `layouts_only` only those are filled (no code is generated, *p holds nothing to destroy). On
 * failure *p is left empty (all NULL). *p owns everything it holds; release with
 * celer_dnnl_prim_destroy. */
celer_status celer_dnnl_prim_create(celer_dnnl_prim *p, const void *op_desc, bool has_bias,
                                    const_dnnl_post_ops_t post_ops, bool layouts_only, const char *who);

/* Runs the primitive on the caller's buffers (bias NULL when built without; scratch must hold
 * scratch_bytes). Blocks until done. No allocation. */
celer_status celer_dnnl_prim_run(const celer_dnnl_prim *p, const void *src, const void *weights,
                                 const void *bias, void *dst, void *scratch, const char *who);

/* Releases everything *p holds and zeroes it; safe on an empty or partly built prim. */
void celer_dnnl_prim_destroy(celer_dnnl_prim *p);

/* A reorder between two layouts of the same tensor, bound to buffers at run. */
typedef struct celer_dnnl_reorder {
    dnnl_primitive_t prim;
    dnnl_stream_t stream;
    dnnl_memory_t from, to;
} celer_dnnl_reorder;

/* Builds the reorder from layout `from` to layout `to`. Same ownership as celer_dnnl_prim. */
celer_status celer_dnnl_reorder_create(celer_dnnl_reorder *r, const dnnl_memory_desc_t *from,
                                       const dnnl_memory_desc_t *to, const char *who);
/* Copies src (layout `from`) into dst (layout `to`). No allocation. */
celer_status celer_dnnl_reorder_run(const celer_dnnl_reorder *r, const void *src, void *dst, const char *who);
void celer_dnnl_reorder_destroy(celer_dnnl_reorder *r);

#endif
