/* System shared memory: the registry of regions clients registered, their mappings, and the
 * guarded copies requests make through them (see shm.h). */
#include "server/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct celer_shm_region {
    atomic_int refs; /* the registry's while registered, and one per request holding it */
    celer_shm *owner;
    celer_shm_region *next; /* the registry's list, in registration order (under owner->lock) */
    char name[CELER_SHM_MAX_NAME + 1], key[CELER_SHM_MAX_KEY + 1];
    uint64_t offset, byte_size;
    char *map;      /* mmap'ed from the page holding `offset` */
    size_t map_len; /* byte_size + (offset's place in its page) */
    char *base;     /* map + that place: the region's first byte */
};

struct celer_shm {
    bool allowed;
    pthread_mutex_t lock;
    celer_shm_region *regions;
    int n_regions;
    atomic_ullong mapped_bytes; /* every live mapping, unregistered ones still held included */
};

/* ---- the SIGBUS guard ----
 * A mapped page past the end of a truncated object faults with SIGBUS. While a thread copies
 * through a region it points `guard` at its jump buffer, and the handler jumps back there. A SIGBUS
 * anywhere else is not ours: the handler that was there before takes it. */

static _Thread_local sigjmp_buf *volatile guard;
static struct sigaction previous_bus;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *info, void *ctx) {
    (void)ctx;
    sigjmp_buf *jb = guard;
    if (jb) {
        guard = NULL;
        siglongjmp(*jb, 1);
    }
    /* not a guarded copy: as if we were not here (a fault repeats on return; a sent signal again) */
    sigaction(SIGBUS, &previous_bus, NULL);
    if (info->si_code <= 0) raise(sig);
}

/* Puts the handler in place unless it is there already (a handler set since, a test harness's
 * say, goes behind it). */
static void install_guard(void) {
    pthread_mutex_lock(&guard_lock);
    struct sigaction cur;
    if (!sigaction(SIGBUS, NULL, &cur) && !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
        struct sigaction sa = {.sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &previous_bus);
    }
    pthread_mutex_unlock(&guard_lock);
}

/* Runs fn(arg) with the guard up; false when it faulted. */
static bool guarded(void (*fn)(void *arg), void *arg) {
    sigjmp_buf jb;
    if (sigsetjmp(jb, 1)) return false; /* the mask (SIGBUS blocked in the handler) is restored */
    guard = &jb;
    fn(arg);
    guard = NULL;
    return true;
}

static celer_status truncated(const celer_shm_region *r, const char *what, const char *verb) {
    return celer_errorf(CELER_ERR_INVALID,
                        "%s: shared memory region '%s' could not be %s: its object '%s' was truncated after it was "
                        "registered (create it again at its full size and register it again)",
                        what, r->name, verb, r->key);
}

typedef struct copy_args {
    void *dst;
    const void *src;
    size_t n;
} copy_args;

static void copy_fn(void *arg) {
    copy_args *a = arg;
    memcpy(a->dst, a->src, a->n);
}

celer_status celer_shm_read(const celer_shm_region *r, void *dst, const void *src, size_t n, const char *what) {
    copy_args a = {dst, src, n};
    return n == 0 || guarded(copy_fn, &a) ? CELER_OK : truncated(r, what, "read");
}

typedef struct write_args {
    char *dst;
    const celer_tensor *t;
    size_t size;
} write_args;

static void write_fn(void *arg) {
    write_args *a = arg;
    if (a->t->dtype != CELER_STRING) {
        memcpy(a->dst, a->t->data, a->size);
        return;
    }
    int64_t n = celer_shape_numel(&a->t->shape);
    char *p = a->dst;
    for (int64_t i = 0; i < n; i++) {
        celer_str s = ((const celer_str *)a->t->data)[i];
        uint32_t len = (uint32_t)s.len; /* checked by the size's computation */
        memcpy(p, &len, 4);
        if (len) memcpy(p + 4, s.data, len);
        p += 4 + len;
    }
}

celer_status celer_shm_write_tensor(const celer_shm_region *r, void *dst, const celer_tensor *t, size_t size,
                                    const char *what) {
    write_args a = {dst, t, size};
    return size == 0 || guarded(write_fn, &a) ? CELER_OK : truncated(r, what, "written");
}

/* ---- the registry ---- */

