/* Image steps: decode_image (JPEG / PNG bytes or base64 text of them -> UINT8 [N, H, W, C]),
 * resize (bilinear, half-pixel centres), center_crop and to_chw, all on [N, H, W, C] tensors.
 *
 * The numbers follow what a model trained with torchvision / PIL saw: resize is PyTorch's
 * interpolate(mode="bilinear", align_corners=False, antialias=False), bit for bit with its CPU
 * kernel on [N, C, H, W] tensors of 2+ channels (UINT8 goes through float and is rounded half to
 * even, as torchvision does on tensors); shorter_side and center_crop use torchvision's size and
 * offset formulas; decoding drops a PNG's alpha channel (PIL's convert("RGB")) rather than
 * compositing it.
 *
 * Decoding reads every header first, so sizes are checked against the caps, and the memory the
 * decode will take (pixels, a PNG conversion buffer, a progressive JPEG's coefficients) reserved
 * against the process-wide image budget, before any pixel memory is taken; pixels go straight into
 * the output tensor, which the run frees as soon as no later step reads it (pl_out_image). All
 * decoder state is on the stack of the call (libjpeg's error manager longjmps back to it), so
 * concurrent requests share nothing but the budget. */
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* after jpeglib.h: JWRN_JPEG_EOF */
#include <png.h>

#include "step.h"

#define IMG_MAX_SIDE 8192
#define IMG_MAX_PIXELS ((int64_t)64 << 20) /* per request, all images together */

/* ---- shared argument and shape checks ---- */

/* `key: [height, width]`, each 1..IMG_MAX_SIDE. *found is false when the key is absent. */
static celer_status arg_hw(pl_parse *c, const yaml_node_t *args, const char *key, int64_t hw[2], bool *found) {
    const yaml_node_t *n = pl_arg(c, args, key);
    *found = n != NULL;
    if (!n) return CELER_OK;
    if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.items.top - n->data.sequence.items.start != 2)
        return pl_error(c, n, "'%s' must be [height, width]: two integers from 1 to %d", key, IMG_MAX_SIDE);
    double *d;
    int count;
    CELER_TRY(pl_arg_doubles(c, args, key, true, 2, &d, &count));
    for (int i = 0; i < 2; i++) {
        if (d[i] != floor(d[i]) || d[i] < 1 || d[i] > IMG_MAX_SIDE)
            return pl_error(c, n, "'%s': %s %g must be an integer from 1 to %d", key, i ? "width" : "height", d[i],
                            IMG_MAX_SIDE);
        hw[i] = (int64_t)d[i];
    }
    return CELER_OK;
}

/* The input and output names every image step has; the input's name is kept for run-time messages. */
static celer_status arg_io(pl_parse *c, const yaml_node_t *args, pl_step *s, const char **name) {
    CELER_TRY(pl_arg_input(c, args, NULL, s));
    *name = pl_slot_name(c, s->in[0]);
    return pl_arg_output(c, args, NULL, *name, s);
}

/* An image batch: [N, H, W, C]. */
static celer_status need_nhwc(const celer_tensor *t, const char *name) {
    char b[128];
    if (t->shape.rank != 4)
        return celer_errorf(CELER_ERR_SHAPE, "'%s' must be an image batch [N, H, W, C] (rank 4), got shape %s", name,
                            celer_shape_str(&t->shape, b, sizeof b));
    return CELER_OK;
}

/* Caps on an image batch that a step produces. */
static celer_status check_out_size(const char *name, int64_t n, int64_t h, int64_t w) {
    int64_t px;
    if (h > IMG_MAX_SIDE || w > IMG_MAX_SIDE)
        return celer_errorf(CELER_ERR_LIMIT, "'%s' would be %lldx%lld (height x width); at most %d a side", name,
                            (long long)h, (long long)w, IMG_MAX_SIDE);
    if (__builtin_mul_overflow(n, h * w, &px) || px > IMG_MAX_PIXELS)
        return celer_errorf(CELER_ERR_LIMIT, "'%s' would hold %lld images of %lldx%lld, over %lld Mpixel per request",
                            name, (long long)n, (long long)h, (long long)w, (long long)(IMG_MAX_PIXELS >> 20));
    return CELER_OK;
}

/* ---- decode_image ---- */

typedef struct decode_params {
    const char *name;
    int channels;
} decode_params;

enum { FMT_NONE, FMT_JPEG, FMT_PNG };

typedef struct img_src {
    const uint8_t *p;
    size_t n;
    int fmt;
    bool base64;
    uint32_t w, h;
    int png_ch;       /* PNG: channels libpng gives before our conversion */
    size_t jpeg_coef; /* JPEG: bytes of coefficients libjpeg keeps for a multi-scan file, else 0 */
} img_src;

