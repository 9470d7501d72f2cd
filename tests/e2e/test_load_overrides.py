#!/usr/bin/python3
"""End-to-end: loads with Triton's overrides, on HTTP (JSON, files base64 as tritonclient.http
sends them) and gRPC (RepositoryModelLoadRequest.parameters, files as bytes_param, from Debian's
python3-grpcio on stubs generated from tests/grpc/proto), with models in Triton's QA layout
answering what NumPy computes:
- `config` (a JSON model config) replaces the folder's config.pbtxt: GET .../config and the
  batching follow it; it stays through polls and loads without parameters while the folder does
  not change (as Triton), and goes when the folder changes; lowerCamelCase names, int64 as strings,
  the parameters map;
- an invalid config (not JSON, a wrong type, a tensor the model lacks) is 400 with Triton's words
  first, and nothing changes: the config, the answers, the index;
- `file:<path>` files (with a config) load a model from them alone, under a new name or over a
  repository's model (another version), with a label file; polls leave it alone, a load without
  parameters takes the repository's again;
- paths confined: absolute, '..', '.', empty segments, the config's own name, a file where a
  folder must go, refused naming the parameter; nothing written outside, the private folders gone
  after every load ($TMPDIR is the test's);
- types: `config` must be a string, files bytes; unknown parameters named; a pipeline cannot load
  from files; bad base64 and an unloadable file are refused with nothing registered;
- a size cap: files over --max-body-bytes are RESOURCE_EXHAUSTED on gRPC, the body 413 on HTTP.

usage: test_load_overrides.py CELER_BIN EXAMPLE_REPOSITORY"""
import base64
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, free_port  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
ADDSUB = "onnx_float32_float32_float32"
NOBATCH = "onnx_nobatch_float32_float32_float32"


def http_load(srv, model, config=None, files=None, raw=None):
    """POST .../load as tritonclient.http builds it (files base64-encoded); (status, doc)."""
    params = {}
    if config is not None:
        params["config"] = config
    for path, content in (files or {}).items():
        params[path] = base64.b64encode(content).decode() if isinstance(content, bytes) else content
    body = raw if raw is not None else json.dumps({"parameters": params} if params else {}).encode()
    status, reply, _ = srv.request("POST", f"/v2/repository/models/{model}/load", body)
    try:
        return status, json.loads(reply) if reply else {}
    except ValueError:
        return status, {"error": reply.decode(errors="replace")}


def http_addsub(srv, model, a, b):
    doc = {"inputs": [{"name": f"INPUT{i}", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}
                      for i, x in enumerate((a, b))]}
    status, out, _ = srv.json("POST", f"/v2/models/{model}/infer", doc)
    if status != 200:
        return status
    outs = [np.array(o["data"], np.float32).reshape(o["shape"]) for o in sorted(out["outputs"], key=lambda o: o["name"])]
    return all(np.array_equal(o, w) for o, w in zip(outs, qa_models.reference("addsub", a, b)))


def config_of(srv, model):
    status, doc, _ = srv.json("GET", f"/v2/models/{model}/config")
    return doc if status == 200 else {}


def versions(srv, model):
    status, doc, _ = srv.json("GET", f"/v2/models/{model}")
    return doc.get("versions") if status == 200 else status


def index(srv):
    _, doc, _ = srv.json("POST", "/v2/repository/index", {})
    return {e["name"]: e for e in doc}


class Grpc:
    def __init__(self, grpc, pb2, pb2_grpc, port):
        self.grpc, self.pb2 = grpc, pb2
        self.channel = grpc_stubs.channel(grpc, port, [("grpc.max_send_message_length", -1)])
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def load(self, model, config=None, files=None, raw_params=None):
        """RepositoryModelLoad as tritonclient.grpc builds it (files as bytes_param); (code, details)."""
        req = self.pb2.RepositoryModelLoadRequest(model_name=model)
        if config is not None:
            req.parameters["config"].string_param = config
        for path, content in (files or {}).items():
            req.parameters[path].bytes_param = content
        for key, fill in (raw_params or {}).items():
            fill(req.parameters[key])
        try:
            self.stub.RepositoryModelLoad(req, timeout=60)
            return self.grpc.StatusCode.OK, ""
        except self.grpc.RpcError as e:
            return e.code(), e.details()

    def addsub(self, model, a, b):
        req = self.pb2.ModelInferRequest(model_name=model)
        for i, x in enumerate((a, b)):
            req.inputs.add(name=f"INPUT{i}", datatype="FP32", shape=list(x.shape))
            req.raw_input_contents.append(x.tobytes())
        try:
            r = self.stub.ModelInfer(req, timeout=60)
        except self.grpc.RpcError as e:
            return e.code()
        outs = [np.frombuffer(r.raw_output_contents[i], np.float32).reshape(o.shape) for i, o in enumerate(r.outputs)]
        return all(np.array_equal(o, w) for o, w in zip(outs, qa_models.reference("addsub", a, b)))

    def config(self, model):
        r = self.stub.ModelConfig(self.pb2.ModelConfigRequest(name=model), timeout=60)
        return r.config


