/* libFuzzer target for the inflaters every compressed request goes through (HTTP's gzip/deflate
 * bodies, gRPC's compressed messages): src/server/compress.c under a cap, fed in pieces.
 * Byte 0: bit 0 the coding (gzip, deflate), bits 1-3 the piece size (1, 2, 3, 7, 64, 512, 4096,
 * all), bit 7 a round trip instead (the rest compressed by celer_deflate_step in small steps, then
 * inflated and compared). Bytes 1-2: the cap in bytes, little-endian (0: 1 MiB). The rest: the
 * compressed stream (bytes that claim to inflate past the cap are the bombs it looks for).
 * A bug: a crash or sanitizer report, more bytes handed out than the cap, an empty sink piece or
 * one over 16 KiB, or a round trip that does not give its input back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    size_t total;
    uint8_t *copy; /* round trip: what came out */
    size_t cap;
} seen;

static celer_status count(void *user, const void *p, size_t n) {
    seen *s = user;
    if (n == 0 || n > (16 << 10)) abort();
    if (s->copy) {
        if (s->total + n > s->cap) abort();
        memcpy(s->copy + s->total, p, n);
    }
    s->total += n;
    return CELER_OK;
}

static celer_status inflate_all(celer_coding coding, const uint8_t *in, size_t n, size_t piece, size_t cap, seen *s) {
    celer_inflate f;
    celer_inflate_init(&f, coding, cap);
    celer_status st = CELER_OK;
    for (size_t i = 0; i < n && !st; i += piece) st = celer_inflate_feed(&f, in + i, CELER_MIN(piece, n - i), count, s);
    if (!st) st = celer_inflate_finish(&f);
    celer_inflate_end(&f);
    if (s->total > cap || s->total != f.out) abort();
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    static const size_t pieces[] = {1, 2, 3, 7, 64, 512, 4096, SIZE_MAX};
    celer_coding coding = data[0] & 1 ? CELER_CODING_DEFLATE : CELER_CODING_GZIP;
    size_t piece = pieces[(data[0] >> 1) & 7];
    size_t cap = (size_t)data[1] | (size_t)data[2] << 8;
    if (!cap) cap = 1 << 20;
    const uint8_t *in = data + 3;
    size_t n = size - 3;
    if (!(data[0] & 0x80)) {
        seen s = {0};
        inflate_all(coding, in, n, piece, cap, &s);
        return 0;
    }
    /* round trip: compress in steps of `piece` input bytes and 1..64 output bytes */
    celer_deflate d;
    if (celer_deflate_init(&d, coding)) return 0;
    size_t zcap = n + n / 8 + 256, zlen = 0, off = 0;
    uint8_t *z = malloc(zcap);
    size_t out_step = (size_t)(data[1] % 64) + 1;
    while (z && !d.done) {
        size_t k = CELER_MIN(piece, n - off);
        if (zlen + out_step > zcap) abort(); /* deflate never grows data this much */
        zlen += celer_deflate_step(&d, in + off, &k, z + zlen, out_step, off + k == n);
        off += k;
    }
    celer_deflate_end(&d);
    if (!z) return 0;
    seen s = {.copy = malloc(n + 1), .cap = n};
    if (s.copy && (inflate_all(coding, z, zlen, piece, n ? n : 1, &s) || s.total != n || memcmp(s.copy, in, n)))
        abort();
    free(s.copy);
    free(z);
    return 0;
}
