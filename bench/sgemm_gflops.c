/* Single-thread OpenBLAS SGEMM throughput: the yardstick for celer's convolution GFLOP/s in
 * bench/engine_bench.sh (which builds and runs it). Build and run by hand:
 *
 *   gcc -O2 -o sgemm_gflops bench/sgemm_gflops.c $(pkg-config --cflags --libs openblas)
 *   ./sgemm_gflops [N [REPS]]     (default N 1024, REPS 10)
 *
 * Times C = A * B for N x N x N float matrices on one OpenBLAS thread: 3 warm-up calls, then REPS
 * timed calls; prints the median and best, and as its last line a JSON object with sgemm_gflops
 * (from the median). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1024, reps = argc > 2 ? atoi(argv[2]) : 10;
    if (n < 1 || n > 16384 || reps < 1 || reps > 10000) {
        fprintf(stderr, "usage: sgemm_gflops [N (1..16384)] [REPS (1..10000)]\n");
        return 2;
    }
    openblas_set_num_threads(1); /* celer's 1-thread rows are compared against one core */
    size_t count = (size_t)n * (size_t)n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b), *c = malloc(count * sizeof *c);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!a || !b || !c || !t) {
        fprintf(stderr, "sgemm_gflops: out of memory\n");
        return 1;
    }
    unsigned s = 12345; /* fixed LCG: values in [-1, 1), no denormals */
    for (size_t i = 0; i < count; i++) {
        s = s * 1103515245u + 12345u;
        a[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
        s = s * 1103515245u + 12345u;
        b[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < 3 + reps; i++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (i >= 3) t[i - 3] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double flop = 2.0 * n * n * n, median = t[reps / 2], best = t[0];
    printf("sgemm %dx%dx%d, 1 OpenBLAS thread, %d runs: median %.2f ms (%.1f GFLOP/s), best %.2f ms (%.1f GFLOP/s)\n",
           n, n, n, reps, median * 1e3, flop / median * 1e-9, best * 1e3, flop / best * 1e-9);
    printf("{\"n\": %d, \"runs\": %d, \"median_ms\": %.4f, \"sgemm_gflops\": %.2f, \"best_gflops\": %.2f, \"check\": %g}\n",
           n, reps, median * 1e3, flop / median * 1e-9, flop / best * 1e-9, (double)c[count / 2]);
    free(a);
    free(b);
    free(c);
    free(t);
    return 0;
}
