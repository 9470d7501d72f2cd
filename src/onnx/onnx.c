/* ONNX ModelProto decoding into the plain structs of onnx.h.
 *
 * Every message is read in two passes over its bytes: the first validates the framing, counts
 * repeated fields and remembers the last occurrence of singular ones; the second fills arrays of
 * exactly the counted size. Nested messages are only ever decoded from their own slice, so the
 * work and the memory are proportional to the input. Errors are wrapped on the way up so the
 * message reads as a path: "model.onnx: graph 'g': node 3 (Conv 'c1'): attribute 'pads': ...". */
#include "onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pb.h"

/* raw_data is used as the little-endian element array it is. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "onnx: big-endian hosts are not supported");

#define IR_VERSION_MIN 1
#define IR_VERSION_MAX 10
#define MAX_EXTERNAL_FILES 1024
#define BUMP_CHUNK 16384

/* ---- field numbers (onnx.proto, ONNX 1.12) ---- */
enum { MODEL_IR = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VER = 3, MODEL_DOMAIN = 4, MODEL_VERSION = 5,
       MODEL_DOC = 6, MODEL_GRAPH = 7, MODEL_OPSET = 8, MODEL_PROPS = 14, MODEL_FUNCTIONS = 25 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { FN_NAME = 1, FN_INPUT = 4, FN_OUTPUT = 5, FN_ATTR_NAME = 6, FN_NODE = 7, FN_OPSET = 9, FN_DOMAIN = 10,
       FN_ATTR_PROTO = 11, FN_OVERLOAD = 13, FN_FIELD_COUNT = 14 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INIT = 5, GRAPH_DOC = 10, GRAPH_INPUT = 11,
       GRAPH_OUTPUT = 12, GRAPH_VALUE_INFO = 13, GRAPH_SPARSE_INIT = 15 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5, NODE_DOMAIN = 7 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_T = 5, ATTR_G = 6, ATTR_FLOATS = 7,
       ATTR_INTS = 8, ATTR_STRINGS = 9, ATTR_TENSORS = 10, ATTR_GRAPHS = 11, ATTR_TP = 14,
       ATTR_TYPE_PROTOS = 15, ATTR_TYPE = 20, ATTR_REF = 21, ATTR_SPARSE = 22, ATTR_SPARSES = 23 };
enum { VI_NAME = 1, VI_TYPE = 2 };
enum { TYPE_TENSOR = 1, TYPE_SEQUENCE = 4, TYPE_MAP = 5, TYPE_SPARSE = 8, TYPE_OPTIONAL = 9 };
enum { TT_ELEM = 1, TT_SHAPE = 2 };
enum { SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2 };
enum { T_DIMS = 1, T_DTYPE = 2, T_SEGMENT = 3, T_FLOAT = 4, T_INT32 = 5, T_STRING = 6, T_INT64 = 7,
       T_NAME = 8, T_RAW = 9, T_DOUBLE = 10, T_UINT64 = 11, T_EXTERNAL = 13, T_LOCATION = 14,
       T_FIELD_COUNT = 15 };

/* An external data file, open while the model is decoded: each tensor reads its own bytes out of
 * it into memory of the model, so nothing refers to the file once the load is done. */
typedef struct ext_file {
    struct ext_file *next;
    const char *location; /* as written in the model, arena copy */
    int fd;               /* -1 once closed (end of the decode) */
    size_t size;
} ext_file;

/* A copy of raw data large enough to have its own mapping, so that it can be given back alone
 * (celer_onnx_release_data). */
typedef struct big_copy {
    struct big_copy *next;
    void *data; /* NULL once released */
    size_t len;
} big_copy;

#define BIG_COPY_BYTES ((size_t)64 * 1024)

struct celer_onnx_private {
    celer_arena arena;
    big_copy *copies;
    /* The model file read into anonymous memory (celer_onnx_load only): tensors use their raw
     * bytes where they lie in it, and a file changed or truncated under a loaded model changes
     * nothing (a mapping of the file would, down to SIGBUS on a truncated page). */
    void *image;
    size_t image_len;
    const char *base_real; /* the model's folder with symlinks resolved, once external data needs it */
    ext_file *ext;         /* external data files, each opened once */
    int n_ext;
};

/* Decoder state shared by all message decoders of one parse. */
typedef struct dec {
    celer_arena *arena;
    unsigned char *bump; /* small allocations are packed into arena chunks */
    size_t bump_left;
    const char *base_dir;            /* NULL: external data forbidden */
    struct celer_onnx_private *priv; /* NULL: standalone tensor, data always copied */
    int graph_depth;
    bool direct;      /* caller's arena (one tensor): no 16 KiB chunk for a few bytes */
    bool in_function; /* decoding a function body: attributes may refer to the function's */
} dec;

#define TRY(expr)                         \
    do {                                  \
        celer_status try_st_ = (expr);    \
        if (try_st_) return try_st_;      \
    } while (0)

/* ---- memory ---- */

/* Zeroed memory from the arena; small requests share chunks instead of taking 64 bytes each. */
static void *dalloc(dec *d, size_t size, size_t align) {
    if (size >= 1024 || d->direct) return celer_arena_alloc(d->arena, size);
    size_t pad = d->bump ? (size_t)(-(uintptr_t)d->bump) & (align - 1) : 0;
    if (!d->bump || d->bump_left < pad + size) {
        d->bump = celer_arena_alloc(d->arena, BUMP_CHUNK);
        if (!d->bump) return NULL;
        d->bump_left = BUMP_CHUNK;
        pad = 0;
    }
    void *p = d->bump + pad;
    d->bump += pad + size;
    d->bump_left -= pad + size;
    return p;
}

static celer_status dalloc_array(dec *d, size_t n, size_t elem, void **out) {
    /* Empty arrays share one block: an input full of empty lists must not cost memory. Never
     * written through, since its count is 0. */
    static _Alignas(64) unsigned char empty_array[64];
    if (n == 0) {
        *out = empty_array;
        return CELER_OK;
    }
    size_t bytes;
    if (celer_mul_size(n, elem, &bytes))
        return celer_errorf(CELER_ERR_LIMIT, "array of %zu elements overflows", n);
    *out = dalloc(d, bytes, 16);
    return *out ? CELER_OK : CELER_ERR_NOMEM;
}

/* Copies a length-delimited field into a NUL-terminated arena string. Names (`is_name`) may not
 * hold NUL bytes: "a\0b" and "a" would otherwise look the same downstream. */
static celer_status dup_field(dec *d, const pb_field *f, bool is_name, const char **out, size_t *len) {
    if (pb_expect(f, PB_LEN) < 0) return CELER_ERR_PARSE;
    if (is_name && f->len && memchr(f->data, 0, f->len))
        return celer_errorf(CELER_ERR_PARSE, "field %u: name contains a NUL byte", f->num);
    if (len) *len = f->len;
    if (f->len == 0) {
        *out = "";
        return CELER_OK;
    }
    char *s = dalloc(d, f->len + 1, 1);
    if (!s) return CELER_ERR_NOMEM;
    memcpy(s, f->data, f->len);
    *out = s;
    return CELER_OK;
}

static celer_status count_to_int(size_t n, const char *what, int *out) {
    if (n > INT_MAX) return celer_errorf(CELER_ERR_LIMIT, "%zu %s is too many", n, what);
    *out = (int)n;
    return CELER_OK;
}

/* For messages only: the last string field `num` of a message, ignoring any malformation. */
typedef struct str_slice {
    int len;
    const char *s;
} str_slice;

static str_slice scan_name(const uint8_t *p, size_t n, uint32_t num) {
    str_slice out = {0, ""};
    pb_reader r = pb_init(p, n);
    pb_field f;
    while (r.p < r.end && pb_read_raw(&r, &f) == 0) { /* silent: the real error is already set */
        if (f.num == num && f.wire == PB_LEN) {
            out.len = (int)CELER_MIN(f.len, 200u);
            out.s = (const char *)f.data;
        }
    }
    return out;
}

/* ONNX's element types celer has no kernels for, by name (onnx.proto's DataType), for messages:
 * a model using them is refused saying which, not with a number. */
static const char *const onnx_type_names[] = {
    [14] = "COMPLEX64",  [15] = "COMPLEX128", [17] = "FLOAT8E4M3FN", [18] = "FLOAT8E4M3FNUZ",
    [19] = "FLOAT8E5M2", [20] = "FLOAT8E5M2FNUZ", [21] = "UINT4",     [22] = "INT4",
    [23] = "FLOAT4E2M1", [24] = "FLOAT8E8M0", [25] = "UINT2",      [26] = "INT2",
};

/* CELER_ERR_UNSUPPORTED for element type `e` of `what` ("data_type", "element type"). */
static celer_status unsupported_type(const char *what, int64_t e) {
    if (e > 0 && e < (int64_t)CELER_ARRAY_LEN(onnx_type_names) && onnx_type_names[e])
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%s %s (%lld) is not supported: celer has no kernels for it", what,
                            onnx_type_names[e], (long long)e);
    return celer_errorf(CELER_ERR_UNSUPPORTED, "%s %lld is not supported", what, (long long)e);
}

