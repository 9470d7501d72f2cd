/* KServe v2 / Triton inference protocol over HTTP: datatype names, infer request decoding
 * (JSON, Triton's binary tensor extension, raw octet-stream) and response encoding, and the
 * KServe v1 `:predict` form. Private to src/server. */
#ifndef CELER_SERVER_KSERVE_H
#define CELER_SERVER_KSERVE_H

#include "base/base.h"
#include "server/json.h"
#include "tensor/tensor.h"

/* Caps on what a request may declare. */
#define CELER_KSERVE_MAX_TENSORS 256

/* Datatype names: celer_dtype_kserve_name / celer_dtype_from_kserve_name (tensor.h). */

/* What the model accepts, for decoding: one entry per model input. dims -1 = variable. */
typedef struct celer_kserve_tensor_spec {
    const char *name;
    celer_dtype dtype;
    int rank;
    int64_t dims[CELER_MAX_RANK];
    bool optional;      /* may be left out (a pipeline input with a default) */
    bool batched;       /* dims[0] is the implicit batch dim (max_batch_size > 0): a raw body is one row */
    const celer_tensor *default_row; /* business objects: one row used for objects lacking the field */
} celer_kserve_tensor_spec;

/* A tensor in system shared memory: the parameters shared_memory_region, shared_memory_offset (0
 * when absent) and shared_memory_byte_size. The codecs only decode them; the request service reads
 * such an input from its region and writes such an output into it (shm.h). */
typedef struct celer_kserve_shm {
    const char *region; /* NULL: the tensor is not in shared memory */
    uint64_t offset, byte_size;
} celer_kserve_shm;

typedef struct celer_kserve_input {
    const char *name;   /* as given */
    celer_tensor tensor; /* data in the request arena or pointing into the body (binary); NULL while
                            in shared memory (shm.region set): the service fills it */
    celer_kserve_shm shm;
} celer_kserve_input;

typedef struct celer_kserve_output_request {
    const char *name;
    bool binary;             /* parameters.binary_data */
    uint32_t classification; /* parameters.classification: the top K of each row as BYTES
                                (celer_kserve_classify); 0: the tensor itself */
    celer_kserve_shm shm;    /* written into this region and answered without data */
} celer_kserve_output_request;

typedef struct celer_kserve_request {
    const char *id;              /* NULL when absent */
    int n_inputs;
    celer_kserve_input *inputs;  /* in request order */
    int n_outputs;               /* 0: all outputs */
    celer_kserve_output_request *outputs;
    bool binary_data_output;     /* parameters.binary_data_output */
    int64_t timeout_us;          /* parameters.timeout (microseconds); 0 when absent */
    int n_params;                /* request parameters with a string, number or boolean value, as text */
    const char **param_keys, **param_values;
    bool object_form;            /* decoded by celer_kserve_decode_object: answer in the same form */
    bool object_single;          /* ...from one object (not an array of them) */
} celer_kserve_request;

/* Decodes an infer request body. `json_len` is the value of Inference-Header-Content-Length
 * (SIZE_MAX when the header is absent: the whole body is JSON). `json_len` 0 means the raw form:
 * celer_kserve_decode_raw (messages naming no model). Every input is checked against `spec` (known name,
 * dtype equal, rank equal, fixed dims equal, element count == product of shape, binary sizes
 * exact); unknown requested outputs are left for the caller to check. Everything allocated goes
 * into `arena`; tensor data may point into `body`, which must outlive the request. Errors are
 * CELER_ERR_PARSE / CELER_ERR_INVALID / CELER_ERR_SHAPE / CELER_ERR_DTYPE with a message naming
 * the input and expected vs got. */
celer_status celer_kserve_decode_infer(const char *body, size_t len, size_t json_len,
                                       const celer_kserve_tensor_spec *spec, int n_spec,
                                       celer_arena *arena, celer_kserve_request *out);

