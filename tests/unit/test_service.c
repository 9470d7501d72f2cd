/* The request service in process, without sockets or a codec: requests are built as a transport
 * would decode them, started on the service, and their answers collected from the callbacks.
 * Covers a model call, the result cache (miss, hit, coalescing of identical requests), a pipeline
 * with a model call, and each error kind with its HTTP status and gRPC code. The repository is a
 * temporary folder made from the example repository's `mlp` model. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/service.h"
#include "opcase.h"
#include "testutil.h"

/* ---- the repository ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

/* Model folder `name` with the example mlp (FP32 [-1,16] -> [-1,8]) and `extra` config lines. */
static void add_mlp(const char *repo, const char *name, const char *extra) {
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/%s", repo, name);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%s/1", repo, name);
    assert_int_equal(mkdir(path, 0755), 0);
    char from[512];
    const char *ex = getenv("CELER_EXAMPLES");
    snprintf(from, sizeof from, "%s/repository/mlp/1/model.onnx", ex ? ex : "examples");
    snprintf(path, sizeof path, "%s/%s/1/model.onnx", repo, name);
    copy_file(from, path);
    snprintf(text, sizeof text,
             "name: \"%s\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 64\n"
             "input [ { name: \"features\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n"
             "output [ { name: \"scores\" data_type: TYPE_FP32 dims: [ 8 ] } ]\n%s",
             name, extra);
    snprintf(path, sizeof path, "%s/%s/config.pbtxt", repo, name);
    write_file(path, text);
}

static void add_pipeline(const char *repo, const char *name, const char *yaml) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", repo, name);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%s/pipeline.yaml", repo, name);
    write_file(path, yaml);
}

typedef struct fixture {
    char dir[64];
    celer_server_options opts;
    celer_sched *sched;
    celer_metrics *metrics;
    celer_cache *cache;
    celer_registry *registry;
    celer_service *svc;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/celer-service.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    add_mlp(f->dir, "mlp", "");
    /* results cached; a batch waits up to 300 ms for company, so an identical request sent right
     * after the first one finds it still computing (coalesced) */
    add_mlp(f->dir, "cached", "response_cache { enable: true }\n"
                              "dynamic_batching { preferred_batch_size: [ 64 ] max_queue_delay_microseconds: 300000 }\n");
    /* one place in the queue */
    add_mlp(f->dir, "narrow", "dynamic_batching { max_queue_delay_microseconds: 300000 "
                              "default_queue_policy { max_queue_size: 1 } }\n");
    add_pipeline(f->dir, "piped",
                 "inputs:\n  - {name: features, dtype: FP32, shape: [16]}\noutputs:\n  - scores\nsteps:\n"
                 "  - scale: {input: features, factor: 2.0}\n"
                 "  - model: {name: mlp, inputs: {features: features}, outputs: {scores: scores}}\n");
    add_pipeline(f->dir, "orphan",
                 "inputs:\n  - {name: features, dtype: FP32, shape: [16]}\noutputs:\n  - scores\nsteps:\n"
                 "  - model: {name: victim, inputs: {features: features}, outputs: {scores: scores}}\n");
    add_mlp(f->dir, "victim", ""); /* unloaded by a test: its pipeline stays */
    assert_int_equal(celer_server_parse_args(2, (char *[]){"--model-repository", f->dir, NULL}, &f->opts), CELER_OK);
    f->opts.workers = 2;
    f->opts.threads = 1;
    f->opts.quiet = 1;
    assert_int_equal(celer_metrics_init(&f->metrics), CELER_OK);
    assert_int_equal(celer_cache_init(1 << 20, &f->cache), CELER_OK);
    assert_int_equal(celer_sched_init(2, &f->sched), CELER_OK);
    assert_int_equal(celer_registry_init(&f->opts, f->sched, f->metrics, &f->registry), CELER_OK);
    celer_registry_load_all(f->registry);
    assert_int_equal(celer_service_init(&f->opts, f->registry, f->metrics, f->cache, NULL, &f->svc), CELER_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    celer_service_free(f->svc);
    celer_registry_free(f->registry);
    celer_sched_free(f->sched);
    celer_metrics_free(f->metrics);
    celer_cache_free(f->cache);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- a transport of our own ---- */

typedef struct answer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool suspended, done, resumed;
    pthread_t done_thread;
    celer_status status;
    char message[512];
    celer_service_cache cache;
    int n_outputs;
    float scores[8];
    /* the request, as a transport keeps it until the answer */
    float features[16];
    celer_kserve_input input;
    celer_kserve_output_request output;
    celer_kserve_request req;
    int64_t deadline_ns; /* the transport's */
    uint64_t salt;
    celer_service_protocol protocol; /* HTTP unless a test says */
} answer;

static void on_suspend(void *user) {
    answer *a = user;
    pthread_mutex_lock(&a->lock);
    a->suspended = true;
    pthread_mutex_unlock(&a->lock);
}

static celer_status on_done(void *user, const celer_service_result *r) {
    answer *a = user;
    pthread_mutex_lock(&a->lock);
    assert_false(a->done); /* exactly once */
    a->done = true;
    a->done_thread = pthread_self();
    a->status = r->status;
    snprintf(a->message, sizeof a->message, "%s", r->message);
    a->cache = r->cache;
    a->n_outputs = r->n_outputs;
    if (!r->status) {
        assert_int_equal(r->outputs[0].dtype, CELER_FLOAT);
        assert_int_equal(celer_shape_numel(&r->outputs[0].shape), 8);
        memcpy(a->scores, r->outputs[0].data, sizeof a->scores);
    }
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    return CELER_OK;
}

static void on_resume(void *user) {
    answer *a = user;
    pthread_mutex_lock(&a->lock);
    assert_true(a->done);
    a->resumed = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static const celer_service_callbacks callbacks = {on_suspend, on_done, on_resume};

static void answer_init(answer *a, float seed) {
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    for (int i = 0; i < 16; i++) a->features[i] = seed + (float)i * 0.125f;
    a->input = (celer_kserve_input){
        .name = "features", .tensor = {.dtype = CELER_FLOAT, .shape = {.rank = 2, .dims = {1, 16}}, .data = a->features}};
    a->req = (celer_kserve_request){.n_inputs = 1, .inputs = &a->input};
}

/* Waits (at most 20 s) for the answer and its resume when it was suspended. */
static void answer_wait(answer *a) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&a->lock);
    while ((!a->done || (a->suspended && !a->resumed)) && !pthread_cond_timedwait(&a->cond, &a->lock, &until)) {
    }
    assert_true(a->done);
    assert_true(!a->suspended || a->resumed);
    pthread_mutex_unlock(&a->lock);
}

