/* System shared memory, Triton's extension (private to src/server): the regions clients register
 * (a POSIX shared-memory object in /dev/shm named by its key, an offset and a size), mapped while
 * registered, and the copies requests make in and out of them. The request service (service.c)
 * reads inputs from regions and writes outputs into them; both transports register, list and
 * unregister through here and only decode parameters. See docs/server.md, "Shared memory".
 *
 * Off unless --allow-shared-memory: a client names memory the server then maps and writes.
 *
 * Lifetimes: a region holds one reference for the registry while registered, and one for each
 * request using it (celer_shm_acquire / celer_shm_release); its mapping goes with the last
 * reference, so unregistering while requests run is safe: the name is gone at once, the mapping
 * stays until they finish.
 *
 * A client may truncate its object after registering it; a mapped page past the object's end
 * then raises SIGBUS when touched. Requests therefore touch regions only through celer_shm_read
 * and celer_shm_write_tensor, which turn that fault into an error (a guard per thread). */
#ifndef CELER_SERVER_SHM_H
#define CELER_SERVER_SHM_H

#include <stdbool.h>
#include <stdint.h>

#include "base/base.h"
#include "server/json.h"
#include "server/metrics.h"
#include "tensor/tensor.h"

#define CELER_SHM_MAX_REGIONS 1024 /* registered at once; more is CELER_ERR_LIMIT */
#define CELER_SHM_MAX_NAME 255     /* bytes of a region's name */
#define CELER_SHM_MAX_KEY 255      /* bytes of a key, its '/' included (NAME_MAX) */

typedef struct celer_shm celer_shm;
typedef struct celer_shm_region celer_shm_region;

/* The registry, empty; `allowed` false refuses every register and unregister (status answers,
 * with nothing in it). With `allowed` the SIGBUS guard is installed (once per process). */
celer_status celer_shm_init(bool allowed, celer_shm **out);
/* Unregisters and unmaps every region: no request may hold one any more. NULL: nothing. */
void celer_shm_free(celer_shm *m);
/* CELER_OK when shared memory is allowed, else CELER_ERR_UNSUPPORTED saying how to allow it. */
celer_status celer_shm_check_allowed(const celer_shm *m);
/* Gauges of the registered regions and of the bytes mapped (unregistered regions still used by
 * requests included). */
void celer_shm_metrics(celer_shm *m, celer_metrics *metrics);

/* The checks of a region's name (1 to 255 bytes, no control character) and key (a POSIX shm name:
 * '/' then 1 to 254 bytes, no other '/', not "." or "..", no control character), with Triton's
 * wording first; CELER_ERR_INVALID. They open nothing. */
celer_status celer_shm_check_name(const char *name);
celer_status celer_shm_check_key(const char *name, const char *key);

/* Registers region `name`: opens `key` read-write (shm_open, O_NOFOLLOW: /dev/shm only) and maps
 * [offset, offset + byte_size), which must lie inside the object, from the page holding `offset`.
 * Errors: CELER_ERR_UNSUPPORTED when not allowed; CELER_ERR_INVALID for a bad name or key, a name
 * already registered, an object that cannot be opened, a range outside it or byte_size 0;
 * CELER_ERR_LIMIT past CELER_SHM_MAX_REGIONS. Nothing is registered on failure. */
celer_status celer_shm_register(celer_shm *m, const char *name, const char *key, uint64_t offset, uint64_t byte_size);
/* Unregisters region `name`, or every region (NULL or ""). A name not registered is no error (as
 * Triton answers: it is not registered afterwards either way). CELER_ERR_UNSUPPORTED when not
 * allowed. The mappings go once no request holds them. */
celer_status celer_shm_unregister(celer_shm *m, const char *name);

/* What status lists of a region. */
typedef struct celer_shm_info {
    const char *name, *key;
    uint64_t offset, byte_size;
} celer_shm_info;
/* Calls each(user, info) for region `name` (NULL or "": every region, in registration order)
 * under the registry's lock (each must not call the registry; `info` is valid during the call).
 * CELER_ERR_NOT_FOUND for a name not registered, before any call. */
celer_status celer_shm_status(celer_shm *m, const char *name, void (*each)(void *user, const celer_shm_info *info),
                              void *user);
/* The same as Triton's JSON: [{"name","key","offset","byte_size"}]. */
celer_status celer_shm_status_json(celer_shm *m, const char *name, celer_jbuf *out);

/* A tensor's bytes in a region: [offset, offset + byte_size) of region `name`, checked against the
 * region (Triton's wording first; `what` names the tensor after it, e.g. "input 'x'"). Takes a
 * reference (give it back with celer_shm_release) and sets *addr to the offset's byte.
 * CELER_ERR_UNSUPPORTED when not allowed, CELER_ERR_NOT_FOUND for a name not registered,
 * CELER_ERR_INVALID for a range outside the region. */
celer_status celer_shm_acquire(celer_shm *m, const char *name, uint64_t offset, uint64_t byte_size, const char *what,
                               celer_shm_region **out, char **addr);
void celer_shm_release(celer_shm_region *r);
/* The region's name, for messages. */
const char *celer_shm_region_name(const celer_shm_region *r);

/* Copies n bytes from src (inside region r) to dst; CELER_ERR_INVALID naming `what` and the region
 * when the object was truncated under them (SIGBUS caught). */
celer_status celer_shm_read(const celer_shm_region *r, void *dst, const void *src, size_t n, const char *what);
/* Writes tensor t into region r at dst in binary form (BYTES: a 4-byte little-endian length, then
 * the bytes, per element), `size` bytes (from celer_kserve_binary_size); the same error when the
 * object was truncated. */
celer_status celer_shm_write_tensor(const celer_shm_region *r, void *dst, const celer_tensor *t, size_t size,
                                    const char *what);

/* CUDA shared memory: celer has no GPU, so none is ever registered. `action` "register" is refused
 * (CELER_ERR_UNSUPPORTED, Triton's words, "no GPU"); "status" answers CELER_OK for every region
 * (name NULL or "": an empty list) and CELER_ERR_NOT_FOUND for a named one; "unregister" is
 * CELER_OK (nothing to do) unless shared memory is off, as Triton built without GPUs answers: its
 * clients clean up with it before using system shared memory. */
celer_status celer_shm_cuda(const celer_shm *m, const char *action, const char *name);

#endif
