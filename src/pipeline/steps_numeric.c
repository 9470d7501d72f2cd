/* Numeric and feature steps: normalize, scale, clip, log1p, fill_missing, cast, bucketize
 * (boundaries given or quantiles of a sample), lookup (vocabulary), one_hot, concat.
 *
 * Elementwise steps read any numeric dtype and write float32, the type models take; bucketize,
 * lookup and argmax-like steps write int64 indices. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "step.h"

#define MAX_PARAMS 65536   /* per-feature means, boundaries */
#define MAX_VOCAB 1000000
#define MAX_DEPTH 1000000  /* one_hot */

/* ---- elementwise float maps ---- */

typedef struct map_params {
    double a, b;        /* normalize: unused; scale: factor, offset; clip: min, max; fill: value */
    double *mean, *std; /* normalize, per index along axis (n_param of them, or 1) */
    int n_param;
    int64_t axis;
} map_params;

static celer_status parse_io(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    CELER_TRY(pl_arg_input(c, args, "input", s));
    return pl_arg_output(c, args, "output", pl_slot_name(c, s->in[0]), s);
}

static map_params *new_params(pl_parse *c) { return celer_arena_alloc(pl_arena(c), sizeof(map_params)); }

/* Applies f to every element of input 0 into a float32 output of the same shape. */
static celer_status map_float(const pl_step *s, pl_exec *x, float (*f)(const map_params *, double, int64_t),
                              const char *what) {
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, what));
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    const map_params *p = s->params;
    int64_t n = celer_shape_numel(&in->shape);
    float *o = out->data;
    if (in->dtype == CELER_FLOAT) {
        const float *v = in->data;
        for (int64_t i = 0; i < n; i++) o[i] = f(p, v[i], i);
    } else {
        for (int64_t i = 0; i < n; i++) o[i] = f(p, celer_ops_double_at(in, i), i);
    }
    return CELER_OK;
}

/* normalize: (x - mean[j]) / std[j], j the index along `axis` */
static celer_status normalize_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    map_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    int nm = 0, ns = 0;
    CELER_TRY(pl_arg_doubles(c, args, "mean", true, MAX_PARAMS, &p->mean, &nm));
    CELER_TRY(pl_arg_doubles(c, args, "std", true, MAX_PARAMS, &p->std, &ns));
    if (nm != ns && nm != 1 && ns != 1)
        return pl_error(c, args, "'mean' has %d values and 'std' %d: give as many (or one for all)", nm, ns);
    p->n_param = CELER_MAX(nm, ns);
    if (nm != ns) { /* broadcast the single one */
        double *m = celer_arena_alloc(pl_arena(c), sizeof *m * (size_t)p->n_param * 2);
        if (!m) return CELER_ERR_NOMEM;
        for (int i = 0; i < p->n_param; i++) {
            m[i] = p->mean[nm == 1 ? 0 : i];
            m[p->n_param + i] = p->std[ns == 1 ? 0 : i];
        }
        p->mean = m;
        p->std = m + p->n_param;
    }
    for (int i = 0; i < p->n_param; i++)
        if (!(p->std[i] != 0) || !isfinite(p->std[i]))
            return pl_error(c, pl_arg(c, args, "std"), "'std' must be finite and non-zero (element %d is %g)", i, p->std[i]);
    p->axis = -1;
    CELER_TRY(pl_arg_int(c, args, "axis", false, -CELER_MAX_RANK, CELER_MAX_RANK - 1, &p->axis));
    s->params = p;
    return parse_io(c, args, s);
}

