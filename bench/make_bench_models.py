#!/usr/bin/python3
"""Writes the benchmark's celer model repository and request bodies (no network).

    make_bench_models.py OUTDIR

  OUTDIR/bench-repo/mlp/1/model.onnx       the FastAPI service's MLP, same seeded weights, opset 17
  OUTDIR/bench-repo/mlp/config.pbtxt       dynamic batching up to 64 rows
  OUTDIR/bench-repo/mlp_nobatch/...         the same file with batching off (shows what batching buys)
  OUTDIR/bench-repo/identity/1/model.onnx  trivial model (Identity on FP32 [batch, 4]) for nginx
  OUTDIR/bench-repo/identity/config.pbtxt
  OUTDIR/bodies/celer_mlp.json             KServe v2 infer body, one row of 1000 features
  OUTDIR/bodies/fastapi_mlp.json           the same row as {"features": [...]}
  OUTDIR/bodies/identity.json              KServe v2 infer body for the trivial model
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastapi_service import build_model  # noqa: E402

MLP_CONFIG = """name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 1000 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 64 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
"""

NOBATCH_CONFIG = """name: "mlp_nobatch"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "features" data_type: TYPE_FP32 dims: [ 1, 1000 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 1, 64 ] } ]
"""

IDENTITY_CONFIG = """name: "identity"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
dynamic_batching { }
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def export_mlp(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            build_model(), (torch.zeros(1, 1000),), path, opset_version=17,
            input_names=["features"], output_names=["output"],
            dynamic_axes={"features": {0: "batch"}, "output": {0: "batch"}},
        )
    onnx.checker.check_model(onnx.load(path))


def export_identity(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def kserve_body(name, row):
    return json.dumps({"inputs": [{"name": name, "shape": [1, len(row)], "datatype": "FP32", "data": row}]})


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    repo = os.path.join(out, "bench-repo")
    export_mlp(os.path.join(repo, "mlp", "1", "model.onnx"))
    write(os.path.join(repo, "mlp", "config.pbtxt"), MLP_CONFIG)
    os.makedirs(os.path.join(repo, "mlp_nobatch", "1"), exist_ok=True)
    shutil.copyfile(os.path.join(repo, "mlp", "1", "model.onnx"), os.path.join(repo, "mlp_nobatch", "1", "model.onnx"))
    write(os.path.join(repo, "mlp_nobatch", "config.pbtxt"), NOBATCH_CONFIG)
    export_identity(os.path.join(repo, "identity", "1", "model.onnx"))
    write(os.path.join(repo, "identity", "config.pbtxt"), IDENTITY_CONFIG)

    # Six significant digits: a realistic body size (~10 KB), identical text for both services.
    row = [float(f"{v:.6g}") for v in np.random.default_rng(7).standard_normal(1000)]
    bodies = os.path.join(out, "bodies")
    write(os.path.join(bodies, "celer_mlp.json"), kserve_body("features", row))
    write(os.path.join(bodies, "fastapi_mlp.json"), json.dumps({"features": row}))
    write(os.path.join(bodies, "identity.json"), kserve_body("x", [0.5, -1.25, 2.0, 3.75]))
    print(f"models in {repo}, bodies in {bodies}")


if __name__ == "__main__":
    main()
