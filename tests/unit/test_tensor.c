/* Unit tests of the tensor module: dtype table, shapes, half/bfloat16 conversions and .npy I/O.
 * The numpy-made fixtures are in $CELER_TEST_DATA/npy (regenerate with tests/data/npy/make.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* ---- dtype table and shapes ---- */

static void test_dtype_table(void **state) {
    (void)state;
    static const struct {
        celer_dtype t;
        size_t size;
        const char *name;
    } want[] = {
        {CELER_FLOAT, 4, "float"},        {CELER_UINT8, 1, "uint8"},        {CELER_INT8, 1, "int8"},
        {CELER_UINT16, 2, "uint16"},      {CELER_INT16, 2, "int16"},        {CELER_INT32, 4, "int32"},
        {CELER_INT64, 8, "int64"},        {CELER_STRING, sizeof(celer_str), "string"},
        {CELER_BOOL, 1, "bool"},          {CELER_FLOAT16, 2, "float16"},    {CELER_DOUBLE, 8, "double"},
        {CELER_UINT32, 4, "uint32"},      {CELER_UINT64, 8, "uint64"},      {CELER_COMPLEX64, 8, "complex64"},
        {CELER_COMPLEX128, 16, "complex128"}, {CELER_BFLOAT16, 2, "bfloat16"},
    };
    assert_int_equal(CELER_ARRAY_LEN(want), CELER_DTYPE_COUNT - 1);
    for (size_t i = 0; i < CELER_ARRAY_LEN(want); i++) {
        assert_int_equal(celer_dtype_size(want[i].t), want[i].size);
        assert_string_equal(celer_dtype_name(want[i].t), want[i].name);
        assert_int_equal(celer_dtype_from_name(want[i].name), want[i].t);
    }
    assert_int_equal(celer_dtype_size(CELER_UNDEFINED), 0);
    assert_int_equal(celer_dtype_size((celer_dtype)99), 0);
    assert_int_equal(celer_dtype_size((celer_dtype)-1), 0);
    assert_string_equal(celer_dtype_name((celer_dtype)99), "?");
    assert_int_equal(celer_dtype_from_name("float32"), CELER_UNDEFINED);
    assert_int_equal(celer_dtype_from_name(""), CELER_UNDEFINED);
    assert_true(CELER_DTS_ALL & CELER_DT(CELER_BFLOAT16));
    assert_false(CELER_DTS_NUMERIC & CELER_DT(CELER_BOOL));
}

static celer_shape shp(int rank, const int64_t *dims) {
    celer_shape s = {.rank = rank};
    for (int i = 0; i < rank; i++) s.dims[i] = dims[i];
    return s;
}

static void test_shape_basics(void **state) {
    (void)state;
    char buf[64];
    celer_shape s = shp(4, (int64_t[]){1, 3, 224, 224});
    assert_int_equal(celer_shape_numel(&s), 150528);
    assert_string_equal(celer_shape_str(&s, buf, sizeof buf), "[1,3,224,224]");
    celer_shape scalar = {0};
    assert_int_equal(celer_shape_numel(&scalar), 1);
    assert_string_equal(celer_shape_str(&scalar, buf, sizeof buf), "[]");
    celer_shape unk = shp(2, (int64_t[]){-1, 8});
    assert_int_equal(celer_shape_numel(&unk), -1);
    assert_string_equal(celer_shape_str(&unk, buf, sizeof buf), "[?,8]");
    celer_shape huge = shp(3, (int64_t[]){1LL << 40, 1LL << 20, 1LL << 10});
    assert_int_equal(celer_shape_numel(&huge), -1);
    celer_shape empty = shp(2, (int64_t[]){0, 5});
    assert_int_equal(celer_shape_numel(&empty), 0);
    assert_true(celer_shape_equal(&s, &s));
    assert_false(celer_shape_equal(&s, &empty));
    /* a tiny buffer is truncated, not overrun */
    char small[4] = {1, 1, 1, 1};
    celer_shape_str(&s, small, 4);
    assert_int_equal(small[3], 0);
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = s};
    size_t bytes = 0;
    assert_int_equal(celer_tensor_bytes(&t, &bytes), CELER_OK);
    assert_int_equal(bytes, 150528 * 4);
    t.shape = huge;
    assert_int_not_equal(celer_tensor_bytes(&t, &bytes), CELER_OK);
}

