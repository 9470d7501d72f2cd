/* KServe v2 / Triton inference protocol: datatype table, infer request decoding (JSON, binary
 * tensor extension, raw body), response encoding, and the KServe v1 predict form. */
#include "server/kserve.h"
#include "server/body.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the binary tensor extension is little-endian; celer copies tensor bytes as they are"
#endif

static const char *dt_name(celer_dtype t) {
    const char *n = celer_dtype_kserve_name(t);
    return n ? n : celer_dtype_name(t);
}

/* "[-1,3]": KServe writes variable dims as -1. */
const char *celer_kserve_dims_text(const int64_t *dims, int rank, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* "x, y" (truncated with "..." when long), for messages. */
const char *celer_kserve_spec_names(const celer_kserve_tensor_spec *spec, int n_spec, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < n_spec && n + 4 < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", spec[i].name);
        if (w < 0 || (size_t)w >= cap - n) {
            snprintf(buf + (cap > 4 ? cap - 4 : 0), 4, "...");
            return buf;
        }
        n += (size_t)w;
    }
    return buf;
}

static int find_spec(const celer_kserve_tensor_spec *spec, int n_spec, const char *name) {
    for (int i = 0; i < n_spec; i++)
        if (strcmp(spec[i].name, name) == 0) return i;
    return -1;
}

static const char *what_name(celer_arena *arena, const char *fmt, const char *name) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, fmt, name);
    const char *w = celer_arena_strndup(arena, tmp, strlen(tmp));
    return w ? w : "input";
}

/* A non-negative JSON integer (no fraction or exponent) from a number node. */
static bool json_uint(const celer_json *v, uint64_t *out) {
    if (!v || v->type != CELER_JSON_NUMBER || v->raw_len == 0 || v->raw_len > 19) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if (c < '0' || c > '9') return false;
        x = x * 10 + (uint64_t)(c - '0');
    }
    *out = x;
    return true;
}

/* A shape: a JSON array of non-negative integers (a numeric span, or [] for a scalar). */
static celer_status parse_shape(const celer_json *v, celer_shape *s, const char *what) {
    s->rank = 0;
    if (!v) return celer_errorf(CELER_ERR_INVALID, "%s: missing 'shape'", what);
    if (v->type == CELER_JSON_ARRAY && v->n == 0) return CELER_OK;
    if (v->type != CELER_JSON_NUMERIC_ARRAY) goto bad;
    const char *p = v->raw + 1, *end = v->raw + v->raw_len - 1; /* inside the brackets */
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p >= end || *p < '0' || *p > '9') goto bad;
        if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') goto bad;
        uint64_t x = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (x > (uint64_t)INT64_MAX / 10) goto bad;
            x = x * 10 + (uint64_t)(*p++ - '0');
        }
        if (x > (uint64_t)INT64_MAX) goto bad;
        if (s->rank == CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_LIMIT, "%s: shape has more than %d dimensions", what, CELER_MAX_RANK);
        s->dims[s->rank++] = (int64_t)x;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p >= end) return CELER_OK;
        if (*p++ != ',') goto bad;
    }
bad:
    return celer_errorf(CELER_ERR_INVALID, "%s: 'shape' must be an array of non-negative integers, got %.*s", what,
                        (int)(v->raw_len > 60 ? 60 : v->raw_len), v->raw);
}

/* Checks a request shape against the spec. */
celer_status celer_kserve_check_shape(const celer_kserve_tensor_spec *sp, const celer_shape *s, const char *what) {
    char a[200], b[200];
    if (s->rank != sp->rank)
        return celer_errorf(CELER_ERR_SHAPE, "%s: expected shape %s (rank %d), got %s", what,
                            celer_kserve_dims_text(sp->dims, sp->rank, a, sizeof a), sp->rank, celer_kserve_dims_text(s->dims, s->rank, b, sizeof b));
    for (int d = 0; d < s->rank; d++)
        if (sp->dims[d] >= 0 && sp->dims[d] != s->dims[d])
            return celer_errorf(CELER_ERR_SHAPE, "%s: dimension %d is %lld, the model expects %lld (shape %s, got %s)", what, d,
                                (long long)s->dims[d], (long long)sp->dims[d], celer_kserve_dims_text(sp->dims, sp->rank, a, sizeof a),
                                celer_kserve_dims_text(s->dims, s->rank, b, sizeof b));
    return CELER_OK;
}

/* Number of leaf elements in JSON tensor data (for messages before allocating). */
static size_t count_leaves(const celer_json *v) {
    if (v->type == CELER_JSON_ARRAY) {
        size_t n = 0;
        for (int i = 0; i < v->n; i++) n += count_leaves(&v->items[i]);
        return n;
    }
    if (v->type != CELER_JSON_NUMERIC_ARRAY) return 1;
    size_t n = 0;
    bool after_sep = true;
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if (c == '[' || c == ',') after_sep = true;
        else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ']') {
            if (after_sep) n++;
            after_sep = false;
        }
    }
    return n;
}

/* Decodes JSON data into a fresh arena buffer, refusing counts the text cannot hold before
 * allocating (each element takes at least one byte). `exact`: nesting must match the shape (v1,
 * whose shape comes from it); else any nesting of the right element count, as Triton reads v2. */
static celer_status decode_json_data(const celer_json *data, celer_dtype dtype, const celer_shape *shape, bool exact,
                                     celer_arena *arena, const char *what, void **out) {
    int64_t numel = celer_shape_numel(shape);
    char a[200];
    if (numel < 0)
        return celer_errorf(CELER_ERR_LIMIT, "%s: shape %s is too large", what, celer_kserve_dims_text(shape->dims, shape->rank, a, sizeof a));
    if ((uint64_t)numel > data->raw_len)
        return celer_errorf(CELER_ERR_SHAPE, "%s: shape %s has %lld elements but data has %zu", what,
                            celer_kserve_dims_text(shape->dims, shape->rank, a, sizeof a), (long long)numel, count_leaves(data));
    size_t esize = celer_dtype_size(dtype), bytes;
    if (celer_mul_size((size_t)numel, esize, &bytes)) return celer_errorf(CELER_ERR_LIMIT, "%s: tensor too large", what);
    void *buf = celer_arena_alloc_uninit(arena, bytes ? bytes : 1); /* the decoder writes every element */
    if (!buf) return celer_error_wrap(celer_error_status(), "%s", what);
    CELER_TRY(exact ? celer_json_decode_tensor_exact(data, dtype, shape, buf, arena, what)
                    : celer_json_decode_tensor(data, dtype, shape, buf, arena, what));
    *out = buf;
    return CELER_OK;
}

