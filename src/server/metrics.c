/* Prometheus metrics registry (see metrics.h).
 *
 * Layout: families (one per metric name, sorted by name) each hold a sorted array of series
 * (sorted by label text). Both arrays change only under the registry mutex; rendering holds it
 * too, so the walk never sees a half-inserted array. Values are atomics updated without the
 * lock: doubles are stored as their bit patterns and added with a CAS loop.
 *
 * Removed series are not freed: they move to their family's `dead` list and are revived (zeroed)
 * when the same name+labels is created again. A request still holding a pointer from before the
 * unload then writes into memory that is valid but no longer rendered, and memory stays bounded
 * by the number of distinct series ever created. Everything is freed with the registry. */
#include "server/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOUNDS 32
#define MAX_NAME 200       /* metric name length */
#define MAX_LABELS 2048    /* label text length */
#define MAX_HELP 1024      /* help text length (longer help is cut) */
#define MAX_SERIES 100000  /* live + dead series over all families */

/* Built-in series whose value comes from the /proc snapshot taken at render time. */
typedef enum proc_field {
    PROC_NONE,
    PROC_RSS,
    PROC_VSIZE,
    PROC_CPU,
    PROC_START,
    PROC_FDS,
    PROC_CPU_UTIL, /* the machine's, as Triton's nv_cpu_* */
    PROC_MEM_TOTAL,
    PROC_MEM_USED,
} proc_field;

typedef struct family family;

struct celer_series {
    family *fam;
    celer_metric_kind kind;
    char *labels;
    celer_gauge_fn fn; /* gauge read at render time, or NULL */
    void *user;
    proc_field proc;
    _Atomic uint64_t value; /* counter/gauge: bits of a double; summary: the count */
    _Atomic uint64_t sum;   /* histogram, summary: bits of a double */
    const double *bounds;   /* histogram: the family's bounds */
    int n_bounds;
    /* histogram: n_bounds + 1 non-cumulative counts (+Inf last); summary: the next slot, then
     * CELER_SUMMARY_SAMPLES samples, each (its second on CLOCK_MONOTONIC_COARSE + 1) << 32 | the
     * bits of its value as a float, so a sample is written and read whole (0: none) */
    _Atomic uint64_t buckets[];
};

struct family {
    char *name;
    char *help;
    celer_metric_kind kind;
    int n_bounds;
    double bounds[MAX_BOUNDS];
    celer_series **live; /* sorted by labels */
    int n_live, cap_live;
    celer_series **dead; /* removed, kept for late writers and revival */
    int n_dead, cap_dead;
};

struct celer_metrics {
    pthread_mutex_t lock;
    family **fams; /* sorted by name */
    int n_fams, cap_fams;
    int n_series; /* live + dead */
    double start_time; /* seconds since the epoch, computed once */
    unsigned long long cpu_busy, cpu_idle; /* /proc/stat at the previous render (under the lock) */
};

const double celer_metrics_latency_buckets[] = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
    100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10, 30, 60,
};
const int celer_metrics_latency_bucket_count = (int)CELER_ARRAY_LEN(celer_metrics_latency_buckets);

/* A summary's quantiles: Triton's (prometheus-cpp's) defaults. */
static const double summary_quantiles[] = {0.5, 0.9, 0.95, 0.99, 0.999};

/* ---- atomic doubles ---- */

