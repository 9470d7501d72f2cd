"""Models in Triton's QA layout, generated with onnx's helper for the end-to-end tests (Triton's own
QA generators, qa/common/gen_qa_models.py, name and shape them the same way; nothing is copied):

- `onnx_zero_1_<dtype>` / `onnx_nobatch_zero_1_<dtype>`: identity, INPUT0 -> OUTPUT0, dims [16],
  for every datatype (BYTES included);
- `onnx_<dtype>_<dtype>_<dtype>` / `onnx_nobatch_<dtype>_<dtype>_<dtype>`: OUTPUT0 = INPUT0 +
  INPUT1 and OUTPUT1 = INPUT0 - INPUT1, dims [16], for the numeric datatypes, OUTPUT0 with
  `label_filename: "output0_labels.txt"` (16 labels), as Triton's add/sub QA models have;
- batching models have max_batch_size 8, nobatch ones 0.

write_repository(folder, dtypes=None, batching=(True, False)) writes them and returns
{name: (kind, dtype, batching)}; reference(kind, a, b) gives the outputs NumPy expects;
write_shape_models(folder) adds models with variable dims and config reshapes."""
import os

import numpy as np
from onnx import TensorProto, helper

# KServe datatype -> (ONNX element type, config data_type, NumPy dtype, Triton QA name)
DTYPES = {
    "BOOL": (TensorProto.BOOL, "TYPE_BOOL", np.bool_, "bool"),
    "UINT8": (TensorProto.UINT8, "TYPE_UINT8", np.uint8, "uint8"),
    "UINT16": (TensorProto.UINT16, "TYPE_UINT16", np.uint16, "uint16"),
    "UINT32": (TensorProto.UINT32, "TYPE_UINT32", np.uint32, "uint32"),
    "UINT64": (TensorProto.UINT64, "TYPE_UINT64", np.uint64, "uint64"),
    "INT8": (TensorProto.INT8, "TYPE_INT8", np.int8, "int8"),
    "INT16": (TensorProto.INT16, "TYPE_INT16", np.int16, "int16"),
    "INT32": (TensorProto.INT32, "TYPE_INT32", np.int32, "int32"),
    "INT64": (TensorProto.INT64, "TYPE_INT64", np.int64, "int64"),
    "FP16": (TensorProto.FLOAT16, "TYPE_FP16", np.float16, "float16"),
    "FP32": (TensorProto.FLOAT, "TYPE_FP32", np.float32, "float32"),
    "FP64": (TensorProto.DOUBLE, "TYPE_FP64", np.float64, "float64"),
    "BYTES": (TensorProto.STRING, "TYPE_STRING", np.object_, "object"),
}
ADD_SUB = [d for d in DTYPES if d not in ("BOOL", "BYTES")]
LABELS = [f"label{i}" for i in range(16)]


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="celer-qa")
    model.ir_version = 8
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def _config(name, dt, batching, n_in, n_out, labels=False):
    ct = DTYPES[dt][1]
    ins = ",\n".join(f'  {{ name: "INPUT{i}" data_type: {ct} dims: [ 16 ] }}' for i in range(n_in))
    outs = ",\n".join(f'  {{ name: "OUTPUT{i}" data_type: {ct} dims: [ 16 ]'
                      + (' label_filename: "output0_labels.txt"' if labels and i == 0 else "") + " }"
                      for i in range(n_out))
    return (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {8 if batching else 0}\n'
            f"input [\n{ins}\n]\noutput [\n{outs}\n]\n")


def _write(folder, name, graph, config, labels=False):
    _save(graph, os.path.join(folder, name, "1", "model.onnx"))
    with open(os.path.join(folder, name, "config.pbtxt"), "w") as f:
        f.write(config)
    if labels:
        with open(os.path.join(folder, name, "output0_labels.txt"), "w") as f:
            f.write("\n".join(LABELS) + "\n")


def write_repository(folder, dtypes=None, batching=(True, False)):
    made = {}
    for dt in dtypes or list(DTYPES):
        elem, _, _, qa = DTYPES[dt]
        for b in batching:
            shape = [-1, 16] if b else [16]
            io = lambda n: helper.make_tensor_value_info(n, elem, shape)  # noqa: E731
            name = f"onnx_{'' if b else 'nobatch_'}zero_1_{qa}"
            graph = helper.make_graph([helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], name, [io("INPUT0")],
                                      [io("OUTPUT0")])
            _write(folder, name, graph, _config(name, dt, b, 1, 1))
            made[name] = ("identity", dt, b)
            if dt not in ADD_SUB:
                continue
            name = f"onnx_{'' if b else 'nobatch_'}{qa}_{qa}_{qa}"
            graph = helper.make_graph([helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
                                       helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])], name,
                                      [io("INPUT0"), io("INPUT1")], [io("OUTPUT0"), io("OUTPUT1")])
            _write(folder, name, graph, _config(name, dt, b, 2, 2, labels=True), labels=True)
            made[name] = ("addsub", dt, b)
    return made


