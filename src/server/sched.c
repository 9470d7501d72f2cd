/* Scheduler: bounded per-model queues, dynamic batching and one worker pool (see sched.h).
 *
 * Locking: one mutex (s->mu) guards every queue's job list and counters. It is held only to pick
 * a queue, move job pointers and update counters; never while a model runs, inputs are copied or
 * a `done` callback runs. Workers wait on s->work (CLOCK_MONOTONIC, so a queue waiting for its
 * max_queue_delay is a timed wait that never keeps a worker from other queues' ready work).
 *
 * Fairness: among queues with a batch ready, a worker takes the one whose oldest job has waited
 * longest.
 *
 * Batching (max_batch_size > 0): jobs carry a leading batch dim. A batch is the queue's oldest
 * job plus the following jobs (FIFO) whose inputs have the same dtypes and non-batch dims (jobs of
 * other shapes are looked past, at most SKIP_LIMIT of them, and batched later: shapes never mix),
 * with rows summing to <= max_batch_size (and to <= BATCH_BYTES_CAP bytes per input). With
 * preferred sizes, the largest preferred size that prefix sums reach is taken at once; otherwise
 * the batch waits (at most max_queue_delay from its oldest job's arrival) until it reaches the
 * largest preferred size, or max_batch_size when none are given. A queue being removed or a
 * scheduler being freed never waits.
 *
 * Models whose outputs cannot be split by rows (an output's first dim differs from the batch's
 * rows, e.g. a model reducing over the batch) are detected on the first such batch: its jobs are
 * rerun one by one and the queue runs single jobs from then on. A batch whose run fails is rerun
 * one by one too (the queue keeps batching): the failure may come from one job's input (an index
 * out of range), and only that job should fail.
 *
 * Deadlines: a worker completes an expired job it takes with CELER_ERR_TIMEOUT. So that a job
 * expires on time while every worker is busy, a reaper thread sleeps until the earliest deadline
 * of a queued job (s->reap_at), unlinks the expired jobs and completes them. Submit signals it
 * only for a deadline earlier than the one it sleeps until: no cost for jobs without one. A scan
 * walks the queues holding jobs with a deadline; REAP_SLACK_NS bounds how often.
 *
 * Contexts: q->ctx[w] belongs to worker w, made on its first batch for q, freed by
 * celer_sched_queue_remove once q has drained (or by celer_sched_free after the join). */
#include "server/sched.h"
#include "server/trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024
#define DEFAULT_QUEUE_SIZE 1024          /* when max_queue_size <= 0 (Triton: unbounded) */
#define MAX_QUEUE_SIZE (1 << 20)
#define MAX_BATCH_SIZE (1 << 20)
#define MAX_DELAY_US (3600LL * 1000000)   /* an hour: keeps enqueue + delay far from overflow */
#define BATCH_BYTES_CAP ((size_t)256 << 20) /* per input of one concatenated batch */
#define SKIP_LIMIT 64                    /* jobs of other shapes looked past when forming a batch */
#define REAP_SLACK_NS 1000000            /* the reaper sleeps at least this long between scans: when
                                            jobs expire back to back it scans 1000 times a second,
                                            not once per job, and a job ends <= 1 ms late */

typedef struct worker {
    celer_sched *s;
    int index;
    pthread_t thread;
    /* batch scratch, grown as needed, touched only by this worker */
    int cap_in, cap_out;
    celer_tensor *in;  /* concatenated inputs */
    void **buf;        /* their data (64-byte aligned) */
    size_t *buf_cap;
    celer_tensor *out; /* one job's output slices */
    size_t *out_row_bytes;
    char msg[1024];
} worker;

struct celer_sched_queue {
    celer_sched *s;
    const celer_model *model;
    celer_sched_queue_options opts;
    int max_queue_size;
    int target_rows; /* largest preferred size, else max_batch_size */
    char name[256];
    int n_inputs, n_outputs;
    celer_context **ctx; /* [n_workers], see above */
    celer_job *head, *tail;
    atomic_int depth;    /* jobs queued; written under s->mu, read lock-free for the gauge */
    atomic_int admitted; /* requests admitted from their headers, body still on its way */
    int running;         /* batches taken and not yet completed */
    bool removing;
    bool single_only;    /* outputs cannot be split by rows */
    int n_deadlines;     /* queued jobs with a deadline: the reaper skips queues without */
    pthread_cond_t drained;
    celer_sched_queue *prev, *next;
};

