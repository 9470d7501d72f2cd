#!/usr/bin/python3
"""A small KServe v2 / Triton server of our own, for fault injection in the tests of remote models
(issue 22): an upstream that can be made slow, failing, dropping, wrong or hung on demand.

Written from the protocol documents (kserve docs/predict-api/v2/required_api.md, Triton's
docs/protocol/extension_binary_data.md and tests/grpc/proto), not from any server's code. Debian
packages only: the standard library's http.server, numpy, and python3-grpcio with the
GRPCInferenceService stubs generated at start from tests/grpc/proto (python3-grpc-tools).

    kserve_stub.py [--port 0] [--grpc-port 0] [--latency-ms 0] [--faults JSON] [--seed 1]

Prints one JSON line on stdout when both ports listen: {"http_port": P, "grpc_port": G}
(0 = a free port; --grpc-port -1 = no gRPC). Runs until SIGTERM/SIGINT.

Protocol. HTTP/1.1 with keep-alive: GET /v2/health/live|ready, GET /v2, GET /v2/models/M
[/versions/V] (metadata), .../ready, .../config, POST .../infer with JSON data or Triton's binary
tensors (request header Inference-Header-Content-Length, input parameter binary_data_size;
`binary_data_output` for all outputs or `binary_data` per requested output, answered with the same
header and application/octet-stream). gRPC: ServerLive, ServerReady, ServerMetadata, ModelReady,
ModelMetadata, ModelConfig, ModelInfer (raw_input_contents or typed contents in; always
raw_output_contents out, as Triton). Versions: every model has version "1" only.

Models (MODELS below):
  identity  x FP32 [-1,4] -> y FP32 [-1,4], the input back (the names of examples/repository's)
  mlp       features FP32 [-1,16] -> scores FP32 [-1,8]: relu(x @ w1 + b1) @ w2 + b2, weights from
            mlp_weights(seed) (numpy default_rng(seed)), so a test computes the answer itself
  upper     text BYTES [-1] -> upper BYTES [-1], each element upper-cased (ASCII)

Fault injection: a configuration (FAULTS, defaults below) set at start with --faults/--latency-ms
and replaced at run time with POST /stub/faults {json} (keys left out take their defaults; GET
/stub/faults reads it). It applies to the inference calls (HTTP and gRPC) of every model, or only
of those in "models" when given:
  latency_ms, jitter_ms   sleep latency_ms + uniform(0, jitter_ms) before answering
  error_rate              fraction of calls answered with error_status: 500 (gRPC INTERNAL) or
                          503 (gRPC UNAVAILABLE)
  error_count             the next N calls fail that way (counts down; deterministic retries)
  drop, drop_rate         "before": the connection is closed without an answer; "mid": the status
                          line, headers and half the body are sent, then the connection is closed.
                          gRPC cannot drop its shared HTTP/2 connection from grpcio's server: it
                          aborts the call with UNAVAILABLE ("before") or DATA_LOSS ("mid") instead
  wrong                   "shape": outputs one element short in their shape and data; "datatype":
                          outputs declared FP64 (data unchanged, so binary sizes disagree)
  hang                    never answer: the call waits until hang is cleared or the client goes
                          (then the HTTP connection is closed unanswered; gRPC: CANCELLED)
  ready                   false: server and model readiness answer 503 / ready false
Counters: GET /stub/stats {"infer": {model: calls}, "http": n, "grpc": n, "errors_injected": n,
"dropped": n, "hung": n, "in_flight": n, "max_in_flight": n, "requests": n, "last_headers":
{lower-cased name: value} (the last /v2 request's headers or gRPC metadata, e.g. traceparent,
authorization), "last_infer_headers": {...} (the same of the last inference call), "endpoints":
{live, ready, server_metadata, model_metadata, model_ready, model_config, infer: calls over both
protocols}}; POST /stub/stats/reset zeroes them. Faults apply
to inference only (ready aside): health, metadata and config always answer at once.
Request bodies: Content-Length or chunked, at most 64 MiB. Threads: one per HTTP connection, 256
for gRPC calls, so the stub does not cap the concurrency of a test (a hung call holds one).
"""
import argparse
import importlib
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grpc", "proto")
MAX_BODY = 64 << 20  # a request body above this is refused (413): the stub buffers bodies whole

