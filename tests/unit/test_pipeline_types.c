/* Unit tests of celer_pipeline_output_types (src/pipeline/pipeline.c and the `types` rule of every
 * step kind): the example pipelines of examples/repository against the metadata their models
 * report, small pipelines covering each kind, routes whose branches disagree, model metadata
 * given, versioned, missing and not asked for (fn NULL).
 *
 * The rules restate what each kind's run allocates, so wherever it can a test also runs the
 * pipeline (the example ones calling their real ONNX models, the others models faked from the
 * same metadata) and checks every output tensor against its inferred type: the dtype when known,
 * the rank and every dim that is not -1 after the row dim. A rule that drifts from its run fails
 * there. Types are compared as text: "FP32 [-1,3]", "INT64 ?" (rank unknown), "? [3]" (dtype
 * unknown). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "pipeline/pipeline.h"
#include "runtime/runtime.h"
#include "opcase.h"
#include "testutil.h"

#define STR(...) ((const char *const[]){__VA_ARGS__})
#define PL_MAX_IO_TEST 16 /* model inputs / outputs a test model has, at most */

static char tmpdir[64];

/* ---- models: metadata as GET /v2/models/{name} reports it, and answers to calls ---- */

typedef struct fake_io {
    const char *model, *version; /* version NULL: any */
    const char *tensor;
    bool output;
    celer_dtype dtype;
    int rank;
    int64_t dims[CELER_MAX_RANK];
} fake_io;

/* The example repository's models, as `celer serve --model-repository examples/repository`
 * reports them (curl /v2/models/<name>): each batches, so the batch dim is -1. */
static const fake_io example_models[] = {
    {"tiny_cnn", NULL, "image", false, CELER_FLOAT, 4, {-1, 3, 64, 64}},
    {"tiny_cnn", NULL, "logits", true, CELER_FLOAT, 2, {-1, 10}},
    {"user_tower", NULL, "features", false, CELER_FLOAT, 2, {-1, 19}},
    {"user_tower", NULL, "embedding", true, CELER_FLOAT, 2, {-1, 32}},
    {"mlp", NULL, "features", false, CELER_FLOAT, 2, {-1, 16}},
    {"mlp", NULL, "scores", true, CELER_FLOAT, 2, {-1, 8}},
    {"mlp_basic", NULL, "features", false, CELER_FLOAT, 2, {-1, 16}},
    {"mlp_basic", NULL, "scores", true, CELER_FLOAT, 2, {-1, 8}},
};

/* Made up: `tower` batches (version 2 has a wider embedding), `whole` does not (its first dim is
 * still taken as the rows; a scalar output has none). */
static const fake_io made_up_models[] = {
    {"tower", "2", "emb", true, CELER_FLOAT, 2, {-1, 6}},
    {"tower", NULL, "emb", true, CELER_FLOAT, 2, {-1, 4}},
    {"tower", NULL, "ids", true, CELER_INT64, 3, {-1, 2, -1}},
    {"whole", NULL, "grid", true, CELER_INT32, 2, {2, 3}},
    {"whole", NULL, "total", true, CELER_DOUBLE, 0, {0}},
};

typedef struct model_table {
    const fake_io *io;
    int n;
    int calls;
} model_table;

#define TABLE(a) ((model_table){(a), (int)CELER_ARRAY_LEN(a), 0})

static const fake_io *find_io(const model_table *t, const char *model, const char *version, const char *tensor,
                              bool output) {
    for (int i = 0; i < t->n; i++) {
        const fake_io *e = &t->io[i];
        if (!strcmp(e->model, model) && (!e->version || !strcmp(e->version, version)) && !strcmp(e->tensor, tensor) &&
            e->output == output)
            return e;
    }
    return NULL;
}

static bool model_io(void *user, const char *model, const char *version, const char *tensor, bool output,
                     celer_pipeline_type *out) {
    model_table *t = user;
    t->calls++;
    assert_non_null(version);
    const fake_io *e = find_io(t, model, version, tensor, output);
    if (!e) return false;
    out->dtype = e->dtype;
    out->rank = e->rank;
    memcpy(out->dims, e->dims, sizeof out->dims);
    return true;
}

/* The example repository's ONNX models, loaded once (the name copied: a call's lives in its
 * pipeline). */
static struct {
    char name[64];
    celer_model *model;
} real_models[8];

/* examples/<rel>: under CELER_EXAMPLES, else found from this file's path (tests/unit/ of the
 * source tree), for runs with an environment of their own (the .blas variant). */
static const char *examples_path(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("CELER_EXAMPLES");
    if (root) {
        snprintf(buf, cap, "%s/%s", root, rel);
        return buf;
    }
    const char *src = __FILE__, *tail = strstr(src, "tests/unit/");
    snprintf(buf, cap, "%.*sexamples/%s", tail ? (int)(tail - src) : 0, src, rel);
    return buf;
}

