"""QuantizeLinear/DequantizeLinear 19, 21 and 23 (per tensor, per axis, blocked with block_size,
int16/uint16 from 21, output_dtype) and Resize 18/19 (axes, keep_aspect_ratio_policy,
half_pixel_symmetric), each against ONNX Runtime, some also run at opset 23 (the newest version
that serves it)."""
import numpy as np
from onnx import TensorProto, helper

from opset_case import case

rng = np.random.default_rng(1921)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
N = helper.make_node


def ramp(*s):
    """x with ties (k + 0.5 after scaling by 0.5), zero and values far past every type's range."""
    base = np.array([0, 0.25, 0.75, 1.25, -1.25, 3.75, -3.75, 1e6, -1e6, 70000, -70000, 127.5], np.float32)
    n = int(np.prod(s))
    return np.concatenate([base, f32(max(n - len(base), 0)) * 40])[:n].reshape(s).astype(np.float32)


def q(name, opset, x, scale, zp=None, out=np.uint8, **attrs):
    ins = ["x", "s"] + (["z"] if zp is not None else [])
    inits = [("s", scale)] + ([("z", zp)] if zp is not None else [])
    return case(name, opset, [N("QuantizeLinear", ins, ["y"], **attrs)], [("x", x)], [("y", out)], inits)


def dq(name, opset, x, scale, zp=None, out=np.float32, **attrs):
    ins = ["x", "s"] + (["z"] if zp is not None else [])
    inits = [("s", scale)] + ([("z", zp)] if zp is not None else [])
    return case(name, opset, [N("DequantizeLinear", ins, ["y"], **attrs)], [("x", x)], [("y", out)], inits)


def ints(t, lo, hi, *s):
    return rng.integers(lo, hi, s).astype(t)


def pos(*s):
    return (np.abs(f32(*s)) + 0.25).astype(np.float32)


