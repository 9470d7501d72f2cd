/* The recommend step: top-k items by dot product with user embeddings.
 *
 * One pass over the matrix per call, for one user or a batch: scores for a block of items come
 * from the panel kernels (AVX2 + FMA, matrix packed at load) or OpenBLAS (SGEMV / SGEMM on the
 * mapping elsewhere); each user's scores are checked against the worst of the k it keeps (the
 * root of a min-heap), and only the few that beat it pay for a heap update and for the lookup in
 * the sorted exclusion list. One user's pass is bound by memory bandwidth
 * (bench/recommend_bench.sh compares it with a plain read of the matrix); a batch shares it. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "step.h"

#define BLOCK 2048 /* rows scored per SGEMV: 8 KiB of scores */
#define BATCH_BLOCK 512 /* items scored per SGEMM for a batch of users: 64 KiB of scores at 64 users */

struct celer_recommend {
    celer_npy_map items, ids; /* ids.map NULL: an item's id is its row */
    int64_t n, dim;
    /* On AVX2 + FMA the matrix is repacked at load into panels of 8 items, [panel][dim][8], and
     * the mapping closed: scoring then needs no packing per call (see score_panels). */
    float *panels;
};

static int have_fma(void) {
    static int have = -1; /* benign race: every thread computes the same value */
    if (have < 0) have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return have;
}

static void pack_panels(celer_recommend *r) {
    int64_t n8 = (r->n + 7) & ~(int64_t)7;
    size_t bytes = sizeof(float) * (size_t)n8 * (size_t)r->dim;
    r->panels = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!r->panels) return; /* no memory for the copy: the mapped matrix serves, through BLAS */
    const float *items = r->items.tensor.data;
    for (int64_t p = 0; p < n8 / 8; p++)
        for (int64_t k = 0; k < r->dim; k++)
            for (int j = 0; j < 8; j++) {
                int64_t i = p * 8 + j;
                r->panels[(p * r->dim + k) * 8 + j] = i < r->n ? items[i * r->dim + k] : 0.f;
            }
    celer_npy_map_close(&r->items);
}

celer_status celer_recommend_open(const char *items_npy, const char *ids_npy, celer_recommend **out) {
    celer_recommend *r = calloc(1, sizeof *r);
    if (!r) return celer_errorf(CELER_ERR_NOMEM, "out of memory opening %s", items_npy);
    char b[160];
    celer_status st = celer_npy_map_open(items_npy, &r->items);
    const celer_tensor *t = &r->items.tensor;
    if (!st && (t->dtype != CELER_FLOAT || t->shape.rank != 2))
        st = celer_errorf(CELER_ERR_INVALID, "%s: the item matrix must be float32 [items, dim], got %s %s",
                          items_npy, celer_dtype_name(t->dtype), celer_shape_str(&t->shape, b, sizeof b));
    if (!st) {
        r->n = t->shape.dims[0];
        r->dim = t->shape.dims[1];
        if (r->dim < 1 || r->dim > INT32_MAX || r->n > INT32_MAX)
            st = celer_errorf(CELER_ERR_LIMIT, "%s: %lld items of dim %lld: each must be 1 to 2^31-1", items_npy,
                              (long long)r->n, (long long)r->dim);
    }
    if (!st && ids_npy) {
        st = celer_npy_map_open(ids_npy, &r->ids);
        const celer_tensor *it = &r->ids.tensor;
        if (!st && (it->dtype != CELER_INT64 || it->shape.rank != 1 || it->shape.dims[0] != r->n))
            st = celer_errorf(CELER_ERR_INVALID, "%s: item ids must be int64 [%lld] (one per row of %s), got %s %s",
                              ids_npy, (long long)r->n, items_npy, celer_dtype_name(it->dtype),
                              celer_shape_str(&it->shape, b, sizeof b));
    }
    if (st) {
        celer_recommend_free(r);
        return st;
    }
    if (have_fma() && !getenv("CELER_RECOMMEND_PLAIN")) pack_panels(r); /* the variable: tests of the BLAS path */
    *out = r;
    return CELER_OK;
}

void celer_recommend_free(celer_recommend *r) {
    if (!r) return;
    celer_npy_map_close(&r->items);
    celer_npy_map_close(&r->ids);
    free(r->panels);
    free(r);
}

