#!/usr/bin/python3
"""Remote models end to end (issue 22): a model folder holding only a remote.yaml is served by
calling a model on another KServe v2 server. Three kinds of processes on loopback:

- the upstream: a second `celer serve` (the same binary) on the example repository, HTTP and gRPC;
- our KServe v2 fault-injection stub (tests/e2e/kserve_stub.py): slow, failing, dropping, wrong
  answers on demand, and counters (calls, in-flight, the last request's headers) to prove what
  reached the upstream;
- two front `celer serve`s on repositories built here: the example pipelines (classify, recommend,
  route) with the models they call (tiny_cnn, user_tower, mlp, mlp_basic) replaced by remote.yaml
  folders pointing at the upstream, over http:// in one and grpc:// in the other; the http one
  also holds remote models on the stub for the faults, limits, deadlines, cache, headers and tracing.

Checked: the pipelines answer through the fronts as the upstream answers them itself (HTTP and
gRPC clients), the remote models' metadata, readiness, inference (JSON, binary, gRPC), statistics
and config; the result cache (no upstream call on a hit); the upstream killed and restarted under
load (every request answered, 503 at once while the circuit is open, recovery without restarting
the front, celer_remote_circuit_state 1 then 0); deadlines (request `timeout`, grpc-timeout,
timeout_ms); the in-flight cap and its queue; the upstream's faults (500, wrong shape/datatype,
dropped connections, a retried 503); traceparent and the credentials sent upstream.

usage: test_remote.py CELER_BIN EXAMPLE_REPOSITORY
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import http.client
import http.server
import json
import os
import re
import shutil
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import grpc_stubs  # noqa: E402
import test_server  # noqa: E402
from kserve_stub import bytes_elements, mlp_forward, mlp_weights  # noqa: E402
from test_kserve_stub import Stub  # noqa: E402
from test_server import REPO_SRC, Server, check, check_stopped, free_port  # noqa: E402
from test_tls import TlsServer, make_pki  # noqa: E402  (the TLS test's certificates and HTTPS server)
from test_tracing import Receiver  # noqa: E402  (the OTLP/HTTP receiver of the tracing test)

PICTURES = os.path.join(os.path.dirname(HERE), "data", "pipeline")
PIPELINES = ("classify", "recommend", "route")
MODELS = ("tiny_cnn", "user_tower", "mlp", "mlp_basic")  # what the pipelines call
TOKEN_ENV, TOKEN = "CELER_E2E_REMOTE_TOKEN", "env-token-0451"
KEY_ENV, KEY = "CELER_E2E_REMOTE_KEY", "key-from-env-77"
FILE_TOKEN = "file-token-1123"
GRPC = None  # (grpc, pb, pb_grpc), set by run()


# ---- processes ------------------------------------------------------------------------------------


def celer_on(port, repo, *extra, env=None):
    """Server (test_server.py) on a given HTTP port: the upstream restarts on the ports it had."""
    saved = test_server.free_port
    test_server.free_port = lambda: port
    try:
        return Server(repo, *extra, env=env)
    finally:
        test_server.free_port = saved


def kill(srv):
    """SIGKILL: the upstream dies as a crashed process does (no drain, connections reset)."""
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    srv.log.close()


# ---- repositories ---------------------------------------------------------------------------------


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def remote(repo, name, **fields):
    """repo/name/remote.yaml from fields (values written as YAML flow scalars / mappings)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, str):
            return json.dumps(v)
        return str(v)
    write(os.path.join(repo, name, "remote.yaml"), "".join(f"{k}: {value(v)}\n" for k, v in fields.items()))


def build_front(repo, url, upstream_extra=None):
    """The example pipelines, each model they call a remote model on the upstream at url."""
    for p in PIPELINES:
        shutil.copytree(os.path.join(REPO_SRC, p), os.path.join(repo, p))
    for m in MODELS:
        remote(repo, m, url=url, **(upstream_extra or {}).get(m, {}))


def build_stub_models(repo, stub):
    """Remote models on the stub (its mlp and identity), for the faults, limits and headers."""
    http_url, grpc_url = f"http://127.0.0.1:{stub.port}", f"grpc://127.0.0.1:{stub.grpc_port}"
    remote(repo, "s_mlp", url=http_url, model="mlp", circuit_breaker={"failures": 5, "open_ms": 1000})
    remote(repo, "s_mlp_g", url=grpc_url, model="mlp")
    remote(repo, "s_id", url=http_url, model="identity", version="1")
    remote(repo, "s_id_g", url=grpc_url, model="identity")
    remote(repo, "s_id_t", url=http_url, model="identity", timeout_ms=300)
    remote(repo, "s_id_tg", url=grpc_url, model="identity", timeout_ms=300)
    remote(repo, "s_cached", url=http_url, model="mlp", cache=True)
    remote(repo, "s_cap", url=http_url, model="mlp", max_inflight=4)
    remote(repo, "s_cap_q", url=http_url, model="mlp", max_inflight=4, max_queue_size=2)
    remote(repo, "s_auth", url=http_url, model="identity", bearer_token_env=TOKEN_ENV,
           headers={"X-Tenant": "shop"}, headers_env={"X-Api-Key": KEY_ENV})
    remote(repo, "s_auth_g", url=grpc_url, model="identity", bearer_token_file="token.txt")
    # an idle model's readiness follows its upstream's (probed every 200 ms)
    remote(repo, "s_probe", url=http_url, model="identity", health_interval_ms=200)
    remote(repo, "s_probe_g", url=grpc_url, model="identity", health_interval_ms=200)
    write(os.path.join(repo, "s_auth_g", "token.txt"), FILE_TOKEN + "\n")
    # a pipeline with the result cache on, calling the stub's mlp through s_mlp
    write(os.path.join(repo, "pipe_cached", "pipeline.yaml"),
          "description: \"features -> s_mlp (the stub's mlp), results cached\"\n"
          "inputs:\n  - {name: features, dtype: FP32, shape: [16]}\n"
          "outputs:\n  - scores\n"
          "steps:\n  - model: {name: s_mlp, inputs: {features: features}, outputs: {scores: scores}}\n"
          "cache: true\n")


# ---- HTTP helpers ---------------------------------------------------------------------------------


