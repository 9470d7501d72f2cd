#!/usr/bin/python3
"""`celer serve` with one allocation failed on purpose (CELER_FAIL_ALLOC_AT=N, src/base), N taken
across start-up and the request path: every run either refuses to start with a message (exit 1)
or serves, answering each request with a well-formed status (an error where the failure hit),
and exits 0 on SIGTERM; never a signal, a hang, or (under ASan) a leak.

usage: test_alloc_fail.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import free_port, check, summary  # noqa: E402

BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                               "data": [0.5] * 16}]}).encode()
REQUESTS = [
    ("POST", "/v2/models/mlp/infer", BODY),
    ("POST", "/v1/models/mlp:predict", json.dumps({"instances": [[0.5] * 16]}).encode()),
    ("POST", "/v2/models/mlp/infer", b"{\"inputs\": [}"),
    ("GET", "/v2/models/mlp", None),
    ("GET", "/metrics", None),
    ("POST", "/v2/repository/index", b""),
]
STATUSES = {200, 400, 404, 413, 500, 503}


def run(celer, repo, n):
    """Returns a list of problems for one run with allocation n failed."""
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([celer, "serve", "--model-repository", repo, "--http-address", "127.0.0.1",
                             "--http-port", str(port), "--grpc-port", "0", "--workers", "1", "--quiet",
                             "--drain-delay-secs", "0"],
                            stdout=log, stderr=log, env=dict(os.environ, CELER_FAIL_ALLOC_AT=str(n)))
    problems, up = [], False
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None and not up:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/v2/health/live")
            up = c.getresponse().status == 200
            c.close()
        except OSError:
            time.sleep(0.05)
    if up:
        for method, path, body in REQUESTS:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request(method, path, body=body)
                r = c.getresponse()
                data = r.read()
                if r.status not in STATUSES:
                    problems.append(f"{path}: status {r.status}")
                elif r.status >= 400 and path != "/metrics":
                    try:
                        json.loads(data)["error"]
                    except (ValueError, KeyError, TypeError):
                        problems.append(f"{path}: {r.status} without a JSON error: {data[:100]!r}")
                c.close()
            except (OSError, http.client.HTTPException):
                pass  # the failed allocation was the connection's own: closed without an answer
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "hung"
    log.seek(0)
    out = log.read().decode(errors="replace")
    if code not in (0, 1) or (code == 1 and up) or (code == 1 and "error" not in out):
        problems.append(f"exit {code} (served: {up}): {out[-1500:]}")
    return problems


def main():
    celer, src = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="celer-allocfail-")
    try:
        repo = os.path.join(tmp, "repository")
        os.makedirs(repo)
        shutil.copytree(os.path.join(src, "mlp"), os.path.join(repo, "mlp"))
        points = list(range(1, 81))  # start-up and these requests make about 45 counted allocations
        bad = {}
        for n in points:
            problems = run(celer, repo, n)
            if problems:
                bad[n] = problems
        check(f"{len(points)} runs, allocation N failed (N from 1 to {points[-1]}): each answers or refuses "
              "to start cleanly", not bad, bad)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
