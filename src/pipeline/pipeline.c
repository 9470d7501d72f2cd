/* Pipelines: loading pipeline.yaml into a program of steps, and running it per request.
 *
 * Load: libyaml reads the file into a document (node lines kept for messages); the steps are
 * compiled into a flat program. A `route` becomes a branch instruction followed by each case's
 * steps, every case ending in a jump past the route; a `model` step becomes a call instruction
 * that suspends the run. Tensor names become slots; the data flow is checked at load: a step may
 * only read a name that the inputs or earlier steps define on every path leading to it (after a
 * route, what every branch defines).
 *
 * Run: a program counter over the instructions. celer_pipeline_run_steps executes until the end
 * or a call; the caller performs the call and resumes. Every tensor lives in the request's arena,
 * except decoded images (pl_out_image): those are malloc'd against a process-wide budget and freed
 * as soon as no step still to run reads them, so a full-size decode followed by a resize is not
 * held while the request waits for its model. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "step.h"

#define MAX_SLOTS 4096      /* distinct tensor names */
#define MAX_ROUTE_DEPTH 16  /* routes inside routes */
#define MAX_CASES 256

/* ---- the step table: every kind a pipeline.yaml may name (route and model are built in) ---- */
static const pl_kind *const kinds[] = {
    &pl_kind_normalize, &pl_kind_scale,     &pl_kind_clip,         &pl_kind_log1p,  &pl_kind_fill_missing,
    &pl_kind_cast,      &pl_kind_bucketize, &pl_kind_lookup,       &pl_kind_one_hot, &pl_kind_concat,
    &pl_kind_decode_image, &pl_kind_resize, &pl_kind_center_crop, &pl_kind_to_chw,
    &pl_kind_softmax,   &pl_kind_sigmoid,   &pl_kind_argmax,       &pl_kind_top_k,  &pl_kind_threshold,
    &pl_kind_recommend,
};

typedef enum op_code { OP_STEP, OP_MODEL, OP_ROUTE, OP_JUMP } op_code;

typedef struct route_params {
    int field;             /* slot, or -1 when routing by a request parameter */
    const char *parameter;
    int n_cases;
    const char **values;
    int *targets;          /* instruction index of each case's first step */
    int default_target;    /* -1: no default (an unmatched value is an error) */
} route_params;

typedef struct model_params {
    const char *name, *version;
    const char **in_names;  /* model input names, for s->in */
    const char **out_names; /* model output names, for s->out */
} model_params;

typedef struct instr {
    op_code op;
    int jump;    /* OP_JUMP: next instruction */
    pl_step step;
} instr;

struct celer_pipeline {
    celer_arena arena;
    const char *path, *description;
    int n_inputs, n_outputs;
    celer_pipeline_io *inputs;
    int *input_slots;
    const char **output_names;
    int *output_slots;
    int n_instrs, cap_instrs;
    instr *instrs;
    int n_steps;              /* instructions other than jumps */
    const char **step_names;  /* [n_steps] */
    int n_models;
    const char **models;
    int n_slots;
    const char **slot_names;
    double cache_ttl_s; /* 0: results are not cached */
};

struct pl_parse {
    celer_pipeline *p;
    const char *dir;
    yaml_document_t *doc;
    const char *label; /* current step's, for messages */
    bool *defined;     /* [MAX_SLOTS] on the current path */
    int depth;
};

/* ---- errors and yaml access ---- */

celer_arena *pl_arena(pl_parse *c) { return &c->p->arena; }

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

celer_status pl_error(pl_parse *c, const yaml_node_t *node, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->label) return celer_errorf(CELER_ERR_INVALID, "%s:%d: %s: %s", c->p->path, line_of(node), c->label, msg);
    return celer_errorf(CELER_ERR_INVALID, "%s:%d: %s", c->p->path, line_of(node), msg);
}

static yaml_node_t *node_at(pl_parse *c, int id) { return yaml_document_get_node(c->doc, id); }

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Mapping lookup; also accepts a bare scalar as the value of "input" (`- log1p: income`). */
const yaml_node_t *pl_arg(pl_parse *c, const yaml_node_t *args, const char *key) {
    if (!args) return NULL;
    if (args->type == YAML_SCALAR_NODE) return strcmp(key, "input") ? NULL : args;
    if (args->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *kv = args->data.mapping.pairs.start; kv < args->data.mapping.pairs.top; kv++) {
        const char *k = scalar(node_at(c, kv->key));
        if (k && !strcmp(k, key)) return node_at(c, kv->value);
    }
    return NULL;
}

static celer_status missing(pl_parse *c, const yaml_node_t *args, const char *key) {
    return pl_error(c, args, "missing argument '%s'", key);
}

static bool parse_double(const char *s, double *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE) {
        if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, "nan")) v = __builtin_nan("");
        else if (!strcmp(s, ".inf") || !strcmp(s, "inf")) v = __builtin_inf();
        else if (!strcmp(s, "-.inf") || !strcmp(s, "-inf")) v = -__builtin_inf();
        else return false;
    }
    *out = v;
    return true;
}

celer_status pl_arg_double(pl_parse *c, const yaml_node_t *args, const char *key, bool required, double *out) {
    const yaml_node_t *n = pl_arg(c, args, key);
    if (!n) return required ? missing(c, args, key) : CELER_OK;
    if (!parse_double(scalar(n), out)) return pl_error(c, n, "'%s' must be a number", key);
    return CELER_OK;
}

celer_status pl_arg_int(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int64_t min,
                        int64_t max, int64_t *out) {
    const yaml_node_t *n = pl_arg(c, args, key);
    if (!n) return required ? missing(c, args, key) : CELER_OK;
    const char *s = scalar(n);
    char *end;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno == ERANGE || v < min || v > max)
        return pl_error(c, n, "'%s' must be an integer from %lld to %lld", key, (long long)min, (long long)max);
    *out = v;
    return CELER_OK;
}

celer_status pl_arg_string(pl_parse *c, const yaml_node_t *args, const char *key, bool required, const char **out) {
    const yaml_node_t *n = pl_arg(c, args, key);
    if (!n) return required ? missing(c, args, key) : CELER_OK;
    if (!scalar(n)) return pl_error(c, n, "'%s' must be a single value", key);
    *out = scalar(n);
    return CELER_OK;
}

celer_status pl_arg_doubles(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int max,
                            double **out, int *n) {
    const yaml_node_t *v = pl_arg(c, args, key);
    if (!v) return required ? missing(c, args, key) : CELER_OK;
    int count = v->type == YAML_SEQUENCE_NODE ? (int)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
    if (v->type == YAML_MAPPING_NODE || count > max || count < 1)
        return pl_error(c, v, "'%s' must be a number or a list of 1 to %d numbers", key, max);
    double *d = celer_arena_alloc(pl_arena(c), sizeof *d * (size_t)count);
    if (!d) return CELER_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        const yaml_node_t *e = v->type == YAML_SEQUENCE_NODE ? node_at(c, v->data.sequence.items.start[i]) : v;
        if (!parse_double(scalar(e), &d[i])) return pl_error(c, e, "'%s': element %d is not a number", key, i);
    }
    *out = d;
    *n = count;
    return CELER_OK;
}

celer_status pl_arg_strings(pl_parse *c, const yaml_node_t *args, const char *key, bool required, int max,
                            const char ***out, int *n) {
    const yaml_node_t *v = pl_arg(c, args, key);
    if (!v) return required ? missing(c, args, key) : CELER_OK;
    if (v->type != YAML_SEQUENCE_NODE) return pl_error(c, v, "'%s' must be a list", key);
    int count = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (count > max) return pl_error(c, v, "'%s' has %d entries, at most %d", key, count, max);
    const char **s = celer_arena_alloc(pl_arena(c), sizeof *s * (size_t)(count + 1));
    if (!s) return CELER_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        const yaml_node_t *e = node_at(c, v->data.sequence.items.start[i]);
        if (!scalar(e)) return pl_error(c, e, "'%s': element %d must be a single value", key, i);
        s[i] = scalar(e);
    }
    *out = s;
    *n = count;
    return CELER_OK;
}

celer_status pl_arg_path(pl_parse *c, const yaml_node_t *args, const char *key, bool required, const char **out) {
    const char *name = NULL;
    CELER_TRY(pl_arg_string(c, args, key, required, &name));
    if (!name) return CELER_OK;
    /* confined to the pipeline's folder: neither an absolute name, `..` nor a symlink reads
     * outside it (a served pipeline's folder is its model folder in the repository) */
    char path[PATH_MAX];
    if (celer_path_inside(c->dir, name, path, sizeof path))
        return pl_error(c, pl_arg(c, args, key), "'%s': %s", key, celer_error_message());
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return pl_error(c, pl_arg(c, args, key), "'%s': '%s' is not a regular file", key, name);
    if (!(*out = celer_arena_strndup(pl_arena(c), path, strlen(path)))) return CELER_ERR_NOMEM;
    return CELER_OK;
}

/* The types steps produce and requests carry. */
static bool step_dtype(celer_dtype t) {
    switch (t) {
    case CELER_FLOAT: case CELER_DOUBLE: case CELER_INT64: case CELER_INT32: case CELER_INT16: case CELER_INT8:
    case CELER_UINT8: case CELER_BOOL: case CELER_STRING: return true;
    default: return false;
    }
}

