#!/usr/bin/env python3
"""ONNX Runtime's outputs for a real model: ort_reference.py MODEL DIR OUT.

Runs MODEL on every input set of DIR (inputs/, inputs_K/, as check_real_models.sh lays them out)
with ONNX Runtime (npm onnxruntime-node, CPU, graph optimizations off, one thread; installed into
~/.cache/celer-test/ort when missing, as the opset case generator does) and writes what it computes
as OUT/expected/, OUT/expected_K/ (one .npy per output). OUT is a cache: it holds the SHA-256 of the
model it was computed for, and is reused while the model is the same."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance", "opset"))
from gen import from_json, ort_modules, tensor_json  # noqa: E402


def main():
    model, src, out = sys.argv[1:4]
    digest = hashlib.sha256(open(model, "rb").read()).hexdigest()
    stamp = os.path.join(out, "model.sha256")
    if os.path.exists(stamp) and open(stamp).read().strip() == digest:
        return
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    sets = sorted(d for d in os.listdir(src) if d == "inputs" or d.startswith("inputs_"))
    with tempfile.TemporaryDirectory() as tmp:
        dirs = []
        for s in sets:
            d = os.path.join(tmp, s)
            os.makedirs(d)
            os.symlink(os.path.abspath(model), os.path.join(d, "model.onnx"))
            tensors = [tensor_json(f[:-4], np.load(os.path.join(src, s, f)))
                       for f in sorted(os.listdir(os.path.join(src, s))) if f.endswith(".npy")]
            with open(os.path.join(d, "inputs.json"), "w") as f:
                json.dump(tensors, f)
            dirs.append(d)
        env = dict(os.environ, NODE_PATH=ort_modules())
        subprocess.run(["node", os.path.join(HERE, "..", "conformance", "opset", "ort_outputs.js")] + dirs,
                       env=env, check=True)
        for s, d in zip(sets, dirs):
            if os.path.exists(os.path.join(d, "error.txt")):
                sys.exit(f"ONNX Runtime refused {model} on {s}: {open(os.path.join(d, 'error.txt')).read()}")
            exp = os.path.join(out, "expected" + s[len("inputs"):])
            os.makedirs(exp)
            for t in json.load(open(os.path.join(d, "outputs.json"))):
                np.save(os.path.join(exp, t["name"] + ".npy"), from_json(t))
    with open(stamp, "w") as f:
        f.write(digest + "\n")


if __name__ == "__main__":
    main()
