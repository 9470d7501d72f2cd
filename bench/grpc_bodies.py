#!/usr/bin/python3
"""Request bodies for bench/grpc_bench.sh: for a model with one FP32 input, a gRPC ModelInfer
message (5-byte prefix, inputs in raw_input_contents; protobuf written here by hand, field numbers of
tests/grpc/proto/grpc_service.proto) and the same request in HTTP's binary tensor form, with the
length of its JSON header (Inference-Header-Content-Length).

usage: grpc_bodies.py OUT_DIR NAME MODEL INPUT OUTPUT ROWS COLS
writes OUT_DIR/NAME.grpc, OUT_DIR/NAME.http and OUT_DIR/NAME.hlen"""
import json
import os
import struct
import sys

import numpy as np


def varint(v):
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(number, payload):  # a length-delimited field
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def main():
    out, name, model, inp, outp, rows, cols = sys.argv[1:8]
    rows, cols = int(rows), int(cols)
    x = np.random.default_rng(1).standard_normal((rows, cols)).astype(np.float32)
    tensor = field(1, inp.encode()) + field(2, b"FP32") + field(3, varint(rows) + varint(cols))  # shape packed
    msg = field(1, model.encode()) + field(5, tensor) + field(7, x.tobytes())
    with open(os.path.join(out, name + ".grpc"), "wb") as f:
        f.write(b"\0" + struct.pack(">I", len(msg)) + msg)
    header = json.dumps({"inputs": [{"name": inp, "shape": [rows, cols], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "outputs": [{"name": outp, "parameters": {"binary_data": True}}]}).encode()
    with open(os.path.join(out, name + ".http"), "wb") as f:
        f.write(header + x.tobytes())
    with open(os.path.join(out, name + ".hlen"), "w") as f:
        f.write(str(len(header)))


if __name__ == "__main__":
    main()
