/* Status message table, per-thread error detail, and the arena allocator. */
#include "base.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The one table of status codes: text, HTTP status, gRPC code, and whether a client should retry.
 * Client errors are 4xx; overload and unavailability 503 with Retry-After. */
static const struct status_info {
    const char *name;
    int http, grpc, retry;
} status_table[CELER_STATUS_COUNT] = {
    [CELER_OK] = {"ok", 200, 0, 0},
    [CELER_ERR_IO] = {"I/O error", 500, 13 /* INTERNAL */, 0},
    [CELER_ERR_PARSE] = {"malformed input", 400, 3 /* INVALID_ARGUMENT */, 0},
    [CELER_ERR_INVALID] = {"invalid model or argument", 400, 3, 0},
    [CELER_ERR_UNSUPPORTED] = {"unsupported", 400, 12 /* UNIMPLEMENTED, as Triton maps it */, 0},
    [CELER_ERR_SHAPE] = {"shape mismatch", 400, 3, 0},
    [CELER_ERR_DTYPE] = {"type mismatch", 400, 3, 0},
    [CELER_ERR_NOMEM] = {"out of memory", 503, 8 /* RESOURCE_EXHAUSTED */, 1},
    [CELER_ERR_LIMIT] = {"limit exceeded", 413, 8, 0},
    [CELER_ERR_NOT_FOUND] = {"not found", 404, 5 /* NOT_FOUND */, 0},
    [CELER_ERR_INTERNAL] = {"internal error", 500, 13, 0},
    [CELER_ERR_UNAVAILABLE] = {"unavailable", 503, 14 /* UNAVAILABLE */, 1},
    [CELER_ERR_TIMEOUT] = {"deadline exceeded", 503, 4 /* DEADLINE_EXCEEDED */, 1},
    /* nobody reads the answer; 499 is the "client closed request" of proxies' logs */
    [CELER_ERR_CANCELLED] = {"cancelled", 499, 1 /* CANCELLED */, 0},
    /* never UNAVAILABLE: gRPC clients retry that, and a missing key does not appear by retrying */
    [CELER_ERR_UNAUTHENTICATED] = {"unauthenticated", 401, 16 /* UNAUTHENTICATED */, 0},
    [CELER_ERR_PERMISSION_DENIED] = {"permission denied", 403, 7 /* PERMISSION_DENIED */, 0},
    /* a gateway's error: not the client's request, not celer's own failure */
    [CELER_ERR_UPSTREAM] = {"bad gateway", 502, 13 /* INTERNAL */, 0},
};

static const struct status_info *status_info(celer_status status) {
    return (unsigned)status < CELER_STATUS_COUNT ? &status_table[status] : &status_table[CELER_ERR_INTERNAL];
}

const char *celer_status_name(celer_status status) {
    if ((unsigned)status >= CELER_STATUS_COUNT) return "unknown status";
    return status_table[status].name;
}
int celer_status_http(celer_status status) { return status_info(status)->http; }
int celer_status_grpc(celer_status status) { return status_info(status)->grpc; }
int celer_status_retryable(celer_status status) { return status_info(status)->retry; }

#define ERROR_CAP 1024
static _Thread_local char error_text[ERROR_CAP];
static _Thread_local celer_status error_code;

celer_status celer_errorf(celer_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    error_code = status;
    return status;
}

celer_status celer_error_wrap(celer_status status, const char *fmt, ...) {
    char prefix[ERROR_CAP], old[ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_text, sizeof old);
    const char *tail = old[0] ? old : celer_status_name(status);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(error_text, prefix, n);
    if (n + 2 < sizeof error_text) {
        memcpy(error_text + n, ": ", 2);
        n += 2;
    }
    size_t m = CELER_MIN(strlen(tail), sizeof error_text - 1 - n);
    memcpy(error_text + n, tail, m);
    error_text[n + m] = 0;
    error_code = status;
    return status;
}

const char *celer_error_message(void) { return error_text; }
celer_status celer_error_status(void) { return error_code; }

/* ---- arena ---- */
struct celer_arena_block {
    celer_arena_block *next;
    size_t size, used;
    _Alignas(64) unsigned char data[];
};

void celer_arena_init(celer_arena *arena, size_t block_size, size_t cap) {
    arena->head = NULL;
    arena->block_size = block_size ? block_size : 64 * 1024;
    arena->total = 0;
    arena->cap = cap;
}