# KServe datatype -> numpy dtype (BYTES: object arrays of bytes)
DTYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
          "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
          "FP32": np.float32, "FP64": np.float64, "BYTES": object}
# gRPC InferTensorContents field per datatype
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
            "FP64": "fp64_contents", "BYTES": "bytes_contents"}


class StubError(Exception):
    """An error answered to the client: HTTP status and message (gRPC: INVALID_ARGUMENT/NOT_FOUND)."""
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Dropped(Exception):
    """The fault asks to drop the connection ("before" or "mid")."""
    def __init__(self, where):
        super().__init__(where)
        self.where = where


class Hung(Exception):
    """A hung call released (fault cleared or server stopping): close without an answer."""


def mlp_weights(seed=1):
    """The mlp model's weights: (w1 [16,32], b1 [32], w2 [32,8], b2 [8]), FP32, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((16, 32)).astype(np.float32) * np.float32(0.25)
    b1 = rng.standard_normal(32).astype(np.float32) * np.float32(0.1)
    w2 = rng.standard_normal((32, 8)).astype(np.float32) * np.float32(0.25)
    b2 = rng.standard_normal(8).astype(np.float32) * np.float32(0.1)
    return w1, b1, w2, b2


def mlp_forward(x, weights):
    w1, b1, w2, b2 = weights
    return (np.maximum(x @ w1 + b1, 0) @ w2 + b2).astype(np.float32)


def make_models(seed):
    weights = mlp_weights(seed)
    return {
        "identity": {"inputs": [("x", "FP32", [-1, 4])], "outputs": [("y", "FP32", [-1, 4])], "max_batch_size": 0,
                     "run": lambda t: {"y": t["x"]}},
        "mlp": {"inputs": [("features", "FP32", [-1, 16])], "outputs": [("scores", "FP32", [-1, 8])],
                "max_batch_size": 0, "run": lambda t: {"scores": mlp_forward(t["features"], weights)}},
        "upper": {"inputs": [("text", "BYTES", [-1])], "outputs": [("upper", "BYTES", [-1])], "max_batch_size": 0,
                  "run": lambda t: {"upper": np.array([bytes(v).upper() for v in t["text"].flatten()],
                                                      dtype=object).reshape(t["text"].shape)}},
    }


# the calls counted in stats["endpoints"], HTTP and gRPC together (infer: also per model in stats["infer"])
ENDPOINTS = ("live", "ready", "server_metadata", "model_metadata", "model_ready", "model_config", "infer")
DEFAULT_FAULTS = {"models": None, "latency_ms": 0.0, "jitter_ms": 0.0, "error_rate": 0.0, "error_status": 500,
                  "error_count": 0, "drop": None, "drop_rate": 1.0, "wrong": None, "hang": False, "ready": True}


class Stub:
    """The models, the fault configuration and the counters, shared by the HTTP and gRPC sides
    (one lock; the stub is for tests, not for speed)."""

    def __init__(self, seed, faults):
        self.models = make_models(seed)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when faults change or on stop
        self.stopping = False
        self.set_faults(faults)
        self.reset_stats()

    def set_faults(self, doc):
        unknown = set(doc) - set(DEFAULT_FAULTS)
        if unknown:
            raise StubError(400, f"unknown fault keys {sorted(unknown)}; expected some of {sorted(DEFAULT_FAULTS)}")
        faults = dict(DEFAULT_FAULTS, **doc)
        if faults["drop"] not in (None, "before", "mid") or faults["wrong"] not in (None, "shape", "datatype") \
                or faults["error_status"] not in (500, 503):
            raise StubError(400, "drop: null/before/mid, wrong: null/shape/datatype, error_status: 500/503")
        with self.changed:
            self.faults = faults
            self.changed.notify_all()

    def reset_stats(self):
        with self.lock:
            self.stats = {"infer": {m: 0 for m in self.models}, "http": 0, "grpc": 0, "requests": 0,
                          "errors_injected": 0, "dropped": 0, "hung": 0, "in_flight": 0, "max_in_flight": 0,
                          "endpoints": {k: 0 for k in ENDPOINTS}, "last_headers": {}, "last_infer_headers": {}}

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    def saw(self, headers, infer=False):
        with self.lock:
            self.stats["requests"] += 1
            self.stats["last_headers"] = {k.lower(): v for k, v in headers}
            if infer:  # what a client's readiness probes between two calls do not replace
                self.stats["last_infer_headers"] = self.stats["last_headers"]

    def count(self, endpoint):
        with self.lock:
            self.stats["endpoints"][endpoint] += 1

    def ready(self):
        with self.lock:
            return self.faults["ready"]

    def model(self, name, version):
        if name not in self.models:
            raise StubError(404, f"unknown model '{name}'; this stub serves {sorted(self.models)}")
        if version not in (None, "", "1"):
            raise StubError(404, f"model '{name}' has version 1 only, not '{version}'")
        return self.models[name]

    def metadata(self, name):
        m = self.models[name]
        return {"name": name, "versions": ["1"], "platform": "stub",
                "inputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in m["inputs"]],
                "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in m["outputs"]]}

    def config(self, name):
        m = self.models[name]

        def io(n, d, s):
            return {"name": n, "data_type": "TYPE_" + ("STRING" if d == "BYTES" else d), "dims": s}
        return {"name": name, "platform": "stub", "backend": "stub", "max_batch_size": m["max_batch_size"],
                "input": [io(*t) for t in m["inputs"]], "output": [io(*t) for t in m["outputs"]]}

    def infer(self, name, tensors, protocol, alive=lambda: True):
        """Runs the model on {input name: array} under the faults; {output: array} and the declared
        datatypes {output: datatype}. Raises StubError (injected or bad request), Dropped or Hung."""
        model = self.model(name, None)
        with self.lock:
            self.stats["endpoints"]["infer"] += 1
            self.stats["infer"][name] += 1
            self.stats[protocol] += 1
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])
            f = self.faults
            applies = f["models"] is None or name in f["models"]
        try:
            if applies:
                self.inject(f, alive)
            for n, d, s in model["inputs"]:
                if n not in tensors:
                    raise StubError(400, f"model '{name}' expects input '{n}', got {sorted(tensors)}")
                t = tensors[n]
                if (d == "BYTES") != (t.dtype == object) or (d != "BYTES" and t.dtype != DTYPES[d]):
                    raise StubError(400, f"input '{n}' must be {d}")
                if len(t.shape) != len(s) or any(w != -1 and w != g for w, g in zip(s, t.shape)):
                    raise StubError(400, f"input '{n}' must have shape {s}, got {list(t.shape)}")
            outputs = model["run"](tensors)
            types = {n: d for n, d, _ in model["outputs"]}
            if applies and f["wrong"] == "shape":
                outputs = {k: v.flatten()[:-1] if v.size else v.flatten() for k, v in outputs.items()}
            elif applies and f["wrong"] == "datatype":
                types = {k: "FP64" if d != "FP64" else "FP32" for k, d in types.items()}
            return outputs, types
        finally:
            with self.lock:
                self.stats["in_flight"] -= 1

    def inject(self, f, alive):
        delay = f["latency_ms"] + random.uniform(0, f["jitter_ms"])
        if delay > 0:
            time.sleep(delay / 1e3)
        if f["hang"]:
            with self.changed:
                self.stats["hung"] += 1
                while self.faults["hang"] and not self.stopping and alive():
                    self.changed.wait(0.1)
            raise Hung()
        with self.lock:
            fail = self.faults["error_count"] > 0
            if fail:
                self.faults["error_count"] -= 1
            fail = fail or random.random() < f["error_rate"]
            if fail:
                self.stats["errors_injected"] += 1
        if fail:
            raise StubError(f["error_status"], f"injected error {f['error_status']}")
        if f["drop"] and random.random() < f["drop_rate"]:
            with self.lock:
                self.stats["dropped"] += 1
            raise Dropped(f["drop"])

    def stop(self):
        with self.changed:
            self.stopping = True
            self.changed.notify_all()


# ---- tensors -----------------------------------------------------------------------------------
def bytes_elements(raw):
    """Triton's BYTES serialization (4-byte little-endian length, then the bytes) -> list of bytes."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise StubError(400, "BYTES data cut inside an element's 4-byte length")
        (n,) = struct.unpack_from("<I", raw, i)
        if i + 4 + n > len(raw):
            raise StubError(400, f"BYTES element of {n} bytes runs past the data's end")
        out.append(raw[i + 4:i + 4 + n])
        i += 4 + n
    return out


