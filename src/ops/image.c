/* image: resampling and detection operators (Resize, Upsample, GridSample, AffineGrid, Col2Im,
 * RoiAlign, NonMaxSuppression, ImageDecoder). MaxRoiPool lives in pool.c.
 *
 * Resize/Upsample: reshape turns the scales/sizes/roi inputs into one table per axis (for each
 * output index: the source indices and weights of its 1, 2 or 4 taps, or of the antialias
 * filter's window, clamped as the spec's edge padding does) kept in the per-context local state. run then needs no coordinate math:
 *   nearest       one N-D gather over element bytes (any dtype), a row whose source row equals
 *                 the previous one is a memcpy of the previous output row;
 *   linear/cubic  separable 1-D passes, one per axis that actually changes, in float (double for
 *                 double tensors) through two scratch buffers; axes are visited from the
 *                 smallest out/in ratio up, which keeps every intermediate no bigger than
 *                 max(input, output).
 * GridSample and RoiAlign compute coordinates per output location and loop over channels
 * (GridSample: the taps of all its axes combined first, 1, 2^r or 4^r of them).
 * NonMaxSuppression's output size depends on the data: reshape runs the whole selection into a
 * per-context buffer and run copies it out. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "pipeline/pipeline.h"

/* An output (or a scratch need) bigger than this is refused: scales can ask for anything. */
#define MAX_OUT_BYTES CELER_OPS_MAX_BYTES
/* Resize's per-context plan (~81 bytes per output position along each axis) is malloc'ed in
 * reshape, before the executor checks the output against the model's activation cap, so it has
 * its own, smaller cap: an output too large to ever be allocated must not make it huge. */
#define MAX_PLAN_BYTES ((size_t)1 << 30)
/* Largest dim a scale may produce, checked in double before converting to an integer. */
#define MAX_DIM 1e12
/* RoiAlign samples per output bin (adaptive sampling grows with the roi size). */
#define MAX_ROI_SAMPLES (1 << 16)

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

/* Input i, or NULL when omitted or empty (ONNX marks "not given" with either). */
static const celer_tensor *given_in(const celer_kernel_call *c, int i) {
    const celer_tensor *t = celer_ops_input(c, i);
    return t && celer_shape_numel(&t->shape) > 0 ? t : NULL;
}

static celer_status need(const celer_kernel_call *c, int n_required, const char *const *names) {
    if (c->n_out < 1) return celer_ops_error(c->info, CELER_ERR_INVALID, "the node has no output");
    for (int i = 0; i < n_required; i++)
        if (!celer_ops_input(c, i))
            return celer_ops_error(c->info, CELER_ERR_INVALID, "required input '%s' is missing", names[i]);
    return CELER_OK;
}

static const char *shape_s(const celer_shape *s, char *buf, size_t cap) {
    return celer_shape_str(s, buf, cap);
}

static celer_status check_rank(const celer_op_info *info, const celer_tensor *t, const char *what,
                               int rank) {
    if (t->shape.rank != rank) {
        char b[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "input '%s' must have rank %d, got shape %s", what,
                      rank, shape_s(&t->shape, b, sizeof b));
    }
    return CELER_OK;
}

/* Refuses `n` elements of `es` bytes when the product overflows or passes MAX_OUT_BYTES. */
static celer_status check_bytes(const celer_op_info *info, const char *what, int64_t n, size_t es) {
    size_t bytes = 0;
    if (n < 0 || celer_mul_size((size_t)n, es, &bytes) || bytes > MAX_OUT_BYTES)
        return celer_ops_error(info, CELER_ERR_LIMIT, "%s is too large (limit %zu bytes)", what,
                      MAX_OUT_BYTES);
    return CELER_OK;
}

static bool is_float_dtype(celer_dtype t) {
    return t == CELER_FLOAT || t == CELER_DOUBLE || t == CELER_FLOAT16;
}

/* Grows a per-context buffer *slot to at least `bytes` (kept across runs; freed by free_local).
 * The buffer starts with a header of `head` bytes that the caller owns. */
static celer_status grow_local(const celer_op_info *info, void **slot, size_t *cap, size_t bytes) {
    if (*slot && *cap >= bytes) return CELER_OK;
    void *p = realloc(*slot, bytes);
    if (!p) return celer_ops_error(info, CELER_ERR_NOMEM, "cannot allocate %zu bytes of state", bytes);
    *slot = p;
    *cap = bytes;
    return CELER_OK;
}

/* Looks `s` up in a NULL-terminated name table; -1 when absent. */
typedef struct name_val {
    const char *name;
    int val;
} name_val;
static int lookup(const name_val *t, const char *s) {
    for (; t->name; t++)
        if (!strcmp(t->name, s)) return t->val;
    return -1;
}

static celer_status attr_enum(const celer_op_info *info, const char *attr, const char *dflt,
                              const name_val *table, int *out) {
    const char *s = celer_onnx_attr_string(info->node, attr, dflt);
    int v = lookup(table, s);
    if (v < 0) {
        char opts[300];
        size_t k = 0;
        opts[0] = 0;
        for (const name_val *t = table; t->name && k < sizeof opts; t++)
            k += (size_t)snprintf(opts + k, sizeof opts - k, "%s%s", k ? ", " : "", t->name);
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "%s '%s' is not supported (expected one of %s)",
                      attr, s, opts);
    }
    *out = v;
    return CELER_OK;
}

/* Allocates a zeroed state of `size` bytes and fills it with `parse`; on failure nothing is kept
 * (*state stays NULL). The state is owned by the caller and freed with free(). */
static celer_status init_with(const celer_op_info *info, void **state, size_t size,
                              celer_status (*parse)(const celer_op_info *, void *)) {
    void *s = calloc(1, size);
    if (!s) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    celer_status st = parse(info, s);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return CELER_OK;
}

/* Keys's cubic convolution weights of the taps at floor(x)-1 .. floor(x)+2 for t = x - floor(x). */
static void cubic_coeffs(double t, double a, double c[4]) {
    double t1 = t + 1, t2 = 1 - t, t3 = 2 - t;
    c[0] = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a;
    c[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    c[2] = ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1;
    c[3] = ((a * t3 - 5 * a) * t3 + 8 * a) * t3 - 4 * a;
}

static int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* ------------------------------------------------------------------------------------------ */
/* Resize, Upsample                                                                            */

enum { M_NEAREST, M_LINEAR, M_CUBIC };
enum { CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_NN,
       CT_TF_CROP_AND_RESIZE, CT_HALF_PIXEL_SYMMETRIC };
/* keep_aspect_ratio_policy (opset 18): how `sizes` is read. */
enum { KA_STRETCH, KA_NOT_LARGER, KA_NOT_SMALLER };
/* NM_SIMPLE is the pre-opset-11 rule: floor when enlarging, ceil when shrinking. */
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
/* Where the scales come from. */
enum { SRC_ATTR, SRC_INPUT1, SRC_RESIZE11 };

static const name_val mode_names_old[] = {{"nearest", M_NEAREST}, {"linear", M_LINEAR}, {0, 0}};
static const name_val mode_names[] = {
    {"nearest", M_NEAREST}, {"linear", M_LINEAR}, {"cubic", M_CUBIC}, {0, 0}};
static const name_val ctm_names[] = {{"half_pixel", CT_HALF_PIXEL},
                                     {"pytorch_half_pixel", CT_PYTORCH_HALF_PIXEL},
                                     {"align_corners", CT_ALIGN_CORNERS},
                                     {"asymmetric", CT_ASYMMETRIC},
                                     {"tf_half_pixel_for_nn", CT_TF_HALF_PIXEL_NN},
                                     {"tf_crop_and_resize", CT_TF_CROP_AND_RESIZE},
                                     {0, 0}};
/* opset 19 adds half_pixel_symmetric */
static const name_val ctm_names19[] = {{"half_pixel", CT_HALF_PIXEL},
                                       {"half_pixel_symmetric", CT_HALF_PIXEL_SYMMETRIC},
                                       {"pytorch_half_pixel", CT_PYTORCH_HALF_PIXEL},
                                       {"align_corners", CT_ALIGN_CORNERS},
                                       {"asymmetric", CT_ASYMMETRIC},
                                       {"tf_half_pixel_for_nn", CT_TF_HALF_PIXEL_NN},
                                       {"tf_crop_and_resize", CT_TF_CROP_AND_RESIZE},
                                       {0, 0}};
static const name_val keep_aspect_names[] = {
    {"stretch", KA_STRETCH}, {"not_larger", KA_NOT_LARGER}, {"not_smaller", KA_NOT_SMALLER}, {0, 0}};
static const name_val nearest_names[] = {{"round_prefer_floor", NM_ROUND_PREFER_FLOOR},
                                         {"round_prefer_ceil", NM_ROUND_PREFER_CEIL},
                                         {"floor", NM_FLOOR},
                                         {"ceil", NM_CEIL},
                                         {0, 0}};
static const int mode_taps[] = {[M_NEAREST] = 1, [M_LINEAR] = 2, [M_CUBIC] = 4};

/* Parsed attributes (init); immutable. */
typedef struct rs_state {
    int mode, ctm, nearest, source, keep_aspect;
    bool exclude_outside, antialias;
    double cubic_a, extrapolation;
    int n_attr_scales;
    double attr_scales[CELER_MAX_RANK];
    int n_axes; /* opset 18 `axes`: roi/scales/sizes cover these axes only; 0: every axis */
    int64_t axes[CELER_MAX_RANK];
} rs_state;

static celer_status rs_parse(const celer_op_info *info, void *state) {
    rs_state *s = state;
    bool upsample = !strcmp(info->node->op_type, "Upsample");
    bool old = upsample || info->since_version < 11;
    s->source = upsample && info->since_version < 9 ? SRC_ATTR : old ? SRC_INPUT1 : SRC_RESIZE11;
    CELER_TRY(attr_enum(info, "mode", "nearest", old ? mode_names_old : mode_names, &s->mode));
    if (old) {
        s->ctm = CT_ASYMMETRIC;
        s->nearest = NM_SIMPLE;
    } else {
        CELER_TRY(attr_enum(info, "coordinate_transformation_mode", "half_pixel",
                            info->since_version >= 19 ? ctm_names19 : ctm_names, &s->ctm));
        CELER_TRY(attr_enum(info, "nearest_mode", "round_prefer_floor", nearest_names, &s->nearest));
        s->cubic_a = celer_onnx_attr_float(info->node, "cubic_coeff_a", -0.75f);
        s->exclude_outside = celer_onnx_attr_int(info->node, "exclude_outside", 0) != 0;
        s->extrapolation = celer_onnx_attr_float(info->node, "extrapolation_value", 0.0f);
    }
    if (!upsample && info->since_version >= 18) {
        CELER_TRY(attr_enum(info, "keep_aspect_ratio_policy", "stretch", keep_aspect_names, &s->keep_aspect));
        const int64_t *ax = NULL;
        int n = celer_onnx_attr_ints(info->node, "axes", &ax);
        if (n > CELER_MAX_RANK)
            return celer_ops_error(info, CELER_ERR_LIMIT, "attribute 'axes' has %d values, at most %d", n,
                                   CELER_MAX_RANK);
        if (n == 0)
            return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'axes' is empty");
        for (int i = 0; i < n; i++) s->axes[i] = ax[i];
        s->n_axes = n > 0 ? n : 0;
        /* the spec's filter applies to linear and cubic only: nearest ignores it */
        s->antialias = celer_onnx_attr_int(info->node, "antialias", 0) != 0 && s->mode != M_NEAREST;
    }
    if (s->source == SRC_ATTR) {
        const float *f = NULL;
        int n = celer_onnx_attr_floats(info->node, "scales", &f);
        if (n < 0) return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'scales' is required");
        if (n > CELER_MAX_RANK)
            return celer_ops_error(info, CELER_ERR_LIMIT, "attribute 'scales' has %d values, at most %d",
                          n, CELER_MAX_RANK);
        for (int i = 0; i < n; i++) s->attr_scales[i] = f[i];
        s->n_attr_scales = n;
    }
    celer_dtype t = info->n_inputs > 0 ? info->input_types[0] : CELER_UNDEFINED;
    if (s->mode != M_NEAREST && !is_float_dtype(t))
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                      "mode '%s' needs a float, double or float16 input, got %s",
                      celer_onnx_attr_string(info->node, "mode", "nearest"), celer_dtype_name(t));
    return CELER_OK;
}