void celer_arena_free(celer_arena *arena) {
    celer_arena_block *b = arena->head;
    while (b) {
        celer_arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena->head = NULL;
    arena->total = 0;
}

void *celer_arena_alloc(celer_arena *arena, size_t size) {
    void *p = celer_arena_alloc_uninit(arena, size);
    if (p) memset(p, 0, size);
    return p;
}

void *celer_arena_alloc_uninit(celer_arena *arena, size_t size) {
    size_t rounded;
    if (celer_add_size(size, 63, &rounded)) goto too_big;
    rounded &= ~(size_t)63;
    if (rounded == 0) rounded = 64;
    celer_arena_block *b = arena->head;
    if (!b || b->size - b->used < rounded) {
        size_t bsize = rounded > arena->block_size ? rounded : arena->block_size, total;
        if (celer_add_size(bsize, sizeof(celer_arena_block), &total)) goto too_big;
        if (arena->cap && (total > arena->cap || arena->total > arena->cap - total)) { /* no wrapping */
            celer_errorf(CELER_ERR_LIMIT, "arena cap of %zu bytes reached (asked for %zu more)",
                         arena->cap, size);
            return NULL;
        }
        b = celer_malloc(total);
        if (!b) {
            celer_errorf(CELER_ERR_NOMEM, "out of memory allocating %zu bytes", total);
            return NULL;
        }
        b->size = bsize;
        b->used = 0;
        arena->total += total;
        /* A big dedicated block goes behind the head so the head keeps serving small requests. */
        if (arena->head && rounded > arena->block_size) {
            b->next = arena->head->next;
            arena->head->next = b;
        } else {
            b->next = arena->head;
            arena->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += rounded;
    return p;
too_big:
    celer_errorf(CELER_ERR_LIMIT, "allocation of %zu bytes overflows", size);
    return NULL;
}

char *celer_arena_strndup(celer_arena *arena, const char *s, size_t len) {
    char *p = celer_arena_alloc(arena, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

/* ---- paths ---- */

celer_status celer_path_inside(const char *root, const char *name, char *out, size_t cap) {
    /* an absolute name is not repeated: it may be a server path */
    if (name[0] == '/')
        return celer_errorf(CELER_ERR_INVALID, "an absolute path is refused: name a file inside the folder");
    if (!name[0]) return celer_errorf(CELER_ERR_INVALID, "an empty name: name a file inside the folder");
    char base[PATH_MAX], joined[PATH_MAX], real[PATH_MAX];
    if (!realpath(root, base))
        return celer_errorf(CELER_ERR_IO, "'%s': its folder cannot be resolved: %s", name, strerror(errno));
    if ((size_t)snprintf(joined, sizeof joined, "%s/%s", base, name) >= sizeof joined)
        return celer_errorf(CELER_ERR_IO, "'%s': the path is too long", name);
    if (!realpath(joined, real)) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR) return celer_errorf(CELER_ERR_NOT_FOUND, "'%s' not found", name);
        return celer_errorf(CELER_ERR_IO, "'%s': %s", name, strerror(err));
    }
    size_t n = strlen(base);
    if (n == 1) n = 0; /* root is "/": every path is below it */
    if (strncmp(real, base, n) || real[n] != '/' || !real[n + 1])
        return celer_errorf(CELER_ERR_INVALID, "'%s' resolves outside its folder (through a symlink or '..')", name);
    if (strlen(real) >= cap) return celer_errorf(CELER_ERR_IO, "'%s': the path is too long", name);
    memcpy(out, real, strlen(real) + 1);
    return CELER_OK;
}

/* ---- files ---- */

celer_status celer_read_exact(int fd, uint64_t offset, void *dst, size_t len, const char *what) {
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, (char *)dst + done, CELER_MIN(len - done, (size_t)1 << 30), (off_t)(offset + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return celer_errorf(CELER_ERR_IO, "cannot read '%s': %s", what, strerror(errno));
        if (r == 0)
            return celer_errorf(CELER_ERR_IO, "'%s' shrank while being read (%llu of %zu bytes at offset %llu)",
                                what, (unsigned long long)done, len, (unsigned long long)offset);
        done += (size_t)r;
    }
    return CELER_OK;
}

celer_status celer_read_pages(int fd, size_t len, const char *what, void **out) {
    void *pages = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) return celer_errorf(CELER_ERR_NOMEM, "no memory for the %zu bytes of '%s'", len, what);
    celer_status st = celer_read_exact(fd, 0, pages, len, what);
    if (st) {
        munmap(pages, len);
        return st;
    }
    *out = pages;
    return CELER_OK;
}

/* ---- allocation with failure injection ---- */

/* 0 = off. Relaxed is enough: arming happens before the run it is meant for (a test arms, then
 * calls), and which thread draws the n-th allocation is not ordered anyway. */
static atomic_long fail_at;
static atomic_long alloc_count;

void celer_alloc_fail_at(long n) {
    atomic_store_explicit(&fail_at, 0, memory_order_relaxed);
    atomic_store_explicit(&alloc_count, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n > 0 ? n : 0, memory_order_relaxed);
}

long celer_alloc_count(void) { return atomic_load_explicit(&alloc_count, memory_order_relaxed); }

/* Read before main so that every allocation of the process is counted; an unparsable value is
 * ignored rather than failing allocations at random. */
__attribute__((constructor)) static void alloc_fail_from_env(void) {
    const char *v = getenv("CELER_FAIL_ALLOC_AT");
    if (!v || !*v) return;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end == 0 && n > 0) celer_alloc_fail_at(n);
}

/* True when this allocation is the one to fail. */
static inline int alloc_injected_failure(void) {
    long n = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (__builtin_expect(n == 0, 1)) return 0;
    return atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1 == n;
}

void *celer_malloc(size_t size) { return alloc_injected_failure() ? NULL : malloc(size); }

void *celer_calloc(size_t n, size_t size) { return alloc_injected_failure() ? NULL : calloc(n, size); }

void *celer_realloc(void *p, size_t size) { return alloc_injected_failure() ? NULL : realloc(p, size); }

/* ---- the CPUs this process may use ---- */

/* The CPUs a quota of `quota` per `period` (microseconds) allows, rounded up; 0 for none. */
static int quota_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    long long n = (quota + period - 1) / period;
    return n > INT_MAX ? INT_MAX : (int)CELER_MAX(n, 1);
}

