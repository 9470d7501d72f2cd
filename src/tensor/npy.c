/* .npy reading and writing (NumPy format versions 1.0, 2.0 and 3.0).
 *
 * File layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.0, uint32 LE for 2.0 and
 * 3.0), then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a newline, then the raw elements in C order.
 *
 * Dtype choices:
 * - Read: '<', '=' and '|' byte orders ('>' only for one-byte types, where order is meaningless).
 *   '<U<n>' (UCS-4) and '|S<n>' (bytes) string arrays become celer_str elements (UTF-8 for '<U')
 *   in the arena; trailing NULs are padding and dropped, as numpy does, inner NULs are kept.
 *   Bool bytes are normalised to 0/1.
 * - Write: version 1.0, header padded so the data starts on a 64-byte boundary (as numpy does).
 *   Strings are written as '<U<n>' with n the longest string in code points (at least 1) when all
 *   are UTF-8, else as '|S<n>' bytes; an element ending in NUL is refused (numpy would drop it).
 *   bfloat16 has no numpy dtype: it is written as '<f4'. Every bfloat16 value is exact in float32,
 *   so the file holds the true values and numpy reads them as numbers (a '<u2' file would show bit
 *   patterns); reading such a file back yields a CELER_FLOAT tensor. */
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c copies little-endian elements as they are: port the byte swapping first"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Largest header accepted; numpy itself refuses headers over 10000 bytes by default. */
#define NPY_HEADER_CAP (1u << 20)
/* Longest '<U'/'|S' element accepted, in characters. */
#define NPY_STRING_CAP (1u << 24)

/* The numeric dtypes by numpy kind letter and item size. Strings are handled apart. */
static const struct {
    char kind;
    unsigned size;
    celer_dtype dtype;
} npy_types[] = {
    {'f', 2, CELER_FLOAT16}, {'f', 4, CELER_FLOAT},     {'f', 8, CELER_DOUBLE},
    {'i', 1, CELER_INT8},    {'i', 2, CELER_INT16},     {'i', 4, CELER_INT32},
    {'i', 8, CELER_INT64},   {'u', 1, CELER_UINT8},     {'u', 2, CELER_UINT16},
    {'u', 4, CELER_UINT32},  {'u', 8, CELER_UINT64},    {'b', 1, CELER_BOOL},
    {'c', 8, CELER_COMPLEX64}, {'c', 16, CELER_COMPLEX128},
};

/* ---- header dict parser ---- */

typedef struct {
    const char *p, *end;
    const char *what; /* file name for messages */
} hdr_cursor;

static void skip_space(hdr_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Consumes `ch` after optional spaces; false when it is not next. */
static bool accept(hdr_cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* A Python string literal with ' or " quotes and no escapes (numpy never writes escapes in the
 * fields we read). Sets *s and *len to its contents. */
static bool parse_string(hdr_cursor *c, const char **s, size_t *len) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
    char q = *c->p++;
    const char *start = c->p;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n') return false;
        c->p++;
    }
    if (c->p >= c->end) return false;
    *s = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return true;
}

static bool accept_word(hdr_cursor *c, const char *word) {
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return false;
    /* the word must end there ("Truex" is not True) */
    if ((size_t)(c->end - c->p) > n) {
        char next = c->p[n];
        if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9') ||
            next == '_')
            return false;
    }
    c->p += n;
    return true;
}

/* A non-negative decimal integer (Python 2 numpy wrote a trailing 'L'). */
static celer_status parse_dim(hdr_cursor *c, int64_t *out) {
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
        if (c->p < c->end && *c->p == '-')
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: negative dimension in shape",
                                c->what);
        return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected a dimension in 'shape'",
                            c->what);
    }
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
            return celer_errorf(CELER_ERR_LIMIT, "%s: .npy shape dimension does not fit in 64 bits",
                                c->what);
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    *out = v;
    return CELER_OK;
}