static uint32_t read_le32(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* BYTES elements in binary form (kserve.h). */
celer_status celer_kserve_decode_bytes(const char *p, size_t n, size_t numel, bool copy, celer_arena *arena,
                                       const char *what, void **out) {
    if (numel > n / 4)
        return celer_errorf(CELER_ERR_INVALID, "%s: %zu bytes cannot hold %zu BYTES elements (4-byte length each)", what, n, numel);
    celer_str *els = celer_arena_alloc(arena, numel ? numel * sizeof *els : 1);
    if (!els) return CELER_ERR_NOMEM;
    size_t off = 0;
    for (size_t i = 0; i < numel; i++) {
        if (n - off < 4)
            return celer_errorf(CELER_ERR_INVALID, "%s: BYTES element %zu: data ends inside its 4-byte length", what, i);
        uint32_t l = read_le32(p + off);
        off += 4;
        if (l > n - off)
            return celer_errorf(CELER_ERR_INVALID, "%s: BYTES element %zu: length %u but only %zu bytes remain", what, i, l, n - off);
        if (copy) CELER_TRY(celer_str_dup(arena, (celer_str){p + off, l}, &els[i]));
        else els[i] = (celer_str){p + off, l};
        off += l;
    }
    if (off != n)
        return celer_errorf(CELER_ERR_INVALID, "%s: %zu bytes given but the %zu BYTES elements take %zu", what, n, numel, off);
    *out = els;
    return CELER_OK;
}

/* Fixed-size elements from the body: zero-copy when the bytes are aligned for the type. */
static celer_status binary_fixed(const char *p, size_t n, celer_dtype dtype, celer_arena *arena, void **out) {
    size_t esize = celer_dtype_size(dtype);
    if (((uintptr_t)p % esize) == 0) {
        *out = (void *)(uintptr_t)p;
        return CELER_OK;
    }
    void *buf = celer_arena_alloc_uninit(arena, n ? n : 1);
    if (!buf) return CELER_ERR_NOMEM;
    memcpy(buf, p, n);
    *out = buf;
    return CELER_OK;
}

celer_status celer_kserve_decode_raw(const char *body, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                     const char *model, celer_arena *arena, celer_kserve_request *out) {
    memset(out, 0, sizeof *out);
    char names[300], a[200], where[300];
    if (model) snprintf(where, sizeof where, "'%.256s' model configuration", model);
    else snprintf(where, sizeof where, "the model configuration");
    if (n_spec != 1)
        return celer_errorf(CELER_ERR_INVALID,
                            "Raw request must only have 1 input (found 1) to be deduced but got %d inputs in %s: a raw "
                            "binary body (Inference-Header-Content-Length: 0) is the bytes of a model's only input; "
                            "send these (%s) as JSON or with the binary tensor extension",
                            n_spec, where, celer_kserve_spec_names(spec, n_spec, names, sizeof names));
    const celer_kserve_tensor_spec *sp = &spec[0];
    const char *what = what_name(arena, "input '%s'", sp->name);
    celer_tensor t = {.dtype = sp->dtype, .shape = {.rank = sp->rank}};
    /* Triton's config dims are those after the batch dim: the batch is 1, one variable dim among
     * the rest comes from the body length */
    int first = sp->batched && sp->rank > 0 ? 1 : 0, variable = -1, n_variable = 0;
    size_t row_bytes = sp->dtype == CELER_STRING ? 1 : celer_dtype_size(sp->dtype);
    if (first) t.shape.dims[0] = 1;
    for (int d = first; d < sp->rank; d++) {
        t.shape.dims[d] = sp->dims[d];
        if (sp->dims[d] < 0) {
            variable = d;
            n_variable++;
        } else if (celer_mul_size(row_bytes, (size_t)sp->dims[d], &row_bytes)) {
            return celer_errorf(CELER_ERR_LIMIT, "%s: shape too large", what);
        }
    }
    if (sp->dtype == CELER_STRING) {
        /* the body is one element: Triton wants dims [1]; a variable dim is taken as 1 */
        for (int d = first; d < sp->rank; d++)
            if (t.shape.dims[d] < 0) t.shape.dims[d] = 1;
        if (celer_shape_numel(&t.shape) != 1)
            return celer_errorf(CELER_ERR_INVALID,
                                "For BYTE datatype raw input '%s', the model must have input shape [1]: its shape is "
                                "%s, and a raw body is one element",
                                sp->name, celer_kserve_dims_text(sp->dims, sp->rank, a, sizeof a));
        celer_str *el = celer_arena_alloc(arena, sizeof *el);
        if (!el) return celer_error_wrap(celer_error_status(), "%s", what);
        CELER_TRY(celer_str_dup(arena, (celer_str){body, len}, el));
        t.data = el;
    } else {
        size_t esize = celer_dtype_size(sp->dtype), need;
        if (esize == 0 || !celer_dtype_kserve_name(sp->dtype))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: type %s has no KServe datatype", what, celer_dtype_name(sp->dtype));
        if (n_variable > 1)
            return celer_errorf(CELER_ERR_SHAPE,
                                "The shape of the raw input '%s' can not be deduced because there are more than one "
                                "variable-sized dimension: its shape is %s; send JSON or use the binary tensor "
                                "extension with an explicit shape",
                                sp->name, celer_kserve_dims_text(sp->dims, sp->rank, a, sizeof a));
        if (n_variable == 1) {
            if (row_bytes == 0 || len % row_bytes)
                return celer_errorf(CELER_ERR_SHAPE,
                                    "%s: a raw body of %zu bytes does not determine dimension %d of shape %s: it is not "
                                    "a whole number of %zu-byte slices",
                                    what, len, variable, celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a),
                                    row_bytes);
            t.shape.dims[variable] = (int64_t)(len / row_bytes);
        } else if (first && row_bytes && len % row_bytes == 0 && len / row_bytes > 1) {
            t.shape.dims[0] = (int64_t)(len / row_bytes); /* celer: a batch of whole rows */
        }
        int64_t numel = celer_shape_numel(&t.shape);
        if (numel < 0 || celer_mul_size((size_t)numel, esize, &need))
            return celer_errorf(CELER_ERR_LIMIT, "%s: shape too large", what);
        if (len != need)
            return celer_errorf(CELER_ERR_SHAPE, "%s: raw body has %zu bytes but shape %s of %s needs %zu", what, len,
                                celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a), dt_name(sp->dtype), need);
        CELER_TRY(binary_fixed(body, len, sp->dtype, arena, &t.data));
    }
    out->inputs = celer_arena_alloc(arena, sizeof *out->inputs);
    if (!out->inputs) return CELER_ERR_NOMEM;
    out->inputs[0].name = sp->name;
    out->inputs[0].tensor = t;
    out->n_inputs = 1;
    return CELER_OK;
}

/* ---- parameters celer does not act on: refused by name, never ignored ----
 * Request level: Triton's reserved names (and the prefix triton_) celer does not implement (a zero or false value
 * asks for nothing and passes); any other name is the caller's own and reaches pipelines. Tensor
 * level: only the names celer reads (celer_kserve_check_tensor_param). */
static const struct unsupported_param {
    const char *name, *why;
} unsupported_request_params[] = {
    {"sequence_id", "celer has no sequence batching (stateful models are not served)"},
    {"sequence_start", "celer has no sequence batching (stateful models are not served)"},
    {"sequence_end", "celer has no sequence batching (stateful models are not served)"},
    {"priority", "celer has no priority levels"},
    {"headers", "celer does not forward HTTP headers to models"},
};

static const char *unsupported_why(const struct unsupported_param *table, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i].name, name)) return table[i].why;
    return NULL;
}

celer_status celer_kserve_check_request_param(const char *key, bool asks_nothing) {
    const char *why = unsupported_why(unsupported_request_params, CELER_ARRAY_LEN(unsupported_request_params), key);
    if (!why && !strncmp(key, "triton_", 7)) why = "names starting with triton_ are reserved by the protocol";
    if (!why || asks_nothing) return CELER_OK;
    return celer_errorf(CELER_ERR_INVALID, "request parameter '%s' is refused: %s", key, why);
}

/* Refuses a reserved request parameter celer does not implement, unless it asks for nothing. */
static celer_status check_request_param(const char *key, const celer_json *v) {
    bool nothing = (v->type == CELER_JSON_BOOL && !v->boolean) || (v->type == CELER_JSON_NUMBER && v->number == 0) ||
                   (v->type == CELER_JSON_STRING && (!v->string[0] || !strcmp(v->string, "0")));
    return celer_kserve_check_request_param(key, nothing);
}

/* The shared-memory parameters, in the order of celer_kserve_shm_param's answers. */
static const char *const shm_params[3] = {"shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"};

int celer_kserve_shm_param(const char *key) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(key, shm_params[i])) return i;
    return -1;
}

celer_status celer_kserve_check_shm(const bool has[3], const char *what) {
    for (int i = 1; i < 3; i++)
        if (has[i] && !has[0])
            return celer_errorf(CELER_ERR_INVALID,
                                "'%s' can not be specified without 'shared_memory_region' parameter for tensor '%s'",
                                shm_params[i], what);
    if (has[0] && !has[2])
        return celer_errorf(CELER_ERR_INVALID,
                            "'shared_memory_region' needs 'shared_memory_byte_size' (the tensor's bytes in the region) "
                            "for tensor '%s'", what);
    return CELER_OK;
}