/* ---- external data ---- */

/* A location must stay inside the model's folder: relative, and no ".." component. */
static bool location_is_safe(const char *loc, size_t len) {
    if (len == 0 || memchr(loc, 0, len) || loc[0] == '/' || loc[0] == '\\') return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || loc[i] == '/' || loc[i] == '\\') {
            if (i - start == 2 && loc[start] == '.' && loc[start + 1] == '.') return false;
            start = i + 1;
        }
    }
    return true;
}

/* Whether the resolved path `path` lies below the resolved folder `dir`. */
static bool path_inside(const char *path, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return path[0] == '/' && path[1];
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* Opens external data file `loc` (already checked by location_is_safe) once per decode. The text
 * check alone lets a symlink lead anywhere, so the file is taken only when its path with every
 * symlink resolved lies inside the model's folder, and only when that path names the very file
 * opened (a symlink swapped between open and check is caught by the inode compare). The fd is
 * the model's until close_external. */
static celer_status open_external(dec *d, const char *loc, ext_file **out) {
    struct celer_onnx_private *priv = d->priv;
    for (ext_file *e = priv->ext; e; e = e->next) {
        if (strcmp(e->location, loc) == 0) {
            *out = e;
            return CELER_OK;
        }
    }
    if (priv->n_ext >= MAX_EXTERNAL_FILES)
        return celer_errorf(CELER_ERR_LIMIT, "more than %d external data files", MAX_EXTERNAL_FILES);
    char real[PATH_MAX];
    if (!priv->base_real) {
        if (!realpath(d->base_dir, real))
            return celer_errorf(CELER_ERR_IO, "cannot resolve the model's folder '%s': %s", d->base_dir,
                                strerror(errno));
        char *copy = dalloc(d, strlen(real) + 1, 1);
        if (!copy) return CELER_ERR_NOMEM;
        priv->base_real = strcpy(copy, real);
    }
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", d->base_dir, loc);
    if (n < 0 || (size_t)n >= sizeof path)
        return celer_errorf(CELER_ERR_LIMIT, "external data path '%s/%s' is too long", d->base_dir, loc);
    ext_file *e = dalloc(d, sizeof *e, 16);
    char *name = e ? dalloc(d, strlen(loc) + 1, 1) : NULL;
    if (!name) return CELER_ERR_NOMEM;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "cannot open external data file '%s': %s", path, strerror(errno));
    struct stat st, st_real;
    celer_status st_code = CELER_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        st_code = celer_errorf(CELER_ERR_IO, "external data '%s' is not a regular file", path);
    else if (!realpath(path, real))
        st_code = celer_errorf(CELER_ERR_IO, "cannot resolve external data file '%s': %s", path, strerror(errno));
    else if (!path_inside(real, priv->base_real))
        st_code = celer_errorf(CELER_ERR_INVALID,
                               "external data location '%.200s' is refused: it resolves to '%s', outside the "
                               "model's folder '%s'", loc, real, priv->base_real);
    else if (stat(real, &st_real) != 0 || st_real.st_dev != st.st_dev || st_real.st_ino != st.st_ino)
        st_code = celer_errorf(CELER_ERR_IO, "external data file '%s' changed while it was opened", path);
    else if ((unsigned long long)st.st_size > CELER_ONNX_MAX_FILE)
        st_code = celer_errorf(CELER_ERR_LIMIT, "external data file '%s' is larger than %llu bytes", path,
                               (unsigned long long)CELER_ONNX_MAX_FILE);
    if (st_code) {
        close(fd);
        return st_code;
    }
    e->location = strcpy(name, loc);
    e->fd = fd;
    e->size = (size_t)st.st_size;
    e->next = priv->ext;
    priv->ext = e;
    priv->n_ext++;
    *out = e;
    return CELER_OK;
}

/* Closes the external data files: the decode has read all it needs from them. */
static void close_external(struct celer_onnx_private *priv) {
    for (ext_file *e = priv->ext; e; e = e->next)
        if (e->fd >= 0) {
            close(e->fd);
            e->fd = -1;
        }
}

/* Parses the decimal offset/length strings of external_data; -1 when not a plain number. */
static int parse_decimal(const char *s, size_t len, uint64_t *out) {
    uint64_t v = 0;
    if (len == 0 || len > 20) return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v)) return -1;
    }
    *out = v;
    return 0;
}

/* ---- tensors ---- */

/* Which typed repeated field carries elements of a dtype, and how many values per element. */
static int typed_field(celer_dtype t, int *per_elem) {
    *per_elem = t == CELER_COMPLEX64 || t == CELER_COMPLEX128 ? 2 : 1;
    switch (t) {
    case CELER_COMPLEX64: case CELER_FLOAT: return T_FLOAT;
    case CELER_INT32: case CELER_INT16: case CELER_INT8: case CELER_UINT16: case CELER_UINT8:
    case CELER_BOOL: case CELER_FLOAT16: case CELER_BFLOAT16: return T_INT32;
    case CELER_STRING: return T_STRING;
    case CELER_INT64: return T_INT64;
    case CELER_COMPLEX128: case CELER_DOUBLE: return T_DOUBLE;
    case CELER_UINT32: case CELER_UINT64: return T_UINT64;
    default: return 0;
    }
}

static const char *tensor_field_name(int num) {
    switch (num) {
    case T_FLOAT: return "float_data";
    case T_INT32: return "int32_data";
    case T_STRING: return "string_data";
    case T_INT64: return "int64_data";
    case T_DOUBLE: return "double_data";
    case T_UINT64: return "uint64_data";
    default: return "?";
    }
}

static int elem_wire_of(int num) {
    return num == T_FLOAT ? PB_I32 : num == T_DOUBLE ? PB_I64 : PB_VARINT;
}

/* True when the bytes of a bool tensor are all 0 or 1 (C `bool` must not hold anything else). */
static bool bools_clean(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] > 1) return false;
    return true;
}

/* Whether [p, p+n) lies in the model's image of its file (never for a standalone tensor). */
static bool in_image(const struct celer_onnx_private *priv, const void *p, size_t n) {
    if (!priv || !priv->image) return false;
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)priv->image;
    return a >= lo && a + n <= lo + priv->image_len;
}

/* Gives back the pages of the image that lie wholly inside [p, p+n): they stop counting in the
 * process's memory (and would read as zeros). Pages shared with a neighbour stay, since raw data
 * fields do not start or end on page boundaries. */
static void drop_pages(const void *p, size_t n) {
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* nbytes of memory of the model for a tensor's data: a mapping of its own when large (so that
 * celer_onnx_release_data can give it back), else the arena. */