/* '(' [dim (',' dim)* [',']] ')' ; a one-element tuple needs its comma, as in Python. */
static celer_status parse_shape(hdr_cursor *c, celer_shape *shape) {
    if (!accept(c, '('))
        return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: 'shape' must be a tuple", c->what);
    shape->rank = 0;
    if (accept(c, ')')) return CELER_OK;
    for (;;) {
        int64_t d = 0;
        celer_status st = parse_dim(c, &d);
        if (st) return st;
        if (shape->rank >= CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: .npy array has more than %d dimensions",
                                c->what, CELER_MAX_RANK);
        shape->dims[shape->rank++] = d;
        bool comma = accept(c, ',');
        if (accept(c, ')')) {
            if (shape->rank == 1 && !comma)
                return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: 'shape' (n) is not a tuple",
                                    c->what);
            return CELER_OK;
        }
        if (!comma)
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected ',' or ')' in 'shape'",
                                c->what);
    }
}

typedef struct {
    celer_dtype dtype;
    size_t item_size;  /* bytes per element in the file */
    size_t str_chars;  /* characters per element for strings */
    bool ucs4;         /* '<U' (4 bytes per character) rather than '|S' */
    celer_shape shape;
} npy_header;

/* Maps a descr string such as '<f4' or '<U12' to the element layout. */
static celer_status parse_descr(const char *what, const char *s, size_t len, npy_header *h) {
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: unsupported .npy dtype '%.*s'", what,
                            (int)CELER_MIN(len, 40), s);
    memcpy(buf, s, len);
    buf[len] = 0;
    char order = buf[0];
    const char *rest = buf + 1;
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        order = '=';
        rest = buf;
    }
    char kind = rest[0];
    if (kind == 'O')
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "%s: .npy object arrays (pickled Python objects) are not supported", what);
    /* item size: decimal digits after the kind letter */
    const char *q = rest + 1;
    if (*q < '0' || *q > '9')
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: unsupported .npy dtype '%s'", what, buf);
    size_t n = 0;
    for (; *q >= '0' && *q <= '9'; q++) {
        n = n * 10 + (size_t)(*q - '0');
        if (n > NPY_STRING_CAP)
            return celer_errorf(CELER_ERR_LIMIT, "%s: .npy dtype '%s' has too large an item size", what, buf);
    }
    if (*q)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: unsupported .npy dtype '%s'", what, buf);
    if (kind == 'U' || kind == 'S') {
        if (n == 0)
            return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: .npy dtype '%s' has zero item size", what, buf);
        if (kind == 'U' && order == '>')
            return celer_errorf(CELER_ERR_UNSUPPORTED,
                                "%s: big-endian .npy data ('%s') is not supported; save it with "
                                "arr.astype(arr.dtype.newbyteorder('<'))",
                                what, buf);
        h->dtype = CELER_STRING;
        h->ucs4 = kind == 'U';
        h->str_chars = n;
        h->item_size = kind == 'U' ? n * 4 : n;
        return CELER_OK;
    }
    for (size_t i = 0; i < CELER_ARRAY_LEN(npy_types); i++) {
        if (npy_types[i].kind == kind && npy_types[i].size == n) {
            if (order == '>' && n > 1)
                return celer_errorf(CELER_ERR_UNSUPPORTED,
                                    "%s: big-endian .npy data ('%s') is not supported; save it with "
                                    "arr.astype(arr.dtype.newbyteorder('<'))",
                                    what, buf);
            h->dtype = npy_types[i].dtype;
            h->item_size = n;
            return CELER_OK;
        }
    }
    return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: unsupported .npy dtype '%s'", what, buf);
}

/* Parses the dict: exactly the keys 'descr', 'fortran_order' and 'shape', each once, in any
 * order, an optional trailing comma, and nothing but spaces after the closing brace. */
