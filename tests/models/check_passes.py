#!/usr/bin/python3
"""Checks celer's graph optimizations (src/graph/optimize.c) on small generated models: every
model runs through `celer run` twice, as the file has it (CELER_OPTIMIZE=0) and optimized, and the
outputs must agree to 1e-5 relative; `celer bench --profile` then shows which nodes ran, so each
case also checks that the passes it is about actually fired (no BatchNormalization left after
folding, FusedConv and BlockedPool present...).

  check_passes.py CELER_BIN [--keep DIR]

Needs /usr/bin/python3 with python3-onnx and numpy. Prints one line per model and exits non-zero
when any fails."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(7)
TOL = 1e-5


class Builder:
    """A small graph under construction: nodes, initializers and fresh names."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def const(self, arr, base="w"):
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def op(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=3, group=1, bias=True, nd=2, **attrs):
        w = RNG.standard_normal((cout, cin // group) + (k,) * nd).astype(np.float32) / np.sqrt(cin * k**nd / group)
        ins = [x, self.const(w)]
        if bias:
            ins.append(self.const(RNG.standard_normal(cout) * 0.1, "b"))
        attrs.setdefault("kernel_shape", [k] * nd)
        if "pads" not in attrs and "auto_pad" not in attrs:
            attrs["pads"] = [k // 2] * (2 * nd)
        return self.op("Conv", ins, group=group, **attrs)

    def bn(self, x, c):
        p = [self.const(RNG.uniform(0.5, 1.5, c), "scale"), self.const(RNG.standard_normal(c) * 0.1, "beta"),
             self.const(RNG.standard_normal(c) * 0.1, "mean"), self.const(RNG.uniform(0.5, 1.5, c), "var")]
        return self.op("BatchNormalization", [x] + p, epsilon=1e-3)

    def model(self, x_shape, outputs, opset=17):
        graph = helper.make_graph(
            self.nodes, "passes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch"] + x_shape[1:])],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), x_shape


