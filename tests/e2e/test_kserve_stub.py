#!/usr/bin/python3
"""The KServe v2 stub of the remote-model tests (tests/e2e/kserve_stub.py) checked by peers nobody
here wrote: curl + numpy for HTTP JSON and binary tensors, Debian's python3-grpcio for gRPC; and the
same requests sent to a real `celer serve` on the example identity model, compared field by field
(documented differences: server name, platform, extensions). Then each fault mode once.

usage: test_kserve_stub.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import grpc_stubs
from test_server import REPO_SRC, Server, check, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kserve_stub  # noqa: E402  (mlp_weights, mlp_forward: the expected answers)


class Stub:
    """The stub as a process: ports from the JSON line it prints when ready."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "kserve_stub.py"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("stub did not start: " + self.proc.stderr.read()[-2000:])
        ports = json.loads(line)
        self.port, self.grpc_port = ports["http_port"], ports["grpc_port"]

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            conn.close()

    def json(self, method, path, doc=None):
        status, body, _ = self.request(method, path, None if doc is None else json.dumps(doc).encode())
        return status, json.loads(body) if body else None

    def faults(self, **doc):
        status, got = self.json("POST", "/stub/faults", doc)
        assert status == 200, got
        return got

    def stats(self):
        return self.json("GET", "/stub/stats")[1]

    def stop(self):
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1


def curl(port, path, body=None, headers=(), timeout=10):
    """(status, headers dict, body bytes) as curl saw them, or (None, error text, b"")."""
    args = ["curl", "-sS", "-i", "--max-time", str(timeout), f"http://127.0.0.1:{port}{path}"]
    for h in headers:
        args += ["-H", h]
    if body is not None:
        args += ["--data-binary", "@-"]
    r = subprocess.run(args, input=body, capture_output=True, timeout=timeout + 5)
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace"), b""
    head, _, rest = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), hdrs, rest


def binary_request(name, x, out):
    """Triton's binary extension: JSON header + raw little-endian FP32, the output asked binary."""
    head = json.dumps({"id": "bin", "inputs": [{"name": name, "datatype": "FP32", "shape": list(x.shape),
                                                "parameters": {"binary_data_size": x.nbytes}}],
                       "outputs": [{"name": out, "parameters": {"binary_data": True}}]}).encode()
    return head + x.astype("<f4").tobytes(), [f"Inference-Header-Content-Length: {len(head)}",
                                              "Content-Type: application/octet-stream"]


def binary_answer(hdrs, body):
    n = int(hdrs.get("inference-header-content-length", -1))
    doc = json.loads(body[:n])
    return doc, body[n:]


def infer_doc(name, x, **extra):
    doc = {"id": "req-7", "inputs": [{"name": name, "datatype": "FP32", "shape": list(x.shape),
                                      "data": x.flatten().tolist()}]}
    doc.update(extra)
    return doc


