/* Model configuration: a parser for the protobuf text format Triton's config.pbtxt is written in
 * (first into a small generic tree, so unknown fields of any shape are skipped the same way),
 * mapping of the ModelConfig fields celer uses, completion from the ONNX model, the JSON and
 * protobuf forms, and the repository layout on disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/grpc_codec.h"

/* Caps on hostile input. Triton configs are a few KiB with nesting depth ~5. */
#define CFG_MAX_TEXT ((size_t)4 << 20)
#define CFG_MAX_DEPTH 32
#define CFG_MAX_NODES 100000
#define CFG_MAX_STRING 65536
#define CFG_MAX_PARAMS 256
#define CFG_MAX_BATCH 65536
#define CFG_MAX_INSTANCES 65536
#define CFG_MAX_MICROS INT64_C(1000000000000) /* 11.6 days: times * 1000 stay far from overflow */
#define REPO_MAX_ENTRIES 65536                /* models per repository, files per folder tallied */

/* ------------------------------------------------------------------------------------------ */
/* Lexer                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef enum tok_kind { T_EOF, T_IDENT, T_NUMBER, T_STRING, T_PUNCT } tok_kind;

typedef struct token {
    tok_kind kind;
    const char *p; /* source span (strings include their quotes) */
    size_t n;
    int line, col;
} token;

/* A parsed field: a scalar (ident, number or decoded string) or a message with children. An
 * empty list `f: []` leaves one node with `empty_list` set so the field still counts as given. */
typedef struct pnode pnode;
struct pnode {
    const char *name;
    size_t name_len;
    int line, col; /* of the value (the field name for empty lists) */
    bool is_msg, empty_list;
    tok_kind kind;    /* scalars: T_IDENT, T_NUMBER or T_STRING */
    const char *text; /* ident/number span, or the decoded string (NUL-terminated) */
    size_t len;
    bool json;        /* from a JSON config: a string may spell an enum or a 64-bit integer (protobuf's JSON
                         mapping), and there is no line or column (line 0) */
    pnode *child, *tail, *next;
};

typedef struct parser {
    const char *text, *end, *cur, *line_start;
    int line;
    const char *path;
    token tok;
    celer_arena *tmp;
    pnode *pool; /* nodes are carved from chunks: one arena allocation per 256 */
    int pool_left, n_nodes;
} parser;

static celer_status perr(const parser *ps, int line, int col, celer_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static celer_status perr(const parser *ps, int line, int col, celer_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return celer_errorf(st, "%s:%d:%d: %s", ps->path, line, col, msg);
}

/* Human description of a token for "expected X, got Y". */
static const char *tok_desc(const token *t, char *buf, size_t cap) {
    switch (t->kind) {
    case T_EOF: return "end of file";
    case T_STRING: return "a string";
    case T_PUNCT: snprintf(buf, cap, "'%c'", t->p[0]); return buf;
    default: snprintf(buf, cap, "'%.*s'", (int)CELER_MIN(t->n, 40), t->p); return buf;
    }
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_ident_char(int c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static celer_status lex_next(parser *ps) {
    const char *p = ps->cur, *end = ps->end;
    for (;;) { /* whitespace and # comments */
        if (p < end && *p == '\n') {
            p++;
            ps->line++;
            ps->line_start = p;
        } else if (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v')) {
            p++;
        } else if (p < end && *p == '#') {
            while (p < end && *p != '\n') p++;
        } else {
            break;
        }
    }
    token *t = &ps->tok;
    t->p = p;
    t->line = ps->line;
    t->col = (int)(p - ps->line_start) + 1;
    if (p >= end) {
        t->kind = T_EOF;
        t->n = 0;
        ps->cur = p;
        return CELER_OK;
    }
    unsigned char c = (unsigned char)*p;
    const char *q = p;
    if (is_ident_start(c)) {
        t->kind = T_IDENT;
        while (q < end && is_ident_char(*q)) q++;
    } else if (is_digit(c) || (c == '-' && q + 1 < end && (is_digit(q[1]) || q[1] == '.' || is_ident_start(q[1]))) ||
               (c == '.' && q + 1 < end && is_digit(q[1]))) {
        /* Numbers and signed identifiers (-inf); the value is checked when it is converted. */
        t->kind = T_NUMBER;
        q++;
        while (q < end) {
            if (is_ident_char(*q) || *q == '.') {
                q++;
            } else if ((*q == '-' || *q == '+') && (q[-1] == 'e' || q[-1] == 'E') &&
                       !(p[0] == '0' && p + 1 < end && (p[1] == 'x' || p[1] == 'X'))) {
                q++;
            } else {
                break;
            }
        }
    } else if (c == '"' || c == '\'') {
        t->kind = T_STRING;
        q++;
        for (;;) {
            if (q >= end || *q == '\n') return perr(ps, t->line, t->col, CELER_ERR_PARSE, "unterminated string");
            if (*q == (char)c) break;
            if (*q == '\\' && (q + 1 >= end || q[1] == '\n'))
                return perr(ps, t->line, t->col, CELER_ERR_PARSE, "unterminated string");
            q += *q == '\\' ? 2 : 1;
        }
        q++;
        if ((size_t)(q - p) > CFG_MAX_STRING + 2)
            return perr(ps, t->line, t->col, CELER_ERR_LIMIT, "string longer than %d bytes", CFG_MAX_STRING);
    } else if (strchr("{}[]<>:,;", c) && c) {
        t->kind = T_PUNCT;
        q++;
    } else if (c >= 0x21 && c < 0x7f) {
        return perr(ps, t->line, t->col, CELER_ERR_PARSE, "unexpected character '%c'", c);
    } else {
        return perr(ps, t->line, t->col, CELER_ERR_PARSE, "unexpected byte 0x%02x", c);
    }
    t->n = (size_t)(q - p);
    ps->cur = q;
    return CELER_OK;
}

static bool tok_is(const parser *ps, char c) { return ps->tok.kind == T_PUNCT && ps->tok.p[0] == c; }

static pnode *new_node(parser *ps) {
    if (ps->n_nodes >= CFG_MAX_NODES) return NULL;
    if (ps->pool_left == 0) {
        ps->pool = celer_arena_alloc(ps->tmp, 256 * sizeof(pnode));
        if (!ps->pool) return NULL;
        ps->pool_left = 256;
    }
    ps->pool_left--;
    ps->n_nodes++;
    return ps->pool++;
}

static int hex_val(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *d, uint32_t cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static const char k_simple_escapes[] = "n\nt\tr\r\\\\'\'\"\"a\ab\bf\fv\v??";

/* Appends the decoded content of string token `t` to `dst` (room: the token's length, which an
 * escape never exceeds) and advances *len. */
static celer_status unescape(const parser *ps, const token *t, char *dst, size_t *len) {
    const char *p = t->p + 1, *end = t->p + t->n - 1;
    size_t n = *len;
    while (p < end) {
        int col = t->col + (int)(p - t->p);
        if (*p == 0) return perr(ps, t->line, col, CELER_ERR_PARSE, "strings may not contain NUL");
        if (*p != '\\') {
            dst[n++] = *p++;
            continue;
        }
        p++; /* the lexer guarantees a character after a backslash inside the quotes */
        const char *e = strchr(k_simple_escapes, *p);
        uint32_t v;
        if (*p && e && ((e - k_simple_escapes) % 2) == 0) {
            dst[n++] = e[1];
            p++;
            continue;
        } else if (*p >= '0' && *p <= '7') {
            v = 0;
            for (int k = 0; k < 3 && p < end && *p >= '0' && *p <= '7'; k++) v = v * 8 + (uint32_t)(*p++ - '0');
            if (v > 255) return perr(ps, t->line, col, CELER_ERR_PARSE, "octal escape above \\377");
        } else if (*p == 'x' || *p == 'X') {
            p++;
            v = 0;
            int k = 0;
            for (; k < 2 && p < end && hex_val(*p) >= 0; k++) v = v * 16 + (uint32_t)hex_val(*p++);
            if (!k) return perr(ps, t->line, col, CELER_ERR_PARSE, "\\x escape without hex digits");
        } else if (*p == 'u' || *p == 'U') {
            int digits = *p == 'u' ? 4 : 8;
            p++;
            v = 0;
            for (int k = 0; k < digits; k++, p++) {
                if (p >= end || hex_val(*p) < 0)
                    return perr(ps, t->line, col, CELER_ERR_PARSE, "\\%c escape needs %d hex digits",
                                digits == 4 ? 'u' : 'U', digits);
                v = v * 16 + (uint32_t)hex_val(*p);
            }
            if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
                return perr(ps, t->line, col, CELER_ERR_PARSE, "invalid code point U+%04X in escape", v);
            n += put_utf8(dst + n, v);
            continue;
        } else {
            return perr(ps, t->line, col, CELER_ERR_PARSE, "unknown escape '\\%c'", *p >= 0x20 && *p < 0x7f ? *p : '?');
        }
        if (v == 0) return perr(ps, t->line, col, CELER_ERR_PARSE, "strings may not contain NUL");
        dst[n++] = (char)v;
    }
    *len = n;
    return CELER_OK;
}

/* A scalar value at the current token (adjacent strings concatenate, as in protobuf). */
static celer_status parse_scalar(parser *ps, pnode *n) {
    token *t = &ps->tok;
    n->line = t->line;
    n->col = t->col;
    n->kind = t->kind;
    if (t->kind == T_IDENT || t->kind == T_NUMBER) {
        n->text = t->p;
        n->len = t->n;
        return lex_next(ps);
    }
    /* Strings: decode into a buffer sized by the sum of the raw spans. */
    const char *save_cur = ps->cur, *save_ls = ps->line_start;
    int save_line = ps->line;
    token first = *t;
    size_t total = 0;
    while (t->kind == T_STRING) {
        total += t->n;
        if (total > CFG_MAX_STRING)
            return perr(ps, first.line, first.col, CELER_ERR_LIMIT, "string longer than %d bytes", CFG_MAX_STRING);
        CELER_TRY(lex_next(ps));
    }
    char *buf = celer_arena_alloc(ps->tmp, total + 1);
    if (!buf) return celer_error_wrap(CELER_ERR_NOMEM, "%s", ps->path);
    /* Second pass over the same tokens, decoding. */
    ps->cur = save_cur;
    ps->line_start = save_ls;
    ps->line = save_line;
    *t = first;
    size_t len = 0;
    while (t->kind == T_STRING) {
        CELER_TRY(unescape(ps, t, buf, &len));
        CELER_TRY(lex_next(ps));
    }
    buf[len] = 0;
    n->text = buf;
    n->len = len;
    return CELER_OK;
}

static void append_child(pnode *parent, pnode *n) {
    if (parent->tail)
        parent->tail->next = n;
    else
        parent->child = n;
    parent->tail = n;
}

static celer_status parse_fields(parser *ps, pnode *msg, int depth, char close, const token *open);

/* One value of field `name` (a message or, after a colon, a scalar). */
static celer_status parse_value(parser *ps, pnode *parent, const token *name, bool colon, int depth) {
    char b[64];
    pnode *n = new_node(ps);
    if (!n) {
        if (ps->n_nodes >= CFG_MAX_NODES)
            return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_LIMIT, "more than %d fields", CFG_MAX_NODES);
        return celer_error_wrap(CELER_ERR_NOMEM, "%s", ps->path);
    }
    n->name = name->p;
    n->name_len = name->n;
    if (tok_is(ps, '{') || tok_is(ps, '<')) {
        if (depth >= CFG_MAX_DEPTH)
            return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_LIMIT, "messages nested deeper than %d",
                        CFG_MAX_DEPTH);
        token open = ps->tok;
        n->is_msg = true;
        n->line = open.line;
        n->col = open.col;
        CELER_TRY(lex_next(ps));
        CELER_TRY(parse_fields(ps, n, depth + 1, open.p[0] == '{' ? '}' : '>', &open));
    } else if (ps->tok.kind == T_IDENT || ps->tok.kind == T_NUMBER || ps->tok.kind == T_STRING) {
        if (!colon)
            return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_PARSE, "expected ':' between '%.*s' and its value",
                        (int)name->n, name->p);
        CELER_TRY(parse_scalar(ps, n));
    } else {
        return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_PARSE, "expected a value for '%.*s', got %s", (int)name->n,
                    name->p, tok_desc(&ps->tok, b, sizeof b));
    }
    append_child(parent, n);
    return CELER_OK;
}

