#!/usr/bin/python3
"""Generates the conformance cases of ONNX opsets 18 to 23 (tests/data/onnx-opset), in the layout
of Debian's libonnx-testdata: <out>/node/<case>/model.onnx and test_data_set_0/{input,output}_K.pb.
Models come from the cases_*.py beside this file (Debian's onnx 1.12 `helper`); the expected
outputs from ONNX Runtime (npm onnxruntime-node, CPU, graph optimizations off) through
ort_outputs.js. The tests only read what this writes: Node is needed only to regenerate.

usage: gen.py [--only SUBSTRING] [OUT_DIR (default tests/data/onnx-opset)]
environment: CELER_ORT_CACHE, the folder holding node_modules/onnxruntime-node (default
~/.cache/celer-test/ort; installed there with npm when missing, with onnxruntime-node-install=skip)."""
import base64
import glob
import importlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
ORT_CACHE = os.environ.get("CELER_ORT_CACHE") or os.path.expanduser("~/.cache/celer-test/ort")
ORT_PACKAGE = "onnxruntime-node@1.31.1"
ORT_TYPE = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int8": np.int8, "uint8": np.uint8,
            "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
            "uint64": np.uint64, "bool": np.bool_}
NP_TO_ORT = {np.dtype(v): k for k, v in ORT_TYPE.items()}


def ort_modules():
    if not os.path.isdir(os.path.join(ORT_CACHE, "node_modules", "onnxruntime-node")):
        os.makedirs(ORT_CACHE, exist_ok=True)
        with open(os.path.join(ORT_CACHE, ".npmrc"), "w") as f:  # its postinstall would fetch GPU parts
            f.write("onnxruntime-node-install=skip\nsave-exact=true\n")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", ORT_PACKAGE], cwd=ORT_CACHE, check=True)
    return os.path.join(ORT_CACHE, "node_modules")


def tensor_json(name, a):
    if a.dtype == object:
        return {"name": name, "type": "string", "dims": list(a.shape),
                "data": base64.b64encode(json.dumps([str(x) for x in a.ravel()]).encode()).decode()}
    return {"name": name, "type": NP_TO_ORT[a.dtype], "dims": list(a.shape),
            "data": base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()}


def from_json(t):
    raw = base64.b64decode(t["data"])
    if t["type"] == "string":
        return np.array(json.loads(raw), dtype=object).reshape(t["dims"])
    return np.frombuffer(raw, ORT_TYPE[t["type"]]).reshape(t["dims"])


def main():
    args = sys.argv[1:]
    only = None
    if args[:1] == ["--only"]:
        only, args = args[1], args[2:]
    out = os.path.abspath(args[0] if args else os.path.join(ROOT, "tests", "data", "onnx-opset"))
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "cases_*.py"))):
        cases += importlib.import_module(os.path.basename(path)[:-3]).CASES
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"duplicate case names: {sorted(dup)}")
    dirs = []
    for c in cases:
        if only and only not in c.name:
            continue
        d = os.path.join(out, "node", c.name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "test_data_set_0"))
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(c.model.SerializeToString())
        for k, (n, a) in enumerate(c.inputs):
            with open(os.path.join(d, "test_data_set_0", f"input_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a, n).SerializeToString())
        with open(os.path.join(d, "inputs.json"), "w") as f:
            json.dump([tensor_json(n, a) for n, a in c.inputs], f)
        dirs.append(d)
    env = dict(os.environ, NODE_PATH=ort_modules())
    for k in range(0, len(dirs), 200):  # one Node process per 200 cases
        subprocess.run(["node", os.path.join(HERE, "ort_outputs.js")] + dirs[k:k + 200], env=env, check=True)
    failed = []
    for d in dirs:
        os.remove(os.path.join(d, "inputs.json"))
        err = os.path.join(d, "error.txt")
        if os.path.exists(err):
            failed.append(f"{os.path.basename(d)}: {open(err).read().strip()}")
            shutil.rmtree(d)
            continue
        outs = json.load(open(os.path.join(d, "outputs.json")))
        os.remove(os.path.join(d, "outputs.json"))
        for k, t in enumerate(outs):
            with open(os.path.join(d, "test_data_set_0", f"output_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(from_json(t), t["name"]).SerializeToString())
    print(f"{len(dirs) - len(failed)} cases written to {out}/node")
    for line in failed:
        print("ONNX Runtime refused " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