celer_status pl_arg_dtype(pl_parse *c, const yaml_node_t *args, const char *key, bool required, celer_dtype *out) {
    const char *s = NULL;
    CELER_TRY(pl_arg_string(c, args, key, required, &s));
    if (!s) return CELER_OK;
    celer_dtype t = celer_dtype_from_kserve_name(s);
    if (t == CELER_UNDEFINED) t = celer_dtype_from_name(s);
    if (!step_dtype(t))
        return pl_error(c, pl_arg(c, args, key),
                        "'%s': unknown type '%s' (FP32, FP64, INT64, INT32, INT16, INT8, UINT8, BOOL, BYTES)", key, s);
    *out = t;
    return CELER_OK;
}

celer_status pl_read_lines(pl_parse *c, const yaml_node_t *at, const char *path, int max, const char ***out, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return pl_error(c, at, "cannot open %s", path);
    int cap = 256, count = 0;
    const char **list = celer_arena_alloc(pl_arena(c), sizeof *list * (size_t)cap);
    char line[4096];
    celer_status st = list ? CELER_OK : CELER_ERR_NOMEM;
    while (!st && fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            st = pl_error(c, at, "%s: line %d is longer than %zu bytes", path, count + 1, sizeof line - 2);
            break;
        }
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (count == max) {
            st = pl_error(c, at, "%s: more than %d lines", path, max);
            break;
        }
        if (count == cap) {
            const char **grown = celer_arena_alloc(pl_arena(c), sizeof *grown * (size_t)cap * 2);
            if (!grown) {
                st = CELER_ERR_NOMEM;
                break;
            }
            memcpy(grown, list, sizeof *list * (size_t)cap);
            list = grown;
            cap *= 2;
        }
        list[count] = celer_arena_strndup(pl_arena(c), line, l);
        if (!list[count++]) st = CELER_ERR_NOMEM;
    }
    fclose(f);
    if (st) return st;
    *out = list;
    *n = count;
    return CELER_OK;
}

/* ---- tensor names ---- */

static int find_slot(const celer_pipeline *p, const char *name) {
    for (int i = 0; i < p->n_slots; i++)
        if (!strcmp(p->slot_names[i], name)) return i;
    return -1;
}

static celer_status slot_for(pl_parse *c, const yaml_node_t *at, const char *name, int *out) {
    celer_pipeline *p = c->p;
    int s = find_slot(p, name);
    if (s < 0) {
        if (p->n_slots == MAX_SLOTS) return pl_error(c, at, "more than %d tensor names", MAX_SLOTS);
        s = p->n_slots++;
        p->slot_names[s] = name;
    }
    *out = s;
    return CELER_OK;
}

const char *pl_slot_name(pl_parse *c, int slot) { return c->p->slot_names[slot]; }

static celer_status use_name(pl_parse *c, const yaml_node_t *at, const char *name, int *slot) {
    int s = find_slot(c->p, name);
    if (s < 0 || !c->defined[s]) {
        if (s >= 0)
            return pl_error(c, at, "tensor '%s' is not set on every path to this step (set in a route branch only?)", name);
        return pl_error(c, at, "unknown tensor '%s': not a pipeline input nor the output of an earlier step", name);
    }
    *slot = s;
    return CELER_OK;
}

celer_status pl_arg_input(pl_parse *c, const yaml_node_t *args, const char *key, pl_step *s) {
    if (!key) key = "input";
    const yaml_node_t *n = pl_arg(c, args, key);
    if (!n) return missing(c, args, key);
    if (!scalar(n)) return pl_error(c, n, "'%s' must be a tensor name", key);
    if (s->n_in == PL_MAX_IO) return pl_error(c, n, "more than %d inputs", PL_MAX_IO);
    return use_name(c, n, scalar(n), &s->in[s->n_in++]);
}

celer_status pl_arg_inputs(pl_parse *c, const yaml_node_t *args, const char *key, int max, pl_step *s) {
    const char **names = NULL;
    int n = 0;
    CELER_TRY(pl_arg_strings(c, args, key, true, CELER_MIN(max, PL_MAX_IO - s->n_in), &names, &n));
    if (n == 0) return pl_error(c, pl_arg(c, args, key), "'%s' is empty", key);
    for (int i = 0; i < n; i++) CELER_TRY(use_name(c, pl_arg(c, args, key), names[i], &s->in[s->n_in++]));
    return CELER_OK;
}

static celer_status define_name(pl_parse *c, const yaml_node_t *at, const char *name, pl_step *s) {
    if (!*name) return pl_error(c, at, "empty tensor name");
    if (s->n_out == PL_MAX_IO) return pl_error(c, at, "more than %d outputs", PL_MAX_IO);
    int slot = 0;
    CELER_TRY(slot_for(c, at, name, &slot));
    for (int i = 0; i < s->n_out; i++)
        if (s->out[i] == slot) return pl_error(c, at, "output '%s' is named twice", name);
    s->out[s->n_out++] = slot;
    c->defined[slot] = true;
    return CELER_OK;
}

celer_status pl_arg_output(pl_parse *c, const yaml_node_t *args, const char *key, const char *dflt, pl_step *s) {
    if (!key) key = "output";
    const yaml_node_t *n = pl_arg(c, args, key);
    if (n && !scalar(n)) return pl_error(c, n, "'%s' must be a tensor name", key);
    const char *name = n ? scalar(n) : dflt;
    if (!name) return missing(c, args, key);
    return define_name(c, n ? n : args, name, s);
}

celer_status pl_arg_outputs(pl_parse *c, const yaml_node_t *args, const char *key, int n, pl_step *s) {
    const char **names = NULL;
    int count = 0;
    CELER_TRY(pl_arg_strings(c, args, key, true, PL_MAX_IO, &names, &count));
    if (count != n) return pl_error(c, pl_arg(c, args, key), "'%s' must list %d names, got %d", key, n, count);
    for (int i = 0; i < n; i++) CELER_TRY(define_name(c, pl_arg(c, args, key), names[i], s));
    return CELER_OK;
}

/* ---- compiling steps ---- */

static celer_status check_keys(pl_parse *c, const yaml_node_t *args, const char *keys) {
    if (args->type != YAML_MAPPING_NODE) return CELER_OK;
    for (yaml_node_pair_t *kv = args->data.mapping.pairs.start; kv < args->data.mapping.pairs.top; kv++) {
        const yaml_node_t *kn = node_at(c, kv->key);
        const char *k = scalar(kn);
        if (!k) return pl_error(c, kn, "argument names must be plain words");
        size_t kl = strlen(k);
        bool ok = false;
        for (const char *p = keys; *p && !ok;) {
            size_t wl = strcspn(p, " ");
            ok = wl == kl && !strncmp(p, k, kl);
            p += wl;
            p += strspn(p, " ");
        }
        if (!ok) return pl_error(c, kn, "unknown argument '%s' (accepted: %s)", k, keys);
    }
    return CELER_OK;
}

static celer_status new_instr(pl_parse *c, const yaml_node_t *at, op_code op, int *index) {
    celer_pipeline *p = c->p;
    if (p->n_instrs == p->cap_instrs) {
        if (p->n_instrs >= CELER_PIPELINE_MAX_STEPS * 2)
            return pl_error(c, at, "more than %d steps", CELER_PIPELINE_MAX_STEPS);
        int cap = p->cap_instrs ? p->cap_instrs * 2 : 32;
        instr *n = celer_arena_alloc(&p->arena, sizeof *n * (size_t)cap);
        if (!n) return CELER_ERR_NOMEM;
        if (p->n_instrs) memcpy(n, p->instrs, sizeof *n * (size_t)p->n_instrs);
        p->instrs = n;
        p->cap_instrs = cap;
    }
    *index = p->n_instrs++;
    instr *in = &p->instrs[*index];
    memset(in, 0, sizeof *in);
    in->op = op;
    in->step.line = line_of(at);
    in->step.index = -1;
    return CELER_OK;
}

static celer_status compile_steps(pl_parse *c, const yaml_node_t *seq, const char *what);

static void set_label(pl_parse *c, instr *in, const char *kind) {
    celer_pipeline *p = c->p;
    in->step.index = p->n_steps++;
    snprintf(in->step.label, sizeof in->step.label, "step %d (%s)", in->step.index + 1, kind);
}