/* Fields until `close` ('}' or '>'), or until end of file at the top level (close 0). */
static celer_status parse_fields(parser *ps, pnode *msg, int depth, char close, const token *open) {
    char b[64];
    for (;;) {
        if (ps->tok.kind == T_EOF) {
            if (!close) return CELER_OK;
            return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_PARSE,
                        "expected '%c' to close '%.*s' opened at %d:%d, got end of file", close,
                        (int)CELER_MIN(msg->name_len, 64), msg->name, open->line, open->col);
        }
        if (close && tok_is(ps, close)) return lex_next(ps);
        if (ps->tok.kind != T_IDENT)
            return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_PARSE, "expected a field name%s%s, got %s",
                        close ? " or " : "",
                        close == '}'   ? "'}'"
                        : close == '>' ? "'>'"
                                       : "",
                        tok_desc(&ps->tok, b, sizeof b));
        token name = ps->tok;
        CELER_TRY(lex_next(ps));
        bool colon = tok_is(ps, ':');
        if (colon) CELER_TRY(lex_next(ps));
        if (tok_is(ps, '[')) {
            token lb = ps->tok;
            CELER_TRY(lex_next(ps));
            if (tok_is(ps, ']')) {
                pnode *n = new_node(ps);
                if (!n) return perr(ps, lb.line, lb.col, CELER_ERR_LIMIT, "more than %d fields", CFG_MAX_NODES);
                n->name = name.p;
                n->name_len = name.n;
                n->line = name.line;
                n->col = name.col;
                n->empty_list = true;
                append_child(msg, n);
                CELER_TRY(lex_next(ps));
            } else {
                for (;;) {
                    CELER_TRY(parse_value(ps, msg, &name, colon, depth));
                    if (tok_is(ps, ',')) {
                        CELER_TRY(lex_next(ps));
                    } else if (tok_is(ps, ']')) {
                        CELER_TRY(lex_next(ps));
                        break;
                    } else {
                        return perr(ps, ps->tok.line, ps->tok.col, CELER_ERR_PARSE,
                                    "expected ',' or ']' in the list '%.*s' opened at %d:%d, got %s", (int)name.n,
                                    name.p, lb.line, lb.col, tok_desc(&ps->tok, b, sizeof b));
                    }
                }
            }
        } else {
            CELER_TRY(parse_value(ps, msg, &name, colon, depth));
        }
        if (tok_is(ps, ',') || tok_is(ps, ';')) CELER_TRY(lex_next(ps));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Mapping the tree to celer_model_config                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct mapper {
    const char *path;
    celer_arena *dst;
} mapper;

static celer_status merr(const mapper *m, const pnode *n, celer_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static celer_status merr(const mapper *m, const pnode *n, celer_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!n->line) return celer_errorf(st, "%s: %s", m->path, msg);
    return celer_errorf(st, "%s:%d:%d: %s", m->path, n->line, n->col, msg);
}

static bool is(const pnode *n, const char *name) {
    size_t l = strlen(name);
    return n->name_len == l && memcmp(n->name, name, l) == 0;
}

static const char *value_desc(const pnode *n, char *buf, size_t cap) {
    if (n->is_msg) return "a message";
    if (n->empty_list) return "an empty list";
    if (n->kind == T_STRING) {
        snprintf(buf, cap, "\"%.*s\"", (int)CELER_MIN(n->len, 40), n->text);
        return buf;
    }
    snprintf(buf, cap, "%.*s", (int)CELER_MIN(n->len, 40), n->text);
    return buf;
}

/* Fields that are not `repeated` in ModelConfig may appear once, as protobuf requires. */
static celer_status check_singular(const mapper *m, const pnode *msg, const char *const *names, const char *what) {
    for (const char *const *nm = names; *nm; nm++) {
        const pnode *first = NULL;
        for (const pnode *c = msg->child; c; c = c->next) {
            if (!is(c, *nm)) continue;
            if (first && !first->line)
                return merr(m, c, CELER_ERR_INVALID, "%s%s'%s' is given twice", what, *what ? ": " : "", *nm);
            if (first)
                return merr(m, c, CELER_ERR_INVALID, "%s%s'%s' is given twice (first at %d:%d)", what,
                            *what ? ": " : "", *nm, first->line, first->col);
            first = c;
        }
    }
    return CELER_OK;
}

static celer_status want_msg(const mapper *m, const pnode *n, const char *what) {
    char b[64];
    if (n->is_msg) return CELER_OK;
    return merr(m, n, CELER_ERR_INVALID, "%s: expected a message { ... }, got %s", what, value_desc(n, b, sizeof b));
}

static celer_status want_scalar(const mapper *m, const pnode *n, const char *what, tok_kind kind,
                                const char *kind_name) {
    char b[64];
    if (!n->is_msg && !n->empty_list && n->kind == kind) return CELER_OK;
    if (!n->is_msg && !n->empty_list && n->json && kind == T_NUMBER && n->kind == T_STRING)
        return CELER_OK; /* JSON writes 64-bit integers as strings */
    return merr(m, n, CELER_ERR_INVALID, "%s: expected %s, got %s", what, kind_name, value_desc(n, b, sizeof b));
}