def request(port, method, path, body=None, headers=None, timeout=5.0):
    """(status, body, headers, seconds) on a new connection; status None and the exception's text
    as body when no answer came (refused, reset, timed out)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict({"Content-Type": "application/json"}, **(headers or {}))
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, data, {k.lower(): v for k, v in r.getheaders()}, time.monotonic() - t0
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}", {}, time.monotonic() - t0
    finally:
        conn.close()


def post(srv, path, doc, headers=None, timeout=10.0):
    """(status, parsed JSON or raw body, headers, seconds)."""
    status, body, hdrs, dt = request(srv.port, "POST", path, doc, headers, timeout)
    try:
        return status, json.loads(body), hdrs, dt
    except (ValueError, TypeError):
        return status, body, hdrs, dt


def get(srv, path):
    status, body, _, _ = request(srv.port, "GET", path, timeout=10)
    try:
        return status, json.loads(body) if body else None
    except (ValueError, TypeError):
        return status, body


def error_of(doc):
    return doc.get("error", "") if isinstance(doc, dict) else str(doc)


def metrics(srv):
    """{'name{labels}': value} from /metrics."""
    status, body, _, _ = request(srv.port, "GET", "/metrics", timeout=10)
    out = {}
    for line in (body.decode(errors="replace") if status == 200 else "").splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def metric(ms, name, **labels):
    """The sum over the series of name whose labels include those given (None: no such series)."""
    total = None
    for k, v in ms.items():
        base, _, rest = k.partition("{")
        if base != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if all(got.get(a) == b for a, b in labels.items()):
            total = (total or 0) + v
    return total


def tensor(name, x, datatype="FP32"):
    return {"name": name, "shape": list(x.shape), "datatype": datatype, "data": x.flatten().tolist()}


def binary_post(srv, model, inputs, outputs):
    """Triton's binary extension both ways: (status, header doc, {output: raw bytes})."""
    head = json.dumps({"inputs": [{"name": n, "shape": list(x.shape), "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}} for n, x in inputs],
                       "outputs": [{"name": o, "parameters": {"binary_data": True}} for o in outputs]}).encode()
    status, body, hdrs, _ = request(srv.port, "POST", f"/v2/models/{model}/infer",
                                    head + b"".join(x.astype("<f4").tobytes() for _, x in inputs),
                                    {"Inference-Header-Content-Length": str(len(head)),
                                     "Content-Type": "application/octet-stream"}, timeout=10)
    if status != 200:
        return status, body, {}
    n = int(hdrs.get("inference-header-content-length", len(body)))
    doc, raw, out = json.loads(body[:n]), body[n:], {}
    for o in doc["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size", 0)
        out[o["name"]], raw = raw[:size], raw[size:]
    return status, doc, out


def same(a, b, path="", rtol=1e-5, atol=1e-6):
    """'' when two JSON values are equal, floats within tolerance; else where they differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            return f"{path}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            d = same(a[k], b[k], f"{path}.{k}", rtol, atol)
            if d:
                return d
        return ""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, f"{path}[{i}]", rtol, atol)
            if d:
                return d
        return ""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and abs(a - b) <= atol + rtol * abs(b):
            return ""
        return f"{path}: {a!r} vs {b!r}"
    return "" if a == b else f"{path}: {a!r} vs {b!r}"


def shape_of(meta_shape, rows=2):
    return [rows if d == -1 else d for d in meta_shape]


# ---- gRPC helpers ---------------------------------------------------------------------------------


def raw_bytes(values):
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def grpc_request(model, inputs):
    """ModelInferRequest with raw_input_contents: inputs [(name, datatype, shape, raw bytes)]."""
    _, pb, _ = GRPC
    req = pb.ModelInferRequest(model_name=model)
    for name, datatype, shape, raw in inputs:
        req.inputs.add(name=name, datatype=datatype, shape=shape)
        req.raw_input_contents.append(raw)
    return req


def grpc_outputs(resp):
    """{name: (datatype, shape, numpy array or list of bytes)} of a ModelInferResponse."""
    out = {}
    for o, raw in zip(resp.outputs, resp.raw_output_contents):
        if o.datatype == "BYTES":
            data = bytes_elements(raw)
        else:
            dt = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4"}[o.datatype]
            data = np.frombuffer(raw, dt)
        out[o.name] = (o.datatype, list(o.shape), data)
    return out


def grpc_same(a, b):
    """'' when two ModelInferResponses carry the same outputs (floats allclose)."""
    oa, ob = grpc_outputs(a), grpc_outputs(b)
    if sorted(oa) != sorted(ob):
        return f"outputs {sorted(oa)} vs {sorted(ob)}"
    for k in oa:
        (da, sa, xa), (db, sb, xb) = oa[k], ob[k]
        if (da, sa) != (db, sb):
            return f"{k}: {da} {sa} vs {db} {sb}"
        if da.startswith("FP"):
            if not np.allclose(xa, xb, rtol=1e-5, atol=1e-6):
                return f"{k}: max difference {np.abs(xa - xb).max()}"
        elif (list(xa) if da == "BYTES" else xa.tolist()) != (list(xb) if db == "BYTES" else xb.tolist()):
            return f"{k}: {xa} vs {xb}"
    return ""


def grpc_code(call, *args, **kw):
    """(status code, details, seconds) of a unary call."""
    grpc = GRPC[0]
    t0 = time.monotonic()
    try:
        call(*args, **kw)
        return grpc.StatusCode.OK, "", time.monotonic() - t0
    except grpc.RpcError as e:
        return e.code(), e.details(), time.monotonic() - t0


# ---- 3. the remote models and the pipelines through the fronts ---------------------------------------


def check_remote_models(label, front, fgrpc, up, ugrpc, rng):
    grpc, pb, _ = GRPC
    for m in MODELS:
        s, umeta = get(up, f"/v2/models/{m}")
        fs, fmeta = get(front, f"/v2/models/{m}")
        io = lambda d: (d.get("inputs"), d.get("outputs")) if isinstance(d, dict) else None  # noqa: E731
        check(f"{label} {m}: metadata has the upstream's inputs and outputs, its own name",
              s == fs == 200 and io(fmeta) == io(umeta) and fmeta.get("name") == m, (fs, fmeta, umeta))
        s = request(front.port, "GET", f"/v2/models/{m}/ready")[0]
        check(f"{label} {m}: ready", s == 200, s)
        if not (s == 200 and isinstance(umeta, dict)):
            continue
        inp, out = umeta["inputs"][0], umeta["outputs"][0]
        x = rng.standard_normal(shape_of(inp["shape"])).astype(np.float32)
        doc = {"id": f"r-{m}", "inputs": [tensor(inp["name"], x)]}
        us, ud, _, _ = post(up, f"/v2/models/{m}/infer", doc)
        fs, fd, _, _ = post(front, f"/v2/models/{m}/infer", doc)
        ok = us == fs == 200
        diff = same({k: fd.get(k) for k in ("id", "outputs")}, {k: ud.get(k) for k in ("id", "outputs")}) \
            if ok else "status"
        check(f"{label} {m}: infer JSON as the upstream's (id, outputs; floats allclose)",
              ok and not diff and fd.get("model_name") == m, (fs, diff, str(fd)[:300]))
        us, uh, ub = binary_post(up, m, [(inp["name"], x)], [out["name"]])
        fs, fh, fb = binary_post(front, m, [(inp["name"], x)], [out["name"]])
        ok = us == fs == 200 and [(o["name"], o["datatype"], o["shape"]) for o in fh["outputs"]] \
            == [(o["name"], o["datatype"], o["shape"]) for o in uh["outputs"]]
        ok = ok and np.allclose(np.frombuffer(fb[out["name"]], "<f4"), np.frombuffer(ub[out["name"]], "<f4"),
                                rtol=1e-5, atol=1e-6)
        check(f"{label} {m}: infer binary in and out as the upstream's", ok, (fs, str(fh)[:300]))
        # gRPC client on the front: ModelReady, ModelMetadata, ModelInfer raw
        ok = fgrpc.ModelReady(pb.ModelReadyRequest(name=m)).ready
        a = grpc_stubs.to_dict(fgrpc.ModelMetadata(pb.ModelMetadataRequest(name=m)))
        b = grpc_stubs.to_dict(ugrpc.ModelMetadata(pb.ModelMetadataRequest(name=m)))
        check(f"{label} {m}: gRPC ModelReady, ModelMetadata inputs and outputs as the upstream's",
              ok and (a["inputs"], a["outputs"]) == (b["inputs"], b["outputs"]), (a, b))
        req = grpc_request(m, [(inp["name"], "FP32", list(x.shape), x.astype("<f4").tobytes())])
        code, detail, _ = grpc_code(fgrpc.ModelInfer, req, timeout=10)
        diff = grpc_same(fgrpc.ModelInfer(req, timeout=10), ugrpc.ModelInfer(req, timeout=10)) \
            if code == grpc.StatusCode.OK else f"{code} {detail}"
        check(f"{label} {m}: gRPC ModelInfer raw as the upstream's", not diff, diff)
        s, cfg = get(front, f"/v2/models/{m}/config")
        _, ucfg = get(up, f"/v2/models/{m}/config")
        names = lambda c: ([t.get("name") for t in c.get("input", [])],  # noqa: E731
                           [t.get("name") for t in c.get("output", [])]) if isinstance(c, dict) else None
        check(f"{label} {m}: model config (name, the upstream's input and output names)",
              s == 200 and cfg.get("name") == m and names(cfg) == names(ucfg), (s, cfg, ucfg))
        gc = fgrpc.ModelConfig(pb.ModelConfigRequest(name=m)).config
        check(f"{label} {m}: gRPC ModelConfig names the upstream's inputs",
              gc.name == m and [t.name for t in gc.input] == names(ucfg)[0], gc)
        s, st = get(front, f"/v2/models/{m}/stats")
        try:
            ms = st["model_stats"][0]
            ok = ms["name"] == m and ms["inference_stats"]["success"]["count"] >= 4 \
                and ms["inference_stats"]["success"]["ns"] > 0
        except (KeyError, IndexError, TypeError):
            ok = False
        check(f"{label} {m}: statistics count the successes (>= 4)", s == 200 and ok, (s, st))


def picture(name):
    with open(os.path.join(PICTURES, name), "rb") as f:
        return f.read()


def http_pipeline_requests():
    jpg, png = picture("cat.jpg"), picture("cat.png")
    x = np.random.default_rng(11).standard_normal((3, 16)).astype(np.float32)
    reqs = [
        ("classify JPEG raw body", "classify", jpg, {"Content-Type": "image/jpeg"}),
        ("classify PNG raw body", "classify", png, {"Content-Type": "image/png"}),
        ("recommend plain object", "recommend",
         {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios"}, None),
        ("recommend array of objects", "recommend",
         [{"age": 62, "income": 150000, "country": "br", "device": "android", "exclude": [1, 2]},
          {"age": 23, "income": 31000, "country": "us", "device": "web", "exclude": [3, 4]}], None),
        ("recommend KServe tensors", "recommend", {"id": "k1", "inputs": [
            {"name": "age", "shape": [2], "datatype": "FP32", "data": [23, 47]},
            {"name": "income", "shape": [2], "datatype": "FP32", "data": [31000, 87000]},
            {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["us", "gb"]}]}, None),
    ]
    for seg in ("premium", "basic", "gold"):
        reqs.append((f"route {seg} plain object", "route", {"segment": seg, "features": x[0].tolist()}, None))
        reqs.append((f"route {seg} KServe 3 rows", "route", {"inputs": [
            {"name": "segment", "shape": [3], "datatype": "BYTES", "data": [seg] * 3},
            {"name": "features", "shape": [3, 16], "datatype": "FP32", "data": x.flatten().tolist()}]}, None))
    return reqs


def grpc_pipeline_requests():
    jpg = picture("cat.jpg")
    x = np.random.default_rng(12).standard_normal((3, 16)).astype(np.float32)
    return [
        ("classify JPEG", grpc_request("classify", [("image", "BYTES", [1], raw_bytes([jpg]))])),
        ("recommend 2 rows", grpc_request("recommend", [
            ("age", "FP32", [2], np.array([23, 47], "<f4").tobytes()),
            ("income", "FP32", [2], np.array([31000, 87000], "<f4").tobytes()),
            ("country", "BYTES", [2], raw_bytes([b"us", b"gb"]))])),
        ("route premium", grpc_request("route", [("segment", "BYTES", [3], raw_bytes([b"premium"] * 3)),
                                                 ("features", "FP32", [3, 16], x.tobytes())])),
        ("route basic", grpc_request("route", [("segment", "BYTES", [3], raw_bytes([b"basic"] * 3)),
                                               ("features", "FP32", [3, 16], x.tobytes())])),
    ]


def check_pipelines(label, front, fgrpc, up, ugrpc):
    grpc = GRPC[0]
    for name, model, body, headers in http_pipeline_requests():
        us, ud, _, _ = post(up, f"/v2/models/{model}/infer", body, headers)
        fs, fd, _, _ = post(front, f"/v2/models/{model}/infer", body, headers)
        diff = same(fd, ud) if us == fs == 200 else f"status upstream {us}, front {fs}"
        check(f"{label} pipeline {name}: the front's answer (remote models) is the upstream's (local models)",
              not diff, (diff, str(fd)[:300], str(ud)[:300]))
    for name, req in grpc_pipeline_requests():
        code, detail, _ = grpc_code(fgrpc.ModelInfer, req, timeout=10)
        diff = grpc_same(fgrpc.ModelInfer(req, timeout=10), ugrpc.ModelInfer(req, timeout=10)) \
            if code == grpc.StatusCode.OK else f"{code} {detail}"
        check(f"{label} pipeline {name} over gRPC: the front's answer is the upstream's", not diff, diff)


# ---- 4, 9, 10: cache, traceparent, credentials (the stub) ---------------------------------------------


def mlp_doc(x, **extra):
    return dict({"inputs": [tensor("features", x)]}, **extra)


def check_cache(front, stub, rng):
    x = rng.standard_normal((2, 16)).astype(np.float32)
    want = mlp_forward(x, mlp_weights(1))
    stub.json("POST", "/stub/stats/reset")
    answers = [post(front, "/v2/models/s_cached/infer", mlp_doc(x)) for _ in range(3)]
    calls = stub.stats()["infer"]["mlp"]
    ok = all(s == 200 and np.allclose(np.array(d["outputs"][0]["data"], np.float32).reshape(2, 8), want, atol=1e-5)
             for s, d, _, _ in answers)
    check("cache (remote.yaml cache: true): 3 identical requests answered right, 1 upstream call "
          f"(stub counted {calls}); X-Celer-Cache {[h.get('x-celer-cache') for _, _, h, _ in answers]}",
          ok and calls == 1, [(s, str(d)[:200]) for s, d, _, _ in answers])
    y = x + 1
    post(front, "/v2/models/s_cached/infer", mlp_doc(y))
    check("cache: a different input is an upstream call", stub.stats()["infer"]["mlp"] == 2, stub.stats()["infer"])

    stub.json("POST", "/stub/stats/reset")
    row = {"features": x[0].tolist()}
    answers = [post(front, "/v2/models/pipe_cached/infer", row) for _ in range(3)]
    calls = stub.stats()["infer"]["mlp"]
    ok = all(s == 200 and isinstance(d, dict) and np.allclose(d.get("scores"), want[0], atol=1e-5)
             for s, d, _, _ in answers)
    check(f"cache (pipeline.yaml cache: true over a remote model): 3 identical requests, 1 upstream call "
          f"(stub counted {calls})", ok and calls == 1, [(s, str(d)[:200]) for s, d, _, _ in answers])


def seen_by_stub(stub, call, wanted):
    """(call()'s result, the headers of the last inference call the stub saw), tried up to 3 times
    until wanted(headers): another remote model's call may come between."""
    for _ in range(3):
        got = call()
        headers = stub.stats()["last_infer_headers"]
        if wanted(headers):
            break
    return got, headers


def check_headers(front, fgrpc_port, stub, sink):
    grpc, pb, pb_grpc = GRPC
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    tp = f"00-{tid}-{sid}-01"
    for model, proto in (("s_mlp", "HTTP"), ("s_mlp_g", "gRPC")):
        xm = np.ones((1, 16), np.float32)
        (s, d, _, _), h = seen_by_stub(stub, lambda: post(front, f"/v2/models/{model}/infer", mlp_doc(xm),
                                                                {"traceparent": tp}), lambda h: "traceparent" in h)
        got = h.get("traceparent", "")
        parts = got.split("-")
        check(f"traceparent over {proto}: the upstream call carries the request's trace id ({got!r})",
              s == 200 and len(parts) == 4 and parts[0] == "00" and parts[1] == tid and re.fullmatch(
                  "[0-9a-f]{16}", parts[2]) is not None, (s, got, str(d)[:200]))
        if len(parts) == 4 and parts[1] == tid:
            def client(sp, span_id=parts[2]):
                return sp.get("spanId") == span_id and sp.get("traceId") == tid
            spans = [sp for sp in sink.wait_for(lambda ss: any(map(client, ss)), timeout=8) if client(sp)]
            check(f"traceparent over {proto}: its parent id is a CLIENT span (kind 3) of the front's trace",
                  spans and spans[0].get("kind") == 3 and parts[2] != sid,
                  (parts[2], [(sp.get("name"), sp.get("kind"), sp.get("spanId")) for sp in sink.spans()][-8:]))
    # through the front's gRPC endpoint: traceparent metadata in, the same trace id upstream
    fg = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, fgrpc_port))
    req = grpc_request("s_mlp", [("features", "FP32", [1, 16], np.ones((1, 16), "<f4").tobytes())])
    tid2 = "0af7651916cd43dd8448eb211c80319c"
    (code, detail, _), h = seen_by_stub(stub, lambda: grpc_code(
        fg.ModelInfer, req, timeout=10, metadata=(("traceparent", f"00-{tid2}-b7ad6b7169203331-01"),)),
        lambda h: "traceparent" in h)
    got = h.get("traceparent", "")
    check(f"traceparent in gRPC metadata to the front: the same trace id upstream ({got!r})",
          code == grpc.StatusCode.OK and got.split("-")[1:2] == [tid2], (code, detail, got))

    (s, d, _, _), h = seen_by_stub(stub, lambda: post(front, "/v2/models/s_auth/infer", {"inputs": [tensor("x", x)]}),
                                   lambda h: "authorization" in h)
    check("bearer_token_env: Authorization: Bearer <env value> reaches the stub (HTTP)",
          s == 200 and h.get("authorization") == f"Bearer {TOKEN}", (s, str(d)[:200], h))
    check("headers and headers_env: X-Tenant: shop and X-Api-Key from the environment reach the stub",
          h.get("x-tenant") == "shop" and h.get("x-api-key") == KEY, h)
    (s, d, _, _), h = seen_by_stub(stub, lambda: post(front, "/v2/models/s_auth_g/infer",
                                                      {"inputs": [tensor("x", x)]}), lambda h: "authorization" in h)
    check("bearer_token_file: the file's token (newline dropped) in the gRPC call's authorization",
          s == 200 and h.get("authorization") == f"Bearer {FILE_TOKEN}", (s, str(d)[:200], h))
    log = front.output()
    check("no token in the front's log", TOKEN not in log and FILE_TOKEN not in log and KEY not in log, log[-1000:])


# ---- 6. deadlines -----------------------------------------------------------------------------------


def check_deadlines(front, fgrpc, stub):
    grpc, pb, _ = GRPC
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    doc = {"inputs": [tensor("x", x)]}
    stub.faults(latency_ms=2000, models=["identity"])
    for model, proto in (("s_id", "http"), ("s_id_g", "grpc")):
        s, d, _, dt = post(front, f"/v2/models/{model}/infer", dict(doc, parameters={"timeout": 200000}))
        check(f"deadline: request timeout 200 ms, {proto}:// upstream 2 s -> 503 \"timed out\" in {dt * 1e3:.0f} ms "
              "(< 600)", s == 503 and "timed out" in error_of(d) and dt < 0.6, (s, d, dt))
    req = grpc_request("s_id", [("x", "FP32", [2, 4], x.astype("<f4").tobytes())])
    req.parameters["timeout"].int64_param = 200000
    code, detail, dt = grpc_code(fgrpc.ModelInfer, req, timeout=5)
    check(f"deadline: gRPC request parameter timeout 200 ms -> DEADLINE_EXCEEDED or UNAVAILABLE \"timed out\" in "
          f"{dt * 1e3:.0f} ms (< 600)", code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
          and "timed out" in detail and dt < 0.6,
          (code, detail, dt))
    req = grpc_request("s_id_g", [("x", "FP32", [2, 4], x.astype("<f4").tobytes())])
    code, detail, dt = grpc_code(fgrpc.ModelInfer, req, timeout=0.2)
    check(f"deadline: grpc-timeout 200 ms to the front -> DEADLINE_EXCEEDED in {dt * 1e3:.0f} ms",
          code == grpc.StatusCode.DEADLINE_EXCEEDED and dt < 0.6, (code, detail, dt))
    for model, proto in (("s_id_t", "http"), ("s_id_tg", "grpc")):
        s, d, _, dt = post(front, f"/v2/models/{model}/infer", doc)
        check(f"deadline: remote.yaml timeout_ms 300, no request timeout, {proto}:// upstream 2 s -> 503 "
              f"\"timed out\" in {dt * 1e3:.0f} ms (< 900)", s == 503 and "timed out" in error_of(d)
              and 0.25 <= dt < 0.9, (s, d, dt))
    s, d, _, dt = post(front, "/v2/models/s_id_t/infer", dict(doc, parameters={"timeout": 100000}))
    check(f"deadline: the earlier wins (request 100 ms, timeout_ms 300) -> 503 \"timed out\" in {dt * 1e3:.0f} ms "
          "(< 250)", s == 503 and "timed out" in error_of(d) and dt < 0.25, (s, d, dt))
    m = metrics(front)
    check("celer_remote_errors_total{kind=\"timeout\"} counts the timed-out calls",
          (metric(m, "celer_remote_errors_total", model="s_id_t", kind="timeout") or 0) >= 2,
          {k: v for k, v in m.items() if k.startswith("celer_remote_errors_total")})
    stub.faults()
    for model in ("s_id", "s_id_g", "s_id_t", "s_id_tg"):  # and they answer again (circuits closed)
        s, d, _, _ = post(front, f"/v2/models/{model}/infer", dict(doc, parameters={"timeout": 2000000}))
        check(f"deadline: {model} answers once the upstream is fast again", s == 200
              and d["outputs"][0]["data"] == x.flatten().tolist(), (s, d))


# ---- 7. the in-flight cap and its queue ----------------------------------------------------------------


def check_inflight(front, stub):
    rng = np.random.default_rng(21)
    xs = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(16)]
    weights = mlp_weights(1)
    stub.faults(latency_ms=300)
    stub.json("POST", "/stub/stats/reset")
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda x: post(front, "/v2/models/s_cap/infer", mlp_doc(x)), xs))
    st = stub.stats()
    right = [s == 200 and np.allclose(np.array(d["outputs"][0]["data"], np.float32), mlp_forward(x, weights)[0],
                                      atol=1e-5) for (s, d, _, _), x in zip(got, xs)]
    check(f"max_inflight 4: 16 concurrent requests all answered right, the stub saw at most 4 at once "
          f"(max_in_flight {st['max_in_flight']}, calls {st['infer']['mlp']})",
          all(right) and 1 <= st["max_in_flight"] <= 4 and st["infer"]["mlp"] == 16,
          [(s, str(d)[:120]) for s, d, _, _ in got if s != 200][:3])
    check("max_inflight 4: the calls did queue (16 x 300 ms at 4 at a time take >= 1.1 s)",
          max(dt for _, _, _, dt in got) >= 1.1, [round(dt, 2) for _, _, _, dt in got])

    stub.json("POST", "/stub/stats/reset")
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda x: post(front, "/v2/models/s_cap_q/infer", mlp_doc(x)), xs))
    st = stub.stats()
    statuses = [s for s, _, _, _ in got]
    full = [error_of(d) for s, d, _, _ in got if s == 503]
    check(f"max_queue_size 2: 16 at once -> {statuses.count(200)} answered, {len(full)} refused 503 \"full\"; "
          f"the stub saw at most 4 at once ({st['max_in_flight']})",
          set(statuses) <= {200, 503} and statuses.count(200) >= 6 and full and all("full" in e for e in full)
          and st["max_in_flight"] <= 4, (statuses, full[:2]))
    m = metrics(front)
    check("celer_remote_errors_total{kind=\"queue_full\"} counts the refusals",
          (metric(m, "celer_remote_errors_total", model="s_cap_q", kind="queue_full") or 0) == len(full),
          {k: v for k, v in m.items() if k.startswith("celer_remote_errors_total")})
    stub.faults()