/* Begins and starts a call of `model` with `a`'s request; returns the call (end it). */
static celer_service_call *start(fixture *f, const char *model, answer *a) {
    celer_status st;
    char msg[256];
    celer_service_call *c = celer_service_begin(f->svc, a->protocol, model, NULL, 1, &st, msg, sizeof msg);
    assert_non_null(c);
    celer_service_request r = {.kreq = &a->req, .request_id = "test", .deadline_ns = a->deadline_ns,
                               .cache_salt = a->salt};
    celer_service_start(c, &r, &callbacks, a);
    return c;
}

static unsigned long long stat_of(fixture *f, const char *model, const char *field) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    assert_int_equal(celer_service_stats_json(f->svc, model, NULL, &b), CELER_OK);
    celer_jbuf_raw(&b, "", 1);
    const char *p = strstr(b.data, field);
    assert_non_null(p);
    unsigned long long v = strtoull(p + strlen(field), NULL, 10);
    celer_jbuf_free(&b);
    return v;
}

/* ---- tests ---- */

/* A call its transport cancels while it waits in the queue (narrow batches wait up to 300 ms for
 * company) is answered CELER_ERR_CANCELLED without running: no inference counted, a failure. */
static void test_cancel(void **state) {
    fixture *f = *state;
    answer a;
    answer_init(&a, 1.0f);
    celer_service_call *c = start(f, "narrow", &a);
    celer_service_cancel(c);
    answer_wait(&a);
    assert_int_equal(a.status, CELER_ERR_CANCELLED);
    assert_non_null(strstr(a.message, "cancelled"));
    celer_service_end(c);
    assert_int_equal(stat_of(f, "narrow", "\"inference_count\":"), 0);
    assert_int_equal(stat_of(f, "narrow", "\"fail\":{\"count\":"), 1);
    /* the next call runs */
    answer_init(&a, 2.0f);
    c = start(f, "narrow", &a);
    answer_wait(&a);
    assert_int_equal(a.status, CELER_OK);
    celer_service_end(c);
}