struct celer_sched {
    pthread_mutex_t mu;
    pthread_cond_t work;
    bool stopping;
    bool cancelled; /* celer_sched_cancel: submits are refused */
    int n_workers, n_started, n_idle;
    worker *workers;
    celer_sched_queue *queues;
    pthread_t reaper;
    bool reaper_started;
    pthread_cond_t reap;  /* wakes the reaper: an earlier deadline was queued, or stopping */
    int64_t reap_at;      /* deadline the reaper sleeps until; INT64_MAX none; 0 while it is awake
                             (it rescans every queue before sleeping again) */
    char reap_msg[128];   /* the reaper's message buffer */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool batching(const celer_sched_queue *q) { return q->opts.max_batch_size > 0; }

/* Rows of a job of a batching queue (submit checked every input has this first dim). */
static int64_t job_rows(const celer_sched_queue *q, const celer_job *j) {
    return q->n_inputs > 0 ? j->inputs[0].shape.dims[0] : 0;
}

/* Bytes of one row of t (element size times the non-batch dims); SIZE_MAX on overflow. */
static size_t row_bytes(const celer_tensor *t) {
    size_t n = celer_dtype_size(t->dtype);
    for (int r = 1; r < t->shape.rank; r++)
        if (t->shape.dims[r] < 0 || celer_mul_size(n, (size_t)t->shape.dims[r], &n)) return SIZE_MAX;
    return n;
}

/* May j be batched with the batch started by head: same dtypes and non-batch dims, rows > 0. */
static bool batchable_with(const celer_sched_queue *q, const celer_job *head, const celer_job *j) {
    if (j == head || q->opts.batch_fn) return true;
    if (job_rows(q, j) <= 0) return false;
    for (int i = 0; i < q->n_inputs; i++) {
        const celer_tensor *a = &head->inputs[i], *b = &j->inputs[i];
        if (a->dtype != b->dtype || a->shape.rank != b->shape.rank) return false;
        for (int r = 1; r < a->shape.rank; r++)
            if (a->shape.dims[r] != b->shape.dims[r]) return false;
    }
    return true;
}

static bool is_preferred(const celer_sched_queue *q, int64_t rows) {
    for (int i = 0; i < q->opts.n_preferred; i++)
        if (q->opts.preferred_batch_size[i] == rows) return true;
    return false;
}

typedef struct plan {
    bool ready;
    int n_take;      /* batchable jobs to take, in FIFO order from the head */
    int64_t wake_ns; /* when not ready: when the oldest job's delay runs out */
} plan;

/* Decides whether q has a batch to run now (caller holds s->mu; q non-empty). `flush`: never
 * wait for a fuller batch. */
static plan plan_queue(const celer_sched_queue *q, int64_t now, bool flush) {
    plan p = {.ready = true, .n_take = 1};
    const celer_job *head = q->head;
    if (q->opts.batch_fn) { /* everything queued, up to the cap: batch_fn work is cheap per job */
        int depth = atomic_load_explicit(&q->depth, memory_order_relaxed);
        int cap = q->opts.max_batch_size > 0 ? q->opts.max_batch_size : 1;
        p.n_take = CELER_MAX(1, CELER_MIN(depth, cap));
        int64_t wake = head->enqueue_ns + q->opts.max_queue_delay_us * 1000;
        if (depth < cap && !flush && now < wake && q->opts.batch_wait && q->opts.batch_wait(q->opts.batch_user)) {
            p.ready = false;
            p.wake_ns = wake;
        }
        return p;
    }
    if (!batching(q) || q->single_only) return p;
    /* an expired oldest job is completed now rather than after the batch's delay */
    if (head->deadline_ns > 0 && now >= head->deadline_ns) return p;
    int64_t limit = q->opts.max_batch_size;
    size_t rb = 0;
    for (int i = 0; i < q->n_inputs; i++) rb = CELER_MAX(rb, row_bytes(&head->inputs[i]));
    if (rb > 0) limit = CELER_MIN(limit, (int64_t)(BATCH_BYTES_CAP / rb));
    if (job_rows(q, head) <= 0 || job_rows(q, head) >= limit) return p; /* runs alone */

    int64_t rows = 0;
    int n = 0, best = 0, skipped = 0;
    bool full = false;
    for (const celer_job *j = head; j; j = j->next) {
        if (!batchable_with(q, head, j)) {
            if (++skipped > SKIP_LIMIT) break;
            continue;
        }
        int64_t r = job_rows(q, j);
        if (rows + r > limit) {
            full = true;
            break;
        }
        rows += r;
        n++;
        if (is_preferred(q, rows)) best = n;
        if (rows == limit) {
            full = true;
            break;
        }
    }
    if (best) {
        p.n_take = best;
        return p;
    }
    p.n_take = n;
    int64_t wake = head->enqueue_ns + q->opts.max_queue_delay_us * 1000;
    if (full || rows >= q->target_rows || flush || now >= wake) return p;
    p.ready = false;
    p.wake_ns = head->deadline_ns > 0 ? CELER_MIN(wake, head->deadline_ns) : wake;
    return p;
}

/* Unlinks the first n batchable jobs (as plan_queue counted them) and returns them linked by
 * ->next. Caller holds s->mu. */
static celer_job *take_jobs(celer_sched_queue *q, int n) {
    celer_job *head = q->head, *batch = NULL, **tail = &batch, *prev = NULL;
    int taken = 0;
    for (celer_job *j = head, *next; j && taken < n; j = next) {
        next = j->next;
        if (!batchable_with(q, head, j)) {
            prev = j;
            continue;
        }
        if (prev) prev->next = next;
        else q->head = next;
        if (q->tail == j) q->tail = prev;
        j->next = NULL;
        *tail = j;
        tail = &j->next;
        taken++;
        if (j->deadline_ns > 0) q->n_deadlines--;
    }
    atomic_store_explicit(&q->depth, atomic_load_explicit(&q->depth, memory_order_relaxed) - taken,
                          memory_order_relaxed);
    return batch;
}

/* ---- running ---- */

/* Completes j, past its deadline at `now`, with CELER_ERR_TIMEOUT without running it; the
 * message is written into msg[cap]. */
static void expire_job(celer_job *j, int64_t now, char *msg, size_t cap) {
    snprintf(msg, cap, "request timed out after %lld us in the queue", (long long)((now - j->enqueue_ns) / 1000));
    j->start_ns = j->input_end_ns = j->end_ns = now;
    j->batch_size = 0;
    j->batch_first = true;
    j->run = NULL;
    j->done(j, CELER_ERR_TIMEOUT, msg, NULL, 0);
}

/* Completes j, whose client went away while it was queued, with CELER_ERR_CANCELLED without
 * running it. */
static void cancel_job(celer_job *j, int64_t now) {
    j->start_ns = j->input_end_ns = j->end_ns = now;
    j->batch_size = 0;
    j->batch_first = true;
    j->run = NULL;
    j->done(j, CELER_ERR_CANCELLED, "the request was cancelled by its client before it ran", NULL, 0);
}

static void fail_job(worker *w, celer_job *j, celer_status st, int64_t start, int64_t end, int batch) {
    j->start_ns = j->input_end_ns = start;
    j->end_ns = end;
    j->batch_size = batch;
    j->batch_first = true;
    j->run = NULL;
    j->done(j, st, w->msg, NULL, 0);
}

/* ---- outputs kept past done ---- */

/* One model run whose outputs the jobs it answers are being handed (on the worker's stack). */
typedef struct sched_run {
    worker *w;
    const celer_sched_queue *q;
    celer_context *ctx;
    const celer_tensor *outs; /* the run's outputs (batched: the whole batch's) */
    celer_sched_hold *hold;   /* made by the first keep; the run holds one reference until its jobs are answered */
} sched_run;

struct celer_sched_hold {
    atomic_int refs;
    celer_outputs_hold *mem;
    int n_bufs;
    void *bufs[]; /* the worker's batch buffers an output views (a batched Identity's) */
};

celer_status celer_sched_keep_outputs(const celer_job *job, celer_sched_hold **out) {
    sched_run *run = job->run;
    if (!run || !run->ctx) return celer_errorf(CELER_ERR_UNSUPPORTED, "the job ran no model: nothing to keep");
    if (!run->hold) {
        const celer_sched_queue *q = run->q;
        worker *w = run->w;
        celer_outputs_hold *mem;
        CELER_TRY(celer_context_keep_outputs(run->ctx, &mem));
        celer_sched_hold *h = malloc(sizeof *h + (size_t)q->n_inputs * sizeof h->bufs[0]);
        if (!h) {
            celer_outputs_release(mem);
            return celer_errorf(CELER_ERR_NOMEM, "out of memory keeping a run's outputs");
        }
        atomic_init(&h->refs, 1);
        h->mem = mem;
        h->n_bufs = 0;
        for (int o = 0; o < q->n_outputs; o++) {
            size_t bytes = 0;
            const celer_tensor *t = &run->outs[o];
            if (celer_tensor_bytes(t, &bytes) || !bytes || celer_outputs_hold_covers(mem, t->data, bytes)) continue;
            for (int i = 0; i < w->cap_in && i < q->n_inputs; i++) { /* a view of a batch buffer: take it */
                const char *b = w->buf[i], *d = t->data;
                if (b && d >= b && d < b + w->buf_cap[i]) {
                    h->bufs[h->n_bufs++] = w->buf[i];
                    w->buf[i] = NULL;
                    w->buf_cap[i] = 0;
                }
            }
        }
        run->hold = h;
    }
    atomic_fetch_add(&run->hold->refs, 1);
    *out = run->hold;
    return CELER_OK;
}

void celer_sched_release(celer_sched_hold *h) {
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1) return;
    celer_outputs_release(h->mem);
    for (int i = 0; i < h->n_bufs; i++) free(h->bufs[i]);
    free(h);
}

