/* Prometheus metrics: a registry of counter, gauge, histogram and summary series rendered as the text
 * exposition format (version 0.0.4). Series are created rarely (server start, model load) under a
 * lock and updated on the hot path with atomics only. Private to src/server. */
#ifndef CELER_SERVER_METRICS_H
#define CELER_SERVER_METRICS_H

#include <stdint.h>

#include "base/base.h"
#include "server/json.h"

typedef struct celer_metrics celer_metrics;
typedef struct celer_series celer_series;

typedef enum celer_metric_kind {
    CELER_METRIC_COUNTER,
    CELER_METRIC_GAUGE,
    CELER_METRIC_HISTOGRAM,
    CELER_METRIC_SUMMARY
} celer_metric_kind;

/* A gauge whose value is read at render time. */
typedef double (*celer_gauge_fn)(void *user);

/* Makes a registry that already holds the process metrics (process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_cpu_seconds_total, process_start_time_seconds,
 * process_open_fds), read at render time from /proc/self, and the machine's under Triton's names
 * (nv_cpu_utilization since the previous render, nv_cpu_memory_total_bytes and
 * nv_cpu_memory_used_bytes, from /proc/stat and /proc/meminfo). */
celer_status celer_metrics_init(celer_metrics **out);
void celer_metrics_free(celer_metrics *m);

/* Finds or creates the series `name{labels}`; `labels` is the label text without braces, e.g.
 * `model="resnet",version="1"` (values escaped by the caller with celer_metrics_escape), "" for
 * none. All series of one name must have the same kind (and, for histograms, the same bounds);
 * `help` is kept from the first call. Returns NULL (message set) on a kind clash or no memory.
 * The series lives until celer_metrics_remove or the registry's free. Asking again for a live
 * callback series (gauge_fn, counter_fn) points it at the new fn and user. */
celer_series *celer_metrics_counter(celer_metrics *m, const char *name, const char *help, const char *labels);
celer_series *celer_metrics_gauge(celer_metrics *m, const char *name, const char *help, const char *labels);
celer_series *celer_metrics_gauge_fn(celer_metrics *m, const char *name, const char *help, const char *labels,
                                     celer_gauge_fn fn, void *user);
/* A counter kept elsewhere (e.g. by the cache), read at render time. */
celer_series *celer_metrics_counter_fn(celer_metrics *m, const char *name, const char *help, const char *labels,
                                       celer_gauge_fn fn, void *user);
/* `bounds` ascending upper bounds (the +Inf bucket is added); at most 32. */
celer_series *celer_metrics_histogram(celer_metrics *m, const char *name, const char *help, const char *labels,
                                      const double *bounds, int n_bounds);

/* A summary, as Triton's latency summaries are: the quantiles CELER_METRICS_QUANTILES (Triton's
 * defaults) of the last CELER_SUMMARY_SAMPLES observations made within the last
 * CELER_SUMMARY_MAX_AGE_SECS seconds (NaN when there is none), and _sum and _count over all of
 * them. Observations are kept as floats: a quantile has float precision. */
#define CELER_SUMMARY_SAMPLES 1024
#define CELER_SUMMARY_MAX_AGE_SECS 60
celer_series *celer_metrics_summary(celer_metrics *m, const char *name, const char *help, const char *labels);

/* Lock-free updates (NULL series are ignored, so callers need no checks). */
void celer_metrics_add(celer_series *s, double v);     /* counter (v >= 0) or gauge */
void celer_metrics_set(celer_series *s, double v);     /* gauge */
void celer_metrics_observe(celer_series *s, double v); /* histogram or summary */

/* Removes every series whose label text contains `label_match` (e.g. `model="resnet"`), for
 * models that are unloaded. Series pointers handed out for them die. */
void celer_metrics_remove(celer_metrics *m, const char *label_match);
/* Removes the one series name{labels}, when there is one (a callback series whose user goes). */
void celer_metrics_remove_series(celer_metrics *m, const char *name, const char *labels);

/* Appends the exposition text (# HELP, # TYPE, samples; histograms as _bucket{le=...}, _sum,
 * _count; summaries as {quantile=...}, _sum, _count) to `out`. Safe while other threads update
 * series. */
void celer_metrics_render(celer_metrics *m, celer_jbuf *out);

/* Escapes a label value (backslash, double quote, newline) into buf; returns buf. */
const char *celer_metrics_escape(const char *value, char *buf, size_t cap);

/* Latency buckets in seconds used by celer's histograms (50 us .. 60 s). */
extern const double celer_metrics_latency_buckets[];
extern const int celer_metrics_latency_bucket_count;

#endif