static celer_model *real_model(const char *name) {
    size_t i = 0;
    for (; i < CELER_ARRAY_LEN(real_models) && real_models[i].model; i++)
        if (!strcmp(real_models[i].name, name)) return real_models[i].model;
    assert_true(i < CELER_ARRAY_LEN(real_models));
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "repository/%s/1/model.onnx", name);
    celer_model *m = NULL;
    if (celer_model_load(examples_path(rel, path, sizeof path), NULL, &m)) fail_msg("%s: %s", path, celer_error_message());
    snprintf(real_models[i].name, sizeof real_models[i].name, "%s", name);
    real_models[i].model = m;
    return m;
}

/* Answers a call with the real model of that name. */
static void answer_real(celer_pipeline_run *r, const celer_pipeline_call *call) {
    celer_model *m = real_model(call->model);
    celer_tensor in[PL_MAX_IO_TEST];
    int n_in = celer_model_input_count(m);
    assert_true(n_in <= PL_MAX_IO_TEST);
    for (int i = 0; i < n_in; i++) {
        int k = 0;
        while (k < call->n_inputs && strcmp(call->input_names[k], celer_model_input(m, i)->name)) k++;
        assert_true(k < call->n_inputs);
        in[i] = call->inputs[k];
    }
    celer_context *ctx = NULL;
    assert_int_equal(celer_context_init(m, &ctx), CELER_OK);
    const celer_tensor *out = NULL;
    if (celer_context_run(ctx, in, &out)) fail_msg("model %s: %s", call->model, celer_error_message());
    const char *names[PL_MAX_IO_TEST];
    int n_out = celer_model_output_count(m);
    for (int i = 0; i < n_out; i++) names[i] = celer_model_output(m, i)->name;
    celer_status st = celer_pipeline_resume(r, names, out, n_out);
    celer_context_free(ctx);
    if (st) fail_msg("resume: %s", celer_error_message());
}

/* Answers a call with zeros shaped as the table says: the batch dim -1 is the call's rows, other
 * -1 dims 2. */
static void answer_fake(celer_pipeline_run *r, const celer_pipeline_call *call, const model_table *t, celer_arena *a) {
    int64_t rows = call->n_inputs && call->inputs[0].shape.rank ? call->inputs[0].shape.dims[0] : 1;
    const char *names[PL_MAX_IO_TEST];
    celer_tensor outs[PL_MAX_IO_TEST];
    int n = 0;
    for (int i = 0; i < t->n; i++) {
        const fake_io *e = &t->io[i];
        if (strcmp(e->model, call->model) || !e->output || find_io(t, e->model, call->version, e->tensor, true) != e)
            continue;
        celer_tensor *o = &outs[n];
        *o = (celer_tensor){.dtype = e->dtype, .shape = {.rank = e->rank}};
        for (int d = 0; d < e->rank; d++) o->shape.dims[d] = e->dims[d] >= 0 ? e->dims[d] : d == 0 ? rows : 2;
        size_t bytes = celer_dtype_size(e->dtype) * (size_t)celer_shape_numel(&o->shape);
        o->data = celer_arena_alloc(a, bytes ? bytes : 1);
        assert_non_null(o->data);
        names[n++] = e->tensor;
    }
    if (celer_pipeline_resume(r, names, outs, n)) fail_msg("resume: %s", celer_error_message());
}

/* ---- types as text ---- */

static const char *type_str(const celer_pipeline_type *t, char *buf, size_t cap) {
    const char *dt = t->dtype == CELER_UNDEFINED ? "?" : celer_dtype_kserve_name(t->dtype);
    int n = snprintf(buf, cap, "%s ", dt ? dt : celer_dtype_name(t->dtype));
    if (t->rank < 0) {
        snprintf(buf + n, cap - (size_t)n, "?");
        return buf;
    }
    n += snprintf(buf + n, cap - (size_t)n, "[");
    for (int d = 0; d < t->rank; d++) n += snprintf(buf + n, cap - (size_t)n, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    snprintf(buf + n, cap - (size_t)n, "]");
    return buf;
}

static celer_pipeline *load_text(const char *yaml) {
    celer_pipeline *p = NULL;
    if (celer_pipeline_parse(yaml, strlen(yaml), "types.yaml", tmpdir, &p)) fail_msg("load: %s", celer_error_message());
    return p;
}

static celer_pipeline *load_example(const char *name) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "repository/%s/pipeline.yaml", name);
    celer_pipeline *p = NULL;
    if (celer_pipeline_load(examples_path(rel, path, sizeof path), &p)) fail_msg("load: %s", celer_error_message());
    return p;
}

/* Works the types out into `types` and compares them with `want`, one per output. The answer must
 * not depend on the call (the function is pure). */