/* The first line of `path` into buf (cap bytes); false when it cannot be read. */
static bool read_line(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    return ok;
}

/* The tightest quota on cgroup `dir` (a path under a mount) and its ancestors up to `mount`:
 * v2 reads cpu.max ("max 100000" or "200000 100000"), v1 cpu.cfs_quota_us and cpu.cfs_period_us. */
static int quota_in(const char *mount, const char *dir, bool v2) {
    char path[2 * PATH_MAX + 32], cur[PATH_MAX], line[128];
    snprintf(cur, sizeof cur, "%s", dir);
    int best = 0;
    for (;;) {
        long long quota = 0, period = 0;
        if (v2) {
            snprintf(path, sizeof path, "%s%s/cpu.max", mount, cur);
            if (read_line(path, line, sizeof line) && strncmp(line, "max", 3)) sscanf(line, "%lld %lld", &quota, &period);
        } else {
            snprintf(path, sizeof path, "%s%s/cpu.cfs_quota_us", mount, cur);
            if (read_line(path, line, sizeof line)) quota = atoll(line);
            snprintf(path, sizeof path, "%s%s/cpu.cfs_period_us", mount, cur);
            if (read_line(path, line, sizeof line)) period = atoll(line);
        }
        int n = quota_cpus(quota, period);
        if (n && (!best || n < best)) best = n;
        char *slash = strrchr(cur, '/'); /* "/a/b" -> "/a" -> "" (the mount itself) -> done */
        if (!cur[0] || !slash) break;
        *slash = 0;
    }
    return best;
}

int celer_cpu_quota(const char *proc_cgroup, const char *cgroup_root) {
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return 0;
    char line[PATH_MAX + 64], mount[PATH_MAX + 64];
    int best = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* "0::/path" (v2) or "N:cpu,cpuacct:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = 0;
        const char *controllers = c1 + 1, *dir = c2 + 1;
        int n = 0;
        if (!strcmp(line, "0") && !*controllers) {
            n = quota_in(cgroup_root, dir, true);
        } else {
            bool cpu = false;
            for (const char *p = controllers; *p;) {
                size_t l = strcspn(p, ",");
                cpu |= l == 3 && !strncmp(p, "cpu", 3);
                p += l + (p[l] == ',');
            }
            if (!cpu) continue;
            /* the mount is named after its controllers; in a container the cgroup is its root */
            snprintf(mount, sizeof mount, "%s/%s", cgroup_root, controllers);
            n = quota_in(mount, dir, false);
            if (!n) n = quota_in(mount, "", false);
            if (!n) {
                snprintf(mount, sizeof mount, "%s/cpu", cgroup_root);
                n = quota_in(mount, dir, false);
            }
        }
        if (n && (!best || n < best)) best = n;
    }
    fclose(f);
    return best;
}

int celer_cpu_count(void) {
    int n = 0;
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof set, &set)) n = CPU_COUNT(&set);
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)CELER_MIN(online, INT_MAX) : 1;
    }
    int quota = celer_cpu_quota("/proc/self/cgroup", "/sys/fs/cgroup");
    if (quota && quota < n) n = quota;
    return CELER_MAX(n, 1);
}