static int sniff(const uint8_t *p, size_t n) {
    static const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF}, png[] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= sizeof jpeg && !memcmp(p, jpeg, sizeof jpeg)) return FMT_JPEG;
    if (n >= sizeof png && !memcmp(p, png, sizeof png)) return FMT_PNG;
    return FMT_NONE;
}

static bool is_space(uint8_t ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v'; }

static int b64_value(uint8_t ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* Decodes base64 text (standard alphabet, whitespace anywhere, padding optional, after an
 * optional "data:...;base64," prefix) into `out` (at least n * 3 / 4 + 3 bytes). Returns false
 * with `why` set when the text is not base64. */
static bool b64_decode(const uint8_t *p, size_t n, uint8_t *out, size_t *out_n, const char **why) {
    size_t i = 0;
    while (i < n && is_space(p[i])) i++;
    if (n - i >= 5 && !memcmp(p + i, "data:", 5)) {
        const uint8_t *comma = memchr(p + i, ',', n - i);
        const uint8_t *b64 = comma ? memmem(p + i, (size_t)(comma - (p + i)), ";base64", 7) : NULL;
        if (!b64) {
            *why = "a data: URL without ';base64,'";
            return false;
        }
        i = (size_t)(comma - p) + 1;
    }
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0, chars = 0;
    bool pad = false;
    for (; i < n; i++) {
        uint8_t ch = p[i];
        if (is_space(ch)) continue;
        if (ch == '=') {
            pad = true;
            continue;
        }
        int v = b64_value(ch);
        if (v < 0 || pad) {
            *why = pad ? "text after base64 padding '='" : "bytes that are not base64 text";
            return false;
        }
        chars++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (chars % 4 == 1) {
        *why = "truncated base64 text";
        return false;
    }
    *out_n = o;
    return true;
}

/* Finds the image bytes of element i: raw, or decoded from base64 into scratch. */
static celer_status image_bytes(pl_exec *x, const decode_params *dp, int64_t i, const char *s, size_t n, img_src *src) {
    const uint8_t *p = (const uint8_t *)s;
    size_t lead = 0;
    while (lead < n && is_space(p[lead])) lead++;
    if (!s || lead == n)
        return celer_errorf(CELER_ERR_INVALID, "'%s' element %lld is empty: expected JPEG or PNG bytes, or base64 text of them",
                            dp->name, (long long)i);
    src->fmt = sniff(p, n);
    if (src->fmt != FMT_NONE) {
        src->p = p;
        src->n = n;
        return CELER_OK;
    }
    uint8_t *buf = pl_scratch(x, n / 4 * 3 + 3);
    if (!buf) return celer_error_wrap(celer_error_status(), "'%s' element %lld", dp->name, (long long)i);
    const char *why = NULL;
    size_t len = 0;
    if (!b64_decode(p, n, buf, &len, &why)) {
        char head[40] = "";
        for (size_t k = 0; k < CELER_MIN(n, (size_t)8); k++) snprintf(head + 3 * k, sizeof head - 3 * k, "%02x ", p[k]);
        head[strlen(head) - 1] = 0;
        return celer_errorf(CELER_ERR_INVALID,
                            "'%s' element %lld is not a JPEG or PNG image (%zu bytes starting %s) nor base64 text of "
                            "one: %s",
                            dp->name, (long long)i, n, head, why);
    }
    src->fmt = sniff(buf, len);
    if (src->fmt == FMT_NONE)
        return celer_errorf(CELER_ERR_INVALID,
                            "'%s' element %lld: its base64 text decodes to %zu bytes that are not a JPEG or PNG image",
                            dp->name, (long long)i, len);
    src->p = buf;
    src->n = len;
    src->base64 = true;
    return CELER_OK;
}

/* libjpeg reports errors by calling error_exit, which must not return: it jumps back to the
 * decoding call with the message kept here. */
typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr ci) {
    jpeg_err *e = (jpeg_err *)ci->err;
    e->pub.format_message(ci, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are ignored (corrupt entropy data decodes to something, as in PIL), except a
 * truncated file: libjpeg would pad it with grey; we refuse it, as PIL does by default. */
static void jpeg_warn(j_common_ptr ci, int level) {
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(ci);
}

static void jpeg_quiet(j_common_ptr ci) { (void)ci; }

/* What libjpeg allocates for a file of several scans (progressive, or components in separate
 * scans): every component's DCT blocks for the whole image, rounded up to whole MCUs, as its
 * coefficient controller requests them. Single-scan files decode a row of blocks at a time. */
static size_t jpeg_coef_bytes(j_decompress_ptr ci) {
    if (!jpeg_has_multiple_scans(ci)) return 0;
    size_t total = 0;
    for (int c = 0; c < ci->num_components; c++) {
        const jpeg_component_info *k = &ci->comp_info[c];
        size_t h = (size_t)k->h_samp_factor, v = (size_t)k->v_samp_factor;
        total += (k->width_in_blocks + h - 1) / h * h * ((k->height_in_blocks + v - 1) / v * v) * sizeof(JBLOCK);
    }
    return total;
}

/* Reads the header (dst NULL: also src->jpeg_coef) or decodes into dst (h rows of w * channels
 * bytes). Returns false with e->msg set on a libjpeg error. The setjmp lives in this small
 * function so that only `ci` (in the caller's frame) is used after a jump. */
static bool jpeg_run(struct jpeg_decompress_struct *ci, jpeg_err *e, img_src *src, int channels, uint8_t *dst) {
    if (setjmp(e->jump)) return false;
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, src->p, (unsigned long)src->n);
    jpeg_read_header(ci, TRUE);
    if (!dst) {
        src->jpeg_coef = jpeg_coef_bytes(ci);
        return true;
    }
    ci->out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(ci);
    if (ci->output_width != src->w || ci->output_height != src->h || ci->output_components != channels) {
        snprintf(e->msg, sizeof e->msg, "decoder gave %ux%u with %d channels, header said %ux%u", ci->output_width,
                 ci->output_height, ci->output_components, src->w, src->h);
        return false;
    }
    size_t stride = (size_t)src->w * (size_t)channels;
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = dst + (size_t)ci->output_scanline * stride;
        jpeg_read_scanlines(ci, &row, 1);
    }
    /* every row is in: what follows (EOI, trailing bytes) does not matter */
    return true;
}

static celer_status jpeg_decode(const decode_params *dp, int64_t i, img_src *src, uint8_t *dst) {
    struct jpeg_decompress_struct ci;
    jpeg_err e;
    memset(&ci, 0, sizeof ci);
    memset(&e, 0, sizeof e);
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_fail;
    e.pub.emit_message = jpeg_warn;
    e.pub.output_message = jpeg_quiet;
    bool ok = jpeg_run(&ci, &e, src, dp->channels, dst);
    if (ok && !dst) {
        src->w = ci.image_width;
        src->h = ci.image_height;
    }
    jpeg_destroy_decompress(&ci);
    if (!ok)
        return celer_errorf(CELER_ERR_INVALID, "'%s' element %lld: bad JPEG%s: %s", dp->name, (long long)i,
                            src->base64 ? " (from base64)" : "", e.msg);
    return CELER_OK;
}

/* The format asked of libpng for an image of format `have`: RGB or grey as stored (grey
 * replicated when 3 channels are wanted), alpha kept, so that we drop it ourselves. */
static png_uint_32 png_want(png_uint_32 have, int channels) {
    bool alpha = have & PNG_FORMAT_FLAG_ALPHA, color = have & PNG_FORMAT_FLAG_COLOR;
    return (channels == 3 || color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
}

/* PNG through libpng's simplified API (its own setjmp inside, state in `im`). 16-bit files are
 * taken as sRGB like 8-bit ones (libpng would otherwise assume linear light and re-encode).
 * Alpha is dropped, and colour is turned into grey with PIL's integer ITU-R 601 weights (libpng
 * would convert in linear light), so PNG and JPEG inputs give what PIL gives. Conversions go
 * through `tmp` (w * h * src->png_ch bytes at least, shared by the request's images). The header
 * pass (dst NULL) sets w, h and png_ch. */
static celer_status png_decode(const decode_params *dp, int64_t i, img_src *src, uint8_t *dst, uint8_t *tmp) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    const char *what = src->base64 ? " (from base64)" : "";
    if (!png_image_begin_read_from_memory(&im, src->p, src->n)) {
        png_image_free(&im);
        return celer_errorf(CELER_ERR_INVALID, "'%s' element %lld: bad PNG%s: %s", dp->name, (long long)i, what,
                            im.message);
    }
    if (!dst) {
        src->w = im.width;
        src->h = im.height;
        src->png_ch = (int)PNG_IMAGE_SAMPLE_CHANNELS(png_want(im.format, dp->channels));
        png_image_free(&im);
        return CELER_OK;
    }
    bool to_gray = dp->channels == 1 && (im.format & PNG_FORMAT_FLAG_COLOR);
    im.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    im.format = png_want(im.format, dp->channels);
    int in_ch = (int)PNG_IMAGE_SAMPLE_CHANNELS(im.format);
    bool direct = in_ch == dp->channels;
    size_t pixels = (size_t)src->w * src->h;
    if (!direct && (!tmp || in_ch > src->png_ch)) { /* the header pass said otherwise: cannot happen */
        png_image_free(&im);
        return celer_errorf(CELER_ERR_INTERNAL, "'%s' element %lld: PNG format changed between reads", dp->name,
                            (long long)i);
    }
    uint8_t *buf = direct ? dst : tmp;
    if (!png_image_finish_read(&im, NULL, buf, (png_int_32)(src->w * (uint32_t)in_ch), NULL))
        return celer_errorf(CELER_ERR_INVALID, "'%s' element %lld: bad PNG%s: %s", dp->name, (long long)i, what,
                            im.message);
    if (direct) return CELER_OK;
    for (size_t k = 0; k < pixels; k++) {
        const uint8_t *p = buf + k * (size_t)in_ch;
        if (to_gray) dst[k] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
        else memcpy(dst + k * (size_t)dp->channels, p, (size_t)dp->channels); /* alpha dropped */
    }
    return CELER_OK;
}

/* ---- one image outside a pipeline (the ImageDecoder operator) ---- */

/* Header pass over `p`: sizes, the side cap, and the conversion buffer an RGB decode needs. */
static celer_status probe(const uint8_t *p, size_t n, const char *name, img_src *src) {
    decode_params dp = {name, 3};
    *src = (img_src){.p = p, .n = n, .fmt = sniff(p, n)};
    if (src->fmt == FMT_NONE)
        return celer_errorf(CELER_ERR_INVALID, "'%s': %zu bytes that are not a JPEG or PNG image", name, n);
    CELER_TRY(src->fmt == FMT_JPEG ? jpeg_decode(&dp, 0, src, NULL) : png_decode(&dp, 0, src, NULL, NULL));
    const char *fmt = src->fmt == FMT_JPEG ? "JPEG" : "PNG";
    if (src->w > IMG_MAX_SIDE || src->h > IMG_MAX_SIDE)
        return celer_errorf(CELER_ERR_LIMIT, "'%s': %s of %ux%u (width x height); at most %d a side", name, fmt,
                            src->w, src->h, IMG_MAX_SIDE);
    return CELER_OK;
}

celer_status celer_image_probe(const uint8_t *p, size_t n, const char *name, celer_image_info *info) {
    img_src src;
    CELER_TRY(probe(p, n, name, &src));
    info->width = src.w;
    info->height = src.h;
    info->tmp_bytes = src.fmt == FMT_PNG && src.png_ch != 3 ? (size_t)src.w * src.h * (size_t)src.png_ch : 0;
    return CELER_OK;
}

celer_status celer_image_decode_rgb(const uint8_t *p, size_t n, const char *name, uint8_t *dst, uint8_t *tmp) {
    decode_params dp = {name, 3};
    img_src src;
    CELER_TRY(probe(p, n, name, &src));
    return src.fmt == FMT_JPEG ? jpeg_decode(&dp, 0, &src, dst) : png_decode(&dp, 0, &src, dst, tmp);
}

static celer_status decode_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    decode_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    int64_t ch = 3;
    CELER_TRY(pl_arg_int(c, args, "channels", false, INT64_MIN, INT64_MAX, &ch));
    if (ch != 1 && ch != 3)
        return pl_error(c, pl_arg(c, args, "channels"), "'channels' must be 1 (grayscale) or 3 (RGB), got %lld",
                        (long long)ch);
    p->channels = (int)ch;
    CELER_TRY(arg_io(c, args, s, &p->name));
    s->params = p;
    return CELER_OK;
}

static celer_status decode_run(const pl_step *s, pl_exec *x) {
    const decode_params *dp = s->params;
    const pl_value *v = pl_in(x, s, 0);
    const celer_tensor *t = &v->t;
    char b[128];
    if (t->dtype != CELER_STRING)
        return celer_errorf(CELER_ERR_DTYPE, "'%s' must be BYTES (encoded images), got %s", dp->name,
                            celer_dtype_name(t->dtype));
    /* one image per row: [N], or [N, 1, ...] */
    bool ok = t->shape.rank >= 1;
    for (int d = 1; ok && d < t->shape.rank; d++) ok = t->shape.dims[d] == 1;
    if (!ok)
        return celer_errorf(CELER_ERR_SHAPE, "'%s' must hold one image per row ([N]), got shape %s", dp->name,
                            celer_shape_str(&t->shape, b, sizeof b));
    int64_t n = t->shape.dims[0];
    img_src *srcs = pl_scratch(x, sizeof *srcs * (size_t)(n ? n : 1));
    if (!srcs) return celer_error_wrap(celer_error_status(), "'%s'", dp->name);
    memset(srcs, 0, sizeof *srcs * (size_t)n);
    /* headers first: sizes are checked before pixel memory is taken */
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        celer_str e = ((const celer_str *)t->data)[i];
        img_src *src = &srcs[i];
        CELER_TRY(image_bytes(x, dp, i, e.len ? e.data : "", e.len, src));
        CELER_TRY(src->fmt == FMT_JPEG ? jpeg_decode(dp, i, src, NULL) : png_decode(dp, i, src, NULL, NULL));
        const char *fmt = src->fmt == FMT_JPEG ? "JPEG" : "PNG";
        if (src->w > IMG_MAX_SIDE || src->h > IMG_MAX_SIDE)
            return celer_errorf(CELER_ERR_LIMIT, "'%s' element %lld: %s of %ux%u (width x height); at most %d a side",
                                dp->name, (long long)i, fmt, src->w, src->h, IMG_MAX_SIDE);
        if (src->w == 0 || src->h == 0)
            return celer_errorf(CELER_ERR_INVALID, "'%s' element %lld: %s of %ux%u has no pixels", dp->name,
                                (long long)i, fmt, src->w, src->h);
        total += (int64_t)src->w * src->h;
        if (total > IMG_MAX_PIXELS)
            return celer_errorf(CELER_ERR_LIMIT, "'%s': images up to element %lld hold %lld pixels, over %lld Mpixel per request",
                                dp->name, (long long)i, (long long)total, (long long)(IMG_MAX_PIXELS >> 20));
        if (src->w != srcs[0].w || src->h != srcs[0].h)
            return celer_errorf(CELER_ERR_SHAPE,
                                "'%s': the images of one request must have the same size: element 0 is %ux%u, element "
                                "%lld is %ux%u (width x height); resize them first or send them separately",
                                dp->name, srcs[0].w, srcs[0].h, (long long)i, src->w, src->h);
    }
    /* the memory the decode will take (sizes within the caps above: no overflow) */
    celer_shape shape = {4, {n, n ? srcs[0].h : 0, n ? srcs[0].w : 0, dp->channels}};
    size_t each = (size_t)shape.dims[1] * (size_t)shape.dims[2] * (size_t)dp->channels;
    size_t pixels_bytes = each * (size_t)n, coef = 0;
    int tmp_ch = 0; /* PNGs decode through one conversion buffer; JPEGs one at a time */
    for (int64_t i = 0; i < n; i++) {
        if (srcs[i].fmt == FMT_PNG && srcs[i].png_ch != dp->channels) tmp_ch = CELER_MAX(tmp_ch, srcs[i].png_ch);
        coef = CELER_MAX(coef, srcs[i].jpeg_coef);
    }
    size_t scratch = (size_t)shape.dims[1] * (size_t)shape.dims[2] * (size_t)tmp_ch + coef;
    size_t budget = pl_image_budget();
    if (budget && pixels_bytes + scratch > budget)
        return celer_errorf(CELER_ERR_LIMIT,
                            "'%s': %lld image%s of %lldx%lld (width x height) need %.1f MiB to decode (%.1f MiB of "
                            "pixels%s), more than the server's image memory budget of %.1f MiB; send smaller images",
                            dp->name, (long long)n, n == 1 ? "" : "s", (long long)shape.dims[2], (long long)shape.dims[1],
                            (double)(pixels_bytes + scratch) / (1 << 20), (double)pixels_bytes / (1 << 20),
                            coef && tmp_ch ? " and the decoders' working memory"
                            : coef        ? " and a progressive JPEG's coefficients"
                            : tmp_ch      ? " and a conversion buffer"
                                          : "",
                            (double)budget / (1 << 20));
    celer_tensor *out;
    CELER_TRY(pl_out_image(x, s, 0, CELER_UINT8, &shape, dp->name, &out));
    if (scratch) CELER_TRY(pl_image_take(scratch, dp->name));
    /* the run frees `out` (also after an error); the scratch is ours until we return */
    uint8_t *tmp = NULL;
    celer_status st = CELER_OK;
    if (tmp_ch && !(tmp = malloc((size_t)shape.dims[1] * (size_t)shape.dims[2] * (size_t)tmp_ch)))
        st = celer_errorf(CELER_ERR_NOMEM, "'%s': out of memory for a %lldx%lld conversion buffer", dp->name,
                          (long long)shape.dims[2], (long long)shape.dims[1]);
    for (int64_t i = 0; !st && i < n; i++) {
        uint8_t *dst = (uint8_t *)out->data + (size_t)i * each;
        st = srcs[i].fmt == FMT_JPEG ? jpeg_decode(dp, i, &srcs[i], dst) : png_decode(dp, i, &srcs[i], dst, tmp);
    }
    free(tmp);
    if (scratch) pl_image_give(scratch);
    return st;
}

