/* The local copy of an S3 model repository: see s3_mirror.h. */
#include "s3_mirror.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "s3.h"

#define MANIFEST ".celer-s3-manifest"
#define MAX_KEYS 100000         /* objects under the prefix; more is refused */
#define MAX_OBJECT (INT64_C(1) << 40)
#define STAGING ".celer-s3-incoming" /* objects fetched for a unit not yet complete locally */
#define DOWNLOADS 4             /* objects fetched at once */

typedef struct entry {
    char *rel; /* the key less the repository's prefix: the path under dir */
    char etag[96];
    int64_t size;
} entry;

typedef struct unit_sig {
    char *name;
    uint64_t sig;
} unit_sig;

struct celer_s3_mirror {
    celer_s3 *s3;
    celer_s3_loc loc;
    char dir[PATH_MAX];
    bool private_dir;
    int64_t max_bytes;
    entry *man; /* what is local */
    size_t n_man, cap_man;
    bool man_dirty; /* changed since the manifest file was written */
    unit_sig *prev; /* each unit's listing at the previous sync */
    size_t n_prev;
    pthread_mutex_t lock; /* one sync at a time (the poller, a load by name) */
    /* totals over all syncs, read by the metrics at render time */
    _Atomic int64_t lists, objects, bytes, errors, last_ok_ms; /* last_ok_ms: monotonic; -1 never */
};

/* ---- paths ---- */

/* Whether rel is a path the copy may write: relative, no empty, '.' or '..' segment, no control
 * character, not ending in '/'. */
static bool rel_ok(const char *rel) {
    if (!*rel || *rel == '/') return false;
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) return false;
        if (!e) break;
        p = e + 1;
        if (!*p) return false;
    }
    return true;
}

/* The unit of rel into u (cap): "<model>/<n>/" for a file in a numeric version folder, "<model>/"
 * for a model's own files; false for a file at the top of the repository (no model). */
static bool unit_of(const char *rel, char *u, size_t cap, bool *version) {
    const char *s1 = strchr(rel, '/');
    if (!s1) return false;
    const char *v = s1 + 1, *s2 = strchr(v, '/');
    bool digits = s2 && s2 > v;
    for (const char *c = v; digits && c < s2; c++) digits = *c >= '0' && *c <= '9';
    size_t n = (size_t)((digits ? s2 : s1) - rel) + 1;
    if (n >= cap) return false;
    memcpy(u, rel, n);
    u[n] = 0;
    *version = digits;
    return true;
}

static bool is_marker(const char *rel, const char *unit) {
    return !strncmp(rel, unit, strlen(unit)) && !strcmp(rel + strlen(unit), "READY");
}

static int mkdirs(char *path) { /* parents of the file path, in place */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc && errno != EEXIST) return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *f) {
    (void)sb, (void)type, (void)f;
    remove(path);
    return 0;
}

/* ---- the manifest ---- */

static entry *find(celer_s3_mirror *m, const char *rel) {
    for (size_t i = 0; i < m->n_man; i++)
        if (!strcmp(m->man[i].rel, rel)) return &m->man[i];
    return NULL;
}

static celer_status put_entry(celer_s3_mirror *m, const char *rel, const char *etag, int64_t size) {
    entry *e = find(m, rel);
    if (!e) {
        if (m->n_man == m->cap_man) {
            size_t nc = m->cap_man ? m->cap_man * 2 : 64;
            entry *ne = realloc(m->man, nc * sizeof *ne);
            if (!ne) return celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory");
            m->man = ne, m->cap_man = nc;
        }
        e = &m->man[m->n_man];
        if (!(e->rel = strdup(rel))) return celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory");
        e->etag[0] = 0, e->size = -1;
        m->n_man++;
    }
    if (strcmp(e->etag, etag) || e->size != size) m->man_dirty = true;
    snprintf(e->etag, sizeof e->etag, "%s", etag);
    e->size = size;
    return CELER_OK;
}

static void drop_entry(celer_s3_mirror *m, size_t i) {
    m->man_dirty = true;
    free(m->man[i].rel);
    m->man[i] = m->man[--m->n_man];
}

static celer_status save_manifest(celer_s3_mirror *m) {
    if (!m->man_dirty) return CELER_OK; /* a poll that changed nothing writes nothing */
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/" MANIFEST, m->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return celer_errorf(CELER_ERR_IO, "S3 copy: cannot write %s: %s", tmp, strerror(errno));
    for (size_t i = 0; i < m->n_man; i++)
        fprintf(f, "%s\t%lld\t%s\n", m->man[i].etag, (long long)m->man[i].size, m->man[i].rel);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return celer_errorf(CELER_ERR_IO, "S3 copy: cannot write %s: %s", path, strerror(errno));
    }
    m->man_dirty = false;
    return CELER_OK;
}