def resnet_block():
    """Bottleneck blocks as ResNet has them: Conv+BN+Relu, residual Add of two convs, Add+Relu,
    MaxPool and GlobalAveragePool, and a blocked value that is also a graph output."""
    b = Builder()
    stem = b.op("Relu", [b.bn(b.conv("x", 3, 16, k=7, strides=[2, 2], pads=[3, 3, 3, 3]), 16)])
    p = b.op("MaxPool", [stem], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.op("Relu", [b.bn(b.conv(p, 16, 8, k=1, pads=[0, 0, 0, 0], bias=False), 8)])
    y = b.op("Relu", [b.bn(b.conv(y, 8, 8), 8)])
    y = b.bn(b.conv(y, 8, 32, k=1, pads=[0, 0, 0, 0]), 32)
    short = b.bn(b.conv(p, 16, 32, k=1, pads=[0, 0, 0, 0]), 32)
    block1 = b.op("Relu", [b.op("Add", [y, short])])
    y = b.op("Relu", [b.conv(block1, 32, 32)])
    block2 = b.op("Relu", [b.op("Add", [block1, b.conv(y, 32, 32)])])
    out = b.op("GlobalAveragePool", [block2])
    return b.model([2, 3, 33, 31], [out, block1]), {"absent": ["BatchNormalization", "Add", "Relu", "MaxPool"],
                                                  "present": ["FusedConv", "BlockedPool", "LayoutToPlain"]}


def activations():
    """Each activation the fused conv takes, Clip with its bounds as inputs (opset 11+) and as
    attributes (opset 6), on 8 and 24 channels."""
    b = Builder()
    y = b.op("LeakyRelu", [b.conv("x", 4, 8)], alpha=0.2)
    y = b.op("Clip", [b.conv(y, 8, 24), b.const(-0.5, "lo"), b.const(0.7, "hi")])
    y = b.op("Sigmoid", [b.conv(y, 24, 8)])
    y = b.op("Tanh", [b.conv(y, 8, 8)])
    y = b.op("Relu", [b.op("Add", [b.op("Relu", [b.conv(y, 8, 8)]), b.conv(y, 8, 8)])])
    return b.model([1, 4, 10, 9], [y]), {"absent": ["LeakyRelu", "Clip", "Sigmoid", "Tanh", "Relu", "Add"]}


def shapes():
    """Grouped and depthwise convolutions, strides, dilations, asymmetric and automatic padding,
    channel counts that are not a multiple of the block (plain layout in between)."""
    b = Builder()
    y = b.op("Relu", [b.conv("x", 12, 24, group=4, strides=[2, 1])])
    y = b.conv(y, 24, 24, group=24, dilations=[2, 2], pads=[2, 1, 2, 3])
    y = b.op("Relu", [b.conv(y, 24, 12, k=3, auto_pad="SAME_UPPER", strides=[2, 2])])
    y = b.conv(y, 12, 16, k=1, pads=[0, 0, 0, 0])
    y = b.op("AveragePool", [y], kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 1, 1], count_include_pad=1)
    y = b.conv(y, 16, 16, bias=False)
    y = b.op("AveragePool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = b.conv(y, 16, 8)
    y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    return b.model([2, 12, 21, 17], [b.conv(y, 8, 8)]), {"present": ["FusedConv", "BlockedPool"]}


def conv_1d_3d():
    """1-D and 3-D convolutions with folded BatchNormalization and residual Add (blocked nCw8c and
    nCdhw8c layouts)."""
    b = Builder()
    y = b.op("Relu", [b.bn(b.conv("x", 3, 8, nd=1), 8)])
    y = b.op("Relu", [b.op("Add", [y, b.bn(b.conv(y, 8, 8, nd=1), 8)])])
    m1, shape1 = b.model([2, 3, 29], [b.conv(y, 8, 4, nd=1)])
    b = Builder()
    y = b.op("Relu", [b.bn(b.conv("x", 2, 8, nd=3), 8)])
    y = b.op("Add", [b.conv(y, 8, 8, nd=3), b.conv(y, 8, 8, nd=3, k=1, pads=[0] * 6)])
    m3, shape3 = b.model([1, 2, 6, 7, 5], [y])
    expect = {"absent": ["BatchNormalization", "Relu"], "present": ["FusedConv"]}
    return [("conv1d", m1, shape1, expect), ("conv3d", m3, shape3, dict(expect, absent=["BatchNormalization"]))]


def dead_and_shared():
    """A dead branch, a conv output read by two convs and by a non-conv op, a BN whose conv
    output is also read elsewhere (not folded), and a conv with weights shared by two nodes."""
    b = Builder()
    c = b.conv("x", 8, 8)
    b.op("Sigmoid", [b.conv(c, 8, 8)])  # dead: nobody reads it
    left, right = b.conv(c, 8, 8), b.conv(c, 8, 16, k=1, pads=[0, 0, 0, 0])
    mixed = b.op("Mul", [c, left])
    kept_bn = b.bn(left, 8)
    w = b.const(RNG.standard_normal((8, 8, 3, 3)) * 0.1)
    s1 = b.op("Conv", [kept_bn, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    s2 = b.op("Conv", [mixed, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return b.model([1, 8, 7, 7], [s1, s2, right, left]), {"absent": ["Sigmoid"]}


def transformer_mlp():
    """MatMul + bias Add on a 3-D input, the erf form of GELU (Div and Mul variants, operands in
    both orders), Gemm with bias and transB followed by Relu, Gemm without bias, Sigmoid after a
    MatMul, and a bias that is not a vector (left as an Add)."""
    b = Builder()
    h = b.op("Add", [b.const(RNG.standard_normal(32) * 0.1, "b"), b.op("MatMul", ["x", b.const(RNG.standard_normal((16, 32)) * 0.2)])])
    d = b.op("Div", [h, b.const(np.float32(1.4142135623730951), "c")])
    h = b.op("Mul", [b.op("Mul", [h, b.op("Add", [b.op("Erf", [d]), b.const(np.float32(1.0), "one")])]),
                     b.const(np.float32(0.5), "half")])
    h2 = b.op("MatMul", [h, b.const(RNG.standard_normal((32, 24)) * 0.2)])
    g = b.op("Mul", [h2, b.const(np.float32(0.7071067811865476), "c")])
    h2 = b.op("Mul", [b.const(np.float32(0.5), "half"),
                      b.op("Mul", [b.op("Add", [b.const(np.float32(1.0), "one"), b.op("Erf", [g])]), h2])])
    flat = b.name("flat")
    b.nodes.append(helper.make_node("Flatten", [h2], [flat], axis=2))
    y = b.op("Relu", [b.op("Gemm", [flat, b.const(RNG.standard_normal((8, 24)) * 0.2), b.const(RNG.standard_normal(8), "b")],
                          transB=1)])
    y = b.op("Gemm", [y, b.const(RNG.standard_normal((8, 8)) * 0.3)])
    y = b.op("Sigmoid", [b.op("MatMul", [y, b.const(RNG.standard_normal((8, 4)))])])
    y = b.op("Add", [b.op("MatMul", [y, b.const(RNG.standard_normal((4, 4)))]), b.const(RNG.standard_normal((1, 4)), "b2")])
    return b.model([3, 5, 16], [y]), {"absent": ["Erf", "Div", "Relu", "Gemm", "Sigmoid"], "present": ["FusedMatMul", "Add"]}


def gelu20(approximate):
    """ONNX's own Gelu (opset 20) after MatMul + bias: the exact form is fused into the MatMul like
    the erf pattern; the tanh form stays a node of its own."""
    b = Builder()
    h = b.op("Add", [b.op("MatMul", ["x", b.const(RNG.standard_normal((16, 32)) * 0.2)]), b.const(RNG.standard_normal(32), "b")])
    m, shape = b.model([3, 16], [b.op("Gelu", [h], approximate=approximate)], opset=20)
    m.ir_version = 9
    if approximate == "none":
        return (m, shape), {"present": ["FusedMatMul"], "absent": ["MatMul", "Add", "Gelu"]}
    return (m, shape), {"present": ["FusedMatMul", "Gelu"], "absent": ["MatMul", "Add"]}


def matvec():
    """A few rows: the matrix-vector path (one SGEMV per row), MatMul with B [K, N] and Gemm
    with transB."""
    b = Builder()
    y = b.op("Relu", [b.op("Gemm", ["x", b.const(RNG.standard_normal((32, 20)) * 0.2), b.const(RNG.standard_normal(32), "b")],
                          transB=1)])
    y = b.op("Add", [b.op("MatMul", [y, b.const(RNG.standard_normal((32, 7)) * 0.2)]), b.const(RNG.standard_normal(7), "b")])
    return b.model([3, 20], [y]), {"absent": ["Relu", "Gemm", "MatMul"], "present": ["FusedMatMul"]}


def constant_folding():
    """Subexpressions of constants only (Sqrt, Div, Cast, Concat feeding a Reshape target, a BN
    whose scale is computed) are computed at load; a Conv then folds the computed BN."""
    b = Builder()
    var = b.op("Sqrt", [b.const(RNG.uniform(0.5, 2.0, 8), "v")])
    scale = b.op("Div", [b.const(np.ones(8), "one"), var])
    p = [scale, b.const(RNG.standard_normal(8) * 0.1, "beta"), b.const(RNG.standard_normal(8) * 0.1, "mean"),
         b.const(RNG.uniform(0.5, 1.5, 8), "var")]
    y = b.op("BatchNormalization", [b.conv("x", 4, 8)] + p)
    ints = b.name("ints")
    b.inits.append(numpy_helper.from_array(np.array([8, 2], dtype=np.int64), ints))
    minus1 = b.name("minus1")
    b.inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), minus1))
    shape = b.op("Concat", [minus1, ints], axis=0)
    y = b.op("Reshape", [y, shape])
    y = b.op("Add", [y, b.op("Cast", [b.op("Mul", [ints, ints])], to=TensorProto.FLOAT)])
    return b.model([2, 4, 4, 4], [y]), {"absent": ["Sqrt", "Div", "Concat", "Cast", "BatchNormalization"],
                                        "present": ["FusedConv", "Reshape", "Add"]}


def layernorm():
    """LayerNormalization written out as opset-13 exporters do (ReduceMean/Sub/Pow/Sqrt/Div, then
    Mul gamma and Add beta), once with the affine tail and once without (and with Mul(d, d))."""
    b = Builder()

    def ln(x, c, affine, square="Pow"):
        d = b.op("Sub", [x, b.op("ReduceMean", [x], axes=[-1])])
        sq = b.op("Pow", [d, b.const(np.float32(2.0), "two")]) if square == "Pow" else b.op("Mul", [d, d])
        den = b.op("Sqrt", [b.op("Add", [b.op("ReduceMean", [sq], axes=[-1]), b.const(np.float32(1e-5), "eps")])])
        y = b.op("Div", [d, den])
        if affine:
            y = b.op("Add", [b.op("Mul", [y, b.const(RNG.uniform(0.5, 1.5, c), "gamma")]),
                             b.const(RNG.standard_normal(c) * 0.1, "beta")])
        return y

    y = ln("x", 24, True)
    y = ln(b.op("MatMul", [y, b.const(RNG.standard_normal((24, 24)) * 0.2)]), 24, False, "Mul")
    return b.model([2, 5, 24], [y], opset=13), {"absent": ["ReduceMean", "Sqrt", "Pow", "Div", "Sub"],
                                               "present": ["LayerNormalization", "FusedMatMul"]}


def run(celer, model_path, x, outdir, optimize, threads=1):
    os.makedirs(outdir, exist_ok=True)
    np.save(os.path.join(outdir, "x.npy"), x)
    env = dict(os.environ, CELER_OPTIMIZE="1" if optimize else "0")
    r = subprocess.run([celer, "run", model_path, "--input", f"x={outdir}/x.npy", "--output-dir", outdir,
                        "--threads", str(threads)], env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"celer run ({'optimized' if optimize else 'CELER_OPTIMIZE=0'}): {r.stderr.strip()[:400]}")
    return {f[:-4]: np.load(os.path.join(outdir, f)) for f in os.listdir(outdir) if f != "x.npy"}


def bench(celer, model_path, batch, threads=1):
    """celer bench --profile's JSON line (op_ms, reference_convs...) for one run."""
    r = subprocess.run([celer, "bench", model_path, "--batch", str(batch), "--threads", str(threads),
                        "--iterations", "1", "--warmup", "0", "--profile"], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"celer bench --profile: {r.stderr.strip()[:400]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def check(celer, tmp, name, model, shape, expect, threads=1, tol=TOL):
    """One model optimized against CELER_OPTIMIZE=0 at `threads`: outputs within `tol`, the ops
    `expect` names present or fused away, no convolution on oneDNN's reference implementation."""
    path = os.path.join(tmp, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    x = RNG.standard_normal(shape).astype(np.float32)
    ref = run(celer, path, x, os.path.join(tmp, name, "plain"), False, threads)
    got = run(celer, path, x, os.path.join(tmp, name, "optimized"), True, threads)
    worst = 0.0
    for k, want in ref.items():
        if got[k].shape != want.shape:
            return f"FAIL {name}: output {k} has shape {got[k].shape}, unoptimized {want.shape}"
        err = float(np.abs(got[k] - want).max() / max(float(np.abs(want).max()), 1e-30))
        worst = max(worst, err)
        if not err <= tol:
            return f"FAIL {name}: output {k} differs from the unoptimized run by {err:.3g} (relative)"
    res = bench(celer, path, shape[0], threads)
    ops = res["op_ms"]
    if res.get("reference_convs") != 0:
        return f"FAIL {name}: {res.get('reference_convs')} convolutions on oneDNN's reference implementation"
    missing = [o for o in expect.get("present", []) if o not in ops]
    left = [o for o in expect.get("absent", []) if o in ops]
    if missing or left:
        return f"FAIL {name}: ran {sorted(ops)}; expected {missing} to run and {left} to be fused away"
    return f"PASS {name}: max rel diff {worst:.2e}, ran {', '.join(sorted(ops))}"


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    celer = sys.argv[1]
    keep = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--keep" else None
    cases = []
    for fn in (resnet_block, activations, shapes, dead_and_shared, transformer_mlp, matvec, constant_folding, layernorm):
        (model, shape), expect = fn()
        cases.append((fn.__name__, model, shape, expect))
    cases += conv_1d_3d()
    for form in ("none", "tanh"):
        (model, shape), expect = gelu20(form)
        cases.append((f"gelu20_{form}", model, shape, expect))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for name, model, shape, expect in cases:
            try:
                line = check(celer, tmp, name, model, shape, expect)
            except Exception as e:  # a failed run is a failed case, reported with its message
                line = f"FAIL {name}: {e}"
            failed += line.startswith("FAIL")
            print(line)
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