/* Copies the calling thread's error message, which the next celer call may overwrite. */
static void keep_message(worker *w) { snprintf(w->msg, sizeof w->msg, "%s", celer_error_message()); }

/* Reports a successful execution to the queue's on_batch (after its jobs' done callbacks: q lives
 * until this worker's batch is counted off in worker_main). */
static void report_batch(const celer_sched_queue *q, int64_t rows, int64_t start, int64_t input_end, int64_t end) {
    if (!q->opts.on_batch) return;
    celer_sched_batch b = {.rows = rows, .input_ns = input_end - start, .infer_ns = end - input_end,
                           .output_ns = now_ns() - end};
    q->opts.on_batch(q->opts.on_batch_user, &b);
}

/* The span of an execution of q's model (trace.h) when any of its jobs is traced: a trace of its
 * own, linked to the spans of the traced requests it served. Before the jobs' done calls (a job
 * may be gone after its own); nothing at all when none is traced. */
static void trace_batch(const celer_sched_queue *q, const celer_job *list, bool one, int64_t rows, int64_t start,
                        int64_t input_end, int64_t end) {
    const celer_job *j = list;
    while (j && !j->span && !one) j = j->next;
    if (!j || !j->span) return;
    celer_span s;
    celer_span_begin(&s, NULL, CELER_SPAN_INTERNAL, NULL, NULL, start);
    celer_span_name(&s, "batch ", q->name);
    celer_span_attr_str(&s, "celer.model", q->name);
    celer_span_attr_int(&s, "celer.batch_size", rows);
    celer_span_event_at(&s, "compute start", input_end, NULL, 0);
    for (; j; j = one ? NULL : j->next)
        if (j->span) celer_span_link_to(&s, j->span);
    celer_span_end(&s, end);
}