# ---- 8. faults ---------------------------------------------------------------------------------------


def check_faults(front, fgrpc, stub):
    grpc, _, _ = GRPC
    x = np.random.default_rng(31).standard_normal((2, 16)).astype(np.float32)
    want = mlp_forward(x, mlp_weights(1))
    doc = mlp_doc(x)

    def good(model, why):  # after each fault: a good call, which also resets the breaker's count
        stub.faults()
        s, d, _, _ = post(front, f"/v2/models/{model}/infer", doc)
        check(f"{model} answers right again after {why}", s == 200 and np.allclose(
            np.array(d["outputs"][0]["data"], np.float32).reshape(2, 8), want, atol=1e-5), (s, str(d)[:300]))

    for model, proto, port in (("s_mlp", "http", stub.port), ("s_mlp_g", "grpc", stub.grpc_port)):
        where = f"127.0.0.1:{port}"
        stub.faults(error_rate=1.0, error_status=500)
        s, d, _, dt = post(front, f"/v2/models/{model}/infer", doc)
        check(f"fault {proto}: the upstream answers 500 -> 502 naming the upstream ({where})",
              s == 502 and where in error_of(d), (s, d))
        good(model, "500s")
        for wrong in ("shape", "datatype"):
            stub.faults(wrong=wrong)
            s, d, _, _ = post(front, f"/v2/models/{model}/infer", doc)
            check(f"fault {proto}: wrong {wrong} from the upstream -> 502 naming the upstream ({where})",
                  s == 502 and where in error_of(d), (s, d))
            good(model, f"a wrong {wrong}")
        # a 503 is retried: the call succeeds, counted in celer_remote_retries_total
        r0 = metric(metrics(front), "celer_remote_retries_total", model=model) or 0
        stub.json("POST", "/stub/stats/reset")
        stub.faults(error_count=1, error_status=503)
        s, d, _, _ = post(front, f"/v2/models/{model}/infer", doc)
        st = stub.stats()
        r1 = metric(metrics(front), "celer_remote_retries_total", model=model)
        check(f"fault {proto}: one 503 (UNAVAILABLE) from the upstream is retried: 200, 2 upstream calls, "
              f"celer_remote_retries_total {r0} -> {r1}", s == 200 and np.allclose(
                  np.array(d["outputs"][0]["data"], np.float32).reshape(2, 8), want, atol=1e-5)
              and st["infer"]["mlp"] == 2 and st["errors_injected"] == 1 and r1 is not None and r1 >= r0 + 1,
              (s, str(d)[:200], st["infer"], r0, r1))
        for drop in ("before", "mid"):
            stub.faults(drop=drop)
            dropped = stub.stats()["dropped"]
            s, d, _, dt = post(front, f"/v2/models/{model}/infer", doc)
            dropped = stub.stats()["dropped"] - dropped
            check(f"fault {proto}: connection dropped {drop} the answer ({dropped} calls dropped) -> an error "
                  f"(502/503) in {dt * 1e3:.0f} ms, no hang", s in (502, 503) and dt < 3 and error_of(d)
                  and dropped >= 1, (s, d, dt))
            # libcurl (HTTP/1.1) sends a request again, up to 5 times, when a reused keep-alive
            # connection closes before any byte of an answer (the race with a server's idle close);
            # celer itself does not retry a broken connection (docs/remote.md, "Retries")
            most = 6 if proto == "http" and drop == "before" else 3
            check(f"fault {proto}: drop {drop}: at most {most} calls reach the upstream for one request "
                  f"({dropped})", dropped <= most, dropped)
            good(model, f"a drop {drop}")
        stub.faults()
    # the same 500 through the front's gRPC endpoint: INTERNAL
    stub.faults(error_rate=1.0, error_status=500)
    req = grpc_request("s_mlp", [("features", "FP32", [2, 16], x.astype("<f4").tobytes())])
    code, detail, _ = grpc_code(fgrpc.ModelInfer, req, timeout=5)
    check("fault: 500 upstream -> gRPC INTERNAL from the front's gRPC endpoint", code == grpc.StatusCode.INTERNAL,
          (code, detail))
    good("s_mlp", "the gRPC 500")
    m = metrics(front)
    check("celer_remote_errors_total{kind=\"status\"} and {kind=\"protocol\"} count the faults",
          (metric(m, "celer_remote_errors_total", model="s_mlp", kind="status") or 0) >= 1
          and (metric(m, "celer_remote_errors_total", model="s_mlp", kind="protocol") or 0) >= 1,
          {k: v for k, v in m.items() if k.startswith("celer_remote_errors_total")})


