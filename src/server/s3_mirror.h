/* The local copy of an S3 model repository (private to src/server): the registry serves a folder,
 * and this keeps one in step with the bucket. Each sync is one paginated listing of the prefix;
 * objects are downloaded only when their ETag or size changed (a restart over an unchanged bucket
 * downloads nothing), streamed to disk and renamed into place, and only for units that are
 * complete:
 * - a unit is a model's version folder (<model>/<n>/...) or a model's own files (config.pbtxt,
 *   labels, a pipeline's pipeline.yaml and the files beside it);
 * - a version folder is complete when its marker <model>/<n>/READY (non-empty) is listed, or, in a
 *   repository that has no READY marker at all, when its listing (keys, sizes, ETags) is the same
 *   as at the previous sync; a model's own files by the latter rule always.
 * A unit not (yet) complete keeps its earlier copy; a unit gone from the bucket is removed. What
 * is local is recorded in DIR/.celer-s3-manifest, so a restart reuses DIR. docs/server.md,
 * "Models from S3". */
#ifndef CELER_SERVER_S3_MIRROR_H
#define CELER_SERVER_S3_MIRROR_H

#include <stdint.h>

#include "base/base.h"

typedef struct celer_s3_mirror celer_s3_mirror;

typedef struct celer_s3_sync_stats {
    int64_t list_calls;        /* ListObjectsV2 pages */
    int64_t objects_downloaded, bytes_downloaded;
    int64_t objects_unchanged; /* same ETag and size as the local copy: no request */
    int64_t objects_removed;
    int units_taken;           /* units copied or already up to date */
    int units_waiting;         /* units listed but not complete yet */
} celer_s3_sync_stats;

/* Opens the copy of `url` (s3://..., Triton's forms) in `dir`, created if missing and reused with
 * its manifest if it holds an earlier copy; dir NULL or "": a private temporary folder, removed by
 * celer_s3_mirror_close. max_bytes caps the copy's total size (CELER_ERR_LIMIT beyond). Credentials
 * and endpoint from the AWS environment (s3.h). */
celer_status celer_s3_mirror_open(const char *url, const char *dir, int64_t max_bytes, celer_s3_mirror **out);

/* The local folder the registry serves. */
const char *celer_s3_mirror_dir(const celer_s3_mirror *m);

/* One sync (above); *stats gets this sync's figures. On an error (S3 unreachable, refused, a
 * download failing), what is local stays as it was before the failing unit, still consistent.
 * Syncs from two threads run one after the other. */
celer_status celer_s3_mirror_sync(celer_s3_mirror *m, celer_s3_sync_stats *stats);

/* Exposes the copy's totals in `metrics`, labelled repository="<url>": ListObjectsV2 pages, objects
 * and bytes downloaded, failed syncs (counters), and the seconds since the last good sync (-1
 * before the first). Read at render time; the mirror must outlive the metrics registry's use. */
typedef struct celer_metrics celer_metrics;
void celer_s3_mirror_metrics(celer_s3_mirror *m, celer_metrics *metrics, const char *url);

void celer_s3_mirror_close(celer_s3_mirror *m);

#endif
