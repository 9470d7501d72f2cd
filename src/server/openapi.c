/* OpenAPI documents: see openapi.h. Every path is concrete (/v2/models/mlp/infer, one per
 * version too), so each operation carries its model's own types: input names as enums, the
 * datatype fixed, shapes with their rank and fixed dims, items with their integer ranges, and an
 * example request the server accepts. What does not depend on a model is fixed JSON text below. */
#include "openapi.h"

#include <stdio.h>
#include <string.h>

#include "service.h"

#define MAX_DEPTH 48
#define ENUM_SHAPES 64     /* shapes listed one by one when there are at most this many */
#define MAX_OBJECTS 4096   /* business objects in one request (kserve.c) */

/* ---- a JSON writer that places the commas ---- */

typedef struct jw {
    celer_jbuf *b;
    int depth;
    bool comma[MAX_DEPTH]; /* a value was written at this depth: the next one needs a comma */
} jw;

static void sep(jw *w) {
    if (w->comma[w->depth]) celer_jbuf_raw(w->b, ",", 1);
    w->comma[w->depth] = true;
}
static void open_c(jw *w, char c) {
    sep(w);
    celer_jbuf_raw(w->b, &c, 1);
    if (w->depth + 1 < MAX_DEPTH) w->depth++;
    w->comma[w->depth] = false;
}
static void obj(jw *w) { open_c(w, '{'); }
static void arr(jw *w) { open_c(w, '['); }
static void end_obj(jw *w) { w->depth--, celer_jbuf_raw(w->b, "}", 1); }
static void end_arr(jw *w) { w->depth--, celer_jbuf_raw(w->b, "]", 1); }
static void key(jw *w, const char *k) {
    sep(w);
    celer_jbuf_str(w->b, k);
    celer_jbuf_raw(w->b, ":", 1);
    w->comma[w->depth] = false; /* the value follows without one */
}
static void str(jw *w, const char *s) { sep(w), celer_jbuf_str(w->b, s); }
static void num(jw *w, int64_t v) { sep(w), celer_jbuf_int(w->b, v); }
static void lit(jw *w, const char *json) { sep(w), celer_jbuf_raw(w->b, json, strlen(json)); } /* fixed JSON text */
static void kstr(jw *w, const char *k, const char *s) { key(w, k), str(w, s); }
static void knum(jw *w, const char *k, int64_t v) { key(w, k), num(w, v); }
static void klit(jw *w, const char *k, const char *json) { key(w, k), lit(w, json); }
static void ref(jw *w, const char *kind, const char *name) {
    char r[400];
    snprintf(r, sizeof r, "#/components/%s/%s", kind, name);
    obj(w), kstr(w, "$ref", r), end_obj(w);
}
static void kref(jw *w, const char *k, const char *kind, const char *name) { key(w, k), ref(w, kind, name); }

/* ---- names ---- */

