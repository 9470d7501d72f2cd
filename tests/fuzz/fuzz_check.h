/* What the fuzz targets of the request decoders (fuzz_kserve, fuzz_grpc_infer) share: the model
 * specs they decode against, grouped in sets, and the check of a decoded input. */
#ifndef CELER_FUZZ_CHECK_H
#define CELER_FUZZ_CHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/kserve.h"

typedef struct spec_set {
    const celer_kserve_tensor_spec *spec;
    int n;
} spec_set;
#define SET(a) {a, (int)(sizeof a / sizeof a[0])}

static volatile uint8_t fuzz_sink;

/* Reads every byte a decoded input points to (so the sanitizer sees a bad pointer) and aborts
 * when the input breaks what the decoders promise about it: a known name, the spec's dtype and
 * rank, its fixed dims, data for every element (none for an input in shared memory). */
static inline void fuzz_check_input(const celer_kserve_input *in, const spec_set *set) {
    const celer_kserve_tensor_spec *sp = NULL;
    for (int s = 0; s < set->n && !sp; s++)
        if (in->name && !strcmp(in->name, set->spec[s].name)) sp = &set->spec[s];
    const celer_tensor *t = &in->tensor;
    if (!sp || t->dtype != sp->dtype || t->shape.rank != sp->rank) abort();
    for (int d = 0; d < sp->rank; d++)
        if ((sp->dims[d] >= 0 && t->shape.dims[d] != sp->dims[d]) || t->shape.dims[d] < 0) abort();
    int64_t numel = celer_shape_numel(&t->shape);
    if (numel < 0) abort();
    if (in->shm.region) { /* in shared memory: no data until the service reads the region */
        if (t->data) abort();
        return;
    }
    if (numel > 0 && !t->data) abort();
    uint8_t acc = 0;
    if (t->dtype == CELER_STRING) {
        const celer_str *els = t->data;
        for (int64_t i = 0; i < numel; i++)
            for (size_t k = 0; k < els[i].len; k++) acc ^= (uint8_t)els[i].data[k];
    } else {
        size_t bytes;
        if (celer_tensor_bytes(t, &bytes)) abort();
        for (size_t k = 0; k < bytes; k++) acc ^= ((const uint8_t *)t->data)[k];
    }
    fuzz_sink ^= acc;
}

#endif