def http_checks(stub, celer, x):
    """curl + numpy on both servers: the same answers for identity, field by field."""
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/identity/ready",
                 "/v2/models/identity/versions/1/ready"):
        a, b = curl(stub.port, path)[0], curl(celer.port, path)[0]
        check(f"HTTP {path}: stub {a}, celer {b}", a == b == 200, (a, b))
    s, _, body = curl(stub.port, "/v2")
    doc = json.loads(body)
    check("HTTP server metadata: name, version, extensions", s == 200 and doc["name"] == "kserve-stub"
          and {"binary_tensor_data"} <= set(doc["extensions"]), doc)
    _, _, a = curl(stub.port, "/v2/models/identity")
    _, _, b = curl(celer.port, "/v2/models/identity")
    a, b = json.loads(a), json.loads(b)
    same = {k: (a.get(k), b.get(k)) for k in ("name", "versions", "inputs", "outputs")}
    check("HTTP model metadata: name, versions, inputs, outputs as celer's (platform differs)",
          all(u == v for u, v in same.values()), same)
    _, _, a = curl(stub.port, "/v2/models/identity/config")
    _, _, b = curl(celer.port, "/v2/models/identity/config")
    a, b = json.loads(a), json.loads(b)
    fields = lambda c: [(t["name"], t["data_type"]) for t in c["input"] + c["output"]]  # noqa: E731
    check("HTTP model config: name, inputs and outputs (name, data_type) as celer's", a["name"] == b["name"]
          and fields(a) == fields(b), (a, b))

    body = json.dumps(infer_doc("x", x)).encode()
    sa, _, a = curl(stub.port, "/v2/models/identity/infer", body)
    sb, _, b = curl(celer.port, "/v2/models/identity/infer", body)
    a, b = json.loads(a), json.loads(b)
    keys = ("model_name", "id")
    check("HTTP infer JSON: model_name, id, outputs (name, datatype, shape, data) as celer's",
          sa == sb == 200 and all(a.get(k) == b.get(k) for k in keys)
          and [(o["name"], o["datatype"], o["shape"], o["data"]) for o in a["outputs"]]
          == [(o["name"], o["datatype"], o["shape"], o["data"]) for o in b["outputs"]]
          and np.array_equal(np.array(a["outputs"][0]["data"], np.float32).reshape(x.shape), x), (a, b))

    body, hdrs = binary_request("x", x, "y")
    sa, ha, ra = curl(stub.port, "/v2/models/identity/infer", body, hdrs)
    sb, hb, rb = curl(celer.port, "/v2/models/identity/infer", body, hdrs)
    (da, ba), (db, bb) = binary_answer(ha, ra), binary_answer(hb, rb)
    oa, ob = da["outputs"][0], db["outputs"][0]
    check("HTTP infer binary: Inference-Header-Content-Length, binary_data_size, the bytes as celer's",
          sa == sb == 200 and ba == bb == x.astype("<f4").tobytes() and oa == ob
          and oa["parameters"]["binary_data_size"] == x.nbytes, (da, db, len(ba), len(bb)))
    # all outputs binary with binary_data_output
    doc = infer_doc("x", x, parameters={"binary_data_output": True})
    s, h, r = curl(stub.port, "/v2/models/identity/infer", json.dumps(doc).encode())
    d, raw = binary_answer(h, r)
    check("HTTP binary_data_output: every output binary", s == 200 and raw == x.astype("<f4").tobytes()
          and "data" not in d["outputs"][0], d)

    # mlp: the answer numpy computes from the documented weights
    m = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    want = kserve_stub.mlp_forward(m, kserve_stub.mlp_weights(1))
    s, _, r = curl(stub.port, "/v2/models/mlp/infer", json.dumps(infer_doc("features", m)).encode())
    got = np.array(json.loads(r)["outputs"][0]["data"], np.float32).reshape(5, 8)
    check("HTTP mlp JSON = relu(x w1 + b1) w2 + b2 in numpy", s == 200 and np.allclose(got, want, atol=1e-5),
          np.abs(got - want).max())
    body, hdrs = binary_request("features", m, "scores")
    s, h, r = curl(stub.port, "/v2/models/mlp/infer", body, hdrs)
    _, raw = binary_answer(h, r)
    check("HTTP mlp binary = numpy", s == 200 and np.allclose(np.frombuffer(raw, "<f4").reshape(5, 8), want,
                                                               atol=1e-5), len(raw))
    # BYTES, JSON and binary (4-byte little-endian lengths)
    words = [b"abc", b"x\x00y", b""]
    doc = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["hello", "World"]}]}
    s, _, r = curl(stub.port, "/v2/models/upper/infer", json.dumps(doc).encode())
    check("HTTP BYTES JSON upper-cased", s == 200 and json.loads(r)["outputs"][0]["data"] == ["HELLO", "WORLD"], r)
    raw_in = b"".join(len(w).to_bytes(4, "little") + w for w in words)
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3],
                                   "parameters": {"binary_data_size": len(raw_in)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    s, h, r = curl(stub.port, "/v2/models/upper/infer", head + raw_in,
                   [f"Inference-Header-Content-Length: {len(head)}"])
    _, raw = binary_answer(h, r)
    check("HTTP BYTES binary in and out, NUL kept", s == 200 and raw == b"".join(
        len(w).to_bytes(4, "little") + w.upper() for w in words), raw)
    # errors as JSON {"error"}
    for path, body, want_status in (("/v2/models/nope", None, 404), ("/v2/models/identity/versions/2", None, 404),
                                    ("/v2/models/identity/infer", b"{not json", 400),
                                    ("/v2/models/identity/infer", json.dumps(infer_doc("x", x[:, :3])).encode(), 400),
                                    ("/v2/models/identity/infer", json.dumps(infer_doc("x", x, outputs=[{"name": "z"}]))
                                     .encode(), 400)):
        s, _, r = curl(stub.port, path, body)
        check(f"HTTP error {want_status} with a JSON error: {path}", s == want_status and "error" in json.loads(r),
              (s, r))
    # a chunked body (curl sends one when told Transfer-Encoding: chunked)
    s, _, r = curl(stub.port, "/v2/models/identity/infer", json.dumps(infer_doc("x", x)).encode(),
                   ["Transfer-Encoding: chunked"])
    check("HTTP chunked request body", s == 200 and json.loads(r)["outputs"][0]["shape"] == [2, 4], (s, r))
    # keep-alive: three requests on one connection
    conn = http.client.HTTPConnection("127.0.0.1", stub.port, timeout=10)
    statuses = []
    for _ in range(3):
        conn.request("GET", "/v2/health/live")
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
    sock_same = conn.sock is not None
    conn.close()
    check("HTTP/1.1 keep-alive: three requests on one connection", statuses == [200] * 3 and sock_same, statuses)


def grpc_checks(stub, celer_grpc_port, x, grpc, pb):
    import grpc_service_pb2_grpc as pb_grpc
    s = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, stub.grpc_port))
    c = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, celer_grpc_port))
    check("gRPC ServerLive, ServerReady, ModelReady", s.ServerLive(pb.ServerLiveRequest()).live
          and s.ServerReady(pb.ServerReadyRequest()).ready
          and s.ModelReady(pb.ModelReadyRequest(name="identity")).ready)
    a = grpc_stubs.to_dict(s.ModelMetadata(pb.ModelMetadataRequest(name="identity")))
    b = grpc_stubs.to_dict(c.ModelMetadata(pb.ModelMetadataRequest(name="identity")))
    check("gRPC ModelMetadata as celer's (platform differs)", {k: a[k] for k in ("name", "versions", "inputs", "outputs")}
          == {k: b[k] for k in ("name", "versions", "inputs", "outputs")}, (a, b))
    a = s.ModelConfig(pb.ModelConfigRequest(name="identity")).config
    b = c.ModelConfig(pb.ModelConfigRequest(name="identity")).config
    check("gRPC ModelConfig: inputs and outputs (name, data_type) as celer's",
          [(t.name, t.data_type) for t in list(a.input) + list(a.output)]
          == [(t.name, t.data_type) for t in list(b.input) + list(b.output)], (a, b))
    req = pb.ModelInferRequest(model_name="identity", id="g1")
    req.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    req.raw_input_contents.append(x.astype("<f4").tobytes())
    a, b = s.ModelInfer(req), c.ModelInfer(req)
    check("gRPC ModelInfer raw contents: outputs and raw_output_contents as celer's",
          (a.model_name, a.id, [(o.name, o.datatype, list(o.shape)) for o in a.outputs], list(a.raw_output_contents))
          == (b.model_name, b.id, [(o.name, o.datatype, list(o.shape)) for o in b.outputs], list(b.raw_output_contents))
          and a.raw_output_contents[0] == x.astype("<f4").tobytes(), (a, b))
    req = pb.ModelInferRequest(model_name="identity")
    t = req.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    t.contents.fp32_contents.extend(x.flatten().tolist())
    a = s.ModelInfer(req)
    check("gRPC ModelInfer typed contents in, raw out", a.raw_output_contents[0] == x.astype("<f4").tobytes(), a)
    req = pb.ModelInferRequest(model_name="upper")
    req.inputs.add(name="text", datatype="BYTES", shape=[2]).contents.bytes_contents.extend([b"a\x00b", b"cd"])
    a = s.ModelInfer(req)
    check("gRPC BYTES: 4-byte lengths in raw_output_contents", a.raw_output_contents[0]
          == b"\x03\x00\x00\x00A\x00B\x02\x00\x00\x00CD", a)
    return s