static void test_shape_broadcast(void **state) {
    (void)state;
    static const struct {
        int ra;
        int64_t a[4];
        int rb;
        int64_t b[4];
        int rout; /* -1: incompatible */
        int64_t out[4];
    } cases[] = {
        {2, {2, 3}, 2, {2, 3}, 2, {2, 3}},
        {2, {2, 3}, 1, {3}, 2, {2, 3}},
        {1, {3}, 2, {2, 3}, 2, {2, 3}},
        {3, {4, 1, 5}, 2, {3, 1}, 3, {4, 3, 5}},
        {0, {0}, 2, {2, 3}, 2, {2, 3}},
        {2, {0, 1}, 1, {7}, 2, {0, 7}},
        {1, {1}, 1, {0}, 1, {0}},
        {4, {8, 1, 6, 1}, 3, {7, 1, 5}, 4, {8, 7, 6, 5}},
        {2, {2, 3}, 1, {4}, -1, {0}},
        {2, {2, 1}, 2, {3, 1}, -1, {0}},
        {1, {0}, 1, {2}, -1, {0}},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        celer_shape a = shp(cases[i].ra, cases[i].a), b = shp(cases[i].rb, cases[i].b), out = {0};
        celer_status st = celer_shape_broadcast(&a, &b, &out);
        if (cases[i].rout < 0) {
            assert_int_equal(st, CELER_ERR_SHAPE);
            assert_non_null(strstr(celer_error_message(), "broadcast"));
        } else {
            celer_shape want = shp(cases[i].rout, cases[i].out);
            assert_int_equal(st, CELER_OK);
            assert_true(celer_shape_equal(&out, &want));
        }
    }
}

/* ---- half precision ---- */

/* Independent reference: the value a binary16 bit pattern denotes. */
static double half_value(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = exp == 0 ? ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY) : ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

static void test_half_all_values(void **state) {
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = celer_half_to_float(h);
        double ref = half_value(h);
        if (isnan(ref)) {
            assert_true(isnan(f));
            uint16_t back = celer_float_to_half(f);
            assert_int_equal(back & 0x7c00, 0x7c00); /* still a NaN, payload may change */
            assert_int_not_equal(back & 0x3ff, 0);
            assert_int_equal(back & 0x8000, h & 0x8000);
            continue;
        }
        if ((double)f != ref) fail_msg("half 0x%04x: got %g want %g", h, (double)f, ref);
        assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
        if (celer_float_to_half(f) != h) fail_msg("half 0x%04x does not round-trip", h);
    }
}

static void test_half_rounding(void **state) {
    (void)state;
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {65504.0f, 0x7bff},     /* largest half */
        {65519.0f, 0x7bff},     /* below the midpoint to infinity */
        {65520.0f, 0x7c00},     /* midpoint: ties to even = infinity */
        {1e6f, 0x7c00},
        {-1e6f, 0xfc00},
        {INFINITY, 0x7c00},
        {1.0f + 0x1p-11f, 0x3c00},        /* tie, rounds to even (down) */
        {1.0f + 0x3p-11f, 0x3c02},        /* tie, rounds to even (up) */
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01}, /* just above the tie */
        {0.1f, 0x2e66},
        {0x1p-24f, 0x0001},               /* smallest subnormal */
        {0x1p-25f, 0x0000},               /* tie between 0 and it: even */
        {0x3p-25f, 0x0002},               /* tie 1.5 ulp: even (2) */
        {0x1p-25f + 0x1p-35f, 0x0001},
        {0x1p-14f, 0x0400},               /* smallest normal */
        {0x1p-14f - 0x1p-25f, 0x0400},    /* 1023.5 subnormal ulps: even, carries to normal */
        {1e-10f, 0x0000},
        {-1e-10f, 0x8000},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        uint16_t h = celer_float_to_half(cases[i].f);
        if (h != cases[i].h) fail_msg("float %a -> half 0x%04x, want 0x%04x", (double)cases[i].f, h, cases[i].h);
    }
    uint16_t nan = celer_float_to_half(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_int_not_equal(nan & 0x3ff, 0);
}

