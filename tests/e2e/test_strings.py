#!/usr/bin/python3
"""End-to-end test of the opset 20 string operators through the real server.

Builds (onnx.helper) one model, `split`: x (BYTES [-1]) -> StringSplit(delimiter ",") -> y, z;
StringConcat(y, suffix) -> w. Checks, against Python's own splitting, that requests of growing
and shrinking sizes answer right (the output strings' buffer is sized per request and reused),
that a NUL inside an element is kept, and that concurrent requests each get their own strings.

usage: test_strings.py CELER_BIN EXAMPLE_REPOSITORY (the second argument is not used)
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, check, summary  # noqa: E402


def build_repository(repo):
    nodes = [helper.make_node("StringSplit", ["x"], ["y", "z"], delimiter=","),
             helper.make_node("StringConcat", ["y", "suffix"], ["w"])]
    graph = helper.make_graph(
        nodes, "split",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [-1]),
         helper.make_tensor_value_info("suffix", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("w", TensorProto.STRING, [-1, -1]),
         helper.make_tensor_value_info("z", TensorProto.INT64, [-1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="test_strings")
    model.ir_version = 9
    os.makedirs(os.path.join(repo, "split", "1"))
    onnx.save(model, os.path.join(repo, "split", "1", "model.onnx"))
    with open(os.path.join(repo, "split", "config.pbtxt"), "w") as f:
        f.write('name: "split"\nplatform: "onnxruntime_onnx"\n')


def expected(xs, suffix):
    """ONNX Runtime's StringSplit with a delimiter: an empty element gives no substrings."""
    parts = [x.split(",") if x else [] for x in xs]
    width = max((len(p) for p in parts), default=0)
    w = [s + suffix for p in parts for s in p + [""] * (width - len(p))]
    return w, [len(xs), width], [len(p) for p in parts]


def infer(srv, xs, suffix):
    doc = {"inputs": [{"name": "x", "shape": [len(xs)], "datatype": "BYTES", "data": xs},
                      {"name": "suffix", "shape": [1], "datatype": "BYTES", "data": [suffix]}]}
    s, body, _ = srv.request("POST", "/v2/models/split/infer", json.dumps(doc).encode(),
                             {"Content-Type": "application/json"})
    if s != 200:
        return s, body[:300]
    outs = {o["name"]: o for o in json.loads(body)["outputs"]}
    return s, (outs["w"]["data"], outs["w"]["shape"], outs["z"]["data"])


def check_request(srv, what, xs, suffix):
    s, got = infer(srv, xs, suffix)
    want = expected(xs, suffix)
    check(what, s == 200 and got == want, (s, str(got)[:300], str(want)[:300]))


def main():
    celer = sys.argv[1]
    if not os.path.exists(celer):
        print(f"no such binary: {celer}")
        return 1
    tmp = tempfile.mkdtemp(prefix="celer-e2e-strings-")
    repo = os.path.join(tmp, "repository")
    os.makedirs(repo)
    build_repository(repo)
    started = time.time()
    try:
        srv = Server(repo)
        try:
            s, _, _ = srv.request("GET", "/v2/models/split/ready")
            check("model split (StringSplit, StringConcat at opset 20) loads", s == 200, (s, srv.output()[-2000:]))
            check_request(srv, "small request", ["a,b", "", "c,,d,"], "!")
            check_request(srv, "large request after it (the strings' buffer grows)",
                          [",".join(f"w{i}" * 50 for i in range(2000)), "é,ü"], "_s")
            check_request(srv, "small request again (the buffer is reused)", ["x"], "")
            check_request(srv, "NUL bytes inside elements and the suffix are kept", ["a\u0000b,c", "\u0000"], "\u0000z")
            errors = []

            def worker(k):
                for r in range(10):
                    xs = [",".join(f"{k}-{r}-{j}" for j in range(k + r % 3 + 1))] * (k + 1)
                    s, got = infer(srv, xs, f"#{k}")
                    if s != 200 or got != expected(xs, f"#{k}"):
                        errors.append((k, r, s, str(got)[:200]))

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            check("4 concurrent clients x 10 requests each get their own strings", not errors, errors[:3])
        finally:
            code = srv.stop()
            check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"took {time.time() - started:.1f} s")
    return summary()


if __name__ == "__main__":
    sys.exit(main())
