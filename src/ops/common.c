/* Small helpers shared by kernels. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* estimate r of 1/d, then r (2 - d r): the estimate's 14 (AVX-512) or 12 bits double */
__attribute__((target("avx512f"))) static void div_by_avx512(float *y, const float *d, int64_t n) {
    int64_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 dv = _mm512_loadu_ps(d + i), r = _mm512_rcp14_ps(dv);
        r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(dv, r, one), r);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), r));
    }
    for (; i < n; i++) y[i] /= d[i];
}

__attribute__((target("avx2,fma"))) static void div_by_avx2(float *y, const float *d, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 dv = _mm256_loadu_ps(d + i), r = _mm256_rcp_ps(dv);
        r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(dv, r, one), r);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), r));
    }
    for (; i < n; i++) y[i] /= d[i];
}
#endif

void celer_ops_div_by(float *y, const float *d, int64_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        div_by_avx512(y, d, n);
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        div_by_avx2(y, d, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] /= d[i];
}

celer_status celer_ops_reshape_same(celer_kernel_call *call) {
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

void celer_ops_parallel_for(size_t n, size_t min_per_thread, size_t align,
                            void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx) {
    if (n == 0) return;
    size_t nt = omp_in_parallel() ? 1 : (size_t)omp_get_max_threads();
    size_t by_size = n / (min_per_thread ? min_per_thread : 1);
    if (nt > by_size) nt = by_size;
    if (align == 0) align = 1;
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads((int)nt)
    {
        size_t k = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t chunk = ((n + k - 1) / k + align - 1) / align * align;
        size_t lo = t * chunk, hi = lo + chunk < n ? lo + chunk : n;
        if (lo < hi) fn(ctx, lo, hi);
    }
}

const char *celer_ops_who(const celer_op_info *info, char *buf, size_t cap) {
    const char *name = info->node->name && info->node->name[0] ? info->node->name : "";
    if (name[0])
        snprintf(buf, cap, "%s '%s'", info->node->op_type, name);
    else
        snprintf(buf, cap, "%s", info->node->op_type);
    return buf;
}

celer_status celer_ops_axis(const celer_op_info *info, int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= (rank ? rank : 1)) {
        char who[160];
        return celer_errorf(CELER_ERR_INVALID, "%s: axis %lld is out of range for rank %d",
                            celer_ops_who(info, who, sizeof who), (long long)axis, rank);
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return CELER_OK;
}

int64_t celer_ops_int_at(const celer_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CELER_INT64: return ((const int64_t *)t->data)[i];
    case CELER_INT32: return ((const int32_t *)t->data)[i];
    case CELER_INT16: return ((const int16_t *)t->data)[i];
    case CELER_INT8: return ((const int8_t *)t->data)[i];
    case CELER_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case CELER_UINT32: return ((const uint32_t *)t->data)[i];
    case CELER_UINT16: return ((const uint16_t *)t->data)[i];
    case CELER_UINT8:
    case CELER_BOOL: return ((const uint8_t *)t->data)[i];
    default: return (int64_t)celer_ops_double_at(t, i);
    }
}

double celer_ops_double_at(const celer_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CELER_FLOAT: return ((const float *)t->data)[i];
    case CELER_DOUBLE: return ((const double *)t->data)[i];
    case CELER_FLOAT16: return celer_half_to_float(((const uint16_t *)t->data)[i]);
    case CELER_BFLOAT16: return celer_bf16_to_float(((const uint16_t *)t->data)[i]);
    case CELER_INT64: return (double)((const int64_t *)t->data)[i];
    case CELER_UINT64: return (double)((const uint64_t *)t->data)[i];
    case CELER_INT32:
    case CELER_INT16:
    case CELER_INT8:
    case CELER_UINT32:
    case CELER_UINT16:
    case CELER_UINT8:
    case CELER_BOOL: return (double)celer_ops_int_at(t, i);
    default: return 0;
    }
}

