/* The system shared memory registry (shm.c): names and keys checked, regions registered only
 * inside their object, ranges checked against the region, references keeping a mapping alive past
 * its unregistration, a truncated object answered with an error instead of SIGBUS, the BYTES
 * layout, the cap on regions, and requests racing unregistrations from threads. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "opcase.h"
#include "server/shm.h"

/* A /dev/shm object of `size` bytes holding bytes i & 0xff, named /celer-test-<pid>-<tag>. */
static void make_object(const char *tag, size_t size, char *key, size_t cap) {
    snprintf(key, cap, "/celer-test-%d-%s", (int)getpid(), tag);
    int fd = shm_open(key, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    for (size_t i = 0; i < size; i++) p[i] = (unsigned char)i;
    munmap(p, size);
    close(fd);
}

/* Whether this process maps the object `key` (/proc/self/maps names /dev/shm/<key>). */
static bool mapped(const char *key) {
    char want[300], line[1024];
    snprintf(want, sizeof want, "/dev/shm%s", key);
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

static void count_region(void *user, const celer_shm_info *info) {
    (void)info;
    (*(int *)user)++;
}

static int n_regions(celer_shm *m) {
    int n = 0;
    assert_int_equal(celer_shm_status(m, NULL, count_region, &n), CELER_OK);
    return n;
}

static void test_off(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(false, &m), CELER_OK);
    char key[128];
    make_object("off", 4096, key, sizeof key);
    tu_expect_err(celer_shm_register(m, "r", key, 0, 64), CELER_ERR_UNSUPPORTED,
                  "Client shared memory is disabled: start celer with --allow-shared-memory");
    tu_expect_err(celer_shm_unregister(m, NULL), CELER_ERR_UNSUPPORTED, "Client shared memory is disabled");
    celer_shm_region *r;
    char *addr;
    tu_expect_err(celer_shm_acquire(m, "r", 0, 8, "input 'x'", &r, &addr), CELER_ERR_UNSUPPORTED, "disabled");
    assert_int_equal(n_regions(m), 0); /* status answers, with nothing in it */
    assert_false(mapped(key));
    celer_shm_free(m);
    shm_unlink(key);
}

static void test_names_and_keys(void **state) {
    (void)state;
    static const struct {
        const char *key, *why;
    } bad[] = {
        {"", "'/' and then the object's name"},
        {"noslash", "'/' and then the object's name in /dev/shm"},
        {"/", "names no object after the '/'"},
        {"/a/b", "holds a '/' after the first"},
        {"//a", "holds a '/' after the first"},
        {"/..", "'.' and '..' name no object"},
        {"/.", "'.' and '..' name no object"},
        {"/a\nb", "control character 0x0a"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        tu_expect_err(celer_shm_check_key("r", bad[i].key), CELER_ERR_INVALID, "cannot register shared memory region 'r' - invalid shm key");
        tu_expect_err(celer_shm_check_key("r", bad[i].key), CELER_ERR_INVALID, bad[i].why);
    }
    char key[300] = "/";
    memset(key + 1, 'k', 255);
    key[256] = 0;
    tu_expect_err(celer_shm_check_key("r", key), CELER_ERR_INVALID, "it is 256 bytes long, at most 255");
    key[255] = 0;
    assert_int_equal(celer_shm_check_key("r", key), CELER_OK);
    assert_int_equal(celer_shm_check_key("r", "/..."), CELER_OK); /* a name like any other */
    tu_expect_err(celer_shm_check_name(""), CELER_ERR_INVALID, "'region name' is necessary");
    tu_expect_err(celer_shm_check_name("a\tb"), CELER_ERR_INVALID, "control character 0x09");
    char name[300];
    memset(name, 'n', 256);
    name[256] = 0;
    tu_expect_err(celer_shm_check_name(name), CELER_ERR_INVALID, "256 bytes: at most 255");
    assert_int_equal(celer_shm_check_name("in/out ok"), CELER_OK);
}

static void test_register_checks(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(true, &m), CELER_OK);
    char key[128], missing[128];
    make_object("reg", 8192, key, sizeof key);
    snprintf(missing, sizeof missing, "/celer-test-%d-missing", (int)getpid());
    tu_expect_err(celer_shm_register(m, "r", missing, 0, 64), CELER_ERR_INVALID, "Unable to open shared memory region: '");
    tu_expect_err(celer_shm_register(m, "r", key, 0, 8193), CELER_ERR_INVALID,
                  "failed to register shared memory region 'r': invalid args: offset 0 + byte_size 8193 is past the end");
    tu_expect_err(celer_shm_register(m, "r", key, 1, 8192), CELER_ERR_INVALID, "invalid args");
    tu_expect_err(celer_shm_register(m, "r", key, 8192, 1), CELER_ERR_INVALID, "invalid args");
    tu_expect_err(celer_shm_register(m, "r", key, 8193, 0), CELER_ERR_INVALID, "invalid args");
    tu_expect_err(celer_shm_register(m, "r", key, UINT64_MAX, 2), CELER_ERR_INVALID, "invalid args");
    tu_expect_err(celer_shm_register(m, "r", key, 0, 0), CELER_ERR_INVALID, "byte_size is 0");
    tu_expect_err(celer_shm_register(m, "r", "/a/b", 0, 8), CELER_ERR_INVALID, "invalid shm key '/a/b'");
    tu_expect_err(celer_shm_register(m, "", key, 0, 8), CELER_ERR_INVALID, "'region name' is necessary");
    assert_int_equal(n_regions(m), 0);
    assert_false(mapped(key));
    /* an offset inside a page: the mapping starts at the page, the region at the offset */
    assert_int_equal(celer_shm_register(m, "r", key, 4196, 100), CELER_OK);
    tu_expect_err(celer_shm_register(m, "r", key, 0, 8), CELER_ERR_INVALID, "shared memory region 'r' already in manager");
    celer_shm_region *r;
    char *addr;
    assert_int_equal(celer_shm_acquire(m, "r", 4, 8, "input 'x'", &r, &addr), CELER_OK);
    unsigned char got[8];
    assert_int_equal(celer_shm_read(r, got, addr, 8, "input 'x'"), CELER_OK);
    for (int i = 0; i < 8; i++) assert_int_equal(got[i], (unsigned char)(4196 + 4 + i));
    celer_shm_release(r);
    /* ranges against the region (100 bytes), Triton's words first */
    tu_expect_err(celer_shm_acquire(m, "nope", 0, 8, "input 'x'", &r, &addr), CELER_ERR_NOT_FOUND,
                  "Unable to find shared memory region: 'nope' (for input 'x'");
    tu_expect_err(celer_shm_acquire(m, "r", 100, 0, "output 'y'", &r, &addr), CELER_ERR_INVALID,
                  "Invalid offset for shared memory region: 'r' (for output 'y': offset 100, the region has 100 bytes)");
    tu_expect_err(celer_shm_acquire(m, "r", 96, 8, "input 'x'", &r, &addr), CELER_ERR_INVALID,
                  "Invalid offset + byte size for shared memory region: 'r' (for input 'x': offset 96 + byte_size 8");
    tu_expect_err(celer_shm_acquire(m, "r", 8, UINT64_MAX - 4, "input 'x'", &r, &addr), CELER_ERR_INVALID,
                  "Integer overflow detected: byte_size (18446744073709551611) + offset (8)");
    assert_int_equal(celer_shm_acquire(m, "r", 0, 100, "input 'x'", &r, &addr), CELER_OK);
    celer_shm_release(r);
    /* status: registration order, Triton's JSON */
    assert_int_equal(celer_shm_register(m, "a", key, 0, 8192), CELER_OK);
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    assert_int_equal(celer_shm_status_json(m, NULL, &out), CELER_OK);
    char want[512];
    snprintf(want, sizeof want,
             "[{\"name\":\"r\",\"key\":\"%s\",\"offset\":4196,\"byte_size\":100},"
             "{\"name\":\"a\",\"key\":\"%s\",\"offset\":0,\"byte_size\":8192}]", key, key);
    assert_string_equal(out.data, want);
    celer_jbuf_reset(&out);
    assert_int_equal(celer_shm_status_json(m, "a", &out), CELER_OK);
    assert_non_null(strstr(out.data, "\"name\":\"a\""));
    assert_null(strstr(out.data, "\"name\":\"r\""));
    celer_jbuf_reset(&out);
    tu_expect_err(celer_shm_status_json(m, "zz", &out), CELER_ERR_NOT_FOUND, "Unable to find system shared memory region: 'zz'");
    assert_int_equal(out.len, 0);
    celer_jbuf_free(&out);
    /* unregister one, an unknown one (no error, as Triton), then all */
    assert_int_equal(celer_shm_unregister(m, "r"), CELER_OK);
    assert_int_equal(celer_shm_unregister(m, "r"), CELER_OK);
    assert_int_equal(n_regions(m), 1);
    assert_true(mapped(key));
    assert_int_equal(celer_shm_unregister(m, ""), CELER_OK);
    assert_int_equal(n_regions(m), 0);
    assert_false(mapped(key));
    celer_shm_free(m);
    shm_unlink(key);
}

/* A request's reference keeps the mapping after its region is unregistered; the last one unmaps. */
static void test_references(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(true, &m), CELER_OK);
    char key[128];
    make_object("refs", 4096, key, sizeof key);
    assert_int_equal(celer_shm_register(m, "r", key, 0, 4096), CELER_OK);
    celer_shm_region *a, *b;
    char *pa, *pb;
    assert_int_equal(celer_shm_acquire(m, "r", 0, 16, "input 'x'", &a, &pa), CELER_OK);
    assert_int_equal(celer_shm_acquire(m, "r", 16, 16, "output 'y'", &b, &pb), CELER_OK);
    assert_string_equal(celer_shm_region_name(a), "r");
    assert_int_equal(celer_shm_unregister(m, NULL), CELER_OK);
    assert_int_equal(n_regions(m), 0); /* the name is gone at once: new requests do not find it */
    tu_expect_err(celer_shm_acquire(m, "r", 0, 16, "input 'x'", &a, &pa), CELER_ERR_NOT_FOUND, "Unable to find");
    /* the name can be registered again while the old mapping lives on */
    assert_int_equal(celer_shm_register(m, "r", key, 0, 64), CELER_OK);
    assert_true(mapped(key));
    unsigned char got[16];
    assert_int_equal(celer_shm_read(a, got, pa, 16, "input 'x'"), CELER_OK);
    assert_int_equal(got[15], 15);
    float f[4] = {1, 2, 3, 4};
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = 1, .dims = {4}}, .data = f};
    assert_int_equal(celer_shm_write_tensor(b, pb, &t, 16, "output 'y'"), CELER_OK);
    assert_memory_equal(pb, f, 16);
    celer_shm_release(a);
    celer_shm_release(b);
    assert_int_equal(celer_shm_unregister(m, "r"), CELER_OK);
    assert_false(mapped(key));
    celer_shm_free(m);
    shm_unlink(key);
}

