"""Split 18 (num_outputs: equal parts, the last smaller), Pad 18 (optional axes input), Pad 19
(mode wrap), Pad 21 and 23 (new element types only), ScatterElements 18 and ScatterND 18
(reductions max and min): each at the version that introduced the change and at opset 23, where
that version is still the latest (Split 18, ScatterElements 18, ScatterND 18) or the newest (Pad 23)."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(1818)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
N = helper.make_node


def split(name, opset, x, n_out, split_sizes=None, runtime_split=False, **attrs):
    outs = [f"y{k}" for k in range(n_out)]
    ins, inits, inputs = ["x"], [], [("x", x)]
    if split_sizes is not None:
        ins.append("s")
        (inputs if runtime_split else inits).append(("s", i64(*split_sizes)))
    return case(name, opset, [N("Split", ins, outs, **attrs)], inputs, [(o, x.dtype) for o in outs],
                initializers=inits)


def pad(name, opset, x, pads, axes=None, value=None, runtime=False, **attrs):
    """Pad with pads (and axes, constant_value when given) as initializers, or as graph inputs
    when runtime."""
    consts = [("p", i64(*pads))]
    ins = ["x", "p", "", ""]
    if value is not None:
        consts.append(("v", np.array(value, x.dtype)))
        ins[2] = "v"
    if axes is not None:
        consts.append(("a", i64(*axes)))
        ins[3] = "a"
    while ins[-1] == "":
        ins.pop()
    inputs = [("x", x)] + (consts if runtime else [])
    return case(name, opset, [N("Pad", ins, ["y"], **attrs)], inputs, [("y", x.dtype)],
                initializers=[] if runtime else consts)


def scatter(name, opset, op, x, ind, upd, **attrs):
    return case(name, opset, [N(op, ["x", "i", "u"], ["y"], **attrs)], [("x", x), ("u", upd)], [("y", x.dtype)],
                initializers=[("i", ind)])


spec_data = np.array([[1.0, 1.2], [2.3, 3.4], [4.5, 5.7]], np.float32)
dup_rows = np.array([[1, 0, 3, 1], [2, 2, 0, 2], [0, 0, 0, 0]], np.int64)  # duplicates in every row

CASES = [
    # Split 18: num_outputs
    split("split_opset18_num_outputs_even", 18, f32(6, 4), 3, num_outputs=3),
    split("split_opset18_num_outputs_uneven_last_smaller", 18, f32(2, 7), 3, axis=-1, num_outputs=3),
    split("split_opset18_num_outputs_uneven_axis1", 18, f32(2, 10, 3), 4, axis=1, num_outputs=4),
    split("split_opset18_num_outputs_one", 18, f32(3, 5), 1, axis=1, num_outputs=1),
    split("split_opset18_num_outputs_int64", 18, rng.integers(-9, 9, (9,)).astype(np.int64), 2, num_outputs=2),
    split("split_opset18_split_input", 18, f32(3, 7), 3, [2, 0, 5], axis=-1),
    split("split_opset18_split_input_runtime", 18, f32(5, 2), 2, [4, 1], runtime_split=True),
    split("split_opset23_num_outputs_uneven", 23, f32(11, 2), 3, num_outputs=3),
    split("split_opset23_split_input_negative_axis", 23, f32(2, 3, 6), 2, [1, 2], axis=-2),
    # Pad 18: axes
    pad("pad_opset18_axes_subset_constant", 18, f32(2, 3, 4), [1, 2, 0, 1], axes=[0, 2], value=1.5),
    pad("pad_opset18_axes_negative_reflect", 18, f32(2, 3, 4), [2, 3], axes=[-1], mode="reflect"),
    pad("pad_opset18_axes_edge", 18, f32(3, 4), [1, 0, 2, 2], axes=[1, 0], mode="edge"),
    pad("pad_opset18_axes_negative_pads", 18, f32(4, 5), [-1, 2, 1, -2], axes=[-2, 1]),
    pad("pad_opset18_axes_runtime", 18, f32(2, 3, 4), [1, 1], axes=[1], value=-2.0, runtime=True),
    pad("pad_opset18_no_axes_constant", 18, f32(2, 3), [0, 1, 1, 0]),
    pad("pad_opset18_axes_all_permuted", 18, f32(2, 3), [1, 0, 0, 2], axes=[1, 0], mode="edge"),
    # Pad 19: wrap
    pad("pad_opset19_wrap_spec_example", 19, spec_data, [2, 1, 1, 1], mode="wrap"),
    pad("pad_opset19_wrap_axes", 19, f32(2, 3, 4), [3, 1], axes=[-1], mode="wrap"),
    pad("pad_opset19_wrap_pads_larger_than_dim", 19, f32(2, 3), [5, 4, 3, 7], mode="wrap"),
    pad("pad_opset19_wrap_negative_pads", 19, f32(4, 5), [-1, 2, 2, -3], mode="wrap"),
    pad("pad_opset19_wrap_int64_runtime", 19, rng.integers(-9, 9, (3, 4)).astype(np.int64), [1, 2, 2, 1],
        runtime=True, mode="wrap"),
    pad("pad_opset19_reflect", 19, f32(3, 4), [2, 1, 0, 3], mode="reflect"),
    # negative pads remove elements first: the modes read only what is left
    pad("pad_opset19_reflect_negative_pads", 19, f32(3, 6), [2, -3], axes=[1], mode="reflect"),
    pad("pad_opset19_edge_negative_pads", 19, f32(4, 3), [-2, 3, 1, -1], mode="edge"),
    # Pad 21 / 23: types only
    pad("pad_opset21_constant_int32", 21, rng.integers(-9, 9, (2, 3)).astype(np.int32), [1, 1, 1, 1],
        value=7),
    pad("pad_opset21_wrap_axes", 21, f32(3, 4), [1, 2], axes=[0], mode="wrap"),
    pad("pad_opset23_edge_float16", 23, f32(3, 4).astype(np.float16), [1, 2, 1, 0], mode="edge"),
    pad("pad_opset23_wrap_axes_negative", 23, f32(2, 3, 4), [1, 2, 2, 1], axes=[-1, 0], mode="wrap"),
    pad("pad_opset23_constant_uint8_axes", 23, rng.integers(0, 200, (3, 4)).astype(np.uint8), [2, 1],
        axes=[1], value=255),
    # ScatterElements 18: max, min
    scatter("scatterelements_opset18_max_duplicates", 18, "ScatterElements", f32(3, 4), dup_rows, f32(3, 4),
            axis=1, reduction="max"),
    scatter("scatterelements_opset18_min_duplicates", 18, "ScatterElements", f32(3, 4), dup_rows, f32(3, 4),
            axis=1, reduction="min"),
    scatter("scatterelements_opset18_max_negative_axis_indices", 18, "ScatterElements", f32(4, 3),
            np.array([[-1, 0, -4], [3, -4, 0]], np.int64), f32(2, 3), axis=-2, reduction="max"),
    scatter("scatterelements_opset18_min_int32", 18, "ScatterElements",
            rng.integers(-50, 50, (2, 5)).astype(np.int32), np.array([[4, 4, 1], [0, 0, 0]], np.int64),
            rng.integers(-50, 50, (2, 3)).astype(np.int32), axis=1, reduction="min"),
    scatter("scatterelements_opset18_add", 18, "ScatterElements", f32(3, 4), dup_rows, f32(3, 4), axis=1,
            reduction="add"),
    scatter("scatterelements_opset18_none", 18, "ScatterElements", f32(3, 4), np.array([[2, 0]], np.int64),
            f32(1, 2), axis=0),
    scatter("scatterelements_opset23_max_int64", 23, "ScatterElements",
            rng.integers(-50, 50, (6,)).astype(np.int64), np.array([5, 1, 5, 5, 0], np.int64),
            rng.integers(-50, 50, (5,)).astype(np.int64), reduction="max"),
    scatter("scatterelements_opset23_min_duplicates", 23, "ScatterElements", f32(3, 4),
            np.array([[2, 0, 2, 1], [2, 0, 2, 1], [-1, 1, 0, 1]], np.int64), f32(3, 4), axis=0, reduction="min"),
    # ScatterND 18: max, min
    scatter("scatternd_opset18_max_duplicates", 18, "ScatterND", f32(8), np.array([[4], [3], [4], [7], [4]],
            np.int64), f32(5), reduction="max"),
    scatter("scatternd_opset18_min_duplicates", 18, "ScatterND", f32(8), np.array([[4], [3], [4], [7], [4]],
            np.int64), f32(5), reduction="min"),
    scatter("scatternd_opset18_max_slices", 18, "ScatterND", f32(4, 3, 2), np.array([[0, 1], [2, 2], [0, 1]],
            np.int64), f32(3, 2), reduction="max"),
    scatter("scatternd_opset18_min_rows_negative_indices", 18, "ScatterND", f32(4, 3), np.array([[-1], [3], [0]],
            np.int64), f32(3, 3), reduction="min"),
    scatter("scatternd_opset18_mul", 18, "ScatterND", f32(5), np.array([[1], [1]], np.int64), f32(2),
            reduction="mul"),
    scatter("scatternd_opset23_max_int32", 23, "ScatterND", rng.integers(-50, 50, (3, 3)).astype(np.int32),
            np.array([[1, 1], [1, 1], [0, 2]], np.int64), rng.integers(-50, 50, (3,)).astype(np.int32),
            reduction="max"),
    scatter("scatternd_opset23_min", 23, "ScatterND", f32(2, 2, 3), np.array([[[1]], [[1]]], np.int64),
            f32(2, 1, 2, 3), reduction="min"),
]