/* Runs one job with its inputs as given (nothing to copy: its compute input is nil). */
static void run_one(worker *w, celer_sched_queue *q, celer_context *ctx, celer_job *j, int batch) {
    const celer_tensor *outs = NULL;
    int64_t start = now_ns();
    celer_status st = q->model ? celer_context_run(ctx, j->inputs, &outs) : CELER_OK; /* a task: done is the work */
    int64_t end = now_ns();
    if (st) {
        keep_message(w);
        fail_job(w, j, st, start, end, batch);
        return;
    }
    j->start_ns = j->input_end_ns = start;
    j->end_ns = end;
    j->batch_size = batch;
    j->batch_first = true;
    if (j->span && q->model) trace_batch(q, j, true, batch, start, start, end);
    sched_run run = {w, q, ctx, outs, NULL};
    j->run = q->model ? &run : NULL; /* a task's job has no run to keep */
    j->done(j, CELER_OK, "", outs, q->n_outputs); /* j may be gone from here on */
    celer_sched_release(run.hold);
    if (q->model) report_batch(q, batch, start, start, end);
}

static void run_each(worker *w, celer_sched_queue *q, celer_context *ctx, celer_job *list) {
    for (celer_job *j = list, *next; j; j = next) {
        next = j->next; /* done may free j */
        run_one(w, q, ctx, j, batching(q) ? (int)job_rows(q, j) : 1);
    }
}

/* Grows the worker's scratch arrays to the queue's input/output counts. */
static bool ensure_scratch(worker *w, const celer_sched_queue *q) {
    if (q->n_inputs > w->cap_in) {
        int n = q->n_inputs;
        celer_tensor *in = realloc(w->in, (size_t)n * sizeof *in);
        if (in) w->in = in;
        void **buf = realloc(w->buf, (size_t)n * sizeof *buf);
        if (buf) w->buf = buf;
        size_t *cap = realloc(w->buf_cap, (size_t)n * sizeof *cap);
        if (cap) w->buf_cap = cap;
        if (!in || !buf || !cap) return false;
        for (int i = w->cap_in; i < n; i++) {
            w->buf[i] = NULL;
            w->buf_cap[i] = 0;
        }
        w->cap_in = n;
    }
    if (q->n_outputs > w->cap_out) {
        int n = q->n_outputs;
        celer_tensor *out = realloc(w->out, (size_t)n * sizeof *out);
        if (out) w->out = out;
        size_t *rb = realloc(w->out_row_bytes, (size_t)n * sizeof *rb);
        if (rb) w->out_row_bytes = rb;
        if (!out || !rb) return false;
        w->cap_out = n;
    }
    return true;
}

/* Makes input buffer i hold at least `bytes` (contents not kept). */
static bool ensure_buffer(worker *w, int i, size_t bytes) {
    if (bytes <= w->buf_cap[i]) return true;
    size_t cap = CELER_MAX(bytes, CELER_MIN(w->buf_cap[i] * 2, BATCH_BYTES_CAP));
    cap = (cap + 63) & ~(size_t)63;
    free(w->buf[i]);
    w->buf[i] = aligned_alloc(64, cap);
    w->buf_cap[i] = w->buf[i] ? cap : 0;
    return w->buf[i] != NULL;
}