/* A model call: answered on a worker after a suspend, then resumed; counted as a success. */
static void test_model_call(void **state) {
    fixture *f = *state;
    answer a;
    answer_init(&a, 0.5f);
    celer_service_call *c = start(f, "mlp", &a);
    answer_wait(&a);
    assert_int_equal(a.status, CELER_OK);
    assert_true(a.suspended);
    assert_false(pthread_equal(a.done_thread, pthread_self())); /* computed on a worker */
    assert_int_equal(a.cache, CELER_SERVICE_CACHE_BYPASS);
    assert_int_equal(a.n_outputs, 1);
    const served_version *v = celer_service_version(c);
    assert_string_equal(v->output_names[0], "scores");
    celer_service_end(c);
    assert_int_equal(stat_of(f, "mlp", "\"inference_count\":"), 1);

    /* the same through a pipeline that scales its input and calls the model: twice the input */
    answer b, p;
    answer_init(&b, 0);
    answer_init(&p, 0.5f);
    for (int i = 0; i < 16; i++) b.features[i] = 2 * p.features[i];
    c = start(f, "mlp", &b);
    answer_wait(&b);
    celer_service_end(c);
    c = start(f, "piped", &p);
    answer_wait(&p);
    assert_int_equal(p.status, CELER_OK);
    assert_true(p.suspended);
    for (int i = 0; i < 8; i++) assert_true(p.scores[i] == b.scores[i]);
    celer_service_end(c);
    assert_int_equal(stat_of(f, "piped", "\"inference_count\":"), 1);
    assert_int_equal(stat_of(f, "mlp", "\"inference_count\":"), 3); /* the pipeline's call counts for the model */
}

/* The result cache: a miss computes; an identical request while it computes joins it (coalesced);
 * an identical request afterwards is a hit answered at once on the calling thread, without a
 * suspend; a different input misses. */
static void test_cache(void **state) {
    fixture *f = *state;
    answer a, b, h, d;
    answer_init(&a, 0.25f);
    answer_init(&b, 0.25f);
    answer_init(&h, 0.25f);
    answer_init(&d, 0.75f);
    celer_service_call *ca = start(f, "cached", &a);
    celer_service_call *cb = start(f, "cached", &b); /* a waits 300 ms for a batch: b finds it computing */
    answer_wait(&a);
    answer_wait(&b);
    assert_int_equal(a.status, CELER_OK);
    assert_int_equal(b.status, CELER_OK);
    assert_int_equal(a.cache, CELER_SERVICE_CACHE_MISS);
    assert_int_equal(b.cache, CELER_SERVICE_CACHE_HIT); /* answered with a's result */
    assert_memory_equal(a.scores, b.scores, sizeof a.scores);
    celer_cache_stats cs;
    celer_cache_get_stats(f->cache, &cs);
    assert_int_equal(cs.coalesced, 1);
    celer_service_end(ca);
    celer_service_end(cb);

    celer_service_call *ch = start(f, "cached", &h);
    assert_true(h.done); /* during start */
    assert_false(h.suspended);
    assert_int_equal(h.cache, CELER_SERVICE_CACHE_HIT);
    assert_memory_equal(a.scores, h.scores, sizeof a.scores);
    celer_service_end(ch);

    celer_service_call *cd = start(f, "cached", &d);
    answer_wait(&d);
    assert_int_equal(d.cache, CELER_SERVICE_CACHE_MISS);
    assert_memory_not_equal(a.scores, d.scores, sizeof a.scores);
    celer_service_end(cd);
    /* as Triton counts: four successes, of which two hits (h, and b coalesced on a) and two runs */
    assert_int_equal(stat_of(f, "cached", "\"success\":{\"count\":"), 4);
    assert_int_equal(stat_of(f, "cached", "\"inference_count\":"), 2);
    assert_int_equal(stat_of(f, "cached", "\"cache_hit\":{\"count\":"), 2);
    assert_int_equal(stat_of(f, "cached", "\"cache_miss\":{\"count\":"), 2);
    assert_int_equal(stat_of(f, "cached", "\"compute_infer\":{\"count\":"), 2);

    /* another cache salt (another tenant): the same request is a miss, then a hit of its own */
    for (int round = 0; round < 2; round++) {
        answer s;
        answer_init(&s, 0.25f);
        s.salt = 42;
        celer_service_call *cs = start(f, "cached", &s);
        answer_wait(&s);
        assert_int_equal(s.cache, round ? CELER_SERVICE_CACHE_HIT : CELER_SERVICE_CACHE_MISS);
        assert_memory_equal(a.scores, s.scores, sizeof a.scores);
        celer_service_end(cs);
    }
}