celer_status celer_kserve_check_tensor_param(const char *key, const char *const *known, const char *what) {
    for (int i = 0; known && known[i]; i++)
        if (!strcmp(key, known[i])) return CELER_OK;
    if (celer_kserve_shm_param(key) >= 0) return CELER_OK; /* read by each codec */
    if (!known || !known[0]) return celer_errorf(CELER_ERR_INVALID, "%s: unknown parameter '%s' (celer reads none here)", what, key);
    char list[200] = "";
    for (int i = 0; known[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", known[i]);
    }
    return celer_errorf(CELER_ERR_INVALID, "%s: unknown parameter '%s' (celer reads %s here)", what, key, list);
}

/* Refuses every parameter of an input or output (`what`: "output 'x'") not in `known`. */
static celer_status check_tensor_params(const celer_json *params, const char *const *known, const char *what) {
    for (int i = 0; i < params->n; i++) CELER_TRY(celer_kserve_check_tensor_param(params->keys[i], known, what));
    return CELER_OK;
}

/* The shared-memory parameters of an input or output (`name`: the tensor's) from its JSON
 * parameters object: a region's name, a non-negative offset and byte size. */
static celer_status parse_shm(const celer_json *params, const char *name, celer_kserve_shm *shm) {
    memset(shm, 0, sizeof *shm);
    if (!params) return CELER_OK;
    bool has[3];
    for (int i = 0; i < 3; i++) {
        const celer_json *v = celer_json_get(params, shm_params[i]);
        has[i] = v != NULL;
        if (!v) continue;
        if (i == 0) {
            if (v->type != CELER_JSON_STRING || memchr(v->string, 0, v->string_len))
                return celer_errorf(CELER_ERR_INVALID,
                                    "Unable to parse 'shared_memory_region' of tensor '%s': expected a string (a "
                                    "registered region's name), got %.*s", name, (int)CELER_MIN(v->raw_len, 40), v->raw);
            shm->region = v->string;
        } else if (!json_uint(v, i == 1 ? &shm->offset : &shm->byte_size)) {
            return celer_errorf(CELER_ERR_INVALID, "Unable to parse '%s' of tensor '%s': expected an integer >= 0, got %.*s",
                                shm_params[i], name, (int)CELER_MIN(v->raw_len, 40), v->raw);
        }
    }
    return celer_kserve_check_shm(has, name);
}

static celer_status parse_outputs(const celer_json *outputs, celer_arena *arena, celer_kserve_request *out) {
    if (outputs->type != CELER_JSON_ARRAY) return celer_errorf(CELER_ERR_INVALID, "'outputs' must be an array of objects");
    if (outputs->n > CELER_KSERVE_MAX_TENSORS)
        return celer_errorf(CELER_ERR_LIMIT, "%d outputs requested; at most %d are allowed", outputs->n, CELER_KSERVE_MAX_TENSORS);
    if (outputs->n == 0) return CELER_OK;
    out->outputs = celer_arena_alloc(arena, (size_t)outputs->n * sizeof *out->outputs);
    if (!out->outputs) return CELER_ERR_NOMEM;
    for (int i = 0; i < outputs->n; i++) {
        const celer_json *o = &outputs->items[i], *name = celer_json_get(o, "name");
        if (o->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "outputs[%d] must be an object", i);
        if (!name || name->type != CELER_JSON_STRING)
            return celer_errorf(CELER_ERR_INVALID, "outputs[%d]: missing or non-string 'name'", i);
        for (int k = 0; k < i; k++)
            if (strcmp(out->outputs[k].name, name->string) == 0)
                return celer_errorf(CELER_ERR_INVALID, "output '%s' already exists in request: it is requested twice",
                                    name->string);
        const celer_json *params = celer_json_get(o, "parameters");
        bool binary = false;
        uint32_t classification = 0;
        if (params) {
            static const char *const known[] = {"binary_data", "classification", NULL};
            if (params->type != CELER_JSON_OBJECT)
                return celer_errorf(CELER_ERR_INVALID, "output '%s': 'parameters' must be an object", name->string);
            char what[300];
            snprintf(what, sizeof what, "output '%.256s'", name->string);
            CELER_TRY(parse_shm(params, name->string, &out->outputs[i].shm));
            if (out->outputs[i].shm.region && celer_json_get(params, "classification"))
                return celer_errorf(CELER_ERR_INVALID, "Output can't set both 'shared_memory_region' and 'classification' "
                                    "(output '%s')", name->string);
            CELER_TRY(check_tensor_params(params, known, what));
            const celer_json *bd = celer_json_get(params, "binary_data");
            if (bd) {
                if (bd->type != CELER_JSON_BOOL)
                    return celer_errorf(CELER_ERR_INVALID, "output '%s': parameters.binary_data must be true or false", name->string);
                binary = bd->boolean;
            }
            const celer_json *cl = celer_json_get(params, "classification");
            if (cl) { /* Triton: an unsigned integer; 0 asks for the tensor itself */
                uint64_t k;
                if (!json_uint(cl, &k))
                    return celer_errorf(CELER_ERR_INVALID,
                                        "Unable to set 'classification': %s: expected a non-negative integer (the number "
                                        "of classes), got %.*s",
                                        what, (int)CELER_MIN(cl->raw_len, 40), cl->raw);
                classification = k > UINT32_MAX ? UINT32_MAX : (uint32_t)k; /* more than there are: all of them */
            }
            if (binary && out->outputs[i].shm.region)
                return celer_errorf(CELER_ERR_INVALID, "Output can't set both 'shared_memory_region' and 'binary_data' "
                                    "(output '%s')", name->string);
        }
        out->outputs[i].name = name->string;
        out->outputs[i].binary = binary;
        out->outputs[i].classification = classification;
    }
    out->n_outputs = outputs->n;
    return CELER_OK;
}

static celer_status parse_parameters(const celer_json *params, celer_arena *arena, celer_kserve_request *out) {
    if (params->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "request 'parameters' must be an object");
    for (int i = 0; i < params->n; i++) CELER_TRY(check_request_param(params->keys[i], &params->items[i]));
    const celer_json *bdo = celer_json_get(params, "binary_data_output");
    if (bdo) {
        if (bdo->type != CELER_JSON_BOOL)
            return celer_errorf(CELER_ERR_INVALID, "parameters.binary_data_output must be true or false");
        out->binary_data_output = bdo->boolean;
    }
    if (arena) { /* a parameter lost to a failed allocation would change the answer: fail instead */
        out->param_keys = celer_arena_alloc(arena, sizeof(char *) * (size_t)(params->n + 1) * 2);
        if (!out->param_keys) return celer_error_wrap(celer_error_status(), "request parameters");
        out->param_values = out->param_keys + params->n + 1;
        for (int i = 0; i < params->n; i++) {
            const celer_json *v = &params->items[i];
            const char *text = v->type == CELER_JSON_STRING ? v->string
                               : v->type == CELER_JSON_BOOL ? (v->boolean ? "true" : "false")
                               : NULL;
            if (v->type == CELER_JSON_NUMBER && !(text = celer_arena_strndup(arena, v->raw, v->raw_len)))
                return celer_error_wrap(celer_error_status(), "request parameter '%s'", params->keys[i]);
            if (!text) continue;
            out->param_keys[out->n_params] = params->keys[i];
            out->param_values[out->n_params++] = text;
        }
    }
    const celer_json *timeout = celer_json_get(params, "timeout");
    if (timeout) {
        uint64_t us;
        if (!json_uint(timeout, &us) || us > (uint64_t)INT64_MAX)
            return celer_errorf(CELER_ERR_INVALID, "parameters.timeout must be a non-negative integer (microseconds), got %.*s",
                                (int)(timeout->raw_len > 40 ? 40 : timeout->raw_len), timeout->raw);
        out->timeout_us = (int64_t)us;
    }
    return CELER_OK;
}

celer_status celer_kserve_decode_infer(const char *body, size_t len, size_t json_len, const celer_kserve_tensor_spec *spec,
                                       int n_spec, celer_arena *arena, celer_kserve_request *out) {
    memset(out, 0, sizeof *out);
    if (json_len == 0) return celer_kserve_decode_raw(body, len, spec, n_spec, NULL, arena, out);
    bool has_binary = json_len != SIZE_MAX;
    size_t jl = has_binary ? json_len : len;
    if (jl > len)
        return celer_errorf(CELER_ERR_PARSE, "Inference-Header-Content-Length is %zu but the body has only %zu bytes", jl, len);
    celer_json *root;
    celer_status st = celer_json_parse(body, jl, arena, &root);
    if (st) return celer_error_wrap(st, "request body");
    if (root->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "request body must be a JSON object");

    const celer_json *id = celer_json_get(root, "id");
    if (id) {
        if (id->type != CELER_JSON_STRING) return celer_errorf(CELER_ERR_INVALID, "request 'id' must be a string");
        out->id = id->string;
    }
    const celer_json *params = celer_json_get(root, "parameters");
    if (params) CELER_TRY(parse_parameters(params, arena, out));
    const celer_json *outputs = celer_json_get(root, "outputs");
    if (outputs) CELER_TRY(parse_outputs(outputs, arena, out));

    const celer_json *inputs = celer_json_get(root, "inputs");
    if (!inputs) return celer_errorf(CELER_ERR_INVALID, "request has no 'inputs'");
    if (inputs->type != CELER_JSON_ARRAY) return celer_errorf(CELER_ERR_INVALID, "'inputs' must be an array of objects");
    if (inputs->n > CELER_KSERVE_MAX_TENSORS)
        return celer_errorf(CELER_ERR_LIMIT, "request has %d inputs; at most %d are allowed", inputs->n, CELER_KSERVE_MAX_TENSORS);
    out->inputs = celer_arena_alloc(arena, (size_t)(inputs->n ? inputs->n : 1) * sizeof *out->inputs);
    uint8_t *seen = celer_arena_alloc(arena, (size_t)(n_spec > 0 ? n_spec : 1));
    if (!out->inputs || !seen) return CELER_ERR_NOMEM;

    const char *tail = body + jl;
    size_t remaining = len - jl;
    char names[300], a[200];
    for (int i = 0; i < inputs->n; i++) {
        const celer_json *in = &inputs->items[i];
        if (in->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "inputs[%d] must be an object", i);
        const celer_json *name = celer_json_get(in, "name");
        if (!name || name->type != CELER_JSON_STRING)
            return celer_errorf(CELER_ERR_INVALID, "inputs[%d]: missing or non-string 'name'", i);
        int si = find_spec(spec, n_spec, name->string);
        if (si < 0)
            return celer_errorf(CELER_ERR_INVALID, "unknown input '%s' (model inputs: %s)", name->string,
                                celer_kserve_spec_names(spec, n_spec, names, sizeof names));
        if (seen[si])
            return celer_errorf(CELER_ERR_INVALID, "input '%s' already exists in request: it is given twice", name->string);
        seen[si] = 1;
        const celer_kserve_tensor_spec *sp = &spec[si];
        const char *what = what_name(arena, "input '%s'", name->string);

        const celer_json *dt = celer_json_get(in, "datatype");
        if (!dt || dt->type != CELER_JSON_STRING)
            return celer_errorf(CELER_ERR_INVALID, "%s: missing or non-string 'datatype' (expected %s)", what, dt_name(sp->dtype));
        celer_dtype dtype = celer_dtype_from_kserve_name(dt->string);
        if (dtype == CELER_UNDEFINED)
            return celer_errorf(CELER_ERR_DTYPE, "%s: unknown datatype '%.40s' (expected %s)", what, dt->string, dt_name(sp->dtype));
        if (dtype != sp->dtype)
            return celer_errorf(CELER_ERR_DTYPE, "%s: expected %s, got %s", what, dt_name(sp->dtype), dt->string);

        celer_tensor t = {.dtype = dtype};
        CELER_TRY(parse_shape(celer_json_get(in, "shape"), &t.shape, what));
        CELER_TRY(celer_kserve_check_shape(sp, &t.shape, what));
        int64_t numel = celer_shape_numel(&t.shape);
        if (numel < 0)
            return celer_errorf(CELER_ERR_LIMIT, "%s: shape %s is too large", what, celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a));

        const celer_json *ip = celer_json_get(in, "parameters"), *bds = NULL;
        celer_kserve_shm shm = {0};
        if (ip) {
            if (ip->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "%s: 'parameters' must be an object", what);
            static const char *const known[] = {"binary_data_size", NULL};
            CELER_TRY(check_tensor_params(ip, known, what));
            CELER_TRY(parse_shm(ip, name->string, &shm));
            bds = celer_json_get(ip, "binary_data_size");
        }
        const celer_json *data = celer_json_get(in, "data");
        if (shm.region && (data || bds))
            return celer_errorf(CELER_ERR_INVALID,
                                "Input must set only one of the following fields: 'data', 'binary_data_size' in "
                                "'parameters', 'shared_memory_region' in 'parameters'. But set%s%s 'shared_memory_region' "
                                "(%s)", data ? " 'data'" : "", bds ? " 'binary_data_size'" : "", what);
        if (shm.region) {
            out->inputs[i].shm = shm; /* read by the service from the region; t.data stays NULL */
        } else if (bds) {
            uint64_t size;
            if (!json_uint(bds, &size))
                return celer_errorf(CELER_ERR_INVALID, "%s: parameters.binary_data_size must be a non-negative integer", what);
            if (data) return celer_errorf(CELER_ERR_INVALID, "%s: has both 'data' and parameters.binary_data_size", what);
            if (!has_binary)
                return celer_errorf(CELER_ERR_INVALID,
                                    "%s: binary_data_size given but the request has no Inference-Header-Content-Length header",
                                    what);
            if (size > remaining)
                return celer_errorf(CELER_ERR_INVALID, "%s: binary_data_size %llu but only %zu bytes remain in the body", what,
                                    (unsigned long long)size, remaining);
            if (dtype == CELER_STRING) {
                CELER_TRY(celer_kserve_decode_bytes(tail, (size_t)size, (size_t)numel, true, arena, what, &t.data));
            } else {
                size_t need;
                if (celer_mul_size((size_t)numel, celer_dtype_size(dtype), &need))
                    return celer_errorf(CELER_ERR_LIMIT, "%s: tensor too large", what);
                if (size != need)
                    return celer_errorf(CELER_ERR_INVALID, "%s: binary_data_size %llu but %zu bytes expected (shape %s, %s)", what,
                                        (unsigned long long)size, need, celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a),
                                        dt_name(dtype));
                CELER_TRY(binary_fixed(tail, need, dtype, arena, &t.data));
            }
            tail += size;
            remaining -= (size_t)size;
        } else if (data) {
            CELER_TRY(decode_json_data(data, dtype, &t.shape, false, arena, what, &t.data));
        } else {
            return celer_errorf(CELER_ERR_INVALID, "%s: no 'data' and no parameters.binary_data_size", what);
        }
        out->inputs[i].name = name->string;
        out->inputs[i].tensor = t;
    }
    out->n_inputs = inputs->n;
    if (has_binary && remaining)
        return celer_errorf(CELER_ERR_INVALID, "%zu trailing bytes after the binary inputs", remaining);
    for (int s = 0; s < n_spec; s++)
        if (!seen[s] && !spec[s].optional) return celer_errorf(CELER_ERR_INVALID, "missing input '%s'", spec[s].name);
    return CELER_OK;
}