static celer_status parse_header_dict(const char *what, const char *text, size_t len, npy_header *h) {
    hdr_cursor c = {text, text + len, what};
    enum { K_DESCR = 1, K_FORTRAN = 2, K_SHAPE = 4 };
    unsigned seen = 0;
    if (!accept(&c, '{'))
        return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected '{'", what);
    for (;;) {
        if (accept(&c, '}')) break;
        const char *key;
        size_t klen;
        if (!parse_string(&c, &key, &klen))
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected a quoted key or '}'", what);
        unsigned k = klen == 5 && !memcmp(key, "descr", 5)           ? K_DESCR
                     : klen == 13 && !memcmp(key, "fortran_order", 13) ? K_FORTRAN
                     : klen == 5 && !memcmp(key, "shape", 5)           ? K_SHAPE
                                                                       : 0;
        if (!k)
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: unknown key '%.*s'", what,
                                (int)CELER_MIN(klen, 40), key);
        if (seen & k)
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: key '%.*s' appears twice", what,
                                (int)klen, key);
        seen |= k;
        if (!accept(&c, ':'))
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected ':' after '%.*s'", what,
                                (int)klen, key);
        celer_status st = CELER_OK;
        if (k == K_DESCR) {
            const char *s;
            size_t slen;
            skip_space(&c);
            if (c.p < c.end && *c.p == '[')
                return celer_errorf(CELER_ERR_UNSUPPORTED,
                                    "%s: .npy structured (record) arrays are not supported", what);
            if (!parse_string(&c, &s, &slen))
                return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: 'descr' must be a string", what);
            st = parse_descr(what, s, slen, h);
        } else if (k == K_FORTRAN) {
            if (accept_word(&c, "True"))
                return celer_errorf(CELER_ERR_UNSUPPORTED,
                                    "%s: Fortran-order .npy arrays are not supported; save it with "
                                    "np.ascontiguousarray(arr)",
                                    what);
            if (!accept_word(&c, "False"))
                return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: 'fortran_order' must be True or False",
                                    what);
        } else {
            st = parse_shape(&c, &h->shape);
        }
        if (st) return st;
        if (accept(&c, '}')) break;
        if (!accept(&c, ','))
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: expected ',' or '}' after '%.*s'", what,
                                (int)klen, key);
    }
    skip_space(&c);
    if (c.p != c.end)
        return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: unexpected text after '}'", what);
    if (seen != (K_DESCR | K_FORTRAN | K_SHAPE))
        return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: missing key '%s'", what,
                            !(seen & K_DESCR) ? "descr" : !(seen & K_FORTRAN) ? "fortran_order" : "shape");
    return CELER_OK;
}

/* ---- UTF-8 <-> code points ---- */

/* Appends the UTF-8 form of `cp` at out (room for 4 bytes); returns bytes written, 0 if invalid. */
static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    if (cp > 0x10ffff) return 0;
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes one code point from s (NUL-terminated); returns its length, 0 when malformed. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp) {
    static const struct {
        unsigned char mask, lead;
        uint32_t min;
    } forms[] = {{0x80, 0x00, 0}, {0xe0, 0xc0, 0x80}, {0xf0, 0xe0, 0x800}, {0xf8, 0xf0, 0x10000}};
    for (size_t n = 0; n < CELER_ARRAY_LEN(forms); n++) {
        if ((s[0] & forms[n].mask) != forms[n].lead) continue;
        if (n >= avail) return 0; /* the sequence is cut by the end of the string */
        uint32_t v = n == 0 ? s[0] : (uint32_t)(s[0] & (0x3f >> n));
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) return 0;
            v = (v << 6) | (s[i] & 0x3f);
        }
        if (v < forms[n].min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
        *cp = v;
        return n + 1;
    }
    return 0;
}

/* ---- reading ---- */

static uint32_t load_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Converts n string elements of h's layout at src into arena strings at dst. As NumPy does,
 * only trailing NULs are padding: NULs inside an element are part of it. */
static celer_status read_strings(const char *what, const npy_header *h, const unsigned char *src,
                                 size_t count, celer_str *dst, celer_arena *arena) {
    for (size_t i = 0; i < count; i++) {
        const unsigned char *e = src + i * h->item_size;
        size_t chars = h->str_chars;
        if (h->ucs4) {
            while (chars > 0 && load_u32le(e + (chars - 1) * 4) == 0) chars--;
        } else {
            while (chars > 0 && e[chars - 1] == 0) chars--;
        }
        /* UTF-8 needs at most 4 bytes per code point; byte strings are copied as they are */
        size_t cap = h->ucs4 ? chars * 4 : chars;
        char *s = celer_arena_alloc(arena, cap + 1);
        if (!s) return celer_error_wrap(CELER_ERR_NOMEM, "%s", what);
        size_t n = chars;
        if (!h->ucs4) {
            memcpy(s, e, chars);
        } else {
            n = 0;
            for (size_t j = 0; j < chars; j++) {
                uint32_t cp = load_u32le(e + j * 4);
                size_t w = utf8_encode(cp, s + n);
                if (!w)
                    return celer_errorf(CELER_ERR_PARSE, "%s: string element %zu holds invalid code point U+%X",
                                        what, i, cp);
                n += w;
            }
            s[n] = 0;
        }
        dst[i] = (celer_str){s, n};
    }
    return CELER_OK;
}

