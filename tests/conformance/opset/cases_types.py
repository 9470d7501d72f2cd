"""Operator versions from 18 to 23 that only widened element types (bfloat16 at 22, float8 at 19,
int4/uint4 at 21, float4 at 23): each runs at that version's opset with the types celer serves, so
the kernel lookup picks the new version and the results are ONNX Runtime's. (GlobalLpPool 22,
MaxRoiPool 22 and RoiAlign 22 have none: ONNX Runtime 1.31 has no kernel for those versions to
compare with.)"""
import numpy as np
from onnx import TensorProto, helper

from opset_case import case

rng = np.random.default_rng(22)
N = helper.make_node


def f32(*s, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, s).astype(np.float32)


def unary(op, opset, x, **attrs):
    return case(f"{op.lower()}_opset{opset}", opset, [N(op, ["x"], ["y"], **attrs)], [("x", x)], [("y", x.dtype)])


CASES = [unary(op, 22, f32(3, 4, lo=lo, hi=hi)) for op, lo, hi in (
    ("Acos", -0.9, 0.9), ("Acosh", 1.1, 3.0), ("Asin", -0.9, 0.9), ("Asinh", -2, 2), ("Atan", -2, 2),
    ("Atanh", -0.9, 0.9), ("Cos", -3, 3), ("Cosh", -2, 2), ("Sin", -3, 3), ("Sinh", -2, 2), ("Tan", -1, 1),
    ("Elu", -2, 2), ("HardSigmoid", -4, 4), ("HardSwish", -4, 4), ("Round", -5, 5), ("Selu", -2, 2),
    ("Softplus", -3, 3), ("Softsign", -3, 3), ("ThresholdedRelu", -2, 2))]