/* ---- resize ---- */

typedef struct resize_params {
    const char *name;
    int64_t size[2];      /* [H, W], or 0 with shorter_side */
    int64_t shorter_side;
} resize_params;

/* Source taps of one output coordinate, as PyTorch's CPU kernel computes them: a float scale,
 * the source coordinate in double (its accumulate type), float weights; an axis that keeps its
 * size copies. */
typedef struct tap {
    int64_t i0, i1;
    float l0, l1;
} tap;

static void make_taps(int64_t in, int64_t out, tap *t) {
    double scale = (float)in / (float)out;
    for (int64_t d = 0; d < out; d++) {
        if (in == out) {
            t[d] = (tap){d, d, 1.0f, 0.0f};
            continue;
        }
        double src = scale * ((double)d + 0.5) - 0.5;
        if (src < 0) src = 0;
        int64_t i0 = (int64_t)src;
        float l1 = (float)CELER_MIN(CELER_MAX(src - (double)i0, 0.0), 1.0);
        t[d] = (tap){i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0f - l1, l1};
    }
}

/* a * wa + b * wb rounded as PyTorch's x86-64 build does it (contracted to one fma), so results
 * match it bit for bit and UINT8 ties round the same way as torchvision's */
static inline float lerp2(float a, float wa, float b, float wb) { return fmaf(a, wa, b * wb); }

