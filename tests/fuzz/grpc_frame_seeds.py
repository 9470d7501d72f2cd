#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_grpc_frames into the folder given: what a client sends after the
HTTP/2 preface, as frames (RFC 9113: 3-byte length, type, flags, 4-byte stream id). Calls of every
implemented RPC on the fuzz target's models (identity: x [-1,4] FP32; mlp: features [-1,16] FP32)
with HPACK literal headers (and a few indexed ones), the gRPC message split over DATA frames,
CONTINUATION, padding, priority, WINDOW_UPDATE, RST_STREAM, PING, GOAWAY, and what a server must
refuse (unknown method, GET, a non-gRPC content-type, a bad grpc-timeout); gzip and deflate
messages (valid, garbage, an unknown coding) and LogSettings changes.
Standard library only, so it runs anywhere CI does."""
import gzip
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_seeds import ld, packed, raw, tensor  # noqa: E402  (the protobuf writers)

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
SERVICE = "/inference.GRPCInferenceService/"


def frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream) + payload


def hpack_int(v, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if v < limit:
        return bytes([first | v])
    out = bytearray([first | limit])
    v -= limit
    while v >= 128:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def literal(name, value, indexing=False):
    """A literal header field with a new name, no Huffman (without indexing, or incremental)."""
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return (b"\x40" if indexing else b"\x00") + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def request_headers(path, *extra, method="POST", content_type="application/grpc", indexed=False):
    # static table: 3 = :method POST, 6 = :scheme http
    h = (b"\x83\x86" if indexed and method == "POST" else literal(":method", method) + literal(":scheme", "http"))
    h += literal(":path", path, indexing=indexed) + literal(":authority", "127.0.0.1")
    if content_type:
        h += literal("content-type", content_type, indexing=indexed)
    h += literal("te", "trailers")
    for name, value in extra:
        h += literal(name, value)
    return h


def message(body, compressed=0):
    return bytes([compressed]) + struct.pack(">I", len(body)) + body


def call(stream, rpc, body, *extra, split=0, **kw):
    """HEADERS (END_HEADERS), then the message in DATA frames (split into pieces of `split` bytes)."""
    out = frame(HEADERS, END_HEADERS, stream, request_headers(SERVICE + rpc if "/" not in rpc else rpc, *extra, **kw))
    m = message(body)
    pieces = [m[i:i + split] for i in range(0, len(m), split)] if split else [m]
    for i, p in enumerate(pieces):
        out += frame(DATA, END_STREAM if i == len(pieces) - 1 else 0, stream, p)
    return out


SETTINGS_FRAME = frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100) + struct.pack(">HI", 4, 65535))
SETTINGS_ACK = frame(SETTINGS, ACK, 0)
X4 = struct.pack("<4f", 1, 2, 3, 4)
F16 = struct.pack("<16f", *range(16))
infer_identity = ld(1, "identity") + ld(3, "req-1") + tensor("x", "FP32", [1, 4]) + raw(X4)
infer_mlp = ld(1, "mlp") + tensor("features", "FP32", [1, 16]) + raw(F16)
infer_typed = ld(1, "identity") + tensor("x", "FP32", [1, 4], ld(6, X4))

seeds = {
    "settings_ping": SETTINGS_FRAME + SETTINGS_ACK + frame(PING, 0, 0, b"12345678")
    + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)),
    "server_live": call(1, "ServerLive", b""),
    "server_ready_indexed": call(1, "ServerReady", b"", indexed=True)
    + call(3, "ServerReady", b"", indexed=True),
    "model_ready": call(1, "ModelReady", ld(1, "mlp")) + call(3, "ModelReady", ld(1, "mlp") + ld(2, "1"))
    + call(5, "ModelReady", ld(1, "nope")),
    "metadata": call(1, "ServerMetadata", b"") + call(3, "ModelMetadata", ld(1, "identity"))
    + call(5, "ModelStatistics", b"") + call(7, "RepositoryIndex", b"\x10\x01"),
    "health": call(1, "/grpc.health.v1.Health/Check", b"") + call(3, "/grpc.health.v1.Health/Check", ld(1, "mlp"))
    + call(5, "/grpc.health.v1.Health/Check", ld(1, "unknown")) + call(7, "/grpc.health.v1.Health/Watch", b""),
    "infer_identity": call(1, "ModelInfer", infer_identity, ("grpc-timeout", "5S")),
    "infer_split": call(1, "ModelInfer", infer_mlp, split=7) + call(3, "ModelInfer", infer_typed, split=3),
    # two streams interleaved, the second's headers continued in a CONTINUATION frame
    "interleaved": (lambda h: frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ModelInfer"))
                    + frame(HEADERS, 0, 3, h[:9]) + frame(CONTINUATION, END_HEADERS, 3, h[9:])
                    + frame(DATA, 0, 1, message(infer_identity)[:10]) + frame(DATA, END_STREAM, 3, message(ld(1, "mlp")))
                    + frame(DATA, END_STREAM, 1, message(infer_identity)[10:]))(
                        request_headers(SERVICE + "ModelReady")),
    # padded and prioritized HEADERS, padded DATA, a PRIORITY frame
    "padded_priority": frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 16))
    + frame(HEADERS, END_HEADERS | PADDED | PRIO, 1,
            b"\x04" + struct.pack(">IB", 0, 200) + request_headers(SERVICE + "ModelReady") + b"\0" * 4)
    + frame(DATA, END_STREAM | PADDED, 1, b"\x03" + message(ld(1, "identity")) + b"\0" * 3),
    # the call reset before its message ends, then GOAWAY
    "reset_goaway": frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ModelInfer"))
    + frame(DATA, 0, 1, message(infer_mlp)[:20]) + frame(RST_STREAM, 0, 1, struct.pack(">I", 8))
    + call(3, "ServerLive", b"") + frame(GOAWAY, 0, 0, struct.pack(">II", 3, 0) + b"bye"),
    "window_updates": frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1000))
    + frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ModelInfer"))
    + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 5)) + frame(DATA, END_STREAM, 1, message(infer_identity)),
    "refused": call(1, SERVICE + "NoSuchMethod", b"") + call(3, "ServerLive", b"", method="GET")
    + call(5, "ServerLive", b"", content_type="application/json") + call(7, "ServerLive", b"", content_type="")
    + call(9, "ModelConfig", ld(1, "mlp")) + call(11, "ServerLive", b"", ("grpc-timeout", "12x")),
    # compressed messages: gzip and deflate (answers compressed back), garbage, an unknown coding,
    # a flag of 2, a compressed ModelStreamInfer
    "compressed": frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ModelInfer", ("grpc-encoding", "gzip"),
                                                                 ("grpc-accept-encoding", "identity,deflate,gzip")))
    + frame(DATA, END_STREAM, 1, message(gzip.compress(infer_identity), compressed=1))
    + frame(HEADERS, END_HEADERS, 3, request_headers(SERVICE + "ModelInfer", ("grpc-encoding", "deflate")))
    + frame(DATA, END_STREAM, 3, message(zlib.compress(infer_mlp), compressed=1))
    + frame(HEADERS, END_HEADERS, 5, request_headers(SERVICE + "ModelInfer", ("grpc-encoding", "gzip")))
    + frame(DATA, END_STREAM, 5, message(infer_identity, compressed=1))
    + frame(HEADERS, END_HEADERS, 7, request_headers(SERVICE + "ServerLive", ("grpc-encoding", "snappy")))
    + frame(DATA, END_STREAM, 7, message(b"x", compressed=1))
    + frame(HEADERS, END_HEADERS, 9, request_headers(SERVICE + "ServerLive"))
    + frame(DATA, END_STREAM, 9, message(b"", compressed=2))
    + frame(HEADERS, END_HEADERS, 11, request_headers(SERVICE + "ModelStreamInfer", ("grpc-encoding", "gzip")))
    + frame(DATA, END_STREAM, 11, message(gzip.compress(infer_identity), compressed=1) + message(infer_identity)),
    # LogSettings: read, a change, a refused one (the settings go back to the defaults after)
    "log_settings": call(1, "LogSettings", b"")
    + call(3, "LogSettings", ld(1, ld(1, "log_verbose_level") + ld(2, bytes([0x10, 1]))))
    + call(5, "LogSettings", ld(1, ld(1, "log_info") + ld(2, ld(3, "no"))))
    + call(7, "LogSettings", ld(1, ld(1, "log_verbose_level") + ld(2, bytes([0x10, 0])))),
    # two messages on a unary call, a truncated one, none at all, trailers from the client
    "message_count": frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ServerLive"))
    + frame(DATA, END_STREAM, 1, message(b"") * 2)
    + frame(HEADERS, END_HEADERS, 3, request_headers(SERVICE + "ModelReady"))
    + frame(DATA, END_STREAM, 3, message(ld(1, "mlp"))[:6])
    + frame(HEADERS, END_HEADERS | END_STREAM, 5, request_headers(SERVICE + "ServerLive"))
    + frame(HEADERS, END_HEADERS, 7, request_headers(SERVICE + "ServerLive")) + frame(DATA, 0, 7, message(b""))
    + frame(HEADERS, END_HEADERS | END_STREAM, 7, literal("grpc-status", "0")),
    "infer_errors": call(1, "ModelInfer", ld(1, "identity") + tensor("x", "FP32", [1, 5]) + raw(X4))
    + call(3, "ModelInfer", ld(1, "missing") + raw(X4)) + call(5, "ModelInfer", b"")
    + call(7, "ModelInfer", ld(1, "mlp") + tensor("features", "FP32", [2, 16], packed(6, [1, 2])))
    + frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2)),
    # ModelStreamInfer: three requests in one DATA frame and one split across two, an error among
    # them, a second stream reset while its calls run, a stream ending on a truncated message
    "stream": frame(HEADERS, END_HEADERS, 1, request_headers(SERVICE + "ModelStreamInfer"))
    + frame(DATA, 0, 1, message(infer_identity) + message(infer_mlp) + message(ld(1, "missing") + ld(3, "bad")))
    + frame(DATA, 0, 1, message(infer_typed)[:9]) + frame(DATA, END_STREAM, 1, message(infer_typed)[9:])
    + frame(HEADERS, END_HEADERS, 3, request_headers(SERVICE + "ModelStreamInfer"))
    + frame(DATA, 0, 3, message(infer_identity) * 4) + frame(RST_STREAM, 0, 3, struct.pack(">I", 8))
    + frame(HEADERS, END_HEADERS, 5, request_headers(SERVICE + "ModelStreamInfer"))
    + frame(DATA, END_STREAM, 5, message(infer_identity)[:12]),
    # loads and unloads: an unknown model, a refused parameter, another repository
    "repository": call(1, "RepositoryModelLoad", ld(2, "missing"))
    + call(3, "RepositoryModelLoad", ld(2, "mlp") + ld(3, ld(1, "config") + ld(2, ld(3, "{}"))))
    + call(5, "RepositoryModelUnload", ld(1, "other") + ld(2, "mlp"))
    + call(7, "RepositoryModelUnload", ld(2, "mlp") + ld(3, ld(1, "unload_dependents") + ld(2, b"\x08\x01"))),
}

os.makedirs(sys.argv[1], exist_ok=True)
for name, data in seeds.items():
    for mode in (0, 1):  # the fuzz target's first byte: 1 = read the answers before the EOF
        with open(os.path.join(sys.argv[1], f"{name}_{mode}"), "wb") as f:
            f.write(bytes([mode]) + (data if data.startswith(SETTINGS_FRAME) else SETTINGS_FRAME + data))
