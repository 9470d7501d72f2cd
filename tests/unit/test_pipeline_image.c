/* Unit tests of the image steps (src/pipeline/steps_image.c) through small pipelines: decode_image
 * on JPEG and PNG files written here with libjpeg / libpng (raw and base64, grayscale, batches,
 * corrupt and oversized inputs), resize against a per-pixel bilinear formula in doubles and
 * against numbers printed by PyTorch 1.13 / torchvision 0.14, center_crop against torchvision's
 * offsets, to_chw, the load-time errors for bad arguments, and the image memory budget (refusals,
 * release after a run and after the last step that reads a decode, threads). */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "pipeline/pipeline.h"
#include "testutil.h"

/* ---- building test images ---- */

/* A smooth pattern (JPEG compresses it with small errors) or a noisy one (for PNG). */
static uint8_t *pattern(int w, int h, int ch, bool noisy, uint32_t seed) {
    uint8_t *p = malloc((size_t)(w * h * ch));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                size_t i = ((size_t)y * w + x) * ch + c;
                if (noisy) {
                    seed = seed * 1664525u + 1013904223u;
                    p[i] = (uint8_t)(seed >> 24);
                } else {
                    p[i] = (uint8_t)(40 + (x * 150) / w + (y * 50) / h + c * 10);
                }
            }
    return p;
}

/* Quality 95, no chroma subsampling (so errors stay small); `progressive` for a multi-scan file. */
static uint8_t *make_jpeg(int w, int h, int ch, const uint8_t *pixels, bool progressive, size_t *len) {
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&ci, &buf, &size);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = ch;
    ci.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 95, TRUE);
    for (int i = 0; i < ci.num_components; i++) ci.comp_info[i].h_samp_factor = ci.comp_info[i].v_samp_factor = 1;
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)ci.next_scanline * w * ch);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *len = size;
    return buf;
}

/* Reference decode with libjpeg's defaults, to check decode_image's output byte for byte. */
static uint8_t *ref_jpeg_decode(const uint8_t *data, size_t len, int ch) {
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)len);
    jpeg_read_header(&ci, TRUE);
    ci.out_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&ci);
    size_t stride = (size_t)ci.output_width * ch;
    uint8_t *out = malloc(stride * ci.output_height);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = out + ci.output_scanline * stride;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return out;
}

/* Base64 text, optionally with a prefix, line breaks every `wrap` characters (0: none) and
 * without the '=' padding. */
static char *base64(const uint8_t *p, size_t n, const char *prefix, int wrap, bool pad) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(strlen(prefix) + n * 2 + 16), *o = out;
    o += sprintf(o, "%s", prefix);
    int col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        int chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
        for (int k = 0; k < 4; k++) {
            if (k < chars) *o++ = alpha[(v >> (18 - 6 * k)) & 63];
            else if (pad) *o++ = '=';
            if (wrap && ++col % wrap == 0) *o++ = '\n';
        }
    }
    *o = 0;
    return out;
}

static uint32_t crc32_ref(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A valid small PNG whose IHDR (with a correct CRC) claims w x h. */
static uint8_t *png_claiming(uint32_t w, uint32_t h, size_t *len) {
    uint8_t px[12] = {0};
    uint8_t *png = tu_png(2, 2, PNG_FORMAT_RGB, px, len);
    assert_memory_equal(png + 12, "IHDR", 4);
    put_be32(png + 16, w);
    put_be32(png + 20, h);
    put_be32(png + 29, crc32_ref(png + 12, 17));
    return png;
}

/* ---- running pipelines ---- */

static celer_pipeline *load(const char *yaml) {
    celer_pipeline *p = NULL;
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "test.yaml", ".", &p);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    return p;
}

/* The last run started on this thread: finish() ends it (its decoded images live outside the
 * arena, until then when they are outputs) and frees the arena. */
static _Thread_local celer_pipeline_run *last_run;

static void finish(celer_arena *arena) {
    celer_pipeline_run_end(last_run);
    last_run = NULL;
    celer_arena_free(arena);
}

/* Runs a one-input pipeline in `arena`; *out is its first output. */
static celer_status run(const celer_pipeline *p, celer_arena *arena, const celer_tensor *in, const celer_tensor **out) {
    celer_pipeline_run *r;
    last_run = NULL;
    CELER_TRY(celer_pipeline_run_init(p, arena, &r));
    last_run = r;
    CELER_TRY(celer_pipeline_set_input(r, 0, in));
    const celer_pipeline_call *call;
    CELER_TRY(celer_pipeline_run_steps(r, &call));
    assert_null(call);
    *out = &celer_pipeline_run_outputs(r)[0];
    return CELER_OK;
}

static void expect_error(celer_status st, celer_status want, const char *text) {
    if (st != want || !strstr(celer_error_message(), text))
        print_error("status %d (want %d), message: %s\n(expected to contain '%s')\n", st, want, celer_error_message(),
                    text);
    assert_int_equal(st, want);
    assert_non_null(strstr(celer_error_message(), text));
}

static void expect_shape(const celer_tensor *t, celer_dtype dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->shape.rank, 4);
    assert_int_equal(t->shape.dims[0], d0);
    assert_int_equal(t->shape.dims[1], d1);
    assert_int_equal(t->shape.dims[2], d2);
    assert_int_equal(t->shape.dims[3], d3);
}

static celer_pipeline *decode_pipeline(int channels) {
    char yaml[256];
    snprintf(yaml, sizeof yaml,
             "inputs:\n"
             "  - {name: img, dtype: BYTES}\n"
             "outputs: [pixels]\n"
             "steps:\n"
             "  - decode_image: {input: img, channels: %d, output: pixels}\n",
             channels);
    return load(yaml);
}

/* Decodes n elements (lens NULL: NUL-terminated text) with a fresh arena; the caller frees it. */
static celer_status decode(const celer_pipeline *p, celer_arena *arena, int n, const void *const *elems,
                           const size_t *lens, const celer_tensor **out) {
    celer_arena_init(arena, 1 << 16, (size_t)1 << 30);
    celer_str *els = celer_arena_alloc(arena, sizeof *els * (size_t)(n ? n : 1));
    assert_non_null(els);
    for (int i = 0; i < n; i++) els[i] = (celer_str){elems[i], lens ? lens[i] : elems[i] ? strlen((const char *)elems[i]) : 0};
    celer_tensor in = {CELER_STRING, {1, {n}}, els};
    return run(p, arena, &in, out);
}

/* ---- decode_image ---- */