/* torchvision's shorter_side: the shorter side of h x w (h, w >= 1) becomes S, the longer
 * int(S * long / short). Shared by the run and the type rule. */
static void shorter_side_hw(int64_t S, int64_t h, int64_t w, int64_t *oh, int64_t *ow) {
    int64_t lg;
    bool tall = w <= h;
    if (__builtin_mul_overflow(S, tall ? h : w, &lg)) lg = INT64_MAX;
    else lg /= tall ? w : h;
    *oh = tall ? lg : S;
    *ow = tall ? S : lg;
}

static celer_status resize_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    resize_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    bool has_size;
    CELER_TRY(arg_hw(c, args, "size", p->size, &has_size));
    const yaml_node_t *ss = pl_arg(c, args, "shorter_side");
    if (has_size == (ss != NULL))
        return pl_error(c, args, "give exactly one of 'size: [height, width]' or 'shorter_side: S'");
    CELER_TRY(pl_arg_int(c, args, "shorter_side", false, 1, IMG_MAX_SIDE, &p->shorter_side));
    CELER_TRY(arg_io(c, args, s, &p->name));
    s->params = p;
    return CELER_OK;
}

static celer_status resize_run(const pl_step *s, pl_exec *x) {
    const resize_params *rp = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    if (in->dtype != CELER_UINT8 && in->dtype != CELER_FLOAT)
        return celer_errorf(CELER_ERR_DTYPE, "'%s' must be UINT8 or FP32, got %s", rp->name, celer_dtype_name(in->dtype));
    CELER_TRY(need_nhwc(in, rp->name));
    int64_t n = in->shape.dims[0], h = in->shape.dims[1], w = in->shape.dims[2], ch = in->shape.dims[3];
    int64_t oh = rp->size[0], ow = rp->size[1];
    if (h < 1 || w < 1)
        return celer_errorf(CELER_ERR_SHAPE, "'%s' has no pixels to resize (%lldx%lld)", rp->name, (long long)h,
                            (long long)w);
    if (rp->shorter_side) shorter_side_hw(rp->shorter_side, h, w, &oh, &ow);
    CELER_TRY(check_out_size(rp->name, n, oh, ow));
    celer_shape shape = {4, {n, oh, ow, ch}};
    celer_tensor *out = pl_out(x, s, 0, in->dtype, &shape);
    if (!out) return celer_error_wrap(celer_error_status(), "'%s'", rp->name);
    size_t esize = celer_dtype_size(in->dtype);
    if (oh == h && ow == w) {
        memcpy(out->data, in->data, (size_t)(n * h * w * ch) * esize);
        return CELER_OK;
    }
    tap *ty = pl_scratch(x, sizeof *ty * (size_t)(oh + ow));
    if (!ty) return celer_error_wrap(celer_error_status(), "'%s'", rp->name);
    tap *tx = ty + oh;
    make_taps(h, oh, ty);
    make_taps(w, ow, tx);
    bool u8 = in->dtype == CELER_UINT8;
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < oh; y++) {
            int64_t r0 = ((b * h + ty[y].i0) * w) * ch, r1 = ((b * h + ty[y].i1) * w) * ch;
            int64_t o = ((b * oh + y) * ow) * ch;
            float wy0 = ty[y].l0, wy1 = ty[y].l1;
            for (int64_t xo = 0; xo < ow; xo++, o += ch) {
                int64_t c0 = tx[xo].i0 * ch, c1 = tx[xo].i1 * ch;
                float wx0 = tx[xo].l0, wx1 = tx[xo].l1;
                if (u8) {
                    const uint8_t *p = in->data;
                    uint8_t *q = out->data;
                    for (int64_t k = 0; k < ch; k++) {
                        float v = lerp2(lerp2(p[r0 + c0 + k], wx0, p[r0 + c1 + k], wx1), wy0,
                                        lerp2(p[r1 + c0 + k], wx0, p[r1 + c1 + k], wx1), wy1);
                        v = nearbyintf(v); /* half to even, like torch.round */
                        q[o + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
                } else {
                    const float *p = in->data;
                    float *q = out->data;
                    for (int64_t k = 0; k < ch; k++)
                        q[o + k] = lerp2(lerp2(p[r0 + c0 + k], wx0, p[r0 + c1 + k], wx1), wy0,
                                         lerp2(p[r1 + c0 + k], wx0, p[r1 + c1 + k], wx1), wy1);
                }
            }
        }
    return CELER_OK;
}

/* ---- center_crop ---- */

typedef struct crop_params {
    const char *name;
    int64_t size[2];
} crop_params;

static celer_status crop_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    crop_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    bool has_size;
    CELER_TRY(arg_hw(c, args, "size", p->size, &has_size));
    if (!has_size) return pl_error(c, args, "missing argument 'size' ([height, width])");
    CELER_TRY(arg_io(c, args, s, &p->name));
    s->params = p;
    return CELER_OK;
}

