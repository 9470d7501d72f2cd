/* Answer bodies in parts (body.c), private to src/server: the encoder's own bytes (JSON, protobuf
 * fields, BYTES elements) and output tensor bytes where they lie, read piece by piece into a
 * transport's buffers (libmicrohttpd's callback responses, nghttp2's DATA frames), so a large
 * answer is never copied whole. The tensors must outlive the body (celer_service_keep_outputs). */
#ifndef CELER_SERVER_BODY_H
#define CELER_SERVER_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/json.h"
#include "server/kserve.h"

/* Answers whose tensors hold this many bytes or more are sent from the tensors in parts; smaller
 * ones are encoded into one buffer as before (a copy costs less than taking the run's memory). */
#define CELER_BODY_STREAM_MIN ((size_t)64 << 20)

#define CELER_BODY_MAX_PARTS (2 * CELER_KSERVE_MAX_TENSORS + 2)

typedef struct celer_body_part {
    const uint8_t *p; /* NULL: the head's bytes [off, off + n) (the head may move while it grows) */
    size_t off, n;
} celer_body_part;

typedef struct celer_body {
    celer_jbuf head; /* what the encoder wrote; its status is the body's */
    size_t head_done; /* head bytes already in a part */
    int n;
    celer_body_part part[CELER_BODY_MAX_PARTS];
    size_t total;     /* bytes of every part, once finished */
    int n_refs;       /* parts that are tensors' bytes */
    int cur;          /* reading: the part and the offset in it */
    size_t off;
} celer_body;

/* Bytes of the outputs' fixed-size elements (what an answer would send of them in binary). */
size_t celer_outputs_bytes(const celer_tensor *outputs, int n);

/* An empty body whose head may grow to head_max bytes (0: 1 GiB, celer_jbuf's default). */
void celer_body_init(celer_body *b, size_t head_max);
void celer_body_free(celer_body *b);
/* Appends n bytes at p by reference, after the head bytes written so far. */
void celer_body_ref(celer_body *b, const void *p, size_t n);
/* Appends a tensor in binary form (kserve.h's): fixed-size elements by reference, BYTES elements
 * (4-byte length, bytes) written into the head. `size` from celer_kserve_binary_size. */
void celer_body_tensor(celer_body *b, const celer_tensor *t, size_t size);
/* The head bytes written since the last part become the last part; total is known from here on,
 * and the head may only be patched in place (a length field), not grown. */
void celer_body_finish(celer_body *b);
/* Copies the next bytes into dst (at most cap); returns how many (0 once all were read). */
size_t celer_body_read(celer_body *b, void *dst, size_t cap);
/* Copies the whole body into out (a small answer, or one whose tensors could not be kept). */
void celer_body_flatten(celer_body *b, celer_jbuf *out);

#endif