/* A client truncating its object under a registered region: an error, not SIGBUS. */
static void test_truncated(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(true, &m), CELER_OK);
    char key[128];
    make_object("trunc", 3 * 4096, key, sizeof key);
    assert_int_equal(celer_shm_register(m, "r", key, 0, 3 * 4096), CELER_OK);
    celer_shm_region *r;
    char *addr;
    assert_int_equal(celer_shm_acquire(m, "r", 4096, 8192, "input 'x'", &r, &addr), CELER_OK);
    int fd = shm_open(key, O_RDWR, 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 100), 0);
    char *buf = malloc(8192);
    for (int round = 0; round < 3; round++) { /* the guard works again after it fired */
        tu_expect_err(celer_shm_read(r, buf, addr, 8192, "input 'x'"), CELER_ERR_INVALID,
                      "input 'x': shared memory region 'r' could not be read: its object");
        tu_expect_err(celer_shm_read(r, buf, addr, 8192, "input 'x'"), CELER_ERR_INVALID, "was truncated after it was registered");
        celer_tensor t = {.dtype = CELER_UINT8, .shape = {.rank = 1, .dims = {8192}}, .data = buf};
        tu_expect_err(celer_shm_write_tensor(r, addr, &t, 8192, "output 'y'"), CELER_ERR_INVALID,
                      "output 'y': shared memory region 'r' could not be written");
    }
    /* the part still inside the object reads */
    assert_int_equal(celer_shm_acquire(m, "r", 0, 64, "input 'x'", &r, &addr), CELER_OK);
    assert_int_equal(celer_shm_read(r, buf, addr, 64, "input 'x'"), CELER_OK);
    celer_shm_release(r);
    celer_shm_release(r); /* both references */
    assert_int_equal(ftruncate(fd, 3 * 4096), 0);
    close(fd);
    free(buf);
    celer_shm_free(m);
    shm_unlink(key);
}

