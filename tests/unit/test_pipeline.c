/* Unit tests of the pipeline loader and executor (src/pipeline/pipeline.c) and of the numeric,
 * postprocess and recommend steps, each against a small reference computation written here.
 *
 * Pipelines are YAML text held in this file, parsed with celer_pipeline_parse; the files they
 * name (.npy, vocabularies, labels) live in a temporary folder made at setup. Every run gets its
 * own arena. Tests named *_regression pin down bugs they found (see each comment). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pipeline/pipeline.h"
#include "opcase.h"
#include "testutil.h"

static char tmpdir[64];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/celer-pipeline.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

static void write_text(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void write_npy(const char *name, celer_dtype t, int rank, const int64_t *dims, const void *data) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    celer_tensor x = {.dtype = t, .shape = {.rank = rank}, .data = (void *)data};
    for (int i = 0; i < rank; i++) x.shape.dims[i] = dims[i];
    assert_int_equal(celer_npy_write(path, &x), CELER_OK);
}

static celer_pipeline *load(const char *yaml) {
    celer_pipeline *p = NULL;
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "pipe.yaml", tmpdir, &p);
    if (st) {
        printf("load failed (%s): %s\n", celer_status_name(st), celer_error_message());
        fail();
    }
    assert_non_null(p);
    return p;
}

/* 1-based line of the first occurrence of `marker` in `text`. */
static int line_of(const char *text, const char *marker) {
    const char *at = strstr(text, marker);
    if (!at) {
        printf("marker '%s' not in the test's YAML\n", marker);
        fail();
    }
    int line = 1;
    for (const char *c = text; c < at; c++) line += *c == '\n';
    return line;
}

/* The YAML must fail to load with `want`, a message naming bad.yaml and the line of `marker`,
 * and containing `substr`. */
static void load_fails(const char *yaml, celer_status want, const char *marker, const char *substr) {
    celer_pipeline *p = NULL;
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "bad.yaml", tmpdir, &p);
    char where[64];
    snprintf(where, sizeof where, "bad.yaml:%d:", line_of(yaml, marker));
    const char *msg = celer_error_message();
    if (getenv("CELER_TEST_VERBOSE")) printf("    %s\n", msg);
    if (st != want || !strstr(msg, where) || !strstr(msg, substr)) {
        printf("want %s with '%s' and '%s', got %s: '%s'\n--- yaml:\n%s---\n", celer_status_name(want), where,
               substr, celer_status_name(st), msg, yaml);
        celer_pipeline_free(p);
        fail();
    }
    assert_null(p);
}

typedef struct run_ctx {
    celer_pipeline *p;
    celer_arena arena;
    celer_pipeline_run *r;
} run_ctx;

static void run_begin(run_ctx *c) {
    celer_arena_init(&c->arena, 64 * 1024, 64u << 20);
    assert_int_equal(celer_pipeline_run_init(c->p, &c->arena, &c->r), CELER_OK);
}

/* Open contexts live in a pool so that a failed assertion (which leaves the test function) does
 * not leak them: the per-test teardown closes what is left. */
enum { MAX_CTX = 4 };
static run_ctx ctx_pool[MAX_CTX];
static bool ctx_used[MAX_CTX];

static run_ctx *ctx_adopt(celer_pipeline *p) {
    for (int i = 0; i < MAX_CTX; i++)
        if (!ctx_used[i]) {
            ctx_used[i] = true;
            run_ctx *c = &ctx_pool[i];
            c->p = p;
            run_begin(c);
            return c;
        }
    celer_pipeline_free(p);
    fail_msg("more than %d pipelines open", MAX_CTX);
    return NULL;
}

static run_ctx *ctx_open(const char *yaml) { return ctx_adopt(load(yaml)); }

/* A fresh run of the same pipeline. */
static void ctx_again(run_ctx *c) {
    celer_arena_free(&c->arena);
    run_begin(c);
}

static void ctx_close(run_ctx *c) {
    celer_arena_free(&c->arena);
    celer_pipeline_free(c->p);
    ctx_used[c - ctx_pool] = false;
}

static int cleanup(void **state) {
    (void)state;
    for (int i = 0; i < MAX_CTX; i++)
        if (ctx_used[i]) ctx_close(&ctx_pool[i]);
    return 0;
}

static int input_index(const celer_pipeline *p, const char *name) {
    for (int i = 0; i < celer_pipeline_input_count(p); i++)
        if (!strcmp(celer_pipeline_input(p, i)->name, name)) return i;
    printf("no input '%s'\n", name);
    fail();
    return -1;
}

/* The tensor struct is copied; its data must outlive the run. */
static void set_in(run_ctx *c, const char *name, celer_tensor t) {
    celer_status st = celer_pipeline_set_input(c->r, input_index(c->p, name), &t);
    if (st) {
        printf("set_input %s: %s\n", name, celer_error_message());
        fail();
    }
}

static celer_status try_set(run_ctx *c, const char *name, celer_tensor t) {
    return celer_pipeline_set_input(c->r, input_index(c->p, name), &t);
}

/* Runs to the end (no model call expected); returns the outputs. */
static const celer_tensor *run_ok(run_ctx *c) {
    const celer_pipeline_call *call = (void *)1;
    celer_status st = celer_pipeline_run_steps(c->r, &call);
    if (st) {
        printf("run failed (%s): %s\n", celer_status_name(st), celer_error_message());
        fail();
    }
    assert_null(call);
    const celer_tensor *out = celer_pipeline_run_outputs(c->r);
    assert_non_null(out);
    return out;
}

static celer_status run_err(run_ctx *c) {
    const celer_pipeline_call *call = NULL;
    celer_status st = celer_pipeline_run_steps(c->r, &call);
    assert_null(call);
    return st;
}

static bool near(double got, double want, double tol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

static void expect_f32(const celer_tensor *t, const float *want, int64_t n, double tol) {
    assert_int_equal(t->dtype, CELER_FLOAT);
    assert_int_equal(celer_shape_numel(&t->shape), n);
    for (int64_t i = 0; i < n; i++) {
        float g = ((const float *)t->data)[i];
        if (!near(g, want[i], tol)) {
            printf("element %lld: got %.9g, want %.9g\n", (long long)i, g, want[i]);
            fail();
        }
    }
}

static void expect_i64(const celer_tensor *t, const int64_t *want, int64_t n) {
    assert_int_equal(t->dtype, CELER_INT64);
    assert_int_equal(celer_shape_numel(&t->shape), n);
    for (int64_t i = 0; i < n; i++) {
        int64_t g = ((const int64_t *)t->data)[i];
        if (g != want[i]) {
            printf("element %lld: got %lld, want %lld\n", (long long)i, (long long)g, (long long)want[i]);
            fail();
        }
    }
}

static void expect_bool(const celer_tensor *t, const uint8_t *want, int64_t n) {
    assert_int_equal(t->dtype, CELER_BOOL);
    assert_int_equal(celer_shape_numel(&t->shape), n);
    assert_memory_equal(t->data, want, (size_t)n);
}

#define EXPECT_F32N(t, tol, ...) expect_f32(t, F32(__VA_ARGS__), NARGS(float, __VA_ARGS__), tol)
#define EXPECT_I64N(t, ...) expect_i64(t, I64(__VA_ARGS__), NARGS(int64_t, __VA_ARGS__))
#define STR(...) ((const char *[]){__VA_ARGS__})
#define F64(...) ((double[]){__VA_ARGS__})
#define U8(...) ((uint8_t[]){__VA_ARGS__})

/* ---- numeric steps ---- */

static void test_normalize(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: x, dtype: FP32, shape: [3]}\n"
                 "  - {name: img, dtype: FP32, shape: [3, 2, 2]}\n"
                 "  - {name: n, dtype: INT32, shape: [2]}\n"
                 "steps:\n"
                 "  - normalize: {input: x, mean: 2, std: 4, output: xs}\n"
                 "  - normalize: {input: x, mean: [1, 2, 3], std: [1, 2, 4], output: xf}\n"
                 "  - normalize: {input: x, mean: [1, 2, 3], std: 0.5, output: xb}\n"
                 "  - normalize: {input: img, mean: [0.5, 1, 2], std: [0.25, 2, 4], axis: 1, output: imgn}\n"
                 "  - normalize: {input: n, mean: [10, 20], std: [5, 10], output: nn}\n"
                 "outputs: [xs, xf, xb, imgn, nn]\n");
    float x[2 * 3] = {1, -3, 7.5f, 0, 100, -0.25f};
    float img[2 * 3 * 2 * 2];
    uint64_t seed = 7;
    tu_fill_random(img, 24, -5, 5, &seed);
    set_in(c, "x", TEN(CELER_FLOAT, x, 2, 3));
    set_in(c, "img", TEN(CELER_FLOAT, img, 2, 3, 2, 2));
    set_in(c, "n", TEN(CELER_INT32, I32(15, 0, -5, 40), 2, 2));
    const celer_tensor *o = run_ok(c);
    float want[24];
    const double m3[3] = {1, 2, 3}, s3[3] = {1, 2, 4};
    for (int i = 0; i < 6; i++) want[i] = (float)((x[i] - 2.0) / 4.0);
    EXPECT_SHAPE(&o[0], 2, 3);
    expect_f32(&o[0], want, 6, 1e-6);
    for (int i = 0; i < 6; i++) want[i] = (float)((x[i] - m3[i % 3]) / s3[i % 3]);
    EXPECT_SHAPE(&o[1], 2, 3);
    expect_f32(&o[1], want, 6, 1e-6);
    for (int i = 0; i < 6; i++) want[i] = (float)((x[i] - m3[i % 3]) / 0.5);
    expect_f32(&o[2], want, 6, 1e-6);
    /* axis 1 of [N, C, H, W]: channel c = (i / (H*W)) % C */
    const double mc[3] = {0.5, 1, 2}, sc[3] = {0.25, 2, 4};
    for (int i = 0; i < 24; i++) want[i] = (float)((img[i] - mc[(i / 4) % 3]) / sc[(i / 4) % 3]);
    EXPECT_SHAPE(&o[3], 2, 3, 2, 2);
    expect_f32(&o[3], want, 24, 1e-6);
    EXPECT_F32N(&o[4], 1e-6, 1, -2, -3, 2);

    /* per-feature mean/std that do not match the axis length: a request error, not a crash */
    ctx_close(c);
    c = ctx_open("inputs:\n"
                 "  - {name: x, dtype: FP32, shape: [-1]}\n"
                 "steps:\n"
                 "  - normalize: {input: x, mean: [1, 2, 3], std: [1, 2, 4], output: y}\n"
                 "outputs: [y]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2, 3, 4), 2, 2));
    tu_expect_err(run_err(c), CELER_ERR_SHAPE, "step 1 (normalize)");
    assert_non_null(strstr(celer_error_message(), "pipe.yaml line 4"));
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2, 3), 1, 3));
    EXPECT_F32N(&run_ok(c)[0], 1e-6, 0, 0, 0);
    ctx_close(c);
}

static void test_scale_clip_log1p_fill(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: x, dtype: FP32, shape: [4]}\n"
                 "  - {name: k, dtype: INT64}\n"
                 "steps:\n"
                 "  - scale: {input: x, factor: 2.5, offset: -1, output: sc}\n"
                 "  - scale: {input: k, offset: 0.5, output: sk}\n"
                 "  - clip: {input: x, min: 0, output: c_min}\n"
                 "  - clip: {input: x, min: -1, max: 2, output: c_both}\n"
                 "  - clip: {input: x, max: 1, output: c_max}\n"
                 "  - fill_missing: {input: x, value: -7, output: filled}\n"
                 "  - log1p: {input: filled, output: lg}\n"
                 "  - log1p: {input: k, output: lk}\n"
                 "outputs: [sc, sk, c_min, c_both, c_max, filled, lg, lk]\n");
    const float nan = NAN;
    float x[8] = {-3, 0.5f, nan, 4, 10, -0.5f, 1e-3f, 2};
    set_in(c, "x", TEN(CELER_FLOAT, x, 2, 4));
    set_in(c, "k", TEN(CELER_INT64, I64(3, 0), 2));
    const celer_tensor *o = run_ok(c);
    float w[8];
    for (int i = 0; i < 8; i++) w[i] = (float)(x[i] * 2.5 - 1);
    expect_f32(&o[0], w, 8, 1e-6);
    EXPECT_SHAPE(&o[1], 2);
    EXPECT_F32N(&o[1], 1e-6, 3.5, 0.5);
    for (int i = 0; i < 8; i++) w[i] = isnan(x[i]) ? nan : fmaxf(x[i], 0);
    expect_f32(&o[2], w, 8, 0);
    for (int i = 0; i < 8; i++) w[i] = isnan(x[i]) ? nan : fminf(fmaxf(x[i], -1), 2);
    expect_f32(&o[3], w, 8, 0);
    for (int i = 0; i < 8; i++) w[i] = isnan(x[i]) ? nan : fminf(x[i], 1);
    expect_f32(&o[4], w, 8, 0);
    float f[8];
    for (int i = 0; i < 8; i++) f[i] = isnan(x[i]) ? -7 : x[i];
    expect_f32(&o[5], f, 8, 0);
    for (int i = 0; i < 8; i++) w[i] = (float)log1p((double)f[i]); /* log1p(-3), log1p(-7): NaN */
    expect_f32(&o[6], w, 8, 1e-6);
    EXPECT_F32N(&o[7], 1e-6, (float)log1p(3.0), 0);
    ctx_close(c);
}