static celer_status alloc_data(dec *d, size_t nbytes, uint8_t **out) {
    if (d->priv && nbytes >= BIG_COPY_BYTES) {
        big_copy *c = dalloc(d, sizeof *c, 16);
        if (!c) return CELER_ERR_NOMEM;
        void *m = mmap(NULL, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return CELER_ERR_NOMEM;
        c->data = m;
        c->len = nbytes;
        c->next = d->priv->copies;
        d->priv->copies = c;
        *out = m;
        return CELER_OK;
    }
    *out = dalloc(d, nbytes ? nbytes : 1, 64);
    return *out ? CELER_OK : CELER_ERR_NOMEM;
}

/* Makes a bool tensor's bytes 0 or 1 (C `bool` must not hold anything else). */
static void clean_bools(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = p[i] != 0;
}

/* Points t->data at `src` when that is allowed and aligned, else copies it (the image pages it
 * came from are then given back when the copy has its own mapping). */
static celer_status place_bytes(dec *d, celer_tensor *t, const uint8_t *src, size_t nbytes) {
    size_t esz = celer_dtype_size(t->dtype);
    bool clean = t->dtype != CELER_BOOL || bools_clean(src, nbytes);
    if (d->priv && clean && nbytes > 0 && ((uintptr_t)src % esz) == 0) {
        t->data = (void *)(uintptr_t)src; /* read-only image or caller's bytes; onnx.h documents it */
        return CELER_OK;
    }
    uint8_t *dst;
    TRY(alloc_data(d, nbytes, &dst));
    if (nbytes) memcpy(dst, src, nbytes);
    if (nbytes >= BIG_COPY_BYTES && in_image(d->priv, src, nbytes)) drop_pages(src, nbytes);
    if (!clean) clean_bools(dst, nbytes);
    t->data = dst;
    return CELER_OK;
}

/* Stores one value of a typed repeated field as element-width little-endian bytes. */
static void store_value(uint8_t *dst, size_t width, celer_dtype t, uint64_t v) {
    if (t == CELER_BOOL) v = v != 0;
    switch (width) {
    case 1: { uint8_t x = (uint8_t)v; memcpy(dst, &x, 1); break; }
    case 2: { uint16_t x = (uint16_t)v; memcpy(dst, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(dst, &x, 4); break; }
    default: memcpy(dst, &v, 8); break;
    }
}

static celer_status resolve_external(dec *d, const uint8_t *p, size_t n, celer_tensor *t, size_t nbytes) {
    if (!d->base_dir || !d->priv)
        return celer_errorf(CELER_ERR_INVALID, "external data is not allowed here (no model folder)");
    const char *loc = NULL;
    size_t loc_len = 0;
    uint64_t offset = 0, length = 0;
    bool has_length = false;
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num != T_EXTERNAL) continue;
        const char *key = NULL, *value = "";
        size_t value_len = 0;
        pb_reader er = pb_init(f.data, f.len);
        pb_field ef;
        int erc;
        while ((erc = pb_next(&er, &ef)) == 1) {
            if (ef.num == ENTRY_KEY) TRY(dup_field(d, &ef, true, &key, NULL));
            else if (ef.num == ENTRY_VALUE) TRY(dup_field(d, &ef, false, &value, &value_len));
        }
        if (erc < 0) return celer_error_wrap(CELER_ERR_PARSE, "external_data entry");
        if (!key) continue;
        if (strcmp(key, "location") == 0) {
            loc = value;
            loc_len = value_len;
        } else if (strcmp(key, "offset") == 0 || strcmp(key, "length") == 0) {
            uint64_t v;
            if (parse_decimal(value, value_len, &v) < 0)
                return celer_errorf(CELER_ERR_INVALID, "external_data %s '%.40s' is not a number", key, value);
            if (key[0] == 'o') offset = v;
            else {
                length = v;
                has_length = true;
            }
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (!loc) return celer_errorf(CELER_ERR_INVALID, "external_data has no location");
    if (!location_is_safe(loc, loc_len))
        return celer_errorf(CELER_ERR_INVALID,
                            "external data location '%.200s' is refused: it must be a relative path "
                            "inside the model's folder (no '..', not absolute)", loc);
    ext_file *e = NULL;
    TRY(open_external(d, loc, &e));
    if (offset > e->size)
        return celer_errorf(CELER_ERR_INVALID, "external data offset %llu is past the end of '%s' (%zu bytes)",
                            (unsigned long long)offset, loc, e->size);
    if (!has_length) length = e->size - offset;
    if (length > e->size - offset)
        return celer_errorf(CELER_ERR_INVALID, "external data [%llu, +%llu) runs past the end of '%s' (%zu bytes)",
                            (unsigned long long)offset, (unsigned long long)length, loc, e->size);
    if (length != nbytes) {
        char sb[128];
        return celer_errorf(CELER_ERR_INVALID, "external data has %llu bytes, shape %s of %s needs %zu",
                            (unsigned long long)length, celer_shape_str(&t->shape, sb, sizeof sb),
                            celer_dtype_name(t->dtype), nbytes);
    }
    uint8_t *dst;
    TRY(alloc_data(d, nbytes, &dst));
    TRY(celer_read_exact(e->fd, offset, dst, nbytes, loc));
    if (t->dtype == CELER_BOOL) clean_bools(dst, nbytes);
    t->data = dst;
    return CELER_OK;
}

/* Decodes a TensorProto into *t (and its name into *name_out when not NULL). */
static celer_status decode_tensor_body(dec *d, const uint8_t *p, size_t n, celer_tensor *t,
                                       const char **name_out) {
    size_t counts[T_FIELD_COUNT] = {0}, n_dims = 0;
    int64_t dtype = 0, location = 0;
    bool has_raw = false, has_segment = false, bad_dim = false;
    pb_field raw = {0};
    const char *name = "";
    memset(t, 0, sizeof *t);

    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    while ((rc = pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case T_DIMS: {
            pb_scalars it;
            uint64_t v;
            int vrc;
            if (pb_scalars_begin(&it, &f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            while ((vrc = pb_scalars_next(&it, &v)) == 1) {
                if (n_dims < CELER_MAX_RANK) t->shape.dims[n_dims] = (int64_t)v;
                if ((int64_t)v < 0) bad_dim = true;
                n_dims++;
            }
            if (vrc < 0) return CELER_ERR_PARSE;
            break;
        }
        case T_DTYPE:
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            dtype = (int64_t)f.u;
            break;
        case T_SEGMENT: has_segment = true; break;
        case T_FLOAT: case T_INT32: case T_INT64: case T_DOUBLE: case T_UINT64: {
            size_t c;
            if (pb_scalars_count(&f, elem_wire_of((int)f.num), &c) < 0) return CELER_ERR_PARSE;
            counts[f.num] += c;
            break;
        }
        case T_STRING:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            counts[T_STRING]++;
            break;
        case T_NAME: TRY(dup_field(d, &f, true, &name, NULL)); break;
        case T_RAW:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            raw = f;
            has_raw = true;
            break;
        case T_EXTERNAL:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            break;
        case T_LOCATION:
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            location = (int64_t)f.u;
            break;
        default: break;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (name_out) *name_out = name;

    if (has_segment) return celer_errorf(CELER_ERR_UNSUPPORTED, "segmented tensors are not supported");
    if (n_dims > CELER_MAX_RANK)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "rank %zu is above the supported maximum of %d", n_dims,
                            CELER_MAX_RANK);
    t->shape.rank = (int)n_dims;
    if (bad_dim) return celer_errorf(CELER_ERR_INVALID, "negative dimension in dims");
    if (dtype == 0) return celer_errorf(CELER_ERR_INVALID, "data_type is not set");
    if (dtype < 0 || dtype >= CELER_DTYPE_COUNT || celer_dtype_size((celer_dtype)dtype) == 0)
        return unsupported_type("data_type", dtype);
    t->dtype = (celer_dtype)dtype;
    int64_t numel = celer_shape_numel(&t->shape);
    size_t esz = celer_dtype_size(t->dtype), nbytes;
    char sb[128];
    if (numel < 0 || celer_mul_size((size_t)numel, esz, &nbytes))
        return celer_errorf(CELER_ERR_LIMIT, "shape %s of %s is too large",
                            celer_shape_str(&t->shape, sb, sizeof sb), celer_dtype_name(t->dtype));
    int per_elem, want = typed_field(t->dtype, &per_elem);

    if (location != 0 && location != 1)
        return celer_errorf(CELER_ERR_INVALID, "data_location %lld is not DEFAULT or EXTERNAL", (long long)location);
    if (location == 1 || has_raw) {
        const char *how = location == 1 ? "external data" : "raw_data";
        if (t->dtype == CELER_STRING) return celer_errorf(CELER_ERR_INVALID, "string tensor with %s", how);
        if (location == 1 && has_raw) return celer_errorf(CELER_ERR_INVALID, "tensor has both raw_data and external data");
        for (int i = 0; i < T_FIELD_COUNT; i++)
            if (counts[i])
                return celer_errorf(CELER_ERR_INVALID, "tensor has both %s and %s", how, tensor_field_name(i));
        if (location == 1) return resolve_external(d, p, n, t, nbytes);
        if (raw.len != nbytes)
            return celer_errorf(CELER_ERR_INVALID, "raw_data has %zu bytes, shape %s of %s needs %zu", raw.len,
                                celer_shape_str(&t->shape, sb, sizeof sb), celer_dtype_name(t->dtype), nbytes);
        static const uint8_t empty[1];
        return place_bytes(d, t, raw.len ? raw.data : empty, nbytes);
    }

    for (int i = 0; i < T_FIELD_COUNT; i++)
        if (counts[i] && i != want)
            return celer_errorf(CELER_ERR_INVALID, "tensor of type %s has %s", celer_dtype_name(t->dtype),
                                tensor_field_name(i));
    size_t need = (size_t)numel * (size_t)per_elem; /* cannot overflow: nbytes did not */
    if (counts[want] != need)
        return celer_errorf(CELER_ERR_INVALID, "%s has %zu values, shape %s of %s needs %zu",
                            tensor_field_name(want), counts[want], celer_shape_str(&t->shape, sb, sizeof sb),
                            celer_dtype_name(t->dtype), need);
    uint8_t *dst = dalloc(d, nbytes ? nbytes : 1, 64);
    if (!dst) return CELER_ERR_NOMEM;
    t->data = dst;
    size_t k = 0, width = esz / (size_t)per_elem;
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num != (uint32_t)want) continue;
        if (want == T_STRING) {
            celer_str s;
            if (k >= need) break;
            TRY(dup_field(d, &f, false, &s.data, &s.len));
            memcpy(dst + k++ * sizeof s, &s, sizeof s);
            continue;
        }
        pb_scalars it;
        uint64_t v;
        if (pb_scalars_begin(&it, &f, elem_wire_of(want)) < 0) return CELER_ERR_PARSE;
        while (k < need && pb_scalars_next(&it, &v) == 1) store_value(dst + k++ * width, width, t->dtype, v);
    }
    return rc < 0 ? CELER_ERR_PARSE : CELER_OK;
}

/* decode_tensor_body with "tensor 'name'" in front of any message. */
static celer_status decode_tensor(dec *d, const uint8_t *p, size_t n, celer_tensor *t, const char **name_out) {
    celer_status st = decode_tensor_body(d, p, n, t, name_out);
    if (st == CELER_OK) return st;
    str_slice nm = scan_name(p, n, T_NAME);
    if (nm.len) return celer_error_wrap(st, "tensor '%.*s'", nm.len, nm.s);
    return celer_error_wrap(st, "tensor");
}

/* ---- value info ---- */

static celer_status decode_shape(const uint8_t *p, size_t n, dec *d, celer_onnx_value_info *vi) {
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc, rank = 0;
    vi->has_shape = true;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num != SHAPE_DIM) continue;
        if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
        if (rank == CELER_MAX_RANK)
            return celer_errorf(CELER_ERR_UNSUPPORTED, "rank above the supported maximum of %d", CELER_MAX_RANK);
        int64_t value = -1;
        const char *param = NULL;
        pb_reader dr = pb_init(f.data, f.len);
        pb_field df;
        int drc;
        while ((drc = pb_next(&dr, &df)) == 1) {
            if (df.num == DIM_VALUE) {
                if (pb_expect(&df, PB_VARINT) < 0) return CELER_ERR_PARSE;
                value = (int64_t)df.u < 0 ? -1 : (int64_t)df.u; /* some exporters write -1 for "dynamic" */
                param = NULL;
            } else if (df.num == DIM_PARAM) {
                TRY(dup_field(d, &df, false, &param, NULL));
                value = -1;
            }
        }
        if (drc < 0) return CELER_ERR_PARSE;
        vi->shape.dims[rank] = value;
        vi->dim_params[rank] = param;
        rank++;
    }
    if (rc < 0) return CELER_ERR_PARSE;
    vi->shape.rank = rank;
    return CELER_OK;
}

/* TypeProto.Tensor and TypeProto.SparseTensor share their layout. */
static celer_status decode_tensor_type(const uint8_t *p, size_t n, dec *d, celer_onnx_value_info *vi) {
    pb_reader r = pb_init(p, n);
    pb_field f, shape = {0};
    bool has_shape = false;
    int rc;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == TT_ELEM) {
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            int64_t e = (int64_t)f.u;
            if (e < 0 || e >= CELER_DTYPE_COUNT)
                return unsupported_type("element type", e);
            vi->dtype = (celer_dtype)e;
        } else if (f.num == TT_SHAPE) {
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            shape = f;
            has_shape = true;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    return has_shape ? decode_shape(shape.data, shape.len, d, vi) : CELER_OK;
}

static celer_status decode_value_info_body(dec *d, const uint8_t *p, size_t n, celer_onnx_value_info *vi) {
    pb_reader r = pb_init(p, n);
    pb_field f, type = {0};
    bool has_type = false;
    int rc;
    vi->name = "";
    vi->kind = CELER_VALUE_UNKNOWN;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == VI_NAME) TRY(dup_field(d, &f, true, &vi->name, NULL));
        else if (f.num == VI_TYPE) {
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            type = f;
            has_type = true;
        }
    }
    if (rc < 0 || !has_type) return rc < 0 ? CELER_ERR_PARSE : CELER_OK;
    /* TypeProto's `value` is a oneof: the last member present wins. Nested element types of
     * sequences, maps and optionals are not needed, so they are not decoded (no recursion). */
    r = pb_init(type.data, type.len);
    pb_field tensor = {0};
    while ((rc = pb_next(&r, &f)) == 1) {
        static const struct { uint32_t num; celer_value_kind kind; } kinds[] = {
            {TYPE_TENSOR, CELER_VALUE_TENSOR}, {TYPE_SEQUENCE, CELER_VALUE_SEQUENCE}, {TYPE_MAP, CELER_VALUE_MAP},
            {TYPE_SPARSE, CELER_VALUE_SPARSE}, {TYPE_OPTIONAL, CELER_VALUE_OPTIONAL}};
        for (size_t i = 0; i < CELER_ARRAY_LEN(kinds); i++) {
            if (f.num != kinds[i].num) continue;
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            vi->kind = kinds[i].kind;
            tensor = f;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (vi->kind == CELER_VALUE_TENSOR || vi->kind == CELER_VALUE_SPARSE)
        return decode_tensor_type(tensor.data, tensor.len, d, vi);
    return CELER_OK;
}

static celer_status decode_value_info(dec *d, const uint8_t *p, size_t n, const char *what, int index,
                                      celer_onnx_value_info *vi) {
    celer_status st = decode_value_info_body(d, p, n, vi);
    if (st == CELER_OK) return st;
    str_slice nm = scan_name(p, n, VI_NAME);
    return celer_error_wrap(st, "%s %d '%.*s'", what, index, nm.len, nm.s);
}

/* ---- attributes, nodes, graphs ---- */

static celer_status decode_graph(dec *d, const uint8_t *p, size_t n, celer_onnx_graph **out);

/* Old exporters leave `type` unset; the field present says what it is (first match wins). */
static const struct {
    uint32_t field;
    celer_attr_type type;
} attr_infer[] = {
    {ATTR_F, CELER_ATTR_FLOAT}, {ATTR_I, CELER_ATTR_INT}, {ATTR_S, CELER_ATTR_STRING},
    {ATTR_T, CELER_ATTR_TENSOR}, {ATTR_G, CELER_ATTR_GRAPH}, {ATTR_SPARSE, CELER_ATTR_SPARSE_TENSOR},
    {ATTR_TP, CELER_ATTR_TYPE_PROTO}, {ATTR_FLOATS, CELER_ATTR_FLOATS}, {ATTR_INTS, CELER_ATTR_INTS},
    {ATTR_STRINGS, CELER_ATTR_STRINGS}, {ATTR_TENSORS, CELER_ATTR_TENSORS}, {ATTR_GRAPHS, CELER_ATTR_GRAPHS},
    {ATTR_SPARSES, CELER_ATTR_SPARSE_TENSORS}, {ATTR_TYPE_PROTOS, CELER_ATTR_TYPE_PROTOS}};

/* Which repeated field holds the elements of a list type. */
static uint32_t list_field(celer_attr_type t) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(attr_infer); i++)
        if (attr_infer[i].type == t && t >= CELER_ATTR_FLOATS) return attr_infer[i].field;
    return 0;
}

