"""A conformance case at a new opset, for gen.py: the model built with Debian's onnx 1.12 `helper`
(which writes any opset_import: its checker, which refuses versions it does not know, is not run)
and its inputs; ONNX Runtime computes the expected outputs.

Each cases_<group>.py beside this file defines CASES, a list of case(...)."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

# the IR version a current exporter writes with each opset (onnx's release table)
IR_OF_OPSET = {18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 10}

ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
        np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int8): TensorProto.INT8,
        np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int16): TensorProto.INT16,
        np.dtype(np.uint16): TensorProto.UINT16, np.dtype(np.int32): TensorProto.INT32,
        np.dtype(np.uint32): TensorProto.UINT32, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.uint64): TensorProto.UINT64, np.dtype(np.bool_): TensorProto.BOOL,
        np.dtype(object): TensorProto.STRING}


class Case:
    def __init__(self, name, model, inputs):
        self.name, self.model, self.inputs = name, model, inputs


def case(name, opset, nodes, inputs, outputs, initializers=(), functions=()):
    """A case test_<name>: `nodes` (onnx NodeProto) at `opset` of the default domain; `inputs` a
    list of (name, numpy array), fed in that order; `outputs` a list of (name, numpy dtype) (shape
    left to the engines); `initializers` (name, numpy array) constants of the graph; `functions`
    model-local FunctionProtos (their domains are imported at version 1)."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, ELEM[np.asarray(a).dtype], np.asarray(a).shape) for n, a in inputs],
        [helper.make_tensor_value_info(n, ELEM[np.dtype(t)], None) for n, t in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers])
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in sorted({f.domain for f in functions})]
    model = helper.make_model(graph, opset_imports=imports, producer_name="celer-opset-gen")
    model.ir_version = IR_OF_OPSET[opset]
    if functions:
        model.functions.extend(functions)
    return Case("test_" + name, model, [(n, np.asarray(a)) for n, a in inputs])