/* A model name as a path segment: percent-encoded outside RFC 3986's pchar. */
static const char *path_seg(const char *name, char *buf, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && o + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~!$&'()*+,;=@", *p)) {
            buf[o++] = (char)*p;
        } else {
            buf[o++] = '%', buf[o++] = hex[*p >> 4], buf[o++] = hex[*p & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

/* A component name (^[A-Za-z0-9._-]+$) for model i's version v: "<model>.<version>", other
 * characters as '_', and the model's index appended when that changed the name (two models could
 * otherwise meet). */
static const char *comp_name(const celer_openapi_model *m, int i, const char *version, char *buf, size_t cap) {
    size_t o = 0;
    bool changed = false;
    for (const char *p = m->name; *p && o + 1 < cap; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
        buf[o++] = ok ? c : '_';
        changed |= !ok;
    }
    buf[o] = 0;
    if (changed) snprintf(buf + o, cap - o, "_%d", i);
    o = strlen(buf);
    snprintf(buf + o, cap - o, ".%s", version);
    return buf;
}

/* ---- types ---- */

/* The JSON schema of one element. */
static void item_schema(jw *w, celer_dtype t) {
    switch (t) {
    case CELER_FLOAT: case CELER_DOUBLE: case CELER_FLOAT16: case CELER_BFLOAT16: lit(w, "{\"type\":\"number\"}"); break;
    case CELER_INT8: lit(w, "{\"type\":\"integer\",\"minimum\":-128,\"maximum\":127}"); break;
    case CELER_UINT8: lit(w, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":255}"); break;
    case CELER_INT16: lit(w, "{\"type\":\"integer\",\"minimum\":-32768,\"maximum\":32767}"); break;
    case CELER_UINT16: lit(w, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":65535}"); break;
    case CELER_INT32: lit(w, "{\"type\":\"integer\",\"format\":\"int32\",\"minimum\":-2147483648,\"maximum\":2147483647}"); break;
    case CELER_UINT32: lit(w, "{\"type\":\"integer\",\"minimum\":0,\"maximum\":4294967295}"); break;
    case CELER_INT64: lit(w, "{\"type\":\"integer\",\"format\":\"int64\"}"); break;
    case CELER_UINT64: lit(w, "{\"type\":\"integer\",\"minimum\":0}"); break;
    case CELER_BOOL: lit(w, "{\"type\":\"boolean\"}"); break;
    case CELER_STRING: lit(w, "{\"type\":\"string\"}"); break;
    default: lit(w, "{}"); break; /* not known */
    }
}

/* The bounds of dim k of t: [lo, hi], hi -1 for no bound. The first dim of a batched model runs
 * 1..max_batch; of a pipeline, over the rows. m is NULL for a per-row value (row_of), whose
 * first dim is its own. */
static void dim_range(const celer_openapi_tensor *t, int k, const celer_openapi_model *m, int64_t *lo, int64_t *hi) {
    if (t->dims[k] >= 0) {
        *lo = *hi = t->dims[k];
    } else if (k == 0 && m && (m->pipeline || m->max_batch > 0)) {
        *lo = 1, *hi = m->pipeline ? -1 : m->max_batch;
    } else {
        *lo = 0, *hi = -1;
    }
}

/* "[-1,16]" for descriptions. */
static const char *dims_text(const celer_openapi_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    buf[o++] = '[';
    for (int k = 0; k < t->rank && o + 24 < cap; k++) o += (size_t)snprintf(buf + o, cap - o, k ? ",%lld" : "%lld", (long long)t->dims[k]);
    snprintf(buf + o, cap - o, "]");
    return buf;
}

/* The "shape" of a tensor in a request: every possible shape listed when there are few (a
 * batched model's [1,16] ... [8,16]), else an array of the right rank. */
static void shape_schema(jw *w, const celer_openapi_tensor *t, const celer_openapi_model *m) {
    char text[400];
    int64_t count = 1;
    int var = -1;
    for (int k = 0; k < t->rank && count <= ENUM_SHAPES; k++) {
        int64_t lo, hi;
        dim_range(t, k, m, &lo, &hi);
        if (lo == hi) continue;
        if (hi < 0 || var >= 0) count = ENUM_SHAPES + 1;
        else count *= hi - lo + 1, var = k;
    }
    obj(w);
    if (t->rank >= 0 && count <= ENUM_SHAPES) {
        int64_t lo = 0, hi = 0;
        if (var >= 0) dim_range(t, var, m, &lo, &hi);
        key(w, "enum"), arr(w);
        for (int64_t v = lo; v <= hi; v++) {
            arr(w);
            for (int k = 0; k < t->rank; k++) num(w, k == var ? v : t->dims[k]);
            end_arr(w);
        }
        end_arr(w);
    }
    kstr(w, "type", "array");
    klit(w, "items", "{\"type\":\"integer\",\"minimum\":0}");
    if (t->rank >= 0) knum(w, "minItems", t->rank), knum(w, "maxItems", t->rank);
    if (t->rank >= 0) {
        char d[440];
        snprintf(d, sizeof d, "%s: -1 varies%s", dims_text(t, text, sizeof text),
                 m->pipeline ? " (the first dim counts rows)" : m->max_batch > 0 ? " (the first dim is the batch)" : "");
        kstr(w, "description", d);
    }
    end_obj(w);
}

/* Nested arrays for dims [from, rank) of t, each level with its length bounds, elements innermost. */
static void nested_schema(jw *w, const celer_openapi_tensor *t, const celer_openapi_model *m, int from) {
    if (from >= t->rank) {
        item_schema(w, t->dtype);
        return;
    }
    int64_t lo, hi;
    dim_range(t, from, m, &lo, &hi);
    obj(w);
    kstr(w, "type", "array");
    key(w, "items"), nested_schema(w, t, m, from + 1);
    if (lo > 0) knum(w, "minItems", lo);
    if (hi >= 0) knum(w, "maxItems", hi);
    end_obj(w);
}

/* The elements product of the fixed dims, -1 when a dim varies. */
static int64_t fixed_numel(const celer_openapi_tensor *t) {
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++) {
        if (t->dims[k] < 0) return -1;
        n *= t->dims[k];
    }
    return t->rank >= 0 ? n : -1;
}

/* "data" in a request: flat, or nested like the shape. */
static void data_schema(jw *w, const celer_openapi_tensor *t, const celer_openapi_model *m) {
    int64_t n = fixed_numel(t);
    obj(w);
    if (t->rank >= 2) key(w, "anyOf"), arr(w), obj(w);
    kstr(w, "type", "array");
    key(w, "items"), item_schema(w, t->dtype);
    if (n >= 0) knum(w, "minItems", n), knum(w, "maxItems", n);
    if (t->rank >= 2) end_obj(w), nested_schema(w, t, m, 0), end_arr(w);
    kstr(w, "description", t->rank >= 2 ? "the elements in row-major order, flat or nested like the shape"
                                        : "the elements in row-major order");
    end_obj(w);
}

/* The system shared memory parameters of a tensor (docs/server.md), members of a properties object. */
#define SHM_PARAMS                                                                                                  \
    "\"shared_memory_region\":{\"type\":\"string\",\"description\":\"a registered region holding the tensor (system "  \
    "shared memory)\"},\"shared_memory_offset\":{\"type\":\"integer\",\"minimum\":0},\"shared_memory_byte_size\":{"       \
    "\"type\":\"integer\",\"minimum\":0}"

/* One input of a KServe request, closed. */
static void input_schema(jw *w, const celer_openapi_tensor *t, const celer_openapi_model *m) {
    obj(w);
    kstr(w, "type", "object");
    klit(w, "required", "[\"name\",\"shape\",\"datatype\"]");
    klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    key(w, "name"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w), str(w, t->name), end_arr(w), end_obj(w);
    key(w, "shape"), shape_schema(w, t, m);
    const char *dt = celer_dtype_kserve_name(t->dtype);
    key(w, "datatype"), obj(w), kstr(w, "type", "string");
    if (dt) key(w, "enum"), arr(w), str(w, dt), end_arr(w);
    end_obj(w);
    klit(w, "parameters",
         "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"binary_data_size\":{\"type\":\"integer\","
         "\"minimum\":0,\"description\":\"binary extension: the tensor's bytes follow the JSON header in the body\"}," SHM_PARAMS
         "}}");
    key(w, "data"), data_schema(w, t, m);
    end_obj(w);
    end_obj(w);
}

/* One output of a KServe response. */
static void output_schema(jw *w, const celer_openapi_tensor *t) {
    obj(w);
    kstr(w, "type", "object");
    klit(w, "required", "[\"name\",\"datatype\",\"shape\"]");
    klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    key(w, "name"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w), str(w, t->name), end_arr(w), end_obj(w);
    const char *dt = celer_dtype_kserve_name(t->dtype);
    key(w, "datatype"), obj(w), kstr(w, "type", "string");
    if (dt) key(w, "enum"), arr(w), str(w, dt), end_arr(w);
    end_obj(w);
    key(w, "shape"), obj(w), kstr(w, "type", "array"), klit(w, "items", "{\"type\":\"integer\",\"minimum\":0}");
    if (t->rank >= 0) knum(w, "minItems", t->rank), knum(w, "maxItems", t->rank);
    end_obj(w);
    key(w, "data"), obj(w), kstr(w, "type", "array"), key(w, "items"), item_schema(w, t->dtype), end_obj(w);
    klit(w, "parameters",
         "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"binary_data_size\":{\"type\":\"integer\","
         "\"minimum\":0}," SHM_PARAMS "}}");
    end_obj(w);
    end_obj(w);
}

/* An output asked with parameters.classification (Triton's extension): BYTES strings in place of
 * the tensor, for the outputs that can be classified (numeric ones; none: nothing written). */
static void classified_schema(jw *w, const celer_openapi_tensor *outs, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += celer_kserve_classifiable(outs[i].dtype);
    if (!k) return;
    obj(w);
    kstr(w, "type", "object");
    kstr(w, "description", "an output asked with parameters.classification K: its top K per row as \"value:index\" "
                           "or \"value:index:label\" strings");
    klit(w, "required", "[\"name\",\"datatype\",\"shape\"]");
    klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    key(w, "name"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w);
    for (int i = 0; i < n; i++)
        if (celer_kserve_classifiable(outs[i].dtype)) str(w, outs[i].name);
    end_arr(w), end_obj(w);
    klit(w, "datatype", "{\"type\":\"string\",\"enum\":[\"BYTES\"]}");
    klit(w, "shape", "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0},\"minItems\":1,\"maxItems\":2}");
    klit(w, "data", "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}");
    klit(w, "parameters",
         "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"binary_data_size\":{\"type\":\"integer\","
         "\"minimum\":0}}}");
    end_obj(w);
    end_obj(w);
}

/* A tensor without its first dim (a pipeline's per-row field). */
static celer_openapi_tensor row_of(const celer_openapi_tensor *t) {
    celer_openapi_tensor r = *t;
    if (r.rank > 0) r.rank--, r.dims++;
    return r;
}

/* ---- examples: a request the server accepts ---- */

/* An 8x8 RGB PNG, for pipelines that decode an image. */
static const char example_png[] =
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR42hXNQRUAUQhCUaMYhShGeVGIQhSizB+XXA7O"
    "DDtouIHBQ4YOM8suWm5h8ZKl+0CskDiBsIioHhx76LiDw0eO3oN/4FVf+J8h0PduzBqZ8x/bxNQPwgaFy192SGgelC0q13/CJaXlA8Z7WAFXOTbyAA"
    "AAAElFTkSuQmCC";

static void zero_item(jw *w, const celer_openapi_tensor *t) {
    if (t->dtype == CELER_STRING) str(w, t->image ? example_png : "");
    else if (t->dtype == CELER_BOOL) lit(w, "false");
    else num(w, 0);
}

/* Element i of tensor t as JSON. */
static void elem(jw *w, const celer_tensor *t, int64_t i) {
    sep(w);
    celer_jbuf *b = w->b;
    const void *d = t->data;
    switch (t->dtype) {
    case CELER_FLOAT: celer_jbuf_double(b, ((const float *)d)[i]); break;
    case CELER_DOUBLE: celer_jbuf_double(b, ((const double *)d)[i]); break;
    case CELER_INT8: celer_jbuf_int(b, ((const int8_t *)d)[i]); break;
    case CELER_UINT8: celer_jbuf_int(b, ((const uint8_t *)d)[i]); break;
    case CELER_INT16: celer_jbuf_int(b, ((const int16_t *)d)[i]); break;
    case CELER_UINT16: celer_jbuf_int(b, ((const uint16_t *)d)[i]); break;
    case CELER_INT32: celer_jbuf_int(b, ((const int32_t *)d)[i]); break;
    case CELER_UINT32: celer_jbuf_int(b, ((const uint32_t *)d)[i]); break;
    case CELER_INT64: celer_jbuf_int(b, ((const int64_t *)d)[i]); break;
    case CELER_UINT64: celer_jbuf_uint(b, ((const uint64_t *)d)[i]); break;
    case CELER_BOOL: celer_jbuf_raw(b, ((const uint8_t *)d)[i] ? "true" : "false", ((const uint8_t *)d)[i] ? 4 : 5); break;
    case CELER_STRING: {
        celer_str s = ((const celer_str *)d)[i];
        celer_jbuf_strn(b, s.data, s.len);
        break;
    }
    default: celer_jbuf_raw(b, "null", 4); break;
    }
}

/* Dims [k, rank) of t from element *i on, nested. */
static void tensor_nested(jw *w, const celer_tensor *t, int k, int64_t *i) {
    if (k == t->shape.rank) {
        elem(w, t, (*i)++);
        return;
    }
    arr(w);
    for (int64_t j = 0; j < t->shape.dims[k]; j++) tensor_nested(w, t, k + 1, i);
    end_arr(w);
}

/* A per-row value of row type r (nested; a varying dim has one element), zeros. */
static void zero_nested(jw *w, const celer_openapi_tensor *r, int k) {
    if (k >= r->rank) {
        zero_item(w, r);
        return;
    }
    arr(w);
    for (int64_t j = 0; j < (r->dims[k] < 0 ? 1 : r->dims[k]); j++) zero_nested(w, r, k + 1);
    end_arr(w);
}

/* {"inputs": [...]} with every input: one batch row, a varying dim 1, zeros. */
static void kserve_example(jw *w, const celer_openapi_version *v) {
    obj(w);
    key(w, "inputs"), arr(w);
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_openapi_tensor *t = &v->inputs[i];
        obj(w);
        kstr(w, "name", t->name);
        key(w, "shape"), arr(w);
        int64_t n = 1;
        for (int k = 0; k < t->rank; k++) {
            int64_t d = t->dims[k] < 0 ? 1 : t->dims[k];
            num(w, d);
            n *= d;
        }
        end_arr(w);
        const char *dt = celer_dtype_kserve_name(t->dtype);
        kstr(w, "datatype", dt ? dt : "FP32");
        key(w, "data"), arr(w);
        for (int64_t j = 0; j < n; j++) zero_item(w, t);
        end_arr(w);
        end_obj(w);
    }
    end_arr(w);
    end_obj(w);
}

