"""The reductions at opsets 18 and 20: ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceMax,
ReduceMean, ReduceMin, ReduceProd and ReduceSumSquare take `axes` as an optional second input from
opset 18 (an initializer, a graph input or nothing), with `noop_with_empty_axes`; ReduceMax and
ReduceMin 20 add bool. Each is also run at opset 23, the newest, to show that it picks these
versions. The composite reductions over the empty set of axes (noop_with_empty_axes=1) still apply
their elementwise step: ReduceLogSum gives log(x), ReduceSumSquare x*x, ReduceL1 |x|."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(1820)
N = helper.make_node


def data(dtype, *shape):
    """Inputs each reduction is defined on (positive where a log is taken, small integers so that
    products and squares stay in range)."""
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        lo = 0 if np.issubdtype(dtype, np.unsignedinteger) else -4
        return rng.integers(lo, 5, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def positive(dtype, *shape):
    return (np.abs(rng.standard_normal(shape)) + 0.25).astype(dtype)


def reduce(name, op, opset, x, axes=None, axes_as="init", out=None, **attrs):
    """A case of `op` over input x: axes None (the input omitted), or a list given as an
    initializer ("init") or a graph input ("input")."""
    ins, inits, inputs = ["x"], [], [("x", x)]
    if axes is not None:
        a = np.array(axes, np.int64)
        ins.append("axes")
        (inits if axes_as == "init" else inputs).append(("axes", a))
    return case(name, opset, [N(op, ins, ["y"], **attrs)], inputs, [("y", out or x.dtype)], initializers=inits)


f32, f64, f16 = np.float32, np.float64, np.float16
i8, u8, i32, i64 = np.int8, np.uint8, np.int32, np.int64

CASES = [
    # ReduceMean 18
    reduce("reducemean_opset18_axes_init", "ReduceMean", 18, data(f32, 2, 3, 4), [1]),
    reduce("reducemean_opset18_axes_input_keepdims0", "ReduceMean", 18, data(f32, 2, 3, 4), [0, 2], "input",
           keepdims=0),
    reduce("reducemean_opset18_negative_axes", "ReduceMean", 18, data(f64, 3, 4, 5), [-1, -3], keepdims=0),
    reduce("reducemean_opset18_no_axes", "ReduceMean", 18, data(f32, 3, 4)),
    reduce("reducemean_opset18_empty_axes_noop0", "ReduceMean", 18, data(f32, 3, 4), [], keepdims=0),
    reduce("reducemean_opset18_empty_axes_noop1", "ReduceMean", 18, data(f32, 3, 4), [], noop_with_empty_axes=1),
    reduce("reducemean_opset18_int32", "ReduceMean", 18, data(i32, 4, 6), [1]),
    reduce("reducemean_opset18_float16", "ReduceMean", 18, data(f16, 2, 8), [-1], "input"),
    reduce("reducemean_opset23", "ReduceMean", 23, data(f32, 2, 3, 4), [-1], "input"),
    # ReduceMax / ReduceMin 18 and 20 (bool from 20)
    reduce("reducemax_opset18_axes_init", "ReduceMax", 18, data(f32, 3, 4, 2), [1], keepdims=0),
    reduce("reducemax_opset18_int8_axes_input", "ReduceMax", 18, data(i8, 3, 5), [-1], "input"),
    reduce("reducemax_opset18_no_axes_keepdims0", "ReduceMax", 18, data(i64, 2, 3), keepdims=0),
    reduce("reducemax_opset18_empty_axes_noop1", "ReduceMax", 18, data(f32, 2, 3), [], noop_with_empty_axes=1),
    reduce("reducemax_opset20_bool", "ReduceMax", 20, data(np.bool_, 3, 4), [1], keepdims=0),
    reduce("reducemax_opset20_bool_axes_input", "ReduceMax", 20, data(np.bool_, 2, 3, 2), [0, -1], "input"),
    reduce("reducemax_opset20_uint8_negative_axes", "ReduceMax", 20, data(u8, 4, 3), [-2]),
    reduce("reducemax_opset20_float_no_axes", "ReduceMax", 20, data(f32, 3, 3), noop_with_empty_axes=0),
    reduce("reducemax_opset23", "ReduceMax", 23, data(f32, 2, 5), [0], "input", keepdims=0),
    reduce("reducemax_opset23_bool", "ReduceMax", 23, data(np.bool_, 4, 2), [], keepdims=0),
    reduce("reducemin_opset18_axes_init", "ReduceMin", 18, data(f64, 3, 4), [0]),
    reduce("reducemin_opset18_uint8_axes_input", "ReduceMin", 18, data(u8, 2, 6), [1], "input", keepdims=0),
    reduce("reducemin_opset18_int32_negative_axes", "ReduceMin", 18, data(i32, 2, 3, 4), [-1, -2]),
    reduce("reducemin_opset20_bool", "ReduceMin", 20, data(np.bool_, 3, 4), [0]),
    reduce("reducemin_opset20_bool_no_axes", "ReduceMin", 20, data(np.bool_, 2, 3), keepdims=0),
    reduce("reducemin_opset20_int64_empty_axes_noop1", "ReduceMin", 20, data(i64, 2, 3), [],
           noop_with_empty_axes=1),
    reduce("reducemin_opset23", "ReduceMin", 23, data(f32, 3, 4), [-1], keepdims=0),
    reduce("reducemin_opset23_bool", "ReduceMin", 23, data(np.bool_, 2, 4), [1], "input"),
    # over an empty set of values: the type's lowest value for a max, its highest for a min
    reduce("reducemax_opset18_int32_empty_set", "ReduceMax", 18, np.zeros((2, 0), i32), [1]),
    reduce("reducemax_opset20_int8_empty_set", "ReduceMax", 20, np.zeros((0, 3), i8), [0], keepdims=0),
    reduce("reducemin_opset20_int64_empty_set", "ReduceMin", 20, np.zeros((3, 0), i64), [1], "input"),
    reduce("reducemin_opset18_uint8_empty_set", "ReduceMin", 18, np.zeros((0, 2), u8), [0]),
    # ReduceProd 18
    reduce("reduceprod_opset18_axes_init", "ReduceProd", 18, data(f32, 3, 4), [1], keepdims=0),
    reduce("reduceprod_opset18_int64_axes_input", "ReduceProd", 18, data(i64, 2, 3, 2), [0, 2], "input"),
    reduce("reduceprod_opset18_empty_axes_noop1", "ReduceProd", 18, data(f32, 2, 3), [], noop_with_empty_axes=1),
    reduce("reduceprod_opset23", "ReduceProd", 23, data(f64, 2, 3), [-2]),
    # ReduceL1 / ReduceL2 18
    reduce("reducel1_opset18_axes_init", "ReduceL1", 18, data(f32, 2, 3, 4), [2]),
    reduce("reducel1_opset18_int32_negative_axes", "ReduceL1", 18, data(i32, 3, 4), [-1], keepdims=0),
    reduce("reducel1_opset18_empty_axes_noop1", "ReduceL1", 18, data(f32, 2, 3), [], noop_with_empty_axes=1),
    reduce("reducel1_opset23", "ReduceL1", 23, data(f32, 3, 4), [0], "input"),
    reduce("reducel2_opset18_axes_input", "ReduceL2", 18, data(f32, 2, 3, 4), [1], "input", keepdims=0),
    reduce("reducel2_opset18_no_axes", "ReduceL2", 18, data(f64, 3, 4)),
    reduce("reducel2_opset18_empty_axes_noop1", "ReduceL2", 18, data(f32, 2, 3), [], noop_with_empty_axes=1),
    reduce("reducel2_opset23", "ReduceL2", 23, data(f32, 3, 4), [-1]),
    # ReduceLogSum / ReduceLogSumExp 18
    reduce("reducelogsum_opset18_axes_init", "ReduceLogSum", 18, positive(f32, 3, 4), [1]),
    reduce("reducelogsum_opset18_negative_axes_input", "ReduceLogSum", 18, positive(f64, 2, 3, 4), [-3, -1],
           "input", keepdims=0),
    reduce("reducelogsum_opset18_empty_axes_noop1", "ReduceLogSum", 18, positive(f32, 2, 3), [],
           noop_with_empty_axes=1),
    reduce("reducelogsum_opset23", "ReduceLogSum", 23, positive(f32, 2, 5), keepdims=0),
    reduce("reducelogsumexp_opset18_axes_init", "ReduceLogSumExp", 18, data(f32, 3, 4) * 10, [0], keepdims=0),
    reduce("reducelogsumexp_opset18_axes_input", "ReduceLogSumExp", 18, data(f64, 2, 3, 4), [-1], "input"),
    reduce("reducelogsumexp_opset18_noop1_no_axes", "ReduceLogSumExp", 18, data(f32, 2, 3),
           noop_with_empty_axes=1),
    reduce("reducelogsumexp_opset23", "ReduceLogSumExp", 23, data(f32, 4, 3), [1]),
    # ReduceSumSquare 18
    reduce("reducesumsquare_opset18_axes_init", "ReduceSumSquare", 18, data(f32, 2, 3, 4), [0, 1]),
    reduce("reducesumsquare_opset18_int64_axes_input", "ReduceSumSquare", 18, data(i64, 3, 4), [-1], "input",
           keepdims=0),
    reduce("reducesumsquare_opset18_empty_axes_noop0", "ReduceSumSquare", 18, data(f32, 2, 3), []),
    reduce("reducesumsquare_opset18_empty_axes_noop1", "ReduceSumSquare", 18, data(f32, 2, 3), [],
           noop_with_empty_axes=1),
    reduce("reducesumsquare_opset23", "ReduceSumSquare", 23, data(f32, 3, 4), [1], "input"),
    # ReduceSum (13) at the newest opset, with the empty-axes no-op
    reduce("reducesum_opset23_empty_axes_noop1", "ReduceSum", 23, data(f32, 2, 3), [], "input",
           noop_with_empty_axes=1),
]