static celer_status normalize_run(const pl_step *s, pl_exec *x) {
    const map_params *p = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "normalize input"));
    int64_t axis = p->axis < 0 ? p->axis + in->shape.rank : p->axis;
    if (axis < 0 || axis >= in->shape.rank)
        return celer_errorf(CELER_ERR_SHAPE, "axis %lld is out of range for an input of rank %d", (long long)p->axis,
                            in->shape.rank);
    int64_t len = in->shape.dims[axis], inner = 1;
    for (int d = (int)axis + 1; d < in->shape.rank; d++) inner *= in->shape.dims[d];
    if (p->n_param != 1 && len != p->n_param)
        return celer_errorf(CELER_ERR_SHAPE, "input has %lld values along axis %lld but mean/std give %d",
                            (long long)len, (long long)axis, p->n_param);
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    float *o = out->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = p->n_param == 1 ? 0 : (i / inner) % len;
        o[i] = (float)((celer_ops_double_at(in, i) - p->mean[j]) / p->std[j]);
    }
    return CELER_OK;
}

static float scale_f(const map_params *p, double v, int64_t i) {
    (void)i;
    return (float)(v * p->a + p->b);
}
static celer_status scale_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    map_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    p->a = 1;
    CELER_TRY(pl_arg_double(c, args, "factor", false, &p->a));
    CELER_TRY(pl_arg_double(c, args, "offset", false, &p->b));
    s->params = p;
    return parse_io(c, args, s);
}
static celer_status scale_run(const pl_step *s, pl_exec *x) { return map_float(s, x, scale_f, "scale input"); }

static float clip_f(const map_params *p, double v, int64_t i) {
    (void)i;
    if (v < p->a) v = p->a;
    if (v > p->b) v = p->b;
    return (float)v;
}
static celer_status clip_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    map_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    p->a = -INFINITY;
    p->b = INFINITY;
    if (!pl_arg(c, args, "min") && !pl_arg(c, args, "max")) return pl_error(c, args, "give 'min', 'max' or both");
    CELER_TRY(pl_arg_double(c, args, "min", false, &p->a));
    CELER_TRY(pl_arg_double(c, args, "max", false, &p->b));
    if (p->a > p->b) return pl_error(c, args, "'min' %g is above 'max' %g", p->a, p->b);
    s->params = p;
    return parse_io(c, args, s);
}
static celer_status clip_run(const pl_step *s, pl_exec *x) { return map_float(s, x, clip_f, "clip input"); }

static float log1p_f(const map_params *p, double v, int64_t i) {
    (void)p, (void)i;
    return (float)log1p(v);
}
static celer_status log1p_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) { return parse_io(c, args, s); }
static celer_status log1p_run(const pl_step *s, pl_exec *x) { return map_float(s, x, log1p_f, "log1p input"); }

static float fill_f(const map_params *p, double v, int64_t i) {
    (void)i;
    return isnan(v) ? (float)p->a : (float)v;
}
static celer_status fill_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    map_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    CELER_TRY(pl_arg_double(c, args, "value", true, &p->a));
    s->params = p;
    return parse_io(c, args, s);
}
static celer_status fill_run(const pl_step *s, pl_exec *x) { return map_float(s, x, fill_f, "fill_missing input"); }

/* Types: float32 of the input's shape. normalize with one mean/std per index runs only with that
 * many along its axis, so a variable dim there is that many in every answer. */
static void float_types(const pl_step *s, pl_types *c) { pl_type_same_shape(c, s, CELER_FLOAT); }

static void normalize_types(const pl_step *s, pl_types *c) {
    const map_params *p = s->params;
    celer_pipeline_type t = *pl_type_in(c, s, 0);
    t.dtype = CELER_FLOAT;
    if (p->n_param > 1 && t.rank >= 0) {
        int64_t a = p->axis < 0 ? p->axis + t.rank + 1 : p->axis; /* counts the row dim */
        if (a >= 1 && a <= t.rank && t.dims[a - 1] < 0) t.dims[a - 1] = p->n_param;
    }
    pl_type_set(c, s, 0, &t);
}

const pl_kind pl_kind_normalize = {"normalize", "input output mean std axis", normalize_parse, normalize_run, NULL, NULL,
                                   normalize_types};