/* A business object with every field: its default, else zeros (an image field a PNG). */
static void object_example(jw *w, const celer_openapi_version *v) {
    obj(w);
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_openapi_tensor *t = &v->inputs[i];
        celer_openapi_tensor r = row_of(t);
        key(w, t->name);
        if (t->default_row) {
            int64_t e = 0;
            tensor_nested(w, t->default_row, 0, &e);
        } else {
            zero_nested(w, &r, 0);
        }
    }
    end_obj(w);
}

/* ---- per-version schemas ---- */

static void version_schemas(jw *w, const celer_openapi_model *m, const celer_openapi_version *v, const char *cn) {
    char name[400];
    /* the KServe request */
    snprintf(name, sizeof name, "%s.InferRequest", cn);
    key(w, name), obj(w);
    kstr(w, "type", "object");
    klit(w, "required", "[\"inputs\"]");
    klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    klit(w, "id", "{\"type\":\"string\",\"description\":\"echoed in the response\"}");
    kref(w, "parameters", "schemas", "InferParameters");
    int required = 0;
    for (int i = 0; i < v->n_inputs; i++) required += !v->inputs[i].default_row;
    key(w, "inputs"), obj(w), kstr(w, "type", "array");
    key(w, "items"), obj(w), key(w, "oneOf"), arr(w);
    for (int i = 0; i < v->n_inputs; i++) input_schema(w, &v->inputs[i], m);
    end_arr(w), end_obj(w);
    knum(w, "minItems", required > 0 ? required : 0), knum(w, "maxItems", v->n_inputs);
    end_obj(w);
    key(w, "outputs"), obj(w), kstr(w, "type", "array"), kstr(w, "description", "the outputs to return (all when absent)");
    key(w, "items"), obj(w), kstr(w, "type", "object"), klit(w, "required", "[\"name\"]"), klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    key(w, "name"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w);
    for (int i = 0; i < v->n_outputs; i++) str(w, v->outputs[i].name);
    end_arr(w), end_obj(w);
    klit(w, "parameters", "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"binary_data\":{\"type\":\"boolean\"},"
                          "\"classification\":{\"type\":\"integer\",\"minimum\":0,\"description\":\"Triton's classification "
                          "extension: the top K classes of the output per row, as strings (0: the tensor)\"}," SHM_PARAMS "}}");
    end_obj(w), end_obj(w), end_obj(w);
    end_obj(w), end_obj(w);
    /* the KServe response */
    snprintf(name, sizeof name, "%s.InferResponse", cn);
    key(w, name), obj(w);
    kstr(w, "type", "object");
    klit(w, "required", "[\"model_name\",\"outputs\"]");
    klit(w, "additionalProperties", "false");
    key(w, "properties"), obj(w);
    key(w, "model_name"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w), str(w, m->name), end_arr(w), end_obj(w);
    key(w, "model_version"), obj(w), kstr(w, "type", "string"), key(w, "enum"), arr(w), str(w, v->version), end_arr(w), end_obj(w);
    klit(w, "id", "{\"type\":\"string\"}");
    key(w, "outputs"), obj(w), kstr(w, "type", "array");
    key(w, "items"), obj(w), key(w, "oneOf"), arr(w);
    for (int i = 0; i < v->n_outputs; i++) output_schema(w, &v->outputs[i]);
    classified_schema(w, v->outputs, v->n_outputs);
    end_arr(w), end_obj(w);
    end_obj(w);
    end_obj(w), end_obj(w);
    if (!m->pipeline) {
        /* KServe v1 :predict: instances are the batch's rows (one input), or objects {input: row} */
        snprintf(name, sizeof name, "%s.PredictRequest", cn);
        key(w, name), obj(w);
        kstr(w, "type", "object"), klit(w, "required", "[\"instances\"]"), klit(w, "additionalProperties", "false");
        key(w, "properties"), obj(w), key(w, "instances");
        if (v->n_inputs == 1) {
            nested_schema(w, &v->inputs[0], m, 0);
        } else {
            obj(w), kstr(w, "type", "array"), klit(w, "minItems", "1");
            key(w, "items"), obj(w), kstr(w, "type", "object"), klit(w, "additionalProperties", "false");
            key(w, "required"), arr(w);
            for (int i = 0; i < v->n_inputs; i++) str(w, v->inputs[i].name);
            end_arr(w);
            key(w, "properties"), obj(w);
            for (int i = 0; i < v->n_inputs; i++) key(w, v->inputs[i].name), nested_schema(w, &v->inputs[i], m, 1);
            end_obj(w), end_obj(w), end_obj(w);
        }
        end_obj(w), end_obj(w);
        return;
    }
    /* a pipeline's business objects: one per row */
    snprintf(name, sizeof name, "%s.Object", cn);
    key(w, name), obj(w);
    kstr(w, "type", "object");
    if (m->description && *m->description) kstr(w, "description", m->description);
    klit(w, "additionalProperties", "false");
    if (required) {
        key(w, "required"), arr(w);
        for (int i = 0; i < v->n_inputs; i++)
            if (!v->inputs[i].default_row) str(w, v->inputs[i].name);
        end_arr(w);
    }
    key(w, "properties"), obj(w);
    for (int i = 0; i < v->n_inputs; i++) {
        const celer_openapi_tensor *t = &v->inputs[i];
        celer_openapi_tensor r = row_of(t);
        key(w, t->name);
        if (!t->default_row && !t->image) {
            nested_schema(w, &r, NULL, 0);
            continue;
        }
        obj(w), key(w, "allOf"), arr(w), nested_schema(w, &r, NULL, 0), end_arr(w);
        if (t->image) kstr(w, "description", "a JPEG or PNG file in base64 (a data:image/...;base64, prefix is fine)");
        if (t->default_row) {
            int64_t e = 0;
            key(w, "default"), tensor_nested(w, t->default_row, 0, &e);
        }
        end_obj(w);
    }
    end_obj(w);
    end_obj(w);
    snprintf(name, sizeof name, "%s.ObjectResponse", cn);
    key(w, name), obj(w);
    kstr(w, "type", "object"), klit(w, "additionalProperties", "false");
    key(w, "required"), arr(w);
    for (int i = 0; i < v->n_outputs; i++) str(w, v->outputs[i].name);
    end_arr(w);
    key(w, "properties"), obj(w);
    for (int i = 0; i < v->n_outputs; i++) {
        celer_openapi_tensor r = row_of(&v->outputs[i]);
        key(w, v->outputs[i].name);
        if (v->outputs[i].rank < 1) lit(w, "{}");
        else nested_schema(w, &r, NULL, 0);
    }
    end_obj(w), end_obj(w);
}