static celer_status compile_model(pl_parse *c, const yaml_node_t *args, int at) {
    CELER_TRY(check_keys(c, args, "name version inputs outputs"));
    model_params *m = celer_arena_alloc(pl_arena(c), sizeof *m);
    if (!m) return CELER_ERR_NOMEM;
    m->version = "";
    CELER_TRY(pl_arg_string(c, args, "name", true, &m->name));
    CELER_TRY(pl_arg_string(c, args, "version", false, &m->version));
    m->in_names = celer_arena_alloc(pl_arena(c), sizeof(char *) * PL_MAX_IO * 2);
    if (!m->in_names) return CELER_ERR_NOMEM;
    m->out_names = m->in_names + PL_MAX_IO;
    /* `inputs: {model_input: tensor}` (or a list of names used for both); outputs alike */
    for (int dir = 0; dir < 2; dir++) {
        const char *key = dir ? "outputs" : "inputs";
        const yaml_node_t *map = pl_arg(c, args, key);
        if (!map) return missing(c, args, key);
        pl_step *s = &c->p->instrs[at].step;
        const char **names = dir ? m->out_names : m->in_names;
        int n = 0;
        if (map->type == YAML_SEQUENCE_NODE) {
            const char **list;
            CELER_TRY(pl_arg_strings(c, args, key, true, PL_MAX_IO, &list, &n));
            for (int i = 0; i < n; i++) {
                names[i] = list[i];
                if (dir) CELER_TRY(define_name(c, map, list[i], s));
                else CELER_TRY(use_name(c, map, list[i], &s->in[s->n_in++]));
            }
        } else if (map->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *kv = map->data.mapping.pairs.start; kv < map->data.mapping.pairs.top; kv++, n++) {
                const yaml_node_t *kn = node_at(c, kv->key), *vn = node_at(c, kv->value);
                if (!scalar(kn) || !scalar(vn)) return pl_error(c, kn, "'%s' maps names to names", key);
                if (n == PL_MAX_IO) return pl_error(c, map, "'%s': more than %d", key, PL_MAX_IO);
                names[n] = scalar(kn);
                if (dir) CELER_TRY(define_name(c, vn, scalar(vn), s));
                else CELER_TRY(use_name(c, vn, scalar(vn), &s->in[s->n_in++]));
            }
        } else {
            return pl_error(c, map, "'%s' must map the model's %s to tensor names", key, key);
        }
        if (n == 0) return pl_error(c, map, "'%s' is empty", key);
    }
    c->p->instrs[at].step.params = m;
    celer_pipeline *p = c->p;
    for (int i = 0; i < p->n_models; i++)
        if (!strcmp(p->models[i], m->name)) return CELER_OK;
    const char **models = celer_arena_alloc(pl_arena(c), sizeof *models * (size_t)(p->n_models + 1));
    if (!models) return CELER_ERR_NOMEM;
    if (p->n_models) memcpy(models, p->models, sizeof *models * (size_t)p->n_models);
    models[p->n_models++] = m->name;
    p->models = models;
    return CELER_OK;
}

static celer_status compile_route(pl_parse *c, const yaml_node_t *args, int at) {
    CELER_TRY(check_keys(c, args, "field parameter cases default"));
    celer_pipeline *p = c->p;
    if (++c->depth > MAX_ROUTE_DEPTH) return pl_error(c, args, "routes nested deeper than %d", MAX_ROUTE_DEPTH);
    route_params *r = celer_arena_alloc(pl_arena(c), sizeof *r);
    if (!r) return CELER_ERR_NOMEM;
    r->field = -1;
    r->default_target = -1;
    const yaml_node_t *field = pl_arg(c, args, "field");
    CELER_TRY(pl_arg_string(c, args, "parameter", false, &r->parameter));
    if (!field == !r->parameter) return pl_error(c, args, "give exactly one of 'field' (a tensor) or 'parameter'");
    if (field) {
        if (!scalar(field)) return pl_error(c, field, "'field' must be a tensor name");
        CELER_TRY(use_name(c, field, scalar(field), &r->field));
        p->instrs[at].step.in[0] = r->field;
        p->instrs[at].step.n_in = 1;
    }
    const yaml_node_t *cases = pl_arg(c, args, "cases");
    if (!cases || cases->type != YAML_MAPPING_NODE)
        return pl_error(c, cases ? cases : args, "'cases' must map values to lists of steps");
    int n = (int)(cases->data.mapping.pairs.top - cases->data.mapping.pairs.start);
    if (n < 1 || n > MAX_CASES) return pl_error(c, cases, "'cases' must have 1 to %d entries", MAX_CASES);
    const yaml_node_t *dflt = pl_arg(c, args, "default");
    r->n_cases = n;
    r->values = celer_arena_alloc(pl_arena(c), sizeof *r->values * (size_t)n);
    r->targets = celer_arena_alloc(pl_arena(c), sizeof *r->targets * (size_t)n);
    bool *entry = malloc(MAX_SLOTS), *merged = malloc(MAX_SLOTS);
    int *jumps = malloc(sizeof *jumps * (size_t)(n + 1));
    celer_status st = r->values && r->targets && entry && merged && jumps ? CELER_OK : CELER_ERR_NOMEM;
    if (!st) {
        memcpy(entry, c->defined, MAX_SLOTS);
        memset(merged, 1, MAX_SLOTS);
        p->instrs[at].step.params = r;
    }
    const char *label = c->label;
    int n_jumps = 0;
    for (int i = 0; i <= n && !st; i++) {
        const yaml_node_t *body;
        if (i < n) {
            const yaml_node_pair_t *kv = &cases->data.mapping.pairs.start[i];
            const yaml_node_t *kn = node_at(c, kv->key);
            if (!scalar(kn)) {
                st = pl_error(c, kn, "case values must be single values");
                break;
            }
            r->values[i] = scalar(kn);
            for (int j = 0; j < i && !st; j++)
                if (!strcmp(r->values[j], r->values[i])) st = pl_error(c, kn, "case '%s' given twice", r->values[i]);
            if (st) break;
            body = node_at(c, kv->value);
            r->targets[i] = p->n_instrs;
        } else {
            if (!dflt) {
                /* no default: an unmatched value is an error, which leaves no path through */
                break;
            }
            body = dflt;
            r->default_target = p->n_instrs;
        }
        memcpy(c->defined, entry, MAX_SLOTS);
        char what[300];
        snprintf(what, sizeof what, "%s case '%s'", label, i < n ? r->values[i] : "default");
        st = compile_steps(c, body, what);
        c->label = label;
        if (st) break;
        for (int s = 0; s < MAX_SLOTS; s++) merged[s] = merged[s] && c->defined[s];
        int j;
        st = new_instr(c, body, OP_JUMP, &j);
        if (!st) jumps[n_jumps++] = j;
    }
    if (!st) {
        memcpy(c->defined, merged, MAX_SLOTS);
        for (int i = 0; i < n_jumps; i++) p->instrs[jumps[i]].jump = p->n_instrs;
    }
    free(entry);
    free(merged);
    free(jumps);
    c->depth--;
    return st;
}

static celer_status compile_step(pl_parse *c, const yaml_node_t *item) {
    if (item->type != YAML_MAPPING_NODE || item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
        return pl_error(c, item, "a step is a mapping with one key, its kind: `- normalize: {input: x, ...}`");
    const yaml_node_pair_t *kv = item->data.mapping.pairs.start;
    const char *kind = scalar(node_at(c, kv->key));
    const yaml_node_t *args = node_at(c, kv->value);
    if (!kind) return pl_error(c, item, "a step's key must be its kind");
    if (args->type == YAML_SEQUENCE_NODE) return pl_error(c, args, "%s: arguments must be a mapping", kind);
    celer_pipeline *p = c->p;
    int at;
    if (!strcmp(kind, "model") || !strcmp(kind, "route")) {
        bool model = kind[0] == 'm';
        CELER_TRY(new_instr(c, item, model ? OP_MODEL : OP_ROUTE, &at));
        set_label(c, &p->instrs[at], kind);
        char label[64];
        memcpy(label, p->instrs[at].step.label, sizeof label);
        c->label = label; /* instrs may move while a route compiles its branches */
        celer_status st = model ? compile_model(c, args, at) : compile_route(c, args, at);
        c->label = NULL;
        return st;
    }
    const pl_kind *k = NULL;
    for (size_t i = 0; i < CELER_ARRAY_LEN(kinds) && !k; i++)
        if (!strcmp(kinds[i]->name, kind)) k = kinds[i];
    if (!k) {
        char known[1024] = "model route";
        for (size_t i = 0; i < CELER_ARRAY_LEN(kinds); i++) {
            size_t l = strlen(known);
            snprintf(known + l, sizeof known - l, " %s", kinds[i]->name);
        }
        return pl_error(c, item, "unknown step '%s' (known: %s)", kind, known);
    }
    CELER_TRY(new_instr(c, item, OP_STEP, &at));
    instr *in = &p->instrs[at];
    in->step.kind = k;
    set_label(c, in, kind);
    c->label = in->step.label;
    celer_status st = check_keys(c, args, k->keys);
    if (!st) st = k->parse(c, args, &in->step);
    c->label = NULL;
    return st;
}

static celer_status compile_steps(pl_parse *c, const yaml_node_t *seq, const char *what) {
    if (!seq || seq->type != YAML_SEQUENCE_NODE) {
        c->label = NULL;
        return pl_error(c, seq, "%s must be a list of steps", what);
    }
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++)
        CELER_TRY(compile_step(c, node_at(c, *it)));
    return CELER_OK;
}

/* `cache: true` (60 s), `cache: false`, or `cache: {ttl: SECONDS}`. */
static celer_status parse_cache(pl_parse *c, const yaml_node_t *root) {
    const yaml_node_t *v = pl_arg(c, root, "cache");
    if (!v) return CELER_OK;
    const char *sv = scalar(v);
    if (sv && (!strcmp(sv, "true") || !strcmp(sv, "false"))) {
        c->p->cache_ttl_s = sv[0] == 't' ? 60 : 0;
        return CELER_OK;
    }
    if (v->type != YAML_MAPPING_NODE) return pl_error(c, v, "'cache' is true, false or {ttl: seconds}");
    CELER_TRY(check_keys(c, v, "ttl"));
    double ttl = 60;
    CELER_TRY(pl_arg_double(c, v, "ttl", false, &ttl));
    if (!(ttl > 0 && ttl <= 30 * 86400)) return pl_error(c, v, "'cache' ttl must be 0 to 30 days in seconds, not %g", ttl);
    c->p->cache_ttl_s = ttl;
    return CELER_OK;
}