static void test_png(void **state) {
    (void)state;
    celer_pipeline *rgb = decode_pipeline(3), *gray = decode_pipeline(1);
    celer_arena a;
    const celer_tensor *out = NULL;

    /* RGB, raw bytes: exact */
    uint8_t *px = pattern(7, 5, 3, true, 1);
    size_t len;
    uint8_t *png = tu_png(7, 5, PNG_FORMAT_RGB, px, &len);
    const void *e[] = {png};
    assert_int_equal(decode(rgb, &a, 1, e, &len, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 5, 7, 3);
    assert_memory_equal(out->data, px, 7 * 5 * 3);
    finish(&a);

    /* the same as base64 in a data: URL, with line breaks, read as NUL-terminated text */
    char *text = base64(png, len, "data:image/png;base64,", 60, true);
    const void *t[] = {text};
    assert_int_equal(decode(rgb, &a, 1, t, NULL, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 5, 7, 3);
    assert_memory_equal(out->data, px, 7 * 5 * 3);
    finish(&a);

    /* RGB to one channel: PIL's convert("L") (numbers printed by Pillow 9.4) */
    uint8_t six[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 200, 99, 128, 128, 128, 1, 2, 3};
    const uint8_t want_l[] = {76, 150, 29, 132, 128, 2};
    uint8_t *png6 = tu_png(6, 1, PNG_FORMAT_RGB, six, &len);
    const void *e6[] = {png6};
    assert_int_equal(decode(gray, &a, 1, e6, &len, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 1, 6, 1);
    assert_memory_equal(out->data, want_l, 6);
    finish(&a);
    free(png6);

    /* grayscale PNG: exact with channels 1, replicated with channels 3; base64 without padding */
    uint8_t *g = pattern(6, 4, 1, true, 2);
    uint8_t *gpng = tu_png(6, 4, PNG_FORMAT_GRAY, g, &len);
    char *gtext = base64(gpng, len, "", 0, false);
    const void *ge[] = {gtext};
    assert_int_equal(decode(gray, &a, 1, ge, NULL, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 4, 6, 1);
    assert_memory_equal(out->data, g, 24);
    finish(&a);
    assert_int_equal(decode(rgb, &a, 1, ge, NULL, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 4, 6, 3);
    for (int i = 0; i < 24; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(((uint8_t *)out->data)[i * 3 + c], g[i]);
    finish(&a);

    /* RGBA: the alpha channel is dropped, colours kept as stored */
    uint8_t *rgba = pattern(5, 3, 4, true, 3);
    uint8_t *apng = tu_png(5, 3, PNG_FORMAT_RGBA, rgba, &len);
    const void *ae[] = {apng};
    assert_int_equal(decode(rgb, &a, 1, ae, &len, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 3, 5, 3);
    for (int i = 0; i < 15; i++) assert_memory_equal((uint8_t *)out->data + i * 3, rgba + i * 4, 3);
    finish(&a);
    assert_int_equal(decode(gray, &a, 1, ae, &len, &out), CELER_OK);
    for (int i = 0; i < 15; i++) {
        const uint8_t *q = rgba + i * 4;
        assert_int_equal(((uint8_t *)out->data)[i], (q[0] * 19595u + q[1] * 38470u + q[2] * 7471u + 0x8000u) >> 16);
    }
    finish(&a);

    free(px), free(png), free(text), free(g), free(gpng), free(gtext), free(rgba), free(apng);
    celer_pipeline_free(rgb);
    celer_pipeline_free(gray);
}

static void test_jpeg(void **state) {
    (void)state;
    celer_pipeline *rgb = decode_pipeline(3), *gray = decode_pipeline(1);
    celer_arena a;
    const celer_tensor *out = NULL;
    const int w = 16, h = 12;
    uint8_t *px = pattern(w, h, 3, false, 0);
    for (int prog = 0; prog < 2; prog++) {
        size_t len;
        uint8_t *jpg = make_jpeg(w, h, 3, px, prog, &len);
        uint8_t *ref = ref_jpeg_decode(jpg, len, 3), *ref1 = ref_jpeg_decode(jpg, len, 1);
        /* raw */
        const void *e[] = {jpg};
        assert_int_equal(decode(rgb, &a, 1, e, &len, &out), CELER_OK);
        expect_shape(out, CELER_UINT8, 1, h, w, 3);
        assert_memory_equal(out->data, ref, (size_t)w * h * 3);
        for (int i = 0; i < w * h * 3; i++) assert_true(abs(((uint8_t *)out->data)[i] - px[i]) <= 6);
        finish(&a);
        /* base64 in a data: URL, no padding, and leading whitespace */
        char *b = base64(jpg, len, "  data:image/jpeg;base64,", 76, false);
        const void *t[] = {b};
        assert_int_equal(decode(rgb, &a, 1, t, NULL, &out), CELER_OK);
        assert_memory_equal(out->data, ref, (size_t)w * h * 3);
        finish(&a);
        /* colour JPEG to one channel: its luma */
        assert_int_equal(decode(gray, &a, 1, e, &len, &out), CELER_OK);
        expect_shape(out, CELER_UINT8, 1, h, w, 1);
        assert_memory_equal(out->data, ref1, (size_t)w * h);
        for (int i = 0; i < w * h; i++) {
            const uint8_t *q = px + i * 3;
            assert_true(fabs(((uint8_t *)out->data)[i] - (0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2])) <= 6);
        }
        finish(&a);
        free(jpg), free(ref), free(ref1), free(b);
    }
    /* a grayscale JPEG, as one channel and as three */
    uint8_t *g = pattern(w, h, 1, false, 0);
    size_t len;
    uint8_t *gj = make_jpeg(w, h, 1, g, false, &len);
    const void *e[] = {gj};
    assert_int_equal(decode(gray, &a, 1, e, &len, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, h, w, 1);
    for (int i = 0; i < w * h; i++) assert_true(abs(((uint8_t *)out->data)[i] - g[i]) <= 4);
    finish(&a);
    assert_int_equal(decode(rgb, &a, 1, e, &len, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, h, w, 3);
    for (int i = 0; i < w * h; i++) {
        const uint8_t *q = (uint8_t *)out->data + i * 3;
        assert_true(q[0] == q[1] && q[1] == q[2] && abs(q[0] - g[i]) <= 4);
    }
    finish(&a);
    free(px), free(g), free(gj);
    celer_pipeline_free(rgb);
    celer_pipeline_free(gray);
}

static void test_batch(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    celer_arena a;
    const celer_tensor *out = NULL;
    uint8_t *px0 = pattern(9, 6, 3, false, 0), *px1 = pattern(9, 6, 3, true, 5), *px2 = pattern(6, 9, 3, true, 6);
    size_t l0, l1, l2;
    uint8_t *jpg = make_jpeg(9, 6, 3, px0, false, &l0), *png = tu_png(9, 6, PNG_FORMAT_RGB, px1, &l1);
    uint8_t *other = tu_png(6, 9, PNG_FORMAT_RGB, px2, &l2);
    uint8_t *ref = ref_jpeg_decode(jpg, l0, 3);

    /* a JPEG and a PNG of the same size in one request */
    const void *e[] = {jpg, png};
    size_t lens[] = {l0, l1};
    assert_int_equal(decode(p, &a, 2, e, lens, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 2, 6, 9, 3);
    assert_memory_equal(out->data, ref, 9 * 6 * 3);
    assert_memory_equal((uint8_t *)out->data + 9 * 6 * 3, px1, 9 * 6 * 3);
    finish(&a);

    /* sizes that differ */
    const void *e2[] = {png, other};
    size_t lens2[] = {l1, l2};
    expect_error(decode(p, &a, 2, e2, lens2, &out), CELER_ERR_SHAPE, "same size");
    expect_error(CELER_ERR_SHAPE, CELER_ERR_SHAPE, "element 1 is 6x9");
    finish(&a);

    /* no rows: an empty batch */
    assert_int_equal(decode(p, &a, 0, e, lens, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 0, 0, 0, 3);
    finish(&a);

    free(px0), free(px1), free(px2), free(jpg), free(png), free(other), free(ref);
    celer_pipeline_free(p);
}

static void test_bad_images(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    celer_arena a;
    const celer_tensor *out = NULL;
    uint8_t *px = pattern(32, 32, 3, true, 9);
    size_t jl, pl;
    uint8_t *jpg = make_jpeg(32, 32, 3, px, false, &jl), *png = tu_png(32, 32, PNG_FORMAT_RGB, px, &pl);

    /* garbage bytes (with NULs, so lens matter), garbage text, base64 of something else */
    const uint8_t junk[] = {0, 1, 2, 'h', 'i', 0, 0xFF, 0xD8};
    const void *e[] = {junk};
    size_t n = sizeof junk;
    expect_error(decode(p, &a, 1, e, &n, &out), CELER_ERR_INVALID, "not a JPEG or PNG image (8 bytes starting 00 01 02");
    finish(&a);
    const void *t[] = {"hello world!"};
    expect_error(decode(p, &a, 1, t, NULL, &out), CELER_ERR_INVALID, "nor base64 text");
    finish(&a);
    const void *t2[] = {"aGVsbG8="}; /* "hello" */
    expect_error(decode(p, &a, 1, t2, NULL, &out), CELER_ERR_INVALID, "decodes to 5 bytes that are not");
    finish(&a);
    const void *t3[] = {"data:image/png,iVBORw0KGgo="};
    expect_error(decode(p, &a, 1, t3, NULL, &out), CELER_ERR_INVALID, ";base64,");
    finish(&a);

    /* empty elements: "", only whitespace, a NULL pointer (length 0) */
    const void *em[] = {"", " \n", NULL};
    for (int i = 0; i < 3; i++) {
        expect_error(decode(p, &a, 1, em + i, NULL, &out), CELER_ERR_INVALID, "element 0 is empty");
        finish(&a);
    }

    /* truncated files: raw and through base64 */
    const void *tj[] = {jpg};
    size_t half = jl / 2;
    expect_error(decode(p, &a, 1, tj, &half, &out), CELER_ERR_INVALID, "bad JPEG: Premature end");
    finish(&a);
    size_t few = 40; /* inside the header */
    expect_error(decode(p, &a, 1, tj, &few, &out), CELER_ERR_INVALID, "bad JPEG");
    finish(&a);
    char *b = base64(jpg, jl - 200, "", 0, true);
    const void *tb[] = {b};
    expect_error(decode(p, &a, 1, tb, NULL, &out), CELER_ERR_INVALID, "bad JPEG (from base64)");
    finish(&a);
    const void *tp[] = {png};
    size_t part = pl * 6 / 10;
    expect_error(decode(p, &a, 1, tp, &part, &out), CELER_ERR_INVALID, "bad PNG");
    finish(&a);
    part = 20; /* inside IHDR */
    expect_error(decode(p, &a, 1, tp, &part, &out), CELER_ERR_INVALID, "bad PNG");
    finish(&a);

    /* a corrupt PNG checksum */
    uint8_t *bad = malloc(pl);
    memcpy(bad, png, pl);
    bad[30] ^= 0x55;
    const void *tc[] = {bad};
    expect_error(decode(p, &a, 1, tc, &pl, &out), CELER_ERR_INVALID, "bad PNG");
    finish(&a);

    /* the second element is the bad one: the message says which */
    const void *two[] = {png, junk};
    size_t two_l[] = {pl, sizeof junk};
    expect_error(decode(p, &a, 2, two, two_l, &out), CELER_ERR_INVALID, "'img' element 1 is not");
    finish(&a);

    free(px), free(jpg), free(png), free(b), free(bad);
    celer_pipeline_free(p);
}

/* An image over a cap is the client's to fix: 413, not to be retried, and nothing reserved. */
static void expect_client_limit(celer_status st) {
    assert_int_equal(st, CELER_ERR_LIMIT);
    assert_int_equal(celer_status_http(st), 413);
    assert_false(celer_status_retryable(st));
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);
}

static void test_limits(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    celer_arena a;
    const celer_tensor *out = NULL;
    size_t len;

    /* a PNG claiming 100000 x 100000: refused from its header, before any pixel memory */
    uint8_t *huge = png_claiming(100000, 100000, &len);
    const void *e[] = {huge};
    celer_status st = decode(p, &a, 1, e, &len, &out);
    expect_error(st, CELER_ERR_LIMIT, "100000x100000");
    expect_client_limit(st);
    assert_true(a.total < ((size_t)1 << 20));
    finish(&a);
    /* the same with no image budget at all, and with one too small even for the cap's images:
     * the side cap answers first, never the budget */
    celer_pipeline_set_image_budget(0);
    st = decode(p, &a, 1, e, &len, &out);
    expect_error(st, CELER_ERR_LIMIT, "at most 8192 a side");
    expect_client_limit(st);
    finish(&a);
    celer_pipeline_set_image_budget(1);
    st = decode(p, &a, 1, e, &len, &out);
    expect_error(st, CELER_ERR_LIMIT, "at most 8192 a side");
    expect_client_limit(st);
    finish(&a);
    celer_pipeline_set_image_budget(CELER_PIPELINE_IMAGE_BUDGET_DEFAULT);
    char *b = base64(huge, len, "data:image/png;base64,", 0, true);
    const void *eb[] = {b};
    expect_error(decode(p, &a, 1, eb, NULL, &out), CELER_ERR_LIMIT, "at most 8192 a side");
    assert_true(a.total < ((size_t)1 << 20));
    finish(&a);

    /* two of 6000 x 6000 pass the side cap but not the per-request pixel cap */
    uint8_t *big = png_claiming(6000, 6000, &len);
    const void *e2[] = {big, big};
    size_t lens[] = {len, len};
    st = decode(p, &a, 2, e2, lens, &out);
    expect_error(st, CELER_ERR_LIMIT, "Mpixel");
    expect_client_limit(st);
    assert_true(a.total < ((size_t)1 << 20));
    finish(&a);

    /* a JPEG whose frame header says 9000 rows */
    uint8_t px[16 * 16 * 3] = {0};
    uint8_t *jpg = make_jpeg(16, 16, 3, px, false, &len);
    size_t sof = 2;
    while (sof + 8 < len && !(jpg[sof] == 0xFF && jpg[sof + 1] == 0xC0)) sof++;
    assert_true(sof + 8 < len);
    jpg[sof + 5] = 9000 >> 8;
    jpg[sof + 6] = 9000 & 255;
    const void *ej[] = {jpg};
    st = decode(p, &a, 1, ej, &len, &out);
    expect_error(st, CELER_ERR_LIMIT, "JPEG of 16x9000");
    expect_client_limit(st);
    assert_true(a.total < ((size_t)1 << 20));
    finish(&a);

    free(huge), free(b), free(big), free(jpg);
    celer_pipeline_free(p);
}

/* Many requests decoding at once on one shared pipeline give the same bytes. */
typedef struct thread_job {
    const celer_pipeline *p;
    const void *const *elems;
    const size_t *lens;
    const uint8_t *want;
    size_t want_len;
    int failures;
} thread_job;

static void *decode_loop(void *arg) {
    thread_job *j = arg;
    for (int i = 0; i < 20; i++) {
        celer_arena a;
        const celer_tensor *out = NULL;
        celer_status st = decode(j->p, &a, 2, j->elems, j->lens, &out);
        if (st || memcmp(out->data, j->want, j->want_len)) j->failures++;
        finish(&a);
        /* a bad one in between: errors are per thread and leave nothing behind */
        const void *junk[] = {"!!"};
        if (decode(j->p, &a, 1, junk, NULL, &out) != CELER_ERR_INVALID ||
            !strstr(celer_error_message(), "2 bytes starting 21 21"))
            j->failures++;
        finish(&a);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    uint8_t *px0 = pattern(24, 16, 3, false, 0), *px1 = pattern(24, 16, 3, true, 3);
    size_t l0, l1;
    uint8_t *jpg = make_jpeg(24, 16, 3, px0, true, &l0), *png = tu_png(24, 16, PNG_FORMAT_RGB, px1, &l1);
    char *b = base64(png, l1, "data:image/png;base64,", 64, true);
    const void *elems[] = {jpg, b};
    size_t lens[] = {l0, strlen(b)};
    size_t each = 24 * 16 * 3;
    uint8_t *want = malloc(2 * each), *ref = ref_jpeg_decode(jpg, l0, 3);
    memcpy(want, ref, each);
    memcpy(want + each, px1, each);
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){p, elems, lens, want, 2 * each, 0};
        assert_int_equal(pthread_create(&th[i], NULL, decode_loop, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    free(px0), free(px1), free(jpg), free(png), free(b), free(want), free(ref);
    celer_pipeline_free(p);
}

static void test_decode_dtype(void **state) {
    (void)state;
    celer_pipeline *p = load("inputs:\n"
                             "  - {name: img, dtype: FP32}\n"
                             "outputs: [img]\n"
                             "steps:\n"
                             "  - decode_image: img\n");
    celer_arena a;
    celer_arena_init(&a, 1 << 16, 0);
    float v = 1;
    celer_tensor in = {CELER_FLOAT, {1, {1}}, &v};
    const celer_tensor *out = NULL;
    expect_error(run(p, &a, &in, &out), CELER_ERR_DTYPE, "'img' must be BYTES");
    expect_error(CELER_ERR_DTYPE, CELER_ERR_DTYPE, "test.yaml line 5");
    finish(&a);
    celer_pipeline_free(p);
}

/* ---- resize ---- */

static celer_pipeline *image_pipeline(const char *dtype, const char *step) {
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs:\n"
             "  - {name: x, dtype: %s, shape: [-1, -1, -1]}\n"
             "outputs: [y]\n"
             "steps:\n"
             "  - %s\n",
             dtype, step);
    return load(yaml);
}

/* Runs `p` on an [n, h, w, c] tensor of `dtype` holding `data`. */
static celer_status run_image(const celer_pipeline *p, celer_arena *a, celer_dtype dtype, int n, int h, int w, int c,
                              void *data, const celer_tensor **out) {
    celer_arena_init(a, 1 << 16, (size_t)1 << 30);
    celer_tensor in = {dtype, {4, {n, h, w, c}}, data};
    return run(p, a, &in, out);
}

/* PyTorch's bilinear (align_corners=False), written out per output pixel in doubles. */
static double ref_bilinear(const double *img, int h, int w, int c, int oh, int ow, int b, int y, int x, int k) {
    double sy = ((double)y + 0.5) * h / oh - 0.5, sx = ((double)x + 0.5) * w / ow - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
    double ly = sy - y0, lx = sx - x0;
#define AT(yy, xx) img[(((size_t)b * h + (yy)) * w + (xx)) * c + k]
    return (1 - ly) * ((1 - lx) * AT(y0, x0) + lx * AT(y0, x1)) + ly * ((1 - lx) * AT(y1, x0) + lx * AT(y1, x1));
#undef AT
}

static void check_resize(celer_dtype dtype, int n, int h, int w, int c, int oh, int ow) {
    char step[128];
    snprintf(step, sizeof step, "resize: {input: x, size: [%d, %d], output: y}", oh, ow);
    celer_pipeline *p = image_pipeline(dtype == CELER_UINT8 ? "UINT8" : "FP32", step);
    size_t count = (size_t)n * h * w * c;
    double *ref = malloc(count * sizeof *ref);
    void *data = malloc(count * 4);
    uint32_t seed = 77;
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        if (dtype == CELER_UINT8) ref[i] = ((uint8_t *)data)[i] = (uint8_t)(seed >> 24);
        else ref[i] = ((float *)data)[i] = (float)(seed >> 8) / (1 << 24) * 20 - 10;
    }
    celer_arena a;
    const celer_tensor *out = NULL;
    assert_int_equal(run_image(p, &a, dtype, n, h, w, c, data, &out), CELER_OK);
    expect_shape(out, dtype, n, oh, ow, c);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int k = 0; k < c; k++) {
                    size_t o = (((size_t)b * oh + y) * ow + x) * c + k;
                    double want = ref_bilinear(ref, h, w, c, oh, ow, b, y, x, k);
                    double got = dtype == CELER_UINT8 ? ((uint8_t *)out->data)[o] : ((float *)out->data)[o];
                    double tol = dtype == CELER_UINT8 ? 0.5 + 1e-3 : 1e-5 * (1 + fabs(want));
                    if (fabs(got - want) > tol)
                        print_error("%dx%d -> %dx%d at [%d,%d,%d,%d]: %g, expected %g\n", h, w, oh, ow, b, y, x, k,
                                    got, want);
                    assert_true(fabs(got - want) <= tol);
                }
    finish(&a);
    free(ref);
    free(data);
    celer_pipeline_free(p);
}

static void test_resize_reference(void **state) {
    (void)state;
    for (int u8 = 0; u8 < 2; u8++) {
        celer_dtype t = u8 ? CELER_UINT8 : CELER_FLOAT;
        check_resize(t, 2, 5, 7, 3, 11, 13); /* up */
        check_resize(t, 1, 17, 23, 3, 6, 5); /* down */
        check_resize(t, 1, 9, 4, 1, 3, 10);  /* down one axis, up the other */
        check_resize(t, 2, 1, 1, 2, 3, 2);   /* from a single pixel */
        check_resize(t, 1, 6, 6, 3, 6, 6);   /* same size */
    }
}

/* Numbers printed by PyTorch 1.13 (interpolate, bilinear, align_corners=False) and torchvision
 * 0.14 (resize of a uint8 tensor, antialias=False) on the same images as [N, C, H, W] tensors;
 * the step matches them bit for bit (the uint8 ones include exact ties: 130.5 -> 130, 167.5 ->
 * 168, and 94.49999 -> 94). */
static void test_resize_torch(void **state) {
    (void)state;
    celer_arena a;
    const celer_tensor *out = NULL;
    celer_pipeline *p = image_pipeline("FP32", "resize: {input: x, size: [5, 7], output: y}");
    float x[3 * 4 * 3];
    for (int i = 0; i < 36; i++) x[i] = (float)(i * 37 % 101) / 8 - 6;
    static const float up[105] = {
        -6.0f, -1.375f, 3.25f, -5.55357122f, -0.928571343f, 3.69642854f, -4.83928585f, -0.214285672f, 4.41071463f,
        -4.125f, 0.500000119f, 5.125f, -3.41071415f, 1.21428585f, 4.93749905f, -2.6964283f, 1.92857158f,
        -1.56250191f, -2.25f, 2.375f, -5.625f, -3.99999976f, 0.625000238f, 0.199999765f, -3.55357099f,
        1.07142878f, 0.646428347f, -2.83928561f, 1.78571439f, 1.3607142f, -2.12499976f, 2.50000024f, 2.07499981f,
        -1.41071391f, 2.85357118f, 2.24821353f, -0.69642812f, 0.682142019f, -1.36607242f, -0.249999776f,
        -0.67500025f, -3.62499976f, -0.999999702f, 3.62499952f, -4.37499952f, -0.553571045f, 4.07142782f,
        -3.92857099f, 0.160714626f, 4.78571367f, -3.21428537f, 0.875000417f, 5.49999952f, -2.49999952f,
        1.58928609f, 5.31249857f, -1.78571391f, 2.30357146f, -1.18750203f, -1.07142806f, 2.74999952f,
        -5.24999952f, -0.624999702f, 2.00000048f, -0.950000644f, -1.37499952f, 2.44642901f, -0.503572047f,
        -0.928570986f, 3.16071463f, 0.210713699f, -0.214285314f, 3.87500048f, 0.924999595f, 0.500000656f,
        4.04821396f, 1.27857053f, 1.21428633f, 0.433927208f, -0.89285779f, 1.92857218f, -1.82500064f,
        -2.24999952f, 2.37500048f, 4.0f, -4.0f, 0.625f, 4.4464283f, -3.55357122f, 1.07142854f, 5.16071415f,
        -2.83928561f, 1.78571427f, 5.875f, -2.12499976f, 2.50000024f, 5.68749905f, -1.41071415f, 3.21428585f,
        -0.812502027f, -0.696428359f, 3.9285717f, -4.875f, -0.25f, 4.375f};
    assert_int_equal(run_image(p, &a, CELER_FLOAT, 1, 3, 4, 3, x, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 1, 5, 7, 3);
    for (int i = 0; i < 105; i++) {
        if (((float *)out->data)[i] != up[i]) print_error("up %d: %.9g, torch %.9g\n", i, ((float *)out->data)[i], up[i]);
        assert_true(((float *)out->data)[i] == up[i]);
    }
    finish(&a);
    celer_pipeline_free(p);

    p = image_pipeline("FP32", "resize: {input: x, size: [3, 2], output: y}");
    float y[7 * 5 * 2];
    for (int i = 0; i < 70; i++) y[i] = (float)(i * 53 % 97) / 4;
    static const float down[12] = {9.18749905f, 6.27083397f, 14.812499f, 11.895834f, 11.1875f,    6.25000048f,
                                   16.8124981f, 5.81250191f, 13.1874981f, 18.3541698f, 10.7291689f, 7.81249762f};
    assert_int_equal(run_image(p, &a, CELER_FLOAT, 1, 7, 5, 2, y, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 1, 3, 2, 2);
    for (int i = 0; i < 12; i++) assert_true(((float *)out->data)[i] == down[i]);
    finish(&a);
    celer_pipeline_free(p);

    uint8_t u[6 * 8 * 3];
    for (int i = 0; i < 144; i++) u[i] = (uint8_t)(i * 37 % 256);
    p = image_pipeline("UINT8", "resize: {input: x, size: [4, 5], output: y}");
    static const uint8_t u_down[60] = {63,  81,  118, 183, 41,  78,  130, 168, 76,  78,  115, 152, 63,  100, 137,
                                       186, 69,  106, 171, 202, 66,  119, 156, 160, 66,  103, 140, 186, 88,  125,
                                       148, 140, 120, 108, 145, 105, 106, 144, 180, 105, 142, 179, 110, 102, 139,
                                       136, 128, 108, 96,  133, 93,  94,  131, 168, 112, 130, 167, 155, 90,  127};
    assert_int_equal(run_image(p, &a, CELER_UINT8, 1, 6, 8, 3, u, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 4, 5, 3);
    assert_memory_equal(out->data, u_down, 60);
    finish(&a);
    celer_pipeline_free(p);
    p = image_pipeline("UINT8", "resize: {input: x, size: [9, 11], output: y}");
    static const uint8_t u_up[33] = {0,   37,  74,  66, 103, 140, 146, 102, 139, 215, 8,   45,  110, 89, 126, 133, 170,
                                     78,  155, 192, 31, 50,  87,  112, 119, 156, 193, 95,  132, 169, 9,  46,  83};
    assert_int_equal(run_image(p, &a, CELER_UINT8, 1, 6, 8, 3, u, &out), CELER_OK);
    expect_shape(out, CELER_UINT8, 1, 9, 11, 3);
    assert_memory_equal(out->data, u_up, 33);
    finish(&a);
    celer_pipeline_free(p);
}

static void test_shorter_side(void **state) {
    (void)state;
    celer_arena a;
    const celer_tensor *out = NULL;
    static uint8_t data[1000 * 3];
    /* torchvision: [7, 3] -> 2 gives [4, 2]; [10, 20] -> 5 gives [5, 10]; [333, 500] -> 224 gives [224, 336] */
    static const int cases[][5] = {{7, 3, 2, 4, 2}, {10, 20, 5, 5, 10}, {20, 20, 8, 8, 8}, {30, 33, 224, 224, 246}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        char step[128];
        snprintf(step, sizeof step, "resize: {input: x, shorter_side: %d, output: y}", cases[i][2]);
        celer_pipeline *p = image_pipeline("UINT8", step);
        assert_int_equal(run_image(p, &a, CELER_UINT8, 1, cases[i][0], cases[i][1], 3, data, &out), CELER_OK);
        expect_shape(out, CELER_UINT8, 1, cases[i][3], cases[i][4], 3);
        finish(&a);
        celer_pipeline_free(p);
    }
    /* values: the same as resizing to the computed size */
    check_resize(CELER_FLOAT, 1, 7, 3, 2, 4, 2);
    celer_pipeline *p = image_pipeline("FP32", "resize: {input: x, shorter_side: 224, output: y}");
    static float big[333 * 500];
    assert_int_equal(run_image(p, &a, CELER_FLOAT, 1, 333, 500, 1, big, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 1, 224, 336, 1);
    finish(&a);
    celer_pipeline_free(p);

    /* a long thin image: the longer side would pass the cap */
    p = image_pipeline("UINT8", "resize: {input: x, shorter_side: 8192, output: y}");
    expect_error(run_image(p, &a, CELER_UINT8, 1, 1, 10, 3, data, &out), CELER_ERR_LIMIT, "at most 8192 a side");
    assert_true(a.total < ((size_t)1 << 20));
    finish(&a);
    celer_pipeline_free(p);
}

static void test_resize_errors(void **state) {
    (void)state;
    celer_arena a;
    const celer_tensor *out = NULL;
    celer_pipeline *p = load("inputs:\n"
                             "  - {name: x, dtype: INT64, shape: [-1, -1, -1]}\n"
                             "outputs: [y]\n"
                             "steps:\n"
                             "  - resize: {input: x, size: [2, 2], output: y}\n");
    int64_t d[12] = {0};
    expect_error(run_image(p, &a, CELER_INT64, 1, 2, 2, 3, d, &out), CELER_ERR_DTYPE, "'x' must be UINT8 or FP32, got int64");
    finish(&a);
    celer_pipeline_free(p);
    p = image_pipeline("FP32", "resize: {input: x, size: [2, 2], output: y}");
    float f[12] = {0};
    expect_error(run_image(p, &a, CELER_FLOAT, 1, 0, 2, 3, f, &out), CELER_ERR_SHAPE, "no pixels");
    finish(&a);
    celer_pipeline_free(p);
    /* rank 2 into resize */
    p = load("inputs:\n"
             "  - {name: x, dtype: FP32, shape: [-1]}\n"
             "outputs: [y]\n"
             "steps:\n"
             "  - resize: {input: x, size: [2, 2], output: y}\n");
    celer_arena_init(&a, 1 << 16, 0);
    celer_tensor in = {CELER_FLOAT, {2, {1, 12}}, f};
    expect_error(run(p, &a, &in, &out), CELER_ERR_SHAPE, "[N, H, W, C] (rank 4), got shape [1,12]");
    finish(&a);
    celer_pipeline_free(p);
}

/* ---- center_crop, to_chw ---- */

static void test_center_crop(void **state) {
    (void)state;
    celer_arena a;
    const celer_tensor *out = NULL;
    /* torchvision's offsets round half to even: (7-4)/2 = 1.5 -> 2, (8-3)/2 = 2.5 -> 2, (9-4)/2 = 2.5
     * -> 2, (10-3)/2 = 3.5 -> 4, (7-6)/2 = 0.5 -> 0, (8-5)/2 = 1.5 -> 2 */
    static const int cases[][6] = {{7, 8, 4, 3, 2, 2}, {9, 10, 4, 3, 2, 4}, {7, 8, 6, 5, 0, 2}, {5, 5, 5, 5, 0, 0},
                                   {6, 6, 2, 2, 2, 2}};
    float img[2 * 10 * 10 * 2];
    for (int i = 0; i < (int)CELER_ARRAY_LEN(img); i++) img[i] = (float)i;
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        int H = cases[i][0], W = cases[i][1], h = cases[i][2], w = cases[i][3], top = cases[i][4], left = cases[i][5];
        char step[128];
        snprintf(step, sizeof step, "center_crop: {input: x, size: [%d, %d], output: y}", h, w);
        celer_pipeline *p = image_pipeline("FP32", step);
        assert_int_equal(run_image(p, &a, CELER_FLOAT, 2, H, W, 2, img, &out), CELER_OK);
        expect_shape(out, CELER_FLOAT, 2, h, w, 2);
        const float *o = out->data;
        for (int b = 0; b < 2; b++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int k = 0; k < 2; k++)
                        assert_float_equal(o[((b * h + y) * w + x) * 2 + k],
                                           img[((b * H + y + top) * W + x + left) * 2 + k], 0);
        finish(&a);
        celer_pipeline_free(p);
    }
    /* uint8 too, and a crop larger than the image */
    celer_pipeline *p = image_pipeline("UINT8", "center_crop: {input: x, size: [3, 3], output: y}");
    uint8_t u[5 * 4 * 1];
    for (int i = 0; i < 20; i++) u[i] = (uint8_t)i;
    assert_int_equal(run_image(p, &a, CELER_UINT8, 1, 5, 4, 1, u, &out), CELER_OK);
    /* (5-3)/2 = 1 -> top 1; (4-3)/2 = 0.5 -> left 0 */
    static const uint8_t want[9] = {4, 5, 6, 8, 9, 10, 12, 13, 14};
    assert_memory_equal(out->data, want, 9);
    finish(&a);
    expect_error(run_image(p, &a, CELER_UINT8, 1, 2, 4, 1, u, &out), CELER_ERR_SHAPE,
                 "crop 3x3 (height x width) is larger than the image, 2x4");
    finish(&a);
    celer_pipeline_free(p);
}

static void test_to_chw(void **state) {
    (void)state;
    celer_arena a;
    const celer_tensor *out = NULL;
    celer_pipeline *p = image_pipeline("UINT8", "to_chw: {input: x, output: y}");
    uint8_t u[2 * 3 * 4 * 3];
    for (int i = 0; i < (int)sizeof u; i++) u[i] = (uint8_t)(i * 7);
    assert_int_equal(run_image(p, &a, CELER_UINT8, 2, 3, 4, 3, u, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 2, 3, 3, 4);
    const float *o = out->data;
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 4; x++)
                    assert_float_equal(o[((b * 3 + k) * 3 + y) * 4 + x], u[((b * 3 + y) * 4 + x) * 3 + k], 0);
    finish(&a);
    celer_pipeline_free(p);

    /* other dtypes through pl_get; the short form `to_chw: x` replaces x */
    double d[1 * 2 * 2 * 2] = {1.5, -2, 3, 4, 5, 6, 7, 8};
    celer_arena_init(&a, 1 << 16, 0);
    celer_tensor in = {CELER_DOUBLE, {4, {1, 2, 2, 2}}, d};
    p = load("inputs:\n"
             "  - {name: x, dtype: FP64, shape: [-1, -1, -1]}\n"
             "outputs: [x]\n"
             "steps:\n"
             "  - to_chw: x\n");
    assert_int_equal(run(p, &a, &in, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 1, 2, 2, 2);
    static const float want[8] = {1.5f, 3, 5, 7, -2, 4, 6, 8};
    assert_memory_equal(out->data, want, sizeof want);
    finish(&a);
    celer_pipeline_free(p);
}

/* decode -> resize -> crop -> to_chw, the usual classifier preprocessing */
static void test_chain(void **state) {
    (void)state;
    celer_pipeline *p = load("inputs:\n"
                             "  - {name: image, dtype: BYTES}\n"
                             "outputs: [image]\n"
                             "steps:\n"
                             "  - decode_image: {input: image}\n"
                             "  - resize: {input: image, shorter_side: 12}\n"
                             "  - center_crop: {input: image, size: [10, 10]}\n"
                             "  - to_chw: image\n");
    uint8_t *px = pattern(30, 20, 3, true, 4);
    size_t len;
    uint8_t *png = tu_png(30, 20, PNG_FORMAT_RGB, px, &len);
    char *b = base64(png, len, "data:image/png;base64,", 0, true);
    const void *e[] = {b};
    celer_arena a;
    const celer_tensor *out = NULL;
    assert_int_equal(decode(p, &a, 1, e, NULL, &out), CELER_OK);
    expect_shape(out, CELER_FLOAT, 1, 3, 10, 10);
    /* pixel (0,0) of channel 1: resized 20x30 -> 12x18, crop offsets (1, 4) */
    double ref[30 * 20 * 3];
    for (int i = 0; i < 30 * 20 * 3; i++) ref[i] = px[i];
    double want = nearbyint(ref_bilinear(ref, 20, 30, 3, 12, 18, 0, 1, 4, 1));
    assert_true(fabs(((float *)out->data)[100] - want) <= 1);
    finish(&a);
    free(px), free(png), free(b);
    celer_pipeline_free(p);
}

/* ---- load-time errors ---- */

static void expect_load_error(const char *yaml, const char *text) {
    celer_pipeline *p = NULL;
    celer_status st = celer_pipeline_parse(yaml, strlen(yaml), "test.yaml", ".", &p);
    expect_error(st, CELER_ERR_INVALID, text);
    assert_null(p);
}

static void test_bad_configs(void **state) {
    (void)state;
#define HEAD "inputs:\n  - {name: x, dtype: BYTES}\noutputs: [y]\nsteps:\n"
    expect_load_error(HEAD "  - decode_image: {input: x, chanels: 3, output: y}\n", "test.yaml:5:");
    expect_load_error(HEAD "  - decode_image: {input: x, chanels: 3, output: y}\n", "unknown argument 'chanels'");
    expect_load_error(HEAD "  - decode_image: {input: x, channels: 2, output: y}\n", "test.yaml:5:");
    expect_load_error(HEAD "  - decode_image: {input: x, channels: 2, output: y}\n", "1 (grayscale) or 3 (RGB), got 2");
    expect_load_error(HEAD "  - decode_image: {input: x, channels: rgb, output: y}\n", "'channels'");
    expect_load_error(HEAD "  - decode_image: {input: nope, output: y}\n", "unknown tensor 'nope'");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [4, 4], shorter_side: 3, output: y}\n",
                      "test.yaml:6:");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [4, 4], shorter_side: 3, output: y}\n",
                      "exactly one of");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, output: y}\n", "exactly one of");
    expect_load_error(HEAD "  - decode_image: {input: x}\n"
                           "  - resize:\n"
                           "      input: x\n"
                           "      size: [4]\n"
                           "      output: y\n",
                      "test.yaml:8:");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [4], output: y}\n",
                      "'size' must be [height, width]");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: 4, output: y}\n",
                      "'size' must be [height, width]");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [4, 2.5], output: y}\n",
                      "width 2.5 must be an integer from 1 to 8192");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [0, 4], output: y}\n",
                      "height 0 must be");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, size: [10000, 4], output: y}\n",
                      "from 1 to 8192");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - resize: {input: x, shorter_side: 0, output: y}\n",
                      "'shorter_side' must be an integer from 1 to 8192");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - center_crop: {input: x, output: y}\n",
                      "test.yaml:6:");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - center_crop: {input: x, output: y}\n", "missing argument 'size'");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - center_crop: {input: x, size: [3, 3, 3], output: y}\n",
                      "'size' must be [height, width]");
    expect_load_error(HEAD "  - decode_image: {input: x}\n  - to_chw: {input: x, output: y, scale: 255}\n",
                      "unknown argument 'scale'");
