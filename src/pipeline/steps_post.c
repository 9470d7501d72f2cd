/* Postprocessing steps on model outputs: softmax, sigmoid, argmax, top_k (with a labels file),
 * threshold. Each works along the last axis (softmax and argmax take `axis`). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "step.h"

#define MAX_K 10000
#define MAX_LABELS 1000000

typedef struct post_params {
    int64_t axis, k;
    double value;
    const char **labels;
    int n_labels;
} post_params;

static celer_status parse_io(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    CELER_TRY(pl_arg_input(c, args, "input", s));
    return pl_arg_output(c, args, "output", pl_slot_name(c, s->in[0]), s);
}

static post_params *new_params(pl_parse *c) {
    post_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (p) p->axis = -1;
    return p;
}

/* The input split around `axis`: outer x len x inner. */
static celer_status split_axis(const celer_tensor *t, int64_t axis, int64_t *outer, int64_t *len, int64_t *inner,
                               int *ax) {
    int64_t a = axis < 0 ? axis + t->shape.rank : axis;
    if (a < 0 || a >= t->shape.rank)
        return celer_errorf(CELER_ERR_SHAPE, "axis %lld is out of range for an input of rank %d", (long long)axis,
                            t->shape.rank);
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < a; d++) *outer *= t->shape.dims[d];
    for (int d = (int)a + 1; d < t->shape.rank; d++) *inner *= t->shape.dims[d];
    *len = t->shape.dims[a];
    *ax = (int)a;
    return CELER_OK;
}

static celer_status axis_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    post_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    CELER_TRY(pl_arg_int(c, args, "axis", false, -CELER_MAX_RANK, CELER_MAX_RANK - 1, &p->axis));
    s->params = p;
    return parse_io(c, args, s);
}

/* softmax: max-subtracted, in double for the sum. */
static celer_status softmax_run(const pl_step *s, pl_exec *x) {
    const post_params *p = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "softmax input"));
    int64_t outer = 0, len = 0, inner = 0;
    int ax = 0;
    CELER_TRY(split_axis(in, p->axis, &outer, &len, &inner, &ax));
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    float *o = out->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            int64_t base = a * len * inner + b;
            double mx = -INFINITY, sum = 0;
            for (int64_t i = 0; i < len; i++) mx = fmax(mx, celer_ops_double_at(in, base + i * inner));
            for (int64_t i = 0; i < len; i++) sum += exp(celer_ops_double_at(in, base + i * inner) - mx);
            for (int64_t i = 0; i < len; i++) o[base + i * inner] = (float)(exp(celer_ops_double_at(in, base + i * inner) - mx) / sum);
        }
    return CELER_OK;
}

static celer_status sigmoid_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) { return parse_io(c, args, s); }

static celer_status sigmoid_run(const pl_step *s, pl_exec *x) {
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "sigmoid input"));
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    for (int64_t i = 0; i < n; i++) ((float *)out->data)[i] = (float)(1.0 / (1.0 + exp(-celer_ops_double_at(in, i))));
    return CELER_OK;
}

/* argmax: int64 index of the largest along the axis (first on ties; NaN never wins), axis removed. */
static celer_status argmax_run(const pl_step *s, pl_exec *x) {
    const post_params *p = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "argmax input"));
    int64_t outer = 0, len = 0, inner = 0;
    int ax = 0;
    CELER_TRY(split_axis(in, p->axis, &outer, &len, &inner, &ax));
    if (len < 1) return celer_errorf(CELER_ERR_SHAPE, "argmax over an empty axis");
    celer_shape shape = {.rank = in->shape.rank - 1};
    for (int d = 0, k = 0; d < in->shape.rank; d++)
        if (d != ax) shape.dims[k++] = in->shape.dims[d];
    celer_tensor *out = pl_out(x, s, 0, CELER_INT64, &shape);
    if (!out) return CELER_ERR_LIMIT;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            int64_t base = a * len * inner + b, best = 0;
            double bv = -INFINITY;
            bool found = false;
            for (int64_t i = 0; i < len; i++) {
                double v = celer_ops_double_at(in, base + i * inner);
                if (!isnan(v) && (!found || v > bv)) {
                    bv = v;
                    best = i;
                    found = true;
                }
            }
            ((int64_t *)out->data)[a * inner + b] = best;
        }
    return CELER_OK;
}

/* ---- top_k ---- */

static celer_status top_k_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    post_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    CELER_TRY(pl_arg_int(c, args, "k", true, 1, MAX_K, &p->k));
    const char *file = NULL;
    CELER_TRY(pl_arg_path(c, args, "labels", false, &file));
    if (file) {
        CELER_TRY(pl_read_lines(c, pl_arg(c, args, "labels"), file, MAX_LABELS, &p->labels, &p->n_labels));
        if (!p->n_labels) return pl_error(c, pl_arg(c, args, "labels"), "%s has no labels", file);
    }
    s->params = p;
    CELER_TRY(pl_arg_input(c, args, "input", s));
    return pl_arg_outputs(c, args, "output", file ? 3 : 2, s);
}

/* Along the last axis: the k largest, best first (ties: lower index; NaN never chosen while a
 * number remains). Outputs ids int64 [.., k'], scores float32 [.., k'] and, with labels, the
 * label of each id ("" past the labels file); k' = min(k, axis length). */
