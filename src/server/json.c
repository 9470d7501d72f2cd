/* JSON for the server: a strict parser whose numeric arrays stay raw text spans, a tensor decoder
 * that writes elements straight into a typed buffer, exact number parsing with a fast path, a
 * growing output buffer and shortest-round-trip float formatting. */
#include "server/json.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A document may hold at most this many DOM nodes (numeric arrays count as one): a node costs
 * ~80 bytes in the arena plus scratch, so this caps memory for hostile `[true,true,...]` bodies.
 * Large tensors are meant to come as numeric arrays or binary data, which build no nodes. */
#define JSON_MAX_NODES (1u << 20)

/* 10^0 .. 10^70 as doubles; literals up to 1e22 are exact, the others correctly rounded. */
static const double P10[71] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14,
    1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
    1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44,
    1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59,
    1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70};

/* 10^-0 .. 10^-70, correctly rounded: multiplying is cheaper than dividing by P10. */
static const double P10N[71] = {
    1e-0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13,
    1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22, 1e-23, 1e-24, 1e-25, 1e-26,
    1e-27, 1e-28, 1e-29, 1e-30, 1e-31, 1e-32, 1e-33, 1e-34, 1e-35, 1e-36, 1e-37, 1e-38, 1e-39,
    1e-40, 1e-41, 1e-42, 1e-43, 1e-44, 1e-45, 1e-46, 1e-47, 1e-48, 1e-49, 1e-50, 1e-51, 1e-52,
    1e-53, 1e-54, 1e-55, 1e-56, 1e-57, 1e-58, 1e-59, 1e-60, 1e-61, 1e-62, 1e-63, 1e-64, 1e-65,
    1e-66, 1e-67, 1e-68, 1e-69, 1e-70};

static inline bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static inline bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* ======================================================================================== */
/* numbers                                                                                  */
/* ======================================================================================== */

enum { NUM_FINITE, NUM_NAN, NUM_INF };

/* The run of ASCII digits at p (8 readable bytes), up to 8 of them, without a loop: returns its
 * length and sets *val to its value. Bytes are XORed with '0' (digits become 0..9, nothing else
 * does); a byte is not a digit when its high bit is set or adding 0x76 to its low 7 bits sets it.
 * The digits are shifted to the top of the word (zeros in front change nothing), pairs are
 * combined (byte i becomes 10*d_i + d_(i+1)) and the four pairs weighted 10^6, 10^4, 10^2, 1 by
 * two multiplies whose sums meet in the high 32 bits. */
static inline int digit_run8(const char *p, uint64_t *val) {
    uint64_t v;
    memcpy(&v, p, 8);
    v ^= 0x3030303030303030ull;
    uint64_t bad = (((v & 0x7f7f7f7f7f7f7f7full) + 0x7676767676767676ull) | v) & 0x8080808080808080ull;
    int n = bad ? __builtin_ctzll(bad) >> 3 : 8;
    if (n == 0) {
        *val = 0;
        return 0;
    }
    v <<= 8 * (8 - n);
    v = v * 10 + (v >> 8);
    *val = ((v & 0x000000ff000000ffull) * (100 + (1000000ull << 32)) +
            ((v >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32))) >> 32;
    return n;
}

static const uint64_t U10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* A scanned JSON number: value = (neg ? -1 : 1) * mant * 10^exp10 (when not truncated). At most
 * 19 significant digits go into `mant`; `truncated` says a dropped digit was non-zero. */
typedef struct numtok {
    uint64_t mant;
    int exp10;
    int kind;
    bool neg, truncated, is_int;
} numtok;

/* Scans a strict JSON number (or NaN, Infinity, -Infinity) at [p, end); returns its length, 0 when
 * there is none. */
static inline __attribute__((always_inline)) size_t scan_number(const char *p, const char *end, numtok *t) {
    const char *s = p;
    t->mant = 0;
    t->exp10 = 0;
    t->kind = NUM_FINITE;
    t->neg = false;
    t->truncated = false;
    t->is_int = true;
    if (p < end && *p == '-') {
        t->neg = true;
        p++;
    }
    if (p >= end) return 0;
    if (!is_digit((unsigned char)*p)) {
        if (*p == 'I' && end - p >= 8 && memcmp(p, "Infinity", 8) == 0) {
            t->kind = NUM_INF;
            t->is_int = false;
            return (size_t)(p + 8 - s);
        }
        if (*p == 'N' && !t->neg && end - p >= 3 && memcmp(p, "NaN", 3) == 0) {
            t->kind = NUM_NAN;
            t->is_int = false;
            return 3;
        }
        return 0;
    }
    uint64_t m = 0;
    int nd = 0, e = 0;
    if (*p == '0') {
        p++;
    } else {
        const char *i0 = p, *lim = end - p > 19 ? p + 19 : end;
        if (end - p >= 8) { /* common case: fewer than 8 integer digits, no loop */
            int n = digit_run8(p, &m);
            p += n;
            if (n == 8) goto int_loop;
        } else {
        int_loop:
            while (p < lim && is_digit((unsigned char)*p)) m = m * 10 + (unsigned)(*p++ - '0');
        }
        nd = (int)(p - i0);
        for (; p < end && is_digit((unsigned char)*p); p++) { /* beyond 19 digits: rare */
            e++;
            if (*p != '0') t->truncated = true;
        }
    }
    if (p < end && *p == '.') {
        p++;
        t->is_int = false;
        const char *f0 = p;
        if (m == 0) { /* leading zeros of a fraction are not significant */
            while (p < end && *p == '0') p++;
            e -= (int)(p - f0);
        }
        const char *fs = p, *lim = end - p > 19 - nd ? p + (19 - nd) : end;
        if (lim - p >= 8) { /* up to 8 digits without a loop */
            uint64_t v;
            int n = digit_run8(p, &v);
            m = m * U10[n] + v;
            p += n;
        }
        while (p < lim && is_digit((unsigned char)*p)) m = m * 10 + (unsigned)(*p++ - '0');
        e -= (int)(p - fs);
        nd += (int)(p - fs);
        for (; p < end && is_digit((unsigned char)*p); p++)
            if (*p != '0') t->truncated = true;
        if (p == f0) return 0; /* '.' needs a digit */
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        t->is_int = false;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || !is_digit((unsigned char)*p)) return 0;
        int x = 0;
        while (p < end && is_digit((unsigned char)*p)) {
            if (x < 100000) x = x * 10 + (*p - '0'); /* saturate: 1e100000 is inf anyway */
            p++;
        }
        e += eneg ? -x : x;
    }
    t->mant = m;
    t->exp10 = e;
    return (size_t)(p - s);
}

/* Slow paths: strtod/strtof on a NUL-terminated copy of the token (JSON numbers are a subset of
 * what strtod reads in the C locale; NaN/Infinity never get here). A token of 128 bytes or more
 * is copied to the heap: false when that fails (the caller answers CELER_ERR_NOMEM rather than
 * storing a made-up value). */
static __attribute__((noinline, cold)) bool slow_double(const char *p, size_t len, double *out) {
    char small[128];
    char *buf = len < sizeof small ? small : celer_malloc(len + 1);
    if (!buf) return false;
    memcpy(buf, p, len);
    buf[len] = 0;
    *out = strtod(buf, NULL);
    if (buf != small) free(buf);
    return true;
}