def leftovers(loads):
    return sorted(os.listdir(loads))


def main():
    return grpc_stubs.main("celer-e2e-overrides-", run)


def run(tmp, *got):
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    qa_models.write_repository(repo, dtypes=["FP32"])
    loads = os.path.join(tmp, "loads")  # the server's $TMPDIR: where the private folders go
    os.makedirs(loads)
    outside = os.path.join(tmp, "outside")  # where an escaping path would land
    os.makedirs(outside)
    with open(os.path.join(repo, ADDSUB, "1", "model.onnx"), "rb") as f:
        onnx_bytes = f.read()
    labels = "".join(f"label{i}\n" for i in range(16)).encode()
    rng = np.random.default_rng(29)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--repository-poll-secs", "1",
                 env={"TMPDIR": loads})
    g = Grpc(*got, gport)
    try:
        # ---- config ----
        cfg = config_of(srv, ADDSUB)
        check("the repository's config: max_batch_size 8", cfg.get("max_batch_size") == 8, cfg)
        cfg["max_batch_size"] = 4
        cfg["dynamic_batching"] = {"preferred_batch_size": [2, 4], "max_queue_delay_microseconds": 100}
        status, doc = http_load(srv, ADDSUB, config=json.dumps(cfg))
        after = config_of(srv, ADDSUB)
        check("HTTP: load with the config GET .../config gave, changed: 200, the config follows",
              status == 200 and after.get("max_batch_size") == 4
              and after.get("dynamic_batching", {}).get("preferred_batch_size") == [2, 4], (status, doc, after))
        a, b = qa_models.inputs("FP32", 4, rng)
        a5, b5 = qa_models.inputs("FP32", 5, rng)
        check("4 rows answer right; 5 rows are above the new max_batch_size (400)",
              http_addsub(srv, ADDSUB, a, b) is True and http_addsub(srv, ADDSUB, a5, b5) == 400)
        time.sleep(2.5)
        check("polls leave the config given while the folder does not change", config_of(srv, ADDSUB).get("max_batch_size") == 4)
        status, _ = http_load(srv, ADDSUB)
        check("a load without parameters keeps it too (as Triton)", status == 200
              and config_of(srv, ADDSUB).get("max_batch_size") == 4)
        for what, bad, words in (("not JSON", "{max_batch_size: 4", "Invalid config override"),
                                 ("an array", "[1, 2]", "expected a JSON object"),
                                 ("a string where an integer goes", '{"max_batch_size": "four"}', "max_batch_size"),
                                 ("an unknown data type", '{"input": [{"name": "INPUT0", "data_type": "TYPE_FP33"}]}',
                                  "TYPE_FP33"),
                                 ("nested arrays", '{"input": [{"name": "INPUT0", "dims": [[16]]}]}', "nested"),
                                 ("an input the model lacks", '{"input": [{"name": "NOPE", "data_type": "TYPE_FP32", '
                                                              '"dims": [16]}, {"name": "INPUT1", "data_type": '
                                                              '"TYPE_FP32", "dims": [16]}]}', "NOPE")):
            status, doc = http_load(srv, ADDSUB, config=bad)
            check(f"an invalid config ({what}): 400 naming it", status == 400 and words in doc.get("error", "")
                  and (what == "an input the model lacks" or doc["error"].startswith("Invalid config override")),
                  (status, doc))
        e = index(srv).get(ADDSUB, {})
        check("...and nothing changed: the config, the answers, the index", config_of(srv, ADDSUB).get("max_batch_size") == 4
              and http_addsub(srv, ADDSUB, a, b) is True and e.get("state") == "READY" and e.get("reason") == "", e)
        code, details = g.load(ADDSUB, raw_params={"config": lambda p: setattr(p, "bytes_param", b"{}")})
        check("gRPC: a config as bytes: INVALID_ARGUMENT, Triton's words", code == g.grpc.StatusCode.INVALID_ARGUMENT
              and details.startswith("Config parameter 'config' must have string type"), (code, details))
        with open(os.path.join(repo, ADDSUB, "config.pbtxt"), "a") as f:
            f.write("\n# changed\n")
        deadline = time.time() + 8
        while time.time() < deadline and config_of(srv, ADDSUB).get("max_batch_size") != 8:
            time.sleep(0.25)
        check("once the folder changes, a poll takes the repository's config again",
              config_of(srv, ADDSUB).get("max_batch_size") == 8)
        code, details = g.load(NOBATCH, config=json.dumps({"backend": "onnxruntime", "maxBatchSize": "0",
                                                           "versionPolicy": {"all": {}},
                                                           "parameters": {"origin": {"stringValue": "grpc"}}}))
        pc = g.config(NOBATCH)
        check("gRPC: a config with lowerCamelCase names, an int64 as a string and the parameters map: OK, applied",
              code == g.grpc.StatusCode.OK and pc.parameters["origin"].string_value == "grpc"
              and pc.version_policy.HasField("all"), (code, details, pc))
        a, b = qa_models.inputs("FP32", 1, rng)
        check("...and the model answers right (gRPC)", g.addsub(NOBATCH, a[0], b[0]) is True)

        # ---- files ----
        label_cfg = json.dumps({"backend": "onnxruntime", "max_batch_size": 8,
                                "output": [{"name": "OUTPUT0", "label_filename": "labels.txt"}]})
        status, doc = http_load(srv, "addsub_files", config=label_cfg,
                                files={"file:1/model.onnx": onnx_bytes, "file:labels.txt": labels})
        a, b = qa_models.inputs("FP32", 3, rng)
        out0 = next((o for o in config_of(srv, "addsub_files").get("output", []) if o["name"] == "OUTPUT0"), {})
        check("HTTP: files and a config load a new model (base64 in JSON): 200, version 1, answers right",
              status == 200 and versions(srv, "addsub_files") == ["1"] and http_addsub(srv, "addsub_files", a, b) is True,
              (status, doc))
        check("...its config carries the label file", out0.get("label_filename") == "labels.txt", out0)
        code, details = g.load("addsub_grpc", config='{"backend": "onnxruntime"}', files={"file:5/model.onnx": onnx_bytes})
        check("gRPC: files as bytes_param load a new model: OK, version 5, answers right",
              code == g.grpc.StatusCode.OK and versions(srv, "addsub_grpc") == ["5"] and g.addsub("addsub_grpc", a, b)
              is True, (code, details))
        code, details = g.load(NOBATCH, config='{"backend": "onnxruntime", "max_batch_size": 8}',
                               files={"file:3/model.onnx": onnx_bytes})
        check("files over a repository's model: it serves them (version 3, now batching)",
              code == g.grpc.StatusCode.OK and versions(srv, NOBATCH) == ["3"] and http_addsub(srv, NOBATCH, a, b) is True,
              (code, details))
        time.sleep(2.5)
        check("polls leave a model loaded from files alone", versions(srv, NOBATCH) == ["3"]
              and versions(srv, "addsub_files") == ["1"])
        status, _ = http_load(srv, NOBATCH)
        check("a load without parameters takes the repository's again (version 1, no batching)",
              status == 200 and versions(srv, NOBATCH) == ["1"] and config_of(srv, NOBATCH).get("max_batch_size") == 0)
        check("no private folder left after the loads", leftovers(loads) == [], leftovers(loads))

        # ---- refusals: nothing registered, nothing written ----
        good = {"file:1/model.onnx": onnx_bytes}
        cases = [
            ("files without a config", None, good, "Load parameter 'config' must be specified for model file override"),
            ("an absolute path", "{}", {"file:/etc/celer_escape": b"x", **good}, "must stay within model directory"),
            ("'..'", "{}", {"file:../../outside/escape": b"x", **good}, "must stay within model directory"),
            ("'..' inside", "{}", {"file:1/../../escape": b"x", **good}, "must stay within model directory"),
            ("'.'", "{}", {"file:./1/model.onnx": onnx_bytes}, "must stay within model directory"),
            ("an empty segment", "{}", {"file:1//model.onnx": onnx_bytes}, "must stay within model directory"),
            ("a trailing '/'", "{}", {"file:1/": b"x", **good}, "ends with a file name"),
            ("no path", "{}", {"file:": b"x", **good}, "a file path is needed"),
            ("config.pbtxt", "{}", {"file:config.pbtxt": b"max_batch_size: 1", **good}, "'config' parameter"),
            # the order of a map's entries is the client's: either entry may be written first
            ("a file where a folder goes", "{}", {"file:1": b"x", **good}, "directory has been created"),
            ("no model file", "{}", {"file:labels.txt": labels}, "hold no <version>/model.onnx"),
            ("a file that is not a model", "{}", {"file:1/model.onnx": b"not onnx"}, "model.onnx"),
            ("a pipeline", "{}", {"file:pipeline.yaml": b"inputs: []\n", **good}, "pipeline"),
        ]
        for proto in ("HTTP", "gRPC"):
            for what, config, files, words in cases:
                name = f"refused_{proto}".lower()
                if proto == "HTTP":
                    status, doc = http_load(srv, name, config=config, files=files)
                    ok, detail = status == 400 and words in doc.get("error", ""), (status, doc)
                else:
                    code, details = g.load(name, config=config, files=files)
                    ok, detail = code == g.grpc.StatusCode.INVALID_ARGUMENT and words in details, (code, details)
                check(f"{proto}: {what}: refused naming it; nothing registered",
                      ok and name not in index(srv) and leftovers(loads) == [], detail)
        check("nothing was written outside the load's folder", os.listdir(outside) == []
              and not os.path.exists("/etc/celer_escape"), os.listdir(outside))
        status, doc = http_load(srv, "bad_b64", config="{}", files={"file:1/model.onnx": "@@@@ not base64"})
        check("HTTP: a file that is not base64: 400 naming it", status == 400 and "not base64" in doc.get("error", "")
              and "bad_b64" not in index(srv), (status, doc))
        code, details = g.load("str_file", config="{}",
                               raw_params={"file:1/model.onnx": lambda p: setattr(p, "string_param", "abc")})
        check("gRPC: a file as a string: INVALID_ARGUMENT, Triton's words",
              code == g.grpc.StatusCode.INVALID_ARGUMENT and details.startswith("File parameter 'file:1/model.onnx' "
                                                                                "must have bytes type"), (code, details))
        status, doc = http_load(srv, ADDSUB, raw=json.dumps({"parameters": {"cfg": "{}"}}).encode())
        code, details = g.load(ADDSUB, raw_params={"flag": lambda p: setattr(p, "bool_param", True)})
        check("an unknown parameter: 400 / INVALID_ARGUMENT naming it with its type (Triton's words)",
              status == 400 and doc["error"].startswith("Unrecognized load parameter 'cfg' with type 'STRING'")
              and code == g.grpc.StatusCode.INVALID_ARGUMENT
              and details.startswith("Unrecognized load parameter 'flag' with type 'BOOL'"), (doc, details))
        code, details = g.load("../escape", config="{}", files=good)
        check("gRPC: a model name with '..': INVALID_ARGUMENT, Triton's words",
              code == g.grpc.StatusCode.INVALID_ARGUMENT and "must not contain path traversal characters" in details,
              (code, details))

        # ---- unload, and a load by name of what is only in files ----
        status, _ = srv.json("POST", "/v2/repository/models/addsub_files/unload", {})[:2]
        status2, doc = http_load(srv, "addsub_files")
        check("a model loaded from files: unloaded, then a load by name is 404 (not in the repository)",
              status == 200 and status2 == 404 and "failed to poll from model repository" in doc.get("error", ""),
              (status, status2, doc))
    finally:
        g.channel.close()
        code = srv.stop()
        log = srv.output()
        check("SIGTERM exits 0, no sanitizer report", code == 0 and "Sanitizer" not in log and "runtime error" not in log,
              log[-2000:])
    check("no private folder left at exit", leftovers(loads) == [], leftovers(loads))

    # ---- the size cap ----
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--max-body-bytes", "262144",
                 env={"TMPDIR": loads})
    g = Grpc(*got, gport)
    try:
        big = os.urandom(300 * 1024)
        status, doc = http_load(srv, "big", config="{}", files={"file:1/model.onnx": big})
        check("HTTP: a load body over --max-body-bytes: 413", status == 413, (status, doc))
        code, details = g.load("big", config="{}", files={"file:1/model.onnx": big})
        check("gRPC: files over --max-body-bytes: RESOURCE_EXHAUSTED naming the cap",
              code == g.grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-body-bytes" in details, (code, details))
        code, details = g.load("big", config="{}", files={f"file:1/part{i}": big[:100 * 1024] for i in range(3)})
        check("...also spread over several files", code == g.grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details))
        check("...nothing registered, no private folder left", "big" not in index(srv) and leftovers(loads) == [])
    finally:
        g.channel.close()
        code = srv.stop()
        check("SIGTERM exits 0 (size cap server)", code == 0, srv.output()[-1000:])


if __name__ == "__main__":
    sys.exit(main())
