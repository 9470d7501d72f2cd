/* Answer bodies in parts (see body.h). */
#include "server/body.h"

#include <string.h>

size_t celer_outputs_bytes(const celer_tensor *outputs, int n) {
    size_t total = 0, bytes;
    for (int i = 0; i < n; i++)
        if (outputs[i].dtype != CELER_STRING && !celer_tensor_bytes(&outputs[i], &bytes)) total += bytes;
    return total;
}

void celer_body_init(celer_body *b, size_t head_max) {
    memset(b, 0, sizeof *b);
    celer_jbuf_init(&b->head, head_max);
}

void celer_body_free(celer_body *b) { celer_jbuf_free(&b->head); }

static void add_part(celer_body *b, const uint8_t *p, size_t off, size_t n) {
    if (!n) return;
    if (b->n == CELER_BODY_MAX_PARTS) { /* more parts than outputs allow: cannot happen */
        if (!b->head.status) b->head.status = celer_errorf(CELER_ERR_INTERNAL, "an answer of more than %d parts",
                                                           CELER_BODY_MAX_PARTS);
        return;
    }
    b->part[b->n++] = (celer_body_part){p, off, n};
}

/* The head bytes written since the last part become a part. */
static void close_head(celer_body *b) {
    add_part(b, NULL, b->head_done, b->head.len - b->head_done);
    b->head_done = b->head.len;
}

void celer_body_ref(celer_body *b, const void *p, size_t n) {
    close_head(b);
    add_part(b, p, 0, n);
    b->n_refs += n > 0;
}

void celer_body_tensor(celer_body *b, const celer_tensor *t, size_t size) {
    if (t->dtype == CELER_STRING) celer_kserve_write_binary(&b->head, t, size); /* their bytes are not kept */
    else celer_body_ref(b, t->data, size);
}

void celer_body_finish(celer_body *b) {
    close_head(b);
    b->total = 0;
    for (int i = 0; i < b->n; i++) b->total += b->part[i].n;
}

size_t celer_body_read(celer_body *b, void *dst, size_t cap) {
    size_t got = 0;
    while (got < cap && b->cur < b->n) {
        const celer_body_part *pt = &b->part[b->cur];
        const uint8_t *src = pt->p ? pt->p : (const uint8_t *)b->head.data + pt->off;
        size_t k = CELER_MIN(cap - got, pt->n - b->off);
        memcpy((uint8_t *)dst + got, src + b->off, k);
        got += k;
        b->off += k;
        if (b->off == pt->n) b->cur++, b->off = 0;
    }
    return got;
}

void celer_body_flatten(celer_body *b, celer_jbuf *out) {
    for (int i = 0; i < b->n && !out->status; i++) {
        const celer_body_part *pt = &b->part[i];
        celer_jbuf_raw(out, pt->p ? (const char *)pt->p : b->head.data + pt->off, pt->n);
    }
}