/* torchvision's offset int(round(d / 2.0)): Python rounds half to even */
static int64_t crop_offset(int64_t d) { return d / 2 + ((d & 1) && ((d / 2) & 1)); }

static celer_status crop_run(const pl_step *s, pl_exec *x) {
    const crop_params *cp = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    if (!pl_is_numeric(in->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "'%s' must be numeric, got %s", cp->name, celer_dtype_name(in->dtype));
    CELER_TRY(need_nhwc(in, cp->name));
    int64_t n = in->shape.dims[0], h = in->shape.dims[1], w = in->shape.dims[2], ch = in->shape.dims[3];
    int64_t oh = cp->size[0], ow = cp->size[1];
    if (oh > h || ow > w)
        return celer_errorf(CELER_ERR_SHAPE,
                            "'%s': crop %lldx%lld (height x width) is larger than the image, %lldx%lld; resize first",
                            cp->name, (long long)oh, (long long)ow, (long long)h, (long long)w);
    celer_shape shape = {4, {n, oh, ow, ch}};
    celer_tensor *out = pl_out(x, s, 0, in->dtype, &shape);
    if (!out) return celer_error_wrap(celer_error_status(), "'%s'", cp->name);
    size_t es = celer_dtype_size(in->dtype), row = (size_t)(ow * ch) * es;
    int64_t top = crop_offset(h - oh), left = crop_offset(w - ow);
    const char *p = in->data;
    char *q = out->data;
    for (int64_t b = 0; b < n; b++)
        for (int64_t y = 0; y < oh; y++, q += row)
            memcpy(q, p + (size_t)(((b * h + top + y) * w + left) * ch) * es, row);
    return CELER_OK;
}

/* ---- to_chw ---- */

typedef struct chw_params {
    const char *name;
} chw_params;

static celer_status chw_parse(pl_parse *c, const yaml_node_t *args, pl_step *s) {
    chw_params *p = celer_arena_alloc(pl_arena(c), sizeof *p);
    if (!p) return CELER_ERR_NOMEM;
    CELER_TRY(arg_io(c, args, s, &p->name));
    s->params = p;
    return CELER_OK;
}

static celer_status chw_run(const pl_step *s, pl_exec *x) {
    const chw_params *cp = s->params;
    const celer_tensor *in = &pl_in(x, s, 0)->t;
    if (!pl_is_numeric(in->dtype))
        return celer_errorf(CELER_ERR_DTYPE, "'%s' must be numeric, got %s", cp->name, celer_dtype_name(in->dtype));
    CELER_TRY(need_nhwc(in, cp->name));
    int64_t n = in->shape.dims[0], h = in->shape.dims[1], w = in->shape.dims[2], ch = in->shape.dims[3];
    celer_shape shape = {4, {n, ch, h, w}};
    celer_tensor *out = pl_out(x, s, 0, CELER_FLOAT, &shape);
    if (!out) return celer_error_wrap(celer_error_status(), "'%s'", cp->name);
    int64_t hw = h * w;
    float *q = out->data;
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < ch; k++) {
            float *dst = q + (b * ch + k) * hw;
            int64_t base = b * hw * ch + k;
            if (in->dtype == CELER_UINT8) {
                const uint8_t *p = (const uint8_t *)in->data + base;
                for (int64_t i = 0; i < hw; i++) dst[i] = p[i * ch];
            } else if (in->dtype == CELER_FLOAT) {
                const float *p = (const float *)in->data + base;
                for (int64_t i = 0; i < hw; i++) dst[i] = p[i * ch];
            } else {
                for (int64_t i = 0; i < hw; i++) dst[i] = (float)celer_ops_double_at(in, base + i * ch);
            }
        }
    return CELER_OK;
}