static bool parse_int_text(const char *p, size_t n, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    if (i < n && p[i] == '-') neg = true, i++;
    if (i >= n) return false;
    unsigned base = 10;
    if (p[i] == '0' && i + 1 < n && (p[i + 1] == 'x' || p[i + 1] == 'X')) {
        base = 16;
        i += 2;
        if (i >= n) return false;
    } else if (p[i] == '0' && i + 1 < n) {
        base = 8; /* protobuf text format: a leading 0 is octal */
        i++;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        int d = hex_val(p[i]);
        if (d < 0 || (unsigned)d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / base) return false;
        v = v * base + (uint64_t)d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

/* A JSON integer (or the string protobuf's JSON mapping writes a 64-bit one as): decimal only. */
static bool json_int(const char *p, size_t n, int64_t *out) {
    bool neg = n && p[0] == '-';
    if (n == (size_t)neg) return false;
    uint64_t v = 0;
    for (size_t i = neg; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static celer_status get_int(const mapper *m, const pnode *n, const char *what, int64_t lo, int64_t hi, int64_t *out) {
    char b[64];
    CELER_TRY(want_scalar(m, n, what, T_NUMBER, "an integer"));
    int64_t v;
    if (!(n->json ? json_int(n->text, n->len, &v) : parse_int_text(n->text, n->len, &v)))
        return merr(m, n, CELER_ERR_INVALID, "%s: expected an integer, got %s", what, value_desc(n, b, sizeof b));
    if (v < lo || v > hi)
        return merr(m, n, CELER_ERR_INVALID, "%s: %lld is out of range [%lld, %lld]", what, (long long)v, (long long)lo,
                    (long long)hi);
    *out = v;
    return CELER_OK;
}

static celer_status get_int32(const mapper *m, const pnode *n, const char *what, int64_t lo, int64_t hi, int *out) {
    int64_t v;
    CELER_TRY(get_int(m, n, what, lo, hi, &v));
    *out = (int)v;
    return CELER_OK;
}

static celer_status get_bool(const mapper *m, const pnode *n, const char *what, bool *out) {
    static const char *const t[] = {"true", "True", "t", "1"}, *const f[] = {"false", "False", "f", "0"};
    char b[64];
    if (!n->is_msg && !n->empty_list && n->kind != T_STRING) {
        for (size_t i = 0; i < CELER_ARRAY_LEN(t); i++) {
            if (n->len == strlen(t[i]) && !memcmp(n->text, t[i], n->len)) return *out = true, CELER_OK;
            if (n->len == strlen(f[i]) && !memcmp(n->text, f[i], n->len)) return *out = false, CELER_OK;
        }
    }
    return merr(m, n, CELER_ERR_INVALID, "%s: expected true or false, got %s", what, value_desc(n, b, sizeof b));
}

static celer_status get_str(const mapper *m, const pnode *n, const char *what, const char **out) {
    CELER_TRY(want_scalar(m, n, what, T_STRING, "a quoted string"));
    char *s = celer_arena_strndup(m->dst, n->text, n->len);
    if (!s) return celer_error_wrap(CELER_ERR_NOMEM, "%s", m->path);
    *out = s;
    return CELER_OK;
}

/* An enum given by name or by number; `names` is indexed by the enum's number. */
static celer_status get_enum(const mapper *m, const pnode *n, const char *what, const char *const *names, int count,
                             int *out) {
    char b[64];
    if (!n->is_msg && !n->empty_list && (n->kind == T_IDENT || (n->json && n->kind == T_STRING))) {
        /* JSON: the name as a string, in any case (Triton parses it case-insensitively) */
        for (int i = 0; i < count; i++)
            if (names[i] && n->len == strlen(names[i]) &&
                (n->json ? !strncasecmp(n->text, names[i], n->len) : !memcmp(n->text, names[i], n->len)))
                return *out = i, CELER_OK;
    } else if (!n->is_msg && !n->empty_list && n->kind == T_NUMBER) {
        int64_t v;
        if (parse_int_text(n->text, n->len, &v) && v >= 0 && v < count && names[v]) return *out = (int)v, CELER_OK;
    }
    char list[256];
    size_t k = 0;
    list[0] = 0;
    for (int i = 0; i < count && k < sizeof list; i++)
        if (names[i]) k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? ", " : "", names[i]);
    return merr(m, n, CELER_ERR_INVALID, "%s: unknown value %s (expected one of %s)", what, value_desc(n, b, sizeof b),
                list);
}

/* Triton's DataType enum, indexed by its number, and the celer dtype of each. */
static const char *const k_type_names[] = {
    "TYPE_INVALID", "TYPE_BOOL",  "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8", "TYPE_INT16",
    "TYPE_INT32",   "TYPE_INT64", "TYPE_FP16",  "TYPE_FP32",   "TYPE_FP64",   "TYPE_STRING", "TYPE_BF16",
};
static const celer_dtype k_type_dtypes[] = {
    CELER_UNDEFINED, CELER_BOOL,  CELER_UINT8,   CELER_UINT16, CELER_UINT32, CELER_UINT64, CELER_INT8,     CELER_INT16,
    CELER_INT32,     CELER_INT64, CELER_FLOAT16, CELER_FLOAT,  CELER_DOUBLE, CELER_STRING, CELER_BFLOAT16,
};
static const char *const k_kind_names[] = {"KIND_AUTO", "KIND_GPU", "KIND_CPU", "KIND_MODEL"};
static const char *const k_timeout_actions[] = {"REJECT", "DELAY"};

/* The DataType number of a dtype (TYPE_FP32 = 11); 0, TYPE_INVALID, when the protocol has no such
 * type (complex numbers). */
static int triton_type_number(celer_dtype dt) {
    for (size_t i = 1; i < CELER_ARRAY_LEN(k_type_dtypes); i++)
        if (k_type_dtypes[i] == dt) return (int)i;
    return 0;
}

/* "TYPE_FP32" for a dtype; NULL when the protocol has no such type. */
static const char *triton_type(celer_dtype dt) {
    int i = triton_type_number(dt);
    return i ? k_type_names[i] : NULL;
}

/* A list of dims: -1 or >= 1, at most CELER_MAX_RANK. Every node named `field` in `msg`. */
static celer_status get_dims(const mapper *m, const pnode *msg, const char *field, const char *what, int *rank,
                             int64_t *dims) {
    char w[300];
    snprintf(w, sizeof w, "%s %s", what, field);
    *rank = -1;
    for (const pnode *c = msg->child; c; c = c->next) {
        if (!is(c, field)) continue;
        if (*rank < 0) *rank = 0;
        if (c->empty_list) continue;
        if (*rank >= CELER_MAX_RANK) return merr(m, c, CELER_ERR_LIMIT, "%s: more than %d dims", w, CELER_MAX_RANK);
        int64_t v;
        CELER_TRY(get_int(m, c, w, -1, INT64_MAX, &v));
        if (v == 0) return merr(m, c, CELER_ERR_INVALID, "%s: a dim must be >= 1, or -1 for a variable-size dim", w);
        dims[(*rank)++] = v;
    }
    return CELER_OK;
}

static celer_status map_io(const mapper *m, const pnode *msg, bool is_input, int index, celer_config_io *io) {
    static const char *const singular[] = {"name",     "data_type",       "format",
                                           "reshape",  "is_shape_tensor", "allow_ragged_batch",
                                           "optional", "label_filename",  NULL};
    const char *kind = is_input ? "input" : "output";
    char what[256];
    snprintf(what, sizeof what, "%s #%d", kind, index + 1);
    CELER_TRY(want_msg(m, msg, kind));
    CELER_TRY(check_singular(m, msg, singular, what));
    for (const pnode *c = msg->child; c; c = c->next)
        if (is(c, "name")) {
            CELER_TRY(get_str(m, c, what, &io->name));
            if (!io->name[0]) return merr(m, c, CELER_ERR_INVALID, "%s: name is empty", what);
        }
    if (!io->name) return merr(m, msg, CELER_ERR_INVALID, "%s has no name", what);
    snprintf(what, sizeof what, "%s '%s'", kind, io->name);
    io->dtype = CELER_UNDEFINED;
    for (const pnode *c = msg->child; c; c = c->next) {
        char w[300];
        snprintf(w, sizeof w, "%s %.*s", what, (int)c->name_len, c->name);
        if (is(c, "data_type")) {
            int t = 0;
            CELER_TRY(get_enum(m, c, w, k_type_names, (int)CELER_ARRAY_LEN(k_type_names), &t));
            io->dtype = k_type_dtypes[t];
        } else if (is(c, "optional")) {
            CELER_TRY(get_bool(m, c, w, &io->optional));
        } else if (is(c, "label_filename")) {
            CELER_TRY(get_str(m, c, w, &io->label_filename));
            if (!io->label_filename[0]) io->label_filename = NULL; /* "" is none (GET .../config writes it so) */
        } else if (is(c, "reshape")) {
            CELER_TRY(want_msg(m, c, w));
            int r;
            CELER_TRY(get_dims(m, c, "shape", w, &r, io->reshape));
            io->has_reshape = true;
            io->reshape_rank = r < 0 ? 0 : r;
        }
    }
    CELER_TRY(get_dims(m, msg, "dims", what, &io->rank, io->dims));
    if (io->has_reshape && io->rank >= 0) {
        /* Triton: as many variable dims, and between them (and around them) runs of fixed dims of
         * the same element count: [2,4,-1,6] may become [8,-1,1,6]. A variable dim keeps its value. */
        int var_d = 0, var_r = 0;
        for (int i = 0; i < io->rank; i++) var_d += io->dims[i] < 0;
        for (int i = 0; i < io->reshape_rank; i++) var_r += io->reshape[i] < 0;
        bool ok = var_d == var_r;
        for (int i = 0, j = 0; ok && (i <= io->rank || j <= io->reshape_rank);) {
            int64_t nd = 1, nr = 1;
            for (; i < io->rank && io->dims[i] >= 0; i++)
                if (__builtin_mul_overflow(nd, io->dims[i], &nd)) nd = -1;
            for (; j < io->reshape_rank && io->reshape[j] >= 0; j++)
                if (__builtin_mul_overflow(nr, io->reshape[j], &nr)) nr = -1;
            ok = nd == nr && nd >= 0;
            i++, j++; /* past the variable dims that end the runs */
        }
        if (!ok)
            return merr(m, msg, CELER_ERR_INVALID,
                        "%s: reshape must keep the element count and the number of -1 dims of dims (and the element "
                        "count of the fixed dims between them)",
                        what);
    }
    return CELER_OK;
}

static celer_status map_version_policy(const mapper *m, const pnode *msg, celer_model_config *out) {
    static const char *const singular[] = {"latest", "all", "specific", NULL};
    CELER_TRY(want_msg(m, msg, "version_policy"));
    CELER_TRY(check_singular(m, msg, singular, "version_policy"));
    int n_kinds = 0;
    for (const pnode *c = msg->child; c; c = c->next) {
        if (!is(c, "latest") && !is(c, "all") && !is(c, "specific"))
            return merr(m, c, CELER_ERR_INVALID,
                        "version_policy: unknown policy '%.*s' (expected latest, all or specific)", (int)c->name_len,
                        c->name);
        if (++n_kinds > 1)
            return merr(m, c, CELER_ERR_INVALID, "version_policy: give only one of latest, all, specific");
        CELER_TRY(want_msg(m, c, "version_policy"));
        if (is(c, "latest")) {
            out->version_policy = CELER_VERSIONS_LATEST;
            out->latest_num_versions = 1;
            for (const pnode *d = c->child; d; d = d->next)
                if (is(d, "num_versions"))
                    CELER_TRY(get_int32(m, d, "version_policy latest num_versions", 1, CELER_CONFIG_MAX_VERSIONS,
                                        &out->latest_num_versions)); /* the most versions a model serves */
        } else if (is(c, "all")) {
            out->version_policy = CELER_VERSIONS_ALL;
        } else {
            out->version_policy = CELER_VERSIONS_SPECIFIC;
            int n = 0;
            for (const pnode *d = c->child; d; d = d->next)
                if (is(d, "versions") && !d->empty_list) n++;
            if (n == 0) return merr(m, c, CELER_ERR_INVALID, "version_policy specific: list at least one version");
            if (n > CELER_CONFIG_MAX_VERSIONS)
                return merr(m, c, CELER_ERR_LIMIT, "version_policy specific: more than %d versions",
                            CELER_CONFIG_MAX_VERSIONS);
            out->versions = celer_arena_alloc(m->dst, sizeof(int64_t) * (size_t)n);
            if (!out->versions) return celer_error_wrap(CELER_ERR_NOMEM, "%s", m->path);
            for (const pnode *d = c->child; d; d = d->next)
                if (is(d, "versions") && !d->empty_list)
                    CELER_TRY(get_int(m, d, "version_policy specific versions", 1, INT64_MAX,
                                      &out->versions[out->n_versions++]));
        }
    }
    return CELER_OK;
}

static celer_status map_queue_policy(const mapper *m, const pnode *msg, celer_model_config *out) {
    static const char *const singular[] = {"timeout_action", "default_timeout_microseconds", "allow_timeout_override",
                                           "max_queue_size", NULL};
    const char *w = "dynamic_batching default_queue_policy";
    CELER_TRY(want_msg(m, msg, w));
    CELER_TRY(check_singular(m, msg, singular, w));
    for (const pnode *c = msg->child; c; c = c->next) {
        int action = 0;
        if (is(c, "max_queue_size"))
            CELER_TRY(get_int32(m, c, "default_queue_policy max_queue_size", 0, INT32_MAX, &out->max_queue_size));
        else if (is(c, "default_timeout_microseconds"))
            CELER_TRY(get_int(m, c, "default_queue_policy default_timeout_microseconds", 0, CFG_MAX_MICROS,
                              &out->default_timeout_us));
        else if (is(c, "allow_timeout_override"))
            CELER_TRY(get_bool(m, c, "default_queue_policy allow_timeout_override", &out->allow_timeout_override));
        else if (is(c, "timeout_action")) /* validated; celer rejects timed-out requests either way */
            CELER_TRY(get_enum(m, c, "default_queue_policy timeout_action", k_timeout_actions, 2, &action));
    }
    return CELER_OK;
}

static celer_status map_dynamic_batching(const mapper *m, const pnode *msg, celer_model_config *out) {
    static const char *const singular[] = {"max_queue_delay_microseconds", "preserve_ordering",    "priority_levels",
                                           "default_priority_level",       "default_queue_policy", NULL};
    CELER_TRY(want_msg(m, msg, "dynamic_batching"));
    CELER_TRY(check_singular(m, msg, singular, "dynamic_batching"));
    out->dynamic_batching = true;
    for (const pnode *c = msg->child; c; c = c->next) {
        if (is(c, "preferred_batch_size")) {
            if (c->empty_list) continue;
            if (out->n_preferred >= CELER_CONFIG_MAX_PREFERRED)
                return merr(m, c, CELER_ERR_LIMIT, "dynamic_batching: more than %d preferred_batch_size values",
                            CELER_CONFIG_MAX_PREFERRED);
            CELER_TRY(get_int32(m, c, "dynamic_batching preferred_batch_size", 1, CFG_MAX_BATCH,
                                &out->preferred_batch_size[out->n_preferred++]));
        } else if (is(c, "max_queue_delay_microseconds")) {
            CELER_TRY(get_int(m, c, "dynamic_batching max_queue_delay_microseconds", 0, CFG_MAX_MICROS,
                              &out->max_queue_delay_us));
        } else if (is(c, "default_queue_policy")) {
            CELER_TRY(map_queue_policy(m, c, out));
        }
        /* preserve_ordering, priority levels, priority_queue_policy: accepted and ignored. */
    }
    return CELER_OK;
}

static celer_status map_parameter(const mapper *m, const pnode *msg, celer_model_config *out) {
    static const char *const singular[] = {"key", "value", NULL};
    CELER_TRY(want_msg(m, msg, "parameters"));
    CELER_TRY(check_singular(m, msg, singular, "parameters"));
    const char *key = NULL, *value = "";
    for (const pnode *c = msg->child; c; c = c->next) {
        if (is(c, "key")) {
            CELER_TRY(get_str(m, c, "parameters key", &key));
        } else if (is(c, "value")) {
            CELER_TRY(want_msg(m, c, "parameters value"));
            static const char *const vs[] = {"string_value", NULL};
            CELER_TRY(check_singular(m, c, vs, "parameters value"));
            for (const pnode *d = c->child; d; d = d->next)
                if (is(d, "string_value")) CELER_TRY(get_str(m, d, "parameters value string_value", &value));
        }
    }
    if (!key) return merr(m, msg, CELER_ERR_INVALID, "parameters entry has no key");
    for (int i = 0; i < out->n_parameters; i++) /* a map: the last entry for a key wins */
        if (!strcmp(out->parameter_keys[i], key)) return out->parameter_values[i] = value, CELER_OK;
    out->parameter_keys[out->n_parameters] = key;
    out->parameter_values[out->n_parameters++] = value;
    return CELER_OK;
}

static celer_status map_instance_group(const mapper *m, const pnode *msg, celer_model_config *out) {
    static const char *const singular[] = {"name",    "kind",        "count",        "profile",
                                           "passive", "host_policy", "rate_limiter", NULL};
    CELER_TRY(want_msg(m, msg, "instance_group"));
    CELER_TRY(check_singular(m, msg, singular, "instance_group"));
    int count = 1; /* Triton's default, also for count 0 */
    for (const pnode *c = msg->child; c; c = c->next) {
        int kind = 0;
        if (is(c, "count")) {
            CELER_TRY(get_int32(m, c, "instance_group count", 0, CFG_MAX_INSTANCES, &count));
            if (count == 0) count = 1;
        } else if (is(c, "kind")) {
            /* KIND_GPU is served on the CPU: celer has no GPU path, and existing Triton
             * repositories often say KIND_GPU. */
            CELER_TRY(get_enum(m, c, "instance_group kind", k_kind_names, (int)CELER_ARRAY_LEN(k_kind_names), &kind));
        }
    }
    if (out->instance_count + count > CFG_MAX_INSTANCES)
        return merr(m, msg, CELER_ERR_LIMIT, "instance_group: more than %d instances in total", CFG_MAX_INSTANCES);
    out->instance_count += count;
    return CELER_OK;
}

/* Repeated key `n`'s entries from n on (empty lists aside): at its first entry, the size of the
 * array it fills. */
static int entries_from(const pnode *n) {
    int count = 0;
    for (const pnode *c = n; c; c = c->next)
        if (!c->empty_list && c->name_len == n->name_len && !memcmp(c->name, n->name, n->name_len)) count++;
    return count;
}

static celer_status map_io_entry(const mapper *m, const pnode *c, bool in, celer_model_config *out) {
    celer_config_io **list = in ? &out->inputs : &out->outputs;
    int *n = in ? &out->n_inputs : &out->n_outputs;
    if (!*list && !(*list = celer_arena_alloc(m->dst, sizeof(celer_config_io) * (size_t)entries_from(c))))
        return celer_error_wrap(CELER_ERR_NOMEM, "%s", m->path);
    CELER_TRY(map_io(m, c, in, *n, &(*list)[*n]));
    for (int i = 0; i < *n; i++)
        if (!strcmp((*list)[i].name, (*list)[*n].name))
            return merr(m, c, CELER_ERR_INVALID, "%s '%s' is declared twice", in ? "input" : "output", (*list)[i].name);
    (*n)++;
    return CELER_OK;
}

static celer_status map_input(const mapper *m, const pnode *c, celer_model_config *out) {
    return map_io_entry(m, c, true, out);
}

static celer_status map_output(const mapper *m, const pnode *c, celer_model_config *out) {
    return map_io_entry(m, c, false, out);
}

static celer_status map_parameters(const mapper *m, const pnode *c, celer_model_config *out) {
    if (!out->parameter_keys) {
        size_t n = (size_t)entries_from(c);
        out->parameter_keys = celer_arena_alloc(m->dst, sizeof(char *) * n);
        out->parameter_values = celer_arena_alloc(m->dst, sizeof(char *) * n);
        if (!out->parameter_keys || !out->parameter_values) return celer_error_wrap(CELER_ERR_NOMEM, "%s", m->path);
    }
    return map_parameter(m, c, out);
}

static celer_status map_response_cache(const mapper *m, const pnode *c, celer_model_config *out) {
    CELER_TRY(want_msg(m, c, "response_cache"));
    for (const pnode *d = c->child; d; d = d->next)
        if (is(d, "enable")) CELER_TRY(get_bool(m, d, "response_cache enable", &out->response_cache));
    return CELER_OK;
}

static celer_status map_default_model_filename(const mapper *m, const pnode *c, celer_model_config *out) {
    (void)out;
    const char *f = NULL;
    CELER_TRY(get_str(m, c, "default_model_filename", &f));
    if (strcmp(f, "model.onnx"))
        return merr(m, c, CELER_ERR_UNSUPPORTED,
                    "default_model_filename \"%s\" is not supported: celer loads <version>/model.onnx", f);
    return CELER_OK;
}

/* ---- the top-level keys of config.pbtxt ----
 * One row per key of ModelConfig that celer reads, refuses, or must see at most once: the parser,
 * the check of singular keys, the JSON of GET /v2/models/{m}/config and the protobuf of the gRPC
 * ModelConfig RPC (both written in the order of the rows, by one walk) all go by this table, so a
 * new key is one row here (and its field in celer_model_config). Keys without a row are skipped,
 * as Triton has many celer does not use. */
typedef enum key_kind {
    KEY_STRING,      /* a quoted string, into the const char * at `offset` */
    KEY_INT,         /* an integer in [min, max], into the int at `offset` */
    KEY_MAPPED,      /* by `map`: messages, and values with checks of their own */
    KEY_UNSUPPORTED, /* refused: the model would be served with the wrong semantics */
    KEY_SKIPPED,     /* accepted and ignored (a row only to be checked singular) */
} key_kind;

typedef struct config_key config_key;
typedef struct cfg_out cfg_out;
struct config_key {
    const char *name;
    key_kind kind;
    bool repeated;        /* else given at most once, as protobuf requires */
    size_t offset;        /* KEY_STRING, KEY_INT */
    int64_t min, max;     /* KEY_INT: the range; repeated keys: the most entries (0: no cap) */
    celer_status (*map)(const mapper *m, const pnode *n, celer_model_config *out); /* KEY_MAPPED */
    int pb_field; /* its field number in ModelConfig (model_config.proto) */
    /* Writes the key and its value, as JSON or protobuf; NULL: the key is not written back. */
    void (*write)(const config_key *k, const celer_model_config *cfg, cfg_out *o);
    bool (*present)(const celer_model_config *cfg); /* NULL, or false when the key is left out of both */
};

static void write_string_field(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_int_field(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_version_policy(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_inputs(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_outputs(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_instance_group(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static bool has_instance_group(const celer_model_config *cfg);
static void write_dynamic_batching(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static bool has_dynamic_batching(const celer_model_config *cfg);
static void write_response_cache(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_parameters(const config_key *k, const celer_model_config *cfg, cfg_out *o);
static void write_default_model_filename(const config_key *k, const celer_model_config *cfg, cfg_out *o);

#define FIELD(f) offsetof(celer_model_config, f)
static const config_key k_config_keys[] = {
    {"name", KEY_STRING, .offset = FIELD(name), .pb_field = 1, .write = write_string_field},
    {"platform", KEY_STRING, .offset = FIELD(platform), .pb_field = 2, .write = write_string_field},
    {"backend", KEY_STRING, .offset = FIELD(backend), .pb_field = 17, .write = write_string_field},
    {"version_policy", KEY_MAPPED, .map = map_version_policy, .pb_field = 3, .write = write_version_policy},
    {"max_batch_size", KEY_INT, .offset = FIELD(max_batch_size), .min = 0, .max = CFG_MAX_BATCH, .pb_field = 4,
     .write = write_int_field},
    {"input", KEY_MAPPED, .repeated = true, .max = CELER_CONFIG_MAX_IO, .map = map_input, .pb_field = 5,
     .write = write_inputs},
    {"output", KEY_MAPPED, .repeated = true, .max = CELER_CONFIG_MAX_IO, .map = map_output, .pb_field = 6,
     .write = write_outputs},
    {"instance_group", KEY_MAPPED, .repeated = true, .map = map_instance_group, .pb_field = 7,
     .write = write_instance_group, .present = has_instance_group},
    {"dynamic_batching", KEY_MAPPED, .map = map_dynamic_batching, .pb_field = 11, .write = write_dynamic_batching,
     .present = has_dynamic_batching},
    {"response_cache", KEY_MAPPED, .map = map_response_cache, .pb_field = 24, .write = write_response_cache},
    {"parameters", KEY_MAPPED, .repeated = true, .max = CFG_MAX_PARAMS, .map = map_parameters, .pb_field = 14,
     .write = write_parameters},
    {"default_model_filename", KEY_MAPPED, .map = map_default_model_filename, .pb_field = 8,
     .write = write_default_model_filename},
    /* Stateful and ensemble models would be served with the wrong semantics. */
    {"sequence_batching", .kind = KEY_UNSUPPORTED},
    {"ensemble_scheduling", .kind = KEY_UNSUPPORTED},
    {"optimization", .kind = KEY_SKIPPED},
    /* Everything else (model_warmup, batch_input, metric_tags, ...) is skipped without a row. */
};
#undef FIELD

static const config_key *find_key(const pnode *n) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(k_config_keys); i++)
        if (is(n, k_config_keys[i].name)) return &k_config_keys[i];
    return NULL;
}

static celer_status map_config(const mapper *m, const pnode *root, celer_model_config *out) {
    int entries[CELER_ARRAY_LEN(k_config_keys)] = {0};
    for (size_t i = 0; i < CELER_ARRAY_LEN(k_config_keys); i++) {
        const char *const once[] = {k_config_keys[i].name, NULL};
        if (!k_config_keys[i].repeated) CELER_TRY(check_singular(m, root, once, ""));
    }
    for (const pnode *c = root->child; c; c = c->next) { /* caps first: nothing is mapped past one */
        const config_key *k = c->empty_list ? NULL : find_key(c);
        if (k && k->repeated && k->max && ++entries[k - k_config_keys] > k->max)
            return merr(m, c, CELER_ERR_LIMIT, "more than %d %s entries", (int)k->max, k->name);
    }
    for (const pnode *c = root->child; c; c = c->next) {
        const config_key *k = c->empty_list ? NULL : find_key(c);
        void *field = k ? (char *)out + k->offset : NULL;
        if (!k) continue;
        switch (k->kind) {
        case KEY_STRING: CELER_TRY(get_str(m, c, k->name, field)); break;
        case KEY_INT: CELER_TRY(get_int32(m, c, k->name, k->min, k->max, field)); break;
        case KEY_MAPPED: CELER_TRY(k->map(m, c, out)); break;
        case KEY_UNSUPPORTED: return merr(m, c, CELER_ERR_UNSUPPORTED, "%s is not supported by celer", k->name);
        case KEY_SKIPPED: break;
        }
    }
    return CELER_OK;
}

/* The parsed tree `root` (when st is CELER_OK) mapped into *out, in `arena`; on any failure *out is
 * left empty (the latest version, as a model without a config). */
static celer_status map_or_reset(celer_status st, const char *path, pnode *root, celer_arena *arena,
                                 celer_model_config *out) {
    if (!st) {
        mapper m = {.path = path, .dst = arena};
        st = map_config(&m, root, out);
    }
    if (st) {
        memset(out, 0, sizeof *out);
        out->version_policy = CELER_VERSIONS_LATEST;
        out->latest_num_versions = 1;
    }
    return st;
}

celer_status celer_config_parse(const char *text, size_t len, const char *path, celer_arena *arena,
                                celer_model_config *out) {
    memset(out, 0, sizeof *out);
    out->version_policy = CELER_VERSIONS_LATEST;
    out->latest_num_versions = 1;
    if (!path) path = "config.pbtxt";
    if (!text) text = "", len = 0;
    if (len > CFG_MAX_TEXT)
        return celer_errorf(CELER_ERR_LIMIT, "%s: %zu bytes is more than the %zu allowed for a model config", path, len,
                            CFG_MAX_TEXT);
    /* The tree lives in a scratch arena; only the mapped values go to `arena`. */
    celer_arena tmp;
    celer_arena_init(&tmp, 64 * 1024, 64u << 20);
    parser ps = {
        .text = text, .end = text + len, .cur = text, .line_start = text, .line = 1, .path = path, .tmp = &tmp};
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) ps.cur = ps.line_start = text + 3; /* UTF-8 BOM */
    pnode root = {.name = "config", .name_len = 6};
    token none = {0};
    celer_status st = lex_next(&ps);
    if (!st) st = parse_fields(&ps, &root, 0, 0, &none);
    st = map_or_reset(st, path, &root, arena, out);
    celer_arena_free(&tmp);
    return st;
}

/* ---- the same config as JSON (Triton's load parameter `config`) ----
 * The JSON tree becomes the tree the text parser builds, so one mapping reads both: objects are
 * messages, arrays repeated fields, a map (the top-level `parameters`) its {key, value} entries;
 * lowerCamelCase names are taken as the snake_case ones, as protobuf's JSON mapping does. */

/* "maxBatchSize" -> "max_batch_size" (snake_case names pass unchanged), in the parser's arena. */
static const char *snake_name(parser *ps, const char *key, size_t *len) {
    size_t n = strlen(key), upper = 0;
    for (size_t i = 0; i < n; i++) upper += key[i] >= 'A' && key[i] <= 'Z';
    char *out = celer_arena_alloc(ps->tmp, n + upper + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'Z') {
            if (i) out[o++] = '_';
            c = (char)(c - 'A' + 'a');
        }
        out[o++] = c;
    }
    out[o] = 0;
    *len = o;
    return out;
}

static pnode *json_node(parser *ps, pnode *parent, const char *name, size_t name_len) {
    pnode *n = new_node(ps);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->name = name, n->name_len = name_len;
    n->json = true;
    append_child(parent, n);
    return n;
}

static celer_status json_fill(parser *ps, pnode *parent, const char *name, size_t name_len, const celer_json *v,
                              int depth, bool in_list);

#define JSON_NOMEM(ps)                                                                                      \
    ((ps)->n_nodes >= CFG_MAX_NODES ? celer_errorf(CELER_ERR_LIMIT, "%s: more than %d fields", (ps)->path, CFG_MAX_NODES) \
                                    : celer_error_wrap(CELER_ERR_NOMEM, "%s", (ps)->path))

/* A JSON object that is a protobuf map<string, message>: one `name { key: k value { ... } }` field
 * of `parent` per member, as the text format writes a map. */
static celer_status json_map(parser *ps, pnode *parent, const char *name, size_t name_len, const celer_json *obj,
                             int depth) {
    for (int i = 0; i < obj->n; i++) {
        pnode *e = json_node(ps, parent, name, name_len), *k = e ? json_node(ps, e, "key", 3) : NULL;
        if (!k) return JSON_NOMEM(ps);
        e->is_msg = true;
        k->kind = T_STRING, k->text = obj->keys[i], k->len = strlen(obj->keys[i]);
        CELER_TRY(json_fill(ps, e, "value", 5, &obj->items[i], depth + 1, false));
    }
    return CELER_OK;
}

/* The members of a JSON object as the fields of message `msg`. */
static celer_status json_members(parser *ps, pnode *msg, const celer_json *obj, int depth) {
    for (int i = 0; i < obj->n; i++) {
        size_t len;
        const char *name = snake_name(ps, obj->keys[i], &len);
        if (!name) return JSON_NOMEM(ps);
        /* the one map celer reads: the top-level parameters (ModelConfig's other maps are skipped) */
        if (depth == 0 && !strcmp(name, "parameters") && obj->items[i].type == CELER_JSON_OBJECT)
            CELER_TRY(json_map(ps, msg, name, len, &obj->items[i], depth + 1));
        else
            CELER_TRY(json_fill(ps, msg, name, len, &obj->items[i], depth + 1, false));
    }
    return CELER_OK;
}

/* A numeric array JSON leaves as text ("[16, 32]"): one number node per element. */
static celer_status json_numbers(parser *ps, pnode *parent, const char *name, size_t name_len, const celer_json *v) {
    const char *p = v->raw + 1, *end = v->raw + v->raw_len - 1; /* inside the brackets */
    int count = 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')) p++;
        if (p >= end) break;
        if (*p == '[')
            return celer_errorf(CELER_ERR_INVALID, "%s: '%.*s' holds nested arrays", ps->path, (int)name_len, name);
        const char *q = p;
        while (q < end && *q != ',' && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') q++;
        pnode *n = json_node(ps, parent, name, name_len);
        if (!n) return JSON_NOMEM(ps);
        n->kind = T_NUMBER, n->text = p, n->len = (size_t)(q - p);
        count++;
        p = q;
    }
    if (!count) { /* [] still counts as given */
        pnode *n = json_node(ps, parent, name, name_len);
        if (!n) return JSON_NOMEM(ps);
        n->empty_list = true;
    }
    return CELER_OK;
}

static celer_status json_fill(parser *ps, pnode *parent, const char *name, size_t name_len, const celer_json *v,
                              int depth, bool in_list) {
    if (depth >= CFG_MAX_DEPTH)
        return celer_errorf(CELER_ERR_LIMIT, "%s: objects nested deeper than %d", ps->path, CFG_MAX_DEPTH);
    switch (v->type) {
    case CELER_JSON_NULL: return CELER_OK; /* protobuf's JSON: the field's default */
    case CELER_JSON_NUMERIC_ARRAY:
        if (in_list) break;
        return json_numbers(ps, parent, name, name_len, v);
    case CELER_JSON_ARRAY:
        if (in_list) break;
        for (int i = 0; i < v->n; i++) CELER_TRY(json_fill(ps, parent, name, name_len, &v->items[i], depth + 1, true));
        if (!v->n) {
            pnode *n = json_node(ps, parent, name, name_len);
            if (!n) return JSON_NOMEM(ps);
            n->empty_list = true;
        }
        return CELER_OK;
    default: {
        pnode *n = json_node(ps, parent, name, name_len);
        if (!n) return JSON_NOMEM(ps);
        if (v->type == CELER_JSON_OBJECT) {
            n->is_msg = true;
            return json_members(ps, n, v, depth);
        }
        if (v->type == CELER_JSON_STRING) {
            if (v->string_len > CFG_MAX_STRING)
                return celer_errorf(CELER_ERR_LIMIT, "%s: '%.*s': a string longer than %d bytes", ps->path,
                                    (int)name_len, name, CFG_MAX_STRING);
            if (memchr(v->string, 0, v->string_len))
                return celer_errorf(CELER_ERR_INVALID, "%s: '%.*s': strings may not contain NUL", ps->path,
                                    (int)name_len, name);
            n->kind = T_STRING, n->text = v->string, n->len = v->string_len;
        } else if (v->type == CELER_JSON_BOOL) {
            n->kind = T_IDENT, n->text = v->boolean ? "true" : "false", n->len = v->boolean ? 4 : 5;
        } else { /* a number, as written */
            n->kind = T_NUMBER, n->text = v->raw, n->len = v->raw_len;
        }
        return CELER_OK;
    }
    }
    return celer_errorf(CELER_ERR_INVALID, "%s: '%.*s' holds nested arrays", ps->path, (int)name_len, name);
}

celer_status celer_config_parse_json(const char *text, size_t len, const char *what, celer_arena *arena,
                                     celer_model_config *out) {
    memset(out, 0, sizeof *out);
    out->version_policy = CELER_VERSIONS_LATEST;
    out->latest_num_versions = 1;
    if (!what) what = "config";
    if (len > CFG_MAX_TEXT)
        return celer_errorf(CELER_ERR_LIMIT, "%s: %zu bytes is more than the %zu allowed for a model config", what, len,
                            CFG_MAX_TEXT);
    /* JSON is UTF-8 (RFC 8259), as protobuf's JSON mapping reads it: bytes that are not would be
     * written back as U+FFFD, and two names differing only there would become one (fuzz_load) */
    if (text && !celer_json_utf8_valid(text, len))
        return celer_errorf(CELER_ERR_PARSE, "%s: not UTF-8 text (a JSON model config is UTF-8)", what);
    celer_arena tmp;
    celer_arena_init(&tmp, 64 * 1024, 64u << 20);
    parser ps = {.path = what, .tmp = &tmp};
    pnode root = {.name = "config", .name_len = 6};
    celer_json *doc;
    celer_status st = celer_json_parse(text ? text : "", text ? len : 0, &tmp, &doc);
    if (st) st = celer_error_wrap(st, "%s", what);
    else if (doc->type != CELER_JSON_OBJECT)
        st = celer_errorf(CELER_ERR_INVALID, "%s: expected a JSON object (a ModelConfig), got %s", what,
                          doc->type == CELER_JSON_ARRAY || doc->type == CELER_JSON_NUMERIC_ARRAY ? "an array"
                                                                                                 : "a scalar");
    if (!st) st = json_members(&ps, &root, doc, 0);
    st = map_or_reset(st, what, &root, arena, out);
    celer_arena_free(&tmp);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Completion from the model                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* "[3,224,224]" with -1 for variable dims (config side) or "?" (model side, symbolic). */
static const char *dims_str(const int64_t *dims, int rank, bool model, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && k < cap; i++) {
        if (dims[i] < 0 && model)
            k += (size_t)snprintf(buf + k, cap - k, "%s?", i ? "," : "");
        else
            k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)dims[i]);
    }
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

static const char *model_type(celer_dtype dt) {
    const char *t = triton_type(dt);
    return t ? t + 5 : celer_dtype_name(dt);
}

/* Describes "TYPE_FP32 [3,224,224]" vs "INT64 [?,3,224,224]" for a mismatch message. */
static celer_status mismatch(const char *model_name, const char *kind, const celer_config_io *io,
                             const celer_io_desc *d, int max_batch, const char *why) {
    char a[160], b[160];
    const int64_t *dims = io->has_reshape ? io->reshape : io->dims;
    int rank = io->has_reshape ? io->reshape_rank : io->rank;
    if (d->has_shape)
        celer_shape_str(&d->shape, b, sizeof b);
    else
        snprintf(b, sizeof b, "(unknown shape)");
    dims_str(dims, rank, false, a, sizeof a);
    return celer_errorf(CELER_ERR_INVALID, "model '%s': %s '%s': config says %s %s%s%s, model has %s %s%s%s",
                        model_name, kind, io->name, io->dtype ? triton_type(io->dtype) : "(no data_type)", a,
                        io->has_reshape ? " (reshape)" : "", max_batch > 0 ? " plus the batch dim" : "",
                        model_type(d->dtype), b, why ? ": " : "", why ? why : "");
}

static const celer_io_desc *find_io(const celer_model *model, bool input, const char *name, int *index) {
    int n = input ? celer_model_input_count(model) : celer_model_output_count(model);
    for (int i = 0; i < n; i++) {
        const celer_io_desc *d = input ? celer_model_input(model, i) : celer_model_output(model, i);
        if (d->name && !strcmp(d->name, name)) return *index = i, d;
    }
    return NULL;
}

static void list_names(const celer_model *model, bool input, char *buf, size_t cap) {
    int n = input ? celer_model_input_count(model) : celer_model_output_count(model);
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < cap; i++) {
        const celer_io_desc *d = input ? celer_model_input(model, i) : celer_model_output(model, i);
        k += (size_t)snprintf(buf + k, cap - k, "%s'%s'", i ? ", " : "", d->name ? d->name : "");
    }
}

static bool batchable_desc(const celer_io_desc *d) {
    return d->has_shape && d->shape.rank >= 1 && d->shape.dims[0] < 0;
}

/* Checks one declared (or filled) io against the model's and fills what the config left out. */
static celer_status complete_io(const char *model_name, bool input, celer_config_io *io, const celer_io_desc *d,
                                int max_batch) {
    const char *kind = input ? "input" : "output";
    char b[160];
    if (!triton_type(d->dtype))
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "model '%s': %s '%s' has type %s, which the inference protocol cannot carry", model_name,
                            kind, io->name, celer_dtype_name(d->dtype));
    if (io->dtype == CELER_UNDEFINED) io->dtype = d->dtype;
    if (max_batch > 0 && d->has_shape && !batchable_desc(d))
        return celer_errorf(
            CELER_ERR_INVALID,
            "model '%s': %s '%s': max_batch_size %d needs a variable first (batch) dim, model has %s %s; "
            "set max_batch_size: 0 and give the full dims",
            model_name, kind, io->name, max_batch, model_type(d->dtype), celer_shape_str(&d->shape, b, sizeof b));
    int skip = max_batch > 0 ? 1 : 0;
    if (io->has_reshape && io->reshape_rank == 0 && max_batch == 0)
        return celer_errorf(CELER_ERR_INVALID,
                            "model '%s': %s '%s': cannot have empty reshape for non-batching model as scalar tensors "
                            "are not supported (Triton's rule)",
                            model_name, kind, io->name);
    if (io->rank < 0) { /* dims not given: take the model's */
        if (!d->has_shape)
            return celer_errorf(
                CELER_ERR_INVALID,
                "model '%s': %s '%s' has no shape in the ONNX file; declare its data_type and dims in config.pbtxt",
                model_name, kind, io->name);
        if (io->has_reshape)
            return celer_errorf(CELER_ERR_INVALID, "model '%s': %s '%s': reshape needs dims", model_name, kind,
                                io->name);
        io->rank = d->shape.rank - skip;
        for (int i = 0; i < io->rank; i++) io->dims[i] = d->shape.dims[i + skip];
    } else {
        int rank = io->has_reshape ? io->reshape_rank : io->rank;
        if (skip && io->rank + 1 > CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_LIMIT, "model '%s': %s '%s': %d dims plus the batch dim exceed %d",
                                model_name, kind, io->name, io->rank, CELER_MAX_RANK);
        if (io->dtype != d->dtype) return mismatch(model_name, kind, io, d, max_batch, "the data types differ");
        if (d->has_shape) {
            if (rank + skip != d->shape.rank) return mismatch(model_name, kind, io, d, max_batch, "the ranks differ");
            const int64_t *dims = io->has_reshape ? io->reshape : io->dims;
            /* A symbolic model dim accepts any config dim; a config -1 against a fixed model dim
             * is accepted too (requests are checked against the model at run time). */
            for (int i = 0; i < rank; i++)
                if (dims[i] >= 0 && d->shape.dims[i + skip] >= 0 && dims[i] != d->shape.dims[i + skip])
                    return mismatch(model_name, kind, io, d, max_batch, "the dims differ");
        }
    }
    if (io->dtype != d->dtype) return mismatch(model_name, kind, io, d, max_batch, "the data types differ");
    return CELER_OK;
}

/* Makes the io list from the model when the config declared none. */
static celer_status fill_from_model(const celer_model *model, bool input, celer_arena *arena, celer_config_io **list,
                                    int *n) {
    int count = input ? celer_model_input_count(model) : celer_model_output_count(model);
    if (count > CELER_CONFIG_MAX_IO)
        return celer_errorf(CELER_ERR_LIMIT, "the model has %d %ss, more than %d", count, input ? "input" : "output",
                            CELER_CONFIG_MAX_IO);
    *list = celer_arena_alloc(arena, sizeof(celer_config_io) * (size_t)(count + 1));
    if (!*list) return celer_error_wrap(CELER_ERR_NOMEM, "model config");
    for (int i = 0; i < count; i++) {
        const celer_io_desc *d = input ? celer_model_input(model, i) : celer_model_output(model, i);
        (*list)[i].name = celer_arena_strndup(arena, d->name ? d->name : "", d->name ? strlen(d->name) : 0);
        if (!(*list)[i].name) return celer_error_wrap(CELER_ERR_NOMEM, "model config");
        (*list)[i].rank = -1;
    }
    *n = count;
    return CELER_OK;
}

celer_status celer_config_complete(celer_model_config *cfg, const char *model_name, const celer_model *model,
                                   int default_max_batch, celer_arena *arena) {
    char names[512];
    if (cfg->name && strcmp(cfg->name, model_name))
        return celer_errorf(CELER_ERR_INVALID,
                            "model '%s': config.pbtxt says name \"%s\"; it must match the folder name", model_name,
                            cfg->name);
    if (!cfg->name && !(cfg->name = celer_arena_strndup(arena, model_name, strlen(model_name))))
        return celer_error_wrap(CELER_ERR_NOMEM, "model '%s'", model_name);
    if (cfg->platform && strcmp(cfg->platform, "onnxruntime_onnx"))
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "model '%s': platform \"%s\" is not supported (celer serves onnxruntime_onnx)", model_name,
                            cfg->platform);
    if (cfg->backend && strcmp(cfg->backend, "onnxruntime"))
        return celer_errorf(CELER_ERR_UNSUPPORTED,
                            "model '%s': backend \"%s\" is not supported (celer serves onnxruntime)", model_name,
                            cfg->backend);
    cfg->platform = "onnxruntime_onnx";
    cfg->backend = "onnxruntime";
    if (cfg->version_policy == CELER_VERSIONS_LATEST && cfg->latest_num_versions < 1) cfg->latest_num_versions = 1;

    int n_mi = celer_model_input_count(model), n_mo = celer_model_output_count(model);
    /* Declared inputs must be the model's inputs, all of them; declared outputs a subset. */
    for (int i = 0; i < cfg->n_inputs; i++) {
        int k;
        if (!find_io(model, true, cfg->inputs[i].name, &k)) {
            list_names(model, true, names, sizeof names);
            return celer_errorf(CELER_ERR_INVALID,
                                "model '%s': config input '%s' is not an input of the model (inputs: %s)", model_name,
                                cfg->inputs[i].name, names);
        }
    }
    if (cfg->n_inputs > 0) {
        for (int k = 0; k < n_mi; k++) {
            const char *nm = celer_model_input(model, k)->name;
            bool found = false;
            for (int i = 0; i < cfg->n_inputs && !found; i++) found = nm && !strcmp(cfg->inputs[i].name, nm);
            if (!found)
                return celer_errorf(CELER_ERR_INVALID,
                                    "model '%s': the model's input '%s' is missing from config.pbtxt", model_name,
                                    nm ? nm : "");
        }
    }
    for (int i = 0; i < cfg->n_outputs; i++) {
        int k;
        if (!find_io(model, false, cfg->outputs[i].name, &k)) {
            list_names(model, false, names, sizeof names);
            return celer_errorf(CELER_ERR_INVALID,
                                "model '%s': config output '%s' is not an output of the model (outputs: %s)",
                                model_name, cfg->outputs[i].name, names);
        }
    }
    if (cfg->n_inputs == 0 && n_mi > 0) CELER_TRY(fill_from_model(model, true, arena, &cfg->inputs, &cfg->n_inputs));
    if (cfg->n_outputs == 0 && n_mo > 0)
        CELER_TRY(fill_from_model(model, false, arena, &cfg->outputs, &cfg->n_outputs));

    /* Implicit batch dim: when max_batch_size is 0 and every served tensor has a symbolic first
     * dim, and what the config declared reads as "dims without the batch dim" (Triton's
     * auto-complete does the same; proto3 cannot tell an explicit 0 from an absent field). */
    if (cfg->max_batch_size == 0 && default_max_batch > 0 && cfg->n_inputs > 0) {
        bool ok = true;
        for (int pass = 0; pass < 2 && ok; pass++) {
            bool in = pass == 0;
            celer_config_io *list = in ? cfg->inputs : cfg->outputs;
            int n = in ? cfg->n_inputs : cfg->n_outputs;
            for (int i = 0; i < n && ok; i++) {
                int k;
                const celer_io_desc *d = find_io(model, in, list[i].name, &k);
                int rank = list[i].has_reshape ? list[i].reshape_rank : list[i].rank;
                ok = batchable_desc(d) && (list[i].rank < 0 || rank + 1 == d->shape.rank);
            }
        }
        if (ok) cfg->max_batch_size = CELER_MIN(default_max_batch, CFG_MAX_BATCH);
    }
    for (int pass = 0; pass < 2; pass++) {
        bool in = pass == 0;
        celer_config_io *list = in ? cfg->inputs : cfg->outputs;
        int n = in ? cfg->n_inputs : cfg->n_outputs;
        for (int i = 0; i < n; i++) {
            int k;
            const celer_io_desc *d = find_io(model, in, list[i].name, &k);
            CELER_TRY(complete_io(model_name, in, &list[i], d, cfg->max_batch_size));
        }
    }
    if (cfg->max_batch_size > 0 && !cfg->dynamic_batching) {
        cfg->dynamic_batching = true;
        cfg->max_queue_delay_us = 0;
    }
    for (int i = 0; i < cfg->n_preferred; i++)
        if (cfg->preferred_batch_size[i] > cfg->max_batch_size)
            return celer_errorf(CELER_ERR_INVALID,
                                "model '%s': dynamic_batching preferred_batch_size %d exceeds max_batch_size %d",
                                model_name, cfg->preferred_batch_size[i], cfg->max_batch_size);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON and protobuf                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* One walk of the config writes either form, so HTTP and gRPC clients see one config: Triton's
 * JSON model config (GET /v2/models/{m}/config) or the ModelConfig message of model_config.proto
 * (the ModelConfig RPC). Every value is named by its JSON key and its field number; protobuf leaves
 * out what is at its default, as proto3 does (a decoder reads it back as that default). */
#define OUT_MAX_DEPTH 8 /* the deepest: config > parameters > entry > value (> spare) */

typedef enum out_level { LEVEL_MESSAGE, LEVEL_LIST, LEVEL_MAP, LEVEL_ENTRY } out_level;

struct cfg_out {
    celer_jbuf *b;
    bool pb;
    int depth;
    out_level level[OUT_MAX_DEPTH];
    bool more[OUT_MAX_DEPTH];     /* JSON: a value was written at this level (a comma goes first) */
    int field[OUT_MAX_DEPTH];     /* protobuf: a list's or map's field number, for its entries */
    size_t mark[OUT_MAX_DEPTH][2]; /* protobuf: the open message's length marks (an entry has two) */
};

#define RAW(b, lit) celer_jbuf_raw((b), (lit), sizeof(lit) - 1)

/* JSON: the comma before a value, and its key when the level is an object. */
static void out_key(cfg_out *o, const char *name) {
    if (o->more[o->depth]) RAW(o->b, ",");
    o->more[o->depth] = true;
    if (!name) return;
    celer_jbuf_str(o->b, name);
    RAW(o->b, ":");
}

static void out_str(cfg_out *o, const char *name, int field, const char *s) {
    if (o->pb) {
        if (s && *s) celer_pb_put_str(o->b, field, s);
        return;
    }
    out_key(o, name);
    celer_jbuf_str(o->b, s ? s : "");
}

/* int32, int64, uint32 and uint64 fields alike: a negative value is sign-extended, as protobuf
 * writes int32 and int64. */
static void out_int(cfg_out *o, const char *name, int field, int64_t v) {
    if (o->pb) {
        if (v) celer_pb_put_varint(o->b, field, (uint64_t)v);
        return;
    }
    out_key(o, name);
    celer_jbuf_int(o->b, v);
}

static void out_bool(cfg_out *o, const char *name, int field, bool v) {
    if (o->pb) {
        celer_pb_put_bool(o->b, field, v);
        return;
    }
    out_key(o, name);
    if (v)
        RAW(o->b, "true");
    else
        RAW(o->b, "false");
}

/* An enum: JSON writes its name, protobuf its number. */
static void out_enum(cfg_out *o, const char *name, int field, const char *label, int number) {
    if (o->pb) {
        if (number) celer_pb_put_varint(o->b, field, (uint64_t)number);
        return;
    }
    out_key(o, name);
    celer_jbuf_str(o->b, label);
}

/* A repeated integer field (unpacked: every protobuf decoder takes both forms). */
static void out_ints(cfg_out *o, const char *name, int field, const int64_t *v, int n) {
    if (o->pb) {
        for (int i = 0; i < n; i++) celer_pb_put_varint(o->b, field, (uint64_t)v[i]);
        return;
    }
    out_key(o, name);
    RAW(o->b, "[");
    for (int i = 0; i < n; i++) {
        if (i) RAW(o->b, ",");
        celer_jbuf_int(o->b, v[i]);
    }
    RAW(o->b, "]");
}

/* Opens a level; `json` is its opening bracket. Deeper than OUT_MAX_DEPTH is a bug of the rows
 * below, not of the input: the buffer records it. */
static void out_open(cfg_out *o, const char *name, out_level level, int field, const char *json) {
    if (!o->pb) {
        out_key(o, name);
        celer_jbuf_raw(o->b, json, 1);
    }
    if (o->depth + 1 >= OUT_MAX_DEPTH) {
        if (!o->b->status) o->b->status = celer_errorf(CELER_ERR_INTERNAL, "model config nested too deep to write");
        return;
    }
    o->depth++;
    o->level[o->depth] = level;
    o->more[o->depth] = false;
    o->field[o->depth] = field;
    if (o->pb && level == LEVEL_MESSAGE) o->mark[o->depth][0] = celer_pb_begin(o->b, field);
}

/* A message field; out_close ends it. */
static void out_message(cfg_out *o, const char *name, int field) { out_open(o, name, LEVEL_MESSAGE, field, "{"); }
/* A repeated message field: out_item per element, out_close at the end. */
static void out_list(cfg_out *o, const char *name, int field) { out_open(o, name, LEVEL_LIST, field, "["); }
static void out_item(cfg_out *o) { out_open(o, NULL, LEVEL_MESSAGE, o->field[o->depth], "{"); }
/* A map<string, message> field: out_entry per key (its value's fields follow), out_close at the
 * end. Protobuf writes each as a message {key = 1, value = 2}. */
static void out_map(cfg_out *o, const char *name, int field) { out_open(o, name, LEVEL_MAP, field, "{"); }
static void out_entry(cfg_out *o, const char *key) {
    int field = o->field[o->depth];
    out_open(o, key, LEVEL_ENTRY, field, "{");
    if (!o->pb || o->b->status) return;
    o->mark[o->depth][0] = celer_pb_begin(o->b, field);
    celer_pb_put_str(o->b, 1, key);
    o->mark[o->depth][1] = celer_pb_begin(o->b, 2);
}

static void out_close(cfg_out *o) {
    if (o->depth == 0) return;
    out_level level = o->level[o->depth];
    if (o->pb) {
        if (level == LEVEL_ENTRY) celer_pb_end(o->b, o->mark[o->depth][1]);
        if (level == LEVEL_ENTRY || level == LEVEL_MESSAGE) celer_pb_end(o->b, o->mark[o->depth][0]);
    } else if (level == LEVEL_LIST) {
        RAW(o->b, "]");
    } else {
        RAW(o->b, "}");
    }
    o->depth--;
}

/* ---- the values of the rows of k_config_keys ---- */

static const void *field_of(const config_key *k, const celer_model_config *cfg) {
    return (const char *)cfg + k->offset;
}

static void write_string_field(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_str(o, k->name, k->pb_field, *(const char *const *)field_of(k, cfg));
}

static void write_int_field(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_int(o, k->name, k->pb_field, *(const int *)field_of(k, cfg));
}

/* ModelVersionPolicy: the oneof latest = 1, all = 2, specific = 3. */
static void write_version_policy(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_message(o, k->name, k->pb_field);
    if (cfg->version_policy == CELER_VERSIONS_ALL) {
        out_message(o, "all", 2);
    } else if (cfg->version_policy == CELER_VERSIONS_SPECIFIC) {
        out_message(o, "specific", 3);
        out_ints(o, "versions", 1, cfg->versions, cfg->n_versions);
    } else {
        out_message(o, "latest", 1);
        out_int(o, "num_versions", 1, cfg->latest_num_versions < 1 ? 1 : cfg->latest_num_versions);
    }
    out_close(o);
    out_close(o);
}

/* ModelInput{name=1, data_type=2, format=3, dims=4, reshape=5, is_shape_tensor=6,
 * allow_ragged_batch=7, optional=8} or ModelOutput{name=1, data_type=2, dims=3, label_filename=4,
 * reshape=5, is_shape_tensor=6}. */
static void write_io(cfg_out *o, const celer_config_io *io, bool input) {
    int type = triton_type_number(io->dtype);
    out_item(o);
    out_str(o, "name", 1, io->name);
    out_enum(o, "data_type", 2, k_type_names[type], type);
    if (input) out_enum(o, "format", 3, "FORMAT_NONE", 0);
    out_ints(o, "dims", input ? 4 : 3, io->dims, io->rank < 0 ? 0 : io->rank);
    if (io->has_reshape) {
        out_message(o, "reshape", 5);
        out_ints(o, "shape", 1, io->reshape, io->reshape_rank);
        out_close(o);
    }
    if (!input) out_str(o, "label_filename", 4, io->label_filename);
    out_bool(o, "is_shape_tensor", 6, false);
    if (input) {
        out_bool(o, "allow_ragged_batch", 7, false);
        out_bool(o, "optional", 8, io->optional);
    }
    out_close(o);
}

static void write_inputs(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_list(o, k->name, k->pb_field);
    for (int i = 0; i < cfg->n_inputs; i++) write_io(o, &cfg->inputs[i], true);
    out_close(o);
}

static void write_outputs(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_list(o, k->name, k->pb_field);
    for (int i = 0; i < cfg->n_outputs; i++) write_io(o, &cfg->outputs[i], false);
    out_close(o);
}

/* 0 instances: not set; the server picks its worker count. */
static bool has_instance_group(const celer_model_config *cfg) { return cfg->instance_count > 0; }

/* ModelInstanceGroup{name=1, count=2, kind=4}: one group of every instance, on the CPU. */
static void write_instance_group(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_list(o, k->name, k->pb_field);
    out_item(o);
    out_str(o, "name", 1, cfg->name);
    out_enum(o, "kind", 4, k_kind_names[2], 2);
    out_int(o, "count", 2, cfg->instance_count);
    out_close(o);
    out_close(o);
}

static bool has_dynamic_batching(const celer_model_config *cfg) { return cfg->dynamic_batching; }

/* ModelDynamicBatching{preferred_batch_size=1, max_queue_delay_microseconds=2, preserve_ordering=3,
 * default_queue_policy=6: ModelQueuePolicy{default_timeout_microseconds=2,
 * allow_timeout_override=3, max_queue_size=4}}. */
static void write_dynamic_batching(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    int64_t preferred[CELER_CONFIG_MAX_PREFERRED];
    for (int i = 0; i < cfg->n_preferred; i++) preferred[i] = cfg->preferred_batch_size[i];
    out_message(o, k->name, k->pb_field);
    out_ints(o, "preferred_batch_size", 1, preferred, cfg->n_preferred);
    out_int(o, "max_queue_delay_microseconds", 2, cfg->max_queue_delay_us);
    out_bool(o, "preserve_ordering", 3, false);
    out_message(o, "default_queue_policy", 6);
    out_int(o, "default_timeout_microseconds", 2, cfg->default_timeout_us);
    out_bool(o, "allow_timeout_override", 3, cfg->allow_timeout_override);
    out_int(o, "max_queue_size", 4, cfg->max_queue_size);
    out_close(o);
    out_close(o);
}

/* ModelResponseCache{enable=1}. */
static void write_response_cache(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_message(o, k->name, k->pb_field);
    out_bool(o, "enable", 1, cfg->response_cache);
    out_close(o);
}

/* map<string, ModelParameter{string_value=1}>. */
static void write_parameters(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    out_map(o, k->name, k->pb_field);
    for (int i = 0; i < cfg->n_parameters; i++) {
        out_entry(o, cfg->parameter_keys[i]);
        out_str(o, "string_value", 1, cfg->parameter_values[i]);
        out_close(o);
    }
    out_close(o);
}

static void write_default_model_filename(const config_key *k, const celer_model_config *cfg, cfg_out *o) {
    (void)cfg;
    out_str(o, k->name, k->pb_field, "model.onnx");
}

/* The keys in the order of k_config_keys. */
static void write_config(const celer_model_config *cfg, cfg_out *o) {
    if (!o->pb) RAW(o->b, "{");
    for (size_t i = 0; i < CELER_ARRAY_LEN(k_config_keys); i++) {
        const config_key *k = &k_config_keys[i];
        if (!k->write || (k->present && !k->present(cfg))) continue;
        k->write(k, cfg, o);
    }
    if (!o->pb) RAW(o->b, "}");
}

void celer_config_to_json(const celer_model_config *cfg, celer_jbuf *b) {
    cfg_out o = {.b = b};
    write_config(cfg, &o);
}

void celer_config_to_pb(const celer_model_config *cfg, celer_jbuf *b) {
    cfg_out o = {.b = b, .pb = true};
    write_config(cfg, &o);
}

/* ------------------------------------------------------------------------------------------ */
/* Repository layout                                                                           */
/* ------------------------------------------------------------------------------------------ */

static int64_t mtime_ns(const struct stat *st) {
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Triton ignores version folders that are not numeric or start with 0. */
static bool parse_version(const char *s, int64_t *out) {
    if (!s[0] || s[0] < '1' || s[0] > '9' || strlen(s) > 18) return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (!is_digit(*p)) return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* Sums the sizes and takes the newest mtime of regular files in `dir`, descending `depth` more
 * folder levels. */
static void tally_files(int dirfd_parent, const char *name, int depth, int64_t *mtime, int64_t *bytes) {
    int fd = openat(dirfd_parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d)) && seen++ < REPO_MAX_ENTRIES) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(fd, e->d_name, &st, 0)) continue;
        if (S_ISREG(st.st_mode)) {
            if (mtime_ns(&st) > *mtime) *mtime = mtime_ns(&st);
            if (st.st_size > 0 && *bytes <= INT64_MAX - st.st_size) *bytes += st.st_size;
        } else if (S_ISDIR(st.st_mode) && depth > 0) {
            tally_files(fd, e->d_name, depth - 1, mtime, bytes);
        }
    }
    closedir(d);
}

static char *join(celer_arena *arena, const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    size_t n = la + 1 + lb + (c ? 1 + lc : 0);
    if (n >= PATH_MAX) return NULL;
    char *p = celer_arena_alloc(arena, n + 1);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb);
    if (c) {
        p[la + 1 + lb] = '/';
        memcpy(p + la + 2 + lb, c, lc);
    }
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }
static int cmp_version(const void *a, const void *b) {
    int64_t x = ((const celer_repo_version *)a)->version, y = ((const celer_repo_version *)b)->version;
    return (x > y) - (x < y);
}

/* Scans one model folder's version sub-folders into m->versions. */
static celer_status scan_model(const char *dir, celer_arena *arena, celer_repo_model *m) {
    char *mdir = join(arena, dir, m->name, NULL);
    if (!mdir) return celer_error_wrap(CELER_ERR_NOMEM, "scanning model folder '%s'", m->name);
    int fd = open(mdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return CELER_OK; /* unreadable model folder: no versions, reported when loading */
    struct stat st;
    if (!fstatat(fd, "config.pbtxt", &st, 0) && S_ISREG(st.st_mode)) {
        m->config_path = join(arena, dir, m->name, "config.pbtxt");
        m->config_mtime_ns = mtime_ns(&st);
    }
    if (!fstatat(fd, "pipeline.yaml", &st, 0) && S_ISREG(st.st_mode)) {
        m->pipeline_path = join(arena, dir, m->name, "pipeline.yaml");
        /* the folder's files (pipeline.yaml, item matrices, vocabularies) decide a reload */
        tally_files(fd, ".", 0, &m->pipeline_mtime_ns, &m->pipeline_bytes);
    } else if (!fstatat(fd, "remote.yaml", &st, 0) && S_ISREG(st.st_mode)) {
        m->remote_path = join(arena, dir, m->name, "remote.yaml");
        tally_files(fd, ".", 0, &m->pipeline_mtime_ns, &m->pipeline_bytes);
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return CELER_OK;
    }
    celer_repo_version *v = NULL;
    int n = 0, cap = 0, found = 0;
    celer_status status = CELER_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t version;
        if (!parse_version(e->d_name, &version)) continue;
        if (fstatat(fd, e->d_name, &st, 0) || !S_ISDIR(st.st_mode)) continue;
        char rel[NAME_MAX + 16];
        snprintf(rel, sizeof rel, "%s/model.onnx", e->d_name);
        if (fstatat(fd, rel, &st, 0) || !S_ISREG(st.st_mode)) continue;
        /* past the cap only counted, for the message: the registry's arrays hold at most this many */
        if (found++ >= CELER_CONFIG_MAX_VERSIONS) continue;
        if (n == cap) {
            int ncap = cap ? CELER_MIN(cap * 2, CELER_CONFIG_MAX_VERSIONS) : 8;
            celer_repo_version *nv = realloc(v, sizeof *v * (size_t)ncap);
            if (!nv) {
                status = celer_errorf(CELER_ERR_NOMEM, "out of memory scanning model folder '%s'", m->name);
                break;
            }
            v = nv;
            cap = ncap;
        }
        celer_repo_version *r = &v[n];
        memset(r, 0, sizeof *r);
        r->version = version;
        r->path = join(arena, mdir, e->d_name, "model.onnx");
        if (!r->path) continue; /* path too long to open anyway */
        tally_files(fd, e->d_name, 1, &r->mtime_ns, &r->bytes);
        n++;
    }
    closedir(d);
    if (!status && found > CELER_CONFIG_MAX_VERSIONS) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "model folder '%s' has %d version folders, at most %d are served: remove old versions", m->name,
                 found, CELER_CONFIG_MAX_VERSIONS);
        m->problem = celer_arena_strndup(arena, msg, strlen(msg));
        if (!m->problem) status = celer_error_wrap(CELER_ERR_NOMEM, "scanning model folder '%s'", m->name);
        n = 0; /* none served rather than an arbitrary subset */
    }
    if (!status && n > 0) {
        qsort(v, (size_t)n, sizeof *v, cmp_version);
        m->versions = celer_arena_alloc(arena, sizeof *v * (size_t)n);
        if (!m->versions)
            status = celer_error_wrap(CELER_ERR_NOMEM, "scanning model folder '%s'", m->name);
        else
            memcpy(m->versions, v, sizeof *v * (size_t)n), m->n_versions = n;
    }
    free(v);
    return status;
}

