/* Scheduler: batched results equal single runs bit for bit, concurrent submitters, preferred
 * sizes, max_queue_delay, queue full, deadlines (also while every worker is busy), draining
 * removal, free with queued jobs, mixed shapes, models whose outputs cannot be split, a batch
 * with one failing job, and a throughput figure (printed only). */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "onnx/onnx.h"
#include "runtime/runtime.h"
#include "server/sched.h"
#include "testutil.h"

#define ONNX_DATA "/usr/share/libonnx-testdata/data"

static const char *mlp_path(void) {
    static char buf[1024];
    const char *root = getenv("CELER_EXAMPLES");
    snprintf(buf, sizeof buf, "%s/mlp/model.onnx", root ? root : "examples");
    return buf;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static celer_model *load(const char *path) {
    celer_model *m = NULL;
    if (celer_model_load(path, NULL, &m)) fail_msg("%s: %s", path, celer_error_message());
    return m;
}

/* ---- completion counting and a gate that holds a worker inside a done callback ---- */

typedef struct counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
} counter;

static void counter_init(counter *c) {
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->n = 0;
}

static void counter_destroy(counter *c) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

/* Waits until at least n completions or timeout; returns the count seen. */
static int counter_wait(counter *c, int n, int timeout_ms) {
    int64_t until = now_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&c->mu);
    while (c->n < n && now_ns() < until) {
        pthread_mutex_unlock(&c->mu);
        usleep(500);
        pthread_mutex_lock(&c->mu);
    }
    int got = c->n;
    pthread_mutex_unlock(&c->mu);
    return got;
}

static int counter_get(counter *c) {
    pthread_mutex_lock(&c->mu);
    int n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, released;
} gate;

static void gate_init(gate *g) {
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->entered = g->released = false;
}

