#!/usr/bin/python3
"""End-to-end: Triton's statistics extension on HTTP (GET /v2/models[/{m}[/versions/{v}]]/stats)
and gRPC (ModelStatistics, Debian's python3-grpcio on stubs generated from tests/grpc/proto), on
models in Triton's QA layout (tests/e2e/qa_models.py) answering what NumPy computes:
- every field Triton writes, no other: last_inference, inference_count, execution_count,
  inference_stats (success, fail, queue, compute_input, compute_infer, compute_output, cache_hit,
  cache_miss, each count and ns), response_stats, batch_stats (per batch size), memory_usage;
- the counts as Triton keeps them: inference_count in rows, execution_count in runs, a dynamic
  batch of four requests one execution of batch size 4 with its input copy timed, a failure in
  fail only, cache hits in success and cache_hit but in no compute count;
- the durations add up (success >= queue + compute of the same requests) and last_inference is
  the wall clock of the last run;
- the gRPC answer is the HTTP answer field by field; an unknown model or version is 404 /
  NOT_FOUND.

usage: test_statistics.py CELER_BIN EXAMPLE_REPOSITORY"""
import json
import os
import shutil
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, free_port, settled_stats  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
ADDSUB = "onnx_float32_float32_float32"
NOBATCH = "onnx_nobatch_float32_float32_float32"
DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")


def variant(repo, name, extra):
    """A copy of the batching add/sub model under `name` with `extra` config lines."""
    shutil.copytree(os.path.join(repo, ADDSUB), os.path.join(repo, name))
    path = os.path.join(repo, name, "config.pbtxt")
    with open(path) as f:
        text = f.read().replace(f'name: "{ADDSUB}"', f'name: "{name}"')
    with open(path, "w") as f:
        f.write(text + extra)


def json_infer(srv, model, a, b):
    doc = {"inputs": [{"name": f"INPUT{i}", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}
                      for i, x in enumerate((a, b))]}
    status, out, _ = srv.json("POST", f"/v2/models/{model}/infer", doc)
    if status != 200:
        return status, None
    return status, [np.array(o["data"], np.float32).reshape(o["shape"]) for o in sorted(out["outputs"],
                                                                                       key=lambda o: o["name"])]


def right(outs, a, b):
    want = qa_models.reference("addsub", a, b)
    return outs is not None and all(np.array_equal(o, w) for o, w in zip(outs, want))


def stats(srv, model, version=None):
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/stats"
    status, doc, _ = srv.json("GET", path)
    return status, doc


def main():
    return grpc_stubs.main("celer-e2e-stats-", run)