/* ---- responses ---- */

static void write_shape(celer_jbuf *b, const celer_shape *s) {
    celer_jbuf_raw(b, "[", 1);
    for (int d = 0; d < s->rank; d++) {
        if (d) celer_jbuf_raw(b, ",", 1);
        celer_jbuf_int(b, s->dims[d]);
    }
    celer_jbuf_raw(b, "]", 1);
}

/* Byte size of an output in binary form (kserve.h). */
celer_status celer_kserve_binary_size(const celer_tensor *t, const char *name, size_t *out) {
    if (t->dtype != CELER_STRING) {
        celer_status st = celer_tensor_bytes(t, out);
        return st ? celer_error_wrap(st, "output '%s'", name) : CELER_OK;
    }
    int64_t n = celer_shape_numel(&t->shape);
    if (n < 0) return celer_errorf(CELER_ERR_SHAPE, "output '%s': unknown shape", name);
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l = ((const celer_str *)t->data)[i].len;
        if (l > UINT32_MAX || celer_add_size(total, 4 + l, &total))
            return celer_errorf(CELER_ERR_LIMIT, "output '%s': BYTES element too large", name);
    }
    *out = total;
    return CELER_OK;
}

/* Index of the first element of a BYTES tensor that is not UTF-8 text (a JSON string cannot carry
 * it), or -1 (also for other dtypes). */
static int64_t first_non_text(const celer_tensor *t) {
    int64_t n = t->dtype == CELER_STRING ? celer_shape_numel(&t->shape) : 0;
    for (int64_t i = 0; i < n; i++) {
        celer_str s = ((const celer_str *)t->data)[i];
        if (!celer_json_utf8_valid(s.data, s.len)) return i;
    }
    return -1;
}

/* For the forms that only have JSON (v1, business objects): a BYTES output must be text. */
static celer_status check_json_text(const char *name, const celer_tensor *t) {
    int64_t i = first_non_text(t);
    if (i < 0) return CELER_OK;
    return celer_errorf(CELER_ERR_UNSUPPORTED,
                        "output '%s' element %lld is not UTF-8 text, which JSON cannot carry: ask for it through "
                        "KServe v2 /infer, which sends such outputs in binary form",
                        name, (long long)i);
}

void celer_kserve_write_binary(celer_jbuf *b, const celer_tensor *t, size_t size) {
    if (t->dtype != CELER_STRING) {
        celer_jbuf_raw(b, t->data, size);
        return;
    }
    int64_t n = celer_shape_numel(&t->shape);
    for (int64_t i = 0; i < n && !b->status; i++) {
        celer_str s = ((const celer_str *)t->data)[i];
        uint32_t l = (uint32_t)s.len; /* checked by binary_size */
        celer_jbuf_raw(b, (const char *)&l, 4);
        celer_jbuf_raw(b, s.data, l);
    }
}

/* The infer response into `out`; binary outputs after the JSON, or, with `body` (whose head `out`
 * is), as its parts by reference. */