static void expect_types(const celer_pipeline *p, celer_pipeline_model_io_fn fn, void *user, const char *const *want,
                         int n_want, celer_pipeline_type *types) {
    int n = celer_pipeline_output_count(p);
    assert_int_equal(n, n_want);
    celer_pipeline_output_types(p, fn, user, types);
    celer_pipeline_type again[CELER_PIPELINE_MAX_IO];
    celer_pipeline_output_types(p, fn, user, again);
    bool ok = true;
    for (int i = 0; i < n; i++) {
        char got[128], got2[128];
        type_str(&types[i], got, sizeof got);
        type_str(&again[i], got2, sizeof got2);
        if (strcmp(got, want[i]) || strcmp(got2, got)) {
            printf("output %d '%s': want %s, got %s (then %s)\n", i, celer_pipeline_output_name(p, i), want[i], got, got2);
            ok = false;
        }
    }
    if (!ok) fail();
}

#define EXPECT_TYPES(p, fn, user, types, ...) \
    expect_types(p, fn, user, STR(__VA_ARGS__), NARGS(const char *, __VA_ARGS__), types)

/* ---- running, to check the types against what a run returns ---- */

typedef struct run_spec {
    int n;                          /* inputs set (the others take their defaults) */
    const char *const *names;
    const celer_tensor *tensors;
    int n_params;                   /* request parameters, for routes */
    const char *const *keys, *const *values;
    const model_table *fake;        /* model calls: faked from this table, or NULL: the real models */
} run_spec;

static int input_index(const celer_pipeline *p, const char *name) {
    for (int i = 0; i < celer_pipeline_input_count(p); i++)
        if (!strcmp(celer_pipeline_input(p, i)->name, name)) return i;
    fail_msg("no input '%s'", name);
    return -1;
}

/* Runs p and checks each output against types[i] where known: dtype; rank + 1 (the rows); each
 * dim that is not -1. */
static void run_and_check(const celer_pipeline *p, const celer_pipeline_type *types, const run_spec *spec) {
    celer_arena arena;
    celer_arena_init(&arena, 64 * 1024, 256u << 20);
    celer_pipeline_run *r = NULL;
    assert_int_equal(celer_pipeline_run_init(p, &arena, &r), CELER_OK);
    for (int i = 0; i < spec->n; i++)
        if (celer_pipeline_set_input(r, input_index(p, spec->names[i]), &spec->tensors[i]))
            fail_msg("input %s: %s", spec->names[i], celer_error_message());
    celer_pipeline_set_parameters(r, spec->keys, spec->values, spec->n_params);
    for (;;) {
        const celer_pipeline_call *call = NULL;
        if (celer_pipeline_run_steps(r, &call)) fail_msg("run: %s", celer_error_message());
        if (!call) break;
        assert_non_null(call->model);
        if (spec->fake) answer_fake(r, call, spec->fake, &arena);
        else answer_real(r, call);
    }
    const celer_tensor *out = celer_pipeline_run_outputs(r);
    bool ok = true;
    int checked = 0;
    for (int i = 0; i < celer_pipeline_output_count(p); i++) {
        const celer_pipeline_type *t = &types[i];
        const celer_tensor *o = &out[i];
        bool match = t->dtype == CELER_UNDEFINED || t->dtype == o->dtype;
        if (t->rank >= 0) {
            match = match && o->shape.rank == t->rank + 1;
            for (int d = 0; match && d < t->rank; d++) match = t->dims[d] < 0 || t->dims[d] == o->shape.dims[d + 1];
        }
        checked += t->dtype != CELER_UNDEFINED || t->rank >= 0;
        if (!match) {
            char a[128], b[128];
            printf("output '%s': inferred %s, the run gave %s %s\n", celer_pipeline_output_name(p, i),
                   type_str(t, a, sizeof a), celer_dtype_name(o->dtype), celer_shape_str(&o->shape, b, sizeof b));
            ok = false;
        }
    }
    celer_pipeline_run_end(r);
    celer_arena_free(&arena);
    if (!ok) fail();
    assert_true(checked > 0);
}

/* ---- test data ---- */

/* An RGB PNG of w x h (a gradient), malloc'd. */
static celer_str make_png(int w, int h) {
    uint8_t *px = malloc((size_t)(w * h * 3));
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 7 + i / (w * 3));
    size_t size;
    uint8_t *buf = tu_png(w, h, PNG_FORMAT_RGB, px, &size);
    free(px);
    return (celer_str){(char *)buf, size};
}

static void write_text(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/celer-types.XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    write_text("labels.txt", "zero\none\ntwo\n");
    float items[5 * 4];
    for (int i = 0; i < 20; i++) items[i] = (float)(i % 7) - 3;
    char path[256];
    snprintf(path, sizeof path, "%s/items.npy", tmpdir);
    celer_tensor t = TEN(CELER_FLOAT, items, 5, 4);
    return celer_npy_write(path, &t) == CELER_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < CELER_ARRAY_LEN(real_models) && real_models[i].model; i++)
        celer_model_free(real_models[i].model);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the example pipelines ---- */

