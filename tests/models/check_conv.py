#!/usr/bin/python3
"""Checks celer's fused convolutions beyond check_passes.py: models at 1 and 2 threads run
optimized and with CELER_OPTIMIZE=0 (outputs within 1e-4 relative of each other), and `celer bench`
must report no convolution on one of oneDNN's reference implementations ("reference_convs": 0,
which forcing the weight layout packed at load caused at 2 threads: a conv1d, the 1x1 convs of a
squeeze-excite block on 1x1 inputs).

  check_conv.py CELER_BIN

Needs /usr/bin/python3 with python3-onnx and numpy. Prints one line per model and thread count and
exits non-zero when any fails."""
import os
import sys
import tempfile

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_passes import RNG, Builder, check  # noqa: E402

TOL = 1e-4


def conv1d():
    """The audio model's shapes: conv1d 32 -> 64 channels over 250 steps, kernel 3, then a second
    one reading it blocked, and a MaxPool."""
    b = Builder()
    y = b.op("Relu", [b.conv("x", 32, 64, nd=1)])
    y = b.op("Relu", [b.conv(y, 64, 64, nd=1)])
    y = b.op("MaxPool", [y], kernel_shape=[2], strides=[2])
    y = b.op("AveragePool", [b.conv(y, 64, 64, nd=1)], kernel_shape=[3], strides=[2], pads=[1, 1])
    return b.model([1, 32, 250], [b.conv(y, 64, 64, nd=1)]), {"present": ["BlockedPool"],
                                                              "absent": ["MaxPool", "AveragePool", "LayoutToPlain"]}


def squeeze_excite():
    """EfficientNet's squeeze-excite: GlobalAveragePool, 1x1 conv on the 1x1 result, SiLU, 1x1
    conv, Sigmoid, Mul with the block's input."""
    b = Builder()
    x = b.op("Relu", [b.conv("x", 16, 96)])
    s = b.op("GlobalAveragePool", [x])
    s = b.conv(s, 96, 24, k=1, pads=[0, 0, 0, 0])
    s = b.op("Mul", [s, b.op("Sigmoid", [s])])
    s = b.op("Sigmoid", [b.conv(s, 24, 96, k=1, pads=[0, 0, 0, 0])])
    y = b.conv(b.op("Mul", [x, s]), 96, 32, k=1, pads=[0, 0, 0, 0])
    return b.model([1, 16, 14, 14], [y]), {"present": ["BlockedGlobalAveragePool", "BlockedScale"],
                                           "absent": ["GlobalAveragePool", "Mul", "LayoutToPlain"]}


def blocked_chain():
    """MobileNetV3's block at batch 2: HardSwish fused, a squeeze-excite with HardSigmoid and the
    Mul's operands swapped, per-sample scales; an activation that cannot be fused (its input has
    another reader) runs on blocked data; a GlobalAveragePool output read by a conv and a graph
    output, a blocked value read by a non-blocked op (LayoutToPlain)."""
    b = Builder()
    x = b.op("HardSwish", [b.bn(b.conv("x", 8, 32, strides=[2, 2]), 32)])
    x = b.op("Relu", [b.conv(x, 32, 32, group=32)])
    g = b.op("GlobalAveragePool", [x])
    s = b.op("Relu", [b.conv(g, 32, 8, k=1, pads=[0, 0, 0, 0])])
    s = b.op("HardSigmoid", [b.conv(s, 8, 32, k=1, pads=[0, 0, 0, 0])], alpha=1.0 / 6, beta=0.5)
    y = b.conv(b.op("Mul", [s, x]), 32, 16, k=1, pads=[0, 0, 0, 0])
    c = b.conv(y, 16, 16)
    e = b.op("Elu", [c])
    y = b.op("Add", [b.conv(e, 16, 16), b.conv(c, 16, 16)])
    side = b.op("Softmax", [b.conv(y, 16, 16)], axis=1)
    return b.model([2, 8, 19, 17], [side, g]), {"present": ["BlockedGlobalAveragePool", "BlockedScale", "Elu"],
                                                "absent": ["GlobalAveragePool", "Mul", "HardSigmoid", "HardSwish"]}


def gelu_erf(b, x):
    """GELU as PyTorch exports it below opset 20 (the erf pattern the fuse-gelu pass collapses)."""
    d = b.op("Div", [x, b.const(np.float32(1.4142135623730951), "c")])
    return b.op("Mul", [b.op("Mul", [x, b.op("Add", [b.op("Erf", [d]), b.const(np.float32(1.0), "one")])]),
                        b.const(np.float32(0.5), "half")])