static celer_status encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                 const char *const *names, const celer_tensor *outputs, int n_outputs, celer_jbuf *out,
                                 size_t *json_len, celer_body *body) {
    int sel[CELER_KSERVE_MAX_TENSORS];
    bool bin[CELER_KSERVE_MAX_TENSORS];
    size_t bsize[CELER_KSERVE_MAX_TENSORS];
    const celer_kserve_shm *shm[CELER_KSERVE_MAX_TENSORS] = {0}; /* written into a region by the service */
    int n_sel = 0;
    bool all_binary = req && req->binary_data_output;
    if (req && req->n_outputs > 0) {
        if (req->n_outputs > CELER_KSERVE_MAX_TENSORS) return celer_errorf(CELER_ERR_LIMIT, "too many outputs requested");
        for (int r = 0; r < req->n_outputs; r++) {
            int found = -1;
            for (int i = 0; i < n_outputs && found < 0; i++)
                if (strcmp(names[i], req->outputs[r].name) == 0) found = i;
            if (found < 0) return celer_errorf(CELER_ERR_NOT_FOUND, "unknown output '%s' requested", req->outputs[r].name);
            sel[n_sel] = found;
            if (req->outputs[r].shm.region) shm[n_sel] = &req->outputs[r].shm;
            bin[n_sel++] = !req->outputs[r].shm.region && (all_binary || req->outputs[r].binary);
        }
    } else {
        if (n_outputs > CELER_KSERVE_MAX_TENSORS) return celer_errorf(CELER_ERR_LIMIT, "model has too many outputs");
        for (int i = 0; i < n_outputs; i++) {
            sel[n_sel] = i;
            bin[n_sel++] = all_binary;
        }
    }
    for (int k = 0; k < n_sel; k++) {
        const celer_tensor *t = &outputs[sel[k]];
        if (!celer_dtype_kserve_name(t->dtype))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "output '%s' has type %s, which KServe cannot represent", names[sel[k]],
                                celer_dtype_name(t->dtype));
        /* JSON strings carry text only: a BYTES output holding other bytes goes in binary form
         * (its binary_data_size tells the client), rather than losing bytes to U+FFFD */
        if (!bin[k] && !shm[k] && first_non_text(t) >= 0) bin[k] = true;
        if (bin[k] || shm[k]) CELER_TRY(celer_kserve_binary_size(t, names[sel[k]], &bsize[k]));
    }
    celer_jbuf_reset(out);
    celer_jbuf_raw(out, "{\"model_name\":", 14);
    celer_jbuf_str(out, model_name ? model_name : "");
    if (model_version) {
        celer_jbuf_raw(out, ",\"model_version\":", 17);
        celer_jbuf_str(out, model_version);
    }
    if (req && req->id) {
        celer_jbuf_raw(out, ",\"id\":", 6);
        celer_jbuf_str(out, req->id);
    }
    celer_jbuf_raw(out, ",\"outputs\":[", 12);
    for (int k = 0; k < n_sel; k++) {
        const celer_tensor *t = &outputs[sel[k]];
        celer_jbuf_raw(out, k ? ",{\"name\":" : "{\"name\":", k ? 9 : 8);
        celer_jbuf_str(out, names[sel[k]]);
        const char *dtn = celer_dtype_kserve_name(t->dtype); /* plain ASCII: no escaping */
        celer_jbuf_raw(out, ",\"datatype\":\"", 13);
        celer_jbuf_raw(out, dtn, strlen(dtn));
        celer_jbuf_raw(out, "\",\"shape\":", 10);
        write_shape(out, &t->shape);
        if (shm[k]) { /* its bytes are in the region: where, and how many */
            celer_jbuf_raw(out, ",\"parameters\":{\"shared_memory_region\":", 38);
            celer_jbuf_str(out, shm[k]->region);
            celer_jbuf_raw(out, ",\"shared_memory_offset\":", 24);
            celer_jbuf_uint(out, shm[k]->offset);
            celer_jbuf_raw(out, ",\"shared_memory_byte_size\":", 27);
            celer_jbuf_uint(out, bsize[k]);
            celer_jbuf_raw(out, "}}", 2);
        } else if (bin[k]) {
            celer_jbuf_raw(out, ",\"parameters\":{\"binary_data_size\":", 34);
            celer_jbuf_uint(out, bsize[k]);
            celer_jbuf_raw(out, "}}", 2);
        } else {
            celer_jbuf_raw(out, ",\"data\":", 8);
            celer_jbuf_tensor_data(out, t);
            celer_jbuf_raw(out, "}", 1);
        }
    }
    celer_jbuf_raw(out, "]}", 2);
    if (json_len) *json_len = out->len;
    for (int k = 0; k < n_sel; k++) {
        if (!bin[k]) continue;
        if (body) celer_body_tensor(body, &outputs[sel[k]], bsize[k]);
        else celer_kserve_write_binary(out, &outputs[sel[k]], bsize[k]);
    }
    return out->status;
}

/* ---- classification (Triton's extension) ---- */

#define CLASSIFY_MAX_ELEMENTS 1000000 /* per row, as Triton caps it */

bool celer_kserve_classifiable(celer_dtype dtype) {
    switch (dtype) {
    case CELER_UINT8: case CELER_UINT16: case CELER_UINT32: case CELER_UINT64:
    case CELER_INT8: case CELER_INT16: case CELER_INT32: case CELER_INT64:
    case CELER_FLOAT: case CELER_DOUBLE: case CELER_FLOAT16: case CELER_BFLOAT16: return true;
    default: return false;
    }
}

celer_status celer_kserve_classify_check(celer_dtype dtype, const char *name) {
    if (celer_kserve_classifiable(dtype)) return CELER_OK;
    return celer_errorf(CELER_ERR_INVALID,
                        "class result not available for output due to unsupported type '%s': output '%s' cannot be "
                        "asked for 'classification'; ask for it without",
                        dt_name(dtype), name);
}

/* One row being ranked: its elements, for the comparison. */
typedef struct class_row {
    const void *data;
    celer_dtype dtype;
} class_row;

/* Element i as a double, for the floating types (NaN kept). */
static double class_float(const class_row *r, uint32_t i) {
    switch (r->dtype) {
    case CELER_FLOAT: return ((const float *)r->data)[i];
    case CELER_DOUBLE: return ((const double *)r->data)[i];
    case CELER_FLOAT16: return celer_half_to_float(((const uint16_t *)r->data)[i]);
    default: return celer_bf16_to_float(((const uint16_t *)r->data)[i]);
    }
}

/* Highest value first; equal values by index; NaN after every number. Integers are compared as
 * they are (no rounding through double). */
static int class_cmp(const void *pa, const void *pb, void *user) {
    const class_row *r = user;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    int c = 0;
    switch (r->dtype) {
#define CMP(T) c = ((const T *)r->data)[a] > ((const T *)r->data)[b] ? -1 : ((const T *)r->data)[a] < ((const T *)r->data)[b]; break
    case CELER_UINT8: CMP(uint8_t);
    case CELER_UINT16: CMP(uint16_t);
    case CELER_UINT32: CMP(uint32_t);
    case CELER_UINT64: CMP(uint64_t);
    case CELER_INT8: CMP(int8_t);
    case CELER_INT16: CMP(int16_t);
    case CELER_INT32: CMP(int32_t);
    case CELER_INT64: CMP(int64_t);
#undef CMP
    default: {
        double x = class_float(r, a), y = class_float(r, b);
        if (isnan(x) || isnan(y)) c = (isnan(x) != 0) - (isnan(y) != 0);
        else c = x > y ? -1 : x < y;
    }
    }
    return c ? c : (a > b) - (a < b);
}

/* Element i as std::to_string writes it; returns the length (buf holds 400 bytes: %f of the
 * largest double has 316 characters). */
static int class_value(const class_row *r, uint32_t i, char *buf, size_t cap) {
    const void *d = r->data;
    switch (r->dtype) {
    case CELER_UINT8: return snprintf(buf, cap, "%d", ((const uint8_t *)d)[i]);
    case CELER_UINT16: return snprintf(buf, cap, "%d", ((const uint16_t *)d)[i]);
    case CELER_UINT32: return snprintf(buf, cap, "%u", ((const uint32_t *)d)[i]);
    case CELER_UINT64: return snprintf(buf, cap, "%llu", (unsigned long long)((const uint64_t *)d)[i]);
    case CELER_INT8: return snprintf(buf, cap, "%d", ((const int8_t *)d)[i]);
    case CELER_INT16: return snprintf(buf, cap, "%d", ((const int16_t *)d)[i]);
    case CELER_INT32: return snprintf(buf, cap, "%d", ((const int32_t *)d)[i]);
    case CELER_INT64: return snprintf(buf, cap, "%lld", (long long)((const int64_t *)d)[i]);
    default: return snprintf(buf, cap, "%f", class_float(r, i));
    }
}