static celer_status rs_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(rs_state), rs_parse);
}

/* Output type is X's; parsing here too makes `celer inspect` (which stops before init) name an
 * attribute value celer refuses. */
static celer_status rs_types(const celer_op_info *info, celer_dtype *out) {
    rs_state s = {0};
    CELER_TRY(rs_parse(info, &s));
    out[0] = info->n_inputs > 0 ? info->input_types[0] : CELER_UNDEFINED;
    return CELER_OK;
}

/* One axis of the plan: output index o reads taps source indices idx[o*taps + k] (clamped into
 * [0, in-1]) with weights w*[o*taps + k]; outside[o] marks tf_crop_and_resize samples that take
 * the extrapolation value instead. */
typedef struct rs_axis {
    int64_t in, out;
    int taps;
    bool identity; /* output index o is input index o: the axis needs no work */
    int64_t *idx;
    float *wf;
    double *wd;
    unsigned char *outside; /* NULL unless tf_crop_and_resize */
} rs_axis;

/* Per-context plan (reshape), owned by the execution context; arrays live in `mem`. */
typedef struct rs_local {
    void *mem;
    size_t cap;
    int rank;
    rs_axis ax[CELER_MAX_RANK];
    int n_pass;                  /* linear/cubic: axes to interpolate, in order[] */
    int order[CELER_MAX_RANK];
    int64_t stage_max;           /* largest element count of any stage of the passes */
    unsigned char extrap[16];    /* extrapolation value as one element of the output dtype */
} rs_local;

static void rs_free_local(void *p) {
    rs_local *l = p;
    if (l) free(l->mem);
    free(l);
}

/* Source coordinate of output index o along one axis (the spec's coordinate transformation). */
/* `out` is the resized length before flooring (in * scale, or the given size), as the spec's
 * reference uses it. */
static double rs_coord(const rs_state *s, int64_t o, int64_t in, int64_t out_int, double out,
                       double scale, double start, double end) {
    double x = (double)o, span = (double)(in - 1);
    switch (s->ctm) {
    case CT_HALF_PIXEL: return (x + 0.5) / scale - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: /* half_pixel with the floored-off part split evenly at both ends */
        return (double)in / 2 * (1 - (double)out_int / out) + (x + 0.5) / scale - 0.5;
    case CT_PYTORCH_HALF_PIXEL: return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case CT_ALIGN_CORNERS: return out == 1 ? 0.0 : x * span / (out - 1);
    case CT_TF_HALF_PIXEL_NN: return (x + 0.5) / scale;
    case CT_TF_CROP_AND_RESIZE:
        return (out == 1 ? (end - start) * span / 2 : x * (end - start) * span / (out - 1)) +
               start * span;
    default: return x / scale;
    }
}

static double rs_nearest(int rule, double x, double scale) {
    double f = floor(x);
    switch (rule) {
    case NM_ROUND_PREFER_FLOOR: return x - f == 0.5 ? f : round(x);
    case NM_ROUND_PREFER_CEIL: return x - f == 0.5 ? f + 1 : round(x);
    case NM_FLOOR: return f;
    case NM_CEIL: return ceil(x);
    default: return scale < 1 ? ceil(x) : f;
    }
}

/* Fills one axis's taps. */
static void rs_fill_axis(const rs_state *s, rs_axis *a, double scale, double length, double start,
                         double end) {
    int k = a->taps;
    bool identity = a->in == a->out;
    for (int64_t o = 0; o < a->out; o++) {
        double x = rs_coord(s, o, a->in, a->out, length, scale, start, end);
        bool outside = s->ctm == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(a->in - 1));
        if (a->outside) a->outside[o] = outside;
        /* far-away samples only clamp to the edge; keep x where int64 conversion is safe */
        x = fmin(fmax(x, -8.0), (double)a->in + 8.0);
        int64_t *ix = a->idx + o * k;
        double w[4] = {1, 0, 0, 0};
        int64_t base;
        if (s->mode == M_NEAREST) {
            base = (int64_t)rs_nearest(s->nearest, x, scale);
        } else if (s->mode == M_LINEAR) {
            base = (int64_t)floor(x);
            w[1] = x - (double)base;
            w[0] = 1 - w[1];
        } else {
            base = (int64_t)floor(x) - 1;
            cubic_coeffs(x - floor(x), s->cubic_a, w);
            if (s->exclude_outside) {
                double sum = 0;
                for (int j = 0; j < 4; j++) {
                    if (base + j < 0 || base + j >= a->in) w[j] = 0;
                    sum += w[j];
                }
                for (int j = 0; j < 4; j++) w[j] = sum != 0 ? w[j] / sum : 0;
            }
        }
        double self = 0;
        for (int j = 0; j < k; j++) {
            ix[j] = clamp_i64(base + j, 0, a->in - 1);
            a->wd[o * k + j] = w[j];
            a->wf[o * k + j] = (float)w[j];
            if (ix[j] == o) self += w[j];
            else if (w[j] != 0) identity = false;
        }
        if (self != 1 || outside) identity = false;
    }
    a->identity = identity;
}

/* Antialias (opset 18, linear/cubic): when shrinking, the filter is stretched by 1/scale so every
 * input sample contributes. The window is the filter's support around the sample's center; taps
 * past the edges read the edge sample (or, with exclude_outside, are dropped) and the weights are
 * renormalised, as ONNX Runtime does. */
static double rs_aa_support(const rs_state *s, double scale) {
    return (s->mode == M_CUBIC ? 2.0 : 1.0) * (scale < 1 ? 1 / scale : 1);
}

static double rs_aa_filter(const rs_state *s, double t) {
    double a = s->cubic_a;
    t = fabs(t);
    if (s->mode == M_LINEAR) return t < 1 ? 1 - t : 0;
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return ((t - 5) * t + 8) * t * a - 4 * a;
    return 0;
}

/* Most taps of one antialiased output: a longer window comes from a scale that makes the plan
 * too large anyway. */
#define MAX_AA_TAPS (1 << 20)

/* Taps per output index along an axis of `in` samples resized by `scale`; -1 past MAX_AA_TAPS. */
static int rs_axis_taps(const rs_state *s, double scale, int64_t in) {
    if (!s->antialias) return mode_taps[s->mode];
    double k = 2 * ceil(rs_aa_support(s, scale)) + 1;
    if (s->exclude_outside) k = fmax(1, fmin(k, (double)in)); /* a window never holds more than the input */
    return k > MAX_AA_TAPS ? -1 : (int)k;
}

static void rs_fill_axis_aa(const rs_state *s, rs_axis *a, double scale, double length, double start,
                            double end) {
    int k = a->taps;
    double support = rs_aa_support(s, scale), stretch = scale < 1 ? 1 / scale : 1;
    bool identity = a->in == a->out;
    for (int64_t o = 0; o < a->out; o++) {
        double x = rs_coord(s, o, a->in, a->out, length, scale, start, end);
        bool outside = s->ctm == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(a->in - 1));
        if (a->outside) a->outside[o] = outside;
        double center = fmin(fmax(x, -8.0 - support), (double)a->in + 8.0 + support) + 0.5;
        int64_t lo = (int64_t)floor(center - support + 0.5), hi = (int64_t)floor(center + support + 0.5);
        if (s->exclude_outside) lo = clamp_i64(lo, 0, a->in), hi = clamp_i64(hi, lo, a->in);
        hi = CELER_MIN(hi, lo + k);
        double sum = 0;
        int64_t *ix = a->idx + o * k;
        double *wd = a->wd + o * k;
        for (int j = 0; j < k; j++) {
            int64_t src = lo + j;
            wd[j] = src < hi ? rs_aa_filter(s, ((double)src - center + 0.5) / stretch) : 0;
            ix[j] = clamp_i64(src, 0, a->in - 1);
            sum += wd[j];
        }
        double self = 0;
        for (int j = 0; j < k; j++) {
            wd[j] = sum != 0 ? wd[j] / sum : 0;
            a->wf[o * k + j] = (float)wd[j];
            if (ix[j] == o) self += wd[j];
            else if (wd[j] != 0) identity = false;
        }
        if (self != 1 || outside) identity = false;
    }
    a->identity = identity;
}

/* Reads the 1-D float tensor `t` (scales or roi) into v[n]; it must hold exactly n values. */
static celer_status read_floats(const celer_op_info *info, const celer_tensor *t, const char *what,
                                int n, double *v) {
    if (!is_float_dtype(t->dtype))
        return celer_ops_error(info, CELER_ERR_DTYPE, "input '%s' must be float, got %s", what,
                      celer_dtype_name(t->dtype));
    int64_t cnt = celer_shape_numel(&t->shape);
    if (cnt != n)
        return celer_ops_error(info, CELER_ERR_SHAPE, "input '%s' must have %d values (2 per axis for roi, "
                      "1 per axis otherwise), got %lld", what, n, (long long)cnt);
    for (int i = 0; i < n; i++) {
        v[i] = celer_ops_double_at(t, i);
        if (!isfinite(v[i]))
            return celer_ops_error(info, CELER_ERR_INVALID, "input '%s' value %d is not finite", what, i);
    }
    return CELER_OK;
}

/* Output dims, per-axis scales and unfloored resized lengths from whichever of scales/sizes the
 * node gives. */
