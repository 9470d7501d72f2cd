/* The protobuf wire codec of Triton's gRPC service (grpc_codec.c), written by hand, private to
 * src/server: a small writer and reader of protobuf fields, ModelInferRequest decoded into the
 * same celer_kserve_request the HTTP codec produces (tensor bytes used in place in the received
 * message), ModelInferResponse encoded with every output in raw_output_contents, and the small
 * messages of the other RPCs. Field numbers are those of tests/grpc/proto/grpc_service.proto and
 * health.proto (Triton's, unchanged). No function here allocates outside the arena or buffer it
 * is given. */
#ifndef CELER_SERVER_GRPC_CODEC_H
#define CELER_SERVER_GRPC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/json.h"
#include "server/kserve.h"

/* ---- writer: appends fields to a celer_jbuf (its status records a failed growth) ---- */
void celer_pb_put_varint(celer_jbuf *b, int field, uint64_t v);        /* wire type 0 */
void celer_pb_put_raw_varint(celer_jbuf *b, uint64_t v);               /* no tag: an element of a packed list */
void celer_pb_put_bool(celer_jbuf *b, int field, bool v);              /* written only when true */
void celer_pb_put_bytes(celer_jbuf *b, int field, const void *p, size_t n); /* wire type 2 */
void celer_pb_put_str(celer_jbuf *b, int field, const char *s);        /* strlen(s) bytes; NULL: nothing */
/* A nested message: begin reserves room for its length (5 bytes, a padded varint) and returns
 * the offset to pass to end, which writes the length. */
size_t celer_pb_begin(celer_jbuf *b, int field);
void celer_pb_end(celer_jbuf *b, size_t mark);
/* Writes n as the length reserved at `mark` (a nested message whose bytes are not all in b). */
void celer_pb_patch_len(celer_jbuf *b, size_t mark, size_t n);

/* ---- reader ---- */
typedef struct celer_pb_field {
    int number;
    int wire;          /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t varint;   /* wire 0, 1 (the 8 bytes), 5 (the 4 bytes) */
    const uint8_t *p;  /* wire 2: the bytes, inside the message */
    size_t len;
} celer_pb_field;
typedef struct celer_pb_reader {
    const uint8_t *p, *end;
} celer_pb_reader;
/* Reads the next field; 1 with *f set, 0 at the end, or -1 on a malformed field (truncated, field
 * number 0, a group or an invalid wire type, a length past the end), with a CELER_ERR_PARSE
 * message naming `what`. f->p points into the reader's bytes. */
int celer_pb_next(celer_pb_reader *r, celer_pb_field *f, const char *what);

/* ---- ModelInferRequest / ModelInferResponse ---- */

/* The model name and version of a ModelInferRequest (fields 1 and 2), without decoding the rest,
 * copied NUL-terminated (longer than the caps: CELER_ERR_LIMIT). */
celer_status celer_grpc_infer_target(const uint8_t *msg, size_t len, char *model, size_t model_cap, char *version,
                                     size_t version_cap);

/* Decodes a ModelInferRequest against the model's inputs, with the checks of the HTTP codec
 * (names, datatypes, shapes, sizes; the same messages). Inputs come from raw_input_contents (one
 * entry per input, in order; bytes used in place: tensors point into `msg`, which must outlive the
 * request; copied into `arena` only when not aligned for the element type) or from typed contents
 * (copied into `arena`, narrower integers range-checked); never both (Triton's message). FP16/BF16
 * only raw; BYTES raw as 4-byte little-endian lengths then bytes, or one bytes_contents entry per
 * element: celer_str elements in `arena` pointing into `msg` either way. Requested outputs and
 * parameters fill `out` as the HTTP codec does (timeout as int64_param in microseconds; reserved
 * parameters refused the same way; the output parameter classification refused). */
celer_status celer_grpc_decode_infer(const uint8_t *msg, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                     celer_arena *arena, celer_kserve_request *out);

/* Appends a ModelInferResponse to `out` (after what it holds: the transport's 5-byte prefix):
 * model_name, model_version, id (req->id when set), and the outputs
 * selected by `req` (all when req->n_outputs is 0) as InferOutputTensor{name, datatype, shape}
 * with their bytes in raw_output_contents, in the same order. An output requested in shared
 * memory (the service wrote it there) gets an empty raw_output_contents entry, as Triton answers,
 * and parameters shared_memory_region, shared_memory_offset and shared_memory_byte_size (the bytes
 * written). `names[i]` names `outputs[i]`. */
celer_status celer_grpc_encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                     const char *const *names, const celer_tensor *outputs, int n_outputs,
                                     celer_jbuf *out);

/* The same with raw_output_contents as parts of `body` (body.h): fixed-size tensors by reference,
 * not copied; everything else appended to the body's head (after what it holds). */
celer_status celer_grpc_encode_infer_body(const celer_kserve_request *req, const char *model_name,
                                          const char *model_version, const char *const *names,
                                          const celer_tensor *outputs, int n_outputs, celer_body *body);
/* ---- system shared memory (the registry itself is shm.h's) ---- */

/* SystemSharedMemoryRegisterRequest{name=1, key=2, offset=3, byte_size=4}: the strings copied
 * into `arena` (NUL bytes and invalid UTF-8 refused; more than 4096 bytes CELER_ERR_LIMIT), ""
 * and 0 for absent fields. */
celer_status celer_grpc_decode_shm_register(const uint8_t *msg, size_t len, celer_arena *arena, const char **name,
                                            const char **key, uint64_t *offset, uint64_t *byte_size);
/* The name (field 1) of a {System,Cuda}SharedMemory{Status,Unregister}Request or of a
 * CudaSharedMemoryRegisterRequest, as above ("" when absent: every region). `what` names the
 * message in errors. */
celer_status celer_grpc_decode_shm_name(const uint8_t *msg, size_t len, const char *what, celer_arena *arena,
                                        const char **name);

/* TraceSettingRequest{settings=1: map<string, SettingValue{repeated string value=1}>,
 * model_name=2}: the model's name (NUL-terminated; "" = the global settings) and every setting
 * checked into `change` (trace.h: the same rules and messages as POST /v2/trace/setting); a
 * SettingValue with no value is null (reverts). The values point into msg. */
struct celer_trace_change;
celer_status celer_grpc_decode_trace_setting(const uint8_t *msg, size_t len, char *model, size_t model_cap,
                                             struct celer_trace_change *change);
/* One TraceSettingResponse.settings entry {key=1, value=2: SettingValue{value=1...}}, as
 * celer_trace_settings reports it; `user` is the celer_jbuf of the message. */
void celer_grpc_encode_trace_setting(void *user, const char *name, const char *const *values, int n);

#endif