#define ATTR_FIELD_COUNT 24

static celer_status decode_attr_body(dec *d, const uint8_t *p, size_t n, celer_onnx_attr *a) {
    size_t counts[ATTR_FIELD_COUNT] = {0}; /* occurrences (values for floats/ints) per field */
    pb_field last[ATTR_FIELD_COUNT] = {{0}};
    int64_t type = 0;
    bool has_type = false;
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    a->name = "";
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num >= ATTR_FIELD_COUNT) continue;
        switch (f.num) {
        case ATTR_NAME: TRY(dup_field(d, &f, true, &a->name, NULL)); break;
        case ATTR_TYPE:
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            type = (int64_t)f.u;
            has_type = true;
            break;
        case ATTR_F:
            if (pb_expect(&f, PB_I32) < 0) return CELER_ERR_PARSE;
            break;
        case ATTR_I:
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            break;
        case ATTR_FLOATS: case ATTR_INTS: {
            size_t c;
            if (pb_scalars_count(&f, f.num == ATTR_FLOATS ? PB_I32 : PB_VARINT, &c) < 0) return CELER_ERR_PARSE;
            counts[f.num] += c;
            last[f.num] = f;
            continue;
        }
        case ATTR_S: case ATTR_T: case ATTR_G: case ATTR_SPARSE: case ATTR_TP: case ATTR_STRINGS:
        case ATTR_TENSORS: case ATTR_GRAPHS: case ATTR_SPARSES: case ATTR_TYPE_PROTOS: case ATTR_REF:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            break;
        default: continue;
        }
        counts[f.num]++;
        last[f.num] = f;
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (counts[ATTR_REF] && !d->in_function)
        return celer_errorf(CELER_ERR_INVALID, "refers to a function attribute (ref_attr_name), which is only "
                                               "valid inside a function body");
    if (counts[ATTR_REF]) return dup_field(d, &last[ATTR_REF], true, &a->ref, NULL); /* its value comes from the call */
    if (!has_type) {
        for (size_t i = 0; i < CELER_ARRAY_LEN(attr_infer) && !type; i++)
            if (counts[attr_infer[i].field]) type = attr_infer[i].type;
    }
    if (type < 0 || type > CELER_ATTR_TYPE_PROTOS)
        return celer_errorf(CELER_ERR_INVALID, "unknown attribute type %lld", (long long)type);
    a->type = (celer_attr_type)type;
    if (counts[ATTR_F]) {
        uint32_t bits = (uint32_t)last[ATTR_F].u;
        memcpy(&a->f, &bits, 4);
    }
    if (counts[ATTR_I]) a->i = (int64_t)last[ATTR_I].u;

    switch (a->type) {
    case CELER_ATTR_UNDEFINED: case CELER_ATTR_FLOAT: case CELER_ATTR_INT: return CELER_OK;
    case CELER_ATTR_STRING:
        a->s = "";
        return counts[ATTR_S] ? dup_field(d, &last[ATTR_S], false, &a->s, &a->s_len) : CELER_OK;
    case CELER_ATTR_TENSOR: {
        if (!counts[ATTR_T]) return celer_errorf(CELER_ERR_INVALID, "type TENSOR but no tensor (field t)");
        a->t = dalloc(d, sizeof *a->t, 16);
        if (!a->t) return CELER_ERR_NOMEM;
        return decode_tensor(d, last[ATTR_T].data, last[ATTR_T].len, a->t, NULL);
    }
    case CELER_ATTR_GRAPH:
        if (!counts[ATTR_G]) return celer_errorf(CELER_ERR_INVALID, "type GRAPH but no graph (field g)");
        return decode_graph(d, last[ATTR_G].data, last[ATTR_G].len, &a->g);
    default: break;
    }

    /* List types: allocate the counted size, then fill in a second pass. */
    uint32_t lf = list_field(a->type);
    TRY(count_to_int(counts[lf], "list values", &a->n));
    if (a->type >= CELER_ATTR_SPARSE_TENSOR) return CELER_OK; /* recorded by type and count only */
    static const size_t elem_size[] = {[CELER_ATTR_FLOATS] = sizeof(float), [CELER_ATTR_INTS] = sizeof(int64_t),
                                       [CELER_ATTR_STRINGS] = sizeof(celer_str),
                                       [CELER_ATTR_TENSORS] = sizeof(celer_tensor),
                                       [CELER_ATTR_GRAPHS] = sizeof(celer_onnx_graph *)};
    void *arr = NULL;
    TRY(dalloc_array(d, counts[lf], elem_size[a->type], &arr));
    size_t k = 0, cap = counts[lf];
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num != lf) continue;
        if (a->type == CELER_ATTR_FLOATS || a->type == CELER_ATTR_INTS) {
            pb_scalars it;
            uint64_t v;
            if (pb_scalars_begin(&it, &f, a->type == CELER_ATTR_FLOATS ? PB_I32 : PB_VARINT) < 0)
                return CELER_ERR_PARSE;
            while (k < cap && pb_scalars_next(&it, &v) == 1) {
                if (a->type == CELER_ATTR_INTS) ((int64_t *)arr)[k++] = (int64_t)v;
                else {
                    uint32_t bits = (uint32_t)v;
                    memcpy((float *)arr + k++, &bits, 4);
                }
            }
            continue;
        }
        if (k >= cap) break;
        if (a->type == CELER_ATTR_STRINGS) {
            celer_str *e = (celer_str *)arr + k;
            TRY(dup_field(d, &f, false, &e->data, &e->len));
        } else if (a->type == CELER_ATTR_TENSORS) {
            celer_status st = decode_tensor(d, f.data, f.len, (celer_tensor *)arr + k, NULL);
            if (st) return celer_error_wrap(st, "tensors[%zu]", k);
        } else {
            celer_status st = decode_graph(d, f.data, f.len, (celer_onnx_graph **)arr + k);
            if (st) return celer_error_wrap(st, "graphs[%zu]", k);
        }
        k++;
    }
    if (rc < 0) return CELER_ERR_PARSE;
    switch (a->type) {
    case CELER_ATTR_FLOATS: a->floats = arr; break;
    case CELER_ATTR_INTS: a->ints = arr; break;
    case CELER_ATTR_STRINGS: a->strings = arr; break;
    case CELER_ATTR_TENSORS: a->tensors = arr; break;
    default: a->graphs = arr; break;
    }
    return CELER_OK;
}

