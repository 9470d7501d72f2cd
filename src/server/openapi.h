/* OpenAPI 3.0.3 documents of the HTTP endpoints, typed per model and pipeline (private to
 * src/server; docs/server.md, "OpenAPI and /docs"). The registry describes what it serves with the
 * structs below and keeps the documents as bytes, rebuilt when models load, swap or go; the HTTP
 * front end serves them. The generator reads only these structs, so it is tested without a
 * registry. */
#ifndef CELER_SERVER_OPENAPI_H
#define CELER_SERVER_OPENAPI_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "tensor/tensor.h"

/* A tensor as a request sends it or a response carries it, its whole KServe shape: the first dim
 * is the batch (a model with max_batch_size > 0) or the rows (a pipeline). */
typedef struct celer_openapi_tensor {
    const char *name;
    celer_dtype dtype;               /* CELER_UNDEFINED: not known */
    int rank;                        /* -1: not known */
    const int64_t *dims;             /* -1: varies */
    const celer_tensor *default_row; /* pipeline inputs: the row a request that leaves it out gets */
    bool image;                      /* pipeline inputs: an encoded image (examples carry a PNG) */
} celer_openapi_tensor;

typedef struct celer_openapi_version {
    const char *version;
    int n_inputs, n_outputs;
    const celer_openapi_tensor *inputs, *outputs;
} celer_openapi_version;

typedef struct celer_openapi_model {
    const char *name;
    bool pipeline;
    const char *description; /* a pipeline's, from pipeline.yaml; "" */
    int max_batch;           /* models: max_batch_size (0: the first dim is not a batch) */
    int n_versions;
    const celer_openapi_version *versions; /* ascending: a request without a version goes to the last */
} celer_openapi_model;

typedef struct celer_openapi_opts {
    bool docs; /* --docs: the /docs pages are served, so they are listed */
} celer_openapi_opts;

/* Writes a document into out (out->status set on failure): the whole server's (model < 0: every
 * model's paths, each typed by its own versions), one model's (model = its index in models:
 * its paths without a version typed by its latest version, and each version's), or one
 * version's (version >= 0 too: the paths of that version only). */
void celer_openapi_write(const celer_openapi_model *models, int n, int model, int version, const celer_openapi_opts *o,
                         celer_jbuf *out);

#endif