static __attribute__((noinline, cold)) bool slow_float(const char *p, size_t len, float *out) {
    char small[128];
    char *buf = len < sizeof small ? small : celer_malloc(len + 1);
    if (!buf) return false;
    memcpy(buf, p, len);
    buf[len] = 0;
    *out = strtof(buf, NULL);
    if (buf != small) free(buf);
    return true;
}

static inline double tok_special(const numtok *t) {
    if (t->kind == NUM_NAN) return NAN;
    return t->neg ? -INFINITY : INFINITY;
}

/* Exact (strtod-equal) conversion. Fast path (Clinger): a mantissa <= 2^53 and a power of ten
 * <= 10^22 are both exact doubles, so one IEEE multiply/divide rounds correctly. False only when
 * the slow path runs out of memory. */
static inline bool tok_to_double(const numtok *t, const char *p, size_t len, double *out) {
    if (t->kind != NUM_FINITE) {
        *out = tok_special(t);
        return true;
    }
    if (t->mant == 0) {
        *out = t->neg ? -0.0 : 0.0;
        return true;
    }
    if (!t->truncated && t->mant <= (1ull << 53) && t->exp10 >= -22 && t->exp10 <= 22) {
        double d = (double)t->mant;
        d = t->exp10 < 0 ? d / P10[-t->exp10] : d * P10[t->exp10];
        *out = t->neg ? -d : d;
        return true;
    }
    return slow_double(p, len, out);
}

/* Exact (strtof-equal) conversion. The value is computed in double and then rounded to float;
 * that second rounding is wrong only when the double lands on (or, for the inexact path, within
 * the error bound of) a float rounding boundary, where the low 29 bits of the double's mantissa
 * are 0x10000000. Those cases, and anything outside normal float range, go to strtof.
 * - exact path (mant <= 2^53, 0 <= exp10 <= 22): d is the correctly rounded double; only the
 *   exact halfway pattern is ambiguous.
 * - other paths (any 19-digit mantissa, |exp10| <= 70, negative powers by multiplying with a
 *   rounded 10^-k): d carries at most ~4 double ulps of error (mantissa rounding, dropped digits
 *   < 1e-18 relative, an inexact power, one operation), so a distance of more than 16 ulps from
 *   the boundary pattern decides the float safely (about 1 value in 2^24 goes to strtof). */
static inline bool tok_to_float_fast(const numtok *t, float *out) {
    if (t->kind != NUM_FINITE) {
        *out = (float)tok_special(t);
        return true;
    }
    if (t->mant == 0) {
        *out = t->neg ? -0.0f : 0.0f;
        return true;
    }
    int e = t->exp10;
    if (e < -70 || e > 70) return false;
    double d = (double)t->mant * (e < 0 ? P10N[-e] : P10[e]);
    uint64_t bits;
    memcpy(&bits, &d, 8);
    int64_t low = (int64_t)(bits & 0x1fffffffu) - 0x10000000;
    bool exact = !t->truncated && t->mant <= (1ull << 53) && e >= 0 && e <= 22;
    /* exact-path values lie in [1, 9e37]: always normal floats */
    bool ok = exact ? low != 0 : (low > 16 || low < -16) && d > 0x1p-125 && d < (double)FLT_MAX;
    if (!ok) return false;
    float f = (float)d;
    *out = t->neg ? -f : f;
    return true;
}

static inline bool tok_to_float(const numtok *t, const char *p, size_t len, float *out) {
    if (tok_to_float_fast(t, out)) return true;
    return slow_float(p, len, out);
}

size_t celer_json_parse_double(const char *p, const char *end, double *out) {
    numtok t;
    size_t n = scan_number(p, end, &t);
    return n && tok_to_double(&t, p, n, out) ? n : 0;
}

size_t celer_json_parse_float(const char *p, const char *end, float *out) {
    numtok t;
    size_t n = scan_number(p, end, &t);
    return n && tok_to_float(&t, p, n, out) ? n : 0;
}

enum { INT_OK, INT_NOT_INTEGER, INT_RANGE };

/* Integer value of a token as magnitude + sign; exact for any integer up to UINT64_MAX. */
static int tok_to_int(const numtok *t, const char *p, size_t len, uint64_t *mag, bool *neg) {
    *neg = t->neg;
    if (t->kind != NUM_FINITE) return INT_NOT_INTEGER;
    if (t->truncated) {
        if (!t->is_int) return INT_RANGE; /* > 19 significant digits with a fraction/exponent */
        uint64_t m = 0;
        for (size_t i = t->neg; i < len; i++) {
            unsigned d = (unsigned)(p[i] - '0');
            if (m > (UINT64_MAX - d) / 10) return INT_RANGE;
            m = m * 10 + d;
        }
        *mag = m;
        return INT_OK;
    }
    uint64_t m = t->mant;
    int e = t->exp10;
    if (m == 0) {
        *mag = 0;
        *neg = false;
        return INT_OK;
    }
    if (e < -40) return INT_NOT_INTEGER;
    if (e > 20) return INT_RANGE;
    for (; e < 0; e++) {
        if (m % 10) return INT_NOT_INTEGER;
        m /= 10;
    }
    for (; e > 0; e--) {
        if (m > UINT64_MAX / 10) return INT_RANGE;
        m *= 10;
    }
    *mag = m;
    return INT_OK;
}

/* ======================================================================================== */
/* parser                                                                                   */
/* ======================================================================================== */

/* Character classes for the numeric-array scan. */
enum { C_BAD, C_NUM, C_OPEN, C_CLOSE, C_NAN, C_INF };
static const unsigned char NUM_CLASS[256] = {
    ['0'] = C_NUM, ['1'] = C_NUM, ['2'] = C_NUM, ['3'] = C_NUM, ['4'] = C_NUM,  ['5'] = C_NUM,
    ['6'] = C_NUM, ['7'] = C_NUM, ['8'] = C_NUM, ['9'] = C_NUM, ['+'] = C_NUM,  ['-'] = C_NUM,
    ['.'] = C_NUM, ['e'] = C_NUM, ['E'] = C_NUM, [','] = C_NUM, [' '] = C_NUM,  ['\t'] = C_NUM,
    ['\n'] = C_NUM, ['\r'] = C_NUM, ['['] = C_OPEN, [']'] = C_CLOSE, ['N'] = C_NAN, ['I'] = C_INF,
};

typedef struct parser {
    const char *text, *p, *end;
    celer_arena *arena;
    celer_status status;
    int depth;
    size_t n_nodes;
    /* scratch stack of the items of the arrays/objects being parsed (malloc'ed) */
    celer_json *items;
    const char **keys;
    size_t n_items, cap_items;
    /* small-object allocator over arena chunks (8-byte alignment instead of the arena's 64) */
    char *bump;
    size_t bump_used, bump_cap;
    /* arrays known to fail the numeric scan: those still open where the last scan failed */
    const char *fail_open[CELER_JSON_MAX_DEPTH + 1];
    int n_fail;
} parser;

static celer_status perr(parser *ps, const char *at, const char *what) {
    if (!ps->status)
        ps->status = celer_errorf(CELER_ERR_PARSE, "JSON: %s at byte %zu", what, (size_t)(at - ps->text));
    return ps->status;
}

