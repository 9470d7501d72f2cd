/* strings: the string operators of opset 20, StringConcat (elementwise, numpy broadcasting) and
 * StringSplit. StringNormalizer lives in misc.c with the other text operators.
 *
 * Output strings are copies, never views of the input's bytes (an input may be a request's
 * buffer or another kernel's, freed or rewritten before the output is read). They live in a
 * per-context buffer (`*call->local`) sized by reshape, valid until the node is reshaped again in
 * that context, each followed by a NUL as celer_str asks. Padding strings point to a static "".
 *
 * StringSplit follows ONNX Runtime, the engine Triton users come from, where it and the ONNX
 * reference (Python's str.split) differ: an empty input string gives no substrings (not one
 * empty one), and with no delimiter only spaces separate, not tabs or newlines. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define MAX_BYTES CELER_OPS_MAX_BYTES

static const char empty_string[] = "";

/* Copies s to *dst with a NUL after it and advances *dst; returns the copy. */
static celer_str put_str(char **dst, const char *s, size_t len) {
    char *d = *dst;
    if (len) memcpy(d, s, len);
    d[len] = '\0';
    *dst = d + len + 1;
    return (celer_str){d, len};
}

/* ------------------------------------------------------------------------------------------ */
/* StringConcat (opset 20): Z = X + Y per element, numpy broadcasting                          */

/* Element strides of `in` against the output's dims: input dims aligned right, 0 where the
 * input is broadcast. */
static void bcast_strides(const celer_shape *in, const celer_shape *out, int64_t *strides) {
    int64_t s = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int k = d - (out->rank - in->rank);
        int64_t dim = k >= 0 ? in->dims[k] : 1;
        strides[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
}

/* Walks the output once: with y NULL only sums the bytes the strings need (false when the sum
 * passes MAX_BYTES), else writes them at dst. The same walk serves reshape and run. */
static bool concat_walk(const celer_kernel_call *c, size_t *bytes, celer_str *y, char *dst) {
    const celer_tensor *a = c->in[0], *b = c->in[1];
    const celer_shape *o = &c->out[0].shape;
    const celer_str *xa = a->data, *xb = b->data;
    int64_t sa[CELER_MAX_RANK], sb[CELER_MAX_RANK], idx[CELER_MAX_RANK] = {0};
    bcast_strides(&a->shape, o, sa);
    bcast_strides(&b->shape, o, sb);
    const int64_t n = celer_shape_numel(o);
    int64_t ia = 0, ib = 0;
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        celer_str u = xa[ia], v = xb[ib];
        if (!y) {
            if (celer_add_size(total, u.len, &total) || celer_add_size(total, v.len + 1, &total) ||
                total > MAX_BYTES)
                return false;
        } else {
            char *d = dst;
            if (u.len) memcpy(d, u.data, u.len);
            if (v.len) memcpy(d + u.len, v.data, v.len);
            d[u.len + v.len] = '\0';
            y[i] = (celer_str){d, u.len + v.len};
            dst += u.len + v.len + 1;
        }
        for (int d = o->rank - 1; d >= 0; d--) { /* odometer over the output's index */
            ia += sa[d], ib += sb[d];
            if (++idx[d] < o->dims[d]) break;
            ia -= sa[d] * o->dims[d], ib -= sb[d] * o->dims[d];
            idx[d] = 0;
        }
    }
    *bytes = total;
    return true;
}

static celer_status concat_reshape(celer_kernel_call *c) {
    CELER_TRY(celer_ops_require(c, 2));
    if (c->in[1]->dtype != CELER_STRING)
        return celer_ops_error(c->info, CELER_ERR_DTYPE, "input 1 (Y) is %s, expected string",
                               celer_dtype_name(c->in[1]->dtype));
    celer_status st = celer_shape_broadcast(&c->in[0]->shape, &c->in[1]->shape, &c->out[0].shape);
    if (st) {
        char ba[200], bb[200];
        return celer_ops_error(c->info, st, "inputs of shapes %s and %s do not broadcast",
                               celer_shape_str(&c->in[0]->shape, ba, sizeof ba),
                               celer_shape_str(&c->in[1]->shape, bb, sizeof bb));
    }
    CELER_TRY(celer_ops_check_output(c->info, &c->out[0]));
    size_t bytes = 0;
    if (!concat_walk(c, &bytes, NULL, NULL))
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output strings need more than %zu bytes", MAX_BYTES);
    return celer_ops_str_buf_reserve(c, bytes ? bytes : 1);
}