/* ---- operations ---- */

/* A response's headers: X-Request-Id always; an answer to an inference, the cache's verdict and
 * the binary extension's header length too. */
static void headers(jw *w, bool inference) {
    key(w, "headers"), obj(w);
    kref(w, "X-Request-Id", "headers", "X-Request-Id");
    if (inference) {
        kref(w, "X-Celer-Cache", "headers", "X-Celer-Cache");
        kref(w, "Inference-Header-Content-Length", "headers", "Inference-Header-Content-Length");
    }
    end_obj(w);
}

static void std_errors(jw *w, bool body, bool version) {
    kref(w, "400", "responses", "BadRequest");
    if (version) kref(w, "404", "responses", "NotFound");
    if (body) kref(w, "413", "responses", "PayloadTooLarge");
    kref(w, "500", "responses", "InternalError");
    kref(w, "503", "responses", "Unavailable");
}

/* A GET of a model's metadata, readiness, config, statistics or document. */
static void get_op(jw *w, const char *tag, const char *op_id, const char *summary, const char *schema_ref,
                   const char *content_type) {
    key(w, "get"), obj(w);
    key(w, "tags"), arr(w), str(w, tag), end_arr(w);
    kstr(w, "operationId", op_id);
    kstr(w, "summary", summary);
    key(w, "responses"), obj(w);
    key(w, "200"), obj(w), kstr(w, "description", "OK");
    headers(w, false);
    if (schema_ref) {
        key(w, "content"), obj(w), key(w, content_type), obj(w);
        if (*schema_ref == '{') klit(w, "schema", schema_ref);
        else kref(w, "schema", "schemas", schema_ref);
        end_obj(w), end_obj(w);
    }
    end_obj(w);
    std_errors(w, false, true);
    end_obj(w);
    end_obj(w);
}