int64_t celer_recommend_items(const celer_recommend *r) { return r->n; }
int64_t celer_recommend_dim(const celer_recommend *r) { return r->dim; }

typedef struct hit {
    float score;
    int64_t id;
} hit;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t celer_recommend_scratch_bytes(const celer_recommend *r, int k, int n_exclude) {
    if (r->panels) return celer_recommend_batch_scratch_bytes(r, 1, k, n_exclude);
    k = k < 0 ? 0 : k > CELER_RECOMMEND_MAX_K ? CELER_RECOMMEND_MAX_K : k;
    n_exclude = n_exclude < 0 ? 0 : n_exclude > CELER_RECOMMEND_MAX_EXCLUDE ? CELER_RECOMMEND_MAX_EXCLUDE : n_exclude;
    return align64(sizeof(float) * BLOCK) + align64(sizeof(hit) * (size_t)(k + 1)) +
           align64(sizeof(int64_t) * (size_t)(n_exclude + 1));
}

/* a ranks below b: lower score, or the same score and a higher id */
static bool worse(hit a, hit b) { return a.score < b.score || (a.score == b.score && a.id > b.id); }

static void sift_down(hit *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(h[l], h[m])) m = l;
        if (r < n && worse(h[r], h[m])) m = r;
        if (m == i) return;
        hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(hit *h, int i) {
    while (i > 0 && worse(h[i], h[(i - 1) / 2])) {
        hit t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool excluded(const int64_t *ex, int n, int64_t id) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ex[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ex[lo] == id;
}

/* Offers (s, id) to a row's top-k heap: most scores fail the first test against the worst kept. */
static inline void offer(hit *heap, int *kept, int k, float s, int64_t id, const int64_t *ex, int n_ex) {
    if (s != s) return; /* NaN */
    if (*kept == k && s < heap[0].score) return;
    hit h = {s, id};
    if (*kept == k && !worse(heap[0], h)) return;
    if (n_ex && excluded(ex, n_ex, id)) return;
    if (*kept < k) {
        heap[*kept] = h;
        sift_up(heap, (*kept)++);
    } else {
        heap[0] = h;
        sift_down(heap, *kept, 0);
    }
}

/* Pops a heap into ids/scores, best first. */
static void drain(hit *heap, int kept, int64_t *ids, float *scores) {
    for (int n = kept; n > 0; n--) {
        ids[n - 1] = heap[0].id;
        scores[n - 1] = heap[0].score;
        heap[0] = heap[n - 1];
        sift_down(heap, n - 1, 0);
    }
}

celer_status celer_recommend_topk(const celer_recommend *r, const float *user, int64_t dim,
                                  const int64_t *exclude, int n_exclude, int k, void *scratch,
                                  int64_t *ids, float *scores, int *n_out) {
    *n_out = 0;
    if (dim != r->dim)
        return celer_errorf(CELER_ERR_INVALID, "recommend: the user embedding has %lld values, the item matrix "
                            "has dim %lld", (long long)dim, (long long)r->dim);
    if (k < 1 || k > CELER_RECOMMEND_MAX_K)
        return celer_errorf(CELER_ERR_INVALID, "recommend: k = %d must be 1 to %d", k, CELER_RECOMMEND_MAX_K);
    if (n_exclude < 0 || n_exclude > CELER_RECOMMEND_MAX_EXCLUDE)
        return celer_errorf(CELER_ERR_INVALID, "recommend: %d excluded ids, at most %d", n_exclude,
                            CELER_RECOMMEND_MAX_EXCLUDE);
    if (r->panels) { /* the panel kernel, as a batch of one */
        const int64_t *exs[1] = {exclude};
        int nex[1] = {n_exclude};
        return celer_recommend_topk_batch(r, user, 1, exs, nex, k, scratch, ids, scores, n_out);
    }
    char *base = scratch;
    float *block = (float *)base;
    hit *heap = (hit *)(base + align64(sizeof(float) * BLOCK));
    int64_t *ex = (int64_t *)((char *)heap + align64(sizeof(hit) * (size_t)(k + 1)));
    if (n_exclude) memcpy(ex, exclude, sizeof(int64_t) * (size_t)n_exclude);
    qsort(ex, (size_t)n_exclude, sizeof *ex, cmp_i64);
    const float *items = r->items.tensor.data;
    const int64_t *item_ids = r->ids.map ? r->ids.tensor.data : NULL;
    int kept = 0;
    for (int64_t b0 = 0; b0 < r->n; b0 += BLOCK) {
        int rows = (int)(r->n - b0 < BLOCK ? r->n - b0 : BLOCK);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, (int)r->dim, 1.f, items + b0 * r->dim, (int)r->dim, user, 1,
                    0.f, block, 1);
        for (int i = 0; i < rows; i++)
            offer(heap, &kept, k, block[i], item_ids ? item_ids[b0 + i] : b0 + i, ex, n_exclude);
    }
    drain(heap, kept, ids, scores);
    *n_out = kept;
    return CELER_OK;
}

/* ---- scoring a block of items ----
 * With panels: out[u * ld + i] = users[u] . item i for the items of panels [p0, p0 + np) and
 * users in groups of 4 (the caller pads with zero users). Two panels by four users make eight
 * 8-wide accumulators; each step of dim loads two panel rows and broadcasts four user values: the
 * GEMM micro-kernel shape, with the item side packed once at load instead of per call. Scores of
 * the padding items of the last panel are written too (ld must allow it) and ignored. */
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static void score_panels(const float *panels, int64_t p0, int np, int dim,
                                                             const float *users, int n_users4, float *out, int ld) {
    for (int p = 0; p < np; p += 2) {
        const float *a = panels + (size_t)(p0 + p) * (size_t)dim * 8;
        const float *b = p + 1 < np ? a + (size_t)dim * 8 : a; /* an odd last panel is scored twice */
        for (int u = 0; u < n_users4; u += 4) {
            const float *u0 = users + (size_t)u * (size_t)dim, *u1 = u0 + dim, *u2 = u1 + dim, *u3 = u2 + dim;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
            /* the first group pulls the next panel pair in, one cache line per step of dim
             * (a pair is 64 * dim bytes) */
            const char *next = p + 2 < np && u == 0 ? (const char *)(a + (size_t)dim * 16) : NULL;
            for (int k = 0; k < dim; k++) {
                if (next) _mm_prefetch(next + (size_t)k * 64, _MM_HINT_T0);
                __m256 pa = _mm256_load_ps(a + (size_t)k * 8), pb = _mm256_load_ps(b + (size_t)k * 8);
                __m256 v0 = _mm256_broadcast_ss(u0 + k), v1 = _mm256_broadcast_ss(u1 + k);
                __m256 v2 = _mm256_broadcast_ss(u2 + k), v3 = _mm256_broadcast_ss(u3 + k);
                c0 = _mm256_fmadd_ps(pa, v0, c0);
                c1 = _mm256_fmadd_ps(pa, v1, c1);
                c2 = _mm256_fmadd_ps(pa, v2, c2);
                c3 = _mm256_fmadd_ps(pa, v3, c3);
                c4 = _mm256_fmadd_ps(pb, v0, c4);
                c5 = _mm256_fmadd_ps(pb, v1, c5);
                c6 = _mm256_fmadd_ps(pb, v2, c6);
                c7 = _mm256_fmadd_ps(pb, v3, c7);
            }
            float *o = out + (size_t)u * (size_t)ld + (size_t)p * 8;
            _mm256_storeu_ps(o, c0);
            _mm256_storeu_ps(o + ld, c1);
            _mm256_storeu_ps(o + 2 * (size_t)ld, c2);
            _mm256_storeu_ps(o + 3 * (size_t)ld, c3);
            if (p + 1 < np) {
                _mm256_storeu_ps(o + 8, c4);
                _mm256_storeu_ps(o + ld + 8, c5);
                _mm256_storeu_ps(o + 2 * (size_t)ld + 8, c6);
                _mm256_storeu_ps(o + 3 * (size_t)ld + 8, c7);
            }
        }
    }
}

/* True when some s[i] >= thr (NaN never is). */
__attribute__((target("avx2"))) static int any_at_least(const float *s, int n, float thr) {
    __m256 t = _mm256_set1_ps(thr), m = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_or_ps(m, _mm256_cmp_ps(_mm256_loadu_ps(s + i), t, _CMP_GE_OQ));
    int any = _mm256_movemask_ps(m);
    for (; i < n; i++) any |= s[i] >= thr;
    return any;
}

/* One user: four panels at a time, no padding users (the pass is bound by memory, not FMAs). */
__attribute__((target("avx2,fma"))) static void score_panels1(const float *panels, int64_t p0, int np, int dim,
                                                              const float *user, float *out) {
    int p = 0;
    for (; p + 4 <= np; p += 4) {
        const float *a = panels + (size_t)(p0 + p) * (size_t)dim * 8;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int k = 0; k < dim; k++) {
            __m256 v = _mm256_broadcast_ss(user + k);
            c0 = _mm256_fmadd_ps(_mm256_load_ps(a + (size_t)k * 8), v, c0);
            c1 = _mm256_fmadd_ps(_mm256_load_ps(a + ((size_t)dim + (size_t)k) * 8), v, c1);
            c2 = _mm256_fmadd_ps(_mm256_load_ps(a + (2 * (size_t)dim + (size_t)k) * 8), v, c2);
            c3 = _mm256_fmadd_ps(_mm256_load_ps(a + (3 * (size_t)dim + (size_t)k) * 8), v, c3);
        }
        _mm256_storeu_ps(out + (size_t)p * 8, c0);
        _mm256_storeu_ps(out + (size_t)p * 8 + 8, c1);
        _mm256_storeu_ps(out + (size_t)p * 8 + 16, c2);
        _mm256_storeu_ps(out + (size_t)p * 8 + 24, c3);
    }
    for (; p < np; p++) {
        const float *a = panels + (size_t)(p0 + p) * (size_t)dim * 8;
        __m256 c0 = _mm256_setzero_ps();
        for (int k = 0; k < dim; k++) c0 = _mm256_fmadd_ps(_mm256_load_ps(a + (size_t)k * 8), _mm256_broadcast_ss(user + k), c0);
        _mm256_storeu_ps(out + (size_t)p * 8, c0);
    }
}

