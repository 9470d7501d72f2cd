/* The recommend step against the memory-bandwidth bound, side by side in one run: the median
 * time of celer_recommend_topk (k = 10, 20 excluded ids) over an item matrix, and the median time
 * of one plain read of the same matrix (OpenBLAS sasum: one vectorized pass, nothing else). The
 * issue's target is a ratio of at most 1.5. Built and run by bench/recommend_bench.sh.
 *
 *   recommend_bench ITEMS.npy [RUNS] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pipeline/pipeline.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: recommend_bench ITEMS.npy [RUNS]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    if (runs < 1) runs = 1;
    openblas_set_num_threads(1);
    celer_recommend *r;
    if (celer_recommend_open(argv[1], NULL, &r)) {
        fprintf(stderr, "recommend_bench: %s\n", celer_error_message());
        return 1;
    }
    int64_t n = celer_recommend_items(r), dim = celer_recommend_dim(r);
    celer_npy_map m;
    if (celer_npy_map_open(argv[1], &m)) return 1;
    const float *items = m.tensor.data;
    float *user = malloc(sizeof(float) * (size_t)dim);
    for (int64_t d = 0; d < dim; d++) user[d] = (float)((d * 7919) % 13) / 13.f - 0.5f;
    int64_t exclude[20], ids[10];
    float scores[10];
    for (int i = 0; i < 20; i++) exclude[i] = (i * 104729) % n;
    void *scratch = aligned_alloc(64, celer_recommend_scratch_bytes(r, 10, 20));
    double *t_rec = malloc(sizeof(double) * (size_t)runs), *t_read = malloc(sizeof(double) * (size_t)runs);
    volatile float sink = 0;
    int got = 0;
    for (int i = 0; i < 5; i++) { /* warm-up: pages mapped in, caches as in steady state */
        celer_recommend_topk(r, user, dim, exclude, 20, 10, scratch, ids, scores, &got);
        sink += cblas_sasum((int)(n * dim), items, 1);
    }
    for (int i = 0; i < runs; i++) { /* alternate, so load hits both alike */
        double t0 = now_ms();
        celer_recommend_topk(r, user, dim, exclude, 20, 10, scratch, ids, scores, &got);
        double t1 = now_ms();
        sink += cblas_sasum((int)(n * dim), items, 1);
        double t2 = now_ms();
        t_rec[i] = t1 - t0;
        t_read[i] = t2 - t1;
    }
    qsort(t_rec, (size_t)runs, sizeof(double), cmp_double);
    qsort(t_read, (size_t)runs, sizeof(double), cmp_double);
    double rec = t_rec[runs / 2], rd = t_read[runs / 2];
    double mb = (double)n * (double)dim * 4 / 1e6;
    printf("items %lld x %lld float32 (%.1f MB), %d runs each, 1 thread\n", (long long)n, (long long)dim, mb, runs);
    printf("recommend top-10 (20 excluded)   median %.3f ms  (%.1f GB/s)\n", rec, mb / rec);
    printf("plain read of the matrix (sasum) median %.3f ms  (%.1f GB/s)\n", rd, mb / rd);
    printf("ratio recommend / read  %.2f   target <= 1.50   %s\n", rec / rd, rec / rd <= 1.5 ? "met" : "NOT met");
    printf("{\"items\": %lld, \"dim\": %lld, \"recommend_ms\": %.4f, \"read_ms\": %.4f, \"ratio\": %.3f, \"best_id\": %lld}\n",
           (long long)n, (long long)dim, rec, rd, rec / rd, got ? (long long)ids[0] : -1LL);
    celer_npy_map_close(&m);
    celer_recommend_free(r);
    free(user);
    free(scratch);
    free(t_rec);
    free(t_read);
    return sink == -1.f;
}