static void test_bf16(void **state) {
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t b = (uint16_t)i;
        float f = celer_bf16_to_float(b);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        assert_int_equal(bits, (uint32_t)b << 16);
        if (isnan(f)) {
            assert_true(isnan(celer_bf16_to_float(celer_float_to_bf16(f))));
            continue;
        }
        if (celer_float_to_bf16(f) != b) fail_msg("bf16 0x%04x does not round-trip", b);
    }
    static const struct {
        float f;
        uint16_t b;
    } cases[] = {
        {1.0f, 0x3f80},
        {1.0f + 0x1p-8f, 0x3f80},           /* tie, even (down) */
        {1.0f + 0x3p-8f, 0x3f82},           /* tie, even (up) */
        {1.0f + 0x1p-8f + 0x1p-20f, 0x3f81},
        {-3.0f, 0xc040},
        {3.4028235e38f, 0x7f80},            /* FLT_MAX rounds up to infinity */
        {0x1p-133f, 0x0001},                /* float subnormal, exact in bf16 */
        {INFINITY, 0x7f80},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        uint16_t b = celer_float_to_bf16(cases[i].f);
        if (b != cases[i].b) fail_msg("float %a -> bf16 0x%04x, want 0x%04x", (double)cases[i].f, b, cases[i].b);
    }
    assert_true(isnan(celer_bf16_to_float(celer_float_to_bf16(NAN))));
}

/* ---- .npy ---- */

static char tmp_dir[64];

static int setup_tmp(void **state) {
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/celer_test_tensor_XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_tmp(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char path[160];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

/* Reads a whole file into malloc'ed memory (caller frees). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void roundtrip_one(celer_dtype dt, const celer_shape *shape) {
    celer_tensor t = {.dtype = dt, .shape = *shape};
    size_t bytes = 0;
    assert_int_equal(celer_tensor_bytes(&t, &bytes), CELER_OK);
    size_t n = (size_t)celer_shape_numel(shape), esize = celer_dtype_size(dt);
    unsigned char *data = malloc(bytes + 1);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        unsigned char *e = data + i * esize;
        if (dt == CELER_BOOL) {
            e[0] = (unsigned char)(i % 3 == 0);
        } else if (dt == CELER_BFLOAT16) {
            uint16_t b = celer_float_to_bf16((float)i * 0.37f - 2.0f);
            memcpy(e, &b, 2);
        } else {
            for (size_t k = 0; k < esize; k++) e[k] = (unsigned char)(i * 37 + k * 11 + 5);
        }
    }
    t.data = data;
    const char *path = tmp_path("rt.npy");
    celer_status st = celer_npy_write(path, &t);
    if (st) fail_msg("write %s: %s", celer_dtype_name(dt), celer_error_message());

    /* numpy's layout: 64-byte aligned data, newline-terminated version 1.0 header */
    size_t len;
    unsigned char *img = slurp(path, &len);
    size_t hlen = img[8] | img[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(img[6], 1);
    assert_int_equal(img[10 + hlen - 1], '\n');
    free(img);

    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor r;
    st = celer_npy_read(path, &arena, &r);
    if (st) fail_msg("read %s: %s", celer_dtype_name(dt), celer_error_message());
    assert_true(celer_shape_equal(&r.shape, shape));
    if (dt == CELER_BFLOAT16) {
        assert_int_equal(r.dtype, CELER_FLOAT); /* widened on write, see npy.c */
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, data + 2 * i, 2);
            assert_true(((float *)r.data)[i] == celer_bf16_to_float(b));
        }
    } else {
        assert_int_equal(r.dtype, dt);
        if (bytes) assert_memory_equal(r.data, data, bytes);
    }
    celer_arena_free(&arena);
    free(data);
}