/* The document nests deeper than CELER_JSON_MAX_DEPTH: Triton's words first. */
static celer_status depth_perr(parser *ps, const char *at) {
    if (!ps->status)
        ps->status = celer_errorf(CELER_ERR_PARSE, "JSON nesting depth exceeds maximum allowed limit (%d) at byte %zu",
                                  CELER_JSON_MAX_DEPTH, (size_t)(at - ps->text));
    return ps->status;
}

static void *bump(parser *ps, size_t n, size_t align) {
    size_t off = (ps->bump_used + align - 1) & ~(align - 1);
    if (!ps->bump || off > ps->bump_cap || n > ps->bump_cap - off) {
        size_t sz = n > 16384 ? n : 16384;
        char *b = celer_arena_alloc_uninit(ps->arena, sz); /* each piece is zeroed when handed out */
        if (!b) {
            if (!ps->status) ps->status = CELER_ERR_NOMEM;
            return NULL;
        }
        ps->bump = b;
        ps->bump_cap = sz;
        off = 0;
    }
    ps->bump_used = off + n;
    memset(ps->bump + off, 0, n);
    return ps->bump + off;
}

static inline void skip_ws(parser *ps) {
    while (ps->p < ps->end && is_ws((unsigned char)*ps->p)) ps->p++;
}

static celer_status count_node(parser *ps) {
    if (++ps->n_nodes > JSON_MAX_NODES) {
        if (!ps->status)
            ps->status = celer_errorf(CELER_ERR_LIMIT,
                                      "JSON: more than %u values in one document; send large "
                                      "non-numeric tensors with the binary data extension",
                                      JSON_MAX_NODES);
        return ps->status;
    }
    return CELER_OK;
}

static celer_status push_item(parser *ps, const celer_json *v, const char *key) {
    if (ps->n_items == ps->cap_items) {
        size_t cap = ps->cap_items ? ps->cap_items * 2 : 64;
        celer_json *items = celer_realloc(ps->items, cap * sizeof *items);
        if (!items) return ps->status = celer_errorf(CELER_ERR_NOMEM, "JSON: out of memory");
        ps->items = items;
        const char **keys = celer_realloc(ps->keys, cap * sizeof *keys);
        if (!keys) return ps->status = celer_errorf(CELER_ERR_NOMEM, "JSON: out of memory");
        ps->keys = keys;
        ps->cap_items = cap;
    }
    ps->items[ps->n_items] = *v;
    ps->keys[ps->n_items] = key;
    ps->n_items++;
    return CELER_OK;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(const char *p, const char *end, unsigned *out) {
    if (end - p < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0) return false;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return true;
}

/* Parses a string at ps->p (on the opening quote) into the arena, unescaped and NUL-terminated.
 * Raw bytes >= 0x80 are kept as given; escapes always produce valid UTF-8 (lone surrogates are
 * rejected). */
static celer_status parse_string(parser *ps, const char **out, size_t *out_len) {
    const char *s = ps->p + 1, *q = s, *end = ps->end;
    while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
    if (q < end && *q == '"') { /* no escapes: one copy */
        size_t n = (size_t)(q - s);
        char *d = bump(ps, n + 1, 1);
        if (!d) return ps->status;
        memcpy(d, s, n);
        d[n] = 0;
        *out = d;
        *out_len = n;
        ps->p = q + 1;
        return CELER_OK;
    }
    /* find the closing quote to size the output (escapes only shrink) */
    const char *c = q;
    while (c < end && *c != '"') {
        if ((unsigned char)*c < 0x20) return perr(ps, c, "control character in string");
        c += *c == '\\' ? 2 : 1;
    }
    if (c >= end) return perr(ps, ps->p, "unterminated string");
    char *d = bump(ps, (size_t)(c - s) + 1, 1), *w = d;
    if (!d) return ps->status;
    memcpy(w, s, (size_t)(q - s));
    w += q - s;
    while (q < c) {
        unsigned char ch = (unsigned char)*q;
        if (ch != '\\') {
            *w++ = (char)ch;
            q++;
            continue;
        }
        char e = q[1];
        q += 2;
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            unsigned u;
            if (!read_hex4(q, c, &u)) return perr(ps, q - 2, "bad \\u escape");
            q += 4;
            if (u >= 0xdc00 && u <= 0xdfff) return perr(ps, q - 6, "lone low surrogate in \\u escape");
            if (u >= 0xd800 && u <= 0xdbff) {
                unsigned lo;
                if (c - q < 6 || q[0] != '\\' || q[1] != 'u' || !read_hex4(q + 2, c, &lo) || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return perr(ps, q - 6, "high surrogate not followed by a low surrogate");
                q += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (u < 0x80) {
                *w++ = (char)u;
            } else if (u < 0x800) {
                *w++ = (char)(0xc0 | u >> 6);
                *w++ = (char)(0x80 | (u & 0x3f));
            } else if (u < 0x10000) {
                *w++ = (char)(0xe0 | u >> 12);
                *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
                *w++ = (char)(0x80 | (u & 0x3f));
            } else {
                *w++ = (char)(0xf0 | u >> 18);
                *w++ = (char)(0x80 | ((u >> 12) & 0x3f));
                *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
                *w++ = (char)(0x80 | (u & 0x3f));
            }
            break;
        }
        default: return perr(ps, q - 2, "invalid escape in string");
        }
    }
    *w = 0;
    *out = d;
    *out_len = (size_t)(w - d);
    ps->p = c + 1;
    return CELER_OK;
}

/* Fast scan of a numeric array at ps->p ('['): only allowed characters and bracket balance.
 * Returns the end of the array, or NULL (and records the arrays open at the failure point, which
 * would fail too, so each is scanned once). */
static const char *scan_numeric(parser *ps, const char *p, int max_depth) {
    const char *end = ps->end, *open[CELER_JSON_MAX_DEPTH + 1];
    int depth = 0;
    while (p < end) {
        switch (NUM_CLASS[(unsigned char)*p]) {
        case C_NUM:
            p++;
            while (p < end && NUM_CLASS[(unsigned char)*p] == C_NUM) p++;
            break;
        case C_OPEN:
            if (depth >= max_depth) goto fail;
            open[depth++] = p++;
            break;
        case C_CLOSE:
            p++;
            if (--depth == 0) return p;
            break;
        case C_NAN:
            if (end - p < 3 || memcmp(p, "NaN", 3) != 0) goto fail;
            p += 3;
            break;
        case C_INF:
            if (end - p < 8 || memcmp(p, "Infinity", 8) != 0) goto fail;
            p += 8;
            break;
        default: goto fail;
        }
    }
fail:
    memcpy(ps->fail_open, open, (size_t)depth * sizeof *open);
    ps->n_fail = depth;
    return NULL;
}

static bool known_to_fail(const parser *ps, const char *p) {
    for (int i = 0; i < ps->n_fail; i++)
        if (ps->fail_open[i] == p) return true;
    return false;
}

static celer_status parse_value(parser *ps, celer_json *v);

static celer_status parse_array(parser *ps, celer_json *v) {
    const char *start = ps->p;
    if (ps->depth >= CELER_JSON_MAX_DEPTH) return depth_perr(ps, start);
    /* numeric array? the first leaf (after any '['s) starts a number */
    const char *q = start + 1;
    while (q < ps->end && (is_ws((unsigned char)*q) || *q == '[')) q++;
    if (q < ps->end && (is_digit((unsigned char)*q) || *q == '-' || *q == 'N' || *q == 'I') &&
        !known_to_fail(ps, start)) {
        const char *e = scan_numeric(ps, start, CELER_JSON_MAX_DEPTH - ps->depth);
        if (e) {
            v->type = CELER_JSON_NUMERIC_ARRAY;
            v->raw = start;
            v->raw_len = (size_t)(e - start);
            ps->p = e;
            return CELER_OK;
        }
    }
    ps->depth++;
    ps->p++;
    size_t base = ps->n_items;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            celer_json item;
            CELER_TRY(parse_value(ps, &item));
            CELER_TRY(push_item(ps, &item, NULL));
            skip_ws(ps);
            if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input in array");
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ']') {
                ps->p++;
                break;
            }
            return perr(ps, ps->p, "expected ',' or ']' in array");
        }
    }
    size_t n = ps->n_items - base;
    v->type = CELER_JSON_ARRAY;
    v->n = (int)n;
    if (n) {
        v->items = bump(ps, n * sizeof(celer_json), 8);
        if (!v->items) return ps->status;
        memcpy(v->items, ps->items + base, n * sizeof(celer_json));
    }
    ps->n_items = base;
    v->raw = start;
    v->raw_len = (size_t)(ps->p - start);
    ps->depth--;
    return CELER_OK;
}