/* Checks the magic, version and header of an in-memory .npy image and that the data that
 * follows has the size dtype and shape need; *data_off is where it starts. */
static celer_status parse_image(const unsigned char *b, size_t len, const char *what, npy_header *hp,
                                size_t *data_off) {
    if (len < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return celer_errorf(CELER_ERR_PARSE, "%s: not a .npy file (missing \\x93NUMPY magic)", what);
    unsigned major = b[6], minor = b[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: unsupported .npy format version %u.%u (1.0-3.0 are)",
                            what, major, minor);
    size_t prefix = major == 1 ? 10 : 12;
    if (len < prefix)
        return celer_errorf(CELER_ERR_PARSE, "%s: .npy file truncated in its header", what);
    size_t hlen = major == 1 ? (size_t)(b[8] | b[9] << 8) : load_u32le(b + 8);
    if (hlen > NPY_HEADER_CAP)
        return celer_errorf(CELER_ERR_LIMIT, "%s: .npy header of %zu bytes is over the %u-byte cap", what,
                            hlen, NPY_HEADER_CAP);
    if (len - prefix < hlen)
        return celer_errorf(CELER_ERR_PARSE, "%s: .npy file truncated in its header (%zu of %zu bytes)", what,
                            len - prefix, hlen);
    const char *text = (const char *)b + prefix;
    /* 1.0 and 2.0 headers are latin-1, 3.0 UTF-8; the keys and values we accept are all ASCII, and
     * a NUL would hide text from the messages, so refuse both. */
    for (size_t i = 0; i < hlen; i++)
        if (text[i] == 0 || (unsigned char)text[i] >= 0x80)
            return celer_errorf(CELER_ERR_PARSE, "%s: bad .npy header: unexpected byte 0x%02x", what,
                                (unsigned char)text[i]);
    npy_header h = {0};
    celer_status st = parse_header_dict(what, text, hlen, &h);
    if (st) return st;

    int64_t numel = celer_shape_numel(&h.shape);
    size_t nbytes;
    if (numel < 0 || celer_mul_size((size_t)numel, h.item_size, &nbytes))
        return celer_errorf(CELER_ERR_LIMIT, "%s: .npy array size overflows", what);
    size_t have = len - prefix - hlen;
    if (have != nbytes) {
        char sb[160];
        return celer_errorf(CELER_ERR_PARSE, "%s: .npy data is %zu bytes but dtype and shape %s need %zu", what,
                            have, celer_shape_str(&h.shape, sb, sizeof sb), nbytes);
    }
    *hp = h;
    *data_off = prefix + hlen;
    return CELER_OK;
}

celer_status celer_npy_parse(const void *bytes, size_t len, const char *what, celer_arena *arena,
                             celer_tensor *out) {
    if (!what) what = "<memory>";
    npy_header h;
    size_t off, nbytes, out_bytes;
    celer_status st = parse_image(bytes, len, what, &h, &off);
    if (st) return st;
    int64_t numel = celer_shape_numel(&h.shape);
    nbytes = len - off;
    if (celer_mul_size((size_t)numel, celer_dtype_size(h.dtype), &out_bytes))
        return celer_errorf(CELER_ERR_LIMIT, "%s: .npy array size overflows", what);
    void *data = celer_arena_alloc(arena, out_bytes);
    if (!data) return celer_error_wrap(CELER_ERR_NOMEM, "%s", what);
    const unsigned char *src = (const unsigned char *)bytes + off;
    if (h.dtype == CELER_STRING) {
        st = read_strings(what, &h, src, (size_t)numel, data, arena);
        if (st) return st;
    } else {
        memcpy(data, src, nbytes);
        if (h.dtype == CELER_BOOL)
            for (size_t i = 0; i < nbytes; i++) ((unsigned char *)data)[i] = ((unsigned char *)data)[i] != 0;
    }
    out->dtype = h.dtype;
    out->shape = h.shape;
    out->data = data;
    return CELER_OK;
}

/* Reads `path` whole into read-only pages of our own (*map, *len_out; release with munmap): see
 * celer_read_pages. On failure the message names the file. */
static celer_status map_file(const char *path, void **map, size_t *len_out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        celer_status st = celer_errorf(CELER_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return celer_errorf(CELER_ERR_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len == 0) {
        close(fd);
        return celer_errorf(CELER_ERR_PARSE, "%s: not a .npy file (it is empty)", path);
    }
    void *m = NULL;
    celer_status st = celer_read_pages(fd, len, path, &m);
    close(fd);
    if (st) return st;
    mprotect(m, len, PROT_READ);
    *map = m;
    *len_out = len;
    return CELER_OK;
}

celer_status celer_npy_read(const char *path, celer_arena *arena, celer_tensor *out) {
    void *map = NULL;
    size_t len = 0;
    celer_status st = map_file(path, &map, &len);
    if (st) return st;
    st = celer_npy_parse(map, len, path, arena, out);
    munmap(map, len);
    return st;
}

celer_status celer_npy_map_open(const char *path, celer_npy_map *out) {
    memset(out, 0, sizeof *out);
    void *map = NULL;
    size_t len = 0, off = 0;
    npy_header h;
    celer_status st = map_file(path, &map, &len);
    if (st) return st;
    if ((st = parse_image(map, len, path, &h, &off))) {
        munmap(map, len);
        return st;
    }
    const char *data = (const char *)map + off;
    size_t es = celer_dtype_size(h.dtype);
    if (h.dtype == CELER_STRING || h.dtype == CELER_BOOL || h.item_size != es || (uintptr_t)data % es) {
        munmap(map, len);
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: only numeric arrays whose data is aligned to their "
                            "element size can be mapped (this one is %s)", path, celer_dtype_name(h.dtype));
    }
    out->tensor = (celer_tensor){.dtype = h.dtype, .shape = h.shape, .data = (void *)(uintptr_t)data};
    out->map = map;
    out->len = len;
    return CELER_OK;
}

void celer_npy_map_close(celer_npy_map *m) {
    if (m->map) munmap(m->map, m->len);
    memset(m, 0, sizeof *m);
}

/* ---- writing ---- */

static const char *npy_descr_of(celer_dtype t) {
    static const char *const descr[CELER_DTYPE_COUNT] = {
        [CELER_FLOAT] = "<f4",   [CELER_UINT8] = "|u1",   [CELER_INT8] = "|i1",
        [CELER_UINT16] = "<u2",  [CELER_INT16] = "<i2",   [CELER_INT32] = "<i4",
        [CELER_INT64] = "<i8",   [CELER_BOOL] = "|b1",    [CELER_FLOAT16] = "<f2",
        [CELER_DOUBLE] = "<f8",  [CELER_UINT32] = "<u4",  [CELER_UINT64] = "<u8",
        [CELER_COMPLEX64] = "<c8", [CELER_COMPLEX128] = "<c16",
        [CELER_BFLOAT16] = "<f4", /* widened: see the file comment */
    };
    return (unsigned)t < CELER_DTYPE_COUNT ? descr[t] : NULL;
}

/* The file layout of t's strings: '<U' (UTF-32) when every element is UTF-8 text, else '|S'
 * (bytes as they are). *chars is the longest element in code points ('<U') or bytes ('|S').
 * NumPy drops trailing NULs of an element as padding, so an element ending in NUL cannot be
 * written faithfully: CELER_ERR_INVALID naming it. */
static celer_status string_layout(const celer_str *s, size_t count, const char *path, bool *ucs4, size_t *chars) {
    size_t best_cp = 1, best_bytes = 1;
    bool utf8 = true;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = (const unsigned char *)s[i].data;
        size_t len = s[i].len, n = 0;
        if (len && p[len - 1] == 0)
            return celer_errorf(CELER_ERR_INVALID, "%s: string element %zu ends with a NUL byte, which .npy drops as padding",
                                path, i);
        for (size_t off = 0; utf8 && off < len; n++) {
            uint32_t cp;
            size_t w = utf8_decode(p + off, len - off, &cp);
            if (!w) utf8 = false;
            off += w;
        }
        if (n > best_cp) best_cp = n;
        if (len > best_bytes) best_bytes = len;
    }
    *ucs4 = utf8;
    *chars = utf8 ? best_cp : best_bytes;
    return CELER_OK;
}

