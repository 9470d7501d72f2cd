/* Scheduler: per model version a bounded queue with dynamic batching, and one worker pool (sized
 * to the cores) that runs batches, each worker with its own execution context per model.
 * Private to src/server.
 *
 * Flow: the HTTP thread decodes a request into a celer_job and submits it; a worker takes a
 * batch of jobs from one queue (the largest preferred batch size available, else as many as fit
 * in max_batch_size, waiting at most max_queue_delay_us for more while below the preferred size),
 * concatenates their inputs along dim 0 when batching, runs the model once, and calls each job's
 * `done` with its slice of the outputs. When a batch's run fails, its jobs are rerun one by one,
 * so a job whose input makes the model fail fails alone. Jobs past their deadline are completed
 * with CELER_ERR_TIMEOUT ("timed out ... in the queue") without running, at their deadline even
 * while every worker is busy (a scheduler thread watches the queued deadlines); jobs whose client
 * cancelled them complete with CELER_ERR_CANCELLED without running when a worker reaches them. */
#ifndef CELER_SERVER_SCHED_H
#define CELER_SERVER_SCHED_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/base.h"
#include "runtime/runtime.h"

typedef struct celer_sched celer_sched;
typedef struct celer_sched_queue celer_sched_queue;
typedef struct celer_job celer_job;

/* Called once per job, on a worker thread, or for a CELER_ERR_TIMEOUT on the scheduler's deadline
 * thread (a job that expired while queued), never with the scheduler's lock held (it may submit).
 * Callbacks of different jobs may run at the same time. On success `outputs` holds the model's
 * outputs for this job (batch slice), valid only during the call (copy or encode them). */
typedef void (*celer_job_done_fn)(celer_job *job, celer_status status, const char *message,
                                  const celer_tensor *outputs, int n_outputs);

struct celer_job {
    const celer_tensor *inputs; /* one per model input, in model order; owned by the submitter
                                   and untouched until done is called */
    void *task;                 /* for a queue's batch_fn: the job's payload (a pipeline run) */
    int64_t deadline_ns;        /* CLOCK_MONOTONIC; 0 = none */
    const atomic_bool *cancelled; /* optional; set (any thread) when nobody waits for the answer any
                                     more: a queued job is then completed with CELER_ERR_CANCELLED
                                     without running (a running one finishes) */
    celer_job_done_fn done;
    void *user;
    const struct celer_span *span; /* the traced request's span (trace.h), or NULL: the span of the
                                      batch it runs in links to it */
    /* filled by the scheduler, for statistics and metrics (CLOCK_MONOTONIC): queue wait =
     * start - enqueue; compute input (copying the job's inputs into its batch) = input_end -
     * start; compute infer (the run) = end - input_end. Compute output (the job's done callback:
     * its rows of the outputs encoded or handed on) is measured by whoever done returns to. */
    int64_t enqueue_ns, start_ns, input_end_ns, end_ns;
    int batch_size;                       /* rows of the batch this job ran in */
    bool batch_first;                     /* first job of its executed batch: count batches with it */
    celer_job *next;                      /* scheduler-private link */
    struct sched_run *run;                /* scheduler-private: the run whose outputs done is given */
};

/* Outputs made to outlive a job's done callback (an answer streamed to a slow client). */
typedef struct celer_sched_hold celer_sched_hold;
/* From within job's done callback, on its worker, for the outputs it was given (CELER_OK):
 * makes every output's data stay valid until celer_sched_release, whatever the worker runs next.
 * The run's memory is taken from the execution context (which allocates afresh for its next run)
 * and so are the worker's batch buffers an output views; the jobs of one batch share one hold.
 * Constants and a job's own inputs need nothing. BYTES outputs: the celer_str arrays are kept, the
 * bytes they point to are not (kernels keep them in state of their own). CELER_ERR_UNSUPPORTED
 * for a job with no model run (a task queue's), CELER_ERR_NOMEM when the hold cannot be made. */
celer_status celer_sched_keep_outputs(const celer_job *job, celer_sched_hold **out);
/* Drops a hold (any thread); the memory goes when the last holder drops it. NULL: nothing. */
void celer_sched_release(celer_sched_hold *h);
/* One successful execution of a queue's model, as on_batch reports it. */
typedef struct celer_sched_batch {
    int64_t rows;      /* rows of the batch (1 for a queue that does not batch) */
    int64_t input_ns;  /* copying the jobs' inputs into the batch (0 for a lone job, run in place) */
    int64_t infer_ns;  /* the run */
    int64_t output_ns; /* from the run's end until the last job's done returned */
} celer_sched_batch;