static void test_cast(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: f, dtype: FP32, default: 0}\n"
                 "  - {name: s, dtype: BYTES, default: '1'}\n"
                 "  - {name: d, dtype: FP64, default: 0}\n"
                 "steps:\n"
                 "  - cast: {input: f, dtype: INT64, output: fi}\n"
                 "  - cast: {input: s, dtype: FP32, output: sf}\n"
                 "  - cast: {input: d, dtype: INT32, output: di}\n"
                 "  - cast: {input: f, dtype: BOOL, output: fb}\n"
                 "outputs: [fi, sf, di, fb]\n");
    set_in(c, "f", TEN(CELER_FLOAT, F32(1.7f, -1.7f, 2, -0.0f, 1e6f), 5));
    set_in(c, "s", TEN(CELER_STRING, TU_STRS("3.5", "-2", "1e3", "0", "7"), 5));
    set_in(c, "d", TEN(CELER_DOUBLE, F64(2147483647.9, -2147483648.0, 0.5, -0.5, 42), 5));
    const celer_tensor *o = run_ok(c);
    EXPECT_I64N(&o[0], 1, -1, 2, 0, 1000000); /* truncation toward zero */
    EXPECT_F32N(&o[1], 0, 3.5, -2, 1000, 0, 7);
    assert_int_equal(o[2].dtype, CELER_INT32);
    assert_memory_equal(o[2].data, I32(2147483647, -2147483647 - 1, 0, 0, 42), 5 * sizeof(int32_t));
    expect_bool(&o[3], U8(1, 1, 1, 0, 1), 5);

    /* text that is not a number */
    ctx_again(c);
    set_in(c, "s", TEN(CELER_STRING, TU_STRS("3.5", "abc"), 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "abc");
    assert_non_null(strstr(celer_error_message(), "step 2 (cast)"));
    /* asked again after the error: the same error, no crash */
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "abc");
    ctx_again(c);
    set_in(c, "s", TEN(CELER_STRING, TU_STRS(""), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "not a number");
    ctx_again(c);
    set_in(c, "s", TEN(CELER_STRING, TU_STRS("12abc"), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "not a number");
    /* out of range for the integer type */
    ctx_again(c);
    set_in(c, "f", TEN(CELER_FLOAT, F32(1, 1e19f), 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "does not fit");
    ctx_again(c);
    set_in(c, "f", TEN(CELER_FLOAT, F32(NAN), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "does not fit");
    ctx_again(c);
    set_in(c, "d", TEN(CELER_DOUBLE, F64(2147483648.0), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "does not fit");
    ctx_close(c);

    c = ctx_open("inputs: [{name: x, dtype: FP32}]\n"
                 "steps: [{cast: {input: x, dtype: UINT8, output: y}}]\n"
                 "outputs: [y]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(255, 0, 3.9f), 3));
    const celer_tensor *u = run_ok(c);
    assert_int_equal(u[0].dtype, CELER_UINT8);
    assert_memory_equal(u[0].data, U8(255, 0, 3), 3);
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(256), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "does not fit");
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(-1), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "does not fit");
    ctx_close(c);
}

/* Regression (found by this test, fixed): cast accepts every ONNX type name at load (pl_arg_dtype: celer_dtype_from_name), but
 * cast_run's range table and put() (steps_numeric.c, put() and the lo/hi ternaries in cast_run)
 * only know INT64/INT32/INT16/INT8/UINT8: a cast to uint16/uint32/uint64 checks the range
 * 0..255 and then writes nothing, so the output is uninitialised arena memory (bfloat16 and
 * complex64 alike). Fix: handle UINT16/UINT32/UINT64 in put() and the range table, and refuse
 * the types cast cannot produce (FLOAT16, BFLOAT16, COMPLEX*) in cast_parse. */
static void test_cast_unsigned_regression(void **state) {
    (void)state;
    celer_pipeline *p = NULL;
    const char *yaml = "inputs: [{name: x, dtype: FP32}]\n"
                       "steps: [{cast: {input: x, dtype: uint16, output: y}}]\n"
                       "outputs: [y]\n";
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "pipe.yaml", tmpdir, &p);
    if (st) { /* refusing the type at load is a fine answer too */
        tu_expect_err(st, CELER_ERR_INVALID, "pipe.yaml:2:");
        return;
    }
    run_ctx *c = ctx_adopt(p);
    /* values that pass today's (wrong) 0..255 range check: nothing is written */
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 200, 7), 3));
    const celer_tensor *o = run_ok(c);
    assert_int_equal(o[0].dtype, CELER_UINT16);
    const uint16_t want[3] = {1, 200, 7};
    assert_memory_equal(o[0].data, want, sizeof want);
    /* and the whole uint16 range fits */
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(300, 65535, 0), 3));
    o = run_ok(c);
    const uint16_t want2[3] = {300, 65535, 0};
    assert_memory_equal(o[0].data, want2, sizeof want2);
    ctx_close(c);
}

/* Regression (found by this test, fixed): cast_run (steps_numeric.c, the range check `!(v >= lo && v < hi + 1)`) checks the value
 * before truncation on the low side but after it on the high side: 255.7 -> UINT8 is 255, yet
 * -0.5 -> UINT8 (truncates to 0), -128.7 -> INT8 (-128) and -2147483648.5 -> INT32 are refused as
 * "does not fit". Fix: check the truncated value: `double t = trunc(v); if (!(t >= lo && t < hi + 1))`
 * (for INT64, hi + 1 == 2^63 keeps the cast defined). */
static void test_cast_truncation_range_regression(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP64}]\n"
                          "steps:\n"
                          "  - cast: {input: x, dtype: UINT8, output: u8}\n"
                          "  - cast: {input: x, dtype: INT8, output: i8}\n"
                          "outputs: [u8, i8]\n");
    set_in(c, "x", TEN(CELER_DOUBLE, F64(0.7, 0.5), 2));
    const celer_tensor *o = run_ok(c); /* the high side truncates */
    assert_memory_equal(o[0].data, U8(0, 0), 2);
    ctx_again(c);
    set_in(c, "x", TEN(CELER_DOUBLE, F64(-0.5, -0.99), 2));
    o = run_ok(c); /* so must the low side: -0.5 truncates to 0, which fits UINT8 */
    assert_memory_equal(o[0].data, U8(0, 0), 2);
    ctx_close(c);
    c = ctx_open("inputs: [{name: x, dtype: FP64}]\n"
                 "steps: [{cast: {input: x, dtype: INT8, output: y}}]\n"
                 "outputs: [y]\n");
    set_in(c, "x", TEN(CELER_DOUBLE, F64(-128.7, 127.7), 2));
    o = run_ok(c);
    const int8_t want[2] = {-128, 127};
    assert_memory_equal(o[0].data, want, 2);
    ctx_close(c);
}

/* numpy.searchsorted(bounds, v, side='right'); NaN past the end */
static int64_t ref_bucket(const double *b, int n, double v) {
    if (isnan(v)) return n;
    int64_t k = 0;
    while (k < n && b[k] <= v) k++;
    return k;
}

static void test_bucketize_boundaries(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: age, dtype: FP32}\n"
                 "  - {name: n, dtype: INT64}\n"
                 "steps:\n"
                 "  - bucketize: {input: age, boundaries: [18, 25, 35, 50, 65], output: age_bin}\n"
                 "  - bucketize: {input: n, boundaries: [0, 0, 10], output: n_bin}\n"
                 "  - bucketize: {input: age, boundaries: 30, output: one}\n"
                 "outputs: [age_bin, n_bin, one]\n");
    const double b[5] = {18, 25, 35, 50, 65}, bn[3] = {0, 0, 10}, b1[1] = {30};
    float age[12] = {17.99f, 18, 24.5f, 25, 34, 35, 50, 64.999f, 65, 1000, -INFINITY, NAN};
    int64_t n[12] = {-5, 0, 1, 9, 10, 11, -1, 0, 100, 3, 10, INT64_MIN};
    set_in(c, "age", TEN(CELER_FLOAT, age, 12));
    set_in(c, "n", TEN(CELER_INT64, n, 12));
    const celer_tensor *o = run_ok(c);
    int64_t w[12];
    for (int i = 0; i < 12; i++) w[i] = ref_bucket(b, 5, age[i]);
    EXPECT_SHAPE(&o[0], 12);
    expect_i64(&o[0], w, 12);
    assert_int_equal(w[1], 1);  /* on a boundary: goes right */
    assert_int_equal(w[11], 5); /* NaN: the last bucket */
    for (int i = 0; i < 12; i++) w[i] = ref_bucket(bn, 3, (double)n[i]);
    expect_i64(&o[1], w, 12);
    for (int i = 0; i < 12; i++) w[i] = ref_bucket(b1, 1, age[i]);
    expect_i64(&o[2], w, 12);
    ctx_close(c);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy.quantile(v, q) with the default method 'linear' (NumPy's _lerp), v sorted without NaN */
static double np_quantile(const double *v, int64_t m, double q) {
    double pos = q * (double)(m - 1);
    int64_t lo = (int64_t)floor(pos), hi = lo + 1 < m ? lo + 1 : m - 1;
    double t = pos - (double)lo, a = v[lo], bb = v[hi], d = bb - a;
    return t >= 0.5 ? bb - d * (1 - t) : a + d * t;
}

static void check_quantile_bins(const float *sample, int64_t n, int bins, const char *file) {
    /* reference boundaries: the bins-1 inner quantiles, NaN dropped */
    double *v = malloc(sizeof *v * (size_t)n), bounds[64];
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(sample[i])) v[m++] = sample[i];
    qsort(v, (size_t)m, sizeof *v, cmp_d);
    for (int i = 0; i < bins - 1; i++) bounds[i] = np_quantile(v, m, (double)(i + 1) / bins);
    free(v);

    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs: [{name: x, dtype: FP64}]\n"
             "steps:\n"
             "  - bucketize: {input: x, sample: %s, bins: %d, output: b}\n"
             "outputs: [b]\n",
             file, bins);
    run_ctx *c = ctx_open(yaml);
    /* each boundary from both sides (1e-9 relative), the sample itself, and values past the ends */
    enum { MAXV = 1024 };
    double *x = malloc(sizeof *x * MAXV);
    int64_t *w = malloc(sizeof *w * MAXV), nx = 0;
    for (int i = 0; i < bins - 1; i++) {
        double e = 1e-9 * fmax(1, fabs(bounds[i]));
        x[nx++] = bounds[i] - e;
        x[nx++] = bounds[i] + e;
    }
    for (int64_t i = 0; i < n && nx < MAXV - 3; i++) x[nx++] = sample[i];
    x[nx++] = -1e300;
    x[nx++] = 1e300;
    x[nx++] = NAN;
    for (int64_t i = 0; i < nx; i++) w[i] = ref_bucket(bounds, bins - 1, x[i]);
    celer_tensor t = {.dtype = CELER_DOUBLE, .shape = {.rank = 1, .dims = {nx}}, .data = x};
    set_in(c, "x", t);
    const celer_tensor *o = run_ok(c);
    expect_i64(&o[0], w, nx);
    /* the probes around boundary i fall in buckets i and i + 1 (the reference is sane) */
    for (int i = 0; i < bins - 1; i++) {
        assert_int_equal(w[2 * i], i);
        assert_int_equal(w[2 * i + 1], i + 1);
    }
    free(x);
    free(w);
    ctx_close(c);
}

static void test_bucketize_sample(void **state) {
    (void)state;
    /* 0..100: quartiles fall exactly on sample values 25, 50, 75 */
    float lin[101];
    for (int i = 0; i <= 100; i++) lin[i] = (float)(100 - i);
    write_npy("lin.npy", CELER_FLOAT, 1, I64(101), lin);
    check_quantile_bins(lin, 101, 4, "lin.npy");
    {
        run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP32}]\n"
                     "steps: [{bucketize: {input: x, sample: lin.npy, bins: 4, output: b}}]\n"
                     "outputs: [b]\n");
        set_in(c, "x", TEN(CELER_FLOAT, F32(24.99f, 25, 50, 74, 75, 100, NAN), 7));
        EXPECT_I64N(&run_ok(c)[0], 0, 1, 2, 2, 3, 3, 3);
        ctx_close(c);
    }
    /* random values with NaNs mixed in, several bin counts */
    float r[203];
    uint64_t seed = 12345;
    tu_fill_random(r, 203, -50, 150, &seed);
    r[7] = NAN;
    r[100] = NAN;
    int64_t dims[2] = {7, 29};
    write_npy("rand.npy", CELER_FLOAT, 2, dims, r);
    check_quantile_bins(r, 203, 7, "rand.npy");
    check_quantile_bins(r, 203, 2, "rand.npy");
    check_quantile_bins(r, 203, 10, "rand.npy");
    /* a sample of integers and a tiny sample */
    int64_t ints[9] = {5, 1, 1, 1, 9, 3, 3, 8, 2};
    write_npy("ints.npy", CELER_INT64, 1, I64(9), ints);
    float fints[9];
    for (int i = 0; i < 9; i++) fints[i] = (float)ints[i];
    check_quantile_bins(fints, 9, 3, "ints.npy");
    float two[2] = {1, 2};
    write_npy("two.npy", CELER_FLOAT, 1, I64(2), two);
    check_quantile_bins(two, 2, 5, "two.npy");
}

static void test_lookup(void **state) {
    (void)state;
    write_text("vocab.txt", "red\r\ngreen\nblue\n");
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: country, dtype: BYTES}\n"
                 "  - {name: id, dtype: INT64}\n"
                 "  - {name: color, dtype: BYTES, default: blue}\n"
                 "  - {name: small, dtype: INT32, default: 20}\n"
                 "steps:\n"
                 "  - lookup: {input: country, vocabulary: [de, fr, us], output: ci}\n"
                 "  - lookup: {input: country, vocabulary: [de, fr, us], default: 7, output: ci7}\n"
                 "  - lookup: {input: id, vocabulary: [10, 20, '-3'], output: ii}\n"
                 "  - lookup: {input: color, file: vocab.txt, output: col}\n"
                 "  - lookup: {input: small, vocabulary: ['20'], default: 99, output: si}\n"
                 "outputs: [ci, ci7, ii, col, si]\n");
    set_in(c, "country", TEN(CELER_STRING, TU_STRS("fr", "xx", "", "de", "us", "DE"), 6));
    set_in(c, "id", TEN(CELER_INT64, I64(20, 10, -3, 30, 0, 3), 6));
    set_in(c, "color", TEN(CELER_STRING, TU_STRS("red", "green", "blue", "red\r", "Blue", "green"), 6));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 6);
    EXPECT_I64N(&o[0], 1, -1, -1, 0, 2, -1);
    EXPECT_I64N(&o[1], 1, 7, 7, 0, 2, 7);
    EXPECT_I64N(&o[2], 1, 0, 2, -1, -1, -1); /* integers look up their decimal text */
    EXPECT_I64N(&o[3], 0, 1, 2, -1, -1, 1);  /* \r\n endings stripped */
    EXPECT_I64N(&o[4], 0, 0, 0, 0, 0, 0);    /* the default row repeated for 6 rows */
    ctx_close(c);

    /* floats are refused at run time */
    c = ctx_open("inputs: [{name: x, dtype: FP32}]\n"
                 "steps: [{lookup: {input: x, vocabulary: ['1'], output: y}}]\n"
                 "outputs: [y]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    tu_expect_err(run_err(c), CELER_ERR_DTYPE, "text or integers");
    ctx_close(c);
}