def activations():
    """Each activation fused only into convolutions: HardSwish, HardSigmoid (default and given
    alpha/beta), SiLU as Mul(x, Sigmoid(x)) with the operands both ways, GELU's erf pattern; and
    the same after a residual Add (sum_activation)."""
    b = Builder()
    y = b.op("HardSwish", [b.conv("x", 4, 16)])
    y = b.op("HardSigmoid", [b.conv(y, 16, 16)])
    y = b.op("HardSigmoid", [b.conv(y, 16, 8)], alpha=0.3, beta=0.4)
    c = b.conv(y, 8, 16)
    y = b.op("Mul", [c, b.op("Sigmoid", [c])])
    c = b.conv(y, 16, 16)
    y = b.op("Mul", [b.op("Sigmoid", [c]), c])
    y = gelu_erf(b, b.conv(y, 16, 16))
    y = b.op("HardSwish", [b.op("Add", [y, b.conv(y, 16, 16)])])
    s = b.op("Add", [y, b.conv(y, 16, 16)])
    y = b.op("Mul", [s, b.op("Sigmoid", [s])])
    y = gelu_erf(b, b.op("Add", [y, b.conv(y, 16, 16)]))
    return b.model([2, 4, 11, 9], [y]), {"absent": ["HardSwish", "HardSigmoid", "Sigmoid", "Mul", "Erf", "Gelu", "Add"],
                                         "present": ["FusedConv"]}


def gelu20():
    """ONNX's Gelu (opset 20) after convolutions, in both forms."""
    b = Builder()
    y = b.op("Gelu", [b.conv("x", 8, 16)], approximate="none")
    y = b.op("Gelu", [b.conv(y, 16, 16)], approximate="tanh")
    m, shape = b.model([1, 8, 12, 12], [b.conv(y, 16, 8)], opset=20)
    m.ir_version = 9
    return (m, shape), {"absent": ["Gelu"], "present": ["FusedConv"]}


def matmul_activations():
    """The activations FusedMatMul's epilogue takes beyond Relu/Clip/Sigmoid/Tanh/Gelu, as
    classifier heads write them: Gemm then HardSwish (MobileNetV3), MatMul + bias then
    HardSigmoid (given alpha/beta), MatMul then SiLU as Mul(x, Sigmoid(x)) both ways, at 37 rows
    (a partial tile)."""
    b = Builder()

    def weights(k, n):
        return b.const(RNG.standard_normal((k, n)) / np.sqrt(k))

    y = b.op("HardSwish", [b.op("Gemm", ["x", weights(24, 40), b.const(RNG.standard_normal(40))])])
    y = b.op("Add", [b.op("MatMul", [y, weights(40, 33)]), b.const(RNG.standard_normal(33))])
    y = b.op("HardSigmoid", [y], alpha=0.3, beta=0.4)
    m = b.op("MatMul", [y, weights(33, 20)])
    y = b.op("Mul", [m, b.op("Sigmoid", [m])])
    m = b.op("MatMul", [y, weights(20, 18)])
    y = b.op("Mul", [b.op("Sigmoid", [m]), m])
    return b.model([37, 24], [y]), {"absent": ["Gemm", "MatMul", "HardSwish", "HardSigmoid", "Sigmoid", "Mul", "Add"],
                                    "present": ["FusedMatMul"]}