#undef HEAD
}

/* ---- the image memory budget ---- */

#define MIB ((size_t)1 << 20)

/* Decodes one image into a[i]'s run; the run stays open (its output is the decoded image). */
static celer_status decode_open(const celer_pipeline *p, celer_arena *a, celer_pipeline_run **r, const void *img,
                                size_t len) {
    const void *e[] = {img};
    const celer_tensor *out;
    celer_status st = decode(p, a, 1, e, &len, &out);
    *r = last_run;
    last_run = NULL;
    return st;
}

static void end_run(celer_arena *a, celer_pipeline_run *r) {
    celer_pipeline_run_end(r);
    celer_arena_free(a);
}

static void test_budget(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    celer_arena a, b;
    celer_pipeline_run *ra, *rb;
    /* 512 x 512 RGB: 0.75 MiB decoded; 1024 x 512: 1.5 MiB */
    uint8_t *px = pattern(1024, 512, 4, false, 0);
    size_t len, big_len, rgba_len, jl, pjl;
    uint8_t *png = tu_png(512, 512, PNG_FORMAT_RGB, px, &len);
    uint8_t *big = tu_png(1024, 512, PNG_FORMAT_RGB, px, &big_len);
    uint8_t *rgba = tu_png(512, 512, PNG_FORMAT_RGBA, px, &rgba_len);
    uint8_t *jpg = make_jpeg(512, 512, 3, px, false, &jl), *pjpg = make_jpeg(512, 512, 3, px, true, &pjl);
    celer_pipeline_set_image_budget(MIB);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);

    /* A holds 0.75 MiB until its run ends (the decoded image is its output) */
    assert_int_equal(decode_open(p, &a, &ra, png, len), CELER_OK);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 512 * 512 * 3);
    /* B needs as much: the budget is busy, 503 to retry, and B holds nothing */
    celer_status st = decode_open(p, &b, &rb, png, len);
    expect_error(st, CELER_ERR_UNAVAILABLE, "'img' needs 0.8 MiB of image memory; other requests hold 0.8 MiB of the 1.0 MiB budget: retry later");
    assert_int_equal(celer_status_http(st), 503);
    assert_true(celer_status_retryable(st));
    end_run(&b, rb);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 512 * 512 * 3);
    /* an image that alone needs more than the whole budget is the client's: 413, even while A holds it */
    st = decode_open(p, &b, &rb, big, big_len);
    expect_error(st, CELER_ERR_LIMIT, "1 image of 1024x512 (width x height) need 1.5 MiB to decode (1.5 MiB of "
                                      "pixels), more than the server's image memory budget of 1.0 MiB");
    assert_int_equal(celer_status_http(st), 413);
    assert_false(celer_status_retryable(st));
    assert_true(b.total < MIB / 4);
    end_run(&b, rb);
    /* A ends: B gets it */
    end_run(&a, ra);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);
    assert_int_equal(decode_open(p, &b, &rb, png, len), CELER_OK);
    end_run(&b, rb);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);

    /* the decoders' working memory counts too: an RGBA PNG's conversion buffer (1 MiB), a
     * progressive JPEG's coefficients (3 x 64 x 64 blocks of 128 bytes: 1.5 MiB); a baseline
     * JPEG of the same size decodes a row of blocks at a time */
    st = decode_open(p, &b, &rb, rgba, rgba_len);
    expect_error(st, CELER_ERR_LIMIT, "need 1.8 MiB to decode (0.8 MiB of pixels and a conversion buffer)");
    end_run(&b, rb);
    st = decode_open(p, &b, &rb, pjpg, pjl);
    expect_error(st, CELER_ERR_LIMIT, "need 2.2 MiB to decode (0.8 MiB of pixels and a progressive JPEG's coefficients)");
    end_run(&b, rb);
    assert_int_equal(decode_open(p, &b, &rb, jpg, jl), CELER_OK);
    end_run(&b, rb);
    /* with room, they decode and give everything back */
    celer_pipeline_set_image_budget(3 * MIB);
    assert_int_equal(decode_open(p, &b, &rb, rgba, rgba_len), CELER_OK);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 512 * 512 * 3);
    end_run(&b, rb);
    assert_int_equal(decode_open(p, &b, &rb, pjpg, pjl), CELER_OK);
    end_run(&b, rb);
    /* no budget: counted, never refused */
    celer_pipeline_set_image_budget(0);
    assert_int_equal(decode_open(p, &b, &rb, big, big_len), CELER_OK);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 1024 * 512 * 3);
    end_run(&b, rb);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);

    celer_pipeline_set_image_budget(CELER_PIPELINE_IMAGE_BUDGET_DEFAULT);
    free(px), free(png), free(big), free(rgba), free(jpg), free(pjpg);
    celer_pipeline_free(p);
}