static void gate_wait_entered(gate *g) {
    pthread_mutex_lock(&g->mu);
    while (!g->entered) pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_release(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->released = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* A test job: float inputs (data borrowed or owned), a copy of output 0 after completion. */
typedef struct tjob {
    celer_job job;
    celer_tensor in[2];
    float *owned;
    atomic_int calls;
    celer_status status;
    char msg[256];
    celer_tensor out;
    int batch_size;
    counter *ctr;
    gate *gate; /* when set, done blocks until released */
    sem_t *sem; /* when set, posted at completion */
    bool keep;  /* done keeps the outputs (celer_sched_keep_outputs): `kept` points into them */
    celer_sched_hold *hold;
    celer_tensor kept;
} tjob;

static void tjob_done(celer_job *job, celer_status status, const char *message, const celer_tensor *outputs,
                      int n_outputs) {
    tjob *t = job->user;
    if (t->gate) {
        pthread_mutex_lock(&t->gate->mu);
        t->gate->entered = true;
        pthread_cond_broadcast(&t->gate->cv);
        while (!t->gate->released) pthread_cond_wait(&t->gate->cv, &t->gate->mu);
        pthread_mutex_unlock(&t->gate->mu);
    }
    atomic_fetch_add(&t->calls, 1);
    t->status = status;
    snprintf(t->msg, sizeof t->msg, "%s", message ? message : "(null)");
    t->batch_size = job->batch_size;
    if (status == CELER_OK && n_outputs > 0) {
        size_t bytes = 0;
        assert_int_equal(celer_tensor_bytes(&outputs[0], &bytes), CELER_OK);
        free(t->out.data);
        t->out = outputs[0];
        t->out.data = malloc(bytes + 1);
        if (bytes) memcpy(t->out.data, outputs[0].data, bytes);
        if (t->keep) {
            assert_int_equal(celer_sched_keep_outputs(job, &t->hold), CELER_OK);
            t->kept = outputs[0];
        }
    }
    /* t may be reused or gone as soon as it is signalled: touch nothing of it afterwards */
    counter *ctr = t->ctr;
    sem_t *sem = t->sem;
    if (ctr) {
        pthread_mutex_lock(&ctr->mu);
        ctr->n++;
        pthread_cond_broadcast(&ctr->cv);
        pthread_mutex_unlock(&ctr->mu);
    }
    if (sem) sem_post(sem);
}

/* Prepares t with one float input of `shape` filled from `seed` (owned) or borrowing `data`. */
static void tjob_init(tjob *t, int rank, const int64_t *dims, float *data, uint64_t *seed, counter *ctr) {
    memset(t, 0, sizeof *t);
    t->in[0].dtype = CELER_FLOAT;
    t->in[0].shape.rank = rank;
    memcpy(t->in[0].shape.dims, dims, (size_t)rank * sizeof *dims);
    if (data) {
        t->in[0].data = data;
    } else {
        size_t n = (size_t)celer_shape_numel(&t->in[0].shape);
        t->owned = malloc(n * sizeof(float) + 1);
        tu_fill_random(t->owned, n, -1, 1, seed);
        t->in[0].data = t->owned;
    }
    t->job.inputs = t->in;
    t->job.done = tjob_done;
    t->job.user = t;
    t->ctr = ctr;
}

static void tjob_free(tjob *t) {
    celer_sched_release(t->hold);
    t->hold = NULL;
    free(t->owned);
    free(t->out.data);
    t->owned = NULL;
    t->out.data = NULL;
}

/* Runs t's inputs alone on a fresh context and checks t's output against it. Not bit for bit:
 * the MLP's Gemm (OpenBLAS sgemm) rounds a row differently when M <= 3 than in a larger M, so a
 * row batched with others may differ from its single run in the last bits (the scheduler itself
 * is exact: test_batched_equals_single compares with the concatenated run bit for bit). */
static void check_against_single(const celer_model *m, const tjob *t) {
    celer_context *c;
    assert_int_equal(celer_context_init(m, &c), CELER_OK);
    const celer_tensor *out;
    assert_int_equal(celer_context_run(c, t->in, &out), CELER_OK);
    assert_int_equal(t->status, CELER_OK);
    assert_true(celer_shape_equal(&out[0].shape, &t->out.shape));
    size_t n = (size_t)celer_shape_numel(&out[0].shape);
    double diff = tu_max_rel_diff(t->out.data, out[0].data, n);
    if (diff > 1e-5) fail_msg("batched result differs from the single run: max rel diff %g", diff);
    celer_context_free(c);
}

static celer_sched_queue *add_queue(celer_sched *s, const celer_model *m, int max_batch, int64_t delay_us,
                                    int max_queue, const int *preferred, int n_preferred) {
    celer_sched_queue_options o = {.max_batch_size = max_batch, .max_queue_delay_us = delay_us,
                                   .max_queue_size = max_queue, .n_preferred = n_preferred};
    for (int i = 0; i < n_preferred; i++) o.preferred_batch_size[i] = preferred[i];
    celer_sched_queue *q = NULL;
    celer_status st = celer_sched_queue_add(s, m, &o, &q);
    if (st) fail_msg("queue_add: %s", celer_error_message());
    return q;
}

/* Submits a gate job (one MLP row) to q and waits until a worker is held inside its done. */
static void hold_worker(celer_sched_queue *q, tjob *g, gate *gt, counter *ctr) {
    static float row[16];
    const int64_t dims[2] = {1, 16};
    tjob_init(g, 2, dims, row, NULL, ctr);
    g->gate = gt;
    assert_int_equal(celer_sched_submit(q, &g->job), CELER_OK);
    gate_wait_entered(gt);
}

/* ---- tiny hand-encoded ONNX models with symbolic [N, M] input ---- */

typedef struct pb {
    uint8_t b[512];
    size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v) {
    do {
        assert_true(p->n < sizeof p->b);
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}
static void pb_int(pb *p, int field, uint64_t v) {
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, v);
}
static void pb_bytes(pb *p, int field, const void *d, size_t n) {
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    assert_true(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pb_str(pb *p, int field, const char *s) { pb_bytes(p, field, s, strlen(s)); }
static void pb_msg(pb *p, int field, const pb *m) { pb_bytes(p, field, m->b, m->n); }

/* ValueInfoProto: tensor `name` of dtype `elem`, with dims N, `dim1` when dim1 is not NULL. */
static void pb_value_info(pb *p, int field, const char *name, celer_dtype elem, const char *dim1) {
    pb dn = {0}, dm = {0}, shape = {0}, tt = {0}, type = {0}, vi = {0};
    pb_str(&dn, 2, "N");
    pb_str(&dm, 2, dim1 ? dim1 : "M");
    pb_msg(&shape, 1, &dn);
    pb_msg(&shape, 1, &dm);
    pb_int(&tt, 1, elem);
    if (dim1) pb_msg(&tt, 2, &shape);
    pb_msg(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(p, field, &vi);
}

/* Model with one node `op`(X) -> Y at opset 13, X float [N, M]; with `index` true the node is
 * op(X, I) with I int64 [N, K] and attribute axis=1 (GatherElements picking within each row).
 * `bytes` must outlive it. */
static celer_model *tiny_model_with(const char *op, bool index, pb *bytes) {
    pb node = {0}, graph = {0}, opset = {0};
    pb_str(&node, 1, "X");
    if (index) pb_str(&node, 1, "I");
    pb_str(&node, 2, "Y");
    pb_str(&node, 4, op);
    if (index) {
        pb axis = {0};
        pb_str(&axis, 1, "axis");
        pb_int(&axis, 3, 1);
        pb_int(&axis, 20, 2); /* AttributeProto.INT */
        pb_msg(&node, 5, &axis);
    }
    pb_msg(&graph, 1, &node);
    pb_str(&graph, 2, op);
    pb_value_info(&graph, 11, "X", CELER_FLOAT, "M");
    if (index) pb_value_info(&graph, 11, "I", CELER_INT64, "K");
    pb_value_info(&graph, 12, "Y", CELER_FLOAT, NULL);
    pb_str(&opset, 1, "");
    pb_int(&opset, 2, 13);
    memset(bytes, 0, sizeof *bytes);
    pb_int(bytes, 1, 7);
    pb_msg(bytes, 8, &opset);
    pb_msg(bytes, 7, &graph);
    celer_onnx_model *onnx = NULL;
    if (celer_onnx_parse(bytes->b, bytes->n, NULL, &onnx)) fail_msg("parse %s: %s", op, celer_error_message());
    celer_model *m = NULL;
    if (celer_model_compile(onnx, NULL, &m)) fail_msg("compile %s: %s", op, celer_error_message());
    return m;
}

static celer_model *tiny_model(const char *op, pb *bytes) { return tiny_model_with(op, false, bytes); }

/* ---- tests ---- */

/* Jobs of 1..4 rows queued behind a held worker run as one batch; each job's slice equals its
 * rows of the concatenated batch run directly, bit for bit, and its own single run up to the
 * GEMM's rounding (see check_against_single). */
static void test_batched_equals_single(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *q = add_queue(s, m, 32, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[12];
    hold_worker(hold_q, &hold, &g, &ctr);
    uint64_t seed = 1;
    int64_t total = 0;
    for (int i = 0; i < 12; i++) {
        int64_t dims[2] = {i % 4 + 1, 16};
        total += dims[0];
        tjob_init(&jobs[i], 2, dims, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    assert_int_equal(celer_sched_queue_depth(q), 12);
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 13, 10000), 13);
    assert_int_equal(celer_sched_queue_depth(q), 0);
    /* the whole batch run directly: every job's slice must equal its rows of it bit for bit */
    static float cat_in[32 * 16], cat_out[32 * 8];
    int64_t row = 0;
    for (int i = 0; i < 12; i++) {
        memcpy(cat_in + row * 16, jobs[i].in[0].data, (size_t)(i % 4 + 1) * 16 * sizeof(float));
        row += i % 4 + 1;
    }
    celer_context *c;
    assert_int_equal(celer_context_init(m, &c), CELER_OK);
    celer_tensor cat = {.dtype = CELER_FLOAT, .shape = {2, {total, 16}}, .data = cat_in};
    const celer_tensor *cat_res;
    assert_int_equal(celer_context_run(c, &cat, &cat_res), CELER_OK);
    memcpy(cat_out, cat_res[0].data, (size_t)total * 8 * sizeof(float));
    celer_context_free(c);
    row = 0;
    for (int i = 0; i < 12; i++) {
        assert_memory_equal(jobs[i].out.data, cat_out + row * 8, (size_t)(i % 4 + 1) * 8 * sizeof(float));
        row += i % 4 + 1;
    }
    for (int i = 0; i < 12; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        assert_int_equal(jobs[i].batch_size, total); /* one batch of all 30 rows */
        assert_int_equal(jobs[i].out.shape.dims[0], i % 4 + 1);
        assert_int_equal(jobs[i].out.shape.dims[1], 8);
        assert_true(jobs[i].job.start_ns >= jobs[i].job.enqueue_ns && jobs[i].job.end_ns >= jobs[i].job.start_ns);
        check_against_single(m, &jobs[i]);
        tjob_free(&jobs[i]);
    }
    celer_sched_queue_remove(s, q);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* Outputs kept past done (an answer streamed to a slow client) stay as they were while the worker
 * runs other batches: batched MLP jobs (outputs in the run's arena, taken from the context) and a
 * batched Identity (outputs viewing the worker's batch buffer, taken from the worker), against
 * the copies made in done; a job of a model queue run alone too. ASan sees any use after free. */
static void test_keep_outputs(void **state) {
    (void)state;
    pb bytes;
    celer_model *models[2] = {load(mlp_path()), tiny_model("Identity", &bytes)};
    for (int mi = 0; mi < 2; mi++) {
        celer_model *m = models[mi];
        int64_t cols = mi ? 5 : 16;
        celer_sched *s;
        assert_int_equal(celer_sched_init(1, &s), CELER_OK);
        celer_sched_queue *hold_q = add_queue(s, models[0], 0, 0, 8, NULL, 0);
        celer_sched_queue *q = add_queue(s, m, 32, 0, 64, NULL, 0);
        celer_sched_queue *single = add_queue(s, m, 0, 0, 64, NULL, 0);
        counter ctr;
        counter_init(&ctr);
        gate g;
        gate_init(&g);
        tjob hold, kept[7], later[12];
        hold_worker(hold_q, &hold, &g, &ctr);
        uint64_t seed = 11;
        for (int i = 0; i < 7; i++) { /* one batch; the last alone */
            int64_t dims[2] = {i % 3 + 1, cols};
            tjob_init(&kept[i], 2, dims, NULL, &seed, &ctr);
            kept[i].keep = i % 2 == 0 || i == 6; /* some of the batch keep, some do not */
            assert_int_equal(celer_sched_submit(i == 6 ? single : q, &kept[i].job), CELER_OK);
        }
        gate_release(&g);
        assert_int_equal(counter_wait(&ctr, 8, 10000), 8);
        for (int i = 0; i < 12; i++) { /* the same worker runs again, on the same contexts */
            int64_t dims[2] = {i % 4 + 1, cols};
            tjob_init(&later[i], 2, dims, NULL, &seed, &ctr);
            assert_int_equal(celer_sched_submit(i % 2 ? single : q, &later[i].job), CELER_OK);
        }
        assert_int_equal(counter_wait(&ctr, 20, 10000), 20);
        for (int i = 0; i < 7; i++) {
            if (!kept[i].keep) continue;
            size_t n;
            assert_int_equal(celer_tensor_bytes(&kept[i].kept, &n), CELER_OK);
            assert_true(celer_shape_equal(&kept[i].kept.shape, &kept[i].out.shape));
            assert_memory_equal(kept[i].kept.data, kept[i].out.data, n);
        }
        for (int i = 0; i < 7; i++) tjob_free(&kept[i]); /* the holds go; the last one frees the memory */
        for (int i = 0; i < 12; i++) tjob_free(&later[i]);
        celer_sched_queue_remove(s, q);
        celer_sched_queue_remove(s, single);
        celer_sched_queue_remove(s, hold_q);
        celer_sched_free(s);
        tjob_free(&hold);
        gate_destroy(&g);
        counter_destroy(&ctr);
    }
    celer_model_free(models[0]);
    celer_model_free(models[1]);
}

#define N_SUBMITTERS 8
#define JOBS_EACH 500
#define N_REF 16

typedef struct submitter {
    celer_sched_queue *q;
    tjob *jobs;
    float (*ref_in)[16];
    counter *ctr;
    int thread, limits;
} submitter;

static void *submit_main(void *p) {
    submitter *a = p;
    for (int i = 0; i < JOBS_EACH; i++) {
        const int64_t dims[2] = {1, 16};
        tjob_init(&a->jobs[i], 2, dims, a->ref_in[(i + a->thread) % N_REF], NULL, a->ctr);
        celer_status st;
        while ((st = celer_sched_submit(a->q, &a->jobs[i].job)) == CELER_ERR_UNAVAILABLE) {
            a->limits++;
            usleep(200);
        }
        if (st) return NULL;
    }
    return NULL;
}

/* 8 threads x 500 jobs into a small batching queue: every job completes exactly once with the
 * right output, and batches form. */
static void test_concurrent_submitters(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    /* reference outputs of N_REF distinct rows */
    static float ref_in[N_REF][16], ref_out[N_REF][8];
    uint64_t seed = 5;
    tu_fill_random(&ref_in[0][0], N_REF * 16, -2, 2, &seed);
    celer_context *c;
    assert_int_equal(celer_context_init(m, &c), CELER_OK);
    for (int k = 0; k < N_REF; k++) {
        celer_tensor in = {.dtype = CELER_FLOAT, .shape = {2, {1, 16}}, .data = ref_in[k]};
        const celer_tensor *out;
        assert_int_equal(celer_context_run(c, &in, &out), CELER_OK);
        memcpy(ref_out[k], out[0].data, sizeof ref_out[k]);
    }
    celer_context_free(c);

    celer_sched *s;
    assert_int_equal(celer_sched_init(2, &s), CELER_OK);
    const int preferred[] = {4, 8};
    celer_sched_queue *q = add_queue(s, m, 16, 500, 256, preferred, 2);
    counter ctr;
    counter_init(&ctr);
    submitter args[N_SUBMITTERS];
    pthread_t th[N_SUBMITTERS];
    for (int t = 0; t < N_SUBMITTERS; t++) {
        args[t] = (submitter){.q = q, .jobs = calloc(JOBS_EACH, sizeof(tjob)), .ref_in = ref_in, .ctr = &ctr,
                              .thread = t};
        pthread_create(&th[t], NULL, submit_main, &args[t]);
    }
    int limits = 0;
    for (int t = 0; t < N_SUBMITTERS; t++) {
        pthread_join(th[t], NULL);
        limits += args[t].limits;
    }
    int total = N_SUBMITTERS * JOBS_EACH;
    assert_int_equal(counter_wait(&ctr, total, 60000), total);
    celer_sched_queue_remove(s, q);
    int hist[17] = {0};
    int batched = 0;
    for (int t = 0; t < N_SUBMITTERS; t++) {
        for (int i = 0; i < JOBS_EACH; i++) {
            tjob *j = &args[t].jobs[i];
            assert_int_equal(atomic_load(&j->calls), 1);
            assert_int_equal(j->status, CELER_OK);
            assert_int_equal(j->out.shape.dims[0], 1);
            double diff = tu_max_rel_diff(j->out.data, ref_out[(i + t) % N_REF], 8);
            if (diff > 1e-5) fail_msg("job %d of thread %d: max rel diff %g", i, t, diff);
            assert_true(j->batch_size >= 1 && j->batch_size <= 16);
            hist[j->batch_size]++;
            if (j->batch_size > 1) batched++;
            tjob_free(j);
        }
        free(args[t].jobs);
    }
    printf("concurrent: %d jobs, %d batched (queue-full retries %d); jobs by batch size:", total, batched, limits);
    for (int b = 1; b <= 16; b++)
        if (hist[b]) printf(" %d:%d", b, hist[b]);
    printf("\n");
    assert_true(batched > 0);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* The largest preferred size reachable runs at once, without waiting for the delay; the rest
 * waits (here: until the queue is removed, which flushes it). */
static void test_preferred_sizes(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    const int preferred[] = {4, 2};
    celer_sched_queue *q = add_queue(s, m, 16, 30LL * 1000000, 64, preferred, 2);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[7];
    uint64_t seed = 3;
    const int64_t one[2] = {1, 16}, three[2] = {3, 16};

    /* 6 single rows queued: 4 (largest preferred) run now; then the 2 left form preferred 2 */
    hold_worker(hold_q, &hold, &g, &ctr);
    for (int i = 0; i < 6; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 7, 10000), 7);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(jobs[i].batch_size, i < 4 ? 4 : 2);
        check_against_single(m, &jobs[i]);
        tjob_free(&jobs[i]);
    }

    /* 3 rows, below every preferred size reachable (3 is not preferred): waits for the delay */
    tjob_init(&jobs[0], 2, three, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &jobs[0].job), CELER_OK);
    usleep(100 * 1000);
    assert_int_equal(counter_get(&ctr), 7);
    /* one more row makes 4: runs at once */
    tjob_init(&jobs[1], 2, one, NULL, &seed, &ctr);
    int64_t t0 = now_ns();
    assert_int_equal(celer_sched_submit(q, &jobs[1].job), CELER_OK);
    assert_int_equal(counter_wait(&ctr, 9, 10000), 9);
    assert_true(now_ns() - t0 < 5LL * 1000000000);
    assert_int_equal(jobs[0].batch_size, 4);
    assert_int_equal(jobs[1].batch_size, 4);
    check_against_single(m, &jobs[0]);
    check_against_single(m, &jobs[1]);
    tjob_free(&jobs[0]);
    tjob_free(&jobs[1]);

    /* a lone row with no preferred size reachable waits; removal flushes it */
    tjob_init(&jobs[2], 2, one, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &jobs[2].job), CELER_OK);
    usleep(50 * 1000);
    assert_int_equal(counter_get(&ctr), 9);
    celer_sched_queue_remove(s, q);
    assert_int_equal(counter_get(&ctr), 10);
    assert_int_equal(jobs[2].status, CELER_OK);
    assert_int_equal(jobs[2].batch_size, 1);
    tjob_free(&jobs[2]);

    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* Below max_batch_size the batch waits max_queue_delay after its first job, then runs partial. */
static void test_delay_partial_batch(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(2, &s), CELER_OK);
    const int64_t delay_us = 150 * 1000;
    celer_sched_queue *q = add_queue(s, m, 32, delay_us, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    tjob jobs[3];
    uint64_t seed = 9;
    const int64_t two[2] = {2, 16};
    for (int i = 0; i < 3; i++) {
        tjob_init(&jobs[i], 2, two, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    assert_int_equal(counter_wait(&ctr, 3, 10000), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(jobs[i].batch_size, 6);
        check_against_single(m, &jobs[i]);
    }
    int64_t waited = jobs[0].job.start_ns - jobs[0].job.enqueue_ns;
    assert_true(waited >= delay_us * 1000);
    assert_true(waited < 5LL * 1000000000);
    for (int i = 0; i < 3; i++) tjob_free(&jobs[i]);
    celer_sched_queue_remove(s, q);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
}

static void test_queue_full(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *q = add_queue(s, m, 0, 0, 2, NULL, 0);
    celer_sched_queue_set_name(q, "mlp version 1");
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[3];
    uint64_t seed = 11;
    const int64_t one[2] = {1, 16};
    hold_worker(q, &hold, &g, &ctr); /* taken off the queue: depth 0 */
    for (int i = 0; i < 3; i++) tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &jobs[0].job), CELER_OK);
    assert_int_equal(celer_sched_submit(q, &jobs[1].job), CELER_OK);
    assert_int_equal(celer_sched_queue_depth(q), 2);
    assert_int_equal(celer_sched_submit(q, &jobs[2].job), CELER_ERR_UNAVAILABLE);
    assert_string_equal(celer_error_message(), "queue of model mlp version 1 is full (max_queue_size 2)");
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 3, 10000), 3);
    usleep(20 * 1000);
    assert_int_equal(counter_get(&ctr), 3);
    assert_int_equal(atomic_load(&jobs[2].calls), 0); /* a refused job is never completed */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(jobs[i].batch_size, 1);
        check_against_single(m, &jobs[i]);
    }
    /* room again */
    assert_int_equal(celer_sched_submit(q, &jobs[2].job), CELER_OK);
    assert_int_equal(counter_wait(&ctr, 4, 10000), 4);
    for (int i = 0; i < 3; i++) tjob_free(&jobs[i]);
    celer_sched_queue_remove(s, q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* A job whose client cancelled it while queued completes with CELER_ERR_CANCELLED without running;
 * the others of its batch run together; a flag set after a job ran changes nothing. */
static void test_cancelled(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *batched = add_queue(s, m, 8, 0, 8, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[4];
    atomic_bool cancelled[4];
    uint64_t seed = 17;
    const int64_t one[2] = {1, 16};
    hold_worker(hold_q, &hold, &g, &ctr);
    for (int i = 0; i < 4; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        atomic_init(&cancelled[i], false);
        jobs[i].job.cancelled = &cancelled[i];
        assert_int_equal(celer_sched_submit(batched, &jobs[i].job), CELER_OK);
    }
    atomic_store(&cancelled[1], true); /* while queued: the worker is held */
    atomic_store(&cancelled[3], true);
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 5, 10000), 5);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        if (i % 2) {
            assert_int_equal(jobs[i].status, CELER_ERR_CANCELLED);
            assert_non_null(strstr(jobs[i].msg, "cancelled"));
            assert_null(jobs[i].out.data);
        } else {
            assert_int_equal(jobs[i].batch_size, 2); /* the two live jobs ran as one batch */
            check_against_single(m, &jobs[i]);
        }
        tjob_free(&jobs[i]);
    }
    assert_int_equal(celer_status_grpc(CELER_ERR_CANCELLED), 1);
    celer_sched_queue_remove(s, batched);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* A job whose deadline passes while queued completes with CELER_ERR_TIMEOUT, never runs; the others
 * of its batch still run together. */
static void test_deadlines(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *plain = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *batched = add_queue(s, m, 8, 0, 8, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[6];
    uint64_t seed = 13;
    const int64_t one[2] = {1, 16};
    hold_worker(hold_q, &hold, &g, &ctr);
    for (int i = 0; i < 6; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        int64_t now = now_ns();
        jobs[i].job.deadline_ns = i % 3 == 0 ? now + 1000000 : i % 3 == 1 ? now + 60LL * 1000000000 : 0;
        assert_int_equal(celer_sched_submit(i < 3 ? plain : batched, &jobs[i].job), CELER_OK);
    }
    usleep(20 * 1000);
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 7, 10000), 7);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        if (i % 3 == 0) {
            assert_int_equal(jobs[i].status, CELER_ERR_TIMEOUT);
            assert_non_null(strstr(jobs[i].msg, "request timed out after "));
            assert_non_null(strstr(jobs[i].msg, " us in the queue"));
            assert_null(jobs[i].out.data);
            assert_int_equal(jobs[i].batch_size, 0);
        } else {
            assert_int_equal(jobs[i].batch_size, i < 3 ? 1 : 2);
            check_against_single(m, &jobs[i]);
        }
        tjob_free(&jobs[i]);
    }
    /* a job expiring while its batch waits for a long delay completes at its deadline */
    celer_sched_queue *slow = add_queue(s, m, 8, 30LL * 1000000, 8, NULL, 0);
    tjob_init(&jobs[0], 2, one, NULL, &seed, &ctr);
    jobs[0].job.deadline_ns = now_ns() + 50 * 1000000;
    assert_int_equal(celer_sched_submit(slow, &jobs[0].job), CELER_OK);
    assert_int_equal(counter_wait(&ctr, 8, 10000), 8);
    assert_int_equal(jobs[0].status, CELER_ERR_TIMEOUT);
    assert_true(jobs[0].job.end_ns - jobs[0].job.enqueue_ns < 5LL * 1000000000);
    tjob_free(&jobs[0]);
    celer_sched_queue_remove(s, slow);
    celer_sched_queue_remove(s, batched);
    celer_sched_queue_remove(s, plain);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

typedef struct remover {
    celer_sched *s;
    celer_sched_queue *q;
    atomic_bool done;
} remover;

static void *remove_main(void *p) {
    remover *r = p;
    celer_sched_queue_remove(r->s, r->q);
    atomic_store(&r->done, true);
    return NULL;
}

/* Removing a busy queue refuses new jobs (UNAVAILABLE) but runs every queued one before returning. */
static void test_remove_drains(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    uint64_t seed = 17;
    const int64_t one[2] = {1, 16}, two[2] = {2, 16};
    counter ctr;
    counter_init(&ctr);

    /* many jobs, two workers, removal right away */
    celer_sched *s;
    assert_int_equal(celer_sched_init(2, &s), CELER_OK);
    celer_sched_queue *q = add_queue(s, m, 8, 1000, 1000, NULL, 0);
    enum { N = 300 };
    tjob *jobs = calloc(N, sizeof *jobs);
    for (int i = 0; i < N; i++) {
        tjob_init(&jobs[i], 2, i % 2 ? one : two, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    celer_sched_queue_remove(s, q);
    assert_int_equal(counter_get(&ctr), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        if (i % 25 == 0) check_against_single(m, &jobs[i]);
        else assert_int_equal(jobs[i].status, CELER_OK);
        tjob_free(&jobs[i]);
    }

    /* while a worker is held, removal waits; submits during it are refused */
    counter_destroy(&ctr);
    counter_init(&ctr);
    celer_sched_queue *q2 = add_queue(s, m, 0, 0, 1000, NULL, 0);
    gate g;
    gate_init(&g);
    tjob hold;
    hold_worker(q2, &hold, &g, &ctr);
    for (int i = 0; i < 5; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q2, &jobs[i].job), CELER_OK);
    }
    remover r = {.s = s, .q = q2};
    pthread_t th;
    pthread_create(&th, NULL, remove_main, &r);
    int accepted = 5;
    for (int tries = 0; tries < 1000; tries++) {
        tjob_init(&jobs[accepted], 2, one, NULL, &seed, &ctr);
        celer_status st = celer_sched_submit(q2, &jobs[accepted].job);
        if (st == CELER_ERR_UNAVAILABLE) {
            assert_non_null(strstr(celer_error_message(), "is being unloaded"));
            tjob_free(&jobs[accepted]);
            break;
        }
        assert_int_equal(st, CELER_OK);
        accepted++;
        assert_true(accepted < N);
        usleep(1000);
    }
    /* hold the worker a bit longer: removal must still be waiting */
    usleep(30 * 1000);
    assert_false(atomic_load(&r.done));
    gate_release(&g);
    pthread_join(th, NULL);
    assert_int_equal(counter_get(&ctr), accepted + 1);
    for (int i = 0; i < accepted; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        check_against_single(m, &jobs[i]);
        tjob_free(&jobs[i]);
    }
    celer_sched_free(s);
    tjob_free(&hold);
    free(jobs);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* celer_sched_free runs the jobs still queued (even ones waiting for a long delay), removing
 * the queues itself. */
static void test_free_with_queued(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *qb = add_queue(s, m, 32, 30LL * 1000000, 64, NULL, 0);
    celer_sched_queue *qp = add_queue(s, m, 0, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    tjob jobs[10];
    uint64_t seed = 19;
    const int64_t one[2] = {1, 16};
    for (int i = 0; i < 10; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(i < 5 ? qb : qp, &jobs[i].job), CELER_OK);
    }
    int64_t t0 = now_ns();
    celer_sched_free(s);
    assert_true(now_ns() - t0 < 10LL * 1000000000);
    assert_int_equal(counter_get(&ctr), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        check_against_single(m, &jobs[i]);
        tjob_free(&jobs[i]);
    }
    counter_destroy(&ctr);
    celer_model_free(m);
}

static int64_t rows_of(const tjob *t) { return t->in[0].shape.dims[0]; }

/* Jobs whose non-batch dims differ are never batched together. */
static void test_mixed_shapes(void **state) {
    (void)state;
    pb bytes;
    celer_model *m = tiny_model("Relu", &bytes);
    celer_model *hm = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, hm, 0, 0, 8, NULL, 0);
    celer_sched_queue *q = add_queue(s, m, 64, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[10];
    uint64_t seed = 23;
    hold_worker(hold_q, &hold, &g, &ctr);
    int64_t rows3 = 0, rows5 = 0;
    for (int i = 0; i < 10; i++) {
        int64_t dims[2] = {i % 3 + 1, i % 2 ? 5 : 3};
        *(i % 2 ? &rows5 : &rows3) += dims[0];
        tjob_init(&jobs[i], 2, dims, NULL, &seed, &ctr);
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 11, 10000), 11);
    for (int i = 0; i < 10; i++) {
        tjob *t = &jobs[i];
        assert_int_equal(t->status, CELER_OK);
        assert_int_equal(t->batch_size, i % 2 ? rows5 : rows3);
        assert_true(celer_shape_equal(&t->out.shape, &t->in[0].shape));
        const float *x = t->in[0].data, *y = t->out.data;
        for (int64_t k = 0; k < rows_of(t) * t->in[0].shape.dims[1]; k++) assert_true(y[k] == (x[k] > 0 ? x[k] : 0));
        tjob_free(t);
    }
    celer_sched_queue_remove(s, q);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
    celer_model_free(hm);
}

/* A model reducing over the batch ([N, M] -> [1, 1]) cannot be split by rows: its jobs are run
 * one by one, each getting the result of its own rows. */
static void test_unsplittable_outputs(void **state) {
    (void)state;
    pb bytes;
    celer_model *m = tiny_model("ReduceSum", &bytes);
    celer_model *hm = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, hm, 0, 0, 8, NULL, 0);
    celer_sched_queue *q = add_queue(s, m, 16, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    tjob hold, jobs[8];
    uint64_t seed = 29;
    const int64_t dims[2] = {2, 3};
    for (int round = 0; round < 2; round++) {
        gate_init(&g);
        hold_worker(hold_q, &hold, &g, &ctr);
        for (int i = 0; i < 4; i++) {
            tjob_init(&jobs[i], 2, dims, NULL, &seed, &ctr);
            assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
        }
        gate_release(&g);
        assert_int_equal(counter_wait(&ctr, 5 * (round + 1), 10000), 5 * (round + 1));
        for (int i = 0; i < 4; i++) {
            assert_int_equal(atomic_load(&jobs[i].calls), 1);
            assert_int_equal(jobs[i].batch_size, 2);
            check_against_single(m, &jobs[i]);
            tjob_free(&jobs[i]);
        }
        tjob_free(&hold);
        gate_destroy(&g);
    }
    celer_sched_queue_remove(s, q);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
    celer_model_free(hm);
}

/* One job whose input makes the batch's run fail (a GatherElements index out of range) fails
 * alone: the batch is rerun one by one, the other jobs get their own rows, and the queue goes on
 * batching (the second round, all good, runs as one batch). */
static void test_failing_job_in_batch(void **state) {
    (void)state;
    pb bytes;
    celer_model *m = tiny_model_with("GatherElements", true, &bytes);
    celer_model *hm = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, hm, 0, 0, 8, NULL, 0);
    celer_sched_queue *q = add_queue(s, m, 16, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    tjob hold, jobs[4];
    int64_t idx[4][4];
    uint64_t seed = 37;
    const int64_t xdims[2] = {2, 3};
    for (int round = 0; round < 2; round++) {
        int bad = round == 0 ? 2 : -1;
        gate_init(&g);
        hold_worker(hold_q, &hold, &g, &ctr);
        for (int i = 0; i < 4; i++) {
            tjob_init(&jobs[i], 2, xdims, NULL, &seed, &ctr);
            for (int k = 0; k < 4; k++) idx[i][k] = (i + k) % 3;
            if (i == bad) idx[i][3] = 7; /* row 1 of X has 3 columns */
            jobs[i].in[1] = (celer_tensor){.dtype = CELER_INT64, .shape = {.rank = 2, .dims = {2, 2}}, .data = idx[i]};
            assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
        }
        gate_release(&g);
        int want = 5 * (round + 1);
        assert_int_equal(counter_wait(&ctr, want, 10000), want);
        for (int i = 0; i < 4; i++) {
            tjob *t = &jobs[i];
            assert_int_equal(atomic_load(&t->calls), 1);
            if (i == bad) {
                assert_int_equal(t->status, CELER_ERR_INVALID);
                if (!strstr(t->msg, "index 7 is out of range")) fail_msg("message: %s", t->msg);
                assert_null(t->out.data);
            } else {
                if (t->status != CELER_OK) fail_msg("job %d: %s", i, t->msg);
                assert_int_equal(t->batch_size, bad < 0 ? 8 : 2);
                assert_int_equal(t->out.shape.rank, 2);
                assert_int_equal(t->out.shape.dims[0], 2);
                assert_int_equal(t->out.shape.dims[1], 2);
                const float *x = t->in[0].data, *y = t->out.data;
                for (int r = 0; r < 2; r++)
                    for (int k = 0; k < 2; k++) assert_true(y[r * 2 + k] == x[r * 3 + idx[i][r * 2 + k]]);
            }
            tjob_free(t);
        }
        tjob_free(&hold);
        gate_destroy(&g);
    }
    celer_sched_queue_remove(s, q);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
    celer_model_free(hm);
}

/* Deadlines are kept while every worker is busy (held in a done callback, as by a long run):
 * queued jobs past their deadline complete with CELER_ERR_TIMEOUT close to it and leave their
 * queue (the depth drops), in a plain and a batching queue, a deadline already past (1 us) at
 * once; jobs without a deadline or with a far one wait and then run. */
static void test_deadline_while_busy(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *plain = add_queue(s, m, 0, 0, 8, NULL, 0);
    celer_sched_queue *batched = add_queue(s, m, 8, 0, 8, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    gate g;
    gate_init(&g);
    tjob hold, jobs[5];
    uint64_t seed = 41;
    const int64_t one[2] = {1, 16};
    hold_worker(hold_q, &hold, &g, &ctr);
    /* after: 0 none; 1 us, 30 ms, 50 ms, an hour; plain gets jobs 0-1, batched 2-4 */
    const int64_t after_ns[5] = {0, 30 * 1000000, 1000, 50 * 1000000, 3600LL * 1000000000};
    for (int i = 0; i < 5; i++) {
        tjob_init(&jobs[i], 2, one, NULL, &seed, &ctr);
        jobs[i].job.deadline_ns = after_ns[i] ? now_ns() + after_ns[i] : 0;
        assert_int_equal(celer_sched_submit(i < 2 ? plain : batched, &jobs[i].job), CELER_OK);
    }
    assert_int_equal(counter_wait(&ctr, 3, 5000), 3);
    for (int i = 1; i < 4; i++) {
        tjob *t = &jobs[i];
        assert_int_equal(atomic_load(&t->calls), 1);
        assert_int_equal(t->status, CELER_ERR_TIMEOUT);
        assert_non_null(strstr(t->msg, " us in the queue"));
        assert_null(t->out.data);
        int64_t late = t->job.end_ns - t->job.deadline_ns;
        if (late < 0 || late > 100 * 1000000)
            fail_msg("job %d completed %lld us after its deadline", i, (long long)(late / 1000));
    }
    assert_int_equal(celer_sched_queue_depth(plain), 1);
    assert_int_equal(celer_sched_queue_depth(batched), 1);
    assert_int_equal(atomic_load(&jobs[0].calls), 0);
    assert_int_equal(atomic_load(&jobs[4].calls), 0);
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 6, 10000), 6);
    check_against_single(m, &jobs[0]);
    check_against_single(m, &jobs[4]);
    for (int i = 0; i < 5; i++) tjob_free(&jobs[i]);
    celer_sched_queue_remove(s, batched);
    celer_sched_queue_remove(s, plain);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);

    /* the deadline thread racing the workers and a removal: every job completes exactly once */
    assert_int_equal(celer_sched_init(2, &s), CELER_OK);
    celer_sched_queue *q = add_queue(s, m, 8, 200, 1000, NULL, 0);
    counter_init(&ctr);
    enum { N = 300 };
    tjob *many = calloc(N, sizeof *many);
    for (int i = 0; i < N; i++) {
        tjob_init(&many[i], 2, one, NULL, &seed, &ctr);
        many[i].job.deadline_ns = i % 4 ? now_ns() + (int64_t)(i % 7) * 300000 : 0;
        assert_int_equal(celer_sched_submit(q, &many[i].job), CELER_OK);
    }
    celer_sched_queue_remove(s, q);
    assert_int_equal(counter_get(&ctr), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&many[i].calls), 1);
        if (many[i].status != CELER_OK) assert_int_equal(many[i].status, CELER_ERR_TIMEOUT);
        if (i % 4 == 0) assert_int_equal(many[i].status, CELER_OK);
        tjob_free(&many[i]);
    }
    free(many);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* A conformance model without a batch dim runs with max_batch_size 0 (inputs as given, from
 * several workers); a batching queue for it is refused. */
static void test_no_batch_dim(void **state) {
    (void)state;
    celer_model *m = load(ONNX_DATA "/node/test_add/model.onnx");
    celer_sched *s;
    assert_int_equal(celer_sched_init(2, &s), CELER_OK);
    celer_sched_queue_options o = {.max_batch_size = 4};
    celer_sched_queue *q = NULL;
    assert_int_equal(celer_sched_queue_add(s, m, &o, &q), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "variable first dimension"));
    q = add_queue(s, m, 0, 0, 64, NULL, 0);
    counter ctr;
    counter_init(&ctr);
    enum { N = 40 };
    tjob jobs[N];
    uint64_t seed = 31;
    const int64_t dims[3] = {3, 4, 5};
    for (int i = 0; i < N; i++) {
        tjob_init(&jobs[i], 3, dims, NULL, &seed, &ctr);
        jobs[i].in[1] = jobs[i].in[0];
        jobs[i].in[1].data = (float *)jobs[i].in[0].data; /* x + x */
        assert_int_equal(celer_sched_submit(q, &jobs[i].job), CELER_OK);
    }
    assert_int_equal(counter_wait(&ctr, N, 10000), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].batch_size, 1);
        check_against_single(m, &jobs[i]);
        const float *x = jobs[i].in[0].data, *y = jobs[i].out.data;
        for (int k = 0; k < 60; k++) assert_true(y[k] == x[k] + x[k]);
        tjob_free(&jobs[i]);
    }
    celer_sched_queue_remove(s, q);
    celer_sched_free(s);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* Bad jobs and options are refused cleanly, without calling done. */