static void test_npy_roundtrip_all_dtypes(void **state) {
    (void)state;
    static const int64_t d23[] = {2, 3}, d0[] = {0}, d203[] = {2, 0, 3}, d7[] = {7},
                         d8[] = {1, 2, 1, 2, 1, 2, 1, 3};
    const celer_shape shapes[] = {shp(2, d23), shp(0, NULL), shp(1, d0), shp(3, d203), shp(1, d7), shp(8, d8)};
    for (int dt = 1; dt < CELER_DTYPE_COUNT; dt++) {
        if (dt == CELER_STRING) continue;
        for (size_t s = 0; s < CELER_ARRAY_LEN(shapes); s++) roundtrip_one((celer_dtype)dt, &shapes[s]);
    }
}

static void test_npy_roundtrip_strings(void **state) {
    (void)state;
    const char *strs[] = {"plain", "", "h\xc3\xa9llo", "\xe4\xb8\xad\xe6\x96\x87", "emoji \xf0\x9f\x98\x80", NULL};
    celer_tensor t = {.dtype = CELER_STRING, .shape = {.rank = 2, .dims = {3, 2}}, .data = tu_strs(strs, 6)};
    const char *path = tmp_path("str.npy");
    assert_int_equal(celer_npy_write(path, &t), CELER_OK);
    size_t len;
    unsigned char *img = slurp(path, &len);
    img[len] = 0;
    assert_non_null(strstr((char *)img + 10, "'descr': '<U7'")); /* "emoji " + one code point */
    free(img);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor r;
    assert_int_equal(celer_npy_read(path, &arena, &r), CELER_OK);
    assert_int_equal(r.dtype, CELER_STRING);
    assert_true(celer_shape_equal(&r.shape, &t.shape));
    for (int i = 0; i < 6; i++) TU_ASSERT_STR(&r, i, celer_str_c(strs[i]));
    celer_arena_free(&arena);

    /* NULs inside an element are kept (numpy only strips trailing ones), in '<U' text ... */
    celer_str nul[] = {TU_LIT("he\0llo"), TU_LIT("\0x"), TU_LIT("")};
    celer_tensor tn = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = nul};
    assert_int_equal(celer_npy_write(path, &tn), CELER_OK);
    celer_arena_init(&arena, 0, 0);
    assert_int_equal(celer_npy_read(path, &arena, &r), CELER_OK);
    for (int i = 0; i < 3; i++) TU_ASSERT_STR(&r, i, nul[i]);
    celer_arena_free(&arena);
    /* ... and bytes that are not UTF-8 are written as a '|S' array, exactly */
    celer_str bin[] = {TU_LIT("ok"), TU_LIT("\xff\x00\xfe"), TU_LIT("\x00\x01\x02\x03")};
    celer_tensor tb = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {3}}, .data = bin};
    assert_int_equal(celer_npy_write(path, &tb), CELER_OK);
    img = slurp(path, &len);
    img[len] = 0;
    assert_non_null(strstr((char *)img + 10, "'descr': '|S4'"));
    free(img);
    celer_arena_init(&arena, 0, 0);
    assert_int_equal(celer_npy_read(path, &arena, &r), CELER_OK);
    for (int i = 0; i < 3; i++) TU_ASSERT_STR(&r, i, bin[i]);
    celer_arena_free(&arena);
    /* a trailing NUL would be dropped as padding on read: refused, naming the element */
    celer_str tail[] = {TU_LIT("a"), TU_LIT("ab\0")};
    celer_tensor tt = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {2}}, .data = tail};
    assert_int_equal(celer_npy_write(path, &tt), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "str.npy"));
    assert_non_null(strstr(celer_error_message(), "element 1"));
    /* empty string tensor */
    celer_tensor te = {.dtype = CELER_STRING, .shape = {.rank = 1, .dims = {0}}, .data = NULL};
    assert_int_equal(celer_npy_write(path, &te), CELER_OK);
    celer_arena_init(&arena, 0, 0);
    assert_int_equal(celer_npy_read(path, &arena, &r), CELER_OK);
    assert_int_equal(r.dtype, CELER_STRING);
    assert_int_equal(r.shape.rank, 1);
    assert_int_equal(r.shape.dims[0], 0);
    celer_arena_free(&arena);
}