static celer_status rs_geometry(const celer_kernel_call *c, const rs_state *s, double *scale,
                                double *length, int64_t *out_dims, double *roi) {
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank;
    const celer_tensor *scales_t = NULL, *sizes_t = NULL;
    bool have_scales = false;
    if (s->source == SRC_ATTR) {
        if (s->n_attr_scales != r)
            return celer_ops_error(info, CELER_ERR_SHAPE,
                          "attribute 'scales' has %d values but the input has rank %d",
                          s->n_attr_scales, r);
        memcpy(scale, s->attr_scales, (size_t)r * sizeof *scale);
        have_scales = true;
    } else if (s->source == SRC_INPUT1) {
        scales_t = celer_ops_input(c, 1);
        if (!scales_t) return celer_ops_error(info, CELER_ERR_INVALID, "input 'scales' is missing");
    } else {
        scales_t = given_in(c, 2);
        sizes_t = given_in(c, 3);
        if (scales_t && sizes_t)
            return celer_ops_error(info, CELER_ERR_INVALID,
                          "only one of 'scales' and 'sizes' may be given, got both");
        if (!scales_t && !sizes_t)
            return celer_ops_error(info, CELER_ERR_INVALID, "one of 'scales' and 'sizes' must be given");
    }
    /* roi, scales and sizes hold one value (roi: two) per axis of `axes` (opset 18), else per axis */
    int na = s->n_axes ? s->n_axes : r, ax[CELER_MAX_RANK];
    bool listed[CELER_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        if (!s->n_axes) ax[i] = i;
        else CELER_TRY(celer_ops_axis(info, s->axes[i], r, &ax[i]));
        if (listed[ax[i]])
            return celer_ops_error(info, CELER_ERR_INVALID, "attribute 'axes' repeats axis %d", ax[i]);
        listed[ax[i]] = true;
    }
    double v[2 * CELER_MAX_RANK];
    if (scales_t) {
        CELER_TRY(read_floats(info, scales_t, "scales", na, v));
        for (int i = 0; i < r; i++) scale[i] = 1;
        for (int i = 0; i < na; i++) scale[ax[i]] = v[i];
        have_scales = true;
    }
    for (int i = 0; i < r; i++) roi[i] = 0, roi[r + i] = 1;
    if (s->ctm == CT_TF_CROP_AND_RESIZE) {
        const celer_tensor *roi_t = given_in(c, 1);
        if (!roi_t)
            return celer_ops_error(info, CELER_ERR_INVALID,
                          "coordinate_transformation_mode tf_crop_and_resize needs input 'roi'");
        CELER_TRY(read_floats(info, roi_t, "roi", 2 * na, v));
        for (int i = 0; i < na; i++) roi[ax[i]] = v[i], roi[r + ax[i]] = v[na + i];
    }
    int64_t sizes[CELER_MAX_RANK];
    if (sizes_t) {
        if (sizes_t->dtype != CELER_INT64)
            return celer_ops_error(info, CELER_ERR_DTYPE, "input 'sizes' must be int64, got %s",
                          celer_dtype_name(sizes_t->dtype));
        if (celer_shape_numel(&sizes_t->shape) != na)
            return celer_ops_error(info, CELER_ERR_SHAPE, "input 'sizes' must have %d values (the %s), "
                          "got %lld", na, s->n_axes ? "length of 'axes'" : "input rank",
                          (long long)celer_shape_numel(&sizes_t->shape));
        for (int i = 0; i < r; i++) sizes[i] = x->shape.dims[i];
        for (int i = 0; i < na; i++) sizes[ax[i]] = celer_ops_int_at(sizes_t, i);
        if (s->keep_aspect != KA_STRETCH) {
            /* one scale for every listed axis, the smallest (not_larger) or largest (not_smaller)
             * of sizes/in; the dims are then round-half-up of in * scale */
            double k = 0;
            for (int i = 0; i < na; i++) {
                int64_t in = x->shape.dims[ax[i]], n = sizes[ax[i]];
                if (in <= 0 || n <= 0)
                    return celer_ops_error(info, CELER_ERR_INVALID, "keep_aspect_ratio_policy needs "
                                  "positive dims and sizes, got %lld for axis %d of length %lld",
                                  (long long)n, ax[i], (long long)in);
                double q = (double)n / (double)in;
                if (i == 0 || (s->keep_aspect == KA_NOT_LARGER ? q < k : q > k)) k = q;
            }
            for (int i = 0; i < r; i++) scale[i] = 1;
            for (int i = 0; i < na; i++) {
                double d = floor(k * (double)x->shape.dims[ax[i]] + 0.5);
                if (d > MAX_DIM)
                    return celer_ops_error(info, CELER_ERR_LIMIT, "axis %d: size %g is too large", ax[i], d);
                scale[ax[i]] = k;
                sizes[ax[i]] = (int64_t)d;
            }
        }
    }
    for (int i = 0; i < r; i++) {
        int64_t in = x->shape.dims[i];
        if (sizes_t && s->keep_aspect != KA_STRETCH) {
            out_dims[i] = sizes[i];
            length[i] = (double)in * scale[i];
        } else if (have_scales) {
            if (!(scale[i] > 0) || !isfinite(scale[i]))
                return celer_ops_error(info, CELER_ERR_INVALID, "scale %g of axis %d must be positive",
                              scale[i], i);
            length[i] = (double)in * scale[i];
            double d = floor(length[i]);
            if (d > MAX_DIM)
                return celer_ops_error(info, CELER_ERR_LIMIT, "axis %d: %lld * scale %g is too large", i,
                              (long long)in, scale[i]);
            out_dims[i] = (int64_t)d;
        } else {
            int64_t n = sizes[i];
            /* 0 only keeps an empty axis empty (a batch of 0) */
            if (n < 0 || (n == 0 && in > 0))
                return celer_ops_error(info, CELER_ERR_INVALID, "size %lld of axis %d must be positive",
                              (long long)n, i);
            if ((double)n > MAX_DIM)
                return celer_ops_error(info, CELER_ERR_LIMIT, "size %lld of axis %d is too large",
                              (long long)n, i);
            out_dims[i] = n;
            length[i] = (double)n;
            scale[i] = in > 0 ? (double)n / (double)in : 1;
        }
        if (in == 0 && out_dims[i] > 0)
            return celer_ops_error(info, CELER_ERR_SHAPE, "axis %d is empty and cannot be resized to %lld",
                          i, (long long)out_dims[i]);
    }
    return CELER_OK;
}

static celer_status rs_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"X"};
    CELER_TRY(need(c, 1, names));
    const celer_op_info *info = c->info;
    const rs_state *s = c->state;
    const celer_tensor *x = c->in[0];
    int r = x->shape.rank;
    if (r < 1) return celer_ops_error(info, CELER_ERR_SHAPE, "input 'X' must have rank >= 1, got a scalar");
    double scale[CELER_MAX_RANK], length[CELER_MAX_RANK], roi[2 * CELER_MAX_RANK];
    int64_t out_dims[CELER_MAX_RANK];
    CELER_TRY(rs_geometry(c, s, scale, length, out_dims, roi));
    celer_tensor *y = &c->out[0];
    y->shape.rank = r;
    memcpy(y->shape.dims, out_dims, (size_t)r * sizeof *out_dims);
    CELER_TRY(celer_ops_check_output(info, y));
    c->scratch_size = 0;
    if (celer_shape_numel(&y->shape) == 0) return CELER_OK; /* run writes nothing */

    /* plan memory: per axis out*taps (idx, wd, wf) + out flags; every dim <= output numel */
    bool crop = s->ctm == CT_TF_CROP_AND_RESIZE;
    int taps[CELER_MAX_RANK];
    size_t bytes = sizeof(rs_local);
    for (int i = 0; i < r; i++) {
        taps[i] = rs_axis_taps(s, scale[i], x->shape.dims[i]);
        if (taps[i] < 0)
            return celer_ops_error(info, CELER_ERR_LIMIT, "antialias: scale %g of axis %d needs a window of "
                                   "more than %d samples", scale[i], i, MAX_AA_TAPS);
        size_t per = (size_t)taps[i] * (sizeof(int64_t) + sizeof(double) + sizeof(float)) + 1, b;
        if (celer_mul_size((size_t)out_dims[i], per, &b) || celer_add_size(bytes, b + 32, &bytes))
            return celer_ops_error(info, CELER_ERR_LIMIT, "resize plan is too large");
    }
    if (bytes > MAX_PLAN_BYTES)
        return celer_ops_error(info, CELER_ERR_LIMIT, "resize plan of %zu bytes is over the %zu-byte cap "
                               "(an output axis is too long)", bytes, MAX_PLAN_BYTES);
    rs_local *L = *c->local;
    if (!L) {
        if (!(L = calloc(1, sizeof *L))) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
        *c->local = L;
    }
    CELER_TRY(grow_local(info, &L->mem, &L->cap, bytes));
    char *p = L->mem;
    L->rank = r;
    for (int i = 0; i < r; i++) {
        rs_axis *a = &L->ax[i];
        size_t n = (size_t)out_dims[i] * (size_t)taps[i];
        a->in = x->shape.dims[i];
        a->out = out_dims[i];
        a->taps = taps[i];
        a->idx = (int64_t *)p, p += n * sizeof(int64_t);
        a->wd = (double *)p, p += n * sizeof(double);
        a->wf = (float *)p, p += (n * sizeof(float) + 7) & ~(size_t)7;
        a->outside = crop ? (unsigned char *)p : NULL, p += ((size_t)out_dims[i] + 7) & ~(size_t)7;
        if (s->antialias) rs_fill_axis_aa(s, a, scale[i], length[i], roi[i], roi[r + i]);
        else rs_fill_axis(s, a, scale[i], length[i], roi[i], roi[r + i]);
    }
    celer_tensor e = {y->dtype, {0, {0}}, L->extrap};
    memset(L->extrap, 0, sizeof L->extrap);
    celer_ops_double_store(&e, 0, s->extrapolation);

    /* linear/cubic: passes from the smallest out/in ratio up (see the file comment) */
    L->n_pass = 0;
    if (s->mode == M_NEAREST) return CELER_OK;
    for (int i = 0; i < r; i++)
        if (!L->ax[i].identity) {
            int j = L->n_pass++;
            double ratio = (double)out_dims[i] / (double)L->ax[i].in;
            /* equal ratios: inner axes first, so the strided last-axis pass sees fewer rows */
            while (j > 0 && (double)out_dims[L->order[j - 1]] / (double)L->ax[L->order[j - 1]].in >=
                                ratio) {
                L->order[j] = L->order[j - 1];
                j--;
            }
            L->order[j] = i;
        }
    int64_t dims[CELER_MAX_RANK], mx = celer_shape_numel(&x->shape);
    memcpy(dims, x->shape.dims, (size_t)r * sizeof *dims);
    for (int p2 = 0; p2 < L->n_pass; p2++) {
        dims[L->order[p2]] = out_dims[L->order[p2]];
        int64_t n = 1;
        for (int i = 0; i < r; i++) n *= dims[i]; /* <= max(input, output): no overflow */
        mx = CELER_MAX(mx, n);
    }
    L->stage_max = mx;
    bool native = y->dtype == CELER_FLOAT || y->dtype == CELER_DOUBLE;
    if (L->n_pass > 1 || (!native && L->n_pass > 0)) {
        size_t es = y->dtype == CELER_DOUBLE ? sizeof(double) : sizeof(float);
        CELER_TRY(check_bytes(info, "the resize scratch", mx, 2 * es));
        c->scratch_size = (size_t)mx * 2 * es;
    }
    return CELER_OK;
}

/* Nearest: out[o_0..o_r-1] = in[idx_0[o_0], ..., idx_r-1[o_r-1]] over element bytes. */
#define GATHER_CASE(W)                                                                             \
    case W:                                                                                        \
        for (int64_t j = 0; j < n; j++) {                                                          \
            if (la->outside && la->outside[j]) memcpy(d + j * W, L->extrap, W);                   \
            else memcpy(d + j * W, s + la->idx[j] * W, W);                                        \
        }                                                                                          \
        break;
