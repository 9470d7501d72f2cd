/* The OpenAPI generator (src/server/openapi.c) on described models, without a registry: the
 * documents are JSON, every path is concrete, inputs are typed (names as enums, datatypes fixed,
 * integer ranges, shapes listed when few), pipelines get their business-object schemas with
 * defaults, names that are not component-safe are made so, and the example requests hold the
 * values they should. The end-to-end test (tests/e2e/test_openapi.py) validates the documents a
 * live server serves with swagger-parser and sends their examples. */
#include <stdio.h>
#include <string.h>

#include "server/openapi.h"
#include "testutil.h"

static const celer_json *at(const celer_json *j, const char *key) {
    const celer_json *v = celer_json_get(j, key);
    if (!v) print_error("no member '%s'\n", key);
    assert_non_null(v);
    return v;
}

static const celer_json *item(const celer_json *arr, int i) {
    assert_true(arr->type == CELER_JSON_ARRAY && i < arr->n); /* (arrays of numbers are kept as text: ->raw) */
    return &arr->items[i];
}

/* The source text of a value (kept as text for arrays of numbers). */
static void raw_is(const celer_json *j, const char *want) {
    if (j->raw_len != strlen(want) || memcmp(j->raw, want, j->raw_len)) print_error("%.*s\n", (int)j->raw_len, j->raw);
    assert_true(j->raw_len == strlen(want) && !memcmp(j->raw, want, j->raw_len));
}

/* Writes and parses a document. */
static const celer_json *write_doc(const celer_openapi_model *m, int n, int model, int version, bool docs,
                                   celer_jbuf *b, celer_arena *a) {
    celer_jbuf_init(b, 0);
    celer_openapi_opts o = {.docs = docs};
    celer_openapi_write(m, n, model, version, &o, b);
    assert_int_equal(b->status, CELER_OK);
    celer_json *root;
    celer_status st = celer_json_parse(b->data, b->len, a, &root);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    return root;
}

static const int64_t mlp_in[] = {-1, 16}, mlp_out[] = {-1, 4}, img_in[] = {1, 3, 8, 8}, u8_in[] = {-1, -1};

static void test_model_typed(void **unused) {
    (void)unused;
    celer_openapi_tensor in[] = {{"features", CELER_FLOAT, 2, mlp_in, NULL, false}};
    celer_openapi_tensor out[] = {{"scores", CELER_FLOAT, 2, mlp_out, NULL, false}};
    celer_openapi_tensor in2[] = {{"pixels", CELER_UINT8, 4, img_in, NULL, false}, {"mask", CELER_BOOL, 2, u8_in, NULL, false}};
    celer_openapi_version v1[] = {{"1", 1, 1, in, out}, {"2", 1, 1, in, out}};
    celer_openapi_version v2[] = {{"7", 2, 1, in2, out}};
    celer_openapi_model models[] = {{"mlp", false, "", 8, 2, v1}, {"odd name/x", false, "", 0, 1, v2}};
    celer_jbuf b;
    celer_arena a;
    celer_arena_init(&a, 1 << 16, 0);
    const celer_json *doc = write_doc(models, 2, -1, -1, true, &b, &a);
    assert_string_equal(at(doc, "openapi")->string, "3.0.3");
    const celer_json *paths = at(doc, "paths");
    /* every endpoint, concrete, each version's too */
    const char *want[] = {"/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/stats", "/v2/repository/index",
                          "/metrics", "/v2/openapi.json", "/docs", "/v2/models/mlp", "/v2/models/mlp/ready",
                          "/v2/models/mlp/config", "/v2/models/mlp/stats", "/v2/models/mlp/infer",
                          "/v2/models/mlp/openapi.json", "/v2/models/mlp/docs", "/v1/models/mlp:predict",
                          "/v2/models/mlp/versions/1/infer", "/v2/models/mlp/versions/2/infer",
                          "/v2/models/mlp/versions/2/openapi.json", "/v2/repository/models/mlp/load",
                          "/v2/repository/models/mlp/unload", "/v2/models/odd%20name%2Fx/infer"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(want); i++) at(paths, want[i]);
    /* mlp's request: the input's name an enum, FP32 fixed, shapes [1,16] .. [8,16] listed */
    const celer_json *schemas = at(at(doc, "components"), "schemas");
    const celer_json *req = at(schemas, "mlp.2.InferRequest");
    assert_false(at(req, "additionalProperties")->boolean);
    const celer_json *input = item(at(at(at(at(req, "properties"), "inputs"), "items"), "oneOf"), 0);
    const celer_json *props = at(input, "properties");
    assert_string_equal(item(at(at(props, "name"), "enum"), 0)->string, "features");
    assert_string_equal(item(at(at(props, "datatype"), "enum"), 0)->string, "FP32");
    const celer_json *shapes = at(at(props, "shape"), "enum");
    raw_is(shapes, "[[1,16],[2,16],[3,16],[4,16],[5,16],[6,16],[7,16],[8,16]]");
    /* the other model: its name made component-safe, UINT8 0..255, BOOL boolean, one shape */
    const celer_json *req2 = at(schemas, "odd_name_x_1.7.InferRequest");
    const celer_json *oneof = at(at(at(at(req2, "properties"), "inputs"), "items"), "oneOf");
    const celer_json *pix = at(item(oneof, 0), "properties");
    assert_int_equal(at(pix, "shape")->type, CELER_JSON_OBJECT);
    raw_is(at(at(pix, "shape"), "enum"), "[[1,3,8,8]]");
    const celer_json *flat = item(at(at(pix, "data"), "anyOf"), 0);
    assert_int_equal((int)at(at(flat, "items"), "maximum")->number, 255);
    assert_int_equal((int)at(flat, "maxItems")->number, 192);
    const celer_json *mask = at(item(oneof, 1), "properties");
    assert_null(celer_json_get(at(mask, "shape"), "enum")); /* a free dim: the rank only */
    assert_int_equal((int)at(at(mask, "shape"), "maxItems")->number, 2);
    /* the example: one batch row of zeros, accepted shapes */
    const celer_json *ex = at(at(at(at(at(at(paths, "/v2/models/mlp/infer"), "post"), "requestBody"), "content"),
                                "application/json"),
                             "example");
    const celer_json *ex_in = item(at(ex, "inputs"), 0);
    raw_is(at(ex_in, "shape"), "[1,16]");
    /* one version's document: its paths only */
    celer_jbuf b2;
    const celer_json *one = write_doc(models, 2, 0, 0, false, &b2, &a);
    const celer_json *p1 = at(one, "paths");
    at(p1, "/v2/models/mlp/versions/1/infer");
    assert_null(celer_json_get(p1, "/v2/models/mlp/infer"));
    assert_null(celer_json_get(p1, "/v2/health/live"));
    assert_null(celer_json_get(at(at(one, "components"), "schemas"), "mlp.2.InferRequest"));
    celer_jbuf_free(&b);
    celer_jbuf_free(&b2);
    celer_arena_free(&a);
}

