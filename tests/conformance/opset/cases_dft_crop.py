"""DFT 20 (dft_length and axis are inputs, axis defaults to -2; inverse, onesided: RFFT and IRFFT;
real [.., 1] and complex [.., 2] input) and CenterCropPad 18 (crop or pad each listed axis
symmetrically: a crop starts at floor((in - out) / 2), a pad puts the odd pixel on the right),
each at its version and at opset 23, where it is still the latest."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(2020)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
f64 = lambda *s: rng.standard_normal(s)  # noqa: E731
# Real float signals: ONNX Runtime's float rounding leaves up to 4e-6 in bins that are exactly
# zero (the imaginary part of bin 0), celer's double transform about 1e-15; scaled down, the
# difference stays under the conformance runner's absolute tolerance of 1e-6.
real32 = lambda *s: f32(*s) / 8  # noqa: E731
N = helper.make_node


def dft(name, opset, x, dft_length=None, axis=None, runtime=False, len_type=np.int64, **attrs):
    """DFT with dft_length and axis (when given) as initializers, or as graph inputs when runtime."""
    consts, ins = [], ["x", "", ""]
    if dft_length is not None:
        consts.append(("n", np.array(dft_length, len_type)))
        ins[1] = "n"
    if axis is not None:
        consts.append(("a", np.array(axis, np.int64)))
        ins[2] = "a"
    while ins[-1] == "":
        ins.pop()
    return case(name, opset, [N("DFT", ins, ["y"], **attrs)], [("x", x)] + (consts if runtime else []),
                [("y", x.dtype)], initializers=[] if runtime else consts)


def crop(name, opset, x, shape, runtime=False, **attrs):
    s = ("s", np.array(shape, np.int64))
    return case(name, opset, [N("CenterCropPad", ["x", "s"], ["y"], **attrs)], [("x", x)] + ([s] if runtime else []),
                [("y", x.dtype)], initializers=[] if runtime else [s])


CASES = [
    # DFT 20: axis defaults to -2 (the last signal axis), not 1 as DFT 17's attribute did
    dft("dft_opset20_real_default_axis", 20, real32(2, 3, 8, 1)),
    dft("dft_opset20_complex_default_axis", 20, f32(2, 3, 6, 2)),
    dft("dft_opset20_axis1", 20, real32(2, 5, 4, 1), axis=1),
    dft("dft_opset20_axis_negative3", 20, f32(2, 5, 4, 2), axis=-3),
    dft("dft_opset20_axis0", 20, f32(6, 3, 2), axis=0),
    dft("dft_opset20_axis_runtime", 20, f32(3, 7, 2), axis=1, runtime=True),
    dft("dft_opset20_length_pad", 20, real32(2, 5, 1), dft_length=8, axis=1),
    dft("dft_opset20_length_truncate", 20, f32(2, 9, 2), dft_length=6),
    dft("dft_opset20_length_int32_runtime", 20, real32(2, 9, 1), dft_length=12, runtime=True, len_type=np.int32),
    dft("dft_opset20_length_prime", 20, f32(3, 13, 2), dft_length=13, axis=-2),
    dft("dft_opset20_inverse", 20, f32(2, 7, 2), inverse=1),
    dft("dft_opset20_inverse_real", 20, real32(2, 8, 1), inverse=1),
    dft("dft_opset20_inverse_axis1_length", 20, f32(2, 6, 3, 2), dft_length=5, axis=1, inverse=1),
    dft("dft_opset20_onesided", 20, real32(2, 10, 1), onesided=1),
    dft("dft_opset20_onesided_odd_length", 20, real32(3, 4, 9, 1), onesided=1, axis=-2),
    dft("dft_opset20_onesided_axis1_length", 20, real32(2, 6, 3, 1), dft_length=7, axis=1, onesided=1),
    dft("dft_opset20_double", 20, f64(2, 12, 2), axis=1),
    dft("dft_opset20_double_onesided", 20, f64(2, 11, 1), onesided=1),
    # IRFFT: onesided=1, inverse=1: complex one-sided input, real output of dft_length
    # (default 2 * (bins - 1))
    dft("dft_opset20_irfft_default_length", 20, f32(2, 5, 2), onesided=1, inverse=1),
    dft("dft_opset20_irfft_odd_length", 20, f32(2, 5, 2), dft_length=9, onesided=1, inverse=1),
    # (no case pads the bins: given fewer than dft_length / 2 + 1 bins, ONNX Runtime 1.31.1 treats
    # the last one as the Nyquist bin, where numpy's irfft and onnx's reference, which celer
    # follows, take the missing bins as zeros)
    dft("dft_opset20_irfft_length_truncate", 20, f32(2, 5, 2), dft_length=6, onesided=1, inverse=1),
    dft("dft_opset20_irfft_axis1", 20, f32(2, 4, 3, 2), axis=1, onesided=1, inverse=1),
    dft("dft_opset23_complex_axis1", 23, f32(2, 6, 3, 2), axis=1),
    dft("dft_opset23_irfft", 23, f32(3, 6, 2), onesided=1, inverse=1),
    dft("dft_opset23_onesided_length", 23, real32(2, 16, 1), dft_length=12, onesided=1),
    # DFT 17's axis attribute (default 1), for the IRFFT now supported there too
    dft("dft_opset18_irfft_axis_attribute", 18, f32(2, 5, 2), onesided=1, inverse=1),
    dft("dft_opset19_axis_attribute_default", 19, real32(2, 6, 3, 1)),

    # CenterCropPad 18
    crop("centercroppad_opset18_crop", 18, f32(20, 10, 3), [10, 7, 3]),
    crop("centercroppad_opset18_pad", 18, f32(10, 7, 3), [20, 10, 3]),
    crop("centercroppad_opset18_crop_and_pad", 18, f32(20, 8, 3), [10, 10, 3]),
    crop("centercroppad_opset18_odd_crop", 18, f32(7, 6), [4, 3]),
    crop("centercroppad_opset18_odd_pad", 18, f32(4, 3), [7, 6]),
    crop("centercroppad_opset18_axes_hwc", 18, f32(20, 8, 3), [10, 9], axes=[0, 1]),
    crop("centercroppad_opset18_axes_chw_negative", 18, f32(3, 20, 8), [10, 9], axes=[-2, -1]),
    crop("centercroppad_opset18_axes_reordered", 18, f32(3, 20, 8), [9, 10], axes=[2, 1]),
    crop("centercroppad_opset18_runtime_shape", 18, f32(2, 9, 5), [2, 4, 8], runtime=True),
    crop("centercroppad_opset18_to_zero", 18, f32(3, 4), [0, 4]),
    crop("centercroppad_opset18_from_zero", 18, np.zeros((0, 3), np.float32), [2, 3]),
    crop("centercroppad_opset18_int64", 18, rng.integers(-9, 9, (5, 6)).astype(np.int64), [2, 9]),
    crop("centercroppad_opset18_uint8", 18, rng.integers(0, 255, (4, 5, 6)).astype(np.uint8), [3, 8], axes=[1, 2]),
    crop("centercroppad_opset18_bool", 18, rng.integers(0, 2, (5, 5)).astype(np.bool_), [2, 8]),
    crop("centercroppad_opset23_crop_pad", 23, f32(1, 3, 11, 6), [8, 9], axes=[2, 3]),
    crop("centercroppad_opset23_identity", 23, f32(2, 3), [2, 3]),
]