static void test_example_classify(void **state) {
    (void)state;
    celer_pipeline *p = load_example("classify");
    celer_pipeline_type types[3];
    model_table t = TABLE(example_models);
    /* decode -> resize 72 -> crop 64 -> CHW -> tiny_cnn logits [10] -> softmax -> top 5 */
    EXPECT_TYPES(p, model_io, &t, types, "BYTES [5]", "FP32 [5]", "INT64 [5]");
    assert_int_equal(t.calls, 2); /* one model output, asked once per call of the function */
    celer_str img[2] = {make_png(90, 70), make_png(90, 70)};
    run_and_check(p, types, &(run_spec){.n = 1, .names = STR("image"), .tensors = &TEN(CELER_STRING, img, 2)});
    free((void *)img[0].data);
    free((void *)img[1].data);
    /* without the model's metadata, nothing after it has a known shape */
    EXPECT_TYPES(p, NULL, NULL, types, "BYTES ?", "FP32 ?", "INT64 ?");
    celer_pipeline_free(p);
}

static void test_example_recommend(void **state) {
    (void)state;
    celer_pipeline *p = load_example("recommend");
    celer_pipeline_type types[2];
    model_table t = TABLE(example_models);
    EXPECT_TYPES(p, model_io, &t, types, "INT64 [10]", "FP32 [10]");
    celer_str country[3] = {celer_str_c("de"), celer_str_c("xx"), celer_str_c("us")};
    run_and_check(p, types,
                  &(run_spec){.n = 3, .names = STR("age", "country", "exclude"),
                              .tensors = (celer_tensor[]){TEN(CELER_FLOAT, F32(21, 40, 70), 3), TEN(CELER_STRING, country, 3),
                                               TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6), 3, 2)}});
    /* recommend's outputs do not depend on the user embedding's type */
    EXPECT_TYPES(p, NULL, NULL, types, "INT64 [10]", "FP32 [10]");
    celer_pipeline_free(p);
}

static void test_example_route(void **state) {
    (void)state;
    celer_pipeline *p = load_example("route");
    celer_pipeline_type types[1];
    model_table t = TABLE(example_models);
    EXPECT_TYPES(p, model_io, &t, types, "FP32 [8]");
    assert_int_equal(t.calls, 6); /* three branches, each a model step; twice */
    float x[2 * 16] = {0};
    for (int i = 0; i < 32; i++) x[i] = (float)i / 10;
    const char *segs[] = {"premium", "basic", "other"};
    for (int s = 0; s < 3; s++) {
        celer_str seg[2] = {celer_str_c(segs[s]), celer_str_c(segs[s])};
        run_and_check(p, types,
                      &(run_spec){.n = 2, .names = STR("segment", "features"),
                                  .tensors = (celer_tensor[]){TEN(CELER_STRING, seg, 2), TEN(CELER_FLOAT, x, 2, 16)}});
    }
    EXPECT_TYPES(p, NULL, NULL, types, "FP32 ?");
    /* one branch's model not loaded: the merge is unknown too */
    static const fake_io only_mlp[] = {{"mlp", NULL, "scores", true, CELER_FLOAT, 2, {-1, 8}}};
    t = TABLE(only_mlp);
    EXPECT_TYPES(p, model_io, &t, types, "FP32 ?");
    celer_pipeline_free(p);
}

/* ---- each kind ---- */