def convt(b, x, cin, cout, k=2, group=1, nd=2, bias=True, **attrs):
    """ConvTranspose with random weights [cin, cout/group, k...] (stride k unless given)."""
    w = RNG.standard_normal((cin, cout // group) + (k,) * nd).astype(np.float32) / np.sqrt(cin * k**nd / group)
    ins = [x, b.const(w)] + ([b.const(RNG.standard_normal(cout) * 0.1, "b")] if bias else [])
    attrs.setdefault("strides", [k] * nd)
    return b.op("ConvTranspose", ins, kernel_shape=[k] * nd, group=group, **attrs)


def unet():
    """The U-Net's decoder: ConvTranspose (fused, blocked, with its Relu) concatenated along
    channels with a skip connection read blocked by a MaxPool too, then a conv on the concat; a
    grouped ConvTranspose with output_padding and pads, whose concat with the plain input stays
    plain (so the ConvTranspose writes plain); a 1-D ConvTranspose without bias. The kernel = stride
    ones run as one GEMM and a scatter into patches (fused.c): also from the plain input to a plain
    graph output, and with HardSwish into 20 channels (padded to the block) read by a conv."""
    b = Builder()
    d1 = b.op("Relu", [b.conv("x", 4, 16)])
    d2 = b.op("Relu", [b.conv(b.op("MaxPool", [d1], kernel_shape=[2, 2], strides=[2, 2]), 16, 32)])
    u = b.op("Relu", [convt(b, d2, 32, 16)])
    y = b.op("Relu", [b.conv(b.op("Concat", [u, d1], axis=1), 32, 32)])
    u = convt(b, y, 32, 16, k=3, group=2, strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    y = b.conv(b.op("Concat", [u, b.op("Resize", ["x", "", b.const([1, 1, 2, 2], "scales")], mode="nearest")],
                    axis=1), 20, 16)
    b.inits.append(numpy_helper.from_array(np.array([0, 16, -1], np.int64), "shape_1d"))
    y = b.op("Reshape", [y, "shape_1d"])
    y = convt(b, b.conv(y, 16, 16, nd=1), 16, 16, k=3, nd=1, bias=False, strides=[1], pads=[1, 1])
    p = convt(b, "x", 4, 20)
    q = b.conv(b.op("HardSwish", [convt(b, d1, 16, 20, bias=False)]), 20, 8)
    return b.model([2, 4, 10, 12], [y, p, q]), {"present": ["BlockedConcat", "FusedConv", "Concat"],
                                          "absent": ["ConvTranspose", "MaxPool", "Relu", "HardSwish", "LayoutToPlain"]}


def padded_channels():
    """Channel counts that are no multiple of the block (8 or 16), kept blocked with padding as
    MobileNetV3/EfficientNet have them, at batch 2: 24 -> 72 expand, depthwise 72 with HardSwish,
    squeeze-excite 72 -> 20 -> 72 with HardSigmoid, project to 24 and a residual Add of two
    padded convs; a Sigmoid on padded data (the padding becomes 0.5) read by a conv, a MaxPool
    on padded data; padded values as graph outputs (the image and the pooled [N, 72, 1, 1])."""
    b = Builder()
    x = b.op("Relu", [b.conv("x", 3, 24)])
    e = b.op("HardSwish", [b.bn(b.conv(x, 24, 72, k=1, pads=[0, 0, 0, 0]), 72)])
    e = b.op("HardSwish", [b.conv(e, 72, 72, group=72)])
    g = b.op("GlobalAveragePool", [e])
    s = b.op("Relu", [b.conv(g, 72, 20, k=1, pads=[0, 0, 0, 0])])
    s = b.op("HardSigmoid", [b.conv(s, 20, 72, k=1, pads=[0, 0, 0, 0])], alpha=1.0 / 6, beta=0.5)
    y = b.op("Add", [b.conv(b.op("Mul", [e, s]), 72, 24, k=1, pads=[0, 0, 0, 0]), b.conv(x, 24, 24)])
    z = b.conv(b.op("Sigmoid", [y]), 24, 40)
    z = b.op("MaxPool", [z], kernel_shape=[2, 2], strides=[2, 2])
    return b.model([2, 3, 13, 11], [b.conv(z, 40, 40), y, g]), {
        "present": ["BlockedGlobalAveragePool", "BlockedScale", "BlockedPool", "Sigmoid", "LayoutToPlain"],
        "absent": ["GlobalAveragePool", "Mul", "MaxPool", "Add", "HardSwish", "HardSigmoid"]}


def one_channel():
    """1-D convolutions over one input channel (the raw-audio model's first layer: kernel 80,
    stride 4, pads 40) run as im2col x W^T: with Relu into a blocked MaxPool, with LeakyRelu
    and 20 (padded) output channels read blocked, with HardSigmoid written plain as a graph
    output, without activation and uneven pads; a dilated one and one reading a blocked X (1
    channel padded to the block) stay on oneDNN. Batch 2."""
    b = Builder()
    y = b.op("Relu", [b.conv("x", 1, 32, k=80, nd=1, strides=[4], pads=[40, 40])])
    y = b.op("MaxPool", [y], kernel_shape=[4], strides=[4])
    z = b.op("LeakyRelu", [b.conv("x", 1, 20, k=9, nd=1, strides=[2], pads=[3, 5])], alpha=0.2)
    z = b.conv(z, 20, 16, k=3, nd=1)
    h = b.op("HardSigmoid", [b.conv("x", 1, 8, k=5, nd=1, pads=[0, 2])], alpha=0.3, beta=0.4)
    d = b.conv("x", 1, 16, k=5, nd=1, dilations=[2], pads=[4, 4], bias=False)
    d = b.conv(b.op("Relu", [b.conv(d, 16, 1, nd=1)]), 1, 16, k=9, nd=1, pads=[4, 4])  # X blocked, 1 of 16
    return b.model([2, 1, 1601], [b.conv(y, 32, 32, nd=1), z, h, b.conv(d, 16, 16, nd=1)]), {
        "present": ["BlockedPool", "FusedConv"], "absent": ["Relu", "LeakyRelu", "HardSigmoid", "MaxPool"]}


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    celer = sys.argv[1]
    cases = []
    for fn in (conv1d, squeeze_excite, blocked_chain, activations, gelu20, matmul_activations, unet, padded_channels, one_channel):
        (model, shape), expect = fn()
        cases.append((fn.__name__, model, shape, expect))
    failed = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, shape, expect in cases:
            for threads in (1, 2):
                try:
                    line = check(celer, tmp, name, model, shape, expect, threads, TOL)
                except Exception as e:  # a failed run is a failed case, reported with its message
                    line = f"FAIL {name}: {e}"
                total += 1
                failed += line.startswith("FAIL")
                print(f"{line} ({threads} thread{'s' if threads > 1 else ''})")
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