/* Reads an earlier copy's manifest; entries whose file is missing or of another size are dropped
 * (downloaded again). */
static celer_status load_manifest(celer_s3_mirror *m) {
    char path[PATH_MAX + 32], line[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/" MANIFEST, m->dir);
    FILE *f = fopen(path, "r");
    if (!f) return CELER_OK;
    celer_status st = CELER_OK;
    while (!st && fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *nl = strchr(line, '\n');
        if (!t1 || !t2 || !nl) continue;
        *t1 = *t2 = *nl = 0;
        long long size = atoll(t1 + 1);
        char file[2 * PATH_MAX + 2];
        struct stat sb;
        snprintf(file, sizeof file, "%s/%s", m->dir, t2 + 1);
        if (!rel_ok(t2 + 1) || stat(file, &sb) || sb.st_size != size) continue;
        st = put_entry(m, t2 + 1, line, size);
    }
    fclose(f);
    return st;
}

/* ---- open, close ---- */

celer_status celer_s3_mirror_open(const char *url, const char *dir, int64_t max_bytes, celer_s3_mirror **out) {
    *out = NULL;
    celer_s3_env env;
    celer_s3_env_get(&env);
    celer_s3_mirror *m = calloc(1, sizeof *m);
    if (!m) return celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory");
    m->max_bytes = max_bytes;
    pthread_mutex_init(&m->lock, NULL);
    atomic_store(&m->last_ok_ms, -1);
    celer_s3_opts opts = {.connect_ms = 5000, .read_ms = 30000};
    const char *page = getenv("CELER_S3_PAGE_KEYS"); /* tests: pagination with few keys */
    if (page) opts.page_keys = atoi(page);
    celer_status st = celer_s3_parse(url, &env, &m->loc);
    if (!st) st = celer_s3_open(&m->loc, &env, &opts, &m->s3);
    if (!st && (!dir || !*dir)) {
        const char *tmp = getenv("TMPDIR");
        snprintf(m->dir, sizeof m->dir, "%s/celer-s3-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(m->dir)) st = celer_errorf(CELER_ERR_IO, "S3 copy: cannot make %s: %s", m->dir, strerror(errno));
        m->private_dir = !st;
    } else if (!st) {
        if (snprintf(m->dir, sizeof m->dir, "%s/", dir) >= (int)sizeof m->dir || mkdirs(m->dir))
            st = celer_errorf(CELER_ERR_IO, "--model-cache-dir %s: cannot make it: %s", dir, strerror(errno));
        m->dir[strlen(m->dir) - 1] = 0;
        if (!st) st = load_manifest(m);
    }
    if (st) {
        celer_s3_mirror_close(m);
        return st;
    }
    *out = m;
    return CELER_OK;
}

const char *celer_s3_mirror_dir(const celer_s3_mirror *m) { return m->dir; }

void celer_s3_mirror_close(celer_s3_mirror *m) {
    if (!m) return;
    if (m->private_dir) nftw(m->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    for (size_t i = 0; i < m->n_man; i++) free(m->man[i].rel);
    for (size_t i = 0; i < m->n_prev; i++) free(m->prev[i].name);
    free(m->man);
    free(m->prev);
    celer_s3_close(m->s3);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- sync ---- */

typedef struct item {
    const celer_s3_object *o;
    const char *rel;
    char unit[512];
    bool version;
} item;

static int by_unit(const void *a, const void *b) {
    const item *x = a, *y = b;
    int c = strcmp(x->unit, y->unit);
    return c ? c : strcmp(x->rel, y->rel);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3u;
    return h;
}

static const unit_sig *prev_sig(const celer_s3_mirror *m, const char *unit) {
    for (size_t i = 0; i < m->n_prev; i++)
        if (m->prev[i].name && !strcmp(m->prev[i].name, unit)) return &m->prev[i];
    return NULL;
}

/* Removes the local files of unit (every one, or those not listed in [it, end)). */
static void prune_unit(celer_s3_mirror *m, const char *unit, const item *it, const item *end,
                       celer_s3_sync_stats *stats) {
    size_t ul = strlen(unit);
    for (size_t i = 0; i < m->n_man;) {
        const char *rel = m->man[i].rel;
        char u[512];
        bool v, listed = false;
        if (strncmp(rel, unit, ul) || !unit_of(rel, u, sizeof u, &v) || strcmp(u, unit)) {
            i++;
            continue;
        }
        for (const item *j = it; j < end && !listed; j++) listed = !strcmp(j->rel, rel);
        if (listed) {
            i++;
            continue;
        }
        char path[2 * PATH_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", m->dir, rel);
        unlink(path);
        drop_entry(m, i);
        stats->objects_removed++;
    }
    char path[2 * PATH_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", m->dir, unit);
    rmdir(path); /* when empty */
}

/* ---- downloads ---- */

/* One object of a complete unit that is not local (or not as listed): fetched into the staging
 * folder, moved into place with the rest of its unit. */
typedef struct fetch {
    const item *it;
    const char *if_none_match; /* the local copy's ETag (a 304 when it still holds), or NULL */
    char staged[PATH_MAX + 64];
    bool ran, not_modified;
    celer_status st;
    char msg[1024];            /* the failure, copied from the fetching thread */
    char etag[96];
    int64_t bytes;
} fetch;

typedef struct fetch_pool {
    celer_s3 *s3;
    fetch *f;
    size_t n;
    _Atomic size_t next;
    _Atomic bool unreachable; /* a fetch failed for want of S3: the others are not tried */
} fetch_pool;

static void *fetch_some(void *arg) {
    fetch_pool *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n && !atomic_load(&p->unreachable);) {
        fetch *f = &p->f[i];
        f->ran = true;
        f->st = celer_s3_get(p->s3, f->it->o->key, f->if_none_match, f->staged, MAX_OBJECT, &f->not_modified,
                             f->etag, &f->bytes);
        if (f->st) {
            snprintf(f->msg, sizeof f->msg, "%s", celer_error_message());
            if (f->st == CELER_ERR_UNAVAILABLE) atomic_store(&p->unreachable, true);
        }
    }
    return NULL;
}

/* Runs the n fetches, DOWNLOADS at a time (each its own connection; the calling thread is one of
 * them). Each fetch's outcome is in it; a fetch not run keeps ran false. */
static void fetch_all(celer_s3_mirror *m, fetch *f, size_t n) {
    fetch_pool p = {.s3 = m->s3, .f = f, .n = n};
    pthread_t t[DOWNLOADS - 1];
    size_t nt = 0;
    while (nt < DOWNLOADS - 1 && nt + 1 < n && !pthread_create(&t[nt], NULL, fetch_some, &p)) nt++;
    fetch_some(&p); /* with no thread to spare, this one does them all */
    for (size_t i = 0; i < nt; i++) pthread_join(t[i], NULL);
}

/* Moves the fetched objects of one complete unit into place and records them; false (the unit
 * left as it was) when one of them failed or was not run. */
static celer_status commit_unit(celer_s3_mirror *m, fetch *f, size_t n, celer_s3_sync_stats *stats, bool *taken) {
    *taken = false;
    for (size_t i = 0; i < n; i++)
        if (!f[i].ran || f[i].st) return CELER_OK;
    for (size_t i = 0; i < n; i++) {
        const item *j = f[i].it;
        if (f[i].not_modified) {
            stats->objects_unchanged++;
        } else {
            char path[2 * PATH_MAX + 2];
            snprintf(path, sizeof path, "%s/%s", m->dir, j->rel);
            if (mkdirs(path) || rename(f[i].staged, path))
                return celer_errorf(CELER_ERR_IO, "S3 copy: cannot move %s into place: %s", path, strerror(errno));
            stats->objects_downloaded++;
        }
        CELER_TRY(put_entry(m, j->rel, f[i].etag[0] ? f[i].etag : j->o->etag,
                            f[i].not_modified ? j->o->size : f[i].bytes));
    }
    *taken = true;
    return CELER_OK;
}

/* The units of a listing: items [a, b) sorted by unit, with the listing's signature and whether
 * the unit is complete. */
typedef struct unit {
    size_t a, b;
    size_t fa, fb; /* its fetches */
    uint64_t sig;
    bool complete;
} unit;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double total_lists(void *u) { return (double)atomic_load(&((celer_s3_mirror *)u)->lists); }
static double total_objects(void *u) { return (double)atomic_load(&((celer_s3_mirror *)u)->objects); }
static double total_bytes(void *u) { return (double)atomic_load(&((celer_s3_mirror *)u)->bytes); }
static double total_errors(void *u) { return (double)atomic_load(&((celer_s3_mirror *)u)->errors); }
static double sync_age(void *u) {
    int64_t t = atomic_load(&((celer_s3_mirror *)u)->last_ok_ms);
    return t < 0 ? -1.0 : (double)(now_ms() - t) / 1000.0;
}

void celer_s3_mirror_metrics(celer_s3_mirror *m, celer_metrics *metrics, const char *url) {
    char esc[600], labels[640];
    snprintf(labels, sizeof labels, "repository=\"%s\"", celer_metrics_escape(url, esc, sizeof esc));
    celer_metrics_counter_fn(metrics, "celer_s3_list_calls_total", "ListObjectsV2 pages requested", labels,
                             total_lists, m);
    celer_metrics_counter_fn(metrics, "celer_s3_objects_downloaded_total",
                             "objects downloaded into the local copy (unchanged ones are not requested)", labels,
                             total_objects, m);
    celer_metrics_counter_fn(metrics, "celer_s3_downloaded_bytes_total", "bytes downloaded into the local copy",
                             labels, total_bytes, m);
    celer_metrics_counter_fn(metrics, "celer_s3_sync_errors_total",
                             "syncs that failed (S3 unreachable or refusing, a download cut off)", labels,
                             total_errors, m);
    celer_metrics_gauge_fn(metrics, "celer_s3_last_sync_age_seconds",
                           "seconds since the last sync that worked; -1 before the first", labels, sync_age, m);
}

static celer_status sync_once(celer_s3_mirror *m, celer_s3_sync_stats *stats);

celer_status celer_s3_mirror_sync(celer_s3_mirror *m, celer_s3_sync_stats *stats) {
    pthread_mutex_lock(&m->lock);
    celer_status st = sync_once(m, stats);
    pthread_mutex_unlock(&m->lock);
    atomic_fetch_add(&m->lists, stats->list_calls);
    atomic_fetch_add(&m->objects, stats->objects_downloaded);
    atomic_fetch_add(&m->bytes, stats->bytes_downloaded);
    if (st)
        atomic_fetch_add(&m->errors, 1);
    else
        atomic_store(&m->last_ok_ms, now_ms());
    return st;
}

static celer_status sync_once(celer_s3_mirror *m, celer_s3_sync_stats *stats) {
    memset(stats, 0, sizeof *stats);
    celer_s3_listing l;
    celer_status st = celer_s3_list(m->s3, NULL, MAX_KEYS, &l);
    stats->list_calls = l.pages;
    if (st) {
        celer_s3_listing_free(&l);
        return st;
    }
    size_t pl = strlen(m->loc.prefix), n = 0, nu = 0;
    item *items = calloc(l.n ? l.n : 1, sizeof *items);
    unit *units = calloc(l.n ? l.n : 1, sizeof *units);
    unit_sig *sigs = calloc(l.n ? l.n : 1, sizeof *sigs);
    if (!items || !units || !sigs) {
        st = celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory for %zu keys", l.n);
        goto out;
    }
    bool markers = false;
    for (size_t i = 0; i < l.n; i++) {
        item *it = &items[n];
        if (strncmp(l.objs[i].key, m->loc.prefix, pl)) continue;
        it->o = &l.objs[i];
        it->rel = l.objs[i].key + pl;
        if (!rel_ok(it->rel) || !unit_of(it->rel, it->unit, sizeof it->unit, &it->version)) continue;
        if (it->version && is_marker(it->rel, it->unit) && it->o->size > 0) markers = true;
        n++;
    }
    qsort(items, n, sizeof *items, by_unit);
    /* units, their completeness, and the copy's size once the complete ones are taken (checked
     * before any download) */
    int64_t total = 0;
    for (size_t a = 0, b; a < n && !st; a = b, nu++) {
        unit *u = &units[nu];
        u->a = a;
        u->sig = 0xcbf29ce484222325u;
        bool ready = false;
        for (b = a; b < n && !strcmp(items[b].unit, items[a].unit); b++) {
            u->sig = fnv(u->sig, items[b].rel, strlen(items[b].rel) + 1);
            u->sig = fnv(u->sig, items[b].o->etag, strlen(items[b].o->etag) + 1);
            u->sig = fnv(u->sig, &items[b].o->size, sizeof items[b].o->size);
            ready |= is_marker(items[b].rel, items[b].unit) && items[b].o->size > 0;
        }
        u->b = b;
        const unit_sig *p = prev_sig(m, items[a].unit);
        u->complete = items[a].version && markers ? ready : p && p->sig == u->sig;
        if (!(sigs[nu].name = strdup(items[a].unit))) st = celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory");
        sigs[nu].sig = u->sig;
        if (!u->complete) {
            stats->units_waiting++;
            continue;
        }
        stats->units_taken++;
        for (size_t j = a; j < b; j++) total += items[j].o->size;
    }
    if (!st && total > m->max_bytes)
        st = celer_errorf(CELER_ERR_LIMIT, "S3 copy: the repository's complete models hold %lld bytes, more than the "
                          "cap of %lld (--model-cache-max-bytes)", (long long)total, (long long)m->max_bytes);
    /* the objects of the complete units that differ from the copy, fetched into the staging
     * folder; a unit's files move into place once all of them arrived, so a version is never
     * half old, half new on disk */
    size_t nf = 0;
    char staging[PATH_MAX + 32];
    snprintf(staging, sizeof staging, "%s/" STAGING, m->dir);
    nftw(staging, rm_one, 16, FTW_DEPTH | FTW_PHYS); /* what a crash left */
    fetch *fs = st ? NULL : calloc(n ? n : 1, sizeof *fs);
    if (!st && !fs) st = celer_errorf(CELER_ERR_NOMEM, "S3 copy: out of memory for %zu keys", n);
    for (size_t k = 0; k < nu && !st; k++) {
        units[k].fa = units[k].fb = nf;
        if (!units[k].complete) continue;
        for (size_t i = units[k].a; i < units[k].b; i++) {
            const item *j = &items[i];
            if (j->version && is_marker(j->rel, j->unit)) continue; /* the marker stays in the bucket */
            char path[2 * PATH_MAX + 2];
            snprintf(path, sizeof path, "%s/%s", m->dir, j->rel);
            entry *e = find(m, j->rel);
            struct stat sb;
            bool here = !stat(path, &sb);
            if (e && here && !strcmp(e->etag, j->o->etag) && e->size == j->o->size && sb.st_size == j->o->size) {
                stats->objects_unchanged++;
                continue;
            }
            fs[nf] = (fetch){.it = j, .if_none_match = e && here ? e->etag : NULL};
            snprintf(fs[nf].staged, sizeof fs[nf].staged, "%s/%zu", staging, nf);
            nf++;
        }
        units[k].fb = nf;
    }
    if (nf && mkdir(staging, 0755) && errno != EEXIST)
        st = celer_errorf(CELER_ERR_IO, "S3 copy: cannot make %s: %s", staging, strerror(errno));
    if (!st && nf) fetch_all(m, fs, nf);
    for (size_t i = 0; i < nf; i++)
        if (fs[i].ran && !fs[i].st) stats->bytes_downloaded += fs[i].bytes;
    /* the units whose fetches all worked go in place, and lose what left them */
    for (size_t k = 0; k < nu && !st; k++) {
        if (!units[k].complete) continue;
        bool taken;
        st = commit_unit(m, &fs[units[k].fa], units[k].fb - units[k].fa, stats, &taken);
        if (!st && taken) prune_unit(m, items[units[k].a].unit, &items[units[k].a], &items[units[k].b], stats);
    }
    /* the first failed fetch is the sync's error */
    const fetch *first = NULL;
    size_t failed = 0;
    for (size_t i = 0; i < nf; i++)
        if (fs[i].ran && fs[i].st && !failed++) first = &fs[i];
    if (first && !st)
        st = failed > 1 ? celer_errorf(first->st, "%s (and %zu more objects failed)", first->msg, failed - 1)
                        : celer_errorf(first->st, "%s", first->msg);
    free(fs);
    nftw(staging, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    /* units no longer listed go */
    for (size_t i = 0; i < m->n_man && !st;) {
        char u[512];
        bool v, listed = false;
        if (!unit_of(m->man[i].rel, u, sizeof u, &v)) {
            i++;
            continue;
        }
        for (size_t k = 0; k < nu && !listed; k++) listed = !strcmp(sigs[k].name, u);
        if (listed) {
            i++;
            continue;
        }
        prune_unit(m, u, NULL, NULL, stats); /* removes entry i and the rest of its unit */
        char path[2 * PATH_MAX + 2];
        snprintf(path, sizeof path, "%s/%.*s", m->dir, (int)(strchr(u, '/') - u), u);
        rmdir(path); /* the model's folder, when its last unit went */
    }
    celer_status saved = save_manifest(m);
    if (!st) st = saved;
out:
    if (sigs) {
        /* this listing becomes the previous one (after a failed download too: a stable unit stays
         * complete at the next sync) */
        for (size_t i = 0; i < m->n_prev; i++) free(m->prev[i].name);
        free(m->prev);
        m->prev = sigs, m->n_prev = nu;
    }
    free(units);
    free(items);
    celer_s3_listing_free(&l);
    return st;
}