static void test_npy_write_errors(void **state) {
    (void)state;
    float x = 1;
    celer_tensor t = {.dtype = CELER_UNDEFINED, .shape = {.rank = 1, .dims = {1}}, .data = &x};
    assert_int_not_equal(celer_npy_write(tmp_path("u.npy"), &t), CELER_OK);
    t.dtype = CELER_FLOAT;
    assert_int_equal(celer_npy_write("/nonexistent-dir/x.npy", &t), CELER_ERR_IO);
    assert_non_null(strstr(celer_error_message(), "/nonexistent-dir/x.npy"));
    t.shape.dims[0] = -1;
    assert_int_not_equal(celer_npy_write(tmp_path("u.npy"), &t), CELER_OK);
}

/* Builds a .npy image with the given header text (padding added) and `data_len` bytes of data. */
static unsigned char *make_npy(int major, const char *header, size_t data_len, size_t *len) {
    size_t prefix = major == 1 ? 10 : 12, hl = strlen(header);
    size_t total_h = prefix + hl + 1;
    size_t hlen = ((total_h + 63) & ~(size_t)63) - prefix;
    *len = prefix + hlen + data_len;
    unsigned char *b = calloc(1, *len + 1);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)hlen;
    b[9] = (unsigned char)(hlen >> 8);
    memcpy(b + prefix, header, hl);
    memset(b + prefix + hl, ' ', hlen - hl - 1);
    b[prefix + hlen - 1] = '\n';
    for (size_t i = 0; i < data_len; i++) b[prefix + hlen + i] = (unsigned char)i;
    return b;
}

static celer_status parse_header(const char *header, size_t data_len) {
    size_t len;
    unsigned char *b = make_npy(1, header, data_len, &len);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor t;
    celer_status st = celer_npy_parse(b, len, "test.npy", &arena, &t);
    celer_arena_free(&arena);
    free(b);
    return st;
}