static celer_status write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n)
        return celer_errorf(CELER_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return CELER_OK;
}

/* Writes the elements of t (already validated) in file layout. */
static celer_status write_data(FILE *f, const celer_tensor *t, size_t count, bool ucs4, size_t str_chars,
                               const char *path) {
    if (t->dtype == CELER_STRING) {
        size_t elem = str_chars;
        if (ucs4 && celer_mul_size(str_chars, 4, &elem)) return celer_errorf(CELER_ERR_LIMIT, "%s: string too long", path);
        unsigned char *buf = malloc(elem);
        if (!buf) return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", path);
        celer_status st = CELER_OK;
        for (size_t i = 0; i < count && !st; i++) {
            celer_str s = ((const celer_str *)t->data)[i];
            const unsigned char *p = (const unsigned char *)s.data;
            memset(buf, 0, elem);
            if (!ucs4 && s.len) memcpy(buf, p, s.len);
            for (size_t j = 0, off = 0; ucs4 && off < s.len; j++) {
                uint32_t cp = 0;
                off += utf8_decode(p + off, s.len - off, &cp); /* validated by string_layout */
                buf[j * 4] = (unsigned char)cp;
                buf[j * 4 + 1] = (unsigned char)(cp >> 8);
                buf[j * 4 + 2] = (unsigned char)(cp >> 16);
            }
            st = write_all(f, buf, elem, path);
        }
        free(buf);
        return st;
    }
    if (t->dtype == CELER_BFLOAT16) {
        float chunk[1024];
        const uint16_t *src = t->data;
        for (size_t i = 0; i < count;) {
            size_t n = CELER_MIN(count - i, CELER_ARRAY_LEN(chunk));
            for (size_t j = 0; j < n; j++) chunk[j] = celer_bf16_to_float(src[i + j]);
            celer_status st = write_all(f, chunk, n * sizeof(float), path);
            if (st) return st;
            i += n;
        }
        return CELER_OK;
    }
    return write_all(f, t->data, count * celer_dtype_size(t->dtype), path);
}