const pl_kind pl_kind_scale = {"scale", "input output factor offset", scale_parse, scale_run, NULL, NULL, float_types};
const pl_kind pl_kind_clip = {"clip", "input output min max", clip_parse, clip_run, NULL, NULL, float_types};
const pl_kind pl_kind_log1p = {"log1p", "input output", log1p_parse, log1p_run, NULL, NULL, float_types};
const pl_kind pl_kind_fill_missing = {"fill_missing", "input output value", fill_parse, fill_run, NULL, NULL, float_types};

/* ---- cast ---- */


static celer_status cast_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    celer_dtype *t = celer_arena_alloc(pl_arena(c), sizeof *t);
    if (!t) return CELER_ERR_NOMEM;
    CELER_TRY(pl_arg_dtype(c, args, "dtype", true, t));
    if (*t == CELER_STRING) return pl_error(c, pl_arg(c, args, "dtype"), "cast to BYTES is not supported");
    if (*t == CELER_FLOAT16) return pl_error(c, pl_arg(c, args, "dtype"), "cast to FP16 is not supported");
    s->params = t;
    return parse_io(c, args, s);
}

/* Numbers to numbers (integers truncate toward zero, out-of-range integers are an error), and
 * text holding numbers to numbers. */
static celer_status cast_run(const pl_step *s, pl_exec *x) {
    const celer_dtype to = *(const celer_dtype *)s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    if (in->dtype != CELER_STRING) CELER_TRY(pl_need_numeric(in, "cast input"));
    celer_tensor *out = pl_out(x, s, 0, to, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    bool is_int = to != CELER_FLOAT && to != CELER_DOUBLE && to != CELER_BOOL;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (in->dtype == CELER_STRING) {
            /* strtod reads a C string: a bounded copy, so a NUL inside cannot end the number early */
            celer_str str = ((const celer_str *)in->data)[i];
            char text[128], *end = text;
            bool fits = str.len < sizeof text && (!str.len || !memchr(str.data, 0, str.len));
            if (fits) {
                if (str.len) memcpy(text, str.data, str.len);
                text[str.len] = 0;
                v = strtod(text, &end);
            }
            if (!fits || !str.len || *end)
                return celer_errorf(CELER_ERR_INVALID, "element %lld ('%.*s') is not a number", (long long)i,
                                    (int)CELER_MIN(str.len, 40), str.data ? str.data : "");
        } else {
            v = celer_ops_double_at(in, i);
        }
        if (is_int) {
            v = trunc(v); /* toward zero, then the range of the type */
            double lo = to == CELER_INT64 ? -9.2233720368547758e18 : to == CELER_INT32 ? -2147483648.0
                      : to == CELER_INT16 ? -32768.0 : to == CELER_INT8 ? -128.0 : 0;
            double hi = to == CELER_INT64 ? 9.2233720368547758e18 : to == CELER_INT32 ? 2147483647.0
                      : to == CELER_INT16 ? 32767.0 : to == CELER_INT8 ? 127.0 : 255.0;
            if (!(v >= lo && v < hi + 1))
                return celer_errorf(CELER_ERR_INVALID, "element %lld (%g) does not fit %s", (long long)i, v,
                                    celer_dtype_name(to));
        }
        celer_ops_double_store(out, i, v);
    }
    return CELER_OK;
}

static void cast_types(const pl_step *s, pl_types *c) { pl_type_same_shape(c, s, *(const celer_dtype *)s->params); }

const pl_kind pl_kind_cast = {"cast", "input output dtype", cast_parse, cast_run, NULL, NULL, cast_types};

/* ---- bucketize / quantile binning ---- */

