/* ImageDecoder 20 beyond the conformance cases (tests/conformance/opset/cases_imagedecoder.py,
 * exact against the ONNX reference): the three pixel formats agree with each other on a real
 * photo (BGR is RGB reversed, Grayscale PIL's weights of RGB), and what celer refuses is refused
 * with a message that names it: formats other than JPEG / PNG (at run time, since only the bytes
 * tell), a pixel_format it does not know (at load), truncated files, wrong input types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"
#include "testutil.h"

/* The bytes of tests/data/<rel> (malloc'd, caller frees). */
static uint8_t *read_data(const char *rel, size_t *n) {
    const char *dir = getenv("CELER_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/data", rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* out[0].data is NULL unless the op allocated it (also when it failed in run: free it). */
static celer_status decode(const uint8_t *p, size_t n, const char *format, celer_tensor *out) {
    memset(out, 0, sizeof *out);
    celer_tensor x = {.dtype = CELER_UINT8, .shape = {1, {(int64_t)n}}, .data = (void *)p};
    celer_onnx_attr a = {.name = "pixel_format", .type = CELER_ATTR_STRING, .s = format, .s_len = strlen(format)};
    return tu_run("ImageDecoder", 20, format[0] ? &a : NULL, format[0] ? 1 : 0, IN(&x), out, 1);
}

/* A decode that fails with `want` and a message containing `substr`. */
static void expect_refused(const uint8_t *p, size_t n, const char *format, celer_status want, const char *substr) {
    celer_tensor out[1];
    tu_expect_err(decode(p, n, format, out), want, substr);
    tu_free_outputs(out, 1);
}

static void check_formats_agree(const char *file, int64_t h, int64_t w) {
    size_t n;
    uint8_t *p = read_data(file, &n);
    celer_tensor rgb[1], def[1], bgr[1], gray[1];
    assert_int_equal(decode(p, n, "RGB", rgb), CELER_OK);
    assert_int_equal(decode(p, n, "", def), CELER_OK);
    assert_int_equal(decode(p, n, "BGR", bgr), CELER_OK);
    assert_int_equal(decode(p, n, "Grayscale", gray), CELER_OK);
    EXPECT_SHAPE(&rgb[0], h, w, 3);
    EXPECT_SHAPE(&bgr[0], h, w, 3);
    EXPECT_SHAPE(&gray[0], h, w, 1);
    tu_check_data(&def[0], rgb[0].data, (size_t)(h * w * 3));
    const uint8_t *r = rgb[0].data, *b = bgr[0].data, *g = gray[0].data;
    int distinct = 0;
    for (int64_t k = 0; k < h * w; k++) {
        for (int c = 0; c < 3; c++) assert_int_equal(b[3 * k + c], r[3 * k + 2 - c]);
        unsigned want = (r[3 * k] * 19595u + r[3 * k + 1] * 38470u + r[3 * k + 2] * 7471u + 0x8000u) >> 16;
        assert_int_equal(g[k], want);
        distinct += r[3 * k] != r[3 * k + 2];
    }
    assert_true(distinct > h * w / 4); /* a colour photo: the channel order is seen */
    tu_free_outputs(rgb, 1);
    tu_free_outputs(def, 1);
    tu_free_outputs(bgr, 1);
    tu_free_outputs(gray, 1);
    free(p);
}

static void test_pixel_formats(void **unused) {
    (void)unused;
    check_formats_agree("pipeline/cat.png", 80, 100);
    check_formats_agree("pipeline/cat.jpg", 80, 100);
}

/* JPEG and PNG decode to the same picture within JPEG's loss. */
static void test_jpeg_close_to_png(void **unused) {
    (void)unused;
    size_t np, nj;
    uint8_t *png = read_data("pipeline/cat.png", &np), *jpg = read_data("pipeline/cat.jpg", &nj);
    celer_tensor a[1], b[1];
    assert_int_equal(decode(png, np, "RGB", a), CELER_OK);
    assert_int_equal(decode(jpg, nj, "RGB", b), CELER_OK);
    double sum = 0;
    const uint8_t *x = a[0].data, *y = b[0].data;
    for (int64_t k = 0; k < 80 * 100 * 3; k++) sum += abs((int)x[k] - (int)y[k]);
    assert_true(sum / (80 * 100 * 3) < 8);
    tu_free_outputs(a, 1);
    tu_free_outputs(b, 1);
    free(png);
    free(jpg);
}

static void test_refused_formats(void **unused) {
    (void)unused;
    static const struct {
        const char *bytes;
        size_t n;
        const char *name;
    } cases[] = {
        {"BM\x46\0\0\0\0\0\0\0\x36\0\0\0", 14, "holds a BMP image"},
        {"RIFF\x24\0\0\0WEBPVP8 ", 16, "holds a WebP image"},
        {"II*\0\x08\0\0\0", 8, "holds a TIFF image"},
        {"MM\0*\0\0\0\x08", 8, "holds a TIFF image"},
        {"GIF89a\x01\0\x01\0", 10, "holds a GIF image"},
        {"P6\n1 1\n255\n\0\0\0", 14, "holds a PNM image"},
        {"\0\0\0\x0cjP  \r\n\x87\n", 12, "holds a JPEG 2000 image"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        expect_refused((const uint8_t *)cases[i].bytes, cases[i].n, "RGB", CELER_ERR_UNSUPPORTED,
                      cases[i].name);
        expect_refused((const uint8_t *)cases[i].bytes, cases[i].n, "RGB", CELER_ERR_UNSUPPORTED,
                      "decodes JPEG and PNG only");
    }
    expect_refused((const uint8_t *)"hello", 5, "RGB", CELER_ERR_INVALID,
                  "(5 bytes, starting 68 65 6c 6c 6f) is not a JPEG or PNG file");
    expect_refused((const uint8_t *)"", 0, "RGB", CELER_ERR_INVALID, "(0 bytes, starting with nothing)");
    /* "P" alone, or followed by something else than a PNM digit, is just not an image */
    expect_refused((const uint8_t *)"PK\x03\x04", 4, "RGB", CELER_ERR_INVALID, "is not a JPEG or PNG");
}

static void test_bad_files_and_inputs(void **unused) {
    (void)unused;
    size_t n;
    uint8_t *p = read_data("pipeline/cat.png", &n);
    celer_tensor out[1];
    /* cut inside the pixel data: the header reads, the decode fails */
    expect_refused(p, n / 2, "RGB", CELER_ERR_INVALID, "bad PNG");
    expect_refused(p, 20, "Grayscale", CELER_ERR_INVALID, "ImageDecoder 'n'");
    expect_refused(p, n, "YUV", CELER_ERR_UNSUPPORTED, "pixel_format 'YUV' is not supported");
    expect_refused(p, n, "rgb", CELER_ERR_UNSUPPORTED, "pixel_format 'rgb'");
    celer_tensor x2 = TEN(CELER_UINT8, p, 2, (int64_t)n / 2);
    tu_expect_err(tu_run("ImageDecoder", 20, NOAT, IN(&x2), out, 1), CELER_ERR_SHAPE, "must be 1-D uint8");
    free(p);
    uint8_t *j = read_data("pipeline/cat.jpg", &n);
    expect_refused(j, n / 3, "BGR", CELER_ERR_INVALID, "bad JPEG");
    free(j);
    /* only uint8 bytes, and not before opset 20 */
    celer_tensor f = TEN(CELER_FLOAT, F32(1, 2), 2);
    tu_expect_err(tu_run("ImageDecoder", 20, NOAT, IN(&f), out, 1), CELER_ERR_UNSUPPORTED, "ImageDecoder");
    celer_tensor u = TEN(CELER_UINT8, "\x89PNG", 4);
    tu_expect_err(tu_run("ImageDecoder", 19, NOAT, IN(&u), out, 1), CELER_ERR_UNSUPPORTED, "ImageDecoder");
    static const tu_fuzz_case fz[] = {{"ImageDecoder", 20, 1, 1}};
    tu_fuzz_ops(fz, 1, 500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixel_formats),
        cmocka_unit_test(test_jpeg_close_to_png),
        cmocka_unit_test(test_refused_formats),
        cmocka_unit_test(test_bad_files_and_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
