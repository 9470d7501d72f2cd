#!/usr/bin/python3
"""End-to-end: Triton's metric names beside celer's, and the metrics port.
- every nv_* family Triton exports for a model version (core's metrics.cc): its type, the labels
  model and version (and reason for failures), the cache ones only for a model that caches, the
  summaries with Triton's quantiles, and the machine's nv_cpu_* gauges its Grafana dashboard draws;
- their values are the statistics' (GET .../stats, the same counters read twice: no second count)
  and agree with celer's own series (requests by outcome, the request histogram);
- failures by reason: a wrong input OTHER, a request timed out in the queue REJECTED;
- inferences by HTTP and by gRPC (Debian's python3-grpcio) on Triton QA-layout models, answers
  checked against NumPy;
- the Grafana dashboard's queries (deploy/k8s-onprem/dashboard.json) find their series;
- --metrics-port serves the same text on a port of its own, answers 404 to any other path and
  405 to POST, and the HTTP port keeps /metrics; a busy metrics port stops the server from
  starting with a message naming it; a reload that turns a model's cache on or off takes its cache
  series with it.

usage: test_triton_metrics.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
import qa_models  # noqa: E402
from test_server import Server, check, free_port, settled_stats  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
ADDSUB = "onnx_float32_float32_float32"
COUNTERS = ["nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count",
            "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
            "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
            "nv_inference_compute_output_duration_us"]
CACHE_COUNTERS = ["nv_cache_num_hits_per_model", "nv_cache_hit_duration_per_model", "nv_cache_num_misses_per_model",
                  "nv_cache_miss_duration_per_model"]
SUMMARIES = ["nv_inference_queue_summary_us", "nv_inference_compute_input_summary_us",
             "nv_inference_compute_infer_summary_us", "nv_inference_compute_output_summary_us"]
QUANTILES = ["0.5", "0.9", "0.95", "0.99", "0.999"]
# the Grafana dashboard Triton ships (deploy/k8s-onprem/dashboard.json) queries these
DASHBOARD = ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
             "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us", "nv_cpu_utilization",
             "nv_cpu_memory_used_bytes"]


def variant(repo, name, extra):
    shutil.copytree(os.path.join(repo, ADDSUB), os.path.join(repo, name))
    path = os.path.join(repo, name, "config.pbtxt")
    with open(path) as f:
        text = f.read().replace(f'name: "{ADDSUB}"', f'name: "{name}"')
    with open(path, "w") as f:
        f.write(text + extra)


def get(port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace"), dict(r.getheaders())
    finally:
        conn.close()


def parse(text):
    """({(name, frozenset(labels)): value}, {family: type})"""
    samples, types = {}, {}
    for line in text.splitlines():
        m = re.match(r"^# TYPE (\S+) (\S+)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if not m:
            raise ValueError("bad line: " + line)
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def json_infer(srv, model, a, b, **params):
    doc = {"inputs": [{"name": f"INPUT{i}", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}
                      for i, x in enumerate((a, b))]}
    if params:
        doc["parameters"] = params
    status, out, _ = srv.json("POST", f"/v2/models/{model}/infer", doc)
    if status != 200:
        return status, None
    outs = [np.array(o["data"], np.float32).reshape(o["shape"]) for o in sorted(out["outputs"], key=lambda o: o["name"])]
    want = qa_models.reference("addsub", a, b)
    return status, all(np.array_equal(o, w) for o, w in zip(outs, want))


def main():
    return grpc_stubs.main("celer-e2e-nv-", run)


def run(tmp, grpc, pb2, pb2_grpc):
    repo = os.path.join(tmp, "repository")
    qa_models.write_repository(repo, dtypes=["FP32"], batching=(True,))
    variant(repo, "addsub_cached", "response_cache { enable: true }\n")
    # a lone request waits for a batch of 4 and times out in the queue after 100 ms: REJECTED
    variant(repo, "addsub_slow", "dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 3000000 "
                                 "default_queue_policy { default_timeout_microseconds: 100000 } }\n")
    rng = np.random.default_rng(13)
    gport, mport = free_port(), free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1", "--metrics-port", str(mport),
                 "--metrics-address", "127.0.0.1")
    channel = grpc_stubs.channel(grpc, gport)
    stub = pb2_grpc.GRPCInferenceServiceStub(channel)
    try:
        check("the start-up line names the metrics port", f"metrics on http://127.0.0.1:{mport}/metrics" in srv.output(),
              srv.output()[-500:])
        # ---- traffic: HTTP and gRPC, a failure of each reason we can cause ----
        ok = []
        for rows in (1, 3):
            a, b = qa_models.inputs("FP32", rows, rng)
            ok.append(json_infer(srv, ADDSUB, a, b) == (200, True))
        a, b = qa_models.inputs("FP32", 2, rng)
        req = pb2.ModelInferRequest(model_name=ADDSUB)
        for i, x in enumerate((a, b)):
            req.inputs.add(name=f"INPUT{i}", datatype="FP32", shape=list(x.shape))
            req.raw_input_contents.append(x.tobytes())
        r = stub.ModelInfer(req, timeout=30)
        out0 = np.frombuffer(r.raw_output_contents[0], np.float32).reshape(2, 16)
        ok.append(np.array_equal(out0, a + b))
        check("HTTP (1 and 3 rows) and gRPC (2 rows) answers are what NumPy computes", all(ok), ok)
        bad = {"inputs": [{"name": "INPUT0", "shape": [1, 3], "datatype": "FP32", "data": [0, 0, 0]},
                          {"name": "INPUT1", "shape": [1, 3], "datatype": "FP32", "data": [0, 0, 0]}]}
        check("a wrong shape is refused (400)", srv.json("POST", f"/v2/models/{ADDSUB}/infer", bad)[0] == 400)
        a, b = qa_models.inputs("FP32", 1, rng)
        check("a request timed out in the queue: 503", json_infer(srv, "addsub_slow", a, b)[0] == 503)
        a, b = qa_models.inputs("FP32", 2, rng)
        check("the cached model: a miss then a hit, both right",
              json_infer(srv, "addsub_cached", a, b) == (200, True) and json_infer(srv, "addsub_cached", a, b) == (200, True))

        # ---- the metrics port and the HTTP port say the same ----
        stats = {m: settled_stats(srv, m) for m in (ADDSUB, "addsub_cached", "addsub_slow")}
        status, text, headers = get(mport, "/metrics")
        check("metrics port: GET /metrics 200, Prometheus text", status == 200
              and headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"), (status, headers))
        samples, types = parse(text)
        status2, text2, _ = get(srv.port, "/metrics")
        samples2, types2 = parse(text2)
        nv = lambda s: {k: v for k, v in s.items() if k[0].startswith("nv_inference_") and "summary" not in k[0]}  # noqa: E731
        check("HTTP port's /metrics has the same nv_inference_* counters", status2 == 200 and nv(samples) == nv(samples2),
              set(nv(samples).items()) ^ set(nv(samples2).items()))
        for path, method, want in (("/v2/health/ready", "GET", 404), ("/metrics/x", "GET", 404), ("/metrics", "POST", 405)):
            st, body, h = get(mport, path, method)
            check(f"metrics port: {method} {path} -> {want}", st == want and '"error"' in body
                  and (want != 405 or "GET" in h.get("Allow", "")), (st, body, h))
        st, body, _ = get(mport, "/metrics", "HEAD")
        check("metrics port: HEAD /metrics 200 without a body", st == 200 and body == "", (st, body[:100]))

        # ---- the families, types and labels ----
        for name in COUNTERS + CACHE_COUNTERS + ["nv_inference_request_failure"]:
            check(f"{name} is a counter", types.get(name) == "counter", types.get(name))
        for name in ("nv_inference_pending_request_count", "nv_model_load_duration_secs", "nv_cpu_utilization",
                     "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes"):
            check(f"{name} is a gauge", types.get(name) == "gauge", types.get(name))
        for name in SUMMARIES + ["nv_inference_request_summary_us", "nv_cache_hit_summary_per_model",
                                 "nv_cache_miss_summary_per_model"]:
            check(f"{name} is a summary", types.get(name) == "summary", types.get(name))
        for model in stats:
            mv = {"model": model, "version": "1"}
            check(f"{model}: every counter and gauge with labels model and version",
                  all(value(samples, n, **mv) is not None for n in COUNTERS + ["nv_inference_pending_request_count",
                                                                               "nv_model_load_duration_secs"]),
                  [n for n in COUNTERS if value(samples, n, **mv) is None])
            reasons = {dict(k[1]).get("reason") for k in samples if k[0] == "nv_inference_request_failure"
                       and ("model", model) in k[1]}
            check(f"{model}: nv_inference_request_failure by Triton's four reasons", reasons ==
                  {"REJECTED", "CANCELED", "BACKEND", "OTHER"}, reasons)
            cached = model == "addsub_cached"
            check(f"{model}: cache counters and summaries {'present' if cached else 'absent'} as in Triton",
                  all((value(samples, n, **mv) is not None) == cached for n in CACHE_COUNTERS)
                  and (value(samples, "nv_cache_hit_summary_per_model_count", **mv) is not None) == cached
                  and (value(samples, "nv_inference_request_summary_us_count", **mv) is None) == cached)
            check(f"{model}: summaries with Triton's quantiles, ascending",
                  all(value(samples, n, quantile=q, **mv) is not None for n in SUMMARIES for q in QUANTILES)
                  and all(np.all(np.diff([value(samples, n, quantile=q, **mv) for q in QUANTILES]) >= 0)
                          for n in SUMMARIES if value(samples, n + "_count", **mv)))

        # ---- the values: the statistics' own counters ----
        for model, s in stats.items():
            mv = {"model": model, "version": "1"}
            st = s["inference_stats"]
            want = {"nv_inference_request_success": st["success"]["count"],
                    "nv_inference_count": s["inference_count"], "nv_inference_exec_count": s["execution_count"],
                    "nv_inference_request_duration_us": st["success"]["ns"] // 1000,
                    "nv_inference_queue_duration_us": st["queue"]["ns"] // 1000,
                    "nv_inference_compute_input_duration_us": st["compute_input"]["ns"] // 1000,
                    "nv_inference_compute_infer_duration_us": st["compute_infer"]["ns"] // 1000,
                    "nv_inference_compute_output_duration_us": st["compute_output"]["ns"] // 1000}
            if model == "addsub_cached":
                want.update({"nv_cache_num_hits_per_model": st["cache_hit"]["count"],
                             "nv_cache_hit_duration_per_model": st["cache_hit"]["ns"] // 1000,
                             "nv_cache_num_misses_per_model": st["cache_miss"]["count"],
                             "nv_cache_miss_duration_per_model": st["cache_miss"]["ns"] // 1000})
            have = {n: value(samples, n, **mv) for n in want}
            check(f"{model}: every nv_* counter is its statistic (success {st['success']['count']}, "
                  f"inference_count {s['inference_count']})", have == {k: float(v) for k, v in want.items()},
                  (have, want))
            fails = sum(value(samples, "nv_inference_request_failure", reason=r, **mv) or 0
                        for r in ("REJECTED", "CANCELED", "BACKEND", "OTHER"))
            check(f"{model}: failures by reason add up to the statistics' fail count", fails == st["fail"]["count"],
                  (fails, st["fail"]))
            celer_ok = sum(v for k, v in samples.items() if k[0] == "celer_inference_requests_total"
                           and ("model", model) in k[1] and ("outcome", "success") in k[1])
            hist = sum(v for k, v in samples.items() if k[0] == "celer_inference_request_duration_seconds_count"
                       and ("model", model) in k[1])
            check(f"{model}: celer's own series count the same successes", celer_ok == st["success"]["count"] == hist,
                  (celer_ok, hist, st["success"]))
            hsum = sum(v for k, v in samples.items() if k[0] == "celer_inference_request_duration_seconds_sum"
                       and ("model", model) in k[1])
            check(f"{model}: celer's request histogram sums the same durations",
                  abs(hsum * 1e9 - st["success"]["ns"]) <= 1e3 * max(1, st["success"]["count"]), (hsum, st["success"]))
        mv = {"model": ADDSUB, "version": "1"}
        check("a wrong input counts as OTHER", value(samples, "nv_inference_request_failure", reason="OTHER", **mv) == 1,
              value(samples, "nv_inference_request_failure", reason="OTHER", **mv))
        mv = {"model": "addsub_slow", "version": "1"}
        check("a request timed out in the queue counts as REJECTED",
              value(samples, "nv_inference_request_failure", reason="REJECTED", **mv) == 1)
        mv = {"model": ADDSUB, "version": "1"}
        check("request summary: _count the successes, _sum their whole microseconds",
              value(samples, "nv_inference_request_summary_us_count", **mv) == 3
              and value(samples, "nv_inference_request_summary_us_sum", **mv)
              <= value(samples, "nv_inference_request_duration_us", **mv) + 3)
        check("nv_model_load_duration_secs is the load time (> 0)", (value(samples, "nv_model_load_duration_secs", **mv)
                                                                    or 0) > 0)
        check("nv_cpu_utilization in [0, 1], memory used <= total",
              0 <= (value(samples, "nv_cpu_utilization") or -1) <= 1
              and 0 < (value(samples, "nv_cpu_memory_used_bytes") or 0) <= (value(samples, "nv_cpu_memory_total_bytes") or 0))
        check("every series the Grafana dashboard queries is there",
              all(any(k[0] == n for k in samples) for n in DASHBOARD), [n for n in DASHBOARD
                                                                       if not any(k[0] == n for k in samples)])

        # ---- a reload that turns the cache on or off takes the cache series with it ----
        _, cfg_on, _ = srv.json("GET", f"/v2/models/{ADDSUB}/config")
        cfg_on["response_cache"] = {"enable": True}
        _, cfg_off, _ = srv.json("GET", "/v2/models/addsub_cached/config")
        cfg_off["response_cache"] = {"enable": False}
        s1 = srv.json("POST", f"/v2/repository/models/{ADDSUB}/load", {"parameters": {"config": json.dumps(cfg_on)}})[0]
        s2 = srv.json("POST", "/v2/repository/models/addsub_cached/load", {"parameters": {"config": json.dumps(cfg_off)}})[0]
        a, b = qa_models.inputs("FP32", 2, rng)
        answers = [json_infer(srv, m, a, b) for m in (ADDSUB, ADDSUB, "addsub_cached")]
        samples, _ = parse(get(mport, "/metrics")[1])
        on, off = {"model": ADDSUB, "version": "1"}, {"model": "addsub_cached", "version": "1"}
        check("reloaded with the cache on: cache series appear (a miss then a hit), the request summary goes",
              s1 == 200 and answers[:2] == [(200, True)] * 2
              and value(samples, "nv_cache_num_hits_per_model", **on) == 1
              and value(samples, "nv_cache_num_misses_per_model", **on) == 1
              and value(samples, "nv_inference_request_summary_us_count", **on) is None, (s1, answers))
        check("reloaded with the cache off: its cache series go, the request summary comes",
              s2 == 200 and answers[2] == (200, True) and value(samples, "nv_cache_num_hits_per_model", **off) is None
              and value(samples, "nv_cache_hit_summary_per_model_count", **off) is None
              and value(samples, "nv_inference_request_summary_us_count", **off) == 1
              and value(samples, "nv_inference_request_success", **off) == 1, s2)

        # ---- a busy metrics port stops the start with a message naming it ----
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            busy = s.getsockname()[1]
            p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()),
                                "--grpc-port", "0", "--metrics-port", str(busy), "--metrics-address", "127.0.0.1"],
                               capture_output=True, text=True, timeout=60)
        check("a metrics port in use: exit 1 naming it", p.returncode == 1 and f"127.0.0.1:{busy}" in p.stderr,
              (p.returncode, p.stderr[-500:]))
        p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", "8123", "--metrics-port", "8123"],
                           capture_output=True, text=True, timeout=60)
        check("--metrics-port equal to --http-port is refused", p.returncode != 0 and "--metrics-port" in p.stderr,
              p.stderr[-300:])
    finally:
        channel.close()
        code = srv.stop()
        log = srv.output()
        check("SIGTERM exits 0", code == 0, log[-2000:])
        check("no sanitizer report", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


if __name__ == "__main__":
    sys.exit(main())
