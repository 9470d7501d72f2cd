"""StringConcat and StringSplit (opset 20): elementwise concatenation with broadcasting, and
splitting on a delimiter or on runs of whitespace, with maxsplit. Strings hold UTF-8 and empty
strings; ONNX Runtime's outputs are the reference."""
import numpy as np
from onnx import helper

from opset_case import case

N = helper.make_node
S = lambda *v: np.array(v, dtype=object)  # noqa: E731
OUT_SPLIT = [("y", object), ("z", np.int64)]


def concat(name, a, b):
    return case(name, 20, [N("StringConcat", ["a", "b"], ["y"])], [("a", a), ("b", b)], [("y", object)])


def split(name, x, **attrs):
    return case(name, 20, [N("StringSplit", ["x"], ["y", "z"], **attrs)], [("x", x)], OUT_SPLIT)


CASES = [
    concat("stringconcat_opset20", S("abc", "", "x y", "é"), S("def", "gh", "", "ü")),
    concat("stringconcat_opset20_broadcast", S(["a", "bb", ""], ["ccc", "d", "ee"]).reshape(2, 3),
           S("_1", "_2", "_3").reshape(1, 3)[0]),
    concat("stringconcat_opset20_broadcast_both", S("x", "yy").reshape(2, 1), S("1", "", "333").reshape(1, 3)),
    concat("stringconcat_opset20_scalar", np.array("pre-", dtype=object), S("日本", "", "語")),
    concat("stringconcat_opset20_empty", np.zeros((0, 2), dtype=object), S("a", "b")),
    split("stringsplit_opset20_delimiter", S("a,b,c", "", ",", "a,,b,", "no delimiter"), delimiter=","),
    split("stringsplit_opset20_multichar_delimiter", S(["1<>2<><>3", "<>"], ["x<y>z", "<><><>"]).reshape(2, 2),
          delimiter="<>"),
    split("stringsplit_opset20_whitespace", S("  hello world ", "", "   ", "a\tb\nc  d", "one"), delimiter=""),
    split("stringsplit_opset20_default_delimiter", S("x y  z", " lead", "trail  ")),
    split("stringsplit_opset20_maxsplit", S("a-b-c-d", "a", "--x-", ""), delimiter="-", maxsplit=2),
    split("stringsplit_opset20_maxsplit_negative", S("a,b,,c", ","), delimiter=",", maxsplit=-1),
    split("stringsplit_opset20_maxsplit_zero", S("a b", "c"), delimiter=" ", maxsplit=0),
    split("stringsplit_opset20_whitespace_maxsplit", S("  a b  c d ", "e  f", "g"), maxsplit=1),
    split("stringsplit_opset20_utf8", S("añb→c", "→→", "日本語"), delimiter="→"),
    split("stringsplit_opset20_utf8_whitespace", S("日本 語", "é  ü  ")),
    split("stringsplit_opset20_empty_strings", S("", ""), delimiter=";"),
    split("stringsplit_opset20_all_whitespace", S("", " \t"), delimiter=""),
    split("stringsplit_opset20_scalar", np.array("p.q.r", dtype=object), delimiter="."),
    split("stringsplit_opset20_empty_input", np.zeros((0,), dtype=object), delimiter=","),
]