celer_status celer_kserve_classify(const celer_tensor *t, bool batched, uint32_t k, const celer_str *labels,
                                   size_t n_labels, const char *name, celer_arena *arena, celer_tensor *out) {
    CELER_TRY(celer_kserve_classify_check(t->dtype, name));
    int64_t numel = celer_shape_numel(&t->shape);
    if (numel < 0) return celer_errorf(CELER_ERR_SHAPE, "output '%s': unknown shape", name);
    /* Triton: rows when the model batches and the output has a first dim of at least 1 */
    bool rows_first = batched && t->shape.rank > 0 && t->shape.dims[0] > 0;
    int64_t rows = rows_first ? t->shape.dims[0] : 1, per_row = rows_first ? numel / rows : numel;
    if (per_row > CLASSIFY_MAX_ELEMENTS)
        return celer_errorf(CELER_ERR_INVALID, "classification output tensor too large: output '%s' has %lld elements "
                            "per row, at most %d", name, (long long)per_row, CLASSIFY_MAX_ELEMENTS);
    int64_t top = CELER_MIN((int64_t)k, per_row);
    size_t esize = celer_dtype_size(t->dtype);
    uint32_t *idx = celer_arena_alloc_uninit(arena, sizeof *idx * (size_t)(per_row ? per_row : 1));
    celer_str *strs = celer_arena_alloc(arena, sizeof *strs * (size_t)(rows * top > 0 ? rows * top : 1));
    if (!idx || !strs) return celer_error_wrap(celer_error_status(), "classification of output '%s'", name);
    for (int64_t r = 0; r < rows; r++) {
        class_row row = {(const char *)t->data + (size_t)(r * per_row) * esize, t->dtype};
        for (int64_t i = 0; i < per_row; i++) idx[i] = (uint32_t)i;
        qsort_r(idx, (size_t)per_row, sizeof *idx, class_cmp, &row);
        for (int64_t j = 0; j < top; j++) {
            char buf[400];
            int n = class_value(&row, idx[j], buf, sizeof buf);
            n += snprintf(buf + n, sizeof buf - (size_t)n, ":%u", idx[j]);
            const celer_str *label = idx[j] < n_labels && labels[idx[j]].len ? &labels[idx[j]] : NULL;
            size_t len = (size_t)n + (label ? 1 + label->len : 0);
            char *s = celer_arena_alloc_uninit(arena, len + 1);
            if (!s) return celer_error_wrap(celer_error_status(), "classification of output '%s'", name);
            memcpy(s, buf, (size_t)n);
            if (label) {
                s[n] = ':';
                memcpy(s + n + 1, label->data, label->len);
            }
            s[len] = 0;
            strs[r * top + j] = (celer_str){s, len};
        }
    }
    *out = (celer_tensor){.dtype = CELER_STRING, .data = strs};
    if (rows_first) out->shape = (celer_shape){.rank = 2, .dims = {rows, top}};
    else out->shape = (celer_shape){.rank = 1, .dims = {top}};
    return CELER_OK;
}

celer_status celer_kserve_encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                       const char *const *names, const celer_tensor *outputs, int n_outputs, celer_jbuf *out,
                                       size_t *json_len) {
    return encode_infer(req, model_name, model_version, names, outputs, n_outputs, out, json_len, NULL);
}

celer_status celer_kserve_encode_infer_body(const celer_kserve_request *req, const char *model_name,
                                            const char *model_version, const char *const *names,
                                            const celer_tensor *outputs, int n_outputs, celer_body *body,
                                            size_t *json_len) {
    return encode_infer(req, model_name, model_version, names, outputs, n_outputs, &body->head, json_len, body);
}

/* ---- system shared memory: the register request ---- */

celer_status celer_kserve_decode_shm_register(const char *body, size_t len, celer_arena *arena, const char **key,
                                              uint64_t *offset, uint64_t *byte_size) {
    *key = NULL;
    *offset = *byte_size = 0;
    celer_json *root;
    celer_status st = celer_json_parse(body, len, arena, &root);
    if (st) return celer_error_wrap(st, "shared memory register request");
    if (root->type != CELER_JSON_OBJECT)
        return celer_errorf(CELER_ERR_INVALID,
                            "a shared memory register request is a JSON object {\"key\", \"offset\", \"byte_size\"}");
    for (int i = 0; i < root->n; i++)
        if (strcmp(root->keys[i], "key") && strcmp(root->keys[i], "offset") && strcmp(root->keys[i], "byte_size"))
            return celer_errorf(CELER_ERR_INVALID,
                                "unknown field '%.64s' in a shared memory register request (it takes key, offset and "
                                "byte_size)", root->keys[i]);
    const celer_json *k = celer_json_get(root, "key"), *o = celer_json_get(root, "offset"),
                     *b = celer_json_get(root, "byte_size");
    if (!k) return celer_errorf(CELER_ERR_INVALID, "Shared memory register request has no 'key' field");
    if (k->type != CELER_JSON_STRING || memchr(k->string, 0, k->string_len))
        return celer_errorf(CELER_ERR_INVALID, "shared memory register request: 'key' must be a string (a POSIX "
                            "shared-memory name such as \"/input0\")");
    if (!b) return celer_errorf(CELER_ERR_INVALID, "Shared memory register request has no 'byte_size' field");
    if (!json_uint(b, byte_size))
        return celer_errorf(CELER_ERR_INVALID, "shared memory register request: 'byte_size' must be an integer >= 0, got %.*s",
                            (int)CELER_MIN(b->raw_len, 40), b->raw);
    if (o && !json_uint(o, offset))
        return celer_errorf(CELER_ERR_INVALID, "shared memory register request: 'offset' must be an integer >= 0, got %.*s",
                            (int)CELER_MIN(o->raw_len, 40), o->raw);
    *key = k->string;
    return CELER_OK;
}

/* ---- KServe v1 ---- */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Elements of the raw array at p ('[') and where its first element starts. */
static size_t raw_level_count(const char *p, const char *end, const char **first) {
    int depth = 0;
    size_t commas = 0;
    bool any = false;
    *first = NULL;
    for (; p < end; p++) {
        char c = *p;
        if (c == '[') {
            depth++;
            if (depth == 2 && !*first) *first = p;
            if (depth == 2) any = true;
            continue;
        }
        if (c == ']') {
            if (--depth == 0) break;
            continue;
        }
        if (depth == 1) {
            if (c == ',') commas++;
            else if (!is_space(c)) {
                any = true;
                if (!*first) *first = p;
            }
        }
    }
    return any ? commas + 1 : 0;
}

/* The shape implied by JSON data, following the first element at each level (raggedness is
 * caught later by the exact nested decode). */
static celer_status infer_shape(const celer_json *v, celer_shape *s, const char *what) {
    s->rank = 0;
    while (v && v->type == CELER_JSON_ARRAY) {
        if (s->rank == CELER_MAX_RANK) return celer_errorf(CELER_ERR_SHAPE, "%s: data nested deeper than %d levels", what, CELER_MAX_RANK);
        s->dims[s->rank++] = v->n;
        v = v->n ? &v->items[0] : NULL;
    }
    if (!v || v->type != CELER_JSON_NUMERIC_ARRAY) return CELER_OK;
    const char *p = v->raw, *end = v->raw + v->raw_len;
    while (p && *p == '[') {
        if (s->rank == CELER_MAX_RANK) return celer_errorf(CELER_ERR_SHAPE, "%s: data nested deeper than %d levels", what, CELER_MAX_RANK);
        const char *first;
        s->dims[s->rank++] = (int64_t)raw_level_count(p, end, &first);
        p = first;
    }
    return CELER_OK;
}

