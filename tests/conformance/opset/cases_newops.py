"""New operators exported models use: Gelu 20 (approximate none and tanh), Mish 18, the Bitwise
ops 18 (every integer type), GroupNormalization 18 (scale and bias per group) and 21 (per channel),
RMSNormalization 23; each at its first version and at 23, several shapes and element types."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(20)
N = helper.make_node


def fl(dt, *s, k=3.0):
    return (rng.standard_normal(s) * k).astype(dt)


def unary(name, opset, op, x, **attrs):
    return case(name, opset, [N(op, ["x"], ["y"], **attrs)], [("x", x)], [("y", x.dtype)])


def ints(dt, *s):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, s, dtype=dt, endpoint=True)


# Gelu's interesting range and both tails (where erf and tanh saturate)
gelu_x = np.concatenate([np.linspace(-12, 12, 97), [-0.0, 1e-6, -1e-6, 30, -30]]).astype(np.float32)
# -inf gives NaN (the formula's -inf * 0) in ONNX Runtime, not the limit 0
special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32)

CASES = [
    unary("gelu_opset20", 20, "Gelu", gelu_x),
    unary("gelu_opset20_tanh", 20, "Gelu", gelu_x, approximate="tanh"),
    unary("gelu_opset20_special", 20, "Gelu", special),
    unary("gelu_opset20_tanh_special", 20, "Gelu", special, approximate="tanh"),
    unary("gelu_opset20_none_explicit", 20, "Gelu", fl(np.float32, 2, 3, 5), approximate="none"),
    # no double erf form: ONNX Runtime 1.31 has no double Erf kernel to expand it with
    unary("gelu_opset23_double_tanh", 23, "Gelu", gelu_x.astype(np.float64), approximate="tanh"),
    unary("gelu_opset23_float16", 23, "Gelu", fl(np.float16, 4, 9)),
    unary("gelu_opset23_float16_tanh", 23, "Gelu", fl(np.float16, 4, 9), approximate="tanh"),
    unary("gelu_opset23_4d", 23, "Gelu", fl(np.float32, 2, 3, 4, 5), approximate="tanh"),
    unary("mish_opset18", 18, "Mish", np.concatenate([np.linspace(-30, 30, 121), [0, 90, -110]]).astype(np.float32)),
    unary("mish_opset18_special", 18, "Mish", special),
    unary("mish_opset18_double", 18, "Mish", np.linspace(-40, 40, 81)),
    unary("mish_opset23_float16", 23, "Mish", fl(np.float16, 3, 7)),
    unary("mish_opset23_3d", 23, "Mish", fl(np.float32, 2, 5, 19)),
]

for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64):
    t = np.dtype(dt).name
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        CASES.append(case(f"{op.lower()}_opset18_{t}", 18, [N(op, ["a", "b"], ["y"])],
                          [("a", ints(dt, 3, 5)), ("b", ints(dt, 3, 5))], [("y", dt)]))
    CASES.append(unary(f"bitwisenot_opset18_{t}", 18, "BitwiseNot", ints(dt, 2, 7)))
CASES += [
    # broadcasting: a row against a column, a scalar
    case("bitwiseand_opset23_bcast", 23, [N("BitwiseAnd", ["a", "b"], ["y"])],
         [("a", ints(np.int32, 4, 1)), ("b", ints(np.int32, 1, 6))], [("y", np.int32)]),
    case("bitwiseor_opset23_scalar", 23, [N("BitwiseOr", ["a", "b"], ["y"])],
         [("a", ints(np.uint8, 2, 3, 4)), ("b", np.array(0x81, np.uint8))], [("y", np.uint8)]),
    case("bitwisexor_opset23_bcast_int64", 23, [N("BitwiseXor", ["a", "b"], ["y"])],
         [("a", ints(np.int64, 3, 1, 5)), ("b", ints(np.int64, 2, 1))], [("y", np.int64)]),
    unary("bitwisenot_opset23_int16", 23, "BitwiseNot", ints(np.int16, 33)),
]


def gn(name, opset, x, groups, per, **attrs):
    """GroupNormalization with scale and bias of `per` elements as constants."""
    return case(name, opset, [N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, **attrs)],
                [("x", x)], [("y", x.dtype)],
                initializers=[("s", fl(x.dtype, per, k=1.0)), ("b", fl(x.dtype, per, k=1.0))])


CASES += [
    gn("groupnorm_opset18", 18, fl(np.float32, 2, 6, 3, 4), 3, 3),
    gn("groupnorm_opset18_one_group", 18, fl(np.float32, 2, 4, 5), 1, 1),
    gn("groupnorm_opset18_groups_eq_channels", 18, fl(np.float32, 1, 4, 3, 3), 4, 4, epsilon=1e-3),
    gn("groupnorm_opset21", 21, fl(np.float32, 2, 6, 3, 4), 3, 6),
    gn("groupnorm_opset21_one_group", 21, fl(np.float32, 3, 8, 7), 1, 8),
    gn("groupnorm_opset21_groups_eq_channels", 21, fl(np.float32, 2, 5, 2, 3), 5, 5),
    gn("groupnorm_opset21_rank2", 21, fl(np.float32, 3, 6), 2, 6),
    gn("groupnorm_opset21_5d_epsilon", 21, fl(np.float32, 1, 4, 2, 3, 2), 2, 4, epsilon=0.5),
    gn("groupnorm_opset21_double", 21, fl(np.float64, 2, 6, 5), 2, 6),
    gn("groupnorm_opset21_float16", 21, fl(np.float16, 2, 4, 3, 3, k=1.0), 2, 4),
    gn("groupnorm_opset23_stash", 23, fl(np.float32, 2, 6, 4, 4, k=10.0) + 50, 3, 6, stash_type=1),
]


def rms(name, x, scale, **attrs):
    return case(name, 23, [N("RMSNormalization", ["x", "s"], ["y"], **attrs)], [("x", x)], [("y", scale.dtype)],
                initializers=[("s", scale)])


CASES += [
    rms("rmsnorm_opset23", fl(np.float32, 2, 3, 16), fl(np.float32, 16, k=1.0)),
    rms("rmsnorm_opset23_axis1", fl(np.float32, 2, 3, 5), fl(np.float32, 3, 5, k=1.0), axis=1),
    rms("rmsnorm_opset23_axis_neg2", fl(np.float32, 4, 3, 5), fl(np.float32, 3, 5, k=1.0), axis=-2),
    rms("rmsnorm_opset23_axis0", fl(np.float32, 3, 4), fl(np.float32, 3, 4, k=1.0), axis=0),
    rms("rmsnorm_opset23_scale_trailing", fl(np.float32, 2, 3, 5), fl(np.float32, 5, k=1.0), axis=1),
    rms("rmsnorm_opset23_scale_scalar", fl(np.float32, 3, 7), np.array([1.5], np.float32)),
    rms("rmsnorm_opset23_epsilon", fl(np.float32, 2, 9, k=0.01), fl(np.float32, 9, k=1.0), epsilon=0.1),
    rms("rmsnorm_opset23_stash", fl(np.float32, 5, 33), fl(np.float32, 33, k=1.0), stash_type=1),
    rms("rmsnorm_opset23_double", fl(np.float64, 3, 10), fl(np.float64, 10, k=1.0)),
    rms("rmsnorm_opset23_float16", fl(np.float16, 3, 10, k=1.0), fl(np.float16, 10, k=1.0)),
    # X and scale of different types are allowed by the spec and served by celer, but ONNX Runtime
    # 1.31 expands the op into a Mul that refuses them, so there is no oracle for them here
]