static void test_numeric_kinds(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: x, dtype: FP32, shape: [3]}\n"
                                  "  - {name: v, dtype: FP32, shape: [-1]}\n"
                                  "  - {name: k, dtype: INT64}\n"
                                  "  - {name: word, dtype: BYTES}\n"
                                  "  - {name: num, dtype: BYTES}\n"
                                  "  - {name: img, dtype: FP32, shape: [3, -1, 2]}\n"
                                  "steps:\n"
                                  "  - normalize: {input: x, mean: 0, std: 2, output: n1}\n"
                                  "  - normalize: {input: v, mean: [1, 2, 3, 4], std: 1, output: n2}\n"
                                  "  - normalize: {input: img, mean: [1, 2, 3, 4], std: 1, axis: 2, output: n3}\n"
                                  "  - normalize: {input: img, mean: [1, 2, 3], std: 1, axis: 1, output: n4}\n"
                                  "  - scale: {input: k, factor: 2, output: s}\n"
                                  "  - clip: {input: v, min: 0, output: c}\n"
                                  "  - log1p: {input: x, output: l}\n"
                                  "  - fill_missing: {input: v, value: 0, output: f}\n"
                                  "  - cast: {input: x, dtype: INT32, output: ci}\n"
                                  "  - cast: {input: num, dtype: FP64, output: cn}\n"
                                  "  - cast: {input: k, dtype: BOOL, output: cb}\n"
                                  "  - bucketize: {input: x, boundaries: [0, 1], output: b}\n"
                                  "  - lookup: {input: word, vocabulary: [a, b], output: w}\n"
                                  "  - lookup: {input: k, vocabulary: ['1', '2'], output: wk}\n"
                                  "  - one_hot: {input: w, depth: 3, output: oh}\n"
                                  "  - one_hot: {input: b, depth: 4, output: oh2}\n"
                                  "  - concat: {inputs: [oh, oh2, k, x], output: cat}\n"
                                  "  - concat: {inputs: [x, v], output: catv}\n"
                                  "  - concat: {inputs: [img, x], output: cati}\n"
                                  "  - log1p: x\n"
                                  "outputs: [n1, n2, n3, n4, s, c, l, f, ci, cn, cb, b, w, wk, oh, oh2, cat, catv, cati,\n"
                                  "          {name: logx, from: x}]\n");
    celer_pipeline_type types[20];
    EXPECT_TYPES(p, NULL, NULL, types, "FP32 [3]", "FP32 [4]", "FP32 [3,4,2]", "FP32 [3,-1,2]", "FP32 []", "FP32 [-1]",
                 "FP32 [3]", "FP32 [-1]", "INT32 [3]", "FP64 []", "BOOL []", "INT64 [3]", "INT64 []", "INT64 []",
                 "FP32 [3]", "FP32 [3,4]", "FP32 [19]", "FP32 [-1]", "FP32 [-1]", "FP32 [3]");
    float img[2 * 3 * 4 * 2];
    for (int i = 0; i < 48; i++) img[i] = (float)i;
    celer_str words[2] = {celer_str_c("b"), celer_str_c("zz")}, nums[2] = {celer_str_c("1.5"), celer_str_c("-2")};
    run_and_check(p, types,
                  &(run_spec){.n = 6, .names = STR("x", "v", "k", "word", "num", "img"),
                              .tensors = (celer_tensor[]){TEN(CELER_FLOAT, F32(0.5f, 1, 2, -1, 0, 3), 2, 3),
                                               TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6, 7, 8), 2, 4),
                                               TEN(CELER_INT64, I64(1, 7), 2), TEN(CELER_STRING, words, 2),
                                               TEN(CELER_STRING, nums, 2), TEN(CELER_FLOAT, img, 2, 3, 4, 2)}});
    celer_pipeline_free(p);
}

static void test_post_kinds(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: logits, dtype: FP32, shape: [4, 6]}\n"
                                  "  - {name: v, dtype: FP64, shape: [-1]}\n"
                                  "  - {name: one, dtype: FP32}\n"
                                  "steps:\n"
                                  "  - softmax: {input: logits, output: sm}\n"
                                  "  - softmax: {input: logits, axis: 1, output: sm1}\n"
                                  "  - sigmoid: {input: v, output: sg}\n"
                                  "  - argmax: {input: logits, output: am}\n"
                                  "  - argmax: {input: logits, axis: 1, output: am1}\n"
                                  "  - argmax: {input: logits, axis: -3, output: am0}\n" /* the rows' axis */
                                  "  - argmax: {input: v, output: amv}\n"
                                  "  - top_k: {input: logits, k: 3, output: [ti, ts]}\n"
                                  "  - top_k: {input: logits, k: 10, labels: labels.txt, output: [li, ls, ll]}\n"
                                  "  - top_k: {input: v, k: 2, output: [vi, vs]}\n"
                                  "  - top_k: {input: one, k: 2, output: [oi, os]}\n" /* along the rows */
                                  "  - threshold: {input: v, value: 0, output: th}\n"
                                  "outputs: [sm, sm1, sg, am, am1, am0, amv, ti, ts, li, ls, ll, vi, vs, oi, os, th]\n");
    celer_pipeline_type types[17];
    EXPECT_TYPES(p, NULL, NULL, types, "FP32 [4,6]", "FP32 [4,6]", "FP32 [-1]", "INT64 [4]", "INT64 [6]", "INT64 ?",
                 "INT64 []", "INT64 [4,3]", "FP32 [4,3]", "INT64 [4,6]", "FP32 [4,6]", "BYTES [4,6]", "INT64 [-1]",
                 "FP32 [-1]", "INT64 ?", "FP32 ?", "BOOL [-1]");
    float logits[3 * 24];
    for (int i = 0; i < 72; i++) logits[i] = (float)((i * 5) % 11);
    run_and_check(p, types,
                  &(run_spec){.n = 3, .names = STR("logits", "v", "one"),
                              .tensors = (celer_tensor[]){TEN(CELER_FLOAT, logits, 3, 4, 6),
                                               TEN(CELER_DOUBLE, ((double[]){1, -2, 3, 0.5, 0, -1}), 3, 2),
                                               TEN(CELER_FLOAT, F32(1, 3, 2), 3)}});
    celer_pipeline_free(p);
}