def run(tmp, grpc, pb2, pb2_grpc):
    repo = os.path.join(tmp, "repository")
    qa_models.write_repository(repo, dtypes=["FP32"])
    # four single-row requests make one batch of four (it waits up to 5 s for them)
    variant(repo, "addsub_batch4", "dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 5000000 }\n")
    variant(repo, "addsub_cached", "response_cache { enable: true }\n")
    rng = np.random.default_rng(19)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    channel = grpc_stubs.channel(grpc, gport)
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)
    try:
        # ---- the fields, before any request ----
        s = settled_stats(srv, ADDSUB)
        check("the fields of a model's entry are Triton's, in Triton's order",
              list(s) == ["name", "version", "last_inference", "inference_count", "execution_count", "inference_stats",
                          "response_stats", "batch_stats", "memory_usage"], list(s))
        check("inference_stats has Triton's eight durations, each count and ns",
              list(s.get("inference_stats", {})) == list(DURATIONS)
              and all(list(d) == ["count", "ns"] for d in s["inference_stats"].values()), s)
        check("before any request: zeros, no batch, last_inference 0",
              s["last_inference"] == 0 and s["inference_count"] == 0 and s["execution_count"] == 0
              and s["batch_stats"] == [] and all(d == {"count": 0, "ns": 0} for d in s["inference_stats"].values()), s)

        # ---- one request of 3 rows by HTTP, then one of 2 rows by gRPC ----
        a, b = qa_models.inputs("FP32", 3, rng)
        t0 = time.time() * 1000
        status, outs = json_infer(srv, ADDSUB, a, b)
        t1 = time.time() * 1000
        check("HTTP: add/sub of 3 rows is what NumPy computes", status == 200 and right(outs, a, b), status)
        s = settled_stats(srv, ADDSUB)
        st = s["inference_stats"]
        check("3 rows: inference_count 3, execution_count 1, success 1",
              s["inference_count"] == 3 and s["execution_count"] == 1 and st["success"]["count"] == 1, s)
        check("last_inference is the wall clock (ms since the epoch) of the run",
              t0 - 1 <= s["last_inference"] <= t1 + 1, (t0, s["last_inference"], t1))
        check("queue, compute_input, compute_infer, compute_output counted once; no cache, no failure",
              all(st[k]["count"] == 1 for k in ("queue", "compute_input", "compute_infer", "compute_output"))
              and st["fail"]["count"] == 0 and st["cache_hit"]["count"] == 0 and st["cache_miss"]["count"] == 0, st)
        check("the durations add up: success >= queue + compute input + infer + output > 0",
              st["success"]["ns"] >= st["queue"]["ns"] + st["compute_input"]["ns"] + st["compute_infer"]["ns"]
              + st["compute_output"]["ns"] and st["compute_infer"]["ns"] > 0 and st["success"]["ns"] > 0, st)
        check("batch_stats: one execution of batch size 3",
              [(x["batch_size"], x["compute_infer"]["count"]) for x in s["batch_stats"]] == [(3, 1)], s["batch_stats"])

        a2, b2 = qa_models.inputs("FP32", 2, rng)
        req = pb2.ModelInferRequest(model_name=ADDSUB)
        for i, x in enumerate((a2, b2)):
            req.inputs.add(name=f"INPUT{i}", datatype="FP32", shape=list(x.shape))
            req.raw_input_contents.append(x.tobytes())
        r = stub.ModelInfer(req, timeout=30)
        got = {o.name: np.frombuffer(r.raw_output_contents[i], np.float32).reshape(o.shape) for i, o in enumerate(r.outputs)}
        want = qa_models.reference("addsub", a2, b2)
        check("gRPC: add/sub of 2 rows is what NumPy computes",
              np.array_equal(got["OUTPUT0"], want[0]) and np.array_equal(got["OUTPUT1"], want[1]), got)
        s = settled_stats(srv, ADDSUB)
        check("by both protocols: inference_count 5, execution_count 2, batch sizes 2 and 3 once each",
              s["inference_count"] == 5 and s["execution_count"] == 2
              and [(x["batch_size"], x["compute_infer"]["count"]) for x in s["batch_stats"]] == [(2, 1), (3, 1)], s)

        # ---- a model that does not batch: every execution is of batch size 1 ----
        for _ in range(3):
            a, b = qa_models.inputs("FP32", 1, rng)
            status, outs = json_infer(srv, NOBATCH, a[0], b[0])
        s = settled_stats(srv, NOBATCH)
        check("no batching: three requests, inference_count 3, execution_count 3, batch_stats [1 x 3]",
              status == 200 and s["inference_count"] == 3 and s["execution_count"] == 3
              and [(x["batch_size"], x["compute_infer"]["count"]) for x in s["batch_stats"]] == [(1, 3)], s)

        # ---- a failure counts in fail only ----
        before = settled_stats(srv, ADDSUB)
        bad = {"inputs": [{"name": "INPUT0", "shape": [1, 15], "datatype": "FP32", "data": [0.0] * 15},
                          {"name": "INPUT1", "shape": [1, 15], "datatype": "FP32", "data": [0.0] * 15}]}
        status, _, _ = srv.json("POST", f"/v2/models/{ADDSUB}/infer", bad)
        after = settled_stats(srv, ADDSUB)
        check("a wrong shape: 400, fail count 1 with its duration, success and executions unchanged",
              status == 400 and after["inference_stats"]["fail"]["count"] == 1
              and after["inference_stats"]["fail"]["ns"] > 0
              and after["inference_stats"]["success"] == before["inference_stats"]["success"]
              and after["execution_count"] == before["execution_count"], (status, after))

        # ---- four concurrent single-row requests: one execution of batch size 4 ----
        rows = [qa_models.inputs("FP32", 1, rng) for _ in range(4)]
        results = [None] * 4

        def client(i):
            results[i] = json_infer(srv, "addsub_batch4", *rows[i])
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check("dynamic batching: four answers, each what NumPy computes",
              all(r and r[0] == 200 and right(r[1], *rows[i]) for i, r in enumerate(results)), results)
        s = settled_stats(srv, "addsub_batch4")
        st = s["inference_stats"]
        check("one execution of batch size 4: execution_count 1, inference_count 4, success 4",
              s["execution_count"] == 1 and s["inference_count"] == 4 and st["success"]["count"] == 4
              and [(x["batch_size"], x["compute_infer"]["count"]) for x in s["batch_stats"]] == [(4, 1)], s)
        bs = s["batch_stats"][0] if s["batch_stats"] else {}
        check("the batch's inputs were copied into it: compute_input ns > 0 per request and for the batch",
              st["compute_input"]["count"] == 4 and st["compute_input"]["ns"] > 0
              and bs.get("compute_input", {}).get("ns", 0) > 0, s)
        check("each request counts the batch's run (compute_infer = 4 x the batch's)",
              st["compute_infer"]["ns"] == 4 * bs.get("compute_infer", {}).get("ns", -1), s)
        check("they waited in the queue for each other (queue ns > 0 for all four)",
              st["queue"]["count"] == 4 and st["queue"]["ns"] > 0, st)

        # ---- the cache: a miss computes, a hit does not ----
        a, b = qa_models.inputs("FP32", 2, rng)
        r1, r2 = json_infer(srv, "addsub_cached", a, b), json_infer(srv, "addsub_cached", a, b)
        s = settled_stats(srv, "addsub_cached")
        st = s["inference_stats"]
        check("cache: both answers right", right(r1[1], a, b) and right(r2[1], a, b), (r1, r2))
        check("cache: success 2 (hits included), cache_miss 1, cache_hit 1 with their durations",
              st["success"]["count"] == 2 and st["cache_miss"]["count"] == 1 and st["cache_hit"]["count"] == 1
              and st["cache_miss"]["ns"] > 0 and st["cache_hit"]["ns"] > 0, st)
        check("cache: the hit ran nothing (inference_count 2 rows, execution_count 1, compute counts 1)",
              s["inference_count"] == 2 and s["execution_count"] == 1
              and all(st[k]["count"] == 1 for k in ("compute_input", "compute_infer", "compute_output"))
              and st["queue"]["count"] == 2, s)

        # ---- the same by gRPC, field by field ----
        for name, version in ((ADDSUB, ""), ("addsub_cached", "1"), ("", "")):
            r = stub.ModelStatistics(pb2.ModelStatisticsRequest(name=name, version=version), timeout=30)
            status, doc = stats(srv, name, version) if name else srv.json("GET", "/v2/models/stats")[:2]
            check(f"ModelStatistics({name or 'every model'}{', ' + version if version else ''}) is the HTTP "
                  "answer field by field", status == 200 and grpc_stubs.to_dict(r) == doc,
                  json.dumps(grpc_stubs.to_dict(r))[:600] + " vs " + json.dumps(doc)[:600])

        # ---- unknown model or version ----
        status, doc = stats(srv, "no_such_model")
        check("HTTP: an unknown model is 404 naming it", status == 404 and "no_such_model" in doc.get("error", ""), doc)
        status, doc = stats(srv, ADDSUB, "7")
        check("HTTP: a version not loaded is 404 naming it", status == 404 and "'7'" in doc.get("error", ""), doc)
        for name, version in (("no_such_model", ""), (ADDSUB, "7")):
            try:
                stub.ModelStatistics(pb2.ModelStatisticsRequest(name=name, version=version), timeout=30)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as e:
                code, details = e.code(), e.details()
            check(f"gRPC: ModelStatistics({name}, {version or 'latest'}) NOT_FOUND",
                  code == grpc.StatusCode.NOT_FOUND and (name in details or "'7'" in details), (code, details))
    finally:
        channel.close()
        code = srv.stop()
        check("SIGTERM exits 0", code == 0, srv.output()[-2000:])
        log = srv.output()
        check("no sanitizer report", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


if __name__ == "__main__":
    sys.exit(main())