static celer_status parse_object(parser *ps, celer_json *v) {
    const char *start = ps->p;
    if (ps->depth >= CELER_JSON_MAX_DEPTH) return depth_perr(ps, start);
    ps->depth++;
    ps->p++;
    size_t base = ps->n_items;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input in object");
            if (*ps->p != '"') return perr(ps, ps->p, "expected a string key in object");
            const char *key;
            size_t key_len;
            CELER_TRY(parse_string(ps, &key, &key_len));
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return perr(ps, ps->p, "expected ':' after object key");
            ps->p++;
            celer_json item;
            CELER_TRY(parse_value(ps, &item));
            CELER_TRY(push_item(ps, &item, key));
            skip_ws(ps);
            if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input in object");
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == '}') {
                ps->p++;
                break;
            }
            return perr(ps, ps->p, "expected ',' or '}' in object");
        }
    }
    size_t n = ps->n_items - base;
    v->type = CELER_JSON_OBJECT;
    v->n = (int)n;
    if (n) {
        v->items = bump(ps, n * sizeof(celer_json), 8);
        v->keys = bump(ps, n * sizeof(char *), 8);
        if (!v->items || !v->keys) return ps->status;
        memcpy(v->items, ps->items + base, n * sizeof(celer_json));
        memcpy(v->keys, ps->keys + base, n * sizeof(char *));
    }
    ps->n_items = base;
    v->raw = start;
    v->raw_len = (size_t)(ps->p - start);
    ps->depth--;
    return CELER_OK;
}

static celer_status parse_value(parser *ps, celer_json *v) {
    memset(v, 0, sizeof *v);
    CELER_TRY(count_node(ps));
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, ps->p, "unexpected end of input, expected a value");
    const char *start = ps->p;
    switch (*ps->p) {
    case '{': return parse_object(ps, v);
    case '[': return parse_array(ps, v);
    case '"':
        v->type = CELER_JSON_STRING;
        CELER_TRY(parse_string(ps, &v->string, &v->string_len));
        break;
    case 't':
        if (ps->end - ps->p < 4 || memcmp(ps->p, "true", 4) != 0) return perr(ps, ps->p, "invalid literal");
        v->type = CELER_JSON_BOOL;
        v->boolean = true;
        ps->p += 4;
        break;
    case 'f':
        if (ps->end - ps->p < 5 || memcmp(ps->p, "false", 5) != 0) return perr(ps, ps->p, "invalid literal");
        v->type = CELER_JSON_BOOL;
        ps->p += 5;
        break;
    case 'n':
        if (ps->end - ps->p < 4 || memcmp(ps->p, "null", 4) != 0) return perr(ps, ps->p, "invalid literal");
        v->type = CELER_JSON_NULL;
        ps->p += 4;
        break;
    default: {
        numtok t;
        size_t n = scan_number(ps->p, ps->end, &t);
        if (!n) return perr(ps, ps->p, "expected a value");
        v->type = CELER_JSON_NUMBER;
        if (!tok_to_double(&t, ps->p, n, &v->number))
            return ps->status = celer_errorf(CELER_ERR_NOMEM, "JSON: out of memory reading a %zu-byte number at byte %zu", n,
                                             (size_t)(ps->p - ps->text));
        ps->p += n;
        break;
    }
    }
    v->raw = start;
    v->raw_len = (size_t)(ps->p - start);
    return CELER_OK;
}

celer_status celer_json_parse(const char *text, size_t len, celer_arena *arena, celer_json **out) {
    parser ps = {.text = text, .p = text, .end = text + len, .arena = arena};
    *out = NULL;
    celer_json root;
    celer_status st = parse_value(&ps, &root);
    if (!st) {
        skip_ws(&ps);
        if (ps.p != ps.end) st = perr(&ps, ps.p, "unexpected text after the JSON value");
    }
    if (!st) {
        celer_json *r = bump(&ps, sizeof root, 8);
        if (!r) {
            st = ps.status;
        } else {
            *r = root;
            *out = r;
        }
    }
    free(ps.items);
    free(ps.keys);
    return st;
}

