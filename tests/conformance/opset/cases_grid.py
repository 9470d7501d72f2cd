"""GridSample 20 and 22 (N-D input, modes linear/nearest/cubic, every padding_mode with and without
align_corners), AffineGrid 20 (2-D and 3-D) and Col2Im 18 (N-D, strides, pads, dilations), each
against ONNX Runtime, also at opset 23 (the newest version that serves them)."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(2022)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
N = helper.make_node


def grid(*s):
    """Positions mostly in [-1, 1] and some past the edges (up to 2.5 out), so padding matters."""
    g = rng.uniform(-1.6, 1.6, s).astype(np.float32)
    flat = g.reshape(-1)
    flat[:4] = [-2.5, 2.5, 3.7, -1.0][:min(4, flat.size)]
    return g


def gs(name, opset, x, g, out=np.float32, **attrs):
    return case(name, opset, [N("GridSample", ["x", "grid"], ["y"], **attrs)], [("x", x), ("grid", g)],
                [("y", out)])


GRID = []
for mode in ("linear", "nearest", "cubic"):
    for pad in ("zeros", "border", "reflection"):
        for align in (0, 1):
            GRID.append(gs(f"gridsample_opset20_4d_{mode}_{pad}_align{align}", 20, f32(2, 3, 4, 5),
                           grid(2, 3, 4, 2), mode=mode, padding_mode=pad, align_corners=align))
            if mode != "cubic":  # ONNX Runtime's cubic is 4-D only
                GRID.append(gs(f"gridsample_opset20_5d_{mode}_{pad}_align{align}", 20, f32(1, 2, 3, 4, 5),
                               grid(1, 2, 3, 4, 3), mode=mode, padding_mode=pad, align_corners=align))

# nearest rounds halfway positions to the even index: with W=4, align_corners=0, x = 2*g + 1.5
ties = np.array([-0.5, 0.0, 0.5, -0.75, 0.25, 0.75], np.float32)
tie_grid = np.stack(np.meshgrid(ties, ties), -1)[None].astype(np.float32)
GRID += [
    gs("gridsample_opset20_defaults", 20, f32(1, 2, 3, 4), grid(1, 5, 2, 2)),
    gs("gridsample_opset20_nearest_ties_even", 20, f32(1, 1, 4, 4), tie_grid, mode="nearest"),
    gs("gridsample_opset20_double", 20, rng.standard_normal((1, 2, 3, 3)), grid(1, 2, 4, 2).astype(np.float64),
       np.float64, mode="cubic", padding_mode="border"),
    gs("gridsample_opset20_grid_far_outside_reflection", 20, f32(1, 1, 3, 4),
       rng.uniform(-9, 9, (1, 4, 4, 2)).astype(np.float32), mode="linear", padding_mode="reflection"),
    gs("gridsample_opset20_single_pixel", 20, f32(1, 2, 1, 1), grid(1, 2, 3, 2), mode="cubic",
       padding_mode="reflection", align_corners=1),
    gs("gridsample_opset22_linear_border", 22, f32(1, 3, 5, 4), grid(1, 4, 4, 2), mode="linear",
       padding_mode="border"),
    gs("gridsample_opset22_5d_nearest_reflection", 22, f32(2, 1, 3, 3, 4), grid(2, 2, 2, 3, 3), mode="nearest",
       padding_mode="reflection", align_corners=1),
    gs("gridsample_opset23_cubic_zeros", 23, f32(1, 2, 4, 4), grid(1, 3, 3, 2), mode="cubic"),
    gs("gridsample_opset23_5d_linear_align1", 23, f32(1, 2, 2, 3, 4), grid(1, 3, 2, 2, 3), mode="linear",
       align_corners=1),
]


def ag(name, opset, theta, size, **attrs):
    return case(name, opset, [N("AffineGrid", ["theta", "size"], ["grid"], **attrs)],
                [("theta", theta), ("size", np.array(size, np.int64))], [("grid", theta.dtype)])


AFFINE = [
    ag("affinegrid_opset20_2d_defaults", 20, f32(2, 2, 3), [2, 3, 4, 5]),
    ag("affinegrid_opset20_2d_align1", 20, f32(1, 2, 3), [1, 1, 3, 6], align_corners=1),
    ag("affinegrid_opset20_3d", 20, f32(2, 3, 4), [2, 1, 3, 4, 5]),
    ag("affinegrid_opset20_3d_align1", 20, f32(1, 3, 4), [1, 2, 2, 3, 4], align_corners=1),
    ag("affinegrid_opset20_2d_unit_dims", 20, f32(1, 2, 3), [1, 1, 1, 4]),
    ag("affinegrid_opset20_2d_unit_dims_align1", 20, f32(1, 2, 3), [1, 1, 4, 1], align_corners=1),
    ag("affinegrid_opset20_double", 20, rng.standard_normal((1, 2, 3)), [1, 3, 3, 2]),
    ag("affinegrid_opset23_3d", 23, f32(1, 3, 4), [1, 1, 2, 3, 2], align_corners=1),
]
# the spatial transformer pattern: AffineGrid feeding GridSample
AFFINE.append(case("affinegrid_opset20_into_gridsample", 20,
                   [N("AffineGrid", ["theta", "size"], ["g"]),
                    N("GridSample", ["x", "g"], ["y"], mode="linear", padding_mode="border")],
                   [("x", f32(2, 3, 5, 6)), ("theta", f32(2, 2, 3)),
                    ("size", np.array([2, 3, 4, 4], np.int64))], [("y", np.float32)]))


def c2i(name, opset, cb, image, block, out=np.float32, **attrs):
    """Col2Im of a random [N, C*prod(block), L] input, cb = (N, C*prod(block)); L follows from the
    image, block and attributes as the convolution formula gives it."""
    r = len(image)
    st, dil, pads = attrs.get("strides", [1] * r), attrs.get("dilations", [1] * r), attrs.get("pads", [0] * 2 * r)
    blocks = [(image[i] + pads[i] + pads[r + i] - dil[i] * (block[i] - 1) - 1) // st[i] + 1 for i in range(r)]
    x = rng.standard_normal((*cb, int(np.prod(blocks)))).astype(out)
    return case(name, opset, [N("Col2Im", ["x", "i", "b"], ["y"], **attrs)],
                [("x", x), ("i", np.array(image, np.int64)), ("b", np.array(block, np.int64))], [("y", out)])


COL2IM = [
    c2i("col2im_opset18_defaults", 18, (1, 5), [5, 5], [1, 5]),
    c2i("col2im_opset18_overlapping", 18, (2, 2 * 4), [4, 4], [2, 2]),
    c2i("col2im_opset18_strides", 18, (1, 3 * 4), [5, 5], [2, 2], strides=[2, 3]),
    c2i("col2im_opset18_pads", 18, (1, 6), [4, 3], [2, 3], pads=[1, 1, 2, 1]),
    c2i("col2im_opset18_dilations", 18, (1, 2 * 4), [5, 4], [2, 2], dilations=[2, 3]),
    c2i("col2im_opset18_all", 18, (2, 3 * 6), [6, 5], [3, 2], strides=[2, 2], pads=[1, 0, 0, 1],
        dilations=[1, 2]),
    c2i("col2im_opset18_3d", 18, (1, 2 * 8), [3, 4, 3], [2, 2, 2], strides=[1, 2, 1]),
    c2i("col2im_opset23", 23, (1, 2 * 3), [3, 4], [1, 3], pads=[0, 1, 0, 1], strides=[1, 2]),
]

CASES = GRID + AFFINE + COL2IM
