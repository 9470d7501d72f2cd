/* Allocation-failure torture of the request path (decode, encode, JSON, result cache), as curl's
 * torture tests do: each operation is run once with the hook counting to learn its N allocations
 * through celer_malloc/celer_calloc/celer_realloc (the arena's blocks included), then N more times
 * with allocation k = 1..N failing. Each run must answer CELER_ERR_NOMEM with a message, or CELER_OK
 * with exactly the result of the clean run (the failed allocation was optional: a cache that
 * cannot store an entry just misses later). Everything is freed after every run, so under ASan
 * (detect_leaks) a failure path that leaks makes the test fail at exit. Also: the hook itself
 * (only the n-th allocation fails, threads, CELER_FAIL_ALLOC_AT from the environment). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "server/cache.h"
#include "server/json.h"
#include "server/kserve.h"

/* A small block size makes the arena allocate often, so its growth is tortured too. */
#define ARENA_BLOCK 64

/* ---- fingerprints: a run's whole result as text, compared with the clean run's ---- */

typedef struct fp {
    char text[4096];
    size_t len;
} fp;

static void fp_add(fp *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fp_add(fp *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->text + f->len, sizeof f->text - f->len, fmt, ap);
    va_end(ap);
    if (n > 0) f->len = CELER_MIN(f->len + (size_t)n, sizeof f->text - 1);
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static void fp_tensor(fp *f, const celer_tensor *t) {
    char shape[128];
    int64_t numel = celer_shape_numel(&t->shape);
    uint64_t h = 0xcbf29ce484222325ull;
    if (t->dtype == CELER_STRING) {
        for (int64_t i = 0; i < numel; i++) {
            celer_str s = ((const celer_str *)t->data)[i];
            h = hash_bytes(&s.len, sizeof s.len, hash_bytes(s.data, s.len, h));
        }
    } else if (numel > 0) {
        h = hash_bytes(t->data, (size_t)numel * celer_dtype_size(t->dtype), h);
    }
    fp_add(f, "%s%s=%016llx;", celer_dtype_name(t->dtype), celer_shape_str(&t->shape, shape, sizeof shape),
           (unsigned long long)h);
}

static void fp_request(fp *f, const celer_kserve_request *r) {
    fp_add(f, "id=%s bdo=%d timeout=%lld obj=%d/%d;", r->id ? r->id : "-", r->binary_data_output, (long long)r->timeout_us,
           r->object_form, r->object_single);
    for (int i = 0; i < r->n_params; i++) fp_add(f, "param %s=%s;", r->param_keys[i], r->param_values[i]);
    for (int i = 0; i < r->n_outputs; i++) fp_add(f, "out %s%s;", r->outputs[i].name, r->outputs[i].binary ? " bin" : "");
    for (int i = 0; i < r->n_inputs; i++) {
        fp_add(f, "in %s ", r->inputs[i].name);
        fp_tensor(f, &r->inputs[i].tensor);
    }
}

static void fp_jbuf(fp *f, const celer_jbuf *b, size_t json_len) {
    fp_add(f, "len=%zu json=%zu hash=%016llx", b->len, json_len,
           (unsigned long long)hash_bytes(b->data, b->len, 0xcbf29ce484222325ull));
}

/* ---- the operations: each allocates, checks and frees everything itself ---- */

static const celer_kserve_tensor_spec SPEC[] = {
    {.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}},
    {.name = "y", .dtype = CELER_INT64, .rank = 1, .dims = {2}},
    {.name = "s", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
    {.name = "d", .dtype = CELER_DOUBLE, .rank = 1, .dims = {2}},
};

/* A number of more than 127 characters takes the parser's heap copy for strtod. */
#define LONG_NUMBER                                                                                \
    "1.00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" \
    "000000000000000000000000000000000000000000000000000000000001"

static char *json_body; /* built once in main: 70 strings make the parser's item stack grow */

static void build_json_body(void) {
    char strings[2048] = "";
    for (int i = 0; i < 70; i++) {
        size_t l = strlen(strings);
        snprintf(strings + l, sizeof strings - l, "%s\"s%d\\n\"", i ? "," : "", i);
    }
    const char *fmt =
        "{\"id\":\"req-7\",\"parameters\":{\"binary_data_output\":false,\"timeout\":2500,\"tier\":3,"
        "\"threshold\":" LONG_NUMBER ",\"tag\":\"a\\u00e9\"},"
        "\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"data\":[[1,2,3],[4.5,-0.25,1e-3]]},"
        "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[7,-9000000000]},"
        "{\"name\":\"s\",\"shape\":[70],\"datatype\":\"BYTES\",\"data\":[%s]},"
        "{\"name\":\"d\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[" LONG_NUMBER ",-2.5]}],"
        "\"outputs\":[{\"name\":\"z\",\"parameters\":{\"binary_data\":true}},{\"name\":\"w\"}]}";
    size_t cap = strlen(fmt) + strlen(strings) + 1;
    json_body = malloc(cap);
    assert_non_null(json_body);
    snprintf(json_body, cap, fmt, strings);
}

static celer_status op_decode_json(fp *f) {
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_kserve_request r;
    celer_status st = celer_kserve_decode_infer(json_body, strlen(json_body), SIZE_MAX, SPEC, 4, &arena, &r);
    if (!st) fp_request(f, &r);
    celer_arena_free(&arena);
    return st;
}

/* JSON header + binary tail; the body starts one byte into its buffer so fixed-size data is
 * misaligned and copied into the arena. */
static celer_status op_decode_binary(fp *f) {
    static const char json[] =
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":24}},"
        "{\"name\":\"s\",\"shape\":[3],\"datatype\":\"BYTES\",\"parameters\":{\"binary_data_size\":17}},"
        "{\"name\":\"y\",\"shape\":[2],\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":16}},"
        "{\"name\":\"d\",\"shape\":[2],\"datatype\":\"FP64\",\"data\":[0.5,1]}],"
        "\"parameters\":{\"binary_data_output\":true}}";
    static const float xs[6] = {1, 2, 3, 4, 5, 6};
    static const int64_t ys[2] = {11, -12};
    char buf[1024], *body = buf + 1;
    size_t jl = sizeof json - 1, len = jl;
    memcpy(body, json, jl);
    memcpy(body + len, xs, sizeof xs), len += sizeof xs;
    memcpy(body + len, "\x02\0\0\0ab\x00\0\0\0\x03\0\0\0c\0d", 4 + 2 + 4 + 4 + 3), len += 4 + 2 + 4 + 4 + 3;
    memcpy(body + len, ys, sizeof ys), len += sizeof ys;
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_kserve_request r;
    celer_status st = celer_kserve_decode_infer(body, len, jl, SPEC, 4, &arena, &r);
    if (!st) fp_request(f, &r);
    celer_arena_free(&arena);
    return st;
}

