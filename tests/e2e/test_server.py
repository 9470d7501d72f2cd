#!/usr/bin/python3
"""End-to-end tests of `celer serve`: starts the real server on loopback on a copy of the example
repository and speaks HTTP to it (standard library only, plus numpy/onnx for reference outputs).

usage: test_server.py CELER_BIN EXAMPLE_REPOSITORY
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnx
from onnx import numpy_helper

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
RESULTS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, repo, *extra, env=None):
        env_extra = env or {}
        self.port = free_port()
        # the server appends (O_APPEND) and we read through a handle of our own: a shared file
        # offset would let our reads move where the server writes
        fd, self.log_path = tempfile.mkstemp(prefix="celer-e2e-log-")
        os.close(fd)
        atexit.register(lambda path=self.log_path: os.path.exists(path) and os.remove(path))
        self.log = open(self.log_path, "ab")
        args = [CELER, "serve", "--model-repository", repo, "--http-address", "127.0.0.1", "--workers", "2"]
        # gRPC off unless a test asks for it (`extra` comes after and wins): its default port, 8001,
        # would collide between servers of tests running at once. No drain delay (5 s by default):
        # SIGTERM closes the listeners at once unless a test asks for one (test_drain.py).
        if env is None:
            args += ["--http-port", str(self.port), "--grpc-port", "0", "--drain-delay-secs", "0"]
        else:
            env = dict({"CELER_DRAIN_DELAY_SECS": "0"}, **os.environ)
            env.update(CELER_HTTP_PORT=str(self.port), CELER_GRPC_PORT="0", **env_extra)
        self.proc = subprocess.Popen(args + list(extra), stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.request("GET", "/v2/health/live")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("server did not start: " + self.output())

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def connection(self):
        """A new connection to the server (a subclass may make it HTTPS)."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None):
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            conn.close()

    def json(self, method, path, doc=None):
        status, body, headers = self.request(method, path, None if doc is None else json.dumps(doc).encode())
        try:
            return status, json.loads(body) if body else None, headers
        except ValueError:
            return status, body, headers

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1
        finally:
            self.log.close()


def settled_stats(srv, model):
    """The model's statistics entry once its last execution's batch_stats are in ({} when it has
    none): they are counted right after the execution's requests are answered (as Triton's
    backends report them), so a client reading at once may see them a few microseconds late."""
    deadline = time.time() + 5
    while True:
        status, doc, _ = srv.json("GET", f"/v2/models/{model}/stats")
        s = doc["model_stats"][0] if status == 200 and doc.get("model_stats") else {}
        if not s or sum(b["compute_infer"]["count"] for b in s["batch_stats"]) == s["execution_count"] \
                or time.time() > deadline:
            return s
        time.sleep(0.01)


def check_stopped(srv, what=""):
    """Stops srv with SIGTERM and checks it exited 0 with no sanitizer report in its log."""
    code = srv.stop()
    log = srv.output()
    suffix = f" ({what})" if what else ""
    check("SIGTERM exits 0" + suffix, code == 0, log[-2000:])
    check("no sanitizer report" + suffix, "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


def summary():
    """Prints the closing line ("N passed, M failed") and returns the exit code."""
    passed = sum(RESULTS)
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    return 0 if passed == len(RESULTS) else 1


def check(name, cond, detail=""):
    RESULTS.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)


def mlp_reference(repo, x):
    m = onnx.load(os.path.join(repo, "mlp", "1", "model.onnx"))
    w = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    return h @ w["fc2.weight"] + w["fc2.bias"]


