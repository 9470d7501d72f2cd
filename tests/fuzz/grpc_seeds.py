#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_grpc_infer into the folder given: a few valid ModelInferRequests
(field numbers of tests/grpc/proto/grpc_service.proto), each prefixed with the byte that picks the
fuzz target's spec set (0: x [-1,3] FP32 + y [2] INT64, 1: mixed dtypes, 2: one input of every
datatype). Encoded by hand with the standard library only, so it runs anywhere CI does."""
import os
import struct
import sys


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(num, wire):
    return varint(num << 3 | wire)


def ld(num, payload):  # length-delimited
    if isinstance(payload, str):
        payload = payload.encode()
    return tag(num, 2) + varint(len(payload)) + payload


def vi(num, v):
    return tag(num, 0) + varint(v)


def packed(num, values):
    return ld(num, b"".join(varint(v) for v in values))


def param(field, key, kind, value):
    if kind == 3:
        val = ld(3, value)
    elif kind == 4:
        val = tag(4, 1) + struct.pack("<d", value)
    else:
        val = vi(kind, value)
    return ld(field, ld(1, key) + ld(2, val))


def tensor(name, dtype, shape, contents=b"", unpacked_shape=False):
    s = b"".join(vi(3, d) for d in shape) if unpacked_shape else packed(3, shape)
    return ld(5, ld(1, name) + ld(2, dtype) + s + (ld(5, contents) if contents else b""))


def output(name, *params):
    return ld(6, ld(1, name) + b"".join(params))


def raw(b):
    return ld(7, b)


def bytes_raw(*els):
    return b"".join(struct.pack("<I", len(e)) + e for e in els)


seeds = {
    "xy_raw": b"\0" + ld(1, "xy") + ld(2, "1") + ld(3, "req-1")
    + param(4, "timeout", 2, 2500) + param(4, "tier", 3, "gold") + param(4, "w", 4, 0.5)
    + tensor("x", "FP32", [2, 3]) + tensor("y", "INT64", [2])
    + output("z", param(2, "binary_data", 1, 1))
    + raw(struct.pack("<6f", 1, 2, 3, 4.5, -0.25, 1e-3)) + raw(struct.pack("<2q", 7, -9000000000)),
    "xy_typed": b"\0" + ld(1, "xy")
    + tensor("y", "INT64", [2], packed(3, [7, -9000000000]))
    + tensor("x", "FP32", [1, 3], ld(6, struct.pack("<3f", 1, 2, 3)), unpacked_shape=True),
    "mixed_raw": b"\1" + ld(1, "mixed")
    + tensor("s", "BYTES", [3]) + tensor("b", "BOOL", [1, 2]) + tensor("h", "FP16", [2, 1])
    + tensor("u", "UINT8", [1, 3]) + tensor("n", "INT32", [])
    + raw(bytes_raw(b"a\0b", b"", b"xyz")) + raw(b"\1\0") + raw(struct.pack("<2e", 1.5, -2))
    + raw(b"\1\2\xff") + raw(struct.pack("<i", 7)),
    "mixed_typed": b"\1" + ld(1, "mixed")
    + tensor("s", "BYTES", [2], ld(8, b"a\0") + ld(8, b""))
    + tensor("b", "BOOL", [1, 2], vi(1, 1) + vi(1, 0))
    + tensor("h", "FP16", [2, 0]) + tensor("u", "UINT8", [1, 2], packed(4, [1, 255]))
    + tensor("n", "INT32", [], vi(2, -5)),
    "every_typed": b"\2" + ld(1, "every")
    + tensor("bool", "BOOL", [2], packed(1, [1, 0])) + tensor("u8", "UINT8", [1], packed(4, [200]))
    + tensor("u16", "UINT16", [1], packed(4, [60000])) + tensor("u32", "UINT32", [1], packed(4, [4000000000]))
    + tensor("u64", "UINT64", [1], packed(5, [2**64 - 1])) + tensor("i8", "INT8", [2], packed(2, [-128, 127]))
    + tensor("i16", "INT16", [1], packed(2, [-300])) + tensor("i32", "INT32", [1], packed(2, [-2**31]))
    + tensor("i64", "INT64", [1], packed(3, [-1])) + tensor("f32", "FP32", [2], ld(6, struct.pack("<2f", 1, -1)))
    + tensor("f64", "FP64", [1], ld(7, struct.pack("<d", 2.5))) + tensor("str", "BYTES", [1], ld(8, b"hi")),
    "xy_shm": b"\0" + ld(1, "xy")  # x in a region, y raw; z written into a region
    + ld(5, ld(1, "x") + ld(2, "FP32") + packed(3, [2, 3]) + param(4, "shared_memory_region", 3, "in")
         + param(4, "shared_memory_offset", 2, 8) + param(4, "shared_memory_byte_size", 2, 24))
    + tensor("y", "INT64", [2])
    + output("z", param(2, "shared_memory_region", 3, "out"), param(2, "shared_memory_byte_size", 2, 64))
    + raw(struct.pack("<2q", 7, -9)),
    "every_raw": b"\2" + ld(1, "every")
    + tensor("f16", "FP16", [2]) + tensor("bf16", "BF16", [1]) + tensor("str", "BYTES", [2])
    + raw(struct.pack("<2e", 0.5, 2)) + raw(b"\x80\x3f") + raw(bytes_raw(b"", b"\0\0")),
}

if __name__ == "__main__":  # grpc_frame_seeds.py imports the writers above
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)