/* BYTES outputs in the binary layout: a 4-byte little-endian length, then the bytes. */
static void test_bytes_layout(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(true, &m), CELER_OK);
    char key[128];
    make_object("bytes", 64, key, sizeof key);
    assert_int_equal(celer_shm_register(m, "r", key, 0, 64), CELER_OK);
    celer_shm_region *r;
    char *addr;
    assert_int_equal(celer_shm_acquire(m, "r", 2, 32, "output 'y'", &r, &addr), CELER_OK);
    celer_tensor t = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = TU_STRS("ab", "", "c")};
    ((celer_str *)t.data)[0] = TU_LIT("a\0");
    assert_int_equal(celer_shm_write_tensor(r, addr, &t, 15, "output 'y'"), CELER_OK);
    assert_memory_equal(addr, "\2\0\0\0a\0\0\0\0\0\1\0\0\0c", 15);
    assert_int_equal((unsigned char)addr[15], 2 + 15); /* nothing past it */
    celer_shm_release(r);
    celer_shm_free(m);
    shm_unlink(key);
}

static void test_cap(void **state) {
    (void)state;
    celer_shm *m;
    assert_int_equal(celer_shm_init(true, &m), CELER_OK);
    char key[128], name[32];
    make_object("cap", 4096, key, sizeof key);
    for (int i = 0; i < CELER_SHM_MAX_REGIONS; i++) {
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(celer_shm_register(m, name, key, (uint64_t)(i % 4096), 1), CELER_OK);
    }
    tu_expect_err(celer_shm_register(m, "one-more", key, 0, 1), CELER_ERR_LIMIT,
                  "1024 regions are registered, the most celer keeps");
    assert_int_equal(n_regions(m), CELER_SHM_MAX_REGIONS);
    assert_int_equal(celer_shm_unregister(m, "r7"), CELER_OK);
    assert_int_equal(celer_shm_register(m, "one-more", key, 0, 1), CELER_OK);
    celer_shm_free(m); /* unmaps them all */
    assert_false(mapped(key));
    shm_unlink(key);
}