typedef struct bucket_params {
    double *bounds;
    int n;
} bucket_params;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Boundaries at the bins-1 inner quantiles of the sample (linear interpolation between the
 * closest ranks, NumPy's default), NaNs dropped. */
static celer_status quantiles(pl_parse *c, const yaml_node_t *args, const char *path, int64_t bins, bucket_params *p) {
    celer_arena tmp;
    celer_arena_init(&tmp, 1 << 20, 0);
    celer_tensor t;
    celer_status st = celer_npy_read(path, &tmp, &t);
    if (st) {
        st = pl_error(c, pl_arg(c, args, "sample"), "%s", celer_error_message());
        celer_arena_free(&tmp);
        return st;
    }
    int64_t n = celer_shape_numel(&t.shape);
    double *v = n > 0 && pl_is_numeric(t.dtype) ? malloc(sizeof *v * (size_t)n) : NULL;
    int64_t m = 0;
    for (int64_t i = 0; v && i < n; i++) {
        double d = celer_ops_double_at(&t, i);
        if (!isnan(d)) v[m++] = d;
    }
    celer_arena_free(&tmp);
    if (!v || m == 0) {
        free(v);
        return pl_error(c, pl_arg(c, args, "sample"), "sample %s must be a numeric .npy with at least one value that is not NaN",
                        path);
    }
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    p->n = (int)bins - 1;
    p->bounds = celer_arena_alloc(pl_arena(c), sizeof *p->bounds * (size_t)(p->n ? p->n : 1));
    if (!p->bounds) {
        free(v);
        return CELER_ERR_NOMEM;
    }
    for (int i = 0; i < p->n; i++) {
        double pos = (double)(i + 1) / (double)bins * (double)(m - 1);
        int64_t lo = (int64_t)floor(pos);
        double frac = pos - (double)lo;
        p->bounds[i] = lo + 1 < m ? v[lo] + (v[lo + 1] - v[lo]) * frac : v[lo];
    }
    free(v);
    return CELER_OK;
}

static celer_status bucketize_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    bucket_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    const yaml_node_t *b = pl_arg(c, args, "boundaries");
    const char *sample = NULL;
    CELER_TRY(pl_arg_path(c, args, "sample", false, &sample));
    if (!b == !sample) return pl_error(c, args, "give exactly one of 'boundaries' or 'sample' (with 'bins')");
    if (b) {
        if (pl_arg(c, args, "bins")) return pl_error(c, args, "'bins' goes with 'sample', not 'boundaries'");
        CELER_TRY(pl_arg_doubles(c, args, "boundaries", true, MAX_PARAMS, &p->bounds, &p->n));
        for (int i = 0; i < p->n; i++) {
            if (isnan(p->bounds[i])) return pl_error(c, b, "boundary %d is NaN", i);
            if (i && p->bounds[i] < p->bounds[i - 1])
                return pl_error(c, b, "boundaries must be ascending (%g after %g)", p->bounds[i], p->bounds[i - 1]);
        }
    } else {
        int64_t bins = 0;
        CELER_TRY(pl_arg_int(c, args, "bins", true, 2, MAX_PARAMS, &bins));
        CELER_TRY(quantiles(c, args, sample, bins, p));
    }
    s->params = p;
    return parse_io(c, args, s);
}

