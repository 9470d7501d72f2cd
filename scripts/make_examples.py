#!/usr/bin/python3
"""Generates the checked-in example model and input (run with /usr/bin/python3; needs python3-onnx
and numpy only, no network):

  examples/mlp/model.onnx  a small recommendation-style MLP, opset 17:
                           features[batch,16] -> Gemm(16->32) -> Relu -> MatMul(32->8) + Add -> scores[batch,8]
  examples/mlp/input.npy   features for batch 2 (float32)
  examples/repository/     a model repository in Triton's layout for `celer serve`:
                           mlp/config.pbtxt + mlp/1/model.onnx (the MLP, dynamic batching),
                           identity/1/model.onnx (a trivial model, no config: completed from ONNX)

The weights come from a fixed seed, so rerunning the script rewrites identical files.
tests/cli/test_cli.sh computes the reference output from the initializers named here."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_mlp(out_dir):
    rng = np.random.default_rng(20240601)
    w1 = (rng.standard_normal((32, 16)) * 0.25).astype(np.float32)  # Gemm with transB=1: [out, in]
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 8)) * 0.25).astype(np.float32)  # MatMul: [in, out]
    b2 = (rng.standard_normal(8) * 0.1).astype(np.float32)
    features = rng.standard_normal((2, 16)).astype(np.float32)

    nodes = [
        helper.make_node("Gemm", ["features", "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1_out"], ["hidden"], name="relu1"),
        helper.make_node("MatMul", ["hidden", "fc2.weight"], ["fc2_mm"], name="fc2"),
        helper.make_node("Add", ["fc2_mm", "fc2.bias"], ["scores"], name="fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        outputs=[helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 8])],
        initializer=[
            numpy_helper.from_array(w1, "fc1.weight"),
            numpy_helper.from_array(b1, "fc1.bias"),
            numpy_helper.from_array(w2, "fc2.weight"),
            numpy_helper.from_array(b2, "fc2.bias"),
        ],
    )
    model = helper.make_model(
        graph, producer_name="celer-make-examples", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    np.save(os.path.join(out_dir, "input.npy"), features)


MLP_CONFIG = """name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  { name: "features" data_type: TYPE_FP32 dims: [ 16 ] }
]
output [
  { name: "scores" data_type: TYPE_FP32 dims: [ 8 ] }
]
dynamic_batching {
  preferred_batch_size: [ 16, 32, 64 ]
  max_queue_delay_microseconds: 100
  default_queue_policy { max_queue_size: 4096 }
}
instance_group [ { count: 1 kind: KIND_CPU } ]
"""


def make_identity(out_dir):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="identity")],
        "identity",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, producer_name="celer-make-examples", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))


def make_repository(out_dir, mlp_dir):
    os.makedirs(os.path.join(out_dir, "mlp", "1"), exist_ok=True)
    with open(os.path.join(mlp_dir, "model.onnx"), "rb") as src, \
            open(os.path.join(out_dir, "mlp", "1", "model.onnx"), "wb") as dst:
        dst.write(src.read())
    with open(os.path.join(out_dir, "mlp", "config.pbtxt"), "w") as f:
        f.write(MLP_CONFIG)
    make_identity(os.path.join(out_dir, "identity", "1"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "examples")
    make_mlp(os.path.join(out, "mlp"))
    make_repository(os.path.join(out, "repository"), os.path.join(out, "mlp"))
    print(f"wrote {os.path.join(out, 'mlp')}/model.onnx, input.npy and {os.path.join(out, 'repository')}")


if __name__ == "__main__":
    main()