static inline uint64_t dbits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double bitsd(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void atomic_add_double(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbits(bitsd(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/* ---- validation ---- */

static bool valid_name(const char *s) {
    if (!s || !*s || strlen(s) > MAX_NAME) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p > s && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid (overlong, surrogate,
 * beyond U+10FFFF, truncated). Prometheus rejects a scrape with invalid UTF-8 in a label. */
static int utf8_len(const unsigned char *p) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

#define MAX_LABEL_COUNT 32

/* Label text: `` or `name="value"(,name="value")*` with values escaped as celer_metrics_escape
 * does (valid UTF-8), label names distinct. Returns false for anything else, and when a label is
 * called `reserved` (the one the kind adds when rendering: `le`, `quantile`; NULL: none). */
static bool valid_labels(const char *s, const char *reserved) {
    if (strlen(s) > MAX_LABELS) return false;
    const char *names[MAX_LABEL_COUNT];
    size_t name_len[MAX_LABEL_COUNT];
    int count = 0;
    const char *p = s;
    while (*p) {
        const char *n = p;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) return false;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9')) p++;
        size_t nl = (size_t)(p - n);
        if (reserved && nl == strlen(reserved) && !memcmp(n, reserved, nl)) return false;
        if (count == MAX_LABEL_COUNT) return false;
        for (int i = 0; i < count; i++)
            if (name_len[i] == nl && !memcmp(names[i], n, nl)) return false;
        names[count] = n;
        name_len[count++] = nl;
        if (*p++ != '=' || *p++ != '"') return false;
        for (;;) {
            if (*p == '\0' || *p == '\n') return false;
            if (*p == '"') break;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') return false;
            }
            int ul = utf8_len((const unsigned char *)p);
            if (!ul) return false;
            p += ul;
        }
        p++; /* closing quote */
        if (*p == ',') {
            p++;
            if (!*p) return false; /* no trailing comma */
        } else if (*p) {
            return false;
        }
    }
    return true;
}

/* Also replaces bytes that are not valid UTF-8 with U+FFFD, so a model folder with an odd name
 * cannot make Prometheus reject the whole scrape. */
const char *celer_metrics_escape(const char *value, char *buf, size_t cap) {
    if (!buf || cap == 0) return buf;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(value ? value : ""); *p;) {
        const char *e = NULL;
        size_t need = 1;
        int ul = utf8_len(p);
        if (*p == '\\') e = "\\\\", need = 2;
        else if (*p == '"') e = "\\\"", need = 2;
        else if (*p == '\n') e = "\\n", need = 2;
        else if (ul == 0) e = "\xEF\xBF\xBD", need = 3, ul = 1;
        else need = (size_t)ul;
        if (o + need >= cap) break; /* truncate, never mid-escape or mid-character */
        memcpy(buf + o, e ? e : (const char *)p, need);
        o += need;
        p += ul;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- lookup and creation (under the lock) ---- */

/* Index of `key` in sorted `names` or -(insertion point) - 1. */
static int find_family(const celer_metrics *m, const char *name) {
    int lo = 0, hi = m->n_fams;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -lo - 1;
}

static int find_series(celer_series *const *arr, int n, const char *labels) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(arr[mid]->labels, labels);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -lo - 1;
}

/* Makes room for one more element in `arr` (a typed pointer array of n items, capacity cap);
 * evaluates to false when out of memory. A macro so no pointer type is accessed as void *. */
#define GROW(arr, n, cap)                                                                          \
    ((n) < (cap) || grow_array((void *)&(arr), sizeof *(arr), &(cap), (void *)(arr)))

static bool grow_array(void *slot, size_t elem, int *cap, void *old) {
    int nc = *cap ? *cap * 2 : 8;
    void *na = realloc(old, (size_t)nc * elem);
    if (!na) return false;
    memcpy(slot, &na, sizeof na); /* stores the new pointer whatever its pointee type */
    *cap = nc;
    return true;
}

/* Inserts `item` at `at` in the typed array `arr` of n items (room already made). */
#define INSERT_AT(arr, n, at, item)                                                                \
    do {                                                                                           \
        memmove((arr) + (at) + 1, (arr) + (at), (size_t)((n) - (at)) * sizeof *(arr));             \
        (arr)[at] = (item);                                                                        \
    } while (0)

static const char *kind_name(celer_metric_kind k) {
    switch (k) {
    case CELER_METRIC_COUNTER: return "counter";
    case CELER_METRIC_GAUGE: return "gauge";
    case CELER_METRIC_HISTOGRAM: return "histogram";
    case CELER_METRIC_SUMMARY: return "summary";
    }
    return "untyped";
}

static void free_series(celer_series *s) {
    if (!s) return;
    free(s->labels);
    free(s);
}

static void free_family(family *f) {
    for (int i = 0; i < f->n_live; i++) free_series(f->live[i]);
    for (int i = 0; i < f->n_dead; i++) free_series(f->dead[i]);
    free(f->live);
    free(f->dead);
    free(f->name);
    free(f->help);
    free(f);
}

static void zero_series(celer_series *s) {
    atomic_store_explicit(&s->value, dbits(0.0), memory_order_relaxed);
    atomic_store_explicit(&s->sum, dbits(0.0), memory_order_relaxed);
    if (s->kind == CELER_METRIC_HISTOGRAM)
        for (int i = 0; i <= s->n_bounds; i++) atomic_store_explicit(&s->buckets[i], 0, memory_order_relaxed);
    if (s->kind == CELER_METRIC_SUMMARY)
        for (int i = 0; i <= CELER_SUMMARY_SAMPLES; i++) atomic_store_explicit(&s->buckets[i], 0, memory_order_relaxed);
}

/* Finds or creates name{labels}; the caller holds the lock. */
static celer_series *get_locked(celer_metrics *m, const char *name, const char *help, const char *labels,
                                celer_metric_kind kind, const double *bounds, int n_bounds, celer_gauge_fn fn,
                                void *user, proc_field proc) {
    int fi = find_family(m, name);
    family *f;
    if (fi >= 0) {
        f = m->fams[fi];
        if (f->kind != kind) {
            celer_errorf(CELER_ERR_INVALID, "metric %s: registered as a %s, requested as a %s", name,
                         kind_name(f->kind), kind_name(kind));
            return NULL;
        }
        if (kind == CELER_METRIC_HISTOGRAM &&
            (f->n_bounds != n_bounds ||
             (n_bounds && memcmp(f->bounds, bounds, (size_t)n_bounds * sizeof *bounds) != 0))) {
            celer_errorf(CELER_ERR_INVALID, "metric %s: histogram bounds differ from its first series (%d bounds)",
                         name, f->n_bounds);
            return NULL;
        }
    } else {
        if (!GROW(m->fams, m->n_fams, m->cap_fams)) goto nomem;
        f = calloc(1, sizeof *f);
        if (!f) goto nomem;
        const char *h = help ? help : "";
        f->name = strdup(name);
        f->help = strndup(h, MAX_HELP);
        if (!f->name || !f->help) {
            free_family(f);
            goto nomem;
        }
        f->kind = kind;
        f->n_bounds = n_bounds;
        if (n_bounds) memcpy(f->bounds, bounds, (size_t)n_bounds * sizeof *bounds);
        fi = -fi - 1;
        INSERT_AT(m->fams, m->n_fams, fi, f);
        m->n_fams++;
    }

    int si = find_series(f->live, f->n_live, labels);
    if (si >= 0) {
        /* a callback series asked for again reads through the new callback (a model version
         * reloaded in place); the render calls it under this lock, so the old user may die after */
        if (fn) f->live[si]->fn = fn, f->live[si]->user = user;
        return f->live[si];
    }
    si = -si - 1;
    if (!GROW(f->live, f->n_live, f->cap_live)) goto nomem;

    celer_series *s = NULL;
    int di = find_series(f->dead, f->n_dead, labels);
    if (di >= 0) { /* revive */
        s = f->dead[di];
        memmove(f->dead + di, f->dead + di + 1, (size_t)(f->n_dead - di - 1) * sizeof *f->dead);
        f->n_dead--;
        zero_series(s);
    } else {
        if (m->n_series >= MAX_SERIES) {
            celer_errorf(CELER_ERR_LIMIT, "metric %s{%s}: registry already holds %d series", name, labels,
                         MAX_SERIES);
            return NULL;
        }
        size_t nb = kind == CELER_METRIC_HISTOGRAM ? (size_t)n_bounds + 1
                    : kind == CELER_METRIC_SUMMARY ? (size_t)CELER_SUMMARY_SAMPLES + 1
                                                   : 0;
        s = calloc(1, sizeof *s + nb * sizeof s->buckets[0]);
        if (!s) goto nomem;
        s->labels = strdup(labels);
        if (!s->labels) {
            free(s);
            goto nomem;
        }
        s->fam = f;
        s->kind = kind;
        s->bounds = f->bounds;
        s->n_bounds = kind == CELER_METRIC_HISTOGRAM ? n_bounds : 0;
        zero_series(s);
        m->n_series++;
    }
    s->fn = fn;
    s->user = user;
    s->proc = proc;
    INSERT_AT(f->live, f->n_live, si, s);
    f->n_live++;
    return s;

nomem:
    celer_errorf(CELER_ERR_NOMEM, "metric %s: out of memory", name);
    return NULL;
}

static celer_series *get(celer_metrics *m, const char *name, const char *help, const char *labels,
                         celer_metric_kind kind, const double *bounds, int n_bounds, celer_gauge_fn fn, void *user,
                         proc_field proc) {
    if (!m) {
        celer_errorf(CELER_ERR_INVALID, "metric %s: no registry", name ? name : "(null)");
        return NULL;
    }
    if (!valid_name(name)) {
        celer_errorf(CELER_ERR_INVALID, "metric name '%.*s' is not [a-zA-Z_:][a-zA-Z0-9_:]* (at most %d chars)",
                     MAX_NAME, name ? name : "(null)", MAX_NAME);
        return NULL;
    }
    if (!labels) labels = "";
    const char *reserved = kind == CELER_METRIC_HISTOGRAM ? "le" : kind == CELER_METRIC_SUMMARY ? "quantile" : NULL;
    if (!valid_labels(labels, reserved)) {
        celer_errorf(CELER_ERR_INVALID,
                     "metric %s: label text '%.*s' is not name=\"escaped value\",... (at most %d chars%s%s%s)", name,
                     MAX_LABELS, labels, MAX_LABELS, reserved ? ", no '" : "", reserved ? reserved : "",
                     reserved ? "'" : "");
        return NULL;
    }
    if (kind == CELER_METRIC_HISTOGRAM) {
        if (n_bounds < 0 || n_bounds > MAX_BOUNDS || (n_bounds > 0 && !bounds)) {
            celer_errorf(CELER_ERR_INVALID, "histogram %s: %d bounds, expected 0..%d", name, n_bounds, MAX_BOUNDS);
            return NULL;
        }
        for (int i = 0; i < n_bounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
                celer_errorf(CELER_ERR_INVALID, "histogram %s: bound %d (%g) is not finite and ascending", name, i,
                             bounds[i]);
                return NULL;
            }
        }
    }
    pthread_mutex_lock(&m->lock);
    celer_series *s = get_locked(m, name, help, labels, kind, bounds, n_bounds, fn, user, proc);
    pthread_mutex_unlock(&m->lock);
    return s;
}

celer_series *celer_metrics_counter(celer_metrics *m, const char *name, const char *help, const char *labels) {
    return get(m, name, help, labels, CELER_METRIC_COUNTER, NULL, 0, NULL, NULL, PROC_NONE);
}

celer_series *celer_metrics_gauge(celer_metrics *m, const char *name, const char *help, const char *labels) {
    return get(m, name, help, labels, CELER_METRIC_GAUGE, NULL, 0, NULL, NULL, PROC_NONE);
}

celer_series *celer_metrics_gauge_fn(celer_metrics *m, const char *name, const char *help, const char *labels,
                                     celer_gauge_fn fn, void *user) {
    return get(m, name, help, labels, CELER_METRIC_GAUGE, NULL, 0, fn, user, PROC_NONE);
}

celer_series *celer_metrics_counter_fn(celer_metrics *m, const char *name, const char *help, const char *labels,
                                       celer_gauge_fn fn, void *user) {
    return get(m, name, help, labels, CELER_METRIC_COUNTER, NULL, 0, fn, user, PROC_NONE);
}

celer_series *celer_metrics_histogram(celer_metrics *m, const char *name, const char *help, const char *labels,
                                      const double *bounds, int n_bounds) {
    return get(m, name, help, labels, CELER_METRIC_HISTOGRAM, bounds, n_bounds, NULL, NULL, PROC_NONE);
}

celer_series *celer_metrics_summary(celer_metrics *m, const char *name, const char *help, const char *labels) {
    return get(m, name, help, labels, CELER_METRIC_SUMMARY, NULL, 0, NULL, NULL, PROC_NONE);
}

/* The second a summary's sample is stamped with (+ 1: a stamp is never 0). */
static uint64_t sample_second(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec + 1;
}

/* ---- updates (lock-free) ---- */

/* Updates check only the kind, which never changes; fn/proc series keep an unused value. */
void celer_metrics_add(celer_series *s, double v) {
    if (!s) return;
    if (s->kind == CELER_METRIC_COUNTER) {
        if (!(v >= 0)) return; /* counters only go up; NaN would poison them for good */
    } else if (s->kind != CELER_METRIC_GAUGE) {
        return;
    }
    atomic_add_double(&s->value, v);
}

void celer_metrics_set(celer_series *s, double v) {
    if (!s || s->kind != CELER_METRIC_GAUGE) return;
    atomic_store_explicit(&s->value, dbits(v), memory_order_relaxed);
}

void celer_metrics_observe(celer_series *s, double v) {
    if (!s) return;
    if (s->kind == CELER_METRIC_SUMMARY) {
        float f = (float)v;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        uint64_t slot = atomic_fetch_add_explicit(&s->buckets[0], 1, memory_order_relaxed) % CELER_SUMMARY_SAMPLES;
        atomic_store_explicit(&s->buckets[1 + slot], sample_second() << 32 | bits, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
        atomic_add_double(&s->sum, v);
        return;
    }
    if (s->kind != CELER_METRIC_HISTOGRAM) return;
    /* first bound >= v (buckets are `le`, inclusive); NaN and values above all bounds land in +Inf */
    int lo = 0, hi = s->n_bounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->bounds[mid] >= v) hi = mid;
        else lo = mid + 1;
    }
    if (v != v) lo = s->n_bounds;
    atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->sum, v);
}