/* CUDA shared memory: none can be registered (no GPU); status and unregister answer as Triton
 * built without GPUs does. */
static void test_cuda(void **state) {
    (void)state;
    celer_shm *on, *off;
    assert_int_equal(celer_shm_init(true, &on), CELER_OK);
    assert_int_equal(celer_shm_init(false, &off), CELER_OK);
    tu_expect_err(celer_shm_cuda(on, "register", "g"), CELER_ERR_UNSUPPORTED,
                  "failed to register CUDA shared memory region: 'g', GPUs not supported (CUDA shared memory is not "
                  "supported: no GPU; celer runs on the CPU only: use system shared memory");
    tu_expect_err(celer_shm_cuda(off, "register", "g"), CELER_ERR_UNSUPPORTED, "no GPU");
    assert_int_equal(celer_shm_cuda(on, "status", ""), CELER_OK);
    assert_int_equal(celer_shm_cuda(off, "status", NULL), CELER_OK);
    tu_expect_err(celer_shm_cuda(on, "status", "g"), CELER_ERR_NOT_FOUND, "Unable to find cuda shared memory region: 'g'");
    assert_int_equal(celer_shm_cuda(on, "unregister", ""), CELER_OK);
    assert_int_equal(celer_shm_cuda(on, "unregister", "g"), CELER_OK);
    tu_expect_err(celer_shm_cuda(off, "unregister", ""), CELER_ERR_UNSUPPORTED, "Client shared memory is disabled");
    celer_shm_free(on);
    celer_shm_free(off);
}

/* Threads acquiring, reading, writing and releasing while another registers and unregisters the
 * region: every acquire either finds it or is refused, and nothing is touched after its unmap
 * (ASan and TSan builds check that). */
typedef struct race {
    celer_shm *m;
    atomic_bool stop;
    atomic_int found, refused, bad; /* cmocka's asserts are for the main thread: counted here */
} race;

static void *racer(void *arg) {
    race *x = arg;
    unsigned char buf[256];
    while (!atomic_load(&x->stop)) {
        celer_shm_region *r;
        char *addr;
        celer_status st = celer_shm_acquire(x->m, "hot", 0, sizeof buf, "input 'x'", &r, &addr);
        if (st) {
            atomic_fetch_add(st == CELER_ERR_NOT_FOUND ? &x->refused : &x->bad, 1);
            continue;
        }
        if (celer_shm_read(r, buf, addr, sizeof buf, "input 'x'") || buf[200] != 200) atomic_fetch_add(&x->bad, 1);
        sched_yield(); /* hold it a while: the unregistration often comes meanwhile */
        celer_shm_release(r);
        atomic_fetch_add(&x->found, 1);
    }
    return NULL;
}

static void test_race(void **state) {
    (void)state;
    race x = {0};
    assert_int_equal(celer_shm_init(true, &x.m), CELER_OK);
    char key[128];
    make_object("race", 4096, key, sizeof key);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, racer, &x);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(celer_shm_register(x.m, "hot", key, 0, 4096), CELER_OK);
        if (i % 2) sched_yield();
        assert_int_equal(celer_shm_unregister(x.m, i % 3 ? "hot" : NULL), CELER_OK);
    }
    atomic_store(&x.stop, true);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&x.bad), 0);
    assert_true(atomic_load(&x.found) + atomic_load(&x.refused) > 0);
    assert_false(mapped(key));
    celer_shm_free(x.m);
    shm_unlink(key);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),        cmocka_unit_test(test_names_and_keys), cmocka_unit_test(test_register_checks),
        cmocka_unit_test(test_references), cmocka_unit_test(test_truncated),      cmocka_unit_test(test_bytes_layout),
        cmocka_unit_test(test_cap),        cmocka_unit_test(test_cuda),           cmocka_unit_test(test_race),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