static void rs_gather(const rs_local *L, const char *src, char *dst, size_t es) {
    int r = L->rank, last = r - 1;
    int64_t st[CELER_MAX_RANK], a = 1, rows = 1, o[CELER_MAX_RANK] = {0};
    for (int i = r - 1; i >= 0; i--) {
        st[i] = a;
        a *= L->ax[i].in;
        if (i < last) rows *= L->ax[i].out;
    }
    const rs_axis *la = &L->ax[last];
    int64_t n = la->out, prev_off = -1;
    size_t row_bytes = (size_t)n * es;
    bool prev_ext = false;
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0;
        bool ext = false;
        for (int i = 0; i < last; i++) {
            off += L->ax[i].idx[o[i]] * st[i];
            ext |= L->ax[i].outside && L->ax[i].outside[o[i]];
        }
        char *d = dst + (size_t)row * row_bytes;
        const char *s = src + (size_t)off * es;
        if (row > 0 && off == prev_off && ext == prev_ext) {
            memcpy(d, d - row_bytes, row_bytes);
        } else if (ext) {
            for (int64_t j = 0; j < n; j++) memcpy(d + (size_t)j * es, L->extrap, es);
        } else if (la->identity) {
            memcpy(d, s, row_bytes);
        } else {
            switch (es) {
                GATHER_CASE(1)
                GATHER_CASE(2)
                GATHER_CASE(4)
                GATHER_CASE(8)
            default:
                for (int64_t j = 0; j < n; j++) {
                    if (la->outside && la->outside[j]) memcpy(d + (size_t)j * es, L->extrap, es);
                    else memcpy(d + (size_t)j * es, s + (size_t)la->idx[j] * es, es);
                }
            }
        }
        prev_off = off;
        prev_ext = ext;
        for (int i = last - 1; i >= 0; i--) {
            if (++o[i] < L->ax[i].out) break;
            o[i] = 0;
        }
    }
}

/* One separable pass along an axis: src is [outer, a->in, inner], dst [outer, a->out, inner]. */
#define RS_PASS(NAME, T, W)                                                                        \
    static void NAME(const T *src, T *dst, int64_t outer, int64_t inner, const rs_axis *a,        \
                     T ext) {                                                                      \
        int k = a->taps;                                                                           \
        if (inner == 1 && !a->outside && (k == 2 || k == 4)) { /* last axis: one dot per output */ \
            const int64_t *ix = a->idx;                                                            \
            const T *w = a->W;                                                                     \
            for (int64_t b = 0; b < outer; b++) {                                                  \
                const T *s = src + b * a->in;                                                      \
                T *d = dst + b * a->out;                                                           \
                if (k == 2)                                                                        \
                    for (int64_t o = 0; o < a->out; o++)                                           \
                        d[o] = w[2 * o] * s[ix[2 * o]] + w[2 * o + 1] * s[ix[2 * o + 1]];          \
                else                                                                               \
                    for (int64_t o = 0; o < a->out; o++)                                           \
                        d[o] = w[4 * o] * s[ix[4 * o]] + w[4 * o + 1] * s[ix[4 * o + 1]] +         \
                               w[4 * o + 2] * s[ix[4 * o + 2]] + w[4 * o + 3] * s[ix[4 * o + 3]];  \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t b = 0; b < outer; b++) {                                                      \
            const T *s = src + b * a->in * inner;                                                  \
            T *d = dst + b * a->out * inner;                                                       \
            for (int64_t o = 0; o < a->out; o++, d += inner) {                                     \
                const int64_t *ix = a->idx + o * k;                                                \
                const T *w = a->W + o * k;                                                         \
                if (a->outside && a->outside[o]) {                                                 \
                    for (int64_t i = 0; i < inner; i++) d[i] = ext;                                \
                } else if (k == 2) {                                                               \
                    const T *r0 = s + ix[0] * inner, *r1 = s + ix[1] * inner;                      \
                    T w0 = w[0], w1 = w[1];                                                        \
                    for (int64_t i = 0; i < inner; i++) d[i] = w0 * r0[i] + w1 * r1[i];            \
                } else if (k == 4) {                                                               \
                    const T *r0 = s + ix[0] * inner, *r1 = s + ix[1] * inner;                      \
                    const T *r2 = s + ix[2] * inner, *r3 = s + ix[3] * inner;                      \
                    T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];                                  \
                    for (int64_t i = 0; i < inner; i++)                                            \
                        d[i] = w0 * r0[i] + w1 * r1[i] + w2 * r2[i] + w3 * r3[i];                  \
                } else {                                                                           \
                    for (int64_t i = 0; i < inner; i++) {                                          \
                        T acc = 0;                                                                 \
                        for (int j = 0; j < k; j++) acc += w[j] * s[ix[j] * inner + i];            \
                        d[i] = acc;                                                                \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
RS_PASS(rs_pass_f32, float, wf)
RS_PASS(rs_pass_f64, double, wd)

static celer_status rs_run(celer_kernel_call *c) {
    const rs_state *s = c->state;
    const rs_local *L = *c->local;
    const celer_tensor *x = c->in[0];
    celer_tensor *y = &c->out[0];
    int64_t n_out = celer_shape_numel(&y->shape);
    size_t es = celer_dtype_size(y->dtype);
    if (n_out == 0) return CELER_OK;
    if (s->mode == M_NEAREST) {
        rs_gather(L, x->data, y->data, es);
        return CELER_OK;
    }
    if (L->n_pass == 0) {
        memcpy(y->data, x->data, (size_t)n_out * es);
        return CELER_OK;
    }
    int r = L->rank;
    int64_t dims[CELER_MAX_RANK];
    for (int i = 0; i < r; i++) dims[i] = L->ax[i].in;
    bool dbl = y->dtype == CELER_DOUBLE, native = dbl || y->dtype == CELER_FLOAT;
    size_t ces = dbl ? sizeof(double) : sizeof(float);
    char *buf[2] = {c->scratch, (char *)c->scratch + (size_t)L->stage_max * ces};
    const void *src = x->data;
    int next = 0;
    if (!native) { /* float16: widen into a scratch buffer first */
        int64_t n_in = celer_shape_numel(&x->shape);
        float *f = (float *)buf[0];
        const uint16_t *h = x->data;
        for (int64_t i = 0; i < n_in; i++) f[i] = celer_half_to_float(h[i]);
        src = f;
        next = 1;
    }
    for (int p = 0; p < L->n_pass; p++) {
        int d = L->order[p];
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= dims[i];
        for (int i = d + 1; i < r; i++) inner *= dims[i];
        void *dst = native && p == L->n_pass - 1 ? y->data : buf[next];
        next ^= 1;
        if (dbl)
            rs_pass_f64(src, dst, outer, inner, &L->ax[d], s->extrapolation);
        else
            rs_pass_f32(src, dst, outer, inner, &L->ax[d], (float)s->extrapolation);
        dims[d] = L->ax[d].out;
        src = dst;
    }
    if (!native)
        for (int64_t i = 0; i < n_out; i++)
            ((uint16_t *)y->data)[i] = celer_float_to_half(((const float *)src)[i]);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* GridSample (16: 4-D X, grid [N, H_out, W_out, 2]; 20: X of rank r+2 for any r >= 1, grid     */
/* [N, D1_out..Dr_out, r], modes renamed linear/cubic; 22: bfloat16) and AffineGrid (20)        */

enum { GS_LINEAR, GS_NEAREST, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };
/* both tables list the modes in enum order: gs_parse indexes them by mode */
static const name_val gs_modes16[] = {
    {"bilinear", GS_LINEAR}, {"nearest", GS_NEAREST}, {"bicubic", GS_CUBIC}, {0, 0}};
static const name_val gs_modes20[] = {
    {"linear", GS_LINEAR}, {"nearest", GS_NEAREST}, {"cubic", GS_CUBIC}, {0, 0}};
static const name_val gs_pads[] = {
    {"zeros", GS_ZEROS}, {"border", GS_BORDER}, {"reflection", GS_REFLECTION}, {0, 0}};
/* taps per spatial axis of each mode */
static const int gs_axis_taps[] = {[GS_LINEAR] = 2, [GS_NEAREST] = 1, [GS_CUBIC] = 4};

typedef struct gs_state {
    int mode, pad;
    bool align;
} gs_state;

/* align_corners of GridSample and AffineGrid: a flag, anything but 0 or 1 is refused. */
static celer_status attr_align(const celer_op_info *info, bool *out) {
    int64_t v = celer_onnx_attr_int(info->node, "align_corners", 0);
    if (v != 0 && v != 1)
        return celer_ops_error(info, CELER_ERR_INVALID, "align_corners %lld is not supported "
                               "(expected 0 or 1)", (long long)v);
    *out = v == 1;
    return CELER_OK;
}

static celer_status gs_parse(const celer_op_info *info, void *state) {
    gs_state *s = state;
    bool v16 = info->since_version < 20; /* 20 renamed bilinear/bicubic to linear/cubic */
    const name_val *mine = v16 ? gs_modes16 : gs_modes20, *other = v16 ? gs_modes20 : gs_modes16;
    const char *mode = celer_onnx_attr_string(info->node, "mode", v16 ? "bilinear" : "linear");
    int renamed = lookup(mine, mode) < 0 ? lookup(other, mode) : -1;
    if (renamed >= 0) /* the other version's name: say which one this opset uses */
        return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "mode '%s' is %s; at opset %d it is '%s'", mode,
                               v16 ? "only defined from opset 20" : "the name before opset 20",
                               info->opset, mine[renamed].name);
    CELER_TRY(attr_enum(info, "mode", v16 ? "bilinear" : "linear", v16 ? gs_modes16 : gs_modes20,
                        &s->mode));
    CELER_TRY(attr_enum(info, "padding_mode", "zeros", gs_pads, &s->pad));
    return attr_align(info, &s->align);
}

static celer_status gs_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(gs_state), gs_parse);
}

/* Taps of one output location: all combinations of the per-axis taps, k^r of them. */
static int64_t gs_taps(const gs_state *s, int r) {
    int64_t k = 1;
    for (int d = 0; d < r; d++) k *= gs_axis_taps[s->mode];
    return k;
}

static celer_status gs_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"X", "grid"};
    CELER_TRY(need(c, 2, names));
    const celer_op_info *info = c->info;
    const celer_tensor *x = c->in[0], *g = c->in[1];
    if (info->since_version < 20) CELER_TRY(check_rank(info, x, "X", 4));
    int r = x->shape.rank - 2;
    if (r < 1) {
        char b[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "input 'X' must have rank 3 or more (N, C and "
                               "spatial axes), got shape %s", shape_s(&x->shape, b, sizeof b));
    }
    CELER_TRY(check_rank(info, g, "grid", r + 2));
    bool bf16 = g->dtype == CELER_BFLOAT16 && info->since_version >= 22;
    if (!is_float_dtype(g->dtype) && !bf16)
        return celer_ops_error(info, CELER_ERR_DTYPE, "input 'grid' must be float, got %s",
                               celer_dtype_name(g->dtype));
    if (g->shape.dims[0] != x->shape.dims[0] || g->shape.dims[r + 1] != r) {
        char b1[200], b2[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "grid shape %s does not match X shape %s (expected "
                      "[%lld, <%d output dims>, %d])", shape_s(&g->shape, b1, sizeof b1),
                      shape_s(&x->shape, b2, sizeof b2), (long long)x->shape.dims[0], r, r);
    }
    celer_tensor *y = &c->out[0];
    y->shape = x->shape;
    for (int d = 0; d < r; d++) y->shape.dims[2 + d] = g->shape.dims[1 + d];
    CELER_TRY(celer_ops_check_output(info, y));
    /* run keeps one location's taps (plane offset and weight) in scratch: at most 4^6 */
    return celer_ops_add_scratch(c, (size_t)gs_taps(c->state, r), sizeof(int64_t) + sizeof(double));
}

/* Mirrors x into [lo2/2, hi2/2] (bounds given doubled, as the reflection is about half pixels). */
static double gs_reflect(double x, double lo2, double hi2) {
    if (lo2 == hi2) return 0;
    double lo = lo2 / 2, span = (hi2 - lo2) / 2;
    x = fabs(x - lo);
    double extra = fmod(x, span);
    double flips = floor(x / span);
    return fmod(flips, 2) == 0 ? extra + lo : span - extra + lo;
}

/* Applies border/reflection padding to a coordinate along an axis of `size` pixels. */
static double gs_pad_coord(const gs_state *s, double x, int64_t size) {
    if (s->pad == GS_ZEROS) return x;
    if (s->pad == GS_REFLECTION)
        x = s->align ? gs_reflect(x, 0, 2.0 * (double)(size - 1))
                     : gs_reflect(x, -1, 2.0 * (double)size - 1);
    return fmin(fmax(x, 0), (double)(size - 1));
}

/* The taps of one axis for normalised coordinate `gv` on an axis of `size` pixels: indices (-1
 * outside the axis: those read 0) and weights. Returns the tap count. */
static int gs_axis(const gs_state *s, double gv, int64_t size, int64_t idx[4], double w[4]) {
    /* unnormalise: -1/1 are the corner pixels' centres (align) or outer edges */
    double f = s->align ? (gv + 1) / 2 * (double)(size - 1) : ((gv + 1) * (double)size - 1) / 2;
    /* coordinates stay doubles until bounds-checked, so any finite value is safe */
    if (!isfinite(f)) f = -2.0 * (double)size - 4;
    double t[4];
    int k;
    if (s->mode == GS_CUBIC) {
        double f0 = floor(f);
        cubic_coeffs(f - f0, -0.75, w);
        for (int j = 0; j < 4; j++) t[j] = gs_pad_coord(s, f0 - 1 + j, size);
        k = 4;
    } else if (s->mode == GS_NEAREST) {
        /* halfway rounds to even (the spec), and before padding: a reflected position then stays
         * a pixel centre, as ONNX Runtime and the ONNX reference compute it */
        t[0] = nearbyint(gs_pad_coord(s, nearbyint(f), size));
        w[0] = 1;
        k = 1;
    } else {
        f = gs_pad_coord(s, f, size);
        t[0] = floor(f), t[1] = t[0] + 1;
        w[1] = f - t[0], w[0] = 1 - w[1];
        k = 2;
    }
    for (int j = 0; j < k; j++) idx[j] = t[j] >= 0 && t[j] < (double)size ? (int64_t)t[j] : -1;
    return k;
}

static celer_status gs_run(celer_kernel_call *c) {
    const gs_state *s = c->state;
    const celer_tensor *x = c->in[0], *g = c->in[1];
    celer_tensor *y = &c->out[0];
    int r = x->shape.rank - 2;
    int64_t n = x->shape.dims[0], ch = x->shape.dims[1];
    int64_t plane = celer_ops_dims_prod(x->shape.dims, 2, r + 2);
    int64_t pts = celer_ops_dims_prod(y->shape.dims, 2, r + 2);
    int64_t *off = c->scratch; /* offset in the channel plane, -1: outside (reads 0) */
    double *wt = (double *)(off + gs_taps(s, r));
    for (int64_t b = 0; b < n; b++)
        for (int64_t p = 0; p < pts; p++) {
            /* grid lists the innermost axis first; taps combine axis by axis, outermost first */
            int64_t k = 1;
            off[0] = 0, wt[0] = 1;
            for (int d = 0; d < r; d++) {
                int64_t size = x->shape.dims[2 + d];
                int64_t idx[4];
                double w[4];
                int m = gs_axis(s, celer_ops_double_at(g, (b * pts + p) * r + (r - 1 - d)), size, idx, w);
                /* expand in place from the back: entry i becomes entries i*m .. i*m+m-1 */
                for (int64_t i = k - 1; i >= 0; i--) {
                    int64_t o = off[i];
                    double v = wt[i];
                    for (int j = m - 1; j >= 0; j--) {
                        off[i * m + j] = o < 0 || idx[j] < 0 ? -1 : o * size + idx[j];
                        wt[i * m + j] = v * w[j];
                    }
                }
                k *= m;
            }
            for (int64_t cc = 0; cc < ch; cc++) {
                int64_t base = (b * ch + cc) * plane;
                double acc = 0;
                for (int64_t i = 0; i < k; i++)
                    if (off[i] >= 0) acc += wt[i] * celer_ops_double_at(x, base + off[i]);
                celer_ops_double_store(y, (b * ch + cc) * pts + p, acc);
            }
        }
    return CELER_OK;
}

/* AffineGrid: theta [N, 2, 3] (2-D) or [N, 3, 4] (3-D), size [N, C, H, W] or [N, C, D, H, W];
 * grid [N, H, W, 2] or [N, D, H, W, 3] = theta applied to evenly spaced positions (x, y[, z], 1),
 * x along the innermost axis. */
typedef struct ag_state {
    bool align;
} ag_state;

static celer_status ag_parse(const celer_op_info *info, void *state) {
    return attr_align(info, &((ag_state *)state)->align);
}

static celer_status ag_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(ag_state), ag_parse);
}

