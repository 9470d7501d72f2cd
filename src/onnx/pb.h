/* pb: a minimal protobuf wire-format reader over a byte range (module-private to onnx).
 *
 * It never reads outside [p, end): every varint, fixed field and length is checked against the
 * bytes left. Groups (deprecated wire types 3/4) are skipped with a nesting cap. Functions that
 * fail set the thread's error message (CELER_ERR_PARSE) and return -1; callers add context. */
#ifndef CELER_ONNX_PB_H
#define CELER_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/base.h"

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_SGROUP = 3, PB_EGROUP = 4, PB_I32 = 5 };

#define PB_MAX_GROUP_DEPTH 32
#define PB_MAX_FIELD ((1u << 29) - 1)

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

/* One field as read: `u` holds the value of varint/fixed fields, `data`/`len` the payload of
 * length-delimited ones. A skipped group comes back with wire PB_SGROUP and nothing else. */
typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t u;
    const uint8_t *data;
    size_t len;
} pb_field;

/* For messages: what a wire type is called. */
static inline const char *pb_wire_name(int wire) {
    static const char *const names[] = {"varint", "64-bit", "length-delimited", "start-group", "end-group", "32-bit"};
    return wire >= 0 && wire < 6 ? names[wire] : "invalid";
}

static inline pb_reader pb_init(const void *data, size_t len) {
    const uint8_t *p = data;
    return (pb_reader){p, p + len};
}

/* Reads a varint at *pp (< end); advances *pp. Returns false when truncated or longer than 64 bits. */
static inline bool pb_read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return false;
        uint8_t b = *p++;
        if (shift == 63 && b > 1) return false; /* the 10th byte may only carry bit 63 */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

static inline uint32_t pb_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pb_le64(const uint8_t *p) {
    return (uint64_t)pb_le32(p) | (uint64_t)pb_le32(p + 4) << 32;
}

enum { PB_E_TAG = 1, PB_E_FIELDNUM, PB_E_VARINT, PB_E_I64, PB_E_I32, PB_E_LENVAR, PB_E_LENGTH, PB_E_WIRE };

/* Reads one tag and the field's value/payload, no group handling, no side effect beyond *r and
 * *f. Returns 0 or a PB_E_ code (f->num is set for all but the tag errors). */
static inline int pb_read_raw(pb_reader *r, pb_field *f) {
    uint64_t tag;
    f->num = 0;
    f->u = 0;
    f->data = NULL;
    f->len = 0;
    if (!pb_read_varint(&r->p, r->end, &tag)) return PB_E_TAG;
    if ((tag >> 3) == 0 || (tag >> 3) > PB_MAX_FIELD) {
        f->u = tag >> 3;
        return PB_E_FIELDNUM;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case PB_VARINT:
        return pb_read_varint(&r->p, r->end, &f->u) ? 0 : PB_E_VARINT;
    case PB_I64:
        if (left < 8) return PB_E_I64;
        f->u = pb_le64(r->p);
        r->p += 8;
        return 0;
    case PB_I32:
        if (left < 4) return PB_E_I32;
        f->u = pb_le32(r->p);
        r->p += 4;
        return 0;
    case PB_LEN: {
        uint64_t n;
        if (!pb_read_varint(&r->p, r->end, &n)) return PB_E_LENVAR;
        left = (size_t)(r->end - r->p);
        f->u = n;
        f->len = left; /* for the message */
        if (n > left) return PB_E_LENGTH;
        f->data = r->p;
        f->len = (size_t)n;
        f->u = 0;
        r->p += n;
        return 0;
    }
    case PB_SGROUP:
    case PB_EGROUP:
        return 0;
    default:
        return PB_E_WIRE;
    }
}

/* pb_read_raw that sets the error message. 1 = field, -1 = error. */
static inline int pb_read_one(pb_reader *r, pb_field *f) {
    size_t left = (size_t)(r->end - r->p);
    switch (pb_read_raw(r, f)) {
    case 0: return 1;
    case PB_E_TAG:
        celer_errorf(CELER_ERR_PARSE, "truncated or overlong field tag (%zu bytes left)", left);
        break;
    case PB_E_FIELDNUM:
        celer_errorf(CELER_ERR_PARSE, "invalid field number %llu", (unsigned long long)f->u);
        break;
    case PB_E_VARINT: celer_errorf(CELER_ERR_PARSE, "field %u: truncated or overlong varint", f->num); break;
    case PB_E_I64: celer_errorf(CELER_ERR_PARSE, "field %u: truncated 64-bit value", f->num); break;
    case PB_E_I32: celer_errorf(CELER_ERR_PARSE, "field %u: truncated 32-bit value", f->num); break;
    case PB_E_LENVAR: celer_errorf(CELER_ERR_PARSE, "field %u: truncated length", f->num); break;
    case PB_E_LENGTH:
        celer_errorf(CELER_ERR_PARSE, "field %u: length %llu but only %zu bytes left (truncated?)", f->num,
                     (unsigned long long)f->u, f->len);
        break;
    default: celer_errorf(CELER_ERR_PARSE, "field %u: invalid wire type %d", f->num, f->wire); break;
    }
    return -1;
}