/* ---- inputs and outputs ---- */

/* Fills the default row of `io` from the YAML value. */
static celer_status parse_default(pl_parse *c, const yaml_node_t *v, celer_pipeline_io *io) {
    int count = v->type == YAML_SEQUENCE_NODE ? (int)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
    if (v->type == YAML_MAPPING_NODE) return pl_error(c, v, "input '%s': default must be a value or a list", io->name);
    int64_t fixed = 1;
    int variable = -1;
    for (int d = 0; d < io->rank; d++) {
        if (io->dims[d] < 0) {
            if (variable >= 0) return pl_error(c, v, "input '%s': a default needs at most one variable dim", io->name);
            variable = d;
        } else {
            fixed *= io->dims[d];
        }
    }
    celer_tensor *t = &io->default_row;
    t->dtype = io->dtype;
    t->shape.rank = io->rank;
    memcpy(t->shape.dims, io->dims, sizeof t->shape.dims);
    if (variable >= 0) {
        if (fixed == 0 || count % fixed) return pl_error(c, v, "input '%s': default has %d values", io->name, count);
        t->shape.dims[variable] = count / fixed;
    } else if (count != fixed && !(io->rank == 0 && v->type != YAML_SEQUENCE_NODE)) {
        return pl_error(c, v, "input '%s': default has %d values, shape needs %lld", io->name, count, (long long)fixed);
    }
    size_t esize = celer_dtype_size(io->dtype);
    t->data = celer_arena_alloc(pl_arena(c), esize * (size_t)(count ? count : 1));
    if (!t->data) return CELER_ERR_NOMEM;
    for (int i = 0; i < count; i++) {
        const yaml_node_t *e = v->type == YAML_SEQUENCE_NODE ? node_at(c, v->data.sequence.items.start[i]) : v;
        const char *s = scalar(e);
        if (!s) return pl_error(c, e, "input '%s': default values must be single values", io->name);
        if (io->dtype == CELER_STRING) {
            ((celer_str *)t->data)[i] = celer_str_c(s); /* YAML scalars are text: no NULs */
            continue;
        }
        double d;
        if (io->dtype == CELER_BOOL && (!strcmp(s, "true") || !strcmp(s, "false"))) d = s[0] == 't';
        else if (!parse_double(s, &d)) return pl_error(c, e, "input '%s': default '%s' is not a number", io->name, s);
        /* integer types: the range first, converting a double outside it (or NaN) is undefined */
        static const struct { celer_dtype dtype; double lo, hi; } int_range[] = {
            {CELER_INT64, -9223372036854775808.0, 9223372036854774784.0}, {CELER_INT32, INT32_MIN, INT32_MAX},
            {CELER_INT16, INT16_MIN, INT16_MAX}, {CELER_INT8, INT8_MIN, INT8_MAX}, {CELER_UINT8, 0, UINT8_MAX},
        };
        for (size_t k = 0; k < CELER_ARRAY_LEN(int_range); k++)
            if (int_range[k].dtype == io->dtype && !(d >= int_range[k].lo && d <= int_range[k].hi))
                return pl_error(c, e, "input '%s': default '%s' is outside the range of %s", io->name, s,
                                celer_dtype_name(io->dtype));
        switch (io->dtype) {
        case CELER_FLOAT: ((float *)t->data)[i] = (float)d; break;
        case CELER_DOUBLE: ((double *)t->data)[i] = d; break;
        case CELER_INT64: ((int64_t *)t->data)[i] = (int64_t)d; break;
        case CELER_INT32: ((int32_t *)t->data)[i] = (int32_t)d; break;
        case CELER_INT16: ((int16_t *)t->data)[i] = (int16_t)d; break;
        case CELER_INT8: ((int8_t *)t->data)[i] = (int8_t)d; break;
        case CELER_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)d; break;
        case CELER_BOOL: ((uint8_t *)t->data)[i] = d != 0; break;
        default: return pl_error(c, e, "input '%s': no default for this type", io->name);
        }
    }
    io->has_default = true;
    return CELER_OK;
}

static celer_status parse_inputs(pl_parse *c, const yaml_node_t *seq) {
    celer_pipeline *p = c->p;
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return pl_error(c, seq, "'inputs' must be a list");
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n < 1 || n > CELER_PIPELINE_MAX_IO) return pl_error(c, seq, "'inputs' must have 1 to %d entries", CELER_PIPELINE_MAX_IO);
    p->inputs = celer_arena_alloc(&p->arena, sizeof *p->inputs * (size_t)n);
    p->input_slots = celer_arena_alloc(&p->arena, sizeof *p->input_slots * (size_t)n);
    if (!p->inputs || !p->input_slots) return CELER_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const yaml_node_t *e = node_at(c, seq->data.sequence.items.start[i]);
        if (e->type != YAML_MAPPING_NODE) return pl_error(c, e, "an input is a mapping {name, dtype, shape, default}");
        CELER_TRY(check_keys(c, e, "name dtype shape default"));
        celer_pipeline_io *io = &p->inputs[i];
        CELER_TRY(pl_arg_string(c, e, "name", true, &io->name));
        io->dtype = CELER_FLOAT;
        CELER_TRY(pl_arg_dtype(c, e, "dtype", false, &io->dtype));
        double *dims = NULL;
        int rank = 0;
        const yaml_node_t *shape = pl_arg(c, e, "shape");
        if (shape && !(shape->type == YAML_SEQUENCE_NODE && shape->data.sequence.items.top == shape->data.sequence.items.start))
            CELER_TRY(pl_arg_doubles(c, e, "shape", false, CELER_MAX_RANK - 1, &dims, &rank));
        if (shape && shape->type != YAML_SEQUENCE_NODE) return pl_error(c, shape, "'shape' must be a list");
        io->rank = rank;
        for (int d = 0; d < rank; d++) {
            /* the range first: converting an out-of-range double (or NaN) to an integer is undefined */
            if (!(dims[d] >= -1 && dims[d] <= (1 << 30)) || dims[d] != (int64_t)dims[d])
                return pl_error(c, shape, "input '%s': dims must be integers >= 0, or -1 for variable", io->name);
            io->dims[d] = (int64_t)dims[d];
        }
        int slot = 0;
        CELER_TRY(slot_for(c, e, io->name, &slot));
        if (c->defined[slot]) return pl_error(c, e, "input '%s' declared twice", io->name);
        c->defined[slot] = true;
        p->input_slots[i] = slot;
        const yaml_node_t *dv = pl_arg(c, e, "default");
        if (dv) CELER_TRY(parse_default(c, dv, io));
    }
    p->n_inputs = n;
    return CELER_OK;
}

static celer_status parse_outputs(pl_parse *c, const yaml_node_t *seq) {
    celer_pipeline *p = c->p;
    if (!seq || seq->type != YAML_SEQUENCE_NODE) return pl_error(c, seq, "'outputs' must be a list");
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n < 1 || n > CELER_PIPELINE_MAX_IO) return pl_error(c, seq, "'outputs' must have 1 to %d entries", CELER_PIPELINE_MAX_IO);
    p->output_names = celer_arena_alloc(&p->arena, sizeof *p->output_names * (size_t)n);
    p->output_slots = celer_arena_alloc(&p->arena, sizeof *p->output_slots * (size_t)n);
    if (!p->output_names || !p->output_slots) return CELER_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        const yaml_node_t *e = node_at(c, seq->data.sequence.items.start[i]);
        const char *name = scalar(e), *from = NULL;
        if (!name) {
            if (e->type != YAML_MAPPING_NODE) return pl_error(c, e, "an output is a name or {name, from}");
            CELER_TRY(check_keys(c, e, "name from"));
            CELER_TRY(pl_arg_string(c, e, "name", true, &name));
            CELER_TRY(pl_arg_string(c, e, "from", false, &from));
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(p->output_names[j], name)) return pl_error(c, e, "output '%s' listed twice", name);
        p->output_names[i] = name;
        CELER_TRY(use_name(c, e, from ? from : name, &p->output_slots[i]));
    }
    p->n_outputs = n;
    return CELER_OK;
}

/* The pipeline keeps scalar strings past the YAML document's life: each scalar is copied into
 * the arena and the node re-pointed at the copy; `orig` keeps libyaml's own pointers, put back
 * before the document is freed (restore_scalars). */
static celer_status own_scalars(celer_arena *arena, yaml_document_t *doc, yaml_char_t ***orig) {
    size_t n = (size_t)(doc->nodes.top - doc->nodes.start);
    *orig = calloc(n ? n : 1, sizeof **orig);
    if (!*orig) return CELER_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *node = &doc->nodes.start[i];
        if (node->type != YAML_SCALAR_NODE) continue;
        char *s = celer_arena_strndup(arena, (const char *)node->data.scalar.value, node->data.scalar.length);
        if (!s) return CELER_ERR_NOMEM;
        (*orig)[i] = node->data.scalar.value;
        node->data.scalar.value = (yaml_char_t *)s;
    }
    return CELER_OK;
}

