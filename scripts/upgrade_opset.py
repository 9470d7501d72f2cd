#!/usr/bin/python3
"""Rewrites an ONNX model of the default domain's opset 13-17 to a newer opset (18 to 23), as a
current exporter would write it: what changed between the versions is converted (reductions'
`axes` attribute becomes their second input at 18), everything else only gets the new opset and
IR version. Debian's onnx 1.12 cannot convert past 17; this covers what celer's real-model tests
need.

usage: upgrade_opset.py IN.onnx OUT.onnx OPSET"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

IR_OF_OPSET = {18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 10}
# operators whose axes moved from an attribute to the second input at opset 18
AXES_TO_INPUT_18 = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
                    "ReduceProd", "ReduceSumSquare"}


def upgrade_graph(graph, old, new, counter):
    added = []
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if old < 18 <= new and node.op_type in AXES_TO_INPUT_18:
            axes = next((a for a in node.attribute if a.name == "axes"), None)
            if axes is not None:
                name = f"{node.name or node.op_type}_axes_{counter[0]}"
                counter[0] += 1
                added.append(numpy_helper.from_array(np.array(list(axes.ints), np.int64), name))
                node.attribute.remove(axes)
                del node.input[1:]
                node.input.append(name)
        for a in node.attribute:  # subgraphs (If, Loop, Scan)
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                upgrade_graph(g, old, new, counter)
    graph.initializer.extend(added)


def main():
    src, dst, new = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = onnx.load(src)
    imp = next(o for o in model.opset_import if o.domain in ("", "ai.onnx"))
    old = imp.version
    if not 13 <= old <= 17 or not old < new <= 23:
        sys.exit(f"{src}: opset {old} to {new}: only 13-17 to 18-23 is converted")
    upgrade_graph(model.graph, old, new, [0])
    imp.version = new
    model.ir_version = max(model.ir_version, IR_OF_OPSET[new])
    with open(dst, "wb") as f:  # onnx.save would run nothing else; the 1.12 checker would refuse the opset
        f.write(model.SerializeToString())


if __name__ == "__main__":
    main()