static void infer_op(jw *w, const celer_openapi_model *m, const celer_openapi_version *v, const char *cn,
                     const char *op_id, bool versioned) {
    char ref_name[400], summary[700];
    bool raw_image = false;
    int n_bytes = 0;
    for (int i = 0; i < v->n_inputs; i++) n_bytes += v->inputs[i].dtype == CELER_STRING;
    raw_image = m->pipeline && n_bytes == 1;
    key(w, "post"), obj(w);
    key(w, "tags"), arr(w), str(w, m->name), end_arr(w);
    kstr(w, "operationId", op_id);
    snprintf(summary, sizeof summary, "%s %s%s%s", m->pipeline ? "Runs the pipeline" : "Inference with", m->name,
             versioned ? " version " : "", versioned ? v->version : "");
    kstr(w, "summary", summary);
    if (m->pipeline)
        kstr(w, "description", m->description && *m->description ? m->description : "a pipeline of pipeline.yaml");
    key(w, "parameters"), arr(w), ref(w, "parameters", "InferenceHeaderContentLength"), end_arr(w);
    key(w, "requestBody"), obj(w), klit(w, "required", "true"), key(w, "content"), obj(w);
    key(w, "application/json"), obj(w), key(w, "schema");
    if (m->pipeline) {
        obj(w), key(w, "anyOf"), arr(w);
        snprintf(ref_name, sizeof ref_name, "%s.Object", cn);
        ref(w, "schemas", ref_name);
        obj(w), kstr(w, "type", "array"), knum(w, "minItems", 1), knum(w, "maxItems", MAX_OBJECTS), kref(w, "items", "schemas", ref_name), end_obj(w);
        snprintf(ref_name, sizeof ref_name, "%s.InferRequest", cn);
        ref(w, "schemas", ref_name);
        end_arr(w), end_obj(w);
        key(w, "example"), object_example(w, v);
    } else {
        snprintf(ref_name, sizeof ref_name, "%s.InferRequest", cn);
        ref(w, "schemas", ref_name);
        key(w, "example"), kserve_example(w, v);
    }
    end_obj(w);
    klit(w, "application/octet-stream", "{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}");
    if (raw_image) {
        klit(w, "image/jpeg", "{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}");
        klit(w, "image/png", "{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}");
    }
    end_obj(w), end_obj(w);
    key(w, "responses"), obj(w);
    key(w, "200"), obj(w);
    kstr(w, "description", m->pipeline ? "the outputs, in the request's form (business objects or KServe v2)"
                                       : "the outputs (binary extension: the tensors' bytes follow the JSON header)");
    headers(w, true);
    key(w, "content"), obj(w), key(w, "application/json"), obj(w), key(w, "schema");
    if (m->pipeline) {
        obj(w), key(w, "anyOf"), arr(w);
        snprintf(ref_name, sizeof ref_name, "%s.ObjectResponse", cn);
        ref(w, "schemas", ref_name);
        obj(w), kstr(w, "type", "array"), kref(w, "items", "schemas", ref_name), end_obj(w);
        snprintf(ref_name, sizeof ref_name, "%s.InferResponse", cn);
        ref(w, "schemas", ref_name);
        end_arr(w), end_obj(w);
    } else {
        snprintf(ref_name, sizeof ref_name, "%s.InferResponse", cn);
        ref(w, "schemas", ref_name);
    }
    end_obj(w);
    klit(w, "application/octet-stream", "{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}");
    end_obj(w), end_obj(w);
    std_errors(w, true, true);
    end_obj(w);
    end_obj(w);
}

/* A POST of the repository API: an optional JSON body and a JSON answer, both fixed schemas. */
static void post_op(jw *w, const char *op_id, const char *summary, const char *request_schema, const char *ok_schema,
                    bool names_model) {
    key(w, "post"), obj(w);
    klit(w, "tags", "[\"repository\"]");
    kstr(w, "operationId", op_id);
    kstr(w, "summary", summary);
    key(w, "requestBody"), obj(w), klit(w, "required", "false"), key(w, "content"), obj(w);
    key(w, "application/json"), obj(w), klit(w, "schema", request_schema), end_obj(w);
    end_obj(w), end_obj(w);
    key(w, "responses"), obj(w);
    key(w, "200"), obj(w), kstr(w, "description", "OK"), headers(w, false);
    key(w, "content"), obj(w), key(w, "application/json"), obj(w), klit(w, "schema", ok_schema), end_obj(w), end_obj(w);
    end_obj(w);
    std_errors(w, true, names_model);
    end_obj(w);
    end_obj(w);
}