/* Regression (found by this test, fixed): lookup_run (steps_numeric.c, the snprintf in lookup_run) formats an integer key with
 * "%lld" of (long long)pl_get(in, i), a double: int64 ids above 2^53 lose their low bits and
 * look up the wrong text (9007199254740993 is looked up as "9007199254740992"); UINT64 values
 * >= 2^63 even overflow the cast (undefined behaviour). route_value in pipeline.c has the same
 * flaw for integer route fields. Fix: format integer dtypes from the integer itself
 * (PRId64 of the int64_t element, PRIu64 for UINT64), not through double. */
static void test_lookup_large_int_regression(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: id, dtype: INT64}]\n"
                 "steps:\n"
                 "  - lookup: {input: id, vocabulary: ['9007199254740993', '9007199254740992'], output: y}\n"
                 "outputs: [y]\n");
    set_in(c, "id", TEN(CELER_INT64, I64(9007199254740993LL, 9007199254740992LL), 2));
    EXPECT_I64N(&run_ok(c)[0], 0, 1);
    ctx_close(c);
}

/* Regression (found by this test, fixed): same root cause as test_lookup_large_int_regression, in route_value (pipeline.c): an INT64
 * route field is compared through a double, so 2^53 + 1 matches the case "9007199254740992"
 * instead of its own. Fix: format integer fields with PRId64 from the int64_t element. */
static void test_route_large_int_regression(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: v, dtype: INT64}, {name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      field: v\n"
                 "      cases:\n"
                 "        '9007199254740993': [{scale: {input: x, factor: 1, output: y}}]\n"
                 "        '9007199254740992': [{scale: {input: x, factor: 2, output: y}}]\n"
                 "outputs: [y]\n");
    set_in(c, "v", TEN(CELER_INT64, I64(9007199254740993LL), 1));
    set_in(c, "x", TEN(CELER_FLOAT, F32(5), 1));
    EXPECT_F32N(&run_ok(c)[0], 0, 5);
    ctx_close(c);
}

static void test_one_hot(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: i, dtype: INT64}\n"
                 "  - {name: f, dtype: FP32, shape: [2]}\n"
                 "steps:\n"
                 "  - one_hot: {input: i, depth: 3, output: oh}\n"
                 "  - one_hot: {input: f, depth: 2, output: of}\n"
                 "outputs: [oh, of]\n");
    set_in(c, "i", TEN(CELER_INT64, I64(0, 2, 3, -1), 4));
    set_in(c, "f", TEN(CELER_FLOAT, F32(1, 0, 2, -0.0f, 1, 1, 5, 0), 4, 2));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 4, 3);
    EXPECT_F32N(&o[0], 0, 1, 0, 0, /**/ 0, 0, 1, /**/ 0, 0, 0, /**/ 0, 0, 0);
    EXPECT_SHAPE(&o[1], 4, 2, 2);
    EXPECT_F32N(&o[1], 0, 0, 1, 1, 0, /**/ 0, 0, 1, 0, /**/ 0, 1, 0, 1, /**/ 0, 0, 1, 0);
    ctx_again(c);
    set_in(c, "i", TEN(CELER_INT64, I64(0), 1));
    set_in(c, "f", TEN(CELER_FLOAT, F32(1, 1.5f), 1, 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "not an integer");
    assert_non_null(strstr(celer_error_message(), "step 2 (one_hot)"));
    ctx_again(c);
    set_in(c, "i", TEN(CELER_INT64, I64(0), 1));
    set_in(c, "f", TEN(CELER_FLOAT, F32(NAN, 0), 1, 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "not an integer");
    ctx_close(c);
}

static void test_concat(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: a, dtype: FP32}\n"
                 "  - {name: b, dtype: FP32, shape: [2]}\n"
                 "  - {name: i, dtype: INT64}\n"
                 "  - {name: j, dtype: INT32, shape: [2, 2]}\n"
                 "  - {name: s, dtype: BYTES, default: x}\n"
                 "steps:\n"
                 "  - concat: {inputs: [a, b, i, j, a], output: feat}\n"
                 "  - argmax: {input: b, axis: 0, output: cols}\n"
                 "outputs: [feat]\n");
    set_in(c, "a", TEN(CELER_FLOAT, F32(1, 2, 3), 3));
    set_in(c, "b", TEN(CELER_FLOAT, F32(10, 11, 20, 21, 30, 31), 3, 2));
    set_in(c, "i", TEN(CELER_INT64, I64(-1, 1LL << 40, 7), 3));
    set_in(c, "j", TEN(CELER_INT32, I32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 3, 2, 2));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 3, 9);
    const float big = (float)(1LL << 40);
    EXPECT_F32N(&o[0], 0, 1, 10, 11, -1, 1, 2, 3, 4, 1, /**/ 2, 20, 21, big, 5, 6, 7, 8, 2, /**/ 3, 30, 31, 7, 9, 10,
                11, 12, 3);
    ctx_close(c);

    /* rows that differ (argmax over axis 0 gives one value per column), text inputs */
    c = ctx_open("inputs:\n"
                 "  - {name: b, dtype: FP32, shape: [3]}\n"
                 "  - {name: s, dtype: BYTES, default: x}\n"
                 "steps:\n"
                 "  - argmax: {input: b, axis: 0, output: cols}\n"
                 "  - concat: {inputs: [b, cols], output: feat}\n"
                 "outputs: [feat]\n");
    set_in(c, "b", TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6), 2, 3));
    tu_expect_err(run_err(c), CELER_ERR_SHAPE, "has 3 rows");
    assert_non_null(strstr(celer_error_message(), "step 2 (concat)"));
    ctx_close(c);
    c = ctx_open("inputs:\n"
                 "  - {name: b, dtype: FP32, shape: [3]}\n"
                 "  - {name: s, dtype: BYTES, default: x}\n"
                 "steps:\n"
                 "  - concat: {inputs: [b, s], output: feat}\n"
                 "outputs: [feat]\n");
    set_in(c, "b", TEN(CELER_FLOAT, F32(1, 2, 3), 1, 3));
    tu_expect_err(run_err(c), CELER_ERR_DTYPE, "must be numeric");
    ctx_close(c);
}

/* ---- postprocess steps ---- */

static void test_softmax_sigmoid(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: x, dtype: FP32, shape: [4]}\n"
                 "  - {name: k, dtype: INT32, shape: [3, 2]}\n"
                 "steps:\n"
                 "  - softmax: {input: x, output: p}\n"
                 "  - softmax: {input: k, axis: 1, output: pk}\n"
                 "  - softmax: {input: k, axis: -1, output: pl}\n"
                 "  - sigmoid: {input: x, output: s}\n"
                 "outputs: [p, pk, pl, s]\n");
    float x[8] = {1, 2, 3, 4, 1000, 1000, -1000, 0};
    int32_t k[12] = {1, 5, 2, 2, 0, -3, /**/ 7, 7, 7, 7, -1, 100};
    set_in(c, "x", TEN(CELER_FLOAT, x, 2, 4));
    set_in(c, "k", TEN(CELER_INT32, k, 2, 3, 2));
    const celer_tensor *o = run_ok(c);
    float w[8];
    for (int r = 0; r < 2; r++) {
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < 4; i++) mx = fmax(mx, x[r * 4 + i]);
        for (int i = 0; i < 4; i++) sum += exp(x[r * 4 + i] - mx);
        for (int i = 0; i < 4; i++) w[r * 4 + i] = (float)(exp(x[r * 4 + i] - mx) / sum);
    }
    expect_f32(&o[0], w, 8, 1e-6);
    for (int r = 0; r < 2; r++) {
        double sum = 0;
        for (int i = 0; i < 4; i++) sum += ((const float *)o[0].data)[r * 4 + i];
        assert_true(fabs(sum - 1) < 1e-6);
    }
    /* axis 1 of [2, 3, 2]: over the 3, for each row and each of the 2 columns */
    float wk[12];
    for (int b = 0; b < 2; b++)
        for (int col = 0; col < 2; col++) {
            const int32_t *kb = k + b * 6;
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < 3; i++) mx = fmax(mx, kb[i * 2 + col]);
            for (int i = 0; i < 3; i++) sum += exp(kb[i * 2 + col] - mx);
            for (int i = 0; i < 3; i++) wk[b * 6 + i * 2 + col] = (float)(exp(kb[i * 2 + col] - mx) / sum);
        }
    EXPECT_SHAPE(&o[1], 2, 3, 2);
    expect_f32(&o[1], wk, 12, 1e-6);
    for (int r = 0; r < 6; r++) {
        double mx = fmax(k[r * 2], k[r * 2 + 1]);
        double sum = exp(k[r * 2] - mx) + exp(k[r * 2 + 1] - mx);
        wk[r * 2] = (float)(exp(k[r * 2] - mx) / sum);
        wk[r * 2 + 1] = (float)(exp(k[r * 2 + 1] - mx) / sum);
    }
    expect_f32(&o[2], wk, 12, 1e-6);
    for (int i = 0; i < 8; i++) w[i] = (float)(1 / (1 + exp(-(double)x[i])));
    expect_f32(&o[3], w, 8, 1e-6);
    ctx_close(c);

    /* an axis the tensor does not have */
    c = ctx_open("inputs: [{name: x, dtype: FP32, shape: [4]}]\n"
                 "steps: [{softmax: {input: x, axis: 2, output: p}}]\n"
                 "outputs: [p]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2, 3, 4), 1, 4));
    tu_expect_err(run_err(c), CELER_ERR_SHAPE, "out of range");
    ctx_close(c);
}

static void test_argmax_threshold(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP32, shape: [4]}]\n"
                 "steps:\n"
                 "  - argmax: {input: x, output: am}\n"
                 "  - argmax: {input: x, axis: 0, output: am0}\n"
                 "  - threshold: {input: x, output: t}\n"
                 "  - threshold: {input: x, value: 2, output: t2}\n"
                 "outputs: [am, am0, t, t2]\n");
    const float nan = NAN;
    float x[16] = {1, 3, 3, 2, /* tie: first */
                   nan, 0, -1, nan, /* NaN ignored */
                   nan, nan, nan, nan, /* all NaN: 0 */
                   -5, 4, -3, 0.5f};
    set_in(c, "x", TEN(CELER_FLOAT, x, 4, 4));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 4);
    EXPECT_I64N(&o[0], 1, 1, 0, 1);
    EXPECT_SHAPE(&o[1], 4);
    EXPECT_I64N(&o[1], 0, 3, 0, 0); /* columns: 1,nan,nan,-5; 3,0,nan,4; 3,-1,nan,-3; 2,nan,nan,.5 */
    uint8_t w[16], w2[16];
    for (int i = 0; i < 16; i++) {
        w[i] = x[i] > 0.5f;
        w2[i] = x[i] > 2;
    }
    EXPECT_SHAPE(&o[2], 4, 4);
    expect_bool(&o[2], w, 16);
    expect_bool(&o[3], w2, 16);
    ctx_close(c);
}

typedef struct ref_pair {
    double v;
    int64_t i;
} ref_pair;

static int cmp_pair(const void *a, const void *b) {
    const ref_pair *x = a, *y = b;
    bool nx = isnan(x->v), ny = isnan(y->v);
    if (nx != ny) return nx ? 1 : -1;
    if (!nx && x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : 1;
}

/* reference top_k of one row: stable sort, best first, NaN last, ties by index */
static int ref_topk(const float *row, int len, int k, int64_t *ids, float *vals) {
    ref_pair p[64];
    for (int i = 0; i < len; i++) p[i] = (ref_pair){row[i], i};
    qsort(p, (size_t)len, sizeof *p, cmp_pair);
    int kk = k < len ? k : len;
    for (int j = 0; j < kk; j++) {
        ids[j] = p[j].i;
        vals[j] = (float)p[j].v;
    }
    return kk;
}

static void test_top_k(void **state) {
    (void)state;
    write_text("labels.txt", "cat\ndog\r\nbird\nfish\n");
    run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP32, shape: [5]}]\n"
                 "steps:\n"
                 "  - top_k: {input: x, k: 3, output: [ids, scores]}\n"
                 "  - top_k: {input: x, k: 5, labels: labels.txt, output: [lids, lscores, names]}\n"
                 "  - top_k: {input: x, k: 9, output: [all_ids, all_scores]}\n"
                 "outputs: [ids, scores, lids, lscores, names, all_ids, all_scores]\n");
    enum { N = 4, L = 5 };
    float x[N * L] = {0.1f, 0.7f, 0.7f, 0.05f, 0.15f, /* tie: lower index first */
                      5, 4, 3, 2, 1,
                      NAN, 1, NAN, -1, 0, /* NaN only after every number */
                      -2, -2, -2, -2, -2};
    set_in(c, "x", TEN(CELER_FLOAT, x, N, L));
    const celer_tensor *o = run_ok(c);
    static const char *labels[] = {"cat", "dog", "bird", "fish", ""};
    for (int which = 0; which < 3; which++) {
        int k = which == 0 ? 3 : which == 1 ? 5 : 9, kk = k < L ? k : L;
        const celer_tensor *ids = &o[which == 0 ? 0 : which == 1 ? 2 : 5];
        const celer_tensor *sc = ids + 1;
        EXPECT_SHAPE(ids, N, kk);
        EXPECT_SHAPE(sc, N, kk);
        int64_t wi[N * L];
        float wv[N * L];
        for (int r = 0; r < N; r++) assert_int_equal(ref_topk(x + r * L, L, k, wi + r * kk, wv + r * kk), kk);
        expect_i64(ids, wi, N * kk);
        expect_f32(sc, wv, N * kk, 0);
        if (which == 1) {
            const celer_tensor *names = &o[4];
            assert_int_equal(names->dtype, CELER_STRING);
            EXPECT_SHAPE(names, N, kk);
            for (int i = 0; i < N * kk; i++) assert_string_equal(((const celer_str *)names->data)[i].data, labels[wi[i]]);
        }
    }
    EXPECT_I64N(&o[0], 1, 2, 4, /**/ 0, 1, 2, /**/ 1, 4, 3, /**/ 0, 1, 2);
    ctx_close(c);

    /* a labels file longer than 64 lines (the loader grows its list) */
    char many[4096] = "";
    for (int i = 0; i < 100; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "L%d\n", i);
    write_text("many.txt", many);
    c = ctx_open("inputs: [{name: x, dtype: FP32, shape: [100]}]\n"
                 "steps: [{top_k: {input: x, k: 2, labels: many.txt, output: [i, s, n]}}]\n"
                 "outputs: [n]\n");
    float big[100];
    for (int i = 0; i < 100; i++) big[i] = (float)((i * 37) % 100);
    set_in(c, "x", TEN(CELER_FLOAT, big, 1, 100));
    o = run_ok(c);
    char want0[8], want1[8];
    for (int i = 0; i < 100; i++) {
        if (big[i] == 99) snprintf(want0, sizeof want0, "L%d", i);
        if (big[i] == 98) snprintf(want1, sizeof want1, "L%d", i);
    }
    assert_string_equal(((const celer_str *)o[0].data)[0].data, want0);
    assert_string_equal(((const celer_str *)o[0].data)[1].data, want1);
    ctx_close(c);
}