static void restore_scalars(yaml_document_t *doc, yaml_char_t **orig) {
    if (!orig) return;
    for (size_t i = 0; i < (size_t)(doc->nodes.top - doc->nodes.start); i++)
        if (orig[i]) doc->nodes.start[i].data.scalar.value = orig[i];
    free(orig);
}

static void free_steps(celer_pipeline *p) {
    for (int i = 0; i < p->n_instrs; i++)
        if (p->instrs[i].op == OP_STEP && p->instrs[i].step.kind && p->instrs[i].step.kind->free)
            p->instrs[i].step.kind->free(&p->instrs[i].step);
}

celer_status celer_pipeline_parse(const char *text, size_t len, const char *path, const char *dir,
                                  celer_pipeline **out) {
    *out = NULL;
    if (len > CELER_PIPELINE_MAX_FILE)
        return celer_errorf(CELER_ERR_LIMIT, "%s: %zu bytes, at most %d", path, len, CELER_PIPELINE_MAX_FILE);
    celer_pipeline *p = calloc(1, sizeof *p);
    if (!p) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", path);
    celer_arena_init(&p->arena, 64 * 1024, 0);
    p->path = celer_arena_strndup(&p->arena, path, strlen(path));
    p->description = "";
    p->slot_names = celer_arena_alloc(&p->arena, sizeof *p->slot_names * MAX_SLOTS);
    bool *defined = calloc(MAX_SLOTS, 1);
    pl_parse c = {.p = p, .dir = dir, .defined = defined};
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_doc = false;
    celer_status st = p->path && p->slot_names && defined ? CELER_OK : CELER_ERR_NOMEM;
    if (!st) {
        yaml_parser_initialize(&parser);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) {
            st = celer_errorf(CELER_ERR_PARSE, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1,
                              parser.problem_mark.column + 1, parser.problem ? parser.problem : "malformed YAML",
                              parser.context ? " " : "", parser.context ? parser.context : "");
        } else {
            have_doc = true;
        }
        yaml_parser_delete(&parser);
    }
    const yaml_node_t *root = have_doc ? yaml_document_get_root_node(&doc) : NULL;
    c.doc = &doc;
    yaml_char_t **orig = NULL;
    if (!st && have_doc) st = own_scalars(&p->arena, &doc, &orig);
    if (!st && (!root || root->type != YAML_MAPPING_NODE))
        st = celer_errorf(CELER_ERR_INVALID, "%s:%d: a pipeline is a mapping with inputs, steps and outputs", path,
                          line_of(root));
    if (!st) st = check_keys(&c, root, "description inputs steps outputs cache");
    if (!st) st = pl_arg_string(&c, root, "description", false, &p->description);
    if (!st) st = parse_cache(&c, root);
    if (!st) st = parse_inputs(&c, pl_arg(&c, root, "inputs") ? pl_arg(&c, root, "inputs") : root);
    if (!st) st = compile_steps(&c, pl_arg(&c, root, "steps") ? pl_arg(&c, root, "steps") : root, "'steps'");
    if (!st) st = parse_outputs(&c, pl_arg(&c, root, "outputs") ? pl_arg(&c, root, "outputs") : root);
    if (!st) {
        p->step_names = celer_arena_alloc(&p->arena, sizeof *p->step_names * (size_t)(p->n_steps + 1));
        if (!p->step_names) st = CELER_ERR_NOMEM;
        for (int i = 0; i < p->n_instrs && !st; i++) {
            const instr *in = &p->instrs[i];
            if (in->op == OP_JUMP) continue;
            const char *kind = in->op == OP_STEP ? in->step.kind->name : in->op == OP_MODEL ? "model" : "route";
            char name[64];
            snprintf(name, sizeof name, "%d_%s", in->step.index + 1, kind);
            p->step_names[in->step.index] = celer_arena_strndup(&p->arena, name, strlen(name));
            if (!p->step_names[in->step.index]) st = CELER_ERR_NOMEM;
        }
    }
    if (have_doc) {
        restore_scalars(&doc, orig);
        yaml_document_delete(&doc);
    }
    free(defined);
    if (st) {
        if (st == CELER_ERR_NOMEM) celer_errorf(st, "%s: out of memory", path);
        free_steps(p);
        celer_arena_free(&p->arena);
        free(p);
        return st;
    }
    *out = p;
    return CELER_OK;
}