static void test_image_kinds(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: image, dtype: BYTES}\n"
                                  "  - {name: raw, dtype: FP32, shape: [40, 60, 3]}\n"
                                  "  - {name: tall, dtype: UINT8, shape: [50, 20, 1]}\n"
                                  "  - {name: any, dtype: UINT8, shape: [-1, -1, -1]}\n"
                                  "steps:\n"
                                  "  - decode_image: {input: image, output: rgb}\n"
                                  "  - decode_image: {input: image, channels: 1, output: grey}\n"
                                  "  - resize: {input: rgb, size: [20, 30], output: r1}\n"
                                  "  - resize: {input: grey, shorter_side: 16, output: r2}\n"
                                  "  - resize: {input: raw, shorter_side: 20, output: r3}\n"
                                  "  - resize: {input: raw, shorter_side: 7, output: r4}\n"
                                  "  - resize: {input: tall, shorter_side: 9, output: r5}\n"
                                  "  - center_crop: {input: r1, size: [10, 12], output: cc}\n"
                                  "  - center_crop: {input: raw, size: [8, 8], output: cc2}\n"
                                  "  - center_crop: {input: any, size: [2, 2], output: cc3}\n"
                                  "  - to_chw: {input: cc, output: chw}\n"
                                  "  - to_chw: {input: rgb, output: chw2}\n"
                                  "outputs: [rgb, grey, r1, r2, r3, r4, r5, cc, cc2, cc3, chw, chw2]\n");
    celer_pipeline_type types[12];
    /* 40x60 to shorter side 7: 7 x int(7 * 60 / 40) = 7 x 10; 50x20 to 9: int(9 * 50 / 20) x 9 = 22 x 9 */
    EXPECT_TYPES(p, NULL, NULL, types, "UINT8 [-1,-1,3]", "UINT8 [-1,-1,1]", "UINT8 [20,30,3]", "UINT8 [-1,-1,1]",
                 "FP32 [20,30,3]", "FP32 [7,10,3]", "UINT8 [22,9,1]", "UINT8 [10,12,3]", "FP32 [8,8,3]",
                 "UINT8 [2,2,-1]", "FP32 [3,10,12]", "FP32 [3,-1,-1]");
    celer_str img[2] = {make_png(50, 40), make_png(50, 40)};
    float *raw = calloc(2 * 40 * 60 * 3, sizeof *raw);
    uint8_t *tall = calloc(2 * 50 * 20, 1), any[2 * 5 * 4 * 2] = {0};
    run_and_check(p, types,
                  &(run_spec){.n = 4, .names = STR("image", "raw", "tall", "any"),
                              .tensors = (celer_tensor[]){TEN(CELER_STRING, img, 2), TEN(CELER_FLOAT, raw, 2, 40, 60, 3),
                                               TEN(CELER_UINT8, tall, 2, 50, 20, 1),
                                               TEN(CELER_UINT8, any, 2, 5, 4, 2)}});
    free(raw);
    free(tall);
    free((void *)img[0].data);
    free((void *)img[1].data);
    celer_pipeline_free(p);
}

/* An input whose rank makes every run fail gives an unknown type, not a made-up one; a dtype the
 * step refuses gives an unknown dtype. */
static void test_impossible_shapes(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: flat, dtype: UINT8, shape: [5, 5]}\n"
                                  "  - {name: deep, dtype: INT64, shape: [1, 1, 1, 1, 1, 1, 1]}\n"
                                  "  - {name: text, dtype: BYTES, shape: [2, 2, 3]}\n"
                                  "steps:\n"
                                  "  - to_chw: {input: flat, output: t}\n"
                                  "  - resize: {input: flat, size: [2, 2], output: r}\n"
                                  "  - center_crop: {input: flat, size: [2, 2], output: c}\n"
                                  "  - one_hot: {input: deep, depth: 2, output: o}\n"
                                  "  - resize: {input: text, size: [2, 2], output: rt}\n"
                                  "  - center_crop: {input: text, size: [2, 2], output: ct}\n"
                                  "outputs: [t, r, c, o, rt, ct]\n");
    celer_pipeline_type types[6];
    EXPECT_TYPES(p, NULL, NULL, types, "? ?", "? ?", "? ?", "? ?", "? [2,2,3]", "? [2,2,3]");
    celer_pipeline_free(p);
}