/* Regression (found by this test, fixed): top_k_parse (steps_post.c, the fgets loop reading `labels`) reads lines into a 4096-byte
 * buffer without checking for truncation: a label line longer than 4095 bytes becomes two labels
 * and every later label shifts by one, silently (read_vocab in steps_numeric.c refuses such lines).
 * Fix: the same check as read_vocab (`l == sizeof line - 1 && line[l - 1] != '\n'` -> pl_error),
 * or getline(). Either a load error or the right label passes this test. */
static void test_top_k_long_label_regression(void **state) {
    (void)state;
    enum { LONG = 5000 };
    char *text = malloc(LONG + 16);
    memset(text, 'x', LONG);
    strcpy(text + LONG, "\ndog\n");
    write_text("long_labels.txt", text);
    free(text);
    const char *yaml = "inputs: [{name: x, dtype: FP32, shape: [2]}]\n"
                       "steps: [{top_k: {input: x, k: 1, labels: long_labels.txt, output: [i, s, n]}}]\n"
                       "outputs: [n]\n";
    celer_pipeline *p = NULL;
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "pipe.yaml", tmpdir, &p);
    if (st) { /* refusing the file is fine */
        tu_expect_err(st, CELER_ERR_INVALID, "pipe.yaml:2:");
        return;
    }
    run_ctx *c = ctx_adopt(p);
    set_in(c, "x", TEN(CELER_FLOAT, F32(0.1f, 0.9f), 1, 2));
    const celer_tensor *o = run_ok(c);
    const char *got = ((const celer_str *)o[0].data)[0].data;
    if (strcmp(got, "dog")) fail_msg("label of id 1: '%.20s...' (%zu bytes), want 'dog'", got, strlen(got));
    ctx_close(c);
}

/* ---- recommend ---- */

static int cmp_hit(const void *a, const void *b) {
    const ref_pair *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static void test_recommend_step(void **state) {
    (void)state;
    enum { ITEMS = 20, DIM = 4, ROWS = 3, E = 2 };
    float items[ITEMS * DIM];
    int64_t ids[ITEMS];
    for (int i = 0; i < ITEMS * DIM; i++) items[i] = (float)((i * 5 + 3) % 7 - 3); /* small integers: exact scores */
    for (int i = 0; i < ITEMS; i++) ids[i] = 1000 - 13 * i;
    write_npy("items.npy", CELER_FLOAT, 2, I64(ITEMS, DIM), items);
    write_npy("ids.npy", CELER_INT64, 1, I64(ITEMS), ids);
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: user, dtype: FP32, shape: [4]}\n"
                 "  - {name: exclude, dtype: INT64, shape: [-1], default: []}\n"
                 "steps:\n"
                 "  - recommend: {input: user, items: items.npy, ids: ids.npy, k: 5, exclude: exclude,\n"
                 "                output: [rec_ids, rec_scores]}\n"
                 "  - recommend: {input: user, items: items.npy, k: 30, output: [row_ids, row_scores]}\n"
                 "outputs: [rec_ids, rec_scores, row_ids, row_scores]\n");
    float user[ROWS * DIM] = {1, 0, 0, 0, /**/ 1, -2, 0.5f, 3, /**/ 0, 0, 0, 0};
    int64_t ex[ROWS * E] = {1000, 987, /**/ 5, 1000 - 13 * 7, /**/ 1000, 1000};
    for (int pass = 0; pass < 2; pass++) {
        if (pass) ctx_again(c);
        set_in(c, "user", TEN(CELER_FLOAT, user, ROWS, DIM));
        if (!pass) set_in(c, "exclude", TEN(CELER_INT64, ex, ROWS, E)); /* second pass: default [] */
        const celer_tensor *o = run_ok(c);
        EXPECT_SHAPE(&o[0], ROWS, 5);
        EXPECT_SHAPE(&o[1], ROWS, 5);
        EXPECT_SHAPE(&o[2], ROWS, 30);
        for (int r = 0; r < ROWS; r++) {
            ref_pair all[ITEMS];
            int m = 0;
            for (int i = 0; i < ITEMS; i++) {
                double s = 0;
                for (int d = 0; d < DIM; d++) s += (double)items[i * DIM + d] * user[r * DIM + d];
                bool skip = false;
                for (int e = 0; e < E && !pass; e++) skip |= ex[r * E + e] == ids[i];
                if (!skip) all[m++] = (ref_pair){s, ids[i]};
            }
            qsort(all, (size_t)m, sizeof *all, cmp_hit);
            for (int j = 0; j < 5; j++) {
                assert_int_equal(((const int64_t *)o[0].data)[r * 5 + j], all[j].i);
                assert_true(((const float *)o[1].data)[r * 5 + j] == (float)all[j].v);
            }
            /* without ids: the row is the id; k past the item count pads with -1 / 0 */
            for (int i = 0; i < ITEMS; i++) {
                double s = 0;
                for (int d = 0; d < DIM; d++) s += (double)items[i * DIM + d] * user[r * DIM + d];
                all[i] = (ref_pair){s, i};
            }
            qsort(all, ITEMS, sizeof *all, cmp_hit);
            for (int j = 0; j < 30; j++) {
                int64_t gi = ((const int64_t *)o[2].data)[r * 30 + j];
                float gs = ((const float *)o[3].data)[r * 30 + j];
                assert_int_equal(gi, j < ITEMS ? all[j].i : -1);
                assert_true(gs == (j < ITEMS ? (float)all[j].v : 0.f));
            }
        }
    }
    ctx_close(c);

    /* a user embedding of the wrong width is the request's error */
    c = ctx_open("inputs: [{name: user, dtype: FP32, shape: [3]}]\n"
                 "steps: [{recommend: {input: user, items: items.npy, k: 2, output: [i, s]}}]\n"
                 "outputs: [i]\n");
    set_in(c, "user", TEN(CELER_FLOAT, F32(1, 2, 3), 1, 3));
    tu_expect_err(run_err(c), CELER_ERR_SHAPE, "user embedding");
    ctx_close(c);
}

/* Reference recommend for one user: the k best by exact score, ties to the lower id, excluded ids
 * skipped, padded with id -1 / score 0. */
static void ref_recommend(const float *items, const int64_t *ids, int n, int dim, const float *user,
                          const int64_t *ex, int n_ex, int k, int64_t *out_ids, float *out_scores) {
    ref_pair *all = malloc(sizeof *all * (size_t)n);
    int m = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)items[i * dim + d] * user[d];
        int64_t id = ids ? ids[i] : i;
        bool skip = false;
        for (int e = 0; e < n_ex; e++) skip |= ex[e] == id;
        if (!skip) all[m++] = (ref_pair){s, id};
    }
    qsort(all, (size_t)m, sizeof *all, cmp_hit);
    for (int j = 0; j < k; j++) {
        out_ids[j] = j < m ? all[j].i : -1;
        out_scores[j] = j < m ? (float)all[j].v : 0;
    }
    free(all);
}

/* The recommend step batched across requests (celer_pipeline_set_batching / run_batch): the same
 * results as each request alone, more rows than one pass takes (CELER_RECOMMEND_MAX_BATCH), and a
 * request with a bad embedding failing alone. */
static void test_recommend_batch(void **state) {
    (void)state;
    enum { ITEMS = 50, DIM = 4, K = 4, NREQ = 5 };
    float items[ITEMS * DIM];
    int64_t ids[ITEMS];
    uint64_t seed = 99;
    tu_fill_random(items, ITEMS * DIM, -3, 4, &seed);
    for (int i = 0; i < ITEMS * DIM; i++) items[i] = floorf(items[i]);
    for (int i = 0; i < ITEMS; i++) ids[i] = 7 * i + 3;
    write_npy("bitems.npy", CELER_FLOAT, 2, I64(ITEMS, DIM), items);
    write_npy("bids.npy", CELER_INT64, 1, I64(ITEMS), ids);
    celer_pipeline *p = load("inputs:\n"
                             "  - {name: user, dtype: FP32, shape: [4]}\n"
                             "  - {name: exclude, dtype: INT64, shape: [-1], default: []}\n"
                             "  - {name: kind, dtype: BYTES, default: good}\n"
                             "steps:\n"
                             "  - route:\n"
                             "      field: kind\n"
                             "      cases:\n"
                             "        good: [{scale: {input: user, output: u}}]\n"
                             "        bad: [{concat: {inputs: [user, user], output: u}}]\n"
                             "  - recommend: {input: u, items: bitems.npy, ids: bids.npy, k: 4, exclude: exclude,\n"
                             "                output: [ri, rs]}\n"
                             "  - scale: {input: rs, factor: 2, output: rs2}\n"
                             "outputs: [ri, rs2]\n");
    assert_int_equal(celer_pipeline_step_count(p), 5);
    for (int i = 0; i < 5; i++) assert_int_equal(celer_pipeline_step_batches(p, i), i == 3);
    const int rows[NREQ] = {1, 3, 300, 2, 5}, n_ex[NREQ] = {0, 2, 1, 0, 3};
    float *users[NREQ];
    int64_t *ex[NREQ];
    for (int j = 0; j < NREQ; j++) {
        users[j] = malloc(sizeof(float) * (size_t)(rows[j] * DIM));
        tu_fill_random(users[j], (size_t)(rows[j] * DIM), -3, 4, &seed);
        for (int i = 0; i < rows[j] * DIM; i++) users[j][i] = floorf(users[j][i]);
        ex[j] = malloc(sizeof(int64_t) * (size_t)(rows[j] * n_ex[j] + 1));
        for (int i = 0; i < rows[j] * n_ex[j]; i++) ex[j][i] = 3 + 7 * ((i * 13 + j) % ITEMS); /* real ids */
    }
    for (int batched = 0; batched < 2; batched++) {
        celer_arena arenas[NREQ];
        celer_pipeline_run *runs[NREQ];
        for (int j = 0; j < NREQ; j++) {
            celer_arena_init(&arenas[j], 64 * 1024, 64u << 20);
            assert_int_equal(celer_pipeline_run_init(p, &arenas[j], &runs[j]), CELER_OK);
            celer_tensor u = TEN(CELER_FLOAT, users[j], rows[j], DIM);
            assert_int_equal(celer_pipeline_set_input(runs[j], 0, &u), CELER_OK);
            if (n_ex[j]) {
                celer_tensor e = TEN(CELER_INT64, ex[j], rows[j], n_ex[j]);
                assert_int_equal(celer_pipeline_set_input(runs[j], 1, &e), CELER_OK);
            }
            if (j == 3) {
                static const celer_str bad[2] = {{"bad", 3}, {"bad", 3}}; /* must outlive the run */
                celer_tensor kind = TEN(CELER_STRING, (void *)bad, 2);
                assert_int_equal(celer_pipeline_set_input(runs[j], 2, &kind), CELER_OK);
            }
            celer_pipeline_set_batching(runs[j], batched);
        }
        if (batched) {
            for (int j = 0; j < NREQ; j++) {
                const celer_pipeline_call *call = NULL;
                assert_int_equal(celer_pipeline_run_steps(runs[j], &call), CELER_OK);
                assert_non_null(call);
                assert_null(call->model);
                assert_int_equal(call->batch_step, 3);
                assert_null(celer_pipeline_run_outputs(runs[j]));
            }
            celer_pipeline_run_batch(runs, NREQ);
        }
        for (int j = 0; j < NREQ; j++) {
            const celer_pipeline_call *call = (void *)1;
            celer_status st = celer_pipeline_run_steps(runs[j], &call);
            assert_null(call);
            if (j == 3) { /* [2, 8] embeddings against a dim-4 matrix: this request alone fails */
                tu_expect_err(st, CELER_ERR_SHAPE, "user embedding");
                assert_non_null(strstr(celer_error_message(), "step 4 (recommend)"));
                tu_expect_err(celer_pipeline_run_steps(runs[j], &call), CELER_ERR_SHAPE, "user embedding");
                continue;
            }
            if (st) fail_msg("request %d: %s", j, celer_error_message());
            const celer_tensor *o = celer_pipeline_run_outputs(runs[j]);
            EXPECT_SHAPE(&o[0], rows[j], K);
            EXPECT_SHAPE(&o[1], rows[j], K);
            for (int r = 0; r < rows[j]; r++) {
                int64_t wi[K];
                float ws[K];
                ref_recommend(items, ids, ITEMS, DIM, users[j] + r * DIM, ex[j] + r * n_ex[j], n_ex[j], K, wi, ws);
                for (int c = 0; c < K; c++) {
                    assert_int_equal(((const int64_t *)o[0].data)[r * K + c], wi[c]);
                    assert_true(((const float *)o[1].data)[r * K + c] == 2 * ws[c]);
                }
            }
            assert_true(celer_pipeline_run_step_ns(runs[j])[3] >= 0);
        }
        for (int j = 0; j < NREQ; j++) celer_arena_free(&arenas[j]);
    }
    for (int j = 0; j < NREQ; j++) {
        free(users[j]);
        free(ex[j]);
    }
    celer_pipeline_free(p);
}