static celer_status decode_attr(dec *d, const uint8_t *p, size_t n, int index, celer_onnx_attr *a) {
    celer_status st = decode_attr_body(d, p, n, a);
    if (st == CELER_OK) return st;
    str_slice nm = scan_name(p, n, ATTR_NAME);
    if (nm.len) return celer_error_wrap(st, "attribute '%.*s'", nm.len, nm.s);
    return celer_error_wrap(st, "attribute %d", index);
}

static celer_status decode_node_body(dec *d, const uint8_t *p, size_t n, celer_onnx_node *node) {
    size_t n_in = 0, n_out = 0, n_attr = 0;
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    node->name = node->op_type = node->domain = "";
    while ((rc = pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case NODE_INPUT: case NODE_OUTPUT: case NODE_ATTR:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            *(f.num == NODE_INPUT ? &n_in : f.num == NODE_OUTPUT ? &n_out : &n_attr) += 1;
            break;
        case NODE_NAME: TRY(dup_field(d, &f, true, &node->name, NULL)); break;
        case NODE_OP: TRY(dup_field(d, &f, true, &node->op_type, NULL)); break;
        case NODE_DOMAIN: TRY(dup_field(d, &f, true, &node->domain, NULL)); break;
        default: break;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (!node->op_type[0]) return celer_errorf(CELER_ERR_INVALID, "node has no op_type");
    if (strcmp(node->domain, "ai.onnx") == 0) node->domain = ""; /* one spelling of the default domain */
    TRY(count_to_int(n_in, "inputs", &node->n_inputs));
    TRY(count_to_int(n_out, "outputs", &node->n_outputs));
    TRY(count_to_int(n_attr, "attributes", &node->n_attrs));
    const char **ins = NULL, **outs = NULL;
    celer_onnx_attr *attrs = NULL;
    TRY(dalloc_array(d, n_in, sizeof *ins, (void **)&ins));
    TRY(dalloc_array(d, n_out, sizeof *outs, (void **)&outs));
    TRY(dalloc_array(d, n_attr, sizeof *attrs, (void **)&attrs));
    size_t ki = 0, ko = 0, ka = 0;
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == NODE_INPUT && ki < n_in) TRY(dup_field(d, &f, true, &ins[ki++], NULL));
        else if (f.num == NODE_OUTPUT && ko < n_out) TRY(dup_field(d, &f, true, &outs[ko++], NULL));
        else if (f.num == NODE_ATTR && ka < n_attr) {
            TRY(decode_attr(d, f.data, f.len, (int)ka, &attrs[ka]));
            ka++;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    node->inputs = ins;
    node->outputs = outs;
    node->attrs = attrs;
    return CELER_OK;
}

static celer_status decode_node(dec *d, const uint8_t *p, size_t n, int index, celer_onnx_node *node) {
    celer_status st = decode_node_body(d, p, n, node);
    if (st == CELER_OK) return st;
    str_slice op = scan_name(p, n, NODE_OP), nm = scan_name(p, n, NODE_NAME);
    if (!op.len) return celer_error_wrap(st, "node %d", index);
    if (nm.len) return celer_error_wrap(st, "node %d (%.*s '%.*s')", index, op.len, op.s, nm.len, nm.s);
    return celer_error_wrap(st, "node %d (%.*s)", index, op.len, op.s);
}

static celer_status decode_graph_body(dec *d, const uint8_t *p, size_t n, celer_onnx_graph *g) {
    size_t counts[GRAPH_SPARSE_INIT + 1] = {0};
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    g->name = "";
    while ((rc = pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case GRAPH_NAME: TRY(dup_field(d, &f, true, &g->name, NULL)); break;
        case GRAPH_NODE: case GRAPH_INIT: case GRAPH_INPUT: case GRAPH_OUTPUT: case GRAPH_VALUE_INFO:
        case GRAPH_SPARSE_INIT:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            counts[f.num]++;
            break;
        default: break;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (counts[GRAPH_SPARSE_INIT])
        return celer_errorf(CELER_ERR_UNSUPPORTED, "%zu sparse_initializer entries: sparse initializers are "
                                                   "not supported", counts[GRAPH_SPARSE_INIT]);
    TRY(count_to_int(counts[GRAPH_NODE], "nodes", &g->n_nodes));
    TRY(count_to_int(counts[GRAPH_INIT], "initializers", &g->n_initializers));
    TRY(count_to_int(counts[GRAPH_INPUT], "inputs", &g->n_inputs));
    TRY(count_to_int(counts[GRAPH_OUTPUT], "outputs", &g->n_outputs));
    TRY(count_to_int(counts[GRAPH_VALUE_INFO], "value_info entries", &g->n_value_infos));
    celer_onnx_node *nodes = NULL;
    celer_onnx_named_tensor *inits = NULL;
    celer_onnx_value_info *ins = NULL, *outs = NULL, *vis = NULL;
    TRY(dalloc_array(d, counts[GRAPH_NODE], sizeof *nodes, (void **)&nodes));
    TRY(dalloc_array(d, counts[GRAPH_INIT], sizeof *inits, (void **)&inits));
    TRY(dalloc_array(d, counts[GRAPH_INPUT], sizeof *ins, (void **)&ins));
    TRY(dalloc_array(d, counts[GRAPH_OUTPUT], sizeof *outs, (void **)&outs));
    TRY(dalloc_array(d, counts[GRAPH_VALUE_INFO], sizeof *vis, (void **)&vis));
    size_t k[GRAPH_SPARSE_INIT + 1] = {0};
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num > GRAPH_SPARSE_INIT || !counts[f.num] || k[f.num] >= counts[f.num]) continue;
        int i = (int)k[f.num];
        switch (f.num) {
        case GRAPH_NODE: TRY(decode_node(d, f.data, f.len, i, &nodes[i])); break;
        case GRAPH_INIT: {
            celer_status st = decode_tensor(d, f.data, f.len, &inits[i].tensor, &inits[i].name);
            if (st) return celer_error_wrap(st, "initializer %d", i);
            if (!inits[i].name[0]) return celer_errorf(CELER_ERR_INVALID, "initializer %d has no name", i);
            break;
        }
        case GRAPH_INPUT: TRY(decode_value_info(d, f.data, f.len, "input", i, &ins[i])); break;
        case GRAPH_OUTPUT: TRY(decode_value_info(d, f.data, f.len, "output", i, &outs[i])); break;
        case GRAPH_VALUE_INFO: TRY(decode_value_info(d, f.data, f.len, "value_info", i, &vis[i])); break;
        default: continue;
        }
        k[f.num]++;
    }
    if (rc < 0) return CELER_ERR_PARSE;
    g->nodes = nodes;
    g->initializers = inits;
    g->inputs = ins;
    g->outputs = outs;
    g->value_infos = vis;
    return CELER_OK;
}

static celer_status decode_graph(dec *d, const uint8_t *p, size_t n, celer_onnx_graph **out) {
    if (d->graph_depth >= CELER_ONNX_MAX_GRAPH_DEPTH)
        return celer_errorf(CELER_ERR_LIMIT, "subgraphs nested deeper than %d", CELER_ONNX_MAX_GRAPH_DEPTH);
    celer_onnx_graph *g = dalloc(d, sizeof *g, 16);
    if (!g) return CELER_ERR_NOMEM;
    d->graph_depth++;
    celer_status st = decode_graph_body(d, p, n, g);
    d->graph_depth--;
    if (st) {
        str_slice nm = scan_name(p, n, GRAPH_NAME);
        return celer_error_wrap(st, "graph '%.*s'", nm.len, nm.s);
    }
    *out = g;
    return CELER_OK;
}

/* ---- model-local functions ----
 * A FunctionProto (IR >= 8) is an operator defined by the model: a node whose (domain, op_type)
 * names one is replaced by the function's body at load, with the body's formal inputs and
 * outputs renamed to the call's, its other values given names of their own, and attributes that
 * refer to the function's (ref_attr_name) taking the call's value or the function's default.
 * Calls inside function bodies are expanded too, MAX_FUNCTION_DEPTH deep at most. */

static celer_status decode_string_pair(dec *d, const pb_field *f, uint32_t k1, uint32_t k2, const char **a,
                                       const char **b, int64_t *v);

#define MAX_FUNCTION_DEPTH 16
#define MAX_INLINED_NODES (1 << 20)

typedef struct onnx_function {
    const char *name, *domain;
    int n_inputs, n_outputs, n_attr_names, n_defaults, n_nodes;
    const char **inputs, **outputs, **attr_names;
    celer_onnx_attr *defaults; /* attribute_proto: default values */
    celer_onnx_node *nodes;
    int64_t default_opset; /* the body's version of the default domain; 0 when not imported */
} onnx_function;

static celer_status decode_function_body(dec *d, const uint8_t *p, size_t n, onnx_function *fn) {
    size_t counts[FN_FIELD_COUNT] = {0};
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    fn->name = fn->domain = "";
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num >= FN_FIELD_COUNT) continue;
        switch (f.num) {
        case FN_NAME: TRY(dup_field(d, &f, true, &fn->name, NULL)); break;
        case FN_DOMAIN: TRY(dup_field(d, &f, true, &fn->domain, NULL)); break;
        case FN_OVERLOAD:
            if (f.wire == PB_LEN && f.len)
                return celer_errorf(CELER_ERR_UNSUPPORTED, "overloaded functions are not supported");
            break;
        case FN_INPUT: case FN_OUTPUT: case FN_ATTR_NAME: case FN_NODE: case FN_OPSET: case FN_ATTR_PROTO:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            counts[f.num]++;
            break;
        default: break;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (!fn->name[0]) return celer_errorf(CELER_ERR_INVALID, "function has no name");
    TRY(count_to_int(counts[FN_INPUT], "inputs", &fn->n_inputs));
    TRY(count_to_int(counts[FN_OUTPUT], "outputs", &fn->n_outputs));
    TRY(count_to_int(counts[FN_ATTR_NAME], "attributes", &fn->n_attr_names));
    TRY(count_to_int(counts[FN_ATTR_PROTO], "attribute defaults", &fn->n_defaults));
    TRY(count_to_int(counts[FN_NODE], "nodes", &fn->n_nodes));
    TRY(dalloc_array(d, counts[FN_INPUT], sizeof *fn->inputs, (void **)&fn->inputs));
    TRY(dalloc_array(d, counts[FN_OUTPUT], sizeof *fn->outputs, (void **)&fn->outputs));
    TRY(dalloc_array(d, counts[FN_ATTR_NAME], sizeof *fn->attr_names, (void **)&fn->attr_names));
    TRY(dalloc_array(d, counts[FN_ATTR_PROTO], sizeof *fn->defaults, (void **)&fn->defaults));
    TRY(dalloc_array(d, counts[FN_NODE], sizeof *fn->nodes, (void **)&fn->nodes));
    size_t k[FN_FIELD_COUNT] = {0};
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num >= FN_FIELD_COUNT || f.wire != PB_LEN) continue;
        size_t i = k[f.num];
        if (f.num == FN_INPUT) TRY(dup_field(d, &f, true, &fn->inputs[i], NULL));
        else if (f.num == FN_OUTPUT) TRY(dup_field(d, &f, true, &fn->outputs[i], NULL));
        else if (f.num == FN_ATTR_NAME) TRY(dup_field(d, &f, true, &fn->attr_names[i], NULL));
        else if (f.num == FN_ATTR_PROTO) TRY(decode_attr(d, f.data, f.len, (int)i, &fn->defaults[i]));
        else if (f.num == FN_NODE) {
            d->in_function = true;
            celer_status st = decode_node(d, f.data, f.len, (int)i, &fn->nodes[i]);
            d->in_function = false;
            TRY(st);
        } else if (f.num == FN_OPSET) {
            const char *dom;
            int64_t version;
            TRY(decode_string_pair(d, &f, OPSET_DOMAIN, OPSET_VERSION, &dom, NULL, &version));
            if (!dom[0] || !strcmp(dom, "ai.onnx")) fn->default_opset = version;
        } else {
            continue;
        }
        k[f.num]++;
    }
    if (rc < 0) return CELER_ERR_PARSE;
    return CELER_OK;
}