const celer_json *celer_json_get(const celer_json *obj, const char *key) {
    if (!obj || obj->type != CELER_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

/* ======================================================================================== */
/* tensor decoding                                                                          */
/* ======================================================================================== */

typedef struct dec {
    celer_dtype dtype;
    char *out;
    size_t idx, numel;
    const celer_shape *shape;
    bool exact;  /* celer_json_decode_tensor_exact: nested data must match the shape */
    bool nested; /* exact, and nested: leaves at depth rank, every level as long as its dim; else one flat level */
    const char *what;
    char shape_str[160];
} dec;

static const char *shape_text(dec *c) { return celer_shape_str(c->shape, c->shape_str, sizeof c->shape_str); }

static celer_status elem_error(dec *c, const char *p, size_t len, const char *why) {
    int n = len > 40 ? 40 : (int)len;
    return celer_errorf(CELER_ERR_INVALID, "%s: element %zu ('%.*s%s') %s", c->what, c->idx, n, p,
                        len > 40 ? "..." : "", why);
}

static celer_status store_int(dec *c, const numtok *t, const char *p, size_t len) {
    uint64_t mag;
    bool neg;
    int r = tok_to_int(t, p, len, &mag, &neg);
    if (r == INT_NOT_INTEGER) return elem_error(c, p, len, "is not an integer");
    if (r == INT_OK) {
        uint64_t lim; /* largest magnitude allowed for this sign */
        switch (c->dtype) {
        case CELER_INT8: lim = neg ? 128 : 127; break;
        case CELER_INT16: lim = neg ? 32768 : 32767; break;
        case CELER_INT32: lim = neg ? 2147483648u : 2147483647u; break;
        case CELER_INT64: lim = neg ? 1ull << 63 : (1ull << 63) - 1; break;
        case CELER_UINT8: lim = neg ? 0 : 255; break;
        case CELER_UINT16: lim = neg ? 0 : 65535; break;
        case CELER_UINT32: lim = neg ? 0 : 4294967295u; break;
        case CELER_UINT64: lim = neg ? 0 : UINT64_MAX; break;
        case CELER_BOOL: lim = neg ? 0 : 1; break;
        default: lim = 0; break;
        }
        if (mag <= lim) {
            /* two's complement of the magnitude gives the signed value without overflow */
            uint64_t u = neg ? (uint64_t)0 - mag : mag;
            size_t i = c->idx;
            switch (c->dtype) {
            case CELER_INT8: ((int8_t *)c->out)[i] = (int8_t)u; break;
            case CELER_INT16: ((int16_t *)c->out)[i] = (int16_t)u; break;
            case CELER_INT32: ((int32_t *)c->out)[i] = (int32_t)u; break;
            case CELER_INT64: ((int64_t *)c->out)[i] = (int64_t)u; break;
            case CELER_UINT8:
            case CELER_BOOL: ((uint8_t *)c->out)[i] = (uint8_t)u; break;
            case CELER_UINT16: ((uint16_t *)c->out)[i] = (uint16_t)u; break;
            case CELER_UINT32: ((uint32_t *)c->out)[i] = (uint32_t)u; break;
            case CELER_UINT64: ((uint64_t *)c->out)[i] = u; break;
            default: break;
            }
            return CELER_OK;
        }
    }
    char msg[64];
    snprintf(msg, sizeof msg, "is out of range for %s", c->dtype == CELER_BOOL ? "bool (0 or 1)" : celer_dtype_name(c->dtype));
    return elem_error(c, p, len, msg);
}

/* Parses the number at p and stores it as element c->idx (the caller checked idx < numel). */
static inline __attribute__((always_inline)) celer_status store_number(dec *c, const char *p, const char *end,
                                                                     const char **next) {
    numtok t;
    size_t n = scan_number(p, end, &t);
    if (!n) {
        size_t l = 0;
        while (p + l < end && l < 20 && p[l] != ',' && p[l] != ']') l++;
        return celer_errorf(CELER_ERR_PARSE, "%s: element %zu: invalid number '%.*s'", c->what, c->idx, (int)l, p);
    }
    *next = p + n;
    float f;
    switch (c->dtype) {
    case CELER_FLOAT:
        if (!tok_to_float(&t, p, n, &((float *)c->out)[c->idx])) break;
        return CELER_OK;
    case CELER_DOUBLE:
        if (!tok_to_double(&t, p, n, &((double *)c->out)[c->idx])) break;
        return CELER_OK;
    case CELER_FLOAT16:
        if (!tok_to_float(&t, p, n, &f)) break;
        ((uint16_t *)c->out)[c->idx] = celer_float_to_half(f);
        return CELER_OK;
    case CELER_BFLOAT16:
        if (!tok_to_float(&t, p, n, &f)) break;
        ((uint16_t *)c->out)[c->idx] = celer_float_to_bf16(f);
        return CELER_OK;
    case CELER_STRING: return elem_error(c, p, n, "is a number; BYTES data must be strings");
    default: return store_int(c, &t, p, n);
    }
    return celer_errorf(CELER_ERR_NOMEM, "%s: element %zu: out of memory reading a %zu-byte number", c->what, c->idx, n);
}

static celer_status nest_error(dec *c, int level, size_t got) {
    return celer_errorf(CELER_ERR_SHAPE, "%s: nested data does not match shape %s: dimension %d has %zu elements, expected %lld",
                        c->what, shape_text(c), level, got, (long long)c->shape->dims[level]);
}

static celer_status count_error(dec *c, size_t got) {
    return celer_errorf(CELER_ERR_SHAPE, "%s: shape %s has %zu elements but data has %zu", c->what, shape_text(c), c->numel, got);
}

static celer_status depth_error(dec *c, bool want_array) {
    if (!c->nested)
        return celer_errorf(CELER_ERR_SHAPE, "%s: element %zu is an array; data must be flat or nested exactly as shape %s",
                            c->what, c->idx, shape_text(c));
    return celer_errorf(CELER_ERR_SHAPE, "%s: nested data does not match shape %s: expected %s at element %zu", c->what,
                        shape_text(c), want_array ? "an array" : "a number", c->idx);
}

/* A value of the data at depth CELER_JSON_MAX_DATA_DEPTH (the data itself at 0): where Triton
 * stops, with its words. */
static celer_status data_depth_error(dec *c) {
    return celer_errorf(CELER_ERR_INVALID,
                        "JSON nesting depth exceeds maximum allowed limit (%d): %s: its data nests arrays %d deep "
                        "(at element %zu)",
                        CELER_JSON_MAX_DATA_DEPTH, c->what, CELER_JSON_MAX_DATA_DEPTH, c->idx);
}

/* Decodes the raw text of a numeric array at p ('[') that sits at nesting level `level0`. */
static celer_status decode_raw(dec *c, const char *p, const char *end, int level0) {
    const int rank = c->shape->rank;
    size_t count[CELER_JSON_MAX_DEPTH + 1];
    int depth = level0; /* number of arrays open */
    bool want_value = true, first = true;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (is_ws(ch)) {
            p++;
            continue;
        }
        if (want_value) {
            if (ch == '[') {
                if (depth > CELER_JSON_MAX_DEPTH) return celer_errorf(CELER_ERR_PARSE, "%s: data nested too deeply", c->what);
                if (!c->exact) {
                    if (depth >= CELER_JSON_MAX_DATA_DEPTH) return data_depth_error(c);
                } else if (depth > level0) { /* an element of the enclosing array */
                    if (c->nested ? depth >= rank : true) return depth_error(c, false);
                    count[depth - 1]++;
                    if (count[depth - 1] > (size_t)c->shape->dims[depth - 1]) return nest_error(c, depth - 1, count[depth - 1]);
                }
                count[depth++] = 0;
                p++;
                first = true;
                continue;
            }
            if (ch == ']' && first) goto close;
            /* a number */
            if (!c->exact && depth >= CELER_JSON_MAX_DATA_DEPTH) return data_depth_error(c);
            if (c->nested) {
                if (depth != rank && !(rank == 0 && depth == 1)) return depth_error(c, true);
                if (rank > 0 && ++count[depth - 1] > (size_t)c->shape->dims[depth - 1])
                    return nest_error(c, depth - 1, count[depth - 1]);
            }
            if (c->idx < c->numel) {
                CELER_TRY(store_number(c, p, end, &p));
            } else { /* too many: keep counting for the message */
                numtok t;
                size_t n = scan_number(p, end, &t);
                if (!n) return celer_errorf(CELER_ERR_PARSE, "%s: element %zu: invalid number", c->what, c->idx);
                p += n;
            }
            c->idx++;
            want_value = false;
            first = false;
            continue;
        }
        if (ch == ',') {
            want_value = true;
            p++;
            continue;
        }
        if (ch != ']') return celer_errorf(CELER_ERR_PARSE, "%s: expected ',' or ']' after element %zu", c->what, c->idx);
    close:
        p++;
        depth--;
        if (c->nested && rank > 0 && count[depth] != (size_t)c->shape->dims[depth]) return nest_error(c, depth, count[depth]);
        if (depth == level0) return CELER_OK;
        want_value = false;
        first = false;
    }
    return celer_errorf(CELER_ERR_PARSE, "%s: unterminated array", c->what);
}

static celer_status decode_node(dec *c, const celer_json *v, int level) {
    if (!c->exact && level >= CELER_JSON_MAX_DATA_DEPTH) return data_depth_error(c);
    switch (v->type) {
    case CELER_JSON_NUMERIC_ARRAY:
        if (c->exact && level > 0 && (!c->nested || level >= c->shape->rank)) return depth_error(c, false);
        return decode_raw(c, v->raw, v->raw + v->raw_len, level);
    case CELER_JSON_ARRAY: {
        if (c->exact && level > 0 && (!c->nested || level >= c->shape->rank)) return depth_error(c, false);
        if (c->nested && c->shape->rank > 0 && (size_t)v->n != (size_t)c->shape->dims[level])
            return nest_error(c, level, (size_t)v->n);
        for (int i = 0; i < v->n; i++) CELER_TRY(decode_node(c, &v->items[i], level + 1));
        return CELER_OK;
    }
    default: break;
    }
    /* a leaf */
    int rank = c->shape->rank;
    if (c->nested && level != rank && !(rank == 0 && level == 1)) return depth_error(c, true);
    if (c->idx >= c->numel) { /* too many (flat): count on */
        c->idx++;
        return CELER_OK;
    }
    switch (v->type) {
    case CELER_JSON_NUMBER: {
        const char *next;
        CELER_TRY(store_number(c, v->raw, v->raw + v->raw_len, &next));
        break;
    }
    case CELER_JSON_BOOL:
        if (c->dtype != CELER_BOOL) return elem_error(c, v->raw, v->raw_len, "is a boolean; expected a number");
        ((uint8_t *)c->out)[c->idx] = v->boolean;
        break;
    case CELER_JSON_STRING:
        if (c->dtype != CELER_STRING) return elem_error(c, v->raw, v->raw_len, "is a string; expected a number");
        ((celer_str *)c->out)[c->idx] = (celer_str){v->string, v->string_len}; /* may hold NULs (\u0000) */
        break;
    default: return elem_error(c, v->raw, v->raw_len, "is not a valid tensor element");
    }
    c->idx++;
    return CELER_OK;
}

static celer_status decode_tensor(const celer_json *value, celer_dtype dtype, const celer_shape *shape, void *out,
                                  const char *what, bool exact) {
    dec c = {.dtype = dtype, .out = out, .shape = shape, .exact = exact, .what = what ? what : "tensor"};
    int64_t numel = celer_shape_numel(shape);
    if (numel < 0) return celer_errorf(CELER_ERR_SHAPE, "%s: shape %s is not fully known", c.what, shape_text(&c));
    if (celer_dtype_size(dtype) == 0 || dtype == CELER_COMPLEX64 || dtype == CELER_COMPLEX128)
        return celer_errorf(CELER_ERR_DTYPE, "%s: cannot decode JSON data as %s", c.what, celer_dtype_name(dtype));
    c.numel = (size_t)numel;
    const celer_json *v = value;
    if (!exact) { /* any nesting: the leaves in order */
        CELER_TRY(decode_node(&c, v, 0));
        if (c.idx != c.numel) return count_error(&c, c.idx);
        return CELER_OK;
    }
    /* nested when the first element is itself an array */
    if (v->type == CELER_JSON_NUMERIC_ARRAY) {
        const char *q = v->raw + 1, *e = v->raw + v->raw_len;
        while (q < e && is_ws((unsigned char)*q)) q++;
        c.nested = q < e && *q == '[';
    } else if (v->type == CELER_JSON_ARRAY) {
        c.nested = v->n > 0 && (v->items[0].type == CELER_JSON_ARRAY || v->items[0].type == CELER_JSON_NUMERIC_ARRAY);
    } else { /* a bare scalar: one element */
        if (c.numel != 1) return count_error(&c, 1);
        return decode_node(&c, v, 0);
    }
    if (c.nested && shape->rank < 2)
        return celer_errorf(CELER_ERR_SHAPE, "%s: data is nested deeper than shape %s", c.what, shape_text(&c));
    CELER_TRY(decode_node(&c, v, 0));
    if (c.idx != c.numel) return count_error(&c, c.idx);
    return CELER_OK;
}

/* Strings already live in the arena the document was parsed into: `arena` is not used. */
celer_status celer_json_decode_tensor(const celer_json *value, celer_dtype dtype, const celer_shape *shape, void *out,
                                      celer_arena *arena, const char *what) {
    (void)arena;
    return decode_tensor(value, dtype, shape, out, what, false);
}

celer_status celer_json_decode_tensor_exact(const celer_json *value, celer_dtype dtype, const celer_shape *shape,
                                            void *out, celer_arena *arena, const char *what) {
    (void)arena;
    return decode_tensor(value, dtype, shape, out, what, true);
}

/* ======================================================================================== */
/* writer                                                                                   */
/* ======================================================================================== */

void celer_jbuf_init(celer_jbuf *b, size_t max) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : (size_t)1 << 30;
    b->status = CELER_OK;
}

