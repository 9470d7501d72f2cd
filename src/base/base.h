/* base: status codes, error messages, arenas and checked arithmetic shared by every layer.
 *
 * Error convention: every function that can fail returns a celer_status (0 = ok). The code says
 * what kind of failure it was (the message table lives in status.c); the detail that lets a user
 * fix the input (op name, tensor name, expected vs got) is kept per thread and read with
 * celer_error_message(). Set it with celer_errorf(), which returns the code so a failing path is
 * one line: `return celer_errorf(CELER_ERR_SHAPE, "Add %s: ...", name);`. */
#ifndef CELER_BASE_H
#define CELER_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum celer_status {
    CELER_OK = 0,
    CELER_ERR_IO,          /* a file could not be opened, mapped or written */
    CELER_ERR_PARSE,       /* malformed input bytes (protobuf, .npy, command line) */
    CELER_ERR_INVALID,     /* well-formed but meaningless (bad attribute, dangling tensor name) */
    CELER_ERR_UNSUPPORTED, /* valid ONNX that celer cannot run yet */
    CELER_ERR_SHAPE,       /* shapes do not agree */
    CELER_ERR_DTYPE,       /* element types do not agree */
    CELER_ERR_NOMEM,       /* an allocation failed */
    CELER_ERR_LIMIT,       /* a size cap was hit: the input is too large (the client must send less) */
    CELER_ERR_NOT_FOUND,   /* a named thing does not exist */
    CELER_ERR_INTERNAL,    /* a bug in celer or a library it calls */
    CELER_ERR_UNAVAILABLE, /* overloaded or not ready (full queue, model loading, shutting down): retry later */
    CELER_ERR_TIMEOUT,     /* the request's deadline passed before it was done */
    CELER_ERR_CANCELLED,   /* the client went away (a reset gRPC stream) before its request ran */
    CELER_ERR_UNAUTHENTICATED,     /* no API key, or one the server does not know */
    CELER_ERR_PERMISSION_DENIED,   /* a known API key without the scope the endpoint needs */
    CELER_ERR_UPSTREAM,    /* a server celer called (a remote model's) failed or answered what it may not */
    CELER_STATUS_COUNT
} celer_status;

/* Short fixed text for a code ("shape mismatch"); never NULL. */
const char *celer_status_name(celer_status status);
/* The HTTP status a request failing with `status` gets (400, 404, 413, 500, 503...). */
int celer_status_http(celer_status status);
/* The gRPC status code (INVALID_ARGUMENT = 3, RESOURCE_EXHAUSTED = 8, UNAVAILABLE = 14...). */
int celer_status_grpc(celer_status status);
/* True when the same request may succeed later (answers carry Retry-After). */
int celer_status_retryable(celer_status status);

