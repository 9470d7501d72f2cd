#!/usr/bin/python3
"""End-to-end: Triton's quickstart models (server docs/examples/model_repository: simple,
simple_int8, simple_string; their ONNX files are opset 21 / IR 10) as a Triton user serves them:
the same graphs, generated here with onnx's helper, in folders with Triton's config.pbtxt (TYPE_*
types, max_batch_size 8, dims [16]). They load, their metadata says what Triton says, and inference
over HTTP (JSON and binary tensors) gives INPUT0 + INPUT1 and INPUT0 - INPUT1, as strings for
simple_string.

usage: test_triton_models.py CELER_BIN EXAMPLE_REPOSITORY (the second is unused)"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, summary  # noqa: E402

MODELS = {"simple": (TensorProto.INT32, "TYPE_INT32", "INT32"), "simple_int8": (TensorProto.INT8, "TYPE_INT8", "INT8"),
          "simple_string": (TensorProto.STRING, "TYPE_STRING", "BYTES")}


def write_model(repo, name, elem, config_type):
    os.makedirs(os.path.join(repo, name, "1"))
    first = "Identity" if elem == TensorProto.INT32 else "Cast"
    N = helper.make_node
    nodes = [N(first, [f"INPUT{i}"], [f"_INPUT{i}"], **({} if first == "Identity" else {"to": TensorProto.INT32}))
             for i in range(2)]
    nodes += [N("Add", ["_INPUT0", "_INPUT1"], ["CAST0"]), N("Sub", ["_INPUT0", "_INPUT1"], ["CAST1"]),
              N("Cast", ["CAST0"], ["OUTPUT0"], to=elem), N("Cast", ["CAST1"], ["OUTPUT1"], to=elem)]
    io = lambda n: helper.make_tensor_value_info(n, elem, [-1, 16])  # noqa: E731
    graph = helper.make_graph(nodes, name, [io("INPUT0"), io("INPUT1")], [io("OUTPUT0"), io("OUTPUT1")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="triton")
    model.ir_version = 10
    with open(os.path.join(repo, name, "1", "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    tensors = lambda kind: ",\n".join(  # noqa: E731
        f'  {{\n    name: "{kind}{i}"\n    data_type: {config_type}\n    dims: [ 16 ]\n  }}' for i in range(2))
    with open(os.path.join(repo, name, "config.pbtxt"), "w") as f:
        f.write(f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
                f'input [\n{tensors("INPUT")}\n]\noutput [\n{tensors("OUTPUT")}\n]\n')


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-triton-")
    repo = os.path.join(tmp, "repository")
    for name, (elem, config_type, _) in MODELS.items():
        write_model(repo, name, elem, config_type)
    srv = Server(repo)
    rng = np.random.default_rng(21)
    for name, (_, _, dt) in MODELS.items():
        status, meta, _ = srv.json("GET", f"/v2/models/{name}")
        check(f"{name}: loads, metadata as Triton's ({dt} [-1,16])", status == 200 and
              [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [("INPUT0", dt, [-1, 16]), ("INPUT1", dt, [-1, 16])],
              meta)
        lo, hi = (-50, 50) if dt == "INT8" else (-1000, 1000)
        a, b = rng.integers(lo, hi, (2, 16)), rng.integers(lo, hi, (2, 16))
        data = (lambda x: [str(v) for v in x.ravel()]) if dt == "BYTES" else (lambda x: x.ravel().tolist())
        body = {"inputs": [{"name": f"INPUT{i}", "datatype": dt, "shape": [2, 16], "data": data(x)} for i, x in enumerate((a, b))]}
        status, doc, _ = srv.json("POST", f"/v2/models/{name}/infer", body)
        out = {t["name"]: t for t in (doc or {}).get("outputs", [])} if status == 200 else {}
        conv = (lambda v: int(v)) if dt == "BYTES" else (lambda v: v)
        ok = status == 200 and [conv(v) for v in out["OUTPUT0"]["data"]] == (a + b).ravel().tolist() and \
            [conv(v) for v in out["OUTPUT1"]["data"]] == (a - b).ravel().tolist() and out["OUTPUT0"]["datatype"] == dt
        check(f"{name}: OUTPUT0 = INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1 over HTTP JSON", ok, json.dumps(doc)[:300])
    # binary tensors, as tritonclient.http sends them
    a, b = np.arange(16, dtype=np.int32).reshape(1, 16), np.full((1, 16), 3, np.int32)
    header = json.dumps({"inputs": [{"name": f"INPUT{i}", "datatype": "INT32", "shape": [1, 16],
                                     "parameters": {"binary_data_size": 64}} for i in range(2)],
                         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}).encode()
    status, reply, headers = srv.request("POST", "/v2/models/simple/infer", header + a.tobytes() + b.tobytes(),
                                         {"Inference-Header-Content-Length": str(len(header))})
    hlen = int(headers.get("Inference-Header-Content-Length", "0"))
    got = np.frombuffer(reply[hlen:hlen + 64], np.int32) if status == 200 else None
    check("simple: binary tensors in and out", got is not None and (got == (a + b).ravel()).all(), (status, reply[:200]))
    check("SIGTERM exits 0", srv.stop() == 0, srv.output()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