celer_status celer_shm_init(bool allowed, celer_shm **out) {
    celer_shm *m = celer_calloc(1, sizeof *m);
    if (!m) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the shared memory registry");
    m->allowed = allowed;
    pthread_mutex_init(&m->lock, NULL);
    if (allowed) install_guard();
    *out = m;
    return CELER_OK;
}

void celer_shm_free(celer_shm *m) {
    if (!m) return;
    if (m->allowed) celer_shm_unregister(m, NULL);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

celer_status celer_shm_check_allowed(const celer_shm *m) {
    if (m && m->allowed) return CELER_OK;
    return celer_errorf(CELER_ERR_UNSUPPORTED,
                        "Client shared memory is disabled: start celer with --allow-shared-memory to enable it (a "
                        "client then names memory the server maps and writes)");
}

static double gauge_regions(void *user) {
    celer_shm *m = user;
    pthread_mutex_lock(&m->lock);
    int n = m->n_regions;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static double gauge_mapped(void *user) { return (double)atomic_load(&((celer_shm *)user)->mapped_bytes); }

void celer_shm_metrics(celer_shm *m, celer_metrics *metrics) {
    celer_metrics_gauge_fn(metrics, "celer_shared_memory_regions", "System shared memory regions registered.", "",
                           gauge_regions, m);
    celer_metrics_gauge_fn(metrics, "celer_shared_memory_mapped_bytes",
                           "Bytes of system shared memory mapped (regions unregistered while requests use them "
                           "included).", "", gauge_mapped, m);
}

/* The first control character of s (its byte), or -1. */
static int control_char(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return (unsigned char)*s;
    return -1;
}

celer_status celer_shm_check_name(const char *name) {
    size_t n = strlen(name);
    if (!n) return celer_errorf(CELER_ERR_INVALID, "'region name' is necessary to register system shared memory region");
    if (n > CELER_SHM_MAX_NAME)
        return celer_errorf(CELER_ERR_INVALID, "shared memory region name of %zu bytes: at most %d", n, CELER_SHM_MAX_NAME);
    int c = control_char(name);
    if (c >= 0)
        return celer_errorf(CELER_ERR_INVALID, "shared memory region name '%.64s...' holds the control character 0x%02x", name,
                            c);
    return CELER_OK;
}

celer_status celer_shm_check_key(const char *name, const char *key) {
    size_t n = strlen(key);
    const char *why = NULL;
    char detail[96];
    int c = control_char(key);
    if (key[0] != '/') {
        why = "a key is a POSIX shared-memory name: '/' and then the object's name in /dev/shm";
    } else if (n < 2) {
        why = "it names no object after the '/'";
    } else if (n > CELER_SHM_MAX_KEY) {
        snprintf(detail, sizeof detail, "it is %zu bytes long, at most %d", n, CELER_SHM_MAX_KEY);
        why = detail;
    } else if (strchr(key + 1, '/')) {
        why = "it holds a '/' after the first: a key names an object directly in /dev/shm";
    } else if (!strcmp(key, "/.") || !strcmp(key, "/..")) {
        why = "'.' and '..' name no object";
    } else if (c >= 0) {
        snprintf(detail, sizeof detail, "it holds the control character 0x%02x", c);
        why = detail;
    }
    if (!why) return CELER_OK;
    return celer_errorf(CELER_ERR_INVALID, "cannot register shared memory region '%s' - invalid shm key '%.*s': %s", name,
                        (int)CELER_MIN(n, 300), key, why);
}

static celer_shm_region *find(celer_shm *m, const char *name) {
    for (celer_shm_region *r = m->regions; r; r = r->next)
        if (!strcmp(r->name, name)) return r;
    return NULL;
}

/* Opens and maps a region's range; CELER_OK with r->map, map_len, base set. */
static celer_status map_region(celer_shm_region *r) {
    const char *name = r->name, *key = r->key;
    int fd = shm_open(key, O_RDWR, 0); /* glibc adds O_NOFOLLOW and O_CLOEXEC */
    if (fd < 0)
        return celer_errorf(CELER_ERR_INVALID, "Unable to open shared memory region: '%s': %s (registering region '%s')",
                            key, strerror(errno), name);
    struct stat st;
    celer_status s = CELER_OK;
    if (fstat(fd, &st)) {
        s = celer_errorf(CELER_ERR_INVALID, "Invalid shared memory region: '%s': %s", key, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        s = celer_errorf(CELER_ERR_INVALID, "Invalid shared memory region: '%s' is not a shared-memory object", key);
    } else if (r->byte_size == 0) {
        s = celer_errorf(CELER_ERR_INVALID, "failed to register shared memory region '%s': invalid args: byte_size is 0",
                         name);
    } else if (st.st_size < 0 || r->offset > (uint64_t)st.st_size || r->byte_size > (uint64_t)st.st_size - r->offset) {
        s = celer_errorf(CELER_ERR_INVALID,
                         "failed to register shared memory region '%s': invalid args: offset %llu + byte_size %llu is "
                         "past the end of '%s' (%lld bytes)",
                         name, (unsigned long long)r->offset, (unsigned long long)r->byte_size, key,
                         (long long)st.st_size);
    }
    if (s) {
        close(fd);
        return s;
    }
    /* inside the object: offset + byte_size fits an off_t, and the mapping starts at a page */
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = r->offset / page * page;
    size_t in_page = (size_t)(r->offset - start);
    if (r->byte_size > SIZE_MAX - in_page) {
        close(fd);
        return celer_errorf(CELER_ERR_LIMIT, "failed to register shared memory region '%s': %llu bytes cannot be mapped",
                            name, (unsigned long long)r->byte_size);
    }
    r->map_len = (size_t)r->byte_size + in_page;
    void *p = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
    int err = errno;
    close(fd); /* the mapping keeps the object */
    if (p == MAP_FAILED)
        return celer_errorf(err == ENOMEM ? CELER_ERR_NOMEM : CELER_ERR_INVALID,
                            "failed to register shared memory region '%s': mapping %zu bytes of '%s': %s", name,
                            r->map_len, key, strerror(err));
    r->map = p;
    r->base = r->map + in_page;
    return CELER_OK;
}

celer_status celer_shm_register(celer_shm *m, const char *name, const char *key, uint64_t offset, uint64_t byte_size) {
    CELER_TRY(celer_shm_check_allowed(m));
    CELER_TRY(celer_shm_check_name(name));
    CELER_TRY(celer_shm_check_key(name, key));
    celer_shm_region *r = celer_calloc(1, sizeof *r);
    if (!r) return celer_errorf(CELER_ERR_NOMEM, "out of memory registering shared memory region '%s'", name);
    atomic_init(&r->refs, 1);
    r->owner = m;
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->key, sizeof r->key, "%s", key);
    r->offset = offset;
    r->byte_size = byte_size;
    /* under the lock throughout: two registrations of one name cannot both map */
    pthread_mutex_lock(&m->lock);
    celer_status st = CELER_OK;
    if (find(m, name))
        st = celer_errorf(CELER_ERR_INVALID,
                          "shared memory region '%s' already in manager (unregister it first, or choose another name)",
                          name);
    else if (m->n_regions >= CELER_SHM_MAX_REGIONS)
        st = celer_errorf(CELER_ERR_LIMIT,
                          "cannot register shared memory region '%s': %d regions are registered, the most celer keeps "
                          "(unregister some first)", name, CELER_SHM_MAX_REGIONS);
    else
        st = map_region(r);
    if (!st) {
        celer_shm_region **tail = &m->regions;
        while (*tail) tail = &(*tail)->next;
        *tail = r;
        m->n_regions++;
        atomic_fetch_add(&m->mapped_bytes, r->map_len);
    }
    pthread_mutex_unlock(&m->lock);
    if (st) free(r);
    return st;
}

void celer_shm_release(celer_shm_region *r) {
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
    atomic_fetch_sub(&r->owner->mapped_bytes, r->map_len);
    munmap(r->map, r->map_len);
    free(r);
}

celer_status celer_shm_unregister(celer_shm *m, const char *name) {
    CELER_TRY(celer_shm_check_allowed(m));
    celer_shm_region *gone = NULL;
    pthread_mutex_lock(&m->lock);
    for (celer_shm_region **p = &m->regions; *p;) {
        celer_shm_region *r = *p;
        if (name && *name && strcmp(r->name, name)) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        r->next = gone;
        gone = r;
        m->n_regions--;
    }
    pthread_mutex_unlock(&m->lock);
    while (gone) { /* the registry's references; a request still holding one keeps the mapping */
        celer_shm_region *r = gone;
        gone = r->next;
        celer_shm_release(r);
    }
    return CELER_OK;
}

celer_status celer_shm_status(celer_shm *m, const char *name, void (*each)(void *user, const celer_shm_info *info),
                              void *user) {
    bool all = !name || !*name;
    pthread_mutex_lock(&m->lock);
    if (!all && !find(m, name)) {
        pthread_mutex_unlock(&m->lock);
        return celer_errorf(CELER_ERR_NOT_FOUND, "Unable to find system shared memory region: '%s'", name);
    }
    for (celer_shm_region *r = m->regions; r; r = r->next) {
        if (!all && strcmp(r->name, name)) continue;
        celer_shm_info info = {r->name, r->key, r->offset, r->byte_size};
        each(user, &info);
    }
    pthread_mutex_unlock(&m->lock);
    return CELER_OK;
}

typedef struct json_status {
    celer_jbuf *out;
    int n;
} json_status;

static void status_json(void *user, const celer_shm_info *info) {
    json_status *j = user;
    if (j->n++) celer_jbuf_raw(j->out, ",", 1);
    celer_jbuf_raw(j->out, "{\"name\":", 8);
    celer_jbuf_str(j->out, info->name);
    celer_jbuf_raw(j->out, ",\"key\":", 7);
    celer_jbuf_str(j->out, info->key);
    celer_jbuf_raw(j->out, ",\"offset\":", 10);
    celer_jbuf_uint(j->out, info->offset);
    celer_jbuf_raw(j->out, ",\"byte_size\":", 13);
    celer_jbuf_uint(j->out, info->byte_size);
    celer_jbuf_raw(j->out, "}", 1);
}

celer_status celer_shm_status_json(celer_shm *m, const char *name, celer_jbuf *out) {
    size_t start = out->len;
    json_status j = {out, 0};
    celer_jbuf_raw(out, "[", 1);
    celer_status st = celer_shm_status(m, name, status_json, &j);
    if (st) {
        out->len = start;
        return st;
    }
    celer_jbuf_raw(out, "]", 1);
    return out->status;
}

celer_status celer_shm_acquire(celer_shm *m, const char *name, uint64_t offset, uint64_t byte_size, const char *what,
                               celer_shm_region **out, char **addr) {
    CELER_TRY(celer_shm_check_allowed(m));
    pthread_mutex_lock(&m->lock);
    celer_shm_region *r = find(m, name);
    celer_status st = CELER_OK;
    if (!r)
        st = celer_errorf(CELER_ERR_NOT_FOUND, "Unable to find shared memory region: '%s' (for %s; register it first)",
                          name, what);
    else if (offset >= r->byte_size)
        st = celer_errorf(CELER_ERR_INVALID,
                          "Invalid offset for shared memory region: '%s' (for %s: offset %llu, the region has %llu bytes)",
                          name, what, (unsigned long long)offset, (unsigned long long)r->byte_size);
    else if (byte_size > UINT64_MAX - offset)
        st = celer_errorf(CELER_ERR_INVALID,
                          "Integer overflow detected: byte_size (%llu) + offset (%llu) exceeds maximum value (%llu) for "
                          "region '%s' (for %s)", (unsigned long long)byte_size, (unsigned long long)offset,
                          (unsigned long long)UINT64_MAX, name, what);
    else if (offset + byte_size > r->byte_size)
        st = celer_errorf(CELER_ERR_INVALID,
                          "Invalid offset + byte size for shared memory region: '%s' (for %s: offset %llu + byte_size "
                          "%llu, the region has %llu bytes)", name, what, (unsigned long long)offset,
                          (unsigned long long)byte_size, (unsigned long long)r->byte_size);
    if (!st) {
        atomic_fetch_add(&r->refs, 1);
        *out = r;
        *addr = r->base + offset;
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

const char *celer_shm_region_name(const celer_shm_region *r) { return r->name; }

celer_status celer_shm_cuda(const celer_shm *m, const char *action, const char *name) {
    bool all = !name || !*name;
    if (!strcmp(action, "register"))
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "failed to register CUDA shared memory region: '%s', GPUs not supported (CUDA shared memory "
                            "is not supported: no GPU; celer runs on the CPU only: use system shared memory, "
                            "/v2/systemsharedmemory or the SystemSharedMemory* RPCs)", name ? name : "");
    if (!strcmp(action, "status"))
        return all ? CELER_OK
                   : celer_errorf(CELER_ERR_NOT_FOUND,
                                  "Unable to find cuda shared memory region: '%s' (celer has no GPU: no CUDA shared "
                                  "memory region can be registered)", name);
    return celer_shm_check_allowed(m); /* unregister: nothing is registered, as Triton without GPUs answers */
}
