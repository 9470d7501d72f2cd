/* A minimal stand-in for the protobuf wire codec (grpc_codec.h): only the writer and reader
 * primitives the gRPC front end uses today. The full codec (ModelInferRequest/Response) replaces
 * this file. */
#include <string.h>

#include "grpc_codec.h"

static void put_raw_varint(celer_jbuf *b, uint64_t v) {
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    celer_jbuf_raw(b, tmp, n);
}

void celer_pb_put_varint(celer_jbuf *b, int field, uint64_t v) {
    put_raw_varint(b, (uint64_t)field << 3);
    put_raw_varint(b, v);
}

void celer_pb_put_bool(celer_jbuf *b, int field, bool v) {
    if (v) celer_pb_put_varint(b, field, 1);
}

void celer_pb_put_bytes(celer_jbuf *b, int field, const void *p, size_t n) {
    put_raw_varint(b, (uint64_t)field << 3 | 2);
    put_raw_varint(b, n);
    celer_jbuf_raw(b, p, n);
}

void celer_pb_put_str(celer_jbuf *b, int field, const char *s) { celer_pb_put_bytes(b, field, s, strlen(s)); }

static int get_varint(celer_pb_reader *r, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        uint8_t c = *r->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return 1;
    }
    return 0;
}

int celer_pb_next(celer_pb_reader *r, celer_pb_field *f, const char *what) {
    if (r->p >= r->end) return 0;
    uint64_t key;
    if (!get_varint(r, &key) || key >> 3 == 0 || key >> 3 > INT32_MAX) {
        celer_errorf(CELER_ERR_PARSE, "%s: malformed field key", what);
        return -1;
    }
    memset(f, 0, sizeof *f);
    f->number = (int)(key >> 3);
    f->wire = (int)(key & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case 0:
        if (get_varint(r, &f->varint)) return 1;
        break;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if (left < n) break;
        for (size_t i = 0; i < n; i++) f->varint |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case 2: {
        uint64_t len;
        if (!get_varint(r, &len) || len > (uint64_t)(r->end - r->p)) break;
        f->p = r->p;
        f->len = (size_t)len;
        r->p += len;
        return 1;
    }
    default:
        break;
    }
    celer_errorf(CELER_ERR_PARSE, "%s: field %d (wire type %d) is truncated or malformed", what, f->number, f->wire);
    return -1;
}

celer_status celer_grpc_infer_target(const uint8_t *msg, size_t len, char *model, size_t model_cap, char *version,
                                     size_t version_cap) {
    (void)msg, (void)len, (void)model, (void)model_cap, (void)version, (void)version_cap;
    return celer_errorf(CELER_ERR_UNSUPPORTED, "ModelInfer is not implemented yet");
}

celer_status celer_grpc_decode_infer(const uint8_t *msg, size_t len, const celer_kserve_tensor_spec *spec, int n_spec,
                                     celer_arena *arena, celer_kserve_request *out) {
    (void)msg, (void)len, (void)spec, (void)n_spec, (void)arena, (void)out;
    return celer_errorf(CELER_ERR_UNSUPPORTED, "ModelInfer is not implemented yet");
}

celer_status celer_grpc_encode_infer(const celer_kserve_request *req, const char *model_name, const char *model_version,
                                     const char *const *names, const celer_tensor *outputs, int n_outputs,
                                     celer_jbuf *out) {
    (void)req, (void)model_name, (void)model_version, (void)names, (void)outputs, (void)n_outputs, (void)out;
    return celer_errorf(CELER_ERR_UNSUPPORTED, "ModelInfer is not implemented yet");
}