/* Next field of the message. Returns 1 with *f filled, 0 at the end, -1 on malformed bytes.
 * Groups are skipped whole (their contents are never needed by ONNX). */
static inline int pb_next(pb_reader *r, pb_field *f) {
    if (r->p >= r->end) return 0;
    if (pb_read_one(r, f) < 0) return -1;
    if (f->wire == PB_EGROUP)
        return celer_errorf(CELER_ERR_PARSE, "field %u: end-group without start-group", f->num), -1;
    if (f->wire != PB_SGROUP) return 1;
    uint32_t stack[PB_MAX_GROUP_DEPTH];
    int depth = 0;
    stack[depth++] = f->num;
    while (depth > 0) {
        pb_field g;
        if (r->p >= r->end)
            return celer_errorf(CELER_ERR_PARSE, "group %u not terminated", stack[depth - 1]), -1;
        if (pb_read_one(r, &g) < 0) return -1;
        if (g.wire == PB_SGROUP) {
            if (depth == PB_MAX_GROUP_DEPTH)
                return celer_errorf(CELER_ERR_PARSE, "groups nested deeper than %d", PB_MAX_GROUP_DEPTH), -1;
            stack[depth++] = g.num;
        } else if (g.wire == PB_EGROUP) {
            if (g.num != stack[depth - 1])
                return celer_errorf(CELER_ERR_PARSE, "group %u closed by end-group %u", stack[depth - 1], g.num), -1;
            depth--;
        }
    }
    return 1;
}

/* Checks a field's wire type; -1 (message set) when it is not `want`. */
static inline int pb_expect(const pb_field *f, int want) {
    if (f->wire == want) return 0;
    return celer_errorf(CELER_ERR_PARSE, "field %u is %s, expected %s", f->num, pb_wire_name(f->wire),
                        pb_wire_name(want)), -1;
}

/* Iterates the values of one occurrence of a repeated scalar field, packed (one PB_LEN payload)
 * or not (a single value), where `elem_wire` is PB_VARINT, PB_I32 or PB_I64. */
typedef struct pb_scalars {
    const uint8_t *p, *end;
    int elem_wire;
    int single; /* 1: one unpacked value left in `v`; 0: packed; -1: done */
    uint64_t v;
    uint32_t num;
} pb_scalars;

/* -1 (message set) when the field's wire type fits neither form. */
static inline int pb_scalars_begin(pb_scalars *it, const pb_field *f, int elem_wire) {
    it->elem_wire = elem_wire;
    it->num = f->num;
    it->p = it->end = NULL;
    it->v = 0;
    it->single = -1;
    if (f->wire == elem_wire) {
        it->single = 1;
        it->v = f->u;
        return 0;
    }
    if (f->wire != PB_LEN)
        return celer_errorf(CELER_ERR_PARSE, "field %u is %s, expected %s or packed", f->num,
                            pb_wire_name(f->wire), pb_wire_name(elem_wire)), -1;
    it->single = 0;
    it->p = f->data;
    it->end = f->data + f->len;
    size_t w = elem_wire == PB_I32 ? 4 : elem_wire == PB_I64 ? 8 : 1;
    if (f->len % w)
        return celer_errorf(CELER_ERR_PARSE, "field %u: packed length %zu is not a multiple of %zu",
                            f->num, f->len, w), -1;
    return 0;
}

/* 1 with *v set, 0 when done, -1 (message set) on a truncated packed varint. */
static inline int pb_scalars_next(pb_scalars *it, uint64_t *v) {
    if (it->single == 1) {
        it->single = -1;
        *v = it->v;
        return 1;
    }
    if (it->single == -1 || it->p >= it->end) return 0;
    switch (it->elem_wire) {
    case PB_I32:
        *v = pb_le32(it->p);
        it->p += 4;
        return 1;
    case PB_I64:
        *v = pb_le64(it->p);
        it->p += 8;
        return 1;
    default:
        if (!pb_read_varint(&it->p, it->end, v))
            return celer_errorf(CELER_ERR_PARSE, "field %u: truncated packed field", it->num), -1;
        return 1;
    }
}

/* Number of values in one occurrence (walks packed varints); -1 (message set) when malformed. */
static inline int pb_scalars_count(const pb_field *f, int elem_wire, size_t *count) {
    pb_scalars it;
    uint64_t v;
    int rc;
    size_t n = 0;
    if (pb_scalars_begin(&it, f, elem_wire) < 0) return -1;
    if (!it.single && elem_wire != PB_VARINT) {
        *count = f->len / (elem_wire == PB_I32 ? 4 : 8);
        return 0;
    }
    while ((rc = pb_scalars_next(&it, &v)) == 1) n++;
    if (rc < 0) return -1;
    *count = n;
    return 0;
}

#endif