# ---- 5. the upstream killed and restarted under load ----------------------------------------------------


def check_restart(front, gfront, ups, up_grpc_port):
    """Kills ups[0] and appends the upstream started again (a new process on the same ports)."""
    up = ups[0]
    x = np.random.default_rng(41).standard_normal((1, 16)).astype(np.float32)
    bodies = [("/v2/models/mlp/infer", mlp_doc(x)),
              ("/v2/models/route/infer", {"segment": "premium", "features": x[0].tolist()})]
    results, stop = [], threading.Event()
    lock = threading.Lock()

    def worker(i):
        n = 0
        while not stop.is_set():
            path, body = bodies[(i + n) % 2]
            n += 1
            t0 = time.monotonic()
            s, b, _, dt = request(front.port, "POST", path, body, timeout=5)
            with lock:
                results.append((t0, dt, s, b if s != 200 else b""))
            time.sleep(0.005 if s == 200 else 0.02)  # continuous, without starving 2 cores

    def circuit():
        return metric(metrics(front), "celer_remote_circuit_state", model="mlp")

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in pool:
        t.start()
    try:
        time.sleep(1.0)
        before = circuit()
        kill(up)
        t_kill = time.monotonic()
        states, t_open = [], None
        while time.monotonic() - t_kill < 8:
            c = circuit()
            states.append(c)
            if c == 1:
                t_open = time.monotonic()
                break
            time.sleep(0.05)
        check(f"upstream killed: celer_remote_circuit_state{{model=\"mlp\"}} {before} -> 1 (open) in "
              f"{(t_open or time.monotonic()) - t_kill:.2f} s", before == 0 and t_open is not None, states[-10:])
        time.sleep(1.5)
        model_ready = request(front.port, "GET", "/v2/models/mlp/ready")[0]
        server_ready = request(front.port, "GET", "/v2/health/ready")[0]
        check(f"circuit open: the model is not ready ({model_ready}), the server still is ({server_ready})",
              model_ready != 200 and server_ready == 200,
              (model_ready, server_ready, front.proc.poll(), front.output()[-3000:]))
        t_restart = time.monotonic()
        ups.append(celer_on(up.port, REPO_SRC, "--grpc-port", str(up_grpc_port)))
        t_up = time.monotonic()
        t_ok = None
        while time.monotonic() - t_up < 10 and t_ok is None:
            with lock:
                t_ok = next((t0 for t0, _, s, _ in results if s == 200 and t0 > t_up), None)
            time.sleep(0.05)
        check(f"upstream restarted on the same ports: requests succeed again {((t_ok or t_up + 99) - t_up):.2f} s "
              "after it listens (< 5), the front not restarted", t_ok is not None and t_ok - t_up < 5,
              results[-3:])
        closed = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            closed = circuit()
            if closed == 0:
                break
            time.sleep(0.1)
        check("celer_remote_circuit_state{model=\"mlp\"} back to 0 (closed)", closed == 0, closed)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in pool:
            t.join()
    lost = [(round(dt, 2), b) for _, dt, s, b in results if s is None]
    check(f"under load: every one of {len(results)} requests answered (none unanswered in the client's 5 s)",
          not lost, (lost[:3], front.proc.poll(), front.output()[-3000:]))
    statuses = sorted({s for _, _, s, _ in results}, key=str)
    check(f"under load: statuses {statuses} are 200 or 503 (502 while the upstream dies)",
          set(statuses) <= {200, 502, 503}, [b for _, _, s, b in results if s not in (200, 502, 503)][:3])
    if t_open is not None:
        down = sorted(dt for t0, dt, s, _ in results if t_open + 0.05 < t0 and t0 + dt < t_restart)
        p95 = down[int(0.95 * (len(down) - 1))] if down else None
        codes = {s for t0, dt, s, _ in results if t_open + 0.05 < t0 and t0 + dt < t_restart}
        texts = [b for t0, dt, s, b in results if t_open + 0.05 < t0 and t0 + dt < t_restart and s == 503]
        check(f"circuit open: {len(down)} requests answered 503 at once (p95 {1e3 * (p95 or 0):.1f} ms < 200)",
              down and codes == {503} and p95 < 0.2, (codes, p95))
        check("circuit open: the 503 says the upstream is down (circuit open)",
              texts and all(b"circuit open" in b for b in texts), texts[:2])
    m = metrics(front)
    check("celer_remote_errors_total{model=\"mlp\"}: kind connect and circuit_open counted",
          (metric(m, "celer_remote_errors_total", model="mlp", kind="connect") or 0) >= 1
          and (metric(m, "celer_remote_errors_total", model="mlp", kind="circuit_open") or 0) >= 1,
          {k: v for k, v in m.items() if k.startswith("celer_remote_errors_total") and 'model="mlp"' in k})
    # the gRPC front had no traffic while the upstream was down: its HTTP/2 connection is stale
    t0, s = time.monotonic(), None
    while time.monotonic() - t0 < 5:
        s, d, _, _ = post(gfront, "/v2/models/route/infer", {"segment": "premium", "features": x[0].tolist()},
                          timeout=5)
        if s == 200:
            break
        time.sleep(0.1)
    check(f"grpc:// front: answers again after the upstream's restart ({time.monotonic() - t0:.2f} s)", s == 200, s)