/* Bucket of v: the count of boundaries <= v (NumPy's searchsorted side='right'); NaN goes last. */
static int64_t bucket_of(const bucket_params *p, double v) {
    if (isnan(v)) return p->n;
    int lo = 0, hi = p->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (p->bounds[mid] <= v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static celer_status bucketize_run(const pl_step *s, pl_exec *x) {
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "bucketize input"));
    celer_tensor *out = pl_out(x, s, 0, CELER_INT64, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    for (int64_t i = 0; i < n; i++) ((int64_t *)out->data)[i] = bucket_of(s->params, celer_ops_double_at(in, i));
    return CELER_OK;
}

/* bucketize and lookup: int64 indices, the input's shape */
static void index_types(const pl_step *s, pl_types *c) { pl_type_same_shape(c, s, CELER_INT64); }

const pl_kind pl_kind_bucketize = {"bucketize", "input output boundaries sample bins", bucketize_parse, bucketize_run,
                                   NULL, NULL, index_types};

/* ---- lookup: value -> index in a vocabulary ---- */

typedef struct vocab_entry {
    celer_str key; /* compared as bytes: "fr\0x" is not "fr" */
    int64_t index;
} vocab_entry;

typedef struct lookup_params {
    vocab_entry *sorted; /* by key */
    int64_t n, dflt;
} lookup_params;

static int cmp_entry(const void *a, const void *b) {
    return celer_str_cmp(((const vocab_entry *)a)->key, ((const vocab_entry *)b)->key);
}

static celer_status lookup_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    lookup_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    const char **words = NULL, *file = NULL;
    int n = 0;
    CELER_TRY(pl_arg_path(c, args, "file", false, &file));
    const yaml_node_t *v = pl_arg(c, args, "vocabulary");
    if (!v == !file) return pl_error(c, args, "give exactly one of 'vocabulary' (a list) or 'file'");
    if (v) CELER_TRY(pl_arg_strings(c, args, "vocabulary", true, MAX_VOCAB, &words, &n));
    else CELER_TRY(pl_read_lines(c, pl_arg(c, args, "file"), file, MAX_VOCAB, &words, &n));
    if (n == 0) return pl_error(c, v ? v : args, "the vocabulary is empty");
    p->dflt = -1;
    CELER_TRY(pl_arg_int(c, args, "default", false, INT32_MIN, INT32_MAX, &p->dflt));
    p->sorted = celer_arena_alloc(pl_arena(c), sizeof *p->sorted * (size_t)n);
    if (!p->sorted) return CELER_ERR_NOMEM;
    for (int i = 0; i < n; i++) p->sorted[i] = (vocab_entry){celer_str_c(words[i]), i};
    qsort(p->sorted, (size_t)n, sizeof *p->sorted, cmp_entry);
    for (int i = 1; i < n; i++)
        if (celer_str_eq(p->sorted[i].key, p->sorted[i - 1].key))
            return pl_error(c, v ? v : args, "'%s' is in the vocabulary twice", p->sorted[i].key.data);
    p->n = n;
    s->params = p;
    return parse_io(c, args, s);
}

static int64_t lookup_one(const lookup_params *p, celer_str key) {
    vocab_entry k = {key, 0};
    const vocab_entry *e = bsearch(&k, p->sorted, (size_t)p->n, sizeof k, cmp_entry);
    return e ? e->index : p->dflt;
}

/* Text looks up as is; integers through their decimal text, so a vocabulary of ids works too. */
static celer_status lookup_run(const pl_step *s, pl_exec *x) {
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    if (in->dtype != CELER_STRING && (in->dtype == CELER_FLOAT || in->dtype == CELER_DOUBLE || !pl_is_numeric(in->dtype)))
        return celer_errorf(CELER_ERR_DTYPE, "lookup input must be text or integers, got %s", celer_dtype_name(in->dtype));
    celer_tensor *out = pl_out(x, s, 0, CELER_INT64, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    char buf[32];
    for (int64_t i = 0; i < n; i++) {
        celer_str key;
        if (in->dtype == CELER_STRING) {
            key = ((const celer_str *)in->data)[i];
        } else {
            snprintf(buf, sizeof buf, "%lld", (long long)pl_get_i64(in, i));
            key = celer_str_c(buf);
        }
        ((int64_t *)out->data)[i] = lookup_one(s->params, key);
    }
    return CELER_OK;
}

const pl_kind pl_kind_lookup = {"lookup", "input output vocabulary file default", lookup_parse, lookup_run, NULL, NULL,
                                index_types};

/* ---- one_hot ---- */

static celer_status one_hot_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    int64_t *depth = celer_arena_alloc(pl_arena(c), sizeof *depth);
    if (!depth) return CELER_ERR_NOMEM;
    CELER_TRY(pl_arg_int(c, args, "depth", true, 1, MAX_DEPTH, depth));
    s->params = depth;
    return parse_io(c, args, s);
}

/* [..] integers -> [.., depth] float32; an index outside [0, depth) gives a row of zeros (an
 * unknown category: lookup's default -1 lands here). */
