#!/usr/bin/python3
"""`celer serve --model-repository s3://...` against OpenStack Swift with s3api on loopback, which
checks every SigV4 signature (tests/s3/swift.sh; boto3 uploads as a training job would): serving
from the bucket with listings of 2 keys a page, a pipeline and the model it calls included, a model
file uploaded in parts (ETag ending in -2); a new version uploaded file by file while clients send
requests, taken only once its READY marker is there; a corrupt version refused (in the log and the
index) while the one before serves; versions deleted; S3's proxy stopped under load (still ready
and serving, the index says why) and restarted; all with zero failed requests; the metrics; a load
by name without polling taking the bucket's new version; a restart over a warm --model-cache-dir
downloading nothing; a wrong secret, an unknown key, a clock 20 minutes off (faketime) and S3 down
at start: the server starts unready with S3's message in the log and the index (no secret), and S3
back up is picked up.

usage: test_s3_repository.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnx
from boto3.s3.transfer import TransferConfig
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "s3"))
from test_server import REPO_SRC, Server, check, free_port, summary  # noqa: E402
import s3util  # noqa: E402
from test_s3_client import free_port_block  # noqa: E402

SWIFT = os.path.join(HERE, "..", "s3", "swift.sh")
BUCKET, PREFIX = "models", "prod/repo/"
SECRET = "testing"


def wait_for(cond, secs=15):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return False


def versions(srv):
    status, doc, _ = srv.json("POST", "/v2/repository/index")
    return {(m["version"], m["state"]) for m in doc if m["name"] == "mlp"} if status == 200 else set()


def write_wide_model(path):
    """A model over 5 MB (so that it is uploaded in two parts): y = max(x @ W), W [16, 100000]."""
    rng = np.random.default_rng(17)
    w = rng.standard_normal((16, 100000)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("ReduceMax", ["xw"], ["y"], axes=[1], keepdims=1)],
        "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        [numpy_helper.from_array(w, "W")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return w


def main():
    work = tempfile.mkdtemp(prefix="celer-s3-e2e-")
    port = free_port_block()
    endpoint = "http://127.0.0.1:%d" % port
    subprocess.run([SWIFT, "start", os.path.join(work, "swift"), str(port)], check=True)
    srv = None
    try:
        c = s3util.client(endpoint)
        c.create_bucket(Bucket=BUCKET)
        mlp = os.path.join(REPO_SRC, "mlp")
        model = open(os.path.join(mlp, "1", "model.onnx"), "rb").read()
        c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/config.pbtxt", Body=open(os.path.join(mlp, "config.pbtxt"), "rb").read())
        c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/1/model.onnx", Body=model)
        c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/1/READY", Body=b"1")
        # a pipeline (pipeline.yaml and its labels file) and the model it calls
        s3util.putdir(c, BUCKET, PREFIX + "tiny_cnn", os.path.join(REPO_SRC, "tiny_cnn"))
        c.put_object(Bucket=BUCKET, Key=PREFIX + "tiny_cnn/1/READY", Body=b"1")
        s3util.putdir(c, BUCKET, PREFIX + "classify", os.path.join(REPO_SRC, "classify"))
        url = "s3://127.0.0.1:%d/%s/%s" % (port, BUCKET, PREFIX)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test:tester", AWS_SECRET_ACCESS_KEY=SECRET, CELER_S3_PAGE_KEYS="2")
        srv = Server(url, "--repository-poll-secs", "1", "--quiet", env=env)
        check("serves the bucket's model", versions(srv) == {("1", "READY")}, versions(srv))
        check("the start-up log names the copy", "local copy in" in srv.output(), srv.output())
        _, index, _ = srv.json("POST", "/v2/repository/index")
        states = {e["name"]: e["state"] for e in index}
        check("a pipeline and the model it calls come from the bucket too",
              states.get("classify") == "READY" and states.get("tiny_cnn") == "READY", index)
        _, text, _ = srv.request("GET", "/metrics")
        metrics = {}
        for line in text.decode().splitlines():
            if line.startswith("celer_s3_") and ('repository="%s"' % url) in line:
                metrics[line.split("{")[0]] = float(line.rsplit(" ", 1)[1])
        check("S3 metrics: list calls (2 keys a page), objects and bytes downloaded, errors, sync age",
              metrics.get("celer_s3_list_calls_total", 0) >= 4 and metrics.get("celer_s3_objects_downloaded_total", 0) >= 5
              and metrics.get("celer_s3_downloaded_bytes_total", 0) > len(model)
              and metrics.get("celer_s3_sync_errors_total") == 0
              and 0 <= metrics.get("celer_s3_last_sync_age_seconds", -1) < 30, metrics)

        # a model file uploaded in parts, as `aws s3 cp` and boto3 do from 8 MB: its ETag ends in -N
        wide = os.path.join(work, "wide.onnx")
        weights = write_wide_model(wide)
        c.upload_file(wide, BUCKET, PREFIX + "wide/1/model.onnx",
                      Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
        c.put_object(Bucket=BUCKET, Key=PREFIX + "wide/1/READY", Body=b"1")
        etag = [e for k, _, e in s3util.ls(c, BUCKET, PREFIX + "wide/") if k.endswith("model.onnx")]
        served = wait_for(lambda: ("wide", "READY") in {(e["name"], e["state"]) for e in
                                                         srv.json("POST", "/v2/repository/index")[1]})
        x = np.linspace(-1, 1, 16, dtype=np.float32)
        status, doc, _ = srv.json("POST", "/v2/models/wide/infer", {"inputs": [
            {"name": "x", "shape": [1, 16], "datatype": "FP32", "data": x.tolist()}]})
        got = doc["outputs"][0]["data"][0] if status == 200 else None
        want = float((x @ weights).max())
        check("a model uploaded in parts (ETag %s) is served, its answer right" % (etag[0] if etag else "?"),
              etag and etag[0].endswith('-2"') and served and got is not None and abs(got - want) < 1e-4 * abs(want),
              (etag, served, status, doc if status != 200 else (got, want)))

        stop = threading.Event()
        counts = {"ok": 0, "failed": []}
        lock = threading.Lock()

        def client():
            body = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}
            while not stop.is_set():
                status, doc, _ = srv.json("POST", "/v2/models/mlp/infer", body)
                with lock:
                    if status == 200:
                        counts["ok"] += 1
                    else:
                        counts["failed"].append((status, doc))
                time.sleep(0.005)  # steady, not flat out: each request is a connection left in TIME_WAIT

        clients = [threading.Thread(target=client) for _ in range(2)]
        for t in clients:
            t.start()
        try:
            # version 2 file by file, polled in between: not taken before its marker
            c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/2/model.onnx", Body=model[: len(model) // 2])
            time.sleep(3)
            check("a half-uploaded version is not taken", versions(srv) == {("1", "READY")}, versions(srv))
            c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/2/model.onnx", Body=model)
            time.sleep(2.5)
            check("a complete version without its marker is not taken", versions(srv) == {("1", "READY")},
                  versions(srv))
            t0 = time.time()
            c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/2/READY", Body=b"1")
            took = wait_for(lambda: ("2", "READY") in versions(srv))
            check("the version is served once its READY marker is there (%.1f s)" % (time.time() - t0), took,
                  versions(srv))
            # a corrupt version: refused, the one before keeps serving
            c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/3/model.onnx", Body=b"not an onnx file")
            c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/3/READY", Body=b"1")
            refused = wait_for(lambda: "failed to load 'mlp'" in srv.output() and "mlp/3/model.onnx" in srv.output())
            check("a corrupt version is refused, the log says why", refused, srv.output()[-2000:])
            check("the index still lists the version before it", versions(srv) == {("2", "READY")}, versions(srv))
            _, index, _ = srv.json("POST", "/v2/repository/index")
            why = [e.get("reason", "") for e in index if e["name"] == "mlp"]
            check("the index says why the new version was refused", why and "mlp/3/model.onnx" in why[0], index)
            status, doc, _ = srv.json("POST", "/v2/models/mlp/versions/2/infer",
                                      {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                                                   "data": [0.5] * 16}]})
            check("the version before it serves", status == 200, (status, doc))
            # deleted versions go
            s3util.rmprefix(c, BUCKET, PREFIX + "mlp/3/")
            s3util.rmprefix(c, BUCKET, PREFIX + "mlp/2/")
            check("deleted versions are unloaded", wait_for(lambda: versions(srv) == {("1", "READY")}), versions(srv))
            # S3 gone for a few polls under load: the serving version goes on, the failure shows; back: ready
            subprocess.run([SWIFT, "stop-proxy", os.path.join(work, "swift")], check=True)

            def source_entry():
                return [e for e in srv.json("POST", "/v2/repository/index")[1] if e["name"] == url]
            shown = wait_for(lambda: source_entry(), 20)
            check("S3 stopped under load: the index shows why, still ready, the version still served",
                  shown and srv.request("GET", "/v2/health/ready")[0] == 200 and versions(srv) == {("1", "READY")},
                  (source_entry(), versions(srv)))
            subprocess.run([SWIFT, "start-proxy", os.path.join(work, "swift")], check=True)
            check("S3 back under load: the index entry goes", wait_for(lambda: not source_entry(), 40), source_entry())
        finally:
            stop.set()
            for t in clients:
                t.join()
        check("zero failed requests while versions came and went (%d answered)" % counts["ok"],
              not counts["failed"] and counts["ok"] > 0, counts["failed"][:3])
        copy = [l for l in srv.output().splitlines() if "local copy in" in l][0].split("local copy in ")[1].split(":")[0]
        rc = srv.stop()
        srv = None
        check("exits 0 on SIGTERM (nothing leaked under ASan)", rc == 0, rc)
        check("the private copy is removed at exit", not os.path.exists(copy), copy)

        # no polling: the repository API's load by name fetches the bucket's current version
        srv = Server(url, "--quiet", env=env)
        c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/4/model.onnx", Body=model)
        c.put_object(Bucket=BUCKET, Key=PREFIX + "mlp/4/READY", Body=b"1")
        time.sleep(1.5)
        before = versions(srv)
        status, doc, _ = srv.json("POST", "/v2/repository/models/mlp/load")
        check("without polling, a load by name takes the bucket's new version",
              before == {("1", "READY")} and status == 200 and versions(srv) == {("4", "READY")},
              (before, status, doc, versions(srv)))
        s3util.rmprefix(c, BUCKET, PREFIX + "mlp/4/")
        srv.stop()
        srv = None

        # a warm cache: the second start downloads nothing
        cache = os.path.join(work, "cache")
        for attempt in (1, 2):
            srv = Server(url, "--model-cache-dir", cache, "--quiet", env=env)
            line = [l for l in srv.output().splitlines() if "local copy in" in l]
            rc = srv.stop()
            srv = None
            check("restart %d exits 0" % attempt, rc == 0, rc)
        check("a restart over a warm --model-cache-dir downloads nothing",
              line and "0 objects (0 bytes) downloaded" in line[0], line)

        # a wrong secret: the server starts unready, S3's message in the log and the index, never
        # the secret
        bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-7c1e")
        srv = Server(url, "--quiet", env=bad)
        status, _, _ = srv.request("GET", "/v2/health/ready")
        _, index, _ = srv.json("POST", "/v2/repository/index")
        entry = [e for e in index if e["name"] == url]
        check("a wrong secret: started, not ready", status != 200, status)
        check("a wrong secret: the index names the bucket with S3's message",
              entry and entry[0]["state"] == "UNAVAILABLE" and "SignatureDoesNotMatch" in entry[0]["reason"], index)
        check("a wrong secret: the log says why", "SignatureDoesNotMatch" in srv.output(), srv.output())
        check("no secret in the log or the index", "wrong-secret-7c1e" not in srv.output() + str(index),
              srv.output())
        srv.stop()
        srv = None

        # a key S3 does not know: said the same way (AWS answers InvalidAccessKeyId; Swift with
        # tempauth cannot tell it from a wrong secret and answers SignatureDoesNotMatch)
        srv = Server(url, "--quiet", env=dict(env, AWS_ACCESS_KEY_ID="nobody:unknown"))
        _, index, _ = srv.json("POST", "/v2/repository/index")
        entry = [e for e in index if e["name"] == url]
        said = [c for c in ("InvalidAccessKeyId", "SignatureDoesNotMatch")
                if entry and c in entry[0]["reason"] and c in srv.output()]
        check("an unknown key: unready, S3's refusal (%s) in the index and the log" % (said or ["none"])[0],
              srv.request("GET", "/v2/health/ready")[0] != 200 and said, index)
        srv.stop()
        srv = None

        # a clock 20 minutes behind: S3 refuses (RequestTimeTooSkewed), said as for a wrong secret.
        # libfaketime preloaded into the server itself (the faketime program would stand between
        # the test and the server, which would outlive its SIGTERM); under ASan the runtime is told
        # it need not come first
        lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
        if os.path.exists(lib):
            asan = os.environ.get("ASAN_OPTIONS", "")
            skew = dict(env, LD_PRELOAD=lib, FAKETIME="-20m", FAKETIME_DONT_FAKE_MONOTONIC="1",
                        ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
            srv = Server(url, "--quiet", env=skew)
            _, index, _ = srv.json("POST", "/v2/repository/index")
            entry = [e for e in index if e["name"] == url]
            check("a clock 20 minutes off: unready, RequestTimeTooSkewed in the index",
                  srv.request("GET", "/v2/health/ready")[0] != 200 and entry
                  and "RequestTimeTooSkewed" in entry[0]["reason"], index)
            check("a clock 20 minutes off: exits 0 on SIGTERM", srv.stop() == 0)
            srv = None
        else:
            check("libfaketime is installed (scripts/deps.sh --test: faketime)", False, lib)

        # S3 down at start: unready, retried with backoff; up again: the models load
        subprocess.run([SWIFT, "stop-proxy", os.path.join(work, "swift")], check=True)
        srv = Server(url, "--quiet", env=env)
        status, _, _ = srv.request("GET", "/v2/health/ready")
        check("S3 down at start: started, not ready", status != 200, status)
        subprocess.run([SWIFT, "start-proxy", os.path.join(work, "swift")], check=True)
        back = wait_for(lambda: srv.request("GET", "/v2/health/ready")[0] == 200, 20)
        check("S3 back: ready, serving the bucket's model", back and versions(srv) == {("1", "READY")},
              versions(srv))
        _, text, _ = srv.request("GET", "/metrics")
        errors = [l for l in text.decode().splitlines() if l.startswith("celer_s3_sync_errors_total")]
        check("the failed syncs are counted", errors and float(errors[0].rsplit(" ", 1)[1]) >= 1, errors)
        srv.stop()
        srv = None
    finally:
        if srv:
            srv.stop()
        subprocess.run([SWIFT, "stop", os.path.join(work, "swift")])
        shutil.rmtree(work, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