/* The model's functions, and a counter that names the values of each expansion apart. */
typedef struct inliner {
    dec *d;
    const onnx_function *fns;
    int n_fns;
    int64_t model_opset; /* the model's default-domain version */
    long expansions;
    celer_onnx_node *out; /* the expanded node list being built */
    size_t n_out, cap_out;
} inliner;

static const onnx_function *find_function(const inliner *in, const celer_onnx_node *node) {
    for (int i = 0; i < in->n_fns; i++)
        if (!strcmp(in->fns[i].name, node->op_type) && !strcmp(in->fns[i].domain, node->domain)) return &in->fns[i];
    return NULL;
}

static celer_status push_node(inliner *in, const celer_onnx_node *node) {
    if (in->n_out == in->cap_out) {
        size_t cap = in->cap_out ? 2 * in->cap_out : 64;
        if (cap > MAX_INLINED_NODES)
            return celer_errorf(CELER_ERR_LIMIT, "more than %d nodes once model-local functions are inlined",
                                MAX_INLINED_NODES);
        celer_onnx_node *nodes = NULL;
        TRY(dalloc_array(in->d, cap, sizeof *nodes, (void **)&nodes));
        if (in->n_out) memcpy(nodes, in->out, in->n_out * sizeof *nodes);
        in->out = nodes, in->cap_out = cap; /* the old array stays in the arena until the model goes */
    }
    in->out[in->n_out++] = *node;
    return CELER_OK;
}

