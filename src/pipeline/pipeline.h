/* pipeline: pre/post-processing and business logic declared beside a model (issue 5).
 *
 * First piece: the recommend step, which scores a user embedding against an item matrix by dot
 * product and returns the top-k item ids and scores. The matrix is a .npy file mapped read-only
 * (100k x 64 float32 is 25.6 MB; larger ones just map more), shared by every worker thread: a
 * loaded index is immutable, and each call brings its own scratch. */
#ifndef CELER_PIPELINE_H
#define CELER_PIPELINE_H

#include "base/base.h"
#include "tensor/tensor.h"

/* Caps on what a request may ask of the recommend step. */
#define CELER_RECOMMEND_MAX_K 10000
#define CELER_RECOMMEND_MAX_EXCLUDE 100000

typedef struct celer_recommend celer_recommend;

/* Maps the item matrix `items_npy` (float32, [items, dim]) and, when `ids_npy` is not NULL, the
 * item ids (int64, [items]); without ids an item's id is its row. Errors name the file and what
 * is wrong (rank, dtype, counts that differ). On success *out is owned by the caller:
 * celer_recommend_free. */
celer_status celer_recommend_open(const char *items_npy, const char *ids_npy, celer_recommend **out);
void celer_recommend_free(celer_recommend *r);

int64_t celer_recommend_items(const celer_recommend *r);
int64_t celer_recommend_dim(const celer_recommend *r);

/* Scratch bytes celer_recommend_topk needs for k results and n_exclude excluded ids (64-byte
 * aligned memory the caller owns, e.g. from a request arena). */
size_t celer_recommend_scratch_bytes(const celer_recommend *r, int k, int n_exclude);

/* The k items with the highest score user . item, best first, skipping the ids in `exclude`
 * (any order, duplicates allowed). Ties go to the lower id; items scoring NaN are skipped. Writes
 * *n_out <= k results to ids/scores (fewer when fewer items remain). CELER_ERR_INVALID with a
 * message when dim differs from the matrix's or k / n_exclude pass their caps. No allocation. */
celer_status celer_recommend_topk(const celer_recommend *r, const float *user, int64_t dim,
                                  const int64_t *exclude, int n_exclude, int k, void *scratch,
                                  int64_t *ids, float *scores, int *n_out);

#endif