def check_probe(front, fgrpc, stub):
    """The upstream says it is not ready: an idle remote model's ready follows within its probe
    interval (HTTP and gRPC), its requests are refused at once, and it comes back by itself."""
    grpc, pb, _ = GRPC

    def ready_everywhere():
        http_ok = get(front, "/v2/models/s_probe/ready")[0] == 200
        return http_ok, fgrpc.ModelReady(pb.ModelReadyRequest(name="s_probe_g"), timeout=5).ready

    check("readiness probes: both ready while the upstream is", ready_everywhere() == (True, True),
          ready_everywhere())
    stub.faults(ready=False)
    deadline, seen = time.time() + 3, None
    while time.time() < deadline and (seen := ready_everywhere()) != (False, False):
        time.sleep(0.05)
    check(f"readiness probes: the upstream not ready -> the models not ready within 3 s ({seen})",
          seen == (False, False), seen)
    x = np.ones((1, 4), np.float32)
    t0 = time.time()
    s, d, _, _ = post(front, "/v2/models/s_probe/infer", {"inputs": [tensor("x", x)]})
    dt = time.time() - t0
    check(f"readiness probes: an infer meanwhile is refused at once (503 circuit open, {dt * 1e3:.1f} ms)",
          s == 503 and "circuit open" in error_of(d) and dt < 0.5, (s, d))
    stub.faults()
    deadline = time.time() + 3
    while time.time() < deadline and (seen := ready_everywhere()) != (True, True):
        time.sleep(0.05)
    s, d, _, _ = post(front, "/v2/models/s_probe/infer", {"inputs": [tensor("x", x)]})
    check(f"readiness probes: ready again by itself ({seen}), and it answers ({s})", seen == (True, True) and s == 200,
          (seen, s, d))
    # unloaded: its series go with it (and its probes stop)
    s, _ = front.json("POST", "/v2/repository/models/s_probe/unload", {})[:2]
    left = [k for k in metrics(front) if k.startswith("celer_remote_") and 'model="s_probe"' in k]
    check(f"unloaded ({s}): the remote model's celer_remote_* series are gone ({len(left)} left)",
          s == 200 and not left, left[:4])