/* The raw form (Inference-Header-Content-Length: 0): the whole body is the bytes of the model's
 * single input, its shape deduced as Triton deduces it: a batched spec gets batch 1 and the one
 * variable dim of the rest from the body length (celer also takes a batch of whole rows when the
 * rest is fixed); a BYTES input must hold one element per row (the rest of its dims fixed at 1,
 * or variable), the whole body being that element. Messages Triton's clients match start with
 * Triton's words ("Raw request must only have 1 input ...", "The shape of the raw input ...");
 * `model` names the model in them (NULL: "the model"). Same ownership as celer_kserve_decode_infer. */
celer_status celer_kserve_decode_raw(const char *body, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                     const char *model, celer_arena *arena, celer_kserve_request *out);

/* Encodes an infer response for the outputs selected by `req` (all when req->n_outputs is 0):
 * {"model_name","model_version","id"?,"outputs":[{"name","datatype","shape","data"}]}; outputs
 * asked binary, and BYTES outputs that are not all UTF-8 text (a JSON string cannot carry them),
 * get "parameters":{"binary_data_size":N} and their bytes are appended after the
 * JSON into `out`, and *json_len is set to the JSON length (the caller sends it as
 * Inference-Header-Content-Length when it differs from out->len). `names[i]` names `outputs[i]`. */
celer_status celer_kserve_encode_infer(const celer_kserve_request *req, const char *model_name,
                                       const char *model_version, const char *const *names,
                                       const celer_tensor *outputs, int n_outputs, celer_jbuf *out,
                                       size_t *json_len);

/* The same answer with its binary outputs as parts of `body` (body.h): fixed-size tensors by
 * reference, not copied; the JSON (and BYTES elements) in the body's head. */
typedef struct celer_body celer_body;
celer_status celer_kserve_encode_infer_body(const celer_kserve_request *req, const char *model_name,
                                            const char *model_version, const char *const *names,
                                            const celer_tensor *outputs, int n_outputs, celer_body *body,
                                            size_t *json_len);

/* KServe v1: {"instances": [...]} where each instance is one row of the model's single input
 * (or an object {input name: row} for several inputs). Decodes into a batch: tensors of shape
 * [n_instances, ...row shape]. Same ownership as celer_kserve_decode_infer. */
celer_status celer_kserve_decode_predict(const char *body, size_t len, const celer_kserve_tensor_spec *spec,
                                         int n_spec, celer_arena *arena, celer_kserve_request *out);
/* {"predictions": [...]}: one entry per row of the first output (an object per row when there
 * are several outputs). */
celer_status celer_kserve_encode_predict(const char *const *names, const celer_tensor *outputs, int n_outputs,
                                         celer_jbuf *out);

/* A pipeline's business-object form: a JSON object of named fields (`{"age": 31, "country":
 * "de"}`) is one row, an array of such objects is one row each (at most 4096). Each field is a
 * spec input (per-row shape = dims after the leading -1): a scalar per row is a JSON number,
 * string or boolean, a vector a JSON array. A field absent from every row is left out (the
 * pipeline applies its default); a field in some rows but not others takes the spec's
 * default_row in the others (an error without one, or when its shape differs); null is NaN for
 * float inputs and absent otherwise. Unknown fields are an error naming the known ones. Same
 * ownership as celer_kserve_decode_infer; `root` is the parsed body. */
celer_status celer_kserve_decode_object(const celer_json *root, const celer_kserve_tensor_spec *spec, int n_spec,
                                        celer_arena *arena, celer_kserve_request *out);
/* The answer in the same form: {"output": row value, ...} for a single object, else an array of
 * such objects, one per row. */
celer_status celer_kserve_encode_object(bool single, const char *const *names, const celer_tensor *outputs,
                                        int n_outputs, celer_jbuf *out);

/* {"error": "<message>"} */
void celer_kserve_encode_error(const char *message, celer_jbuf *out);

/* ---- checks and forms shared with the gRPC codec (grpc_codec.c), so both protocols apply the
 * same rules with the same messages. `what` names the tensor in messages ("input 'x'"). ---- */