static celer_status op_decode_raw(fp *f) {
    static const celer_kserve_tensor_spec raw_spec[] = {{.name = "img", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}}};
    float v[7] = {0, 1, 2, 3, 4, 5, 6};
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_kserve_request r;
    /* one byte in: not aligned for float, so the data is copied */
    celer_status st = celer_kserve_decode_infer((const char *)v + 1, 24, 0, raw_spec, 1, &arena, &r);
    if (!st) fp_request(f, &r);
    celer_arena_free(&arena);
    return st;
}

static celer_status op_decode_predict(fp *f) {
    static const celer_kserve_tensor_spec one[] = {{.name = "x", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 3}}};
    static const celer_kserve_tensor_spec two[] = {{.name = "a", .dtype = CELER_INT64, .rank = 2, .dims = {-1, 2}},
                                                   {.name = "b", .dtype = CELER_STRING, .rank = 1, .dims = {-1}}};
    static const char rows[] = "{\"instances\": [[1,2,3],[4,5,6],[7,8," LONG_NUMBER "]]}";
    static const char objects[] = "{\"instances\": [{\"a\": [1,2], \"b\": \"p\"}, {\"b\": \"q\", \"a\": [3,4]}]}";
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_kserve_request r;
    celer_status st = celer_kserve_decode_predict(rows, sizeof rows - 1, one, 1, &arena, &r);
    if (!st) {
        fp_request(f, &r);
        st = celer_kserve_decode_predict(objects, sizeof objects - 1, two, 2, &arena, &r);
        if (!st) fp_request(f, &r);
    }
    celer_arena_free(&arena);
    return st;
}