/* Concatenates the jobs' inputs along dim 0, runs once and hands each job its output rows. */
static void run_batched(worker *w, celer_sched_queue *q, celer_context *ctx, celer_job *list, int64_t rows) {
    if (!ensure_scratch(w, q)) {
        run_each(w, q, ctx, list);
        return;
    }
    int64_t start = now_ns(); /* compute input: the copies below */
    for (int i = 0; i < q->n_inputs; i++) {
        const celer_tensor *t0 = &list->inputs[i];
        size_t rb = row_bytes(t0), total;
        if (rb == SIZE_MAX || celer_mul_size(rb, (size_t)rows, &total) || total > BATCH_BYTES_CAP ||
            !ensure_buffer(w, i, total)) {
            run_each(w, q, ctx, list); /* too big to concatenate (or no memory): one by one */
            return;
        }
        char *dst = w->buf[i];
        for (const celer_job *j = list; j; j = j->next) {
            size_t bytes = rb * (size_t)job_rows(q, j);
            if (bytes) memcpy(dst, j->inputs[i].data, bytes);
            dst += bytes;
        }
        w->in[i] = *t0;
        w->in[i].shape.dims[0] = rows;
        w->in[i].data = w->buf[i];
    }

    const celer_tensor *outs = NULL;
    int64_t input_end = now_ns();
    celer_status st = celer_context_run(ctx, w->in, &outs);
    int64_t end = now_ns();
    if (st) {
        /* the cause may be one job's input (an index out of range, a value a kernel refuses):
         * rerun the jobs one by one, as for unsplittable outputs, so only the guilty fail and
         * each failure names its own input; the queue goes on batching */
        run_each(w, q, ctx, list);
        return;
    }
    bool splittable = true;
    for (int o = 0; o < q->n_outputs; o++) {
        size_t bytes;
        if (outs[o].shape.rank < 1 || outs[o].shape.dims[0] != rows || celer_tensor_bytes(&outs[o], &bytes)) {
            splittable = false;
            break;
        }
        w->out_row_bytes[o] = bytes / (size_t)rows;
    }
    if (!splittable) {
        pthread_mutex_lock(&q->s->mu);
        q->single_only = true;
        pthread_mutex_unlock(&q->s->mu);
        run_each(w, q, ctx, list);
        return;
    }
    int64_t row = 0;
    trace_batch(q, list, false, rows, start, input_end, end);
    sched_run run = {w, q, ctx, outs, NULL};
    for (celer_job *j = list, *next; j; j = next) {
        next = j->next;
        int64_t r = job_rows(q, j);
        for (int o = 0; o < q->n_outputs; o++) {
            w->out[o] = outs[o];
            w->out[o].shape.dims[0] = r;
            w->out[o].data = (char *)outs[o].data + (size_t)row * w->out_row_bytes[o];
        }
        row += r;
        j->start_ns = start;
        j->input_end_ns = input_end;
        j->end_ns = end;
        j->batch_size = (int)rows;
        j->batch_first = j == list;
        j->run = &run;
        j->done(j, CELER_OK, "", w->out, q->n_outputs);
    }
    celer_sched_release(run.hold);
    report_batch(q, rows, start, input_end, end);
}

/* Completes expired and cancelled jobs, then runs the rest (one batch, or one by one). */
static void run_batch(worker *w, celer_sched_queue *q, celer_job *list) {
    int64_t now = now_ns();
    celer_job *live = NULL, **tail = &live;
    int n_live = 0;
    int64_t rows = 0;
    for (celer_job *j = list, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->deadline_ns > 0 && now >= j->deadline_ns) {
            expire_job(j, now, w->msg, sizeof w->msg);
            continue;
        }
        if (j->cancelled && atomic_load_explicit(j->cancelled, memory_order_relaxed)) {
            cancel_job(j, now);
            continue;
        }
        *tail = j;
        tail = &j->next;
        n_live++;
        if (batching(q)) rows += job_rows(q, j);
    }
    if (!live) return;
    if (q->opts.batch_fn) {
        celer_job *jobs[CELER_MAX_BATCH_JOBS];
        int n = 0;
        for (celer_job *j = live, *next; j; j = next) {
            next = j->next;
            j->start_ns = j->input_end_ns = now;
            j->batch_size = n_live;
            j->batch_first = j == live;
            jobs[n++] = j;
            if (n == (int)CELER_ARRAY_LEN(jobs) || !next) {
                q->opts.batch_fn(q->opts.batch_user, jobs, n);
                n = 0;
            }
        }
        return;
    }
    celer_context **ctx = &q->ctx[w->index];
    if (!q->model) {
        run_each(w, q, NULL, live);
        return;
    }
    if (!*ctx) {
        celer_status st = celer_context_init(q->model, ctx);
        if (st) {
            *ctx = NULL;
            keep_message(w);
            for (celer_job *j = live, *next; j; j = next) {
                next = j->next;
                fail_job(w, j, st, now, now, 0);
            }
            return;
        }
    }
    if (n_live == 1 || !batching(q)) run_each(w, q, *ctx, live);
    else run_batched(w, q, *ctx, live, rows);
}

static void free_worker_scratch(worker *w) {
    for (int i = 0; i < w->cap_in; i++) free(w->buf[i]);
    free(w->in);
    free(w->buf);
    free(w->buf_cap);
    free(w->out);
    free(w->out_row_bytes);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    celer_sched *s = w->s;
    pthread_setname_np(pthread_self(), "celer-worker"); /* for top, perf, and counting them in a container */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int64_t now = now_ns(), wake = INT64_MAX;
        celer_sched_queue *best = NULL;
        plan best_plan = {0};
        int n_nonempty = 0;
        for (celer_sched_queue *q = s->queues; q; q = q->next) {
            if (!q->head) continue;
            n_nonempty++;
            plan p = plan_queue(q, now, s->stopping || q->removing);
            if (!p.ready) {
                wake = CELER_MIN(wake, p.wake_ns);
                continue;
            }
            if (!best || q->head->enqueue_ns < best->head->enqueue_ns) {
                best = q;
                best_plan = p;
            }
        }
        if (best) {
            celer_job *list = take_jobs(best, best_plan.n_take);
            best->running++;
            /* more work may be ready: hand it to an idle worker rather than serialise it */
            if (s->n_idle > 0 && (n_nonempty > 1 || best->head)) pthread_cond_signal(&s->work);
            pthread_mutex_unlock(&s->mu);
            run_batch(w, best, list);
            pthread_mutex_lock(&s->mu);
            if (--best->running == 0 && best->removing && !best->head) pthread_cond_broadcast(&best->drained);
            continue;
        }
        if (s->stopping && n_nonempty == 0) break;
        s->n_idle++;
        if (wake == INT64_MAX) {
            pthread_cond_wait(&s->work, &s->mu);
        } else {
            struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
            pthread_cond_timedwait(&s->work, &s->mu, &ts);
        }
        s->n_idle--;
    }
    pthread_mutex_unlock(&s->mu);
    free_worker_scratch(w);
    return NULL;
}

