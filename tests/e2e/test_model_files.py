#!/usr/bin/python3
"""A served model's file overwritten, truncated or deleted in place (`cp new.onnx model.onnx`,
`rsync --inplace`, `kubectl cp` truncate the file first) changes nothing until a reload: the
answers stay those of the weights loaded, and the server does not die (a model served from a
mapping of its file died of SIGBUS, exit 135, at the next request).

usage: test_model_files.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, infer_body, mlp_reference, summary  # noqa: E402


def main():
    tmp = tempfile.mkdtemp(prefix="celer-files-")
    repo = os.path.join(tmp, "repository")
    os.makedirs(repo)
    shutil.copytree(os.path.join(sys.argv[2], "mlp"), os.path.join(repo, "mlp"))
    path = os.path.join(repo, "mlp", "1", "model.onnx")
    size = os.path.getsize(path)
    rng = np.random.default_rng(12)
    # every step sends inputs of its own, so that no cache can answer for the model
    steps = ["loaded", "file truncated (a copy under way)", "file rewritten shorter",
             "file rewritten with other bytes", "file deleted"]
    inputs = [rng.standard_normal((2, 16)).astype(np.float32) for _ in steps]
    expected = [mlp_reference(repo, x) for x in inputs]  # from the weights as loaded

    srv = Server(repo, "--quiet")
    try:
        for i, step in enumerate(steps):
            if i == 1:  # what `cp` does to the file first
                with open(path, "r+b") as f:
                    f.truncate(0)
            elif i == 2:  # then its writes (here of a shorter file)
                with open(path, "r+b") as f:
                    f.truncate(0)
                    f.write(b"\x5a" * (size // 2))
            elif i == 3:  # as long as before, other bytes where the weights were
                with open(path, "r+b") as f:
                    f.truncate(0)
                    f.write(b"\xa5" * size)
            elif i == 4:
                os.remove(path)
            try:
                status, doc, _ = srv.json("POST", "/v2/models/mlp/infer", infer_body(inputs[i]))
            except OSError as e:  # the server died under the request
                status, doc = None, repr(e)
                try:
                    srv.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            alive = srv.proc.poll() is None
            got = np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(2, 8) \
                if status == 200 and isinstance(doc, dict) else None
            check(f"{step}: the same answer, server alive",
                  alive and got is not None and np.allclose(got, expected[i], rtol=1e-4, atol=1e-5),
                  (status, doc if got is None else None, srv.proc.poll()))
            if not alive:
                break
        # a signal before our SIGTERM (SIGBUS: -7) is the failure this test is about
        died = srv.proc.poll()
        check("the server was not killed by a signal", died is None, f"exit {died}")
        if died is None:
            status, _, _ = srv.json("GET", "/v2/models/mlp/ready")
            check("the model is still ready", status == 200, status)
    finally:
        code = srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