static void test_npy_header_variants(void **state) {
    (void)state;
    /* spacing, key order, quotes and trailing commas vary; all are fine */
    static const char *good[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
        "{ \"shape\" : ( 2 , 3 , ) , 'fortran_order' : False , 'descr' : '=f4' }",
        "{'shape': (2L, 3L), 'descr': '|f4', 'fortran_order': False}",
        "{'descr': 'f4', 'fortran_order': False, 'shape': (6,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2, 1, 3, 1)}",
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(good); i++) {
        celer_status st = parse_header(good[i], 24);
        if (st) fail_msg("header %s: %s", good[i], celer_error_message());
    }
    static const struct {
        const char *header;
        size_t data_len;
        celer_status status;
        const char *msg; /* part of the message */
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False}", 24, CELER_ERR_PARSE, "missing key 'shape'"},
        {"{'descr': '<f4', 'shape': (6,)}", 24, CELER_ERR_PARSE, "fortran_order"},
        {"{'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "descr"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", 24, CELER_ERR_PARSE, "unknown key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", 24, CELER_ERR_PARSE, "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", 24, CELER_ERR_PARSE, "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", 24, CELER_ERR_PARSE, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,,)}", 24, CELER_ERR_PARSE, "dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6 3)}", 24, CELER_ERR_PARSE, "expected ','"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 24, CELER_ERR_LIMIT, "64 bits"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 24, CELER_ERR_LIMIT,
         "overflows"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}", 24, CELER_ERR_LIMIT,
         "overflows"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6)}", 24,
         CELER_ERR_UNSUPPORTED, "more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED, "Fortran"},
        {"{'descr': '<f4', 'fortran_order': Flase, 'shape': (6,)}", 24, CELER_ERR_PARSE, "True or False"},
        {"{'descr': '<f4', 'fortran_order': Falsehood, 'shape': (6,)}", 24, CELER_ERR_PARSE, "True or False"},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '>U2', 'fortran_order': False, 'shape': (3,)}", 24, CELER_ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}", 24, CELER_ERR_UNSUPPORTED, "object"},
        {"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED,
         "structured"},
        {"{'descr': '<f3', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED, "'<f3'"},
        {"{'descr': '<U0', 'fortran_order': False, 'shape': (6,)}", 0, CELER_ERR_UNSUPPORTED, "zero"},
        {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (3,)}", 24, CELER_ERR_UNSUPPORTED, "M8"},
        {"{'descr': '', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED, "dtype"},
        {"{'descr': <f4, 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "must be a string"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_UNSUPPORTED, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", 24, CELER_ERR_PARSE, "after '}'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", 24, CELER_ERR_PARSE, NULL},
        {"'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "'{'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "expected ','"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "':'"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': (6,)}", 24, CELER_ERR_PARSE, "quoted key"},
        {"", 24, CELER_ERR_PARSE, "'{'"},
        /* data length must match exactly */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 23, CELER_ERR_PARSE, "need 24"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 25, CELER_ERR_PARSE, "need 24"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 0, CELER_ERR_PARSE, "need 4"},
        {"{'descr': '<U2', 'fortran_order': False, 'shape': (3,)}", 23, CELER_ERR_PARSE, "need 24"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = parse_header(bad[i].header, bad[i].data_len);
        const char *m = celer_error_message();
        if (st != bad[i].status || !strstr(m, "test.npy") || (bad[i].msg && !strstr(m, bad[i].msg)))
            fail_msg("header %s: got status %d message '%s', want %d '%s'", bad[i].header, st, m, bad[i].status,
                     bad[i].msg ? bad[i].msg : "");
    }
}

static void test_npy_truncated_and_garbage(void **state) {
    (void)state;
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16, &len);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor t;
    assert_int_equal(celer_npy_parse(b, len, "t.npy", &arena, &t), CELER_OK);
    /* every proper prefix fails cleanly */
    for (size_t n = 0; n < len; n++) {
        celer_status st = celer_npy_parse(b, n, "t.npy", &arena, &t);
        if (st == CELER_OK) fail_msg("prefix of %zu bytes parsed", n);
        assert_non_null(strstr(celer_error_message(), "t.npy"));
    }
    /* bad magic, versions, header lengths */
    unsigned char *c = malloc(len);
    assert_non_null(c);
    static const struct {
        size_t at;
        unsigned char value;
        celer_status status;
    } flips[] = {
        {0, 0x92, CELER_ERR_PARSE},       {3, 'n', CELER_ERR_PARSE},
        {6, 4, CELER_ERR_UNSUPPORTED},    {6, 0, CELER_ERR_UNSUPPORTED},
        {7, 1, CELER_ERR_UNSUPPORTED},    {8, 0xff, CELER_ERR_PARSE},
        {9, 0xff, CELER_ERR_PARSE},       {8, 0, CELER_ERR_PARSE},
        {12, 0, CELER_ERR_PARSE},         {12, 0xe9, CELER_ERR_PARSE},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(flips); i++) {
        memcpy(c, b, len);
        c[flips[i].at] = flips[i].value;
        celer_status st = celer_npy_parse(c, len, "t.npy", &arena, &t);
        if (st != flips[i].status)
            fail_msg("byte %zu = 0x%02x: status %d (%s)", flips[i].at, flips[i].value, st, celer_error_message());
    }
    free(c);
    /* random garbage after a valid magic never crashes */
    uint64_t seed = 12345;
    unsigned char g[200];
    for (int round = 0; round < 2000; round++) {
        memcpy(g, "\x93NUMPY\x01\x00", 8);
        for (size_t i = 8; i < sizeof g; i++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            g[i] = (unsigned char)seed;
        }
        g[9] = 0;
        (void)celer_npy_parse(g, sizeof g, "g.npy", &arena, &t);
    }
    /* a file that is not there, and an empty file */
    assert_int_equal(celer_npy_read(tmp_path("missing.npy"), &arena, &t), CELER_ERR_IO);
    assert_non_null(strstr(celer_error_message(), "missing.npy"));
    FILE *f = fopen(tmp_path("empty.npy"), "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(celer_npy_read(tmp_path("empty.npy"), &arena, &t), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "empty.npy"));
    assert_int_equal(celer_npy_read(tmp_dir, &arena, &t), CELER_ERR_IO);
    celer_arena_free(&arena);
    free(b);

    /* version 2.0 with a 4-byte header length that claims far more than the file */
    b = make_npy(2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16, &len);
    b[8] = 0, b[9] = 0, b[10] = 0, b[11] = 0x7f;
    celer_arena_init(&arena, 0, 0);
    assert_int_equal(celer_npy_parse(b, len, "t.npy", &arena, &t), CELER_ERR_LIMIT);
    celer_arena_free(&arena);
    free(b);
}

/* ---- numpy-made fixtures ---- */

static const char *fixture(const char *name) {
    static char path[512];
    const char *dir = getenv("CELER_TEST_DATA");
    snprintf(path, sizeof path, "%s/npy/%s", dir ? dir : "tests/data", name);
    return path;
}

static celer_tensor read_fixture(celer_arena *arena, const char *name, celer_dtype dt, int rank, const int64_t *dims) {
    celer_tensor t;
    celer_status st = celer_npy_read(fixture(name), arena, &t);
    if (st) fail_msg("%s: %s", name, celer_error_message());
    assert_int_equal(t.dtype, dt);
    celer_shape want = shp(rank, dims);
    assert_true(celer_shape_equal(&t.shape, &want));
    return t;
}

static void test_npy_numpy_fixtures(void **state) {
    (void)state;
    celer_arena a;
    celer_arena_init(&a, 0, 0);
    celer_tensor t = read_fixture(&a, "f4_2x3.npy", CELER_FLOAT, 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) assert_true(((float *)t.data)[i] == i * 0.5f - 1);
    t = read_fixture(&a, "f8_scalar.npy", CELER_DOUBLE, 0, NULL);
    assert_true(*(double *)t.data == 3.25);
    t = read_fixture(&a, "f2.npy", CELER_FLOAT16, 1, (int64_t[]){4});
    static const float f2[] = {1.0f, -2.5f, 65504.0f, INFINITY};
    for (int i = 0; i < 4; i++) assert_true(celer_half_to_float(((uint16_t *)t.data)[i]) == f2[i]);
    t = read_fixture(&a, "i1.npy", CELER_INT8, 1, (int64_t[]){3});
    assert_int_equal(((int8_t *)t.data)[0], -128);
    assert_int_equal(((int8_t *)t.data)[2], 127);
    t = read_fixture(&a, "u1.npy", CELER_UINT8, 1, (int64_t[]){2});
    assert_int_equal(((uint8_t *)t.data)[1], 255);
    t = read_fixture(&a, "i2.npy", CELER_INT16, 1, (int64_t[]){2});
    assert_int_equal(((int16_t *)t.data)[0], -32768);
    t = read_fixture(&a, "u2.npy", CELER_UINT16, 1, (int64_t[]){2});
    assert_int_equal(((uint16_t *)t.data)[0], 65535);
    t = read_fixture(&a, "i4.npy", CELER_INT32, 2, (int64_t[]){2, 1});
    assert_int_equal(((int32_t *)t.data)[0], INT32_MIN);
    assert_int_equal(((int32_t *)t.data)[1], 7);
    t = read_fixture(&a, "u4.npy", CELER_UINT32, 1, (int64_t[]){1});
    assert_int_equal(((uint32_t *)t.data)[0], UINT32_MAX);
    t = read_fixture(&a, "i8.npy", CELER_INT64, 1, (int64_t[]){3});
    assert_int_equal(((int64_t *)t.data)[0], -1);
    assert_int_equal(((int64_t *)t.data)[2], 1LL << 40);
    t = read_fixture(&a, "u8.npy", CELER_UINT64, 1, (int64_t[]){1});
    assert_true(((uint64_t *)t.data)[0] == UINT64_MAX);
    t = read_fixture(&a, "b1.npy", CELER_BOOL, 1, (int64_t[]){3});
    assert_memory_equal(t.data, "\x01\x00\x01", 3);
    t = read_fixture(&a, "c8.npy", CELER_COMPLEX64, 1, (int64_t[]){2});
    static const float c8[] = {1, 2, 0, -3};
    for (int i = 0; i < 4; i++) assert_true(((float *)t.data)[i] == c8[i]);
    t = read_fixture(&a, "c16.npy", CELER_COMPLEX128, 1, (int64_t[]){1});
    assert_true(((double *)t.data)[0] == 0.5 && ((double *)t.data)[1] == -0.25);
    t = read_fixture(&a, "str_u.npy", CELER_STRING, 1, (int64_t[]){4});
    static const char *su[] = {"a", "h\xc3\xa9llo", "\xe4\xb8\xad\xe6\x96\x87", ""};
    for (int i = 0; i < 4; i++) assert_string_equal(((const celer_str *)t.data)[i].data, su[i]);
    t = read_fixture(&a, "str_s.npy", CELER_STRING, 1, (int64_t[]){2});
    assert_string_equal(((const celer_str *)t.data)[0].data, "ab");
    assert_string_equal(((const celer_str *)t.data)[1].data, "xyz");
    t = read_fixture(&a, "empty_0x3.npy", CELER_FLOAT, 2, (int64_t[]){0, 3});
    t = read_fixture(&a, "v2.npy", CELER_INT32, 1, (int64_t[]){3});
    assert_int_equal(((int32_t *)t.data)[2], 3);
    t = read_fixture(&a, "v3.npy", CELER_FLOAT, 2, (int64_t[]){1, 2});
    assert_true(((float *)t.data)[1] == 2.5f);

    static const struct {
        const char *name;
        const char *msg;
    } refused[] = {
        {"bad_fortran.npy", "Fortran"},
        {"bad_bigendian.npy", "big-endian"},
        {"bad_object.npy", "object"},
        {"bad_structured.npy", "structured"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(refused); i++) {
        assert_int_not_equal(celer_npy_read(fixture(refused[i].name), &a, &t), CELER_OK);
        assert_non_null(strstr(celer_error_message(), refused[i].name));
        assert_non_null(strstr(celer_error_message(), refused[i].msg));
    }
    celer_arena_free(&a);
}

/* What celer writes, numpy-compatible byte for byte (numpy 1.24 pads to 64 the same way). */
static void test_npy_write_matches_numpy(void **state) {
    (void)state;
    static const char *names[] = {"f4_2x3.npy", "f8_scalar.npy", "i8.npy", "b1.npy", "empty_0x3.npy", "c16.npy",
                                  "u1.npy", "str_u.npy"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(names); i++) {
        celer_arena a;
        celer_arena_init(&a, 0, 0);
        celer_tensor t;
        assert_int_equal(celer_npy_read(fixture(names[i]), &a, &t), CELER_OK);
        assert_int_equal(celer_npy_write(tmp_path("w.npy"), &t), CELER_OK);
        size_t la, lb;
        unsigned char *x = slurp(fixture(names[i]), &la), *y = slurp(tmp_path("w.npy"), &lb);
        if (la != lb || memcmp(x, y, la) != 0) fail_msg("%s: celer's file differs from numpy's", names[i]);
        free(x);
        free(y);
        celer_arena_free(&a);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_shape_basics),
        cmocka_unit_test(test_shape_broadcast),
        cmocka_unit_test(test_half_all_values),
        cmocka_unit_test(test_half_rounding),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_npy_roundtrip_all_dtypes),
        cmocka_unit_test(test_npy_roundtrip_strings),
        cmocka_unit_test(test_npy_write_errors),
        cmocka_unit_test(test_npy_header_variants),
        cmocka_unit_test(test_npy_truncated_and_garbage),
        cmocka_unit_test(test_npy_numpy_fixtures),
        cmocka_unit_test(test_npy_write_matches_numpy),
    };
    return cmocka_run_group_tests_name("tensor", tests, setup_tmp, teardown_tmp);
}