/* ---- types: every run gives an image batch, per row [H, W, C] (to_chw: [C, H, W]). resize,
 * center_crop and to_chw on an input whose per-row rank is known and is not 3 fail every run:
 * their output is unknown ---- */

/* The input's [H, W, C], -1 where unknown; false when its rank rules a run out. */
static bool image_hwc(const celer_pipeline_type *in, int64_t hwc[3]) {
    for (int d = 0; d < 3; d++) hwc[d] = in->rank == 3 ? in->dims[d] : -1;
    return in->rank == 3 || in->rank < 0;
}

static void set_image_type(pl_types *c, const pl_step *s, bool ok, celer_dtype dtype, int64_t d0, int64_t d1, int64_t d2) {
    celer_pipeline_type t = ok ? (celer_pipeline_type){.dtype = dtype, .rank = 3, .dims = {d0, d1, d2}} : pl_type_unknown();
    pl_type_set(c, s, 0, &t);
}

/* uint8, the size of the files sent */
static void decode_types(const pl_step *s, pl_types *c) {
    set_image_type(c, s, true, CELER_UINT8, -1, -1, ((const decode_params *)s->params)->channels);
}

/* the input's dtype (uint8 or float32); shorter_side gives a known size from a known one */
static void resize_types(const pl_step *s, pl_types *c) {
    const resize_params *rp = s->params;
    const celer_pipeline_type *in = pl_type_in(c, s, 0);
    int64_t hwc[3], oh = rp->size[0], ow = rp->size[1];
    bool ok = image_hwc(in, hwc);
    if (rp->shorter_side) {
        oh = ow = -1;
        if (hwc[0] >= 1 && hwc[1] >= 1) shorter_side_hw(rp->shorter_side, hwc[0], hwc[1], &oh, &ow);
    }
    celer_dtype dtype = in->dtype == CELER_UINT8 || in->dtype == CELER_FLOAT ? in->dtype : CELER_UNDEFINED;
    set_image_type(c, s, ok, dtype, oh, ow, hwc[2]);
}

