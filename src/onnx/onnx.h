/* onnx: reads .onnx files (ModelProto) into plain C structs, with weights referenced in place.
 *
 * The file is read once into anonymous memory the model owns (its "image", read-only after the
 * decode); raw tensor bytes that are suitably aligned are used where they lie in it, everything
 * else (typed repeated fields, misaligned raw data, strings) is decoded once into the model's
 * arena or a mapping of its own. External data is read tensor by tensor into memory of the model.
 * So a loaded model never reads its files again: one overwritten, truncated or deleted under it
 * changes nothing until it is loaded anew (a mapping of the file would die of SIGBUS).
 * Nothing here trusts the file: every length, count and nesting depth is checked, and a bad file
 * gives CELER_ERR_PARSE / CELER_ERR_INVALID / CELER_ERR_LIMIT with a message, never a crash. */
#ifndef CELER_ONNX_H
#define CELER_ONNX_H

#include "base/base.h"
#include "tensor/tensor.h"

/* Caps on what a file may ask of us. */
#define CELER_ONNX_MAX_GRAPH_DEPTH 16   /* nested subgraphs (If/Loop/Scan bodies) */
#define CELER_ONNX_MAX_FILE (16ull << 30)

typedef enum celer_attr_type {
    CELER_ATTR_UNDEFINED = 0,
    CELER_ATTR_FLOAT = 1,
    CELER_ATTR_INT = 2,
    CELER_ATTR_STRING = 3,
    CELER_ATTR_TENSOR = 4,
    CELER_ATTR_GRAPH = 5,
    CELER_ATTR_FLOATS = 6,
    CELER_ATTR_INTS = 7,
    CELER_ATTR_STRINGS = 8,
    CELER_ATTR_TENSORS = 9,
    CELER_ATTR_GRAPHS = 10,
    CELER_ATTR_SPARSE_TENSOR = 11,
    CELER_ATTR_SPARSE_TENSORS = 12,
    CELER_ATTR_TYPE_PROTO = 13,
    CELER_ATTR_TYPE_PROTOS = 14,
} celer_attr_type;

typedef struct celer_onnx_graph celer_onnx_graph;

/* Strings from the file are NUL-terminated copies in the model arena. */
typedef struct celer_onnx_attr {
    const char *name;
    const char *ref; /* inside a model-local function's body: the function attribute it takes
                        (ref_attr_name); NULL elsewhere (functions are inlined at load) */
    celer_attr_type type;
    float f;
    int64_t i;
    const char *s;       /* CELER_ATTR_STRING; may hold bytes, see s_len */
    size_t s_len;
    celer_tensor *t;     /* CELER_ATTR_TENSOR */
    celer_onnx_graph *g; /* CELER_ATTR_GRAPH */
    int n;               /* element count of the list types below */
    const float *floats;
    const int64_t *ints;
    const celer_str *strings; /* CELER_ATTR_STRINGS: bytes with their length (NUL-terminated copies) */
    const celer_tensor *tensors;
    celer_onnx_graph *const *graphs;
} celer_onnx_attr;

typedef struct celer_onnx_node {
    const char *name, *op_type, *domain; /* domain "" is the default ONNX domain */
    int n_inputs, n_outputs, n_attrs;
    const char *const *inputs;  /* "" marks an omitted optional input */
    const char *const *outputs; /* "" marks an omitted optional output */
    const celer_onnx_attr *attrs;
} celer_onnx_node;

typedef enum celer_value_kind {
    CELER_VALUE_TENSOR = 0,
    CELER_VALUE_SEQUENCE,
    CELER_VALUE_MAP,
    CELER_VALUE_OPTIONAL,
    CELER_VALUE_SPARSE,
    CELER_VALUE_UNKNOWN
} celer_value_kind;

/* A declared graph input, output or value_info entry. */
typedef struct celer_onnx_value_info {
    const char *name;
    celer_value_kind kind;
    celer_dtype dtype;                      /* element type; CELER_UNDEFINED when not given */
    bool has_shape;                         /* false: rank unknown */
    celer_shape shape;                      /* -1 for symbolic or unknown dims */
    const char *dim_params[CELER_MAX_RANK]; /* symbolic dim names, NULL where none */
} celer_onnx_value_info;