size_t celer_recommend_batch_scratch_bytes(const celer_recommend *r, int n_users, int k, int64_t n_exclude_total) {
    int n4 = (n_users + 3) & ~3;
    return align64(sizeof(float) * (size_t)n4 * (size_t)r->dim) + align64(sizeof(float) * BATCH_BLOCK * (size_t)n4) + align64(sizeof(hit) * (size_t)(k + 1)) * (size_t)n_users +
           align64(sizeof(int64_t) * (size_t)(n_exclude_total + 1)) + align64(sizeof(int) * (size_t)n_users);
}

celer_status celer_recommend_topk_batch(const celer_recommend *r, const float *users, int n_users,
                                        const int64_t *const *exclude, const int *n_exclude, int k, void *scratch,
                                        int64_t *ids, float *scores, int *n_out) {
    if (n_users < 1 || n_users > CELER_RECOMMEND_MAX_BATCH)
        return celer_errorf(CELER_ERR_INVALID, "recommend: %d users in a batch, 1 to %d", n_users, CELER_RECOMMEND_MAX_BATCH);
    if (k < 1 || k > CELER_RECOMMEND_MAX_K)
        return celer_errorf(CELER_ERR_INVALID, "recommend: k = %d must be 1 to %d", k, CELER_RECOMMEND_MAX_K);
    int n4 = (n_users + 3) & ~3;
    char *base = scratch;
    float *padded = (float *)base; /* users, then zero rows up to a multiple of 4 */
    base += align64(sizeof(float) * (size_t)n4 * (size_t)r->dim);
    float *block = (float *)base;
    base += align64(sizeof(float) * BATCH_BLOCK * (size_t)n4);
    hit *heaps = (hit *)base;
    size_t heap_stride = align64(sizeof(hit) * (size_t)(k + 1)) / sizeof(hit);
    base += align64(sizeof(hit) * (size_t)(k + 1)) * (size_t)n_users;
    int64_t *ex_all = (int64_t *)base;
    const int64_t *ex[CELER_RECOMMEND_MAX_BATCH];
    int64_t off = 0;
    for (int u = 0; u < n_users; u++) {
        if (n_exclude[u] < 0 || n_exclude[u] > CELER_RECOMMEND_MAX_EXCLUDE)
            return celer_errorf(CELER_ERR_INVALID, "recommend: %d excluded ids, at most %d", n_exclude[u],
                                CELER_RECOMMEND_MAX_EXCLUDE);
        if (n_exclude[u]) memcpy(ex_all + off, exclude[u], sizeof(int64_t) * (size_t)n_exclude[u]);
        qsort(ex_all + off, (size_t)n_exclude[u], sizeof(int64_t), cmp_i64);
        ex[u] = ex_all + off;
        off += n_exclude[u];
    }
    int kept[CELER_RECOMMEND_MAX_BATCH] = {0};
    bool fast = r->panels != NULL;
    if (fast) {
        memcpy(padded, users, sizeof(float) * (size_t)n_users * (size_t)r->dim);
        memset(padded + (size_t)n_users * (size_t)r->dim, 0, sizeof(float) * (size_t)(n4 - n_users) * (size_t)r->dim);
    }
    const float *items = r->items.tensor.data;
    const int64_t *item_ids = r->ids.map ? r->ids.tensor.data : NULL;
    /* one pass over the matrix for every user: SGEMM scores a block of items for all of them */
    for (int64_t b0 = 0; b0 < r->n; b0 += BATCH_BLOCK) {
        int rows = (int)(r->n - b0 < BATCH_BLOCK ? r->n - b0 : BATCH_BLOCK);
        int ld = fast ? BATCH_BLOCK : rows;
        if (fast && n_users == 1)
            score_panels1(r->panels, b0 / 8, (rows + 7) / 8, (int)r->dim, users, block);
        else if (fast)
            score_panels(r->panels, b0 / 8, (rows + 7) / 8, (int)r->dim, padded, n4, block, BATCH_BLOCK);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_users, rows, (int)r->dim, 1.f, users, (int)r->dim,
                        items + b0 * r->dim, (int)r->dim, 0.f, block, rows);
        for (int u = 0; u < n_users; u++) {
            const float *sc = block + (size_t)u * (size_t)ld;
            hit *heap = heaps + (size_t)u * heap_stride;
            if (kept[u] == k) { /* most blocks hold nothing better than the worst kept: one vector pass */
                float thr = heap[0].score;
                int any = 0;
                if (fast) {
                    any = any_at_least(sc, rows, thr);
                } else {
                    for (int i = 0; i < rows; i++) any |= sc[i] >= thr;
                }
                if (!any) continue;
            }
            int kp = kept[u];
            float thr = kp == k ? heap[0].score : -INFINITY;
            for (int i = 0; i < rows; i++) {
                if (!(sc[i] >= thr)) continue; /* below the worst kept, or NaN */
                offer(heap, &kp, k, sc[i], item_ids ? item_ids[b0 + i] : b0 + i, ex[u], n_exclude[u]);
                if (kp == k) thr = heap[0].score;
            }
            kept[u] = kp;
        }
    }
    for (int u = 0; u < n_users; u++) {
        drain(heaps + (size_t)u * heap_stride, kept[u], ids + (size_t)u * (size_t)k, scores + (size_t)u * (size_t)k);
        n_out[u] = kept[u];
    }
    return CELER_OK;
}

