#!/usr/bin/python3
"""End-to-end: Triton's model control modes and strict readiness, on HTTP and on gRPC (Debian's
python3-grpcio on stubs generated from tests/grpc/proto), with the example models and models in
Triton's QA layout answering what NumPy computes.
- explicit: only --load-model at start (a name not in the repository: UNAVAILABLE, saying so), the
  index lists the rest by name alone as Triton does, loads and unloads by either protocol work,
  nothing is polled; '*' loads everything;
- none: everything at start, the repository API refused with Triton's message (HTTP 503, gRPC
  UNAVAILABLE), a new folder not taken;
- poll: everything at start, then polling (a new folder is served within seconds), the API
  refused the same way; --repository-poll-secs 15 when not given;
- no mode: celer's own, as before (API on);
- --strict-readiness: a model that failed makes the server unready (HTTP 503, ServerReady false,
  grpc.health NOT_SERVING); with false it stays ready;
- the flags' errors, with Triton's words: --load-model outside explicit, '*' with another name,
  an unknown mode, explicit or none with --repository-poll-secs; CELER_LOAD_MODEL takes a list.

usage: test_model_control.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, free_port, mlp_reference  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
ADDSUB = "onnx_float32_float32_float32"
NOBATCH = "onnx_nobatch_float32_float32_float32"
REFUSED = "explicit model load / unload is not allowed if polling is enabled"


class Grpc:
    """A channel and stub to a server's gRPC port."""

    def __init__(self, grpc, pb2, pb2_grpc, port):
        self.grpc, self.pb2 = grpc, pb2
        self.channel = grpc_stubs.channel(grpc, port)
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def call(self, name, request):
        """(code, response or None, details)"""
        try:
            return self.grpc.StatusCode.OK, getattr(self.stub, name)(request, timeout=60), ""
        except self.grpc.RpcError as e:
            return e.code(), None, e.details()

    def index(self):
        _, r, _ = self.call("RepositoryIndex", self.pb2.RepositoryIndexRequest())
        return {m.name: (m.version, m.state, m.reason) for m in r.models} if r else {}

    def ready(self):
        _, r, _ = self.call("ServerReady", self.pb2.ServerReadyRequest())
        return r.ready if r else None

    def load(self, name):
        return self.call("RepositoryModelLoad", self.pb2.RepositoryModelLoadRequest(model_name=name))

    def unload(self, name):
        return self.call("RepositoryModelUnload", self.pb2.RepositoryModelUnloadRequest(model_name=name))

    def addsub(self, model, a, b):
        req = self.pb2.ModelInferRequest(model_name=model)
        for i, x in enumerate((a, b)):
            req.inputs.add(name=f"INPUT{i}", datatype="FP32", shape=list(x.shape))
            req.raw_input_contents.append(x.tobytes())
        code, r, details = self.call("ModelInfer", req)
        if code != self.grpc.StatusCode.OK:
            return False
        outs = [np.frombuffer(r.raw_output_contents[i], np.float32).reshape(o.shape) for i, o in enumerate(r.outputs)]
        return all(np.array_equal(o, w) for o, w in zip(outs, qa_models.reference("addsub", a, b)))


def http_index(srv):
    _, doc, _ = srv.json("POST", "/v2/repository/index", {})
    return {e["name"]: e for e in doc}


def http_addsub(srv, model, a, b):
    doc = {"inputs": [{"name": f"INPUT{i}", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}
                      for i, x in enumerate((a, b))]}
    status, out, _ = srv.json("POST", f"/v2/models/{model}/infer", doc)
    if status != 200:
        return False
    outs = [np.array(o["data"], np.float32).reshape(o["shape"]) for o in sorted(out["outputs"], key=lambda o: o["name"])]
    return all(np.array_equal(o, w) for o, w in zip(outs, qa_models.reference("addsub", a, b)))


def http_mlp(srv, repo, rng):
    x = rng.standard_normal((2, 16)).astype(np.float32)
    status, out, _ = srv.json("POST", "/v2/models/mlp/infer", {"inputs": [{"name": "features", "shape": [2, 16],
                                                                          "datatype": "FP32",
                                                                          "data": x.flatten().tolist()}]})
    return status == 200 and np.allclose(np.array(out["outputs"][0]["data"], np.float32).reshape(2, 8),
                                         mlp_reference(repo, x), atol=1e-5)


def ready(srv):
    return srv.request("GET", "/v2/health/ready")[0]


def add_model(repo, name):
    """A copy of the add/sub model under a new name (a folder that appears while serving)."""
    shutil.copytree(os.path.join(repo, ADDSUB), os.path.join(repo, name))
    path = os.path.join(repo, name, "config.pbtxt")
    with open(path) as f:
        text = f.read().replace(f'name: "{ADDSUB}"', f'name: "{name}"')
    with open(path, "w") as f:
        f.write(text)


def serve(repo, gport, *flags):
    return Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", *flags)


def stop(srv, what):
    code = srv.stop()
    log = srv.output()
    check(f"{what}: SIGTERM exits 0, no sanitizer report", code == 0 and "Sanitizer" not in log
          and "runtime error" not in log, log[-1500:])