static celer_status ag_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"theta", "size"};
    CELER_TRY(need(c, 2, names));
    const celer_op_info *info = c->info;
    const celer_tensor *th = c->in[0], *sz = c->in[1];
    char b1[200], b2[200];
    int r = th->shape.rank == 3 ? (int)th->shape.dims[1] : 0;
    if (!(r == 2 || r == 3) || th->shape.dims[2] != r + 1)
        return celer_ops_error(info, CELER_ERR_SHAPE, "input 'theta' must have shape [N, 2, 3] or "
                               "[N, 3, 4], got %s", shape_s(&th->shape, b1, sizeof b1));
    if (sz->shape.rank != 1 || sz->shape.dims[0] != r + 2 || sz->dtype != CELER_INT64)
        return celer_ops_error(info, CELER_ERR_SHAPE, "input 'size' must be %d int64 values for "
                               "theta %s, got %s of shape %s", r + 2, shape_s(&th->shape, b1, sizeof b1),
                               celer_dtype_name(sz->dtype), shape_s(&sz->shape, b2, sizeof b2));
    celer_tensor *y = &c->out[0];
    y->shape.rank = r + 2;
    y->shape.dims[0] = th->shape.dims[0];
    y->shape.dims[r + 1] = r;
    for (int d = 0; d < r; d++) y->shape.dims[1 + d] = celer_ops_int_at(sz, 2 + d);
    if (celer_ops_int_at(sz, 0) != th->shape.dims[0] || celer_shape_numel(&y->shape) < 0)
        return celer_ops_error(info, CELER_ERR_INVALID, "size [%lld, ..] must give theta's N (%lld) and "
                               "spatial dims >= 0, got grid shape %s", (long long)celer_ops_int_at(sz, 0),
                               (long long)th->shape.dims[0], shape_s(&y->shape, b1, sizeof b1));
    return celer_ops_check_output(info, y);
}

/* Position i of `len` evenly spaced ones in [-1, 1]: pixel centres (align_corners=0) or the
 * corner centres at -1 and 1 (align_corners=1). A single position is 0 without align_corners;
 * with it ONNX Runtime, the oracle, gives 1 (PyTorch 0, the ONNX reference -1): we follow it. */
static double ag_pos(bool align, int64_t i, int64_t len) {
    if (!align) return (2.0 * (double)i + 1) / (double)len - 1;
    return len > 1 ? -1 + 2.0 * (double)i / (double)(len - 1) : 1;
}