static celer_status expand(inliner *in, const celer_onnx_node *node, int depth);

/* The name a body value takes in one expansion: the call's input or output for a formal one, ""
 * for a formal input the call omits, else one of its own. */
static celer_status rename_value(inliner *in, const onnx_function *fn, const celer_onnx_node *call, long id,
                           const char *name, const char **out) {
    if (!name[0]) {
        *out = "";
        return CELER_OK;
    }
    for (int i = 0; i < fn->n_inputs; i++)
        if (!strcmp(fn->inputs[i], name)) {
            *out = i < call->n_inputs ? call->inputs[i] : "";
            return CELER_OK;
        }
    for (int i = 0; i < fn->n_outputs; i++)
        if (!strcmp(fn->outputs[i], name)) {
            *out = i < call->n_outputs ? call->outputs[i] : "";
            return CELER_OK;
        }
    size_t len = strlen(fn->name) + strlen(name) + 32;
    char *s = dalloc(in->d, len, 1);
    if (!s) return CELER_ERR_NOMEM;
    snprintf(s, len, "%s#%ld/%s", fn->name, id, name);
    *out = s;
    return CELER_OK;
}

/* Appends the body of `fn` for `call`, renamed, its calls expanded in turn. */
static celer_status expand_call(inliner *in, const onnx_function *fn, const celer_onnx_node *call, int depth) {
    if (depth >= MAX_FUNCTION_DEPTH)
        return celer_errorf(CELER_ERR_LIMIT, "function '%s' calls functions more than %d deep (recursion?)", fn->name,
                            MAX_FUNCTION_DEPTH);
    if (fn->default_opset && in->model_opset && fn->default_opset != in->model_opset)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "function '%s' imports opset %lld of ai.onnx and the model %lld: "
                            "a body is run at the model's version", fn->name, (long long)fn->default_opset,
                            (long long)in->model_opset);
    if (call->n_inputs > fn->n_inputs || call->n_outputs > fn->n_outputs)
        return celer_errorf(CELER_ERR_INVALID, "the call of function '%s' has %d inputs and %d outputs; it takes at "
                            "most %d and %d", fn->name, call->n_inputs, call->n_outputs, fn->n_inputs, fn->n_outputs);
    long id = in->expansions++;
    for (int k = 0; k < fn->n_nodes; k++) {
        const celer_onnx_node *b = &fn->nodes[k];
        celer_onnx_node node = *b;
        const char **ins = NULL, **outs = NULL;
        celer_onnx_attr *attrs = NULL;
        TRY(dalloc_array(in->d, (size_t)b->n_inputs, sizeof *ins, (void **)&ins));
        TRY(dalloc_array(in->d, (size_t)b->n_outputs, sizeof *outs, (void **)&outs));
        TRY(dalloc_array(in->d, (size_t)b->n_attrs, sizeof *attrs, (void **)&attrs));
        for (int i = 0; i < b->n_inputs; i++) TRY(rename_value(in, fn, call, id, b->inputs[i], &ins[i]));
        for (int i = 0; i < b->n_outputs; i++) TRY(rename_value(in, fn, call, id, b->outputs[i], &outs[i]));
        int n_attrs = 0;
        for (int i = 0; i < b->n_attrs; i++) {
            const celer_onnx_attr *a = &b->attrs[i], *v = NULL;
            if (a->type == CELER_ATTR_GRAPH || a->type == CELER_ATTR_GRAPHS)
                return celer_errorf(CELER_ERR_UNSUPPORTED, "function '%s': node %d (%s) has a subgraph attribute; "
                                    "subgraphs inside functions are not supported", fn->name, k, b->op_type);
            if (!a->ref) {
                attrs[n_attrs++] = *a;
                continue;
            }
            for (int j = 0; j < call->n_attrs && !v; j++)
                if (!strcmp(call->attrs[j].name, a->ref)) v = &call->attrs[j];
            for (int j = 0; j < fn->n_defaults && !v; j++)
                if (!strcmp(fn->defaults[j].name, a->ref)) v = &fn->defaults[j];
            if (!v) continue; /* neither given nor defaulted: the attribute is absent */
            attrs[n_attrs] = *v;
            attrs[n_attrs].name = a->name;
            attrs[n_attrs++].ref = NULL;
        }
        node.inputs = ins, node.outputs = outs, node.attrs = attrs, node.n_attrs = n_attrs;
        if (call->name[0]) { /* messages name the call and the body node */
            size_t len = strlen(call->name) + strlen(b->name) + 2;
            char *s = dalloc(in->d, len, 1);
            if (!s) return CELER_ERR_NOMEM;
            snprintf(s, len, "%s/%s", call->name, b->name);
            node.name = s;
        }
        TRY(expand(in, &node, depth + 1));
    }
    return CELER_OK;
}

static celer_status expand(inliner *in, const celer_onnx_node *node, int depth) {
    const onnx_function *fn = find_function(in, node);
    if (!fn) return push_node(in, node);
    celer_status st = expand_call(in, fn, node, depth);
    return st ? celer_error_wrap(st, "node '%s' (function %s)", node->name, fn->name) : CELER_OK;
}

/* Decodes the model's functions (fields `fields`, n of them) and inlines their calls in g. */
static celer_status inline_functions(dec *d, const pb_field *fields, int n, celer_onnx_model *m, celer_onnx_graph *g) {
    onnx_function *fns = NULL;
    TRY(dalloc_array(d, (size_t)n, sizeof *fns, (void **)&fns));
    for (int i = 0; i < n; i++) {
        celer_status st = decode_function_body(d, fields[i].data, fields[i].len, &fns[i]);
        if (st) {
            str_slice nm = scan_name(fields[i].data, fields[i].len, FN_NAME);
            return celer_error_wrap(st, "function %d '%.*s'", i, nm.len, nm.s);
        }
    }
    inliner in = {.d = d, .fns = fns, .n_fns = n, .model_opset = celer_onnx_opset_version(m, "")};
    for (int k = 0; k < g->n_nodes; k++) TRY(expand(&in, &g->nodes[k], 0));
    TRY(count_to_int(in.n_out, "nodes", &g->n_nodes));
    g->nodes = in.out;
    return CELER_OK;
}

/* ---- model ---- */

static celer_status decode_string_pair(dec *d, const pb_field *f, uint32_t k1, uint32_t k2, const char **a,
                                       const char **b, int64_t *num) {
    pb_reader r = pb_init(f->data, f->len);
    pb_field e;
    int rc;
    *a = "";
    if (b) *b = "";
    while ((rc = pb_next(&r, &e)) == 1) {
        if (e.num == k1) TRY(dup_field(d, &e, false, a, NULL));
        else if (e.num == k2 && b) TRY(dup_field(d, &e, false, b, NULL));
        else if (e.num == k2 && num) {
            if (pb_expect(&e, PB_VARINT) < 0) return CELER_ERR_PARSE;
            *num = (int64_t)e.u;
        }
    }
    return rc < 0 ? CELER_ERR_PARSE : CELER_OK;
}