/* ---- reaper ---- */

/* Unlinks q's queued jobs whose deadline is <= now and returns them linked by ->next; lowers
 * *next to the earliest deadline among the jobs left. Caller holds s->mu. */
static celer_job *take_expired(celer_sched_queue *q, int64_t now, int64_t *next) {
    celer_job *expired = NULL, **tail = &expired, *prev = NULL;
    int taken = 0;
    for (celer_job *j = q->head, *after; j; j = after) {
        after = j->next;
        if (j->deadline_ns <= 0 || j->deadline_ns > now) {
            if (j->deadline_ns > 0) *next = CELER_MIN(*next, j->deadline_ns);
            prev = j;
            continue;
        }
        if (prev) prev->next = after;
        else q->head = after;
        if (q->tail == j) q->tail = prev;
        j->next = NULL;
        *tail = j;
        tail = &j->next;
        taken++;
    }
    q->n_deadlines -= taken;
    atomic_store_explicit(&q->depth, atomic_load_explicit(&q->depth, memory_order_relaxed) - taken,
                          memory_order_relaxed);
    return expired;
}

/* Sleeps until the earliest deadline of a queued job, then completes the expired jobs of one
 * queue at a time (counted as running there, so a removal waits for them) and looks again. */
static void *reaper_main(void *arg) {
    celer_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) { /* stopping: the workers complete what is queued, deadlines included */
        int64_t now = now_ns(), next = INT64_MAX;
        celer_sched_queue *q;
        celer_job *expired = NULL;
        for (q = s->queues; q; q = q->next)
            if (q->n_deadlines > 0 && (expired = take_expired(q, now, &next))) break;
        if (expired) {
            q->running++;
            s->reap_at = 0; /* submitters need not wake us: we rescan before sleeping */
            pthread_mutex_unlock(&s->mu);
            for (celer_job *j = expired, *after; j; j = after) {
                after = j->next; /* done may free j */
                expire_job(j, now, s->reap_msg, sizeof s->reap_msg);
            }
            pthread_mutex_lock(&s->mu);
            if (--q->running == 0 && q->removing && !q->head) pthread_cond_broadcast(&q->drained);
            continue;
        }
        s->reap_at = next; /* a deadline after it is seen on this wake-up anyway */
        if (next == INT64_MAX) {
            pthread_cond_wait(&s->reap, &s->mu);
        } else {
            int64_t until = CELER_MAX(next, now + REAP_SLACK_NS);
            struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
            pthread_cond_timedwait(&s->reap, &s->mu, &ts);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- public ---- */

static void free_queue(celer_sched *s, celer_sched_queue *q) {
    for (int i = 0; i < s->n_workers; i++) celer_context_free(q->ctx[i]);
    free(q->ctx);
    pthread_cond_destroy(&q->drained);
    free(q);
}

celer_status celer_sched_init(int n_workers, celer_sched **out) {
    *out = NULL;
    if (n_workers <= 0) n_workers = CELER_MIN(celer_cpu_count(), MAX_WORKERS); /* affinity and cgroup quota */
    if (n_workers > MAX_WORKERS)
        return celer_errorf(CELER_ERR_LIMIT, "scheduler: %d workers asked, at most %d", n_workers, MAX_WORKERS);
    celer_sched *s = calloc(1, sizeof *s);
    worker *ws = calloc((size_t)n_workers, sizeof *ws);
    if (!s || !ws) {
        free(s);
        free(ws);
        return celer_errorf(CELER_ERR_NOMEM, "scheduler: out of memory for %d workers", n_workers);
    }
    s->n_workers = n_workers;
    s->workers = ws;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, &attr);
    pthread_cond_init(&s->reap, &attr);
    pthread_condattr_destroy(&attr);
    s->reap_at = INT64_MAX;
    int err = pthread_create(&s->reaper, NULL, reaper_main, s);
    if (err) {
        celer_sched_free(s);
        return celer_errorf(CELER_ERR_INTERNAL, "scheduler: cannot start the deadline thread: %s", strerror(err));
    }
    s->reaper_started = true;
    for (int i = 0; i < n_workers; i++) {
        ws[i].s = s;
        ws[i].index = i;
        int err = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (err) {
            celer_sched_free(s);
            return celer_errorf(CELER_ERR_INTERNAL, "scheduler: cannot start worker thread %d: %s", i,
                                strerror(err));
        }
        s->n_started++;
    }
    *out = s;
    return CELER_OK;
}

void celer_sched_free(celer_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work);
    pthread_cond_signal(&s->reap);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_started; i++) pthread_join(s->workers[i].thread, NULL);
    if (s->reaper_started) pthread_join(s->reaper, NULL);
    /* the workers ran every queued job before leaving; what is left is empty queues */
    for (celer_sched_queue *q = s->queues, *next; q; q = next) {
        next = q->next;
        free_queue(s, q);
    }
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->reap);
    pthread_mutex_destroy(&s->mu);
    free(s->workers);
    free(s);
}