/* Runs `fn` in a child process (so that a crash is reported, not fatal to the other tests); true
 * when it exited with status 0. */
static bool in_child(int (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fn());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) printf("child killed by signal %d\n", WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static const char *MISUSE_YAML = "inputs: [{name: user, dtype: FP32, shape: [2]}]\n"
                                 "steps:\n"
                                 "  - recommend: {input: user, items: mitems.npy, k: 2, output: [ri, rs]}\n"
                                 "  - model: {name: m, inputs: {a: rs}, outputs: {b: out}}\n"
                                 "outputs: [out, ri]\n";

/* Starts a run of MISUSE_YAML with batching on; 0 on success. */
static int misuse_start(celer_pipeline **p, celer_arena *a, celer_pipeline_run **r) {
    static float user[2] = {1, 2};
    if (celer_pipeline_parse(MISUSE_YAML, strlen(MISUSE_YAML), "pipe.yaml", tmpdir, p)) return 10;
    celer_arena_init(a, 64 * 1024, 0);
    if (celer_pipeline_run_init(*p, a, r)) return 11;
    celer_tensor u = TEN(CELER_FLOAT, user, 1, 2);
    if (celer_pipeline_set_input(*r, 0, &u)) return 12;
    celer_pipeline_set_batching(*r, true);
    return 0;
}

/* resume while the run waits for a batch step, not a model */
static int misuse_resume_at_batch_step(void) {
    celer_pipeline *p;
    celer_arena a;
    celer_pipeline_run *r;
    int rc = misuse_start(&p, &a, &r);
    if (rc) return rc;
    const celer_pipeline_call *call = NULL;
    if (celer_pipeline_run_steps(r, &call) || !call || call->model) return 13;
    celer_tensor t = TEN(CELER_FLOAT, F32(1), 1);
    celer_status st = celer_pipeline_resume(r, STR("b"), &t, 1);
    rc = st == CELER_OK ? 14 : 0;
    celer_arena_free(&a);
    celer_pipeline_free(p);
    return rc;
}

/* run_batch on a run that waits for a model call */
static int misuse_batch_at_model_step(void) {
    celer_pipeline *p;
    celer_arena a;
    celer_pipeline_run *r;
    int rc = misuse_start(&p, &a, &r);
    if (rc) return rc;
    const celer_pipeline_call *call = NULL;
    if (celer_pipeline_run_steps(r, &call) || !call || call->model) return 13;
    celer_pipeline_run_batch(&r, 1);
    if (celer_pipeline_run_steps(r, &call) || !call || !call->model) return 15;
    celer_pipeline_run_batch(&r, 1); /* wrong: the run waits for model m */
    celer_tensor t = TEN(CELER_FLOAT, F32(1, 2), 1, 2);
    celer_status st = celer_pipeline_resume(r, STR("b"), &t, 1);
    if (!st) st = celer_pipeline_run_steps(r, &call);
    rc = st == CELER_OK || st == CELER_ERR_INTERNAL ? 0 : 16;
    celer_arena_free(&a);
    celer_pipeline_free(p);
    return rc;
}

/* Regression (found by this test, fixed): celer_pipeline_resume (pipeline.c) only checks r->waiting, not that the instruction it waits
 * at is a model call: after run_steps stopped at a batch step (call->model == NULL), a resume reads
 * that step's recommend_params as model_params (out_names past the end of a 24-byte struct) and
 * crashes. Likewise celer_pipeline_run_batch calls in->step.kind->run_batch on whatever instruction
 * each run is at: a run waiting for a model call has kind NULL. Both are caller mistakes, but the
 * server gets them from a state machine spread over threads; fix: in resume, return
 * CELER_ERR_INTERNAL unless p->instrs[r->pc].op == OP_MODEL; in run_batch, skip (and fail with
 * CELER_ERR_INTERNAL) runs that are not waiting at an OP_STEP with run_batch at runs[0]'s pc. */
static void test_api_misuse_regression(void **state) {
    (void)state;
    write_npy("mitems.npy", CELER_FLOAT, 2, I64(3, 2), F32(1, 0, 0, 1, 1, 1));
    bool resume_ok = in_child(misuse_resume_at_batch_step);
    bool batch_ok = in_child(misuse_batch_at_model_step);
    printf("resume at a batch step: %s; run_batch at a model step: %s\n", resume_ok ? "ok" : "FAILED",
           batch_ok ? "ok" : "FAILED");
    assert_true(resume_ok && batch_ok);
}

/* ---- inputs ---- */

static void test_inputs(void **state) {
    (void)state;
    run_ctx *c = ctx_open("description: \"defaults and checks\"\n"
                 "inputs:\n"
                 "  - name: age\n"
                 "    dtype: FP32\n"
                 "    shape: []\n"
                 "    default: 35\n"
                 "  - {name: country, dtype: BYTES, default: \"other\"}\n"
                 "  - {name: exclude, dtype: INT64, shape: [-1], default: []}\n"
                 "  - {name: pair, dtype: INT32, shape: [2], default: [4, 5]}\n"
                 "  - {name: flag, dtype: BOOL, default: true}\n"
                 "  - {name: tags, dtype: BYTES, shape: [-1], default: [a, b, c]}\n"
                 "  - {name: need, dtype: FP32, shape: [2]}\n"
                 "steps: []\n"
                 "outputs: [age, country, exclude, pair, flag, tags, {name: needed, from: need}]\n");
    assert_string_equal(celer_pipeline_description(c->p), "defaults and checks");
    assert_int_equal(celer_pipeline_input_count(c->p), 7);
    assert_int_equal(celer_pipeline_output_count(c->p), 7);
    assert_string_equal(celer_pipeline_output_name(c->p, 6), "needed");
    const celer_pipeline_io *io = celer_pipeline_input(c->p, 2);
    assert_string_equal(io->name, "exclude");
    assert_int_equal(io->dtype, CELER_INT64);
    assert_int_equal(io->rank, 1);
    assert_int_equal(io->dims[0], -1);
    assert_true(io->has_default);
    assert_false(celer_pipeline_input(c->p, 6)->has_default);

    /* only `need` is sent (3 rows): every default is repeated 3 times */
    set_in(c, "need", TEN(CELER_FLOAT, F32(1, 2, 3, 4, 5, 6), 3, 2));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 3);
    EXPECT_F32N(&o[0], 0, 35, 35, 35);
    EXPECT_SHAPE(&o[1], 3);
    assert_int_equal(o[1].dtype, CELER_STRING);
    for (int i = 0; i < 3; i++) assert_string_equal(((const celer_str *)o[1].data)[i].data, "other");
    assert_int_equal(o[2].dtype, CELER_INT64);
    EXPECT_SHAPE(&o[2], 3, 0);
    EXPECT_SHAPE(&o[3], 3, 2);
    assert_memory_equal(o[3].data, I32(4, 5, 4, 5, 4, 5), 6 * sizeof(int32_t));
    EXPECT_SHAPE(&o[4], 3);
    expect_bool(&o[4], U8(1, 1, 1), 3);
    EXPECT_SHAPE(&o[5], 3, 3);
    for (int i = 0; i < 9; i++) assert_string_equal(((const celer_str *)o[5].data)[i].data, STR("a", "b", "c")[i % 3]);
    EXPECT_SHAPE(&o[6], 3, 2);
    EXPECT_F32N(&o[6], 0, 1, 2, 3, 4, 5, 6);

    /* the declared ones, sent: variable length, rows from the request */
    ctx_again(c);
    set_in(c, "need", TEN(CELER_FLOAT, F32(1, 2, 3, 4), 2, 2));
    set_in(c, "exclude", TEN(CELER_INT64, I64(1, 2, 3, 4, 5, 6), 2, 3));
    set_in(c, "country", TEN(CELER_STRING, TU_STRS("de", "fr"), 2));
    o = run_ok(c);
    EXPECT_SHAPE(&o[2], 2, 3);
    assert_string_equal(((const celer_str *)o[1].data)[1].data, "fr");
    EXPECT_F32N(&o[0], 0, 35, 35);

    /* missing input without a default */
    ctx_again(c);
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "missing input 'need'");
    assert_null(celer_pipeline_run_outputs(c->r));

    /* wrong dtype, wrong per-row shape, wrong rank */
    ctx_again(c);
    tu_expect_err(try_set(c, "need", TEN(CELER_DOUBLE, F64(1, 2), 1, 2)), CELER_ERR_DTYPE, "input 'need'");
    tu_expect_err(try_set(c, "need", TEN(CELER_FLOAT, F32(1, 2, 3), 1, 3)), CELER_ERR_SHAPE, "input 'need'");
    tu_expect_err(try_set(c, "need", TEN(CELER_FLOAT, F32(1, 2), 2)), CELER_ERR_SHAPE, "input 'need'");
    tu_expect_err(try_set(c, "age", TEN(CELER_FLOAT, F32(1, 2), 1, 2)), CELER_ERR_SHAPE, "input 'age'");
    tu_expect_err(try_set(c, "pair", TEN(CELER_INT64, I64(1, 2), 1, 2)), CELER_ERR_DTYPE, "input 'pair'");
    tu_expect_err(try_set(c, "country", TEN(CELER_INT64, I64(1), 1)), CELER_ERR_DTYPE, "input 'country'");
    /* rows that differ between inputs */
    set_in(c, "need", TEN(CELER_FLOAT, F32(1, 2, 3, 4), 2, 2));
    set_in(c, "age", TEN(CELER_FLOAT, F32(1, 2, 3), 3));
    celer_status st = run_err(c);
    tu_expect_err(st, CELER_ERR_SHAPE, "rows");
    assert_non_null(strstr(celer_error_message(), "'age'"));
    assert_non_null(strstr(celer_error_message(), "'need'"));

    /* zero rows go through */
    ctx_again(c);
    set_in(c, "need", TEN(CELER_FLOAT, F32(0), 0, 2));
    o = run_ok(c);
    EXPECT_SHAPE(&o[0], 0);
    EXPECT_SHAPE(&o[5], 0, 3);
    ctx_close(c);

    /* nothing sent, everything defaulted: one row */
    c = ctx_open("inputs: [{name: a, dtype: FP64, default: .nan}, {name: b, dtype: UINT8, shape: [2], default: [1, 2]}]\n"
                 "steps: []\n"
                 "outputs: [a, b]\n");
    assert_string_equal(celer_pipeline_description(c->p), "");
    o = run_ok(c);
    EXPECT_SHAPE(&o[0], 1);
    assert_true(isnan(((const double *)o[0].data)[0]));
    EXPECT_SHAPE(&o[1], 1, 2);
    assert_memory_equal(o[1].data, U8(1, 2), 2);
    /* run_steps after the end: nothing more, no crash */
    o = run_ok(c);
    EXPECT_SHAPE(&o[1], 1, 2);
    ctx_close(c);
}

/* ---- model calls ---- */