/* A decode is freed after the last step that reads it, not at the end of the request: a resize
 * before a model call leaves nothing held while the call waits; a failing step frees it. */
static void test_budget_early_release(void **state) {
    (void)state;
    uint8_t *px = pattern(64, 48, 3, false, 0);
    size_t len;
    uint8_t *png = tu_png(64, 48, PNG_FORMAT_RGB, px, &len);
    celer_str e[] = {{(const char *)png, len}};
    celer_tensor in = {CELER_STRING, {1, {1}}, e};
    static const char *const yaml[] = {
        /* resized before the call: nothing held at the call */
        "inputs: [{name: img, dtype: BYTES}]\noutputs: [y]\nsteps:\n"
        "  - decode_image: {input: img, output: pixels}\n"
        "  - resize: {input: pixels, size: [8, 8], output: small}\n"
        "  - model: {name: m, inputs: {a: small}, outputs: {b: y}}\n",
        /* the decode goes to the model: held until the run ends */
        "inputs: [{name: img, dtype: BYTES}]\noutputs: [y]\nsteps:\n"
        "  - decode_image: {input: img, output: pixels}\n"
        "  - model: {name: m, inputs: {a: pixels}, outputs: {b: y}}\n",
        /* the resize replaces the name: the decode is unreachable after it */
        "inputs: [{name: img, dtype: BYTES}]\noutputs: [y]\nsteps:\n"
        "  - decode_image: img\n"
        "  - resize: {input: img, shorter_side: 4}\n"
        "  - model: {name: m, inputs: {a: img}, outputs: {b: y}}\n",
    };
    static const size_t held[] = {0, 64 * 48 * 3, 0};
    for (int k = 0; k < 3; k++) {
        celer_pipeline *p = load(yaml[k]);
        celer_arena a;
        celer_arena_init(&a, 1 << 16, 0);
        celer_pipeline_run *r;
        const celer_pipeline_call *call = NULL;
        assert_int_equal(celer_pipeline_run_init(p, &a, &r), CELER_OK);
        assert_int_equal(celer_pipeline_set_input(r, 0, &in), CELER_OK);
        assert_int_equal(celer_pipeline_run_steps(r, &call), CELER_OK);
        assert_non_null(call);
        assert_string_equal(call->model, "m");
        assert_int_equal(celer_pipeline_image_bytes_in_use(), held[k]);
        if (k == 1) assert_memory_equal(call->inputs[0].data, px, 64 * 48 * 3);
        /* abandoned while the call is pending (a failed model, a cancelled request) */
        celer_pipeline_run_end(r);
        celer_pipeline_run_end(r); /* twice is fine */
        assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);
        celer_arena_free(&a);
        celer_pipeline_free(p);
    }

    /* a step failing after the decode ends the run and frees it */
    celer_pipeline *p = load("inputs: [{name: img, dtype: BYTES}]\noutputs: [y]\nsteps:\n"
                             "  - decode_image: img\n"
                             "  - center_crop: {input: img, size: [100, 100], output: y}\n");
    celer_arena a;
    celer_arena_init(&a, 1 << 16, 0);
    const celer_tensor *out;
    expect_error(run(p, &a, &in, &out), CELER_ERR_SHAPE, "larger than the image");
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);
    finish(&a);
    celer_pipeline_free(p);
    free(px), free(png);
}