/* "metadata_tiny_cnn_v1": operation ids that code generators can use as names. */
static const char *op_id(const char *op, const char *cn, char *buf, size_t cap) {
    snprintf(buf, cap, "%s_%s", op, cn);
    for (char *p = buf; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '_';
    return buf;
}

/* The paths of model i: without a version (typed by its latest) unless only one version is asked
 * for, and each version's. */
static void model_paths(jw *w, const celer_openapi_model *models, int i, int only, const celer_openapi_opts *o) {
    const celer_openapi_model *m = &models[i];
    char seg[800], path[1200], id[1000], cn[400], base[400], summary[700];
    path_seg(m->name, seg, sizeof seg);
    for (int k = only >= 0 ? only : -1; k < (only >= 0 ? only + 1 : m->n_versions); k++) {
        if (m->n_versions == 0) break;
        bool versioned = k >= 0;
        const celer_openapi_version *v = &m->versions[versioned ? k : m->n_versions - 1];
        comp_name(m, i, v->version, cn, sizeof cn);
        /* operation ids: the model's name, and its version for the versioned paths */
        if (versioned) snprintf(base, sizeof base, "%s", cn);
        else snprintf(base, sizeof base, "%.*s", (int)(strrchr(cn, '.') - cn), cn);
        char prefix[900];
        if (versioned) {
            char vseg[100];
            snprintf(prefix, sizeof prefix, "/v2/models/%s/versions/%s", seg, path_seg(v->version, vseg, sizeof vseg));
        } else {
            snprintf(prefix, sizeof prefix, "/v2/models/%s", seg);
        }
        const char *which = versioned ? " (this version)" : "";
        key(w, prefix), obj(w);
        snprintf(summary, sizeof summary, "Metadata of %s%s: inputs and outputs with datatypes and shapes", m->name, which);
        get_op(w, m->name, op_id("metadata", base, id, sizeof id), summary, "ModelMetadata", "application/json");
        end_obj(w);
        snprintf(path, sizeof path, "%s/ready", prefix);
        key(w, path), obj(w);
        snprintf(summary, sizeof summary, "Whether %s%s is ready (200) or not (503)", m->name, which);
        get_op(w, m->name, op_id("ready", base, id, sizeof id), summary, NULL, NULL);
        end_obj(w);
        snprintf(path, sizeof path, "%s/config", prefix);
        key(w, path), obj(w);
        snprintf(summary, sizeof summary, "Configuration of %s (Triton's model configuration as JSON)", m->name);
        get_op(w, m->name, op_id("config", base, id, sizeof id), summary, "ModelConfig", "application/json");
        end_obj(w);
        snprintf(path, sizeof path, "%s/stats", prefix);
        key(w, path), obj(w);
        snprintf(summary, sizeof summary, "Statistics of %s%s (Triton's statistics extension)", m->name, which);
        get_op(w, m->name, op_id("stats", base, id, sizeof id), summary, "Statistics", "application/json");
        end_obj(w);
        snprintf(path, sizeof path, "%s/infer", prefix);
        key(w, path), obj(w);
        infer_op(w, m, v, cn, op_id("infer", base, id, sizeof id), versioned);
        end_obj(w);
        snprintf(path, sizeof path, "%s/openapi.json", prefix);
        key(w, path), obj(w);
        snprintf(summary, sizeof summary, "This document for %s%s alone", m->name, which);
        get_op(w, m->name, op_id("openapi", base, id, sizeof id), summary, "{\"type\":\"object\"}", "application/json");
        end_obj(w);
        if (versioned) continue;
        if (o->docs) {
            snprintf(path, sizeof path, "%s/docs", prefix);
            key(w, path), obj(w);
            snprintf(summary, sizeof summary, "An interactive page of %s's document (Swagger UI)", m->name);
            get_op(w, m->name, op_id("docs", base, id, sizeof id), summary, "{\"type\":\"string\"}", "text/html");
            end_obj(w);
        }
        if (!m->pipeline) {
            snprintf(path, sizeof path, "/v1/models/%s:predict", seg);
            key(w, path), obj(w), key(w, "post"), obj(w);
            key(w, "tags"), arr(w), str(w, m->name), end_arr(w);
            kstr(w, "operationId", op_id("predict", base, id, sizeof id));
            snprintf(summary, sizeof summary, "Inference with %s in KServe v1's form", m->name);
            kstr(w, "summary", summary);
            snprintf(cn + strlen(cn), sizeof cn - strlen(cn), ".PredictRequest");
            key(w, "requestBody"), obj(w), klit(w, "required", "true"), key(w, "content"), obj(w);
            key(w, "application/json"), obj(w), kref(w, "schema", "schemas", cn), end_obj(w);
            end_obj(w), end_obj(w);
            key(w, "responses"), obj(w);
            key(w, "200"), obj(w), kstr(w, "description", "the outputs, a row per instance"), headers(w, true);
            klit(w, "content", "{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/PredictResponse\"}}}");
            end_obj(w);
            std_errors(w, true, true);
            end_obj(w), end_obj(w), end_obj(w);
        }
        for (int unload = 0; unload < 2; unload++) {
            snprintf(path, sizeof path, "/v2/repository/models/%s/%s", seg, unload ? "unload" : "load");
            snprintf(summary, sizeof summary, unload ? "Unloads %s (requests in flight finish first)"
                                                     : "Loads %s again from the repository (the new version serves once warm)",
                     m->name);
            key(w, path), obj(w);
            post_op(w, op_id(unload ? "unload" : "load", base, id, sizeof id), summary,
                    "{\"$ref\":\"#/components/schemas/RepositoryAction\"}", "{\"type\":\"object\",\"additionalProperties\":false}",
                    true);
            end_obj(w);
        }
    }
}

/* System shared memory and CUDA shared memory (docs/server.md, "System shared memory"): one entry
 * per path; `region` paths take the region's name as a path parameter. */
static const struct shm_path {
    const char *path, *method, *op_id, *summary;
    bool region;
    enum { SHM_STATUS, SHM_REGISTER, SHM_UNREGISTER } kind;
} shm_paths[] = {
    {"/v2/systemsharedmemory/status", "get", "shm_status", "Every registered system shared memory region", false,
     SHM_STATUS},
    {"/v2/systemsharedmemory/region/{region}/status", "get", "shm_region_status", "One registered region (404 when it "
     "is not)", true, SHM_STATUS},
    {"/v2/systemsharedmemory/region/{region}/register", "post", "shm_register", "Registers [offset, offset + "
     "byte_size) of the POSIX shared-memory object `key` as the region (with --allow-shared-memory)", true,
     SHM_REGISTER},
    {"/v2/systemsharedmemory/unregister", "post", "shm_unregister_all", "Unregisters every region (requests using "
     "one keep it until they end)", false, SHM_UNREGISTER},
    {"/v2/systemsharedmemory/region/{region}/unregister", "post", "shm_unregister", "Unregisters the region "
     "(requests using it keep it until they end)", true, SHM_UNREGISTER},
    {"/v2/cudasharedmemory/status", "get", "cuda_shm_status", "CUDA shared memory: none (celer has no GPU)", false,
     SHM_STATUS},
    {"/v2/cudasharedmemory/region/{region}/status", "get", "cuda_shm_region_status", "CUDA shared memory: 404 (no "
     "GPU)", true, SHM_STATUS},
    {"/v2/cudasharedmemory/region/{region}/register", "post", "cuda_shm_register", "CUDA shared memory: refused, 400 "
     "(no GPU)", true, SHM_REGISTER},
    {"/v2/cudasharedmemory/unregister", "post", "cuda_shm_unregister_all", "CUDA shared memory: nothing to "
     "unregister", false, SHM_UNREGISTER},
    {"/v2/cudasharedmemory/region/{region}/unregister", "post", "cuda_shm_unregister", "CUDA shared memory: nothing "
     "to unregister", true, SHM_UNREGISTER},
};

static void shared_memory_paths(jw *w) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(shm_paths); i++) {
        const struct shm_path *p = &shm_paths[i];
        bool cuda = !strncmp(p->path, "/v2/cuda", 8);
        key(w, p->path), obj(w);
        if (p->region)
            klit(w, "parameters", "[{\"name\":\"region\",\"in\":\"path\",\"required\":true,\"description\":\"the "
                                  "region's name\",\"schema\":{\"type\":\"string\"}}]");
        key(w, p->method), obj(w);
        klit(w, "tags", "[\"shared memory\"]");
        kstr(w, "operationId", p->op_id);
        kstr(w, "summary", p->summary);
        if (p->kind == SHM_REGISTER)
            klit(w, "requestBody", cuda ? "{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"type\":"
                                          "\"object\"}}}}"
                                        : "{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
                                          "\"#/components/schemas/SharedMemoryRegister\"}}}}");
        key(w, "responses"), obj(w);
        key(w, "200"), obj(w), kstr(w, "description", "OK"), headers(w, false);
        if (p->kind == SHM_STATUS)
            klit(w, "content", "{\"application/json\":{\"schema\":{\"type\":\"array\",\"items\":{\"$ref\":"
                               "\"#/components/schemas/SharedMemoryRegion\"}}}}");
        end_obj(w);
        std_errors(w, p->kind == SHM_REGISTER, p->region);
        end_obj(w);
        end_obj(w);
        end_obj(w);
    }
}

