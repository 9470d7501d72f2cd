"""Model-local functions (FunctionProto, IR >= 8), as newer exporters write them: inlined at load.
A function with an attribute its body takes by reference (ref_attr_name) with a default, called
with and without it; a function calling another; a function whose formal output is also used
inside; an omitted optional input."""
import numpy as np
from onnx import AttributeProto, helper

from opset_case import Case, case

rng = np.random.default_rng(8)
N = helper.make_node
OPSET = 21


def ref_attr(name, ref, type_):
    a = AttributeProto()
    a.name, a.ref_attr_name, a.type = name, ref, type_
    return a


def leaky_add():
    """custom.LeakyAdd(a, b) = LeakyRelu(a + b, alpha=@alpha) with alpha defaulting to 0.25."""
    relu = N("LeakyRelu", ["s"], ["y"])
    relu.attribute.append(ref_attr("alpha", "alpha", AttributeProto.FLOAT))
    f = helper.make_function("custom", "LeakyAdd", ["a", "b"], ["y"], [N("Add", ["a", "b"], ["s"]), relu],
                             [helper.make_opsetid("", OPSET)], ["alpha"])
    # the default (FunctionProto.attribute_proto, field 11) is newer than Debian's onnx 1.12: its bytes
    # are appended by hand (a protobuf message may repeat fields in any order)
    return f, pb_len(11, helper.make_attribute("alpha", 0.25).SerializeToString())


def pb_len(field, payload):
    out, v = bytearray(), field << 3 | 2
    for x in (v, len(payload)):
        while x >= 128:
            out.append(x % 128 + 128)
            x //= 128
        out.append(x)
    return bytes(out) + payload


class WithDefaults:
    """A model whose functions get extra bytes (attribute defaults) onnx 1.12 cannot set."""

    def __init__(self, c, functions):
        self.case, self.functions = c, functions

    def SerializeToString(self):
        m = self.case.model
        del m.functions[:]
        return m.SerializeToString() + b"".join(pb_len(25, f.SerializeToString() + extra) for f, extra in self.functions)


def with_defaults(c, functions):
    return Case(c.name, WithDefaults(c, functions), c.inputs)


def scaled_block():
    """custom.Block(x, w) = LeakyAdd(x @ w, x @ w) * 2, its inner product also an output."""
    return helper.make_function("custom", "Block", ["x", "w"], ["y", "p"],
                             [N("MatMul", ["x", "w"], ["p"]), N("LeakyAdd", ["p", "p"], ["l"], domain="custom", alpha=0.5),
                              N("Add", ["l", "l"], ["y"])], [helper.make_opsetid("", OPSET), helper.make_opsetid("custom", 1)])


def clip_fn():
    """custom.ClipMaybe(x, lo, hi) = Clip(x, lo, hi): optional inputs passed through, or omitted."""
    return helper.make_function("custom", "ClipMaybe", ["x", "lo", "hi"], ["y"], [N("Clip", ["x", "lo", "hi"], ["y"])],
                                [helper.make_opsetid("", OPSET)])


f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731

LEAKY = leaky_add()
CASES = [
    with_defaults(case("function_ref_attr_default_and_given", OPSET,
                       [N("LeakyAdd", ["a", "b"], ["y1"], domain="custom", name="first"),
                        N("LeakyAdd", ["y1", "b"], ["y2"], domain="custom", name="second", alpha=0.01)],
                       [("a", f32(3, 4)), ("b", f32(3, 4))], [("y1", np.float32), ("y2", np.float32)],
                       functions=[LEAKY[0]]), [LEAKY]),
    with_defaults(case("function_nested", OPSET, [N("Block", ["x", "w"], ["y", "p"], domain="custom")],
                       [("x", f32(2, 3)), ("w", f32(3, 3))], [("y", np.float32), ("p", np.float32)],
                       functions=[LEAKY[0], scaled_block()]), [LEAKY, (scaled_block(), b"")]),
    case("function_omitted_input", OPSET, [N("ClipMaybe", ["x", "", "h"], ["y"], domain="custom")],
         [("x", f32(2, 5) * 3)], [("y", np.float32)], initializers=[("h", np.array(0.5, np.float32))],
         functions=[clip_fn()]),
]