/* ---- the pipeline step ----
 * recommend {input: user embeddings [N, dim], items: items.npy, ids: ids.npy, k, exclude: name,
 * output: [ids, scores]}: per row, the k best items. `exclude` (optional) is an integer tensor
 * [N, E] (or [N]: one id per row) of ids to leave out for that row. Rows with fewer than k
 * candidates left are padded with id -1 and score 0. */

typedef struct recommend_params {
    celer_recommend *index;
    int64_t k;
    bool has_exclude;
} recommend_params;

static celer_status recommend_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    recommend_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    const char *items = NULL, *ids = NULL;
    CELER_TRY(pl_arg_path(c, args, "items", true, &items));
    CELER_TRY(pl_arg_path(c, args, "ids", false, &ids));
    p->k = 10;
    CELER_TRY(pl_arg_int(c, args, "k", false, 1, CELER_RECOMMEND_MAX_K, &p->k));
    CELER_TRY(pl_arg_input(c, args, "input", s));
    if (pl_arg(c, args, "exclude")) {
        CELER_TRY(pl_arg_input(c, args, "exclude", s));
        p->has_exclude = true;
    }
    CELER_TRY(pl_arg_outputs(c, args, "output", 2, s));
    if (celer_recommend_open(items, ids, &p->index)) return pl_error(c, pl_arg(c, args, "items"), "%s", celer_error_message());
    s->params = p;
    return CELER_OK;
}