static void test_pipeline_objects(void **unused) {
    (void)unused;
    static const int64_t rows[] = {-1}, list[] = {-1, -1}, out_ids[] = {-1, 10};
    float age = 35;
    celer_tensor age_default = {.dtype = CELER_FLOAT, .shape = {.rank = 0}, .data = &age};
    celer_openapi_tensor in[] = {{"age", CELER_FLOAT, 1, rows, &age_default, false},
                                 {"exclude", CELER_INT64, 2, list, NULL, false},
                                 {"photo", CELER_STRING, 1, rows, NULL, true}};
    celer_openapi_tensor out[] = {{"item_ids", CELER_INT64, 2, out_ids, NULL, false},
                                  {"label", CELER_STRING, 1, rows, NULL, false}};
    celer_openapi_version v[] = {{"1", 3, 2, in, out}};
    celer_openapi_model m[] = {{"recommend", true, "user features -> top-10 items", 0, 1, v}};
    celer_jbuf b;
    celer_arena a;
    celer_arena_init(&a, 1 << 16, 0);
    const celer_json *doc = write_doc(m, 1, 0, -1, false, &b, &a);
    const celer_json *schemas = at(at(doc, "components"), "schemas");
    const celer_json *o = at(schemas, "recommend.1.Object");
    assert_string_equal(at(o, "description")->string, "user features -> top-10 items");
    /* required: the fields without a default */
    const celer_json *req = at(o, "required");
    assert_int_equal(req->n, 2);
    assert_string_equal(item(req, 0)->string, "exclude");
    const celer_json *props = at(o, "properties");
    assert_int_equal((int)at(at(props, "age"), "default")->number, 35);
    assert_string_equal(at(at(props, "exclude"), "type")->string, "array");
    assert_string_equal(at(item(at(at(props, "photo"), "allOf"), 0), "type")->string, "string");
    /* the response: per row, ids a list of 10 */
    const celer_json *r = at(at(schemas, "recommend.1.ObjectResponse"), "properties");
    assert_int_equal((int)at(at(r, "item_ids"), "maxItems")->number, 10);
    assert_string_equal(at(at(r, "label"), "type")->string, "string");
    /* the example: the default, a list, a PNG for the image; image bodies accepted */
    const celer_json *post = at(at(at(doc, "paths"), "/v2/models/recommend/infer"), "post");
    const celer_json *content = at(at(post, "requestBody"), "content");
    const celer_json *ex = at(at(content, "application/json"), "example");
    assert_int_equal((int)at(ex, "age")->number, 35);
    raw_is(at(ex, "exclude"), "[0]");
    assert_true(!strncmp(at(ex, "photo")->string, "data:image/png;base64,", 22));
    at(content, "image/jpeg");
    assert_null(celer_json_get(at(doc, "paths"), "/v1/models/recommend:predict")); /* pipelines take /infer */
    celer_jbuf_free(&b);
    celer_arena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model_typed), cmocka_unit_test(test_pipeline_objects)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