/* Business objects: a field missing from one object takes the spec's default row. */
static celer_status op_decode_object(fp *f) {
    static const float v_default[2] = {9, 9};
    static const celer_tensor v_row = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {2}}, .data = (void *)v_default};
    static const celer_kserve_tensor_spec spec[] = {
        {.name = "age", .dtype = CELER_FLOAT, .rank = 1, .dims = {-1}},
        {.name = "id", .dtype = CELER_INT64, .rank = 1, .dims = {-1}},
        {.name = "country", .dtype = CELER_STRING, .rank = 1, .dims = {-1}},
        {.name = "v", .dtype = CELER_FLOAT, .rank = 2, .dims = {-1, 2}, .default_row = &v_row},
        {.name = "flag", .dtype = CELER_BOOL, .rank = 1, .dims = {-1}},
    };
    static const char body[] = "[{\"age\": 31, \"id\": 5, \"country\": \"de\", \"v\": [1, 2], \"flag\": true},"
                               " {\"age\": null, \"id\": 6, \"country\": \"fr\", \"flag\": false}]";
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_json *root;
    celer_kserve_request r;
    celer_status st = celer_json_parse(body, sizeof body - 1, &arena, &root);
    if (!st) st = celer_kserve_decode_object(root, spec, 5, &arena, &r);
    if (!st) fp_request(f, &r);
    celer_arena_free(&arena);
    return st;
}

/* Outputs for the encoders: enough data for the response buffer to grow several times. */
static float out_z[2 * 150];
static const int32_t out_w[4] = {1, -2, 3, -4};
static const celer_str out_s[3] = {{"a\"b", 3}, {"", 0}, {"caf\xc3\xa9", 5}};
static const celer_tensor OUTS[3] = {
    {.dtype = CELER_FLOAT, .shape = {.rank = 2, .dims = {2, 150}}, .data = out_z},
    {.dtype = CELER_INT32, .shape = {.rank = 2, .dims = {2, 2}}, .data = (void *)out_w},
    {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = (void *)out_s},
};
static const char *const OUT_NAMES[3] = {"z", "w", "s"};

static celer_status op_encode_infer(fp *f) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    size_t jl = 0;
    celer_kserve_request req = {.id = "r1"};
    celer_status st = celer_kserve_encode_infer(&req, "model", "1", OUT_NAMES, OUTS, 3, &b, &jl);
    if (!st) {
        fp_jbuf(f, &b, jl);
        /* again, reusing the buffer, with outputs selected and one binary */
        celer_kserve_output_request sel[2] = {{.name = "s", .binary = true}, {.name = "z", .binary = false}};
        req = (celer_kserve_request){.n_outputs = 2, .outputs = sel};
        st = celer_kserve_encode_infer(&req, "model", NULL, OUT_NAMES, OUTS, 3, &b, &jl);
        if (!st) fp_jbuf(f, &b, jl);
    }
    celer_jbuf_free(&b);
    return st;
}

static celer_status op_encode_predict(fp *f) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_status st = celer_kserve_encode_predict(OUT_NAMES, OUTS, 2, &b);
    if (!st) fp_jbuf(f, &b, 0);
    celer_jbuf_free(&b);
    return st;
}

static celer_status op_encode_object(fp *f) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_status st = celer_kserve_encode_object(false, OUT_NAMES, OUTS, 2, &b);
    if (!st) fp_jbuf(f, &b, 0);
    celer_jbuf_free(&b);
    return st;
}

/* Every kind of write, growing the buffer from nothing past 16 KiB. */
static celer_status op_jbuf(fp *f) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_jbuf_raw(&b, "[", 1);
    for (int i = 0; i < 400 && !b.status; i++) {
        celer_jbuf_str(&b, "caf\xc3\xa9 \"quoted\"\n");
        celer_jbuf_raw(&b, ",", 1);
        celer_jbuf_int(&b, -(int64_t)i * 1000003);
        celer_jbuf_raw(&b, ",", 1);
        celer_jbuf_uint(&b, (uint64_t)i << 40);
        celer_jbuf_raw(&b, ",", 1);
        celer_jbuf_double(&b, i / 7.0);
        celer_jbuf_raw(&b, ",", 1);
    }
    celer_jbuf_tensor_data(&b, &OUTS[0]);
    celer_jbuf_raw(&b, "]", 1);
    celer_status st = b.status;
    if (!st) fp_jbuf(f, &b, 0);
    celer_jbuf_free(&b);
    return st;
}

static celer_status op_json_parse(fp *f) {
    static const char doc[] = "{\"a\":[true,false,null,\"x\",{\"b\":[[1,2],[3,4]],\"c\":\"\\u00e9\\n\"}],\"n\":" LONG_NUMBER
                              ",\"m\":[{},[],[[]],\"yy\"]}";
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_json *root;
    celer_status st = celer_json_parse(doc, sizeof doc - 1, &arena, &root);
    if (!st) {
        const celer_json *a = celer_json_get(root, "a"), *n = celer_json_get(root, "n");
        fp_add(f, "members=%d a=%d n=%.17g c=%s", root->n, a->n, n->number,
               celer_json_get(&a->items[4], "c")->string);
    }
    celer_arena_free(&arena);
    return st;
}