/* The paths that do not name a model. */
static void server_paths(jw *w, const celer_openapi_opts *o) {
    shared_memory_paths(w);
    key(w, "/v2/health/live"), obj(w);
    get_op(w, "health", "health_live", "Whether the process runs (200)", NULL, NULL);
    end_obj(w);
    key(w, "/v2/health/ready"), obj(w);
    get_op(w, "health", "health_ready", "Whether every model is ready (200) or not (503: POST /v2/repository/index says why)",
           NULL, NULL);
    end_obj(w);
    key(w, "/v2"), obj(w);
    get_op(w, "server", "server_metadata", "The server's name, version and protocol extensions", "ServerMetadata",
           "application/json");
    end_obj(w);
    key(w, "/v2/models/stats"), obj(w);
    get_op(w, "server", "stats_all", "Statistics of every model (Triton's statistics extension)", "Statistics",
           "application/json");
    end_obj(w);
    key(w, "/v2/repository/index"), obj(w);
    post_op(w, "repository_index", "Every model and version with its state, and why one is not ready",
            "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"ready\":{\"type\":\"boolean\","
            "\"description\":\"only the ready ones\"}}}",
            "{\"$ref\":\"#/components/schemas/RepositoryIndex\"}", false);
    end_obj(w);
    key(w, "/metrics"), obj(w);
    get_op(w, "server", "metrics", "Prometheus metrics", "{\"type\":\"string\"}", "text/plain");
    end_obj(w);
    key(w, "/v2/openapi.json"), obj(w);
    get_op(w, "server", "openapi", "This document", "{\"type\":\"object\"}", "application/json");
    end_obj(w);
    if (o->docs) {
        key(w, "/docs"), obj(w);
        get_op(w, "server", "docs", "An interactive page of this document (Swagger UI)", "{\"type\":\"string\"}",
               "text/html");
        end_obj(w);
        key(w, "/docs/celer-docs.js"), obj(w);
        get_op(w, "server", "docs_script", "The pages' script (it renders the document named by the page)",
               "{\"type\":\"string\"}", "text/javascript");
        end_obj(w);
    }
}

/* What no model changes: schemas, responses, headers and parameters the operations refer to. */
static const char common_schemas[] =
    "\"Error\":{\"type\":\"object\",\"required\":[\"error\"],\"additionalProperties\":false,"
    "\"properties\":{\"error\":{\"type\":\"string\",\"description\":\"what was expected and what came\"}}},"
    "\"ServerMetadata\":{\"type\":\"object\",\"required\":[\"name\",\"version\",\"extensions\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"version\":{\"type\":\"string\"},\"extensions\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\"}}}},"
    "\"TensorMetadata\":{\"type\":\"object\",\"required\":[\"name\",\"datatype\",\"shape\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"datatype\":{\"type\":\"string\"},\"shape\":{\"type\":\"array\","
    "\"items\":{\"type\":\"integer\",\"minimum\":-1}}}},"
    "\"ModelMetadata\":{\"type\":\"object\",\"required\":[\"name\",\"platform\",\"inputs\",\"outputs\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"versions\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"platform\":{\"type\":\"string\"},\"inputs\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/TensorMetadata\"}},"
    "\"outputs\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/TensorMetadata\"}}}},"
    "\"ModelConfig\":{\"type\":\"object\",\"description\":\"Triton's model configuration (model_config.proto) as JSON\"},"
    "\"Statistics\":{\"type\":\"object\",\"required\":[\"model_stats\"],\"properties\":{\"model_stats\":{\"type\":\"array\","
    "\"items\":{\"type\":\"object\"}}}},"
    "\"RepositoryIndex\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"name\",\"state\"],"
    "\"properties\":{\"name\":{\"type\":\"string\"},\"version\":{\"type\":\"string\"},\"state\":{\"type\":\"string\","
    "\"enum\":[\"UNKNOWN\",\"READY\",\"UNAVAILABLE\",\"LOADING\",\"UNLOADING\"]},\"reason\":{\"type\":\"string\"}}}},"
    "\"RepositoryAction\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{\"parameters\":{"
    "\"type\":\"object\"}}},"
    "\"InferParameters\":{\"type\":\"object\",\"properties\":{\"binary_data_output\":{\"type\":\"boolean\","
    "\"description\":\"every output in binary form after the JSON header\"},\"timeout\":{\"type\":\"integer\","
    "\"minimum\":0,\"description\":\"microseconds the request may wait in the queue\"}},"
    "\"additionalProperties\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"number\"},{\"type\":\"boolean\"}]},"
    "\"description\":\"names of your own reach pipelines (a route step may read them)\"},"
    "\"PredictResponse\":{\"type\":\"object\",\"required\":[\"predictions\"],\"additionalProperties\":false,"
    "\"properties\":{\"predictions\":{\"type\":\"array\"}}},"
    "\"SharedMemoryRegister\":{\"type\":\"object\",\"required\":[\"key\",\"byte_size\"],\"additionalProperties\":false,"
    "\"properties\":{\"key\":{\"type\":\"string\",\"description\":\"a POSIX shared-memory name: '/' and an object "
    "of /dev/shm\"},\"offset\":{\"type\":\"integer\",\"minimum\":0},\"byte_size\":{\"type\":\"integer\",\"minimum\":1}}},"
    "\"SharedMemoryRegion\":{\"type\":\"object\",\"required\":[\"name\",\"byte_size\"],\"properties\":{\"name\":{"
    "\"type\":\"string\"},\"key\":{\"type\":\"string\"},\"offset\":{\"type\":\"integer\",\"minimum\":0},"
    "\"byte_size\":{\"type\":\"integer\",\"minimum\":0}}}";