typedef struct celer_onnx_named_tensor {
    const char *name;
    celer_tensor tensor; /* data is read-only (may point into the model's image of its file) */
} celer_onnx_named_tensor;

struct celer_onnx_graph {
    const char *name;
    int n_nodes, n_initializers, n_inputs, n_outputs, n_value_infos;
    const celer_onnx_node *nodes;
    const celer_onnx_named_tensor *initializers;
    const celer_onnx_value_info *inputs, *outputs, *value_infos;
};

typedef struct celer_onnx_opset {
    const char *domain; /* "" (or "ai.onnx") is the default domain */
    int64_t version;
} celer_onnx_opset;

typedef struct celer_onnx_prop {
    const char *key, *value;
} celer_onnx_prop;

typedef struct celer_onnx_model {
    int64_t ir_version, model_version;
    const char *producer_name, *producer_version, *domain, *doc_string;
    int n_opsets, n_props, n_functions; /* model-local functions (IR >= 8): inlined into the main graph at load */
    const celer_onnx_opset *opsets;
    const celer_onnx_prop *props;
    const celer_onnx_graph *graph;
    struct celer_onnx_private *priv; /* image, copies, arena: owned by the model */
} celer_onnx_model;

/* Reads and decodes `path`. External data files are looked up relative to the model's folder and
 * must lie inside it with symlinks resolved (a location that leads outside is refused, named as
 * written). On success *out owns everything it points to, the files are closed and no longer
 * read; free with celer_onnx_free. */
celer_status celer_onnx_load(const char *path, celer_onnx_model **out);

/* Decodes a model image already in memory. `bytes` must outlive the model (tensors may point
 * into it). `base_dir` is where external data is looked up; NULL forbids external data. */
celer_status celer_onnx_parse(const void *bytes, size_t len, const char *base_dir,
                              celer_onnx_model **out);

/* Says that nobody reads t's bytes again (a kernel copied them into its own layout at load): a
 * large copy made by the loader is unmapped, the image pages wholly under it are given back (they
 * read as zeros afterwards). t must be one of the model's initializers or Constant tensors, and no
 * other tensor still read may share its bytes. Whoever still holds t may keep its shape and type,
 * never dereference t->data. */
void celer_onnx_release_data(celer_onnx_model *model, const celer_tensor *t);

/* Releases the model, its arena, image and copies; every pointer taken from it dies. NULL is ok. */
void celer_onnx_free(celer_onnx_model *model);

/* Decodes one serialized TensorProto (the conformance suite's .pb files). Data and name are
 * copied into `arena`; *name may be NULL when not wanted. External data is rejected. */
celer_status celer_onnx_parse_tensor(const void *bytes, size_t len, celer_arena *arena,
                                     celer_tensor *out, const char **name);

/* The model's opset for a domain ("" and "ai.onnx" are the same); 0 when the model imports none. */
int64_t celer_onnx_opset_version(const celer_onnx_model *model, const char *domain);

/* Attribute lookup; NULL when the node has no attribute of that name. */
const celer_onnx_attr *celer_onnx_attr_find(const celer_onnx_node *node, const char *name);
/* Typed getters returning `dflt` when absent (or of another type). */
int64_t celer_onnx_attr_int(const celer_onnx_node *node, const char *name, int64_t dflt);
float celer_onnx_attr_float(const celer_onnx_node *node, const char *name, float dflt);
const char *celer_onnx_attr_string(const celer_onnx_node *node, const char *name, const char *dflt);
/* INTS / FLOATS: sets *out and returns the count, or -1 when absent. */
int celer_onnx_attr_ints(const celer_onnx_node *node, const char *name, const int64_t **out);
int celer_onnx_attr_floats(const celer_onnx_node *node, const char *name, const float **out);

#endif
