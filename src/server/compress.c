/* Content codings on zlib (see compress.h). */
#include "server/compress.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PIECE (16 << 10) /* inflated bytes handed to the sink at a time (on the stack) */

const char *const celer_coding_names[3] = {"identity", "gzip", "deflate"};

static bool is_space(char c) { return c == ' ' || c == '\t'; }

celer_coding celer_coding_parse(const char *s, size_t n) {
    while (n && is_space(*s)) s++, n--;
    while (n && is_space(s[n - 1])) n--;
    if (!n || (n == 8 && !strncasecmp(s, "identity", 8))) return CELER_CODING_IDENTITY;
    if ((n == 4 && !strncasecmp(s, "gzip", 4)) || (n == 6 && !strncasecmp(s, "x-gzip", 6))) return CELER_CODING_GZIP;
    if (n == 7 && !strncasecmp(s, "deflate", 7)) return CELER_CODING_DEFLATE;
    return CELER_CODING_UNKNOWN;
}

/* A q value ("0.5", "1", "0.000"); -1 when malformed. */
static double parse_q(const char *s, size_t n) {
    double q = 0, scale = 1;
    bool dot = false, digit = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && !dot) {
            dot = true;
        } else if (s[i] >= '0' && s[i] <= '9') {
            digit = true;
            if (dot) scale /= 10, q += (s[i] - '0') * scale;
            else q = q * 10 + (s[i] - '0');
        } else {
            return -1;
        }
    }
    return digit && q <= 1 ? q : -1;
}

celer_coding celer_coding_accepted(const char *header) {
    if (!header) return CELER_CODING_IDENTITY;
    celer_coding best = CELER_CODING_IDENTITY;
    double best_q = 0, star_q = -1;
    bool gzip_named = false;
    for (const char *p = header; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *semi = memchr(p, ';', len);
        size_t name_len = semi ? (size_t)(semi - p) : len;
        double q = 1;
        if (semi) { /* ";q=0.5", spaces allowed around */
            const char *v = semi + 1, *vend = p + len;
            while (v < vend && is_space(*v)) v++;
            if (vend - v >= 2 && (v[0] == 'q' || v[0] == 'Q') && v[1] == '=') {
                v += 2;
                while (vend > v && is_space(vend[-1])) vend--;
                q = parse_q(v, (size_t)(vend - v));
            }
        }
        const char *name = p;
        while (name_len && is_space(*name)) name++, name_len--;
        while (name_len && is_space(name[name_len - 1])) name_len--;
        celer_coding c = celer_coding_parse(name, name_len);
        if (c == CELER_CODING_GZIP) gzip_named = true;
        if (name_len == 1 && name[0] == '*') star_q = q;
        else if (name_len && c != CELER_CODING_UNKNOWN && q > best_q) best = c, best_q = q;
        if (!end) break;
        p = end + 1;
    }
    if (!gzip_named && star_q > best_q) best = CELER_CODING_GZIP;
    return best;
}

bool celer_coding_listed(const char *list, size_t n, celer_coding coding) {
    for (size_t i = 0; i < n;) {
        const char *comma = memchr(list + i, ',', n - i);
        size_t len = comma ? (size_t)(comma - (list + i)) : n - i;
        if (celer_coding_parse(list + i, len) == coding) return true;
        i += len + 1;
    }
    return false;
}

/* zlib's memory through celer's allocator. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    size_t n;
    return celer_mul_size(items, size, &n) ? NULL : celer_malloc(n);
}
static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    free(p);
}

/* ---- inflating ---- */

void celer_inflate_init(celer_inflate *f, celer_coding coding, size_t cap) {
    memset(f, 0, sizeof *f);
    f->coding = coding;
    f->cap = cap;
}

void celer_inflate_end(celer_inflate *f) {
    if (f->started) inflateEnd(&f->z);
    f->started = false;
}

static const char *coding_word(const celer_inflate *f) { return f->coding == CELER_CODING_GZIP ? "gzip" : "deflate"; }

/* zlib's window bits for the stream: gzip, zlib (a valid 2-byte zlib header) or raw deflate. */
static int window_bits(const celer_inflate *f) {
    if (f->coding == CELER_CODING_GZIP) return 15 + 16;
    unsigned cmf = f->head[0], flg = f->head[1];
    bool zlib = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf << 8 | flg) % 31 == 0;
    return zlib ? 15 : -15;
}

static celer_status start(celer_inflate *f) {
    f->z.zalloc = z_alloc;
    f->z.zfree = z_free;
    int r = inflateInit2(&f->z, window_bits(f));
    if (r != Z_OK)
        return celer_errorf(r == Z_MEM_ERROR ? CELER_ERR_NOMEM : CELER_ERR_INTERNAL, "cannot start inflating the %s "
                            "body (zlib: %d)", coding_word(f), r);
    f->started = true;
    return CELER_OK;
}