static void recommend_free(pl_step *s) {
    recommend_params *p = s->params;
    if (p) celer_recommend_free(p->index);
}

/* Checks one request's inputs; sets its user rows and exclusion lists. */
static celer_status recommend_prepare(const recommend_params *p, pl_exec *x, const pl_step *s, const float **user,
                                      int64_t *rows, const int64_t **ex_ids, int64_t *n_ex) {
    const celer_tensor *u = &pl_in(x, s, 0)->t;
    int64_t dim = celer_recommend_dim(p->index);
    char b[128];
    if (u->dtype != CELER_FLOAT || u->shape.rank != 2 || u->shape.dims[1] != dim)
        return celer_errorf(CELER_ERR_SHAPE, "the user embedding must be float32 [rows, %lld], got %s %s", (long long)dim,
                            celer_dtype_name(u->dtype), celer_shape_str(&u->shape, b, sizeof b));
    *user = u->data;
    *rows = u->shape.dims[0];
    *ex_ids = NULL;
    *n_ex = 0;
    if (!p->has_exclude) return CELER_OK;
    const celer_tensor *ex = &pl_in(x, s, 1)->t;
    if (ex->shape.rank < 1 || ex->shape.rank > 2 || ex->shape.dims[0] != *rows || !pl_is_numeric(ex->dtype) ||
        ex->dtype == CELER_FLOAT || ex->dtype == CELER_DOUBLE)
        return celer_errorf(CELER_ERR_SHAPE, "exclude must be integers [%lld, E] (one list per row), got %s %s",
                            (long long)*rows, celer_dtype_name(ex->dtype), celer_shape_str(&ex->shape, b, sizeof b));
    *n_ex = ex->shape.rank == 2 ? ex->shape.dims[1] : 1;
    if (*n_ex > CELER_RECOMMEND_MAX_EXCLUDE)
        return celer_errorf(CELER_ERR_LIMIT, "exclude has %lld ids per row, at most %d", (long long)*n_ex,
                            CELER_RECOMMEND_MAX_EXCLUDE);
    if (ex->dtype == CELER_INT64) {
        *ex_ids = ex->data;
        return CELER_OK;
    }
    int64_t *conv = pl_scratch(x, sizeof *conv * (size_t)(*rows * *n_ex));
    if (!conv) return CELER_ERR_LIMIT;
    for (int64_t i = 0; i < *rows * *n_ex; i++) conv[i] = (int64_t)celer_ops_double_at(ex, i);
    *ex_ids = conv;
    return CELER_OK;
}