typedef struct celer_sched_queue_options {
    int max_batch_size;         /* 0: no batching (each job runs alone, inputs as given) */
    int n_preferred;
    int preferred_batch_size[16];
    int64_t max_queue_delay_us; /* how long to wait for a fuller batch */
    int max_queue_size;         /* jobs waiting; submit beyond it fails with CELER_ERR_UNAVAILABLE;
                                   <= 0: 1024 */
    /* A task queue (no model) may take its jobs in batches: a worker takes up to max_batch_size
     * queued jobs at once (never waiting for more) and calls batch_fn with them, which completes
     * every one (calls done, or hands it on). Jobs past their deadline get done(CELER_ERR_TIMEOUT)
     * instead. */
    void (*batch_fn)(void *user, celer_job *const *jobs, int n);
    void *batch_user;
    /* Optional, with batch_fn: true while more jobs are on their way (e.g. requests upstream in a
     * pipeline); a batch below max_batch_size then waits for them, at most max_queue_delay_us
     * from its oldest job. */
    bool (*batch_wait)(void *user);
    /* Optional, for model queues: called on the worker after each successful execution of the
     * model, once every job of it got its done callback (Triton's per-batch statistics). */
    void (*on_batch)(void *user, const celer_sched_batch *b);
    void *on_batch_user;
} celer_sched_queue_options;


/* Starts `n_workers` worker threads (<= 0: one per online core) and the deadline thread. */
celer_status celer_sched_init(int n_workers, celer_sched **out);
/* Stops accepting, lets queued and running jobs finish (completing every queued job), joins the
 * workers, frees everything. Queues must have been removed first or are removed here. */
void celer_sched_free(celer_sched *s);

/* Adds a queue for `model` (borrowed: must outlive the queue). With `model` NULL the queue holds
 * tasks: a worker "runs" a job by calling its `done` with CELER_OK and no outputs (or with
 * CELER_ERR_TIMEOUT past its deadline), so pipelines share the workers, queue caps and fairness of
 * models (use max_batch_size 0). CELER_ERR_INVALID for options out of
 * range (preferred sizes outside [1, max_batch_size]; they are ignored when max_batch_size is 0)
 * and, when max_batch_size > 0, for a model input whose first dim is fixed (batching needs a
 * symbolic one). A model whose outputs' first dim is not the batch's rows (it reduces over the
 * batch) is detected on its first multi-job batch: those jobs are rerun one by one and the queue
 * runs jobs singly from then on. */
celer_status celer_sched_queue_add(celer_sched *s, const celer_model *model, const celer_sched_queue_options *opts,
                                   celer_sched_queue **out);
/* Sets the name used in q's messages ("queue of model X is full"), e.g. "mlp" or "mlp version 2";
 * copied (at most 255 bytes). Call before the first submit. Default: the ONNX graph's name. */
void celer_sched_queue_set_name(celer_sched_queue *q, const char *name);
/* Stops new submissions to q, waits until its queued and running jobs are done (each completed
 * normally), frees the workers' contexts for it and the queue. After this the model may be freed. */
void celer_sched_queue_remove(celer_sched *s, celer_sched_queue *q);

/* Queues a job; returns at once. CELER_ERR_UNAVAILABLE when the queue holds max_queue_size jobs
 * ("queue ... is full") or is being removed (or the scheduler freed). With max_batch_size > 0, CELER_ERR_SHAPE when an input has no first dim, the inputs'
 * first dims differ, or it is above max_batch_size. On error `done` is not called. */
celer_status celer_sched_submit(celer_sched_queue *q, celer_job *job);

/* Jobs waiting in q right now (for the queue-depth gauge). */
int celer_sched_queue_depth(const celer_sched_queue *q);
/* Admission from a request's headers, before its body is read: takes one of q's places (queued
 * jobs and admitted requests together stay within max_queue_size) and returns true, or false when
 * there is none, so an overloaded model answers 503 without receiving bodies it could not queue.
 * Every admission is given back with celer_sched_queue_unadmit just before the request's submit
 * (its job then holds the place), or when it ends without one. Lock-free. */
bool celer_sched_queue_admit(celer_sched_queue *q);
void celer_sched_queue_unadmit(celer_sched_queue *q);

/* Shutdown past its grace period: every queued job is completed at once, on the calling thread,
 * with CELER_ERR_UNAVAILABLE and `reason` (copied by nobody: it must outlive the done calls), and
 * every later submit is refused. Jobs running finish normally. */
void celer_sched_cancel(celer_sched *s, const char *reason);

#endif