celer_status celer_npy_write(const char *path, const celer_tensor *t) {
    const char *descr = npy_descr_of(t->dtype);
    if (!descr && t->dtype != CELER_STRING)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s: cannot write dtype %s to .npy", path,
                            celer_dtype_name(t->dtype));
    if (t->shape.rank < 0 || t->shape.rank > CELER_MAX_RANK)
        return celer_errorf(CELER_ERR_INVALID, "%s: tensor rank %d is out of range", path, t->shape.rank);
    size_t bytes;
    if (celer_tensor_bytes(t, &bytes)) return celer_error_wrap(CELER_ERR_LIMIT, "%s", path);
    size_t count = (size_t)celer_shape_numel(&t->shape);
    if (count && !t->data) return celer_errorf(CELER_ERR_INVALID, "%s: tensor has no data", path);

    char descr_buf[32];
    size_t str_chars = 0;
    bool ucs4 = true;
    if (t->dtype == CELER_STRING) {
        celer_status st = string_layout(t->data, count, path, &ucs4, &str_chars);
        if (st) return st;
        snprintf(descr_buf, sizeof descr_buf, "%s%zu", ucs4 ? "<U" : "|S", str_chars);
        descr = descr_buf;
    }

    /* header text, then pad with spaces so that the data starts at a multiple of 64 */
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->shape.rank; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, "%s%lld", i ? ", " : "", (long long)t->shape.dims[i]);
    n += snprintf(header + n, sizeof header - (size_t)n, "%s), }", t->shape.rank == 1 ? "," : "");
    size_t total = 10 + (size_t)n + 1; /* prefix, dict, newline */
    size_t padded = (total + 63) & ~(size_t)63;
    size_t hlen = padded - 10;
    memset(header + n, ' ', hlen - (size_t)n - 1);
    header[hlen - 1] = '\n';
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                                (unsigned char)(hlen >> 8)};

    FILE *f = fopen(path, "wb");
    if (!f) return celer_errorf(CELER_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    celer_status st = write_all(f, prefix, sizeof prefix, path);
    if (!st) st = write_all(f, header, hlen, path);
    if (!st) st = write_data(f, t, count, ucs4, str_chars, path);
    if (fclose(f) != 0 && !st) st = celer_errorf(CELER_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (st) remove(path);
    return st;
}