celer_status celer_sched_queue_add(celer_sched *s, const celer_model *model, const celer_sched_queue_options *opts,
                                   celer_sched_queue **out) {
    *out = NULL;
    if (opts->max_batch_size < 0 || opts->max_batch_size > MAX_BATCH_SIZE)
        return celer_errorf(CELER_ERR_INVALID, "max_batch_size %d is out of range [0, %d]", opts->max_batch_size,
                            MAX_BATCH_SIZE);
    if (opts->n_preferred < 0 || opts->n_preferred > (int)CELER_ARRAY_LEN(opts->preferred_batch_size))
        return celer_errorf(CELER_ERR_INVALID, "%d preferred batch sizes given, at most %d", opts->n_preferred,
                            (int)CELER_ARRAY_LEN(opts->preferred_batch_size));
    /* preferred sizes mean nothing without batching: ignored there */
    int n_preferred = opts->max_batch_size > 0 ? opts->n_preferred : 0;
    int target = opts->max_batch_size;
    for (int i = 0; i < n_preferred; i++) {
        int p = opts->preferred_batch_size[i];
        if (p < 1 || p > opts->max_batch_size)
            return celer_errorf(CELER_ERR_INVALID, "preferred_batch_size %d must be between 1 and max_batch_size %d",
                                p, opts->max_batch_size);
        target = i == 0 ? p : CELER_MAX(target, p);
    }
    if (opts->max_queue_delay_us < 0 || opts->max_queue_delay_us > MAX_DELAY_US)
        return celer_errorf(CELER_ERR_INVALID, "max_queue_delay_microseconds %lld is out of range [0, %lld]",
                            (long long)opts->max_queue_delay_us, (long long)MAX_DELAY_US);
    if (opts->batch_fn && model)
        return celer_errorf(CELER_ERR_INVALID, "batch_fn is for task queues (no model)");
    if (opts->max_queue_size > MAX_QUEUE_SIZE)
        return celer_errorf(CELER_ERR_INVALID, "max_queue_size %d is above %d", opts->max_queue_size,
                            MAX_QUEUE_SIZE);
    int n_in = model ? celer_model_input_count(model) : 0;
    if (opts->max_batch_size > 0) {
        /* batching concatenates along dim 0: every input needs a variable first dim */
        for (int i = 0; i < n_in; i++) {
            const celer_io_desc *d = celer_model_input(model, i);
            if (d->has_shape && (d->shape.rank == 0 || d->shape.dims[0] >= 0)) {
                char buf[128];
                return celer_errorf(CELER_ERR_INVALID,
                                    "max_batch_size %d needs a variable first dimension on every input, but "
                                    "input '%s' has shape %s",
                                    opts->max_batch_size, d->name, celer_shape_str(&d->shape, buf, sizeof buf));
            }
        }
    }
    celer_sched_queue *q = calloc(1, sizeof *q);
    celer_context **ctx = calloc((size_t)s->n_workers, sizeof *ctx);
    if (!q || !ctx) {
        free(q);
        free(ctx);
        return celer_errorf(CELER_ERR_NOMEM, "scheduler: out of memory for a queue");
    }
    q->s = s;
    q->model = model;
    q->opts = *opts;
    q->opts.n_preferred = n_preferred;
    q->max_queue_size = opts->max_queue_size > 0 ? opts->max_queue_size : DEFAULT_QUEUE_SIZE;
    q->target_rows = target;
    q->n_inputs = n_in;
    q->n_outputs = model ? celer_model_output_count(model) : 0;
    q->ctx = ctx;
    const celer_onnx_model *onnx = model ? celer_model_onnx(model) : NULL;
    const char *name = onnx && onnx->graph && onnx->graph->name && *onnx->graph->name ? onnx->graph->name : "?";
    snprintf(q->name, sizeof q->name, "%s", name);
    pthread_cond_init(&q->drained, NULL);
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        free_queue(s, q);
        return celer_errorf(CELER_ERR_INVALID, "scheduler is shutting down");
    }
    q->next = s->queues;
    if (s->queues) s->queues->prev = q;
    s->queues = q;
    pthread_mutex_unlock(&s->mu);
    *out = q;
    return CELER_OK;
}

void celer_sched_queue_set_name(celer_sched_queue *q, const char *name) {
    snprintf(q->name, sizeof q->name, "%s", name ? name : "?");
}