/* Records a detailed message for the calling thread and returns `status` unchanged. */
celer_status celer_errorf(celer_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the calling thread's message with more context ("loading model.onnx: ...") and returns
 * `status`; use it when passing an error up. */
celer_status celer_error_wrap(celer_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread's last message; points into thread-local storage valid until the next
 * celer_errorf/celer_error_wrap on this thread. Empty string when none was set. */
const char *celer_error_message(void);
/* The code the calling thread's last celer_errorf recorded: what a NULL from an allocator meant
 * (CELER_ERR_LIMIT for an arena's cap, CELER_ERR_NOMEM for a failed malloc). */
celer_status celer_error_status(void);

/* ---- arena ----
 * A growing region of blocks for things that live and die together (a model's graph, a request).
 * Allocations are aligned to 64 bytes and zeroed. Nothing is freed individually. */
typedef struct celer_arena_block celer_arena_block;
typedef struct celer_arena {
    celer_arena_block *head;
    size_t block_size; /* size of new blocks; large requests get a block of their own */
    size_t total;      /* bytes obtained from malloc, for accounting */
    size_t cap;        /* 0 = no cap; otherwise allocating past it fails with CELER_ERR_LIMIT */
} celer_arena;

/* Prepares an empty arena; `cap` 0 means unbounded. Never fails. */
void celer_arena_init(celer_arena *arena, size_t block_size, size_t cap);
/* Releases every block; the arena can be reused after celer_arena_init. */
void celer_arena_free(celer_arena *arena);
/* Returns zeroed memory owned by the arena, or NULL (and sets the error message) when out of
 * memory or past the cap. */
void *celer_arena_alloc(celer_arena *arena, size_t size);
/* Like celer_arena_alloc without zeroing, for buffers the caller fills completely (hot paths). */
void *celer_arena_alloc_uninit(celer_arena *arena, size_t size);
/* Copies `len` bytes of `s` and a terminating NUL into the arena; NULL on failure. */
char *celer_arena_strndup(celer_arena *arena, const char *s, size_t len);

/* ---- paths ----
 * Resolves `name` against the folder `root`, following every symlink (of root too), and checks
 * that what it reaches lies strictly inside root: the guard for every file a model folder or a
 * pipeline names, so neither a symlink nor `..` nor an absolute name reads outside. `name` must
 * be relative; `..` is fine while the result stays inside. The caller checks the kind of file.
 * Writes the resolved absolute path to `out` (`cap` bytes; PATH_MAX is enough). Messages name
 * only a relative `name`, never root nor an absolute name (server paths a client must not see):
 * CELER_ERR_INVALID when `name` is absolute or resolves outside, CELER_ERR_NOT_FOUND when it does
 * not exist, CELER_ERR_IO otherwise (unreadable, symlink loop, path too long). A file swapped
 * for a symlink between this check and its open is not caught: the repository's writers are
 * trusted not to race the server, its readers (clients) are not trusted. */
celer_status celer_path_inside(const char *root, const char *name, char *out, size_t cap);

/* ---- files read into memory of our own ----
 * Model files are read, not mapped: a mapping dies of SIGBUS when `cp` truncates the file under a
 * serving model, a copy changes nothing until a reload. */
/* Reads len bytes at `offset` of fd into dst, however pread splits them. CELER_ERR_IO naming
 * `what` on an error, or when the file ends early (it shrank since it was measured). */
celer_status celer_read_exact(int fd, uint64_t offset, void *dst, size_t len, const char *what);
/* Reads the first len (> 0) bytes of fd into fresh anonymous pages, writable, at *out; the caller
 * owns them and releases them with munmap(*out, len). CELER_ERR_NOMEM when they cannot be had. */
celer_status celer_read_pages(int fd, size_t len, const char *what, void **out);

/* ---- checked arithmetic: every size computed from input goes through these ---- */
/* *out = a * b; returns 0 on success, non-zero on overflow (out untouched). */
static inline int celer_mul_size(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline int celer_add_size(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out);
}

/* Returns from the calling function when `x` (a celer_status expression) fails. */
#define CELER_TRY(x)                                                                               \
    do {                                                                                           \
        celer_status celer_try_ = (x);                                                             \
        if (celer_try_) return celer_try_;                                                         \
    } while (0)

#define CELER_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CELER_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CELER_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The most requests one batch of a batch step carries: the scheduler hands a batch_fn at most
 * this many jobs, the pipeline executor runs a batch step on at most this many runs, and the
 * steps size their per-request arrays by it (on the stack). */
#define CELER_MAX_BATCH_JOBS 256

/* ---- allocation with failure injection ----
 * Allocations that must survive running out of memory go through these (the arena's blocks, the
 * server's JSON writer and parser scratch, the result cache), so tests can make any one of them
 * fail, as curl's torture tests do: count the allocations of a successful run, then fail the 1st,
 * the 2nd, ... and check that each failure answers CELER_ERR_NOMEM and leaks nothing.
 * Memory from them is released with free(). When the hook is off they cost one relaxed atomic
 * load on top of malloc; armed, one atomic increment more. They never set an error message: the
 * caller says what it was allocating. */
void *celer_malloc(size_t size);
void *celer_calloc(size_t n, size_t size);
/* On failure (real or injected) returns NULL and leaves `p` allocated, as realloc does. */
void *celer_realloc(void *p, size_t size);

/* Arms the hook for the whole process: the counter restarts at 0 and the n-th allocation through
 * the wrappers from now on returns NULL (only that one: later ones succeed again, so cleanup
 * paths that allocate are exercised too). n = 0 turns the hook off and stops counting (the count
 * is kept for celer_alloc_count); n = LONG_MAX only counts. Thread-safe: with several threads allocating, exactly one of them gets
 * the failure.
 * The environment variable CELER_FAIL_ALLOC_AT=N, read once when the program starts, arms it
 * the same way from the first allocation on, so a whole `celer serve` process can be run with
 * its N-th allocation failing. */
void celer_alloc_fail_at(long n);
/* Allocations through the wrappers between the last arming and now (or the disarming). */
long celer_alloc_count(void);

/* ---- the CPUs this process may use ----
 * Worker and thread counts follow what the process may really run on, not the machine's online
 * CPUs: a container limited to 2 CPUs on a 64-core host must not start 64 workers. */

/* The CPUs the process may use: its affinity mask's count, lowered to the CPU quota of its cgroup
 * (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, on its cgroup and every ancestor), rounded
 * up; at least 1. */
int celer_cpu_count(void);
/* The quota part alone, from the files given (tests pass their own; celer_cpu_count passes
 * /proc/self/cgroup and /sys/fs/cgroup): the CPUs the quota allows, rounded up, or 0 when no
 * quota is set or nothing can be read. */
int celer_cpu_quota(const char *proc_cgroup, const char *cgroup_root);

#endif