celer_status celer_pipeline_load(const char *path, celer_pipeline **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return celer_errorf(CELER_ERR_IO, "%s: %s", path, strerror(errno));
    char *text = malloc(CELER_PIPELINE_MAX_FILE + 1);
    size_t len = text ? fread(text, 1, CELER_PIPELINE_MAX_FILE + 1, f) : 0;
    bool err = ferror(f);
    fclose(f);
    if (!text) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", path);
    if (err) {
        free(text);
        return celer_errorf(CELER_ERR_IO, "%s: read error", path);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    celer_status st = celer_pipeline_parse(text, len, path, dir, out);
    free(text);
    return st;
}

void celer_pipeline_free(celer_pipeline *p) {
    if (!p) return;
    free_steps(p);
    celer_arena_free(&p->arena);
    free(p);
}

const char *celer_pipeline_description(const celer_pipeline *p) { return p->description; }
double celer_pipeline_cache_ttl(const celer_pipeline *p) { return p->cache_ttl_s; }
int celer_pipeline_input_count(const celer_pipeline *p) { return p->n_inputs; }
const celer_pipeline_io *celer_pipeline_input(const celer_pipeline *p, int i) { return &p->inputs[i]; }
int celer_pipeline_output_count(const celer_pipeline *p) { return p->n_outputs; }
const char *celer_pipeline_output_name(const celer_pipeline *p, int i) { return p->output_names[i]; }
int celer_pipeline_step_count(const celer_pipeline *p) { return p->n_steps; }
const char *celer_pipeline_step_name(const celer_pipeline *p, int i) { return p->step_names[i]; }
bool celer_pipeline_input_is_image(const celer_pipeline *p, int i) {
    for (int k = 0; k < p->n_instrs; k++) {
        const instr *in = &p->instrs[k];
        if (in->op == OP_STEP && in->step.kind == &pl_kind_decode_image && in->step.in[0] == p->input_slots[i])
            return true;
    }
    return false;
}
int celer_pipeline_model_count(const celer_pipeline *p) { return p->n_models; }
const char *celer_pipeline_model_name(const celer_pipeline *p, int i) { return p->models[i]; }

/* ---- output types ----
 * A walk over the program like a run's, with a per-row type in each slot instead of a tensor: each
 * step's rule (pl_kind.types) maps its inputs' types to its outputs', a model step asks the
 * caller how its callee looks, and a route walks every branch from the types at its entry and
 * merges what they leave. */

struct pl_types {
    celer_pipeline_type *slots;         /* [n_slots], on the path being walked */
    celer_pipeline_type ins[PL_MAX_IO]; /* the step's inputs, copied: an output may replace its input's name */
};

celer_pipeline_type pl_type_unknown(void) { return (celer_pipeline_type){.dtype = CELER_UNDEFINED, .rank = -1}; }

const celer_pipeline_type *pl_type_in(const pl_types *c, const pl_step *s, int i) {
    (void)s;
    return &c->ins[i];
}

void pl_type_set(pl_types *c, const pl_step *s, int i, const celer_pipeline_type *t) { c->slots[s->out[i]] = *t; }

void pl_type_same_shape(pl_types *c, const pl_step *s, celer_dtype dtype) {
    celer_pipeline_type t = c->ins[0];
    t.dtype = dtype;
    pl_type_set(c, s, 0, &t);
}

/* What two paths may leave in a slot: the same dtype, else unknown; the same rank with the dims
 * that agree, others -1; different ranks: unknown. */
static void merge_type(celer_pipeline_type *m, const celer_pipeline_type *a) {
    if (m->dtype != a->dtype) m->dtype = CELER_UNDEFINED;
    if (m->rank != a->rank) {
        m->rank = -1;
        memset(m->dims, 0, sizeof m->dims);
    }
    for (int d = 0; d < m->rank; d++)
        if (m->dims[d] != a->dims[d]) m->dims[d] = -1;
}

/* A model step's outputs: the callee's output as the model reports it, whose first dim (the
 * batch, or whatever the model returns first) the pipeline takes as rows, as celer_pipeline_resume
 * stores it. A model output without dims has no rows: its shape is unknown. */
static void model_types(const pl_step *s, celer_pipeline_model_io_fn fn, void *user, pl_types *c) {
    const model_params *m = s->params;
    for (int o = 0; o < s->n_out; o++) {
        celer_pipeline_type whole = pl_type_unknown(), t = pl_type_unknown();
        if (fn && fn(user, m->name, m->version, m->out_names[o], true, &whole)) {
            t.dtype = whole.dtype;
            if (whole.rank >= 1 && whole.rank <= CELER_MAX_RANK) {
                t.rank = whole.rank - 1;
                for (int d = 0; d < t.rank; d++) t.dims[d] = whole.dims[d + 1] < 0 ? -1 : whole.dims[d + 1];
            }
        }
        pl_type_set(c, s, o, &t);
    }
}

typedef struct type_walk {
    const celer_pipeline *p;
    celer_pipeline_model_io_fn fn;
    void *user;
    pl_types c;
    bool nomem;
} type_walk;

/* Walks the instructions from k on, until the jump that ends the branch being walked (its index is
 * returned) or the end of the program (n_instrs). Branches only jump forward, to the end of their
 * route, so a route is its branches walked in turn, each from the route's entry, then the merge. */
static int walk_types(type_walk *w, int k) {
    const celer_pipeline *p = w->p;
    size_t bytes = sizeof(celer_pipeline_type) * (size_t)(p->n_slots ? p->n_slots : 1);
    while (k < p->n_instrs && !w->nomem) {
        const instr *in = &p->instrs[k];
        const pl_step *s = &in->step;
        if (in->op == OP_JUMP) return k;
        if (in->op == OP_STEP || in->op == OP_MODEL) {
            for (int i = 0; i < s->n_in; i++) w->c.ins[i] = w->c.slots[s->in[i]];
            if (in->op == OP_MODEL) {
                model_types(s, w->fn, w->user, &w->c);
            } else if (s->kind->types) {
                s->kind->types(s, &w->c);
            } else {
                celer_pipeline_type u = pl_type_unknown();
                for (int o = 0; o < s->n_out; o++) pl_type_set(&w->c, s, o, &u);
            }
            k++;
            continue;
        }
        /* OP_ROUTE */
        const route_params *rp = s->params;
        celer_pipeline_type *path = w->c.slots, *entry = malloc(bytes), *merged = malloc(bytes);
        int join = p->n_instrs;
        bool first = true;
        w->nomem = !entry || !merged;
        if (!w->nomem) memcpy(entry, path, bytes);
        for (int i = 0; i <= rp->n_cases && !w->nomem; i++) {
            int start = i < rp->n_cases ? rp->targets[i] : rp->default_target;
            if (start < 0) continue; /* no default: an unmatched value is an error, not a path */
            memcpy(path, entry, bytes);
            int end = walk_types(w, start);
            if (end < p->n_instrs) join = p->instrs[end].jump;
            if (first) memcpy(merged, path, bytes);
            else
                for (int t = 0; t < p->n_slots; t++) merge_type(&merged[t], &path[t]);
            first = false;
        }
        if (!w->nomem) memcpy(path, merged, bytes);
        free(entry);
        free(merged);
        k = join;
    }
    return k;
}

void celer_pipeline_output_types(const celer_pipeline *p, celer_pipeline_model_io_fn fn, void *user,
                                 celer_pipeline_type *out) {
    type_walk w = {.p = p, .fn = fn, .user = user};
    w.c.slots = malloc(sizeof *w.c.slots * (size_t)(p->n_slots ? p->n_slots : 1));
    w.nomem = !w.c.slots;
    for (int t = 0; !w.nomem && t < p->n_slots; t++) w.c.slots[t] = pl_type_unknown();
    for (int i = 0; !w.nomem && i < p->n_inputs; i++) {
        const celer_pipeline_io *io = &p->inputs[i];
        celer_pipeline_type *t = &w.c.slots[p->input_slots[i]];
        t->dtype = io->dtype;
        t->rank = io->rank;
        memcpy(t->dims, io->dims, sizeof t->dims);
    }
    if (!w.nomem) walk_types(&w, 0);
    for (int i = 0; i < p->n_outputs; i++) out[i] = w.nomem ? pl_type_unknown() : w.c.slots[p->output_slots[i]];
    free(w.c.slots);
}

/* ---- running ---- */

/* A decoded image the run owns (pl_out_image); the node lives in the arena, the data on the heap. */
typedef struct image_buf {
    struct image_buf *next;
    void *data;
    size_t bytes; /* reserved against the image budget */
} image_buf;

struct pl_exec {
    celer_arena *arena;
    pl_value *slots;
    image_buf *images; /* live ones */
    int64_t rows;
    pl_value ins[PL_MAX_IO]; /* the running step's inputs, copied: an output may replace its input's name */
    celer_status status;     /* a batch step's failure of this request, and its message */
    char msg[768];
};

struct celer_pipeline_run {
    pl_exec x;
    const celer_pipeline *p;
    int pc;
    bool started, waiting, done, batching;
    int64_t *step_ns;
    int64_t call_start;
    celer_pipeline_step_fn hook; /* tracing: told of each step's times */
    void *hook_user;
    celer_pipeline_call call;
    celer_tensor *call_inputs;
    const char *const *param_keys, *const *param_values;
    int n_params;
    celer_tensor *outputs;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const pl_value *pl_in(pl_exec *x, const pl_step *s, int i) {
    (void)s;
    return &x->ins[i];
}

static bool out_bytes(celer_dtype dtype, const celer_shape *shape, size_t *bytes) {
    int64_t numel = celer_shape_numel(shape);
    size_t esize = celer_dtype_size(dtype);
    if (numel >= 0 && !celer_mul_size((size_t)numel, esize, bytes)) return true;
    celer_errorf(CELER_ERR_LIMIT, "output too large");
    return false;
}

static celer_tensor *set_out(pl_exec *x, const pl_step *s, int i, celer_dtype dtype, const celer_shape *shape,
                             void *data) {
    pl_value *v = &x->slots[s->out[i]];
    v->t.dtype = dtype;
    v->t.shape = *shape;
    v->t.data = data;
    v->set = true;
    return &v->t;
}

celer_tensor *pl_out(pl_exec *x, const pl_step *s, int i, celer_dtype dtype, const celer_shape *shape) {
    size_t bytes;
    if (!out_bytes(dtype, shape, &bytes)) return NULL;
    void *data = dtype == CELER_STRING ? celer_arena_alloc(x->arena, bytes ? bytes : 1)
                                       : celer_arena_alloc_uninit(x->arena, bytes ? bytes : 1);
    return data ? set_out(x, s, i, dtype, shape, data) : NULL;
}

/* ---- image memory ---- */

static _Atomic size_t image_budget = CELER_PIPELINE_IMAGE_BUDGET_DEFAULT;
static _Atomic size_t image_in_use;

void celer_pipeline_set_image_budget(size_t bytes) { atomic_store(&image_budget, bytes); }
size_t celer_pipeline_image_bytes_in_use(void) { return atomic_load(&image_in_use); }
size_t pl_image_budget(void) { return atomic_load(&image_budget); }

static double mib(size_t bytes) { return (double)bytes / (1 << 20); }

/* One compare-and-swap loop: concurrent reservations together never pass the budget. */
celer_status pl_image_take(size_t bytes, const char *what) {
    size_t budget = atomic_load(&image_budget), cur = atomic_load(&image_in_use), sum;
    if (budget && bytes > budget)
        return celer_errorf(CELER_ERR_LIMIT,
                            "'%s' needs %.1f MiB of image memory, more than the server's image memory budget of %.1f "
                            "MiB; send smaller images",
                            what, mib(bytes), mib(budget));
    do {
        if (celer_add_size(cur, bytes, &sum) || (budget && sum > budget))
            return celer_errorf(CELER_ERR_UNAVAILABLE,
                                "'%s' needs %.1f MiB of image memory; other requests hold %.1f MiB of the %.1f MiB "
                                "budget: retry later",
                                what, mib(bytes), mib(cur), mib(budget));
    } while (!atomic_compare_exchange_weak(&image_in_use, &cur, sum));
    return CELER_OK;
}

void pl_image_give(size_t bytes) { atomic_fetch_sub(&image_in_use, bytes); }

celer_status pl_out_image(pl_exec *x, const pl_step *s, int i, celer_dtype dtype, const celer_shape *shape,
                          const char *what, celer_tensor **out) {
    size_t bytes;
    if (dtype == CELER_STRING) return celer_errorf(CELER_ERR_INTERNAL, "pl_out_image: %s is not numeric", what);
    if (!out_bytes(dtype, shape, &bytes)) return CELER_ERR_LIMIT;
    if (!bytes) { /* nothing to count: the arena will do */
        *out = pl_out(x, s, i, dtype, shape);
        return *out ? CELER_OK : celer_error_wrap(celer_error_status(), "'%s'", what);
    }
    CELER_TRY(pl_image_take(bytes, what));
    image_buf *b = celer_arena_alloc(x->arena, sizeof *b);
    void *data = b ? malloc(bytes) : NULL;
    if (!data) {
        pl_image_give(bytes);
        return b ? celer_errorf(CELER_ERR_NOMEM, "'%s': out of memory allocating %.1f MiB", what, mib(bytes))
                 : celer_error_wrap(celer_error_status(), "'%s'", what);
    }
    *b = (image_buf){x->images, data, bytes};
    x->images = b;
    *out = set_out(x, s, i, dtype, shape, data);
    return CELER_OK;
}

void pl_fail(pl_exec *x, celer_status status) {
    x->status = status;
    snprintf(x->msg, sizeof x->msg, "%s", celer_error_message());
}

bool pl_failed(const pl_exec *x) { return x->status != CELER_OK; }

void *pl_scratch(pl_exec *x, size_t bytes) { return celer_arena_alloc_uninit(x->arena, bytes ? bytes : 1); }

int64_t pl_rows(const pl_exec *x) { return x->rows; }

bool pl_is_numeric(celer_dtype t) {
    switch (t) {
    case CELER_FLOAT: case CELER_DOUBLE: case CELER_INT64: case CELER_INT32: case CELER_INT16: case CELER_INT8:
    case CELER_UINT8: case CELER_UINT16: case CELER_UINT32: case CELER_UINT64: case CELER_BOOL: return true;
    default: return false;
    }
}

celer_status pl_need_numeric(const celer_tensor *t, const char *what) {
    if (pl_is_numeric(t->dtype)) return CELER_OK;
    return celer_errorf(CELER_ERR_DTYPE, "%s must be numeric, got %s", what, celer_dtype_name(t->dtype));
}

int64_t pl_get_i64(const celer_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CELER_INT64: return ((const int64_t *)t->data)[i];
    case CELER_INT32: return ((const int32_t *)t->data)[i];
    case CELER_INT16: return ((const int16_t *)t->data)[i];
    case CELER_INT8: return ((const int8_t *)t->data)[i];
    case CELER_UINT8: case CELER_BOOL: return ((const uint8_t *)t->data)[i];
    case CELER_UINT16: return ((const uint16_t *)t->data)[i];
    case CELER_UINT32: return ((const uint32_t *)t->data)[i];
    case CELER_UINT64: { /* above INT64_MAX: saturated (ids that large do not occur) */
        uint64_t v = ((const uint64_t *)t->data)[i];
        return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
    }
    default: {
        double d = celer_ops_double_at(t, i);
        return d >= -9.2e18 && d <= 9.2e18 ? (int64_t)d : 0;
    }
    }
}


celer_status celer_pipeline_run_init(const celer_pipeline *p, celer_arena *arena, celer_pipeline_run **out) {
    celer_pipeline_run *r = celer_arena_alloc(arena, sizeof *r);
    pl_value *slots = celer_arena_alloc(arena, sizeof *slots * (size_t)(p->n_slots + 1));
    int64_t *ns = celer_arena_alloc(arena, sizeof *ns * (size_t)(p->n_steps + 1));
    celer_tensor *ci = celer_arena_alloc(arena, sizeof *ci * PL_MAX_IO);
    if (!r || !slots || !ns || !ci) return celer_error_wrap(celer_error_status(), "pipeline");
    r->p = p;
    r->x.arena = arena;
    r->x.slots = slots;
    r->step_ns = ns;
    r->call_inputs = ci;
    *out = r;
    return CELER_OK;
}

celer_status celer_pipeline_set_input(celer_pipeline_run *r, int i, const celer_tensor *t) {
    const celer_pipeline_io *io = &r->p->inputs[i];
    char a[128], b[128];
    if (t->dtype != io->dtype)
        return celer_errorf(CELER_ERR_DTYPE, "input '%s': expected %s, got %s", io->name, celer_dtype_name(io->dtype),
                            celer_dtype_name(t->dtype));
    bool ok = t->shape.rank == io->rank + 1;
    for (int d = 0; ok && d < io->rank; d++) ok = io->dims[d] < 0 || io->dims[d] == t->shape.dims[d + 1];
    if (!ok) {
        celer_shape want = {.rank = io->rank + 1};
        want.dims[0] = -1;
        memcpy(want.dims + 1, io->dims, sizeof(int64_t) * (size_t)io->rank);
        return celer_errorf(CELER_ERR_SHAPE, "input '%s': expected shape %s (rows first), got %s", io->name,
                            celer_shape_str(&want, a, sizeof a), celer_shape_str(&t->shape, b, sizeof b));
    }
    pl_value *v = &r->x.slots[r->p->input_slots[i]];
    v->t = *t;
    v->set = true;
    return CELER_OK;
}

void celer_pipeline_set_parameters(celer_pipeline_run *r, const char *const *keys, const char *const *values, int n) {
    r->param_keys = keys;
    r->param_values = values;
    r->n_params = n;
}

/* Rows from the inputs given (all must agree), then defaults for the others. */
static celer_status start(celer_pipeline_run *r) {
    const celer_pipeline *p = r->p;
    int64_t rows = -1;
    const char *first = NULL;
    for (int i = 0; i < p->n_inputs; i++) {
        const pl_value *v = &r->x.slots[p->input_slots[i]];
        if (!v->set) continue;
        if (rows < 0) {
            rows = v->t.shape.dims[0];
            first = p->inputs[i].name;
        } else if (v->t.shape.dims[0] != rows) {
            return celer_errorf(CELER_ERR_SHAPE, "input '%s' has %lld rows but input '%s' has %lld", p->inputs[i].name,
                                (long long)v->t.shape.dims[0], first, (long long)rows);
        }
    }
    if (rows < 0) rows = 1;
    r->x.rows = rows;
    for (int i = 0; i < p->n_inputs; i++) {
        pl_value *v = &r->x.slots[p->input_slots[i]];
        const celer_pipeline_io *io = &p->inputs[i];
        if (v->set) continue;
        if (!io->has_default) return celer_errorf(CELER_ERR_INVALID, "missing input '%s' (it has no default)", io->name);
        const celer_tensor *d = &io->default_row;
        size_t esize = celer_dtype_size(d->dtype);
        size_t row = esize * (size_t)CELER_MAX(celer_shape_numel(&d->shape), 0), total;
        if (celer_mul_size(row, (size_t)rows, &total)) return celer_errorf(CELER_ERR_LIMIT, "too many rows");
        char *data = celer_arena_alloc_uninit(r->x.arena, total ? total : 1);
        if (!data) return celer_error_wrap(celer_error_status(), "input '%s' default", io->name);
        for (int64_t k = 0; k < rows; k++) memcpy(data + (size_t)k * row, d->data, row);
        v->t.dtype = d->dtype;
        v->t.shape.rank = d->shape.rank + 1;
        v->t.shape.dims[0] = rows;
        memcpy(v->t.shape.dims + 1, d->shape.dims, sizeof(int64_t) * (size_t)d->shape.rank);
        v->t.data = data;
        v->set = true;
    }
    return CELER_OK;
}

/* The value a route compares: element `row` of its field as bytes (a string may hold NULs). */
static celer_str route_value(const pl_value *v, int64_t row, char *buf, size_t cap) {
    const celer_tensor *t = &v->t;
    if (t->dtype == CELER_STRING) return ((const celer_str *)t->data)[row];
    if (t->dtype == CELER_BOOL) return celer_str_c(((const uint8_t *)t->data)[row] ? "true" : "false");
    if (t->dtype != CELER_FLOAT && t->dtype != CELER_DOUBLE) {
        snprintf(buf, cap, "%lld", (long long)pl_get_i64(t, row));
        return celer_str_c(buf);
    }
    double d = celer_ops_double_at(t, row);
    if (d >= -9e15 && d <= 9e15 && d == (double)(long long)d) snprintf(buf, cap, "%lld", (long long)d);
    else snprintf(buf, cap, "%g", d);
    return celer_str_c(buf);
}

static celer_status run_route(celer_pipeline_run *r, const instr *in, int *next) {
    const route_params *rp = in->step.params;
    char b0[64], b1[64];
    celer_str value;
    if (rp->field >= 0) {
        const pl_value *v = &r->x.slots[rp->field];
        int64_t n = celer_shape_numel(&v->t.shape);
        if (n < 1) return celer_errorf(CELER_ERR_INVALID, "route field '%s' is empty", r->p->slot_names[rp->field]);
        if (v->t.dtype != CELER_STRING && !pl_is_numeric(v->t.dtype))
            return celer_errorf(CELER_ERR_DTYPE, "route field '%s' must be text, an integer or a boolean",
                                r->p->slot_names[rp->field]);
        value = route_value(v, 0, b0, sizeof b0);
        for (int64_t i = 1; i < n; i++) {
            celer_str o = route_value(v, i, b1, sizeof b1);
            if (!celer_str_eq(o, value))
                return celer_errorf(CELER_ERR_INVALID,
                                    "route field '%s': rows disagree ('%.*s' and '%.*s'); one request takes one branch: "
                                    "send rows of different kinds as separate requests",
                                    r->p->slot_names[rp->field], (int)CELER_MIN(value.len, 200), value.data,
                                    (int)CELER_MIN(o.len, 200), o.data);
        }
    } else {
        const char *param = NULL;
        for (int i = 0; i < r->n_params && !param; i++)
            if (!strcmp(r->param_keys[i], rp->parameter)) param = r->param_values[i];
        value = celer_str_c(param);
        if (!param) {
            if (rp->default_target >= 0) {
                *next = rp->default_target;
                return CELER_OK;
            }
            return celer_errorf(CELER_ERR_INVALID, "missing request parameter '%s' (the route has no default)", rp->parameter);
        }
    }
    for (int i = 0; i < rp->n_cases; i++)
        if (celer_str_eq(celer_str_c(rp->values[i]), value)) {
            *next = rp->targets[i];
            return CELER_OK;
        }
    if (rp->default_target >= 0) {
        *next = rp->default_target;
        return CELER_OK;
    }
    char known[512] = "";
    for (int i = 0; i < rp->n_cases; i++) {
        size_t l = strlen(known);
        snprintf(known + l, sizeof known - l, "%s'%s'", i ? ", " : "", rp->values[i]);
    }
    return celer_errorf(CELER_ERR_INVALID, "%s '%s' is '%.*s', which no case matches (cases: %s) and there is no default",
                        rp->field >= 0 ? "field" : "parameter",
                        rp->field >= 0 ? r->p->slot_names[rp->field] : rp->parameter, (int)CELER_MIN(value.len, 200),
                        value.data, known);
}

/* True when slot `slot` may still be read: a pipeline output, or an input of an instruction from
 * the program counter on (jumps only go forward, so nothing before it runs again). */
static bool slot_needed(const celer_pipeline_run *r, int slot) {
    const celer_pipeline *p = r->p;
    for (int i = 0; i < p->n_outputs; i++)
        if (p->output_slots[i] == slot) return true;
    for (int k = r->pc; k < p->n_instrs; k++) {
        const instr *in = &p->instrs[k];
        if (in->op == OP_ROUTE && ((const route_params *)in->step.params)->field == slot) return true;
        if (in->op == OP_STEP || in->op == OP_MODEL)
            for (int j = 0; j < in->step.n_in; j++)
                if (in->step.in[j] == slot) return true;
    }
    return false;
}

/* Frees the run's images (all of them, or those no slot still needed points into: steps copy,
 * never alias, so the slot that pl_out_image set is the only way to reach one) and gives their
 * bytes back to the budget. */
static void free_images(celer_pipeline_run *r, bool all) {
    image_buf **link = &r->x.images;
    while (*link) {
        image_buf *b = *link;
        const char *lo = b->data, *hi = lo + b->bytes;
        bool live = false;
        for (int s = 0; !all && !live && s < r->p->n_slots; s++) {
            const pl_value *v = &r->x.slots[s];
            live = v->set && (const char *)v->t.data >= lo && (const char *)v->t.data < hi && slot_needed(r, s);
        }
        if (live) {
            link = &b->next;
            continue;
        }
        *link = b->next;
        free(b->data);
        pl_image_give(b->bytes);
    }
}

void celer_pipeline_run_end(celer_pipeline_run *r) {
    if (r) free_images(r, true);
}

celer_status celer_pipeline_run_steps(celer_pipeline_run *r, const celer_pipeline_call **call) {
    *call = NULL;
    const celer_pipeline *p = r->p;
    if (r->waiting) return celer_errorf(CELER_ERR_INTERNAL, "pipeline run waits for a model call");
    if (r->done) return CELER_OK;
    if (r->x.status) { /* failed in a batch step */
        const instr *in = &p->instrs[r->pc];
        free_images(r, true);
        return celer_errorf(r->x.status, "%s (%s line %d): %s", in->step.label, p->path, in->step.line, r->x.msg);
    }
    if (!r->started) {
        r->started = true;
        CELER_TRY(start(r));
    }
    while (r->pc < p->n_instrs) {
        const instr *in = &p->instrs[r->pc];
        if (r->x.images) free_images(r, false); /* those the steps before read last */
        int64_t t0 = now_ns();
        celer_status st = CELER_OK;
        int next = r->pc + 1;
        switch (in->op) {
        case OP_JUMP: next = in->jump; break;
        case OP_ROUTE: st = run_route(r, in, &next); break;
        case OP_STEP:
            if (in->step.kind->run_batch && r->batching) {
                r->call = (celer_pipeline_call){.batch_step = in->step.index};
                r->call_start = t0;
                r->waiting = true;
                *call = &r->call;
                return CELER_OK;
            }
            for (int i = 0; i < in->step.n_in; i++) r->x.ins[i] = r->x.slots[in->step.in[i]];
            if (in->step.kind->run) {
                st = in->step.kind->run(&in->step, &r->x);
            } else {
                pl_exec *one = &r->x;
                r->x.status = CELER_OK;
                in->step.kind->run_batch(&in->step, &one, 1);
                st = r->x.status;
                if (st) celer_errorf(st, "%s", r->x.msg);
            }
            break;
        case OP_MODEL: {
            const model_params *m = in->step.params;
            for (int i = 0; i < in->step.n_in; i++) r->call_inputs[i] = r->x.slots[in->step.in[i]].t;
            r->call = (celer_pipeline_call){.model = m->name, .version = m->version, .n_inputs = in->step.n_in,
                                            .input_names = m->in_names, .inputs = r->call_inputs};
            r->call_start = t0;
            r->waiting = true;
            *call = &r->call;
            return CELER_OK;
        }
        }
        if (in->op != OP_JUMP) {
            int64_t t1 = now_ns();
            r->step_ns[in->step.index] += t1 - t0;
            if (r->hook) r->hook(r->hook_user, in->step.index, t0, t1);
        }
        if (st) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            free_images(r, true); /* the run is over */
            return celer_errorf(st, "%s (%s line %d): %s", in->step.label, p->path, in->step.line, msg);
        }
        r->pc = next;
    }
    r->done = true;
    if (r->x.images) free_images(r, false); /* all but the outputs' */
    r->outputs = celer_arena_alloc(r->x.arena, sizeof *r->outputs * (size_t)p->n_outputs);
    if (!r->outputs) return celer_error_wrap(celer_error_status(), "pipeline outputs");
    for (int i = 0; i < p->n_outputs; i++) r->outputs[i] = r->x.slots[p->output_slots[i]].t;
    return CELER_OK;
}