/* Requests decoding at once from several threads never hold more than the budget together: each
 * succeeds or is told to retry. */
typedef struct budget_job {
    const celer_pipeline *p;
    const void *img;
    size_t len;
    int ok, busy, bad;
} budget_job;

static atomic_int holding, most_holding;
static const size_t budget_image = 64 * 64 * 3;

static void *budget_loop(void *arg) {
    budget_job *j = arg;
    for (int i = 0; i < 60; i++) {
        celer_arena a;
        celer_pipeline_run *r;
        celer_status st = decode_open(j->p, &a, &r, j->img, j->len);
        if (!st) {
            int h = atomic_fetch_add(&holding, 1) + 1, m = atomic_load(&most_holding);
            while (h > m && !atomic_compare_exchange_weak(&most_holding, &m, h)) {
            }
            if (celer_pipeline_image_bytes_in_use() > budget_image * 5 / 2) j->bad++;
            for (int y = 0; y < 20; y++) sched_yield(); /* hold it a little */
            atomic_fetch_sub(&holding, 1);
            j->ok++;
        } else if (st == CELER_ERR_UNAVAILABLE) {
            j->busy++;
        } else {
            j->bad++;
        }
        end_run(&a, r);
    }
    return NULL;
}

static void test_budget_threads(void **state) {
    (void)state;
    celer_pipeline *p = decode_pipeline(3);
    uint8_t *px = pattern(64, 64, 3, true, 8);
    size_t len;
    uint8_t *png = tu_png(64, 64, PNG_FORMAT_RGB, px, &len);
    celer_pipeline_set_image_budget(budget_image * 5 / 2); /* room for two */
    enum { T = 4 };
    pthread_t th[T];
    budget_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (budget_job){.p = p, .img = png, .len = len};
        assert_int_equal(pthread_create(&th[t], NULL, budget_loop, &jobs[t]), 0);
    }
    int ok = 0, busy = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].bad, 0);
        ok += jobs[t].ok;
        busy += jobs[t].busy;
    }
    assert_int_equal(ok + busy, T * 60);
    assert_true(ok > 0);
    assert_true(atomic_load(&most_holding) <= 2);
    assert_int_equal(celer_pipeline_image_bytes_in_use(), 0);
    celer_pipeline_set_image_budget(CELER_PIPELINE_IMAGE_BUDGET_DEFAULT);
    free(px), free(png);
    celer_pipeline_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_bad_images),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_decode_dtype),
        cmocka_unit_test(test_resize_reference),
        cmocka_unit_test(test_resize_torch),
        cmocka_unit_test(test_shorter_side),
        cmocka_unit_test(test_resize_errors),
        cmocka_unit_test(test_center_crop),
        cmocka_unit_test(test_to_chw),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_budget_early_release),
        cmocka_unit_test(test_budget_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