celer_status celer_repo_scan(const char *dir, celer_arena *arena, celer_repo_model **models, int *n_models) {
    *models = NULL;
    *n_models = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "cannot read model repository '%s': %s", dir, strerror(errno));
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return celer_errorf(CELER_ERR_IO, "cannot read model repository '%s': %s", dir, strerror(err));
    }
    char **names = NULL;
    int n = 0, cap = 0;
    celer_status status = CELER_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* hidden, . and .. */
        struct stat st;
        if (fstatat(fd, e->d_name, &st, 0) || !S_ISDIR(st.st_mode)) continue;
        if (n == cap) {
            if (n >= REPO_MAX_ENTRIES) {
                status = celer_errorf(CELER_ERR_LIMIT, "model repository '%s' has more than %d models", dir,
                                      REPO_MAX_ENTRIES);
                break;
            }
            int ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, sizeof *names * (size_t)ncap);
            if (!nn) {
                status = celer_errorf(CELER_ERR_NOMEM, "out of memory scanning '%s'", dir);
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = celer_arena_strndup(arena, e->d_name, strlen(e->d_name)))) {
            status = celer_error_wrap(CELER_ERR_NOMEM, "scanning '%s'", dir);
            break;
        }
        n++;
    }
    closedir(d);
    celer_repo_model *list = NULL;
    if (!status && n > 0) {
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        list = celer_arena_alloc(arena, sizeof *list * (size_t)n);
        if (!list) status = celer_error_wrap(CELER_ERR_NOMEM, "scanning '%s'", dir);
        for (int i = 0; i < n && !status; i++) {
            list[i].name = names[i];
            status = scan_model(dir, arena, &list[i]);
        }
    }
    free(names);
    if (status) return status;
    *models = list;
    *n_models = n;
    return CELER_OK;
}

int celer_repo_select_versions(const celer_model_config *cfg, const celer_repo_model *m, int *selected) {
    int n = 0;
    celer_version_policy policy = cfg ? cfg->version_policy : CELER_VERSIONS_LATEST;
    if (policy == CELER_VERSIONS_ALL) {
        for (int i = 0; i < m->n_versions; i++) selected[n++] = i;
    } else if (policy == CELER_VERSIONS_SPECIFIC) {
        for (int i = 0; i < m->n_versions; i++)
            for (int k = 0; k < cfg->n_versions; k++)
                if (cfg->versions[k] == m->versions[i].version) {
                    selected[n++] = i;
                    break;
                }
    } else {
        int want = cfg && cfg->latest_num_versions > 0 ? cfg->latest_num_versions : 1;
        int start = m->n_versions > want ? m->n_versions - want : 0;
        for (int i = start; i < m->n_versions; i++) selected[n++] = i;
    }
    return n;
}
