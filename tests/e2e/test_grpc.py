#!/usr/bin/python3
"""End-to-end: the gRPC front end with a client nobody here wrote. @grpc/grpc-js and
@grpc/proto-loader (installed with npm into a cache folder outside the repository when missing) load
Triton's unmodified grpc_service.proto, model_config.proto and health.proto (tests/grpc/proto) and
call `celer serve` on loopback: every RPC of GRPCInferenceService and grpc.health.v1.Health/Check;
ModelInfer against HTTP for every example model and pipeline, every datatype and a 16 MiB tensor;
ModelStreamInfer (answers as each finishes, errors in the stream, more requests than a stream
holds before it pauses, cancellation); loads and unloads; deadlines; metrics by protocol and gRPC
status. Node's own http2 sends what grpc-js never would (a non-gRPC content-type, a message over
the cap, a compressed message, malformed grpc-timeout). SIGTERM exits 0. If the client cannot be
installed the test fails: it never passes without having run.

usage: test_grpc.py CELER_BIN EXAMPLE_REPOSITORY
environment: CELER_NODE_CACHE, the folder holding node_modules (default ~/.cache/celer-test/node)"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_cache import NODE_CACHE, node_modules  # noqa: E402
from test_server import Server, check, free_port, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
GRPC_DIR = os.path.join(HERE, "..", "grpc")
PROTO_DIR = os.path.join(GRPC_DIR, "proto")
NODE_PACKAGES = ["@grpc/grpc-js@1.14.7", "@grpc/proto-loader@0.8.1"]
OK, DEADLINE_EXCEEDED, NOT_FOUND, RESOURCE_EXHAUSTED, UNIMPLEMENTED = 0, 4, 5, 8, 12
INVALID_ARGUMENT = 3


def node_client():
    """The folder holding node_modules with grpc-js and proto-loader; installs them when missing
    (idempotent: an installed copy is used offline). None when they cannot be had."""
    return node_modules(NODE_PACKAGES, timeout=300)


def calls(port, items, node_path):
    """Runs the calls through tests/grpc/client.js; returns their outcomes."""
    r = subprocess.run(["node", os.path.join(GRPC_DIR, "client.js"), f"127.0.0.1:{port}", PROTO_DIR],
                       input=json.dumps(items), capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NODE_PATH=os.path.join(node_path, "node_modules")))
    if r.returncode != 0:
        raise RuntimeError(f"client.js exited {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def call(method, request=None, service="inference", **extra):
    return dict(service=service, method=method, request=request or {}, **extra)


def raw(path, headers, body_hex=""):
    return dict(raw=True, path=path, headers=headers, body_hex=body_hex)


GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}


def wait_port(port, proc):
    deadline = time.time() + 20
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False

NP_OF = {"FP32": np.float32, "INT64": np.int64}


def b64(a):
    return base64.b64encode(a.tobytes()).decode()


def raw_bytes(o, i):
    """raw_output_contents[i] of a ModelInferResponse as grpc-js gives it (a Buffer as JSON)."""
    r = o["response"]["raw_output_contents"][i]
    return bytes(r["data"]) if isinstance(r, dict) else base64.b64decode(r)


def bytes_elements(buf):
    out, k = [], 0
    while k < len(buf):
        n = int.from_bytes(buf[k:k + 4], "little")
        out.append(buf[k + 4:k + 4 + n])
        k += 4 + n
    return out


def bytes_raw(elements):
    return b"".join(len(e).to_bytes(4, "little") + e for e in elements)


def identity_model(repo, name, onnx_type, dims):
    """repo/name/1/model.onnx: an Identity of one input x (onnx_type, dims) to y, without config."""
    os.makedirs(os.path.join(repo, name, "1"))
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx_type, dims)],
                          [helper.make_tensor_value_info("y", onnx_type, dims)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(repo, name, "1", "model.onnx"))


def test_model_infer(node_path):
    """ModelInfer through the request service: every example model and the route pipeline give the
    tensors HTTP gives; BYTES keep NUL bytes; errors carry their codes."""
    tmp = tempfile.mkdtemp(prefix="celer-e2e-grpc-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    identity_model(repo, "strid", TensorProto.STRING, ["n"])
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    rng = np.random.default_rng(5)
    cases = []  # (name, model, inputs [(name, datatype, array)], output names)
    for model, inp, shape, outp in (("identity", "x", (2, 4), "y"), ("mlp", "features", (3, 16), "scores"),
                                    ("mlp_basic", "features", (1, 16), "scores"),
                                    ("tiny_cnn", "image", (1, 3, 64, 64), "logits"),
                                    ("user_tower", "features", (2, 19), "embedding")):
        cases.append((model, model, [(inp, "FP32", rng.standard_normal(shape).astype(np.float32))], [outp]))
    for seg in (b"premium", b"basic"):
        cases.append((f"route {seg.decode()}", "route",
                      [("segment", "BYTES", [seg]), ("features", "FP32", rng.standard_normal((1, 16)).astype(np.float32))],
                      ["scores"]))
    items = []
    for name, model, inputs, outputs in cases:
        req = {"model_name": model, "id": f"req-{name}", "inputs": [], "raw_input_contents": []}
        for iname, dt, a in inputs:
            shape = [len(a)] if dt == "BYTES" else list(a.shape)
            req["inputs"].append({"name": iname, "datatype": dt, "shape": shape})
            req["raw_input_contents"].append(base64.b64encode(bytes_raw(a) if dt == "BYTES" else a.tobytes()).decode())
        items.append(call("ModelInfer", req))
    # typed contents instead of raw bytes, and BYTES with NUL bytes and an empty element
    x = rng.standard_normal((1, 16)).astype(np.float32)
    items.append(call("ModelInfer", {"model_name": "mlp", "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 16], "contents": {"fp32_contents": x.ravel().tolist()}}]}))
    blobs = [b"he\x00llo", b"\x00\x01\x02\x03", b""]
    items.append(call("ModelInfer", {"model_name": "strid", "inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [3]}], "raw_input_contents": [b64(np.frombuffer(bytes_raw(blobs), np.uint8))]}))
    items.append(call("ModelInfer", {"model_name": "strid", "inputs": [
        {"name": "x", "datatype": "BYTES", "shape": [3],
         "contents": {"bytes_contents": [base64.b64encode(b).decode() for b in blobs]}}]}))
    n = len(items)
    items += [
        call("ModelInfer", {"model_name": "no_such_model"}),                                         # n
        call("ModelInfer", {"model_name": "mlp", "inputs": []}),                                      # n+1
        call("ModelInfer", {"model_name": "mlp", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 16]}],
                            "raw_input_contents": [b64(x)],
                            "outputs": [{"name": "scores", "parameters": {"classification": {"int64_param": 3}}}]}),
        call("ModelInfer", {"model_name": "mlp", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 15]}],
                            "raw_input_contents": [b64(x[:, :15])]}),                                # n+3
    ]
    out = calls(gport, items, node_path)
    for k, (name, model, inputs, outputs) in enumerate(cases):
        body = {"inputs": [{"name": iname, "datatype": dt, "shape": [len(a)] if dt == "BYTES" else list(a.shape),
                            "data": [e.decode() for e in a] if dt == "BYTES" else a.ravel().tolist()}
                           for iname, dt, a in inputs]}
        status, doc, _ = srv.json("POST", f"/v2/models/{model}/infer", body)
        o = out[k]
        same = status == 200 and o["code"] == OK
        if same:
            r = o["response"]
            same = r["id"] == f"req-{name}" and r["model_name"] == model
            for i, oname in enumerate(outputs):
                want = next(t for t in doc["outputs"] if t["name"] == oname)
                got_t = next(t for t in r["outputs"] if t["name"] == oname)
                j = r["outputs"].index(got_t)
                got = np.frombuffer(raw_bytes(o, j), NP_OF[want["datatype"]])
                same = same and got_t["datatype"] == want["datatype"] and [int(d) for d in got_t["shape"]] == want["shape"] \
                    and np.array_equal(got, np.array(want["data"], NP_OF[want["datatype"]]).ravel())
        check(f"ModelInfer {name}: the tensors HTTP gives, id echoed", same, json.dumps(o)[:300] + " " + str(doc)[:300])
    k = len(cases)
    status, doc, _ = srv.json("POST", "/v2/models/mlp/infer",
                              {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 16], "data": x.ravel().tolist()}]})
    got = np.frombuffer(raw_bytes(out[k], 0), np.float32) if out[k]["code"] == OK else None
    check("ModelInfer with typed fp32_contents: the same scores as HTTP",
          got is not None and np.array_equal(got, np.array(doc["outputs"][0]["data"], np.float32)), json.dumps(out[k])[:300])
    for j, form in ((k + 1, "raw"), (k + 2, "bytes_contents")):
        o = out[j]
        ok = o["code"] == OK and bytes_elements(raw_bytes(o, 0)) == blobs
        check(f"ModelInfer BYTES ({form}) with NUL bytes and an empty element: exact", ok, json.dumps(o)[:300])
    o = out[n]
    check("ModelInfer of an unknown model: NOT_FOUND naming it", o["code"] == NOT_FOUND and "no_such_model" in o["details"],
          json.dumps(o)[:300])
    o = out[n + 1]
    check("ModelInfer without its input: INVALID_ARGUMENT naming it", o["code"] == INVALID_ARGUMENT and "features" in o["details"],
          json.dumps(o)[:300])
    o = out[n + 2]
    scores = np.array(doc["outputs"][0]["data"], np.float32)
    top = ["%f:%d" % (float(scores[i]), i) for i in sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:3]]
    ok = o["code"] == OK and o["response"]["outputs"][0]["datatype"] == "BYTES" \
        and [int(d) for d in o["response"]["outputs"][0]["shape"]] == [1, 3] \
        and [e.decode() for e in bytes_elements(raw_bytes(o, 0))] == top
    check("ModelInfer asking classification 3: the top 3 of HTTP's scores as Triton writes them", ok,
          json.dumps(o)[:300] + f" want {top}")
    o = out[n + 3]
    check("ModelInfer with a wrong shape: INVALID_ARGUMENT", o["code"] == INVALID_ARGUMENT and "features" in o["details"],
          json.dumps(o)[:300])
    status, doc, _ = srv.json("GET", "/v2/models/mlp/stats")
    count = doc["model_stats"][0]["inference_count"] if status == 200 else -1
    check("gRPC inferences are counted in the model's statistics", count >= 3, doc)
    out = calls(gport, [call("ModelStatistics", {"name": "mlp"}), call("ModelStatistics", {"name": "mlp", "version": "1"}),
                        call("ModelStatistics", {}), call("ModelStatistics", {"name": "no_such_model"}),
                        call("RepositoryIndex", {}), call("RepositoryIndex", {"ready": True}),
                        call("RepositoryIndex", {"repository_name": "other"})], node_path)
    status, http_stats, _ = srv.json("GET", "/v2/models/mlp/stats")

    def stats(r):
        """ModelStatisticsResponse as GET .../stats writes it (grpc-js gives uint64 as strings)."""
        def dur(d):
            return {"count": int(d["count"]), "ns": int(d["ns"])}
        keys = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")
        return {"model_stats": [{"name": m["name"], "version": m["version"], "last_inference": int(m["last_inference"]),
                                 "inference_count": int(m["inference_count"]),
                                 "execution_count": int(m["execution_count"]),
                                 "inference_stats": {k: dur(m["inference_stats"][k]) for k in keys},
                                 "response_stats": m["response_stats"],
                                 "batch_stats": [{"batch_size": int(b["batch_size"]),
                                                  **{k: dur(b[k]) for k in ("compute_input", "compute_infer",
                                                                            "compute_output")}}
                                                 for b in m["batch_stats"]],
                                 "memory_usage": m["memory_usage"]}
                                for m in r["model_stats"]]}
    for i, what in ((0, "mlp"), (1, "mlp version 1")):
        check(f"ModelStatistics {what}: what GET /v2/models/mlp/stats says",
              out[i]["code"] == OK and stats(out[i]["response"]) == http_stats, json.dumps(out[i])[:400] + str(http_stats))
    check("ModelStatistics of every model: one entry per loaded version",
          out[2]["code"] == OK and len(out[2]["response"]["model_stats"]) >= 7, json.dumps(out[2])[:300])
    check("ModelStatistics of an unknown model: NOT_FOUND", out[3]["code"] == NOT_FOUND, json.dumps(out[3])[:300])
    for i, ready in ((4, False), (5, True)):
        status, want, _ = srv.json("POST", "/v2/repository/index", {"ready": ready})
        got = [{k: v for k, v in m.items() if v != "" or k == "reason"} for m in out[i]["response"]["models"]] \
            if out[i]["code"] == OK else None
        check(f"RepositoryIndex (ready={ready}): what POST /v2/repository/index says", got == want,
              json.dumps(out[i])[:300] + " vs " + json.dumps(want)[:300])
    check("RepositoryIndex of another repository: NOT_FOUND", out[6]["code"] == NOT_FOUND, json.dumps(out[6])[:300])
    check("SIGTERM exits 0 (ModelInfer server)", srv.stop() == 0, srv.output()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


# A model whose config sets the keys celer writes back that the examples leave out (reshape is not
# served yet: test_grpc_codec covers it).
RICH_CONFIG = """max_batch_size: 8
version_policy { specific { versions: [1, 2] } }
input [{ name: "x" data_type: TYPE_FP32 dims: [4] }]
output [{ name: "y" data_type: TYPE_FP32 dims: [4] label_filename: "labels.txt" }]
dynamic_batching {
  preferred_batch_size: [2, 4] max_queue_delay_microseconds: 50
  default_queue_policy { default_timeout_microseconds: 7000 allow_timeout_override: true max_queue_size: 10 }
}
instance_group [{ count: 2 kind: KIND_CPU }]
response_cache { enable: true }
parameters { key: "cache_ttl_seconds" value { string_value: "30" } }
parameters { key: "note" value { string_value: "a \\"quoted\\" value, 100%" } }
"""

# Fields of ModelConfig a decoder fills in when the message leaves them out (grpc-js with
# defaults: true), and the names proto-loader gives the oneofs (oneofs: true).
PB_DEFAULTS = (None, "", "0", 0, False, [], {}, "REJECT")
PB_ONEOFS = ("policy_choice", "scheduling_choice")


def same_config(http, pb, path="config"):
    """Whether ModelConfig as grpc-js decodes it (int64 as strings, enums as names) says what the
    JSON config says: every key of the JSON with the same value, and nothing else but defaults.
    Returns "" or where they differ."""
    if isinstance(http, dict):
        if not isinstance(pb, dict):
            return f"{path}: {pb!r} is not an object"
        for k, v in http.items():
            if k not in pb:
                return f"{path}.{k}: missing"
            why = same_config(v, pb[k], f"{path}.{k}")
            if why:
                return why
        extra = [k for k, v in pb.items() if k not in http and k not in PB_ONEOFS and v not in PB_DEFAULTS]
        return f"{path}: fields HTTP does not have: {extra}" if extra else ""
    if isinstance(http, list):
        if not isinstance(pb, list) or len(pb) != len(http):
            return f"{path}: {pb!r} vs {http!r}"
        return next((w for w in (same_config(h, g, f"{path}[{i}]") for i, (h, g) in enumerate(zip(http, pb))) if w), "")
    if isinstance(http, bool):
        return "" if pb is http else f"{path}: {pb!r} vs {http!r}"
    if not isinstance(http, int):
        return "" if pb == http else f"{path}: {pb!r} vs {http!r}"
    return "" if str(pb) == str(http) else f"{path}: {pb!r} vs {http!r}"  # int64 and uint64 come as strings


def test_model_config(node_path):
    """ModelConfig: for every example model and pipeline (and a model setting every key celer
    writes back, each of its versions), the config GET /v2/models/{m}[/versions/{v}]/config gives;
    an unknown model or version NOT_FOUND with HTTP's message; an empty name INVALID_ARGUMENT."""
    tmp = tempfile.mkdtemp(prefix="celer-e2e-grpc-config-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    for v in ("1", "2"):
        os.makedirs(os.path.join(repo, "rich", v))
        shutil.copy(os.path.join(repo, "identity", "1", "model.onnx"), os.path.join(repo, "rich", v))
    with open(os.path.join(repo, "rich", "config.pbtxt"), "w") as f:
        f.write(RICH_CONFIG)
    with open(os.path.join(repo, "rich", "labels.txt"), "w") as f:
        f.write("a\nb\nc\nd\n")
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    models = sorted(d for d in os.listdir(repo) if not d.startswith("."))
    targets = [(m, "") for m in models] + [("rich", "1"), ("rich", "2")]
    bad = [("no_such_model", ""), ("mlp", "7")]
    out = calls(gport, [call("ModelConfig", {"name": m, "version": v}) for m, v in targets + bad]
                + [call("ModelConfig", {"version": "1"})], node_path)
    for (model, version), o in zip(targets, out):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/config"
        status, want, _ = srv.json("GET", path)
        why = same_config(want, o["response"]["config"]) if o["code"] == OK and status == 200 else "not answered"
        check(f"ModelConfig {model}{' version ' + version if version else ''}: what GET {path} says", not why,
              f"{why}: {json.dumps(o)[:600]} vs {json.dumps(want)[:600]}")
    status, rich, _ = srv.json("GET", "/v2/models/rich/config")
    check("the rich config sets what it should (labels, parameters, response_cache, specific versions)",
          status == 200 and rich["output"][0]["label_filename"] == "labels.txt" and rich["response_cache"]["enable"]
          and rich["version_policy"] == {"specific": {"versions": [1, 2]}} and len(rich["parameters"]) == 2, rich)
    for (model, version), o in zip(bad, out[len(targets):]):
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/config"
        status, want, _ = srv.json("GET", path)
        check(f"ModelConfig of an unknown {'version' if version else 'model'}: NOT_FOUND with HTTP's message",
              o["code"] == NOT_FOUND and status == 404 and o["details"] == want["error"], f"{json.dumps(o)} vs {want}")
    o = out[-1]
    check("ModelConfig without a name: INVALID_ARGUMENT", o["code"] == INVALID_ARGUMENT and "name" in o["details"],
          json.dumps(o))
    check("SIGTERM exits 0 (ModelConfig server)", srv.stop() == 0, srv.output()[-2000:])
    log = srv.output()
    check("no sanitizer report (ModelConfig server)", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


def infer_request(model, inputs, rid):
    """A ModelInferRequest as grpc-js takes it: inputs [(name, datatype, array or list of bytes)] raw."""
    req = {"model_name": model, "id": rid, "inputs": [], "raw_input_contents": []}
    for iname, dt, a in inputs:
        shape = [len(a)] if dt == "BYTES" else list(a.shape)
        req["inputs"].append({"name": iname, "datatype": dt, "shape": shape})
        req["raw_input_contents"].append(base64.b64encode(bytes_raw(a) if dt == "BYTES" else a.tobytes()).decode())
    return req


def stream_out(r):
    """(id, error_message, first output as float32 or None) of a ModelStreamInferResponse."""
    inner = r.get("infer_response") or {}
    raw_out = inner.get("raw_output_contents") or []
    got = None
    if raw_out:
        got = np.frombuffer(bytes(raw_out[0]["data"]) if isinstance(raw_out[0], dict) else base64.b64decode(raw_out[0]),
                            np.float32)
    return inner.get("id", ""), r.get("error_message", ""), got


def test_stream_infer(node_path):
    """ModelStreamInfer: many requests on one stream answered as each finishes (the id ties them),
    errors as error_message without ending the stream, more requests than a stream holds before it
    pauses, a client that writes each request after the previous answer, cancellation, an empty
    stream, a pipeline."""
    gport = free_port()
    srv = Server(REPO_SRC, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(40)]
    reqs = [infer_request("mlp", [("features", "FP32", x)], f"s-{i}") for i, x in enumerate(xs)]
    reqs.insert(10, {"model_name": "no_such_model", "id": "bad-model"})
    reqs.insert(20, infer_request("mlp", [("features", "FP32", xs[0][:, :15])], "bad-shape"))
    many = [infer_request("identity", [("x", "FP32", np.full((1, 4), i, np.float32))], f"i-{i}") for i in range(600)]
    route = infer_request("route", [("segment", "BYTES", [b"premium"]), ("features", "FP32", xs[1])], "r-1")
    out = calls(gport, [
        call("ModelStreamInfer", stream=reqs),                                        # 0
        call("ModelStreamInfer", stream=many),                                        # 1
        call("ModelStreamInfer", stream=reqs[:6], write_after_each=True),             # 2
        call("ModelStreamInfer", stream=[]),                                          # 3
        call("ModelStreamInfer", stream=many, cancel_after=1),                        # 4
        call("ServerLive"),                                                           # 5
        call("ModelStreamInfer", stream=[route]),                                     # 6
    ], node_path)
    want = {}
    for i, x in enumerate(xs):
        status, doc, _ = srv.json("POST", "/v2/models/mlp/infer",
                                  {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 16],
                                               "data": x.ravel().tolist()}]})
        want[f"s-{i}"] = np.array(doc["outputs"][0]["data"], np.float32)
    o = out[0]
    got = {rid: (err, t) for rid, err, t in map(stream_out, o.get("responses", []))}
    check("ModelStreamInfer: every request answered on the stream, status OK",
          o["code"] == OK and len(o["responses"]) == len(reqs), json.dumps(o)[:400])
    # requests on a stream run concurrently, so the model batches them: batched rows may differ from
    # a batch of one in the last bits (another GEMM blocking), on either protocol
    check("ModelStreamInfer: each answer is HTTP's for the request its id names",
          all(k in got and got[k][1] is not None and np.allclose(got[k][1], v, rtol=1e-5, atol=1e-6)
              for k, v in want.items()),
          str(sorted(got))[:300])
    err = got.get("bad-model", ("", None))[0]
    check("ModelStreamInfer: an unknown model is an error_message with its id, the stream goes on",
          "no_such_model" in err, json.dumps(o)[:300])
    err = got.get("bad-shape", ("", None))[0]
    check("ModelStreamInfer: a wrong shape is an error_message with its id", "features" in err, err)
    o = out[1]
    ids = [stream_out(r)[0] for r in o.get("responses", [])]
    ok = o["code"] == OK and sorted(ids) == sorted(f"i-{i}" for i in range(600)) and all(
        np.array_equal(stream_out(r)[2], np.full(4, int(stream_out(r)[0][2:]), np.float32)) for r in o["responses"])
    check("ModelStreamInfer: 600 requests written at once (more than a stream holds before pausing): all answered",
          ok, f"code {o['code']} {o['details']} {len(ids)} answers")
    o = out[2]
    check("ModelStreamInfer: a client writing each request after the previous answer (answers come before the "
          "stream ends)", o["code"] == OK and len(o["responses"]) == 6, json.dumps(o)[:300])
    check("ModelStreamInfer: an empty stream ends with OK", out[3]["code"] == OK and out[3]["responses"] == [],
          json.dumps(out[3])[:300])
    check("ModelStreamInfer: a cancelled stream ends CANCELLED on the client", out[4]["code"] == 1,
          json.dumps(out[4])[:300])
    check("the server still answers after a cancelled stream", out[5]["code"] == OK, json.dumps(out[5])[:300])
    status, doc, _ = srv.json("POST", "/v2/models/route/infer",
                              {"inputs": [{"name": "segment", "datatype": "BYTES", "shape": [1], "data": ["premium"]},
                                          {"name": "features", "datatype": "FP32", "shape": [1, 16],
                                           "data": xs[1].ravel().tolist()}]})
    o = out[6]
    r = stream_out(o["responses"][0]) if o.get("responses") else ("", "", None)
    check("ModelStreamInfer of a pipeline: HTTP's answer",
          o["code"] == OK and r[0] == "r-1" and r[2] is not None
          and np.array_equal(r[2], np.array(doc["outputs"][0]["data"], np.float32)), json.dumps(o)[:300])
    code = srv.stop()
    check("SIGTERM exits 0 (streaming server)", code == 0, srv.output()[-2000:])
    log = srv.output()
    check("no sanitizer report (streaming server)", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


# every KServe datatype celer serves: (KServe name, numpy dtype, ONNX type, typed contents field or None)
DATATYPES = [
    ("BOOL", np.bool_, TensorProto.BOOL, "bool_contents"),
    ("UINT8", np.uint8, TensorProto.UINT8, "uint_contents"),
    ("UINT16", np.uint16, TensorProto.UINT16, "uint_contents"),
    ("UINT32", np.uint32, TensorProto.UINT32, "uint_contents"),
    ("UINT64", np.uint64, TensorProto.UINT64, "uint64_contents"),
    ("INT8", np.int8, TensorProto.INT8, "int_contents"),
    ("INT16", np.int16, TensorProto.INT16, "int_contents"),
    ("INT32", np.int32, TensorProto.INT32, "int_contents"),
    ("INT64", np.int64, TensorProto.INT64, "int64_contents"),
    ("FP16", np.float16, TensorProto.FLOAT16, None),
    ("BF16", "bf16", TensorProto.BFLOAT16, None),  # no numpy type: its bits as uint16
    ("FP32", np.float32, TensorProto.FLOAT, "fp32_contents"),
    ("FP64", np.float64, TensorProto.DOUBLE, "fp64_contents"),
]


def test_datatypes_and_pipelines(node_path):
    """Every datatype round-trips exactly through an Identity model over gRPC (raw, and typed
    contents where the proto has them), a 16 MiB tensor too; the recommend and classify pipelines
    answer over gRPC what they answer over HTTP."""
    tmp = tempfile.mkdtemp(prefix="celer-e2e-grpc-types-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    for name, _, onnx_type, _ in DATATYPES:
        identity_model(repo, f"id_{name.lower()}", onnx_type, ["n", 3])
    identity_model(repo, "big", TensorProto.FLOAT, ["n", "m"])
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    rng = np.random.default_rng(23)
    arrays, items = {}, []
    for name, npt, _, field in DATATYPES:
        if npt == "bf16":
            a = (np.array([[0.001, -0.0, 1.5], [3.0e38, 1.0e-38, -2.25]], np.float32).view(np.uint32) >> 16).astype(np.uint16)
            npt = np.uint16
        elif npt == np.bool_:
            a = rng.integers(0, 2, (2, 3)).astype(np.bool_)
        elif np.issubdtype(npt, np.integer):
            info = np.iinfo(npt)
            a = np.array([[info.min, info.max, 0], [1, info.max - 1, 7]], npt)
        else:
            a = np.array([[0.001, -0.0, 1.5], [np.finfo(npt).max, np.finfo(npt).tiny, -2.25]], npt)
        arrays[name] = a
        tensor = {"name": "x", "datatype": name, "shape": [2, 3]}
        items.append(call("ModelInfer", {"model_name": f"id_{name.lower()}", "inputs": [tensor],
                                         "raw_input_contents": [b64(a)]}))
        if field:
            vals = a.ravel().tolist()
            if field in ("uint64_contents", "int64_contents"):
                vals = [str(v) for v in vals]
            items.append(call("ModelInfer", {"model_name": f"id_{name.lower()}",
                                             "inputs": [dict(tensor, contents={field: vals})]}))
    big = rng.standard_normal((1, 4 * 1024 * 1024)).astype(np.float32)  # 16 MiB
    items.append(call("ModelInfer", {"model_name": "big", "inputs": [{"name": "x", "datatype": "FP32",
                                     "shape": list(big.shape)}], "raw_input_contents": [b64(big)]}))
    rec_inputs = [("age", "FP32", np.array([31], np.float32)), ("income", "FP32", np.array([52000], np.float32)),
                  ("country", "BYTES", [b"de"]), ("device", "BYTES", [b"ios"]),
                  ("exclude", "INT64", np.array([[100007]], np.int64))]
    items.append(call("ModelInfer", infer_request("recommend", rec_inputs, "rec")))
    with open(os.path.join(HERE, "..", "data", "pipeline", "cat.jpg"), "rb") as f:
        jpeg = f.read()
    items.append(call("ModelInfer", infer_request("classify", [("image", "BYTES", [jpeg])], "cls")))
    out = calls(gport, items, node_path)
    k = 0
    for name, npt, _, field in DATATYPES:
        for form in (("raw", "contents") if field else ("raw",)):
            o = out[k]
            k += 1
            ok = o["code"] == OK and o["response"]["outputs"][0]["datatype"] == name
            got = np.frombuffer(raw_bytes(o, 0), np.uint16 if npt == "bf16" else npt).reshape(2, 3) if ok else None
            ok = ok and got.tobytes() == arrays[name].tobytes()
            check(f"{name} through Identity over gRPC ({form}): exact, outputs raw", ok, json.dumps(o)[:300])
    o = out[k]
    k += 1
    ok = o["code"] == OK and raw_bytes(o, 0) == big.tobytes()
    check(f"a 16 MiB FP32 tensor round-trips exactly over gRPC ({big.nbytes} bytes)", ok, json.dumps(o)[:200])
    status, doc, _ = srv.json("POST", "/v2/models/recommend/infer",
                              {"age": 31, "income": 52000, "country": "de", "device": "ios", "exclude": [100007]})
    o = out[k]
    k += 1
    ok = o["code"] == OK and status == 200
    if ok:
        names = [t["name"] for t in o["response"]["outputs"]]
        ids = np.frombuffer(raw_bytes(o, names.index("item_ids")), np.int64)
        scores = np.frombuffer(raw_bytes(o, names.index("scores")), np.float32)
        ok = ids.tolist() == [int(v) for v in np.ravel(doc["item_ids"])] and np.array_equal(
            scores, np.array(np.ravel(doc["scores"]), np.float32))
    check("the recommend pipeline over gRPC: HTTP's item ids and scores", ok, json.dumps(o)[:300] + str(doc)[:300])
    status, body, _ = srv.request("POST", "/v2/models/classify/infer", jpeg, {"Content-Type": "image/jpeg"})
    doc = json.loads(body) if status == 200 else {}
    o = out[k]
    ok = o["code"] == OK and status == 200
    if ok:
        names = [t["name"] for t in o["response"]["outputs"]]
        labels = [e.decode() for e in bytes_elements(raw_bytes(o, names.index("labels")))]
        want = next(t["data"] for t in doc["outputs"] if t["name"] == "labels")
        ok = labels == list(want)
    check("the classify pipeline over gRPC (the JPEG as one BYTES element): HTTP's labels", ok,
          json.dumps(o)[:300] + str(doc)[:300])
    check("SIGTERM exits 0 (datatypes server)", srv.stop() == 0, srv.output()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


def test_repository(node_path):
    """RepositoryModelUnload and RepositoryModelLoad on the registry's action pool, with HTTP's
    refusals of the parameters celer does not take."""
    tmp = tempfile.mkdtemp(prefix="celer-e2e-grpc-repo-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    out = calls(gport, [
        call("RepositoryModelUnload", {"model_name": "mlp_basic"}),                                   # 0
        call("ModelReady", {"name": "mlp_basic"}),                                                    # 1
        call("RepositoryIndex", {}),                                                                  # 2
        call("RepositoryModelLoad", {"model_name": "mlp_basic"}),                                     # 3
        call("ModelReady", {"name": "mlp_basic"}),                                                    # 4
        call("RepositoryModelLoad", {"model_name": "mlp_basic",
                                     "parameters": {"config": {"string_param": '{"max_batch_size": -1}'}}}),  # 5
        call("RepositoryModelUnload", {"model_name": "mlp_basic",
                                       "parameters": {"unload_dependents": {"bool_param": True}}}),   # 6
        call("RepositoryModelUnload", {"model_name": "mlp_basic",
                                       "parameters": {"unload_dependents": {"bool_param": False}}}),  # 7
        call("RepositoryModelLoad", {"model_name": "no_such_model"}),                                 # 8
        call("RepositoryModelLoad", {"repository_name": "other", "model_name": "mlp_basic"}),         # 9
        call("RepositoryModelLoad", {}),                                                              # 10
        call("RepositoryModelLoad", {"model_name": "mlp_basic"}),                                     # 11
    ], node_path)

    def show(i):
        return json.dumps(out[i])[:300]

    check("RepositoryModelUnload: OK", out[0]["code"] == OK, show(0))
    check("after the unload, ModelReady is false", out[1]["code"] == OK and out[1]["response"]["ready"] is False,
          show(1))
    idx = {m["name"]: m for m in (out[2]["response"] or {}).get("models", [])}
    check("after the unload, RepositoryIndex says UNAVAILABLE",
          idx.get("mlp_basic", {}).get("state") == "UNAVAILABLE", show(2))
    check("RepositoryModelLoad: OK, and the model is ready again",
          out[3]["code"] == OK and out[4]["code"] == OK and out[4]["response"]["ready"] is True, show(3) + show(4))
    check("a load with an invalid config: INVALID_ARGUMENT, Triton's words first",
          out[5]["code"] == INVALID_ARGUMENT and out[5]["details"].startswith("Invalid config override")
          and "max_batch_size" in out[5]["details"], show(5))
    check("unload_dependents true: INVALID_ARGUMENT naming it",
          out[6]["code"] == INVALID_ARGUMENT and "unload_dependents" in out[6]["details"], show(6))
    check("unload_dependents false: OK", out[7]["code"] == OK, show(7))
    status, body, _ = srv.request("POST", "/v2/repository/models/no_such_model/load")
    check("loading an unknown model: the code and message HTTP gives",
          out[8]["code"] != OK and str(status).startswith("4") and "no_such_model" in out[8]["details"],
          show(8) + f" HTTP {status} {body[:200]!r}")
    check("a repository_name: UNIMPLEMENTED (celer serves one repository)",
          out[9]["code"] == UNIMPLEMENTED and "one repository" in out[9]["details"], show(9))
    check("a load without a model name: INVALID_ARGUMENT", out[10]["code"] == INVALID_ARGUMENT, show(10))
    check("loading it again after the refusals: OK", out[11]["code"] == OK, show(11))
    code = srv.stop()
    check("SIGTERM exits 0 (repository server)", code == 0, srv.output()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


def test_grpc_metrics(node_path):
    """/metrics: inference series carry the request's protocol, and gRPC calls are counted by method
    and status code, exactly."""
    gport = free_port()
    srv = Server(REPO_SRC, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    wait_port(gport, srv.proc)
    rng = np.random.default_rng(7)
    feats = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(5)]

    def infer(x, shape=(1, 16)):
        return call("ModelInfer", {"model_name": "mlp", "inputs": [{"name": "features", "datatype": "FP32",
                                                                     "shape": list(shape)}],
                                   "raw_input_contents": [b64(x)]})
    out = calls(gport, [infer(feats[0]), infer(feats[1]), infer(feats[2]),
                        infer(feats[3][:, :15], (1, 15)),                   # INVALID_ARGUMENT: a failure of mlp
                        call("ModelInfer", {"model_name": "no_such_model"}),  # NOT_FOUND: no version to count
                        call("ServerLive"), call("ServerLive"), call("Check", {"service": ""}, service="health"),
                        raw("/no.Such/Method", GRPC_HEADERS, "0000000000")], node_path)
    check("metrics: the gRPC calls answered as expected",
          [o.get("code") for o in out[:8]] == [OK, OK, OK, INVALID_ARGUMENT, NOT_FOUND, OK, OK, OK],
          json.dumps(out)[:600])
    for x in feats[3:]:
        status, _, _ = srv.json("POST", "/v2/models/mlp/infer", {"inputs": [
            {"name": "features", "shape": [1, 16], "datatype": "FP32", "data": x.ravel().tolist()}]})
        check("metrics: HTTP infer of mlp", status == 200, status)
    _, text, _ = srv.request("GET", "/metrics")
    samples = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    want = {
        'celer_inference_requests_total{model="mlp",version="1",protocol="grpc",outcome="success"}': 3,
        'celer_inference_requests_total{model="mlp",version="1",protocol="grpc",outcome="failure"}': 1,
        'celer_inference_requests_total{model="mlp",version="1",protocol="http",outcome="success"}': 2,
        'celer_inference_requests_total{model="mlp",version="1",protocol="http",outcome="failure"}': 0,
        'celer_inference_request_duration_seconds_count{model="mlp",version="1",protocol="grpc"}': 3,
        'celer_inference_request_duration_seconds_count{model="mlp",version="1",protocol="http"}': 2,
        'celer_inference_requests_total{model="identity",version="1",protocol="grpc",outcome="success"}': 0,
        'celer_grpc_requests_total{method="ModelInfer",code="OK"}': 3,
        'celer_grpc_requests_total{method="ModelInfer",code="INVALID_ARGUMENT"}': 1,
        'celer_grpc_requests_total{method="ModelInfer",code="NOT_FOUND"}': 1,
        'celer_grpc_requests_total{method="ServerLive",code="OK"}': 2,
        'celer_grpc_requests_total{method="Check",code="OK"}': 1,
        'celer_grpc_requests_total{method="unknown",code="UNIMPLEMENTED"}': 1,
    }
    got = {k: samples.get(k) for k in want}
    check("metrics: requests by protocol and gRPC calls by method and code, exact", got == want,
          "\n".join(f"{k}: got {got[k]}, want {v}" for k, v in want.items() if got[k] != v))
    check("metrics: the model's own series have no protocol label",
          'celer_inference_queue_duration_seconds_count{model="mlp",version="1"}' in samples
          and not any(k.startswith("celer_inference_queue_duration") and "protocol=" in k for k in samples),
          [k for k in samples if k.startswith("celer_inference_queue_duration_seconds_count")])
    check("metrics: a gRPC series is made when its method and code are first answered",
          'celer_grpc_requests_total{method="ServerLive",code="NOT_FOUND"}' not in samples
          and not any(k.startswith('celer_grpc_requests_total{method="ModelStreamInfer"') for k in samples),
          [k for k in samples if k.startswith("celer_grpc_")])
    check("SIGTERM exits 0 (metrics server)", srv.stop() == 0, srv.output()[-2000:])


def main():
    node_path = node_client()
    check("grpc-js and proto-loader are installed (npm)", node_path is not None,
          f"npm could not install {NODE_PACKAGES} into {NODE_CACHE}")
    if node_path is None:
        return summary()

    gport = free_port()
    srv = Server(REPO_SRC, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1",
                 "--grpc-max-message-bytes", "65536")
    check("the gRPC port listens", wait_port(gport, srv.proc), srv.output()[-2000:])
    svc = "/inference.GRPCInferenceService/"
    out = calls(gport, [
        call("ServerLive"),                                                         # 0
        call("ServerReady"),                                                        # 1
        call("ModelReady", {"name": "mlp"}),                                        # 2
        call("ModelReady", {"name": "mlp", "version": "1"}),                        # 3
        call("ModelReady", {"name": "no_such_model"}),                              # 4
        call("ModelReady", {"name": "mlp", "version": "7"}),                        # 5
        call("Check", {"service": ""}, service="health"),                           # 6
        call("Check", {"service": "identity"}, service="health"),                   # 7
        call("Check", {"service": "no_such_model"}, service="health"),              # 8
        call("TraceSetting"),                                                       # 9
        call("ServerLive", deadline_ms=0),                                          # 10
        call("ModelInfer", {"model_name": "mlp"}, cancel_after_ms=0),               # 11
        call("LogSettings"),                                                        # 12
        raw(svc + "ServerLive", {"content-type": "application/json"}, "0000000000"),  # 13
        raw(svc + "ServerLive", GRPC_HEADERS, "0000100000"),                        # 14: 1 MiB announced
        raw(svc + "ServerLive", dict(GRPC_HEADERS, **{"grpc-encoding": "snappy"}), "0100000000"),  # 15
        raw(svc + "ServerLive", dict(GRPC_HEADERS, **{"grpc-timeout": "1n"}), "0000000000"),     # 16
        raw(svc + "ServerLive", dict(GRPC_HEADERS, **{"grpc-timeout": "12x%"}), "0000000000"),   # 17
        raw("/no.Such/Method", GRPC_HEADERS, "0000000000"),                          # 18
        raw(svc + "ServerLive", GRPC_HEADERS, ""),                                   # 19: no message
        raw(svc + "ServerLive", GRPC_HEADERS, "0000000000"),                         # 20
        raw(svc + "ModelReady", GRPC_HEADERS, "00000000040a036d6c"),              # 21: name's length past the end
        raw(svc + "ServerLive", dict(GRPC_HEADERS, **{"x-big": "a" * 20000}), "0000000000"),  # 22: headers > 16 KiB
        call("ServerLive"),                                                         # 23: still up
        call("ServerMetadata"),                                                     # 24
        call("ModelMetadata", {"name": "mlp"}),                                     # 25
        call("ModelMetadata", {"name": "route", "version": "1"}),                   # 26
        call("ModelMetadata", {"name": "no_such_model"}),                           # 27
    ], node_path)

    def show(i):
        return json.dumps(out[i])[:400]

    check("ServerLive: live", out[0]["code"] == OK and out[0]["response"]["live"] is True, show(0))
    check("ServerReady: ready", out[1]["code"] == OK and out[1]["response"]["ready"] is True, show(1))
    check("ModelReady mlp: ready", out[2]["code"] == OK and out[2]["response"]["ready"] is True, show(2))
    check("ModelReady mlp version 1: ready", out[3]["code"] == OK and out[3]["response"]["ready"] is True, show(3))
    check("ModelReady of an unknown model: ready false, as Triton answers",
          out[4]["code"] == OK and out[4]["response"]["ready"] is False, show(4))
    check("ModelReady of an unknown version: ready false", out[5]["code"] == OK and out[5]["response"]["ready"] is False,
          show(5))
    check("Health/Check '': SERVING", out[6]["code"] == OK and out[6]["response"]["status"] == "SERVING", show(6))
    check("Health/Check of a model: SERVING", out[7]["code"] == OK and out[7]["response"]["status"] == "SERVING",
          show(7))
    check("Health/Check of an unknown name: NOT_FOUND naming it",
          out[8]["code"] == NOT_FOUND and "no_such_model" in out[8]["details"], show(8))
    check("TraceSetting answers the settings, each a list of strings (tests/e2e/test_tracing.py has the rest)",
          out[9]["code"] == OK and out[9]["response"]["settings"]["trace_level"]["value"] == ["TIMESTAMPS"]
          and out[9]["response"]["settings"]["trace_rate"]["value"] == ["1000"], show(9))
    check("a call past its deadline: DEADLINE_EXCEEDED (or answered in time)",
          out[10]["code"] in (OK, DEADLINE_EXCEEDED), show(10))
    check("a cancelled call: CANCELLED or answered", out[11]["code"] in (1, INVALID_ARGUMENT), show(11))
    check("LogSettings answers the settings (tests/e2e/test_log_settings.py has the rest)",
          out[12]["code"] == 0 and out[12]["response"]["settings"]["log_info"]["bool_param"] is True, show(12))
    check("a non-gRPC content-type: HTTP 415", str(out[13]["status"]) == "415", show(13))

    def status(i):
        o = out[i]
        hs = o["trailers"] if "grpc-status" in o["trailers"] else o["headers"]
        return (str(o["status"]), int(hs.get("grpc-status", -1)), urllib.parse.unquote(hs.get("grpc-message", "")),
                "grpc-status" not in o["trailers"])

    st = status(14)
    check("a message over --grpc-max-message-bytes: RESOURCE_EXHAUSTED from the prefix, Trailers-Only, :status 200",
          st[:2] == ("200", RESOURCE_EXHAUSTED) and "1048576" in st[2] and "65536" in st[2] and st[3], show(14))
    st = status(15)
    check("a message compressed with an unknown coding (snappy): UNIMPLEMENTED naming it and what is taken",
          st[1] == UNIMPLEMENTED and "snappy" in st[2] and "gzip" in st[2], show(15))
    st = status(16)
    check("grpc-timeout 1n: DEADLINE_EXCEEDED", st[1] == DEADLINE_EXCEEDED, show(16))
    st = status(17)
    check("a malformed grpc-timeout: INVALID_ARGUMENT, grpc-message percent-encoded",
          st[1] == INVALID_ARGUMENT and "12x%" in st[2] and "12x%25" in out[17]["headers"].get("grpc-message", ""),
          show(17))
    st = status(18)
    check("an unknown method: UNIMPLEMENTED naming it", st[1] == UNIMPLEMENTED and "/no.Such/Method" in st[2],
          show(18))
    st = status(19)
    check("a unary call without a message: INVALID_ARGUMENT", st[1] == INVALID_ARGUMENT and "none" in st[2], show(19))
    o = out[20]
    check("raw ServerLive: HEADERS, one message {live: true}, trailers grpc-status 0",
          str(o["status"]) == "200" and o["headers"].get("content-type") == "application/grpc"
          and o["data_hex"] == "00000000020801" and o["trailers"].get("grpc-status") == "0", show(20))
    st = status(21)
    check("a truncated protobuf: INVALID_ARGUMENT naming the message",
          st[1] == INVALID_ARGUMENT and "ModelReadyRequest" in st[2], show(21))
    check("a header list over 16 KiB: refused (stream reset), not answered",
          out[22]["trailers"].get("grpc-status") != "0" and out[22]["data_hex"] == "", show(22))
    check("the server still answers after all that", out[23]["code"] == OK, show(23))
    status, http_meta, _ = srv.json("GET", "/v2")
    r = out[24]["response"] or {}
    check("ServerMetadata: what GET /v2 says", out[24]["code"] == OK and r.get("name") == http_meta["name"]
          and r.get("version") == http_meta["version"] and r.get("extensions") == http_meta["extensions"], show(24))
    for i, model in ((25, "mlp"), (26, "route")):
        status, want, _ = srv.json("GET", f"/v2/models/{model}")
        r = out[i]["response"] or {}

        def tensors(ts):
            return [{k: ([int(d) for d in v] if k == "shape" else v) for k, v in t.items()
                     if k != "shape" or t.get("datatype")} for t in ts]

        got = {"name": r.get("name"), "versions": r.get("versions"), "platform": r.get("platform"),
               "inputs": tensors(r.get("inputs", [])),
               "outputs": [{k: v for k, v in t.items() if v not in ("", [])} for t in tensors(r.get("outputs", []))]}
        check(f"ModelMetadata {model}: what GET /v2/models/{model} says", out[i]["code"] == OK and got == want,
              show(i) + " vs " + json.dumps(want))
    check("ModelMetadata of an unknown model: NOT_FOUND naming it",
          out[27]["code"] == NOT_FOUND and "no_such_model" in out[27]["details"], show(27))

    code = srv.stop()
    check("SIGTERM exits 0", code == 0, srv.output()[-2000:])
    log = srv.output()
    check("no sanitizer report", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])

    test_model_infer(node_path)
    test_model_config(node_path)
    test_stream_infer(node_path)
    test_datatypes_and_pipelines(node_path)
    test_repository(node_path)
    test_grpc_metrics(node_path)

    # an idle connection (the HTTP/2 preface, then nothing) is closed after --request-timeout-secs
    gport = free_port()
    srv = Server(REPO_SRC, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--request-timeout-secs", "1")
    wait_port(gport, srv.proc)
    with socket.create_connection(("127.0.0.1", gport), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        t0, closed = time.time(), False
        try:
            while not closed and time.time() - t0 < 8:
                closed = sock.recv(65536) == b""
        except OSError:
            closed = True
        waited = time.time() - t0
    check("an idle connection is closed after --request-timeout-secs 1", closed and 0.9 < waited < 4, f"{waited:.1f} s")
    # ... but not one carrying a ModelStreamInfer that waits between its requests
    x = np.ones((1, 4), np.float32)
    out = calls(gport, [call("ModelStreamInfer", stream=[infer_request("identity", [("x", "FP32", x)], f"w-{i}")
                                                         for i in range(2)], write_after_each=True, write_delay_ms=2500)],
                node_path)
    check("an open ModelStreamInfer idle for 2.5 s between requests is not cut by --request-timeout-secs 1",
          out[0]["code"] == OK and len(out[0]["responses"]) == 2, json.dumps(out[0])[:300])
    check("SIGTERM exits 0 (idle-timeout server)", srv.stop() == 0, srv.output()[-1000:])

    # --grpc-port 0 turns gRPC off
    srv = Server(REPO_SRC, "--grpc-port", "0")
    check("--grpc-port 0: no gRPC listener named at start", "grpc://" not in srv.output(), srv.output()[-500:])
    check("--grpc-port 0: SIGTERM exits 0", srv.stop() == 0)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