celer_status celer_pipeline_resume(celer_pipeline_run *r, const char *const *names, const celer_tensor *outputs,
                                   int n_outputs) {
    const instr *in = &r->p->instrs[r->pc];
    if (!r->waiting || in->op != OP_MODEL)
        return celer_errorf(CELER_ERR_INTERNAL, "pipeline run is not waiting for a model call");
    const model_params *m = in->step.params;
    for (int o = 0; o < in->step.n_out; o++) {
        int found = -1;
        for (int k = 0; k < n_outputs && found < 0; k++)
            if (!strcmp(names[k], m->out_names[o])) found = k;
        if (found < 0)
            return celer_errorf(CELER_ERR_INVALID, "%s: model '%s' has no output '%s'", in->step.label, m->name,
                                m->out_names[o]);
        const celer_tensor *t = &outputs[found];
        celer_tensor *dst = pl_out(&r->x, &in->step, o, t->dtype, &t->shape);
        if (!dst) return celer_error_wrap(celer_error_status(), "%s", in->step.label);
        int64_t n = celer_shape_numel(&t->shape);
        if (t->dtype == CELER_STRING) { /* the model's strings die with its run: copies */
            for (int64_t i = 0; i < n; i++)
                if (celer_str_dup(r->x.arena, ((const celer_str *)t->data)[i], (celer_str *)dst->data + i))
                    return celer_error_wrap(celer_error_status(), "%s", in->step.label);
        } else if (n > 0) {
            memcpy(dst->data, t->data, (size_t)n * celer_dtype_size(t->dtype));
        }
    }
    int64_t t1 = now_ns();
    r->step_ns[in->step.index] += t1 - r->call_start;
    if (r->hook) r->hook(r->hook_user, in->step.index, r->call_start, t1);
    r->waiting = false;
    r->pc++;
    return CELER_OK;
}

