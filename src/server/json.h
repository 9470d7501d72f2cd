/* JSON for the server: a small DOM for request headers that never builds nodes for numeric
 * arrays (tensor data is kept as a raw span and decoded straight into a typed buffer), a writer
 * with shortest-round-trip float formatting, and exact fast number parsing.
 * Private to src/server. */
#ifndef CELER_SERVER_JSON_H
#define CELER_SERVER_JSON_H

#include "base/base.h"
#include "tensor/tensor.h"

/* Nesting caps: a document may nest 128 levels (a v2 request's tensor data sits 3 levels down);
 * tensor data may nest its arrays as Triton allows, a value at depth 100 (the data itself at 0)
 * being refused with Triton's message. */
#define CELER_JSON_MAX_DEPTH 128
#define CELER_JSON_MAX_DATA_DEPTH 100

typedef enum celer_json_type {
    CELER_JSON_NULL,
    CELER_JSON_BOOL,
    CELER_JSON_NUMBER,
    CELER_JSON_STRING,
    CELER_JSON_ARRAY,
    CELER_JSON_OBJECT,
    /* An array whose first element is a number or a nested array starting with a number: not
     * parsed into nodes; `raw`/`raw_len` span the whole array text (brackets included), checked
     * only for bracket balance and allowed characters. Decode with celer_json_decode_tensor. */
    CELER_JSON_NUMERIC_ARRAY,
} celer_json_type;

typedef struct celer_json celer_json;
struct celer_json {
    celer_json_type type;
    bool boolean;
    double number;
    const char *string; /* NUL-terminated, unescaped, in the arena; string_len excludes the NUL */
    size_t string_len;
    int n;              /* ARRAY: items; OBJECT: members */
    celer_json *items;  /* ARRAY items / OBJECT member values */
    const char **keys;  /* OBJECT member keys (unescaped, NUL-terminated) */
    const char *raw;    /* every value: its source text span */
    size_t raw_len;
};

/* Parses `len` bytes of `text` (need not be NUL-terminated) into nodes allocated in `arena`.
 * Strict RFC 8259 (no trailing commas, no comments); depth capped at CELER_JSON_MAX_DEPTH.
 * Errors are CELER_ERR_PARSE with the byte offset and what was expected. The DOM points into
 * `text` (raw spans), which must outlive it. */
celer_status celer_json_parse(const char *text, size_t len, celer_arena *arena, celer_json **out);

/* Member of an object by key, or NULL (also NULL when `obj` is not an object). */
const celer_json *celer_json_get(const celer_json *obj, const char *key);

/* Decodes tensor data given as a JSON value (a NUMERIC_ARRAY, an ARRAY of booleans or strings,
 * or arrays nested in any way, as Triton reads them: the leaves in row-major order, up to
 * CELER_JSON_MAX_DATA_DEPTH) into `out` (numel elements of dtype `dtype`, caller-allocated:
 * numel * celer_dtype_size(dtype) bytes; strings are allocated in `arena`). The element count
 * must equal numel. FLOAT16/BFLOAT16 accept JSON numbers. Integers must be integral and in range
 * for the dtype; BOOL accepts true/false (and 0/1). Float parsing is exact (same result as strtof
 * / strtod). Errors name `what` (e.g. "input 'x'") and say expected vs got count or the bad
 * element index; data nested too deeply is CELER_ERR_INVALID starting with Triton's words "JSON
 * nesting depth exceeds maximum allowed limit (100)". */
celer_status celer_json_decode_tensor(const celer_json *value, celer_dtype dtype, const celer_shape *shape,
                                      void *out, celer_arena *arena, const char *what);
/* The same, for the forms whose shape comes from the nesting itself (KServe v1 instances, business
 * objects): nested data must match `shape` exactly (every level as long as its dim, leaves at
 * depth rank); flat data only needs the element count. */
celer_status celer_json_decode_tensor_exact(const celer_json *value, celer_dtype dtype, const celer_shape *shape,
                                            void *out, celer_arena *arena, const char *what);

/* ---- writer: a growing buffer with a cap ---- */
typedef struct celer_jbuf {
    char *data; /* malloc'ed, owned by the buffer; NUL-terminated after each call */
    size_t len, cap, max; /* max: cap on len (CELER_ERR_LIMIT when exceeded); 0 = 1 GiB */
    celer_status status;  /* first error; later writes are ignored once set */
} celer_jbuf;

void celer_jbuf_init(celer_jbuf *b, size_t max);
void celer_jbuf_free(celer_jbuf *b);
void celer_jbuf_reset(celer_jbuf *b); /* len = 0, keeps memory */
void celer_jbuf_raw(celer_jbuf *b, const char *s, size_t n);
/* For a writer that formats in place: room for n more bytes at the returned pointer (NULL, with
 * status set, past the cap or out of memory), then celer_jbuf_commit of the m <= n it wrote. */
char *celer_jbuf_reserve(celer_jbuf *b, size_t n);
void celer_jbuf_commit(celer_jbuf *b, size_t n);
void celer_jbuf_str(celer_jbuf *b, const char *s);       /* a JSON string literal, escaped */
/* n bytes as a JSON string literal; bytes that are not UTF-8 become U+FFFD. */
void celer_jbuf_strn(celer_jbuf *b, const char *s, size_t n);
void celer_jbuf_int(celer_jbuf *b, int64_t v);
void celer_jbuf_uint(celer_jbuf *b, uint64_t v);
/* Shortest round trip. JSON has no NaN/Infinity: they are written as the bare tokens NaN,
 * Infinity and -Infinity (what Python's json module reads and writes), and accepted on input. */
void celer_jbuf_double(celer_jbuf *b, double v);
/* Writes the elements of `t` as a flat JSON array, every dtype; floats shortest-round-trip.
 * Strings are escaped (NUL and control bytes as \u00XX); a string that is not UTF-8 sets
 * CELER_ERR_UNSUPPORTED (JSON has no way to carry it: see celer_json_utf8_valid). */
void celer_jbuf_tensor_data(celer_jbuf *b, const celer_tensor *t);

/* Whether n bytes at s are valid UTF-8 (no overlongs, no surrogates), so a JSON string can carry them. */
bool celer_json_utf8_valid(const char *s, size_t n);

/* Shortest decimal text that parses back (strtof) to exactly `f`; returns its length (<= 16),
 * writes a NUL. Non-finite values are written as NaN, Infinity, -Infinity. */
int celer_json_format_float(float f, char *buf);
/* Same for doubles (<= 25 chars). */
int celer_json_format_double(double d, char *buf);

/* Exact parsing of a JSON number in [p, end) as float / double; returns the number of bytes
 * consumed, 0 when the text is not a JSON number or (128 characters or more) its copy could not
 * be allocated: celer_error_status() then says CELER_ERR_NOMEM. */
size_t celer_json_parse_float(const char *p, const char *end, float *out);
size_t celer_json_parse_double(const char *p, const char *end, double *out);

#endif