static celer_status decode_model(dec *d, const uint8_t *p, size_t n, celer_onnx_model *m) {
    size_t n_opsets = 0, n_props = 0, n_functions = 0;
    pb_field graph = {0};
    bool has_graph = false, has_ir = false;
    pb_reader r = pb_init(p, n);
    pb_field f;
    int rc;
    m->producer_name = m->producer_version = m->domain = m->doc_string = "";
    while ((rc = pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case MODEL_IR: case MODEL_VERSION:
            if (pb_expect(&f, PB_VARINT) < 0) return CELER_ERR_PARSE;
            *(f.num == MODEL_IR ? &m->ir_version : &m->model_version) = (int64_t)f.u;
            has_ir |= f.num == MODEL_IR;
            break;
        case MODEL_PRODUCER: TRY(dup_field(d, &f, false, &m->producer_name, NULL)); break;
        case MODEL_PRODUCER_VER: TRY(dup_field(d, &f, false, &m->producer_version, NULL)); break;
        case MODEL_DOMAIN: TRY(dup_field(d, &f, false, &m->domain, NULL)); break;
        case MODEL_DOC: TRY(dup_field(d, &f, false, &m->doc_string, NULL)); break;
        case MODEL_GRAPH: case MODEL_OPSET: case MODEL_PROPS: case MODEL_FUNCTIONS:
            if (pb_expect(&f, PB_LEN) < 0) return CELER_ERR_PARSE;
            if (f.num == MODEL_GRAPH) {
                graph = f; /* a repeated singular message: the last one is used */
                has_graph = true;
            }
            n_opsets += f.num == MODEL_OPSET;
            n_props += f.num == MODEL_PROPS;
            n_functions += f.num == MODEL_FUNCTIONS;
            break;
        default: break;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    if (!has_ir) return celer_errorf(CELER_ERR_INVALID, "ir_version is not set (is this an ONNX model?)");
    if (m->ir_version < IR_VERSION_MIN || m->ir_version > IR_VERSION_MAX)
        return celer_errorf(CELER_ERR_UNSUPPORTED, "ir_version %lld is not supported (%d..%d are)",
                            (long long)m->ir_version, IR_VERSION_MIN, IR_VERSION_MAX);
    if (!has_graph) return celer_errorf(CELER_ERR_INVALID, "model has no graph");
    TRY(count_to_int(n_opsets, "opset imports", &m->n_opsets));
    TRY(count_to_int(n_props, "metadata_props", &m->n_props));
    TRY(count_to_int(n_functions, "functions", &m->n_functions));
    celer_onnx_opset *opsets = NULL;
    celer_onnx_prop *props = NULL;
    TRY(dalloc_array(d, n_opsets, sizeof *opsets, (void **)&opsets));
    TRY(dalloc_array(d, n_props, sizeof *props, (void **)&props));
    size_t ko = 0, kp = 0;
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == MODEL_OPSET && ko < n_opsets) {
            celer_status st = decode_string_pair(d, &f, OPSET_DOMAIN, OPSET_VERSION, &opsets[ko].domain, NULL,
                                                 &opsets[ko].version);
            if (st) return celer_error_wrap(st, "opset_import %zu", ko);
            ko++;
        } else if (f.num == MODEL_PROPS && kp < n_props) {
            celer_status st = decode_string_pair(d, &f, ENTRY_KEY, ENTRY_VALUE, &props[kp].key, &props[kp].value, NULL);
            if (st) return celer_error_wrap(st, "metadata_props %zu", kp);
            kp++;
        }
    }
    if (rc < 0) return CELER_ERR_PARSE;
    m->opsets = opsets;
    m->props = props;
    celer_onnx_graph *g = NULL;
    TRY(decode_graph(d, graph.data, graph.len, &g));
    m->graph = g;
    if (!n_functions) return CELER_OK;
    pb_field *fields = NULL;
    TRY(dalloc_array(d, n_functions, sizeof *fields, (void **)&fields));
    size_t kf = 0;
    r = pb_init(p, n);
    while ((rc = pb_next(&r, &f)) == 1)
        if (f.num == MODEL_FUNCTIONS && kf < n_functions) fields[kf++] = f;
    return inline_functions(d, fields, m->n_functions, m, g);
}

static void release_private(struct celer_onnx_private *priv) {
    for (big_copy *c = priv->copies; c; c = c->next)
        if (c->data) munmap(c->data, c->len);
    close_external(priv);
    if (priv->image) munmap(priv->image, priv->image_len);
    celer_arena_free(&priv->arena);
    free(priv);
}

/* Decodes with `what` (file name or "ONNX model") in front of any message. `image` (NULL for
 * bytes the caller owns) is the anonymous mapping holding `bytes`: the model owns it from here
 * on, also when decoding fails, and makes it read-only once decoded. */
static celer_status parse_model(const void *bytes, size_t len, void *image, const char *base_dir,
                                const char *what, celer_onnx_model **out) {
    *out = NULL;
    if (!bytes && len) return celer_errorf(CELER_ERR_INVALID, "%s: NULL bytes", what);
    struct celer_onnx_private *priv = calloc(1, sizeof *priv);
    if (!priv) {
        if (image) munmap(image, len);
        return celer_errorf(CELER_ERR_NOMEM, "%s: out of memory", what);
    }
    celer_arena_init(&priv->arena, 64 * 1024, 0);
    priv->image = image; /* set before decoding: copies out of it give its pages back */
    priv->image_len = image ? len : 0;
    dec d = {.arena = &priv->arena, .base_dir = base_dir, .priv = priv};
    celer_onnx_model *m = dalloc(&d, sizeof *m, 16);
    celer_status st = m ? decode_model(&d, bytes, len, m) : CELER_ERR_NOMEM;
    if (st) {
        release_private(priv);
        return celer_error_wrap(st, "%s", what);
    }
    close_external(priv);
    /* weights are used in place: a stray write into them faults instead of changing answers */
    if (image) mprotect(image, len, PROT_READ);
    m->priv = priv;
    *out = m;
    return CELER_OK;
}

celer_status celer_onnx_parse(const void *bytes, size_t len, const char *base_dir, celer_onnx_model **out) {
    return parse_model(bytes, len, NULL, base_dir, "ONNX model", out);
}

celer_status celer_onnx_load(const char *path, celer_onnx_model **out) {
    *out = NULL;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = 0;
    } else {
        return celer_errorf(CELER_ERR_LIMIT, "path '%s' is too long", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    celer_status code = CELER_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        code = celer_errorf(CELER_ERR_IO, "'%s' is not a regular file", path);
    else if (st.st_size == 0)
        code = celer_errorf(CELER_ERR_PARSE, "'%s' is empty", path);
    else if ((unsigned long long)st.st_size > CELER_ONNX_MAX_FILE)
        code = celer_errorf(CELER_ERR_LIMIT, "'%s' is larger than %llu bytes", path,
                            (unsigned long long)CELER_ONNX_MAX_FILE);
    size_t len = code ? 0 : (size_t)st.st_size;
    void *image = NULL;
    if (!code) code = celer_read_pages(fd, len, path, &image);
    close(fd);
    if (code) return code;
    return parse_model(image, len, image, dir, path, out);
}

void celer_onnx_release_data(celer_onnx_model *model, const celer_tensor *t) {
    struct celer_onnx_private *priv = model->priv;
    size_t n;
    if (!t->data || celer_tensor_bytes(t, &n) || !n) return;
    for (big_copy *c = priv->copies; c; c = c->next)
        if (c->data == t->data) {
            munmap(c->data, c->len);
            c->data = NULL;
            return;
        }
    if (in_image(priv, t->data, n)) drop_pages(t->data, n);
}

void celer_onnx_free(celer_onnx_model *model) {
    if (model) release_private(model->priv); /* the model struct itself lives in the arena */
}

celer_status celer_onnx_parse_tensor(const void *bytes, size_t len, celer_arena *arena, celer_tensor *out,
                                     const char **name) {
    if (!bytes && len) return celer_errorf(CELER_ERR_INVALID, "TensorProto: NULL bytes");
    dec d = {.arena = arena, .direct = true};
    celer_status st = decode_tensor(&d, bytes, len, out, name);
    if (st) return celer_error_wrap(st, "TensorProto");
    return CELER_OK;
}

/* ---- queries ---- */

static bool is_default_domain(const char *d) { return !d || !d[0] || strcmp(d, "ai.onnx") == 0; }

int64_t celer_onnx_opset_version(const celer_onnx_model *model, const char *domain) {
    bool want_default = is_default_domain(domain);
    for (int i = 0; i < model->n_opsets; i++) {
        const char *d = model->opsets[i].domain;
        if (want_default ? is_default_domain(d) : strcmp(d, domain) == 0) return model->opsets[i].version;
    }
    return 0;
}

const celer_onnx_attr *celer_onnx_attr_find(const celer_onnx_node *node, const char *name) {
    for (int i = 0; i < node->n_attrs; i++)
        if (strcmp(node->attrs[i].name, name) == 0) return &node->attrs[i];
    return NULL;
}

int64_t celer_onnx_attr_int(const celer_onnx_node *node, const char *name, int64_t dflt) {
    const celer_onnx_attr *a = celer_onnx_attr_find(node, name);
    return a && a->type == CELER_ATTR_INT ? a->i : dflt;
}

float celer_onnx_attr_float(const celer_onnx_node *node, const char *name, float dflt) {
    const celer_onnx_attr *a = celer_onnx_attr_find(node, name);
    return a && a->type == CELER_ATTR_FLOAT ? a->f : dflt;
}

const char *celer_onnx_attr_string(const celer_onnx_node *node, const char *name, const char *dflt) {
    const celer_onnx_attr *a = celer_onnx_attr_find(node, name);
    return a && a->type == CELER_ATTR_STRING ? a->s : dflt;
}

int celer_onnx_attr_ints(const celer_onnx_node *node, const char *name, const int64_t **out) {
    const celer_onnx_attr *a = celer_onnx_attr_find(node, name);
    if (!a || a->type != CELER_ATTR_INTS) return -1;
    *out = a->ints;
    return a->n;
}

int celer_onnx_attr_floats(const celer_onnx_node *node, const char *name, const float **out) {
    const celer_onnx_attr *a = celer_onnx_attr_find(node, name);
    if (!a || a->type != CELER_ATTR_FLOATS) return -1;
    *out = a->floats;
    return a->n;
}