celer_status celer_kserve_decode_predict(const char *body, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                         celer_arena *arena, celer_kserve_request *out) {
    memset(out, 0, sizeof *out);
    celer_json *root;
    celer_status st = celer_json_parse(body, len, arena, &root);
    if (st) return celer_error_wrap(st, "request body");
    const celer_json *inst = celer_json_get(root, "instances");
    if (!inst) return celer_errorf(CELER_ERR_INVALID, "request body must be a JSON object with an 'instances' array");
    if (inst->type != CELER_JSON_ARRAY && inst->type != CELER_JSON_NUMERIC_ARRAY)
        return celer_errorf(CELER_ERR_INVALID, "'instances' must be an array");
    if (n_spec < 1 || n_spec > CELER_KSERVE_MAX_TENSORS) return celer_errorf(CELER_ERR_INVALID, "model has %d inputs", n_spec);
    char names[300], a[200], b[200];
    bool objects = inst->type == CELER_JSON_ARRAY && inst->n > 0 && inst->items[0].type == CELER_JSON_OBJECT;
    out->inputs = celer_arena_alloc(arena, (size_t)n_spec * sizeof *out->inputs);
    if (!out->inputs) return CELER_ERR_NOMEM;

    if (!objects) {
        if (n_spec != 1)
            return celer_errorf(CELER_ERR_INVALID, "the model has %d inputs (%s): each instance must be an object {input name: value}",
                                n_spec, celer_kserve_spec_names(spec, n_spec, names, sizeof names));
        const celer_kserve_tensor_spec *sp = &spec[0];
        const char *what = what_name(arena, "input '%s'", sp->name);
        celer_tensor t = {.dtype = sp->dtype};
        CELER_TRY(infer_shape(inst, &t.shape, what));
        if (t.shape.rank == 0 || t.shape.dims[0] == 0) return celer_errorf(CELER_ERR_INVALID, "'instances' is empty");
        if (t.shape.rank != sp->rank)
            return celer_errorf(CELER_ERR_SHAPE, "%s: instances form a batch of shape %s but the model input is %s (rank %d)", what,
                                celer_kserve_dims_text(t.shape.dims, t.shape.rank, a, sizeof a), celer_kserve_dims_text(sp->dims, sp->rank, b, sizeof b),
                                sp->rank);
        CELER_TRY(celer_kserve_check_shape(sp, &t.shape, what));
        CELER_TRY(decode_json_data(inst, sp->dtype, &t.shape, true, arena, what, &t.data));
        out->inputs[0].name = sp->name;
        out->inputs[0].tensor = t;
        out->n_inputs = 1;
        return CELER_OK;
    }

    /* one object per instance: {input name: row} */
    int n = inst->n;
    for (int r = 0; r < n; r++) {
        const celer_json *row = &inst->items[r];
        if (row->type != CELER_JSON_OBJECT)
            return celer_errorf(CELER_ERR_INVALID, "instances[%d] must be an object like instances[0]", r);
        for (int k = 0; k < row->n; k++)
            if (find_spec(spec, n_spec, row->keys[k]) < 0)
                return celer_errorf(CELER_ERR_INVALID, "instances[%d]: unknown input '%s' (model inputs: %s)", r, row->keys[k],
                                    celer_kserve_spec_names(spec, n_spec, names, sizeof names));
    }
    for (int s = 0; s < n_spec; s++) {
        const celer_kserve_tensor_spec *sp = &spec[s];
        const char *what = what_name(arena, "input '%s'", sp->name);
        const celer_json *first = celer_json_get(&inst->items[0], sp->name);
        if (!first) return celer_errorf(CELER_ERR_INVALID, "instances[0]: missing input '%s'", sp->name);
        celer_shape row;
        CELER_TRY(infer_shape(first, &row, what));
        if (row.rank + 1 > CELER_MAX_RANK) return celer_errorf(CELER_ERR_SHAPE, "%s: rows nested too deeply", what);
        celer_tensor t = {.dtype = sp->dtype, .shape = {.rank = row.rank + 1, .dims = {n}}};
        memcpy(t.shape.dims + 1, row.dims, (size_t)row.rank * sizeof row.dims[0]);
        CELER_TRY(celer_kserve_check_shape(sp, &t.shape, what));
        int64_t row_numel = celer_shape_numel(&row);
        size_t esize = celer_dtype_size(sp->dtype), row_bytes, total;
        /* every element takes at least a byte of the body */
        size_t all;
        if (row_numel < 0 || (uint64_t)row_numel > first->raw_len || celer_mul_size((size_t)row_numel, esize, &row_bytes) ||
            celer_mul_size(row_bytes, (size_t)n, &total) || celer_mul_size((size_t)row_numel, (size_t)n, &all) || all > len)
            return celer_errorf(CELER_ERR_SHAPE, "%s: rows of shape %s do not fit the request", what,
                                celer_kserve_dims_text(row.dims, row.rank, a, sizeof a));
        char *buf = celer_arena_alloc(arena, total ? total : 1);
        if (!buf) return CELER_ERR_NOMEM;
        for (int r = 0; r < n; r++) {
            const celer_json *v = celer_json_get(&inst->items[r], sp->name);
            if (!v) return celer_errorf(CELER_ERR_INVALID, "instances[%d]: missing input '%s'", r, sp->name);
            char rw[300];
            snprintf(rw, sizeof rw, "instances[%d]: input '%s'", r, sp->name);
            CELER_TRY(celer_json_decode_tensor_exact(v, sp->dtype, &row, buf + (size_t)r * row_bytes, arena, rw));
        }
        t.data = buf;
        out->inputs[s].name = sp->name;
        out->inputs[s].tensor = t;
    }
    out->n_inputs = n_spec;
    return CELER_OK;
}

/* Writes element `i` of `t` as one JSON value. */
static void write_element(celer_jbuf *b, const celer_tensor *t, size_t i) {
    size_t esize = celer_dtype_size(t->dtype);
    celer_tensor one = {.dtype = t->dtype, .shape = {.rank = 1, .dims = {1}}, .data = (char *)t->data + i * esize};
    size_t start = b->len;
    celer_jbuf_tensor_data(b, &one); /* "[v]": drop the brackets */
    if (b->status) return;
    memmove(b->data + start, b->data + start + 1, b->len - start - 2);
    b->len -= 2;
    b->data[b->len] = 0;
}

/* Writes rows [row] of `t` (dims from `level` on) as nested arrays. */
static void write_nested(celer_jbuf *b, const celer_tensor *t, int level, size_t offset) {
    const celer_shape *s = &t->shape;
    if (level == s->rank) {
        write_element(b, t, offset);
        return;
    }
    size_t inner = 1;
    for (int d = level + 1; d < s->rank; d++) inner *= (size_t)s->dims[d];
    if (level == s->rank - 1) { /* innermost: one flat array */
        size_t esize = celer_dtype_size(t->dtype);
        celer_tensor v = {.dtype = t->dtype, .shape = {.rank = 1, .dims = {s->dims[level]}}, .data = (char *)t->data + offset * esize};
        celer_jbuf_tensor_data(b, &v);
        return;
    }
    celer_jbuf_raw(b, "[", 1);
    for (int64_t j = 0; j < s->dims[level] && !b->status; j++) {
        if (j) celer_jbuf_raw(b, ",", 1);
        write_nested(b, t, level + 1, offset + (size_t)j * inner);
    }
    celer_jbuf_raw(b, "]", 1);
}

celer_status celer_kserve_encode_predict(const char *const *names, const celer_tensor *outputs, int n_outputs, celer_jbuf *out) {
    if (n_outputs < 1) return celer_errorf(CELER_ERR_INVALID, "model produced no outputs");
    int64_t rows = outputs[0].shape.rank ? outputs[0].shape.dims[0] : 1;
    for (int i = 0; i < n_outputs; i++) {
        if (celer_shape_numel(&outputs[i].shape) < 0) return celer_errorf(CELER_ERR_SHAPE, "output '%s' has an unknown shape", names[i]);
        if (!celer_dtype_kserve_name(outputs[i].dtype))
            return celer_errorf(CELER_ERR_UNSUPPORTED, "output '%s' has type %s, which JSON responses cannot carry", names[i],
                                celer_dtype_name(outputs[i].dtype));
        if (n_outputs > 1 && (outputs[i].shape.rank == 0 || outputs[i].shape.dims[0] != rows))
            return celer_errorf(CELER_ERR_SHAPE, "output '%s' does not have %lld rows like output '%s'", names[i], (long long)rows,
                                names[0]);
        CELER_TRY(check_json_text(names[i], &outputs[i]));
    }
    celer_jbuf_reset(out);
    celer_jbuf_raw(out, "{\"predictions\":[", 16);
    for (int64_t r = 0; r < rows && !out->status; r++) {
        if (r) celer_jbuf_raw(out, ",", 1);
        if (n_outputs > 1) celer_jbuf_raw(out, "{", 1);
        for (int i = 0; i < n_outputs; i++) {
            const celer_tensor *t = &outputs[i];
            if (n_outputs > 1) {
                if (i) celer_jbuf_raw(out, ",", 1);
                celer_jbuf_str(out, names[i]);
                celer_jbuf_raw(out, ":", 1);
            }
            if (t->shape.rank == 0) {
                write_element(out, t, 0);
                continue;
            }
            size_t row_numel = 1;
            for (int d = 1; d < t->shape.rank; d++) row_numel *= (size_t)t->shape.dims[d];
            write_nested(out, t, 1, (size_t)r * row_numel);
        }
        if (n_outputs > 1) celer_jbuf_raw(out, "}", 1);
    }
    celer_jbuf_raw(out, "]}", 2);
    return out->status;
}

void celer_kserve_encode_error(const char *message, celer_jbuf *out) {
    celer_jbuf_reset(out);
    celer_jbuf_raw(out, "{\"error\":", 9);
    celer_jbuf_str(out, message ? message : "");
    celer_jbuf_raw(out, "}", 1);
}

/* ---- business objects (pipelines) ---- */

#define MAX_OBJECT_ROWS 4096

/* Elements of a JSON array value (a NUMERIC_ARRAY is counted from its text: numbers hold no
 * commas or brackets). -1 when not an array. */
static int64_t array_count(const celer_json *v) {
    if (v->type == CELER_JSON_ARRAY) return v->n;
    if (v->type != CELER_JSON_NUMERIC_ARRAY) return -1;
    int64_t n = 1;
    int depth = 0;
    for (size_t i = 0; i < v->raw_len; i++) {
        char c = v->raw[i];
        if (c == '[') depth++;
        else if (c == ']') depth--;
        else if (c == ',' && depth == 1) n++;
    }
    return n;
}