static void test_submit_errors(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    celer_sched *s;
    assert_int_equal(celer_sched_init(1, &s), CELER_OK);
    celer_sched_queue_options bad = {.max_batch_size = 4, .n_preferred = 1, .preferred_batch_size = {8}};
    celer_sched_queue *q = NULL;
    assert_int_equal(celer_sched_queue_add(s, m, &bad, &q), CELER_ERR_INVALID);
    bad = (celer_sched_queue_options){.max_batch_size = -1};
    assert_int_equal(celer_sched_queue_add(s, m, &bad, &q), CELER_ERR_INVALID);
    bad = (celer_sched_queue_options){.max_batch_size = 4, .max_queue_delay_us = -5};
    assert_int_equal(celer_sched_queue_add(s, m, &bad, &q), CELER_ERR_INVALID);
    q = add_queue(s, m, 4, 0, 0, NULL, 0); /* max_queue_size 0: the default cap */
    celer_sched_queue_set_name(q, "mlp");
    counter ctr;
    counter_init(&ctr);
    tjob t;
    const int64_t big[2] = {5, 16}, scalar[1] = {1};
    uint64_t seed = 37;
    tjob_init(&t, 2, big, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &t.job), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "batch size 5 is above max_batch_size 4"));
    tjob_free(&t);
    tjob_init(&t, 0, scalar, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &t.job), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "input 'features'"));
    tjob_free(&t);
    /* a shape error from the runtime reaches the job with the runtime's message */
    const int64_t wrong[2] = {2, 15};
    tjob_init(&t, 2, wrong, NULL, &seed, &ctr);
    assert_int_equal(celer_sched_submit(q, &t.job), CELER_OK);
    assert_int_equal(counter_wait(&ctr, 1, 10000), 1);
    assert_int_equal(t.status, CELER_ERR_SHAPE);
    assert_non_null(strstr(t.msg, "[2,15]"));
    tjob_free(&t);
    /* full default queue */
    enum { N = 1100 };
    tjob *many = calloc(N, sizeof *many);
    const int64_t one[2] = {1, 16};
    celer_sched_queue *hold_q = add_queue(s, m, 0, 0, 8, NULL, 0);
    gate g;
    gate_init(&g);
    tjob hold;
    hold_worker(hold_q, &hold, &g, &ctr);
    static float row[16];
    int ok = 0;
    for (int i = 0; i < N; i++) {
        tjob_init(&many[i], 2, one, row, NULL, &ctr);
        if (celer_sched_submit(q, &many[i].job) == CELER_OK) ok++;
    }
    assert_int_equal(ok, 1024);
    gate_release(&g);
    assert_int_equal(counter_wait(&ctr, 2 + ok, 20000), 2 + ok);
    for (int i = 0; i < N; i++) tjob_free(&many[i]);
    free(many);
    celer_sched_queue_remove(s, q);
    celer_sched_queue_remove(s, hold_q);
    celer_sched_free(s);
    tjob_free(&hold);
    gate_destroy(&g);
    counter_destroy(&ctr);
    celer_model_free(m);
}