QUANT = [
    # 19: saturate only concerns float8; integer outputs saturate regardless
    q("quantizelinear_opset19_int8", 19, ramp(3, 4), np.float32(0.5), np.int8(3), np.int8, saturate=1),
    q("quantizelinear_opset19_uint8_no_zero_point", 19, ramp(12), np.float32(0.5)),
    q("quantizelinear_opset19_per_axis_negative_axis", 19, ramp(2, 3, 4), pos(3), ints(np.uint8, 0, 255, 3),
      np.uint8, axis=-2),
    q("quantizelinear_opset19_float16", 19, np.clip(ramp(2, 6), -6e4, 6e4).astype(np.float16), np.float16(0.5), np.int8(-2), np.int8),
    dq("dequantizelinear_opset19_per_axis_int8", 19, ints(np.int8, -128, 127, 2, 3, 4), pos(4),
       ints(np.int8, -5, 5, 4), axis=-1),
    dq("dequantizelinear_opset19_int32", 19, ints(np.int32, -100000, 100000, 7), np.float32(0.01)),
    dq("dequantizelinear_opset19_float16_scale", 19, ints(np.uint8, 0, 255, 2, 5), np.float16(0.125),
       np.uint8(128), np.float16),
    # 21: 16-bit types, blocked quantization, output_dtype
    q("quantizelinear_opset21_int16", 21, ramp(4, 5) * 300, np.float32(0.5), np.int16(-7), np.int16),
    q("quantizelinear_opset21_uint16_per_axis", 21, ramp(3, 5) * 300, pos(3), ints(np.uint16, 0, 65535, 3),
      np.uint16, axis=0),
    q("quantizelinear_opset21_blocked_int8", 21, ramp(3, 8), pos(3, 4), ints(np.int8, -10, 10, 3, 4), np.int8,
      axis=1, block_size=2),
    q("quantizelinear_opset21_blocked_ragged_axis0", 21, ramp(5, 3), pos(2, 3), ints(np.uint8, 0, 255, 2, 3),
      np.uint8, axis=0, block_size=3),
    q("quantizelinear_opset21_blocked_3d_negative_axis", 21, ramp(2, 6, 3), pos(2, 2, 3), None, np.uint8,
      axis=-2, block_size=4),
    q("quantizelinear_opset21_output_dtype_int8", 21, ramp(10), np.float32(0.5), None, np.int8,
      output_dtype=TensorProto.INT8),
    q("quantizelinear_opset21_output_dtype_uint16_with_zero_point", 21, ramp(10) * 500, np.float32(0.5),
      np.uint16(1000), np.uint16, output_dtype=TensorProto.UINT16),
    dq("dequantizelinear_opset21_int16", 21, ints(np.int16, -32768, 32767, 3, 4), np.float32(0.001),
       np.int16(-12)),
    dq("dequantizelinear_opset21_uint16_per_axis", 21, ints(np.uint16, 0, 65535, 2, 3), pos(3),
       ints(np.uint16, 0, 65535, 3), axis=1),
    dq("dequantizelinear_opset21_blocked_int8", 21, ints(np.int8, -128, 127, 4, 6), pos(2, 6),
       ints(np.int8, -3, 3, 2, 6), axis=0, block_size=2),
    dq("dequantizelinear_opset21_blocked_ragged_last_axis", 21, ints(np.uint8, 0, 255, 2, 7), pos(2, 3),
       ints(np.uint8, 100, 150, 2, 3), axis=-1, block_size=3),
    # 23: output_dtype on DequantizeLinear, blocked at the newest opset
    q("quantizelinear_opset23_blocked_int16", 23, ramp(4, 6) * 100, pos(4, 2), ints(np.int16, -9, 9, 4, 2),
      np.int16, axis=1, block_size=3),
    q("quantizelinear_opset23_per_tensor_uint8", 23, ramp(2, 3, 2), np.float32(0.5), np.uint8(128)),
    q("quantizelinear_opset23_precision_float", 23, ramp(2, 6), np.float32(0.25), np.int8(0), np.int8,
      precision=TensorProto.FLOAT),
    dq("dequantizelinear_opset23_blocked_uint16", 23, ints(np.uint16, 0, 65535, 3, 4), pos(3, 2),
       ints(np.uint16, 0, 65535, 3, 2), axis=1, block_size=2),
    dq("dequantizelinear_opset23_output_dtype_float", 23, ints(np.int8, -128, 127, 2, 4), pos(4),
       ints(np.int8, -4, 4, 4), axis=-1, output_dtype=TensorProto.FLOAT),
    # QDQ pair as exported by quantization tools, at opset 21
    case("qdq_opset21_blocked_pair", 21,
         [N("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, block_size=4),
          N("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, block_size=4)],
         [("x", f32(2, 8) * 3)], [("y", np.float32)],
         [("s", pos(2, 2) * 0.05), ("z", ints(np.int8, -3, 3, 2, 2))]),
]


def rs(name, opset, x, scales=None, sizes=None, roi=None, **attrs):
    ins = ["x", "roi" if roi is not None else "", "scales" if scales is not None else "",
           "sizes" if sizes is not None else ""]
    while ins[-1] == "":
        ins.pop()
    inits = [(n, a) for n, a in (("roi", roi), ("scales", scales), ("sizes", sizes)) if a is not None]
    return case(name, opset, [N("Resize", ins, ["y"], **attrs)], [("x", x)], [("y", x.dtype)], inits)


F = lambda *v: np.array(v, np.float32)  # noqa: E731
I = lambda *v: np.array(v, np.int64)  # noqa: E731

RESIZE = [
    # 18: axes
    rs("resize_opset18_axes_scales_linear", 18, f32(1, 2, 4, 5), scales=F(2.0, 0.6), mode="linear", axes=[2, 3]),
    rs("resize_opset18_axes_negative_sizes_nearest", 18, f32(2, 3, 4), sizes=I(7), axes=[-1]),
    rs("resize_opset18_axes_reversed_cubic", 18, f32(1, 1, 5, 6), sizes=I(4, 9), mode="cubic", axes=[3, 2]),
    rs("resize_opset18_axes_tf_crop_and_resize", 18, f32(1, 2, 6, 6), sizes=I(4, 3), roi=F(0.2, 0.1, 0.8, 0.7),
       mode="linear", coordinate_transformation_mode="tf_crop_and_resize", axes=[2, 3], extrapolation_value=-1.0),
    rs("resize_opset18_axes_uint8_nearest", 18, ints(np.uint8, 0, 255, 3, 4), scales=F(2.5), axes=[0],
       nearest_mode="round_prefer_ceil"),
    # 18: keep_aspect_ratio_policy
    rs("resize_opset18_stretch", 18, f32(1, 1, 4, 6), sizes=I(1, 1, 3, 8), mode="linear",
       keep_aspect_ratio_policy="stretch"),
    rs("resize_opset18_not_larger", 18, f32(1, 2, 4, 6), sizes=I(5, 5), mode="linear", axes=[2, 3],
       keep_aspect_ratio_policy="not_larger"),
    rs("resize_opset18_not_smaller", 18, f32(1, 2, 4, 6), sizes=I(5, 5), mode="linear", axes=[2, 3],
       keep_aspect_ratio_policy="not_smaller"),
    rs("resize_opset18_not_larger_all_axes_nearest", 18, f32(1, 1, 3, 7), sizes=I(1, 1, 2, 2),
       keep_aspect_ratio_policy="not_larger"),
    # positive axes: ONNX Runtime 1.31.1 leaves the input unresized with axes=[-2, -1] and a policy
    # (its output [1,1,4,5] against [1,1,10,13] from ONNX's shape inference and celer)
    rs("resize_opset18_not_smaller_cubic_round_half_up", 18, f32(1, 1, 4, 5), sizes=I(10, 10), mode="cubic",
       axes=[2, 3], keep_aspect_ratio_policy="not_smaller"),
    # 19: half_pixel_symmetric
    rs("resize_opset19_half_pixel_symmetric_down", 19, f32(1, 1, 5, 7), scales=F(1, 1, 0.6, 0.55), mode="linear",
       coordinate_transformation_mode="half_pixel_symmetric"),
    rs("resize_opset19_half_pixel_symmetric_up", 19, f32(1, 1, 3, 4), scales=F(1, 1, 1.7, 2.3), mode="linear",
       coordinate_transformation_mode="half_pixel_symmetric"),
    rs("resize_opset19_half_pixel_symmetric_cubic", 19, f32(1, 2, 6, 5), scales=F(0.7, 1.45), mode="cubic",
       coordinate_transformation_mode="half_pixel_symmetric", axes=[2, 3]),
    rs("resize_opset19_half_pixel_symmetric_nearest", 19, f32(1, 1, 4, 6), scales=F(1, 1, 1.3, 0.7),
       coordinate_transformation_mode="half_pixel_symmetric"),
    rs("resize_opset19_half_pixel_symmetric_sizes", 19, f32(1, 1, 4, 5), sizes=I(1, 1, 7, 3), mode="linear",
       coordinate_transformation_mode="half_pixel_symmetric"),
    # the newest opset (Resize-19 serves it)
    rs("resize_opset23_axes_not_larger_half_pixel_symmetric", 23, f32(1, 3, 8, 6), sizes=I(5, 5), mode="linear",
       axes=[2, 3], keep_aspect_ratio_policy="not_larger", coordinate_transformation_mode="half_pixel_symmetric"),
    rs("resize_opset23_linear_scales", 23, f32(2, 3, 4, 4), scales=F(1, 1, 1.5, 0.5), mode="linear"),
    # 18: antialias, linear and cubic, downscaling (the filter widened by 1/scale) and upscaling
    rs("resize_opset18_antialias_linear_down", 18, f32(1, 2, 9, 11), scales=F(1, 1, 0.5, 0.35), mode="linear",
       antialias=1),
    rs("resize_opset18_antialias_linear_up_down", 18, f32(1, 1, 4, 12), scales=F(1, 1, 1.5, 0.25), mode="linear",
       antialias=1),
    rs("resize_opset18_antialias_linear_sizes_axes", 18, f32(2, 10, 3), sizes=I(4), mode="linear", antialias=1,
       axes=[1]),
    rs("resize_opset18_antialias_cubic_down", 18, f32(1, 1, 12, 10), scales=F(1, 1, 0.3, 0.6), mode="cubic",
       antialias=1),
    rs("resize_opset18_antialias_cubic_exclude_outside", 18, f32(1, 1, 12, 10), scales=F(1, 1, 0.3, 0.6),
       mode="cubic", antialias=1, exclude_outside=1, cubic_coeff_a=-0.5),
    rs("resize_opset18_antialias_cubic_up", 18, f32(1, 1, 3, 4), scales=F(1, 1, 2, 1.5), mode="cubic",
       antialias=1),
    rs("resize_opset18_antialias_linear_align_corners", 18, f32(1, 1, 9, 9), sizes=I(1, 1, 4, 3), mode="linear",
       antialias=1, coordinate_transformation_mode="align_corners"),
    rs("resize_opset18_antialias_linear_asymmetric", 18, f32(1, 1, 9, 9), scales=F(1, 1, 0.45, 0.5),
       mode="linear", antialias=1, coordinate_transformation_mode="asymmetric"),
    rs("resize_opset19_antialias_linear_half_pixel_symmetric", 19, f32(1, 1, 9, 7), scales=F(1, 1, 0.45, 0.6),
       mode="linear", antialias=1, coordinate_transformation_mode="half_pixel_symmetric"),
    rs("resize_opset18_antialias_linear_tf_crop_and_resize", 18, f32(1, 1, 9, 9), sizes=I(1, 1, 3, 4),
       roi=F(0, 0, 0.1, 0.2, 1, 1, 0.9, 1.1), mode="linear", antialias=1,
       coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=2.0),
    rs("resize_opset18_antialias_linear_pytorch_half_pixel_strong", 18, f32(1, 1, 40, 3), sizes=I(1, 1, 3, 1),
       mode="linear", antialias=1, coordinate_transformation_mode="pytorch_half_pixel", exclude_outside=1),
    rs("resize_opset23_antialias_linear_three_axes", 23, f32(1, 2, 6, 7, 8), scales=F(0.5, 0.7, 0.4), mode="linear",
       antialias=1, axes=[2, 3, 4]),
]

CASES = QUANT + RESIZE