static void test_recommend_kind(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: u, dtype: FP32, shape: [4]}\n"
                                  "  - {name: ex, dtype: INT64, shape: [-1], default: []}\n"
                                  "steps:\n"
                                  "  - recommend: {input: u, items: items.npy, k: 3, exclude: ex, output: [ids, scores]}\n"
                                  "  - recommend: {input: u, items: items.npy, k: 7, output: [ids7, scores7]}\n"
                                  "outputs: [ids, scores, ids7, scores7]\n");
    celer_pipeline_type types[4];
    /* k past the 5 items: padded to k */
    EXPECT_TYPES(p, NULL, NULL, types, "INT64 [3]", "FP32 [3]", "INT64 [7]", "FP32 [7]");
    run_and_check(p, types,
                  &(run_spec){.n = 2, .names = STR("u", "ex"),
                              .tensors = (celer_tensor[]){TEN(CELER_FLOAT, F32(1, 0, 0, 1, 0, 1, 1, 0), 2, 4),
                                               TEN(CELER_INT64, I64(0, 1), 2, 1)}});
    celer_pipeline_free(p);
}

static const char model_yaml[] = "inputs: [{name: x, dtype: FP32, shape: [2]}]\n"
                                 "steps:\n"
                                 "  - model: {name: tower, inputs: {dense: x}, outputs: {emb: e, ids: i}}\n"
                                 "  - model: {name: tower, version: '2', inputs: {dense: x}, outputs: {emb: e2}}\n"
                                 "  - model: {name: whole, inputs: [x], outputs: [grid, total]}\n"
                                 "  - softmax: {input: e, output: pe}\n"
                                 "  - concat: {inputs: [e, grid], output: cat}\n"
                                 "  - one_hot: {input: total, depth: 3, output: oh}\n"
                                 "  - resize: {input: e2, size: [4, 4], output: img}\n"
                                 "outputs: [e, i, e2, grid, total, pe, cat, oh, {name: im, from: img}]\n";

static void test_model_steps(void **state) {
    (void)state;
    celer_pipeline *p = load_text(model_yaml);
    celer_pipeline_type types[9];
    model_table t = TABLE(made_up_models);
    /* `whole` does not batch: [2, 3] is 2 rows of [3]; its scalar has no rows */
    EXPECT_TYPES(p, model_io, &t, types, "FP32 [4]", "INT64 [2,-1]", "FP32 [6]", "INT32 [3]", "FP64 ?", "FP32 [4]",
                 "FP32 [7]", "FP32 ?", "? ?");
    /* the fake models answer as the table says; `whole` gives 2 rows whatever the request has */
    celer_pipeline *q = load_text("inputs: [{name: x, dtype: FP32, shape: [2]}]\n"
                                  "steps:\n"
                                  "  - model: {name: tower, inputs: {dense: x}, outputs: {emb: e, ids: i}}\n"
                                  "  - model: {name: tower, version: '2', inputs: {dense: x}, outputs: {emb: e2}}\n"
                                  "  - model: {name: whole, inputs: [x], outputs: [grid]}\n"
                                  "  - softmax: {input: e, output: pe}\n"
                                  "outputs: [e, i, e2, grid, pe]\n");
    celer_pipeline_type qt[5];
    t = TABLE(made_up_models);
    EXPECT_TYPES(q, model_io, &t, qt, "FP32 [4]", "INT64 [2,-1]", "FP32 [6]", "INT32 [3]", "FP32 [4]");
    run_and_check(q, qt,
                  &(run_spec){.n = 1, .names = STR("x"), .tensors = (celer_tensor[]){TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6), 3, 2)}, .fake = &t});
    /* no metadata: what follows a model step knows only what its own rule fixes */
    EXPECT_TYPES(p, NULL, NULL, types, "? ?", "? ?", "? ?", "? ?", "? ?", "FP32 ?", "FP32 [-1]", "FP32 ?", "? [4,4,-1]");
    /* a model that is not loaded (the callback says no) is the same as no metadata */
    static const fake_io none[] = {{"other", NULL, "emb", true, CELER_FLOAT, 1, {-1}}};
    t = TABLE(none);
    EXPECT_TYPES(q, model_io, &t, qt, "? ?", "? ?", "? ?", "? ?", "FP32 ?");
    celer_pipeline_free(q);
    celer_pipeline_free(p);
}

/* ---- routes ---- */

