#!/usr/bin/python3
"""Overload and connection behaviour of `celer serve`: a full queue answers 503 with Retry-After
at once, request timeouts, a slow client is cut off, and SIGTERM lets queued requests finish.

usage: test_overload.py CELER_BIN EXAMPLE_REPOSITORY"""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, summary  # noqa: E402

# A queue that holds requests for 3 s hoping for a batch of 64, and takes at most 2.
SLOW_CONFIG = """name: "slowq"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "scores" data_type: TYPE_FP32 dims: [ 8 ] } ]
dynamic_batching {
  preferred_batch_size: [ 64 ]
  max_queue_delay_microseconds: 3000000
  default_queue_policy { max_queue_size: 2 allow_timeout_override: true }
}
"""
BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}).encode()


def wait_queue_depth(srv, depth, timeout=10):
    """Waits until slowq's queue holds `depth` requests (read from /metrics)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = srv.request("GET", "/metrics")[1].decode()
        for line in text.splitlines():
            if line.startswith("celer_inference_queue_depth{model=\"slowq\"") and float(line.split()[-1]) == depth:
                return True
        time.sleep(0.02)
    return False


def main():
    tmp = tempfile.mkdtemp(prefix="celer-overload-")
    repo = os.path.join(tmp, "repository")
    os.makedirs(os.path.join(repo, "slowq", "1"))
    shutil.copy(os.path.join(sys.argv[2], "mlp", "1", "model.onnx"), os.path.join(repo, "slowq", "1", "model.onnx"))
    with open(os.path.join(repo, "slowq", "config.pbtxt"), "w") as f:
        f.write(SLOW_CONFIG)
    srv = Server(repo, "--request-timeout-secs", "1", "--quiet")
    code = None
    try:
        results = []

        def send(body=BODY):
            results.append(srv.request("POST", "/v2/models/slowq/infer", body))

        waiting = [threading.Thread(target=send) for _ in range(2)]
        for t in waiting:
            t.start()
        wait_queue_depth(srv, 2)  # both are queued now, waiting for a fuller batch
        t0 = time.time()
        status, body, headers = srv.request("POST", "/v2/models/slowq/infer", BODY)
        elapsed = time.time() - t0
        check("full queue: 503 at once with Retry-After", status == 503 and headers.get("Retry-After") and elapsed < 1.0
              and b"full" in body, (status, body, headers, elapsed))
        for t in waiting:
            t.join()
        check("queued requests complete after the batching delay", [r[0] for r in results] == [200, 200],
              [r[:2] for r in results])

        # a request timeout shorter than the queue delay
        timed = json.loads(BODY)
        timed["parameters"] = {"timeout": 200000}
        status, body, _ = srv.request("POST", "/v2/models/slowq/infer", json.dumps(timed).encode())
        check("request timeout in the queue: 503 naming the timeout", status == 503 and b"timed out" in body, (status, body))

        # a client that sends half a body and stalls is cut off after --request-timeout-secs
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"POST /v2/models/slowq/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + BODY[:20])
        s.settimeout(5)
        t0 = time.time()
        try:
            data = s.recv(4096)
        except socket.timeout:
            data = None
        s.close()
        check("slow client disconnected by the server", data == b"" and time.time() - t0 < 4, (data, time.time() - t0))
        status, _, _ = srv.request("GET", "/v2/health/live")
        check("server still serves after the slow client", status == 200, status)

        # SIGTERM with requests in the queue: they finish, then exit 0
        results.clear()
        waiting = [threading.Thread(target=send) for _ in range(2)]
        for t in waiting:
            t.start()
        wait_queue_depth(srv, 2)
        srv.proc.send_signal(signal.SIGTERM)
        for t in waiting:
            t.join()
        code = srv.proc.wait(timeout=30)
        check("SIGTERM finishes queued requests", [r[0] for r in results] == [200, 200], [r[:2] for r in results])
        check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
    finally:
        if code is None:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