static celer_status op_cache_pack(fp *f) {
    static float big[1000];
    static const int64_t ids[4] = {7, 8, 9, 10};
    static const celer_str labels[2] = {{"cat", 3}, {"", 0}};
    const celer_tensor t[3] = {{CELER_FLOAT, {1, {1000}}, big},
                               {CELER_INT64, {2, {2, 2}}, (void *)ids},
                               {CELER_STRING, {1, {2}}, (void *)labels}};
    void *buf;
    size_t len;
    celer_status st = celer_cache_pack(t, 3, 1 << 20, &buf, &len);
    if (st) return st;
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_tensor *out;
    int n;
    st = celer_cache_unpack(buf, len, &arena, &out, &n);
    if (!st) {
        fp_add(f, "len=%zu n=%d;", len, n);
        for (int i = 0; i < n; i++) fp_tensor(f, &out[i]);
    }
    celer_arena_free(&arena);
    free(buf);
    return st;
}

/* The in-process tier: a failed put or a failed copy on get is a miss, never a wrong value. So an
 * OK run checks every hit itself and allows at most one miss (one allocation fails). */
static celer_status op_cache(fp *f) {
    enum { N = 40 };
    celer_cache *c;
    CELER_TRY(celer_cache_init(1 << 20, &c));
    celer_cache_key keys[N];
    char values[N][40];
    for (int i = 0; i < N; i++) {
        keys[i] = (celer_cache_key){0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), (uint64_t)i * 31 + 7};
        snprintf(values[i], sizeof values[i], "value %d of the cache test", i);
        celer_cache_put(c, keys[i], values[i], strlen(values[i]) + 1, INT64_MAX);
    }
    celer_arena arena;
    celer_arena_init(&arena, ARENA_BLOCK, 0);
    celer_status st = CELER_OK;
    int misses = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        size_t len;
        if (!celer_cache_get(c, keys[i], 0, &arena, &v, &len)) {
            misses++;
            continue;
        }
        if (len != strlen(values[i]) + 1 || memcmp(v, values[i], len) != 0)
            st = celer_errorf(CELER_ERR_INTERNAL, "cache entry %d came back wrong", i);
    }
    if (!st && misses > 1) st = celer_errorf(CELER_ERR_INTERNAL, "%d misses after one failed allocation", misses);
    /* coalescing: without memory for the in-flight record the second request computes too */
    celer_cache_waiter w1 = {0}, w2 = {0};
    bool lead1 = celer_cache_join(c, keys[0], &w1), lead2 = celer_cache_join(c, keys[0], &w2);
    celer_cache_waiter *list = celer_cache_finish(c, keys[0]);
    if (!st && (!lead1 || (!lead2 && list != &w2) || (lead2 && list != NULL)))
        st = celer_errorf(CELER_ERR_INTERNAL, "coalescing: leaders %d/%d, waiters %p", lead1, lead2, (void *)list);
    celer_cache_stats stats;
    celer_cache_get_stats(c, &stats);
    if (!st) fp_add(f, "checked");
    celer_arena_free(&arena);
    celer_cache_free(c);
    return st;
}

/* ---- the torture loop ---- */

typedef struct op {
    const char *name;
    celer_status (*run)(fp *f);
} op;

/* Runs one operation through every failure point; returns how many answered wrongly (each is
 * printed), so that one run of the test lists them all. */
static int torture(const op *o) {
    fp ref = {0};
    celer_alloc_fail_at(LONG_MAX);
    celer_status st = o->run(&ref);
    long n = celer_alloc_count();
    celer_alloc_fail_at(0);
    if (st) fail_msg("%s: the clean run failed: %s", o->name, celer_error_message());
    if (n == 0) fail_msg("%s: no allocation went through the hook", o->name);
    long nomem = 0, optional = 0;
    int bad = 0;
    for (long k = 1; k <= n; k++) {
        fp got = {0};
        celer_errorf(CELER_OK, "%s", "");
        celer_alloc_fail_at(k);
        st = o->run(&got);
        long made = celer_alloc_count();
        celer_alloc_fail_at(0);
        if (made < k) {
            print_error("%s: allocation %ld of %ld was never made (%ld this time)\n", o->name, k, n, made);
            bad++;
        } else if (st == CELER_OK && strcmp(got.text, ref.text) != 0) {
            print_error("%s: allocation %ld of %ld failed, the answer is OK but wrong:\n got %s\nwant %s\n", o->name, k, n,
                        got.text, ref.text);
            bad++;
        } else if (st == CELER_OK) {
            optional++;
        } else if (st != CELER_ERR_NOMEM) {
            print_error("%s: allocation %ld of %ld failed and the answer is '%s' (%s), not out of memory\n", o->name, k, n,
                        celer_status_name(st), celer_error_message());
            bad++;
        } else if (!celer_error_message()[0]) {
            print_error("%s: allocation %ld of %ld failed without a message\n", o->name, k, n);
            bad++;
        } else {
            nomem++;
        }
    }
    print_message("  %-15s %3ld allocations: %3ld failures answered out of memory, %ld optional (same result), "
                  "%d wrong\n", o->name, n, nomem, optional, bad);
    return bad;
}