def fault_checks(stub, gs, x, grpc, pb):
    body = json.dumps(infer_doc("x", x)).encode()
    path = "/v2/models/identity/infer"
    greq = pb.ModelInferRequest(model_name="identity")
    greq.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    greq.raw_input_contents.append(x.astype("<f4").tobytes())

    def gcode(**kw):
        try:
            gs.ModelInfer(greq, **kw)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    # in-flight calls: 16 slow calls at once, each long enough that all overlap
    stub.json("POST", "/stub/stats/reset")
    stub.faults(latency_ms=500)
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda _: stub.request("POST", path, body)[0], range(16)))
    st = stub.stats()
    check("stats: max_in_flight counts concurrent calls (16 slow calls at once)", got == [200] * 16
          and st["max_in_flight"] == 16 and st["in_flight"] == 0, (got, st))
    stub.json("POST", "/stub/stats/reset")
    stub.faults(latency_ms=150, jitter_ms=50)
    t0 = time.monotonic()
    s = stub.request("POST", path, body)[0]
    dt = time.monotonic() - t0
    t0 = time.monotonic()
    g = gcode()
    gdt = time.monotonic() - t0
    check(f"fault latency 150 + jitter 50 ms: HTTP {dt * 1e3:.0f} ms, gRPC {gdt * 1e3:.0f} ms",
          s == 200 and 0.15 <= dt < 1.5 and 0.15 <= gdt < 1.5 and g == grpc.StatusCode.OK, (s, g))

    stub.faults(error_rate=1.0, error_status=503)
    s, r, _ = stub.request("POST", path, body)
    check("fault error_rate 1, 503: HTTP 503 with a JSON error, gRPC UNAVAILABLE",
          s == 503 and "error" in json.loads(r) and gcode() == grpc.StatusCode.UNAVAILABLE, (s, r))
    stub.faults(error_count=2)  # error_status 500 by default
    got = [stub.request("POST", path, body)[0], gcode(), stub.request("POST", path, body)[0]]
    check("fault error_count 2: two failures (HTTP 500, gRPC INTERNAL), then 200",
          got == [500, grpc.StatusCode.INTERNAL, 200], got)

    stub.faults(drop="before")
    s, err, _ = curl(stub.port, path, body)
    check("fault drop before: the connection closed without an answer (curl: empty reply)",
          s is None and "Empty reply" in err, (s, err))
    check("fault drop before on gRPC: UNAVAILABLE", gcode() == grpc.StatusCode.UNAVAILABLE)
    stub.faults(drop="mid")
    try:
        stub.request("POST", path, body)
        check("fault drop mid: the answer cut short", False, "a whole answer came")
    except http.client.IncompleteRead as e:
        check("fault drop mid: status 200 and headers, then the body cut short", len(e.partial) < 1000, e)
    check("fault drop mid on gRPC: DATA_LOSS", gcode() == grpc.StatusCode.DATA_LOSS)

    stub.faults(wrong="shape")
    s, r, _ = stub.request("POST", path, body)
    o = json.loads(r)["outputs"][0]
    check("fault wrong shape: one element short", s == 200 and o["shape"] == [x.size - 1]
          and len(o["data"]) == x.size - 1, o)
    stub.faults(wrong="datatype")
    o = json.loads(stub.request("POST", path, body)[1])["outputs"][0]
    ga = gs.ModelInfer(greq)
    check("fault wrong datatype: FP64 declared on HTTP and gRPC", o["datatype"] == "FP64"
          and ga.outputs[0].datatype == "FP64", (o, ga.outputs))

    stub.faults(hang=True)
    t0 = time.monotonic()
    try:
        stub.request("POST", path, body, timeout=0.5)
        hung = False
    except (TimeoutError, OSError):
        hung = True
    g = gcode(timeout=0.5)
    check("fault hang: no answer on HTTP (0.5 s timeout) nor gRPC (DEADLINE_EXCEEDED)",
          hung and g == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 < 3, g)

    stub.faults(ready=False)
    got = [stub.request("GET", p)[0] for p in ("/v2/health/ready", "/v2/models/identity/ready", "/v2/health/live")]
    check("fault ready false: 503 on server and model readiness (live stays 200), gRPC ready false",
          got == [503, 503, 200] and not gs.ServerReady(pb.ServerReadyRequest()).ready
          and not gs.ModelReady(pb.ModelReadyRequest(name="identity")).ready, got)

    stub.faults(error_rate=1.0, models=["mlp"])  # applies to mlp only
    check("faults limited to models: identity unaffected", stub.request("POST", path, body)[0] == 200)
    stub.faults()
    st = stub.stats()
    # 2 latency + 2 error_rate + 3 error_count + 2 drop before + 2 mid + 1 shape + 2 datatype + 2 hang + 1 models
    check("stats: infer calls per model and protocol, injected errors, drops, hangs",
          st["infer"] == {"identity": 17, "mlp": 0, "upper": 0} and st["http"] == 10 and st["grpc"] == 7
          and st["errors_injected"] == 4 and st["dropped"] == 4 and st["hung"] == 2 and st["in_flight"] == 0, st)
    check("stats: calls per endpoint", st["endpoints"] == {"live": 1, "ready": 2, "server_metadata": 0,
          "model_metadata": 0, "model_ready": 2, "model_config": 0, "infer": 17}, st["endpoints"])
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    stub.request("POST", path, body, {"traceparent": tp, "Authorization": "Bearer k1"})
    h = stub.stats()["last_headers"]
    check("stats: last request's headers (traceparent, authorization)", h.get("traceparent") == tp
          and h.get("authorization") == "Bearer k1", h)
    gs.ModelInfer(greq, metadata=(("traceparent", tp), ("authorization", "Bearer k2")))
    h = stub.stats()["last_headers"]
    check("stats: last gRPC call's metadata", h.get("traceparent") == tp and h.get("authorization") == "Bearer k2", h)
    s, r = stub.json("POST", "/stub/faults", {"drop": "sideways"})
    check("faults: a bad value refused with 400", s == 400 and "error" in r, (s, r))


def run(tmp, grpc, pb, pb_grpc):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(os.path.join(REPO_SRC, "identity"), os.path.join(repo, "identity"))
    celer_grpc = free_port()
    celer = Server(repo, "--grpc-port", str(celer_grpc))
    stub = Stub("--faults", '{"latency_ms": 0}')
    try:
        x = np.random.default_rng(5).standard_normal((2, 4)).astype(np.float32)
        http_checks(stub, celer, x)
        gs = grpc_checks(stub, celer_grpc, x, grpc, pb)
        fault_checks(stub, gs, x, grpc, pb)
    finally:
        code = stub.stop()
        check("stub exits 0 on SIGTERM", code == 0, stub.proc.stderr.read()[-2000:])
        celer.stop()


if __name__ == "__main__":
    sys.exit(grpc_stubs.main("kserve-stub-test-", run))