static celer_status ag_run(celer_kernel_call *c) {
    const ag_state *s = c->state;
    const celer_tensor *th = c->in[0];
    celer_tensor *y = &c->out[0];
    int r = y->shape.rank - 2;
    const int64_t *dims = y->shape.dims + 1; /* spatial dims, outermost first */
    int64_t pts = celer_ops_dims_prod(dims, 0, r), at[3] = {0, 0, 0};
    for (int64_t b = 0; b < y->shape.dims[0]; b++) {
        double m[3][4];
        for (int i = 0; i < r; i++)
            for (int j = 0; j <= r; j++) m[i][j] = celer_ops_double_at(th, (b * r + i) * (r + 1) + j);
        for (int64_t p = 0; p < pts; p++) {
            /* at[] counts positions outermost axis first; v lists them innermost first, then 1 */
            double v[4];
            for (int d = 0; d < r; d++) v[r - 1 - d] = ag_pos(s->align, at[d], dims[d]);
            v[r] = 1;
            for (int i = 0; i < r; i++) {
                double acc = 0;
                for (int j = 0; j <= r; j++) acc += m[i][j] * v[j];
                celer_ops_double_store(y, (b * pts + p) * r + i, acc);
            }
            for (int d = r - 1; d >= 0 && ++at[d] == dims[d]; d--) at[d] = 0;
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Col2Im (18): input [N, C * prod(block), L] of column blocks summed back into [N, C, image...] */

typedef struct c2_state {
    int n_strides, n_dil, n_pads; /* -1: attribute absent */
    int64_t strides[CELER_MAX_RANK], dil[CELER_MAX_RANK], pads[2 * CELER_MAX_RANK];
} c2_state;

/* Copies the INTS attribute `name` (at most `cap` values, each in [lo, 2^30]) into out; *n = -1
 * when absent. */
static celer_status c2_ints(const celer_op_info *info, const char *name, int64_t lo, int cap,
                            int64_t *out, int *n) {
    const int64_t *v = NULL;
    *n = celer_onnx_attr_ints(info->node, name, &v);
    if (*n > cap)
        return celer_ops_error(info, CELER_ERR_INVALID, "%s has %d values, more than the %d a %d-D "
                               "image can use", name, *n, cap, CELER_MAX_RANK - 2);
    for (int i = 0; i < *n; i++) {
        if (v[i] < lo || v[i] > (1 << 30))
            return celer_ops_error(info, CELER_ERR_INVALID, "%s[%d] = %lld must be in [%lld, 2^30]", name,
                                   i, (long long)v[i], (long long)lo);
        out[i] = v[i];
    }
    return CELER_OK;
}

static celer_status c2_parse(const celer_op_info *info, void *state) {
    c2_state *s = state;
    CELER_TRY(c2_ints(info, "strides", 1, CELER_MAX_RANK - 2, s->strides, &s->n_strides));
    CELER_TRY(c2_ints(info, "dilations", 1, CELER_MAX_RANK - 2, s->dil, &s->n_dil));
    return c2_ints(info, "pads", 0, 2 * (CELER_MAX_RANK - 2), s->pads, &s->n_pads);
}

static celer_status c2_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(c2_state), c2_parse);
}

/* The geometry of one call, from the shapes and the attributes. */
typedef struct c2_geom {
    int r;
    int64_t img[CELER_MAX_RANK], blk[CELER_MAX_RANK], nb[CELER_MAX_RANK]; /* nb: blocks per axis */
    int64_t st[CELER_MAX_RANK], dil[CELER_MAX_RANK], pad[CELER_MAX_RANK]; /* pad: at the start */
} c2_geom;

static celer_status c2_geometry(const celer_kernel_call *c, c2_geom *G) {
    const celer_op_info *info = c->info;
    const c2_state *s = c->state;
    const celer_tensor *x = c->in[0], *im = c->in[1], *bl = c->in[2];
    char b1[200], b2[200];
    if (x->shape.rank != 3)
        return celer_ops_error(info, CELER_ERR_SHAPE, "input 'input' must have rank 3 [N, C * prod(block), "
                               "L], got shape %s", shape_s(&x->shape, b1, sizeof b1));
    int r = im->shape.rank == 1 ? (int)im->shape.dims[0] : -1;
    if (r < 1 || r > CELER_MAX_RANK - 2 || !celer_shape_equal(&im->shape, &bl->shape) ||
        im->dtype != CELER_INT64 || bl->dtype != CELER_INT64)
        return celer_ops_error(info, CELER_ERR_SHAPE, "image_shape %s and block_shape %s must be int64 "
                               "vectors of the same length in [1, %d]", shape_s(&im->shape, b1, sizeof b1),
                               shape_s(&bl->shape, b2, sizeof b2), CELER_MAX_RANK - 2);
    if ((s->n_strides >= 0 && s->n_strides != r) || (s->n_dil >= 0 && s->n_dil != r) ||
        (s->n_pads >= 0 && s->n_pads != 2 * r))
        return celer_ops_error(info, CELER_ERR_INVALID, "strides (%d values), dilations (%d) and pads (%d) "
                               "must have %d, %d and %d values for a %d-D image", s->n_strides, s->n_dil,
                               s->n_pads, r, r, 2 * r, r);
    G->r = r;
    int64_t blocks = 1, blk_all = 1;
    for (int d = 0; d < r; d++) {
        G->img[d] = celer_ops_int_at(im, d), G->blk[d] = celer_ops_int_at(bl, d);
        G->st[d] = s->n_strides >= 0 ? s->strides[d] : 1;
        G->dil[d] = s->n_dil >= 0 ? s->dil[d] : 1;
        G->pad[d] = s->n_pads >= 0 ? s->pads[d] : 0;
        int64_t end = s->n_pads >= 0 ? s->pads[r + d] : 0;
        if (G->img[d] < 0 || G->img[d] > ((int64_t)1 << 40) || G->blk[d] < 1 || G->blk[d] > (1 << 30))
            return celer_ops_error(info, CELER_ERR_INVALID, "image_shape[%d] = %lld must be in [0, 2^40] "
                                   "and block_shape[%d] = %lld in [1, 2^30]", d, (long long)G->img[d], d,
                                   (long long)G->blk[d]);
        /* all terms are below 2^62: no overflow */
        int64_t span = G->dil[d] * (G->blk[d] - 1) + 1, room = G->img[d] + G->pad[d] + end;
        if (span > room)
            return celer_ops_error(info, CELER_ERR_INVALID, "axis %d: the dilated block (%lld) is larger "
                                   "than the padded image (%lld)", d, (long long)span, (long long)room);
        G->nb[d] = (room - span) / G->st[d] + 1;
        if (__builtin_mul_overflow(blocks, G->nb[d], &blocks) ||
            __builtin_mul_overflow(blk_all, G->blk[d], &blk_all))
            blocks = blk_all = -1;
    }
    if (blocks < 0 || blk_all < 0 || x->shape.dims[2] != blocks || x->shape.dims[1] % blk_all)
        return celer_ops_error(info, CELER_ERR_SHAPE, "input shape %s does not match the image and block "
                               "shapes (expected [N, C * %lld, %lld])", shape_s(&x->shape, b1, sizeof b1),
                               (long long)blk_all, (long long)blocks);
    return CELER_OK;
}

static celer_status c2_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"input", "image_shape", "block_shape"};
    CELER_TRY(need(c, 3, names));
    c2_geom G;
    CELER_TRY(c2_geometry(c, &G));
    const celer_tensor *x = c->in[0];
    celer_tensor *y = &c->out[0];
    int64_t blk_all = celer_ops_dims_prod(G.blk, 0, G.r);
    y->shape.rank = G.r + 2;
    y->shape.dims[0] = x->shape.dims[0];
    y->shape.dims[1] = x->shape.dims[1] / blk_all;
    for (int d = 0; d < G.r; d++) y->shape.dims[2 + d] = G.img[d];
    CELER_TRY(celer_ops_check_output(c->info, y));
    /* sums in double, stored once at the end (float16 would round at every add) */
    return celer_ops_add_scratch(c, (size_t)celer_shape_numel(&y->shape), sizeof(double));
}

static celer_status c2_run(celer_kernel_call *c) {
    c2_geom G;
    CELER_TRY(c2_geometry(c, &G));
    const celer_tensor *x = c->in[0];
    celer_tensor *y = &c->out[0];
    int r = G.r;
    int64_t n_out = celer_shape_numel(&y->shape), L = x->shape.dims[2];
    int64_t nc = x->shape.dims[0] * y->shape.dims[1], img_all = celer_ops_dims_prod(G.img, 0, r);
    int64_t blk_all = celer_ops_dims_prod(G.blk, 0, r);
    double *acc = c->scratch;
    memset(acc, 0, (size_t)n_out * sizeof *acc);
    /* input row (channel, offset in the block) and column (block position), both row-major */
    for (int64_t q = 0; q < nc; q++)
        for (int64_t kb = 0; kb < blk_all; kb++) {
            int64_t ko[CELER_MAX_RANK], t = kb;
            for (int d = r - 1; d >= 0; d--) ko[d] = t % G.blk[d], t /= G.blk[d];
            const int64_t row = q * blk_all + kb; /* (n, c) as q, so n * rows + c * blk_all = q * blk_all */
            int64_t at[CELER_MAX_RANK] = {0};
            for (int64_t l = 0; l < L; l++) {
                int64_t pos = 0;
                bool inside = true;
                for (int d = 0; d < r && inside; d++) {
                    int64_t v = at[d] * G.st[d] - G.pad[d] + ko[d] * G.dil[d];
                    inside = v >= 0 && v < G.img[d];
                    pos = pos * G.img[d] + v;
                }
                if (inside) acc[q * img_all + pos] += celer_ops_double_at(x, row * L + l);
                for (int d = r - 1; d >= 0 && ++at[d] == G.nb[d]; d--) at[d] = 0;
            }
        }
    for (int64_t i = 0; i < n_out; i++) celer_ops_double_store(y, i, acc[i]);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* RoiAlign                                                                                    */

enum { RA_AVG, RA_MAX };
static const name_val ra_modes[] = {{"avg", RA_AVG}, {"max", RA_MAX}, {0, 0}};
static const name_val ra_ctms[] = {{"half_pixel", 1}, {"output_half_pixel", 0}, {0, 0}};

typedef struct ra_state {
    int mode, half_pixel;
    int64_t oh, ow, sampling;
    double spatial_scale;
} ra_state;

static celer_status ra_parse(const celer_op_info *info, void *state) {
    ra_state *s = state;
    CELER_TRY(attr_enum(info, "mode", "avg", ra_modes, &s->mode));
    /* opset 10 had no attribute and behaved as output_half_pixel */
    if (info->since_version >= 16)
        CELER_TRY(attr_enum(info, "coordinate_transformation_mode", "half_pixel", ra_ctms,
                      &s->half_pixel));
    s->oh = celer_onnx_attr_int(info->node, "output_height", 1);
    s->ow = celer_onnx_attr_int(info->node, "output_width", 1);
    s->sampling = celer_onnx_attr_int(info->node, "sampling_ratio", 0);
    s->spatial_scale = celer_onnx_attr_float(info->node, "spatial_scale", 1.0f);
    if (s->oh < 1 || s->ow < 1 || s->oh > (1 << 20) || s->ow > (1 << 20))
        return celer_ops_error(info, CELER_ERR_INVALID, "output_height %lld and output_width %lld must be "
                      "in [1, 1048576]", (long long)s->oh, (long long)s->ow);
    if (s->sampling < 0 || s->sampling > 1024)
        return celer_ops_error(info, CELER_ERR_INVALID, "sampling_ratio %lld must be in [0, 1024]",
                      (long long)s->sampling);
    if (!isfinite(s->spatial_scale))
        return celer_ops_error(info, CELER_ERR_INVALID, "spatial_scale is not finite");
    return CELER_OK;
}

static celer_status ra_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(ra_state), ra_parse);
}

/* A roi in input pixels and its per-bin sampling grid. */
typedef struct ra_roi {
    double x0, y0, bin_w, bin_h;
    int64_t gh, gw, count;
} ra_roi;

static ra_roi ra_geometry(const ra_state *s, const celer_tensor *rois, int64_t r) {
    double off = s->half_pixel ? 0.5 : 0, v[4];
    for (int j = 0; j < 4; j++)
        v[j] = celer_ops_double_at(rois, r * 4 + j) * s->spatial_scale - off;
    double rw = v[2] - v[0], rh = v[3] - v[1];
    if (!s->half_pixel) rw = fmax(rw, 1), rh = fmax(rh, 1);
    ra_roi g = {v[0], v[1], rw / (double)s->ow, rh / (double)s->oh, 0, 0, 0};
    double gh = s->sampling > 0 ? (double)s->sampling : ceil(rh / (double)s->oh);
    double gw = s->sampling > 0 ? (double)s->sampling : ceil(rw / (double)s->ow);
    g.gh = gh > 0 ? (int64_t)fmin(gh, MAX_ROI_SAMPLES + 1.0) : 0;
    g.gw = gw > 0 ? (int64_t)fmin(gw, MAX_ROI_SAMPLES + 1.0) : 0;
    g.count = CELER_MAX(g.gh * g.gw, 1);
    return g;
}