static celer_status top_k_run(const pl_step *s, pl_exec *x) {
    const post_params *p = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "top_k input"));
    int64_t outer = 0, len = 0, inner = 0;
    int ax = 0;
    CELER_TRY(split_axis(in, -1, &outer, &len, &inner, &ax));
    int64_t k = CELER_MIN(p->k, len);
    celer_shape shape = in->shape;
    shape.dims[shape.rank - 1] = k;
    celer_tensor *ids = pl_out(x, s, 0, CELER_INT64, &shape);
    celer_tensor *scores = ids ? pl_out(x, s, 1, CELER_FLOAT, &shape) : NULL;
    celer_tensor *labels = scores && p->labels ? pl_out(x, s, 2, CELER_STRING, &shape) : NULL;
    bool *taken = scores ? pl_scratch(x, (size_t)len + 1) : NULL;
    if (!taken || (p->labels && !labels)) return CELER_ERR_LIMIT;
    /* selection by repeated scans: k is small next to the class count in practice; O(k * len) */
    for (int64_t a = 0; a < outer; a++) {
        memset(taken, 0, (size_t)len);
        for (int64_t j = 0; j < k; j++) {
            int64_t best = -1;
            double bv = 0;
            for (int64_t i = 0; i < len; i++) {
                if (taken[i]) continue;
                double v = celer_ops_double_at(in, a * len + i);
                if (best < 0 || (isnan(bv) && !isnan(v)) || v > bv) {
                    best = i;
                    bv = v;
                }
            }
            taken[best] = true;
            ((int64_t *)ids->data)[a * k + j] = best;
            ((float *)scores->data)[a * k + j] = (float)bv;
            if (labels) ((celer_str *)labels->data)[a * k + j] = celer_str_c(best < p->n_labels ? p->labels[best] : "");
        }
    }
    return CELER_OK;
}

/* ---- threshold ---- */

static celer_status threshold_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    post_params *p = new_params(c);
    if (!p) return CELER_ERR_NOMEM;
    p->value = 0.5;
    CELER_TRY(pl_arg_double(c, args, "value", false, &p->value));
    s->params = p;
    return parse_io(c, args, s);
}

static celer_status threshold_run(const pl_step *s, pl_exec *x) {
    const post_params *p = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    CELER_TRY(pl_need_numeric(in, "threshold input"));
    celer_tensor *out = pl_out(x, s, 0, CELER_BOOL, &in->shape);
    if (!out) return CELER_ERR_LIMIT;
    int64_t n = celer_shape_numel(&in->shape);
    for (int64_t i = 0; i < n; i++) ((uint8_t *)out->data)[i] = celer_ops_double_at(in, i) > p->value;
    return CELER_OK;
}

/* ---- types ---- */

static void float_types(const pl_step *s, pl_types *c) { pl_type_same_shape(c, s, CELER_FLOAT); }
static void threshold_types(const pl_step *s, pl_types *c) { pl_type_same_shape(c, s, CELER_BOOL); }

/* int64 without the axis. The axis counts the row dim: axis 0 takes the rows away, which no
 * per-row type describes (unknown shape), as does an input of unknown rank. */
static void argmax_types(const pl_step *s, pl_types *c) {
    const post_params *p = s->params;
    const celer_pipeline_type *in = pl_type_in(c, s, 0);
    celer_pipeline_type t = pl_type_unknown();
    t.dtype = CELER_INT64;
    int64_t a = in->rank < 0 ? 0 : p->axis < 0 ? p->axis + in->rank + 1 : p->axis;
    if (a >= 1 && a <= in->rank) {
        t.rank = in->rank - 1;
        for (int d = 0, k = 0; d < in->rank; d++)
            if (d != a - 1) t.dims[k++] = in->dims[d];
    }
    pl_type_set(c, s, 0, &t);
}

/* ids int64, scores float32, labels BYTES: the input's shape with min(k, last dim) last. On one
 * value per row the last axis is the rows': the shape is unknown. */
static void top_k_types(const pl_step *s, pl_types *c) {
    const post_params *p = s->params;
    celer_pipeline_type t = *pl_type_in(c, s, 0);
    if (t.rank < 1) {
        t = pl_type_unknown();
    } else if (t.dims[t.rank - 1] >= 0) {
        t.dims[t.rank - 1] = CELER_MIN(p->k, t.dims[t.rank - 1]);
    }
    static const celer_dtype dtypes[3] = {CELER_INT64, CELER_FLOAT, CELER_STRING};
    for (int o = 0; o < s->n_out && o < 3; o++) {
        t.dtype = dtypes[o];
        pl_type_set(c, s, o, &t);
    }
}

const pl_kind pl_kind_softmax = {"softmax", "input output axis", axis_parse, softmax_run, NULL, NULL, float_types};
const pl_kind pl_kind_sigmoid = {"sigmoid", "input output", sigmoid_parse, sigmoid_run, NULL, NULL, float_types};
const pl_kind pl_kind_argmax = {"argmax", "input output axis", axis_parse, argmax_run, NULL, NULL, argmax_types};
const pl_kind pl_kind_top_k = {"top_k", "input output k labels", top_k_parse, top_k_run, NULL, NULL, top_k_types};
const pl_kind pl_kind_threshold = {"threshold", "input output value", threshold_parse, threshold_run, NULL, NULL,
                                   threshold_types};