/* Rows gathered from the requests of a batch, scored together. */
typedef struct rec_batch {
    int m;
    int64_t ex_total;
    int req[CELER_RECOMMEND_MAX_BATCH];        /* index in xs */
    int64_t row[CELER_RECOMMEND_MAX_BATCH];    /* row of that request */
    const float *users[CELER_RECOMMEND_MAX_BATCH];
    const int64_t *ex[CELER_RECOMMEND_MAX_BATCH];
    int n_ex[CELER_RECOMMEND_MAX_BATCH], n_out[CELER_RECOMMEND_MAX_BATCH];
} rec_batch;

/* Scores the gathered rows in one pass and writes each into its request's outputs. Scratch comes
 * from the arena of the request `scratch_from`. */
static void rec_flush(const recommend_params *p, rec_batch *b, pl_exec *const *xs, int64_t *const *out_ids,
                      float *const *out_scores, pl_exec *scratch_from) {
    if (b->m == 0) return;
    int64_t dim = celer_recommend_dim(p->index);
    int k = (int)p->k, m = b->m;
    float *u = pl_scratch(scratch_from, sizeof(float) * (size_t)(m * dim));
    int64_t *ids = pl_scratch(scratch_from, sizeof(int64_t) * (size_t)m * (size_t)k);
    float *sc = pl_scratch(scratch_from, sizeof(float) * (size_t)m * (size_t)k);
    /* one user: SGEMV straight over the matrix (SGEMM would copy it into its packed form) */
    void *scratch = pl_scratch(scratch_from, m == 1 ? celer_recommend_scratch_bytes(p->index, k, b->n_ex[0])
                                                    : celer_recommend_batch_scratch_bytes(p->index, m, k, b->ex_total));
    celer_status st = u && ids && sc && scratch ? CELER_OK : CELER_ERR_LIMIT;
    for (int i = 0; i < m && !st; i++) memcpy(u + i * dim, b->users[i], sizeof(float) * (size_t)dim);
    if (!st && m == 1) st = celer_recommend_topk(p->index, u, dim, b->ex[0], b->n_ex[0], k, scratch, ids, sc, b->n_out);
    else if (!st) st = celer_recommend_topk_batch(p->index, u, m, b->ex, b->n_ex, k, scratch, ids, sc, b->n_out);
    for (int i = 0; i < m; i++) {
        pl_exec *x = xs[b->req[i]];
        if (st) {
            if (!pl_failed(x)) pl_fail(x, st);
            continue;
        }
        int64_t *oi = out_ids[b->req[i]] + b->row[i] * k;
        float *os = out_scores[b->req[i]] + b->row[i] * k;
        for (int c = 0; c < k; c++) { /* fewer than k candidates left: padded */
            oi[c] = c < b->n_out[i] ? ids[(int64_t)i * k + c] : -1;
            os[c] = c < b->n_out[i] ? sc[(int64_t)i * k + c] : 0;
        }
    }
    b->m = 0;
    b->ex_total = 0;
}