static celer_status one_hot_run(const pl_step *s, pl_exec *x) {
    int64_t depth = *(const int64_t *)s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "one_hot input"));
    if (in->shape.rank >= CELER_MAX_RANK) return celer_errorf(CELER_ERR_SHAPE, "one_hot input has rank %d", in->shape.rank);
    celer_shape shape = in->shape;
    shape.dims[shape.rank++] = depth;
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    float *o = out->data;
    memset(o, 0, sizeof *o * (size_t)(n * depth));
    for (int64_t i = 0; i < n; i++) {
        double v = celer_ops_double_at(in, i);
        if (v != floor(v))
            return celer_errorf(CELER_ERR_INVALID, "one_hot element %lld is %g, not an integer", (long long)i, v);
        if (v >= 0 && v < (double)depth) o[i * depth + (int64_t)v] = 1;
    }
    return CELER_OK;
}

/* float32 [.., depth]; run refuses an input of the largest rank */
static void one_hot_types(const pl_step *s, pl_types *c) {
    celer_pipeline_type t = *pl_type_in(c, s, 0);
    t.dtype = CELER_FLOAT;
    if (t.rank + 1 >= CELER_MAX_RANK) t = pl_type_unknown();
    else if (t.rank >= 0) t.dims[t.rank++] = *(const int64_t *)s->params;
    pl_type_set(c, s, 0, &t);
}

const pl_kind pl_kind_one_hot = {"one_hot", "input output depth", one_hot_parse, one_hot_run, NULL, NULL, one_hot_types};

/* ---- concat: features side by side ---- */

static celer_status concat_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    CELER_TRY(pl_arg_inputs(c, args, "inputs", PL_MAX_IO, s));
    return pl_arg_output(c, args, "output", NULL, s);
}

/* Each input [N, ...] is taken as [N, k] (its other dims flattened; [N] is [N, 1]); the output is
 * float32 [N, sum of k]. */
static celer_status concat_run(const pl_step *s, pl_exec *x) {
    int64_t rows = -1, width = 0, k[PL_MAX_IO];
    for (int i = 0; i < s->n_in; i++) {
        const celer_tensor *t = &pl_in(x, s, i)->t;
        CELER_TRY(pl_need_numeric(t, "concat input"));
        if (t->shape.rank < 1) return celer_errorf(CELER_ERR_SHAPE, "concat input %d is a scalar; inputs have rows", i + 1);
        if (rows < 0) rows = t->shape.dims[0];
        else if (t->shape.dims[0] != rows)
            return celer_errorf(CELER_ERR_SHAPE, "concat input %d has %lld rows, input 1 has %lld", i + 1,
                                (long long)t->shape.dims[0], (long long)rows);
        k[i] = 1;
        for (int d = 1; d < t->shape.rank; d++) k[i] *= t->shape.dims[d];
        width += k[i];
    }
    celer_shape shape = {.rank = 2, .dims = {rows, width}};
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &shape);
    if (!out) return CELER_ERR_LIMIT;
    float *o = out->data;
    int64_t col = 0;
    for (int i = 0; i < s->n_in; i++) {
        const celer_tensor *t = &pl_in(x, s, i)->t;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < k[i]; j++) o[r * width + col + j] = (float)celer_ops_double_at(t, r * k[i] + j);
        col += k[i];
    }
    return CELER_OK;
}

/* float32 [sum of k], k an input's per-row element count; -1 when any of them varies */
static void concat_types(const pl_step *s, pl_types *c) {
    celer_pipeline_type t = {.dtype = CELER_FLOAT, .rank = 1};
    for (int i = 0; i < s->n_in; i++) {
        const celer_pipeline_type *in = pl_type_in(c, s, i);
        int64_t k = in->rank < 0 ? -1 : 1;
        for (int d = 0; d < in->rank && k >= 0; d++)
            if (in->dims[d] < 0 || __builtin_mul_overflow(k, in->dims[d], &k)) k = -1;
        if (k < 0 || t.dims[0] < 0 || __builtin_add_overflow(t.dims[0], k, &t.dims[0])) t.dims[0] = -1;
    }
    pl_type_set(c, s, 0, &t);
}

const pl_kind pl_kind_concat = {"concat", "inputs output", concat_parse, concat_run, NULL, NULL, concat_types};