def serialize_bytes(arr):
    return b"".join(struct.pack("<I", len(v)) + v for v in (bytes(x) for x in arr.flatten()))


def from_raw(raw, datatype, shape):
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        elems = bytes_elements(raw)
        if len(elems) != count:
            raise StubError(400, f"shape {shape} needs {count} BYTES elements, got {len(elems)}")
        return np.array(elems + [], dtype=object).reshape(shape)
    dt = np.dtype(DTYPES[datatype]).newbyteorder("<")
    if len(raw) != count * dt.itemsize:
        raise StubError(400, f"shape {shape} of {datatype} needs {count * dt.itemsize} bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=dt).astype(DTYPES[datatype]).reshape(shape)


def to_raw(arr, datatype):
    if datatype == "BYTES":
        return serialize_bytes(arr)
    return np.ascontiguousarray(arr).astype(np.dtype(arr.dtype).newbyteorder("<")).tobytes()


def check_input(inp):
    for key in ("name", "datatype", "shape"):
        if key not in inp:
            raise StubError(400, f"an input needs '{key}': got keys {sorted(inp)}")
    if inp["datatype"] not in DTYPES:
        raise StubError(400, f"unknown datatype '{inp['datatype']}'; expected one of {sorted(DTYPES)}")


# ---- HTTP --------------------------------------------------------------------------------------
MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/config|/infer)?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "kserve-stub"
    stub = None  # set by serve_http

    def log_message(self, *args):  # quiet
        pass

    def send(self, status, body=b"", ctype="application/json", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, doc):
        self.send(status, json.dumps(doc).encode())

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.chunked_body()
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise StubError(413, f"body of {n} bytes; at most {MAX_BODY}")
        return self.rfile.read(n) if n else b""

    def chunked_body(self):
        """A Transfer-Encoding: chunked body, whole (capped at MAX_BODY)."""
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise StubError(400, f"a chunk size in hexadecimal, got {line[:40]!r}")
            total += size
            if total > MAX_BODY:
                raise StubError(413, f"chunked body over {MAX_BODY} bytes")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after the chunk

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        stub = self.stub
        path = self.path.split("?", 1)[0]
        try:
            body = self.body()
            if path.startswith("/stub/"):
                return self.admin(method, path, body)
            stub.saw(self.headers.items(), method == "POST" and path.endswith("/infer"))
            if method == "GET" and path == "/v2/health/live":
                stub.count("live")
                return self.send(200)
            if method == "GET" and path == "/v2/health/ready":
                stub.count("ready")
                return self.send(200 if stub.ready() else 503)
            if method == "GET" and path == "/v2":
                stub.count("server_metadata")
                return self.send_json(200, {"name": "kserve-stub", "version": "1",
                                            "extensions": ["binary_tensor_data", "model_configuration"]})
            m = MODEL_PATH.match(path)
            if not m:
                raise StubError(404, f"no endpoint {method} {path}")
            name, version, what = m.group(1), m.group(2), m.group(3) or ""
            stub.model(name, version)
            if method == "GET" and what == "":
                stub.count("model_metadata")
                return self.send_json(200, stub.metadata(name))
            if method == "GET" and what == "/ready":
                stub.count("model_ready")
                return self.send(200 if stub.ready() else 503)
            if method == "GET" and what == "/config":
                stub.count("model_config")
                return self.send_json(200, stub.config(name))
            if method == "POST" and what == "/infer":
                return self.infer(name, body)
            raise StubError(405 if what else 404, f"no endpoint {method} {path}")
        except StubError as e:
            self.send_json(e.status, {"error": str(e)})
        except Hung:
            self.close_now()
        except Dropped:
            self.close_now()

    def close_now(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def admin(self, method, path, body):
        stub = self.stub
        if path == "/stub/faults" and method == "POST":
            try:
                doc = json.loads(body or b"{}")
            except ValueError as e:
                raise StubError(400, f"faults must be a JSON object: {e}")
            if not isinstance(doc, dict):
                raise StubError(400, "faults must be a JSON object")
            stub.set_faults(doc)
        if path == "/stub/faults" and method in ("GET", "POST"):
            with stub.lock:
                return self.send_json(200, stub.faults)
        if path == "/stub/stats" and method == "GET":
            return self.send_json(200, stub.snapshot())
        if path == "/stub/stats/reset" and method == "POST":
            stub.reset_stats()
            return self.send_json(200, stub.snapshot())
        raise StubError(404, f"no admin endpoint {method} {path}; /stub/faults, /stub/stats, /stub/stats/reset")

    def infer(self, name, body):
        hlen = self.headers.get("Inference-Header-Content-Length")
        try:
            n = int(hlen) if hlen is not None else len(body)
            if not 0 <= n <= len(body):
                raise ValueError(f"{n} outside the body's {len(body)} bytes")
            doc = json.loads(body[:n])
        except ValueError as e:
            raise StubError(400, f"the inference request must be JSON: {e}")
        binary, tensors = memoryview(body)[n:], {}
        for inp in doc.get("inputs", []):
            check_input(inp)
            size = (inp.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                if size > len(binary):
                    raise StubError(400, f"input '{inp['name']}' has binary_data_size {size}, {len(binary)} bytes left")
                tensors[inp["name"]] = from_raw(bytes(binary[:size]), inp["datatype"], inp["shape"])
                binary = binary[size:]
            else:
                data = np.array(inp.get("data", []), dtype=object).flatten()
                if inp["datatype"] == "BYTES":
                    data = np.array([v.encode() if isinstance(v, str) else v for v in data] + [], dtype=object)
                else:
                    data = data.astype(DTYPES[inp["datatype"]])
                if data.size != int(np.prod(inp["shape"])):
                    raise StubError(400, f"input '{inp['name']}': shape {inp['shape']} but {data.size} elements")
                tensors[inp["name"]] = data.reshape(inp["shape"])
        if len(binary):
            raise StubError(400, f"{len(binary)} bytes of binary data left over after the inputs")
        sock = self.connection

        def alive():  # the client still connected (a hang ends when it goes)
            try:
                sock.setblocking(False)
                try:
                    return sock.recv(1, socket.MSG_PEEK) != b""
                finally:
                    sock.setblocking(True)
            except BlockingIOError:
                return True
            except OSError:
                return False
        try:
            outputs, types = self.stub.infer(name, tensors, "http", alive)
        except Dropped as d:
            if d.where == "mid":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"model_name": "' + name.encode() + b'", "outputs": [')
                self.wfile.flush()
            raise
        all_binary = bool((doc.get("parameters") or {}).get("binary_data_output"))
        wanted = {o["name"]: bool((o.get("parameters") or {}).get("binary_data", all_binary))
                  for o in doc.get("outputs") or []}
        unknown = set(wanted) - set(outputs)
        if unknown:
            raise StubError(400, f"unknown outputs {sorted(unknown)}; model '{name}' has {sorted(outputs)}")
        out_docs, blobs = [], []
        for oname, arr in outputs.items():
            if wanted and oname not in wanted:
                continue
            as_binary = wanted.get(oname, all_binary)
            o = {"name": oname, "datatype": types[oname], "shape": list(arr.shape)}
            real = self.stub.models[name]["outputs"][[t[0] for t in self.stub.models[name]["outputs"]].index(oname)][1]
            if as_binary:
                raw = to_raw(arr, real)
                o["parameters"] = {"binary_data_size": len(raw)}
                blobs.append(raw)
            elif real == "BYTES":
                o["data"] = [bytes(v).decode("utf-8", "replace") for v in arr.flatten()]
            elif real in ("FP32", "FP16"):  # the shortest decimal that reads back as the same float, as celer writes
                o["data"] = [float(str(v)) for v in arr.flatten()]
            else:
                o["data"] = arr.flatten().tolist()
            out_docs.append(o)
        answer = {"model_name": name, "model_version": "1", "outputs": out_docs}
        if "id" in doc:
            answer["id"] = doc["id"]
        head = json.dumps(answer).encode()
        if blobs:
            self.send(200, head + b"".join(blobs), "application/octet-stream",
                      {"Inference-Header-Content-Length": str(len(head))})
        else:
            self.send(200, head)


def serve_http(stub, port):
    handler = type("StubHandler", (Handler,), {"stub": stub})
    # a listen backlog for a client's whole pool opening at once (socketserver's default is 5)
    def handle_error(self, request, client_address):  # a client gone is no error; the rest is printed
        if not isinstance(sys.exc_info()[1], ConnectionError):
            ThreadingHTTPServer.handle_error(self, request, client_address)
    server_class = type("StubHTTPServer", (ThreadingHTTPServer,), {"request_queue_size": 256,
                                                                  "handle_error": handle_error})
    srv = server_class(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---- gRPC --------------------------------------------------------------------------------------
def load_grpc(tmp):
    """grpc and the GRPCInferenceService stubs generated into tmp from tests/grpc/proto."""
    import grpc
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", PROTO_DIR, "--python_out=" + tmp,
                        "--grpc_python_out=" + tmp, "grpc_service.proto", "model_config.proto"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("grpc_tools.protoc failed (python3-grpc-tools): " + r.stderr[-1000:])
    sys.path.insert(0, tmp)
    return grpc, importlib.import_module("grpc_service_pb2"), importlib.import_module("grpc_service_pb2_grpc")


def serve_grpc(stub, port, tmp):
    grpc, pb, pb_grpc = load_grpc(tmp)
    from concurrent import futures
    mc = importlib.import_module("model_config_pb2")
    codes = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED,
             500: grpc.StatusCode.INTERNAL, 503: grpc.StatusCode.UNAVAILABLE}

    def guarded(fn):
        endpoint = {"ServerLive": "live", "ServerReady": "ready", "ServerMetadata": "server_metadata",
                    "ModelReady": "model_ready", "ModelMetadata": "model_metadata", "ModelConfig": "model_config",
                    "ModelInfer": "infer"}[fn.__name__]

        def call(self, request, context):
            stub.saw(context.invocation_metadata(), endpoint == "infer")
            if endpoint != "infer":  # infer is counted by Stub.infer once the model is known
                stub.count(endpoint)
            try:
                return fn(self, request, context)
            except StubError as e:
                context.abort(codes.get(e.status, grpc.StatusCode.UNKNOWN), str(e))
            except Dropped as d:
                context.abort(grpc.StatusCode.UNAVAILABLE if d.where == "before" else grpc.StatusCode.DATA_LOSS,
                              f"injected drop ({d.where})")
            except Hung:
                context.abort(grpc.StatusCode.CANCELLED, "hung call released")
        return call

    class Service(pb_grpc.GRPCInferenceServiceServicer):
        @guarded
        def ServerLive(self, request, context):
            return pb.ServerLiveResponse(live=True)

        @guarded
        def ServerReady(self, request, context):
            return pb.ServerReadyResponse(ready=stub.ready())

        @guarded
        def ServerMetadata(self, request, context):
            return pb.ServerMetadataResponse(name="kserve-stub", version="1",
                                             extensions=["binary_tensor_data", "model_configuration"])

        @guarded
        def ModelReady(self, request, context):
            stub.model(request.name, request.version)
            return pb.ModelReadyResponse(ready=stub.ready())

        @guarded
        def ModelMetadata(self, request, context):
            stub.model(request.name, request.version)
            d = stub.metadata(request.name)
            t = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(name=d["name"], versions=d["versions"], platform=d["platform"],
                                            inputs=[t(**x) for x in d["inputs"]], outputs=[t(**x) for x in d["outputs"]])

        @guarded
        def ModelConfig(self, request, context):
            stub.model(request.name, request.version)
            d = stub.config(request.name)

            def io(cls, x):
                return cls(name=x["name"], data_type=mc.DataType.Value(x["data_type"]), dims=x["dims"])
            cfg = mc.ModelConfig(name=d["name"], platform=d["platform"], backend=d["backend"],
                                 max_batch_size=d["max_batch_size"],
                                 input=[io(mc.ModelInput, x) for x in d["input"]],
                                 output=[io(mc.ModelOutput, x) for x in d["output"]])
            return pb.ModelConfigResponse(config=cfg)

        @guarded
        def ModelInfer(self, request, context):
            stub.model(request.model_name, request.model_version)
            raw = list(request.raw_input_contents)
            if raw and len(raw) != len(request.inputs):
                raise StubError(400, f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
            tensors = {}
            for i, inp in enumerate(request.inputs):
                check_input({"name": inp.name, "datatype": inp.datatype, "shape": list(inp.shape)})
                shape = list(inp.shape)
                if raw:
                    tensors[inp.name] = from_raw(raw[i], inp.datatype, shape)
                else:
                    vals = list(getattr(inp.contents, CONTENTS.get(inp.datatype, "fp32_contents")))
                    arr = np.array(vals + [], dtype=object if inp.datatype == "BYTES" else DTYPES[inp.datatype])
                    if arr.size != int(np.prod(shape)):
                        raise StubError(400, f"input '{inp.name}': shape {shape} but {arr.size} elements")
                    tensors[inp.name] = arr.reshape(shape)
            outputs, types = stub.infer(request.model_name, tensors, "grpc", context.is_active)
            wanted = {o.name for o in request.outputs}
            if wanted - set(outputs):
                raise StubError(400, f"unknown outputs {sorted(wanted - set(outputs))}; model "
                                     f"'{request.model_name}' has {sorted(outputs)}")
            reply = pb.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id)
            real = dict((n, d) for n, d, _ in stub.models[request.model_name]["outputs"])
            for name, arr in outputs.items():
                if wanted and name not in wanted:
                    continue
                reply.outputs.add(name=name, datatype=types[name], shape=list(arr.shape))
                reply.raw_output_contents.append(to_raw(arr, real[name]))
            return reply

    # threads enough that the stub never caps the concurrency a test drives (hung calls hold one each)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256),
                         options=[("grpc.max_receive_message_length", MAX_BODY)])
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Service(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound:
        raise RuntimeError(f"gRPC port {port} not bound")
    server.start()
    return server, bound


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="HTTP port (0: a free one)")
    ap.add_argument("--grpc-port", type=int, default=0, help="gRPC port (0: a free one, -1: no gRPC)")
    ap.add_argument("--seed", type=int, default=1, help="the mlp model's weights: mlp_weights(seed)")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--faults", default="{}", help="the initial fault configuration, JSON (see the docstring)")
    args = ap.parse_args()
    faults = json.loads(args.faults)
    if args.latency_ms:
        faults.setdefault("latency_ms", args.latency_ms)
    stub = Stub(args.seed, faults)
    http_srv = serve_http(stub, args.port)
    grpc_srv, grpc_port = None, -1
    tmp = tempfile.mkdtemp(prefix="kserve-stub-")
    try:
        if args.grpc_port >= 0:
            grpc_srv, grpc_port = serve_grpc(stub, args.grpc_port, tmp)
        print(json.dumps({"http_port": http_srv.server_address[1], "grpc_port": grpc_port}), flush=True)
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    finally:
        stub.stop()
        if grpc_srv:
            grpc_srv.stop(0)
        http_srv.shutdown()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