/* Runs zlib over the input now in f->z. */
static celer_status run(celer_inflate *f, celer_sink_fn sink, void *user) {
    unsigned char piece[PIECE];
    for (;;) {
        if (f->ended) {
            if (!f->z.avail_in) return CELER_OK;
            /* another gzip member may follow (gzip -c a b > c.gz); nothing may follow a deflate stream */
            if (f->coding != CELER_CODING_GZIP)
                return celer_errorf(CELER_ERR_PARSE, "%u bytes follow the end of the deflate stream", f->z.avail_in);
            if (inflateReset(&f->z) != Z_OK) return celer_errorf(CELER_ERR_INTERNAL, "zlib: inflateReset failed");
            f->ended = false;
        }
        f->z.next_out = piece;
        f->z.avail_out = sizeof piece;
        int r = inflate(&f->z, Z_NO_FLUSH);
        size_t got = sizeof piece - f->z.avail_out;
        if (got) {
            if (got > f->cap - f->out)
                return celer_errorf(CELER_ERR_LIMIT, "the %s stream inflates past the limit of %zu bytes", coding_word(f),
                                    f->cap);
            f->out += got;
            CELER_TRY(sink(user, piece, got));
        }
        if (r == Z_STREAM_END) {
            f->ended = true;
            continue;
        }
        if (r == Z_DATA_ERROR || r == Z_NEED_DICT)
            return celer_errorf(CELER_ERR_PARSE, "the %s stream is not valid %s data: %s", coding_word(f), coding_word(f),
                                f->z.msg ? f->z.msg : "a preset dictionary is needed");
        if (r == Z_MEM_ERROR) return celer_errorf(CELER_ERR_NOMEM, "out of memory inflating the %s body", coding_word(f));
        if (r != Z_OK && r != Z_BUF_ERROR) return celer_errorf(CELER_ERR_INTERNAL, "zlib: inflate returned %d", r);
        /* all input taken and the output not full: zlib wants more input */
        if (!f->z.avail_in && f->z.avail_out) return CELER_OK;
    }
}

celer_status celer_inflate_feed(celer_inflate *f, const void *in, size_t n, celer_sink_fn sink, void *user) {
    const uint8_t *p = in;
    if (!f->started) {
        if (f->coding == CELER_CODING_DEFLATE) {
            while (f->n_head < 2 && n) f->head[f->n_head++] = *p++, n--;
            if (f->n_head < 2) return CELER_OK;
        }
        CELER_TRY(start(f));
        if (f->n_head) { /* the held bytes first */
            f->z.next_in = f->head;
            f->z.avail_in = (uInt)f->n_head;
            CELER_TRY(run(f, sink, user));
        }
    }
    while (n) { /* zlib counts input in uInt */
        uInt k = (uInt)CELER_MIN(n, (size_t)1 << 30);
        f->z.next_in = (Bytef *)p;
        f->z.avail_in = k;
        CELER_TRY(run(f, sink, user));
        p += k, n -= k;
    }
    f->z.next_in = NULL;
    return CELER_OK;
}

celer_status celer_inflate_finish(celer_inflate *f) {
    if (f->ended) return CELER_OK;
    return celer_errorf(CELER_ERR_PARSE, "the %s stream is cut short: it does not end (%zu bytes inflated)",
                        coding_word(f), f->out);
}

/* ---- deflating ---- */

celer_status celer_deflate_init(celer_deflate *d, celer_coding coding) {
    memset(d, 0, sizeof *d);
    d->z.zalloc = z_alloc;
    d->z.zfree = z_free;
    int bits = coding == CELER_CODING_GZIP ? 15 + 16 : 15;
    int r = deflateInit2(&d->z, Z_BEST_SPEED, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY);
    if (r != Z_OK)
        return celer_errorf(r == Z_MEM_ERROR ? CELER_ERR_NOMEM : CELER_ERR_INTERNAL, "cannot start compressing (zlib: %d)", r);
    d->started = true;
    return CELER_OK;
}

size_t celer_deflate_step(celer_deflate *d, const void *in, size_t *in_len, void *out, size_t cap, bool finish) {
    size_t taken = 0, written = 0;
    /* both counted in uInt: at most 1 GiB a call each way */
    uInt n_in = (uInt)CELER_MIN(*in_len, (size_t)1 << 30), n_out = (uInt)CELER_MIN(cap, (size_t)1 << 30);
    if (d->done || !n_out) {
        *in_len = 0;
        return 0;
    }
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = n_in;
    d->z.next_out = out;
    d->z.avail_out = n_out;
    /* finish only once the whole input is in this call */
    int r = deflate(&d->z, finish && n_in == *in_len ? Z_FINISH : Z_NO_FLUSH);
    taken = n_in - d->z.avail_in;
    written = n_out - d->z.avail_out;
    if (r == Z_STREAM_END) d->done = true;
    *in_len = taken;
    return written;
}

void celer_deflate_end(celer_deflate *d) {
    if (d->started) deflateEnd(&d->z);
    d->started = false;
}

celer_status celer_compress(celer_coding coding, const void *in, size_t n, celer_jbuf *out) {
    celer_deflate d;
    CELER_TRY(celer_deflate_init(&d, coding));
    const char *p = in;
    char chunk[PIECE];
    while (!d.done && !out->status) {
        size_t k = n;
        size_t w = celer_deflate_step(&d, p, &k, chunk, sizeof chunk, true);
        p += k, n -= k;
        celer_jbuf_raw(out, chunk, w);
    }
    celer_deflate_end(&d);
    return out->status;
}