void celer_jbuf_free(celer_jbuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void celer_jbuf_reset(celer_jbuf *b) {
    b->len = 0;
    b->status = CELER_OK;
    if (b->data) b->data[0] = 0;
}

/* Makes room for n more bytes plus the NUL; returns the write position or NULL (status set). */
static char *jb_reserve(celer_jbuf *b, size_t n) {
    if (b->status) return NULL;
    size_t need;
    if (celer_add_size(b->len, n, &need) || need > b->max) {
        b->status = celer_errorf(CELER_ERR_LIMIT, "response larger than the %zu-byte limit", b->max);
        return NULL;
    }
    if (need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need + 1) cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
        char *d = celer_realloc(b->data, cap);
        if (!d) {
            b->status = celer_errorf(CELER_ERR_NOMEM, "out of memory growing a %zu-byte response", b->len);
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

static inline void jb_commit(celer_jbuf *b, size_t n) {
    b->len += n;
    b->data[b->len] = 0;
}

char *celer_jbuf_reserve(celer_jbuf *b, size_t n) { return jb_reserve(b, n); }

void celer_jbuf_commit(celer_jbuf *b, size_t n) { jb_commit(b, n); }

void celer_jbuf_raw(celer_jbuf *b, const char *s, size_t n) {
    char *w = jb_reserve(b, n);
    if (!w) return;
    if (n) memcpy(w, s, n);
    jb_commit(b, n);
}

/* Length of a valid UTF-8 sequence at s (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

bool celer_json_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        size_t l = utf8_len(p, (size_t)(e - p));
        if (!l) return false;
        p += l;
    }
    return true;
}

/* Escapes quotes, backslashes and control characters; invalid UTF-8 bytes become U+FFFD so the
 * output is always valid JSON. */
void celer_jbuf_strn(celer_jbuf *b, const char *s, size_t n) {
    /* worst case 6 output bytes per input byte, plus the quotes */
    size_t need;
    if (celer_mul_size(n, 6, &need) || celer_add_size(need, 2, &need)) {
        b->status = b->status ? b->status : celer_errorf(CELER_ERR_LIMIT, "string too long");
        return;
    }
    char *w0 = jb_reserve(b, need), *w = w0;
    if (!w) return;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    *w++ = '"';
    while (p < e) {
        const unsigned char *q = p;
        while (q < e && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\') q++;
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        p = q;
        if (p >= e) break;
        unsigned char ch = *p;
        if (ch >= 0x80) {
            size_t l = utf8_len(p, (size_t)(e - p));
            if (l) {
                memcpy(w, p, l);
                w += l;
                p += l;
            } else {
                memcpy(w, "\\ufffd", 6);
                w += 6;
                p++;
            }
            continue;
        }
        p++;
        *w++ = '\\';
        switch (ch) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        default:
            w += snprintf(w, 6, "u%04x", ch);
            break;
        }
    }
    *w++ = '"';
    jb_commit(b, (size_t)(w - w0));
}

void celer_jbuf_str(celer_jbuf *b, const char *s) { celer_jbuf_strn(b, s, strlen(s)); }

/* Writes the decimal digits of v backwards ending at `end`; returns the start. */
static char *u64_digits(uint64_t v, char *end) {
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void celer_jbuf_uint(celer_jbuf *b, uint64_t v) {
    char tmp[24], *s = u64_digits(v, tmp + sizeof tmp);
    celer_jbuf_raw(b, s, (size_t)(tmp + sizeof tmp - s));
}

void celer_jbuf_int(celer_jbuf *b, int64_t v) {
    char tmp[24], *s = u64_digits(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, tmp + sizeof tmp);
    if (v < 0) *--s = '-';
    celer_jbuf_raw(b, s, (size_t)(tmp + sizeof tmp - s));
}

/* ======================================================================================== */
/* shortest round-trip formatting                                                           */
/* ======================================================================================== */

/* Writes digits (n of them, no trailing zeros) with decimal exponent E (value = d.ddd x 10^E).
 * Fixed notation for -5 <= E < 15 (integral values without a fraction: "3", "1500"), otherwise
 * "1.5e20" / "1e-7": always a valid JSON number, at most 1 + 17 + 1 + 5 chars for 17 digits. */
static int emit_decimal(char *buf, bool neg, const char *dig, int n, int E) {
    char *w = buf;
    if (neg) *w++ = '-';
    if (E >= -5 && E < 15) {
        if (E < 0) {
            *w++ = '0';
            *w++ = '.';
            for (int i = 0; i < -E - 1; i++) *w++ = '0';
            memcpy(w, dig, (size_t)n);
            w += n;
        } else if (E >= n - 1) {
            memcpy(w, dig, (size_t)n);
            w += n;
            for (int i = 0; i < E - (n - 1); i++) *w++ = '0';
        } else {
            memcpy(w, dig, (size_t)E + 1);
            w += E + 1;
            *w++ = '.';
            memcpy(w, dig + E + 1, (size_t)(n - E - 1));
            w += n - E - 1;
        }
    } else {
        *w++ = dig[0];
        if (n > 1) {
            *w++ = '.';
            memcpy(w, dig + 1, (size_t)n - 1);
            w += n - 1;
        }
        *w++ = 'e';
        if (E < 0) *w++ = '-';
        char tmp[8], *s = u64_digits((uint64_t)(E < 0 ? -E : E), tmp + sizeof tmp);
        memcpy(w, s, (size_t)(tmp + sizeof tmp - s));
        w += tmp + sizeof tmp - s;
    }
    *w = 0;
    return (int)(w - buf);
}

static int emit_special(char *buf, double v) {
    const char *s = isnan(v) ? "NaN" : v < 0 ? "-Infinity" : "Infinity";
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return (int)n;
}

/* Does the decimal c x 10^e parse (strtof) to exactly `target` (positive, finite)? */
static bool float_roundtrips(uint64_t c, int e, float target) {
    numtok t = {.mant = c, .exp10 = e, .kind = NUM_FINITE, .is_int = false};
    float f;
    if (!tok_to_float_fast(&t, &f)) { /* rare: subnormals, boundary cases */
        char txt[48];
        snprintf(txt, sizeof txt, "%llue%d", (unsigned long long)c, e);
        f = strtof(txt, NULL);
    }
    return f == target;
}

/* Shortest digits for a float, in double arithmetic (53 bits against the float's 24 leave a wide
 * margin). With x = |f| * 10^(8-E) in [1e8, 1e9), the decimals that read back as f are those in
 * [x - wl, x + wh], the half-gaps to the neighbouring floats in the same scale (tens of units
 * wide; x itself carries an error below 1e-6). The shortest form drops the most trailing digits k
 * such that a multiple of 10^k lies in that interval; having one at k+1 implies one at k, so k
 * grows from 0 until none fits. Of the multiples that fit, the one nearest x is taken. A candidate
 * within 1e-3 of an interval end (where the error or the ties-to-even rule of the reader could
 * matter) is confirmed by an exact parse, falling back to a smaller k. */
/* floor/ceil of positive values below 2^53 without a libm call */
static inline double pfloor(double y) { return (double)(int64_t)y; }
static inline double pceil(double y) {
    double t = (double)(int64_t)y;
    return t < y ? t + 1 : t;
}

int celer_json_format_float(float f, char *buf) {
    if (!isfinite(f)) return emit_special(buf, f);
    bool neg = signbit(f);
    if (f == 0) return emit_decimal(buf, neg, "0", 1, 0);
    float af = fabsf(f);
    double v = af;
    uint32_t fbits;
    memcpy(&fbits, &af, 4);
    uint32_t fe = fbits >> 23;
    uint64_t ub = (uint64_t)((fe ? (int)fe : 1) - 150 + 1023) << 52; /* one float ulp, as a double */
    double ulp;
    memcpy(&ulp, &ub, 8);
    /* below a power of two the gap is half as wide (not below the smallest normal) */
    double wh = ulp / 2, wl = (fbits & 0x7fffff) == 0 && fe > 1 ? ulp / 4 : ulp / 2;
    uint64_t dbits;
    memcpy(&dbits, &v, 8);
    int e2 = (int)(dbits >> 52) - 1023; /* floor(log2 v) */
    int E = (e2 * 78913) >> 18; /* floor(e2 * log10(2)) = floor(log10 v) or one less */
    double x = 8 - E >= 0 ? v * P10[8 - E] : v / P10[E - 8];
    if (x >= 1e9) {
        E++;
        x = 8 - E >= 0 ? v * P10[8 - E] : v / P10[E - 8];
    }
    double scale_w = 8 - E >= 0 ? P10[8 - E] : 1 / P10[E - 8];
    double xl = x - wl * scale_w, xh = x + wh * scale_w;
    double xl_wide = xl - 1e-3, xh_wide = xh + 1e-3; /* let boundary cases reach the exact check */
    int k = 0;
    while (k < 9 && pceil(xl_wide / P10[k + 1]) <= pfloor(xh_wide / P10[k + 1])) k++;
    uint64_t c = 0;
    int e = 0;
    for (; k >= 0; k--) {
        double m = P10[k], lo = pceil(xl_wide / m), hi = pfloor(xh_wide / m), r = pfloor(x / m + 0.5);
        if (r < lo) r = lo;
        if (r > hi) r = hi;
        if (lo > hi) continue;
        c = (uint64_t)r;
        e = E - 8 + k;
        if (r * m - xl > 1e-3 && xh - r * m > 1e-3) break;
        if (float_roundtrips(c, e, af)) break;
        if (r + 1 <= hi && float_roundtrips(c + 1, e, af)) {
            c++;
            break;
        }
        if (r - 1 >= lo && float_roundtrips(c - 1, e, af)) {
            c--;
            break;
        }
    }
    if (k < 0) { /* cannot happen; be safe anyway */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.8e", v);
        c = 0;
        for (const char *s = tmp; *s != 'e'; s++)
            if (is_digit((unsigned char)*s)) c = c * 10 + (uint64_t)(*s - '0');
        e = atoi(strchr(tmp, 'e') + 1) - 8;
    }
    /* c may have a digit more or less than planned: the first digit's exponent follows from its
     * length */
    char tmp[24], *s = u64_digits(c, tmp + sizeof tmp);
    int n = (int)(tmp + sizeof tmp - s);
    int cE = e + n - 1;
    while (n > 1 && s[n - 1] == '0') n--;
    return emit_decimal(buf, neg, s, n, cE);
}

/* Doubles: glibc's printf rounds exactly, so binary-search the precision with "%.*e" and check
 * each candidate with strtod; at powers of two, where the interval above is wider, also try the
 * next decimal up. Slower than the float path (~1 us), which is fine off the FP32 hot path. */
static bool double_try(double v, int p, bool pow2, char *dig, int *E_out) {
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
    int n = 0;
    const char *s = tmp;
    for (; *s != 'e'; s++)
        if (is_digit((unsigned char)*s)) dig[n++] = *s;
    int E = atoi(s + 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        char txt[48];
        snprintf(txt, sizeof txt, "%.*se%d", n, dig, E - n + 1);
        if (strtod(txt, NULL) == v) {
            *E_out = E;
            return true;
        }
        if (!pow2 || attempt) break;
        /* next p-digit decimal up */
        int i = n - 1;
        while (i >= 0 && dig[i] == '9') dig[i--] = '0';
        if (i < 0) {
            dig[0] = '1'; /* 99.9 -> 100: same digits count after dropping a trailing zero */
            E++;
        } else {
            dig[i]++;
        }
    }
    return false;
}

int celer_json_format_double(double d, char *buf) {
    if (!isfinite(d)) return emit_special(buf, d);
    bool neg = signbit(d);
    if (d == 0) return emit_decimal(buf, neg, "0", 1, 0);
    double v = fabs(d);
    uint64_t bits;
    memcpy(&bits, &v, 8);
    bool pow2 = (bits & ((1ull << 52) - 1)) == 0 && (bits >> 52) > 1;
    char dig[24], best[24];
    int E = 0, bestE = 0, lo = 1, hi = 17;
    double_try(v, 17, false, best, &bestE);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (double_try(v, mid, pow2, dig, &E)) {
            hi = mid;
            memcpy(best, dig, (size_t)mid);
            bestE = E;
        } else {
            lo = mid + 1;
        }
    }
    int n = hi;
    while (n > 1 && best[n - 1] == '0') n--;
    return emit_decimal(buf, neg, best, n, bestE);
}

void celer_jbuf_double(celer_jbuf *b, double v) {
    char *w = jb_reserve(b, 32);
    if (!w) return;
    jb_commit(b, (size_t)celer_json_format_double(v, w));
}

void celer_jbuf_tensor_data(celer_jbuf *b, const celer_tensor *t) {
    int64_t numel = celer_shape_numel(&t->shape);
    if (numel < 0) {
        if (!b->status) b->status = celer_errorf(CELER_ERR_SHAPE, "cannot write a tensor of unknown shape");
        return;
    }
    size_t n = (size_t)numel;
    celer_jbuf_raw(b, "[", 1);
    const void *d = t->data;
    for (size_t i = 0; i < n && !b->status; i++) {
        if (t->dtype == CELER_STRING) {
            /* a JSON string carries text: bytes that are not UTF-8 would come back as U+FFFD */
            celer_str s = ((const celer_str *)d)[i];
            if (!celer_json_utf8_valid(s.data, s.len)) {
                b->status = celer_errorf(CELER_ERR_UNSUPPORTED,
                                         "BYTES element %zu is not UTF-8 text, which JSON cannot carry: ask for this "
                                         "output in binary form (KServe v2 parameters.binary_data)", i);
                return;
            }
            if (i) celer_jbuf_raw(b, ",", 1);
            celer_jbuf_strn(b, s.data, s.len); /* NUL and control bytes as \u00XX */
            continue;
        }
        char *w = jb_reserve(b, 64);
        if (!w) return;
        char *w0 = w;
        if (i) *w++ = ',';
        switch (t->dtype) {
        case CELER_FLOAT: w += celer_json_format_float(((const float *)d)[i], w); break;
        case CELER_DOUBLE: w += celer_json_format_double(((const double *)d)[i], w); break;
        case CELER_FLOAT16: w += celer_json_format_float(celer_half_to_float(((const uint16_t *)d)[i]), w); break;
        case CELER_BFLOAT16: w += celer_json_format_float(celer_bf16_to_float(((const uint16_t *)d)[i]), w); break;
        case CELER_BOOL:
            memcpy(w, ((const uint8_t *)d)[i] ? "true" : "false", 5);
            w += ((const uint8_t *)d)[i] ? 4 : 5;
            break;
        case CELER_COMPLEX64: /* not a KServe type; written as interleaved re, im */
            w += celer_json_format_float(((const float *)d)[2 * i], w);
            *w++ = ',';
            w += celer_json_format_float(((const float *)d)[2 * i + 1], w);
            break;
        case CELER_COMPLEX128:
            w += celer_json_format_double(((const double *)d)[2 * i], w);
            *w++ = ',';
            w += celer_json_format_double(((const double *)d)[2 * i + 1], w);
            break;
        default: {
            int64_t s = 0;
            uint64_t u = 0;
            bool is_unsigned = false;
            switch (t->dtype) {
            case CELER_INT8: s = ((const int8_t *)d)[i]; break;
            case CELER_INT16: s = ((const int16_t *)d)[i]; break;
            case CELER_INT32: s = ((const int32_t *)d)[i]; break;
            case CELER_INT64: s = ((const int64_t *)d)[i]; break;
            case CELER_UINT8: s = ((const uint8_t *)d)[i]; break;
            case CELER_UINT16: s = ((const uint16_t *)d)[i]; break;
            case CELER_UINT32: s = ((const uint32_t *)d)[i]; break;
            case CELER_UINT64: u = ((const uint64_t *)d)[i], is_unsigned = true; break;
            default:
                b->status = celer_errorf(CELER_ERR_DTYPE, "cannot write %s tensors as JSON", celer_dtype_name(t->dtype));
                return;
            }
            char tmp[24], *p = u64_digits(is_unsigned ? u : s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s, tmp + sizeof tmp);
            if (!is_unsigned && s < 0) *--p = '-';
            memcpy(w, p, (size_t)(tmp + sizeof tmp - p));
            w += tmp + sizeof tmp - p;
            break;
        }
        }
        jb_commit(b, (size_t)(w - w0));
    }
    celer_jbuf_raw(b, "]", 1);
}