def infer_body(x, **extra):
    doc = {"inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32",
                       "data": x.flatten().tolist()}]}
    doc.update(extra)
    return doc


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    # a broken model must not stop the server or the others
    os.makedirs(os.path.join(repo, "broken", "1"))
    with open(os.path.join(repo, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"this is not an onnx file")
    # version policies: "all" serves both versions, the default (latest 1) only the newest
    for name, config in (("all_versions", 'version_policy: { all: {} }\n'), ("latest_only", None)):
        for version in ("1", "2"):
            os.makedirs(os.path.join(repo, name, version))
            shutil.copy(os.path.join(repo, "mlp", "1", "model.onnx"), os.path.join(repo, name, version, "model.onnx"))
        if config:
            with open(os.path.join(repo, name, "config.pbtxt"), "w") as f:
                f.write(config)
    srv = Server(repo, "--max-body-bytes", "1048576")
    rng = np.random.default_rng(7)
    try:
        status, _, _ = srv.request("GET", "/v2/health/live")
        check("health live", status == 200, status)
        status, _, _ = srv.request("GET", "/v2/health/ready")
        check("health ready is 503 while a model is unavailable", status == 503, status)
        status, doc, _ = srv.json("GET", "/v2")
        check("server metadata", status == 200 and doc["name"] == "celer" and "extensions" in doc, doc)
        status, doc, _ = srv.json("GET", "/v2/models/mlp")
        check("model metadata", status == 200 and doc["inputs"][0]["name"] == "features"
              and doc["inputs"][0]["datatype"] == "FP32" and doc["inputs"][0]["shape"] == [-1, 16], doc)
        status, doc, _ = srv.json("GET", "/v2/models/mlp/versions/1/ready")
        check("model ready", status == 200, (status, doc))
        _, all_meta, _ = srv.json("GET", "/v2/models/all_versions")
        _, latest_meta, _ = srv.json("GET", "/v2/models/latest_only")
        s1 = srv.request("GET", "/v2/models/all_versions/versions/1/ready")[0]
        s2 = srv.request("GET", "/v2/models/latest_only/versions/1/ready")[0]
        check("version policies all and latest", all_meta.get("versions") == ["1", "2"] and latest_meta.get("versions")
              == ["2"] and s1 == 200 and s2 == 404, (all_meta, latest_meta, s1, s2))
        status, doc, _ = srv.json("GET", "/v2/models/mlp/config")
        check("model config", status == 200 and doc.get("max_batch_size") == 64, doc)
        status, doc, _ = srv.json("GET", "/v2/models/identity/config")
        check("config completed from ONNX", status == 200 and doc.get("max_batch_size", 0) > 0, doc)

        x = rng.standard_normal((3, 16)).astype(np.float32)
        ref = mlp_reference(repo, x)
        status, doc, _ = srv.json("POST", "/v2/models/mlp/infer", infer_body(x, id="req-1"))
        ok = status == 200 and doc["outputs"][0]["shape"] == [3, 8] and doc["id"] == "req-1"
        got = np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(3, 8) if ok else None
        check("infer JSON matches numpy", ok and np.abs(got - ref).max() <= 1e-5 * max(1, np.abs(ref).max()), doc)
        nested = {"inputs": [{"name": "features", "shape": [3, 16], "datatype": "FP32", "data": x.tolist()}]}
        status, doc, _ = srv.json("POST", "/v2/models/mlp/versions/1/infer", nested)
        check("infer nested data with version", status == 200 and np.allclose(
            np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(3, 8), ref, atol=1e-5), (status, doc))

        # binary extension: input binary, output binary
        header = json.dumps({"inputs": [{"name": "features", "shape": [3, 16], "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "outputs": [{"name": "scores", "parameters": {"binary_data": True}}]}).encode()
        status, body, headers = srv.request("POST", "/v2/models/mlp/infer", header + x.tobytes(),
                                            {"Inference-Header-Content-Length": str(len(header)),
                                             "Content-Type": "application/octet-stream"})
        hl = int(headers.get("Inference-Header-Content-Length", "0"))
        ok = status == 200 and 0 < hl < len(body)
        if ok:
            meta = json.loads(body[:hl])
            out = np.frombuffer(body[hl:], dtype=np.float32).reshape(3, 8)
            ok = meta["outputs"][0]["parameters"]["binary_data_size"] == 96 and np.allclose(out, ref, atol=1e-5)
        check("binary tensor extension in and out", ok, (status, headers, body[:200]))

        # raw form: the whole body is the single input's bytes; the batch dim comes from its length
        status, body, headers = srv.request("POST", "/v2/models/mlp/infer", x.tobytes(),
                                            {"Inference-Header-Content-Length": "0",
                                             "Content-Type": "application/octet-stream"})
        doc = json.loads(body) if status == 200 else body
        check("raw octet-stream body", status == 200 and np.allclose(
            np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(3, 8), ref, atol=1e-5), (status, body[:200]))

        status, doc, _ = srv.json("POST", "/v1/models/mlp:predict", {"instances": x.tolist()})
        check("v1 predict", status == 200 and np.allclose(np.array(doc["predictions"], dtype=np.float32), ref, atol=1e-5),
              (status, doc))

        # errors: status and a JSON body naming the problem
        cases = [
            ("unknown model", "POST", "/v2/models/nope/infer", json.dumps(infer_body(x)).encode(), 404, "nope"),
            ("unknown version", "POST", "/v2/models/mlp/versions/9/infer", json.dumps(infer_body(x)).encode(), 404, "9"),
            ("unavailable model", "POST", "/v2/models/broken/infer", json.dumps(infer_body(x)).encode(), 503, "broken"),
            ("wrong method", "GET", "/v2/models/mlp/infer", None, 405, "GET"),
            ("unknown endpoint", "GET", "/v3/nothing", None, 404, "/v3"),
            ("malformed JSON", "POST", "/v2/models/mlp/infer", b'{"inputs": [', 400, ""),
            ("garbage body", "POST", "/v2/models/mlp/infer", bytes(range(256)) * 4, 400, ""),
            ("wrong datatype", "POST", "/v2/models/mlp/infer", json.dumps(
                {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "INT64", "data": [1] * 16}]}).encode(),
             400, "INT64"),
            ("wrong element count", "POST", "/v2/models/mlp/infer", json.dumps(
                {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 15}]}).encode(),
             400, "15"),
            ("wrong shape", "POST", "/v2/models/mlp/infer", json.dumps(
                {"inputs": [{"name": "features", "shape": [1, 15], "datatype": "FP32", "data": [1.0] * 15}]}).encode(),
             400, "features"),
            ("unknown input", "POST", "/v2/models/mlp/infer", json.dumps(
                {"inputs": [{"name": "feat", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}]}).encode(),
             400, "feat"),
            ("unknown output", "POST", "/v2/models/mlp/infer", json.dumps(
                infer_body(x, outputs=[{"name": "nope"}])).encode(), 400, "nope"),
            ("too large", "POST", "/v2/models/mlp/infer", b"[" + b"1," * 600000 + b"1]", 413,
             "request JSON size of 1200003 bytes exceeds the maximum allowed input size of 1048576 bytes"),
        ]
        for name, method, path, body, want, needle in cases:
            status, resp, _ = srv.request(method, path, body)
            try:
                msg = json.loads(resp)["error"]
            except (ValueError, KeyError, TypeError):
                msg = None
            check(f"error: {name} -> {want}", status == want and msg is not None and needle in msg, (status, resp[:300]))

        # truncated bodies at many points and NaN data never crash the server
        good = json.dumps(infer_body(x)).encode()
        codes = set()
        for cut in range(0, len(good), max(1, len(good) // 60)):
            codes.add(srv.request("POST", "/v2/models/mlp/infer", good[:cut])[0])
        check("truncated bodies are 400", codes == {400}, codes)
        nan_body = b'{"inputs":[{"name":"features","shape":[1,16],"datatype":"FP32","data":[' + b",".join(
            [b"NaN"] * 16) + b"]}]}"
        status, doc, _ = srv.json("POST", "/v2/models/mlp/infer", json.loads(nan_body.decode().replace("NaN", "0")))
        status2, _, _ = srv.request("POST", "/v2/models/mlp/infer", nan_body)
        check("NaN-filled input is served", status == 200 and status2 == 200, (status, status2))

        # pipelining: several requests written at once on one keep-alive connection
        body = json.dumps(infer_body(x)).encode()
        req = b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall(req * 3 + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        data = b""
        try:
            while data.count(b"HTTP/1.1 ") < 4:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        sock.close()
        status, _, headers = srv.request("GET", "/v2/models/mlp/infer")
        check("405 names the allowed method", status == 405 and headers.get("Allow") == "POST", headers)
        check("pipelined requests on one connection", data.count(b"HTTP/1.1 200") == 4, data[:300])

        # concurrency: every request answered correctly
        failures = []

        def worker(seed):
            r = np.random.default_rng(seed)
            for _ in range(40):
                xi = r.standard_normal((1 + seed % 3, 16)).astype(np.float32)
                st, d, _ = srv.json("POST", "/v2/models/mlp/infer", infer_body(xi))
                if st != 200 or not np.allclose(np.array(d["outputs"][0]["data"], dtype=np.float32).reshape(-1, 8),
                                                mlp_reference(repo, xi), atol=1e-5):
                    failures.append((st, d))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("8 concurrent clients x 40 requests", not failures, failures[:2])

        # repository API
        status, doc, _ = srv.json("POST", "/v2/repository/index", {})
        names = {(e["name"], e["state"]) for e in doc} if status == 200 else set()
        check("repository index", ("mlp", "READY") in names and ("broken", "UNAVAILABLE") in names, doc)
        broken_reason = [e.get("reason", "") for e in doc if e["name"] == "broken"] if status == 200 else []
        check("unavailable model has a reason", broken_reason and broken_reason[0], doc)
        status, _, _ = srv.json("POST", "/v2/repository/models/identity/unload")
        status2, _, _ = srv.json("POST", "/v2/models/identity/infer",
                                 {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
        check("unload", status == 200 and status2 == 404, (status, status2))
        status, _, _ = srv.json("POST", "/v2/repository/models/identity/load")
        status2, doc, _ = srv.json("POST", "/v2/models/identity/infer",
                                   {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
        check("load", status == 200 and status2 == 200 and doc["outputs"][0]["data"] == [1, 2, 3, 4], (status, status2, doc))

        status, body, headers = srv.request("GET", "/metrics")
        text = body.decode()
        check("metrics", status == 200 and "celer_inference_requests_total{" in text
              and "celer_inference_request_duration_seconds_bucket" in text and "process_resident_memory_bytes" in text,
              text[:500])
        status, doc, _ = srv.json("GET", "/v2/models/mlp/stats")
        check("statistics", status == 200 and doc["model_stats"][0]["inference_stats"]["success"]["count"] > 0, doc)
        log = srv.output()
        check("access log", "POST /v2/models/mlp/infer" in log and " 200 " in log, log[-500:])
    finally:
        code = srv.stop()
        check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    # flags: --help documents each with its environment variable and default; the environment
    # configures the server (port here), and the access log can be JSON lines
    help_text = subprocess.run([CELER, "serve", "--help"], capture_output=True, text=True).stdout
    check("serve --help lists flags, env variables and defaults", "--model-repository" in help_text
          and "CELER_HTTP_PORT" in help_text and "default 8000" in help_text, help_text[:300])
    bad = subprocess.run([CELER, "serve", "--model-repository", REPO_SRC, "--http-port", "x"], capture_output=True, text=True)
    check("a bad flag value is one clear error", bad.returncode != 0 and "--http-port" in bad.stderr, bad.stderr)
    srv = Server(REPO_SRC, "--log-format", "json", env={})
    try:
        _, _, headers = srv.request("GET", "/v2/health/live", headers={"X-Request-Id": "abc-123"})
        check("X-Request-Id is echoed", headers.get("X-Request-Id") == "abc-123", headers)
        entry = {}
        for _ in range(500):  # the line is written once the response has gone out (slow when loaded)
            lines = [ln for ln in srv.output().splitlines() if ln.startswith("{") and "abc-123" in ln]
            if lines:
                entry = json.loads(lines[-1])
                break
            time.sleep(0.02)
        check("port from the environment, JSON access log with the request id",
              entry.get("path") == "/v2/health/live" and entry.get("request_id") == "abc-123"
              and entry.get("status") == 200, srv.output()[-500:])
    finally:
        srv.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