void celer_sched_queue_remove(celer_sched *s, celer_sched_queue *q) {
    if (!q) return;
    pthread_mutex_lock(&s->mu);
    q->removing = true;
    pthread_cond_broadcast(&s->work); /* a batch waiting for its delay runs now */
    while (q->head || q->running) pthread_cond_wait(&q->drained, &s->mu);
    if (q->prev) q->prev->next = q->next;
    else s->queues = q->next;
    if (q->next) q->next->prev = q->prev;
    pthread_mutex_unlock(&s->mu);
    free_queue(s, q);
}

celer_status celer_sched_submit(celer_sched_queue *q, celer_job *job) {
    if (!job || !job->done || (q->n_inputs > 0 && !job->inputs))
        return celer_errorf(CELER_ERR_INVALID, "model %s: job without inputs or completion", q->name);
    if (batching(q)) {
        int64_t rows = 0;
        for (int i = 0; i < q->n_inputs; i++) {
            const celer_tensor *t = &job->inputs[i];
            const char *in_name = celer_model_input(q->model, i)->name;
            if (t->shape.rank < 1)
                return celer_errorf(CELER_ERR_SHAPE,
                                    "model %s input '%s': a scalar has no batch dimension (max_batch_size %d)",
                                    q->name, in_name, q->opts.max_batch_size);
            if (i == 0) rows = t->shape.dims[0];
            else if (t->shape.dims[0] != rows)
                return celer_errorf(CELER_ERR_SHAPE,
                                    "model %s input '%s': batch dimension %lld differs from input '%s' (%lld)",
                                    q->name, in_name, (long long)t->shape.dims[0],
                                    celer_model_input(q->model, 0)->name, (long long)rows);
        }
        if (rows < 0 || rows > q->opts.max_batch_size)
            return celer_errorf(CELER_ERR_SHAPE, "model %s: batch size %lld is above max_batch_size %d", q->name,
                                (long long)rows, q->opts.max_batch_size);
    }
    job->enqueue_ns = now_ns();
    job->start_ns = job->input_end_ns = job->end_ns = 0;
    job->batch_size = 0;
    job->batch_first = false;
    job->next = NULL;
    celer_sched *s = q->s;
    pthread_mutex_lock(&s->mu);
    if (q->removing || s->stopping || s->cancelled) {
        pthread_mutex_unlock(&s->mu);
        if (s->cancelled) return celer_errorf(CELER_ERR_UNAVAILABLE, "the server is shutting down");
        return celer_errorf(CELER_ERR_UNAVAILABLE, "model %s is being unloaded", q->name);
    }
    int depth = atomic_load_explicit(&q->depth, memory_order_relaxed);
    if (depth >= q->max_queue_size) {
        pthread_mutex_unlock(&s->mu);
        return celer_errorf(CELER_ERR_UNAVAILABLE, "queue of model %s is full (max_queue_size %d)", q->name,
                            q->max_queue_size);
    }
    if (q->tail) q->tail->next = job;
    else q->head = job;
    q->tail = job;
    atomic_store_explicit(&q->depth, depth + 1, memory_order_relaxed);
    bool wake = s->n_idle > 0, wake_reaper = false;
    if (job->deadline_ns > 0) {
        q->n_deadlines++;
        /* the reaper sleeps until reap_at: only an earlier deadline needs it awake */
        if (job->deadline_ns < s->reap_at) {
            s->reap_at = job->deadline_ns;
            wake_reaper = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* signalled after unlocking: the woken worker does not block at once on the lock we hold */
    if (wake) pthread_cond_signal(&s->work);
    if (wake_reaper) pthread_cond_signal(&s->reap);
    return CELER_OK;
}

int celer_sched_queue_depth(const celer_sched_queue *q) {
    return atomic_load_explicit(&q->depth, memory_order_relaxed);
}

bool celer_sched_queue_admit(celer_sched_queue *q) {
    int a = atomic_load_explicit(&q->admitted, memory_order_relaxed);
    do {
        if (a + atomic_load_explicit(&q->depth, memory_order_relaxed) >= q->max_queue_size) return false;
    } while (!atomic_compare_exchange_weak_explicit(&q->admitted, &a, a + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void celer_sched_queue_unadmit(celer_sched_queue *q) { atomic_fetch_sub_explicit(&q->admitted, 1, memory_order_relaxed); }

void celer_sched_cancel(celer_sched *s, const char *reason) {
    celer_job *list = NULL, **tail = &list;
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    for (celer_sched_queue *q = s->queues; q; q = q->next) {
        if (q->head) {
            *tail = q->head;
            tail = &q->tail->next;
            q->head = q->tail = NULL;
            q->n_deadlines = 0;
            atomic_store_explicit(&q->depth, 0, memory_order_relaxed);
        }
        if (!q->running) pthread_cond_broadcast(&q->drained);
    }
    pthread_mutex_unlock(&s->mu);
    int64_t now = now_ns();
    while (list) { /* completed outside the lock: a done callback may submit (and be refused) */
        celer_job *j = list;
        list = j->next;
        j->start_ns = j->input_end_ns = j->end_ns = now;
        j->batch_size = 0;
        j->batch_first = false;
        j->done(j, CELER_ERR_UNAVAILABLE, reason, NULL, 0);
    }
}