static void test_model_call(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP32, shape: [2]}]\n"
                 "steps:\n"
                 "  - scale: {input: x, factor: 2, output: x2}\n"
                 "  - model: {name: tower, version: \"3\", inputs: {dense: x2, raw: x}, outputs: {logits: lg, emb: e}}\n"
                 "  - softmax: {input: lg, output: probs}\n"
                 "  - model: {name: ranker, inputs: [probs], outputs: [score, tag]}\n"
                 "  - model:\n"
                 "      name: tower\n"
                 "      inputs: {dense: probs}\n"
                 "      outputs: {logits: lg2}\n"
                 "outputs: [probs, e, score, tag, {name: final, from: lg2}]\n");
    assert_int_equal(celer_pipeline_model_count(c->p), 2);
    assert_string_equal(celer_pipeline_model_name(c->p, 0), "tower");
    assert_string_equal(celer_pipeline_model_name(c->p, 1), "ranker");
    assert_int_equal(celer_pipeline_step_count(c->p), 5);
    assert_string_equal(celer_pipeline_step_name(c->p, 1), "2_model");

    float x[4] = {1, 2, 3, 4};
    set_in(c, "x", TEN(CELER_FLOAT, x, 2, 2));
    const celer_pipeline_call *call = NULL;
    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_non_null(call);
    assert_string_equal(call->model, "tower");
    assert_string_equal(call->version, "3");
    assert_int_equal(call->n_inputs, 2);
    assert_string_equal(call->input_names[0], "dense");
    assert_string_equal(call->input_names[1], "raw");
    EXPECT_SHAPE(&call->inputs[0], 2, 2);
    EXPECT_F32N(&call->inputs[0], 0, 2, 4, 6, 8);
    EXPECT_F32N(&call->inputs[1], 0, 1, 2, 3, 4);
    assert_null(celer_pipeline_run_outputs(c->r));
    /* asking for more while the call is pending is an error, not a crash */
    const celer_pipeline_call *again = NULL;
    tu_expect_err(celer_pipeline_run_steps(c->r, &again), CELER_ERR_INTERNAL, "waits");
    assert_null(again);

    /* the model's answer lacks an output the step maps */
    float emb[6] = {9, 8, 7, 6, 5, 4};
    celer_tensor only_emb[1] = {TEN(CELER_FLOAT, emb, 2, 3)};
    tu_expect_err(celer_pipeline_resume(c->r, STR("emb"), only_emb, 1), CELER_ERR_INVALID, "no output 'logits'");
    assert_non_null(strstr(celer_error_message(), "tower"));

    /* the real answer, in another order and with an extra output */
    float logits[6] = {0, 1, 2, 3, 3, 3};
    celer_tensor outs[3] = {TEN(CELER_FLOAT, emb, 2, 3), TEN(CELER_INT64, I64(1, 2), 2),
                            TEN(CELER_FLOAT, logits, 2, 3)};
    assert_int_equal(celer_pipeline_resume(c->r, STR("emb", "unused", "logits"), outs, 3), CELER_OK);
    /* outputs are copied: the caller's buffers may go */
    emb[0] = -1;
    logits[0] = 100;

    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_non_null(call);
    assert_string_equal(call->model, "ranker");
    assert_string_equal(call->version, "");
    assert_int_equal(call->n_inputs, 1);
    assert_string_equal(call->input_names[0], "probs");
    float probs[6];
    for (int r = 0; r < 2; r++) {
        const float lg[2][3] = {{0, 1, 2}, {3, 3, 3}};
        double s = exp(lg[r][0]) + exp(lg[r][1]) + exp(lg[r][2]);
        for (int i = 0; i < 3; i++) probs[r * 3 + i] = (float)(exp(lg[r][i]) / s);
    }
    expect_f32(&call->inputs[0], probs, 6, 1e-6);
    char tag0[8] = "alpha", tag1[8] = "beta";
    celer_tensor ranker_out[2] = {TEN(CELER_FLOAT, F32(0.25f, 0.75f), 2),
                                  TEN(CELER_STRING, ((celer_str[]){{tag0, 5}, {tag1, 4}}), 2)};
    assert_int_equal(celer_pipeline_resume(c->r, STR("score", "tag"), ranker_out, 2), CELER_OK);
    tag0[0] = 'X';

    /* resume when no call is pending */
    tu_expect_err(celer_pipeline_resume(c->r, STR("score"), ranker_out, 1), CELER_ERR_INTERNAL, "not waiting");

    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_non_null(call);
    assert_string_equal(call->model, "tower");
    assert_int_equal(call->n_inputs, 1);
    assert_string_equal(call->input_names[0], "dense");
    struct timespec ms = {0, 2000000};
    nanosleep(&ms, NULL);
    celer_tensor fin[1] = {TEN(CELER_FLOAT, F32(42, 43), 2)};
    assert_int_equal(celer_pipeline_resume(c->r, STR("logits"), fin, 1), CELER_OK);

    const celer_tensor *o = run_ok(c);
    expect_f32(&o[0], probs, 6, 1e-6);
    EXPECT_SHAPE(&o[1], 2, 3);
    EXPECT_F32N(&o[1], 0, 9, 8, 7, 6, 5, 4);
    EXPECT_F32N(&o[2], 0, 0.25, 0.75);
    assert_int_equal(o[3].dtype, CELER_STRING);
    assert_string_equal(((const celer_str *)o[3].data)[0].data, "alpha");
    assert_string_equal(((const celer_str *)o[3].data)[1].data, "beta");
    EXPECT_F32N(&o[4], 0, 42, 43);
    /* a model step counts the time from its call to its resume */
    const int64_t *ns = celer_pipeline_run_step_ns(c->r);
    for (int i = 0; i < 5; i++) assert_true(ns[i] >= 0);
    assert_true(ns[4] >= 2000000);
    ctx_close(c);
}

/* ---- route ---- */

static const char *ROUTE_FIELD =
    "inputs:\n"
    "  - {name: country, dtype: BYTES, default: other}\n"
    "  - {name: x, dtype: FP32}\n"
    "steps:\n"
    "  - route:\n"
    "      field: country\n"
    "      cases:\n"
    "        de: [{scale: {input: x, factor: 2, output: y}}]\n"
    "        fr:\n"
    "          - scale: {input: x, factor: 3, output: t}\n"
    "          - scale: {input: t, output: y}\n"
    "      default:\n"
    "        - scale: {input: x, factor: 10, output: y}\n"
    "  - scale: {input: y, offset: 1, output: z}\n"
    "outputs: [z]\n";

static void test_route_field(void **state) {
    (void)state;
    run_ctx *c = ctx_open(ROUTE_FIELD);
    struct {
        const char *v[2];
        int rows;
        float factor;
    } cases[] = {{{"de", "de"}, 2, 2}, {{"fr", "fr"}, 2, 3}, {{"it", "it"}, 2, 10}, {{NULL}, 2, 10}, {{"fr"}, 1, 3}};
    for (size_t k = 0; k < CELER_ARRAY_LEN(cases); k++) {
        if (k) ctx_again(c);
        float x[2] = {1, 2};
        if (cases[k].v[0]) set_in(c, "country", TEN(CELER_STRING, tu_strs(cases[k].v, 2), cases[k].rows));
        set_in(c, "x", TEN(CELER_FLOAT, x, cases[k].rows));
        const celer_tensor *o = run_ok(c);
        float w[2] = {x[0] * cases[k].factor + 1, x[1] * cases[k].factor + 1};
        expect_f32(&o[0], w, cases[k].rows, 0);
    }
    /* rows that disagree */
    ctx_again(c);
    set_in(c, "country", TEN(CELER_STRING, TU_STRS("de", "fr"), 2));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2), 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "rows disagree");
    assert_non_null(strstr(celer_error_message(), "step 1 (route)"));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "rows disagree");
    ctx_close(c);

    /* without a default: an unmatched value lists the cases */
    c = ctx_open("inputs: [{name: country, dtype: BYTES}, {name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      field: country\n"
                 "      cases:\n"
                 "        de: [{scale: {input: x, factor: 2, output: y}}]\n"
                 "        fr: [{scale: {input: x, factor: 3, output: y}}]\n"
                 "outputs: [y]\n");
    set_in(c, "country", TEN(CELER_STRING, TU_STRS("it"), 1));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "cases: 'de', 'fr'");
    assert_non_null(strstr(celer_error_message(), "'it'"));
    ctx_again(c);
    set_in(c, "country", TEN(CELER_STRING, TU_STRS("fr"), 1));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    EXPECT_F32N(&run_ok(c)[0], 0, 3);
    ctx_close(c);

    /* INT64 and BOOL fields */
    c = ctx_open("inputs: [{name: v, dtype: INT64}, {name: b, dtype: BOOL, default: false}, {name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      field: v\n"
                 "      cases:\n"
                 "        1: [{scale: {input: x, factor: 2, output: y}}]\n"
                 "        -7: [{scale: {input: x, factor: 3, output: y}}]\n"
                 "  - route:\n"
                 "      field: b\n"
                 "      cases:\n"
                 "        true: [{scale: {input: y, offset: 100, output: z}}]\n"
                 "        false: [{scale: {input: y, offset: 200, output: z}}]\n"
                 "outputs: [z]\n");
    set_in(c, "v", TEN(CELER_INT64, I64(-7, -7), 2));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2), 2));
    EXPECT_F32N(&run_ok(c)[0], 0, 203, 206);
    ctx_again(c);
    set_in(c, "v", TEN(CELER_INT64, I64(1), 1));
    set_in(c, "b", TEN(CELER_BOOL, U8(1), 1));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    EXPECT_F32N(&run_ok(c)[0], 0, 102);
    ctx_again(c);
    set_in(c, "v", TEN(CELER_INT64, I64(2), 1));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "cases: '1', '-7'");
    ctx_again(c);
    set_in(c, "v", TEN(CELER_INT64, I64(1, 2), 2));
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 1), 2));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "rows disagree");
    ctx_again(c); /* zero rows: no value to route on */
    set_in(c, "v", TEN(CELER_INT64, I64(0), 0));
    set_in(c, "x", TEN(CELER_FLOAT, F32(0), 0));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "empty");
    ctx_close(c);
}

