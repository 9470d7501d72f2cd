#!/usr/bin/python3
"""End-to-end: API keys with scopes (--api-keys) on HTTP (http.client, raw sockets) and gRPC
(Debian's python3-grpcio on stubs from tests/grpc/proto). Health stays open; a missing or unknown
key is 401 with WWW-Authenticate: Bearer / UNAUTHENTICATED, a known key without the endpoint's
scope 403 / PERMISSION_DENIED: an `infer` key on inference and metadata, an `admin` key on the
repository index, statistics and log settings, each refused the other's. /metrics (and
--metrics-port) is open until some key has the `metrics` scope. The scheme is case-insensitive.
A 60 MB body without a key is answered 401 at once, its body unread; so is a 30 MB gRPC message.
SIGHUP reloads the file (the old key 401, the new 200); a broken file at SIGHUP keeps the set
before and the log says why (its line, not the key); a broken file at start refuses to start. The
keys' text is never in the server's log (access log on, the default and json formats) nor in any
answer, and the access log names each key's NAME. The metrics count refusals and reloads.

usage: test_api_keys.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from test_server import Server, check, check_stopped, free_port  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
INFER = "ik-" + secrets.token_urlsafe(24)
ADMIN = "ak-" + secrets.token_urlsafe(24)
ROTATED = "rk-" + secrets.token_urlsafe(24)
SCRAPER = "mk-" + secrets.token_urlsafe(24)
UNKNOWN = "uk-" + secrets.token_urlsafe(24)
BROKEN = "bk-" + secrets.token_urlsafe(24)
KEYS = [INFER, ADMIN, ROTATED, SCRAPER, UNKNOWN, BROKEN]
SEEN = []  # every answer's status line, headers and body, searched for the keys at the end
FEATURES = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                                   "data": [0.5] * 16}]}).encode()


def bearer(key, scheme="Bearer"):
    return {"Authorization": f"{scheme} {key}"} if key else {}


def req(port, method, path, key=None, body=None, scheme="Bearer"):
    """(status, parsed JSON or text, headers) of one request on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=bearer(key, scheme))
        r = conn.getresponse()
        raw = r.read()
        headers = dict(r.getheaders())
    finally:
        conn.close()
    SEEN.append(f"{r.status} {headers} ".encode() + raw)
    try:
        return r.status, json.loads(raw), headers
    except ValueError:
        return r.status, raw.decode(errors="replace"), headers