/* The response cache: a transport's encoded answer kept under the raw request bytes. */
static void test_response_cache(void **state) {
    fixture *f = *state;
    const char *parts[] = {"test", "infer"};
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    celer_status st;
    char msg[256];
    celer_service_call *c = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "cached", NULL, 1, &st, msg, sizeof msg);
    assert_false(celer_service_find_response(c, parts, 2, "body", 4, &out));
    celer_service_keep_response(c, "answer", 6);
    celer_service_end(c);
    c = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "cached", NULL, 1, &st, msg, sizeof msg);
    assert_true(celer_service_find_response(c, parts, 2, "body", 4, &out));
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "answer", 6);
    celer_service_end(c);
    out.len = 0;
    c = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "cached", NULL, 1, &st, msg, sizeof msg);
    assert_false(celer_service_find_response(c, parts, 2, "body2", 5, &out)); /* other bytes */
    celer_service_end(c);
    /* a version that does not cache */
    c = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "mlp", NULL, 1, &st, msg, sizeof msg);
    assert_false(celer_service_find_response(c, parts, 2, "body", 4, &out));
    celer_service_end(c);
    celer_jbuf_free(&out);
}

/* Starts `a` on `model` and expects the failure `want` (its message containing `substr`), with
 * the HTTP status and gRPC code of the status table. */
static void expect_failure(fixture *f, const char *model, answer *a, celer_status want, const char *substr, int http,
                           int grpc) {
    celer_service_call *c = start(f, model, a);
    answer_wait(a);
    if (a->status != want || !strstr(a->message, substr))
        fail_msg("%s: got %s '%s', want %s '%s'", model, celer_status_name(a->status), a->message,
                 celer_status_name(want), substr);
    assert_int_equal(celer_status_http(a->status), http);
    assert_int_equal(celer_status_grpc(a->status), grpc);
    celer_service_end(c);
}

/* The repository API's parameters, as the service checks them for either transport: Triton's
 * refusal outside the modes that load by API, then each parameter by name and type, the files'
 * paths and bytes; a valid load with a config goes through the action pool and answers. */
typedef struct repo_answer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    celer_status status;
    char message[512];
} repo_answer;

static void repo_done(void *user, celer_status st, const char *message) {
    repo_answer *a = user;
    pthread_mutex_lock(&a->lock);
    a->status = st;
    snprintf(a->message, sizeof a->message, "%s", message);
    a->done = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
}