def check_late_upstream(gfront, late_port, late_srv):
    """A remote model whose upstream was not there at start is loaded by itself once it is."""
    late_srv.append(celer_on(late_port, REPO_SRC))
    deadline, state = time.time() + 15, None
    while time.time() < deadline:
        s, idx = gfront.json("POST", "/v2/repository/index", {})[:2]
        state = {e["name"]: e.get("state") for e in idx}.get("r_late") if s == 200 else None
        if state == "READY":
            break
        time.sleep(0.2)
    x = np.ones((1, 16), np.float32)
    s, d, _, _ = post(gfront, "/v2/models/r_late/infer", mlp_doc(x))
    check(f"an upstream started after the front: its remote model loads by itself ({state}) and answers ({s})",
          state == "READY" and s == 200, (state, s, str(d)[:200]))


def check_batching(front, up):
    """max_batch_size: calls waiting for the one place in flight go upstream together, and each
    request gets its own rows back."""
    rng = np.random.default_rng(8)
    xs = [rng.standard_normal((1 + i % 2, 16)).astype(np.float32) for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(lambda x: post(front, "/v2/models/r_batch/infer", mlp_doc(x)), xs))
        want = list(pool.map(lambda x: post(up, "/v2/models/mlp/infer", mlp_doc(x)), xs))
    right = all(s == 200 and w[0] == 200 and np.allclose(np.array(d["outputs"][0]["data"]),
                                                         np.array(w[1]["outputs"][0]["data"]), atol=1e-5)
                for (s, d, _, _), w in zip(got, want))
    s, st = front.json("GET", "/v2/models/r_batch/stats")[:2]
    ms = st["model_stats"][0] if s == 200 else {}
    sizes = sorted(int(b["batch_size"]) for b in ms.get("batch_stats", []))
    check(f"max_batch_size 8: 24 concurrent requests each get their rows (as the upstream's own), in "
          f"{ms.get('execution_count')} upstream calls of {sizes} rows",
          right and int(ms.get("inference_count", 0)) == sum(len(x) for x in xs)
          and int(ms.get("execution_count", 99)) < 24 and sizes and max(sizes) <= 8 and max(sizes) > 2,
          (right, ms.get("inference_count"), ms.get("execution_count"), sizes))