static const char common_components[] =
    "\"responses\":{"
    "\"BadRequest\":{\"description\":\"the request does not fit the endpoint or the model (the message says what was "
    "expected and what came)\",\"headers\":{\"X-Request-Id\":{\"$ref\":\"#/components/headers/X-Request-Id\"}},"
    "\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Error\"}}}},"
    "\"NotFound\":{\"description\":\"no such model or version\",\"headers\":{\"X-Request-Id\":{\"$ref\":"
    "\"#/components/headers/X-Request-Id\"}},\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
    "\"#/components/schemas/Error\"}}}},"
    "\"PayloadTooLarge\":{\"description\":\"the body, or what it would take, passes a limit (the message names it)\","
    "\"headers\":{\"X-Request-Id\":{\"$ref\":\"#/components/headers/X-Request-Id\"}},\"content\":{\"application/json\":"
    "{\"schema\":{\"$ref\":\"#/components/schemas/Error\"}}}},"
    "\"InternalError\":{\"description\":\"the server failed (the log says more)\",\"headers\":{\"X-Request-Id\":{\"$ref\":"
    "\"#/components/headers/X-Request-Id\"}},\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
    "\"#/components/schemas/Error\"}}}},"
    "\"Unavailable\":{\"description\":\"not ready, overloaded or shutting down: retry after the delay given\","
    "\"headers\":{\"X-Request-Id\":{\"$ref\":\"#/components/headers/X-Request-Id\"},\"Retry-After\":{\"$ref\":"
    "\"#/components/headers/Retry-After\"}},\"content\":{\"application/json\":{\"schema\":{\"$ref\":"
    "\"#/components/schemas/Error\"}}}}},"
    "\"headers\":{"
    "\"X-Request-Id\":{\"description\":\"the request's id, as in the access log\",\"schema\":{\"type\":\"string\"}},"
    "\"X-Celer-Cache\":{\"description\":\"the result cache: hit (answered from it), miss (computed, then kept) or "
    "bypass (not cached); absent when the model has no cache\",\"schema\":{\"type\":\"string\",\"enum\":[\"hit\","
    "\"miss\",\"bypass\"]}},"
    "\"Inference-Header-Content-Length\":{\"description\":\"binary extension: the length of the JSON header; the "
    "tensors' bytes follow it\",\"schema\":{\"type\":\"integer\",\"minimum\":0}},"
    "\"Retry-After\":{\"description\":\"seconds to wait before trying again\",\"schema\":{\"type\":\"integer\"}}},"
    "\"parameters\":{"
    "\"InferenceHeaderContentLength\":{\"name\":\"Inference-Header-Content-Length\",\"in\":\"header\",\"required\":false,"
    "\"description\":\"binary extension: the length of the JSON header at the start of an application/octet-stream "
    "body; the tensors' bytes follow it\",\"schema\":{\"type\":\"integer\",\"minimum\":0}}}";

void celer_openapi_write(const celer_openapi_model *models, int n, int model, int version, const celer_openapi_opts *o,
                         celer_jbuf *out) {
    jw w = {.b = out};
    int first = model < 0 ? 0 : model, last = model < 0 ? n : model + 1;
    int only = model >= 0 ? version : -1;
    obj(&w);
    kstr(&w, "openapi", "3.0.3");
    key(&w, "info"), obj(&w);
    if (model < 0) {
        kstr(&w, "title", "celer");
    } else {
        char title[400];
        snprintf(title, sizeof title, "celer: %s%s%s", models[model].name, only >= 0 ? " version " : "",
                 only >= 0 ? models[model].versions[only].version : "");
        kstr(&w, "title", title);
    }
    kstr(&w, "version", CELER_SERVER_VERSION);
    kstr(&w, "description", model >= 0 && models[model].pipeline && models[model].description && *models[model].description
                                ? models[model].description
                                : "KServe v2 / Triton inference protocol over HTTP, typed for each model this server "
                                  "serves. Generated when models load; GET /v2/openapi.json for the whole server, "
                                  "/v2/models/{name}/openapi.json for one model.");
    end_obj(&w);
    key(&w, "tags"), arr(&w); /* the models first: what a page's reader came for */
    for (int i = first; i < last; i++) {
        obj(&w), kstr(&w, "name", models[i].name);
        if (models[i].pipeline && models[i].description && *models[i].description)
            kstr(&w, "description", models[i].description);
        end_obj(&w);
    }
    if (model < 0) lit(&w, "{\"name\":\"health\"}"), lit(&w, "{\"name\":\"server\"}");
    lit(&w, "{\"name\":\"repository\"}");
    if (model < 0) lit(&w, "{\"name\":\"shared memory\"}");
    end_arr(&w);
    key(&w, "paths"), obj(&w);
    if (model < 0) server_paths(&w, o);
    for (int i = first; i < last; i++) model_paths(&w, models, i, only, o);
    end_obj(&w);
    key(&w, "components"), obj(&w);
    key(&w, "schemas"), obj(&w);
    lit(&w, common_schemas); /* members, written as they are */
    for (int i = first; i < last; i++) {
        const celer_openapi_model *m = &models[i];
        for (int k = only >= 0 ? only : 0; k < (only >= 0 ? only + 1 : m->n_versions); k++) {
            char cn[400];
            version_schemas(&w, m, &m->versions[k], comp_name(m, i, m->versions[k].version, cn, sizeof cn));
        }
    }
    end_obj(&w);
    lit(&w, common_components);
    end_obj(&w);
    end_obj(&w);
}