static celer_status ra_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"X", "rois", "batch_indices"};
    CELER_TRY(need(c, 3, names));
    const celer_op_info *info = c->info;
    const ra_state *s = c->state;
    const celer_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    CELER_TRY(check_rank(info, x, "X", 4));
    CELER_TRY(check_rank(info, rois, "rois", 2));
    CELER_TRY(check_rank(info, bi, "batch_indices", 1));
    if (!is_float_dtype(rois->dtype))
        return celer_ops_error(info, CELER_ERR_DTYPE, "input 'rois' must be float, got %s",
                      celer_dtype_name(rois->dtype));
    if (bi->dtype != CELER_INT64 && bi->dtype != CELER_INT32)
        return celer_ops_error(info, CELER_ERR_DTYPE, "input 'batch_indices' must be int64, got %s",
                      celer_dtype_name(bi->dtype));
    int64_t nr = rois->shape.dims[0];
    if ((x->shape.dims[2] == 0 || x->shape.dims[3] == 0) && nr > 0 && x->shape.dims[1] > 0) {
        char b[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "input 'X' %s has no pixels to sample",
                      shape_s(&x->shape, b, sizeof b));
    }
    if (rois->shape.dims[1] != 4 || bi->shape.dims[0] != nr) {
        char b1[200], b2[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "rois %s must be [num_rois, 4] and batch_indices %s "
                      "[num_rois]", shape_s(&rois->shape, b1, sizeof b1),
                      shape_s(&bi->shape, b2, sizeof b2));
    }
    for (int64_t r = 0; r < nr; r++) {
        int64_t b = celer_ops_int_at(bi, r);
        if (b < 0 || b >= x->shape.dims[0])
            return celer_ops_error(info, CELER_ERR_INVALID, "batch_indices[%lld] = %lld is out of range "
                          "for batch size %lld", (long long)r, (long long)b,
                          (long long)x->shape.dims[0]);
        for (int j = 0; j < 4; j++)
            if (!isfinite(celer_ops_double_at(rois, r * 4 + j) * s->spatial_scale))
                return celer_ops_error(info, CELER_ERR_INVALID, "rois[%lld] is not finite", (long long)r);
        ra_roi g = ra_geometry(s, rois, r);
        if (g.gh * g.gw > MAX_ROI_SAMPLES)
            return celer_ops_error(info, CELER_ERR_LIMIT, "rois[%lld] needs %lld x %lld samples per bin "
                          "(limit %d): set sampling_ratio", (long long)r, (long long)g.gh,
                          (long long)g.gw, MAX_ROI_SAMPLES);
    }
    celer_tensor *y = &c->out[0];
    y->shape = (celer_shape){4, {nr, x->shape.dims[1], s->oh, s->ow}};
    return celer_ops_check_output(info, y);
}