static void test_repo_params(void **state) {
    fixture *f = *state;
    repo_answer a = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    celer_repo_param none[1];
    f->opts.model_control_mode = "none";
    tu_expect_err(celer_service_repo_action(f->svc, "mlp", false, none, 0, repo_done, &a), CELER_ERR_UNAVAILABLE,
                  "explicit model load / unload is not allowed if polling is enabled");
    f->opts.model_control_mode = "poll";
    tu_expect_err(celer_service_repo_action(f->svc, "mlp", true, none, 0, repo_done, &a), CELER_ERR_UNAVAILABLE,
                  "explicit model load / unload");
    f->opts.model_control_mode = "";
    static const struct {
        bool unload;
        const char *model;
        celer_repo_param p[2];
        int n;
        celer_status want;
        const char *words;
    } bad[] = {
        {false, "", {{0}}, 0, CELER_ERR_INVALID, "Model name cannot be empty"},
        {false, "..", {{0}}, 0, CELER_ERR_INVALID, "must not contain path traversal characters"},
        {false, "a/b", {{0}}, 0, CELER_ERR_INVALID, "must not contain path traversal characters"},
        {false, "mlp", {{.key = "cfg", .kind = CELER_REPO_STRING, .bytes = "{}", .len = 2}}, 1, CELER_ERR_INVALID,
         "Unrecognized load parameter 'cfg' with type 'STRING'"},
        {false, "mlp", {{.key = "config", .kind = CELER_REPO_BYTES, .bytes = "{}", .len = 2}}, 1, CELER_ERR_INVALID,
         "Config parameter 'config' must have string type"},
        {false, "mlp", {{.key = "config", .kind = CELER_REPO_STRING, .bytes = "{\"max_batch_size\": true}", .len = 24}},
         1, CELER_ERR_INVALID, "Invalid config override: max_batch_size"},
        {false, "mlp", {{.key = "file:1/model.onnx", .kind = CELER_REPO_BYTES, .bytes = "x", .len = 1}}, 1,
         CELER_ERR_INVALID, "Load parameter 'config' must be specified for model file override"},
        {false, "mlp", {{.key = "file:1/model.onnx", .kind = CELER_REPO_STRING, .bytes = "x", .len = 1}}, 1,
         CELER_ERR_INVALID, "File parameter 'file:1/model.onnx' must have bytes type"},
        {false, "mlp", {{.key = "file:../x", .kind = CELER_REPO_BYTES, .bytes = "x", .len = 1}}, 1, CELER_ERR_INVALID,
         "must stay within model directory"},
        {true, "mlp", {{.key = "unload_dependents", .kind = CELER_REPO_BOOL, .boolean = true}}, 1, CELER_ERR_INVALID,
         "unload_dependents"},
        {true, "mlp", {{.key = "config", .kind = CELER_REPO_STRING, .bytes = "{}", .len = 2}}, 1, CELER_ERR_INVALID,
         "unload parameter 'config' is not supported"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = celer_service_repo_action(f->svc, bad[i].model, bad[i].unload, bad[i].p, bad[i].n, repo_done, &a);
        if (st != bad[i].want || !strstr(celer_error_message(), bad[i].words))
            fail_msg("case %zu: %s '%s'", i, celer_status_name(st), celer_error_message());
    }
    /* files past --max-body-bytes, counted before anything is written */
    static char blob[600000];
    celer_repo_param big[2] = {{.key = "config", .kind = CELER_REPO_STRING, .bytes = "{}", .len = 2},
                               {.key = "file:1/model.onnx", .kind = CELER_REPO_BYTES, .bytes = blob, .len = sizeof blob}};
    long long cap = f->opts.max_body_bytes;
    f->opts.max_body_bytes = 500000;
    tu_expect_err(celer_service_repo_action(f->svc, "mlp", false, big, 2, repo_done, &a), CELER_ERR_LIMIT,
                  "more than 500000 bytes (--max-body-bytes)");
    f->opts.max_body_bytes = cap;
    assert_false(a.done); /* no refusal called done */
    /* a config that applies: answered by the pool, and the model follows it */
    const char *cfg = "{\"max_batch_size\": 4, \"input\": [{\"name\": \"features\", \"data_type\": \"TYPE_FP32\", "
                      "\"dims\": [16]}]}";
    celer_repo_param ok = {.key = "config", .kind = CELER_REPO_STRING, .bytes = cfg, .len = strlen(cfg)};
    assert_int_equal(celer_service_repo_action(f->svc, "mlp", false, &ok, 1, repo_done, &a), CELER_OK);
    pthread_mutex_lock(&a.lock);
    while (!a.done) pthread_cond_wait(&a.cond, &a.lock);
    pthread_mutex_unlock(&a.lock);
    assert_int_equal(a.status, CELER_OK);
    char msg[256];
    celer_status code;
    served_version *v = celer_registry_acquire(f->registry, "mlp", NULL, &code, msg, sizeof msg);
    assert_non_null(v);
    assert_int_equal(v->owner->config.max_batch_size, 4);
    celer_registry_release(v);
}

static void test_errors(void **state) {
    fixture *f = *state;
    celer_status st;
    char msg[256];
    /* unknown model, unknown version: before any body is read */
    assert_null(celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "nope", NULL, 1, &st, msg, sizeof msg));
    assert_int_equal(st, CELER_ERR_NOT_FOUND);
    assert_int_equal(celer_status_http(st), 404);
    assert_int_equal(celer_status_grpc(st), 5);
    assert_string_equal(msg, "Request for unknown model: 'nope' is not found"); /* Triton's words */
    assert_null(celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "mlp", "7", 1, &st, msg, sizeof msg));
    assert_int_equal(st, CELER_ERR_NOT_FOUND);
    assert_ptr_equal(strstr(msg, "Request for unknown model: 'mlp' version 7 is not found"), msg);

    /* a full queue: the second place is refused at begin, and counted as a failure */
    unsigned long long failed = stat_of(f, "narrow", "\"fail\":{\"count\":");
    celer_service_call *held =
        celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "narrow", NULL, 1, &st, msg, sizeof msg);
    assert_non_null(held);
    assert_null(celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "narrow", NULL, 1, &st, msg, sizeof msg));
    assert_int_equal(st, CELER_ERR_UNAVAILABLE);
    assert_int_equal(celer_status_http(st), 503);
    assert_true(celer_status_retryable(st));
    assert_non_null(strstr(msg, "queue of model 'narrow' is full"));
    assert_int_equal(stat_of(f, "narrow", "\"fail\":{\"count\":"), failed + 1);
    celer_service_end(held); /* never started: its place comes back */
    held = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "narrow", NULL, 1, &st, msg, sizeof msg);
    assert_non_null(held);
    celer_service_end(held);

    /* a request the transport could not decode */
    held = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "mlp", NULL, 1, &st, msg, sizeof msg);
    celer_service_reject(held);
    celer_service_end(held);
    assert_int_equal(stat_of(f, "mlp", "\"fail\":{\"count\":"), 1);

    answer a;
    /* a missing input */
    answer_init(&a, 0);
    a.input.name = "other";
    expect_failure(f, "mlp", &a, CELER_ERR_INVALID, "missing input 'features'", 400, 3);
    assert_false(a.suspended); /* refused on the calling thread */
    /* an unknown output */
    answer_init(&a, 0);
    a.output.name = "nothing";
    a.req.outputs = &a.output;
    a.req.n_outputs = 1;
    expect_failure(f, "mlp", &a, CELER_ERR_INVALID, "unknown output 'nothing'", 400, 3);
    /* a deadline that passes while the request waits for its batch */
    answer_init(&a, 0);
    a.req.timeout_us = 1000;
    expect_failure(f, "narrow", &a, CELER_ERR_TIMEOUT, "", 503, 4);
    /* the transport's own deadline (gRPC's grpc-timeout) applies the same way */
    answer_init(&a, 0);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    a.deadline_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + 1000000;
    expect_failure(f, "narrow", &a, CELER_ERR_TIMEOUT, "", 503, 4);
    /* a pipeline whose model is not served: the service is unavailable, the request is fine */
    assert_int_equal(celer_registry_unload(f->registry, "victim"), CELER_OK);
    answer_init(&a, 0);
    expect_failure(f, "orphan", &a, CELER_ERR_UNAVAILABLE, "victim", 503, 14);
    /* a pipeline whose input is missing: refused before it runs */
    answer_init(&a, 0);
    a.req.n_inputs = 0;
    expect_failure(f, "piped", &a, CELER_ERR_INVALID, "features", 400, 3);

    /* statistics: an unknown model or version is 404, a known version is one entry */
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    tu_expect_err(celer_service_stats_json(f->svc, "nope", NULL, &b), CELER_ERR_NOT_FOUND,
                  "requested model 'nope' is not available"); /* Triton's words for statistics */
    tu_expect_err(celer_service_stats_json(f->svc, "mlp", "2", &b), CELER_ERR_NOT_FOUND,
                  "requested model version is not available for model 'mlp'");
    assert_int_equal(b.len, 0);
    assert_int_equal(celer_service_stats_json(f->svc, "mlp", "1", &b), CELER_OK);
    celer_jbuf_free(&b);
}

