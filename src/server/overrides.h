/* Files of a load with overrides (Triton's `file:<path>` load parameters), private to src/server:
 * their paths checked, their bytes (raw, or base64 as HTTP carries them) written into a private
 * folder of the load's own, then the folder removed. overrides.c. */
#ifndef CELER_SERVER_OVERRIDES_H
#define CELER_SERVER_OVERRIDES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/base.h"

#define CELER_LOAD_MAX_FILES 1024    /* files one load may bring */
#define CELER_LOAD_MAX_PATH 1024     /* bytes of a file's path */

/* One file of a load: `path` relative to the model's folder ("1/model.onnx"), its bytes or their
 * base64 text (standard alphabet, padding optional, whitespace skipped). */
typedef struct celer_load_file {
    const char *path;
    const char *data;
    size_t len;
    bool base64;
} celer_load_file;

/* A load's overrides: a JSON model config replacing the folder's config.pbtxt, and files that
 * replace the folder itself (they need the config, as in Triton). Everything pointed to is the
 * caller's, untouched until the load is done. */
typedef struct celer_load_overrides {
    const char *config; /* NULL: none */
    size_t config_len;
    const celer_load_file *files;
    int n_files;
    size_t max_bytes;   /* the files' bytes together, decoded, at most this */
} celer_load_overrides;

/* Whether `path` may name a file of a load: relative, of segments that are neither empty, "." nor
 * "..", at most CELER_LOAD_MAX_PATH bytes and 32 segments, and not the config ("config.pbtxt":
 * the `config` parameter gives it). CELER_ERR_INVALID naming the parameter ("file:" + path) with
 * Triton's words first. */
celer_status celer_override_check_path(const char *path);

/* Bytes base64 text of `len` bytes decodes to at most (for the caps, before decoding). */
size_t celer_base64_max_decoded(size_t len);

/* Decodes base64 `text` (standard alphabet, '=' padding optional and only at the end, ASCII
 * whitespace skipped) into `out` (room for celer_base64_max_decoded(len) bytes); *out_len gets
 * the decoded size. false for anything else (the index of the first bad byte in *bad). */
bool celer_base64_decode(const char *text, size_t len, unsigned char *out, size_t *out_len, size_t *bad);

/* Makes a private folder (mode 0700, under $TMPDIR or /tmp) and in it the model folder `name`
 * holding the files (paths checked again, every folder and file created new there: nothing can
 * lead outside; the decoded bytes together at most ov->max_bytes, else CELER_ERR_LIMIT). The
 * private folder's path goes to `root` (remove it with celer_override_remove, also after a
 * failure, when root[0] is set). */
celer_status celer_override_write(const char *name, const celer_load_overrides *ov, char *root, size_t root_cap);

/* Removes a folder celer_override_write made, with everything in it. */
void celer_override_remove(const char *root);

#endif