static celer_status ra_run(celer_kernel_call *c) {
    const ra_state *s = c->state;
    const celer_tensor *x = c->in[0], *rois = c->in[1], *bi = c->in[2];
    celer_tensor *y = &c->out[0];
    int64_t ch = x->shape.dims[1], h = x->shape.dims[2], w = x->shape.dims[3];
    int64_t nr = rois->shape.dims[0], o = 0;
    for (int64_t r = 0; r < nr; r++) {
        ra_roi g = ra_geometry(s, rois, r);
        int64_t b = celer_ops_int_at(bi, r);
        for (int64_t cc = 0; cc < ch; cc++) {
            int64_t plane = (b * ch + cc) * h * w;
            for (int64_t ph = 0; ph < s->oh; ph++)
                for (int64_t pw = 0; pw < s->ow; pw++) {
                    double acc = 0;
                    bool first = true;
                    for (int64_t iy = 0; iy < g.gh; iy++) {
                        double yy = g.y0 + (double)ph * g.bin_h +
                                    ((double)iy + 0.5) * g.bin_h / (double)g.gh;
                        for (int64_t ix = 0; ix < g.gw; ix++) {
                            double xx = g.x0 + (double)pw * g.bin_w +
                                        ((double)ix + 0.5) * g.bin_w / (double)g.gw;
                            double v[4] = {0, 0, 0, 0}, wt[4] = {0, 0, 0, 0};
                            /* samples more than a pixel outside contribute zero */
                            if (!(yy < -1.0 || yy > (double)h || xx < -1.0 || xx > (double)w)) {
                                double sy = fmax(yy, 0), sx = fmax(xx, 0);
                                int64_t y0 = (int64_t)sy, x0 = (int64_t)sx, y1, x1;
                                if (y0 >= h - 1) y0 = y1 = h - 1, sy = (double)y0;
                                else y1 = y0 + 1;
                                if (x0 >= w - 1) x0 = x1 = w - 1, sx = (double)x0;
                                else x1 = x0 + 1;
                                double ly = sy - (double)y0, lx = sx - (double)x0;
                                wt[0] = (1 - ly) * (1 - lx), wt[1] = (1 - ly) * lx;
                                wt[2] = ly * (1 - lx), wt[3] = ly * lx;
                                v[0] = celer_ops_double_at(x, plane + y0 * w + x0);
                                v[1] = celer_ops_double_at(x, plane + y0 * w + x1);
                                v[2] = celer_ops_double_at(x, plane + y1 * w + x0);
                                v[3] = celer_ops_double_at(x, plane + y1 * w + x1);
                            }
                            if (s->mode == RA_AVG) {
                                acc += wt[0] * v[0] + wt[1] * v[1] + wt[2] * v[2] + wt[3] * v[3];
                            } else {
                                /* max of the weighted corners, as the reference does */
                                double m = fmax(fmax(wt[0] * v[0], wt[1] * v[1]),
                                                fmax(wt[2] * v[2], wt[3] * v[3]));
                                acc = first ? m : fmax(acc, m);
                                first = false;
                            }
                        }
                    }
                    if (s->mode == RA_AVG) acc /= (double)g.count;
                    celer_ops_double_store(y, o++, acc);
                }
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* NonMaxSuppression                                                                           */

typedef struct nms_state {
    bool center_point_box;
} nms_state;

static celer_status nms_types(const celer_op_info *info, celer_dtype *out) {
    (void)info;
    out[0] = CELER_INT64;
    return CELER_OK;
}

static celer_status nms_parse(const celer_op_info *info, void *state) {
    nms_state *s = state;
    int64_t cpb = celer_onnx_attr_int(info->node, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return celer_ops_error(info, CELER_ERR_INVALID, "center_point_box must be 0 or 1, got %lld",
                      (long long)cpb);
    s->center_point_box = cpb == 1;
    return CELER_OK;
}

static celer_status nms_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(nms_state), nms_parse);
}

typedef struct nms_cand {
    float score;
    int64_t index;
} nms_cand;

/* Per-context result (reshape): `n` (batch, class, box) triples, then work arrays. The whole
 * thing is one allocation owned by the execution context. */
typedef struct nms_local {
    size_t cap;
    int64_t n;
    int64_t *triples; /* 3 * n */
    nms_cand *cand;   /* spatial */
    int64_t *sel;     /* spatial */
    float *corners;   /* 4 * spatial: x_min, y_min, x_max, y_max of one batch */
} nms_local;

static int nms_cmp(const void *pa, const void *pb) {
    const nms_cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Whether box a suppresses box b: IoU over the threshold (boxes without area never do). */
static bool nms_suppress(const float *a, const float *b, float thr) {
    float ix0 = fmaxf(a[0], b[0]), iy0 = fmaxf(a[1], b[1]);
    float ix1 = fminf(a[2], b[2]), iy1 = fminf(a[3], b[3]);
    if (ix1 <= ix0 || iy1 <= iy0) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float aa = (a[2] - a[0]) * (a[3] - a[1]), ab = (b[2] - b[0]) * (b[3] - b[1]);
    float uni = aa + ab - inter;
    if (inter <= 0 || aa <= 0 || ab <= 0 || uni <= 0) return false;
    return inter / uni > thr;
}

static celer_status nms_reshape(celer_kernel_call *c) {
    static const char *const names[] = {"boxes", "scores"};
    CELER_TRY(need(c, 2, names));
    const celer_op_info *info = c->info;
    const nms_state *s = c->state;
    const celer_tensor *boxes = c->in[0], *scores = c->in[1];
    CELER_TRY(check_rank(info, boxes, "boxes", 3));
    CELER_TRY(check_rank(info, scores, "scores", 3));
    if (scores->dtype != boxes->dtype)
        return celer_ops_error(info, CELER_ERR_DTYPE, "scores (%s) must have the type of boxes (%s)",
                      celer_dtype_name(scores->dtype), celer_dtype_name(boxes->dtype));
    int64_t nb = boxes->shape.dims[0], ns = boxes->shape.dims[1], nc = scores->shape.dims[1];
    if (boxes->shape.dims[2] != 4 || scores->shape.dims[0] != nb || scores->shape.dims[2] != ns) {
        char b1[200], b2[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "boxes %s must be [batches, boxes, 4] and scores %s "
                      "[batches, classes, boxes]", shape_s(&boxes->shape, b1, sizeof b1),
                      shape_s(&scores->shape, b2, sizeof b2));
    }
    const celer_tensor *t;
    int64_t max_out = 0;
    double iou = 0, score_thr = -INFINITY;
    bool has_score_thr = false;
    if ((t = given_in(c, 2))) {
        if (t->dtype != CELER_INT64 && t->dtype != CELER_INT32)
            return celer_ops_error(info, CELER_ERR_DTYPE, "max_output_boxes_per_class must be int64, got %s",
                          celer_dtype_name(t->dtype));
        max_out = CELER_MAX(celer_ops_int_at(t, 0), 0);
    }
    if ((t = given_in(c, 3))) {
        if (!is_float_dtype(t->dtype))
            return celer_ops_error(info, CELER_ERR_DTYPE, "iou_threshold must be float, got %s",
                          celer_dtype_name(t->dtype));
        iou = celer_ops_double_at(t, 0);
        if (!(iou >= 0 && iou <= 1))
            return celer_ops_error(info, CELER_ERR_INVALID, "iou_threshold %g must be in [0, 1]", iou);
    }
    if ((t = given_in(c, 4))) {
        if (!is_float_dtype(t->dtype))
            return celer_ops_error(info, CELER_ERR_DTYPE, "score_threshold must be float, got %s",
                          celer_dtype_name(t->dtype));
        score_thr = celer_ops_double_at(t, 0);
        has_score_thr = true;
    }
    int64_t per_class = CELER_MIN(max_out, ns), total;
    if (__builtin_mul_overflow(nb, nc, &total) || __builtin_mul_overflow(total, per_class, &total))
        return celer_ops_error(info, CELER_ERR_LIMIT, "too many selected boxes");
    CELER_TRY(check_bytes(info, "the selection", total, 3 * sizeof(int64_t)));
    CELER_TRY(check_bytes(info, "the box list", ns,
                    sizeof(nms_cand) + sizeof(int64_t) + 4 * sizeof(float)));
    size_t bytes = sizeof(nms_local) + (size_t)total * 3 * sizeof(int64_t) +
                   (size_t)ns * (sizeof(nms_cand) + sizeof(int64_t) + 4 * sizeof(float)) + 64;
    nms_local *L = *c->local;
    size_t cap = L ? L->cap : 0;
    void *mem = L;
    CELER_TRY(grow_local(info, &mem, &cap, bytes));
    *c->local = L = mem;
    L->cap = cap;
    char *p = (char *)(L + 1);
    L->cand = (nms_cand *)p, p += (size_t)ns * sizeof(nms_cand);
    L->sel = (int64_t *)p, p += (size_t)ns * sizeof(int64_t);
    L->triples = (int64_t *)p, p += (size_t)total * 3 * sizeof(int64_t);
    L->corners = (float *)p;
    L->n = 0;
    for (int64_t b = 0; b < nb && per_class > 0; b++) {
        for (int64_t i = 0; i < ns; i++) {
            float v[4], *q = L->corners + i * 4;
            for (int j = 0; j < 4; j++)
                v[j] = (float)celer_ops_double_at(boxes, (b * ns + i) * 4 + j);
            if (s->center_point_box) { /* [x_center, y_center, width, height] */
                q[0] = v[0] - v[2] / 2, q[2] = v[0] + v[2] / 2;
                q[1] = v[1] - v[3] / 2, q[3] = v[1] + v[3] / 2;
            } else { /* [y1, x1, y2, x2], either corner order */
                q[0] = fminf(v[1], v[3]), q[2] = fmaxf(v[1], v[3]);
                q[1] = fminf(v[0], v[2]), q[3] = fmaxf(v[0], v[2]);
            }
        }
        for (int64_t k = 0; k < nc; k++) {
            int64_t n_cand = 0, n_sel = 0;
            for (int64_t i = 0; i < ns; i++) {
                float sc = (float)celer_ops_double_at(scores, (b * nc + k) * ns + i);
                /* NaN scores cannot be ranked: they are never selected */
                if (isnan(sc) || (has_score_thr && !(sc > score_thr))) continue;
                L->cand[n_cand++] = (nms_cand){sc, i};
            }
            qsort(L->cand, (size_t)n_cand, sizeof *L->cand, nms_cmp);
            for (int64_t i = 0; i < n_cand && n_sel < per_class; i++) {
                const float *bx = L->corners + L->cand[i].index * 4;
                bool keep = true;
                for (int64_t j = 0; j < n_sel && keep; j++)
                    keep = !nms_suppress(L->corners + L->sel[j] * 4, bx, (float)iou);
                if (!keep) continue;
                L->sel[n_sel++] = L->cand[i].index;
                int64_t *tr = L->triples + L->n++ * 3;
                tr[0] = b, tr[1] = k, tr[2] = L->cand[i].index;
            }
        }
    }
    c->out[0].shape = (celer_shape){2, {L->n, 3}};
    return CELER_OK;
}

static celer_status nms_run(celer_kernel_call *c) {
    const nms_local *L = *c->local;
    if (L->n) memcpy(c->out[0].data, L->triples, (size_t)L->n * 3 * sizeof(int64_t));
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* ImageDecoder                                                                                */
/* The pipeline's decoders (libjpeg-turbo, libpng) decode to RGB; BGR swaps channels in place and
 * Grayscale converts from RGB with PIL's integer ITU-R 601 weights, as the spec's reference
 * (PIL's convert("L")) does, so a JPEG's grey is not its Y plane. The output size is read from the
 * header in reshape. */

enum { PX_RGB, PX_BGR, PX_GRAY };

typedef struct id_state {
    int format; /* PX_* */
} id_state;

static const struct {
    const char *name;
    int format, channels;
} id_formats[] = {{"RGB", PX_RGB, 3}, {"BGR", PX_BGR, 3}, {"Grayscale", PX_GRAY, 1}};

/* Encoded formats the spec allows that celer does not decode, by their leading bytes. */
static const struct {
    const char *name;
    size_t off, len;
    const char *magic;
} id_refused[] = {
    {"BMP", 0, 2, "BM"},
    {"GIF", 0, 4, "GIF8"},
    {"WebP", 8, 4, "WEBP"},
    {"TIFF", 0, 4, "II*\0"},
    {"TIFF", 0, 4, "MM\0*"},
    {"JPEG 2000", 4, 4, "jP  "},
    {"JPEG 2000 codestream", 0, 4, "\xff\x4f\xff\x51"},
    {"OpenEXR", 0, 4, "\x76\x2f\x31\x01"},
    {"Radiance HDR", 0, 2, "#?"},
    {"PNM", 0, 1, "P"}, /* P1..P7: checked with the digit below */
};

static celer_status id_parse(const celer_op_info *info, void *state) {
    id_state *s = state;
    const char *f = celer_onnx_attr_string(info->node, "pixel_format", "RGB");
    for (size_t i = 0; i < CELER_ARRAY_LEN(id_formats); i++)
        if (!strcmp(f, id_formats[i].name)) {
            s->format = id_formats[i].format;
            return CELER_OK;
        }
    return celer_ops_error(info, CELER_ERR_UNSUPPORTED,
                           "attribute pixel_format '%s' is not supported (RGB, BGR or Grayscale)", f);
}

static celer_status id_init(const celer_op_info *info, void **state) {
    return init_with(info, state, sizeof(id_state), id_parse);
}

static celer_status id_types(const celer_op_info *info, celer_dtype *out) {
    (void)info;
    out[0] = CELER_UINT8;
    return CELER_OK;
}

static int id_channels(int format) { return format == PX_GRAY ? 1 : 3; }

/* The encoded bytes, after checking that they are a JPEG or PNG file; names what was found
 * otherwise. */
static celer_status id_bytes(const celer_kernel_call *c, const uint8_t **p, size_t *n) {
    static const char *const names[] = {"encoded_stream"};
    CELER_TRY(need(c, 1, names));
    const celer_tensor *x = c->in[0];
    char b[200];
    if (x->dtype != CELER_UINT8 || x->shape.rank != 1)
        return celer_ops_error(c->info, CELER_ERR_SHAPE, "input 'encoded_stream' must be 1-D uint8 (the bytes of "
                               "a JPEG or PNG file), got %s of shape %s", celer_dtype_name(x->dtype),
                               shape_s(&x->shape, b, sizeof b));
    *p = x->data;
    *n = (size_t)x->shape.dims[0];
    static const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF}, png[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if ((*n >= sizeof jpeg && !memcmp(*p, jpeg, sizeof jpeg)) || (*n >= sizeof png && !memcmp(*p, png, sizeof png)))
        return CELER_OK;
    for (size_t i = 0; i < CELER_ARRAY_LEN(id_refused); i++) {
        size_t off = id_refused[i].off, len = id_refused[i].len;
        if (*n < off + len || memcmp(*p + off, id_refused[i].magic, len)) continue;
        if (!strcmp(id_refused[i].name, "PNM") && (*n < 2 || (*p)[1] < '1' || (*p)[1] > '7')) continue;
        return celer_ops_error(c->info, CELER_ERR_UNSUPPORTED, "input 'encoded_stream' holds a %s image; celer "
                               "decodes JPEG and PNG only", id_refused[i].name);
    }
    char head[3 * 8 + 1] = "";
    for (size_t i = 0; i < *n && i < 8; i++) snprintf(head + 3 * i, 4, " %02x", (*p)[i]);
    return celer_ops_error(c->info, CELER_ERR_INVALID, "input 'encoded_stream' (%zu bytes, starting%s) is not a "
                           "JPEG or PNG file", *n, *n ? head : " with nothing");
}

static celer_status id_reshape(celer_kernel_call *c) {
    const id_state *s = c->state;
    const uint8_t *p = NULL;
    size_t n = 0;
    CELER_TRY(id_bytes(c, &p, &n));
    celer_image_info im;
    celer_status st = celer_image_probe(p, n, "encoded_stream", &im);
    if (st) {
        char who[160];
        return celer_error_wrap(st, "%s", celer_ops_who(c->info, who, sizeof who));
    }
    c->out[0].shape = (celer_shape){3, {im.height, im.width, id_channels(s->format)}};
    CELER_TRY(celer_ops_check_output(c->info, &c->out[0]));
    /* PNG conversion buffer, then Grayscale's RGB pixels */
    CELER_TRY(celer_ops_add_scratch(c, im.tmp_bytes, 1));
    if (s->format == PX_GRAY) CELER_TRY(celer_ops_add_scratch(c, (size_t)im.height * im.width, 3));
    return CELER_OK;
}

static celer_status id_run(celer_kernel_call *c) {
    const id_state *s = c->state;
    const uint8_t *p = c->in[0]->data;
    size_t n = (size_t)c->in[0]->shape.dims[0];
    size_t px = (size_t)c->out[0].shape.dims[0] * (size_t)c->out[0].shape.dims[1];
    uint8_t *out = c->out[0].data, *rgb = s->format == PX_GRAY ? (uint8_t *)c->scratch : out;
    uint8_t *tmp = s->format == PX_GRAY ? rgb + px * 3 : (uint8_t *)c->scratch;
    /* tmp is only used when the probe asked for it, and then lies within the scratch */
    celer_status st = celer_image_decode_rgb(p, n, "encoded_stream", rgb, tmp);
    if (st) {
        char who[160];
        return celer_error_wrap(st, "%s", celer_ops_who(c->info, who, sizeof who));
    }
    if (s->format == PX_BGR) {
        for (size_t k = 0; k < px; k++) {
            uint8_t r = out[3 * k];
            out[3 * k] = out[3 * k + 2];
            out[3 * k + 2] = r;
        }
    } else if (s->format == PX_GRAY) {
        for (size_t k = 0; k < px; k++) {
            const uint8_t *q = rgb + 3 * k;
            out[k] = (uint8_t)((q[0] * 19595u + q[1] * 38470u + q[2] * 7471u + 0x8000u) >> 16);
        }
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* table                                                                                       */

#define NEAREST_TYPES (CELER_DTS_NUMERIC | CELER_DT(CELER_BOOL))
#define F_TYPES CELER_DTS_FLOATS
#define BF_TYPES (CELER_DTS_FLOATS | CELER_DT(CELER_BFLOAT16))

/* op, since, until, dtypes of input 0, infer_types, init, reshape, run, free_local */
#define K(op, since, until, dts, infer, init, reshape, run, free_local)                            \
    {"", op, since, until, dts, 0, 0, infer, init, reshape, run, free, free_local}

static const celer_kernel kernels[] = {
    K("Upsample", 7, 8, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("Upsample", 9, 9, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("Resize", 10, 10, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("Resize", 11, 12, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("Resize", 13, 17, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    /* 18: axes, keep_aspect_ratio_policy, antialias (refused for linear/cubic); 19: half_pixel_symmetric */
    K("Resize", 18, 18, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("Resize", 19, CELER_OPS_MAX_VERSION, NEAREST_TYPES, rs_types, rs_init, rs_reshape, rs_run, rs_free_local),
    K("GridSample", 16, 19, F_TYPES, NULL, gs_init, gs_reshape, gs_run, NULL),
    /* 20: N-D, modes linear/nearest/cubic; 22: bfloat16 */
    K("GridSample", 20, 21, F_TYPES, NULL, gs_init, gs_reshape, gs_run, NULL),
    K("GridSample", 22, CELER_OPS_MAX_VERSION, BF_TYPES, NULL, gs_init, gs_reshape, gs_run, NULL),
    K("AffineGrid", 20, CELER_OPS_MAX_VERSION, BF_TYPES, NULL, ag_init, ag_reshape, ag_run, NULL),
    K("Col2Im", 18, CELER_OPS_MAX_VERSION, BF_TYPES, NULL, c2_init, c2_reshape, c2_run, NULL),
    K("RoiAlign", 10, 15, F_TYPES, NULL, ra_init, ra_reshape, ra_run, NULL),
    K("RoiAlign", 16, CELER_OPS_MAX_VERSION, F_TYPES, NULL, ra_init, ra_reshape, ra_run, NULL),
    K("ImageDecoder", 20, CELER_OPS_MAX_VERSION, CELER_DT(CELER_UINT8), id_types, id_init, id_reshape, id_run,
      NULL),
    K("NonMaxSuppression", 10, 10, CELER_DT(CELER_FLOAT), nms_types, nms_init, nms_reshape,
      nms_run, free),
    K("NonMaxSuppression", 11, CELER_OPS_MAX_VERSION, CELER_DT(CELER_FLOAT), nms_types, nms_init,
      nms_reshape, nms_run, free),
};

const celer_kernel_family celer_family_image = {"image", kernels, (int)CELER_ARRAY_LEN(kernels)};
