#!/usr/bin/python3
"""What issue 17 asks to be measured, against OpenStack Swift with s3api on loopback (tests/s3/swift.sh):
- the time from the upload of a new version's READY marker to its first answer (a 100 MB model,
  and the example MLP), with --repository-poll-secs 1;
- the server's RSS while it downloads the 100 MB model (sampled every 10 ms until the file is in
  place in the copy; it must not grow by the model's size);
- the bytes downloaded by a restart over a warm --model-cache-dir (must be 0).

usage: bench/s3_publish.py [CELER_BIN]   (default build/celer; run with /usr/bin/python3)"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "s3"))
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import s3util  # noqa: E402
from test_s3_client import free_port_block  # noqa: E402

SWIFT = os.path.join(HERE, "..", "tests", "s3", "swift.sh")
MLP = os.path.join(HERE, "..", "examples", "repository", "mlp")


def wide_model(path, cols):
    """y = max(x @ W), W [16, cols] float: 64 bytes a column."""
    w = np.random.default_rng(3).standard_normal((16, cols)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("ReduceMax", ["xw"], ["y"], axes=[1], keepdims=1)],
        "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], [numpy_helper.from_array(w, "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def infer(port, model, version, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v2/models/%s/versions/%s/infer" % (port, model, version),
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except Exception:
        return 0


class Celer:
    def __init__(self, binary, url, port, env, *args):
        self.log = tempfile.TemporaryFile()
        self.p = subprocess.Popen([binary, "serve", "--model-repository", url, "--http-port", str(port),
                                   "--grpc-port", str(port + 1)] + list(args), env=env, stderr=self.log)
        self.port = port
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % port, timeout=1):
                    return
            except Exception:
                time.sleep(0.05)
        raise SystemExit("celer did not become ready:\n" + self.text())

    def text(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.p.terminate()
        self.p.wait()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "celer")
    work = tempfile.mkdtemp(prefix="celer-s3-bench-")
    port = free_port_block()
    endpoint = "http://127.0.0.1:%d" % port
    subprocess.run([SWIFT, "start", os.path.join(work, "swift"), str(port)], check=True)
    try:
        c = s3util.client(endpoint)
        c.create_bucket(Bucket="models")
        big = os.path.join(work, "big.onnx")
        wide_model(big, 1_600_000)  # 102 MB
        size = os.path.getsize(big)
        for key, path in (("mlp/config.pbtxt", os.path.join(MLP, "config.pbtxt")),
                          ("mlp/1/model.onnx", os.path.join(MLP, "1", "model.onnx")),
                          ("wide/1/model.onnx", big)):
            c.upload_file(path, "models", "repo/" + key)
        for m in ("mlp", "wide"):
            c.put_object(Bucket="models", Key="repo/%s/1/READY" % m, Body=b"1")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test:tester", AWS_SECRET_ACCESS_KEY="testing")
        url = "s3://127.0.0.1:%d/models/repo" % port
        cache = os.path.join(work, "cache")
        http = port + 10
        srv = Celer(binary, url, http, env, "--repository-poll-secs", "1", "--model-cache-dir", cache)
        x16 = {"name": "x", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}
        features = dict(x16, name="features")
        # version 2 of each: the files first, the marker last; then wait for version 2's first answer
        for model, path, body in (("mlp", os.path.join(MLP, "1", "model.onnx"), features), ("wide", big, x16)):
            c.upload_file(path, "models", "repo/%s/2/model.onnx" % model)
            time.sleep(1.5)  # a poll or two see the files without the marker
            base = rss_kb(srv.p.pid)
            peak = base
            placed = os.path.join(cache, model, "2", "model.onnx")
            t0 = time.time()
            c.put_object(Bucket="models", Key="repo/%s/2/READY" % model, Body=b"1")
            while not os.path.exists(placed) and time.time() - t0 < 60:
                peak = max(peak, rss_kb(srv.p.pid))
                time.sleep(0.01)
            while infer(http, model, "2", {"inputs": [body]}) != 200 and time.time() - t0 < 60:
                time.sleep(0.01)
            took = time.time() - t0
            print("%-5s %9d bytes: READY uploaded -> first answer of version 2 in %.2f s; RSS while downloading "
                  "%.1f -> peak %.1f MB" % (model, os.path.getsize(path), took, base / 1024, peak / 1024))
        srv.stop()
        srv = Celer(binary, url, http, env, "--model-cache-dir", cache)
        line = [l for l in srv.text().splitlines() if "local copy in" in l]
        srv.stop()
        print("restart over the warm cache:", line[0].split(": ", 2)[2] if line else srv.text())
        print("(model of %d bytes)" % size)
    finally:
        subprocess.run([SWIFT, "stop", os.path.join(work, "swift")])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
