#!/usr/bin/python3
"""Hot reload under load: new versions swapped in 50 times through the repository API while
clients send requests without pause, then a version folder written in two halves picked up by
polling (the OpenAPI documents follow). Requires zero failed requests and no memory growth.

usage: test_reload.py CELER_BIN EXAMPLE_REPOSITORY"""
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, summary  # noqa: E402

CYCLES = 50


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    tmp = tempfile.mkdtemp(prefix="celer-reload-")
    repo = os.path.join(tmp, "repository")
    os.makedirs(repo)
    shutil.copytree(os.path.join(sys.argv[2], "mlp"), os.path.join(repo, "mlp"))
    model_bytes = open(os.path.join(repo, "mlp", "1", "model.onnx"), "rb").read()
    srv = Server(repo, "--repository-poll-secs", "1", "--quiet")
    stop = threading.Event()
    counts = {"ok": 0, "failed": []}
    lock = threading.Lock()

    def client():
        body = {"inputs": [{"name": "features", "shape": [2, 16], "datatype": "FP32", "data": [0.5] * 32}]}
        while not stop.is_set():
            status, doc, _ = srv.json("POST", "/v2/models/mlp/infer", body)
            with lock:
                if status == 200 and len(doc["outputs"][0]["data"]) == 16:
                    counts["ok"] += 1
                else:
                    counts["failed"].append((status, doc))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    rss = {}
    try:
        swaps_ok = True
        for cycle in range(1, CYCLES + 1):
            version = cycle + 1
            os.makedirs(os.path.join(repo, "mlp", str(version)))
            with open(os.path.join(repo, "mlp", str(version), "model.onnx"), "wb") as f:
                f.write(model_bytes)
            status, doc, _ = srv.json("POST", "/v2/repository/models/mlp/load")
            _, meta, _ = srv.json("GET", "/v2/models/mlp")
            if status != 200 or meta.get("versions") != [str(version)]:
                swaps_ok = False
                print(f"cycle {cycle}: load {status} {doc}, metadata {meta}")
            if cycle in (10, CYCLES):
                time.sleep(0.5)
                rss[cycle] = rss_kb(srv.proc.pid)
        check(f"{CYCLES} version swaps through the API", swaps_ok)
        growth = rss[CYCLES] - rss[10]
        print(f"server RSS after swap 10: {rss[10]} kB, after swap {CYCLES}: {rss[CYCLES]} kB")
        if os.environ.get("CELER_SANITIZED") == "1":
            print("memory growth not checked: AddressSanitizer's quarantine keeps freed memory (LeakSanitizer checks leaks)")
        else:
            check("no memory growth over the swaps (< 16 MB from cycle 10 to 50)", growth < 16 * 1024,
                  f"{rss[10]} kB -> {rss[CYCLES]} kB")

        # polling: a version folder written in two halves is never served half-written
        last = CYCLES + 1
        new = last + 1
        path = os.path.join(repo, "mlp", str(new))
        os.makedirs(path)
        with open(os.path.join(path, "model.onnx"), "wb") as f:
            f.write(model_bytes[: len(model_bytes) // 2])
        time.sleep(1.5)
        _, meta, _ = srv.json("GET", "/v2/models/mlp")
        check("half-written version is not served", meta.get("versions") == [str(last)], meta)
        with open(os.path.join(path, "model.onnx"), "wb") as f:
            f.write(model_bytes)
        deadline = time.time() + 10
        while time.time() < deadline:
            _, meta, _ = srv.json("GET", "/v2/models/mlp")
            if meta.get("versions") == [str(new)]:
                break
            time.sleep(0.2)
        check("polling picks up the completed version", meta.get("versions") == [str(new)], meta)
        # the OpenAPI documents follow the swap: the new version's paths, not the old one's
        _, doc, _ = srv.json("GET", "/v2/models/mlp/openapi.json")
        paths = doc.get("paths", {}) if isinstance(doc, dict) else {}
        check("the OpenAPI documents are rebuilt with the swap",
              f"/v2/models/mlp/versions/{new}/infer" in paths and f"/v2/models/mlp/versions/{last}/infer" not in paths
              and srv.json("GET", f"/v2/models/mlp/versions/{new}/openapi.json")[0] == 200
              and srv.json("GET", f"/v2/models/mlp/versions/{last}/openapi.json")[0] == 404,
              sorted(p for p in paths if p.endswith("/infer")))
    finally:
        stop.set()
        for t in clients:
            t.join()
        print(f"requests during the test: {counts['ok']} ok, {len(counts['failed'])} failed")
        check("zero failed requests during reloads", not counts["failed"] and counts["ok"] > 0,
              f"{counts['ok']} ok, failures: {counts['failed'][:3]}")
        code = srv.stop()
        check("SIGTERM exits 0", code == 0, (code, srv.output()[-2000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
