#!/usr/bin/python3
"""End-to-end: nothing a request asks for is silently ignored. What celer does not implement is
refused with 400 naming it (reserved request parameters, tensor parameters celer does not read, a
malformed classification count, load parameters celer does not know; an unknown Content-Encoding
415), and statistics honour the version in the path and answer 404 for an unknown model or
version.

usage: test_protocol.py CELER_BIN EXAMPLE_REPOSITORY"""
import gzip
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, infer_body, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]


def refused(srv, name, method, path, doc=None, body=None, headers=None, words=()):
    if doc is not None:
        body = json.dumps(doc).encode()
    status, reply, _ = srv.request(method, path, body, headers)
    text = reply.decode(errors="replace")
    check(name, status == 400 and all(w in text for w in words), f"{status} {text[:300]}")


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-protocol-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    srv = Server(repo)
    x = np.arange(16, dtype=np.float32).reshape(1, 16) / 16
    infer = "/v2/models/mlp/infer"
    try:
        status, doc, _ = srv.json("POST", infer, infer_body(x))
        check("a plain request is answered", status == 200, doc)
        # the parameters a Triton client sends that celer does not implement
        for key, value, words in (("sequence_id", 7, ("sequence_id", "sequence batching")),
                                  ("sequence_start", True, ("sequence_start",)),
                                  ("priority", 2, ("priority", "priority levels")),
                                  ("headers", {"a": "b"}, ("headers",)),
                                  ("triton_enable_empty_final_response", True, ("triton_",))):
            refused(srv, f"request parameter {key} refused", "POST", infer,
                    infer_body(x, parameters={key: value}), words=words)
        for key, value in (("sequence_id", 0), ("sequence_end", False), ("priority", 0)):
            status, doc, _ = srv.json("POST", infer, infer_body(x, parameters={key: value}))
            check(f"request parameter {key}={value} asks for nothing: answered", status == 200, doc)
        status, doc, _ = srv.json("POST", infer, infer_body(x, parameters={"my_flag": "on"}))
        check("a parameter of the caller's own is not reserved: answered", status == 200, doc)
        refused(srv, "a negative classification count refused with Triton's words", "POST", infer,
                infer_body(x, outputs=[{"name": "scores", "parameters": {"classification": -3}}]),
                words=("Unable to set 'classification'", "output 'scores'", "-3"))
        refused(srv, "an unknown output parameter refused", "POST", infer,
                infer_body(x, outputs=[{"name": "scores", "parameters": {"binary": True}}]),
                words=("output 'scores'", "unknown parameter 'binary'"))
        body = infer_body(x)
        del body["inputs"][0]["data"]
        body["inputs"][0]["parameters"] = {"shared_memory_region": "input0", "shared_memory_byte_size": 64}
        refused(srv, "shared memory on an input refused while it is off", "POST", infer, body,
                words=("Client shared memory is disabled", "--allow-shared-memory"))
        # compressed bodies are inflated (tests/e2e/test_compression.py); an unknown coding is 415
        status, reply, headers = srv.request("POST", infer, gzip.compress(json.dumps(infer_body(x)).encode()),
                                             {"Content-Encoding": "br"})
        check("Content-Encoding br refused: 415 naming it, Accept-Encoding: gzip, deflate", status == 415
              and b"br" in reply and headers.get("Accept-Encoding") == "gzip, deflate", (status, reply, headers))
        status, doc, _ = srv.request("POST", infer, json.dumps(infer_body(x)).encode(),
                                     {"Content-Encoding": "identity"})
        check("Content-Encoding identity is answered", status == 200, doc)
        # the repository API
        load = "/v2/repository/models/mlp/load"
        refused(srv, "load with an invalid config refused", "POST", load,
                {"parameters": {"config": '{"max_batch_size": "eight"}'}}, words=("Invalid config override", "max_batch_size"))
        refused(srv, "load with a file: parameter and no config refused", "POST", load,
                {"parameters": {"file:1/model.onnx": "AAAA"}}, words=("Load parameter 'config' must be specified",))
        refused(srv, "load with an unknown parameter refused", "POST", load,
                {"parameters": {"cfg": "x"}}, words=("Unrecognized load parameter 'cfg'",))
        refused(srv, "load with an invalid body refused", "POST", load, body=b"{not json", words=("JSON",))
        status, doc, _ = srv.json("POST", load, {})
        check("load without parameters", status == 200, doc)
        status, doc, _ = srv.json("POST", "/v2/repository/models/mlp/unload",
                                  {"parameters": {"unload_dependents": False}})
        check("unload with unload_dependents false", status == 200, doc)
        status, doc, _ = srv.json("POST", load)
        check("load again", status == 200, doc)
        refused(srv, "unload with unload_dependents true refused", "POST", "/v2/repository/models/mlp/unload",
                {"parameters": {"unload_dependents": True}}, words=("unload_dependents",))
        # statistics
        for _ in range(3):
            srv.json("POST", infer, infer_body(x))
        status, doc, _ = srv.json("GET", "/v2/models/mlp/versions/1/stats")
        check("statistics of version 1", status == 200 and len(doc["model_stats"]) == 1
              and doc["model_stats"][0]["version"] == "1" and doc["model_stats"][0]["inference_count"] >= 3, doc)
        status, doc, _ = srv.json("GET", "/v2/models/mlp/versions/2/stats")
        check("statistics of a version not loaded: 404, Triton's words first", status == 404
              and doc["error"].startswith("requested model version is not available for model 'mlp'"), doc)
        status, doc, _ = srv.json("GET", "/v2/models/nope/stats")
        check("statistics of an unknown model: 404", status == 404 and "nope" in doc["error"], doc)
        status, doc, _ = srv.json("GET", "/v2/models/stats")
        check("statistics of every model", status == 200 and len(doc["model_stats"]) >= 5, doc)
    finally:
        code = srv.stop()
        check("server exits cleanly", code == 0, srv.output()[-2000:])
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
