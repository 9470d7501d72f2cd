/* The recommend step: top-k items by dot product with a user embedding.
 *
 * One pass over the mapped matrix, in blocks of BLOCK rows: OpenBLAS's SGEMV scores a block into
 * a buffer that stays in L1, then each score is compared with the worst of the k kept so far
 * (the root of a min-heap); only the few that beat it pay for a heap update and for the lookup in
 * the sorted exclusion list. The pass is bound by memory bandwidth (bench/recommend_bench.sh
 * compares it with a plain read of the matrix). */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "step.h"

#define BLOCK 2048 /* rows scored per SGEMV: 8 KiB of scores */

struct celer_recommend {
    celer_npy_map items, ids; /* ids.map NULL: an item's id is its row */
    int64_t n, dim;
};

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
    *out = r;
    return CELER_OK;
}

void celer_recommend_free(celer_recommend *r) {
    if (!r) return;
    celer_npy_map_close(&r->items);
    celer_npy_map_close(&r->ids);
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
    (void)r;
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
        for (int i = 0; i < rows; i++) {
            float s = block[i];
            if (s != s) continue; /* NaN */
            if (kept == k && s < heap[0].score) continue; /* the common case: not among the best */
            hit h = {s, item_ids ? item_ids[b0 + i] : b0 + i};
            if (kept == k && !worse(heap[0], h)) continue;
            if (n_exclude && excluded(ex, n_exclude, h.id)) continue;
            if (kept < k) {
                heap[kept] = h;
                sift_up(heap, kept++);
            } else {
                heap[0] = h;
                sift_down(heap, kept, 0);
            }
        }
    }
    /* best first: pop the worst to the back */
    for (int n = kept; n > 0; n--) {
        ids[n - 1] = heap[0].id;
        scores[n - 1] = heap[0].score;
        heap[0] = heap[n - 1];
        sift_down(heap, n - 1, 0);
    }
    *n_out = kept;
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

static celer_status recommend_run(const pl_step *s, pl_exec *x) {
    const recommend_params *p = s->params;
    const celer_tensor *user = &pl_in(x, s, 0)->t;
    int64_t dim = celer_recommend_dim(p->index);
    char b[128];
    if (user->dtype != CELER_FLOAT || user->shape.rank != 2 || user->shape.dims[1] != dim)
        return celer_errorf(CELER_ERR_SHAPE, "the user embedding must be float32 [rows, %lld], got %s %s", (long long)dim,
                            celer_dtype_name(user->dtype), celer_shape_str(&user->shape, b, sizeof b));
    int64_t rows = user->shape.dims[0], n_ex = 0;
    const celer_tensor *ex = p->has_exclude ? &pl_in(x, s, 1)->t : NULL;
    const int64_t *ex_ids = NULL;
    if (ex) {
        if (ex->shape.rank < 1 || ex->shape.rank > 2 || ex->shape.dims[0] != rows || !pl_is_numeric(ex->dtype) ||
            ex->dtype == CELER_FLOAT || ex->dtype == CELER_DOUBLE)
            return celer_errorf(CELER_ERR_SHAPE, "exclude must be integers [%lld, E] (one list per row), got %s %s",
                                (long long)rows, celer_dtype_name(ex->dtype), celer_shape_str(&ex->shape, b, sizeof b));
        n_ex = ex->shape.rank == 2 ? ex->shape.dims[1] : 1;
        if (n_ex > CELER_RECOMMEND_MAX_EXCLUDE)
            return celer_errorf(CELER_ERR_LIMIT, "exclude has %lld ids per row, at most %d", (long long)n_ex,
                                CELER_RECOMMEND_MAX_EXCLUDE);
        if (ex->dtype == CELER_INT64) {
            ex_ids = ex->data;
        } else {
            int64_t *conv = pl_scratch(x, sizeof *conv * (size_t)(rows * n_ex));
            if (!conv) return CELER_ERR_LIMIT;
            for (int64_t i = 0; i < rows * n_ex; i++) conv[i] = (int64_t)pl_get(ex, i);
            ex_ids = conv;
        }
    }
    int k = (int)p->k;
    celer_shape shape = {.rank = 2, .dims = {rows, k}};
    celer_tensor *ids = pl_out(x, s, 0, CELER_INT64, &shape);
    celer_tensor *scores = ids ? pl_out(x, s, 1, CELER_FLOAT, &shape) : NULL;
    void *scratch = scores ? pl_scratch(x, celer_recommend_scratch_bytes(p->index, k, (int)n_ex)) : NULL;
    if (!scratch) return CELER_ERR_LIMIT;
    for (int64_t r = 0; r < rows; r++) {
        int64_t *oi = (int64_t *)ids->data + r * k;
        float *os = (float *)scores->data + r * k;
        int got = 0;
        CELER_TRY(celer_recommend_topk(p->index, (const float *)user->data + r * dim, dim,
                                       ex_ids ? ex_ids + r * n_ex : NULL, (int)n_ex, k, scratch, oi, os, &got));
        for (int j = got; j < k; j++) {
            oi[j] = -1;
            os[j] = 0;
        }
    }
    return CELER_OK;
}

const pl_kind pl_kind_recommend = {"recommend", "input output items ids k exclude", recommend_parse, recommend_run,
                                   recommend_free};