void celer_ops_double_store(celer_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case CELER_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case CELER_DOUBLE: ((double *)t->data)[i] = v; break;
    case CELER_FLOAT16: ((uint16_t *)t->data)[i] = celer_float_to_half((float)v); break;
    case CELER_BFLOAT16: ((uint16_t *)t->data)[i] = celer_float_to_bf16((float)v); break;
    case CELER_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case CELER_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case CELER_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case CELER_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case CELER_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case CELER_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case CELER_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case CELER_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case CELER_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: break;
    }
}

celer_status celer_ops_error(const celer_op_info *info, celer_status status, const char *fmt, ...) {
    char who[160], msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return celer_errorf(status, "%s: %s", celer_ops_who(info, who, sizeof who), msg);
}

const celer_tensor *celer_ops_input(const celer_kernel_call *call, int i) {
    return i < call->n_in ? call->in[i] : NULL;
}

celer_status celer_ops_require(const celer_kernel_call *call, int n_required) {
    if (call->n_out < 1) return celer_ops_error(call->info, CELER_ERR_INVALID, "the node has no output");
    for (int i = 0; i < n_required; i++)
        if (i >= call->n_in || !call->in[i])
            return celer_ops_error(call->info, CELER_ERR_INVALID, "required input %d is missing", i);
    return CELER_OK;
}

celer_status celer_ops_add_scratch(celer_kernel_call *call, size_t a, size_t b) {
    size_t n;
    if (celer_mul_size(a, b, &n) || celer_add_size(call->scratch_size, n, &call->scratch_size) ||
        call->scratch_size > CELER_OPS_MAX_BYTES)
        return celer_ops_error(call->info, CELER_ERR_LIMIT, "scratch memory would exceed %zu bytes",
                               CELER_OPS_MAX_BYTES);
    return CELER_OK;
}

int64_t celer_ops_dims_prod(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= dims[d];
    return p;
}

void celer_ops_strides(const celer_shape *s, int64_t *strides) {
    int64_t a = 1;
    for (int i = s->rank - 1; i >= 0; i--) {
        strides[i] = a;
        a *= s->dims[i];
    }
}

void *celer_ops_carve_elems(celer_ops_carve *cv, int64_t n, size_t es) {
    size_t bytes;
    if (n < 0 || celer_mul_size((size_t)n, es, &bytes) || bytes > CELER_OPS_MAX_BYTES) {
        cv->overflow = true;
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = cv->base && !cv->overflow ? cv->base + cv->off : NULL;
    if (celer_add_size(cv->off, bytes, &cv->off) || cv->off > CELER_OPS_MAX_BYTES) cv->overflow = true;
    return p;
}

celer_status celer_ops_check_output(const celer_op_info *info, const celer_tensor *out) {
    int64_t n = celer_shape_numel(&out->shape);
    size_t bytes = 0;
    if (n < 0 || celer_mul_size((size_t)n, celer_dtype_size(out->dtype), &bytes) || bytes > CELER_OPS_MAX_BYTES) {
        char b[200];
        return celer_ops_error(info, CELER_ERR_LIMIT, "output shape %s is too large (limit %zu bytes)",
                               celer_shape_str(&out->shape, b, sizeof b), CELER_OPS_MAX_BYTES);
    }
    return CELER_OK;
}

celer_status celer_ops_str_buf_reserve(celer_kernel_call *c, size_t bytes) {
    if (bytes > CELER_OPS_MAX_BYTES)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output strings need %zu bytes (limit %zu)", bytes,
                               (size_t)CELER_OPS_MAX_BYTES);
    celer_ops_str_buf *l = *c->local;
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l) return celer_ops_error(c->info, CELER_ERR_NOMEM, "out of memory");
        *c->local = l;
    }
    if (bytes > l->cap) {
        char *nb = realloc(l->buf, bytes);
        if (!nb) return celer_ops_error(c->info, CELER_ERR_NOMEM, "out of memory for %zu bytes of strings", bytes);
        l->buf = nb, l->cap = bytes;
    }
    return CELER_OK;
}

void celer_ops_str_buf_free(void *p) {
    celer_ops_str_buf *l = p;
    if (l) free(l->buf);
    free(l);
}
