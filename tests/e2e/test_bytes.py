#!/usr/bin/python3
"""End-to-end tests of BYTES elements: any byte, NUL included, through the real server.

Builds (onnx.helper) a repository of string models: `ident` (Identity on a string [-1], result
cache on), `eq` (Equal of two strings [-1]) and `norm` (StringNormalizer, upper case). Checks
that an element comes back with exactly its bytes: JSON "he\\u0000llo", binary 00 01 02 03 and
an empty element, raw bodies; that an output of bytes that are not UTF-8 asked as JSON comes back
in binary form (a JSON string cannot carry it) rather than with U+FFFD; that kernels compare the
bytes after a NUL; and that the result cache keys every byte: a repeat is a hit with the same
bytes, a request differing only after the NUL is a miss.

usage: test_bytes.py CELER_BIN EXAMPLE_REPOSITORY (the second argument is not used)
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import json
import os
import shutil
import struct
import sys
import tempfile
import time

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, check, summary  # noqa: E402

STR_IO = 'input [ {{ name: "{i}" data_type: TYPE_STRING dims: [ -1 ] }} ]\n'


def save_model(repo, name, nodes, inputs, outputs, config, opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="test_bytes")
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(os.path.join(repo, name, "1"))
    onnx.save(model, os.path.join(repo, name, "1", "model.onnx"))
    with open(os.path.join(repo, name, "config.pbtxt"), "w") as f:
        f.write(f'name: "{name}"\nplatform: "onnxruntime_onnx"\n' + config)


def string(name):
    return helper.make_tensor_value_info(name, TensorProto.STRING, [-1])


def build_repository(repo):
    save_model(repo, "ident", [helper.make_node("Identity", ["x"], ["y"])], [string("x")], [string("y")],
               'input [ { name: "x" data_type: TYPE_STRING dims: [ -1 ] } ]\n'
               'output [ { name: "y" data_type: TYPE_STRING dims: [ -1 ] } ]\n'
               "response_cache { enable: true }\n")
    save_model(repo, "eq", [helper.make_node("Equal", ["a", "b"], ["y"])], [string("a"), string("b")],
               [helper.make_tensor_value_info("y", TensorProto.BOOL, [-1])], "")
    save_model(repo, "norm", [helper.make_node("StringNormalizer", ["x"], ["y"], case_change_action="UPPER",
                                               stopwords=["drop"])],
               [string("x")], [string("y")], "", opset=17)


# ---- requests -------------------------------------------------------------------------------------


def json_infer(srv, model, inputs, outputs=None):
    """inputs: [(name, [str])]; returns (status, parsed body or raw, headers)."""
    doc = {"inputs": [{"name": n, "shape": [len(v)], "datatype": "BYTES", "data": v} for n, v in inputs]}
    if outputs is not None:
        doc["outputs"] = outputs
    return srv.request("POST", f"/v2/models/{model}/infer", json.dumps(doc).encode(),
                       {"Content-Type": "application/json"})


def pack_bytes(elems):
    return b"".join(struct.pack("<I", len(e)) + e for e in elems)


def unpack_bytes(blob):
    out, off = [], 0
    while off < len(blob):
        (n,) = struct.unpack_from("<I", blob, off)
        out.append(blob[off + 4:off + 4 + n])
        off += 4 + n
    return out


def binary_infer(srv, model, name, elems, binary_out=True):
    """The binary tensor extension: BYTES elements with 4-byte little-endian lengths."""
    data = pack_bytes(elems)
    header = {"inputs": [{"name": name, "shape": [len(elems)], "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(data)}}],
              "parameters": {"binary_data_output": binary_out}}
    head = json.dumps(header).encode()
    return srv.request("POST", f"/v2/models/{model}/infer", head + data,
                       {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"})


def split_response(body, headers):
    """(JSON header, {output name: elements as bytes}) of a response in either form."""
    hl = int(headers.get("Inference-Header-Content-Length", len(body)))
    doc = json.loads(body[:hl])
    outs, off = {}, hl
    for o in doc["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            outs[o["name"]] = o["data"] if o["datatype"] != "BYTES" else [s.encode("utf-8") for s in o["data"]]
        else:
            outs[o["name"]] = unpack_bytes(body[off:off + size]) if o["datatype"] == "BYTES" else body[off:off + size]
            off += size
    return doc, outs


# ---- tests ----------------------------------------------------------------------------------------


def test_identity(srv):
    s, b, h = json_infer(srv, "ident", [("x", ["he\u0000llo", "", "\u0000"])])
    ok = s == 200
    doc, outs = split_response(b, h) if ok else (None, {})
    check("JSON: \"he\\u0000llo\", \"\" and \"\\u0000\" come back exactly", ok and outs["y"] == [b"he\0llo", b"", b"\0"]
          and doc["outputs"][0]["shape"] == [3], (s, b[:300]))
    check("JSON: the NUL is written as \\u0000 in the response text", ok and b"he\\u0000llo" in b, b[:300])

    s, b, h = binary_infer(srv, "ident", "x", [b"\x00\x01\x02\x03", b""])
    ok = s == 200
    doc, outs = split_response(b, h) if ok else (None, {})
    check("binary: 00 01 02 03 and an empty element come back exactly", ok and outs["y"] == [b"\x00\x01\x02\x03", b""]
          and doc["outputs"][0]["parameters"]["binary_data_size"] == 12, (s, b[:300]))

    # not UTF-8, output asked as JSON: sent in binary form instead of losing bytes to U+FFFD
    s, b, h = binary_infer(srv, "ident", "x", [b"\xff\x00\xfe", b"ok"], binary_out=False)
    ok = s == 200
    doc, outs = split_response(b, h) if ok else (None, {})
    check("bytes that are not UTF-8 asked as JSON come back exactly, in binary form", ok
          and outs["y"] == [b"\xff\x00\xfe", b"ok"] and "binary_data_size" in doc["outputs"][0].get("parameters", {}),
          (s, b[:300]))

    # v1 predict has only JSON: text with NULs works, other bytes are refused with a reason
    s, b, _ = srv.request("POST", "/v1/models/ident:predict", json.dumps({"instances": ["a\u0000b"]}).encode())
    check("v1 predict: \"a\\u0000b\" comes back exactly", s == 200 and json.loads(b)["predictions"] == ["a\u0000b"],
          (s, b[:300]))


def test_kernels(srv):
    s, b, h = json_infer(srv, "eq", [("a", ["a\u0000b", "a\u0000b", "a", ""]), ("b", ["a\u0000c", "a\u0000b", "a\u0000", ""])])
    ok = s == 200
    _, outs = split_response(b, h) if ok else (None, {})
    check("Equal compares the bytes after a NUL: a\\0b vs a\\0c is false", ok
          and outs["y"] == [False, True, False, True], (s, b[:300]))
    s, b, h = json_infer(srv, "norm", [("x", ["ab\u0000cd", "drop", "drop\u0000"])])
    ok = s == 200
    _, outs = split_response(b, h) if ok else (None, {})
    check("StringNormalizer keeps the bytes after a NUL and matches stopwords by length", ok
          and outs["y"] == [b"AB\0CD", b"DROP\0"], (s, b[:300]))


def test_cache(srv):
    first = json_infer(srv, "ident", [("x", ["cache\u0000me"])])
    again = json_infer(srv, "ident", [("x", ["cache\u0000me"])])
    other = json_infer(srv, "ident", [("x", ["cache\u0000mf"])])
    outs = [split_response(r[1], r[2])[1]["y"] if r[0] == 200 else None for r in (first, again, other)]
    tags = [r[2].get("X-Celer-Cache") for r in (first, again, other)]
    check("cache: the first request is a miss", first[0] == 200 and tags[0] == "miss", (first[0], tags))
    check("cache: the repeat is a hit with the same bytes", again[0] == 200 and tags[1] == "hit"
          and outs[1] == [b"cache\0me"], (again[0], tags, outs[1]))
    check("cache: a request differing only after the NUL is a miss with its own bytes", other[0] == 200
          and tags[2] == "miss" and outs[2] == [b"cache\0mf"], (other[0], tags, outs[2]))
    # binary elements too: a hit answers the stored bytes, NULs and all
    r1 = binary_infer(srv, "ident", "x", [b"\x00\x01\x02\x03", b"", b"\x00"])
    r2 = binary_infer(srv, "ident", "x", [b"\x00\x01\x02\x03", b"", b"\x00"])
    r3 = binary_infer(srv, "ident", "x", [b"\x00\x01\x02\x04", b"", b"\x00"])
    tags = [r[2].get("X-Celer-Cache") for r in (r1, r2, r3)]
    out2 = split_response(r2[1], r2[2])[1]["y"] if r2[0] == 200 else None
    check("cache: binary 00 01 02 03 repeated is a hit answering the same bytes", tags[:2] == ["miss", "hit"]
          and out2 == [b"\x00\x01\x02\x03", b"", b"\x00"], (tags, out2))
    check("cache: binary 00 01 02 04 is a miss", tags[2] == "miss", tags)


def main():
    celer = sys.argv[1]
    if not os.path.exists(celer):
        print(f"no such binary: {celer}")
        return 1
    tmp = tempfile.mkdtemp(prefix="celer-e2e-bytes-")
    repo = os.path.join(tmp, "repository")
    os.makedirs(repo)
    build_repository(repo)
    started = time.time()
    try:
        srv = Server(repo)
        try:
            for name in ("ident", "eq", "norm"):
                s, _, _ = srv.request("GET", f"/v2/models/{name}/ready")
                check(f"model {name} with string inputs loads", s == 200, (s, srv.output()[-2000:]))
            test_identity(srv)
            test_kernels(srv)
            test_cache(srv)
        finally:
            code = srv.stop()
            check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"took {time.time() - started:.1f} s")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