/* ---- removal ---- */

/* `match` occurs in `labels` starting at a label boundary (start or after a comma), so
 * `model="a"` does not hit `othermodel="a"`. Quotes inside values are escaped, so a value can
 * never contain an unescaped `,name="` that would fake a boundary. */
static bool labels_match(const char *labels, const char *match) {
    for (const char *p = labels; (p = strstr(p, match)) != NULL; p++)
        if (p == labels || p[-1] == ',') return true;
    return false;
}

/* Removes the live series of family f for which `match` is true (under the lock). */
static void remove_where(celer_metrics *m, family *f, bool (*match)(const celer_series *s, const char *arg),
                         const char *arg) {
    int keep = 0;
    for (int i = 0; i < f->n_live; i++) {
        celer_series *s = f->live[i];
        if (!match(s, arg)) {
            f->live[keep++] = s;
            continue;
        }
        s->fn = NULL; /* its user pointer may die with the model */
        s->user = NULL;
        if (GROW(f->dead, f->n_dead, f->cap_dead)) {
            int di = find_series(f->dead, f->n_dead, s->labels); /* never present: labels unique */
            INSERT_AT(f->dead, f->n_dead, di >= 0 ? di : -di - 1, s);
            f->n_dead++;
        } else {
            /* no memory to keep it: free it (late writers would be a bug in the caller anyway) */
            free_series(s);
            m->n_series--;
        }
    }
    f->n_live = keep;
}