/* The transport's encoder failing counts the call as a failure, not a success. */
static celer_status on_done_failing(void *user, const celer_service_result *r) {
    on_done(user, r);
    return CELER_ERR_LIMIT;
}

static void test_encode_failure(void **state) {
    fixture *f = *state;
    static const celer_service_callbacks failing = {on_suspend, on_done_failing, on_resume};
    unsigned long long ok = stat_of(f, "mlp", "\"success\":{\"count\":"), bad = stat_of(f, "mlp", "\"fail\":{\"count\":");
    answer a;
    answer_init(&a, 0.5f);
    celer_status st;
    char msg[256];
    celer_service_call *c = celer_service_begin(f->svc, CELER_PROTOCOL_HTTP, "mlp", NULL, 1, &st, msg, sizeof msg);
    celer_service_start(c, &(celer_service_request){.kreq = &a.req}, &failing, &a);
    answer_wait(&a);
    celer_service_end(c);
    assert_int_equal(stat_of(f, "mlp", "\"success\":{\"count\":"), ok);
    assert_int_equal(stat_of(f, "mlp", "\"fail\":{\"count\":"), bad + 1);
}

/* The value of the sample `series` (name{labels}) in /metrics' text; -1 when it is not there. */
static double metric_of(fixture *f, const char *series) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_metrics_render(f->metrics, &b);
    celer_jbuf_raw(&b, "", 1);
    double v = -1;
    for (const char *p = b.data; (p = strstr(p, series)); p++)
        if ((p == b.data || p[-1] == '\n') && p[strlen(series)] == ' ') {
            v = strtod(p + strlen(series) + 1, NULL);
            break;
        }
    celer_jbuf_free(&b);
    return v;
}