def check_tls(tmp, up):
    """https:// and grpcs:// upstreams (a celer with a certificate of an intermediate CA): the
    certificate checked against ca_file in the model folder, answers as the plain upstream's,
    concurrent calls on the pooled connections; another CA's certificate fails the load."""
    pki = os.path.join(tmp, "pki")
    os.makedirs(pki)
    make_pki(pki)
    gport = free_port()
    tup = TlsServer(REPO_SRC, os.path.join(pki, "ca.pem"), "--grpc-port", str(gport),
                    "--tls-cert", os.path.join(pki, "srv2.chain"), "--tls-key", os.path.join(pki, "srv2.key"))
    repo = os.path.join(tmp, "front-tls")
    for name, url, ca in (("t_https", f"https://127.0.0.1:{tup.port}", "ca.pem"),
                          ("t_grpcs", f"grpcs://127.0.0.1:{gport}", "ca.pem"),
                          ("t_https_ca2", f"https://127.0.0.1:{tup.port}", "ca2.pem"),
                          ("t_grpcs_ca2", f"grpcs://127.0.0.1:{gport}", "ca2.pem")):
        # connects include a TLS handshake each: 8 at once under a sanitizer on 2 busy cores can take
        # more than the default second
        remote(repo, name, url=url, model="mlp", ca_file=ca, connect_timeout_ms=5000)
        shutil.copy(os.path.join(pki, ca), os.path.join(repo, name, ca))
    front = Server(repo)
    try:
        s, idx = front.json("POST", "/v2/repository/index", {})[:2]
        states = {e["name"]: (e.get("state"), e.get("reason") or "") for e in idx} if s == 200 else {}
        check("TLS upstreams: https:// and grpcs:// with the CA of their certificate are READY",
              all(states.get(m, ("",))[0] == "READY" for m in ("t_https", "t_grpcs")), states)
        check("TLS upstreams: another CA's certificate -> UNAVAILABLE, the reason says the certificate",
              all(states.get(m, ("",))[0] == "UNAVAILABLE" and "certificate" in states[m][1].lower()
                  for m in ("t_https_ca2", "t_grpcs_ca2")), states)
        rng = np.random.default_rng(5)
        xs = [rng.standard_normal((2, 16)).astype(np.float32) for _ in range(16)]
        want = [post(up, "/v2/models/mlp/infer", mlp_doc(x)) for x in xs]
        for m in ("t_https", "t_grpcs"):
            with ThreadPoolExecutor(8) as pool:
                got = list(pool.map(lambda x, m=m: post(front, f"/v2/models/{m}/infer", mlp_doc(x)), xs))
            check(f"TLS upstreams: {m}, 16 requests 8 at a time, the plain upstream's answers",
                  all(s == 200 and np.allclose(np.array(d["outputs"][0]["data"]), np.array(w[1]["outputs"][0]["data"]),
                                               atol=1e-5) for (s, d, _, _), w in zip(got, want)),
                  [(s, str(d)[:160]) for s, d, _, _ in got if s != 200][:3])
    finally:
        check_stopped(front, "front TLS")
        tup.stop()