/* ---- throughput (printed, not asserted) ---- */

typedef struct client {
    celer_sched_queue *q;
    float *row;
    atomic_bool *stop;
    long n, batch_sum;
    int errors;
} client;

static void *client_main(void *p) {
    client *c = p;
    sem_t sem;
    sem_init(&sem, 0, 0);
    tjob t;
    const int64_t one[2] = {1, 16};
    while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
        tjob_init(&t, 2, one, c->row, NULL, NULL);
        t.sem = &sem;
        if (celer_sched_submit(c->q, &t.job)) {
            c->errors++;
            usleep(100);
            continue;
        }
        sem_wait(&sem);
        if (t.status) c->errors++;
        free(t.out.data);
        c->batch_sum += t.batch_size;
        __atomic_add_fetch(&c->n, 1, __ATOMIC_RELAXED);
    }
    sem_destroy(&sem);
    return NULL;
}

static double measure(const celer_model *m, int workers, int max_batch, int clients, double seconds, double *mean_batch) {
    celer_sched *s;
    assert_int_equal(celer_sched_init(workers, &s), CELER_OK);
    celer_sched_queue *q = add_queue(s, m, max_batch, 0, 1024, NULL, 0);
    static float rows[64][16];
    uint64_t seed = 41;
    tu_fill_random(&rows[0][0], 64 * 16, -1, 1, &seed);
    atomic_bool stop = false;
    client *cs = calloc((size_t)clients, sizeof *cs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    for (int i = 0; i < clients; i++) {
        cs[i] = (client){.q = q, .row = rows[i % 64], .stop = &stop};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    usleep(100 * 1000); /* warm-up */
    long n0 = 0;
    for (int i = 0; i < clients; i++) n0 += __atomic_load_n(&cs[i].n, __ATOMIC_RELAXED);
    int64_t t0 = now_ns();
    usleep((useconds_t)(seconds * 1e6));
    long n1 = 0;
    for (int i = 0; i < clients; i++) n1 += __atomic_load_n(&cs[i].n, __ATOMIC_RELAXED);
    int64_t t1 = now_ns();
    atomic_store(&stop, true);
    int errors = 0;
    long jobs = 0, batch_sum = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        errors += cs[i].errors;
        jobs += cs[i].n;
        batch_sum += cs[i].batch_sum;
    }
    assert_int_equal(errors, 0);
    *mean_batch = jobs ? (double)batch_sum / (double)jobs : 0;
    celer_sched_queue_remove(s, q);
    celer_sched_free(s);
    free(cs);
    free(th);
    return (double)(n1 - n0) / ((double)(t1 - t0) / 1e9);
}

static void test_throughput(void **state) {
    (void)state;
    celer_model *m = load(mlp_path());
    const char *env = getenv("CELER_SCHED_BENCH_SECONDS");
    double seconds = env ? atof(env) : 1.0;
    int workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double mean0, mean32;
    double unbatched = measure(m, workers, 0, 64, seconds, &mean0);
    double batched = measure(m, workers, 32, 64, seconds, &mean32);
    printf("throughput (MLP, %d workers, 64 closed-loop submitters, %.1f s each): max_batch_size 0: %.0f jobs/s; "
           "max_batch_size 32: %.0f jobs/s, mean batch %.1f rows (x%.2f)\n",
           workers, seconds, unbatched, batched, mean32, batched / unbatched);
    celer_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_single),
        cmocka_unit_test(test_keep_outputs),
        cmocka_unit_test(test_concurrent_submitters),
        cmocka_unit_test(test_preferred_sizes),
        cmocka_unit_test(test_delay_partial_batch),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_cancelled),
        cmocka_unit_test(test_remove_drains),
        cmocka_unit_test(test_free_with_queued),
        cmocka_unit_test(test_mixed_shapes),
        cmocka_unit_test(test_unsplittable_outputs),
        cmocka_unit_test(test_failing_job_in_batch),
        cmocka_unit_test(test_deadline_while_busy),
        cmocka_unit_test(test_no_batch_dim),
        cmocka_unit_test(test_submit_errors),
        cmocka_unit_test(test_throughput),
    };
    if (getenv("CELER_TEST_FILTER")) cmocka_set_test_filter(getenv("CELER_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