static bool match_labels(const celer_series *s, const char *arg) { return labels_match(s->labels, arg); }
static bool same_labels(const celer_series *s, const char *arg) { return !strcmp(s->labels, arg); }

void celer_metrics_remove(celer_metrics *m, const char *label_match) {
    if (!m || !label_match || !*label_match) return;
    pthread_mutex_lock(&m->lock);
    for (int fi = 0; fi < m->n_fams; fi++) remove_where(m, m->fams[fi], match_labels, label_match);
    pthread_mutex_unlock(&m->lock);
}

void celer_metrics_remove_series(celer_metrics *m, const char *name, const char *labels) {
    if (!m || !name || !labels) return;
    pthread_mutex_lock(&m->lock);
    int fi = find_family(m, name);
    if (fi >= 0) remove_where(m, m->fams[fi], same_labels, labels);
    pthread_mutex_unlock(&m->lock);
}

/* ---- process metrics ---- */

typedef struct proc_snapshot {
    double rss, vsize, cpu, fds;
    unsigned long long cpu_busy, cpu_idle; /* the machine's jiffies (/proc/stat's cpu line) */
    double cpu_util;                       /* since the previous render (set under the lock) */
    double mem_total, mem_used;            /* /proc/meminfo: MemTotal, MemTotal - MemAvailable */
    bool ok_stat, ok_statm, ok_fds, ok_cpu, ok_mem;
} proc_snapshot;