static void test_route_parameter_nested(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs: [{name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      parameter: variant\n"
                 "      cases:\n"
                 "        a: [{scale: {input: x, factor: 2, output: y}}]\n"
                 "        b: [{scale: {input: x, factor: 3, output: y}}]\n"
                 "      default: [{scale: {input: x, factor: 5, output: y}}]\n"
                 "outputs: [y]\n");
    const char *keys[2] = {"other", "variant"}, *vals[2] = {"a", "b"};
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    celer_pipeline_set_parameters(c->r, keys, vals, 2);
    EXPECT_F32N(&run_ok(c)[0], 0, 3);
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    celer_pipeline_set_parameters(c->r, keys, vals, 1); /* only "other" */
    EXPECT_F32N(&run_ok(c)[0], 0, 5);
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    EXPECT_F32N(&run_ok(c)[0], 0, 5); /* no parameters at all */
    ctx_close(c);

    /* no default: a missing or unmatched parameter is an error */
    c = ctx_open("inputs: [{name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      parameter: variant\n"
                 "      cases: {a: [{scale: {input: x, factor: 2, output: y}}]}\n"
                 "outputs: [y]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "missing request parameter 'variant'");
    ctx_again(c);
    set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
    const char *k1[1] = {"variant"}, *v1[1] = {"zz"};
    celer_pipeline_set_parameters(c->r, k1, v1, 1);
    tu_expect_err(run_err(c), CELER_ERR_INVALID, "parameter 'variant' is 'zz'");
    assert_non_null(strstr(celer_error_message(), "cases: 'a'"));
    ctx_close(c);

    /* nested: a route by parameter inside a route by field, and one inside the default */
    c = ctx_open("inputs: [{name: kind, dtype: BYTES}, {name: x, dtype: FP32}]\n"
                 "steps:\n"
                 "  - route:\n"
                 "      field: kind\n"
                 "      cases:\n"
                 "        p:\n"
                 "          - scale: {input: x, factor: 10, output: t}\n"
                 "          - route:\n"
                 "              parameter: mode\n"
                 "              cases:\n"
                 "                fast: [{scale: {input: t, offset: 1, output: y}}]\n"
                 "                slow: [{scale: {input: t, offset: 2, output: y}}]\n"
                 "              default: [{scale: {input: t, offset: 3, output: y}}]\n"
                 "          - scale: {input: y, factor: 2, output: y2}\n"
                 "        q:\n"
                 "          - scale: {input: x, factor: 100, output: y2}\n"
                 "      default:\n"
                 "        - route:\n"
                 "            field: kind\n"
                 "            cases:\n"
                 "              r: [{scale: {input: x, offset: 7, output: y2}}]\n"
                 "            default: [{scale: {input: x, offset: 8, output: y2}}]\n"
                 "  - scale: {input: y2, offset: 0.5, output: z}\n"
                 "outputs: [z]\n");
    assert_int_equal(celer_pipeline_step_count(c->p), 12);
    const char *want_names[12] = {"1_route", "2_scale", "3_route",  "4_scale",  "5_scale",  "6_scale",
                                  "7_scale", "8_scale", "9_route", "10_scale", "11_scale", "12_scale"};
    for (int i = 0; i < 12; i++) assert_string_equal(celer_pipeline_step_name(c->p, i), want_names[i]);
    struct {
        const char *kind, *mode;
        float want;
    } cases[] = {{"p", "fast", (1 * 10 + 1) * 2 + 0.5f}, {"p", "slow", (10 + 2) * 2 + 0.5f},
                 {"p", NULL, (10 + 3) * 2 + 0.5f},     {"q", "fast", 100.5f},
                 {"r", NULL, 8.5f},                    {"s", "slow", 9.5f}};
    for (size_t k = 0; k < CELER_ARRAY_LEN(cases); k++) {
        ctx_again(c);
        set_in(c, "kind", TEN(CELER_STRING, tu_strs(&cases[k].kind, 1), 1));
        set_in(c, "x", TEN(CELER_FLOAT, F32(1), 1));
        const char *mk[1] = {"mode"};
        if (cases[k].mode) celer_pipeline_set_parameters(c->r, mk, &cases[k].mode, 1);
        const celer_tensor *o = run_ok(c);
        EXPECT_F32N(&o[0], 0, cases[k].want);
        /* steps not taken took no time */
        const int64_t *ns = celer_pipeline_run_step_ns(c->r);
        for (int i = 0; i < 12; i++) assert_true(ns[i] >= 0);
        if (!strcmp(cases[k].kind, "q")) { /* ran: 1_route, 8_scale, 12_scale */
            for (int i = 1; i <= 6; i++) assert_int_equal(ns[i], 0);
            for (int i = 8; i <= 10; i++) assert_int_equal(ns[i], 0);
        }
    }
    ctx_close(c);

    /* a tensor every case defines may be used after the route even without a default (an
     * unmatched value is an error, not a path) */
    celer_pipeline *p = load("inputs: [{name: k, dtype: BYTES}, {name: x, dtype: FP32}]\n"
                             "steps:\n"
                             "  - route:\n"
                             "      field: k\n"
                             "      cases:\n"
                             "        a: [{scale: {input: x, output: y}}]\n"
                             "        b: [{clip: {input: x, min: 0, output: y}}]\n"
                             "  - log1p: {input: y, output: z}\n"
                             "outputs: [z, y]\n");
    celer_pipeline_free(p);
}

/* ---- bad configurations ---- */

#define HDR                                                                                        \
    "inputs:\n"                                                                                    \
    "  - {name: x, dtype: FP32, shape: [3]}\n"                                                     \
    "  - {name: s, dtype: BYTES}\n"                                                                \
    "steps:\n"

static void test_bad_configs(void **state) {
    (void)state;
    write_text("dup_vocab.txt", "a\nb\na\n");
    write_text("empty_labels.txt", "");
    write_text("not_npy.npy", "this is not a .npy file");
    write_npy("s.npy", CELER_FLOAT, 1, I64(3), F32(1, 2, 3));
    write_npy("it.npy", CELER_FLOAT, 2, I64(2, 3), F32(1, 2, 3, 4, 5, 6));
    static const struct {
        const char *yaml;
        celer_status st;
        const char *marker, *substr;
    } cases[] = {
        /* malformed YAML */
        {HDR "  - scale: {input: x, output: y\n"
             "outputs: [y]\n",
         CELER_ERR_PARSE, "outputs", ""},
        {"inputs:\n  - {name: x, dtype: FP32}\n   bad: indentation\nsteps: []\noutputs: [x]\n", CELER_ERR_PARSE,
         "bad:", ""},
        /* not a pipeline */
        {"- just\n- a list\n", CELER_ERR_INVALID, "- just", "mapping"},
        {HDR "  - scale: {input: x, output: y}\noutputs: [y]\nextra: 1\n", CELER_ERR_INVALID, "extra",
         "unknown argument 'extra'"},
        /* unknown step kind */
        {HDR "  - scale: {input: x, output: y}\n"
             "  - frobnicate: {input: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "frobnicate", "unknown step 'frobnicate'"},
        /* unknown argument */
        {HDR "  - scale: {input: x,\n"
             "           factr: 2, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "factr", "unknown argument 'factr'"},
        {"inputs:\n  - {name: x, dtype: FP32, shap: [3]}\nsteps: []\noutputs: [x]\n", CELER_ERR_INVALID, "shap",
         "unknown argument 'shap'"},
        /* missing required argument */
        {HDR "  - fill_missing: {input: x, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "fill_missing", "missing argument 'value'"},
        {HDR "  - one_hot: {input: x, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "one_hot", "missing argument 'depth'"},
        {HDR "  - concat: {output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "concat", "missing argument 'inputs'"},
        {HDR "  - model: {name: m, inputs: {a: x}}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "model", "missing argument 'outputs'"},
        /* use of an undefined tensor */
        {HDR "  - scale: {input: x, output: y}\n"
             "  - scale: {input: nope, output: z}\n"
             "outputs: [z]\n",
         CELER_ERR_INVALID, "nope", "unknown tensor 'nope'"},
        {HDR "  - scale: {input: x, output: y}\n"
             "  - scale: {input: z, output: z}\n" /* its own output is not defined before it */
             "outputs: [z]\n",
         CELER_ERR_INVALID, "input: z", "unknown tensor 'z'"},
        {HDR "  - concat: {inputs: [x, y], output: c}\n"
             "outputs: [c]\n",
         CELER_ERR_INVALID, "concat", "unknown tensor 'y'"},
        {HDR "  - scale: {input: x, output: y}\n"
             "outputs: [y, missing_out]\n",
         CELER_ERR_INVALID, "missing_out", "unknown tensor 'missing_out'"},
        {HDR "  - route: {field: nofield, cases: {a: []}}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "nofield", "unknown tensor 'nofield'"},
        /* output listed twice; a step naming one output twice */
        {HDR "  - scale: {input: x, output: y}\n"
             "outputs:\n"
             "  - y\n"
             "  - x\n"
             "  - {name: y, from: x}\n",
         CELER_ERR_INVALID, "{name: y", "listed twice"},
        {HDR "  - top_k: {input: x, k: 2, output: [a, a]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "top_k", "named twice"},
        /* duplicate input */
        {"inputs:\n"
         "  - {name: x, dtype: FP32}\n"
         "  - {name: y, dtype: FP32}\n"
         "  - {name: x, dtype: INT64}\n"
         "steps: []\n"
         "outputs: [x]\n",
         CELER_ERR_INVALID, "x, dtype: INT64", "declared twice"},
        /* bad dtype, shape, default */
        {"inputs: [{name: x, dtype: FP8}]\nsteps: []\noutputs: [x]\n", CELER_ERR_INVALID, "inputs", "unknown type 'FP8'"},
        {"inputs:\n  - {name: x, dtype: FP32, shape: [2], default: [1, 2, 3]}\nsteps: []\noutputs: [x]\n",
         CELER_ERR_INVALID, "default", "default has 3 values"},
        {"inputs:\n  - {name: x, dtype: INT64, default: abc}\nsteps: []\noutputs: [x]\n", CELER_ERR_INVALID,
         "default", "not a number"},
        {"inputs:\n  - {name: x, dtype: FP32, shape: [1.5]}\nsteps: []\noutputs: [x]\n", CELER_ERR_INVALID, "shape",
         "dims must be integers"},
        /* boundaries not ascending; bucketize arguments that do not go together */
        {HDR "  - bucketize: {input: x, boundaries: [1, 3, 2], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "ascending"},
        {HDR "  - bucketize: {input: x, boundaries: [1, .nan], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "NaN"},
        {HDR "  - bucketize: {input: x, boundaries: [1, 2], bins: 3, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "'bins'"},
        {HDR "  - bucketize: {input: x, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "exactly one of"},
        {HDR "  - bucketize: {input: x, sample: not_npy.npy, bins: 3, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "not_npy.npy"},
        {HDR "  - bucketize: {input: x, sample: s.npy, bins: 1, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "'bins'"},
        /* std 0, mismatched mean/std */
        {HDR "  - normalize: {input: x, mean: 0, std: [1, 0, 2], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "normalize", "non-zero"},
        {HDR "  - normalize: {input: x, mean: [1, 2], std: [1, 2, 3], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "normalize", "as many"},
        {HDR "  - clip: {input: x, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "clip", "'min', 'max'"},
        {HDR "  - clip: {input: x, min: 3, max: 1, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "clip", "above"},
        {HDR "  - scale: {input: x, factor: two, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "scale", "'factor' must be a number"},
        {HDR "  - cast: {input: x, dtype: BYTES, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "cast", "BYTES"},
        /* missing files */
        {HDR "  - lookup: {input: s, file: nothere.txt, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "lookup", "not found"},
        {HDR "  - top_k: {input: x, k: 1, labels: nolabels.txt, output: [a, b, c]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "top_k", "not found"},
        {HDR "  - bucketize: {input: x, sample: nosample.npy, bins: 3, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "bucketize", "not found"},
        {HDR "  - recommend: {input: x, items: noitems.npy, output: [a, b]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "recommend", "not found"},
        {HDR "  - top_k: {input: x, k: 1, labels: empty_labels.txt, output: [a, b, c]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "top_k", "no labels"},
        /* vocabulary duplicates, empty vocabulary */
        {HDR "  - lookup: {input: s, vocabulary: [a, b, a], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "lookup", "twice"},
        {HDR "  - lookup: {input: s, file: dup_vocab.txt, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "lookup", "twice"},
        {HDR "  - lookup: {input: s, vocabulary: [], output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "lookup", "empty"},
        {HDR "  - lookup: {input: s, vocabulary: [a], file: dup_vocab.txt, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "lookup", "exactly one of"},
        /* k 0 */
        {HDR "  - top_k: {input: x, k: 0, output: [a, b]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "top_k", "'k' must be an integer from 1"},
        {HDR "  - top_k: {input: x, k: 2, output: [a, b, c]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "top_k", "must list 2 names"},
        {HDR "  - recommend: {input: x, items: it.npy, k: 0, output: [a, b]}\n"
             "outputs: [a]\n",
         CELER_ERR_INVALID, "recommend", "'k' must be an integer from 1"},
        {HDR "  - one_hot: {input: x, depth: 0, output: y}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "one_hot", "'depth'"},
        /* a step that is not a one-key mapping */
        {HDR "  - {scale: {input: x, output: y}, clip: {input: x, min: 0}}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "{scale", "one key"},
        {HDR "  - scale: {input: x, output: y}\n"
             "  - log1p\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "log1p", "one key"},
        {HDR "  - scale: [x, y]\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "[x, y]", "must be a mapping"},
        {HDR "  scale: {input: x}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "scale", "list of steps"},
        /* route: both field and parameter, neither, bad cases */
        {HDR "  - route: {field: s, parameter: p, cases: {a: []}}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "route", "exactly one of 'field'"},
        {HDR "  - route: {cases: {a: []}}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "route", "exactly one of 'field'"},
        {HDR "  - route: {field: s, cases: [a, b]}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "[a, b]", "'cases' must map"},
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a: []\n"
             "        a: [] # dup\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "# dup", "given twice"},
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a: {scale: {input: x}}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "a: {scale", "list of steps"},
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a:\n"
             "          - bogus: {input: x}\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "bogus", "unknown step 'bogus'"},
        /* a tensor set in one branch only, used after the route */
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a: [{scale: {input: x, output: only_a}}, {scale: {input: x, output: y}}]\n"
             "        b: [{scale: {input: x, output: y}}]\n"
             "      default: [{scale: {input: x, output: y}}]\n"
             "  - scale: {input: only_a, output: z}\n"
             "outputs: [z, y]\n",
         CELER_ERR_INVALID, "input: only_a", "not set on every path"},
        /* every case sets it but the default does not */
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a: [{scale: {input: x, output: y}}]\n"
             "      default: []\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "outputs", "not set on every path"},
        /* a branch's tensor is not visible in the next branch */
        {HDR "  - route:\n"
             "      field: s\n"
             "      cases:\n"
             "        a: [{scale: {input: x, output: t}}]\n"
             "        b: [{scale: {input: t, output: u}}]\n"
             "outputs: [x]\n",
         CELER_ERR_INVALID, "input: t", "not set on every path"},
        /* model step mapping */
        {HDR "  - model: {name: m, inputs: {a: nope}, outputs: {b: y}}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "model", "unknown tensor 'nope'"},
        {HDR "  - model: {name: m, inputs: {}, outputs: {b: y}}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "model", "is empty"},
        {HDR "  - model: {name: m, inputs: {a: x}, outputs: {b: y}, batch: 3}\n"
             "outputs: [y]\n",
         CELER_ERR_INVALID, "batch", "unknown argument 'batch'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        printf("  bad config %zu\n", i);
        load_fails(cases[i].yaml, cases[i].st, cases[i].marker, cases[i].substr);
    }
    /* a message names the step: "step 2 (frobnicate)" is not a step, but a known kind is */
    load_fails(HDR "  - scale: {input: x, output: y}\n  - clip: {input: y, min: 5, max: 1}\noutputs: [y]\n",
               CELER_ERR_INVALID, "clip", "step 2 (clip)");
    load_fails(HDR "  - route:\n      field: s\n      cases:\n        a: [{clip: {input: x}}]\noutputs: [x]\n",
               CELER_ERR_INVALID, "clip", "step 2 (clip)");
    /* a dim far outside int64 (found by fuzz_pipeline: its conversion was undefined) */
    load_fails("inputs:\n  - {name: x, dtype: FP32, shape: [1677777777777777777777777777777777777777777777777777]}\n"
               "steps:\n  - scale: {input: x, output: y}\noutputs: [y]\n",
               CELER_ERR_INVALID, "shape", "dims must be integers");
    load_fails("inputs:\n  - {name: x, dtype: INT32, shape: [1], default: 1e300}\n"
               "steps:\n  - cast: {input: x, output: y, to: FP32}\noutputs: [y]\n",
               CELER_ERR_INVALID, "default", "outside the range of");
}

/* celer_pipeline_load reads a file; names in it are relative to its folder. */
static void test_load_file(void **state) {
    (void)state;
    char sub[128], path[160];
    snprintf(sub, sizeof sub, "%s/repo", tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(path, sizeof path, "%s/repo/pipeline.yaml", tmpdir);
    write_text("repo/words.txt", "zero\none\ntwo\n");
    write_text("repo/pipeline.yaml", "# a comment\n"
                                     "inputs: [{name: w, dtype: BYTES}]\n"
                                     "steps:\n"
                                     "  - lookup: {input: w, file: words.txt, output: i}\n"
                                     "outputs: [i]\n");
    celer_pipeline *p = NULL;
    assert_int_equal(celer_pipeline_load(path, &p), CELER_OK);
    run_ctx *c = ctx_adopt(p);
    set_in(c, "w", TEN(CELER_STRING, TU_STRS("two", "zero", "three"), 3));
    EXPECT_I64N(&run_ok(c)[0], 2, 0, -1);
    ctx_close(c);

    snprintf(path, sizeof path, "%s/repo/absent.yaml", tmpdir);
    tu_expect_err(celer_pipeline_load(path, &p), CELER_ERR_IO, "absent.yaml");
    assert_null(p);
    write_text("repo/bad.yaml", "inputs: [{name: w, dtype: BYTES}]\n"
                                "steps:\n"
                                "  - lookup: {input: w, file: words.txt, output: i}\n"
                                "  - nope: {}\n"
                                "outputs: [i]\n");
    snprintf(path, sizeof path, "%s/repo/bad.yaml", tmpdir);
    tu_expect_err(celer_pipeline_load(path, &p), CELER_ERR_INVALID, "bad.yaml:4:");
    assert_null(p);
}

/* Every file a pipeline names resolves inside its folder: an absolute name, `..` leaving it or a
 * symlink to outside is refused at load, naming the key and the name as written (never the
 * folder's server path); `..` that stays inside and a symlink inside are fine. */
static void test_paths_confined(void **state) {
    (void)state;
    char folder[128], link[192];
    snprintf(folder, sizeof folder, "%s/pipe", tmpdir);
    assert_int_equal(mkdir(folder, 0755), 0);
    snprintf(link, sizeof link, "%s/pipe/sub", tmpdir);
    assert_int_equal(mkdir(link, 0755), 0);
    write_text("secret.txt", "root:x:0:0\n"); /* beside the folder, not in it */
    write_text("pipe/labels.txt", "cat\ndog\n");
    write_npy("secret.npy", CELER_FLOAT, 1, I64(3), F32(1, 2, 3));
    write_npy("items.npy", CELER_FLOAT, 2, I64(2, 3), F32(1, 2, 3, 4, 5, 6));
    snprintf(link, sizeof link, "%s/pipe/escape.txt", tmpdir);
    assert_int_equal(symlink("../secret.txt", link), 0);
    snprintf(link, sizeof link, "%s/pipe/abs_escape.txt", tmpdir);
    char target[160];
    snprintf(target, sizeof target, "%s/secret.txt", tmpdir);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof link, "%s/pipe/alias.txt", tmpdir);
    assert_int_equal(symlink("labels.txt", link), 0);
    snprintf(link, sizeof link, "%s/pipe/outside_dir", tmpdir);
    assert_int_equal(symlink("..", link), 0);

    static const struct {
        const char *step, *substr;
    } bad[] = {
        {"top_k: {input: x, k: 1, labels: /etc/passwd, output: [i, s, n]}", "'labels': an absolute path is refused"},
        {"top_k: {input: x, k: 1, labels: ../secret.txt, output: [i, s, n]}",
         "'labels': '../secret.txt' resolves outside"},
        {"top_k: {input: x, k: 1, labels: sub/../../secret.txt, output: [i, s, n]}", "resolves outside"},
        {"top_k: {input: x, k: 1, labels: escape.txt, output: [i, s, n]}", "'escape.txt' resolves outside"},
        {"top_k: {input: x, k: 1, labels: abs_escape.txt, output: [i, s, n]}", "'abs_escape.txt' resolves outside"},
        {"top_k: {input: x, k: 1, labels: outside_dir/secret.txt, output: [i, s, n]}", "resolves outside"},
        {"top_k: {input: x, k: 1, labels: sub, output: [i, s, n]}", "'sub' is not a regular file"},
        {"top_k: {input: x, k: 1, labels: absent.txt, output: [i, s, n]}", "'absent.txt' not found"},
        {"lookup: {input: s, file: ../secret.txt, output: y}", "'file': '../secret.txt' resolves outside"},
        {"bucketize: {input: x, sample: ../secret.npy, bins: 2, output: y}", "'sample': '../secret.npy' resolves"},
        {"recommend: {input: x, items: ../items.npy, k: 1, output: [i, s]}", "'items': '../items.npy' resolves"},
        {"recommend: {input: x, items: /tmp/items.npy, k: 1, output: [i, s]}", "'items': an absolute path is refused"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, HDR "  - %s\noutputs: [x]\n", bad[i].step);
        celer_pipeline *p = NULL;
        celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "m/pipeline.yaml", folder, &p);
        const char *msg = celer_error_message();
        if (st != CELER_ERR_INVALID || !strstr(msg, bad[i].substr) || strstr(msg, tmpdir) ||
            !strstr(msg, "m/pipeline.yaml:5:")) {
            printf("case %zu: want INVALID with '%s' and no '%s', got %s: '%s'\n", i, bad[i].substr, tmpdir,
                   celer_status_name(st), msg);
            celer_pipeline_free(p);
            fail();
        }
        assert_null(p);
    }
    /* inside: a symlink to a file of the folder, `..` that comes back in */
    static const char *const good[] = {"alias.txt", "sub/../labels.txt", "./labels.txt"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(good); i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, HDR "  - top_k: {input: x, k: 1, labels: %s, output: [i, sc, n]}\noutputs: [n]\n",
                 good[i]);
        celer_pipeline *p = NULL;
        celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "m/pipeline.yaml", folder, &p);
        if (st) printf("%s: %s\n", good[i], celer_error_message());
        assert_int_equal(st, CELER_OK);
        celer_pipeline_free(p);
    }
}

/* ---- labels and metrics ---- */

static void test_labels_metrics(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: age, dtype: FP32}\n"
                 "  - {name: kind, dtype: BYTES, default: a}\n"
                 "steps:\n"
                 "  - bucketize: {input: age, boundaries: [18, 30], output: bin}\n"
                 "  - route:\n"
                 "      field: kind\n"
                 "      cases:\n"
                 "        a:\n"
                 "          - one_hot: {input: bin, depth: 3, output: feat}\n"
                 "        b:\n"
                 "          - cast: {input: bin, dtype: FP32, output: f1}\n"
                 "          - concat: {inputs: [f1, f1, f1], output: feat}\n"
                 "  - model: {name: m1, inputs: {in: feat}, outputs: {out: score}}\n"
                 "  - sigmoid: {input: score, output: prob}\n"
                 "  - model: {name: m2, inputs: {in: prob}, outputs: {out: final}}\n"
                 "  - model: {name: m1, inputs: {in: final}, outputs: {out: final2}}\n"
                 "outputs: [prob, final2]\n");
    const char *names[] = {"1_bucketize", "2_route", "3_one_hot", "4_cast", "5_concat",
                           "6_model",     "7_sigmoid", "8_model", "9_model"};
    assert_int_equal(celer_pipeline_step_count(c->p), 9);
    for (int i = 0; i < 9; i++) assert_string_equal(celer_pipeline_step_name(c->p, i), names[i]);
    assert_int_equal(celer_pipeline_model_count(c->p), 2);
    assert_string_equal(celer_pipeline_model_name(c->p, 0), "m1");
    assert_string_equal(celer_pipeline_model_name(c->p, 1), "m2");

    set_in(c, "age", TEN(CELER_FLOAT, F32(20, 40), 2));
    const celer_pipeline_call *call = NULL;
    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_non_null(call);
    assert_string_equal(call->model, "m1");
    EXPECT_SHAPE(&call->inputs[0], 2, 3);
    EXPECT_F32N(&call->inputs[0], 0, 0, 1, 0, 0, 0, 1);
    celer_tensor out = TEN(CELER_FLOAT, F32(0, 2), 2);
    assert_int_equal(celer_pipeline_resume(c->r, STR("out"), &out, 1), CELER_OK);
    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_string_equal(call->model, "m2");
    EXPECT_F32N(&call->inputs[0], 1e-6, 0.5, (float)(1 / (1 + exp(-2.0))));
    celer_tensor out2 = TEN(CELER_INT64, I64(5, 6), 2);
    assert_int_equal(celer_pipeline_resume(c->r, STR("out"), &out2, 1), CELER_OK);
    assert_int_equal(celer_pipeline_run_steps(c->r, &call), CELER_OK);
    assert_string_equal(call->model, "m1");
    /* a missing output: the run stays waiting and can still be answered */
    celer_tensor out3 = TEN(CELER_INT64, I64(7, 8), 2);
    tu_expect_err(celer_pipeline_resume(c->r, STR("other"), &out3, 1), CELER_ERR_INVALID, "no output 'out'");
    assert_non_null(strstr(celer_error_message(), "step 9 (model)"));
    assert_int_equal(celer_pipeline_resume(c->r, STR("out"), &out3, 1), CELER_OK);
    const celer_tensor *o = run_ok(c);
    EXPECT_I64N(&o[1], 7, 8);
    const int64_t *ns = celer_pipeline_run_step_ns(c->r);
    for (int i = 0; i < 9; i++) assert_true(ns[i] >= 0);
    assert_int_equal(ns[3], 0); /* branch b not taken */
    assert_int_equal(ns[4], 0);
    ctx_close(c);
}

/* ---- errors and limits never crash ---- */

static void test_limits_and_empty(void **state) {
    (void)state;
    write_npy("items2.npy", CELER_FLOAT, 2, I64(3, 2), F32(1, 0, 0, 1, 1, 1));
    static const char *yaml = "inputs:\n"
                              "  - {name: x, dtype: FP32, shape: [4]}\n"
                              "  - {name: e, dtype: INT64, shape: [-1], default: []}\n"
                              "steps:\n"
                              "  - normalize: {input: x, mean: [1, 2, 3, 4], std: 2, output: n}\n"
                              "  - bucketize: {input: n, boundaries: [0], output: b}\n"
                              "  - one_hot: {input: b, depth: 2, output: oh}\n"
                              "  - concat: {inputs: [n, oh], output: f}\n"
                              "  - softmax: {input: f, output: p}\n"
                              "  - argmax: {input: p, output: am}\n"
                              "  - top_k: {input: p, k: 3, output: [ti, ts]}\n"
                              "  - threshold: {input: p, output: th}\n"
                              "  - cast: {input: am, dtype: FP32, output: amf}\n"
                              "  - concat: {inputs: [amf, amf], output: user}\n"
                              "  - recommend: {input: user, items: items2.npy, k: 2, exclude: e, output: [ri, rs]}\n"
                              "outputs: [p, am, ti, th, ri]\n";
    /* zero rows through every step */
    run_ctx *c = ctx_open(yaml);
    set_in(c, "x", TEN(CELER_FLOAT, F32(0), 0, 4));
    const celer_tensor *o = run_ok(c);
    EXPECT_SHAPE(&o[0], 0, 12);
    EXPECT_SHAPE(&o[1], 0);
    EXPECT_SHAPE(&o[2], 0, 3);
    EXPECT_SHAPE(&o[4], 0, 2);

    /* a request bigger than its arena's cap: CELER_ERR_LIMIT, no crash */
    enum { ROWS = 20000 };
    float *big = calloc(ROWS * 4, sizeof *big);
    celer_arena_free(&c->arena);
    celer_arena_init(&c->arena, 64 * 1024, 256 * 1024);
    assert_int_equal(celer_pipeline_run_init(c->p, &c->arena, &c->r), CELER_OK);
    set_in(c, "x", TEN(CELER_FLOAT, big, ROWS, 4));
    celer_status st = run_err(c);
    assert_int_equal(st, CELER_ERR_LIMIT);
    assert_non_null(strstr(celer_error_message(), "pipe.yaml"));
    /* the same with a cap that lets a few steps run first */
    for (size_t cap = 512 * 1024; cap <= 4u << 20; cap *= 2) {
        celer_arena_free(&c->arena);
        celer_arena_init(&c->arena, 64 * 1024, cap);
        assert_int_equal(celer_pipeline_run_init(c->p, &c->arena, &c->r), CELER_OK);
        set_in(c, "x", TEN(CELER_FLOAT, big, ROWS, 4));
        st = run_err(c);
        assert_true(st == CELER_OK || st == CELER_ERR_LIMIT || st == CELER_ERR_NOMEM);
    }
    free(big);
    ctx_close(c);
}

/* A step whose output is its input's name (the spec's default when `output` is left out: "replaces
 * it") must read the input as it was. (Regression: pl_in once pointed at the slot that pl_out then
 * overwrote, so such steps read their own uninitialised output; one_hot in place also indexed past
 * its output. Fixed by copying the step's inputs into pl_exec.ins before it runs.) */
static void test_in_place_output(void **state) {
    (void)state;
    run_ctx *c = ctx_open("inputs:\n"
                 "  - {name: x, dtype: FP32, shape: [3]}\n"
                 "  - {name: n, dtype: INT64}\n"
                 "steps:\n"
                 "  - scale: {input: x, factor: 2, offset: 1}\n"
                 "  - clip: {input: x, max: 6}\n"
                 "  - normalize: {input: x, mean: 1, std: 2}\n"
                 "  - cast: {input: n, dtype: FP32}\n"
                 "  - log1p: x\n"
                 "outputs: [x, n]\n");
    set_in(c, "x", TEN(CELER_FLOAT, F32(1, 2, 3, -1, 0, 10), 2, 3));
    set_in(c, "n", TEN(CELER_INT64, I64(7, -2), 2));
    const celer_tensor *o = run_ok(c);
    float want[6];
    const float x[6] = {1, 2, 3, -1, 0, 10};
    for (int i = 0; i < 6; i++) want[i] = (float)log1p((fminf(x[i] * 2 + 1, 6) - 1) / 2.0);
    EXPECT_SHAPE(&o[0], 2, 3);
    expect_f32(&o[0], want, 6, 1e-6);
    EXPECT_F32N(&o[1], 0, 7, -2);
    ctx_close(c);

    c = ctx_open("inputs: [{name: i, dtype: INT64}, {name: p, dtype: FP32, shape: [3]}]\n"
                 "steps:\n"
                 "  - top_k: {input: p, k: 2, output: [p, s]}\n"
                 "  - concat: {inputs: [i, p], output: i}\n"
                 "  - one_hot: {input: p, depth: 3}\n"
                 "outputs: [i, s, p]\n");
    set_in(c, "i", TEN(CELER_INT64, I64(5), 1));
    set_in(c, "p", TEN(CELER_FLOAT, F32(0.1f, 0.9f, 0.5f), 1, 3));
    o = run_ok(c);
    EXPECT_F32N(&o[0], 0, 5, 1, 2);
    EXPECT_F32N(&o[1], 0, 0.9f, 0.5f);
    EXPECT_SHAPE(&o[2], 1, 2, 3);
    EXPECT_F32N(&o[2], 0, 0, 1, 0, 0, 0, 1);
    ctx_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_normalize, cleanup),
        cmocka_unit_test_teardown(test_scale_clip_log1p_fill, cleanup),
        cmocka_unit_test_teardown(test_cast, cleanup),
        cmocka_unit_test_teardown(test_cast_unsigned_regression, cleanup),
        cmocka_unit_test_teardown(test_cast_truncation_range_regression, cleanup),
        cmocka_unit_test_teardown(test_bucketize_boundaries, cleanup),
        cmocka_unit_test_teardown(test_bucketize_sample, cleanup),
        cmocka_unit_test_teardown(test_lookup, cleanup),
        cmocka_unit_test_teardown(test_lookup_large_int_regression, cleanup),
        cmocka_unit_test_teardown(test_route_large_int_regression, cleanup),
        cmocka_unit_test_teardown(test_one_hot, cleanup),
        cmocka_unit_test_teardown(test_concat, cleanup),
        cmocka_unit_test_teardown(test_softmax_sigmoid, cleanup),
        cmocka_unit_test_teardown(test_argmax_threshold, cleanup),
        cmocka_unit_test_teardown(test_top_k, cleanup),
        cmocka_unit_test_teardown(test_top_k_long_label_regression, cleanup),
        cmocka_unit_test_teardown(test_recommend_step, cleanup),
        cmocka_unit_test_teardown(test_recommend_batch, cleanup),
        cmocka_unit_test_teardown(test_api_misuse_regression, cleanup),
        cmocka_unit_test_teardown(test_inputs, cleanup),
        cmocka_unit_test_teardown(test_model_call, cleanup),
        cmocka_unit_test_teardown(test_route_field, cleanup),
        cmocka_unit_test_teardown(test_route_parameter_nested, cleanup),
        cmocka_unit_test_teardown(test_bad_configs, cleanup),
        cmocka_unit_test_teardown(test_load_file, cleanup),
        cmocka_unit_test_teardown(test_paths_confined, cleanup),
        cmocka_unit_test_teardown(test_labels_metrics, cleanup),
        cmocka_unit_test_teardown(test_limits_and_empty, cleanup),
        cmocka_unit_test_teardown(test_in_place_output, cleanup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