CASES += [
    unary("GlobalAveragePool", 22, f32(1, 3, 4, 5)),
    unary("GlobalMaxPool", 22, f32(1, 3, 4, 5)),
    unary("MaxPool", 22, f32(1, 2, 6, 6), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    unary("AveragePool", 22, f32(1, 2, 6, 6), kernel_shape=[3, 3], count_include_pad=1, pads=[1, 1, 1, 1]),
    case("averagepool_opset19_dilations", 19,
         [N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], strides=[1, 1])],
         [("x", f32(1, 2, 6, 6))], [("y", np.float32)]),
    unary("LpPool", 22, f32(1, 2, 6, 6), kernel_shape=[2, 2], p=2),
    case("conv_opset22", 22, [N("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2])],
         [("x", f32(1, 3, 8, 8))], [("y", np.float32)], initializers=[("w", f32(4, 3, 3, 3)), ("b", f32(4))]),
    case("convtranspose_opset22", 22, [N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
         [("x", f32(1, 2, 3, 3))], [("y", np.float32)], initializers=[("w", f32(2, 3, 2, 2))]),
    case("det_opset22", 22, [N("Det", ["x"], ["y"])], [("x", f32(2, 3, 3))], [("y", np.float32)]),
    case("equal_opset19_int", 19, [N("Equal", ["a", "b"], ["y"])],
         [("a", np.array([1, 2, 3], np.int64)), ("b", np.array([1, 5, 3], np.int64))], [("y", np.bool_)]),
    case("isnan_opset20", 20, [N("IsNaN", ["x"], ["y"])], [("x", np.array([1.0, np.nan, -np.inf], np.float32))],
         [("y", np.bool_)]),
    case("isinf_opset20", 20, [N("IsInf", ["x"], ["y"], detect_negative=0)],
         [("x", np.array([1.0, np.nan, -np.inf, np.inf], np.float32))], [("y", np.bool_)]),
    case("nllloss_opset22", 22, [N("NegativeLogLikelihoodLoss", ["x", "t"], ["y"], reduction="mean")],
         [("x", f32(3, 5))], [("y", np.float32)], initializers=[("t", np.array([0, 4, 2], np.int64))]),
    case("identity_opset19", 19, [N("Identity", ["x"], ["y"])], [("x", f32(2, 2))], [("y", np.float32)]),
    case("reshape_opset19", 19, [N("Reshape", ["x", "s"], ["y"])], [("x", f32(2, 6))], [("y", np.float32)],
         initializers=[("s", np.array([3, 4], np.int64))]),
    case("shape_opset19", 19, [N("Shape", ["x"], ["y"])], [("x", f32(2, 6))], [("y", np.int64)]),
    case("size_opset19", 19, [N("Size", ["x"], ["y"])], [("x", f32(2, 6))], [("y", np.int64)]),
    case("cast_opset19", 19, [N("Cast", ["x"], ["y"], to=TensorProto.INT64)], [("x", f32(5, lo=-9, hi=9))],
         [("y", np.int64)]),
    case("castlike_opset23", 23, [N("CastLike", ["x", "t"], ["y"])], [("x", f32(4))],
         [("t", np.zeros(1, np.int32))] and [("y", np.int32)], initializers=[("t", np.zeros(1, np.int32))]),
    case("constantofshape_opset20", 20, [N("ConstantOfShape", ["s"], ["y"])], [("s", np.array([3], np.int64))],
         [("y", np.float32)]),
    case("constantofshape_opset23", 23,
         [N("ConstantOfShape", ["s"], ["y"], value=helper.make_tensor("v", TensorProto.INT32, [1], [7]))],
         [("s", np.array([2, 2], np.int64))], [("y", np.int32)]),
    case("flatten_opset23", 23, [N("Flatten", ["x"], ["y"])], [("x", f32(2, 3, 4))], [("y", np.float32)]),
    case("squeeze_opset23", 23, [N("Squeeze", ["x"], ["y"])], [("x", f32(1, 3, 1))], [("y", np.float32)]),
    case("unsqueeze_opset21", 21, [N("Unsqueeze", ["x", "a"], ["y"])], [("x", f32(3))], [("y", np.float32)],
         initializers=[("a", np.array([1], np.int64))]),
    case("transpose_opset23", 23, [N("Transpose", ["x"], ["y"])], [("x", f32(2, 3))], [("y", np.float32)]),
    case("shape_opset23", 23, [N("Shape", ["x"], ["y"], start=-2)], [("x", f32(2, 3, 4))], [("y", np.int64)]),
    case("size_opset23", 23, [N("Size", ["x"], ["y"])], [("x", f32(2, 3, 4))], [("y", np.int64)]),
    case("qlinearmatmul_opset21", 21, [N("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])],
         [("a", rng.integers(0, 255, (2, 4)).astype(np.uint8))], [("y", np.uint8)],
         initializers=[("as", np.array(0.02, np.float32)), ("az", np.array(128, np.uint8)),
                       ("b", rng.integers(0, 255, (4, 3)).astype(np.uint8)), ("bs", np.array(0.01, np.float32)),
                       ("bz", np.array(120, np.uint8)), ("ys", np.array(0.05, np.float32)),
                       ("yz", np.array(100, np.uint8))]),
]
for op, opset in (("If", 19), ("If", 21), ("If", 23)):
    then_g = helper.make_graph([N("Add", ["x", "x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([N("Neg", ["x"], ["e"])], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [3])])
    CASES.append(case(f"if_opset{opset}", opset, [N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                      [("c", np.array(opset % 2 == 1)), ("x", f32(3))], [("y", np.float32)]))
for opset in (19, 21, 23):
    body = helper.make_graph(
        [N("Identity", ["cond_in"], ["cond_out"]), N("Add", ["acc_in", "x"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [2])])
    CASES.append(case(f"loop_opset{opset}", opset, [N("Loop", ["m", "", "a0"], ["y"], body=body)],
                      [("a0", f32(2)), ("x", f32(2))], [("y", np.float32)], initializers=[("m", np.array(3, np.int64))]))
    sbody = helper.make_graph(
        [N("Add", ["s_in", "e"], ["s_out"]), N("Identity", ["s_out"], ["o"])], "sbody",
        [helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])])
    CASES.append(case(f"scan_opset{opset}", opset, [N("Scan", ["s0", "xs"], ["s", "ys"], body=sbody, num_scan_inputs=1)],
                      [("s0", f32(2)), ("xs", f32(4, 2))], [("s", np.float32), ("ys", np.float32)]))

# the recurrent operators (22: bfloat16) with their optional inputs: bias, sequence lengths, initial state
H = 3
CASES += [
    case("rnn_opset22", 22, [N("RNN", ["x", "w", "r", "b"], ["y", "yh"], hidden_size=H)], [("x", f32(4, 2, 5))],
         [("y", np.float32), ("yh", np.float32)],
         initializers=[("w", f32(1, H, 5)), ("r", f32(1, H, H)), ("b", f32(1, 2 * H))]),
    case("gru_opset22", 22, [N("GRU", ["x", "w", "r", "b"], ["y", "yh"], hidden_size=H, linear_before_reset=1)],
         [("x", f32(4, 2, 5))], [("y", np.float32), ("yh", np.float32)],
         initializers=[("w", f32(1, 3 * H, 5)), ("r", f32(1, 3 * H, H)), ("b", f32(1, 6 * H))]),
    case("lstm_opset22_bidirectional", 22, [N("LSTM", ["x", "w", "r", "b"], ["y", "yh", "yc"], hidden_size=H,
                                              direction="bidirectional")],
         [("x", f32(4, 2, 5))], [("y", np.float32), ("yh", np.float32), ("yc", np.float32)],
         initializers=[("w", f32(2, 4 * H, 5)), ("r", f32(2, 4 * H, H)), ("b", f32(2, 8 * H))]),
    case("lppool_opset18_ceil_mode", 18, [N("LpPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], p=2,
                                            ceil_mode=1)], [("x", f32(1, 2, 5, 5))], [("y", np.float32)]),
    case("castlike_opset19", 19, [N("CastLike", ["x", "t"], ["y"])], [("x", f32(4, lo=-9, hi=9))], [("y", np.int64)],
         initializers=[("t", np.zeros(1, np.int64))]),
    case("maxunpool_opset22", 22, [N("MaxUnpool", ["x", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
         [("x", f32(1, 1, 2, 2))], [("y", np.float32)], initializers=[("i", np.array([[[[0, 3], [9, 14]]]], np.int64))]),
]