static size_t read_small_file(const char *path, char *buf, size_t cap) {
    FILE *fp = fopen(path, "re");
    if (!fp) return 0;
    size_t n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return n;
}

/* Fields of /proc/self/stat after the command name (which may hold spaces and parentheses, so
 * parsing starts after the last ')'). Field 3 (state) is fields[0]. */
static int parse_stat(char *buf, unsigned long long *fields, int max) {
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p++;
    int n = 0;
    while (n < max) {
        while (*p == ' ') p++;
        if (!*p || *p == '\n') break;
        char *end;
        fields[n++] = strtoull(p, &end, 10); /* the state letter parses as 0 */
        while (*end && *end != ' ') end++;
        p = end;
    }
    return n;
}

static void read_proc(proc_snapshot *ps) {
    memset(ps, 0, sizeof *ps);
    char buf[2048];
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long f[32];
    if (read_small_file("/proc/self/stat", buf, sizeof buf) && ticks > 0) {
        /* stat(5): utime 14, stime 15, vsize 23 -> indexes 11, 12, 20 counting from field 3 */
        if (parse_stat(buf, f, 22) >= 21) {
            ps->cpu = (double)(f[11] + f[12]) / (double)ticks;
            ps->vsize = (double)f[20];
            ps->ok_stat = true;
        }
    }
    if (read_small_file("/proc/self/statm", buf, sizeof buf) && page > 0) {
        unsigned long long size, resident;
        if (sscanf(buf, "%llu %llu", &size, &resident) == 2) {
            ps->rss = (double)resident * (double)page;
            ps->ok_statm = true;
        }
    }
    unsigned long long j[8] = {0}; /* user nice system idle iowait irq softirq steal */
    if (read_small_file("/proc/stat", buf, sizeof buf) &&
        sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &j[0], &j[1], &j[2], &j[3], &j[4], &j[5], &j[6],
               &j[7]) >= 4) {
        ps->cpu_busy = j[0] + j[1] + j[2] + j[5] + j[6] + j[7];
        ps->cpu_idle = j[3] + j[4];
        ps->ok_cpu = true;
    }
    if (read_small_file("/proc/meminfo", buf, sizeof buf)) {
        const char *t = strstr(buf, "MemTotal:"), *a = strstr(buf, "MemAvailable:");
        unsigned long long total, avail;
        if (t && a && sscanf(t, "MemTotal: %llu", &total) == 1 && sscanf(a, "MemAvailable: %llu", &avail) == 1 &&
            avail <= total) {
            ps->mem_total = (double)total * 1024;
            ps->mem_used = (double)(total - avail) * 1024;
            ps->ok_mem = true;
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') n++;
        closedir(d);
        ps->fds = (double)(n > 0 ? n - 1 : 0); /* minus the descriptor of the listing itself */
        ps->ok_fds = true;
    }
}

