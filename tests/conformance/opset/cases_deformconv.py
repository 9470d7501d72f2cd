"""DeformConv 19 and 22 (22 only adds bfloat16, which celer does not serve): 2-D deformable
convolution, X sampled bilinearly at each kernel tap's position plus its offset (zero outside the
image), times the mask when given. The offsets here are fractional, and some push samples
partly or wholly outside the image."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(19)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
N = helper.make_node


def out_hw(h, w, k, strides=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1)):
    return tuple((n + pads[i] + pads[i + 2] - ((k[i] - 1) * dil[i] + 1)) // strides[i] + 1
                 for i, n in enumerate((h, w)))


def deform(name, opset, n, c, h, w, oc, k, *, group=1, offset_group=1, strides=None, pads=None, dil=None,
           bias=False, mask=False, spread=1.5, dtype=np.float32, attrs_kernel=False):
    """A DeformConv case: offsets are normal with standard deviation `spread` (pixels)."""
    oh, ow = out_hw(h, w, k, strides or (1, 1), pads or (0, 0, 0, 0), dil or (1, 1))
    attrs = {}
    if group != 1:
        attrs["group"] = group
    if offset_group != 1:
        attrs["offset_group"] = offset_group
    for key, v in (("strides", strides), ("pads", pads), ("dilations", dil)):
        if v is not None:
            attrs[key] = list(v)
    if attrs_kernel:
        attrs["kernel_shape"] = list(k)
    names = ["X", "W", "offset"]
    inputs = [("X", f32(n, c, h, w).astype(dtype)), ("W", f32(oc, c // group, *k).astype(dtype)),
              ("offset", (f32(n, offset_group * k[0] * k[1] * 2, oh, ow) * spread).astype(dtype))]
    if bias or mask:
        names.append("B" if bias else "")
        if bias:
            inputs.append(("B", f32(oc).astype(dtype)))
    if mask:
        names.append("mask")
        inputs.append(("mask", rng.uniform(0, 1, (n, offset_group * k[0] * k[1], oh, ow)).astype(dtype)))
    return case(name, opset, [N("DeformConv", names, ["Y"], **attrs)], inputs, [("Y", dtype)])


CASES = [
    deform("deformconv_opset19_basic", 19, 1, 2, 5, 5, 3, (3, 3)),
    deform("deformconv_opset19_zero_offsets", 19, 1, 3, 6, 5, 2, (3, 3), spread=0.0),
    deform("deformconv_opset19_bias", 19, 2, 3, 6, 7, 4, (3, 3), bias=True),
    deform("deformconv_opset19_mask", 19, 1, 3, 6, 6, 2, (3, 3), mask=True),
    deform("deformconv_opset19_bias_mask_pads", 19, 2, 4, 7, 6, 5, (3, 3), bias=True, mask=True,
           pads=(1, 1, 1, 1)),
    deform("deformconv_opset19_group2", 19, 1, 4, 6, 6, 6, (3, 3), group=2, bias=True),
    deform("deformconv_opset19_offset_group2", 19, 1, 4, 6, 5, 3, (3, 3), offset_group=2, mask=True),
    deform("deformconv_opset19_group2_offset_group4", 19, 2, 8, 5, 6, 4, (2, 3), group=2, offset_group=4,
           bias=True, mask=True),
    deform("deformconv_opset19_strides_pads_dilations", 19, 2, 3, 9, 8, 4, (3, 2), strides=(2, 1),
           pads=(1, 2, 0, 1), dil=(2, 1), bias=True),
    deform("deformconv_opset19_outside", 19, 1, 2, 5, 6, 3, (3, 3), pads=(1, 1, 1, 1), spread=6.0, mask=True),
    deform("deformconv_opset19_kernel_1x1", 19, 1, 3, 4, 5, 2, (1, 1), spread=2.0),
    deform("deformconv_opset19_double", 19, 1, 3, 5, 5, 2, (3, 3), bias=True, mask=True, dtype=np.float64),
    deform("deformconv_opset22", 22, 1, 4, 6, 6, 4, (3, 3), group=2, offset_group=2, attrs_kernel=True,
           strides=(2, 2), pads=(1, 1, 1, 1), bias=True, mask=True),
]