/* Every row of every request through one pass over the matrix per CELER_RECOMMEND_MAX_BATCH rows;
 * a request with bad input fails alone. */
static void recommend_run_batch(const pl_step *s, pl_exec *const *xs, int n) {
    const recommend_params *p = s->params;
    int k = (int)p->k;
    int64_t *out_ids[CELER_MAX_BATCH_JOBS];
    float *out_scores[CELER_MAX_BATCH_JOBS];
    rec_batch b = {0};
    n = CELER_MIN(n, CELER_MAX_BATCH_JOBS); /* the executor hands at most that many */
    for (int j = 0; j < n; j++) {
        const float *user = NULL;
        const int64_t *ex_ids = NULL;
        int64_t rows = 0, ne = 0;
        celer_status st = recommend_prepare(p, xs[j], s, &user, &rows, &ex_ids, &ne);
        celer_shape shape = {.rank = 2, .dims = {rows, k}};
        celer_tensor *ids = st ? NULL : pl_out(xs[j], s, 0, CELER_INT64, &shape);
        celer_tensor *scores = ids ? pl_out(xs[j], s, 1, CELER_FLOAT, &shape) : NULL;
        if (!st && !scores) st = CELER_ERR_LIMIT;
        if (st) {
            pl_fail(xs[j], st);
            continue;
        }
        out_ids[j] = ids->data;
        out_scores[j] = scores->data;
        for (int64_t r = 0; r < rows; r++) {
            if (b.m == CELER_RECOMMEND_MAX_BATCH) rec_flush(p, &b, xs, out_ids, out_scores, xs[j]);
            b.req[b.m] = j;
            b.row[b.m] = r;
            b.users[b.m] = user + r * celer_recommend_dim(p->index);
            b.ex[b.m] = ex_ids ? ex_ids + r * ne : NULL;
            b.n_ex[b.m] = (int)ne;
            b.ex_total += ne;
            b.m++;
        }
    }
    if (b.m) rec_flush(p, &b, xs, out_ids, out_scores, xs[b.req[0]]);
}

/* ids int64 [k] and scores float32 [k] per row, padded when fewer items remain */
static void recommend_types(const pl_step *s, pl_types *c) {
    int64_t k = ((const recommend_params *)s->params)->k;
    celer_pipeline_type ids = {.dtype = CELER_INT64, .rank = 1, .dims = {k}}, scores = ids;
    scores.dtype = CELER_FLOAT;
    pl_type_set(c, s, 0, &ids);
    pl_type_set(c, s, 1, &scores);
}

const pl_kind pl_kind_recommend = {"recommend", "input output items ids k exclude", recommend_parse, NULL,
                                   recommend_free, recommend_run_batch, recommend_types};