/* Start time = boot time (/proc/stat btime) + starttime ticks (/proc/self/stat field 22). */
static double process_start_time(void) {
    char buf[8192];
    long ticks = sysconf(_SC_CLK_TCK);
    double btime = -1;
    if (read_small_file("/proc/stat", buf, sizeof buf)) {
        const char *p = strstr(buf, "\nbtime ");
        if (p) btime = strtod(p + 7, NULL);
    }
    unsigned long long f[32];
    if (btime >= 0 && ticks > 0 && read_small_file("/proc/self/stat", buf, sizeof buf) && parse_stat(buf, f, 20) >= 20)
        return btime + (double)f[19] / (double)ticks;
    struct timespec ts; /* no /proc: the registry's creation is close enough */
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

celer_status celer_metrics_init(celer_metrics **out) {
    *out = NULL;
    celer_metrics *m = calloc(1, sizeof *m);
    if (!m) return celer_errorf(CELER_ERR_NOMEM, "metrics registry: out of memory");
    pthread_mutex_init(&m->lock, NULL);
    m->start_time = process_start_time();
    static const struct {
        const char *name, *help;
        celer_metric_kind kind;
        proc_field proc;
    } builtin[] = {
        {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", CELER_METRIC_COUNTER,
         PROC_CPU},
        {"process_open_fds", "Number of open file descriptors.", CELER_METRIC_GAUGE, PROC_FDS},
        {"process_resident_memory_bytes", "Resident memory size in bytes.", CELER_METRIC_GAUGE, PROC_RSS},
        {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         CELER_METRIC_GAUGE, PROC_START},
        {"process_virtual_memory_bytes", "Virtual memory size in bytes.", CELER_METRIC_GAUGE, PROC_VSIZE},
        /* the machine's, under Triton's names (its Grafana dashboard draws them) */
        {"nv_cpu_utilization", "CPU utilization of the machine from 0 to 1, since the previous scrape (Triton's name).",
         CELER_METRIC_GAUGE, PROC_CPU_UTIL},
        {"nv_cpu_memory_total_bytes", "Memory of the machine in bytes (Triton's name).", CELER_METRIC_GAUGE,
         PROC_MEM_TOTAL},
        {"nv_cpu_memory_used_bytes", "Memory of the machine in use, in bytes (Triton's name).", CELER_METRIC_GAUGE,
         PROC_MEM_USED},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(builtin); i++) {
        if (!get(m, builtin[i].name, builtin[i].help, "", builtin[i].kind, NULL, 0, NULL, NULL, builtin[i].proc)) {
            celer_metrics_free(m);
            return CELER_ERR_NOMEM;
        }
    }
    *out = m;
    return CELER_OK;
}

void celer_metrics_free(celer_metrics *m) {
    if (!m) return;
    for (int i = 0; i < m->n_fams; i++) free_family(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- rendering ---- */

/* A sample value as Prometheus parses it (Go's ParseFloat): integers without exponent when
 * exact, otherwise the shortest %g that round-trips; +Inf, -Inf, NaN spelled as Prometheus does.
 * Assumes the C locale (decimal point), which the server never changes. */
static int format_value(double v, char *buf, size_t cap) {
    if (v != v) return snprintf(buf, cap, "NaN");
    if (isinf(v)) return snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    if (v == trunc(v) && fabs(v) < 1e15) return snprintf(buf, cap, "%lld", (long long)v);
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return n;
}

static void put(celer_jbuf *out, const char *s) {
    celer_jbuf_raw(out, s, strlen(s));
}

static void put_value(celer_jbuf *out, double v) {
    char num[40];
    int n = format_value(v, num, sizeof num);
    celer_jbuf_raw(out, num, (size_t)n);
}

static void put_uint(celer_jbuf *out, uint64_t v) {
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    celer_jbuf_raw(out, num, (size_t)n);
}

/* `name{labels}` (or with an extra label, for buckets) followed by a space. */
static void put_head(celer_jbuf *out, const char *name, const char *suffix, const char *labels, const char *extra) {
    put(out, name);
    if (suffix) put(out, suffix);
    if (*labels || extra) {
        celer_jbuf_raw(out, "{", 1);
        put(out, labels);
        if (extra) {
            if (*labels) celer_jbuf_raw(out, ",", 1);
            put(out, extra);
        }
        celer_jbuf_raw(out, "}", 1);
    }
    celer_jbuf_raw(out, " ", 1);
}

/* HELP text escapes backslash and newline. */
static void put_help(celer_jbuf *out, const char *help) {
    const char *run = help;
    for (const char *p = help;; p++) {
        if (*p != '\\' && *p != '\n' && *p) continue;
        celer_jbuf_raw(out, run, (size_t)(p - run));
        if (!*p) break;
        put(out, *p == '\\' ? "\\\\" : "\\n");
        run = p + 1;
    }
}

static double proc_value(const celer_metrics *m, const proc_snapshot *ps, proc_field f) {
    switch (f) {
    case PROC_RSS: return ps->ok_statm ? ps->rss : NAN;
    case PROC_VSIZE: return ps->ok_stat ? ps->vsize : NAN;
    case PROC_CPU: return ps->ok_stat ? ps->cpu : NAN;
    case PROC_START: return m->start_time;
    case PROC_FDS: return ps->ok_fds ? ps->fds : NAN;
    case PROC_CPU_UTIL: return ps->ok_cpu ? ps->cpu_util : NAN;
    case PROC_MEM_TOTAL: return ps->ok_mem ? ps->mem_total : NAN;
    case PROC_MEM_USED: return ps->ok_mem ? ps->mem_used : NAN;
    case PROC_NONE: break;
    }
    return NAN;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* A summary: each quantile (nearest rank) of the samples young enough, then _sum and _count. */
static void render_summary(const family *f, const celer_series *s, celer_jbuf *out) {
    float v[CELER_SUMMARY_SAMPLES];
    int n = 0;
    uint64_t oldest = sample_second() - CELER_MIN(sample_second(), (uint64_t)CELER_SUMMARY_MAX_AGE_SECS);
    for (int i = 0; i < CELER_SUMMARY_SAMPLES; i++) {
        uint64_t x = atomic_load_explicit(&s->buckets[1 + i], memory_order_relaxed);
        if (!x || (x >> 32) < oldest) continue;
        uint32_t bits = (uint32_t)x;
        memcpy(&v[n], &bits, sizeof bits);
        if (v[n] == v[n]) n++;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    for (size_t q = 0; q < CELER_ARRAY_LEN(summary_quantiles); q++) {
        char label[64], num[40];
        format_value(summary_quantiles[q], num, sizeof num);
        snprintf(label, sizeof label, "quantile=\"%s\"", num);
        put_head(out, f->name, NULL, s->labels, label);
        int rank = (int)ceil(summary_quantiles[q] * n);
        put_value(out, n ? (double)v[CELER_MAX(rank, 1) - 1] : NAN);
        celer_jbuf_raw(out, "\n", 1);
    }
    put_head(out, f->name, "_sum", s->labels, NULL);
    put_value(out, bitsd(atomic_load_explicit(&s->sum, memory_order_relaxed)));
    celer_jbuf_raw(out, "\n", 1);
    put_head(out, f->name, "_count", s->labels, NULL);
    put_uint(out, atomic_load_explicit(&s->value, memory_order_relaxed));
    celer_jbuf_raw(out, "\n", 1);
}

static void render_series(const celer_metrics *m, const proc_snapshot *ps, const family *f, const celer_series *s,
                          celer_jbuf *out) {
    if (s->kind == CELER_METRIC_SUMMARY) {
        render_summary(f, s, out);
        return;
    }
    if (s->kind != CELER_METRIC_HISTOGRAM) {
        double v = s->proc ? proc_value(m, ps, s->proc)
                   : s->fn ? s->fn(s->user)
                           : bitsd(atomic_load_explicit(&s->value, memory_order_relaxed));
        put_head(out, f->name, NULL, s->labels, NULL);
        put_value(out, v);
        celer_jbuf_raw(out, "\n", 1);
        return;
    }
    /* Snapshot the buckets first; _count is their total so +Inf always equals _count. */
    uint64_t counts[MAX_BOUNDS + 1];
    for (int i = 0; i <= s->n_bounds; i++) counts[i] = atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    double sum = bitsd(atomic_load_explicit(&s->sum, memory_order_relaxed));
    uint64_t cum = 0;
    for (int i = 0; i <= s->n_bounds; i++) {
        cum += counts[i];
        char le[48] = "le=\"+Inf\"";
        if (i < s->n_bounds) {
            char num[40];
            format_value(s->bounds[i], num, sizeof num);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        }
        put_head(out, f->name, "_bucket", s->labels, le);
        put_uint(out, cum);
        celer_jbuf_raw(out, "\n", 1);
    }
    put_head(out, f->name, "_sum", s->labels, NULL);
    put_value(out, sum);
    celer_jbuf_raw(out, "\n", 1);
    put_head(out, f->name, "_count", s->labels, NULL);
    put_uint(out, cum);
    celer_jbuf_raw(out, "\n", 1);
}

void celer_metrics_render(celer_metrics *m, celer_jbuf *out) {
    if (!m || !out) return;
    proc_snapshot ps;
    read_proc(&ps);
    pthread_mutex_lock(&m->lock);
    if (ps.ok_cpu) { /* busy over all jiffies since the previous render, as Triton computes it */
        unsigned long long busy = ps.cpu_busy > m->cpu_busy ? ps.cpu_busy - m->cpu_busy : 0,
                           idle = ps.cpu_idle > m->cpu_idle ? ps.cpu_idle - m->cpu_idle : 0;
        ps.cpu_util = busy + idle ? (double)busy / (double)(busy + idle) : 0;
        m->cpu_busy = ps.cpu_busy, m->cpu_idle = ps.cpu_idle;
    }
    for (int fi = 0; fi < m->n_fams; fi++) {
        const family *f = m->fams[fi];
        if (f->n_live == 0) continue;
        put(out, "# HELP ");
        put(out, f->name);
        celer_jbuf_raw(out, " ", 1);
        put_help(out, f->help);
        put(out, "\n# TYPE ");
        put(out, f->name);
        celer_jbuf_raw(out, " ", 1);
        put(out, kind_name(f->kind));
        celer_jbuf_raw(out, "\n", 1);
        for (int i = 0; i < f->n_live; i++) render_series(m, &ps, f, f->live[i], out);
    }
    pthread_mutex_unlock(&m->lock);
}
