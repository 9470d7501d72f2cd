/* The CPUs the process may use (src/base: celer_cpu_count, celer_cpu_quota): cgroup v2 and v1
 * quotas read from files laid out as the kernel does, on the cgroup itself or an ancestor, the
 * tightest one winning, none at all, and the live machine's count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char root[256];

/* Writes text to root/rel, making its folders. */
static void put(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int quota(void) {
    char proc[300], fs[300];
    snprintf(proc, sizeof proc, "%s/proc-self-cgroup", root);
    snprintf(fs, sizeof fs, "%s/fs", root);
    return celer_cpu_quota(proc, fs);
}

static int setup(void **unused) {
    (void)unused;
    snprintf(root, sizeof root, "%s/celer-cpus-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **unused) {
    (void)unused;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_v2(void **unused) {
    (void)unused;
    put("proc-self-cgroup", "0::/kubepods/pod1/c1\n");
    put("fs/kubepods/pod1/c1/cpu.max", "max 100000\n");
    assert_int_equal(quota(), 0); /* no quota */
    put("fs/kubepods/pod1/c1/cpu.max", "250000 100000\n");
    assert_int_equal(quota(), 3); /* 2.5 CPUs: 3 workers */
    put("fs/kubepods/pod1/cpu.max", "150000 100000\n"); /* the pod's, tighter */
    assert_int_equal(quota(), 2);
    put("fs/cpu.max", "50000 100000\n"); /* the root's (a container's namespace), half a CPU */
    assert_int_equal(quota(), 1);
}

static void test_v1(void **unused) {
    (void)unused;
    put("proc-self-cgroup", "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
    put("fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    put("fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    assert_int_equal(quota(), 0);
    put("fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "400000\n");
    assert_int_equal(quota(), 4);
    /* inside the container the cgroup is mounted as the root: the host's path is not there */
    put("proc-self-cgroup", "4:cpu,cpuacct:/docker/other\n");
    put("fs/cpu,cpuacct/cpu.cfs_quota_us", "200000\n");
    put("fs/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    assert_int_equal(quota(), 2);
}

static void test_none(void **unused) {
    (void)unused;
    assert_int_equal(celer_cpu_quota("/nonexistent/cgroup", "/nonexistent"), 0);
    put("proc-self-cgroup", "garbage\n0::\n");
    assert_int_equal(quota(), 0);
    /* the machine itself: between 1 and the online count */
    int n = celer_cpu_count();
    assert_true(n >= 1 && n <= sysconf(_SC_NPROCESSORS_ONLN));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