/* One scalar field value into element `i` of t. */
static celer_status object_scalar(const celer_json *v, celer_tensor *t, int64_t i, celer_arena *arena, const char *what) {
    if (t->dtype == CELER_STRING) {
        if (v->type != CELER_JSON_STRING) return celer_errorf(CELER_ERR_DTYPE, "%s must be a string", what);
        ((celer_str *)t->data)[i] = (celer_str){v->string, v->string_len};
        return CELER_OK;
    }
    if (t->dtype == CELER_BOOL) {
        if (v->type != CELER_JSON_BOOL) return celer_errorf(CELER_ERR_DTYPE, "%s must be true or false", what);
        ((uint8_t *)t->data)[i] = v->boolean;
        return CELER_OK;
    }
    if (v->type == CELER_JSON_NULL && (t->dtype == CELER_FLOAT || t->dtype == CELER_DOUBLE)) {
        if (t->dtype == CELER_FLOAT) ((float *)t->data)[i] = NAN;
        else ((double *)t->data)[i] = NAN;
        return CELER_OK;
    }
    if (v->type != CELER_JSON_NUMBER)
        return celer_errorf(CELER_ERR_DTYPE, "%s must be a number, got %.*s", what, (int)CELER_MIN(v->raw_len, 40), v->raw);
    /* through the tensor decoder on a one-element view, for exact and range-checked parsing */
    celer_json one = {.type = CELER_JSON_NUMERIC_ARRAY};
    char *text = celer_arena_alloc(arena, v->raw_len + 3);
    if (!text) return CELER_ERR_NOMEM;
    text[0] = '[';
    memcpy(text + 1, v->raw, v->raw_len);
    text[v->raw_len + 1] = ']';
    one.raw = text;
    one.raw_len = v->raw_len + 2;
    celer_shape s1 = {.rank = 1, .dims = {1}};
    return celer_json_decode_tensor_exact(&one, t->dtype, &s1, (char *)t->data + (size_t)i * celer_dtype_size(t->dtype), arena,
                                    what);
}

celer_status celer_kserve_decode_object(const celer_json *root, const celer_kserve_tensor_spec *spec, int n_spec,
                                        celer_arena *arena, celer_kserve_request *out) {
    memset(out, 0, sizeof *out);
    out->object_form = true;
    out->object_single = root->type == CELER_JSON_OBJECT;
    int64_t rows = root->type == CELER_JSON_OBJECT ? 1 : root->type == CELER_JSON_ARRAY ? root->n : -1;
    if (rows < 1) return celer_errorf(CELER_ERR_INVALID, "the body must be a JSON object of fields, or a non-empty array of them");
    if (rows > MAX_OBJECT_ROWS) return celer_errorf(CELER_ERR_LIMIT, "%lld objects in one request, at most %d", (long long)rows, MAX_OBJECT_ROWS);
    for (int64_t r = 0; r < rows; r++) {
        const celer_json *o = root->type == CELER_JSON_OBJECT ? root : &root->items[r];
        if (o->type != CELER_JSON_OBJECT) return celer_errorf(CELER_ERR_INVALID, "element %lld of the body is not an object", (long long)r);
        for (int k = 0; k < o->n; k++) {
            bool known = false;
            for (int s = 0; s < n_spec && !known; s++) known = !strcmp(spec[s].name, o->keys[k]);
            if (known) continue;
            char names[512] = "";
            for (int s = 0; s < n_spec; s++) {
                size_t l = strlen(names);
                snprintf(names + l, sizeof names - l, "%s%s", s ? ", " : "", spec[s].name);
            }
            return celer_errorf(CELER_ERR_INVALID, "unknown field '%.100s' (fields: %s)", o->keys[k], names);
        }
    }
    out->inputs = celer_arena_alloc(arena, sizeof *out->inputs * (size_t)(n_spec + 1));
    if (!out->inputs) return CELER_ERR_NOMEM;
    for (int s = 0; s < n_spec; s++) {
        const celer_kserve_tensor_spec *sp = &spec[s];
        const char *what = what_name(arena, "field '%s'", sp->name);
        int64_t present = 0;
        for (int64_t r = 0; r < rows; r++) {
            const celer_json *v = celer_json_get(root->type == CELER_JSON_OBJECT ? root : &root->items[r], sp->name);
            if (v && (v->type != CELER_JSON_NULL || sp->dtype == CELER_FLOAT || sp->dtype == CELER_DOUBLE)) present++;
        }
        if (present == 0) continue;
        if (present != rows && !sp->default_row)
            return celer_errorf(CELER_ERR_INVALID, "%s is in %lld of the %lld objects and has no default", what,
                                (long long)present, (long long)rows);
        /* per-row shape; one variable dim is taken from the first given array's length */
        celer_shape row = {.rank = sp->rank - 1};
        for (int d = 1; d < sp->rank; d++) row.dims[d - 1] = sp->dims[d];
        const celer_json *first = NULL;
        for (int64_t r = 0; r < rows && !first; r++) {
            first = celer_json_get(root->type == CELER_JSON_OBJECT ? root : &root->items[r], sp->name);
            if (first && first->type == CELER_JSON_NULL && sp->dtype != CELER_FLOAT && sp->dtype != CELER_DOUBLE) first = NULL;
        }
        if (row.rank == 1 && row.dims[0] < 0) row.dims[0] = CELER_MAX(array_count(first), 0);
        if (present != rows && !celer_shape_equal(&row, &sp->default_row->shape))
            return celer_errorf(CELER_ERR_SHAPE, "%s is in %lld of the %lld objects and its default has another length",
                                what, (long long)present, (long long)rows);
        for (int d = 0; d < row.rank; d++)
            if (row.dims[d] < 0)
                return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: only one-dimensional fields may vary in length", what);
        int64_t per_row = celer_shape_numel(&row);
        celer_tensor t = {.dtype = sp->dtype, .shape = {.rank = row.rank + 1, .dims = {rows}}};
        memcpy(t.shape.dims + 1, row.dims, sizeof(int64_t) * (size_t)row.rank);
        size_t esize = celer_dtype_size(sp->dtype), bytes;
        if (per_row < 0 || celer_mul_size(esize, (size_t)(per_row * rows), &bytes))
            return celer_errorf(CELER_ERR_LIMIT, "%s: too large", what);
        t.data = celer_arena_alloc(arena, bytes ? bytes : 1);
        if (!t.data) return CELER_ERR_NOMEM;
        for (int64_t r = 0; r < rows; r++) {
            const celer_json *v = celer_json_get(root->type == CELER_JSON_OBJECT ? root : &root->items[r], sp->name);
            if (!v || (v->type == CELER_JSON_NULL && sp->dtype != CELER_FLOAT && sp->dtype != CELER_DOUBLE)) {
                memcpy((char *)t.data + (size_t)r * (size_t)per_row * esize, sp->default_row->data, (size_t)per_row * esize);
                continue;
            }
            if (row.rank == 0) {
                CELER_TRY(object_scalar(v, &t, r, arena, what));
                continue;
            }
            int64_t count = array_count(v);
            if (count < 0) return celer_errorf(CELER_ERR_SHAPE, "%s must be a list", what);
            if (row.rank == 1 && count != row.dims[0])
                return celer_errorf(CELER_ERR_SHAPE, "%s has %lld values in object %lld but %lld in object 0%s", what,
                                    (long long)count, (long long)r, (long long)row.dims[0],
                                    sp->dims[1] < 0 ? " (one request's lists must be equally long)" : "");
            if (count == 0) continue;
            CELER_TRY(celer_json_decode_tensor_exact(v, sp->dtype, &row, (char *)t.data + (size_t)r * (size_t)per_row * esize,
                                               arena, what));
        }
        out->inputs[out->n_inputs].name = sp->name;
        out->inputs[out->n_inputs].tensor = t;
        out->n_inputs++;
    }
    return CELER_OK;
}

celer_status celer_kserve_encode_object(bool single, const char *const *names, const celer_tensor *outputs,
                                        int n_outputs, celer_jbuf *out) {
    int64_t rows = -1;
    for (int o = 0; o < n_outputs; o++) {
        if (outputs[o].shape.rank < 1 || (rows >= 0 && outputs[o].shape.dims[0] != rows))
            return celer_errorf(CELER_ERR_SHAPE, "output '%s' does not have one row per object", names[o]);
        rows = outputs[o].shape.dims[0];
        CELER_TRY(check_json_text(names[o], &outputs[o]));
    }
    if (single && rows != 1) return celer_errorf(CELER_ERR_SHAPE, "one object asked, %lld rows answered", (long long)rows);
    if (!single) celer_jbuf_raw(out, "[", 1);
    for (int64_t r = 0; r < rows; r++) {
        celer_jbuf_raw(out, r ? ",{" : "{", r ? 2 : 1);
        for (int o = 0; o < n_outputs; o++) {
            if (o) celer_jbuf_raw(out, ",", 1);
            celer_jbuf_str(out, names[o]);
            celer_jbuf_raw(out, ":", 1);
            const celer_tensor *t = &outputs[o];
            size_t row_numel = 1;
            for (int d = 1; d < t->shape.rank; d++) row_numel *= (size_t)t->shape.dims[d];
            write_nested(out, t, 1, (size_t)r * row_numel);
        }
        celer_jbuf_raw(out, "}", 1);
    }
    if (!single) celer_jbuf_raw(out, "]", 1);
    return out->status;
}