/* "[-1,3]" into buf (cap bytes); returns buf. */
const char *celer_kserve_dims_text(const int64_t *dims, int rank, char *buf, size_t cap);
/* The spec's names as "x, y" (ending in "..." when longer than buf), for messages; returns buf. */
const char *celer_kserve_spec_names(const celer_kserve_tensor_spec *spec, int n_spec, char *buf, size_t cap);
/* A request shape against the spec: rank and fixed dims (CELER_ERR_SHAPE, expected vs got). */
celer_status celer_kserve_check_shape(const celer_kserve_tensor_spec *sp, const celer_shape *s, const char *what);
/* Refuses a reserved request parameter celer does not implement (sequence_*, priority, headers,
 * triton_*), unless its value asks for nothing (`asks_nothing`: false, 0, "" or "0"). */
celer_status celer_kserve_check_request_param(const char *key, bool asks_nothing);
/* Refuses a parameter of an input or output other than those in `known` (NULL-terminated; NULL:
 * none is read) and the shared-memory ones (each codec reads those): "unknown parameter". */
celer_status celer_kserve_check_tensor_param(const char *key, const char *const *known, const char *what);
/* Which shared-memory parameter `key` is: 0 shared_memory_region, 1 shared_memory_offset,
 * 2 shared_memory_byte_size; -1 none of them. */
int celer_kserve_shm_param(const char *key);
/* The shared-memory parameters a codec read for `what` (has[i]: parameter i was given): an offset
 * or size without a region, or a region without its size, is CELER_ERR_INVALID in Triton's words. */
celer_status celer_kserve_check_shm(const bool has[3], const char *what);
/* The body of POST /v2/systemsharedmemory/region/{name}/register: {"key": string, "offset":
 * integer >= 0 (0 when absent), "byte_size": integer >= 0}; other fields refused. Strings go into
 * `arena`. CELER_ERR_PARSE / CELER_ERR_INVALID naming what is wrong. */
celer_status celer_kserve_decode_shm_register(const char *body, size_t len, celer_arena *arena, const char **key,
                                              uint64_t *offset, uint64_t *byte_size);

/* Triton's classification extension. The top `k` elements of each batch row of `t` (of the whole
 * tensor when !batched, or when it has no rows), highest first, as BYTES strings "value:index" or
 * "value:index:label"; shape [rows, min(k, per row)] (unbatched: [min(k, count)]). value is
 * written as Triton writes it (C++ std::to_string: printf %f for floating types, the integer in
 * decimal otherwise); label is labels[index] when it exists and is not empty. Equal values keep
 * ascending index order (as Triton's sort does up to 16 elements; its order of ties beyond is
 * unspecified), NaN comes last. The strings go into `arena`. CELER_ERR_INVALID with Triton's
 * words first for a type it cannot classify (BYTES, BOOL) or a row of more than 1,000,000
 * elements; errors name output `name`. FP16 and BF16 are classified too (Triton refuses them). */
celer_status celer_kserve_classify(const celer_tensor *t, bool batched, uint32_t k, const celer_str *labels,
                                   size_t n_labels, const char *name, celer_arena *arena, celer_tensor *out);
/* Whether an output of `dtype` can be classified (sets no error). */
bool celer_kserve_classifiable(celer_dtype dtype);
/* The same as a status: CELER_OK, or the error above naming output `name`. */
celer_status celer_kserve_classify_check(celer_dtype dtype, const char *name);
/* BYTES elements in binary form: numel times (4-byte little-endian length, bytes), exactly filling
 * [p, p + n); elements may hold NULs. The celer_str array goes into `arena`; with `copy` the bytes
 * are copied there too (with a NUL after them), otherwise they point into [p, p + n), which must
 * outlive the tensor. CELER_ERR_INVALID naming `what` and the element on a bad length. */
celer_status celer_kserve_decode_bytes(const char *p, size_t n, size_t numel, bool copy, celer_arena *arena,
                                       const char *what, void **out);
/* Byte size of a tensor in binary form (BYTES: 4-byte length + bytes per element); errors name
 * output `name`. */
celer_status celer_kserve_binary_size(const celer_tensor *t, const char *name, size_t *out);
/* Appends `t` in binary form to b; `size` comes from celer_kserve_binary_size. */
void celer_kserve_write_binary(celer_jbuf *b, const celer_tensor *t, size_t size);

#endif