/* Each outcome counts under the protocol its request came by: a refusal at begin, a reject, a
 * success with its duration, and a pipeline's model call under the pipeline request's protocol. */
static void test_protocol_series(void **state) {
    fixture *f = *state;
#define SERIES(model, proto, outcome)                                                                              \
    "celer_inference_requests_total{model=\"" model "\",version=\"1\",protocol=\"" proto "\",outcome=\"" outcome "\"}"
    /* every version has both protocols' series from its load */
    assert_true(metric_of(f, SERIES("mlp", "http", "success")) == 0);
    assert_true(metric_of(f, SERIES("mlp", "grpc", "failure")) == 0);
    assert_true(metric_of(f, "celer_inference_request_duration_seconds_count{model=\"mlp\",version=\"1\","
                             "protocol=\"grpc\"}") == 0);
    /* the model's own series have no protocol */
    assert_true(metric_of(f, "celer_inference_queue_duration_seconds_count{model=\"mlp\",version=\"1\"}") == 0);

    answer a;
    answer_init(&a, 0.5f);
    a.protocol = CELER_PROTOCOL_GRPC;
    celer_service_call *c = start(f, "mlp", &a);
    answer_wait(&a);
    assert_int_equal(a.status, CELER_OK);
    celer_service_end(c);
    answer_init(&a, 0.5f);
    a.protocol = CELER_PROTOCOL_GRPC;
    c = start(f, "piped", &a);
    answer_wait(&a);
    assert_int_equal(a.status, CELER_OK);
    celer_service_end(c);
    answer_init(&a, 0.25f);
    c = start(f, "mlp", &a); /* HTTP */
    answer_wait(&a);
    assert_int_equal(a.status, CELER_OK);
    celer_service_end(c);

    celer_status st;
    char msg[256];
    c = celer_service_begin(f->svc, CELER_PROTOCOL_GRPC, "mlp", NULL, 1, &st, msg, sizeof msg);
    celer_service_reject(c);
    celer_service_end(c);
    celer_service_call *held = celer_service_begin(f->svc, CELER_PROTOCOL_GRPC, "narrow", NULL, 1, &st, msg, sizeof msg);
    assert_null(celer_service_begin(f->svc, CELER_PROTOCOL_GRPC, "narrow", NULL, 1, &st, msg, sizeof msg));
    celer_service_end(held);

    assert_true(metric_of(f, SERIES("mlp", "grpc", "success")) == 2); /* its own request and piped's call */
    assert_true(metric_of(f, SERIES("mlp", "http", "success")) == 1);
    assert_true(metric_of(f, SERIES("mlp", "grpc", "failure")) == 1);
    assert_true(metric_of(f, SERIES("mlp", "http", "failure")) == 0);
    assert_true(metric_of(f, SERIES("piped", "grpc", "success")) == 1);
    assert_true(metric_of(f, SERIES("piped", "http", "success")) == 0);
    assert_true(metric_of(f, SERIES("narrow", "grpc", "failure")) == 1);
    assert_true(metric_of(f, SERIES("narrow", "http", "failure")) == 0);
    /* a duration per request, none for a pipeline's model call */
    assert_true(metric_of(f, "celer_inference_request_duration_seconds_count{model=\"mlp\",version=\"1\","
                             "protocol=\"grpc\"}") == 1);
    assert_true(metric_of(f, "celer_inference_request_duration_seconds_count{model=\"mlp\",version=\"1\","
                             "protocol=\"http\"}") == 1);
#undef SERIES
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repo_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_series, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