static void test_route_disagreeing(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: seg, dtype: BYTES}\n"
                                  "  - {name: x, dtype: FP32, shape: [3]}\n"
                                  "steps:\n"
                                  "  - scale: {input: x, output: pre}\n"
                                  "  - route:\n"
                                  "      field: seg\n"
                                  "      cases:\n"
                                  "        a:\n"
                                  "          - cast: {input: x, dtype: INT64, output: y}\n"
                                  "          - one_hot: {input: y, depth: 4, output: z}\n"
                                  "          - scale: {input: x, output: same}\n"
                                  "          - concat: {inputs: [x], output: w}\n"
                                  "          - scale: {input: x, output: r}\n"
                                  "          - cast: {input: x, dtype: INT64, output: pre}\n" /* replaced here only */
                                  "        b:\n"
                                  "          - scale: {input: x, output: y}\n"
                                  "          - one_hot: {input: y, depth: 5, output: z}\n"
                                  "          - log1p: {input: x, output: same}\n"
                                  "          - concat: {inputs: [x, x], output: w}\n"
                                  "          - argmax: {input: x, output: r}\n"
                                  "      default:\n"
                                  "          - cast: {input: x, dtype: INT32, output: y}\n"
                                  "          - one_hot: {input: y, depth: 4, output: z}\n"
                                  "          - clip: {input: x, min: 0, output: same}\n"
                                  "          - concat: {inputs: [x], output: w}\n"
                                  "          - argmax: {input: x, output: r}\n"
                                  "  - argmax: {input: z, output: best}\n" /* the varying dim goes */
                                  "outputs: [y, z, same, w, r, pre, best]\n");
    celer_pipeline_type types[7];
    EXPECT_TYPES(p, NULL, NULL, types, "? [3]", "FP32 [3,-1]", "FP32 [3]", "FP32 [-1]", "? ?", "? [3]", "INT64 [3]");
    float x[6] = {0, 1, 2, 3, 2, 1};
    const char *segs[] = {"a", "b", "c"};
    for (int s = 0; s < 3; s++) {
        celer_str seg[2] = {celer_str_c(segs[s]), celer_str_c(segs[s])};
        run_and_check(p, types,
                      &(run_spec){.n = 2, .names = STR("seg", "x"), .tensors = (celer_tensor[]){TEN(CELER_STRING, seg, 2), TEN(CELER_FLOAT, x, 2, 3)}});
    }
    celer_pipeline_free(p);
}

/* Nested routes, a parameter without default (an unmatched value is no path), and models in the
 * branches. */
static void test_route_nested(void **state) {
    (void)state;
    celer_pipeline *p = load_text("inputs:\n"
                                  "  - {name: seg, dtype: BYTES}\n"
                                  "  - {name: k, dtype: INT64, shape: [2]}\n"
                                  "steps:\n"
                                  "  - route:\n"
                                  "      parameter: tier\n"
                                  "      cases:\n"
                                  "        gold:\n"
                                  "          - route:\n"
                                  "              field: seg\n"
                                  "              cases:\n"
                                  "                a: [{one_hot: {input: k, depth: 3, output: o}}, {sigmoid: {input: k, output: g}}]\n"
                                  "                b:\n"
                                  "                  - one_hot: {input: k, depth: 5, output: o}\n"
                                  "                  - model: {name: tower, inputs: {dense: k}, outputs: {emb: g}}\n"
                                  "        silver:\n"
                                  "          - one_hot: {input: k, depth: 3, output: o}\n"
                                  "          - sigmoid: {input: k, output: g}\n"
                                  "  - argmax: {input: o, output: best}\n"
                                  "outputs: [o, g, best]\n");
    celer_pipeline_type types[3];
    static const fake_io two[] = {{"tower", NULL, "emb", true, CELER_FLOAT, 2, {-1, 2}}};
    model_table t = TABLE(two);
    EXPECT_TYPES(p, model_io, &t, types, "FP32 [2,-1]", "FP32 [2]", "INT64 [2]");
    for (int s = 0; s < 3; s++) {
        celer_str seg[1] = {celer_str_c(s == 1 ? "b" : "a")};
        run_and_check(p, types,
                      &(run_spec){.n = 2, .names = STR("seg", "k"), .tensors = (celer_tensor[]){TEN(CELER_STRING, seg, 1), TEN(CELER_INT64, I64(0, 2), 1, 2)},
                                  .n_params = 1, .keys = STR("tier"), .values = STR(s == 2 ? "silver" : "gold"), .fake = &t});
    }
    /* the model's embedding is wider: its branch disagrees */
    static const fake_io four[] = {{"tower", NULL, "emb", true, CELER_FLOAT, 2, {-1, 4}}};
    t = TABLE(four);
    EXPECT_TYPES(p, model_io, &t, types, "FP32 [2,-1]", "FP32 [-1]", "INT64 [2]");
    EXPECT_TYPES(p, NULL, NULL, types, "FP32 [2,-1]", "? ?", "INT64 [2]");
    celer_pipeline_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_classify),
        cmocka_unit_test(test_example_recommend),
        cmocka_unit_test(test_example_route),
        cmocka_unit_test(test_numeric_kinds),
        cmocka_unit_test(test_post_kinds),
        cmocka_unit_test(test_image_kinds),
        cmocka_unit_test(test_impossible_shapes),
        cmocka_unit_test(test_recommend_kind),
        cmocka_unit_test(test_model_steps),
        cmocka_unit_test(test_route_disagreeing),
        cmocka_unit_test(test_route_nested),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
