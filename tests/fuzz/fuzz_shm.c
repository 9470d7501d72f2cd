/* libFuzzer target for what system shared memory takes from outside: the register requests of
 * both protocols (the HTTP JSON body, the gRPC SystemSharedMemoryRegisterRequest), the name of a
 * status or unregister request, the checks of names and keys, and the range checks of a tensor in
 * a region. The input is split as
 *   byte 0:    % 3: 0 the JSON body, 1 the register message, 2 a status/unregister message;
 *   the rest:  the body or message (libFuzzer's exact-size copy).
 * Decoded names and keys are only checked, never opened: the one region mapped is the target's
 * own object, registered once as "r" (4096 bytes at offset 100 of an 8192-byte object), and each
 * decoded offset and size is asked of it (and of the decoded name), reading what a success grants.
 * A clean error is fine; a crash, leak, sanitizer report, or a granted range outside the region is
 * a bug. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "server/grpc_codec.h"
#include "server/kserve.h"
#include "server/shm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static celer_shm *registry;
static char object_key[64];
static volatile uint8_t sink;

static void cleanup(void) {
    celer_shm_free(registry);
    shm_unlink(object_key);
}

static void setup(void) {
    snprintf(object_key, sizeof object_key, "/celer-fuzz-shm-%d", (int)getpid());
    int fd = shm_open(object_key, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 8192)) abort();
    close(fd);
    if (celer_shm_init(true, &registry) || celer_shm_register(registry, "r", object_key, 100, 4096)) abort();
    atexit(cleanup);
}

static void count(void *user, const celer_shm_info *info) {
    (void)info;
    (*(int *)user)++;
}

/* Asks region `name` (and "r") for [offset, offset + size) and reads what it grants. */
static void ask(const char *name, uint64_t offset, uint64_t size) {
    const char *names[2] = {"r", name};
    for (int i = 0; i < 2; i++) {
        celer_shm_region *r;
        char *addr;
        if (celer_shm_acquire(registry, names[i], offset, size, "input 'x'", &r, &addr)) continue;
        if (offset + size > 4096 || offset + size < offset) abort(); /* granted outside the region */
        char buf[4096];
        if (celer_shm_read(r, buf, addr, (size_t)size, "input 'x'")) abort(); /* the object is whole */
        sink ^= size ? (uint8_t)buf[size - 1] : 0;
        celer_shm_release(r);
    }
    int n = 0;
    if (!celer_shm_status(registry, name, count, &n) && n != 1) abort(); /* "": every region; else that one */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!registry) setup();
    if (size < 1) return 0;
    celer_arena arena;
    celer_arena_init(&arena, 4096, 1 << 20);
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    const char *name = "fuzz", *key = NULL;
    uint64_t offset = 0, byte_size = 0;
    celer_status st;
    switch (data[0] % 3) {
    case 0: st = celer_kserve_decode_shm_register((const char *)msg, len, &arena, &key, &offset, &byte_size); break;
    case 1: st = celer_grpc_decode_shm_register(msg, len, &arena, &name, &key, &offset, &byte_size); break;
    default: st = celer_grpc_decode_shm_name(msg, len, "SystemSharedMemoryStatusRequest", &arena, &name); break;
    }
    if (!st) {
        if (!name || (key && strlen(key) > 1 << 20)) abort();
        if (!celer_shm_check_name(name) && strlen(name) > CELER_SHM_MAX_NAME) abort();
        if (key && !celer_shm_check_key(name, key) && (key[0] != '/' || strchr(key + 1, '/') || strlen(key) > 255))
            abort(); /* a key the check let through must be a plain name in /dev/shm */
        ask(name, offset, byte_size);
    }
    celer_arena_free(&arena);
    return 0;
}