def inputs(dt, rows, rng):
    """Two [rows, 16] arrays of dt whose sum and difference stay in range."""
    np_dt = DTYPES[dt][2]
    if dt == "BOOL":
        return [rng.integers(0, 2, (rows, 16)).astype(np.bool_) for _ in range(2)]
    if dt == "BYTES":
        return [np.array([[f"s{r}_{i}".encode() for i in range(16)] for r in range(rows)], dtype=np.object_)
                for _ in range(2)]
    if dt.startswith("FP"):
        return [rng.uniform(-10, 10, (rows, 16)).astype(np_dt) for _ in range(2)]
    info = np.iinfo(np_dt)
    lo, hi = max(info.min // 4, -1000), min(info.max // 4, 1000)
    a = rng.integers(lo, hi, (rows, 16)).astype(np_dt)
    b = rng.integers(max(lo, 0) if info.min == 0 else lo, hi, (rows, 16)).astype(np_dt)
    if info.min == 0:  # unsigned: keep a - b >= 0
        a, b = np.maximum(a, b), np.minimum(a, b)
    return [a, b]


def reference(kind, a, b=None):
    """The outputs NumPy expects: [a] for identity, [a + b, a - b] for add/sub."""
    return [a] if kind == "identity" else [a + b, a - b]


def write_shape_models(folder):
    """Models for how shapes are read, beside the ones above (same layout and opset); returns
    {name: description}:

    - `onnx_var_zero_1_float32`, `onnx_var_zero_1_int32`: identity, batching, dims [-1] (a raw body
      deduces [1, n]); `onnx_nobatch_var_zero_1_float32`: the same without batching ([n]);
    - `onnx_var2_zero_1_float16`: identity, batching, dims [-1, -1] (a raw body cannot be deduced);
    - `onnx_zero_1_object_1`: BYTES identity, batching, dims [1] (a raw body is one element);
    - `onnx_reshape_float32`: batching; INPUT0 dims [16] reshape [4, 4]; OUTPUT0 = INPUT0 (dims
      [16], reshape [4, 4]) and OUTPUT1 = the sums of INPUT0's rows of 4 (model [-1, 4], config
      dims [2, 2] reshape [4]): the model sees the reshape, the client the dims;
    - `onnx_nobatch_reshape_float32`: no batching; INPUT0 dims [2, 8] reshape [16], OUTPUT0 the same;
    - `onnx_reshape_var_float32`: batching; INPUT0 dims [-1, 4] reshape [-1, 2, 2], OUTPUT0 the same."""
    made = {}
    F = TensorProto.FLOAT
    vi = helper.make_tensor_value_info

    def identity(name, elem, model_shape, cfg_dt, batching, dims, reshape=None):
        graph = helper.make_graph([helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])], name,
                                  [vi("INPUT0", elem, model_shape)], [vi("OUTPUT0", elem, model_shape)])
        rs = f" reshape: {{ shape: [ {', '.join(map(str, reshape))} ] }}" if reshape is not None else ""
        d = ", ".join(map(str, dims))
        config = (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {8 if batching else 0}\n'
                  f'input [ {{ name: "INPUT0" data_type: {cfg_dt} dims: [ {d} ]{rs} }} ]\n'
                  f'output [ {{ name: "OUTPUT0" data_type: {cfg_dt} dims: [ {d} ]{rs} }} ]\n')
        _write(folder, name, graph, config)

    identity("onnx_var_zero_1_float32", F, [-1, -1], "TYPE_FP32", True, [-1])
    made["onnx_var_zero_1_float32"] = "FP32 identity, batching, dims [-1]"
    identity("onnx_var_zero_1_int32", TensorProto.INT32, [-1, -1], "TYPE_INT32", True, [-1])
    made["onnx_var_zero_1_int32"] = "INT32 identity, batching, dims [-1]"
    identity("onnx_nobatch_var_zero_1_float32", F, [-1], "TYPE_FP32", False, [-1])
    made["onnx_nobatch_var_zero_1_float32"] = "FP32 identity, no batching, dims [-1]"
    identity("onnx_var2_zero_1_float16", TensorProto.FLOAT16, [-1, -1, -1], "TYPE_FP16", True, [-1, -1])
    made["onnx_var2_zero_1_float16"] = "FP16 identity, batching, dims [-1, -1]"
    identity("onnx_zero_1_object_1", TensorProto.STRING, [-1, 1], "TYPE_STRING", True, [1])
    made["onnx_zero_1_object_1"] = "BYTES identity, batching, dims [1]"
    identity("onnx_nobatch_reshape_float32", F, [16], "TYPE_FP32", False, [2, 8], [16])
    made["onnx_nobatch_reshape_float32"] = "FP32 identity, no batching, dims [2, 8] reshape [16]"
    identity("onnx_reshape_var_float32", F, [-1, -1, 2, 2], "TYPE_FP32", True, [-1, 4], [-1, 2, 2])
    made["onnx_reshape_var_float32"] = "FP32 identity, batching, dims [-1, 4] reshape [-1, 2, 2]"

    name = "onnx_reshape_float32"
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [-1])
    graph = helper.make_graph([helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"]),
                               helper.make_node("ReduceSum", ["INPUT0", "axes"], ["OUTPUT1"], keepdims=0)], name,
                              [vi("INPUT0", F, [-1, 4, 4])], [vi("OUTPUT0", F, [-1, 4, 4]), vi("OUTPUT1", F, [-1, 4])],
                              initializer=[axes])
    config = (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
              'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] reshape: { shape: [ 4, 4 ] } } ]\n'
              'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] reshape: { shape: [ 4, 4 ] } },\n'
              '         { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape: { shape: [ 4 ] } } ]\n')
    _write(folder, name, graph, config)
    made[name] = "FP32, batching, INPUT0 [16] reshape [4, 4]; OUTPUT0 = INPUT0, OUTPUT1 [2, 2] = its row sums"
    return made