def write_keys(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def metric(text, name, labels=""):
    m = re.search(rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(pred, secs=5.0):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def main():
    return grpc_stubs.main("celer-e2e-keys-", run)


def run(tmp, grpc, pb, pb_grpc):
    import numpy as np
    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    keys = os.path.join(tmp, "keys")
    write_keys(keys, f"# scopes key name\n\ninfer {INFER} frontend\nadmin {ADMIN} ops\n")
    gport, mport = free_port(), free_port()
    # verbose: every failed request's message is logged too (and a line per gRPC call, with the key's NAME)
    srv = Server(repo, "--api-keys", keys, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1",
                 "--metrics-port", str(mport), "--metrics-address", "127.0.0.1", "--log-verbose", "1")
    channel = grpc_stubs.channel(grpc, gport, options=[("grpc.max_send_message_length", 64 << 20)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    infer_req = pb.ModelInferRequest(
        model_name="mlp", inputs=[pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=[1, 16])],
        raw_input_contents=[np.full(16, 0.5, np.float32).tobytes()])

    def rpc(name, request, key=None, scheme="Bearer"):
        """(code name, details) of a call; OK with ""."""
        md = (("authorization", f"{scheme} {key}"),) if key else ()
        try:
            r = getattr(stub, name)(request, metadata=md, timeout=30)
            SEEN.append(str(r).encode())
            return "OK", ""
        except grpc.RpcError as e:
            SEEN.append(f"{e.code()} {e.details()} {e.trailing_metadata()}".encode())
            return e.code().name, e.details()

    try:
        port = srv.port
        # ---- HTTP ----
        for path in ("/v2/health/live", "/v2/health/ready"):
            status, _, _ = req(port, "GET", path)
            check(f"{path} open without a key", status == 200, status)
        status, doc, h = req(port, "POST", "/v2/models/mlp/infer", body=FEATURES)
        check("infer without a key: 401, WWW-Authenticate: Bearer, the usual error body",
              status == 401 and h.get("WWW-Authenticate", "").startswith("Bearer") and isinstance(doc, dict)
              and "API key" in doc.get("error", ""), (status, doc, h))
        status, doc, h = req(port, "POST", "/v2/models/mlp/infer", key=UNKNOWN, body=FEATURES)
        check("infer with an unknown key: 401, WWW-Authenticate: Bearer (invalid_token)",
              status == 401 and h.get("WWW-Authenticate", "").startswith("Bearer") and "invalid_token" in
              h.get("WWW-Authenticate", "") and "unknown API key" in doc.get("error", ""), (status, doc, h))
        status, doc, _ = req(port, "POST", "/v2/models/mlp/infer", key=INFER, body=FEATURES)
        check("infer with the infer key: 200 and outputs", status == 200 and doc.get("outputs"), (status, doc))
        status, doc, _ = req(port, "GET", "/v2/models/mlp", key=INFER)
        check("model metadata with the infer key: 200", status == 200 and doc.get("name") == "mlp", (status, doc))
        status, doc, _ = req(port, "GET", "/v2", key=INFER)
        check("server metadata (infer scope) with the infer key: 200", status == 200 and doc.get("name"), (status, doc))
        status, _, _ = req(port, "GET", "/v2")
        check("server metadata without a key: 401", status == 401, status)
        status, _, _ = req(port, "GET", "/v2/models/mlp/ready", key=INFER)
        check("model readiness with the infer key: 200", status == 200, status)
        status, _, _ = req(port, "POST", "/v2/models/mlp/infer", key=INFER, body=FEATURES, scheme="bearer")
        check("the scheme in lower case (bearer): 200", status == 200, status)
        status, _, _ = req(port, "GET", "/v2/models/mlp", key=ADMIN, scheme="BEARER")
        check("the scheme in upper case with the admin key on metadata: 403", status == 403, status)
        admin_paths = [("POST", "/v2/repository/index", b"{}"), ("GET", "/v2/models/mlp/stats", None),
                       ("GET", "/v2/models/stats", None), ("GET", "/v2/logging", None),
                       ("GET", "/v2/systemsharedmemory/status", None)]
        for method, path, body in admin_paths:
            status, doc, h = req(port, method, path, key=INFER, body=body)
            check(f"{method} {path} with the infer key: 403 naming the key's NAME and the scope",
                  status == 403 and "'frontend'" in doc.get("error", "") and "'admin'" in doc.get("error", "")
                  and 'error="insufficient_scope"' in h.get("WWW-Authenticate", ""), (status, doc, h))
            status, doc, _ = req(port, method, path, key=ADMIN, body=body)
            check(f"{method} {path} with the admin key: 200", status == 200, (status, doc))
            status, _, _ = req(port, method, path, body=body)
            check(f"{method} {path} without a key: 401", status == 401, status)
        status, doc, _ = req(port, "POST", "/v2/models/mlp/infer", key=ADMIN, body=FEATURES)
        check("infer with the admin key: 403", status == 403, (status, doc))
        status, _, _ = req(port, "GET", "/v2/openapi.json", key=INFER)
        check("the OpenAPI document with the infer key: 200 (without: 401)",
              status == 200 and req(port, "GET", "/v2/openapi.json")[0] == 401, status)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        statuses = []
        for _ in range(2):  # a refused GET has no body to skip: its connection goes on
            conn.request("GET", "/v2/models/mlp")
            r = conn.getresponse()
            SEEN.append(r.read())
            statuses.append((r.status, r.getheader("Connection")))
        conn.close()
        check("two refused GETs on one keep-alive connection", statuses == [(401, None)] * 2, statuses)
        status, doc, _ = req(port, "GET", "/docs")
        check("/docs is open (here off: its 404, not a 401)", status == 404 and "--docs" in doc.get("error", ""),
              (status, doc))
        status, body, _ = req(port, "GET", "/metrics")
        check("/metrics open while no key has the metrics scope", status == 200 and "celer_api_keys_loaded 2" in body,
              (status, str(body)[:300]))
        mstatus = req(mport, "GET", "/metrics")[0]
        check("--metrics-port open too", mstatus == 200, mstatus)
        status, _, _ = req(port, "GET", "/no/such/path", key=UNKNOWN)
        check("an unknown path is 404 whatever the key", status == 404, status)

        # a large body without a key: 401 at once, the body never read, the connection closed
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            t0 = time.time()
            s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 60000000\r\n\r\n{\"inputs\": [")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            took = time.time() - t0
        SEEN.append(data)
        check("a 60 MB body without a key: 401 within 1 s, connection closed, body unread",
              data.startswith(b"HTTP/1.1 401") and took < 1.0 and b"Connection: close" in data, (took, data[:200]))

        # ---- gRPC ----
        check("gRPC ServerLive, ServerReady open", rpc("ServerLive", pb.ServerLiveRequest())[0] == "OK"
              and rpc("ServerReady", pb.ServerReadyRequest())[0] == "OK")
        check("grpc.health.v1 Check open: SERVING", health(b"", timeout=10) == b"\x08\x01")
        code, details = rpc("ModelInfer", infer_req)
        check("gRPC ModelInfer without a key: UNAUTHENTICATED", code == "UNAUTHENTICATED" and "API key" in details,
              (code, details))
        code, _ = rpc("ModelInfer", infer_req, UNKNOWN)
        check("gRPC ModelInfer with an unknown key: UNAUTHENTICATED", code == "UNAUTHENTICATED", code)
        check("gRPC ModelInfer with the infer key: OK", rpc("ModelInfer", infer_req, INFER)[0] == "OK")
        check("gRPC ModelInfer, scheme in lower case: OK", rpc("ModelInfer", infer_req, INFER, "bearer")[0] == "OK")
        check("gRPC ModelMetadata with the infer key: OK",
              rpc("ModelMetadata", pb.ModelMetadataRequest(name="mlp"), INFER)[0] == "OK")
        check("gRPC ModelReady, ServerMetadata with the infer key: OK",
              rpc("ModelReady", pb.ModelReadyRequest(name="mlp"), INFER)[0] == "OK"
              and rpc("ServerMetadata", pb.ServerMetadataRequest(), INFER)[0] == "OK")
        code, _ = rpc("ModelMetadata", pb.ModelMetadataRequest(name="mlp"), ADMIN)
        check("gRPC ModelMetadata with the admin key: PERMISSION_DENIED", code == "PERMISSION_DENIED", code)
        code, _ = rpc("ModelInfer", infer_req, ADMIN)
        check("gRPC ModelInfer with the admin key: PERMISSION_DENIED", code == "PERMISSION_DENIED", code)
        for name, msg in (("RepositoryIndex", pb.RepositoryIndexRequest()),
                          ("ModelStatistics", pb.ModelStatisticsRequest(name="mlp")),
                          ("LogSettings", pb.LogSettingsRequest()),
                          ("SystemSharedMemoryStatus", pb.SystemSharedMemoryStatusRequest())):
            code, details = rpc(name, msg, INFER)
            check(f"gRPC {name} with the infer key: PERMISSION_DENIED naming the key's NAME",
                  code == "PERMISSION_DENIED" and "'frontend'" in details, (code, details))
            code, _ = rpc(name, msg, ADMIN)
            check(f"gRPC {name} with the admin key: OK", code == "OK", code)
            code, _ = rpc(name, msg)
            check(f"gRPC {name} without a key: UNAUTHENTICATED", code == "UNAUTHENTICATED", code)
        code, _ = rpc("TraceSetting", pb.TraceSettingRequest())
        check("gRPC TraceSetting (admin scope) without a key: UNAUTHENTICATED", code == "UNAUTHENTICATED", code)
        code, _ = rpc("TraceSetting", pb.TraceSettingRequest(), INFER)
        check("gRPC TraceSetting with the infer key: PERMISSION_DENIED", code == "PERMISSION_DENIED", code)
        big = pb.ModelInferRequest(model_name="mlp", raw_input_contents=[bytes(30 << 20)],
                                   inputs=[pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32",
                                                                                 shape=[1, 16])])
        t0 = time.time()
        code, _ = rpc("ModelInfer", big)
        took = time.time() - t0
        check("gRPC: a 30 MB message without a key: UNAUTHENTICATED, within 2 s", code == "UNAUTHENTICATED" and took < 2,
              (code, took))

        # ---- the metrics of refusals ----
        text = req(port, "GET", "/metrics")[1]
        counts = {r: metric(text, "celer_auth_failures_total", f'reason="{r}"') for r in ("missing", "unknown", "scope")}
        check("celer_auth_failures_total counts missing, unknown and scope refusals",
              all(v and v >= 1 for v in counts.values()), counts)

        # ---- SIGHUP: a new set; /metrics now needs the metrics scope ----
        write_keys(keys, f"infer {ROTATED} rotated\nadmin {ADMIN} ops\nmetrics {SCRAPER} scraper\n")
        srv.proc.send_signal(signal.SIGHUP)
        check("SIGHUP: the old infer key is refused (401)",
              wait_for(lambda: req(port, "GET", "/v2/models/mlp", key=INFER)[0] == 401))
        status, _, _ = req(port, "POST", "/v2/models/mlp/infer", key=ROTATED, body=FEATURES)
        check("SIGHUP: the new key infers (200)", status == 200, status)
        check("SIGHUP: gRPC refuses the old key and takes the new one",
              rpc("ModelInfer", infer_req, INFER)[0] == "UNAUTHENTICATED"
              and rpc("ModelInfer", infer_req, ROTATED)[0] == "OK")
        check("the log says the keys were reloaded", "API keys reloaded" in srv.output(), srv.output()[-800:])
        for p, what in ((port, "/metrics"), (mport, "--metrics-port")):
            s1, _, h1 = req(p, "GET", "/metrics")
            s2, _, _ = req(p, "GET", "/metrics", key=ROTATED)
            s3, body, _ = req(p, "GET", "/metrics", key=SCRAPER)
            check(f"{what} once a key has the metrics scope: 401 without a key, 403 with the infer key, 200 with "
                  f"the metrics key", (s1, s2, s3) == (401, 403, 200) and h1.get("WWW-Authenticate", "").startswith(
                      "Bearer"), (s1, s2, s3, h1))
        check("celer_api_keys_reloads_total 1 and celer_api_keys_loaded 3",
              metric(body, "celer_api_keys_reloads_total") == 1 and metric(body, "celer_api_keys_loaded") == 3,
              str(body)[:300])

        # ---- SIGHUPs while requests flow: a key in every version of the file is never refused ----
        stop, answers = threading.Event(), []

        def client():
            while not stop.is_set():
                answers.append(req(port, "POST", "/v2/models/mlp/infer", key=ROTATED, body=FEATURES)[0])
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(30):
            extra = f"infer {UNKNOWN} extra\n" if i % 2 else ""
            write_keys(keys + ".new", f"infer {ROTATED} rotated\n{extra}admin {ADMIN} ops\nmetrics {SCRAPER} scraper\n")
            os.replace(keys + ".new", keys)
            before = srv.output().count("API keys reloaded")
            srv.proc.send_signal(signal.SIGHUP)
            # the kernel merges a SIGHUP sent while one is still pending: send the next only
            # once this one was taken
            wait_for(lambda: srv.output().count("API keys reloaded") > before)
        stop.set()
        for t in threads:
            t.join()
        check("30 SIGHUPs while 4 clients infer: every answer 200", answers and set(answers) == {200},
              (len(answers), sorted(set(answers))))
        check("... and each reload logged", wait_for(lambda: srv.output().count("API keys reloaded") >= 31),
              srv.output().count("API keys reloaded"))

        # ---- SIGHUP with a broken file: the set before stays ----
        write_keys(keys, f"infer {BROKEN} broken\ninfer,bogus {ADMIN} ops\n")
        srv.proc.send_signal(signal.SIGHUP)
        check("SIGHUP with a broken file: the log says why, naming the line",
              wait_for(lambda: "API keys not reloaded" in srv.output()) and "line 2: the first field" in srv.output(),
              srv.output()[-800:])
        status, _, _ = req(port, "POST", "/v2/models/mlp/infer", key=ROTATED, body=FEATURES)
        check("... and the keys before still work", status == 200, status)
        check("... the broken file's key does not", req(port, "GET", "/v2/models/mlp", key=BROKEN)[0] == 401)
        body = req(port, "GET", "/metrics", key=SCRAPER)[1]
        check("celer_api_keys_reload_failures_total 1, reloads 31",
              metric(body, "celer_api_keys_reload_failures_total") == 1
              and metric(body, "celer_api_keys_reloads_total") == 31,
              str(body)[:300])

        log = srv.output()
        check("the access log names the keys' NAMEs",
              "key=frontend" in log and "key=ops" in log and "key=rotated" in log and "key=scraper" in log, log[-1500:])
        check("the gRPC verbose line names the key's NAME",
              re.search(r"grpc /inference.GRPCInferenceService/ModelInfer OK [0-9.]+ms key=frontend", log), log[-1500:])
    finally:
        channel.close()
        check_stopped(srv)
    log = srv.output()
    leaked = [k for k in KEYS if k in log]
    check("no key's text in the server's log", not leaked, leaked)

    # ---- --log-format json: the access lines name the key, never hold it ----
    write_keys(keys, f"infer {INFER} frontend\nadmin {ADMIN} ops\n")
    srv = Server(repo, "--api-keys", keys, "--log-format", "json")
    try:
        req(srv.port, "POST", "/v2/models/mlp/infer", key=INFER, body=FEATURES)
        req(srv.port, "GET", "/v2/models/mlp", key=UNKNOWN)
        req(srv.port, "POST", "/v2/repository/index", key=INFER, body=b"{}")
        req(srv.port, "POST", "/v2/repository/index", key=ADMIN, body=b"{}")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "API keys reloaded" in srv.output())
        wait_for(lambda: srv.output().count('"key":') >= 3)
        lines = [json.loads(line) for line in srv.output().splitlines() if line.startswith("{")]
        access = [d for d in lines if "path" in d]
        check("json: every line parses, the access lines carry the key's NAME",
              [d.get("key") for d in access if d["path"] != "/v2/health/live"] == ["frontend", None, "frontend", "ops"],
              access)
    finally:
        check_stopped(srv, "json")
    leaked = [k for k in KEYS if k in srv.output()]
    check("json: no key's text in the server's log", not leaked, leaked)

    # ---- a broken file at start: refused, naming the line, not the key ----
    write_keys(keys, f"infer {INFER} frontend\n# a comment\nadmin {BROKEN[:15]} short\n")
    p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()), "--grpc-port", "0",
                        "--api-keys", keys], capture_output=True, text=True, timeout=60)
    check("a broken key file at start: exit non-zero naming the file and line 3",
          p.returncode != 0 and "line 3: the key is shorter than 16 characters" in p.stderr and keys in p.stderr,
          (p.returncode, p.stderr[-500:]))
    check("... without the keys' text", not any(k in p.stderr or k[:15] in p.stderr for k in KEYS), p.stderr[-500:])
    p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()), "--grpc-port", "0",
                        "--api-keys", os.path.join(tmp, "missing")], capture_output=True, text=True, timeout=60)
    check("a missing key file at start: exit non-zero naming it", p.returncode != 0 and "missing" in p.stderr,
          p.stderr[-300:])

    leaked = [k for k in KEYS if any(k.encode() in s for s in SEEN)]
    check(f"no key's text in any of the {len(SEEN)} answers", not leaked, leaked)


if __name__ == "__main__":
    sys.exit(main())