def check_metrics_listed(front):
    status, body, _, _ = request(front.port, "GET", "/metrics", timeout=10)
    text = body.decode(errors="replace") if status == 200 else ""
    for name in ("celer_remote_call_duration_seconds_bucket", "celer_remote_call_duration_seconds_count",
                 "celer_remote_errors_total", "celer_remote_retries_total", "celer_remote_inflight",
                 "celer_remote_waiting", "celer_remote_circuit_state"):
        check(f"/metrics exports {name}{{model=...}}", re.search(name + r'\{[^}]*model="', text) is not None,
              [ln for ln in text.splitlines() if "remote" in ln][:5])


# ---- main ---------------------------------------------------------------------------------------------


def run(tmp, grpc, pb, pb_grpc):
    global GRPC
    GRPC = (grpc, pb, pb_grpc)
    up_grpc = free_port()
    up = Server(REPO_SRC, "--grpc-port", str(up_grpc))
    ups = [up]
    stub = Stub()
    sink = Receiver()
    fronts = []
    try:
        repo_h, repo_g = os.path.join(tmp, "front-http"), os.path.join(tmp, "front-grpc")
        build_front(repo_h, f"http://127.0.0.1:{up.port}",
                    {"mlp": {"circuit_breaker": {"failures": 5, "open_ms": 1000}, "connect_timeout_ms": 500}})
        build_stub_models(repo_h, stub)
        remote(repo_h, "r_batch", url=f"http://127.0.0.1:{up.port}", model="mlp", max_batch_size=8, max_inflight=1)
        build_front(repo_g, f"grpc://127.0.0.1:{up_grpc}")
        dead = free_port()  # nothing listens there
        remote(repo_g, "r_dead", url=f"http://127.0.0.1:{dead}", model="mlp", connect_timeout_ms=300, timeout_ms=500)
        remote(repo_g, "r_badkey", url=f"grpc://127.0.0.1:{up_grpc}", model="mlp", colour="blue")
        late = free_port()  # an upstream started once the front serves
        remote(repo_g, "r_late", url=f"http://127.0.0.1:{late}", model="mlp", connect_timeout_ms=300)
        check("front repositories: only remote.yaml in the remote models' folders",
              all(os.listdir(os.path.join(r, m)) == ["remote.yaml"] for r in (repo_h, repo_g) for m in MODELS))
        fh_grpc, fg_grpc = free_port(), free_port()
        front = Server(repo_h, "--grpc-port", str(fh_grpc), "--trace-otlp-url", sink.url,
                       "--trace-otlp-protocol", "http/json", "--trace-rate", "0",
                       env={TOKEN_ENV: TOKEN, KEY_ENV: KEY})
        fronts.append(front)
        gfront = Server(repo_g, "--grpc-port", str(fg_grpc))
        fronts.append(gfront)
        s, idx = front.json("POST", "/v2/repository/index", {})[:2]
        states = {e["name"]: (e.get("state"), e.get("reason")) for e in idx} if s == 200 else {}
        check("front (http://): every remote model and pipeline READY",
              states and all(v[0] == "READY" for v in states.values()), states)
        s, idx = gfront.json("POST", "/v2/repository/index", {})[:2]
        states = {e["name"]: (e.get("state"), e.get("reason")) for e in idx} if s == 200 else {}
        bad = {k: states.pop(k, None) for k in ("r_dead", "r_badkey", "r_late")}
        check("front (grpc://): every remote model and pipeline READY",
              states and all(v[0] == "READY" for v in states.values()), states)
        check("an unreachable upstream: the model is UNAVAILABLE, the reason names it",
              bad["r_dead"] and bad["r_dead"][0] == "UNAVAILABLE" and str(dead) in (bad["r_dead"][1] or ""), bad)
        check("an unknown key in remote.yaml: UNAVAILABLE, the reason names the key",
              bad["r_badkey"] and bad["r_badkey"][0] == "UNAVAILABLE" and "colour" in (bad["r_badkey"][1] or ""), bad)
        try:
            check_late_upstream(gfront, late, ups)
        except Exception as e:
            check("late upstream: no exception in the test", False, f"{type(e).__name__}: {e}")
        ugrpc = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, up_grpc))
        rng = np.random.default_rng(3)
        for label, f, port in (("http://", front, fh_grpc), ("grpc://", gfront, fg_grpc)):
            fgrpc = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, port))
            for group, fn in (("remote models", lambda: check_remote_models(label, f, fgrpc, up, ugrpc, rng)),
                              ("pipelines", lambda: check_pipelines(label, f, fgrpc, up, ugrpc))):
                try:
                    fn()
                except Exception as e:  # an unexpected answer's shape: one failure, then the next group
                    check(f"{label} {group}: no exception in the test", False, f"{type(e).__name__}: {e}")
        fgrpc = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, fh_grpc))
        for group, fn in (("headers", lambda: check_headers(front, fh_grpc, stub, sink)),
                          ("cache", lambda: check_cache(front, stub, rng)),
                          ("deadlines", lambda: check_deadlines(front, fgrpc, stub)),
                          ("in-flight", lambda: check_inflight(front, stub)),
                          ("faults", lambda: check_faults(front, fgrpc, stub)),
                          ("readiness probes", lambda: check_probe(front, fgrpc, stub)),
                          ("batching", lambda: check_batching(front, up))):
            try:
                fn()
            except Exception as e:
                check(f"{group}: no exception in the test", False, f"{type(e).__name__}: {e}")
            stub.faults()
        try:
            check_restart(front, gfront, ups, up_grpc)
        except Exception as e:
            check("restart: no exception in the test", False, f"{type(e).__name__}: {e}")
        check_metrics_listed(front)
        try:
            check_tls(tmp, up)
        except Exception as e:
            check("TLS: no exception in the test", False, f"{type(e).__name__}: {e}")
    finally:
        for f, what in zip(fronts, ("front http://", "front grpc://")):
            check_stopped(f, what)
        for u in ups:
            if u.proc.poll() is None:
                u.stop()
        stub.stop()
        sink.close()


if __name__ == "__main__":
    sys.exit(grpc_stubs.main("celer-e2e-remote-", run))