static void crop_types(const pl_step *s, pl_types *c) {
    const crop_params *cp = s->params;
    const celer_pipeline_type *in = pl_type_in(c, s, 0);
    int64_t hwc[3];
    bool ok = image_hwc(in, hwc);
    set_image_type(c, s, ok, pl_is_numeric(in->dtype) ? in->dtype : CELER_UNDEFINED, cp->size[0], cp->size[1], hwc[2]);
}

static void chw_types(const pl_step *s, pl_types *c) {
    int64_t hwc[3];
    bool ok = image_hwc(pl_type_in(c, s, 0), hwc);
    set_image_type(c, s, ok, CELER_FLOAT, hwc[2], hwc[0], hwc[1]);
}

/* designated: the fields a kind leaves out (free, run_batch) are NULL */
const pl_kind pl_kind_decode_image = {.name = "decode_image", .keys = "input channels output", .parse = decode_parse,
                                      .run = decode_run, .types = decode_types};
const pl_kind pl_kind_resize = {.name = "resize", .keys = "input size shorter_side output", .parse = resize_parse,
                                .run = resize_run, .types = resize_types};
const pl_kind pl_kind_center_crop = {
    .name = "center_crop", .keys = "input size output", .parse = crop_parse, .run = crop_run, .types = crop_types};
const pl_kind pl_kind_to_chw = {
    .name = "to_chw", .keys = "input output", .parse = chw_parse, .run = chw_run, .types = chw_types};