void celer_pipeline_set_batching(celer_pipeline_run *r, bool on) { r->batching = on; }

void celer_pipeline_set_step_hook(celer_pipeline_run *r, celer_pipeline_step_fn fn, void *user) {
    r->hook = fn;
    r->hook_user = user;
}

bool celer_pipeline_step_batches(const celer_pipeline *p, int i) {
    for (int k = 0; k < p->n_instrs; k++)
        if (p->instrs[k].op == OP_STEP && p->instrs[k].step.index == i) return p->instrs[k].step.kind->run_batch != NULL;
    return false;
}

void celer_pipeline_run_batch(celer_pipeline_run *const *runs, int n) {
    if (n < 1) return;
    const celer_pipeline *p = runs[0]->p;
    int pc = runs[0]->pc;
    const instr *in = &p->instrs[pc];
    bool batch_step = in->op == OP_STEP && in->step.kind->run_batch;
    pl_exec *xs[CELER_MAX_BATCH_JOBS];
    int m = 0;
    int64_t now;
    for (int j = 0; j <= n; j++) {
        if (j < n) {
            celer_pipeline_run *r = runs[j];
            if (r->p != p || r->pc != pc || !r->waiting || !batch_step) { /* misuse: that run fails */
                celer_errorf(CELER_ERR_INTERNAL, "pipeline run is not waiting at this batch step");
                pl_fail(&r->x, CELER_ERR_INTERNAL);
                r->waiting = false;
                continue;
            }
            for (int i = 0; i < in->step.n_in; i++) r->x.ins[i] = r->x.slots[in->step.in[i]];
            r->x.status = CELER_OK;
            xs[m++] = &r->x;
        }
        if (m == (int)CELER_ARRAY_LEN(xs) || (j == n && m)) {
            in->step.kind->run_batch(&in->step, xs, m);
            now = now_ns();
            for (int i = 0; i < m; i++) {
                celer_pipeline_run *r = (celer_pipeline_run *)((char *)xs[i] - offsetof(celer_pipeline_run, x));
                r->step_ns[in->step.index] += now - r->call_start;
                if (r->hook) r->hook(r->hook_user, in->step.index, r->call_start, now);
                r->waiting = false;
                if (!r->x.status) r->pc++;
            }
            m = 0;
        }
    }
}

const celer_tensor *celer_pipeline_run_outputs(const celer_pipeline_run *r) { return r->outputs; }
const int64_t *celer_pipeline_run_step_ns(const celer_pipeline_run *r) { return r->step_ns; }