static celer_status concat_run(celer_kernel_call *c) {
    celer_ops_str_buf *l = *c->local;
    if (!l || !l->buf) return celer_ops_error(c->info, CELER_ERR_INTERNAL, "run without reshape");
    size_t bytes = 0;
    concat_walk(c, &bytes, c->out[0].data, l->buf);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* StringSplit (opset 20): Y = each element's substrings, padded with "" to the longest split  */
/* (one more dim than X); Z = how many substrings each element gave                           */

typedef struct split_state {
    celer_str delim;  /* empty: split on runs of spaces, ends trimmed (attribute owned by the model) */
    int64_t maxsplit; /* splits at most; INT64_MAX when absent or negative */
} split_state;

static celer_status split_init(const celer_op_info *info, void **state) {
    split_state s = {celer_str_c(celer_onnx_attr_string(info->node, "delimiter", "")), INT64_MAX};
    /* negative: no limit, as in ONNX Runtime and Python's str.split (ONNX leaves it undefined) */
    int64_t ms = celer_onnx_attr_int(info->node, "maxsplit", -1);
    if (ms >= 0) s.maxsplit = ms;
    split_state *p = malloc(sizeof *p);
    if (!p) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    *p = s;
    *state = p;
    return CELER_OK;
}

/* Splits x; returns the count of substrings. With row non-NULL also copies them to *dst (NUL
 * after each, *dst advanced) and points row[0..count) at the copies. The copies take at most
 * x.len + count bytes. */
static int64_t split_one(const split_state *s, celer_str x, celer_str *row, char **dst) {
    const char *p = x.data ? x.data : empty_string, *end = p + x.len;
    const size_t dl = s->delim.len;
    if (!dl) { /* runs of spaces: trim both ends, then every run separates */
        while (p < end && *p == ' ') p++;
        while (end > p && end[-1] == ' ') end--;
    }
    if (p == end) return 0;
    int64_t n = 0;
    for (;;) {
        const char *cut = NULL;
        if (n < s->maxsplit) {
            if (dl) {
                /* memchr finds the delimiter's first byte, memcmp checks the rest */
                for (const char *q = p; (size_t)(end - q) >= dl; q++) {
                    q = memchr(q, s->delim.data[0], (size_t)(end - q) - dl + 1);
                    if (!q) break;
                    if (!memcmp(q + 1, s->delim.data + 1, dl - 1)) {
                        cut = q;
                        break;
                    }
                }
            } else {
                cut = memchr(p, ' ', (size_t)(end - p));
            }
        }
        const char *stop = cut ? cut : end;
        if (row) row[n] = put_str(dst, p, (size_t)(stop - p));
        n++;
        if (!cut) return n;
        p = cut + (dl ? dl : 1);
        if (!dl)
            while (*p == ' ') p++; /* the run ends before `end`: the string was trimmed */
    }
}

static celer_status split_reshape(celer_kernel_call *c) {
    const split_state *s = c->state;
    const celer_tensor *x = c->in[0];
    if (x->shape.rank >= CELER_MAX_RANK) {
        char b[200];
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input of rank %d has no room for the extra dim (shape %s)",
                               x->shape.rank, celer_shape_str(&x->shape, b, sizeof b));
    }
    const celer_str *xs = x->data;
    const int64_t n = celer_shape_numel(&x->shape);
    int64_t widest = 0;
    size_t bytes = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = split_one(s, xs[i], NULL, NULL);
        widest = CELER_MAX(widest, k);
        if (celer_add_size(bytes, xs[i].len, &bytes) || celer_add_size(bytes, (size_t)k, &bytes) || bytes > MAX_BYTES)
            return celer_ops_error(c->info, CELER_ERR_LIMIT, "output strings need more than %zu bytes", MAX_BYTES);
    }
    c->out[0].shape = x->shape;
    c->out[0].shape.dims[c->out[0].shape.rank++] = widest;
    CELER_TRY(celer_ops_check_output(c->info, &c->out[0]));
    if (c->n_out > 1) c->out[1].shape = x->shape;
    return celer_ops_str_buf_reserve(c, bytes);
}

static celer_status split_run(celer_kernel_call *c) {
    const split_state *s = c->state;
    celer_ops_str_buf *l = *c->local;
    if (!l || !l->buf) return celer_ops_error(c->info, CELER_ERR_INTERNAL, "run without reshape");
    const celer_str *xs = c->in[0]->data;
    const int64_t n = celer_shape_numel(&c->in[0]->shape);
    const int64_t w = c->out[0].shape.dims[c->out[0].shape.rank - 1];
    celer_str *y = c->out[0].data;
    int64_t *z = c->n_out > 1 ? c->out[1].data : NULL;
    char *dst = l->buf;
    for (int64_t i = 0; i < n; i++) {
        celer_str *row = y + i * w;
        int64_t k = split_one(s, xs[i], row, &dst);
        for (int64_t j = k; j < w; j++) row[j] = (celer_str){empty_string, 0};
        if (z) z[i] = k;
    }
    return CELER_OK;
}

static celer_status split_infer(const celer_op_info *info, celer_dtype *out) {
    out[0] = CELER_STRING;
    if (info->n_outputs > 1) out[1] = CELER_INT64;
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define MAXV CELER_OPS_MAX_VERSION
#define STR CELER_DT(CELER_STRING)

static const celer_kernel kernels[] = {
    {"", "StringConcat", 20, MAXV, STR, 0, 0, NULL, NULL, concat_reshape, concat_run, NULL, celer_ops_str_buf_free},
    {"", "StringSplit", 20, MAXV, STR, 0, 0, split_infer, split_init, split_reshape, split_run, free, celer_ops_str_buf_free},
};

const celer_kernel_family celer_family_strings = {"strings", kernels, (int)CELER_ARRAY_LEN(kernels)};