def start_fails(repo, *flags, env=None):
    p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()), "--grpc-port", "0",
                        *flags], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    return p.returncode, p.stderr


def main():
    return grpc_stubs.main("celer-e2e-control-", run)


def run(tmp, *got):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    qa_models.write_repository(repo, dtypes=["FP32"])
    rng = np.random.default_rng(7)

    # ---- explicit ----
    gport = free_port()
    srv = serve(repo, gport, "--model-control-mode", "explicit", "--load-model", "mlp", "--load-model", ADDSUB)
    g = Grpc(*got, gport)
    try:
        idx, gidx = http_index(srv), g.index()
        check("explicit: the --load-model models are READY", idx.get("mlp", {}).get("state") == "READY"
              and idx.get(ADDSUB, {}).get("state") == "READY", idx)
        check("explicit: the others are listed by name alone, as Triton lists them",
              idx.get("identity") == {"name": "identity"} and idx.get(NOBATCH) == {"name": NOBATCH}
              and idx.get("recommend") == {"name": "recommend"}, idx)
        check("explicit: gRPC's index says the same", gidx.get("mlp") == ("1", "READY", "")
              and gidx.get("identity") == ("", "", "") and set(gidx) == set(idx), gidx)
        check("explicit: ready (HTTP 200, ServerReady true)", ready(srv) == 200 and g.ready() is True)
        check("explicit: mlp answers what NumPy computes", http_mlp(srv, repo, rng))
        a, b = qa_models.inputs("FP32", 3, rng)
        check("explicit: the add/sub model answers right over HTTP and gRPC",
              http_addsub(srv, ADDSUB, a, b) and g.addsub(ADDSUB, a, b))
        a, b = qa_models.inputs("FP32", 1, rng)
        status, _, _ = srv.json("POST", f"/v2/models/{NOBATCH}/infer", {"inputs": []})
        check("explicit: a model not loaded is 404", status == 404, status)
        status, doc, _ = srv.json("POST", f"/v2/repository/models/{NOBATCH}/load", {})
        check("explicit: HTTP load of a model not loaded: 200, then it answers right",
              status == 200 and http_addsub(srv, NOBATCH, a[0], b[0]), (status, doc))
        code, _, details = g.load("identity")
        check("explicit: gRPC load: OK, and the model is READY", code == g.grpc.StatusCode.OK
              and http_index(srv).get("identity", {}).get("state") == "READY", (code, details))
        code, _, details = g.unload(NOBATCH)
        check("explicit: gRPC unload: OK, the index says UNAVAILABLE 'unloaded'",
              code == g.grpc.StatusCode.OK and g.index().get(NOBATCH, ("",))[1:] == ("UNAVAILABLE", "unloaded"),
              (code, details, g.index().get(NOBATCH)))
        status, _, _ = srv.json("POST", f"/v2/repository/models/{ADDSUB}/unload", {})
        check("explicit: HTTP unload: 200, still ready (an unloaded model does not count)",
              status == 200 and ready(srv) == 200 and g.ready() is True, status)
        add_model(repo, "addsub_new")
        time.sleep(2.5)
        check("explicit: a new folder is not taken (no polling), the index lists it by name",
              http_index(srv).get("addsub_new") == {"name": "addsub_new"})
        os.makedirs(os.path.join(repo, "broken", "1"))
        with open(os.path.join(repo, "broken", "1", "model.onnx"), "wb") as f:
            f.write(b"not a model")
        status, doc, _ = srv.json("POST", "/v2/repository/models/broken/load", {})
        check("explicit: loading a broken model fails, saying why", status >= 400 and "broken" in doc.get("error", ""),
              (status, doc))
        check("explicit + strict readiness: a failed model makes the server unready (503, ServerReady false)",
              ready(srv) == 503 and g.ready() is False)
        status, _, _ = srv.json("POST", "/v2/repository/models/broken/unload", {})
        check("...and ready again once it is unloaded", status == 200 and ready(srv) == 200 and g.ready() is True)
    finally:
        g.channel.close()
        stop(srv, "explicit")

    # ---- explicit with a name not in the repository; strict readiness off ----
    gport = free_port()
    srv = serve(repo, gport, "--model-control-mode=EXPLICIT", "--load-model", "mlp", "--load-model", "nope")
    g = Grpc(*got, gport)
    try:
        e = http_index(srv).get("nope", {})
        check("explicit: a --load-model name not in the repository is UNAVAILABLE, saying so",
              e.get("state") == "UNAVAILABLE" and "not in the repository" in e.get("reason", ""), e)
        check("...the server is not ready (strict readiness)", ready(srv) == 503 and g.ready() is False)
        status, _, _ = srv.json("POST", "/v2/models/nope/infer", {"inputs": []})
        check("...and a request for it is 404", status == 404, status)
    finally:
        g.channel.close()
        stop(srv, "explicit, missing model")
    gport = free_port()
    srv = serve(repo, gport, "--model-control-mode", "explicit", "--load-model", "*", "--strict-readiness", "false")
    g = Grpc(*got, gport)
    try:
        idx = http_index(srv)
        check("explicit with '*': every model loaded, the broken one UNAVAILABLE",
              all(idx.get(m, {}).get("state") == "READY" for m in ("mlp", "identity", ADDSUB, NOBATCH, "addsub_new"))
              and idx.get("broken", {}).get("state") == "UNAVAILABLE", idx)
        check("--strict-readiness false: ready although a model failed (HTTP 200, ServerReady true)",
              ready(srv) == 200 and g.ready() is True)
    finally:
        g.channel.close()
        stop(srv, "explicit *")
    shutil.rmtree(os.path.join(repo, "broken"))
    shutil.rmtree(os.path.join(repo, "addsub_new"))

    # ---- none and poll: the API refused with Triton's message ----
    for mode, flags in (("none", []), ("poll", ["--repository-poll-secs", "1"])):
        gport = free_port()
        srv = serve(repo, gport, "--model-control-mode", mode, *flags)
        g = Grpc(*got, gport)
        try:
            idx = http_index(srv)
            check(f"{mode}: every model loaded at start", all(idx.get(m, {}).get("state") == "READY"
                                                             for m in ("mlp", "identity", ADDSUB, NOBATCH)), idx)
            a, b = qa_models.inputs("FP32", 2, rng)
            check(f"{mode}: models answer right (HTTP and gRPC)", http_addsub(srv, ADDSUB, a, b) and g.addsub(ADDSUB, a, b))
            for action in ("load", "unload"):
                status, doc, headers = srv.json("POST", f"/v2/repository/models/mlp/{action}", {})
                check(f"{mode}: HTTP {action} refused 503 with Triton's message",
                      status == 503 and doc.get("error", "").startswith(REFUSED), (status, doc))
            for action in ("load", "unload"):
                code, _, details = getattr(g, action)("mlp")
                check(f"{mode}: gRPC {action} UNAVAILABLE with Triton's message",
                      code == g.grpc.StatusCode.UNAVAILABLE and details.startswith(REFUSED), (code, details))
            check(f"{mode}: the refused unload changed nothing", http_mlp(srv, repo, rng))
            add_model(repo, "addsub_new")
            deadline, served = time.time() + (8 if mode == "poll" else 3), False
            while time.time() < deadline and not served:
                time.sleep(0.25)
                served = http_index(srv).get("addsub_new", {}).get("state") == "READY"
            a, b = qa_models.inputs("FP32", 2, rng)
            if mode == "poll":
                check("poll: a new folder is served within seconds, answering right",
                      served and http_addsub(srv, "addsub_new", a, b))
            else:
                check("none: a new folder is not taken; the index lists it by name",
                      not served and http_index(srv).get("addsub_new") == {"name": "addsub_new"})
        finally:
            g.channel.close()
            stop(srv, mode)
            shutil.rmtree(os.path.join(repo, "addsub_new"), ignore_errors=True)

    # ---- no mode: celer's own, the API on ----
    gport = free_port()
    srv = serve(repo, gport)
    g = Grpc(*got, gport)
    try:
        status, _, _ = srv.json("POST", "/v2/repository/models/mlp/unload", {})
        code, _, _ = g.load("mlp")
        check("no mode: the API is on (HTTP unload 200, gRPC load OK), mlp answers right",
              status == 200 and code == g.grpc.StatusCode.OK and http_mlp(srv, repo, rng))
        check("no mode: the index lists loaded models only, as before",
              all("state" in e for e in http_index(srv).values()))
    finally:
        g.channel.close()
        stop(srv, "no mode")

    # ---- the flags ----
    for flags, env, words in (
            (["--load-model", "mlp"], None, "Use of '--load-model' requires setting '--model-control-mode=explicit'"),
            (["--model-control-mode", "poll", "--load-model", "mlp"], None, "requires setting"),
            (["--model-control-mode", "explicit", "--load-model", "*", "--load-model", "mlp"], None,
             "Wildcard model name '*' must be the ONLY startup model"),
            (["--model-control-mode", "sometimes"], None, "invalid argument for --model-control-mode: 'sometimes'"),
            (["--model-control-mode", "explicit", "--repository-poll-secs", "5"], None, "--repository-poll-secs"),
            (["--model-control-mode", "none", "--repository-poll-secs", "5"], None, "--repository-poll-secs"),
            (["--model-control-mode", "explicit"], {"CELER_LOAD_MODEL": "mlp,*"}, "Wildcard")):
        code, err = start_fails(repo, *flags, env=env)
        check(f"refused at start: {' '.join(flags)} {env or ''}", code != 0 and words in err, (code, err[-300:]))
    gport = free_port()
    srv = Server(repo, "--grpc-port", "0", env={"CELER_MODEL_CONTROL_MODE": "explicit",
                                                "CELER_LOAD_MODEL": f"mlp,{ADDSUB}"})
    try:
        idx = http_index(srv)
        check("CELER_LOAD_MODEL=mlp,<qa model>: both loaded, nothing else",
              {n for n, e in idx.items() if e.get("state") == "READY"} == {"mlp", ADDSUB}, idx)
    finally:
        stop(srv, "environment")


if __name__ == "__main__":
    sys.exit(main())