static const op OPS[] = {
    {"decode_json", op_decode_json},     {"decode_binary", op_decode_binary}, {"decode_raw", op_decode_raw},
    {"decode_predict", op_decode_predict}, {"decode_object", op_decode_object}, {"encode_infer", op_encode_infer},
    {"encode_predict", op_encode_predict}, {"encode_object", op_encode_object}, {"jbuf", op_jbuf},
    {"json_parse", op_json_parse},       {"cache_pack", op_cache_pack},       {"cache", op_cache},
};

static void test_torture(void **state) {
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < CELER_ARRAY_LEN(OPS); i++) bad += torture(&OPS[i]);
    if (bad) fail_msg("%d failure points answered wrongly (listed above)", bad);
}

/* ---- the hook itself ---- */

static void test_fail_nth_only(void **state) {
    (void)state;
    celer_alloc_fail_at(3);
    void *p[6];
    for (int i = 0; i < 6; i++) p[i] = i % 2 ? celer_calloc(2, 8) : celer_malloc(16);
    assert_int_equal(celer_alloc_count(), 6);
    for (int i = 0; i < 6; i++) {
        if (i == 2) assert_null(p[i]);
        else assert_non_null(p[i]);
        free(p[i]);
    }
    /* a failed realloc keeps the old block */
    char *q = celer_malloc(4);
    assert_non_null(q);
    memcpy(q, "abc", 4);
    celer_alloc_fail_at(1);
    assert_null(celer_realloc(q, 1 << 20));
    assert_string_equal(q, "abc");
    q = celer_realloc(q, 1 << 20); /* the next one succeeds */
    assert_non_null(q);
    assert_string_equal(q, "abc");
    free(q);
    /* off: nothing fails, nothing is counted */
    celer_alloc_fail_at(0);
    long before = celer_alloc_count();
    free(celer_malloc(8));
    assert_int_equal(celer_alloc_count(), before);
    /* the arena reports it */
    celer_arena a;
    celer_arena_init(&a, 64, 0);
    celer_alloc_fail_at(1);
    assert_null(celer_arena_alloc(&a, 10));
    assert_non_null(strstr(celer_error_message(), "out of memory"));
    celer_alloc_fail_at(0);
    assert_non_null(celer_arena_alloc(&a, 10));
    celer_arena_free(&a);
}

enum { THREADS = 4, PER_THREAD = 2000 };

static void *alloc_many(void *arg) {
    long *failed = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = celer_malloc(32);
        if (!p) ++*failed;
        free(p);
    }
    return NULL;
}

/* With threads allocating at once, every allocation is counted and exactly one fails. */
static void test_threads(void **state) {
    (void)state;
    celer_alloc_fail_at(THREADS * PER_THREAD / 2);
    pthread_t th[THREADS];
    long failed[THREADS] = {0};
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, alloc_many, &failed[i]), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    long total = 0;
    for (int i = 0; i < THREADS; i++) total += failed[i];
    assert_int_equal(celer_alloc_count(), THREADS * PER_THREAD);
    assert_int_equal(total, 1);
    celer_alloc_fail_at(0);
}

/* CELER_FAIL_ALLOC_AT arms the hook before main: this program run again with it set (see main)
 * fails its 2nd allocation. */
static void test_environment(void **state) {
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("CELER_FAIL_ALLOC_AT", "2", 1);
        execl("/proc/self/exe", "test_alloc_fail", "--env-child", (char *)NULL);
        _exit(99);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static int env_child(void) {
    void *a = celer_malloc(8), *b = celer_malloc(8), *c = celer_malloc(8);
    int ok = a && !b && c && celer_alloc_count() == 3;
    free(a);
    free(c);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--env-child") == 0) return env_child();
    for (size_t i = 0; i < CELER_ARRAY_LEN(out_z); i++) out_z[i] = (float)i / 3.0f - 20.0f;
    build_json_body();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_nth_only),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_torture),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(json_body);
    return rc;
}
